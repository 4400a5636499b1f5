/* Redaction per collection policy, end to end on real documents that carry
 * personal data (Chinese news with phone numbers and e-mail, court judgments
 * with a resident ID and a bank card number, e-mails with addresses in
 * their headers), labelled in tests/verticals/data/redaction-eval.jsonl.
 * The same files go through the real ingest pipeline into three collections:
 *   red   {"redaction": {"ingest": true,  "answers": true}}
 *   ans   {"redaction": {"ingest": false, "answers": true}}
 *   plain {"redaction": {"ingest": false, "answers": false}}
 * and the checks are: no labelled identifier survives in red's chunks,
 * sections, titles, metadata or keyword index, and the redactor finds
 * nothing left there; plain's text is byte-for-byte what the parser gave;
 * answers, citations, retrieved passages and the streamed text of ans and red
 * carry no identifier while plain's answer quotes it; a malformed policy is
 * a clear error at ingest and at ask. */
#include <sqlite3.h>

#include "check.h"

#include "ragbox/answer.h"
#include "ragbox/index.h"
#include "ragbox/ingest.h"
#include "ragbox/verticals.h"

static const char *const DOCS[] = {
    "eval/crud-zh/docs/news-07923.txt",   /* phone numbers of farms */
    "eval/crud-zh/docs/news-07311.txt",   /* contest contacts: phone, e-mail */
    "eval/cail2019-zh/docs/cail2019-11.txt",  /* a resident identity number */
    "eval/cail2019-zh/docs/cail2019-613.txt", /* a bank card number */
    "docs/eml/mime-multi-to-cc-bcc.eml",  /* e-mail addresses in headers */
    "docs/eml/fake-email.eml",
};

/* The labelled identifiers of the documents above (from the labelled set). */
static char *labels[256];
static size_t n_labels;

static void load_labels(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/verticals/data/redaction-eval.jsonl",
             getenv("RAGBOX_SOURCE") ? getenv("RAGBOX_SOURCE") : "..");
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 1 << 24, &data, &len) == RB_OK);
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const char *src = o ? rb_json_str(o, "source") : NULL;
        bool ours = false;
        for (size_t d = 0; src && d < RB_ARRAY_LEN(DOCS); d++) {
            size_t n = strlen(DOCS[d]);
            ours |= strncmp(src, DOCS[d], n) == 0 && (src[n] == '\0' || src[n] == ':');
        }
        const cJSON *l;
        const cJSON *arr = ours ? cJSON_GetObjectItem(o, "labels") : NULL;
        cJSON_ArrayForEach(l, arr)
        {
            const char *t = rb_json_str(l, "text");
            if (t && n_labels < RB_ARRAY_LEN(labels))
                labels[n_labels++] = rb_strdup(t);
        }
        cJSON_Delete(o);
    }
    free(data);
}

/* Every stored text of a collection: chunk texts and sections, document
 * titles and metadata, concatenated (caller frees). */
static char *stored_text(const char *db_path, int64_t coll)
{
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    struct rb_buf b;
    rb_buf_init(&b, 256 << 20);
    static const char *const q[] = {
        "SELECT text || char(10) || coalesce(section, '') FROM chunks WHERE collection_id = ?",
        "SELECT coalesce(title, '') || char(10) || metadata_json FROM documents "
        "WHERE collection_id = ?"};
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *s = NULL;
        REQUIRE(sqlite3_prepare_v2(db, q[i], -1, &s, NULL) == SQLITE_OK);
        sqlite3_bind_int64(s, 1, coll);
        while (sqlite3_step(s) == SQLITE_ROW)
            (void)!rb_buf_printf(&b, "%s\n", (const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return rb_buf_steal(&b);
}

/* Keyword hits for one term in one collection. */
static size_t keyword_hits(struct rb_index *idx, int64_t coll, const char *term)
{
    struct rb_index_query q = {.text = term, .mode = RB_INDEX_MODE_KEYWORD, .k = 20,
                               .collection_ids = &coll, .n_collections = 1};
    struct rb_index_results res = {0};
    if (rb_index_search(idx, &q, &res) != RB_OK)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < res.n; i++)
        n += res.hits[i].text && strstr(res.hits[i].text, term) ? 1 : 0;
    size_t all = res.n;
    rb_index_results_free(&res);
    (void)n;
    return all;
}

static void ingest_into(struct rb_index *idx, const char *collection, bool want_ok)
{
    struct rb_ingest_options io = {.index = idx};
    struct rb_ingest *ing = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_ingest_open(&io, &ing, &err) == RB_OK);
    for (size_t d = 0; d < RB_ARRAY_LEN(DOCS); d++)
        REQUIRE(rb_ingest_enqueue_path(ing, collection, check_shared(DOCS[d]), true, NULL) == RB_OK);
    struct rb_ingest_job_result r = {0};
    int64_t due;
    while (rb_ingest_run_one(ing, &r, &due) == RB_OK) {
        bool ok = strcmp(r.action, "added") == 0 || strcmp(r.action, "updated") == 0;
        if (want_ok)
            CHECK_MSG(ok, "%s: %s", r.path, r.error ? r.error : r.action);
        else
            CHECK_MSG(!ok && r.error && strstr(r.error, "redaction"), "%s: %s", r.path,
                      r.error ? r.error : r.action);
        rb_ingest_job_result_clear(&r);
    }
    rb_ingest_close(ing);
}

struct sink {
    struct rb_buf b;
};
static bool on_piece(void *user, const char *piece, size_t len)
{
    return rb_buf_append(&((struct sink *)user)->b, piece, len) == RB_OK;
}

static bool has_label(const char *text)
{
    for (size_t i = 0; text && i < n_labels; i++)
        if (strstr(text, labels[i]))
            return true;
    return false;
}

int main(void)
{
    for (size_t d = 0; d < RB_ARRAY_LEN(DOCS); d++)
        if (access(check_shared(DOCS[d]), R_OK) != 0)
            CHECK_SKIP("%s missing", DOCS[d]);
    load_labels();
    REQUIRE(n_labels >= 8);
    const char *data = check_tmpdir("answer-redact");
    struct rb_index_options xo = {.data_dir = data};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&xo, &idx, &err) == RB_OK);
    static const char *const names[] = {"red", "ans", "plain"};
    static const char *const policies[] = {
        "{\"redaction\": {\"ingest\": true, \"answers\": true}}",
        "{\"redaction\": {\"ingest\": false, \"answers\": true}}",
        "{\"vertical\": \"general\", \"redaction\": {\"ingest\": false, \"answers\": false}}"};
    int64_t ids[3];
    for (int c = 0; c < 3; c++) {
        struct rb_index_collection_options co = {.policy_json = policies[c]};
        REQUIRE(rb_index_collection_create(idx, names[c], &co, &ids[c]) == RB_OK);
        ingest_into(idx, names[c], true);
    }
    char *red = stored_text(rb_index_db_path(idx), ids[0]);
    char *plain = stored_text(rb_index_db_path(idx), ids[2]);
    REQUIRE(red && plain);

    /* 1. ingest: nothing labelled survives in red; plain keeps it all */
    size_t in_plain = 0;
    for (size_t i = 0; i < n_labels; i++) {
        CHECK_MSG(strstr(red, labels[i]) == NULL, "'%s' stored in red", labels[i]);
        in_plain += strstr(plain, labels[i]) != NULL;
    }
    fprintf(stderr, "%zu labelled identifiers, %zu in plain\n", n_labels, in_plain);
    CHECK_MSG(in_plain >= 6, "only %zu labelled identifiers in plain", in_plain);
    CHECK(strstr(red, "[REDACTED:PHONE]") && strstr(red, "[REDACTED:EMAIL]") &&
          strstr(red, "[REDACTED:CN_ID]") && strstr(red, "[REDACTED:CARD]"));
    CHECK(strstr(plain, "[REDACTED:") == NULL);
    /* the rules find nothing more in what red stores */
    struct rb_redactor *rd = NULL;
    REQUIRE(rb_redactor_create(&(struct rb_redactor_options){0}, &rd, &err) == RB_OK);
    struct rb_redact_span *spans = NULL;
    size_t n_spans = 99;
    CHECK(rb_redact_find(rd, red, strlen(red), &spans, &n_spans, &err) == RB_OK);
    CHECK_EQ_INT(n_spans, 0);
    free(spans);
    CHECK(rb_redact_find(rd, plain, strlen(plain), &spans, &n_spans, &err) == RB_OK);
    CHECK(n_spans >= 6);
    free(spans);
    /* plain: chunk text exactly as the chunker gave it (offsets meaningful in both) */
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open_v2(rb_index_db_path(idx), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *s = NULL;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT c.collection_id, c.text, c.byte_start, c.byte_end, c.token_count "
                               "FROM chunks c JOIN documents d ON d.id = c.document_id "
                               "WHERE d.source LIKE '%news-07923.txt' ORDER BY c.collection_id, c.ordinal",
                               -1, &s, NULL) == SQLITE_OK);
    char *orig = NULL;
    size_t orig_len = 0;
    REQUIRE(rb_fs_read_file(check_shared(DOCS[0]), 1 << 24, &orig, &orig_len) == RB_OK);
    int rows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(s, 0);
        const char *t = (const char *)sqlite3_column_text(s, 1);
        int64_t b0 = sqlite3_column_int64(s, 2), b1 = sqlite3_column_int64(s, 3);
        CHECK(b0 >= 0 && b1 > b0 && (size_t)b1 <= orig_len + 1);
        CHECK(sqlite3_column_int64(s, 4) > 0);
        if (c == ids[2]) /* untouched: the bytes of the source at those offsets */
            CHECK(strncmp(t, orig + b0, (size_t)(b1 - b0) < strlen(t) ? (size_t)(b1 - b0) : strlen(t)) == 0);
        if (c == ids[0]) /* redacted: the offsets still locate it in the source */
            CHECK(!has_label(t) && has_label(orig + b0));
        rows++;
    }
    CHECK(rows >= 3);
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(orig);
    /* the keyword index has no identifier of red, all of plain's */
    static const char *const terms[] = {"13601603796", "15021245873", "230603201406260212",
                                        "6212260200022274340"};
    for (size_t i = 0; i < RB_ARRAY_LEN(terms); i++) {
        CHECK_MSG(keyword_hits(idx, ids[0], terms[i]) == 0, "FTS of red has %s", terms[i]);
        CHECK_MSG(keyword_hits(idx, ids[2], terms[i]) >= 1, "FTS of plain lacks %s", terms[i]);
    }

    /* 2. answers, citations, passages and the stream */
    struct rb_answer_env_options eo = {.data_dir = data, .audit = true};
    struct rb_answer_env *env = NULL;
    REQUIRE(rb_answer_env_open(&eo, &env, &err) == RB_OK);
    struct rb_answerer_options ao = {.index = idx};
    rb_answer_env_apply(env, &ao);
    struct rb_answerer *a = NULL;
    REQUIRE(rb_answerer_open(&ao, &a, &err) == RB_OK);
    static const char *const qs[] = {"奥德农庄和上海紫圆农业科技有限公司的联系方式是什么？",
                                     "青浦赛区大赛组委会联络处的联系电话和邮箱是什么？"};
    for (size_t qi = 0; qi < RB_ARRAY_LEN(qs); qi++) {
        for (int c = 0; c < 3; c++) {
            struct sink sk;
            rb_buf_init(&sk.b, 0);
            const char *cols[] = {names[c]};
            struct rb_answer_request rq = {.question = qs[qi], .collections = cols,
                                           .n_collections = 1, .vertical = "general",
                                           .mode = RB_ANSWER_MODE_EXTRACTIVE, .user = "t",
                                           .on_piece = on_piece, .stream_user = &sk};
            struct rb_answer_result r;
            CHECK_MSG(rb_answerer_ask(a, &rq, &r, &err) == RB_OK, "%s", err.text);
            CHECK_MSG(!r.refused, "%s: %s", names[c], r.answer);
            bool leak = has_label(r.answer) || has_label(sk.b.data);
            for (size_t i = 0; i < r.n_citations; i++)
                leak |= has_label(r.citation[i].text);
            for (size_t i = 0; i < r.n_passages; i++)
                leak |= has_label(r.passage[i].text);
            cJSON *j = rb_answer_result_json(&r, true);
            char *js = cJSON_PrintUnformatted(j);
            leak |= has_label(js);
            if (c < 2) {
                CHECK_MSG(!leak, "%s leaks: %s", names[c], r.answer);
                CHECK(r.redacted);
                CHECK(strstr(r.answer, "[REDACTED:PHONE]") != NULL);
                CHECK(sk.b.data && strstr(sk.b.data, "[REDACTED:PHONE]"));
                CHECK(c == 0 || r.n_redactions >= 1);
            } else {
                CHECK_MSG(leak && has_label(r.answer), "plain answer lost its data: %s", r.answer);
                CHECK(!r.redacted && strstr(r.answer, "[REDACTED:") == NULL);
                CHECK(sk.b.data && strcmp(sk.b.data, r.answer) == 0);
            }
            free(js);
            cJSON_Delete(j);
            rb_answer_result_free(&r);
            rb_buf_free(&sk.b);
        }
    }

    /* 3. a policy that cannot be read is an error, never ignored */
    int64_t bad;
    struct rb_index_collection_options co = {.policy_json = "{\"redaction\": {\"ingest\": \"yes\"}}"};
    REQUIRE(rb_index_collection_create(idx, "bad", &co, &bad) == RB_OK);
    ingest_into(idx, "bad", false);
    const char *cols[] = {"bad"};
    struct rb_answer_request rq = {.question = qs[0], .collections = cols, .n_collections = 1,
                                   .mode = RB_ANSWER_MODE_EXTRACTIVE};
    struct rb_answer_result r;
    CHECK(rb_index_collection_set_policy(idx, bad, "{\"redaction\": {\"answers\": 1}}") == RB_OK);
    CHECK_EQ_INT(rb_answerer_ask(a, &rq, &r, &err), RB_ERR_INVALID);
    CHECK(strstr(err.text, "policy") != NULL);
    rb_answer_result_free(&r);
    bool on = true;
    CHECK_EQ_INT(rb_ingest_policy_redacts("[1]", &on, &err), RB_ERR_INVALID);
    CHECK(rb_ingest_policy_redacts("{}", &on, &err) == RB_OK && !on);
    CHECK(rb_ingest_policy_redacts(NULL, &on, &err) == RB_OK && !on);

    rb_answerer_close(a);
    rb_answer_env_close(env);
    rb_redactor_free(rd);
    free(red);
    free(plain);
    for (size_t i = 0; i < n_labels; i++)
        free(labels[i]);
    rb_index_close(idx);
    return check_finish();
}
