/* Error messages, buffers, checked allocation and strict number parsing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/common.h"

/* ============================================================ error message */

enum rb_status rb_errmsg_set(struct rb_errmsg *e, enum rb_status status, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    return status;
}

void rb_errmsg_clear(struct rb_errmsg *e)
{
    if (e)
        e->text[0] = '\0';
}

/* ================================================================== buffers */

void rb_buf_init(struct rb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : RB_BUF_DEFAULT_MAX;
}

enum rb_status rb_buf_reserve(struct rb_buf *b, size_t extra)
{
    size_t need;
    if (!rb_size_add(b->len, extra, &need) || !rb_size_add(need, 1, &need))
        return RB_ERR_TOO_LARGE;
    if (need - 1 > b->max)
        return RB_ERR_TOO_LARGE;
    if (need <= b->cap)
        return RB_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return RB_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return RB_OK;
}

enum rb_status rb_buf_append(struct rb_buf *b, const void *data, size_t len)
{
    enum rb_status st = rb_buf_reserve(b, len);
    if (st != RB_OK)
        return st;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return RB_OK;
}

enum rb_status rb_buf_append_str(struct rb_buf *b, const char *s)
{
    return rb_buf_append(b, s, strlen(s));
}

enum rb_status rb_buf_vprintf(struct rb_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return RB_ERR_INVALID;
    enum rb_status st = rb_buf_reserve(b, (size_t)n);
    if (st != RB_OK)
        return st;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return RB_OK;
}

enum rb_status rb_buf_printf(struct rb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum rb_status st = rb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

void rb_buf_reset(struct rb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *rb_buf_steal(struct rb_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void rb_buf_free(struct rb_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ======================================================= checked allocation */

void *rb_malloc_array(size_t n, size_t size)
{
    size_t total;
    if (!rb_size_mul(n, size, &total))
        return NULL;
    return malloc(total ? total : 1);
}

void *rb_calloc_array(size_t n, size_t size)
{
    size_t total;
    if (!rb_size_mul(n, size, &total))
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

char *rb_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *rb_strndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

char *rb_asprintf(const char *fmt, ...)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    va_list ap;
    va_start(ap, fmt);
    enum rb_status st = rb_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return NULL;
    }
    return rb_buf_steal(&b);
}

bool rb_strlcpy(char *dst, const char *src, size_t dst_size)
{
    if (dst_size == 0)
        return false;
    size_t n = strlen(src);
    bool fits = n < dst_size;
    if (!fits)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return fits;
}

enum rb_status rb_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return RB_ERR_INVALID;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || end == s)
        return RB_ERR_INVALID;
    *out = v;
    return RB_OK;
}

enum rb_status rb_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return RB_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || end == s || !isfinite(v))
        return RB_ERR_INVALID;
    *out = v;
    return RB_OK;
}
