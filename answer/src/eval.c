/* `ragbox eval`: retrieval and answer quality on the development sets.
 *
 * Per set: its documents in a collection "eval-<set>" (through the ingest
 * hook, or the built-in plain-text paragraph chunker for .txt sets), then for
 * each of the first `limit` questions: the gold document's rank in the
 * keyword, vector and hybrid legs (recall@1/5/10, MRR, nDCG@10; finance also
 * the gold page), the answer (extractive or generated) against short gold
 * answers, citation precision, refusals on answerable and UNANSWERABLE
 * questions, and the same questions asked against a collection of another set
 * of the same language (which must be refused). The evidence score of every
 * answered/foreign question feeds the threshold sweep that sets the
 * per-vertical refusal thresholds. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer-impl.h"

#define EVAL_LEGS 3
static const char *const leg_name[EVAL_LEGS] = {"keyword", "vector", "hybrid"};
static const enum rb_index_mode leg_mode[EVAL_LEGS] = {RB_INDEX_MODE_KEYWORD, RB_INDEX_MODE_VECTOR,
                                                       RB_INDEX_MODE_HYBRID};

struct doc_hash {
    char *name;
    char hash[RB_SHA256_HEX_LEN + 1];
};

struct leg_stats {
    size_t n;
    double r1, r5, r10, mrr, ndcg;
    double page_r5; /* finance: gold page among the top 5 chunks */
    size_t page_n;
};

struct set_stats {
    char name[64];
    char lang[8];
    char vertical[32];
    size_t n_questions, n_docs;
    bool legs_run[EVAL_LEGS];
    struct leg_stats leg[EVAL_LEGS];
    size_t acc_n, acc_ok;          /* short gold answers */
    size_t cit_n, cit_ok;          /* citations, and those pointing at the gold document */
    size_t answerable, answerable_refused;
    size_t in_hand, in_hand_refused; /* answerable with the gold document retrieved */
    size_t unanswerable, unanswerable_refused;
    size_t foreign, foreign_refused;
    char foreign_collection[64];
    double latency_ms_sum;
    size_t latency_n;
    double *ev_in;   /* evidence of answerable in-collection questions */
    size_t n_ev_in;
    double *ev_out;  /* evidence of foreign questions */
    size_t n_ev_out;
    char skipped[256];
};

/* ------------------------------------------------------------- ingestion */

/* Paragraph chunks of about target bytes (blank-line separated, merged). */
static enum rb_status chunk_text(const char *text, size_t len, size_t target,
                                 struct rb_index_chunk **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 16, cnt = 0;
    struct rb_index_chunk *c = calloc(cap, sizeof *c);
    if (!c)
        return RB_ERR_NOMEM;
    size_t start = 0;
    while (start < len) {
        size_t end = start, last_break = 0;
        while (end < len && end - start < target) {
            const char *nl = memchr(text + end, '\n', len - end);
            size_t para_end = nl ? (size_t)(nl - text) + 1 : len;
            end = para_end;
            last_break = end;
        }
        if (last_break == 0)
            last_break = len;
        end = last_break;
        if (end - start > target * 2) /* one huge paragraph: cut on a UTF-8 boundary */
            end = start + rb_utf8_truncate(text + start, end - start, target * 2);
        if (end <= start)
            end = len;
        if (cnt == cap) {
            cap *= 2;
            struct rb_index_chunk *nc = realloc(c, cap * sizeof *nc);
            if (!nc) {
                free(c);
                return RB_ERR_NOMEM;
            }
            c = nc;
        }
        memset(&c[cnt], 0, sizeof c[cnt]);
        c[cnt].ordinal = (int32_t)cnt;
        c[cnt].text = text + start; /* borrowed; NUL-terminated copies made below */
        c[cnt].byte_start = (int64_t)start;
        c[cnt].byte_end = (int64_t)end;
        cnt++;
        start = end;
    }
    *out = c;
    *n = cnt;
    return RB_OK;
}

static enum rb_status ingest_txt(struct rb_index *idx, int64_t coll, const char *path,
                                 const char *name, const char *hash, bool zh,
                                 struct rb_errmsg *err)
{
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(path, 64 << 20, &data, &len);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "%s: %s", path, rb_status_str(st));
    if (!rb_utf8_valid(data, len)) {
        free(data);
        return rb_errmsg_set(err, RB_ERR_ENCODING, "%s: not UTF-8", path);
    }
    struct rb_index_chunk *chunks = NULL;
    size_t n = 0;
    st = chunk_text(data, len, zh ? 600 : 1200, &chunks, &n);
    char **texts = st == RB_OK ? calloc(n ? n : 1, sizeof *texts) : NULL;
    if (st == RB_OK && !texts)
        st = RB_ERR_NOMEM;
    for (size_t i = 0; st == RB_OK && i < n; i++) {
        texts[i] = rb_strndup(data + chunks[i].byte_start,
                              (size_t)(chunks[i].byte_end - chunks[i].byte_start));
        if (!texts[i])
            st = RB_ERR_NOMEM;
        chunks[i].text = texts[i];
    }
    if (st == RB_OK) {
        struct rb_index_document d = {.collection_id = coll,
                                      .source = name,
                                      .sha256 = hash,
                                      .mime = "text/plain",
                                      .title = name,
                                      .language = zh ? "zh" : "en",
                                      .size = (int64_t)len,
                                      .state = RB_INDEX_DOC_INDEXED};
        st = rb_index_document_put(idx, &d, chunks, n, NULL, NULL);
        if (st != RB_OK)
            rb_errmsg_set(err, st, "%s: %s", name, rb_index_errmsg(idx));
    }
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(chunks);
    free(data);
    return st;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct doc_hash *)a)->name, ((const struct doc_hash *)b)->name);
}

/* The set's documents with their content hashes (for duplicate-aware hits). */
static enum rb_status list_docs(const char *dir, struct doc_hash **out, size_t *n,
                                struct rb_errmsg *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return rb_errmsg_set(err, RB_ERR_NOT_FOUND, "%s: no such directory", dir);
    size_t cap = 256, cnt = 0;
    struct doc_hash *v = calloc(cap, sizeof *v);
    struct dirent *e;
    enum rb_status st = v ? RB_OK : RB_ERR_NOMEM;
    while (st == RB_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (cnt == cap) {
            cap *= 2;
            struct doc_hash *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                st = RB_ERR_NOMEM;
                break;
            }
            v = nv;
        }
        char *p = rb_path_join(dir, e->d_name);
        v[cnt].name = rb_strdup(e->d_name);
        if (!p || !v[cnt].name) {
            free(p);
            free(v[cnt].name);
            st = RB_ERR_NOMEM;
            break;
        }
        st = rb_sha256_file(p, v[cnt].hash);
        free(p);
        cnt++;
    }
    closedir(d);
    if (st != RB_OK) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i].name);
        free(v);
        return rb_errmsg_set(err, st, "%s: cannot list documents", dir);
    }
    qsort(v, cnt, sizeof *v, cmp_name);
    *out = v;
    *n = cnt;
    return RB_OK;
}

static const char *hash_of(const struct doc_hash *docs, size_t n, const char *name)
{
    struct doc_hash key = {.name = (char *)name};
    const struct doc_hash *h = bsearch(&key, docs, n, sizeof *docs, cmp_name);
    return h ? h->hash : NULL;
}

/* Ensures collection eval-<set> holds the set's documents. */
static enum rb_status ensure_collection(const struct rb_answer_eval_options *o, const char *set,
                                        const char *docdir, const struct doc_hash *docs,
                                        size_t n_docs, bool zh, int64_t *coll_id,
                                        struct rb_errmsg *err)
{
    char name[96];
    snprintf(name, sizeof name, "eval-%s", set);
    struct rb_index_collection *c = NULL;
    enum rb_status st = rb_index_collection_get(o->index, name, &c);
    if (st == RB_OK && c->documents == (int64_t)n_docs && !o->reingest) {
        *coll_id = c->id;
        rb_index_collection_free(c);
        return RB_OK;
    }
    if (st == RB_OK) {
        st = rb_index_collection_delete(o->index, c->id);
        rb_index_collection_free(c);
        if (st != RB_OK)
            return rb_errmsg_set(err, st, "%s: %s", name, rb_index_errmsg(o->index));
    }
    if ((st = rb_index_collection_create(o->index, name, NULL, coll_id)) != RB_OK)
        return rb_errmsg_set(err, st, "%s: %s", name, rb_index_errmsg(o->index));
    int64_t t0 = rb_time_mono_ns();
    for (size_t i = 0; i < n_docs; i++) {
        char *path = rb_path_join(docdir, docs[i].name);
        if (!path)
            return RB_ERR_NOMEM;
        const char *dot = strrchr(docs[i].name, '.');
        if (o->ingest) {
            st = o->ingest(o->ingest_user, o->index, *coll_id, path, err);
        } else if (dot && strcmp(dot, ".txt") == 0) {
            st = ingest_txt(o->index, *coll_id, path, docs[i].name, docs[i].hash, zh, err);
        } else {
            st = rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                               "%s: needs the ingest module (only .txt is read directly)",
                               docs[i].name);
        }
        free(path);
        if (st != RB_OK)
            return st;
        if (o->progress && (i % 200 == 199 || i + 1 == n_docs))
            fprintf(stderr, "\r  %s: %zu/%zu documents indexed", set, i + 1, n_docs);
    }
    if (o->progress)
        fprintf(stderr, " (%.1f s)\n", (double)(rb_time_mono_ns() - t0) / 1e9);
    st = rb_index_flush(o->index);
    return st == RB_OK ? RB_OK : rb_errmsg_set(err, st, "flush: %s", rb_index_errmsg(o->index));
}

/* ----------------------------------------------------------- per question */

static bool same_doc(const struct doc_hash *docs, size_t n, const char *hit_source,
                     const char *gold)
{
    const char *base = rb_path_basename(hit_source);
    if (strcmp(base, gold) == 0)
        return true;
    const char *a = hash_of(docs, n, base), *b = hash_of(docs, n, gold);
    return a && b && strcmp(a, b) == 0;
}

static enum rb_status push_double(double **v, size_t *n, double x)
{
    double *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return RB_ERR_NOMEM;
    nv[(*n)++] = x;
    *v = nv;
    return RB_OK;
}

/* Document-level ranking of one leg. */
static enum rb_status rank_leg(struct rb_answerer *a, const struct rb_answer_request *req,
                               const struct doc_hash *docs, size_t n_docs, const char *gold,
                               const cJSON *pages, struct leg_stats *ls, struct rb_errmsg *err)
{
    struct rb_answer_passage *p = NULL;
    size_t n = 0;
    enum rb_status st = rb_answerer_retrieve(a, req, &p, &n, err);
    if (st != RB_OK)
        return st;
    bool rel[64] = {0};
    size_t nd = 0;
    const char *seen[64];
    for (size_t i = 0; i < n && nd < 64; i++) {
        bool dup = false;
        for (size_t k = 0; k < nd && !dup; k++)
            dup = strcmp(seen[k], p[i].document) == 0;
        if (dup)
            continue;
        seen[nd] = p[i].document;
        rel[nd] = same_doc(docs, n_docs, p[i].document, gold);
        nd++;
    }
    struct rb_answer_ranking m;
    rb_answer_rank_metrics(rel, nd, 1, &m);
    ls->n++;
    ls->r1 += m.recall_at[1];
    ls->r5 += m.recall_at[5];
    ls->r10 += m.recall_at[10];
    ls->mrr += m.mrr;
    ls->ndcg += m.ndcg10;
    if (cJSON_IsArray(pages) && cJSON_GetArraySize(pages) > 0) {
        /* gold pages are 0-based; chunk pages 1-based */
        bool hit = false;
        for (size_t i = 0; i < n && i < 5 && !hit; i++) {
            const cJSON *pg;
            cJSON_ArrayForEach(pg, pages) hit = hit || (same_doc(docs, n_docs, p[i].document, gold) &&
                                                        p[i].page == pg->valueint + 1);
        }
        ls->page_n++;
        ls->page_r5 += hit;
    }
    rb_answer_passages_free(p, n);
    return RB_OK;
}

static enum rb_status answer_one(const struct rb_answer_eval_options *o, struct rb_answerer *a,
                                 const struct rb_answer_request *req, const char *vertical,
                                 struct rb_answer_result *r, struct rb_errmsg *err)
{
    struct rb_answer_passage *p = NULL;
    size_t n = 0;
    enum rb_status st = rb_answerer_retrieve(a, req, &p, &n, err);
    if (st != RB_OK)
        return st;
    struct rb_answer_policy pol = {.min_evidence = o->min_evidence >= 0
                                                       ? o->min_evidence
                                                       : rb_answer_default_min_evidence(
                                                             vertical, rb_answer_detect_lang(
                                                                           req->question,
                                                                           strlen(req->question)))};
    struct rb_answer_respond_options ro = {.question = req->question,
                                           .mode = o->backend ? RB_ANSWER_MODE_GENERATE
                                                              : RB_ANSWER_MODE_EXTRACTIVE,
                                           .backend = o->backend,
                                           .policy = &pol,
                                           .render = o->render,
                                           .render_user = o->render_user,
                                           .gen = {.max_tokens = 256}};
    return rb_answer_respond(&ro, p, n, r, err);
}

/* ------------------------------------------------------------------- sets */

static const char *const all_sets[] = {"financebench", "pubmedqa", "tatqa",
                                       "crud-zh",      "cail2019-zh", "cmdd-zh"};
/* the collection whose documents cannot answer a set's questions (same language) */
static const char *foreign_of(const char *set, const char *const *have, size_t n_have)
{
    static const char *const pairs[][3] = {
        {"financebench", "pubmedqa", "tatqa"}, {"pubmedqa", "tatqa", "financebench"},
        {"tatqa", "pubmedqa", "financebench"}, {"crud-zh", "cmdd-zh", "cail2019-zh"},
        {"cail2019-zh", "cmdd-zh", "crud-zh"}, {"cmdd-zh", "cail2019-zh", "crud-zh"}};
    for (size_t i = 0; i < RB_ARRAY_LEN(pairs); i++) {
        if (strcmp(pairs[i][0], set) != 0)
            continue;
        for (int c = 1; c < 3; c++)
            for (size_t k = 0; k < n_have; k++)
                if (strcmp(have[k], pairs[i][c]) == 0)
                    return pairs[i][c];
    }
    return NULL;
}

static enum rb_status run_set(const struct rb_answer_eval_options *o, struct rb_answerer *a,
                              const char *set, const char *foreign, bool index_only,
                              struct set_stats *ss, struct rb_errmsg *err)
{
    char *dir = rb_path_join(o->sets_dir, set);
    char *qpath = dir ? rb_path_join(dir, "questions.jsonl") : NULL;
    char *docdir = dir ? rb_path_join(dir, "docs") : NULL;
    struct rb_answer_table q = {0};
    struct doc_hash *docs = NULL;
    size_t n_docs = 0;
    enum rb_status st = qpath && docdir ? RB_OK : RB_ERR_NOMEM;
    rb_strlcpy(ss->name, set, sizeof ss->name);
    if (st == RB_OK)
        st = rb_answer_table_read(qpath, &q, err);
    if (st == RB_OK)
        st = list_docs(docdir, &docs, &n_docs, err);
    if (st != RB_OK)
        goto out;
    ss->n_docs = n_docs;
    const char *lang = q.n_rows ? rb_answer_table_get(&q, 0, "lang") : NULL;
    const char *vert = q.n_rows ? rb_answer_table_get(&q, 0, "vertical") : NULL;
    rb_strlcpy(ss->lang, lang ? lang : "en", sizeof ss->lang);
    rb_strlcpy(ss->vertical, vert ? vert : "general", sizeof ss->vertical);
    bool zh = strcmp(ss->lang, "zh") == 0;
    int64_t coll = 0;
    st = ensure_collection(o, set, docdir, docs, n_docs, zh, &coll, err);
    if (st == RB_ERR_UNSUPPORTED) {
        rb_strlcpy(ss->skipped, err->text, sizeof ss->skipped);
        st = RB_OK;
        goto out;
    }
    if (st != RB_OK || index_only)
        goto out;
    char cname[96], fname[96];
    snprintf(cname, sizeof cname, "eval-%s", set);
    const char *cl[1] = {cname};
    const char *fl[1] = {fname};
    if (foreign) {
        snprintf(fname, sizeof fname, "eval-%s", foreign);
        rb_strlcpy(ss->foreign_collection, fname, sizeof ss->foreign_collection);
    }
    size_t limit = o->limit > 0 && o->limit < q.n_rows ? o->limit : q.n_rows;
    for (size_t legs = 0; legs < EVAL_LEGS; legs++)
        ss->legs_run[legs] = leg_mode[legs] == RB_INDEX_MODE_KEYWORD || o->have_vectors;
    for (size_t i = 0; i < limit && st == RB_OK; i++) {
        const char *question = rb_answer_table_get(&q, i, "question");
        const char *gold_doc = rb_answer_table_get(&q, i, "doc");
        const char *gold = rb_answer_table_get(&q, i, "answer");
        const char *pages_text = rb_answer_table_get(&q, i, "pages");
        if (!question || !gold_doc)
            continue;
        ss->n_questions++;
        cJSON *pages = pages_text ? cJSON_Parse(pages_text) : NULL;
        struct rb_answer_request req = {.question = question, .collections = cl,
                                        .n_collections = 1, .k = o->k > 0 ? o->k : 10};
        for (size_t l = 0; l < EVAL_LEGS && st == RB_OK; l++) {
            if (!ss->legs_run[l])
                continue;
            req.retrieval = leg_mode[l];
            st = rank_leg(a, &req, docs, n_docs, gold_doc, pages, &ss->leg[l], err);
        }
        cJSON_Delete(pages);
        if (st != RB_OK)
            break;
        /* the answer, on the best available leg */
        req.retrieval = o->have_vectors ? RB_INDEX_MODE_HYBRID : RB_INDEX_MODE_KEYWORD;
        req.k = o->answer_k > 0 ? o->answer_k : 5;
        struct rb_answer_result r = {0};
        int64_t t0 = rb_time_mono_ns();
        st = answer_one(o, a, &req, ss->vertical, &r, err);
        ss->latency_ms_sum += (double)(rb_time_mono_ns() - t0) / 1e6;
        ss->latency_n++;
        if (st == RB_OK) {
            bool unanswerable = gold && strcmp(gold, "UNANSWERABLE") == 0;
            if (unanswerable) {
                ss->unanswerable++;
                ss->unanswerable_refused += r.refused;
            } else {
                ss->answerable++;
                ss->answerable_refused += r.refused;
                /* thresholds are calibrated on questions whose gold document
                 * reached the answer step: refusing those is the error to avoid */
                bool in_hand = false;
                for (size_t k = 0; k < r.n_passages && !in_hand; k++)
                    in_hand = same_doc(docs, n_docs, r.passage[k].document, gold_doc);
                if (in_hand) {
                    ss->in_hand++;
                    ss->in_hand_refused += r.refused;
                    st = push_double(&ss->ev_in, &ss->n_ev_in, r.evidence);
                }
                /* an extractive answer states no yes/no/maybe verdict */
                bool verdict_gold = strcasecmp(gold, "yes") == 0 || strcasecmp(gold, "no") == 0 ||
                                    strcasecmp(gold, "maybe") == 0;
                int m = r.refused || (verdict_gold && !o->backend)
                            ? -1
                            : rb_answer_match_gold(r.answer, gold);
                if (m >= 0) {
                    ss->acc_n++;
                    ss->acc_ok += m == 1;
                }
            }
            for (size_t c = 0; c < r.n_citations; c++) {
                ss->cit_n++;
                ss->cit_ok += same_doc(docs, n_docs, r.citation[c].document, gold_doc);
            }
        }
        rb_answer_result_free(&r);
        /* the same question where its answer is not */
        if (st == RB_OK && foreign) {
            req.collections = fl;
            memset(&r, 0, sizeof r);
            enum rb_status fs = answer_one(o, a, &req, ss->vertical, &r, err);
            if (fs == RB_OK) {
                ss->foreign++;
                ss->foreign_refused += r.refused;
                st = push_double(&ss->ev_out, &ss->n_ev_out, r.evidence);
            } else if (fs != RB_ERR_NOT_FOUND) {
                st = fs;
            }
            rb_answer_result_free(&r);
        }
        if (o->progress)
            fprintf(stderr, "\r  %s: %zu/%zu questions", set, i + 1, limit);
    }
    if (o->progress)
        fprintf(stderr, "\n");
out:
    for (size_t i = 0; i < n_docs; i++)
        free(docs[i].name);
    free(docs);
    rb_answer_table_free(&q);
    free(dir);
    free(qpath);
    free(docdir);
    return st;
}

/* ------------------------------------------------------------------ report */

static double pct(size_t a, size_t b)
{
    return b ? 100.0 * (double)a / (double)b : NAN;
}

static void fmt_pct(char *buf, size_t size, size_t a, size_t b)
{
    if (b)
        snprintf(buf, size, "%.1f %% (%zu/%zu)", pct(a, b), a, b);
    else
        snprintf(buf, size, "n/a");
}

/* The largest threshold that keeps >= 95 % of answerable questions answered,
 * and what it refuses of the foreign questions. */
static void sweep(const double *in, size_t n_in, const double *out, size_t n_out, double *best_t,
                  double *kept, double *refused_foreign)
{
    *best_t = 0;
    *kept = 1;
    *refused_foreign = 0;
    for (int s = 0; s <= 100; s++) {
        double t = s / 100.0;
        size_t keep = 0, ref = 0;
        for (size_t i = 0; i < n_in; i++)
            keep += in[i] >= t;
        for (size_t i = 0; i < n_out; i++)
            ref += out[i] < t;
        double k = n_in ? (double)keep / (double)n_in : 1;
        if (k >= 0.95) {
            *best_t = t;
            *kept = k;
            *refused_foreign = n_out ? (double)ref / (double)n_out : 0;
        }
    }
}

static enum rb_status write_report(const struct rb_answer_eval_options *o, struct set_stats *ss,
                                   size_t n_sets, double seconds, struct rb_errmsg *err)
{
    struct rb_buf md;
    rb_buf_init(&md, 0);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "limit", (double)o->limit);
    cJSON_AddNumberToObject(root, "k", o->k > 0 ? o->k : 10);
    cJSON_AddStringToObject(root, "answer_mode", o->backend ? o->backend->ops->name : "extractive");
    cJSON_AddNumberToObject(root, "seconds", seconds);
    cJSON *sets = cJSON_AddArrayToObject(root, "sets");
    enum rb_status st = rb_buf_printf(
        &md,
        "# ragbox eval\n\nDev sets under `%s`, first %zu questions per set (all documents "
        "indexed), k = %d, answers: %s. Run time %.0f s.\n\n"
        "## Retrieval (gold document; doc-level ranking of the top-k chunks)\n\n"
        "| set | lang | q | leg | R@1 | R@5 | R@10 | MRR | nDCG@10 | page R@5 |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n",
        o->sets_dir, o->limit, o->k > 0 ? o->k : 10,
        o->backend ? o->backend->ops->name : "extractive (no LLM)", seconds);
    for (size_t i = 0; i < n_sets && st == RB_OK; i++) {
        struct set_stats *s = &ss[i];
        cJSON *js = cJSON_CreateObject();
        cJSON_AddItemToArray(sets, js);
        cJSON_AddStringToObject(js, "set", s->name);
        if (s->skipped[0]) {
            cJSON_AddStringToObject(js, "skipped", s->skipped);
            st = rb_buf_printf(&md, "| %s | | | skipped: %s | | | | | | |\n", s->name, s->skipped);
            continue;
        }
        cJSON_AddStringToObject(js, "lang", s->lang);
        cJSON_AddStringToObject(js, "vertical", s->vertical);
        cJSON_AddNumberToObject(js, "questions", (double)s->n_questions);
        cJSON_AddNumberToObject(js, "documents", (double)s->n_docs);
        cJSON *legs = cJSON_AddObjectToObject(js, "retrieval");
        for (size_t l = 0; l < EVAL_LEGS && st == RB_OK; l++) {
            struct leg_stats *ls = &s->leg[l];
            if (!s->legs_run[l]) {
                st = rb_buf_printf(&md, "| %s | %s | %zu | %s | — | — | — | — | — | — |\n",
                                   s->name, s->lang, s->n_questions, leg_name[l]);
                cJSON_AddNullToObject(legs, leg_name[l]);
                continue;
            }
            double n = ls->n ? (double)ls->n : 1;
            char page[32] = "—";
            if (ls->page_n)
                snprintf(page, sizeof page, "%.3f", ls->page_r5 / (double)ls->page_n);
            st = rb_buf_printf(&md,
                               "| %s | %s | %zu | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %s |\n",
                               s->name, s->lang, s->n_questions, leg_name[l], ls->r1 / n,
                               ls->r5 / n, ls->r10 / n, ls->mrr / n, ls->ndcg / n, page);
            cJSON *jl = cJSON_AddObjectToObject(legs, leg_name[l]);
            cJSON_AddNumberToObject(jl, "recall@1", ls->r1 / n);
            cJSON_AddNumberToObject(jl, "recall@5", ls->r5 / n);
            cJSON_AddNumberToObject(jl, "recall@10", ls->r10 / n);
            cJSON_AddNumberToObject(jl, "mrr", ls->mrr / n);
            cJSON_AddNumberToObject(jl, "ndcg@10", ls->ndcg / n);
            if (ls->page_n)
                cJSON_AddNumberToObject(jl, "page_recall@5", ls->page_r5 / (double)ls->page_n);
        }
    }
    if (st == RB_OK)
        st = rb_buf_printf(&md, "\n## Answers\n\n| set | answer accuracy (short gold) | citation "
                                "precision | refused (answerable) | refused (answerable, gold doc retrieved) | "
                                "refused (UNANSWERABLE) | refused (asked of another collection) | "
                                "mean latency |\n"
                                "|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n_sets && st == RB_OK; i++) {
        struct set_stats *s = &ss[i];
        if (s->skipped[0])
            continue;
        char acc[64], cit[64], ra[64], rh[64], ru[64], rf[96];
        fmt_pct(rh, sizeof rh, s->in_hand_refused, s->in_hand);
        fmt_pct(acc, sizeof acc, s->acc_ok, s->acc_n);
        fmt_pct(cit, sizeof cit, s->cit_ok, s->cit_n);
        fmt_pct(ra, sizeof ra, s->answerable_refused, s->answerable);
        fmt_pct(ru, sizeof ru, s->unanswerable_refused, s->unanswerable);
        fmt_pct(rf, sizeof rf, s->foreign_refused, s->foreign);
        st = rb_buf_printf(&md, "| %s | %s | %s | %s | %s | %s | %s (vs %s) | %.0f ms |\n",
                           s->name, acc, cit, ra, rh, ru, rf,
                           s->foreign_collection[0] ? s->foreign_collection : "—",
                           s->latency_n ? s->latency_ms_sum / (double)s->latency_n : 0);
        cJSON *js = cJSON_GetArrayItem(sets, (int)i);
        cJSON *ja = cJSON_AddObjectToObject(js, "answers");
        cJSON_AddNumberToObject(ja, "accuracy_n", (double)s->acc_n);
        cJSON_AddNumberToObject(ja, "accuracy", s->acc_n ? pct(s->acc_ok, s->acc_n) / 100 : 0);
        cJSON_AddNumberToObject(ja, "citations", (double)s->cit_n);
        cJSON_AddNumberToObject(ja, "citation_precision",
                                s->cit_n ? pct(s->cit_ok, s->cit_n) / 100 : 0);
        cJSON_AddNumberToObject(ja, "answerable", (double)s->answerable);
        cJSON_AddNumberToObject(ja, "answerable_refused", (double)s->answerable_refused);
        cJSON_AddNumberToObject(ja, "answerable_gold_retrieved", (double)s->in_hand);
        cJSON_AddNumberToObject(ja, "answerable_gold_retrieved_refused", (double)s->in_hand_refused);
        cJSON_AddNumberToObject(ja, "unanswerable", (double)s->unanswerable);
        cJSON_AddNumberToObject(ja, "unanswerable_refused", (double)s->unanswerable_refused);
        cJSON_AddNumberToObject(ja, "foreign", (double)s->foreign);
        cJSON_AddNumberToObject(ja, "foreign_refused", (double)s->foreign_refused);
        cJSON_AddNumberToObject(ja, "mean_latency_ms",
                                s->latency_n ? s->latency_ms_sum / (double)s->latency_n : 0);
    }
    /* threshold sweep per vertical */
    if (st == RB_OK)
        st = rb_buf_printf(
            &md, "\n## Refusal threshold sweep (evidence = idf-weighted coverage of the question "
                 "by the best retrieved passage)\n\nPer vertical, the largest threshold that "
                 "keeps >= 95 %% of the answerable questions whose gold document was retrieved "
                 "answered, and the share of the same questions asked of another collection "
                 "(same language) it then refuses. Yes/no/maybe gold answers are not scored "
                 "for extractive answers, which state no verdict.\n\n"
                 "| vertical | lang | answerable q (gold retrieved) | foreign q | measured "
                 "threshold | kept | foreign refused | in use | kept (in use) | foreign refused "
                 "(in use) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    cJSON *jt = cJSON_AddObjectToObject(root, "thresholds");
    /* "general" pools every vertical of the language */
    const char *verts[] = {"finance", "healthcare", "government", "general"};
    const char *langs[] = {"en", "zh"};
    for (size_t v = 0; v < 4 && st == RB_OK; v++) {
        for (size_t lg = 0; lg < 2 && st == RB_OK; lg++) {
            double *in = NULL, *out = NULL;
            size_t n_in = 0, n_out = 0;
            for (size_t i = 0; i < n_sets; i++) {
                if ((v < 3 && strcmp(ss[i].vertical, verts[v]) != 0) ||
                    strcmp(ss[i].lang, langs[lg]) != 0)
                    continue;
                for (size_t k = 0; k < ss[i].n_ev_in; k++)
                    (void)!push_double(&in, &n_in, ss[i].ev_in[k]);
                for (size_t k = 0; k < ss[i].n_ev_out; k++)
                    (void)!push_double(&out, &n_out, ss[i].ev_out[k]);
            }
            if (n_in) {
                double t, kept, ref;
                sweep(in, n_in, out, n_out, &t, &kept, &ref);
                enum rb_answer_lang al = lg ? RB_ANSWER_LANG_ZH : RB_ANSWER_LANG_EN;
                double in_use = rb_answer_default_min_evidence(verts[v], al);
                size_t kept_now = 0, ref_now = 0;
                for (size_t i = 0; i < n_in; i++)
                    kept_now += in[i] >= in_use;
                for (size_t i = 0; i < n_out; i++)
                    ref_now += out[i] < in_use;
                st = rb_buf_printf(&md,
                                   "| %s | %s | %zu | %zu | %.2f | %.1f %% | %.1f %% | %.2f | "
                                   "%.1f %% | %.1f %% |\n",
                                   verts[v], langs[lg], n_in, n_out, t, 100 * kept, 100 * ref,
                                   in_use, 100.0 * (double)kept_now / (double)n_in,
                                   n_out ? 100.0 * (double)ref_now / (double)n_out : 0);
                char key[64];
                snprintf(key, sizeof key, "%s/%s", verts[v], langs[lg]);
                cJSON *x = cJSON_AddObjectToObject(jt, key);
                cJSON_AddNumberToObject(x, "measured", t);
                cJSON_AddNumberToObject(x, "answerable_kept", kept);
                cJSON_AddNumberToObject(x, "foreign_refused", ref);
                cJSON_AddNumberToObject(x, "in_use", in_use);
            }
            free(in);
            free(out);
        }
    }
    char *json = rb_json_print(root);
    cJSON_Delete(root);
    if (st == RB_OK && json) {
        char *mdp = rb_path_join(o->out_dir, "eval-report.md");
        char *jp = rb_path_join(o->out_dir, "eval-report.json");
        st = rb_fs_mkdirs(o->out_dir, 0755);
        if (st == RB_OK)
            st = rb_fs_write_atomic(mdp, md.data, md.len);
        if (st == RB_OK)
            st = rb_fs_write_atomic(jp, json, strlen(json));
        if (st != RB_OK)
            rb_errmsg_set(err, st, "cannot write the report in %s", o->out_dir);
        free(mdp);
        free(jp);
    }
    if (st == RB_OK && o->print)
        fputs(md.data, stdout);
    free(json);
    rb_buf_free(&md);
    return st;
}

enum rb_status rb_answer_eval_run(const struct rb_answer_eval_options *o, struct rb_errmsg *err)
{
    if (!o || !o->index || !o->sets_dir || !o->out_dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "eval: index, sets_dir and out_dir are needed");
    const char *const *sets = o->sets && o->n_sets ? o->sets : all_sets;
    size_t n_sets = o->sets && o->n_sets ? o->n_sets : RB_ARRAY_LEN(all_sets);
    struct set_stats *ss = rb_calloc_array(n_sets, sizeof *ss);
    if (!ss)
        return RB_ERR_NOMEM;
    struct rb_answerer_options ao = {.index = o->index, .embed = o->embed,
                                     .embed_user = o->embed_user};
    struct rb_answerer *a = NULL;
    enum rb_status st = rb_answerer_open(&ao, &a, err);
    int64_t t0 = rb_time_mono_ns();
    /* index every set first so that the foreign collections exist */
    for (size_t i = 0; i < n_sets && st == RB_OK; i++)
        st = run_set(o, a, sets[i], NULL, true, &ss[i], err);
    for (size_t i = 0; i < n_sets && st == RB_OK; i++) {
        if (ss[i].skipped[0])
            continue;
        /* a foreign collection must exist (not skipped) */
        const char *have[RB_ARRAY_LEN(all_sets) + 8];
        size_t n_have = 0;
        for (size_t k = 0; k < n_sets && n_have < RB_ARRAY_LEN(have); k++)
            if (!ss[k].skipped[0])
                have[n_have++] = sets[k];
        memset(&ss[i], 0, sizeof ss[i]);
        st = run_set(o, a, sets[i], foreign_of(sets[i], have, n_have), false, &ss[i], err);
    }
    double secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    if (st == RB_OK)
        st = write_report(o, ss, n_sets, secs, err);
    for (size_t i = 0; i < n_sets; i++) {
        free(ss[i].ev_in);
        free(ss[i].ev_out);
    }
    free(ss);
    rb_answerer_close(a);
    return st;
}
