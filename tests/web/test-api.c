/* The web API against a real server on loopback, driven by libcurl: every
 * endpoint, the role x collection access matrix, CSRF, throttling, API keys,
 * oversize and malformed requests, slow clients and connection limits. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include "check.h"
#include "ragbox/index.h"
#include "ragbox/web.h"
#include "web-client.h"

static int port;
static char data_dir[1024];

/* Distinctive words of each collection's documents (for leak checks). */
#define MED_WORD "helicopter"
#define NEWS_WORD "ColorOS"

/* ---------------------------------------------------------------- setup */

/* Splits a real document into paragraph chunks and indexes it. */
static int64_t add_document(struct rb_index *idx, int64_t cid, const char *path, const char *lang,
                            int64_t *first_chunk)
{
    char *text = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 1 << 20, &text, &len) == RB_OK);
    struct rb_index_chunk chunks[64];
    char *parts[64];
    size_t n = 0;
    const char *p = text;
    while (*p && n < 64) {
        const char *end = strstr(p, "\n\n");
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        /* Long paragraphs (Chinese news is one line) in pieces of <= 600 bytes. */
        while (plen > 0 && n < 64) {
            size_t take = rb_utf8_truncate(p, plen, 600);
            parts[n] = rb_strndup(p, take);
            memset(&chunks[n], 0, sizeof chunks[n]);
            chunks[n].text = parts[n];
            chunks[n].ordinal = (int32_t)n;
            chunks[n].page_start = chunks[n].page_end = 1;
            n++;
            p += take;
            plen -= take;
        }
        p = end ? end + 2 : p + strlen(p);
    }
    struct rb_index_document d = {.collection_id = cid,
                                  .source = rb_path_basename(path),
                                  .title = rb_path_basename(path),
                                  .mime = "text/plain",
                                  .language = lang,
                                  .size = (int64_t)len,
                                  .state = RB_INDEX_DOC_INDEXED};
    int64_t did = 0, ids[64];
    REQUIRE(rb_index_document_put(idx, &d, chunks, n, &did, ids) == RB_OK);
    *first_chunk = ids[0];
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(text);
    return did;
}

struct fixture {
    int64_t med_id, news_id, empty_id;
    int64_t med_doc, news_doc, med_chunk, news_chunk;
};

static struct rb_config *test_config(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[web]\nargon2_t_cost = 1\nargon2_m_cost_kib = 1024\nthreads = 4\n"
             "max_body_bytes = 65536\njson_max_depth = 16\nconnection_timeout_s = 2\n"
             "max_connections_per_ip = 24\nlogin_max_failures = 3\nlogin_backoff_max_s = 60\n"
             "max_upload_bytes = 300000\n%s",
             extra ? extra : "");
    struct rb_config *cfg = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_config_parse("test", text, &cfg, &err) == RB_OK);
    return cfg;
}

static void setup(struct fixture *fx, const struct rb_config *cfg)
{
    const char *shared = getenv("RAGBOX_SHARED");
    REQUIRE(shared);
    struct rb_index *idx = NULL;
    struct rb_index_options io = {.data_dir = data_dir};
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&io, &idx, &err) == RB_OK);
    REQUIRE(rb_index_collection_create(idx, "medical", NULL, &fx->med_id) == RB_OK);
    REQUIRE(rb_index_collection_create(idx, "news", NULL, &fx->news_id) == RB_OK);
    REQUIRE(rb_index_collection_create(idx, "empty", NULL, &fx->empty_id) == RB_OK);
    char path[2048];
    snprintf(path, sizeof path, "%s/eval/pubmedqa/docs/pmid-10135926.txt", shared);
    fx->med_doc = add_document(idx, fx->med_id, path, "en", &fx->med_chunk);
    snprintf(path, sizeof path, "%s/eval/crud-zh/docs/news-00012.txt", shared);
    fx->news_doc = add_document(idx, fx->news_id, path, "zh", &fx->news_chunk);
    rb_index_close(idx);

    char *db = rb_path_join(data_dir, "ragbox.db");
    struct rb_web_auth *a = NULL;
    struct rb_web_auth_options ao = {.db_path = db, .config = cfg};
    REQUIRE(rb_web_auth_open(&ao, &a, &err) == RB_OK);
    REQUIRE(rb_web_user_add(a, "root", RB_WEB_ROLE_ADMIN, "root-password", NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "aud", RB_WEB_ROLE_AUDITOR, "aud-password", NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "alice-password", NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "bob", RB_WEB_ROLE_USER, "bob-password", NULL) == RB_OK);
    REQUIRE(rb_web_user_add(a, "eve", RB_WEB_ROLE_USER, "eve-password", NULL) == RB_OK);
    /* alice: direct read grant on medical. bob: via group, read+write on news. */
    REQUIRE(rb_web_grant_set(a, fx->med_id, RB_WEB_PRINCIPAL_USER, "alice", true, false) == RB_OK);
    REQUIRE(rb_web_group_add(a, "newsroom", NULL) == RB_OK);
    REQUIRE(rb_web_group_member_add(a, "newsroom", "bob") == RB_OK);
    REQUIRE(rb_web_grant_set(a, fx->news_id, RB_WEB_PRINCIPAL_GROUP, "newsroom", true, true) ==
            RB_OK);
    /* A write-only grant does not give read. */
    REQUIRE(rb_web_grant_set(a, fx->empty_id, RB_WEB_PRINCIPAL_USER, "eve", false, true) == RB_OK);
    CHECK(!rb_web_auth_can(a, 5, fx->empty_id, false));
    CHECK(rb_web_auth_can(a, 5, fx->empty_id, true));
    /* Duplicate and invalid input to the store. */
    CHECK(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "whatever-pw", NULL) == RB_ERR_EXISTS);
    CHECK(rb_web_user_add(a, "bad name", RB_WEB_ROLE_USER, "whatever-pw", NULL) == RB_ERR_INVALID);
    CHECK(rb_web_user_add(a, "shorty", RB_WEB_ROLE_USER, "short", NULL) == RB_ERR_INVALID);
    /* Question history for alice (the ask path writes these). */
    REQUIRE(rb_web_history_add(a, 3, "medical", "Does flight impair intubation?", "No [1].",
                               "[{\"chunk_id\":1}]", NULL) == RB_OK);
    REQUIRE(rb_web_history_add(a, 3, "medical", "second question", "answer two", NULL, NULL) ==
            RB_OK);
    rb_web_auth_close(a);
    free(db);
}

/* ------------------------------------------------------------ helpers */

static bool body_has(const struct wc_reply *r, const char *s)
{
    return r->body.data && strstr(r->body.data, s) != NULL;
}

static bool header_has(const struct wc_reply *r, const char *s)
{
    return r->headers.data && strcasestr(r->headers.data, s) != NULL;
}

/* ---------------------------------------------------------------- tests */

static void test_health_and_static(void)
{
    struct wc c;
    wc_init(&c, "http", port);
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/health", NULL, &r), 200);
    CHECK(body_has(&r, "\"status\":\"ok\""));
    CHECK(header_has(&r, "Content-Security-Policy: default-src 'none'"));
    CHECK(header_has(&r, "X-Content-Type-Options: nosniff"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&c, "GET", "/", NULL, &r), 200);
    CHECK(body_has(&r, "<!doctype html>"));
    CHECK(header_has(&r, "text/html"));
    CHECK(header_has(&r, "frame-ancestors 'none'"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "GET", "/no/such/page", NULL), 404);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/nothing", NULL), 404);
    CHECK_EQ_INT(wc_status(&c, "PUT", "/api/health", NULL), 405);
    wc_free(&c);
}

static void test_login_session_csrf(void)
{
    struct wc c;
    wc_init(&c, "http", port);
    struct wc_reply r;
    /* Not logged in. */
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/me", NULL), 401);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/users", NULL), 401);
    /* Wrong password, unknown user: same reply. */
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/login", "{\"username\":\"aud\",\"password\":\"nope\"}",
                         &r),
                 401);
    char first[256];
    rb_strlcpy(first, r.body.data, sizeof first);
    wc_reply_free(&r);
    CHECK_EQ_INT(
        wc_json(&c, "POST", "/api/login", "{\"username\":\"ghost\",\"password\":\"nope\"}", &r),
        401);
    CHECK_STR(r.body.data, first);
    wc_reply_free(&r);
    /* Login sets a hardened cookie and returns a CSRF token. */
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/login",
                         "{\"username\":\"root\",\"password\":\"root-password\"}", &r),
                 200);
    CHECK(header_has(&r, "Set-Cookie: rb_session="));
    CHECK(header_has(&r, "HttpOnly"));
    CHECK(header_has(&r, "SameSite=Strict"));
    CHECK(!header_has(&r, "Secure")); /* plain HTTP */
    cJSON *j = cJSON_Parse(r.body.data);
    const char *tok = rb_json_str(j, "csrf_token");
    REQUIRE(tok && strlen(tok) == 64);
    char csrf[80];
    rb_strlcpy(csrf, tok, sizeof csrf);
    cJSON_Delete(j);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/me", NULL, &r), 200);
    CHECK(body_has(&r, "\"name\":\"root\""));
    CHECK(body_has(&r, csrf));
    wc_reply_free(&r);
    /* CSRF: a state-changing request without or with a wrong token is refused. */
    const char *mk = "{\"name\":\"csrfgroup\"}";
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/groups", mk), 403);
    rb_strlcpy(c.csrf, "0000000000000000000000000000000000000000000000000000000000000000",
               sizeof c.csrf);
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/groups", mk, &r), 403);
    CHECK(body_has(&r, "\"csrf\""));
    wc_reply_free(&r);
    rb_strlcpy(c.csrf, csrf, sizeof c.csrf);
    /* A cross-origin request with the right token is still refused. */
    const char *evil[] = {"Origin: http://evil.example", NULL};
    CHECK_EQ_INT(wc_send(&c, "POST", "/api/groups", "application/json", mk, strlen(mk), evil, &r),
                 403);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/groups", mk), 201);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/groups", NULL), 200);
    /* Logout ends the session server-side. */
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/logout", NULL), 200);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/me", NULL), 401);
    wc_free(&c);
}

static void test_throttle(void)
{
    struct wc c;
    wc_init(&c, "http", port);
    struct wc_reply r;
    /* login_max_failures = 3: the 4th failure locks the account out. */
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(wc_status(&c, "POST", "/api/login",
                               "{\"username\":\"eve\",\"password\":\"wrong-password\"}"),
                     401);
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/login",
                         "{\"username\":\"eve\",\"password\":\"eve-password\"}", &r),
                 429);
    CHECK(header_has(&r, "Retry-After: "));
    CHECK(body_has(&r, "throttled"));
    wc_reply_free(&r);
    /* Another user from the same address is not locked by eve's failures. */
    struct wc d;
    wc_init(&d, "http", port);
    CHECK(wc_login(&d, "aud", "aud-password"));
    wc_free(&d);
    /* After the back-off (1 s for the first lock-out) eve gets in. */
    sleep(2);
    CHECK(wc_login(&c, "eve", "eve-password"));
    wc_free(&c);
}

static void test_admin_endpoints(struct fixture *fx)
{
    struct wc c;
    wc_init(&c, "http", port);
    REQUIRE(wc_login(&c, "root", "root-password"));
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/users", NULL, &r), 200);
    CHECK(body_has(&r, "\"alice\"") && body_has(&r, "\"aud\""));
    CHECK(!body_has(&r, "argon2")); /* never the hashes */
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/users",
                           "{\"name\":\"dave\",\"role\":\"user\",\"password\":\"dave-password\"}"),
                 201);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/users",
                           "{\"name\":\"dave\",\"role\":\"user\",\"password\":\"dave-password\"}"),
                 409);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/users",
                           "{\"name\":\"x y\",\"role\":\"user\",\"password\":\"dave-password\"}"),
                 400);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/users",
                           "{\"name\":\"zed\",\"role\":\"king\",\"password\":\"dave-password\"}"),
                 400);
    CHECK_EQ_INT(wc_status(&c, "PATCH", "/api/users/dave", "{\"role\":\"auditor\"}"), 200);
    CHECK_EQ_INT(wc_status(&c, "PATCH", "/api/users/nobody", "{\"role\":\"auditor\"}"), 404);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/groups/newsroom/members", "{\"user\":\"dave\"}"),
                 200);
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/groups", NULL, &r), 200);
    CHECK(body_has(&r, "\"newsroom\"") && body_has(&r, "\"dave\""));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "DELETE", "/api/groups/newsroom/members/dave", NULL), 200);
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/grants", NULL, &r), 200);
    CHECK(body_has(&r, "\"newsroom\""));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/grants",
                           "{\"collection\":\"nope\",\"kind\":\"user\",\"name\":\"dave\","
                           "\"read\":true}"),
                 404);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/grants",
                           "{\"collection\":\"empty\",\"kind\":\"user\",\"name\":\"dave\","
                           "\"read\":true}"),
                 200);
    /* Collections: create, policy, delete (and its grants go with it). */
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/collections",
                           "{\"name\":\"tmpcol\",\"policy\":{\"vertical\":\"finance\"}}"),
                 201);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/collections", "{\"name\":\"tmpcol\"}"), 409);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/collections", "{\"name\":\"../etc\"}"), 400);
    CHECK_EQ_INT(wc_status(&c, "PUT", "/api/collections/tmpcol/policy",
                           "{\"policy\":{\"vertical\":\"healthcare\"}}"),
                 200);
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/collections/tmpcol/policy", NULL, &r), 200);
    CHECK(body_has(&r, "healthcare"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "PUT", "/api/collections/tmpcol/policy", "{\"policy\":3}"), 400);
    CHECK_EQ_INT(wc_status(&c, "DELETE", "/api/collections/tmpcol", NULL), 200);
    CHECK_EQ_INT(wc_status(&c, "DELETE", "/api/collections/tmpcol", NULL), 404);
    CHECK_EQ_INT(wc_status(&c, "DELETE", "/api/users/dave", NULL), 200);
    CHECK_EQ_INT(wc_status(&c, "DELETE", "/api/users/root", NULL), 409);
    (void)fx;
    wc_free(&c);
}

/* Every role x collection combination, through every path that returns content. */
static void test_access_matrix(struct fixture *fx)
{
    struct {
        const char *user, *password;
        bool med, news; /* may read */
        bool news_write;
        bool admin_routes;
    } who[] = {
        {"root", "root-password", true, true, true, true},
        {"aud", "aud-password", false, false, false, false},
        {"alice", "alice-password", true, false, false, false},
        {"bob", "bob-password", false, true, true, false},
        {"eve", "eve-password", false, false, false, false},
    };
    for (size_t u = 0; u < RB_ARRAY_LEN(who); u++) {
        struct wc c;
        wc_init(&c, "http", port);
        REQUIRE(wc_login(&c, who[u].user, who[u].password));
        struct wc_reply r;
        char path[256];
        /* Collection list shows exactly the readable ones. */
        CHECK_EQ_INT(wc_json(&c, "GET", "/api/collections", NULL, &r), 200);
        CHECK_MSG(body_has(&r, "\"medical\"") == who[u].med, "%s list medical", who[u].user);
        CHECK_MSG(body_has(&r, "\"news\"") == who[u].news, "%s list news", who[u].user);
        wc_reply_free(&r);
        const struct {
            const char *name;
            int64_t doc, chunk;
            bool ok;
            const char *word;
        } cols[] = {{"medical", fx->med_doc, fx->med_chunk, who[u].med, MED_WORD},
                    {"news", fx->news_doc, fx->news_chunk, who[u].news, NEWS_WORD}};
        for (size_t k = 0; k < 2; k++) {
            long want = cols[k].ok ? 200 : 404;
            snprintf(path, sizeof path, "/api/collections/%s/documents", cols[k].name);
            CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), want);
            CHECK(cols[k].ok || !body_has(&r, ".txt"));
            wc_reply_free(&r);
            snprintf(path, sizeof path, "/api/collections/%s/policy", cols[k].name);
            CHECK_EQ_INT(wc_status(&c, "GET", path, NULL), want);
            snprintf(path, sizeof path, "/api/documents/%lld", (long long)cols[k].doc);
            CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), want);
            CHECK(cols[k].ok || !body_has(&r, ".txt"));
            wc_reply_free(&r);
            snprintf(path, sizeof path, "/api/passages/%lld", (long long)cols[k].chunk);
            CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), want);
            CHECK_MSG(cols[k].ok == body_has(&r, "\"text\""), "%s passage %s", who[u].user,
                      cols[k].name);
            wc_reply_free(&r);
            /* Search naming the collection. */
            char q[256];
            snprintf(q, sizeof q, "{\"query\":\"%s\",\"collections\":[\"%s\"]}", cols[k].word,
                     cols[k].name);
            CHECK_EQ_INT(wc_json(&c, "POST", "/api/search", q, &r), want);
            CHECK_MSG(body_has(&r, cols[k].word) == cols[k].ok, "%s search %s", who[u].user,
                      cols[k].name);
            wc_reply_free(&r);
            /* Search over everything the caller may read: forbidden text never appears. */
            snprintf(q, sizeof q, "{\"query\":\"%s\"}", cols[k].word);
            CHECK_EQ_INT(wc_json(&c, "POST", "/api/search", q, &r), 200);
            CHECK_MSG(body_has(&r, "chunk_id") == cols[k].ok, "%s search-all %s", who[u].user,
                      cols[k].name);
            wc_reply_free(&r);
        }
        /* Batch jobs: a job over each collection is accepted only where the
         * caller may read; its result holds only that collection's text;
         * nobody else (but an admin) can see it. */
        for (size_t k = 0; k < 2; k++) {
            char q[256];
            snprintf(q, sizeof q,
                     "{\"collection\":\"%s\",\"mode\":\"extractive\",\"questions\":[\"%s\","
                     "{\"id\":\"q2\",\"question\":\"%s\"}]}",
                     cols[k].name, cols[k].word, cols[1 - k].word);
            CHECK_EQ_INT(wc_json(&c, "POST", "/api/jobs", q, &r), cols[k].ok ? 201 : 404);
            CHECK_MSG(cols[k].ok || (body_has(&r, "no such collection") && !body_has(&r, "\"id\"")),
                      "%s job %s", who[u].user, cols[k].name);
            char id[32] = "";
            const char *ip = strstr(r.body.data, "\"id\":\"");
            if (ip)
                snprintf(id, sizeof id, "%.16s", ip + 6);
            wc_reply_free(&r);
            if (!cols[k].ok)
                continue;
            CHECK_EQ_INT((long)strlen(id), 16);
            snprintf(path, sizeof path, "/api/jobs/%s", id);
            bool done = false;
            for (int i = 0; i < 200 && !done; i++) {
                CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
                done = body_has(&r, "\"state\":\"done\"");
                CHECK(!body_has(&r, "\"state\":\"failed\""));
                wc_reply_free(&r);
                if (!done)
                    usleep(20000);
            }
            CHECK_MSG(done, "%s job %s finished", who[u].user, cols[k].name);
            snprintf(path, sizeof path, "/api/jobs/%s/result?format=jsonl", id);
            CHECK_EQ_INT(wc_json(&c, "GET", path, NULL, &r), 200);
            CHECK_MSG(body_has(&r, cols[k].word), "%s job result %s", who[u].user, cols[k].name);
            /* the other collection's document never appears among the sources */
            CHECK_MSG(!body_has(&r, k ? "pmid-10135926" : "news-00012"), "%s job result leaks",
                      who[u].user);
            wc_reply_free(&r);
            /* the job is the owner's: every other non-admin gets "no such job" */
            for (size_t o = 0; o < RB_ARRAY_LEN(who); o++) {
                if (o == u)
                    continue;
                struct wc other;
                wc_init(&other, "http", port);
                REQUIRE(wc_login(&other, who[o].user, who[o].password));
                snprintf(path, sizeof path, "/api/jobs/%s", id);
                long want_o = who[o].admin_routes ? 200 : 404;
                CHECK_EQ_INT(wc_json(&other, "GET", path, NULL, &r), want_o);
                CHECK(want_o == 200 || !body_has(&r, cols[k].name));
                wc_reply_free(&r);
                snprintf(path, sizeof path, "/api/jobs/%s/result", id);
                CHECK_EQ_INT(wc_status(&other, "GET", path, NULL), want_o);
                CHECK_EQ_INT(wc_json(&other, "GET", "/api/jobs", NULL, &r), 200);
                CHECK_MSG(body_has(&r, id) == who[o].admin_routes, "%s sees %s's job",
                          who[o].user, who[u].user);
                wc_reply_free(&r);
                wc_free(&other);
            }
            CHECK_EQ_INT(wc_json(&c, "GET", "/api/jobs", NULL, &r), 200);
            CHECK(body_has(&r, id));
            wc_reply_free(&r);
            snprintf(path, sizeof path, "/api/jobs/%s", id);
            CHECK_EQ_INT(wc_json(&c, "DELETE", path, NULL, &r), 200);
            CHECK(body_has(&r, "\"deleted\""));
            wc_reply_free(&r);
            CHECK_EQ_INT(wc_status(&c, "GET", path, NULL), 404);
        }
        /* No embedding model on this server: a clear 503, whoever asks. */
        CHECK_EQ_INT(wc_json(&c, "POST", "/v1/embeddings", "{\"model\":\"x\",\"input\":\"hi\"}",
                             &r),
                     503);
        CHECK(body_has(&r, "no embedding model"));
        wc_reply_free(&r);
        /* The unreadable and the absent answer the same. */
        CHECK_EQ_INT(wc_json(&c, "GET", "/api/collections/doesnotexist/documents", NULL, &r), 404);
        CHECK(body_has(&r, "no such collection"));
        wc_reply_free(&r);
        /* Admin routes. */
        CHECK_EQ_INT(wc_status(&c, "GET", "/api/users", NULL), who[u].admin_routes ? 200 : 403);
        CHECK_EQ_INT(wc_status(&c, "GET", "/api/grants", NULL), who[u].admin_routes ? 200 : 403);
        CHECK_EQ_INT(wc_status(&c, "POST", "/api/collections", "{\"name\":\"sneaky\"}"),
                     who[u].admin_routes ? 201 : 403);
        /* Metrics never carry collection names or passage text. */
        CHECK_EQ_INT(wc_json(&c, "GET", "/metrics", NULL, &r), 200);
        CHECK(!body_has(&r, "medical") && !body_has(&r, "news\"") && !body_has(&r, MED_WORD));
        CHECK(body_has(&r, "ragbox_http_requests_total"));
        CHECK(body_has(&r, "ragbox_index_chunks"));
        wc_reply_free(&r);
        wc_free(&c);
    }
    /* Write access: alice (read-only) may not delete a medical document; bob
     * (group write on news) may delete the news document. */
    struct wc c;
    wc_init(&c, "http", port);
    REQUIRE(wc_login(&c, "alice", "alice-password"));
    char path[128];
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)fx->med_doc);
    CHECK_EQ_INT(wc_status(&c, "DELETE", path, NULL), 403);
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)fx->news_doc);
    CHECK_EQ_INT(wc_status(&c, "DELETE", path, NULL), 404);
    wc_free(&c);
    wc_init(&c, "http", port);
    REQUIRE(wc_login(&c, "bob", "bob-password"));
    CHECK_EQ_INT(wc_status(&c, "DELETE", path, NULL), 200);
    CHECK_EQ_INT(wc_status(&c, "GET", path, NULL), 404);
    wc_free(&c);
}

static void test_api_keys(void)
{
    struct wc c;
    wc_init(&c, "http", port);
    REQUIRE(wc_login(&c, "alice", "alice-password"));
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/apikeys", "{\"name\":\"ro\",\"scopes\":\"read\"}", &r),
                 201);
    cJSON *j = cJSON_Parse(r.body.data);
    char key[100] = "";
    rb_strlcpy(key, rb_json_str(j, "key") ? rb_json_str(j, "key") : "", sizeof key);
    int64_t key_id = (int64_t)rb_json_num(j, "id", 0);
    cJSON_Delete(j);
    wc_reply_free(&r);
    CHECK(strncmp(key, "rbk_", 4) == 0 && strlen(key) == 68);
    /* Non-admins may not mint keys for others. */
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/apikeys", "{\"user\":\"root\"}"), 403);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/apikeys", "{\"scopes\":\"root\"}"), 400);
    /* The list never shows the secret. */
    CHECK_EQ_INT(wc_json(&c, "GET", "/api/apikeys", NULL, &r), 200);
    CHECK(body_has(&r, "\"ro\"") && !body_has(&r, key));
    wc_reply_free(&r);
    /* The store keeps only a hash. */
    char *db = rb_path_join(data_dir, "ragbox.db");
    char *dbtext = NULL;
    size_t dblen = 0;
    sqlite3 *s = NULL;
    REQUIRE(sqlite3_open(db, &s) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(s, "SELECT count(*) FROM web_api_keys WHERE key_hash=?", -1, &st,
                               NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(s);
    if (rb_fs_read_file(db, 64 << 20, &dbtext, &dblen) == RB_OK)
        CHECK(memmem(dbtext, dblen, key + 4, 64) == NULL);
    free(dbtext);
    free(db);
    /* Use the key: no cookie, no CSRF needed; read scope only. */
    struct wc k;
    wc_init(&k, "http", port);
    rb_strlcpy(k.bearer, key, sizeof k.bearer);
    CHECK_EQ_INT(wc_json(&k, "GET", "/api/me", NULL, &r), 200);
    CHECK(body_has(&r, "\"alice\"") && body_has(&r, "api_key"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&k, "POST", "/api/search", "{\"query\":\"" MED_WORD "\"}", &r), 200);
    CHECK(body_has(&r, MED_WORD));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&k, "DELETE", "/api/history", NULL), 403);  /* no write scope */
    CHECK_EQ_INT(wc_status(&k, "POST", "/api/apikeys", "{}"), 403);    /* sessions only */
    rb_strlcpy(k.bearer, "rbk_0000000000000000000000000000000000000000000000000000000000000000",
               sizeof k.bearer);
    CHECK_EQ_INT(wc_status(&k, "GET", "/api/me", NULL), 401);
    rb_strlcpy(k.bearer, "garbage", sizeof k.bearer);
    CHECK_EQ_INT(wc_status(&k, "GET", "/api/health", NULL), 401); /* a bad key is never ignored */
    /* Revoke: the key stops working at once. */
    char path[64];
    snprintf(path, sizeof path, "/api/apikeys/%lld", (long long)key_id);
    CHECK_EQ_INT(wc_status(&c, "DELETE", path, NULL), 200);
    rb_strlcpy(k.bearer, key, sizeof k.bearer);
    CHECK_EQ_INT(wc_status(&k, "GET", "/api/me", NULL), 401);
    CHECK_EQ_INT(wc_status(&c, "DELETE", path, NULL), 404);
    wc_free(&k);
    wc_free(&c);
}

static void test_history(void)
{
    struct wc a, e, root;
    wc_init(&a, "http", port);
    wc_init(&e, "http", port);
    wc_init(&root, "http", port);
    REQUIRE(wc_login(&a, "alice", "alice-password"));
    REQUIRE(wc_login(&e, "aud", "aud-password"));
    REQUIRE(wc_login(&root, "root", "root-password"));
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&a, "GET", "/api/history", NULL, &r), 200);
    CHECK(body_has(&r, "Does flight impair intubation?") && body_has(&r, "second question"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&a, "GET", "/api/history/export", NULL, &r), 200);
    CHECK(header_has(&r, "Content-Disposition: attachment"));
    CHECK(body_has(&r, "second question"));
    wc_reply_free(&r);
    /* Others see only their own; an admin may look at anyone's. */
    CHECK_EQ_INT(wc_json(&e, "GET", "/api/history", NULL, &r), 200);
    CHECK(!body_has(&r, "intubation"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&e, "GET", "/api/history?user=alice", NULL), 403);
    CHECK_EQ_INT(wc_json(&root, "GET", "/api/history?user=alice", NULL, &r), 200);
    CHECK(body_has(&r, "intubation"));
    cJSON *j = cJSON_Parse(r.body.data);
    int64_t first_id = (int64_t)rb_json_num(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "history"),
                                                               0),
                                            "id", 0);
    cJSON_Delete(j);
    wc_reply_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/api/history/%lld", (long long)first_id);
    CHECK_EQ_INT(wc_status(&e, "DELETE", path, NULL), 404); /* not aud's entry */
    CHECK_EQ_INT(wc_status(&a, "DELETE", path, NULL), 200);
    CHECK_EQ_INT(wc_status(&a, "DELETE", path, NULL), 404);
    CHECK_EQ_INT(wc_json(&root, "DELETE", "/api/history?user=alice", NULL, &r), 200);
    CHECK(body_has(&r, "\"deleted\":1"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&a, "GET", "/api/history", NULL, &r), 200);
    CHECK(body_has(&r, "\"history\":[]"));
    wc_reply_free(&r);
    wc_free(&a);
    wc_free(&e);
    wc_free(&root);
}

static void test_hostile_requests(void)
{
    struct wc c;
    wc_init(&c, "http", port);
    REQUIRE(wc_login(&c, "root", "root-password"));
    struct wc_reply r;
    /* Malformed JSON, wrong type, bad UTF-8, too deep, wrong content type. */
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/groups", "{\"name\":", &r), 400);
    CHECK(body_has(&r, "invalid JSON"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/groups", "[1,2,3]"), 400);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/groups", "{\"name\":\"\xff\xfe\"}"), 400);
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    char deepobj[256];
    snprintf(deepobj, sizeof deepobj, "{\"a\":%s}", deep);
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/groups", deepobj, &r), 400);
    CHECK(body_has(&r, "nested deeper"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_send(&c, "POST", "/api/groups", "text/plain", "{}", 2, NULL, &r), 415);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/search", "{\"query\":\"\"}"), 400);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/search", "{\"query\":\"x\",\"k\":100000}"), 400);
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/search", "{\"query\":\"x\",\"collections\":7}"), 400);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/documents/abc", NULL), 404);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/documents/-1", NULL), 404);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/documents/99999999999999999999999", NULL), 404);
    /* FTS5 syntax in a query is just text. */
    CHECK_EQ_INT(wc_status(&c, "POST", "/api/search", "{\"query\":\"a OR \\\" NEAR( * ^\"}"), 200);
    /* Oversize body (max 64 KiB): announced, and sent anyway. */
    size_t big = 200000;
    char *blob = malloc(big + 1);
    REQUIRE(blob);
    memset(blob, 'a', big);
    blob[0] = '{';
    blob[big] = '\0';
    CHECK_EQ_INT(wc_send(&c, "POST", "/api/groups", "application/json", blob, big, NULL, &r), 413);
    CHECK(body_has(&r, "too_large"));
    wc_reply_free(&r);
    /* Chunked (no Content-Length): cut off while streaming. */
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    CHECK_EQ_INT(wc_send(&c, "POST", "/api/groups", "application/json", blob, big, chunked, &r),
                 413);
    wc_reply_free(&r);
    free(blob);
    /* Oversize header block: refused by the connection memory limit. */
    char *hdr = malloc(70000);
    REQUIRE(hdr);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'b', 69000);
    hdr[69007] = '\0';
    const char *hh[] = {hdr, NULL};
    long s = wc_send(&c, "GET", "/api/health", NULL, NULL, 0, hh, &r);
    CHECK_MSG(s == 431 || s == 413 || s == 400 || s == 0, "big header -> %ld", s);
    wc_reply_free(&r);
    free(hdr);
    /* The server is still up. */
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/health", NULL), 200);
    wc_free(&c);
}

/* Ask: Server-Sent Events with citations at the end, ACL inside retrieval. */
static void test_ask(void)
{
    struct wc alice, bob, eve;
    wc_init(&alice, "http", port);
    wc_init(&bob, "http", port);
    wc_init(&eve, "http", port);
    REQUIRE(wc_login(&alice, "alice", "alice-password"));
    REQUIRE(wc_login(&bob, "bob", "bob-password"));
    REQUIRE(wc_login(&eve, "eve", "eve-password"));
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&alice, "GET", "/api/health", NULL, &r), 200);
    bool have_ask = body_has(&r, "\"ask\":true");
    wc_reply_free(&r);
    if (!have_ask) {
        CHECK_EQ_INT(wc_status(&alice, "POST", "/api/ask", "{\"question\":\"x\"}"), 404);
        goto out;
    }
    CHECK_EQ_INT(wc_json(&alice, "POST", "/api/ask",
                         "{\"question\":\"Does the in-flight helicopter environment impair "
                         "oral endotracheal intubation by flight nurses?\"}",
                         &r),
                 200);
    CHECK(header_has(&r, "text/event-stream"));
    CHECK(body_has(&r, "event: token"));
    CHECK(body_has(&r, "event: citations"));
    CHECK(body_has(&r, "event: done"));
    /* The citations come last, before done, and only from what alice may read. */
    const char *cit = strstr(r.body.data, "event: citations");
    const char *done = strstr(r.body.data, "event: done");
    CHECK(cit && done && cit < done);
    CHECK(!body_has(&r, NEWS_WORD) && !body_has(&r, "news-00012"));
    CHECK(body_has(&r, "chunk_id"));
    wc_reply_free(&r);
    /* A collection she may not read is "no such collection"; eve reads nothing. */
    CHECK_EQ_INT(wc_json(&alice, "POST", "/api/ask",
                         "{\"question\":\"ColorOS\",\"collections\":[\"news\"]}", &r),
                 404);
    CHECK(!body_has(&r, NEWS_WORD));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&eve, "POST", "/api/ask", "{\"question\":\"ColorOS\"}"), 404);
    CHECK_EQ_INT(wc_status(&alice, "POST", "/api/ask", "{\"question\":\"\"}"), 400);
    CHECK_EQ_INT(wc_status(&alice, "POST", "/api/ask", "{\"question\":\"x\",\"mode\":\"magic\"}"),
                 400);
    /* Chinese. */
    CHECK_EQ_INT(wc_json(&bob, "POST", "/api/ask",
                         "{\"question\":\"OPPO Reno9 Pro 的 ColorOS 升级内测招募的是什么版本？\","
                         "\"collections\":[\"news\"]}",
                         &r),
                 200);
    CHECK(body_has(&r, "event: done"));
    CHECK(!body_has(&r, MED_WORD));
    wc_reply_free(&r);
    /* OpenAI-compatible API with an openai-scoped key. */
    CHECK_EQ_INT(wc_json(&alice, "POST", "/api/apikeys", "{\"name\":\"sdk\",\"scopes\":\"openai\"}", &r),
                 201);
    cJSON *kj = cJSON_Parse(r.body.data);
    struct wc sdk;
    wc_init(&sdk, "http", port);
    rb_strlcpy(sdk.bearer, rb_json_str(kj, "key") ? rb_json_str(kj, "key") : "", sizeof sdk.bearer);
    cJSON_Delete(kj);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&sdk, "GET", "/v1/models", NULL, &r), 200);
    CHECK(body_has(&r, "\"ragbox/medical\"") && !body_has(&r, "ragbox/news"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&sdk, "GET", "/api/me", NULL), 403); /* openai scope only */
    CHECK_EQ_INT(wc_json(&sdk, "POST", "/v1/chat/completions",
                         "{\"model\":\"ragbox/medical\",\"messages\":[{\"role\":\"system\","
                         "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"Does the "
                         "helicopter environment impair intubation?\"}]}",
                         &r),
                 200);
    CHECK(body_has(&r, "\"chat.completion\"") && body_has(&r, "\"assistant\"") &&
          body_has(&r, "pmid-10135926.txt"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&sdk, "POST", "/v1/chat/completions",
                         "{\"model\":\"ragbox\",\"stream\":true,\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"helicopter intubation\"}]}",
                         &r),
                 200);
    CHECK(body_has(&r, "chat.completion.chunk") && body_has(&r, "data: [DONE]"));
    CHECK(!body_has(&r, NEWS_WORD));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&sdk, "POST", "/v1/chat/completions",
                         "{\"model\":\"ragbox/news\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"ColorOS\"}]}",
                         &r),
                 404);
    CHECK(!body_has(&r, NEWS_WORD));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&sdk, "POST", "/v1/chat/completions",
                           "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
                 404);
    CHECK_EQ_INT(wc_status(&sdk, "POST", "/v1/chat/completions", "{\"model\":\"ragbox\"}"), 400);
    wc_free(&sdk);
    /* The question went into alice's history. */
    CHECK_EQ_INT(wc_json(&alice, "GET", "/api/history", NULL, &r), 200);
    CHECK(body_has(&r, "helicopter environment impair"));
    wc_reply_free(&r);
out:
    wc_free(&alice);
    wc_free(&bob);
    wc_free(&eve);
}

/* Uploads: streamed to disk, ingested by the worker (real parser), then searchable. */
static void test_upload(void)
{
    const char *shared = getenv("RAGBOX_SHARED");
    char file[1024];
    snprintf(file, sizeof file, "%s/eval/crud-zh/docs/news-00016.txt", shared);
    struct wc bob, alice;
    wc_init(&bob, "http", port);
    wc_init(&alice, "http", port);
    REQUIRE(wc_login(&bob, "bob", "bob-password"));
    REQUIRE(wc_login(&alice, "alice", "alice-password"));
    struct wc_reply r;
    /* alice may read medical but not write it; news she cannot see at all. */
    CHECK_EQ_INT(wc_upload(&alice, "/api/collections/medical/documents", file, &r), 403);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_upload(&alice, "/api/collections/news/documents", file, &r), 404);
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&bob, "POST", "/api/collections/news/documents", "{}"), 415);
    /* CSRF applies before the body is read. */
    char saved[80];
    rb_strlcpy(saved, bob.csrf, sizeof saved);
    bob.csrf[0] = '\0';
    CHECK_EQ_INT(wc_upload(&bob, "/api/collections/news/documents", file, &r), 403);
    wc_reply_free(&r);
    rb_strlcpy(bob.csrf, saved, sizeof bob.csrf);
    CHECK_EQ_INT(wc_upload(&bob, "/api/collections/news/documents", file, &r), 202);
    cJSON *j = cJSON_Parse(r.body.data);
    int64_t doc = (int64_t)rb_json_num(j, "id", 0);
    CHECK(rb_json_str(j, "sha256") && strlen(rb_json_str(j, "sha256")) == 64);
    cJSON_Delete(j);
    wc_reply_free(&r);
    REQUIRE(doc > 0);
    /* Watch it ingest. */
    char path[128];
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)doc);
    bool indexed = false;
    for (int i = 0; i < 150 && !indexed; i++) {
        CHECK_EQ_INT(wc_json(&bob, "GET", path, NULL, &r), 200);
        indexed = body_has(&r, "\"state\":\"indexed\"");
        bool failed = body_has(&r, "\"state\":\"failed\"");
        if (failed)
            fprintf(stderr, "ingest failed: %s\n", r.body.data);
        wc_reply_free(&r);
        if (failed)
            break;
        if (!indexed)
            usleep(100000);
    }
    CHECK(indexed);
    CHECK_EQ_INT(wc_json(&bob, "GET", "/api/ingest/status", NULL, &r), 200);
    CHECK(body_has(&r, "\"done\":1"));
    wc_reply_free(&r);
    /* Its text is searchable by those who may read news, not by others. */
    char *text = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(file, 1 << 20, &text, &len) == RB_OK);
    /* A distinctive 4-character run from the middle of the article. */
    size_t mid = rb_utf8_truncate(text, len, len / 2);
    size_t qlen = rb_utf8_truncate(text + mid, len - mid, 12);
    char q[256];
    snprintf(q, sizeof q, "{\"query\":\"%.*s\"}", (int)qlen, text + mid);
    free(text);
    CHECK_EQ_INT(wc_json(&bob, "POST", "/api/search", q, &r), 200);
    CHECK(body_has(&r, "news-00016.txt"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&alice, "POST", "/api/search", q, &r), 200);
    CHECK(!body_has(&r, "news-00016.txt"));
    wc_reply_free(&r);
    /* Re-ingest; then delete removes the stored original too. */
    snprintf(path, sizeof path, "/api/documents/%lld/reingest", (long long)doc);
    CHECK_EQ_INT(wc_status(&bob, "POST", path, NULL), 202);
    CHECK_EQ_INT(wc_status(&alice, "POST", path, NULL), 404);
    usleep(500000);
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)doc);
    CHECK_EQ_INT(wc_status(&bob, "DELETE", path, NULL), 200);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s/uploads' -type f -name '*news-00016*')\"",
             data_dir);
    CHECK(system(cmd) == 0);
    /* Oversize (max_upload_bytes = 300000): refused, nothing left on disk. */
    char big[1200];
    snprintf(big, sizeof big, "%s/big.txt", data_dir);
    FILE *f = fopen(big, "w");
    REQUIRE(f);
    for (int i = 0; i < 40000; i++)
        fputs("oversize ", f);
    fclose(f);
    CHECK_EQ_INT(wc_upload(&bob, "/api/collections/news/documents", big, &r), 413);
    wc_reply_free(&r);
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s/uploads' -type f -name '*big*')\"", data_dir);
    CHECK(system(cmd) == 0);
    /* A broken document fails cleanly with a reason. */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/broken.pdf", data_dir);
    f = fopen(bad, "w");
    REQUIRE(f);
    fputs("%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", f);
    fclose(f);
    CHECK_EQ_INT(wc_upload(&bob, "/api/collections/news/documents", bad, &r), 202);
    j = cJSON_Parse(r.body.data);
    doc = (int64_t)rb_json_num(j, "id", 0);
    cJSON_Delete(j);
    wc_reply_free(&r);
    snprintf(path, sizeof path, "/api/documents/%lld", (long long)doc);
    bool failed = false;
    for (int i = 0; i < 150 && !failed; i++) {
        CHECK_EQ_INT(wc_json(&bob, "GET", path, NULL, &r), 200);
        failed = body_has(&r, "\"state\":\"failed\"") && body_has(&r, "\"error\"");
        wc_reply_free(&r);
        if (!failed)
            usleep(100000);
    }
    CHECK(failed);
    CHECK_EQ_INT(wc_status(&bob, "GET", "/api/health", NULL), 200);
    wc_free(&bob);
    wc_free(&alice);
}

/* The audit trail: logins, failures, denials, admin changes, searches and
 * history deletions are recorded; auditors query, verify and export it. */
static void test_audit(void)
{
    struct wc aud, alice;
    wc_init(&aud, "http", port);
    wc_init(&alice, "http", port);
    REQUIRE(wc_login(&aud, "aud", "aud-password"));
    REQUIRE(wc_login(&alice, "alice", "alice-password"));
    CHECK_EQ_INT(wc_status(&alice, "GET", "/api/audit", NULL), 403);
    CHECK_EQ_INT(wc_status(&alice, "POST", "/api/audit/verify", NULL), 403);
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit?user=alice&action=search", NULL, &r), 200);
    CHECK(body_has(&r, "\"search\"") && body_has(&r, MED_WORD));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit?action=login_failure", NULL, &r), 200);
    CHECK(body_has(&r, "eve"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit?action=denial", NULL, &r), 200);
    CHECK(body_has(&r, "auth.csrf") && body_has(&r, "auth.role"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit?action=admin_change", NULL, &r), 200);
    CHECK(body_has(&r, "user.create") && body_has(&r, "grant.set"));
    wc_reply_free(&r);
    /* The history deletion left a tombstone without the deleted text. */
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit?action=deletion", NULL, &r), 200);
    CHECK(body_has(&r, "history.delete"));
    CHECK(!body_has(&r, "Does flight impair") && !body_has(&r, "second question"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&aud, "GET", "/api/audit?action=bogus", NULL), 400);
    CHECK_EQ_INT(wc_status(&aud, "GET", "/api/audit?from=yesterday", NULL), 400);
    CHECK_EQ_INT(wc_json(&aud, "POST", "/api/audit/verify", NULL, &r), 200);
    CHECK(body_has(&r, "\"ok\":true"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit/export?format=csv&action=login", NULL, &r), 200);
    CHECK(header_has(&r, "text/csv") && body_has(&r, "alice"));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_json(&aud, "GET", "/api/audit/export", NULL, &r), 200);
    CHECK(body_has(&r, "\"prev\""));
    wc_reply_free(&r);
    CHECK_EQ_INT(wc_status(&aud, "GET", "/api/audit/export?format=xml", NULL), 400);
    wc_free(&aud);
    wc_free(&alice);
}

static int connect_raw(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* True when the server closed fd within ms. */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t end = rb_time_mono_ns() + (int64_t)ms * 1000000;
    while (rb_time_mono_ns() < end) {
        int left = (int)((end - rb_time_mono_ns()) / 1000000);
        if (poll(&p, 1, left > 0 ? left : 1) > 0) {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                return true;
        }
    }
    return false;
}

static void test_slow_clients(void)
{
    /* Slowloris: clients that send half a request line and stall. The
     * connection timeout (2 s here) closes them, and meanwhile other clients
     * are served normally. */
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = connect_raw();
        REQUIRE(fds[i] >= 0);
        CHECK(write(fds[i], "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ", 44) == 44);
    }
    struct wc c;
    wc_init(&c, "http", port);
    int64_t t0 = rb_time_mono_ns();
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/health", NULL), 200);
    CHECK((rb_time_mono_ns() - t0) < 500000000LL);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(closed_within(fds[i], 5000), "slow connection %d not closed", i);
        close(fds[i]);
    }
    /* Per-address connection limit (24 here): excess connections are dropped
     * at once; after they go, service resumes. */
    int many[40], open_ok = 0, refused = 0;
    for (int i = 0; i < 40; i++) {
        many[i] = connect_raw();
    }
    usleep(300000);
    for (int i = 0; i < 40; i++) {
        if (many[i] < 0) {
            refused++;
            continue;
        }
        if (closed_within(many[i], 100))
            refused++;
        else
            open_ok++;
    }
    CHECK_MSG(open_ok <= 24 && refused >= 16, "open %d refused %d", open_ok, refused);
    for (int i = 0; i < 40; i++)
        if (many[i] >= 0)
            close(many[i]);
    usleep(200000);
    CHECK_EQ_INT(wc_status(&c, "GET", "/api/health", NULL), 200);
    wc_free(&c);
}

/* HTTPS with a certificate made by openssl(1); the cookie gains Secure. */
static void test_tls(const char *tmp)
{
    char cmd[4096], cert[1024], key[1024];
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp);
    snprintf(key, sizeof key, "%s/key.pem", tmp);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl not available: TLS test skipped\n");
        return;
    }
    char extra[2300];
    snprintf(extra, sizeof extra, "tls_cert = %s\ntls_key = %s\n", cert, key);
    struct rb_config *cfg = test_config(extra);
    struct rb_web_options o = {.data_dir = data_dir, .config = cfg, .listen = "127.0.0.1:0"};
    struct rb_web *web = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_web_open(&o, &web, &err) == RB_OK);
    CHECK(rb_web_tls(web));
    struct wc c;
    wc_init(&c, "https", rb_web_port(web));
    c.cainfo = cert;
    struct wc_reply r;
    CHECK_EQ_INT(wc_json(&c, "POST", "/api/login",
                         "{\"username\":\"alice\",\"password\":\"alice-password\"}", &r),
                 200);
    CHECK(header_has(&r, "; Secure"));
    CHECK(header_has(&r, "Strict-Transport-Security"));
    wc_reply_free(&r);
    wc_free(&c);
    /* Plain HTTP to the TLS port gets nothing useful. */
    struct wc p;
    wc_init(&p, "http", rb_web_port(web));
    CHECK(wc_status(&p, "GET", "/api/health", NULL) != 200);
    wc_free(&p);
    rb_web_close(web);
    rb_config_free(cfg);
    /* A bad key file is a clear error. */
    snprintf(extra, sizeof extra, "tls_cert = %s\ntls_key = %s/none.pem\n", cert, tmp);
    cfg = test_config(extra);
    o.config = cfg;
    CHECK(rb_web_open(&o, &web, &err) != RB_OK && web == NULL);
    CHECK(strstr(err.text, "tls_key") != NULL);
    rb_config_free(cfg);
}

static void test_bad_options(void)
{
    struct rb_web *web = NULL;
    struct rb_errmsg err;
    struct rb_config *cfg = test_config(NULL);
    struct rb_web_options o = {.data_dir = data_dir, .config = cfg, .listen = "nonsense"};
    CHECK(rb_web_open(&o, &web, &err) == RB_ERR_CONFIG && !web);
    o.listen = "127.0.0.1:99999";
    CHECK(rb_web_open(&o, &web, &err) == RB_ERR_CONFIG && !web);
    o.listen = "example.com:80";
    CHECK(rb_web_open(&o, &web, &err) == RB_ERR_CONFIG && !web);
    rb_config_free(cfg);
    cfg = test_config("threads = 0\n");
    o.config = cfg;
    o.listen = "127.0.0.1:0";
    CHECK(rb_web_open(&o, &web, &err) == RB_ERR_CONFIG && !web);
    rb_config_free(cfg);
}

int main(void)
{
    const char *tmp = getenv("RAGBOX_TEST_TMP");
    if (!tmp || !getenv("RAGBOX_SHARED"))
        return 77;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmp, tmp);
    REQUIRE(system(cmd) == 0);
    snprintf(data_dir, sizeof data_dir, "%s/data", tmp);
    REQUIRE(rb_fs_mkdirs(data_dir, 0700) == RB_OK);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct rb_config *cfg = test_config(NULL);
    struct fixture fx;
    setup(&fx, cfg);
    struct rb_web_options o = {.data_dir = data_dir, .config = cfg, .listen = "127.0.0.1:0"};
    struct rb_web *web = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_web_open(&o, &web, &err) == RB_OK);
    port = rb_web_port(web);
    REQUIRE(port > 0);

    test_health_and_static();
    test_login_session_csrf();
    test_throttle();
    test_admin_endpoints(&fx);
    test_access_matrix(&fx);
    test_api_keys();
    test_history();
    test_hostile_requests();
    test_upload();
    test_ask();
    test_audit();
    test_slow_clients();

    rb_web_close(web);
    test_tls(tmp);
    test_bad_options();
    rb_config_free(cfg);
    curl_global_cleanup();
    return check_finish();
}
