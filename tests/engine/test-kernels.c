/* Every weight type's dot product: each SIMD level vs the scalar path vs a float
 * reference (dequantized weights . float activations), plus quantize/dequantize round
 * trips and the fp16/bf16 conversions. */
#include "check.h"

#include <stdint.h>

#include "ggml-types.h"
#include "kernels.h"
#include "quant-block.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Quantizes n floats into weight type `type` with the weight quantizers. */
static void quantize_weights(uint32_t type, const float *x, void *out, int n)
{
    for (int i = 0; i < n;) {
        switch (type) {
        case RB_GGML_TYPE_F32: ((float *)out)[i] = x[i]; i++; break;
        case RB_GGML_TYPE_F16: ((rb_half *)out)[i] = rb_fp32_to_fp16(x[i]); i++; break;
        case RB_GGML_TYPE_BF16: ((rb_bf16 *)out)[i] = rb_fp32_to_bf16(x[i]); i++; break;
        case RB_GGML_TYPE_Q8_0: rb_quantw_q8_0(x + i, (struct rb_block_q8_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q4_0: rb_quantw_q4_0(x + i, (struct rb_block_q4_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q4_1: rb_quantw_q4_1(x + i, (struct rb_block_q4_1 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q5_0: rb_quantw_q5_0(x + i, (struct rb_block_q5_0 *)out + i / 32); i += 32; break;
        case RB_GGML_TYPE_Q4_K: rb_quantw_q4_k(x + i, (struct rb_block_q4_k *)out + i / 256); i += 256; break;
        case RB_GGML_TYPE_Q5_K: rb_quantw_q5_k(x + i, (struct rb_block_q5_k *)out + i / 256); i += 256; break;
        case RB_GGML_TYPE_Q6_K: rb_quantw_q6_k(x + i, (struct rb_block_q6_k *)out + i / 256); i += 256; break;
        default: return;
        }
    }
}

static uint64_t row_bytes_of(uint32_t t, int64_t n)
{
    uint64_t rb = 0;
    return rb_ggml_row_size(t, (uint64_t)n, &rb) ? rb : 0;
}

/* The tiled matrix-matrix path (rb__matmul with n_tok >= RB_GEMM_MIN_TOK) at every SIMD
 * level against the scalar reference row by row, on sizes that are not multiples of the
 * tile (rows, tokens) with K of several blocks, threaded and not. */
static void test_gemm(void)
{
    const uint32_t types[] = {RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q5_0,
                              RB_GGML_TYPE_Q4_K, RB_GGML_TYPE_Q5_K, RB_GGML_TYPE_Q6_K,
                              RB_GGML_TYPE_F16,  RB_GGML_TYPE_Q4_1, RB_GGML_TYPE_BF16,
                              RB_GGML_TYPE_F32};
    struct rb_pool *pools[2] = {NULL, NULL};
    CHECK(rb__pool_create(1, &pools[0]) == RB_OK);
    CHECK(rb__pool_create(2, &pools[1]) == RB_OK);
    const int shapes[][3] = {/* rows, tokens, blocks of K */
                             {37, 13, 3}, {16, 8, 1}, {5, 6, 2}, {70, 29, 4}, {33, 1, 2}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        const struct rb_type_ops *sc = rb__type_ops_at(t, RB_SIMD_SCALAR);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const int R = shapes[si][0], T = shapes[si][1];
            const int64_t K = (int64_t)shapes[si][2] * (sc->blck == 1 ? 46 : sc->blck);
            const uint64_t wrow = row_bytes_of(t, K);
            uint8_t *W = malloc((size_t)wrow * R);
            float *x = malloc(sizeof(float) * (size_t)K * (R > T ? R : T));
            float *deq = malloc(sizeof(float) * (size_t)K);
            uint8_t *aq = malloc((size_t)T * (size_t)K * 4 + 64);
            float *ref = malloc(sizeof(float) * (size_t)T * R);
            float *aref = malloc(sizeof(float) * (size_t)T * R);
            float *out = malloc(sizeof(float) * (size_t)T * (R + 3));
            for (int r = 0; r < R; r++) {
                for (int64_t i = 0; i < K; i++)
                    x[i] = frand() * (1 + (r % 5)) * 0.1f + (r % 3 == 0 ? 0.05f : 0.0f);
                quantize_weights(t, x, W + (size_t)r * wrow, (int)K);
            }
            const size_t arow = rb__act_row_bytes(sc, K);
            for (int tk = 0; tk < T; tk++) {
                for (int64_t i = 0; i < K; i++)
                    x[i] = frand() * (tk % 4 == 1 ? 5.0f : 1.0f) + (tk % 3 == 0 ? 0.3f : 0.0f);
                sc->quantize_act(x, aq + (size_t)tk * arow, K);
            }
            for (int r = 0; r < R; r++) {
                /* scale of the sum for the tolerance: sum |w| * max |a| (|a| < 5.3) */
                sc->dequant_row(W + (size_t)r * wrow, deq, K);
                double s = 0;
                for (int64_t i = 0; i < K; i++)
                    s += fabs(deq[i]);
                for (int tk = 0; tk < T; tk++) {
                    ref[tk * R + r] = sc->vec_dot(K, W + (size_t)r * wrow, aq + (size_t)tk * arow);
                    aref[tk * R + r] = (float)(s * 6.5);
                }
            }
            /* the scalar level is the reference itself: from AVX2 up */
            for (int lv = RB_SIMD_AVX2; lv <= (int)rb__simd_supported(); lv++) {
                const struct rb_type_ops *o = rb__type_ops_at(t, (enum rb_simd)lv);
                for (int pi = 0; pi < 2; pi++) {
                    /* out_stride wider than R: the kernel must write only its rows */
                    const int64_t os = R + 3;
                    for (int i = 0; i < T * (R + 3); i++)
                        out[i] = 12345.0f;
                    rb__matmul(pools[pi], o, W, wrow, R, K, aq, arow, T, out, os);
                    int bad = 0;
                    for (int tk = 0; tk < T && !bad; tk++) {
                        for (int r = 0; r < R && !bad; r++) {
                            const float got = out[tk * os + r], want = ref[tk * R + r];
                            if (!(fabsf(got - want) <= 2e-5f * aref[tk * R + r] + 1e-5f)) {
                                CHECK_MSG(0, "gemm %s %s %d thr %dx%dx%lld: [%d][%d] %g vs %g",
                                          rb_ggml_type_name(t), rb__simd_name((enum rb_simd)lv),
                                          pi + 1, R, T, (long long)K, tk, r, got, want);
                                bad = 1;
                            }
                        }
                        for (int r = R; r < R + 3 && !bad; r++)
                            if (out[tk * os + r] != 12345.0f) {
                                CHECK_MSG(0, "gemm %s wrote past its rows", rb_ggml_type_name(t));
                                bad = 1;
                            }
                    }
                }
            }
            free(W);
            free(x);
            free(deq);
            free(aq);
            free(ref);
            free(aref);
            free(out);
        }
        /* the tiled kernel is there where the CPU has it */
        if (rb__simd_supported() == RB_SIMD_AVX512 && __builtin_cpu_supports("avx512vnni") &&
            t != RB_GGML_TYPE_Q4_1 && t != RB_GGML_TYPE_BF16 && t != RB_GGML_TYPE_F32)
            CHECK_MSG(rb__type_ops_at(t, RB_SIMD_AVX512)->gemm != NULL, "%s has no tiled kernel",
                      rb_ggml_type_name(t));
    }
    rb__pool_free(pools[0]);
    rb__pool_free(pools[1]);
}

/* Attention helpers over an F16 cache vs a double-precision reference, at every level
 * (RAGBOX_SIMD is read once, so only the level in use is exercised here: the CI machine
 * and the sanitizer build cover it) on key counts that are not multiples of 16. */
static void test_attn(void)
{
    enum { HD = 64, STRIDE = 80, NMAX = 53 };
    static rb_half K[NMAX * STRIDE], V[NMAX * STRIDE];
    float q[HD], sc[NMAX], w[NMAX], acc[HD];
    for (int i = 0; i < NMAX * STRIDE; i++) {
        K[i] = rb_fp32_to_fp16(frand());
        V[i] = rb_fp32_to_fp16(frand());
    }
    for (int i = 0; i < HD; i++)
        q[i] = rb_fp16_to_fp32(rb_fp32_to_fp16(frand() * 2));
    const int ns[] = {1, 15, 16, 17, 33, 53};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const int n = ns[k];
        rb__attn_scores_f16(q, K, STRIDE, n, HD, 0.125f, sc);
        for (int p = 0; p < n; p++) {
            double s = 0, a = 0;
            for (int i = 0; i < HD; i++) {
                s += (double)q[i] * rb_fp16_to_fp32(K[p * STRIDE + i]);
                a += fabs((double)q[i] * rb_fp16_to_fp32(K[p * STRIDE + i]));
            }
            CHECK_MSG(fabs(sc[p] - 0.125 * s) <= 1e-6 * a + 1e-7, "scores n=%d [%d] %g vs %g", n,
                      p, sc[p], 0.125 * s);
        }
        for (int p = 0; p < n; p++)
            w[p] = frand();
        rb__attn_values_f16(w, V, STRIDE, n, HD, acc);
        for (int i = 0; i < HD; i++) {
            double s = 0, a = 0;
            for (int p = 0; p < n; p++) {
                s += (double)w[p] * rb_fp16_to_fp32(V[p * STRIDE + i]);
                a += fabs((double)w[p] * rb_fp16_to_fp32(V[p * STRIDE + i]));
            }
            CHECK_MSG(fabs(acc[i] - s) <= 1e-6 * a + 1e-7, "values n=%d [%d] %g vs %g", n, i,
                      acc[i], s);
        }
    }
}

int main(void)
{
    /* fp16 / bf16 conversions */
    CHECK(rb_fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(rb_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(rb_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(rb_fp32_to_fp16(1.0f) == 0x3c00);
    CHECK(rb_fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(rb_fp32_to_fp16(1e6f) == 0x7c00); /* overflow -> inf */
    CHECK(rb_fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00); /* tie -> even */
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half round-trips */
        if (rb_fp32_to_fp16(rb_fp16_to_fp32((rb_half)h)) != h) {
            CHECK_MSG(0, "half 0x%04x does not round-trip", h);
            break;
        }
    CHECK(rb_bf16_to_fp32(rb_fp32_to_bf16(3.5f)) == 3.5f);
    CHECK(rb_fp32_to_bf16(1.00390625f) == 0x3f80); /* tie -> even */

    const uint32_t types[] = {RB_GGML_TYPE_F32,  RB_GGML_TYPE_F16,  RB_GGML_TYPE_BF16,
                              RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q4_1,
                              RB_GGML_TYPE_Q5_0, RB_GGML_TYPE_Q4_K, RB_GGML_TYPE_Q5_K,
                              RB_GGML_TYPE_Q6_K};
    /* expected relative round-trip error of the weight quantization (rms / rms) */
    const double max_rt[] = {0, 1e-3, 8e-3, 0.01, 0.12, 0.1, 0.06, 0.1, 0.05, 0.03};
    enum { N = 1024 };
    static float x[N], a[N], deq[N];
    static uint8_t wq[N * 4], aq[N * 4];
    fprintf(stderr, "simd supported: %s\n", rb__simd_name(rb__simd_supported()));
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        for (int i = 0; i < N; i++) {
            x[i] = frand() * (1 + (i % 7)) * 0.1f;
            a[i] = frand() * 2.0f;
        }
        quantize_weights(t, x, wq, N);
        const struct rb_type_ops *sc = rb__type_ops_at(t, RB_SIMD_SCALAR);
        CHECK(sc != NULL);
        if (!sc)
            continue;
        sc->dequant_row(wq, deq, N);
        double e2 = 0, x2 = 0, ref = 0, aref = 0;
        for (int i = 0; i < N; i++) {
            e2 += (deq[i] - x[i]) * (deq[i] - x[i]);
            x2 += x[i] * x[i];
            ref += (double)deq[i] * a[i];
            aref += fabs((double)deq[i] * a[i]);
        }
        CHECK_MSG(sqrt(e2 / x2) <= max_rt[ti] + 1e-7, "%s round trip rel err %g",
                  rb_ggml_type_name(t), sqrt(e2 / x2));
        sc->quantize_act(a, aq, N);
        const float s_scalar = sc->vec_dot(N, wq, aq);
        /* activation quantization error bound: 8-bit -> ~1/127 relative per element */
        const double tol = aref * (t == RB_GGML_TYPE_F32 ? 1e-6 : 1.0 / 127) + 1e-6;
        CHECK_MSG(fabs(s_scalar - ref) <= tol, "%s scalar %g vs float %g (tol %g)",
                  rb_ggml_type_name(t), s_scalar, ref, tol);
        for (int lv = RB_SIMD_AVX2; lv <= (int)rb__simd_supported(); lv++) {
            const struct rb_type_ops *o = rb__type_ops_at(t, (enum rb_simd)lv);
            const float s = o->vec_dot(N, wq, aq);
            CHECK_MSG(fabsf(s - s_scalar) <= 1e-4f * (float)aref + 1e-5f, "%s %s %g vs scalar %g",
                      rb_ggml_type_name(t), rb__simd_name((enum rb_simd)lv), s, s_scalar);
            /* four activation rows at once (prefill) == four single dots */
            if (o->vec_dot4) {
                static uint8_t a4[4 * N * 4];
                const size_t ar = rb__act_row_bytes(o, N);
                for (int k = 0; k < 4; k++) {
                    for (int i = 0; i < N; i++)
                        deq[i] = a[(i * 7 + k * 13) % N] * (k + 1);
                    o->quantize_act(deq, a4 + k * ar, N);
                }
                float o4[4];
                o->vec_dot4(N, wq, a4, ar, o4);
                for (int k = 0; k < 4; k++) {
                    const float s1 = o->vec_dot(N, wq, a4 + k * ar);
                    CHECK_MSG(fabsf(o4[k] - s1) <= 1e-5f * fabsf(s1) + 1e-5f,
                              "%s dot4[%d] %g vs %g", rb_ggml_type_name(t), k, o4[k], s1);
                }
            }
            /* odd block counts / tails */
            const int n2 = (int)(sc->blck == 1 ? 37 : sc->blck * 3);
            const float s2 = o->vec_dot(n2, wq, aq), s2s = sc->vec_dot(n2, wq, aq);
            CHECK_MSG(fabsf(s2 - s2s) <= 1e-4f * (float)aref + 1e-5f, "%s %s tail %g vs %g",
                      rb_ggml_type_name(t), rb__simd_name((enum rb_simd)lv), s2, s2s);
        }
    }

    /* thread pool + matmul: threaded result equals the single-thread one */
    struct rb_pool *pool = NULL;
    CHECK(rb__pool_create(3, &pool) == RB_OK);
    const struct rb_type_ops *o = rb__type_ops(RB_GGML_TYPE_Q4_0);
    enum { R = 64, C = 256, T = 5 };
    static uint8_t W[R * C];
    static float xs[R * C], acts[T * C], out1[T * R], out2[T * R];
    static uint8_t aqs[T * C * 2];
    for (int i = 0; i < R * C; i++)
        xs[i] = frand();
    for (int i = 0; i < T * C; i++)
        acts[i] = frand();
    const size_t wrow = (C / 32) * 18, arow = rb__act_row_bytes(o, C);
    for (int r = 0; r < R; r++)
        quantize_weights(RB_GGML_TYPE_Q4_0, xs + r * C, W + r * wrow, C);
    for (int t = 0; t < T; t++)
        o->quantize_act(acts + t * C, aqs + t * arow, C);
    rb__matmul(pool, o, W, wrow, R, C, aqs, arow, T, out1, R);
    for (int rep = 0; rep < 50; rep++)
        rb__matmul(pool, o, W, wrow, R, C, aqs, arow, T, out1, R);
    /* the same computation without threads (row path: dot4 for full groups of four
     * tokens, vec_dot for the rest) gives the same bits */
    rb__matmul(NULL, o, W, wrow, R, C, aqs, arow, T, out2, R);
    CHECK(memcmp(out1, out2, sizeof out1) == 0);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const float s1 = o->vec_dot(C, W + r * wrow, aqs + t * arow);
            CHECK_MSG(fabsf(out1[t * R + r] - s1) <= 1e-5f * fabsf(s1) + 1e-4f,
                      "matmul [%d][%d] %g vs vec_dot %g", t, r, out1[t * R + r], s1);
        }
    rb__pool_free(pool);
    test_gemm();
    test_attn();
    return check_finish();
}
