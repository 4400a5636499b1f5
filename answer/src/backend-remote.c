/* Remote generation backend: any OpenAI-compatible server (vLLM, TGI,
 * llama.cpp server, ragbox's own /v1) over libcurl, streaming with
 * Server-Sent Events, TLS, timeouts and retries with exponential back-off. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer-impl.h"

struct remote {
    struct rb_answer_backend base; /* first: the generic part */
    char *url;                     /* {base_url}/chat/completions */
    char *model;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    char *ca_file;
    bool insecure;
    long connect_timeout_ms, timeout_ms, idle_timeout_ms, backoff_ms;
    int retries;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------- SSE stream */

struct stream {
    struct rb_buf line;  /* partial SSE line */
    struct rb_buf text;  /* whole generated text */
    struct rb_buf body;  /* non-SSE response body (errors, non-streaming servers) */
    rb_answer_stream_fn on_piece;
    void *user;
    bool cancelled;
    bool done;
    bool streamed; /* at least one piece delivered: no retry after this */
    bool sse;      /* saw a "data:" line */
    enum rb_status err;
    struct rb_errmsg *errmsg;
    char finish_reason[32];
    /* idle watchdog */
    int64_t idle_ns;
    int64_t last_rx_ns;
    curl_off_t last_rx;
    bool idle_expired;
};

/* Aborts the transfer when no byte has arrived for idle_ns (also while
 * waiting for the response headers, which curl's low-speed limit misses). */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct stream *s = userp;
    (void)dltotal;
    (void)ultotal;
    int64_t now = rb_time_mono_ns();
    if (dlnow != s->last_rx || ulnow < 0) {
        s->last_rx = dlnow;
        s->last_rx_ns = now;
        return 0;
    }
    if (now - s->last_rx_ns > s->idle_ns) {
        s->idle_expired = true;
        return 1;
    }
    return 0;
}

/* Handles one complete SSE line. */
static void sse_line(struct stream *s, const char *line, size_t len)
{
    if (len >= 1 && line[len - 1] == '\r')
        len--;
    if (len < 5 || memcmp(line, "data:", 5) != 0)
        return; /* comments (":"), "event:", "id:", blank separators */
    s->sse = true;
    const char *p = line + 5;
    len -= 5;
    while (len && *p == ' ') {
        p++;
        len--;
    }
    if (len == 6 && memcmp(p, "[DONE]", 6) == 0) {
        s->done = true;
        return;
    }
    cJSON *j = NULL;
    struct rb_errmsg e;
    if (rb_json_parse(p, len, 32, &j, &e) != RB_OK) {
        s->err = rb_errmsg_set(s->errmsg, RB_ERR_FORMAT, "remote: malformed stream event: %s",
                               e.text);
        return;
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (error) {
        const char *m = cJSON_IsString(error) ? error->valuestring : rb_json_str(error, "message");
        s->err = rb_errmsg_set(s->errmsg, RB_ERR_MODEL, "remote: server error: %s",
                               m ? m : "(no message)");
        cJSON_Delete(j);
        return;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *delta = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "delta") : NULL;
    const char *piece = delta ? rb_json_str(delta, "content") : NULL;
    const char *fr = c0 ? rb_json_str(c0, "finish_reason") : NULL;
    if (fr)
        rb_strlcpy(s->finish_reason, fr, sizeof s->finish_reason);
    if (piece && *piece) {
        size_t pl = strlen(piece);
        if (rb_buf_append(&s->text, piece, pl) != RB_OK) {
            s->err = rb_errmsg_set(s->errmsg, RB_ERR_TOO_LARGE, "remote: answer too long");
        } else {
            s->streamed = true;
            if (s->on_piece && !s->on_piece(s->user, piece, pl))
                s->cancelled = true;
        }
    }
    cJSON_Delete(j);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct stream *s = userp;
    size_t n = size * nmemb;
    if (s->err != RB_OK || s->cancelled)
        return 0; /* aborts the transfer */
    /* Keep the raw body too (bounded) for error responses and non-SSE replies. */
    if (s->body.len < 1 << 20 && rb_buf_append(&s->body, data, n) != RB_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            sse_line(s, s->line.data ? s->line.data : "", s->line.len);
            rb_buf_reset(&s->line);
            if (s->err != RB_OK || s->cancelled)
                return 0;
        } else if (rb_buf_append(&s->line, data + i, 1) != RB_OK) {
            s->err = rb_errmsg_set(s->errmsg, RB_ERR_TOO_LARGE, "remote: stream line too long");
            return 0;
        }
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    long *ra = userp;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        long v = strtol(data + 12, NULL, 10);
        if (v > 0 && v < 3600)
            *ra = v * 1000;
    }
    return n;
}

/* --------------------------------------------------------------- request */

static char *build_body(struct remote *r, const struct rb_answer_message *msgs, size_t n,
                        const struct rb_answer_gen_params *p)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "messages");
    cJSON_AddStringToObject(root, "model", r->model);
    cJSON_AddBoolToObject(root, "stream", 1);
    cJSON_AddNumberToObject(root, "max_tokens", p->max_tokens);
    cJSON_AddNumberToObject(root, "temperature", p->temperature);
    cJSON_AddNumberToObject(root, "top_p", p->top_p);
    if (p->seed)
        cJSON_AddNumberToObject(root, "seed", (double)p->seed);
    for (size_t i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", msgs[i].role);
        cJSON_AddStringToObject(m, "content", msgs[i].content);
        cJSON_AddItemToArray(arr, m);
    }
    char *out = rb_json_print(root);
    cJSON_Delete(root);
    return out;
}

static bool transient_http(long code)
{
    return code == 408 || code == 429 || code == 502 || code == 503 || code == 504 || code == 500;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Error text of a non-2xx response: the server's JSON "error.message" or the body's start. */
static void http_error(struct remote *r, long code, struct stream *s)
{
    const char *msg = NULL;
    cJSON *j = NULL;
    struct rb_errmsg e;
    if (s->body.len && rb_json_parse(s->body.data, s->body.len, 16, &j, &e) == RB_OK) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        msg = cJSON_IsString(err) ? err->valuestring : err ? rb_json_str(err, "message") : NULL;
    }
    size_t bl = s->body.len > 200 ? rb_utf8_truncate(s->body.data, s->body.len, 200) : s->body.len;
    rb_errmsg_set(&r->base.err, code == 401 || code == 403 ? RB_ERR_AUTH : RB_ERR_NETWORK,
                  "remote: %s answered HTTP %ld: %.*s", r->url, code, msg ? (int)strlen(msg) : (int)bl,
                  msg ? msg : (bl ? s->body.data : ""));
    cJSON_Delete(j);
}

/* A non-streaming server replied with one JSON object: take choices[0].message.content. */
static enum rb_status plain_reply(struct remote *r, struct stream *s)
{
    cJSON *j = NULL;
    struct rb_errmsg e;
    if (rb_json_parse(s->body.data ? s->body.data : "", s->body.len, 32, &j, &e) != RB_OK)
        return rb_errmsg_set(&r->base.err, RB_ERR_FORMAT,
                             "remote: reply is neither an event stream nor JSON: %s", e.text);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    const char *content = msg ? rb_json_str(msg, "content") : NULL;
    if (!content) {
        cJSON_Delete(j);
        return rb_errmsg_set(&r->base.err, RB_ERR_FORMAT,
                             "remote: reply has no choices[0].message.content");
    }
    enum rb_status st = rb_buf_append_str(&s->text, content);
    if (st == RB_OK && s->on_piece && *content && !s->on_piece(s->user, content, strlen(content)))
        st = RB_ERR_CANCELLED;
    cJSON_Delete(j);
    return st;
}

static enum rb_status remote_generate(struct rb_answer_backend *b,
                                      const struct rb_answer_message *msgs, size_t n_msgs,
                                      const struct rb_answer_gen_params *params,
                                      rb_answer_stream_fn on_piece, void *user, char **text)
{
    struct remote *r = (struct remote *)b;
    char *body = build_body(r, msgs, n_msgs, params);
    if (!body)
        return rb_errmsg_set(&b->err, RB_ERR_NOMEM, "remote: out of memory");
    enum rb_status st = RB_ERR_NETWORK;
    long backoff = r->backoff_ms;
    for (int attempt = 0; attempt <= r->retries; attempt++) {
        struct stream s = {0};
        rb_buf_init(&s.line, 1 << 20);
        rb_buf_init(&s.text, 16 << 20);
        rb_buf_init(&s.body, 2 << 20);
        s.on_piece = on_piece;
        s.user = user;
        s.errmsg = &b->err;
        long ra = 0;
        CURL *h = curl_easy_init();
        struct curl_slist *hdr = NULL;
        if (!h) {
            st = rb_errmsg_set(&b->err, RB_ERR_NOMEM, "remote: curl_easy_init failed");
            break;
        }
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        hdr = curl_slist_append(hdr, "Accept: text/event-stream");
        if (r->auth_header)
            hdr = curl_slist_append(hdr, r->auth_header);
        char curl_err[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_URL, r->url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &ra);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        s.idle_ns = (int64_t)r->idle_timeout_ms * 1000000LL;
        s.last_rx_ns = rb_time_mono_ns();
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);
        if (r->ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
        CURLcode cc = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        /* a final line without '\n' */
        if (cc == CURLE_OK && s.line.len && s.err == RB_OK)
            sse_line(&s, s.line.data, s.line.len);

        bool retry = false;
        if (s.cancelled) {
            st = rb_errmsg_set(&b->err, RB_ERR_CANCELLED, "remote: generation cancelled");
        } else if (s.err != RB_OK) {
            st = s.err;
        } else if (s.idle_expired) {
            st = rb_errmsg_set(&b->err, RB_ERR_TIMEOUT,
                               "remote: %s sent nothing for %ld ms", r->url, r->idle_timeout_ms);
            retry = !s.streamed;
        } else if (cc != CURLE_OK) {
            st = rb_errmsg_set(&b->err,
                               cc == CURLE_OPERATION_TIMEDOUT ? RB_ERR_TIMEOUT : RB_ERR_NETWORK,
                               "remote: %s: %s", r->url,
                               curl_err[0] ? curl_err : curl_easy_strerror(cc));
            retry = !s.streamed && (cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
                                    cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
                                    cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
                                    cc == CURLE_COULDNT_RESOLVE_HOST);
        } else if (code < 200 || code >= 300) {
            http_error(r, code, &s);
            st = code == 401 || code == 403 ? RB_ERR_AUTH : RB_ERR_NETWORK;
            retry = transient_http(code);
        } else if (!s.sse) {
            st = plain_reply(r, &s);
        } else if (!s.done && !s.finish_reason[0]) {
            st = rb_errmsg_set(&b->err, RB_ERR_NETWORK,
                               "remote: the event stream ended before [DONE]");
            retry = !s.streamed;
        } else {
            st = RB_OK;
        }
        if (st == RB_OK && text) {
            *text = s.text.len ? rb_buf_steal(&s.text) : rb_strdup("");
            if (!*text)
                st = RB_ERR_NOMEM;
        }
        rb_buf_free(&s.line);
        rb_buf_free(&s.text);
        rb_buf_free(&s.body);
        if (!retry || attempt == r->retries)
            break;
        long wait = ra > 0 ? ra : backoff;
        RB_WARN("answer", "%s (attempt %d of %d); retrying in %ld ms", b->err.text, attempt + 1,
                r->retries + 1, wait);
        sleep_ms(wait);
        backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
    }
    free(body);
    return st;
}

static size_t remote_count(struct rb_answer_backend *b, const char *text, size_t len)
{
    (void)b;
    return rb__estimate_tokens(text, len);
}

static void remote_close(struct rb_answer_backend *b)
{
    struct remote *r = (struct remote *)b;
    free(r->url);
    free(r->model);
    free(r->auth_header);
    free(r->ca_file);
    free(r);
}

static const struct rb_answer_backend_ops remote_ops = {
    .name = "remote",
    .generate = remote_generate,
    .count_tokens = remote_count,
    .close = remote_close,
};

enum rb_status rb_answer_backend_open_remote(const struct rb_answer_remote_options *o,
                                             struct rb_answer_backend **out, struct rb_errmsg *err)
{
    *out = NULL;
    if (!o || !o->base_url || !*o->base_url || !o->model || !*o->model)
        return rb_errmsg_set(err, RB_ERR_INVALID, "remote backend: base_url and model are required");
    if (strncmp(o->base_url, "http://", 7) != 0 && strncmp(o->base_url, "https://", 8) != 0)
        return rb_errmsg_set(err, RB_ERR_INVALID,
                             "remote backend: base_url must start with http:// or https:// (%s)",
                             o->base_url);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return rb_errmsg_set(err, RB_ERR_NETWORK, "remote backend: curl_global_init: %s",
                             curl_easy_strerror(curl_init_rc));
    struct remote *r = calloc(1, sizeof *r);
    if (!r)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    r->base.ops = &remote_ops;
    size_t bl = strlen(o->base_url);
    while (bl > 0 && o->base_url[bl - 1] == '/')
        bl--;
    r->url = rb_asprintf("%.*s/chat/completions", (int)bl, o->base_url);
    r->model = rb_strdup(o->model);
    r->auth_header = o->api_key && *o->api_key ? rb_asprintf("Authorization: Bearer %s", o->api_key)
                                               : NULL;
    r->ca_file = o->ca_file ? rb_strdup(o->ca_file) : NULL;
    if (!r->url || !r->model || (o->api_key && *o->api_key && !r->auth_header) ||
        (o->ca_file && !r->ca_file)) {
        remote_close(&r->base);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    r->insecure = o->insecure;
    r->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 120000;
    r->idle_timeout_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 30000;
    r->retries = o->retries >= 0 ? o->retries : 3;
    if (r->retries > 10)
        r->retries = 10;
    r->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 250;
    r->base.context_tokens = o->context_tokens ? o->context_tokens : 8192;
    rb_strlcpy(r->base.model_id, o->model, sizeof r->base.model_id);
    r->base.model_hash[0] = '\0';
    *out = &r->base;
    return RB_OK;
}

/* ---------------------------------------------------------- generic entry */

enum rb_status rb_answer_backend_generate(struct rb_answer_backend *b,
                                          const struct rb_answer_message *msgs, size_t n_msgs,
                                          const struct rb_answer_gen_params *params,
                                          rb_answer_stream_fn on_piece, void *user, char **text)
{
    if (text)
        *text = NULL;
    if (!b || !msgs || n_msgs == 0)
        return RB_ERR_INVALID;
    struct rb_answer_gen_params p = {512, 0.0f, 1.0f, 0};
    if (params) {
        p = *params;
        if (p.max_tokens <= 0)
            p.max_tokens = 512;
        if (p.top_p <= 0 || p.top_p > 1)
            p.top_p = 1;
        if (p.temperature < 0)
            p.temperature = 0;
    }
    rb_errmsg_clear(&b->err);
    return b->ops->generate(b, msgs, n_msgs, &p, on_piece, user, text);
}

size_t rb_answer_backend_count_tokens(struct rb_answer_backend *b, const char *text, size_t len)
{
    return b && b->ops->count_tokens ? b->ops->count_tokens(b, text, len)
                                     : rb__estimate_tokens(text, len);
}

const char *rb_answer_backend_errmsg(const struct rb_answer_backend *b)
{
    return b ? b->err.text : "";
}

void rb_answer_backend_close(struct rb_answer_backend *b)
{
    if (b)
        b->ops->close(b);
}
