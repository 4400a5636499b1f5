/* The `ragbox` command: shared context and the subcommand table.
 *
 * main.c parses the global options (--data, --config, --log-level), loads the
 * configuration and dispatches to a subcommand. Each area's subcommands live
 * in their own cmd-<area>.c and are listed in the table in main.c. A
 * subcommand returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef RAGBOX_CLI_H
#define RAGBOX_CLI_H

#include <stdio.h>

#include "ragbox/common.h"

struct rb_cli {
    char *data_dir;          /* --data / $RAGBOX_DATA / per-user default; owned */
    char *config_path;       /* --config / $RAGBOX_CONFIG / <data>/ragbox.conf; owned */
    struct rb_config *config; /* loaded configuration (empty when the file is absent); owned */
    const char *prog;        /* argv[0] basename, borrowed */
};

struct rb_cli_command {
    const char *name;    /* "search", or "collection create" for two-word commands */
    const char *summary; /* one line for `ragbox --help` */
    int (*run)(struct rb_cli *cli, int argc, char **argv); /* argv[0] is the command name */
};

/* Exit statuses. */
#define RB_EXIT_OK 0
#define RB_EXIT_FAIL 1
#define RB_EXIT_USAGE 2

/* Prints "ragbox: <msg>" to stderr and returns RB_EXIT_FAIL. */
int rb_cli_fail(const char *fmt, ...) RB_PRINTF(1, 2);
/* Prints a usage error and a hint to --help; returns RB_EXIT_USAGE. */
int rb_cli_usage(const char *command, const char *fmt, ...) RB_PRINTF(2, 3);
/* True when argv[i] is -h or --help. */
int rb_cli_wants_help(int argc, char **argv);

#endif
