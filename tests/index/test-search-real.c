/* Keyword search on real documents: Chinese news (CRUD) and legal text
 * (CAIL2019), English PubMed abstracts. Indexes a few hundred documents split
 * into passages, asks the datasets' own questions and checks the source
 * document is retrieved; exact Chinese phrases find their passage first. */
#include <dirent.h>

#include "helpers.h"

#define CHUNK_CHARS 300 /* code points per passage */

/* Splits text into passages of about CHUNK_CHARS code points and puts them. */
static int index_file(struct rb_index *idx, int64_t cid, const char *dir, const char *name)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data;
    size_t len;
    if (rb_fs_read_file(path, 8 << 20, &data, &len) != RB_OK)
        return 0;
    struct rb_index_chunk ch[64];
    char *texts[64];
    size_t n = 0, pos = 0;
    while (pos < len && n < 64) {
        size_t end = pos, chars = 0;
        while (end < len && chars < CHUNK_CHARS) {
            uint32_t cp;
            end += (size_t)rb_utf8_decode(data + end, len - end, &cp);
            chars++;
        }
        texts[n] = rb_strndup(data + pos, end - pos);
        memset(&ch[n], 0, sizeof ch[n]);
        ch[n].text = texts[n];
        ch[n].ordinal = (int32_t)n;
        ch[n].byte_start = (int64_t)pos;
        ch[n].byte_end = (int64_t)end;
        n++;
        pos = end;
    }
    struct rb_index_document d = {.collection_id = cid, .source = name,
                                  .state = RB_INDEX_DOC_INDEXED};
    enum rb_status st = rb_index_document_put(idx, &d, ch, n, NULL, NULL);
    if (st != RB_OK)
        fprintf(stderr, "%s: %s\n", name, rb_index_errmsg(idx));
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(data);
    return st == RB_OK;
}

struct question {
    char *text, *doc;
};

/* Reads up to max questions whose "doc" exists in dir. */
static size_t read_questions(const char *qpath, const char *dir, struct question *qs, size_t max)
{
    FILE *f = fopen(qpath, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (n < max && getline(&line, &cap, f) > 0) {
        cJSON *j = NULL;
        struct rb_errmsg e;
        if (rb_json_parse(line, strlen(line), 16, &j, &e) != RB_OK)
            continue;
        const char *q = rb_json_str(j, "question"), *doc = rb_json_str(j, "doc");
        char p[4300];
        if (!doc) { /* pubmedqa: id pubmedqa-<pmid> */
            const char *id = rb_json_str(j, "id");
            if (id && strncmp(id, "pubmedqa-", 9) == 0) {
                snprintf(p, sizeof p, "pmid-%s.txt", id + 9);
                doc = p;
            }
        }
        char full[8700];
        if (q && doc) {
            snprintf(full, sizeof full, "%s/%s", dir, doc);
            if (file_exists(full)) {
                qs[n].text = rb_strdup(q);
                qs[n].doc = rb_strdup(doc);
                n++;
            }
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return n;
}

/* Fraction of questions whose document is among the top k keyword hits. */
static double hit_rate(struct rb_index *idx, int64_t cid, struct question *qs, size_t n, int k)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        struct rb_index_query q = {.text = qs[i].text, .mode = RB_INDEX_MODE_KEYWORD, .k = k,
                                   .collection_ids = &cid, .n_collections = 1};
        struct rb_index_results r;
        if (rb_index_search(idx, &q, &r) != RB_OK) {
            CHECK_MSG(0, "%s: %s", qs[i].text, rb_index_errmsg(idx));
            continue;
        }
        for (size_t h = 0; h < r.n; h++)
            if (strcmp(r.hits[h].source, qs[i].doc) == 0) {
                hits++;
                break;
            }
        rb_index_results_free(&r);
    }
    return n ? (double)hits / (double)n : 0;
}

static void run_set(struct rb_index *idx, const char *name, const char *set, size_t max_q,
                    double min_rate, int k)
{
    char dir[4200], qpath[4300];
    snprintf(dir, sizeof dir, "%s", check_shared(set));
    snprintf(qpath, sizeof qpath, "%s/../questions.jsonl", dir);
    if (!file_exists(dir)) {
        fprintf(stderr, "%s: no %s\n", name, dir);
        CHECK(0);
        return;
    }
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, name, NULL, &cid) == RB_OK);
    struct question *qs = calloc(max_q, sizeof *qs);
    size_t nq = read_questions(qpath, dir, qs, max_q);
    /* Index the questions' documents plus distractors from the same directory. */
    size_t indexed = 0;
    for (size_t i = 0; i < nq; i++) {
        struct rb_index_document *d;
        if (rb_index_document_find(idx, cid, qs[i].doc, &d) == RB_OK) {
            rb_index_document_free(d);
            continue;
        }
        indexed += (size_t)index_file(idx, cid, dir, qs[i].doc);
    }
    DIR *dd = opendir(dir);
    struct dirent *e;
    size_t extra = 0;
    while (dd && (e = readdir(dd)) && extra < 200) {
        if (e->d_name[0] == '.')
            continue;
        struct rb_index_document *d;
        if (rb_index_document_find(idx, cid, e->d_name, &d) == RB_OK) {
            rb_index_document_free(d);
            continue;
        }
        extra += (size_t)index_file(idx, cid, dir, e->d_name);
    }
    if (dd)
        closedir(dd);
    double rate = hit_rate(idx, cid, qs, nq, k);
    fprintf(stderr, "%s: %zu questions over %zu documents: recall@%d %.3f\n", name, nq,
            indexed + extra, k, rate);
    CHECK(nq >= 50);
    CHECK_MSG(rate >= min_rate, "%s recall@%d %.3f < %.2f", name, k, rate, min_rate);
    for (size_t i = 0; i < nq; i++) {
        free(qs[i].text);
        free(qs[i].doc);
    }
    free(qs);
}

/* An exact phrase lifted from a Chinese passage finds that passage first. */
static void exact_phrases(struct rb_index *idx, const char *name)
{
    struct rb_index_collection *c;
    REQUIRE(rb_index_collection_get(idx, name, &c) == RB_OK);
    int64_t cid = c->id;
    rb_index_collection_free(c);
    struct rb_index_document **docs;
    size_t n;
    REQUIRE(rb_index_document_list(idx, cid, 0, 40, &docs, &n) == RB_OK);
    int tried = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        struct rb_index_chunk **chunks;
        size_t nc;
        if (rb_index_document_chunks(idx, docs[i]->id, &chunks, &nc) != RB_OK || nc == 0)
            continue;
        const char *t = chunks[0]->text;
        size_t len = strlen(t);
        /* 12 code points from the middle of the first passage. */
        size_t off = rb_utf8_truncate(t, len, len / 2), end = off, cps = 0;
        while (end < len && cps < 12) {
            uint32_t cp;
            end += (size_t)rb_utf8_decode(t + end, len - end, &cp);
            cps++;
        }
        char *phrase = rb_strndup(t + off, end - off);
        struct rb_index_query q = {.text = phrase, .mode = RB_INDEX_MODE_KEYWORD, .k = 3,
                                   .collection_ids = &cid, .n_collections = 1};
        struct rb_index_results r;
        if (rb_utf8_cjk_ratio(phrase, strlen(phrase)) > 0.5 && rb_index_search(idx, &q, &r) == RB_OK) {
            tried++;
            bool found = false;
            for (size_t h = 0; h < r.n; h++)
                found |= r.hits[h].chunk_id == chunks[0]->id;
            first += found;
            if (!found)
                fprintf(stderr, "phrase '%s' not in top 3 for %s\n", phrase, docs[i]->source);
            rb_index_results_free(&r);
        }
        free(phrase);
        rb_index_chunk_list_free(chunks, nc);
    }
    rb_index_document_list_free(docs, n);
    fprintf(stderr, "%s: %d of %d exact Chinese phrases found in the top 3\n", name, first, tried);
    CHECK(tried >= 20);
    CHECK(first >= tried * 9 / 10);
}

int main(void)
{
    const char *dir = check_tmpdir("real");
    if (!file_exists(check_shared("eval/crud-zh/docs")))
        CHECK_SKIP("shared eval data not present");
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    run_set(idx, "crud-zh", "eval/crud-zh/docs", 150, 0.80, 10);
    exact_phrases(idx, "crud-zh");
    run_set(idx, "cail-zh", "eval/cail2019-zh/docs", 100, 0.70, 10);
    run_set(idx, "pubmedqa", "eval/pubmedqa/docs", 150, 0.90, 10);
    /* A Chinese query does not match English passages and vice versa. */
    struct rb_index_collection *c;
    REQUIRE(rb_index_collection_get(idx, "pubmedqa", &c) == RB_OK);
    int64_t pid = c->id;
    rb_index_collection_free(c);
    struct rb_index_query q = {.text = "税收征收管理", .mode = RB_INDEX_MODE_KEYWORD, .k = 5,
                               .collection_ids = &pid, .n_collections = 1};
    struct rb_index_results r;
    REQUIRE(rb_index_search(idx, &q, &r) == RB_OK);
    CHECK_EQ_INT(r.n, 0);
    rb_index_results_free(&r);
    rb_index_close(idx);
    return check_finish();
}
