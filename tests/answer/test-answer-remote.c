/* The remote OpenAI-compatible backend against a real HTTP server on
 * loopback (libmicrohttpd, tests/answer/openai-server.h): SSE streaming
 * reassembled across odd read boundaries, a cited answer through the whole
 * respond step, retries with back-off honouring Retry-After, no retry on
 * 401, malformed streams, idle timeouts, refused connections, cancellation
 * and non-streaming servers. The server's model answers from the sources in
 * its prompt with ragbox's extractive scorer. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>

#include "check.h"

#include "openai-server.h"
#include "ragbox/answer.h"

/* ------------------------------------------------- the server-side "model" */

/* Reads "[n] label\ntext" blocks between "SOURCES:\n" and "\n\nQUESTION: " of
 * the last user message and answers with the best sentences, citing [n]. */
static bool extractive_model(void *user, const cJSON *req, struct rb_buf *pieces,
                             size_t *ends, size_t *n_pieces, size_t max, char *error,
                             size_t esize)
{
    (void)user;
    const cJSON *msgs = cJSON_GetObjectItem(req, "messages");
    const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    const char *content = last ? rb_json_str(last, "content") : NULL;
    const char *src = content ? strstr(content, "SOURCES:\n") : NULL;
    const char *q = content ? strstr(content, "\n\nQUESTION: ") : NULL;
    if (!src || !q || q < src) {
        snprintf(error, esize, "prompt without SOURCES/QUESTION");
        return false;
    }
    src += 9;
    struct rb_answer_passage p[32] = {{0}};
    size_t np = 0;
    const char *s = src;
    while (s < q && np < 32) {
        const char *nl = memchr(s, '\n', (size_t)(q - s));
        if (!nl)
            break;
        const char *next = s;
        /* the block ends at the next "\n[" label line or at QUESTION */
        const char *e = nl;
        while (e < q && !(e[0] == '\n' && e[1] == '\n' && e[2] == '[' && isdigit((unsigned char)e[3])))
            e++;
        p[np].text = rb_strndup(nl + 1, (size_t)(e - nl - 1));
        np++;
        s = e < q ? e + 2 : q;
        (void)next;
    }
    struct rb_answer_extract ex;
    if (rb_answer_extract(q + 12, p, np, NULL, &ex) != RB_OK) {
        snprintf(error, esize, "extract failed");
        return false;
    }
    *n_pieces = 0;
    for (size_t i = 0; i < ex.n; i++) {
        /* stream word by word, as a model does */
        char *t = rb_asprintf("%s [%zu] ", ex.sentence[i].text, ex.sentence[i].passage + 1);
        for (char *w = t; *w && *n_pieces < max;) {
            char *sp = strchr(w + 1, ' ');
            size_t len = sp ? (size_t)(sp - w) : strlen(w);
            (void)!rb_buf_append(pieces, w, len);
            ends[(*n_pieces)++] = pieces->len;
            w += len;
        }
        free(t);
    }
    rb_answer_extract_free(&ex);
    for (size_t i = 0; i < np; i++)
        free(p[i].text);
    return true;
}

static enum rb_status render(void *user, const char *context, const char *question,
                             enum rb_answer_lang lang, char **system, char **user_message)
{
    (void)user;
    *system = rb_strdup(lang == RB_ANSWER_LANG_ZH ? "仅根据资料回答，并用[n]标注来源。"
                                                  : "Answer only from the sources; cite [n].");
    *user_message = rb_asprintf("SOURCES:\n%s\n\nQUESTION: %s", context, question);
    return *system && *user_message ? RB_OK : RB_ERR_NOMEM;
}

struct sink {
    struct rb_buf b;
    int calls;
    int cancel_after;
};

static bool on_piece(void *user, const char *piece, size_t len)
{
    struct sink *s = user;
    s->calls++;
    if (rb_buf_append(&s->b, piece, len) != RB_OK)
        return false;
    return !(s->cancel_after && s->calls >= s->cancel_after);
}

static char *slurp(const char *rel)
{
    char *d = NULL;
    size_t n = 0;
    return rb_fs_read_file(check_shared(rel), 1 << 24, &d, &n) == RB_OK ? d : NULL;
}

static struct rb_answer_passage *sources(void)
{
    static const char *rel[] = {"eval/tatqa/docs/tatqa-001e29d7-77e9-4434-9a3d-f72ef640fa79.txt",
                                "eval/pubmedqa/docs/pmid-10135926.txt"};
    struct rb_answer_passage *p = calloc(2, sizeof *p);
    for (int i = 0; i < 2; i++) {
        p[i].chunk_id = 500 + i;
        p[i].document = rb_strdup(rb_path_basename(rel[i]));
        p[i].page = 7 + i;
        p[i].text = slurp(rel[i]);
        REQUIRE(p[i].text != NULL);
    }
    return p;
}

static struct rb_answer_backend *open_remote(int port, int retries, long idle_ms,
                                             const char *key)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", port);
    struct rb_answer_remote_options ro = {.base_url = url, .model = "ragbox-test",
                                          .api_key = key, .retries = retries,
                                          .backoff_ms = 50, .idle_timeout_ms = idle_ms,
                                          .timeout_ms = 20000, .context_tokens = 4096};
    struct rb_answer_backend *b = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_answer_backend_open_remote(&ro, &b, &err) == RB_OK);
    return b;
}

int main(void)
{
    struct oai_server srv = {.generate = extractive_model, .token = "s3cret"};
    if (!oai_server_start(&srv))
        CHECK_SKIP("cannot listen on loopback");
    struct rb_errmsg err;

    /* 1. a cited answer through the whole respond step, streamed */
    struct rb_answer_backend *b = open_remote(srv.port, 0, 5000, "s3cret");
    struct rb_answer_policy pol = {.min_evidence = 0.3, .disclaimer = "Not medical advice."};
    struct sink s = {0};
    rb_buf_init(&s.b, 0);
    struct rb_answer_respond_options o = {
        .question = "How long did in-flight intubation take compared with the control setting?",
        .backend = b, .policy = &pol, .render = render, .on_piece = on_piece, .stream_user = &s};
    struct rb_answer_result r = {0};
    enum rb_status st = rb_answer_respond(&o, sources(), 2, &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK_STR(r.mode_used, "remote");
    CHECK(!r.refused);
    CHECK_MSG(r.answer && strstr(r.answer, "25.9") != NULL, "answer: %s withheld: %s", r.answer, r.withheld ? r.withheld : "");
    CHECK(r.answer && strstr(r.answer, "Not medical advice.") != NULL);
    REQUIRE(r.n_citations >= 1);
    CHECK_STR(r.citation[0].document, "pmid-10135926.txt");
    CHECK_EQ_INT(r.citation[0].chunk_id, 501);
    CHECK_EQ_INT(r.citation[0].page, 8);
    CHECK(s.calls > 5); /* streamed in pieces */
    CHECK_STR(s.b.data, r.answer);
    CHECK_STR(srv.last_model, "ragbox-test");
    CHECK_EQ_INT(srv.last_max_tokens, 512);
    rb_answer_result_free(&r);

    /* 2. cancellation from the stream callback */
    rb_buf_reset(&s.b);
    s.calls = 0;
    s.cancel_after = 3;
    struct rb_answer_message m[2] = {
        {"system", "Answer only from the sources; cite [n]."},
        {"user", "SOURCES:\n[1] a\nThe mean time for in-flight intubation was 25.9 seconds."
                 "\n\nQUESTION: What was the mean time for in-flight intubation?"}};
    char *text = NULL;
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, on_piece, &s, &text),
                 RB_ERR_CANCELLED);
    CHECK_EQ_INT(s.calls, 3);
    s.cancel_after = 0;
    rb_answer_backend_close(b);

    /* 3. a wrong key: 401, no retry, the server's message in the error */
    b = open_remote(srv.port, 3, 5000, "wrong");
    int before = srv.requests;
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text), RB_ERR_AUTH);
    CHECK_EQ_INT(srv.requests - before, 1);
    CHECK_MSG(strstr(rb_answer_backend_errmsg(b), "invalid api key") != NULL, "%s",
              rb_answer_backend_errmsg(b));
    rb_answer_backend_close(b);

    /* 4. 503 twice with Retry-After: 1, then success */
    b = open_remote(srv.port, 3, 5000, "s3cret");
    srv.fail_first = srv.requests + 2;
    srv.fail_status = 503;
    before = srv.requests;
    int64_t t0 = rb_time_mono_ns();
    st = rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text);
    double secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    CHECK_MSG(st == RB_OK, "%s", rb_answer_backend_errmsg(b));
    CHECK_EQ_INT(srv.requests - before, 3);
    CHECK(secs >= 1.9); /* two waits of Retry-After: 1 */
    CHECK(text && strstr(text, "25.9 seconds. [1]") != NULL);
    free(text);
    text = NULL;
    /* 5. 503 beyond the retry budget: an error naming the status */
    srv.fail_first = srv.requests + 10;
    rb_answer_backend_close(b);
    b = open_remote(srv.port, 1, 5000, "s3cret");
    before = srv.requests;
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text), RB_ERR_NETWORK);
    CHECK_EQ_INT(srv.requests - before, 2);
    CHECK(strstr(rb_answer_backend_errmsg(b), "503") != NULL);
    srv.fail_first = 0;
    rb_answer_backend_close(b);

    /* 6. a malformed event */
    b = open_remote(srv.port, 0, 5000, "s3cret");
    srv.malformed = true;
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text), RB_ERR_FORMAT);
    CHECK(strstr(rb_answer_backend_errmsg(b), "malformed") != NULL);
    srv.malformed = false;
    rb_answer_backend_close(b);

    /* 7. a server that sends headers and then nothing: idle timeout */
    b = open_remote(srv.port, 0, 1000, "s3cret");
    srv.stall = true;
    t0 = rb_time_mono_ns();
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text), RB_ERR_TIMEOUT);
    secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    CHECK_MSG(secs < 5, "idle timeout took %.1f s: %s", secs, rb_answer_backend_errmsg(b));
    srv.stall = false;
    rb_answer_backend_close(b);

    /* 8. https against a plain-HTTP port: the TLS handshake fails cleanly */
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1", srv.port);
    struct rb_answer_remote_options ro = {.base_url = url, .model = "m", .retries = 0,
                                          .connect_timeout_ms = 2000, .timeout_ms = 4000};
    REQUIRE(rb_answer_backend_open_remote(&ro, &b, &err) == RB_OK);
    CHECK(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text) != RB_OK);
    rb_answer_backend_close(b);
    oai_server_stop(&srv);

    /* 9. nobody listening: retried with back-off, then a clear network error */
    b = open_remote(srv.port, 2, 5000, NULL);
    t0 = rb_time_mono_ns();
    CHECK_EQ_INT(rb_answer_backend_generate(b, m, 2, NULL, NULL, NULL, &text), RB_ERR_NETWORK);
    secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    CHECK(secs >= 0.14 && secs < 5); /* 50 + 100 ms back-off */
    rb_answer_backend_close(b);

    /* 10. bad options */
    struct rb_answer_remote_options bad = {.base_url = "ftp://x", .model = "m"};
    CHECK_EQ_INT(rb_answer_backend_open_remote(&bad, &b, &err), RB_ERR_INVALID);
    CHECK(b == NULL);
    rb_buf_free(&s.b);
    return check_finish();
}
