/* GGUF reader: mmap + full validation (see gguf.h for the contract).
 *
 * Layout of a GGUF v2/v3 file (all little-endian):
 *   "GGUF" u32 version u64 n_tensors u64 n_kv
 *   n_kv x { string key, u32 type, value }            string = u64 len + bytes
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment (default 32), then the tensor data section;
 *   each tensor's offset is relative to the data section and aligned.
 * Every read goes through a bounds-checked cursor, and every count is checked
 * against the bytes that remain before anything is allocated for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "strmap.h"

struct rb_gguf {
    const uint8_t *base; /* the mapping or the caller's buffer */
    size_t size;
    bool mapped;         /* base came from mmap (unmap on close) */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    struct rb_gguf_kv *kvs; /* n_kv entries; keys and strs owned */
    size_t n_kv;
    struct rb_gguf_tensor *tensors; /* n_tensors; names owned */
    size_t n_tensors;
    struct rb_strmap kv_map;     /* key -> index in kvs */
    struct rb_strmap tensor_map; /* name -> index in tensors */
    char *arch;                  /* general.architecture, owned, or NULL */
};

/* ================================================================ cursor */

struct cursor {
    const uint8_t *p;
    size_t size;
    size_t pos;
    struct rb_errmsg *err;
    const char *what; /* file name prefix for messages, or "" */
};

#define FAIL(c, status, ...) fail_at((c), (status), (c)->pos, __VA_ARGS__)

static enum rb_status fail_at(struct cursor *c, enum rb_status st, size_t offset, const char *fmt,
                              ...) RB_PRINTF(4, 5);
static enum rb_status fail_at(struct cursor *c, enum rb_status st, size_t offset, const char *fmt,
                              ...)
{
    if (c->err) {
        char msg[RB_ERRMSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        rb_errmsg_set(c->err, st, "%s%soffset %zu: %s", c->what, *c->what ? ": " : "", offset,
                      msg);
    }
    return st;
}

static size_t remaining(const struct cursor *c)
{
    return c->size - c->pos;
}

static bool take(struct cursor *c, void *dst, size_t n)
{
    if (remaining(c) < n)
        return false;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return true;
}

static enum rb_status read_u32(struct cursor *c, uint32_t *v, const char *field)
{
    if (!take(c, v, 4))
        return FAIL(c, RB_ERR_CORRUPT, "file truncated reading %s (needs 4 bytes, %zu left)",
                    field, remaining(c));
    return RB_OK;
}

static enum rb_status read_u64(struct cursor *c, uint64_t *v, const char *field)
{
    if (!take(c, v, 8))
        return FAIL(c, RB_ERR_CORRUPT, "file truncated reading %s (needs 8 bytes, %zu left)",
                    field, remaining(c));
    return RB_OK;
}

/* A string: u64 length then bytes, bounded by max and by the file. */
static enum rb_status read_str(struct cursor *c, struct rb_gguf_str *s, uint64_t max,
                               const char *field)
{
    size_t at = c->pos;
    uint64_t len = 0;
    enum rb_status st = read_u64(c, &len, field);
    if (st != RB_OK)
        return st;
    if (len > max)
        return fail_at(c, RB_ERR_CORRUPT, at, "%s length %" PRIu64 " exceeds the limit %" PRIu64,
                       field, len, max);
    if (len > remaining(c))
        return fail_at(c, RB_ERR_CORRUPT, at,
                       "%s length %" PRIu64 " runs past the end of the file (%zu bytes left)",
                       field, len, remaining(c));
    s->ptr = len ? (const char *)c->p + c->pos : NULL;
    s->len = len;
    c->pos += (size_t)len;
    return RB_OK;
}

/* ============================================================ type names */

const char *rb_gguf_type_name(enum rb_gguf_type type)
{
    static const char *const names[RB_GGUF_TYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    if ((unsigned)type >= RB_GGUF_TYPE_COUNT)
        return "unknown";
    return names[type];
}

size_t rb_gguf_type_size(enum rb_gguf_type type)
{
    switch (type) {
    case RB_GGUF_TYPE_UINT8:
    case RB_GGUF_TYPE_INT8:
    case RB_GGUF_TYPE_BOOL:
        return 1;
    case RB_GGUF_TYPE_UINT16:
    case RB_GGUF_TYPE_INT16:
        return 2;
    case RB_GGUF_TYPE_UINT32:
    case RB_GGUF_TYPE_INT32:
    case RB_GGUF_TYPE_FLOAT32:
        return 4;
    case RB_GGUF_TYPE_UINT64:
    case RB_GGUF_TYPE_INT64:
    case RB_GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* ================================================================ parsing */

static bool has_nul(const struct rb_gguf_str *s)
{
    return s->len && memchr(s->ptr, 0, (size_t)s->len) != NULL;
}

static char *dup_str(const struct rb_gguf_str *s)
{
    return rb_strndup(s->ptr ? s->ptr : "", (size_t)s->len);
}

/* Reads the value of kv (its type already read) at the cursor. */
static enum rb_status read_value(struct cursor *c, struct rb_gguf_kv *kv)
{
    enum rb_status st;
    if (kv->type == RB_GGUF_TYPE_STRING) {
        struct rb_gguf_str *s = malloc(sizeof *s);
        if (!s)
            return RB_ERR_NOMEM;
        kv->strs = s;
        kv->n = 1;
        st = read_str(c, s, RB_GGUF_MAX_STRING_LEN, "string value");
        kv->data = s->ptr;
        return st;
    }
    if (kv->type != RB_GGUF_TYPE_ARRAY) {
        size_t sz = rb_gguf_type_size(kv->type);
        if (remaining(c) < sz)
            return FAIL(c, RB_ERR_CORRUPT, "file truncated reading a %s value of key '%s'",
                        rb_gguf_type_name(kv->type), kv->key);
        kv->data = c->p + c->pos;
        kv->n = 1;
        if (kv->type == RB_GGUF_TYPE_BOOL && c->p[c->pos] > 1)
            return FAIL(c, RB_ERR_CORRUPT, "bool value %u of key '%s' is neither 0 nor 1",
                        c->p[c->pos], kv->key);
        c->pos += sz;
        return RB_OK;
    }
    /* array: u32 element type, u64 count, elements */
    uint32_t et;
    size_t at = c->pos;
    if ((st = read_u32(c, &et, "array element type")) != RB_OK)
        return st;
    if (et >= RB_GGUF_TYPE_COUNT)
        return fail_at(c, RB_ERR_CORRUPT, at, "unknown array element type %u for key '%s'", et,
                       kv->key);
    if (et == RB_GGUF_TYPE_ARRAY)
        return fail_at(c, RB_ERR_UNSUPPORTED, at, "nested arrays are not supported (key '%s')",
                       kv->key);
    kv->arr_type = (enum rb_gguf_type)et;
    uint64_t n;
    at = c->pos;
    if ((st = read_u64(c, &n, "array length")) != RB_OK)
        return st;
    size_t min_elem = et == RB_GGUF_TYPE_STRING ? 8 : rb_gguf_type_size(kv->arr_type);
    if (n > remaining(c) / min_elem)
        return fail_at(c, RB_ERR_CORRUPT, at,
                       "array length %" PRIu64 " of key '%s' cannot fit in the %zu bytes left", n,
                       kv->key, remaining(c));
    kv->n = n;
    kv->data = c->p + c->pos;
    if (et != RB_GGUF_TYPE_STRING) {
        if (et == RB_GGUF_TYPE_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->pos + i] > 1)
                    return fail_at(c, RB_ERR_CORRUPT, c->pos + (size_t)i,
                                   "bool element %" PRIu64 " of key '%s' is neither 0 nor 1", i,
                                   kv->key);
        }
        c->pos += (size_t)n * min_elem;
        return RB_OK;
    }
    struct rb_gguf_str *strs = rb_malloc_array(n ? (size_t)n : 1, sizeof *strs);
    if (!strs)
        return RB_ERR_NOMEM;
    kv->strs = strs;
    for (uint64_t i = 0; i < n; i++)
        if ((st = read_str(c, &strs[i], RB_GGUF_MAX_STRING_LEN, "array string")) != RB_OK)
            return st;
    return RB_OK;
}

static enum rb_status parse_kvs(struct rb_gguf *g, struct cursor *c, uint64_t n_kv)
{
    enum rb_status st;
    g->kvs = rb_calloc_array(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    if (!g->kvs || !rb__strmap_init(&g->kv_map, (size_t)n_kv))
        return rb_errmsg_set(c->err, RB_ERR_NOMEM, "out of memory for %" PRIu64 " keys", n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        struct rb_gguf_kv *kv = &g->kvs[i];
        g->n_kv = (size_t)i + 1; /* so close() frees what was allocated */
        kv->offset = c->pos;
        struct rb_gguf_str key;
        if ((st = read_str(c, &key, RB_GGUF_MAX_KEY_LEN, "key")) != RB_OK)
            return st;
        if (key.len == 0 || has_nul(&key))
            return fail_at(c, RB_ERR_CORRUPT, (size_t)kv->offset,
                           "key %" PRIu64 " is empty or contains a NUL byte", i);
        if (!(kv->key = dup_str(&key)))
            return RB_ERR_NOMEM;
        uint32_t type;
        size_t at = c->pos;
        if ((st = read_u32(c, &type, "value type")) != RB_OK)
            return st;
        if (type >= RB_GGUF_TYPE_COUNT)
            return fail_at(c, RB_ERR_CORRUPT, at, "unknown value type %u for key '%s'", type,
                           kv->key);
        kv->type = (enum rb_gguf_type)type;
        kv->arr_type = kv->type;
        if ((st = read_value(c, kv)) != RB_OK) {
            if (st == RB_ERR_NOMEM)
                rb_errmsg_set(c->err, st, "out of memory reading key '%s'", kv->key);
            return st;
        }
        uint32_t prev;
        int r = rb__strmap_put(&g->kv_map, kv->key, strlen(kv->key), (uint32_t)i, &prev);
        if (r == 0)
            return fail_at(c, RB_ERR_CORRUPT, (size_t)kv->offset, "duplicate key '%s'", kv->key);
        if (r < 0)
            return rb_errmsg_set(c->err, RB_ERR_INTERNAL, "key map full");
    }
    return RB_OK;
}

static enum rb_status parse_tensor_infos(struct rb_gguf *g, struct cursor *c, uint64_t n)
{
    enum rb_status st;
    g->tensors = rb_calloc_array(n ? (size_t)n : 1, sizeof *g->tensors);
    if (!g->tensors || !rb__strmap_init(&g->tensor_map, (size_t)n))
        return rb_errmsg_set(c->err, RB_ERR_NOMEM, "out of memory for %" PRIu64 " tensors", n);
    for (uint64_t i = 0; i < n; i++) {
        struct rb_gguf_tensor *t = &g->tensors[i];
        g->n_tensors = (size_t)i + 1;
        size_t at = c->pos;
        struct rb_gguf_str name;
        if ((st = read_str(c, &name, RB_GGUF_MAX_NAME_LEN, "tensor name")) != RB_OK)
            return st;
        if (name.len == 0 || has_nul(&name))
            return fail_at(c, RB_ERR_CORRUPT, at,
                           "tensor %" PRIu64 " name is empty or contains a NUL byte", i);
        if (!(t->name = dup_str(&name)))
            return RB_ERR_NOMEM;
        size_t dims_at = c->pos;
        if ((st = read_u32(c, &t->n_dims, "tensor n_dims")) != RB_OK)
            return st;
        if (t->n_dims < 1 || t->n_dims > RB_GGUF_MAX_DIMS)
            return fail_at(c, RB_ERR_CORRUPT, dims_at,
                           "tensor '%s' has %u dimensions (1 to %d allowed)", t->name, t->n_dims,
                           RB_GGUF_MAX_DIMS);
        for (int d = 0; d < RB_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            size_t ne_at = c->pos;
            if ((st = read_u64(c, &t->ne[d], "tensor dimension")) != RB_OK)
                return st;
            if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
                return fail_at(c, RB_ERR_CORRUPT, ne_at,
                               "tensor '%s' dimension %u is %" PRIu64 " (must be 1..2^63-1)",
                               t->name, d, t->ne[d]);
        }
        size_t type_at = c->pos;
        if ((st = read_u32(c, &t->type, "tensor type")) != RB_OK)
            return st;
        const struct rb_ggml_type_traits *tt = rb_ggml_type_get(t->type);
        if (!tt)
            return fail_at(c, RB_ERR_FORMAT, type_at, "tensor '%s' has unknown ggml type %u",
                           t->name, t->type);
        if (t->ne[0] % tt->block_size != 0)
            return fail_at(c, RB_ERR_CORRUPT, type_at,
                           "tensor '%s': row length %" PRIu64
                           " is not a multiple of the %s block size %u",
                           t->name, t->ne[0], tt->name, tt->block_size);
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (__builtin_mul_overflow(n_el, t->ne[d], &n_el) || n_el > (uint64_t)INT64_MAX)
                return fail_at(c, RB_ERR_CORRUPT, dims_at,
                               "tensor '%s': element count overflows", t->name);
        t->n_elements = n_el;
        if (!rb_ggml_tensor_size(t->type, t->n_dims, t->ne, &t->size))
            return fail_at(c, RB_ERR_CORRUPT, dims_at, "tensor '%s': byte size overflows",
                           t->name);
        size_t off_at = c->pos;
        if ((st = read_u64(c, &t->offset, "tensor offset")) != RB_OK)
            return st;
        if (t->offset % g->alignment != 0)
            return fail_at(c, RB_ERR_CORRUPT, off_at,
                           "tensor '%s' data offset %" PRIu64 " is not a multiple of the "
                           "alignment %u",
                           t->name, t->offset, g->alignment);
        uint32_t prev;
        int r = rb__strmap_put(&g->tensor_map, t->name, name.len, (uint32_t)i, &prev);
        if (r == 0)
            return fail_at(c, RB_ERR_CORRUPT, at, "duplicate tensor name '%s'", t->name);
        if (r < 0)
            return rb_errmsg_set(c->err, RB_ERR_INTERNAL, "tensor map full");
    }
    return RB_OK;
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const struct rb_gguf_tensor *x = *(const struct rb_gguf_tensor *const *)a;
    const struct rb_gguf_tensor *y = *(const struct rb_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places the tensors in the data section: inside the file, not overlapping. */
static enum rb_status check_tensor_data(struct rb_gguf *g, struct cursor *c)
{
    uint64_t data_size = g->size > g->data_offset ? g->size - g->data_offset : 0;
    if (g->n_tensors == 0)
        return RB_OK;
    if (g->data_offset > g->size)
        return fail_at(c, RB_ERR_CORRUPT, g->size,
                       "file truncated: tensor data section starts at %" PRIu64
                       " but the file has %zu bytes",
                       g->data_offset, g->size);
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct rb_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (__builtin_add_overflow(t->offset, t->size, &end) || end > data_size)
            return fail_at(c, RB_ERR_CORRUPT, (size_t)g->data_offset,
                           "tensor '%s' data [%" PRIu64 ", +%" PRIu64
                           ") lies outside the data section (%" PRIu64 " bytes)",
                           t->name, t->offset, t->size, data_size);
        t->data = g->base + g->data_offset + t->offset;
    }
    const struct rb_gguf_tensor **order = rb_malloc_array(g->n_tensors, sizeof *order);
    if (!order)
        return rb_errmsg_set(c->err, RB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, g->n_tensors, sizeof *order, cmp_tensor_offset);
    enum rb_status st = RB_OK;
    for (size_t i = 1; i < g->n_tensors; i++) {
        if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset) {
            st = fail_at(c, RB_ERR_CORRUPT, (size_t)(g->data_offset + order[i]->offset),
                         "tensor '%s' data overlaps tensor '%s'", order[i]->name,
                         order[i - 1]->name);
            break;
        }
    }
    free(order);
    return st;
}

static enum rb_status parse(struct rb_gguf *g, struct rb_errmsg *err, const char *what)
{
    struct cursor c = {.p = g->base, .size = g->size, .pos = 0, .err = err, .what = what};
    enum rb_status st;
    char magic[4];
    if (!take(&c, magic, 4))
        return FAIL(&c, RB_ERR_FORMAT, "not a GGUF file (only %zu bytes)", g->size);
    if (memcmp(magic, RB_GGUF_MAGIC, 4) != 0)
        return fail_at(&c, RB_ERR_FORMAT, 0, "not a GGUF file (bad magic)");
    size_t at = c.pos;
    if ((st = read_u32(&c, &g->version, "version")) != RB_OK)
        return st;
    if (g->version == 1)
        return fail_at(&c, RB_ERR_FORMAT, at,
                       "GGUF version 1 is not supported (convert the model to v3)");
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && (__builtin_bswap32(g->version) == 2 ||
                                            __builtin_bswap32(g->version) == 3))
            return fail_at(&c, RB_ERR_FORMAT, at, "big-endian GGUF files are not supported");
        return fail_at(&c, RB_ERR_FORMAT, at, "unsupported GGUF version %u (2 and 3 are)",
                       g->version);
    }
    uint64_t n_tensors, n_kv;
    at = c.pos;
    if ((st = read_u64(&c, &n_tensors, "tensor count")) != RB_OK)
        return st;
    if ((st = read_u64(&c, &n_kv, "metadata count")) != RB_OK)
        return st;
    /* a tensor info takes >= 32 bytes, a key/value >= 13 */
    if (n_tensors > RB_GGUF_MAX_TENSORS || n_tensors > remaining(&c) / 32)
        return fail_at(&c, RB_ERR_CORRUPT, at,
                       "tensor count %" PRIu64 " is impossible for a file of %zu bytes",
                       n_tensors, g->size);
    if (n_kv > RB_GGUF_MAX_KV || n_kv > remaining(&c) / 13)
        return fail_at(&c, RB_ERR_CORRUPT, at + 8,
                       "metadata count %" PRIu64 " is impossible for a file of %zu bytes", n_kv,
                       g->size);
    if ((st = parse_kvs(g, &c, n_kv)) != RB_OK)
        return st;

    g->alignment = RB_GGUF_DEFAULT_ALIGNMENT;
    const struct rb_gguf_kv *akv = rb_gguf_find(g, "general.alignment");
    if (akv) {
        uint32_t a;
        if (rb_gguf_get_u32(g, "general.alignment", &a) != RB_OK || a == 0 ||
            (a & (a - 1)) != 0 || a > RB_GGUF_MAX_ALIGNMENT)
            return fail_at(&c, RB_ERR_CORRUPT, (size_t)akv->offset,
                           "general.alignment must be a power of two up to %u",
                           RB_GGUF_MAX_ALIGNMENT);
        g->alignment = a;
    }
    const struct rb_gguf_kv *arch = rb_gguf_find(g, "general.architecture");
    if (arch && arch->type == RB_GGUF_TYPE_STRING && !has_nul(&arch->strs[0]))
        if (!(g->arch = dup_str(&arch->strs[0])))
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");

    if ((st = parse_tensor_infos(g, &c, n_tensors)) != RB_OK)
        return st;
    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_offset = (uint64_t)c.pos + pad;
    return check_tensor_data(g, &c);
}

/* ================================================================ open */

static enum rb_status open_common(struct rb_gguf *g, struct rb_gguf **out, struct rb_errmsg *err,
                                  const char *what)
{
    enum rb_status st = parse(g, err, what);
    if (st != RB_OK) {
        if (st == RB_ERR_NOMEM && err && !err->text[0])
            rb_errmsg_set(err, st, "%s: out of memory", what);
        rb_gguf_close(g);
        return st;
    }
    *out = g;
    return RB_OK;
}

enum rb_status rb_gguf_open_memory(const void *buf, size_t len, struct rb_gguf **out,
                                   struct rb_errmsg *err)
{
    *out = NULL;
    rb_errmsg_clear(err);
    struct rb_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    g->base = buf;
    g->size = buf ? len : 0;
    return open_common(g, out, err, "");
}

enum rb_status rb_gguf_open(const char *path, struct rb_gguf **out, struct rb_errmsg *err)
{
    *out = NULL;
    rb_errmsg_clear(err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rb_errmsg_set(err, errno == ENOENT ? RB_ERR_NOT_FOUND : RB_ERR_IO, "%s: %s", path,
                             strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) != 0) {
        int e = errno;
        close(fd);
        return rb_errmsg_set(err, RB_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(stt.st_mode)) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_INVALID, "%s: not a regular file", path);
    }
    if (stt.st_size < 24) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_FORMAT, "%s: not a GGUF file (%lld bytes)", path,
                             (long long)stt.st_size);
    }
    if ((uint64_t)stt.st_size > SIZE_MAX) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s: too large to map", path);
    }
    void *map = mmap(NULL, (size_t)stt.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return rb_errmsg_set(err, RB_ERR_IO, "%s: mmap: %s", path, strerror(e));
    struct rb_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)stt.st_size);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    g->base = map;
    g->size = (size_t)stt.st_size;
    g->mapped = true;
    return open_common(g, out, err, path);
}

void rb_gguf_close(struct rb_gguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free((char *)g->kvs[i].key);
        free((void *)g->kvs[i].strs);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    rb__strmap_free(&g->kv_map);
    rb__strmap_free(&g->tensor_map);
    free(g->arch);
    if (g->mapped)
        munmap((void *)g->base, g->size);
    free(g);
}

/* ============================================================== accessors */

uint32_t rb_gguf_version(const struct rb_gguf *g)
{
    return g->version;
}
uint32_t rb_gguf_alignment(const struct rb_gguf *g)
{
    return g->alignment;
}
uint64_t rb_gguf_file_size(const struct rb_gguf *g)
{
    return g->size;
}
uint64_t rb_gguf_data_offset(const struct rb_gguf *g)
{
    return g->data_offset;
}
const void *rb_gguf_base(const struct rb_gguf *g)
{
    return g->base;
}
size_t rb_gguf_kv_count(const struct rb_gguf *g)
{
    return g->n_kv;
}
const struct rb_gguf_kv *rb_gguf_kv_at(const struct rb_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}
const struct rb_gguf_kv *rb_gguf_find(const struct rb_gguf *g, const char *key)
{
    uint32_t i;
    if (!key || !rb__strmap_get(&g->kv_map, key, strlen(key), &i) || i >= g->n_kv)
        return NULL;
    return &g->kvs[i];
}
size_t rb_gguf_tensor_count(const struct rb_gguf *g)
{
    return g->n_tensors;
}
const struct rb_gguf_tensor *rb_gguf_tensor_at(const struct rb_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}
const struct rb_gguf_tensor *rb_gguf_find_tensor(const struct rb_gguf *g, const char *name)
{
    uint32_t i;
    if (!name || !rb__strmap_get(&g->tensor_map, name, strlen(name), &i) || i >= g->n_tensors)
        return NULL;
    return &g->tensors[i];
}
const char *rb_gguf_arch(const struct rb_gguf *g)
{
    return g->arch;
}

/* ------------------------------------------------------- scalar conversion */

/* Element i of a numeric value (scalar: i = 0) as signed/unsigned/double. */
static bool elem_is_int(enum rb_gguf_type t)
{
    return t == RB_GGUF_TYPE_UINT8 || t == RB_GGUF_TYPE_INT8 || t == RB_GGUF_TYPE_UINT16 ||
           t == RB_GGUF_TYPE_INT16 || t == RB_GGUF_TYPE_UINT32 || t == RB_GGUF_TYPE_INT32 ||
           t == RB_GGUF_TYPE_UINT64 || t == RB_GGUF_TYPE_INT64 || t == RB_GGUF_TYPE_BOOL;
}

/* Reads an integer element; *neg set when it is a negative signed value. */
static uint64_t elem_int(enum rb_gguf_type t, const void *base, uint64_t i, bool *neg)
{
    const uint8_t *p = (const uint8_t *)base + i * rb_gguf_type_size(t);
    *neg = false;
    switch (t) {
    case RB_GGUF_TYPE_UINT8:
    case RB_GGUF_TYPE_BOOL:
        return p[0];
    case RB_GGUF_TYPE_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        *neg = v < 0;
        return (uint64_t)(int64_t)v;
    }
    case RB_GGUF_TYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case RB_GGUF_TYPE_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *neg = v < 0;
        return (uint64_t)(int64_t)v;
    }
    case RB_GGUF_TYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case RB_GGUF_TYPE_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *neg = v < 0;
        return (uint64_t)(int64_t)v;
    }
    case RB_GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    case RB_GGUF_TYPE_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        *neg = v < 0;
        return (uint64_t)v;
    }
    default:
        return 0;
    }
}

static double elem_f64(enum rb_gguf_type t, const void *base, uint64_t i)
{
    const uint8_t *p = (const uint8_t *)base + i * rb_gguf_type_size(t);
    if (t == RB_GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    if (t == RB_GGUF_TYPE_FLOAT64) {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    bool neg;
    uint64_t u = elem_int(t, base, i, &neg);
    return neg ? (double)(int64_t)u : (double)u;
}

int64_t rb_gguf_arr_i64(const struct rb_gguf_kv *kv, uint64_t i)
{
    if (i >= kv->n)
        return 0;
    if (!elem_is_int(kv->arr_type)) {
        /* saturating: a float outside int64 (or NaN) must not be undefined behaviour */
        double d = elem_f64(kv->arr_type, kv->data, i);
        if (d != d)
            return 0;
        if (d >= 9223372036854775807.0)
            return INT64_MAX;
        if (d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)d;
    }
    bool neg;
    return (int64_t)elem_int(kv->arr_type, kv->data, i, &neg);
}

uint64_t rb_gguf_arr_u64(const struct rb_gguf_kv *kv, uint64_t i)
{
    return (uint64_t)rb_gguf_arr_i64(kv, i);
}

double rb_gguf_arr_f64(const struct rb_gguf_kv *kv, uint64_t i)
{
    if (i >= kv->n || kv->arr_type == RB_GGUF_TYPE_STRING)
        return 0;
    return elem_f64(kv->arr_type, kv->data, i);
}

float rb_gguf_arr_f32(const struct rb_gguf_kv *kv, uint64_t i)
{
    if (i < kv->n && kv->arr_type == RB_GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, (const uint8_t *)kv->data + i * 4, 4);
        return v;
    }
    return (float)rb_gguf_arr_f64(kv, i);
}

/* A scalar integer value within [lo, hi] (as signed 128-ish via neg flag). */
static enum rb_status get_int(const struct rb_gguf *g, const char *key, bool want_signed,
                              uint64_t max_pos, uint64_t max_neg_mag, uint64_t *out_u, bool *neg)
{
    const struct rb_gguf_kv *kv = rb_gguf_find(g, key);
    if (!kv)
        return RB_ERR_NOT_FOUND;
    if (kv->type == RB_GGUF_TYPE_ARRAY || !elem_is_int(kv->type))
        return RB_ERR_FORMAT;
    uint64_t u = elem_int(kv->type, kv->data, 0, neg);
    if (*neg) {
        if (!want_signed)
            return RB_ERR_FORMAT;
        uint64_t mag = ~u + 1; /* |v| of the two's complement value */
        if (mag > max_neg_mag)
            return RB_ERR_FORMAT;
    } else if (u > max_pos) {
        return RB_ERR_FORMAT;
    }
    *out_u = u;
    return RB_OK;
}

enum rb_status rb_gguf_get_u32(const struct rb_gguf *g, const char *key, uint32_t *out)
{
    uint64_t u;
    bool neg;
    enum rb_status st = get_int(g, key, false, UINT32_MAX, 0, &u, &neg);
    if (st == RB_OK)
        *out = (uint32_t)u;
    return st;
}

enum rb_status rb_gguf_get_i32(const struct rb_gguf *g, const char *key, int32_t *out)
{
    uint64_t u;
    bool neg;
    enum rb_status st = get_int(g, key, true, INT32_MAX, (uint64_t)INT32_MAX + 1, &u, &neg);
    if (st == RB_OK)
        *out = (int32_t)(int64_t)u;
    return st;
}

enum rb_status rb_gguf_get_u64(const struct rb_gguf *g, const char *key, uint64_t *out)
{
    uint64_t u;
    bool neg;
    enum rb_status st = get_int(g, key, false, UINT64_MAX, 0, &u, &neg);
    if (st == RB_OK)
        *out = u;
    return st;
}

enum rb_status rb_gguf_get_i64(const struct rb_gguf *g, const char *key, int64_t *out)
{
    uint64_t u;
    bool neg;
    enum rb_status st = get_int(g, key, true, INT64_MAX, (uint64_t)INT64_MAX + 1, &u, &neg);
    if (st == RB_OK)
        *out = (int64_t)u;
    return st;
}

enum rb_status rb_gguf_get_f64(const struct rb_gguf *g, const char *key, double *out)
{
    const struct rb_gguf_kv *kv = rb_gguf_find(g, key);
    if (!kv)
        return RB_ERR_NOT_FOUND;
    if (kv->type == RB_GGUF_TYPE_ARRAY || kv->type == RB_GGUF_TYPE_STRING ||
        kv->type == RB_GGUF_TYPE_BOOL)
        return RB_ERR_FORMAT;
    *out = elem_f64(kv->type, kv->data, 0);
    return RB_OK;
}

enum rb_status rb_gguf_get_f32(const struct rb_gguf *g, const char *key, float *out)
{
    double d;
    enum rb_status st = rb_gguf_get_f64(g, key, &d);
    if (st == RB_OK)
        *out = (float)d;
    return st;
}

enum rb_status rb_gguf_get_bool(const struct rb_gguf *g, const char *key, bool *out)
{
    const struct rb_gguf_kv *kv = rb_gguf_find(g, key);
    if (!kv)
        return RB_ERR_NOT_FOUND;
    if (kv->type == RB_GGUF_TYPE_ARRAY || !elem_is_int(kv->type))
        return RB_ERR_FORMAT;
    bool neg;
    *out = elem_int(kv->type, kv->data, 0, &neg) != 0;
    return RB_OK;
}

enum rb_status rb_gguf_get_str(const struct rb_gguf *g, const char *key, struct rb_gguf_str *out)
{
    const struct rb_gguf_kv *kv = rb_gguf_find(g, key);
    if (!kv)
        return RB_ERR_NOT_FOUND;
    if (kv->type != RB_GGUF_TYPE_STRING)
        return RB_ERR_FORMAT;
    *out = kv->strs[0];
    return RB_OK;
}

enum rb_status rb_gguf_get_strdup(const struct rb_gguf *g, const char *key, char **out)
{
    struct rb_gguf_str s;
    enum rb_status st = rb_gguf_get_str(g, key, &s);
    if (st != RB_OK)
        return st;
    if (has_nul(&s))
        return RB_ERR_FORMAT;
    *out = dup_str(&s);
    return *out ? RB_OK : RB_ERR_NOMEM;
}

enum rb_status rb_gguf_get_arr(const struct rb_gguf *g, const char *key,
                               const struct rb_gguf_kv **out)
{
    const struct rb_gguf_kv *kv = rb_gguf_find(g, key);
    if (!kv)
        return RB_ERR_NOT_FOUND;
    if (kv->type != RB_GGUF_TYPE_ARRAY)
        return RB_ERR_FORMAT;
    *out = kv;
    return RB_OK;
}

static bool arch_key(const struct rb_gguf *g, const char *suffix, char *buf, size_t size)
{
    if (!g->arch)
        return false;
    int n = snprintf(buf, size, "%s.%s", g->arch, suffix);
    return n > 0 && (size_t)n < size;
}

enum rb_status rb_gguf_get_arch_u32(const struct rb_gguf *g, const char *suffix, uint32_t *out)
{
    char key[256];
    if (!arch_key(g, suffix, key, sizeof key))
        return RB_ERR_NOT_FOUND;
    return rb_gguf_get_u32(g, key, out);
}

enum rb_status rb_gguf_get_arch_f32(const struct rb_gguf *g, const char *suffix, float *out)
{
    char key[256];
    if (!arch_key(g, suffix, key, sizeof key))
        return RB_ERR_NOT_FOUND;
    return rb_gguf_get_f32(g, key, out);
}
