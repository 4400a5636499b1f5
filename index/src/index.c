/* The index handle: connections, collections and documents. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index-impl.h"

enum rb_status rb__schema_migrate(sqlite3 *db, const char *path, bool writable,
                                  struct rb_errmsg *err);
int64_t rb__vcoll_ntotal(const struct rb__vcoll *vc);

/* ================================================================ errors */

static struct rb_errmsg *thread_err(struct rb_index *idx)
{
    struct rb_errmsg *e = pthread_getspecific(idx->err_key);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (e && pthread_setspecific(idx->err_key, e) != 0) {
            free(e);
            e = NULL;
        }
    }
    return e;
}

enum rb_status rb__err(struct rb_index *idx, enum rb_status st, const char *fmt, ...)
{
    struct rb_errmsg *e = thread_err(idx);
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    return st;
}

enum rb_status rb__dberr(struct rb_index *idx, sqlite3 *db, const char *what)
{
    int rc = sqlite3_errcode(db) & 0xff;
    enum rb_status st = RB_ERR_DB;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        st = RB_ERR_BUSY;
    else if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
        st = RB_ERR_CORRUPT;
    else if (rc == SQLITE_NOMEM)
        st = RB_ERR_NOMEM;
    else if (rc == SQLITE_FULL || rc == SQLITE_IOERR)
        st = RB_ERR_IO;
    else if (rc == SQLITE_READONLY)
        st = RB_ERR_DENIED;
    return rb__err(idx, st, "%s: %s", what, sqlite3_errmsg(db));
}

const char *rb_index_errmsg(struct rb_index *idx)
{
    if (!idx)
        return "";
    struct rb_errmsg *e = thread_err(idx);
    return e ? e->text : "out of memory";
}

static void clear_err(struct rb_index *idx)
{
    struct rb_errmsg *e = pthread_getspecific(idx->err_key);
    if (e)
        e->text[0] = 0;
}

/* =========================================================== connections */

enum rb_status rb__db_connect(struct rb_index *idx, bool writable, sqlite3 **out,
                              struct rb_errmsg *err)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_NOMUTEX | (writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                                : SQLITE_OPEN_READONLY);
    int rc = sqlite3_open_v2(idx->db_path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        enum rb_status st = rb_errmsg_set(err, rc == SQLITE_CANTOPEN ? RB_ERR_IO : RB_ERR_DB,
                                          "cannot open %s: %s", idx->db_path,
                                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return st;
    }
    sqlite3_extended_result_codes(db, 0);
    sqlite3_busy_timeout(db, idx->busy_timeout_ms);
    /* mmap and a larger page cache: FTS5 queries touch many pages, and pread per
     * page costs more than the query itself (measured in bench/index). */
    const char *pragmas = writable ? "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                     "PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824; "
                                     "PRAGMA cache_size=-32768;"
                                   : "PRAGMA foreign_keys=ON; PRAGMA mmap_size=1073741824; "
                                     "PRAGMA cache_size=-32768;";
    char *msg = NULL;
    rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = rb__fts5_register(db);
    if (rc != SQLITE_OK) {
        enum rb_status st;
        if (rc == SQLITE_NOTADB)
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s is not a ragbox database (not SQLite)",
                               idx->db_path);
        else if (rc == SQLITE_CORRUPT)
            st = rb_errmsg_set(err, RB_ERR_CORRUPT, "%s is corrupt: %s", idx->db_path,
                               msg ? msg : sqlite3_errmsg(db));
        else
            st = rb_errmsg_set(err, RB_ERR_DB, "%s: %s", idx->db_path,
                               msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return st;
    }
    *out = db;
    return RB_OK;
}

enum rb_status rb__reader_get(struct rb_index *idx, sqlite3 **out)
{
    pthread_mutex_lock(&idx->pool_mutex);
    if (idx->pool_n > 0) {
        *out = idx->pool[--idx->pool_n];
        pthread_mutex_unlock(&idx->pool_mutex);
        return RB_OK;
    }
    pthread_mutex_unlock(&idx->pool_mutex);
    struct rb_errmsg e;
    enum rb_status st = rb__db_connect(idx, false, out, &e);
    if (st != RB_OK)
        return rb__err(idx, st, "%s", e.text);
    return RB_OK;
}

/* ====================================================== statement cache */

/* Reader connections keep the search path's statements prepared: parsing SQL
 * was a large share of a keyword search's CPU (perf under bench/web). A
 * statement released with rb__stmt_release stays on its connection, reset and
 * unbound; the next rb__prepare_cached of the same SQL text on that connection
 * reuses it unless it is still running. A connection is used by one thread at
 * a time (the pool), so no locking is needed. */
/* Our cached statements carry this prefix, which tells them apart from the
 * statements SQLite's own modules (FTS5) keep on the same connection. */
#define CACHE_MARK "/*rb-cached*/"

int rb__prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    size_t mark = sizeof CACHE_MARK - 1;
    for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
        const char *t = sqlite3_sql(s);
        if (t && strncmp(t, CACHE_MARK, mark) == 0 && strcmp(t + mark, sql) == 0 &&
            !sqlite3_stmt_busy(s)) {
            *out = s;
            return SQLITE_OK;
        }
    }
    size_t len = strlen(sql);
    char *text = malloc(mark + len + 1);
    if (!text) {
        *out = NULL;
        return SQLITE_NOMEM;
    }
    memcpy(text, CACHE_MARK, mark);
    memcpy(text + mark, sql, len + 1);
    int rc = sqlite3_prepare_v3(db, text, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    free(text);
    return rc;
}

void rb__stmt_release(sqlite3_stmt *s)
{
    if (!s)
        return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

void rb__db_close(sqlite3 *db)
{
    if (!db)
        return;
    size_t mark = sizeof CACHE_MARK - 1;
    for (bool again = true; again;) {
        again = false;
        for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
            const char *t = sqlite3_sql(s);
            if (t && strncmp(t, CACHE_MARK, mark) == 0) {
                sqlite3_finalize(s);
                again = true; /* the list changed: walk it again */
                break;
            }
        }
    }
    sqlite3_close(db);
}

void rb__reader_put(struct rb_index *idx, sqlite3 *db)
{
    if (!db)
        return;
    pthread_mutex_lock(&idx->pool_mutex);
    if (idx->pool_n == idx->pool_cap) {
        size_t cap = idx->pool_cap ? idx->pool_cap * 2 : 8;
        sqlite3 **p = realloc(idx->pool, cap * sizeof *p);
        if (!p || cap > 256) {
            free(p == idx->pool ? NULL : p);
            pthread_mutex_unlock(&idx->pool_mutex);
            rb__db_close(db);
            return;
        }
        idx->pool = p;
        idx->pool_cap = cap;
    }
    idx->pool[idx->pool_n++] = db;
    pthread_mutex_unlock(&idx->pool_mutex);
}

/* ================================================================= open */

static void err_free(void *p)
{
    free(p);
}

static enum rb_status read_config(struct rb_index *idx, const struct rb_config *cfg,
                                  struct rb_errmsg *err)
{
    int64_t v;
    double d;
    enum rb_status st;
#define INT_KEY(key, def, lo, hi, field)                                                           \
    if ((st = rb_config_int(cfg, "index", key, def, lo, hi, &v, err)) != RB_OK)                    \
        return st;                                                                                 \
    idx->field = v;
    INT_KEY("rrf_k", 60, 1, 100000, rrf_k)
    /* auto_hnsw_threshold is the old name (auto switched to HNSW then): still
     * accepted, with a warning, when auto_ivf_threshold is not set. */
    const char *legacy = rb_config_str(cfg, "index", "auto_hnsw_threshold", NULL);
    bool has_new = rb_config_str(cfg, "index", "auto_ivf_threshold", NULL) != NULL;
    if (legacy && !has_new) {
        RB_WARN(RB_INDEX_LOG, "[index] auto_hnsw_threshold is obsolete: read as "
                              "auto_ivf_threshold (\"auto\" collections now switch to IVF)");
        INT_KEY("auto_hnsw_threshold", 20000, 1000, INT64_MAX / 2, auto_ivf_threshold)
    } else {
        INT_KEY("auto_ivf_threshold", 20000, 1000, INT64_MAX / 2, auto_ivf_threshold)
    }
    INT_KEY("ivf_train_max", 100000, 1000, 100000000, ivf_train_max)
    INT_KEY("hnsw_m", 32, 4, 128, hnsw_m)
    INT_KEY("hnsw_ef_search", 128, 8, 4096, hnsw_ef_search)
    INT_KEY("ivf_nprobe", 0, 0, 65536, ivf_nprobe)
    INT_KEY("overfetch", 4, 1, 100, overfetch)
    INT_KEY("busy_timeout_ms", 10000, 0, 600000, busy_timeout_ms)
#undef INT_KEY
    if ((st = rb_config_double(cfg, "index", "weight_keyword", 1.0, 0.0, 1000.0, &d, err)) != RB_OK)
        return st;
    idx->weight_keyword = d;
    if ((st = rb_config_double(cfg, "index", "weight_vector", 1.0, 0.0, 1000.0, &d, err)) != RB_OK)
        return st;
    idx->weight_vector = d;
    if ((st = rb_config_double(cfg, "index", "keyword_max_df", 0.05, 0.001, 1.0, &d, err)) != RB_OK)
        return st;
    idx->keyword_max_df = d;
    return RB_OK;
}

enum rb_status rb__vectors_open(struct rb_index *idx, struct rb_errmsg *err);
enum rb_status rb__flush_locked(struct rb_index *idx);

enum rb_status rb_index_open(const struct rb_index_options *opts, struct rb_index **out,
                             struct rb_errmsg *err)
{
    struct rb_errmsg scratch;
    if (!err)
        err = &scratch;
    *out = NULL;
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "index: no data directory");
    struct rb_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    idx->read_only = opts->read_only;
    enum rb_status st = RB_OK;
    struct rb_config *empty = NULL;
    const struct rb_config *cfg = opts->config;
    if (!cfg) {
        if (rb_config_create(&empty) != RB_OK) {
            free(idx);
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        }
        cfg = empty;
    }
    st = read_config(idx, cfg, err);
    rb_config_free(empty);
    if (st != RB_OK) {
        free(idx);
        return st;
    }
    pthread_key_create(&idx->err_key, err_free);
    pthread_mutex_init(&idx->write_mutex, NULL);
    pthread_mutex_init(&idx->pool_mutex, NULL);
    pthread_rwlock_init(&idx->vlock, NULL);
    idx->data_dir = rb_strdup(opts->data_dir);
    idx->db_path = rb_path_join(opts->data_dir, "ragbox.db");
    idx->faiss_dir = rb_path_join(opts->data_dir, "faiss");
    if (!idx->data_dir || !idx->db_path || !idx->faiss_dir) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!idx->read_only) {
        if (rb_fs_mkdirs(idx->data_dir, 0750) != RB_OK ||
            rb_fs_mkdirs(idx->faiss_dir, 0750) != RB_OK) {
            st = rb_errmsg_set(err, RB_ERR_IO, "cannot create %s: %s", idx->faiss_dir,
                               strerror(errno));
            goto fail;
        }
    } else if (!rb_fs_exists(idx->db_path)) {
        st = rb_errmsg_set(err, RB_ERR_NOT_FOUND, "%s does not exist", idx->db_path);
        goto fail;
    }
    if (rb_fs_is_dir(idx->db_path)) {
        st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s is a directory, not a ragbox database",
                           idx->db_path);
        goto fail;
    }
    st = rb__db_connect(idx, !idx->read_only, &idx->db_write, err);
    if (st != RB_OK)
        goto fail;
    st = rb__schema_migrate(idx->db_write, idx->db_path, !idx->read_only, err);
    if (st != RB_OK)
        goto fail;
    st = rb__vectors_open(idx, err);
    if (st != RB_OK)
        goto fail;
    *out = idx;
    return RB_OK;
fail:
    rb_index_close(idx);
    return st;
}

void rb_index_close(struct rb_index *idx)
{
    if (!idx)
        return;
    if (idx->db_write && !idx->read_only) {
        pthread_mutex_lock(&idx->write_mutex);
        pthread_rwlock_wrlock(&idx->vlock);
        if (rb__flush_locked(idx) != RB_OK)
            RB_ERROR(RB_INDEX_LOG, "closing: %s", rb_index_errmsg(idx));
        pthread_rwlock_unlock(&idx->vlock);
        pthread_mutex_unlock(&idx->write_mutex);
    }
    for (size_t i = 0; i < idx->n_vcolls; i++)
        rb__vcoll_free(idx->vcolls[i]);
    free(idx->vcolls);
    for (size_t i = 0; i < idx->pool_n; i++)
        rb__db_close(idx->pool[i]);
    free(idx->pool);
    rb__db_close(idx->db_write);
    struct rb_errmsg *e = pthread_getspecific(idx->err_key);
    free(e);
    pthread_setspecific(idx->err_key, NULL);
    pthread_key_delete(idx->err_key);
    pthread_mutex_destroy(&idx->write_mutex);
    pthread_mutex_destroy(&idx->pool_mutex);
    pthread_rwlock_destroy(&idx->vlock);
    free(idx->data_dir);
    free(idx->db_path);
    free(idx->faiss_dir);
    free(idx);
}

const char *rb_index_db_path(const struct rb_index *idx)
{
    return idx ? idx->db_path : NULL;
}

enum rb_status rb_index_flush(struct rb_index *idx)
{
    clear_err(idx);
    if (idx->read_only)
        return RB_OK;
    pthread_mutex_lock(&idx->write_mutex);
    pthread_rwlock_wrlock(&idx->vlock);
    enum rb_status st = rb__flush_locked(idx);
    pthread_rwlock_unlock(&idx->vlock);
    pthread_mutex_unlock(&idx->write_mutex);
    return st;
}

/* ========================================================= write helpers */

/* Starts a write: takes the writer mutex and BEGIN IMMEDIATE. */
static enum rb_status write_begin(struct rb_index *idx)
{
    clear_err(idx);
    if (idx->read_only)
        return rb__err(idx, RB_ERR_DENIED, "index opened read-only");
    pthread_mutex_lock(&idx->write_mutex);
    if (sqlite3_exec(idx->db_write, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        enum rb_status st = rb__dberr(idx, idx->db_write, "begin");
        pthread_mutex_unlock(&idx->write_mutex);
        return st;
    }
    return RB_OK;
}

/* Ends a write: COMMIT when st is RB_OK (else ROLLBACK); keeps the mutex if keep. */
static enum rb_status write_end(struct rb_index *idx, enum rb_status st, bool keep)
{
    if (st == RB_OK) {
        if (sqlite3_exec(idx->db_write, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            st = rb__dberr(idx, idx->db_write, "commit");
            sqlite3_exec(idx->db_write, "ROLLBACK", NULL, NULL, NULL);
        }
    } else {
        sqlite3_exec(idx->db_write, "ROLLBACK", NULL, NULL, NULL);
    }
    if (!keep || st != RB_OK)
        pthread_mutex_unlock(&idx->write_mutex);
    return st;
}

static sqlite3_stmt *prep(struct rb_index *idx, sqlite3 *db, const char *sql, enum rb_status *st)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        *st = rb__dberr(idx, db, "prepare");
        return NULL;
    }
    *st = RB_OK;
    return s;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? rb_strdup(t) : NULL;
}

/* ============================================================ collections */

static bool name_ok(const char *name)
{
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > RB_INDEX_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 && !alnum)
            return false;
        if (!alnum && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

static bool json_object_ok(const char *json)
{
    cJSON *j = NULL;
    struct rb_errmsg e;
    if (rb_json_parse(json, strlen(json), 64, &j, &e) != RB_OK)
        return false;
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

/* Validates a factory string by building a tiny index from it. */
enum rb_status rb__factory_check(struct rb_index *idx, const char *factory);

enum rb_status rb_index_collection_create(struct rb_index *idx, const char *name,
                                          const struct rb_index_collection_options *opts,
                                          int64_t *out_id)
{
    if (out_id)
        *out_id = 0;
    clear_err(idx);
    if (!name_ok(name))
        return rb__err(idx, RB_ERR_INVALID,
                       "invalid collection name '%s': 1-%d characters of A-Z a-z 0-9 . _ -, "
                       "starting with a letter or digit",
                       name ? name : "", RB_INDEX_NAME_MAX);
    int dim = opts ? opts->dim : 0;
    if (dim < 0 || dim > RB_INDEX_DIM_MAX)
        return rb__err(idx, RB_ERR_INVALID, "vector dimension %d out of range 1..%d", dim,
                       RB_INDEX_DIM_MAX);
    const char *factory = opts && opts->factory && *opts->factory ? opts->factory : "auto";
    const char *policy = opts && opts->policy_json ? opts->policy_json : "{}";
    if (!json_object_ok(policy))
        return rb__err(idx, RB_ERR_INVALID, "collection policy must be a JSON object");
    enum rb_status st = rb__factory_check(idx, factory);
    if (st != RB_OK)
        return st;
    if ((st = write_begin(idx)) != RB_OK)
        return st;
    sqlite3_stmt *s = prep(idx, idx->db_write,
                           "INSERT INTO collections(name, dim, factory, policy_json, created_us) "
                           "VALUES(?,?,?,?,?)",
                           &st);
    if (s) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 2, dim);
        sqlite3_bind_text(s, 3, factory, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, policy, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 5, rb_time_now_us());
        int rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT)
            st = rb__err(idx, RB_ERR_EXISTS, "collection '%s' already exists", name);
        else if (rc != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "create collection");
        sqlite3_finalize(s);
    }
    int64_t id = sqlite3_last_insert_rowid(idx->db_write);
    st = write_end(idx, st, false);
    if (st == RB_OK && out_id)
        *out_id = id;
    if (st == RB_OK) {
        /* A stale file of an earlier collection with the same id must not be picked up. */
        char *path = rb__faiss_path(idx, id);
        if (path)
            unlink(path);
        free(path);
        RB_INFO(RB_INDEX_LOG, "collection '%s' created (id %lld)", name, (long long)id);
    }
    return st;
}

void rb_index_collection_free(struct rb_index_collection *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->factory);
    free(c->index_type);
    free(c->index_desc);
    free(c->policy_json);
    free(c);
}

void rb_index_collection_list_free(struct rb_index_collection *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].name);
        free(list[i].factory);
        free(list[i].index_type);
        free(list[i].index_desc);
        free(list[i].policy_json);
    }
    free(list);
}

#define COLL_SELECT                                                                                \
    "SELECT c.id, c.name, c.dim, c.factory, c.policy_json, c.created_us,"                         \
    " (SELECT count(*) FROM documents d WHERE d.collection_id=c.id),"                              \
    " (SELECT count(*) FROM chunks k WHERE k.collection_id=c.id),"                                 \
    " (SELECT count(*) FROM chunks k WHERE k.collection_id=c.id AND k.embedding IS NOT NULL)"     \
    " FROM collections c "

static enum rb_status coll_fill(struct rb_index *idx, sqlite3_stmt *s, struct rb_index_collection *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    c->name = col_dup(s, 1);
    c->dim = sqlite3_column_int(s, 2);
    c->factory = col_dup(s, 3);
    c->policy_json = col_dup(s, 4);
    c->created_us = sqlite3_column_int64(s, 5);
    c->documents = sqlite3_column_int64(s, 6);
    c->chunks = sqlite3_column_int64(s, 7);
    c->vectors = sqlite3_column_int64(s, 8);
    pthread_rwlock_rdlock(&idx->vlock);
    struct rb__vcoll *vc = rb__vcoll_find(idx, c->id);
    enum rb__vkind kind = vc && vc->loaded ? vc->kind : RB__VKIND_NONE;
    int64_t nt = 0;
    if (vc && vc->loaded && vc->faiss)
        nt = rb__vcoll_ntotal(vc);
    c->index_desc = vc && vc->loaded ? rb__vcoll_describe(idx, vc)
                                     : rb_strdup(c->vectors ? "not loaded" : "none");
    pthread_rwlock_unlock(&idx->vlock);
    c->faiss_ntotal = nt;
    c->index_type = rb_strdup(vc && vc->loaded ? rb__vkind_name(kind) : (c->vectors ? "not loaded" : "none"));
    if (!c->name || !c->factory || !c->policy_json || !c->index_type || !c->index_desc)
        return RB_ERR_NOMEM;
    return RB_OK;
}

static enum rb_status coll_query(struct rb_index *idx, const char *where, const char *name,
                                 int64_t id, struct rb_index_collection **out, size_t *n)
{
    *out = NULL;
    if (n)
        *n = 0;
    clear_err(idx);
    sqlite3 *db;
    enum rb_status st = rb__reader_get(idx, &db);
    if (st != RB_OK)
        return st;
    char *sql = rb_asprintf("%s%s", COLL_SELECT, where);
    sqlite3_stmt *s = sql ? prep(idx, db, sql, &st) : NULL;
    free(sql);
    if (!s) {
        rb__reader_put(idx, db);
        return st == RB_OK ? RB_ERR_NOMEM : st;
    }
    if (name)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    else if (id)
        sqlite3_bind_int64(s, 1, id);
    struct rb_index_collection *arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            struct rb_index_collection *p = realloc(arr, cap * sizeof *p);
            if (!p) {
                st = RB_ERR_NOMEM;
                break;
            }
            arr = p;
        }
        st = coll_fill(idx, s, &arr[cnt]);
        cnt++;
        if (st != RB_OK)
            break;
    }
    if (st == RB_OK && rc != SQLITE_DONE)
        st = rb__dberr(idx, db, "list collections");
    sqlite3_finalize(s);
    rb__reader_put(idx, db);
    if (st != RB_OK) {
        rb_index_collection_list_free(arr, cnt);
        return st == RB_ERR_NOMEM ? rb__err(idx, st, "out of memory") : st;
    }
    if (!n) {
        if (cnt == 0) {
            free(arr);
            return rb__err(idx, RB_ERR_NOT_FOUND, "no collection '%s'",
                           name ? name : "(by id)");
        }
        *out = arr; /* exactly one row (unique key) */
        return RB_OK;
    }
    *out = arr;
    *n = cnt;
    return RB_OK;
}

enum rb_status rb_index_collection_get(struct rb_index *idx, const char *name,
                                       struct rb_index_collection **out)
{
    if (!name) {
        *out = NULL;
        return rb__err(idx, RB_ERR_INVALID, "no collection name");
    }
    enum rb_status st = coll_query(idx, "WHERE c.name = ?1", name, 0, out, NULL);
    return st;
}

enum rb_status rb_index_collection_get_by_id(struct rb_index *idx, int64_t id,
                                             struct rb_index_collection **out)
{
    enum rb_status st = coll_query(idx, "WHERE c.id = ?1", NULL, id, out, NULL);
    if (st == RB_ERR_NOT_FOUND)
        rb__err(idx, st, "no collection with id %lld", (long long)id);
    return st;
}

enum rb_status rb_index_collection_list(struct rb_index *idx, struct rb_index_collection **out,
                                        size_t *n)
{
    return coll_query(idx, "ORDER BY c.name", NULL, 0, out, n);
}

enum rb_status rb_index_collection_delete(struct rb_index *idx, int64_t id)
{
    enum rb_status st = write_begin(idx);
    if (st != RB_OK)
        return st;
    sqlite3_stmt *s = prep(idx, idx->db_write, "DELETE FROM collections WHERE id=?", &st);
    if (s) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "delete collection");
        else if (sqlite3_changes(idx->db_write) == 0)
            st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld", (long long)id);
        sqlite3_finalize(s);
    }
    st = write_end(idx, st, true);
    if (st != RB_OK)
        return st;
    pthread_rwlock_wrlock(&idx->vlock);
    rb__vcoll_forget(idx, id);
    pthread_rwlock_unlock(&idx->vlock);
    char *path = rb__faiss_path(idx, id);
    if (path && unlink(path) != 0 && errno != ENOENT)
        RB_WARN(RB_INDEX_LOG, "cannot remove %s: %s", path, strerror(errno));
    if (path)
        if (rb_fs_sync_parent(path) != RB_OK)
        RB_DEBUG(RB_INDEX_LOG, "cannot sync the directory of %s", path);
    free(path);
    pthread_mutex_unlock(&idx->write_mutex);
    RB_INFO(RB_INDEX_LOG, "collection %lld deleted", (long long)id);
    return RB_OK;
}

enum rb_status rb_index_collection_set_policy(struct rb_index *idx, int64_t id,
                                              const char *policy_json)
{
    clear_err(idx);
    if (!policy_json || !json_object_ok(policy_json))
        return rb__err(idx, RB_ERR_INVALID, "collection policy must be a JSON object");
    enum rb_status st = write_begin(idx);
    if (st != RB_OK)
        return st;
    sqlite3_stmt *s =
        prep(idx, idx->db_write, "UPDATE collections SET policy_json=? WHERE id=?", &st);
    if (s) {
        sqlite3_bind_text(s, 1, policy_json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, id);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "set policy");
        else if (sqlite3_changes(idx->db_write) == 0)
            st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld", (long long)id);
        sqlite3_finalize(s);
    }
    return write_end(idx, st, false);
}
