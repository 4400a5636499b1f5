/* A real OpenAI-compatible HTTP server on loopback for the remote backend's
 * tests (libmicrohttpd): POST /v1/chat/completions, streaming with
 * Server-Sent Events (written in small odd-sized pieces so the client must
 * reassemble lines across reads) or one JSON object when "stream" is false.
 * The text comes from a generator callback (the real engine in the tests).
 * Fault injection for the client's error paths: the first `fail_first`
 * requests answer `fail_status` (with Retry-After: 1 when 503), a required
 * bearer token, a server that accepts but never answers, a malformed stream. */
#ifndef RAGBOX_TESTS_OPENAI_SERVER_H
#define RAGBOX_TESTS_OPENAI_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "ragbox/common.h"

/* Produces the reply to the request's messages, appending text pieces to out
 * (each append is one SSE event). Returns false with *error set on failure. */
typedef bool (*oai_generate_fn)(void *user, const cJSON *request, struct rb_buf *pieces,
                                size_t *piece_ends, size_t *n_pieces, size_t max_pieces,
                                char *error, size_t error_size);

struct oai_server {
    struct MHD_Daemon *d;
    int port;
    oai_generate_fn generate;
    void *user;
    const char *token;   /* required bearer token, NULL = none */
    int fail_first;      /* this many requests fail with fail_status */
    int fail_status;
    bool malformed;      /* send a broken event */
    bool stall;          /* send headers then nothing */
    int requests;        /* requests seen */
    pthread_mutex_t mu;
    char last_model[128];
    int last_max_tokens;
    char *last_system; /* the last request's system and last user message (owned; */
    char *last_user;   /* oai_server_stop frees them), to check what a prompt carried */
};

struct oai_stream {
    char *body;
    size_t len, off;
    size_t chunk; /* bytes per callback */
    bool stall;
};

static ssize_t oai_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct oai_stream *s = cls;
    (void)pos;
    if (s->stall) {
        usleep(100000);
        return 0; /* nothing yet; MHD calls again */
    }
    if (s->off >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - s->off;
    if (n > s->chunk)
        n = s->chunk;
    if (n > max)
        n = max;
    memcpy(buf, s->body + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void oai_free_stream(void *cls)
{
    struct oai_stream *s = cls;
    free(s->body);
    free(s);
}

struct oai_req {
    struct rb_buf body;
};

static enum MHD_Result oai_send_json(struct MHD_Connection *c, unsigned code, const char *json)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (code == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result oai_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls)
{
    struct oai_server *srv = cls;
    (void)version;
    struct oai_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        rb_buf_init(&rq->body, 8 << 20);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rb_buf_append(&rq->body, upload, *upload_size) != RB_OK)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv->mu);
    int nth = ++srv->requests;
    pthread_mutex_unlock(&srv->mu);
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/chat/completions") != 0)
        return oai_send_json(c, 404, "{\"error\":{\"message\":\"not found\"}}");
    if (srv->token) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[256];
        snprintf(want, sizeof want, "Bearer %s", srv->token);
        if (!auth || strcmp(auth, want) != 0)
            return oai_send_json(c, 401, "{\"error\":{\"message\":\"invalid api key\"}}");
    }
    if (nth <= srv->fail_first)
        return oai_send_json(c, (unsigned)srv->fail_status,
                             "{\"error\":{\"message\":\"model is loading\"}}");
    cJSON *req = NULL;
    struct rb_errmsg e;
    if (rb_json_parse(rq->body.data ? rq->body.data : "", rq->body.len, 32, &req, &e) != RB_OK)
        return oai_send_json(c, 400, "{\"error\":{\"message\":\"bad json\"}}");
    pthread_mutex_lock(&srv->mu);
    rb_strlcpy(srv->last_model, rb_json_str(req, "model") ? rb_json_str(req, "model") : "",
               sizeof srv->last_model);
    srv->last_max_tokens = (int)rb_json_num(req, "max_tokens", -1);
    const cJSON *msg;
    cJSON_ArrayForEach(msg, cJSON_GetObjectItem(req, "messages"))
    {
        const char *role = rb_json_str(msg, "role"), *content = rb_json_str(msg, "content");
        char **slot = role && strcmp(role, "system") == 0 ? &srv->last_system
                      : role && strcmp(role, "user") == 0  ? &srv->last_user
                                                           : NULL;
        if (slot && content) {
            free(*slot);
            *slot = rb_strdup(content);
        }
    }
    pthread_mutex_unlock(&srv->mu);
    bool stream = rb_json_bool(req, "stream", false);
    struct rb_buf pieces;
    rb_buf_init(&pieces, 16 << 20);
    size_t ends[4096], n = 0;
    char error[256] = "";
    bool ok = srv->stall || srv->generate(srv->user, req, &pieces, ends, &n, 4096, error,
                                          sizeof error);
    cJSON_Delete(req);
    if (!ok) {
        rb_buf_free(&pieces);
        char msg[400];
        snprintf(msg, sizeof msg, "{\"error\":{\"message\":\"%s\"}}", error);
        return oai_send_json(c, 500, msg);
    }
    struct rb_buf out;
    rb_buf_init(&out, 64 << 20);
    if (!stream) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "chat.completion");
        cJSON *ch = cJSON_AddArrayToObject(o, "choices");
        cJSON *c0 = cJSON_CreateObject();
        cJSON *m = cJSON_AddObjectToObject(c0, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", pieces.data ? pieces.data : "");
        cJSON_AddStringToObject(c0, "finish_reason", "stop");
        cJSON_AddItemToArray(ch, c0);
        char *s = rb_json_print(o);
        cJSON_Delete(o);
        enum MHD_Result ret = oai_send_json(c, 200, s);
        free(s);
        rb_buf_free(&pieces);
        rb_buf_free(&out);
        return ret;
    }
    (void)!rb_buf_append_str(&out, ": ragbox test server\n\n");
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
        cJSON *ch = cJSON_AddArrayToObject(o, "choices");
        cJSON *c0 = cJSON_CreateObject();
        cJSON *d = cJSON_AddObjectToObject(c0, "delta");
        char *piece = rb_strndup(pieces.data + start, ends[i] - start);
        cJSON_AddStringToObject(d, "content", piece);
        free(piece);
        cJSON_AddNullToObject(c0, "finish_reason");
        cJSON_AddItemToArray(ch, c0);
        char *s = rb_json_print(o);
        cJSON_Delete(o);
        (void)!rb_buf_printf(&out, "data: %s\r\n\r\n", s);
        free(s);
        start = ends[i];
    }
    if (srv->malformed)
        (void)!rb_buf_append_str(&out, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"\n\n");
    (void)!rb_buf_append_str(&out, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}"
                                   "\n\ndata: [DONE]\n\n");
    rb_buf_free(&pieces);
    struct oai_stream *s = calloc(1, sizeof *s);
    s->len = out.len;
    s->body = rb_buf_steal(&out);
    s->chunk = 7; /* lines split across many reads */
    s->stall = srv->stall;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, oai_reader, s, oai_free_stream);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void oai_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct oai_req *rq = *con_cls;
    if (rq) {
        rb_buf_free(&rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

/* Starts on an ephemeral loopback port; false when the server cannot start. */
static bool oai_server_start(struct oai_server *srv)
{
    pthread_mutex_init(&srv->mu, NULL);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                  MHD_USE_ERROR_LOG,
                              0, NULL, NULL, oai_handler, srv, MHD_OPTION_SOCK_ADDR, &addr,
                              MHD_OPTION_NOTIFY_COMPLETED, oai_completed, srv,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!srv->d)
        return false;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    return srv->port > 0;
}

static void oai_server_stop(struct oai_server *srv)
{
    if (srv->d)
        MHD_stop_daemon(srv->d);
    srv->d = NULL;
    free(srv->last_system);
    free(srv->last_user);
    srv->last_system = srv->last_user = NULL;
    pthread_mutex_destroy(&srv->mu);
}

#endif
