/* Server-Sent Event streams fed by a background producer, and the pool of
 * background workers that produce them.
 *
 * A request that streams (POST /api/ask, /v1/chat/completions with
 * "stream": true) hands its work to a worker thread and answers at once
 * with a 200 whose body is read by MHD through stream_read(). The producer
 * appends events to the stream's buffer under its mutex; the reader copies
 * them out. When the buffer is empty the reader suspends the connection
 * (MHD_suspend_connection, from inside the content reader, as MHD allows)
 * instead of blocking the MHD thread that serves other connections too;
 * the producer resumes it when it appends. So tokens leave as they are
 * generated and no MHD thread ever waits on generation.
 *
 * Lifetime: two references, the producer's and the response's. MHD drops
 * the response's when the connection ends (stream_free); from then on the
 * stream is "gone" and the producer's next event returns false, which the
 * answer pipeline turns into cancelling the generation. The last reference
 * frees the stream.
 *
 * Shutdown (rb__web_streams_shutdown): every stream is cancelled and resumed,
 * so nothing stays suspended when MHD stops, and the pool's workers are
 * joined after their current task. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "web-impl.h"

/* Most bytes a stream buffers for a slow reader before the producer waits. */
#define STREAM_MAX_BUFFERED ((size_t)4 << 20)
/* Seconds a producer waits for a reader that takes nothing. */
#define STREAM_STALL_S 30

struct web_stream {
    struct rb_web *web;
    struct MHD_Connection *conn;
    pthread_mutex_t lock;
    pthread_cond_t drained;   /* signalled when the reader takes bytes */
    struct rb_buf buf;        /* bytes not yet read */
    size_t off;               /* read position in buf */
    int refs;
    bool suspended;           /* the reader suspended the connection */
    bool finished;            /* the producer is done: end of stream after buf */
    bool gone;                /* the connection ended (client left, server stopping) */
    bool cancelled;           /* server stopping */
    struct web_stream *next;  /* in web->streams */
};

static void stream_unref(struct web_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int left = --s->refs;
    pthread_mutex_unlock(&s->lock);
    if (left > 0)
        return;
    struct rb_web *web = s->web;
    pthread_mutex_lock(&web->streams_lock);
    for (struct web_stream **p = &web->streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    web->n_streams--;
    pthread_cond_broadcast(&web->streams_cond);
    pthread_mutex_unlock(&web->streams_lock);
    rb_buf_free(&s->buf);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->drained);
    free(s);
}

/* Resumes the connection when the reader parked it. Lock held. */
static void wake_locked(struct web_stream *s)
{
    if (s->suspended && !s->gone) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct web_stream *s = cls;
    pthread_mutex_lock(&s->lock);
    ssize_t n;
    if (s->cancelled) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (s->off < s->buf.len) {
        size_t avail = s->buf.len - s->off;
        size_t take = avail < max ? avail : max;
        memcpy(out, s->buf.data + s->off, take);
        s->off += take;
        if (s->off == s->buf.len) {
            rb_buf_reset(&s->buf);
            s->off = 0;
        }
        pthread_cond_broadcast(&s->drained);
        n = (ssize_t)take;
    } else if (s->finished) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing yet: park the connection until the producer appends. */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void stream_free(void *cls)
{
    struct web_stream *s = cls;
    pthread_mutex_lock(&s->lock);
    s->gone = true; /* MHD is done with the connection */
    s->suspended = false;
    pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

enum MHD_Result rb__web_stream_start(struct web_request *req, struct web_stream **out)
{
    *out = NULL;
    struct rb_web *web = req->web;
    struct web_stream *s = calloc(1, sizeof *s);
    if (!s)
        return rb__web_status(req, RB_ERR_NOMEM, "out of memory");
    s->web = web;
    s->conn = req->conn;
    s->refs = 2;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->drained, NULL);
    rb_buf_init(&s->buf, STREAM_MAX_BUFFERED + 65536);
    /* An SSE comment first: the client sees the headers at once. */
    if (rb_buf_append_str(&s->buf, ": ragbox\n\n") != RB_OK) {
        rb_buf_free(&s->buf);
        free(s);
        return rb__web_status(req, RB_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&web->streams_lock);
    bool stopping = web->stopping;
    if (!stopping) {
        s->next = web->streams;
        web->streams = s;
        web->n_streams++;
    }
    pthread_mutex_unlock(&web->streams_lock);
    if (stopping) {
        rb_buf_free(&s->buf);
        free(s);
        return rb__web_error(req, 503, "unavailable", "the server is shutting down");
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!r) {
        s->refs = 1; /* only the producer's: the caller never gets it */
        stream_unref(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    rb__web_headers(req, r, true);
    req->status = 200;
    enum MHD_Result ret = MHD_queue_response(req->conn, 200, r);
    MHD_destroy_response(r); /* MHD holds it until the connection is done */
    if (ret != MHD_YES) {
        /* MHD dropped the response (stream_free ran or will with the
         * connection): the producer's reference is still ours to drop. */
        stream_unref(s);
        return ret;
    }
    *out = s;
    return ret;
}

bool rb__web_stream_write(struct web_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->lock);
    /* A slow reader: wait for room rather than buffer without bound, but
     * not forever (a client that stops reading must not hold a worker and
     * the model): after STREAM_STALL_S without progress it counts as gone. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STREAM_STALL_S;
    while (!s->gone && !s->cancelled && s->buf.len - s->off + len > STREAM_MAX_BUFFERED &&
           s->buf.len > s->off) {
        if (pthread_cond_timedwait(&s->drained, &s->lock, &until) != 0) {
            s->cancelled = true;
            break;
        }
    }
    bool ok = !s->gone && !s->cancelled && rb_buf_append(&s->buf, data, len) == RB_OK;
    if (ok)
        wake_locked(s);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

bool rb__web_stream_event(struct web_stream *s, const char *event, cJSON *data)
{
    char *text = data ? cJSON_PrintUnformatted(data) : NULL;
    cJSON_Delete(data);
    if (!text)
        return false;
    char *frame = event ? rb_asprintf("event: %s\ndata: %s\n\n", event, text)
                        : rb_asprintf("data: %s\n\n", text);
    free(text);
    if (!frame)
        return false;
    bool ok = rb__web_stream_write(s, frame, strlen(frame));
    free(frame);
    return ok;
}

bool rb__web_stream_alive(struct web_stream *s)
{
    pthread_mutex_lock(&s->lock);
    bool alive = !s->gone && !s->cancelled;
    pthread_mutex_unlock(&s->lock);
    return alive;
}

void rb__web_stream_finish(struct web_stream *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->finished = true;
    wake_locked(s);
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

/* ================================================================ workers */

struct web_task {
    void (*run)(void *arg);  /* does the work (and finishes its stream) */
    void (*drop)(void *arg); /* the task will not run (server stopping) */
    void *arg;
    struct web_task *next;
};

static void *worker_main(void *p)
{
    struct rb_web *web = p;
    for (;;) {
        pthread_mutex_lock(&web->tasks_lock);
        while (!web->tasks_head && !web->tasks_stop)
            pthread_cond_wait(&web->tasks_cond, &web->tasks_lock);
        struct web_task *t = web->tasks_head;
        if (t) {
            web->tasks_head = t->next;
            if (!web->tasks_head)
                web->tasks_tail = NULL;
            web->tasks_queued--;
            web->tasks_running++;
        }
        pthread_mutex_unlock(&web->tasks_lock);
        if (!t)
            return NULL; /* stopping, queue empty */
        t->run(t->arg);
        free(t);
        pthread_mutex_lock(&web->tasks_lock);
        web->tasks_running--;
        pthread_mutex_unlock(&web->tasks_lock);
    }
}

enum rb_status rb__web_workers_start(struct rb_web *web, int n, struct rb_errmsg *err)
{
    web->workers = calloc((size_t)n, sizeof *web->workers);
    if (!web->workers)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&web->workers[i], NULL, worker_main, web) != 0)
            return rb_errmsg_set(err, RB_ERR_INTERNAL, "cannot start the answer workers");
        web->n_workers++;
    }
    return RB_OK;
}

enum rb_status rb__web_workers_submit(struct rb_web *web, void (*run)(void *),
                                      void (*drop)(void *), void *arg)
{
    struct web_task *t = calloc(1, sizeof *t);
    if (!t)
        return RB_ERR_NOMEM;
    *t = (struct web_task){run, drop, arg, NULL};
    pthread_mutex_lock(&web->tasks_lock);
    if (web->tasks_stop || web->n_workers == 0) {
        pthread_mutex_unlock(&web->tasks_lock);
        free(t);
        return RB_ERR_BUSY;
    }
    if (web->tasks_tail)
        web->tasks_tail->next = t;
    else
        web->tasks_head = t;
    web->tasks_tail = t;
    web->tasks_queued++;
    pthread_cond_signal(&web->tasks_cond);
    pthread_mutex_unlock(&web->tasks_lock);
    return RB_OK;
}

void rb__web_workers_depth(struct rb_web *web, size_t *queued, size_t *running)
{
    pthread_mutex_lock(&web->tasks_lock);
    *queued = web->tasks_queued;
    *running = web->tasks_running;
    pthread_mutex_unlock(&web->tasks_lock);
}

void rb__web_streams_shutdown(struct rb_web *web)
{
    /* 1. No new streams; cancel the live ones so producers stop at their next
     *    token and readers end, and resume every parked connection. */
    pthread_mutex_lock(&web->streams_lock);
    web->stopping = true;
    for (struct web_stream *s = web->streams; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->cancelled = true;
        wake_locked(s);
        pthread_cond_broadcast(&s->drained);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&web->streams_lock);
    /* 2. Tasks still queued will not run: their owners end them. */
    pthread_mutex_lock(&web->tasks_lock);
    web->tasks_stop = true;
    struct web_task *t = web->tasks_head;
    web->tasks_head = web->tasks_tail = NULL;
    web->tasks_queued = 0;
    pthread_cond_broadcast(&web->tasks_cond);
    pthread_mutex_unlock(&web->tasks_lock);
    while (t) {
        struct web_task *next = t->next;
        t->drop(t->arg);
        free(t);
        t = next;
    }
    /* 3. Workers finish their current task (cancelled, so promptly). */
    for (int i = 0; i < web->n_workers; i++)
        pthread_join(web->workers[i], NULL);
    web->n_workers = 0;
    free(web->workers);
    web->workers = NULL;
    /* 4. MHD must not stop with a suspended connection: wait (bounded) until
     *    MHD has let go of every stream; each was resumed above and its
     *    reader now ends it. */
    int64_t deadline = rb_time_mono_ns() + 3000000000LL;
    pthread_mutex_lock(&web->streams_lock);
    while (web->n_streams > 0 && rb_time_mono_ns() < deadline) {
        pthread_mutex_unlock(&web->streams_lock);
        usleep(10000);
        pthread_mutex_lock(&web->streams_lock);
        for (struct web_stream *s = web->streams; s; s = s->next) {
            pthread_mutex_lock(&s->lock);
            wake_locked(s);
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&web->streams_lock);
}
