/* cli/allow.c: `confab allow` and `confab deny`: who may join, narrower
 * than the network key (docs/SECURITY.md, "Who may join").
 *
 * Through the running node when there is one, so that the change takes
 * effect at once (a denied node's links close); else directly on the
 * home's file <home>/allow, which the node reads when it starts. */
#include "cli/show.h"

#include "node/confab.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char allow_help[] =
    "An allow-list narrows who may join below the network key: while there\n"
    "is one, only the nodes on it may link with this node; any other is\n"
    "refused at the handshake, its beacons are ignored and it is never\n"
    "dialed. With no list, every node with the network key may join.\n"
    "\n"
    "  allow ID   puts ID (the 64 hex digits that 'confab id' prints) on\n"
    "             the list, starting one if there was none: then links to\n"
    "             every node not on it close\n"
    "  deny ID    takes ID off the list and closes its links; an empty list\n"
    "             lets no node in (remove <home>/allow, with the node\n"
    "             stopped, to have no list)\n"
    "  allow      lists the ids on the list\n"
    "\n"
    "With a node running, the change is made through it and takes effect\n"
    "at once; without one, in <home>/allow (one id a line, '#' comments),\n"
    "read when the node starts. Exit 3 when deny names an id not listed.\n";

/* Whether a node answers on the home's control socket. Quiet: without one
 * the command works on the file. */
static bool node_running(const char *home)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int w = snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock", home);
    if (w < 0 || (size_t)w >= sizeof a.sun_path)
        return true; /* let cli_connect() say what is wrong */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    return rc == 0 || (e != ENOENT && e != ECONNREFUSED);
}

static void print_list(const cli_ctx *ctx, bool list, const uint8_t *ids,
                       size_t n)
{
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(
                a, cli_json_hex(ids + i * CONFAB_ID_BYTES, CONFAB_ID_BYTES));
        json_object_object_add(o, "list", json_object_new_boolean(list));
        json_object_object_add(o, "ids", a);
        cli_json_print(o);
        return;
    }
    if (!list) {
        printf("no allow-list: every node with the network key may join\n");
        return;
    }
    if (n == 0)
        printf("the allow-list is empty: no node may join\n");
    for (size_t i = 0; i < n; i++) {
        char hex[2 * CONFAB_ID_BYTES + 1];
        cli_hex(ids + i * CONFAB_ID_BYTES, CONFAB_ID_BYTES, hex, sizeof hex);
        printf("%s\n", hex);
    }
}

static void print_change(const cli_ctx *ctx, const uint8_t *id, bool allow,
                         size_t left)
{
    char hex[2 * CONFAB_ID_BYTES + 1];
    cli_hex(id, CONFAB_ID_BYTES, hex, sizeof hex);
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(o, "allowed", json_object_new_boolean(allow));
        cli_json_print(o);
    } else {
        printf("%s %s\n", allow ? "allowed" : "denied", hex);
    }
    if (!allow && left == 0)
        cli_error(ctx, "the allow-list is empty now: no node may join until "
                       "one is allowed");
}

/* Through the running node. */
static int via_node(cli_ctx *ctx, const uint8_t *id, bool allow)
{
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(&cl, &b, allow ? "allow" : "deny", id ? 1 : 0, &rid);
    if (id != NULL) {
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, id, CONFAB_ID_BYTES);
    }
    rc = cli_call(&cl, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    int list = 0;
    wire_iter it;
    uint32_t count = 0;
    uint8_t *ids = NULL;
    if (rc == CLI_OK &&
        (wire_ctl_get_bool(&r, "list", &list) != 0 ||
         wire_ctl_get_array(&r, "ids", &it, &count) != 0 ||
         (ids = malloc(count ? count * CONFAB_ID_BYTES : 1)) == NULL)) {
        cli_error(ctx, "the node sent a malformed allow-list");
        rc = CLI_FAILED;
    }
    for (uint32_t i = 0; rc == CLI_OK && i < count; i++) {
        wire_bytes v;
        if (wire_ctl_next_bin(&it, &v) != 1 || v.len != CONFAB_ID_BYTES) {
            cli_error(ctx, "the node sent a malformed allow-list");
            rc = CLI_FAILED;
        } else {
            memcpy(ids + i * CONFAB_ID_BYTES, v.ptr, CONFAB_ID_BYTES);
        }
    }
    if (rc == CLI_OK) {
        if (id == NULL)
            print_list(ctx, list != 0, ids, count);
        else
            print_change(ctx, id, allow, count);
    }
    free(ids);
    cli_close(&cl);
    return rc;
}

/* On the home's file (no node runs). */
static int via_file(cli_ctx *ctx, const char *home, const uint8_t *id,
                    bool allow)
{
    char err[600];
    int rc;
    if (id != NULL) {
        rc = confab_home_allow(home, id, allow, err, sizeof err);
        if (rc != 0) {
            cli_error(ctx, "%s", err);
            return rc == -ENOENT ? CLI_UNKNOWN : CLI_FAILED;
        }
    }
    size_t count = 0;
    rc = confab_home_allowed(home, NULL, 0, &count, err, sizeof err);
    uint8_t *ids = malloc(count ? count * CONFAB_ID_BYTES : 1);
    if (ids == NULL)
        return CLI_FAILED;
    if (rc == 0)
        rc = confab_home_allowed(home, (uint8_t(*)[CONFAB_ID_BYTES])ids, count,
                                 &count, err, sizeof err);
    if (rc != 0 && rc != -ENOENT) {
        cli_error(ctx, "%s", err);
        free(ids);
        return CLI_FAILED;
    }
    if (id == NULL)
        print_list(ctx, rc == 0, ids, count);
    else
        print_change(ctx, id, allow, count);
    free(ids);
    return CLI_OK;
}

static int allow_deny(cli_ctx *ctx, int argc, char **argv, bool allow)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = allow ? "allow" : "deny";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(allow ? "usage: confab allow [ID]\n       confab deny ID\n\n"
                        : "usage: confab deny ID\n       confab allow [ID]\n\n",
                  stdout);
            fputs(allow_help, stdout);
            return CLI_OK;
        }
        cli_error(ctx, "unknown option '%s'; try 'confab %s --help'",
                  argv[optind - 1], name);
        return CLI_USAGE;
    }
    int left = argc - optind;
    if (left > 1 || (!allow && left != 1)) {
        cli_error(ctx, "%s takes %s ID; try 'confab %s --help'", name,
                  allow ? "at most one" : "one", name);
        return CLI_USAGE;
    }
    uint8_t id[CONFAB_ID_BYTES];
    if (left == 1) {
        const char *hex = argv[optind];
        size_t bin_len = 0;
        const char *end = NULL;
        if (strlen(hex) != 2 * CONFAB_ID_BYTES ||
            sodium_hex2bin(id, sizeof id, hex, strlen(hex), NULL, &bin_len,
                           &end) != 0 ||
            bin_len != sizeof id || *end != '\0') {
            cli_error(ctx,
                      "'%s' is not a node id: give all 64 hex digits (as "
                      "'confab id' prints them on that node)",
                      hex);
            return CLI_USAGE;
        }
    }
    char home[4096];
    if (cli_home(ctx, home, sizeof home) != 0)
        return CLI_USAGE;
    const uint8_t *idp = left == 1 ? id : NULL;
    return node_running(home) ? via_node(ctx, idp, allow)
                              : via_file(ctx, home, idp, allow);
}

int cli_cmd_allow(cli_ctx *ctx, int argc, char **argv)
{
    return allow_deny(ctx, argc, argv, true);
}

int cli_cmd_deny(cli_ctx *ctx, int argc, char **argv)
{
    return allow_deny(ctx, argc, argv, false);
}
