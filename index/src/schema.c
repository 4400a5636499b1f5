/* The index module's SQLite schema and its forward migrations.
 *
 * Versions are per module in schema_versions(module, version); this module's
 * row is 'index' and PRAGMA user_version mirrors it. Each step runs in its own
 * transaction; a database newer than this build is refused. */
#include <stdlib.h>
#include <string.h>

#include "index-impl.h"

/* Step N brings the schema from version N-1 to N. Append, never edit. */
static const char *const migrations[] = {
    /* 1: collections, documents, chunks (with embeddings), FTS5, FAISS state */
    "CREATE TABLE collections(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  dim INTEGER NOT NULL DEFAULT 0,\n"
    "  factory TEXT NOT NULL DEFAULT 'auto',\n"
    "  policy_json TEXT NOT NULL DEFAULT '{}',\n"
    "  created_us INTEGER NOT NULL,\n"
    "  vec_generation INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE documents(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,\n"
    "  source TEXT NOT NULL,\n"
    "  sha256 TEXT, mime TEXT, title TEXT, language TEXT,\n"
    "  size INTEGER NOT NULL DEFAULT 0,\n"
    "  mtime_us INTEGER NOT NULL DEFAULT 0,\n"
    "  metadata_json TEXT NOT NULL DEFAULT '{}',\n"
    "  state INTEGER NOT NULL DEFAULT 0,\n"
    "  error TEXT,\n"
    "  parent_id INTEGER REFERENCES documents(id) ON DELETE CASCADE,\n"
    "  created_us INTEGER NOT NULL,\n"
    "  updated_us INTEGER NOT NULL,\n"
    "  UNIQUE(collection_id, source));\n"
    "CREATE INDEX documents_sha256 ON documents(collection_id, sha256);\n"
    "CREATE INDEX documents_parent ON documents(parent_id);\n"
    /* AUTOINCREMENT: chunk ids are FAISS ids and must never be reused. */
    "CREATE TABLE chunks(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,\n"
    "  collection_id INTEGER NOT NULL,\n"
    "  ordinal INTEGER NOT NULL,\n"
    "  text TEXT NOT NULL,\n"
    "  page_start INTEGER NOT NULL DEFAULT 0,\n"
    "  page_end INTEGER NOT NULL DEFAULT 0,\n"
    "  section TEXT,\n"
    "  byte_start INTEGER NOT NULL DEFAULT 0, byte_end INTEGER NOT NULL DEFAULT 0,\n"
    "  char_start INTEGER NOT NULL DEFAULT 0, char_end INTEGER NOT NULL DEFAULT 0,\n"
    "  token_count INTEGER NOT NULL DEFAULT 0,\n"
    "  embedding BLOB);\n" /* float32 little-endian, L2-normalised; NULL = none */
    "CREATE INDEX chunks_document ON chunks(document_id, ordinal);\n"
    "CREATE INDEX chunks_collection ON chunks(collection_id);\n"
    "CREATE VIRTUAL TABLE chunk_fts USING fts5(text, content='chunks', content_rowid='id',\n"
    "  tokenize='ragbox_cjk');\n"
    "CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN\n"
    "  INSERT INTO chunk_fts(rowid, text) VALUES (new.id, new.text); END;\n"
    "CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN\n"
    "  INSERT INTO chunk_fts(chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); END;\n"
    "CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN\n"
    "  INSERT INTO chunk_fts(chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);\n"
    "  INSERT INTO chunk_fts(rowid, text) VALUES (new.id, new.text); END;\n"
    /* Which state of SQLite the FAISS file reflects. */
    "CREATE TABLE faiss_state(\n"
    "  collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,\n"
    "  generation INTEGER NOT NULL,\n"
    "  sha256 TEXT NOT NULL,\n"
    "  ntotal INTEGER NOT NULL,\n"
    "  index_type TEXT NOT NULL,\n"
    "  written_us INTEGER NOT NULL);\n",
};

static int64_t query_int(sqlite3 *db, const char *sql, int *rc)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    *rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (*rc != SQLITE_OK)
        return 0;
    *rc = sqlite3_step(st);
    if (*rc == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        *rc = SQLITE_OK;
    } else if (*rc == SQLITE_DONE) {
        *rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return v;
}

static enum rb_status classify(sqlite3 *db, int rc, const char *path, struct rb_errmsg *err)
{
    if (rc == SQLITE_NOTADB)
        return rb_errmsg_set(err, RB_ERR_FORMAT, "%s is not a ragbox database (not SQLite)", path);
    if (rc == SQLITE_CORRUPT)
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s is corrupt: %s", path, sqlite3_errmsg(db));
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return rb_errmsg_set(err, RB_ERR_BUSY, "%s is locked: %s", path, sqlite3_errmsg(db));
    return rb_errmsg_set(err, RB_ERR_DB, "%s: %s", path, sqlite3_errmsg(db));
}

/* Checks the file is ours (or empty) and migrates it to RB_INDEX_SCHEMA_VERSION. */
enum rb_status rb__schema_migrate(sqlite3 *db, const char *path, bool writable,
                                  struct rb_errmsg *err);
enum rb_status rb__schema_migrate(sqlite3 *db, const char *path, bool writable,
                                  struct rb_errmsg *err)
{
    int rc;
    int64_t app = query_int(db, "PRAGMA application_id", &rc);
    if (rc != SQLITE_OK)
        return classify(db, rc, path, err);
    int64_t n_tables = query_int(db, "SELECT count(*) FROM sqlite_schema", &rc);
    if (rc != SQLITE_OK)
        return classify(db, rc, path, err);
    int64_t has_versions = query_int(
        db, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='schema_versions'",
        &rc);
    if (rc != SQLITE_OK)
        return classify(db, rc, path, err);
    if (app != 0 && app != RB_INDEX_APPLICATION_ID)
        return rb_errmsg_set(err, RB_ERR_FORMAT,
                             "%s is not a ragbox database (SQLite application_id 0x%llx)", path,
                             (unsigned long long)app);
    if (n_tables > 0 && !has_versions)
        return rb_errmsg_set(err, RB_ERR_FORMAT,
                             "%s is not a ragbox database (an SQLite file of another program)",
                             path);
    int64_t version = 0;
    if (has_versions) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_versions WHERE module='index'", -1,
                                &st, NULL);
        if (rc != SQLITE_OK)
            return classify(db, rc, path, err);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            version = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return classify(db, rc, path, err);
    }
    int64_t target = (int64_t)RB_ARRAY_LEN(migrations);
    if (version > target)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s has index schema version %lld, newer than this ragbox (%lld)",
                             path, (long long)version, (long long)target);
    if (version == target)
        return RB_OK;
    if (!writable)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s needs a schema upgrade (index %lld -> %lld); open it writable",
                             path, (long long)version, (long long)target);
    for (int64_t v = version; v < target; v++) {
        /* Another process may be migrating the same file: lock, then re-read. */
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return classify(db, rc, path, err);
        int64_t now = query_int(db,
                                "SELECT version FROM schema_versions WHERE module='index'", &rc);
        if (rc != SQLITE_OK)
            now = 0; /* no schema_versions table yet */
        if (now > v) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            v = now - 1;
            continue;
        }
        char *sql = rb_asprintf("PRAGMA application_id=%d;\n"
                                "CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY "
                                "KEY, version INTEGER NOT NULL);\n"
                                "%s\n"
                                "INSERT INTO schema_versions(module, version) VALUES('index', "
                                "%lld) ON CONFLICT(module) DO UPDATE SET version=excluded.version;\n"
                                "PRAGMA user_version=%lld;\n"
                                "COMMIT;",
                                RB_INDEX_APPLICATION_ID, migrations[v], (long long)(v + 1),
                                (long long)(v + 1));
        if (!sql)
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        char *msg = NULL;
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        free(sql);
        if (rc != SQLITE_OK) {
            enum rb_status st = rb_errmsg_set(err, RB_ERR_DB, "%s: migrating index schema to %lld: %s",
                                              path, (long long)(v + 1), msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
        RB_INFO(RB_INDEX_LOG, "%s: index schema migrated to version %lld", path, (long long)(v + 1));
    }
    return RB_OK;
}
