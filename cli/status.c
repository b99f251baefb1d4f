/* cli/status.c: `confab status`: what the running node is, in one view. */
#include "cli/client.h"

#include "node/confab.h"

#include <json-c/json.h>
#include <string.h>

/* What the status reply says, read once for either view. */
typedef struct status_view {
    wire_bytes name;
    char hex[65];
    uint64_t port, peers, known, inbox;
    bool has_stats;
    wire_ctl_map stats;
} status_view;

static void status_read(wire_ctl_map *r, status_view *v)
{
    memset(v, 0, sizeof *v);
    wire_bytes id = {0};
    (void)wire_ctl_get_bin(r, "id", &id);
    (void)wire_ctl_get_str(r, "name", &v->name);
    (void)wire_ctl_get_uint(r, "port", &v->port);
    (void)wire_ctl_get_uint(r, "peers", &v->peers);
    (void)wire_ctl_get_uint(r, "known", &v->known);
    (void)wire_ctl_get_uint(r, "inbox", &v->inbox);
    if (id.len == CONFAB_ID_BYTES)
        confab_id_hex(id.ptr, v->hex);
    v->has_stats = wire_ctl_get_map(r, "stats", &v->stats) == 0;
}

/* The counters as a JSON object (empty without a stats map). */
static json_object *status_counters_json(status_view *v)
{
    json_object *so = json_object_new_object();
    if (!v->has_stats)
        return so;
    wire_ctl_walk w;
    wire_bytes k;
    wire_mp_reader *val;
    wire_ctl_walk_init(&v->stats, &w);
    while (wire_ctl_walk_next(&w, &k, &val) == 1) {
        uint64_t n;
        char key[64];
        if (wire_mp_read_uint(val, &n) != 0 || k.len >= sizeof key)
            continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        json_object_object_add(so, key, json_object_new_uint64(n));
    }
    return so;
}

static void status_print_json(wire_ctl_map *r, status_view *v)
{
    wire_iter it;
    uint32_t ng = 0;
    wire_bytes g;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(v->hex));
    json_object_object_add(o, "name",
                           json_object_new_string_len((const char *)v->name.ptr,
                                                      (int)v->name.len));
    json_object_object_add(o, "port", json_object_new_uint64(v->port));
    json_object_object_add(o, "peers", json_object_new_uint64(v->peers));
    json_object_object_add(o, "known", json_object_new_uint64(v->known));
    json_object_object_add(o, "inbox", json_object_new_uint64(v->inbox));
    json_object *ga = json_object_new_array();
    if (wire_ctl_get_array(r, "groups", &it, &ng) == 0)
        while (wire_ctl_next_str(&it, &g) == 1)
            json_object_array_add(ga, json_object_new_string_len(
                                          (const char *)g.ptr, (int)g.len));
    json_object_object_add(o, "groups", ga);
    json_object_object_add(o, "counters", status_counters_json(v));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void status_print_text(wire_ctl_map *r, status_view *v)
{
    wire_iter it;
    uint32_t ng = 0;
    wire_bytes g;
    printf("node    %.*s\nid      %s\nport    %llu\npeers   %llu linked, "
           "%llu known\nunread  %llu\n",
           (int)v->name.len, (const char *)v->name.ptr, v->hex,
           (unsigned long long)v->port, (unsigned long long)v->peers,
           (unsigned long long)v->known, (unsigned long long)v->inbox);
    printf("groups ");
    if (wire_ctl_get_array(r, "groups", &it, &ng) == 0 && ng > 0)
        while (wire_ctl_next_str(&it, &g) == 1)
            printf(" %.*s", (int)g.len, (const char *)g.ptr);
    else
        printf(" (none)");
    printf("\n");
    if (v->has_stats) {
        wire_ctl_walk w;
        wire_bytes k;
        wire_mp_reader *val;
        wire_ctl_walk_init(&v->stats, &w);
        printf("counters\n");
        while (wire_ctl_walk_next(&w, &k, &val) == 1) {
            uint64_t n;
            if (wire_mp_read_uint(val, &n) == 0)
                printf("  %-24.*s %llu\n", (int)k.len, (const char *)k.ptr,
                       (unsigned long long)n);
        }
    }
}

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
    status_view v;
    status_read(&r, &v);
    if (ctx->json)
        status_print_json(&r, &v);
    else
        status_print_text(&r, &v);
    cli_close(&c);
    return CLI_OK;
}
