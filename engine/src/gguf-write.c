/* GGUF writer (see gguf.h): GGUF v3, metadata then tensor infos then the
 * aligned data section. Tensor bytes are copied in, or produced by a callback
 * at write time so models larger than memory can be streamed. The file is
 * written to "<path>.tmp.<pid>", fsynced and renamed over path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

struct wkv {
    char *key;
    struct rb_buf val; /* u32 type + payload, as in the file */
};

struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[RB_GGUF_MAX_DIMS];
    uint64_t size;
    void *data; /* owned copy, or NULL when fill is set */
    rb_gguf_fill_fn fill;
    void *user;
};

struct rb_gguf_writer {
    struct rb_errmsg err;
    uint32_t alignment;
    struct wkv *kvs;
    size_t n_kv, cap_kv;
    struct wtensor *tensors;
    size_t n_tensors, cap_tensors;
    enum rb_status failed; /* a metadata setter failed half-way: the writer refuses to write */
};

/* Records a failed setter (its key may hold a partial value). */
static enum rb_status done(struct rb_gguf_writer *w, enum rb_status st)
{
    if (st != RB_OK && st != RB_ERR_INVALID && !w->failed)
        w->failed = st;
    if (st != RB_OK && !w->err.text[0])
        rb_errmsg_set(&w->err, st, "gguf writer: %s", rb_status_str(st));
    return st;
}

enum rb_status rb_gguf_writer_create(struct rb_gguf_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return RB_ERR_NOMEM;
    (*out)->alignment = RB_GGUF_DEFAULT_ALIGNMENT;
    return RB_OK;
}

void rb_gguf_writer_free(struct rb_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        rb_buf_free(&w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

const char *rb_gguf_writer_errmsg(const struct rb_gguf_writer *w)
{
    return w->err.text;
}

void rb_gguf_writer_set_alignment(struct rb_gguf_writer *w, uint32_t alignment)
{
    if (alignment && (alignment & (alignment - 1)) == 0 && alignment <= RB_GGUF_MAX_ALIGNMENT)
        w->alignment = alignment;
}

/* The value buffer for key (replacing an earlier value), reset and ready. */
static enum rb_status kv_slot(struct rb_gguf_writer *w, const char *key, struct rb_buf **out)
{
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > RB_GGUF_MAX_KEY_LEN)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: bad key");
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            rb_buf_reset(&w->kvs[i].val);
            *out = &w->kvs[i].val;
            return RB_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        struct wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p)
            return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory");
        w->kvs = p;
        w->cap_kv = cap;
    }
    struct wkv *kv = &w->kvs[w->n_kv];
    if (!(kv->key = rb_strdup(key)))
        return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory");
    rb_buf_init(&kv->val, 0);
    w->n_kv++;
    *out = &kv->val;
    return RB_OK;
}

static enum rb_status put_scalar(struct rb_gguf_writer *w, const char *key, enum rb_gguf_type t,
                                 const void *v, size_t size)
{
    struct rb_buf *b;
    enum rb_status st = kv_slot(w, key, &b);
    uint32_t tt = (uint32_t)t;
    if (st == RB_OK)
        st = rb_buf_append(b, &tt, 4);
    if (st == RB_OK)
        st = rb_buf_append(b, v, size);
    return done(w, st);
}

enum rb_status rb_gguf_writer_set_u32(struct rb_gguf_writer *w, const char *key, uint32_t v)
{
    return put_scalar(w, key, RB_GGUF_TYPE_UINT32, &v, 4);
}
enum rb_status rb_gguf_writer_set_i32(struct rb_gguf_writer *w, const char *key, int32_t v)
{
    return put_scalar(w, key, RB_GGUF_TYPE_INT32, &v, 4);
}
enum rb_status rb_gguf_writer_set_u64(struct rb_gguf_writer *w, const char *key, uint64_t v)
{
    return put_scalar(w, key, RB_GGUF_TYPE_UINT64, &v, 8);
}
enum rb_status rb_gguf_writer_set_f32(struct rb_gguf_writer *w, const char *key, float v)
{
    return put_scalar(w, key, RB_GGUF_TYPE_FLOAT32, &v, 4);
}
enum rb_status rb_gguf_writer_set_bool(struct rb_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return put_scalar(w, key, RB_GGUF_TYPE_BOOL, &b, 1);
}

static enum rb_status append_str(struct rb_buf *b, const char *s, uint64_t len)
{
    enum rb_status st = rb_buf_append(b, &len, 8);
    if (st == RB_OK && len)
        st = rb_buf_append(b, s, (size_t)len);
    return st;
}

enum rb_status rb_gguf_writer_set_str(struct rb_gguf_writer *w, const char *key, const char *v,
                                      size_t len)
{
    if (!v && len)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: NULL string for '%s'", key);
    if (len > RB_GGUF_MAX_STRING_LEN)
        return rb_errmsg_set(&w->err, RB_ERR_TOO_LARGE, "gguf writer: string too long");
    struct rb_buf *b;
    enum rb_status st = kv_slot(w, key, &b);
    uint32_t tt = RB_GGUF_TYPE_STRING;
    if (st == RB_OK)
        st = rb_buf_append(b, &tt, 4);
    if (st == RB_OK)
        st = append_str(b, v, len);
    return done(w, st);
}

enum rb_status rb_gguf_writer_set_arr(struct rb_gguf_writer *w, const char *key,
                                      enum rb_gguf_type elem_type, const void *data, uint64_t n)
{
    size_t es = rb_gguf_type_size(elem_type);
    size_t bytes;
    if (es == 0 || (n && !data) || !rb_size_mul((size_t)n, es, &bytes))
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: bad array for '%s'", key);
    struct rb_buf *b;
    enum rb_status st = kv_slot(w, key, &b);
    uint32_t hdr[2] = {RB_GGUF_TYPE_ARRAY, (uint32_t)elem_type};
    if (st == RB_OK)
        st = rb_buf_append(b, hdr, 8);
    if (st == RB_OK)
        st = rb_buf_append(b, &n, 8);
    if (st == RB_OK && bytes)
        st = rb_buf_append(b, data, bytes);
    return done(w, st);
}

enum rb_status rb_gguf_writer_set_arr_str(struct rb_gguf_writer *w, const char *key,
                                          const char *const *strs, const size_t *lens, uint64_t n)
{
    struct rb_buf *b;
    enum rb_status st = kv_slot(w, key, &b);
    uint32_t hdr[2] = {RB_GGUF_TYPE_ARRAY, RB_GGUF_TYPE_STRING};
    if (st == RB_OK)
        st = rb_buf_append(b, hdr, 8);
    if (st == RB_OK)
        st = rb_buf_append(b, &n, 8);
    for (uint64_t i = 0; st == RB_OK && i < n; i++)
        st = append_str(b, strs[i], lens ? lens[i] : strlen(strs[i]));
    return done(w, st);
}

static enum rb_status copy_kv(struct rb_gguf_writer *w, const struct rb_gguf_kv *kv)
{
    struct rb_buf *b;
    enum rb_status st = kv_slot(w, kv->key, &b);
    uint32_t tt = (uint32_t)kv->type;
    if (st == RB_OK)
        st = rb_buf_append(b, &tt, 4);
    if (st != RB_OK)
        return st;
    if (kv->type == RB_GGUF_TYPE_STRING)
        return append_str(b, kv->strs[0].ptr, kv->strs[0].len);
    if (kv->type != RB_GGUF_TYPE_ARRAY)
        return rb_buf_append(b, kv->data, rb_gguf_type_size(kv->type));
    uint32_t et = (uint32_t)kv->arr_type;
    if ((st = rb_buf_append(b, &et, 4)) != RB_OK || (st = rb_buf_append(b, &kv->n, 8)) != RB_OK)
        return st;
    if (kv->arr_type == RB_GGUF_TYPE_STRING) {
        for (uint64_t i = 0; st == RB_OK && i < kv->n; i++)
            st = append_str(b, kv->strs[i].ptr, kv->strs[i].len);
        return st;
    }
    return kv->n ? rb_buf_append(b, kv->data, (size_t)kv->n * rb_gguf_type_size(kv->arr_type))
                 : RB_OK;
}

enum rb_status rb_gguf_writer_copy_kv(struct rb_gguf_writer *w, const struct rb_gguf_kv *kv)
{
    return done(w, copy_kv(w, kv));
}

static enum rb_status add_tensor(struct rb_gguf_writer *w, const char *name, uint32_t type,
                                 uint32_t n_dims, const uint64_t *ne, struct wtensor **out)
{
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > RB_GGUF_MAX_NAME_LEN)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: bad tensor name");
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return rb_errmsg_set(&w->err, RB_ERR_EXISTS, "gguf writer: duplicate tensor '%s'",
                                 name);
    uint64_t size;
    if (!ne || !rb_ggml_tensor_size(type, n_dims, ne, &size))
        return rb_errmsg_set(&w->err, RB_ERR_INVALID,
                             "gguf writer: tensor '%s': bad type %u or shape for it", name, type);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        struct wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p)
            return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    struct wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = rb_strdup(name)))
        return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < RB_GGUF_MAX_DIMS; d++)
        t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->size = size;
    w->n_tensors++;
    *out = t;
    return RB_OK;
}

enum rb_status rb_gguf_writer_add_tensor(struct rb_gguf_writer *w, const char *name, uint32_t type,
                                         uint32_t n_dims, const uint64_t *ne, const void *data,
                                         uint64_t size)
{
    uint64_t want;
    if (ne && rb_ggml_tensor_size(type, n_dims, ne, &want) && want != size)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID,
                             "gguf writer: tensor '%s' has %llu bytes, its shape needs %llu",
                             name ? name : "?", (unsigned long long)size,
                             (unsigned long long)want);
    if (!data || size > SIZE_MAX)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: no data for tensor");
    void *copy = malloc((size_t)size);
    if (!copy)
        return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory for tensor data");
    struct wtensor *t;
    enum rb_status st = add_tensor(w, name, type, n_dims, ne, &t);
    if (st != RB_OK) {
        free(copy);
        return st;
    }
    memcpy(copy, data, (size_t)size);
    t->data = copy;
    return RB_OK;
}

enum rb_status rb_gguf_writer_add_tensor_cb(struct rb_gguf_writer *w, const char *name,
                                            uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                            rb_gguf_fill_fn fill, void *user)
{
    if (!fill)
        return rb_errmsg_set(&w->err, RB_ERR_INVALID, "gguf writer: no fill callback");
    struct wtensor *t;
    enum rb_status st = add_tensor(w, name, type, n_dims, ne, &t);
    if (st == RB_OK) {
        t->fill = fill;
        t->user = user;
    }
    return st;
}

static enum rb_status write_all(int fd, const void *p, size_t n, struct rb_errmsg *err,
                                const char *path)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return rb_errmsg_set(err, RB_ERR_IO, "%s: write: %s", path, strerror(errno));
        }
        c += k;
        n -= (size_t)k;
    }
    return RB_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a)
{
    return (a - x % a) % a;
}

enum rb_status rb_gguf_writer_write(struct rb_gguf_writer *w, const char *path)
{
    if (w->failed)
        return rb_errmsg_set(&w->err, w->failed,
                             "gguf writer: an earlier metadata call failed (%s); nothing written",
                             rb_status_str(w->failed));
    rb_errmsg_clear(&w->err);
    /* header + metadata + tensor infos */
    struct rb_buf h;
    rb_buf_init(&h, (size_t)1 << 31);
    uint32_t version = 3;
    uint64_t nt = w->n_tensors, nk = w->n_kv;
    enum rb_status st = rb_buf_append(&h, RB_GGUF_MAGIC, 4);
    if (st == RB_OK)
        st = rb_buf_append(&h, &version, 4);
    if (st == RB_OK)
        st = rb_buf_append(&h, &nt, 8);
    if (st == RB_OK)
        st = rb_buf_append(&h, &nk, 8);
    for (size_t i = 0; st == RB_OK && i < w->n_kv; i++) {
        st = append_str(&h, w->kvs[i].key, strlen(w->kvs[i].key));
        if (st == RB_OK)
            st = rb_buf_append(&h, w->kvs[i].val.data, w->kvs[i].val.len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; st == RB_OK && i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        st = append_str(&h, t->name, strlen(t->name));
        if (st == RB_OK)
            st = rb_buf_append(&h, &t->n_dims, 4);
        if (st == RB_OK)
            st = rb_buf_append(&h, t->ne, 8 * (size_t)t->n_dims);
        if (st == RB_OK)
            st = rb_buf_append(&h, &t->type, 4);
        if (st == RB_OK)
            st = rb_buf_append(&h, &offset, 8);
        offset += t->size + pad_to(t->size, w->alignment);
    }
    static const char zeros[RB_GGUF_MAX_ALIGNMENT];
    if (st == RB_OK)
        st = rb_buf_append(&h, zeros, (size_t)pad_to(h.len, w->alignment));
    if (st != RB_OK) {
        rb_buf_free(&h);
        return rb_errmsg_set(&w->err, st, "gguf writer: header too large or out of memory");
    }

    char *tmp = rb_asprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp) {
        rb_buf_free(&h);
        return rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = rb_errmsg_set(&w->err, RB_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        rb_buf_free(&h);
        return st;
    }
    st = write_all(fd, h.data, h.len, &w->err, tmp);
    rb_buf_free(&h);
    for (size_t i = 0; st == RB_OK && i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        if (t->data) {
            st = write_all(fd, t->data, (size_t)t->size, &w->err, tmp);
        } else {
            void *buf = t->size <= SIZE_MAX ? malloc((size_t)t->size ? (size_t)t->size : 1) : NULL;
            if (!buf) {
                st = rb_errmsg_set(&w->err, RB_ERR_NOMEM, "out of memory for tensor '%s'",
                                   t->name);
                break;
            }
            st = t->fill(t->user, t->name, buf, t->size);
            if (st != RB_OK)
                rb_errmsg_set(&w->err, st, "gguf writer: producing tensor '%s' failed", t->name);
            else
                st = write_all(fd, buf, (size_t)t->size, &w->err, tmp);
            free(buf);
        }
        if (st == RB_OK)
            st = write_all(fd, zeros, (size_t)pad_to(t->size, w->alignment), &w->err, tmp);
    }
    if (st == RB_OK && fsync(fd) != 0)
        st = rb_errmsg_set(&w->err, RB_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == RB_OK)
        st = rb_errmsg_set(&w->err, RB_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (st == RB_OK && rename(tmp, path) != 0)
        st = rb_errmsg_set(&w->err, RB_ERR_IO, "%s: rename: %s", path, strerror(errno));
    if (st != RB_OK)
        unlink(tmp);
    else if (rb_fs_sync_parent(path) != RB_OK)
        RB_WARN("engine", "%s: could not sync the directory", path);
    free(tmp);
    return st;
}
