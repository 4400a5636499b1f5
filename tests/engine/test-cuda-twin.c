/* The CUDA backend's arithmetic, run on the CPU: for every weight tensor of every
 * shared model file (each architecture and tensor type), the matvec kernel's exact
 * computation — activations quantized per block by quant-block.h, 32 lanes taking
 * strided blocks through ops-block.h's rb_op_mv_* bodies, the warp's butterfly sum —
 * is compared with the CPU engine's own kernels (the reference path the model tests
 * check against llama.cpp) and with a double-precision dot of the dequantised row.
 * The prefill path (fp16 tiles from rb_dequant_*) and row gathers are checked too.
 * Nothing here needs a GPU: this is what keeps the CUDA path verified without one. */
#include <dirent.h>

#include "check.h"
#include "ggml-types.h"
#include "gguf.h"
#include "kernels.h"
#include "ops-block.h"

static unsigned rng = 777;
static float frand(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((float)((rng >> 8) & 0xFFFF) / 65535.0f) * 2.0f - 1.0f;
}

/* The kernel's matvec of one row: quantize x like k_quant_act, lanes, warp sum. */
static int twin_row(uint32_t type, const void *wrow, const float *x, int64_t cols, float *out)
{
    float lanes[RB_WARP];
    int64_t nb;
    switch (type) {
#define Q(T, WB, AB, QK, QACT, MV)                                                                 \
    case T: {                                                                                      \
        nb = cols / QK;                                                                            \
        struct AB *a = malloc((size_t)nb * sizeof *a);                                             \
        for (int64_t b = 0; b < nb; b++)                                                           \
            QACT(x + b * QK, &a[b]);                                                               \
        for (int l = 0; l < RB_WARP; l++)                                                          \
            lanes[l] = MV((const struct WB *)wrow, a, nb, l, RB_WARP);                             \
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
        for (int l = 0; l < RB_WARP; l++)
            lanes[l] = rb_op_dot_f32(wrow, x, l, (int)cols, RB_WARP);
        break;
    case RB_GGML_TYPE_F16: {
        rb_half *xh = malloc((size_t)cols * sizeof *xh);
        for (int64_t i = 0; i < cols; i++)
            xh[i] = rb_fp32_to_fp16(x[i]);
        for (int l = 0; l < RB_WARP; l++)
            lanes[l] = rb_op_dot_f16(wrow, xh, l, (int)cols, RB_WARP);
        free(xh);
        break;
    }
    case RB_GGML_TYPE_BF16: {
        rb_bf16 *xb = malloc((size_t)cols * sizeof *xb);
        for (int64_t i = 0; i < cols; i++)
            xb[i] = rb_fp32_to_bf16(x[i]);
        for (int l = 0; l < RB_WARP; l++)
            lanes[l] = rb_op_dot_bf16(wrow, xb, l, (int)cols, RB_WARP);
        free(xb);
        break;
    }
    default:
        return 0;
    }
    *out = rb_op_warp_sum_host(lanes);
    return 1;
}

/* The dequantisation the GEMM tiles and get_rows use (k_dequant_f16, k_get_rows_q). */
static int twin_dequant(uint32_t type, const void *wrow, int64_t cols, float *y)
{
    switch (type) {
#define D(T, WB, QK, DEQ)                                                                          \
    case T:                                                                                        \
        for (int64_t b = 0; b < cols / QK; b++)                                                    \
            DEQ((const struct WB *)wrow + b, y + b * QK);                                          \
        return 1;
        D(RB_GGML_TYPE_Q8_0, rb_block_q8_0, RB_QB, rb_dequant_q8_0)
        D(RB_GGML_TYPE_Q4_0, rb_block_q4_0, RB_QB, rb_dequant_q4_0)
        D(RB_GGML_TYPE_Q4_1, rb_block_q4_1, RB_QB, rb_dequant_q4_1)
        D(RB_GGML_TYPE_Q5_0, rb_block_q5_0, RB_QB, rb_dequant_q5_0)
        D(RB_GGML_TYPE_Q4_K, rb_block_q4_k, RB_QBK, rb_dequant_q4_k)
        D(RB_GGML_TYPE_Q5_K, rb_block_q5_k, RB_QBK, rb_dequant_q5_k)
        D(RB_GGML_TYPE_Q6_K, rb_block_q6_k, RB_QBK, rb_dequant_q6_k)
#undef D
    case RB_GGML_TYPE_F32:
        memcpy(y, wrow, (size_t)cols * sizeof(float));
        return 1;
    case RB_GGML_TYPE_F16:
        for (int64_t i = 0; i < cols; i++)
            y[i] = rb_fp16_to_fp32(((const rb_half *)wrow)[i]);
        return 1;
    case RB_GGML_TYPE_BF16:
        for (int64_t i = 0; i < cols; i++)
            y[i] = rb_bf16_to_fp32(((const rb_bf16 *)wrow)[i]);
        return 1;
    }
    return 0;
}

static int types_seen[RB_GGML_TYPE_COUNT];
static int tensors_checked;

static void check_model(const char *path)
{
    struct rb_gguf *g;
    struct rb_errmsg err;
    if (rb_gguf_open(path, &g, &err) != RB_OK) {
        CHECK_MSG(0, "%s: %s", path, err.text);
        return;
    }
    for (size_t ti = 0; ti < rb_gguf_tensor_count(g); ti++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, ti);
        if (t->n_dims != 2)
            continue;
        const struct rb_type_ops *ops = rb__type_ops(t->type);
        const struct rb_ggml_type_traits *tr = rb_ggml_type_get(t->type);
        if (!ops || !tr)
            continue;
        int64_t cols = (int64_t)t->ne[0], rows = (int64_t)t->ne[1];
        size_t row_bytes = (size_t)(cols / tr->block_size) * tr->type_size;
        float *x = malloc((size_t)cols * sizeof *x), *deq = malloc((size_t)cols * sizeof *deq),
              *deq_engine = malloc((size_t)cols * sizeof *deq_engine);
        void *act = malloc(rb__act_row_bytes(ops, cols));
        for (int64_t i = 0; i < cols; i++)
            x[i] = frand();
        ops->quantize_act(x, act, cols);
        int nrows = rows < 6 ? (int)rows : 6;
        for (int k = 0; k < nrows; k++) {
            int64_t r = (k * 7919) % rows;
            const uint8_t *wrow = (const uint8_t *)t->data + (size_t)r * row_bytes;
            float engine = ops->vec_dot(cols, wrow, act), twin = 0;
            REQUIRE(twin_row(t->type, wrow, x, cols, &twin));
            REQUIRE(twin_dequant(t->type, wrow, cols, deq));
            ops->dequant_row(wrow, deq_engine, cols);
            double exact = 0, mag = 0, tile = 0;
            for (int64_t i = 0; i < cols; i++) {
                exact += (double)deq[i] * x[i];
                mag += fabs((double)deq[i] * x[i]);
                /* the GEMM path: fp16 weights and activations, fp32 accumulation */
                tile += (double)rb_fp16_to_fp32(rb_fp32_to_fp16(deq[i])) *
                        rb_fp16_to_fp32(rb_fp32_to_fp16(x[i]));
            }
            CHECK_MSG(memcmp(deq, deq_engine, (size_t)cols * sizeof *deq) == 0,
                      "%s %s row %lld: dequantisation differs from the engine's",
                      rb_path_basename(path), t->name, (long long)r);
            CHECK_MSG(fabs(twin - engine) <= 1e-5 * mag + 1e-6,
                      "%s %s (%s) row %lld: kernel twin %.7g vs CPU engine %.7g",
                      rb_path_basename(path), t->name, tr->name, (long long)r, twin, engine);
            /* activation quantization error bound: 8-bit for Q8_x, fp16/bf16 rounding */
            double tol = (t->type == RB_GGML_TYPE_BF16 ? 1e-2 : 2e-2) * mag + 1e-5;
            if (t->type == RB_GGML_TYPE_F32)
                tol = 1e-5 * mag + 1e-6;
            CHECK_MSG(fabs(twin - exact) <= tol, "%s %s (%s): twin %.7g vs exact %.7g (mag %g)",
                      rb_path_basename(path), t->name, tr->name, twin, exact, mag);
            CHECK_MSG(fabs(tile - exact) <= 2e-3 * mag + 1e-5, "%s %s: fp16 tile %.7g vs %.7g",
                      rb_path_basename(path), t->name, tile, exact);
        }
        types_seen[t->type]++;
        tensors_checked++;
        free(x);
        free(deq);
        free(deq_engine);
        free(act);
    }
    rb_gguf_close(g);
}

static void check_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        CHECK_MSG(0, "cannot open %s", dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            check_model(path);
        }
    }
    closedir(d);
}

int main(void)
{
    check_dir(check_shared("models/fixtures"));
    check_dir(check_shared("models/real"));
    /* every tensor type the engine supports appears in the shared fixtures */
    const uint32_t want[] = {RB_GGML_TYPE_F32,  RB_GGML_TYPE_F16,  RB_GGML_TYPE_BF16,
                             RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q4_1,
                             RB_GGML_TYPE_Q5_0, RB_GGML_TYPE_Q4_K, RB_GGML_TYPE_Q5_K,
                             RB_GGML_TYPE_Q6_K};
    for (size_t i = 0; i < RB_ARRAY_LEN(want); i++)
        CHECK_MSG(types_seen[want[i]] > 0, "no tensor of type %s was checked",
                  rb_ggml_type_name(want[i]));
    fprintf(stderr, "%d tensors checked\n", tensors_checked);
    CHECK(tensors_checked > 100);
    return check_finish();
}
