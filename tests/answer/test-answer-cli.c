/* End to end through the `ragbox` binary on a real index built from real
 * documents (PubMedQA, TAT-QA, CAIL2019 and CRUD passages): `ask --json`
 * cited answers in English and Chinese, refusals in the question's language,
 * `forget` of a document and of a person leaving no trace in any file of the
 * data directory, and `batch` killed mid-run and resumed. */
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "check.h"

#include "ragbox/answer.h"
#include "ragbox/index.h"

static const char *DATA;
static char BIN[4096];

static const char *const DOCS[] = {
    "eval/pubmedqa/docs/pmid-10135926.txt", "eval/pubmedqa/docs/pmid-10173769.txt",
    "eval/tatqa/docs/tatqa-001e29d7-77e9-4434-9a3d-f72ef640fa79.txt",
    "eval/cail2019-zh/docs/cail2019-874.txt", "eval/cail2019-zh/docs/cail2019-875.txt",
    "eval/crud-zh/docs/news-50621.txt",
};

static char *slurp(const char *path)
{
    char *d = NULL;
    size_t n = 0;
    return rb_fs_read_file(path, 1 << 24, &d, &n) == RB_OK ? d : NULL;
}

/* Chunks each document by paragraphs (two per chunk) into collection "docs". */
static void build_index(void)
{
    struct rb_index_options io = {.data_dir = DATA};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&io, &idx, &err) == RB_OK);
    int64_t coll;
    REQUIRE(rb_index_collection_create(idx, "docs", NULL, &coll) == RB_OK);
    for (size_t d = 0; d < RB_ARRAY_LEN(DOCS); d++) {
        char *text = slurp(check_shared(DOCS[d]));
        REQUIRE(text != NULL);
        struct rb_index_chunk ch[64];
        char *parts[64];
        size_t n = 0;
        char *save = NULL;
        for (char *para = strtok_r(text, "\n", &save); para && n < 64;
             para = strtok_r(NULL, "\n", &save)) {
            if (!*para)
                continue;
            parts[n] = rb_strdup(para);
            memset(&ch[n], 0, sizeof ch[n]);
            ch[n].text = parts[n];
            ch[n].ordinal = (int32_t)n;
            ch[n].page_start = ch[n].page_end = (int32_t)(n / 3 + 1);
            n++;
        }
        char hash[65];
        REQUIRE(rb_sha256_file(check_shared(DOCS[d]), hash) == RB_OK);
        struct rb_index_document doc = {.collection_id = coll,
                                        .source = rb_path_basename(DOCS[d]),
                                        .title = rb_path_basename(DOCS[d]),
                                        .sha256 = hash,
                                        .state = RB_INDEX_DOC_INDEXED};
        REQUIRE(rb_index_document_put(idx, &doc, ch, n, NULL, NULL) == RB_OK);
        for (size_t i = 0; i < n; i++)
            free(parts[i]);
        free(text);
    }
    REQUIRE(rb_index_flush(idx) == RB_OK);
    rb_index_close(idx);
}

/* Runs ragbox with args, returns its stdout (caller frees) and exit status. */
static char *run(int *status, const char *fmt, ...)
{
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' %s", BIN, DATA, args);
    FILE *p = popen(cmd, "r");
    REQUIRE(p != NULL);
    struct rb_buf b;
    rb_buf_init(&b, 0);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        REQUIRE(rb_buf_append(&b, buf, n) == RB_OK);
    int rc = pclose(p);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    REQUIRE(rb_buf_append(&b, "", 0) == RB_OK);
    return rb_buf_steal(&b);
}

static cJSON *ask(const char *question)
{
    int status;
    char *out = run(&status, "ask --json --collection docs --extractive \"%s\"", question);
    CHECK_MSG(status == 0, "ask exit %d: %s", status, out);
    cJSON *j = cJSON_Parse(out);
    CHECK_MSG(j != NULL, "not JSON: %s", out);
    free(out);
    return j;
}

/* Whether any file under DATA contains needle (raw bytes). */
static bool data_contains(const char *needle)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "grep -r -a -F -q -e '%s' '%s'", needle, DATA);
    return system(cmd) == 0;
}

static void test_ask(void)
{
    cJSON *j = ask("How long did in-flight intubation take compared with the control setting?");
    REQUIRE(j != NULL);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "refused")));
    const char *answer = rb_json_str(j, "answer");
    CHECK(answer && strstr(answer, "25.9") && strstr(answer, "[1]"));
    const cJSON *cits = cJSON_GetObjectItem(j, "citations");
    REQUIRE(cJSON_GetArraySize(cits) >= 1);
    const cJSON *c0 = cJSON_GetArrayItem(cits, 0);
    CHECK_STR(rb_json_str(c0, "document"), "pmid-10135926.txt");
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(c0, "page")));
    CHECK(rb_json_num(c0, "chunk_id", 0) > 0);
    CHECK(rb_json_str(c0, "text") && strstr(rb_json_str(c0, "text"), "25.9"));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "audit_id")));
    cJSON_Delete(j);

    j = ask("被告人如何进入周某家中?");
    REQUIRE(j != NULL);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "refused")));
    CHECK_STR(rb_json_str(j, "lang"), "zh");
    answer = rb_json_str(j, "answer");
    CHECK_MSG(answer && strstr(answer, "破门而入"), "%s", answer ? answer : "");
    cits = cJSON_GetObjectItem(j, "citations");
    REQUIRE(cJSON_GetArraySize(cits) >= 1);
    CHECK_STR(rb_json_str(cJSON_GetArrayItem(cits, 0), "document"), "cail2019-874.txt");
    cJSON_Delete(j);

    j = ask("What is the boiling point of liquid nitrogen on Mars?");
    REQUIRE(j != NULL);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "refused")));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "citations")), 0);
    CHECK_STR(rb_json_str(j, "lang"), "en");
    cJSON_Delete(j);

    j = ask("火星上液氮的沸点是多少？");
    REQUIRE(j != NULL);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "refused")));
    answer = rb_json_str(j, "answer");
    CHECK(answer && rb_answer_detect_lang(answer, strlen(answer)) == RB_ANSWER_LANG_ZH);
    cJSON_Delete(j);

    /* usage errors and unknown collections are errors, not answers */
    int status;
    char *out = run(&status, "ask --json --collection nosuch \"anything\" 2>/dev/null");
    CHECK_EQ_INT(status, 1);
    free(out);
    out = run(&status, "ask --json \"no collection\" 2>/dev/null");
    CHECK_EQ_INT(status, 2);
    free(out);
}

static void test_forget(void)
{
    /* a distinctive sentence of the PubMedQA abstract, and the address in a judgment */
    const char *sentence = "The study was conducted in an MBB BO-105 helicopter.";
    REQUIRE(data_contains(sentence));
    int status;
    char *out = run(&status, "forget --collection docs --document pmid-10135926.txt");
    CHECK_MSG(status == 0, "%s", out);
    free(out);
    CHECK(!data_contains(sentence));
    cJSON *j = ask("How long did in-flight intubation take compared with the control setting?");
    if (j) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "citations"))
            CHECK(strcmp(rb_json_str(c, "document"), "pmid-10135926.txt") != 0);
        cJSON_Delete(j);
    }

    REQUIRE(data_contains("金兴路100号"));
    REQUIRE(data_contains("黄某"));
    out = run(&status, "forget --collection docs --person 黄某 --person '金兴路100号'");
    CHECK_MSG(status == 0, "%s", out);
    CHECK(strstr(out, "chunk") != NULL);
    free(out);
    CHECK(!data_contains("金兴路100号"));
    CHECK(!data_contains("黄某"));
    /* the rest of the judgment stays searchable */
    j = ask("非法侵入住宅 金鼎大厦 踹开房门");
    if (j) {
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "refused")));
        cJSON_Delete(j);
    }
    /* and the index is consistent (FTS, FAISS and SQLite agree) */
    struct rb_index_options io = {.data_dir = DATA};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&io, &idx, &err) == RB_OK);
    char **problems = NULL;
    size_t np = 0;
    CHECK(rb_index_verify(idx, &problems, &np) == RB_OK);
    CHECK_EQ_INT(np, 0);
    rb_index_problems_free(problems, np);
    rb_index_close(idx);
}

static void test_batch(const char *dir)
{
    /* 400 questions (the dev questions of the indexed sets, repeated) */
    char qpath[4200], outp[4200], journal[4300];
    snprintf(qpath, sizeof qpath, "%s/q.csv", dir);
    snprintf(outp, sizeof outp, "%s/answers.xlsx", dir);
    snprintf(journal, sizeof journal, "%s.journal", outp);
    struct rb_buf b;
    rb_buf_init(&b, 0);
    REQUIRE(rb_buf_append_str(&b, "id,question\n") == RB_OK);
    const char *qs[] = {"What was the maximum exposure to credit risk at 31 March 2019?",
                        "被告人如何进入周某家中?", "Which region had the larger trade receivables?",
                        "What is the boiling point of nitrogen on Mars?"};
    for (int i = 0; i < 400; i++)
        REQUIRE(rb_buf_printf(&b, "q%03d,\"%s\"\n", i, qs[i % 4]) == RB_OK);
    REQUIRE(rb_fs_write_atomic(qpath, b.data, b.len) == RB_OK);
    rb_buf_free(&b);

    char cmd[20000];
    snprintf(cmd, sizeof cmd,
             "exec '%s' --data '%s' batch '%s' --collection docs --out '%s' --workers 1 "
             "--extractive --no-progress 2>/dev/null",
             BIN, DATA, qpath, outp);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* kill -9 once some questions are in the journal */
    size_t lines = 0;
    for (int i = 0; i < 20000 && lines < 20; i++) {
        char *j = slurp(journal);
        lines = 0;
        for (char *p = j; p && *p; p++)
            lines += *p == '\n';
        free(j);
        if (lines < 20)
            usleep(500);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    bool killed = WIFSIGNALED(st);
    CHECK_MSG(killed, "the batch finished before it could be interrupted");
    CHECK(!rb_fs_exists(outp));
    /* resume */
    int status;
    char *out = run(&status, "batch '%s' --collection docs --out '%s' --extractive --workers 2 "
                             "--no-progress 2>&1",
                    qpath, outp);
    CHECK_MSG(status == 0, "%s", out);
    long total = 0, now = 0, resumed = 0;
    const char *s = strstr(out, " questions:");
    if (s) {
        const char *line = s;
        while (line > out && line[-1] != '\n')
            line--;
        total = strtol(line, NULL, 10);
    }
    s = strstr(out, " done now (");
    if (s) {
        const char *p = s;
        while (p > out && p[-1] != ' ')
            p--;
        now = strtol(p, NULL, 10);
        resumed = strtol(s + 11, NULL, 10);
    }
    CHECK_EQ_INT(total, 400);
    CHECK(resumed >= 19);
    CHECK_EQ_INT(now + resumed, 400);
    free(out);
    struct rb_answer_table t;
    struct rb_errmsg err;
    REQUIRE(rb_answer_table_read(outp, &t, &err) == RB_OK);
    CHECK_EQ_INT(t.n_rows, 400);
    CHECK_STR(rb_answer_table_get(&t, 0, "id"), "q000");
    CHECK_STR(rb_answer_table_get(&t, 3, "refused"), "true");
    CHECK_STR(rb_answer_table_get(&t, 1, "refused"), "false");
    CHECK(strstr(rb_answer_table_get(&t, 1, "sources"), "cail2019-874.txt") != NULL);
    rb_answer_table_free(&t);
    CHECK(!rb_fs_exists(journal));
}

int main(void)
{
    const char *bin = getenv("RAGBOX_BIN");
    if (!bin || access(bin, X_OK) != 0)
        CHECK_SKIP("the ragbox binary is not built");
    rb_strlcpy(BIN, bin, sizeof BIN);
    const char *dir = check_tmpdir("cli");
    static char data[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    DATA = data;
    build_index();
    test_ask();
    test_batch(dir);
    test_forget();
    return check_finish();
}
