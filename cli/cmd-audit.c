/* ragbox audit verify|export|query|pubkey|checkpoint: the auditor's view of
 * the trail. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ragbox/audit.h"

/* The audit directory and key from the configuration ([audit] dir, key). */
static int audit_paths(struct rb_cli *cli, struct rb_audit_options *o, char **paths)
{
    struct rb_errmsg err = {{0}};
    if (rb_audit_options_from_config(o, cli->config, cli->data_dir, paths, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    return RB_EXIT_OK;
}

int rb_cmd_audit_verify(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox audit verify [--pubkey FILE] [--dir DIR] [--json]\n"
        "\n"
        "Checks the whole audit trail: every record parses, seq numbers run without\n"
        "gaps, each record carries the SHA-256 of the one before (across rotated\n"
        "files), every checkpoint's Ed25519 signature holds and matches the record\n"
        "it names, and the signed head matches the end of the log (truncation).\n"
        "After retention removed old segments, the chain starts where the last signed\n"
        "prune record (prunes.jsonl) anchors it; any other missing file is reported.\n"
        "Reports the first problem with its file, line and seq.\n"
        "\n"
        "  --pubkey FILE  the public key to trust (default DATA/keys/audit-ed25519.pub.pem;\n"
        "                 auditors should pass their own exported copy)\n"
        "  --dir DIR      the audit directory (default [audit] dir or DATA/audit)\n"
        "  --json         print the report as JSON\n"
        "\n"
        "Exit status: 0 only when the whole chain holds; 1 when it does not or\n"
        "verification could not run; 2 usage.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"pubkey", required_argument, NULL, 'p'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *pubkey = NULL, *dir = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pubkey = optarg; break;
        case 'd': dir = optarg; break;
        case 'j': json = true; break;
        default: return rb_cli_usage("audit verify", "unknown option");
        }
    }
    if (optind != argc)
        return rb_cli_usage("audit verify", "unexpected argument '%s'", argv[optind]);
    struct rb_audit_options o;
    char *paths = NULL;
    int rc = audit_paths(cli, &o, &paths);
    if (rc != RB_EXIT_OK)
        return rc;
    char *pub_default = NULL;
    if (!pubkey) {
        size_t n = strlen(o.key_path);
        pub_default = n > 4 && strcmp(o.key_path + n - 4, ".pem") == 0
                          ? rb_asprintf("%.*s.pub.pem", (int)(n - 4), o.key_path)
                          : rb_asprintf("%s.pub.pem", o.key_path);
        pubkey = pub_default;
    }
    if (!dir)
        dir = o.dir;
    struct rb_audit_verify_report r;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_audit_verify(dir, pubkey, &r, &err);
    if (st != RB_OK) {
        rc = rb_cli_fail("audit verify: %s", err.text);
    } else if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "ok", r.ok);
        cJSON_AddNumberToObject(j, "records", (double)r.records);
        cJSON_AddNumberToObject(j, "files", (double)r.files);
        cJSON_AddNumberToObject(j, "checkpoints", (double)r.checkpoints);
        cJSON_AddNumberToObject(j, "first_seq", (double)r.first_seq);
        cJSON_AddNumberToObject(j, "last_seq", (double)r.last_seq);
        cJSON_AddNumberToObject(j, "unsealed", (double)r.unsealed);
        cJSON_AddNumberToObject(j, "prunes", (double)r.prunes);
        cJSON_AddNumberToObject(j, "pruned_through", (double)r.pruned_through);
        cJSON_AddNumberToObject(j, "pending_removal", (double)r.pending_removal);
        if (!r.ok) {
            cJSON_AddStringToObject(j, "problem", r.problem);
            cJSON_AddStringToObject(j, "file", r.file);
            cJSON_AddNumberToObject(j, "line", (double)r.line);
            cJSON_AddNumberToObject(j, "seq", (double)r.seq);
        }
        char *text = rb_json_print(j);
        puts(text ? text : "{}");
        free(text);
        cJSON_Delete(j);
        rc = r.ok ? RB_EXIT_OK : RB_EXIT_FAIL;
    } else if (r.ok) {
        printf("audit trail OK: %llu records (seq %llu..%llu) in %llu file(s), %llu signed "
               "checkpoint(s) verified%s\n",
               (unsigned long long)r.records, (unsigned long long)r.first_seq,
               (unsigned long long)r.last_seq, (unsigned long long)r.files,
               (unsigned long long)r.checkpoints,
               r.unsealed ? "; 1 record after the head (interrupted append, sealed at the next)" : "");
        if (r.prunes)
            printf("retention: records 1..%llu were removed in %llu signed prune record(s); the "
                   "chain is anchored at seq %llu%s\n",
                   (unsigned long long)r.pruned_through, (unsigned long long)r.prunes,
                   (unsigned long long)r.pruned_through + 1,
                   r.pending_removal ? " (pruned segments still present: the next 'ragbox "
                                       "retention run' deletes them)"
                                     : "");
    } else {
        fprintf(stderr, "audit trail BROKEN: %s%s%s", dir, r.file[0] ? "/" : "", r.file);
        if (r.line)
            fprintf(stderr, " line %llu", (unsigned long long)r.line);
        if (r.seq)
            fprintf(stderr, " (seq %llu)", (unsigned long long)r.seq);
        fprintf(stderr, ": %s\n", r.problem);
        fprintf(stderr, "%llu record(s) verified before the problem\n",
                (unsigned long long)r.records);
        rc = RB_EXIT_FAIL;
    }
    free(pub_default);
    free(paths);
    return rc;
}

/* Shared filter options of export and query. Returns -1 when consumed
 * nothing, else an exit code (0 = ok). */
struct filter_opts {
    struct rb_audit_filter f;
    const char *format;
    const char *out;
    const char *dir;
    bool json;
};

static int parse_filter(const char *cmd, int argc, char **argv, struct filter_opts *fo)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},    {"to", required_argument, NULL, 't'},
        {"user", required_argument, NULL, 'u'},    {"action", required_argument, NULL, 'a'},
        {"collection", required_argument, NULL, 'c'}, {"outcome", required_argument, NULL, 'o'},
        {"grep", required_argument, NULL, 'g'},    {"seq", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'l'},   {"format", required_argument, NULL, 'F'},
        {"out", required_argument, NULL, 'O'},     {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},          {NULL, 0, NULL, 0},
    };
    rb_audit_filter_init(&fo->f);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case 'f':
        case 't': {
            int64_t *slot = c == 'f' ? &fo->f.from_us : &fo->f.to_us;
            if (rb_audit_parse_time(optarg, slot) != RB_OK)
                return rb_cli_usage(cmd, "--%s: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)",
                                    c == 'f' ? "from" : "to");
            /* a bare date for --to means through the end of that day */
            if (c == 't' && strlen(optarg) == 10)
                *slot += 86400LL * 1000000;
            break;
        }
        case 'u': fo->f.user = optarg; break;
        case 'a': {
            enum rb_audit_action a;
            if (rb_audit_action_parse(optarg, &a) != RB_OK)
                return rb_cli_usage(cmd, "--action: unknown action '%s'", optarg);
            fo->f.action = (int)a;
            break;
        }
        case 'c': fo->f.collection = optarg; break;
        case 'o': fo->f.outcome = optarg; break;
        case 'g': fo->f.text = optarg; break;
        case 's': {
            const char *dash = strchr(optarg, '-');
            int64_t lo, hi;
            char buf[64];
            if (dash && (size_t)(dash - optarg) < sizeof buf) {
                snprintf(buf, sizeof buf, "%.*s", (int)(dash - optarg), optarg);
                if ((buf[0] && rb_parse_i64(buf, &lo) != RB_OK) ||
                    (dash[1] && rb_parse_i64(dash + 1, &hi) != RB_OK))
                    return rb_cli_usage(cmd, "--seq: expected N, N-M, N- or -M");
                fo->f.seq_min = buf[0] ? (uint64_t)lo : 0;
                fo->f.seq_max = dash[1] ? (uint64_t)hi : 0;
            } else if (rb_parse_i64(optarg, &lo) == RB_OK && lo > 0) {
                fo->f.seq_min = fo->f.seq_max = (uint64_t)lo;
            } else {
                return rb_cli_usage(cmd, "--seq: expected N, N-M, N- or -M");
            }
            break;
        }
        case 'l':
            if (rb_parse_i64(optarg, &v) != RB_OK || v < 0)
                return rb_cli_usage(cmd, "--limit: expected a number");
            fo->f.limit = (size_t)v;
            break;
        case 'F': fo->format = optarg; break;
        case 'O': fo->out = optarg; break;
        case 'd': fo->dir = optarg; break;
        case 'j': fo->json = true; break;
        default: return rb_cli_usage(cmd, "unknown option");
        }
    }
    if (optind != argc)
        return rb_cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return RB_EXIT_OK;
}

#define FILTER_HELP                                                                                \
    "  --from T       records at or after T (UTC: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)\n"           \
    "  --to T         records before T (a bare date includes that whole day)\n"                   \
    "  --user U       only user U\n"                                                               \
    "  --action A     query, answer, search, document_view, ingest, deletion, login,\n"           \
    "                 login_failure, logout, denial, admin_change, forget, export, batch, system\n" \
    "  --collection C only collection C\n"                                                         \
    "  --outcome O    only outcome O (answered, refused, denied, error, ok...)\n"                  \
    "  --grep TEXT    only records whose line contains TEXT\n"                                     \
    "  --seq N|N-M    only these sequence numbers (audit ids)\n"                                   \
    "  --limit N      at most N records\n"                                                         \
    "  --dir DIR      the audit directory (default [audit] dir or DATA/audit)\n"

int rb_cmd_audit_export(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox audit export [--from T] [--to T] [--user U] [FILTERS]\n"
        "                           [--format jsonl|csv] [--out FILE]\n"
        "\n"
        "Writes the matching records for the compliance officer: JSONL (the records\n"
        "byte for byte, so their hashes can be re-checked) or CSV (RFC 4180, one\n"
        "column per field; cells that a spreadsheet would run as a formula get a\n"
        "leading apostrophe). Run 'ragbox audit verify' first to prove the trail.\n"
        "\n" FILTER_HELP
        "  --format F     jsonl (default) or csv\n"
        "  --out FILE     write to FILE (default standard output)\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    struct filter_opts fo = {0};
    int rc = parse_filter("audit export", argc, argv, &fo);
    if (rc != RB_EXIT_OK)
        return rc;
    enum rb_audit_format format = RB_AUDIT_FORMAT_JSONL;
    if (fo.format && strcmp(fo.format, "csv") == 0)
        format = RB_AUDIT_FORMAT_CSV;
    else if (fo.format && strcmp(fo.format, "jsonl") != 0)
        return rb_cli_usage("audit export", "--format: jsonl or csv");
    struct rb_audit_options o;
    char *paths = NULL;
    if ((rc = audit_paths(cli, &o, &paths)) != RB_EXIT_OK)
        return rc;
    FILE *out = fo.out ? fopen(fo.out, "w") : stdout;
    if (!out) {
        free(paths);
        return rb_cli_fail("cannot create %s", fo.out);
    }
    struct rb_errmsg err = {{0}};
    size_t n = 0;
    enum rb_status st = rb_audit_export(fo.dir ? fo.dir : o.dir, &fo.f, format, out, &n, &err);
    if (fo.out && fclose(out) != 0 && st == RB_OK)
        st = rb_errmsg_set(&err, RB_ERR_IO, "cannot write %s", fo.out);
    free(paths);
    if (st != RB_OK)
        return rb_cli_fail("audit export: %s", err.text);
    fprintf(stderr, "%zu record(s) exported\n", n);
    return RB_EXIT_OK;
}

static enum rb_status print_row(void *user, const cJSON *rec, const char *line, size_t len)
{
    bool json = *(bool *)user;
    if (json) {
        fwrite(line, 1, len, stdout);
        putchar('\n');
        return RB_OK;
    }
    const char *q = rb_json_str(rec, "query");
    const char *target = rb_json_str(rec, "target");
    printf("%-8.0f %-27s %-14s %-16s %-16s %-12s %-9s %s\n",
           rb_json_num(rec, "seq", 0), rb_json_str(rec, "time") ? rb_json_str(rec, "time") : "",
           rb_json_str(rec, "action") ? rb_json_str(rec, "action") : "",
           rb_json_str(rec, "user") ? rb_json_str(rec, "user") : "-",
           rb_json_str(rec, "client") ? rb_json_str(rec, "client") : "-",
           rb_json_str(rec, "collection") ? rb_json_str(rec, "collection") : "-",
           rb_json_str(rec, "outcome") ? rb_json_str(rec, "outcome") : "-",
           q ? q : target ? target : "");
    return ferror(stdout) ? RB_ERR_IO : RB_OK;
}

int rb_cmd_audit_query(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox audit query [FILTERS] [--json]\n"
        "\n"
        "Lists matching records, one per line (seq, time, action, user, client,\n"
        "collection, outcome, redacted query or target); --json prints the records.\n"
        "\n" FILTER_HELP "  --json         the records as JSON lines\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    struct filter_opts fo = {0};
    int rc = parse_filter("audit query", argc, argv, &fo);
    if (rc != RB_EXIT_OK)
        return rc;
    if (fo.format || fo.out)
        return rb_cli_usage("audit query", "--format/--out belong to 'audit export'");
    struct rb_audit_options o;
    char *paths = NULL;
    if ((rc = audit_paths(cli, &o, &paths)) != RB_EXIT_OK)
        return rc;
    if (!fo.json)
        printf("%-8s %-27s %-14s %-16s %-16s %-12s %-9s %s\n", "SEQ", "TIME (UTC)", "ACTION",
               "USER", "CLIENT", "COLLECTION", "OUTCOME", "QUERY/TARGET");
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_audit_scan(fo.dir ? fo.dir : o.dir, &fo.f, print_row, &fo.json, &err);
    free(paths);
    if (st != RB_OK)
        return rb_cli_fail("audit query: %s", err.text[0] ? err.text : rb_status_str(st));
    return RB_EXIT_OK;
}

int rb_cmd_audit_pubkey(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        puts("Usage: ragbox audit pubkey [--out FILE]\n\n"
             "Exports the public half of the audit signing key (creating the key on first\n"
             "use) for the compliance officer, who verifies with\n"
             "'ragbox audit verify --pubkey FILE'. Without --out, prints the PEM.");
        return RB_EXIT_OK;
    }
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else
            return rb_cli_usage("audit pubkey", "unexpected argument '%s'", argv[i]);
    }
    struct rb_audit_options o;
    char *paths = NULL;
    int rc = audit_paths(cli, &o, &paths);
    if (rc != RB_EXIT_OK)
        return rc;
    struct rb_errmsg err = {{0}};
    char *target = out ? rb_strdup(out) : rb_asprintf("%s/.pubkey.%ld.pem", o.dir, (long)getpid());
    enum rb_status st = target ? rb_fs_mkdirs(o.dir, 0700) : RB_ERR_NOMEM;
    if (st == RB_OK)
        st = rb_audit_export_public_key(o.key_path, target, true, &err);
    if (st == RB_OK && !out) {
        char *pem = NULL;
        size_t len = 0;
        if (rb_fs_read_file(target, 1 << 16, &pem, &len) == RB_OK)
            fwrite(pem, 1, len, stdout);
        free(pem);
        unlink(target);
    }
    free(target);
    free(paths);
    if (st != RB_OK)
        return rb_cli_fail("audit pubkey: %s", err.text);
    if (out)
        fprintf(stderr, "public key written to %s\n", out);
    return RB_EXIT_OK;
}

int rb_cmd_audit_checkpoint(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        puts("Usage: ragbox audit checkpoint\n\n"
             "Writes a signed checkpoint for the last record now (e.g. before taking a\n"
             "backup or handing the trail to an auditor).");
        return RB_EXIT_OK;
    }
    if (argc > 1)
        return rb_cli_usage("audit checkpoint", "no arguments expected");
    struct rb_audit_options o;
    char *paths = NULL;
    int rc = audit_paths(cli, &o, &paths);
    if (rc != RB_EXIT_OK)
        return rc;
    o.syslog = false;
    struct rb_audit *a = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_audit_open(&o, &a, &err) != RB_OK) {
        free(paths);
        return rb_cli_fail("audit: %s", err.text);
    }
    enum rb_status st = rb_audit_checkpoint(a);
    if (st != RB_OK)
        rc = rb_cli_fail("audit checkpoint: %s", rb_audit_errmsg(a));
    else
        puts("checkpoint written");
    rb_audit_close(a);
    free(paths);
    return rc;
}
