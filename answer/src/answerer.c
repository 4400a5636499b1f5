/* The answerer: retrieval over the index (with the caller's ACL), the
 * vertical's policy and template, rb_answer_respond, and the audit record. */
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"

struct rb_answerer {
    struct rb_answerer_options o;
};

/* Refusal thresholds (idf-weighted coverage of the question's terms by the
 * best retrieved passage) per vertical and language, MEASURED with `ragbox
 * eval` on the dev sets: the largest threshold that keeps >= 95 % of the
 * answerable questions whose gold document was retrieved answered; the eval
 * report shows what share of the same questions asked of another collection
 * it refuses. Re-measure (eval prints the sweep) when the scorer changes. */
static const struct {
    const char *vertical;
    enum rb_answer_lang lang;
    double min_evidence;
} measured_thresholds[] = {
    {"finance", RB_ANSWER_LANG_EN, 0.30},    {"finance", RB_ANSWER_LANG_ZH, 0.30},
    {"healthcare", RB_ANSWER_LANG_EN, 0.30}, {"healthcare", RB_ANSWER_LANG_ZH, 0.30},
    {"government", RB_ANSWER_LANG_EN, 0.30}, {"government", RB_ANSWER_LANG_ZH, 0.30},
    {"general", RB_ANSWER_LANG_EN, 0.30},    {"general", RB_ANSWER_LANG_ZH, 0.30},
};

double rb_answer_default_min_evidence(const char *vertical, enum rb_answer_lang lang)
{
    double general = 0.30;
    for (size_t i = 0; i < RB_ARRAY_LEN(measured_thresholds); i++) {
        if (measured_thresholds[i].lang != lang)
            continue;
        if (vertical && strcmp(vertical, measured_thresholds[i].vertical) == 0)
            return measured_thresholds[i].min_evidence;
        if (strcmp(measured_thresholds[i].vertical, "general") == 0)
            general = measured_thresholds[i].min_evidence;
    }
    return general;
}

enum rb_status rb_answerer_open(const struct rb_answerer_options *o, struct rb_answerer **out,
                                struct rb_errmsg *err)
{
    *out = NULL;
    if (!o || !o->index)
        return rb_errmsg_set(err, RB_ERR_INVALID, "answerer: an index is required");
    struct rb_answerer *a = calloc(1, sizeof *a);
    if (!a)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    a->o = *o;
    if (a->o.k <= 0)
        a->o.k = 8;
    if (a->o.k > 100)
        a->o.k = 100;
    if (a->o.max_tokens <= 0)
        a->o.max_tokens = 512;
    *out = a;
    return RB_OK;
}

void rb_answerer_close(struct rb_answerer *a)
{
    free(a);
}

void rb_answer_passages_free(struct rb_answer_passage *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        rb_answer_passage_clear(&p[i]);
    free(p);
}

/* ------------------------------------------------------------- retrieval */

enum rb_status rb_answerer_retrieve(struct rb_answerer *a, const struct rb_answer_request *req,
                                    struct rb_answer_passage **passages, size_t *n,
                                    struct rb_errmsg *err)
{
    *passages = NULL;
    *n = 0;
    if (!req || !req->question || !*req->question)
        return rb_errmsg_set(err, RB_ERR_INVALID, "an empty question");
    if (!req->collections || req->n_collections == 0)
        return rb_errmsg_set(err, RB_ERR_INVALID, "no collection to search");
    if (req->n_collections > 256)
        return rb_errmsg_set(err, RB_ERR_TOO_LARGE, "too many collections");
    int64_t ids[256];
    char *names[256] = {0};
    enum rb_status st = RB_OK;
    for (size_t i = 0; i < req->n_collections; i++) {
        struct rb_index_collection *c = NULL;
        st = rb_index_collection_get(a->o.index, req->collections[i], &c);
        if (st != RB_OK) {
            rb_errmsg_set(err, st, st == RB_ERR_NOT_FOUND ? "no collection named '%s'" : "%s: %s",
                          req->collections[i], rb_index_errmsg(a->o.index));
            for (size_t k = 0; k < i; k++)
                free(names[k]);
            return st;
        }
        ids[i] = c->id;
        names[i] = rb_strdup(c->name);
        rb_index_collection_free(c);
    }
    enum rb_index_mode mode = req->retrieval;
    float *vec = NULL;
    int dim = 0;
    bool need_vec = mode == RB_INDEX_MODE_VECTOR || mode == RB_INDEX_MODE_HYBRID ||
                    (mode == RB_INDEX_MODE_AUTO && a->o.embed);
    if (need_vec) {
        if (!a->o.embed) {
            st = rb_errmsg_set(err, RB_ERR_CONFIG,
                               "%s retrieval needs an embedding model ([answer] embed_model or "
                               "--embed-model)",
                               rb_index_mode_name(mode));
            goto out;
        }
        if ((st = a->o.embed(a->o.embed_user, req->question, &vec, &dim)) != RB_OK) {
            rb_errmsg_set(err, st, "embedding the question failed: %s", rb_status_str(st));
            goto out;
        }
    }
    struct rb_index_query q = {.text = req->question,
                               .vector = vec,
                               .vector_dim = dim,
                               .mode = mode,
                               .k = req->k > 0 ? req->k : a->o.k,
                               .collection_ids = ids,
                               .n_collections = req->n_collections,
                               .allow = req->allow,
                               .allow_ctx = req->allow_ctx};
    if (q.k > 100)
        q.k = 100;
    struct rb_index_results res = {0};
    if ((st = rb_index_search(a->o.index, &q, &res)) != RB_OK) {
        rb_errmsg_set(err, st, "search failed: %s", rb_index_errmsg(a->o.index));
        goto out;
    }
    struct rb_answer_passage *p = rb_calloc_array(res.n ? res.n : 1, sizeof *p);
    if (!p) {
        rb_index_results_free(&res);
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* document hashes: one lookup per distinct document */
    for (size_t i = 0; i < res.n && st == RB_OK; i++) {
        const struct rb_index_hit *h = &res.hits[i];
        struct rb_answer_passage *x = &p[i];
        x->chunk_id = h->chunk_id;
        x->document_id = h->document_id;
        x->page = h->page_start;
        x->score = h->score;
        x->keyword_score = h->keyword_rank > 0 ? h->keyword_score : 0;
        x->vector_score = h->vector_rank > 0 ? h->vector_score : 0;
        const char *docname = h->title && *h->title ? h->title : rb_path_basename(h->source);
        x->document = rb_strdup(docname);
        x->section = h->section ? rb_strdup(h->section) : NULL;
        x->text = rb_strdup(h->text ? h->text : "");
        for (size_t c = 0; c < req->n_collections; c++)
            if (ids[c] == h->collection_id)
                x->collection = rb_strdup(names[c]);
        for (size_t k = 0; k < i && !x->doc_hash; k++)
            if (p[k].document_id == x->document_id && p[k].doc_hash)
                x->doc_hash = rb_strdup(p[k].doc_hash);
        if (!x->doc_hash) {
            struct rb_index_document *d = NULL;
            if (rb_index_document_get(a->o.index, h->document_id, &d) == RB_OK && d->sha256)
                x->doc_hash = rb_strdup(d->sha256);
            rb_index_document_free(d);
        }
        if (!x->document || !x->text || (h->section && !x->section))
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    size_t count = res.n;
    rb_index_results_free(&res);
    if (st != RB_OK) {
        rb_answer_passages_free(p, count);
        goto out;
    }
    *passages = p;
    *n = count;
out:
    free(vec);
    for (size_t i = 0; i < req->n_collections; i++)
        free(names[i]);
    return st;
}

/* --------------------------------------------------------------------- ask */

static void audit(struct rb_answerer *a, const struct rb_answer_request *req,
                  const char *vertical, struct rb_answer_result *r, const char *error)
{
    if (!a->o.audit)
        return;
    struct rb_buf cols;
    rb_buf_init(&cols, 1 << 16);
    for (size_t i = 0; i < req->n_collections; i++)
        if (rb_buf_printf(&cols, "%s%s", i ? "," : "", req->collections[i]) != RB_OK)
            break;
    struct rb_answer_audit_event ev = {
        .user = req->user,
        .client = req->client,
        .collections = cols.data ? cols.data : "",
        .vertical = vertical,
        .question = req->question ? req->question : "",
        .result = r,
        .outcome = error ? "error" : r->refused ? "refused" : "answered",
        .error = error,
    };
    enum rb_status st = a->o.audit(a->o.audit_user, &ev, r->audit_id, sizeof r->audit_id);
    if (st != RB_OK) {
        /* An unaudited answer must not be shown in a regulated deployment: the
         * caller sees the failure through an empty audit_id and the log. */
        RB_ERROR("answer", "the audit record could not be written: %s", rb_status_str(st));
        r->audit_id[0] = '\0';
    }
    rb_buf_free(&cols);
}

enum rb_status rb_answerer_ask(struct rb_answerer *a, const struct rb_answer_request *req,
                               struct rb_answer_result *out, struct rb_errmsg *err)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = rb_time_mono_ns();
    const char *vertical = req && req->vertical && *req->vertical ? req->vertical : "general";
    out->vertical = rb_strdup(vertical);
    if (!req || !req->question) {
        return rb_errmsg_set(err, RB_ERR_INVALID, "no question");
    }
    out->lang = rb_answer_detect_lang(req->question, strlen(req->question));
    struct rb_answer_policy policy = {.min_evidence = rb_answer_default_min_evidence(vertical, out->lang)};
    rb_answer_render_fn render = NULL;
    void *render_user = NULL;
    const char *tid = NULL, *tver = NULL;
    enum rb_status st = RB_OK;
    if (a->o.vertical &&
        (st = a->o.vertical(a->o.vertical_user, vertical, out->lang, &policy, &render,
                            &render_user, &tid, &tver)) != RB_OK) {
        rb_errmsg_set(err, st, "vertical '%s': %s", vertical, rb_status_str(st));
        out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
        audit(a, req, vertical, out, err->text);
        return st;
    }
    if (tid)
        out->template_id = rb_strdup(tid);
    if (tver)
        out->template_version = rb_strdup(tver);

    struct rb_answer_passage *p = NULL;
    size_t n = 0;
    st = rb_answerer_retrieve(a, req, &p, &n, err);
    if (st != RB_OK) {
        out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
        audit(a, req, vertical, out, err->text);
        return st;
    }
    /* respond owns p from here; keep the metadata the call fills */
    char *vert = out->vertical, *tmpl = out->template_id, *tv = out->template_version;
    out->vertical = out->template_id = out->template_version = NULL;
    struct rb_answer_respond_options ro = {
        .question = req->question,
        .mode = req->mode,
        .backend = a->o.backend,
        .policy = &policy,
        .render = render,
        .render_user = render_user,
        .gen = {.max_tokens = a->o.max_tokens},
        .on_piece = req->on_piece,
        .stream_user = req->stream_user,
    };
    st = rb_answer_respond(&ro, p, n, out, err);
    out->vertical = vert;
    if (tmpl) { /* the pack's template was used; else respond may have set the built-in one */
        free(out->template_id);
        free(out->template_version);
        out->template_id = tmpl;
        out->template_version = tv;
    } else {
        free(tv);
    }
    if (a->o.backend && out->mode_used && strcmp(out->mode_used, "extractive") != 0)
        memcpy(out->model_hash, a->o.backend->model_hash, sizeof out->model_hash);
    out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
    audit(a, req, vertical, out, st == RB_OK ? NULL : err->text);
    return st;
}
