/* The access store: users, groups, grants, sessions, API keys, history. */
#include <argon2.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/web.h"

/* The shared database's PRAGMA application_id ('RAGB'), as the index module sets it. */
#define WEB_APPLICATION_ID 0x52414742

struct rb_web_auth {
    sqlite3 *db;
    pthread_mutex_t lock;
    pthread_key_t errkey; /* per-thread struct rb_errmsg */
    uint32_t t_cost, m_cost, parallelism;
    int64_t session_ttl_us, session_idle_us;
    char dummy_hash[160]; /* verified against for unknown users (constant work) */
};

/* ============================================================== errors */

static struct rb_errmsg *errbuf(struct rb_web_auth *a)
{
    struct rb_errmsg *e = pthread_getspecific(a->errkey);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (e)
            pthread_setspecific(a->errkey, e);
    }
    return e;
}

static enum rb_status fail(struct rb_web_auth *a, enum rb_status st, const char *fmt, ...)
    RB_PRINTF(3, 4);
static enum rb_status fail(struct rb_web_auth *a, enum rb_status st, const char *fmt, ...)
{
    struct rb_errmsg *e = errbuf(a);
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    return st;
}

static enum rb_status dbfail(struct rb_web_auth *a, const char *what)
{
    return fail(a, RB_ERR_DB, "%s: %s", what, sqlite3_errmsg(a->db));
}

const char *rb_web_auth_errmsg(struct rb_web_auth *a)
{
    struct rb_errmsg *e = errbuf(a);
    return e ? e->text : "out of memory";
}

/* ============================================================== names */

const char *rb_web_role_name(enum rb_web_role r)
{
    switch (r) {
    case RB_WEB_ROLE_ADMIN:
        return "admin";
    case RB_WEB_ROLE_AUDITOR:
        return "auditor";
    default:
        return "user";
    }
}

enum rb_status rb_web_role_parse(const char *text, enum rb_web_role *out)
{
    if (!text)
        return RB_ERR_INVALID;
    if (strcmp(text, "admin") == 0)
        *out = RB_WEB_ROLE_ADMIN;
    else if (strcmp(text, "auditor") == 0)
        *out = RB_WEB_ROLE_AUDITOR;
    else if (strcmp(text, "user") == 0)
        *out = RB_WEB_ROLE_USER;
    else
        return RB_ERR_INVALID;
    return RB_OK;
}

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {
    {"read", RB_WEB_SCOPE_READ},
    {"write", RB_WEB_SCOPE_WRITE},
    {"admin", RB_WEB_SCOPE_ADMIN},
    {"openai", RB_WEB_SCOPE_OPENAI},
};

enum rb_status rb_web_scope_parse(const char *text, unsigned *out)
{
    *out = 0;
    if (!text || !*text)
        return RB_ERR_INVALID;
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < RB_ARRAY_LEN(scope_names); i++) {
            if (strlen(scope_names[i].name) == len && memcmp(scope_names[i].name, p, len) == 0) {
                *out |= scope_names[i].bit;
                found = true;
            }
        }
        if (!found)
            return RB_ERR_INVALID;
        p += len;
        if (*p == ',')
            p++;
    }
    return *out ? RB_OK : RB_ERR_INVALID;
}

void rb_web_scope_format(unsigned scopes, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < RB_ARRAY_LEN(scope_names); i++) {
        if (!(scopes & scope_names[i].bit))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "", scope_names[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

static bool valid_name(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > RB_WEB_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 && !alnum)
            return false;
        if (!alnum && c != '.' && c != '_' && c != '-' && c != '@')
            return false;
    }
    return true;
}

/* ============================================================== schema */

static const char *const schema_v1 =
    "CREATE TABLE web_users("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    "  pw_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL);"
    "CREATE TABLE web_groups(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  created_us INTEGER NOT NULL);"
    "CREATE TABLE web_group_members("
    "  group_id INTEGER NOT NULL REFERENCES web_groups(id) ON DELETE CASCADE,"
    "  user_id INTEGER NOT NULL REFERENCES web_users(id) ON DELETE CASCADE,"
    "  PRIMARY KEY(group_id, user_id));"
    "CREATE INDEX web_group_members_user ON web_group_members(user_id);"
    "CREATE TABLE web_grants("
    "  collection_id INTEGER NOT NULL, kind INTEGER NOT NULL, principal_id INTEGER NOT NULL,"
    "  can_read INTEGER NOT NULL, can_write INTEGER NOT NULL,"
    "  PRIMARY KEY(collection_id, kind, principal_id));"
    "CREATE TABLE web_sessions("
    "  id_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES web_users(id)"
    "  ON DELETE CASCADE, csrf TEXT NOT NULL, created_us INTEGER NOT NULL,"
    "  expires_us INTEGER NOT NULL, last_seen_us INTEGER NOT NULL);"
    "CREATE TABLE web_api_keys("
    "  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES web_users(id)"
    "  ON DELETE CASCADE, name TEXT NOT NULL, prefix TEXT NOT NULL,"
    "  key_hash TEXT NOT NULL UNIQUE, scopes INTEGER NOT NULL, created_us INTEGER NOT NULL,"
    "  last_used_us INTEGER, revoked_us INTEGER);"
    "CREATE TABLE web_history("
    "  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES web_users(id)"
    "  ON DELETE CASCADE, collection TEXT, question TEXT NOT NULL, answer TEXT,"
    "  citations_json TEXT, created_us INTEGER NOT NULL);"
    "CREATE INDEX web_history_user ON web_history(user_id, id);";

static enum rb_status migrate(struct rb_web_auth *a)
{
    sqlite3_stmt *st = NULL;
    int app_id = 0;
    if (sqlite3_prepare_v2(a->db, "PRAGMA application_id", -1, &st, NULL) != SQLITE_OK)
        return fail(a, RB_ERR_FORMAT, "not a ragbox database: %s", sqlite3_errmsg(a->db));
    if (sqlite3_step(st) == SQLITE_ROW)
        app_id = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (app_id != 0 && app_id != WEB_APPLICATION_ID)
        return fail(a, RB_ERR_FORMAT, "not a ragbox database (application_id %d)", app_id);
    /* An SQLite file of another program: tables but no schema_versions. */
    int n_tables = 0, has_versions = 0;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT count(*), sum(name='schema_versions') FROM sqlite_schema "
                           "WHERE type='table'",
                           -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            n_tables = sqlite3_column_int(st, 0);
            has_versions = sqlite3_column_int(st, 1);
        }
        sqlite3_finalize(st);
    }
    if (n_tables > 0 && !has_versions)
        return fail(a, RB_ERR_FORMAT, "not a ragbox database (an SQLite file of another program)");
    char *emsg = NULL;
    if (sqlite3_exec(a->db,
                     "BEGIN IMMEDIATE;"
                     "CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY,"
                     "                                           version INTEGER NOT NULL);",
                     NULL, NULL, &emsg) != SQLITE_OK) {
        enum rb_status s = fail(a, RB_ERR_DB, "schema: %s", emsg ? emsg : "?");
        sqlite3_free(emsg);
        return s;
    }
    if (app_id == 0)
        (void)sqlite3_exec(a->db, "PRAGMA application_id = 1380009794", NULL, NULL, NULL);
    int version = 0;
    if (sqlite3_prepare_v2(a->db, "SELECT version FROM schema_versions WHERE module='web'", -1,
                           &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    enum rb_status status = RB_OK;
    if (version > RB_WEB_SCHEMA_VERSION) {
        status = fail(a, RB_ERR_UNSUPPORTED, "web schema version %d is newer than this ragbox (%d)",
                      version, RB_WEB_SCHEMA_VERSION);
    } else if (version < 1) {
        if (sqlite3_exec(a->db, schema_v1, NULL, NULL, &emsg) != SQLITE_OK ||
            sqlite3_exec(a->db,
                         "INSERT OR REPLACE INTO schema_versions(module, version) VALUES('web', 1)",
                         NULL, NULL, &emsg) != SQLITE_OK) {
            status = fail(a, RB_ERR_DB, "web schema v1: %s", emsg ? emsg : "?");
            sqlite3_free(emsg);
        }
    }
    (void)sqlite3_exec(a->db, status == RB_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return status;
}

static void free_err(void *p)
{
    free(p);
}

enum rb_status rb_web_auth_open(const struct rb_web_auth_options *opts, struct rb_web_auth **out,
                                struct rb_errmsg *err)
{
    *out = NULL;
    if (!opts || !opts->db_path)
        return rb_errmsg_set(err, RB_ERR_INVALID, "web auth: no database path");
    struct rb_web_auth *a = calloc(1, sizeof *a);
    if (!a)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&a->lock, NULL);
    pthread_key_create(&a->errkey, free_err);
    int64_t t = 2, m = 19456, p = 1, ttl = 8 * 3600, idle = 3600;
    enum rb_status st = RB_OK;
    if ((st = rb_config_int(opts->config, "web", "argon2_t_cost", t, 1, 20, &t, err)) ||
        (st = rb_config_int(opts->config, "web", "argon2_m_cost_kib", m, 1024, 4 << 20, &m, err)) ||
        (st = rb_config_int(opts->config, "web", "argon2_parallelism", p, 1, 16, &p, err)) ||
        (st = rb_config_int(opts->config, "web", "session_ttl_s", ttl, 60, 30 * 86400, &ttl,
                            err)) ||
        (st = rb_config_int(opts->config, "web", "session_idle_s", idle, 60, 30 * 86400, &idle,
                            err))) {
        rb_web_auth_close(a);
        return st;
    }
    a->t_cost = (uint32_t)t;
    a->m_cost = (uint32_t)m;
    a->parallelism = (uint32_t)p;
    a->session_ttl_us = ttl * 1000000;
    a->session_idle_us = idle * 1000000;
    if (sqlite3_open_v2(opts->db_path, &a->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rb_errmsg_set(err, RB_ERR_DB, "%s: %s", opts->db_path,
                      a->db ? sqlite3_errmsg(a->db) : "cannot open");
        rb_web_auth_close(a);
        return RB_ERR_DB;
    }
    sqlite3_busy_timeout(a->db, 10000);
    char *emsg = NULL;
    if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;", NULL, NULL,
                     &emsg) != SQLITE_OK) {
        rb_errmsg_set(err, RB_ERR_FORMAT, "%s: not a ragbox database (%s)", opts->db_path,
                      emsg ? emsg : "?");
        sqlite3_free(emsg);
        rb_web_auth_close(a);
        return RB_ERR_FORMAT;
    }
    st = migrate(a);
    if (st != RB_OK) {
        rb_errmsg_set(err, st, "%s: %s", opts->db_path, rb_web_auth_errmsg(a));
        rb_web_auth_close(a);
        return st;
    }
    /* A real hash to verify against when the user does not exist. */
    uint8_t salt[16], pw[16];
    if (rb_random_bytes(salt, sizeof salt) != RB_OK || rb_random_bytes(pw, sizeof pw) != RB_OK ||
        argon2id_hash_encoded(a->t_cost, a->m_cost, a->parallelism, pw, sizeof pw, salt,
                              sizeof salt, 32, a->dummy_hash,
                              sizeof a->dummy_hash) != ARGON2_OK) {
        rb_web_auth_close(a);
        return rb_errmsg_set(err, RB_ERR_CRYPTO, "argon2id initialisation failed");
    }
    *out = a;
    return RB_OK;
}

void rb_web_auth_close(struct rb_web_auth *a)
{
    if (!a)
        return;
    if (a->db)
        sqlite3_close_v2(a->db);
    struct rb_errmsg *e = pthread_getspecific(a->errkey);
    free(e);
    pthread_setspecific(a->errkey, NULL);
    pthread_key_delete(a->errkey);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ============================================================ helpers */

/* Prepares under the lock (caller holds it). */
static sqlite3_stmt *prep(struct rb_web_auth *a, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static enum rb_status hash_password(struct rb_web_auth *a, const char *password, char *out,
                                    size_t size)
{
    size_t len = strlen(password);
    if (len < RB_WEB_PASSWORD_MIN || len > RB_WEB_PASSWORD_MAX)
        return fail(a, RB_ERR_INVALID, "passwords are %d to %d bytes", RB_WEB_PASSWORD_MIN,
                    RB_WEB_PASSWORD_MAX);
    uint8_t salt[16];
    if (rb_random_bytes(salt, sizeof salt) != RB_OK)
        return fail(a, RB_ERR_CRYPTO, "no random bytes");
    int rc = argon2id_hash_encoded(a->t_cost, a->m_cost, a->parallelism, password, len, salt,
                                   sizeof salt, 32, out, size);
    if (rc != ARGON2_OK)
        return fail(a, RB_ERR_CRYPTO, "argon2id: %s", argon2_error_message(rc));
    return RB_OK;
}

static void row_user(sqlite3_stmt *st, struct rb_web_user *u)
{
    /* columns: id, name, role, disabled, created_us */
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(st, 0);
    const unsigned char *name = sqlite3_column_text(st, 1);
    rb_strlcpy(u->name, name ? (const char *)name : "", sizeof u->name);
    enum rb_web_role r = RB_WEB_ROLE_USER;
    if (rb_web_role_parse((const char *)sqlite3_column_text(st, 2), &r) != RB_OK)
        r = RB_WEB_ROLE_USER; /* unknown text: least privilege */
    u->role = r;
    u->disabled = sqlite3_column_int(st, 3) != 0;
    u->created_us = sqlite3_column_int64(st, 4);
}

#define USER_COLS "id, name, role, disabled, created_us"

/* Looks up a user id by name (lock held). 0 when absent. */
static int64_t user_id_locked(struct rb_web_auth *a, const char *name)
{
    sqlite3_stmt *st = prep(a, "SELECT id FROM web_users WHERE name=?");
    int64_t id = 0;
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

static int64_t group_id_locked(struct rb_web_auth *a, const char *name)
{
    sqlite3_stmt *st = prep(a, "SELECT id FROM web_groups WHERE name=?");
    int64_t id = 0;
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

/* Runs a one-shot statement with text/int binds described by fmt ("t" text, "i" int64). */
static enum rb_status exec_locked(struct rb_web_auth *a, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = prep(a, sql);
    if (!st)
        return dbfail(a, "prepare");
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 't')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return fail(a, RB_ERR_EXISTS, "already exists");
    if (rc != SQLITE_DONE)
        return dbfail(a, "write");
    return RB_OK;
}

/* ============================================================== users */

enum rb_status rb_web_user_add(struct rb_web_auth *a, const char *name, enum rb_web_role role,
                               const char *password, int64_t *out_id)
{
    if (!valid_name(name))
        return fail(a, RB_ERR_INVALID,
                    "user names are 1..64 characters of A-Z a-z 0-9 . _ - @, starting with a "
                    "letter or digit");
    if (!password)
        return fail(a, RB_ERR_INVALID, "a password is required");
    char hash[160];
    enum rb_status s = hash_password(a, password, hash, sizeof hash);
    if (s != RB_OK)
        return s;
    int64_t now = rb_time_now_us();
    pthread_mutex_lock(&a->lock);
    s = exec_locked(a,
                    "INSERT INTO web_users(name, role, pw_hash, created_us, updated_us) "
                    "VALUES(?,?,?,?,?)",
                    "tttii", name, rb_web_role_name(role), hash, now, now);
    if (s == RB_ERR_EXISTS)
        s = fail(a, RB_ERR_EXISTS, "user '%s' already exists", name);
    if (s == RB_OK && out_id)
        *out_id = sqlite3_last_insert_rowid(a->db);
    pthread_mutex_unlock(&a->lock);
    return s;
}

static enum rb_status user_get(struct rb_web_auth *a, const char *name, int64_t id,
                               struct rb_web_user *out)
{
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, name ? "SELECT " USER_COLS " FROM web_users WHERE name=?"
                                    : "SELECT " USER_COLS " FROM web_users WHERE id=?");
    enum rb_status s = RB_OK;
    if (!st) {
        s = dbfail(a, "user");
    } else {
        if (name)
            sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            row_user(st, out);
        else
            s = fail(a, RB_ERR_NOT_FOUND, "no such user");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_user_get(struct rb_web_auth *a, const char *name, struct rb_web_user *out)
{
    if (!name)
        return fail(a, RB_ERR_INVALID, "no name");
    return user_get(a, name, 0, out);
}

enum rb_status rb_web_user_get_by_id(struct rb_web_auth *a, int64_t id, struct rb_web_user *out)
{
    return user_get(a, NULL, id, out);
}

enum rb_status rb_web_user_list(struct rb_web_auth *a, struct rb_web_user **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT " USER_COLS " FROM web_users ORDER BY name");
    enum rb_status s = RB_OK;
    size_t cap = 0;
    if (!st)
        s = dbfail(a, "users");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct rb_web_user *g = realloc(*out, nc * sizeof **out);
            if (!g) {
                s = fail(a, RB_ERR_NOMEM, "out of memory");
                break;
            }
            *out = g;
            cap = nc;
        }
        row_user(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (s != RB_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return s;
}

static enum rb_status user_update(struct rb_web_auth *a, const char *name, const char *sql,
                                  const char *fmt, const char *tval, int64_t ival)
{
    pthread_mutex_lock(&a->lock);
    enum rb_status s;
    if (fmt[0] == 't')
        s = exec_locked(a, sql, "tit", tval, rb_time_now_us(), name);
    else if (fmt[0] == 'i')
        s = exec_locked(a, sql, "iit", ival, rb_time_now_us(), name);
    else
        s = exec_locked(a, sql, "t", name);
    if (s == RB_OK && sqlite3_changes(a->db) == 0)
        s = fail(a, RB_ERR_NOT_FOUND, "no user '%s'", name);
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_user_delete(struct rb_web_auth *a, const char *name)
{
    if (!name)
        return fail(a, RB_ERR_INVALID, "no name");
    pthread_mutex_lock(&a->lock);
    int64_t id = user_id_locked(a, name);
    enum rb_status s = RB_OK;
    if (!id) {
        s = fail(a, RB_ERR_NOT_FOUND, "no user '%s'", name);
    } else {
        (void)sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if ((s = exec_locked(a, "DELETE FROM web_grants WHERE kind=0 AND principal_id=?", "i",
                             id)) == RB_OK)
            s = exec_locked(a, "DELETE FROM web_users WHERE id=?", "i", id);
        (void)sqlite3_exec(a->db, s == RB_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_user_set_role(struct rb_web_auth *a, const char *name, enum rb_web_role r)
{
    return user_update(a, name, "UPDATE web_users SET role=?, updated_us=? WHERE name=?", "t",
                       rb_web_role_name(r), 0);
}

enum rb_status rb_web_user_set_disabled(struct rb_web_auth *a, const char *name, bool disabled)
{
    enum rb_status s = user_update(
        a, name, "UPDATE web_users SET disabled=?, updated_us=? WHERE name=?", "i", NULL, disabled);
    if (s == RB_OK && disabled) {
        pthread_mutex_lock(&a->lock);
        s = exec_locked(a,
                        "DELETE FROM web_sessions WHERE user_id=(SELECT id FROM web_users "
                        "WHERE name=?)",
                        "t", name);
        pthread_mutex_unlock(&a->lock);
    }
    return s;
}

enum rb_status rb_web_user_set_password(struct rb_web_auth *a, const char *name,
                                        const char *password)
{
    if (!password)
        return fail(a, RB_ERR_INVALID, "a password is required");
    char hash[160];
    enum rb_status s = hash_password(a, password, hash, sizeof hash);
    if (s != RB_OK)
        return s;
    s = user_update(a, name, "UPDATE web_users SET pw_hash=?, updated_us=? WHERE name=?", "t",
                    hash, 0);
    if (s == RB_OK) {
        pthread_mutex_lock(&a->lock);
        s = exec_locked(a,
                        "DELETE FROM web_sessions WHERE user_id=(SELECT id FROM web_users "
                        "WHERE name=?)",
                        "t", name);
        pthread_mutex_unlock(&a->lock);
    }
    return s;
}

enum rb_status rb_web_user_verify(struct rb_web_auth *a, const char *name, const char *password,
                                  struct rb_web_user *out)
{
    char hash[160] = "";
    bool known = false;
    struct rb_web_user u;
    memset(&u, 0, sizeof u);
    if (name && password && strlen(password) <= RB_WEB_PASSWORD_MAX) {
        pthread_mutex_lock(&a->lock);
        sqlite3_stmt *st = prep(a, "SELECT " USER_COLS ", pw_hash FROM web_users WHERE name=?");
        if (st) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) == SQLITE_ROW) {
                row_user(st, &u);
                const unsigned char *h = sqlite3_column_text(st, 5);
                known = h && rb_strlcpy(hash, (const char *)h, sizeof hash);
            }
            sqlite3_finalize(st);
        }
        pthread_mutex_unlock(&a->lock);
    }
    /* Same work whether the user exists or not (no user enumeration by timing). */
    const char *pw = password ? password : "";
    size_t pwlen = strlen(pw) <= RB_WEB_PASSWORD_MAX ? strlen(pw) : 0;
    int rc = argon2id_verify(known ? hash : a->dummy_hash, pw, pwlen);
    if (!known || rc != ARGON2_OK || u.disabled)
        return fail(a, RB_ERR_AUTH, "wrong user name or password");
    if (out)
        *out = u;
    return RB_OK;
}

/* ============================================================== groups */

enum rb_status rb_web_group_add(struct rb_web_auth *a, const char *name, int64_t *out_id)
{
    if (!valid_name(name))
        return fail(a, RB_ERR_INVALID, "group names are 1..64 characters of A-Z a-z 0-9 . _ - @");
    pthread_mutex_lock(&a->lock);
    enum rb_status s = exec_locked(a, "INSERT INTO web_groups(name, created_us) VALUES(?,?)",
                                   "ti", name, rb_time_now_us());
    if (s == RB_ERR_EXISTS)
        s = fail(a, RB_ERR_EXISTS, "group '%s' already exists", name);
    if (s == RB_OK && out_id)
        *out_id = sqlite3_last_insert_rowid(a->db);
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_group_delete(struct rb_web_auth *a, const char *name)
{
    pthread_mutex_lock(&a->lock);
    int64_t id = name ? group_id_locked(a, name) : 0;
    enum rb_status s = RB_OK;
    if (!id) {
        s = fail(a, RB_ERR_NOT_FOUND, "no group '%s'", name ? name : "");
    } else {
        (void)sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if ((s = exec_locked(a, "DELETE FROM web_grants WHERE kind=1 AND principal_id=?", "i",
                             id)) == RB_OK)
            s = exec_locked(a, "DELETE FROM web_groups WHERE id=?", "i", id);
        (void)sqlite3_exec(a->db, s == RB_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

static enum rb_status member_change(struct rb_web_auth *a, const char *group, const char *user,
                                    bool add)
{
    pthread_mutex_lock(&a->lock);
    int64_t gid = group ? group_id_locked(a, group) : 0;
    int64_t uid = user ? user_id_locked(a, user) : 0;
    enum rb_status s;
    if (!gid)
        s = fail(a, RB_ERR_NOT_FOUND, "no group '%s'", group ? group : "");
    else if (!uid)
        s = fail(a, RB_ERR_NOT_FOUND, "no user '%s'", user ? user : "");
    else if (add)
        s = exec_locked(a, "INSERT OR IGNORE INTO web_group_members(group_id, user_id) VALUES(?,?)",
                        "ii", gid, uid);
    else
        s = exec_locked(a, "DELETE FROM web_group_members WHERE group_id=? AND user_id=?", "ii",
                        gid, uid);
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_group_member_add(struct rb_web_auth *a, const char *group, const char *user)
{
    return member_change(a, group, user, true);
}

enum rb_status rb_web_group_member_remove(struct rb_web_auth *a, const char *group,
                                          const char *user)
{
    return member_change(a, group, user, false);
}

enum rb_status rb_web_group_list(struct rb_web_auth *a, cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return fail(a, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT g.name, u.name FROM web_groups g "
                               "LEFT JOIN web_group_members m ON m.group_id=g.id "
                               "LEFT JOIN web_users u ON u.id=m.user_id ORDER BY g.name, u.name");
    enum rb_status s = st ? RB_OK : dbfail(a, "groups");
    cJSON *cur = NULL;
    const char *curname = NULL;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *g = (const char *)sqlite3_column_text(st, 0);
        const char *u = (const char *)sqlite3_column_text(st, 1);
        if (!cur || strcmp(curname, g) != 0) {
            cur = cJSON_CreateObject();
            cJSON_AddItemToArray(*out, cur);
            cJSON *nm = cJSON_AddStringToObject(cur, "name", g);
            cJSON_AddArrayToObject(cur, "members");
            curname = nm ? nm->valuestring : "";
        }
        if (u)
            cJSON_AddItemToArray(cJSON_GetObjectItem(cur, "members"), cJSON_CreateString(u));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (s != RB_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return s;
}

/* ============================================================== grants */

enum rb_status rb_web_grant_set(struct rb_web_auth *a, int64_t collection_id,
                                enum rb_web_principal kind, const char *name, bool read,
                                bool write)
{
    if (collection_id <= 0)
        return fail(a, RB_ERR_INVALID, "bad collection");
    pthread_mutex_lock(&a->lock);
    int64_t pid = name ? (kind == RB_WEB_PRINCIPAL_GROUP ? group_id_locked(a, name)
                                                         : user_id_locked(a, name))
                       : 0;
    enum rb_status s;
    if (!pid)
        s = fail(a, RB_ERR_NOT_FOUND, "no %s '%s'", kind == RB_WEB_PRINCIPAL_GROUP ? "group" : "user",
                 name ? name : "");
    else if (!read && !write)
        s = exec_locked(a,
                        "DELETE FROM web_grants WHERE collection_id=? AND kind=? AND "
                        "principal_id=?",
                        "iii", collection_id, (int64_t)kind, pid);
    else
        s = exec_locked(a,
                        "INSERT OR REPLACE INTO web_grants(collection_id, kind, principal_id, "
                        "can_read, can_write) VALUES(?,?,?,?,?)",
                        "iiiii", collection_id, (int64_t)kind, pid, (int64_t)read, (int64_t)write);
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_grant_list(struct rb_web_auth *a, int64_t collection_id, cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return fail(a, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(
        a, "SELECT g.collection_id, g.kind, COALESCE(u.name, gr.name), g.can_read, g.can_write "
           "FROM web_grants g LEFT JOIN web_users u ON g.kind=0 AND u.id=g.principal_id "
           "LEFT JOIN web_groups gr ON g.kind=1 AND gr.id=g.principal_id "
           "WHERE ?1 <= 0 OR g.collection_id=?1 ORDER BY 1, 2, 3");
    enum rb_status s = st ? RB_OK : dbfail(a, "grants");
    if (st)
        sqlite3_bind_int64(st, 1, collection_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "collection_id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddStringToObject(o, "kind", sqlite3_column_int(st, 1) ? "group" : "user");
        const char *nm = (const char *)sqlite3_column_text(st, 2);
        cJSON_AddStringToObject(o, "name", nm ? nm : "");
        cJSON_AddBoolToObject(o, "read", sqlite3_column_int(st, 3));
        cJSON_AddBoolToObject(o, "write", sqlite3_column_int(st, 4));
        cJSON_AddItemToArray(*out, o);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (s != RB_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return s;
}

enum rb_status rb_web_grant_drop_collection(struct rb_web_auth *a, int64_t collection_id)
{
    pthread_mutex_lock(&a->lock);
    enum rb_status s =
        exec_locked(a, "DELETE FROM web_grants WHERE collection_id=?", "i", collection_id);
    pthread_mutex_unlock(&a->lock);
    return s;
}

bool rb_web_auth_can(struct rb_web_auth *a, int64_t user_id, int64_t collection_id, bool write)
{
    if (user_id <= 0 || collection_id <= 0)
        return false;
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(
        a, "SELECT u.role, u.disabled, EXISTS(SELECT 1 FROM web_grants g WHERE "
           "g.collection_id=?2 AND (CASE WHEN ?3 THEN g.can_write ELSE g.can_read END) AND "
           "((g.kind=0 AND g.principal_id=u.id) OR (g.kind=1 AND g.principal_id IN "
           "(SELECT group_id FROM web_group_members WHERE user_id=u.id)))) "
           "FROM web_users u WHERE u.id=?1");
    if (st) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, collection_id);
        sqlite3_bind_int(st, 3, write ? 1 : 0);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 1) == 0) {
            const char *role = (const char *)sqlite3_column_text(st, 0);
            ok = (role && strcmp(role, "admin") == 0) || sqlite3_column_int(st, 2) != 0;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* ============================================================ api keys */

static void sha256_hex(const char *s, char hex[65])
{
    uint8_t d[RB_SHA256_LEN];
    if (rb_sha256(s, strlen(s), d) != RB_OK)
        memset(d, 0, sizeof d);
    rb_hex_encode(d, sizeof d, hex);
}

enum rb_status rb_web_apikey_create(struct rb_web_auth *a, const char *user, const char *name,
                                    unsigned scopes, char **out_key, int64_t *out_id)
{
    *out_key = NULL;
    if (!scopes || scopes > 15)
        return fail(a, RB_ERR_INVALID, "bad scopes");
    if (name && (strlen(name) > 128 || !rb_utf8_valid(name, strlen(name))))
        return fail(a, RB_ERR_INVALID, "key names are at most 128 bytes of UTF-8");
    uint8_t raw[32];
    if (rb_random_bytes(raw, sizeof raw) != RB_OK)
        return fail(a, RB_ERR_CRYPTO, "no random bytes");
    char hex[65], key[70], hash[65], prefix[13];
    rb_hex_encode(raw, sizeof raw, hex);
    snprintf(key, sizeof key, "rbk_%s", hex);
    sha256_hex(key, hash);
    memcpy(prefix, key, 12);
    prefix[12] = '\0';
    pthread_mutex_lock(&a->lock);
    int64_t uid = user ? user_id_locked(a, user) : 0;
    enum rb_status s;
    if (!uid)
        s = fail(a, RB_ERR_NOT_FOUND, "no user '%s'", user ? user : "");
    else
        s = exec_locked(a,
                        "INSERT INTO web_api_keys(user_id, name, prefix, key_hash, scopes, "
                        "created_us) VALUES(?,?,?,?,?,?)",
                        "itttii", uid, name ? name : "", prefix, hash, (int64_t)scopes,
                        rb_time_now_us());
    if (s == RB_OK && out_id)
        *out_id = sqlite3_last_insert_rowid(a->db);
    pthread_mutex_unlock(&a->lock);
    if (s == RB_OK) {
        *out_key = rb_strdup(key);
        if (!*out_key)
            s = fail(a, RB_ERR_NOMEM, "out of memory");
    }
    return s;
}

enum rb_status rb_web_apikey_revoke(struct rb_web_auth *a, int64_t key_id, int64_t owner_id)
{
    pthread_mutex_lock(&a->lock);
    enum rb_status s = exec_locked(a,
                                   "UPDATE web_api_keys SET revoked_us=? WHERE id=? AND "
                                   "revoked_us IS NULL AND (?<=0 OR user_id=?)",
                                   "iiii", rb_time_now_us(), key_id, owner_id, owner_id);
    if (s == RB_OK && sqlite3_changes(a->db) == 0)
        s = fail(a, RB_ERR_NOT_FOUND, "no such active key");
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_apikey_list(struct rb_web_auth *a, int64_t user_id, cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return fail(a, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st =
        prep(a, "SELECT k.id, u.name, k.name, k.prefix, k.scopes, k.created_us, k.last_used_us, "
                "k.revoked_us FROM web_api_keys k JOIN web_users u ON u.id=k.user_id "
                "WHERE ?1<=0 OR k.user_id=?1 ORDER BY k.id");
    enum rb_status s = st ? RB_OK : dbfail(a, "keys");
    if (st)
        sqlite3_bind_int64(st, 1, user_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        char scopes[48];
        rb_web_scope_format((unsigned)sqlite3_column_int(st, 4), scopes, sizeof scopes);
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddStringToObject(o, "user", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(o, "name", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddStringToObject(o, "prefix", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddStringToObject(o, "scopes", scopes);
        cJSON_AddNumberToObject(o, "created_us", (double)sqlite3_column_int64(st, 5));
        if (sqlite3_column_type(st, 6) != SQLITE_NULL)
            cJSON_AddNumberToObject(o, "last_used_us", (double)sqlite3_column_int64(st, 6));
        cJSON_AddBoolToObject(o, "revoked", sqlite3_column_type(st, 7) != SQLITE_NULL);
        cJSON_AddItemToArray(*out, o);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (s != RB_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return s;
}

enum rb_status rb_web_apikey_check(struct rb_web_auth *a, const char *key,
                                   struct rb_web_user *out_user, unsigned *out_scopes,
                                   int64_t *out_key_id)
{
    if (!key || strncmp(key, "rbk_", 4) != 0 || strlen(key) != 68)
        return fail(a, RB_ERR_AUTH, "invalid API key");
    char hash[65];
    sha256_hex(key, hash);
    enum rb_status s = fail(a, RB_ERR_AUTH, "invalid API key");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT u.id, u.name, u.role, u.disabled, u.created_us, k.scopes, "
                               "k.id, COALESCE(k.last_used_us, 0) FROM web_api_keys k JOIN "
                               "web_users u ON u.id=k.user_id "
                               "WHERE k.key_hash=? AND k.revoked_us IS NULL");
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 3) == 0) {
            row_user(st, out_user);
            *out_scopes = (unsigned)sqlite3_column_int(st, 5);
            int64_t kid = sqlite3_column_int64(st, 6);
            int64_t now = rb_time_now_us();
            /* last_used is kept to the minute: the hot path stays read-only. */
            bool touch = sqlite3_column_int64(st, 7) < now - 60 * 1000000LL;
            if (out_key_id)
                *out_key_id = kid;
            s = RB_OK;
            sqlite3_finalize(st);
            st = NULL;
            if (touch)
                (void)exec_locked(a, "UPDATE web_api_keys SET last_used_us=? WHERE id=?", "ii",
                                  now, kid);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

/* ============================================================ sessions */

enum rb_status rb_web_session_create(struct rb_web_auth *a, int64_t user_id, char out_id[65],
                                     char out_csrf[65])
{
    uint8_t raw[32], csrf[32];
    if (rb_random_bytes(raw, sizeof raw) != RB_OK || rb_random_bytes(csrf, sizeof csrf) != RB_OK)
        return fail(a, RB_ERR_CRYPTO, "no random bytes");
    rb_hex_encode(raw, sizeof raw, out_id);
    rb_hex_encode(csrf, sizeof csrf, out_csrf);
    char hash[65];
    sha256_hex(out_id, hash);
    int64_t now = rb_time_now_us();
    pthread_mutex_lock(&a->lock);
    /* Housekeeping: drop expired sessions. */
    (void)exec_locked(a, "DELETE FROM web_sessions WHERE expires_us < ? OR last_seen_us < ?", "ii",
                      now, now - a->session_idle_us);
    enum rb_status s = exec_locked(a,
                                   "INSERT INTO web_sessions(id_hash, user_id, csrf, created_us, "
                                   "expires_us, last_seen_us) VALUES(?,?,?,?,?,?)",
                                   "titiii", hash, user_id, out_csrf, now,
                                   now + a->session_ttl_us, now);
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_session_check(struct rb_web_auth *a, const char *id,
                                    struct rb_web_user *out_user, char out_csrf[65])
{
    if (!id || strlen(id) != 64)
        return fail(a, RB_ERR_AUTH, "no valid session");
    char hash[65];
    sha256_hex(id, hash);
    int64_t now = rb_time_now_us();
    enum rb_status s = fail(a, RB_ERR_AUTH, "session expired or unknown");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT u.id, u.name, u.role, u.disabled, u.created_us, s.csrf, "
                               "s.last_seen_us FROM web_sessions s JOIN web_users u ON "
                               "u.id=s.user_id WHERE s.id_hash=? AND s.expires_us>?");
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 3) == 0 &&
            sqlite3_column_int64(st, 6) >= now - a->session_idle_us) {
            row_user(st, out_user);
            const char *c = (const char *)sqlite3_column_text(st, 5);
            rb_strlcpy(out_csrf, c ? c : "", 65);
            bool touch = sqlite3_column_int64(st, 6) < now - 60 * 1000000LL;
            s = RB_OK;
            sqlite3_finalize(st);
            st = NULL;
            if (touch) /* at most once a minute: keep the hot path read-only */
                (void)exec_locked(a, "UPDATE web_sessions SET last_seen_us=? WHERE id_hash=?",
                                  "it", now, hash);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_session_delete(struct rb_web_auth *a, const char *id)
{
    if (!id)
        return RB_OK;
    char hash[65];
    sha256_hex(id, hash);
    pthread_mutex_lock(&a->lock);
    enum rb_status s = exec_locked(a, "DELETE FROM web_sessions WHERE id_hash=?", "t", hash);
    pthread_mutex_unlock(&a->lock);
    return s;
}

/* ============================================================= history */

enum rb_status rb_web_history_add(struct rb_web_auth *a, int64_t user_id, const char *collection,
                                  const char *question, const char *answer,
                                  const char *citations_json, int64_t *out_id)
{
    if (!question)
        return fail(a, RB_ERR_INVALID, "no question");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "INSERT INTO web_history(user_id, collection, question, answer, "
                               "citations_json, created_us) VALUES(?,?,?,?,?,?)");
    enum rb_status s = RB_OK;
    if (!st) {
        s = dbfail(a, "history");
    } else {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_text(st, 2, collection, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, question, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, answer, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, citations_json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, rb_time_now_us());
        if (sqlite3_step(st) != SQLITE_DONE)
            s = dbfail(a, "history");
        else if (out_id)
            *out_id = sqlite3_last_insert_rowid(a->db);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_history_list(struct rb_web_auth *a, int64_t user_id, int64_t limit,
                                   cJSON **out)
{
    *out = cJSON_CreateArray();
    if (!*out)
        return fail(a, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&a->lock);
    sqlite3_stmt *st = prep(a, "SELECT id, collection, question, answer, citations_json, "
                               "created_us FROM web_history WHERE user_id=? ORDER BY id DESC "
                               "LIMIT ?");
    enum rb_status s = st ? RB_OK : dbfail(a, "history");
    if (st) {
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    }
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        const char *c = (const char *)sqlite3_column_text(st, 1);
        if (c)
            cJSON_AddStringToObject(o, "collection", c);
        cJSON_AddStringToObject(o, "question", (const char *)sqlite3_column_text(st, 2));
        const char *ans = (const char *)sqlite3_column_text(st, 3);
        if (ans)
            cJSON_AddStringToObject(o, "answer", ans);
        const char *cit = (const char *)sqlite3_column_text(st, 4);
        cJSON *cj = cit ? cJSON_Parse(cit) : NULL;
        if (cj)
            cJSON_AddItemToObject(o, "citations", cj);
        cJSON_AddNumberToObject(o, "created_us", (double)sqlite3_column_int64(st, 5));
        cJSON_AddItemToArray(*out, o);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&a->lock);
    if (s != RB_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return s;
}

enum rb_status rb_web_history_delete(struct rb_web_auth *a, int64_t user_id, int64_t entry_id,
                                     int64_t *out_deleted)
{
    pthread_mutex_lock(&a->lock);
    enum rb_status s =
        entry_id > 0
            ? exec_locked(a, "DELETE FROM web_history WHERE user_id=? AND id=?", "ii", user_id,
                          entry_id)
            : exec_locked(a, "DELETE FROM web_history WHERE user_id=?", "i", user_id);
    if (out_deleted)
        *out_deleted = s == RB_OK ? sqlite3_changes(a->db) : 0;
    pthread_mutex_unlock(&a->lock);
    return s;
}

enum rb_status rb_web_history_prune(struct rb_web_auth *a, int64_t before_us, bool dry_run,
                                    int64_t *out_rows, int64_t *out_oldest_us)
{
    *out_rows = 0;
    if (out_oldest_us)
        *out_oldest_us = 0;
    pthread_mutex_lock(&a->lock);
    enum rb_status s = RB_OK;
    if (dry_run) {
        sqlite3_stmt *st = prep(a, "SELECT count(*) FROM web_history WHERE created_us < ?");
        if (!st) {
            s = dbfail(a, "history");
        } else {
            sqlite3_bind_int64(st, 1, before_us);
            if (sqlite3_step(st) == SQLITE_ROW)
                *out_rows = sqlite3_column_int64(st, 0);
            else
                s = dbfail(a, "history");
            sqlite3_finalize(st);
        }
    } else {
        s = exec_locked(a, "DELETE FROM web_history WHERE created_us < ?", "i", before_us);
        if (s == RB_OK)
            *out_rows = sqlite3_changes(a->db);
    }
    if (s == RB_OK && out_oldest_us) {
        sqlite3_stmt *st =
            prep(a, "SELECT min(created_us) FROM web_history WHERE created_us >= ?");
        if (st) {
            sqlite3_bind_int64(st, 1, before_us);
            if (sqlite3_step(st) == SQLITE_ROW)
                *out_oldest_us = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    pthread_mutex_unlock(&a->lock);
    return s;
}
