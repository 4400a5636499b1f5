/* Search (keyword, vector, hybrid RRF) and maintenance (verify, rebuild). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index-impl.h"

int64_t rb__vcoll_ntotal(const struct rb__vcoll *vc);
enum rb_status rb__flush_locked(struct rb_index *idx);

const char *rb_index_mode_name(enum rb_index_mode m)
{
    switch (m) {
    case RB_INDEX_MODE_AUTO: return "auto";
    case RB_INDEX_MODE_HYBRID: return "hybrid";
    case RB_INDEX_MODE_KEYWORD: return "keyword";
    case RB_INDEX_MODE_VECTOR: return "vector";
    }
    return "unknown";
}

enum rb_status rb_index_mode_parse(const char *text, enum rb_index_mode *out)
{
    static const enum rb_index_mode all[] = {RB_INDEX_MODE_AUTO, RB_INDEX_MODE_HYBRID,
                                             RB_INDEX_MODE_KEYWORD, RB_INDEX_MODE_VECTOR};
    for (size_t i = 0; text && i < RB_ARRAY_LEN(all); i++) {
        if (strcmp(text, rb_index_mode_name(all[i])) == 0) {
            *out = all[i];
            return RB_OK;
        }
    }
    return RB_ERR_INVALID;
}

void rb_index_results_free(struct rb_index_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->hits[i].source);
        free(r->hits[i].title);
        free(r->hits[i].section);
        free(r->hits[i].text);
    }
    free(r->hits);
    r->hits = NULL;
    r->n = 0;
}

/* ============================================================ candidates */

struct cand {
    int64_t chunk_id, document_id, collection_id;
    double kscore, vscore, fused;
    int krank, vrank;
};

struct cands {
    struct cand *v;
    size_t n, cap;
};

static struct cand *cand_get(struct cands *c, int64_t chunk_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].chunk_id == chunk_id)
            return &c->v[i];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct cand *p = realloc(c->v, cap * sizeof *p);
        if (!p)
            return NULL;
        c->v = p;
        c->cap = cap;
    }
    struct cand *x = &c->v[c->n++];
    memset(x, 0, sizeof *x);
    x->chunk_id = chunk_id;
    return x;
}

/* ======================================================= query terms */

/* Rows in the FTS index, from FTS5's "averages" record (id 1 of chunk_fts_data:
 * varints, the first is the row count). 0 if unknown. */
static int64_t fts_rows(sqlite3 *db)
{
    sqlite3_stmt *s;
    int64_t n = 0;
    if (rb__prepare_cached(db, "SELECT block FROM chunk_fts_data WHERE id=1", &s) !=
        SQLITE_OK)
        return 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(s, 0);
        int len = sqlite3_column_bytes(s, 0);
        uint64_t v = 0;
        for (int i = 0; b && i < len && i < 9; i++) {
            if (i == 8) {
                v = (v << 8) | b[i];
                break;
            }
            v = (v << 7) | (b[i] & 0x7f);
            if (!(b[i] & 0x80))
                break;
        }
        n = (int64_t)(v > INT64_MAX ? 0 : v);
    }
    rb__stmt_release(s);
    return n;
}

struct term {
    char *text;
    bool prefix;
    int64_t df;
};

static int term_cmp(const void *a, const void *b)
{
    const struct term *x = a, *y = b;
    return x->df < y->df ? -1 : x->df > y->df;
}

#define MAX_QUERY_TERMS 24

/* The MATCH expression: query terms (see rb__query_terms) that occur in the
 * index, rarest first, at most MAX_QUERY_TERMS, dropping terms found in more
 * than keyword_max_df of all passages (default 5%) (they add little to BM25 and dominate its cost)
 * unless nothing else is left. NULL when no term occurs. */
static enum rb_status rb__fts_match_build(struct rb_index *idx, sqlite3 *db, const char *text,
                                          char **out)
{
    *out = NULL;
    char **toks = NULL;
    bool *prefix = NULL;
    size_t n = 0;
    if (rb__query_terms(text, &toks, &prefix, &n) != RB_OK)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    if (n == 0)
        return RB_OK;
    enum rb_status st = RB_OK;
    struct term *t = calloc(n, sizeof *t);
    sqlite3_stmt *s = NULL;
    struct rb_buf b;
    rb_buf_init(&b, 1 << 16);
    if (!t) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Document frequency per term from the fts5vocab table (prefix terms: a range). */
    if (rb__prepare_cached(db,
                           "SELECT coalesce(sum(doc), 0) FROM chunk_fts_vocab WHERE term >= ?1 "
                           "AND term < ?2", &s) != SQLITE_OK) {
        st = rb__dberr(idx, db, "keyword search");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char hi[128];
        size_t len = strlen(toks[i]);
        if (len + 2 > sizeof hi)
            continue;
        memcpy(hi, toks[i], len + 1);
        if (prefix[i]) {
            hi[len] = (char)0xff; /* every term starting with toks[i] sorts below this */
            hi[len + 1] = 0;
        } else {
            hi[len] = 1; /* just above the exact term */
            hi[len + 1] = 0;
        }
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, toks[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, hi, (int)strlen(hi), SQLITE_TRANSIENT); /* compared bytewise */
        if (sqlite3_step(s) != SQLITE_ROW) {
            st = rb__dberr(idx, db, "keyword search");
            goto out;
        }
        int64_t df = sqlite3_column_int64(s, 0);
        if (df == 0)
            continue;
        t[m].text = toks[i];
        t[m].prefix = prefix[i];
        t[m].df = df;
        m++;
    }
    if (m == 0)
        goto out;
    qsort(t, m, sizeof *t, term_cmp);
    /* Small indexes are cheap to search whole: prune only past 1000 passages. */
    int64_t rows = fts_rows(db);
    int64_t cap = rows > 1000 ? (int64_t)((double)rows * idx->keyword_max_df) : INT64_MAX;
    size_t keep = 0;
    while (keep < m && keep < MAX_QUERY_TERMS && (t[keep].df <= cap || keep < 1))
        keep++;
    for (size_t i = 0; i < keep; i++) {
        /* Tokens hold no '"' (punctuation), so quoting makes them plain terms. */
        if ((i && rb_buf_append_str(&b, " OR ") != RB_OK) || rb_buf_append_str(&b, "\"") ||
            rb_buf_append_str(&b, t[i].text) || rb_buf_append_str(&b, t[i].prefix ? "\"*" : "\"")) {
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    *out = rb_buf_steal(&b);
out:
    rb__stmt_release(s);
    rb_buf_free(&b);
    free(t);
    for (size_t i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
    free(prefix);
    return st;
}

/* ================================================================ legs */

static bool in_query(const struct rb_index_query *q, int64_t col)
{
    for (size_t i = 0; i < q->n_collections; i++)
        if (q->collection_ids[i] == col)
            return true;
    return false;
}

/* BM25 over FTS5, driven by the FTS index (ORDER BY rank with a LIMIT lets FTS5
 * keep only the best rows); collection and ACL filters are applied per row,
 * fetching deeper until `depth` allowed hits or the matches are exhausted. */
static enum rb_status keyword_leg(struct rb_index *idx, sqlite3 *db,
                                  const struct rb_index_query *q, size_t depth, struct cands *out)
{
    char *match = NULL;
    int64_t t0 = rb_time_mono_ns();
    enum rb_status st = rb__fts_match_build(idx, db, q->text, &match);
    RB_DEBUG(RB_INDEX_LOG, "keyword terms in %.2f ms: %s", (double)(rb_time_mono_ns() - t0) / 1e6,
             match ? match : "(none)");
    if (st != RB_OK)
        return st;
    if (!match)
        return RB_OK; /* nothing searchable in the text (only punctuation): no keyword hits */
    sqlite3_stmt *s = NULL, *look = NULL;
    if (rb__prepare_cached(db,
                           "SELECT rowid, rank FROM chunk_fts WHERE chunk_fts MATCH ?1 AND "
                           "rank MATCH 'bm25()' ORDER BY rank LIMIT ?2 OFFSET ?3", &s) != SQLITE_OK ||
        rb__prepare_cached(db, "SELECT document_id, collection_id FROM chunks WHERE id=?", &look) != SQLITE_OK) {
        st = rb__dberr(idx, db, "keyword search");
        goto out;
    }
    sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
    int rank = 0;
    int64_t offset = 0, limit = (int64_t)depth * (q->n_collections > 1 ? 2 : 1) + 16;
    for (;;) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 2, limit);
        sqlite3_bind_int64(s, 3, offset);
        int64_t rows = 0;
        int rc;
        while ((size_t)rank < depth && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            rows++;
            int64_t cid = sqlite3_column_int64(s, 0);
            double score = -sqlite3_column_double(s, 1);
            sqlite3_reset(look);
            sqlite3_bind_int64(look, 1, cid);
            if (sqlite3_step(look) != SQLITE_ROW)
                continue;
            int64_t did = sqlite3_column_int64(look, 0), col = sqlite3_column_int64(look, 1);
            if (!in_query(q, col) || (q->allow && !q->allow(q->allow_ctx, col, did)))
                continue;
            struct cand *c = cand_get(out, cid);
            if (!c) {
                st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                goto out;
            }
            c->document_id = did;
            c->collection_id = col;
            c->krank = ++rank;
            c->kscore = score;
        }
        if ((size_t)rank >= depth)
            break;
        if (rc != SQLITE_DONE) {
            st = rb__dberr(idx, db, "keyword search");
            goto out;
        }
        if (rows < limit)
            break; /* exhausted */
        offset += limit;
        limit *= 4;
    }
out:
    rb__stmt_release(s);
    rb__stmt_release(look);
    free(match);
    return st;
}

/* Makes the collection's in-memory index current and takes vlock shared.
 * On success the caller holds vlock shared and *out is the collection. */
static enum rb_status vector_acquire(struct rb_index *idx, sqlite3 *db, int64_t cid, int64_t gen,
                                     int dim, struct rb__vcoll **out)
{
    pthread_rwlock_rdlock(&idx->vlock);
    struct rb__vcoll *vc = rb__vcoll_find(idx, cid);
    /* Generations only grow: an index newer than this reader's snapshot is fine
     * (results are fresher; chunks its snapshot cannot see are skipped). */
    if (vc && vc->loaded && (vc->generation >= gen || vc->writing)) {
        *out = vc;
        return RB_OK;
    }
    pthread_rwlock_unlock(&idx->vlock);
    pthread_rwlock_wrlock(&idx->vlock);
    enum rb_status st = RB_OK;
    vc = rb__vcoll_find(idx, cid);
    if (!vc)
        st = rb__vcoll_add(idx, cid, dim, &vc);
    if (st == RB_OK && !(vc->loaded && (vc->generation >= gen || vc->writing))) {
        if (vc->loaded)
            RB_INFO(RB_INDEX_LOG, "collection %lld changed in another process: reloading",
                    (long long)cid);
        st = rb__vcoll_ensure(idx, db, vc, gen);
    }
    pthread_rwlock_unlock(&idx->vlock);
    if (st != RB_OK)
        return st;
    /* Re-take shared; a writer may slip in between, which only makes results fresher. */
    pthread_rwlock_rdlock(&idx->vlock);
    vc = rb__vcoll_find(idx, cid);
    if (!vc || !vc->loaded) {
        pthread_rwlock_unlock(&idx->vlock);
        return rb__err(idx, RB_ERR_BUSY, "collection %lld changed during search; retry",
                       (long long)cid);
    }
    *out = vc;
    return RB_OK;
}

struct vhit {
    int64_t id, document_id, collection_id;
    float score;
};

static int vhit_cmp(const void *a, const void *b)
{
    const struct vhit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static enum rb_status vector_leg(struct rb_index *idx, sqlite3 *db, const struct rb_index_query *q,
                                 const float *qv, const int64_t *gens, const int *dims,
                                 size_t depth, struct cands *out)
{
    struct vhit *all = NULL;
    size_t n_all = 0, cap_all = 0;
    enum rb_status st = RB_OK;
    sqlite3_stmt *look = NULL;
    int64_t *ids = NULL;
    float *scores = NULL;
    if (rb__prepare_cached(db, "SELECT document_id, collection_id FROM chunks WHERE id=?", &look) != SQLITE_OK)
        return rb__dberr(idx, db, "vector search");
    for (size_t c = 0; c < q->n_collections && st == RB_OK; c++) {
        if (dims[c] == 0)
            continue;
        struct rb__vcoll *vc = NULL;
        st = vector_acquire(idx, db, q->collection_ids[c], gens[c], dims[c], &vc);
        if (st != RB_OK)
            break;
        int64_t ntotal = rb__vcoll_ntotal(vc);
        /* Over-fetch, doubling until `depth` allowed hits or the index is exhausted. */
        int64_t want = (int64_t)depth;
        size_t allowed = 0;
        while (st == RB_OK && ntotal > 0) {
            int64_t got = 0;
            free(ids);
            free(scores);
            ids = rb_malloc_array((size_t)want, sizeof *ids);
            scores = rb_malloc_array((size_t)want, sizeof *scores);
            if (!ids || !scores) {
                st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                break;
            }
            st = rb__vcoll_search(idx, vc, qv, want, ids, scores, &got);
            if (st != RB_OK)
                break;
            allowed = 0;
            size_t base = n_all;
            for (int64_t i = 0; i < got && allowed < depth; i++) {
                sqlite3_reset(look);
                sqlite3_bind_int64(look, 1, ids[i]);
                if (sqlite3_step(look) != SQLITE_ROW)
                    continue; /* deleted meanwhile */
                int64_t did = sqlite3_column_int64(look, 0),
                        col = sqlite3_column_int64(look, 1);
                if (q->allow && !q->allow(q->allow_ctx, col, did))
                    continue;
                if (n_all == cap_all) {
                    size_t cap = cap_all ? cap_all * 2 : 64;
                    struct vhit *p = realloc(all, cap * sizeof *p);
                    if (!p) {
                        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                        break;
                    }
                    all = p;
                    cap_all = cap;
                }
                all[n_all++] = (struct vhit){ids[i], did, col, scores[i]};
                allowed++;
            }
            if (st != RB_OK || allowed >= depth || got < want || want >= ntotal)
                break;
            n_all = base; /* not enough allowed: fetch deeper and redo this collection */
            want = RB_MIN(want * 4, ntotal);
        }
        pthread_rwlock_unlock(&idx->vlock);
    }
    rb__stmt_release(look);
    free(ids);
    free(scores);
    if (st == RB_OK && n_all) {
        qsort(all, n_all, sizeof *all, vhit_cmp); /* n_all > 0 here */
        for (size_t i = 0; i < n_all && i < depth; i++) {
            struct cand *c = cand_get(out, all[i].id);
            if (!c) {
                st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
                break;
            }
            c->document_id = all[i].document_id;
            c->collection_id = all[i].collection_id;
            c->vrank = (int)i + 1;
            c->vscore = all[i].score;
        }
    }
    free(all);
    return st;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->fused != y->fused)
        return x->fused < y->fused ? 1 : -1;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

/* ================================================================ search */

enum rb_status rb_index_search(struct rb_index *idx, const struct rb_index_query *q,
                               struct rb_index_results *out)
{
    memset(out, 0, sizeof *out);
    (void)rb__err(idx, RB_OK, "%s", "");
    if (!q || q->k < 1 || q->k > 1000)
        return rb__err(idx, RB_ERR_INVALID, "k must be 1..1000");
    if (!q->collection_ids || q->n_collections == 0 || q->n_collections > 256)
        return rb__err(idx, RB_ERR_INVALID, "search needs 1..256 collections");
    bool has_text = q->text && *q->text;
    if (has_text && strlen(q->text) > 65536)
        return rb__err(idx, RB_ERR_TOO_LARGE, "query text too long");
    bool has_vec = q->vector != NULL;
    if (has_vec && (q->vector_dim <= 0 || q->vector_dim > RB_INDEX_DIM_MAX))
        return rb__err(idx, RB_ERR_DIMENSION, "query vector dimension %d", q->vector_dim);
    if (q->mode == RB_INDEX_MODE_VECTOR && !has_vec)
        return rb__err(idx, RB_ERR_INVALID, "vector search needs a query vector");
    if (q->mode == RB_INDEX_MODE_KEYWORD && !has_text)
        return rb__err(idx, RB_ERR_INVALID, "keyword search needs query text");
    if (!has_text && !has_vec)
        return rb__err(idx, RB_ERR_INVALID, "empty query");

    sqlite3 *db;
    enum rb_status st = rb__reader_get(idx, &db);
    if (st != RB_OK)
        return st;
    int64_t *gens = calloc(q->n_collections, sizeof *gens);
    int *dims = calloc(q->n_collections, sizeof *dims);
    float *qv = NULL;
    struct cands cands = {0};
    sqlite3_stmt *s = NULL;
    if (!gens || !dims) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Per collection: dimension and vector generation (a read transaction keeps them coherent). */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rb__prepare_cached(db,
                           "SELECT c.dim, c.vec_generation, EXISTS(SELECT 1 FROM chunks k WHERE "
                           "k.collection_id=c.id AND k.embedding IS NOT NULL) FROM collections c "
                           "WHERE c.id=?", &s) != SQLITE_OK) {
        st = rb__dberr(idx, db, "search");
        goto out;
    }
    bool any_vectors = false;
    for (size_t i = 0; i < q->n_collections; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, q->collection_ids[i]);
        if (sqlite3_step(s) != SQLITE_ROW) {
            st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld",
                         (long long)q->collection_ids[i]);
            goto out;
        }
        bool has = sqlite3_column_int(s, 2) != 0;
        dims[i] = has ? sqlite3_column_int(s, 0) : 0;
        gens[i] = sqlite3_column_int64(s, 1);
        if (has) {
            any_vectors = true;
            if (has_vec && dims[i] != q->vector_dim) {
                st = rb__err(idx, RB_ERR_DIMENSION,
                             "query vector has dimension %d, collection %lld has %d",
                             q->vector_dim, (long long)q->collection_ids[i], dims[i]);
                goto out;
            }
        }
    }
    rb__stmt_release(s);
    s = NULL;
    enum rb_index_mode mode = q->mode;
    if (mode == RB_INDEX_MODE_AUTO || mode == RB_INDEX_MODE_HYBRID) {
        if (!has_vec || !any_vectors)
            mode = RB_INDEX_MODE_KEYWORD; /* hybrid degrades to keyword */
        else if (!has_text)
            mode = RB_INDEX_MODE_VECTOR;
        else
            mode = RB_INDEX_MODE_HYBRID;
    }
    out->mode = mode;
    size_t depth = (size_t)q->k * (size_t)idx->overfetch;
    if (depth < 20)
        depth = 20;
    if (depth > 4000)
        depth = 4000;
    if (mode == RB_INDEX_MODE_KEYWORD || mode == RB_INDEX_MODE_HYBRID)
        if ((st = keyword_leg(idx, db, q, depth, &cands)) != RB_OK)
            goto out;
    if ((mode == RB_INDEX_MODE_VECTOR || mode == RB_INDEX_MODE_HYBRID) && any_vectors) {
        qv = rb_malloc_array((size_t)q->vector_dim, sizeof(float));
        if (!qv) {
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(qv, q->vector, (size_t)q->vector_dim * sizeof(float));
        if (!rb__normalize(qv, q->vector_dim)) {
            st = rb__err(idx, RB_ERR_INVALID, "query vector is zero or not finite");
            goto out;
        }
        if ((st = vector_leg(idx, db, q, qv, gens, dims, depth, &cands)) != RB_OK)
            goto out;
    }
    /* Reciprocal rank fusion. */
    double wk = q->weight_keyword > 0 ? q->weight_keyword : idx->weight_keyword;
    double wv = q->weight_vector > 0 ? q->weight_vector : idx->weight_vector;
    double rk = q->rrf_k > 0 ? q->rrf_k : idx->rrf_k;
    for (size_t i = 0; i < cands.n; i++) {
        struct cand *c = &cands.v[i];
        c->fused = (c->krank ? wk / (rk + c->krank) : 0) + (c->vrank ? wv / (rk + c->vrank) : 0);
    }
    if (cands.n)
        qsort(cands.v, cands.n, sizeof *cands.v, cand_cmp);
    size_t n = RB_MIN(cands.n, (size_t)q->k);
    if (n == 0)
        goto out;
    out->hits = calloc(n, sizeof *out->hits);
    if (!out->hits) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (rb__prepare_cached(db,
                           "SELECT c.text, c.page_start, c.page_end, c.section, c.ordinal, "
                           "d.source, d.title FROM chunks c JOIN documents d ON d.id = "
                           "c.document_id WHERE c.id=?", &s) != SQLITE_OK) {
        st = rb__dberr(idx, db, "search");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct cand *c = &cands.v[i];
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, c->chunk_id);
        if (sqlite3_step(s) != SQLITE_ROW)
            continue;
        struct rb_index_hit *h = &out->hits[out->n];
        h->chunk_id = c->chunk_id;
        h->document_id = c->document_id;
        h->collection_id = c->collection_id;
        h->text = rb_strdup((const char *)sqlite3_column_text(s, 0));
        h->page_start = sqlite3_column_int(s, 1);
        h->page_end = sqlite3_column_int(s, 2);
        h->section = sqlite3_column_type(s, 3) == SQLITE_NULL
                         ? NULL
                         : rb_strdup((const char *)sqlite3_column_text(s, 3));
        h->ordinal = sqlite3_column_int(s, 4);
        h->source = rb_strdup((const char *)sqlite3_column_text(s, 5));
        h->title = sqlite3_column_type(s, 6) == SQLITE_NULL
                       ? NULL
                       : rb_strdup((const char *)sqlite3_column_text(s, 6));
        h->score = c->fused;
        h->keyword_rank = c->krank;
        h->keyword_score = c->kscore;
        h->vector_rank = c->vrank;
        h->vector_score = c->vscore;
        out->n++;
        if (!h->text || !h->source) {
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    rb__stmt_release(s);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    rb__reader_put(idx, db);
    free(gens);
    free(dims);
    free(qv);
    free(cands.v);
    if (st != RB_OK) {
        rb_index_results_free(out);
        out->mode = q->mode;
    }
    return st;
}

/* ============================================================ maintenance */

void rb_index_problems_free(char **problems, size_t n)
{
    if (!problems)
        return;
    for (size_t i = 0; i < n; i++)
        free(problems[i]);
    free(problems);
}

static enum rb_status count_query(struct rb_index *idx, sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return rb__dberr(idx, db, "verify");
    enum rb_status st = RB_OK;
    if (sqlite3_step(s) == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    else
        st = rb__dberr(idx, db, "verify");
    sqlite3_finalize(s);
    return st;
}

enum rb_status rb_index_verify(struct rb_index *idx, char ***problems, size_t *n)
{
    *problems = NULL;
    *n = 0;
    size_t cap = 0;
    enum rb_status st = RB_OK;
    (void)rb__err(idx, RB_OK, "%s", "");
    if (!idx->read_only && (st = rb_index_flush(idx)) != RB_OK)
        return st;
    pthread_mutex_lock(&idx->write_mutex);
    sqlite3 *db = idx->db_write;
    sqlite3_stmt *s = NULL;
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (rb__problem_add(problems, n, &cap, __VA_ARGS__) != RB_OK) {                            \
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");                                      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    /* SQLite itself. */
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK) {
        PROBLEM("SQLite integrity check cannot run: %s", sqlite3_errmsg(db));
    } else {
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            if (t && strcmp(t, "ok") != 0)
                PROBLEM("SQLite: %s", t);
        }
        if (rc != SQLITE_DONE)
            PROBLEM("SQLite integrity check failed: %s", sqlite3_errmsg(db));
        sqlite3_finalize(s);
        s = NULL;
    }
    int64_t v = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &s, NULL) == SQLITE_OK) {
        int64_t bad = 0;
        while (sqlite3_step(s) == SQLITE_ROW)
            bad++;
        sqlite3_finalize(s);
        s = NULL;
        if (bad)
            PROBLEM("SQLite: %lld rows violate foreign keys", (long long)bad);
    }
    /* FTS5 against chunks. */
    char *msg = NULL;
    if (sqlite3_exec(db, "INSERT INTO chunk_fts(chunk_fts) VALUES('integrity-check')", NULL, NULL,
                     &msg) != SQLITE_OK) {
        PROBLEM("FTS5 index does not match the chunks: %s", msg ? msg : "?");
    }
    sqlite3_free(msg);
    int64_t n_chunks = 0, n_fts = 0;
    if ((st = count_query(idx, db, "SELECT count(*) FROM chunks", &n_chunks)) != RB_OK ||
        (st = count_query(idx, db, "SELECT count(*) FROM chunk_fts_docsize", &n_fts)) != RB_OK)
        goto out;
    if (n_chunks != n_fts)
        PROBLEM("FTS5 holds %lld rows, chunks %lld", (long long)n_fts, (long long)n_chunks);
    if ((st = count_query(idx, db,
                          "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM "
                          "chunk_fts_docsize f WHERE f.id = c.id)",
                          &v)) != RB_OK)
        goto out;
    if (v)
        PROBLEM("FTS5 lacks %lld chunks", (long long)v);
    if ((st = count_query(idx, db,
                          "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
                          "WHERE d.collection_id != c.collection_id",
                          &v)) != RB_OK)
        goto out;
    if (v)
        PROBLEM("%lld chunks name another collection than their document", (long long)v);
    if ((st = count_query(idx, db,
                          "SELECT count(*) FROM chunks c JOIN collections k ON k.id = "
                          "c.collection_id WHERE c.embedding IS NOT NULL AND length(c.embedding) "
                          "!= k.dim * 4",
                          &v)) != RB_OK)
        goto out;
    if (v)
        PROBLEM("%lld embeddings do not have their collection's dimension", (long long)v);
    /* FAISS files against SQLite. */
    if (sqlite3_prepare_v2(db, "SELECT id, name FROM collections ORDER BY id", -1, &s, NULL) !=
        SQLITE_OK) {
        st = rb__dberr(idx, db, "verify");
        goto out;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);
        if ((st = rb__vcoll_verify_file(idx, db, cid, name ? name : "?", problems, n, &cap)) !=
            RB_OK)
            goto out;
    }
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&idx->write_mutex);
    if (st != RB_OK) {
        rb_index_problems_free(*problems, *n);
        *problems = NULL;
        *n = 0;
    }
    return st;
#undef PROBLEM
}

enum rb_status rb_index_rebuild(struct rb_index *idx, int64_t collection_id, unsigned what)
{
    (void)rb__err(idx, RB_OK, "%s", "");
    if (idx->read_only)
        return rb__err(idx, RB_ERR_DENIED, "index opened read-only");
    if (!(what & RB_INDEX_REBUILD_ALL))
        return rb__err(idx, RB_ERR_INVALID, "nothing to rebuild");
    enum rb_status st = RB_OK;
    pthread_mutex_lock(&idx->write_mutex);
    if (what & RB_INDEX_REBUILD_KEYWORD) {
        char *msg = NULL;
        if (sqlite3_exec(idx->db_write, "INSERT INTO chunk_fts(chunk_fts) VALUES('rebuild')", NULL,
                         NULL, &msg) != SQLITE_OK)
            st = rb__err(idx, RB_ERR_DB, "rebuilding FTS5: %s", msg ? msg : "?");
        sqlite3_free(msg);
        if (st == RB_OK)
            RB_INFO(RB_INDEX_LOG, "FTS5 index rebuilt");
    }
    if (st == RB_OK && (what & RB_INDEX_REBUILD_VECTORS)) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(idx->db_write,
                               "SELECT id, dim, vec_generation FROM collections WHERE ?1 = 0 OR "
                               "id = ?1",
                               -1, &s, NULL) != SQLITE_OK) {
            st = rb__dberr(idx, idx->db_write, "rebuild");
        } else {
            sqlite3_bind_int64(s, 1, collection_id);
            bool any = false;
            pthread_rwlock_wrlock(&idx->vlock);
            while (st == RB_OK && sqlite3_step(s) == SQLITE_ROW) {
                any = true;
                int64_t cid = sqlite3_column_int64(s, 0);
                struct rb__vcoll *vc = rb__vcoll_find(idx, cid);
                if (!vc)
                    st = rb__vcoll_add(idx, cid, sqlite3_column_int(s, 1), &vc);
                if (st == RB_OK)
                    st = rb__vcoll_rebuild(idx, idx->db_write, vc, sqlite3_column_int64(s, 2));
                if (st == RB_OK)
                    st = rb__vcoll_persist(idx, vc);
            }
            pthread_rwlock_unlock(&idx->vlock);
            sqlite3_finalize(s);
            if (st == RB_OK && !any && collection_id)
                st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld",
                             (long long)collection_id);
        }
    }
    pthread_mutex_unlock(&idx->write_mutex);
    return st;
}
