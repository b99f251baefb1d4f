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
    /* how it is set up ("about"; absent from an older node) */
    bool has_about;
    char version[32], network[16], fp[17], bind[64];
    uint64_t uptime_ms, dport, targets_total, allowed;
    uint64_t ping_ms, timeout_ms, anycast_ms, max_message;
    int discovery, allow_list;
    char targets[8][48];
    size_t n_targets;
} status_view;

static void copy_str(const wire_ctl_map *m, const char *key, char *out,
                     size_t cap)
{
    wire_bytes v;
    out[0] = '\0';
    if (wire_ctl_get_str(m, key, &v) == 0 && v.len < cap) {
        memcpy(out, v.ptr, v.len);
        out[v.len] = '\0';
        cli_safe_copy(out, cap, out);
    }
}

static void about_read(wire_ctl_map *r, status_view *v)
{
    wire_ctl_map a;
    wire_iter it;
    uint32_t n = 0;
    wire_bytes t;
    v->has_about = wire_ctl_get_map(r, "about", &a) == 0;
    if (!v->has_about)
        return;
    copy_str(&a, "version", v->version, sizeof v->version);
    copy_str(&a, "network", v->network, sizeof v->network);
    copy_str(&a, "netkey_fp", v->fp, sizeof v->fp);
    copy_str(&a, "bind", v->bind, sizeof v->bind);
    (void)wire_ctl_get_uint(&a, "uptime_ms", &v->uptime_ms);
    (void)wire_ctl_get_uint(&a, "discovery_port", &v->dport);
    (void)wire_ctl_get_uint(&a, "targets_total", &v->targets_total);
    (void)wire_ctl_get_uint(&a, "allowed", &v->allowed);
    (void)wire_ctl_get_uint(&a, "ping_interval_ms", &v->ping_ms);
    (void)wire_ctl_get_uint(&a, "peer_timeout_ms", &v->timeout_ms);
    (void)wire_ctl_get_uint(&a, "anycast_timeout_ms", &v->anycast_ms);
    (void)wire_ctl_get_uint(&a, "max_message", &v->max_message);
    (void)wire_ctl_get_bool(&a, "discovery", &v->discovery);
    (void)wire_ctl_get_bool(&a, "allow_list", &v->allow_list);
    if (wire_ctl_get_array(&a, "targets", &it, &n) == 0)
        while (v->n_targets < 8 && wire_ctl_next_str(&it, &t) == 1) {
            char *d = v->targets[v->n_targets++];
            snprintf(d, sizeof v->targets[0], "%.*s", (int)t.len,
                     (const char *)t.ptr);
            cli_safe_copy(d, sizeof v->targets[0], d);
        }
}

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
    about_read(r, v);
}

/* A counter by name, 0 when the node has none of that name. */
static uint64_t counter(status_view *v, const char *name)
{
    uint64_t n = 0;
    if (v->has_stats)
        (void)wire_ctl_get_uint(&v->stats, name, &n);
    return n;
}

static void about_json(json_object *o, const status_view *v)
{
    if (!v->has_about)
        return;
    json_object_object_add(o, "version", json_object_new_string(v->version));
    json_object_object_add(o, "uptime_ms",
                           json_object_new_uint64(v->uptime_ms));
    json_object_object_add(o, "network", json_object_new_string(v->network));
    json_object_object_add(o, "netkey_fp", json_object_new_string(v->fp));
    json_object_object_add(o, "bind", json_object_new_string(v->bind));
    json_object_object_add(o, "discovery",
                           json_object_new_boolean(v->discovery));
    json_object_object_add(o, "discovery_port",
                           json_object_new_uint64(v->dport));
    json_object *ta = json_object_new_array();
    for (size_t i = 0; i < v->n_targets; i++)
        json_object_array_add(ta, json_object_new_string(v->targets[i]));
    json_object_object_add(o, "discovery_targets", ta);
    json_object_object_add(o, "allow_list",
                           json_object_new_boolean(v->allow_list));
    json_object_object_add(o, "allowed", json_object_new_uint64(v->allowed));
    json_object_object_add(o, "ping_interval_ms",
                           json_object_new_uint64(v->ping_ms));
    json_object_object_add(o, "peer_timeout_ms",
                           json_object_new_uint64(v->timeout_ms));
    json_object_object_add(o, "anycast_timeout_ms",
                           json_object_new_uint64(v->anycast_ms));
    json_object_object_add(o, "max_message",
                           json_object_new_uint64(v->max_message));
}

static void print_uptime(uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 86400)
        printf("%llud %02lluh", (unsigned long long)(s / 86400),
               (unsigned long long)(s % 86400 / 3600));
    else if (s >= 3600)
        printf("%lluh %02llum", (unsigned long long)(s / 3600),
               (unsigned long long)(s % 3600 / 60));
    else
        printf("%llum %02llus", (unsigned long long)(s / 60),
               (unsigned long long)(s % 60));
}

/* The set-up, and why beacons and handshakes were turned away. */
static void about_text(status_view *v)
{
    if (!v->has_about)
        return;
    printf("version %s, up ", v->version);
    print_uptime(v->uptime_ms);
    printf("\nnetwork %s, key fingerprint %s\n", v->network, v->fp);
    printf("links   on %s port %llu\n", v->bind, (unsigned long long)v->port);
    if (!v->discovery) {
        printf("discovery off (static peers only)\n");
    } else {
        printf("discovery port %llu, beacons to", (unsigned long long)v->dport);
        for (size_t i = 0; i < v->n_targets; i++)
            printf("%s %s", i ? "," : "", v->targets[i]);
        if (v->targets_total > v->n_targets)
            printf(" and %llu more",
                   (unsigned long long)(v->targets_total - v->n_targets));
        if (v->targets_total == 0)
            printf(" nowhere yet (no interface can broadcast)");
        printf("\n");
    }
    if (v->allow_list)
        printf("allow   a list of %llu id%s (confab allow)\n",
               (unsigned long long)v->allowed, v->allowed == 1 ? "" : "s");
    else
        printf("allow   any node with the network key (no list)\n");
    printf("timers  ping %llu ms, peer timeout %llu ms, anycast timeout "
           "%llu ms; largest body %llu bytes\n",
           (unsigned long long)v->ping_ms, (unsigned long long)v->timeout_ms,
           (unsigned long long)v->anycast_ms,
           (unsigned long long)v->max_message);
    printf("beacons %llu heard, dropped: %llu own, %llu bad tag (another "
           "network key), %llu rate-limited, %llu malformed\n",
           (unsigned long long)counter(v, "beacons_received"),
           (unsigned long long)counter(v, "beacons_own"),
           (unsigned long long)counter(v, "beacons_bad_tag"),
           (unsigned long long)counter(v, "beacons_rate_limited"),
           (unsigned long long)counter(v, "beacons_malformed"));
    printf("handshakes refused: %llu by key (another network), %llu timed "
           "out, %llu over the limit, %llu not allowed\n",
           (unsigned long long)counter(v, "handshakes_refused_key"),
           (unsigned long long)counter(v, "handshakes_timed_out"),
           (unsigned long long)counter(v, "links_refused_busy"),
           (unsigned long long)counter(v, "handshakes_not_allowed"));
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
    json_object_object_add(o, "unread", json_object_new_uint64(v->inbox));
    about_json(o, v);
    json_object *ga = json_object_new_array();
    if (wire_ctl_get_array(r, "groups", &it, &ng) == 0)
        while (wire_ctl_next_str(&it, &g) == 1)
            json_object_array_add(ga, json_object_new_string_len(
                                          (const char *)g.ptr, (int)g.len));
    json_object_object_add(o, "groups", ga);
    json_object_object_add(o, "counters", status_counters_json(v));
    printf("%s\n",
           json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
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
    about_text(v);
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
              "name, port, peers, groups, unread\nmessages, version and "
              "uptime, network (public or private, with\nthe key's "
              "fingerprint), bind address, discovery port and targets,\n"
              "the allow-list, and its counters, with why beacons and\n"
              "handshakes were turned away.\n",
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
