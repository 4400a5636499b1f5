/* What a conforming GGUF of the common families can present at load, on tiny
 * hand-built models (F32 random weights written by the engine's GGUF writer):
 * tied and untied output, missing optional biases, head_dim * heads != n_embd, YaRN
 * metadata — all load and run; mixture-of-experts (by architecture name or by
 * expert_count), unknown architectures, tensors of a variant the graph does not
 * implement, missing required tensors, unsupported rope scaling and implausible
 * shapes are refused with a message naming the cause. */
#include "check.h"
#include "gguf.h"
#include "model.h"

static const char *dir;
static int file_no;

enum { E = 16, FF = 24, NV = 32 };

struct spec {
    const char *arch;
    int n_head, head_dim; /* head_dim 0: E / n_head */
    bool untied, biases, extra_qnorm, drop_ffn_down, moe;
    const char *rope_type; /* NULL: none */
};

static unsigned rng = 1;
static float frand(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((float)((rng >> 8) & 0xFFFF) / 65536.0f - 0.5f) * 0.2f;
}

static void add(struct rb_gguf_writer *w, const char *name, uint64_t ne0, uint64_t ne1, float fill)
{
    const uint64_t n = ne0 * (ne1 ? ne1 : 1);
    float *d = malloc(n * sizeof(float));
    for (uint64_t i = 0; i < n; i++)
        d[i] = fill != 0 ? fill : frand();
    uint64_t ne[2] = {ne0, ne1};
    REQUIRE(rb_gguf_writer_add_tensor(w, name, 0 /* F32 */, ne1 ? 2 : 1, ne, d,
                                      n * sizeof(float)) == RB_OK);
    free(d);
}

static enum rb_status build(const struct spec *sp, struct rb_gguf **g, struct rb__model **m,
                            struct rb_errmsg *err)
{
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    const char *a = sp->arch;
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, a), k)
    REQUIRE(rb_gguf_writer_set_str(w, "general.architecture", a, strlen(a)) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, KEY("embedding_length"), E) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, KEY("block_count"), 1) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, KEY("feed_forward_length"), FF) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)sp->n_head) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, KEY("context_length"), 64) == RB_OK);
    const int hd = sp->head_dim ? sp->head_dim : E / sp->n_head;
    if (sp->head_dim) {
        REQUIRE(rb_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)hd) == RB_OK);
        REQUIRE(rb_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)hd) == RB_OK);
    }
    if (sp->moe)
        REQUIRE(rb_gguf_writer_set_u32(w, KEY("expert_count"), 8) == RB_OK);
    if (sp->rope_type) {
        REQUIRE(rb_gguf_writer_set_str(w, KEY("rope.scaling.type"), sp->rope_type,
                                       strlen(sp->rope_type)) == RB_OK);
        REQUIRE(rb_gguf_writer_set_f32(w, KEY("rope.scaling.factor"), 4.0f) == RB_OK);
        REQUIRE(rb_gguf_writer_set_u32(w, KEY("rope.scaling.original_context_length"), 16) ==
                RB_OK);
    }
#undef KEY
    const int Q = sp->n_head * hd;
    add(w, "token_embd.weight", E, NV, 0);
    add(w, "output_norm.weight", E, 0, 1.0f);
    if (sp->untied)
        add(w, "output.weight", E, NV, 0);
    add(w, "blk.0.attn_norm.weight", E, 0, 1.0f);
    add(w, "blk.0.ffn_norm.weight", E, 0, 1.0f);
    add(w, "blk.0.attn_q.weight", E, (uint64_t)Q, 0);
    add(w, "blk.0.attn_k.weight", E, (uint64_t)Q, 0);
    add(w, "blk.0.attn_v.weight", E, (uint64_t)Q, 0);
    add(w, "blk.0.attn_output.weight", (uint64_t)Q, E, 0);
    if (sp->biases) {
        add(w, "blk.0.attn_q.bias", (uint64_t)Q, 0, 0);
        add(w, "blk.0.attn_k.bias", (uint64_t)Q, 0, 0);
        add(w, "blk.0.attn_v.bias", (uint64_t)Q, 0, 0);
    }
    if (sp->extra_qnorm || strcmp(a, "qwen3") == 0) {
        add(w, "blk.0.attn_q_norm.weight", (uint64_t)hd, 0, 1.0f);
        add(w, "blk.0.attn_k_norm.weight", (uint64_t)hd, 0, 1.0f);
    }
    add(w, "blk.0.ffn_gate.weight", E, FF, 0);
    add(w, "blk.0.ffn_up.weight", E, FF, 0);
    if (!sp->drop_ffn_down)
        add(w, "blk.0.ffn_down.weight", FF, E, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/m%d.gguf", dir, file_no++);
    REQUIRE(rb_gguf_writer_write(w, path) == RB_OK);
    rb_gguf_writer_free(w);
    *g = NULL;
    *m = NULL;
    REQUIRE(rb_gguf_open(path, g, err) == RB_OK);
    enum rb_status st = rb__model_load(*g, 1, m, err);
    return st;
}

/* loads, runs 3 tokens, and the logits are finite; returns the first logit */
static void expect_runs(const struct spec *sp, const char *what)
{
    struct rb_gguf *g;
    struct rb__model *m;
    struct rb_errmsg err = {{0}};
    enum rb_status st = build(sp, &g, &m, &err);
    CHECK_MSG(st == RB_OK, "%s: %s", what, err.text);
    if (st == RB_OK) {
        struct rb__kv *kv = NULL;
        REQUIRE(rb__kv_create(m, 8, &kv) == RB_OK);
        const int32_t toks[3] = {1, 5, 7};
        const int pos[3] = {0, 1, 2};
        struct rb__kv *kvs[3] = {kv, kv, kv};
        const bool want[3] = {true, true, true};
        float logits[3 * NV];
        struct rb__batch b = {3, toks, pos, kvs, want, logits};
        CHECK(rb__forward(m, &b) == RB_OK);
        bool finite = true;
        for (int i = 0; i < 3 * NV; i++)
            finite = finite && isfinite(logits[i]);
        CHECK_MSG(finite, "%s: non-finite logits", what);
        if (sp->untied)
            CHECK(m->output.data != m->tok_embd.data);
        else
            CHECK(m->output.data == m->tok_embd.data);
        rb__kv_free(kv);
    }
    rb__model_free(m);
    rb_gguf_close(g);
}

static void expect_refused(const struct spec *sp, enum rb_status want, const char *needle)
{
    struct rb_gguf *g;
    struct rb__model *m;
    struct rb_errmsg err = {{0}};
    enum rb_status st = build(sp, &g, &m, &err);
    CHECK_MSG(st == want && !m, "%s: status %d (%s)", needle, (int)st, err.text);
    CHECK_MSG(strstr(err.text, needle) != NULL, "message '%s' lacks '%s'", err.text, needle);
    rb__model_free(m);
    rb_gguf_close(g);
}

int main(void)
{
    dir = check_tmpdir("engine-model-load");
    expect_runs(&(struct spec){.arch = "llama", .n_head = 4, .head_dim = 0}, "llama tied");
    expect_runs(&(struct spec){.arch = "llama", .n_head = 4, .head_dim = 0, .untied = true},
                "llama untied");
    expect_runs(&(struct spec){.arch = "qwen2", .n_head = 2, .head_dim = 0, .biases = true},
                "qwen2 with QKV bias");
    expect_runs(&(struct spec){.arch = "qwen2", .n_head = 2, .head_dim = 0, .biases = false},
                "qwen2 without bias");
    expect_runs(&(struct spec){.arch = "qwen3", .n_head = 4, .head_dim = 8},
                "qwen3 head_dim*heads != n_embd");
    expect_runs(&(struct spec){.arch = "llama", .n_head = 4, .head_dim = 8},
                "llama head_dim*heads != n_embd");
    expect_runs(&(struct spec){.arch = "qwen2", .n_head = 2, .head_dim = 0, .rope_type = "yarn"},
                "qwen2 yarn");
    expect_runs(&(struct spec){.arch = "llama", .n_head = 4, .head_dim = 0, .rope_type = "linear"},
                "llama linear rope");

    expect_refused(&(struct spec){.arch = "qwen2moe", .n_head = 2, .head_dim = 0},
                   RB_ERR_UNSUPPORTED, "mixture-of-experts");
    expect_refused(&(struct spec){.arch = "llama", .n_head = 2, .head_dim = 0, .moe = true},
                   RB_ERR_UNSUPPORTED, "expert_count");
    expect_refused(&(struct spec){.arch = "gemma2", .n_head = 2, .head_dim = 0}, RB_ERR_UNSUPPORTED,
                   "'gemma2'");
    expect_refused(&(struct spec){.arch = "llama", .n_head = 4, .head_dim = 0, .extra_qnorm = true},
                   RB_ERR_UNSUPPORTED, "blk.0.attn_q_norm.weight");
    expect_refused(
        &(struct spec){.arch = "llama", .n_head = 4, .head_dim = 0, .drop_ffn_down = true},
        RB_ERR_MODEL, "blk.0.ffn_down.weight");
    expect_refused(
        &(struct spec){.arch = "qwen2", .n_head = 2, .head_dim = 0, .rope_type = "longrope"},
        RB_ERR_UNSUPPORTED, "longrope");
    expect_refused(&(struct spec){.arch = "llama", .n_head = 3, .head_dim = 0}, RB_ERR_MODEL,
                   "rope.dimension_count"); /* head 16/3 */
    return check_finish();
}
