/* ragbox serve, user, group, apikey: the web server and its access store. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "ragbox/web.h"

int rb_cmd_serve(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_user_add(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_user_list(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_user_del(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_user_set(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_group_add(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_group_del(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_group_member(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_group_list(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_apikey_create(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_apikey_list(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_apikey_revoke(struct rb_cli *cli, int argc, char **argv);

static enum rb_status open_auth(struct rb_cli *cli, struct rb_web_auth **out)
{
    struct rb_errmsg err;
    enum rb_status st = rb_fs_mkdirs(cli->data_dir, 0700);
    if (st != RB_OK) {
        rb_cli_fail("%s: cannot create the data directory", cli->data_dir);
        return st;
    }
    char *db = rb_path_join(cli->data_dir, "ragbox.db");
    struct rb_web_auth_options o = {.db_path = db, .config = cli->config};
    st = db ? rb_web_auth_open(&o, out, &err) : RB_ERR_NOMEM;
    if (st != RB_OK)
        rb_cli_fail("%s", db ? err.text : "out of memory");
    free(db);
    return st;
}

/* ================================================================ serve */

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int rb_cmd_serve(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox serve [--listen ADDR:PORT] [--model GGUF] [--embedding-model GGUF]\n"
               "\n"
               "Runs the web server: the UI at /, the JSON API under /api/, the\n"
               "OpenAI-compatible API under /v1/ and Prometheus metrics at /metrics.\n"
               "Stops on SIGINT/SIGTERM after finishing in-flight requests.\n"
               "\n"
               "  --listen ADDR:PORT      address to listen on (default web.listen, else\n"
               "                          127.0.0.1:8080; [::1]:PORT for IPv6; port 0 picks\n"
               "                          a free port, printed on stdout)\n"
               "  --model GGUF            chat model (overrides engine.model)\n"
               "  --embedding-model GGUF  embedding model (overrides engine.embedding_model)\n"
               "\n"
               "HTTPS: set web.tls_cert and web.tls_key (PEM files) in the configuration.\n"
               "Limits ([web] section): threads, max_connections, max_connections_per_ip,\n"
               "connection_timeout_s, max_header_bytes, max_body_bytes, max_upload_bytes,\n"
               "json_max_depth, login_max_failures, login_backoff_max_s.\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"model", required_argument, NULL, 'm'},
        {"embedding-model", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    struct rb_web_options o = {.data_dir = cli->data_dir, .config = cli->config};
    int c;
    optind = 0; /* GNU: full re-initialisation (main parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o.listen = optarg;
            break;
        case 'm':
            o.model_path = optarg;
            break;
        case 'e':
            o.embedding_model_path = optarg;
            break;
        default:
            return rb_cli_usage("serve", "unknown option");
        }
    }
    if (optind < argc)
        return rb_cli_usage("serve", "unexpected argument '%s'", argv[optind]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rb_web *web = NULL;
    struct rb_errmsg err;
    if (rb_web_open(&o, &web, &err) != RB_OK)
        return rb_cli_fail("serve: %s", err.text);
    printf("ragbox: serving %s on port %d\n", rb_web_tls(web) ? "https" : "http", rb_web_port(web));
    fflush(stdout);
    while (!stop_requested)
        pause();
    rb_web_close(web);
    return RB_EXIT_OK;
}

/* ================================================================ users */

/* Reads one line from stdin (no echo when it is a terminal). Caller frees. */
static char *read_password_stdin(void)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        fputs("Password: ", stderr);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

int rb_cmd_user_add(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox user add NAME --role admin|auditor|user [--password P | "
               "--password-stdin]\n"
               "\n"
               "Creates a user of the web UI and API. The password (8 to 1024 bytes) is\n"
               "stored as an Argon2id hash. Prefer --password-stdin: a --password value is\n"
               "visible to other local users in the process list.\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},
        {"password", required_argument, NULL, 'p'},
        {"password-stdin", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *role_text = NULL, *password = NULL;
    bool from_stdin = false;
    int c;
    optind = 0; /* GNU: full re-initialisation (main parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            role_text = optarg;
            break;
        case 'p':
            password = optarg;
            break;
        case 's':
            from_stdin = true;
            break;
        default:
            return rb_cli_usage("user add", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return rb_cli_usage("user add", "expected one user NAME");
    const char *name = argv[optind];
    enum rb_web_role role;
    if (!role_text || rb_web_role_parse(role_text, &role) != RB_OK)
        return rb_cli_usage("user add", "--role must be admin, auditor or user");
    if (!!password == from_stdin)
        return rb_cli_usage("user add", "give exactly one of --password or --password-stdin");
    char *pw = from_stdin ? read_password_stdin() : rb_strdup(password);
    if (!pw)
        return rb_cli_fail("user add: no password read");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK) {
        OPENSSL_cleanse(pw, strlen(pw));
        free(pw);
        return RB_EXIT_FAIL;
    }
    int64_t id = 0;
    enum rb_status st = rb_web_user_add(a, name, role, pw, &id);
    OPENSSL_cleanse(pw, strlen(pw));
    free(pw);
    int rc = RB_EXIT_OK;
    if (st != RB_OK)
        rc = rb_cli_fail("user add: %s", rb_web_auth_errmsg(a));
    else
        printf("created user %s (id %lld, role %s)\n", name, (long long)id,
               rb_web_role_name(role));
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_user_list(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox user list\n\nLists users: name, role, state.\n");
        return RB_EXIT_OK;
    }
    if (argc != 1)
        return rb_cli_usage("user list", "no arguments expected");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    struct rb_web_user *u = NULL;
    size_t n = 0;
    int rc = RB_EXIT_OK;
    if (rb_web_user_list(a, &u, &n) != RB_OK) {
        rc = rb_cli_fail("user list: %s", rb_web_auth_errmsg(a));
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%-24s %-8s %s\n", u[i].name, rb_web_role_name(u[i].role),
                   u[i].disabled ? "disabled" : "active");
    }
    free(u);
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_user_del(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox user del NAME\n\nDeletes a user with their sessions, API keys,\n"
               "group memberships, grants and question history.\n");
        return RB_EXIT_OK;
    }
    if (argc != 2)
        return rb_cli_usage("user del", "expected one user NAME");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    int rc = RB_EXIT_OK;
    if (rb_web_user_delete(a, argv[1]) != RB_OK)
        rc = rb_cli_fail("user del: %s", rb_web_auth_errmsg(a));
    else
        printf("deleted user %s\n", argv[1]);
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_user_set(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox user set NAME [--role R] [--password-stdin] [--disable | "
               "--enable]\n\nChanges a user's role, password (ends their sessions) or state.\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},
        {"password-stdin", no_argument, NULL, 's'},
        {"disable", no_argument, NULL, 'd'},
        {"enable", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    const char *role_text = NULL;
    bool pw = false;
    int disable = -1, c;
    optind = 0; /* GNU: full re-initialisation (main parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r')
            role_text = optarg;
        else if (c == 's')
            pw = true;
        else if (c == 'd')
            disable = 1;
        else if (c == 'e')
            disable = 0;
        else
            return rb_cli_usage("user set", "unknown option");
    }
    if (optind + 1 != argc)
        return rb_cli_usage("user set", "expected one user NAME");
    enum rb_web_role role = RB_WEB_ROLE_USER;
    if (role_text && rb_web_role_parse(role_text, &role) != RB_OK)
        return rb_cli_usage("user set", "--role must be admin, auditor or user");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    const char *name = argv[optind];
    enum rb_status st = RB_OK;
    if (role_text)
        st = rb_web_user_set_role(a, name, role);
    if (st == RB_OK && pw) {
        char *p = read_password_stdin();
        st = p ? rb_web_user_set_password(a, name, p) : RB_ERR_INVALID;
        if (p) {
            OPENSSL_cleanse(p, strlen(p));
            free(p);
        }
    }
    if (st == RB_OK && disable >= 0)
        st = rb_web_user_set_disabled(a, name, disable == 1);
    int rc = st == RB_OK ? RB_EXIT_OK : rb_cli_fail("user set: %s", rb_web_auth_errmsg(a));
    rb_web_auth_close(a);
    return rc;
}

/* =============================================================== groups */

int rb_cmd_group_add(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox group add NAME [USER...]\n\nCreates a group with members.\n");
        return RB_EXIT_OK;
    }
    if (argc < 2)
        return rb_cli_usage("group add", "expected a group NAME");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    enum rb_status st = rb_web_group_add(a, argv[1], NULL);
    for (int i = 2; i < argc && st == RB_OK; i++)
        st = rb_web_group_member_add(a, argv[1], argv[i]);
    int rc = st == RB_OK ? RB_EXIT_OK : rb_cli_fail("group add: %s", rb_web_auth_errmsg(a));
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_group_del(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox group del NAME\n\nDeletes a group and its grants.\n");
        return RB_EXIT_OK;
    }
    if (argc != 2)
        return rb_cli_usage("group del", "expected a group NAME");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    enum rb_status st = rb_web_group_delete(a, argv[1]);
    int rc = st == RB_OK ? RB_EXIT_OK : rb_cli_fail("group del: %s", rb_web_auth_errmsg(a));
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_group_member(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox group member GROUP add|remove USER\n");
        return RB_EXIT_OK;
    }
    if (argc != 4 || (strcmp(argv[2], "add") != 0 && strcmp(argv[2], "remove") != 0))
        return rb_cli_usage("group member", "expected GROUP add|remove USER");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    enum rb_status st = strcmp(argv[2], "add") == 0 ? rb_web_group_member_add(a, argv[1], argv[3])
                                                    : rb_web_group_member_remove(a, argv[1],
                                                                                 argv[3]);
    int rc = st == RB_OK ? RB_EXIT_OK : rb_cli_fail("group member: %s", rb_web_auth_errmsg(a));
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_group_list(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox group list\n\nLists groups and their members.\n");
        return RB_EXIT_OK;
    }
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    cJSON *arr = NULL;
    int rc = RB_EXIT_OK;
    if (rb_web_group_list(a, &arr) != RB_OK) {
        rc = rb_cli_fail("group list: %s", rb_web_auth_errmsg(a));
    } else {
        const cJSON *g;
        cJSON_ArrayForEach(g, arr)
        {
            printf("%s:", rb_json_str(g, "name"));
            const cJSON *m;
            cJSON_ArrayForEach(m, cJSON_GetObjectItem(g, "members")) printf(" %s", m->valuestring);
            putchar('\n');
        }
    }
    cJSON_Delete(arr);
    rb_web_auth_close(a);
    return rc;
}

/* ============================================================= api keys */

int rb_cmd_apikey_create(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox apikey create USER [--name N] [--scopes S]\n"
               "\n"
               "Creates an API key for USER and prints it once (only its SHA-256 is kept).\n"
               "Use it as 'Authorization: Bearer KEY'.\n"
               "  --name N     a label to recognise the key by\n"
               "  --scopes S   comma-separated: read, write, admin, openai\n"
               "               (default read,write,openai)\n");
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"scopes", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *scopes_text = NULL;
    int c;
    optind = 0; /* GNU: full re-initialisation (main parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            name = optarg;
        else if (c == 's')
            scopes_text = optarg;
        else
            return rb_cli_usage("apikey create", "unknown option");
    }
    if (optind + 1 != argc)
        return rb_cli_usage("apikey create", "expected one USER");
    unsigned scopes = RB_WEB_SCOPE_READ | RB_WEB_SCOPE_WRITE | RB_WEB_SCOPE_OPENAI;
    if (scopes_text && rb_web_scope_parse(scopes_text, &scopes) != RB_OK)
        return rb_cli_usage("apikey create", "--scopes: comma-separated read, write, admin, openai");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    char *key = NULL;
    int64_t id = 0;
    int rc = RB_EXIT_OK;
    if (rb_web_apikey_create(a, argv[optind], name, scopes, &key, &id) != RB_OK) {
        rc = rb_cli_fail("apikey create: %s", rb_web_auth_errmsg(a));
    } else {
        printf("%s\n", key);
        fprintf(stderr, "ragbox: API key %lld for %s; it is shown only this once\n",
                (long long)id, argv[optind]);
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_apikey_list(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox apikey list [USER]\n\nLists API keys (never their secrets).\n");
        return RB_EXIT_OK;
    }
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    int64_t uid = 0;
    struct rb_web_user u;
    int rc = RB_EXIT_OK;
    cJSON *arr = NULL;
    if (argc >= 2 && rb_web_user_get(a, argv[1], &u) != RB_OK) {
        rc = rb_cli_fail("apikey list: no user '%s'", argv[1]);
    } else {
        if (argc >= 2)
            uid = u.id;
        if (rb_web_apikey_list(a, uid, &arr) != RB_OK) {
            rc = rb_cli_fail("apikey list: %s", rb_web_auth_errmsg(a));
        } else {
            const cJSON *k;
            cJSON_ArrayForEach(k, arr)
            {
                printf("%-6.0f %-16s %-16s %s... %-20s %s\n", rb_json_num(k, "id", 0),
                       rb_json_str(k, "user"), rb_json_str(k, "name"), rb_json_str(k, "prefix"),
                       rb_json_str(k, "scopes"), rb_json_bool(k, "revoked", false) ? "revoked" : "active");
            }
        }
    }
    cJSON_Delete(arr);
    rb_web_auth_close(a);
    return rc;
}

int rb_cmd_apikey_revoke(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        printf("Usage: ragbox apikey revoke ID\n\nRevokes an API key at once.\n");
        return RB_EXIT_OK;
    }
    int64_t id = 0;
    if (argc != 2 || rb_parse_i64(argv[1], &id) != RB_OK || id <= 0)
        return rb_cli_usage("apikey revoke", "expected a key ID (see 'ragbox apikey list')");
    struct rb_web_auth *a = NULL;
    if (open_auth(cli, &a) != RB_OK)
        return RB_EXIT_FAIL;
    int rc = rb_web_apikey_revoke(a, id, 0) == RB_OK
                 ? RB_EXIT_OK
                 : rb_cli_fail("apikey revoke: %s", rb_web_auth_errmsg(a));
    rb_web_auth_close(a);
    return rc;
}
