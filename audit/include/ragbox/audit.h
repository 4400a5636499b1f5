/* ragbox audit: the append-only, hash-chained, signed audit trail.
 *
 * Every query, answer, search, document view, ingest, deletion, login, login
 * failure, denial and administrative change becomes one record: one canonical
 * JSON object per line (fields in a fixed order) in JSONL files under
 * <data>/audit/. Each record carries its sequence number `seq` and `prev`, the
 * SHA-256 (hex) of the previous record's line bytes, so the records form one
 * chain across all files (rotation starts a new file but not a new chain).
 *
 * Files in the audit directory:
 *   audit-<first seq, 20 digits>.jsonl   the records, oldest file first
 *   checkpoints.jsonl                    signed checkpoints {seq, hash, file, ...}
 *   head.json                            signed head: last seq + hash + file + size,
 *                                        rewritten (fsync'd) after every append so a
 *                                        truncated tail is detected even after the
 *                                        last checkpoint
 *   audit.lock                           flock(2) lock for appenders
 * The Ed25519 signing key lives OUTSIDE the audit directory: by default
 * <data>/keys/audit-ed25519.pem (created 0600 on first use), its public half
 * next to it as audit-ed25519.pub.pem (give that to the compliance officer).
 *
 * Durability: a record is written with one write(2) on an O_APPEND descriptor
 * and fdatasync'd before rb_audit_append returns (unless options.sync is false,
 * for tests and bulk import); then the signed head is rewritten and synced.
 * A crash between the two leaves at most one complete record beyond the head,
 * which the next appender adopts; a torn partial line (never acknowledged) is
 * cut off by the next appender with a warning.
 *
 * Thread-safety: a struct rb_audit may be shared by threads (an internal mutex
 * serialises appends). Several processes (web server, ingest daemon, CLI) may
 * append to the same directory at once: appends take an exclusive flock on
 * audit.lock and re-read the head, so the chain stays linear.
 *
 * Redaction: the audit module does not know the redaction rules (they live in
 * verticals/). The opener passes a redactor hook (options.redact) that is
 * applied to the query, the answer and the error text before they are stored;
 * verticals.h provides rb_redact_audit_hook for it.
 *
 * Ownership: event fields are borrowed for the duration of the call. Strings
 * returned as char * are freed with free().
 */
#ifndef RAGBOX_AUDIT_H
#define RAGBOX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ragbox/common.h"

/* ================================================================= actions */

#define RB_AUDIT_ACTION_TABLE(X)                                                                   \
    X(QUERY, "query")                                                                              \
    X(ANSWER, "answer")                                                                            \
    X(SEARCH, "search")                                                                            \
    X(DOCUMENT_VIEW, "document_view")                                                              \
    X(INGEST, "ingest")                                                                            \
    X(DELETION, "deletion")                                                                        \
    X(LOGIN, "login")                                                                              \
    X(LOGIN_FAILURE, "login_failure")                                                              \
    X(LOGOUT, "logout")                                                                            \
    X(DENIAL, "denial")                                                                            \
    X(ADMIN_CHANGE, "admin_change")                                                                \
    X(FORGET, "forget")                                                                            \
    X(EXPORT, "export")                                                                            \
    X(BATCH, "batch")                                                                              \
    X(SYSTEM, "system")

enum rb_audit_action {
#define RB__AUDIT_ACTION_ENUM(name, text) RB_AUDIT_##name,
    RB_AUDIT_ACTION_TABLE(RB__AUDIT_ACTION_ENUM)
#undef RB__AUDIT_ACTION_ENUM
        RB_AUDIT_ACTION_COUNT
};
/* Stable lower-case name ("login_failure"); "unknown" when out of range. */
const char *rb_audit_action_name(enum rb_audit_action action);
/* Parses a name; RB_ERR_INVALID when unknown. */
RB_NODISCARD enum rb_status rb_audit_action_parse(const char *name, enum rb_audit_action *out);

/* How answers are kept in the trail. */
enum rb_audit_answer_policy {
    RB_AUDIT_ANSWER_HASH = 0, /* SHA-256 of the answer text only (default) */
    RB_AUDIT_ANSWER_FULL,     /* the (redacted) answer text, plus its hash */
    RB_AUDIT_ANSWER_NONE,     /* neither */
};

/* ================================================================= options */

/* Redactor hook: returns a newly allocated redacted copy of text (free()), or
 * NULL on failure (the append then fails rather than store unredacted text). */
typedef char *(*rb_audit_redact_fn)(void *user, const char *text, size_t len);

struct rb_audit_options {
    const char *dir;              /* required: the audit directory (<data>/audit) */
    const char *key_path;         /* Ed25519 private key PEM; NULL = <dir>/../keys/audit-ed25519.pem */
    uint64_t checkpoint_every;    /* records between signed checkpoints; default 1000 */
    uint64_t rotate_bytes;        /* start a new file beyond this size; default 64 MiB, 0 keeps default */
    int64_t rotate_seconds;       /* start a new file when the current one is older; 0 = never */
    enum rb_audit_answer_policy answer_policy;
    bool sync;                    /* fdatasync each record and the head (default true) */
    bool syslog;                  /* summary line per record to syslog/journald (default true) */
    rb_audit_redact_fn redact;    /* NULL = store query/answer as given (caller redacted) */
    void *redact_user;
    /* The clock for record times, checkpoint times and rotation by age, in
     * UTC µs since the epoch. NULL = the system clock (always, in ragbox).
     * Tests inject one to build a trail whose old segments really are old
     * (retention), since a record's time cannot be edited afterwards. */
    int64_t (*now_us)(void *user);
    void *now_user;
};
/* Fills the defaults above (dir = NULL). */
void rb_audit_options_default(struct rb_audit_options *o);
/* Defaults, then the [audit] section of the configuration: dir (default
 * <data_dir>/audit), key (default <data_dir>/keys/audit-ed25519.pem),
 * checkpoint_every, rotate_mb, rotate_hours, answers = hash|full|none, sync,
 * syslog. String fields of *o point into *paths_out (free() it after close). */
RB_NODISCARD enum rb_status rb_audit_options_from_config(struct rb_audit_options *o,
                                                         const struct rb_config *cfg,
                                                         const char *data_dir, char **paths_out,
                                                         struct rb_errmsg *err);

/* =================================================================== writer */

struct rb_audit;

/* Opens (creating the directory 0700, the key 0600 when absent) and checks
 * that the head and the last file agree. On failure *out is NULL and err says
 * why. */
RB_NODISCARD enum rb_status rb_audit_open(const struct rb_audit_options *o, struct rb_audit **out,
                                          struct rb_errmsg *err);
/* Writes a final checkpoint (when records were appended since the last) and
 * closes. NULL is a no-op. */
void rb_audit_close(struct rb_audit *a);
/* Last error text of this handle (borrowed, valid until the next call). */
const char *rb_audit_errmsg(const struct rb_audit *a);

/* A retrieved chunk as the trail records it. */
struct rb_audit_chunk {
    int64_t chunk_id;
    const char *doc_hash; /* SHA-256 hex of the source document, may be NULL */
};

/* outcome values used across ragbox (free text allowed, these are the common ones) */
#define RB_AUDIT_OUTCOME_OK "ok"
#define RB_AUDIT_OUTCOME_ANSWERED "answered"
#define RB_AUDIT_OUTCOME_REFUSED "refused"
#define RB_AUDIT_OUTCOME_DENIED "denied"
#define RB_AUDIT_OUTCOME_FAILED "failed"
#define RB_AUDIT_OUTCOME_ERROR "error"

/* One event. Every pointer is borrowed for the call and may be NULL (stored
 * as JSON null), except that action must be valid. */
struct rb_audit_event {
    enum rb_audit_action action;
    const char *user;             /* authenticated user or the OS user for the CLI */
    const char *client;           /* client address ("192.0.2.7", "cli", "daemon") */
    const char *collection;       /* comma-separated when several */
    const char *vertical;         /* pack name */
    const char *query;            /* question / search text: redacted before storage */
    const struct rb_audit_chunk *chunks; /* retrieved chunks, n_chunks */
    size_t n_chunks;
    const char *model_hash;       /* SHA-256 hex of the model file */
    const char *template_name;    /* "finance/answer.en" */
    const char *template_version;
    const char *answer;           /* stored per answer_policy (redacted when full) */
    const char *outcome;          /* RB_AUDIT_OUTCOME_* or other short word */
    int64_t latency_ms;           /* < 0 = unknown (stored as null) */
    const char *target;           /* document, account or setting acted upon */
    const char *error;            /* error text when the outcome is an error (redacted) */
    const cJSON *details;         /* free-form JSON object (copied), may be NULL */
};

/* Appends one record; on success *seq_out (may be NULL) receives its sequence
 * number, which is the record's audit id (see rb_audit_format_id). */
RB_NODISCARD enum rb_status rb_audit_append(struct rb_audit *a, const struct rb_audit_event *ev,
                                            uint64_t *seq_out);

/* The audit id string for a seq: "audit-<seq>" (buf >= 32 bytes). */
void rb_audit_format_id(uint64_t seq, char *buf, size_t size);
/* Parses "audit-<seq>" or a bare number. */
RB_NODISCARD enum rb_status rb_audit_parse_id(const char *id, uint64_t *seq);

/* A "forget" tombstone: proves that something was deleted without keeping
 * the personal data. The identifiers that selected a person's chunks are
 * never passed here; only counts and document hashes are recorded. */
struct rb_audit_tombstone {
    const char *user;
    const char *client;
    const char *collection;
    const char *scope;             /* "document" or "person" */
    const char *const *doc_hashes; /* SHA-256 hex of deleted documents, n_doc_hashes */
    size_t n_doc_hashes;
    int64_t n_documents;           /* documents removed */
    int64_t n_chunks;              /* chunks removed */
    int64_t n_identifiers;         /* how many identifiers the request named (not them) */
    const char *request_ref;       /* ticket/reference number of the erasure request, may be NULL */
};
RB_NODISCARD enum rb_status rb_audit_tombstone(struct rb_audit *a,
                                               const struct rb_audit_tombstone *t,
                                               uint64_t *seq_out);

/* Writes a signed checkpoint now (no-op when nothing was appended since). */
RB_NODISCARD enum rb_status rb_audit_checkpoint(struct rb_audit *a);

/* Path of the public key PEM (borrowed from the handle). */
const char *rb_audit_public_key_path(const struct rb_audit *a);
/* Writes the public key PEM of the private key at key_path to out_path
 * (creating the key when absent and create is true). */
RB_NODISCARD enum rb_status rb_audit_export_public_key(const char *key_path, const char *out_path,
                                                       bool create, struct rb_errmsg *err);

/* ================================================================== verify */

struct rb_audit_verify_report {
    bool ok;                 /* the whole chain holds */
    uint64_t records;        /* records checked */
    uint64_t files;          /* log files checked */
    uint64_t checkpoints;    /* checkpoints whose signatures were checked */
    uint64_t first_seq, last_seq;
    uint64_t unsealed;       /* complete records beyond the signed head (crash window) */
    uint64_t prunes;         /* signed prune records checked (retention) */
    uint64_t pruned_through; /* records 1..pruned_through were removed by retention (0 = none) */
    uint64_t pending_removal; /* pruned segments still present (a prune was interrupted) */
    /* the first problem found (when !ok): */
    char problem[512];       /* human description */
    char file[256];          /* file name within the audit dir ("" when not file-specific) */
    uint64_t line;           /* 1-based line in that file (0 = none) */
    uint64_t seq;            /* seq concerned (0 = none) */
};

/* Verifies the directory: every line parses, seq runs 1,2,3.. without gaps
 * (or, after retention pruned the oldest segments, from the seq and hash the
 * last signed prune record anchors),
 * each prev is the SHA-256 of the previous line, files are contiguous, each
 * checkpoint's signature holds and matches the record it names, and the
 * signed head matches the last record (detecting truncation). pubkey_path:
 * the public key PEM to trust (NULL = the default public key next to the
 * private key of the default layout, <dir>/../keys/audit-ed25519.pub.pem).
 * Returns RB_OK when verification ran (report->ok says whether the chain
 * holds), an error when it could not run (missing directory). */
RB_NODISCARD enum rb_status rb_audit_verify(const char *dir, const char *pubkey_path,
                                            struct rb_audit_verify_report *report,
                                            struct rb_errmsg *err);

/* ========================================================== query / export */

struct rb_audit_filter {
    int64_t from_us;           /* records at or after (UTC µs since epoch), 0 = unbounded */
    int64_t to_us;             /* records before, 0 = unbounded */
    const char *user;          /* exact user, NULL = any */
    int action;                /* enum rb_audit_action, -1 = any */
    const char *collection;    /* exact collection (or one of a comma list), NULL = any */
    const char *outcome;       /* exact outcome, NULL = any */
    const char *text;          /* substring of the record line, NULL = any */
    uint64_t seq_min, seq_max; /* 0 = unbounded */
    size_t limit;              /* max records, 0 = all */
};
void rb_audit_filter_init(struct rb_audit_filter *f); /* everything */

/* Called for each matching record in seq order: record (borrowed, valid for
 * the call) and its raw line. Return non-OK to stop (returned by scan). */
typedef enum rb_status (*rb_audit_record_fn)(void *user, const cJSON *record, const char *line,
                                             size_t len);
RB_NODISCARD enum rb_status rb_audit_scan(const char *dir, const struct rb_audit_filter *f,
                                          rb_audit_record_fn fn, void *user,
                                          struct rb_errmsg *err);

enum rb_audit_format { RB_AUDIT_FORMAT_JSONL = 0, RB_AUDIT_FORMAT_CSV };
/* Writes matching records to out (JSONL: the original lines; CSV: RFC 4180
 * with a header row, one column per field, chunks and details as JSON text).
 * *n_out (may be NULL) receives the number of records written. */
RB_NODISCARD enum rb_status rb_audit_export(const char *dir, const struct rb_audit_filter *f,
                                            enum rb_audit_format format, FILE *out,
                                            size_t *n_out, struct rb_errmsg *err);

/* Parses "2026-11-25", "2026-11-25T06:00:00Z" or "2026-11-25T06:00:00.123456Z"
 * (UTC) into µs since the epoch. */
RB_NODISCARD enum rb_status rb_audit_parse_time(const char *text, int64_t *us);

/* =============================================================== retention */

/* Retention removes whole sealed segments (audit-<seq>.jsonl files that
 * rotation closed), oldest first, and never the live one the head names.
 * Each prune first appends a signed record to prunes.jsonl:
 *   {"sig":"<Ed25519 hex>","key":"<key id>","prune":{"first_seq":S,
 *    "prev":"<SHA-256 of record S-1>","removed":[{"file","first_seq","last_seq",
 *    "last_time","bytes","sha256"}...],"records":N,"before":"<cutoff>",
 *    "time":"<when>","prev_prune":"<SHA-256 of the previous prune line>"}}
 * (the signature covers "ragbox-audit-prune\n" + the bytes of the "prune"
 * object), then deletes the files. rb_audit_verify then starts the chain at
 * S with prev as the anchor, so it still proves that nothing else was removed:
 * deleting the oldest retained segment, any other segment, a prune record or
 * the whole prunes.jsonl is reported. The signed checkpoints of the removed
 * segments stay in checkpoints.jsonl (they carry no record content) and are
 * still checked; the one at S-1 must match the anchor. */

struct rb_audit_segment {
    char file[64];          /* audit-<first seq>.jsonl */
    uint64_t first_seq, last_seq;
    int64_t last_time_us;   /* time of its newest record */
    uint64_t bytes;
};

struct rb_audit_prune_report {
    struct rb_audit_segment *removed; /* removed (dry run: would be), oldest first; n_removed */
    size_t n_removed;
    uint64_t records;          /* records in them */
    uint64_t bytes;
    size_t n_kept;             /* segments kept, the live one included */
    uint64_t first_kept_seq;   /* first record retained (0 = trail empty) */
    /* The newest-record time of the oldest retained sealed segment (0 = none
     * sealed): that segment is due once this is older than the cutoff. */
    int64_t next_due_last_us;
    uint64_t completed;        /* segments of an interrupted earlier prune deleted now */
    char note[256];            /* why nothing (more) was removed, when relevant */
};
void rb_audit_prune_report_free(struct rb_audit_prune_report *r);

/* Removes the oldest sealed segments whose newest record is older than
 * before_us (UTC µs), as a contiguous prefix of the trail, never the live
 * segment. Only segments that verify (seq and hash chain from the current
 * anchor, the boundary record sealed by a valid signed checkpoint, the next
 * segment continuing from it) are removed: a damaged segment is kept as
 * evidence and the call fails with RB_ERR_VERIFY. With dry_run nothing is
 * written or deleted; the report says what would be. o->dir and o->key_path
 * as for rb_audit_open (the private key signs the prune record). Safe while
 * other processes append (it takes the appenders' lock to write). */
RB_NODISCARD enum rb_status rb_audit_prune(const struct rb_audit_options *o, int64_t before_us,
                                           bool dry_run, struct rb_audit_prune_report *r,
                                           struct rb_errmsg *err);

#endif
