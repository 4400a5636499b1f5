/* The C ABI between the engine and its CUDA backend (engine-private).
 *
 * The CUDA backend is a separate shared object, librb_cuda.so, built by nvcc when
 * RAGBOX_CUDA is on and dlopen'ed at run time by backend-cuda.c, so the same binary
 * and package run on machines with no NVIDIA driver (they fall back to the CPU with a
 * log line). The library exports one symbol, rb_cuda_api_get, returning this table.
 *
 * Device memory is addressed by opaque device pointers (`void *`) the backend
 * allocated. Every entry returns 0 on success or a negative enum rb_status; the
 * message of the last failure is kept per context (rb_cuda_api.last_error). A
 * context belongs to one host thread at a time (its stream is not shared).
 *
 * Operation semantics are those of the CPU engine: matvec/gemm compute
 * y[t][r] = W[r] . x[t] with the activations converted to the weight type's dot
 * type on the device (Q8_0, Q8_1, Q8_K, F16, BF16 or F32, as ggml's vec_dot_type);
 * norms, RoPE, softmax and attention apply the functions of ops-block.h.
 */
#ifndef RAGBOX_ENGINE_CUDA_API_H
#define RAGBOX_ENGINE_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RB_CUDA_ABI_VERSION 1
#define RB_CUDA_PAGE_TOKENS 16 /* tokens per KV-cache page */

struct rb_cuda_ctx;

struct rb_cuda_device_info {
    char name[256];
    size_t total_bytes;
    size_t free_bytes;
    int cc_major, cc_minor;
    int multiprocessors;
};

/* One paged-attention call: n_q query rows (tokens of one sequence, or one token of
 * each of several sequences), each with its own page table and length. */
struct rb_cuda_attn_args {
    const float *q;          /* device: (n_q, n_head, head_dim) */
    float *out;              /* device: (n_q, n_head, head_dim) */
    const uint16_t *k_pages; /* device: pages of (RB_CUDA_PAGE_TOKENS, n_kv_head, head_dim) fp16 */
    const uint16_t *v_pages; /* device: same layout */
    const int32_t *page_table; /* device: (n_q, max_pages) page indices */
    const int32_t *n_keys;     /* device: (n_q) keys visible to each query (causal) */
    int n_q, n_head, n_kv_head, head_dim, max_pages;
    float scale;
};

struct rb_cuda_api {
    int abi_version; /* RB_CUDA_ABI_VERSION */
    /* Devices visible to the runtime; 0 with a message when there is no driver/GPU. */
    int (*device_count)(char *err, size_t err_len);
    int (*device_info)(int device, struct rb_cuda_device_info *out);

    int (*ctx_create)(int device, struct rb_cuda_ctx **out, char *err, size_t err_len);
    void (*ctx_free)(struct rb_cuda_ctx *ctx);
    const char *(*last_error)(const struct rb_cuda_ctx *ctx);

    /* Memory. alloc fails with RB_ERR_NOMEM (and a message) when the device is full. */
    int (*alloc)(struct rb_cuda_ctx *ctx, size_t bytes, void **out);
    void (*free)(struct rb_cuda_ctx *ctx, void *ptr);
    int (*upload)(struct rb_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*download)(struct rb_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*synchronize)(struct rb_cuda_ctx *ctx);

    /* y (n_tok, rows) = W (rows, cols of `type`, quantized as stored) . x (n_tok, cols).
     * matvec: the decode path (quantized dot products, small n_tok); gemm: prefill
     * (weights dequantised to fp16 tiles, cuBLAS tensor-core GEMM, fp32 accumulate). */
    int (*matvec)(struct rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t rows,
                  int64_t cols, const float *x, int n_tok, float *y);
    int (*gemm)(struct rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t rows, int64_t cols,
                const float *x, int n_tok, float *y);
    /* Row gather from a (possibly quantized) embedding table: out[t] = dequant(W[ids[t]]). */
    int (*get_rows)(struct rb_cuda_ctx *ctx, uint32_t type, const void *w, int64_t cols,
                    const int32_t *ids, int n, float *out);

    int (*rmsnorm)(struct rb_cuda_ctx *ctx, const float *x, const float *w, float *y, int rows,
                   int n, float eps);
    int (*layernorm)(struct rb_cuda_ctx *ctx, const float *x, const float *w, const float *b,
                     float *y, int rows, int n, float eps);
    /* x: (rows, n_head, head_dim); pos: (rows) positions; mode RB_ROPE_NORMAL/NEOX;
     * freq_factors: device (n_rot/2) divisors (llama-3) or NULL. */
    int (*rope)(struct rb_cuda_ctx *ctx, float *x, const int32_t *pos, int rows, int n_head,
                int head_dim, int n_rot, int mode, float freq_base, float freq_scale,
                const float *freq_factors);
    int (*softmax)(struct rb_cuda_ctx *ctx, float *x, int rows, int n);
    /* out = silu(g) * u, elementwise over n; gelu in place. */
    int (*swiglu)(struct rb_cuda_ctx *ctx, const float *g, const float *u, float *out, int64_t n);
    int (*gelu)(struct rb_cuda_ctx *ctx, float *x, int64_t n);
    /* y += x elementwise; y += bias broadcast over rows. */
    int (*add)(struct rb_cuda_ctx *ctx, float *y, const float *x, int64_t n);
    int (*add_bias)(struct rb_cuda_ctx *ctx, float *y, const float *bias, int rows, int n);
    /* Writes fp16 K/V rows of n tokens into their pages (slot[t] = page * PAGE + offset). */
    int (*kv_store)(struct rb_cuda_ctx *ctx, uint16_t *k_pages, uint16_t *v_pages,
                    const float *k, const float *v, const int32_t *slot, int n, int kv_row);
    int (*attention)(struct rb_cuda_ctx *ctx, const struct rb_cuda_attn_args *args);

    /* CUDA graphs for the decode step: everything enqueued between begin and end is
     * captured; launch replays it (same device pointers, updated contents). */
    int (*graph_begin)(struct rb_cuda_ctx *ctx);
    int (*graph_end)(struct rb_cuda_ctx *ctx);
    int (*graph_launch)(struct rb_cuda_ctx *ctx);
};

typedef const struct rb_cuda_api *(*rb_cuda_api_get_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
