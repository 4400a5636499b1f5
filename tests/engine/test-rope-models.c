/* RoPE scaling end to end on real model files: copies of shared fixtures with
 * rope.scaling metadata added (written by the engine's GGUF writer) load, and
 *  - linear factor 2 keeps the first token's logits (rotation at position 0 is the
 *    identity) and changes the later ones;
 *  - YaRN with yarn_ext_factor 0 is exactly linear interpolation;
 *  - YaRN proper changes the logits after the first token (where rotation is the
 *    identity and its magnitude scale cancels in the softmax), and greedy generation
 *    through the public API is deterministic;
 *  - an unknown scaling type is refused with a message. */
#include "check.h"
#include "gguf.h"
#include "model.h"
#include "ragbox/engine.h"

static const char *dir;

struct extra {
    const char *type;
    float factor;
    int has_ext;
    float ext;
    uint32_t orig;
};

static void copy_with(const char *src, const char *dst, const struct extra *x)
{
    struct rb_errmsg err = {{0}};
    struct rb_gguf *g = NULL;
    REQUIRE(rb_gguf_open(src, &g, &err) == RB_OK);
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    for (size_t i = 0; i < rb_gguf_kv_count(g); i++) {
        const struct rb_gguf_kv *kv = rb_gguf_kv_at(g, i);
        if (strstr(kv->key, ".rope.scaling."))
            continue;
        REQUIRE(rb_gguf_writer_copy_kv(w, kv) == RB_OK);
    }
    const char *arch = rb_gguf_arch(g);
    char key[128];
    if (x->type) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        REQUIRE(rb_gguf_writer_set_str(w, key, x->type, strlen(x->type)) == RB_OK);
    }
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    REQUIRE(rb_gguf_writer_set_f32(w, key, x->factor) == RB_OK);
    if (x->has_ext) {
        snprintf(key, sizeof key, "%s.rope.scaling.yarn_ext_factor", arch);
        REQUIRE(rb_gguf_writer_set_f32(w, key, x->ext) == RB_OK);
    }
    if (x->orig) {
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", arch);
        REQUIRE(rb_gguf_writer_set_u32(w, key, x->orig) == RB_OK);
    }
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        REQUIRE(rb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                          t->size) == RB_OK);
    }
    REQUIRE(rb_gguf_writer_write(w, dst) == RB_OK);
    rb_gguf_writer_free(w);
    rb_gguf_close(g);
}

struct loaded {
    struct rb_gguf *g;
    struct rb__model *m;
};

static struct loaded load(const char *path)
{
    struct loaded l = {0};
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_gguf_open(path, &l.g, &err) == RB_OK);
    if (rb__model_load(l.g, 2, &l.m, &err) != RB_OK) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        REQUIRE(0);
    }
    return l;
}

static void unload(struct loaded *l)
{
    rb__model_free(l->m);
    rb_gguf_close(l->g);
}

#define NT 12

/* logits (NT x n_vocab) of tokens at positions pos[] */
static float *run(struct rb__model *m, const int32_t *toks, const int *pos, int n_ctx)
{
    struct rb__kv *kv = NULL;
    REQUIRE(rb__kv_create(m, n_ctx, &kv) == RB_OK);
    float *logits = malloc((size_t)NT * m->n_vocab * sizeof(float));
    struct rb__kv *kvs[NT];
    bool want[NT];
    for (int i = 0; i < NT; i++) {
        kvs[i] = kv;
        want[i] = true;
    }
    struct rb__batch b = {NT, toks, pos, kvs, want, logits};
    REQUIRE(rb__forward(m, &b) == RB_OK);
    rb__kv_free(kv);
    return logits;
}

static void test_model(const char *src, const char *tag)
{
    char p_lin[600], p_yarn[600], p_yarn0[600], p_lin4[600], p_bad[600];
    snprintf(p_lin, sizeof p_lin, "%s/%s-linear2.gguf", dir, tag);
    snprintf(p_lin4, sizeof p_lin4, "%s/%s-linear4.gguf", dir, tag);
    snprintf(p_yarn, sizeof p_yarn, "%s/%s-yarn4.gguf", dir, tag);
    snprintf(p_yarn0, sizeof p_yarn0, "%s/%s-yarn4-noext.gguf", dir, tag);
    snprintf(p_bad, sizeof p_bad, "%s/%s-longrope.gguf", dir, tag);
    copy_with(src, p_lin, &(struct extra){.type = "linear", .factor = 2.0f});
    copy_with(src, p_lin4, &(struct extra){.type = "linear", .factor = 4.0f});
    copy_with(src, p_yarn, &(struct extra){.type = "yarn", .factor = 4.0f, .orig = 64});
    copy_with(
        src, p_yarn0,
        &(struct extra){.type = "yarn", .factor = 4.0f, .has_ext = 1, .ext = 0.0f, .orig = 64});
    copy_with(src, p_bad, &(struct extra){.type = "longrope", .factor = 4.0f});

    struct loaded orig = load(src), lin = load(p_lin), lin4 = load(p_lin4), yarn = load(p_yarn),
                  yarn0 = load(p_yarn0);
    const int nv = orig.m->n_vocab;
    int32_t toks[NT];
    int pos[NT];
    for (int i = 0; i < NT; i++) {
        toks[i] = (int32_t)((i * 37 + 5) % nv);
        pos[i] = i;
    }
    float *lo = run(orig.m, toks, pos, NT);
    float *ll = run(lin.m, toks, pos, NT);
    CHECK_MSG(memcmp(lo, ll, (size_t)nv * sizeof(float)) == 0, "%s: linear: first token differs",
              tag);
    double dl = 0;
    for (size_t i = (size_t)nv; i < (size_t)NT * nv; i++)
        dl = fmax(dl, fabs(ll[i] - lo[i]));
    CHECK_MSG(dl > 1e-4, "%s: linear x2 left later logits unchanged", tag);
    float *ll4 = run(lin4.m, toks, pos, NT);
    float *ly0 = run(yarn0.m, toks, pos, NT);
    CHECK_MSG(memcmp(ll4, ly0, (size_t)NT * nv * sizeof(float)) == 0,
              "%s: YaRN with ext_factor 0 != linear", tag);
    float *ly = run(yarn.m, toks, pos, NT);
    /* first token: rotation is the identity; one key: the softmax is 1 */
    CHECK_MSG(memcmp(lo, ly, (size_t)nv * sizeof(float)) == 0, "%s: first token differs", tag);
    double diff = 0;
    bool finite = true;
    for (size_t i = (size_t)nv; i < (size_t)NT * nv; i++) {
        diff = fmax(diff, fabs(ly[i] - lo[i]));
        finite = finite && isfinite(ly[i]);
    }
    CHECK(finite);
    CHECK_MSG(diff > 1e-4, "%s: YaRN left later logits unchanged (max diff %g)", tag, diff);
    double diff4 = 0;
    for (size_t i = (size_t)nv; i < (size_t)NT * nv; i++)
        diff4 = fmax(diff4, fabs(ly[i] - ll4[i]));
    CHECK_MSG(diff4 > 1e-4, "%s: YaRN equals linear (max diff %g)", tag, diff4);
    free(lo);
    free(ll);
    free(ll4);
    free(ly0);
    free(ly);
    unload(&orig);
    unload(&lin);
    unload(&lin4);
    unload(&yarn);
    unload(&yarn0);

    /* public API: the YaRN file opens and greedy generation is deterministic */
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_threads = 2;
    mp.n_ctx = 256;
    struct rb_errmsg err = {{0}};
    char *texts[2] = {NULL, NULL};
    for (int r = 0; r < 2; r++) {
        struct rb_engine_model *em = NULL;
        CHECK_MSG(rb_engine_model_open(p_yarn, &mp, &em, &err) == RB_OK, "%s", err.text);
        if (!em)
            continue;
        struct rb_engine_gen_params gp;
        rb_engine_gen_params_default(&gp);
        gp.temperature = 0;
        gp.max_tokens = 24;
        gp.ignore_eos = true;
        struct rb_engine_gen_result res = {0};
        CHECK(rb_engine_generate(em, "Once upon a time", &gp, NULL, NULL, true, &res) == RB_OK);
        CHECK_EQ_INT(res.n_gen_tokens, 24);
        texts[r] = res.text;
        rb_engine_model_close(em);
    }
    CHECK(texts[0] && texts[1] && strcmp(texts[0], texts[1]) == 0);
    free(texts[0]);
    free(texts[1]);

    struct rb_engine_model *em = NULL;
    CHECK(rb_engine_model_open(p_bad, &mp, &em, &err) == RB_ERR_UNSUPPORTED && !em);
    CHECK_MSG(strstr(err.text, "longrope") != NULL, "%s", err.text);
}

int main(void)
{
    struct stat sb;
    const char *qwen = check_shared("models/fixtures/qwen2-64.q4_0.gguf");
    const char *llama = check_shared("models/real/stories260K.gguf");
    if (stat(qwen, &sb) != 0 || stat(llama, &sb) != 0)
        CHECK_SKIP("shared models not found");
    setenv("RAGBOX_GPU", "off", 1);
    dir = check_tmpdir("engine-rope-models");
    test_model(qwen, "qwen2");
    test_model(llama, "llama");
    return check_finish();
}
