/* The CLI over a real trail: audit verify exit status and location after a
 * one-byte edit, export with filters (JSONL and CSV), query, pubkey; redact
 * and verticals check. Runs the built `ragbox` binary. */
#include <sys/wait.h>

#include "check.h"
#include "ragbox/audit.h"

static char out_buf[1 << 16];

/* Runs a shell command, captures stdout+stderr into out_buf, returns the exit status. */
static int run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t n = fread(out_buf, 1, sizeof out_buf - 1, p);
    out_buf[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    const char *bin = getenv("RAGBOX_BIN");
    if (!bin || access(bin, X_OK) != 0)
        CHECK_SKIP("the ragbox binary is not built");
    const char *data = check_tmpdir("cli");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/audit", data);
    struct rb_audit_options o;
    rb_audit_options_default(&o);
    o.dir = dir;
    o.sync = false;
    o.syslog = false;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_audit_open(&o, &a, &err) == RB_OK);
    const char *users[] = {"alice", "bob", "alice", "carol"};
    for (int i = 0; i < 4; i++) {
        struct rb_audit_event ev = {.action = i == 3 ? RB_AUDIT_LOGIN_FAILURE : RB_AUDIT_QUERY,
                                    .user = users[i], .client = "203.0.113.5",
                                    .collection = "filings", .query = "=HYPERLINK(\"x\")",
                                    .outcome = i == 3 ? "denied" : "answered", .latency_ms = 10 + i};
        REQUIRE(rb_audit_append(a, &ev, NULL) == RB_OK);
    }
    rb_audit_close(a);

    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit verify 2>&1", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strstr(out_buf, "audit trail OK: 4 records") != NULL);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit verify --json", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strstr(out_buf, "\"ok\":true") != NULL);

    /* export: only alice, JSONL lines byte for byte */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit export --user alice --from 2000-01-01 2>/dev/null", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    int lines = 0;
    for (char *p = out_buf; (p = strchr(p, '\n')); p++)
        lines++;
    CHECK_EQ_INT(lines, 2);
    CHECK(strstr(out_buf, "\"user\":\"bob\"") == NULL);
    /* CSV: formula defused, header */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit export --format csv --action query 2>/dev/null", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strncmp(out_buf, "seq,time,", 9) == 0);
    CHECK(strstr(out_buf, "\"'=HYPERLINK(\"\"x\"\")\"") != NULL);
    CHECK(strstr(out_buf, "carol") == NULL);
    /* query by outcome */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit query --outcome denied", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strstr(out_buf, "login_failure") && strstr(out_buf, "carol"));
    /* bad filter is a usage error */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit export --from yesterday 2>&1", bin, data);
    CHECK_EQ_INT(run(cmd), 2);
    /* pubkey export, then verify against the exported copy */
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit pubkey --out '%s/officer.pem' 2>&1 && '%s' --data '%s' audit verify --pubkey '%s/officer.pem'",
             bin, data, data, bin, data, data);
    CHECK_EQ_INT(run(cmd), 0);

    /* one-byte edit: exit 1, names file, line and seq */
    snprintf(cmd, sizeof cmd, "sed -i '2s/\"user\":\"bob\"/\"user\":\"bot\"/' '%s/audit-00000000000000000001.jsonl'", dir);
    REQUIRE(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' audit verify 2>&1", bin, data);
    CHECK_EQ_INT(run(cmd), 1);
    CHECK(strstr(out_buf, "BROKEN") && strstr(out_buf, "audit-00000000000000000001.jsonl line 3") &&
          strstr(out_buf, "seq 3"));

    /* redact: spans and redacted text, JSON */
    char sample[4300];
    snprintf(sample, sizeof sample, "%s/sample.txt", data);
    const char *text = "客户张某，身份证号11010519491231002X，手机13800138000；revenue 4,111,111.\n";
    REQUIRE(rb_fs_write_atomic(sample, text, strlen(text)) == RB_OK);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' redact --json '%s'", bin, data, sample);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strstr(out_buf, "\"count\":2") && strstr(out_buf, "[REDACTED:CN_ID]") &&
          strstr(out_buf, "4,111,111"));
    snprintf(cmd, sizeof cmd, "printf 'MRN: 00123456\\n' | '%s' --data '%s' redact --vertical healthcare --text-only -", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK_STR(out_buf, "MRN: [REDACTED:MRN]\n");
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' redact /nonexistent/file 2>&1", bin, data);
    CHECK_EQ_INT(run(cmd), 1);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' verticals check", bin, data);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(strstr(out_buf, "ok    government") != NULL);
    /* an administrator's override in DATA/verticals wins, and a broken one is reported */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/verticals' && cp -r '%s/verticals/packs/finance' '%s/verticals/' && "
             "printf '\\n{{bogus}}\\n' >> '%s/verticals/finance/templates/answer.zh.tmpl' && '%s' --data '%s' verticals check finance",
             data, getenv("RAGBOX_SOURCE"), data, data, bin, data);
    CHECK_EQ_INT(run(cmd), 1);
    CHECK(strstr(out_buf, "answer.zh.tmpl:") && strstr(out_buf, "{{bogus}}"));
    return check_finish();
}
