/* bench-web: N concurrent keep-alive clients on loopback for a fixed time
 * against a real `ragbox serve`, over the 724 PubMedQA abstracts.
 *
 *   bench-web [--clients N] [--seconds S] [--keep DIR]
 *
 * Prints, per endpoint (health as the baseline of the same run, then search):
 * requests/s, p50/p90/p99/max latency, errors, and the server's RSS before and
 * after. Needs RAGBOX_BIN (the ragbox CLI) and RAGBOX_SHARED. */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ragbox/common.h"
#include "ragbox/index.h"
#include "ragbox/web.h"

struct client {
    int id;
    const char *url;
    const char *key;
    char **queries;
    size_t n_queries;
    int64_t end_ns;
    int64_t *lat_us; /* owned */
    size_t n, cap;
    size_t errors;
    bool post;
};

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

static void *run_client(void *arg)
{
    struct client *c = arg;
    CURL *k = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(k, CURLOPT_URL, c->url);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    size_t qi = (size_t)c->id * 7;
    char body[2048];
    while (rb_time_mono_ns() < c->end_ns) {
        if (c->post) {
            /* Quote-safe: the queries were stripped of " and \ on load. */
            snprintf(body, sizeof body, "{\"query\":\"%s\",\"question\":\"%s\",\"k\":10}",
                     c->queries[qi % c->n_queries], c->queries[qi % c->n_queries]);
            qi++;
            curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
        }
        int64_t t0 = rb_time_mono_ns();
        CURLcode rc = curl_easy_perform(k);
        long status = 0;
        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
        int64_t us = (rb_time_mono_ns() - t0) / 1000;
        if (rc != CURLE_OK || status != 200) {
            c->errors++;
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4096;
            int64_t *g = realloc(c->lat_us, c->cap * sizeof *g);
            if (!g)
                break;
            c->lat_us = g;
        }
        c->lat_us[c->n++] = us;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(k);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void phase(const char *name, const char *url, bool post, int n_clients, int seconds,
                  const char *key, char **queries, size_t n_queries)
{
    struct client *cl = calloc((size_t)n_clients, sizeof *cl);
    pthread_t *th = calloc((size_t)n_clients, sizeof *th);
    int64_t start = rb_time_mono_ns();
    int64_t end = start + (int64_t)seconds * 1000000000LL;
    for (int i = 0; i < n_clients; i++) {
        cl[i] = (struct client){.id = i, .url = url, .key = key, .queries = queries,
                                .n_queries = n_queries, .end_ns = end, .post = post};
        pthread_create(&th[i], NULL, run_client, &cl[i]);
    }
    size_t total = 0, errors = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(th[i], NULL);
        total += cl[i].n;
        errors += cl[i].errors;
    }
    double secs = (double)(rb_time_mono_ns() - start) / 1e9;
    int64_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < n_clients; i++) {
        memcpy(all + k, cl[i].lat_us, cl[i].n * sizeof *all);
        k += cl[i].n;
        free(cl[i].lat_us);
    }
    qsort(all, total, sizeof *all, cmp64);
#define PCT(p) (total ? (double)all[(size_t)((double)(total - 1) * (p))] / 1000.0 : 0.0)
    printf("%-8s clients=%d  %8.0f req/s  ok=%zu errors=%zu  p50=%.2f ms  p90=%.2f ms  "
           "p99=%.2f ms  max=%.2f ms\n",
           name, n_clients, (double)total / secs, total, errors, PCT(0.5), PCT(0.9), PCT(0.99),
           total ? (double)all[total - 1] / 1000.0 : 0.0);
    fflush(stdout);
    free(all);
    free(cl);
    free(th);
}

int main(int argc, char **argv)
{
    int n_clients = 64, seconds = 10;
    const char *keep = NULL;
    int audit_sync = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
            n_clients = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
            keep = argv[++i];
        else if (strcmp(argv[i], "--audit-sync") == 0 && i + 1 < argc)
            audit_sync = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (int)strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench-web [--clients N] [--seconds S] [--keep DIR] "
                            "[--audit-sync 0|1] [--threads N]\n");
            return 2;
        }
    }
    const char *bin = getenv("RAGBOX_BIN"), *shared = getenv("RAGBOX_SHARED");
    if (!bin || !shared || n_clients < 1 || n_clients > 4096 || seconds < 1) {
        fprintf(stderr, "bench-web: set RAGBOX_BIN and RAGBOX_SHARED\n");
        return 2;
    }
    char dir[512];
    if (keep)
        rb_strlcpy(dir, keep, sizeof dir);
    else
        snprintf(dir, sizeof dir, "/tmp/ragbox-bench-web-%d", (int)getpid());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;

    /* The corpus: every PubMedQA abstract, one passage per paragraph. */
    struct rb_index *idx = NULL;
    struct rb_index_options io = {.data_dir = dir};
    struct rb_errmsg err;
    int64_t cid = 0;
    if (rb_index_open(&io, &idx, &err) != RB_OK ||
        rb_index_collection_create(idx, "pubmed", NULL, &cid) != RB_OK) {
        fprintf(stderr, "bench-web: index: %s\n", err.text);
        return 1;
    }
    char qpath[1024];
    snprintf(qpath, sizeof qpath, "%s/eval/pubmedqa/questions.jsonl", shared);
    char *qtext = NULL;
    size_t qlen = 0;
    if (rb_fs_read_file(qpath, 64 << 20, &qtext, &qlen) != RB_OK) {
        fprintf(stderr, "bench-web: cannot read %s\n", qpath);
        return 1;
    }
    char **queries = NULL;
    size_t n_q = 0, n_docs = 0, n_chunks = 0;
    for (char *line = qtext, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        cJSON *j = cJSON_Parse(line);
        const char *q = rb_json_str(j, "question"), *doc = rb_json_str(j, "doc");
        if (q) {
            char *copy = rb_strdup(q);
            for (char *p = copy; *p; p++)
                if (*p == '"' || *p == '\\')
                    *p = ' ';
            queries = realloc(queries, (n_q + 1) * sizeof *queries);
            queries[n_q++] = copy;
        }
        if (doc) {
            char dpath[1024];
            snprintf(dpath, sizeof dpath, "%s/eval/pubmedqa/docs/%s", shared, doc);
            char *text = NULL;
            size_t len = 0;
            if (rb_fs_read_file(dpath, 1 << 20, &text, &len) == RB_OK) {
                struct rb_index_chunk ch[32];
                size_t n = 0;
                for (char *p = text; *p && n < 32;) {
                    char *e = strstr(p, "\n\n");
                    if (e)
                        *e = '\0';
                    if (*p) {
                        memset(&ch[n], 0, sizeof ch[n]);
                        ch[n].text = p;
                        ch[n].ordinal = (int32_t)n;
                        n++;
                    }
                    p = e ? e + 2 : p + strlen(p);
                }
                struct rb_index_document d = {.collection_id = cid, .source = doc,
                                              .title = doc, .language = "en",
                                              .state = RB_INDEX_DOC_INDEXED};
                if (n && rb_index_document_put(idx, &d, ch, n, NULL, NULL) == RB_OK) {
                    n_docs++;
                    n_chunks += n;
                }
                free(text);
            }
        }
        cJSON_Delete(j);
    }
    rb_index_close(idx);
    printf("corpus: %zu documents, %zu passages; %zu distinct queries\n", n_docs, n_chunks, n_q);

    /* Users and a key. */
    char *db = rb_path_join(dir, "ragbox.db");
    struct rb_web_auth *a = NULL;
    struct rb_web_auth_options ao = {.db_path = db};
    char *key = NULL;
    if (rb_web_auth_open(&ao, &a, &err) != RB_OK ||
        rb_web_user_add(a, "bench", RB_WEB_ROLE_USER, "bench-password", NULL) != RB_OK ||
        rb_web_grant_set(a, cid, RB_WEB_PRINCIPAL_USER, "bench", true, false) != RB_OK ||
        rb_web_apikey_create(a, "bench", "bench", RB_WEB_SCOPE_READ, &key, NULL) != RB_OK) {
        fprintf(stderr, "bench-web: auth setup failed\n");
        return 1;
    }
    rb_web_auth_close(a);
    free(db);

    /* The server, as deployed: a separate process. */
    char conf[600];
    snprintf(conf, sizeof conf, "%s/ragbox.conf", dir);
    FILE *cf = fopen(conf, "w");
    if (!cf)
        return 1;
    /* Every search is an audit record; --audit-sync 0 shows what its fdatasync costs. */
    fprintf(cf, "[web]\nmax_connections_per_ip = %d\nmax_connections = %d\n",
            n_clients + 16, n_clients + 64);
    if (threads > 0) /* else the server's default */
        fprintf(cf, "threads = %d\n", threads);
    fprintf(cf, "[audit]\nsync = %s\n", audit_sync ? "true" : "false");
    fclose(cf);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(bin, bin, "--data", dir, "--config", conf, "serve", "--listen", "127.0.0.1:0",
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char out[256] = "";
    ssize_t got = read(pipefd[0], out, sizeof out - 1);
    int port = 0;
    const char *pp = got > 0 ? strstr(out, "port ") : NULL;
    if (pp)
        port = (int)strtol(pp + 5, NULL, 10);
    if (port <= 0) {
        fprintf(stderr, "bench-web: server did not start\n");
        kill(pid, SIGTERM);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char url_health[128], url_search[128], url_ask[128];
    snprintf(url_ask, sizeof url_ask, "http://127.0.0.1:%d/api/ask", port);
    snprintf(url_health, sizeof url_health, "http://127.0.0.1:%d/api/health", port);
    snprintf(url_search, sizeof url_search, "http://127.0.0.1:%d/api/search", port);
    long rss0 = rss_kib(pid);
    printf("server RSS before: %ld KiB\n", rss0);
    phase("health", url_health, false, n_clients, seconds, key, queries, n_q);
    printf("server RSS after health: %ld KiB\n", rss_kib(pid));
    phase("search", url_search, true, n_clients, seconds, key, queries, n_q);
    printf("server RSS after search: %ld KiB\n", rss_kib(pid));
    phase("ask", url_ask, true, n_clients, seconds, key, queries, n_q);
    printf("server RSS after ask: %ld KiB\n", rss_kib(pid));
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    curl_global_cleanup();
    for (size_t i = 0; i < n_q; i++)
        free(queries[i]);
    free(queries);
    free(qtext);
    free(key);
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
