/* Audit and redaction figures: appends per second with fsync per record
 * (the default durability) and without (the baseline), verification speed,
 * and redaction throughput on real text from the shared documents.
 * Usage: bench-audit [SCRATCH_DIR] [SHARED_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/audit.h"
#include "ragbox/verticals.h"

static double now_s(void)
{
    return (double)rb_time_mono_ns() / 1e9;
}

static double appends(const char *base, const char *name, bool sync, int n)
{
    char dir[4096], cmd[8300];
    snprintf(dir, sizeof dir, "%s/%s/audit", base, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", base, name);
    if (system(cmd) != 0)
        return -1;
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = sync;
    o.syslog = false;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_audit_open(&o, &a, &err) != RB_OK) {
        fprintf(stderr, "%s\n", err.text);
        return -1;
    }
    struct rb_audit_chunk chunks[8];
    for (int i = 0; i < 8; i++)
        chunks[i] = (struct rb_audit_chunk){1000 + i, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"};
    struct rb_audit_event ev = {.action = RB_AUDIT_ANSWER, .user = "alice", .client = "192.0.2.7",
                                .collection = "filings", .query = "What was the revenue in FY2023?",
                                .chunks = chunks, .n_chunks = 8, .answer = "Revenue was USD 5.2 million [1].",
                                .outcome = "answered", .latency_ms = 900};
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (rb_audit_append(a, &ev, NULL) != RB_OK) {
            fprintf(stderr, "%s\n", rb_audit_errmsg(a));
            break;
        }
    double dt = now_s() - t0;
    rb_audit_close(a);
    return n / dt;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp/ragbox-bench-audit";
    const char *shared = argc > 2 ? argv[2] : "../shared";
    if (rb_fs_mkdirs(base, 0700) != RB_OK)
        return 1;
    printf("audit append, 8 chunks per record:\n");
    printf("  fsync per record (default): %8.0f records/s\n", appends(base, "sync", true, 200));
    printf("  no fsync (baseline):        %8.0f records/s\n", appends(base, "nosync", false, 20000));
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
