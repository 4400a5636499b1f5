/* Documents and chunks: the atomic put, lookups, rename, delete. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index-impl.h"

/* From index.c (shared write path). */
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

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? rb_strdup(t) : NULL;
}

static void clear_err(struct rb_index *idx)
{
    (void)rb__err(idx, RB_OK, "%s", "");
}

const char *rb_index_doc_state_name(enum rb_index_doc_state s)
{
    switch (s) {
    case RB_INDEX_DOC_PENDING: return "pending";
    case RB_INDEX_DOC_INDEXED: return "indexed";
    case RB_INDEX_DOC_FAILED: return "failed";
    case RB_INDEX_DOC_SKIPPED: return "skipped";
    }
    return "unknown";
}

/* ====================================================== vector bookkeeping */

static enum rb_status collection_gen(struct rb_index *idx, sqlite3 *db, int64_t cid, int *dim,
                                     int64_t *gen)
{
    enum rb_status st;
    sqlite3_stmt *s = prep(idx, db, "SELECT dim, vec_generation FROM collections WHERE id=?", &st);
    if (!s)
        return st;
    sqlite3_bind_int64(s, 1, cid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (dim)
            *dim = sqlite3_column_int(s, 0);
        *gen = sqlite3_column_int64(s, 1);
        st = RB_OK;
    } else if (rc == SQLITE_DONE) {
        st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld", (long long)cid);
    } else {
        st = rb__dberr(idx, db, "read collection");
    }
    sqlite3_finalize(s);
    return st;
}

/* Before a write that changes vectors: the in-memory index must reflect the
 * committed state, so the change can be applied as a delta. Caller holds write_mutex. */
static enum rb_status vectors_prepare(struct rb_index *idx, int64_t cid, struct rb__vcoll **out)
{
    int64_t gen;
    int dim = 0;
    enum rb_status st = collection_gen(idx, idx->db_write, cid, &dim, &gen);
    if (st != RB_OK)
        return st;
    pthread_rwlock_wrlock(&idx->vlock);
    struct rb__vcoll *vc = rb__vcoll_find(idx, cid);
    if (!vc)
        st = rb__vcoll_add(idx, cid, dim, &vc);
    if (st == RB_OK && (!vc->loaded || vc->generation != gen))
        st = rb__vcoll_ensure(idx, idx->db_write, vc, gen);
    pthread_rwlock_unlock(&idx->vlock);
    *out = st == RB_OK ? vc : NULL;
    return st;
}

/* Bumps vec_generation inside the open transaction; returns the new value. */
static enum rb_status bump_gen(struct rb_index *idx, int64_t cid, int64_t *gen)
{
    enum rb_status st;
    sqlite3_stmt *s = prep(idx, idx->db_write,
                           "UPDATE collections SET vec_generation=vec_generation+1 WHERE id=? "
                           "RETURNING vec_generation",
                           &st);
    if (!s)
        return st;
    sqlite3_bind_int64(s, 1, cid);
    if (sqlite3_step(s) == SQLITE_ROW)
        *gen = sqlite3_column_int64(s, 0);
    else
        st = rb__dberr(idx, idx->db_write, "bump vector generation");
    sqlite3_finalize(s);
    return st;
}

/* Ids of chunks with embeddings of a document and its attachments (recursively). */
static enum rb_status doc_vector_ids(struct rb_index *idx, int64_t doc_id, int64_t **ids,
                                     size_t *n)
{
    *ids = NULL;
    *n = 0;
    enum rb_status st;
    sqlite3_stmt *s = prep(idx, idx->db_write,
                           "WITH RECURSIVE d(id) AS (SELECT ?1 UNION SELECT documents.id FROM "
                           "documents JOIN d ON documents.parent_id = d.id) "
                           "SELECT c.id FROM chunks c WHERE c.document_id IN d AND c.embedding "
                           "IS NOT NULL",
                           &st);
    if (!s)
        return st;
    sqlite3_bind_int64(s, 1, doc_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *p = realloc(*ids, cap * sizeof *p);
            if (!p) {
                st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                break;
            }
            *ids = p;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    if (st == RB_OK && rc != SQLITE_DONE)
        st = rb__dberr(idx, idx->db_write, "list vectors");
    sqlite3_finalize(s);
    if (st != RB_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

/* After COMMIT: apply the delta to the in-memory index (or drop it so it is
 * rebuilt when next used, if the delta cannot be applied). */
static void vectors_apply(struct rb_index *idx, struct rb__vcoll *vc, int64_t old_gen,
                          int64_t new_gen, int new_dim, const int64_t *add_ids,
                          const float *add_vecs, size_t n_add, const int64_t *del_ids,
                          size_t n_del)
{
    pthread_rwlock_wrlock(&idx->vlock);
    if (new_dim && !vc->dim)
        vc->dim = new_dim;
    enum rb_status st = RB_ERR_INTERNAL;
    if (vc->loaded && vc->generation == old_gen)
        st = rb__vcoll_apply(idx, idx->db_write, vc, add_ids, add_vecs, n_add, del_ids, n_del,
                             new_gen);
    if (st != RB_OK) {
        /* Committed in SQLite, not applied in memory: rebuild on next use. */
        RB_WARN(RB_INDEX_LOG, "collection %lld: vector index will be rebuilt (%s)",
                (long long)vc->id, st == RB_ERR_INTERNAL ? "concurrent change" : rb_index_errmsg(idx));
        vc->loaded = false;
        vc->dirty = true;
    }
    vc->writing = false;
    pthread_rwlock_unlock(&idx->vlock);
}

/* ================================================================== put */

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

bool rb__normalize(float *v, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(v[i]))
            return false;
        s += (double)v[i] * v[i];
    }
    if (!(s > 0) || !isfinite(s))
        return false;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
    return true;
}

enum rb_status rb_index_document_put(struct rb_index *idx, const struct rb_index_document *doc,
                                     const struct rb_index_chunk *chunks, size_t n_chunks,
                                     int64_t *out_document_id, int64_t *out_chunk_ids)
{
    clear_err(idx);
    if (out_document_id)
        *out_document_id = 0;
    if (idx->read_only)
        return rb__err(idx, RB_ERR_DENIED, "index opened read-only");
    if (!doc || !doc->source || !*doc->source)
        return rb__err(idx, RB_ERR_INVALID, "document has no source");
    if (!rb_utf8_valid(doc->source, strlen(doc->source)))
        return rb__err(idx, RB_ERR_ENCODING, "document source is not valid UTF-8");
    if (n_chunks && !chunks)
        return rb__err(idx, RB_ERR_INVALID, "chunks missing");
    if (n_chunks > 10000000)
        return rb__err(idx, RB_ERR_TOO_LARGE, "too many chunks (%zu)", n_chunks);
    const char *meta = doc->metadata_json ? doc->metadata_json : "{}";
    if (!json_object_ok(meta))
        return rb__err(idx, RB_ERR_INVALID, "document metadata must be a JSON object");
    if (doc->state < RB_INDEX_DOC_PENDING || doc->state > RB_INDEX_DOC_SKIPPED)
        return rb__err(idx, RB_ERR_INVALID, "bad document state %d", (int)doc->state);
    int edim = 0;
    size_t n_emb = 0;
    for (size_t i = 0; i < n_chunks; i++) {
        const struct rb_index_chunk *c = &chunks[i];
        if (!c->text)
            return rb__err(idx, RB_ERR_INVALID, "chunk %zu has no text", i);
        if (!rb_utf8_valid(c->text, strlen(c->text)))
            return rb__err(idx, RB_ERR_ENCODING, "chunk %zu is not valid UTF-8", i);
        if (c->section && !rb_utf8_valid(c->section, strlen(c->section)))
            return rb__err(idx, RB_ERR_ENCODING, "chunk %zu section is not valid UTF-8", i);
        if (c->embedding) {
            if (c->embedding_dim <= 0 || c->embedding_dim > RB_INDEX_DIM_MAX)
                return rb__err(idx, RB_ERR_DIMENSION, "chunk %zu: embedding dimension %d", i,
                               c->embedding_dim);
            if (edim && c->embedding_dim != edim)
                return rb__err(idx, RB_ERR_DIMENSION,
                               "chunk %zu: embedding dimension %d, other chunks have %d", i,
                               c->embedding_dim, edim);
            edim = c->embedding_dim;
            n_emb++;
        }
    }
    /* Normalised copies of the embeddings. */
    float *vecs = NULL;
    int64_t *add_ids = NULL, *del_ids = NULL;
    size_t n_del = 0;
    if (n_emb) {
        vecs = rb_malloc_array(n_emb * (size_t)edim, sizeof(float));
        add_ids = rb_malloc_array(n_emb, sizeof(int64_t));
        if (!vecs || !add_ids) {
            free(vecs);
            free(add_ids);
            return rb__err(idx, RB_ERR_NOMEM, "out of memory");
        }
        size_t k = 0;
        for (size_t i = 0; i < n_chunks; i++) {
            if (!chunks[i].embedding)
                continue;
            float *v = vecs + k * (size_t)edim;
            memcpy(v, chunks[i].embedding, (size_t)edim * sizeof(float));
            if (!rb__normalize(v, edim)) {
                free(vecs);
                free(add_ids);
                return rb__err(idx, RB_ERR_INVALID, "chunk %zu: embedding is zero or not finite",
                               i);
            }
            k++;
        }
    }

    pthread_mutex_lock(&idx->write_mutex);
    enum rb_status st = RB_OK;
    struct rb__vcoll *vc = NULL;
    int dim = 0;
    int64_t gen0 = 0, gen1 = 0;
    bool began = false, vec_change = false;
    sqlite3_stmt *s = NULL, *ins = NULL;
    st = collection_gen(idx, idx->db_write, doc->collection_id, &dim, &gen0);
    if (st == RB_OK && n_emb && dim && dim != edim)
        st = rb__err(idx, RB_ERR_DIMENSION,
                     "embedding dimension %d does not match the collection's %d", edim, dim);
    if (st == RB_OK)
        st = vectors_prepare(idx, doc->collection_id, &vc);
    if (st != RB_OK)
        goto out;
    if (sqlite3_exec(idx->db_write, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, idx->db_write, "begin");
        goto out;
    }
    began = true;
    /* Re-read under the write lock: another process may have changed things. */
    st = collection_gen(idx, idx->db_write, doc->collection_id, &dim, &gen1);
    if (st != RB_OK)
        goto out;
    if (n_emb && dim && dim != edim) {
        st = rb__err(idx, RB_ERR_DIMENSION,
                     "embedding dimension %d does not match the collection's %d", edim, dim);
        goto out;
    }
    if (doc->parent_id) {
        s = prep(idx, idx->db_write, "SELECT collection_id FROM documents WHERE id=?", &st);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 1, doc->parent_id);
        if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int64(s, 0) != doc->collection_id)
            st = rb__err(idx, RB_ERR_INVALID, "parent document %lld is not in collection %lld",
                         (long long)doc->parent_id, (long long)doc->collection_id);
        sqlite3_finalize(s);
        s = NULL;
        if (st != RB_OK)
            goto out;
    }
    int64_t doc_id = 0;
    s = prep(idx, idx->db_write, "SELECT id FROM documents WHERE collection_id=? AND source=?", &st);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, doc->collection_id);
    sqlite3_bind_text(s, 2, doc->source, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        doc_id = sqlite3_column_int64(s, 0);
    else if (rc != SQLITE_DONE)
        st = rb__dberr(idx, idx->db_write, "find document");
    sqlite3_finalize(s);
    s = NULL;
    if (st != RB_OK)
        goto out;
    if (doc_id && doc_id == doc->parent_id) {
        st = rb__err(idx, RB_ERR_INVALID, "a document cannot be its own parent");
        goto out;
    }
    int64_t now = rb_time_now_us();
    if (doc_id) {
        /* Replace: old chunks (and, through triggers, FTS rows) go. */
        s = prep(idx, idx->db_write,
                 "SELECT id FROM chunks WHERE document_id=? AND embedding IS NOT NULL", &st);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 1, doc_id);
        size_t cap = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if (n_del == cap) {
                cap = cap ? cap * 2 : 64;
                int64_t *p = realloc(del_ids, cap * sizeof *p);
                if (!p) {
                    st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                    break;
                }
                del_ids = p;
            }
            del_ids[n_del++] = sqlite3_column_int64(s, 0);
        }
        if (st == RB_OK && rc != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "list old vectors");
        sqlite3_finalize(s);
        s = NULL;
        if (st != RB_OK)
            goto out;
        s = prep(idx, idx->db_write, "DELETE FROM chunks WHERE document_id=?", &st);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 1, doc_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "delete old chunks");
        sqlite3_finalize(s);
        s = NULL;
        if (st != RB_OK)
            goto out;
        s = prep(idx, idx->db_write,
                 "UPDATE documents SET sha256=?, mime=?, title=?, language=?, size=?, "
                 "mtime_us=?, metadata_json=?, state=?, error=?, parent_id=?, updated_us=? "
                 "WHERE id=?",
                 &st);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 12, doc_id);
    } else {
        s = prep(idx, idx->db_write,
                 "INSERT INTO documents(sha256, mime, title, language, size, mtime_us, "
                 "metadata_json, state, error, parent_id, updated_us, created_us, collection_id, "
                 "source) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 &st);
        if (!s)
            goto out;
        sqlite3_bind_int64(s, 12, now);
        sqlite3_bind_int64(s, 13, doc->collection_id);
        sqlite3_bind_text(s, 14, doc->source, -1, SQLITE_TRANSIENT);
    }
    bind_text_or_null(s, 1, doc->sha256);
    bind_text_or_null(s, 2, doc->mime);
    bind_text_or_null(s, 3, doc->title);
    bind_text_or_null(s, 4, doc->language);
    sqlite3_bind_int64(s, 5, doc->size);
    sqlite3_bind_int64(s, 6, doc->mtime_us);
    sqlite3_bind_text(s, 7, meta, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 8, (int)doc->state);
    bind_text_or_null(s, 9, doc->error);
    if (doc->parent_id)
        sqlite3_bind_int64(s, 10, doc->parent_id);
    else
        sqlite3_bind_null(s, 10);
    sqlite3_bind_int64(s, 11, now);
    if (sqlite3_step(s) != SQLITE_DONE)
        st = rb__dberr(idx, idx->db_write, "write document");
    sqlite3_finalize(s);
    s = NULL;
    if (st != RB_OK)
        goto out;
    if (!doc_id)
        doc_id = sqlite3_last_insert_rowid(idx->db_write);

    ins = prep(idx, idx->db_write,
               "INSERT INTO chunks(document_id, collection_id, ordinal, text, page_start, "
               "page_end, section, byte_start, byte_end, char_start, char_end, token_count, "
               "embedding) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
               &st);
    if (!ins)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n_chunks && st == RB_OK; i++) {
        const struct rb_index_chunk *c = &chunks[i];
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, doc_id);
        sqlite3_bind_int64(ins, 2, doc->collection_id);
        sqlite3_bind_int(ins, 3, c->ordinal);
        sqlite3_bind_text(ins, 4, c->text, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 5, c->page_start);
        sqlite3_bind_int(ins, 6, c->page_end ? c->page_end : c->page_start);
        bind_text_or_null(ins, 7, c->section);
        sqlite3_bind_int64(ins, 8, c->byte_start);
        sqlite3_bind_int64(ins, 9, c->byte_end);
        sqlite3_bind_int64(ins, 10, c->char_start);
        sqlite3_bind_int64(ins, 11, c->char_end);
        sqlite3_bind_int(ins, 12, c->token_count);
        if (c->embedding)
            sqlite3_bind_blob(ins, 13, vecs + k * (size_t)edim, edim * (int)sizeof(float),
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 13);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            st = rb__dberr(idx, idx->db_write, "insert chunk");
            break;
        }
        int64_t cid = sqlite3_last_insert_rowid(idx->db_write);
        if (out_chunk_ids)
            out_chunk_ids[i] = cid;
        if (c->embedding)
            add_ids[k++] = cid;
    }
    if (st != RB_OK)
        goto out;
    if (n_emb && !dim) {
        s = prep(idx, idx->db_write, "UPDATE collections SET dim=? WHERE id=?", &st);
        if (!s)
            goto out;
        sqlite3_bind_int(s, 1, edim);
        sqlite3_bind_int64(s, 2, doc->collection_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, "set dimension");
        sqlite3_finalize(s);
        s = NULL;
        if (st != RB_OK)
            goto out;
    }
    vec_change = n_emb || n_del;
    if (vec_change && (st = bump_gen(idx, doc->collection_id, &gen1)) != RB_OK)
        goto out;
    if (vec_change) {
        pthread_rwlock_wrlock(&idx->vlock);
        vc->writing = true;
        pthread_rwlock_unlock(&idx->vlock);
    }
    if (sqlite3_exec(idx->db_write, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, idx->db_write, "commit");
        if (vec_change) {
            pthread_rwlock_wrlock(&idx->vlock);
            vc->writing = false;
            pthread_rwlock_unlock(&idx->vlock);
        }
        goto out;
    }
    began = false;
    if (vec_change)
        vectors_apply(idx, vc, gen0 == gen1 - 1 ? gen0 : -1, gen1, edim, add_ids, vecs, n_emb,
                      del_ids, n_del);
    if (out_document_id)
        *out_document_id = doc_id;
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(s);
    if (began)
        sqlite3_exec(idx->db_write, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&idx->write_mutex);
    free(vecs);
    free(add_ids);
    free(del_ids);
    return st;
}

/* ============================================================ simple writes */

static enum rb_status simple_write(struct rb_index *idx, const char *sql, int64_t id,
                                   const char *text, int64_t extra, const char *what)
{
    enum rb_status st;
    if (idx->read_only)
        return rb__err(idx, RB_ERR_DENIED, "index opened read-only");
    pthread_mutex_lock(&idx->write_mutex);
    sqlite3_stmt *s = prep(idx, idx->db_write, sql, &st);
    if (s) {
        sqlite3_bind_int64(s, 1, id);
        bind_text_or_null(s, 2, text);
        sqlite3_bind_int64(s, 3, extra);
        sqlite3_bind_int64(s, 4, rb_time_now_us());
        int rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT)
            st = rb__err(idx, RB_ERR_EXISTS, "%s: a document with that source already exists",
                         what);
        else if (rc != SQLITE_DONE)
            st = rb__dberr(idx, idx->db_write, what);
        else if (sqlite3_changes(idx->db_write) == 0)
            st = rb__err(idx, RB_ERR_NOT_FOUND, "%s: no document %lld", what, (long long)id);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&idx->write_mutex);
    return st;
}

enum rb_status rb_index_document_set_state(struct rb_index *idx, int64_t document_id,
                                           enum rb_index_doc_state state, const char *error)
{
    clear_err(idx);
    if (state < RB_INDEX_DOC_PENDING || state > RB_INDEX_DOC_SKIPPED)
        return rb__err(idx, RB_ERR_INVALID, "bad document state %d", (int)state);
    return simple_write(idx,
                        "UPDATE documents SET error=?2, state=?3, updated_us=?4 WHERE id=?1",
                        document_id, error, state, "set state");
}

enum rb_status rb_index_document_rename(struct rb_index *idx, int64_t document_id,
                                        const char *new_source)
{
    clear_err(idx);
    if (!new_source || !*new_source || !rb_utf8_valid(new_source, strlen(new_source)))
        return rb__err(idx, RB_ERR_INVALID, "rename: bad source");
    return simple_write(idx,
                        "UPDATE documents SET source=?2, updated_us=?4 WHERE id=?1 AND ?3=?3",
                        document_id, new_source, 0, "rename");
}

enum rb_status rb_index_document_delete(struct rb_index *idx, int64_t document_id)
{
    clear_err(idx);
    if (idx->read_only)
        return rb__err(idx, RB_ERR_DENIED, "index opened read-only");
    pthread_mutex_lock(&idx->write_mutex);
    enum rb_status st;
    int64_t cid = 0, gen0 = 0, gen1 = 0;
    int64_t *del = NULL;
    size_t n_del = 0;
    struct rb__vcoll *vc = NULL;
    bool began = false;
    sqlite3_stmt *s = prep(idx, idx->db_write, "SELECT collection_id FROM documents WHERE id=?", &st);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, document_id);
    if (sqlite3_step(s) == SQLITE_ROW)
        cid = sqlite3_column_int64(s, 0);
    else
        st = rb__err(idx, RB_ERR_NOT_FOUND, "no document %lld", (long long)document_id);
    sqlite3_finalize(s);
    if (st != RB_OK)
        goto out;
    if ((st = collection_gen(idx, idx->db_write, cid, NULL, &gen0)) != RB_OK ||
        (st = vectors_prepare(idx, cid, &vc)) != RB_OK)
        goto out;
    if (sqlite3_exec(idx->db_write, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, idx->db_write, "begin");
        goto out;
    }
    began = true;
    if ((st = doc_vector_ids(idx, document_id, &del, &n_del)) != RB_OK)
        goto out;
    s = prep(idx, idx->db_write, "DELETE FROM documents WHERE id=?", &st);
    if (!s)
        goto out;
    sqlite3_bind_int64(s, 1, document_id);
    if (sqlite3_step(s) != SQLITE_DONE)
        st = rb__dberr(idx, idx->db_write, "delete document");
    sqlite3_finalize(s);
    if (st != RB_OK)
        goto out;
    if (n_del) {
        if ((st = collection_gen(idx, idx->db_write, cid, NULL, &gen1)) != RB_OK)
            goto out;
        int64_t before = gen1;
        if ((st = bump_gen(idx, cid, &gen1)) != RB_OK)
            goto out;
        if (before != gen0)
            gen0 = -1; /* changed by another process meanwhile: rebuild */
        pthread_rwlock_wrlock(&idx->vlock);
        vc->writing = true;
        pthread_rwlock_unlock(&idx->vlock);
    }
    if (sqlite3_exec(idx->db_write, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, idx->db_write, "commit");
        pthread_rwlock_wrlock(&idx->vlock);
        vc->writing = false;
        pthread_rwlock_unlock(&idx->vlock);
        goto out;
    }
    began = false;
    if (n_del)
        vectors_apply(idx, vc, gen0, gen1, 0, NULL, NULL, 0, del, n_del);
out:
    if (began)
        sqlite3_exec(idx->db_write, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&idx->write_mutex);
    free(del);
    return st;
}

/* ================================================================ reads */

#define DOC_SELECT                                                                                 \
    "SELECT d.id, d.collection_id, d.source, d.sha256, d.mime, d.title, d.language, d.size,"      \
    " d.mtime_us, d.metadata_json, d.state, d.error, coalesce(d.parent_id, 0), d.created_us,"     \
    " d.updated_us, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d "

void rb_index_document_free(struct rb_index_document *d)
{
    if (!d)
        return;
    free((char *)d->source);
    free((char *)d->sha256);
    free((char *)d->mime);
    free((char *)d->title);
    free((char *)d->language);
    free((char *)d->metadata_json);
    free((char *)d->error);
    free(d);
}

void rb_index_document_list_free(struct rb_index_document **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        rb_index_document_free(list[i]);
    free(list);
}

static struct rb_index_document *doc_row(sqlite3_stmt *s)
{
    struct rb_index_document *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->id = sqlite3_column_int64(s, 0);
    d->collection_id = sqlite3_column_int64(s, 1);
    d->source = col_dup(s, 2);
    d->sha256 = col_dup(s, 3);
    d->mime = col_dup(s, 4);
    d->title = col_dup(s, 5);
    d->language = col_dup(s, 6);
    d->size = sqlite3_column_int64(s, 7);
    d->mtime_us = sqlite3_column_int64(s, 8);
    d->metadata_json = col_dup(s, 9);
    d->state = (enum rb_index_doc_state)sqlite3_column_int(s, 10);
    d->error = col_dup(s, 11);
    d->parent_id = sqlite3_column_int64(s, 12);
    d->created_us = sqlite3_column_int64(s, 13);
    d->updated_us = sqlite3_column_int64(s, 14);
    d->chunk_count = sqlite3_column_int64(s, 15);
    if (!d->source || !d->metadata_json) {
        rb_index_document_free(d);
        return NULL;
    }
    return d;
}

/* Runs a document query; binds: ?1 int64 a, ?2 text t (if any), ?3 b, ?4 c. */
static enum rb_status doc_query(struct rb_index *idx, const char *where, int64_t a, const char *t,
                                int64_t b, int64_t c, struct rb_index_document ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    clear_err(idx);
    sqlite3 *db;
    enum rb_status st = rb__reader_get(idx, &db);
    if (st != RB_OK)
        return st;
    char *sql = rb_asprintf("%s%s", DOC_SELECT, where);
    sqlite3_stmt *s = sql ? prep(idx, db, sql, &st) : NULL;
    free(sql);
    if (!s) {
        rb__reader_put(idx, db);
        return st == RB_OK ? rb__err(idx, RB_ERR_NOMEM, "out of memory") : st;
    }
    sqlite3_bind_int64(s, 1, a);
    if (t)
        sqlite3_bind_text(s, 2, t, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, b);
    sqlite3_bind_int64(s, 4, c);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct rb_index_document **p = realloc(*out, cap * sizeof *p);
            if (!p) {
                st = RB_ERR_NOMEM;
                break;
            }
            *out = p;
        }
        (*out)[*n] = doc_row(s);
        if (!(*out)[*n]) {
            st = RB_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    if (st == RB_OK && rc != SQLITE_DONE)
        st = rb__dberr(idx, db, "read documents");
    sqlite3_finalize(s);
    rb__reader_put(idx, db);
    if (st != RB_OK) {
        rb_index_document_list_free(*out, *n);
        *out = NULL;
        *n = 0;
        if (st == RB_ERR_NOMEM)
            rb__err(idx, st, "out of memory");
    }
    return st;
}

static enum rb_status doc_one(struct rb_index *idx, const char *where, int64_t a, const char *t,
                              struct rb_index_document **out, const char *what)
{
    struct rb_index_document **list;
    size_t n;
    *out = NULL;
    enum rb_status st = doc_query(idx, where, a, t, 0, 0, &list, &n);
    if (st != RB_OK)
        return st;
    if (n == 0) {
        free(list);
        return rb__err(idx, RB_ERR_NOT_FOUND, "no document %s", what);
    }
    *out = list[0];
    for (size_t i = 1; i < n; i++)
        rb_index_document_free(list[i]);
    free(list);
    return RB_OK;
}

enum rb_status rb_index_document_get(struct rb_index *idx, int64_t document_id,
                                     struct rb_index_document **out)
{
    return doc_one(idx, "WHERE d.id = ?1 AND ?3=?3 AND ?4=?4", document_id, NULL, out, "with that id");
}

enum rb_status rb_index_document_find(struct rb_index *idx, int64_t collection_id,
                                      const char *source, struct rb_index_document **out)
{
    if (!source) {
        *out = NULL;
        return rb__err(idx, RB_ERR_INVALID, "no source");
    }
    return doc_one(idx, "WHERE d.collection_id = ?1 AND d.source = ?2 AND ?3=?3 AND ?4=?4",
                   collection_id, source, out, "with that source");
}

enum rb_status rb_index_document_find_sha256(struct rb_index *idx, int64_t collection_id,
                                             const char *sha256, struct rb_index_document ***out,
                                             size_t *n)
{
    if (!sha256) {
        *out = NULL;
        *n = 0;
        return rb__err(idx, RB_ERR_INVALID, "no sha256");
    }
    return doc_query(idx, "WHERE d.collection_id = ?1 AND d.sha256 = ?2 AND ?3=?3 AND ?4=?4 ORDER BY d.id",
                     collection_id, sha256, 0, 0, out, n);
}

enum rb_status rb_index_document_list(struct rb_index *idx, int64_t collection_id, int64_t offset,
                                      int64_t limit, struct rb_index_document ***out, size_t *n)
{
    if (offset < 0)
        offset = 0;
    return doc_query(idx,
                     "WHERE d.collection_id = ?1 ORDER BY d.id LIMIT ?4 OFFSET ?3", collection_id,
                     NULL, offset, limit > 0 ? limit : -1, out, n);
}

/* ---------------------------------------------------------------- chunks */

#define CHUNK_SELECT                                                                               \
    "SELECT id, document_id, collection_id, ordinal, text, page_start, page_end, section,"        \
    " byte_start, byte_end, char_start, char_end, token_count FROM chunks "

void rb_index_chunk_free(struct rb_index_chunk *c)
{
    if (!c)
        return;
    free((char *)c->text);
    free((char *)c->section);
    free((float *)c->embedding);
    free(c);
}

void rb_index_chunk_list_free(struct rb_index_chunk **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        rb_index_chunk_free(list[i]);
    free(list);
}

static struct rb_index_chunk *chunk_row(sqlite3_stmt *s)
{
    struct rb_index_chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = sqlite3_column_int64(s, 0);
    c->document_id = sqlite3_column_int64(s, 1);
    c->collection_id = sqlite3_column_int64(s, 2);
    c->ordinal = sqlite3_column_int(s, 3);
    c->text = col_dup(s, 4);
    c->page_start = sqlite3_column_int(s, 5);
    c->page_end = sqlite3_column_int(s, 6);
    c->section = col_dup(s, 7);
    c->byte_start = sqlite3_column_int64(s, 8);
    c->byte_end = sqlite3_column_int64(s, 9);
    c->char_start = sqlite3_column_int64(s, 10);
    c->char_end = sqlite3_column_int64(s, 11);
    c->token_count = sqlite3_column_int(s, 12);
    if (!c->text) {
        rb_index_chunk_free(c);
        return NULL;
    }
    return c;
}

static enum rb_status chunk_query(struct rb_index *idx, const char *where, int64_t a,
                                  struct rb_index_chunk ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    clear_err(idx);
    sqlite3 *db;
    enum rb_status st = rb__reader_get(idx, &db);
    if (st != RB_OK)
        return st;
    char *sql = rb_asprintf("%s%s", CHUNK_SELECT, where);
    sqlite3_stmt *s = sql ? prep(idx, db, sql, &st) : NULL;
    free(sql);
    if (!s) {
        rb__reader_put(idx, db);
        return st == RB_OK ? rb__err(idx, RB_ERR_NOMEM, "out of memory") : st;
    }
    sqlite3_bind_int64(s, 1, a);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct rb_index_chunk **p = realloc(*out, cap * sizeof *p);
            if (!p) {
                st = RB_ERR_NOMEM;
                break;
            }
            *out = p;
        }
        (*out)[*n] = chunk_row(s);
        if (!(*out)[*n]) {
            st = RB_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    if (st == RB_OK && rc != SQLITE_DONE)
        st = rb__dberr(idx, db, "read chunks");
    sqlite3_finalize(s);
    rb__reader_put(idx, db);
    if (st != RB_OK) {
        rb_index_chunk_list_free(*out, *n);
        *out = NULL;
        *n = 0;
        if (st == RB_ERR_NOMEM)
            rb__err(idx, st, "out of memory");
    }
    return st;
}

enum rb_status rb_index_chunk_get(struct rb_index *idx, int64_t chunk_id,
                                  struct rb_index_chunk **out)
{
    struct rb_index_chunk **list;
    size_t n;
    *out = NULL;
    enum rb_status st = chunk_query(idx, "WHERE id = ?1", chunk_id, &list, &n);
    if (st != RB_OK)
        return st;
    if (n == 0) {
        free(list);
        return rb__err(idx, RB_ERR_NOT_FOUND, "no chunk %lld", (long long)chunk_id);
    }
    *out = list[0];
    free(list);
    return RB_OK;
}

enum rb_status rb_index_document_chunks(struct rb_index *idx, int64_t document_id,
                                        struct rb_index_chunk ***out, size_t *n)
{
    return chunk_query(idx, "WHERE document_id = ?1 ORDER BY ordinal, id", document_id, out, n);
}
