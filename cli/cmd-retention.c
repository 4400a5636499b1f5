/* ragbox retention run|status: enforces the [retention] settings.
 *
 *   audit_days        whole sealed audit segments whose newest record is older
 *                     are removed by rb_audit_prune (signed prune record, the
 *                     chain still verifies); the live segment never is.
 *   answer_text_days  users' question history (questions, answers, citations
 *                     in web_history) older is deleted (rb_web_history_prune),
 *                     and finished batch jobs (<data>/jobs/<id>: questions and
 *                     answers) that ended before the cutoff.
 *                     The audit records of those questions stay (they keep
 *                     the answer's hash, or its text under [audit] answers =
 *                     full, for audit_days: the chain cannot be edited).
 *   log_days          log files ragbox keeps in its log directory (the
 *                     directory holding the audit trail when it is not inside
 *                     the data directory: /var/log/ragbox), except the audit
 *                     trail itself: *.log, *.log.N, *.log.gz older are deleted.
 *                     The services log to journald (journald.conf governs it).
 *
 * Every run that removes something appends an audit record per job (action
 * "system", target "retention:<job>", counts and file names, no content), and
 * writes DATA/retention.json (last run, what was removed, errors), which
 * `retention status` and `doctor` read. 0 days = keep forever.
 *
 * The packaged ragbox-retention.timer runs `retention run` daily.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ragbox/audit.h"
#if __has_include("ragbox/web.h")
#include "ragbox/web.h"
#define RB_RETENTION_HAVE_WEB 1
#endif

int rb_cmd_retention_run(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_retention_status(struct rb_cli *cli, int argc, char **argv);

#define DAY_US ((int64_t)86400 * 1000000)
#define STATE_FILE "retention.json"

struct retention {
    struct rb_cli *cli;
    int64_t audit_days, answer_days, log_days;
    int64_t now;
    bool dry_run;
    cJSON *out;    /* the result object */
    cJSON *errors; /* array of strings */
    struct rb_audit_options ao;
    char *audit_paths;
};

static void add_time(cJSON *o, const char *key, int64_t us)
{
    char t[40];
    if (us <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    rb_time_format_utc(us, t, sizeof t);
    cJSON_AddStringToObject(o, key, t);
}

static void add_error(struct retention *r, const char *job, const char *msg)
{
    char *s = rb_asprintf("%s: %s", job, msg);
    if (s)
        cJSON_AddItemToArray(r->errors, cJSON_CreateString(s));
    free(s);
}

static int load(struct retention *r, struct rb_cli *cli, bool dry_run)
{
    memset(r, 0, sizeof *r);
    r->cli = cli;
    r->dry_run = dry_run;
    r->now = rb_time_now_us();
    struct rb_errmsg err = {{0}};
    if (rb_config_int(cli->config, "retention", "audit_days", 2555, 0, 36500, &r->audit_days,
                      &err) != RB_OK ||
        rb_config_int(cli->config, "retention", "answer_text_days", 90, 0, 36500, &r->answer_days,
                      &err) != RB_OK ||
        rb_config_int(cli->config, "retention", "log_days", 30, 0, 36500, &r->log_days, &err) !=
            RB_OK)
        return rb_cli_fail("%s (a whole number of days, 0 = keep forever)", err.text);
    if (rb_audit_options_from_config(&r->ao, cli->config, cli->data_dir, &r->audit_paths, &err) !=
        RB_OK)
        return rb_cli_fail("%s", err.text);
    r->out = cJSON_CreateObject();
    r->errors = cJSON_CreateArray();
    if (!r->out || !r->errors)
        return rb_cli_fail("out of memory");
    add_time(r->out, "time", r->now);
    cJSON_AddBoolToObject(r->out, "dry_run", dry_run);
    return RB_EXIT_OK;
}

static void unload(struct retention *r)
{
    cJSON_Delete(r->out);
    cJSON_Delete(r->errors);
    free(r->audit_paths);
}

/* ================================================================ audit */

static void job_audit(struct retention *r, cJSON **removed_files)
{
    cJSON *j = cJSON_AddObjectToObject(r->out, "audit");
    cJSON_AddNumberToObject(j, "days", (double)r->audit_days);
    if (r->audit_days == 0) {
        cJSON_AddStringToObject(j, "note", "kept forever (audit_days = 0)");
        return;
    }
    int64_t before = r->now - r->audit_days * DAY_US;
    add_time(j, "before", before);
    struct rb_audit_prune_report p;
    struct rb_errmsg err = {{0}};
    if (rb_audit_prune(&r->ao, before, r->dry_run, &p, &err) != RB_OK) {
        add_error(r, "audit", err.text);
        cJSON_AddStringToObject(j, "error", err.text);
        return;
    }
    cJSON_AddNumberToObject(j, "segments", (double)p.n_removed);
    cJSON_AddNumberToObject(j, "records", (double)p.records);
    cJSON_AddNumberToObject(j, "bytes", (double)p.bytes);
    cJSON *files = cJSON_AddArrayToObject(j, "files");
    for (size_t i = 0; i < p.n_removed; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "file", p.removed[i].file);
        cJSON_AddNumberToObject(s, "first_seq", (double)p.removed[i].first_seq);
        cJSON_AddNumberToObject(s, "last_seq", (double)p.removed[i].last_seq);
        add_time(s, "last_time", p.removed[i].last_time_us);
        cJSON_AddItemToArray(files, s);
    }
    if (p.completed)
        cJSON_AddNumberToObject(j, "completed_earlier", (double)p.completed);
    cJSON_AddNumberToObject(j, "segments_kept", (double)p.n_kept);
    cJSON_AddNumberToObject(j, "first_kept_seq", (double)p.first_kept_seq);
    add_time(j, "next_due", p.next_due_last_us ? p.next_due_last_us + r->audit_days * DAY_US : 0);
    if (p.note[0])
        cJSON_AddStringToObject(j, "note", p.note);
    *removed_files = files;
    rb_audit_prune_report_free(&p);
}

/* ================================================================ history */

static void expire_jobs(struct retention *r, int64_t before, cJSON *j);

static void job_history(struct retention *r)
{
    cJSON *j = cJSON_AddObjectToObject(r->out, "answer_text");
    cJSON_AddNumberToObject(j, "days", (double)r->answer_days);
    if (r->answer_days == 0) {
        cJSON_AddStringToObject(j, "note", "kept forever (answer_text_days = 0)");
        return;
    }
    int64_t before = r->now - r->answer_days * DAY_US;
    add_time(j, "before", before);
#ifdef RB_RETENTION_HAVE_WEB
    char *db = rb_path_join(r->cli->data_dir, "ragbox.db");
    if (!db || !rb_fs_exists(db)) {
        cJSON_AddNumberToObject(j, "history_rows", 0);
        cJSON_AddStringToObject(j, "note", "no database yet");
        free(db);
        expire_jobs(r, before, j);
        return;
    }
    struct rb_web_auth_options o = {.db_path = db, .config = r->cli->config};
    struct rb_web_auth *auth = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_web_auth_open(&o, &auth, &err) != RB_OK) {
        add_error(r, "answer_text", err.text);
        cJSON_AddStringToObject(j, "error", err.text);
        free(db);
        expire_jobs(r, before, j);
        return;
    }
    int64_t rows = 0, oldest = 0;
    if (rb_web_history_prune(auth, before, r->dry_run, &rows, &oldest) != RB_OK) {
        add_error(r, "answer_text", rb_web_auth_errmsg(auth));
        cJSON_AddStringToObject(j, "error", rb_web_auth_errmsg(auth));
    } else {
        cJSON_AddNumberToObject(j, "history_rows", (double)rows);
        add_time(j, "next_due", oldest ? oldest + r->answer_days * DAY_US : 0);
    }
    rb_web_auth_close(auth);
    free(db);
#else
    cJSON_AddStringToObject(j, "note", "this build has no web module (no question history)");
#endif
    expire_jobs(r, before, j);
}

/* Finished batch jobs (<data>/jobs/<id>/: the question file and the answers)
 * whose end is older than the cutoff are deleted; the web server drops them
 * from its list when it next looks. Queued or running jobs are never touched. */
static void expire_jobs(struct retention *r, int64_t before, cJSON *j)
{
    char *dir = rb_path_join(r->cli->data_dir, "jobs");
    DIR *d = dir ? opendir(dir) : NULL;
    int64_t n = 0, oldest = 0;
    cJSON *ids = cJSON_CreateArray();
    while (d && ids) {
        struct dirent *e = readdir(d);
        if (!e)
            break;
        size_t len = strlen(e->d_name);
        bool hex = len == 16;
        for (size_t i = 0; hex && i < len; i++)
            hex = (e->d_name[i] >= '0' && e->d_name[i] <= '9') ||
                  (e->d_name[i] >= 'a' && e->d_name[i] <= 'f');
        if (!hex)
            continue;
        char *jd = rb_path_join(dir, e->d_name);
        char *meta = jd ? rb_path_join(jd, "job.json") : NULL;
        char *text = NULL;
        size_t tl = 0;
        cJSON *o = NULL;
        struct rb_errmsg jerr;
        if (meta && rb_fs_read_file(meta, 1 << 20, &text, &tl) == RB_OK &&
            rb_json_parse(text, tl, 8, &o, &jerr) == RB_OK && cJSON_IsObject(o)) {
            const char *state = rb_json_str(o, "state");
            int64_t fin = (int64_t)rb_json_num(o, "finished_us", 0);
            if (fin <= 0)
                fin = (int64_t)rb_json_num(o, "created_us", 0);
            bool finished = state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
                                      strcmp(state, "cancelled") == 0);
            if (finished && fin > 0 && fin < before) {
                bool gone = true;
                if (!r->dry_run) {
                    /* job.json last: a half-deleted job is still recognisably one. */
                    DIR *jdir = opendir(jd);
                    struct dirent *f;
                    while (jdir && (f = readdir(jdir))) {
                        if (f->d_name[0] == '.' || strcmp(f->d_name, "job.json") == 0)
                            continue;
                        char *fp = rb_path_join(jd, f->d_name);
                        if (fp && unlink(fp) != 0 && errno != ENOENT)
                            gone = false;
                        free(fp);
                    }
                    if (jdir)
                        closedir(jdir);
                    gone = gone && unlink(meta) == 0 && rmdir(jd) == 0;
                    if (!gone) {
                        char *m =
                            rb_asprintf("cannot delete batch job %s: %s", jd, strerror(errno));
                        add_error(r, "answer_text", m ? m : "cannot delete a batch job");
                        free(m);
                    }
                }
                if (gone) {
                    n++;
                    cJSON_AddItemToArray(ids, cJSON_CreateString(e->d_name));
                }
            } else if (finished && fin > 0 && (!oldest || fin < oldest)) {
                oldest = fin;
            }
        }
        cJSON_Delete(o);
        free(text);
        free(meta);
        free(jd);
    }
    if (d)
        closedir(d);
    free(dir);
    cJSON_AddNumberToObject(j, "batch_jobs", (double)n);
    cJSON_AddItemToObject(j, "batch_job_ids", ids);
    if (oldest) {
        int64_t due = oldest + r->answer_days * DAY_US;
        const char *prev = rb_json_str(j, "next_due");
        int64_t prev_us = 0;
        if (!prev || rb_audit_parse_time(prev, &prev_us) != RB_OK || due < prev_us) {
            cJSON_DeleteItemFromObject(j, "next_due");
            add_time(j, "next_due", due);
        }
    }
}

/* ================================================================ logs */

/* The log directory: where the audit trail really lives when that is outside
 * the data directory (/var/log/ragbox on the appliance); NULL otherwise. */
static char *log_dir(struct retention *r)
{
    char *audit = realpath(r->ao.dir, NULL);
    char *data = realpath(r->cli->data_dir, NULL);
    char *out = NULL;
    if (audit && data) {
        size_t dl = strlen(data);
        bool inside = strncmp(audit, data, dl) == 0 && (audit[dl] == '/' || audit[dl] == '\0');
        char *slash = strrchr(audit, '/');
        if (!inside && slash && slash != audit) {
            *slash = '\0';
            out = rb_strdup(audit);
        }
    }
    free(audit);
    free(data);
    return out;
}

static bool is_log_name(const char *n)
{
    const char *p = strstr(n, ".log");
    if (!p || p == n)
        return false;
    p += 4;
    if (*p == '\0' || strcmp(p, ".gz") == 0 || strcmp(p, ".xz") == 0)
        return true;
    if (*p++ != '.')
        return false;
    if (!*p)
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p == '\0' || strcmp(p, ".gz") == 0 || strcmp(p, ".xz") == 0;
}

static void expire_logs(struct retention *r, const char *dir, const char *skip, int depth,
                        int64_t before, cJSON *files, int64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = rb_path_join(dir, e->d_name);
        struct stat sb;
        if (!p || lstat(p, &sb) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            char *real = realpath(p, NULL);
            if (depth < 4 && real && strcmp(real, skip) != 0)
                expire_logs(r, p, skip, depth + 1, before, files, bytes);
            free(real);
        } else if (S_ISREG(sb.st_mode) && is_log_name(e->d_name) &&
                   (int64_t)sb.st_mtime * 1000000 < before) {
            if (r->dry_run || unlink(p) == 0) {
                cJSON_AddItemToArray(files, cJSON_CreateString(p));
                *bytes += sb.st_size;
            } else {
                char *m = rb_asprintf("cannot delete %s: %s", p, strerror(errno));
                add_error(r, "logs", m ? m : "cannot delete a log file");
                free(m);
            }
        }
        free(p);
    }
    closedir(d);
}

static void job_logs(struct retention *r, cJSON **removed)
{
    cJSON *j = cJSON_AddObjectToObject(r->out, "logs");
    cJSON_AddNumberToObject(j, "days", (double)r->log_days);
    char *dir = log_dir(r);
    if (r->log_days == 0 || !dir) {
        cJSON_AddStringToObject(j, "note",
                                r->log_days == 0 ? "kept forever (log_days = 0)"
                                                 : "no log directory outside the data directory "
                                                   "(the services log to journald)");
        free(dir);
        return;
    }
    int64_t before = r->now - r->log_days * DAY_US;
    add_time(j, "before", before);
    cJSON_AddStringToObject(j, "dir", dir);
    char *audit = realpath(r->ao.dir, NULL);
    cJSON *files = cJSON_AddArrayToObject(j, "files");
    int64_t bytes = 0;
    expire_logs(r, dir, audit ? audit : "", 0, before, files, &bytes);
    cJSON_AddNumberToObject(j, "bytes", (double)bytes);
    *removed = files;
    free(audit);
    free(dir);
}

/* ================================================================ record + state */

static void audit_record(struct retention *r, const char *job, cJSON *details)
{
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_audit_open(&r->ao, &a, &err) != RB_OK) {
        add_error(r, "audit record", err.text);
        return;
    }
    struct passwd *pw = getpwuid(geteuid());
    char target[64];
    snprintf(target, sizeof target, "retention:%s", job);
    struct rb_audit_event ev = {.action = RB_AUDIT_SYSTEM,
                                .user = pw ? pw->pw_name : "unknown",
                                .client = "retention",
                                .outcome = RB_AUDIT_OUTCOME_OK,
                                .latency_ms = -1,
                                .target = target,
                                .details = details};
    uint64_t seq = 0;
    if (rb_audit_append(a, &ev, &seq) != RB_OK)
        add_error(r, "audit record", rb_audit_errmsg(a));
    else {
        char id[32];
        rb_audit_format_id(seq, id, sizeof id);
        cJSON_AddStringToObject(details, "audit_id", id);
    }
    rb_audit_close(a);
}

static void print_human(const cJSON *o)
{
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(o, "dry_run"));
    const cJSON *j;
    printf("retention %s%s\n", dry ? "(dry run: nothing changed) " : "",
           rb_json_str(o, "time") ? rb_json_str(o, "time") : "");
    if ((j = cJSON_GetObjectItem(o, "audit"))) {
        if (rb_json_str(j, "error"))
            printf("  audit        FAILED: %s\n", rb_json_str(j, "error"));
        else if (cJSON_GetObjectItem(j, "segments"))
            printf("  audit        %s %d segment(s), %d record(s) older than %s%s%s\n",
                   dry ? "would remove" : "removed",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "segments")),
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "records")),
                   rb_json_str(j, "before"), rb_json_str(j, "note") ? "; " : "",
                   rb_json_str(j, "note") ? rb_json_str(j, "note") : "");
        else
            printf("  audit        %s\n", rb_json_str(j, "note") ? rb_json_str(j, "note") : "");
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(j, "files"))
            printf("               %s (seq %d..%d, newest %s)\n", rb_json_str(f, "file"),
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(f, "first_seq")),
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(f, "last_seq")),
                   rb_json_str(f, "last_time"));
    }
    if ((j = cJSON_GetObjectItem(o, "answer_text"))) {
        if (rb_json_str(j, "error"))
            printf("  answer_text  FAILED: %s\n", rb_json_str(j, "error"));
        else if (cJSON_GetObjectItem(j, "history_rows") && rb_json_str(j, "before"))
            printf("  answer_text  %s %d question-history entr%s and %d finished batch job(s) "
                   "older than %s\n",
                   dry ? "would delete" : "deleted",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "history_rows")),
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "history_rows")) == 1 ? "y"
                                                                                          : "ies",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch_jobs")),
                   rb_json_str(j, "before"));
        else
            printf("  answer_text  %s\n", rb_json_str(j, "note") ? rb_json_str(j, "note") : "");
    }
    if ((j = cJSON_GetObjectItem(o, "logs"))) {
        const cJSON *files = cJSON_GetObjectItem(j, "files");
        if (files)
            printf("  logs         %s %d file(s) older than %s in %s\n",
                   dry ? "would delete" : "deleted", cJSON_GetArraySize(files),
                   rb_json_str(j, "before"), rb_json_str(j, "dir"));
        else
            printf("  logs         %s\n", rb_json_str(j, "note") ? rb_json_str(j, "note") : "");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "errors"))
        printf("  error        %s\n", e->valuestring);
}

/* Loads the settings and runs (or, dry_run, evaluates) every retention job;
 * the jobs' findings are in r->out, the removed audit and log files in *audit_files
 * and *log_files. Exit status; on failure r is already unloaded. */
static int evaluate(struct retention *r, struct rb_cli *cli, bool dry_run, cJSON **audit_files,
                    cJSON **log_files)
{
    *audit_files = *log_files = NULL;
    int rc = load(r, cli, dry_run);
    if (rc != RB_EXIT_OK) {
        unload(r);
        return rc;
    }
    job_audit(r, audit_files);
    job_history(r);
    job_logs(r, log_files);
    return RB_EXIT_OK;
}

static int run(struct rb_cli *cli, bool dry_run, bool json, const char *cmd)
{
    struct retention r;
    cJSON *audit_files, *log_files;
    int rc = evaluate(&r, cli, dry_run, &audit_files, &log_files);
    if (rc != RB_EXIT_OK)
        return rc;
    if (!dry_run) {
        /* The trace of what retention removed: counts and names, no content. */
        cJSON *j = cJSON_GetObjectItem(r.out, "audit");
        if (audit_files && cJSON_GetArraySize(audit_files) > 0)
            audit_record(&r, "audit", j);
        j = cJSON_GetObjectItem(r.out, "answer_text");
        if (j && (cJSON_GetNumberValue(cJSON_GetObjectItem(j, "history_rows")) > 0 ||
                  cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch_jobs")) > 0))
            audit_record(&r, "answer_text", j);
        j = cJSON_GetObjectItem(r.out, "logs");
        if (log_files && cJSON_GetArraySize(log_files) > 0)
            audit_record(&r, "logs", j);
    }
    cJSON_AddBoolToObject(r.out, "ok", cJSON_GetArraySize(r.errors) == 0);
    cJSON_AddItemToObject(r.out, "errors", r.errors);
    r.errors = NULL;
    bool ok = cJSON_IsTrue(cJSON_GetObjectItem(r.out, "ok"));
    if (!dry_run) {
        char *text = cJSON_Print(r.out);
        char *path = rb_path_join(cli->data_dir, STATE_FILE);
        if (!text || !path || rb_fs_mkdirs(cli->data_dir, 0700) != RB_OK ||
            rb_fs_write_atomic(path, text, strlen(text)) != RB_OK) {
            fprintf(stderr, "ragbox: %s: cannot write %s\n", cmd, path ? path : STATE_FILE);
            ok = false;
        }
        free(text);
        free(path);
    }
    if (json) {
        char *text = cJSON_Print(r.out);
        if (text)
            puts(text);
        free(text);
    } else {
        print_human(r.out);
    }
    unload(&r);
    return ok ? RB_EXIT_OK : RB_EXIT_FAIL;
}

int rb_cmd_retention_run(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox retention run [--dry-run] [--json]\n"
        "\n"
        "Applies the [retention] settings (days; 0 = keep forever):\n"
        "  audit_days        removes whole sealed audit segments whose newest record is\n"
        "                    older, oldest first, never the live one; a signed prune\n"
        "                    record anchors what remains, so 'ragbox audit verify' still\n"
        "                    proves nothing else was removed. A damaged segment is kept.\n"
        "  answer_text_days  deletes users' question history (questions and answers)\n"
        "                    and finished batch jobs (question files and results) older\n"
        "                    than that. Audit records are not edited.\n"
        "  log_days          deletes *.log files older than that from ragbox's log\n"
        "                    directory (/var/log/ragbox), never the audit trail.\n"
        "Each removal is recorded in the audit trail (action 'system', target\n"
        "'retention:<job>', counts and file names only) and the run is summarised\n"
        "in DATA/retention.json for 'retention status' and 'doctor'. The packaged\n"
        "ragbox-retention.timer runs this daily.\n"
        "\n"
        "  --dry-run   report what would be removed; change nothing\n"
        "  --json      print the result as JSON\n"
        "\n"
        "Exit status 0 when every job succeeded, 1 otherwise.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    bool dry = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return rb_cli_usage("retention run", "unknown argument '%s'", argv[i]);
    }
    return run(cli, dry, json, "retention run");
}

int rb_cmd_retention_status(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox retention status [--json]\n"
        "\n"
        "The settings, the last 'retention run' (from DATA/retention.json) and what is\n"
        "due now (a dry run). Changes nothing. JSON: {settings, last_run, due}.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return rb_cli_usage("retention status", "unknown argument '%s'", argv[i]);
    }
    struct retention r;
    cJSON *audit_files, *log_files;
    int rc = evaluate(&r, cli, true, &audit_files, &log_files);
    if (rc != RB_EXIT_OK)
        return rc;
    cJSON *st = cJSON_CreateObject();
    cJSON *settings = cJSON_AddObjectToObject(st, "settings");
    cJSON_AddNumberToObject(settings, "audit_days", (double)r.audit_days);
    cJSON_AddNumberToObject(settings, "answer_text_days", (double)r.answer_days);
    cJSON_AddNumberToObject(settings, "log_days", (double)r.log_days);
    char *path = rb_path_join(cli->data_dir, STATE_FILE);
    char *text = NULL;
    size_t len = 0;
    cJSON *last = NULL;
    struct rb_errmsg jerr;
    if (path && rb_fs_read_file(path, 1 << 22, &text, &len) == RB_OK &&
        rb_json_parse(text, len, 16, &last, &jerr) == RB_OK && cJSON_IsObject(last))
        cJSON_AddItemToObject(st, "last_run", last);
    else {
        cJSON_Delete(last);
        cJSON_AddNullToObject(st, "last_run");
    }
    free(text);
    free(path);
    cJSON *due = cJSON_AddObjectToObject(st, "due");
    const cJSON *j = cJSON_GetObjectItem(r.out, "audit");
    cJSON_AddNumberToObject(due, "audit_segments",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(j, "segments")) > 0
                                ? cJSON_GetNumberValue(cJSON_GetObjectItem(j, "segments"))
                                : 0);
    cJSON_AddNumberToObject(due, "audit_records",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(j, "records")) > 0
                                ? cJSON_GetNumberValue(cJSON_GetObjectItem(j, "records"))
                                : 0);
    if (rb_json_str(j, "next_due"))
        cJSON_AddStringToObject(due, "audit_next", rb_json_str(j, "next_due"));
    j = cJSON_GetObjectItem(r.out, "answer_text");
    double rows = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "history_rows"));
    cJSON_AddNumberToObject(due, "history_rows", rows > 0 ? rows : 0);
    double jobs = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch_jobs"));
    cJSON_AddNumberToObject(due, "batch_jobs", jobs > 0 ? jobs : 0);
    if (rb_json_str(j, "next_due"))
        cJSON_AddStringToObject(due, "history_next", rb_json_str(j, "next_due"));
    j = cJSON_GetObjectItem(r.out, "logs");
    cJSON_AddNumberToObject(due, "log_files", cJSON_GetArraySize(cJSON_GetObjectItem(j, "files")));
    cJSON_AddItemToObject(st, "errors", r.errors);
    r.errors = NULL;
    if (json) {
        char *s = cJSON_Print(st);
        if (s)
            puts(s);
        free(s);
    } else {
        printf("retention settings: audit_days %lld, answer_text_days %lld, log_days %lld "
               "(0 = forever)\n",
               (long long)r.audit_days, (long long)r.answer_days, (long long)r.log_days);
        const cJSON *lr = cJSON_GetObjectItem(st, "last_run");
        if (cJSON_IsObject(lr))
            printf("last run: %s (%s)\n", rb_json_str(lr, "time") ? rb_json_str(lr, "time") : "?",
                   cJSON_IsTrue(cJSON_GetObjectItem(lr, "ok")) ? "ok" : "with errors");
        else
            printf("last run: never\n");
        printf("due now: %d audit segment(s) (%d records), %d history entr%s, %d batch job(s), "
               "%d log file(s)\n",
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(due, "audit_segments")),
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(due, "audit_records")),
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(due, "history_rows")),
               cJSON_GetNumberValue(cJSON_GetObjectItem(due, "history_rows")) == 1 ? "y" : "ies",
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(due, "batch_jobs")),
               (int)cJSON_GetNumberValue(cJSON_GetObjectItem(due, "log_files")));
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(st, "errors"))
            printf("error: %s\n", e->valuestring);
    }
    cJSON_Delete(st);
    unload(&r);
    return RB_EXIT_OK;
}
