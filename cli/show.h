/* cli/show.h: what several commands show or look up alike: the peer list
 * (and a PEER argument resolved against it) and received messages. */
#ifndef CONFAB_CLI_SHOW_H
#define CONFAB_CLI_SHOW_H

#include "cli/client.h"

#include "node/confab.h"

/* One peer as the `peers` op reports it. */
typedef struct cli_peer {
    uint8_t id[CONFAB_ID_BYTES];
    char name[CONFAB_MAX_NAME + 1]; /* valid UTF-8, as the node checked */
    char address[64];
    char state[16]; /* known, connecting, up, down */
    uint64_t rtt_us;
} cli_peer;

typedef struct cli_peers {
    cli_peer *v;
    size_t n;
} cli_peers;

/* Reads a `peers` reply into *out (sorted by name, then id). Returns 0,
 * -EPROTO (a malformed reply) or -ENOMEM. */
int cli_peers_parse(const wire_ctl_map *reply, cli_peers *out);

/* Asks the node for its peers. Returns CLI_OK, or an exit code after
 * printing why not. */
int cli_peers_fetch(cli_client *c, cli_peers *out);

void cli_peers_free(cli_peers *l);

/* The peer with this id, or NULL. */
const cli_peer *cli_peers_find(const cli_peers *l,
                               const uint8_t id[CONFAB_ID_BYTES]);

/* Resolves a PEER argument: a peer whose name is exactly arg; else the one
 * peer whose hex id starts with arg (at least 4 hex digits, any case).
 * Returns CLI_OK and *out (borrowed from l), or CLI_UNKNOWN after printing
 * the candidates (for an ambiguous argument) or the known peers (for an
 * unknown one). */
int cli_resolve_peer(const cli_ctx *ctx, const cli_peers *l, const char *arg,
                     const cli_peer **out);

/* Prints the peers: a table for a person, or one JSON object a line. */
void cli_peers_print(const cli_ctx *ctx, FILE *f, const cli_peers *l);

/* The first 8 hex digits of an id. */
void cli_short_id(const uint8_t *id, char out[9]);

/* Prints a message map (PROTOCOL.md section 11.2) to f: with ctx->json as
 * the `recv` JSON object, else as "[HH:MM:SS] name (kind, #group): text".
 * Returns 0, or -EPROTO when the map lacks a field (nothing is printed). */
int cli_print_message(const cli_ctx *ctx, FILE *f, const wire_ctl_map *msg);
/* The same, with the sender's short id after its name when with_id (two
 * peers share the name: chat tells them apart). */
int cli_print_message_ex(const cli_ctx *ctx, FILE *f, const wire_ctl_map *msg,
                         bool with_id);

#endif
