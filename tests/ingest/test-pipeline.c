/* The pipeline on real files: add, modify (atomic replace), rename (no
 * re-embedding: chunk ids kept), delete, attachments, failures with retry
 * and quarantine; then the same add/modify/rename/delete on a folder watched
 * by the real `ragbox ingestd`. */
#include "pipeline-util.h"

static void drain(struct rb_ingest *ing, int *counts, const char *want_action, const char *want_path)
{
    bool seen = want_action == NULL;
    for (int guard = 0; guard < 200; guard++) {
        struct rb_ingest_job_result r;
        int64_t next = 0;
        enum rb_status st = rb_ingest_run_one(ing, &r, &next);
        if (st == RB_ERR_NOT_FOUND) {
            rb_ingest_job_result_clear(&r);
            break;
        }
        CHECK_MSG(st == RB_OK, "%s", rb_ingest_errmsg(ing));
        if (counts)
            (*counts)++;
        if (want_action && r.action && !strcmp(r.action, want_action) &&
            (!want_path || (r.path && strstr(r.path, want_path))))
            seen = true;
        rb_ingest_job_result_clear(&r);
    }
    CHECK_MSG(seen, "no '%s' job for %s", want_action, want_path ? want_path : "-");
}

static void test_library(void)
{
    const char *root = check_tmpdir("pipeline");
    char *data = rb_path_join(root, "data"), *dir = rb_path_join(root, "docs");
    REQUIRE(rb_fs_mkdirs(dir, 0755) == RB_OK);
    struct rb_index_options io = {.data_dir = data};
    struct rb_index *idx = NULL;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_index_open(&io, &idx, &e) == RB_OK);
    struct rb_ingest_options o = {.index = idx, .max_attempts = 2, .retry_base_ms = 50};
    struct rb_ingest *ing = NULL;
    REQUIRE(rb_ingest_open(&o, &ing, &e) == RB_OK);

    copy_shared("docs/txt-zh/news-01028-gb18030.txt", dir, "news.txt");
    copy_shared("docs/docx/fake_table.docx", dir, "table.docx");
    copy_shared("docs/eml/fake-email-image-embedded.eml", dir, "mail.eml");
    write_text(dir, "notes.md", "# Notes\n\nThe quarterly liquidity ratio is 1.4.\n");
    size_t q = 0;
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    CHECK_EQ_INT(q, 4);
    int jobs = 0;
    drain(ing, &jobs, "added", "news.txt");
    CHECK_EQ_INT(jobs, 4);
    char *news = rb_path_join(dir, "news.txt"), *notes = rb_path_join(dir, "notes.md");
    char *mail = rb_path_join(dir, "mail.eml");
    CHECK(doc_with(idx, "docs", news, "瑞银全球财富管理", NULL));
    CHECK(doc_with(idx, "docs", notes, "liquidity ratio", NULL));
    /* the mail's attachment is its own document, child of the mail */
    char *att = rb_asprintf("%s#attachment-1", mail);
    int64_t mail_id = 0, att_id = 0;
    CHECK(doc_with(idx, "docs", mail, "Roses are red", &mail_id));
    CHECK(doc_with(idx, "docs", att, NULL, &att_id));
    struct rb_index_document *ad = NULL;
    if (att_id && rb_index_document_get(idx, att_id, &ad) == RB_OK) {
        CHECK_EQ_INT(ad->parent_id, mail_id);
        CHECK_STR(ad->title, "unstructured_logo.png");
        rb_index_document_free(ad);
    }
    /* a rescan without changes queues nothing */
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    CHECK_EQ_INT(q, 0);
    /* a forced re-check finds them unchanged (same hash) */
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", notes, true, &q) == RB_OK);
    drain(ing, NULL, "unchanged", "notes.md");

    /* modify: replaced atomically, same document id */
    int64_t id_before = 0, id_after = 0;
    doc_with(idx, "docs", notes, NULL, &id_before);
    sleep(1); /* a different mtime second for file systems with coarse timestamps */
    write_text(dir, "notes.md", "# Notes\n\nThe solvency margin was revised to 2.1.\n");
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    CHECK_EQ_INT(q, 1);
    drain(ing, NULL, "updated", "notes.md");
    CHECK(doc_with(idx, "docs", notes, "solvency margin", &id_after));
    CHECK(!doc_with(idx, "docs", notes, "liquidity ratio", NULL));
    CHECK_EQ_INT(id_after, id_before);

    /* rename: the document follows the file, its chunks are not re-made */
    struct rb_index_chunk **before = NULL, **after = NULL;
    size_t nb = 0, na = 0;
    int64_t news_id = 0;
    doc_with(idx, "docs", news, NULL, &news_id);
    REQUIRE(rb_index_document_chunks(idx, news_id, &before, &nb) == RB_OK);
    char *moved = rb_path_join(dir, "renamed-news.txt");
    REQUIRE(rename(news, moved) == 0);
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    CHECK_EQ_INT(q, 2); /* the new path and the old one */
    drain(ing, NULL, "renamed", "renamed-news.txt");
    int64_t moved_id = 0;
    CHECK(doc_with(idx, "docs", moved, "瑞银", &moved_id));
    CHECK_EQ_INT(moved_id, news_id);
    CHECK(!doc_with(idx, "docs", news, NULL, NULL));
    REQUIRE(rb_index_document_chunks(idx, moved_id, &after, &na) == RB_OK);
    CHECK_EQ_INT(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        CHECK_EQ_INT(after[i]->id, before[i]->id);
    rb_index_chunk_list_free(before, nb);
    rb_index_chunk_list_free(after, na);

    /* delete: the mail and its attachment go */
    REQUIRE(unlink(mail) == 0);
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    drain(ing, NULL, "deleted", "mail.eml");
    CHECK(!doc_with(idx, "docs", mail, NULL, NULL));
    CHECK(!doc_with(idx, "docs", att, NULL, NULL));

    /* failures: a damaged PDF is retried with back-off, then quarantined;
     * an encrypted one is quarantined at once; the others are unaffected */
    copy_shared("docs/pdf/broken/invalid.pdf", dir, "broken.pdf");
    copy_shared("docs/pdf/encrypted/rc4-40.pdf", dir, "locked.pdf");
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    drain(ing, NULL, "retry", "broken.pdf");
    struct rb_ingest_status st;
    REQUIRE(rb_ingest_get_status(ing, &st) == RB_OK);
    CHECK_EQ_INT(st.failed, 1);
    CHECK_EQ_INT(st.quarantined, 1);
    CHECK_EQ_INT(st.queued, 1); /* the retry, due later */
    usleep(200 * 1000);
    drain(ing, NULL, "quarantined", "broken.pdf");
    REQUIRE(rb_ingest_get_status(ing, &st) == RB_OK);
    CHECK_EQ_INT(st.quarantined, 2);
    CHECK_EQ_INT(st.queued, 0);
    char *fails = NULL;
    REQUIRE(rb_ingest_failures_json(ing, 10, &fails) == RB_OK);
    CHECK(strstr(fails, "broken.pdf") && strstr(fails, "damaged"));
    CHECK(strstr(fails, "locked.pdf") && strstr(fails, "encrypted"));
    free(fails);
    /* a quarantined file is not retried by rescans until it changes */
    REQUIRE(rb_ingest_enqueue_path(ing, "docs", dir, false, &q) == RB_OK);
    CHECK_EQ_INT(q, 0);
    char **problems = NULL;
    size_t np = 0;
    REQUIRE(rb_index_verify(idx, &problems, &np) == RB_OK);
    CHECK_EQ_INT(np, 0);
    rb_index_problems_free(problems, np);

    free(news), free(notes), free(mail), free(att), free(moved);
    rb_ingest_close(ing);
    rb_index_close(idx);
    free(data);
    free(dir);
}

/* Waits up to 40 s (a loaded 2-core CI) for cond on a fresh index handle each time (another
 * process writes). */
#define WAIT_FOR(data, expr)                                                                       \
    do {                                                                                           \
        bool ok_ = false;                                                                          \
        for (int t_ = 0; t_ < 400 && !ok_; t_++) {                                                 \
            struct rb_index_options o_ = {.data_dir = (data)};                                     \
            struct rb_index *idx = NULL;                                                           \
            struct rb_errmsg e_ = {{0}};                                                           \
            if (rb_index_open(&o_, &idx, &e_) == RB_OK) {                                          \
                ok_ = (expr);                                                                      \
                rb_index_close(idx);                                                               \
            }                                                                                      \
            if (!ok_)                                                                              \
                usleep(100 * 1000);                                                                \
        }                                                                                          \
        CHECK_MSG(ok_, "timed out waiting for %s", #expr);                                         \
    } while (0)

static void test_daemon(void)
{
    const char *root = check_tmpdir("daemon");
    char *data = rb_path_join(root, "data"), *dir = rb_path_join(root, "watched");
    char *conf = rb_path_join(root, "ragbox.conf");
    REQUIRE(rb_fs_mkdirs(dir, 0755) == RB_OK && rb_fs_mkdirs(data, 0755) == RB_OK);
    char *text = rb_asprintf("[ingest]\nwatch = %s:watched\nrescan_s = 60\n", dir);
    REQUIRE(rb_fs_write_atomic(conf, text, strlen(text)) == RB_OK);
    free(text);
    write_text(dir, "before.md", "# Before\n\nPresent when the daemon started.\n");
    pid_t pid = start_daemon(data, conf);
    char *before = rb_path_join(dir, "before.md");
    WAIT_FOR(data, doc_with(idx, "watched", before, "daemon started", NULL));
    /* add (inotify, not the 60 s rescan) */
    REQUIRE(rb_fs_mkdirs(rb_path_join(dir, "sub"), 0755) == RB_OK);
    copy_shared("docs/csv/semicolon-delimited.csv", dir, "sub/table.csv");
    char *csv = rb_path_join(dir, "sub/table.csv");
    WAIT_FOR(data, doc_with(idx, "watched", csv, "dolor sit", NULL));
    /* modify */
    write_text(dir, "before.md", "# Before\n\nEdited while the daemon watched.\n");
    WAIT_FOR(data, doc_with(idx, "watched", before, "Edited while", NULL) &&
                       !doc_with(idx, "watched", before, "daemon started", NULL));
    /* rename */
    int64_t id0 = 0, id1 = 0;
    WAIT_FOR(data, doc_with(idx, "watched", before, NULL, &id0));
    char *after = rb_path_join(dir, "after.md");
    REQUIRE(rename(before, after) == 0);
    WAIT_FOR(data, doc_with(idx, "watched", after, "Edited while", &id1) &&
                       !doc_with(idx, "watched", before, NULL, NULL));
    CHECK_EQ_INT(id1, id0);
    /* delete */
    REQUIRE(unlink(csv) == 0);
    WAIT_FOR(data, !doc_with(idx, "watched", csv, NULL, NULL));
    int status = stop_daemon(pid, SIGTERM);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(before), free(after), free(csv), free(data), free(dir), free(conf);
}

/* Runs a command, returning its exit status and stdout (caller frees). */
static int run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    REQUIRE(p != NULL);
    struct rb_buf b;
    rb_buf_init(&b, 0);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        REQUIRE(rb_buf_append(&b, buf, n) == RB_OK);
    int st = pclose(p);
    REQUIRE(rb_buf_append(&b, "", 0) == RB_OK);
    *out = rb_buf_steal(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void)
{
    const char *root = check_tmpdir("cli");
    char *data = rb_path_join(root, "data"), *good = rb_path_join(root, "good");
    char *bad = rb_path_join(root, "bad");
    REQUIRE(rb_fs_mkdirs(good, 0755) == RB_OK && rb_fs_mkdirs(bad, 0755) == RB_OK);
    copy_shared("docs/md/README.md", good, "readme.md");
    copy_shared("docs/csv/semicolon-delimited.csv", good, "t.csv");
    copy_shared("docs/pdf/encrypted/aes-256.pdf", bad, "locked.pdf");
    copy_shared("docs/txt/eng_spa.txt", bad, "ok.txt");
    const char *bin = getenv("RAGBOX_BIN");
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' ingest --collection c --json '%s' 2>/dev/null", bin,
             data, good);
    CHECK_EQ_INT(run(cmd, &out), 0);
    cJSON *j = cJSON_Parse(out);
    CHECK(j && rb_json_num(j, "added", -1) == 2 && rb_json_bool(j, "ok", false));
    CHECK(j && rb_json_num(j, "chunks", 0) >= 2);
    cJSON_Delete(j);
    free(out);
    /* again: unchanged */
    CHECK_EQ_INT(run(cmd, &out), 0);
    j = cJSON_Parse(out);
    CHECK(j && rb_json_num(j, "unchanged", -1) == 2);
    cJSON_Delete(j);
    free(out);
    /* one bad file: exit status 1, the good one still indexed, the reason reported */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' ingest --collection c --json '%s' 2>/dev/null", bin,
             data, bad);
    CHECK_EQ_INT(run(cmd, &out), 1);
    j = cJSON_Parse(out);
    CHECK(j && rb_json_num(j, "added", -1) == 1 && !rb_json_bool(j, "ok", true));
    CHECK(strstr(out, "locked.pdf") && strstr(out, "encrypted"));
    cJSON_Delete(j);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' ingest status --json", bin, data);
    CHECK_EQ_INT(run(cmd, &out), 0);
    j = cJSON_Parse(out);
    CHECK(j && rb_json_num(j, "files", 0) == 4 && rb_json_num(j, "quarantined", 0) == 1);
    cJSON_Delete(j);
    free(out);
    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' ingest '%s' 2>/dev/null", bin, data, good);
    CHECK_EQ_INT(run(cmd, &out), 2);
    free(out);
    free(data), free(good), free(bad);
}

int main(void)
{
    if (!getenv("RAGBOX_BIN"))
        CHECK_SKIP("RAGBOX_BIN not set");
    test_library();
    test_cli();
    test_daemon();
    return check_finish();
}
