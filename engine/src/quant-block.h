/* Per-block tensor mathematics: the scalar reference path (engine-private).
 *
 * Block layouts are ggml's (they are what GGUF files store); every function here
 * is a small `static inline RB_HD` function so the CUDA backend (issue 8) compiles
 * exactly the same code with nvcc (`RB_HD` is `__host__ __device__` there).
 *
 * Contents:
 *   - fp16 / bf16 <-> fp32 conversions (bit exact, round-to-nearest-even)
 *   - block structs for Q4_0 Q4_1 Q5_0 Q8_0 Q8_1 Q4_K Q5_K Q6_K Q8_K
 *   - dequantize one block -> 32 or 256 floats
 *   - quantize activations like ggml's *_ref functions: Q8_0, Q8_1 (32 per block)
 *     and Q8_K (256 per block, with 16-element sums)
 *   - block dot products weight-block x activation-block, as ggml's generic code
 *     computes them (integer sums per sub-block, then scaled)
 *   - weight quantizers used by `ragbox model quantize` and the benchmarks
 *
 * Which activation type goes with which weight type (ggml's vec_dot_type):
 *   F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0/Q4_0/Q5_0 -> Q8_0, Q4_1 -> Q8_1,
 *   Q4_K/Q5_K/Q6_K -> Q8_K.
 *
 * Pure functions over caller memory: thread-safe.
 */
#ifndef RAGBOX_ENGINE_QUANT_BLOCK_H
#define RAGBOX_ENGINE_QUANT_BLOCK_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define RB_HD __host__ __device__
#else
#define RB_HD
#endif

#define RB_QB 32   /* elements per legacy block */
#define RB_QBK 256 /* elements per k-quant super-block */
#define RB_K_SCALE_SIZE 12

typedef uint16_t rb_half; /* IEEE binary16 bits */
typedef uint16_t rb_bf16; /* bfloat16 bits */

/* ================================================================ conversions */

static inline RB_HD uint32_t rb_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline RB_HD float rb_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline RB_HD float rb_fp16_to_fp32(rb_half h)
{
    /* Exact: scale the half's exponent/mantissa into float range by multiplication. */
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = 0xE0u << 23;
    const float exp_scale = rb_bits_f32(0x7800000u); /* 2^-112 */
    const float normalized = rb_bits_f32((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = 126u << 23;
    const float magic_bias = 0.5f;
    const float denormalized = rb_bits_f32((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = 1u << 27;
    const uint32_t result =
        sign | (two_w < denormalized_cutoff ? rb_f32_bits(denormalized) : rb_f32_bits(normalized));
    return rb_bits_f32(result);
}

static inline RB_HD rb_half rb_fp32_to_fp16(float f)
{
    /* Round to nearest even, overflow to inf, NaN kept (the FP16 conversion ggml uses). */
    const float scale_to_inf = rb_bits_f32(0x77800000u);  /* 2^112 */
    const float scale_to_zero = rb_bits_f32(0x08800000u); /* 2^-110 */
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = rb_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = rb_bits_f32((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = rb_f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (rb_half)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline RB_HD float rb_bf16_to_fp32(rb_bf16 h)
{
    return rb_bits_f32((uint32_t)h << 16);
}

static inline RB_HD rb_bf16 rb_fp32_to_bf16(float f)
{
    uint32_t u = rb_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep quiet */
        return (rb_bf16)((u >> 16) | 64);
    return (rb_bf16)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* Round to nearest, ties to even, for |f| < 2^22 (ggml's nearest_int). */
static inline RB_HD int rb_nearest_int(float f)
{
    float val = f + 12582912.f;
    int32_t i;
    memcpy(&i, &val, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* ================================================================ block layouts */

struct rb_block_q4_0 {
    rb_half d;
    uint8_t qs[RB_QB / 2]; /* low nibbles: elements 0..15, high nibbles: 16..31 */
};
struct rb_block_q4_1 {
    rb_half d, m;
    uint8_t qs[RB_QB / 2];
};
struct rb_block_q5_0 {
    rb_half d;
    uint8_t qh[4]; /* fifth bits, little-endian u32 */
    uint8_t qs[RB_QB / 2];
};
struct rb_block_q8_0 {
    rb_half d;
    int8_t qs[RB_QB];
};
struct rb_block_q8_1 {
    rb_half d;
    rb_half s; /* d * sum(qs) */
    int8_t qs[RB_QB];
};
struct rb_block_q4_k {
    rb_half d, dmin;
    uint8_t scales[RB_K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[RB_QBK / 2];
};
struct rb_block_q5_k {
    rb_half d, dmin;
    uint8_t scales[RB_K_SCALE_SIZE];
    uint8_t qh[RB_QBK / 8];
    uint8_t qs[RB_QBK / 2];
};
struct rb_block_q6_k {
    uint8_t ql[RB_QBK / 2]; /* low 4 bits */
    uint8_t qh[RB_QBK / 4]; /* high 2 bits */
    int8_t scales[RB_QBK / 16];
    rb_half d;
};
struct rb_block_q8_k {
    float d;
    int8_t qs[RB_QBK];
    int16_t bsums[RB_QBK / 16]; /* sums of groups of 16 */
};

_Static_assert(sizeof(struct rb_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(struct rb_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(struct rb_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(struct rb_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(struct rb_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(struct rb_block_q4_k) == 144, "q4_K size");
_Static_assert(sizeof(struct rb_block_q5_k) == 176, "q5_K size");
_Static_assert(sizeof(struct rb_block_q6_k) == 210, "q6_K size");
_Static_assert(sizeof(struct rb_block_q8_k) == 292, "q8_K size");

/* ================================================================ dequantize */

static inline RB_HD void rb_dequant_q4_0(const struct rb_block_q4_0 *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d);
    for (int j = 0; j < RB_QB / 2; j++) {
        y[j] = (float)((b->qs[j] & 0x0F) - 8) * d;
        y[j + RB_QB / 2] = (float)((b->qs[j] >> 4) - 8) * d;
    }
}

static inline RB_HD void rb_dequant_q4_1(const struct rb_block_q4_1 *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d), m = rb_fp16_to_fp32(b->m);
    for (int j = 0; j < RB_QB / 2; j++) {
        y[j] = (float)(b->qs[j] & 0x0F) * d + m;
        y[j + RB_QB / 2] = (float)(b->qs[j] >> 4) * d + m;
    }
}

static inline RB_HD uint32_t rb_q5_0_qh(const struct rb_block_q5_0 *b)
{
    return (uint32_t)b->qh[0] | (uint32_t)b->qh[1] << 8 | (uint32_t)b->qh[2] << 16 |
           (uint32_t)b->qh[3] << 24;
}

static inline RB_HD void rb_dequant_q5_0(const struct rb_block_q5_0 *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d);
    const uint32_t qh = rb_q5_0_qh(b);
    for (int j = 0; j < RB_QB / 2; j++) {
        const int x0 = (int)((b->qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
        const int x1 = (int)((b->qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
        y[j] = (float)x0 * d;
        y[j + RB_QB / 2] = (float)x1 * d;
    }
}

static inline RB_HD void rb_dequant_q8_0(const struct rb_block_q8_0 *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d);
    for (int j = 0; j < RB_QB; j++)
        y[j] = (float)b->qs[j] * d;
}

/* 6-bit scale and min number j (0..7) of a Q4_K/Q5_K super-block. */
static inline RB_HD void rb_k_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static inline RB_HD void rb_dequant_q4_k(const struct rb_block_q4_k *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d), min = rb_fp16_to_fp32(b->dmin);
    const uint8_t *q = b->qs;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < RB_QBK; j += 64) {
        rb_k_scale_min(is + 0, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        rb_k_scale_min(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; ++l)
            *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l)
            *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

static inline RB_HD void rb_dequant_q5_k(const struct rb_block_q5_k *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d), min = rb_fp16_to_fp32(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    int is = 0;
    uint8_t sc, m, u1 = 1, u2 = 2;
    for (int j = 0; j < RB_QBK; j += 64) {
        rb_k_scale_min(is + 0, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        rb_k_scale_min(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; ++l)
            *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
            *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

static inline RB_HD void rb_dequant_q6_k(const struct rb_block_q6_k *b, float *y)
{
    const float d = rb_fp16_to_fp32(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < RB_QBK; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

static inline RB_HD void rb_dequant_q8_k(const struct rb_block_q8_k *b, float *y)
{
    for (int j = 0; j < RB_QBK; j++)
        y[j] = b->d * b->qs[j];
}

/* ================================================================ activations */

static inline RB_HD void rb_quant_q8_0(const float *x, struct rb_block_q8_0 *b)
{
    float amax = 0.0f;
    for (int j = 0; j < RB_QB; j++) {
        const float v = fabsf(x[j]);
        amax = v > amax ? v : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    /* round half to even, as the reference's SIMD quantizer (_MM_ROUND_NEAREST) does */
    for (int j = 0; j < RB_QB; j++)
        b->qs[j] = (int8_t)rb_nearest_int(x[j] * id);
}

static inline RB_HD void rb_quant_q8_1(const float *x, struct rb_block_q8_1 *b)
{
    float amax = 0.0f;
    for (int j = 0; j < RB_QB; j++) {
        const float v = fabsf(x[j]);
        amax = v > amax ? v : amax;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < RB_QB; j++) {
        b->qs[j] = (int8_t)rb_nearest_int(x[j] * id);
        sum += b->qs[j];
    }
    b->s = rb_fp32_to_fp16((float)sum * d);
}

static inline RB_HD void rb_quant_q8_k(const float *x, struct rb_block_q8_k *b)
{
    float max = 0, amax = 0;
    for (int j = 0; j < RB_QBK; ++j) {
        const float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax == 0.0f) {
        b->d = 0;
        memset(b->qs, 0, sizeof b->qs);
        memset(b->bsums, 0, sizeof b->bsums);
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < RB_QBK; ++j) {
        const int v = rb_nearest_int(iscale * x[j]);
        b->qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < RB_QBK / 16; ++j) {
        int sum = 0;
        for (int ii = 0; ii < 16; ++ii)
            sum += b->qs[j * 16 + ii];
        b->bsums[j] = (int16_t)sum;
    }
    b->d = 1 / iscale;
}

/* ================================================================ block dots */

static inline RB_HD float rb_dot_q8_0_q8_0(const struct rb_block_q8_0 *x,
                                           const struct rb_block_q8_0 *y)
{
    int sumi = 0;
    for (int j = 0; j < RB_QB; j++)
        sumi += x->qs[j] * y->qs[j];
    return (float)sumi * (rb_fp16_to_fp32(x->d) * rb_fp16_to_fp32(y->d));
}

static inline RB_HD float rb_dot_q4_0_q8_0(const struct rb_block_q4_0 *x,
                                           const struct rb_block_q8_0 *y)
{
    int sumi = 0;
    for (int j = 0; j < RB_QB / 2; j++) {
        const int v0 = (x->qs[j] & 0x0F) - 8;
        const int v1 = (x->qs[j] >> 4) - 8;
        sumi += v0 * y->qs[j] + v1 * y->qs[j + RB_QB / 2];
    }
    return (float)sumi * (rb_fp16_to_fp32(x->d) * rb_fp16_to_fp32(y->d));
}

static inline RB_HD float rb_dot_q4_1_q8_1(const struct rb_block_q4_1 *x,
                                           const struct rb_block_q8_1 *y)
{
    int sumi = 0;
    for (int j = 0; j < RB_QB / 2; j++) {
        const int v0 = x->qs[j] & 0x0F;
        const int v1 = x->qs[j] >> 4;
        sumi += v0 * y->qs[j] + v1 * y->qs[j + RB_QB / 2];
    }
    return (rb_fp16_to_fp32(x->d) * rb_fp16_to_fp32(y->d)) * (float)sumi +
           rb_fp16_to_fp32(x->m) * rb_fp16_to_fp32(y->s);
}

static inline RB_HD float rb_dot_q5_0_q8_0(const struct rb_block_q5_0 *x,
                                           const struct rb_block_q8_0 *y)
{
    const uint32_t qh = rb_q5_0_qh(x);
    int sumi = 0;
    for (int j = 0; j < RB_QB / 2; j++) {
        const int x0 = (int)((x->qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
        const int x1 = (int)((x->qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
        sumi += x0 * y->qs[j] + x1 * y->qs[j + RB_QB / 2];
    }
    return (float)sumi * (rb_fp16_to_fp32(x->d) * rb_fp16_to_fp32(y->d));
}

static inline RB_HD float rb_dot_q4_k_q8_k(const struct rb_block_q4_k *x,
                                           const struct rb_block_q8_k *y)
{
    int sumi = 0, summ = 0;
    const uint8_t *q = x->qs;
    const int8_t *a = y->qs;
    for (int j = 0; j < 4; j++) { /* 64 elements: two sub-blocks of 32 */
        uint8_t sc0, m0, sc1, m1;
        rb_k_scale_min(2 * j, x->scales, &sc0, &m0);
        rb_k_scale_min(2 * j + 1, x->scales, &sc1, &m1);
        int s0 = 0, s1 = 0;
        for (int l = 0; l < 32; l++) {
            s0 += (q[l] & 0xF) * a[l];
            s1 += (q[l] >> 4) * a[l + 32];
        }
        sumi += sc0 * s0 + sc1 * s1;
        summ += m0 * (y->bsums[4 * j] + y->bsums[4 * j + 1]) +
                m1 * (y->bsums[4 * j + 2] + y->bsums[4 * j + 3]);
        q += 32;
        a += 64;
    }
    return y->d * rb_fp16_to_fp32(x->d) * (float)sumi -
           y->d * rb_fp16_to_fp32(x->dmin) * (float)summ;
}

static inline RB_HD float rb_dot_q5_k_q8_k(const struct rb_block_q5_k *x,
                                           const struct rb_block_q8_k *y)
{
    int sumi = 0, summ = 0;
    const uint8_t *q = x->qs;
    const int8_t *a = y->qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 4; j++) {
        uint8_t sc0, m0, sc1, m1;
        rb_k_scale_min(2 * j, x->scales, &sc0, &m0);
        rb_k_scale_min(2 * j + 1, x->scales, &sc1, &m1);
        int s0 = 0, s1 = 0;
        for (int l = 0; l < 32; l++) {
            s0 += ((q[l] & 0xF) + (x->qh[l] & u1 ? 16 : 0)) * a[l];
            s1 += ((q[l] >> 4) + (x->qh[l] & u2 ? 16 : 0)) * a[l + 32];
        }
        sumi += sc0 * s0 + sc1 * s1;
        summ += m0 * (y->bsums[4 * j] + y->bsums[4 * j + 1]) +
                m1 * (y->bsums[4 * j + 2] + y->bsums[4 * j + 3]);
        q += 32;
        a += 64;
        u1 <<= 2;
        u2 <<= 2;
    }
    return y->d * rb_fp16_to_fp32(x->d) * (float)sumi -
           y->d * rb_fp16_to_fp32(x->dmin) * (float)summ;
}

static inline RB_HD float rb_dot_q6_k_q8_k(const struct rb_block_q6_k *x,
                                           const struct rb_block_q8_k *y)
{
    int sumi = 0;
    const uint8_t *ql = x->ql, *qh = x->qh;
    const int8_t *a = y->qs, *sc = x->scales;
    for (int n = 0; n < 2; n++) { /* 128 elements each: 8 groups of 16 */
        int s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            s[is + 0] += q1 * a[l];
            s[is + 2] += q2 * a[l + 32];
            s[is + 4] += q3 * a[l + 64];
            s[is + 6] += q4 * a[l + 96];
        }
        for (int k = 0; k < 8; k++)
            sumi += sc[k] * s[k];
        ql += 64;
        qh += 32;
        a += 128;
        sc += 8;
    }
    return y->d * rb_fp16_to_fp32(x->d) * (float)sumi;
}

/* ================================================================ small math */

static inline RB_HD float rb_silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* GELU, tanh approximation (ggml_gelu). */
static inline RB_HD float rb_gelu(float x)
{
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + 0.044715f * x * x)));
}

/* ================================================================ weight quantizers
 * Used by `ragbox model quantize` and the benchmark model generator. Q8_0/Q4_0/Q4_1/Q5_0
 * follow ggml's reference quantizers exactly. The k-quant quantizers search the
 * per-sub-block scale (and min) over a small grid of candidates minimising squared
 * error, like ggml's make_qx_quants / make_qkx2_quants without importance weights. */

static inline RB_HD void rb_quantw_q8_0(const float *x, struct rb_block_q8_0 *b)
{
    float amax = 0.0f;
    for (int j = 0; j < RB_QB; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    for (int j = 0; j < RB_QB; j++) /* the reference quantizer rounds half away from zero */
        b->qs[j] = (int8_t)roundf(x[j] * id);
}

static inline RB_HD void rb_quantw_q4_0(const float *x, struct rb_block_q4_0 *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < RB_QB; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    for (int j = 0; j < RB_QB / 2; ++j) {
        const float x0 = x[j] * id, x1 = x[RB_QB / 2 + j] * id;
        int xi0 = (int)(x0 + 8.5f), xi1 = (int)(x1 + 8.5f);
        xi0 = xi0 < 15 ? xi0 : 15;
        xi1 = xi1 < 15 ? xi1 : 15;
        b->qs[j] = (uint8_t)(xi0 | (xi1 << 4));
    }
}

static inline RB_HD void rb_quantw_q4_1(const float *x, struct rb_block_q4_1 *b)
{
    float min = x[0], max = x[0];
    for (int j = 1; j < RB_QB; j++) {
        min = x[j] < min ? x[j] : min;
        max = x[j] > max ? x[j] : max;
    }
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    b->m = rb_fp32_to_fp16(min);
    for (int j = 0; j < RB_QB / 2; ++j) {
        int xi0 = (int)((x[j] - min) * id + 0.5f), xi1 = (int)((x[RB_QB / 2 + j] - min) * id + 0.5f);
        xi0 = xi0 < 15 ? xi0 : 15;
        xi1 = xi1 < 15 ? xi1 : 15;
        b->qs[j] = (uint8_t)(xi0 | (xi1 << 4));
    }
}

static inline RB_HD void rb_quantw_q5_0(const float *x, struct rb_block_q5_0 *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < RB_QB; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = rb_fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < RB_QB / 2; ++j) {
        int xi0 = (int)(x[j] * id + 16.5f), xi1 = (int)(x[RB_QB / 2 + j] * id + 16.5f);
        xi0 = xi0 < 31 ? xi0 : 31;
        xi1 = xi1 < 31 ? xi1 : 31;
        b->qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((uint32_t)(xi0 & 0x10) >> 4) << (j + 0);
        qh |= ((uint32_t)(xi1 & 0x10) >> 4) << (j + RB_QB / 2);
    }
    for (int k = 0; k < 4; k++)
        b->qh[k] = (uint8_t)(qh >> (8 * k));
}

/* Asymmetric n-bit (nmax = 15 or 31) quantization of 32 values: x ~ scale*L - min, L in
 * [0,nmax]. Returns scale, *the_min >= 0 (stored as a subtracted offset). */
static inline RB_HD float rb_k_quant_asym(int n, int nmax, const float *x, uint8_t *L,
                                          float *the_min)
{
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; ++i) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (mn > 0)
        mn = 0;
    if (mx == mn) {
        for (int i = 0; i < n; ++i)
            L[i] = 0;
        *the_min = -mn;
        return 0.f;
    }
    float best_err = INFINITY, best_scale = 0, best_min = 0;
    for (int step = -4; step <= 4; step++) { /* candidate ranges around max-min */
        const float iscale = ((float)nmax + 0.1f * step) / (mx - mn);
        /* least squares fit of scale and min for the rounding this iscale gives */
        float sum_l = 0, sum_l2 = 0, sum_xl = 0, sum_x = 0;
        uint8_t Ltmp[32];
        for (int i = 0; i < n; ++i) {
            int l = rb_nearest_int(iscale * (x[i] - mn));
            l = l < 0 ? 0 : (l > nmax ? nmax : l);
            Ltmp[i] = (uint8_t)l;
            sum_l += l;
            sum_l2 += (float)l * l;
            sum_xl += l * x[i];
            sum_x += x[i];
        }
        const float D = n * sum_l2 - sum_l * sum_l;
        float scale, mnv;
        if (D > 0) {
            scale = (n * sum_xl - sum_x * sum_l) / D;
            mnv = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (mnv > 0) {
                mnv = 0;
                scale = sum_l2 > 0 ? sum_xl / sum_l2 : 0;
            }
        } else {
            scale = 1 / iscale;
            mnv = mn;
        }
        float err = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = scale * Ltmp[i] + mnv - x[i];
            err += diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best_scale = scale;
            best_min = mnv;
            for (int i = 0; i < n; ++i)
                L[i] = Ltmp[i];
        }
    }
    *the_min = -best_min;
    return best_scale;
}

/* Packs 8 6-bit scales and mins into the 12-byte Q4_K/Q5_K layout. */
static inline RB_HD void rb_k_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s)
{
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j - 0] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Q4_K / Q5_K: nmax 15 or 31; q5 selects the 5-bit layout. Writes 256 levels to L. */
static inline RB_HD void rb_quantw_k_common(const float *x, int nmax, uint8_t *L,
                                            uint8_t *scales12, rb_half *dout, rb_half *dminout)
{
    float sc[8], mins[8], max_scale = 0, max_min = 0;
    uint8_t Ls[RB_QBK];
    for (int j = 0; j < 8; ++j) {
        sc[j] = rb_k_quant_asym(32, nmax, x + 32 * j, Ls + 32 * j, &mins[j]);
        max_scale = sc[j] > max_scale ? sc[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        int a = rb_nearest_int(inv_scale * sc[j]), b = rb_nearest_int(inv_min * mins[j]);
        ls[j] = (uint8_t)(a < 0 ? 0 : (a > 63 ? 63 : a));
        lm[j] = (uint8_t)(b < 0 ? 0 : (b > 63 ? 63 : b));
    }
    memset(scales12, 0, RB_K_SCALE_SIZE);
    rb_k_pack_scales(ls, lm, scales12);
    *dout = rb_fp32_to_fp16(max_scale / 63.f);
    *dminout = rb_fp32_to_fp16(max_min / 63.f);
    /* requantize with the stored (rounded) scales */
    const float d = rb_fp16_to_fp32(*dout), dm = rb_fp16_to_fp32(*dminout);
    for (int j = 0; j < 8; ++j) {
        const float dd = d * ls[j];
        const float m = dm * lm[j];
        for (int ii = 0; ii < 32; ++ii) {
            int l = dd != 0.0f ? rb_nearest_int((x[32 * j + ii] + m) / dd) : 0;
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : (l > nmax ? nmax : l));
        }
    }
}

static inline RB_HD void rb_quantw_q4_k(const float *x, struct rb_block_q4_k *b)
{
    uint8_t L[RB_QBK];
    rb_quantw_k_common(x, 15, L, b->scales, &b->d, &b->dmin);
    uint8_t *q = b->qs;
    for (int j = 0; j < RB_QBK; j += 64) {
        for (int l = 0; l < 32; ++l)
            q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

static inline RB_HD void rb_quantw_q5_k(const float *x, struct rb_block_q5_k *b)
{
    uint8_t L[RB_QBK];
    rb_quantw_k_common(x, 31, L, b->scales, &b->d, &b->dmin);
    uint8_t *ql = b->qs, *qh = b->qh;
    memset(qh, 0, RB_QBK / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < RB_QBK; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 <<= 2;
        m2 <<= 2;
        ql += 32;
    }
}

/* Symmetric: x ~ scale * (L - 32), L in [0,63], 16 values. Returns scale. */
static inline RB_HD float rb_k_quant_sym16(const float *x, int *L)
{
    float amax = 0, max = 0;
    for (int i = 0; i < 16; ++i) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax == 0.0f) {
        for (int i = 0; i < 16; ++i)
            L[i] = 0;
        return 0.f;
    }
    float best = 0, best_err = INFINITY;
    for (int is = -9; is <= 9; ++is) {
        const float iscale = -(32 + 0.1f * is) / max;
        float sumlx = 0, suml2 = 0;
        int Lt[16];
        for (int i = 0; i < 16; ++i) {
            int l = rb_nearest_int(iscale * x[i]);
            l = l < -32 ? -32 : (l > 31 ? 31 : l);
            Lt[i] = l;
            sumlx += x[i] * l;
            suml2 += (float)l * l;
        }
        const float scale = suml2 > 0 ? sumlx / suml2 : 0;
        float err = 0;
        for (int i = 0; i < 16; ++i) {
            const float diff = scale * Lt[i] - x[i];
            err += diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best = scale;
            for (int i = 0; i < 16; ++i)
                L[i] = Lt[i];
        }
    }
    return best;
}

static inline RB_HD void rb_quantw_q6_k(const float *x, struct rb_block_q6_k *b)
{
    float scales[16], max_scale = 0, max_abs = 0;
    int L[RB_QBK];
    for (int ib = 0; ib < 16; ++ib) {
        scales[ib] = rb_k_quant_sym16(x + 16 * ib, L + 16 * ib);
        if (fabsf(scales[ib]) > max_abs) {
            max_abs = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    if (max_abs == 0.0f) {
        memset(b, 0, sizeof *b);
        return;
    }
    const float iscale = -128.f / max_scale;
    b->d = rb_fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) {
        int s = rb_nearest_int(iscale * scales[ib]);
        b->scales[ib] = (int8_t)(s < -128 ? -128 : (s > 127 ? 127 : s));
    }
    for (int j = 0; j < 16; ++j) {
        const float d = rb_fp16_to_fp32(b->d) * b->scales[j];
        for (int ii = 0; ii < 16; ++ii) {
            int l = d != 0.0f ? rb_nearest_int(x[16 * j + ii] / d) : 0;
            l = l < -32 ? -32 : (l > 31 ? 31 : l);
            L[16 * j + ii] = l + 32;
        }
    }
    uint8_t *ql = b->ql, *qh = b->qh;
    for (int j = 0; j < RB_QBK; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const int q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
            const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

#endif
