/* Verification of the chain, checkpoints and head; scanning, filtering and
 * export for the auditor. Readers take no lock: they read complete lines
 * only, and a line being appended concurrently is simply not yet complete. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "audit-impl.h"

/* ================================================================== verify */

static void problem(struct rb_audit_verify_report *r, const char *file, uint64_t line,
                    uint64_t seq, const char *fmt, ...) RB_PRINTF(5, 6);
static void problem(struct rb_audit_verify_report *r, const char *file, uint64_t line,
                    uint64_t seq, const char *fmt, ...)
{
    if (!r->ok)
        return; /* keep the first */
    r->ok = false;
    rb_strlcpy(r->file, file ? file : "", sizeof r->file);
    r->line = line;
    r->seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem, sizeof r->problem, fmt, ap);
    va_end(ap);
}

/* Hash per seq (index seq-1), grown as records are read. */
struct hashes {
    uint8_t (*h)[RB_SHA256_LEN];
    size_t n, cap;
};

static bool hashes_push(struct hashes *hs, const uint8_t d[RB_SHA256_LEN])
{
    if (hs->n == hs->cap) {
        size_t ncap = hs->cap ? hs->cap * 2 : 1024;
        void *g = realloc(hs->h, ncap * RB_SHA256_LEN);
        if (!g)
            return false;
        hs->h = g;
        hs->cap = ncap;
    }
    memcpy(hs->h[hs->n++], d, RB_SHA256_LEN);
    return true;
}

static bool seq_of(const cJSON *rec, uint64_t *seq)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(rec, "seq");
    if (!cJSON_IsNumber(s) || s->valuedouble < 1 || s->valuedouble > 9007199254740992.0 ||
        s->valuedouble != (double)(uint64_t)s->valuedouble)
        return false;
    *seq = (uint64_t)s->valuedouble;
    return true;
}

/* Reads one file's records into the chain. Returns false to stop. */
static bool verify_file(const char *dir, const char *name, bool last_file, struct hashes *hs,
                        char prev_hex[RB_SHA256_HEX_LEN + 1], uint64_t *file_bytes,
                        struct rb_audit_verify_report *r, enum rb_status *st)
{
    char *path = rb_path_join(dir, name);
    char *data = NULL;
    size_t len = 0;
    *st = path ? rb_fs_read_file(path, (size_t)1 << 34, &data, &len) : RB_ERR_NOMEM;
    free(path);
    if (*st != RB_OK) {
        problem(r, name, 0, 0, "cannot read the file (%s)", rb_status_str(*st));
        *st = RB_OK;
        return false;
    }
    *file_bytes = len;
    uint64_t expect = hs->n + 1;
    uint64_t first_in_name = strtoull(name + strlen(RB_AUDIT_PREFIX), NULL, 10);
    if (len > 0 && first_in_name != expect) {
        problem(r, name, 0, expect,
                "file name says it starts at seq %llu but the chain continues at seq %llu "
                "(a file was removed, renamed or inserted)",
                (unsigned long long)first_in_name, (unsigned long long)expect);
        free(data);
        return false;
    }
    if (len == 0 && !last_file) {
        problem(r, name, 0, expect, "empty log file in the middle of the chain");
        free(data);
        return false;
    }
    size_t pos = 0;
    uint64_t line_no = 0;
    bool go = true;
    while (pos < len && go) {
        line_no++;
        char *nl = memchr(data + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (data + pos)) : len - pos;
        uint64_t want = hs->n + 1;
        if (!nl) {
            problem(r, name, line_no, want,
                    "the last line has no newline: the file was truncated or the record torn");
            go = false;
            break;
        }
        cJSON *rec = NULL;
        struct rb_errmsg jerr;
        uint64_t seq = 0;
        if (line_len == 0 || rb_json_parse(data + pos, line_len, 16, &rec, &jerr) != RB_OK ||
            !cJSON_IsObject(rec) || !seq_of(rec, &seq)) {
            problem(r, name, line_no, want, "the line is not a valid audit record (edited?)");
            cJSON_Delete(rec);
            go = false;
            break;
        }
        const char *prev = rb_json_str(rec, "prev");
        if (seq != want) {
            if (seq < want)
                problem(r, name, line_no, seq,
                        "seq %llu appears where seq %llu was expected: records reordered, "
                        "duplicated or inserted",
                        (unsigned long long)seq, (unsigned long long)want);
            else
                problem(r, name, line_no, seq,
                        "seq jumps from %llu to %llu: %llu record(s) removed or reordered",
                        (unsigned long long)(want - 1), (unsigned long long)seq,
                        (unsigned long long)(seq - want));
            go = false;
        } else if (!prev || strcmp(prev, prev_hex) != 0) {
            if (want == 1)
                problem(r, name, line_no, seq, "the first record does not start the chain");
            else
                problem(r, name, line_no, seq,
                        "prev does not match the SHA-256 of record %llu (line %llu): that "
                        "record was edited, or this one inserted or altered",
                        (unsigned long long)(want - 1), (unsigned long long)(line_no - 1));
            go = false;
        } else {
            uint8_t d[RB_SHA256_LEN];
            if (rb_sha256(data + pos, line_len, d) != RB_OK || !hashes_push(hs, d)) {
                *st = RB_ERR_NOMEM;
                go = false;
            } else {
                rb_hex_encode(d, RB_SHA256_LEN, prev_hex);
                if (r->first_seq == 0)
                    r->first_seq = seq;
                r->last_seq = seq;
                r->records++;
            }
        }
        cJSON_Delete(rec);
        pos += line_len + 1;
    }
    free(data);
    return go && *st == RB_OK;
}

static void verify_checkpoints(const char *dir, EVP_PKEY *pub, const struct hashes *hs,
                               char **files, size_t n_files, struct rb_audit_verify_report *r,
                               uint64_t *last_cp_seq, char last_cp_hash[RB_SHA256_HEX_LEN + 1],
                               uint64_t *prev_cp_seq, char prev_cp_hash[RB_SHA256_HEX_LEN + 1])
{
    *prev_cp_seq = 0;
    rb_strlcpy(prev_cp_hash, RB_AUDIT_ZERO_HASH, RB_SHA256_HEX_LEN + 1);
    rb_strlcpy(last_cp_hash, RB_AUDIT_ZERO_HASH, RB_SHA256_HEX_LEN + 1);
    *last_cp_seq = 0;
    char *path = rb_path_join(dir, RB_AUDIT_CHECKPOINTS);
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = path ? rb_fs_read_file(path, (size_t)1 << 30, &data, &len) : RB_ERR_NOMEM;
    free(path);
    if (st == RB_ERR_NOT_FOUND)
        return; /* none yet: the head must then say cp_seq 0 */
    if (st != RB_OK) {
        problem(r, RB_AUDIT_CHECKPOINTS, 0, 0, "cannot read (%s)", rb_status_str(st));
        return;
    }
    size_t pos = 0;
    uint64_t line_no = 0;
    while (pos < len && r->ok) {
        line_no++;
        char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) {
            problem(r, RB_AUDIT_CHECKPOINTS, line_no, 0, "truncated checkpoint line");
            break;
        }
        size_t line_len = (size_t)(nl - (data + pos));
        cJSON *cp = NULL;
        struct rb_errmsg jerr;
        uint64_t seq = 0;
        const char *hash = NULL, *file = NULL, *time = NULL, *reason = NULL, *prev_cp = NULL,
                   *sig = NULL;
        if (rb_json_parse(data + pos, line_len, 4, &cp, &jerr) == RB_OK && seq_of(cp, &seq)) {
            hash = rb_json_str(cp, "hash");
            file = rb_json_str(cp, "file");
            time = rb_json_str(cp, "time");
            reason = rb_json_str(cp, "reason");
            prev_cp = rb_json_str(cp, "prev_cp");
            sig = rb_json_str(cp, "sig");
        }
        if (!hash || !file || !time || !reason || !prev_cp || !sig) {
            problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq, "malformed checkpoint");
        } else {
            size_t mlen = 0;
            char *msg = rb__audit_checkpoint_message(seq, hash, file, time, reason, prev_cp, &mlen);
            bool sig_ok = msg && rb__audit_sig_ok(pub, msg, mlen, sig);
            free(msg);
            bool known_file = false;
            for (size_t i = 0; i < n_files; i++)
                known_file = known_file || strcmp(files[i], file) == 0;
            char want[RB_SHA256_HEX_LEN + 1] = "";
            if (seq >= 1 && seq <= hs->n)
                rb_hex_encode(hs->h[seq - 1], RB_SHA256_LEN, want);
            if (!sig_ok)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq,
                        "checkpoint signature is invalid (checkpoint altered or signed by "
                        "another key)");
            else if (strcmp(prev_cp, last_cp_hash) != 0)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq,
                        "checkpoint does not follow the previous one (a checkpoint was removed "
                        "or reordered)");
            else if (seq <= *last_cp_seq)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq, "checkpoint seq goes backwards");
            else if (seq > hs->n)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq,
                        "signed checkpoint names seq %llu but the log ends at seq %llu: the "
                        "log was truncated",
                        (unsigned long long)seq, (unsigned long long)hs->n);
            else if (strcmp(want, hash) != 0)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq,
                        "signed checkpoint hash differs from record %llu: the log was altered",
                        (unsigned long long)seq);
            else if (!known_file)
                problem(r, RB_AUDIT_CHECKPOINTS, line_no, seq,
                        "checkpoint names the log file %s, which is missing", file);
            else {
                r->checkpoints++;
                *prev_cp_seq = *last_cp_seq;
                rb_strlcpy(prev_cp_hash, last_cp_hash, RB_SHA256_HEX_LEN + 1);
                *last_cp_seq = seq;
                uint8_t d[RB_SHA256_LEN];
                if (rb_sha256(data + pos, line_len, d) == RB_OK)
                    rb_hex_encode(d, RB_SHA256_LEN, last_cp_hash);
            }
        }
        cJSON_Delete(cp);
        pos += line_len + 1;
    }
    free(data);
}

enum rb_status rb_audit_verify(const char *dir, const char *pubkey_path,
                               struct rb_audit_verify_report *r, struct rb_errmsg *err)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    if (!rb_fs_is_dir(dir))
        return rb_errmsg_set(err, RB_ERR_NOT_FOUND, "no audit directory %s", dir);
    char *def_key = NULL, *def_pub = NULL;
    if (!pubkey_path) {
        def_key = rb__audit_default_key(dir);
        def_pub = def_key ? rb__audit_pub_path(def_key) : NULL;
        if (!def_pub) {
            free(def_key);
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        }
        pubkey_path = def_pub;
    }
    char **files = NULL;
    size_t n_files = 0;
    EVP_PKEY *pub = NULL;
    enum rb_status st = rb__audit_list_files(dir, &files, &n_files);
    if (st != RB_OK) {
        free(def_key);
        free(def_pub);
        return rb_errmsg_set(err, st, "cannot list %s", dir);
    }
    char *head_path = rb_path_join(dir, RB_AUDIT_HEAD);
    char *head_text = NULL;
    size_t head_len = 0;
    enum rb_status hst = head_path ? rb_fs_read_file(head_path, 1 << 16, &head_text, &head_len)
                                   : RB_ERR_NOMEM;
    free(head_path);
    if (n_files == 0 && hst == RB_ERR_NOT_FOUND) {
        /* An empty trail is a valid one (nothing was ever recorded). */
        free(def_key);
        free(def_pub);
        {
            char *cp = rb_path_join(dir, RB_AUDIT_CHECKPOINTS);
            if (cp && rb_fs_exists(cp))
                problem(r, RB_AUDIT_CHECKPOINTS, 0, 0,
                        "checkpoints exist but the log files and head are gone");
            free(cp);
        }
        return RB_OK;
    }
    if (rb__audit_pubkey_load(pubkey_path, &pub, err) != RB_OK) {
        st = RB_ERR_NOT_FOUND;
        goto out;
    }
    struct hashes hs = {0};
    char prev_hex[RB_SHA256_HEX_LEN + 1];
    rb_strlcpy(prev_hex, RB_AUDIT_ZERO_HASH, sizeof prev_hex);
    uint64_t last_file_bytes = 0;
    for (size_t i = 0; i < n_files; i++) {
        r->files++;
        if (!verify_file(dir, files[i], i + 1 == n_files, &hs, prev_hex, &last_file_bytes, r, &st))
            break;
    }
    if (st != RB_OK) {
        rb_errmsg_set(err, st, "verification ran out of memory");
        free(hs.h);
        goto out;
    }
    uint64_t cp_seq = 0, prev_cp_seq = 0;
    char cp_hash[RB_SHA256_HEX_LEN + 1], prev_cp_hash[RB_SHA256_HEX_LEN + 1];
    if (r->ok)
        verify_checkpoints(dir, pub, &hs, files, n_files, r, &cp_seq, cp_hash, &prev_cp_seq,
                           prev_cp_hash);
    if (r->ok) {
        struct rb__audit_head h;
        struct rb_errmsg herr;
        if (hst == RB_ERR_NOT_FOUND) {
            problem(r, RB_AUDIT_HEAD, 0, 0,
                    "the signed head is missing: truncation cannot be ruled out");
        } else if (hst != RB_OK || rb__audit_head_parse(head_text, head_len, &h, &herr) != RB_OK) {
            problem(r, RB_AUDIT_HEAD, 0, 0, "the signed head is unreadable or malformed");
        } else {
            size_t mlen = 0;
            char *msg = rb__audit_head_message(&h, &mlen);
            bool sig_ok = msg && rb__audit_sig_ok(pub, msg, mlen, h.sig);
            free(msg);
            const char *last_file = n_files ? files[n_files - 1] : "";
            char want[RB_SHA256_HEX_LEN + 1] = "";
            if (h.seq >= 1 && h.seq <= hs.n)
                rb_hex_encode(hs.h[h.seq - 1], RB_SHA256_LEN, want);
            if (!sig_ok)
                problem(r, RB_AUDIT_HEAD, 0, h.seq, "the head's signature is invalid");
            else if (h.seq > hs.n)
                problem(r, last_file, 0, hs.n + 1,
                        "the log ends at seq %llu but the signed head says seq %llu: records "
                        "were removed from the end (truncated)",
                        (unsigned long long)hs.n, (unsigned long long)h.seq);
            else if (h.seq > 0 && strcmp(want, h.hash) != 0)
                problem(r, RB_AUDIT_HEAD, 0, h.seq,
                        "record %llu differs from the one the signed head sealed",
                        (unsigned long long)h.seq);
            else if (hs.n - h.seq > RB_AUDIT_MAX_BATCH)
                problem(r, last_file, 0, h.seq + 1,
                        "%llu records follow the signed head (at most one batch of "
                        RB__AUDIT_STR(RB_AUDIT_MAX_BATCH) " may, after a crash): "
                        "records were appended without the key",
                        (unsigned long long)(hs.n - h.seq));
            else if ((h.cp_seq != cp_seq || strcmp(h.cp_hash, cp_hash) != 0) &&
                     /* crash window: one checkpoint written, the head not yet */
                     !(h.cp_seq == prev_cp_seq && strcmp(h.cp_hash, prev_cp_hash) == 0 &&
                       cp_seq <= hs.n))
                problem(r, RB_AUDIT_CHECKPOINTS, 0, h.cp_seq,
                        "the head names checkpoint seq %llu but the last valid checkpoint is "
                        "seq %llu: checkpoints were removed",
                        (unsigned long long)h.cp_seq, (unsigned long long)cp_seq);
            else if (strcmp(h.file, last_file) != 0 &&
                     !(n_files >= 2 && strcmp(h.file, files[n_files - 2]) == 0 &&
                       (last_file_bytes == 0 || /* rotation interrupted */
                        (hs.n - h.seq <= RB_AUDIT_MAX_BATCH && /* its first batch not sealed */
                         strtoull(last_file + strlen(RB_AUDIT_PREFIX), NULL, 10) == h.seq + 1))))
                problem(r, RB_AUDIT_HEAD, 0, h.seq,
                        "the head names %s but the last log file is %s", h.file, last_file);
            else
                r->unsealed = hs.n - h.seq;
        }
    }
    free(hs.h);
    st = RB_OK;
out:
    EVP_PKEY_free(pub);
    free(head_text);
    rb__audit_free_list(files, n_files);
    free(def_key);
    free(def_pub);
    return st;
}

/* ============================================================ scan/export */

void rb_audit_filter_init(struct rb_audit_filter *f)
{
    memset(f, 0, sizeof *f);
    f->action = -1;
}

static bool in_list(const char *list, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == wl && strncmp(p, want, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

static bool matches(const struct rb_audit_filter *f, const cJSON *rec, uint64_t seq,
                    const char *line, size_t len)
{
    if (f->seq_min && seq < f->seq_min)
        return false;
    if (f->seq_max && seq > f->seq_max)
        return false;
    if (f->from_us || f->to_us) {
        int64_t t;
        if (rb_audit_parse_time(rb_json_str(rec, "time"), &t) != RB_OK)
            return false;
        if (f->from_us && t < f->from_us)
            return false;
        if (f->to_us && t >= f->to_us)
            return false;
    }
    const char *s;
    if (f->user && (!(s = rb_json_str(rec, "user")) || strcmp(s, f->user) != 0))
        return false;
    if (f->action >= 0 && (!(s = rb_json_str(rec, "action")) ||
                           strcmp(s, rb_audit_action_name((enum rb_audit_action)f->action)) != 0))
        return false;
    if (f->collection && !in_list(rb_json_str(rec, "collection"), f->collection))
        return false;
    if (f->outcome && (!(s = rb_json_str(rec, "outcome")) || strcmp(s, f->outcome) != 0))
        return false;
    if (f->text && !memmem(line, len, f->text, strlen(f->text)))
        return false;
    return true;
}

enum rb_status rb_audit_scan(const char *dir, const struct rb_audit_filter *f,
                             rb_audit_record_fn fn, void *user, struct rb_errmsg *err)
{
    struct rb_audit_filter all;
    if (!f) {
        rb_audit_filter_init(&all);
        f = &all;
    }
    if (!rb_fs_is_dir(dir))
        return rb_errmsg_set(err, RB_ERR_NOT_FOUND, "no audit directory %s", dir);
    char **files;
    size_t n_files;
    enum rb_status st = rb__audit_list_files(dir, &files, &n_files);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "cannot list %s", dir);
    size_t emitted = 0;
    for (size_t i = 0; i < n_files && st == RB_OK; i++) {
        /* Skip whole files before seq_min (names carry their first seq). */
        if (f->seq_min && i + 1 < n_files &&
            strtoull(files[i + 1] + strlen(RB_AUDIT_PREFIX), NULL, 10) <= f->seq_min)
            continue;
        char *path = rb_path_join(dir, files[i]);
        FILE *in = path ? fopen(path, "rb") : NULL;
        if (!in) {
            st = rb_errmsg_set(err, RB_ERR_IO, "cannot open %s/%s", dir, files[i]);
            free(path);
            break;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        uint64_t line_no = 0;
        while (st == RB_OK && (got = getline(&line, &cap, in)) > 0) {
            line_no++;
            if (line[got - 1] != '\n')
                break; /* incomplete last line: being written, or torn */
            size_t len = (size_t)got - 1;
            cJSON *rec = NULL;
            struct rb_errmsg jerr;
            uint64_t seq = 0;
            if (rb_json_parse(line, len, 16, &rec, &jerr) != RB_OK || !seq_of(rec, &seq)) {
                cJSON_Delete(rec);
                st = rb_errmsg_set(err, RB_ERR_CORRUPT,
                                   "%s line %llu is not a valid record; run 'ragbox audit verify'",
                                   files[i], (unsigned long long)line_no);
                break;
            }
            if (f->seq_max && seq > f->seq_max) {
                cJSON_Delete(rec);
                i = n_files; /* done */
                break;
            }
            if (matches(f, rec, seq, line, len)) {
                line[len] = '\0';
                st = fn(user, rec, line, len);
                emitted++;
            }
            cJSON_Delete(rec);
            if (f->limit && emitted >= f->limit) {
                i = n_files;
                break;
            }
        }
        free(line);
        fclose(in);
        free(path);
    }
    rb__audit_free_list(files, n_files);
    return st;
}

static const char *const csv_columns[] = {
    "seq",     "time",     "prev",       "key",      "action",           "user",
    "client",  "collection", "vertical", "query",    "chunks",           "model",
    "template", "template_version", "answer", "answer_sha256", "outcome", "latency_ms",
    "target",  "error",    "details",
};

/* RFC 4180 field; a leading = + - @ tab or CR gets a ' so spreadsheets do
 * not execute it as a formula (CSV injection). */
static void csv_field(FILE *out, const char *s)
{
    if (!s)
        return;
    bool formula = strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0';
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

struct export_ctx {
    enum rb_audit_format format;
    FILE *out;
    size_t n;
};

static enum rb_status export_one(void *user, const cJSON *rec, const char *line, size_t len)
{
    struct export_ctx *x = user;
    if (x->format == RB_AUDIT_FORMAT_JSONL) {
        fwrite(line, 1, len, x->out);
        fputc('\n', x->out);
    } else {
        for (size_t i = 0; i < RB_ARRAY_LEN(csv_columns); i++) {
            if (i)
                fputc(',', x->out);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, csv_columns[i]);
            if (!v || cJSON_IsNull(v))
                continue;
            if (cJSON_IsString(v)) {
                csv_field(x->out, v->valuestring);
            } else if (cJSON_IsNumber(v)) {
                fprintf(x->out, "%.0f", v->valuedouble);
            } else {
                char *text = cJSON_PrintUnformatted(v);
                if (!text)
                    return RB_ERR_NOMEM;
                csv_field(x->out, text);
                free(text);
            }
        }
        fputs("\r\n", x->out);
    }
    x->n++;
    return ferror(x->out) ? RB_ERR_IO : RB_OK;
}

enum rb_status rb_audit_export(const char *dir, const struct rb_audit_filter *f,
                               enum rb_audit_format format, FILE *out, size_t *n_out,
                               struct rb_errmsg *err)
{
    struct export_ctx x = {format, out, 0};
    if (format == RB_AUDIT_FORMAT_CSV) {
        for (size_t i = 0; i < RB_ARRAY_LEN(csv_columns); i++)
            fprintf(out, "%s%s", i ? "," : "", csv_columns[i]);
        fputs("\r\n", out);
    }
    enum rb_status st = rb_audit_scan(dir, f, export_one, &x, err);
    if (st == RB_ERR_IO && !err->text[0])
        rb_errmsg_set(err, st, "cannot write the export: %s", strerror(errno));
    if (fflush(out) != 0 && st == RB_OK)
        st = rb_errmsg_set(err, RB_ERR_IO, "cannot write the export: %s", strerror(errno));
    if (n_out)
        *n_out = x.n;
    return st;
}
