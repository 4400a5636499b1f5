/* Retention of the audit trail: removal of whole sealed segments, anchored by
 * signed prune records so that verification still proves nothing else was
 * removed (format and guarantees: audit.h, "retention").
 *
 * Order of a prune: (1) without any lock, walk the candidate segments from the
 * current anchor (seq continuity, prev chain, SHA-256 of each line) and find
 * the signed checkpoint sealing the last one; (2) under the appenders' flock,
 * check that no other prune ran meanwhile, append the signed prune record and
 * fdatasync it; (3) unlink the segments and sync the directory. A crash
 * between (2) and (3) leaves segments that the last prune record lists:
 * verify reports them as pending removal (not as tampering) and the next
 * prune deletes them. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "audit-impl.h"

#define PRUNE_MAGIC "ragbox-audit-prune\n"
/* {"sig":"<128 hex>","key":"<16 hex>","prune": */
#define PRUNE_PREFIX_LEN (8 + RB_AUDIT_SIG_HEX + 9 + RB_AUDIT_KEY_ID_HEX + 10)

/* ============================================================ prune records */

void rb__audit_prunes_free(struct rb__audit_prunes *p)
{
    if (!p)
        return;
    rb__audit_free_list(p->removed, p->n_removed);
    p->removed = NULL;
    p->n_removed = 0;
}

bool rb__audit_prunes_removed(const struct rb__audit_prunes *p, const char *name)
{
    for (size_t i = 0; i < p->n_removed; i++)
        if (strcmp(p->removed[i], name) == 0)
            return true;
    return false;
}

static bool json_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static bool hex_field(const cJSON *o, const char *key, size_t len)
{
    return rb__audit_is_hex(rb_json_str(o, key), len);
}

/* The seq a log file name carries (audit-<20 digits>.jsonl). */
static uint64_t name_seq(const char *name)
{
    return strtoull(name + strlen(RB_AUDIT_PREFIX), NULL, 10);
}

static bool valid_log_name(const char *name)
{
    size_t plen = strlen(RB_AUDIT_PREFIX), slen = strlen(RB_AUDIT_SUFFIX);
    if (!name || strlen(name) != plen + 20 + slen || strncmp(name, RB_AUDIT_PREFIX, plen) != 0 ||
        strcmp(name + plen + 20, RB_AUDIT_SUFFIX) != 0)
        return false;
    for (size_t i = 0; i < 20; i++)
        if (name[plen + i] < '0' || name[plen + i] > '9')
            return false;
    return true;
}

static enum rb_status bad(char *problem, size_t size, uint64_t *line, uint64_t n, const char *what)
{
    snprintf(problem, size, "%s", what);
    *line = n;
    return RB_ERR_VERIFY;
}

/* Checks one prune line against the state so far and advances it. */
static enum rb_status prune_line(const char *text, size_t len, EVP_PKEY *pub,
                                 struct rb__audit_prunes *p, char *problem, size_t psize,
                                 uint64_t *line, uint64_t n)
{
    if (len < PRUNE_PREFIX_LEN + 3 || strncmp(text, "{\"sig\":\"", 8) != 0 ||
        strncmp(text + 8 + RB_AUDIT_SIG_HEX, "\",\"key\":\"", 9) != 0 ||
        strncmp(text + 8 + RB_AUDIT_SIG_HEX + 9 + RB_AUDIT_KEY_ID_HEX, "\",\"prune\":", 10) != 0 ||
        text[len - 1] != '}')
        return bad(problem, psize, line, n, "malformed prune record");
    char sig[RB_AUDIT_SIG_HEX + 1];
    memcpy(sig, text + 8, RB_AUDIT_SIG_HEX);
    sig[RB_AUDIT_SIG_HEX] = '\0';
    const char *body = text + PRUNE_PREFIX_LEN;
    size_t body_len = len - PRUNE_PREFIX_LEN - 1;
    char *msg = malloc(strlen(PRUNE_MAGIC) + body_len);
    if (!msg)
        return RB_ERR_NOMEM;
    memcpy(msg, PRUNE_MAGIC, strlen(PRUNE_MAGIC));
    memcpy(msg + strlen(PRUNE_MAGIC), body, body_len);
    bool sig_ok = rb__audit_is_hex(sig, RB_AUDIT_SIG_HEX) &&
                  rb__audit_sig_ok(pub, msg, strlen(PRUNE_MAGIC) + body_len, sig);
    free(msg);
    if (!sig_ok)
        return bad(problem, psize, line, n,
                   "prune record signature is invalid (altered, or signed by another key)");
    cJSON *o = NULL;
    struct rb_errmsg jerr;
    if (rb_json_parse(body, body_len, 4, &o, &jerr) != RB_OK || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return bad(problem, psize, line, n, "prune record body is not a JSON object");
    }
    enum rb_status st = RB_OK;
    uint64_t first = 0, records = 0;
    const cJSON *removed = cJSON_GetObjectItemCaseSensitive(o, "removed");
    if (!json_u64(o, "first_seq", &first) || !hex_field(o, "prev", RB_SHA256_HEX_LEN) ||
        !hex_field(o, "prev_prune", RB_SHA256_HEX_LEN) || !json_u64(o, "records", &records) ||
        !rb_json_str(o, "time") || !rb_json_str(o, "before") || !cJSON_IsArray(removed) ||
        cJSON_GetArraySize(removed) < 1) {
        st = bad(problem, psize, line, n, "prune record lacks fields or has malformed ones");
        goto out;
    }
    if (strcmp(rb_json_str(o, "prev_prune"), p->last_hash) != 0) {
        st = bad(problem, psize, line, n,
                 "prune record does not follow the previous one (a prune record was removed "
                 "or reordered)");
        goto out;
    }
    uint64_t expect = p->base + 1, count = 0;
    const cJSON *seg;
    cJSON_ArrayForEach(seg, removed)
    {
        uint64_t f = 0, l = 0, bytes = 0;
        const char *file = rb_json_str(seg, "file");
        if (!valid_log_name(file) || !json_u64(seg, "first_seq", &f) ||
            !json_u64(seg, "last_seq", &l) || !json_u64(seg, "bytes", &bytes) ||
            !hex_field(seg, "sha256", RB_SHA256_HEX_LEN) || !rb_json_str(seg, "last_time") ||
            f != expect || l < f || name_seq(file) != f) {
            st = bad(problem, psize, line, n,
                     "prune record lists segments that do not continue the pruned range");
            goto out;
        }
        count += l - f + 1;
        expect = l + 1;
    }
    if (first != expect || count != records) {
        st = bad(problem, psize, line, n,
                 "prune record's first retained seq does not follow its removed segments");
        goto out;
    }
    cJSON_ArrayForEach(seg, removed)
    {
        char **grown = realloc(p->removed, (p->n_removed + 1) * sizeof *grown);
        if (!grown) {
            st = RB_ERR_NOMEM;
            goto out;
        }
        p->removed = grown;
        if (!(p->removed[p->n_removed] = rb_strdup(rb_json_str(seg, "file")))) {
            st = RB_ERR_NOMEM;
            goto out;
        }
        p->n_removed++;
    }
    p->base = first - 1;
    rb_strlcpy(p->prev, rb_json_str(o, "prev"), sizeof p->prev);
    uint8_t d[RB_SHA256_LEN];
    if ((st = rb_sha256(text, len, d)) == RB_OK)
        rb_hex_encode(d, RB_SHA256_LEN, p->last_hash);
    p->n++;
out:
    cJSON_Delete(o);
    return st;
}

enum rb_status rb__audit_prunes_load(const char *dir, EVP_PKEY *pub, struct rb__audit_prunes *p,
                                     char *problem, size_t problem_size, uint64_t *line)
{
    memset(p, 0, sizeof *p);
    rb_strlcpy(p->prev, RB_AUDIT_ZERO_HASH, sizeof p->prev);
    rb_strlcpy(p->last_hash, RB_AUDIT_ZERO_HASH, sizeof p->last_hash);
    *line = 0;
    char *path = rb_path_join(dir, RB_AUDIT_PRUNES);
    if (!path)
        return RB_ERR_NOMEM;
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(path, (size_t)1 << 30, &data, &len);
    free(path);
    if (st == RB_ERR_NOT_FOUND)
        return RB_OK;
    if (st != RB_OK) {
        snprintf(problem, problem_size, "cannot read %s (%s)", RB_AUDIT_PRUNES, rb_status_str(st));
        return st;
    }
    size_t pos = 0;
    uint64_t n = 0;
    while (pos < len && st == RB_OK) {
        n++;
        char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) {
            st = bad(problem, problem_size, line, n, "truncated prune record");
            break;
        }
        st = prune_line(data + pos, (size_t)(nl - (data + pos)), pub, p, problem, problem_size,
                        line, n);
        pos = (size_t)(nl - data) + 1;
    }
    free(data);
    if (st != RB_OK)
        rb__audit_prunes_free(p);
    return st;
}

/* ================================================================== prune */

void rb_audit_prune_report_free(struct rb_audit_prune_report *r)
{
    if (!r)
        return;
    free(r->removed);
    r->removed = NULL;
    r->n_removed = 0;
}

/* One candidate segment, walked from the anchor. */
struct walked {
    struct rb_audit_segment seg;
    char last_hash[RB_SHA256_HEX_LEN + 1];
    char sha256[RB_SHA256_HEX_LEN + 1]; /* of the whole file */
    char last_time[40];
};

/* Walks dir/name: every line a record continuing the chain from *seq/prev.
 * RB_ERR_VERIFY (with err) when it does not. */
static enum rb_status walk_segment(const char *dir, const char *name, uint64_t next_seq,
                                   const char *prev, struct walked *w, struct rb_errmsg *err)
{
    memset(w, 0, sizeof *w);
    rb_strlcpy(w->seg.file, name, sizeof w->seg.file);
    char *path = rb_path_join(dir, name);
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = path ? rb_fs_read_file(path, (size_t)1 << 34, &data, &len) : RB_ERR_NOMEM;
    free(path);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "cannot read %s/%s", dir, name);
    uint8_t d[RB_SHA256_LEN];
    if ((st = rb_sha256(data ? data : "", len, d)) != RB_OK) {
        free(data);
        return st;
    }
    rb_hex_encode(d, RB_SHA256_LEN, w->sha256);
    w->seg.bytes = len;
    w->seg.first_seq = next_seq;
    char chain[RB_SHA256_HEX_LEN + 1];
    rb_strlcpy(chain, prev, sizeof chain);
    size_t pos = 0;
    uint64_t line = 0;
    while (pos < len && st == RB_OK) {
        line++;
        char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) {
            st = rb_errmsg_set(err, RB_ERR_VERIFY, "%s line %llu: torn last line", name,
                               (unsigned long long)line);
            break;
        }
        size_t ll = (size_t)(nl - (data + pos));
        cJSON *rec = NULL;
        struct rb_errmsg jerr;
        uint64_t seq = 0;
        int64_t t = 0;
        const char *p = NULL, *time = NULL;
        if (rb_json_parse(data + pos, ll, 16, &rec, &jerr) == RB_OK && json_u64(rec, "seq", &seq)) {
            p = rb_json_str(rec, "prev");
            time = rb_json_str(rec, "time");
        }
        if (!p || !time || rb_audit_parse_time(time, &t) != RB_OK)
            st = rb_errmsg_set(err, RB_ERR_VERIFY, "%s line %llu is not a valid audit record", name,
                               (unsigned long long)line);
        else if (seq != next_seq || strcmp(p, chain) != 0)
            st = rb_errmsg_set(err, RB_ERR_VERIFY,
                               "%s line %llu (seq %llu) does not continue the chain at seq %llu",
                               name, (unsigned long long)line, (unsigned long long)seq,
                               (unsigned long long)next_seq);
        else if ((st = rb_sha256(data + pos, ll, d)) == RB_OK) {
            rb_hex_encode(d, RB_SHA256_LEN, chain);
            w->seg.last_seq = seq;
            w->seg.last_time_us = t;
            rb_strlcpy(w->last_time, time, sizeof w->last_time);
            next_seq++;
        }
        cJSON_Delete(rec);
        pos += ll + 1;
    }
    free(data);
    if (st == RB_OK && w->seg.last_seq == 0)
        st = rb_errmsg_set(err, RB_ERR_VERIFY, "%s is an empty sealed segment", name);
    rb_strlcpy(w->last_hash, chain, sizeof w->last_hash);
    return st;
}

/* Whether checkpoints.jsonl holds a valid signed checkpoint for (seq, hash). */
static bool sealed_by_checkpoint(const char *dir, EVP_PKEY *key, uint64_t seq, const char *hash)
{
    char *path = rb_path_join(dir, RB_AUDIT_CHECKPOINTS);
    char *data = NULL;
    size_t len = 0;
    bool found = false;
    if (path && rb_fs_read_file(path, (size_t)1 << 30, &data, &len) == RB_OK) {
        size_t pos = 0;
        while (pos < len && !found) {
            char *nl = memchr(data + pos, '\n', len - pos);
            size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;
            cJSON *cp = NULL;
            struct rb_errmsg jerr;
            uint64_t s = 0;
            if (rb_json_parse(data + pos, ll, 4, &cp, &jerr) == RB_OK && json_u64(cp, "seq", &s) &&
                s == seq) {
                const char *h = rb_json_str(cp, "hash"), *file = rb_json_str(cp, "file"),
                           *time = rb_json_str(cp, "time"), *reason = rb_json_str(cp, "reason"),
                           *prev_cp = rb_json_str(cp, "prev_cp"), *sig = rb_json_str(cp, "sig");
                if (h && file && time && reason && prev_cp && sig && strcmp(h, hash) == 0) {
                    size_t mlen = 0;
                    char *msg =
                        rb__audit_checkpoint_message(s, h, file, time, reason, prev_cp, &mlen);
                    found = msg && rb__audit_sig_ok(key, msg, mlen, sig);
                    free(msg);
                }
            }
            cJSON_Delete(cp);
            pos += ll + 1;
        }
    }
    free(data);
    free(path);
    return found;
}

/* The prev field of the first record of dir/name (false when unreadable). */
static bool first_prev(const char *dir, const char *name, char out[RB_SHA256_HEX_LEN + 1])
{
    char *path = rb_path_join(dir, name);
    FILE *f = path ? fopen(path, "rb") : NULL;
    free(path);
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    fclose(f);
    bool ok = false;
    if (got > 1 && line[got - 1] == '\n') {
        cJSON *rec = NULL;
        struct rb_errmsg jerr;
        if (rb_json_parse(line, (size_t)got - 1, 16, &rec, &jerr) == RB_OK) {
            const char *p = rb_json_str(rec, "prev");
            ok = p && rb_strlcpy(out, p, RB_SHA256_HEX_LEN + 1) &&
                 rb__audit_is_hex(out, RB_SHA256_HEX_LEN);
        }
        cJSON_Delete(rec);
    }
    free(line);
    return ok;
}

static enum rb_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RB_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? RB_OK : RB_ERR_IO;
}

/* Deletes the segments an earlier, interrupted prune recorded but left. */
static enum rb_status finish_pending(const char *dir, const struct rb__audit_prunes *p,
                                     char **files, size_t n_files, uint64_t *done,
                                     struct rb_errmsg *err)
{
    bool any = false;
    for (size_t i = 0; i < n_files; i++) {
        if (name_seq(files[i]) > p->base || !rb__audit_prunes_removed(p, files[i]))
            continue;
        char *path = rb_path_join(dir, files[i]);
        if (!path || (unlink(path) != 0 && errno != ENOENT)) {
            enum rb_status st = rb_errmsg_set(err, RB_ERR_IO, "cannot delete %s/%s: %s", dir,
                                              files[i], strerror(errno));
            free(path);
            return st;
        }
        free(path);
        (*done)++;
        any = true;
    }
    return any ? sync_dir(dir) : RB_OK;
}

static cJSON *segment_json(const struct walked *w)
{
    cJSON *s = cJSON_CreateObject();
    if (!s)
        return NULL;
    cJSON_AddStringToObject(s, "file", w->seg.file);
    cJSON_AddNumberToObject(s, "first_seq", (double)w->seg.first_seq);
    cJSON_AddNumberToObject(s, "last_seq", (double)w->seg.last_seq);
    cJSON_AddStringToObject(s, "last_time", w->last_time);
    cJSON_AddNumberToObject(s, "bytes", (double)w->seg.bytes);
    cJSON_AddStringToObject(s, "sha256", w->sha256);
    return s;
}

enum rb_status rb_audit_prune(const struct rb_audit_options *o, int64_t before_us, bool dry_run,
                              struct rb_audit_prune_report *r, struct rb_errmsg *err)
{
    memset(r, 0, sizeof *r);
    if (!o || !o->dir || !*o->dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "audit: no directory given");
    const char *dir = o->dir;
    if (!rb_fs_is_dir(dir)) {
        snprintf(r->note, sizeof r->note, "no audit directory yet");
        return RB_OK;
    }
    char *key_path = o->key_path ? rb_strdup(o->key_path) : rb__audit_default_key(dir);
    char *head_path = rb_path_join(dir, RB_AUDIT_HEAD);
    char *prunes_path = rb_path_join(dir, RB_AUDIT_PRUNES);
    char *lock_path = rb_path_join(dir, RB_AUDIT_LOCK);
    char **files = NULL;
    size_t n_files = 0;
    EVP_PKEY *key = NULL;
    struct rb__audit_prunes p = {0};
    struct walked *w = NULL;
    char *text = NULL, *line = NULL;
    cJSON *body = NULL;
    int lock_fd = -1;
    enum rb_status st = RB_OK;
    if (!key_path || !head_path || !prunes_path || !lock_path) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = rb__audit_list_files(dir, &files, &n_files)) != RB_OK) {
        st = rb_errmsg_set(err, st, "cannot list %s", dir);
        goto out;
    }
    if (n_files == 0) {
        snprintf(r->note, sizeof r->note, "the audit trail is empty");
        goto out;
    }
    if ((st = rb__audit_key_load(key_path, false, &key, err)) != RB_OK)
        goto out;
    char problem[512] = "";
    uint64_t pline = 0;
    if ((st = rb__audit_prunes_load(dir, key, &p, problem, sizeof problem, &pline)) != RB_OK) {
        st = rb_errmsg_set(err, st,
                           "%s/%s line %llu: %s; nothing pruned (run 'ragbox audit "
                           "verify')",
                           dir, RB_AUDIT_PRUNES, (unsigned long long)pline, problem);
        goto out;
    }
    /* The head names the live segment, which is never removed. */
    size_t hlen = 0;
    struct rb__audit_head h;
    if ((st = rb_fs_read_file(head_path, 1 << 16, &text, &hlen)) != RB_OK ||
        (st = rb__audit_head_parse(text, hlen, &h, err)) != RB_OK) {
        st = rb_errmsg_set(err, RB_ERR_CORRUPT, "cannot read the signed head %s; nothing pruned",
                           head_path);
        goto out;
    }
    free(text);
    text = NULL;
    if (!dry_run && (st = finish_pending(dir, &p, files, n_files, &r->completed, err)) != RB_OK)
        goto out;
    if (!(w = calloc(n_files, sizeof *w))) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Candidates: the retained files from the anchor, oldest first, up to (not
     * including) the live segment and never the last file. */
    size_t first = 0;
    while (first < n_files && name_seq(files[first]) <= p.base &&
           rb__audit_prunes_removed(&p, files[first]))
        first++; /* pending removal (dry run, or just deleted above) */
    uint64_t next_seq = p.base + 1;
    char chain[RB_SHA256_HEX_LEN + 1];
    rb_strlcpy(chain, p.prev, sizeof chain);
    size_t n = 0; /* walked and eligible */
    for (size_t i = first; i + 1 < n_files; i++) {
        if (strcmp(files[i], h.file) == 0)
            break;
        if (name_seq(files[i]) != next_seq) {
            st = rb_errmsg_set(err, RB_ERR_VERIFY,
                               "%s does not start at seq %llu where the retained chain begins; "
                               "nothing pruned (run 'ragbox audit verify')",
                               files[i], (unsigned long long)next_seq);
            goto out;
        }
        struct walked *cur = &w[n];
        struct rb_errmsg werr = {{0}};
        if ((st = walk_segment(dir, files[i], next_seq, chain, cur, &werr)) != RB_OK) {
            rb_errmsg_set(err, st,
                          "%s; the segment is kept as evidence and nothing was pruned "
                          "(run 'ragbox audit verify')",
                          werr.text);
            goto out;
        }
        if (cur->seg.last_time_us >= before_us) {
            r->next_due_last_us = cur->seg.last_time_us;
            break;
        }
        next_seq = cur->seg.last_seq + 1;
        rb_strlcpy(chain, cur->last_hash, sizeof chain);
        n++;
    }
    /* The boundary must be sealed by a signed checkpoint and continued by the
     * next segment; back off to a boundary that is (rotation always writes
     * one, so this only trims after damage). */
    while (n > 0) {
        struct walked *last = &w[n - 1];
        char next_prev[RB_SHA256_HEX_LEN + 1];
        size_t next_i = first + n;
        if (sealed_by_checkpoint(dir, key, last->seg.last_seq, last->last_hash) &&
            next_i < n_files && first_prev(dir, files[next_i], next_prev) &&
            strcmp(next_prev, last->last_hash) == 0)
            break;
        snprintf(r->note, sizeof r->note,
                 "%s is not sealed by a signed checkpoint continued by the next segment: kept",
                 last->seg.file);
        if (!r->next_due_last_us || last->seg.last_time_us < r->next_due_last_us)
            r->next_due_last_us = last->seg.last_time_us;
        n--;
    }
    r->n_kept = n_files - first - n;
    r->first_kept_seq = n ? w[n - 1].seg.last_seq + 1 : p.base + 1;
    if (n == 0) {
        if (!r->note[0])
            snprintf(r->note, sizeof r->note, "no sealed segment is older than the cutoff");
        goto out;
    }
    if (!(r->removed = calloc(n, sizeof *r->removed))) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        r->removed[i] = w[i].seg;
        r->records += w[i].seg.last_seq - w[i].seg.first_seq + 1;
        r->bytes += w[i].seg.bytes;
    }
    r->n_removed = n;
    if (dry_run)
        goto out;

    /* ---- write the signed prune record under the appenders' lock */
    char when[40], before[40];
    int64_t now = o->now_us ? o->now_us(o->now_user) : rb_time_now_us();
    rb_time_format_utc(now, when, sizeof when);
    rb_time_format_utc(before_us, before, sizeof before);
    body = cJSON_CreateObject();
    cJSON *arr = body ? cJSON_CreateArray() : NULL;
    if (!arr) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_AddNumberToObject(body, "first_seq", (double)r->first_kept_seq);
    cJSON_AddStringToObject(body, "prev", w[n - 1].last_hash);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, segment_json(&w[i]));
    cJSON_AddItemToObject(body, "removed", arr);
    cJSON_AddNumberToObject(body, "records", (double)r->records);
    cJSON_AddStringToObject(body, "before", before);
    cJSON_AddStringToObject(body, "time", when);
    cJSON_AddStringToObject(body, "prev_prune", p.last_hash);
    if (!(text = cJSON_PrintUnformatted(body))) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t blen = strlen(text);
    char *msg = rb_asprintf("%s%s", PRUNE_MAGIC, text);
    char sig[RB_AUDIT_SIG_HEX + 1], key_id[RB_AUDIT_KEY_ID_HEX + 1];
    st = msg ? rb__audit_sign(key, msg, strlen(msg), sig) : RB_ERR_NOMEM;
    free(msg);
    if (st != RB_OK) {
        st = rb_errmsg_set(err, st, "cannot sign the prune record");
        goto out;
    }
    rb__audit_key_id(key, key_id);
    line = rb_asprintf("{\"sig\":\"%s\",\"key\":\"%s\",\"prune\":%s}\n", sig, key_id, text);
    if (!line || strlen(line) != PRUNE_PREFIX_LEN + blen + 2) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "cannot format the prune record");
        goto out;
    }
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        st = rb_errmsg_set(err, RB_ERR_IO, "cannot open %s: %s", lock_path, strerror(errno));
        goto out;
    }
    while (flock(lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            st = rb_errmsg_set(err, RB_ERR_IO, "cannot lock %s: %s", lock_path, strerror(errno));
            goto out;
        }
    }
    {
        /* Another prune since we read the anchor? Then our plan is stale. */
        struct rb__audit_prunes again;
        if ((st = rb__audit_prunes_load(dir, key, &again, problem, sizeof problem, &pline)) !=
            RB_OK) {
            st = rb_errmsg_set(err, st, "%s changed: %s", RB_AUDIT_PRUNES, problem);
            goto out;
        }
        bool same = again.n == p.n && strcmp(again.last_hash, p.last_hash) == 0;
        rb__audit_prunes_free(&again);
        if (!same) {
            st = rb_errmsg_set(err, RB_ERR_BUSY,
                               "another prune ran at the same time; nothing pruned (run again)");
            goto out;
        }
    }
    bool created = !rb_fs_exists(prunes_path);
    int fd = open(prunes_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = rb_errmsg_set(err, RB_ERR_IO, "cannot open %s: %s", prunes_path, strerror(errno));
        goto out;
    }
    size_t left = strlen(line);
    const char *q = line;
    while (left > 0 && st == RB_OK) {
        ssize_t wr = write(fd, q, left);
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr <= 0)
            st = RB_ERR_IO;
        else {
            q += wr;
            left -= (size_t)wr;
        }
    }
    if (st == RB_OK && fdatasync(fd) != 0)
        st = RB_ERR_IO;
    close(fd);
    if (st == RB_OK && created)
        st = sync_dir(dir);
    if (st != RB_OK) {
        st = rb_errmsg_set(err, st, "cannot write %s: %s; nothing was deleted", prunes_path,
                           strerror(errno));
        goto out;
    }
    /* ---- the record is durable: delete the segments */
    for (size_t i = 0; i < n; i++) {
        char *path = rb_path_join(dir, w[i].seg.file);
        if (!path || (unlink(path) != 0 && errno != ENOENT)) {
            st = rb_errmsg_set(err, RB_ERR_IO,
                               "cannot delete %s/%s: %s (the prune is recorded; the next run "
                               "deletes it)",
                               dir, w[i].seg.file, strerror(errno));
            free(path);
            goto out;
        }
        free(path);
    }
    if ((st = sync_dir(dir)) != RB_OK)
        st = rb_errmsg_set(err, st, "cannot sync %s", dir);
out:
    if (lock_fd >= 0) {
        flock(lock_fd, LOCK_UN);
        close(lock_fd);
    }
    cJSON_Delete(body);
    free(line);
    free(text);
    free(w);
    rb__audit_prunes_free(&p);
    EVP_PKEY_free(key);
    rb__audit_free_list(files, n_files);
    free(key_path);
    free(head_path);
    free(prunes_path);
    free(lock_path);
    if (st != RB_OK)
        rb_audit_prune_report_free(r);
    return st;
}
