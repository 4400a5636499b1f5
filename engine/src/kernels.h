/* CPU kernels (engine-private): per-type row operations with scalar, AVX2 and AVX-512
 * implementations chosen at run time, a persistent thread pool, and the threaded
 * matrix multiply the forward pass uses.
 *
 * Row operations, per weight type (struct rb_type_ops):
 *   - quantize_act: n floats -> the activation format this weight type multiplies
 *     against (ggml's vec_dot_type: F32, F16, BF16, Q8_0, Q8_1 or Q8_K)
 *   - vec_dot: one weight row . one quantized activation row -> float
 *   - dequant_row: n weights -> floats (embedding lookups, tests)
 *
 * SIMD level: the best the CPU supports (__builtin_cpu_supports), or the one named by
 * the environment variable RAGBOX_SIMD=scalar|avx2|avx512 (capped at what the CPU has).
 *
 * Thread-safety: the ops tables are immutable. A pool is driven by one thread at a
 * time (its owner); rb__pool_run is not reentrant.
 */
#ifndef RAGBOX_ENGINE_KERNELS_H
#define RAGBOX_ENGINE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

enum rb_simd { RB_SIMD_SCALAR = 0, RB_SIMD_AVX2 = 1, RB_SIMD_AVX512 = 2 };

typedef void (*rb_quantize_act_fn)(const float *x, void *y, int64_t n);
typedef float (*rb_vec_dot_fn)(int64_t n, const void *w, const void *a);
typedef void (*rb_dequant_row_fn)(const void *w, float *y, int64_t n);
/* One weight row against 4 activation rows (a_stride bytes apart): out[0..3]. */
typedef void (*rb_vec_dot4_fn)(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out);
typedef void (*rb_axpy_f16_fn)(float *y, float a, const uint16_t *x, int64_t n);

/* Tiled matrix-matrix multiply (prefill), see kernels-gemm512.c. The caller quantizes
 * the activations with quantize_act as for vec_dot; prep builds the kernel's side table
 * (aux, aux_bytes) once per call; panel computes rows [r0, r0 + rows) for every token,
 * using a per-thread scratch of panel_bytes (64-byte aligned). */
struct rb_gemm_args {
    const uint8_t *W;
    size_t w_row_bytes;
    int64_t n_rows, n_cols;
    const uint8_t *act;
    size_t act_stride;
    int n_tok;
    float *out;
    int64_t out_stride;
};
struct rb_gemm_ops {
    int rows; /* rows per panel */
    bool (*fits)(uint32_t type, int64_t n_cols, size_t w_row_bytes);
    size_t (*aux_bytes)(uint32_t type, int64_t n_cols, int n_tok);
    void (*prep)(uint32_t type, const struct rb_gemm_args *a, void *aux);
    size_t (*panel_bytes)(uint32_t type, int64_t n_cols);
    void (*panel)(uint32_t type, const struct rb_gemm_args *a, const void *aux, int64_t r0,
                  void *scratch);
};

struct rb_type_ops {
    uint32_t type;      /* weight type (enum rb_ggml_type) */
    uint32_t act_type;  /* activation type it dots against */
    uint32_t blck;      /* elements per weight block (and per activation block) */
    uint32_t w_bytes;   /* bytes per weight block */
    uint32_t act_blck;  /* elements per activation block */
    uint32_t act_bytes; /* bytes per activation block */
    rb_quantize_act_fn quantize_act;
    rb_vec_dot_fn vec_dot;
    rb_dequant_row_fn dequant_row;
    rb_vec_dot4_fn vec_dot4; /* NULL: use vec_dot per token */
    const struct rb_gemm_ops *gemm; /* NULL: no tiled kernel at this level */
};

/* The SIMD level in use (detected once, RAGBOX_SIMD honoured). */
enum rb_simd rb__simd_level(void);
/* The best level this CPU supports. */
enum rb_simd rb__simd_supported(void);
const char *rb__simd_name(enum rb_simd s);

/* Ops for a weight type at a SIMD level (falls back to lower levels for types a level
 * does not accelerate); NULL for types the engine cannot compute. */
const struct rb_type_ops *rb__type_ops_at(uint32_t type, enum rb_simd level);
/* Same at rb__simd_level(). */
const struct rb_type_ops *rb__type_ops(uint32_t type);

/* Bytes of an activation row of n elements for this weight type (n multiple of blck). */
size_t rb__act_row_bytes(const struct rb_type_ops *ops, int64_t n);

/* Filled by kernels-avx2.c / kernels-avx512.c: vec_dot overrides (NULL = not accelerated). */
rb_vec_dot_fn rb__avx2_vec_dot(uint32_t type);
rb_vec_dot_fn rb__avx512_vec_dot(uint32_t type);
rb_vec_dot4_fn rb__avx2_vec_dot4(uint32_t type);
const struct rb_gemm_ops *rb__avx512_gemm(uint32_t type);
rb_axpy_f16_fn rb__avx2_axpy_f16(void);
/* y[i] += a * x[i], x F16 (best SIMD level in use) */
void rb__axpy_f16(float *y, float a, const uint16_t *x, int64_t n);
/* Attention over an F16 KV cache: out[p] = scale * (q . K[p]) for p < n (K rows `stride`
 * elements apart; q holds F16-rounded values, as the reference computes the K dot), and
 * acc[0..hd) = sum_p w[p] * V[p] (acc overwritten). Best SIMD level in use. */
typedef void (*rb_attn_scores_fn)(const float *q, const uint16_t *k, size_t stride, int n, int hd,
                                  float scale, float *out);
typedef void (*rb_attn_values_fn)(const float *w, const uint16_t *v, size_t stride, int n, int hd,
                                  float *acc);
rb_attn_scores_fn rb__avx512_attn_scores(void);
rb_attn_values_fn rb__avx512_attn_values(void);
void rb__attn_scores_f16(const float *q, const uint16_t *k, size_t stride, int n, int hd,
                         float scale, float *out);
void rb__attn_values_f16(const float *w, const uint16_t *v, size_t stride, int n, int hd,
                         float *acc);
/* Float helpers used by attention and norms. */
float rb__dot_f32(const float *a, const float *b, int64_t n);
/* y[i] += a * x[i] */
void rb__axpy_f32(float *y, float a, const float *x, int64_t n);

/* ---- thread pool */
struct rb_pool;
/* fn(ctx, ith, nth) runs once on each of the nth threads (the caller is thread 0). */
typedef void (*rb_pool_fn)(void *ctx, int ith, int nth);

RB_NODISCARD enum rb_status rb__pool_create(int n_threads, struct rb_pool **out);
void rb__pool_free(struct rb_pool *p);
int rb__pool_size(const struct rb_pool *p);
/* Runs fn on the calling thread and on the workers that are ready before the caller's
 * own call returns; returns when no worker is still inside fn. fn must claim its work
 * dynamically (a shared atomic counter in ctx) so whoever runs does all of it; ith
 * (distinct per concurrent thread, < nth) may index per-thread scratch. */
void rb__pool_run(struct rb_pool *p, rb_pool_fn fn, void *ctx);
/* Per-thread scratch (slot ith < nth, or nth for the caller's shared buffer before a
 * job), at least `bytes`, 64-byte aligned, kept and grown across calls; NULL when out
 * of memory. Only the thread running as ith (or the pool's owner) may use slot ith. */
void *rb__pool_scratch(struct rb_pool *p, int ith, size_t bytes);

/* ---- matrix multiply
 * W: n_rows rows of n_cols elements of weight type ops->type, row stride w_row_bytes.
 * act: n_tok activation rows already quantized by ops->quantize_act (stride act_stride
 * bytes). out[t * out_stride + r] = W[r] . act[t]. Rows are split across the pool.
 * With RB_GEMM_MIN_TOK tokens or more and a tiled kernel for the type (ops->gemm), the
 * blocked matrix-matrix path runs; otherwise rows x tokens with vec_dot / vec_dot4. */
#define RB_GEMM_MIN_TOK 6
void rb__matmul(struct rb_pool *pool, const struct rb_type_ops *ops, const void *W,
                size_t w_row_bytes, int64_t n_rows, int64_t n_cols, const void *act,
                size_t act_stride, int n_tok, float *out, int64_t out_stride);

/* Several matmuls run as one pool job (e.g. Q, K and V of a layer): same results as
 * calling rb__matmul on each. */
struct rb_matmul_desc {
    const struct rb_type_ops *ops;
    const void *W;
    size_t w_row_bytes;
    int64_t n_rows, n_cols;
    const void *act;
    size_t act_stride;
    int n_tok;
    float *out;
    int64_t out_stride;
};
void rb__matmul_multi(struct rb_pool *pool, int n, const struct rb_matmul_desc *d);

/* Current time in seconds (monotonic). */
double rb__now(void);

#endif
