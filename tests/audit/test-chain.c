/* The audit trail: append and verify, every kind of tampering detected and
 * located, checkpoint signatures, rotation, concurrent appenders (threads and
 * processes), export filters, tombstones, redaction hook, hostile input. */
#include <pthread.h>
#include <sys/wait.h>

#include "check.h"
#include "ragbox/audit.h"

static char base_dir[4096];
static char tamper_root[4096];

#include <dirent.h>

/* Copies the files of src/<sub> to dst/<sub> (keeping modes), for sub in
 * audit and keys: a tampering scenario starts from a pristine copy. */
static void copy_tree(const char *src, const char *dst)
{
    const char *subs[] = {"audit", "keys"};
    for (int k = 0; k < 2; k++) {
        char sd[8400], dd[8400];
        snprintf(sd, sizeof sd, "%s/%s", src, subs[k]);
        snprintf(dd, sizeof dd, "%s/%s", dst, subs[k]);
        REQUIRE(rb_fs_mkdirs(dd, 0700) == RB_OK);
        DIR *d = opendir(sd);
        REQUIRE(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char sp[8800], dp[8800];
            snprintf(sp, sizeof sp, "%s/%s", sd, e->d_name);
            snprintf(dp, sizeof dp, "%s/%s", dd, e->d_name);
            char *data = NULL;
            size_t len = 0;
            struct stat sb;
            REQUIRE(stat(sp, &sb) == 0);
            REQUIRE(rb_fs_read_file(sp, 1 << 26, &data, &len) == RB_OK);
            FILE *f = fopen(dp, "wb");
            REQUIRE(f);
            REQUIRE(fwrite(data ? data : "", 1, len, f) == len);
            fclose(f);
            chmod(dp, sb.st_mode & 0777);
            free(data);
        }
        closedir(d);
    }
}

/* Line surgery on a file: ops on 1-based lines. */
enum line_op { OP_REPLACE, OP_DUPLICATE, OP_DELETE, OP_SWAP_NEXT, OP_CUT_BYTES };

static void edit_lines(const char *path, enum line_op op, int line, const char *from, const char *to)
{
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 1 << 26, &data, &len) == RB_OK);
    if (op == OP_CUT_BYTES) { /* line = bytes to cut from the end */
        FILE *f = fopen(path, "wb");
        REQUIRE(f && len >= (size_t)line);
        fwrite(data, 1, len - (size_t)line, f);
        fclose(f);
        free(data);
        return;
    }
    char *lines[4096];
    int n = 0;
    for (char *p = data; p && *p && n < 4096;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    REQUIRE(line >= 1 && line <= n);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    for (int i = 1; i <= n; i++) {
        const char *l = lines[i - 1];
        if (i == line) {
            if (op == OP_DELETE)
                continue;
            if (op == OP_REPLACE) {
                const char *hit = strstr(l, from);
                REQUIRE(hit);
                fprintf(f, "%.*s%s%s\n", (int)(hit - l), l, to, hit + strlen(from));
                continue;
            }
            if (op == OP_DUPLICATE)
                fprintf(f, "%s\n", l);
            if (op == OP_SWAP_NEXT && i < n) {
                fprintf(f, "%s\n%s\n", lines[i], l);
                i++;
                continue;
            }
        }
        fprintf(f, "%s\n", l);
    }
    fclose(f);
    free(data);
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[12000];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    REQUIRE(system(cmd) == 0);
}

static struct rb_audit *open_at(const char *base, bool sync, uint64_t cp_every, uint64_t rotate)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", base);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = sync;
    o.syslog = false;
    o.checkpoint_every = cp_every;
    o.rotate_bytes = rotate;
    o.answer_policy = RB_AUDIT_ANSWER_FULL;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_audit_open(&o, &a, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    REQUIRE(a);
    return a;
}

static uint64_t append_query(struct rb_audit *a, const char *user, const char *q)
{
    struct rb_audit_chunk chunks[2] = {
        {17, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        {42, NULL},
    };
    struct rb_audit_event ev = {
        .action = RB_AUDIT_ANSWER,
        .user = user,
        .client = "192.0.2.7",
        .collection = "filings",
        .vertical = "finance",
        .query = q,
        .chunks = chunks,
        .n_chunks = 2,
        .model_hash = "ab",
        .template_name = "finance/answer.en",
        .template_version = "2026.11-1",
        .answer = "Revenue was $5.2 billion in FY2023 [1].",
        .outcome = RB_AUDIT_OUTCOME_ANSWERED,
        .latency_ms = 812,
    };
    uint64_t seq = 0;
    enum rb_status st = rb_audit_append(a, &ev, &seq);
    CHECK_MSG(st == RB_OK, "%s", rb_audit_errmsg(a));
    return seq;
}

static struct rb_audit_verify_report verify_at(const char *base)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", base);
    struct rb_audit_verify_report r;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_audit_verify(dir, NULL, &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    if (!r.ok)
        fprintf(stderr, "  verify: %s line %llu seq %llu: %s\n", r.file,
                (unsigned long long)r.line, (unsigned long long)r.seq, r.problem);
    return r;
}

/* A copy of the pristine trail to tamper with. */
static const char *tamper_copy(const char *name)
{
    static char dir[4300];
    snprintf(dir, sizeof dir, "%s/%s", tamper_root, name);
    copy_tree(base_dir, dir);
    return dir;
}

static const char *first_log(const char *base)
{
    static char path[4300];
    snprintf(path, sizeof path, "%s/audit/audit-00000000000000000001.jsonl", base);
    return path;
}

/* Rewrites a file through a python-free shell pipeline: sed on one line. */
static void test_basic_and_tamper(void)
{
    const char *base = check_tmpdir("basic");
    snprintf(base_dir, sizeof base_dir, "%s", base);
    snprintf(tamper_root, sizeof tamper_root, "%s", check_tmpdir("tampered"));
    struct rb_audit *a = open_at(base, true, 4, 0); /* durable path: fsync per record */
    for (int i = 1; i <= 10; i++) {
        if (i == 3) { /* the rest without fsync, to keep the unit test fast */
            rb_audit_close(a);
            a = open_at(base, false, 4, 0);
        }
        char q[64];
        snprintf(q, sizeof q, "question number %d", i);
        CHECK_EQ_INT(append_query(a, i % 2 ? "alice" : "bob", q), i);
    }
    rb_audit_close(a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, 10);
    CHECK_EQ_INT(r.last_seq, 10);
    CHECK(r.checkpoints >= 3); /* at 4, 8 and on close at 10 */

    /* key file mode 0600, public key exported next to it */
    char key[4300];
    snprintf(key, sizeof key, "%s/keys/audit-ed25519.pem", base);
    struct stat sb;
    CHECK(stat(key, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    snprintf(key, sizeof key, "%s/keys/audit-ed25519.pub.pem", base);
    CHECK(stat(key, &sb) == 0);

    /* reopen continues the chain */
    a = open_at(base, false, 4, 0);
    CHECK_EQ_INT(append_query(a, "carol", "eleven"), 11);
    rb_audit_close(a);
    r = verify_at(base);
    CHECK(r.ok && r.records == 11);

    /* one-byte edit in record 5: "question number 5" -> "question number 6" */
    const char *t = tamper_copy("edit");
    edit_lines(first_log(t), OP_REPLACE, 5, "question number 5", "question number 6");
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.seq, 6);
    CHECK_EQ_INT(r.line, 6);
    CHECK(strstr(r.problem, "edited") != NULL);
    CHECK_STR(r.file, "audit-00000000000000000001.jsonl");

    /* one-byte edit of the LAST record: caught by the signed head */
    t = tamper_copy("edit-last");
    edit_lines(first_log(t), OP_REPLACE, 11, "eleven", "elevem");
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.seq, 11);

    /* inserted line (a copy of line 3 after line 3) */
    t = tamper_copy("insert");
    edit_lines(first_log(t), OP_DUPLICATE, 3, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.line, 4);
    CHECK_EQ_INT(r.seq, 3);

    /* removed line */
    t = tamper_copy("remove");
    edit_lines(first_log(t), OP_DELETE, 7, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.line, 7);
    CHECK_EQ_INT(r.seq, 8);
    CHECK(strstr(r.problem, "removed") != NULL);

    /* swapped pair (lines 4 and 5) */
    t = tamper_copy("swap");
    edit_lines(first_log(t), OP_SWAP_NEXT, 4, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.line, 4);

    /* truncated tail: last two records cut (after the last checkpoint) */
    t = tamper_copy("truncate");
    edit_lines(first_log(t), OP_DELETE, 11, NULL, NULL);
    edit_lines(first_log(t), OP_DELETE, 10, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK(strstr(r.problem, "truncated") != NULL);

    /* truncated tail AND head deleted: the checkpoints still catch it */
    t = tamper_copy("truncate-head");
    edit_lines(first_log(t), OP_DELETE, 11, NULL, NULL);
    edit_lines(first_log(t), OP_DELETE, 10, NULL, NULL);
    edit_lines(first_log(t), OP_DELETE, 9, NULL, NULL);
    char head[4400];
    snprintf(head, sizeof head, "%s/audit/head.json", t);
    REQUIRE(unlink(head) == 0);
    r = verify_at(t);
    CHECK(!r.ok);

    /* a torn last line (no newline) */
    t = tamper_copy("torn");
    edit_lines(first_log(t), OP_CUT_BYTES, 5, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.line, 11);

    /* checkpoint signature tampered: flip one hex digit of the first sig */
    t = tamper_copy("cp-sig");
    {
        char cpp[4400];
        snprintf(cpp, sizeof cpp, "%s/audit/checkpoints.jsonl", t);
        char *d = NULL;
        size_t l = 0;
        REQUIRE(rb_fs_read_file(cpp, 1 << 20, &d, &l) == RB_OK);
        char *sig = strstr(d, "\"sig\":\"");
        REQUIRE(sig);
        sig += 7;
        *sig = *sig == '0' ? '1' : '0';
        REQUIRE(rb_fs_write_atomic(cpp, d, l) == RB_OK);
        free(d);
    }
    r = verify_at(t);
    CHECK(!r.ok);
    CHECK_STR(r.file, "checkpoints.jsonl");
    CHECK(strstr(r.problem, "signature") != NULL);

    /* checkpoint removed */
    t = tamper_copy("cp-remove");
    char cps[4400];
    snprintf(cps, sizeof cps, "%s/audit/checkpoints.jsonl", t);
    int n_cp = 0;
    char *cpdata = NULL;
    size_t cplen = 0;
    REQUIRE(rb_fs_read_file(cps, 1 << 20, &cpdata, &cplen) == RB_OK);
    for (size_t i = 0; i < cplen; i++)
        n_cp += cpdata[i] == '\n';
    free(cpdata);
    edit_lines(cps, OP_DELETE, n_cp, NULL, NULL);
    r = verify_at(t);
    CHECK(!r.ok);

    /* a different key (attacker re-signs with their own) is refused */
    t = tamper_copy("other-key");
    sh("rm '%s/keys/audit-ed25519.pem' && openssl genpkey -algorithm ed25519 -out '%s/keys/k.pem' 2>/dev/null",
       t, t);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in '%s/keys/k.pem' -pubout -out '%s/keys/audit-ed25519.pub.pem'", t, t);
    REQUIRE(system(cmd) == 0);
    r = verify_at(t);
    CHECK(!r.ok);

    /* the writer refuses to continue a truncated log */
    t = tamper_copy("writer-trunc");
    edit_lines(first_log(t), OP_DELETE, 11, NULL, NULL);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", t);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.syslog = false;
    struct rb_errmsg err = {{0}};
    struct rb_audit *bad = NULL;
    CHECK(rb_audit_open(&o, &bad, &err) == RB_ERR_CORRUPT);
    CHECK(bad == NULL);
    CHECK(strstr(err.text, "shorter") != NULL);

    /* a torn partial line left by a crash is cut by the next appender and the chain holds */
    t = tamper_copy("crash-torn");
    sh("printf '{\"seq\":12,\"ti' >> '%s'%s", first_log(t), "");
    a = open_at(t, false, 100, 0);
    CHECK_EQ_INT(append_query(a, "dave", "after crash"), 12);
    rb_audit_close(a);
    r = verify_at(t);
    CHECK(r.ok && r.records == 12);
}

static void test_rotation(void)
{
    const char *base = check_tmpdir("rotate");
    struct rb_audit *a = open_at(base, false, 1000, 2048);
    for (int i = 0; i < 40; i++)
        append_query(a, "alice", "rotation keeps the chain across files");
    rb_audit_close(a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, 40);
    CHECK(r.files >= 5);
    CHECK(r.checkpoints >= r.files - 1); /* one per rotation + close */
    /* removing a whole middle file is detected */
    const char *t = check_tmpdir("rotate-rm");
    sh("cp -a '%s/.' '%s/'", base, t);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s/audit' && rm \"$(ls audit-*.jsonl | sed -n 2p)\"", t);
    REQUIRE(system(cmd) == 0);
    r = verify_at(t);
    CHECK(!r.ok);
}

static int count_logs(const char *base)
{
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/audit", base);
    DIR *d = opendir(dir);
    REQUIRE(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "audit-", 6) == 0;
    closedir(d);
    return n;
}

/* Crashes around rotation: an empty new file, and a first record in the new
 * file (plus the rotation checkpoint) that the head never recorded. */
static void test_rotation_crash(void)
{
    const char *base = check_tmpdir("rotate-crash");
    char head[4300], saved[4300];
    snprintf(head, sizeof head, "%s/audit/head.json", base);
    snprintf(saved, sizeof saved, "%s/head.saved", base);
    struct rb_audit *a = open_at(base, false, 1000, 1500);
    int files = 1;
    for (int i = 0; i < 40; i++) {
        char *text = NULL;
        size_t len = 0;
        if (i > 0)
            REQUIRE(rb_fs_read_file(head, 1 << 16, &text, &len) == RB_OK);
        append_query(a, "alice", "crash around rotation");
        if (i > 0 && count_logs(base) > files) {
            /* rotation happened in this append: put the old head back */
            REQUIRE(rb_fs_write_atomic(head, text, len) == RB_OK);
            free(text);
            break;
        }
        free(text);
    }
    rb_audit_close(a);
    CHECK_EQ_INT(count_logs(base), 2);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.unsealed, 1);
    uint64_t before = r.records;
    a = open_at(base, false, 1000, 1500);
    append_query(a, "alice", "after the crash");
    rb_audit_close(a);
    r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, before + 1);
    CHECK_EQ_INT(r.unsealed, 0);

    /* an empty rotation target left by a crash */
    char empty[4400];
    snprintf(empty, sizeof empty, "%s/audit/audit-%020llu.jsonl", base,
             (unsigned long long)(r.last_seq + 1));
    FILE *f = fopen(empty, "w");
    REQUIRE(f);
    fclose(f);
    r = verify_at(base);
    CHECK(r.ok);
    a = open_at(base, false, 1000, 1);
    append_query(a, "bob", "rotates into the empty file");
    rb_audit_close(a);
    r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, before + 2);
}

/* Rotation by age: a file older than rotate_seconds is closed at the next append. */
static void test_rotation_time(void)
{
    const char *base = check_tmpdir("rotate-time");
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/audit", base);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = false;
    o.syslog = false;
    o.rotate_seconds = 1;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    append_query(a, "alice", "first file");
    append_query(a, "alice", "first file");
    CHECK_EQ_INT(count_logs(base), 1);
    usleep(1100 * 1000);
    append_query(a, "alice", "second file");
    CHECK_EQ_INT(count_logs(base), 2);
    rb_audit_close(a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok && r.records == 3 && r.files == 2);
}

struct thread_arg {
    struct rb_audit *a;
    int id;
};

static void *thread_main(void *p)
{
    struct thread_arg *t = p;
    char user[32];
    snprintf(user, sizeof user, "thread%d", t->id);
    for (int i = 0; i < 50; i++)
        append_query(t->a, user, "concurrent");
    return NULL;
}

static void test_concurrency(void)
{
    const char *base = check_tmpdir("threads");
    struct rb_audit *a = open_at(base, false, 25, 8192);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){a, i};
        REQUIRE(pthread_create(&th[i], NULL, thread_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    rb_audit_close(a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, 200);

    /* two processes, each with its own handle, appending at once */
    base = check_tmpdir("procs");
    a = open_at(base, false, 30, 8192); /* creates the key first */
    rb_audit_close(a);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        REQUIRE(kids[k] >= 0);
        if (kids[k] == 0) {
            struct rb_audit *c = open_at(base, false, 30, 8192);
            char user[32];
            snprintf(user, sizeof user, "proc%d", k);
            for (int i = 0; i < 60; i++)
                append_query(c, user, "from another process");
            rb_audit_close(c);
            _exit(check_failures ? 1 : 0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, 120);
}

/* Group commit: 32 threads appending at once through one durable (fsync'd)
 * handle. Every caller gets a distinct seq, the record at that seq is its
 * own, the records are batched (fewer heads written than records) and the
 * chain verifies. Then a crash that lost the heads of a whole batch: the
 * records beyond the stale head verify as unsealed and the next appender
 * adopts them. */
static size_t count_lines(const char *path)
{
    char *data = NULL;
    size_t len = 0, n = 0;
    REQUIRE(rb_fs_read_file(path, 1 << 26, &data, &len) == RB_OK);
    for (size_t i = 0; i < len; i++)
        n += data[i] == '\n';
    free(data);
    return n;
}

#define GC_THREADS 24
#define GC_EACH 10
struct gc_arg {
    struct rb_audit *a;
    int id;
    uint64_t seqs[GC_EACH];
};

static void *gc_main(void *p)
{
    struct gc_arg *t = p;
    char user[32];
    snprintf(user, sizeof user, "gc%d", t->id);
    for (int i = 0; i < GC_EACH; i++)
        t->seqs[i] = append_query(t->a, user, "group commit");
    return NULL;
}

static void test_group_commit(void)
{
    const char *base = check_tmpdir("group");
    struct rb_audit *a = open_at(base, true, 100, 1 << 30);
    pthread_t th[GC_THREADS];
    static struct gc_arg args[GC_THREADS];
    int64_t t0 = rb_time_mono_ns();
    for (int i = 0; i < GC_THREADS; i++) {
        args[i] = (struct gc_arg){.a = a, .id = i};
        REQUIRE(pthread_create(&th[i], NULL, gc_main, &args[i]) == 0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(rb_time_mono_ns() - t0) / 1e9;
    fprintf(stderr, "  group commit: %d durable records in %.3f s (%.0f/s)\n",
            GC_THREADS * GC_EACH, secs, GC_THREADS * GC_EACH / secs);
    rb_audit_close(a);
    /* each seq once, 1..N, and the line at that seq is the caller's */
    static char owner[GC_THREADS * GC_EACH + 1];
    memset(owner, 0, sizeof owner);
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(first_log(base), 1 << 26, &data, &len) == RB_OK);
    char *lines[GC_THREADS * GC_EACH + 1];
    int n = 0;
    for (char *p = data; p && *p && n <= GC_THREADS * GC_EACH;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    CHECK_EQ_INT(n, GC_THREADS * GC_EACH);
    for (int i = 0; i < GC_THREADS; i++) {
        char want[48];
        snprintf(want, sizeof want, "\"user\":\"gc%d\"", i);
        for (int k = 0; k < GC_EACH; k++) {
            uint64_t s = args[i].seqs[k];
            REQUIRE(s >= 1 && s <= (uint64_t)n);
            CHECK(!owner[s]);
            owner[s] = 1;
            CHECK_MSG(strstr(lines[s - 1], want) != NULL, "seq %llu is not gc%d's record",
                      (unsigned long long)s, i);
        }
    }
    free(data);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.records, GC_THREADS * GC_EACH);
    CHECK_EQ_INT(r.unsealed, 0);

    /* A crash that lost a whole batch's head: 40 records beyond the head. */
    char head[4300];
    snprintf(head, sizeof head, "%s/audit/head.json", base);
    char *old = NULL;
    size_t old_len = 0;
    REQUIRE(rb_fs_read_file(head, 1 << 16, &old, &old_len) == RB_OK);
    a = open_at(base, true, 1000, 1 << 30);
    for (int i = 0; i < 40; i++)
        append_query(a, "late", "lost head");
    rb_audit_close(a);
    /* close wrote a checkpoint: drop it too, as if the crash came first */
    char cps[4300];
    snprintf(cps, sizeof cps, "%s/audit/checkpoints.jsonl", base);
    edit_lines(cps, OP_DELETE, (int)count_lines(cps), NULL, NULL);
    REQUIRE(rb_fs_write_atomic(head, old, old_len) == RB_OK);
    free(old);
    r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.unsealed, 40);
    a = open_at(base, true, 1000, 1 << 30);
    CHECK_EQ_INT(append_query(a, "after", "adopted"), GC_THREADS * GC_EACH + 41);
    rb_audit_close(a);
    r = verify_at(base);
    CHECK(r.ok);
    CHECK_EQ_INT(r.unsealed, 0);
    CHECK_EQ_INT(r.records, GC_THREADS * GC_EACH + 41);
}

struct collect {
    int n;
    char users[512];
};

static enum rb_status collect_fn(void *user, const cJSON *rec, const char *line, size_t len)
{
    struct collect *c = user;
    c->n++;
    const char *u = rb_json_str(rec, "user");
    if (u && strlen(c->users) + strlen(u) + 2 < sizeof c->users) {
        strcat(c->users, u);
        strcat(c->users, ",");
    }
    (void)line;
    (void)len;
    return RB_OK;
}

static char *redact_digits(void *user, const char *text, size_t len)
{
    (void)user;
    char *out = malloc(len + 1);
    for (size_t i = 0; out && i < len; i++)
        out[i] = (text[i] >= '0' && text[i] <= '9') ? '#' : text[i];
    if (out)
        out[len] = '\0';
    return out;
}

static void test_export_and_tombstone(void)
{
    const char *base = check_tmpdir("export");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", base);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = false;
    o.syslog = false;
    o.redact = redact_digits;
    struct rb_errmsg err = {{0}};
    struct rb_audit *a = NULL;
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    append_query(a, "alice", "card 4111 1111 1111 1111 please");
    append_query(a, "bob", "second");
    struct rb_audit_event login = {.action = RB_AUDIT_LOGIN_FAILURE, .user = "mallory",
                                   .client = "198.51.100.9", .outcome = "denied",
                                   .latency_ms = -1};
    uint64_t seq = 0;
    CHECK(rb_audit_append(a, &login, &seq) == RB_OK && seq == 3);
    const char *docs[] = {"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"};
    struct rb_audit_tombstone t = {.user = "dpo", .client = "cli", .collection = "hr",
                                   .scope = "person", .doc_hashes = docs, .n_doc_hashes = 1,
                                   .n_documents = 1, .n_chunks = 7, .n_identifiers = 2};
    CHECK(rb_audit_tombstone(a, &t, &seq) == RB_OK && seq == 4);
    const char *bad_docs[] = {"Zhang San 110101199003074578"};
    t.doc_hashes = bad_docs;
    CHECK(rb_audit_tombstone(a, &t, NULL) == RB_ERR_INVALID);
    /* details must be an object; invalid action refused */
    cJSON *arr = cJSON_CreateArray();
    struct rb_audit_event bad = {.action = RB_AUDIT_ADMIN_CHANGE, .details = arr, .latency_ms = -1};
    CHECK(rb_audit_append(a, &bad, NULL) == RB_ERR_INVALID);
    cJSON_Delete(arr);
    bad.details = NULL;
    bad.action = (enum rb_audit_action)99;
    CHECK(rb_audit_append(a, &bad, NULL) == RB_ERR_INVALID);
    /* invalid UTF-8 in a user name is stored sanitised, not refused */
    struct rb_audit_event weird = {.action = RB_AUDIT_ADMIN_CHANGE, .user = "x\xff\xfey",
                                   .target = "acl", .latency_ms = -1};
    CHECK(rb_audit_append(a, &weird, &seq) == RB_OK && seq == 5);
    rb_audit_close(a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(r.ok && r.records == 5);

    char *log = NULL;
    size_t len = 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/audit-00000000000000000001.jsonl", dir);
    REQUIRE(rb_fs_read_file(path, 1 << 20, &log, &len) == RB_OK);
    CHECK(strstr(log, "4111 1111") == NULL); /* redacted ("4111" alone may be in a time) */
    CHECK(strstr(log, "card #### #### #### #### please") != NULL);
    CHECK(strstr(log, "110101199003074578") == NULL); /* refused tombstone left nothing */
    CHECK(strstr(log, "\"action\":\"forget\"") != NULL);
    CHECK(strstr(log, "\"identifiers\":2") != NULL);
    /* fixed field order */
    CHECK(strncmp(log, "{\"seq\":1,\"time\":\"", 17) == 0);
    free(log);

    struct rb_audit_filter f;
    rb_audit_filter_init(&f);
    struct collect c = {0};
    CHECK(rb_audit_scan(dir, &f, collect_fn, &c, &err) == RB_OK);
    CHECK_EQ_INT(c.n, 5);
    f.user = "alice";
    memset(&c, 0, sizeof c);
    CHECK(rb_audit_scan(dir, &f, collect_fn, &c, &err) == RB_OK);
    CHECK_EQ_INT(c.n, 1);
    CHECK_STR(c.users, "alice,");
    rb_audit_filter_init(&f);
    f.action = RB_AUDIT_LOGIN_FAILURE;
    memset(&c, 0, sizeof c);
    CHECK(rb_audit_scan(dir, &f, collect_fn, &c, &err) == RB_OK);
    CHECK_STR(c.users, "mallory,");
    rb_audit_filter_init(&f);
    CHECK(rb_audit_parse_time("2000-01-01", &f.from_us) == RB_OK);
    CHECK(rb_audit_parse_time("2001-01-01T00:00:00Z", &f.to_us) == RB_OK);
    memset(&c, 0, sizeof c);
    CHECK(rb_audit_scan(dir, &f, collect_fn, &c, &err) == RB_OK);
    CHECK_EQ_INT(c.n, 0);
    f.to_us = 0;
    f.collection = "hr";
    memset(&c, 0, sizeof c);
    CHECK(rb_audit_scan(dir, &f, collect_fn, &c, &err) == RB_OK);
    CHECK_STR(c.users, "dpo,");

    /* CSV export: header + rows, formula injection defused */
    rb_audit_filter_init(&f);
    char csv_path[4300];
    snprintf(csv_path, sizeof csv_path, "%s/out.csv", base);
    FILE *out = fopen(csv_path, "w");
    size_t n = 0;
    CHECK(rb_audit_export(dir, &f, RB_AUDIT_FORMAT_CSV, out, &n, &err) == RB_OK);
    fclose(out);
    CHECK_EQ_INT(n, 5);
    REQUIRE(rb_fs_read_file(csv_path, 1 << 20, &log, &len) == RB_OK);
    CHECK(strncmp(log, "seq,time,prev,key,action,user", 29) == 0);
    CHECK(strstr(log, "\r\n5,") != NULL);
    free(log);

    int64_t us;
    CHECK(rb_audit_parse_time("2026-02-30", &us) == RB_ERR_INVALID);
    CHECK(rb_audit_parse_time("2026-11-25T06:00:00.5Z", &us) == RB_OK && us % 1000000 == 500000);
    CHECK(rb_audit_parse_time("yesterday", &us) == RB_ERR_INVALID);
    uint64_t s;
    CHECK(rb_audit_parse_id("audit-42", &s) == RB_OK && s == 42);
    CHECK(rb_audit_parse_id("audit--1", &s) == RB_ERR_INVALID);
    enum rb_audit_action act;
    CHECK(rb_audit_action_parse("login_failure", &act) == RB_OK && act == RB_AUDIT_LOGIN_FAILURE);
    CHECK(rb_audit_action_parse("nope", &act) == RB_ERR_INVALID);
}

static void test_hostile(void)
{
    /* key inside the audit dir is refused; garbage head is a clear error */
    const char *base = check_tmpdir("hostile");
    char dir[4200], key[4300];
    snprintf(dir, sizeof dir, "%s/audit", base);
    snprintf(key, sizeof key, "%s/audit/k.pem", base);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.key_path = key;
    o.syslog = false;
    struct rb_errmsg err = {{0}};
    struct rb_audit *a = NULL;
    CHECK(rb_audit_open(&o, &a, &err) == RB_ERR_CONFIG && !a);
    o.key_path = NULL;
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    append_query(a, "x", "y");
    rb_audit_close(a);
    sh("echo 'not json' > '%s/head.json'%s", dir, "");
    CHECK(rb_audit_open(&o, &a, &err) == RB_ERR_CORRUPT && !a);
    struct rb_audit_verify_report r = verify_at(base);
    CHECK(!r.ok);
    /* a record line of binary garbage */
    const char *t = check_tmpdir("garbage");
    a = open_at(t, false, 100, 0);
    append_query(a, "x", "y");
    append_query(a, "x", "z");
    rb_audit_close(a);
    sh("printf '\\001\\002\\377garbage\\n' >> '%s'%s", first_log(t), "");
    r = verify_at(t);
    CHECK(!r.ok && r.line == 3);
    /* group-readable key is refused */
    t = check_tmpdir("keymode");
    a = open_at(t, false, 100, 0);
    rb_audit_close(a);
    sh("chmod 644 '%s/keys/audit-ed25519.pem'%s", t, "");
    snprintf(dir, sizeof dir, "%s/audit", t);
    o.dir = dir;
    CHECK(rb_audit_open(&o, &a, &err) == RB_ERR_DENIED && !a);
    /* verify of a missing dir is an error, not a crash */
    CHECK(rb_audit_verify("/nonexistent/ragbox/audit", NULL, &r, &err) == RB_ERR_NOT_FOUND);
}

int main(int argc, char **argv)
{
    const char *part = argc > 1 ? argv[1] : "all";
    bool all = strcmp(part, "all") == 0;
    if (all || strcmp(part, "tamper") == 0)
        test_basic_and_tamper();
    if (all || strcmp(part, "rotate") == 0) {
        test_rotation();
        test_rotation_crash();
    }
    if (all || strcmp(part, "rotate-time") == 0)
        test_rotation_time();
    if (all || strcmp(part, "concurrency") == 0)
        test_concurrency();
    if (all || strcmp(part, "group") == 0)
        test_group_commit();
    if (all || strcmp(part, "export") == 0) {
        test_export_and_tombstone();
        test_hostile();
    }
    return check_finish();
}
