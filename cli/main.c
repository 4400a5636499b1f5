/* ragbox: global options, configuration, and dispatch to subcommands. */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Subcommands, by area (each defined in its cmd-<area>.c). */
#define RB_CLI_DECLARE(fn) int fn(struct rb_cli *cli, int argc, char **argv);
RB_CLI_DECLARE(rb_cmd_version)
RB_CLI_DECLARE(rb_cmd_collection_create)
RB_CLI_DECLARE(rb_cmd_collection_list)
RB_CLI_DECLARE(rb_cmd_collection_delete)
RB_CLI_DECLARE(rb_cmd_collection_policy)
RB_CLI_DECLARE(rb_cmd_index_add)
RB_CLI_DECLARE(rb_cmd_index_stats)
RB_CLI_DECLARE(rb_cmd_index_verify)
RB_CLI_DECLARE(rb_cmd_index_rebuild)
RB_CLI_DECLARE(rb_cmd_search)
RB_CLI_DECLARE(rb_cmd_ingest)
RB_CLI_DECLARE(rb_cmd_ingest_status)
RB_CLI_DECLARE(rb_cmd_ingestd)
RB_CLI_DECLARE(rb_cmd_tokenize)
RB_CLI_DECLARE(rb_cmd_model_info)
RB_CLI_DECLARE(rb_cmd_generate)
RB_CLI_DECLARE(rb_cmd_embed)
RB_CLI_DECLARE(rb_cmd_bench)
RB_CLI_DECLARE(rb_cmd_model_quantize)
RB_CLI_DECLARE(rb_cmd_audit_verify)
RB_CLI_DECLARE(rb_cmd_audit_export)
RB_CLI_DECLARE(rb_cmd_audit_query)
RB_CLI_DECLARE(rb_cmd_audit_pubkey)
RB_CLI_DECLARE(rb_cmd_audit_checkpoint)
RB_CLI_DECLARE(rb_cmd_redact)
RB_CLI_DECLARE(rb_cmd_verticals_list)
RB_CLI_DECLARE(rb_cmd_verticals_show)
RB_CLI_DECLARE(rb_cmd_verticals_check)
RB_CLI_DECLARE(rb_cmd_serve)
RB_CLI_DECLARE(rb_cmd_user_add)
RB_CLI_DECLARE(rb_cmd_user_list)
RB_CLI_DECLARE(rb_cmd_user_del)
RB_CLI_DECLARE(rb_cmd_user_set)
RB_CLI_DECLARE(rb_cmd_group_add)
RB_CLI_DECLARE(rb_cmd_group_del)
RB_CLI_DECLARE(rb_cmd_group_member)
RB_CLI_DECLARE(rb_cmd_group_list)
RB_CLI_DECLARE(rb_cmd_apikey_create)
RB_CLI_DECLARE(rb_cmd_apikey_list)
RB_CLI_DECLARE(rb_cmd_apikey_revoke)
RB_CLI_DECLARE(rb_cmd_grant_set)
RB_CLI_DECLARE(rb_cmd_grant_list)
RB_CLI_DECLARE(rb_cmd_ask)
RB_CLI_DECLARE(rb_cmd_batch)
RB_CLI_DECLARE(rb_cmd_eval)
RB_CLI_DECLARE(rb_cmd_forget)
RB_CLI_DECLARE(rb_cmd_doctor)
RB_CLI_DECLARE(rb_cmd_backup)
RB_CLI_DECLARE(rb_cmd_restore)
RB_CLI_DECLARE(rb_cmd_model_add)
RB_CLI_DECLARE(rb_cmd_model_list)
RB_CLI_DECLARE(rb_cmd_migrate)
RB_CLI_DECLARE(rb_cmd_retention_run)
RB_CLI_DECLARE(rb_cmd_retention_status)

static const struct rb_cli_command commands[] = {
    {"version", "print the version", rb_cmd_version},
    {"collection create", "create a collection", rb_cmd_collection_create},
    {"collection list", "list collections (--long: with their counts)", rb_cmd_collection_list},
    {"collection delete", "delete a collection and everything in it", rb_cmd_collection_delete},
    {"collection policy", "show or set a collection's policy (redaction at ingest, of answers)",
     rb_cmd_collection_policy},
    {"index add", "add documents, chunks and vectors from JSON Lines", rb_cmd_index_add},
    {"index stats", "documents, chunks and vectors per collection", rb_cmd_index_stats},
    {"index verify", "check SQLite, FTS5 and FAISS agree (exit 0 only then)", rb_cmd_index_verify},
    {"index rebuild", "rebuild FAISS and FTS5 from SQLite", rb_cmd_index_rebuild},
    {"search", "keyword, vector or hybrid search of collections", rb_cmd_search},
    {"ingest", "parse, chunk and index files and folders into a collection", rb_cmd_ingest},
    {"ingest status", "ingest queue, failures and throughput", rb_cmd_ingest_status},
    {"ingestd", "the ingest daemon: keep collections in step with watched folders", rb_cmd_ingestd},
    {"tokenize", "print the token ids of a text with a model's tokenizer", rb_cmd_tokenize},
    {"model info", "describe a GGUF model file (architecture, tensors, vocabulary)",
     rb_cmd_model_info},
    {"generate", "generate text with a GGUF model (streamed)", rb_cmd_generate},
    {"embed", "print the embedding of a text as a JSON array", rb_cmd_embed},
    {"bench", "measure prompt processing and generation speed (llama-bench style)",
     rb_cmd_bench},
    {"model quantize", "write a quantized copy of a GGUF model", rb_cmd_model_quantize},
    {"audit verify", "verify the audit trail's hash chain and signatures", rb_cmd_audit_verify},
    {"audit export", "export audit records (JSONL or CSV) for the compliance officer",
     rb_cmd_audit_export},
    {"audit query", "list audit records matching filters", rb_cmd_audit_query},
    {"audit pubkey", "export the audit signing public key", rb_cmd_audit_pubkey},
    {"audit checkpoint", "write a signed audit checkpoint now", rb_cmd_audit_checkpoint},
    {"redact", "show what the redaction rules would remove from a file", rb_cmd_redact},
    {"verticals list", "list the vertical packs", rb_cmd_verticals_list},
    {"verticals show", "show a vertical pack's policy and templates", rb_cmd_verticals_show},
    {"verticals check", "validate vertical packs (file:line errors)", rb_cmd_verticals_check},
    {"serve", "run the web server (UI, JSON API, OpenAI-compatible API)", rb_cmd_serve},
    {"user add", "create a web user", rb_cmd_user_add},
    {"user list", "list web users", rb_cmd_user_list},
    {"user del", "delete a web user", rb_cmd_user_del},
    {"user set", "change a user's role, password or state", rb_cmd_user_set},
    {"group add", "create a group", rb_cmd_group_add},
    {"group del", "delete a group", rb_cmd_group_del},
    {"group member", "add or remove a group member", rb_cmd_group_member},
    {"group list", "list groups", rb_cmd_group_list},
    {"apikey create", "create an API key (printed once)", rb_cmd_apikey_create},
    {"apikey list", "list API keys", rb_cmd_apikey_list},
    {"apikey revoke", "revoke an API key", rb_cmd_apikey_revoke},
    {"grant set", "give a user or group read/write on a collection", rb_cmd_grant_set},
    {"grant list", "list collection grants", rb_cmd_grant_list},
    {"ask", "answer a question from a collection, with citations", rb_cmd_ask},
    {"batch", "answer a file of questions (jsonl/csv/xlsx), resumable", rb_cmd_batch},
    {"eval", "retrieval and answer quality on the development sets", rb_cmd_eval},
    {"forget", "remove a document or a person's data everywhere (right to be forgotten)",
     rb_cmd_forget},
    {"doctor", "check configuration, data, models, index, audit, disk, GPU, services", rb_cmd_doctor},
    {"backup", "consistent online backup of the data directory into DIR", rb_cmd_backup},
    {"restore", "verify a backup and restore it into the data directory", rb_cmd_restore},
    {"model add", "install a GGUF model (hash recorded, configuration updated)", rb_cmd_model_add},
    {"model list", "list installed models; --verify re-hashes them", rb_cmd_model_list},
    {"migrate", "bring the database schema up to this version (run on upgrade)", rb_cmd_migrate},
    {"retention run", "apply [retention]: prune old audit segments, question history, logs",
     rb_cmd_retention_run},
    {"retention status", "retention settings, the last run and what is due now",
     rb_cmd_retention_status},
};

int rb_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ragbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return RB_EXIT_FAIL;
}

int rb_cli_usage(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ragbox %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'ragbox %s --help'.\n", command);
    va_end(ap);
    return RB_EXIT_USAGE;
}

int rb_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int rb_cmd_version(struct rb_cli *cli, int argc, char **argv)
{
    (void)cli;
    (void)argc;
    (void)argv;
    printf("ragbox %s\n", RAGBOX_VERSION);
    return RB_EXIT_OK;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ragbox [GLOBAL OPTIONS] COMMAND [ARGS]\n"
            "\n"
            "ragbox is an on-premise retrieval-augmented question-answering appliance.\n"
            "\n"
            "Global options:\n"
            "  --data DIR        where the index, audit trail and models live\n"
            "                    (also $RAGBOX_DATA; default ~/.local/share/ragbox,\n"
            "                    /var/lib/ragbox for the packaged service)\n"
            "  --config FILE     configuration file (also $RAGBOX_CONFIG; default\n"
            "                    DIR/ragbox.conf, /etc/ragbox/ragbox.conf when packaged)\n"
            "  --log-level L     debug, info, warn (default) or error (also $RAGBOX_LOG)\n"
            "  -h, --help        this help; 'ragbox COMMAND --help' for a command\n"
            "  -V, --version     print the version\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < RB_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-22s %s\n", commands[i].name, commands[i].summary);
}

/* Finds the longest command name (one or two words) matching argv. */
static const struct rb_cli_command *lookup(int argc, char **argv, int *words)
{
    const struct rb_cli_command *best = NULL;
    for (size_t i = 0; i < RB_ARRAY_LEN(commands); i++) {
        const char *name = commands[i].name;
        const char *space = strchr(name, ' ');
        if (!space) {
            if (strcmp(name, argv[0]) == 0 && !best) {
                best = &commands[i];
                *words = 1;
            }
        } else if (argc >= 2 && strncmp(name, argv[0], (size_t)(space - name)) == 0 &&
                   argv[0][space - name] == '\0' && strcmp(space + 1, argv[1]) == 0) {
            *words = 2;
            return &commands[i];
        }
    }
    return best;
}

/* Lists the subcommands of a group ("collection" -> create, list, delete). */
static int group_help(const char *group, FILE *out)
{
    int found = 0;
    size_t glen = strlen(group);
    for (size_t i = 0; i < RB_ARRAY_LEN(commands); i++) {
        if (strncmp(commands[i].name, group, glen) == 0 && commands[i].name[glen] == ' ') {
            if (!found)
                fprintf(out, "Usage: ragbox %s SUBCOMMAND [ARGS]\n\nSubcommands:\n", group);
            fprintf(out, "  %-22s %s\n", commands[i].name, commands[i].summary);
            found = 1;
        }
    }
    return found;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},   {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *data_opt = NULL, *config_opt = NULL, *level_opt = NULL;
    /* The global options are accepted after the command name too
     * (`ragbox search --data DIR ...`): take them out of argv wherever they are. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *names[] = {"--data", "--config", "--log-level"};
        const char **slots[] = {&data_opt, &config_opt, &level_opt};
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[kept++] = argv[i++];
            break;
        }
        for (int k = 0; k < 3 && !slot; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(a, names[k], n) == 0 && a[n] == '=') {
                *slots[k] = a + n + 1;
                slot = slots[k];
            } else if (strcmp(a, names[k]) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "ragbox: %s needs a value\n", names[k]);
                    return RB_EXIT_USAGE;
                }
                *slots[k] = argv[++i];
                slot = slots[k];
            }
        }
        if (!slot)
            argv[kept++] = argv[i];
    }
    argc = kept;
    argv[argc] = NULL;
    int c;
    /* '+': stop at the first non-option, the command name. */
    while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data_opt = optarg;
            break;
        case 'c':
            config_opt = optarg;
            break;
        case 'l':
            level_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return RB_EXIT_OK;
        case 'V':
            return rb_cmd_version(NULL, 0, NULL);
        default:
            usage(stderr);
            return RB_EXIT_USAGE;
        }
    }
    enum rb_log_level level = RB_LOG_WARN;
    if (level_opt && rb_log_level_parse(level_opt, &level) != RB_OK) {
        fprintf(stderr, "ragbox: --log-level: expected debug, info, warn or error\n");
        return RB_EXIT_USAGE;
    }
    rb_log_init("ragbox", level, false);

    if (optind >= argc) {
        usage(stderr);
        return RB_EXIT_USAGE;
    }
    int cargc = argc - optind;
    char **cargv = argv + optind;
    int words = 0;
    const struct rb_cli_command *cmd = lookup(cargc, cargv, &words);
    if (!cmd) {
        if (group_help(cargv[0], cargc >= 2 && !rb_cli_wants_help(cargc, cargv) ? stderr : stdout))
            return cargc >= 2 && !rb_cli_wants_help(cargc, cargv) ? RB_EXIT_USAGE : RB_EXIT_OK;
        fprintf(stderr, "ragbox: unknown command '%s'\nTry 'ragbox --help'.\n", cargv[0]);
        return RB_EXIT_USAGE;
    }

    struct rb_cli cli = {0};
    cli.prog = "ragbox";
    cli.data_dir = rb_default_data_dir(data_opt);
    cli.config_path = rb_default_config_path(config_opt, cli.data_dir);
    if (!cli.data_dir || !cli.config_path)
        return rb_cli_fail("out of memory");
    struct rb_errmsg err;
    enum rb_status st = rb_config_load(cli.config_path, &cli.config, &err);
    if (st == RB_ERR_NOT_FOUND && !config_opt && !getenv("RAGBOX_CONFIG")) {
        /* No configuration file is fine: every setting has a default. */
        st = rb_config_create(&cli.config);
    }
    if (st != RB_OK) {
        fprintf(stderr, "ragbox: %s\n", err.text);
        free(cli.data_dir);
        free(cli.config_path);
        return RB_EXIT_FAIL;
    }
    /* Two-word commands see "collection create" as argv[0..1]; pass from the second word. */
    int rc = cmd->run(&cli, cargc - (words - 1), cargv + (words - 1));
    rb_config_free(cli.config);
    free(cli.data_dir);
    free(cli.config_path);
    return rc;
}
