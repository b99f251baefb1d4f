/* cli/groups.c: `confab join`, `confab leave` and `confab groups`. */
#include "cli/show.h"

#include <getopt.h>
#include <string.h>

/* Parses the options every group command has (only --help); returns -1
 * after printing the help, CLI_USAGE, or CLI_OK with optind at the first
 * argument. */
static int parse(cli_ctx *ctx, int argc, char **argv, const char *name,
                 const char *help)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return -1;
        }
        cli_error(ctx, "unknown option '%s'; try 'confab %s --help'",
                  argv[optind - 1], name);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int join_leave(cli_ctx *ctx, int argc, char **argv, bool join)
{
    const char *name = join ? "join" : "leave";
    int rc = parse(ctx, argc, argv, name,
                   join ? "usage: confab join GROUP\n"
                          "\n"
                          "Makes this node a member of GROUP (1 to 64 bytes "
                          "of UTF-8):\n"
                          "it then gets the group's shouts and may take its "
                          "anycasts.\n"
                          "Peers learn it at once. Joining twice is fine.\n"
                        : "usage: confab leave GROUP\n"
                          "\n"
                          "Ends this node's membership of GROUP. Exit 3 if it "
                          "is not a\nmember.\n");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (argc - optind != 1) {
        cli_error(ctx, "%s takes one GROUP; try 'confab %s --help'", name,
                  name);
        return CLI_USAGE;
    }
    const char *g = argv[optind];
    if (g[0] == '#' && g[1] != '\0')
        g++;
    if (strlen(g) == 0 || strlen(g) > CONFAB_MAX_GROUP) {
        cli_error(ctx, "a group name is 1 to %u bytes", CONFAB_MAX_GROUP);
        return CLI_USAGE;
    }
    cli_client cl;
    rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(&cl, &b, name, 1, &rid);
    wire_ctl_key(&b, "group");
    wire_ctl_put_cstr(&b, g);
    rc = cli_call(&cl, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    cli_close(&cl);
    if (rc != CLI_OK)
        return rc;
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "group", json_object_new_string(g));
        json_object_object_add(o, "member", json_object_new_boolean(join));
        cli_json_print(o);
    } else {
        printf("%s #", join ? "joined" : "left");
        cli_put_text(stdout, (const uint8_t *)g, strlen(g), NULL);
        putchar('\n');
    }
    return CLI_OK;
}

int cli_cmd_join(cli_ctx *ctx, int argc, char **argv)
{
    return join_leave(ctx, argc, argv, true);
}

int cli_cmd_leave(cli_ctx *ctx, int argc, char **argv)
{
    return join_leave(ctx, argc, argv, false);
}

/* One group of the listing as a JSON object on its own line. */
static void group_json(const cli_peers *peers, const wire_bytes *name, int self,
                       wire_iter *mit)
{
    wire_bytes id;
    json_object *o = json_object_new_object();
    json_object *m = json_object_new_array();
    json_object *names = json_object_new_array();
    json_object_object_add(o, "group", cli_json_bytes(name->ptr, name->len));
    while (wire_ctl_next_bin(mit, &id) == 1) {
        json_object_array_add(m, cli_json_hex(id.ptr, id.len));
        const cli_peer *p =
            id.len == CONFAB_ID_BYTES ? cli_peers_find(peers, id.ptr) : NULL;
        json_object_array_add(names, json_object_new_string(p ? p->name : ""));
    }
    json_object_object_add(o, "members", m);
    /* The names, in the order of the ids ("" when unknown). */
    json_object_object_add(o, "member_names", names);
    json_object_object_add(o, "self", json_object_new_boolean(self));
    cli_json_print(o);
}

/* One group of the listing as a line: its name, then its members, named
 * from peers where known. */
static void group_text(cli_ctx *ctx, const cli_peers *peers,
                       const wire_bytes *name, int self, wire_iter *mit)
{
    wire_bytes id;
    cli_sgr(ctx, stdout, "1");
    putchar('#');
    cli_put_text(stdout, name->ptr, name->len, NULL);
    cli_sgr(ctx, stdout, "0");
    for (size_t w = cli_text_width(name->ptr, name->len) + 1; w < 16; w++)
        putchar(' ');
    fputs("  ", stdout);
    bool first = true;
    if (self) {
        cli_sgr(ctx, stdout, "32");
        fputs("this node", stdout);
        cli_sgr(ctx, stdout, "0");
        first = false;
    }
    while (wire_ctl_next_bin(mit, &id) == 1) {
        char sid[9];
        if (id.len != CONFAB_ID_BYTES)
            continue;
        const cli_peer *p = cli_peers_find(peers, id.ptr);
        cli_short_id(id.ptr, sid);
        fputs(first ? "" : ", ", stdout);
        first = false;
        if (p != NULL && p->name[0] != '\0') {
            cli_put_text(stdout, (const uint8_t *)p->name, strlen(p->name),
                         NULL);
            printf(" (%s)", sid);
        } else {
            fputs(sid, stdout);
        }
    }
    if (first)
        fputs("(no linked member)", stdout);
    putchar('\n');
}

int cli_cmd_groups(cli_ctx *ctx, int argc, char **argv)
{
    int rc = parse(
        ctx, argc, argv, "groups",
        "usage: confab groups\n"
        "\n"
        "Lists the groups known here (this node's and its linked peers'),\n"
        "each with its linked members; \"this node\" marks this node's own\n"
        "membership. With --json, one object a group: group, members (hex\n"
        "ids of the linked peers that are members), member_names (their\n"
        "names, in that order), self (this node is one).\n");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (optind < argc) {
        cli_error(ctx, "groups takes no arguments ('%s')", argv[optind]);
        return CLI_USAGE;
    }
    cli_client cl;
    rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    cli_peers peers = {0};
    rc = cli_peers_fetch(&cl, &peers); /* to name the members */
    wire_ctl_builder b;
    wire_ctl_map r, g;
    uint64_t rid;
    if (rc == CLI_OK) {
        cli_request(&cl, &b, "groups", 0, &rid);
        rc = cli_call(&cl, &b, rid, &r, 10000);
        wire_ctl_builder_free(&b);
    }
    if (rc != CLI_OK)
        goto out;
    wire_iter it, mit;
    uint32_t count, nm;
    if (wire_ctl_get_array(&r, "groups", &it, &count) != 0) {
        cli_error(ctx, "the node sent a malformed group list");
        rc = CLI_FAILED;
        goto out;
    }
    if (count == 0 && !ctx->json)
        printf("no groups yet: 'confab join GROUP' makes this node a member "
               "of one\n");
    else if (!ctx->json) {
        cli_sgr(ctx, stdout, "1");
        printf("%-16s  %s", "GROUP", "MEMBERS");
        cli_sgr(ctx, stdout, "0");
        putchar('\n');
    }
    while (wire_ctl_next_map(&it, &g) == 1) {
        wire_bytes name;
        int self = 0;
        if (wire_ctl_get_str(&g, "group", &name) != 0 ||
            wire_ctl_get_array(&g, "members", &mit, &nm) != 0) {
            cli_error(ctx, "the node sent a malformed group list");
            rc = CLI_FAILED;
            goto out;
        }
        (void)wire_ctl_get_bool(&g, "self", &self);
        if (ctx->json)
            group_json(&peers, &name, self, &mit);
        else
            group_text(ctx, &peers, &name, self, &mit);
    }
    rc = CLI_OK;
out:
    cli_peers_free(&peers);
    cli_close(&cl);
    return rc;
}
