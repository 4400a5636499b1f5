/* AVX2 + FMA + F16C row dot products (function-level target attributes, so the file
 * builds with any -march and the code only runs where kernels.c detected support).
 * Integer dots use maddubs (u8 x s8 -> s16 pairs) then madd to s32, as ggml does:
 * products never saturate since |weight| <= 63 and |activation| <= 127. */
#include "kernels.h"

#include <string.h>

#include "ggml-types.h"
#include "quant-block.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))

/* one half -> float with the F16C instruction */
static inline TGT float h2f(rb_half h)
{
    return _cvtsh_ss(h);
}

static inline TGT float hsum8(__m256 x)
{
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline TGT int hsum8i(__m256i x)
{
    __m128i r = _mm_add_epi32(_mm256_extracti128_si256(x, 1), _mm256_castsi256_si128(x));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4e));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xb1));
    return _mm_cvtsi128_si32(r);
}

/* signed x . signed y over 32 bytes -> 8 x s32 */
static inline TGT __m256i dot_s8(__m256i x, __m256i y)
{
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* unsigned x . signed y -> 8 x s32 */
static inline TGT __m256i dot_u8(__m256i x, __m256i y)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles */
static inline TGT __m256i nibbles32(const uint8_t *p)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes of 0xFF (bit set) or 0x00 */
static inline TGT __m256i bits32(uint32_t x)
{
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    const __m256i mask = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfeULL);
    b = _mm256_or_si256(b, mask);
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

static TGT float avx2_dot_q8_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q8_0 *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8(qx, qy)), acc);
    }
    return hsum8(acc);
}

static TGT float avx2_dot_q4_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q4_0 *x = w;
    const struct rb_block_q8_0 *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256i qx = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8(qx, qy)), acc);
    }
    return hsum8(acc);
}

static TGT float avx2_dot_q4_1(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q4_1 *x = w;
    const struct rb_block_q8_1 *y = a;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / RB_QB; i++) {
        summs += h2f(x[i].m) * h2f(y[i].s);
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256i qx = nibbles32(x[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8(qx, qy)), acc);
    }
    return hsum8(acc) + summs;
}

static TGT float avx2_dot_q5_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q5_0 *x = w;
    const struct rb_block_q8_0 *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        __m256i qx = nibbles32(x[i].qs);
        /* fifth bit clear -> value - 16: OR 0xF0 makes the byte negative by 16 */
        const __m256i hi = _mm256_andnot_si256(bits32(rb_q5_0_qh(&x[i])), _mm256_set1_epi8((char)0xF0));
        qx = _mm256_or_si256(qx, hi);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8(qx, qy)), acc);
    }
    return hsum8(acc);
}

static TGT float avx2_dot_q4_k(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q4_k *x = w;
    const struct rb_block_q8_k *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sum = 0;
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++)
            rb_k_scale_min(j, x[i].scales, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++)
            summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i acc = _mm256_setzero_si256();
        const uint8_t *q = x[i].qs;
        const int8_t *p = y[i].qs;
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)q);
            const __m256i lo = _mm256_and_si256(q4, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            const __m256i a0 = _mm256_loadu_si256((const __m256i *)p);
            const __m256i a1 = _mm256_loadu_si256((const __m256i *)(p + 32));
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0),
                                                 _mm256_set1_epi16(sc[2 * j]));
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1),
                                                 _mm256_set1_epi16(sc[2 * j + 1]));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
            q += 32;
            p += 64;
        }
        const float d = y[i].d * h2f(x[i].d);
        const float dm = y[i].d * h2f(x[i].dmin);
        sum += d * (float)hsum8i(acc) - dm * (float)summ;
    }
    return sum;
}

static TGT float avx2_dot_q5_k(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q5_k *x = w;
    const struct rb_block_q8_k *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    float sum = 0;
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++)
            rb_k_scale_min(j, x[i].scales, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++)
            summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i acc = _mm256_setzero_si256();
        const uint8_t *q = x[i].qs;
        const int8_t *p = y[i].qs;
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)q);
            const __m128i s0 = _mm_cvtsi32_si128(2 * j), s1 = _mm_cvtsi32_si128(2 * j + 1);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s0), one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), h1);
            const __m256i a0 = _mm256_loadu_si256((const __m256i *)p);
            const __m256i a1 = _mm256_loadu_si256((const __m256i *)(p + 32));
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0),
                                                 _mm256_set1_epi16(sc[2 * j]));
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1),
                                                 _mm256_set1_epi16(sc[2 * j + 1]));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(p0, p1));
            q += 32;
            p += 64;
        }
        const float d = y[i].d * h2f(x[i].d);
        const float dm = y[i].d * h2f(x[i].dmin);
        sum += d * (float)hsum8i(acc) - dm * (float)summ;
    }
    return sum;
}

static TGT float avx2_dot_q6_k(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q6_k *x = w;
    const struct rb_block_q8_k *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum = 0;
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        const int8_t *sc = x[i].scales;
        int sub = 0; /* 32 * sum(scale * bsum): removes the +32 offset of the stored values */
        for (int g = 0; g < 16; g++)
            sub += sc[g] * y[i].bsums[g];
        __m256i acc = _mm256_setzero_si256();
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *p = y[i].qs;
        for (int half = 0; half < 2; half++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            const __m256i q2 = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            const __m256i q3 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            const __m256i q4 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            const __m256i qs[4] = {q1, q2, q3, q4};
            for (int k = 0; k < 4; k++) {
                const __m256i av = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
                const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]),
                                                     _mm_set1_epi16(sc[2 * k]));
                acc = _mm256_add_epi32(acc,
                                       _mm256_madd_epi16(_mm256_maddubs_epi16(qs[k], av), scv));
            }
            ql += 64;
            qh += 32;
            p += 128;
            sc += 8;
        }
        sum += y[i].d * h2f(x[i].d) * (float)(hsum8i(acc) - 32 * sub);
    }
    return sum;
}

static TGT float avx2_dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static TGT float avx2_dot_f16(int64_t n, const void *w, const void *a)
{
    const rb_half *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i + 8))), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += h2f(x[i]) * h2f(y[i]);
    return s;
}

static inline TGT __m256 bf16x8(const rb_bf16 *p)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static TGT float avx2_dot_bf16(int64_t n, const void *w, const void *a)
{
    const rb_bf16 *x = w, *y = a;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(bf16x8(x + i), bf16x8(y + i), s0);
        s1 = _mm256_fmadd_ps(bf16x8(x + i + 8), bf16x8(y + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += rb_bf16_to_fp32(x[i]) * rb_bf16_to_fp32(y[i]);
    return s;
}


/* ---- one weight row against four activation rows (prefill): each weight block is
 * loaded and unpacked once for the four tokens. a: activation rows at stride
 * a_stride bytes; out[0..3]. */

static TGT void avx2_dot4_q8_0(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q8_0 *x = w;
    const struct rb_block_q8_0 *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_0 *)((const uint8_t *)a + t * a_stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const float dx = h2f(x[i].d);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        for (int t = 0; t < 4; t++) {
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)),
                                                ones);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[t][i].d)), _mm256_cvtepi32_ps(p),
                                     acc[t]);
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = hsum8(acc[t]);
}

static TGT void avx2_dot4_q4_0(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q4_0 *x = w;
    const struct rb_block_q8_0 *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_0 *)((const uint8_t *)a + t * a_stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const float dx = h2f(x[i].d);
        const __m256i qx = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        for (int t = 0; t < 4; t++) {
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)),
                                                ones);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[t][i].d)), _mm256_cvtepi32_ps(p),
                                     acc[t]);
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = hsum8(acc[t]);
}

static TGT void avx2_dot4_q4_k(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q4_k *x = w;
    const struct rb_block_q8_k *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_k *)((const uint8_t *)a + t * a_stride);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sum[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++)
            rb_k_scale_min(j, x[i].scales, &sc[j], &mn[j]);
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)q);
            const __m256i lo = _mm256_and_si256(q4, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * j]), s1 = _mm256_set1_epi16(sc[2 * j + 1]);
            for (int t = 0; t < 4; t++) {
                const int8_t *p = y[t][i].qs + 64 * j;
                const __m256i a0 = _mm256_loadu_si256((const __m256i *)p);
                const __m256i a1 = _mm256_loadu_si256((const __m256i *)(p + 32));
                acc[t] = _mm256_add_epi32(
                    acc[t], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), s0),
                                             _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), s1)));
            }
            q += 32;
        }
        const float dx = h2f(x[i].d), dmx = h2f(x[i].dmin);
        for (int t = 0; t < 4; t++) {
            int summ = 0;
            for (int j = 0; j < 8; j++)
                summ += mn[j] * (y[t][i].bsums[2 * j] + y[t][i].bsums[2 * j + 1]);
            sum[t] += y[t][i].d * dx * (float)hsum8i(acc[t]) - y[t][i].d * dmx * (float)summ;
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = sum[t];
}

static TGT void avx2_dot4_q6_k(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q6_k *x = w;
    const struct rb_block_q8_k *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_k *)((const uint8_t *)a + t * a_stride);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < 2; half++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i qs[4];
            qs[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                    _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            qs[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            qs[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            qs[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            __m256i scv[4];
            for (int k = 0; k < 4; k++)
                scv[k] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
            for (int t = 0; t < 4; t++) {
                const int8_t *p = y[t][i].qs + 128 * half;
                for (int k = 0; k < 4; k++) {
                    const __m256i av = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
                    acc[t] = _mm256_add_epi32(
                        acc[t], _mm256_madd_epi16(_mm256_maddubs_epi16(qs[k], av), scv[k]));
                }
            }
            ql += 64;
            qh += 32;
            sc += 8;
        }
        const float dx = h2f(x[i].d);
        for (int t = 0; t < 4; t++) {
            int sub = 0;
            for (int g = 0; g < 16; g++)
                sub += x[i].scales[g] * y[t][i].bsums[g];
            sum[t] += y[t][i].d * dx * (float)(hsum8i(acc[t]) - 32 * sub);
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = sum[t];
}

static TGT void avx2_dot4_q5_k(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q5_k *x = w;
    const struct rb_block_q8_k *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_k *)((const uint8_t *)a + t * a_stride);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    float sum[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++)
            rb_k_scale_min(j, x[i].scales, &sc[j], &mn[j]);
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
        const uint8_t *q = x[i].qs;
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int j = 0; j < 4; j++) {
            const __m256i q4 = _mm256_loadu_si256((const __m256i *)q);
            const __m128i c0 = _mm_cvtsi32_si128(2 * j), c1 = _mm_cvtsi32_si128(2 * j + 1);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, c0), one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, c1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), h1);
            const __m256i s0 = _mm256_set1_epi16(sc[2 * j]), s1 = _mm256_set1_epi16(sc[2 * j + 1]);
            for (int t = 0; t < 4; t++) {
                const int8_t *p = y[t][i].qs + 64 * j;
                const __m256i a0 = _mm256_loadu_si256((const __m256i *)p);
                const __m256i a1 = _mm256_loadu_si256((const __m256i *)(p + 32));
                acc[t] = _mm256_add_epi32(
                    acc[t], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), s0),
                                             _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), s1)));
            }
            q += 32;
        }
        const float dx = h2f(x[i].d), dmx = h2f(x[i].dmin);
        for (int t = 0; t < 4; t++) {
            int summ = 0;
            for (int j = 0; j < 8; j++)
                summ += mn[j] * (y[t][i].bsums[2 * j] + y[t][i].bsums[2 * j + 1]);
            sum[t] += y[t][i].d * dx * (float)hsum8i(acc[t]) - y[t][i].d * dmx * (float)summ;
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = sum[t];
}

static TGT void avx2_dot4_q5_0(int64_t n, const void *w, const void *a, size_t a_stride,
                               float *out)
{
    const struct rb_block_q5_0 *x = w;
    const struct rb_block_q8_0 *y[4];
    for (int t = 0; t < 4; t++)
        y[t] = (const struct rb_block_q8_0 *)((const uint8_t *)a + t * a_stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < n / RB_QB; i++) {
        const float dx = h2f(x[i].d);
        const __m256i hi = _mm256_andnot_si256(bits32(rb_q5_0_qh(&x[i])), _mm256_set1_epi8((char)0xF0));
        const __m256i qx = _mm256_or_si256(nibbles32(x[i].qs), hi);
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        for (int t = 0; t < 4; t++) {
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)),
                                                ones);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[t][i].d)), _mm256_cvtepi32_ps(p),
                                     acc[t]);
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = hsum8(acc[t]);
}

rb_vec_dot4_fn rb__avx2_vec_dot4(uint32_t type)
{
    switch (type) {
    case RB_GGML_TYPE_Q8_0: return avx2_dot4_q8_0;
    case RB_GGML_TYPE_Q4_0: return avx2_dot4_q4_0;
    case RB_GGML_TYPE_Q4_K: return avx2_dot4_q4_k;
    case RB_GGML_TYPE_Q6_K: return avx2_dot4_q6_k;
    case RB_GGML_TYPE_Q5_K: return avx2_dot4_q5_k;
    case RB_GGML_TYPE_Q5_0: return avx2_dot4_q5_0;
    default: return NULL;
    }
}

/* y[i] += a * (float)x[i] for F16 x (attention values) */
static TGT void avx2_axpy_f16(float *y, float a, const rb_half *x, int64_t n)
{
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * h2f(x[i]);
}

rb_axpy_f16_fn rb__avx2_axpy_f16(void)
{
    return avx2_axpy_f16;
}

rb_vec_dot_fn rb__avx2_vec_dot(uint32_t type)
{
    switch (type) {
    case RB_GGML_TYPE_F32: return avx2_dot_f32;
    case RB_GGML_TYPE_F16: return avx2_dot_f16;
    case RB_GGML_TYPE_BF16: return avx2_dot_bf16;
    case RB_GGML_TYPE_Q8_0: return avx2_dot_q8_0;
    case RB_GGML_TYPE_Q4_0: return avx2_dot_q4_0;
    case RB_GGML_TYPE_Q4_1: return avx2_dot_q4_1;
    case RB_GGML_TYPE_Q5_0: return avx2_dot_q5_0;
    case RB_GGML_TYPE_Q4_K: return avx2_dot_q4_k;
    case RB_GGML_TYPE_Q5_K: return avx2_dot_q5_k;
    case RB_GGML_TYPE_Q6_K: return avx2_dot_q6_k;
    default: return NULL;
    }
}

#else
rb_vec_dot_fn rb__avx2_vec_dot(uint32_t type)
{
    (void)type;
    return NULL;
}
rb_vec_dot4_fn rb__avx2_vec_dot4(uint32_t type)
{
    (void)type;
    return NULL;
}
rb_axpy_f16_fn rb__avx2_axpy_f16(void)
{
    return NULL;
}
#endif
