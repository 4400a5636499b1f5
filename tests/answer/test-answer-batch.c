/* Batch jobs: real questions (tatqa dev set) answered extractively from their
 * real documents by parallel workers; interrupted, resumed without redoing
 * finished questions (also after a torn journal line, as after kill -9), and
 * the outputs in JSONL, CSV and XLSX match an uninterrupted run. */
#include <fcntl.h>
#include <pthread.h>

#include "check.h"

#include "ragbox/answer.h"

#define N_Q 24

struct ctx {
    volatile int stop;
    int stop_after; /* set stop once this many asks happened (0 = never) */
    int asked;
    pthread_mutex_t mu;
    char *docs[N_Q]; /* document text per question id "tatqa-..." */
    char *doc_names[N_Q];
    char *ids[N_Q];
};

static struct ctx C;

static enum rb_status open_worker(void *user, void **w, struct rb_errmsg *err)
{
    (void)err;
    *w = user;
    return RB_OK;
}

static void close_worker(void *w)
{
    (void)w;
}

/* Answers from the question's own document plus two others (as retrieval would). */
static enum rb_status ask(void *w, const char *id, const char *question,
                          struct rb_answer_result *out, struct rb_errmsg *err)
{
    struct ctx *c = w;
    int k = -1;
    for (int i = 0; i < N_Q; i++)
        if (strcmp(c->ids[i], id) == 0)
            k = i;
    if (k < 0)
        return rb_errmsg_set(err, RB_ERR_NOT_FOUND, "unknown id %s", id);
    struct rb_answer_passage p[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        int d = (k + i * 7) % N_Q;
        p[i].chunk_id = d + 1;
        p[i].document = c->doc_names[d];
        p[i].text = c->docs[d];
    }
    struct rb_answer_extract ex;
    enum rb_status st = rb_answer_extract(question, p, 3, NULL, &ex);
    if (st != RB_OK)
        return st;
    out->lang = rb_answer_detect_lang(question, strlen(question));
    out->mode_used = "extractive";
    out->evidence = ex.best_coverage;
    if (ex.n == 0 || ex.best_coverage < 0.3) {
        out->refused = true;
        out->refusal = RB_ANSWER_REFUSE_NO_EVIDENCE;
        out->answer = rb_strdup(rb_answer_refusal_text(out->refusal, out->lang));
    } else {
        st = rb_answer_compose_extractive(&ex, p, NULL, out);
    }
    rb_answer_extract_free(&ex);
    snprintf(out->audit_id, sizeof out->audit_id, "test-%s", id);
    pthread_mutex_lock(&c->mu);
    c->asked++;
    if (c->stop_after && c->asked >= c->stop_after)
        c->stop = 1;
    pthread_mutex_unlock(&c->mu);
    return st;
}

static const struct rb_answer_batch_ops OPS = {open_worker, ask, close_worker, &C};

static char *slurp(const char *path)
{
    char *d = NULL;
    size_t n = 0;
    return rb_fs_read_file(path, 1 << 24, &d, &n) == RB_OK ? d : NULL;
}

int main(void)
{
    const char *dir = check_tmpdir("batch");
    pthread_mutex_init(&C.mu, NULL);
    /* questions: the first N_Q tatqa questions with their documents */
    char *all = slurp(check_shared("eval/tatqa/questions.jsonl"));
    if (!all)
        CHECK_SKIP("tatqa set missing");
    struct rb_buf qs;
    rb_buf_init(&qs, 0);
    char *line = all;
    int n = 0;
    while (n < N_Q && line && *line) {
        char *nl = strchr(line, '\n');
        cJSON *o = NULL;
        struct rb_errmsg e;
        REQUIRE(rb_json_parse(line, nl ? (size_t)(nl - line) : strlen(line), 16, &o, &e) == RB_OK);
        const char *doc = rb_json_str(o, "doc");
        char rel[512];
        snprintf(rel, sizeof rel, "eval/tatqa/docs/%s", doc);
        C.docs[n] = slurp(check_shared(rel));
        REQUIRE(C.docs[n] != NULL);
        C.doc_names[n] = rb_strdup(doc);
        C.ids[n] = rb_asprintf("q%d", n);
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "id", C.ids[n]);
        cJSON_AddStringToObject(q, "question", rb_json_str(o, "question"));
        char *s = rb_json_print(q);
        REQUIRE(rb_buf_printf(&qs, "%s\n", s) == RB_OK);
        free(s);
        cJSON_Delete(q);
        cJSON_Delete(o);
        n++;
        line = nl ? nl + 1 : NULL;
    }
    free(all);
    REQUIRE(n == N_Q);
    char qpath[4200], ref[4200], out[4200], journal[4300];
    snprintf(qpath, sizeof qpath, "%s/questions.jsonl", dir);
    REQUIRE(rb_fs_write_atomic(qpath, qs.data, qs.len) == RB_OK);
    rb_buf_free(&qs);

    /* 1. an uninterrupted reference run (4 workers) */
    snprintf(ref, sizeof ref, "%s/ref.jsonl", dir);
    struct rb_answer_batch_options o = {.questions_path = qpath, .out_path = ref, .workers = 4,
                                        .stop = &C.stop};
    struct rb_answer_batch_summary sum;
    struct rb_errmsg err;
    enum rb_status st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK_EQ_INT(sum.total, N_Q);
    CHECK_EQ_INT(sum.asked_now, N_Q);
    CHECK_EQ_INT(sum.answered + sum.refused, N_Q);
    CHECK(sum.answered >= N_Q / 2);
    snprintf(journal, sizeof journal, "%s.journal", ref);
    CHECK(!rb_fs_exists(journal));
    char *ref_text = slurp(ref);
    REQUIRE(ref_text != NULL);
    CHECK(strstr(ref_text, "\"citations\":[{") != NULL);

    /* 2. interrupted after 7 questions, then resumed */
    snprintf(out, sizeof out, "%s/run.jsonl", dir);
    snprintf(journal, sizeof journal, "%s.journal", out);
    C.asked = 0;
    C.stop = 0;
    C.stop_after = 7;
    o.out_path = out;
    o.workers = 1;
    st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_EQ_INT(st, RB_ERR_CANCELLED);
    CHECK(strstr(err.text, "resume") != NULL);
    CHECK_EQ_INT(sum.asked_now, 7);
    CHECK(rb_fs_exists(journal));
    CHECK(!rb_fs_exists(out));

    /* a torn last line, as when the process is killed mid-write */
    int fd = open(journal, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "{\"row\":20,\"id\":\"q2", 18) == 18);
    close(fd);

    C.stop_after = 0;
    C.stop = 0;
    C.asked = 0;
    o.workers = 3;
    st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    CHECK_EQ_INT(sum.resumed, 7);
    CHECK_EQ_INT(sum.asked_now, N_Q - 7);
    CHECK_EQ_INT(C.asked, N_Q - 7);
    char *run_text = slurp(out);
    REQUIRE(run_text != NULL);
    /* same answers and citations as the uninterrupted run (latency differs) */
    struct rb_answer_table a, b;
    REQUIRE(rb_answer_table_read(ref, &a, &err) == RB_OK);
    REQUIRE(rb_answer_table_read(out, &b, &err) == RB_OK);
    CHECK_EQ_INT(a.n_rows, b.n_rows);
    for (size_t r = 0; r < a.n_rows && r < b.n_rows; r++) {
        CHECK_STR(rb_answer_table_get(&a, r, "id"), rb_answer_table_get(&b, r, "id"));
        CHECK_STR(rb_answer_table_get(&a, r, "answer"), rb_answer_table_get(&b, r, "answer"));
        CHECK_STR(rb_answer_table_get(&a, r, "citations"),
                  rb_answer_table_get(&b, r, "citations"));
    }
    rb_answer_table_free(&a);
    rb_answer_table_free(&b);

    /* 3. a journal from another question file is refused */
    C.stop_after = 2;
    C.stop = 0;
    C.asked = 0;
    snprintf(out, sizeof out, "%s/other.csv", dir);
    o.out_path = out;
    st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_EQ_INT(st, RB_ERR_CANCELLED);
    REQUIRE(rb_fs_write_atomic(qpath, "{\"question\":\"changed\"}\n", 23) == RB_OK);
    st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_EQ_INT(st, RB_ERR_EXISTS);
    CHECK(strstr(err.text, "--restart") != NULL);
    o.restart = true;
    C.stop_after = 0;
    C.stop = 0;
    st = rb_answer_batch_run(&o, &OPS, &sum, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text); /* "changed" has id 1: unknown -> error row */
    CHECK_EQ_INT(sum.failed, 1);

    /* 4. CSV and XLSX outputs of the same job */
    for (int f = 0; f < 2; f++) {
        snprintf(out, sizeof out, "%s/ref2.%s", dir, f ? "xlsx" : "csv");
        const char *csvtext = "id,question\nq3,What is the total?\n";
        REQUIRE(rb_fs_write_atomic(qpath, csvtext, strlen(csvtext)) == RB_OK);
        char csvq[4200];
        snprintf(csvq, sizeof csvq, "%s/q.csv", dir);
        REQUIRE(rename(qpath, csvq) == 0);
        struct rb_answer_batch_options o2 = {.questions_path = csvq, .out_path = out,
                                             .workers = 2};
        st = rb_answer_batch_run(&o2, &OPS, &sum, &err);
        CHECK_MSG(st == RB_OK, "%s", err.text);
        REQUIRE(rb_answer_table_read(out, &a, &err) == RB_OK);
        CHECK_EQ_INT(a.n_rows, 1);
        CHECK_STR(rb_answer_table_get(&a, 0, "id"), "q3");
        CHECK(rb_answer_table_get(&a, 0, "answer") != NULL);
        rb_answer_table_free(&a);
    }
    free(ref_text);
    free(run_text);
    for (int i = 0; i < N_Q; i++) {
        free(C.docs[i]);
        free(C.doc_names[i]);
        free(C.ids[i]);
    }
    return check_finish();
}
