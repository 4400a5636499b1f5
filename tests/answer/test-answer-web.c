/* Redaction policy and drafting through the real web server (loopback,
 * libcurl client): a document with phone numbers (CRUD news) uploaded into
 * a collection whose policy redacts at ingest and one that does not; asks
 * over /api/ask — streamed tokens, citations and the done event — and the
 * caller's history carry no identifier where the policy says so and keep it
 * where it does not; the policy endpoint shows the policy; the draft field
 * is validated (400) and drafting without a model is a clear error event. */
#include "check.h"

#include "../web/web-client.h"
#include "ragbox/index.h"
#include "ragbox/web.h"

static const char *PHONES[] = {"13601603796", "13681909475", "13371822568", "15021245873"};

static bool leaks(const char *text)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(PHONES); i++)
        if (text && strstr(text, PHONES[i]))
            return true;
    return false;
}

static long req(struct wc *c, const char *method, const char *path, const char *json,
                struct wc_reply *r)
{
    return wc_send(c, method, path, json ? "application/json" : NULL, json,
                   json ? strlen(json) : 0, NULL, r);
}

static void upload_and_wait(struct wc *c, const char *collection, const char *file)
{
    char path[256];
    snprintf(path, sizeof path, "/api/collections/%s/documents", collection);
    struct wc_reply r;
    CHECK_EQ_INT(wc_upload(c, path, file, &r), 202);
    cJSON *j = cJSON_Parse(r.body.data);
    int64_t doc = (int64_t)rb_json_num(j, "id", 0);
    cJSON_Delete(j);
    wc_reply_free(&r);
    REQUIRE(doc > 0);
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)doc);
    bool indexed = false;
    for (int i = 0; i < 200 && !indexed; i++) {
        CHECK_EQ_INT(req(c, "GET", path, NULL, &r), 200);
        indexed = strstr(r.body.data, "\"state\":\"indexed\"") != NULL;
        bool failed = strstr(r.body.data, "\"state\":\"failed\"") != NULL;
        if (failed)
            fprintf(stderr, "ingest failed: %s\n", r.body.data);
        wc_reply_free(&r);
        if (failed)
            break;
        if (!indexed)
            usleep(50000);
    }
    CHECK(indexed);
}

int main(void)
{
    const char *shared = getenv("RAGBOX_SHARED") ? getenv("RAGBOX_SHARED") : "../shared";
    char file[2048];
    snprintf(file, sizeof file, "%s/eval/crud-zh/docs/news-07923.txt", shared);
    if (!rb_fs_exists(file))
        CHECK_SKIP("news-07923.txt missing");
    const char *data = check_tmpdir("answer-web");
    struct rb_index *idx = NULL;
    struct rb_index_options io = {.data_dir = data};
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&io, &idx, &err) == RB_OK);
    int64_t red = 0, plain = 0;
    struct rb_index_collection_options ro = {
        .policy_json = "{\"redaction\":{\"ingest\":true,\"answers\":true}}"};
    struct rb_index_collection_options po = {
        .policy_json = "{\"redaction\":{\"ingest\":false,\"answers\":false}}"};
    REQUIRE(rb_index_collection_create(idx, "red", &ro, &red) == RB_OK);
    REQUIRE(rb_index_collection_create(idx, "plain", &po, &plain) == RB_OK);
    rb_index_close(idx);
    char *db = rb_path_join(data, "ragbox.db");
    struct rb_web_auth *a = NULL;
    struct rb_web_auth_options ao = {.db_path = db};
    REQUIRE(rb_web_auth_open(&ao, &a, &err) == RB_OK);
    REQUIRE(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "alice-password", NULL) == RB_OK);
    REQUIRE(rb_web_grant_set(a, red, RB_WEB_PRINCIPAL_USER, "alice", true, true) == RB_OK);
    REQUIRE(rb_web_grant_set(a, plain, RB_WEB_PRINCIPAL_USER, "alice", true, true) == RB_OK);
    char *key = NULL;
    REQUIRE(rb_web_apikey_create(a, "alice", "k", RB_WEB_SCOPE_READ | RB_WEB_SCOPE_WRITE, &key,
                                 NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "root", RB_WEB_ROLE_ADMIN, "root-password", NULL) == RB_OK);
    char *admin_key = NULL;
    REQUIRE(rb_web_apikey_create(a, "root", "k", RB_WEB_SCOPE_READ | RB_WEB_SCOPE_ADMIN,
                                 &admin_key, NULL) == RB_OK);
    rb_web_auth_close(a);
    free(db);

    struct rb_web_options wo = {.data_dir = data, .listen = "127.0.0.1:0"};
    struct rb_web *web = NULL;
    enum rb_status st = rb_web_open(&wo, &web, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    REQUIRE(web);
    struct wc c;
    wc_init(&c, "http", rb_web_port(web));
    rb_strlcpy(c.bearer, key, sizeof c.bearer);
    free(key);

    /* 1. uploads: the upload worker applies the policy before storing */
    upload_and_wait(&c, "red", file);
    upload_and_wait(&c, "plain", file);
    struct wc_reply r;
    CHECK_EQ_INT(req(&c, "GET", "/api/collections/red/policy", NULL, &r), 200);
    CHECK(strstr(r.body.data, "\"ingest\":true") != NULL);
    wc_reply_free(&r);
    /* only an admin sets a policy, and an unreadable redaction policy is refused */
    CHECK_EQ_INT(req(&c, "PUT", "/api/collections/red/policy",
                     "{\"policy\":{\"redaction\":{\"ingest\":false}}}", &r), 403);
    wc_reply_free(&r);
    struct wc adm;
    wc_init(&adm, "http", rb_web_port(web));
    rb_strlcpy(adm.bearer, admin_key, sizeof adm.bearer);
    free(admin_key);
    CHECK_EQ_INT(req(&adm, "PUT", "/api/collections/red/policy",
                     "{\"policy\":{\"redaction\":{\"ingest\":\"yes\"}}}", &r), 400);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&adm, "PUT", "/api/collections/red/policy",
                     "{\"policy\":{\"redaction\":{\"ingest\":true,\"answers\":true},"
                     "\"owner\":\"records office\"}}", &r), 200);
    wc_reply_free(&r);
    wc_free(&adm);
    CHECK_EQ_INT(req(&c, "POST", "/api/search", "{\"query\":\"13601603796\",\"collections\":[\"red\"]}", &r), 200);
    CHECK_MSG(!leaks(r.body.data), "search of red: %s", r.body.data);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&c, "POST", "/api/search", "{\"query\":\"13601603796\",\"collections\":[\"plain\"]}", &r), 200);
    CHECK(leaks(r.body.data));
    wc_reply_free(&r);

    /* 2. asks: the event stream and history */
    static const char q_red[] =
        "{\"question\":\"奥德农庄和上海紫圆农业科技有限公司的联系方式是什么？\",\"collection\":\"red\"}";
    static const char q_plain[] =
        "{\"question\":\"奥德农庄和上海紫圆农业科技有限公司的联系方式是什么？\",\"collection\":\"plain\"}";
    CHECK_EQ_INT(req(&c, "POST", "/api/ask", q_red, &r), 200);
    CHECK_MSG(!leaks(r.body.data), "red ask: %s", r.body.data);
    CHECK(strstr(r.body.data, "[REDACTED:PHONE]") && strstr(r.body.data, "\"redacted\":true"));
    CHECK(strstr(r.body.data, "event: done") != NULL);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&c, "POST", "/api/ask", q_plain, &r), 200);
    CHECK_MSG(leaks(r.body.data), "plain ask lost its data: %s", r.body.data);
    CHECK(strstr(r.body.data, "\"redacted\":false") != NULL);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&c, "GET", "/api/history", NULL, &r), 200);
    cJSON *h = cJSON_Parse(r.body.data);
    const cJSON *arr = cJSON_GetObjectItem(h, "history"), *e;
    int n_red = 0, n_plain = 0;
    cJSON_ArrayForEach(e, arr)
    {
        char *t = cJSON_PrintUnformatted(e);
        const char *col = rb_json_str(e, "collection");
        if (col && strcmp(col, "red") == 0) {
            n_red++;
            CHECK_MSG(!leaks(t), "red history: %s", t);
        } else if (col && strcmp(col, "plain") == 0) {
            n_plain++;
            CHECK(leaks(t));
        }
        free(t);
    }
    CHECK_MSG(n_red == 1 && n_plain == 1, "history %d/%d: %s", n_red, n_plain, r.body.data);
    cJSON_Delete(h);
    wc_reply_free(&r);

    /* 3. drafting over the API */
    CHECK_EQ_INT(req(&c, "POST", "/api/ask",
                     "{\"question\":\"draft\",\"collection\":\"red\",\"draft\":\"memo\"}", &r),
                 400);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&c, "POST", "/api/ask",
                     "{\"question\":\"draft\",\"collection\":\"red\",\"draft\":3}", &r), 400);
    wc_reply_free(&r);
    CHECK_EQ_INT(req(&c, "POST", "/api/ask",
                     "{\"question\":\"请起草关于采摘点联系方式的通知\",\"collection\":\"red\","
                     "\"vertical\":\"government\",\"draft\":\"notice\"}",
                     &r),
                 200);
    CHECK_MSG(strstr(r.body.data, "event: error") && strstr(r.body.data, "needs a generation model"),
              "%s", r.body.data);
    wc_reply_free(&r);

    (void)wc_login; /* web-client.h helpers this test does not need */
    (void)wc_status;
    wc_free(&c);
    rb_web_close(web);
    return check_finish();
}
