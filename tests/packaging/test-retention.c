/* `ragbox retention run|status` and doctor over a real data directory laid out
 * like the appliance (audit/ a link into a separate log directory):
 *  - an audit trail with segments 400, 300, 200, 100 and 5 days old and a live
 *    one, built through the audit API with an injected clock (record times are
 *    hash-chained and cannot be backdated afterwards);
 *  - question history of two users, some rows backdated (created_us rewritten
 *    in SQLite: the history has no chain);
 *  - log files in the log directory, old and new, and other files.
 * Asserts exactly what the dry run reports and leaves untouched, what the run
 * removes and keeps, that `ragbox audit verify` passes afterwards and fails
 * once a retained segment is removed, the audit records of the run, the
 * state file, `retention status` and doctor. Runs the built binary. */
#include <sqlite3.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>

#include "check.h"
#include "ragbox/audit.h"
#include "ragbox/web.h"

#define DAY_US ((int64_t)86400 * 1000000)

static char out_buf[1 << 18];
static int64_t fake_now;
static int64_t clock_fn(void *user)
{
    (void)user;
    return fake_now;
}

static int run(const char *fmt, const char *a, const char *b)
{
    char cmd[12000];
    snprintf(cmd, sizeof cmd, fmt, getenv("RAGBOX_BIN"), a, b ? b : "");
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t n = fread(out_buf, 1, sizeof out_buf - 1, p);
    out_buf[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[12000];
    snprintf(cmd, sizeof cmd, fmt, a, b ? b : "");
    REQUIRE(system(cmd) == 0);
}

/* Every file's name and SHA-256 plus the history rows: what a dry run must not change. */
static char *snapshot(const char *data, const char *logs)
{
    char cmd[12000];
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && find . -type f ! -name 'ragbox.db*' | sort | xargs sha256sum; "
        "cd '%s' && find . -type f | sort | xargs sha256sum; "
        "sqlite3 '%s/ragbox.db' 'SELECT id, question, created_us FROM web_history ORDER BY id'",
        data, logs, data);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    char *out = calloc(1, 1 << 18);
    REQUIRE(out);
    size_t n = fread(out, 1, (1 << 18) - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static bool exists(const char *dir, const char *name)
{
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void touch_old(const char *dir, const char *name, int days)
{
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fputs("2026-01-01 a log line\n", f);
    fclose(f);
    struct timeval tv[2];
    tv[0].tv_sec = tv[1].tv_sec = time(NULL) - (time_t)days * 86400;
    tv[0].tv_usec = tv[1].tv_usec = 0;
    REQUIRE(utimes(p, tv) == 0);
}

/* The web server on loopback, as the appliance runs it. */
static char server_pid[64];
static int server_port;
static char api_key[256];

/* A failed REQUIRE exits: never leave the server running. */
static void server_kill_at_exit(void)
{
    if (server_pid[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "kill %s 2>/dev/null", server_pid);
        if (system(cmd) != 0)
            server_pid[0] = '\0';
    }
}

static void server_start(const char *data, const char *conf, const char *root)
{
    server_port = 20000 + (int)(getpid() % 20000);
    char cmd[13000];
    snprintf(cmd, sizeof cmd,
             "'%s' --data '%s' --config '%s' serve --listen 127.0.0.1:%d >'%s/serve.log' 2>&1 & "
             "echo $! >'%s/serve.pid'",
             getenv("RAGBOX_BIN"), data, conf, server_port, root, root);
    REQUIRE(system(cmd) == 0);
    char pidfile[4400];
    snprintf(pidfile, sizeof pidfile, "%s/serve.pid", root);
    FILE *f = fopen(pidfile, "r");
    REQUIRE(f && fgets(server_pid, sizeof server_pid, f));
    fclose(f);
    server_pid[strcspn(server_pid, "\n")] = '\0';
    atexit(server_kill_at_exit);
    bool up = false;
    for (int i = 0; i < 150 && !up; i++) {
        snprintf(cmd, sizeof cmd,
                 "curl -fsS -o /dev/null http://127.0.0.1:%d/api/health 2>/dev/null", server_port);
        up = system(cmd) == 0;
        if (!up)
            usleep(200 * 1000);
    }
    REQUIRE(up);
}

static void server_stop(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "kill %s 2>/dev/null; sleep 0.3", server_pid);
    CHECK(system(cmd) == 0);
    server_pid[0] = '\0';
}

/* GET path with the admin's key: the HTTP status; the body in out_buf. */
static int api_get(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "curl -sS -m 30 -H 'Authorization: Bearer %s' -w '\\n%%{http_code}' "
             "http://127.0.0.1:%d%s",
             api_key, server_port, path);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t n = fread(out_buf, 1, sizeof out_buf - 1, p);
    out_buf[n] = '\0';
    pclose(p);
    char *nl = strrchr(out_buf, '\n');
    int code = nl ? atoi(nl + 1) : 0;
    if (nl)
        *nl = '\0';
    return code;
}

struct scan_ctx {
    int system_records;
    bool audit_job, history_job, logs_job;
    bool leaked_text;
};

static enum rb_status on_record(void *user, const cJSON *rec, const char *line, size_t len)
{
    struct scan_ctx *c = user;
    const char *action = rb_json_str(rec, "action"), *target = rb_json_str(rec, "target");
    if (action && strcmp(action, "system") == 0 && target) {
        c->system_records++;
        c->audit_job |= strcmp(target, "retention:audit") == 0;
        c->history_job |= strcmp(target, "retention:answer_text") == 0;
        c->logs_job |= strcmp(target, "retention:logs") == 0;
        /* the trace of a deletion never carries what was deleted */
        c->leaked_text |= memmem(line, len, "secret", 6) != NULL;
    }
    return RB_OK;
}

int main(void)
{
    const char *bin = getenv("RAGBOX_BIN");
    if (!bin || access(bin, X_OK) != 0)
        CHECK_SKIP("the ragbox binary is not built");
    if (system("command -v sqlite3 >/dev/null") != 0)
        CHECK_SKIP("sqlite3 (the command) is not installed");
    const char *root = check_tmpdir("retention");
    char data[4200], logs[4200], audit[4300], conf[4300];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(logs, sizeof logs, "%s/log", root);
    snprintf(audit, sizeof audit, "%s/audit", logs);
    snprintf(conf, sizeof conf, "%s/ragbox.conf", root);
    REQUIRE(rb_fs_mkdirs(data, 0750) == RB_OK && rb_fs_mkdirs(audit, 0750) == RB_OK);
    sh("ln -s '%s' '%s/audit'", audit, data);
    FILE *f = fopen(conf, "w");
    REQUIRE(f);
    fputs("[retention]\naudit_days = 250\nanswer_text_days = 90\nlog_days = 30\n", f);
    fclose(f);

    /* ---- the audit trail: A 400, B 300, C 200, D 100, E 5 days old, F live */
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    char key[4400];
    snprintf(key, sizeof key, "%s/keys/audit-ed25519.pem", data);
    o.dir = audit;
    o.key_path = key;
    o.sync = false;
    o.syslog = false;
    o.rotate_seconds = 86400;
    o.now_us = clock_fn;
    int64_t now = rb_time_now_us();
    fake_now = now - 400 * DAY_US;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    const int ages[] = {400, 300, 200, 100, 5, 0};
    for (size_t s = 0; s < 6; s++)
        for (int i = 0; i < 3; i++) {
            fake_now = now - ages[s] * DAY_US + i * 1000000 - (s == 5 ? 10000000 : 0);
            struct rb_audit_event ev = {.action = RB_AUDIT_QUERY,
                                        .user = "alice",
                                        .client = "192.0.2.1",
                                        .query = "which dose?",
                                        .outcome = "answered",
                                        .latency_ms = 12};
            REQUIRE(rb_audit_append(a, &ev, NULL) == RB_OK);
        }
    rb_audit_close(a);

    /* ---- question history: alice 3 rows (200, 100, 10 days), bob 2 (95 days, today) */
    char db[4400];
    snprintf(db, sizeof db, "%s/ragbox.db", data);
    struct rb_web_auth_options wo = {.db_path = db};
    struct rb_web_auth *auth = NULL;
    REQUIRE(rb_web_auth_open(&wo, &auth, &err) == RB_OK);
    int64_t alice = 0, bob = 0;
    REQUIRE(rb_web_user_add(auth, "alice", RB_WEB_ROLE_USER, "correct horse battery", &alice) ==
            RB_OK);
    REQUIRE(rb_web_user_add(auth, "bob", RB_WEB_ROLE_USER, "correct horse battery", &bob) == RB_OK);
    struct {
        int64_t user;
        const char *q;
        int days;
    } rows[] = {{alice, "secret question 200", 200},
                {alice, "secret question 100", 100},
                {alice, "question 10", 10},
                {bob, "secret question 95", 95},
                {bob, "question today", 0}};
    for (size_t i = 0; i < RB_ARRAY_LEN(rows); i++) {
        int64_t id = 0;
        REQUIRE(rb_web_history_add(auth, rows[i].user, "clinical", rows[i].q, "secret answer",
                                   "[1]", &id) == RB_OK);
        sqlite3 *h = NULL;
        REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
        char sql[200];
        snprintf(sql, sizeof sql, "UPDATE web_history SET created_us = %lld WHERE id = %lld",
                 (long long)(now - rows[i].days * DAY_US), (long long)id);
        REQUIRE(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(h);
    }
    rb_web_auth_close(auth);

    /* ---- logs: old and new *.log, an old non-log file, the audit trail itself old */
    touch_old(logs, "ingest.log", 40);
    touch_old(logs, "ingest.log.1.gz", 60);
    touch_old(logs, "ingest.log.2", 31);
    touch_old(logs, "web.log", 2);
    touch_old(logs, "notes.txt", 400);

    /* ---- batch jobs (<data>/jobs/<id>/job.json as the web server writes it):
     * a done job that ended 200 days ago goes; a job still running since then,
     * a done job 10 days old and a directory that is not a job stay. */
    struct {
        const char *id, *state;
        int days;
    } jobs[] = {{"00000000000000a1", "done", 200},
                {"00000000000000a2", "running", 200},
                {"00000000000000a3", "done", 10}};
    for (size_t i = 0; i < RB_ARRAY_LEN(jobs); i++) {
        char jd[4600], jf[4700];
        snprintf(jd, sizeof jd, "%s/jobs/%s", data, jobs[i].id);
        REQUIRE(rb_fs_mkdirs(jd, 0700) == RB_OK);
        snprintf(jf, sizeof jf, "%s/job.json", jd);
        f = fopen(jf, "w");
        REQUIRE(f);
        long long t = (long long)(now - jobs[i].days * DAY_US);
        fprintf(
            f,
            "{\"id\":\"%s\",\"owner\":\"alice\",\"owner_id\":%lld,\"client\":\"192.0.2.1\","
            "\"questions_format\":\"csv\",\"collections\":[\"clinical\"],\"mode\":\"auto\","
            "\"state\":\"%s\",\"total\":2,\"done\":2,\"created_us\":%lld,\"finished_us\":%lld}\n",
            jobs[i].id, (long long)alice, jobs[i].state, t,
            strcmp(jobs[i].state, "done") == 0 ? t : 0LL);
        fclose(f);
        snprintf(jf, sizeof jf, "%s/result.jsonl", jd);
        f = fopen(jf, "w");
        REQUIRE(f);
        fputs("{\"id\":\"q1\",\"answer\":\"secret answer\"}\n", f);
        fclose(f);
    }
    sh("mkdir -p '%s/jobs/not-a-job'%s", data, "");

    /* ---- dry run: reports, changes nothing */
    char *before = snapshot(data, logs);
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention run --dry-run --json", data, conf),
                 0);
    cJSON *j = cJSON_Parse(out_buf);
    REQUIRE(j);
    const cJSON *ja = cJSON_GetObjectItem(j, "audit");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(ja, "segments")), 2);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(ja, "records")), 6);
    CHECK_EQ_INT(cJSON_GetNumberValue(
                     cJSON_GetObjectItem(cJSON_GetObjectItem(j, "answer_text"), "history_rows")),
                 3);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "logs"), "files")),
                 3);
    CHECK_EQ_INT(cJSON_GetNumberValue(
                     cJSON_GetObjectItem(cJSON_GetObjectItem(j, "answer_text"), "batch_jobs")),
                 1);
    cJSON_Delete(j);
    char *after = snapshot(data, logs);
    CHECK_STR(before, after);
    free(after);
    CHECK(!exists(data, "retention.json"));
    CHECK(!exists(audit, "prunes.jsonl"));

    /* The web server holds the batch jobs in memory while retention runs. */
    bool have_server = system("command -v curl >/dev/null") == 0;
    if (have_server) {
        CHECK_EQ_INT(
            run("echo 'correct horse battery staple' | '%s' --data '%s' --config '%s' user "
                "add ops --role admin --password-stdin >/dev/null 2>&1",
                data, conf),
            0);
        CHECK_EQ_INT(
            run("'%s' --data '%s' --config '%s' apikey create ops 2>/dev/null", data, conf), 0);
        char *last = out_buf + strlen(out_buf);
        while (last > out_buf && (last[-1] == '\n' || last[-1] == ' '))
            *--last = '\0';
        char *line = strrchr(out_buf, '\n');
        rb_strlcpy(api_key, line ? line + 1 : out_buf, sizeof api_key);
        server_start(data, conf, root);
        CHECK_EQ_INT(api_get("/api/jobs"), 200);
        CHECK(strstr(out_buf, "00000000000000a1") && strstr(out_buf, "00000000000000a3"));
        CHECK_EQ_INT(api_get("/api/jobs/00000000000000a1"), 200);
    }
    /* status before any run: never ran, 2 + 3 + 3 due */
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention status --json", data, conf), 0);
    j = cJSON_Parse(out_buf);
    REQUIRE(j);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "last_run")));
    CHECK_EQ_INT(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "due"), "history_rows")),
        3);
    cJSON_Delete(j);
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' doctor --quick 2>&1", data, conf), 0);
    CHECK(strstr(out_buf,
                 "WARN  retention  retention has never run; due now: 2 audit segment(s) "
                 "(6 records), 3 question-history entries, 1 batch job(s), 3 log file(s)") != NULL);

    /* ---- the run */
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention run 2>&1", data, conf), 0);
    CHECK(strstr(out_buf, "audit        removed 2 segment(s), 6 record(s)") != NULL);
    CHECK(strstr(out_buf, "answer_text  deleted 3 question-history entries and 1 finished batch "
                          "job(s)") != NULL);
    CHECK(strstr(out_buf, "logs         deleted 3 file(s)") != NULL);
    fputs(out_buf, stderr);
    /* audit: exactly A and B gone */
    CHECK(!exists(audit, "audit-00000000000000000001.jsonl"));
    CHECK(!exists(audit, "audit-00000000000000000004.jsonl"));
    CHECK(exists(audit, "audit-00000000000000000007.jsonl"));
    CHECK(exists(audit, "audit-00000000000000000010.jsonl"));
    CHECK(exists(audit, "audit-00000000000000000013.jsonl"));
    CHECK(exists(audit, "audit-00000000000000000016.jsonl"));
    CHECK(exists(audit, "prunes.jsonl"));
    /* history: the 200, 100 and 95 day rows gone, the others kept */
    REQUIRE(rb_web_auth_open(&wo, &auth, &err) == RB_OK);
    cJSON *hist = NULL;
    REQUIRE(rb_web_history_list(auth, alice, 0, &hist) == RB_OK);
    CHECK_EQ_INT(cJSON_GetArraySize(hist), 1);
    CHECK_STR(rb_json_str(cJSON_GetArrayItem(hist, 0), "question"), "question 10");
    cJSON_Delete(hist);
    REQUIRE(rb_web_history_list(auth, bob, 0, &hist) == RB_OK);
    CHECK_EQ_INT(cJSON_GetArraySize(hist), 1);
    CHECK_STR(rb_json_str(cJSON_GetArrayItem(hist, 0), "question"), "question today");
    cJSON_Delete(hist);
    rb_web_auth_close(auth);
    /* batch jobs: only the old finished one gone */
    char jobs_dir[4400];
    snprintf(jobs_dir, sizeof jobs_dir, "%s/jobs", data);
    CHECK(!exists(jobs_dir, "00000000000000a1"));
    CHECK(exists(jobs_dir, "00000000000000a2/result.jsonl") &&
          exists(jobs_dir, "00000000000000a3/job.json") && exists(jobs_dir, "not-a-job"));
    /* the running server no longer lists the expired job, and answers 404 for it */
    if (have_server) {
        CHECK_EQ_INT(api_get("/api/jobs"), 200);
        CHECK(strstr(out_buf, "00000000000000a1") == NULL);
        CHECK(strstr(out_buf, "00000000000000a3") != NULL);
        CHECK_EQ_INT(api_get("/api/jobs/00000000000000a1"), 404);
        CHECK_EQ_INT(api_get("/api/jobs/00000000000000a3"), 200);
        server_stop();
    }
    /* logs: the three old *.log files gone; the new one, the non-log file, the audit trail kept */
    CHECK(!exists(logs, "ingest.log") && !exists(logs, "ingest.log.1.gz") &&
          !exists(logs, "ingest.log.2"));
    CHECK(exists(logs, "web.log") && exists(logs, "notes.txt"));
    /* the chain verifies, through the CLI */
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' audit verify 2>&1", data, conf), 0);
    CHECK(strstr(out_buf, "records 1..6 were removed in 1 signed prune record") != NULL);
    fputs(out_buf, stderr);
    /* the run left one system record per job, without the deleted text */
    struct scan_ctx sc = {0};
    REQUIRE(rb_audit_scan(audit, NULL, on_record, &sc, &err) == RB_OK);
    CHECK_EQ_INT(sc.system_records, 3);
    CHECK(sc.audit_job && sc.history_job && sc.logs_job && !sc.leaked_text);
    /* state, status, doctor */
    CHECK(exists(data, "retention.json"));
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention status --json", data, conf), 0);
    j = cJSON_Parse(out_buf);
    REQUIRE(j);
    const cJSON *lr = cJSON_GetObjectItem(j, "last_run");
    CHECK(cJSON_IsObject(lr) && cJSON_IsTrue(cJSON_GetObjectItem(lr, "ok")));
    const cJSON *due = cJSON_GetObjectItem(j, "due");
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(due, "audit_segments")), 0);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(due, "history_rows")), 0);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(due, "log_files")), 0);
    CHECK(rb_json_str(due, "audit_next") != NULL); /* C becomes due in ~50 days */
    cJSON_Delete(j);
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' doctor --quick 2>&1", data, conf), 0);
    CHECK(strstr(out_buf, "ok    retention  last run ") != NULL);
    /* a second run removes nothing more */
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention run --json", data, conf), 0);
    j = cJSON_Parse(out_buf);
    REQUIRE(j);
    CHECK_EQ_INT(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "audit"), "segments")), 0);
    cJSON_Delete(j);

    /* ---- removing the oldest retained segment is detected */
    sh("rm '%s/%s'", audit, "audit-00000000000000000007.jsonl");
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' audit verify 2>&1", data, conf), 1);
    CHECK(strstr(out_buf, "a retained segment was removed") != NULL);
    fputs(out_buf, stderr);
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' doctor --quick 2>&1", data, conf), 1);
    /* and retention refuses to build on a broken trail */
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention run 2>&1", data, conf), 1);
    CHECK(strstr(out_buf, "audit        FAILED") != NULL);

    /* ---- hostile configuration */
    f = fopen(conf, "w");
    REQUIRE(f);
    fputs("[retention]\naudit_days = -3\n", f);
    fclose(f);
    CHECK_EQ_INT(run("'%s' --data '%s' --config '%s' retention run 2>&1", data, conf), 1);
    CHECK(strstr(out_buf, "audit_days") != NULL);
    free(before);
    return check_finish();
}
