/* cli/testnet.c: `confab testnet`: a whole network in this process, on
 * loopback, that finds itself by beacons, then shows unicast and broadcast
 * working and reports what happened: the zero-configuration demonstration.
 */
#include "cli/cli.h"

#include "node/testnet.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 500u
#define DEFAULT_NODES 5u

/* One message the run expects to arrive, once, at one node. */
typedef struct expect {
    uint8_t id[CONFAB_MSG_ID_BYTES];
    unsigned from, to;  /* to: UINT32_MAX for an anycast (any one member) */
    const char *what;   /* "unicast", "broadcast", "shout", "anycast" */
    unsigned got;       /* times it arrived */
    unsigned at;        /* where (the last time) */
    uint64_t latency_us;
} expect;

#define ANY_MEMBER UINT32_MAX
#define DEMO_GROUP "demo"

typedef struct run {
    confab_testnet *tn;
    unsigned n;
    expect *ex;
    size_t n_ex;
    size_t cap_ex;
} run;

static int add_expect(run *r, const uint8_t id[CONFAB_MSG_ID_BYTES],
                      unsigned from, unsigned to, const char *what)
{
    if (r->n_ex == r->cap_ex) {
        size_t cap = r->cap_ex ? r->cap_ex * 2 : 64;
        expect *e = realloc(r->ex, cap * sizeof *e);
        if (e == NULL)
            return -ENOMEM;
        r->ex = e;
        r->cap_ex = cap;
    }
    expect *e = &r->ex[r->n_ex++];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, CONFAB_MSG_ID_BYTES);
    e->from = from;
    e->to = to;
    e->what = what;
    return 0;
}

/* Matches the recorded message events against what was sent. Returns the
 * number of receipts nobody expected (or that came twice). */
static size_t tally(run *r)
{
    for (size_t k = 0; k < r->n_ex; k++)
        r->ex[k].got = 0;
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(r->tn, &ev);
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != CONFAB_EV_MESSAGE)
            continue;
        bool found = false;
        for (size_t k = 0; k < r->n_ex && !found; k++) {
            expect *e = &r->ex[k];
            if ((e->to == ev[i].node || e->to == ANY_MEMBER) &&
                memcmp(e->id, ev[i].msg_id, CONFAB_MSG_ID_BYTES) == 0) {
                found = true;
                e->at = ev[i].node;
                if (++e->got == 1)
                    e->latency_us = ev[i].at_us > ev[i].sent_us
                                        ? ev[i].at_us - ev[i].sent_us
                                        : 0;
                else
                    extra++;
            }
        }
        if (!found)
            extra++;
    }
    return extra;
}

static bool all_arrived(confab_testnet *tn, void *arg)
{
    run *r = arg;
    (void)tn;
    tally(r);
    for (size_t k = 0; k < r->n_ex; k++)
        if (r->ex[k].got == 0)
            return false;
    return true;
}

/* Node 0 sees every odd node as a member of the demo group. */
static bool group_ready(confab_testnet *tn, void *arg)
{
    run *r = arg;
    uint8_t ids[64][CONFAB_ID_BYTES];
    size_t want = r->n / 2;
    return confab_group_members(confab_testnet_node(tn, 0), DEMO_GROUP, ids,
                                64) == want;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void short_hex(const uint8_t *id, char out[9])
{
    char hex[65];
    confab_id_hex(id, hex);
    memcpy(out, hex, 8);
    out[8] = '\0';
}

static void help(FILE *f)
{
    fputs("usage: confab testnet [--nodes N] [--seed S] [--timeout SECONDS]"
          " [--json]\n"
          "\n"
          "Runs N nodes (default 5, at most 500) in this process, on\n"
          "127.0.0.1 only: they find each other by UDP broadcast to\n"
          "127.255.255.255 and link with Noise handshakes. Then every node\n"
          "sends a unicast to the next one, the first node broadcasts, the\n"
          "odd nodes join a group to which the first node shouts and sends\n"
          "an anycast, and the command reports how long the mesh took,\n"
          "what arrived, and how fast.\n"
          "\n"
          "  --nodes N         how many nodes\n"
          "  --seed S          derive the identities from S (a run can be\n"
          "                    repeated); default: random, and printed\n"
          "  --timeout SECONDS how long to wait for the mesh and for the\n"
          "                    messages (default 30)\n"
          "  --json            one JSON object: nodes, mesh_ms, sent,\n"
          "                    delivered, lost, duplicates, p50_us, p99_us\n"
          "\n"
          "Exit status: 0 when every message arrived exactly once; 4 when\n"
          "the mesh or a message did not come in time; 6 when a message\n"
          "came twice or unbidden; 1 for a usage error.\n",
          f);
}

int cli_cmd_testnet(cli_ctx *ctx, int argc, char **argv)
{
    uint64_t nodes = DEFAULT_NODES, seed = 0, timeout_s = 30;
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:s:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cli_parse_u64(optarg, 1, MAX_NODES, &nodes) != 0) {
                cli_error(ctx, "--nodes takes a number from 1 to %u, not '%s'",
                          MAX_NODES, optarg);
                return CLI_USAGE;
            }
            break;
        case 's':
            if (cli_parse_u64(optarg, 1, UINT64_MAX, &seed) != 0) {
                cli_error(ctx, "--seed takes a positive whole number, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 't':
            if (cli_parse_u64(optarg, 1, 3600, &timeout_s) != 0) {
                cli_error(ctx, "--timeout takes seconds from 1 to 3600, not "
                               "'%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'j':
            ctx->json = true;
            break;
        case 'h':
            help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx, "unknown option '%s'; try 'confab testnet --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(ctx, "testnet takes no arguments ('%s'); try 'confab "
                       "testnet --help'",
                  argv[optind]);
        return CLI_USAGE;
    }
    if (seed == 0) {
        uv_loop_t tmp; /* any entropy will do for the seed */
        seed = (uint64_t)uv_hrtime() ^ ((uint64_t)(uintptr_t)&tmp << 16);
        if (seed == 0)
            seed = 1;
    }

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        cli_error(ctx, "cannot make an event loop");
        return CLI_FAILED;
    }
    confab_testnet_config cfg;
    confab_testnet_config_init(&cfg);
    cfg.nodes = (unsigned)nodes;
    cfg.seed = seed;
    cfg.discovery = true;
    cfg.node.log_level = CONFAB_LOG_ERROR;
    run r;
    memset(&r, 0, sizeof r);
    r.n = (unsigned)nodes;
    int rc = confab_testnet_new(&loop, &cfg, &r.tn);
    if (rc == -EMFILE) {
        cli_error(ctx, "%u nodes need about %llu open files but the limit "
                       "is lower; raise it (ulimit -n) or use fewer nodes",
                  r.n, (unsigned long long)r.n * (r.n + 2) + 64);
        return CLI_FAILED;
    }
    if (rc != 0) {
        cli_error(ctx, "cannot create the nodes: %s", confab_strerror(rc));
        return CLI_FAILED;
    }
    char buf[128], buf2[128];
    bool human = !ctx->json;
    if (human) {
        printf("%s\n\n",
               cli_paint(ctx, "1",
                         "confab testnet: a network of nodes in one process",
                         buf, sizeof buf));
        printf("Starting %u node%s on 127.0.0.1, identities from seed %llu "
               "(rerun with --seed %llu to get the same ones).\n",
               r.n, r.n == 1 ? "" : "s", (unsigned long long)seed,
               (unsigned long long)seed);
    }
    uint64_t t0 = uv_hrtime();
    rc = confab_testnet_start(r.tn);
    if (rc != 0) {
        cli_error(ctx, "cannot start the nodes: %s", confab_strerror(rc));
        (void)confab_testnet_free(r.tn);
        uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        return CLI_FAILED;
    }
    if (human) {
        unsigned show = r.n <= 10 ? r.n : 10;
        for (unsigned i = 0; i < show; i++) {
            confab_node *nd = confab_testnet_node(r.tn, i);
            char sid[9];
            short_hex(confab_node_id(nd), sid);
            printf("  %-4s id %s...  listening on 127.0.0.1:%u\n",
                   confab_node_name(nd), sid, confab_node_port(nd));
        }
        if (show < r.n)
            printf("  ... and %u more\n", r.n - show);
        printf("\nThey find each other by UDP beacons to "
               "127.255.255.255:%u, and each pair\n"
               "opens one TCP link secured by a Noise_XXpsk0 handshake "
               "(the smaller id dials).\n",
               confab_testnet_discovery_port(r.tn));
        fflush(stdout);
    }
    int exit_code = CLI_OK;
    unsigned links = r.n * (r.n - 1) / 2;
    rc = confab_testnet_wait_mesh(r.tn, (unsigned)timeout_s * 1000u);
    double mesh_ms = (double)(uv_hrtime() - t0) / 1e6;
    if (rc != 0) {
        cli_error(ctx, "the nodes did not all link within %llu s; try a "
                       "longer --timeout, or fewer --nodes",
                  (unsigned long long)timeout_s);
        exit_code = CLI_TIMEOUT;
        goto out;
    }
    if (human)
        printf("  %s after %.0f ms: %u link%s, every node linked to every "
               "other.\n\n",
               cli_paint(ctx, "32", "full mesh", buf, sizeof buf), mesh_ms,
               links, links == 1 ? "" : "s");

    /* Unicast: node i to node i+1. */
    if (r.n >= 2) {
        if (human)
            printf("Unicast: every node sends one message to the next.\n");
        for (unsigned i = 0; i < r.n; i++) {
            unsigned to = (i + 1) % r.n;
            char body[96];
            int len = snprintf(body, sizeof body, "hello n%u, from n%u", to, i);
            uint8_t id[CONFAB_MSG_ID_BYTES];
            confab_send_opts o = {.content_type = "text/plain"};
            rc = confab_send(confab_testnet_node(r.tn, i),
                             confab_node_id(confab_testnet_node(r.tn, to)),
                             body, (size_t)len, &o, id);
            if (rc != 0 || add_expect(&r, id, i, to, "unicast") != 0) {
                cli_error(ctx, "n%u could not send to n%u: %s", i, to,
                          confab_strerror(rc));
                exit_code = CLI_FAILED;
                goto out;
            }
        }
        /* Broadcast: node 0 to everybody. */
        uint8_t id[CONFAB_MSG_ID_BYTES];
        size_t sent = 0;
        const char *hello = "hello everybody, from n0";
        rc = confab_broadcast(confab_testnet_node(r.tn, 0), hello,
                              strlen(hello), NULL, id, &sent);
        if (rc != 0) {
            cli_error(ctx, "n0 could not broadcast: %s", confab_strerror(rc));
            exit_code = CLI_FAILED;
            goto out;
        }
        for (unsigned j = 1; j < r.n; j++)
            if (add_expect(&r, id, 0, j, "broadcast") != 0) {
                exit_code = CLI_FAILED;
                goto out;
            }
    }
    /* Multicast and anycast: the odd nodes join a group; n0, not a member,
     * shouts to it, then sends one anycast, which the nearest member
     * takes. */
    size_t group_first = r.n_ex;
    if (r.n >= 3) {
        for (unsigned i = 1; i < r.n; i += 2)
            if (confab_join(confab_testnet_node(r.tn, i), DEMO_GROUP) != 0) {
                exit_code = CLI_FAILED;
                goto out;
            }
        if (confab_testnet_run_until(r.tn, group_ready, &r,
                                     (unsigned)timeout_s * 1000u) != 0) {
            cli_error(ctx, "the group's members were not known in time");
            exit_code = CLI_TIMEOUT;
            goto out;
        }
        uint8_t id[CONFAB_MSG_ID_BYTES];
        const char *shout = "hello group demo, from n0";
        rc = confab_shout(confab_testnet_node(r.tn, 0), DEMO_GROUP, shout,
                          strlen(shout), NULL, id, NULL);
        for (unsigned i = 1; rc == 0 && i < r.n; i += 2)
            rc = add_expect(&r, id, 0, i, "shout");
        const char *job = "a job for the nearest member of demo";
        if (rc == 0)
            rc = confab_anycast(confab_testnet_node(r.tn, 0), DEMO_GROUP, job,
                                strlen(job), NULL, id);
        if (rc == 0)
            rc = add_expect(&r, id, 0, ANY_MEMBER, "anycast");
        if (rc != 0) {
            cli_error(ctx, "n0 could not send to the group: %s",
                      confab_strerror(rc));
            exit_code = CLI_FAILED;
            goto out;
        }
    }
    if (r.n >= 2)
        rc = confab_testnet_run_until(r.tn, all_arrived, &r,
                                      (unsigned)timeout_s * 1000u);
    size_t extra = tally(&r);
    size_t delivered = 0;
    uint64_t *lat = calloc(r.n_ex ? r.n_ex : 1, sizeof *lat);
    if (lat == NULL) {
        exit_code = CLI_FAILED;
        goto out;
    }
    for (size_t k = 0; k < r.n_ex; k++)
        if (r.ex[k].got > 0)
            lat[delivered++] = r.ex[k].latency_us;
    qsort(lat, delivered, sizeof *lat, cmp_u64);
    uint64_t p50 = delivered ? lat[(delivered - 1) / 2] : 0;
    uint64_t p99 = delivered ? lat[(delivered - 1) * 99 / 100] : 0;
    free(lat);
    size_t lost = r.n_ex - delivered;

    if (human && r.n >= 2) {
        unsigned show = r.n <= 10 ? r.n : 10;
        for (size_t k = 0; k < r.n_ex && k < show; k++) {
            expect *e = &r.ex[k];
            snprintf(buf2, sizeof buf2, "n%u -> n%u", e->from, e->to);
            if (e->got > 0)
                printf("  %-10s arrived after %llu us\n", buf2,
                       (unsigned long long)e->latency_us);
            else
                printf("  %-10s %s\n", buf2,
                       cli_paint(ctx, "31", "did not arrive", buf,
                                 sizeof buf));
        }
        if (show < r.n)
            printf("  ... and %u more\n", r.n - show);
        unsigned bgot = 0;
        for (size_t k = r.n; k < group_first; k++)
            bgot += r.ex[k].got > 0;
        printf("\nBroadcast: n0 sends one message to everybody.\n"
               "  %u of %u other nodes got it.\n",
               bgot, r.n - 1);
        if (group_first < r.n_ex) {
            unsigned sgot = 0, members = r.n / 2;
            for (size_t k = group_first; k + 1 < r.n_ex; k++)
                sgot += r.ex[k].got > 0;
            expect *any = &r.ex[r.n_ex - 1];
            printf("\nMulticast: the odd nodes join group \"%s\"; n0 (not a "
                   "member) shouts to it.\n"
                   "  %u of %u members got it; nobody else did.\n",
                   DEMO_GROUP, sgot, members);
            printf("\nAnycast: n0 sends one job to the group: exactly one "
                   "member, the nearest, takes it.\n");
            if (any->got > 0)
                printf("  n%u took it.\n", any->at);
            else
                printf("  %s\n", cli_paint(ctx, "31", "nobody took it", buf,
                                           sizeof buf));
        }
        printf("\n");
    }
    if (lost > 0 || rc != 0)
        exit_code = CLI_TIMEOUT;
    else if (extra > 0)
        exit_code = CLI_FAILED;

    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "nodes", json_object_new_int64(r.n));
        json_object_object_add(o, "links", json_object_new_int64(links));
        json_object_object_add(o, "seed",
                               json_object_new_uint64(seed));
        json_object_object_add(o, "mesh_ms",
                               json_object_new_int64((int64_t)mesh_ms));
        json_object_object_add(o, "sent",
                               json_object_new_int64((int64_t)r.n_ex));
        json_object_object_add(o, "delivered",
                               json_object_new_int64((int64_t)delivered));
        json_object_object_add(o, "lost", json_object_new_int64((int64_t)lost));
        json_object_object_add(o, "duplicates",
                               json_object_new_int64((int64_t)extra));
        json_object_object_add(o, "p50_us", json_object_new_uint64(p50));
        json_object_object_add(o, "p99_us", json_object_new_uint64(p99));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("%s\n", cli_paint(ctx, "1", "Summary", buf, sizeof buf));
        printf("  nodes %u, links %u, full mesh in %.0f ms\n", r.n, links,
               mesh_ms);
        printf("  messages sent %zu, delivered %zu, lost %zu, duplicated %zu"
               "\n",
               r.n_ex, delivered, lost, extra);
        printf("  delivery latency p50 %llu us, p99 %llu us\n",
               (unsigned long long)p50, (unsigned long long)p99);
        printf("  %s\n",
               exit_code == CLI_OK
                   ? cli_paint(ctx, "32", "every message arrived exactly once",
                               buf, sizeof buf)
                   : cli_paint(ctx, "31", "some messages went astray", buf,
                               sizeof buf));
    }
out:
    free(r.ex);
    if (confab_testnet_free(r.tn) != 0 && exit_code == CLI_OK)
        exit_code = CLI_FAILED;
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    return exit_code;
}
