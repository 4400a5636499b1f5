/* The CUDA backend of the engine's model graphs (struct rb_backend_i): the same
 * decoder forward pass as model.c's rb__forward, expressed as calls into the
 * dlopen'ed librb_cuda.so (cuda-api.h), with weights uploaded once in their quantized
 * form and a paged KV cache on the device.
 *
 * KV memory: at init the backend sizes one pool of pages (RB_CUDA_PAGE_TOKENS tokens
 * of every layer's K and V each) from the device memory left after the weights, less
 * a reserve for activations (RAGBOX_CUDA_KV_FRACTION of the free memory, default 0.8).
 * A sequence's cache (kv_create) reserves all the pages its n_ctx needs up front, so a
 * request admitted by the scheduler can never run the device out of memory mid-way;
 * when the pool is exhausted kv_create returns RB_ERR_BUSY and the caller waits.
 *
 * Decode steps (one token per sequence, all logits wanted) are captured into a CUDA
 * graph per batch size and replayed: the inputs (tokens, positions, slots, page
 * tables) live in fixed device buffers that are refreshed before each launch, and the
 * attention call always spans the full page-table width, so the captured launches
 * stay valid.
 *
 * Encoders (BERT) run here too: absolute position and token-type embeddings,
 * post-LayerNorm blocks with GELU, and bidirectional attention over temporary pages
 * (every query sees all n keys); pooling and L2 normalisation happen on the host over
 * the downloaded hidden states, exactly as the CPU encoder does them.
 *
 * Thread-safety: as rb__forward: one caller per model at a time (the public API's
 * model lock).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-cuda.h"
#include "backend.h"
#include "model.h"
#include "ops-block.h"

#define CUDA_GEMM_MIN_TOKENS 16 /* batches at least this large use the cuBLAS GEMM path */
#define CUDA_GRAPH_MAX_BATCH 64

struct cuda_wt {
    void *d;
    uint32_t type;
    int64_t rows, cols;
};

struct cuda_layer {
    struct cuda_wt wq, wk, wv, wo, gate, up, down;
    float *bq, *bk, *bv, *bo, *b_up, *b_down, *attn_norm, *ffn_norm, *q_norm, *k_norm;
    float *attn_norm_b, *ffn_norm_b; /* bert */
    uint16_t *k_pages, *v_pages; /* (n_pages, PAGE, n_head_kv * head_dim) fp16 */
};

struct cuda_model {
    const struct rb_cuda_api *api;
    struct rb_cuda_ctx *ctx;
    struct cuda_wt tok_embd, output, pos_embd, type_embd;
    float *out_norm, *embd_norm, *embd_norm_b;
    float *rope_freqs; /* (rope_dim/2) or NULL */
    struct cuda_layer *layers;
    int n_layer;
    /* page pool */
    int n_pages;
    int *free_pages; /* stack of free page indices */
    int n_free;
    int max_seq_pages; /* page-table width: pages of the longest sequence allowed */
    /* activations, sized for cap_tok tokens */
    int cap_tok;
    float *x, *h, *q, *k, *v, *att, *tmp, *f1, *f2, *logits;
    int32_t *tokens, *pos, *slots, *page_table, *n_keys;
    /* host staging */
    int32_t *h_slots, *h_table, *h_keys;
    /* decode graph */
    int graph_n; /* batch size of the captured graph, 0: none */
    size_t bytes_weights;
};

struct cuda_kv {
    struct rb__kv base; /* k, v unused (NULL): the cache lives in the page pool */
    struct cuda_model *owner;
    int n_pages;
    int *pages;
};

/* ------------------------------------------------------------------ helpers */

#define CK(call)                                                                                   \
    do {                                                                                           \
        int rb_rc_ = (call);                                                                       \
        if (rb_rc_ != 0) {                                                                         \
            RB_WARN("engine", "cuda: %s", cm->api->last_error(cm->ctx));                           \
            return (enum rb_status)rb_rc_;                                                         \
        }                                                                                          \
    } while (0)

static enum rb_status up_bytes(struct cuda_model *cm, const void *src, size_t bytes, void **out)
{
    *out = NULL;
    if (!src)
        return RB_OK;
    CK(cm->api->alloc(cm->ctx, bytes, out));
    CK(cm->api->upload(cm->ctx, *out, src, bytes));
    cm->bytes_weights += bytes;
    return RB_OK;
}

static enum rb_status up_wt(struct cuda_model *cm, const struct rb_wt *w, struct cuda_wt *out)
{
    memset(out, 0, sizeof *out);
    if (!w->data)
        return RB_OK;
    out->type = w->type;
    out->rows = w->ne1;
    out->cols = w->ne0;
    return up_bytes(cm, w->data, w->row_bytes * (size_t)w->ne1, &out->d);
}

static enum rb_status up_vec(struct cuda_model *cm, const float *v, int n, float **out)
{
    return up_bytes(cm, v, sizeof(float) * (size_t)n, (void **)out);
}

static void cuda_free_model(struct cuda_model *cm)
{
    if (!cm)
        return;
    const struct rb_cuda_api *api = cm->api;
    void *bufs[] = {cm->tok_embd.d, cm->output.d, cm->pos_embd.d, cm->type_embd.d,
                    cm->embd_norm, cm->embd_norm_b, cm->out_norm, cm->rope_freqs, cm->x, cm->h, cm->q, cm->k,
                    cm->v, cm->att, cm->tmp, cm->f1, cm->f2, cm->logits, cm->tokens, cm->pos,
                    cm->slots, cm->page_table, cm->n_keys};
    for (size_t i = 0; i < RB_ARRAY_LEN(bufs); i++)
        api->free(cm->ctx, bufs[i]);
    for (int il = 0; cm->layers && il < cm->n_layer; il++) {
        struct cuda_layer *L = &cm->layers[il];
        void *lb[] = {L->wq.d, L->wk.d, L->wv.d, L->wo.d, L->gate.d, L->up.d, L->down.d,
                      L->bq, L->bk, L->bv, L->bo, L->b_up, L->b_down, L->attn_norm,
                      L->ffn_norm, L->q_norm, L->k_norm, L->attn_norm_b, L->ffn_norm_b,
                      L->k_pages, L->v_pages};
        for (size_t i = 0; i < RB_ARRAY_LEN(lb); i++)
            api->free(cm->ctx, lb[i]);
    }
    free(cm->layers);
    free(cm->free_pages);
    free(cm->h_slots);
    free(cm->h_table);
    free(cm->h_keys);
    api->ctx_free(cm->ctx);
    free(cm);
}

/* Grows the activation buffers to hold n tokens. */
static enum rb_status reserve(struct rb__model *m, struct cuda_model *cm, int n)
{
    if (n <= cm->cap_tok)
        return RB_OK;
    int cap = cm->cap_tok ? cm->cap_tok : 64;
    while (cap < n)
        cap *= 2;
    const size_t E = (size_t)m->n_embd, Qd = (size_t)m->n_head * m->head_dim,
                 KV = (size_t)m->n_head_kv * m->head_dim, F = (size_t)m->n_ff,
                 V = (size_t)m->n_vocab;
    float **fbufs[] = {&cm->x, &cm->h, &cm->q, &cm->k, &cm->v, &cm->att, &cm->tmp, &cm->f1, &cm->f2};
    size_t fsz[] = {E, E, Qd, KV, KV, Qd, E, F, F};
    for (size_t i = 0; i < RB_ARRAY_LEN(fbufs); i++) {
        cm->api->free(cm->ctx, *fbufs[i]);
        *fbufs[i] = NULL;
        CK(cm->api->alloc(cm->ctx, sizeof(float) * fsz[i] * cap, (void **)fbufs[i]));
    }
    int32_t **ibufs[] = {&cm->tokens, &cm->pos, &cm->slots, &cm->n_keys};
    for (size_t i = 0; i < RB_ARRAY_LEN(ibufs); i++) {
        cm->api->free(cm->ctx, *ibufs[i]);
        *ibufs[i] = NULL;
        CK(cm->api->alloc(cm->ctx, sizeof(int32_t) * cap, (void **)ibufs[i]));
    }
    cm->api->free(cm->ctx, cm->page_table);
    cm->page_table = NULL;
    CK(cm->api->alloc(cm->ctx, sizeof(int32_t) * (size_t)cap * cm->max_seq_pages,
                      (void **)&cm->page_table));
    cm->api->free(cm->ctx, cm->logits);
    cm->logits = NULL;
    CK(cm->api->alloc(cm->ctx, sizeof(float) * V * cap, (void **)&cm->logits));
    free(cm->h_slots);
    free(cm->h_table);
    free(cm->h_keys);
    cm->h_slots = malloc(sizeof(int32_t) * cap);
    cm->h_table = malloc(sizeof(int32_t) * (size_t)cap * cm->max_seq_pages);
    cm->h_keys = malloc(sizeof(int32_t) * cap);
    if (!cm->h_slots || !cm->h_table || !cm->h_keys)
        return RB_ERR_NOMEM;
    cm->cap_tok = cap;
    cm->graph_n = 0; /* buffers moved: a captured graph is stale */
    return RB_OK;
}

/* ------------------------------------------------------------- init/release */

static enum rb_status cuda_init(struct rb__model *m)
{
    int n_dev = 0;
    const char *why = NULL;
    const struct rb_cuda_api *api = rb__cuda_backend(&n_dev, &why);
    if (!api || n_dev == 0)
        return RB_ERR_UNSUPPORTED;
    if (m->head_dim > 256)
        return RB_ERR_UNSUPPORTED; /* stays on the CPU (see the file comment) */
    if (m->rope_ext_factor != 0.0f || m->rope_attn_factor != 1.0f) {
        RB_WARN("engine", "cuda: YaRN rope scaling is computed on the CPU only");
        return RB_ERR_UNSUPPORTED;
    }
    struct cuda_model *cm = calloc(1, sizeof *cm);
    if (!cm)
        return RB_ERR_NOMEM;
    cm->api = api;
    char err[512] = "";
    if (api->ctx_create(0, &cm->ctx, err, sizeof err) != 0) {
        RB_WARN("engine", "cuda: %s", err);
        free(cm);
        return RB_ERR_UNSUPPORTED;
    }
    cm->n_layer = m->n_layer;
    cm->layers = calloc((size_t)m->n_layer, sizeof *cm->layers);
    enum rb_status st = cm->layers ? RB_OK : RB_ERR_NOMEM;
    const int E = m->n_embd, Qd = m->n_head * m->head_dim, KV = m->n_head_kv * m->head_dim;
    if (st == RB_OK)
        st = up_wt(cm, &m->tok_embd, &cm->tok_embd);
    if (st == RB_OK)
        st = up_wt(cm, &m->output, &cm->output);
    if (st == RB_OK)
        st = up_vec(cm, m->out_norm, E, &cm->out_norm);
    if (st == RB_OK)
        st = up_vec(cm, m->rope_freqs, m->rope_dim / 2, &cm->rope_freqs);
    if (st == RB_OK)
        st = up_wt(cm, &m->pos_embd, &cm->pos_embd);
    if (st == RB_OK)
        st = up_wt(cm, &m->type_embd, &cm->type_embd);
    if (st == RB_OK)
        st = up_vec(cm, m->embd_norm, E, &cm->embd_norm);
    if (st == RB_OK)
        st = up_vec(cm, m->embd_norm_b, E, &cm->embd_norm_b);
    for (int il = 0; st == RB_OK && il < m->n_layer; il++) {
        const struct rb_layer *L = &m->layers[il];
        struct cuda_layer *C = &cm->layers[il];
        const struct rb_wt *src[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        struct cuda_wt *dst[] = {&C->wq, &C->wk, &C->wv, &C->wo, &C->gate, &C->up, &C->down};
        for (size_t i = 0; st == RB_OK && i < RB_ARRAY_LEN(src); i++)
            st = up_wt(cm, src[i], dst[i]);
        if (st == RB_OK)
            st = up_vec(cm, L->bq, Qd, &C->bq);
        if (st == RB_OK)
            st = up_vec(cm, L->bk, KV, &C->bk);
        if (st == RB_OK)
            st = up_vec(cm, L->bv, KV, &C->bv);
        if (st == RB_OK)
            st = up_vec(cm, L->bo, E, &C->bo);
        if (st == RB_OK)
            st = up_vec(cm, L->b_up, m->n_ff, &C->b_up);
        if (st == RB_OK)
            st = up_vec(cm, L->b_down, E, &C->b_down);
        if (st == RB_OK)
            st = up_vec(cm, L->attn_norm, E, &C->attn_norm);
        if (st == RB_OK)
            st = up_vec(cm, L->ffn_norm, E, &C->ffn_norm);
        if (st == RB_OK)
            st = up_vec(cm, L->q_norm, m->head_dim, &C->q_norm);
        if (st == RB_OK)
            st = up_vec(cm, L->k_norm, m->head_dim, &C->k_norm);
        if (st == RB_OK)
            st = up_vec(cm, L->attn_norm_b, E, &C->attn_norm_b);
        if (st == RB_OK)
            st = up_vec(cm, L->ffn_norm_b, E, &C->ffn_norm_b);
    }
    /* KV page pool from what is left */
    if (st == RB_OK) {
        struct rb_cuda_device_info info;
        double frac = 0.8;
        const char *env = getenv("RAGBOX_CUDA_KV_FRACTION");
        if (env && rb_parse_double(env, &frac) != RB_OK)
            frac = 0.8;
        if (frac <= 0 || frac > 0.95)
            frac = 0.8;
        size_t page_bytes = (size_t)RB_CUDA_PAGE_TOKENS * KV * 2 /* fp16 */;
        size_t free_bytes = api->device_info(0, &info) == 0 ? info.free_bytes : 0;
        size_t per_page_all_layers = page_bytes * 2 * (size_t)m->n_layer;
        cm->n_pages = (int)RB_MIN((double)free_bytes * frac / (double)per_page_all_layers, 1 << 20);
        cm->max_seq_pages = (m->n_ctx_train + RB_CUDA_PAGE_TOKENS - 1) / RB_CUDA_PAGE_TOKENS;
        if (cm->max_seq_pages > 4096)
            cm->max_seq_pages = 4096; /* 64k tokens per sequence */
        if (cm->n_pages < 1) {
            RB_WARN("engine", "cuda: no device memory left for a KV cache after %zu bytes of "
                    "weights", cm->bytes_weights);
            st = RB_ERR_NOMEM;
        }
        for (int il = 0; st == RB_OK && il < m->n_layer; il++) {
            struct cuda_layer *C = &cm->layers[il];
            if (api->alloc(cm->ctx, page_bytes * cm->n_pages, (void **)&C->k_pages) != 0 ||
                api->alloc(cm->ctx, page_bytes * cm->n_pages, (void **)&C->v_pages) != 0)
                st = RB_ERR_NOMEM;
        }
        cm->free_pages = st == RB_OK ? malloc(sizeof(int) * (size_t)cm->n_pages) : NULL;
        if (st == RB_OK && !cm->free_pages)
            st = RB_ERR_NOMEM;
        for (int i = 0; st == RB_OK && i < cm->n_pages; i++)
            cm->free_pages[i] = cm->n_pages - 1 - i;
        cm->n_free = cm->n_pages;
    }
    if (st == RB_OK)
        st = reserve(m, cm, 64);
    if (st != RB_OK) {
        RB_WARN("engine", "cuda: cannot place the model on the GPU (%s): using the CPU",
                rb_status_str(st));
        cuda_free_model(cm);
        return st;
    }
    RB_INFO("engine", "cuda: weights %.1f MiB on the GPU, KV pool %d pages of %d tokens",
            (double)cm->bytes_weights / (1 << 20), cm->n_pages, RB_CUDA_PAGE_TOKENS);
    m->backend_state = cm;
    return RB_OK;
}

static void cuda_release(struct rb__model *m)
{
    cuda_free_model(m->backend_state);
    m->backend_state = NULL;
}

/* ------------------------------------------------------------------ KV cache */

static enum rb_status cuda_kv_create(const struct rb__model *m, int n_ctx, struct rb__kv **out)
{
    *out = NULL;
    struct cuda_model *cm = m->backend_state;
    int need = (n_ctx + RB_CUDA_PAGE_TOKENS - 1) / RB_CUDA_PAGE_TOKENS;
    if (n_ctx <= 0 || need > cm->max_seq_pages)
        return RB_ERR_CONTEXT_FULL;
    if (need > cm->n_free)
        return RB_ERR_BUSY; /* admission: wait for a sequence to finish */
    struct cuda_kv *kv = calloc(1, sizeof *kv);
    int *pages = malloc(sizeof(int) * (size_t)need);
    if (!kv || !pages) {
        free(kv);
        free(pages);
        return RB_ERR_NOMEM;
    }
    for (int i = 0; i < need; i++)
        pages[i] = cm->free_pages[--cm->n_free];
    kv->base.n_ctx = n_ctx;
    kv->owner = cm;
    kv->n_pages = need;
    kv->pages = pages;
    *out = &kv->base;
    return RB_OK;
}

static void cuda_kv_free(struct rb__kv *base)
{
    if (!base)
        return;
    struct cuda_kv *kv = (struct cuda_kv *)base;
    for (int i = 0; i < kv->n_pages; i++)
        kv->owner->free_pages[kv->owner->n_free++] = kv->pages[i];
    free(kv->pages);
    free(kv);
}

/* ------------------------------------------------------------------ forward */

static enum rb_status mm(struct cuda_model *cm, const struct cuda_wt *w, const float *x, int n,
                         float *y, const float *bias)
{
    if (n >= CUDA_GEMM_MIN_TOKENS)
        CK(cm->api->gemm(cm->ctx, w->type, w->d, w->rows, w->cols, x, n, y));
    else
        CK(cm->api->matvec(cm->ctx, w->type, w->d, w->rows, w->cols, x, n, y));
    if (bias)
        CK(cm->api->add_bias(cm->ctx, y, bias, n, (int)w->rows));
    return RB_OK;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        enum rb_status rb_t_ = (expr);                                                             \
        if (rb_t_ != RB_OK)                                                                        \
            return rb_t_;                                                                          \
    } while (0)

/* Everything between uploading the inputs and the logits: the part a decode graph
 * captures. Writes logits for rows [0, n_out) of the output (wanted tokens packed). */
static enum rb_status run_layers(struct rb__model *m, struct cuda_model *cm, int n,
                                 const int *out_rows, int n_out)
{
    const struct rb_cuda_api *api = cm->api;
    const int E = m->n_embd, H = m->n_head, hd = m->head_dim, KV = m->n_head_kv * hd;
    const int mode = m->rope_neox ? RB_ROPE_NEOX : RB_ROPE_NORMAL;
    CK(api->get_rows(cm->ctx, cm->tok_embd.type, cm->tok_embd.d, E, cm->tokens, n, cm->x));
    for (int il = 0; il < m->n_layer; il++) {
        const struct cuda_layer *L = &cm->layers[il];
        CK(api->rmsnorm(cm->ctx, cm->x, L->attn_norm, cm->h, n, E, m->eps));
        TRY(mm(cm, &L->wq, cm->h, n, cm->q, L->bq));
        TRY(mm(cm, &L->wk, cm->h, n, cm->k, L->bk));
        TRY(mm(cm, &L->wv, cm->h, n, cm->v, L->bv));
        if (L->q_norm) { /* qwen3: RMS norm per head */
            CK(api->rmsnorm(cm->ctx, cm->q, L->q_norm, cm->q, n * H, hd, m->eps));
            CK(api->rmsnorm(cm->ctx, cm->k, L->k_norm, cm->k, n * m->n_head_kv, hd, m->eps));
        }
        CK(api->rope(cm->ctx, cm->q, cm->pos, n, H, hd, m->rope_dim, mode, m->rope_base,
                     m->rope_freq_scale, cm->rope_freqs));
        CK(api->rope(cm->ctx, cm->k, cm->pos, n, m->n_head_kv, hd, m->rope_dim, mode,
                     m->rope_base, m->rope_freq_scale, cm->rope_freqs));
        CK(api->kv_store(cm->ctx, L->k_pages, L->v_pages, cm->k, cm->v, cm->slots, n, KV));
        struct rb_cuda_attn_args a = {cm->q,       cm->att,     L->k_pages,
                                      L->v_pages,  cm->page_table, cm->n_keys,
                                      n,           H,           m->n_head_kv,
                                      hd,          cm->max_seq_pages, 1.0f / sqrtf((float)hd)};
        CK(api->attention(cm->ctx, &a));
        TRY(mm(cm, &L->wo, cm->att, n, cm->tmp, L->bo));
        CK(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
        CK(api->rmsnorm(cm->ctx, cm->x, L->ffn_norm, cm->h, n, E, m->eps));
        TRY(mm(cm, &L->gate, cm->h, n, cm->f1, NULL));
        TRY(mm(cm, &L->up, cm->h, n, cm->f2, L->b_up));
        CK(api->swiglu(cm->ctx, cm->f1, cm->f2, cm->f1, (int64_t)n * m->n_ff));
        TRY(mm(cm, &L->down, cm->f1, n, cm->tmp, L->b_down));
        CK(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
    }
    CK(api->rmsnorm(cm->ctx, cm->x, cm->out_norm, cm->h, n, E, m->eps));
    const struct cuda_wt *out = cm->output.d ? &cm->output : &cm->tok_embd;
    if (n_out == n && out_rows == NULL) {
        TRY(mm(cm, out, cm->h, n, cm->logits, NULL));
    } else {
        for (int k = 0; k < n_out; k++)
            TRY(mm(cm, out, cm->h + (size_t)out_rows[k] * E, 1,
                   cm->logits + (size_t)k * m->n_vocab, NULL));
    }
    return RB_OK;
}

static enum rb_status cuda_forward(struct rb__model *m, const struct rb__batch *b)
{
    struct cuda_model *cm = m->backend_state;
    const struct rb_cuda_api *api = cm->api;
    if (b->n <= 0)
        return RB_ERR_INVALID;
    const int n = b->n;
    TRY(reserve(m, cm, n));
    int *out_rows = malloc(sizeof(int) * (size_t)n);
    if (!out_rows)
        return RB_ERR_NOMEM;
    int n_out = 0;
    bool all_wanted = b->want != NULL, distinct = true;
    for (int t = 0; t < n; t++) {
        const struct cuda_kv *kv = (const struct cuda_kv *)b->kv[t];
        if (b->tokens[t] < 0 || b->tokens[t] >= m->n_vocab) {
            free(out_rows);
            return RB_ERR_INVALID;
        }
        if (b->pos[t] < 0 || b->pos[t] >= kv->base.n_ctx) {
            free(out_rows);
            return RB_ERR_CONTEXT_FULL;
        }
        int page = kv->pages[b->pos[t] / RB_CUDA_PAGE_TOKENS];
        cm->h_slots[t] = page * RB_CUDA_PAGE_TOKENS + b->pos[t] % RB_CUDA_PAGE_TOKENS;
        cm->h_keys[t] = b->pos[t] + 1;
        int32_t *row = cm->h_table + (size_t)t * cm->max_seq_pages;
        for (int p = 0; p < cm->max_seq_pages; p++)
            row[p] = p < kv->n_pages ? kv->pages[p] : 0;
        bool want = b->want ? b->want[t] : t == n - 1;
        if (want)
            out_rows[n_out++] = t;
        else
            all_wanted = false;
        for (int u = 0; u < t && distinct; u++)
            distinct = b->kv[u] != b->kv[t];
    }
    enum rb_status st = RB_OK;
    int rc = api->upload(cm->ctx, cm->tokens, b->tokens, sizeof(int32_t) * n);
    if (!rc)
        rc = api->upload(cm->ctx, cm->pos, b->pos, sizeof(int32_t) * n);
    if (!rc)
        rc = api->upload(cm->ctx, cm->slots, cm->h_slots, sizeof(int32_t) * n);
    if (!rc)
        rc = api->upload(cm->ctx, cm->n_keys, cm->h_keys, sizeof(int32_t) * n);
    if (!rc)
        rc = api->upload(cm->ctx, cm->page_table, cm->h_table,
                         sizeof(int32_t) * (size_t)n * cm->max_seq_pages);
    if (rc) {
        free(out_rows);
        RB_WARN("engine", "cuda: %s", api->last_error(cm->ctx));
        return (enum rb_status)rc;
    }
    /* A decode step (one token per sequence, every logit wanted) replays a captured
     * graph for this batch size; the first step of a size runs eagerly (sizing every
     * scratch buffer) and then captures. */
    bool decode = all_wanted && distinct && n <= CUDA_GRAPH_MAX_BATCH &&
                  n < CUDA_GEMM_MIN_TOKENS && !getenv("RAGBOX_CUDA_NO_GRAPHS");
    if (decode && cm->graph_n == n) {
        rc = api->graph_launch(cm->ctx);
        if (rc)
            st = (enum rb_status)rc;
    } else {
        st = run_layers(m, cm, n, all_wanted ? NULL : out_rows, n_out);
        if (st == RB_OK && decode) {
            cm->graph_n = 0;
            if (api->graph_begin(cm->ctx) == 0) {
                enum rb_status cap = run_layers(m, cm, n, NULL, n);
                if (api->graph_end(cm->ctx) == 0 && cap == RB_OK)
                    cm->graph_n = n;
            }
        }
    }
    if (st == RB_OK && b->logits && n_out > 0) {
        rc = api->download(cm->ctx, b->logits, cm->logits,
                           sizeof(float) * (size_t)n_out * m->n_vocab);
        if (rc)
            st = (enum rb_status)rc;
    }
    if (st != RB_OK)
        RB_WARN("engine", "cuda forward: %s", api->last_error(cm->ctx));
    free(out_rows);
    return st;
}

/* ------------------------------------------------------------------ encoder */

static enum rb_status cuda_encode(struct rb__model *m, const int32_t *tokens, int n, float *out)
{
    struct cuda_model *cm = m->backend_state;
    const struct rb_cuda_api *api = cm->api;
    if (m->arch != RB_ARCH_BERT || n <= 0)
        return RB_ERR_INVALID;
    if (n > m->n_ctx_train)
        return RB_ERR_CONTEXT_FULL;
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= m->n_vocab)
            return RB_ERR_INVALID;
    TRY(reserve(m, cm, n));
    /* temporary pages for this sequence's keys and values */
    struct rb__kv *kvb;
    TRY(cuda_kv_create(m, n, &kvb));
    struct cuda_kv *kv = (struct cuda_kv *)kvb;
    const int E = m->n_embd, H = m->n_head, hd = m->head_dim, KV = m->n_head_kv * hd;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    float *hidden = malloc(sizeof(float) * (size_t)n * E);
    enum rb_status st = ids && hidden ? RB_OK : RB_ERR_NOMEM;
    for (int t = 0; st == RB_OK && t < n; t++) {
        ids[t] = t; /* positions */
        cm->h_slots[t] = kv->pages[t / RB_CUDA_PAGE_TOKENS] * RB_CUDA_PAGE_TOKENS +
                         t % RB_CUDA_PAGE_TOKENS;
        cm->h_keys[t] = n; /* bidirectional: every key is visible */
        int32_t *row = cm->h_table + (size_t)t * cm->max_seq_pages;
        for (int p = 0; p < cm->max_seq_pages; p++)
            row[p] = p < kv->n_pages ? kv->pages[p] : 0;
    }
    int rc = st == RB_OK ? api->upload(cm->ctx, cm->tokens, tokens, sizeof(int32_t) * n) : 0;
    if (!rc && st == RB_OK)
        rc = api->upload(cm->ctx, cm->pos, ids, sizeof(int32_t) * n);
    if (!rc && st == RB_OK)
        rc = api->upload(cm->ctx, cm->slots, cm->h_slots, sizeof(int32_t) * n);
    if (!rc && st == RB_OK)
        rc = api->upload(cm->ctx, cm->n_keys, cm->h_keys, sizeof(int32_t) * n);
    if (!rc && st == RB_OK)
        rc = api->upload(cm->ctx, cm->page_table, cm->h_table,
                         sizeof(int32_t) * (size_t)n * cm->max_seq_pages);
    if (rc)
        st = (enum rb_status)rc;
#define ENC(call)                                                                                  \
    do {                                                                                           \
        if (st == RB_OK) {                                                                         \
            int rb_e_ = (call);                                                                    \
            if (rb_e_)                                                                             \
                st = (enum rb_status)rb_e_;                                                        \
        }                                                                                          \
    } while (0)
#define ENC_MM(w, x, y, b)                                                                         \
    do {                                                                                           \
        if (st == RB_OK)                                                                           \
            st = mm(cm, (w), (x), n, (y), (b));                                                    \
    } while (0)
    /* embeddings: token + absolute position (+ token type 0), then LayerNorm */
    ENC(api->get_rows(cm->ctx, cm->tok_embd.type, cm->tok_embd.d, E, cm->tokens, n, cm->x));
    ENC(api->get_rows(cm->ctx, cm->pos_embd.type, cm->pos_embd.d, E, cm->pos, n, cm->tmp));
    ENC(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
    if (cm->type_embd.d) {
        for (int t = 0; st == RB_OK && t < n; t++)
            ids[t] = 0;
        ENC(api->upload(cm->ctx, cm->pos, ids, sizeof(int32_t) * n));
        ENC(api->get_rows(cm->ctx, cm->type_embd.type, cm->type_embd.d, E, cm->pos, n, cm->tmp));
        ENC(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
    }
    ENC(api->layernorm(cm->ctx, cm->x, cm->embd_norm, cm->embd_norm_b, cm->x, n, E, m->eps));
    for (int il = 0; st == RB_OK && il < m->n_layer; il++) {
        const struct cuda_layer *L = &cm->layers[il];
        ENC_MM(&L->wq, cm->x, cm->q, L->bq);
        ENC_MM(&L->wk, cm->x, cm->k, L->bk);
        ENC_MM(&L->wv, cm->x, cm->v, L->bv);
        ENC(api->kv_store(cm->ctx, L->k_pages, L->v_pages, cm->k, cm->v, cm->slots, n, KV));
        struct rb_cuda_attn_args a = {cm->q,          cm->att,    L->k_pages,
                                      L->v_pages,     cm->page_table, cm->n_keys,
                                      n,              H,          m->n_head_kv,
                                      hd,             cm->max_seq_pages, 1.0f / sqrtf((float)hd)};
        ENC(api->attention(cm->ctx, &a));
        ENC_MM(&L->wo, cm->att, cm->tmp, L->bo);
        ENC(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
        ENC(api->layernorm(cm->ctx, cm->x, L->attn_norm, L->attn_norm_b, cm->x, n, E, m->eps));
        ENC_MM(&L->up, cm->x, cm->f1, L->b_up);
        ENC(api->gelu(cm->ctx, cm->f1, (int64_t)n * m->n_ff));
        ENC_MM(&L->down, cm->f1, cm->tmp, L->b_down);
        ENC(api->add(cm->ctx, cm->x, cm->tmp, (int64_t)n * E));
        ENC(api->layernorm(cm->ctx, cm->x, L->ffn_norm, L->ffn_norm_b, cm->x, n, E, m->eps));
    }
    ENC(api->download(cm->ctx, hidden, cm->x, sizeof(float) * (size_t)n * E));
#undef ENC
#undef ENC_MM
    if (st == RB_OK) {
        /* pooling and L2 normalisation, as rb__encode */
        memset(out, 0, sizeof(float) * (size_t)E);
        if (m->pooling == RB_POOL_MEAN) {
            for (int t = 0; t < n; t++)
                for (int i = 0; i < E; i++)
                    out[i] += hidden[(size_t)t * E + i] / (float)n;
        } else if (m->pooling == RB_POOL_LAST) {
            memcpy(out, hidden + (size_t)(n - 1) * E, sizeof(float) * (size_t)E);
        } else {
            memcpy(out, hidden, sizeof(float) * (size_t)E);
        }
        double ss = 0;
        for (int i = 0; i < E; i++)
            ss += (double)out[i] * out[i];
        const float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int i = 0; i < E; i++)
            out[i] *= inv;
    } else {
        RB_WARN("engine", "cuda encode: %s", api->last_error(cm->ctx));
    }
    cuda_kv_free(kvb);
    free(ids);
    free(hidden);
    return st;
}

static void cuda_matmul(struct rb__model *m, const struct rb_wt *w, const float *act, int n_tok,
                        float *out)
{
    /* Single-matrix products are a CPU-side utility (tests, quantization checks). */
    rb__model_matmul(m, w, act, n_tok, out);
}

static const struct rb_backend_i cuda_backend = {
    .name = "cuda",
    .init = cuda_init,
    .release = cuda_release,
    .kv_create = cuda_kv_create,
    .kv_free = cuda_kv_free,
    .forward = cuda_forward,
    .encode = cuda_encode,
    .matmul = cuda_matmul,
};

const struct rb_backend_i *rb__backend_cuda(void)
{
    return &cuda_backend;
}
