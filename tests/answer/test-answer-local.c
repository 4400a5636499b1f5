/* The local engine backend on the real model (stories260K) and the remote
 * backend against a loopback OpenAI-compatible server backed by that same
 * engine. The model is no QA model: the checks are the mechanics — streaming,
 * determinism, token counting, the model hash, the prompt fitting the window,
 * and cite-or-refuse withholding an answer that cites nothing, in the
 * question's language. */
#include <arpa/inet.h>

#include "check.h"

#include "openai-server.h"
#include "ragbox/answer.h"

static const char *MODEL;

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

static char *slurp(const char *rel)
{
    char *d = NULL;
    size_t n = 0;
    return rb_fs_read_file(check_shared(rel), 1 << 24, &d, &n) == RB_OK ? d : NULL;
}

static struct rb_answer_passage *passages(const char *const *rel, size_t n)
{
    struct rb_answer_passage *p = calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i].chunk_id = (int64_t)(1 + i);
        p[i].document = rb_strdup(rb_path_basename(rel[i]));
        p[i].text = slurp(rel[i]);
        REQUIRE(p[i].text != NULL);
    }
    return p;
}

/* ------------------------------------------ the server's model: the engine */

static bool engine_model(void *user, const cJSON *req, struct rb_buf *pieces, size_t *ends,
                         size_t *n_pieces, size_t max, char *error, size_t esize)
{
    struct rb_answer_backend *b = user;
    const cJSON *msgs = cJSON_GetObjectItem(req, "messages");
    struct rb_answer_message m[8];
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, msgs)
    {
        if (n < 8)
            m[n++] = (struct rb_answer_message){rb_json_str(it, "role"), rb_json_str(it, "content")};
    }
    struct rb_answer_gen_params gp = {.max_tokens = (int)rb_json_num(req, "max_tokens", 32),
                                      .temperature = (float)rb_json_num(req, "temperature", 0),
                                      .top_p = 1};
    struct sink s = {0};
    rb_buf_init(&s.b, 0);
    char *text = NULL;
    enum rb_status st = rb_answer_backend_generate(b, m, n, &gp, on_piece, &s, &text);
    if (st != RB_OK) {
        snprintf(error, esize, "%s", rb_answer_backend_errmsg(b));
        rb_buf_free(&s.b);
        return false;
    }
    /* re-split the streamed text into word pieces for the events */
    *n_pieces = 0;
    const char *t = text;
    size_t len = strlen(t), i = 0;
    while (i < len && *n_pieces < max) {
        size_t j = i + 1;
        while (j < len && t[j] != ' ')
            j++;
        (void)!rb_buf_append(pieces, t + i, j - i);
        ends[(*n_pieces)++] = pieces->len;
        i = j;
    }
    free(text);
    rb_buf_free(&s.b);
    return true;
}

int main(void)
{
    MODEL = check_shared("models/real/stories260K.gguf");
    if (access(MODEL, R_OK) != 0)
        CHECK_SKIP("stories260K.gguf missing");
    struct rb_errmsg err;
    struct rb_answer_local_options lo = {.model_path = MODEL, .n_threads = 1};
    struct rb_answer_backend *b = NULL;
    enum rb_status st = rb_answer_backend_open_local(&lo, &b, &err);
    REQUIRE(st == RB_OK);
    CHECK(b->context_tokens >= 256);
    char hex[65];
    REQUIRE(rb_sha256_file(MODEL, hex) == RB_OK);
    CHECK_STR(b->model_hash, hex);
    CHECK_STR(b->model_id, "stories260K.gguf");
    CHECK(rb_answer_backend_count_tokens(b, "Once upon a time", 16) >= 3);

    /* 1. streaming, deterministic greedy generation of readable text */
    struct rb_answer_message m[1] = {{"user", "Once upon a time"}};
    struct rb_answer_gen_params gp = {.max_tokens = 24};
    struct sink s = {0};
    rb_buf_init(&s.b, 0);
    char *text = NULL;
    REQUIRE(rb_answer_backend_generate(b, m, 1, &gp, on_piece, &s, &text) == RB_OK);
    CHECK(s.calls >= 5);
    CHECK_STR(s.b.data, text);
    CHECK(strlen(text) > 20);
    char *again = NULL;
    REQUIRE(rb_answer_backend_generate(b, m, 1, &gp, NULL, NULL, &again) == RB_OK);
    CHECK_STR(again, text);
    free(again);

    /* 2. the whole respond step: the model cannot cite, so the answer is withheld */
    static const char *docs[] = {"eval/pubmedqa/docs/pmid-10135926.txt",
                                 "eval/tatqa/docs/tatqa-001e29d7-77e9-4434-9a3d-f72ef640fa79.txt"};
    struct rb_answer_policy pol = {.min_evidence = 0.3};
    rb_buf_reset(&s.b);
    s.calls = 0;
    struct rb_answer_respond_options ro = {
        .question = "How long did in-flight intubation take compared with the control setting?",
        .backend = b, .policy = &pol, .gen = {.max_tokens = 48}, .on_piece = on_piece,
        .stream_user = &s};
    struct rb_answer_result r = {0};
    st = rb_answer_respond(&ro, passages(docs, 2), 2, &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK(r.refused);
    CHECK_EQ_INT(r.refusal, RB_ANSWER_REFUSE_UNCITED);
    CHECK_EQ_INT(r.n_citations, 0);
    CHECK(r.withheld && strlen(r.withheld) > 0);
    CHECK(s.calls >= 2);
    CHECK(r.withheld && s.b.data && strcmp(s.b.data, r.withheld) == 0);
    CHECK_STR(r.mode_used, "local");
    CHECK_STR(r.model_hash, hex);
    CHECK_STR(r.template_id, "builtin/answer.en");
    CHECK(r.context_tokens > 0 && r.context_tokens < b->context_tokens);
    rb_answer_result_free(&r);

    /* the same in Chinese: the refusal speaks Chinese */
    static const char *zdocs[] = {"eval/cail2019-zh/docs/cail2019-874.txt"};
    memset(&r, 0, sizeof r);
    ro.question = "被告人如何进入周某家中?";
    ro.on_piece = NULL;
    st = rb_answer_respond(&ro, passages(zdocs, 1), 1, &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK(r.refused);
    CHECK_EQ_INT(r.lang, RB_ANSWER_LANG_ZH);
    CHECK(r.answer && rb_answer_detect_lang(r.answer, strlen(r.answer)) == RB_ANSWER_LANG_ZH);
    CHECK_STR(r.template_id, "builtin/answer.zh");
    rb_answer_result_free(&r);

    /* 3. the remote backend against a loopback server backed by the engine:
     * the streamed text is exactly what the engine produces for the same messages */
    struct oai_server srv = {.generate = engine_model, .user = b};
    if (!oai_server_start(&srv))
        CHECK_SKIP("cannot listen on loopback");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", srv.port);
    struct rb_answer_remote_options rmo = {.base_url = url, .model = "stories260K",
                                           .retries = 0, .context_tokens = 512};
    struct rb_answer_backend *rb = NULL;
    REQUIRE(rb_answer_backend_open_remote(&rmo, &rb, &err) == RB_OK);
    rb_buf_reset(&s.b);
    s.calls = 0;
    char *remote_text = NULL;
    st = rb_answer_backend_generate(rb, m, 1, &gp, on_piece, &s, &remote_text);
    CHECK_MSG(st == RB_OK, "%s", rb_answer_backend_errmsg(rb));
    CHECK_STR(remote_text, text);
    CHECK(s.calls >= 3);
    free(remote_text);
    /* and through respond: refused as uncited, over the network */
    memset(&r, 0, sizeof r);
    ro.question = "How long did in-flight intubation take compared with the control setting?";
    ro.backend = rb;
    st = rb_answer_respond(&ro, passages(docs, 2), 2, &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK(r.refused && r.refusal == RB_ANSWER_REFUSE_UNCITED);
    CHECK_STR(r.mode_used, "remote");
    rb_answer_result_free(&r);
    rb_answer_backend_close(rb);
    oai_server_stop(&srv);

    /* 4. hostile model files: clear errors */
    struct rb_answer_backend *x = NULL;
    lo.model_path = check_shared("eval/README.md");
    CHECK(rb_answer_backend_open_local(&lo, &x, &err) != RB_OK);
    CHECK(x == NULL);
    lo.model_path = check_shared("models/fixtures/bert-bge-128.q8_0.gguf");
    if (access(lo.model_path, R_OK) == 0) {
        CHECK_EQ_INT(rb_answer_backend_open_local(&lo, &x, &err), RB_ERR_MODEL);
        CHECK(strstr(err.text, "embedding") != NULL);
    }
    free(text);
    rb_buf_free(&s.b);
    rb_answer_backend_close(b);
    return check_finish();
}
