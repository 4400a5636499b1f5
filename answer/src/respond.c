/* After retrieval: evidence check, context packing, prompt, generation (or
 * extraction), citation mapping and cite-or-refuse. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer-impl.h"

static enum rb_status refuse(struct rb_answer_result *r, enum rb_answer_refusal why)
{
    r->refused = true;
    r->refusal = why;
    /* a refusal cites nothing: the sources considered stay in r->passage */
    for (size_t i = 0; i < r->n_citations; i++) {
        free(r->citation[i].document);
        free(r->citation[i].doc_hash);
        free(r->citation[i].collection);
        free(r->citation[i].section);
        free(r->citation[i].text);
    }
    free(r->citation);
    r->citation = NULL;
    r->n_citations = 0;
    free(r->answer);
    r->answer = rb_strdup(rb_answer_refusal_text(why, r->lang));
    return r->answer ? RB_OK : RB_ERR_NOMEM;
}

struct stream_ctx {
    rb_answer_stream_fn fn;
    void *user;
};

static size_t count_cb(void *user, const char *text, size_t len)
{
    return rb_answer_backend_count_tokens(user, text, len);
}

/* Numbers of 2+ significant digits in text, citation labels excluded. */
static size_t figures(const char *t, char out[][32], size_t max)
{
    size_t n = 0;
    for (const char *p = t; *p && n < max;) {
        if (*p == '[') { /* skip a citation label */
            const char *q = p + 1;
            while (isdigit((unsigned char)*q) || *q == ',' || *q == ' ' || *q == '-')
                q++;
            if (*q == ']') {
                p = q + 1;
                continue;
            }
        }
        if (isdigit((unsigned char)*p)) {
            size_t k = 0;
            while (*p && (isdigit((unsigned char)*p) ||
                          ((*p == ',' || *p == '.') && isdigit((unsigned char)p[1])))) {
                if (*p != ',' && k + 1 < 32)
                    out[n][k++] = *p;
                p++;
            }
            out[n][k] = '\0';
            if (k >= 2)
                n++;
        } else {
            p++;
        }
    }
    return n;
}

static bool figure_in(const char *figure, const char *text)
{
    char f[512][32];
    size_t nc = figures(text ? text : "", f, 512);
    for (size_t k = 0; k < nc; k++)
        if (strcmp(figure, f[k]) == 0)
            return true;
    return false;
}

/* Whether every figure of the answer occurs in one of the cited passages or
 * in the way a cited source is named (document, page, section: a draft's
 * "Basis" line names them), or in `allowed` (drafting: the request itself
 * and the issuing date). */
static bool figures_supported(const char *answer, const struct rb_answer_result *r,
                              const char *allowed)
{
    char fa[64][32];
    size_t na = figures(answer, fa, 64);
    for (size_t i = 0; i < na; i++) {
        bool found = allowed && figure_in(fa[i], allowed);
        for (size_t c = 0; c < r->n_citations && !found; c++) {
            const struct rb_answer_citation *ci = &r->citation[c];
            char page[16];
            snprintf(page, sizeof page, "%d", ci->page);
            found = figure_in(fa[i], ci->text) || figure_in(fa[i], ci->document) ||
                    figure_in(fa[i], ci->section) || (ci->page >= 10 && strcmp(fa[i], page) == 0);
        }
        if (!found)
            return false;
    }
    return true;
}

/* ----------------------------------------------------------------- doses */

/* Dose units (ASCII ones case-insensitive, whole words), normalised. */
static const struct {
    const char *text;
    const char *unit;
} dose_units[] = {
    {"micrograms", "mcg"}, {"microgram", "mcg"}, {"microg", "mcg"}, {"mcg", "mcg"},
    {"\xC2\xB5g", "mcg"}, {"\xCE\xBCg", "mcg"}, {"ug", "mcg"}, {"milligrams", "mg"},
    {"milligram", "mg"}, {"mg", "mg"}, {"ng", "ng"}, {"grams", "g"}, {"gram", "g"}, {"g", "g"},
    {"millilitres", "ml"}, {"milliliters", "ml"}, {"ml", "ml"}, {"mmol", "mmol"},
    {"meq", "meq"}, {"iu", "iu"}, {"units", "unit"}, {"unit", "unit"}, {"tablets", "tablet"},
    {"tablet", "tablet"}, {"capsules", "capsule"}, {"capsule", "capsule"}, {"drops", "drop"},
    {"drop", "drop"}, {"puffs", "puff"}, {"puff", "puff"},
    {"\xE6\xAF\xAB\xE5\x85\x8B", "mg"},  /* 毫克 */
    {"\xE5\xBE\xAE\xE5\x85\x8B", "mcg"}, /* 微克 */
    {"\xE6\xAF\xAB\xE5\x8D\x87", "ml"},  /* 毫升 */
    {"\xE5\x85\x8B", "g"},                  /* 克 */
    {"\xE7\x89\x87", "tablet"},             /* 片 */
    {"\xE7\xB2\x92", "capsule"},            /* 粒 */
    {"\xE6\xBB\xB4", "drop"},               /* 滴 */
    {"\xE5\x8D\x95\xE4\xBD\x8D", "unit"}, /* 单位 */
};

/* Doses in text: "<number> <unit>" pairs normalised to "0.3 mg" (number
 * without thousands separators, unit from the table). */
static size_t doses(const char *t, char out[][48], size_t max)
{
    size_t n = 0;
    for (const char *p = t; *p && n < max;) {
        if (!isdigit((unsigned char)*p) || (p > t && (isalnum((unsigned char)p[-1]) || p[-1] == '.'))) {
            p++;
            continue;
        }
        char num[24];
        size_t k = 0;
        while (*p && (isdigit((unsigned char)*p) ||
                      ((*p == ',' || *p == '.') && isdigit((unsigned char)p[1])))) {
            if (*p != ',' && k + 1 < sizeof num)
                num[k++] = *p;
            p++;
        }
        num[k] = '\0';
        const char *u = p;
        while (*u == ' ' || *u == '\t')
            u++;
        for (size_t i = 0; i < RB_ARRAY_LEN(dose_units); i++) {
            const char *ut = dose_units[i].text;
            size_t ul = strlen(ut);
            bool ascii = (unsigned char)ut[0] < 0x80;
            if ((ascii ? strncasecmp(u, ut, ul) : strncmp(u, ut, ul)) != 0)
                continue;
            if (ascii && isalpha((unsigned char)u[ul]))
                continue; /* "g" of "good" */
            snprintf(out[n++], 48, "%s %s", num, dose_units[i].unit);
            break;
        }
    }
    return n;
}

/* Whether every dose of the answer is stated, number and unit, by a cited source. */
static bool doses_supported(const char *answer, const struct rb_answer_result *r)
{
    char da[64][48];
    size_t na = doses(answer, da, 64);
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t c = 0; c < r->n_citations && !found; c++) {
            char dc[256][48];
            size_t nc = doses(r->citation[c].text ? r->citation[c].text : "", dc, 256);
            for (size_t k = 0; k < nc && !found; k++)
                found = strcmp(da[i], dc[k]) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

/* The built-in answer prompt, used when no vertical pack supplies one
 * (template id "builtin/answer.<lang>", version RB__BUILTIN_TEMPLATE_VERSION). */
static enum rb_status builtin_render(void *user, const char *context, const char *question,
                                     enum rb_answer_lang lang, char **system, char **user_message)
{
    (void)user;
    if (lang == RB_ANSWER_LANG_ZH) {
        *system = rb_strdup(
            "你是一个严谨的文档问答助手。只能依据下面编号的资料回答问题，不得使用资料以外的知识。"
            "每一个事实后面用方括号标注资料编号，例如 [1] 或 [2][3]。数字、日期和金额必须与资料"
            "完全一致。如果资料中没有足够的依据，就直接说明资料中没有答案，不要猜测。用中文回答。");
        *user_message = rb_asprintf("资料：\n%s\n\n问题：%s", context, question);
    } else {
        *system = rb_strdup(
            "You are a careful assistant answering questions about documents. Answer only from "
            "the numbered sources below, never from outside knowledge. After every fact, cite "
            "its source number in square brackets, e.g. [1] or [2][3]. Quote figures, dates and "
            "amounts exactly as the sources give them, with their period and unit. If the "
            "sources do not contain the answer, say so plainly instead of guessing.");
        *user_message = rb_asprintf("Sources:\n%s\n\nQuestion: %s", context, question);
    }
    if (!*system || !*user_message) {
        free(*system);
        free(*user_message);
        *system = *user_message = NULL;
        return RB_ERR_NOMEM;
    }
    return RB_OK;
}

enum rb_status rb_answer_respond(const struct rb_answer_respond_options *o,
                                 struct rb_answer_passage *passages, size_t n,
                                 struct rb_answer_result *out, struct rb_errmsg *err)
{
    out->passage = passages;
    out->n_passages = n;
    if (!o || !o->question || !o->policy)
        return rb_errmsg_set(err, RB_ERR_INVALID, "answer: question and policy are required");
    const struct rb_answer_policy *pol = o->policy;
    out->lang = rb_answer_detect_lang(o->question, strlen(o->question));
    out->threshold = pol->min_evidence;
    bool generate = o->mode == RB_ANSWER_MODE_GENERATE ||
                    (o->mode == RB_ANSWER_MODE_AUTO && o->backend != NULL);
    if (generate && !o->backend)
        return rb_errmsg_set(err, RB_ERR_CONFIG,
                             "answer: generation requested but no model is configured "
                             "(use --model, [answer] remote_url, or --extractive)");
    rb_answer_render_fn render = o->render;
    void *render_user = o->render_user;
    if (generate && !render) {
        render = builtin_render;
        render_user = NULL;
        free(out->template_id);
        free(out->template_version);
        out->template_id = rb_asprintf("builtin/answer.%s", rb_answer_lang_code(out->lang));
        out->template_version = rb_strdup(RB__BUILTIN_TEMPLATE_VERSION);
    }
    out->mode_used = generate ? o->backend->ops->name : "extractive";
    if (generate)
        memcpy(out->model_hash, o->backend->model_hash, sizeof out->model_hash);

    /* Evidence: how much of the question the best retrieved passage supports. */
    struct rb_answer_extract ex;
    struct rb_answer_extract_options eo = {pol->max_sentences, 0, 0, 0};
    enum rb_status st = rb_answer_extract(o->evidence_question ? o->evidence_question : o->question,
                                          passages, n, &eo, &ex);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "answer: sentence scoring failed: %s", rb_status_str(st));
    out->evidence = ex.best_coverage;
    if (n == 0 || ex.n == 0 || ex.best_coverage < pol->min_evidence) {
        rb_answer_extract_free(&ex);
        st = refuse(out, RB_ANSWER_REFUSE_NO_EVIDENCE);
        if (st == RB_OK && pol->refusal && *pol->refusal) {
            free(out->answer);
            out->answer = rb_strdup(pol->refusal);
            if (!out->answer)
                st = RB_ERR_NOMEM;
        }
        if (st == RB_OK && o->on_piece)
            o->on_piece(o->stream_user, out->answer, strlen(out->answer));
        return st;
    }

    if (!generate) {
        st = rb_answer_compose_extractive(&ex, passages, pol->disclaimer, out);
        rb_answer_extract_free(&ex);
        if (st != RB_OK)
            return rb_errmsg_set(err, st, "answer: %s", rb_status_str(st));
        if (o->on_piece && !o->on_piece(o->stream_user, out->answer, strlen(out->answer)))
            return rb_errmsg_set(err, RB_ERR_CANCELLED, "answer: cancelled");
        return RB_OK;
    }
    rb_answer_extract_free(&ex);

    /* Budget: the model's window minus the prompt without context, the answer
     * and a margin for the chat template's special tokens. */
    struct rb_answer_backend *b = o->backend;
    int max_tokens = o->gen.max_tokens > 0 ? o->gen.max_tokens : 512;
    size_t budget = o->context_budget;
    if (budget == 0) {
        char *sys0 = NULL, *usr0 = NULL;
        if ((st = render(render_user, "", o->question, out->lang, &sys0, &usr0)) != RB_OK)
            return rb_errmsg_set(err, st, "answer: the prompt template failed: %s",
                                 rb_status_str(st));
        size_t fixed = rb_answer_backend_count_tokens(b, sys0 ? sys0 : "", sys0 ? strlen(sys0) : 0) +
                       rb_answer_backend_count_tokens(b, usr0, strlen(usr0)) + 64;
        free(sys0);
        free(usr0);
        size_t need = fixed + (size_t)max_tokens;
        budget = b->context_tokens > need ? b->context_tokens - need : 0;
    }
    struct rb_answer_packed pk;
    if ((st = rb_answer_pack(passages, n, budget, count_cb, b, &pk)) != RB_OK)
        return rb_errmsg_set(err, st, "answer: packing failed: %s", rb_status_str(st));
    out->context_tokens = pk.tokens;
    if (pk.n_labels == 0) {
        rb_answer_packed_free(&pk);
        return rb_errmsg_set(err, RB_ERR_CONTEXT_FULL,
                             "answer: the model's context window (%zu tokens) leaves no room for "
                             "sources; use a model with a larger window or fewer --max-tokens",
                             b->context_tokens);
    }
    char *sys = NULL, *usr = NULL;
    if ((st = render(render_user, pk.context, o->question, out->lang, &sys, &usr)) != RB_OK) {
        rb_answer_packed_free(&pk);
        return rb_errmsg_set(err, st, "answer: the prompt template failed: %s", rb_status_str(st));
    }
    struct rb_answer_message msgs[2];
    size_t nm = 0;
    if (sys && *sys)
        msgs[nm++] = (struct rb_answer_message){"system", sys};
    msgs[nm++] = (struct rb_answer_message){"user", usr};
    struct rb_answer_gen_params gp = o->gen;
    gp.max_tokens = max_tokens;
    char *text = NULL;
    st = rb_answer_backend_generate(b, msgs, nm, &gp, o->on_piece, o->stream_user, &text);
    free(sys);
    free(usr);
    if (st != RB_OK) {
        rb_answer_packed_free(&pk);
        return rb_errmsg_set(err, st, "%s", rb_answer_backend_errmsg(b));
    }
    size_t n_cited = 0;
    st = rb_answer_map_citations(text, &pk, passages, out, &n_cited);
    rb_answer_packed_free(&pk);
    if (st != RB_OK) {
        free(text);
        return rb_errmsg_set(err, st, "answer: %s", rb_status_str(st));
    }
    if (n_cited == 0 ||
        (pol->figures_from_sources && !figures_supported(text, out, o->figures_allowed)) ||
        (pol->doses_from_sources && !doses_supported(text, out))) {
        out->withheld = text;
        return refuse(out, n_cited == 0 ? RB_ANSWER_REFUSE_UNCITED : RB_ANSWER_REFUSE_POLICY);
    }
    if (pol->disclaimer && *pol->disclaimer && !strstr(text, pol->disclaimer)) {
        char *t = rb_asprintf("%s\n\n%s", text, pol->disclaimer);
        free(text);
        text = t;
        if (!text)
            return RB_ERR_NOMEM;
        if (o->on_piece) {
            char *tail = rb_asprintf("\n\n%s", pol->disclaimer);
            if (tail)
                o->on_piece(o->stream_user, tail, strlen(tail));
            free(tail);
        }
    }
    out->answer = text;
    return RB_OK;
}
