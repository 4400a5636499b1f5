/* Tiled matrix-matrix kernels for prefill (AVX-512 F/BW/VL/DQ + VNNI).
 *
 * Layout: a "panel" is 16 weight rows, repacked once per matmul by the thread that
 * claimed it (masked gathers straight from the GGUF blocks, so rows past the end are
 * never read) into groups of G = 32 (or 16 for Q6_K) elements:
 *     G/4 vectors of 16 lanes (lane = row) x 4 unsigned bytes (4 consecutive elements)
 *     S: 16 floats, the group's scale per row
 *     M: 16 floats, the group's min per row (Q4_K, Q5_K)
 * Weights are stored unsigned (the offset types: Q8_0 +128, Q4_0 +8, Q5_0 +16, Q6_K
 * +32 are corrected exactly in the integer accumulator with -offset * sum(activations),
 * the min types subtract M * d_act * sum(activations) in float). The activations are
 * the reference quantization (Q8_0 / Q8_K blocks, as the scalar path uses), read in
 * place: one `vpdpbusd` multiplies 16 rows x 4 elements by 4 activation bytes
 * broadcast, so a group of 32 costs 8 vpdpbusd + 4 float ops for 16 rows of one token;
 * a tile is 16 rows x up to 8 tokens with the weights held in registers.
 *
 * F16: the panel holds the 16 rows transposed as floats (F16C convert at repack), the
 * activations (rounded to F16 as the reference does) as floats; one FMA per element
 * and token.
 *
 * Results equal the scalar reference's integer sums exactly per group; only the float
 * accumulation order differs (tests/engine/test-kernels.c checks odd sizes).
 */
#include "kernels.h"

#include <string.h>

#include "ggml-types.h"
#include "quant-block.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define NT_MAX 8    /* tokens per tile (integer kernels) */
#define NT_F16 12   /* tokens per tile (F16) */

/* ---- per-type description */
struct qdesc {
    uint32_t type;
    int G;          /* elements per group */
    bool has_min;   /* float min term (K-quants with mins) */
    int offset;     /* unsigned offset of the stored weights (offset types) */
    int act_k;      /* activation is Q8_K (else Q8_0) */
};

static const struct qdesc qd_q8_0 = {RB_GGML_TYPE_Q8_0, 32, false, 128, 0};
static const struct qdesc qd_q4_0 = {RB_GGML_TYPE_Q4_0, 32, false, 8, 0};
static const struct qdesc qd_q5_0 = {RB_GGML_TYPE_Q5_0, 32, false, 16, 0};
static const struct qdesc qd_q4_k = {RB_GGML_TYPE_Q4_K, 32, true, 0, 1};
static const struct qdesc qd_q5_k = {RB_GGML_TYPE_Q5_K, 32, true, 0, 1};
static const struct qdesc qd_q6_k = {RB_GGML_TYPE_Q6_K, 16, false, 32, 1};

static const struct qdesc *desc_of(uint32_t type)
{
    switch (type) {
    case RB_GGML_TYPE_Q8_0: return &qd_q8_0;
    case RB_GGML_TYPE_Q4_0: return &qd_q4_0;
    case RB_GGML_TYPE_Q5_0: return &qd_q5_0;
    case RB_GGML_TYPE_Q4_K: return &qd_q4_k;
    case RB_GGML_TYPE_Q5_K: return &qd_q5_k;
    case RB_GGML_TYPE_Q6_K: return &qd_q6_k;
    default: return NULL;
    }
}

/* bytes of one repacked group: G/4 weight vectors + S + M */
static inline size_t group_bytes(int G)
{
    return (size_t)(G / 4 + 2) * 64;
}

/* ---- activations: the aux table
 * int32 qoff[ng] (byte offset of group g's values in an activation row), then per
 * token and group two 32-bit words: the activation scale (float) and either
 * -offset * sum(q) (int32, offset types) or scale * sum(q) (float, min types). */
static size_t q_aux_bytes(uint32_t type, int64_t n_cols, int n_tok)
{
    const struct qdesc *q = desc_of(type);
    const int64_t ng = n_cols / q->G;
    return (size_t)ng * 4 + (size_t)n_tok * (size_t)ng * 8 + 64;
}

static void q_prep(uint32_t type, const struct rb_gemm_args *a, void *aux)
{
    const struct qdesc *q = desc_of(type);
    const int G = q->G;
    const int64_t ng = a->n_cols / G;
    int32_t *qoff = aux;
    uint32_t *tab = (uint32_t *)(qoff + ng);
    for (int64_t g = 0; g < ng; g++) {
        if (q->act_k) {
            const int64_t e = g * G;
            qoff[g] = (int32_t)((e / RB_QBK) * sizeof(struct rb_block_q8_k) + 4 + e % RB_QBK);
        } else {
            qoff[g] = (int32_t)(g * sizeof(struct rb_block_q8_0) + 2);
        }
    }
    for (int t = 0; t < a->n_tok; t++) {
        const uint8_t *row = a->act + (size_t)t * a->act_stride;
        uint32_t *x = tab + (size_t)t * ng * 2;
        for (int64_t g = 0; g < ng; g++) {
            float d;
            int sum;
            if (q->act_k) {
                const struct rb_block_q8_k *b =
                    (const struct rb_block_q8_k *)(row + (g * G / RB_QBK) * sizeof *b);
                d = b->d;
                const int sub = (int)(g * G % RB_QBK) / 16;
                sum = b->bsums[sub] + (G == 32 ? b->bsums[sub + 1] : 0);
            } else {
                const struct rb_block_q8_0 *b = (const struct rb_block_q8_0 *)row + g;
                d = rb_fp16_to_fp32(b->d);
                sum = 0;
                for (int i = 0; i < RB_QB; i++)
                    sum += b->qs[i];
            }
            memcpy(&x[2 * g], &d, 4);
            if (q->has_min) {
                const float ds = d * (float)sum;
                memcpy(&x[2 * g + 1], &ds, 4);
            } else {
                const int32_t neg = -q->offset * sum;
                memcpy(&x[2 * g + 1], &neg, 4);
            }
        }
    }
}

/* ---- repacking (16 rows; lanes past n_rows are masked off and zero) */

static inline TGT __m512i gat(const uint8_t *base, __m512i idx, __mmask16 m)
{
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, base, 1);
}
static inline TGT __m512 lo_half(__m512i v)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}
static inline TGT __m512 hi_half(__m512i v)
{
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
}

/* bits b..b+3 of each lane -> bit 4 of bytes 0..3 */
static inline TGT __m512i spread4_bit4(__m512i x, int b)
{
    const __m512i t = _mm512_srl_epi32(x, _mm_cvtsi32_si128(b));
    __m512i r = _mm512_and_si512(_mm512_slli_epi32(t, 4), _mm512_set1_epi32(0x10));
    r = _mm512_or_si512(r, _mm512_and_si512(_mm512_slli_epi32(t, 11), _mm512_set1_epi32(0x1000)));
    r = _mm512_or_si512(r, _mm512_and_si512(_mm512_slli_epi32(t, 18), _mm512_set1_epi32(0x100000)));
    r = _mm512_or_si512(r,
                        _mm512_and_si512(_mm512_slli_epi32(t, 25), _mm512_set1_epi32(0x10000000)));
    return r;
}

static TGT void repack_q(const struct qdesc *q, const struct rb_gemm_args *a, int64_t r0,
                         uint8_t *panel)
{
    const int64_t nr = a->n_rows - r0 < 16 ? a->n_rows - r0 : 16;
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                             12, 13, 14, 15),
                                           _mm512_set1_epi32((int)a->w_row_bytes));
    const uint8_t *W = a->W + (size_t)r0 * a->w_row_bytes;
    const __m512i m4 = _mm512_set1_epi32(0x0F0F0F0F);
    const size_t gb = group_bytes(q->G);
    const int64_t K = a->n_cols;
#define PW(g, k) ((__m512i *)(panel + (size_t)(g) * gb + (size_t)(k) * 64))
#define PS(g) ((__m512 *)(panel + (size_t)(g) * gb + (size_t)(q->G / 4) * 64))
#define PM(g) ((__m512 *)(panel + (size_t)(g) * gb + (size_t)(q->G / 4 + 1) * 64))
    switch (q->type) {
    case RB_GGML_TYPE_Q8_0:
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *base = W + b * 34;
            _mm512_storeu_ps(PS(b), lo_half(gat(base, idx, m)));
            for (int k = 0; k < 8; k++)
                _mm512_storeu_si512(PW(b, k), _mm512_xor_si512(gat(base + 2 + 4 * k, idx, m),
                                                               _mm512_set1_epi32((int)0x80808080)));
        }
        break;
    case RB_GGML_TYPE_Q4_0:
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *base = W + b * 18;
            _mm512_storeu_ps(PS(b), lo_half(gat(base, idx, m)));
            for (int k = 0; k < 4; k++) {
                const __m512i v = gat(base + 2 + 4 * k, idx, m);
                _mm512_storeu_si512(PW(b, k), _mm512_and_si512(v, m4));
                _mm512_storeu_si512(PW(b, k + 4), _mm512_and_si512(_mm512_srli_epi32(v, 4), m4));
            }
        }
        break;
    case RB_GGML_TYPE_Q5_0:
        for (int64_t b = 0; b < K / 32; b++) {
            const uint8_t *base = W + b * 22;
            _mm512_storeu_ps(PS(b), lo_half(gat(base, idx, m)));
            const __m512i qh = gat(base + 2, idx, m);
            for (int k = 0; k < 4; k++) {
                const __m512i v = gat(base + 6 + 4 * k, idx, m);
                _mm512_storeu_si512(PW(b, k), _mm512_or_si512(_mm512_and_si512(v, m4),
                                                              spread4_bit4(qh, 4 * k)));
                _mm512_storeu_si512(PW(b, k + 4),
                                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v, 4), m4),
                                                    spread4_bit4(qh, 16 + 4 * k)));
            }
        }
        break;
    case RB_GGML_TYPE_Q4_K:
    case RB_GGML_TYPE_Q5_K: {
        const bool five = q->type == RB_GGML_TYPE_Q5_K;
        const size_t bsz = five ? 176 : 144;
        const int qs_off = five ? 48 : 16;
        const __m512i c63 = _mm512_set1_epi32(63), c15 = _mm512_set1_epi32(15),
                      c3 = _mm512_set1_epi32(3), one = _mm512_set1_epi32(0x01010101);
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *base = W + b * bsz;
            const __m512i dd = gat(base, idx, m);
            const __m512 d = lo_half(dd), dmin = hi_half(dd);
            const __m512i q0 = gat(base + 4, idx, m), q1 = gat(base + 8, idx, m),
                          q2 = gat(base + 12, idx, m);
            for (int j = 0; j < 8; j++) {
                __m512i sc, mn;
                if (j < 4) {
                    sc = _mm512_and_si512(_mm512_srli_epi32(q0, (unsigned)(8 * j)), c63);
                    mn = _mm512_and_si512(_mm512_srli_epi32(q1, (unsigned)(8 * j)), c63);
                } else {
                    const unsigned s = (unsigned)(8 * (j - 4));
                    sc = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(q2, s), c15),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(q0, s + 6), c3), 4));
                    mn = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(q2, s + 4), c15),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(q1, s + 6), c3), 4));
                }
                _mm512_storeu_ps(PS(b * 8 + j), _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
                _mm512_storeu_ps(PM(b * 8 + j), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)));
            }
            for (int k = 0; k < 8; k++) {
                __m512i h = _mm512_setzero_si512();
                if (five)
                    h = gat(base + 16 + 4 * k, idx, m);
                for (int c = 0; c < 4; c++) {
                    const __m512i v = gat(base + qs_off + 32 * c + 4 * k, idx, m);
                    __m512i lo = _mm512_and_si512(v, m4);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
                    if (five) {
                        lo = _mm512_or_si512(lo, _mm512_slli_epi32(_mm512_and_si512(
                                                 _mm512_srli_epi32(h, (unsigned)(2 * c)), one), 4));
                        hi = _mm512_or_si512(hi, _mm512_slli_epi32(_mm512_and_si512(
                                                 _mm512_srli_epi32(h, (unsigned)(2 * c + 1)), one), 4));
                    }
                    _mm512_storeu_si512(PW(b * 8 + 2 * c, k), lo);
                    _mm512_storeu_si512(PW(b * 8 + 2 * c + 1, k), hi);
                }
            }
        }
        break;
    }
    case RB_GGML_TYPE_Q6_K: {
        const __m512i c3 = _mm512_set1_epi32(0x03030303);
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *base = W + b * 210;
            const __m512 d = hi_half(gat(base + 206, idx, m));
            for (int s4 = 0; s4 < 4; s4++) {
                const __m512i sv = gat(base + 192 + 4 * s4, idx, m);
                for (int bb = 0; bb < 4; bb++) {
                    const __m512i sc = _mm512_srai_epi32(
                        _mm512_slli_epi32(sv, (unsigned)(24 - 8 * bb)), 24);
                    _mm512_storeu_ps(PS(b * 16 + s4 * 4 + bb),
                                     _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
                }
            }
            for (int n = 0; n < 2; n++)
                for (int k = 0; k < 8; k++) {
                    const __m512i A = gat(base + 64 * n + 4 * k, idx, m);
                    const __m512i B = gat(base + 64 * n + 32 + 4 * k, idx, m);
                    const __m512i H = gat(base + 128 + 32 * n + 4 * k, idx, m);
                    const int g0 = (int)b * 16 + 8 * n + k / 4, slot = k % 4;
                    const __m512i e1 = _mm512_or_si512(
                        _mm512_and_si512(A, m4), _mm512_slli_epi32(_mm512_and_si512(H, c3), 4));
                    const __m512i e2 = _mm512_or_si512(
                        _mm512_and_si512(B, m4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(H, 2), c3), 4));
                    const __m512i e3 = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(A, 4), m4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(H, 4), c3), 4));
                    const __m512i e4 = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(B, 4), m4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(H, 6), c3), 4));
                    _mm512_storeu_si512(PW(g0, slot), e1);
                    _mm512_storeu_si512(PW(g0 + 2, slot), e2);
                    _mm512_storeu_si512(PW(g0 + 4, slot), e3);
                    _mm512_storeu_si512(PW(g0 + 6, slot), e4);
                }
        }
        break;
    }
    default: break;
    }
#undef PW
#undef PS
#undef PM
}

/* ---- the tile: 16 rows x NT tokens over all groups */
static inline __attribute__((always_inline)) TGT void
q_tile(const uint8_t *panel, int64_t ng, const int G, const bool has_min, const int NT,
       const uint8_t *act, size_t act_stride, const int32_t *qoff, const uint32_t *tab,
       float *out, int64_t out_stride, __mmask16 rmask)
{
    __m512 acc[NT_MAX];
    _Pragma("GCC unroll 16") for (int j = 0; j < NT; j++)
        acc[j] = _mm512_setzero_ps();
    const size_t gb = group_bytes(G);
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *P = panel + (size_t)g * gb;
        __m512i w[8];
        _Pragma("GCC unroll 8") for (int k = 0; k < G / 4; k++)
            w[k] = _mm512_load_si512((const void *)(P + 64 * k));
        const __m512 S = _mm512_load_ps((const void *)(P + 64 * (G / 4)));
        __m512 M = _mm512_setzero_ps();
        if (has_min)
            M = _mm512_load_ps((const void *)(P + 64 * (G / 4 + 1)));
        const int32_t qo = qoff[g];
        _Pragma("GCC unroll 8") for (int j = 0; j < NT; j++) {
            const uint8_t *x = act + (size_t)j * act_stride + qo;
            const uint32_t *t = tab + ((size_t)j * ng + g) * 2;
            int32_t a32[8];
            memcpy(a32, x, (size_t)G);
            float dy, ds = 0;
            int32_t neg = 0;
            memcpy(&dy, &t[0], 4);
            if (has_min)
                memcpy(&ds, &t[1], 4);
            else
                memcpy(&neg, &t[1], 4);
            __m512i i0 = has_min ? _mm512_setzero_si512() : _mm512_set1_epi32(neg);
            __m512i i1 = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int k = 0; k < G / 4; k += 2) {
                i0 = _mm512_dpbusd_epi32(i0, w[k], _mm512_set1_epi32(a32[k]));
                i1 = _mm512_dpbusd_epi32(i1, w[k + 1], _mm512_set1_epi32(a32[k + 1]));
            }
            const __m512 f = _mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1));
            acc[j] = _mm512_fmadd_ps(f, _mm512_mul_ps(S, _mm512_set1_ps(dy)), acc[j]);
            if (has_min)
                acc[j] = _mm512_fnmadd_ps(M, _mm512_set1_ps(ds), acc[j]);
        }
    }
    _Pragma("GCC unroll 16") for (int j = 0; j < NT; j++)
        _mm512_mask_storeu_ps(out + (size_t)j * out_stride, rmask, acc[j]);
}

#define Q_TILE_FN(name, G, MIN)                                                                    \
    static TGT void name(const uint8_t *panel, int64_t ng, int nt, const uint8_t *act,            \
                         size_t act_stride, const int32_t *qoff, const uint32_t *tab,             \
                         float *out, int64_t out_stride, __mmask16 rmask)                          \
    {                                                                                              \
        switch (nt) {                                                                              \
        case 8: q_tile(panel, ng, G, MIN, 8, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 7: q_tile(panel, ng, G, MIN, 7, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 6: q_tile(panel, ng, G, MIN, 6, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 5: q_tile(panel, ng, G, MIN, 5, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 4: q_tile(panel, ng, G, MIN, 4, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 3: q_tile(panel, ng, G, MIN, 3, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        case 2: q_tile(panel, ng, G, MIN, 2, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        default: q_tile(panel, ng, G, MIN, 1, act, act_stride, qoff, tab, out, out_stride, rmask); break; \
        }                                                                                          \
    }
Q_TILE_FN(tile_g32_off, 32, false)
Q_TILE_FN(tile_g32_min, 32, true)
Q_TILE_FN(tile_g16_off, 16, false)

static TGT void q_panel(uint32_t type, const struct rb_gemm_args *a, const void *aux, int64_t r0,
                        void *scratch)
{
    const struct qdesc *q = desc_of(type);
    const int64_t ng = a->n_cols / q->G;
    repack_q(q, a, r0, scratch);
    const int32_t *qoff = aux;
    const uint32_t *tab = (const uint32_t *)(qoff + ng);
    const int64_t nr = a->n_rows - r0 < 16 ? a->n_rows - r0 : 16;
    const __mmask16 rmask = (__mmask16)((1u << nr) - 1);
    for (int t = 0; t < a->n_tok; t += NT_MAX) {
        const int nt = a->n_tok - t < NT_MAX ? a->n_tok - t : NT_MAX;
        const uint8_t *act = a->act + (size_t)t * a->act_stride;
        const uint32_t *tb = tab + (size_t)t * ng * 2;
        float *o = a->out + (size_t)t * a->out_stride + r0;
        if (q->G == 16)
            tile_g16_off(scratch, ng, nt, act, a->act_stride, qoff, tb, o, a->out_stride, rmask);
        else if (q->has_min)
            tile_g32_min(scratch, ng, nt, act, a->act_stride, qoff, tb, o, a->out_stride, rmask);
        else
            tile_g32_off(scratch, ng, nt, act, a->act_stride, qoff, tb, o, a->out_stride, rmask);
    }
}

/* ---- F16 */

static size_t f16_aux_bytes(uint32_t type, int64_t n_cols, int n_tok)
{
    (void)type;
    return (size_t)n_tok * (size_t)n_cols * sizeof(float) + 64;
}

static TGT void f16_prep(uint32_t type, const struct rb_gemm_args *a, void *aux)
{
    (void)type;
    float *f = aux;
    for (int t = 0; t < a->n_tok; t++) {
        const uint16_t *h = (const uint16_t *)(a->act + (size_t)t * a->act_stride);
        float *y = f + (size_t)t * a->n_cols;
        int64_t i = 0;
        for (; i + 16 <= a->n_cols; i += 16)
            _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
        for (; i < a->n_cols; i++)
            y[i] = _cvtsh_ss(h[i]);
    }
}

static inline __attribute__((always_inline)) TGT void
f16_tile(const float *panel, int64_t K, const int NT, const float *act, float *out,
         int64_t out_stride, __mmask16 rmask)
{
    __m512 acc[NT_F16];
    _Pragma("GCC unroll 16") for (int j = 0; j < NT; j++)
        acc[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        const __m512 w = _mm512_load_ps(panel + k * 16);
        _Pragma("GCC unroll 16") for (int j = 0; j < NT; j++)
            acc[j] = _mm512_fmadd_ps(w, _mm512_set1_ps(act[(size_t)j * K + k]), acc[j]);
    }
    _Pragma("GCC unroll 16") for (int j = 0; j < NT; j++)
        _mm512_mask_storeu_ps(out + (size_t)j * out_stride, rmask, acc[j]);
}

static TGT void f16_panel(uint32_t type, const struct rb_gemm_args *a, const void *aux,
                          int64_t r0, void *scratch)
{
    (void)type;
    const int64_t nr = a->n_rows - r0 < 16 ? a->n_rows - r0 : 16;
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                             12, 13, 14, 15),
                                           _mm512_set1_epi32((int)a->w_row_bytes));
    const uint8_t *W = a->W + (size_t)r0 * a->w_row_bytes;
    float *panel = scratch;
    const int64_t K = a->n_cols;
    for (int64_t k = 0; k < K; k += 2) { /* n_cols is even (checked by the caller) */
        const __m512i v = gat(W + 2 * k, idx, m);
        _mm512_store_ps(panel + k * 16, lo_half(v));
        _mm512_store_ps(panel + (k + 1) * 16, hi_half(v));
    }
    const float *act = aux;
    for (int t = 0; t < a->n_tok; t += NT_F16) {
        const int nt = a->n_tok - t < NT_F16 ? a->n_tok - t : NT_F16;
        const float *x = act + (size_t)t * K;
        float *o = a->out + (size_t)t * a->out_stride + r0;
        switch (nt) {
        case 12: f16_tile(panel, K, 12, x, o, a->out_stride, m); break;
        case 11: f16_tile(panel, K, 11, x, o, a->out_stride, m); break;
        case 10: f16_tile(panel, K, 10, x, o, a->out_stride, m); break;
        case 9: f16_tile(panel, K, 9, x, o, a->out_stride, m); break;
        case 8: f16_tile(panel, K, 8, x, o, a->out_stride, m); break;
        case 7: f16_tile(panel, K, 7, x, o, a->out_stride, m); break;
        case 6: f16_tile(panel, K, 6, x, o, a->out_stride, m); break;
        case 5: f16_tile(panel, K, 5, x, o, a->out_stride, m); break;
        case 4: f16_tile(panel, K, 4, x, o, a->out_stride, m); break;
        case 3: f16_tile(panel, K, 3, x, o, a->out_stride, m); break;
        case 2: f16_tile(panel, K, 2, x, o, a->out_stride, m); break;
        default: f16_tile(panel, K, 1, x, o, a->out_stride, m); break;
        }
    }
}

/* ---- the tables */

static size_t q_panel_bytes(uint32_t type, int64_t n_cols)
{
    const struct qdesc *q = desc_of(type);
    return (size_t)(n_cols / q->G) * group_bytes(q->G);
}
static bool q_fits(uint32_t type, int64_t n_cols, size_t w_row_bytes)
{
    (void)w_row_bytes;
    const struct qdesc *q = desc_of(type);
    return n_cols > 0 && n_cols % (q->act_k ? RB_QBK : RB_QB) == 0 &&
           (uint64_t)w_row_bytes * 16 < (1u << 31);
}
static size_t f16_panel_bytes(uint32_t type, int64_t n_cols)
{
    (void)type;
    return (size_t)n_cols * 16 * sizeof(float);
}
static bool f16_fits(uint32_t type, int64_t n_cols, size_t w_row_bytes)
{
    (void)type;
    return n_cols > 0 && n_cols % 2 == 0 && (uint64_t)w_row_bytes * 16 < (1u << 31);
}

static const struct rb_gemm_ops gemm_q = {16, q_fits, q_aux_bytes, q_prep, q_panel_bytes, q_panel};
static const struct rb_gemm_ops gemm_f16 = {16, f16_fits, f16_aux_bytes, f16_prep, f16_panel_bytes,
                                            f16_panel};

const struct rb_gemm_ops *rb__avx512_gemm(uint32_t type)
{
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("f16c"))
        return NULL;
    if (type == RB_GGML_TYPE_F16)
        return &gemm_f16;
    return desc_of(type) ? &gemm_q : NULL;
}

#else
const struct rb_gemm_ops *rb__avx512_gemm(uint32_t type)
{
    (void)type;
    return NULL;
}
#endif
