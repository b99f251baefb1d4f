/* cli/status.c: `confab status`: what the running node is, in one view. */
#include "cli/client.h"

#include "node/confab.h"

#include <json-c/json.h>
#include <string.h>

int cli_cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        fputs("usage: confab status\n\nShows the running node: its id, "
              "name, port, peers, groups, unread\nmessages and counters.\n",
              stdout);
        return CLI_OK;
    }
    if (argc > 1) {
        cli_error(ctx, "status takes no arguments ('%s')", argv[1]);
        return CLI_USAGE;
    }
    cli_client c;
    int rc = cli_connect(ctx, &c);
    if (rc != CLI_OK)
        return rc;
    wire_ctl_builder b;
    uint64_t rid;
    wire_ctl_map r;
    cli_request(&c, &b, "status", 0, &rid);
    rc = cli_call(&c, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK) {
        cli_close(&c);
        return rc;
    }
    wire_bytes id = {0}, name = {0};
    uint64_t port = 0, peers = 0, known = 0, inbox = 0;
    (void)wire_ctl_get_bin(&r, "id", &id);
    (void)wire_ctl_get_str(&r, "name", &name);
    (void)wire_ctl_get_uint(&r, "port", &port);
    (void)wire_ctl_get_uint(&r, "peers", &peers);
    (void)wire_ctl_get_uint(&r, "known", &known);
    (void)wire_ctl_get_uint(&r, "inbox", &inbox);
    char hex[65] = "";
    if (id.len == CONFAB_ID_BYTES)
        confab_id_hex(id.ptr, hex);
    wire_iter it;
    uint32_t ng = 0;
    wire_bytes g;
    wire_ctl_map stats;
    bool has_stats = wire_ctl_get_map(&r, "stats", &stats) == 0;
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(
            o, "name",
            json_object_new_string_len((const char *)name.ptr, (int)name.len));
        json_object_object_add(o, "port", json_object_new_uint64(port));
        json_object_object_add(o, "peers", json_object_new_uint64(peers));
        json_object_object_add(o, "known", json_object_new_uint64(known));
        json_object_object_add(o, "inbox", json_object_new_uint64(inbox));
        json_object *ga = json_object_new_array();
        if (wire_ctl_get_array(&r, "groups", &it, &ng) == 0)
            while (wire_ctl_next_str(&it, &g) == 1)
                json_object_array_add(ga, json_object_new_string_len(
                                              (const char *)g.ptr, (int)g.len));
        json_object_object_add(o, "groups", ga);
        json_object *so = json_object_new_object();
        if (has_stats) {
            wire_ctl_walk w;
            wire_bytes k;
            wire_mp_reader *val;
            wire_ctl_walk_init(&stats, &w);
            while (wire_ctl_walk_next(&w, &k, &val) == 1) {
                uint64_t v;
                char key[64];
                if (wire_mp_read_uint(val, &v) != 0 || k.len >= sizeof key)
                    continue;
                memcpy(key, k.ptr, k.len);
                key[k.len] = '\0';
                json_object_object_add(so, key, json_object_new_uint64(v));
            }
        }
        json_object_object_add(o, "counters", so);
        printf("%s\n",
               json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("node    %.*s\nid      %s\nport    %llu\npeers   %llu linked, "
               "%llu known\nunread  %llu\n",
               (int)name.len, (const char *)name.ptr, hex,
               (unsigned long long)port, (unsigned long long)peers,
               (unsigned long long)known, (unsigned long long)inbox);
        printf("groups ");
        if (wire_ctl_get_array(&r, "groups", &it, &ng) == 0 && ng > 0)
            while (wire_ctl_next_str(&it, &g) == 1)
                printf(" %.*s", (int)g.len, (const char *)g.ptr);
        else
            printf(" (none)");
        printf("\n");
        if (has_stats) {
            wire_ctl_walk w;
            wire_bytes k;
            wire_mp_reader *val;
            wire_ctl_walk_init(&stats, &w);
            printf("counters\n");
            while (wire_ctl_walk_next(&w, &k, &val) == 1) {
                uint64_t v;
                if (wire_mp_read_uint(val, &v) == 0)
                    printf("  %-24.*s %llu\n", (int)k.len, (const char *)k.ptr,
                           (unsigned long long)v);
            }
        }
    }
    cli_close(&c);
    return CLI_OK;
}
