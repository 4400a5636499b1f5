/* The parse sandbox: a forked child with rlimits parses one file and sends
 * the document back over a pipe in a length-prefixed little-endian format:
 *
 *   "RBDOC1" u8 ok
 *   ok=0: i32 status, str message
 *   ok=1: u32 format, str text, str title, str language, str metadata,
 *         i32 n_pages, i32 ocr_pages, u64 page_start * n_pages,
 *         u64 n_blocks, per block: u8 kind, i32 level, u64 byte_start, u64 byte_end,
 *                                  u64 header_rows, u64 n_rows, (u64 start, u64 end) * n_rows,
 *         u64 n_attachments, per attachment: str name, str mime, str data
 *   str = u64 length + bytes (a NULL string has length 2^64-1)
 *
 * The parent validates every field, so a compromised child can at worst make
 * one document wrong, never corrupt the caller's memory. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingest-impl.h"

#define MAGIC "RBDOC1"
#define NULL_LEN UINT64_MAX

static enum rb_status put_u64(struct rb_buf *o, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return rb_buf_append(o, b, 8);
}
static enum rb_status put_i32(struct rb_buf *o, int32_t v)
{
    unsigned char b[4];
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    return rb_buf_append(o, b, 4);
}
static enum rb_status put_str(struct rb_buf *o, const char *s, size_t n)
{
    if (!s)
        return put_u64(o, NULL_LEN);
    enum rb_status st = put_u64(o, n);
    return st ? st : rb_buf_append(o, s, n);
}
static enum rb_status put_cstr(struct rb_buf *o, const char *s)
{
    return put_str(o, s, s ? strlen(s) : 0);
}

enum rb_status rb_ingest_doc_serialize(const struct rb_ingest_doc *d, struct rb_buf *o)
{
    enum rb_status st = RB_OK;
#define P(x)                                                                                       \
    if ((st = (x)) != RB_OK)                                                                       \
        return st;
    P(rb_buf_append(o, MAGIC, 6))
    P(rb_buf_append(o, "\1", 1))
    P(put_i32(o, (int32_t)d->format))
    P(put_str(o, d->text, d->text_len))
    P(put_cstr(o, d->title))
    P(put_cstr(o, d->language))
    P(put_cstr(o, d->metadata_json))
    P(put_i32(o, d->n_pages))
    P(put_i32(o, d->ocr_pages))
    for (int32_t i = 0; i < d->n_pages; i++)
        P(put_u64(o, d->page_starts[i]))
    P(put_u64(o, d->n_blocks))
    for (size_t i = 0; i < d->n_blocks; i++) {
        const struct rb_ingest_block *b = &d->blocks[i];
        unsigned char k = (unsigned char)b->kind;
        P(rb_buf_append(o, &k, 1))
        P(put_i32(o, b->level))
        P(put_u64(o, b->byte_start))
        P(put_u64(o, b->byte_end))
        P(put_u64(o, b->header_rows))
        P(put_u64(o, b->n_rows))
        for (size_t r = 0; r < b->n_rows; r++) {
            P(put_u64(o, b->rows[r].start))
            P(put_u64(o, b->rows[r].end))
        }
    }
    P(put_u64(o, d->n_attachments))
    for (size_t i = 0; i < d->n_attachments; i++) {
        P(put_cstr(o, d->attachments[i].name))
        P(put_cstr(o, d->attachments[i].mime))
        P(put_str(o, d->attachments[i].data, d->attachments[i].len))
    }
#undef P
    return RB_OK;
}

struct reader {
    const unsigned char *p;
    size_t len, pos;
    bool bad;
};
static uint64_t get_u64(struct reader *r)
{
    if (r->bad || r->len - r->pos < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += 8;
    return v;
}
static int32_t get_i32(struct reader *r)
{
    if (r->bad || r->len - r->pos < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[r->pos + (size_t)i] << (8 * i);
    r->pos += 4;
    return (int32_t)v;
}
static unsigned get_u8(struct reader *r)
{
    if (r->bad || r->pos >= r->len) {
        r->bad = true;
        return 0;
    }
    return r->p[r->pos++];
}
/* Returns a NUL-terminated copy (NULL for the null string or on error). */
static char *get_str(struct reader *r, size_t *n_out)
{
    uint64_t n = get_u64(r);
    if (r->bad || n == NULL_LEN)
        return NULL;
    if (n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p + r->pos, (size_t)n);
    s[n] = '\0';
    r->pos += (size_t)n;
    if (n_out)
        *n_out = (size_t)n;
    return s;
}

static enum rb_status corrupt(struct rb_ingest_doc *d, struct rb_errmsg *err, const char *what)
{
    rb_ingest_doc_free(d);
    return err ? rb_errmsg_set(err, RB_ERR_CORRUPT, "sandbox result malformed: %s", what)
               : RB_ERR_CORRUPT;
}

enum rb_status rb_ingest_doc_deserialize(const void *data, size_t len, struct rb_ingest_doc **out,
                                         struct rb_errmsg *err)
{
    *out = NULL;
    struct reader r = {data, len, 0, false};
    if (len < 7 || memcmp(data, MAGIC, 6) != 0)
        return corrupt(NULL, err, "bad magic");
    r.pos = 6;
    unsigned ok = get_u8(&r);
    if (ok == 0) {
        int32_t st = get_i32(&r);
        char *msg = get_str(&r, NULL);
        if (r.bad || st >= 0 || !rb_status_name((enum rb_status)st)) {
            free(msg);
            return corrupt(NULL, err, "bad error record");
        }
        if (err)
            rb_errmsg_set(err, (enum rb_status)st, "%s", msg ? msg : rb_status_str(st));
        free(msg);
        return (enum rb_status)st;
    }
    struct rb_ingest_doc *d = calloc(1, sizeof *d);
    if (!d)
        return RB_ERR_NOMEM;
    int32_t fmt = get_i32(&r);
    if (fmt < 0 || fmt >= RB_INGEST_FORMAT_COUNT)
        return corrupt(d, err, "format");
    d->format = (enum rb_ingest_format)fmt;
    d->text = get_str(&r, &d->text_len);
    d->title = get_str(&r, NULL);
    d->language = get_str(&r, NULL);
    d->metadata_json = get_str(&r, NULL);
    if (r.bad || !d->text || !d->metadata_json || !rb_utf8_valid(d->text, d->text_len) ||
        strlen(d->text) != d->text_len)
        return corrupt(d, err, "text");
    d->n_pages = get_i32(&r);
    d->ocr_pages = get_i32(&r);
    if (r.bad || d->n_pages < 0 || (size_t)d->n_pages > (r.len - r.pos) / 8)
        return corrupt(d, err, "pages");
    if (d->n_pages) {
        d->page_starts = rb_malloc_array((size_t)d->n_pages, sizeof(size_t));
        if (!d->page_starts)
            return corrupt(d, err, "pages");
        for (int32_t i = 0; i < d->n_pages; i++) {
            uint64_t v = get_u64(&r);
            if (v > d->text_len || (i && v < d->page_starts[i - 1]))
                return corrupt(d, err, "page offsets");
            d->page_starts[i] = (size_t)v;
        }
    }
    uint64_t nb = get_u64(&r);
    if (r.bad || nb > (r.len - r.pos) / 37)
        return corrupt(d, err, "block count");
    d->blocks = rb_calloc_array(nb ? (size_t)nb : 1, sizeof *d->blocks);
    if (!d->blocks)
        return corrupt(d, err, "blocks");
    size_t prev_end = 0, chars = 0, pos = 0;
    for (uint64_t i = 0; i < nb; i++) {
        struct rb_ingest_block *b = &d->blocks[i];
        unsigned k = get_u8(&r);
        b->level = get_i32(&r);
        uint64_t bs = get_u64(&r), be = get_u64(&r), hr = get_u64(&r), nr = get_u64(&r);
        if (r.bad || k > RB_INGEST_BLOCK_CODE || bs > be || be > d->text_len || bs < prev_end ||
            b->level < 0 || b->level > 64 || nr > (r.len - r.pos) / 16 || hr > nr ||
            (nr > 0) != (k == RB_INGEST_BLOCK_TABLE))
            return corrupt(d, err, "block");
        b->kind = (enum rb_ingest_block_kind)k;
        b->byte_start = (size_t)bs;
        b->byte_end = (size_t)be;
        b->header_rows = (size_t)hr;
        d->n_blocks = (size_t)i + 1;
        if (nr) {
            b->rows = rb_malloc_array((size_t)nr, sizeof *b->rows);
            if (!b->rows)
                return corrupt(d, err, "rows");
            b->n_rows = (size_t)nr;
            size_t last = (size_t)bs;
            for (uint64_t j = 0; j < nr; j++) {
                uint64_t s = get_u64(&r), e = get_u64(&r);
                if (r.bad || s < last || s > e || e > be)
                    return corrupt(d, err, "row");
                b->rows[j].start = (size_t)s;
                b->rows[j].end = (size_t)e;
                last = (size_t)e;
            }
        }
        prev_end = (size_t)be;
        /* Offsets must fall on UTF-8 boundaries. */
        if ((bs < d->text_len && ((unsigned char)d->text[bs] & 0xC0) == 0x80) ||
            (be < d->text_len && ((unsigned char)d->text[be] & 0xC0) == 0x80))
            return corrupt(d, err, "block offsets split a character");
        for (size_t x = pos; x < b->byte_start; x++)
            chars += ((unsigned char)d->text[x] & 0xC0) != 0x80;
        b->char_start = chars;
        for (size_t x = b->byte_start; x < b->byte_end; x++)
            chars += ((unsigned char)d->text[x] & 0xC0) != 0x80;
        b->char_end = chars;
        pos = b->byte_end;
        b->page_start = rb_ingest_doc_page_at(d, b->byte_start);
        b->page_end = rb_ingest_doc_page_at(d, b->byte_end > b->byte_start ? b->byte_end - 1
                                                                          : b->byte_start);
    }
    uint64_t na = get_u64(&r);
    if (r.bad || na > (r.len - r.pos) / 24)
        return corrupt(d, err, "attachments");
    if (na) {
        d->attachments = rb_calloc_array((size_t)na, sizeof *d->attachments);
        if (!d->attachments)
            return corrupt(d, err, "attachments");
        for (uint64_t i = 0; i < na; i++) {
            struct rb_ingest_attachment *a = &d->attachments[i];
            d->n_attachments = (size_t)i + 1;
            a->name = get_str(&r, NULL);
            a->mime = get_str(&r, NULL);
            a->data = get_str(&r, &a->len);
            if (r.bad || !a->name || !a->mime || !a->data || strchr(a->name, '/'))
                return corrupt(d, err, "attachment");
        }
    }
    if (r.pos != r.len)
        return corrupt(d, err, "trailing bytes");
    *out = d;
    return RB_OK;
}

/* ================================================================ the child */

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void child_limits(const struct rb_ingest_limits *lim)
{
    struct rlimit rl;
#if !defined(__SANITIZE_ADDRESS__) && !defined(RB_NO_RLIMIT_AS)
#if defined(__has_feature)
#if !__has_feature(address_sanitizer)
#define RB__SET_AS 1
#endif
#else
#define RB__SET_AS 1
#endif
#endif
#ifdef RB__SET_AS
    /* ASan reserves terabytes of address space, so only plain builds get RLIMIT_AS. */
    rl.rlim_cur = rl.rlim_max = lim->max_memory_bytes;
    (void)setrlimit(RLIMIT_AS, &rl);
#endif
    rl.rlim_cur = (rlim_t)lim->cpu_seconds;
    rl.rlim_max = (rlim_t)lim->cpu_seconds + 5;
    (void)setrlimit(RLIMIT_CPU, &rl);
    rl.rlim_cur = rl.rlim_max = 0;
    (void)setrlimit(RLIMIT_FSIZE, &rl);
    (void)setrlimit(RLIMIT_CORE, &rl);
}

static void child_run(int fd, const char *path, const void *data, size_t len, const char *name,
                      const struct rb_ingest_limits *lim)
{
    child_limits(lim);
    struct rb_errmsg err = {{0}};
    struct rb_buf o;
    rb_buf_init(&o, 0);
    char *file = NULL;
    enum rb_status st = RB_OK;
    if (path) {
        st = rb_fs_read_file(path, lim->max_file_bytes, &file, &len);
        if (st == RB_ERR_TOO_LARGE)
            rb_errmsg_set(&err, st, "file exceeds %zu MiB", lim->max_file_bytes >> 20);
        else if (st != RB_OK)
            rb_errmsg_set(&err, st, "cannot read file: %s", rb_status_str(st));
        data = file;
        name = path;
    }
    struct rb_ingest_doc *doc = NULL;
    if (st == RB_OK)
        st = rb_ingest_parse_buffer(data, len, name, RB_INGEST_FORMAT_UNKNOWN, lim, &doc, &err);
    if (st == RB_OK)
        st = rb_ingest_doc_serialize(doc, &o);
    if (st != RB_OK) {
        rb_buf_reset(&o);
        if (rb_buf_append(&o, MAGIC "\0", 7) != RB_OK || put_i32(&o, (int32_t)st) != RB_OK ||
            put_cstr(&o, err.text[0] ? err.text : rb_status_str(st)) != RB_OK)
            _exit(3);
    }
    uint64_t n = o.len;
    unsigned char hdr[8];
    for (int i = 0; i < 8; i++)
        hdr[i] = (unsigned char)(n >> (8 * i));
    bool ok = write_all(fd, (const char *)hdr, 8) && write_all(fd, o.data, o.len);
    _exit(ok ? 0 : 4);
}

static enum rb_status run_sandbox(const char *path, const void *data, size_t len, const char *name,
                                  const struct rb_ingest_limits *limits,
                                  struct rb_ingest_doc **out, struct rb_errmsg *err)
{
    struct rb_ingest_limits defaults;
    *out = NULL;
    if (err)
        rb_errmsg_clear(err);
    if (!limits) {
        rb_ingest_limits_default(&defaults);
        limits = &defaults;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return err ? rb_errmsg_set(err, RB_ERR_IO, "pipe: %s", strerror(errno)) : RB_ERR_IO;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return err ? rb_errmsg_set(err, RB_ERR_CHILD, "fork: %s", strerror(errno)) : RB_ERR_CHILD;
    }
    if (pid == 0) {
        close(fds[0]);
        /* Don't let a parent's SIGPIPE/SIGTERM handlers run here. */
        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        /* Libraries (poppler, leptonica) print diagnostics of broken files on
         * stderr; keep the daemon's log clean unless debugging. */
        if (rb_log_level_get() > RB_LOG_DEBUG) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 2);
                close(devnull);
            }
        }
        child_run(fds[1], path, data, len, name, limits);
        _exit(5);
    }
    close(fds[1]);
    int64_t deadline = rb_time_mono_ns() + (int64_t)limits->timeout_ms * 1000000;
    struct rb_buf in;
    /* The result is bounded by text + attachments; allow some slack. */
    size_t max_in = limits->max_text_bytes * 2 + limits->max_file_bytes * 2 + (1u << 24);
    rb_buf_init(&in, max_in);
    enum rb_status st = RB_OK;
    bool timed_out = false, too_big = false;
    char chunk[65536];
    for (;;) {
        int64_t left_ms = (deadline - rb_time_mono_ns()) / 1000000;
        if (left_ms <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            st = RB_ERR_IO;
            break;
        }
        if (pr == 0)
            continue;
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (rb_buf_append(&in, chunk, (size_t)n) != RB_OK) {
            too_big = true;
            break;
        }
    }
    close(fds[0]);
    if (timed_out || too_big || st != RB_OK)
        kill(pid, SIGKILL);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    const char *what = name ? rb_path_basename(name) : "input";
    if (timed_out) {
        rb_buf_free(&in);
        return err ? rb_errmsg_set(err, RB_ERR_TIMEOUT, "%s: parsing took longer than %d s",
                                   what, limits->timeout_ms / 1000)
                   : RB_ERR_TIMEOUT;
    }
    if (too_big) {
        rb_buf_free(&in);
        return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s: parse result too large", what)
                   : RB_ERR_TOO_LARGE;
    }
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        rb_buf_free(&in);
        if (sig == SIGXCPU || sig == SIGKILL)
            return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE,
                                       "%s: parser exceeded its CPU limit (signal %d)", what, sig)
                       : RB_ERR_TOO_LARGE;
        return err ? rb_errmsg_set(err, RB_ERR_CHILD, "%s: parser crashed (signal %d, %s)", what,
                                   sig, strsignal(sig))
                   : RB_ERR_CHILD;
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || in.len < 8) {
        rb_buf_free(&in);
        /* Out of memory under RLIMIT_AS typically ends in abort() or exit(1) inside a library. */
        return err ? rb_errmsg_set(err, RB_ERR_CHILD,
                                   "%s: parser failed (exit status %d; memory limit %zu MiB?)",
                                   what, WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1,
                                   limits->max_memory_bytes >> 20)
                   : RB_ERR_CHILD;
    }
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)(unsigned char)in.data[i] << (8 * i);
    if (n != in.len - 8) {
        rb_buf_free(&in);
        return err ? rb_errmsg_set(err, RB_ERR_CHILD, "%s: truncated parser result", what)
                   : RB_ERR_CHILD;
    }
    st = rb_ingest_doc_deserialize(in.data + 8, in.len - 8, out, err);
    rb_buf_free(&in);
    return st;
}

enum rb_status rb_ingest_parse_file(const char *path, const struct rb_ingest_limits *limits,
                                    struct rb_ingest_doc **out, struct rb_errmsg *err)
{
    return run_sandbox(path, NULL, 0, path, limits, out, err);
}

enum rb_status rb_ingest_parse_sandboxed(const void *data, size_t len, const char *name,
                                         const struct rb_ingest_limits *limits,
                                         struct rb_ingest_doc **out, struct rb_errmsg *err)
{
    return run_sandbox(NULL, data, len, name, limits, out, err);
}
