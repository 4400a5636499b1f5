/* The audit writer: canonical records appended under a process mutex and an
 * flock, chained by SHA-256, sealed by a signed head after every batch and
 * by signed checkpoints every N records, on rotation and on close.
 *
 * Group commit: threads appending through one handle queue their record
 * bodies; the first becomes the leader, takes every queued record, and under
 * the flock numbers and chains them, writes them with one write(2), makes
 * them durable with one fdatasync, and re-signs the head once. Each caller
 * returns only after the batch holding its record is durable. Records that
 * arrive while a batch is being committed form the next batch. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "audit-impl.h"

struct rb_audit {
    struct rb_audit_options opt;
    char *dir;
    char *key_path;
    char *pub_path;
    char *head_path;
    char *cp_path;
    EVP_PKEY *key;
    char key_id[RB_AUDIT_KEY_ID_HEX + 1];
    int lock_fd;
    int log_fd;            /* current file, O_APPEND; -1 when none open */
    char log_name[64];     /* its name */
    uint64_t appended;     /* records appended by this handle since its last checkpoint */
    pthread_mutex_t mutex; /* the commit lock: held while writing (leader, checkpoint, close) */
    /* group commit queue (under queue_lock) */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;
    struct audit_pending *queue_head, *queue_tail;
    bool committing;       /* a leader is committing a batch */
    struct rb_errmsg err;
    /* The head as this handle last wrote or verified it, with its exact
     * bytes: while head.json holds the same bytes its signature need not be
     * checked again (inode/mtime are not enough: inodes are reused and
     * mtimes are coarse, and other processes rewrite the head). */
    bool cached;
    struct rb__audit_head cache;
    char *cache_text;
    size_t cache_len;
};

/* One queued record of a group commit. */
struct audit_pending {
    cJSON *body;               /* the record body (consumed by the leader) */
    uint64_t seq;              /* assigned seq on success */
    enum rb_status st;
    bool done;                 /* set by the leader under queue_lock */
    struct rb_errmsg err;      /* why, when st != RB_OK */
    struct audit_pending *next;
};

#define DEFAULT_CHECKPOINT_EVERY 1000
#define DEFAULT_ROTATE_BYTES ((uint64_t)64 << 20)

void rb_audit_options_default(struct rb_audit_options *o)
{
    memset(o, 0, sizeof *o);
    o->checkpoint_every = DEFAULT_CHECKPOINT_EVERY;
    o->rotate_bytes = DEFAULT_ROTATE_BYTES;
    o->answer_policy = RB_AUDIT_ANSWER_HASH;
    o->sync = true;
    o->syslog = true;
}

enum rb_status rb_audit_options_from_config(struct rb_audit_options *o, const struct rb_config *cfg,
                                            const char *data_dir, char **paths_out,
                                            struct rb_errmsg *err)
{
    rb_audit_options_default(o);
    *paths_out = NULL;
    const char *dir = cfg ? rb_config_str(cfg, "audit", "dir", NULL) : NULL;
    const char *key = cfg ? rb_config_str(cfg, "audit", "key", NULL) : NULL;
    /* Both paths in one allocation: "dir\0key\0". */
    char *d = dir ? rb_strdup(dir) : rb_path_join(data_dir, "audit");
    char *k = key ? rb_strdup(key) : rb_asprintf("%s/keys/audit-ed25519.pem", data_dir);
    if (!d || !k) {
        free(d);
        free(k);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    size_t dl = strlen(d), kl = strlen(k);
    char *both = malloc(dl + kl + 2);
    if (!both) {
        free(d);
        free(k);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    memcpy(both, d, dl + 1);
    memcpy(both + dl + 1, k, kl + 1);
    free(d);
    free(k);
    o->dir = both;
    o->key_path = both + dl + 1;
    *paths_out = both;
    if (!cfg)
        return RB_OK;
    int64_t every, mb, hours;
    enum rb_status st;
    if ((st = rb_config_int(cfg, "audit", "checkpoint_every", DEFAULT_CHECKPOINT_EVERY, 1,
                            100000000, &every, err)) != RB_OK ||
        (st = rb_config_int(cfg, "audit", "rotate_mb", 64, 1, 1 << 20, &mb, err)) != RB_OK ||
        (st = rb_config_int(cfg, "audit", "rotate_hours", 0, 0, 24 * 366, &hours, err)) != RB_OK ||
        (st = rb_config_bool(cfg, "audit", "sync", true, &o->sync, err)) != RB_OK ||
        (st = rb_config_bool(cfg, "audit", "syslog", true, &o->syslog, err)) != RB_OK) {
        free(both);
        *paths_out = NULL;
        return st;
    }
    o->checkpoint_every = (uint64_t)every;
    o->rotate_bytes = (uint64_t)mb << 20;
    o->rotate_seconds = hours * 3600;
    const char *answers = rb_config_str(cfg, "audit", "answers", "hash");
    if (strcmp(answers, "hash") == 0)
        o->answer_policy = RB_AUDIT_ANSWER_HASH;
    else if (strcmp(answers, "full") == 0)
        o->answer_policy = RB_AUDIT_ANSWER_FULL;
    else if (strcmp(answers, "none") == 0)
        o->answer_policy = RB_AUDIT_ANSWER_NONE;
    else {
        free(both);
        *paths_out = NULL;
        return rb_errmsg_set(err, RB_ERR_CONFIG, "audit.answers: expected hash, full or none, got '%s'",
                             answers);
    }
    return RB_OK;
}

const char *rb_audit_errmsg(const struct rb_audit *a)
{
    return a ? a->err.text : "no audit handle";
}

const char *rb_audit_public_key_path(const struct rb_audit *a)
{
    return a->pub_path;
}

/* ============================================================== low level */

static enum rb_status write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RB_ERR_IO;
        p += w;
        len -= (size_t)w;
    }
    return RB_OK;
}

/* Replaces path atomically: tmp + write (+ fdatasync when sync) + rename.
 *
 * Why no fsync of the directory: the head is a seal, not the record's
 * durability point (the log's fdatasync is). The rename is carried by the
 * filesystem journal, which the next batch's fdatasync of the log commits;
 * if a crash loses it, the previous head (itself complete: its bytes were
 * synced before its rename) survives and the next appender adopts the
 * chain-continuing records beyond it (reconcile). Syncing the temporary
 * file's bytes before the rename is what keeps a crash from leaving an empty
 * or torn head. */
static enum rb_status replace_file(const char *path, const char *data, size_t len, bool sync)
{
    char *tmp = rb_asprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp)
        return RB_ERR_NOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    enum rb_status st = fd < 0 ? RB_ERR_IO : write_all(fd, data, len);
    if (st == RB_OK && sync && fdatasync(fd) != 0)
        st = RB_ERR_IO;
    if (fd >= 0 && close(fd) != 0)
        st = RB_ERR_IO;
    if (st == RB_OK && rename(tmp, path) != 0)
        st = RB_ERR_IO;
    if (st != RB_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

static void remember_head(struct rb_audit *a, const struct rb__audit_head *h, char *text,
                          size_t len)
{
    free(a->cache_text);
    a->cache_text = text; /* takes ownership */
    a->cache_len = len;
    a->cached = text != NULL;
    if (a->cached)
        a->cache = *h;
}

static enum rb_status read_head(struct rb_audit *a, struct rb__audit_head *h, bool *exists)
{
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(a->head_path, 1 << 16, &text, &len);
    if (st == RB_OK && a->cached && len == a->cache_len && memcmp(text, a->cache_text, len) == 0) {
        free(text);
        *h = a->cache;
        *exists = true;
        return RB_OK;
    }
    if (st == RB_ERR_NOT_FOUND) {
        *exists = false;
        memset(h, 0, sizeof *h);
        rb_strlcpy(h->hash, RB_AUDIT_ZERO_HASH, sizeof h->hash);
        rb_strlcpy(h->cp_hash, RB_AUDIT_ZERO_HASH, sizeof h->cp_hash);
        return RB_OK;
    }
    if (st != RB_OK)
        return rb_errmsg_set(&a->err, st, "cannot read %s", a->head_path);
    *exists = true;
    st = rb__audit_head_parse(text, len, h, &a->err);
    if (st != RB_OK) {
        free(text);
        return st;
    }
    size_t mlen;
    char *msg = rb__audit_head_message(h, &mlen);
    if (!msg)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    bool ok = rb__audit_sig_ok(a->key, msg, mlen, h->sig);
    free(msg);
    if (!ok) {
        free(text);
        return rb_errmsg_set(&a->err, RB_ERR_VERIFY,
                             "the signature of %s does not verify with %s: the audit head was "
                             "altered or signed by another key; run 'ragbox audit verify'",
                             a->head_path, a->key_path);
    }
    remember_head(a, h, text, len);
    return RB_OK;
}

/* The signed head's text for *h (caller frees), or NULL with a->err set. */
static char *head_text(struct rb_audit *a, struct rb__audit_head *h)
{
    rb_strlcpy(h->key_id, a->key_id, sizeof h->key_id);
    size_t mlen;
    char *msg = rb__audit_head_message(h, &mlen);
    if (!msg) {
        rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    enum rb_status st = rb__audit_sign(a->key, msg, mlen, h->sig);
    free(msg);
    if (st != RB_OK) {
        rb_errmsg_set(&a->err, st, "cannot sign the audit head");
        return NULL;
    }
    char *text = rb_asprintf("{\"seq\":%llu,\"hash\":\"%s\",\"file\":\"%s\",\"size\":%llu,"
                             "\"file_start_us\":%lld,\"cp_seq\":%llu,\"cp_hash\":\"%s\","
                             "\"key\":\"%s\",\"sig\":\"%s\"}\n",
                             (unsigned long long)h->seq, h->hash, h->file,
                             (unsigned long long)h->size, (long long)h->file_start_us,
                             (unsigned long long)h->cp_seq, h->cp_hash, h->key_id, h->sig);
    if (!text)
        rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    return text;
}

static enum rb_status write_head(struct rb_audit *a, struct rb__audit_head *h)
{
    char *text = head_text(a, h);
    if (!text)
        return a->err.text[0] ? RB_ERR_CRYPTO : RB_ERR_NOMEM;
    remember_head(a, h, NULL, 0);
    size_t len = strlen(text);
    enum rb_status st = replace_file(a->head_path, text, len, a->opt.sync);
    if (st != RB_OK) {
        free(text);
        return rb_errmsg_set(&a->err, st, "cannot write %s: %s", a->head_path, strerror(errno));
    }
    remember_head(a, h, text, len);
    return RB_OK;
}

/* fdatasync of a file on a helper thread, so two syncs overlap. */
struct sync_job {
    int fd;
    int rc;
};

static void *sync_main(void *p)
{
    struct sync_job *j = p;
    j->rc = fdatasync(j->fd);
    return NULL;
}

/* Makes the batch in the log durable and seals it with the head for *h in
 * one sync's time: the new head is written to its temporary file, and its
 * fdatasync runs on a helper thread while this one fdatasyncs the log. Only
 * when both are durable is the head renamed into place, so a durable head
 * never names records that are not. */
static enum rb_status sync_and_seal(struct rb_audit *a, struct rb__audit_head *h)
{
    char *text = head_text(a, h);
    if (!text)
        return RB_ERR_NOMEM;
    size_t len = strlen(text);
    char *tmp = rb_asprintf("%s.tmp.%ld", a->head_path, (long)getpid());
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    enum rb_status st = fd < 0 ? RB_ERR_IO : write_all(fd, text, len);
    struct sync_job job = {fd, 0};
    pthread_t th;
    bool threaded = st == RB_OK && pthread_create(&th, NULL, sync_main, &job) == 0;
    if (st == RB_OK && !threaded)
        job.rc = fdatasync(fd); /* no thread: one after the other */
    int log_rc = fdatasync(a->log_fd);
    int log_errno = errno;
    if (threaded)
        pthread_join(th, NULL);
    if (fd >= 0 && close(fd) != 0)
        st = RB_ERR_IO;
    if (st == RB_OK && log_rc != 0) {
        errno = log_errno;
        st = rb_errmsg_set(&a->err, RB_ERR_IO, "cannot sync the audit log %s: %s", a->log_name,
                           strerror(log_errno));
        if (tmp)
            unlink(tmp);
        free(tmp);
        free(text);
        return st;
    }
    if (st == RB_OK && job.rc != 0)
        st = RB_ERR_IO;
    remember_head(a, h, NULL, 0);
    if (st == RB_OK && rename(tmp, a->head_path) != 0)
        st = RB_ERR_IO;
    if (st != RB_OK) {
        if (tmp)
            unlink(tmp);
        free(tmp);
        free(text);
        return rb_errmsg_set(&a->err, st, "cannot write %s: %s", a->head_path, strerror(errno));
    }
    free(tmp);
    remember_head(a, h, text, len);
    return RB_OK;
}

static enum rb_status open_log(struct rb_audit *a, const char *name, bool create)
{
    if (a->log_fd >= 0 && strcmp(a->log_name, name) == 0)
        return RB_OK;
    if (a->log_fd >= 0)
        close(a->log_fd);
    a->log_fd = -1;
    char *path = rb_path_join(a->dir, name);
    if (!path)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) {
        enum rb_status st = rb_errmsg_set(&a->err, errno == ENOENT ? RB_ERR_CORRUPT : RB_ERR_IO,
                                          "cannot open the audit log %s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    if (create && a->opt.sync && rb_fs_sync_parent(path) != RB_OK) {
        close(fd);
        free(path);
        return rb_errmsg_set(&a->err, RB_ERR_IO, "cannot sync %s", a->dir);
    }
    free(path);
    a->log_fd = fd;
    rb_strlcpy(a->log_name, name, sizeof a->log_name);
    return RB_OK;
}

/* Takes the cross-process lock (the caller holds the mutex). */
static enum rb_status lock_dir(struct rb_audit *a)
{
    while (flock(a->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return rb_errmsg_set(&a->err, RB_ERR_IO, "cannot lock %s/%s: %s", a->dir,
                                 RB_AUDIT_LOCK, strerror(errno));
    }
    return RB_OK;
}

static void unlock_dir(struct rb_audit *a)
{
    flock(a->lock_fd, LOCK_UN);
}

/* Brings *h up to date with the log file: adopts complete records written
 * after the head (a crash between a batch's fdatasync and its head), cuts a
 * torn partial line (never acknowledged), refuses a log shorter than the
 * head (truncation). The unsealed tail is read in windows, so however many
 * records a crash left unsealed, memory stays bounded. Called with the lock
 * held, log file open. */
static enum rb_status reconcile(struct rb_audit *a, struct rb__audit_head *h)
{
    struct stat sb;
    if (fstat(a->log_fd, &sb) != 0)
        return rb_errmsg_set(&a->err, RB_ERR_IO, "cannot stat %s", a->log_name);
    uint64_t size = (uint64_t)sb.st_size;
    if (size == h->size)
        return RB_OK;
    if (size < h->size)
        return rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                             "audit log %s/%s is shorter (%llu bytes) than its signed head says "
                             "(%llu): records were removed; run 'ragbox audit verify'",
                             a->dir, a->log_name, (unsigned long long)size,
                             (unsigned long long)h->size);
    const size_t window = RB_AUDIT_MAX_LINE + 1;
    char *buf = malloc(window + 1);
    if (!buf)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st = RB_OK;
    uint64_t adopted = 0;
    while (st == RB_OK && h->size < size) {
        uint64_t left = size - h->size;
        size_t want = left < window ? (size_t)left : window;
        ssize_t got = pread(a->log_fd, buf, want, (off_t)h->size);
        if (got != (ssize_t)want) {
            st = rb_errmsg_set(&a->err, RB_ERR_IO, "cannot read %s", a->log_name);
            break;
        }
        buf[want] = '\0';
        size_t pos = 0;
        bool progressed = false;
        while (pos < want) {
            char *nl = memchr(buf + pos, '\n', want - pos);
            if (!nl) {
                if (want == left) { /* the file's end: a torn tail */
                    RB_WARN("audit",
                            "%s: cutting a torn, unacknowledged partial record (%zu bytes) at "
                            "offset %llu",
                            a->log_name, want - pos, (unsigned long long)h->size);
                    if (ftruncate(a->log_fd, (off_t)h->size) != 0)
                        st = rb_errmsg_set(&a->err, RB_ERR_IO, "cannot truncate %s", a->log_name);
                    size = h->size;
                } else if (!progressed) {
                    st = rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                                       "audit log %s has an over-long line after its signed head; "
                                       "run 'ragbox audit verify'",
                                       a->log_name);
                }
                break; /* next window starts at the first unprocessed line */
            }
            size_t line_len = (size_t)(nl - (buf + pos));
            cJSON *rec = NULL;
            struct rb_errmsg jerr;
            bool ok = rb_json_parse(buf + pos, line_len, 16, &rec, &jerr) == RB_OK;
            uint64_t seq = 0;
            const char *prev = NULL;
            if (ok) {
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(rec, "seq");
                seq = cJSON_IsNumber(s) ? (uint64_t)s->valuedouble : 0;
                prev = rb_json_str(rec, "prev");
            }
            ok = ok && seq == h->seq + 1 && prev && strcmp(prev, h->hash) == 0;
            cJSON_Delete(rec);
            if (!ok) {
                st = rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                                   "audit log %s has a record after its signed head that does not "
                                   "continue the chain; run 'ragbox audit verify'",
                                   a->log_name);
                break;
            }
            uint8_t d[RB_SHA256_LEN];
            if ((st = rb_sha256(buf + pos, line_len, d)) != RB_OK)
                break;
            rb_hex_encode(d, RB_SHA256_LEN, h->hash);
            h->seq = seq;
            pos += line_len + 1;
            h->size += line_len + 1;
            adopted++;
            progressed = true;
        }
    }
    free(buf);
    if (adopted > 0)
        RB_WARN("audit", "%s: sealed %llu record(s) up to seq %llu left unsealed by an interrupted "
                "appender", a->log_name, (unsigned long long)adopted, (unsigned long long)h->seq);
    if (st == RB_OK)
        st = write_head(a, h);
    return st;
}

/* Appends a signed checkpoint for the head's last record. Lock held. */
/* The seq and SHA-256 of the last line of checkpoints.jsonl (0 and zeros
 * when none): the next checkpoint chains to what is really in the file, even
 * when a crash kept the head from recording the last one. */
static enum rb_status last_checkpoint(struct rb_audit *a, uint64_t *seq, char hash[RB_SHA256_HEX_LEN + 1])
{
    *seq = 0;
    rb_strlcpy(hash, RB_AUDIT_ZERO_HASH, RB_SHA256_HEX_LEN + 1);
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(a->cp_path, (size_t)1 << 30, &data, &len);
    if (st == RB_ERR_NOT_FOUND)
        return RB_OK;
    if (st != RB_OK)
        return rb_errmsg_set(&a->err, st, "cannot read %s", a->cp_path);
    size_t end = len;
    while (end > 0 && data[end - 1] == '\n')
        end--;
    if (end < len && end > 0) {
        size_t start = end;
        while (start > 0 && data[start - 1] != '\n')
            start--;
        cJSON *cp = NULL;
        struct rb_errmsg jerr;
        if (rb_json_parse(data + start, end - start, 4, &cp, &jerr) == RB_OK) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(cp, "seq");
            if (cJSON_IsNumber(s) && s->valuedouble >= 1)
                *seq = (uint64_t)s->valuedouble;
        }
        cJSON_Delete(cp);
        uint8_t d[RB_SHA256_LEN];
        if ((st = rb_sha256(data + start, end - start, d)) == RB_OK)
            rb_hex_encode(d, RB_SHA256_LEN, hash);
    } else if (len > 0) {
        st = rb_errmsg_set(&a->err, RB_ERR_CORRUPT, "%s ends in a torn line", a->cp_path);
    }
    free(data);
    return st;
}

static enum rb_status checkpoint_locked(struct rb_audit *a, struct rb__audit_head *h,
                                        const char *reason)
{
    if (h->seq == 0 || h->cp_seq == h->seq)
        return RB_OK;
    uint64_t file_cp_seq;
    char file_cp_hash[RB_SHA256_HEX_LEN + 1];
    enum rb_status lst = last_checkpoint(a, &file_cp_seq, file_cp_hash);
    if (lst != RB_OK)
        return lst;
    if (file_cp_seq != h->cp_seq || strcmp(file_cp_hash, h->cp_hash) != 0) {
        if (file_cp_seq < h->cp_seq)
            return rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                                 "%s lacks the checkpoint at seq %llu that the head names; run "
                                 "'ragbox audit verify'",
                                 a->cp_path, (unsigned long long)h->cp_seq);
        /* A checkpoint written just before a crash, not yet in the head. */
        h->cp_seq = file_cp_seq;
        rb_strlcpy(h->cp_hash, file_cp_hash, sizeof h->cp_hash);
        if (h->cp_seq == h->seq)
            return write_head(a, h);
    }
    char when[40];
    rb_time_format_utc(rb_time_now_us(), when, sizeof when);
    size_t mlen;
    char *msg = rb__audit_checkpoint_message(h->seq, h->hash, h->file, when, reason, h->cp_hash,
                                             &mlen);
    if (!msg)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    char sig[RB_AUDIT_SIG_HEX + 1];
    enum rb_status st = rb__audit_sign(a->key, msg, mlen, sig);
    free(msg);
    if (st != RB_OK)
        return rb_errmsg_set(&a->err, st, "cannot sign a checkpoint");
    char *line = rb_asprintf("{\"seq\":%llu,\"hash\":\"%s\",\"file\":\"%s\",\"time\":\"%s\","
                             "\"reason\":\"%s\",\"prev_cp\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}",
                             (unsigned long long)h->seq, h->hash, h->file, when, reason,
                             h->cp_hash, a->key_id, sig);
    if (!line)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "out of memory");
    uint8_t d[RB_SHA256_LEN];
    st = rb_sha256(line, strlen(line), d);
    int fd = open(a->cp_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (st == RB_OK && fd < 0)
        st = RB_ERR_IO;
    if (st == RB_OK) {
        size_t n = strlen(line);
        line[n] = '\n'; /* replaces the NUL: write n + 1 bytes */
        st = write_all(fd, line, n + 1);
        if (st == RB_OK && a->opt.sync && fdatasync(fd) != 0)
            st = RB_ERR_IO;
    }
    if (fd >= 0)
        close(fd);
    free(line);
    if (st != RB_OK)
        return rb_errmsg_set(&a->err, st, "cannot write %s: %s", a->cp_path, strerror(errno));
    rb_hex_encode(d, RB_SHA256_LEN, h->cp_hash);
    h->cp_seq = h->seq;
    a->appended = 0;
    return write_head(a, h);
}

/* ============================================================ open/close */

enum rb_status rb_audit_open(const struct rb_audit_options *o, struct rb_audit **out,
                             struct rb_errmsg *err)
{
    *out = NULL;
    if (!o || !o->dir || !*o->dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "audit: no directory given");
    struct rb_audit *a = calloc(1, sizeof *a);
    if (!a)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    a->opt = *o;
    if (!a->opt.checkpoint_every)
        a->opt.checkpoint_every = DEFAULT_CHECKPOINT_EVERY;
    if (!a->opt.rotate_bytes)
        a->opt.rotate_bytes = DEFAULT_ROTATE_BYTES;
    a->lock_fd = -1;
    a->log_fd = -1;
    pthread_mutex_init(&a->mutex, NULL);
    pthread_mutex_init(&a->queue_lock, NULL);
    pthread_cond_init(&a->queue_cond, NULL);
    a->dir = rb_strdup(o->dir);
    a->key_path = o->key_path ? rb_strdup(o->key_path) : rb__audit_default_key(o->dir);
    a->pub_path = a->key_path ? rb__audit_pub_path(a->key_path) : NULL;
    a->head_path = rb_path_join(o->dir, RB_AUDIT_HEAD);
    a->cp_path = rb_path_join(o->dir, RB_AUDIT_CHECKPOINTS);
    a->opt.dir = a->dir;
    a->opt.key_path = a->key_path;
    enum rb_status st = RB_OK;
    if (!a->dir || !a->key_path || !a->pub_path || !a->head_path || !a->cp_path) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (rb_fs_mkdirs(a->dir, 0700) != RB_OK) {
        st = rb_errmsg_set(err, RB_ERR_IO, "cannot create the audit directory %s", a->dir);
        goto fail;
    }
    /* The key must not sit inside the log directory it protects. */
    char *real_dir = realpath(a->dir, NULL);
    if (real_dir) {
        size_t rl = strlen(real_dir);
        char *key_dir = rb_strdup(a->key_path);
        char *slash = key_dir ? strrchr(key_dir, '/') : NULL;
        if (slash)
            *slash = '\0';
        char *real_key_dir = slash ? realpath(key_dir, NULL) : NULL;
        bool inside = real_key_dir && strncmp(real_key_dir, real_dir, rl) == 0 &&
                      (real_key_dir[rl] == '\0' || real_key_dir[rl] == '/');
        free(real_key_dir);
        free(key_dir);
        free(real_dir);
        if (inside) {
            st = rb_errmsg_set(err, RB_ERR_CONFIG,
                               "the audit signing key %s must be kept outside the audit "
                               "directory %s",
                               a->key_path, a->dir);
            goto fail;
        }
    }
    if ((st = rb__audit_key_load(a->key_path, true, &a->key, err)) != RB_OK)
        goto fail;
    rb__audit_key_id(a->key, a->key_id);
    if (!rb_fs_exists(a->pub_path) && rb__audit_pubkey_write(a->key, a->pub_path, err) != RB_OK) {
        st = RB_ERR_IO;
        goto fail;
    }
    char *lock_path = rb_path_join(a->dir, RB_AUDIT_LOCK);
    if (!lock_path) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    a->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock_path);
    if (a->lock_fd < 0) {
        st = rb_errmsg_set(err, RB_ERR_IO, "cannot open the audit lock in %s: %s", a->dir,
                           strerror(errno));
        goto fail;
    }
    /* Check the head and the last file agree now, not at the first append. */
    if ((st = lock_dir(a)) != RB_OK) {
        *err = a->err;
        goto fail;
    }
    struct rb__audit_head h;
    bool exists;
    st = read_head(a, &h, &exists);
    if (st == RB_OK && exists) {
        st = open_log(a, h.file, false);
        if (st == RB_OK)
            st = reconcile(a, &h);
    } else if (st == RB_OK) {
        char **names;
        size_t n;
        if (rb__audit_list_files(a->dir, &names, &n) == RB_OK && n > 0)
            st = rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                               "%s/%s is missing but the directory holds audit logs (%s...): "
                               "the head was removed; run 'ragbox audit verify'",
                               a->dir, RB_AUDIT_HEAD, names[0]);
        rb__audit_free_list(names, n);
    }
    unlock_dir(a);
    if (st != RB_OK) {
        *err = a->err;
        goto fail;
    }
    *out = a;
    return RB_OK;
fail:
    a->opt.sync = false; /* nothing to seal */
    rb_audit_close(a);
    return st;
}

void rb_audit_close(struct rb_audit *a)
{
    if (!a)
        return;
    if (a->key && a->lock_fd >= 0 && a->appended > 0) {
        pthread_mutex_lock(&a->mutex);
        if (lock_dir(a) == RB_OK) {
            struct rb__audit_head h;
            bool exists;
            if (read_head(a, &h, &exists) == RB_OK && exists &&
                checkpoint_locked(a, &h, "close") != RB_OK)
                RB_WARN("audit", "closing: %s", a->err.text);
            unlock_dir(a);
        }
        pthread_mutex_unlock(&a->mutex);
    }
    if (a->log_fd >= 0)
        close(a->log_fd);
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    EVP_PKEY_free(a->key);
    free(a->cache_text);
    pthread_mutex_destroy(&a->mutex);
    pthread_mutex_destroy(&a->queue_lock);
    pthread_cond_destroy(&a->queue_cond);
    free(a->dir);
    free(a->key_path);
    free(a->pub_path);
    free(a->head_path);
    free(a->cp_path);
    free(a);
}

/* ================================================================= append */

/* Adds key: the redacted text (or null). */
static enum rb_status add_redacted(struct rb_audit *a, cJSON *rec, const char *key,
                                   const char *text)
{
    if (!text) {
        cJSON_AddNullToObject(rec, key);
        return RB_OK;
    }
    size_t len = strlen(text);
    char *clean = a->opt.redact ? a->opt.redact(a->opt.redact_user, text, len)
                                : rb_utf8_sanitize(text, len, NULL);
    if (!clean)
        return rb_errmsg_set(&a->err, RB_ERR_NOMEM, "cannot redact the %s", key);
    cJSON *v = cJSON_CreateString(clean);
    free(clean);
    if (!v)
        return RB_ERR_NOMEM;
    cJSON_AddItemToObject(rec, key, v);
    return RB_OK;
}

static cJSON *sanitized_string(const char *s)
{
    if (!s)
        return cJSON_CreateNull();
    char *clean = rb_utf8_sanitize(s, strlen(s), NULL);
    if (!clean)
        return NULL;
    cJSON *v = cJSON_CreateString(clean);
    free(clean);
    return v;
}

/* The record body in the fixed field order (seq, time and prev are added
 * under the lock). */
static enum rb_status build_body(struct rb_audit *a, const struct rb_audit_event *ev, cJSON *rec)
{
    cJSON_AddItemToObject(rec, "action", cJSON_CreateString(rb_audit_action_name(ev->action)));
    cJSON_AddItemToObject(rec, "user", sanitized_string(ev->user));
    cJSON_AddItemToObject(rec, "client", sanitized_string(ev->client));
    cJSON_AddItemToObject(rec, "collection", sanitized_string(ev->collection));
    cJSON_AddItemToObject(rec, "vertical", sanitized_string(ev->vertical));
    enum rb_status st = add_redacted(a, rec, "query", ev->query);
    if (st != RB_OK)
        return st;
    cJSON *chunks = cJSON_AddArrayToObject(rec, "chunks");
    for (size_t i = 0; chunks && i < ev->n_chunks; i++) {
        cJSON *c = cJSON_CreateObject();
        if (!c)
            return RB_ERR_NOMEM;
        cJSON_AddNumberToObject(c, "id", (double)ev->chunks[i].chunk_id);
        cJSON_AddItemToObject(c, "doc", sanitized_string(ev->chunks[i].doc_hash));
        cJSON_AddItemToArray(chunks, c);
    }
    cJSON_AddItemToObject(rec, "model", sanitized_string(ev->model_hash));
    cJSON_AddItemToObject(rec, "template", sanitized_string(ev->template_name));
    cJSON_AddItemToObject(rec, "template_version", sanitized_string(ev->template_version));
    if (ev->answer && a->opt.answer_policy == RB_AUDIT_ANSWER_FULL)
        st = add_redacted(a, rec, "answer", ev->answer);
    else
        cJSON_AddNullToObject(rec, "answer");
    if (st != RB_OK)
        return st;
    if (ev->answer && a->opt.answer_policy != RB_AUDIT_ANSWER_NONE) {
        uint8_t d[RB_SHA256_LEN];
        char hex[RB_SHA256_HEX_LEN + 1];
        if (rb_sha256(ev->answer, strlen(ev->answer), d) != RB_OK)
            return RB_ERR_CRYPTO;
        rb_hex_encode(d, RB_SHA256_LEN, hex);
        cJSON_AddStringToObject(rec, "answer_sha256", hex);
    } else {
        cJSON_AddNullToObject(rec, "answer_sha256");
    }
    cJSON_AddItemToObject(rec, "outcome", sanitized_string(ev->outcome));
    if (ev->latency_ms >= 0)
        cJSON_AddNumberToObject(rec, "latency_ms", (double)ev->latency_ms);
    else
        cJSON_AddNullToObject(rec, "latency_ms");
    cJSON_AddItemToObject(rec, "target", sanitized_string(ev->target));
    if ((st = add_redacted(a, rec, "error", ev->error)) != RB_OK)
        return st;
    if (ev->details) {
        if (!cJSON_IsObject(ev->details))
            return rb_errmsg_set(&a->err, RB_ERR_INVALID, "audit details must be a JSON object");
        cJSON *copy = cJSON_Duplicate(ev->details, 1);
        if (!copy)
            return RB_ERR_NOMEM;
        cJSON_AddItemToObject(rec, "details", copy);
    } else {
        cJSON_AddNullToObject(rec, "details");
    }
    return RB_OK;
}

/* Copies s for a syslog line: control characters (log injection) become
 * '?', and long values are cut. */
static const char *syslog_safe(const char *s, char *buf, size_t size)
{
    if (!s)
        return "-";
    size_t n = 0;
    for (; s[n] && n + 1 < size; n++)
        buf[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    buf[n] = '\0';
    return buf;
}

static void log_syslog(const struct rb_audit_event *ev, uint64_t seq)
{
    /* LOG_AUTHPRIV: the facility for security/authorization messages. The
     * summary carries no query or answer text. */
    char user[128], client[64], collection[128], outcome[32];
    syslog(LOG_AUTHPRIV | LOG_INFO,
           "ragbox-audit seq=%llu action=%s user=%s client=%s collection=%s outcome=%s",
           (unsigned long long)seq, rb_audit_action_name(ev->action),
           syslog_safe(ev->user, user, sizeof user), syslog_safe(ev->client, client, sizeof client),
           syslog_safe(ev->collection, collection, sizeof collection),
           syslog_safe(ev->outcome, outcome, sizeof outcome));
}

static bool valid_event_string(const char *s)
{
    return !s || strlen(s) < RB_AUDIT_MAX_LINE / 4;
}

/* Brings the head up to date under the lock: the first file when there is
 * none, adoption of unsealed records, rotation by size or age. */
static enum rb_status prepare_head(struct rb_audit *a, struct rb__audit_head *h, int64_t now)
{
    bool exists;
    enum rb_status st = read_head(a, h, &exists);
    if (st != RB_OK)
        return st;
    if (!exists) {
        char **names;
        size_t n;
        if (rb__audit_list_files(a->dir, &names, &n) == RB_OK && n > 0) {
            rb__audit_free_list(names, n);
            return rb_errmsg_set(&a->err, RB_ERR_CORRUPT,
                                 "%s/%s is missing but audit logs exist", a->dir, RB_AUDIT_HEAD);
        }
        rb__audit_free_list(names, n);
        snprintf(h->file, sizeof h->file, RB_AUDIT_PREFIX "%020llu" RB_AUDIT_SUFFIX, 1ULL);
        h->file_start_us = now;
        return open_log(a, h->file, true);
    }
    if ((st = open_log(a, h->file, false)) != RB_OK)
        return st;
    if ((st = reconcile(a, h)) != RB_OK)
        return st;
    bool by_size = h->size >= a->opt.rotate_bytes;
    bool by_time =
        a->opt.rotate_seconds > 0 && now - h->file_start_us >= a->opt.rotate_seconds * 1000000;
    if (h->size > 0 && (by_size || by_time)) {
        if ((st = checkpoint_locked(a, h, "rotate")) != RB_OK)
            return st;
        snprintf(h->file, sizeof h->file, RB_AUDIT_PREFIX "%020llu" RB_AUDIT_SUFFIX,
                 (unsigned long long)(h->seq + 1));
        h->size = 0;
        h->file_start_us = now;
        if ((st = open_log(a, h->file, true)) != RB_OK)
            return st;
        /* A crash right after an earlier rotation may have left records in
         * the new file that the head does not cover yet: adopt them
         * (reconcile checks they continue the chain). */
        if ((st = reconcile(a, h)) != RB_OK)
            return st;
        RB_INFO("audit", "rotated to %s", h->file);
    }
    return RB_OK;
}

/* The final line of one record: seq, time, prev and key first (the fixed
 * field order), then the body's fields (moved out of body). */
static enum rb_status build_line(struct rb_audit *a, cJSON *body, uint64_t seq, const char *when,
                                 const char *prev, char **line_out, size_t *len_out)
{
    *line_out = NULL;
    cJSON *rec = cJSON_CreateObject();
    if (!rec)
        return RB_ERR_NOMEM;
    cJSON_AddNumberToObject(rec, "seq", (double)seq);
    cJSON_AddStringToObject(rec, "time", when);
    cJSON_AddStringToObject(rec, "prev", prev);
    cJSON_AddStringToObject(rec, "key", a->key_id);
    for (cJSON *it = body->child; it;) {
        cJSON *next = it->next;
        cJSON_AddItemToObject(rec, it->string, cJSON_DetachItemViaPointer(body, it));
        it = next;
    }
    char *line = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    if (!line)
        return RB_ERR_NOMEM;
    size_t len = strlen(line);
    if (len >= RB_AUDIT_MAX_LINE) {
        free(line);
        return RB_ERR_TOO_LARGE;
    }
    *line_out = line;
    *len_out = len;
    return RB_OK;
}

/* Writes the lines in buf (n records ending at *h_next) with one write(2)
 * and one fdatasync, then seals them with one signed head. On failure the
 * partial write is cut so the chain stays clean and *h is unchanged. */
static enum rb_status flush_batch(struct rb_audit *a, struct rb__audit_head *h,
                                  const struct rb__audit_head *h_next, struct rb_buf *buf,
                                  uint64_t n)
{
    enum rb_status st = write_all(a->log_fd, buf->data, buf->len);
    if (st != RB_OK) {
        int e = errno;
        if (ftruncate(a->log_fd, (off_t)h->size) != 0)
            RB_ERROR("audit", "cannot undo a failed append to %s", h->file);
        return rb_errmsg_set(&a->err, RB_ERR_IO, "cannot write the audit log %s: %s", h->file,
                             strerror(e));
    }
    struct rb__audit_head next = *h_next;
    if (!a->opt.sync) {
        st = write_head(a, &next);
    } else {
        rb_errmsg_clear(&a->err);
        st = sync_and_seal(a, &next);
        if (st != RB_OK && strstr(a->err.text, "cannot sync the audit log")) {
            /* not durable: never acknowledged, cut so the chain stays clean */
            if (ftruncate(a->log_fd, (off_t)h->size) != 0)
                RB_ERROR("audit", "cannot undo a failed append to %s", h->file);
            return st;
        }
    }
    /* The records are durable (and, when st is OK, sealed). */
    *h = next;
    a->appended += n;
    rb_buf_reset(buf);
    return st;
}

/* Commits a batch of queued records (the commit lock held, not the queue
 * lock). Sets each record's seq or status. A batch is written in slices of
 * at most RB_AUDIT_MAX_BATCH records and RB_AUDIT_MAX_LINE bytes, each with
 * one write + one fdatasync + one head, so a crash leaves at most one slice
 * beyond the signed head. */
static void commit_batch(struct rb_audit *a, struct audit_pending *batch)
{
    rb_errmsg_clear(&a->err);
    enum rb_status st = lock_dir(a);
    bool locked = st == RB_OK;
    struct rb__audit_head h, next;
    int64_t now = rb_time_now_us();
    if (st == RB_OK)
        st = prepare_head(a, &h, now);
    char when[40];
    rb_time_format_utc(now, when, sizeof when);
    struct rb_buf buf;
    rb_buf_init(&buf, 2 * RB_AUDIT_MAX_LINE + 16);
    uint64_t in_slice = 0;
    if (st == RB_OK)
        next = h;
    for (struct audit_pending *p = batch; p && st == RB_OK; p = p->next) {
        char *line = NULL;
        size_t len = 0;
        enum rb_status lst = build_line(a, p->body, next.seq + 1, when, next.hash, &line, &len);
        if (lst != RB_OK) { /* this record only: it takes no seq */
            p->st = lst;
            rb_errmsg_set(&p->err, lst,
                          lst == RB_ERR_TOO_LARGE ? "audit record too large" : "out of memory");
            continue;
        }
        if (in_slice > 0 &&
            (in_slice >= RB_AUDIT_MAX_BATCH || buf.len + len + 1 > RB_AUDIT_MAX_LINE)) {
            st = flush_batch(a, &h, &next, &buf, in_slice);
            if (st != RB_OK) {
                free(line);
                break;
            }
            in_slice = 0;
        }
        uint8_t d[RB_SHA256_LEN];
        lst = rb_sha256(line, len, d);
        if (lst == RB_OK && (lst = rb_buf_append(&buf, line, len)) == RB_OK)
            lst = rb_buf_append(&buf, "\n", 1);
        free(line);
        if (lst != RB_OK) {
            st = rb_errmsg_set(&a->err, lst, "cannot build the audit batch");
            break;
        }
        rb_hex_encode(d, RB_SHA256_LEN, next.hash);
        next.seq++;
        next.size += len + 1;
        p->seq = next.seq;
        in_slice++;
    }
    if (st == RB_OK && in_slice > 0)
        st = flush_batch(a, &h, &next, &buf, in_slice);
    if (st == RB_OK && h.seq - h.cp_seq >= a->opt.checkpoint_every)
        st = checkpoint_locked(a, &h, "interval");
    if (locked)
        unlock_dir(a);
    rb_buf_free(&buf);
    /* Records of slices that were sealed keep their seq even when a later
     * step failed: they are durable and chained. The others fail. */
    for (struct audit_pending *p = batch; p; p = p->next) {
        if (p->st != RB_OK)
            continue;
        if (p->seq == 0 || p->seq > h.seq) {
            p->st = st != RB_OK ? st : RB_ERR_IO;
            p->err = a->err;
            p->seq = 0;
        } else if (st != RB_OK) {
            /* durable, but the interval checkpoint or the head failed */
            p->st = st;
            p->err = a->err;
        }
    }
}

/* Queues body and waits until a leader (possibly this thread) has made it
 * durable. */
static enum rb_status append_body(struct rb_audit *a, const struct rb_audit_event *ev, cJSON *body,
                                  uint64_t *seq_out)
{
    struct audit_pending me = {.body = body, .st = RB_OK};
    pthread_mutex_lock(&a->queue_lock);
    if (a->queue_tail)
        a->queue_tail->next = &me;
    else
        a->queue_head = &me;
    a->queue_tail = &me;
    while (!me.done) {
        if (a->committing) {
            pthread_cond_wait(&a->queue_cond, &a->queue_lock);
            continue;
        }
        /* Lead: take everything queued so far. */
        a->committing = true;
        struct audit_pending *batch = a->queue_head;
        a->queue_head = a->queue_tail = NULL;
        pthread_mutex_unlock(&a->queue_lock);
        pthread_mutex_lock(&a->mutex);
        commit_batch(a, batch);
        pthread_mutex_unlock(&a->mutex);
        pthread_mutex_lock(&a->queue_lock);
        for (struct audit_pending *p = batch; p;) {
            struct audit_pending *next = p->next; /* p may return and vanish once done */
            p->done = true;
            p = next;
        }
        a->committing = false;
        pthread_cond_broadcast(&a->queue_cond);
    }
    pthread_mutex_unlock(&a->queue_lock);
    if (me.st != RB_OK) {
        a->err = me.err;
        return me.st;
    }
    *seq_out = me.seq;
    if (a->opt.syslog)
        log_syslog(ev, me.seq);
    return RB_OK;
}

enum rb_status rb_audit_append(struct rb_audit *a, const struct rb_audit_event *ev,
                               uint64_t *seq_out)
{
    uint64_t seq = 0;
    if (!a || !ev)
        return RB_ERR_INVALID;
    rb_errmsg_clear(&a->err);
    if ((int)ev->action < 0 || ev->action >= RB_AUDIT_ACTION_COUNT)
        return rb_errmsg_set(&a->err, RB_ERR_INVALID, "invalid audit action %d", (int)ev->action);
    if (!valid_event_string(ev->query) || !valid_event_string(ev->answer) ||
        !valid_event_string(ev->error) || ev->n_chunks > 100000)
        return rb_errmsg_set(&a->err, RB_ERR_TOO_LARGE, "audit event fields exceed the limits");
    cJSON *body = cJSON_CreateObject();
    if (!body)
        return RB_ERR_NOMEM;
    enum rb_status st = build_body(a, ev, body);
    if (st == RB_OK)
        st = append_body(a, ev, body, &seq);
    else if (!a->err.text[0])
        rb_errmsg_set(&a->err, st, "cannot build the audit record");
    cJSON_Delete(body);
    if (st == RB_OK && seq_out)
        *seq_out = seq;
    return st;
}

enum rb_status rb_audit_tombstone(struct rb_audit *a, const struct rb_audit_tombstone *t,
                                  uint64_t *seq_out)
{
    if (!a || !t)
        return RB_ERR_INVALID;
    const char *scope = t->scope ? t->scope : "document";
    if (strcmp(scope, "document") != 0 && strcmp(scope, "person") != 0)
        return rb_errmsg_set(&a->err, RB_ERR_INVALID, "tombstone scope must be document or person");
    cJSON *details = cJSON_CreateObject();
    if (!details)
        return RB_ERR_NOMEM;
    cJSON_AddStringToObject(details, "scope", scope);
    cJSON *docs = cJSON_AddArrayToObject(details, "doc_hashes");
    for (size_t i = 0; docs && i < t->n_doc_hashes; i++) {
        /* Only hashes: anything else could be personal data. */
        if (!rb__audit_is_hex(t->doc_hashes[i], RB_SHA256_HEX_LEN)) {
            cJSON_Delete(details);
            return rb_errmsg_set(&a->err, RB_ERR_INVALID,
                                 "tombstone document %zu is not a SHA-256 hex digest", i);
        }
        cJSON_AddItemToArray(docs, cJSON_CreateString(t->doc_hashes[i]));
    }
    cJSON_AddNumberToObject(details, "documents", (double)t->n_documents);
    cJSON_AddNumberToObject(details, "chunks", (double)t->n_chunks);
    cJSON_AddNumberToObject(details, "identifiers", (double)t->n_identifiers);
    if (t->request_ref)
        cJSON_AddStringToObject(details, "request_ref", t->request_ref);
    struct rb_audit_event ev = {
        .action = RB_AUDIT_FORGET,
        .user = t->user,
        .client = t->client,
        .collection = t->collection,
        .outcome = RB_AUDIT_OUTCOME_OK,
        .latency_ms = -1,
        .details = details,
    };
    enum rb_status st = rb_audit_append(a, &ev, seq_out);
    cJSON_Delete(details);
    return st;
}

enum rb_status rb_audit_checkpoint(struct rb_audit *a)
{
    pthread_mutex_lock(&a->mutex);
    enum rb_status st = lock_dir(a);
    if (st == RB_OK) {
        struct rb__audit_head h;
        bool exists;
        st = read_head(a, &h, &exists);
        if (st == RB_OK && exists) {
            st = open_log(a, h.file, false);
            if (st == RB_OK)
                st = reconcile(a, &h);
            if (st == RB_OK)
                st = checkpoint_locked(a, &h, "manual");
        }
        unlock_dir(a);
    }
    pthread_mutex_unlock(&a->mutex);
    return st;
}
