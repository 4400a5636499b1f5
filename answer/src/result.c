/* Answer results: citations from extractive selections or from the labels a
 * model wrote, and the JSON shape shared by `ragbox ask --json`, batch jobs
 * and the web API. */
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"

static void citation_clear(struct rb_answer_citation *c)
{
    free(c->document);
    free(c->doc_hash);
    free(c->collection);
    free(c->section);
    free(c->text);
    memset(c, 0, sizeof *c);
}

void rb_answer_result_free(struct rb_answer_result *r)
{
    if (!r)
        return;
    free(r->answer);
    for (size_t i = 0; i < r->n_citations; i++)
        citation_clear(&r->citation[i]);
    free(r->citation);
    for (size_t i = 0; i < r->n_passages; i++)
        rb_answer_passage_clear(&r->passage[i]);
    free(r->passage);
    free(r->withheld);
    free(r->vertical);
    free(r->template_id);
    free(r->template_version);
    free(r->draft);
    memset(r, 0, sizeof *r);
}

/* Chinese sentences are joined without a space. */
static bool zh_sep(const char *t)
{
    return rb_utf8_cjk_ratio(t, strlen(t)) >= 0.3;
}

static enum rb_status dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return RB_OK;
    *dst = rb_strdup(src);
    return *dst ? RB_OK : RB_ERR_NOMEM;
}

/* Appends a citation for passage p with label. */
static enum rb_status add_citation(struct rb_answer_result *r, int label,
                                   const struct rb_answer_passage *p)
{
    struct rb_answer_citation *nc =
        realloc(r->citation, (r->n_citations + 1) * sizeof *r->citation);
    if (!nc)
        return RB_ERR_NOMEM;
    r->citation = nc;
    struct rb_answer_citation *c = &nc[r->n_citations];
    memset(c, 0, sizeof *c);
    c->label = label;
    c->chunk_id = p->chunk_id;
    c->document_id = p->document_id;
    c->page = p->page;
    c->score = p->score;
    if (dup_opt(&c->document, p->document ? p->document : "") != RB_OK ||
        dup_opt(&c->doc_hash, p->doc_hash) != RB_OK ||
        dup_opt(&c->collection, p->collection) != RB_OK ||
        dup_opt(&c->section, p->section) != RB_OK || dup_opt(&c->text, p->text) != RB_OK) {
        citation_clear(c);
        return RB_ERR_NOMEM;
    }
    r->n_citations++;
    return RB_OK;
}

enum rb_status rb_answer_compose_extractive(const struct rb_answer_extract *ex,
                                            const struct rb_answer_passage *passages,
                                            const char *disclaimer, struct rb_answer_result *r)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = rb_buf_append(&b, "", 0);
    /* label of passage i = position of its first use */
    size_t *label_of = rb_calloc_array(ex->n ? ex->n : 1, sizeof *label_of);
    size_t *passage_for = rb_calloc_array(ex->n ? ex->n : 1, sizeof *passage_for);
    size_t n_labels = 0;
    if (!label_of || !passage_for)
        st = RB_ERR_NOMEM;
    for (size_t i = 0; i < ex->n && st == RB_OK; i++) {
        size_t p = ex->sentence[i].passage, label = 0;
        for (size_t k = 0; k < n_labels && !label; k++)
            if (passage_for[k] == p)
                label = k + 1;
        if (!label) {
            passage_for[n_labels++] = p;
            label = n_labels;
            st = add_citation(r, (int)label, &passages[p]);
        }
        /* sentences keep their own line breaks out: table rows read as "a | b" */
        const char *t = ex->sentence[i].text;
        if (st == RB_OK && i > 0)
            st = rb_buf_append_str(&b, zh_sep(t) ? "" : " ");
        for (const char *c = t; *c && st == RB_OK; c++)
            st = rb_buf_append(&b, *c == '\n' || *c == '\r' ? " " : c, 1);
        if (st == RB_OK)
            st = rb_buf_printf(&b, " [%zu]", label);
    }
    if (st == RB_OK && disclaimer && *disclaimer)
        st = rb_buf_printf(&b, "\n\n%s", disclaimer);
    free(label_of);
    free(passage_for);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return st;
    }
    free(r->answer);
    r->answer = rb_buf_steal(&b);
    return r->answer ? RB_OK : RB_ERR_NOMEM;
}

enum rb_status rb_answer_map_citations(const char *answer, const struct rb_answer_packed *packed,
                                       const struct rb_answer_passage *passages,
                                       struct rb_answer_result *r, size_t *n_cited)
{
    *n_cited = 0;
    int *labels = NULL;
    size_t n = 0, invalid = 0;
    enum rb_status st = rb_answer_parse_citations(answer, packed->n_labels, &labels, &n, &invalid);
    if (st != RB_OK)
        return st;
    if (invalid)
        RB_WARN("answer", "the answer cites %zu source label(s) that were not given", invalid);
    for (size_t i = 0; i < n && st == RB_OK; i++)
        st = add_citation(r, labels[i], &passages[packed->passage_of[labels[i] - 1]]);
    free(labels);
    if (st == RB_OK)
        *n_cited = n;
    return st;
}

static cJSON *passage_json(const struct rb_answer_passage *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "chunk_id", (double)p->chunk_id);
    cJSON_AddNumberToObject(o, "document_id", (double)p->document_id);
    cJSON_AddStringToObject(o, "document", p->document ? p->document : "");
    if (p->collection)
        cJSON_AddStringToObject(o, "collection", p->collection);
    if (p->page > 0)
        cJSON_AddNumberToObject(o, "page", p->page);
    else
        cJSON_AddNullToObject(o, "page");
    if (p->section)
        cJSON_AddStringToObject(o, "section", p->section);
    cJSON_AddNumberToObject(o, "score", p->score);
    return o;
}

cJSON *rb_answer_result_json(const struct rb_answer_result *r, bool with_passages)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "answer", r->answer ? r->answer : "");
    cJSON_AddBoolToObject(o, "refused", r->refused);
    cJSON_AddStringToObject(o, "refusal", rb_answer_refusal_name(r->refusal));
    cJSON_AddStringToObject(o, "lang", rb_answer_lang_code(r->lang));
    cJSON_AddStringToObject(o, "mode", r->mode_used ? r->mode_used : "");
    cJSON *cits = cJSON_AddArrayToObject(o, "citations");
    for (size_t i = 0; i < r->n_citations; i++) {
        const struct rb_answer_citation *c = &r->citation[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "label", c->label);
        cJSON_AddStringToObject(x, "document", c->document ? c->document : "");
        if (c->page > 0)
            cJSON_AddNumberToObject(x, "page", c->page);
        else
            cJSON_AddNullToObject(x, "page");
        if (c->section)
            cJSON_AddStringToObject(x, "section", c->section);
        else
            cJSON_AddNullToObject(x, "section");
        cJSON_AddNumberToObject(x, "chunk_id", (double)c->chunk_id);
        cJSON_AddNumberToObject(x, "document_id", (double)c->document_id);
        if (c->collection)
            cJSON_AddStringToObject(x, "collection", c->collection);
        if (c->doc_hash)
            cJSON_AddStringToObject(x, "doc_hash", c->doc_hash);
        cJSON_AddStringToObject(x, "text", c->text ? c->text : "");
        cJSON_AddNumberToObject(x, "score", c->score);
        cJSON_AddItemToArray(cits, x);
    }
    cJSON_AddNumberToObject(o, "evidence", r->evidence);
    cJSON_AddNumberToObject(o, "threshold", r->threshold);
    cJSON_AddStringToObject(o, "audit_id", r->audit_id);
    cJSON_AddNumberToObject(o, "latency_ms", (double)r->latency_ms);
    if (r->vertical)
        cJSON_AddStringToObject(o, "vertical", r->vertical);
    if (r->template_id)
        cJSON_AddStringToObject(o, "template", r->template_id);
    if (r->template_version)
        cJSON_AddStringToObject(o, "template_version", r->template_version);
    if (r->model_hash[0])
        cJSON_AddStringToObject(o, "model_hash", r->model_hash);
    if (r->draft)
        cJSON_AddStringToObject(o, "draft", r->draft);
    cJSON_AddBoolToObject(o, "redacted", r->redacted);
    if (r->redacted)
        cJSON_AddNumberToObject(o, "redactions", (double)r->n_redactions);
    if (with_passages) {
        cJSON *ps = cJSON_AddArrayToObject(o, "retrieved");
        for (size_t i = 0; i < r->n_passages; i++)
            cJSON_AddItemToArray(ps, passage_json(&r->passage[i]));
    }
    return o;
}
