/* `ragbox model quantize` (rb_engine_quantize): F16 / BF16 fixtures -> every target type;
 * the output is a valid GGUF with the expected per-tensor types, and the quantized model
 * computes logits close to the source model's (relative to the logit scale) with the
 * same greedy token at most positions. Bad arguments and inputs fail cleanly. */
#include "check.h"

#include "ggml-types.h"
#include "gguf.h"
#include "model.h"
#include "ragbox/engine.h"

static void logits_of(const char *path, const int32_t *toks, int n, float **out, int *nv)
{
    struct rb_errmsg err = {{0}};
    struct rb_gguf *g = NULL;
    struct rb__model *m = NULL;
    *out = NULL;
    CHECK_MSG(rb_gguf_open(path, &g, &err) == RB_OK, "%s", err.text);
    if (g)
        CHECK_MSG(rb__model_load(g, 1, &m, &err) == RB_OK, "%s", err.text);
    if (!m) {
        rb_gguf_close(g);
        return;
    }
    struct rb__kv *kv = NULL;
    CHECK(rb__kv_create(m, 64, &kv) == RB_OK);
    *nv = m->n_vocab;
    float *l = malloc((size_t)n * m->n_vocab * sizeof(float));
    int pos[64];
    struct rb__kv *kvs[64];
    bool want[64];
    for (int i = 0; i < n; i++) {
        pos[i] = i;
        kvs[i] = kv;
        want[i] = true;
    }
    struct rb__batch b = {n, toks, pos, kvs, want, l};
    CHECK(rb__forward(m, &b) == RB_OK);
    *out = l;
    rb__kv_free(kv);
    rb__model_free(m);
    rb_gguf_close(g);
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b])
            b = i;
    return b;
}

int main(void)
{
    const char *src = check_shared("models/fixtures/llama-spm-64.f16.gguf");
    struct stat sb;
    if (stat(src, &sb) != 0)
        CHECK_SKIP("%s not found", src);
    const char *dir = check_tmpdir("quantize");
    const int32_t toks[12] = {1, 450, 9124, 29915, 29879, 323, 631, 29871, 29896, 7483, 11959, 13};
    float *ref = NULL;
    int nv = 0;
    logits_of(src, toks, 12, &ref, &nv);
    const char *types[] = {"Q8_0", "Q4_0", "q4_k_m", "Q5_K_M", "Q6_K"};
    /* expected main matrix type, and worst relative logit error allowed vs F16 */
    const uint32_t main_type[] = {RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q4_K,
                                  RB_GGML_TYPE_Q5_K, RB_GGML_TYPE_Q6_K};
    const double tol[] = {0.03, 0.25, 0.25, 0.12, 0.06};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        char out[4096];
        snprintf(out, sizeof out, "%s/out-%s.gguf", dir, types[ti]);
        struct rb_errmsg err = {{0}};
        CHECK_MSG(rb_engine_quantize(src, out, types[ti], 2, &err) == RB_OK, "%s: %s",
                  types[ti], err.text);
        struct rb_gguf *g = NULL;
        CHECK_MSG(rb_gguf_open(out, &g, &err) == RB_OK, "%s", err.text);
        if (!g)
            continue;
        const struct rb_gguf_tensor *t = rb_gguf_find_tensor(g, "blk.0.ffn_up.weight");
        const struct rb_gguf_tensor *nrm = rb_gguf_find_tensor(g, "blk.0.attn_norm.weight");
        CHECK(t && nrm);
        if (t && t->ne[0] % 256 == 0)
            CHECK_MSG(t->type == main_type[ti], "%s: ffn_up is %s", types[ti],
                      rb_ggml_type_name(t->type));
        if (nrm)
            CHECK_EQ_INT(nrm->type, RB_GGML_TYPE_F32);
        rb_gguf_close(g);
        float *q = NULL;
        int nv2 = 0;
        logits_of(out, toks, 12, &q, &nv2);
        if (!q || !ref)
            continue;
        CHECK_EQ_INT(nv2, nv);
        double worst = 0;
        int same = 0;
        for (int p = 0; p < 12; p++) {
            const float *a = ref + (size_t)p * nv, *b = q + (size_t)p * nv;
            double scale = 0;
            for (int i = 0; i < nv; i++)
                scale = fabs(a[i]) > scale ? fabs(a[i]) : scale;
            for (int i = 0; i < nv; i++) {
                const double r = fabs(a[i] - b[i]) / scale;
                worst = r > worst ? r : worst;
            }
            same += argmax(a, nv) == argmax(b, nv);
        }
        fprintf(stderr, "  %-7s worst rel %.4f, same argmax %d/12\n", types[ti], worst, same);
        CHECK_MSG(worst <= tol[ti], "%s: worst relative error %.4f", types[ti], worst);
        /* random-weight logits are close together: llama.cpp's own Q4_0 of this fixture
         * keeps the F16 argmax at 65% of positions, Q5_0 at 75% (its ref.json files) */
        const int min_same[] = {11, 5, 6, 11, 11};
        CHECK_MSG(same >= min_same[ti], "%s: argmax agreement %d/12", types[ti], same);
        free(q);
    }
    free(ref);
    /* errors */
    struct rb_errmsg err = {{0}};
    char out[4096];
    snprintf(out, sizeof out, "%s/bad.gguf", dir);
    CHECK(rb_engine_quantize(src, out, "Q3_XYZ", 1, &err) == RB_ERR_INVALID);
    CHECK(strstr(err.text, "Q3_XYZ") != NULL);
    CHECK(rb_engine_quantize("/nonexistent.gguf", out, "Q8_0", 1, &err) != RB_OK);
    CHECK(access(out, F_OK) != 0);
    return check_finish();
}
