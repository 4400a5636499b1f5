/* Batch jobs over HTTP: a question file submitted for one or more
 * collections is answered in the background by the answer module's batch
 * runner (rb_answer_batch_run: parallel workers, fsync'd journal, resume),
 * and the result is downloaded as JSONL, CSV or XLSX.
 *
 * On disk, one directory per job under <data>/jobs/<id>/:
 *   job.json            the job's record (owner, collections, state, counts),
 *                       replaced atomically at every state change
 *   questions.<ext>     the submitted file (.jsonl, .csv or .xlsx)
 *   result.jsonl        the answers, in question order, once done
 *   result.jsonl.journal  the runner's journal while running (resume)
 *   result.csv/.xlsx    conversions made on first download
 * A server restarted with queued or running jobs resumes them from their
 * journals: finished questions are not asked again.
 *
 * Access: a job belongs to the user who submitted it; only that user (and
 * admins) may see, download or cancel it; anyone else gets the same 404 as
 * for a job that does not exist. The collections are checked against the
 * owner's grants at submission and again when the job starts, and every
 * question's retrieval runs under the owner's ACL predicate, so a grant
 * revoked meanwhile is honoured. Submission, cancellation, deletion, result
 * downloads and the job's end are audit records; each question is audited by
 * the answer module as an ask by the owner.
 *
 * Threads: one runner thread takes queued jobs in order (a job itself runs
 * [web] job_workers questions in parallel); request threads read and change
 * the in-memory list under jobs->lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web-impl.h"

#if defined(RB_WEB_HAVE_ANSWER) && defined(RB_WEB_HAVE_INDEX)

#define JOB_ID_HEX 16
#define JOB_MAX_COLLECTIONS 32
#define JOB_MAX_QUESTIONS 100000

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED };
static const char *const state_names[] = {"queued", "running", "done", "failed", "cancelled"};

struct job {
    char id[JOB_ID_HEX + 1];
    int64_t owner_id;
    char owner[RB_WEB_NAME_MAX + 1];
    char client[64];
    char *collections[JOB_MAX_COLLECTIONS]; /* names, owned */
    size_t n_collections;
    char vertical[65];
    enum rb_answer_mode mode;
    char qext[8];             /* "jsonl", "csv", "xlsx" */
    enum job_state state;
    size_t total, done, answered, refused, failed;
    int64_t created_us, started_us, finished_us;
    char error[512];
    volatile int stop;        /* set to cancel a running job */
    bool deleted;             /* removed while running: the runner deletes its files */
    struct job *next;
};

struct web_jobs {
    struct rb_web *web;
    char *dir; /* <data>/jobs */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *list; /* newest first */
    bool stop;
    pthread_t runner;
    bool runner_started;
    int workers; /* questions in parallel per job */
};

/* ================================================================ files */

static char *job_path(const struct web_jobs *js, const struct job *j, const char *name)
{
    return rb_asprintf("%s/%s/%s", js->dir, j->id, name);
}

static cJSON *job_json(const struct job *j, bool for_disk)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "owner", j->owner);
    if (for_disk) {
        cJSON_AddNumberToObject(o, "owner_id", (double)j->owner_id);
        cJSON_AddStringToObject(o, "client", j->client);
        cJSON_AddStringToObject(o, "questions_format", j->qext);
    }
    cJSON *c = cJSON_AddArrayToObject(o, "collections");
    for (size_t i = 0; c && i < j->n_collections; i++)
        cJSON_AddItemToArray(c, cJSON_CreateString(j->collections[i]));
    if (j->vertical[0])
        cJSON_AddStringToObject(o, "vertical", j->vertical);
    cJSON_AddStringToObject(o, "mode", j->mode == RB_ANSWER_MODE_EXTRACTIVE ? "extractive"
                                       : j->mode == RB_ANSWER_MODE_GENERATE ? "generate"
                                                                             : "auto");
    cJSON_AddStringToObject(o, "state", state_names[j->state]);
    cJSON_AddNumberToObject(o, "total", (double)j->total);
    cJSON_AddNumberToObject(o, "done", (double)j->done);
    cJSON_AddNumberToObject(o, "answered", (double)j->answered);
    cJSON_AddNumberToObject(o, "refused", (double)j->refused);
    cJSON_AddNumberToObject(o, "failed", (double)j->failed);
    if (!for_disk)
        cJSON_AddNumberToObject(o, "progress",
                                j->total ? (double)j->done / (double)j->total : 0.0);
    char t[40];
    rb_time_format_utc(j->created_us, t, sizeof t);
    cJSON_AddStringToObject(o, "created", t);
    if (j->started_us) {
        rb_time_format_utc(j->started_us, t, sizeof t);
        cJSON_AddStringToObject(o, "started", t);
    }
    if (j->finished_us) {
        rb_time_format_utc(j->finished_us, t, sizeof t);
        cJSON_AddStringToObject(o, "finished", t);
    }
    if (for_disk) {
        cJSON_AddNumberToObject(o, "created_us", (double)j->created_us);
        cJSON_AddNumberToObject(o, "started_us", (double)j->started_us);
        cJSON_AddNumberToObject(o, "finished_us", (double)j->finished_us);
    }
    if (j->error[0])
        cJSON_AddStringToObject(o, "error", j->error);
    return o;
}

/* Writes job.json atomically (caller holds the lock or owns j alone). */
static enum rb_status job_save(const struct web_jobs *js, const struct job *j)
{
    cJSON *o = job_json(j, true);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    char *path = job_path(js, j, "job.json");
    enum rb_status st = text && path ? rb_fs_write_atomic(path, text, strlen(text)) : RB_ERR_NOMEM;
    if (st != RB_OK)
        RB_ERROR("web", "cannot save job %s: %s", j->id, rb_status_str(st));
    free(text);
    free(path);
    return st;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n_collections; i++)
        free(j->collections[i]);
    free(j);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = rb_path_join(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void job_remove_files(const struct web_jobs *js, const struct job *j)
{
    char *dir = rb_asprintf("%s/%s", js->dir, j->id);
    if (dir)
        remove_dir(dir);
    free(dir);
}

static bool valid_id(const char *id)
{
    if (!id || strlen(id) != JOB_ID_HEX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Loads a job.json written by job_save (a restart). */
static struct job *job_load(const struct web_jobs *js, const char *id)
{
    char *path = rb_asprintf("%s/%s/job.json", js->dir, id);
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = path ? rb_fs_read_file(path, 1 << 20, &text, &len) : RB_ERR_NOMEM;
    free(path);
    if (st != RB_OK)
        return NULL;
    cJSON *o = NULL;
    struct rb_errmsg err;
    st = rb_json_parse(text, len, 8, &o, &err);
    free(text);
    if (st != RB_OK)
        return NULL;
    struct job *j = calloc(1, sizeof *j);
    const char *owner = rb_json_str(o, "owner"), *state = rb_json_str(o, "state"),
               *qext = rb_json_str(o, "questions_format"), *mode = rb_json_str(o, "mode");
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(o, "collections");
    bool ok = j && owner && state && qext && cJSON_IsArray(cols) &&
              strcmp(rb_json_str(o, "id") ? rb_json_str(o, "id") : "", id) == 0;
    if (ok) {
        rb_strlcpy(j->id, id, sizeof j->id);
        rb_strlcpy(j->owner, owner, sizeof j->owner);
        rb_strlcpy(j->client, rb_json_str(o, "client") ? rb_json_str(o, "client") : "", sizeof j->client);
        rb_strlcpy(j->qext, qext, sizeof j->qext);
        if (rb_json_str(o, "vertical"))
            rb_strlcpy(j->vertical, rb_json_str(o, "vertical"), sizeof j->vertical);
        j->mode = mode && strcmp(mode, "extractive") == 0 ? RB_ANSWER_MODE_EXTRACTIVE
                  : mode && strcmp(mode, "generate") == 0 ? RB_ANSWER_MODE_GENERATE
                                                          : RB_ANSWER_MODE_AUTO;
        j->owner_id = (int64_t)rb_json_num(o, "owner_id", 0);
        j->total = (size_t)rb_json_num(o, "total", 0);
        j->done = (size_t)rb_json_num(o, "done", 0);
        j->answered = (size_t)rb_json_num(o, "answered", 0);
        j->refused = (size_t)rb_json_num(o, "refused", 0);
        j->failed = (size_t)rb_json_num(o, "failed", 0);
        j->created_us = (int64_t)rb_json_num(o, "created_us", 0);
        j->started_us = (int64_t)rb_json_num(o, "started_us", 0);
        j->finished_us = (int64_t)rb_json_num(o, "finished_us", 0);
        if (rb_json_str(o, "error"))
            rb_strlcpy(j->error, rb_json_str(o, "error"), sizeof j->error);
        j->state = JOB_FAILED;
        for (int s = 0; s < 5; s++)
            if (strcmp(state, state_names[s]) == 0)
                j->state = (enum job_state)s;
        const cJSON *c;
        cJSON_ArrayForEach(c, cols)
        {
            if (cJSON_IsString(c) && j->n_collections < JOB_MAX_COLLECTIONS)
                j->collections[j->n_collections++] = rb_strdup(c->valuestring);
        }
        ok = j->n_collections > 0;
    }
    cJSON_Delete(o);
    if (!ok) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* ================================================================ audit */

static void job_audit(struct rb_web *web, const struct job *j, const char *user, const char *client,
                      const char *event, const char *outcome)
{
#ifdef RB_WEB_HAVE_AUDIT
    if (!web->audit)
        return;
    char cols[1024] = "";
    size_t cl = 0;
    for (size_t i = 0; i < j->n_collections && cl < sizeof cols; i++) {
        int w = snprintf(cols + cl, sizeof cols - cl, "%s%s", i ? "," : "", j->collections[i]);
        if (w < 0)
            break;
        cl += (size_t)w;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "event", event);
    cJSON_AddStringToObject(d, "job", j->id);
    cJSON_AddStringToObject(d, "owner", j->owner);
    cJSON_AddNumberToObject(d, "questions", (double)j->total);
    cJSON_AddNumberToObject(d, "done", (double)j->done);
    struct rb_audit_event ev = {.action = strstr(event, ".delete") ? RB_AUDIT_DELETION
                                                                    : RB_AUDIT_BATCH,
                                .user = user,
                                .client = client,
                                .collection = cols,
                                .vertical = j->vertical[0] ? j->vertical : NULL,
                                .outcome = outcome,
                                .latency_ms = -1,
                                .target = j->id,
                                .error = j->error[0] ? j->error : NULL,
                                .details = d};
    if (rb_audit_append(web->audit, &ev, NULL) != RB_OK)
        RB_ERROR("web", "audit append failed: %s", rb_audit_errmsg(web->audit));
    cJSON_Delete(d);
#else
    (void)web, (void)j, (void)user, (void)client, (void)event, (void)outcome;
#endif
}

/* =============================================================== runner */

struct run_ctx {
    struct web_jobs *js;
    struct job *job;
    int64_t ids[JOB_MAX_COLLECTIONS];
    size_t n_ids;
    char client[96];
};

static bool run_allow(void *ctx, int64_t collection_id, int64_t document_id)
{
    (void)document_id;
    const struct run_ctx *r = ctx;
    for (size_t i = 0; i < r->n_ids; i++)
        if (r->ids[i] == collection_id)
            return true;
    return false;
}

static enum rb_status run_open_worker(void *user, void **worker, struct rb_errmsg *err)
{
    (void)err;
    *worker = user; /* the answerer is shared by threads */
    return RB_OK;
}

static void run_close_worker(void *worker)
{
    (void)worker;
}

static enum rb_status run_ask(void *worker, const char *id, const char *question,
                              struct rb_answer_result *out, struct rb_errmsg *err)
{
    (void)id;
    struct run_ctx *r = worker;
    struct job *j = r->job;
    struct rb_answer_request req = {.question = question,
                                    .collections = (const char *const *)j->collections,
                                    .n_collections = j->n_collections,
                                    .vertical = j->vertical[0] ? j->vertical : NULL,
                                    .mode = j->mode,
                                    .allow = run_allow,
                                    .allow_ctx = r,
                                    .user = j->owner,
                                    .client = r->client};
    enum rb_status st = rb_answerer_ask(r->js->web->answerer, &req, out, err);
    pthread_mutex_lock(&r->js->lock);
    j->done++;
    if (st != RB_OK)
        j->failed++;
    else if (out->refused)
        j->refused++;
    else
        j->answered++;
    pthread_mutex_unlock(&r->js->lock);
    return st;
}

/* Counts the result lines of a journal left by an interrupted run. */
static size_t journal_done(const char *path)
{
    char *data = NULL;
    size_t len = 0, n = 0;
    if (rb_fs_read_file(path, (size_t)1 << 31, &data, &len) != RB_OK)
        return 0;
    for (size_t i = 0; i < len; i++)
        n += data[i] == '\n';
    free(data);
    return n > 0 ? n - 1 : 0; /* the header line */
}

static void run_job(struct web_jobs *js, struct job *j)
{
    struct rb_web *web = js->web;
    struct run_ctx r = {.js = js, .job = j};
    snprintf(r.client, sizeof r.client, "%s batch-job %s", j->client, j->id);
    /* The owner's grants now, not at submission. */
    struct rb_web_user owner;
    enum rb_status st = rb_web_user_get_by_id(web->auth, j->owner_id, &owner);
    bool ok = st == RB_OK && !owner.disabled && strcmp(owner.name, j->owner) == 0;
    for (size_t i = 0; ok && i < j->n_collections; i++) {
        struct rb_index_collection *c = NULL;
        ok = rb_index_collection_get(web->index, j->collections[i], &c) == RB_OK &&
             rb_web_auth_can(web->auth, j->owner_id, c->id, false);
        if (ok)
            r.ids[r.n_ids++] = c->id;
        rb_index_collection_free(c);
    }
    char *qpath = NULL, *out = job_path(js, j, "result.jsonl"), *journal = NULL;
    {
        char name[32];
        snprintf(name, sizeof name, "questions.%s", j->qext);
        qpath = job_path(js, j, name);
        journal = job_path(js, j, "result.jsonl.journal");
    }
    pthread_mutex_lock(&js->lock);
    if (!ok) {
        j->state = JOB_FAILED;
        rb_strlcpy(j->error, "no such collection (or the owner may no longer read it)",
                   sizeof j->error);
    } else {
        /* counts restart from the journal (a resumed job) */
        j->done = journal ? journal_done(journal) : 0;
        j->answered = j->refused = j->failed = 0;
    }
    pthread_mutex_unlock(&js->lock);
    if (ok && qpath && out) {
        struct rb_answer_batch_options bo = {.questions_path = qpath,
                                             .out_path = out,
                                             .workers = js->workers,
                                             .stop = &j->stop};
        struct rb_answer_batch_ops ops = {run_open_worker, run_ask, run_close_worker, &r};
        struct rb_answer_batch_summary sum;
        struct rb_errmsg err;
        rb_errmsg_clear(&err);
        st = rb_answer_batch_run(&bo, &ops, &sum, &err);
        pthread_mutex_lock(&js->lock);
        j->total = sum.total;
        j->answered = sum.answered;
        j->refused = sum.refused;
        j->failed = sum.failed;
        j->done = sum.answered + sum.refused + sum.failed;
        if (st == RB_OK) {
            j->state = JOB_DONE;
        } else if (st == RB_ERR_CANCELLED && j->stop) {
            j->state = js->stop && !j->deleted ? JOB_QUEUED : JOB_CANCELLED;
        } else {
            j->state = JOB_FAILED;
            rb_strlcpy(j->error, err.text, sizeof j->error);
        }
        pthread_mutex_unlock(&js->lock);
    } else if (ok) {
        pthread_mutex_lock(&js->lock);
        j->state = JOB_FAILED;
        rb_strlcpy(j->error, "out of memory", sizeof j->error);
        pthread_mutex_unlock(&js->lock);
    }
    free(qpath);
    free(out);
    free(journal);
}

static void *runner_main(void *arg)
{
    struct web_jobs *js = arg;
    pthread_mutex_lock(&js->lock);
    for (;;) {
        /* the oldest queued job (the list is newest first) */
        struct job *next = NULL;
        for (struct job *j = js->list; j; j = j->next)
            if (j->state == JOB_QUEUED)
                next = j;
        if (js->stop)
            break;
        if (!next) {
            pthread_cond_wait(&js->cond, &js->lock);
            continue;
        }
        next->state = JOB_RUNNING;
        next->started_us = rb_time_now_us();
        next->stop = 0;
        (void)job_save(js, next);
        pthread_mutex_unlock(&js->lock);
        RB_INFO("web", "batch job %s started (%zu questions)", next->id, next->total);
        run_job(js, next);
        pthread_mutex_lock(&js->lock);
        if (next->state != JOB_QUEUED) /* not interrupted by shutdown */
            next->finished_us = rb_time_now_us();
        if (next->deleted) {
            for (struct job **p = &js->list; *p; p = &(*p)->next) {
                if (*p == next) {
                    *p = next->next;
                    break;
                }
            }
            job_remove_files(js, next);
            job_free(next);
            continue;
        }
        (void)job_save(js, next);
        RB_INFO("web", "batch job %s %s: %zu of %zu questions", next->id,
                state_names[next->state], next->done, next->total);
        if (next->state != JOB_QUEUED) {
            struct job copy = *next;
            pthread_mutex_unlock(&js->lock);
            job_audit(js->web, &copy, copy.owner, copy.client, "job.finish",
                      copy.state == JOB_DONE        ? RB_AUDIT_OUTCOME_OK
                      : copy.state == JOB_CANCELLED ? "cancelled"
                                                    : RB_AUDIT_OUTCOME_FAILED);
            pthread_mutex_lock(&js->lock);
        }
    }
    pthread_mutex_unlock(&js->lock);
    return NULL;
}

/* ============================================================ lifecycle */

enum rb_status rb__web_jobs_start(struct rb_web *web, struct rb_errmsg *err)
{
    struct web_jobs *js = calloc(1, sizeof *js);
    if (!js)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    js->web = web;
    pthread_mutex_init(&js->lock, NULL);
    pthread_cond_init(&js->cond, NULL);
    web->jobs = js;
    int64_t workers = 2;
    enum rb_status st = rb_config_int(web->config, "web", "job_workers", 2, 1, 64, &workers, err);
    if (st != RB_OK)
        return st;
    js->workers = (int)workers;
    js->dir = rb_path_join(web->data_dir, "jobs");
    if (!js->dir)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    if (rb_fs_mkdirs(js->dir, 0700) != RB_OK)
        return rb_errmsg_set(err, RB_ERR_IO, "cannot create %s", js->dir);
    /* Jobs of an earlier run: queued and running ones resume. */
    DIR *d = opendir(js->dir);
    size_t resumed = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!valid_id(e->d_name))
                continue;
            struct job *j = job_load(js, e->d_name);
            if (!j) {
                RB_WARN("web", "%s/%s: not a readable batch job, skipped", js->dir, e->d_name);
                continue;
            }
            if (j->state == JOB_RUNNING)
                j->state = JOB_QUEUED;
            resumed += j->state == JOB_QUEUED;
            /* newest first */
            struct job **p = &js->list;
            while (*p && (*p)->created_us > j->created_us)
                p = &(*p)->next;
            j->next = *p;
            *p = j;
        }
        closedir(d);
    }
    if (resumed)
        RB_INFO("web", "%zu batch job(s) to resume", resumed);
    if (pthread_create(&js->runner, NULL, runner_main, js) != 0)
        return rb_errmsg_set(err, RB_ERR_INTERNAL, "cannot start the batch job runner");
    js->runner_started = true;
    return RB_OK;
}

void rb__web_jobs_stop(struct rb_web *web)
{
    struct web_jobs *js = web->jobs;
    if (!js)
        return;
    pthread_mutex_lock(&js->lock);
    js->stop = true;
    for (struct job *j = js->list; j; j = j->next)
        if (j->state == JOB_RUNNING)
            j->stop = 1; /* the journal keeps what is done; the next start resumes */
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->lock);
    if (js->runner_started)
        pthread_join(js->runner, NULL);
    while (js->list) {
        struct job *n = js->list->next;
        job_free(js->list);
        js->list = n;
    }
    pthread_mutex_destroy(&js->lock);
    pthread_cond_destroy(&js->cond);
    free(js->dir);
    free(js);
    web->jobs = NULL;
}

/* ============================================================= handlers */

/* The job named in the path if the caller may see it (owner or admin). Lock held. */
static struct job *job_visible(struct web_request *req)
{
    const char *id = req->params[0];
    if (!valid_id(id))
        return NULL;
    for (struct job *j = req->web->jobs->list; j; j = j->next) {
        if (strcmp(j->id, id) != 0)
            continue;
        if (j->owner_id == req->caller.user.id || req->caller.user.role == RB_WEB_ROLE_ADMIN)
            return j;
        return NULL;
    }
    return NULL;
}

static enum MHD_Result no_job(struct web_request *req)
{
    return rb__web_error(req, 404, "not_found", "no such job");
}

/* The question file's format from the request's Content-Type. */
static const char *body_format(struct web_request *req)
{
    const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) == 0)
        return "json";
    if (strncasecmp(ct, "text/csv", 8) == 0)
        return "csv";
    if (strncasecmp(ct, "application/x-ndjson", 20) == 0 ||
        strncasecmp(ct, "application/jsonl", 17) == 0 ||
        strncasecmp(ct, "application/x-jsonlines", 23) == 0)
        return "jsonl";
    if (strncasecmp(ct, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 65) ==
        0)
        return "xlsx";
    return NULL;
}

/* POST /api/jobs: the questions as JSON {collection | collections, questions:
 * [string | {id, question}], vertical?, mode?}, or as a CSV / JSONL / XLSX
 * body (Content-Type text/csv, application/x-ndjson, or the XLSX type) with
 * ?collection=a,b&vertical=&mode= in the query string. */
enum MHD_Result rb__web_jobs_submit(struct web_request *req)
{
    struct rb_web *web = req->web;
    struct web_jobs *js = web->jobs;
    const char *fmt = body_format(req);
    if (!fmt)
        return rb__web_error(req, 415, "unsupported_media_type",
                             "send application/json, text/csv, application/x-ndjson or an XLSX "
                             "workbook");
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return rb__web_status(req, RB_ERR_NOMEM, NULL);
    j->owner_id = req->caller.user.id;
    rb_strlcpy(j->owner, req->caller.user.name, sizeof j->owner);
    rb_strlcpy(j->client, req->ip, sizeof j->client);
    j->created_us = rb_time_now_us();
    uint8_t rnd[JOB_ID_HEX / 2];
    if (rb_random_bytes(rnd, sizeof rnd) != RB_OK) {
        job_free(j);
        return rb__web_status(req, RB_ERR_CRYPTO, NULL);
    }
    rb_hex_encode(rnd, sizeof rnd, j->id);
    cJSON *body = NULL;
    const char *vertical = NULL, *mode = NULL, *colparam = NULL;
    const cJSON *cols = NULL, *questions = NULL;
    enum MHD_Result ret;
    if (strcmp(fmt, "json") == 0) {
        body = rb__web_body_json(req, &ret);
        if (!body) {
            job_free(j);
            return ret;
        }
        vertical = rb_json_str(body, "vertical");
        mode = rb_json_str(body, "mode");
        colparam = rb_json_str(body, "collection");
        cols = cJSON_GetObjectItemCaseSensitive(body, "collections");
        questions = cJSON_GetObjectItemCaseSensitive(body, "questions");
        rb_strlcpy(j->qext, "jsonl", sizeof j->qext);
    } else {
        vertical = rb__web_query(req, "vertical");
        mode = rb__web_query(req, "mode");
        colparam = rb__web_query(req, "collection");
        rb_strlcpy(j->qext, fmt, sizeof j->qext);
    }
    const char *bad = NULL;
    if (vertical && (strlen(vertical) > 64 || !*vertical))
        bad = "vertical: 1..64 bytes";
    j->mode = RB_ANSWER_MODE_AUTO;
    if (mode && strcmp(mode, "extractive") == 0)
        j->mode = RB_ANSWER_MODE_EXTRACTIVE;
    else if (mode && strcmp(mode, "generate") == 0)
        j->mode = RB_ANSWER_MODE_GENERATE;
    else if (mode && strcmp(mode, "auto") != 0)
        bad = "mode: auto, extractive or generate";
    if (j->mode == RB_ANSWER_MODE_GENERATE && !web->backend)
        bad = "mode generate: no generation model is configured on this server";
    if (vertical && !bad)
        rb_strlcpy(j->vertical, vertical, sizeof j->vertical);
    /* collections: "a,b" (query or JSON "collection") or a JSON array */
    char *names_copy = colparam ? rb_strdup(colparam) : NULL;
    for (char *p = names_copy, *save = NULL, *tok; !bad && p; p = NULL) {
        for (tok = strtok_r(p, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
            if (j->n_collections >= JOB_MAX_COLLECTIONS)
                bad = "too many collections";
            else
                j->collections[j->n_collections++] = rb_strdup(tok);
        }
    }
    free(names_copy);
    if (cols && !bad) {
        const cJSON *c;
        if (!cJSON_IsArray(cols))
            bad = "collections: an array of names";
        cJSON_ArrayForEach(c, cols)
        {
            if (bad)
                break;
            if (!cJSON_IsString(c) || j->n_collections >= JOB_MAX_COLLECTIONS)
                bad = "collections: at most 32 names";
            else
                j->collections[j->n_collections++] = rb_strdup(c->valuestring);
        }
    }
    if (!bad && j->n_collections == 0)
        bad = "name the collection(s) to ask: collection or collections";
    for (size_t i = 0; !bad && i < j->n_collections; i++)
        if (!j->collections[i])
            bad = "out of memory";
    if (!bad && body && (!cJSON_IsArray(questions) || cJSON_GetArraySize(questions) < 1 ||
                         cJSON_GetArraySize(questions) > JOB_MAX_QUESTIONS))
        bad = "questions: an array of 1..100000 strings or {id, question} objects";
    if (bad) {
        cJSON_Delete(body);
        job_free(j);
        return rb__web_error(req, 400, "invalid", "%s", bad);
    }
    /* Every collection must exist and be readable by the caller; anything
     * else answers like a missing collection. */
    for (size_t i = 0; i < j->n_collections; i++) {
        struct rb_index_collection *c = NULL;
        bool ok = rb_index_collection_get(web->index, j->collections[i], &c) == RB_OK &&
                  rb_web_auth_can(web->auth, j->owner_id, c->id, false);
        rb_index_collection_free(c);
        if (!ok) {
            cJSON_Delete(body);
            job_free(j);
            rb__web_audit(req, "job.collection", NULL, "denied");
            return rb__web_error(req, 404, "not_found", "no such collection");
        }
    }
    /* The question file, as the batch runner reads it. */
    char *dir = rb_asprintf("%s/%s", js->dir, j->id);
    char name[32];
    snprintf(name, sizeof name, "questions.%s", j->qext);
    char *qpath = job_path(js, j, name);
    enum rb_status st = dir && qpath ? rb_fs_mkdirs(dir, 0700) : RB_ERR_NOMEM;
    if (st == RB_OK && body) {
        struct rb_buf b;
        rb_buf_init(&b, 0);
        const cJSON *q;
        size_t row = 0;
        cJSON_ArrayForEach(q, questions)
        {
            row++;
            cJSON *line = cJSON_CreateObject();
            const char *text = cJSON_IsString(q) ? q->valuestring : rb_json_str(q, "question");
            const cJSON *idv = cJSON_IsObject(q) ? cJSON_GetObjectItemCaseSensitive(q, "id") : NULL;
            if (!text || !*text || strlen(text) > 8192) {
                cJSON_Delete(line);
                st = RB_ERR_INVALID;
                break;
            }
            char idbuf[32];
            if (cJSON_IsString(idv))
                cJSON_AddStringToObject(line, "id", idv->valuestring);
            else if (cJSON_IsNumber(idv)) {
                snprintf(idbuf, sizeof idbuf, "%.0f", idv->valuedouble);
                cJSON_AddStringToObject(line, "id", idbuf);
            } else {
                snprintf(idbuf, sizeof idbuf, "%zu", row);
                cJSON_AddStringToObject(line, "id", idbuf);
            }
            cJSON_AddStringToObject(line, "question", text);
            char *t = cJSON_PrintUnformatted(line);
            cJSON_Delete(line);
            if (!t || rb_buf_printf(&b, "%s\n", t) != RB_OK)
                st = RB_ERR_NOMEM;
            free(t);
            if (st != RB_OK)
                break;
        }
        if (st == RB_OK)
            st = rb_fs_write_atomic(qpath, b.data, b.len);
        else if (st == RB_ERR_INVALID)
            bad = "each question: 1..8192 bytes of text";
        rb_buf_free(&b);
    } else if (st == RB_OK) {
        st = req->body.len ? rb_fs_write_atomic(qpath, req->body.data, req->body.len)
                           : RB_ERR_INVALID;
        if (st == RB_ERR_INVALID)
            bad = "the request body (the question file) is empty";
    }
    cJSON_Delete(body);
    /* Validate with the runner's own reader: a question column, rows, limits. */
    struct rb_answer_table t = {0};
    struct rb_errmsg terr;
    rb_errmsg_clear(&terr);
    if (st == RB_OK) {
        st = rb_answer_table_read(qpath, &t, &terr);
        if (st == RB_OK) {
            bool has_q = false;
            for (size_t c = 0; c < t.n_cols; c++)
                has_q |= t.header[c] && strcasecmp(t.header[c], "question") == 0;
            if (!has_q || t.n_rows == 0 || t.n_rows > JOB_MAX_QUESTIONS) {
                st = RB_ERR_INVALID;
                bad = !has_q ? "the question file has no \"question\" column"
                             : "the question file must hold 1..100000 questions";
            }
            j->total = t.n_rows;
        } else {
            bad = terr.text[0] ? terr.text : "the question file cannot be read";
            st = RB_ERR_INVALID;
        }
        rb_answer_table_free(&t);
    }
    if (st == RB_OK)
        st = job_save(js, j);
    if (st != RB_OK) {
        if (dir)
            remove_dir(dir);
        free(dir);
        free(qpath);
        if (st == RB_ERR_INVALID) {
            enum MHD_Result r = rb__web_error(req, 400, "invalid", "%s", bad ? bad : "invalid");
            job_free(j);
            return r;
        }
        job_free(j);
        return rb__web_status(req, st, "cannot store the job");
    }
    free(dir);
    free(qpath);
    job_audit(web, j, req->caller.user.name, req->ip, "job.submit", RB_AUDIT_OUTCOME_OK);
    pthread_mutex_lock(&js->lock);
    j->next = js->list;
    js->list = j;
    cJSON *o = job_json(j, false);
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->lock);
    return rb__web_json(req, 201, o);
}

/* GET /api/jobs: the caller's jobs (an admin's: everyone's), newest first. */
enum MHD_Result rb__web_jobs_list(struct web_request *req)
{
    struct web_jobs *js = req->web->jobs;
    bool admin = req->caller.user.role == RB_WEB_ROLE_ADMIN;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
    pthread_mutex_lock(&js->lock);
    for (struct job *j = js->list; j && arr; j = j->next)
        if (admin || j->owner_id == req->caller.user.id)
            cJSON_AddItemToArray(arr, job_json(j, false));
    pthread_mutex_unlock(&js->lock);
    return rb__web_json(req, 200, o);
}

enum MHD_Result rb__web_job_get(struct web_request *req)
{
    struct web_jobs *js = req->web->jobs;
    pthread_mutex_lock(&js->lock);
    struct job *j = job_visible(req);
    cJSON *o = j ? job_json(j, false) : NULL;
    pthread_mutex_unlock(&js->lock);
    return o ? rb__web_json(req, 200, o) : no_job(req);
}

/* DELETE /api/jobs/{id}: a queued or running job is cancelled (kept, state
 * "cancelled"); a finished, failed or cancelled one is deleted with its files. */
enum MHD_Result rb__web_job_delete(struct web_request *req)
{
    struct rb_web *web = req->web;
    struct web_jobs *js = web->jobs;
    pthread_mutex_lock(&js->lock);
    struct job *j = job_visible(req);
    if (!j) {
        pthread_mutex_unlock(&js->lock);
        return no_job(req);
    }
    const char *what;
    struct job copy = *j;
    if (j->state == JOB_QUEUED) {
        j->state = JOB_CANCELLED;
        j->finished_us = rb_time_now_us();
        (void)job_save(js, j);
        what = "cancelled";
    } else if (j->state == JOB_RUNNING) {
        j->stop = 1; /* the runner records the cancellation */
        what = "cancelling";
    } else {
        for (struct job **p = &js->list; *p; p = &(*p)->next) {
            if (*p == j) {
                *p = j->next;
                break;
            }
        }
        job_remove_files(js, j);
        job_free(j);
        what = "deleted";
    }
    pthread_mutex_unlock(&js->lock);
    job_audit(web, &copy, req->caller.user.name, req->ip,
              strcmp(what, "deleted") == 0 ? "job.delete" : "job.cancel", RB_AUDIT_OUTCOME_OK);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", copy.id);
    cJSON_AddStringToObject(o, "state", what);
    return rb__web_json(req, 200, o);
}

/* GET /api/jobs/{id}/result?format=jsonl|csv|xlsx */
enum MHD_Result rb__web_job_result(struct web_request *req)
{
    struct rb_web *web = req->web;
    struct web_jobs *js = web->jobs;
    const char *format = rb__web_query(req, "format");
    if (!format)
        format = "jsonl";
    const char *ctype = strcmp(format, "jsonl") == 0 ? "application/x-ndjson; charset=utf-8"
                        : strcmp(format, "csv") == 0 ? "text/csv; charset=utf-8"
                        : strcmp(format, "xlsx") == 0
                            ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            : NULL;
    if (!ctype)
        return rb__web_error(req, 400, "invalid", "format: jsonl, csv or xlsx");
    pthread_mutex_lock(&js->lock);
    struct job *j = job_visible(req);
    if (!j) {
        pthread_mutex_unlock(&js->lock);
        return no_job(req);
    }
    struct job copy = *j;
    memset(copy.collections, 0, sizeof copy.collections);
    copy.n_collections = 0;
    for (size_t i = 0; i < j->n_collections; i++)
        copy.collections[copy.n_collections++] = rb_strdup(j->collections[i]);
    pthread_mutex_unlock(&js->lock);
    if (copy.state != JOB_DONE) {
        enum MHD_Result r = rb__web_error(req, 409, "not_ready", "the job is %s",
                                          state_names[copy.state]);
        for (size_t i = 0; i < copy.n_collections; i++)
            free(copy.collections[i]);
        return r;
    }
    char name[32];
    snprintf(name, sizeof name, "result.%s", format);
    char *path = job_path(js, &copy, name);
    enum rb_status st = path ? RB_OK : RB_ERR_NOMEM;
    if (st == RB_OK && !rb_fs_exists(path)) {
        /* converted once from the JSONL result, written atomically */
        char *src = job_path(js, &copy, "result.jsonl");
        struct rb_answer_table t = {0};
        struct rb_errmsg err;
        st = src ? rb_answer_table_read(src, &t, &err) : RB_ERR_NOMEM;
        if (st == RB_OK)
            st = rb_answer_table_write(path, &t, &err);
        if (st != RB_OK)
            RB_ERROR("web", "job %s: cannot convert the result: %s", copy.id, err.text);
        rb_answer_table_free(&t);
        free(src);
    }
    int fd = st == RB_OK ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat sb;
    enum MHD_Result ret;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        ret = rb__web_status(req, st != RB_OK ? st : RB_ERR_IO, "the result is unavailable");
    } else {
        struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
        if (!r) {
            close(fd);
            ret = MHD_NO;
        } else {
            char disp[96];
            snprintf(disp, sizeof disp, "attachment; filename=\"ragbox-job-%s.%s\"", copy.id,
                     format);
            MHD_add_response_header(r, "Content-Type", ctype);
            MHD_add_response_header(r, "Content-Disposition", disp);
            rb__web_headers(req, r, true);
            req->status = 200;
            ret = MHD_queue_response(req->conn, 200, r);
            MHD_destroy_response(r);
            job_audit(web, &copy, req->caller.user.name, req->ip, "job.result.export",
                      RB_AUDIT_OUTCOME_OK);
        }
    }
    free(path);
    for (size_t i = 0; i < copy.n_collections; i++)
        free(copy.collections[i]);
    return ret;
}

#else /* no answer module: no batch jobs */

enum rb_status rb__web_jobs_start(struct rb_web *web, struct rb_errmsg *err)
{
    (void)web, (void)err;
    return RB_OK;
}

void rb__web_jobs_stop(struct rb_web *web)
{
    (void)web;
}

#endif
