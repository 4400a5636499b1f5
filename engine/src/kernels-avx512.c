/* AVX-512 row dot products (F/BW/VL, and VNNI where present for the integer dots).
 * Types not listed here fall back to the AVX2 versions (kernels.c fills the table). */
#include "kernels.h"

#include <string.h>

#include "ggml-types.h"
#include "quant-block.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

static TGT float avx512_dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static TGT float avx512_dot_f16(int64_t n, const void *w, const void *a)
{
    const rb_half *x = w, *y = a;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))), s0);
        s1 = _mm512_fmadd_ps(
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))),
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + 16))), s1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++)
        s += rb_fp16_to_fp32(x[i]) * rb_fp16_to_fp32(y[i]);
    return s;
}

/* Q8_0 x Q8_0, two blocks per 512-bit register pair of 256-bit halves. */
static TGT float avx512_dot_q8_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q8_0 *x = w, *y = a;
    const int64_t nb = n / RB_QB;
    __m512 acc = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi16(1);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i qx = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[i].qs)),
            _mm256_loadu_si256((const __m256i *)x[i + 1].qs), 1);
        const __m512i qy = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[i].qs)),
            _mm256_loadu_si256((const __m256i *)y[i + 1].qs), 1);
        const __m512i ax = _mm512_abs_epi8(qx);
        /* sy = y with the sign of x (x == 0 -> product 0 anyway since ax == 0) */
        const __mmask64 neg = _mm512_movepi8_mask(qx);
        const __m512i sy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
        const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(ax, sy), ones);
        const float d0 = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        const float d1 = _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d);
        const __m512 dv = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
        acc = _mm512_fmadd_ps(dv, _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; i < nb; i++)
        s += rb_dot_q8_0_q8_0(&x[i], &y[i]);
    return s;
}

/* ---- VNNI row dots (decode). Weights are unsigned (nibble, or 5-bit with the fifth bit
 * added through a byte mask); the offset is removed exactly in the integer domain with a
 * second vpdpbusd of the activations against the constant offset. */
#define TGTV __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

static inline TGTV __m512i nib64(const uint8_t *q0, const uint8_t *q1)
{
    const __m128i t0 = _mm_loadu_si128((const __m128i *)q0);
    const __m128i t1 = _mm_loadu_si128((const __m128i *)q1);
    const __m256i b0 = _mm256_set_m128i(_mm_srli_epi16(t0, 4), t0);
    const __m256i b1 = _mm256_set_m128i(_mm_srli_epi16(t1, 4), t1);
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1),
                            _mm512_set1_epi8(0x0F));
}

static inline TGTV __m512i act64(const int8_t *a0, const int8_t *a1)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a0)),
                              _mm256_loadu_si256((const __m256i *)a1), 1);
}

static TGTV float vnni_dot_q4_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q4_0 *x = w;
    const struct rb_block_q8_0 *y = a;
    const int64_t nb = n / RB_QB;
    __m512 acc = _mm512_setzero_ps();
    const __m512i off = _mm512_set1_epi8(8);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i q = nib64(x[i].qs, x[i + 1].qs);
        const __m512i ay = act64(y[i].qs, y[i + 1].qs);
        const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, ay),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, ay));
        const float d0 = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        const float d1 = _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d);
        const __m512 dv = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
        acc = _mm512_fmadd_ps(dv, _mm512_cvtepi32_ps(dot), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; i < nb; i++)
        s += rb_dot_q4_0_q8_0(&x[i], &y[i]);
    return s;
}

static TGTV float vnni_dot_q5_0(int64_t n, const void *w, const void *a)
{
    const struct rb_block_q5_0 *x = w;
    const struct rb_block_q8_0 *y = a;
    const int64_t nb = n / RB_QB;
    __m512 acc = _mm512_setzero_ps();
    const __m512i off = _mm512_set1_epi8(16);
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i q = nib64(x[i].qs, x[i + 1].qs);
        const uint64_t hb = (uint64_t)rb_q5_0_qh(&x[i]) | (uint64_t)rb_q5_0_qh(&x[i + 1]) << 32;
        q = _mm512_mask_add_epi8(q, (__mmask64)hb, q, off);
        const __m512i ay = act64(y[i].qs, y[i + 1].qs);
        const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, ay),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, ay));
        const float d0 = _cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d);
        const float d1 = _cvtsh_ss(x[i + 1].d) * _cvtsh_ss(y[i + 1].d);
        const __m512 dv = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
        acc = _mm512_fmadd_ps(dv, _mm512_cvtepi32_ps(dot), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; i < nb; i++)
        s += rb_dot_q5_0_q8_0(&x[i], &y[i]);
    return s;
}

/* Q4_K / Q5_K: one 512-bit vector holds groups (g, g + 2) of a 64-element chunk pair;
 * maddubs (u8 <= 31 x s8: no saturation) then vpdpwssd with the 6-bit group scales
 * accumulates the whole super-block in one integer vector. */
static inline TGTV __m512i scale_pair(int s0, int s1)
{
    return _mm512_inserti64x4(_mm512_set1_epi16((short)s0), _mm256_set1_epi16((short)s1), 1);
}

static TGTV float vnni_dot_qk45(int64_t n, const void *w, const void *a, bool five)
{
    const struct rb_block_q8_k *y = a;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 accf = _mm512_setzero_ps();
    __m256 summv = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RB_QBK; i++) {
        const uint8_t *scales, *qs, *qh = NULL;
        rb_half d, dmin;
        if (five) {
            const struct rb_block_q5_k *x = (const struct rb_block_q5_k *)w + i;
            scales = x->scales;
            qs = x->qs;
            qh = x->qh;
            d = x->d;
            dmin = x->dmin;
        } else {
            const struct rb_block_q4_k *x = (const struct rb_block_q4_k *)w + i;
            scales = x->scales;
            qs = x->qs;
            d = x->d;
            dmin = x->dmin;
        }
        /* the 8 (6-bit scale, 6-bit min) pairs unpacked 4 at a time (as rb_k_scale_min) */
        uint32_t u[4];
        memcpy(u, scales, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        const uint32_t m_lo = u[1] & 0x3f3f3f3fu;
        u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = m_lo;
        u[0] &= 0x3f3f3f3fu;
        uint8_t sc[8];
        memcpy(sc, u, 8);
        /* mins . (pair sums of the 16-element activation sums) */
        const __m256i bs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums),
                                              _mm256_set1_epi16(1));
        const __m256i mn = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&u[2]));
        summv = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * _cvtsh_ss(dmin)),
                                _mm256_cvtepi32_ps(_mm256_mullo_epi32(mn, bs)), summv);
        const int8_t *p = y[i].qs;
        __m512i acc = _mm512_setzero_si512();
        __m512i hbits = _mm512_setzero_si512();
        if (five) /* qh[l] bit g: element l of group g; both 256-bit halves see all 32 bytes */
            hbits = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
        for (int c = 0; c < 2; c++) { /* chunks (2c, 2c+1) -> groups 4c..4c+3 */
            const __m512i z = _mm512_loadu_si512((const void *)(qs + 64 * c));
            __m512i lo = _mm512_and_si512(z, m4);                         /* groups 4c, 4c+2 */
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);   /* groups 4c+1, 4c+3 */
            if (five) {
                const int g0 = 4 * c;
                /* lane half 0 -> group g0 (bit g0), half 1 -> group g0 + 2 (bit g0 + 2) */
                const __m512i sh_lo = _mm512_inserti64x4(_mm512_set1_epi64(g0), _mm256_set1_epi64x(g0 + 2), 1);
                const __m512i sh_hi = _mm512_inserti64x4(_mm512_set1_epi64(g0 + 1), _mm256_set1_epi64x(g0 + 3), 1);
                const __m512i one = _mm512_set1_epi8(1);
                /* shifting 64-bit lanes moves bits across bytes; the mask with 1 per byte
                 * after the shift keeps only each byte's own bit g */
                const __m512i b_lo = _mm512_and_si512(_mm512_srlv_epi64(hbits, sh_lo), one);
                const __m512i b_hi = _mm512_and_si512(_mm512_srlv_epi64(hbits, sh_hi), one);
                lo = _mm512_or_si512(lo, _mm512_slli_epi16(b_lo, 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi16(b_hi, 4));
            }
            const __m512i a_lo = act64(p + 128 * c, p + 128 * c + 64);
            const __m512i a_hi = act64(p + 128 * c + 32, p + 128 * c + 96);
            acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(lo, a_lo),
                                      scale_pair(sc[4 * c], sc[4 * c + 2]));
            acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(hi, a_hi),
                                      scale_pair(sc[4 * c + 1], sc[4 * c + 3]));
        }
        accf = _mm512_fmadd_ps(_mm512_set1_ps(y[i].d * _cvtsh_ss(d)), _mm512_cvtepi32_ps(acc), accf);
    }
    const __m128 r = _mm_add_ps(_mm256_castps256_ps128(summv), _mm256_extractf128_ps(summv, 1));
    const __m128 r2 = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return _mm512_reduce_add_ps(accf) - _mm_cvtss_f32(_mm_add_ss(r2, _mm_movehdup_ps(r2)));
}

static TGTV float vnni_dot_q4_k(int64_t n, const void *w, const void *a)
{
    return vnni_dot_qk45(n, w, a, false);
}
static TGTV float vnni_dot_q5_k(int64_t n, const void *w, const void *a)
{
    return vnni_dot_qk45(n, w, a, true);
}

/* ---- attention over an F16 KV cache (hd a multiple of 16) */

/* 16 vectors -> one vector of their 16 horizontal sums (lane i = sum of v[i]) */
static inline TGT __m512 reduce16(const __m512 *vin)
{
    /* the tree below leaves vector L + 4e at lane 4L + e: feed it transposed */
    __m512 v[16];
    for (int k = 0; k < 16; k++)
        v[k] = vin[4 * (k % 4) + k / 4];
    /* pairwise: step 1 combines 256-bit halves, then 128, 64, 32 */
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) {
        const __m512 lo = _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44); /* v0.lo256 v1.lo256 */
        const __m512 hi = _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE);
        a[i] = _mm512_add_ps(lo, hi); /* lanes 0-7: v[2i] partial, 8-15: v[2i+1] partial */
    }
    for (int i = 0; i < 4; i++) {
        const __m512 lo = _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88); /* 128-bit 0,2 | 0,2 */
        const __m512 hi = _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xDD); /* 1,3 | 1,3 */
        b[i] = _mm512_add_ps(lo, hi);
        /* 128-bit lane L of b[i]: (vector 4i + (L&1) + 2*(L>>1)... ) partial sums of 4 */
    }
    for (int i = 0; i < 2; i++) {
        const __m512 lo = _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44);
        const __m512 hi = _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xEE);
        c[i] = _mm512_add_ps(lo, hi);
    }
    const __m512 lo = _mm512_shuffle_ps(c[0], c[1], 0x88);
    const __m512 hi = _mm512_shuffle_ps(c[0], c[1], 0xDD);
    return _mm512_add_ps(lo, hi);
}

static TGT void avx512_attn_scores(const float *q, const rb_half *k, size_t stride, int n, int hd,
                                   float scale, float *out)
{
    __m512 qv[16];
    const int nv = hd / 16;
    for (int i = 0; i < nv; i++)
        qv[i] = _mm512_loadu_ps(q + 16 * i);
    int p = 0;
    for (; p + 16 <= n; p += 16) {
        __m512 acc[16];
        for (int r = 0; r < 16; r++) {
            const rb_half *kr = k + (size_t)(p + r) * stride;
            __m512 s = _mm512_mul_ps(qv[0], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)kr)));
            for (int i = 1; i < nv; i++)
                s = _mm512_fmadd_ps(qv[i],
                                    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + 16 * i))), s);
            acc[r] = s;
        }
        _mm512_storeu_ps(out + p, _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(scale)));
    }
    for (; p < n; p++) {
        const rb_half *kr = k + (size_t)p * stride;
        __m512 s = _mm512_setzero_ps();
        for (int i = 0; i < nv; i++)
            s = _mm512_fmadd_ps(qv[i], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + 16 * i))), s);
        out[p] = _mm512_reduce_add_ps(s) * scale;
    }
}

static TGT void avx512_attn_values(const float *w, const rb_half *v, size_t stride, int n, int hd,
                                   float *acc)
{
    for (int i0 = 0; i0 < hd; i0 += 64) { /* 4 accumulators of 16 per pass */
        const int nv = (hd - i0) / 16 < 4 ? (hd - i0) / 16 : 4;
        __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (int p = 0; p < n; p++) {
            const __m512 wp = _mm512_set1_ps(w[p]);
            const rb_half *vr = v + (size_t)p * stride + i0;
            for (int i = 0; i < nv; i++)
                a[i] = _mm512_fmadd_ps(wp, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr + 16 * i))),
                                       a[i]);
        }
        for (int i = 0; i < nv; i++)
            _mm512_storeu_ps(acc + i0 + 16 * i, a[i]);
    }
}

rb_attn_scores_fn rb__avx512_attn_scores(void)
{
    return avx512_attn_scores;
}
rb_attn_values_fn rb__avx512_attn_values(void)
{
    return avx512_attn_values;
}

rb_vec_dot_fn rb__avx512_vec_dot(uint32_t type)
{
    if (!__builtin_cpu_supports("avx512dq"))
        return NULL; /* _mm512_insertf32x8 */
    if (__builtin_cpu_supports("avx512vnni")) {
        switch (type) {
        case RB_GGML_TYPE_Q4_0: return vnni_dot_q4_0;
        case RB_GGML_TYPE_Q5_0: return vnni_dot_q5_0;
        case RB_GGML_TYPE_Q4_K: return vnni_dot_q4_k;
        case RB_GGML_TYPE_Q5_K: return vnni_dot_q5_k;
        default: break;
        }
    }
    switch (type) {
    case RB_GGML_TYPE_F32: return avx512_dot_f32;
    case RB_GGML_TYPE_F16: return avx512_dot_f16;
    case RB_GGML_TYPE_Q8_0: return avx512_dot_q8_0;
    default: return NULL;
    }
}
#else
rb_vec_dot_fn rb__avx512_vec_dot(uint32_t type)
{
    (void)type;
    return NULL;
}
rb_attn_scores_fn rb__avx512_attn_scores(void)
{
    return NULL;
}
rb_attn_values_fn rb__avx512_attn_values(void)
{
    return NULL;
}
#endif
