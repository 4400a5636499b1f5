/* ragbox redact, ragbox verticals list|show|check: the vertical packs and
 * the redaction rules from the command line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ragbox/verticals.h"

#define MAX_INPUT ((size_t)256 << 20)

static enum rb_status read_input(const char *path, char **data, size_t *len)
{
    if (strcmp(path, "-") != 0)
        return rb_fs_read_file(path, MAX_INPUT, data, len);
    struct rb_buf b;
    rb_buf_init(&b, MAX_INPUT);
    char tmp[65536];
    size_t n;
    enum rb_status st = RB_OK;
    while (st == RB_OK && (n = fread(tmp, 1, sizeof tmp, stdin)) > 0)
        st = rb_buf_append(&b, tmp, n);
    if (st == RB_OK && ferror(stdin))
        st = RB_ERR_IO;
    if (st != RB_OK) {
        rb_buf_free(&b);
        return st;
    }
    *len = b.len;
    *data = b.len ? rb_buf_steal(&b) : rb_strdup("");
    return *data ? RB_OK : RB_ERR_NOMEM;
}

int rb_cmd_redact(struct rb_cli *cli, int argc, char **argv)
{
    static const char usage[] =
        "Usage: ragbox redact [--vertical NAME] [--types LIST] [--json] FILE|-\n"
        "\n"
        "Shows what the redaction rules would remove from a UTF-8 text file (or\n"
        "standard input with '-'): each span with its type and byte offsets, then\n"
        "the redacted text with [REDACTED:TYPE] tags.\n"
        "\n"
        "  --vertical NAME  use that pack's rules (default: every rule)\n"
        "  --types LIST     comma list of card, iban, ssn, cn_id, phone, email,\n"
        "                   dob, mrn, account (overrides the pack's list)\n"
        "  --json           one JSON object: {spans:[{type,start,end,text}],\n"
        "                   redacted, count}\n"
        "  --text-only      print only the redacted text\n"
        "\n"
        "Numbers are validated (Luhn, IBAN mod-97, GB 11643 check digit, SSN rules,\n"
        "dates, numbering plans) so look-alike figures are left alone.\n"
        "Exit status: 0 success, 1 error, 2 usage.\n";
    if (rb_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {
        {"vertical", required_argument, NULL, 'v'}, {"types", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},           {"text-only", no_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    const char *vertical = NULL, *types = NULL;
    bool json = false, text_only = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'v': vertical = optarg; break;
        case 't': types = optarg; break;
        case 'j': json = true; break;
        case 'x': text_only = true; break;
        default: return rb_cli_usage("redact", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return rb_cli_usage("redact", "expected one FILE (or - for standard input)");
    const char *path = argv[optind];
    struct rb_errmsg err = {{0}};
    struct rb_vertical *v = NULL;
    struct rb_redactor *own = NULL;
    const struct rb_redactor *r = NULL;
    unsigned mask = 0;
    if (types) {
        char *copy = rb_strdup(types);
        char *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ", ", &save) : NULL; tok;
             tok = strtok_r(NULL, ", ", &save)) {
            enum rb_pii_type t;
            if (rb_pii_type_parse(tok, &t) != RB_OK) {
                free(copy);
                return rb_cli_usage("redact", "--types: unknown type '%s'", tok);
            }
            mask |= RB_PII_MASK(t);
        }
        free(copy);
    }
    if (vertical) {
        if (rb_vertical_open(vertical, cli->data_dir, cli->config, &v, &err) != RB_OK)
            return rb_cli_fail("%s", err.text);
        r = rb_vertical_redactor(v);
        if (!types && !r) {
            rb_vertical_free(v);
            return rb_cli_fail("vertical %s has no redaction rules (redaction.rules = none)", vertical);
        }
    }
    if (!r || types) {
        struct rb_redactor_options o = {
            .types = mask,
            .account_context = v ? rb_config_str(rb_vertical_config(v), "redaction",
                                                 "account_context", NULL)
                                 : NULL,
        };
        if (rb_redactor_create(&o, &own, &err) != RB_OK) {
            rb_vertical_free(v);
            return rb_cli_fail("%s", err.text);
        }
        r = own;
    }
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = read_input(path, &text, &len);
    if (st != RB_OK) {
        rb_redactor_free(own);
        rb_vertical_free(v);
        return rb_cli_fail("%s: %s", path, rb_status_str(st));
    }
    struct rb_redact_span *spans = NULL;
    size_t n = 0;
    char *red = NULL;
    st = rb_redact_find(r, text, len, &spans, &n, &err);
    if (st == RB_OK)
        st = rb_redact_text(r, text, len, &red, NULL, NULL, &err);
    int rc = RB_EXIT_OK;
    if (st != RB_OK) {
        rc = rb_cli_fail("%s: %s", path, err.text);
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "spans");
        for (size_t i = 0; i < n; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "type", rb_pii_type_name(spans[i].type));
            cJSON_AddNumberToObject(s, "start", (double)spans[i].start);
            cJSON_AddNumberToObject(s, "end", (double)spans[i].end);
            char *frag = rb_strndup(text + spans[i].start, spans[i].end - spans[i].start);
            cJSON_AddStringToObject(s, "text", frag ? frag : "");
            free(frag);
            cJSON_AddItemToArray(arr, s);
        }
        cJSON_AddNumberToObject(o, "count", (double)n);
        cJSON_AddStringToObject(o, "redacted", red);
        char *out = rb_json_print(o);
        if (out)
            puts(out);
        free(out);
        cJSON_Delete(o);
    } else if (text_only) {
        fputs(red, stdout);
    } else {
        printf("%zu span(s) to redact in %s\n", n, path);
        for (size_t i = 0; i < n; i++) {
            /* line number of the span, for humans */
            size_t line = 1;
            for (size_t k = 0; k < spans[i].start; k++)
                line += text[k] == '\n';
            printf("  line %zu, bytes %zu-%zu  %-8s %.*s\n", line, spans[i].start, spans[i].end,
                   rb_pii_type_name(spans[i].type), (int)(spans[i].end - spans[i].start),
                   text + spans[i].start);
        }
        printf("--- redacted text ---\n%s", red);
        if (len && red[strlen(red) - 1] != '\n')
            putchar('\n');
    }
    free(red);
    free(spans);
    free(text);
    rb_redactor_free(own);
    rb_vertical_free(v);
    return rc;
}

int rb_cmd_verticals_list(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        puts("Usage: ragbox verticals list\n\n"
             "Lists the vertical packs found on the search path (first hit wins):\n"
             "[verticals] dir, DATA/verticals, $RAGBOX_VERTICALS_DIR,\n"
             "/usr/share/ragbox/verticals; with version and directory.");
        return RB_EXIT_OK;
    }
    if (argc > 1)
        return rb_cli_usage("verticals list", "no arguments expected");
    char **names;
    size_t n;
    if (rb_vertical_list(cli->data_dir, cli->config, &names, &n) != RB_OK)
        return rb_cli_fail("out of memory");
    int rc = RB_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        struct rb_vertical *v = NULL;
        struct rb_errmsg err = {{0}};
        if (rb_vertical_open(names[i], cli->data_dir, cli->config, &v, &err) == RB_OK) {
            printf("%-12s %-12s %s  (%s)\n", names[i], rb_vertical_version(v),
                   rb_vertical_description(v), rb_vertical_dir(v));
            rb_vertical_free(v);
        } else {
            printf("%-12s BROKEN: %s\n", names[i], err.text);
            rc = RB_EXIT_FAIL;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static void print_pack(const struct rb_vertical *v)
{
    const struct rb_vertical_policy *p = rb_vertical_policy(v);
    const struct rb_vertical_chunking *c = rb_vertical_chunking(v);
    const struct rb_vertical_redaction *r = rb_vertical_redaction(v);
    printf("pack:        %s %s\n", rb_vertical_name(v), rb_vertical_version(v));
    printf("directory:   %s\n", rb_vertical_dir(v));
    printf("description: %s\n", rb_vertical_description(v));
    printf("answer:      min_evidence %.2f, min_citation_coverage %.2f, max_sentences %zu%s%s%s\n",
           p->min_evidence, p->min_citation_coverage, p->max_sentences,
           p->figures_from_sources ? ", figures from sources" : "",
           p->never_invent_dosages ? ", never invent dosages" : "",
           p->disclaimer_required ? ", disclaimer required" : "");
    for (int l = 0; l < RB_VERTICAL_LANG_COUNT; l++)
        if (p->disclaimer[l])
            printf("disclaimer %s: %s\n", rb_vertical_lang_name((enum rb_vertical_lang)l),
                   p->disclaimer[l]);
    printf("chunking:    %zu tokens, overlap %zu, %zu heading pattern(s)\n", c->chunk_tokens,
           c->overlap_tokens, c->n_heading_patterns);
    printf("redaction:  ");
    for (int t = 0; t < RB_PII_COUNT; t++)
        if (r->types & RB_PII_MASK(t))
            printf(" %s", rb_pii_type_name((enum rb_pii_type)t));
    printf("%s (audit %s, answers %s, ingest %s)\n", r->types ? "" : " none",
           r->apply_to_audit ? "yes" : "no", r->apply_to_answers ? "yes" : "no",
           r->apply_to_ingest ? "yes" : "no");
    printf("templates:\n");
    for (size_t i = 0; i < rb_vertical_template_count(v); i++) {
        const struct rb_template *t = rb_vertical_template_at(v, i);
        printf("  %-28s version %-12s %s\n", rb_template_id(t), rb_template_version(t),
               rb_template_path(t));
    }
}

int rb_cmd_verticals_show(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        puts("Usage: ragbox verticals show NAME [--template NAME.LANG]\n\n"
             "Prints a pack's policy, chunking hints, redaction rules and templates;\n"
             "with --template, the raw template (e.g. --template draft-notice.zh).");
        return RB_EXIT_OK;
    }
    const char *name = NULL, *tmpl = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--template") == 0 && i + 1 < argc)
            tmpl = argv[++i];
        else if (argv[i][0] == '-' || name)
            return rb_cli_usage("verticals show", "unexpected argument '%s'", argv[i]);
        else
            name = argv[i];
    }
    if (!name)
        return rb_cli_usage("verticals show", "expected a pack NAME");
    struct rb_vertical *v = NULL;
    struct rb_errmsg err = {{0}};
    if (rb_vertical_open(name, cli->data_dir, cli->config, &v, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    int rc = RB_EXIT_OK;
    if (tmpl) {
        const char *dot = strrchr(tmpl, '.');
        enum rb_vertical_lang lang = RB_VERTICAL_EN;
        char tname[64];
        if (dot && (strcmp(dot, ".zh") == 0 || strcmp(dot, ".en") == 0)) {
            lang = strcmp(dot, ".zh") == 0 ? RB_VERTICAL_ZH : RB_VERTICAL_EN;
            snprintf(tname, sizeof tname, "%.*s", (int)(dot - tmpl), tmpl);
        } else {
            rb_strlcpy(tname, tmpl, sizeof tname);
        }
        const struct rb_template *t = rb_vertical_template(v, tname, lang);
        if (!t)
            rc = rb_cli_fail("pack %s has no template %s", name, tmpl);
        else
            printf("# %s version %s (%s)\n--- system\n%s\n--- user\n%s\n", rb_template_id(t),
                   rb_template_version(t), rb_template_path(t), rb_template_system(t),
                   rb_template_user(t));
    } else {
        print_pack(v);
    }
    rb_vertical_free(v);
    return rc;
}

int rb_cmd_verticals_check(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        puts("Usage: ragbox verticals check [NAME|DIR]...\n\n"
             "Validates packs (every pack on the search path when none is named): pack.ini\n"
             "keys and values, heading patterns, template headers, sections, placeholders\n"
             "and encoding. Errors name the file and line. Exit 0 only when all are valid.");
        return RB_EXIT_OK;
    }
    char **names = NULL;
    size_t n = 0;
    bool listed = argc <= 1;
    if (listed && rb_vertical_list(cli->data_dir, cli->config, &names, &n) != RB_OK)
        return rb_cli_fail("out of memory");
    if (listed && n == 0)
        return rb_cli_fail("no vertical packs found");
    int rc = RB_EXIT_OK;
    size_t count = listed ? n : (size_t)(argc - 1);
    for (size_t i = 0; i < count; i++) {
        const char *what = listed ? names[i] : argv[i + 1];
        struct rb_vertical *v = NULL;
        struct rb_errmsg err = {{0}};
        enum rb_status st = strchr(what, '/') || rb_fs_is_dir(what)
                                ? rb_vertical_load_dir(what, &v, &err)
                                : rb_vertical_open(what, cli->data_dir, cli->config, &v, &err);
        if (st == RB_OK) {
            printf("ok    %s (%s, %zu templates)\n", rb_vertical_name(v), rb_vertical_dir(v),
                   rb_vertical_template_count(v));
        } else {
            printf("FAIL  %s: %s\n", what, err.text);
            rc = RB_EXIT_FAIL;
        }
        rb_vertical_free(v);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
