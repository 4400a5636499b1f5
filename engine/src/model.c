/* Model graphs: binding GGUF tensors, the decoder forward pass (llama / qwen2 / qwen3)
 * over a batch of tokens of one or many sequences, and the BERT encoder. */
#include "model.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-types.h"
#include "rope-scaling.h"

/* ============================================================ workspace */

struct rb__ws {
    int cap_tok;  /* tokens the buffers hold */
    int cap_keys; /* attention keys per thread scratch */
    float *x, *h, *q, *k, *v, *att, *f1, *f2, *tmp;
    uint8_t *actq; /* quantized activations: cap_tok rows of the widest row */
    size_t actq_row;
    float *scores; /* n_threads * cap_keys */
    rb_half *qh;   /* n_threads * head_dim */
    float *vacc;   /* n_threads * head_dim */
};

static void ws_free(struct rb__ws *w)
{
    if (!w)
        return;
    free(w->x);
    free(w->h);
    free(w->q);
    free(w->k);
    free(w->v);
    free(w->att);
    free(w->f1);
    free(w->f2);
    free(w->tmp);
    free(w->actq);
    free(w->scores);
    free(w->qh);
    free(w->vacc);
    free(w);
}

static enum rb_status ws_reserve(struct rb__model *m, int n_tok, int n_keys)
{
    struct rb__ws *w = m->ws;
    if (w && w->cap_tok >= n_tok && w->cap_keys >= n_keys)
        return RB_OK;
    const int ct = w && w->cap_tok > n_tok ? w->cap_tok : n_tok;
    const int ck = w && w->cap_keys > n_keys ? w->cap_keys : n_keys;
    ws_free(w);
    m->ws = NULL;
    w = calloc(1, sizeof *w);
    if (!w)
        return RB_ERR_NOMEM;
    w->cap_tok = ct;
    w->cap_keys = ck;
    const size_t E = (size_t)m->n_embd, Q = (size_t)m->n_head * m->head_dim,
                 KV = (size_t)m->n_head_kv * m->head_dim, F = (size_t)m->n_ff;
    size_t widest = E > Q ? E : Q;
    widest = widest > F ? widest : F;
    const int nth = rb__pool_size(m->pool);
    w->x = malloc(ct * E * sizeof(float));
    w->h = malloc(ct * E * sizeof(float));
    w->q = malloc(ct * Q * sizeof(float));
    w->k = malloc(ct * KV * sizeof(float));
    w->v = malloc(ct * KV * sizeof(float));
    w->att = malloc(ct * Q * sizeof(float));
    w->f1 = malloc(ct * F * sizeof(float));
    w->f2 = malloc(ct * F * sizeof(float));
    w->tmp = malloc(ct * (widest > E ? widest : E) * sizeof(float));
    w->actq_row = widest * 4 + 1024; /* F32 activations are the widest format */
    w->actq = malloc(ct * w->actq_row);
    w->scores = malloc((size_t)nth * ck * sizeof(float));
    w->qh = malloc((size_t)nth * m->head_dim * sizeof(rb_half));
    w->vacc = malloc((size_t)nth * m->head_dim * sizeof(float));
    m->ws = w;
    if (!w->x || !w->h || !w->q || !w->k || !w->v || !w->att || !w->f1 || !w->f2 || !w->tmp ||
        !w->actq || !w->scores || !w->qh || !w->vacc)
        return RB_ERR_NOMEM;
    return RB_OK;
}

/* ============================================================ loading */

static enum rb_status bind_wt(const struct rb_gguf *g, const char *name, bool required,
                              int64_t ne0, int64_t ne1, struct rb_wt *w, struct rb_errmsg *err)
{
    memset(w, 0, sizeof *w);
    const struct rb_gguf_tensor *t = rb_gguf_find_tensor(g, name);
    if (!t) {
        if (required)
            return rb_errmsg_set(err, RB_ERR_MODEL, "missing tensor %s", name);
        return RB_OK;
    }
    if (t->n_dims > 2 || (int64_t)t->ne[0] != ne0 || (ne1 > 0 && (int64_t)t->ne[1] != ne1))
        return rb_errmsg_set(err, RB_ERR_MODEL,
                             "tensor %s has shape [%llu, %llu], expected [%lld, %lld]", name,
                             (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                             (long long)ne0, (long long)ne1);
    w->ops = rb__type_ops(t->type);
    if (!w->ops)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED, "tensor %s: type %s is not supported", name,
                             rb_ggml_type_name(t->type));
    uint64_t rb;
    if (!rb_ggml_row_size(t->type, t->ne[0], &rb))
        return rb_errmsg_set(err, RB_ERR_MODEL, "tensor %s: bad row size", name);
    w->data = t->data;
    w->type = t->type;
    w->ne0 = (int64_t)t->ne[0];
    w->ne1 = (int64_t)t->ne[1];
    w->row_bytes = (size_t)rb;
    return RB_OK;
}

/* A 1-D tensor of n elements converted to floats (owned), or NULL when absent and
 * optional. */
static enum rb_status load_vec(const struct rb_gguf *g, const char *name, bool required,
                               int64_t n, float **out, struct rb_errmsg *err)
{
    *out = NULL;
    const struct rb_gguf_tensor *t = rb_gguf_find_tensor(g, name);
    if (!t) {
        if (required)
            return rb_errmsg_set(err, RB_ERR_MODEL, "missing tensor %s", name);
        return RB_OK;
    }
    if ((int64_t)t->n_elements != n)
        return rb_errmsg_set(err, RB_ERR_MODEL, "tensor %s has %llu elements, expected %lld",
                             name, (unsigned long long)t->n_elements, (long long)n);
    const struct rb_type_ops *ops = rb__type_ops(t->type);
    if (!ops || n % ops->blck)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED, "tensor %s: unsupported type %s", name,
                             rb_ggml_type_name(t->type));
    float *v = malloc((size_t)n * sizeof(float));
    if (!v)
        return RB_ERR_NOMEM;
    ops->dequant_row(t->data, v, n);
    *out = v;
    return RB_OK;
}

static enum rb_status get_u32(const struct rb_gguf *g, const char *suffix, bool required,
                              uint32_t def, uint32_t *out, struct rb_errmsg *err)
{
    enum rb_status st = rb_gguf_get_arch_u32(g, suffix, out);
    if (st == RB_ERR_NOT_FOUND && !required) {
        *out = def;
        return RB_OK;
    }
    if (st != RB_OK)
        return rb_errmsg_set(err, RB_ERR_MODEL, "metadata %s.%s: %s", rb_gguf_arch(g), suffix,
                             st == RB_ERR_NOT_FOUND ? "missing" : "wrong type or out of range");
    return RB_OK;
}

static bool name_is_eog(const char *s, size_t n)
{
    static const char *const names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|eom_id|>", "</s>", "<EOT>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return true;
    return false;
}

static void add_eos(struct rb__model *m, int64_t id)
{
    if (id < 0 || id >= m->n_vocab || m->n_eos >= 8)
        return;
    for (int i = 0; i < m->n_eos; i++)
        if (m->eos_ids[i] == id)
            return;
    m->eos_ids[m->n_eos++] = (int32_t)id;
}

static bool name_in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* A tensor the graph does not use means a variant of the architecture this engine
 * does not implement (extra norms, fused or gated blocks ...): running without it
 * would produce plausible-looking garbage, so the file is refused, naming it. */
static enum rb_status check_all_tensors_used(const struct rb_gguf *g, const struct rb__model *m,
                                             struct rb_errmsg *err)
{
    static const char *const dec_top[] = {"token_embd.weight", "output_norm.weight",
                                          "output.weight", "rope_freqs.weight", NULL};
    static const char *const dec_blk[] = {
        "attn_q.weight",   "attn_k.weight",   "attn_v.weight",   "attn_output.weight",
        "attn_q.bias",     "attn_k.bias",     "attn_v.bias",     "attn_output.bias",
        "attn_norm.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
        "ffn_down.weight", "ffn_up.bias",     "ffn_down.bias",
        "attn_rot_embd", /* legacy converters: the rotary table, recomputed here */
        NULL};
    static const char *const qk_norm[] = {"attn_q_norm.weight", "attn_k_norm.weight", NULL};
    static const char *const bert_top[] = {"token_embd.weight", "position_embd.weight",
                                           "token_types.weight", "token_embd_norm.weight",
                                           "token_embd_norm.bias", NULL};
    static const char *const bert_blk[] = {
        "attn_q.weight",   "attn_k.weight",  "attn_v.weight",  "attn_output.weight",
        "attn_q.bias",     "attn_k.bias",    "attn_v.bias",    "attn_output.bias",
        "attn_output_norm.weight", "attn_output_norm.bias", "layer_output_norm.weight",
        "layer_output_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight",
        "ffn_down.bias", NULL};
    const bool bert = m->arch == RB_ARCH_BERT;
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const char *name = rb_gguf_tensor_at(g, i)->name;
        bool known;
        int layer = -1, used = 0;
        if (sscanf(name, "blk.%d.%n", &layer, &used) == 1 && used > 0) {
            const char *suffix = name + used;
            known = layer >= 0 && layer < m->n_layer &&
                    (name_in_list(suffix, bert ? bert_blk : dec_blk) ||
                     (m->arch == RB_ARCH_QWEN3 && name_in_list(suffix, qk_norm)));
        } else {
            known = name_in_list(name, bert ? bert_top : dec_top);
        }
        if (!known)
            return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                                 "tensor '%s' is not part of the %s graph this engine runs (a "
                                 "variant it does not implement); refusing rather than computing "
                                 "without it",
                                 name, m->arch_name);
    }
    return RB_OK;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        enum rb_status st_ = (x);                                                                  \
        if (st_ != RB_OK) {                                                                        \
            if (st_ == RB_ERR_NOMEM)                                                               \
                rb_errmsg_set(err, st_, "out of memory");                                          \
            rb__model_free(m);                                                                     \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

enum rb_status rb__model_load(const struct rb_gguf *g, int n_threads, struct rb__model **out,
                              struct rb_errmsg *err)
{
    *out = NULL;
    const char *arch = rb_gguf_arch(g);
    if (!arch)
        return rb_errmsg_set(err, RB_ERR_MODEL, "general.architecture is missing");
    struct rb__model *m = calloc(1, sizeof *m);
    if (!m)
        return RB_ERR_NOMEM;
    rb_strlcpy(m->arch_name, arch, sizeof m->arch_name);
    if (strcmp(arch, "llama") == 0)
        m->arch = RB_ARCH_LLAMA;
    else if (strcmp(arch, "qwen2") == 0)
        m->arch = RB_ARCH_QWEN2;
    else if (strcmp(arch, "qwen3") == 0)
        m->arch = RB_ARCH_QWEN3;
    else if (strcmp(arch, "bert") == 0)
        m->arch = RB_ARCH_BERT;
    else {
        rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                      "architecture '%s' is not supported%s (llama, qwen2, qwen3, bert are)", arch,
                      strstr(arch, "moe") ? " (mixture-of-experts models are not)" : "");
        rb__model_free(m);
        return RB_ERR_UNSUPPORTED;
    }
    {
        uint32_t experts = 0;
        if (rb_gguf_get_arch_u32(g, "expert_count", &experts) == RB_OK && experts > 0) {
            rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                          "mixture-of-experts models are not supported (%s.expert_count = %u)",
                          arch, experts);
            rb__model_free(m);
            return RB_ERR_UNSUPPORTED;
        }
    }
    uint32_t u;
    TRY(get_u32(g, "embedding_length", true, 0, &u, err));
    m->n_embd = (int)u;
    TRY(get_u32(g, "block_count", true, 0, &u, err));
    m->n_layer = (int)u;
    TRY(get_u32(g, "feed_forward_length", true, 0, &u, err));
    m->n_ff = (int)u;
    TRY(get_u32(g, "attention.head_count", true, 0, &u, err));
    m->n_head = (int)u;
    TRY(get_u32(g, "attention.head_count_kv", false, (uint32_t)m->n_head, &u, err));
    m->n_head_kv = (int)u;
    TRY(get_u32(g, "context_length", false, 2048, &u, err));
    m->n_ctx_train = (int)u;
    if (m->n_embd <= 0 || m->n_embd > 65536 || m->n_layer <= 0 || m->n_layer > 1024 ||
        m->n_head <= 0 || m->n_head > 1024 || m->n_head_kv <= 0 || m->n_head % m->n_head_kv ||
        m->n_ff <= 0 || m->n_ff > 1 << 20 || m->n_ctx_train <= 0) {
        rb_errmsg_set(err, RB_ERR_MODEL, "implausible hyperparameters (embd %d, layers %d, heads "
                      "%d/%d, ff %d)", m->n_embd, m->n_layer, m->n_head, m->n_head_kv, m->n_ff);
        rb__model_free(m);
        return RB_ERR_MODEL;
    }
    TRY(get_u32(g, "attention.key_length", false, (uint32_t)(m->n_embd / m->n_head), &u, err));
    m->head_dim = (int)u;
    uint32_t vlen;
    TRY(get_u32(g, "attention.value_length", false, u, &vlen, err));
    if (m->head_dim <= 0 || m->head_dim > 1024 || (int)vlen != m->head_dim ||
        (m->arch == RB_ARCH_BERT && m->head_dim * m->n_head != m->n_embd)) {
        rb_errmsg_set(err, RB_ERR_UNSUPPORTED, "unsupported head geometry (key %d, value %u)",
                      m->head_dim, vlen);
        rb__model_free(m);
        return RB_ERR_UNSUPPORTED;
    }
    TRY(get_u32(g, "rope.dimension_count", false, (uint32_t)m->head_dim, &u, err));
    m->rope_dim = (int)u;
    if (m->rope_dim > m->head_dim || m->rope_dim % 2) {
        rb_errmsg_set(err, RB_ERR_MODEL, "rope.dimension_count %d invalid", m->rope_dim);
        rb__model_free(m);
        return RB_ERR_MODEL;
    }
    m->rope_base = 10000.0f;
    if (rb_gguf_get_arch_f32(g, "rope.freq_base", &m->rope_base) != RB_OK)
        m->rope_base = 10000.0f;
    {
        struct rb_rope_scaling rs;
        enum rb_status st = rb__rope_scaling_load(g, m->rope_dim, m->rope_base, m->n_ctx_train,
                                                  &rs, err);
        if (st != RB_OK) {
            rb__model_free(m);
            return st;
        }
        m->rope_freq_scale = rs.freq_scale;
        m->rope_ext_factor = rs.ext_factor;
        m->rope_attn_factor = rs.attn_factor;
        m->rope_corr_dims[0] = rs.corr_dims[0];
        m->rope_corr_dims[1] = rs.corr_dims[1];
    }
    m->rope_neox = m->arch == RB_ARCH_QWEN2 || m->arch == RB_ARCH_QWEN3;
    m->eps = 1e-5f;
    if (m->arch == RB_ARCH_BERT) {
        if (rb_gguf_get_arch_f32(g, "attention.layer_norm_epsilon", &m->eps) != RB_OK)
            m->eps = 1e-12f;
        m->causal = false;
        bool c;
        if (rb_gguf_get_bool(g, "bert.attention.causal", &c) == RB_OK)
            m->causal = c;
        TRY(get_u32(g, "pooling_type", false, RB_POOL_CLS, &u, err));
        m->pooling = (enum rb_pooling)u;
        if (u > 3 || u == 0) {
            rb_errmsg_set(err, RB_ERR_UNSUPPORTED, "pooling type %u not supported", u);
            rb__model_free(m);
            return RB_ERR_UNSUPPORTED;
        }
    } else {
        if (rb_gguf_get_arch_f32(g, "attention.layer_norm_rms_epsilon", &m->eps) != RB_OK)
            m->eps = 1e-5f;
        m->causal = true;
    }

    /* embeddings and vocabulary */
    const struct rb_gguf_tensor *te = rb_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2) {
        rb_errmsg_set(err, RB_ERR_MODEL, "missing tensor token_embd.weight");
        rb__model_free(m);
        return RB_ERR_MODEL;
    }
    if (te->ne[1] == 0 || te->ne[1] > (1u << 26)) {
        rb_errmsg_set(err, RB_ERR_MODEL, "token_embd.weight has %llu rows: implausible vocabulary",
                      (unsigned long long)te->ne[1]);
        rb__model_free(m);
        return RB_ERR_MODEL;
    }
    m->n_vocab = (int)te->ne[1];
    const int E = m->n_embd, Q = m->n_head * m->head_dim, KV = m->n_head_kv * m->head_dim;
    TRY(bind_wt(g, "token_embd.weight", true, E, m->n_vocab, &m->tok_embd, err));
    if (m->arch == RB_ARCH_BERT) {
        TRY(bind_wt(g, "position_embd.weight", true, E, 0, &m->pos_embd, err));
        TRY(bind_wt(g, "token_types.weight", false, E, 0, &m->type_embd, err));
        TRY(load_vec(g, "token_embd_norm.weight", true, E, &m->embd_norm, err));
        TRY(load_vec(g, "token_embd_norm.bias", true, E, &m->embd_norm_b, err));
        if (m->pos_embd.ne1 < m->n_ctx_train)
            m->n_ctx_train = (int)m->pos_embd.ne1;
    } else {
        TRY(load_vec(g, "output_norm.weight", true, E, &m->out_norm, err));
        TRY(bind_wt(g, "output.weight", false, E, m->n_vocab, &m->output, err));
        if (!m->output.data)
            m->output = m->tok_embd; /* tied embeddings */
        const struct rb_gguf_tensor *rf = rb_gguf_find_tensor(g, "rope_freqs.weight");
        if (rf)
            TRY(load_vec(g, "rope_freqs.weight", true, m->rope_dim / 2, &m->rope_freqs, err));
    }
    m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers)
        TRY(RB_ERR_NOMEM);
    for (int il = 0; il < m->n_layer; il++) {
        struct rb_layer *L = &m->layers[il];
        char n[96];
#define NM(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
        TRY(bind_wt(g, NM("attn_q.weight"), true, E, Q, &L->wq, err));
        TRY(bind_wt(g, NM("attn_k.weight"), true, E, KV, &L->wk, err));
        TRY(bind_wt(g, NM("attn_v.weight"), true, E, KV, &L->wv, err));
        TRY(bind_wt(g, NM("attn_output.weight"), true, Q, E, &L->wo, err));
        TRY(bind_wt(g, NM("ffn_up.weight"), true, E, m->n_ff, &L->up, err));
        TRY(bind_wt(g, NM("ffn_down.weight"), true, m->n_ff, E, &L->down, err));
        TRY(load_vec(g, NM("attn_q.bias"), false, Q, &L->bq, err));
        TRY(load_vec(g, NM("attn_k.bias"), false, KV, &L->bk, err));
        TRY(load_vec(g, NM("attn_v.bias"), false, KV, &L->bv, err));
        TRY(load_vec(g, NM("attn_output.bias"), false, E, &L->bo, err));
        TRY(load_vec(g, NM("ffn_up.bias"), false, m->n_ff, &L->b_up, err));
        TRY(load_vec(g, NM("ffn_down.bias"), false, E, &L->b_down, err));
        if (m->arch == RB_ARCH_BERT) {
            TRY(load_vec(g, NM("attn_output_norm.weight"), true, E, &L->attn_norm, err));
            TRY(load_vec(g, NM("attn_output_norm.bias"), true, E, &L->attn_norm_b, err));
            TRY(load_vec(g, NM("layer_output_norm.weight"), true, E, &L->ffn_norm, err));
            TRY(load_vec(g, NM("layer_output_norm.bias"), true, E, &L->ffn_norm_b, err));
        } else {
            TRY(bind_wt(g, NM("ffn_gate.weight"), true, E, m->n_ff, &L->gate, err));
            TRY(load_vec(g, NM("attn_norm.weight"), true, E, &L->attn_norm, err));
            TRY(load_vec(g, NM("ffn_norm.weight"), true, E, &L->ffn_norm, err));
            if (m->arch == RB_ARCH_QWEN3) {
                TRY(load_vec(g, NM("attn_q_norm.weight"), true, m->head_dim, &L->q_norm, err));
                TRY(load_vec(g, NM("attn_k_norm.weight"), true, m->head_dim, &L->k_norm, err));
            }
        }
#undef NM
    }
    /* special tokens */
    m->bos_id = -1;
    uint32_t id;
    if (rb_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id) == RB_OK && id < (uint32_t)m->n_vocab)
        m->bos_id = (int32_t)id;
    if (rb_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id) == RB_OK)
        add_eos(m, id);
    if (rb_gguf_get_u32(g, "tokenizer.ggml.eot_token_id", &id) == RB_OK)
        add_eos(m, id);
    if (rb_gguf_get_u32(g, "tokenizer.ggml.eom_token_id", &id) == RB_OK)
        add_eos(m, id);
    const struct rb_gguf_kv *toks = NULL, *ttype = NULL;
    if (rb_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) == RB_OK &&
        toks->arr_type == RB_GGUF_TYPE_STRING) {
        if (rb_gguf_get_arr(g, "tokenizer.ggml.token_type", &ttype) != RB_OK)
            ttype = NULL;
        for (uint64_t i = 0; i < toks->n && i < (uint64_t)m->n_vocab; i++) {
            const bool control = ttype && ttype->n == toks->n && rb_gguf_arr_i64(ttype, i) == 3;
            if (control && name_is_eog(toks->strs[i].ptr, toks->strs[i].len))
                add_eos(m, (int64_t)i);
        }
    }
    TRY(check_all_tensors_used(g, m, err));
    TRY(rb__pool_create(n_threads, &m->pool));
    *out = m;
    return RB_OK;
}
#undef TRY

void rb__model_free(struct rb__model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int il = 0; il < m->n_layer; il++) {
            struct rb_layer *L = &m->layers[il];
            free(L->bq);
            free(L->bk);
            free(L->bv);
            free(L->bo);
            free(L->b_up);
            free(L->b_down);
            free(L->attn_norm);
            free(L->attn_norm_b);
            free(L->ffn_norm);
            free(L->ffn_norm_b);
            free(L->q_norm);
            free(L->k_norm);
        }
        free(m->layers);
    }
    free(m->rope_freqs);
    free(m->embd_norm);
    free(m->embd_norm_b);
    free(m->out_norm);
    rb__pool_free(m->pool);
    ws_free(m->ws);
    free(m);
}

enum rb_status rb__kv_create(const struct rb__model *m, int n_ctx, struct rb__kv **out)
{
    *out = NULL;
    if (n_ctx <= 0)
        return RB_ERR_INVALID;
    struct rb__kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        return RB_ERR_NOMEM;
    size_t n;
    if (!rb_size_mul((size_t)m->n_layer * n_ctx, (size_t)m->n_head_kv * m->head_dim, &n)) {
        free(kv);
        return RB_ERR_TOO_LARGE;
    }
    kv->n_ctx = n_ctx;
    kv->k = malloc(n * sizeof(rb_half));
    kv->v = malloc(n * sizeof(rb_half));
    if (!kv->k || !kv->v) {
        rb__kv_free(kv);
        return RB_ERR_NOMEM;
    }
    *out = kv;
    return RB_OK;
}

void rb__kv_free(struct rb__kv *kv)
{
    if (!kv)
        return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

/* ============================================================ building blocks */

static void rms_norm(float *y, const float *x, const float *w, int n, float eps)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(s / n) + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static void layer_norm(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    const float mean = (float)(s / n);
    double v = 0;
    for (int i = 0; i < n; i++)
        v += (double)(x[i] - mean) * (x[i] - mean);
    const float scale = 1.0f / sqrtf((float)(v / n) + eps);
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - mean) * scale * w[i] + (b ? b[i] : 0.0f);
}

/* out (n_tok x w->ne1) = x (n_tok x w->ne0) . W^T, activations quantized once. */
/* Activation quantization for up to 3 formats, tokens split over the pool. */
struct quant_job {
    const float *x;
    int64_t n; /* elements per row */
    int n_tok, n_fmt;
    const struct rb_type_ops *ops[3];
    uint8_t *dst[3];
    size_t arow[3];
    atomic_int next;
};

static void quant_worker(void *ctx, int ith, int nth)
{
    (void)ith;
    (void)nth;
    struct quant_job *j = ctx;
    for (;;) {
        const int t0 = atomic_fetch_add_explicit(&j->next, 8, memory_order_relaxed);
        if (t0 >= j->n_tok)
            return;
        const int t1 = t0 + 8 < j->n_tok ? t0 + 8 : j->n_tok;
        for (int t = t0; t < t1; t++)
            for (int f = 0; f < j->n_fmt; f++)
                j->ops[f]->quantize_act(j->x + (size_t)t * j->n, j->dst[f] + (size_t)t * j->arow[f],
                                        j->n);
    }
}

/* out_i (n_tok x w_i->ne1) = x (n_tok x ne0) . W_i^T (+ bias_i) for n (<= 3) weights with
 * the same input: the input is quantized once per activation format and the matmuls run
 * as one pool job. */
static void mm_multi(struct rb__model *m, int n, const struct rb_wt *const *w, const float *x,
                     int n_tok, float *const *out, const float *const *bias)
{
    struct quant_job qj;
    memset(&qj, 0, sizeof qj);
    qj.x = x;
    qj.n = w[0]->ne0;
    qj.n_tok = n_tok;
    int fmt_of[3];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int f = 0;
        while (f < qj.n_fmt && qj.ops[f]->act_type != w[i]->ops->act_type)
            f++;
        if (f == qj.n_fmt) {
            qj.ops[f] = w[i]->ops;
            qj.arow[f] = rb__act_row_bytes(w[i]->ops, qj.n);
            total += qj.arow[f];
            qj.n_fmt++;
        }
        fmt_of[i] = f;
    }
    if (total > m->ws->actq_row || n > 3) { /* does not fit the buffer: one at a time */
        for (int i = 0; i < n; i++)
            mm_multi(m, 1, &w[i], x, n_tok, &out[i], &bias[i]);
        return;
    }
    size_t off = 0;
    for (int f = 0; f < qj.n_fmt; f++) {
        qj.dst[f] = m->ws->actq + off;
        off += qj.arow[f] * (size_t)n_tok;
    }
    atomic_init(&qj.next, 0);
    if (n_tok >= 16)
        rb__pool_run(m->pool, quant_worker, &qj);
    else
        quant_worker(&qj, 0, 1);
    struct rb_matmul_desc d[3];
    for (int i = 0; i < n; i++) {
        const struct rb_matmul_desc di = {w[i]->ops, w[i]->data, w[i]->row_bytes, w[i]->ne1,
                                          w[i]->ne0, qj.dst[fmt_of[i]], qj.arow[fmt_of[i]], n_tok,
                                          out[i], w[i]->ne1};
        d[i] = di;
    }
    rb__matmul_multi(m->pool, n, d);
    for (int i = 0; i < n; i++)
        if (bias[i])
            for (int t = 0; t < n_tok; t++)
                for (int64_t r = 0; r < w[i]->ne1; r++)
                    out[i][(size_t)t * w[i]->ne1 + r] += bias[i][r];
}

/* out (n_tok x w->ne1) = x (n_tok x w->ne0) . W^T, activations quantized once. */
static void mm(struct rb__model *m, const struct rb_wt *w, const float *x, int n_tok, float *out,
               const float *bias)
{
    mm_multi(m, 1, &w, x, n_tok, &out, &bias);
}

static void rope(const struct rb__model *m, float *x, int n_heads, int pos)
{
    const int nd = m->rope_dim, hd = m->head_dim;
    const float theta_scale = powf(m->rope_base, -2.0f / (float)nd);
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        float theta = (float)pos;
        for (int i = 0; i < nd / 2; i++) {
            float t = theta;
            if (m->rope_freqs)
                t /= m->rope_freqs[i];
            float c, s;
            rb__rope_yarn(t, m->rope_freq_scale, m->rope_corr_dims, i, m->rope_ext_factor,
                          m->rope_attn_factor, &c, &s);
            const int i0 = m->rope_neox ? i : 2 * i;
            const int i1 = m->rope_neox ? i + nd / 2 : 2 * i + 1;
            const float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
            theta *= theta_scale;
        }
    }
}

/* ---- attention over KV caches (decoders) */
struct attn_job {
    struct rb__model *m;
    const struct rb__batch *b;
    int il;
    const float *q; /* (n, n_head*hd) */
    float *out;     /* (n, n_head*hd) */
    const float *kf, *vf; /* encoder: (n, kv_dim) float keys/values of the sequence */
    int n_keys_enc;
    atomic_int next; /* next unclaimed (token, head) task */
};

static void attn_worker(void *ctx, int ith, int nth)
{
    const struct attn_job *j = ctx;
    struct rb__model *m = j->m;
    const int H = m->n_head, hd = m->head_dim, kvd = m->n_head_kv * hd;
    const int group = H / m->n_head_kv;
    const int n = j->b ? j->b->n : j->n_keys_enc;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = m->ws->scores + (size_t)ith * m->ws->cap_keys;
    float *acc = m->ws->vacc + (size_t)ith * hd;
    const struct rb_type_ops *f32 = rb__type_ops(RB_GGML_TYPE_F32);
    (void)nth;
    for (;;) {
        const int task = atomic_fetch_add_explicit(&((struct attn_job *)j)->next, 1,
                                                   memory_order_relaxed);
        if (task >= n * H)
            break;
        const int t = task / H, h = task % H, kh = h / group;
        const float *q = j->q + (size_t)t * H * hd + (size_t)h * hd;
        int n_keys;
        if (j->b) {
            const struct rb__kv *kv = j->b->kv[t];
            n_keys = j->b->pos[t] + 1;
            const size_t base = (size_t)j->il * kv->n_ctx * kvd + (size_t)kh * hd;
            /* Q is rounded to F16 for the K dot, as the reference computes it */
            float qf[1024];
            for (int i = 0; i < hd; i++)
                qf[i] = rb_fp16_to_fp32(rb_fp32_to_fp16(q[i]));
            rb__attn_scores_f16(qf, kv->k + base, (size_t)kvd, n_keys, hd, scale, sc);
        } else {
            n_keys = m->causal ? t + 1 : j->n_keys_enc;
            for (int p = 0; p < n_keys; p++)
                sc[p] = f32->vec_dot(hd, j->kf + (size_t)p * kvd + (size_t)kh * hd, q) * scale;
        }
        float mx = -INFINITY;
        for (int p = 0; p < n_keys; p++)
            mx = sc[p] > mx ? sc[p] : mx;
        double sum = 0;
        for (int p = 0; p < n_keys; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        const float inv = (float)(1.0 / sum);
        memset(acc, 0, (size_t)hd * sizeof(float));
        if (j->b) {
            const struct rb__kv *kv = j->b->kv[t];
            const size_t base = (size_t)j->il * kv->n_ctx * kvd + (size_t)kh * hd;
            for (int p = 0; p < n_keys; p++)
                sc[p] *= inv;
            rb__attn_values_f16(sc, kv->v + base, (size_t)kvd, n_keys, hd, acc);
        } else {
            for (int p = 0; p < n_keys; p++)
                rb__axpy_f32(acc, sc[p] * inv, j->vf + (size_t)p * kvd + (size_t)kh * hd, hd);
        }
        memcpy(j->out + (size_t)t * H * hd + (size_t)h * hd, acc, (size_t)hd * sizeof(float));
    }
}

static void embed_rows(const struct rb_wt *w, const int32_t *tokens, int n, float *x)
{
    for (int t = 0; t < n; t++)
        w->ops->dequant_row((const uint8_t *)w->data + (size_t)tokens[t] * w->row_bytes,
                            x + (size_t)t * w->ne0, w->ne0);
}

void rb__model_matmul(struct rb__model *m, const struct rb_wt *w, const float *act, int n_tok,
                      float *out)
{
    if (ws_reserve(m, n_tok, 1) != RB_OK)
        return;
    mm(m, w, act, n_tok, out, NULL);
}

/* ============================================================ decoder forward */

enum rb_status rb__forward(struct rb__model *m, const struct rb__batch *b)
{
    if (m->arch == RB_ARCH_BERT || b->n <= 0)
        return RB_ERR_INVALID;
    int max_keys = 1;
    for (int t = 0; t < b->n; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= m->n_vocab)
            return RB_ERR_INVALID;
        if (b->pos[t] < 0 || b->pos[t] >= b->kv[t]->n_ctx)
            return RB_ERR_CONTEXT_FULL;
        if (b->pos[t] + 1 > max_keys)
            max_keys = b->pos[t] + 1;
    }
    enum rb_status st = ws_reserve(m, b->n, max_keys);
    if (st != RB_OK)
        return st;
    struct rb__ws *w = m->ws;
    const int n = b->n, E = m->n_embd, H = m->n_head, hd = m->head_dim;
    const int Q = H * hd, KV = m->n_head_kv * hd, F = m->n_ff;
    embed_rows(&m->tok_embd, b->tokens, n, w->x);
    for (int il = 0; il < m->n_layer; il++) {
        const struct rb_layer *L = &m->layers[il];
        for (int t = 0; t < n; t++)
            rms_norm(w->h + (size_t)t * E, w->x + (size_t)t * E, L->attn_norm, E, m->eps);
        {
            const struct rb_wt *ws3[3] = {&L->wq, &L->wk, &L->wv};
            float *outs[3] = {w->q, w->k, w->v};
            const float *bs[3] = {L->bq, L->bk, L->bv};
            mm_multi(m, 3, ws3, w->h, n, outs, bs);
        }
        for (int t = 0; t < n; t++) {
            float *q = w->q + (size_t)t * Q, *k = w->k + (size_t)t * KV;
            if (L->q_norm) {
                for (int h = 0; h < H; h++)
                    rms_norm(q + h * hd, q + h * hd, L->q_norm, hd, m->eps);
                for (int h = 0; h < m->n_head_kv; h++)
                    rms_norm(k + h * hd, k + h * hd, L->k_norm, hd, m->eps);
            }
            rope(m, q, H, b->pos[t]);
            rope(m, k, m->n_head_kv, b->pos[t]);
            struct rb__kv *kv = b->kv[t];
            const size_t off = ((size_t)il * kv->n_ctx + b->pos[t]) * KV;
            for (int i = 0; i < KV; i++) {
                kv->k[off + i] = rb_fp32_to_fp16(k[i]);
                kv->v[off + i] = rb_fp32_to_fp16(w->v[(size_t)t * KV + i]);
            }
        }
        struct attn_job aj = {m, b, il, w->q, w->att, NULL, NULL, 0, 0};
        rb__pool_run(m->pool, attn_worker, &aj);
        mm(m, &L->wo, w->att, n, w->tmp, L->bo);
        for (size_t i = 0; i < (size_t)n * E; i++)
            w->x[i] += w->tmp[i];
        for (int t = 0; t < n; t++)
            rms_norm(w->h + (size_t)t * E, w->x + (size_t)t * E, L->ffn_norm, E, m->eps);
        {
            const struct rb_wt *ws2[2] = {&L->gate, &L->up};
            float *outs[2] = {w->f1, w->f2};
            const float *bs[2] = {NULL, L->b_up};
            mm_multi(m, 2, ws2, w->h, n, outs, bs);
        }
        for (size_t i = 0; i < (size_t)n * F; i++)
            w->f1[i] = rb_silu(w->f1[i]) * w->f2[i];
        mm(m, &L->down, w->f1, n, w->tmp, L->b_down);
        for (size_t i = 0; i < (size_t)n * E; i++)
            w->x[i] += w->tmp[i];
    }
    /* final norm + output projection for the wanted tokens, packed */
    int n_out = 0;
    for (int t = 0; t < n; t++) {
        const bool want = b->want ? b->want[t] : t == n - 1;
        if (!want)
            continue;
        rms_norm(w->h + (size_t)n_out * E, w->x + (size_t)t * E, m->out_norm, E, m->eps);
        n_out++;
    }
    if (n_out > 0 && b->logits) {
        /* the output matrix is the biggest one: chunk tokens so the activation buffer
         * (sized for cap_tok rows) always suffices */
        mm(m, &m->output, w->h, n_out, b->logits, NULL);
    }
    return RB_OK;
}

/* ============================================================ encoder */

enum rb_status rb__encode(struct rb__model *m, const int32_t *tokens, int n, float *out)
{
    if (m->arch != RB_ARCH_BERT || n <= 0)
        return RB_ERR_INVALID;
    if (n > m->n_ctx_train)
        return RB_ERR_CONTEXT_FULL;
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= m->n_vocab)
            return RB_ERR_INVALID;
    enum rb_status st = ws_reserve(m, n, n);
    if (st != RB_OK)
        return st;
    struct rb__ws *w = m->ws;
    const int E = m->n_embd, F = m->n_ff;
    embed_rows(&m->tok_embd, tokens, n, w->x);
    float *row = w->tmp;
    for (int t = 0; t < n; t++) {
        float *x = w->x + (size_t)t * E;
        const int32_t pos = t;
        m->pos_embd.ops->dequant_row((const uint8_t *)m->pos_embd.data +
                                         (size_t)pos * m->pos_embd.row_bytes, row, E);
        for (int i = 0; i < E; i++)
            x[i] += row[i];
        if (m->type_embd.data) {
            m->type_embd.ops->dequant_row(m->type_embd.data, row, E); /* token type 0 */
            for (int i = 0; i < E; i++)
                x[i] += row[i];
        }
        layer_norm(x, x, m->embd_norm, m->embd_norm_b, E, m->eps);
    }
    for (int il = 0; il < m->n_layer; il++) {
        const struct rb_layer *L = &m->layers[il];
        {
            const struct rb_wt *ws3[3] = {&L->wq, &L->wk, &L->wv};
            float *outs[3] = {w->q, w->k, w->v};
            const float *bs[3] = {L->bq, L->bk, L->bv};
            mm_multi(m, 3, ws3, w->x, n, outs, bs);
        }
        struct attn_job aj = {m, NULL, il, w->q, w->att, w->k, w->v, n, 0};
        rb__pool_run(m->pool, attn_worker, &aj);
        mm(m, &L->wo, w->att, n, w->tmp, L->bo);
        for (int t = 0; t < n; t++) {
            float *x = w->x + (size_t)t * E;
            for (int i = 0; i < E; i++)
                x[i] += w->tmp[(size_t)t * E + i];
            layer_norm(x, x, L->attn_norm, L->attn_norm_b, E, m->eps);
        }
        mm(m, &L->up, w->x, n, w->f1, L->b_up);
        for (size_t i = 0; i < (size_t)n * F; i++)
            w->f1[i] = rb_gelu(w->f1[i]);
        mm(m, &L->down, w->f1, n, w->tmp, L->b_down);
        for (int t = 0; t < n; t++) {
            float *x = w->x + (size_t)t * E;
            for (int i = 0; i < E; i++)
                x[i] += w->tmp[(size_t)t * E + i];
            layer_norm(x, x, L->ffn_norm, L->ffn_norm_b, E, m->eps);
        }
    }
    memset(out, 0, (size_t)E * sizeof(float));
    switch (m->pooling) {
    case RB_POOL_MEAN:
        for (int t = 0; t < n; t++)
            for (int i = 0; i < E; i++)
                out[i] += w->x[(size_t)t * E + i] / (float)n;
        break;
    case RB_POOL_LAST:
        memcpy(out, w->x + (size_t)(n - 1) * E, (size_t)E * sizeof(float));
        break;
    default:
        memcpy(out, w->x, (size_t)E * sizeof(float));
        break;
    }
    double s = 0;
    for (int i = 0; i < E; i++)
        s += (double)out[i] * out[i];
    const float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < E; i++)
        out[i] *= inv;
    return RB_OK;
}
