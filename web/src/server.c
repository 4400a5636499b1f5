/* The HTTP server: libmicrohttpd daemon, request lifecycle, limits, router,
 * authentication of callers, security headers, metrics, login throttling. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "web-impl.h"

/* Latency histogram upper bounds, seconds. */
static const double lat_bounds[WEB_LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "            \
    "base-uri 'none'"

/* ============================================================ responses */

void rb__web_headers(struct web_request *req, struct MHD_Response *r, bool api)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    if (api)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    if (req->web->tls)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

static enum MHD_Result queue(struct web_request *req, int status, struct MHD_Response *r)
{
    req->status = status;
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result rb__web_send(struct web_request *req, int status, const char *content_type,
                             const void *body, size_t len, bool copy)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", content_type);
    rb__web_headers(req, r, strncmp(req->url, "/api/", 5) == 0 ||
                                     strncmp(req->url, "/v1/", 4) == 0 ||
                                     strcmp(req->url, "/metrics") == 0);
    return queue(req, status, r);
}

static enum MHD_Result send_owned(struct web_request *req, int status, const char *ctype,
                                  char *text, const char *extra_name, const char *extra_value)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    if (extra_name)
        MHD_add_response_header(r, extra_name, extra_value);
    rb__web_headers(req, r, true);
    return queue(req, status, r);
}

enum MHD_Result rb__web_json(struct web_request *req, int status, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text)
        return rb__web_send(req, 500, "application/json",
                            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}",
                            60, false);
    return send_owned(req, status, "application/json; charset=utf-8", text, NULL, NULL);
}

enum MHD_Result rb__web_error(struct web_request *req, int status, const char *code,
                              const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote user input: keep them valid UTF-8 for JSON. */
    size_t n = rb_utf8_truncate(msg, strlen(msg), sizeof msg - 1);
    msg[n] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", rb_utf8_valid(msg, n) ? msg : "invalid request");
    return rb__web_json(req, status, o);
}

enum MHD_Result rb__web_status(struct web_request *req, enum rb_status st, const char *msg)
{
    int http = 500;
    const char *code = "internal";
    switch (st) {
    case RB_ERR_INVALID:
    case RB_ERR_FORMAT:
    case RB_ERR_ENCODING:
    case RB_ERR_DIMENSION:
        http = 400, code = "invalid";
        break;
    case RB_ERR_NOT_FOUND:
        http = 404, code = "not_found";
        break;
    case RB_ERR_EXISTS:
        http = 409, code = "exists";
        break;
    case RB_ERR_TOO_LARGE:
        http = 413, code = "too_large";
        break;
    case RB_ERR_DENIED:
        http = 403, code = "forbidden";
        break;
    case RB_ERR_AUTH:
        http = 401, code = "unauthorized";
        break;
    case RB_ERR_LIMIT:
    case RB_ERR_BUSY:
        http = 429, code = "busy";
        break;
    case RB_ERR_UNSUPPORTED:
        http = 501, code = "unsupported";
        break;
    case RB_ERR_TIMEOUT:
        http = 504, code = "timeout";
        break;
    default:
        break;
    }
    if (http >= 500)
        RB_ERROR("web", "%s %s: %s", req->method, req->url, msg ? msg : rb_status_str(st));
    /* 5xx details stay in the log: they may name files or SQL. */
    return rb__web_error(req, http, code, "%s",
                         http >= 500 ? rb_status_str(st) : (msg && *msg ? msg : rb_status_str(st)));
}

cJSON *rb__web_body_json(struct web_request *req, enum MHD_Result *ret)
{
    const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        *ret = rb__web_error(req, 415, "unsupported_media_type",
                             "request body must be application/json");
        return NULL;
    }
    if (req->body.len == 0) {
        *ret = rb__web_error(req, 400, "invalid", "empty request body");
        return NULL;
    }
    if (!rb_utf8_valid(req->body.data, req->body.len)) {
        *ret = rb__web_error(req, 400, "invalid", "request body is not valid UTF-8");
        return NULL;
    }
    cJSON *root = NULL;
    struct rb_errmsg err;
    enum rb_status st = rb_json_parse(req->body.data, req->body.len, req->web->json_depth, &root,
                                      &err);
    if (st != RB_OK) {
        *ret = rb__web_error(req, 400, "invalid", "%s", err.text);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *ret = rb__web_error(req, 400, "invalid", "request body must be a JSON object");
        return NULL;
    }
    return root;
}

const char *rb__web_query(struct web_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ============================================================= throttle */

static struct web_throttle_entry *throttle_find(struct web_throttle *t, const char *key,
                                                bool create, int64_t now)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->entries[i].key, key) == 0)
            return &t->entries[i];
    if (!create)
        return NULL;
    if (t->n == t->cap) {
        /* Bounded: at 16384 entries reuse the least recently touched one. */
        if (t->cap >= 16384) {
            size_t old = 0;
            for (size_t i = 1; i < t->n; i++)
                if (t->entries[i].last_us < t->entries[old].last_us)
                    old = i;
            memset(&t->entries[old], 0, sizeof t->entries[old]);
            rb_strlcpy(t->entries[old].key, key, sizeof t->entries[old].key);
            t->entries[old].last_us = now;
            return &t->entries[old];
        }
        size_t nc = t->cap ? t->cap * 2 : 64;
        struct web_throttle_entry *g = realloc(t->entries, nc * sizeof *g);
        if (!g)
            return NULL;
        t->entries = g;
        t->cap = nc;
    }
    struct web_throttle_entry *e = &t->entries[t->n++];
    memset(e, 0, sizeof *e);
    rb_strlcpy(e->key, key, sizeof e->key);
    e->last_us = now;
    return e;
}

enum rb_status rb__web_throttle_check(struct web_throttle *t, const char *key, int64_t now,
                                      int *retry_s)
{
    pthread_mutex_lock(&t->lock);
    struct web_throttle_entry *e = throttle_find(t, key, false, now);
    enum rb_status st = RB_OK;
    if (e && e->until_us > now) {
        *retry_s = (int)((e->until_us - now + 999999) / 1000000);
        st = RB_ERR_LIMIT;
    }
    pthread_mutex_unlock(&t->lock);
    return st;
}

void rb__web_throttle_record(struct web_throttle *t, const char *key, bool success,
                             int free_attempts, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    struct web_throttle_entry *e = throttle_find(t, key, !success, now);
    if (e) {
        if (success) {
            e->failures = 0;
            e->until_us = 0;
        } else {
            e->failures++;
            e->last_us = now;
            int over = e->failures - free_attempts;
            if (over > 0) {
                /* Exponential back-off: 1 s, 2 s, 4 s ... capped. */
                int64_t d = over > 30 ? t->backoff_max_us : ((int64_t)1000000 << (over - 1));
                if (d > t->backoff_max_us)
                    d = t->backoff_max_us;
                e->until_us = now + d;
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
}

/* ============================================================== routing */

/* Matches path against pattern; fills params (owned copies). */
static bool route_match(const char *pattern, const char *path, char **params, int *n_params)
{
    *n_params = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *ue = strchr(u, '/');
            if (!ue)
                ue = u + strlen(u);
            if (!pe || ue == u || *n_params >= WEB_MAX_PARAMS)
                goto nomatch;
            params[(*n_params)++] = rb_strndup(u, (size_t)(ue - u));
            p = pe + 1;
            u = ue;
            continue;
        }
        if (*p != *u)
            goto nomatch;
        p++;
        u++;
    }
    if (*p == '\0' && *u == '\0')
        return true;
nomatch:
    for (int i = 0; i < *n_params; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    *n_params = 0;
    return false;
}

/* ================================================================ audit */

void rb__web_audit(struct web_request *req, const char *action, const char *target,
                   const char *outcome)
{
    const char *user = req->caller.authenticated ? req->caller.user.name : NULL;
    RB_INFO("web.audit", "action=%s actor=%s ip=%s target=%s outcome=%s", action,
            user ? user : "-", req->ip, target ? target : "-", outcome);
#ifdef RB_WEB_HAVE_AUDIT
    enum rb_audit_action a = RB_AUDIT_ADMIN_CHANGE;
    if (strcmp(outcome, "denied") == 0)
        a = RB_AUDIT_DENIAL;
    else if (strcmp(action, "auth.login") == 0)
        a = strcmp(outcome, "ok") == 0 ? RB_AUDIT_LOGIN : RB_AUDIT_LOGIN_FAILURE;
    else if (strcmp(action, "auth.logout") == 0)
        a = RB_AUDIT_LOGOUT;
    else if (strstr(action, ".delete"))
        a = RB_AUDIT_DELETION;
    else if (strstr(action, ".export"))
        a = RB_AUDIT_EXPORT;
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "event", action);
    cJSON_AddStringToObject(details, "method", req->method);
    if (req->route)
        cJSON_AddStringToObject(details, "route", req->route->pattern);
    cJSON_AddStringToObject(details, "auth", req->caller.via_key ? "api_key" : "session");
    /* A failed login names the account tried: it goes in target, as typed. */
    struct rb_audit_event ev = {.action = a,
                                .user = user,
                                .client = req->ip,
                                .target = target,
                                .outcome = outcome,
                                .latency_ms = -1,
                                .details = details};
    if (req->web->audit && rb_audit_append(req->web->audit, &ev, NULL) != RB_OK)
        RB_ERROR("web", "audit append failed: %s", rb_audit_errmsg(req->web->audit));
    cJSON_Delete(details);
#endif
}

void rb__web_audit_access(struct web_request *req, bool search, const char *collections,
                          const char *query, const int64_t *chunk_ids, size_t n_chunks,
                          int64_t latency_ms)
{
#ifdef RB_WEB_HAVE_AUDIT
    if (!req->web->audit)
        return;
    struct rb_audit_chunk *chunks = n_chunks ? rb_calloc_array(n_chunks, sizeof *chunks) : NULL;
    for (size_t i = 0; chunks && i < n_chunks; i++)
        chunks[i].chunk_id = chunk_ids[i];
    struct rb_audit_event ev = {.action = search ? RB_AUDIT_SEARCH : RB_AUDIT_DOCUMENT_VIEW,
                                .user = req->caller.user.name,
                                .client = req->ip,
                                .collection = collections,
                                .query = query,
                                .chunks = chunks,
                                .n_chunks = chunks ? n_chunks : 0,
                                .outcome = RB_AUDIT_OUTCOME_OK,
                                .latency_ms = latency_ms};
    if (rb_audit_append(req->web->audit, &ev, NULL) != RB_OK)
        RB_ERROR("web", "audit append failed: %s", rb_audit_errmsg(req->web->audit));
    free(chunks);
#else
    (void)req, (void)search, (void)collections, (void)query, (void)chunk_ids, (void)n_chunks,
        (void)latency_ms;
#endif
}

/* ========================================================= request flow */

static void client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
    rb_strlcpy(out, "?", size);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static bool method_changes_state(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

/* Same-origin check for browsers: an Origin header, when present on a
 * state-changing request, must name this host. */
static bool origin_ok(struct web_request *req)
{
    const char *origin = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return true;
    const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Host");
    if (!host)
        return false;
    const char *sep = strstr(origin, "://");
    if (!sep)
        return false;
    return strcmp(sep + 3, host) == 0;
}

static void authenticate(struct web_request *req)
{
    struct web_caller *c = &req->caller;
    const char *authz =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        const char *key = authz + 7;
        while (*key == ' ')
            key++;
        c->via_key = true; /* presented: a bad key is a 401 even on public routes */
        if (rb_web_apikey_check(req->web->auth, key, &c->user, &c->scopes, NULL) == RB_OK)
            c->authenticated = true;
        return;
    }
    const char *sid = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, "rb_session");
    if (sid && rb_web_session_check(req->web->auth, sid, &c->user, c->csrf) == RB_OK) {
        c->authenticated = true;
        c->via_session = true;
        c->scopes = RB_WEB_SCOPE_READ | RB_WEB_SCOPE_WRITE | RB_WEB_SCOPE_ADMIN;
        rb_strlcpy(c->session_id, sid, sizeof c->session_id);
    }
}

static enum MHD_Result serve_asset(struct web_request *req)
{
    const char *path = strcmp(req->url, "/") == 0 ? "/index.html" : req->url;
    for (size_t i = 0; i < rb__web_n_assets; i++) {
        if (strcmp(rb__web_assets[i].path, path) == 0) {
            struct MHD_Response *r = MHD_create_response_from_buffer(
                rb__web_assets[i].len, (void *)rb__web_assets[i].data, MHD_RESPMEM_PERSISTENT);
            if (!r)
                return MHD_NO;
            MHD_add_response_header(r, "Content-Type", rb__web_assets[i].content_type);
            MHD_add_response_header(r, "Cache-Control", "no-cache");
            rb__web_headers(req, r, false);
            return queue(req, 200, r);
        }
    }
    return rb__web_error(req, 404, "not_found", "no such page");
}

/* Finds the route (path first, then method): false when none. */
static bool route_lookup(struct web_request *req, bool *path_matched)
{
    *path_matched = false;
    for (size_t i = 0; i < rb__web_n_routes; i++) {
        char *params[WEB_MAX_PARAMS] = {0};
        int n = 0;
        if (!route_match(rb__web_routes[i].pattern, req->url, params, &n))
            continue;
        *path_matched = true;
        if (strcmp(rb__web_routes[i].method, req->method) != 0) {
            for (int k = 0; k < n; k++)
                free(params[k]);
            continue;
        }
        req->route = &rb__web_routes[i];
        req->route_index = i;
        memcpy(req->params, params, sizeof params);
        return true;
    }
    return false;
}

/* Authentication, role, scope, origin and CSRF checks of a routed request.
 * Returns true when it may proceed; otherwise a reply is queued in *ret. */
static bool access_checks(struct web_request *req, enum MHD_Result *ret)
{
    const struct web_route *rt = req->route;
    authenticate(req);
    struct web_caller *c = &req->caller;
    if (c->via_key && !c->authenticated) {
        rb__web_audit(req, "auth.apikey", NULL, "denied");
        *ret = rb__web_error(req, 401, "unauthorized", "invalid or revoked API key");
        return false;
    }
    if (rt->access != WEB_PUBLIC) {
        if (!c->authenticated) {
            *ret = rb__web_error(req, 401, "unauthorized", "log in or present an API key");
            return false;
        }
        if (c->via_key && !(c->scopes & rt->scope)) {
            rb__web_audit(req, "auth.scope", rt->pattern, "denied");
            *ret = rb__web_error(req, 403, "forbidden", "this API key lacks the needed scope");
            return false;
        }
        if ((rt->access == WEB_ADMIN && c->user.role != RB_WEB_ROLE_ADMIN) ||
            (rt->access == WEB_AUDITOR && c->user.role != RB_WEB_ROLE_ADMIN &&
             c->user.role != RB_WEB_ROLE_AUDITOR)) {
            rb__web_audit(req, "auth.role", rt->pattern, "denied");
            *ret = rb__web_error(req, 403, "forbidden", "your role may not do this");
            return false;
        }
    }
    if (method_changes_state(req->method)) {
        if (!origin_ok(req)) {
            rb__web_audit(req, "auth.origin", rt->pattern, "denied");
            *ret = rb__web_error(req, 403, "forbidden", "cross-origin request refused");
            return false;
        }
        if (c->via_session) {
            const char *tok =
                MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-CSRF-Token");
            if (!tok || strlen(tok) != 64 || CRYPTO_memcmp(tok, c->csrf, 64) != 0) {
                rb__web_audit(req, "auth.csrf", rt->pattern, "denied");
                *ret = rb__web_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
                return false;
            }
        }
    }
    return true;
}

static enum MHD_Result dispatch(struct web_request *req)
{
    struct rb_web *web = req->web;
    if (req->body_too_large)
        return rb__web_error(req, 413, "too_large", "request body exceeds %zu bytes",
                             req->route && req->route->upload ? web->max_upload : req->body_limit);
    if (req->checked) /* streamed uploads were checked before their body */
        return req->route->handler(req);
    bool path_matched = false;
    if (!req->route && !route_lookup(req, &path_matched)) {
        if (path_matched)
            return rb__web_error(req, 405, "method_not_allowed", "method %s not allowed here",
                                 strcmp(req->method, "GET") == 0 ? "GET" : "used");
        if ((strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
            strncmp(req->url, "/api/", 5) != 0 && strncmp(req->url, "/v1/", 4) != 0)
            return serve_asset(req);
        return rb__web_error(req, 404, "not_found", "no such endpoint");
    }
    enum MHD_Result ret;
    if (!access_checks(req, &ret))
        return ret;
    return req->route->handler(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct rb_web *web = cls;
    struct web_request *req = *req_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->web = web;
        req->conn = conn;
        req->method = method;
        req->url = url;
        req->start_ns = rb_time_mono_ns();
        req->body_limit = web->max_body;
        client_ip(conn, req->ip, sizeof req->ip);
        *req_cls = req;
        /* Refuse an announced oversize body before reading it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        int64_t announced = 0;
        if (cl && (rb_parse_i64(cl, &announced) != RB_OK || announced < 0)) {
            return rb__web_error(req, 400, "invalid", "bad Content-Length");
        }
        bool path_matched = false;
        bool routed = route_lookup(req, &path_matched);
        /* Question files for batch jobs (CSV/XLSX) may be larger than a JSON body. */
        if (routed && req->route->handler == rb__web_jobs_submit)
            req->body_limit = web->max_job_body;
        rb_buf_init(&req->body, req->body_limit + 1);
        if (routed && req->route->upload) {
            /* A streamed upload: check who may send it before reading it. */
            if ((uint64_t)announced > web->max_upload) {
                pthread_mutex_lock(&web->metrics.lock);
                web->metrics.rejected_body++;
                pthread_mutex_unlock(&web->metrics.lock);
                /* A little over the limit: read and discard it, so the client
                 * gets the 413 (closing with unread data resets the socket and
                 * the reply is lost). Far over: refuse at once. */
                if ((uint64_t)announced <= web->max_upload + WEB_DRAIN_MAX) {
                    req->body_too_large = true;
                    return MHD_YES;
                }
                return rb__web_error(req, 413, "too_large", "upload exceeds %zu bytes",
                                     web->max_upload);
            }
            enum MHD_Result ret;
            if (!access_checks(req, &ret))
                return ret;
            req->checked = true;
            return rb__web_upload_begin(req);
        }
        if ((uint64_t)announced > req->body_limit) {
            pthread_mutex_lock(&web->metrics.lock);
            web->metrics.rejected_body++;
            pthread_mutex_unlock(&web->metrics.lock);
            if ((uint64_t)announced <= req->body_limit + WEB_DRAIN_MAX) {
                req->body_too_large = true; /* drained, then 413 (see above) */
                return MHD_YES;
            }
            return rb__web_error(req, 413, "too_large", "request body exceeds %zu bytes",
                                 web->max_body);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* Discarding an oversize body is bounded too: past the drain allowance
         * the connection is dropped. */
        if (req->body_too_large) {
            req->drained += *upload_size;
            if (req->drained > WEB_DRAIN_MAX)
                return MHD_NO;
        }
        if (req->upload) {
            if (!req->status)
                rb__web_upload_data(req, upload_data, *upload_size);
        } else if (!req->body_too_large) {
            if (req->body.len + *upload_size > req->body_limit ||
                rb_buf_append(&req->body, upload_data, *upload_size) != RB_OK)
                req->body_too_large = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->status)
        return MHD_YES; /* already answered (e.g. early 413) */
    return dispatch(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct rb_web *web = cls;
    struct web_request *req = *req_cls;
    if (!req)
        return;
    if (req->status) {
        double secs = (double)(rb_time_mono_ns() - req->start_ns) / 1e9;
        struct web_metrics *m = &web->metrics;
        size_t cls_idx = (size_t)(req->status / 100);
        if (cls_idx > 5)
            cls_idx = 5;
        size_t route = req->route ? req->route_index : rb__web_n_routes;
        pthread_mutex_lock(&m->lock);
        m->count_by_route_status[route * 6 + cls_idx]++;
        size_t b = 0;
        while (b < WEB_LAT_BUCKETS && secs > lat_bounds[b])
            b++;
        m->lat_bucket[b]++;
        m->lat_sum_s += secs;
        m->lat_count++;
        if (req->status >= 500)
            m->errors++;
        if (req->status == 401 || req->status == 403)
            m->denials++;
        pthread_mutex_unlock(&m->lock);
    }
    rb__web_upload_cleanup(req);
    for (int i = 0; i < WEB_MAX_PARAMS; i++)
        free(req->params[i]);
    rb_buf_free(&req->body);
    free(req);
    *req_cls = NULL;
}

/* Appends the core metrics to b (Prometheus text format). */
enum rb_status rb__web_metrics_core(struct rb_web *web, struct rb_buf *b);
enum rb_status rb__web_metrics_core(struct rb_web *web, struct rb_buf *b)
{
    struct web_metrics *m = &web->metrics;
    static const char *classes[6] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
    enum rb_status st = rb_buf_append_str(
        b, "# HELP ragbox_http_requests_total HTTP requests by route pattern and status class.\n"
           "# TYPE ragbox_http_requests_total counter\n");
    pthread_mutex_lock(&m->lock);
    for (size_t r = 0; r <= rb__web_n_routes && st == RB_OK; r++) {
        for (size_t c = 0; c < 6 && st == RB_OK; c++) {
            uint64_t v = m->count_by_route_status[r * 6 + c];
            if (!v)
                continue;
            const char *route = r < rb__web_n_routes ? rb__web_routes[r].pattern : "unmatched";
            const char *method = r < rb__web_n_routes ? rb__web_routes[r].method : "";
            st = rb_buf_printf(b,
                               "ragbox_http_requests_total{method=\"%s\",route=\"%s\","
                               "status=\"%s\"} %llu\n",
                               method, route, classes[c], (unsigned long long)v);
        }
    }
    if (st == RB_OK)
        st = rb_buf_append_str(b, "# HELP ragbox_http_request_duration_seconds Request latency.\n"
                                  "# TYPE ragbox_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < WEB_LAT_BUCKETS && st == RB_OK; i++) {
        cum += m->lat_bucket[i];
        st = rb_buf_printf(b, "ragbox_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                           lat_bounds[i], (unsigned long long)cum);
    }
    cum += m->lat_bucket[WEB_LAT_BUCKETS];
    if (st == RB_OK)
        st = rb_buf_printf(
            b,
            "ragbox_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
            "ragbox_http_request_duration_seconds_sum %.6f\n"
            "ragbox_http_request_duration_seconds_count %llu\n"
            "# HELP ragbox_http_errors_total Responses with a 5xx status.\n"
            "# TYPE ragbox_http_errors_total counter\n"
            "ragbox_http_errors_total %llu\n"
            "# HELP ragbox_http_denied_total Responses with status 401 or 403.\n"
            "# TYPE ragbox_http_denied_total counter\n"
            "ragbox_http_denied_total %llu\n"
            "# HELP ragbox_http_body_rejected_total Requests refused for an oversize body.\n"
            "# TYPE ragbox_http_body_rejected_total counter\n"
            "ragbox_http_body_rejected_total %llu\n"
            "# HELP ragbox_logins_total Login attempts by outcome.\n"
            "# TYPE ragbox_logins_total counter\n"
            "ragbox_logins_total{outcome=\"ok\"} %llu\n"
            "ragbox_logins_total{outcome=\"failed\"} %llu\n"
            "ragbox_logins_total{outcome=\"throttled\"} %llu\n"
            "# HELP ragbox_uptime_seconds Seconds since the server started.\n"
            "# TYPE ragbox_uptime_seconds gauge\n"
            "ragbox_uptime_seconds %.0f\n",
            (unsigned long long)cum, m->lat_sum_s, (unsigned long long)m->lat_count,
            (unsigned long long)m->errors, (unsigned long long)m->denials,
            (unsigned long long)m->rejected_body, (unsigned long long)m->logins_ok,
            (unsigned long long)m->logins_failed, (unsigned long long)m->logins_throttled,
            (double)(rb_time_now_us() - web->started_us) / 1e6);
    uint64_t pieces = m->stream_pieces, cancelled = m->streams_cancelled,
             embedded = m->embeddings;
    pthread_mutex_unlock(&m->lock);
    size_t queued = 0, running = 0;
    rb__web_workers_depth(web, &queued, &running);
    if (st == RB_OK)
        st = rb_buf_printf(
            b,
            "# HELP ragbox_answer_pieces_total Answer pieces (tokens) streamed to clients.\n"
            "# TYPE ragbox_answer_pieces_total counter\n"
            "ragbox_answer_pieces_total %llu\n"
            "# HELP ragbox_answer_cancelled_total Answers stopped because the client left.\n"
            "# TYPE ragbox_answer_cancelled_total counter\n"
            "ragbox_answer_cancelled_total %llu\n"
            "# HELP ragbox_answer_queue_depth Answers waiting for a worker.\n"
            "# TYPE ragbox_answer_queue_depth gauge\n"
            "ragbox_answer_queue_depth %zu\n"
            "# HELP ragbox_answer_running Answers being produced.\n"
            "# TYPE ragbox_answer_running gauge\n"
            "ragbox_answer_running %zu\n"
            "# HELP ragbox_embeddings_total Inputs embedded through /v1/embeddings.\n"
            "# TYPE ragbox_embeddings_total counter\n"
            "ragbox_embeddings_total %llu\n",
            (unsigned long long)pieces, (unsigned long long)cancelled, queued, running,
            (unsigned long long)embedded);
    return st;
}

/* ================================================================ open */

static enum rb_status parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                                   struct rb_errmsg *err)
{
    char host[128];
    const char *port_text;
    memset(ss, 0, sizeof *ss);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return rb_errmsg_set(err, RB_ERR_CONFIG, "listen address '%s': expected [V6]:PORT",
                                 text);
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return rb_errmsg_set(err, RB_ERR_CONFIG, "listen address '%s': expected ADDR:PORT",
                                 text);
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    int64_t port = -1;
    if (rb_parse_i64(port_text, &port) != RB_OK || port < 0 || port > 65535)
        return rb_errmsg_set(err, RB_ERR_CONFIG, "listen address '%s': bad port", text);
    if (strcmp(host, "localhost") == 0)
        rb_strlcpy(host, "127.0.0.1", sizeof host);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
    } else {
        return rb_errmsg_set(err, RB_ERR_CONFIG,
                             "listen address '%s': host must be a numeric IPv4/IPv6 address",
                             text);
    }
    return RB_OK;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    RB_DEBUG("web.mhd", "%s", msg);
}

static enum rb_status open_models_at(struct rb_web *web, const struct rb_config *cfg,
                                     const char *gen, const char *emb, struct rb_errmsg *err);

/* The generation model (--model, [engine] model, [models] chat, else [answer] model) and the
 * embedding model (--embedding-model, [engine] embedding_model, [models] embedding, else
 * [answer] embed_model). Neither is required: without a generation model answers are
 * extractive; without an embedding model search is keyword-only and
 * /v1/embeddings answers 503. */
static enum rb_status open_models(struct rb_web *web, const struct rb_web_options *opts,
                                  struct rb_errmsg *err)
{
    const struct rb_config *cfg = opts->config;
    const char *gen = opts->model_path;
    if (!gen || !*gen)
        gen = rb_config_str(cfg, "engine", "model", NULL);
    if (!gen || !*gen)
        gen = rb_config_str(cfg, "models", "chat", NULL); /* set by `ragbox model add` */
    if (!gen || !*gen)
        gen = rb_config_str(cfg, "answer", "model", NULL);
    const char *emb = opts->embedding_model_path;
    if (!emb || !*emb)
        emb = rb_config_str(cfg, "engine", "embedding_model", NULL);
    if (!emb || !*emb)
        emb = rb_config_str(cfg, "models", "embedding", NULL);
    if (!emb || !*emb)
        emb = rb_config_str(cfg, "answer", "embed_model", NULL);
    /* [models] paths may be relative to the data directory */
    char *gen_abs = gen && *gen && gen[0] != '/' && !opts->model_path
                        ? rb_path_join(web->data_dir, gen) : NULL;
    char *emb_abs = emb && *emb && emb[0] != '/' && !opts->embedding_model_path
                        ? rb_path_join(web->data_dir, emb) : NULL;
    if (gen_abs && rb_fs_exists(gen_abs))
        gen = gen_abs;
    if (emb_abs && rb_fs_exists(emb_abs))
        emb = emb_abs;
    enum rb_status mst = open_models_at(web, cfg, gen, emb, err);
    free(gen_abs);
    free(emb_abs);
    return mst;
}

static enum rb_status open_models_at(struct rb_web *web, const struct rb_config *cfg,
                                     const char *gen, const char *emb, struct rb_errmsg *err)
{
#if defined(RB_WEB_HAVE_ANSWER) && defined(RAGBOX_ANSWER_HAVE_LOCAL)
    if (gen && *gen) {
        int64_t n_ctx = 0, threads = 0;
        enum rb_status st;
        if ((st = rb_config_int(cfg, "answer", "context_tokens", 0, 0, 1 << 20, &n_ctx, err)) ||
            (st = rb_config_int(cfg, "answer", "threads", 0, 0, 1024, &threads, err)))
            return st;
        struct rb_answer_local_options lo = {
            .model_path = gen,
            .n_ctx = (int)n_ctx,
            .n_threads = (int)threads,
            .chat_template = rb_config_str(cfg, "answer", "chat_template", NULL)};
        if ((st = rb_answer_backend_open_local(&lo, &web->backend, err)) != RB_OK)
            return st;
        RB_INFO("web", "generation model %s", gen);
    }
#else
    if (gen && *gen)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "model %s: this ragbox is built without the engine", gen);
#endif
#ifdef RB_WEB_HAVE_ENGINE
    if (emb && *emb) {
        enum rb_status st = rb_engine_model_open(emb, NULL, &web->embedder, err);
        if (st != RB_OK)
            return st;
        if (rb_engine_model_kind(web->embedder) != RB_ENGINE_MODEL_EMBED)
            return rb_errmsg_set(err, RB_ERR_MODEL, "%s is not an embedding model", emb);
        if ((st = rb_engine_tokenizer_load(emb, &web->embed_tok, err)) != RB_OK)
            return st;
        const char *base = strrchr(emb, '/');
        rb_strlcpy(web->embedder_name, base ? base + 1 : emb, sizeof web->embedder_name);
        size_t nl = strlen(web->embedder_name);
        if (nl > 5 && strcmp(web->embedder_name + nl - 5, ".gguf") == 0)
            web->embedder_name[nl - 5] = '\0';
        RB_INFO("web", "embedding model %s", emb);
    }
#else
    if (emb && *emb)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "embedding model %s: this ragbox is built without the engine", emb);
#endif
    return RB_OK;
}

enum rb_status rb_web_open(const struct rb_web_options *opts, struct rb_web **out,
                           struct rb_errmsg *err)
{
    *out = NULL;
    if (!opts || !opts->data_dir)
        return rb_errmsg_set(err, RB_ERR_INVALID, "web: no data directory");
    const struct rb_config *cfg = opts->config;
    struct rb_web *web = calloc(1, sizeof *web);
    if (!web)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&web->metrics.lock, NULL);
    pthread_mutex_init(&web->throttle.lock, NULL);
    pthread_mutex_init(&web->streams_lock, NULL);
    pthread_cond_init(&web->streams_cond, NULL);
    pthread_mutex_init(&web->tasks_lock, NULL);
    pthread_cond_init(&web->tasks_cond, NULL);
    pthread_mutex_init(&web->coll_lock, NULL);
    web->config = cfg;
    web->started_us = rb_time_now_us();
    web->data_dir = rb_strdup(opts->data_dir);
    web->metrics.count_by_route_status = calloc((rb__web_n_routes + 1) * 6, sizeof(uint64_t));
    enum rb_status st = RB_OK;
    int64_t threads = 16, workers = 8, max_conn = 256, per_ip = 64, timeout = 30, max_header = 32768,
            max_body = 1 << 20, max_job = 32 << 20, max_upload = 256LL << 20, depth = 32, max_fail = 5,
            backoff_max = 900;
    if (!web->data_dir || !web->metrics.count_by_route_status) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = rb_config_int(cfg, "web", "threads", threads, 1, 256, &threads, err)) ||
        (st = rb_config_int(cfg, "web", "answer_workers", workers, 1, 256, &workers, err)) ||
        (st = rb_config_int(cfg, "web", "max_connections", max_conn, 4, 100000, &max_conn,
                            err)) ||
        (st = rb_config_int(cfg, "web", "max_connections_per_ip", per_ip, 1, 100000, &per_ip,
                            err)) ||
        (st = rb_config_int(cfg, "web", "connection_timeout_s", timeout, 1, 3600, &timeout,
                            err)) ||
        (st = rb_config_int(cfg, "web", "max_header_bytes", max_header, 4096, 1 << 20,
                            &max_header, err)) ||
        (st = rb_config_int(cfg, "web", "max_job_bytes", max_job, 1024, 1 << 30, &max_job,
                            err)) ||
        (st = rb_config_int(cfg, "web", "max_body_bytes", max_body, 1024, 64 << 20, &max_body,
                            err)) ||
        (st = rb_config_int(cfg, "web", "max_upload_bytes", max_upload, 1024, 1LL << 40,
                            &max_upload, err)) ||
        (st = rb_config_int(cfg, "web", "json_max_depth", depth, 2, 256, &depth, err)) ||
        (st = rb_config_int(cfg, "web", "login_max_failures", max_fail, 1, 1000, &max_fail,
                            err)) ||
        (st = rb_config_int(cfg, "web", "login_backoff_max_s", backoff_max, 1, 86400,
                            &backoff_max, err)))
        goto fail;
    web->max_body = (size_t)max_body;
    web->max_job_body = (size_t)max_job > (size_t)max_body ? (size_t)max_job : (size_t)max_body;
    web->max_upload = (size_t)max_upload;
    web->json_depth = (int)depth;
    web->throttle.max_failures = (int)max_fail;
    web->throttle.backoff_max_us = backoff_max * 1000000;

    if ((st = rb_fs_mkdirs(opts->data_dir, 0700)) != RB_OK) {
        rb_errmsg_set(err, st, "%s: cannot create the data directory", opts->data_dir);
        goto fail;
    }
    char *db = rb_path_join(opts->data_dir, "ragbox.db");
    struct rb_web_auth_options ao = {.db_path = db, .config = cfg};
    st = db ? rb_web_auth_open(&ao, &web->auth, err) : RB_ERR_NOMEM;
    free(db);
    if (st != RB_OK)
        goto fail;
#ifdef RB_WEB_HAVE_AUDIT
    if ((st = rb_audit_options_from_config(&web->audit_opts, cfg, opts->data_dir,
                                           &web->audit_paths, err)) != RB_OK ||
        (st = rb_audit_open(&web->audit_opts, &web->audit, err)) != RB_OK)
        goto fail;
#endif
#ifdef RB_WEB_HAVE_INDEX
    struct rb_index_options io = {.data_dir = opts->data_dir, .config = cfg};
    if ((st = rb_index_open(&io, &web->index, err)) != RB_OK)
        goto fail;
#endif
    if ((st = rb__web_ingest_start(web, err)) != RB_OK)
        goto fail;
    if ((st = open_models(web, opts, err)) != RB_OK)
        goto fail;
#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INDEX)
    {
        int64_t max_tokens = 512, k = 8;
        if ((st = rb_config_int(cfg, "answer", "max_tokens", 512, 16, 8192, &max_tokens, err)) ||
            (st = rb_config_int(cfg, "answer", "k", 8, 1, 100, &k, err)))
            goto fail;
        struct rb_answerer_options ao = {.index = web->index,
                                         .backend = web->backend,
                                         .max_tokens = (int)max_tokens,
                                         .k = (int)k};
#ifdef RAGBOX_ANSWER_HAVE_ENV
        struct rb_answer_env_options eo = {.data_dir = opts->data_dir, .config = cfg,
                                           .audit = true};
        if ((st = rb_answer_env_open(&eo, &web->answer_env, err)) != RB_OK)
            goto fail;
        rb_answer_env_apply(web->answer_env, &ao);
#endif
#ifdef RB_WEB_HAVE_ENGINE
        if (web->embedder) {
            ao.embed = rb_answer_engine_embed;
            ao.embed_user = web->embedder;
        }
#endif
        /* Without a generation model answers are extractive (cited
         * sentences of the retrieved passages) or refusals. */
        if ((st = rb_answerer_open(&ao, &web->answerer, err)) != RB_OK)
            goto fail;
    }
#endif
    if ((st = rb__web_workers_start(web, (int)workers, err)) != RB_OK)
        goto fail;
    if ((st = rb__web_jobs_start(web, err)) != RB_OK)
        goto fail;

    const char *listen = opts->listen ? opts->listen
                                      : rb_config_str(cfg, "web", "listen", "127.0.0.1:8080");
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if ((st = parse_listen(listen, &ss, &sslen, err)) != RB_OK)
        goto fail;

    const char *cert = rb_config_str(cfg, "web", "tls_cert", NULL);
    const char *key = rb_config_str(cfg, "web", "tls_key", NULL);
    if ((cert && *cert) != (key && *key)) {
        st = rb_errmsg_set(err, RB_ERR_CONFIG, "web.tls_cert and web.tls_key go together");
        goto fail;
    }
    /* Suspend/resume: streamed answers park their connection between tokens
     * instead of blocking an MHD thread (stream.c). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cert && *cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            st = rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                               "this libmicrohttpd was built without TLS support");
            goto fail;
        }
        size_t n = 0;
        if ((st = rb_fs_read_file(cert, 1 << 20, &web->cert_pem, &n)) != RB_OK) {
            rb_errmsg_set(err, st, "web.tls_cert %s: cannot read", cert);
            goto fail;
        }
        if ((st = rb_fs_read_file(key, 1 << 20, &web->key_pem, &n)) != RB_OK) {
            rb_errmsg_set(err, st, "web.tls_key %s: cannot read", key);
            goto fail;
        }
        flags |= MHD_USE_TLS;
        web->tls = true;
    }
    struct MHD_OptionItem o[16];
    int k = 0;
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_conn, NULL};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)per_ip, NULL};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout, NULL};
    /* Per-connection memory pool: bounds request line + headers. */
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)max_header,
                                     NULL};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, web};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 256, NULL};
    if (web->tls) {
        o[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, web->cert_pem};
        o[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, web->key_pem};
        o[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                         "SECURE192:+SECURE128:-VERS-ALL:+VERS-TLS1.3:"
                                         "+VERS-TLS1.2"};
    }
    o[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    web->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, web, MHD_OPTION_ARRAY, o,
                                   MHD_OPTION_END);
    if (!web->daemon) {
        st = rb_errmsg_set(err, RB_ERR_NETWORK,
                           "cannot listen on %s (address in use, not local, or bad TLS "
                           "certificate/key)",
                           listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(web->daemon, MHD_DAEMON_INFO_BIND_PORT);
    web->port = di ? di->port : 0;
    RB_INFO("web", "listening on %s (port %d, %s)", listen, web->port, web->tls ? "https" : "http");
    *out = web;
    return RB_OK;
fail:
    rb_web_close(web);
    return st;
}

int rb_web_port(const struct rb_web *web)
{
    return web->port;
}

bool rb_web_tls(const struct rb_web *web)
{
    return web->tls;
}

void rb_web_close(struct rb_web *web)
{
    if (!web)
        return;
    if (web->daemon)
        MHD_quiesce_daemon(web->daemon); /* no new connections */
    rb__web_jobs_stop(web);
    rb__web_streams_shutdown(web);
    if (web->daemon)
        MHD_stop_daemon(web->daemon);
    rb__web_ingest_stop(web);
#ifdef RB_WEB_HAVE_ANSWER
    rb_answerer_close(web->answerer);
    rb_answer_backend_close(web->backend);
#ifdef RAGBOX_ANSWER_HAVE_ENV
    rb_answer_env_close(web->answer_env);
#endif
#endif
    rb_web_auth_close(web->auth);
#ifdef RB_WEB_HAVE_INDEX
    rb_index_close(web->index);
#endif
#ifdef RB_WEB_HAVE_AUDIT
    rb_audit_close(web->audit);
    free(web->audit_paths);
#endif
    free(web->metrics.count_by_route_status);
    free(web->throttle.entries);
#ifdef RB_WEB_HAVE_ENGINE
    rb_engine_model_close(web->embedder);
    rb_engine_tokenizer_free(web->embed_tok);
#endif
    pthread_mutex_destroy(&web->metrics.lock);
    pthread_mutex_destroy(&web->throttle.lock);
    pthread_mutex_destroy(&web->streams_lock);
    pthread_cond_destroy(&web->streams_cond);
    pthread_mutex_destroy(&web->tasks_lock);
    pthread_cond_destroy(&web->tasks_cond);
    for (size_t i = 0; i < web->n_coll; i++)
        free(web->coll[i].name);
    free(web->coll);
    pthread_mutex_destroy(&web->coll_lock);
    if (web->key_pem) {
        OPENSSL_cleanse(web->key_pem, strlen(web->key_pem));
        free(web->key_pem);
    }
    free(web->cert_pem);
    free(web->data_dir);
    free(web);
}
