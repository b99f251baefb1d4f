/* cli/cli.h: what the confab command's files share: the context, exit
 * codes, output helpers and the subcommands.
 *
 * cli/ uses node/confab.h, node/testnet.h and wire/ only. */
#ifndef CONFAB_CLI_H
#define CONFAB_CLI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (documented in docs/confab.1). */
enum {
    CLI_OK = 0,      /* it worked */
    CLI_USAGE = 1,   /* the command line is wrong */
    CLI_NO_NODE = 2, /* no node running, or its control socket unreachable */
    CLI_UNKNOWN = 3, /* unknown or ambiguous peer or group */
    CLI_TIMEOUT = 4, /* timed out */
    CLI_REFUSED = 5, /* refused: queue full, too large, not permitted,
                        not linked */
    CLI_FAILED = 6,  /* something else failed; the message says what */
};

typedef struct cli_ctx {
    const char *prog; /* argv[0]'s base name, for messages */
    const char *home; /* --home, or NULL */
    bool json;        /* --json: one JSON object per line */
    bool color;       /* stdout is a terminal and NO_COLOR is unset */
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

/* ---- cli/util.c: small helpers every command uses ---------------------- */

/* Parses a number of seconds, whole or not ("30", "0.1"), in [0, max],
 * into milliseconds (rounded up, so 0.0001 is 1). Returns 0 or -1. */
int cli_parse_seconds(const char *s, double max, int *ms);

/* Milliseconds and microseconds of a monotonic clock. */
uint64_t cli_now_ms(void);
uint64_t cli_now_us(void);

/* Lowercase hex of p[0..n) into out (cap >= 2n+1; else truncated to fit,
 * always NUL-terminated). */
void cli_hex(const uint8_t *p, size_t n, char *out, size_t cap);

/* A round trip in microseconds as milliseconds with 3 significant digits
 * ("0.213", "12.4", "250"), as ping(8) shows them. */
void cli_fmt_ms(uint64_t us, char *out, size_t cap);

/* Writes an ANSI SGR sequence (e.g. "1" bold, "32" green, "0" reset) to f
 * when ctx->color; nothing otherwise. */
void cli_sgr(const cli_ctx *ctx, FILE *f, const char *code);

/* Writes s[0..n) for a terminal: valid UTF-8 passes, except control
 * characters (C0, DEL, C1), which are shown escaped (\x1b) so that a
 * peer cannot drive the terminal; invalid bytes are shown as \xNN. With
 * newline_indent non-NULL, a newline is kept and followed by it; else it
 * is shown as \n. */
void cli_put_text(FILE *f, const uint8_t *s, size_t n,
                  const char *newline_indent);

/* Copies the NUL-terminated UTF-8 string in into out[0..cap) for a
 * terminal: control characters (C0, DEL, C1) become '?'. */
void cli_safe_copy(char *out, size_t cap, const char *in);

/* The columns s[0..n) takes when written by cli_put_text without
 * newlines: wide characters (CJK, emoji) take two, combining marks none
 * (wcwidth(3) in the user's UTF-8 locale, else a table of the wide
 * blocks). */
size_t cli_text_width(const uint8_t *s, size_t n);

/* JSON helpers: strings from bytes (which must be valid UTF-8), hex. */
json_object *cli_json_bytes(const uint8_t *p, size_t n);
json_object *cli_json_hex(const uint8_t *p, size_t n);

/* Prints o as one line (no slashes escaped), flushes stdout, and releases
 * o. */
void cli_json_print(json_object *o);

/* Reads a whole file ("-" is stdin) of at most max bytes into *buf (the
 * caller frees it). Returns CLI_OK, CLI_REFUSED (larger than max), or
 * CLI_FAILED (it cannot be read), after printing why. */
int cli_read_file(const cli_ctx *ctx, const char *path, size_t max,
                  uint8_t **buf, size_t *len);

/* Joins argv[0..argc) with single spaces into a new string (the TEXT of
 * send, broadcast, shout and anycast). NULL when out of memory. */
char *cli_join_words(int argc, char **argv);

/* The subcommands: each parses its own argv (argv[0] is its name) and
 * returns an exit code. */
int cli_cmd_testnet(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_run(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_init(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_id(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_peers(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_send(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_broadcast(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_shout(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_anycast(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_join(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_leave(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_groups(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_recv(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_chat(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ping(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_allow(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_deny(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_monitor(cli_ctx *ctx, int argc, char **argv);
/* area: routing (#12) */
int cli_cmd_trace(cli_ctx *ctx, int argc, char **argv);
/* `confab peers`: the peers reached only through others, with their next
 * hop and distance (the node's `routes`), after the list (cli/trace.c). */
struct cli_client;
struct cli_peers;
int cli_routes_show(const cli_ctx *ctx, struct cli_client *c,
                    const struct cli_peers *l);
/* area: request and reply (#19) */
int cli_cmd_serve(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_request(cli_ctx *ctx, int argc, char **argv);
/* area: the first hour (#14) */
/* Exit status of a command stopped by Ctrl-C (SIGINT), as a shell reports
 * a process killed by it: 128 + 2 (docs/confab.1, EXIT STATUS). */
#define CLI_INTERRUPTED 130
int cli_cmd_forget(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_queue(cli_ctx *ctx, int argc, char **argv);
/* area: discovery on every interface (#16) */
/* area: performance (#18) */

#endif
