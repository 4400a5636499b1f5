/* The JSON API: handlers and the route table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "web-impl.h"
#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INGEST)
#include "ragbox/ingest.h"
#endif

enum rb_status rb__web_metrics_core(struct rb_web *web, struct rb_buf *b);
enum rb_status rb__web_metrics_index(struct rb_web *web, struct rb_buf *b);

/* ============================================================ helpers */

static cJSON *user_json(const struct rb_web_user *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)u->id);
    cJSON_AddStringToObject(o, "name", u->name);
    cJSON_AddStringToObject(o, "role", rb_web_role_name(u->role));
    cJSON_AddBoolToObject(o, "disabled", u->disabled);
    cJSON_AddNumberToObject(o, "created_us", (double)u->created_us);
    return o;
}

static enum MHD_Result auth_fail(struct web_request *req)
{
    struct rb_web_auth *a = req->web->auth;
    /* rb_web_auth messages are written for the caller (no paths or SQL) except
     * database errors, which rb__web_status keeps out of 5xx replies. */
    enum rb_status st = RB_ERR_INTERNAL;
    const char *msg = rb_web_auth_errmsg(a);
    if (strstr(msg, "already exists"))
        st = RB_ERR_EXISTS;
    else if (strncmp(msg, "no ", 3) == 0)
        st = RB_ERR_NOT_FOUND;
    else if (strstr(msg, "names are") || strstr(msg, "passwords are") || strstr(msg, "required") ||
             strstr(msg, "bad "))
        st = RB_ERR_INVALID;
    return rb__web_status(req, st, msg);
}

static bool parse_id(const char *s, int64_t *out)
{
    return s && rb_parse_i64(s, out) == RB_OK && *out > 0;
}

/* ============================================================== health */

static enum MHD_Result h_health(struct web_request *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "version", RAGBOX_VERSION);
    cJSON_AddNumberToObject(o, "uptime_s",
                            (double)((rb_time_now_us() - req->web->started_us) / 1000000));
    cJSON_AddBoolToObject(o, "tls", req->web->tls);
    /* What this build serves (the UI hides what is absent). */
    cJSON *f = cJSON_AddObjectToObject(o, "features");
#ifdef RB_WEB_HAVE_INDEX
    cJSON_AddBoolToObject(f, "search", true);
#else
    cJSON_AddBoolToObject(f, "search", false);
#endif
#ifdef RB_WEB_HAVE_AUDIT
    cJSON_AddBoolToObject(f, "audit", true);
#else
    cJSON_AddBoolToObject(f, "audit", false);
#endif
#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INDEX)
    cJSON_AddBoolToObject(f, "ask", true);
#else
    cJSON_AddBoolToObject(f, "ask", false);
#endif
#if defined(RB_WEB_HAVE_INDEX) && defined(RB_WEB_HAVE_INGEST)
    cJSON_AddBoolToObject(f, "upload", true);
#else
    cJSON_AddBoolToObject(f, "upload", false);
#endif
#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INDEX)
    cJSON_AddBoolToObject(f, "batch", true);
    cJSON_AddBoolToObject(f, "openai", true);
    /* which models this server loaded */
    cJSON_AddBoolToObject(f, "generate", req->web->backend != NULL);
#else
    cJSON_AddBoolToObject(f, "batch", false);
    cJSON_AddBoolToObject(f, "openai", false);
    cJSON_AddBoolToObject(f, "generate", false);
#endif
#if defined(RB_WEB_HAVE_ENGINE) && defined(RB_WEB_HAVE_ANSWER)
    cJSON_AddBoolToObject(f, "embeddings", req->web->embedder != NULL);
#else
    cJSON_AddBoolToObject(f, "embeddings", false);
#endif
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_metrics(struct web_request *req)
{
    struct rb_buf b;
    rb_buf_init(&b, 4 << 20);
    enum rb_status st = rb__web_metrics_core(req->web, &b);
#ifdef RB_WEB_HAVE_INDEX
    if (st == RB_OK)
        st = rb__web_metrics_index(req->web, &b);
#endif
    if (st != RB_OK) {
        rb_buf_free(&b);
        return rb__web_status(req, st, "metrics");
    }
    char *text = rb_buf_steal(&b);
    enum MHD_Result r =
        rb__web_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
                     true);
    free(text);
    return r;
}

/* ============================================================== session */

static enum MHD_Result h_login(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *name_in = rb_json_str(body, "username");
    const char *password = rb_json_str(body, "password");
    if (!name_in || !password || strlen(name_in) > RB_WEB_NAME_MAX ||
        strlen(password) > RB_WEB_PASSWORD_MAX) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid", "username and password (strings) are required");
    }
    /* A copy: the audit records below outlive the request body. */
    char name[RB_WEB_NAME_MAX + 1];
    rb_strlcpy(name, name_in, sizeof name);
    struct rb_web *web = req->web;
    char ukey[96], ikey[96];
    snprintf(ukey, sizeof ukey, "u:%s", name);
    snprintf(ikey, sizeof ikey, "ip:%s", req->ip);
    int64_t now = rb_time_now_us();
    int retry = 0, retry2 = 0;
    /* Per-IP allows more failures than per-user (several users behind one proxy). */
    bool user_locked = rb__web_throttle_check(&web->throttle, ukey, now, &retry) != RB_OK;
    bool ip_locked = rb__web_throttle_check(&web->throttle, ikey, now, &retry2) != RB_OK;
    if (user_locked || ip_locked) {
        pthread_mutex_lock(&web->metrics.lock);
        web->metrics.logins_throttled++;
        pthread_mutex_unlock(&web->metrics.lock);
        rb__web_audit(req, "auth.login", name, "throttled");
        cJSON_Delete(body);
        char ra[24];
        snprintf(ra, sizeof ra, "%d", RB_MAX(retry, retry2));
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", "throttled");
        cJSON_AddStringToObject(e, "message", "too many failed logins; try again later");
        cJSON_AddNumberToObject(e, "retry_after_s", RB_MAX(retry, retry2));
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!text)
            return MHD_NO;
        struct MHD_Response *r =
            MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
        if (!r) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
        MHD_add_response_header(r, "Retry-After", ra);
        rb__web_headers(req, r, true);
        req->status = 429;
        ret = MHD_queue_response(req->conn, 429, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct rb_web_user u;
    enum rb_status st = rb_web_user_verify(web->auth, name, password, &u);
    cJSON_Delete(body);
    if (st != RB_OK) {
        rb__web_throttle_record(&web->throttle, ukey, false, web->throttle.max_failures, now);
        /* An address gets four times a user's allowance (several users behind one proxy). */
        rb__web_throttle_record(&web->throttle, ikey, false, 4 * web->throttle.max_failures, now);
        pthread_mutex_lock(&web->metrics.lock);
        web->metrics.logins_failed++;
        pthread_mutex_unlock(&web->metrics.lock);
        rb__web_audit(req, "auth.login", name, "failed");
        return rb__web_error(req, 401, "unauthorized", "wrong user name or password");
    }
    rb__web_throttle_record(&web->throttle, ukey, true, 0, now);
    char sid[65], csrf[65];
    st = rb_web_session_create(web->auth, u.id, sid, csrf);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_web_auth_errmsg(web->auth));
    pthread_mutex_lock(&web->metrics.lock);
    web->metrics.logins_ok++;
    pthread_mutex_unlock(&web->metrics.lock);
    req->caller.authenticated = true;
    req->caller.user = u;
    rb__web_audit(req, "auth.login", name, "ok");
    char cookie[256];
    snprintf(cookie, sizeof cookie, "rb_session=%s; Path=/; HttpOnly; SameSite=Strict%s", sid,
             web->tls ? "; Secure" : "");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "user", user_json(&u));
    cJSON_AddStringToObject(o, "csrf_token", csrf);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Set-Cookie", cookie);
    rb__web_headers(req, r, true);
    req->status = 200;
    ret = MHD_queue_response(req->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result h_logout(struct web_request *req)
{
    if (req->caller.via_session &&
        rb_web_session_delete(req->web->auth, req->caller.session_id) != RB_OK)
        return rb__web_status(req, RB_ERR_DB, rb_web_auth_errmsg(req->web->auth));
    rb__web_audit(req, "auth.logout", NULL, "ok");
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"{}",
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Set-Cookie",
                            req->web->tls
                                ? "rb_session=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"
                                : "rb_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    rb__web_headers(req, r, true);
    req->status = 200;
    enum MHD_Result ret = MHD_queue_response(req->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result h_me(struct web_request *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "user", user_json(&req->caller.user));
    if (req->caller.via_session)
        cJSON_AddStringToObject(o, "csrf_token", req->caller.csrf);
    char scopes[48];
    rb_web_scope_format(req->caller.scopes, scopes, sizeof scopes);
    cJSON_AddStringToObject(o, "auth", req->caller.via_key ? "api_key" : "session");
    if (req->caller.via_key)
        cJSON_AddStringToObject(o, "scopes", scopes);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_me_password(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *old = rb_json_str(body, "old_password");
    const char *neu = rb_json_str(body, "new_password");
    struct rb_web_user u;
    if (!old || !neu || rb_web_user_verify(req->web->auth, req->caller.user.name, old, &u) != RB_OK) {
        cJSON_Delete(body);
        rb__web_audit(req, "user.password", req->caller.user.name, "denied");
        return rb__web_error(req, 403, "forbidden", "the current password is wrong");
    }
    enum rb_status st = rb_web_user_set_password(req->web->auth, req->caller.user.name, neu);
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "user.password", req->caller.user.name, "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

/* ================================================================ users */

static enum MHD_Result h_users_list(struct web_request *req)
{
    struct rb_web_user *users = NULL;
    size_t n = 0;
    if (rb_web_user_list(req->web->auth, &users, &n) != RB_OK)
        return auth_fail(req);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, user_json(&users[i]));
    free(users);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "users", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_users_create(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *name = rb_json_str(body, "name");
    const char *role_text = rb_json_str(body, "role");
    const char *password = rb_json_str(body, "password");
    enum rb_web_role role = RB_WEB_ROLE_USER;
    if (role_text && rb_web_role_parse(role_text, &role) != RB_OK) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid", "role must be admin, auditor or user");
    }
    int64_t id = 0;
    enum rb_status st = rb_web_user_add(req->web->auth, name, role, password, &id);
    if (st != RB_OK) {
        cJSON_Delete(body);
        return auth_fail(req);
    }
    rb__web_audit(req, "user.create", name, "ok");
    struct rb_web_user u;
    st = rb_web_user_get_by_id(req->web->auth, id, &u);
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    return rb__web_json(req, 201, user_json(&u));
}

static enum MHD_Result h_users_update(struct web_request *req)
{
    enum MHD_Result ret;
    const char *name = req->params[0];
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    struct rb_web_auth *a = req->web->auth;
    struct rb_web_user u;
    enum rb_status st = rb_web_user_get(a, name, &u);
    const char *role_text = rb_json_str(body, "role");
    const char *password = rb_json_str(body, "password");
    cJSON *disabled = cJSON_GetObjectItemCaseSensitive(body, "disabled");
    enum rb_web_role role;
    if (st == RB_OK && role_text) {
        if (rb_web_role_parse(role_text, &role) != RB_OK) {
            cJSON_Delete(body);
            return rb__web_error(req, 400, "invalid", "role must be admin, auditor or user");
        }
        st = rb_web_user_set_role(a, name, role);
    }
    if (st == RB_OK && password)
        st = rb_web_user_set_password(a, name, password);
    if (st == RB_OK && cJSON_IsBool(disabled))
        st = rb_web_user_set_disabled(a, name, cJSON_IsTrue(disabled));
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "user.update", name, "ok");
    if (rb_web_user_get(a, name, &u) != RB_OK)
        return auth_fail(req);
    return rb__web_json(req, 200, user_json(&u));
}

static enum MHD_Result h_users_delete(struct web_request *req)
{
    const char *name = req->params[0];
    if (strcmp(name, req->caller.user.name) == 0)
        return rb__web_error(req, 409, "conflict", "you cannot delete yourself");
    if (rb_web_user_delete(req->web->auth, name) != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "user.delete", name, "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

/* =============================================================== groups */

static enum MHD_Result h_groups_list(struct web_request *req)
{
    cJSON *arr = NULL;
    if (rb_web_group_list(req->web->auth, &arr) != RB_OK)
        return auth_fail(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "groups", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_groups_create(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *name = rb_json_str(body, "name");
    enum rb_status st = rb_web_group_add(req->web->auth, name, NULL);
    if (st == RB_OK)
        rb__web_audit(req, "group.create", name, "ok");
    cJSON *members = cJSON_GetObjectItemCaseSensitive(body, "members");
    cJSON *m;
    cJSON_ArrayForEach(m, members)
    {
        if (st == RB_OK && cJSON_IsString(m))
            st = rb_web_group_member_add(req->web->auth, name, m->valuestring);
    }
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    return rb__web_json(req, 201, cJSON_CreateObject());
}

static enum MHD_Result h_groups_delete(struct web_request *req)
{
    if (rb_web_group_delete(req->web->auth, req->params[0]) != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "group.delete", req->params[0], "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

static enum MHD_Result h_group_member_add(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    enum rb_status st =
        rb_web_group_member_add(req->web->auth, req->params[0], rb_json_str(body, "user"));
    char target[160];
    snprintf(target, sizeof target, "%s+%s", req->params[0],
             rb_json_str(body, "user") ? rb_json_str(body, "user") : "");
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "group.member_add", target, "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

static enum MHD_Result h_group_member_remove(struct web_request *req)
{
    if (rb_web_group_member_remove(req->web->auth, req->params[0], req->params[1]) != RB_OK)
        return auth_fail(req);
    char target[160];
    snprintf(target, sizeof target, "%s-%s", req->params[0], req->params[1]);
    rb__web_audit(req, "group.member_remove", target, "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

/* =============================================================== grants */

/* Resolves the collection named in a grant body to its id. */
static enum rb_status grant_collection_id(struct web_request *req, const cJSON *body, int64_t *id);

static enum MHD_Result h_grants_list(struct web_request *req)
{
    cJSON *arr = NULL;
    if (rb_web_grant_list(req->web->auth, 0, &arr) != RB_OK)
        return auth_fail(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "grants", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_grants_set(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    int64_t cid = 0;
    enum rb_status st = grant_collection_id(req, body, &cid);
    if (st != RB_OK) {
        cJSON_Delete(body);
        return rb__web_error(req, st == RB_ERR_NOT_FOUND ? 404 : 400,
                             st == RB_ERR_NOT_FOUND ? "not_found" : "invalid",
                             "the grant needs an existing collection");
    }
    const char *kind = rb_json_str(body, "kind");
    const char *name = rb_json_str(body, "name");
    enum rb_web_principal pk = RB_WEB_PRINCIPAL_USER;
    if (kind && strcmp(kind, "group") == 0)
        pk = RB_WEB_PRINCIPAL_GROUP;
    else if (kind && strcmp(kind, "user") != 0) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid", "kind must be user or group");
    }
    bool r = rb_json_bool(body, "read", false), w = rb_json_bool(body, "write", false);
    st = rb_web_grant_set(req->web->auth, cid, pk, name, r, w);
    char target[200];
    snprintf(target, sizeof target, "collection:%lld %s:%s read=%d write=%d", (long long)cid,
             pk == RB_WEB_PRINCIPAL_GROUP ? "group" : "user", name ? name : "", r, w);
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "grant.set", target, "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

/* ============================================================= api keys */

static enum MHD_Result h_keys_list(struct web_request *req)
{
    /* Admins see every key; others their own. */
    int64_t uid = req->caller.user.role == RB_WEB_ROLE_ADMIN && rb__web_query(req, "all")
                      ? 0
                      : req->caller.user.id;
    cJSON *arr = NULL;
    if (rb_web_apikey_list(req->web->auth, uid, &arr) != RB_OK)
        return auth_fail(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "keys", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_keys_create(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *user = rb_json_str(body, "user");
    const char *name = rb_json_str(body, "name");
    const char *scopes_text = rb_json_str(body, "scopes");
    unsigned scopes = RB_WEB_SCOPE_READ | RB_WEB_SCOPE_OPENAI;
    if (scopes_text && rb_web_scope_parse(scopes_text, &scopes) != RB_OK) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid",
                             "scopes: comma-separated read, write, admin, openai");
    }
    /* Only an admin may create keys for someone else. */
    if (user && strcmp(user, req->caller.user.name) != 0 &&
        req->caller.user.role != RB_WEB_ROLE_ADMIN) {
        rb__web_audit(req, "apikey.create", user, "denied");
        cJSON_Delete(body);
        return rb__web_error(req, 403, "forbidden", "only an admin creates keys for others");
    }
    if (!user)
        user = req->caller.user.name;
    char *key = NULL;
    int64_t id = 0;
    enum rb_status st = rb_web_apikey_create(req->web->auth, user, name, scopes, &key, &id);
    char target[128];
    snprintf(target, sizeof target, "%s#%lld", user, (long long)id);
    cJSON_Delete(body);
    if (st != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "apikey.create", target, "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "key", key);
    char sc[48];
    rb_web_scope_format(scopes, sc, sizeof sc);
    cJSON_AddStringToObject(o, "scopes", sc);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    return rb__web_json(req, 201, o);
}

static enum MHD_Result h_keys_revoke(struct web_request *req)
{
    int64_t id;
    if (!parse_id(req->params[0], &id))
        return rb__web_error(req, 400, "invalid", "bad key id");
    int64_t owner = req->caller.user.role == RB_WEB_ROLE_ADMIN ? 0 : req->caller.user.id;
    if (rb_web_apikey_revoke(req->web->auth, id, owner) != RB_OK)
        return rb__web_error(req, 404, "not_found", "no such active key");
    rb__web_audit(req, "apikey.revoke", req->params[0], "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

/* ============================================================== history */

/* The user whose history is addressed: self, or ?user=NAME for an admin. */
static bool history_target(struct web_request *req, int64_t *uid, enum MHD_Result *ret)
{
    const char *who = rb__web_query(req, "user");
    *uid = req->caller.user.id;
    if (!who || strcmp(who, req->caller.user.name) == 0)
        return true;
    if (req->caller.user.role != RB_WEB_ROLE_ADMIN) {
        rb__web_audit(req, "history.access", who, "denied");
        *ret = rb__web_error(req, 403, "forbidden", "only an admin may see another user's history");
        return false;
    }
    struct rb_web_user u;
    if (rb_web_user_get(req->web->auth, who, &u) != RB_OK) {
        *ret = rb__web_error(req, 404, "not_found", "no such user");
        return false;
    }
    *uid = u.id;
    return true;
}

static enum MHD_Result h_history_list(struct web_request *req)
{
    enum MHD_Result ret;
    int64_t uid;
    if (!history_target(req, &uid, &ret))
        return ret;
    int64_t limit = 100;
    const char *l = rb__web_query(req, "limit");
    if (l && (rb_parse_i64(l, &limit) != RB_OK || limit < 0 || limit > 100000))
        return rb__web_error(req, 400, "invalid", "limit must be 0..100000");
    cJSON *arr = NULL;
    if (rb_web_history_list(req->web->auth, uid, limit, &arr) != RB_OK)
        return auth_fail(req);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "history", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_history_export(struct web_request *req)
{
    enum MHD_Result ret;
    int64_t uid;
    if (!history_target(req, &uid, &ret))
        return ret;
    cJSON *arr = NULL;
    if (rb_web_history_list(req->web->auth, uid, 0, &arr) != RB_OK)
        return auth_fail(req);
    rb__web_audit(req, "history.export", rb__web_query(req, "user"), "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "history", arr);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition", "attachment; filename=\"history.json\"");
    rb__web_headers(req, r, true);
    req->status = 200;
    ret = MHD_queue_response(req->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result history_delete(struct web_request *req, int64_t entry)
{
    enum MHD_Result ret;
    int64_t uid;
    if (!history_target(req, &uid, &ret))
        return ret;
    int64_t n = 0;
    if (rb_web_history_delete(req->web->auth, uid, entry, &n) != RB_OK)
        return auth_fail(req);
    if (entry > 0 && n == 0)
        return rb__web_error(req, 404, "not_found", "no such history entry");
    /* The tombstone names what was deleted, never the deleted text. */
    char target[160];
    snprintf(target, sizeof target, "user_id:%lld entry:%s count:%lld", (long long)uid,
             entry > 0 ? req->params[0] : "all", (long long)n);
    rb__web_audit(req, "history.delete", target, "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "deleted", (double)n);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_history_delete_all(struct web_request *req)
{
    return history_delete(req, 0);
}

static enum MHD_Result h_history_delete_one(struct web_request *req)
{
    int64_t id;
    if (!parse_id(req->params[0], &id))
        return rb__web_error(req, 400, "invalid", "bad history id");
    return history_delete(req, id);
}

/* ========================================================== collections */

static enum rb_status grant_collection_id(struct web_request *req, const cJSON *body, int64_t *id)
{
#ifdef RB_WEB_HAVE_INDEX
    const char *name = rb_json_str(body, "collection");
    if (name) {
        struct rb_index_collection *c = NULL;
        if (rb_index_collection_get(req->web->index, name, &c) != RB_OK)
            return RB_ERR_NOT_FOUND;
        *id = c->id;
        rb_index_collection_free(c);
        return RB_OK;
    }
#endif
    double v = rb_json_num(body, "collection_id", 0);
    if (v >= 1 && v <= 9007199254740992.0) {
        *id = (int64_t)v;
        return RB_OK;
    }
    return RB_ERR_INVALID;
}

#ifdef RB_WEB_HAVE_INDEX

/* Every "not allowed" below answers exactly like "does not exist" (404 with
 * the same text), so a caller learns nothing about collections, documents or
 * passages it may not read. */
#define NO_COLLECTION "no such collection"
#define NO_DOCUMENT "no such document"
#define NO_PASSAGE "no such passage"

static bool can(struct web_request *req, int64_t collection_id, bool write)
{
    return rb_web_auth_can(req->web->auth, req->caller.user.id, collection_id, write);
}

static enum MHD_Result denied_as_missing(struct web_request *req, const char *what,
                                         const char *msg)
{
    rb__web_audit(req, what, NULL, "denied");
    return rb__web_error(req, 404, "not_found", "%s", msg);
}

static cJSON *collection_json(struct web_request *req, const struct rb_index_collection *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)c->id);
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddNumberToObject(o, "documents", (double)c->documents);
    cJSON_AddNumberToObject(o, "chunks", (double)c->chunks);
    cJSON_AddNumberToObject(o, "vectors", (double)c->vectors);
    cJSON_AddStringToObject(o, "index_type", c->index_type ? c->index_type : "none");
    cJSON_AddNumberToObject(o, "created_us", (double)c->created_us);
    cJSON_AddBoolToObject(o, "can_write", can(req, c->id, true));
    cJSON *pol = c->policy_json ? cJSON_Parse(c->policy_json) : NULL;
    cJSON_AddItemToObject(o, "policy", pol ? pol : cJSON_CreateObject());
    return o;
}

/* Looks the collection up and checks access; on failure has replied. */
static struct rb_index_collection *collection_for(struct web_request *req, const char *name,
                                                  bool write, enum MHD_Result *ret)
{
    struct rb_index_collection *c = NULL;
    enum rb_status st = rb_index_collection_get(req->web->index, name, &c);
    if (st == RB_ERR_NOT_FOUND || st == RB_ERR_INVALID) {
        *ret = rb__web_error(req, 404, "not_found", NO_COLLECTION);
        return NULL;
    }
    if (st != RB_OK) {
        *ret = rb__web_status(req, st, rb_index_errmsg(req->web->index));
        return NULL;
    }
    if (!can(req, c->id, false)) {
        rb_index_collection_free(c);
        *ret = denied_as_missing(req, "collection.access", NO_COLLECTION);
        return NULL;
    }
    if (write && !can(req, c->id, true)) {
        rb_index_collection_free(c);
        rb__web_audit(req, "collection.write", name, "denied");
        *ret = rb__web_error(req, 403, "forbidden", "you may not change this collection");
        return NULL;
    }
    return c;
}

/* The collections' ids and names (no counts) from the server's short-lived
 * cache: *out is a caller-owned array freed with rb_index_collection_list_free
 * in which only id and name are set. */
static enum rb_status collections_light(struct rb_web *web, struct rb_index_collection **out,
                                        size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&web->coll_lock);
    int64_t now = rb_time_mono_ns();
    enum rb_status st = RB_OK;
    if (!web->coll_at_ns || now - web->coll_at_ns > WEB_COLL_TTL_NS) {
        struct rb_index_collection *list = NULL;
        size_t cnt = 0;
        st = rb_index_collection_list(web->index, &list, &cnt);
        struct web_coll *c = st == RB_OK ? rb_calloc_array(cnt ? cnt : 1, sizeof *c) : NULL;
        if (st == RB_OK && !c)
            st = RB_ERR_NOMEM;
        for (size_t i = 0; c && i < cnt; i++) {
            c[i].id = list[i].id;
            c[i].name = list[i].name; /* moved */
            list[i].name = NULL;
        }
        rb_index_collection_list_free(list, cnt);
        if (st == RB_OK) {
            for (size_t i = 0; i < web->n_coll; i++)
                free(web->coll[i].name);
            free(web->coll);
            web->coll = c;
            web->n_coll = cnt;
            web->coll_at_ns = now;
        }
    }
    struct rb_index_collection *copy =
        st == RB_OK ? rb_calloc_array(web->n_coll ? web->n_coll : 1, sizeof *copy) : NULL;
    if (st == RB_OK && !copy)
        st = RB_ERR_NOMEM;
    for (size_t i = 0; copy && i < web->n_coll; i++) {
        copy[i].id = web->coll[i].id;
        copy[i].name = rb_strdup(web->coll[i].name);
        if (!copy[i].name)
            st = RB_ERR_NOMEM;
    }
    size_t cnt = web->n_coll;
    pthread_mutex_unlock(&web->coll_lock);
    if (st != RB_OK) {
        rb_index_collection_list_free(copy, copy ? cnt : 0);
        return st;
    }
    *out = copy;
    *n = cnt;
    return RB_OK;
}

static void collections_changed(struct rb_web *web)
{
    pthread_mutex_lock(&web->coll_lock);
    web->coll_at_ns = 0;
    pthread_mutex_unlock(&web->coll_lock);
}

static enum MHD_Result h_collections_list(struct web_request *req)
{
    struct rb_index_collection *list = NULL;
    size_t n = 0;
    enum rb_status st = rb_index_collection_list(req->web->index, &list, &n);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_index_errmsg(req->web->index));
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        if (can(req, list[i].id, false))
            cJSON_AddItemToArray(arr, collection_json(req, &list[i]));
    rb_index_collection_list_free(list, n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "collections", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_collections_create(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *name = rb_json_str(body, "name");
    cJSON *policy = cJSON_GetObjectItemCaseSensitive(body, "policy");
    if (!name || (policy && !cJSON_IsObject(policy))) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid", "name (string) required; policy must be an object");
    }
    char *policy_text = policy ? cJSON_PrintUnformatted(policy) : NULL;
    struct rb_index_collection_options co = {.policy_json = policy_text};
    int64_t id = 0;
    enum rb_status st = rb_index_collection_create(req->web->index, name, &co, &id);
    free(policy_text);
    collections_changed(req->web);
    if (st != RB_OK) {
        cJSON_Delete(body);
        if (st == RB_ERR_EXISTS)
            return rb__web_error(req, 409, "exists", "a collection with this name exists");
        return rb__web_status(req, st, st == RB_ERR_INVALID
                                           ? "collection names are 1..64 characters of "
                                             "A-Z a-z 0-9 . _ -, starting with a letter or digit"
                                           : NULL);
    }
    rb__web_audit(req, "collection.create", name, "ok");
    cJSON_Delete(body);
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get_by_id(req->web->index, id, &c) != RB_OK)
        return rb__web_status(req, RB_ERR_INTERNAL, rb_index_errmsg(req->web->index));
    cJSON *o = collection_json(req, c);
    rb_index_collection_free(c);
    return rb__web_json(req, 201, o);
}

static enum MHD_Result h_collections_delete(struct web_request *req)
{
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(req->web->index, req->params[0], &c) != RB_OK)
        return rb__web_error(req, 404, "not_found", NO_COLLECTION);
    int64_t id = c->id;
    rb_index_collection_free(c);
    enum rb_status st = rb_index_collection_delete(req->web->index, id);
    collections_changed(req->web);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_index_errmsg(req->web->index));
    if (rb_web_grant_drop_collection(req->web->auth, id) != RB_OK)
        RB_WARN("web", "grants of deleted collection %lld not dropped: %s", (long long)id,
                rb_web_auth_errmsg(req->web->auth));
    rb__web_audit(req, "collection.delete", req->params[0], "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

static enum MHD_Result h_policy_get(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_collection *c = collection_for(req, req->params[0], false, &ret);
    if (!c)
        return ret;
    cJSON *pol = c->policy_json ? cJSON_Parse(c->policy_json) : NULL;
    rb_index_collection_free(c);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "policy", pol ? pol : cJSON_CreateObject());
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_policy_put(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(req->web->index, req->params[0], &c) != RB_OK)
        return rb__web_error(req, 404, "not_found", NO_COLLECTION);
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body) {
        rb_index_collection_free(c);
        return ret;
    }
    cJSON *pol = cJSON_GetObjectItemCaseSensitive(body, "policy");
    char *text = cJSON_IsObject(pol) ? cJSON_PrintUnformatted(pol) : NULL;
    enum rb_status st = text ? RB_OK : RB_ERR_INVALID;
#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INGEST)
    /* the keys ragbox reads must be readable: {"redaction": {"ingest", "answers": bool}} */
    bool on = false, set = false;
    struct rb_errmsg perr;
    if (st == RB_OK && (rb_ingest_policy_redacts(text, &on, &perr) != RB_OK ||
                        rb_answer_policy_redacts_answers(text, &set, &on) != RB_OK)) {
        free(text);
        rb_index_collection_free(c);
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid",
                             "policy.redaction must be an object of booleans ingest and answers");
    }
#endif
    if (st == RB_OK)
        st = rb_index_collection_set_policy(req->web->index, c->id, text);
    free(text);
    rb_index_collection_free(c);
    cJSON_Delete(body);
    if (st != RB_OK)
        return rb__web_status(req, st, "policy must be a JSON object");
    rb__web_audit(req, "collection.policy", req->params[0], "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

static cJSON *document_json(const struct rb_index_document *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)d->id);
    cJSON_AddNumberToObject(o, "collection_id", (double)d->collection_id);
    cJSON_AddStringToObject(o, "source", d->source ? d->source : "");
    if (d->title)
        cJSON_AddStringToObject(o, "title", d->title);
    if (d->mime)
        cJSON_AddStringToObject(o, "mime", d->mime);
    if (d->language)
        cJSON_AddStringToObject(o, "language", d->language);
    if (d->sha256)
        cJSON_AddStringToObject(o, "sha256", d->sha256);
    cJSON_AddNumberToObject(o, "size", (double)d->size);
    cJSON_AddStringToObject(o, "state", rb_index_doc_state_name(d->state));
    if (d->error)
        cJSON_AddStringToObject(o, "error", d->error);
    cJSON_AddNumberToObject(o, "chunks", (double)d->chunk_count);
    cJSON_AddNumberToObject(o, "created_us", (double)d->created_us);
    cJSON_AddNumberToObject(o, "updated_us", (double)d->updated_us);
    return o;
}

static enum MHD_Result h_documents_list(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_collection *c = collection_for(req, req->params[0], false, &ret);
    if (!c)
        return ret;
    int64_t offset = 0, limit = 100;
    const char *o_text = rb__web_query(req, "offset"), *l_text = rb__web_query(req, "limit");
    if ((o_text && (rb_parse_i64(o_text, &offset) != RB_OK || offset < 0)) ||
        (l_text && (rb_parse_i64(l_text, &limit) != RB_OK || limit < 1 || limit > 10000))) {
        rb_index_collection_free(c);
        return rb__web_error(req, 400, "invalid", "offset >= 0 and limit 1..10000");
    }
    struct rb_index_document **docs = NULL;
    size_t n = 0;
    enum rb_status st = rb_index_document_list(req->web->index, c->id, offset, limit, &docs, &n);
    rb_index_collection_free(c);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_index_errmsg(req->web->index));
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, document_json(docs[i]));
    rb_index_document_list_free(docs, n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "documents", arr);
    return rb__web_json(req, 200, o);
}

/* Loads a document the caller may read (write); on failure has replied. */
static struct rb_index_document *document_for(struct web_request *req, bool write,
                                              enum MHD_Result *ret)
{
    int64_t id;
    struct rb_index_document *d = NULL;
    if (!parse_id(req->params[0], &id) ||
        rb_index_document_get(req->web->index, id, &d) != RB_OK) {
        *ret = rb__web_error(req, 404, "not_found", NO_DOCUMENT);
        return NULL;
    }
    if (!can(req, d->collection_id, false)) {
        rb_index_document_free(d);
        *ret = denied_as_missing(req, "document.access", NO_DOCUMENT);
        return NULL;
    }
    if (write && !can(req, d->collection_id, true)) {
        rb_index_document_free(d);
        rb__web_audit(req, "document.write", req->params[0], "denied");
        *ret = rb__web_error(req, 403, "forbidden", "you may not change this collection");
        return NULL;
    }
    return d;
}

static enum MHD_Result h_document_get(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_document *d = document_for(req, false, &ret);
    if (!d)
        return ret;
    cJSON *o = document_json(d);
    rb_index_document_free(d);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_document_delete(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_document *d = document_for(req, true, &ret);
    if (!d)
        return ret;
    enum rb_status st = rb_index_document_delete(req->web->index, d->id);
    if (st == RB_OK && d->source) {
        /* An uploaded original goes with its document. */
        char *prefix = rb_asprintf("%s/uploads/", req->web->data_dir);
        if (prefix && strncmp(d->source, prefix, strlen(prefix)) == 0 &&
            !strstr(d->source, "/../") && unlink(d->source) != 0)
            RB_WARN("web", "could not remove the uploaded file of document %lld",
                    (long long)d->id);
        free(prefix);
    }
    rb_index_document_free(d);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_index_errmsg(req->web->index));
    rb__web_audit(req, "document.delete", req->params[0], "ok");
    return rb__web_json(req, 200, cJSON_CreateObject());
}

#ifdef RB_WEB_HAVE_INGEST
enum MHD_Result rb__web_upload_finish(struct web_request *req);

static enum MHD_Result h_document_reingest(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_index_document *d = document_for(req, true, &ret);
    if (!d)
        return ret;
    int64_t id = d->id;
    bool exists = d->source && rb_fs_exists(d->source);
    rb_index_document_free(d);
    if (!exists)
        return rb__web_error(req, 409, "conflict", "the original file is no longer available");
    enum rb_status st = rb_index_document_set_state(req->web->index, id, RB_INDEX_DOC_PENDING, NULL);
    if (st == RB_OK)
        st = rb__web_ingest_enqueue(req->web, id);
    if (st != RB_OK)
        return rb__web_status(req, st, "the ingest queue is full; try again later");
    rb__web_audit(req, "document.reingest", req->params[0], "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", "pending");
    return rb__web_json(req, 202, o);
}

static enum MHD_Result h_ingest_status(struct web_request *req)
{
    struct web_ingest_counts c;
    rb__web_ingest_counts(req->web, &c);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "queued", (double)c.queued);
    cJSON_AddNumberToObject(o, "running", (double)c.running);
    cJSON_AddNumberToObject(o, "done", (double)c.done);
    cJSON_AddNumberToObject(o, "failed", (double)c.failed);
    return rb__web_json(req, 200, o);
}
#endif

static enum MHD_Result h_chunk_get(struct web_request *req)
{
    int64_t id;
    struct rb_index_chunk *ch = NULL;
    if (!parse_id(req->params[0], &id) || rb_index_chunk_get(req->web->index, id, &ch) != RB_OK)
        return rb__web_error(req, 404, "not_found", NO_PASSAGE);
    if (!can(req, ch->collection_id, false)) {
        rb_index_chunk_free(ch);
        return denied_as_missing(req, "passage.access", NO_PASSAGE);
    }
    struct rb_index_document *d = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)ch->id);
    cJSON_AddNumberToObject(o, "document_id", (double)ch->document_id);
    cJSON_AddNumberToObject(o, "ordinal", ch->ordinal);
    cJSON_AddStringToObject(o, "text", ch->text ? ch->text : "");
    cJSON_AddNumberToObject(o, "page_start", ch->page_start);
    cJSON_AddNumberToObject(o, "page_end", ch->page_end);
    if (ch->section)
        cJSON_AddStringToObject(o, "section", ch->section);
    if (rb_index_document_get(req->web->index, ch->document_id, &d) == RB_OK) {
        cJSON_AddItemToObject(o, "document", document_json(d));
        rb_index_document_free(d);
    }
    struct rb_index_collection *col = NULL;
    bool have_col = rb_index_collection_get_by_id(req->web->index, ch->collection_id, &col) ==
                    RB_OK;
    rb__web_audit_access(req, false, have_col ? col->name : NULL, NULL, &ch->id, 1, -1);
    rb_index_collection_free(col);
    rb_index_chunk_free(ch);
    return rb__web_json(req, 200, o);
}

/* The retrieval ACL: the set of collections this search may touch. */
struct search_acl {
    struct rb_web_auth *auth;
    int64_t user_id;
    const int64_t *ids;
    size_t n;
};

static bool search_allow(void *ctx, int64_t collection_id, int64_t document_id)
{
    (void)document_id;
    const struct search_acl *acl = ctx;
    bool listed = false;
    for (size_t i = 0; i < acl->n && !listed; i++)
        listed = acl->ids[i] == collection_id;
    /* The set was computed from the grants when the request started. */
    return listed;
}

static enum MHD_Result h_search(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *text = rb_json_str(body, "query");
    const char *mode_text = rb_json_str(body, "mode");
    double k = rb_json_num(body, "k", 10);
    cJSON *names = cJSON_GetObjectItemCaseSensitive(body, "collections");
    enum rb_index_mode mode = RB_INDEX_MODE_KEYWORD;
    if (!text || !*text || strlen(text) > 4096 || k < 1 || k > 100 ||
        (names && !cJSON_IsArray(names)) ||
        (mode_text && (rb_index_mode_parse(mode_text, &mode) != RB_OK ||
                       mode == RB_INDEX_MODE_VECTOR || mode == RB_INDEX_MODE_HYBRID))) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid",
                             "query (1..4096 bytes), k 1..100, collections [names], mode "
                             "keyword|auto");
    }
    /* Resolve the collections: named ones must be readable (else "no such
     * collection"), none named = every readable one. */
    struct rb_index_collection *list = NULL;
    size_t n = 0;
    enum rb_status st = collections_light(req->web, &list, &n);
    if (st != RB_OK) {
        cJSON_Delete(body);
        return rb__web_status(req, st, rb_index_errmsg(req->web->index));
    }
    int64_t *ids = rb_calloc_array(n ? n : 1, sizeof *ids);
    size_t n_ids = 0;
    bool missing = false;
    struct rb_buf colnames;
    rb_buf_init(&colnames, 1 << 20);
    if (names && cJSON_GetArraySize(names) > 0) {
        const cJSON *nm;
        cJSON_ArrayForEach(nm, names)
        {
            bool found = false;
            for (size_t i = 0; i < n && cJSON_IsString(nm); i++) {
                if (strcmp(list[i].name, nm->valuestring) == 0 && can(req, list[i].id, false)) {
                    bool dup = false;
                    for (size_t j = 0; j < n_ids; j++)
                        dup |= ids[j] == list[i].id;
                    if (!dup && ids) {
                        ids[n_ids++] = list[i].id;
                        if (rb_buf_printf(&colnames, "%s%s", colnames.len ? "," : "",
                                          list[i].name) != RB_OK)
                            missing = true;
                    }
                    found = true;
                }
            }
            missing |= !found;
        }
    } else {
        for (size_t i = 0; i < n && ids; i++) {
            if (can(req, list[i].id, false)) {
                ids[n_ids++] = list[i].id;
                if (rb_buf_printf(&colnames, "%s%s", colnames.len ? "," : "", list[i].name) !=
                    RB_OK)
                    missing = true;
            }
        }
    }
    rb_index_collection_list_free(list, n);
    if (missing || !ids) {
        free(ids);
        rb_buf_free(&colnames);
        cJSON_Delete(body);
        if (missing)
            return denied_as_missing(req, "search.collection", NO_COLLECTION);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *hits = cJSON_AddArrayToObject(o, "hits");
    if (n_ids > 0) {
        struct search_acl acl = {req->web->auth, req->caller.user.id, ids, n_ids};
        struct rb_index_query q = {.text = text,
                                   .mode = mode,
                                   .k = (int)k,
                                   .collection_ids = ids,
                                   .n_collections = n_ids,
                                   .allow = search_allow,
                                   .allow_ctx = &acl};
        struct rb_index_results res = {0};
        st = rb_index_search(req->web->index, &q, &res);
        if (st != RB_OK) {
            free(ids);
            rb_buf_free(&colnames);
            cJSON_Delete(body);
            cJSON_Delete(o);
            return rb__web_status(req, st, "the search failed");
        }
        for (size_t i = 0; i < res.n; i++) {
            const struct rb_index_hit *h = &res.hits[i];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "chunk_id", (double)h->chunk_id);
            cJSON_AddNumberToObject(x, "document_id", (double)h->document_id);
            cJSON_AddNumberToObject(x, "collection_id", (double)h->collection_id);
            cJSON_AddStringToObject(x, "source", h->source ? h->source : "");
            if (h->title)
                cJSON_AddStringToObject(x, "title", h->title);
            cJSON_AddNumberToObject(x, "page_start", h->page_start);
            cJSON_AddNumberToObject(x, "page_end", h->page_end);
            if (h->section)
                cJSON_AddStringToObject(x, "section", h->section);
            cJSON_AddStringToObject(x, "text", h->text ? h->text : "");
            cJSON_AddNumberToObject(x, "score", h->score);
            cJSON_AddItemToArray(hits, x);
        }
        cJSON_AddStringToObject(o, "mode", rb_index_mode_name(res.mode));
        int64_t *hit_ids = res.n ? rb_calloc_array(res.n, sizeof *hit_ids) : NULL;
        for (size_t i = 0; hit_ids && i < res.n; i++)
            hit_ids[i] = res.hits[i].chunk_id;
        rb__web_audit_access(req, true, colnames.data, text, hit_ids, hit_ids ? res.n : 0,
                             (rb_time_mono_ns() - req->start_ns) / 1000000);
        free(hit_ids);
        rb_index_results_free(&res);
    }
    free(ids);
    rb_buf_free(&colnames);
    cJSON_Delete(body);
    return rb__web_json(req, 200, o);
}

static enum rb_status metrics_ingest(struct rb_web *web, struct rb_buf *b)
{
    struct web_ingest_counts c;
    rb__web_ingest_counts(web, &c);
    return rb_buf_printf(b,
                         "# HELP ragbox_ingest_queue_depth Uploaded documents waiting.\n"
                         "# TYPE ragbox_ingest_queue_depth gauge\n"
                         "ragbox_ingest_queue_depth %lld\n"
                         "# HELP ragbox_ingest_documents_total Uploaded documents ingested.\n"
                         "# TYPE ragbox_ingest_documents_total counter\n"
                         "ragbox_ingest_documents_total{outcome=\"indexed\"} %lld\n"
                         "ragbox_ingest_documents_total{outcome=\"failed\"} %lld\n",
                         (long long)(c.queued + c.running), (long long)c.done,
                         (long long)c.failed);
}

#ifdef RB_WEB_HAVE_ANSWER
/* ================================================================== ask */

/* An ask running on a worker: owned copies of everything the request
 * thread resolved (the caller, the readable collections), and the stream
 * its events go to. */
struct ask_task {
    struct rb_web *web;
    struct web_stream *stream;
    char *question;
    char *vertical;
    char *draft;        /* drafting mode "notice" | "reply", or NULL */
    enum rb_answer_mode mode;
    int64_t *ids;       /* readable collections asked, n */
    char **names;       /* their names, n */
    size_t n;
    int64_t user_id;
    char user[RB_WEB_NAME_MAX + 1];
    char ip[64];
    size_t pieces;      /* token events sent */
    bool v1;            /* OpenAI chunk format instead of ragbox events */
    char v1_id[48];
    char v1_model[96];
    int64_t created;
};

static void ask_task_free(struct ask_task *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->names && i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->ids);
    free(t->question);
    free(t->vertical);
    free(t->draft);
    free(t);
}

static cJSON *v1_chunk(const char *id, int64_t created, const char *model, const char *content,
                       const char *finish);
static cJSON *v1_error(const char *message, const char *type);

/* The answer pipeline's streaming callback: each generated piece leaves as
 * an event at once. False (client gone, server stopping) cancels the
 * generation. */
static bool ask_piece(void *user, const char *piece, size_t len)
{
    struct ask_task *t = user;
    char *text = rb_strndup(piece, len);
    if (!text)
        return false;
    cJSON *o;
    if (t->v1) {
        o = v1_chunk(t->v1_id, t->created, t->v1_model, text, NULL);
    } else {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", text);
    }
    free(text);
    bool ok = rb__web_stream_event(t->stream, t->v1 ? NULL : "token", o);
    struct web_metrics *m = &t->web->metrics;
    pthread_mutex_lock(&m->lock);
    m->stream_pieces++;
    pthread_mutex_unlock(&m->lock);
    t->pieces++;
    return ok;
}

static void ask_run(void *arg)
{
    struct ask_task *t = arg;
    struct rb_web *web = t->web;
    struct search_acl acl = {web->auth, t->user_id, t->ids, t->n};
    struct rb_answer_request ar = {.question = t->question,
                                   .collections = (const char *const *)t->names,
                                   .n_collections = t->n,
                                   .vertical = t->vertical,
                                   .mode = t->mode,
                                   .allow = search_allow,
                                   .allow_ctx = &acl,
                                   .user = t->user,
                                   .client = t->ip,
                                   .on_piece = ask_piece,
                                   .stream_user = t,
                                   .draft = t->draft};
    struct rb_answer_result res;
    memset(&res, 0, sizeof res);
    struct rb_errmsg err;
    rb_errmsg_clear(&err);
    enum rb_status st = RB_ERR_CANCELLED;
    if (rb__web_stream_alive(t->stream)) /* the client may have left while queued */
        st = rb_answerer_ask(web->answerer, &ar, &res, &err);
    if (st == RB_OK) {
        cJSON *full = rb_answer_result_json(&res, false);
        cJSON *arr = cJSON_Duplicate(cJSON_GetObjectItem(full, "citations"), true);
        if (t->pieces == 0 && res.answer) /* nothing streamed: the answer in one piece */
            (void)ask_piece(t, res.answer, strlen(res.answer));
        char *cit_text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        if (rb_web_history_add(web->auth, t->user_id, t->names[0], t->question, res.answer,
                               cit_text, NULL) != RB_OK)
            RB_WARN("web", "history not recorded: %s", rb_web_auth_errmsg(web->auth));
        free(cit_text);
        if (t->v1) {
            cJSON *last = v1_chunk(t->v1_id, t->created, t->v1_model, NULL, "stop");
            cJSON *x = cJSON_AddObjectToObject(last, "ragbox");
            cJSON_AddItemToObject(x, "citations", arr ? arr : cJSON_CreateArray());
            cJSON_AddBoolToObject(x, "refused", res.refused);
            /* the final text supersedes the streamed one (citations checked) */
            cJSON_AddStringToObject(x, "answer", res.answer ? res.answer : "");
            cJSON_Delete(full);
            if (rb__web_stream_event(t->stream, NULL, last))
                (void)rb__web_stream_write(t->stream, "data: [DONE]\n\n", 14);
        } else {
            cJSON *cites = cJSON_CreateObject();
            cJSON_AddItemToObject(cites, "citations", arr ? arr : cJSON_CreateArray());
            cJSON_AddNumberToObject(full, "streamed_pieces", (double)t->pieces);
            if (rb__web_stream_event(t->stream, "citations", cites))
                (void)rb__web_stream_event(t->stream, "done", full);
            else
                cJSON_Delete(full);
        }
    } else if (st == RB_ERR_CANCELLED || !rb__web_stream_alive(t->stream)) {
        if (st == RB_ERR_CANCELLED) { /* generation cut short by the disconnect */
            struct web_metrics *m = &web->metrics;
            pthread_mutex_lock(&m->lock);
            m->streams_cancelled++;
            pthread_mutex_unlock(&m->lock);
        }
        RB_INFO("web", "ask ended early: the client left after %zu pieces (%s)", t->pieces,
                rb_status_name(st));
    } else {
        RB_WARN("web", "ask failed: %s", err.text);
        const char *msg = st == RB_ERR_NOT_FOUND ? NO_COLLECTION
                          : (st == RB_ERR_INTERNAL || st == RB_ERR_DB || st == RB_ERR_IO)
                              ? rb_status_str(st)
                              : err.text;
        if (t->v1) {
            (void)rb__web_stream_event(t->stream, NULL, v1_error(msg, "server_error"));
        } else {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "code", rb_status_name(st));
            cJSON_AddStringToObject(e, "message", msg);
            (void)rb__web_stream_event(t->stream, "error", e);
        }
    }
    rb_answer_result_free(&res);
    rb__web_stream_finish(t->stream);
    ask_task_free(t);
}

static void ask_drop(void *arg)
{
    struct ask_task *t = arg;
    rb__web_stream_finish(t->stream);
    ask_task_free(t);
}

/* Resolves the collections a request may ask: the named ones (each must be
 * readable, else "no such collection"), or every readable one when none is
 * named. Fills t->ids/names/n. Returns false with *ret queued on refusal. */
static bool ask_collections(struct web_request *req, const cJSON *names, const char *one,
                            struct ask_task *t, bool v1, enum MHD_Result *ret)
{
    struct rb_index_collection *list = NULL;
    size_t n = 0;
    enum rb_status st = collections_light(req->web, &list, &n);
    if (st != RB_OK) {
        *ret = rb__web_status(req, st, rb_index_errmsg(req->web->index));
        return false;
    }
    t->ids = rb_calloc_array(n ? n : 1, sizeof *t->ids);
    t->names = rb_calloc_array(n ? n : 1, sizeof *t->names);
    bool oom = !t->ids || !t->names;
    for (size_t i = 0; i < n && !oom; i++) {
        if (!can(req, list[i].id, false))
            continue;
        bool wanted = !names && !one;
        if (one && strcmp(one, list[i].name) == 0)
            wanted = true;
        const cJSON *nm;
        cJSON_ArrayForEach(nm, names)
        {
            if (cJSON_IsString(nm) && strcmp(nm->valuestring, list[i].name) == 0)
                wanted = true;
        }
        if (wanted) {
            t->ids[t->n] = list[i].id;
            t->names[t->n] = rb_strdup(list[i].name);
            oom |= !t->names[t->n];
            t->n++;
        }
    }
    rb_index_collection_list_free(list, n);
    if (oom) {
        *ret = rb__web_status(req, RB_ERR_NOMEM, NULL);
        return false;
    }
    /* Every named collection must be readable (else: "no such collection"). */
    size_t n_named = (one ? 1 : 0) + (size_t)(names ? cJSON_GetArraySize(names) : 0);
    if ((one || names) && t->n < n_named) {
        if (v1) {
            rb__web_audit(req, "v1.collection", NULL, "denied");
            *ret = rb__web_json(req, 404, v1_error("no such collection", "invalid_request_error"));
        } else {
            *ret = denied_as_missing(req, "ask.collection", NO_COLLECTION);
        }
        return false;
    }
    if (t->n == 0) {
        *ret = v1 ? rb__web_json(req, 404, v1_error("you may not read any collection",
                                                      "invalid_request_error"))
                  : rb__web_error(req, 404, "not_found", "you may not read any collection");
        return false;
    }
    return true;
}

static struct ask_task *ask_task_new(struct web_request *req, const char *question,
                                     const char *vertical)
{
    struct ask_task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->web = req->web;
    t->question = rb_strdup(question);
    t->vertical = vertical ? rb_strdup(vertical) : NULL;
    t->user_id = req->caller.user.id;
    rb_strlcpy(t->user, req->caller.user.name, sizeof t->user);
    rb_strlcpy(t->ip, req->ip, sizeof t->ip);
    t->created = rb_time_now_us() / 1000000;
    if (!t->question || (vertical && !t->vertical)) {
        ask_task_free(t);
        return NULL;
    }
    return t;
}

/* Starts the stream and hands the task to a worker (which then owns it). */
static enum MHD_Result ask_start(struct web_request *req, struct ask_task *t)
{
    struct web_stream *s = NULL;
    enum MHD_Result ret = rb__web_stream_start(req, &s);
    if (!s) {
        ask_task_free(t);
        return ret;
    }
    t->stream = s;
    if (rb__web_workers_submit(req->web, ask_run, ask_drop, t) != RB_OK) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "code", "unavailable");
        cJSON_AddStringToObject(e, "message", "the server is shutting down");
        (void)rb__web_stream_event(s, "error", e);
        ask_drop(t);
    }
    return ret;
}

/* POST /api/ask {question, collections?: [names], vertical?, mode?: auto|extractive|generate,
 * draft?: notice|reply (drafting mode, government pack)}:
 * Server-Sent Events, sent as they are produced: "token" {text} for each
 * generated piece, then "citations" {citations:[...]} and "done" {answer,
 * refused, refusal, lang, mode, audit_id, ...}; or "error" {code, message}.
 * The answer runs on a worker; a client that disconnects cancels it. */
static enum MHD_Result h_ask(struct web_request *req)
{
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *question = rb_json_str(body, "question");
    const char *vertical = rb_json_str(body, "vertical");
    const char *mode_text = rb_json_str(body, "mode");
    const char *draft = rb_json_str(body, "draft"); /* drafting mode: "notice" | "reply" */
    cJSON *names = cJSON_GetObjectItemCaseSensitive(body, "collections");
    const char *one = rb_json_str(body, "collection");
    enum rb_answer_mode mode = RB_ANSWER_MODE_AUTO;
    if (mode_text && strcmp(mode_text, "extractive") == 0)
        mode = RB_ANSWER_MODE_EXTRACTIVE;
    else if (mode_text && strcmp(mode_text, "generate") == 0)
        mode = RB_ANSWER_MODE_GENERATE;
    else if (mode_text && strcmp(mode_text, "auto") != 0)
        mode = (enum rb_answer_mode)-1;
    if (!question || !*question || strlen(question) > 8192 || (names && !cJSON_IsArray(names)) ||
        (int)mode < 0 || (vertical && strlen(vertical) > 64) ||
        (cJSON_GetObjectItemCaseSensitive(body, "draft") && !draft) ||
        (draft && strcmp(draft, "notice") != 0 && strcmp(draft, "reply") != 0)) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid",
                             "question (1..8192 bytes), collections [names], mode "
                             "auto|extractive|generate, draft notice|reply");
    }
#ifdef RB_WEB_HAVE_ANSWER
    if (mode == RB_ANSWER_MODE_GENERATE && !req->web->backend) {
        cJSON_Delete(body);
        return rb__web_error(req, 503, "no_model",
                             "no generation model is configured on this server ([engine] model)");
    }
#endif
    struct ask_task *t = ask_task_new(req, question, vertical);
    if (!t) {
        cJSON_Delete(body);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    t->mode = mode;
    if (draft && !(t->draft = rb_strdup(draft))) {
        cJSON_Delete(body);
        ask_task_free(t);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    bool ok = ask_collections(req, names, one, t, false, &ret);
    cJSON_Delete(body);
    if (!ok) {
        ask_task_free(t);
        return ret;
    }
    return ask_start(req, t);
}

/* ============================================== OpenAI-compatible (/v1) */

/* Models: "ragbox" answers through retrieval over every readable collection,
 * "ragbox/<collection>" over one. No free generation model is wired into the
 * server in this build, so every completion is a retrieval answer. */
static enum MHD_Result h_v1_models(struct web_request *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    int64_t created = req->web->started_us / 1000000;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", "ragbox");
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "ragbox");
    cJSON_AddItemToArray(data, m);
#ifdef RB_WEB_HAVE_ENGINE
    if (req->web->embedder) {
        m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", req->web->embedder_name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)created);
        cJSON_AddStringToObject(m, "owned_by", "ragbox");
        cJSON_AddItemToArray(data, m);
    }
#endif
    struct rb_index_collection *list = NULL;
    size_t n = 0;
    if (collections_light(req->web, &list, &n) == RB_OK) {
        for (size_t i = 0; i < n; i++) {
            if (!can(req, list[i].id, false))
                continue;
            char id[96];
            snprintf(id, sizeof id, "ragbox/%s", list[i].name);
            m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "id", id);
            cJSON_AddStringToObject(m, "object", "model");
            cJSON_AddNumberToObject(m, "created", (double)list[i].created_us / 1e6);
            cJSON_AddStringToObject(m, "owned_by", "ragbox");
            cJSON_AddItemToArray(data, m);
        }
        rb_index_collection_list_free(list, n);
    }
    return rb__web_json(req, 200, o);
}

static cJSON *v1_error(const char *message, const char *type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "code");
    return o;
}

static cJSON *v1_chunk(const char *id, int64_t created, const char *model, const char *content,
                       const char *finish)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
    if (content) {
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", content);
    }
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
    return o;
}

static enum MHD_Result h_v1_chat(struct web_request *req)
{
    struct rb_web *web = req->web;
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *model = rb_json_str(body, "model");
    bool stream = rb_json_bool(body, "stream", false);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    const char *question = NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        const char *role = rb_json_str(m, "role");
        const char *content = rb_json_str(m, "content");
        if (role && content && strcmp(role, "user") == 0)
            question = content; /* the last user message is the question */
    }
    const char *collection = NULL;
    if (model && strncmp(model, "ragbox/", 7) == 0)
        collection = model + 7;
    else if (!model || strcmp(model, "ragbox") != 0) {
        cJSON_Delete(body);
        return rb__web_json(req, 404,
                            v1_error("unknown model: use \"ragbox\" or \"ragbox/<collection>\" "
                                     "(see /v1/models)",
                                     "invalid_request_error"));
    }
    cJSON *rbx = cJSON_GetObjectItemCaseSensitive(body, "ragbox");
    if (!collection && rb_json_str(rbx, "collection"))
        collection = rb_json_str(rbx, "collection");
    if (!question || !*question || strlen(question) > 8192 || !cJSON_IsArray(msgs)) {
        cJSON_Delete(body);
        return rb__web_json(req, 400, v1_error("messages must hold a user message of 1..8192 bytes",
                                               "invalid_request_error"));
    }
    /* The collections: the named one if readable, else every readable one. */
    struct ask_task *t = ask_task_new(req, question, NULL);
    if (!t) {
        cJSON_Delete(body);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    if (!ask_collections(req, NULL, collection, t, true, &ret)) {
        ask_task_free(t);
        cJSON_Delete(body);
        return ret;
    }
    uint8_t rnd[8];
    char hex[17] = "0000000000000000";
    if (rb_random_bytes(rnd, sizeof rnd) == RB_OK)
        rb_hex_encode(rnd, sizeof rnd, hex);
    snprintf(t->v1_id, sizeof t->v1_id, "chatcmpl-%s", hex);
    rb_strlcpy(t->v1_model, model, sizeof t->v1_model);
    t->v1 = true;
    cJSON_Delete(body);
    if (stream) /* chunks leave as tokens are generated (ask_run) */
        return ask_start(req, t);
    struct search_acl acl = {web->auth, t->user_id, t->ids, t->n};
    struct rb_answer_request ar = {.question = t->question,
                                   .collections = (const char *const *)t->names,
                                   .n_collections = t->n,
                                   .allow = search_allow,
                                   .allow_ctx = &acl,
                                   .user = t->user,
                                   .client = t->ip};
    struct rb_answer_result res;
    memset(&res, 0, sizeof res);
    struct rb_errmsg err;
    rb_errmsg_clear(&err);
    enum rb_status st = rb_answerer_ask(web->answerer, &ar, &res, &err);
    if (st != RB_OK) {
        rb_answer_result_free(&res);
        ask_task_free(t);
        RB_WARN("web", "v1 chat failed: %s", err.text);
        return rb__web_json(req, 500, v1_error("the answer failed", "server_error"));
    }
    cJSON *cites = rb_answer_result_json(&res, false);
    cJSON *citations = cJSON_DetachItemFromObject(cites, "citations");
    cJSON_Delete(cites);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->v1_id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)t->created);
    cJSON_AddStringToObject(o, "model", t->v1_model);
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", res.answer ? res.answer : "");
    cJSON_AddStringToObject(ch, "finish_reason", "stop");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)res.context_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", 0);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)res.context_tokens);
    /* ragbox extension: the sources, and whether the answer is a refusal. */
    cJSON *x = cJSON_AddObjectToObject(o, "ragbox");
    cJSON_AddItemToObject(x, "citations", citations ? citations : cJSON_CreateArray());
    cJSON_AddBoolToObject(x, "refused", res.refused);
    rb_answer_result_free(&res);
    ask_task_free(t);
    return rb__web_json(req, 200, o);
}
#endif /* RB_WEB_HAVE_ANSWER */

#if defined(RB_WEB_HAVE_ENGINE) && defined(RB_WEB_HAVE_ANSWER)
/* ====================================================== /v1/embeddings */

#define V1_EMBED_MAX_INPUTS 256
#define V1_EMBED_MAX_BYTES 32768

static bool v1_embed_model_ok(const struct rb_web *web, const char *model)
{
    if (!model)
        return false;
    size_t n = strlen(web->embedder_name);
    return strcmp(model, web->embedder_name) == 0 || strcmp(model, "ragbox-embed") == 0 ||
           (strncmp(model, web->embedder_name, n) == 0 && strcmp(model + n, ".gguf") == 0);
}

/* POST /v1/embeddings {model, input: string | [strings], encoding_format?:
 * "float" | "base64"}: OpenAI-compatible vectors from the configured
 * embedding model (L2-normalised, pooled as the model says). */
static enum MHD_Result h_v1_embeddings(struct web_request *req)
{
    struct rb_web *web = req->web;
    if (!web->embedder)
        return rb__web_json(req, 503, v1_error("no embedding model is configured on this server "
                                               "([engine] embedding_model)",
                                               "server_error"));
    enum MHD_Result ret;
    cJSON *body = rb__web_body_json(req, &ret);
    if (!body)
        return ret;
    const char *model = rb_json_str(body, "model");
    const char *format = rb_json_str(body, "encoding_format");
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(body, "dimensions");
    int dim = rb_engine_model_dim(web->embedder);
    if (!model || !v1_embed_model_ok(web, model)) {
        cJSON_Delete(body);
        char msg[400];
        snprintf(msg, sizeof msg, "unknown embedding model: use \"%s\" (see /v1/models)",
                 web->embedder_name);
        return rb__web_json(req, 404, v1_error(msg, "invalid_request_error"));
    }
    bool b64 = false;
    if (format && strcmp(format, "base64") == 0)
        b64 = true;
    else if (format && strcmp(format, "float") != 0) {
        cJSON_Delete(body);
        return rb__web_json(req, 400, v1_error("encoding_format must be float or base64",
                                               "invalid_request_error"));
    }
    if (dims && !cJSON_IsNull(dims) && (!cJSON_IsNumber(dims) || dims->valuedouble != dim)) {
        cJSON_Delete(body);
        char msg[128];
        snprintf(msg, sizeof msg, "this model's vectors have %d dimensions", dim);
        return rb__web_json(req, 400, v1_error(msg, "invalid_request_error"));
    }
    const char *texts[V1_EMBED_MAX_INPUTS];
    size_t n = 0;
    bool bad = false;
    if (cJSON_IsString(input)) {
        texts[n++] = input->valuestring;
    } else if (cJSON_IsArray(input) && cJSON_GetArraySize(input) >= 1 &&
               cJSON_GetArraySize(input) <= V1_EMBED_MAX_INPUTS) {
        const cJSON *it;
        cJSON_ArrayForEach(it, input)
        {
            if (!cJSON_IsString(it)) {
                bad = true;
                break;
            }
            texts[n++] = it->valuestring;
        }
    } else {
        bad = true;
    }
    for (size_t i = 0; i < n && !bad; i++) {
        size_t len = strlen(texts[i]);
        bad = len == 0 || len > V1_EMBED_MAX_BYTES || !rb_utf8_valid(texts[i], len);
    }
    if (bad || n == 0) {
        cJSON_Delete(body);
        return rb__web_json(req, 400,
                            v1_error("input must be a non-empty UTF-8 string or an array of 1..256 "
                                     "such strings (at most 32768 bytes each; token arrays are "
                                     "not accepted)",
                                     "invalid_request_error"));
    }
    float *vecs = rb_calloc_array(n * (size_t)dim, sizeof *vecs);
    if (!vecs) {
        cJSON_Delete(body);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    enum rb_status st = rb_engine_embed(web->embedder, texts, n, vecs);
    if (st != RB_OK) {
        RB_WARN("web", "embeddings failed: %s", rb_engine_model_errmsg(web->embedder));
        free(vecs);
        cJSON_Delete(body);
        return rb__web_json(req, 500, v1_error("the embedding failed", "server_error"));
    }
    size_t tokens = 0;
    for (size_t i = 0; i < n; i++) {
        size_t t = 0;
        if (web->embed_tok && rb_engine_token_count(web->embed_tok, texts[i], strlen(texts[i]),
                                                    RB_ENGINE_TOKENIZE_ADD_SPECIAL, &t) == RB_OK)
            tokens += t;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    bool oom = !o || !data;
    for (size_t i = 0; i < n && !oom; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", (double)i);
        const float *v = vecs + i * (size_t)dim;
        if (b64) {
            /* little-endian float32 bytes, base64 (what the OpenAI SDKs send by default) */
            size_t raw = (size_t)dim * sizeof(float);
            char *enc = malloc(4 * ((raw + 2) / 3) + 1);
            if (enc) {
                EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)v, (int)raw);
                cJSON_AddStringToObject(e, "embedding", enc);
                free(enc);
            } else {
                oom = true;
            }
        } else {
            cJSON *arr = cJSON_AddArrayToObject(e, "embedding");
            for (int d = 0; arr && d < dim; d++)
                cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)v[d]));
        }
        cJSON_AddItemToArray(data, e);
    }
    free(vecs);
    cJSON_AddStringToObject(o, "model", web->embedder_name);
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)tokens);
    cJSON_Delete(body);
    if (oom) {
        cJSON_Delete(o);
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    }
    pthread_mutex_lock(&web->metrics.lock);
    web->metrics.embeddings += n;
    pthread_mutex_unlock(&web->metrics.lock);
    return rb__web_json(req, 200, o);
}
#endif

/* Totals for /metrics (no per-collection labels: names could leak). */
enum rb_status rb__web_metrics_index(struct rb_web *web, struct rb_buf *b);
enum rb_status rb__web_metrics_index(struct rb_web *web, struct rb_buf *b)
{
    struct rb_index_collection *list = NULL;
    size_t n = 0;
    if (rb_index_collection_list(web->index, &list, &n) != RB_OK)
        return RB_OK;
    int64_t docs = 0, chunks = 0, vectors = 0;
    for (size_t i = 0; i < n; i++) {
        docs += list[i].documents;
        chunks += list[i].chunks;
        vectors += list[i].vectors;
    }
    rb_index_collection_list_free(list, n);
    return rb_buf_printf(b,
                         "# HELP ragbox_index_collections Collections in the index.\n"
                         "# TYPE ragbox_index_collections gauge\n"
                         "ragbox_index_collections %zu\n"
                         "# HELP ragbox_index_documents Documents in the index.\n"
                         "# TYPE ragbox_index_documents gauge\n"
                         "ragbox_index_documents %lld\n"
                         "# HELP ragbox_index_chunks Passages in the index.\n"
                         "# TYPE ragbox_index_chunks gauge\n"
                         "ragbox_index_chunks %lld\n"
                         "# HELP ragbox_index_vectors Passages with an embedding.\n"
                         "# TYPE ragbox_index_vectors gauge\n"
                         "ragbox_index_vectors %lld\n",
                         n, (long long)docs, (long long)chunks, (long long)vectors) ||
           metrics_ingest(web, b);
}
#endif /* RB_WEB_HAVE_INDEX */


#ifdef RB_WEB_HAVE_AUDIT
/* ================================================================ audit */

/* The filter from the query string; on failure has replied. */
static bool audit_filter(struct web_request *req, struct rb_audit_filter *f, size_t max_limit,
                         enum MHD_Result *ret)
{
    rb_audit_filter_init(f);
    const char *from = rb__web_query(req, "from"), *to = rb__web_query(req, "to");
    const char *action = rb__web_query(req, "action"), *limit = rb__web_query(req, "limit");
    if ((from && rb_audit_parse_time(from, &f->from_us) != RB_OK) ||
        (to && rb_audit_parse_time(to, &f->to_us) != RB_OK)) {
        *ret = rb__web_error(req, 400, "invalid", "from/to: 2026-11-25 or 2026-11-25T06:00:00Z");
        return false;
    }
    if (action) {
        enum rb_audit_action a;
        if (rb_audit_action_parse(action, &a) != RB_OK) {
            *ret = rb__web_error(req, 400, "invalid", "unknown audit action");
            return false;
        }
        f->action = (int)a;
    }
    int64_t lim = (int64_t)max_limit;
    if (limit && (rb_parse_i64(limit, &lim) != RB_OK || lim < 1 || lim > (int64_t)max_limit)) {
        *ret = rb__web_error(req, 400, "invalid", "limit must be 1..%zu", max_limit);
        return false;
    }
    f->limit = (size_t)lim;
    f->user = rb__web_query(req, "user");
    f->collection = rb__web_query(req, "collection");
    f->outcome = rb__web_query(req, "outcome");
    f->text = rb__web_query(req, "text");
    return true;
}

static enum rb_status audit_collect(void *user, const cJSON *record, const char *line, size_t len)
{
    (void)line, (void)len;
    cJSON *copy = cJSON_Duplicate(record, true);
    if (!copy)
        return RB_ERR_NOMEM;
    cJSON_AddItemToArray(user, copy);
    return RB_OK;
}

static enum MHD_Result h_audit_query(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_audit_filter f;
    if (!audit_filter(req, &f, 10000, &ret))
        return ret;
    if (!rb__web_query(req, "limit"))
        f.limit = 200;
    cJSON *arr = cJSON_CreateArray();
    struct rb_errmsg err;
    enum rb_status st = rb_audit_scan(req->web->audit_opts.dir, &f, audit_collect, arr, &err);
    if (st != RB_OK) {
        cJSON_Delete(arr);
        return rb__web_status(req, st, err.text);
    }
    rb__web_audit(req, "audit.query", NULL, "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "records", arr);
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_audit_verify(struct web_request *req)
{
    struct rb_audit_verify_report rep;
    struct rb_errmsg err;
    memset(&rep, 0, sizeof rep);
    /* Seal what this process appended so far, then check the whole chain. */
    if (rb_audit_checkpoint(req->web->audit) != RB_OK)
        RB_WARN("web", "audit checkpoint: %s", rb_audit_errmsg(req->web->audit));
    enum rb_status st = rb_audit_verify(req->web->audit_opts.dir, NULL, &rep, &err);
    if (st != RB_OK)
        return rb__web_status(req, st, err.text);
    rb__web_audit(req, "audit.verify", NULL, rep.ok ? "ok" : "failed");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", rep.ok);
    cJSON_AddNumberToObject(o, "records", (double)rep.records);
    cJSON_AddNumberToObject(o, "files", (double)rep.files);
    cJSON_AddNumberToObject(o, "checkpoints", (double)rep.checkpoints);
    cJSON_AddNumberToObject(o, "first_seq", (double)rep.first_seq);
    cJSON_AddNumberToObject(o, "last_seq", (double)rep.last_seq);
    cJSON_AddNumberToObject(o, "unsealed", (double)rep.unsealed);
    if (!rep.ok) {
        cJSON_AddStringToObject(o, "problem", rep.problem);
        cJSON_AddStringToObject(o, "file", rep.file);
        cJSON_AddNumberToObject(o, "line", (double)rep.line);
        cJSON_AddNumberToObject(o, "seq", (double)rep.seq);
    }
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_audit_export(struct web_request *req)
{
    enum MHD_Result ret;
    struct rb_audit_filter f;
    if (!audit_filter(req, &f, (size_t)1 << 40, &ret))
        return ret;
    if (!rb__web_query(req, "limit"))
        f.limit = 0;
    const char *format = rb__web_query(req, "format");
    bool csv = format && strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "jsonl") != 0)
        return rb__web_error(req, 400, "invalid", "format must be jsonl or csv");
    /* Spooled to an unlinked temporary file, then streamed from its descriptor. */
    FILE *tmp = tmpfile();
    if (!tmp)
        return rb__web_status(req, RB_ERR_IO, "no temporary file");
    struct rb_errmsg err;
    size_t n = 0;
    enum rb_status st = rb_audit_export(req->web->audit_opts.dir, &f,
                                        csv ? RB_AUDIT_FORMAT_CSV : RB_AUDIT_FORMAT_JSONL, tmp,
                                        &n, &err);
    if (st == RB_OK && fflush(tmp) != 0)
        st = RB_ERR_IO;
    long size = st == RB_OK ? ftell(tmp) : -1;
    if (st != RB_OK || size < 0) {
        fclose(tmp);
        return rb__web_status(req, st != RB_OK ? st : RB_ERR_IO, err.text);
    }
    int fd = dup(fileno(tmp));
    fclose(tmp);
    if (fd < 0)
        return rb__web_status(req, RB_ERR_IO, "dup");
    char target[64];
    snprintf(target, sizeof target, "%zu records", n);
    rb__web_audit(req, "audit.export", target, "ok");
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64((uint64_t)size, fd, 0);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", csv ? "text/csv; charset=utf-8"
                                                   : "application/x-ndjson; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition",
                            csv ? "attachment; filename=\"audit.csv\""
                                : "attachment; filename=\"audit.jsonl\"");
    rb__web_headers(req, r, true);
    req->status = 200;
    ret = MHD_queue_response(req->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}
#endif /* RB_WEB_HAVE_AUDIT */

/* ================================================================ table */

#define R RB_WEB_SCOPE_READ
#define W RB_WEB_SCOPE_WRITE
#define A RB_WEB_SCOPE_ADMIN
const struct web_route rb__web_routes[] = {
    {"GET", "/api/health", h_health, WEB_PUBLIC, 0, false},
    {"GET", "/metrics", h_metrics, WEB_PUBLIC, 0, false},
    {"POST", "/api/login", h_login, WEB_PUBLIC, 0, false},
    {"POST", "/api/logout", h_logout, WEB_USER, 0, false},
    {"GET", "/api/me", h_me, WEB_USER, R, false},
    {"POST", "/api/me/password", h_me_password, WEB_USER, 0, false},
    {"GET", "/api/users", h_users_list, WEB_ADMIN, A, false},
    {"POST", "/api/users", h_users_create, WEB_ADMIN, A, false},
    {"PATCH", "/api/users/{name}", h_users_update, WEB_ADMIN, A, false},
    {"DELETE", "/api/users/{name}", h_users_delete, WEB_ADMIN, A, false},
    {"GET", "/api/groups", h_groups_list, WEB_ADMIN, A, false},
    {"POST", "/api/groups", h_groups_create, WEB_ADMIN, A, false},
    {"DELETE", "/api/groups/{name}", h_groups_delete, WEB_ADMIN, A, false},
    {"POST", "/api/groups/{name}/members", h_group_member_add, WEB_ADMIN, A, false},
    {"DELETE", "/api/groups/{name}/members/{user}", h_group_member_remove, WEB_ADMIN, A, false},
    {"GET", "/api/grants", h_grants_list, WEB_ADMIN, A, false},
    {"POST", "/api/grants", h_grants_set, WEB_ADMIN, A, false},
    {"GET", "/api/apikeys", h_keys_list, WEB_USER, R, false},
    {"POST", "/api/apikeys", h_keys_create, WEB_USER, 0, false},
    {"DELETE", "/api/apikeys/{id}", h_keys_revoke, WEB_USER, 0, false},
    {"GET", "/api/history", h_history_list, WEB_USER, R, false},
    {"GET", "/api/history/export", h_history_export, WEB_USER, R, false},
    {"DELETE", "/api/history", h_history_delete_all, WEB_USER, W, false},
    {"DELETE", "/api/history/{id}", h_history_delete_one, WEB_USER, W, false},
#ifdef RB_WEB_HAVE_INDEX
    {"GET", "/api/collections", h_collections_list, WEB_USER, R, false},
    {"POST", "/api/collections", h_collections_create, WEB_ADMIN, A, false},
    {"DELETE", "/api/collections/{name}", h_collections_delete, WEB_ADMIN, A, false},
    {"GET", "/api/collections/{name}/policy", h_policy_get, WEB_USER, R, false},
    {"PUT", "/api/collections/{name}/policy", h_policy_put, WEB_ADMIN, A, false},
    {"GET", "/api/collections/{name}/documents", h_documents_list, WEB_USER, R, false},
    {"GET", "/api/documents/{id}", h_document_get, WEB_USER, R, false},
    {"DELETE", "/api/documents/{id}", h_document_delete, WEB_USER, W, false},
    {"GET", "/api/passages/{id}", h_chunk_get, WEB_USER, R, false},
    {"POST", "/api/search", h_search, WEB_USER, R, false},
#endif
#if defined(RB_WEB_HAVE_INDEX) && defined(RB_WEB_HAVE_ANSWER)
    {"POST", "/api/ask", h_ask, WEB_USER, R, false},
    {"GET", "/v1/models", h_v1_models, WEB_USER, RB_WEB_SCOPE_OPENAI, false},
    {"POST", "/v1/chat/completions", h_v1_chat, WEB_USER, RB_WEB_SCOPE_OPENAI, false},
    {"POST", "/api/jobs", rb__web_jobs_submit, WEB_USER, W, false},
    {"GET", "/api/jobs", rb__web_jobs_list, WEB_USER, R, false},
    {"GET", "/api/jobs/{id}", rb__web_job_get, WEB_USER, R, false},
    {"DELETE", "/api/jobs/{id}", rb__web_job_delete, WEB_USER, W, false},
    {"GET", "/api/jobs/{id}/result", rb__web_job_result, WEB_USER, R, false},
#endif
#if defined(RB_WEB_HAVE_ENGINE) && defined(RB_WEB_HAVE_ANSWER)
    {"POST", "/v1/embeddings", h_v1_embeddings, WEB_USER, RB_WEB_SCOPE_OPENAI, false},
#endif
#if defined(RB_WEB_HAVE_INDEX) && defined(RB_WEB_HAVE_INGEST)
    {"POST", "/api/collections/{name}/documents", rb__web_upload_finish, WEB_USER, W, true},
    {"POST", "/api/documents/{id}/reingest", h_document_reingest, WEB_USER, W, false},
    {"GET", "/api/ingest/status", h_ingest_status, WEB_USER, R, false},
#endif
#ifdef RB_WEB_HAVE_AUDIT
    {"GET", "/api/audit", h_audit_query, WEB_AUDITOR, A, false},
    {"POST", "/api/audit/verify", h_audit_verify, WEB_AUDITOR, A, false},
    {"GET", "/api/audit/export", h_audit_export, WEB_AUDITOR, A, false},
#endif
};
const size_t rb__web_n_routes = RB_ARRAY_LEN(rb__web_routes);
