/* cli/queue.c: `confab queue`: the unicasts the running node holds until
 * their peers acknowledge them, and `confab queue --cancel ID` to give one
 * up. */
#include "cli/show.h"

#include <getopt.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

static void help(void)
{
    fputs("usage: confab queue [--cancel ID]\n"
          "\n"
          "Lists the messages sent with 'confab send' that their peers have\n"
          "not acknowledged yet (queued for a peer that is down, or in\n"
          "flight): message id, peer, size, and when it expires.\n"
          "\n"
          "  --cancel ID   give that message up (its 32 hex digits): it ends\n"
          "                as expired; one already written to a linked peer\n"
          "                may still arrive\n"
          "\n"
          "With --json: one object a message, {id, peer, peer_name, bytes,\n"
          "expires_in_ms, sent}; with --cancel, {id, status: cancelled}.\n",
          stdout);
}

static int cancel(cli_ctx *ctx, cli_client *cl, const char *hex)
{
    uint8_t id[CONFAB_MSG_ID_BYTES];
    size_t n = 0;
    if (strlen(hex) != 2 * CONFAB_MSG_ID_BYTES ||
        sodium_hex2bin(id, sizeof id, hex, strlen(hex), NULL, &n, NULL) != 0 ||
        n != sizeof id) {
        cli_error(ctx,
                  "--cancel takes a message id: 32 hex digits, as 'confab "
                  "queue' shows them, not '%s'",
                  hex);
        return CLI_USAGE;
    }
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(cl, &b, "queue", 1, &rid);
    wire_ctl_key(&b, "cancel");
    wire_ctl_put_bin(&b, id, sizeof id);
    int rc = cli_call(cl, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK)
        return rc;
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(o, "status",
                               json_object_new_string("cancelled"));
        cli_json_print(o);
    } else {
        printf("cancelled message %s\n", hex);
    }
    return CLI_OK;
}

static void print_one(cli_ctx *ctx, const cli_peers *peers,
                      const wire_ctl_map *q)
{
    wire_bytes mid, to;
    uint64_t len = 0, exp = 0;
    int sent = 0;
    if (wire_ctl_get_bin(q, "mid", &mid) != 0 ||
        mid.len != CONFAB_MSG_ID_BYTES || wire_ctl_get_bin(q, "to", &to) != 0 ||
        to.len != CONFAB_ID_BYTES)
        return;
    (void)wire_ctl_get_uint(q, "len", &len);
    (void)wire_ctl_get_uint(q, "expires_us", &exp);
    (void)wire_ctl_get_bool(q, "sent", &sent);
    const cli_peer *p = cli_peers_find(peers, to.ptr);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us =
        (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t left_ms = exp > now_us ? (exp - now_us) / 1000u : 0;
    char hex[2 * CONFAB_MSG_ID_BYTES + 1], sid[9];
    cli_hex(mid.ptr, mid.len, hex, sizeof hex);
    cli_short_id(to.ptr, sid);
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(o, "peer", cli_json_hex(to.ptr, to.len));
        json_object_object_add(o, "peer_name",
                               json_object_new_string(p ? p->name : ""));
        json_object_object_add(o, "bytes", json_object_new_uint64(len));
        json_object_object_add(o, "expires_in_ms",
                               json_object_new_uint64(left_ms));
        json_object_object_add(o, "sent", json_object_new_boolean(sent));
        cli_json_print(o);
        return;
    }
    char name[CONFAB_MAX_NAME + 1] = "";
    if (p != NULL)
        cli_safe_copy(name, sizeof name, p->name);
    printf("%s  %s %-12s  %8llu bytes  expires in %llu s%s\n", hex, sid, name,
           (unsigned long long)len, (unsigned long long)(left_ms / 1000u),
           sent ? "" : ", not sent yet");
}

int cli_cmd_queue(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cancel", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cancel_id = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help();
            return CLI_OK;
        }
        if (c == 'c') {
            cancel_id = optarg;
            continue;
        }
        cli_error(ctx,
                  "unknown option or missing value '%s'; try 'confab "
                  "queue --help'",
                  argv[optind - 1]);
        return CLI_USAGE;
    }
    if (optind < argc) {
        cli_error(ctx, "queue takes no arguments ('%s')", argv[optind]);
        return CLI_USAGE;
    }
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    if (cancel_id != NULL) {
        rc = cancel(ctx, &cl, cancel_id);
        cli_close(&cl);
        return rc;
    }
    cli_peers peers = {0};
    rc = cli_peers_fetch(&cl, &peers);
    wire_ctl_builder b;
    wire_ctl_map r, q;
    uint64_t rid, total = 0;
    if (rc == CLI_OK) {
        cli_request(&cl, &b, "queue", 0, &rid);
        rc = cli_call(&cl, &b, rid, &r, 10000);
        wire_ctl_builder_free(&b);
    }
    if (rc == CLI_OK) {
        wire_iter it;
        uint32_t n = 0;
        (void)wire_ctl_get_uint(&r, "total", &total);
        if (total == 0 && !ctx->json)
            printf("nothing queued: every message sent was acknowledged\n");
        if (wire_ctl_get_array(&r, "queued", &it, &n) == 0)
            while (wire_ctl_next_map(&it, &q) == 1)
                print_one(ctx, &peers, &q);
        if (total > n && !ctx->json)
            printf("... and %llu more\n", (unsigned long long)(total - n));
    }
    cli_peers_free(&peers);
    cli_close(&cl);
    return rc;
}
