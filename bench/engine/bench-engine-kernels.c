/* bench-engine-kernels: matrix multiply throughput per weight type, on real layer shapes,
 * tiled matrix-matrix path vs the row path (vec_dot4 / vec_dot) vs the scalar reference,
 * single thread. Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) as well as wall
 * time, so figures stay meaningful on a machine shared with other work.
 *
 * Usage: bench-engine-kernels [ROWS COLS TOKENS]   (default: 896 x 4864 x 128 and others) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-types.h"
#include "kernels.h"
#include "quant-block.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rs = 0x243F6A8885A308D3ULL;
static float frand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void quantize_row(uint32_t type, const float *x, void *out, int64_t n)
{
    for (int64_t i = 0; i < n;) {
        switch (type) {
        case RB_GGML_TYPE_F16: ((rb_half *)out)[i] = rb_fp32_to_fp16(x[i]); i++; break;
        case RB_GGML_TYPE_Q8_0: rb_quantw_q8_0(x + i, (struct rb_block_q8_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q4_0: rb_quantw_q4_0(x + i, (struct rb_block_q4_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q5_0: rb_quantw_q5_0(x + i, (struct rb_block_q5_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q4_K: rb_quantw_q4_k(x + i, (struct rb_block_q4_k *)out + i / 256); i += 256; break;
        case RB_GGML_TYPE_Q5_K: rb_quantw_q5_k(x + i, (struct rb_block_q5_k *)out + i / 256); i += 256; break;
        case RB_GGML_TYPE_Q6_K: rb_quantw_q6_k(x + i, (struct rb_block_q6_k *)out + i / 256); i += 256; break;
        default: return;
        }
    }
}

static void run(uint32_t type, int64_t R, int64_t K, int T, struct rb_pool *pool)
{
    uint64_t wrow = 0;
    if (!rb_ggml_row_size(type, (uint64_t)K, &wrow))
        return;
    uint8_t *W = malloc(wrow * (size_t)R);
    float *x = malloc(sizeof(float) * (size_t)K);
    uint8_t *aq = malloc((size_t)T * (size_t)K * 4 + 64);
    float *out = malloc(sizeof(float) * (size_t)T * (size_t)R);
    const struct rb_type_ops *best = rb__type_ops(type);
    for (int64_t r = 0; r < R; r++) {
        for (int64_t i = 0; i < K; i++)
            x[i] = frand();
        quantize_row(type, x, W + (size_t)r * wrow, K);
    }
    const size_t arow = rb__act_row_bytes(best, K);
    for (int t = 0; t < T; t++) {
        for (int64_t i = 0; i < K; i++)
            x[i] = frand();
        best->quantize_act(x, aq + (size_t)t * arow, K);
    }
    struct rb_type_ops rows = *best;
    rows.gemm = NULL;
    const struct rb_type_ops *variants[3] = {best, &rows, rb__type_ops_at(type, RB_SIMD_SCALAR)};
    const char *names[3] = {best->gemm ? "tiled" : "tiled (n/a)", "rows", "scalar"};
    printf("%-5s %5lld x %5lld x %3d |", rb_ggml_type_name(type), (long long)R, (long long)K, T);
    for (int v = 0; v < 3; v++) {
        if (v == 0 && !best->gemm) {
            printf(" %-11s %8s |", names[v], "-");
            continue;
        }
        if (v == 2 && (double)R * K * T > 2e8) { /* the scalar path is slow: smaller sample */
            printf(" %-11s %8s |", names[v], "(skip)");
            continue;
        }
        double best_t = 1e30, best_w = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            const double c0 = cpu_now(), w0 = rb__now();
            rb__matmul(pool, variants[v], W, wrow, R, K, aq, arow, T, out, R);
            const double c = cpu_now() - c0, w = rb__now() - w0;
            best_t = c < best_t ? c : best_t;
            best_w = w < best_w ? w : best_w;
        }
        printf(" %-11s %7.1f GMAC/s (wall %6.1f) |", names[v], (double)R * K * T / best_t / 1e9,
               (double)R * K * T / best_w / 1e9);
    }
    printf("\n");
    fflush(stdout);
    free(W);
    free(x);
    free(aq);
    free(out);
}

int main(int argc, char **argv)
{
    struct rb_pool *pool = NULL;
    if (rb__pool_create(1, &pool) != RB_OK)
        return 1;
    printf("kernels: SIMD %s, 1 thread, best of 3, GMAC/s by thread CPU time (wall in "
           "parentheses)\n",
           rb__simd_name(rb__simd_level()));
    const uint32_t types[] = {RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q5_0,
                              RB_GGML_TYPE_Q4_K, RB_GGML_TYPE_Q5_K, RB_GGML_TYPE_Q6_K,
                              RB_GGML_TYPE_F16};
    if (argc == 4) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            run(types[i], atoll(argv[1]), atoll(argv[2]), atoi(argv[3]), pool);
    } else {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            run(types[i], 896, 4864, 128, pool); /* Qwen2.5-0.5B ffn_down */
            run(types[i], 4864, 1024, 128, pool); /* ~ ffn_up (K a multiple of 256) */
            run(types[i], 896, 4864, 1, pool);   /* decode */
        }
    }
    rb__pool_free(pool);
    return 0;
}
