/* cli/main.c: the confab command: global options and the subcommands. */
#include "cli/cli.h"

#include "node/confab.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CONFAB_VERSION
#define CONFAB_VERSION "unknown"
#endif

typedef struct cli_cmd {
    const char *name;
    int (*fn)(cli_ctx *ctx, int argc, char **argv);
    const char *summary;
} cli_cmd;

static const cli_cmd commands[] = {
    {"init", cli_cmd_init, "make the home directory and an identity"},
    {"id", cli_cmd_id, "print this node's id"},
    {"run", cli_cmd_run, "run a node in the foreground"},
    {"status", cli_cmd_status, "show the running node"},
    {"peers", cli_cmd_peers, "list the peers and their state"},
    {"send", cli_cmd_send, "send a message to one peer"},
    {"broadcast", cli_cmd_broadcast, "send a message to every peer"},
    {"join", cli_cmd_join, "join a group"},
    {"leave", cli_cmd_leave, "leave a group"},
    {"groups", cli_cmd_groups, "list the groups and their members"},
    {"shout", cli_cmd_shout, "send a message to a group's members"},
    {"anycast", cli_cmd_anycast, "send a message to one member of a group"},
    {"recv", cli_cmd_recv, "print the messages received"},
    {"chat", cli_cmd_chat, "chat with a peer, a group or everyone"},
    {"ping", cli_cmd_ping, "measure the round trip to a peer"},
    {"allow", cli_cmd_allow, "let a node join, or list who may (allow-list)"},
    {"deny", cli_cmd_deny, "take a node off the allow-list; close its links"},
    {"testnet", cli_cmd_testnet,
     "run a whole network of nodes in this process and report"},
    /* issue 15: the web page's events, on a terminal */
    {"monitor", cli_cmd_monitor, "print the node's events as they happen"},
    /* area: routing (#12) */
    {"trace", cli_cmd_trace, "show the path to a peer, hop by hop"},
    /* area: request and reply (#19) */
    {"serve", cli_cmd_serve, "answer requests for NAME by running a command"},
    {"request", cli_cmd_request, "ask a service and print its answer"},
    /* area: the first hour (#14) */
    {"forget", cli_cmd_forget, "give up on a peer that is not linked now"},
    {"queue", cli_cmd_queue, "list the messages not acknowledged; cancel one"},
    /* area: discovery on every interface (#16) */
    /* area: performance (#18) */
};

void cli_error(const cli_ctx *ctx, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", ctx->prog, msg);
    /* The first hour (#14): with --json, a script reads the error on
     * stdout too, as {"error": "..."} (docs/confab.1, Output). */
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(msg));
        cli_json_print(o);
    }
}

const char *cli_paint(const cli_ctx *ctx, const char *code, const char *s,
                      char *buf, size_t cap)
{
    if (ctx->color)
        snprintf(buf, cap, "\033[%sm%s\033[0m", code, s);
    else
        snprintf(buf, cap, "%s", s);
    return buf;
}

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--home DIR] [--json] COMMAND [ARGS...]\n"
            "\n"
            "confab is a peer-to-peer messaging node: run one on each\n"
            "machine, and they find each other on the LAN.\n"
            "\n"
            "commands:\n",
            prog);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "global options:\n"
            "  --home DIR  the node's directory (else $CONFAB_HOME, else\n"
            "              $XDG_DATA_HOME/confab, else ~/.local/share/confab)\n"
            "  --json      machine-readable output: one JSON object a line\n"
            "              (may also follow the command)\n"
            "  -h, --help  this help; COMMAND --help for a command's\n"
            "  --version   the version\n"
            "\n"
            "PEER is a peer's name or 4+ hex digits of its id. Exit status:\n"
            "0 ok, 1 usage, 2 no node, 3 unknown peer or group, 4 timed\n"
            "out, 5 refused, 6 other, 130 stopped by Ctrl-C. See confab(1)\n"
            "for everything.\n");
}

int main(int argc, char **argv)
{
    cli_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    ctx.prog = slash ? slash + 1 : (argc > 0 ? argv[0] : "confab");
    const char *nc = getenv("NO_COLOR");
    ctx.color = isatty(STDOUT_FILENO) && (nc == NULL || *nc == '\0');

    /* Global options come before the command. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, ctx.prog);
            return CLI_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("confab %s\n", CONFAB_VERSION);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            ctx.json = true;
        } else if (strcmp(a, "--home") == 0) {
            if (i + 1 >= argc) {
                cli_error(&ctx, "--home needs a directory");
                return CLI_USAGE;
            }
            ctx.home = argv[++i];
        } else if (strncmp(a, "--home=", 7) == 0) {
            ctx.home = a + 7;
        } else {
            cli_error(&ctx, "unknown option '%s'; try '%s --help'", a,
                      ctx.prog);
            return CLI_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr, ctx.prog);
        return CLI_USAGE;
    }
    /* --json may also follow the command (anywhere before a "--"). */
    int n = 1;
    bool dashes = false;
    for (int k = i + 1; k < argc; k++) {
        dashes = dashes || strcmp(argv[k], "--") == 0;
        if (!dashes && strcmp(argv[k], "--json") == 0)
            ctx.json = true;
        else
            argv[i + n++] = argv[k];
    }
    argv[i + n] = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(argv[i], commands[k].name) == 0)
            return commands[k].fn(&ctx, n, argv + i);
    cli_error(&ctx, "unknown command '%s'; try '%s --help' for the list",
              argv[i], ctx.prog);
    return CLI_USAGE;
}
