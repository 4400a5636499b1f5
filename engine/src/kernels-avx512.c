/* AVX-512 row dot products (F/BW/VL, and VNNI where present for the integer dots).
 * Types not listed here fall back to the AVX2 versions (kernels.c fills the table). */
#include "kernels.h"

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

rb_vec_dot_fn rb__avx512_vec_dot(uint32_t type)
{
    if (!__builtin_cpu_supports("avx512dq"))
        return NULL; /* _mm512_insertf32x8 */
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
#endif
