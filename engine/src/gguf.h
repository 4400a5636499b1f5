/* GGUF files: the engine-private reader (gguf.c) and writer (gguf-write.c).
 *
 * Reader: rb_gguf_open maps a GGUF v2/v3 file read-only (mmap) and validates
 * all of it before returning: header, every key/value (types, string and array
 * lengths bounded by the file), the tensor table (names unique, n_dims 1..4,
 * ne > 0, known type with ne[0] a multiple of its block size, byte sizes
 * overflow-checked, offsets aligned to general.alignment, data inside the file
 * and not overlapping). A bad file gives RB_ERR_FORMAT (not GGUF / unsupported
 * version or type) or RB_ERR_CORRUPT (inconsistent) with a message naming the
 * byte offset and the field; it never crashes.
 *
 * Thread-safety: a struct rb_gguf is immutable after open; any number of
 * threads may read it (metadata, tensor data) concurrently. Close once.
 *
 * Ownership: everything returned (keys, strings, tensor records, data
 * pointers) is borrowed from the struct rb_gguf and valid until rb_gguf_close.
 * GGUF strings are NOT NUL-terminated in the file: string values come back as
 * struct rb_gguf_str (pointer + length). Keys and tensor names are copied and
 * NUL-terminated for convenience.
 *
 * Numeric array elements sit in the mapping at arbitrary alignment: read them
 * with the rb_gguf_arr_* accessors (memcpy), never by casting `data`.
 */
#ifndef RAGBOX_ENGINE_GGUF_H
#define RAGBOX_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"
#include "ggml-types.h"

#define RB_GGUF_MAGIC "GGUF"
#define RB_GGUF_DEFAULT_ALIGNMENT 32
#define RB_GGUF_MAX_DIMS 4
/* Sanity limits (a conforming file is far below them). */
#define RB_GGUF_MAX_KEY_LEN 65535u            /* bytes */
#define RB_GGUF_MAX_NAME_LEN 1023u            /* tensor name bytes */
#define RB_GGUF_MAX_STRING_LEN (256u << 20)   /* one string value, bytes */
#define RB_GGUF_MAX_TENSORS (1u << 20)
#define RB_GGUF_MAX_KV (1u << 20)
#define RB_GGUF_MAX_ALIGNMENT (1u << 16)

/* Metadata value types, numbered as in the file. */
enum rb_gguf_type {
    RB_GGUF_TYPE_UINT8 = 0,
    RB_GGUF_TYPE_INT8 = 1,
    RB_GGUF_TYPE_UINT16 = 2,
    RB_GGUF_TYPE_INT16 = 3,
    RB_GGUF_TYPE_UINT32 = 4,
    RB_GGUF_TYPE_INT32 = 5,
    RB_GGUF_TYPE_FLOAT32 = 6,
    RB_GGUF_TYPE_BOOL = 7,
    RB_GGUF_TYPE_STRING = 8,
    RB_GGUF_TYPE_ARRAY = 9,
    RB_GGUF_TYPE_UINT64 = 10,
    RB_GGUF_TYPE_INT64 = 11,
    RB_GGUF_TYPE_FLOAT64 = 12,
    RB_GGUF_TYPE_COUNT = 13
};

/* "uint32", "string", "array" ...; "unknown" for others. */
const char *rb_gguf_type_name(enum rb_gguf_type type);
/* Bytes of one scalar of a fixed-size type; 0 for STRING / ARRAY / unknown. */
size_t rb_gguf_type_size(enum rb_gguf_type type);

/* A string inside the file: not NUL-terminated. */
struct rb_gguf_str {
    const char *ptr; /* borrowed (into the mapping); may be NULL when len == 0 */
    uint64_t len;
};

/* One metadata key/value. */
struct rb_gguf_kv {
    const char *key;        /* NUL-terminated, borrowed */
    enum rb_gguf_type type; /* the value's type; ARRAY for arrays */
    enum rb_gguf_type arr_type; /* element type when type == ARRAY (never ARRAY) */
    uint64_t n;             /* element count for arrays, 1 for scalars */
    const void *data;       /* scalar value or first array element in the mapping (unaligned);
                               for strings: see strs */
    const struct rb_gguf_str *strs; /* type STRING: strs[0]; ARRAY of STRING: strs[0..n) */
    uint64_t offset;        /* byte offset of this entry's key in the file (for messages) */
};

/* One tensor. */
struct rb_gguf_tensor {
    const char *name;   /* NUL-terminated, borrowed */
    uint32_t type;      /* enum rb_ggml_type */
    uint32_t n_dims;    /* 1..4 */
    uint64_t ne[RB_GGUF_MAX_DIMS]; /* elements per dimension, ggml order (ne[0] is the
                                      contiguous row); unused dims are 1 */
    uint64_t n_elements;
    uint64_t offset;    /* from the start of the data section (aligned) */
    uint64_t size;      /* bytes */
    const void *data;   /* borrowed pointer into the mapping, aligned to the file's alignment
                           relative to the data section (page-aligned mapping start) */
};

struct rb_gguf;

/* Opens and validates a GGUF file (read-only mmap). On failure *out is NULL,
 * err (may be NULL) holds "<path>: offset N: what". */
RB_NODISCARD enum rb_status rb_gguf_open(const char *path, struct rb_gguf **out,
                                         struct rb_errmsg *err);
/* Same over a caller-owned buffer that must outlive the handle (no copy). */
RB_NODISCARD enum rb_status rb_gguf_open_memory(const void *buf, size_t len, struct rb_gguf **out,
                                                struct rb_errmsg *err);
void rb_gguf_close(struct rb_gguf *g); /* NULL is a no-op */

uint32_t rb_gguf_version(const struct rb_gguf *g);
uint32_t rb_gguf_alignment(const struct rb_gguf *g);
uint64_t rb_gguf_file_size(const struct rb_gguf *g);
uint64_t rb_gguf_data_offset(const struct rb_gguf *g); /* start of the tensor data section */
const void *rb_gguf_base(const struct rb_gguf *g);     /* start of the mapping */

/* ---- metadata */
size_t rb_gguf_kv_count(const struct rb_gguf *g);
const struct rb_gguf_kv *rb_gguf_kv_at(const struct rb_gguf *g, size_t i);
/* The entry for key, or NULL (hash lookup). */
const struct rb_gguf_kv *rb_gguf_find(const struct rb_gguf *g, const char *key);

/* Typed getters. Return RB_OK, RB_ERR_NOT_FOUND when the key is absent, or
 * RB_ERR_FORMAT when it has an incompatible type / a value out of the target
 * range. Integer getters accept any integer type (and BOOL) whose value fits;
 * the float getters accept FLOAT32/FLOAT64 and integers. The bool getter accepts BOOL
 * and integers (nonzero = true). */
RB_NODISCARD enum rb_status rb_gguf_get_u32(const struct rb_gguf *g, const char *key,
                                            uint32_t *out);
RB_NODISCARD enum rb_status rb_gguf_get_i32(const struct rb_gguf *g, const char *key,
                                            int32_t *out);
RB_NODISCARD enum rb_status rb_gguf_get_u64(const struct rb_gguf *g, const char *key,
                                            uint64_t *out);
RB_NODISCARD enum rb_status rb_gguf_get_i64(const struct rb_gguf *g, const char *key,
                                            int64_t *out);
RB_NODISCARD enum rb_status rb_gguf_get_f32(const struct rb_gguf *g, const char *key, float *out);
RB_NODISCARD enum rb_status rb_gguf_get_f64(const struct rb_gguf *g, const char *key,
                                            double *out);
RB_NODISCARD enum rb_status rb_gguf_get_bool(const struct rb_gguf *g, const char *key, bool *out);
/* A STRING value (borrowed, not NUL-terminated). */
RB_NODISCARD enum rb_status rb_gguf_get_str(const struct rb_gguf *g, const char *key,
                                            struct rb_gguf_str *out);
/* A STRING value as a new NUL-terminated heap string (caller frees); RB_ERR_FORMAT if it
 * contains a NUL byte. */
RB_NODISCARD enum rb_status rb_gguf_get_strdup(const struct rb_gguf *g, const char *key,
                                               char **out);
/* An ARRAY value: its entry (check kv->arr_type and kv->n), or NOT_FOUND / FORMAT when
 * absent / not an array. */
RB_NODISCARD enum rb_status rb_gguf_get_arr(const struct rb_gguf *g, const char *key,
                                            const struct rb_gguf_kv **out);
/* "<arch>.<suffix>" helpers, e.g. rb_gguf_get_arch_u32(g, "context_length", &n) reads
 * "llama.context_length" when general.architecture is "llama". */
RB_NODISCARD enum rb_status rb_gguf_get_arch_u32(const struct rb_gguf *g, const char *suffix,
                                                 uint32_t *out);
RB_NODISCARD enum rb_status rb_gguf_get_arch_f32(const struct rb_gguf *g, const char *suffix,
                                                 float *out);
/* general.architecture (NUL-terminated, borrowed) or NULL when absent. */
const char *rb_gguf_arch(const struct rb_gguf *g);

/* Array element accessors (i < kv->n; any numeric element type, converted).
 * For STRING arrays use kv->strs[i]. */
int64_t rb_gguf_arr_i64(const struct rb_gguf_kv *kv, uint64_t i);
uint64_t rb_gguf_arr_u64(const struct rb_gguf_kv *kv, uint64_t i);
double rb_gguf_arr_f64(const struct rb_gguf_kv *kv, uint64_t i);
float rb_gguf_arr_f32(const struct rb_gguf_kv *kv, uint64_t i);

/* ---- tensors */
size_t rb_gguf_tensor_count(const struct rb_gguf *g);
const struct rb_gguf_tensor *rb_gguf_tensor_at(const struct rb_gguf *g, size_t i);
/* The tensor named name, or NULL (hash lookup). */
const struct rb_gguf_tensor *rb_gguf_find_tensor(const struct rb_gguf *g, const char *name);

/* ---- writer (gguf-write.c) ------------------------------------------------
 * Builds a GGUF v3 file: add metadata and tensors in order, then write. Tensor
 * data is either copied in (rb_gguf_writer_add_tensor) or produced at write time
 * by a callback (rb_gguf_writer_add_tensor_cb, for models bigger than memory).
 * Keys and tensor names must be unique. The output is written to path.tmp and
 * renamed over path only when complete. Not thread-safe (one writer, one thread). */
struct rb_gguf_writer;
RB_NODISCARD enum rb_status rb_gguf_writer_create(struct rb_gguf_writer **out);
void rb_gguf_writer_free(struct rb_gguf_writer *w);
const char *rb_gguf_writer_errmsg(const struct rb_gguf_writer *w);
void rb_gguf_writer_set_alignment(struct rb_gguf_writer *w, uint32_t alignment); /* power of 2 */

RB_NODISCARD enum rb_status rb_gguf_writer_set_u32(struct rb_gguf_writer *w, const char *key,
                                                   uint32_t v);
RB_NODISCARD enum rb_status rb_gguf_writer_set_i32(struct rb_gguf_writer *w, const char *key,
                                                   int32_t v);
RB_NODISCARD enum rb_status rb_gguf_writer_set_u64(struct rb_gguf_writer *w, const char *key,
                                                   uint64_t v);
RB_NODISCARD enum rb_status rb_gguf_writer_set_f32(struct rb_gguf_writer *w, const char *key,
                                                   float v);
RB_NODISCARD enum rb_status rb_gguf_writer_set_bool(struct rb_gguf_writer *w, const char *key,
                                                    bool v);
RB_NODISCARD enum rb_status rb_gguf_writer_set_str(struct rb_gguf_writer *w, const char *key,
                                                   const char *v, size_t len);
/* Array of a fixed-size element type: n elements, little-endian host layout (copied). */
RB_NODISCARD enum rb_status rb_gguf_writer_set_arr(struct rb_gguf_writer *w, const char *key,
                                                   enum rb_gguf_type elem_type, const void *data,
                                                   uint64_t n);
/* Array of strings (each copied). lens may be NULL: strs are NUL-terminated. */
RB_NODISCARD enum rb_status rb_gguf_writer_set_arr_str(struct rb_gguf_writer *w, const char *key,
                                                       const char *const *strs,
                                                       const size_t *lens, uint64_t n);
/* Copies one key/value (any type) from an open file, e.g. to carry a model's metadata
 * over when quantizing. */
RB_NODISCARD enum rb_status rb_gguf_writer_copy_kv(struct rb_gguf_writer *w,
                                                   const struct rb_gguf_kv *kv);

/* Tensor with data copied from `data` (size must equal the tensor's byte size). */
RB_NODISCARD enum rb_status rb_gguf_writer_add_tensor(struct rb_gguf_writer *w, const char *name,
                                                      uint32_t type, uint32_t n_dims,
                                                      const uint64_t *ne, const void *data,
                                                      uint64_t size);
/* Tensor whose bytes are produced at write time: fill(user, name, buf, size) must write
 * exactly size bytes to buf and return RB_OK. `user` is borrowed until the write. */
typedef enum rb_status (*rb_gguf_fill_fn)(void *user, const char *name, void *buf, uint64_t size);
RB_NODISCARD enum rb_status rb_gguf_writer_add_tensor_cb(struct rb_gguf_writer *w,
                                                         const char *name, uint32_t type,
                                                         uint32_t n_dims, const uint64_t *ne,
                                                         rb_gguf_fill_fn fill, void *user);
/* Writes the file (atomically: path.tmp then rename). */
RB_NODISCARD enum rb_status rb_gguf_writer_write(struct rb_gguf_writer *w, const char *path);

#endif
