/* Per-row / per-block mathematics of the non-matmul operations (engine-private):
 * RMSNorm, LayerNorm, RoPE, SwiGLU/GELU, softmax and attention of one query over
 * a block of keys, as small `static inline RB_HD` functions.
 *
 * Why: the CUDA backend (engine/src/cuda) compiles these exact functions with nvcc
 * and its kernels are thin loops around them, while the CPU tests run the same
 * functions against the CPU engine's results. What cannot run here (no GPU) is then
 * verified down to the launch geometry and the reductions, which are kept simple.
 *
 * Conventions: rows are contiguous floats; "partial" functions work on the index
 * range [i0, i1) with a stride so one GPU thread (or one CPU loop) can take a
 * strided slice and the results are combined by a reduction (sum, or the softmax
 * state merge below). All functions are pure: thread-safe.
 */
#ifndef RAGBOX_ENGINE_OPS_BLOCK_H
#define RAGBOX_ENGINE_OPS_BLOCK_H

#include <math.h>
#include <stdint.h>

#include "quant-block.h" /* RB_HD, rb_half/rb_bf16 conversions, rb_silu, rb_gelu */

/* ===================================================================== norms */

/* Sum of x[i]^2 over i = i0, i0+stride, ... < i1. */
static inline RB_HD float rb_op_sumsq(const float *x, int i0, int i1, int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride)
        s += x[i] * x[i];
    return s;
}

/* Sum of x[i] over the strided slice. */
static inline RB_HD float rb_op_sum(const float *x, int i0, int i1, int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride)
        s += x[i];
    return s;
}

/* Sum of (x[i] - mean)^2 over the strided slice (second pass of LayerNorm). */
static inline RB_HD float rb_op_sumsq_centered(const float *x, float mean, int i0, int i1,
                                               int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride) {
        float d = x[i] - mean;
        s += d * d;
    }
    return s;
}

/* RMSNorm scale 1/sqrt(mean(x^2) + eps) from the full sum of squares of n values. */
static inline RB_HD float rb_op_rms_scale(float sumsq, int n, float eps)
{
    return 1.0f / sqrtf(sumsq / (float)n + eps);
}

/* y[i] = x[i] * scale * w[i] (w may be NULL: no weight) on the strided slice. */
static inline RB_HD void rb_op_rmsnorm_apply(const float *x, const float *w, float scale, float *y,
                                             int i0, int i1, int stride)
{
    for (int i = i0; i < i1; i += stride)
        y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

/* y[i] = (x[i] - mean) * inv_std * w[i] + b[i] (w, b may be NULL). */
static inline RB_HD void rb_op_layernorm_apply(const float *x, const float *w, const float *b,
                                               float mean, float inv_std, float *y, int i0,
                                               int i1, int stride)
{
    for (int i = i0; i < i1; i += stride)
        y[i] = (x[i] - mean) * inv_std * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
}

/* Whole-row versions (one thread / one CPU loop). */
static inline RB_HD void rb_op_rmsnorm_row(const float *x, const float *w, float *y, int n,
                                           float eps)
{
    float scale = rb_op_rms_scale(rb_op_sumsq(x, 0, n, 1), n, eps);
    rb_op_rmsnorm_apply(x, w, scale, y, 0, n, 1);
}

static inline RB_HD void rb_op_layernorm_row(const float *x, const float *w, const float *b,
                                             float *y, int n, float eps)
{
    float mean = rb_op_sum(x, 0, n, 1) / (float)n;
    float var = rb_op_sumsq_centered(x, mean, 0, n, 1) / (float)n;
    rb_op_layernorm_apply(x, w, b, mean, 1.0f / sqrtf(var + eps), y, 0, n, 1);
}

/* ====================================================================== RoPE */

/* Rotary embedding angle of rotation pair `pair` (0 <= pair < n_rot/2) at position
 * pos, computed as ggml and the CPU engine do: theta_pair = pos * s^pair with
 * s = freq_base^(-2/n_rot) accumulated by repeated multiplication (bit-identical to
 * the CPU path), divided by the pair's frequency factor (llama-3 rope_freqs; 1 when
 * absent), times freq_scale. */
static inline RB_HD float rb_op_rope_theta(int pos, int pair, int n_rot, float freq_base,
                                           float freq_scale, float freq_factor)
{
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < pair; i++)
        theta *= theta_scale;
    return theta / freq_factor * freq_scale;
}

/* Rotates one pair of one head in place. Mode 0 ("normal", llama): the pair is
 * (x[2p], x[2p+1]); mode 2 ("neox", qwen2/qwen3, BERT-free): (x[p], x[p + n_rot/2]).
 * Dimensions >= n_rot are left unrotated (partial rotary). */
#define RB_ROPE_NORMAL 0
#define RB_ROPE_NEOX 2
static inline RB_HD void rb_op_rope_pair(float *head, int pair, int n_rot, int mode, float theta)
{
    int a = mode == RB_ROPE_NEOX ? pair : 2 * pair;
    int b = mode == RB_ROPE_NEOX ? pair + n_rot / 2 : 2 * pair + 1;
    float c = cosf(theta), s = sinf(theta);
    float x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
}

/* All pairs of one head; freq_factors (n_rot/2) may be NULL. */
static inline RB_HD void rb_op_rope_head(float *head, int n_rot, int mode, int pos,
                                         float freq_base, float freq_scale,
                                         const float *freq_factors)
{
    for (int p = 0; p < n_rot / 2; p++)
        rb_op_rope_pair(head, p, n_rot, mode,
                        rb_op_rope_theta(pos, p, n_rot, freq_base, freq_scale,
                                         freq_factors ? freq_factors[p] : 1.0f));
}

/* ============================================================== activations */

/* SwiGLU gate: silu(g) * u. */
static inline RB_HD float rb_op_swiglu(float g, float u)
{
    return rb_silu(g) * u;
}

/* ================================================================== softmax */

/* Online softmax state over a stream of scores: running max m and the sum l of
 * exp(score - m). Two states over disjoint parts merge exactly (up to rounding),
 * which is what lets a GPU split a row over threads. */
struct rb_op_softmax_state {
    float m; /* running maximum (-INFINITY when empty) */
    float l; /* sum of exp(s - m) */
};

static inline RB_HD struct rb_op_softmax_state rb_op_softmax_init(void)
{
    struct rb_op_softmax_state st;
    st.m = -INFINITY;
    st.l = 0.0f;
    return st;
}

static inline RB_HD void rb_op_softmax_push(struct rb_op_softmax_state *st, float s)
{
    if (s > st->m) {
        st->l = st->l * expf(st->m - s) + 1.0f; /* exp(-inf) = 0 for the first push */
        st->m = s;
    } else {
        st->l += expf(s - st->m);
    }
}

static inline RB_HD struct rb_op_softmax_state rb_op_softmax_merge(struct rb_op_softmax_state a,
                                                                   struct rb_op_softmax_state b)
{
    if (a.m == -INFINITY)
        return b;
    if (b.m == -INFINITY)
        return a;
    struct rb_op_softmax_state r;
    r.m = a.m > b.m ? a.m : b.m;
    r.l = a.l * expf(a.m - r.m) + b.l * expf(b.m - r.m);
    return r;
}

/* Softmax of a whole row in place (max-subtracted). */
static inline RB_HD void rb_op_softmax_row(float *x, int n)
{
    struct rb_op_softmax_state st = rb_op_softmax_init();
    for (int i = 0; i < n; i++)
        rb_op_softmax_push(&st, x[i]);
    float inv = 1.0f / st.l;
    for (int i = 0; i < n; i++)
        x[i] = expf(x[i] - st.m) * inv;
}

/* ================================================================ attention */

/* Attention of one query head over a block of keys/values, flash-style: the state
 * carries the online softmax and an unnormalised accumulator acc[head_dim]; blocks
 * (pages of a paged KV cache, or the slices different GPU lanes took) are folded in
 * one after another or merged, and rb_op_attn_finish divides by the sum.
 *
 * K and V rows are fp16 (rb_half) as stored in the KV cache, row stride kv_stride
 * elements (n_kv_heads * head_dim for an interleaved cache). `mask_from`: keys with
 * index >= mask_from within this block are skipped (causal masking at the block that
 * holds the query position; pass n to keep all). */
static inline RB_HD void rb_op_attn_block(const float *q, const rb_half *k, const rb_half *v,
                                          int n, int mask_from, int kv_stride, int head_dim,
                                          float scale, struct rb_op_softmax_state *st, float *acc)
{
    int lim = mask_from < n ? mask_from : n;
    for (int j = 0; j < lim; j++) {
        const rb_half *kj = k + (int64_t)j * kv_stride;
        const rb_half *vj = v + (int64_t)j * kv_stride;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++)
            s += q[d] * rb_fp16_to_fp32(kj[d]);
        s *= scale;
        float m_new = s > st->m ? s : st->m;
        float corr = expf(st->m - m_new); /* 0 when the state was empty */
        float p = expf(s - m_new);
        for (int d = 0; d < head_dim; d++)
            acc[d] = acc[d] * corr + p * rb_fp16_to_fp32(vj[d]);
        st->l = st->l * corr + p;
        st->m = m_new;
    }
}

/* Merges state b/acc_b into a/acc_a (both over disjoint key sets). */
static inline RB_HD void rb_op_attn_merge(struct rb_op_softmax_state *a, float *acc_a,
                                          struct rb_op_softmax_state b, const float *acc_b,
                                          int head_dim)
{
    if (b.m == -INFINITY)
        return;
    float m = a->m > b.m ? a->m : b.m;
    float ca = expf(a->m - m), cb = expf(b.m - m);
    for (int d = 0; d < head_dim; d++)
        acc_a[d] = acc_a[d] * ca + acc_b[d] * cb;
    a->l = a->l * ca + b.l * cb;
    a->m = m;
}

/* out[d] = acc[d] / l (zeros when no key was attended). */
static inline RB_HD void rb_op_attn_finish(const struct rb_op_softmax_state *st, const float *acc,
                                           float *out, int head_dim)
{
    float inv = st->l > 0.0f ? 1.0f / st->l : 0.0f;
    for (int d = 0; d < head_dim; d++)
        out[d] = acc[d] * inv;
}

/* ======================================================== element-row dots */

/* Dot products of float-family rows (the F32/F16/BF16 weight types' "blocks" are
 * single elements): weights in their storage type, activations as the engine
 * passes them (F32 for F32, F16 for F16, BF16 for BF16, as ggml's vec_dot_type). */
static inline RB_HD float rb_op_dot_f32(const float *w, const float *x, int i0, int i1, int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride)
        s += w[i] * x[i];
    return s;
}

static inline RB_HD float rb_op_dot_f16(const rb_half *w, const rb_half *x, int i0, int i1,
                                        int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride)
        s += rb_fp16_to_fp32(w[i]) * rb_fp16_to_fp32(x[i]);
    return s;
}

static inline RB_HD float rb_op_dot_bf16(const rb_bf16 *w, const rb_bf16 *x, int i0, int i1,
                                         int stride)
{
    float s = 0.0f;
    for (int i = i0; i < i1; i += stride)
        s += rb_bf16_to_fp32(w[i]) * rb_bf16_to_fp32(x[i]);
    return s;
}

/* ============================================== kernel bodies, lane by lane
 * The CUDA kernels split work over the 32 lanes of a warp; these are the per-lane
 * bodies, so the CPU tests can run all 32 lanes of a "warp" and the same reduction
 * and get what the GPU computes, on the shared fixture models' real tensors. */

#define RB_WARP 32

/* Partial dot product of one weight row with one activation row, for lane `lane` of
 * `nlanes`: blocks lane, lane + nlanes, ... (the matvec kernel's decomposition). */
#define RB_OP_MATVEC_PARTIAL(NAME, WB, AB, DOT)                                                    \
    static inline RB_HD float NAME(const struct WB *w, const struct AB *a, int64_t nb, int lane,   \
                                   int nlanes)                                                     \
    {                                                                                              \
        float s = 0.0f;                                                                            \
        for (int64_t b = lane; b < nb; b += nlanes)                                                \
            s += DOT(w + b, a + b);                                                                \
        return s;                                                                                  \
    }
RB_OP_MATVEC_PARTIAL(rb_op_mv_q8_0, rb_block_q8_0, rb_block_q8_0, rb_dot_q8_0_q8_0)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q4_0, rb_block_q4_0, rb_block_q8_0, rb_dot_q4_0_q8_0)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q4_1, rb_block_q4_1, rb_block_q8_1, rb_dot_q4_1_q8_1)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q5_0, rb_block_q5_0, rb_block_q8_0, rb_dot_q5_0_q8_0)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q4_k, rb_block_q4_k, rb_block_q8_k, rb_dot_q4_k_q8_k)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q5_k, rb_block_q5_k, rb_block_q8_k, rb_dot_q5_k_q8_k)
RB_OP_MATVEC_PARTIAL(rb_op_mv_q6_k, rb_block_q6_k, rb_block_q8_k, rb_dot_q6_k_q8_k)

/* The warp's butterfly sum (__shfl_xor_sync with offsets 16, 8, 4, 2, 1) on the host:
 * every lane ends with the same total, summed in the GPU's order. */
static inline float rb_op_warp_sum_host(float v[RB_WARP])
{
    for (int o = RB_WARP / 2; o > 0; o >>= 1) {
        float nv[RB_WARP];
        for (int i = 0; i < RB_WARP; i++)
            nv[i] = v[i] + v[i ^ o];
        for (int i = 0; i < RB_WARP; i++)
            v[i] = nv[i];
    }
    return v[0];
}

/* Paged attention for one (query, head), lane `lane` of `nlanes`: folds pages lane,
 * lane + nlanes, ... of the query's page table (each page's keys in order) into the
 * lane's state and acc (head_dim floats, zeroed by the caller). Pages hold
 * page_tokens tokens of kv_stride halves each; kv_off selects the KV head. */
static inline RB_HD void rb_op_attn_lane(const float *q, const rb_half *k_pages,
                                         const rb_half *v_pages, const int32_t *page_table,
                                         int n_keys, int page_tokens, int kv_stride, int kv_off,
                                         int head_dim, float scale, int lane, int nlanes,
                                         struct rb_op_softmax_state *st, float *acc)
{
    for (int p = lane; p * page_tokens < n_keys; p += nlanes) {
        int n = n_keys - p * page_tokens;
        if (n > page_tokens)
            n = page_tokens;
        int64_t base = (int64_t)page_table[p] * page_tokens * kv_stride + kv_off;
        rb_op_attn_block(q, k_pages + base, v_pages + base, n, n, kv_stride, head_dim, scale, st,
                         acc);
    }
}

/* Merges per-lane results stored as [m, l, acc[head_dim]] records (stride 2 +
 * head_dim floats) in lane order, and writes the normalised output. */
static inline RB_HD void rb_op_attn_merge_lanes(const float *records, int nlanes, int head_dim,
                                                float *acc_tmp, float *out)
{
    struct rb_op_softmax_state tot = rb_op_softmax_init();
    for (int d = 0; d < head_dim; d++)
        acc_tmp[d] = 0.0f;
    for (int l = 0; l < nlanes; l++) {
        const float *o = records + (int64_t)l * (2 + head_dim);
        struct rb_op_softmax_state s;
        s.m = o[0];
        s.l = o[1];
        rb_op_attn_merge(&tot, acc_tmp, s, o + 2, head_dim);
    }
    rb_op_attn_finish(&tot, acc_tmp, out, head_dim);
}

#endif
