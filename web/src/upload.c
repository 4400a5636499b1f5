/* Document uploads: multipart/form-data streamed to DIR/uploads/<collection id>/
 * (size-limited, never held in memory), recorded in the index as a pending
 * document, then parsed (ingest's sandboxed parsers), chunked and indexed by
 * one worker thread. Pending uploads left by a restart are picked up again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web-impl.h"
#ifdef RB_WEB_HAVE_INGEST
#include "ragbox/ingest.h"
#endif

#if defined(RB_WEB_HAVE_INGEST) && defined(RB_WEB_HAVE_INDEX)

#define QUEUE_MAX 4096

struct web_upload {
    struct MHD_PostProcessor *pp;
    int64_t collection_id;
    int fd;
    char *path;        /* final file, owned */
    char *filename;    /* sanitised original name, owned */
    size_t bytes;
    int files;         /* file parts seen */
    bool committed;    /* handed to the index: keep the file */
    bool failed;       /* write error */
    struct rb_sha256 sha;
    bool sha_open;
};

struct web_ingest {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int64_t queue[QUEUE_MAX]; /* document ids, ring */
    size_t head, count;
    bool stop, started;
    int64_t running, done, failed;
    struct rb_ingest_limits limits;
    struct rb_ingest_chunk_options chunk_opts;
};

/* A safe file name: the basename, with anything but [A-Za-z0-9._-] and
 * non-ASCII UTF-8 replaced by '_', at most 120 bytes, never hidden. */
static char *safe_name(const char *name)
{
    const char *base = name ? rb_path_basename(name) : "upload";
    const char *bs = strrchr(base, '\\'); /* Windows browsers */
    if (bs)
        base = bs + 1;
    size_t len = rb_utf8_truncate(base, strlen(base), 120);
    char *out = rb_strndup(base, len);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_' || c >= 0x80;
        if (!ok)
            *p = '_';
    }
    if (out[0] == '.' || out[0] == '\0') {
        char *x = rb_asprintf("_%s", out);
        free(out);
        out = x;
    }
    if (out && !rb_utf8_valid(out, strlen(out))) {
        free(out);
        out = rb_strdup("upload");
    }
    return out;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    struct web_request *req = cls;
    struct web_upload *u = req->upload;
    if (!key || strcmp(key, "file") != 0 || !filename)
        return MHD_YES; /* other fields are ignored */
    if (u->fd < 0) {
        if (u->files++ > 0)
            return MHD_YES; /* one file per request */
        u->filename = safe_name(filename);
        uint8_t rnd[8];
        char hex[17];
        char *dir = rb_asprintf("%s/uploads/%lld", req->web->data_dir, (long long)u->collection_id);
        if (!u->filename || !dir || rb_random_bytes(rnd, sizeof rnd) != RB_OK ||
            rb_fs_mkdirs(dir, 0700) != RB_OK) {
            free(dir);
            u->failed = true;
            return MHD_NO;
        }
        rb_hex_encode(rnd, sizeof rnd, hex);
        u->path = rb_asprintf("%s/%s-%s", dir, hex, u->filename);
        free(dir);
        u->fd = u->path ? open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
        if (u->fd < 0 || rb_sha256_init(&u->sha) != RB_OK) {
            u->failed = true;
            return MHD_NO;
        }
        u->sha_open = true;
    }
    if (size == 0)
        return MHD_YES;
    if (u->bytes + size > req->web->max_upload) {
        req->body_too_large = true;
        return MHD_NO;
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(u->fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            u->failed = true;
            return MHD_NO;
        }
        done += (size_t)n;
    }
    if (rb_sha256_update(&u->sha, data, size) != RB_OK) {
        u->failed = true;
        return MHD_NO;
    }
    u->bytes += size;
    return MHD_YES;
}

enum MHD_Result rb__web_upload_begin(struct web_request *req)
{
    struct rb_web *web = req->web;
    const char *ct = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Type");
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return rb__web_error(req, 415, "unsupported_media_type",
                             "upload as multipart/form-data with a 'file' part");
    /* The collection: readable, else "no such collection"; writable, else 403. */
    struct rb_index_collection *c = NULL;
    if (rb_index_collection_get(web->index, req->params[0], &c) != RB_OK ||
        !rb_web_auth_can(web->auth, req->caller.user.id, c->id, false)) {
        rb_index_collection_free(c);
        if (c)
            rb__web_audit(req, "document.upload", NULL, "denied");
        return rb__web_error(req, 404, "not_found", "no such collection");
    }
    int64_t cid = c->id;
    rb_index_collection_free(c);
    if (!rb_web_auth_can(web->auth, req->caller.user.id, cid, true)) {
        rb__web_audit(req, "document.upload", req->params[0], "denied");
        return rb__web_error(req, 403, "forbidden", "you may not change this collection");
    }
    struct web_upload *u = calloc(1, sizeof *u);
    if (!u)
        return MHD_NO;
    u->fd = -1;
    u->collection_id = cid;
    req->upload = u;
    u->pp = MHD_create_post_processor(req->conn, 64 * 1024, post_iter, req);
    if (!u->pp)
        return rb__web_error(req, 400, "invalid", "malformed multipart/form-data header");
    return MHD_YES;
}

void rb__web_upload_data(struct web_request *req, const char *data, size_t size)
{
    struct web_upload *u = req->upload;
    if (!u || !u->pp || req->body_too_large || u->failed)
        return; /* keep draining; the reply is given at the end */
    if (MHD_post_process(u->pp, data, size) != MHD_YES && !req->body_too_large)
        u->failed = true;
}

void rb__web_upload_cleanup(struct web_request *req)
{
    struct web_upload *u = req->upload;
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    if (u->fd >= 0)
        close(u->fd);
    if (u->sha_open)
        rb_sha256_abort(&u->sha);
    if (u->path && !u->committed)
        unlink(u->path);
    free(u->path);
    free(u->filename);
    free(u);
    req->upload = NULL;
}

/* The final call of POST /api/collections/{name}/documents. */
enum MHD_Result rb__web_upload_finish(struct web_request *req);
enum MHD_Result rb__web_upload_finish(struct web_request *req)
{
    struct web_upload *u = req->upload;
    struct rb_web *web = req->web;
    if (!u)
        return rb__web_error(req, 400, "invalid", "no upload");
    if (u->pp) {
        MHD_destroy_post_processor(u->pp);
        u->pp = NULL;
    }
    if (u->failed || u->fd < 0)
        return rb__web_error(req, 400, "invalid",
                             u->fd < 0 ? "no 'file' part in the upload" : "the upload failed");
    if (u->bytes == 0)
        return rb__web_error(req, 400, "invalid", "the file is empty");
    uint8_t digest[RB_SHA256_LEN];
    char sha[RB_SHA256_HEX_LEN + 1];
    u->sha_open = false;
    if (fsync(u->fd) != 0 || rb_sha256_final(&u->sha, digest) != RB_OK)
        return rb__web_status(req, RB_ERR_IO, "the upload could not be stored");
    close(u->fd);
    u->fd = -1;
    rb_hex_encode(digest, sizeof digest, sha);
    struct rb_index_document d = {.collection_id = u->collection_id,
                                  .source = u->path,
                                  .sha256 = sha,
                                  .title = u->filename,
                                  .size = (int64_t)u->bytes,
                                  .mtime_us = rb_time_now_us(),
                                  .state = RB_INDEX_DOC_PENDING};
    int64_t doc_id = 0;
    enum rb_status st = rb_index_document_put(web->index, &d, NULL, 0, &doc_id, NULL);
    if (st != RB_OK)
        return rb__web_status(req, st, rb_index_errmsg(web->index));
    u->committed = true;
    if (rb__web_ingest_enqueue(web, doc_id) != RB_OK)
        RB_WARN("web", "ingest queue full: document %lld stays pending until restart",
                (long long)doc_id);
    char target[96];
    snprintf(target, sizeof target, "document:%lld bytes:%zu", (long long)doc_id, u->bytes);
    rb__web_audit(req, "document.upload", target, "ok");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)doc_id);
    cJSON_AddStringToObject(o, "title", u->filename);
    cJSON_AddStringToObject(o, "sha256", sha);
    cJSON_AddNumberToObject(o, "size", (double)u->bytes);
    cJSON_AddStringToObject(o, "state", "pending");
    return rb__web_json(req, 202, o);
}

/* ============================================================ the worker */

enum rb_status rb__web_ingest_enqueue(struct rb_web *web, int64_t document_id)
{
    struct web_ingest *g = web->ingest;
    if (!g)
        return RB_ERR_UNSUPPORTED;
    pthread_mutex_lock(&g->lock);
    enum rb_status st = RB_ERR_LIMIT;
    if (g->count < QUEUE_MAX) {
        g->queue[(g->head + g->count) % QUEUE_MAX] = document_id;
        g->count++;
        st = RB_OK;
        pthread_cond_signal(&g->wake);
    }
    pthread_mutex_unlock(&g->lock);
    return st;
}

void rb__web_ingest_counts(struct rb_web *web, struct web_ingest_counts *out)
{
    memset(out, 0, sizeof *out);
    struct web_ingest *g = web->ingest;
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    out->queued = (int64_t)g->count;
    out->running = g->running;
    out->done = g->done;
    out->failed = g->failed;
    pthread_mutex_unlock(&g->lock);
}

/* Parses, chunks and indexes one pending document. */
static void ingest_one(struct rb_web *web, int64_t doc_id)
{
    struct web_ingest *g = web->ingest;
    struct rb_index_document *d = NULL;
    if (rb_index_document_get(web->index, doc_id, &d) != RB_OK)
        return; /* deleted meanwhile */
    struct rb_errmsg err;
    rb_errmsg_clear(&err);
    struct rb_ingest_doc *doc = NULL;
    struct rb_ingest_chunks chunks = {0};
    enum rb_status st = rb_ingest_parse_file(d->source, &g->limits, &doc, &err);
    if (st == RB_OK)
        st = rb_ingest_chunk(doc, &g->chunk_opts, &chunks, &err);
    /* the collection's policy may require redaction before storing */
    char *title = NULL, *meta = NULL;
    if (st == RB_OK && ((doc->title && !(title = rb_strdup(doc->title))) ||
                        (doc->metadata_json && !(meta = rb_strdup(doc->metadata_json)))))
        st = rb_errmsg_set(&err, RB_ERR_NOMEM, "out of memory");
    if (st == RB_OK)
        st = rb_ingest_apply_collection_policy(web->index, d->collection_id, &chunks,
                                               &g->chunk_opts, &title, &meta, NULL, NULL, &err);
    struct rb_index_chunk *ic = NULL;
    if (st == RB_OK && chunks.n == 0)
        st = rb_errmsg_set(&err, RB_ERR_PARSE, "no text found in the document");
    if (st == RB_OK && !(ic = rb_calloc_array(chunks.n, sizeof *ic)))
        st = rb_errmsg_set(&err, RB_ERR_NOMEM, "out of memory");
    if (st == RB_OK) {
        for (size_t i = 0; i < chunks.n; i++) {
            const struct rb_ingest_chunk *c = &chunks.items[i];
            ic[i] = (struct rb_index_chunk){.ordinal = (int32_t)i,
                                            .text = c->text,
                                            .page_start = c->page_start,
                                            .page_end = c->page_end,
                                            .section = c->section,
                                            .byte_start = (int64_t)c->byte_start,
                                            .byte_end = (int64_t)c->byte_end,
                                            .char_start = (int64_t)c->char_start,
                                            .char_end = (int64_t)c->char_end,
                                            .token_count = c->token_count};
        }
        struct rb_index_document nd = *d;
        nd.mime = rb_ingest_format_mime(doc->format);
        nd.language = doc->language;
        nd.metadata_json = meta;
        nd.state = RB_INDEX_DOC_INDEXED;
        nd.error = NULL;
        if (title && *title)
            nd.title = title;
        st = rb_index_document_put(web->index, &nd, ic, chunks.n, NULL, NULL);
        if (st != RB_OK)
            rb_errmsg_set(&err, st, "%s", rb_index_errmsg(web->index));
    }
    if (st != RB_OK) {
        /* The reason is shown to those who may read the collection. */
        if (rb_index_document_set_state(web->index, doc_id, RB_INDEX_DOC_FAILED,
                                        err.text[0] ? err.text : rb_status_str(st)) != RB_OK)
            RB_WARN("web", "document %lld: %s", (long long)doc_id, rb_index_errmsg(web->index));
        RB_WARN("web", "ingest of document %lld failed: %s", (long long)doc_id, err.text);
    }
    pthread_mutex_lock(&g->lock);
    if (st == RB_OK)
        g->done++;
    else
        g->failed++;
    pthread_mutex_unlock(&g->lock);
    free(ic);
    free(title);
    free(meta);
    rb_ingest_chunks_free(&chunks);
    rb_ingest_doc_free(doc);
    rb_index_document_free(d);
}

static void *worker_main(void *arg)
{
    struct rb_web *web = arg;
    struct web_ingest *g = web->ingest;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        if (g->count == 0) {
            pthread_cond_wait(&g->wake, &g->lock);
            continue;
        }
        int64_t id = g->queue[g->head];
        g->head = (g->head + 1) % QUEUE_MAX;
        g->count--;
        g->running = 1;
        pthread_mutex_unlock(&g->lock);
        ingest_one(web, id);
        pthread_mutex_lock(&g->lock);
        g->running = 0;
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

enum rb_status rb__web_ingest_start(struct rb_web *web, struct rb_errmsg *err)
{
    struct web_ingest *g = calloc(1, sizeof *g);
    if (!g)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    web->ingest = g;
    enum rb_status st = rb_ingest_limits_from_config(web->config, &g->limits, err);
    if (st == RB_OK)
        st = rb_ingest_chunk_options_from_config(web->config, NULL, &g->chunk_opts, err);
    if (st != RB_OK)
        return st;
    /* Uploads still pending from before a restart. */
    struct rb_index_collection *cols = NULL;
    size_t nc = 0;
    char *prefix = rb_asprintf("%s/uploads/", web->data_dir);
    if (prefix && rb_index_collection_list(web->index, &cols, &nc) == RB_OK) {
        for (size_t i = 0; i < nc; i++) {
            struct rb_index_document **docs = NULL;
            size_t nd = 0;
            if (rb_index_document_list(web->index, cols[i].id, 0, 0, &docs, &nd) != RB_OK)
                continue;
            for (size_t k = 0; k < nd; k++)
                if (docs[k]->state == RB_INDEX_DOC_PENDING && docs[k]->source &&
                    strncmp(docs[k]->source, prefix, strlen(prefix)) == 0)
                    (void)rb__web_ingest_enqueue(web, docs[k]->id);
            rb_index_document_list_free(docs, nd);
        }
        rb_index_collection_list_free(cols, nc);
    }
    free(prefix);
    if (pthread_create(&g->thread, NULL, worker_main, web) != 0)
        return rb_errmsg_set(err, RB_ERR_INTERNAL, "cannot start the ingest worker");
    g->started = true;
    return RB_OK;
}

void rb__web_ingest_stop(struct rb_web *web)
{
    struct web_ingest *g = web->ingest;
    if (!g)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->wake);
    free(g);
    web->ingest = NULL;
}

#else /* without ingest: no upload route is registered */

enum MHD_Result rb__web_upload_begin(struct web_request *req)
{
    return rb__web_error(req, 501, "unsupported", "uploads are not part of this build");
}
void rb__web_upload_data(struct web_request *req, const char *data, size_t size)
{
    (void)req, (void)data, (void)size;
}
void rb__web_upload_cleanup(struct web_request *req)
{
    (void)req;
}
enum rb_status rb__web_ingest_start(struct rb_web *web, struct rb_errmsg *err)
{
    (void)web, (void)err;
    return RB_OK;
}
void rb__web_ingest_stop(struct rb_web *web)
{
    (void)web;
}
enum rb_status rb__web_ingest_enqueue(struct rb_web *web, int64_t document_id)
{
    (void)web, (void)document_id;
    return RB_ERR_UNSUPPORTED;
}
void rb__web_ingest_counts(struct rb_web *web, struct web_ingest_counts *out)
{
    (void)web;
    memset(out, 0, sizeof *out);
}
#endif
