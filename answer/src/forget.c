/* Right to be forgotten: documents or a person's chunks out of SQLite, FTS5
 * and FAISS, then the leftovers scrubbed (FTS rebuild, VACUUM, WAL truncate). */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"

/* Lower case, whitespace runs folded to one space, trimmed. Caller frees. */
static char *fold(const char *s)
{
    size_t ll = 0;
    char *l = rb_utf8_lower(s, strlen(s), &ll);
    if (!l)
        return NULL;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < ll; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = o > 0;
            continue;
        }
        if (space)
            l[o++] = ' ';
        space = false;
        l[o++] = (char)c;
    }
    l[o] = '\0';
    return l;
}

static bool mentions(const char *text, char *const *idents, size_t n)
{
    if (!text || !*text)
        return false;
    char *f = fold(text);
    bool hit = false;
    for (size_t i = 0; f && i < n && !hit; i++)
        hit = strstr(f, idents[i]) != NULL;
    free(f);
    return hit;
}

static enum rb_status note(struct rb_answer_forget_report *r, const struct rb_index_document *d)
{
    int64_t *ids = realloc(r->document_ids, (r->n_affected + 1) * sizeof *ids);
    if (!ids)
        return RB_ERR_NOMEM;
    r->document_ids = ids;
    char **h = realloc(r->doc_hashes, (r->n_affected + 1) * sizeof *h);
    if (!h)
        return RB_ERR_NOMEM;
    r->doc_hashes = h;
    ids[r->n_affected] = d->id;
    h[r->n_affected] = d->sha256 ? rb_strdup(d->sha256) : NULL;
    r->n_affected++;
    return RB_OK;
}

void rb_answer_forget_report_free(struct rb_answer_forget_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_affected; i++)
        free(r->doc_hashes[i]);
    free(r->doc_hashes);
    free(r->document_ids);
    memset(r, 0, sizeof *r);
}

/* Removes the chunks of d that mention an identifier, keeping the others. */
static enum rb_status forget_chunks(struct rb_index *idx, const struct rb_index_document *d,
                                    char *const *idents, size_t n_idents, bool dry,
                                    struct rb_answer_forget_report *rep, struct rb_errmsg *err)
{
    struct rb_index_chunk **chunks = NULL;
    size_t n = 0;
    enum rb_status st = rb_index_document_chunks(idx, d->id, &chunks, &n);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "document %lld: %s", (long long)d->id,
                             rb_index_errmsg(idx));
    struct rb_index_chunk *keep = rb_calloc_array(n ? n : 1, sizeof *keep);
    size_t n_keep = 0, gone = 0;
    if (!keep)
        st = RB_ERR_NOMEM;
    for (size_t i = 0; st == RB_OK && i < n; i++) {
        if (mentions(chunks[i]->text, idents, n_idents)) {
            gone++;
            continue;
        }
        keep[n_keep] = *chunks[i];
        keep[n_keep].ordinal = (int32_t)n_keep;
        keep[n_keep].embedding = NULL; /* not returned by the index; see the header */
        keep[n_keep].embedding_dim = 0;
        n_keep++;
    }
    if (st == RB_OK && gone) {
        rep->partial_documents++;
        rep->chunks += gone;
        st = note(rep, d);
        if (st == RB_OK && !dry) {
            struct rb_index_document nd = *d;
            st = rb_index_document_put(idx, &nd, keep, n_keep, NULL, NULL);
            if (st != RB_OK)
                rb_errmsg_set(err, st, "document %lld: %s", (long long)d->id,
                              rb_index_errmsg(idx));
            else
                RB_WARN("answer",
                        "document %lld lost %zu chunk(s); its other %zu chunk(s) are keyword-"
                        "searchable only until it is ingested again",
                        (long long)d->id, gone, n_keep);
        }
    }
    free(keep);
    rb_index_chunk_list_free(chunks, n);
    return st;
}

static enum rb_status vacuum(const char *db_path, struct rb_errmsg *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
                          NULL, NULL, &msg);
    enum rb_status st = RB_OK;
    if (rc != SQLITE_OK)
        st = rb_errmsg_set(err, RB_ERR_DB, "%s: VACUUM failed: %s", db_path,
                           msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    sqlite3_close(db);
    return st;
}

enum rb_status rb_answer_forget(struct rb_index *idx, const struct rb_answer_forget_request *req,
                                struct rb_answer_forget_report *rep, struct rb_errmsg *err)
{
    memset(rep, 0, sizeof *rep);
    if (!idx || !req || !req->collection || (req->n_documents == 0) == (req->n_identifiers == 0))
        return rb_errmsg_set(err, RB_ERR_INVALID,
                             "forget: a collection and either documents or identifiers");
    struct rb_index_collection *col = NULL;
    enum rb_status st = rb_index_collection_get(idx, req->collection, &col);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "collection '%s': %s", req->collection,
                             st == RB_ERR_NOT_FOUND ? "not found" : rb_index_errmsg(idx));
    char **idents = rb_calloc_array(req->n_identifiers + 1, sizeof *idents);
    if (!idents)
        st = RB_ERR_NOMEM;
    for (size_t i = 0; st == RB_OK && i < req->n_identifiers; i++) {
        idents[i] = fold(req->identifiers[i]);
        if (!idents[i])
            st = RB_ERR_NOMEM;
        else if (rb_utf8_count(idents[i], strlen(idents[i])) < 2)
            st = rb_errmsg_set(err, RB_ERR_INVALID,
                               "identifier %zu is shorter than 2 characters", i + 1);
    }
    /* documents named explicitly */
    for (size_t i = 0; st == RB_OK && i < req->n_documents; i++) {
        struct rb_index_document *d = NULL;
        int64_t id;
        st = rb_parse_i64(req->documents[i], &id) == RB_OK
                 ? rb_index_document_get(idx, id, &d)
                 : rb_index_document_find(idx, col->id, req->documents[i], &d);
        if (st == RB_OK && d->collection_id != col->id)
            st = RB_ERR_NOT_FOUND;
        if (st != RB_OK) {
            rb_errmsg_set(err, st, "document '%s': not found in %s", req->documents[i],
                          req->collection);
        } else {
            rep->documents++;
            st = note(rep, d);
            if (st == RB_OK && !req->dry_run && (st = rb_index_document_delete(idx, d->id)) != RB_OK)
                rb_errmsg_set(err, st, "document %lld: %s", (long long)d->id,
                              rb_index_errmsg(idx));
        }
        rb_index_document_free(d);
    }
    /* a person: every document of the collection, exhaustively */
    if (st == RB_OK && req->n_identifiers) {
        int64_t offset = 0;
        for (;;) {
            struct rb_index_document **docs = NULL;
            size_t n = 0;
            st = rb_index_document_list(idx, col->id, offset, 256, &docs, &n);
            if (st != RB_OK) {
                rb_errmsg_set(err, st, "listing documents: %s", rb_index_errmsg(idx));
                break;
            }
            size_t deleted_here = 0;
            for (size_t i = 0; st == RB_OK && i < n; i++) {
                const struct rb_index_document *d = docs[i];
                if (mentions(d->source, idents, req->n_identifiers) ||
                    mentions(d->title, idents, req->n_identifiers) ||
                    mentions(d->metadata_json, idents, req->n_identifiers)) {
                    rep->documents++;
                    st = note(rep, d);
                    if (st == RB_OK && !req->dry_run) {
                        st = rb_index_document_delete(idx, d->id);
                        deleted_here++;
                    }
                } else {
                    st = forget_chunks(idx, d, idents, req->n_identifiers, req->dry_run, rep, err);
                }
            }
            rb_index_document_list_free(docs, n);
            if (st != RB_OK || n < 256)
                break;
            offset += (int64_t)(n - deleted_here);
        }
    }
    if (st == RB_OK && !req->dry_run && rep->n_affected) {
        st = rb_index_rebuild(idx, 0, RB_INDEX_REBUILD_KEYWORD);
        if (st == RB_OK)
            st = rb_index_flush(idx);
        if (st != RB_OK)
            rb_errmsg_set(err, st, "rebuilding the keyword index: %s", rb_index_errmsg(idx));
        if (st == RB_OK)
            st = vacuum(rb_index_db_path(idx), err);
    }
    for (size_t i = 0; idents && i < req->n_identifiers; i++)
        free(idents[i]);
    free(idents);
    rb_index_collection_free(col);
    return st;
}
