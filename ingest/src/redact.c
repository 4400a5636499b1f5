/* Redaction at ingest, per collection policy: personal data is replaced in
 * chunk text (and section, title, metadata) before anything is stored,
 * keyword-indexed or embedded. The rules are the verticals module's. */
#include <stdlib.h>
#include <string.h>

#include "ragbox/index.h"
#include "ragbox/ingest.h"
#if RB_INGEST_HAVE_VERTICALS
#include "ragbox/verticals.h"
#endif

enum rb_status rb_ingest_policy_redacts(const char *policy_json, bool *on, struct rb_errmsg *err)
{
    *on = false;
    if (!policy_json || !*policy_json)
        return RB_OK;
    cJSON *o = cJSON_Parse(policy_json);
    enum rb_status st = RB_OK;
    if (!o || !cJSON_IsObject(o)) {
        st = rb_errmsg_set(err, RB_ERR_INVALID, "the collection policy is not a JSON object");
    } else {
        const cJSON *red = cJSON_GetObjectItemCaseSensitive(o, "redaction");
        const cJSON *x = cJSON_IsObject(red) ? cJSON_GetObjectItemCaseSensitive(red, "ingest") : NULL;
        if ((red && !cJSON_IsObject(red)) || (x && !cJSON_IsBool(x)))
            st = rb_errmsg_set(err, RB_ERR_INVALID,
                               "the collection policy's \"redaction\" must be an object of "
                               "booleans \"ingest\" and \"answers\"");
        else
            *on = x && cJSON_IsTrue(x);
    }
    cJSON_Delete(o);
    return st;
}

#if RB_INGEST_HAVE_VERTICALS
static size_t count_marks(const char *t, size_t len)
{
    size_t n = 0;
    static const char mark[] = "[REDACTED:";
    for (size_t i = 0; i + sizeof mark - 1 <= len; i++)
        if (t[i] == '[' && memcmp(t + i, mark, sizeof mark - 1) == 0)
            n++;
    return n;
}

/* Replaces the owned string *s by its redacted copy. */
static enum rb_status redact_str(const struct rb_redactor *r, char **s, size_t *len,
                                 size_t *found, struct rb_errmsg *err)
{
    if (!*s)
        return RB_OK;
    size_t in_len = len ? *len : strlen(*s);
    char *out = NULL;
    size_t out_len = 0, n = 0;
    enum rb_status st = rb_redact_text(r, *s, in_len, &out, &out_len, &n, err);
    if (st != RB_OK)
        return st;
    /* findings, not pre-existing markers */
    size_t before = count_marks(*s, in_len);
    size_t after = count_marks(out, out_len);
    *found += after > before ? after - before : 0;
    free(*s);
    *s = out;
    if (len)
        *len = out_len;
    return RB_OK;
}

static enum rb_status redact_json(const struct rb_redactor *r, cJSON *node, size_t *found,
                                  struct rb_errmsg *err)
{
    enum rb_status st = RB_OK;
    for (cJSON *it = node; it && st == RB_OK; it = it->next) {
        if (cJSON_IsString(it) && it->valuestring) {
            char *v = rb_strdup(it->valuestring);
            if (!v)
                return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            st = redact_str(r, &v, NULL, found, err);
            if (st == RB_OK && strcmp(v, it->valuestring) != 0 && !cJSON_SetValuestring(it, v))
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            free(v);
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            st = redact_json(r, it->child, found, err);
        }
    }
    return st;
}
#endif

enum rb_status rb_ingest_redact_chunks(struct rb_ingest_chunks *chunks,
                                       const struct rb_ingest_chunk_options *opts, char **title,
                                       char **metadata_json, size_t *n_redacted,
                                       struct rb_errmsg *err)
{
    if (n_redacted)
        *n_redacted = 0;
#if RB_INGEST_HAVE_VERTICALS
    struct rb_redactor_options ro = {0}; /* every rule */
    struct rb_redactor *r = NULL;
    enum rb_status st = rb_redactor_create(&ro, &r, err);
    if (st != RB_OK)
        return st;
    size_t found = 0;
    rb_ingest_count_fn count = opts && opts->count ? opts->count : rb_ingest_estimate_tokens;
    void *count_ctx = opts && opts->count ? opts->count_ctx : NULL;
    for (size_t i = 0; st == RB_OK && chunks && i < chunks->n; i++) {
        struct rb_ingest_chunk *c = &chunks->items[i];
        size_t before = found;
        st = redact_str(r, &c->text, &c->text_len, &found, err);
        if (st == RB_OK)
            st = redact_str(r, &c->section, NULL, &found, err);
        if (st == RB_OK && found != before)
            c->token_count = (int32_t)count(count_ctx, c->text, c->text_len);
    }
    if (st == RB_OK && title)
        st = redact_str(r, title, NULL, &found, err);
    if (st == RB_OK && metadata_json && *metadata_json) {
        cJSON *m = cJSON_Parse(*metadata_json);
        if (!m) {
            /* not JSON: stored as given would leak; keep nothing */
            free(*metadata_json);
            *metadata_json = rb_strdup("{}");
            if (!*metadata_json)
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        } else {
            st = redact_json(r, m, &found, err);
            char *text = st == RB_OK ? cJSON_PrintUnformatted(m) : NULL;
            if (st == RB_OK && !text)
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            if (st == RB_OK) {
                free(*metadata_json);
                *metadata_json = text;
            }
            cJSON_Delete(m);
        }
    }
    rb_redactor_free(r);
    if (n_redacted)
        *n_redacted = found;
    return st;
#else
    (void)chunks;
    (void)opts;
    (void)title;
    (void)metadata_json;
    return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                         "the collection policy asks for redaction at ingest, but this build "
                         "has no redaction rules (verticals module)");
#endif
}

enum rb_status rb_ingest_apply_collection_policy(struct rb_index *idx, int64_t collection_id,
                                                 struct rb_ingest_chunks *chunks,
                                                 const struct rb_ingest_chunk_options *opts,
                                                 char **title, char **metadata_json,
                                                 bool *applied, size_t *n_redacted,
                                                 struct rb_errmsg *err)
{
    if (applied)
        *applied = false;
    if (n_redacted)
        *n_redacted = 0;
    struct rb_index_collection *c = NULL;
    enum rb_status st = rb_index_collection_get_by_id(idx, collection_id, &c);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "collection %lld: %s", (long long)collection_id,
                             rb_index_errmsg(idx));
    bool on = false;
    st = rb_ingest_policy_redacts(c->policy_json, &on, err);
    if (st != RB_OK) {
        char msg[sizeof err->text];
        rb_strlcpy(msg, err->text, sizeof msg);
        rb_errmsg_set(err, st, "collection '%s': %s", c->name, msg);
    }
    rb_index_collection_free(c);
    if (st != RB_OK || !on)
        return st;
    st = rb_ingest_redact_chunks(chunks, opts, title, metadata_json, n_redacted, err);
    if (st == RB_OK && applied)
        *applied = true;
    return st;
}
