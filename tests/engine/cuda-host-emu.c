/* Host emulator of the CUDA device API: see cuda-host-emu.h. Each entry mirrors its
 * kernel in engine/src/cuda/backend.cu: matvec quantizes activations per block and
 * sums 32 lanes' partial dot products with the warp's butterfly; attention folds
 * pages lane by lane and merges; norms and softmax use the strided partials. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-host-emu.h"
#include "ggml-types.h"
#include "ops-block.h"
#include "ragbox/status.h"

struct rb_cuda_ctx {
    char err[256];
};

static size_t emu_free = (size_t)1 << 30;

void rb_test_cuda_host_set_free(size_t bytes)
{
    emu_free = bytes;
}

static int device_count(char *err, size_t len)
{
    (void)err;
    (void)len;
    return 1;
}

static int device_info(int device, struct rb_cuda_device_info *out)
{
    if (device != 0)
        return RB_ERR_NOT_FOUND;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "host emulator");
    out->total_bytes = out->free_bytes = emu_free;
    out->cc_major = 8;
    return RB_OK;
}

static int ctx_create(int device, struct rb_cuda_ctx **out, char *err, size_t len)
{
    (void)device;
    (void)err;
    (void)len;
    *out = calloc(1, sizeof **out);
    return *out ? RB_OK : RB_ERR_NOMEM;
}

static void ctx_free(struct rb_cuda_ctx *c)
{
    free(c);
}

static const char *last_error(const struct rb_cuda_ctx *c)
{
    return c->err;
}

static int dalloc(struct rb_cuda_ctx *c, size_t bytes, void **out)
{
    *out = calloc(1, bytes ? bytes : 1);
    if (!*out) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return RB_ERR_NOMEM;
    }
    return RB_OK;
}

static void dfree(struct rb_cuda_ctx *c, void *p)
{
    (void)c;
    free(p);
}

static int copy(struct rb_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    (void)c;
    memcpy(dst, src, bytes);
    return RB_OK;
}

static int sync_(struct rb_cuda_ctx *c)
{
    (void)c;
    return RB_OK;
}

static float lanes_sum(float *v)
{
    return rb_op_warp_sum_host(v);
}

static int matvec(struct rb_cuda_ctx *c, uint32_t type, const void *w, int64_t rows, int64_t cols,
                  const float *x, int n_tok, float *y)
{
    float lanes[RB_WARP];
    for (int t = 0; t < n_tok; t++) {
        const float *xt = x + (size_t)t * cols;
        switch (type) {
#define Q(T, WB, AB, QK, QACT, MV)                                                                 \
    case T: {                                                                                      \
        int64_t nb = cols / QK;                                                                    \
        struct AB *a = malloc((size_t)nb * sizeof *a);                                             \
        for (int64_t b = 0; b < nb; b++)                                                           \
            QACT(xt + b * QK, &a[b]);                                                              \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            const struct WB *wr = (const struct WB *)w + r * nb;                                   \
            for (int l = 0; l < RB_WARP; l++)                                                      \
                lanes[l] = MV(wr, a, nb, l, RB_WARP);                                              \
            y[(size_t)t * rows + r] = lanes_sum(lanes);                                            \
        }                                                                                          \
        free(a);                                                                                   \
        break;                                                                                     \
    }
            Q(RB_GGML_TYPE_Q8_0, rb_block_q8_0, rb_block_q8_0, RB_QB, rb_quant_q8_0, rb_op_mv_q8_0)
            Q(RB_GGML_TYPE_Q4_0, rb_block_q4_0, rb_block_q8_0, RB_QB, rb_quant_q8_0, rb_op_mv_q4_0)
            Q(RB_GGML_TYPE_Q4_1, rb_block_q4_1, rb_block_q8_1, RB_QB, rb_quant_q8_1, rb_op_mv_q4_1)
            Q(RB_GGML_TYPE_Q5_0, rb_block_q5_0, rb_block_q8_0, RB_QB, rb_quant_q8_0, rb_op_mv_q5_0)
            Q(RB_GGML_TYPE_Q4_K, rb_block_q4_k, rb_block_q8_k, RB_QBK, rb_quant_q8_k, rb_op_mv_q4_k)
            Q(RB_GGML_TYPE_Q5_K, rb_block_q5_k, rb_block_q8_k, RB_QBK, rb_quant_q8_k, rb_op_mv_q5_k)
            Q(RB_GGML_TYPE_Q6_K, rb_block_q6_k, rb_block_q8_k, RB_QBK, rb_quant_q8_k, rb_op_mv_q6_k)
#undef Q
        case RB_GGML_TYPE_F32:
            for (int64_t r = 0; r < rows; r++) {
                for (int l = 0; l < RB_WARP; l++)
                    lanes[l] = rb_op_dot_f32((const float *)w + r * cols, xt, l, (int)cols, RB_WARP);
                y[(size_t)t * rows + r] = lanes_sum(lanes);
            }
            break;
        case RB_GGML_TYPE_F16:
        case RB_GGML_TYPE_BF16: {
            uint16_t *xh = malloc((size_t)cols * 2);
            for (int64_t i = 0; i < cols; i++)
                xh[i] = type == RB_GGML_TYPE_F16 ? rb_fp32_to_fp16(xt[i]) : rb_fp32_to_bf16(xt[i]);
            for (int64_t r = 0; r < rows; r++) {
                for (int l = 0; l < RB_WARP; l++)
                    lanes[l] = type == RB_GGML_TYPE_F16
                                   ? rb_op_dot_f16((const rb_half *)w + r * cols, xh, l, (int)cols,
                                                   RB_WARP)
                                   : rb_op_dot_bf16((const rb_bf16 *)w + r * cols, xh, l,
                                                    (int)cols, RB_WARP);
                y[(size_t)t * rows + r] = lanes_sum(lanes);
            }
            free(xh);
            break;
        }
        default:
            snprintf(c->err, sizeof c->err, "type %u not supported", type);
            return RB_ERR_UNSUPPORTED;
        }
    }
    return RB_OK;
}

static int dequant_row(uint32_t type, const void *w, int64_t r, int64_t cols, float *out)
{
    switch (type) {
#define D(T, WB, QK, DEQ)                                                                          \
    case T:                                                                                        \
        for (int64_t b = 0; b < cols / QK; b++)                                                    \
            DEQ((const struct WB *)w + r * (cols / QK) + b, out + b * QK);                         \
        return RB_OK;
        D(RB_GGML_TYPE_Q8_0, rb_block_q8_0, RB_QB, rb_dequant_q8_0)
        D(RB_GGML_TYPE_Q4_0, rb_block_q4_0, RB_QB, rb_dequant_q4_0)
        D(RB_GGML_TYPE_Q4_1, rb_block_q4_1, RB_QB, rb_dequant_q4_1)
        D(RB_GGML_TYPE_Q5_0, rb_block_q5_0, RB_QB, rb_dequant_q5_0)
        D(RB_GGML_TYPE_Q4_K, rb_block_q4_k, RB_QBK, rb_dequant_q4_k)
        D(RB_GGML_TYPE_Q5_K, rb_block_q5_k, RB_QBK, rb_dequant_q5_k)
        D(RB_GGML_TYPE_Q6_K, rb_block_q6_k, RB_QBK, rb_dequant_q6_k)
#undef D
    case RB_GGML_TYPE_F32:
        memcpy(out, (const float *)w + r * cols, sizeof(float) * cols);
        return RB_OK;
    case RB_GGML_TYPE_F16:
        for (int64_t i = 0; i < cols; i++)
            out[i] = rb_fp16_to_fp32(((const rb_half *)w)[r * cols + i]);
        return RB_OK;
    case RB_GGML_TYPE_BF16:
        for (int64_t i = 0; i < cols; i++)
            out[i] = rb_bf16_to_fp32(((const rb_bf16 *)w)[r * cols + i]);
        return RB_OK;
    }
    return RB_ERR_UNSUPPORTED;
}

/* GEMM: fp16 weights and activations, fp32 accumulation (cuBLAS with CUDA_R_16F). */
static int gemm(struct rb_cuda_ctx *c, uint32_t type, const void *w, int64_t rows, int64_t cols,
                const float *x, int n_tok, float *y)
{
    float *row = malloc(sizeof(float) * cols), *xh = malloc(sizeof(float) * cols * n_tok);
    for (int64_t i = 0; i < cols * n_tok; i++)
        xh[i] = rb_fp16_to_fp32(rb_fp32_to_fp16(x[i]));
    int st = RB_OK;
    for (int64_t r = 0; r < rows && st == RB_OK; r++) {
        st = dequant_row(type, w, r, cols, row);
        for (int64_t i = 0; i < cols; i++)
            row[i] = rb_fp16_to_fp32(rb_fp32_to_fp16(row[i]));
        for (int t = 0; t < n_tok; t++) {
            float s = 0;
            for (int64_t i = 0; i < cols; i++)
                s += row[i] * xh[t * cols + i];
            y[(size_t)t * rows + r] = s;
        }
    }
    if (st != RB_OK)
        snprintf(c->err, sizeof c->err, "gemm: type %u not supported", type);
    free(row);
    free(xh);
    return st;
}

static int get_rows(struct rb_cuda_ctx *c, uint32_t type, const void *w, int64_t cols,
                    const int32_t *ids, int n, float *out)
{
    (void)c;
    for (int t = 0; t < n; t++)
        if (dequant_row(type, w, ids[t], cols, out + (size_t)t * cols) != RB_OK)
            return RB_ERR_UNSUPPORTED;
    return RB_OK;
}

static int rmsnorm(struct rb_cuda_ctx *c, const float *x, const float *w, float *y, int rows,
                   int n, float eps)
{
    (void)c;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        float ss = 0;
        for (int t = 0; t < 256; t++)
            ss += rb_op_sumsq(xr, t, n, 256);
        float sc = rb_op_rms_scale(ss, n, eps);
        for (int t = 0; t < 256; t++)
            rb_op_rmsnorm_apply(xr, w, sc, yr, t, n, 256);
    }
    return RB_OK;
}

static int layernorm(struct rb_cuda_ctx *c, const float *x, const float *w, const float *b,
                     float *y, int rows, int n, float eps)
{
    (void)c;
    for (int r = 0; r < rows; r++)
        rb_op_layernorm_row(x + (size_t)r * n, w, b, y + (size_t)r * n, n, eps);
    return RB_OK;
}

static int rope(struct rb_cuda_ctx *c, float *x, const int32_t *pos, int rows, int n_head,
                int head_dim, int n_rot, int mode, float base, float scale, const float *factors)
{
    (void)c;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < n_head; h++)
            for (int p = 0; p < n_rot / 2; p++)
                rb_op_rope_pair(x + ((size_t)r * n_head + h) * head_dim, p, n_rot, mode,
                                rb_op_rope_theta(pos[r], p, n_rot, base, scale,
                                                 factors ? factors[p] : 1.0f));
    return RB_OK;
}

static int softmax(struct rb_cuda_ctx *c, float *x, int rows, int n)
{
    (void)c;
    for (int r = 0; r < rows; r++)
        rb_op_softmax_row(x + (size_t)r * n, n);
    return RB_OK;
}

static int swiglu(struct rb_cuda_ctx *c, const float *g, const float *u, float *out, int64_t n)
{
    (void)c;
    for (int64_t i = 0; i < n; i++)
        out[i] = rb_op_swiglu(g[i], u[i]);
    return RB_OK;
}

static int gelu(struct rb_cuda_ctx *c, float *x, int64_t n)
{
    (void)c;
    for (int64_t i = 0; i < n; i++)
        x[i] = rb_gelu(x[i]);
    return RB_OK;
}

static int add(struct rb_cuda_ctx *c, float *y, const float *x, int64_t n)
{
    (void)c;
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
    return RB_OK;
}

static int add_bias(struct rb_cuda_ctx *c, float *y, const float *b, int rows, int n)
{
    (void)c;
    for (int64_t i = 0; i < (int64_t)rows * n; i++)
        y[i] += b[i % n];
    return RB_OK;
}

static int kv_store(struct rb_cuda_ctx *c, uint16_t *kp, uint16_t *vp, const float *k,
                    const float *v, const int32_t *slot, int n, int kv_row)
{
    (void)c;
    for (int t = 0; t < n; t++)
        for (int e = 0; e < kv_row; e++) {
            kp[(size_t)slot[t] * kv_row + e] = rb_fp32_to_fp16(k[(size_t)t * kv_row + e]);
            vp[(size_t)slot[t] * kv_row + e] = rb_fp32_to_fp16(v[(size_t)t * kv_row + e]);
        }
    return RB_OK;
}

static int attention(struct rb_cuda_ctx *c, const struct rb_cuda_attn_args *a)
{
    (void)c;
    int kv_stride = a->n_kv_head * a->head_dim;
    float *records = malloc(sizeof(float) * RB_WARP * (2 + a->head_dim));
    float *tmp = malloc(sizeof(float) * a->head_dim);
    for (int q = 0; q < a->n_q; q++)
        for (int h = 0; h < a->n_head; h++) {
            int kvh = h / (a->n_head / a->n_kv_head);
            for (int lane = 0; lane < RB_WARP; lane++) {
                float *rec = records + lane * (2 + a->head_dim);
                struct rb_op_softmax_state st = rb_op_softmax_init();
                memset(rec + 2, 0, sizeof(float) * a->head_dim);
                rb_op_attn_lane(a->q + ((size_t)q * a->n_head + h) * a->head_dim,
                                (const rb_half *)a->k_pages, (const rb_half *)a->v_pages,
                                a->page_table + (size_t)q * a->max_pages, a->n_keys[q],
                                RB_CUDA_PAGE_TOKENS, kv_stride, kvh * a->head_dim, a->head_dim,
                                a->scale, lane, RB_WARP, &st, rec + 2);
                rec[0] = st.m;
                rec[1] = st.l;
            }
            rb_op_attn_merge_lanes(records, RB_WARP, a->head_dim, tmp,
                                   a->out + ((size_t)q * a->n_head + h) * a->head_dim);
        }
    free(records);
    free(tmp);
    return RB_OK;
}

static int graph_unsupported(struct rb_cuda_ctx *c)
{
    snprintf(c->err, sizeof c->err, "graphs are not emulated");
    return RB_ERR_UNSUPPORTED;
}

static const struct rb_cuda_api host_api = {
    RB_CUDA_ABI_VERSION, device_count, device_info, ctx_create, ctx_free, last_error,
    dalloc, dfree, copy, copy, sync_, matvec, gemm, get_rows, rmsnorm, layernorm, rope,
    softmax, swiglu, gelu, add, add_bias, kv_store, attention, graph_unsupported,
    graph_unsupported, graph_unsupported,
};

const struct rb_cuda_api *rb_test_cuda_host_api(void)
{
    return &host_api;
}
