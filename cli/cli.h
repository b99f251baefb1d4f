/* cli/cli.h: what the confab command's files share: the context, exit
 * codes, output helpers and the subcommands.
 *
 * cli/ uses node/confab.h, node/testnet.h and wire/ only. */
#ifndef CONFAB_CLI_H
#define CONFAB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (documented in docs/confab.1). */
enum {
    CLI_OK = 0,       /* it worked */
    CLI_USAGE = 1,    /* the command line is wrong */
    CLI_NO_NODE = 2,  /* no node running, or its control socket unreachable */
    CLI_UNKNOWN = 3,  /* unknown or ambiguous peer or group */
    CLI_TIMEOUT = 4,  /* timed out */
    CLI_REFUSED = 5,  /* refused: queue full, too large, not permitted */
    CLI_FAILED = 6,   /* something else failed; the message says what */
};

typedef struct cli_ctx {
    const char *prog;  /* argv[0]'s base name, for messages */
    const char *home;  /* --home, or NULL */
    bool json;         /* --json: one JSON object per line */
    bool color;        /* stdout is a terminal and NO_COLOR is unset */
} cli_ctx;

/* A message for a person, on stderr: "confab: " and the sentence. */
void cli_error(const cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wraps s in an ANSI colour when ctx->color (e.g. "1" bold, "32" green),
 * into buf; returns buf. */
const char *cli_paint(const cli_ctx *ctx, const char *code, const char *s,
                      char *buf, size_t cap);

/* Parses a whole decimal number in [min, max]. Returns 0 or -1. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The subcommands: each parses its own argv (argv[0] is its name) and
 * returns an exit code. */
int cli_cmd_testnet(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_run(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_init(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_id(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(cli_ctx *ctx, int argc, char **argv);

#endif
