/* The index API on real SQLite files: collections, documents, chunks, search
 * (keyword, vector, hybrid RRF), ACL, deletes that leave no trace, dimension
 * checks, hostile queries, foreign and corrupt database files. */
#include <sqlite3.h>

#include "helpers.h"

static int64_t count_sql(const char *db_path, const char *sql)
{
    sqlite3 *db;
    int64_t v = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        } else {
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        }
    }
    sqlite3_close(db);
    return v;
}

static size_t keyword_hits(struct rb_index *idx, int64_t cid, const char *text)
{
    struct rb_index_query q = {.text = text, .mode = RB_INDEX_MODE_KEYWORD, .k = 50,
                               .collection_ids = &cid, .n_collections = 1};
    struct rb_index_results r;
    enum rb_status st = rb_index_search(idx, &q, &r);
    CHECK_MSG(st == RB_OK, "%s: %s", text, rb_index_errmsg(idx));
    size_t n = r.n;
    rb_index_results_free(&r);
    return n;
}

static void test_collections(const char *dir)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t id = 0, id2 = 0;
    CHECK_EQ_INT(rb_index_collection_create(idx, "finance", NULL, &id), RB_OK);
    CHECK(id > 0);
    CHECK_EQ_INT(rb_index_collection_create(idx, "finance", NULL, &id2), RB_ERR_EXISTS);
    CHECK_EQ_INT(rb_index_collection_create(idx, "", NULL, &id2), RB_ERR_INVALID);
    CHECK_EQ_INT(rb_index_collection_create(idx, "../etc", NULL, &id2), RB_ERR_INVALID);
    CHECK_EQ_INT(rb_index_collection_create(idx, "a b", NULL, &id2), RB_ERR_INVALID);
    char longname[100];
    memset(longname, 'a', 99);
    longname[99] = 0;
    CHECK_EQ_INT(rb_index_collection_create(idx, longname, NULL, &id2), RB_ERR_INVALID);
    struct rb_index_collection_options bad = {.factory = "NoSuchIndex42"};
    CHECK_EQ_INT(rb_index_collection_create(idx, "x1", &bad, &id2), RB_ERR_INVALID);
    CHECK(strstr(rb_index_errmsg(idx), "factory") != NULL);
    struct rb_index_collection_options badpol = {.policy_json = "[1,2]"};
    CHECK_EQ_INT(rb_index_collection_create(idx, "x2", &badpol, &id2), RB_ERR_INVALID);
    struct rb_index_collection_options good = {.dim = 8, .factory = "HNSW16,Flat",
                                               .policy_json = "{\"roles\":[\"hr\"]}"};
    CHECK_EQ_INT(rb_index_collection_create(idx, "hr.v1", &good, &id2), RB_OK);
    struct rb_index_collection *c = NULL;
    CHECK_EQ_INT(rb_index_collection_get(idx, "hr.v1", &c), RB_OK);
    REQUIRE(c);
    CHECK_EQ_INT(c->dim, 8);
    CHECK_STR(c->factory, "HNSW16,Flat");
    CHECK(strstr(c->policy_json, "roles") != NULL);
    rb_index_collection_free(c);
    CHECK_EQ_INT(rb_index_collection_set_policy(idx, id2, "{\"roles\":[]}"), RB_OK);
    CHECK_EQ_INT(rb_index_collection_set_policy(idx, id2, "nope"), RB_ERR_INVALID);
    CHECK_EQ_INT(rb_index_collection_get(idx, "missing", &c), RB_ERR_NOT_FOUND);
    CHECK(c == NULL);
    struct rb_index_collection *list;
    size_t n;
    CHECK_EQ_INT(rb_index_collection_list(idx, &list, &n), RB_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_STR(list[0].name, "finance");
    CHECK_STR(list[1].name, "hr.v1");
    rb_index_collection_list_free(list, n);
    CHECK_EQ_INT(rb_index_collection_delete(idx, id2), RB_OK);
    CHECK_EQ_INT(rb_index_collection_delete(idx, id2), RB_ERR_NOT_FOUND);
    rb_index_close(idx);
    /* Persisted across reopen. */
    idx = open_dir(dir);
    REQUIRE(idx);
    CHECK_EQ_INT(rb_index_collection_list(idx, &list, &n), RB_OK);
    CHECK_EQ_INT(n, 1);
    rb_index_collection_list_free(list, n);
    rb_index_close(idx);
}

static void test_documents(const char *dir)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "docs", NULL, &cid) == RB_OK);
    const char *t1[] = {"Quarterly revenue grew by eleven percent", "Operating margin narrowed"};
    float v1[16] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    int64_t chunk_ids[2];
    int64_t d1 = put_doc(idx, cid, "/srv/docs/report.pdf", t1, 2, v1, 8, chunk_ids);
    CHECK(d1 > 0);
    struct rb_index_document *doc = NULL;
    CHECK_EQ_INT(rb_index_document_find(idx, cid, "/srv/docs/report.pdf", &doc), RB_OK);
    REQUIRE(doc);
    CHECK_EQ_INT(doc->id, d1);
    CHECK_EQ_INT(doc->chunk_count, 2);
    CHECK_EQ_INT(doc->state, RB_INDEX_DOC_INDEXED);
    CHECK_STR(doc->metadata_json, "{}");
    rb_index_document_free(doc);
    struct rb_index_collection *c;
    CHECK_EQ_INT(rb_index_collection_get(idx, "docs", &c), RB_OK);
    CHECK_EQ_INT(c->dim, 8); /* fixed by the first vector */
    CHECK_EQ_INT(c->vectors, 2);
    CHECK_EQ_INT(c->chunks, 2);
    CHECK_EQ_INT(c->documents, 1);
    rb_index_collection_free(c);
    struct rb_index_chunk *ch = NULL;
    CHECK_EQ_INT(rb_index_chunk_get(idx, chunk_ids[1], &ch), RB_OK);
    REQUIRE(ch);
    CHECK_STR(ch->text, "Operating margin narrowed");
    CHECK_EQ_INT(ch->document_id, d1);
    CHECK_EQ_INT(ch->page_start, 2);
    rb_index_chunk_free(ch);

    /* Wrong dimension: refused, nothing changes. */
    float v4[4] = {1, 2, 3, 4};
    const char *tx[] = {"dimension four"};
    CHECK_EQ_INT(put_doc(idx, cid, "bad.txt", tx, 1, v4, 4, NULL), 0);
    struct rb_index_chunk bad = {.text = "x", .embedding = v4, .embedding_dim = 4};
    struct rb_index_document bd = {.collection_id = cid, .source = "bad.txt"};
    CHECK_EQ_INT(rb_index_document_put(idx, &bd, &bad, 1, NULL, NULL), RB_ERR_DIMENSION);
    CHECK_EQ_INT(rb_index_document_find(idx, cid, "bad.txt", &doc), RB_ERR_NOT_FOUND);
    struct rb_index_query vq = {.vector = v4, .vector_dim = 4, .mode = RB_INDEX_MODE_VECTOR,
                                .k = 3, .collection_ids = &cid, .n_collections = 1};
    struct rb_index_results r;
    CHECK_EQ_INT(rb_index_search(idx, &vq, &r), RB_ERR_DIMENSION);
    /* A zero vector, a NaN and invalid UTF-8 are refused too. */
    float z[8] = {0};
    struct rb_index_chunk zc = {.text = "zero", .embedding = z, .embedding_dim = 8};
    CHECK_EQ_INT(rb_index_document_put(idx, &bd, &zc, 1, NULL, NULL), RB_ERR_INVALID);
    struct rb_index_chunk uc = {.text = "bad \xff utf8"};
    CHECK_EQ_INT(rb_index_document_put(idx, &bd, &uc, 1, NULL, NULL), RB_ERR_ENCODING);
    /* A collection created with --dim refuses other dimensions from the start. */
    int64_t c16;
    struct rb_index_collection_options o16 = {.dim = 16};
    REQUIRE(rb_index_collection_create(idx, "dim16", &o16, &c16) == RB_OK);
    CHECK_EQ_INT(put_doc(idx, c16, "a", tx, 1, v1, 8, NULL), 0);

    /* Replace keeps the id, swaps the chunks, FTS follows. */
    CHECK_EQ_INT(keyword_hits(idx, cid, "revenue"), 1);
    const char *t2[] = {"Dividend policy unchanged"};
    float v2[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    int64_t d1b = put_doc(idx, cid, "/srv/docs/report.pdf", t2, 1, v2, 8, NULL);
    CHECK_EQ_INT(d1b, d1);
    CHECK_EQ_INT(keyword_hits(idx, cid, "revenue"), 0);
    CHECK_EQ_INT(keyword_hits(idx, cid, "dividend"), 1);
    CHECK_EQ_INT(rb_index_chunk_get(idx, chunk_ids[0], &ch), RB_ERR_NOT_FOUND);

    /* sha256 lookup, rename, state, attachments, list. */
    struct rb_index_document att = {.collection_id = cid, .source = "mail.eml#1",
                                    .parent_id = d1, .sha256 = "abc", .title = "attachment"};
    const struct rb_index_chunk ac = {.text = "attached spreadsheet totals"};
    int64_t d2;
    CHECK_EQ_INT(rb_index_document_put(idx, &att, &ac, 1, &d2, NULL), RB_OK);
    struct rb_index_document **list;
    size_t n;
    CHECK_EQ_INT(rb_index_document_find_sha256(idx, cid, "abc", &list, &n), RB_OK);
    CHECK_EQ_INT(n, 1);
    if (n)
        CHECK_STR(list[0]->title, "attachment");
    rb_index_document_list_free(list, n);
    CHECK_EQ_INT(rb_index_document_rename(idx, d2, "moved.eml#1"), RB_OK);
    CHECK_EQ_INT(rb_index_document_rename(idx, d2, "/srv/docs/report.pdf"), RB_ERR_EXISTS);
    CHECK_EQ_INT(rb_index_document_find(idx, cid, "moved.eml#1", &doc), RB_OK);
    rb_index_document_free(doc);
    CHECK_EQ_INT(keyword_hits(idx, cid, "spreadsheet"), 1); /* chunks kept on rename */
    CHECK_EQ_INT(rb_index_document_set_state(idx, d2, RB_INDEX_DOC_FAILED, "parse error"), RB_OK);
    CHECK_EQ_INT(rb_index_document_get(idx, d2, &doc), RB_OK);
    CHECK_EQ_INT(doc->state, RB_INDEX_DOC_FAILED);
    CHECK_STR(doc->error, "parse error");
    rb_index_document_free(doc);
    CHECK_EQ_INT(rb_index_document_list(idx, cid, 0, 0, &list, &n), RB_OK);
    CHECK_EQ_INT(n, 2);
    rb_index_document_list_free(list, n);
    CHECK_EQ_INT(rb_index_document_list(idx, cid, 1, 5, &list, &n), RB_OK);
    CHECK_EQ_INT(n, 1);
    rb_index_document_list_free(list, n);

    /* Deleting the parent deletes the attachment; no trace in chunks, FTS or FAISS. */
    CHECK_EQ_INT(rb_index_document_delete(idx, d1), RB_OK);
    CHECK_EQ_INT(rb_index_document_get(idx, d2, &doc), RB_ERR_NOT_FOUND);
    CHECK_EQ_INT(keyword_hits(idx, cid, "dividend"), 0);
    CHECK_EQ_INT(keyword_hits(idx, cid, "spreadsheet"), 0);
    CHECK_EQ_INT(rb_index_collection_get(idx, "docs", &c), RB_OK);
    CHECK_EQ_INT(c->chunks, 0);
    CHECK_EQ_INT(c->vectors, 0);
    CHECK_EQ_INT(c->faiss_ntotal, 0);
    rb_index_collection_free(c);
    CHECK_EQ_INT(rb_index_flush(idx), RB_OK);
    char *dbp = rb_strdup(rb_index_db_path(idx));
    rb_index_close(idx);
    CHECK_EQ_INT(count_sql(dbp, "SELECT count(*) FROM chunks"), 0);
    CHECK_EQ_INT(count_sql(dbp, "SELECT count(*) FROM chunk_fts_docsize"), 0);
    CHECK_EQ_INT(count_sql(dbp, "SELECT count(*) FROM chunk_fts_idx WHERE term > ''") >= 0, 1);
    free(dbp);
}

struct acl {
    int calls;
    int64_t forbidden_doc_mod; /* forbid documents with id % 2 == this */
};

static bool allow_even(void *ctx, int64_t collection_id, int64_t document_id)
{
    struct acl *a = ctx;
    (void)collection_id;
    a->calls++;
    return document_id % 2 != a->forbidden_doc_mod;
}

static bool allow_none(void *ctx, int64_t c, int64_t d)
{
    (void)ctx;
    (void)c;
    (void)d;
    return false;
}

static void test_search(const char *dir)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "search", NULL, &cid) == RB_OK);
    /* Hybrid ordering, constructed: keyword ranks A > B, vector ranks C > B; B is in
     * both legs and must come first with RRF. */
    const char *ta[] = {"credit risk credit risk credit risk exposure"};
    const char *tb[] = {"credit exposure limits in the trading book"};
    const char *tc[] = {"market liquidity of sovereign bonds"};
    float q[4] = {1, 0, 0, 0};
    float va[4] = {-1, 0.1f, 0, 0}, vb[4] = {0.8f, 0.6f, 0, 0}, vc[4] = {1, 0.05f, 0, 0};
    int64_t a = put_doc(idx, cid, "A", ta, 1, va, 4, NULL);
    int64_t b = put_doc(idx, cid, "B", tb, 1, vb, 4, NULL);
    int64_t c = put_doc(idx, cid, "C", tc, 1, vc, 4, NULL);
    const char *td[] = {"interest rate swaps"};
    float vd[4] = {0.5f, 0.866f, 0, 0};
    int64_t d = put_doc(idx, cid, "D", td, 1, vd, 4, NULL);
    REQUIRE(a && b && c && d);
    struct rb_index_query hq = {.text = "credit risk", .vector = q, .vector_dim = 4,
                                .mode = RB_INDEX_MODE_HYBRID, .k = 3, .collection_ids = &cid,
                                .n_collections = 1};
    struct rb_index_results r;
    CHECK_EQ_INT(rb_index_search(idx, &hq, &r), RB_OK);
    CHECK_EQ_INT(r.mode, RB_INDEX_MODE_HYBRID);
    REQUIRE(r.n == 3);
    CHECK_STR(r.hits[0].source, "B");
    CHECK_EQ_INT(r.hits[0].keyword_rank, 2);
    CHECK_EQ_INT(r.hits[0].vector_rank, 2);
    for (size_t i = 0; i < r.n; i++) {
        struct rb_index_hit *h = &r.hits[i];
        double want = (h->keyword_rank ? 1.0 / (60 + h->keyword_rank) : 0) +
                      (h->vector_rank ? 1.0 / (60 + h->vector_rank) : 0);
        CHECK_NEAR(h->score, want, 1e-12);
        if (i)
            CHECK(r.hits[i - 1].score >= h->score);
    }
    /* A ranks first by keyword, C by vector. */
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.hits[i].source, "A") == 0)
            CHECK_EQ_INT(r.hits[i].keyword_rank, 1);
        if (strcmp(r.hits[i].source, "C") == 0) {
            CHECK_EQ_INT(r.hits[i].vector_rank, 1);
            CHECK_NEAR(r.hits[i].vector_score, 1.0 / sqrt(1 + 0.05 * 0.05), 1e-5);
        }
    }
    rb_index_results_free(&r);
    /* Weights move the balance: keyword weight 10 puts A first, C last of three. */
    hq.weight_keyword = 10;
    CHECK_EQ_INT(rb_index_search(idx, &hq, &r), RB_OK);
    REQUIRE(r.n == 3);
    CHECK_STR(r.hits[0].source, "A");
    CHECK_STR(r.hits[2].source, "C");
    rb_index_results_free(&r);
    hq.weight_keyword = 0;

    /* Hostile query syntax never errors. */
    const char *hostile[] = {"\"", "NEAR(credit risk", "*", "text:credit", "credit AND OR NOT",
                             "(((", "^credit", "-credit", "\"credit\"*", "{text}: x", "!!!",
                             "credit) OR (", "c\xff\xfe", "NEAR(a b, 99999999999999999)"};
    for (size_t i = 0; i < RB_ARRAY_LEN(hostile); i++) {
        struct rb_index_query kq = {.text = hostile[i], .mode = RB_INDEX_MODE_KEYWORD, .k = 5,
                                    .collection_ids = &cid, .n_collections = 1};
        enum rb_status st = rb_index_search(idx, &kq, &r);
        CHECK_MSG(st == RB_OK, "query '%s': %s", hostile[i], rb_index_errmsg(idx));
        if (st == RB_OK)
            rb_index_results_free(&r);
    }

    /* ACL: 20 documents, odd ids forbidden; keyword, vector and hybrid never show one,
     * and still return k allowed hits. */
    int64_t cacl;
    REQUIRE(rb_index_collection_create(idx, "acl", NULL, &cacl) == RB_OK);
    for (int i = 0; i < 20; i++) {
        char src[32], text[128];
        snprintf(src, sizeof src, "doc-%02d", i);
        snprintf(text, sizeof text, "confidential salary review number %d", i);
        const char *tt[] = {text};
        float v[4] = {1, 0.01f * (float)i, 0, 0};
        REQUIRE(put_doc(idx, cacl, src, tt, 1, v, 4, NULL) > 0);
    }
    enum rb_index_mode modes[] = {RB_INDEX_MODE_KEYWORD, RB_INDEX_MODE_VECTOR,
                                  RB_INDEX_MODE_HYBRID};
    for (size_t m = 0; m < 3; m++) {
        struct acl a1 = {0, 1};
        struct rb_index_query aq = {.text = "salary review", .vector = q, .vector_dim = 4,
                                    .mode = modes[m], .k = 5, .collection_ids = &cacl,
                                    .n_collections = 1, .allow = allow_even, .allow_ctx = &a1};
        CHECK_EQ_INT(rb_index_search(idx, &aq, &r), RB_OK);
        CHECK_EQ_INT(r.n, 5);
        CHECK(a1.calls > 0);
        for (size_t i = 0; i < r.n; i++)
            CHECK_MSG(r.hits[i].document_id % 2 == 0, "mode %d: forbidden document %lld",
                      (int)modes[m], (long long)r.hits[i].document_id);
        rb_index_results_free(&r);
        aq.allow = allow_none;
        CHECK_EQ_INT(rb_index_search(idx, &aq, &r), RB_OK);
        CHECK_EQ_INT(r.n, 0);
        rb_index_results_free(&r);
    }
    /* Two collections at once; hybrid degrades to keyword for one without vectors. */
    int64_t cnv;
    REQUIRE(rb_index_collection_create(idx, "novec", NULL, &cnv) == RB_OK);
    const char *tn[] = {"salary review without vectors"};
    REQUIRE(put_doc(idx, cnv, "nv", tn, 1, NULL, 0, NULL) > 0);
    struct rb_index_query kq = {.text = "salary review", .vector = q, .vector_dim = 4,
                                .mode = RB_INDEX_MODE_HYBRID, .k = 3, .collection_ids = &cnv,
                                .n_collections = 1};
    CHECK_EQ_INT(rb_index_search(idx, &kq, &r), RB_OK);
    CHECK_EQ_INT(r.mode, RB_INDEX_MODE_KEYWORD);
    CHECK_EQ_INT(r.n, 1);
    rb_index_results_free(&r);
    int64_t both[2] = {cacl, cnv};
    kq.collection_ids = both;
    kq.n_collections = 2;
    kq.k = 30;
    CHECK_EQ_INT(rb_index_search(idx, &kq, &r), RB_OK);
    CHECK_EQ_INT(r.n, 21);
    rb_index_results_free(&r);
    int64_t missing = 9999;
    kq.collection_ids = &missing;
    kq.n_collections = 1;
    CHECK_EQ_INT(rb_index_search(idx, &kq, &r), RB_ERR_NOT_FOUND);
    rb_index_close(idx);
}

static void test_foreign(const char *root)
{
    char dir[4200], path[4300];
    struct rb_index_options o = {0};
    struct rb_index *idx;
    struct rb_errmsg err;
    /* Not SQLite at all. */
    snprintf(dir, sizeof dir, "%s/garbage", root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/ragbox.db", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    o.data_dir = dir;
    CHECK_EQ_INT(rb_index_open(&o, &idx, &err), RB_ERR_FORMAT);
    CHECK(idx == NULL);
    CHECK(strstr(err.text, "not a ragbox database") != NULL);
    /* Another program's SQLite database. */
    snprintf(dir, sizeof dir, "%s/foreign", root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/ragbox.db", dir);
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE customers(id, name); INSERT INTO customers "
                             "VALUES(1,'x')",
                         NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    o.data_dir = dir;
    CHECK_EQ_INT(rb_index_open(&o, &idx, &err), RB_ERR_FORMAT);
    CHECK(strstr(err.text, "another program") != NULL);
    /* A ragbox database from the future. */
    snprintf(dir, sizeof dir, "%s/future", root);
    idx = open_dir(dir);
    REQUIRE(idx);
    rb_index_close(idx);
    snprintf(path, sizeof path, "%s/ragbox.db", dir);
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE schema_versions SET version=99 WHERE module='index'", NULL,
                         NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    o.data_dir = dir;
    CHECK_EQ_INT(rb_index_open(&o, &idx, &err), RB_ERR_UNSUPPORTED);
    /* Another module created schema_versions first: the index adds its tables. */
    snprintf(dir, sizeof dir, "%s/shared", root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/ragbox.db", dir);
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE schema_versions(module TEXT PRIMARY KEY, version INTEGER "
                         "NOT NULL); INSERT INTO schema_versions VALUES('audit', 3); CREATE "
                         "TABLE audit_log(x);",
                         NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    idx = open_dir(dir);
    CHECK(idx != NULL);
    rb_index_close(idx);
    CHECK_EQ_INT(count_sql(path, "SELECT version FROM schema_versions WHERE module='audit'"), 3);
    CHECK_EQ_INT(count_sql(path, "PRAGMA user_version"), RB_INDEX_SCHEMA_VERSION);
    CHECK_EQ_INT(count_sql(path, "PRAGMA application_id"), RB_INDEX_APPLICATION_ID);
    /* A damaged ragbox database: the schema page overwritten. */
    snprintf(dir, sizeof dir, "%s/damaged", root);
    idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "c", NULL, &cid) == RB_OK);
    rb_index_close(idx);
    snprintf(path, sizeof path, "%s/ragbox.db", dir);
    f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 100, SEEK_SET);
    for (int i = 0; i < 3000; i++)
        fputc(0xA5, f);
    fclose(f);
    o.data_dir = dir;
    enum rb_status st = rb_index_open(&o, &idx, &err);
    CHECK_MSG(st == RB_ERR_CORRUPT || st == RB_ERR_FORMAT, "status %d: %s", (int)st, err.text);
    CHECK(idx == NULL);
    CHECK(strlen(err.text) > 10);
}

int main(void)
{
    const char *dir = check_tmpdir("api");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/collections", dir);
    test_collections(sub);
    snprintf(sub, sizeof sub, "%s/documents", dir);
    test_documents(sub);
    snprintf(sub, sizeof sub, "%s/search", dir);
    test_search(sub);
    test_foreign(dir);
    return check_finish();
}
