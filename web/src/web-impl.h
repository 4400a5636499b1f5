/* Private to the web module: the server state, the request, the router. */
#ifndef RAGBOX_WEB_IMPL_H
#define RAGBOX_WEB_IMPL_H

#include <microhttpd.h>
#include <pthread.h>

#include "ragbox/web.h"
#ifdef RB_WEB_HAVE_INDEX
#include "ragbox/index.h"
#endif
#ifdef RB_WEB_HAVE_AUDIT
#include "ragbox/audit.h"
#endif
#ifdef RB_WEB_HAVE_ANSWER
#include "ragbox/answer.h"
#endif
#ifdef RB_WEB_HAVE_ENGINE
#include "ragbox/engine.h"
#endif

#define WEB_MAX_PARAMS 4
#define WEB_LAT_BUCKETS 12
/* Bytes of an oversize body read and discarded so the 413 reaches the client. */
#define WEB_DRAIN_MAX ((size_t)16 << 20)

struct web_route;
struct web_upload;
struct web_ingest;
struct web_stream;
struct web_task;
struct web_jobs;

/* Prometheus counters. Route labels are route *patterns* ("/api/users/{name}"),
 * never request paths, so no user-supplied text becomes a label. */
struct web_metrics {
    pthread_mutex_t lock;
    uint64_t *count_by_route_status; /* [n_routes + 1][6]: status class 1xx..5xx, index by
                                      * status/100; the extra route is "unmatched" */
    uint64_t lat_bucket[WEB_LAT_BUCKETS + 1]; /* cumulative at export; +Inf last */
    double lat_sum_s;
    uint64_t lat_count;
    uint64_t errors;            /* 5xx responses */
    uint64_t rejected_body;     /* 413 */
    uint64_t logins_ok, logins_failed, logins_throttled;
    uint64_t denials;           /* 401/403 */
    uint64_t stream_pieces;     /* answer pieces (tokens) streamed */
    uint64_t streams_cancelled; /* asks stopped because the client left */
    uint64_t embeddings;        /* inputs embedded by /v1/embeddings */
};

/* Failed-login throttling by user name and by client address. */
struct web_throttle_entry {
    char key[96];
    int failures;
    int64_t until_us; /* no attempt accepted before */
    int64_t last_us;
};
struct web_throttle {
    pthread_mutex_t lock;
    struct web_throttle_entry *entries;
    size_t n, cap;
    int max_failures;      /* free attempts before back-off starts */
    int64_t backoff_max_us;
};

struct rb_web {
    struct MHD_Daemon *daemon;
    struct rb_web_auth *auth;
#ifdef RB_WEB_HAVE_INDEX
    struct rb_index *index; /* shared by all request threads (rb_index is thread-safe) */
#endif
#ifdef RB_WEB_HAVE_ANSWER
    struct rb_answerer *answerer; /* extractive (or generating, with a backend) answers */
#ifdef RAGBOX_ANSWER_HAVE_ENV
    struct rb_answer_env *answer_env; /* vertical packs + audit of each ask */
#endif
#endif
#ifdef RB_WEB_HAVE_AUDIT
    struct rb_audit *audit; /* shared (rb_audit serialises appends) */
    char *audit_paths;      /* owns the strings of audit_opts */
    struct rb_audit_options audit_opts;
#endif
    const struct rb_config *config;
    char *data_dir;
    bool tls;
    int port;
    size_t max_body, max_upload;
    int json_depth;
    char *cert_pem, *key_pem;
    struct web_metrics metrics;
    struct web_throttle throttle;
    int64_t started_us;
    struct web_ingest *ingest; /* upload worker (upload.c), NULL when not built */
#ifdef RB_WEB_HAVE_ANSWER
    struct rb_answer_backend *backend; /* generation model ([engine] model), NULL = extractive */
#endif
#ifdef RB_WEB_HAVE_ENGINE
    struct rb_engine_model *embedder;  /* embedding model ([engine] embedding_model), or NULL */
    struct rb_engine_tokenizer *embed_tok; /* its tokenizer (usage counts) */
    char embedder_name[256];           /* its file name without .gguf, the /v1 model id */
#endif
    /* Streams (stream.c): live SSE responses, for shutdown. */
    pthread_mutex_t streams_lock;
    pthread_cond_t streams_cond;
    struct web_stream *streams;
    size_t n_streams;
    bool stopping;
    /* Background workers (stream.c) that run asks and other long tasks. */
    pthread_mutex_t tasks_lock;
    pthread_cond_t tasks_cond;
    struct web_task *tasks_head, *tasks_tail;
    size_t tasks_queued, tasks_running;
    bool tasks_stop;
    pthread_t *workers;
    int n_workers;
    struct web_jobs *jobs; /* batch jobs (jobs.c), NULL when not built */
    /* Collection ids and names for the hot paths (search, ask, /v1): the
     * index's list also counts documents, chunks and vectors (scans), which
     * cost more than the search itself. Refreshed after WEB_COLL_TTL_NS or
     * when this server creates or deletes a collection. Access is still
     * checked per request; a stale entry only names a collection id the
     * index no longer has (no hits). */
    pthread_mutex_t coll_lock;
    struct web_coll *coll;
    size_t n_coll;
    int64_t coll_at_ns; /* 0 = invalid */
};
#define WEB_COLL_TTL_NS 2000000000LL
struct web_coll {
    int64_t id;
    char *name;
};

/* The authenticated caller of a request. */
struct web_caller {
    bool authenticated;
    bool via_session;   /* cookie: CSRF applies */
    bool via_key;       /* Authorization: Bearer */
    struct rb_web_user user;
    unsigned scopes;    /* for keys; sessions have all */
    char csrf[65];
    char session_id[65];
};

struct web_request {
    struct rb_web *web;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const struct web_route *route;
    size_t route_index;
    char *params[WEB_MAX_PARAMS]; /* decoded {name} path segments, owned */
    struct rb_buf body;
    bool body_too_large;
    size_t drained;               /* bytes discarded after body_too_large */
    int64_t start_ns;
    char ip[64];
    struct web_caller caller;
    int status; /* set when the response is queued (for metrics) */
    bool checked;                /* access checks done before the body (uploads) */
    struct web_upload *upload;   /* streamed multipart upload state, owned */
};

/* upload.c: multipart uploads streamed to DIR/uploads, and the ingest worker. */
enum MHD_Result rb__web_upload_begin(struct web_request *req);
void rb__web_upload_data(struct web_request *req, const char *data, size_t size);
void rb__web_upload_cleanup(struct web_request *req);
/* Starts/stops the worker that parses and indexes uploaded documents. */
enum rb_status rb__web_ingest_start(struct rb_web *web, struct rb_errmsg *err);
void rb__web_ingest_stop(struct rb_web *web);
/* Queues a document (state pending) for (re-)ingestion. */
enum rb_status rb__web_ingest_enqueue(struct rb_web *web, int64_t document_id);
/* Counts for /api/ingest/status and /metrics. */
struct web_ingest_counts {
    int64_t queued, running, done, failed;
};
void rb__web_ingest_counts(struct rb_web *web, struct web_ingest_counts *out);

/* stream.c: Server-Sent Events produced by a background worker. */
/* Queues a 200 text/event-stream response whose body is what the producer
 * writes; *out is the producer's handle (NULL when this failed: the reply
 * was already queued). */
enum MHD_Result rb__web_stream_start(struct web_request *req, struct web_stream **out);
/* "event: E\ndata: JSON\n\n" (frees data; event NULL = data only). False when
 * the client is gone or the server stops: the producer should stop. */
bool rb__web_stream_event(struct web_stream *s, const char *event, cJSON *data);
bool rb__web_stream_write(struct web_stream *s, const char *data, size_t len);
bool rb__web_stream_alive(struct web_stream *s);
/* The producer is done (end of stream once read); drops its reference. */
void rb__web_stream_finish(struct web_stream *s);
/* The worker pool: run(arg) on a worker; drop(arg) instead when the server
 * stops before it runs. RB_ERR_BUSY when stopping. */
enum rb_status rb__web_workers_start(struct rb_web *web, int n, struct rb_errmsg *err);
enum rb_status rb__web_workers_submit(struct rb_web *web, void (*run)(void *),
                                      void (*drop)(void *), void *arg);
void rb__web_workers_depth(struct rb_web *web, size_t *queued, size_t *running);
/* Cancels every stream, drops queued tasks, joins the workers, waits until
 * MHD holds no suspended connection. Before MHD_stop_daemon. */
void rb__web_streams_shutdown(struct rb_web *web);

/* jobs.c: batch jobs (background runner over answer's batch machinery). */
enum rb_status rb__web_jobs_start(struct rb_web *web, struct rb_errmsg *err);
void rb__web_jobs_stop(struct rb_web *web);
enum MHD_Result rb__web_jobs_submit(struct web_request *req);
enum MHD_Result rb__web_jobs_list(struct web_request *req);
enum MHD_Result rb__web_job_get(struct web_request *req);
enum MHD_Result rb__web_job_delete(struct web_request *req);
enum MHD_Result rb__web_job_result(struct web_request *req);

/* Access a route needs. */
enum web_access {
    WEB_PUBLIC = 0,  /* no login */
    WEB_USER,        /* any logged-in user */
    WEB_AUDITOR,     /* auditor or admin role */
    WEB_ADMIN,       /* admin role */
};

typedef enum MHD_Result (*web_handler)(struct web_request *req);

struct web_route {
    const char *method;  /* "GET", "POST", "DELETE", "PATCH", "PUT" */
    const char *pattern; /* "/api/users/{name}": {x} matches one non-empty segment */
    web_handler handler;
    enum web_access access;
    unsigned scope;      /* API-key scope needed (RB_WEB_SCOPE_*); 0 = sessions only */
    bool upload;         /* body is multipart/form-data streamed to disk (max_upload_bytes) */
};

/* api.c */
extern const struct web_route rb__web_routes[];
extern const size_t rb__web_n_routes;

/* server.c: responses (all add the security headers). */
/* Adds CSP, nosniff, frame and referrer policy, HSTS under TLS; api: no-store. */
void rb__web_headers(struct web_request *req, struct MHD_Response *r, bool api);
enum MHD_Result rb__web_send(struct web_request *req, int status, const char *content_type,
                             const void *body, size_t len, bool copy);
enum MHD_Result rb__web_json(struct web_request *req, int status, cJSON *obj); /* frees obj */
/* {"error":{"code":code,"message":msg}} */
enum MHD_Result rb__web_error(struct web_request *req, int status, const char *code,
                              const char *fmt, ...) RB_PRINTF(4, 5);
/* Maps a status to an HTTP error reply with message msg. */
enum MHD_Result rb__web_status(struct web_request *req, enum rb_status st, const char *msg);
/* Parses the body as a JSON object (limits applied). On failure it has
 * already replied and returns NULL with *ret set. */
cJSON *rb__web_body_json(struct web_request *req, enum MHD_Result *ret);
const char *rb__web_query(struct web_request *req, const char *key);

/* Throttle: RB_ERR_LIMIT with *retry_s when locked out. */
enum rb_status rb__web_throttle_check(struct web_throttle *t, const char *key, int64_t now_us,
                                      int *retry_s);
/* A failure past free_attempts locks the key out for 1 s, 2 s, 4 s ... up to the maximum. */
void rb__web_throttle_record(struct web_throttle *t, const char *key, bool success,
                             int free_attempts, int64_t now_us);

/* Audit hook: every login, denial and administrative change. action is a
 * dotted event name ("auth.login", "user.create"); it is mapped to the audit
 * module's action and kept in the record's details. */
void rb__web_audit(struct web_request *req, const char *action, const char *target,
                   const char *outcome);
/* Content-access records (search, passage view): collection names, the query
 * and the ids of the chunks returned. */
void rb__web_audit_access(struct web_request *req, bool search, const char *collections,
                          const char *query, const int64_t *chunk_ids, size_t n_chunks,
                          int64_t latency_ms);

/* Embedded UI assets (ui-assets.c, generated). */
struct web_asset {
    const char *path; /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};
extern const struct web_asset rb__web_assets[];
extern const size_t rb__web_n_assets;

#endif
