/* cli/trace.c: `confab trace`: the path a message to a peer takes, one
 * line per hop with its name, short id, address and round trip, the way
 * traceroute(8) shows it (docs/PROTOCOL.md section 13.5). */
#include "cli/show.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

/* The node answers after 3 s at most; this bounds a silent node. */
#define REPLY_MS 8000

static void help(FILE *f)
{
    fputs("usage: confab trace PEER [--json]\n"
          "\n"
          "Shows the path a message to PEER takes: one line per hop, with\n"
          "the name, short id and address of the node at that hop and the\n"
          "round trip to it. A linked peer is one hop; a peer reached\n"
          "through others (routing) is as many hops as relays plus one.\n"
          "A hop that did not answer within 3 s shows as '*'.\n"
          "Exit 4 if the peer itself did not answer.\n",
          f);
}

static void copy_str(char *dst, size_t cap, const wire_ctl_map *m,
                     const char *key)
{
    wire_bytes v = {NULL, 0};
    dst[0] = '\0';
    if (wire_ctl_get_str(m, key, &v) != 0)
        return;
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}

/* One hop's line; returns whether the hop is the peer traced. */
static bool print_hop(const cli_ctx *ctx, const wire_ctl_map *h,
                      const uint8_t *to)
{
    uint64_t hop = 0, rtt = 0;
    int answered = 0;
    wire_bytes id = {NULL, 0};
    char name[CONFAB_MAX_NAME + 1], safe[CONFAB_MAX_NAME + 1], addr[80];
    (void)wire_ctl_get_uint(h, "hop", &hop);
    (void)wire_ctl_get_uint(h, "rtt_us", &rtt);
    (void)wire_ctl_get_bool(h, "answered", &answered);
    (void)wire_ctl_get_bin(h, "id", &id);
    copy_str(name, sizeof name, h, "name");
    copy_str(addr, sizeof addr, h, "address");
    cli_safe_copy(safe, sizeof safe, name);
    bool is_id = id.len == CONFAB_ID_BYTES;
    bool dest = answered && is_id && memcmp(id.ptr, to, CONFAB_ID_BYTES) == 0;
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "hop", json_object_new_uint64(hop));
        json_object_object_add(o, "answered",
                               json_object_new_boolean(answered));
        json_object_object_add(
            o, "id", answered && is_id ? cli_json_hex(id.ptr, id.len) : NULL);
        json_object_object_add(o, "name",
                               answered ? json_object_new_string(name) : NULL);
        json_object_object_add(o, "address",
                               answered ? json_object_new_string(addr) : NULL);
        json_object_object_add(o, "rtt_us",
                               answered ? json_object_new_uint64(rtt) : NULL);
        cli_json_print(o);
    } else if (answered && is_id) {
        char sid[9], ms[32];
        cli_short_id(id.ptr, sid);
        cli_fmt_ms(rtt, ms, sizeof ms);
        printf("%2llu  %s (%s)  %s  %s ms\n", (unsigned long long)hop, safe,
               sid, addr[0] ? addr : "?", ms);
    } else {
        printf("%2llu  *\n", (unsigned long long)hop);
    }
    return dest;
}

static int parse_args(cli_ctx *ctx, int argc, char **argv)
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
            help(stdout);
            return CLI_OK;
        }
        cli_error(ctx, "unknown option '%s'; try 'confab trace --help'",
                  argv[optind - 1]);
        return CLI_USAGE;
    }
    if (argc - optind != 1) {
        cli_error(ctx, "trace takes one PEER; try 'confab trace --help'");
        return CLI_USAGE;
    }
    return -1;
}

int cli_cmd_trace(cli_ctx *ctx, int argc, char **argv)
{
    int early = parse_args(ctx, argc, argv);
    if (early >= 0)
        return early;
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    cli_peers peers;
    const cli_peer *p = NULL;
    rc = cli_peers_fetch(&cl, &peers);
    if (rc == CLI_OK)
        rc = cli_resolve_peer(ctx, &peers, argv[optind], &p);
    if (rc != CLI_OK)
        goto out;
    char sid[9], name[CONFAB_MAX_NAME + 1];
    cli_short_id(p->id, sid);
    cli_safe_copy(name, sizeof name, p->name);
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(&cl, &b, "trace", 1, &rid);
    wire_ctl_key(&b, "to");
    wire_ctl_put_bin(&b, p->id, CONFAB_ID_BYTES);
    rc = cli_call_wait(&cl, &b, rid, &r, REPLY_MS);
    wire_ctl_builder_free(&b);
    if (rc == CLI_TIMEOUT)
        cli_error(ctx, "the node did not answer the trace to %s in %d s", name,
                  REPLY_MS / 1000);
    if (rc != CLI_OK)
        goto out;
    wire_iter it;
    uint32_t count;
    if (wire_ctl_get_array(&r, "hops", &it, &count) != 0) {
        cli_error(ctx, "the node sent a malformed trace");
        rc = CLI_FAILED;
        goto out;
    }
    if (!ctx->json)
        printf("trace to %s (%s), %u hop%s\n", name, sid, (unsigned)count,
               count == 1 ? "" : "s");
    bool reached = false;
    wire_ctl_map h;
    while (wire_ctl_next_map(&it, &h) == 1)
        reached = print_hop(ctx, &h, p->id) || reached;
    if (!reached) {
        cli_error(ctx, "%s did not answer; the hops before it did", name);
        rc = CLI_TIMEOUT;
    }
out:
    cli_peers_free(&peers);
    cli_close(&cl);
    return rc;
}

/* The name the peer list has for id, or its short id. */
static void name_of(const cli_peers *l, const uint8_t *id, char *out,
                    size_t cap)
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->v[i].id, id, CONFAB_ID_BYTES) == 0 && l->v[i].name[0]) {
            cli_safe_copy(out, cap, l->v[i].name);
            return;
        }
    char sid[9];
    cli_short_id(id, sid);
    cli_safe_copy(out, cap, sid);
}

static bool is_up(const cli_peers *l, const uint8_t *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->v[i].id, id, CONFAB_ID_BYTES) == 0)
            return strcmp(l->v[i].state, "up") == 0;
    return false;
}

int cli_routes_show(const cli_ctx *ctx, struct cli_client *c,
                    const struct cli_peers *l)
{
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(c, &b, "routes", 0, &rid);
    int rc = cli_call(c, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK)
        return rc;
    wire_iter it;
    uint32_t count;
    if (wire_ctl_get_array(&r, "routes", &it, &count) != 0) {
        cli_error(ctx, "the node sent a malformed route table");
        return CLI_FAILED;
    }
    bool header = false;
    wire_ctl_map m;
    while (wire_ctl_next_map(&it, &m) == 1) {
        wire_bytes dst = {NULL, 0}, via = {NULL, 0};
        uint64_t metric = CONFAB_ROUTE_INFINITY;
        (void)wire_ctl_get_uint(&m, "metric", &metric);
        if (wire_ctl_get_bin(&m, "dst", &dst) != 0 ||
            dst.len != CONFAB_ID_BYTES ||
            wire_ctl_get_bin(&m, "via", &via) != 0 ||
            via.len != CONFAB_ID_BYTES || metric >= CONFAB_ROUTE_INFINITY ||
            is_up(l, dst.ptr))
            continue; /* unreachable, or linked: listed above */
        char name[CONFAB_MAX_NAME + 1], vname[CONFAB_MAX_NAME + 1];
        char sid[9], vsid[9];
        name_of(l, dst.ptr, name, sizeof name);
        name_of(l, via.ptr, vname, sizeof vname);
        cli_short_id(dst.ptr, sid);
        cli_short_id(via.ptr, vsid);
        if (ctx->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", cli_json_hex(dst.ptr, dst.len));
            json_object_object_add(o, "name", json_object_new_string(name));
            /* Shaped as a peer's object, so a reader of the list finds
             * every key it knows. */
            json_object_object_add(o, "address", json_object_new_string(""));
            json_object_object_add(o, "state",
                                   json_object_new_string("routed"));
            json_object_object_add(o, "rtt_us", json_object_new_uint64(0));
            json_object_object_add(o, "via", cli_json_hex(via.ptr, via.len));
            json_object_object_add(o, "via_name",
                                   json_object_new_string(vname));
            json_object_object_add(o, "hops", json_object_new_uint64(metric));
            cli_json_print(o);
            continue;
        }
        if (!header)
            printf("\nreachable through others:\n");
        header = true;
        printf("%s  %s  via %s (%s), %llu hops\n", sid, name, vname, vsid,
               (unsigned long long)metric);
    }
    return CLI_OK;
}
