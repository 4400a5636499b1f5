/* Batch question jobs: parallel workers, a durable journal for resumption,
 * a progress bar with ETA, and the final table in JSONL/CSV/XLSX. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "answer-impl.h"

#define BATCH_MAX_WORKERS 64

struct job {
    const struct rb_answer_batch_options *o;
    const struct rb_answer_batch_ops *ops;
    struct rb_answer_table *q;
    const char **ids;   /* per row (borrowed from q or from id_store) */
    char **id_store;
    char **result_line; /* per row: the journal JSON of its result, owned; NULL = to do */
    int qcol;
    pthread_mutex_t mu;
    size_t next;        /* next row to consider */
    int journal_fd;
    size_t done, total, asked_now, answered, refused, failed;
    double latency_sum_ms;
    int64_t start_ns;
    int64_t last_draw_ns;
    enum rb_status fatal;
    struct rb_errmsg fatal_msg;
};

static void draw_progress(struct job *j, bool final)
{
    int64_t now = rb_time_mono_ns();
    if (!final && now - j->last_draw_ns < 200000000LL)
        return;
    j->last_draw_ns = now;
    double frac = j->total ? (double)j->done / (double)j->total : 1;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = '\0';
    double elapsed = (double)(now - j->start_ns) / 1e9;
    char eta[32] = "--";
    if (j->asked_now > 0 && j->done < j->total) {
        double per = elapsed / (double)j->asked_now;
        long secs = (long)(per * (double)(j->total - j->done) + 0.5);
        snprintf(eta, sizeof eta, "%ldm%02lds", secs / 60, secs % 60);
    } else if (j->done >= j->total) {
        snprintf(eta, sizeof eta, "0m00s");
    }
    fprintf(stderr, "\r[%s] %zu/%zu %3d%%  ETA %s  refused %zu  failed %zu ", bar, j->done,
            j->total, (int)(frac * 100), eta, j->refused, j->failed);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Compact result JSON for the journal and the output: citations reduced to
 * what a reviewer needs (label, document, page, section, chunk_id, text start). */
static char *result_line(size_t row, const char *id, const char *question,
                         const struct rb_answer_result *r, const char *error)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "row", (double)row);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "question", question);
    if (error) {
        cJSON_AddStringToObject(o, "answer", "");
        cJSON_AddBoolToObject(o, "refused", 0);
        cJSON_AddStringToObject(o, "error", error);
    } else {
        cJSON *full = rb_answer_result_json(r, false);
        cJSON *it;
        cJSON_ArrayForEach(it, full)
        {
            if (strcmp(it->string, "citations") == 0 || strcmp(it->string, "answer") == 0 ||
                strcmp(it->string, "refused") == 0 || strcmp(it->string, "refusal") == 0 ||
                strcmp(it->string, "audit_id") == 0 || strcmp(it->string, "latency_ms") == 0 ||
                strcmp(it->string, "evidence") == 0 || strcmp(it->string, "lang") == 0 ||
                strcmp(it->string, "mode") == 0)
                cJSON_AddItemToObject(o, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_Delete(full);
    }
    char *s = rb_json_print(o);
    cJSON_Delete(o);
    return s;
}

static enum rb_status journal_append(struct job *j, const char *line)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = rb_buf_printf(&b, "%s\n", line);
    if (st != RB_OK)
        return st;
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(j->journal_fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rb_buf_free(&b);
            return RB_ERR_IO;
        }
        off += (size_t)w;
    }
    rb_buf_free(&b);
    return fdatasync(j->journal_fd) == 0 ? RB_OK : RB_ERR_IO;
}

static void *worker_main(void *arg)
{
    struct job *j = arg;
    void *w = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = j->ops->open_worker(j->ops->user, &w, &err);
    if (st != RB_OK) {
        pthread_mutex_lock(&j->mu);
        if (j->fatal == RB_OK) {
            j->fatal = st;
            j->fatal_msg = err;
        }
        pthread_mutex_unlock(&j->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        while (j->next < j->q->n_rows && j->result_line[j->next])
            j->next++;
        bool stop = j->fatal != RB_OK || (j->o->stop && *j->o->stop);
        if (j->next >= j->q->n_rows || stop) {
            pthread_mutex_unlock(&j->mu);
            break;
        }
        size_t row = j->next++;
        pthread_mutex_unlock(&j->mu);

        const char *question = j->q->cell[row * j->q->n_cols + (size_t)j->qcol];
        struct rb_answer_result r = {0};
        rb_errmsg_clear(&err);
        int64_t t0 = rb_time_mono_ns();
        st = question && *question ? j->ops->ask(w, j->ids[row], question, &r, &err)
                                   : rb_errmsg_set(&err, RB_ERR_INVALID, "empty question");
        double ms = (double)(rb_time_mono_ns() - t0) / 1e6;
        if (st == RB_ERR_CANCELLED) {
            rb_answer_result_free(&r);
            break; /* interrupted mid-question: it stays to do */
        }
        char *line = result_line(row, j->ids[row], question ? question : "", &r,
                                 st == RB_OK ? NULL : (err.text[0] ? err.text : rb_status_str(st)));
        rb_answer_result_free(&r);
        pthread_mutex_lock(&j->mu);
        enum rb_status jst = line ? journal_append(j, line) : RB_ERR_NOMEM;
        if (jst != RB_OK) {
            free(line);
            if (j->fatal == RB_OK) {
                j->fatal = jst;
                rb_errmsg_set(&j->fatal_msg, jst, "cannot write the batch journal: %s",
                              rb_status_str(jst));
            }
            pthread_mutex_unlock(&j->mu);
            break;
        }
        j->result_line[row] = line;
        j->done++;
        j->asked_now++;
        j->latency_sum_ms += ms;
        if (st != RB_OK)
            j->failed++;
        else if (r.refused)
            j->refused++;
        else
            j->answered++;
        if (j->o->progress)
            draw_progress(j, false);
        pthread_mutex_unlock(&j->mu);
    }
    j->ops->close_worker(w);
    return NULL;
}

/* Reads an existing journal: header line then result lines; a torn last line
 * (killed mid-write) is ignored. */
static enum rb_status load_journal(struct job *j, const char *path, const char *qhash,
                                   struct rb_errmsg *err)
{
    char *data = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(path, (size_t)1 << 31, &data, &len);
    if (st == RB_ERR_NOT_FOUND)
        return RB_OK;
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "%s: %s", path, rb_status_str(st));
    size_t line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        if (!nl)
            break; /* torn final line */
        size_t e = (size_t)(nl - data);
        cJSON *o = NULL;
        struct rb_errmsg je;
        line_no++;
        if (rb_json_parse(data + i, e - i, 32, &o, &je) != RB_OK) {
            free(data);
            return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: line %zu: %s", path, line_no, je.text);
        }
        if (line_no == 1) {
            const char *h = rb_json_str(o, "questions_sha256");
            if (!h || strcmp(h, qhash) != 0) {
                cJSON_Delete(o);
                free(data);
                return rb_errmsg_set(err, RB_ERR_EXISTS,
                                     "%s belongs to a different question file; use --restart "
                                     "to discard it",
                                     path);
            }
        } else {
            double row = rb_json_num(o, "row", -1);
            const char *id = rb_json_str(o, "id");
            if (row >= 0 && row < (double)j->q->n_rows && id &&
                strcmp(id, j->ids[(size_t)row]) == 0 && !j->result_line[(size_t)row]) {
                j->result_line[(size_t)row] = rb_strndup(data + i, e - i);
                if (!j->result_line[(size_t)row]) {
                    cJSON_Delete(o);
                    free(data);
                    return RB_ERR_NOMEM;
                }
                j->done++;
                if (rb_json_str(o, "error"))
                    j->failed++;
                else if (rb_json_bool(o, "refused", false))
                    j->refused++;
                else
                    j->answered++;
            }
        }
        cJSON_Delete(o);
        i = e + 1;
    }
    free(data);
    return RB_OK;
}

/* The final table from the result lines, in question order. */
static enum rb_status write_output(struct job *j, struct rb_errmsg *err)
{
    static const char *cols[] = {"id",       "question", "answer",   "refused", "refusal",
                                 "sources",  "citations", "audit_id", "latency_ms", "error"};
    const size_t nc = RB_ARRAY_LEN(cols);
    struct rb_answer_table t = {0};
    t.n_cols = nc;
    t.n_rows = j->q->n_rows;
    t.header = rb_calloc_array(nc, sizeof *t.header);
    t.cell = rb_calloc_array(t.n_rows * nc + 1, sizeof *t.cell);
    enum rb_status st = t.header && t.cell ? RB_OK : RB_ERR_NOMEM;
    for (size_t c = 0; c < nc && st == RB_OK; c++)
        if (!(t.header[c] = rb_strdup(cols[c])))
            st = RB_ERR_NOMEM;
    for (size_t r = 0; r < t.n_rows && st == RB_OK; r++) {
        cJSON *o = NULL;
        struct rb_errmsg je;
        const char *line = j->result_line[r];
        if (!line || rb_json_parse(line, strlen(line), 32, &o, &je) != RB_OK) {
            st = RB_ERR_INTERNAL;
            break;
        }
        char **row = &t.cell[r * nc];
        const cJSON *cits = cJSON_GetObjectItemCaseSensitive(o, "citations");
        struct rb_buf src;
        rb_buf_init(&src, 0);
        st = rb_buf_append(&src, "", 0);
        cJSON *slim = cJSON_CreateArray();
        const cJSON *c;
        cJSON_ArrayForEach(c, cits)
        {
            const cJSON *page = cJSON_GetObjectItemCaseSensitive(c, "page");
            if (st == RB_OK)
                st = rb_buf_printf(&src, "%s[%d] %s", src.len ? "; " : "",
                                   (int)rb_json_num(c, "label", 0),
                                   rb_json_str(c, "document") ? rb_json_str(c, "document") : "");
            if (st == RB_OK && cJSON_IsNumber(page))
                st = rb_buf_printf(&src, " p. %d", page->valueint);
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "label", rb_json_num(c, "label", 0));
            cJSON_AddStringToObject(s, "document",
                                    rb_json_str(c, "document") ? rb_json_str(c, "document") : "");
            cJSON_AddItemToObject(s, "page", cJSON_Duplicate(page, 0));
            cJSON_AddNumberToObject(s, "chunk_id", rb_json_num(c, "chunk_id", 0));
            cJSON_AddItemToArray(slim, s);
        }
        row[0] = rb_strdup(rb_json_str(o, "id") ? rb_json_str(o, "id") : "");
        row[1] = rb_strdup(rb_json_str(o, "question") ? rb_json_str(o, "question") : "");
        row[2] = rb_strdup(rb_json_str(o, "answer") ? rb_json_str(o, "answer") : "");
        row[3] = rb_strdup(rb_json_bool(o, "refused", false) ? "true" : "false");
        row[4] = rb_json_str(o, "refusal") ? rb_strdup(rb_json_str(o, "refusal")) : NULL;
        row[5] = st == RB_OK ? rb_buf_steal(&src) : NULL;
        row[6] = rb_json_print(slim);
        row[7] = rb_json_str(o, "audit_id") ? rb_strdup(rb_json_str(o, "audit_id")) : NULL;
        row[8] = rb_asprintf("%.0f", rb_json_num(o, "latency_ms", 0));
        row[9] = rb_json_str(o, "error") ? rb_strdup(rb_json_str(o, "error")) : NULL;
        rb_buf_free(&src);
        cJSON_Delete(slim);
        cJSON_Delete(o);
    }
    if (st == RB_OK)
        st = rb_answer_table_write(j->o->out_path, &t, err);
    else
        rb_errmsg_set(err, st, "cannot assemble the batch output: %s", rb_status_str(st));
    rb_answer_table_free(&t);
    return st;
}

enum rb_status rb_answer_batch_run(const struct rb_answer_batch_options *o,
                                   const struct rb_answer_batch_ops *ops,
                                   struct rb_answer_batch_summary *summary, struct rb_errmsg *err)
{
    memset(summary, 0, sizeof *summary);
    if (!o || !o->questions_path || !o->out_path || !ops || !ops->ask || !ops->open_worker ||
        !ops->close_worker)
        return rb_errmsg_set(err, RB_ERR_INVALID, "batch: missing options");
    if (rb_answer_format_from_path(o->out_path) == RB_ANSWER_FORMAT_UNKNOWN)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s: output must end in .jsonl, .csv or .xlsx", o->out_path);
    struct rb_answer_table q = {0};
    enum rb_status st = rb_answer_table_read(o->questions_path, &q, err);
    if (st != RB_OK)
        return st;
    struct job j = {0};
    j.o = o;
    j.ops = ops;
    j.q = &q;
    j.qcol = -1;
    j.journal_fd = -1;
    j.total = q.n_rows;
    int idcol = -1;
    for (size_t c = 0; c < q.n_cols; c++) {
        if (j.qcol < 0 && (strcasecmp(q.header[c], "question") == 0 ||
                           strcasecmp(q.header[c], "query") == 0 ||
                           strcmp(q.header[c], "问题") == 0))
            j.qcol = (int)c;
        if (idcol < 0 && strcasecmp(q.header[c], "id") == 0)
            idcol = (int)c;
    }
    char *journal = rb_asprintf("%s.journal", o->out_path);
    char qhash[RB_SHA256_HEX_LEN + 1];
    if (j.qcol < 0) {
        st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: no \"question\" column", o->questions_path);
        goto out;
    }
    if (!journal) {
        st = RB_ERR_NOMEM;
        goto out;
    }
    if ((st = rb_sha256_file(o->questions_path, qhash)) != RB_OK) {
        rb_errmsg_set(err, st, "%s: cannot hash", o->questions_path);
        goto out;
    }
    j.ids = rb_calloc_array(q.n_rows + 1, sizeof *j.ids);
    j.id_store = rb_calloc_array(q.n_rows + 1, sizeof *j.id_store);
    j.result_line = rb_calloc_array(q.n_rows + 1, sizeof *j.result_line);
    if (!j.ids || !j.id_store || !j.result_line) {
        st = RB_ERR_NOMEM;
        goto out;
    }
    for (size_t r = 0; r < q.n_rows; r++) {
        const char *id = idcol >= 0 ? q.cell[r * q.n_cols + (size_t)idcol] : NULL;
        if (!id || !*id) {
            j.id_store[r] = rb_asprintf("%zu", r + 1);
            if (!j.id_store[r]) {
                st = RB_ERR_NOMEM;
                goto out;
            }
            id = j.id_store[r];
        }
        j.ids[r] = id;
    }
    if (o->restart)
        unlink(journal);
    if ((st = load_journal(&j, journal, qhash, err)) != RB_OK)
        goto out;
    summary->resumed = j.done;
    bool fresh = !rb_fs_exists(journal);
    j.journal_fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (j.journal_fd < 0) {
        st = rb_errmsg_set(err, RB_ERR_IO, "%s: %s", journal, strerror(errno));
        goto out;
    }
    if (fresh) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "ragbox_batch_journal", 1);
        cJSON_AddStringToObject(h, "questions", rb_path_basename(o->questions_path));
        cJSON_AddStringToObject(h, "questions_sha256", qhash);
        char *line = rb_json_print(h);
        cJSON_Delete(h);
        st = line ? journal_append(&j, line) : RB_ERR_NOMEM;
        free(line);
        if (st != RB_OK) {
            rb_errmsg_set(err, st, "%s: cannot write", journal);
            goto out;
        }
    } else if (j.done > 0) {
        RB_INFO("answer", "resuming %s: %zu of %zu questions already done", o->out_path, j.done,
                j.total);
    }
    pthread_mutex_init(&j.mu, NULL);
    j.start_ns = rb_time_mono_ns();
    int nw = o->workers > 0 ? o->workers : 1;
    if (nw > BATCH_MAX_WORKERS)
        nw = BATCH_MAX_WORKERS;
    if ((size_t)nw > j.total - j.done && j.total > j.done)
        nw = (int)(j.total - j.done);
    pthread_t th[BATCH_MAX_WORKERS];
    int started = 0;
    if (j.done < j.total) {
        for (int i = 0; i < nw; i++) {
            if (pthread_create(&th[i], NULL, worker_main, &j) != 0)
                break;
            started++;
        }
        if (started == 0) {
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "cannot start worker threads");
        }
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    if (o->progress)
        draw_progress(&j, true);
    pthread_mutex_destroy(&j.mu);
    summary->seconds = (double)(rb_time_mono_ns() - j.start_ns) / 1e9;
    if (st == RB_OK && j.fatal != RB_OK) {
        st = j.fatal;
        *err = j.fatal_msg;
    }
    if (st == RB_OK && j.done < j.total)
        st = rb_errmsg_set(err, RB_ERR_CANCELLED,
                           "interrupted with %zu of %zu questions done; run the same command "
                           "again to resume",
                           j.done, j.total);
    if (st == RB_OK && (st = write_output(&j, err)) == RB_OK) {
        close(j.journal_fd);
        j.journal_fd = -1;
        unlink(journal);
    }

out:
    summary->total = j.total;
    summary->answered = j.answered;
    summary->refused = j.refused;
    summary->failed = j.failed;
    summary->asked_now = j.asked_now;
    summary->mean_latency_ms = j.asked_now ? j.latency_sum_ms / (double)j.asked_now : 0;
    if (j.journal_fd >= 0)
        close(j.journal_fd);
    for (size_t r = 0; r < q.n_rows; r++) {
        if (j.id_store)
            free(j.id_store[r]);
        if (j.result_line)
            free(j.result_line[r]);
    }
    free(j.id_store);
    free(j.ids);
    free(j.result_line);
    free(journal);
    rb_answer_table_free(&q);
    return st;
}
