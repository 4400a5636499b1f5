/* Audit and redaction figures: durable appends per second (every record
 * fdatasync'd before the call returns) from 1, 8 and 64 concurrent writer
 * threads (group commit) and from 2 processes, against the no-fsync baseline,
 * verification speed, and redaction throughput on real text from the shared
 * documents.
 * Usage: bench-audit [SCRATCH_DIR] [SHARED_DIR] */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/audit.h"
#include "ragbox/verticals.h"

static double now_s(void)
{
    return (double)rb_time_mono_ns() / 1e9;
}

static struct rb_audit_chunk chunks[8];
static struct rb_audit_event ev;

static void event_init(void)
{
    for (int i = 0; i < 8; i++)
        chunks[i] = (struct rb_audit_chunk){
            1000 + i, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"};
    ev = (struct rb_audit_event){.action = RB_AUDIT_ANSWER, .user = "alice", .client = "192.0.2.7",
                                 .collection = "filings",
                                 .query = "What was the revenue in FY2023?", .chunks = chunks,
                                 .n_chunks = 8, .answer = "Revenue was USD 5.2 million [1].",
                                 .outcome = "answered", .latency_ms = 900};
}

static struct rb_audit *open_fresh(const char *base, const char *name, bool sync, bool wipe)
{
    char dir[4096], cmd[8300];
    snprintf(dir, sizeof dir, "%s/%s/audit", base, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", base, name);
    if (wipe && system(cmd) != 0)
        return NULL;
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = sync;
    o.syslog = false;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_audit_open(&o, &a, &err) != RB_OK) {
        fprintf(stderr, "%s\n", err.text);
        return NULL;
    }
    return a;
}

struct writer {
    struct rb_audit *a;
    int n;
    int failed;
};

static void *writer_main(void *p)
{
    struct writer *w = p;
    for (int i = 0; i < w->n; i++)
        if (rb_audit_append(w->a, &ev, NULL) != RB_OK)
            w->failed++;
    return NULL;
}

/* records/s with `threads` writers sharing one handle, n records each */
static double appends(const char *base, const char *name, bool sync, int threads, int n)
{
    struct rb_audit *a = open_fresh(base, name, sync, true);
    if (!a)
        return -1;
    pthread_t th[64];
    struct writer w[64];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct writer){a, n, 0};
        if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0)
            return -1;
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failed += w[i].failed;
    }
    double dt = now_s() - t0;
    rb_audit_close(a);
    if (failed)
        fprintf(stderr, "%d appends failed\n", failed);
    return (double)threads * n / dt;
}

/* records/s from `procs` processes with 16 threads each, one handle per process */
static double appends_procs(const char *base, const char *name, int procs, int n)
{
    struct rb_audit *a = open_fresh(base, name, true, true); /* creates the key */
    if (!a)
        return -1;
    rb_audit_close(a);
    double t0 = now_s();
    pid_t kids[8];
    for (int k = 0; k < procs; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            struct rb_audit *c = open_fresh(base, name, true, false);
            if (!c)
                _exit(1);
            pthread_t th[16];
            struct writer w[16];
            for (int i = 0; i < 16; i++) {
                w[i] = (struct writer){c, n, 0};
                pthread_create(&th[i], NULL, writer_main, &w[i]);
            }
            int failed = 0;
            for (int i = 0; i < 16; i++) {
                pthread_join(th[i], NULL);
                failed += w[i].failed;
            }
            rb_audit_close(c);
            _exit(failed ? 1 : 0);
        }
    }
    for (int k = 0; k < procs; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "writer process %d failed\n", k);
    }
    return (double)procs * 16 * n / (now_s() - t0);
}

/* The disk's own rate: appends of a record-sized line, each fdatasync'd (the
 * in-run baseline a durable audit append is bounded by). */
static double raw_syncs(const char *base, int n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/raw-sync.log", base);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[700];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (write(fd, line, sizeof line) != (ssize_t)sizeof line || fdatasync(fd) != 0)
            break;
    double dt = now_s() - t0;
    close(fd);
    unlink(path);
    return n / dt;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp/ragbox-bench-audit";
    const char *shared = argc > 2 ? argv[2] : "../shared";
    if (rb_fs_mkdirs(base, 0700) != RB_OK)
        return 1;
    event_init();
    printf("disk baseline: append + fdatasync of a 700-byte line: %.0f/s\n", raw_syncs(base, 300));
    printf("audit append, 8 chunks per record (durable = fdatasync'd before the call returns):\n");
    printf("  durable,  1 writer:             %8.0f records/s\n",
           appends(base, "sync1", true, 1, 300));
    printf("  durable,  8 writers:            %8.0f records/s\n",
           appends(base, "sync8", true, 8, 200));
    printf("  durable, 64 writers:            %8.0f records/s\n",
           appends(base, "sync64", true, 64, 100));
    printf("  durable, 2 processes x 16:      %8.0f records/s\n",
           appends_procs(base, "procs", 2, 100));
    printf("  no fsync,  1 writer (baseline): %8.0f records/s\n",
           appends(base, "nosync", false, 1, 20000));
    printf("  no fsync, 64 writers:           %8.0f records/s\n",
           appends(base, "nosync64", false, 64, 300));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/nosync/audit", base);
    struct rb_audit_verify_report r;
    struct rb_errmsg err = {{0}};
    double t0 = now_s();
    if (rb_audit_verify(dir, NULL, &r, &err) != RB_OK || !r.ok) {
        fprintf(stderr, "verify: %s %s\n", err.text, r.problem);
        return 1;
    }
    double dt = now_s() - t0;
    printf("audit verify: %llu records in %.3f s (%.0f records/s)\n",
           (unsigned long long)r.records, dt, r.records / dt);

    /* redaction throughput on the labelled real text (and a 10-K cover page) */
    char path[4096];
    snprintf(path, sizeof path, "%s/eval/cail2019-zh/docs/cail2019-1.txt", shared);
    char *zh = NULL;
    size_t zh_len = 0;
    if (rb_fs_read_file(path, 1 << 24, &zh, &zh_len) != RB_OK) {
        printf("redaction: %s not found, skipped\n", path);
        return 0;
    }
    struct rb_redactor *red = NULL;
    if (rb_redactor_create(NULL, &red, &err) != RB_OK)
        return 1;
    size_t total = 0;
    t0 = now_s();
    int reps = 0;
    while (now_s() - t0 < 1.0) {
        char *out = NULL;
        if (rb_redact_text(red, zh, zh_len, &out, NULL, NULL, &err) != RB_OK)
            return 1;
        free(out);
        total += zh_len;
        reps++;
    }
    dt = now_s() - t0;
    printf("redaction (all rules, Chinese judgment, %zu bytes): %.1f MB/s\n", zh_len,
           total / dt / 1e6);
    rb_redactor_free(red);
    free(zh);
    return 0;
}
