/* The ggml type size table (see ggml-types.h). */
#include <strings.h>

#include "ggml-types.h"

const struct rb_ggml_type_traits rb__ggml_type_traits[RB_GGML_TYPE_COUNT] = {
    [RB_GGML_TYPE_F32] = {"f32", 1, 4, false},
    [RB_GGML_TYPE_F16] = {"f16", 1, 2, false},
    [RB_GGML_TYPE_Q4_0] = {"q4_0", RB_QK, 2 + RB_QK / 2, true},          /* 18 */
    [RB_GGML_TYPE_Q4_1] = {"q4_1", RB_QK, 2 + 2 + RB_QK / 2, true},      /* 20 */
    [RB_GGML_TYPE_Q5_0] = {"q5_0", RB_QK, 2 + 4 + RB_QK / 2, true},      /* 22 */
    [RB_GGML_TYPE_Q5_1] = {"q5_1", RB_QK, 2 + 2 + 4 + RB_QK / 2, true},  /* 24 */
    [RB_GGML_TYPE_Q8_0] = {"q8_0", RB_QK, 2 + RB_QK, true},              /* 34 */
    [RB_GGML_TYPE_Q8_1] = {"q8_1", RB_QK, 2 + 2 + RB_QK, true},          /* 36 */
    /* k-quants: QK_K = 256 elements per super-block */
    [RB_GGML_TYPE_Q2_K] = {"q2_K", RB_QK_K, RB_QK_K / 16 + RB_QK_K / 4 + 2 + 2, true}, /* 84 */
    [RB_GGML_TYPE_Q3_K] = {"q3_K", RB_QK_K, RB_QK_K / 8 + RB_QK_K / 4 + 12 + 2, true}, /* 110 */
    [RB_GGML_TYPE_Q4_K] = {"q4_K", RB_QK_K, 2 + 2 + 12 + RB_QK_K / 2, true},           /* 144 */
    [RB_GGML_TYPE_Q5_K] = {"q5_K", RB_QK_K, 2 + 2 + 12 + RB_QK_K / 8 + RB_QK_K / 2,
                           true},                                                      /* 176 */
    [RB_GGML_TYPE_Q6_K] = {"q6_K", RB_QK_K, RB_QK_K / 2 + RB_QK_K / 4 + RB_QK_K / 16 + 2,
                           true},                                                      /* 210 */
    [RB_GGML_TYPE_Q8_K] = {"q8_K", RB_QK_K, 4 + RB_QK_K + RB_QK_K / 16 * 2, true},     /* 292 */
    /* i-quants: sizes known so such files load and can be described; kernels may not exist */
    [RB_GGML_TYPE_IQ2_XXS] = {"iq2_xxs", RB_QK_K, 2 + RB_QK_K / 8 * 2, true},                /* 66 */
    [RB_GGML_TYPE_IQ2_XS] = {"iq2_xs", RB_QK_K, 2 + RB_QK_K / 8 * 2 + RB_QK_K / 32, true},  /* 74 */
    [RB_GGML_TYPE_IQ3_XXS] = {"iq3_xxs", RB_QK_K, 2 + 3 * RB_QK_K / 8, true},               /* 98 */
    [RB_GGML_TYPE_IQ1_S] = {"iq1_s", RB_QK_K, 2 + RB_QK_K / 8 + RB_QK_K / 32 * 2, true},    /* 50 */
    [RB_GGML_TYPE_IQ4_NL] = {"iq4_nl", RB_QK, 2 + RB_QK / 2, true},                         /* 18 */
    [RB_GGML_TYPE_IQ3_S] = {"iq3_s", RB_QK_K,
                            2 + RB_QK_K / 4 + RB_QK_K / 32 + RB_QK_K / 8 + RB_QK_K / 64,
                            true},                                                          /* 110 */
    [RB_GGML_TYPE_IQ2_S] = {"iq2_s", RB_QK_K, 2 + RB_QK_K / 4 + RB_QK_K / 32 + RB_QK_K / 32,
                            true},                                                          /* 82 */
    [RB_GGML_TYPE_IQ4_XS] = {"iq4_xs", RB_QK_K, 2 + 2 + RB_QK_K / 64 + RB_QK_K / 2, true},  /* 136 */
    [RB_GGML_TYPE_I8] = {"i8", 1, 1, false},
    [RB_GGML_TYPE_I16] = {"i16", 1, 2, false},
    [RB_GGML_TYPE_I32] = {"i32", 1, 4, false},
    [RB_GGML_TYPE_I64] = {"i64", 1, 8, false},
    [RB_GGML_TYPE_F64] = {"f64", 1, 8, false},
    [RB_GGML_TYPE_IQ1_M] = {"iq1_m", RB_QK_K, RB_QK_K / 8 + RB_QK_K / 16 + RB_QK_K / 32,
                            true},                                                          /* 56 */
    [RB_GGML_TYPE_BF16] = {"bf16", 1, 2, false},
    [RB_GGML_TYPE_TQ1_0] = {"tq1_0", RB_QK_K, (RB_QK_K - 4 * RB_QK_K / 64) / 5 + RB_QK_K / 64 + 2,
                            true},                                                          /* 54 */
    [RB_GGML_TYPE_TQ2_0] = {"tq2_0", RB_QK_K, RB_QK_K / 4 + 2, true},                       /* 66 */
    [RB_GGML_TYPE_MXFP4] = {"mxfp4", RB_QK, 1 + RB_QK / 2, true},                           /* 17 */
};

const char *rb_ggml_type_name(uint32_t type)
{
    const struct rb_ggml_type_traits *t = rb_ggml_type_get(type);
    return t ? t->name : "unknown";
}

int rb_ggml_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < RB_GGML_TYPE_COUNT; i++)
        if (rb__ggml_type_traits[i].name && strcasecmp(rb__ggml_type_traits[i].name, name) == 0)
            return i;
    return -1;
}

bool rb_ggml_row_size(uint32_t type, uint64_t ne0, uint64_t *bytes)
{
    const struct rb_ggml_type_traits *t = rb_ggml_type_get(type);
    if (!t || ne0 % t->block_size != 0)
        return false;
    return !__builtin_mul_overflow(ne0 / t->block_size, (uint64_t)t->type_size, bytes);
}

bool rb_ggml_tensor_size(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *bytes)
{
    if (n_dims < 1 || n_dims > 4)
        return false;
    for (uint32_t i = 0; i < n_dims; i++)
        if (ne[i] == 0 || ne[i] > (uint64_t)INT64_MAX)
            return false;
    uint64_t size;
    if (!rb_ggml_row_size(type, ne[0], &size))
        return false;
    uint64_t n = ne[0];
    for (uint32_t i = 1; i < n_dims; i++) {
        if (__builtin_mul_overflow(size, ne[i], &size) || __builtin_mul_overflow(n, ne[i], &n))
            return false;
    }
    if (n > (uint64_t)INT64_MAX || size > (uint64_t)INT64_MAX)
        return false;
    *bytes = size;
    return true;
}
