/* A small libcurl client for the web tests: one struct per simulated user
 * (its own cookie jar and CSRF token). */
#ifndef RAGBOX_TESTS_WEB_CLIENT_H
#define RAGBOX_TESTS_WEB_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/common.h"

struct wc {
    CURL *curl;
    char base[128];
    char csrf[80];
    char bearer[100];
    const char *cainfo; /* for https */
};

struct wc_reply {
    long status;
    struct rb_buf body;
    struct rb_buf headers;
};

static size_t wc_collect(char *p, size_t size, size_t n, void *ud)
{
    struct rb_buf *b = ud;
    if (rb_buf_append(b, p, size * n) != RB_OK)
        return 0;
    return size * n;
}

static void wc_init(struct wc *c, const char *scheme, int port)
{
    memset(c, 0, sizeof *c);
    c->curl = curl_easy_init();
    snprintf(c->base, sizeof c->base, "%s://127.0.0.1:%d", scheme, port);
    curl_easy_setopt(c->curl, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
}

static void wc_free(struct wc *c)
{
    curl_easy_cleanup(c->curl);
}

static void wc_reply_free(struct wc_reply *r)
{
    rb_buf_free(&r->body);
    rb_buf_free(&r->headers);
}

/* Sends a request; body may be NULL; extra is a NULL-terminated list of header lines. */
static long wc_send(struct wc *c, const char *method, const char *path, const char *ctype,
                    const char *body, size_t body_len, const char *const *extra,
                    struct wc_reply *out)
{
    rb_buf_init(&out->body, 64 << 20);
    rb_buf_init(&out->headers, 1 << 20);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    struct curl_slist *h = NULL;
    char line[256];
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
    }
    if (c->csrf[0]) {
        snprintf(line, sizeof line, "X-CSRF-Token: %s", c->csrf);
        h = curl_slist_append(h, line);
    }
    if (c->bearer[0]) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->bearer);
        h = curl_slist_append(h, line);
    }
    for (int i = 0; extra && extra[i]; i++)
        h = curl_slist_append(h, extra[i]);
    h = curl_slist_append(h, "Expect:");
    CURL *k = c->curl;
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, wc_collect);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, wc_collect);
    curl_easy_setopt(k, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 30L);
    if (c->cainfo)
        curl_easy_setopt(k, CURLOPT_CAINFO, c->cainfo);
    if (body) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(k, CURLOPT_HTTPGET, strcmp(method, "GET") == 0 ? 1L : 0L);
        curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "GET") != 0)
            curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    out->status = 0;
    CURLcode rc = curl_easy_perform(k);
    if (rc == CURLE_OK)
        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &out->status);
    else
        fprintf(stderr, "curl %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    if (!out->body.data && rb_buf_append_str(&out->body, "") != RB_OK)
        abort();
    if (!out->headers.data && rb_buf_append_str(&out->headers, "") != RB_OK)
        abort();
    return out->status;
}

static long wc_json(struct wc *c, const char *method, const char *path, const char *json,
                    struct wc_reply *out)
{
    return wc_send(c, method, path, json ? "application/json" : NULL, json,
                   json ? strlen(json) : 0, NULL, out);
}

/* Status only. */
static long wc_status(struct wc *c, const char *method, const char *path, const char *json)
{
    struct wc_reply r;
    long s = wc_json(c, method, path, json, &r);
    wc_reply_free(&r);
    return s;
}

static bool wc_login(struct wc *c, const char *user, const char *password)
{
    char body[512];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    struct wc_reply r;
    c->csrf[0] = '\0';
    long s = wc_json(c, "POST", "/api/login", body, &r);
    bool ok = false;
    if (s == 200) {
        cJSON *j = cJSON_Parse(r.body.data);
        const char *t = rb_json_str(j, "csrf_token");
        if (t) {
            rb_strlcpy(c->csrf, t, sizeof c->csrf);
            ok = true;
        }
        cJSON_Delete(j);
    }
    wc_reply_free(&r);
    return ok;
}

#endif
