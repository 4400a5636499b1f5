/* The JSON API: handlers and the route table. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "web-impl.h"

enum rb_status rb__web_metrics_core(struct rb_web *web, struct rb_buf *b);

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
    return rb__web_json(req, 200, o);
}

static enum MHD_Result h_metrics(struct web_request *req)
{
    struct rb_buf b;
    rb_buf_init(&b, 4 << 20);
    enum rb_status st = rb__web_metrics_core(req->web, &b);
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
    const char *name = rb_json_str(body, "username");
    const char *password = rb_json_str(body, "password");
    if (!name || !password || strlen(name) > RB_WEB_NAME_MAX ||
        strlen(password) > RB_WEB_PASSWORD_MAX) {
        cJSON_Delete(body);
        return rb__web_error(req, 400, "invalid", "username and password (strings) are required");
    }
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
        MHD_add_response_header(r, "Cache-Control", "no-store");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
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
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
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
    MHD_add_response_header(r, "Cache-Control", "no-store");
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
        cJSON_Delete(body);
        rb__web_audit(req, "apikey.create", user, "denied");
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
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
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
    double v = rb_json_num(body, "collection_id", 0);
    if (v >= 1 && v <= 9007199254740992.0) {
        *id = (int64_t)v;
        return RB_OK;
    }
    return RB_ERR_INVALID;
}

/* ================================================================ table */

#define R RB_WEB_SCOPE_READ
#define W RB_WEB_SCOPE_WRITE
#define A RB_WEB_SCOPE_ADMIN
const struct web_route rb__web_routes[] = {
    {"GET", "/api/health", h_health, WEB_PUBLIC, 0},
    {"GET", "/metrics", h_metrics, WEB_PUBLIC, 0},
    {"POST", "/api/login", h_login, WEB_PUBLIC, 0},
    {"POST", "/api/logout", h_logout, WEB_USER, 0},
    {"GET", "/api/me", h_me, WEB_USER, R},
    {"POST", "/api/me/password", h_me_password, WEB_USER, 0},
    {"GET", "/api/users", h_users_list, WEB_ADMIN, A},
    {"POST", "/api/users", h_users_create, WEB_ADMIN, A},
    {"PATCH", "/api/users/{name}", h_users_update, WEB_ADMIN, A},
    {"DELETE", "/api/users/{name}", h_users_delete, WEB_ADMIN, A},
    {"GET", "/api/groups", h_groups_list, WEB_ADMIN, A},
    {"POST", "/api/groups", h_groups_create, WEB_ADMIN, A},
    {"DELETE", "/api/groups/{name}", h_groups_delete, WEB_ADMIN, A},
    {"POST", "/api/groups/{name}/members", h_group_member_add, WEB_ADMIN, A},
    {"DELETE", "/api/groups/{name}/members/{user}", h_group_member_remove, WEB_ADMIN, A},
    {"GET", "/api/grants", h_grants_list, WEB_ADMIN, A},
    {"POST", "/api/grants", h_grants_set, WEB_ADMIN, A},
    {"GET", "/api/apikeys", h_keys_list, WEB_USER, R},
    {"POST", "/api/apikeys", h_keys_create, WEB_USER, 0},
    {"DELETE", "/api/apikeys/{id}", h_keys_revoke, WEB_USER, 0},
    {"GET", "/api/history", h_history_list, WEB_USER, R},
    {"GET", "/api/history/export", h_history_export, WEB_USER, R},
    {"DELETE", "/api/history", h_history_delete_all, WEB_USER, W},
    {"DELETE", "/api/history/{id}", h_history_delete_one, WEB_USER, W},
};
const size_t rb__web_n_routes = RB_ARRAY_LEN(rb__web_routes);
