/* cli/client.h: the control client: how every subcommand but `run`,
 * `init`, `id` and `testnet` talks to a running node (docs/PROTOCOL.md
 * section 11). Blocking I/O with deadlines: a command is one short
 * conversation. */
#ifndef CONFAB_CLI_CLIENT_H
#define CONFAB_CLI_CLIENT_H

#include "cli/cli.h"

#include "wire/ctl.h"

typedef struct cli_client {
    int fd;
    uint64_t next_rid;
    wire_ctl_reader reader;
    uint8_t in[65536];
    size_t in_len, in_off;
    const cli_ctx *ctx;
    char path[108]; /* the control socket's path */
} cli_client;

/* The home directory: --home, else $CONFAB_HOME, else
 * $XDG_DATA_HOME/confab, else ~/.local/share/confab. Returns 0, or -1
 * after printing why not. */
int cli_home(const cli_ctx *ctx, char *out, size_t cap);

/* Connects to the node running with this home. Returns CLI_OK, or
 * CLI_NO_NODE after printing what is wrong and what to do. */
int cli_connect(const cli_ctx *ctx, cli_client *c);
void cli_close(cli_client *c);

/* Starts a request {op, rid, ...}: `extra` entries follow, which the
 * caller writes. The builder is the caller's to free. */
void cli_request(cli_client *c, wire_ctl_builder *b, const char *op,
                 uint32_t extra, uint64_t *rid);

/* Sends the built request. Returns 0 or a negative errno. */
int cli_send(cli_client *c, const wire_ctl_builder *b);

/* Reads the next control message (a reply or an event) within timeout_ms
 * (-1: no limit). Returns 1 with *msg parsed (borrowed until the next
 * call), 0 if the node closed the connection, -ETIMEDOUT, or another
 * negative errno. */
int cli_next(cli_client *c, wire_ctl_map *msg, int timeout_ms);

/* Sends b and reads until the reply with its rid (events before it are
 * dropped). Returns CLI_OK with *reply ok; on an error reply prints its
 * message and returns the exit code for it; CLI_TIMEOUT or CLI_NO_NODE
 * when the node does not answer. */
int cli_call(cli_client *c, wire_ctl_builder *b, uint64_t rid,
             wire_ctl_map *reply, int timeout_ms);

/* As cli_call(), for a reply that waits on an outcome: at the deadline it
 * returns CLI_TIMEOUT without a word, for the caller to say what it was
 * waiting for. */
int cli_call_wait(cli_client *c, wire_ctl_builder *b, uint64_t rid,
                  wire_ctl_map *reply, int timeout_ms);

/* Says why the conversation with the node ended, given what cli_next()
 * or cli_send() returned (0: the node closed the connection; a negative
 * errno), and returns the exit code for it: CLI_TIMEOUT for -ETIMEDOUT,
 * else CLI_NO_NODE. A node closes a connection from another user at once
 * (SO_PEERCRED), which this names when the socket belongs to another. */
int cli_lost(cli_client *c, int rc);

/* The exit code for an error reply's errno (docs/confab.1). */
int cli_exit_for(int64_t err);

/* Whether a reply is an error: returns CLI_OK when msg has ok: true,
 * else prints its msg and returns the exit code for its err. */
int cli_reply_status(const cli_client *c, const wire_ctl_map *msg);

#endif
