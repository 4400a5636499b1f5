/* ragbox common: what every module links.
 *
 * Status codes (status.h), logging, the configuration file, growable byte
 * buffers, UTF-8 helpers, SHA-256 (OpenSSL libcrypto), JSON (cJSON, re-exported),
 * file-system helpers (atomic write, mkdir -p) and time.
 *
 * Thread-safety: logging is safe from any thread (one process-wide sink set
 * by rb_log_init in main()). A struct rb_config is read-only after load and
 * may be shared by threads. Buffers and hashers belong to one thread at a time.
 *
 * Ownership: strings returned as `char *` are heap-allocated and freed with
 * free() unless the comment says "borrowed".
 */
#ifndef RAGBOX_COMMON_H
#define RAGBOX_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ragbox/status.h"

#define RB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RB_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Programmer-bug assertions only; never for untrusted input. */
#define RB_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rb__assert_fail(#cond, __FILE__, __LINE__);                                            \
    } while (0)
void rb__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

/* ===================================================================== logging */

enum rb_log_level { RB_LOG_DEBUG = 0, RB_LOG_INFO, RB_LOG_WARN, RB_LOG_ERROR, RB_LOG_OFF };

/* Configure the process-wide log sink: messages at `level` and above go to
 * stderr; with `use_syslog` also to syslog (journald) under `ident` (borrowed,
 * must outlive logging). Default before any call: WARN to stderr, no syslog.
 * Environment RAGBOX_LOG=debug|info|warn|error|off overrides `level`. */
void rb_log_init(const char *ident, enum rb_log_level level, bool use_syslog);
enum rb_log_level rb_log_level_get(void);
/* Parse "debug".."off"; returns RB_ERR_INVALID for anything else. */
RB_NODISCARD enum rb_status rb_log_level_parse(const char *text, enum rb_log_level *out);
void rb_log(enum rb_log_level level, const char *module, const char *fmt, ...) RB_PRINTF(3, 4);
#define RB_DEBUG(mod, ...) rb_log(RB_LOG_DEBUG, mod, __VA_ARGS__)
#define RB_INFO(mod, ...) rb_log(RB_LOG_INFO, mod, __VA_ARGS__)
#define RB_WARN(mod, ...) rb_log(RB_LOG_WARN, mod, __VA_ARGS__)
#define RB_ERROR(mod, ...) rb_log(RB_LOG_ERROR, mod, __VA_ARGS__)

/* ============================================================ error message */

/* A fixed-size per-handle error text (conventions: each handle keeps its own). */
#define RB_ERRMSG_MAX 512
struct rb_errmsg {
    char text[RB_ERRMSG_MAX];
};
/* Formats into e (truncating) and returns `status` so callers can `return rb_errmsg_set(...)`. */
enum rb_status rb_errmsg_set(struct rb_errmsg *e, enum rb_status status, const char *fmt, ...)
    RB_PRINTF(3, 4);
void rb_errmsg_clear(struct rb_errmsg *e);

/* ================================================================== buffers */

/* A growable byte buffer with a hard maximum (0 = RB_BUF_DEFAULT_MAX). Always
 * NUL-terminated when len > 0 or after any append. Free with rb_buf_free. */
#define RB_BUF_DEFAULT_MAX ((size_t)1 << 30)
struct rb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
void rb_buf_init(struct rb_buf *b, size_t max);
RB_NODISCARD enum rb_status rb_buf_reserve(struct rb_buf *b, size_t extra);
RB_NODISCARD enum rb_status rb_buf_append(struct rb_buf *b, const void *data, size_t len);
RB_NODISCARD enum rb_status rb_buf_append_str(struct rb_buf *b, const char *s);
RB_NODISCARD enum rb_status rb_buf_printf(struct rb_buf *b, const char *fmt, ...) RB_PRINTF(2, 3);
RB_NODISCARD enum rb_status rb_buf_vprintf(struct rb_buf *b, const char *fmt, va_list ap);
void rb_buf_reset(struct rb_buf *b); /* len = 0, keeps memory */
/* Hands the NUL-terminated data to the caller (free()); buffer becomes empty. */
char *rb_buf_steal(struct rb_buf *b);
void rb_buf_free(struct rb_buf *b);

/* Overflow-checked size arithmetic: false on overflow. */
static inline bool rb_size_add(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool rb_size_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Checked allocation helpers: NULL on overflow or out of memory. */
void *rb_malloc_array(size_t n, size_t size);
void *rb_calloc_array(size_t n, size_t size);
char *rb_strdup(const char *s);             /* NULL in -> NULL out */
char *rb_strndup(const char *s, size_t n);
/* printf into a new heap string (free()); NULL on failure. */
char *rb_asprintf(const char *fmt, ...) RB_PRINTF(1, 2);
/* Bounded copy that always terminates; returns false when truncated. */
bool rb_strlcpy(char *dst, const char *src, size_t dst_size);
/* Strict integer/float parsing of a whole string (no trailing junk). */
RB_NODISCARD enum rb_status rb_parse_i64(const char *s, int64_t *out);
RB_NODISCARD enum rb_status rb_parse_double(const char *s, double *out);

/* ==================================================================== UTF-8 */

/* Whether [s, s+len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool rb_utf8_valid(const char *s, size_t len);
/* Decodes one code point at s (len bytes available). Returns bytes consumed
 * (1..4), writing the code point to *cp; on malformed input returns 1 and sets
 * *cp = 0xFFFD. len must be > 0. */
int rb_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp into out (at least 4 bytes); returns length (0 if cp invalid). */
int rb_utf8_encode(uint32_t cp, char *out);
/* Number of code points (malformed bytes count one each). */
size_t rb_utf8_count(const char *s, size_t len);
/* Length of the longest prefix of s no longer than max_bytes that ends on a
 * code point boundary (for safe truncation). */
size_t rb_utf8_truncate(const char *s, size_t len, size_t max_bytes);
/* Copy with malformed sequences replaced by U+FFFD. Caller frees. */
char *rb_utf8_sanitize(const char *s, size_t len, size_t *out_len);
/* Han ideographs, kana, hangul and CJK punctuation ranges. */
bool rb_utf8_is_cjk(uint32_t cp);
/* Fraction (0..1) of letters in s that are CJK: a cheap language hint. */
double rb_utf8_cjk_ratio(const char *s, size_t len);
/* Simple Unicode-aware lowercasing of ASCII, Latin-1, Latin Extended-A, Greek
 * and Cyrillic; other code points are copied. Caller frees. */
char *rb_utf8_lower(const char *s, size_t len, size_t *out_len);

/* ================================================================== hashing */

#define RB_SHA256_LEN 32
#define RB_SHA256_HEX_LEN 64
struct rb_sha256 {
    void *ctx; /* EVP_MD_CTX, owned */
};
RB_NODISCARD enum rb_status rb_sha256_init(struct rb_sha256 *h);
RB_NODISCARD enum rb_status rb_sha256_update(struct rb_sha256 *h, const void *data, size_t len);
/* Writes the digest and releases the context (h may be re-initialised). */
RB_NODISCARD enum rb_status rb_sha256_final(struct rb_sha256 *h, uint8_t out[RB_SHA256_LEN]);
void rb_sha256_abort(struct rb_sha256 *h); /* release without a digest */
RB_NODISCARD enum rb_status rb_sha256(const void *data, size_t len, uint8_t out[RB_SHA256_LEN]);
/* hex must hold 65 bytes; lower-case, NUL-terminated. */
void rb_hex_encode(const uint8_t *bytes, size_t len, char *hex);
RB_NODISCARD enum rb_status rb_hex_decode(const char *hex, uint8_t *out, size_t out_len);
/* SHA-256 of a whole file, streamed, as lower-case hex (65 bytes). */
RB_NODISCARD enum rb_status rb_sha256_file(const char *path, char hex[RB_SHA256_HEX_LEN + 1]);
/* Cryptographically random bytes (OpenSSL RAND_bytes). */
RB_NODISCARD enum rb_status rb_random_bytes(void *out, size_t len);

/* ===================================================================== JSON */

/* cJSON is the JSON library (included above). Helpers for the common cases: */
/* Parse with a size limit and a nesting-depth limit; on error sets errmsg
 * with the byte offset. Caller frees with cJSON_Delete. */
RB_NODISCARD enum rb_status rb_json_parse(const char *text, size_t len, int max_depth,
                                          cJSON **out, struct rb_errmsg *err);
/* Borrowed string member or NULL (when absent or not a string). */
const char *rb_json_str(const cJSON *obj, const char *key);
/* Number member or `def`. */
double rb_json_num(const cJSON *obj, const char *key, double def);
bool rb_json_bool(const cJSON *obj, const char *key, bool def);
/* Compact serialisation (caller frees), NULL on failure. */
char *rb_json_print(const cJSON *obj);

/* =========================================================== configuration */

/* The configuration file: INI syntax (parsed by inih), documented in
 * packaging/ragbox.conf. Keys are "section.key". Load errors name file and
 * line; typed getters name the key and its line. A struct rb_config is
 * read-only after load. */
struct rb_config;
/* Loads path; a missing file is RB_ERR_NOT_FOUND (callers may then use
 * rb_config_create for an empty one). */
RB_NODISCARD enum rb_status rb_config_load(const char *path, struct rb_config **out,
                                           struct rb_errmsg *err);
/* Parses an in-memory INI text (name is used in messages). */
RB_NODISCARD enum rb_status rb_config_parse(const char *name, const char *text,
                                            struct rb_config **out, struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb_config_create(struct rb_config **out);
void rb_config_free(struct rb_config *cfg);
/* Borrowed value or `def` when unset. */
const char *rb_config_str(const struct rb_config *cfg, const char *section, const char *key,
                          const char *def);
RB_NODISCARD enum rb_status rb_config_int(const struct rb_config *cfg, const char *section,
                                          const char *key, int64_t def, int64_t min, int64_t max,
                                          int64_t *out, struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb_config_double(const struct rb_config *cfg, const char *section,
                                             const char *key, double def, double min, double max,
                                             double *out, struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb_config_bool(const struct rb_config *cfg, const char *section,
                                           const char *key, bool def, bool *out,
                                           struct rb_errmsg *err);
/* Sets (or replaces) a value in memory, e.g. from a command-line override. */
RB_NODISCARD enum rb_status rb_config_set(struct rb_config *cfg, const char *section,
                                          const char *key, const char *value);
/* Checks every key present against a NULL-terminated list of "section.key"
 * names (a "section.*" entry allows any key in that section); an unknown key
 * is RB_ERR_CONFIG naming it and its line. */
RB_NODISCARD enum rb_status rb_config_check_known(const struct rb_config *cfg,
                                                  const char *const *known,
                                                  struct rb_errmsg *err);
/* Writes the configuration back as INI text (caller frees). */
char *rb_config_serialize(const struct rb_config *cfg);
/* Number of entries, and entry i as borrowed section/key/value/line. */
size_t rb_config_count(const struct rb_config *cfg);
void rb_config_entry(const struct rb_config *cfg, size_t i, const char **section, const char **key,
                     const char **value, int *line);

/* ============================================================ file system */

/* mkdir -p with mode for created directories. */
RB_NODISCARD enum rb_status rb_fs_mkdirs(const char *path, unsigned mode);
/* Reads a whole file up to max_size bytes (RB_ERR_TOO_LARGE beyond). The
 * data is NUL-terminated; caller frees. */
RB_NODISCARD enum rb_status rb_fs_read_file(const char *path, size_t max_size, char **data,
                                            size_t *len);
/* Durable replace: write to path.tmp.<pid>, fsync, rename over path, fsync dir. */
RB_NODISCARD enum rb_status rb_fs_write_atomic(const char *path, const void *data, size_t len);
/* fsync the directory that contains path. */
RB_NODISCARD enum rb_status rb_fs_sync_parent(const char *path);
bool rb_fs_exists(const char *path);
bool rb_fs_is_dir(const char *path);
/* Joins two path parts with one '/'. Caller frees. */
char *rb_path_join(const char *a, const char *b);
/* Borrowed pointer to the last path component. */
const char *rb_path_basename(const char *path);

/* ==================================================================== time */

/* Wall clock in microseconds since the Unix epoch, and a monotonic clock in
 * nanoseconds. */
int64_t rb_time_now_us(void);
int64_t rb_time_mono_ns(void);
/* ISO-8601 UTC with microseconds ("2026-11-25T06:00:00.123456Z"); buf >= 32. */
void rb_time_format_utc(int64_t us, char *buf, size_t size);

/* ========================================================== data location */

/* The data directory: explicit `cli_value` if non-NULL, else $RAGBOX_DATA,
 * else $XDG_DATA_HOME/ragbox or ~/.local/share/ragbox (developer default).
 * The packaged service passes /var/lib/ragbox explicitly. Caller frees. */
char *rb_default_data_dir(const char *cli_value);
/* The configuration file: `cli_value`, $RAGBOX_CONFIG, else <data>/ragbox.conf. */
char *rb_default_config_path(const char *cli_value, const char *data_dir);

#endif
