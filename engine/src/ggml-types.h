/* ggml tensor type ids and their storage sizes (engine-private).
 *
 * The numbering is ggml's (it is what GGUF files store). A tensor of a block
 * type stores ne[0] / block_size blocks per row, each type_size bytes; ne[0]
 * must be a multiple of block_size. This table is shared by the GGUF reader,
 * writer and the compute kernels (engine-compute owns the kernels in
 * quant-*.h; only this size table lives here). Pure data: thread-safe.
 */
#ifndef RAGBOX_ENGINE_GGML_TYPES_H
#define RAGBOX_ENGINE_GGML_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rb_ggml_type {
    RB_GGML_TYPE_F32 = 0,
    RB_GGML_TYPE_F16 = 1,
    RB_GGML_TYPE_Q4_0 = 2,
    RB_GGML_TYPE_Q4_1 = 3,
    /* 4, 5: removed Q4_2 / Q4_3, refused */
    RB_GGML_TYPE_Q5_0 = 6,
    RB_GGML_TYPE_Q5_1 = 7,
    RB_GGML_TYPE_Q8_0 = 8,
    RB_GGML_TYPE_Q8_1 = 9,
    RB_GGML_TYPE_Q2_K = 10,
    RB_GGML_TYPE_Q3_K = 11,
    RB_GGML_TYPE_Q4_K = 12,
    RB_GGML_TYPE_Q5_K = 13,
    RB_GGML_TYPE_Q6_K = 14,
    RB_GGML_TYPE_Q8_K = 15,
    RB_GGML_TYPE_IQ2_XXS = 16,
    RB_GGML_TYPE_IQ2_XS = 17,
    RB_GGML_TYPE_IQ3_XXS = 18,
    RB_GGML_TYPE_IQ1_S = 19,
    RB_GGML_TYPE_IQ4_NL = 20,
    RB_GGML_TYPE_IQ3_S = 21,
    RB_GGML_TYPE_IQ2_S = 22,
    RB_GGML_TYPE_IQ4_XS = 23,
    RB_GGML_TYPE_I8 = 24,
    RB_GGML_TYPE_I16 = 25,
    RB_GGML_TYPE_I32 = 26,
    RB_GGML_TYPE_I64 = 27,
    RB_GGML_TYPE_F64 = 28,
    RB_GGML_TYPE_IQ1_M = 29,
    RB_GGML_TYPE_BF16 = 30,
    /* 31..33: removed Q4_0_4_4 / Q4_0_4_8 / Q4_0_8_8, refused */
    RB_GGML_TYPE_TQ1_0 = 34,
    RB_GGML_TYPE_TQ2_0 = 35,
    /* 36..38: removed IQ4_NL_4_4 / _4_8 / _8_8, refused */
    RB_GGML_TYPE_MXFP4 = 39,
    RB_GGML_TYPE_COUNT = 40
};

#define RB_QK 32   /* elements per block of the legacy quants (Q4_0 ... Q8_1) */
#define RB_QK_K 256 /* elements per super-block of the k-quants and i-quants */

struct rb_ggml_type_traits {
    const char *name;  /* "q4_K", as ggml names it; NULL: id unused */
    uint32_t block_size; /* elements per block (1 for plain types) */
    uint32_t type_size;  /* bytes per block */
    bool quantized;
};

/* The table, indexed by type id (entries with name == NULL are not types). */
extern const struct rb_ggml_type_traits rb__ggml_type_traits[RB_GGML_TYPE_COUNT];

/* Traits of a type id, or NULL for an unknown / removed id. */
static inline const struct rb_ggml_type_traits *rb_ggml_type_get(uint32_t type)
{
    if (type >= RB_GGML_TYPE_COUNT || !rb__ggml_type_traits[type].name)
        return NULL;
    return &rb__ggml_type_traits[type];
}

/* "q4_K" or "unknown". */
const char *rb_ggml_type_name(uint32_t type);
/* Type id from its name (case-insensitive: "Q4_K", "q8_0", "bf16"); -1 if none. */
int rb_ggml_type_from_name(const char *name);

/* Bytes of one row of ne0 elements; false when the type is unknown, ne0 is not a
 * multiple of the block size, or the size overflows. */
bool rb_ggml_row_size(uint32_t type, uint64_t ne0, uint64_t *bytes);

/* Bytes of a tensor of shape ne[0..n_dims) (ggml order, ne[0] fastest); false on
 * unknown type, block misfit, zero or overflowing dimensions. */
bool rb_ggml_tensor_size(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *bytes);

#endif
