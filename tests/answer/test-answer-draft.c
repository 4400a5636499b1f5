/* Government drafting mode end to end: real documents (a Federal Register
 * proposed rule, a Chinese recall notice) ingested by the real pipeline, the
 * government pack's draft-notice / draft-reply templates, generation over a
 * loopback OpenAI-compatible server, citations, the audit record with the
 * template name and version, and the error cases (unknown kind, extractive
 * mode, no model, a pack without draft templates).
 *
 * Two server-side models: (1) the real engine (stories260K) — the real
 * generation path; it is a story model that cannot cite, so its draft is
 * withheld as uncited, which is what ragbox must do; (2) a drafting clerk
 * that writes the notice from the sources in the prompt with ragbox's
 * extractive scorer — it only sees what the HTTP request carries, so a
 * cited draft proves the template, the retrieved sources and the citation
 * mapping all made the round trip. */
#include <arpa/inet.h>
#include <ctype.h>

#include "check.h"

#include "openai-server.h"
#include "ragbox/answer.h"
#include "ragbox/audit.h"
#include "ragbox/index.h"
#include "ragbox/ingest.h"

static const char *DATA;

/* ------------------------------------------------------------ the clerk */

/* The sources block of the prompt: between the line after `open` and `close`. */
static bool split_prompt(const char *content, const char **src, const char **end,
                         const char **request)
{
    static const char *const opens[] = {"Sources:\n", "\xE8\xB5\x84\xE6\x96\x99\xEF\xBC\x9A\n"};
    static const char *const closes[] = {"\n\nRequest: ", "\n\nEnquiry to answer: ",
                                         "\n\n\xE8\xB5\xB7\xE8\x8D\x89\xE8\xA6\x81\xE6\xB1\x82\xEF\xBC\x9A",
                                         "\n\n\xE6\x9D\xA5\xE5\x87\xBD\xE4\xBA\x8B\xE9\xA1\xB9\xEF\xBC\x9A"};
    *src = *end = *request = NULL;
    for (size_t i = 0; i < 2 && !*src; i++)
        if ((*src = strstr(content, opens[i])))
            *src += strlen(opens[i]);
    for (size_t i = 0; i < 4 && *src && !*end; i++)
        if ((*end = strstr(*src, closes[i])))
            *request = *end + strlen(closes[i]);
    return *src && *end;
}

static bool clerk(void *user, const cJSON *req, struct rb_buf *pieces, size_t *ends,
                  size_t *n_pieces, size_t max, char *error, size_t esize)
{
    (void)user;
    const cJSON *msgs = cJSON_GetObjectItem(req, "messages");
    const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    const char *content = last ? rb_json_str(last, "content") : NULL;
    const char *src, *end, *request;
    if (!content || !split_prompt(content, &src, &end, &request)) {
        snprintf(error, esize, "the prompt has no sources block");
        return false;
    }
    /* "[n] label\ntext" blocks separated by blank lines */
    struct rb_answer_passage p[32] = {{0}};
    char *labels[32] = {0};
    size_t np = 0;
    for (const char *s = src; s < end && np < 32;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            break;
        const char *e = nl;
        while (e < end && !(e[0] == '\n' && e[1] == '\n' && e[2] == '[' && isdigit((unsigned char)e[3])))
            e++;
        labels[np] = rb_strndup(s, (size_t)(nl - s));
        p[np].text = rb_strndup(nl + 1, (size_t)(e - nl - 1));
        np++;
        s = e < end ? e + 2 : end;
    }
    const char *req_end = strstr(request, "\n\n");
    char *question = rb_strndup(request, req_end ? (size_t)(req_end - request) : strlen(request));
    struct rb_answer_extract ex;
    struct rb_answer_extract_options eo = {.max_sentences = 3, .max_chars = 1200};
    if (rb_answer_extract(question, p, np, &eo, &ex) != RB_OK || ex.n == 0) {
        snprintf(error, esize, "nothing to draft from");
        return false;
    }
    bool zh = rb_answer_detect_lang(question, strlen(question)) == RB_ANSWER_LANG_ZH;
    struct rb_buf t;
    rb_buf_init(&t, 1 << 20);
    if (zh) {
        (void)!rb_buf_printf(&t, "关于有关事项的复函\n［机关代字］函〔2026〕［序号］号\n［来函单位］：\n"
                                 "你单位来函收悉。经研究，现函复如下：\n");
        static const char *const num[] = {"一", "二", "三"};
        for (size_t i = 0; i < ex.n && i < 3; i++)
            (void)!rb_buf_printf(&t, "%s、%s [%zu]\n", num[i], ex.sentence[i].text,
                                 ex.sentence[i].passage + 1);
        (void)!rb_buf_printf(&t, "依据：%s [%zu]\n此复。\n［发文机关］\n", labels[ex.sentence[0].passage] + 4,
                             ex.sentence[0].passage + 1);
    } else {
        (void)!rb_buf_printf(&t, "NOTICE ON THE PROPOSED AIRWORTHINESS DIRECTIVE\n"
                                 "Ref. No.: [reference number]\nTo: [addressees]\n\n"
                                 "The relevant matters are hereby notified as follows:\n");
        for (size_t i = 0; i < ex.n && i < 3; i++)
            (void)!rb_buf_printf(&t, "%zu. %s [%zu]\n", i + 1, ex.sentence[i].text,
                                 ex.sentence[i].passage + 1);
        (void)!rb_buf_printf(&t, "Basis: %s [%zu]\nThis notice takes effect on [effective date].\n"
                                 "[Issuing authority]\n",
                             labels[ex.sentence[0].passage] + 4, ex.sentence[0].passage + 1);
    }
    /* streamed word by word */
    *n_pieces = 0;
    for (size_t i = 0; i < t.len && *n_pieces < max;) {
        size_t j = i + 1;
        while (j < t.len && t.data[j] != ' ' && t.data[j] != '\n')
            j++;
        (void)!rb_buf_append(pieces, t.data + i, j - i);
        ends[(*n_pieces)++] = pieces->len;
        i = j;
    }
    rb_buf_free(&t);
    rb_answer_extract_free(&ex);
    free(question);
    for (size_t i = 0; i < np; i++) {
        free(p[i].text);
        free(labels[i]);
    }
    return true;
}

/* ------------------------------------------------ the real engine's model */

struct sink {
    struct rb_buf b;
    int calls;
};

static bool on_piece(void *user, const char *piece, size_t len)
{
    struct sink *s = user;
    s->calls++;
    return rb_buf_append(&s->b, piece, len) == RB_OK;
}

static bool engine_model(void *user, const cJSON *req, struct rb_buf *pieces, size_t *ends,
                         size_t *n_pieces, size_t max, char *error, size_t esize)
{
    struct rb_answer_backend *b = user;
    struct rb_answer_message m[8];
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(req, "messages"))
    {
        if (n < 8)
            m[n++] = (struct rb_answer_message){rb_json_str(it, "role"), rb_json_str(it, "content")};
    }
    struct rb_answer_gen_params gp = {.max_tokens = (int)rb_json_num(req, "max_tokens", 32)};
    char *text = NULL;
    if (rb_answer_backend_generate(b, m, n, &gp, NULL, NULL, &text) != RB_OK) {
        snprintf(error, esize, "%s", rb_answer_backend_errmsg(b));
        return false;
    }
    *n_pieces = 0;
    size_t len = strlen(text);
    for (size_t i = 0; i < len && *n_pieces < max;) {
        size_t j = i + 1;
        while (j < len && text[j] != ' ')
            j++;
        (void)!rb_buf_append(pieces, text + i, j - i);
        ends[(*n_pieces)++] = pieces->len;
        i = j;
    }
    free(text);
    return true;
}

/* ----------------------------------------------------------------- audit */

struct found {
    char *line;
};

static enum rb_status keep_line(void *user, const cJSON *record, const char *line, size_t len)
{
    (void)record;
    struct found *f = user;
    free(f->line);
    f->line = rb_strndup(line, len);
    return RB_OK;
}

/* The audit record with id audit_id (caller frees). */
static char *audit_line(const char *audit_id)
{
    uint64_t seq = 0;
    REQUIRE(rb_audit_parse_id(audit_id, &seq) == RB_OK);
    struct rb_audit_filter f;
    rb_audit_filter_init(&f);
    f.seq_min = f.seq_max = seq;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", DATA);
    struct found fd = {0};
    struct rb_errmsg err;
    CHECK(rb_audit_scan(dir, &f, keep_line, &fd, &err) == RB_OK);
    return fd.line;
}

/* ------------------------------------------------------------------ main */

static void ingest(struct rb_index *idx, const char *collection, const char *path)
{
    struct rb_ingest_options io = {.index = idx};
    struct rb_ingest *ing = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_ingest_open(&io, &ing, &err) == RB_OK);
    size_t q = 0;
    REQUIRE(rb_ingest_enqueue_path(ing, collection, path, false, &q) == RB_OK);
    struct rb_ingest_job_result r = {0};
    int64_t due;
    enum rb_status st;
    while ((st = rb_ingest_run_one(ing, &r, &due)) == RB_OK) {
        CHECK_MSG(strcmp(r.action, "added") == 0, "%s: %s", r.path, r.error ? r.error : r.action);
        rb_ingest_job_result_clear(&r);
    }
    CHECK_EQ_INT(st, RB_ERR_NOT_FOUND);
    rb_ingest_close(ing);
}

static struct rb_answer_result ask(struct rb_answerer *a, const char *question, const char *draft,
                                   const char *vertical, enum rb_answer_mode mode,
                                   enum rb_status want, struct sink *s)
{
    const char *cols[] = {"gov"};
    struct rb_answer_request rq = {.question = question, .collections = cols, .n_collections = 1,
                                   .vertical = vertical, .mode = mode, .draft = draft,
                                   .user = "drafter", .client = "test",
                                   .on_piece = s ? on_piece : NULL, .stream_user = s};
    struct rb_answer_result r;
    struct rb_errmsg err;
    rb_errmsg_clear(&err);
    enum rb_status st = rb_answerer_ask(a, &rq, &r, &err);
    CHECK_MSG(st == want, "%s: %s (want %s)", question, err.text, rb_status_name(want));
    if (st != RB_OK)
        fprintf(stderr, "  expected error: %s\n", err.text);
    return r;
}

int main(void)
{
    const char *model = check_shared("models/real/stories260K.gguf");
    const char *pdf = check_shared("docs/pdf/government/federal-register-2020-17221.pdf");
    const char *zh = check_shared("eval/crud-zh/docs/news-00351.txt");
    if (access(pdf, R_OK) != 0 || access(zh, R_OK) != 0)
        CHECK_SKIP("shared documents missing");
    DATA = check_tmpdir("answer-draft");
    struct rb_index_options xo = {.data_dir = DATA};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&xo, &idx, &err) == RB_OK);
    ingest(idx, "gov", pdf);
    ingest(idx, "gov", zh);

    struct rb_answer_env_options eo = {.data_dir = DATA, .audit = true};
    struct rb_answer_env *env = NULL;
    REQUIRE(rb_answer_env_open(&eo, &env, &err) == RB_OK);

    struct oai_server clerk_srv = {.generate = clerk};
    if (!oai_server_start(&clerk_srv))
        CHECK_SKIP("cannot listen on loopback");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", clerk_srv.port);
    struct rb_answer_remote_options ro = {.base_url = url, .model = "clerk", .retries = 0,
                                          .context_tokens = 4096};
    struct rb_answer_backend *remote = NULL;
    REQUIRE(rb_answer_backend_open_remote(&ro, &remote, &err) == RB_OK);
    struct rb_answerer_options ao = {.index = idx, .backend = remote, .max_tokens = 512};
    rb_answer_env_apply(env, &ao);
    struct rb_answerer *a = NULL;
    REQUIRE(rb_answerer_open(&ao, &a, &err) == RB_OK);

    /* 1. an English notice: the template's instructions and the retrieved
     * sources reach the model, the draft comes back cited and audited */
    struct sink s = {0};
    rb_buf_init(&s.b, 0);
    struct rb_answer_result r =
        ask(a, "Draft a notice informing operators of the proposed airworthiness directive for "
               "Pilatus PC-12 airplanes and how to submit comments",
            "notice", "government", RB_ANSWER_MODE_AUTO, RB_OK, &s);
    CHECK_MSG(!r.refused, "refused: %s / withheld %s", r.answer, r.withheld ? r.withheld : "");
    CHECK(r.n_citations >= 1);
    CHECK_STR(r.draft, "notice");
    CHECK_STR(r.template_id, "government/draft-notice.en");
    CHECK_STR(r.template_version, "2026.11-2");
    CHECK_STR(r.mode_used, "remote");
    REQUIRE(clerk_srv.last_system && clerk_srv.last_user);
    CHECK(strstr(clerk_srv.last_system, "You draft official notices") != NULL);
    CHECK(strstr(clerk_srv.last_system, "Basis: ") != NULL);
    CHECK(strstr(clerk_srv.last_system, "[Issuing authority]") != NULL); /* {{authority}} */
    CHECK(strstr(clerk_srv.last_system, "{{") == NULL);                /* all substituted */
    CHECK(strstr(clerk_srv.last_user, "Request: Draft a notice") != NULL);
    /* every cited chunk's text was in the prompt, under its label */
    for (size_t i = 0; i < r.n_citations; i++) {
        char head[64];
        snprintf(head, sizeof head, "[%d] federal-register-2020-17221", r.citation[i].label);
        CHECK_MSG(strstr(clerk_srv.last_user, head) != NULL, "label %s", head);
        char probe[81];
        rb_strlcpy(probe, r.citation[i].text, sizeof probe);
        probe[rb_utf8_truncate(probe, strlen(probe), 80)] = '\0';
        CHECK(strstr(clerk_srv.last_user, probe) != NULL);
        CHECK(strstr(r.citation[i].document, "federal-register") != NULL);
        CHECK(r.citation[i].page >= 1);
    }
    /* the official format survives the round trip, streamed as produced */
    CHECK(r.answer && strstr(r.answer, "NOTICE ON") && strstr(r.answer, "Basis: ") &&
          strstr(r.answer, "To: ") && strstr(r.answer, "[Issuing authority]"));
    CHECK(s.calls > 10 && s.b.data && strstr(r.answer, s.b.data) == r.answer);
    /* the pack's disclaimer closes the draft */
    CHECK(strstr(r.answer, "check it against the current official text") != NULL);
    char *line = audit_line(r.audit_id);
    REQUIRE(line != NULL);
    CHECK(strstr(line, "\"template\":\"government/draft-notice.en\"") != NULL);
    CHECK(strstr(line, "\"template_version\":\"2026.11-2\"") != NULL);
    CHECK(strstr(line, "\"draft\":\"notice\"") != NULL);
    CHECK(strstr(line, "\"outcome\":\"answered\"") != NULL);
    free(line);
    rb_answer_result_free(&r);

    /* 2. a Chinese reply letter from the recall notice */
    r = ask(a, "来函询问帝豪GL汽车召回的车辆范围和召回依据，请起草答复函", "reply", "government",
            RB_ANSWER_MODE_AUTO, RB_OK, NULL);
    CHECK_MSG(!r.refused, "refused: %s (evidence %.2f < %.2f?) withheld %s", r.answer, r.evidence,
              r.threshold, r.withheld ? r.withheld : "");
    CHECK(r.n_citations >= 1);
    CHECK_STR(r.template_id, "government/draft-reply.zh");
    CHECK(strstr(clerk_srv.last_system, "复函") != NULL);
    CHECK(strstr(clerk_srv.last_system, "依据：") != NULL);
    CHECK(strstr(clerk_srv.last_system, "[发文机关]") != NULL); /* pack.ini authority_zh */
    CHECK(strstr(clerk_srv.last_user, "来函事项：") != NULL);
    CHECK(strstr(clerk_srv.last_user, "22272") != NULL); /* the retrieved recall notice */
    CHECK(r.answer && strstr(r.answer, "函复如下") && strstr(r.answer, "此复"));
    CHECK(r.n_citations >= 1 && strstr(r.citation[0].document, "news-00351") != NULL);
    rb_answer_result_free(&r);

    /* 3. errors, each audited: unknown kind, extractive, no template */
    r = ask(a, "Draft a memo on the directive", "memo", "government", RB_ANSWER_MODE_AUTO,
            RB_ERR_INVALID, NULL);
    CHECK(r.audit_id[0] != '\0');
    rb_answer_result_free(&r);
    r = ask(a, "Draft a notice on the directive", "notice", "government",
            RB_ANSWER_MODE_EXTRACTIVE, RB_ERR_CONFIG, NULL);
    line = r.audit_id[0] ? audit_line(r.audit_id) : NULL;
    CHECK(line && strstr(line, "needs a generation model") && strstr(line, "\"outcome\":\"error\""));
    free(line);
    rb_answer_result_free(&r);
    r = ask(a, "Draft a notice on the directive", "notice", "finance", RB_ANSWER_MODE_AUTO,
            RB_ERR_NOT_FOUND, NULL);
    line = r.audit_id[0] ? audit_line(r.audit_id) : NULL;
    CHECK(line && strstr(line, "declares no draft-notice template"));
    free(line);
    rb_answer_result_free(&r);
    rb_answerer_close(a);

    /* no generation model at all: drafting is refused up front */
    struct rb_answerer_options ao2 = {.index = idx};
    rb_answer_env_apply(env, &ao2);
    REQUIRE(rb_answerer_open(&ao2, &a, &err) == RB_OK);
    r = ask(a, "Draft a notice on the directive", "reply", "government", RB_ANSWER_MODE_AUTO,
            RB_ERR_CONFIG, NULL);
    rb_answer_result_free(&r);
    rb_answerer_close(a);
    rb_answer_backend_close(remote);
    oai_server_stop(&clerk_srv);

    /* 4. the real engine behind the server: the drafting prompt reaches a
     * real model; a story model cannot cite, so the draft is withheld */
    if (access(model, R_OK) == 0) {
        struct rb_answer_local_options lo = {.model_path = model, .n_threads = 1};
        struct rb_answer_backend *local = NULL;
        REQUIRE(rb_answer_backend_open_local(&lo, &local, &err) == RB_OK);
        struct oai_server eng_srv = {.generate = engine_model, .user = local};
        REQUIRE(oai_server_start(&eng_srv));
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", eng_srv.port);
        ro.base_url = url;
        ro.model = "stories260K";
        /* the server's window in ragbox's token estimate: the story model's
         * tokenizer needs about three times as many tokens as estimated */
        ro.context_tokens = 800;
        REQUIRE(rb_answer_backend_open_remote(&ro, &remote, &err) == RB_OK);
        struct rb_answerer_options ao3 = {.index = idx, .backend = remote, .max_tokens = 48};
        rb_answer_env_apply(env, &ao3);
        REQUIRE(rb_answerer_open(&ao3, &a, &err) == RB_OK);
        r = ask(a, "Draft a notice on the proposed airworthiness directive for Pilatus airplanes",
                "notice", "government", RB_ANSWER_MODE_AUTO, RB_OK, NULL);
        CHECK(r.refused && r.refusal == RB_ANSWER_REFUSE_UNCITED);
        CHECK(r.withheld && strlen(r.withheld) > 0);
        CHECK_STR(r.template_id, "government/draft-notice.en");
        CHECK(eng_srv.last_system && strstr(eng_srv.last_system, "You draft official notices"));
        CHECK(eng_srv.last_user && strstr(eng_srv.last_user, "[1] federal-register-2020-17221"));
        line = audit_line(r.audit_id);
        CHECK(line && strstr(line, "government/draft-notice.en") &&
              strstr(line, "\"outcome\":\"refused\"") && strstr(line, "withheld_sha256"));
        free(line);
        rb_answer_result_free(&r);
        rb_answerer_close(a);
        rb_answer_backend_close(remote);
        oai_server_stop(&eng_srv);
        rb_answer_backend_close(local);
    }
    rb_answer_env_close(env);
    rb_index_close(idx);
    rb_buf_free(&s.b);
    return check_finish();
}
