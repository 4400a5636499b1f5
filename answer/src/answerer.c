/* The answerer: retrieval over the index (with the caller's ACL), the
 * vertical's policy and template, rb_answer_respond, and the audit record. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "answer-impl.h"

struct rb_answerer {
    struct rb_answerer_options o;
};

/* Refusal thresholds (idf-weighted coverage of the question's terms by the
 * best retrieved passage) per vertical and language, MEASURED with `ragbox
 * eval` on the dev sets (2026-11-25, keyword retrieval, ingest's chunker,
 * first 200 questions per set): the largest threshold that keeps >= 95 % of
 * the answerable questions whose gold document was retrieved answered.
 *   finance/en    0.12  financebench + tatqa (405 q); refuses 45 % of them asked elsewhere
 *   healthcare/en 0.29  pubmedqa (196 q); refuses 99.5 % asked elsewhere
 *   healthcare/zh 0.10  cmdd-zh (52 q, paragraph chunker): patients' and doctors' words
 *                       differ, keyword evidence is weak; refuses 41.5 % asked elsewhere
 *   government/zh 0.30  crud-zh + cail2019-zh (279 q); refuses 69 % asked elsewhere
 *   general/en    0.18  all English sets pooled; general/zh 0.30 (crud + cail)
 * Combinations without a dev set use their language's general value.
 * Re-measure (eval prints the sweep) when the scorer or the chunker changes. */
static const struct {
    const char *vertical;
    enum rb_answer_lang lang;
    double min_evidence;
} measured_thresholds[] = {
    {"finance", RB_ANSWER_LANG_EN, 0.12},    {"healthcare", RB_ANSWER_LANG_EN, 0.29},
    {"healthcare", RB_ANSWER_LANG_ZH, 0.10}, {"government", RB_ANSWER_LANG_ZH, 0.30},
    {"general", RB_ANSWER_LANG_EN, 0.18},    {"general", RB_ANSWER_LANG_ZH, 0.30},
};

double rb_answer_default_min_evidence(const char *vertical, enum rb_answer_lang lang)
{
    double general = lang == RB_ANSWER_LANG_ZH ? 0.30 : 0.18;
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

/* Retrieval; when policies is non-NULL it receives each requested
 * collection's policy JSON (caller frees each, n_collections entries). */
static enum rb_status retrieve(struct rb_answerer *a, const struct rb_answer_request *req,
                               struct rb_answer_passage **passages, size_t *n, char **policies,
                               struct rb_errmsg *err);

enum rb_status rb_answerer_retrieve(struct rb_answerer *a, const struct rb_answer_request *req,
                                    struct rb_answer_passage **passages, size_t *n,
                                    struct rb_errmsg *err)
{
    return retrieve(a, req, passages, n, NULL, err);
}

static enum rb_status retrieve(struct rb_answerer *a, const struct rb_answer_request *req,
                               struct rb_answer_passage **passages, size_t *n, char **policies,
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
        if (policies)
            policies[i] = rb_strdup(c->policy_json ? c->policy_json : "{}");
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

/* ----------------------------------------------------------- redaction */

const char *const rb_answer_draft_kinds[] = {"notice", "reply", NULL};

enum rb_status rb_answer_policy_redacts_answers(const char *policy_json, bool *answers_set,
                                                bool *answers)
{
    *answers_set = false;
    *answers = false;
    if (!policy_json || !*policy_json)
        return RB_OK;
    cJSON *o = cJSON_Parse(policy_json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return RB_ERR_INVALID;
    }
    enum rb_status st = RB_OK;
    const cJSON *red = cJSON_GetObjectItemCaseSensitive(o, "redaction");
    if (red && !cJSON_IsObject(red)) {
        st = RB_ERR_INVALID;
    } else if (red) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(red, "answers");
        if (x && !cJSON_IsBool(x)) {
            st = RB_ERR_INVALID;
        } else if (x) {
            *answers_set = true;
            *answers = cJSON_IsTrue(x);
        }
    }
    cJSON_Delete(o);
    return st;
}

/* Whether answers to req must be redacted: a collection whose policy says
 * "answers": true, or the pack's default for a collection that sets nothing. */
static enum rb_status needs_redaction(const struct rb_answer_request *req, char *const *policies,
                                      bool pack_default, bool *redact, struct rb_errmsg *err)
{
    *redact = false;
    for (size_t i = 0; i < req->n_collections; i++) {
        bool set = false, on = false;
        if (!policies[i])
            return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        if (rb_answer_policy_redacts_answers(policies[i], &set, &on) != RB_OK)
            return rb_errmsg_set(err, RB_ERR_INVALID,
                                 "collection '%s': its policy is not valid (\"redaction\" must "
                                 "be an object of booleans \"answers\" and \"ingest\")",
                                 req->collections[i]);
        if (set ? on : pack_default)
            *redact = true;
    }
    return RB_OK;
}

static size_t count_marks(const char *t)
{
    size_t n = 0;
    for (const char *p = t; p && (p = strstr(p, "[REDACTED:")); p += 10)
        n++;
    return n;
}

/* Replaces *text by its redacted form; adds the findings to *n. */
static enum rb_status redact_owned(struct rb_answerer *a, char **text, size_t *n)
{
    if (!*text)
        return RB_OK;
    char *r = a->o.redact(a->o.redact_user, *text, strlen(*text));
    if (!r)
        return RB_ERR_NOMEM;
    size_t before = count_marks(*text), after = count_marks(r);
    if (n && after > before)
        *n += after - before;
    free(*text);
    *text = r;
    return RB_OK;
}

/* Everything of a result a user sees or the web history stores: the answer,
 * each citation's text and section, the retrieved passages. */
static enum rb_status redact_result(struct rb_answerer *a, struct rb_answer_result *r)
{
    size_t n = 0;
    enum rb_status st = redact_owned(a, &r->answer, &n);
    for (size_t i = 0; st == RB_OK && i < r->n_citations; i++) {
        st = redact_owned(a, &r->citation[i].text, &n);
        if (st == RB_OK)
            st = redact_owned(a, &r->citation[i].section, &n);
    }
    for (size_t i = 0; st == RB_OK && i < r->n_passages; i++) {
        st = redact_owned(a, &r->passage[i].text, NULL);
        if (st == RB_OK)
            st = redact_owned(a, &r->passage[i].section, NULL);
    }
    r->redacted = st == RB_OK;
    r->n_redactions = n;
    return st;
}

/* Streaming through redaction: pieces are held until a line ends (or, past
 * 2 KiB without one, a sentence ends), then that stretch is redacted and
 * passed on, so no partial identifier ever reaches the consumer. */
struct redact_stream {
    struct rb_answerer *a;
    rb_answer_stream_fn fn;
    void *user;
    struct rb_buf pending;
    bool ok;      /* false after out of memory or the consumer stopped */
};

static bool redact_emit(struct redact_stream *s, size_t upto)
{
    if (upto == 0)
        return s->ok;
    char *r = s->a->o.redact(s->a->o.redact_user, s->pending.data, upto);
    if (!r) {
        s->ok = false;
        return false;
    }
    bool go = s->fn(s->user, r, strlen(r));
    free(r);
    memmove(s->pending.data, s->pending.data + upto, s->pending.len - upto);
    s->pending.len -= upto;
    s->pending.data[s->pending.len] = '\0';
    if (!go)
        s->ok = false;
    return s->ok;
}

/* End of the last complete sentence in b[0, len), 0 when none. */
static size_t sentence_end(const char *b, size_t len)
{
    for (size_t i = len; i > 1; i--) {
        const char *p = b + i;
        if ((p[-2] == '.' || p[-2] == '!' || p[-2] == '?') && (p[-1] == ' '))
            return i;
        if (i >= 3 && (memcmp(p - 3, "\xE3\x80\x82", 3) == 0 ||   /* 。 */
                       memcmp(p - 3, "\xEF\xBC\x81", 3) == 0 ||   /* ！ */
                       memcmp(p - 3, "\xEF\xBC\x9F", 3) == 0))    /* ？ */
            return i;
    }
    return 0;
}

static bool redact_piece(void *user, const char *piece, size_t len)
{
    struct redact_stream *s = user;
    if (!s->ok)
        return false;
    if (rb_buf_append(&s->pending, piece, len) != RB_OK) {
        s->ok = false;
        return false;
    }
    size_t upto = 0;
    for (size_t i = s->pending.len; i > 0; i--)
        if (s->pending.data[i - 1] == '\n') {
            upto = i;
            break;
        }
    if (upto == 0 && s->pending.len > 2048)
        upto = sentence_end(s->pending.data, s->pending.len);
    if (upto == 0 && s->pending.len > (64u << 10))
        upto = rb_utf8_truncate(s->pending.data, s->pending.len, s->pending.len);
    return redact_emit(s, upto);
}

/* The subject of a drafting request: the request without the words that
 * only say what to write ("draft a notice", "请起草答复函"), which no source
 * contains and which would dilute retrieval and the evidence check. */
static char *draft_subject(const char *request)
{
    static const char *const en[] = {"draft", "drafting", "write", "prepare", "compose",
                                     "please", "notice", "reply", "letter", "informing",
                                     "inform", "official", "formal", "enquiry", "inquiry", NULL};
    static const char *const zh[] = {"请起草", "起草", "草拟", "撰写", "拟写", "答复函", "复函",
                                     "通知", "来函", "询问", "答复", "请", NULL};
    struct rb_buf b;
    rb_buf_init(&b, 1 << 20);
    for (const char *p = request; *p;) {
        bool skipped = false;
        for (size_t i = 0; zh[i] && !skipped; i++) {
            size_t n = strlen(zh[i]);
            if (strncmp(p, zh[i], n) == 0) {
                p += n;
                skipped = rb_buf_append(&b, " ", 1) == RB_OK;
            }
        }
        bool word_start = (p == request || !isalnum((unsigned char)p[-1]));
        for (size_t i = 0; en[i] && !skipped && word_start && isalpha((unsigned char)*p); i++) {
            size_t n = strlen(en[i]);
            if (strncasecmp(p, en[i], n) == 0 && !isalnum((unsigned char)p[n])) {
                p += n;
                skipped = true;
            }
        }
        if (!skipped && rb_buf_append(&b, p++, 1) != RB_OK)
            break;
    }
    char *out = b.data ? rb_buf_steal(&b) : NULL;
    rb_buf_free(&b);
    /* nothing left (the request was only instructions): use it whole */
    bool any = false;
    for (const char *q = out; q && *q && !any; q++)
        any = !isspace((unsigned char)*q) && !ispunct((unsigned char)*q);
    if (!any) {
        free(out);
        out = rb_strdup(request);
    }
    return out;
}

/* --------------------------------------------------------------------- ask */

/* Records the ask; a failure to record withholds the answer (a regulated
 * deployment shows nothing it cannot account for). */
static enum rb_status audit(struct rb_answerer *a, const struct rb_answer_request *req,
                            const char *vertical, struct rb_answer_result *r, const char *error)
{
    if (!a->o.audit)
        return RB_OK;
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
        RB_ERROR("answer", "the audit record could not be written: %s", rb_status_str(st));
        r->audit_id[0] = '\0';
    }
    rb_buf_free(&cols);
    return st;
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
    /* Drafting mode: a known kind, a generation model, the pack's template. */
    char template_name[32] = "answer";
    bool drafting = req->draft && *req->draft;
    if (drafting) {
        size_t k = 0;
        while (rb_answer_draft_kinds[k] && strcmp(rb_answer_draft_kinds[k], req->draft) != 0)
            k++;
        if (!rb_answer_draft_kinds[k])
            st = rb_errmsg_set(err, RB_ERR_INVALID,
                               "unknown draft kind '%.40s': use notice or reply", req->draft);
        else if (req->mode == RB_ANSWER_MODE_EXTRACTIVE ||
                 (req->mode == RB_ANSWER_MODE_AUTO && !a->o.backend) || !a->o.backend)
            st = rb_errmsg_set(err, RB_ERR_CONFIG,
                               "drafting a %s writes a new document and needs a generation "
                               "model (--model GGUF, --remote URL, or [answer] model / "
                               "remote_url); extractive mode only quotes sentences from the "
                               "sources and cannot draft",
                               req->draft);
        else if (!a->o.vertical)
            st = rb_errmsg_set(err, RB_ERR_NOT_FOUND,
                               "drafting needs the vertical packs (their draft-%s template), "
                               "which this answerer was opened without",
                               req->draft);
        if (st == RB_OK) {
            snprintf(template_name, sizeof template_name, "draft-%s", req->draft);
            out->draft = rb_strdup(req->draft);
            if (!out->draft)
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        }
        if (st != RB_OK) {
            out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
            (void)audit(a, req, vertical, out, err->text);
            return st;
        }
    }
    if (a->o.vertical &&
        (st = a->o.vertical(a->o.vertical_user, vertical, out->lang, template_name, &policy,
                            &render, &render_user, &tid, &tver)) != RB_OK) {
        if (st == RB_ERR_NOT_FOUND && drafting)
            rb_errmsg_set(err, st,
                          "vertical pack '%s' declares no %s template (%s.%s.tmpl): drafting "
                          "is available with packs that declare draft-notice and draft-reply "
                          "templates, such as government",
                          vertical, template_name, template_name, rb_answer_lang_code(out->lang));
        else
            rb_errmsg_set(err, st, "vertical '%s': %s", vertical, rb_status_str(st));
        out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
        (void)audit(a, req, vertical, out, err->text);
        return st;
    }

    if (tid)
        out->template_id = rb_strdup(tid);
    if (tver)
        out->template_version = rb_strdup(tver);

    struct rb_answer_passage *p = NULL;
    size_t n = 0;
    char *subject = drafting ? draft_subject(req->question) : NULL;
    char **policies = rb_calloc_array(req->n_collections ? req->n_collections : 1, sizeof *policies);
    if ((drafting && !subject) || !policies) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    } else {
        struct rb_answer_request rq = *req;
        if (subject)
            rq.question = subject;
        st = retrieve(a, &rq, &p, &n, policies, err);
    }
    /* Redaction of what the user sees, per collection policy and pack. */
    bool redact = false;
    if (st == RB_OK &&
        (st = needs_redaction(req, policies, policy.redact_answers, &redact, err)) == RB_OK &&
        redact && !a->o.redact)
        st = rb_errmsg_set(err, RB_ERR_CONFIG,
                           "the collection policy requires answers to be redacted, but no "
                           "redactor is configured (the verticals module is not wired in)");
    for (size_t i = 0; policies && i < req->n_collections; i++)
        free(policies[i]);
    free(policies);
    if (st != RB_OK) {
        rb_answer_passages_free(p, n);
        p = NULL;
        n = 0;
        free(subject);
    }
    if (st != RB_OK) {
        out->latency_ms = (rb_time_mono_ns() - t0) / 1000000;
        (void)audit(a, req, vertical, out, err->text);
        return st;
    }
    /* respond owns p from here; keep the metadata the call fills */
    char *vert = out->vertical, *tmpl = out->template_id, *tv = out->template_version;
    out->vertical = out->template_id = out->template_version = NULL;
    /* a draft may carry the figures of its request and its issuing date */
    char *allowed = NULL;
    if (drafting) {
        char today[16];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(today, sizeof today, "%Y-%m-%d", &tm);
        allowed = rb_asprintf("%s\n%s", req->question, today);
    }
    struct redact_stream rs = {.a = a, .fn = req->on_piece, .user = req->stream_user, .ok = true};
    rb_buf_init(&rs.pending, 1u << 20);
    struct rb_answer_respond_options ro = {
        .question = req->question,
        .mode = drafting ? RB_ANSWER_MODE_GENERATE : req->mode,
        .backend = a->o.backend,
        .policy = &policy,
        .render = render,
        .render_user = render_user,
        .gen = {.max_tokens = a->o.max_tokens},
        .on_piece = redact && req->on_piece ? redact_piece : req->on_piece,
        .stream_user = redact && req->on_piece ? (void *)&rs : req->stream_user,
        .figures_allowed = allowed,
        .evidence_question = subject,
    };
    st = rb_answer_respond(&ro, p, n, out, err);
    free(allowed);
    free(subject);
    if (redact && req->on_piece && st == RB_OK)
        (void)redact_emit(&rs, rs.pending.len); /* the rest of the stream */
    rb_buf_free(&rs.pending);
    if (redact && st == RB_OK && redact_result(a, out) != RB_OK)
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory while redacting the answer");
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
    enum rb_status ast = audit(a, req, vertical, out, st == RB_OK ? NULL : err->text);
    if (st == RB_OK && ast != RB_OK) {
        free(out->answer);
        out->answer = NULL;
        return rb_errmsg_set(err, ast,
                             "the audit record could not be written (%s); the answer is withheld",
                             rb_status_str(ast));
    }
    return st;
}
