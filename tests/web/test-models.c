/* The web server with real models: a generation model (stories260K) and an
 * embedding model (bert-bge-128), against a real server on loopback driven
 * by libcurl.
 *   - /api/ask streams tokens as they are generated: the first "token" event
 *     arrives a measurable time before "done"; /v1/chat/completions with
 *     stream:true likewise;
 *   - a client that disconnects mid-stream stops the generation (the pieces
 *     generated for it stay below a full answer's, the cancellation counter
 *     moves, the worker is free again);
 *   - /v1/embeddings: vectors equal to the engine's own for the same text,
 *     string and array input, float and base64, every malformed request a
 *     clear 4xx, the openai scope enforced;
 *   - batch jobs from CSV, XLSX and JSON bodies, progress, results as JSONL,
 *     CSV and XLSX, malformed files refused, cancellation of a running job,
 *     and a job interrupted by a server restart resuming from its journal. */
#include <math.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "check.h"
#include "ragbox/answer.h"
#include "ragbox/engine.h"
#include "ragbox/index.h"
#include "ragbox/web.h"
#include "web-client.h"

static int port;
static char data_dir[1024];
static char gen_model[1024], emb_model[1024];
static char key_all[100], key_read[100];

#define QUESTION "Does the in-flight helicopter environment impair oral endotracheal intubation?"

/* ---------------------------------------------------------------- setup */

static void add_document(struct rb_index *idx, int64_t cid, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 1 << 20, &text, &len) == RB_OK);
    struct rb_index_chunk ch[64];
    size_t n = 0;
    for (char *p = text; *p && n < 64;) {
        char *e = strstr(p, "\n\n");
        if (e)
            *e = '\0';
        if (*p) {
            memset(&ch[n], 0, sizeof ch[n]);
            ch[n].text = p;
            ch[n].ordinal = (int32_t)n;
            ch[n].page_start = ch[n].page_end = 1;
            n++;
        }
        p = e ? e + 2 : p + strlen(p);
    }
    struct rb_index_document d = {.collection_id = cid,
                                  .source = rb_path_basename(path),
                                  .title = rb_path_basename(path),
                                  .mime = "text/plain",
                                  .language = "en",
                                  .size = (int64_t)len,
                                  .state = RB_INDEX_DOC_INDEXED};
    REQUIRE(rb_index_document_put(idx, &d, ch, n, NULL, NULL) == RB_OK);
    free(text);
}

static void setup(const struct rb_config *cfg)
{
    const char *shared = getenv("RAGBOX_SHARED");
    struct rb_index *idx = NULL;
    struct rb_index_options io = {.data_dir = data_dir};
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&io, &idx, &err) == RB_OK);
    int64_t med = 0, news = 0;
    REQUIRE(rb_index_collection_create(idx, "medical", NULL, &med) == RB_OK);
    REQUIRE(rb_index_collection_create(idx, "news", NULL, &news) == RB_OK);
    char path[2048];
    snprintf(path, sizeof path, "%s/eval/pubmedqa/docs/pmid-10135926.txt", shared);
    add_document(idx, med, path);
    snprintf(path, sizeof path, "%s/eval/pubmedqa/docs/pmid-10158597.txt", shared);
    if (rb_fs_exists(path))
        add_document(idx, news, path);
    rb_index_close(idx);
    char *db = rb_path_join(data_dir, "ragbox.db");
    struct rb_web_auth *a = NULL;
    struct rb_web_auth_options ao = {.db_path = db, .config = cfg};
    REQUIRE(rb_web_auth_open(&ao, &a, &err) == RB_OK);
    REQUIRE(rb_web_user_add(a, "root", RB_WEB_ROLE_ADMIN, "root-password", NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "alice-password", NULL) == RB_OK);
    REQUIRE(rb_web_grant_set(a, med, RB_WEB_PRINCIPAL_USER, "alice", true, false) == RB_OK);
    char *k = NULL;
    REQUIRE(rb_web_apikey_create(a, "alice", "all", RB_WEB_SCOPE_READ | RB_WEB_SCOPE_WRITE |
                                                        RB_WEB_SCOPE_OPENAI,
                                 &k, NULL) == RB_OK);
    rb_strlcpy(key_all, k, sizeof key_all);
    free(k);
    REQUIRE(rb_web_apikey_create(a, "alice", "read", RB_WEB_SCOPE_READ, &k, NULL) == RB_OK);
    rb_strlcpy(key_read, k, sizeof key_read);
    free(k);
    rb_web_auth_close(a);
    free(db);
}

static struct rb_web *start(const struct rb_config *cfg)
{
    struct rb_web_options o = {.data_dir = data_dir,
                               .config = cfg,
                               .listen = "127.0.0.1:0",
                               .model_path = gen_model,
                               .embedding_model_path = emb_model};
    struct rb_web *web = NULL;
    struct rb_errmsg err;
    enum rb_status st = rb_web_open(&o, &web, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    REQUIRE(web);
    port = rb_web_port(web);
    return web;
}

static void client(struct wc *c, const char *key)
{
    wc_init(c, "http", port);
    rb_strlcpy(c->bearer, key, sizeof c->bearer);
}

static bool has(const struct wc_reply *r, const char *s)
{
    return r->body.data && strstr(r->body.data, s) != NULL;
}

/* A number from the Prometheus text ("name value"). */
static double metric(const char *name)
{
    struct wc c;
    client(&c, key_all);
    struct wc_reply r;
    double v = -1;
    if (wc_json(&c, "GET", "/metrics", NULL, &r) == 200) {
        char pat[128];
        snprintf(pat, sizeof pat, "\n%s ", name);
        const char *p = strstr(r.body.data, pat);
        if (p)
            v = strtod(p + strlen(pat), NULL);
    }
    wc_reply_free(&r);
    wc_free(&c);
    return v;
}

/* ------------------------------------------------------------ streaming */

struct timed_stream {
    struct rb_buf body;
    int64_t t0, first_token_ns, done_ns;
    size_t tokens;
    size_t stop_after; /* abort the transfer after this many token events (0 = never) */
    const char *token_mark;
    const char *done_mark;
};

static size_t on_stream(char *p, size_t size, size_t n, void *ud)
{
    struct timed_stream *s = ud;
    size_t before = s->body.len;
    if (rb_buf_append(&s->body, p, size * n) != RB_OK)
        return 0;
    /* count the marks completed by this piece */
    const char *from = s->body.data + (before > 64 ? before - 64 : 0);
    size_t ml = strlen(s->token_mark);
    for (const char *q = from; (q = strstr(q, s->token_mark)) != NULL; q += ml) {
        if ((size_t)(q - s->body.data) + ml <= before)
            continue; /* counted with an earlier piece */
        s->tokens++;
        if (!s->first_token_ns)
            s->first_token_ns = rb_time_mono_ns();
    }
    if (!s->done_ns && strstr(from, s->done_mark))
        s->done_ns = rb_time_mono_ns();
    if (s->stop_after && s->tokens >= s->stop_after)
        return 0; /* the client goes away mid-stream */
    return size * n;
}

static long stream_post(const char *path, const char *json, struct timed_stream *s)
{
    CURL *k = curl_easy_init();
    char url[256], auth[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key_all);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    rb_buf_init(&s->body, 64 << 20);
    s->t0 = rb_time_mono_ns();
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(k);
    long status = 0;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR)
        fprintf(stderr, "stream %s: %s\n", path, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(k);
    if (!s->body.data && rb_buf_append_str(&s->body, "") != RB_OK)
        abort();
    return status;
}

static size_t full_pieces;

static void test_stream(void)
{
    struct timed_stream s = {.token_mark = "event: token", .done_mark = "event: done"};
    CHECK_EQ_INT(stream_post("/api/ask",
                             "{\"question\":\"" QUESTION "\",\"collection\":\"medical\","
                             "\"mode\":\"generate\"}",
                             &s),
                 200);
    CHECK(s.first_token_ns > 0 && s.done_ns > 0);
    double first_ms = (double)(s.first_token_ns - s.t0) / 1e6;
    double done_ms = (double)(s.done_ns - s.t0) / 1e6;
    fprintf(stderr, "  ask: %zu token events, first after %.1f ms, done after %.1f ms\n",
            s.tokens, first_ms, done_ms);
    CHECK_MSG(s.tokens > 10, "%zu token events", s.tokens);
    /* streamed as generated: the first token well before the end */
    CHECK_MSG(done_ms - first_ms > 20.0, "first token %.1f ms, done %.1f ms", first_ms, done_ms);
    CHECK(strstr(s.body.data, "event: citations") != NULL);
    CHECK(strstr(s.body.data, "\"mode\":\"local\"") != NULL);
    const char *sp = strstr(s.body.data, "\"streamed_pieces\":");
    REQUIRE(sp);
    full_pieces = (size_t)strtoul(sp + 18, NULL, 10);
    CHECK_EQ_INT(full_pieces, s.tokens);
    rb_buf_free(&s.body);

    /* OpenAI-compatible streaming: chunks as generated, [DONE] last */
    struct timed_stream v = {.token_mark = "chat.completion.chunk", .done_mark = "[DONE]"};
    CHECK_EQ_INT(stream_post("/v1/chat/completions",
                             "{\"model\":\"ragbox/medical\",\"stream\":true,\"messages\":[{\"role\":"
                             "\"user\",\"content\":\"" QUESTION "\"}]}",
                             &v),
                 200);
    CHECK(v.tokens > 10 && v.first_token_ns && v.done_ns);
    CHECK_MSG(v.done_ns - v.first_token_ns > 20000000, "v1 first chunk %.1f ms before [DONE]",
              (double)(v.done_ns - v.first_token_ns) / 1e6);
    CHECK(strstr(v.body.data, "\"finish_reason\":\"stop\"") != NULL);
    rb_buf_free(&v.body);

    /* generate without a model is refused up front elsewhere; unknown mode here */
    struct wc c;
    client(&c, key_all);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/ask", "{\"question\":\"x\",\"mode\":\"poetry\"}"), 400);
    wc_free(&c);
}

static void test_disconnect(void)
{
    double p0 = metric("ragbox_answer_pieces_total");
    double c0 = metric("ragbox_answer_cancelled_total");
    REQUIRE(p0 >= 0 && c0 >= 0);
    struct timed_stream s = {.token_mark = "event: token", .done_mark = "event: done",
                             .stop_after = 2};
    stream_post("/api/ask",
                "{\"question\":\"" QUESTION "\",\"collection\":\"medical\",\"mode\":\"generate\"}",
                &s);
    CHECK(s.tokens >= 2 && !s.done_ns);
    rb_buf_free(&s.body);
    /* the server notices at its next token and stops generating */
    double c1 = c0;
    for (int i = 0; i < 500 && c1 <= c0; i++) {
        usleep(20000);
        c1 = metric("ragbox_answer_cancelled_total");
    }
    CHECK_MSG(c1 == c0 + 1, "cancellations %.0f -> %.0f", c0, c1);
    double running = 1;
    for (int i = 0; i < 250 && running != 0; i++) {
        running = metric("ragbox_answer_running");
        if (running != 0)
            usleep(20000);
    }
    CHECK(running == 0);
    double p1 = metric("ragbox_answer_pieces_total");
    fprintf(stderr, "  disconnect after 2 tokens: %.0f pieces generated (a full answer: %zu)\n",
            p1 - p0, full_pieces);
    CHECK_MSG(p1 - p0 < (double)full_pieces, "%.0f pieces after disconnect, full %zu", p1 - p0,
              full_pieces);
    /* the server still answers */
    struct wc c;
    client(&c, key_all);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/health", NULL), 200);
    wc_free(&c);
}

/* ----------------------------------------------------------- embeddings */

static float *floats_of(const cJSON *arr, int *n)
{
    *n = cJSON_GetArraySize(arr);
    float *v = calloc((size_t)(*n ? *n : 1), sizeof *v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) v[i++] = (float)x->valuedouble;
    return v;
}

static void test_embeddings(void)
{
    struct rb_engine_model *m = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_engine_model_open(emb_model, NULL, &m, &err) == RB_OK);
    int dim = rb_engine_model_dim(m);
    const char *texts[2] = {"helicopter intubation", "飞行中的插管"};
    float *want = calloc((size_t)dim * 2, sizeof *want);
    REQUIRE(rb_engine_embed(m, texts, 2, want) == RB_OK);
    rb_engine_model_close(m);
    const char *base = strrchr(emb_model, '/') + 1;
    char model[256];
    snprintf(model, sizeof model, "%.*s", (int)(strlen(base) - 5), base);

    struct wc c;
    client(&c, key_all);
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "GET", "/v1/models", NULL, &r), 200);
    CHECK(has(&r, model));
    wc_reply_free(&r);
    char body[1024];
    /* array input, float */
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"input\":[\"%s\",\"%s\"]}", model, texts[0],
             texts[1]);
    CHECK_EQ_INT(wc_json(&c, "POST", "/v1/embeddings", body, &r), 200);
    cJSON *j = cJSON_Parse(r.body.data);
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    CHECK_EQ_INT(cJSON_GetArraySize(data), 2);
    for (int i = 0; i < 2 && i < cJSON_GetArraySize(data); i++) {
        const cJSON *e = cJSON_GetArrayItem(data, i);
        CHECK_EQ_INT((int)rb_json_num(e, "index", -1), i);
        int n = 0;
        float *v = floats_of(cJSON_GetObjectItem(e, "embedding"), &n);
        CHECK_EQ_INT(n, dim);
        double maxd = 0, norm = 0;
        for (int d = 0; d < n && d < dim; d++) {
            double diff = fabs((double)v[d] - (double)want[(size_t)i * (size_t)dim + (size_t)d]);
            maxd = diff > maxd ? diff : maxd;
            norm += (double)v[d] * v[d];
        }
        CHECK_MSG(maxd < 1e-6, "input %d differs from the engine by %g", i, maxd);
        CHECK(fabs(norm - 1.0) < 1e-3);
        free(v);
    }
    CHECK(rb_json_num(cJSON_GetObjectItem(j, "usage"), "prompt_tokens", 0) >= 2);
    CHECK(strcmp(rb_json_str(j, "model"), model) == 0);
    cJSON_Delete(j);
    wc_reply_free(&r);
    /* string input, base64: the same floats, little-endian */
    snprintf(body, sizeof body,
             "{\"model\":\"%s.gguf\",\"input\":\"%s\",\"encoding_format\":\"base64\"}", model,
             texts[0]);
    CHECK_EQ_INT(wc_json(&c, "POST", "/v1/embeddings", body, &r), 200);
    j = cJSON_Parse(r.body.data);
    const char *b64 =
        rb_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding");
    REQUIRE(b64);
    unsigned char *raw = malloc(strlen(b64));
    int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
    CHECK(got >= dim * 4);
    CHECK(memcmp(raw, want, (size_t)dim * 4) == 0);
    free(raw);
    cJSON_Delete(j);
    wc_reply_free(&r);
    /* malformed requests: clear 4xx */
    struct {
        const char *body;
        long status;
        const char *says;
    } bad[] = {
        {"{\"model\":\"%s\"}", 400, "input"},
        {"{\"model\":\"%s\",\"input\":\"\"}", 400, "input"},
        {"{\"model\":\"%s\",\"input\":[]}", 400, "input"},
        {"{\"model\":\"%s\",\"input\":[1,2,3]}", 400, "token arrays"},
        {"{\"model\":\"%s\",\"input\":{\"a\":1}}", 400, "input"},
        {"{\"model\":\"%s\",\"input\":\"x\",\"encoding_format\":\"hex\"}", 400, "encoding_format"},
        {"{\"model\":\"%s\",\"input\":\"x\",\"dimensions\":7}", 400, "dimensions"},
        {"{\"model\":\"gpt-4o\",\"input\":\"x\",\"x\":\"%s\"}", 404, "unknown embedding model"},
        {"[\"%s\"]", 400, ""},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(bad); i++) {
        snprintf(body, sizeof body, bad[i].body, model);
        CHECK_EQ_INT(wc_json(&c, "POST", "/v1/embeddings", body, &r), bad[i].status);
        CHECK_MSG(has(&r, bad[i].says), "case %zu: %s", i, r.body.data);
        wc_reply_free(&r);
    }
    /* 257 inputs: over the limit */
    struct rb_buf big;
    rb_buf_init(&big, 0);
    REQUIRE(rb_buf_printf(&big, "{\"model\":\"%s\",\"input\":[", model) == RB_OK);
    for (int i = 0; i < 257; i++)
        REQUIRE(rb_buf_printf(&big, "%s\"w%d\"", i ? "," : "", i) == RB_OK);
    REQUIRE(rb_buf_append_str(&big, "]}") == RB_OK);
    CHECK_EQ_INT(wc_json(&c, "POST", "/v1/embeddings", big.data, &r), 400);
    wc_reply_free(&r);
    rb_buf_free(&big);
    wc_free(&c);
    /* scope and authentication */
    client(&c, key_read);
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"input\":\"x\"}", model);
    CHECK_EQ_INT(wc_status(&c, "POST", "/v1/embeddings", body), 403);
    wc_free(&c);
    wc_init(&c, "http", port);
    CHECK_EQ_INT(wc_status(&c, "POST", "/v1/embeddings", body), 401);
    wc_free(&c);
    free(want);
}

/* ----------------------------------------------------------------- jobs */

static char *job_submit(struct wc *c, const char *query, const char *ctype, const char *body,
                        size_t len, long want)
{
    struct wc_reply r;
    char path[256];
    snprintf(path, sizeof path, "/api/jobs%s", query);
    long st = wc_send(c, "POST", path, ctype, body, len, NULL, &r);
    CHECK_MSG(st == want, "POST %s (%s): %ld %s", path, ctype, st, r.body.data);
    char *id = NULL;
    if (st == 201) {
        cJSON *j = cJSON_Parse(r.body.data);
        id = rb_strdup(rb_json_str(j, "id"));
        cJSON_Delete(j);
    }
    wc_reply_free(&r);
    return id;
}

/* Polls until the job leaves queued/running (or the time runs out). */
static char *job_wait(struct wc *c, const char *id, const char *state, int seconds)
{
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    char *last = NULL;
    for (int i = 0; i < seconds * 50; i++) {
        struct wc_reply r;
        CHECK_EQ_INT(wc_json(c, "GET", path, NULL, &r), 200);
        free(last);
        last = rb_strdup(r.body.data);
        char want[64];
        snprintf(want, sizeof want, "\"state\":\"%s\"", state);
        bool done = has(&r, want);
        wc_reply_free(&r);
        if (done)
            return last;
        usleep(20000);
    }
    CHECK_MSG(false, "job %s never reached %s: %s", id, state, last);
    return last;
}

static void test_jobs(void)
{
    struct wc c;
    client(&c, key_all);
    struct wc_reply r;
    /* CSV with an id column */
    const char *csv = "id,question\nq1,Does the helicopter environment impair intubation?\n"
                      "q2,\"What was the success rate, in flight?\"\n";
    char *id = job_submit(&c, "?collection=medical&mode=extractive", "text/csv", csv, strlen(csv),
                          201);
    REQUIRE(id);
    free(job_wait(&c, id, "done", 20));
    char path[256];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
    CHECK(has(&r, "\"total\":2") && has(&r, "\"done\":2") && has(&r, "\"progress\":1"));
    wc_reply_free(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/result?format=csv", id);
    CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
    CHECK(strncmp(r.body.data, "id,question,answer", 18) == 0);
    CHECK(has(&r, "q1,") && has(&r, "q2,") && has(&r, "pmid-10135926"));
    CHECK(strstr(r.headers.data, "text/csv") && strstr(r.headers.data, "attachment"));
    wc_reply_free(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/result?format=xlsx", id);
    CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
    CHECK(r.body.len > 100 && memcmp(r.body.data, "PK", 2) == 0);
    /* the downloaded workbook reads back with both rows */
    char xpath[1200];
    snprintf(xpath, sizeof xpath, "%s/../dl.xlsx", data_dir);
    REQUIRE(rb_fs_write_atomic(xpath, r.body.data, r.body.len) == RB_OK);
    struct rb_answer_table t = {0};
    struct rb_errmsg err;
    CHECK(rb_answer_table_read(xpath, &t, &err) == RB_OK && t.n_rows == 2);
    rb_answer_table_free(&t);
    wc_reply_free(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/result?format=pdf", id);
    CHECK_EQ_INT(wc_status(&c, "GET", path, NULL), 400);
    free(id);

    /* XLSX upload: a workbook made by the batch table writer */
    struct rb_answer_table q = {0};
    char *hdr[2] = {"id", "question"};
    char *cells[4] = {"x1", "How many intubations failed?", "x2", "Was the helicopter moving?"};
    q.header = hdr;
    q.cell = cells;
    q.n_cols = 2;
    q.n_rows = 2;
    snprintf(xpath, sizeof xpath, "%s/../q.xlsx", data_dir);
    REQUIRE(rb_answer_table_write(xpath, &q, &err) == RB_OK);
    char *xl = NULL;
    size_t xl_len = 0;
    REQUIRE(rb_fs_read_file(xpath, 1 << 20, &xl, &xl_len) == RB_OK);
    id = job_submit(&c, "?collection=medical&mode=extractive",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xl,
                    xl_len, 201);
    REQUIRE(id);
    free(job_wait(&c, id, "done", 20));
    snprintf(path, sizeof path, "/api/jobs/%s/result", id);
    CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
    CHECK(has(&r, "\"id\":\"x1\"") && has(&r, "\"id\":\"x2\""));
    wc_reply_free(&r);
    free(id);
    /* a corrupt workbook, a CSV without a question column, an empty body,
     * an unknown type, no collection, an unreadable collection: clear 4xx */
    free(job_submit(&c, "?collection=medical", /* cut in half: no central directory */
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xl,
                    xl_len / 2, 400));
    free(job_submit(&c, "?collection=medical", /* not a zip at all */
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "question\nx\n", 11, 400));
    free(xl);
    free(job_submit(&c, "?collection=medical", "text/csv", "id,text\n1,hello\n", 16, 400));
    free(job_submit(&c, "?collection=medical", "text/csv", "", 0, 400));
    free(job_submit(&c, "?collection=medical", "application/pdf", "%PDF", 4, 415));
    free(job_submit(&c, "", "text/csv", "question\nx\n", 11, 400));
    free(job_submit(&c, "?collection=news", "text/csv", "question\nx\n", 11, 404));
    free(job_submit(&c, "", "application/json", "{\"collection\":\"medical\",\"questions\":[]}",
                    39, 400));
    /* a read-only key may not submit */
    struct wc ro;
    client(&ro, key_read);
    free(job_submit(&ro, "?collection=medical", "text/csv", "question\nx\n", 11, 403));
    wc_free(&ro);

    /* cancel a running generate job */
    struct rb_buf many;
    rb_buf_init(&many, 0);
    REQUIRE(rb_buf_append_str(&many, "{\"collection\":\"medical\",\"mode\":\"generate\","
                                     "\"questions\":[") == RB_OK);
    for (int i = 0; i < 40; i++)
        REQUIRE(rb_buf_printf(&many, "%s\"" QUESTION " (%d)\"", i ? "," : "", i) == RB_OK);
    REQUIRE(rb_buf_append_str(&many, "]}") == RB_OK);
    id = job_submit(&c, "", "application/json", many.data, many.len, 201);
    rb_buf_free(&many);
    REQUIRE(id);
    free(job_wait(&c, id, "running", 20));
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    CHECK_EQ_INT(wc_json(&c, "DELETE", path, NULL, &r), 200);
    CHECK(has(&r, "cancelling"));
    wc_reply_free(&r);
    char *final = job_wait(&c, id, "cancelled", 30);
    CHECK(final && !strstr(final, "\"done\":40"));
    free(final);
    snprintf(path, sizeof path, "/api/jobs/%s/result", id);
    CHECK_EQ_INT(wc_status(&c, "GET", path, NULL), 409);
    free(id);
    wc_free(&c);
}

/* A job interrupted by a restart resumes from its journal. */
static void test_jobs_resume(const struct rb_config *cfg, struct rb_web **web)
{
    struct wc c;
    client(&c, key_all);
    struct rb_buf many;
    rb_buf_init(&many, 0);
    REQUIRE(rb_buf_append_str(&many, "question\n") == RB_OK);
    for (int i = 0; i < 400; i++)
        REQUIRE(rb_buf_printf(&many, "Was intubation in flight successful in case %d?\n", i) ==
                RB_OK);
    char *id = job_submit(&c, "?collection=medical&mode=extractive", "text/csv", many.data,
                          many.len, 201);
    rb_buf_free(&many);
    REQUIRE(id);
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    size_t done_before = 0;
    for (int i = 0; i < 1000 && done_before == 0; i++) {
        struct wc_reply r;
        CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
        cJSON *j = cJSON_Parse(r.body.data);
        done_before = (size_t)rb_json_num(j, "done", 0);
        cJSON_Delete(j);
        wc_reply_free(&r);
        if (!done_before)
            usleep(5000);
    }
    wc_free(&c);
    rb_web_close(*web); /* mid-job */
    *web = start(cfg);
    client(&c, key_all);
    char *last = job_wait(&c, id, "done", 25);
    CHECK(last && strstr(last, "\"done\":400") && strstr(last, "\"total\":400"));
    free(last);
    snprintf(path, sizeof path, "/api/jobs/%s/result", id);
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
    size_t lines = 0;
    for (const char *p = r.body.data; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    CHECK_EQ_INT(lines, 400);
    wc_reply_free(&r);
    fprintf(stderr, "  job resumed after a restart with %zu of 400 done\n", done_before);
    free(id);
    wc_free(&c);
}

int main(void)
{
    const char *tmp = getenv("RAGBOX_TEST_TMP"), *shared = getenv("RAGBOX_SHARED");
    if (!tmp || !shared)
        return 77;
    snprintf(gen_model, sizeof gen_model, "%s/models/real/stories260K.gguf", shared);
    snprintf(emb_model, sizeof emb_model, "%s/models/fixtures/bert-bge-128.f16.gguf", shared);
    if (!rb_fs_exists(gen_model) || !rb_fs_exists(emb_model))
        return 77;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    REQUIRE(system(cmd) == 0);
    snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
    REQUIRE(rb_fs_mkdirs(data_dir, 0700) == RB_OK);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct rb_config *cfg = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_config_parse("test",
                            "[web]\nargon2_t_cost = 1\nargon2_m_cost_kib = 1024\nthreads = 4\n"
                            "answer_workers = 2\njob_workers = 2\n[audit]\nsync = false\n",
                            &cfg, &err) == RB_OK);
    setup(cfg);
    (void)wc_upload; /* web-client.h helpers this test does not need */
    (void)wc_login;
    struct rb_web *web = start(cfg);
    test_stream();
    test_disconnect();
    test_embeddings();
    test_jobs();
    test_jobs_resume(cfg, &web);
    rb_web_close(web);
    rb_config_free(cfg);
    curl_global_cleanup();
    return check_finish();
}
