/* The deployment environment of the answerer: vertical packs (policy and
 * prompt templates) and the audit trail with PII redaction. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"
#include "ragbox/audit.h"
#include "ragbox/verticals.h"

#define ENV_MAX_PACKS 32
#define ENV_MAX_RENDER 256

struct pack {
    char name[64];
    struct rb_vertical *v;
};

/* Render context: the template and its pack (both owned by the env). */
struct render_ctx {
    const struct rb_template *t;
    const struct rb_vertical *v;
};

struct rb_answer_env {
    char *data_dir;
    const struct rb_config *config;
    pthread_mutex_t mu;
    struct pack packs[ENV_MAX_PACKS];
    size_t n_packs;
    struct rb_audit *audit;
    struct rb_redactor *redactor;
    char *audit_paths;
    /* one render context per template in use: the borrowed pointer handed to
     * respond stays valid as long as the env (guarded by mu) */
    struct render_ctx rctx[ENV_MAX_RENDER];
    size_t n_rctx;
};

enum rb_status rb_answer_env_open(const struct rb_answer_env_options *o,
                                  struct rb_answer_env **out, struct rb_errmsg *err)
{
    *out = NULL;
    if (!o || !o->data_dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "answer env: a data directory is required");
    struct rb_answer_env *e = calloc(1, sizeof *e);
    if (!e || !(e->data_dir = rb_strdup(o->data_dir))) {
        free(e);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    e->config = o->config;
    pthread_mutex_init(&e->mu, NULL);
    /* every rule: the audit trail and answers redacted by policy use the
     * whole rule set, a superset of any pack's */
    struct rb_redactor_options ro = {0};
    enum rb_status rst = rb_redactor_create(&ro, &e->redactor, err);
    if (rst != RB_OK) {
        rb_answer_env_close(e);
        return rst;
    }
    if (o->audit) {
        struct rb_audit_options ao;
        enum rb_status st =
            rb_audit_options_from_config(&ao, o->config, o->data_dir, &e->audit_paths, err);
        if (st == RB_OK) {
            ao.redact = rb_redact_audit_hook;
            ao.redact_user = e->redactor;
            st = rb_audit_open(&ao, &e->audit, err);
        }
        if (st != RB_OK) {
            rb_answer_env_close(e);
            return st;
        }
    }
    *out = e;
    return RB_OK;
}

void rb_answer_env_close(struct rb_answer_env *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_packs; i++)
        rb_vertical_free(e->packs[i].v);
    rb_audit_close(e->audit);
    rb_redactor_free(e->redactor);
    free(e->audit_paths);
    free(e->data_dir);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* The pack `name`, opened once. */
static enum rb_status pack_get(struct rb_answer_env *e, const char *name,
                               const struct rb_vertical **out)
{
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_packs; i++) {
        if (strcmp(e->packs[i].name, name) == 0) {
            *out = e->packs[i].v;
            pthread_mutex_unlock(&e->mu);
            return RB_OK;
        }
    }
    enum rb_status st = RB_ERR_LIMIT;
    if (e->n_packs < ENV_MAX_PACKS) {
        struct rb_errmsg err;
        struct rb_vertical *v = NULL;
        st = rb_vertical_open(name, e->data_dir, e->config, &v, &err);
        if (st == RB_OK) {
            rb_strlcpy(e->packs[e->n_packs].name, name, sizeof e->packs[0].name);
            e->packs[e->n_packs++].v = v;
            *out = v;
        } else {
            RB_ERROR("answer", "vertical pack '%s': %s", name, err.text);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

static enum rb_status render(void *user, const char *context, const char *question,
                             enum rb_answer_lang lang, char **system, char **user_message)
{
    const struct render_ctx *rc = user;
    (void)lang;
    struct rb_template_vars vars = {.context = context, .question = question};
    struct rb_errmsg err;
    enum rb_status st = rb_template_render(rc->t, rc->v, &vars, system, user_message, &err);
    if (st != RB_OK)
        RB_ERROR("answer", "template %s: %s", rb_template_id(rc->t), err.text);
    return st;
}

enum rb_status rb_answer_env_vertical(void *user, const char *vertical, enum rb_answer_lang lang,
                                      const char *template_name,
                                      struct rb_answer_policy *policy,
                                      rb_answer_render_fn *render_fn, void **render_user,
                                      const char **template_id, const char **template_version)
{
    struct rb_answer_env *e = user;
    const struct rb_vertical *v = NULL;
    enum rb_status st = pack_get(e, vertical, &v);
    if (st != RB_OK)
        return st;
    enum rb_vertical_lang vl = lang == RB_ANSWER_LANG_ZH ? RB_VERTICAL_ZH : RB_VERTICAL_EN;
    const struct rb_vertical_policy *p = rb_vertical_policy(v);
    /* Thresholds: an explicit [answer] min_evidence_<lang> in the pack or the
     * configuration, else the values measured on the dev sets (answerer.c). */
    char key[64];
    snprintf(key, sizeof key, "min_evidence_%s", rb_answer_lang_code(lang));
    const char *override = rb_config_str(rb_vertical_config(v), "answer", key, NULL);
    char ckey[128];
    snprintf(ckey, sizeof ckey, "min_evidence_%s_%s", vertical, rb_answer_lang_code(lang));
    const char *cfg = e->config ? rb_config_str(e->config, "answer", ckey, NULL) : NULL;
    double t = rb_answer_default_min_evidence(vertical, lang);
    if (cfg && rb_parse_double(cfg, &t) != RB_OK)
        RB_WARN("answer", "[answer] %s is not a number; using %.2f", ckey, t);
    else if (!cfg && override && rb_parse_double(override, &t) != RB_OK)
        RB_WARN("answer", "pack %s: answer.%s is not a number", vertical, key);
    policy->min_evidence = t;
    policy->disclaimer = p->disclaimer[vl];
    policy->figures_from_sources = p->figures_from_sources || p->never_invent_dosages;
    policy->doses_from_sources = p->never_invent_dosages;
    policy->max_sentences = p->max_sentences;
    policy->refusal = p->refusal[vl];
    policy->redact_answers = rb_vertical_redaction(v)->apply_to_answers;
    if (!template_name || !*template_name)
        template_name = "answer";
    const struct rb_template *tmpl = rb_vertical_template(v, template_name, vl);
    if (!tmpl && strcmp(template_name, "answer") != 0)
        return RB_ERR_NOT_FOUND; /* e.g. drafting with a pack that has no draft template */
    if (!tmpl) {
        *render_fn = NULL;
        *render_user = NULL;
        *template_id = NULL;
        *template_version = NULL;
        return RB_OK; /* extractive answers need no template; generation reports it */
    }
    pthread_mutex_lock(&e->mu);
    struct render_ctx *rc = NULL;
    for (size_t i = 0; i < e->n_rctx && !rc; i++)
        if (e->rctx[i].t == tmpl)
            rc = &e->rctx[i];
    if (!rc && e->n_rctx < ENV_MAX_RENDER) {
        rc = &e->rctx[e->n_rctx++];
        rc->t = tmpl;
        rc->v = v;
    }
    pthread_mutex_unlock(&e->mu);
    if (!rc)
        return RB_ERR_LIMIT;
    *render_fn = render;
    *render_user = rc;
    *template_id = rb_template_id(tmpl);
    *template_version = rb_template_version(tmpl);
    return RB_OK;
}

/* --------------------------------------------------------------- audit */

static enum rb_status audit_hook(void *user, const struct rb_answer_audit_event *ev,
                                 char *audit_id, size_t size)
{
    struct rb_answer_env *e = user;
    const struct rb_answer_result *r = ev->result;
    struct rb_audit_chunk *chunks = rb_calloc_array(r->n_passages + 1, sizeof *chunks);
    if (!chunks)
        return RB_ERR_NOMEM;
    for (size_t i = 0; i < r->n_passages; i++) {
        chunks[i].chunk_id = r->passage[i].chunk_id;
        chunks[i].doc_hash = r->passage[i].doc_hash;
    }
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "mode", r->mode_used ? r->mode_used : "");
    cJSON_AddStringToObject(details, "lang", rb_answer_lang_code(r->lang));
    cJSON_AddStringToObject(details, "refusal", rb_answer_refusal_name(r->refusal));
    cJSON_AddNumberToObject(details, "evidence", r->evidence);
    cJSON_AddNumberToObject(details, "threshold", r->threshold);
    if (r->draft)
        cJSON_AddStringToObject(details, "draft", r->draft);
    if (r->redacted)
        cJSON_AddNumberToObject(details, "answer_redactions", (double)r->n_redactions);
    cJSON *cited = cJSON_AddArrayToObject(details, "cited_chunks");
    for (size_t i = 0; i < r->n_citations; i++)
        cJSON_AddItemToArray(cited, cJSON_CreateNumber((double)r->citation[i].chunk_id));
    if (r->withheld) {
        /* a withheld (uncited) generation is kept as a hash only */
        uint8_t d[RB_SHA256_LEN];
        char hex[RB_SHA256_HEX_LEN + 1];
        if (rb_sha256(r->withheld, strlen(r->withheld), d) == RB_OK) {
            rb_hex_encode(d, sizeof d, hex);
            cJSON_AddStringToObject(details, "withheld_sha256", hex);
        }
    }
    struct rb_audit_event ae = {
        .action = RB_AUDIT_ANSWER,
        .user = ev->user,
        .client = ev->client,
        .collection = ev->collections,
        .vertical = ev->vertical,
        .query = ev->question,
        .chunks = chunks,
        .n_chunks = r->n_passages,
        .model_hash = r->model_hash[0] ? r->model_hash : NULL,
        .template_name = r->template_id,
        .template_version = r->template_version,
        .answer = r->answer,
        .outcome = ev->outcome,
        .latency_ms = r->latency_ms,
        .error = ev->error,
        .details = details,
    };
    uint64_t seq = 0;
    enum rb_status st = rb_audit_append(e->audit, &ae, &seq);
    if (st == RB_OK)
        rb_audit_format_id(seq, audit_id, size);
    else
        RB_ERROR("answer", "audit: %s", rb_audit_errmsg(e->audit));
    cJSON_Delete(details);
    free(chunks);
    return st;
}

void rb_answer_env_apply(struct rb_answer_env *e, struct rb_answerer_options *o)
{
    o->vertical = rb_answer_env_vertical;
    o->vertical_user = e;
    o->redact = rb_redact_audit_hook;
    o->redact_user = e->redactor;
    if (e->audit) {
        o->audit = audit_hook;
        o->audit_user = e;
    }
}

enum rb_status rb_answer_env_tombstone(struct rb_answer_env *e, const char *user,
                                       const char *collection,
                                       const struct rb_answer_forget_request *req,
                                       const struct rb_answer_forget_report *rep, char *audit_id,
                                       size_t size, struct rb_errmsg *err)
{
    if (!e->audit)
        return rb_errmsg_set(err, RB_ERR_INVALID, "the audit trail is not open");
    const char **hashes = rb_calloc_array(rep->n_affected + 1, sizeof *hashes);
    if (!hashes)
        return RB_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < rep->n_affected; i++)
        if (rep->doc_hashes[i])
            hashes[n++] = rep->doc_hashes[i];
    struct rb_audit_tombstone t = {
        .user = user,
        .client = "cli",
        .collection = collection,
        .scope = req->n_identifiers ? "person" : "document",
        .doc_hashes = hashes,
        .n_doc_hashes = n,
        .n_documents = (int64_t)rep->documents,
        .n_chunks = (int64_t)rep->chunks,
        .n_identifiers = (int64_t)req->n_identifiers,
    };
    uint64_t seq = 0;
    enum rb_status st = rb_audit_tombstone(e->audit, &t, &seq);
    free(hashes);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "audit: %s", rb_audit_errmsg(e->audit));
    rb_audit_format_id(seq, audit_id, size);
    return RB_OK;
}
