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
#if RAGBOX_ANSWER_HAVE_ENV
    CHECK(strncmp(rb_json_str(j, "audit_id"), "audit-", 6) == 0);
#endif
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

#if RAGBOX_ANSWER_HAVE_ENV
/* The audit trail holds the question redacted, the retrieved chunks with
 * their document hashes, the template and version, the answer's hash; and
 * `ragbox audit verify` passes. */
static void test_audit(void)
{
    cJSON *j = ask("What did john.smith@example.com (card 4111 1111 1111 1111) say about how "
                   "long in-flight intubation took?");
    REQUIRE(j != NULL);
    const char *id = rb_json_str(j, "audit_id");
    REQUIRE(id && strncmp(id, "audit-", 6) == 0);
    long seq = strtol(id + 6, NULL, 10);
    cJSON_Delete(j);
    CHECK(!data_contains("john.smith@example.com"));
    CHECK(!data_contains("4111 1111 1111 1111"));
    int status;
    char *out = run(&status, "audit query --json 2>&1");
    free(out);
    char path[4300];
    snprintf(path, sizeof path, "%s/audit/audit-00000000000000000001.jsonl", DATA);
    char *log = slurp(path);
    REQUIRE(log != NULL);
    /* the record of that ask */
    char key[64];
    snprintf(key, sizeof key, "{\"seq\":%ld,", seq);
    char *rec = strstr(log, key);
    REQUIRE(rec != NULL);
    char *end = strchr(rec, '\n');
    if (end)
        *end = '\0';
    cJSON *r = cJSON_Parse(rec);
    REQUIRE(r != NULL);
    CHECK_STR(rb_json_str(r, "action"), "answer");
    const char *q = rb_json_str(r, "query");
    CHECK_MSG(q && strstr(q, "[REDACTED:EMAIL]") && strstr(q, "[REDACTED:CARD]"), "query: %s",
              q ? q : "(null)");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "chunks")) >= 1);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "chunks"), 0);
    CHECK(c0 && rb_json_str(c0, "doc") && strlen(rb_json_str(c0, "doc")) == 64);
    CHECK(rb_json_str(r, "template") != NULL);
    CHECK(rb_json_str(r, "template_version") != NULL);
    CHECK(rb_json_str(r, "answer_sha256") != NULL);
    const char *outcome = rb_json_str(r, "outcome");
    CHECK(outcome && (strcmp(outcome, "answered") == 0 || strcmp(outcome, "refused") == 0));
    CHECK(rb_json_num(r, "latency_ms", -1) >= 0);
    cJSON_Delete(r);
    free(log);
    out = run(&status, "audit verify 2>&1");
    CHECK_MSG(status == 0, "audit verify: %s", out);
    free(out);
}
#endif

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
    /* 150 questions (four kinds, repeated) */
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
    for (int i = 0; i < 150; i++)
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
    CHECK_EQ_INT(total, 150);
    CHECK(resumed >= 19);
    CHECK_EQ_INT(now + resumed, 150);
    free(out);
    struct rb_answer_table t;
    struct rb_errmsg err;
    REQUIRE(rb_answer_table_read(outp, &t, &err) == RB_OK);
    CHECK_EQ_INT(t.n_rows, 150);
    CHECK_STR(rb_answer_table_get(&t, 0, "id"), "q000");
    CHECK_STR(rb_answer_table_get(&t, 3, "refused"), "true");
    CHECK_STR(rb_answer_table_get(&t, 1, "refused"), "false");
    CHECK(strstr(rb_answer_table_get(&t, 1, "sources"), "cail2019-874.txt") != NULL);
    rb_answer_table_free(&t);
    CHECK(!rb_fs_exists(journal));
}

/* `collection policy` and the drafting switches of `ask`. */
static void test_policy_and_draft(void)
{
    int status;
    char *out = run(&status, "collection policy docs");
    CHECK_MSG(status == 0 && strstr(out, "{"), "%d %s", status, out);
    free(out);
    out = run(&status, "collection policy docs --redact-answers off");
    CHECK_MSG(status == 0 && strstr(out, "\"answers\":\tfalse"), "%s", out);
    free(out);
    /* with answers unredacted, a phone number in a source comes back as written */
    out = run(&status, "collection policy docs --redact-answers on --redact-ingest off");
    CHECK(status == 0 && strstr(out, "\"answers\":\ttrue") && strstr(out, "\"ingest\":\tfalse"));
    free(out);
    out = run(&status, "collection policy docs --redact-ingest maybe 2>/dev/null");
    CHECK_EQ_INT(status, 2);
    free(out);
    out = run(&status, "collection policy docs --set '{\"redaction\": []}' 2>/dev/null");
    CHECK_EQ_INT(status, 2);
    free(out);
    out = run(&status, "collection policy docs --set '[1]' 2>/dev/null");
    CHECK_EQ_INT(status, 2);
    free(out);
    out = run(&status, "collection policy nosuch 2>/dev/null");
    CHECK_EQ_INT(status, 1);
    free(out);
    /* the stored policy is what ask reads: an answer is marked redacted */
    cJSON *j = ask("How long did in-flight intubation take compared with the control setting?");
#if RAGBOX_ANSWER_HAVE_ENV
    CHECK(j && cJSON_IsTrue(cJSON_GetObjectItem(j, "redacted")));
#endif
    cJSON_Delete(j);
    out = run(&status, "collection policy docs --set '{}'");
    CHECK(status == 0);
    free(out);
    /* a redacting collection takes no pre-chunked text */
    out = run(&status, "collection create --policy '{\"redaction\":{\"ingest\":true}}' redacting");
    CHECK(status == 0);
    free(out);
    out = run(&status, "index add --collection redacting /dev/null 2>&1");
    CHECK_MSG(status == 1 && strstr(out, "ragbox ingest"), "%d %s", status, out);
    free(out);

    /* drafting: a kind, a model, a pack with the template */
    out = run(&status, "ask --collection docs --vertical government --draft memo x 2>/dev/null");
    CHECK_EQ_INT(status, 2);
    free(out);
    out = run(&status, "ask --collection docs --vertical government --draft notice --extractive "
                       "\"Draft a notice on in-flight intubation\" 2>&1");
    CHECK_MSG(status == 1 && strstr(out, "needs a generation model"), "%d %s", status, out);
    free(out);
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
    /* the audit trail without fdatasync per record keeps this test fast; the
     * audit module's own tests cover durability */
    char conf[4300];
    snprintf(conf, sizeof conf, "%s/ragbox.conf", DATA);
    const char *ini = "[audit]\nsync = false\nsyslog = false\n";
    REQUIRE(rb_fs_write_atomic(conf, ini, strlen(ini)) == RB_OK);
    test_ask();
    test_policy_and_draft();
    test_batch(dir);
#if RAGBOX_ANSWER_HAVE_ENV
    test_audit();
#endif
    test_forget();
#if RAGBOX_ANSWER_HAVE_ENV
    /* the tombstones are in the trail, the identifiers are not, and it verifies */
    int status;
    char *out = run(&status, "audit verify 2>&1");
    CHECK_MSG(status == 0, "audit verify after forget: %s", out);
    free(out);
    CHECK(!data_contains("金兴路100号"));
    char path[4300];
    snprintf(path, sizeof path, "%s/audit/audit-00000000000000000001.jsonl", DATA);
    char *log = slurp(path);
    CHECK(log && strstr(log, "\"action\":\"forget\"") != NULL);
    free(log);
#endif
    return check_finish();
}
