/* Operations commands: doctor, backup, restore, model add/list, migrate.
 *
 * These are what an operator runs on the appliance (usually through
 * /usr/sbin/ragbox-admin, which picks the right user):
 *
 *   ragbox doctor [--json] [--quick]     health checks, non-zero exit on a problem
 *   ragbox backup DIR [--no-keys] [--no-models]
 *   ragbox restore DIR [--force] [--no-config]
 *   ragbox model add FILE.gguf [--role chat|embedding] [--name NAME]
 *   ragbox model list [--json] [--verify]
 *   ragbox migrate                       bring every module's schema forward
 *
 * Backups are directories: every file of the data directory (SQLite databases
 * through the online backup API, so they are consistent while the services
 * run; audit logs cut at the last complete record), the configuration file
 * as config/ragbox.conf, and MANIFEST.json with the SHA-256 and size of every
 * file (plus SHA256SUMS for `sha256sum -c`). restore verifies all of it
 * before it changes anything.
 *
 * Checks that belong to other modules (index consistency, the audit chain)
 * are run as child processes of this same binary (`ragbox index verify`,
 * `ragbox audit verify`), so doctor works with whatever modules this build has.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "ragbox/audit.h"

#if __has_include("ragbox/engine.h")
#include "ragbox/engine.h"
#define RB_OPS_HAVE_ENGINE 1
#endif
#if __has_include("ragbox/index.h")
#include "ragbox/index.h"
#define RB_OPS_HAVE_INDEX 1
#endif

#define RB_CLI_DECLARE(fn) int fn(struct rb_cli *cli, int argc, char **argv);
RB_CLI_DECLARE(rb_cmd_doctor)
RB_CLI_DECLARE(rb_cmd_backup)
RB_CLI_DECLARE(rb_cmd_restore)
RB_CLI_DECLARE(rb_cmd_model_add)
RB_CLI_DECLARE(rb_cmd_model_list)
RB_CLI_DECLARE(rb_cmd_migrate)

#define OPS_MANIFEST_MAX (64u << 20) /* MANIFEST.json / models manifest size limit */
#define OPS_BACKUP_FORMAT "ragbox-backup"
#define OPS_BACKUP_VERSION 1
#define OPS_MODELS_MANIFEST "models/manifest.json"
#define OPS_MAX_DEPTH 32 /* directory nesting followed by backup/restore */

/* ================================================================ small helpers */

static void ops_now(char buf[40])
{
    rb_time_format_utc(rb_time_now_us(), buf, 40);
}

/* A path relative to a root: no absolute paths, no "..", no empty parts.
 * Manifests are untrusted input (a backup may come from anywhere). */
static bool ops_safe_relpath(const char *p)
{
    if (!p || !*p || p[0] == '/' || strlen(p) > 4000)
        return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

/* Copies src to dst (created with `mode`, via dst.tmp + fsync + rename),
 * hashing what was copied. limit: copy at most this many bytes (UINT64_MAX =
 * whole file). */
static enum rb_status ops_copy_file(const char *src, const char *dst, unsigned mode, uint64_t limit,
                                    char hex[RB_SHA256_HEX_LEN + 1], uint64_t *out_size,
                                    struct rb_errmsg *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return rb_errmsg_set(err, RB_ERR_IO, "%s: %s", src, strerror(errno));
    char *tmp = rb_asprintf("%s.tmp.%ld", dst, (long)getpid());
    if (!tmp) {
        close(in);
        return RB_ERR_NOMEM;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (out < 0) {
        enum rb_status st = rb_errmsg_set(err, RB_ERR_IO, "%s: %s", tmp, strerror(errno));
        close(in);
        free(tmp);
        return st;
    }
    struct rb_sha256 h;
    enum rb_status st = rb_sha256_init(&h);
    if (st != RB_OK) {
        close(in);
        close(out);
        unlink(tmp);
        free(tmp);
        return rb_errmsg_set(err, st, "sha256: %s", rb_status_str(st));
    }
    static char buf[1 << 20];
    uint64_t total = 0;
    while (st == RB_OK && total < limit) {
        size_t want = sizeof buf;
        if (limit - total < want)
            want = (size_t)(limit - total);
        ssize_t n = read(in, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = rb_errmsg_set(err, RB_ERR_IO, "%s: read: %s", src, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n && st == RB_OK;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                st = rb_errmsg_set(err, RB_ERR_IO, "%s: write: %s", tmp, strerror(errno));
            else
                off += w;
        }
        if (st == RB_OK)
            st = rb_sha256_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    uint8_t digest[RB_SHA256_LEN];
    if (st == RB_OK)
        st = rb_sha256_final(&h, digest);
    else
        rb_sha256_abort(&h);
    if (st == RB_OK && fsync(out) != 0)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(out) != 0 && st == RB_OK)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    close(in);
    if (st == RB_OK && rename(tmp, dst) != 0)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: rename: %s", dst, strerror(errno));
    if (st != RB_OK)
        unlink(tmp);
    free(tmp);
    if (st == RB_OK) {
        rb_hex_encode(digest, RB_SHA256_LEN, hex);
        if (out_size)
            *out_size = total;
        st = rb_fs_sync_parent(dst);
    }
    return st;
}

/* Writes data to path atomically, giving the new file the mode and owner of
 * `like` (the file it replaces) so that e.g. /etc/ragbox/ragbox.conf stays
 * root:ragbox 0640 when root edits it. */
static enum rb_status ops_write_like(const char *path, const void *data, size_t len,
                                     const struct stat *like, struct rb_errmsg *err)
{
    char *tmp = rb_asprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp)
        return RB_ERR_NOMEM;
    mode_t mode = like ? (like->st_mode & 07777) : 0640;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        enum rb_status st = rb_errmsg_set(err, RB_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    enum rb_status st = RB_OK;
    if (like) {
        if (fchmod(fd, mode) != 0)
            st = rb_errmsg_set(err, RB_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
        if (st == RB_OK && (like->st_uid != geteuid() || like->st_gid != getegid()) &&
            fchown(fd, like->st_uid, like->st_gid) != 0)
            st = rb_errmsg_set(err, RB_ERR_DENIED, "%s: cannot keep owner %u:%u: %s", path,
                               (unsigned)like->st_uid, (unsigned)like->st_gid, strerror(errno));
    }
    const char *p = data;
    size_t left = len;
    while (st == RB_OK && left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = rb_errmsg_set(err, RB_ERR_IO, "%s: write: %s", tmp, strerror(errno));
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (st == RB_OK && fsync(fd) != 0)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == RB_OK)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (st == RB_OK && rename(tmp, path) != 0)
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: rename: %s", path, strerror(errno));
    if (st != RB_OK)
        unlink(tmp);
    free(tmp);
    if (st == RB_OK)
        st = rb_fs_sync_parent(path);
    return st;
}

/* When running as root on the packaged appliance, files we create in the data
 * directory must belong to the service user (the owner of the data dir). */
static void ops_chown_like_dir(const char *path, const char *data_dir)
{
    struct stat d;
    if (geteuid() != 0 || stat(data_dir, &d) != 0 || d.st_uid == 0)
        return;
    if (lchown(path, d.st_uid, d.st_gid) != 0)
        RB_WARN("ops", "%s: chown %u:%u: %s", path, (unsigned)d.st_uid, (unsigned)d.st_gid,
                strerror(errno));
}

/* mkdir -p, then hand every created component below data_dir to its owner. */
static enum rb_status ops_mkdirs_owned(const char *path, unsigned mode, const char *data_dir)
{
    enum rb_status st = rb_fs_mkdirs(path, mode);
    if (st == RB_OK)
        ops_chown_like_dir(path, data_dir);
    return st;
}

/* ================================================================ GGUF check */

/* What we know of a model file from its header (and, when the engine is
 * built in, its full loader). */
struct ops_gguf {
    uint32_t version;
    uint64_t n_tensors;
    uint64_t n_kv;
    char architecture[64];
    char name[128];
};

static uint32_t ops_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ops_le64(const unsigned char *p)
{
    return (uint64_t)ops_le32(p) | (uint64_t)ops_le32(p + 4) << 32;
}

/* A bounded reader over the file for the metadata walk below. */
struct ops_reader {
    int fd;
    uint64_t pos;
    uint64_t size;
    bool ok;
};

static void ops_read(struct ops_reader *r, void *out, size_t n)
{
    if (!r->ok || n > r->size || r->pos > r->size - n) {
        r->ok = false;
        memset(out, 0, n);
        return;
    }
    if (pread(r->fd, out, n, (off_t)r->pos) != (ssize_t)n) {
        r->ok = false;
        memset(out, 0, n);
        return;
    }
    r->pos += n;
}

static uint64_t ops_read_u64(struct ops_reader *r)
{
    unsigned char b[8];
    ops_read(r, b, 8);
    return ops_le64(b);
}

static uint32_t ops_read_u32(struct ops_reader *r)
{
    unsigned char b[4];
    ops_read(r, b, 4);
    return ops_le32(b);
}

static void ops_skip(struct ops_reader *r, uint64_t n)
{
    if (!r->ok || n > r->size - r->pos)
        r->ok = false;
    else
        r->pos += n;
}

/* GGUF metadata value types: fixed sizes of 0..12 (8 = string, 9 = array). */
static int ops_gguf_scalar_size(uint32_t t)
{
    static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8};
    return t < RB_ARRAY_LEN(sizes) ? sizes[t] : 0;
}

/* Skips one value of type t; copies a string value into out (when given). */
static void ops_gguf_skip_value(struct ops_reader *r, uint32_t t, char *out, size_t out_size,
                                int depth)
{
    if (t == 8) {
        uint64_t n = ops_read_u64(r);
        if (out && r->ok && n < out_size) {
            ops_read(r, out, (size_t)n);
            out[r->ok ? n : 0] = '\0';
        } else {
            ops_skip(r, n);
        }
    } else if (t == 9) {
        uint32_t et = ops_read_u32(r);
        uint64_t n = ops_read_u64(r);
        int es = ops_gguf_scalar_size(et);
        if (depth > 2 || es == 0) {
            r->ok = false;
        } else if (es > 0) {
            if (n > r->size / (uint64_t)es)
                r->ok = false;
            else
                ops_skip(r, n * (uint64_t)es);
        } else {
            for (uint64_t i = 0; i < n && r->ok; i++)
                ops_gguf_skip_value(r, et, NULL, 0, depth + 1);
        }
    } else {
        int sz = ops_gguf_scalar_size(t);
        if (sz <= 0)
            r->ok = false;
        else
            ops_skip(r, (uint64_t)sz);
    }
}

/* Validates a GGUF file: magic "GGUF", version 2 or 3, every metadata entry
 * and tensor description inside the file, and every tensor's data starting
 * inside it (a truncated download is caught); then the engine's full
 * validation (tensor types and sizes) when the engine is built in. */
static enum rb_status ops_gguf_check(const char *path, struct ops_gguf *g, struct rb_errmsg *err)
{
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rb_errmsg_set(err, errno == ENOENT ? RB_ERR_NOT_FOUND : RB_ERR_IO, "%s: %s", path,
                             strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_FORMAT, "%s: not a regular file", path);
    }
    unsigned char h[24];
    ssize_t n = pread(fd, h, sizeof h, 0);
    if (n != (ssize_t)sizeof h) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_FORMAT,
                             "%s: not a GGUF model (%lld bytes, shorter than a GGUF header)", path,
                             (long long)sb.st_size);
    }
    if (memcmp(h, "GGUF", 4) != 0) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_FORMAT,
                             "%s: not a GGUF model (the file does not start with \"GGUF\")", path);
    }
    g->version = ops_le32(h + 4);
    if (g->version != 2 && g->version != 3) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s: GGUF version %u is not supported (2 and 3 are)", path,
                             g->version);
    }
    g->n_tensors = ops_le64(h + 8);
    g->n_kv = ops_le64(h + 16);
    /* Each tensor info and each key/value takes well over 8 bytes. */
    uint64_t size = (uint64_t)sb.st_size;
    if (g->n_tensors == 0 || g->n_tensors > size / 8 || g->n_kv > size / 8) {
        close(fd);
        return rb_errmsg_set(err, RB_ERR_CORRUPT,
                             "%s: GGUF header claims %llu tensors and %llu metadata entries, "
                             "impossible for a %llu-byte file (truncated or corrupt)",
                             path, (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv,
                             (unsigned long long)size);
    }
    struct ops_reader r = {fd, 24, size, true};
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < g->n_kv && r.ok; i++) {
        char key[128] = "";
        uint64_t klen = ops_read_u64(&r);
        if (klen < sizeof key)
            ops_read(&r, key, (size_t)klen);
        else
            ops_skip(&r, klen);
        uint32_t t = ops_read_u32(&r);
        if (strcmp(key, "general.architecture") == 0 && t == 8)
            ops_gguf_skip_value(&r, t, g->architecture, sizeof g->architecture, 0);
        else if (strcmp(key, "general.name") == 0 && t == 8)
            ops_gguf_skip_value(&r, t, g->name, sizeof g->name, 0);
        else if (strcmp(key, "general.alignment") == 0 && t == 4)
            alignment = ops_read_u32(&r);
        else
            ops_gguf_skip_value(&r, t, NULL, 0, 0);
    }
    uint64_t max_offset = 0;
    for (uint64_t i = 0; i < g->n_tensors && r.ok; i++) {
        ops_skip(&r, ops_read_u64(&r)); /* name */
        uint32_t n_dims = ops_read_u32(&r);
        if (n_dims == 0 || n_dims > 8) {
            r.ok = false;
            break;
        }
        ops_skip(&r, 8ull * n_dims);
        ops_read_u32(&r); /* type */
        uint64_t off = ops_read_u64(&r);
        if (off > max_offset)
            max_offset = off;
    }
    close(fd);
    if (!r.ok)
        return rb_errmsg_set(err, RB_ERR_CORRUPT,
                             "%s: GGUF metadata or tensor table runs past the end of the file "
                             "or is malformed (truncated or corrupt)",
                             path);
    if (alignment == 0 || alignment > 65536 || (alignment & (alignment - 1)))
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: invalid general.alignment %llu", path,
                             (unsigned long long)alignment);
    uint64_t data_start = (r.pos + alignment - 1) / alignment * alignment;
    if (data_start > size || max_offset >= size - data_start)
        return rb_errmsg_set(err, RB_ERR_CORRUPT,
                             "%s: tensor data lies beyond the end of the %llu-byte file "
                             "(truncated copy?)",
                             path, (unsigned long long)size);
#ifdef RB_OPS_HAVE_ENGINE
    struct rb_engine_model_info *info = NULL;
    enum rb_status st = rb_engine_model_info_read(path, &info, err);
    if (st != RB_OK)
        return st;
    if (info->architecture)
        rb_strlcpy(g->architecture, info->architecture, sizeof g->architecture);
    if (info->name)
        rb_strlcpy(g->name, info->name, sizeof g->name);
    rb_engine_model_info_free(info);
#endif
    return RB_OK;
}

/* ====================================================== configuration editing */

/* Sets `key = value` in [section] of an INI text, keeping every other line
 * (comments included) as it is: replaces the last active `key =` line of the
 * section, else uncomments a `# key =` line there, else adds the line after
 * the section's last key (or a new section at the end). Caller frees. */
static char *ops_ini_set(const char *text, const char *section, const char *key, const char *value)
{
    struct rb_buf out;
    rb_buf_init(&out, 0);
    size_t len = strlen(text);
    /* Pass 1: find the section's line range and candidate lines. */
    long sec_start = -1, sec_end = -1, active = -1, commented = -1, last_kv = -1;
    long line = 0;
    bool in = false;
    for (size_t i = 0; i <= len;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        const char *s = text + i;
        size_t n = e - i;
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n && *s == '[') {
            const char *close = memchr(s, ']', n);
            if (in && sec_end < 0)
                sec_end = line;
            in = close && (size_t)(close - s - 1) == strlen(section) &&
                 strncasecmp(s + 1, section, strlen(section)) == 0;
            if (in) {
                sec_start = line;
                sec_end = -1;
                active = commented = last_kv = -1;
            }
        } else if (in && n) {
            const char *k = s;
            size_t kn = n;
            bool is_comment = false;
            if (*k == '#' || *k == ';') {
                is_comment = true;
                k++;
                kn--;
                while (kn && (*k == ' ' || *k == '\t')) {
                    k++;
                    kn--;
                }
            }
            size_t klen = strlen(key);
            if (kn >= klen && strncasecmp(k, key, klen) == 0) {
                const char *r = k + klen;
                size_t rn = kn - klen;
                while (rn && (*r == ' ' || *r == '\t')) {
                    r++;
                    rn--;
                }
                if (rn && (*r == '=' || *r == ':')) {
                    if (is_comment)
                        commented = line;
                    else
                        active = line;
                }
            }
            if (!is_comment && memchr(s, '=', n))
                last_kv = line;
        }
        line++;
        if (e >= len)
            break;
        i = e + 1;
    }
    if (in && sec_end < 0)
        sec_end = line;
    long target = active >= 0 ? active : commented;
    long insert_after = target < 0 && sec_start >= 0 ? (last_kv >= 0 ? last_kv : sec_start) : -1;
    /* Pass 2: copy, replacing or inserting. */
    enum rb_status st = RB_OK;
    line = 0;
    for (size_t i = 0; i <= len && st == RB_OK;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        if (line == target)
            st = rb_buf_printf(&out, "%s = %s", key, value);
        else
            st = rb_buf_append(&out, text + i, e - i);
        if (st == RB_OK && e < len)
            st = rb_buf_append(&out, "\n", 1);
        if (st == RB_OK && line == insert_after)
            st = rb_buf_printf(&out, "%s = %s\n", key, value);
        line++;
        if (e >= len)
            break;
        i = e + 1;
    }
    if (st == RB_OK && out.len && out.data[out.len - 1] != '\n')
        st = rb_buf_append(&out, "\n", 1);
    if (st == RB_OK && sec_start < 0) {
        if (out.len && out.data[out.len - 1] != '\n')
            st = rb_buf_append(&out, "\n", 1);
        if (st == RB_OK)
            st = rb_buf_printf(&out, "%s[%s]\n%s = %s\n", out.len ? "\n" : "", section, key, value);
    }
    if (st != RB_OK) {
        rb_buf_free(&out);
        return NULL;
    }
    if (!out.data)
        return rb_strdup("");
    return rb_buf_steal(&out);
}

/* Sets [section] key = value in the configuration file at path (created if
 * absent), atomically, keeping its comments, its other keys, mode and owner.
 * The result is parsed before it replaces the file. */
static enum rb_status ops_config_set(const char *path, const char *section, const char *key,
                                     const char *value, struct rb_errmsg *err)
{
    char *text = NULL;
    size_t len = 0;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    enum rb_status st = rb_fs_read_file(path, 1u << 20, &text, &len);
    if (st == RB_ERR_NOT_FOUND) {
        text = rb_strdup("");
        st = text ? RB_OK : RB_ERR_NOMEM;
    }
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "%s: cannot read: %s", path, rb_status_str(st));
    if (strlen(text) != len) {
        free(text);
        return rb_errmsg_set(err, RB_ERR_CONFIG, "%s: contains a NUL byte", path);
    }
    if (strchr(value, '\n') || strchr(value, '\r')) {
        free(text);
        return rb_errmsg_set(err, RB_ERR_INVALID, "configuration values cannot contain newlines");
    }
    char *updated = ops_ini_set(text, section, key, value);
    free(text);
    if (!updated)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    struct rb_config *check = NULL;
    st = rb_config_parse(path, updated, &check, err);
    if (st == RB_OK) {
        const char *got = rb_config_str(check, section, key, NULL);
        if (!got || strcmp(got, value) != 0)
            st = rb_errmsg_set(err, RB_ERR_INTERNAL, "%s: setting %s.%s did not take", path,
                               section, key);
    }
    rb_config_free(check);
    if (st == RB_OK)
        st = ops_write_like(path, updated, strlen(updated), exists ? &sb : NULL, err);
    free(updated);
    return st;
}

/* ================================================================ models */

/* Loads DATA/models/manifest.json, or an empty manifest when absent. */
static enum rb_status ops_models_load(const char *data_dir, cJSON **out, struct rb_errmsg *err)
{
    *out = NULL;
    char *path = rb_path_join(data_dir, OPS_MODELS_MANIFEST);
    if (!path)
        return RB_ERR_NOMEM;
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(path, OPS_MANIFEST_MAX, &text, &len);
    if (st == RB_ERR_NOT_FOUND) {
        free(path);
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddNumberToObject(m, "version", 1) ||
            !cJSON_AddArrayToObject(m, "models")) {
            cJSON_Delete(m);
            return RB_ERR_NOMEM;
        }
        *out = m;
        return RB_OK;
    }
    if (st != RB_OK) {
        st = rb_errmsg_set(err, st, "%s: %s", path, rb_status_str(st));
        free(path);
        return st;
    }
    cJSON *m = NULL;
    st = rb_json_parse(text, len, 16, &m, err);
    free(text);
    if (st == RB_OK && (!cJSON_IsObject(m) || !cJSON_IsArray(cJSON_GetObjectItem(m, "models")))) {
        cJSON_Delete(m);
        m = NULL;
        st = rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: not a models manifest (no \"models\" list)",
                           path);
    } else if (st != RB_OK) {
        char why[RB_ERRMSG_MAX];
        rb_strlcpy(why, err->text, sizeof why);
        rb_errmsg_set(err, st, "%s: %s", path, why);
    }
    free(path);
    *out = m;
    return st;
}

static enum rb_status ops_models_save(const char *data_dir, const cJSON *m, struct rb_errmsg *err)
{
    char *path = rb_path_join(data_dir, OPS_MODELS_MANIFEST);
    char *text = cJSON_Print(m);
    enum rb_status st = RB_ERR_NOMEM;
    if (path && text) {
        struct stat sb;
        bool exists = stat(path, &sb) == 0;
        st = ops_write_like(path, text, strlen(text), exists ? &sb : NULL, err);
        if (st == RB_OK && !exists)
            ops_chown_like_dir(path, data_dir);
    }
    free(path);
    free(text);
    return st;
}

static int model_add_usage(FILE *out)
{
    fprintf(out,
            "Usage: ragbox model add FILE.gguf [--role chat|embedding] [--name NAME]\n"
            "\n"
            "Installs an operator-supplied GGUF model into DATA/models: checks that it is a\n"
            "GGUF file (version 2 or 3; the engine's full validation when built in), copies\n"
            "it (atomically), records its SHA-256, size and role in DATA/models/manifest.json\n"
            "and sets [models] chat = ... or embedding = ... in the configuration file,\n"
            "keeping its comments and other keys. Until a chat model is installed ragbox\n"
            "answers in extractive mode (cited passages, no generated text).\n"
            "\n"
            "Options:\n"
            "  --role ROLE   chat (default) or embedding\n"
            "  --name NAME   file name under DATA/models (default: the file's own name)\n"
            "\n"
            "On the packaged appliance run it as root: sudo ragbox-admin model add FILE.gguf\n"
            "(the configuration /etc/ragbox/ragbox.conf is root's; the copy is given to the\n"
            "ragbox user). Restart the services afterwards: systemctl restart ragbox.target\n");
    return RB_EXIT_OK;
}

int rb_cmd_model_add(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv))
        return model_add_usage(stdout);
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         {"name", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    const char *role = "chat", *name = NULL;
    int c;
    optind = 0; /* full re-initialisation of GNU getopt (main used it); options may follow FILE */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r')
            role = optarg;
        else if (c == 'n')
            name = optarg;
        else
            return rb_cli_usage("model add", "unknown option or missing value: '%s'",
                                argv[optind - 1]);
    }
    if (optind != argc - 1)
        return rb_cli_usage("model add", "expected one FILE.gguf");
    if (strcmp(role, "chat") != 0 && strcmp(role, "embedding") != 0)
        return rb_cli_usage("model add", "--role must be chat or embedding, not '%s'", role);
    const char *src = argv[optind];
    if (!name)
        name = rb_path_basename(src);
    if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) > 200)
        return rb_cli_usage("model add", "'%s' is not a usable file name", name);
    size_t nlen = strlen(name);
    if (nlen < 5 || strcasecmp(name + nlen - 5, ".gguf") != 0)
        return rb_cli_usage("model add", "the model's file name must end in .gguf");

    struct rb_errmsg err = {{0}};
    struct ops_gguf g;
    enum rb_status st = ops_gguf_check(src, &g, &err);
    if (st != RB_OK)
        return rb_cli_fail("%s", err.text);

    if (!rb_fs_is_dir(cli->data_dir) && rb_fs_mkdirs(cli->data_dir, 0750) != RB_OK)
        return rb_cli_fail("cannot create the data directory %s", cli->data_dir);
    char *models_dir = rb_path_join(cli->data_dir, "models");
    char *dst = models_dir ? rb_path_join(models_dir, name) : NULL;
    if (!dst) {
        free(models_dir);
        return rb_cli_fail("out of memory");
    }
    int rc = RB_EXIT_FAIL;
    cJSON *manifest = NULL;
    char hex[RB_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    if (ops_mkdirs_owned(models_dir, 0750, cli->data_dir) != RB_OK) {
        rb_cli_fail("cannot create %s", models_dir);
        goto done;
    }
    st = ops_models_load(cli->data_dir, &manifest, &err);
    if (st != RB_OK) {
        rb_cli_fail("%s", err.text);
        goto done;
    }
    fprintf(stderr, "copying %s to %s ...\n", src, dst);
    st = ops_copy_file(src, dst, 0640, UINT64_MAX, hex, &size, &err);
    if (st != RB_OK) {
        rb_cli_fail("%s", err.text);
        goto done;
    }
    ops_chown_like_dir(dst, cli->data_dir);
    /* The copy is what we installed: its hash is the one we record (the
     * source could change while we read it; we hashed exactly the bytes written). */
    struct ops_gguf g2;
    if (ops_gguf_check(dst, &g2, &err) != RB_OK) {
        unlink(dst);
        rb_cli_fail("the copy failed validation: %s", err.text);
        goto done;
    }

    /* Replace any earlier entry for the same file name. */
    cJSON *list = cJSON_GetObjectItem(manifest, "models");
    for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
        const char *f = rb_json_str(cJSON_GetArrayItem(list, i), "file");
        if (f && strcmp(f, name) == 0)
            cJSON_DeleteItemFromArray(list, i);
    }
    cJSON *e = cJSON_CreateObject();
    char when[40];
    ops_now(when);
    char *rel = rb_asprintf("models/%s", name);
    if (!e || !rel || !cJSON_AddStringToObject(e, "file", name) ||
        !cJSON_AddStringToObject(e, "path", rel) || !cJSON_AddStringToObject(e, "role", role) ||
        !cJSON_AddStringToObject(e, "sha256", hex) ||
        !cJSON_AddNumberToObject(e, "size", (double)size) ||
        !cJSON_AddNumberToObject(e, "gguf_version", g.version) ||
        !cJSON_AddNumberToObject(e, "tensors", (double)g.n_tensors) ||
        (g.architecture[0] && !cJSON_AddStringToObject(e, "architecture", g.architecture)) ||
        (g.name[0] && !cJSON_AddStringToObject(e, "name", g.name)) ||
        !cJSON_AddStringToObject(e, "source", src) || !cJSON_AddStringToObject(e, "added", when)) {
        cJSON_Delete(e);
        free(rel);
        rb_cli_fail("out of memory");
        goto done;
    }
    cJSON_AddItemToArray(list, e);
    st = ops_models_save(cli->data_dir, manifest, &err);
    if (st != RB_OK) {
        free(rel);
        rb_cli_fail("%s", err.text);
        goto done;
    }
    st = ops_config_set(cli->config_path, "models", role, rel, &err);
    if (st != RB_OK) {
        free(rel);
        rb_cli_fail("model copied and recorded, but the configuration was not updated: %s\n"
                    "Set it by hand: [models] %s = models/%s",
                    err.text, role, name);
        goto done;
    }
    printf("installed %s model %s\n  file    %s\n  sha256  %s\n  size    %llu bytes\n"
           "  config  %s: [models] %s = %s\n",
           role, name, dst, hex, (unsigned long long)size, cli->config_path, role, rel);
    if (g.architecture[0])
        printf("  arch    %s%s%s\n", g.architecture, g.name[0] ? " / " : "", g.name);
    printf("Restart the services to load it: systemctl restart ragbox.target\n");
    free(rel);
    rc = RB_EXIT_OK;
done:
    cJSON_Delete(manifest);
    free(dst);
    free(models_dir);
    return rc;
}

/* One model of the manifest checked against the disk: NULL when fine, else a
 * message (caller frees). verify_hash re-hashes the file. */
static char *ops_model_problem(const char *data_dir, const cJSON *m, bool verify_hash)
{
    const char *path = rb_json_str(m, "path");
    const char *want = rb_json_str(m, "sha256");
    double size = rb_json_num(m, "size", -1);
    if (!path || !want || !ops_safe_relpath(path))
        return rb_strdup("manifest entry without a valid path and sha256");
    char *full = rb_path_join(data_dir, path);
    if (!full)
        return rb_strdup("out of memory");
    struct stat sb;
    char *problem = NULL;
    if (stat(full, &sb) != 0)
        problem = rb_asprintf("%s is missing", full);
    else if (size >= 0 && (double)sb.st_size != size)
        problem = rb_asprintf("%s is %lld bytes, the manifest says %.0f", full,
                              (long long)sb.st_size, size);
    else if (verify_hash) {
        char hex[RB_SHA256_HEX_LEN + 1];
        enum rb_status st = rb_sha256_file(full, hex);
        if (st != RB_OK)
            problem = rb_asprintf("%s: cannot read: %s", full, rb_status_str(st));
        else if (strcmp(hex, want) != 0)
            problem =
                rb_asprintf("%s: SHA-256 %s does not match the manifest's %s", full, hex, want);
    }
    free(full);
    return problem;
}

int rb_cmd_model_list(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf(
            "Usage: ragbox model list [--json] [--verify]\n"
            "\n"
            "Lists the models in DATA/models/manifest.json with their role, size and\n"
            "SHA-256, and which ones the configuration uses ([models] chat, embedding).\n"
            "  --verify   re-hash every file and compare with the manifest (exit 1 on a mismatch)\n"
            "  --json     one JSON object {models: [...], chat, embedding}\n");
        return RB_EXIT_OK;
    }
    bool json = false, verify = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--verify") == 0)
            verify = true;
        else
            return rb_cli_usage("model list", "unknown argument '%s'", argv[i]);
    }
    struct rb_errmsg err = {{0}};
    cJSON *m = NULL;
    if (ops_models_load(cli->data_dir, &m, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    const char *chat = rb_config_str(cli->config, "models", "chat", "");
    const char *emb = rb_config_str(cli->config, "models", "embedding", "");
    int bad = 0;
    cJSON *list = cJSON_GetObjectItem(m, "models");
    cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        char *p = ops_model_problem(cli->data_dir, it, verify);
        if (p) {
            bad++;
            cJSON_AddStringToObject(it, "problem", p);
        }
        free(p);
    }
    if (json) {
        cJSON_AddStringToObject(m, "chat", chat);
        cJSON_AddStringToObject(m, "embedding", emb);
        char *s = cJSON_Print(m);
        if (s)
            puts(s);
        free(s);
    } else {
        if (cJSON_GetArraySize(list) == 0)
            printf("no models installed (extractive mode); add one with 'ragbox model add'\n");
        cJSON_ArrayForEach(it, list)
        {
            const char *path = rb_json_str(it, "path");
            bool used = path && (strcmp(path, chat) == 0 || strcmp(path, emb) == 0);
            printf("%-10s %-40s %12.0f  %s%s\n", rb_json_str(it, "role"), rb_json_str(it, "file"),
                   rb_json_num(it, "size", 0), rb_json_str(it, "sha256"), used ? "  (in use)" : "");
            if (rb_json_str(it, "problem"))
                printf("  PROBLEM: %s\n", rb_json_str(it, "problem"));
        }
        printf("chat model: %s\nembedding model: %s\n", *chat ? chat : "(none: extractive mode)",
               *emb ? emb : "(none)");
    }
    cJSON_Delete(m);
    return bad ? RB_EXIT_FAIL : RB_EXIT_OK;
}

/* ================================================================ child runs */

/* Runs this binary with args (NULL-terminated, after the global options) and
 * captures stdout+stderr (up to 64 KiB). Returns the exit status, or -1 when
 * it could not run. */
static int ops_run_self(const struct rb_cli *cli, const char *const *args, struct rb_buf *output)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    const char *argvv[16];
    size_t n = 0;
    argvv[n++] = "ragbox";
    argvv[n++] = "--data";
    argvv[n++] = cli->data_dir;
    if (rb_fs_exists(cli->config_path)) { /* absent: the child uses the defaults too */
        argvv[n++] = "--config";
        argvv[n++] = cli->config_path;
    }
    for (size_t i = 0; args[i] && n < RB_ARRAY_LEN(argvv) - 1; i++)
        argvv[n++] = args[i];
    argvv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        execv("/proc/self/exe", (char *const *)argvv);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[4096];
    for (;;) {
        ssize_t r = read(pipefd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (output->len < 65536 && rb_buf_append(output, buf, (size_t)r) != RB_OK)
            break;
    }
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Whether a child's output says the command does not exist in this build. */
static bool ops_unknown_command(int rc, const struct rb_buf *out)
{
    return rc == RB_EXIT_USAGE && out->data && strstr(out->data, "unknown command");
}

/* ================================================================ migrate */

int rb_cmd_migrate(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox migrate\n"
               "\n"
               "Brings the schema of every module in DATA/ragbox.db forward to this version\n"
               "(each step in its own transaction: a failure leaves the previous schema) and\n"
               "prints the schema version of each module. Nothing happens when the database\n"
               "does not exist yet. The package's post-install script runs it on upgrade.\n");
        return RB_EXIT_OK;
    }
    if (argc > 1)
        return rb_cli_usage("migrate", "unexpected argument '%s'", argv[1]);
    char *db = rb_path_join(cli->data_dir, "ragbox.db");
    if (!db)
        return rb_cli_fail("out of memory");
    if (!rb_fs_exists(db)) {
        printf("migrate: no database at %s yet; nothing to migrate\n", db);
        free(db);
        return RB_EXIT_OK;
    }
#ifdef RB_OPS_HAVE_INDEX
    {
        /* Opening the index writable migrates its tables. */
        struct rb_index_options o = {.data_dir = cli->data_dir, .config = cli->config};
        struct rb_index *idx = NULL;
        struct rb_errmsg err = {{0}};
        if (rb_index_open(&o, &idx, &err) != RB_OK) {
            free(db);
            return rb_cli_fail("index: %s", err.text);
        }
        rb_index_close(idx);
    }
#else
    printf("migrate: this build has no index module; its tables are left as they are\n");
#endif
    sqlite3 *h = NULL;
    int rc = RB_EXIT_OK;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = rb_cli_fail("%s: %s", db, h ? sqlite3_errmsg(h) : "cannot open");
    } else {
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(h, "SELECT module, version FROM schema_versions ORDER BY module", -1,
                               &s, NULL) == SQLITE_OK) {
            while (sqlite3_step(s) == SQLITE_ROW)
                printf("schema %-12s version %lld\n", (const char *)sqlite3_column_text(s, 0),
                       (long long)sqlite3_column_int64(s, 1));
        } else {
            printf("migrate: %s has no schema_versions table\n", db);
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(h);
    free(db);
    return rc;
}

/* ================================================================ backup */

struct ops_backup {
    const char *data_dir;
    const char *out_dir;
    bool keys;
    bool models;
    cJSON *files;       /* manifest "files" array (borrowed from the manifest) */
    struct rb_buf sums; /* SHA256SUMS text */
    uint64_t bytes;
    int n_files;
    bool saw_keys;
    struct rb_errmsg err;
};

static enum rb_status backup_record(struct ops_backup *b, const char *rel, const char *hex,
                                    uint64_t size, unsigned mode, const char *kind)
{
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddStringToObject(f, "path", rel) ||
        !cJSON_AddStringToObject(f, "sha256", hex) ||
        !cJSON_AddNumberToObject(f, "size", (double)size) ||
        !cJSON_AddNumberToObject(f, "mode", mode & 0777) ||
        !cJSON_AddStringToObject(f, "kind", kind)) {
        cJSON_Delete(f);
        return RB_ERR_NOMEM;
    }
    cJSON_AddItemToArray(b->files, f);
    b->bytes += size;
    b->n_files++;
    return rb_buf_printf(&b->sums, "%s  %s\n", hex, rel);
}

/* SQLite online backup of src into dst, then a quick_check of the copy. */
static enum rb_status backup_sqlite(const char *src, const char *dst, struct rb_errmsg *err)
{
    sqlite3 *from = NULL, *to = NULL;
    enum rb_status st = RB_OK;
    unlink(dst);
    if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        st = rb_errmsg_set(err, RB_ERR_DB, "%s: %s", src, from ? sqlite3_errmsg(from) : "open");
        goto out;
    }
    sqlite3_busy_timeout(from, 10000);
    if (sqlite3_open_v2(dst, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        st = rb_errmsg_set(err, RB_ERR_DB, "%s: %s", dst, to ? sqlite3_errmsg(to) : "open");
        goto out;
    }
    sqlite3_backup *bk = sqlite3_backup_init(to, "main", from, "main");
    if (!bk) {
        st = rb_errmsg_set(err, RB_ERR_DB, "%s: backup: %s", src, sqlite3_errmsg(to));
        goto out;
    }
    /* All pages in one step: one read transaction, so the copy is a single
     * consistent snapshot even while the services write. Retry while busy. */
    int rc;
    int tries = 0;
    while ((rc = sqlite3_backup_step(bk, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        if (++tries > 600)
            break;
        sqlite3_sleep(50);
    }
    int fin = sqlite3_backup_finish(bk);
    if (rc != SQLITE_DONE || fin != SQLITE_OK) {
        st =
            rb_errmsg_set(err, RB_ERR_DB, "%s: backup failed: %s", src,
                          rc == SQLITE_BUSY ? "database stayed busy for 30 s" : sqlite3_errmsg(to));
        goto out;
    }
    /* A self-contained file: no -wal beside it in the backup. */
    sqlite3_exec(to, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(to, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
        st = rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: the backup copy fails quick_check: %s", src,
                           s && sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
                                                          : sqlite3_errmsg(to));
    }
    sqlite3_finalize(s);
out:
    sqlite3_close(from);
    if (sqlite3_close(to) != SQLITE_OK && st == RB_OK)
        st = rb_errmsg_set(err, RB_ERR_DB, "%s: close failed", dst);
    return st;
}

/* Length of the prefix of path up to and including its last '\n': an audit
 * log being appended to is copied up to its last complete record. */
static uint64_t complete_lines_len(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return UINT64_MAX;
    struct stat sb;
    uint64_t keep = UINT64_MAX;
    if (fstat(fd, &sb) == 0) {
        off_t end = sb.st_size;
        char buf[4096];
        keep = 0;
        while (end > 0) {
            off_t start = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
            ssize_t n = pread(fd, buf, (size_t)(end - start), start);
            if (n <= 0)
                break;
            for (ssize_t i = n - 1; i >= 0; i--) {
                if (buf[i] == '\n') {
                    keep = (uint64_t)start + (uint64_t)i + 1;
                    goto found;
                }
            }
            end = start;
        }
    }
found:
    close(fd);
    return keep;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Files never backed up: SQLite side files (the backup API copies the
 * database contents), our own temporary files, editor leftovers. */
static bool backup_skip(const char *name)
{
    return has_suffix(name, "-wal") || has_suffix(name, "-shm") || has_suffix(name, "-journal") ||
           strstr(name, ".tmp.") != NULL || strcmp(name, "lost+found") == 0;
}

static enum rb_status backup_dir(struct ops_backup *b, const char *rel, int depth)
{
    if (depth > OPS_MAX_DEPTH)
        return rb_errmsg_set(&b->err, RB_ERR_TOO_LARGE, "%s: nested too deep", rel);
    char *src_dir = *rel ? rb_path_join(b->data_dir, rel) : rb_strdup(b->data_dir);
    if (!src_dir)
        return RB_ERR_NOMEM;
    DIR *d = opendir(src_dir);
    if (!d) {
        enum rb_status st = rb_errmsg_set(&b->err, RB_ERR_IO, "%s: %s", src_dir, strerror(errno));
        free(src_dir);
        return st;
    }
    /* Sorted, so manifests of equal data compare equal. */
    struct dirent **names = NULL;
    int n = scandir(src_dir, &names, NULL, alphasort);
    closedir(d);
    enum rb_status st = RB_OK;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (st != RB_OK || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || backup_skip(name))
            continue;
        char *r = *rel ? rb_asprintf("%s/%s", rel, name) : rb_strdup(name);
        char *src = r ? rb_path_join(b->data_dir, r) : NULL;
        char *dst = r ? rb_path_join(b->out_dir, r) : NULL;
        struct stat sb;
        if (!r || !src || !dst) {
            st = RB_ERR_NOMEM;
        } else if (stat(src, &sb) != 0) {
            /* Vanished while we looked (a temporary file): not part of the snapshot. */
        } else if (S_ISDIR(sb.st_mode)) {
            /* A symlinked directory (audit -> /var/log/ragbox/audit) is followed:
             * the backup holds the data, restore puts it where the link points. */
            bool skip = (!b->keys && strcmp(r, "keys") == 0) || (strcmp(r, "backups") == 0);
            if (strcmp(r, "keys") == 0 && b->keys)
                b->saw_keys = true;
            if (!skip) {
                if (rb_fs_mkdirs(dst, 0700) != RB_OK)
                    st = rb_errmsg_set(&b->err, RB_ERR_IO, "%s: cannot create", dst);
                else
                    st = backup_dir(b, r, depth + 1);
            }
        } else if (S_ISREG(sb.st_mode)) {
            char hex[RB_SHA256_HEX_LEN + 1];
            uint64_t size = 0;
            bool is_model = strncmp(r, "models/", 7) == 0 && has_suffix(name, ".gguf");
            if (is_model && !b->models) {
                /* skipped on request; the models manifest still lists it */
            } else if (depth == 0 && has_suffix(name, ".db")) {
                st = backup_sqlite(src, dst, &b->err);
                if (st == RB_OK)
                    st = rb_sha256_file(dst, hex);
                struct stat db;
                if (st == RB_OK && stat(dst, &db) == 0)
                    st = backup_record(b, r, hex, (uint64_t)db.st_size, 0600, "sqlite");
            } else {
                bool log = strncmp(r, "audit/", 6) == 0 &&
                           (has_suffix(name, ".jsonl") || has_suffix(name, ".log"));
                uint64_t limit = log ? complete_lines_len(src) : UINT64_MAX;
                st = ops_copy_file(src, dst, 0600, limit, hex, &size, &b->err);
                if (st == RB_OK)
                    st = backup_record(b, r, hex, size, sb.st_mode, log ? "log" : "file");
            }
        }
        free(r);
        free(src);
        free(dst);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(src_dir);
    if (n < 0 && st == RB_OK)
        st = rb_errmsg_set(&b->err, RB_ERR_IO, "%s: cannot list", rel);
    return st;
}

/* True when dir does not exist or holds nothing. */
static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

int rb_cmd_backup(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf(
            "Usage: ragbox backup DIR [--no-keys] [--no-models]\n"
            "\n"
            "Writes a consistent backup of the data directory into DIR (created; must be\n"
            "empty), online, while the services run:\n"
            "  *.db            SQLite databases through SQLite's online backup API (one\n"
            "                  consistent snapshot each, checked with quick_check)\n"
            "  faiss/          vector index files (rebuilt from SQLite if they lag it)\n"
            "  audit/          the audit log, cut at its last complete record, and checkpoints\n"
            "  keys/           the audit signing key (see --no-keys)\n"
            "  models/         installed GGUF models and their manifest (see --no-models)\n"
            "  uploads/        documents waiting for ingest\n"
            "  config/ragbox.conf   the configuration file in use\n"
            "  MANIFEST.json   every file's SHA-256, size and mode; SHA256SUMS for sha256sum -c\n"
            "\n"
            "Options:\n"
            "  --no-keys     leave out keys/ (the audit signing key). A backup WITH keys must\n"
            "                be kept with the same custody as the key: whoever holds it can\n"
            "                sign audit checkpoints.\n"
            "  --no-models   leave out the GGUF files (large; re-add them with 'model add')\n"
            "\n"
            "Restore with 'ragbox restore DIR'.\n");
        return RB_EXIT_OK;
    }
    struct ops_backup b = {0};
    b.keys = true;
    b.models = true;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-keys") == 0)
            b.keys = false;
        else if (strcmp(argv[i], "--no-models") == 0)
            b.models = false;
        else if (argv[i][0] == '-')
            return rb_cli_usage("backup", "unknown option '%s'", argv[i]);
        else if (!out)
            out = argv[i];
        else
            return rb_cli_usage("backup", "expected one DIR");
    }
    if (!out)
        return rb_cli_usage("backup", "expected the backup directory DIR");
    if (!rb_fs_is_dir(cli->data_dir))
        return rb_cli_fail("no data directory at %s", cli->data_dir);
    if (!dir_is_empty(out))
        return rb_cli_fail("%s is not empty; back up into a new directory", out);
    char real_data[PATH_MAX], real_out[PATH_MAX];
    if (rb_fs_mkdirs(out, 0700) != RB_OK)
        return rb_cli_fail("cannot create %s: %s", out, strerror(errno));
    if (!realpath(cli->data_dir, real_data) || !realpath(out, real_out))
        return rb_cli_fail("cannot resolve paths: %s", strerror(errno));
    size_t dl = strlen(real_data);
    if (strncmp(real_out, real_data, dl) == 0 && (real_out[dl] == '/' || real_out[dl] == 0))
        return rb_cli_fail("the backup directory cannot be inside the data directory");
    chmod(out, 0700);

    int64_t t0 = rb_time_mono_ns();
    cJSON *manifest = cJSON_CreateObject();
    char when[40];
    ops_now(when);
    rb_buf_init(&b.sums, 0);
    b.data_dir = real_data;
    b.out_dir = real_out;
    if (!manifest || !cJSON_AddStringToObject(manifest, "format", OPS_BACKUP_FORMAT) ||
        !cJSON_AddNumberToObject(manifest, "version", OPS_BACKUP_VERSION) ||
        !cJSON_AddStringToObject(manifest, "ragbox_version", RAGBOX_VERSION) ||
        !cJSON_AddStringToObject(manifest, "created", when) ||
        !cJSON_AddStringToObject(manifest, "data_dir", real_data) ||
        !cJSON_AddStringToObject(manifest, "config_path", cli->config_path) ||
        !cJSON_AddBoolToObject(manifest, "keys", b.keys) ||
        !cJSON_AddBoolToObject(manifest, "models", b.models) ||
        !(b.files = cJSON_AddArrayToObject(manifest, "files"))) {
        cJSON_Delete(manifest);
        return rb_cli_fail("out of memory");
    }
    enum rb_status st = backup_dir(&b, "", 0);
    /* The configuration, unless it lives inside the data dir (then it is in already). */
    if (st == RB_OK && rb_fs_exists(cli->config_path)) {
        char real_cfg[PATH_MAX];
        bool inside = realpath(cli->config_path, real_cfg) &&
                      strncmp(real_cfg, real_data, dl) == 0 && real_cfg[dl] == '/';
        if (!inside) {
            char *cdir = rb_path_join(real_out, "config");
            char *cdst = cdir ? rb_path_join(cdir, "ragbox.conf") : NULL;
            char hex[RB_SHA256_HEX_LEN + 1];
            uint64_t size = 0;
            if (!cdst || rb_fs_mkdirs(cdir, 0700) != RB_OK)
                st = rb_errmsg_set(&b.err, RB_ERR_IO, "cannot create %s/config", real_out);
            if (st == RB_OK)
                st = ops_copy_file(cli->config_path, cdst, 0600, UINT64_MAX, hex, &size, &b.err);
            if (st == RB_OK)
                st = backup_record(&b, "config/ragbox.conf", hex, size, 0640, "config");
            free(cdir);
            free(cdst);
        }
    }
    if (st == RB_OK) {
        char *text = cJSON_Print(manifest);
        char *mpath = rb_path_join(real_out, "MANIFEST.json");
        char *spath = rb_path_join(real_out, "SHA256SUMS");
        st = text && mpath && spath ? RB_OK : RB_ERR_NOMEM;
        if (st == RB_OK)
            st = rb_fs_write_atomic(spath, b.sums.data ? b.sums.data : "", b.sums.len);
        /* MANIFEST.json last: its presence marks a complete backup. */
        if (st == RB_OK)
            st = rb_fs_write_atomic(mpath, text, strlen(text));
        if (st != RB_OK && !b.err.text[0])
            rb_errmsg_set(&b.err, st, "%s: cannot write the manifest", real_out);
        free(text);
        free(mpath);
        free(spath);
    }
    cJSON_Delete(manifest);
    rb_buf_free(&b.sums);
    if (st != RB_OK)
        return rb_cli_fail("backup failed (%s is incomplete: it has no MANIFEST.json): %s", out,
                           b.err.text[0] ? b.err.text : rb_status_str(st));
    double secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    printf("backup: %d files, %.1f MiB in %s (%.1f s)\n", b.n_files,
           (double)b.bytes / (1024.0 * 1024.0), out, secs);
    if (b.saw_keys)
        fprintf(stderr,
                "WARNING: this backup contains the audit signing key (keys/). Keep it encrypted\n"
                "and with the same custody as the key itself, or use --no-keys and back the key\n"
                "up separately.\n");
    return RB_EXIT_OK;
}

/* ================================================================ restore */

/* Checks every file of the manifest in the backup: safe path, size, SHA-256. */
static enum rb_status restore_verify(const char *dir, const cJSON *files, int *n_ok,
                                     struct rb_errmsg *err)
{
    *n_ok = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *rel = rb_json_str(f, "path");
        const char *want = rb_json_str(f, "sha256");
        double size = rb_json_num(f, "size", -1);
        if (!ops_safe_relpath(rel) || !want || strlen(want) != RB_SHA256_HEX_LEN || size < 0)
            return rb_errmsg_set(err, RB_ERR_CORRUPT,
                                 "MANIFEST.json: an entry has an unsafe or missing path, sha256 "
                                 "or size (%s)",
                                 rel ? rel : "no path");
        char *p = rb_path_join(dir, rel);
        if (!p)
            return RB_ERR_NOMEM;
        struct stat sb;
        char hex[RB_SHA256_HEX_LEN + 1];
        enum rb_status st = RB_OK;
        if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = rb_errmsg_set(err, RB_ERR_NOT_FOUND, "%s: missing from the backup", rel);
        else if ((double)sb.st_size != size)
            st = rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: %lld bytes, the manifest says %.0f", rel,
                               (long long)sb.st_size, size);
        else if (rb_sha256_file(p, hex) != RB_OK)
            st = rb_errmsg_set(err, RB_ERR_IO, "%s: cannot read", rel);
        else if (strcmp(hex, want) != 0)
            st = rb_errmsg_set(err, RB_ERR_VERIFY, "%s: SHA-256 %s does not match the manifest",
                               rel, hex);
        free(p);
        if (st != RB_OK)
            return st;
        (*n_ok)++;
    }
    return RB_OK;
}

/* Whether the data directory holds any file (directories and the links the
 * package creates do not count: a freshly installed appliance is "empty"). */
static bool data_has_files(const char *dir, int depth)
{
    if (depth > OPS_MAX_DEPTH)
        return true;
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = rb_path_join(dir, e->d_name);
        struct stat sb;
        if (p && stat(p, &sb) == 0)
            found = S_ISDIR(sb.st_mode) ? data_has_files(p, depth + 1) : true;
        free(p);
    }
    closedir(d);
    return found;
}

/* Removes the files (not the directories, not following links to files) of
 * dir, recursively: the restore replaces them. */
static enum rb_status remove_files(const char *dir, int depth, struct rb_errmsg *err)
{
    if (depth > OPS_MAX_DEPTH)
        return rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s: nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d)
        return RB_OK;
    struct dirent *e;
    enum rb_status st = RB_OK;
    while (st == RB_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = rb_path_join(dir, e->d_name);
        struct stat sb;
        if (!p)
            st = RB_ERR_NOMEM;
        else if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            st = remove_files(p, depth + 1, err);
        else if (unlink(p) != 0 && errno != ENOENT)
            st = rb_errmsg_set(err, RB_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
    return st;
}

static bool ops_service_active(const char *unit);

int rb_cmd_restore(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox restore DIR [--force] [--no-config]\n"
               "\n"
               "Restores a backup made by 'ragbox backup' into the data directory. First every\n"
               "file listed in DIR/MANIFEST.json is checked (size and SHA-256); nothing is\n"
               "changed unless all of them match. A data directory that already holds files is\n"
               "refused unless --force is given, in which case its files are deleted first.\n"
               "Stop the services before restoring: systemctl stop ragbox.target\n"
               "\n"
               "Options:\n"
               "  --force       replace the files of a non-empty data directory\n"
               "  --no-config   keep the current configuration file (by default the backed-up\n"
               "                one replaces it and the current one is kept as FILE.pre-restore)\n"
               "\n"
               "Run as root on the packaged appliance (sudo ragbox-admin restore DIR): restored\n"
               "files are given to the owner of the data directory.\n");
        return RB_EXIT_OK;
    }
    bool force = false, with_config = true;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (strcmp(argv[i], "--no-config") == 0)
            with_config = false;
        else if (argv[i][0] == '-')
            return rb_cli_usage("restore", "unknown option '%s'", argv[i]);
        else if (!dir)
            dir = argv[i];
        else
            return rb_cli_usage("restore", "expected one DIR");
    }
    if (!dir)
        return rb_cli_usage("restore", "expected the backup directory DIR");
    char *mpath = rb_path_join(dir, "MANIFEST.json");
    char *text = NULL;
    size_t len = 0;
    struct rb_errmsg err = {{0}};
    enum rb_status st =
        mpath ? rb_fs_read_file(mpath, OPS_MANIFEST_MAX, &text, &len) : RB_ERR_NOMEM;
    free(mpath);
    if (st == RB_ERR_NOT_FOUND)
        return rb_cli_fail("%s/MANIFEST.json is missing: not a ragbox backup, or an incomplete one",
                           dir);
    if (st != RB_OK)
        return rb_cli_fail("%s/MANIFEST.json: %s", dir, rb_status_str(st));
    cJSON *m = NULL;
    st = rb_json_parse(text, len, 16, &m, &err);
    free(text);
    if (st != RB_OK)
        return rb_cli_fail("%s/MANIFEST.json: %s", dir, err.text);
    int rc = RB_EXIT_FAIL;
    const char *fmt = rb_json_str(m, "format");
    cJSON *files = cJSON_GetObjectItem(m, "files");
    if (!fmt || strcmp(fmt, OPS_BACKUP_FORMAT) != 0 || !cJSON_IsArray(files)) {
        rb_cli_fail("%s/MANIFEST.json is not a ragbox backup manifest", dir);
        goto done;
    }
    if (rb_json_num(m, "version", 0) > OPS_BACKUP_VERSION) {
        rb_cli_fail("the backup format version %.0f is newer than this ragbox understands (%d)",
                    rb_json_num(m, "version", 0), OPS_BACKUP_VERSION);
        goto done;
    }
    int n_ok = 0;
    st = restore_verify(dir, files, &n_ok, &err);
    if (st != RB_OK) {
        rb_cli_fail("the backup in %s does not verify, nothing was changed: %s", dir, err.text);
        goto done;
    }
    printf("restore: %d files verified against MANIFEST.json (backup of %s, %s)\n", n_ok,
           rb_json_str(m, "data_dir") ? rb_json_str(m, "data_dir") : "?",
           rb_json_str(m, "created") ? rb_json_str(m, "created") : "?");

    if (ops_service_active("ragbox-web.service") || ops_service_active("ragbox-ingestd.service")) {
        rb_cli_fail(
            "the ragbox services are running; stop them first: systemctl stop ragbox.target");
        goto done;
    }
    if (rb_fs_mkdirs(cli->data_dir, 0750) != RB_OK) {
        rb_cli_fail("cannot create %s", cli->data_dir);
        goto done;
    }
    if (data_has_files(cli->data_dir, 0)) {
        if (!force) {
            rb_cli_fail("%s already holds data; use --force to replace it (its files are "
                        "deleted; back them up first)",
                        cli->data_dir);
            goto done;
        }
        if (remove_files(cli->data_dir, 0, &err) != RB_OK) {
            rb_cli_fail("%s", err.text);
            goto done;
        }
    }
    const cJSON *f;
    int n = 0;
    cJSON_ArrayForEach(f, files)
    {
        const char *rel = rb_json_str(f, "path");
        const char *kind = rb_json_str(f, "kind");
        bool is_config = kind && strcmp(kind, "config") == 0;
        if (is_config && !with_config)
            continue;
        char *src = rb_path_join(dir, rel);
        char *dst = is_config ? rb_strdup(cli->config_path) : rb_path_join(cli->data_dir, rel);
        if (!src || !dst) {
            free(src);
            free(dst);
            rb_cli_fail("out of memory");
            goto done;
        }
        /* Parent directories (through the audit link when it exists). */
        char *slash = strrchr(dst, '/');
        if (slash && slash != dst && !is_config) {
            *slash = '\0';
            bool keys = strstr(rel, "keys/") == rel;
            if (!rb_fs_is_dir(dst) &&
                ops_mkdirs_owned(dst, keys ? 0700 : 0750, cli->data_dir) != RB_OK) {
                rb_cli_fail("cannot create %s", dst);
                free(src);
                free(dst);
                goto done;
            }
            *slash = '/';
        }
        if (is_config && rb_fs_exists(dst)) {
            char *keep = rb_asprintf("%s.pre-restore", dst);
            char hex0[RB_SHA256_HEX_LEN + 1];
            if (!keep || ops_copy_file(dst, keep, 0640, UINT64_MAX, hex0, NULL, &err) != RB_OK) {
                rb_cli_fail("cannot keep the current configuration: %s", err.text);
                free(keep);
                free(src);
                free(dst);
                goto done;
            }
            printf("restore: the current configuration is kept as %s\n", keep);
            free(keep);
        }
        char hex[RB_SHA256_HEX_LEN + 1];
        unsigned mode = (unsigned)rb_json_num(f, "mode", 0640) & 0770;
        struct stat like;
        bool had = is_config && stat(dst, &like) == 0;
        st = ops_copy_file(src, dst, mode ? mode : 0640, UINT64_MAX, hex, NULL, &err);
        if (st == RB_OK && strcmp(hex, rb_json_str(f, "sha256")) != 0)
            st = rb_errmsg_set(&err, RB_ERR_VERIFY, "%s changed while being restored", rel);
        if (st == RB_OK) {
            if (had) {
                if (chmod(dst, like.st_mode & 07777) != 0 ||
                    (geteuid() == 0 && chown(dst, like.st_uid, like.st_gid) != 0))
                    RB_WARN("ops", "%s: cannot keep mode/owner", dst);
            } else if (!is_config) {
                ops_chown_like_dir(dst, cli->data_dir);
            }
        }
        free(src);
        free(dst);
        if (st != RB_OK) {
            rb_cli_fail("restore stopped: %s", err.text);
            goto done;
        }
        n++;
    }
    printf("restore: %d files restored into %s\n", n, cli->data_dir);
    if (!cJSON_IsTrue(cJSON_GetObjectItem(m, "keys")))
        printf("restore: the backup has no keys/: put the audit signing key back before "
               "starting the services\n");
    printf("Check it with 'ragbox doctor', then start the services.\n");
    rc = RB_EXIT_OK;
done:
    cJSON_Delete(m);
    return rc;
}

/* ================================================================ doctor */

enum ops_level { OPS_OK = 0, OPS_INFO, OPS_WARN, OPS_FAIL };

struct ops_doctor {
    cJSON *checks;
    int warnings;
    int failures;
    bool json;
};

static void doctor_add(struct ops_doctor *d, const char *name, enum ops_level lvl, const char *fix,
                       const char *fmt, ...) RB_PRINTF(5, 6);

static void doctor_add(struct ops_doctor *d, const char *name, enum ops_level lvl, const char *fix,
                       const char *fmt, ...)
{
    static const char *const names[] = {"ok", "info", "warn", "fail"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lvl == OPS_WARN)
        d->warnings++;
    if (lvl == OPS_FAIL)
        d->failures++;
    cJSON *c = cJSON_CreateObject();
    if (c) {
        cJSON_AddStringToObject(c, "check", name);
        cJSON_AddStringToObject(c, "status", names[lvl]);
        cJSON_AddStringToObject(c, "message", msg);
        if (fix && lvl >= OPS_WARN)
            cJSON_AddStringToObject(c, "fix", fix);
        cJSON_AddItemToArray(d->checks, c);
    }
    if (!d->json) {
        static const char *const tags[] = {"ok  ", "info", "WARN", "FAIL"};
        printf("%s  %-10s %s\n", tags[lvl], name, msg);
        if (fix && lvl >= OPS_WARN)
            printf("      %-10s fix: %s\n", "", fix);
        fflush(stdout);
    }
}

static void doctor_config(struct ops_doctor *d, struct rb_cli *cli)
{
    if (!rb_fs_exists(cli->config_path)) {
        doctor_add(d, "config", OPS_INFO, NULL, "%s does not exist: every setting has its default",
                   cli->config_path);
    } else {
        doctor_add(d, "config", OPS_OK, NULL, "%s parses (%zu settings)", cli->config_path,
                   rb_config_count(cli->config));
        struct stat sb;
        if (stat(cli->config_path, &sb) == 0 && (sb.st_mode & 0002))
            doctor_add(d, "config", OPS_FAIL, "chmod o-w CONFIG",
                       "%s is world-writable: anyone could redirect the appliance",
                       cli->config_path);
    }
    static const char *const known[] = {"models.chat",          "models.embedding",
                                        "retention.audit_days", "retention.answer_text_days",
                                        "retention.log_days",   NULL};
    /* Only the sections this module owns are checked key by key. */
    for (size_t i = 0; i < rb_config_count(cli->config); i++) {
        const char *sec, *key;
        int line;
        rb_config_entry(cli->config, i, &sec, &key, NULL, &line);
        if (strcasecmp(sec, "models") && strcasecmp(sec, "retention"))
            continue;
        bool ok = false;
        for (size_t k = 0; known[k] && !ok; k++) {
            size_t sl = strlen(sec);
            ok = strncasecmp(known[k], sec, sl) == 0 && known[k][sl] == '.' &&
                 strcasecmp(known[k] + sl + 1, key) == 0;
        }
        if (!ok)
            doctor_add(d, "config", OPS_FAIL,
                       "remove or correct the key (see ragbox.conf comments)",
                       "%s:%d: unknown key %s.%s", cli->config_path, line, sec, key);
    }
    static const char *const days[] = {"audit_days", "answer_text_days", "log_days"};
    for (size_t i = 0; i < RB_ARRAY_LEN(days); i++) {
        int64_t v;
        struct rb_errmsg err = {{0}};
        static const int64_t defaults[] = {2555, 90, 30};
        if (rb_config_int(cli->config, "retention", days[i], defaults[i], 0, 36500, &v, &err) !=
            RB_OK)
            doctor_add(d, "retention", OPS_FAIL, "a whole number of days, 0 = keep forever", "%s",
                       err.text);
    }
    int64_t audit_days = 0, answer_days = 0;
    struct rb_errmsg e2 = {{0}};
    if (rb_config_int(cli->config, "retention", "audit_days", 2555, 0, 36500, &audit_days, &e2) ==
            RB_OK &&
        rb_config_int(cli->config, "retention", "answer_text_days", 90, 0, 36500, &answer_days,
                      &e2) == RB_OK) {
        if (audit_days > 0 && audit_days < 365)
            doctor_add(d, "retention", OPS_WARN,
                       "check your regulator's record-keeping period (often 5-7 years)",
                       "audit records are kept only %lld days", (long long)audit_days);
        else {
            char a[32], t[32];
            snprintf(a, sizeof a, audit_days ? "%lld days" : "forever", (long long)audit_days);
            snprintf(t, sizeof t, answer_days ? "%lld days" : "forever", (long long)answer_days);
            doctor_add(d, "retention", OPS_OK, NULL, "audit records kept %s, answer texts %s", a,
                       t);
        }
        const char *answers = rb_config_str(cli->config, "audit", "answers", "hash");
        if (strcmp(answers, "full") == 0 && answer_days > 0 &&
            (audit_days == 0 || audit_days > answer_days))
            doctor_add(d, "retention", OPS_WARN,
                       "set [audit] answers = hash (the default) to keep only the answers' SHA-256",
                       "[audit] answers = full keeps answer texts in the audit trail for %s, "
                       "longer than answer_text_days = %lld (audit records cannot be edited)",
                       audit_days ? "audit_days" : "ever", (long long)answer_days);
    }
}

static void doctor_data_dir(struct ops_doctor *d, struct rb_cli *cli)
{
    struct stat sb;
    if (stat(cli->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        doctor_add(d, "data", OPS_FAIL,
                   "reinstall the package, or create it: install -d -m 0750 "
                   "-o ragbox -g ragbox DIR",
                   "data directory %s does not exist", cli->data_dir);
        return;
    }
    if (access(cli->data_dir, R_OK | W_OK | X_OK) != 0)
        doctor_add(d, "data", OPS_FAIL,
                   "run as the service user: sudo ragbox-admin doctor (or chown -R ragbox: DIR)",
                   "%s is not readable and writable by uid %u", cli->data_dir, (unsigned)geteuid());
    else if (sb.st_mode & 0007)
        doctor_add(d, "data", OPS_FAIL,
                   "chmod 0750 the data directory (and chown it to the service user)",
                   "%s is accessible to every user (mode %04o): documents and audit records "
                   "would be readable by anyone",
                   cli->data_dir, (unsigned)(sb.st_mode & 07777));
    else
        doctor_add(d, "data", OPS_OK, NULL, "%s mode %04o, owner uid %u", cli->data_dir,
                   (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid);
    /* Files the service user cannot use (e.g. created by root by mistake). */
    static const char *const must[] = {"ragbox.db", "ragbox.db-wal", "ragbox.db-shm", "faiss",
                                       "models",    "uploads",       "audit",         "keys"};
    for (size_t i = 0; i < RB_ARRAY_LEN(must); i++) {
        char *p = rb_path_join(cli->data_dir, must[i]);
        struct stat fb;
        if (p && stat(p, &fb) == 0 && fb.st_uid != sb.st_uid)
            doctor_add(d, "data", OPS_FAIL, "chown -R ragbox:ragbox /var/lib/ragbox",
                       "%s belongs to uid %u, not to the data directory's owner %u", p,
                       (unsigned)fb.st_uid, (unsigned)sb.st_uid);
        free(p);
    }
    char *keys = rb_path_join(cli->data_dir, "keys");
    DIR *kd = keys ? opendir(keys) : NULL;
    if (kd) {
        struct dirent *e;
        while ((e = readdir(kd))) {
            /* Public keys (*.pub, *.pub.pem) are meant to be shared. */
            if (e->d_name[0] == '.' || has_suffix(e->d_name, ".pub") ||
                has_suffix(e->d_name, ".pub.pem"))
                continue;
            char *p = rb_path_join(keys, e->d_name);
            struct stat kb;
            if (p && stat(p, &kb) == 0 && S_ISREG(kb.st_mode) && (kb.st_mode & 0077))
                doctor_add(d, "keys", OPS_FAIL, "chmod 0600 the key file",
                           "%s is readable by others (mode %04o)", p,
                           (unsigned)(kb.st_mode & 07777));
            free(p);
        }
        closedir(kd);
    }
    free(keys);
}

static void doctor_models(struct ops_doctor *d, struct rb_cli *cli, bool quick)
{
    cJSON *m = NULL;
    struct rb_errmsg err = {{0}};
    if (ops_models_load(cli->data_dir, &m, &err) != RB_OK) {
        doctor_add(d, "models", OPS_FAIL,
                   "restore models/manifest.json from a backup, or re-add "
                   "the models with 'ragbox model add'",
                   "%s", err.text);
        return;
    }
    int n = 0, bad = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(m, "models"))
    {
        n++;
        char *p = ops_model_problem(cli->data_dir, it, !quick);
        if (p) {
            bad++;
            doctor_add(d, "models", OPS_FAIL,
                       "copy the original file again with 'ragbox model add FILE --role ROLE'",
                       "%s", p);
        }
        free(p);
    }
    if (n && !bad)
        doctor_add(d, "models", OPS_OK, NULL, "%d model file%s present%s", n, n == 1 ? "" : "s",
                   quick ? " (sizes checked; hashes skipped with --quick)"
                         : " with matching SHA-256");
    static const char *const roles[] = {"chat", "embedding"};
    for (size_t r = 0; r < 2; r++) {
        const char *v = rb_config_str(cli->config, "models", roles[r], "");
        if (!*v) {
            if (r == 0)
                doctor_add(d, "models", OPS_INFO, NULL,
                           "no chat model configured: answers are extractive (cited passages); "
                           "add one with 'ragbox model add FILE.gguf --role chat'");
            else
                doctor_add(d, "models", OPS_INFO, NULL,
                           "no embedding model configured: keyword search only");
            continue;
        }
        char *full = v[0] == '/' ? rb_strdup(v) : rb_path_join(cli->data_dir, v);
        struct ops_gguf g;
        if (full && ops_gguf_check(full, &g, &err) != RB_OK)
            doctor_add(d, "models", OPS_FAIL,
                       "fix [models] in the configuration or re-add the model",
                       "[models] %s = %s: %s", roles[r], v, err.text);
        else
            doctor_add(d, "models", OPS_OK, NULL, "%s model %s is a GGUF v%u file", roles[r], v,
                       g.version);
        free(full);
    }
    cJSON_Delete(m);
}

/* index verify / audit verify through this binary, when built in. */
static void doctor_child(struct ops_doctor *d, struct rb_cli *cli, const char *name,
                         const char *const *args, const char *need, const char *fix)
{
    char *path = rb_path_join(cli->data_dir, need);
    bool present = path && rb_fs_exists(path);
    free(path);
    if (!present) {
        doctor_add(d, name, OPS_INFO, NULL, "no %s in the data directory yet", need);
        return;
    }
    struct rb_buf out;
    rb_buf_init(&out, 1 << 20);
    int rc = ops_run_self(cli, args, &out);
    /* Last non-empty line of the output: the verdict. */
    char last[400] = "";
    if (out.data) {
        size_t end = out.len;
        while (end && (out.data[end - 1] == '\n' || out.data[end - 1] == ' '))
            end--;
        size_t start = end;
        while (start && out.data[start - 1] != '\n')
            start--;
        size_t n = RB_MIN(end - start, sizeof last - 1);
        memcpy(last, out.data + start, n);
        last[n] = '\0';
    }
    if (ops_unknown_command(rc, &out))
        doctor_add(d, name, OPS_INFO, NULL, "'ragbox %s %s' is not in this build; not checked",
                   args[0], args[1]);
    else if (rc == 0)
        doctor_add(d, name, OPS_OK, NULL, "'ragbox %s %s' passed%s%s", args[0], args[1],
                   last[0] ? ": " : "", last);
    else
        doctor_add(d, name, OPS_FAIL, fix, "'ragbox %s %s' failed (exit %d): %s", args[0], args[1],
                   rc, out.data ? out.data : "no output");
    rb_buf_free(&out);
}

/* Retention: the last `retention run` and what is due now (`retention status --json`). */
static void doctor_retention(struct ops_doctor *d, struct rb_cli *cli)
{
    static const char *const args[] = {"retention", "status", "--json", NULL};
    struct rb_buf out;
    rb_buf_init(&out, 1 << 22);
    int rc = ops_run_self(cli, args, &out);
    cJSON *st = NULL;
    struct rb_errmsg jerr;
    if (ops_unknown_command(rc, &out)) {
        doctor_add(d, "retention", OPS_INFO, NULL, "'ragbox retention' is not in this build");
        rb_buf_free(&out);
        return;
    }
    if (rc != 0 || !out.data || rb_json_parse(out.data, out.len, 16, &st, &jerr) != RB_OK ||
        !cJSON_IsObject(st)) {
        doctor_add(d, "retention", OPS_WARN, "run 'ragbox retention status' to see why",
                   "cannot read the retention status (exit %d): %.300s", rc,
                   out.data ? out.data : "no output");
        cJSON_Delete(st);
        rb_buf_free(&out);
        return;
    }
    rb_buf_free(&out);
    const cJSON *set = cJSON_GetObjectItem(st, "settings");
    const cJSON *due = cJSON_GetObjectItem(st, "due");
    const cJSON *last = cJSON_GetObjectItem(st, "last_run");
    double n_seg = cJSON_GetNumberValue(cJSON_GetObjectItem(due, "audit_segments"));
    double n_rec = cJSON_GetNumberValue(cJSON_GetObjectItem(due, "audit_records"));
    double n_hist = cJSON_GetNumberValue(cJSON_GetObjectItem(due, "history_rows"));
    double n_logs = cJSON_GetNumberValue(cJSON_GetObjectItem(due, "log_files"));
    double n_jobs = cJSON_GetNumberValue(cJSON_GetObjectItem(due, "batch_jobs"));
    if (!(n_jobs > 0))
        n_jobs = 0;
    bool forever = cJSON_GetNumberValue(cJSON_GetObjectItem(set, "audit_days")) == 0 &&
                   cJSON_GetNumberValue(cJSON_GetObjectItem(set, "answer_text_days")) == 0 &&
                   cJSON_GetNumberValue(cJSON_GetObjectItem(set, "log_days")) == 0;
    bool any_due = n_seg > 0 || n_hist > 0 || n_logs > 0 || n_jobs > 0;
    char what[400];
    snprintf(what, sizeof what,
             "due now: %.0f audit segment(s) (%.0f records), %.0f question-history entr%s, "
             "%.0f batch job(s), %.0f log file(s)",
             n_seg, n_rec, n_hist, n_hist == 1 ? "y" : "ies", n_jobs, n_logs);
    const char *fix = "enable the daily job: systemctl enable --now ragbox-retention.timer (or "
                      "run: ragbox-admin retention run)";
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(st, "errors"))
        if (cJSON_IsString(e))
            doctor_add(d, "retention", OPS_WARN, "see 'ragbox retention status'", "%s",
                       e->valuestring);
    int64_t last_us = 0;
    const char *last_time = cJSON_IsObject(last) ? rb_json_str(last, "time") : NULL;
    if (last_time && rb_audit_parse_time(last_time, &last_us) != RB_OK)
        last_us = 0;
    int64_t age_h = last_us ? (rb_time_now_us() - last_us) / 3600000000LL : -1;
    if (forever)
        doctor_add(d, "retention", OPS_OK, NULL,
                   "everything is kept forever (all [retention] days are 0)");
    else if (!last_time)
        doctor_add(d, "retention", any_due ? OPS_WARN : OPS_INFO, fix,
                   "retention has never run; %s", what);
    else if (!cJSON_IsTrue(cJSON_GetObjectItem(last, "ok")))
        doctor_add(d, "retention", OPS_WARN, "journalctl -u ragbox-retention; ragbox-admin retention run",
                   "the last retention run (%s) had errors; %s", last_time, what);
    else if (age_h > 48 && any_due)
        doctor_add(d, "retention", OPS_WARN, fix, "the last retention run was %lld hours ago (%s); %s",
                   (long long)age_h, last_time, what);
    else
        doctor_add(d, "retention", OPS_OK, NULL, "last run %s; %s", last_time, what);
    cJSON_Delete(st);
}

static void doctor_disk(struct ops_doctor *d, struct rb_cli *cli)
{
    struct statvfs v;
    if (statvfs(cli->data_dir, &v) != 0) {
        doctor_add(d, "disk", OPS_WARN, NULL, "cannot stat the file system of %s: %s",
                   cli->data_dir, strerror(errno));
        return;
    }
    double avail = (double)v.f_bavail * (double)v.f_frsize;
    double total = (double)v.f_blocks * (double)v.f_frsize;
    double gib = avail / (1024.0 * 1024.0 * 1024.0);
    double pct = total > 0 ? 100.0 * avail / total : 0;
    if (gib < 1.0 || pct < 2.0)
        doctor_add(d, "disk", OPS_FAIL,
                   "free space on the data file system: ingest and the audit trail stop when it "
                   "is full",
                   "%.2f GiB free (%.1f%%) under %s", gib, pct, cli->data_dir);
    else if (gib < 10.0 || pct < 10.0)
        doctor_add(d, "disk", OPS_WARN, "plan more space for the index and the audit trail",
                   "%.1f GiB free (%.1f%%) under %s", gib, pct, cli->data_dir);
    else
        doctor_add(d, "disk", OPS_OK, NULL, "%.1f GiB free (%.0f%%) under %s", gib, pct,
                   cli->data_dir);
}

/* The inference backend: what the engine itself found (librb_cuda.so loaded, its ABI,
 * a usable device) and so where models will run. */
static void doctor_backend(struct ops_doctor *d)
{
    struct rb_engine_gpu_status gs;
    rb_engine_gpu_probe(&gs);
    if (gs.n_devices > 0)
        doctor_add(d, "backend", OPS_OK, NULL,
                   "inference on the GPU: %s (compute %d.%d, %zu MiB, %zu MiB free) via %s",
                   gs.device, gs.cc_major, gs.cc_minor, gs.total_bytes >> 20, gs.free_bytes >> 20,
                   gs.library);
    else if (!gs.built)
        doctor_add(d, "backend", OPS_INFO, NULL,
                   "inference on the CPU (this build has no CUDA backend)");
    else
        doctor_add(d, "backend", OPS_INFO, NULL, "inference on the CPU: %s", gs.reason);
}

static void doctor_gpu(struct ops_doctor *d)
{
    char version[256] = "";
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (f) {
        if (!fgets(version, sizeof version, f))
            version[0] = '\0';
        fclose(f);
        version[strcspn(version, "\n")] = '\0';
    }
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!f && !cuda) {
        doctor_add(d, "gpu", OPS_INFO, NULL,
                   "no NVIDIA driver (no /proc/driver/nvidia, no libcuda.so.1): running on CPU");
        return;
    }
    if (!cuda) {
        doctor_add(d, "gpu", OPS_WARN,
                   "install the driver's CUDA library (libcuda1 / nvidia-driver)",
                   "NVIDIA kernel driver present (%s) but libcuda.so.1 cannot be loaded: %s; "
                   "running on CPU",
                   version, dlerror());
        return;
    }
    typedef int (*cu_init_fn)(unsigned);
    typedef int (*cu_count_fn)(int *);
    cu_init_fn cu_init = (cu_init_fn)dlsym(cuda, "cuInit");
    cu_count_fn cu_count = (cu_count_fn)dlsym(cuda, "cuDeviceGetCount");
    int count = 0, rc = -1;
    if (cu_init && cu_count && (rc = cu_init(0)) == 0)
        rc = cu_count(&count);
    if (rc == 0 && count > 0)
        doctor_add(d, "gpu", OPS_OK, NULL, "%d CUDA device%s visible%s%s", count,
                   count == 1 ? "" : "s", version[0] ? "; " : "", version);
    else
        doctor_add(d, "gpu", OPS_WARN,
                   "check nvidia-smi; in the service, DeviceAllow= must list the NVIDIA devices",
                   "libcuda.so.1 loads but no device is usable (cuInit/cuDeviceGetCount = %d); "
                   "running on CPU",
                   rc);
    dlclose(cuda);
}

/* systemctl is-active UNIT == "active" (false when systemd is not running). */
static bool ops_service_active(const char *unit)
{
    if (access("/run/systemd/system", F_OK) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("systemctl", "systemctl", "is-active", "--quiet", unit, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int ops_systemctl_rc(const char *verb, const char *unit)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("systemctl", "systemctl", verb, "--quiet", unit, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void doctor_services(struct ops_doctor *d)
{
    if (access("/run/systemd/system", F_OK) != 0) {
        doctor_add(d, "services", OPS_INFO, NULL,
                   "systemd is not running here; services not checked");
        return;
    }
    if (access("/lib/systemd/system/ragbox.target", F_OK) != 0 &&
        access("/usr/lib/systemd/system/ragbox.target", F_OK) != 0 &&
        access("/etc/systemd/system/ragbox.target", F_OK) != 0) {
        doctor_add(d, "services", OPS_INFO, NULL,
                   "the ragbox units are not installed (not a packaged installation)");
        return;
    }
    bool enabled = ops_systemctl_rc("is-enabled", "ragbox.target") == 0;
    static const char *const units[] = {"ragbox-web.service", "ragbox-ingestd.service"};
    for (size_t i = 0; i < RB_ARRAY_LEN(units); i++) {
        if (ops_service_active(units[i]))
            doctor_add(d, "services", OPS_OK, NULL, "%s is running", units[i]);
        else if (ops_systemctl_rc("is-failed", units[i]) == 0)
            doctor_add(d, "services", OPS_FAIL,
                       "journalctl -u UNIT -n 50; then systemctl restart ragbox.target",
                       "%s has failed", units[i]);
        else
            doctor_add(d, "services", enabled ? OPS_FAIL : OPS_WARN,
                       "systemctl enable --now ragbox.target", "%s is not running%s", units[i],
                       enabled ? " although ragbox.target is enabled" : "");
    }
}

int rb_cmd_doctor(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox doctor [--json] [--quick]\n"
               "\n"
               "Checks the installation and says what to fix:\n"
               "  config     the configuration parses; [models] and [retention] are valid\n"
               "  data       the data directory exists, is private (no access for others) and\n"
               "             belongs to one user; key files are 0600\n"
               "  models     every model in models/manifest.json is present with its recorded\n"
               "             size and SHA-256; the configured models are GGUF files\n"
               "  index      'ragbox index verify' (SQLite, FTS5 and FAISS consistent)\n"
               "  audit      'ragbox audit verify' (the hash chain and checkpoints hold)\n"
               "  retention  the last 'ragbox retention run' and what is due now\n"
               "  disk       free space on the data file system\n"
               "  gpu        NVIDIA driver and CUDA device seen, or CPU mode\n"
               "  backend    where inference runs: the CUDA backend and its device, or the CPU\n"
               "  services   ragbox-web and ragbox-ingestd running (when systemd runs)\n"
               "\n"
               "Exit status 0 when nothing failed (warnings allowed), 1 otherwise.\n"
               "  --json    one JSON object: {ok, failures, warnings, checks: [{check, status,\n"
               "            message, fix}]}\n"
               "  --quick   do not re-hash model files (sizes only)\n");
        return RB_EXIT_OK;
    }
    struct ops_doctor d = {0};
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            d.json = true;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else
            return rb_cli_usage("doctor", "unknown argument '%s'", argv[i]);
    }
    d.checks = cJSON_CreateArray();
    if (!d.checks)
        return rb_cli_fail("out of memory");
    if (!d.json)
        printf("ragbox %s doctor: data %s, config %s\n", RAGBOX_VERSION, cli->data_dir,
               cli->config_path);
    doctor_config(&d, cli);
    doctor_data_dir(&d, cli);
    if (rb_fs_is_dir(cli->data_dir)) {
        doctor_models(&d, cli, quick);
        static const char *const index_args[] = {"index", "verify", NULL};
        static const char *const audit_args[] = {"audit", "verify", NULL};
        doctor_child(&d, cli, "index", index_args, "ragbox.db",
                     "stop the services, then 'ragbox index rebuild' (vectors and keyword index "
                     "are rebuilt from SQLite); restore a backup if SQLite itself is damaged");
        doctor_child(&d, cli, "audit", audit_args, "audit",
                     "do not write to the data directory; keep a copy of audit/ for the "
                     "investigation and contact your compliance officer");
        doctor_retention(&d, cli);
        doctor_disk(&d, cli);
    }
    doctor_gpu(&d);
    doctor_backend(&d);
    doctor_services(&d);
    if (d.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", d.failures == 0);
        cJSON_AddNumberToObject(o, "failures", d.failures);
        cJSON_AddNumberToObject(o, "warnings", d.warnings);
        cJSON_AddStringToObject(o, "data_dir", cli->data_dir);
        cJSON_AddStringToObject(o, "config", cli->config_path);
        cJSON_AddItemToObject(o, "checks", d.checks);
        char *s = cJSON_Print(o);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("doctor: %d problem%s, %d warning%s\n", d.failures, d.failures == 1 ? "" : "s",
               d.warnings, d.warnings == 1 ? "" : "s");
        cJSON_Delete(d.checks);
    }
    return d.failures ? RB_EXIT_FAIL : RB_EXIT_OK;
}
