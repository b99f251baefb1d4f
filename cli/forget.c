/* cli/forget.c: `confab forget PEER`: the running node gives up on a peer
 * that is not linked now (no more dials; `peers` leaves it out). */
#include "cli/show.h"

#include <errno.h>
#include <string.h>

static void help(void)
{
    fputs("usage: confab forget PEER\n"
          "\n"
          "Gives up on a peer that is not linked now: the node dials it no\n"
          "more and 'confab peers' leaves it out (--all shows it, as gone).\n"
          "Its beacon, its own dial or a --peer brings it back. Messages\n"
          "queued for it stay until they expire. A linked peer is refused\n"
          "(exit 6): 'confab deny' cuts a link. With --json: {peer,\n"
          "peer_name, state}.\n",
          stdout);
}

int cli_cmd_forget(cli_ctx *ctx, int argc, char **argv)
{
    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help();
        return CLI_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        cli_error(ctx, "forget takes one PEER; try 'confab forget --help'");
        return CLI_USAGE;
    }
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    cli_peers peers = {0};
    const cli_peer *p = NULL;
    rc = cli_peers_fetch(&cl, &peers);
    if (rc == CLI_OK)
        rc = cli_resolve_peer(ctx, &peers, argv[1], &p);
    if (rc == CLI_OK) {
        wire_ctl_builder b;
        wire_ctl_map r;
        uint64_t rid;
        cli_request(&cl, &b, "forget", 1, &rid);
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, p->id, CONFAB_ID_BYTES);
        rc = cli_call(&cl, &b, rid, &r, 10000);
        wire_ctl_builder_free(&b);
    }
    if (rc == CLI_OK) {
        char sid[9], name[CONFAB_MAX_NAME + 1];
        cli_short_id(p->id, sid);
        cli_safe_copy(name, sizeof name, p->name);
        if (ctx->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "peer",
                                   cli_json_hex(p->id, CONFAB_ID_BYTES));
            json_object_object_add(o, "peer_name",
                                   json_object_new_string(p->name));
            json_object_object_add(o, "state", json_object_new_string("gone"));
            cli_json_print(o);
        } else {
            printf("forgot %s (%s): no more dials\n", name, sid);
        }
    }
    cli_peers_free(&peers);
    cli_close(&cl);
    return rc;
}
