/* Audit retention: rb_audit_prune removes exactly the sealed segments older
 * than the cutoff (a contiguous prefix, never the live segment), writes a
 * signed prune record first, leaves a trail that rb_audit_verify accepts, and
 * verify then detects the removal of any retained segment or prune record.
 * The trail is built through the real API with an injected clock (record
 * times are hash-chained and cannot be edited afterwards). */
#include <dirent.h>

#include "check.h"
#include "ragbox/audit.h"

#define DAY_US ((int64_t)86400 * 1000000)

static int64_t fake_now;
static int64_t clock_fn(void *user)
{
    (void)user;
    return fake_now;
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[12000];
    snprintf(cmd, sizeof cmd, fmt, a, b ? b : "");
    REQUIRE(system(cmd) == 0);
}

/* dst becomes a fresh copy of src. */
static void fresh_copy(const char *src, const char *dst)
{
    sh("rm -rf '%s'%s", dst, "");
    sh("cp -a '%s' '%s'", src, dst);
}

static void opts_at(const char *base, char *dir, size_t size, struct rb_audit_options *o)
{
    snprintf(dir, size, "%s/audit", base);
    rb_audit_options_default(o);
    o->dir = dir;
    o->sync = false;
    o->syslog = false;
    o->rotate_seconds = 86400; /* a new segment per day with records */
    o->checkpoint_every = 2;
    o->now_us = clock_fn;
}

static void append_at(struct rb_audit *a, int64_t when, const char *q)
{
    fake_now = when;
    struct rb_audit_event ev = {.action = RB_AUDIT_QUERY,
                                .user = "alice",
                                .client = "cli",
                                .query = q,
                                .outcome = "ok",
                                .latency_ms = 3};
    uint64_t seq = 0;
    CHECK_MSG(rb_audit_append(a, &ev, &seq) == RB_OK, "%s", rb_audit_errmsg(a));
}

/* "name sha256\n" for every file of dir, sorted: what a dry run must not change. */
static char *snapshot(const char *dir)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "cd '%s' && sha256sum * | sort", dir);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    char *out = calloc(1, 1 << 16);
    REQUIRE(out);
    size_t n = fread(out, 1, (1 << 16) - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static bool exists_in(const char *dir, const char *name)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static struct rb_audit_verify_report verify_dir(const char *dir)
{
    struct rb_audit_verify_report r;
    struct rb_errmsg err = {{0}};
    CHECK_MSG(rb_audit_verify(dir, NULL, &r, &err) == RB_OK, "%s", err.text);
    return r;
}

static const char *seg(uint64_t first)
{
    static char buf[4][64];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, 64, "audit-%020llu.jsonl", (unsigned long long)first);
    return b;
}

int main(void)
{
    const char *base = check_tmpdir("prune");
    char dir[4300];
    struct rb_audit_options o;
    opts_at(base, dir, sizeof dir, &o);
    int64_t now = rb_time_now_us();
    /* Segments: A(1-3) 400 days ago, B(4-6) 300, C(7-9) 200, D(10-12) 100,
     * E(13-15) 5 days ago, F(16-17) today (live). */
    fake_now = now - 400 * DAY_US;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    const int ages[] = {400, 300, 200, 100, 5};
    for (size_t s = 0; s < 5; s++)
        for (int i = 0; i < 3; i++)
            append_at(a, now - ages[s] * DAY_US + i * 1000000, "what is the dosage?");
    append_at(a, now - 1000000, "today");
    append_at(a, now, "today");
    rb_audit_close(a);
    for (uint64_t f = 1; f <= 16; f += 3)
        REQUIRE(exists_in(dir, seg(f)));
    struct rb_audit_verify_report r = verify_dir(dir);
    REQUIRE(r.ok && r.records == 17 && r.files == 6);

    /* Snapshots for the later tamper and refusal cases. */
    char pristine[4400];
    snprintf(pristine, sizeof pristine, "%s/pristine", base);
    sh("mkdir -p '%s'%s", pristine, "");
    sh("cp -a '%s/audit' '%s'", base, pristine);
    sh("cp -a '%s/keys' '%s'", base, pristine);

    /* ---- dry run: reports A and B, changes nothing */
    char *before = snapshot(dir);
    struct rb_audit_prune_report pr;
    o.now_us = NULL;
    REQUIRE(rb_audit_prune(&o, now - 250 * DAY_US, true, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 2);
    CHECK_EQ_INT(pr.records, 6);
    CHECK(pr.n_removed == 2 && strcmp(pr.removed[0].file, seg(1)) == 0 &&
          strcmp(pr.removed[1].file, seg(4)) == 0 && pr.removed[1].last_seq == 6);
    CHECK_EQ_INT(pr.first_kept_seq, 7);
    CHECK_EQ_INT(pr.n_kept, 4);
    /* C is the next one due: its newest record is 200 days (+2 s) old */
    CHECK_EQ_INT(pr.next_due_last_us, now - 200 * DAY_US + 2000000);
    rb_audit_prune_report_free(&pr);
    char *after = snapshot(dir);
    CHECK_STR(before, after);
    CHECK(!exists_in(dir, "prunes.jsonl"));
    free(after);

    /* ---- the prune: exactly A and B go */
    REQUIRE(rb_audit_prune(&o, now - 250 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 2);
    CHECK_EQ_INT(pr.records, 6);
    rb_audit_prune_report_free(&pr);
    CHECK(!exists_in(dir, seg(1)) && !exists_in(dir, seg(4)));
    CHECK(exists_in(dir, seg(7)) && exists_in(dir, seg(10)) && exists_in(dir, seg(13)) &&
          exists_in(dir, seg(16)));
    CHECK(exists_in(dir, "prunes.jsonl") && exists_in(dir, "checkpoints.jsonl"));
    r = verify_dir(dir);
    CHECK_MSG(r.ok, "%s (%s line %llu)", r.problem, r.file, (unsigned long long)r.line);
    CHECK_EQ_INT(r.records, 11);
    CHECK_EQ_INT(r.first_seq, 7);
    CHECK_EQ_INT(r.last_seq, 17);
    CHECK_EQ_INT(r.prunes, 1);
    CHECK_EQ_INT(r.pruned_through, 6);
    CHECK(r.checkpoints >= 5); /* the pruned segments' checkpoints still verify */
    /* idempotent: nothing more is due at the same cutoff */
    REQUIRE(rb_audit_prune(&o, now - 250 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 0);
    CHECK(strstr(pr.note, "older than the cutoff") != NULL);
    rb_audit_prune_report_free(&pr);

    /* Appending after a prune continues the chain. */
    o.now_us = clock_fn;
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    append_at(a, now + 1000000, "after the prune");
    rb_audit_close(a);
    o.now_us = NULL;
    r = verify_dir(dir);
    CHECK_MSG(r.ok && r.last_seq == 18, "%s", r.problem);

    /* ---- a second prune chains to the first: C and D go */
    char snap1[4400];
    snprintf(snap1, sizeof snap1, "%s/after-first", base);
    sh("cp -a '%s' '%s'", dir, snap1);
    REQUIRE(rb_audit_prune(&o, now - 50 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 2);
    CHECK(pr.n_removed == 2 && strcmp(pr.removed[0].file, seg(7)) == 0);
    rb_audit_prune_report_free(&pr);
    r = verify_dir(dir);
    CHECK_MSG(r.ok, "%s", r.problem);
    CHECK_EQ_INT(r.prunes, 2);
    CHECK_EQ_INT(r.pruned_through, 12);
    CHECK_EQ_INT(r.records, 6);

    /* ---- the live segment is never removed, however old the cutoff makes it */
    REQUIRE(rb_audit_prune(&o, now + 30 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 1); /* E only */
    rb_audit_prune_report_free(&pr);
    CHECK(exists_in(dir, seg(16)) && !exists_in(dir, seg(13)));
    r = verify_dir(dir);
    CHECK_MSG(r.ok && r.first_seq == 16 && r.prunes == 3, "%s", r.problem);

    /* ---- tampering after a prune is detected */
    char t[4400];
    snprintf(t, sizeof t, "%s/t1", base);
    /* (1) the oldest retained segment removed */
    fresh_copy(snap1, t);
    sh("rm '%s/%s'", t, seg(7));
    r = verify_dir(t);
    CHECK(!r.ok && strstr(r.problem, "retained segment was removed") != NULL);
    /* (2) a middle retained segment removed */
    fresh_copy(snap1, t);
    sh("rm '%s/%s'", t, seg(10));
    r = verify_dir(t);
    CHECK(!r.ok);
    /* (3) the prune records removed: the missing segments are unexplained */
    fresh_copy(snap1, t);
    sh("rm '%s/%s'", t, "prunes.jsonl");
    r = verify_dir(t);
    CHECK(!r.ok && strstr(r.problem, "no signed prune record") != NULL);
    /* (4) the prune record altered (claims fewer records) */
    fresh_copy(snap1, t);
    sh("sed -i 's/\"records\":6/\"records\":5/' '%s/%s'", t, "prunes.jsonl");
    r = verify_dir(t);
    CHECK(!r.ok && strcmp(r.file, "prunes.jsonl") == 0 && strstr(r.problem, "signature"));
    /* (5) the last of two prune records dropped (rollback) */
    {
        char t2[4400];
        snprintf(t2, sizeof t2, "%s/t2", base);
        fresh_copy(dir, t2);
        sh("sed -i '$d' '%s/%s'", t2, "prunes.jsonl");
        r = verify_dir(t2);
        CHECK(!r.ok);
        /* (6) the first retained record replaced by one that does not continue the anchor */
        fresh_copy(snap1, t2);
        sh("sed -i '1s/\"prev\":\"[0-9a-f]*\"/\"prev\":\""
           "0000000000000000000000000000000000000000000000000000000000000000"
           "\"/' '%s/%s'",
           t2, seg(7));
        r = verify_dir(t2);
        CHECK(!r.ok && strstr(r.problem, "anchors") != NULL);
    }

    /* ---- an interrupted prune (record written, files not yet deleted) */
    snprintf(t, sizeof t, "%s/t3", base);
    fresh_copy(snap1, t);
    {
        char src[4600];
        snprintf(src, sizeof src, "%s/audit/%s", pristine, seg(4));
        sh("cp '%s' '%s'", src, t);
    }
    r = verify_dir(t);
    CHECK_MSG(r.ok && r.pending_removal == 1, "%s", r.problem);
    struct rb_audit_options o2;
    char d2[4400];
    opts_at(base, d2, sizeof d2, &o2);
    o2.dir = t;
    o2.now_us = NULL;
    REQUIRE(rb_audit_prune(&o2, now - 250 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.completed, 1);
    CHECK_EQ_INT(pr.n_removed, 0);
    rb_audit_prune_report_free(&pr);
    CHECK(!exists_in(t, seg(4)));
    r = verify_dir(t);
    CHECK(r.ok && r.pending_removal == 0);

    /* ---- a damaged old segment is kept as evidence: nothing pruned */
    char bad[4400], bad_audit[4500];
    snprintf(bad, sizeof bad, "%s/damaged", base);
    fresh_copy(pristine, bad);
    snprintf(bad_audit, sizeof bad_audit, "%s/audit", bad);
    sh("sed -i '2s/dosage/DOSAGE/' '%s/%s'", bad_audit, seg(1));
    char *bad_before = snapshot(bad_audit);
    o2.dir = bad_audit;
    o2.key_path = NULL;
    CHECK(rb_audit_prune(&o2, now - 250 * DAY_US, false, &pr, &err) == RB_ERR_VERIFY);
    CHECK(strstr(err.text, "kept as evidence") != NULL);
    char *bad_after = snapshot(bad_audit);
    CHECK_STR(bad_before, bad_after);
    free(bad_before);
    free(bad_after);

    /* ---- another key cannot prune: the boundaries' checkpoints do not verify with it */
    char other[4400], other_audit[4500], other_key[4500];
    snprintf(other, sizeof other, "%s/other-key", base);
    fresh_copy(pristine, other);
    snprintf(other_audit, sizeof other_audit, "%s/audit", other);
    snprintf(other_key, sizeof other_key, "%s/intruder.pem", other);
    char other_pub[4500];
    snprintf(other_pub, sizeof other_pub, "%s/intruder.pub.pem", other);
    REQUIRE(rb_audit_export_public_key(other_key, other_pub, true, &err) == RB_OK);
    o2.dir = other_audit;
    o2.key_path = other_key;
    REQUIRE(rb_audit_prune(&o2, now - 250 * DAY_US, false, &pr, &err) == RB_OK);
    CHECK_EQ_INT(pr.n_removed, 0);
    CHECK(strstr(pr.note, "not sealed") != NULL);
    rb_audit_prune_report_free(&pr);
    CHECK(exists_in(other_audit, seg(1)) && !exists_in(other_audit, "prunes.jsonl"));

    /* ---- hostile input: a garbage prunes.jsonl is refused, nothing deleted */
    snprintf(t, sizeof t, "%s/t4", base);
    fresh_copy(pristine, t);
    char t_audit[4500];
    snprintf(t_audit, sizeof t_audit, "%s/audit", t);
    sh("printf '{\"sig\":\"zz\"}\\n\\001\\002' > '%s/%s'", t_audit, "prunes.jsonl");
    o2.dir = t_audit;
    o2.key_path = NULL;
    CHECK(rb_audit_prune(&o2, now - 250 * DAY_US, false, &pr, &err) == RB_ERR_VERIFY);
    CHECK(exists_in(t_audit, seg(1)));
    r = verify_dir(t_audit);
    CHECK(!r.ok && strcmp(r.file, "prunes.jsonl") == 0);
    /* and a trail with no audit directory at all is not an error */
    o2.dir = "/nonexistent/ragbox/audit";
    CHECK(rb_audit_prune(&o2, now, false, &pr, &err) == RB_OK && pr.n_removed == 0);

    free(before);
    return check_finish();
}
