/* Model graphs (engine-private): weights bound from a GGUF file, the forward pass over a
 * batch of tokens (each with its own sequence KV cache and position), KV caches.
 *
 * Architectures: llama (llama, SmolLM, TinyLlama...; GQA; tied output), qwen2 (QKV
 * bias), qwen3 (per-head q/k RMS norm), bert (absolute positions, LayerNorm, GELU,
 * pooled embeddings). Weights stay in the GGUF mapping (zero copy); only small vectors
 * (norm weights, biases) are converted to float at load.
 *
 * Thread-safety: a struct rb__model is immutable after load. rb__forward uses the
 * model's workspace and pool: one caller at a time (the public API holds a lock).
 */
#ifndef RAGBOX_ENGINE_MODEL_H
#define RAGBOX_ENGINE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "kernels.h"
#include "quant-block.h"

enum rb_arch { RB_ARCH_LLAMA = 1, RB_ARCH_QWEN2, RB_ARCH_QWEN3, RB_ARCH_BERT };
enum rb_pooling { RB_POOL_NONE = 0, RB_POOL_MEAN = 1, RB_POOL_CLS = 2, RB_POOL_LAST = 3 };

/* A 2-D weight matrix in the mapping: ne1 rows of ne0 elements. */
struct rb_wt {
    const void *data; /* NULL: absent */
    uint32_t type;
    int64_t ne0, ne1;
    size_t row_bytes;
    const struct rb_type_ops *ops;
};

struct rb_layer {
    struct rb_wt wq, wk, wv, wo, gate, up, down;
    float *bq, *bk, *bv, *bo, *b_up, *b_down; /* (rows) or NULL */
    float *attn_norm, *attn_norm_b;           /* llama: pre-attention RMS; bert: post-attn LN */
    float *ffn_norm, *ffn_norm_b;             /* llama: pre-FFN RMS; bert: layer output LN */
    float *q_norm, *k_norm;                   /* qwen3: (head_dim) */
};

struct rb__model {
    enum rb_arch arch;
    char arch_name[32];
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    int rope_dim;     /* rotated dimensions per head */
    bool rope_neox;   /* rotate pairs (i, i + d/2) instead of (2i, 2i+1) */
    float rope_base, rope_freq_scale;
    float rope_ext_factor, rope_attn_factor, rope_corr_dims[2]; /* YaRN (rope-scaling.h) */
    float *rope_freqs; /* (rope_dim/2) frequency divisors (llama3) or NULL */
    float eps;
    bool causal;
    enum rb_pooling pooling;
    struct rb_wt tok_embd, pos_embd, type_embd, output;
    float *embd_norm, *embd_norm_b; /* bert */
    float *out_norm;                /* decoders */
    struct rb_layer *layers;
    int32_t eos_ids[8];             /* end-of-generation tokens */
    int n_eos;
    int32_t bos_id;                 /* -1 if none */
    bool add_bos;
    struct rb_pool *pool;
    struct rb__ws *ws; /* forward scratch (grown on demand) */
    void *backend_state; /* owned by the backend whose init() succeeded (GPU copies) */
};

/* One sequence's KV cache: (n_layer, n_ctx, n_head_kv * head_dim) F16 for K and V. */
struct rb__kv {
    int n_ctx;
    int n_past; /* positions filled */
    rb_half *k, *v;
};

RB_NODISCARD enum rb_status rb__model_load(const struct rb_gguf *g, int n_threads,
                                           struct rb__model **out, struct rb_errmsg *err);
void rb__model_free(struct rb__model *m);

RB_NODISCARD enum rb_status rb__kv_create(const struct rb__model *m, int n_ctx,
                                          struct rb__kv **out);
void rb__kv_free(struct rb__kv *kv);

/* A batch: n tokens; token i is at position pos[i] of sequence kv[i] (decoders). Logits
 * (n_vocab floats each) are written for tokens with want[i] (want NULL: last token only)
 * to logits[k * n_vocab] for the k-th wanted token. Caches get the new K/V; the caller
 * updates kv->n_past. Positions must be < kv->n_ctx. */
struct rb__batch {
    int n;
    const int32_t *tokens;
    const int *pos;
    struct rb__kv *const *kv;
    const bool *want;
    float *logits;
};
RB_NODISCARD enum rb_status rb__forward(struct rb__model *m, const struct rb__batch *b);

/* out (n_tok x w->ne1) = act (n_tok x w->ne0) . W^T (activations quantized as the weight
 * type needs, rows split over the model's pool). */
void rb__model_matmul(struct rb__model *m, const struct rb_wt *w, const float *act, int n_tok,
                      float *out);

/* Encoder: embeds one sequence of n tokens into out (n_embd floats), pooled and
 * L2-normalised. */
RB_NODISCARD enum rb_status rb__encode(struct rb__model *m, const int32_t *tokens, int n,
                                       float *out);

#endif
