/* The ingest pipeline: a durable job queue in SQLite (own tables in the
 * shared ragbox.db), one idempotent "sync this path" job per file, and the
 * daemon loop (inotify + periodic rescan).
 *
 * Tables (module 'ingest', schema version 1):
 *   ingest_jobs(id, collection, path, due_us, state 'queued'|'running',
 *               claimed_pid, created_us)  UNIQUE(collection, path)
 *   ingest_files(collection, path, size, mtime_us, sha256, state
 *               'indexed'|'failed'|'quarantined', attempts, error, updated_us)
 *   ingest_log(id, finished_us, seconds, pages, action)  throughput window
 *   ingest_counters(name, value)
 *
 * Crash safety. A job is deleted only after its effect is in the index and
 * ingest_files, and every step is idempotent: a file's SHA-256 decides
 * unchanged / renamed / changed, rb_index_document_put replaces a document
 * with its chunks and vectors in one transaction, a missing file deletes its
 * document. A job left 'running' by a dead process is requeued at open. So
 * after kill -9 at any point, restarting and draining the queue (plus the
 * start-up rescan, which also queues deletes for documents whose file is
 * gone) converges the index to the folders' content. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ingest-impl.h"
#include "ragbox/index.h"

#define INGEST_SCHEMA_VERSION 1
#define ATTACHMENT_DEPTH 2

struct rb_ingest {
    struct rb_index *idx;
    const struct rb_config *cfg;
    const struct rb_ingest_embedder *emb;
    sqlite3 *db;
    struct rb_ingest_limits limits;
    int max_attempts;
    int64_t retry_base_ms;
    struct rb_errmsg err;
};

/* ================================================================ SQLite */

static enum rb_status db_fail(struct rb_ingest *ing, const char *what)
{
    return rb_errmsg_set(&ing->err, RB_ERR_DB, "ingest: %s: %s", what, sqlite3_errmsg(ing->db));
}

static enum rb_status exec(struct rb_ingest *ing, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(ing->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rb_errmsg_set(&ing->err, RB_ERR_DB, "ingest: %s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return RB_ERR_DB;
    }
    return RB_OK;
}

static sqlite3_stmt *prep(struct rb_ingest *ing, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(ing->db, sql, -1, &s, NULL) != SQLITE_OK) {
        db_fail(ing, "prepare");
        return NULL;
    }
    return s;
}

static enum rb_status migrate(struct rb_ingest *ing)
{
    enum rb_status st = exec(ing, "CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY,"
                                  " version INTEGER NOT NULL)");
    if (st)
        return st;
    sqlite3_stmt *s = prep(ing, "SELECT version FROM schema_versions WHERE module='ingest'");
    if (!s)
        return RB_ERR_DB;
    int version = 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > INGEST_SCHEMA_VERSION)
        return rb_errmsg_set(&ing->err, RB_ERR_UNSUPPORTED,
                             "ingest: database schema version %d is newer than this ragbox (%d)",
                             version, INGEST_SCHEMA_VERSION);
    if (version == 0) {
        st = exec(ing,
                  "BEGIN IMMEDIATE;"
                  "CREATE TABLE IF NOT EXISTS ingest_jobs(id INTEGER PRIMARY KEY, collection TEXT NOT NULL,"
                  " path TEXT NOT NULL, due_us INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'queued',"
                  " claimed_pid INTEGER, created_us INTEGER NOT NULL, UNIQUE(collection, path));"
                  "CREATE INDEX IF NOT EXISTS ingest_jobs_due ON ingest_jobs(state, due_us);"
                  "CREATE TABLE IF NOT EXISTS ingest_files(collection TEXT NOT NULL, path TEXT NOT NULL,"
                  " size INTEGER, mtime_us INTEGER, sha256 TEXT, state TEXT NOT NULL,"
                  " attempts INTEGER NOT NULL DEFAULT 0, error TEXT, updated_us INTEGER,"
                  " PRIMARY KEY(collection, path));"
                  "CREATE TABLE IF NOT EXISTS ingest_log(id INTEGER PRIMARY KEY, finished_us INTEGER,"
                  " seconds REAL, pages INTEGER, action TEXT);"
                  "CREATE TABLE IF NOT EXISTS ingest_counters(name TEXT PRIMARY KEY, value INTEGER);"
                  "INSERT OR REPLACE INTO schema_versions(module, version) VALUES('ingest', 1);"
                  "COMMIT;");
        if (st) {
            (void)exec(ing, "ROLLBACK");
            return st;
        }
    }
    return RB_OK;
}

/* Jobs claimed by a process that no longer exists go back to the queue. */
static enum rb_status requeue_orphans(struct rb_ingest *ing)
{
    sqlite3_stmt *s = prep(ing, "SELECT id, claimed_pid FROM ingest_jobs WHERE state='running'");
    if (!s)
        return RB_ERR_DB;
    sqlite3_stmt *u = prep(ing, "UPDATE ingest_jobs SET state='queued', claimed_pid=NULL WHERE id=?");
    if (!u) {
        sqlite3_finalize(s);
        return RB_ERR_DB;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        pid_t pid = (pid_t)sqlite3_column_int64(s, 1);
        if (pid > 0 && pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM))
            continue;
        sqlite3_bind_int64(u, 1, sqlite3_column_int64(s, 0));
        sqlite3_step(u);
        sqlite3_reset(u);
    }
    sqlite3_finalize(s);
    sqlite3_finalize(u);
    return RB_OK;
}

enum rb_status rb_ingest_open(const struct rb_ingest_options *opts, struct rb_ingest **out,
                              struct rb_errmsg *err)
{
    *out = NULL;
    if (!opts || !opts->index)
        return err ? rb_errmsg_set(err, RB_ERR_INVALID, "ingest: an index is required")
                   : RB_ERR_INVALID;
    struct rb_ingest *ing = calloc(1, sizeof *ing);
    if (!ing)
        return RB_ERR_NOMEM;
    ing->idx = opts->index;
    ing->cfg = opts->config;
    ing->emb = opts->embedder;
    ing->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 5;
    ing->retry_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : 2000;
    enum rb_status st = rb_ingest_limits_from_config(opts->config, &ing->limits, err);
    if (st != RB_OK) {
        free(ing);
        return st;
    }
    int64_t attempts;
    if ((st = rb_config_int(opts->config, "ingest", "max_attempts", ing->max_attempts, 1, 100,
                            &attempts, err)) != RB_OK) {
        free(ing);
        return st;
    }
    ing->max_attempts = (int)attempts;
    const char *path = rb_index_db_path(opts->index);
    if (sqlite3_open_v2(path, &ing->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (err)
            rb_errmsg_set(err, RB_ERR_DB, "ingest: cannot open %s: %s", path,
                          ing->db ? sqlite3_errmsg(ing->db) : "out of memory");
        sqlite3_close(ing->db);
        free(ing);
        return RB_ERR_DB;
    }
    sqlite3_busy_timeout(ing->db, 15000);
    st = exec(ing, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;");
    if (st == RB_OK)
        st = migrate(ing);
    if (st == RB_OK)
        st = requeue_orphans(ing);
    if (st != RB_OK) {
        if (err)
            rb_errmsg_set(err, st, "%s", ing->err.text);
        rb_ingest_close(ing);
        return st;
    }
    *out = ing;
    return RB_OK;
}

void rb_ingest_close(struct rb_ingest *ing)
{
    if (!ing)
        return;
    sqlite3_close(ing->db);
    free(ing);
}

const char *rb_ingest_errmsg(struct rb_ingest *ing)
{
    return ing ? ing->err.text : "";
}

void rb_ingest_job_result_clear(struct rb_ingest_job_result *r)
{
    if (!r)
        return;
    free(r->path);
    free(r->collection);
    free(r->action);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* =============================================================== enqueue */

static bool skipped_name(const char *name)
{
    return name[0] == '.' || fnmatch("~$*", name, 0) == 0 || fnmatch("*.tmp", name, 0) == 0 ||
           fnmatch("*.part", name, 0) == 0 || fnmatch("*.swp", name, 0) == 0 ||
           fnmatch("*~", name, 0) == 0 || fnmatch("*.crdownload", name, 0) == 0;
}

static bool job_exists(struct rb_ingest *ing, const char *collection, const char *path)
{
    sqlite3_stmt *s = prep(ing, "SELECT 1 FROM ingest_jobs WHERE collection=? AND path=?");
    if (!s)
        return false;
    sqlite3_bind_text(s, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

static enum rb_status add_job(struct rb_ingest *ing, const char *collection, const char *path,
                              int64_t due_us)
{
    /* A job already queued keeps its place (the earlier due time); a running
     * one is left alone (it re-checks the file when it runs). */
    sqlite3_stmt *s = prep(ing, "INSERT INTO ingest_jobs(collection, path, due_us, created_us)"
                                " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(collection, path) DO UPDATE"
                                " SET due_us=min(due_us, excluded.due_us) WHERE state='queued'");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_text(s, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, due_us);
    sqlite3_bind_int64(s, 4, rb_time_now_us());
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? RB_OK : db_fail(ing, "enqueue");
}

static bool file_known_unchanged(struct rb_ingest *ing, const char *collection, const char *path,
                                 const struct stat *sb)
{
    sqlite3_stmt *s = prep(ing, "SELECT size, mtime_us, state FROM ingest_files"
                                " WHERE collection=? AND path=?");
    if (!s)
        return false;
    sqlite3_bind_text(s, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    bool same = false;
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t mt = (int64_t)sb->st_mtim.tv_sec * 1000000 + sb->st_mtim.tv_nsec / 1000;
        const char *state = (const char *)sqlite3_column_text(s, 2);
        same = sqlite3_column_int64(s, 0) == (int64_t)sb->st_size &&
               sqlite3_column_int64(s, 1) == mt && state &&
               (strcmp(state, "indexed") == 0 || strcmp(state, "quarantined") == 0);
    }
    sqlite3_finalize(s);
    return same;
}

struct walk {
    struct rb_ingest *ing;
    const char *collection;
    bool force;
    size_t queued;
    size_t files;
    int64_t now;
};

static enum rb_status walk_dir(struct walk *w, const char *dir, int depth)
{
    if (depth > 64)
        return RB_OK;
    DIR *d = opendir(dir);
    if (!d) {
        RB_WARN("ingest", "cannot read folder %s: %s", dir, strerror(errno));
        return RB_OK;
    }
    enum rb_status st = RB_OK;
    struct dirent *e;
    while (st == RB_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || skipped_name(e->d_name))
            continue;
        char *p = rb_path_join(dir, e->d_name);
        if (!p) {
            st = RB_ERR_NOMEM;
            break;
        }
        struct stat sb;
        if (lstat(p, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                st = walk_dir(w, p, depth + 1);
            } else if (S_ISREG(sb.st_mode)) {
                w->files++;
                if (w->force || !file_known_unchanged(w->ing, w->collection, p, &sb)) {
                    st = add_job(w->ing, w->collection, p, w->now);
                    w->queued += st == RB_OK;
                }
            }
        }
        free(p);
    }
    closedir(d);
    return st;
}

/* Delete jobs for indexed documents (and tracked files) under prefix whose file is gone. */
static enum rb_status queue_missing(struct walk *w, const char *prefix)
{
    struct rb_ingest *ing = w->ing;
    size_t plen = strlen(prefix);
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(ing->idx, w->collection, &c) == RB_OK) {
        struct rb_index_document **docs = NULL;
        size_t n = 0;
        if (rb_index_document_list(ing->idx, c->id, 0, 0, &docs, &n) == RB_OK) {
            for (size_t i = 0; i < n; i++) {
                const char *src = docs[i]->source;
                if (docs[i]->parent_id || strncmp(src, prefix, plen) != 0 ||
                    (src[plen] != '/' && src[plen] != '\0' && prefix[plen - 1] != '/'))
                    continue;
                struct stat sb;
                if (lstat(src, &sb) != 0 && !job_exists(ing, w->collection, src) &&
                    add_job(ing, w->collection, src, w->now) == RB_OK)
                    w->queued++;
            }
            rb_index_document_list_free(docs, n);
        }
        rb_index_collection_free(c);
    }
    sqlite3_stmt *s = prep(ing, "SELECT path FROM ingest_files WHERE collection=?1 AND"
                                " (path=?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/')");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_text(s, 1, w->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, prefix, -1, SQLITE_STATIC);
    char **gone = NULL;
    size_t n_gone = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 0);
        struct stat sb;
        if (p && lstat(p, &sb) != 0) {
            char **ng = realloc(gone, (n_gone + 1) * sizeof *ng);
            if (!ng)
                break;
            gone = ng;
            gone[n_gone++] = rb_strdup(p);
        }
    }
    sqlite3_finalize(s);
    for (size_t i = 0; i < n_gone; i++) {
        if (gone[i] && !job_exists(ing, w->collection, gone[i]) &&
            add_job(ing, w->collection, gone[i], w->now) == RB_OK)
            w->queued++;
        free(gone[i]);
    }
    free(gone);
    return RB_OK;
}

enum rb_status rb_ingest_enqueue_path(struct rb_ingest *ing, const char *collection_name,
                                      const char *path, bool force, size_t *queued)
{
    rb_errmsg_clear(&ing->err);
    if (queued)
        *queued = 0;
    char abs[PATH_MAX];
    if (!realpath(path, abs)) {
        /* A path that no longer exists is synced as a deletion. */
        if (errno != ENOENT || path[0] != '/')
            return rb_errmsg_set(&ing->err, RB_ERR_NOT_FOUND, "ingest: %s: %s", path,
                                 strerror(errno));
        rb_strlcpy(abs, path, sizeof abs);
    }
    size_t alen = strlen(abs);
    while (alen > 1 && abs[alen - 1] == '/')
        abs[--alen] = '\0';
    struct walk w = {.ing = ing, .collection = collection_name, .force = force,
                     .now = rb_time_now_us()};
    enum rb_status st = exec(ing, "BEGIN IMMEDIATE");
    if (st)
        return st;
    struct stat sb;
    if (lstat(abs, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        st = walk_dir(&w, abs, 0);
    } else if (lstat(abs, &sb) == 0 && S_ISREG(sb.st_mode)) {
        w.files = 1;
        if (force || !file_known_unchanged(ing, collection_name, abs, &sb)) {
            st = add_job(ing, collection_name, abs, w.now);
            w.queued += st == RB_OK;
        }
    } else if (lstat(abs, &sb) == 0) {
        st = rb_errmsg_set(&ing->err, RB_ERR_UNSUPPORTED, "ingest: %s is not a file or folder",
                           abs);
    }
    if (st == RB_OK)
        st = queue_missing(&w, abs);
    if (st == RB_OK)
        st = exec(ing, "COMMIT");
    else
        (void)exec(ing, "ROLLBACK");
    if (queued)
        *queued = w.queued;
    return st;
}

enum rb_status rb_ingest_pending(struct rb_ingest *ing, const char *path, int64_t *n)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        rb_strlcpy(abs, path, sizeof abs);
    sqlite3_stmt *s = prep(ing, "SELECT count(*) FROM ingest_jobs WHERE path=?1 OR"
                                " substr(path, 1, length(?1) + 1) = ?1 || '/'");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_text(s, 1, abs, -1, SQLITE_TRANSIENT);
    *n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return RB_OK;
}

enum rb_status rb_ingest_file_state(struct rb_ingest *ing, const char *collection,
                                    const char *path, char **state, char **error)
{
    *state = NULL;
    if (error)
        *error = NULL;
    sqlite3_stmt *s = prep(ing, "SELECT state, error FROM ingest_files WHERE collection=? AND path=?");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_text(s, 1, collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *state = rb_strdup((const char *)sqlite3_column_text(s, 0));
        if (error && sqlite3_column_text(s, 1))
            *error = rb_strdup((const char *)sqlite3_column_text(s, 1));
    }
    sqlite3_finalize(s);
    return RB_OK;
}

/* ============================================================== one job */

struct job {
    int64_t id;
    char *collection;
    char *path;
};

/* Claims the next due job, preferring files that exist (so that a rename's
 * new path is seen before its old path is deleted, and nothing re-embeds). */
static enum rb_status claim(struct rb_ingest *ing, struct job *j, int64_t *next_due)
{
    memset(j, 0, sizeof *j);
    *next_due = 0;
    int64_t now = rb_time_now_us();
    sqlite3_stmt *s = prep(ing, "SELECT id, collection, path FROM ingest_jobs WHERE state='queued'"
                                " AND due_us <= ? ORDER BY due_us, id LIMIT 64");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_int64(s, 1, now);
    int64_t ids[64];
    char *cols[64], *paths[64];
    int n = 0, pick = -1;
    while (n < 64 && sqlite3_step(s) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(s, 0);
        cols[n] = rb_strdup((const char *)sqlite3_column_text(s, 1));
        paths[n] = rb_strdup((const char *)sqlite3_column_text(s, 2));
        struct stat sb;
        if (pick < 0 && paths[n] && lstat(paths[n], &sb) == 0)
            pick = n;
        n++;
    }
    sqlite3_finalize(s);
    if (n == 0) {
        s = prep(ing, "SELECT min(due_us) FROM ingest_jobs WHERE state='queued'");
        if (s && sqlite3_step(s) == SQLITE_ROW)
            *next_due = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return RB_ERR_NOT_FOUND;
    }
    if (pick < 0)
        pick = 0;
    enum rb_status st = RB_ERR_BUSY;
    s = prep(ing, "UPDATE ingest_jobs SET state='running', claimed_pid=? WHERE id=? AND state='queued'");
    if (s) {
        sqlite3_bind_int64(s, 1, getpid());
        sqlite3_bind_int64(s, 2, ids[pick]);
        if (sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(ing->db) == 1)
            st = RB_OK;
        sqlite3_finalize(s);
    }
    for (int i = 0; i < n; i++) {
        if (i == pick && st == RB_OK) {
            j->id = ids[i];
            j->collection = cols[i];
            j->path = paths[i];
        } else {
            free(cols[i]);
            free(paths[i]);
        }
    }
    return st;
}

/* Records the file's outcome and removes the job, in one transaction. */
static enum rb_status finish(struct rb_ingest *ing, const struct job *j, const char *file_state,
                             const struct stat *sb, const char *sha, const char *error,
                             int attempts, int64_t retry_due, double seconds, int64_t pages,
                             const char *action)
{
    enum rb_status st = exec(ing, "BEGIN IMMEDIATE");
    if (st)
        return st;
    sqlite3_stmt *s;
    if (!file_state) {
        s = prep(ing, "DELETE FROM ingest_files WHERE collection=? AND path=?");
        if (s) {
            sqlite3_bind_text(s, 1, j->collection, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, j->path, -1, SQLITE_STATIC);
        }
    } else {
        s = prep(ing, "INSERT OR REPLACE INTO ingest_files(collection, path, size, mtime_us, sha256,"
                      " state, attempts, error, updated_us) VALUES(?,?,?,?,?,?,?,?,?)");
        if (s) {
            sqlite3_bind_text(s, 1, j->collection, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, j->path, -1, SQLITE_STATIC);
            if (sb) {
                sqlite3_bind_int64(s, 3, (int64_t)sb->st_size);
                sqlite3_bind_int64(s, 4, (int64_t)sb->st_mtim.tv_sec * 1000000 +
                                             sb->st_mtim.tv_nsec / 1000);
            }
            if (sha)
                sqlite3_bind_text(s, 5, sha, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 6, file_state, -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 7, attempts);
            if (error)
                sqlite3_bind_text(s, 8, error, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 9, rb_time_now_us());
        }
    }
    if (!s || sqlite3_step(s) != SQLITE_DONE)
        st = db_fail(ing, "record file");
    sqlite3_finalize(s);
    if (st == RB_OK) {
        if (retry_due)
            s = prep(ing, "UPDATE ingest_jobs SET state='queued', claimed_pid=NULL, due_us=?2 WHERE id=?1");
        else
            s = prep(ing, "DELETE FROM ingest_jobs WHERE id=?1");
        if (s) {
            sqlite3_bind_int64(s, 1, j->id);
            if (retry_due)
                sqlite3_bind_int64(s, 2, retry_due);
        }
        if (!s || sqlite3_step(s) != SQLITE_DONE)
            st = db_fail(ing, "finish job");
        sqlite3_finalize(s);
    }
    if (st == RB_OK && !retry_due) {
        s = prep(ing, "INSERT INTO ingest_log(finished_us, seconds, pages, action) VALUES(?,?,?,?)");
        if (s) {
            sqlite3_bind_int64(s, 1, rb_time_now_us());
            sqlite3_bind_double(s, 2, seconds);
            sqlite3_bind_int64(s, 3, pages);
            sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
            sqlite3_step(s);
            sqlite3_finalize(s);
        }
        st = exec(ing, "DELETE FROM ingest_log WHERE id <= (SELECT max(id) - 1000 FROM ingest_log);"
                       "INSERT INTO ingest_counters(name, value) VALUES('done', 1)"
                       " ON CONFLICT(name) DO UPDATE SET value = value + 1;");
    }
    if (st == RB_OK)
        st = exec(ing, "COMMIT");
    else
        (void)exec(ing, "ROLLBACK");
    return st;
}

static enum rb_status collection_id(struct rb_ingest *ing, const char *name, int64_t *id)
{
    struct rb_index_collection *c = NULL;
    enum rb_status st = rb_index_collection_get(ing->idx, name, &c);
    if (st == RB_OK) {
        *id = c->id;
        rb_index_collection_free(c);
        return RB_OK;
    }
    if (st != RB_ERR_NOT_FOUND)
        return rb_errmsg_set(&ing->err, st, "%s", rb_index_errmsg(ing->idx));
    st = rb_index_collection_create(ing->idx, name, NULL, id);
    if (st == RB_ERR_EXISTS) /* created concurrently */
        return collection_id(ing, name, id);
    if (st != RB_OK)
        return rb_errmsg_set(&ing->err, st, "collection %s: %s", name, rb_index_errmsg(ing->idx));
    return RB_OK;
}

/* Chunks (and embeds) a parsed document and stores it, replacing any
 * document with the same source atomically. */
static enum rb_status store(struct rb_ingest *ing, int64_t coll, const char *source,
                            const char *title_fallback, const struct rb_ingest_doc *d,
                            const struct stat *sb, const char *sha, int64_t parent,
                            int64_t *doc_id, int64_t *n_chunks)
{
    struct rb_ingest_chunk_options co;
    enum rb_status st = rb_ingest_chunk_options_from_config(ing->cfg, NULL, &co, &ing->err);
    if (st != RB_OK)
        return st;
    if (ing->emb && ing->emb->count_tokens) {
        co.count = ing->emb->count_tokens;
        co.count_ctx = ing->emb->ctx;
    }
    struct rb_ingest_chunks cs = {0};
    if ((st = rb_ingest_chunk(d, &co, &cs, &ing->err)) != RB_OK)
        return st;
    /* The collection's policy may require personal data to be redacted
     * before anything is stored, keyword-indexed or embedded. */
    const char *t0 = d->title ? d->title : title_fallback;
    char *title = t0 ? rb_strdup(t0) : NULL;
    char *meta = d->metadata_json ? rb_strdup(d->metadata_json) : NULL;
    if ((t0 && !title) || (d->metadata_json && !meta))
        st = rb_errmsg_set(&ing->err, RB_ERR_NOMEM, "out of memory");
    if (st == RB_OK)
        st = rb_ingest_apply_collection_policy(ing->idx, coll, &cs, &co, &title, &meta, NULL, NULL,
                                               &ing->err);
    if (st != RB_OK) {
        free(title);
        free(meta);
        rb_ingest_chunks_free(&cs);
        return st;
    }
    float *vec = NULL;
    struct rb_index_chunk *ic = rb_calloc_array(cs.n ? cs.n : 1, sizeof *ic);
    if (!ic) {
        free(title);
        free(meta);
        rb_ingest_chunks_free(&cs);
        return RB_ERR_NOMEM;
    }
    if (ing->emb && cs.n) {
        size_t dim = (size_t)ing->emb->dim, total;
        if (!rb_size_mul(cs.n, dim, &total) || !(vec = rb_malloc_array(total, sizeof *vec)))
            st = RB_ERR_NOMEM;
        const char **texts = rb_malloc_array(cs.n, sizeof *texts);
        if (!texts)
            st = RB_ERR_NOMEM;
        for (size_t i = 0; st == RB_OK && i < cs.n; i++)
            texts[i] = cs.items[i].text;
        size_t batch = ing->emb->max_batch ? ing->emb->max_batch : 32;
        for (size_t i = 0; st == RB_OK && i < cs.n; i += batch) {
            size_t n = cs.n - i < batch ? cs.n - i : batch;
            st = ing->emb->embed(ing->emb->ctx, texts + i, n, vec + i * dim, &ing->err);
        }
        free(texts);
    }
    for (size_t i = 0; st == RB_OK && i < cs.n; i++) {
        const struct rb_ingest_chunk *c = &cs.items[i];
        ic[i].ordinal = (int32_t)i;
        ic[i].text = c->text;
        ic[i].page_start = c->page_start;
        ic[i].page_end = c->page_end;
        ic[i].section = c->section;
        ic[i].byte_start = (int64_t)c->byte_start;
        ic[i].byte_end = (int64_t)c->byte_end;
        ic[i].char_start = (int64_t)c->char_start;
        ic[i].char_end = (int64_t)c->char_end;
        ic[i].token_count = c->token_count;
        if (vec) {
            ic[i].embedding = vec + i * (size_t)ing->emb->dim;
            ic[i].embedding_dim = ing->emb->dim;
        }
    }
    if (st == RB_OK) {
        struct rb_index_document doc = {0};
        doc.collection_id = coll;
        doc.source = source;
        doc.sha256 = sha;
        doc.mime = rb_ingest_format_mime(d->format);
        doc.title = title;
        doc.language = d->language;
        doc.size = sb ? (int64_t)sb->st_size : 0;
        doc.mtime_us = sb ? (int64_t)sb->st_mtim.tv_sec * 1000000 + sb->st_mtim.tv_nsec / 1000 : 0;
        doc.metadata_json = meta;
        doc.state = cs.n ? RB_INDEX_DOC_INDEXED : RB_INDEX_DOC_SKIPPED;
        doc.error = cs.n ? NULL : "no text found";
        doc.parent_id = parent;
        st = rb_index_document_put(ing->idx, &doc, ic, cs.n, doc_id, NULL);
        if (st != RB_OK)
            rb_errmsg_set(&ing->err, st, "index: %s", rb_index_errmsg(ing->idx));
    }
    *n_chunks = (int64_t)cs.n;
    free(vec);
    free(ic);
    free(title);
    free(meta);
    rb_ingest_chunks_free(&cs);
    return st;
}

/* Records a failed document in the index (no chunks), replacing stale content. */
static void store_failure(struct rb_ingest *ing, int64_t coll, const char *source, const char *sha,
                          const struct stat *sb, const char *error, int64_t parent)
{
    struct rb_index_document doc = {0};
    doc.collection_id = coll;
    doc.source = source;
    doc.sha256 = sha;
    doc.size = sb ? (int64_t)sb->st_size : 0;
    doc.state = RB_INDEX_DOC_FAILED;
    doc.error = error;
    doc.parent_id = parent;
    doc.title = rb_path_basename(source);
    int64_t id;
    if (rb_index_document_put(ing->idx, &doc, NULL, 0, &id, NULL) != RB_OK)
        RB_WARN("ingest", "cannot record failure of %s: %s", source, rb_index_errmsg(ing->idx));
}

/* Attachments become documents "<path>#attachment-<i>" under the parent; stale
 * ones from an earlier version are removed. */
static void store_attachments(struct rb_ingest *ing, int64_t coll, const char *path,
                              const struct rb_ingest_doc *d, int64_t parent, int depth,
                              int64_t *chunks)
{
    size_t i = 0;
    for (; i < d->n_attachments; i++) {
        const struct rb_ingest_attachment *a = &d->attachments[i];
        char *src = rb_asprintf("%s#attachment-%zu", path, i + 1);
        if (!src)
            return;
        uint8_t dig[RB_SHA256_LEN];
        char hex[RB_SHA256_HEX_LEN + 1] = "";
        if (rb_sha256(a->data, a->len, dig) == RB_OK)
            rb_hex_encode(dig, RB_SHA256_LEN, hex);
        struct rb_ingest_doc *ad = NULL;
        struct rb_errmsg e = {{0}};
        enum rb_status st = rb_ingest_parse_sandboxed(a->data, a->len, a->name, &ing->limits, &ad, &e);
        int64_t id = 0, n = 0;
        if (st == RB_OK)
            st = store(ing, coll, src, a->name, ad, NULL, hex, parent, &id, &n);
        if (st == RB_OK) {
            *chunks += n;
            if (depth + 1 < ATTACHMENT_DEPTH)
                store_attachments(ing, coll, src, ad, id, depth + 1, chunks);
        } else {
            char *why = rb_asprintf("attachment %s: %s", a->name, e.text[0] ? e.text : ing->err.text);
            store_failure(ing, coll, src, hex, NULL, why ? why : "attachment failed", parent);
            free(why);
        }
        rb_ingest_doc_free(ad);
        free(src);
    }
    for (;; i++) { /* fewer attachments than before */
        char *src = rb_asprintf("%s#attachment-%zu", path, i + 1);
        struct rb_index_document *old = NULL;
        enum rb_status st = src ? rb_index_document_find(ing->idx, coll, src, &old) : RB_ERR_NOMEM;
        free(src);
        if (st != RB_OK)
            break;
        if (rb_index_document_delete(ing->idx, old->id) != RB_OK)
            RB_WARN("ingest", "cannot remove a stale attachment: %s", rb_index_errmsg(ing->idx));
        rb_index_document_free(old);
    }
}

static int attempts_of(struct rb_ingest *ing, const struct job *j)
{
    sqlite3_stmt *s = prep(ing, "SELECT attempts, state FROM ingest_files WHERE collection=? AND path=?");
    int a = 0;
    if (!s)
        return 0;
    sqlite3_bind_text(s, 1, j->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, j->path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 1);
        if (state && strcmp(state, "indexed") != 0)
            a = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    return a;
}

enum rb_status rb_ingest_run_one(struct rb_ingest *ing, struct rb_ingest_job_result *r,
                                 int64_t *next_due_us)
{
    rb_errmsg_clear(&ing->err);
    struct rb_ingest_job_result local = {0};
    if (!r)
        r = &local;
    memset(r, 0, sizeof *r);
    int64_t nd = 0;
    struct job j;
    enum rb_status st = claim(ing, &j, &nd);
    if (next_due_us)
        *next_due_us = nd;
    if (st != RB_OK) {
        if (st == RB_ERR_BUSY) /* another worker took it: try again */
            return rb_ingest_run_one(ing, r == &local ? NULL : r, next_due_us);
        return st;
    }
    int64_t t0 = rb_time_mono_ns();
    r->path = rb_strdup(j.path);
    r->collection = rb_strdup(j.collection);
    const char *action = NULL;
    char *error = NULL;
    int64_t coll = 0;
    st = collection_id(ing, j.collection, &coll);
    struct stat sb;
    bool exists = st == RB_OK && lstat(j.path, &sb) == 0 && S_ISREG(sb.st_mode);
    struct rb_index_document *cur = NULL;
    if (st == RB_OK) {
        enum rb_status fs = rb_index_document_find(ing->idx, coll, j.path, &cur);
        if (fs != RB_OK && fs != RB_ERR_NOT_FOUND)
            st = rb_errmsg_set(&ing->err, fs, "index: %s", rb_index_errmsg(ing->idx));
    }
    if (st != RB_OK) {
        /* The index itself failed: leave the job for a later retry. */
        error = rb_strdup(ing->err.text);
        action = "retry";
        (void)finish(ing, &j, "failed", NULL, NULL, error, attempts_of(ing, &j),
                     rb_time_now_us() + ing->retry_base_ms * 1000, 0, 0, action);
        goto out;
    }
    if (!exists) {
        if (cur) {
            st = rb_index_document_delete(ing->idx, cur->id);
            if (st != RB_OK) {
                rb_errmsg_set(&ing->err, st, "index: %s", rb_index_errmsg(ing->idx));
                goto out;
            }
            r->document_id = cur->id;
        }
        action = "deleted";
        st = finish(ing, &j, NULL, NULL, NULL, NULL, 0, 0,
                    (double)(rb_time_mono_ns() - t0) / 1e9, 0, action);
        goto out;
    }
    char sha[RB_SHA256_HEX_LEN + 1];
    if ((st = rb_sha256_file(j.path, sha)) != RB_OK) {
        error = rb_asprintf("cannot read: %s", rb_status_str(st));
        goto failed;
    }
    if (cur && cur->sha256 && !strcmp(cur->sha256, sha) && cur->state == RB_INDEX_DOC_INDEXED) {
        action = "unchanged";
        r->document_id = cur->id;
        r->chunks = cur->chunk_count;
        st = finish(ing, &j, "indexed", &sb, sha, NULL, 0, 0, 0, 0, action);
        goto out;
    }
    if (!cur) {
        /* A known document with the same content whose file is gone: a rename. */
        struct rb_index_document **same = NULL;
        size_t n = 0;
        if (rb_index_document_find_sha256(ing->idx, coll, sha, &same, &n) == RB_OK) {
            for (size_t i = 0; i < n && !action; i++) {
                struct stat ob;
                if (same[i]->parent_id || same[i]->state != RB_INDEX_DOC_INDEXED ||
                    lstat(same[i]->source, &ob) == 0)
                    continue;
                char *old = rb_strdup(same[i]->source);
                if (rb_index_document_rename(ing->idx, same[i]->id, j.path) == RB_OK) {
                    action = "renamed";
                    r->document_id = same[i]->id;
                    r->chunks = same[i]->chunk_count;
                    /* the old path's bookkeeping goes too (its delete job finds nothing) */
                    sqlite3_stmt *d = prep(ing, "DELETE FROM ingest_files WHERE collection=? AND path=?");
                    if (d && old) {
                        sqlite3_bind_text(d, 1, j.collection, -1, SQLITE_STATIC);
                        sqlite3_bind_text(d, 2, old, -1, SQLITE_STATIC);
                        sqlite3_step(d);
                    }
                    sqlite3_finalize(d);
                }
                free(old);
            }
            rb_index_document_list_free(same, n);
        }
        if (action) {
            st = finish(ing, &j, "indexed", &sb, sha, NULL, 0, 0,
                        (double)(rb_time_mono_ns() - t0) / 1e9, 0, action);
            goto out;
        }
    }
    {
        struct rb_ingest_doc *d = NULL;
        struct rb_errmsg e = {{0}};
        st = rb_ingest_parse_file(j.path, &ing->limits, &d, &e);
        if (st != RB_OK) {
            error = rb_strdup(e.text[0] ? e.text : rb_status_str(st));
            goto failed;
        }
        int64_t id = 0, n = 0;
        st = store(ing, coll, j.path, rb_path_basename(j.path), d, &sb, sha, 0, &id, &n);
        if (st != RB_OK) {
            rb_ingest_doc_free(d);
            error = rb_strdup(ing->err.text);
            goto failed;
        }
        store_attachments(ing, coll, j.path, d, id, 0, &n);
        r->document_id = id;
        r->chunks = n;
        r->pages = d->n_pages ? d->n_pages : 1;
        rb_ingest_doc_free(d);
        action = cur ? "updated" : "added";
        r->seconds = (double)(rb_time_mono_ns() - t0) / 1e9;
        st = finish(ing, &j, "indexed", &sb, sha, NULL, 0, 0, r->seconds, r->pages, action);
        goto out;
    }
failed : {
    /* Deterministic failures (encrypted, unsupported, over a limit) are not
     * retried; others back off exponentially until max_attempts. */
    int attempts = attempts_of(ing, &j) + 1;
    bool permanent = st == RB_ERR_DENIED || st == RB_ERR_UNSUPPORTED || st == RB_ERR_TOO_LARGE ||
                     st == RB_ERR_ENCODING;
    bool quarantine = permanent || attempts >= ing->max_attempts;
    int64_t due = 0;
    if (!quarantine) {
        int64_t delay = ing->retry_base_ms * ((int64_t)1 << (attempts - 1 < 20 ? attempts - 1 : 20));
        due = rb_time_now_us() + delay * 1000;
    }
    store_failure(ing, coll, j.path, sha, &sb, error ? error : "failed", 0);
    action = quarantine ? "quarantined" : "retry";
    RB_WARN("ingest", "%s: %s (%s, attempt %d)", j.path, error ? error : "failed", action, attempts);
    enum rb_status fst = finish(ing, &j, quarantine ? "quarantined" : "failed", &sb, NULL, error,
                                attempts, due, (double)(rb_time_mono_ns() - t0) / 1e9, 0,
                                action);
    st = fst == RB_OK ? RB_OK : fst;
}
out:
    if (!r->seconds)
        r->seconds = (double)(rb_time_mono_ns() - t0) / 1e9;
    r->action = rb_strdup(action ? action : "failed");
    if (error)
        r->error = error;
    rb_index_document_free(cur);
    free(j.collection);
    free(j.path);
    if (r == &local)
        rb_ingest_job_result_clear(&local);
    return st;
}

/* ================================================================ status */

static int64_t scalar(struct rb_ingest *ing, const char *sql)
{
    sqlite3_stmt *s = prep(ing, sql);
    int64_t v = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

enum rb_status rb_ingest_get_status(struct rb_ingest *ing, struct rb_ingest_status *st)
{
    memset(st, 0, sizeof *st);
    st->queued = scalar(ing, "SELECT count(*) FROM ingest_jobs WHERE state='queued'");
    st->running = scalar(ing, "SELECT count(*) FROM ingest_jobs WHERE state='running'");
    st->done = scalar(ing, "SELECT coalesce((SELECT value FROM ingest_counters WHERE name='done'), 0)");
    st->failed = scalar(ing, "SELECT count(*) FROM ingest_files WHERE state='failed'");
    st->quarantined = scalar(ing, "SELECT count(*) FROM ingest_files WHERE state='quarantined'");
    st->files = scalar(ing, "SELECT count(*) FROM ingest_files");
    sqlite3_stmt *s = prep(ing, "SELECT sum(seconds), sum(pages), count(*) FROM (SELECT seconds, pages"
                                " FROM ingest_log WHERE action IN ('added','updated')"
                                " ORDER BY id DESC LIMIT 100)");
    if (!s)
        return RB_ERR_DB;
    if (sqlite3_step(s) == SQLITE_ROW) {
        double secs = sqlite3_column_double(s, 0);
        if (secs > 0) {
            st->pages_per_s = (double)sqlite3_column_int64(s, 1) / secs;
            st->docs_per_s = (double)sqlite3_column_int64(s, 2) / secs;
        }
    }
    sqlite3_finalize(s);
    return RB_OK;
}

enum rb_status rb_ingest_failures_json(struct rb_ingest *ing, size_t limit, char **out)
{
    *out = NULL;
    sqlite3_stmt *s = prep(ing, "SELECT collection, path, state, attempts, error, updated_us FROM"
                                " ingest_files WHERE state != 'indexed' ORDER BY updated_us DESC LIMIT ?");
    if (!s)
        return RB_ERR_DB;
    sqlite3_bind_int64(s, 1, limit ? (int64_t)limit : -1);
    cJSON *arr = cJSON_CreateArray();
    while (arr && sqlite3_step(s) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "collection", (const char *)sqlite3_column_text(s, 0));
        cJSON_AddStringToObject(o, "path", (const char *)sqlite3_column_text(s, 1));
        cJSON_AddStringToObject(o, "state", (const char *)sqlite3_column_text(s, 2));
        cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(s, 3));
        const char *e = (const char *)sqlite3_column_text(s, 4);
        cJSON_AddStringToObject(o, "error", e ? e : "");
        char ts[40];
        rb_time_format_utc(sqlite3_column_int64(s, 5), ts, sizeof ts);
        cJSON_AddStringToObject(o, "updated", ts);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(s);
    *out = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return *out ? RB_OK : RB_ERR_NOMEM;
}

enum rb_status rb_ingest_retry_quarantined(struct rb_ingest *ing, size_t *n)
{
    enum rb_status st = exec(ing, "BEGIN IMMEDIATE;"
                                  "INSERT OR IGNORE INTO ingest_jobs(collection, path, due_us, created_us)"
                                  " SELECT collection, path, 0, 0 FROM ingest_files WHERE state='quarantined';"
                                  "UPDATE ingest_files SET attempts=0, state='failed' WHERE state='quarantined';");
    if (st)
        return st;
    if (n)
        *n = (size_t)sqlite3_changes(ing->db);
    return exec(ing, "COMMIT");
}

/* ================================================================ daemon */

struct watch {
    int wd;
    char *dir;
    const char *collection; /* borrowed from the folder list */
};
struct folder {
    char *dir;
    char *collection;
};
struct daemon {
    struct rb_ingest *ing;
    int fd;
    struct watch *w;
    size_t n, cap;
    struct folder *folders;
    size_t n_folders;
};

static void add_watches(struct daemon *dm, const char *dir, const char *collection, int depth)
{
    if (depth > 64 || dm->fd < 0)
        return;
    int wd = inotify_add_watch(dm->fd, dir,
                               IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
                                   IN_CREATE | IN_DELETE_SELF | IN_ATTRIB | IN_ONLYDIR);
    if (wd < 0) {
        RB_WARN("ingest", "cannot watch %s: %s (periodic rescans still cover it)", dir,
                strerror(errno));
        return;
    }
    bool known = false;
    for (size_t i = 0; i < dm->n; i++)
        if (dm->w[i].wd == wd)
            known = true;
    if (!known) {
        if (dm->n == dm->cap) {
            size_t nc = dm->cap ? dm->cap * 2 : 32;
            struct watch *nw = realloc(dm->w, nc * sizeof *nw);
            if (!nw)
                return;
            dm->w = nw;
            dm->cap = nc;
        }
        dm->w[dm->n].wd = wd;
        dm->w[dm->n].dir = rb_strdup(dir);
        dm->w[dm->n].collection = collection;
        dm->n++;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = rb_path_join(dir, e->d_name);
        struct stat sb;
        if (p && lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            add_watches(dm, p, collection, depth + 1);
        free(p);
    }
    if (d)
        closedir(d);
}

static enum rb_status parse_folders(struct daemon *dm, const struct rb_config *cfg,
                                    struct rb_errmsg *err)
{
    const char *spec = rb_config_str(cfg, "ingest", "watch", NULL);
    if (!spec || !*spec)
        return RB_OK;
    char *copy = rb_strdup(spec);
    if (!copy)
        return RB_ERR_NOMEM;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *colon = strrchr(item, ':');
        if (!colon || colon == item || !colon[1]) {
            free(copy);
            return rb_errmsg_set(err, RB_ERR_CONFIG,
                                 "ingest.watch: '%s' is not DIR:COLLECTION", item);
        }
        *colon = '\0';
        char *coll = colon + 1;
        size_t cl = strlen(coll);
        while (cl && coll[cl - 1] == ' ')
            coll[--cl] = '\0';
        struct folder *nf = realloc(dm->folders, (dm->n_folders + 1) * sizeof *nf);
        if (!nf) {
            free(copy);
            return RB_ERR_NOMEM;
        }
        dm->folders = nf;
        char abs[PATH_MAX];
        dm->folders[dm->n_folders].dir = rb_strdup(realpath(item, abs) ? abs : item);
        dm->folders[dm->n_folders].collection = rb_strdup(coll);
        dm->n_folders++;
    }
    free(copy);
    return RB_OK;
}

static void rescan(struct daemon *dm, bool force)
{
    for (size_t i = 0; i < dm->n_folders; i++) {
        size_t q = 0;
        if (rb_fs_mkdirs(dm->folders[i].dir, 0755) != RB_OK)
            RB_WARN("ingest", "cannot create watched folder %s", dm->folders[i].dir);
        if (rb_ingest_enqueue_path(dm->ing, dm->folders[i].collection, dm->folders[i].dir, force,
                                   &q) != RB_OK)
            RB_WARN("ingest", "rescan of %s: %s", dm->folders[i].dir, rb_ingest_errmsg(dm->ing));
        else if (q)
            RB_INFO("ingest", "rescan of %s queued %zu jobs", dm->folders[i].dir, q);
        add_watches(dm, dm->folders[i].dir, dm->folders[i].collection, 0);
    }
}

static void handle_events(struct daemon *dm, bool *overflow)
{
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(dm->fd, buf, sizeof buf);
        if (len <= 0)
            return;
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                *overflow = true;
                continue;
            }
            struct watch *w = NULL;
            for (size_t i = 0; i < dm->n; i++)
                if (dm->w[i].wd == ev->wd)
                    w = &dm->w[i];
            if (!w || !ev->len || skipped_name(ev->name))
                continue;
            char *path = rb_path_join(w->dir, ev->name);
            if (!path)
                continue;
            if (ev->mask & IN_ISDIR) {
                if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                    add_watches(dm, path, w->collection, 0);
                    size_t q;
                    if (rb_ingest_enqueue_path(dm->ing, w->collection, path, false, &q) != RB_OK)
                        RB_WARN("ingest", "%s", rb_ingest_errmsg(dm->ing));
                } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                    size_t q;
                    if (rb_ingest_enqueue_path(dm->ing, w->collection, path, false, &q) != RB_OK)
                        RB_WARN("ingest", "%s", rb_ingest_errmsg(dm->ing));
                }
            } else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB)) {
                /* IN_CREATE alone is not enough: the file is still being written. */
                if (add_job(dm->ing, w->collection, path, rb_time_now_us()) != RB_OK)
                    RB_WARN("ingest", "cannot queue %s: %s", path, rb_ingest_errmsg(dm->ing));
            }
            free(path);
        }
    }
}

enum rb_status rb_ingest_daemon_run(struct rb_ingest *ing, volatile int *stop)
{
    struct daemon dm = {.ing = ing, .fd = -1};
    struct rb_errmsg err = {{0}};
    enum rb_status st = parse_folders(&dm, ing->cfg, &err);
    if (st != RB_OK) {
        rb_errmsg_set(&ing->err, st, "%s", err.text);
        return st;
    }
    int64_t rescan_s = 300;
    if ((st = rb_config_int(ing->cfg, "ingest", "rescan_s", 300, 1, 86400 * 7, &rescan_s, &err))) {
        rb_errmsg_set(&ing->err, st, "%s", err.text);
        goto done;
    }
    dm.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (dm.fd < 0)
        RB_WARN("ingest", "inotify unavailable (%s): relying on rescans every %lld s",
                strerror(errno), (long long)rescan_s);
    RB_INFO("ingest", "watching %zu folders, rescan every %lld s", dm.n_folders,
            (long long)rescan_s);
    rescan(&dm, false);
    int64_t next_rescan = rb_time_mono_ns() + rescan_s * 1000000000LL;
    while (!*stop) {
        bool overflow = false;
        if (dm.fd >= 0)
            handle_events(&dm, &overflow);
        if (overflow || rb_time_mono_ns() >= next_rescan) {
            rescan(&dm, false);
            next_rescan = rb_time_mono_ns() + rescan_s * 1000000000LL;
        }
        struct rb_ingest_job_result r;
        int64_t next_due = 0;
        enum rb_status js = rb_ingest_run_one(ing, &r, &next_due);
        if (js == RB_OK) {
            RB_INFO("ingest", "%s %s (%lld chunks, %.2f s)%s%s", r.action, r.path,
                    (long long)r.chunks, r.seconds, r.error ? ": " : "", r.error ? r.error : "");
            rb_ingest_job_result_clear(&r);
            continue;
        }
        rb_ingest_job_result_clear(&r);
        if (js != RB_ERR_NOT_FOUND)
            RB_WARN("ingest", "job: %s", rb_ingest_errmsg(ing));
        /* Sleep until an event, the next retry or the next rescan. */
        int64_t wait_ms = (next_rescan - rb_time_mono_ns()) / 1000000;
        if (next_due) {
            int64_t d = (next_due - rb_time_now_us()) / 1000;
            if (d < wait_ms)
                wait_ms = d;
        }
        if (js != RB_ERR_NOT_FOUND && wait_ms > 1000)
            wait_ms = 1000;
        if (wait_ms < 10)
            wait_ms = 10;
        if (wait_ms > 1000)
            wait_ms = 1000; /* notice *stop promptly */
        struct pollfd p = {dm.fd, POLLIN, 0};
        if (dm.fd >= 0)
            poll(&p, 1, (int)wait_ms);
        else
            usleep((useconds_t)wait_ms * 1000);
    }
    st = RB_OK;
done:
    if (dm.fd >= 0)
        close(dm.fd);
    for (size_t i = 0; i < dm.n; i++)
        free(dm.w[i].dir);
    free(dm.w);
    for (size_t i = 0; i < dm.n_folders; i++) {
        free(dm.folders[i].dir);
        free(dm.folders[i].collection);
    }
    free(dm.folders);
    return st;
}
