/* cli/testnet.c: `confab testnet`: a whole network in this process, on
 * loopback, that finds itself by beacons, then shows unicast and broadcast
 * working and reports what happened: the zero-configuration demonstration.
 */
#include "cli/cli.h"
#include "cli/testnet_scale.h"

#include "node/testnet.h"
#include "node/web.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NODES     1000u
#define DEFAULT_NODES 5u
#define DEFAULT_WEB   "127.0.0.1:8474"

/* One message the run expects to arrive, once, at one node. */
typedef struct expect {
    uint8_t id[CONFAB_MSG_ID_BYTES];
    unsigned from, to; /* to: UINT32_MAX for an anycast (any one member) */
    const char *what;  /* "unicast", "broadcast", "shout", "anycast" */
    unsigned got;      /* times it arrived */
    unsigned at;       /* where (the last time) */
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
    unsigned timeout_ms;
    uv_loop_t *loop;
    /* --web, --step, --html */
    confab_web *web;
    const char *web_addr;
    size_t web_sse_max;
    bool step;
    bool step_wanted; /* a click or a key asked for the next pattern */
    bool quit;        /* Ctrl-C, SIGTERM or q */
    uv_tty_t tty;
    bool tty_open;
    uv_signal_t sigint, sigterm;
    bool signals_open;
    unsigned links_each; /* area: scale (#13): links a node keeps */
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

/* ---- the patterns, one at a time, and the page -------------------------- */

#define N_PATTERNS 4u
static const char *const pattern_name[N_PATTERNS] = {"unicast", "broadcast",
                                                     "shout", "anycast"};
static const char *const pattern_caption[N_PATTERNS] = {
    "Unicast: every node sends one message to the next one, one path each.",
    "Broadcast: n0 sends one message that reaches every other node.",
    "Multicast: the odd nodes join group \"" DEMO_GROUP "\"; n0, not a "
    "member, shouts to it: only the members get it.",
    "Anycast: n0 sends one job to group \"" DEMO_GROUP "\": one member, "
    "the nearest, takes it (at-least-once across members: after a "
    "failover two may).",
};

/* Tells the page where the run is: {"t":"step", ...}. */
static void note(run *r, unsigned k, const char *state, const char *text)
{
    if (r->web == NULL)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "t", json_object_new_string("step"));
    json_object_object_add(o, "step", json_object_new_int64(k + 1));
    json_object_object_add(o, "of", json_object_new_int64(N_PATTERNS));
    json_object_object_add(o, "pattern",
                           json_object_new_string(pattern_name[k]));
    json_object_object_add(o, "state", json_object_new_string(state));
    json_object_object_add(o, "text", json_object_new_string(text));
    confab_web_note(r->web, json_object_to_json_string_ext(
                                o, JSON_C_TO_STRING_PLAIN |
                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static int send_unicasts(cli_ctx *ctx, run *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        unsigned to = (i + 1) % r->n;
        char body[96];
        int len = snprintf(body, sizeof body, "hello n%u, from n%u", to, i);
        uint8_t id[CONFAB_MSG_ID_BYTES];
        confab_send_opts o = {.content_type = "text/plain"};
        int rc = confab_send(confab_testnet_node(r->tn, i),
                             confab_node_id(confab_testnet_node(r->tn, to)),
                             body, (size_t)len, &o, id);
        if (rc != 0 || add_expect(r, id, i, to, "unicast") != 0) {
            cli_error(ctx, "n%u could not send to n%u: %s", i, to,
                      confab_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int send_broadcast(cli_ctx *ctx, run *r)
{
    uint8_t id[CONFAB_MSG_ID_BYTES];
    const char *hello = "hello everybody, from n0";
    int rc = confab_broadcast(confab_testnet_node(r->tn, 0), hello,
                              strlen(hello), NULL, id, NULL);
    if (rc != 0) {
        cli_error(ctx, "n0 could not broadcast: %s", confab_strerror(rc));
        return -1;
    }
    for (unsigned j = 1; j < r->n; j++)
        if (add_expect(r, id, 0, j, "broadcast") != 0)
            return -1;
    return 0;
}

/* The odd nodes join the group (once: joining again is a no-op), and n0
 * waits until it knows them all. */
static int join_group(cli_ctx *ctx, run *r)
{
    for (unsigned i = 1; i < r->n; i += 2)
        if (confab_join(confab_testnet_node(r->tn, i), DEMO_GROUP) != 0)
            return -1;
    if (confab_testnet_run_until(r->tn, group_ready, r, r->timeout_ms) != 0) {
        cli_error(ctx, "the group's members were not known in time");
        return CLI_TIMEOUT;
    }
    return 0;
}

static int send_group(cli_ctx *ctx, run *r, bool anycast)
{
    int rc = join_group(ctx, r);
    if (rc != 0)
        return rc;
    uint8_t id[CONFAB_MSG_ID_BYTES];
    if (!anycast) {
        const char *shout = "hello group demo, from n0";
        rc = confab_shout(confab_testnet_node(r->tn, 0), DEMO_GROUP, shout,
                          strlen(shout), NULL, id, NULL);
        for (unsigned i = 1; rc == 0 && i < r->n; i += 2)
            rc = add_expect(r, id, 0, i, "shout");
    } else {
        const char *job = "a job for the nearest member of demo";
        rc = confab_anycast(confab_testnet_node(r->tn, 0), DEMO_GROUP, job,
                            strlen(job), NULL, id);
        if (rc == 0)
            rc = add_expect(r, id, 0, ANY_MEMBER, "anycast");
    }
    if (rc != 0) {
        cli_error(ctx, "n0 could not send to the group: %s",
                  confab_strerror(rc));
        return -1;
    }
    return 0;
}

/* Sends pattern k and waits for it to arrive. Returns 0, CLI_TIMEOUT or
 * another CLI code. */
static int do_pattern(cli_ctx *ctx, run *r, unsigned k)
{
    if (k >= 2 && r->n < 3)
        return 0; /* a group needs a member besides the sender */
    note(r, k, "sending", pattern_caption[k]);
    size_t first = r->n_ex;
    int rc = k == 0   ? send_unicasts(ctx, r)
             : k == 1 ? send_broadcast(ctx, r)
                      : send_group(ctx, r, k == 3);
    if (rc != 0)
        return rc == CLI_TIMEOUT ? CLI_TIMEOUT : CLI_FAILED;
    rc = confab_testnet_run_until(r->tn, all_arrived, r, r->timeout_ms);
    tally(r);
    size_t got = 0;
    for (size_t i = first; i < r->n_ex; i++)
        got += r->ex[i].got > 0;
    char text[160];
    if (k == 3 && got == 1)
        snprintf(text, sizeof text, "n%u took it.", r->ex[first].at);
    else
        snprintf(text, sizeof text, "%zu of %zu arrived.", got,
                 r->n_ex - first);
    note(r, k, rc == 0 ? "done" : "late", text);
    if (r->step && r->web == NULL)
        printf("  %s %s\n", pattern_caption[k], text);
    return rc == 0 ? 0 : CLI_TIMEOUT;
}

static bool step_or_quit(confab_testnet *tn, void *arg)
{
    run *r = arg;
    (void)tn;
    return r->step_wanted || r->quit;
}

static bool quitting(confab_testnet *tn, void *arg)
{
    run *r = arg;
    (void)tn;
    return r->quit;
}

/* Before pattern k: with --step, waits for a click or a key; with --web
 * alone, leaves the page a moment to show the last one. Returns 0, or
 * -ECANCELED when asked to quit. */
static int pace(run *r, unsigned k)
{
    if (r->step) {
        char text[160];
        snprintf(text, sizeof text,
                 "Next: %s. Press a key or click Next to send it.",
                 pattern_name[k]);
        note(r, k, "waiting", text);
        if (r->tty_open) {
            printf("[press a key for the %s pattern, q to quit]\n",
                   pattern_name[k]);
            fflush(stdout);
        }
        /* A click that came early (the page drew the mesh before the
         * nodes all knew it) counts. */
        while (!r->step_wanted && !r->quit)
            (void)confab_testnet_run_until(r->tn, step_or_quit, r, 3600000u);
        r->step_wanted = false;
    } else if (r->web != NULL && k > 0) {
        (void)confab_testnet_run_until(r->tn, quitting, r, 2500u);
    }
    return r->quit ? -ECANCELED : 0;
}

static void on_step(confab_web *web, void *user)
{
    run *r = user;
    (void)web;
    r->step_wanted = true;
}

static void on_quit_signal(uv_signal_t *h, int signum)
{
    run *r = h->data;
    (void)signum;
    r->quit = true;
}

static void tty_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char keys[64];
    (void)h;
    (void)size;
    *buf = uv_buf_init(keys, sizeof keys);
}

static void tty_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    run *r = s->data;
    for (ssize_t i = 0; i < n; i++) {
        if (buf->base[i] == 'q' || buf->base[i] == 3 || buf->base[i] == 4)
            r->quit = true;
        else
            r->step_wanted = true;
    }
    if (n < 0)
        uv_read_stop(s);
}

static void web_log(confab_node *node, confab_log_level level, const char *msg,
                    void *user)
{
    (void)node;
    (void)user;
    if (level <= CONFAB_LOG_WARN)
        fprintf(stderr, "confab: %s\n", msg);
}

/* Starts the page (--web) and the keyboard and signals (--web, --step). */
static int web_setup(cli_ctx *ctx, run *r, uint64_t seed)
{
    uv_loop_t *loop = r->loop;
    uv_signal_init(loop, &r->sigint);
    uv_signal_init(loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, on_quit_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_quit_signal, SIGTERM);
    r->signals_open = true;
    if (r->step && isatty(STDIN_FILENO) &&
        uv_tty_init(loop, &r->tty, STDIN_FILENO, 1) == 0) {
        r->tty_open = true;
        r->tty.data = r;
        uv_tty_set_mode(&r->tty, UV_TTY_MODE_RAW);
        uv_read_start((uv_stream_t *)&r->tty, tty_alloc, tty_read);
    }
    if (r->web_addr == NULL)
        return 0;
    confab_web_config wc;
    confab_web_config_init(&wc);
    wc.addr = r->web_addr;
    wc.max_queued = r->web_sse_max;
    wc.step_cb = r->step ? on_step : NULL;
    wc.user = r;
    wc.log_cb = web_log;
    int rc = confab_web_new(loop, &wc, &r->web);
    for (unsigned i = 0; rc == 0 && i < r->n; i++)
        rc = confab_web_add_node(r->web, confab_testnet_node(r->tn, i));
    if (rc == 0)
        rc = confab_web_start(r->web);
    if (rc != 0) {
        cli_error(ctx,
                  "cannot serve the page on %s: %s; give another "
                  "address with --web=HOST:PORT",
                  r->web_addr, confab_strerror(rc));
        return -1;
    }
    char run_json[96];
    snprintf(run_json, sizeof run_json,
             "{\"kind\":\"testnet\",\"nodes\":%u,\"seed\":%llu}", r->n,
             (unsigned long long)seed);
    confab_web_set_run(r->web, run_json);
    /* The host as given: "127.0.0.1" of "127.0.0.1:0", "[::1]" of
     * "[::1]:0". */
    const char *a = r->web_addr;
    const char *end = a[0] == '[' ? strchr(a, ']') : strrchr(a, ':');
    int hl = end == NULL ? (int)strlen(a) : (int)(end - a) + (a[0] == '[');
    fprintf(stderr, "confab: the page is at http://%.*s:%u/ (Ctrl-C stops)\n",
            hl, a, confab_web_port(r->web));
    return 0;
}

static void web_teardown(run *r)
{
    confab_web_free(r->web);
    r->web = NULL;
    if (r->tty_open) {
        uv_tty_reset_mode();
        uv_close((uv_handle_t *)&r->tty, NULL);
        r->tty_open = false;
    }
    if (r->signals_open) {
        uv_close((uv_handle_t *)&r->sigint, NULL);
        uv_close((uv_handle_t *)&r->sigterm, NULL);
        r->signals_open = false;
    }
}

/* Writes the report of --html: the network as an inline SVG and what
 * arrived. */
static int write_html(cli_ctx *ctx, run *r, const char *path, const char *text)
{
    confab_web *web = r->web;
    if (web == NULL) {
        confab_web_config wc;
        confab_web_config_init(&wc);
        int rc = confab_web_new(r->loop, &wc, &web);
        for (unsigned i = 0; rc == 0 && i < r->n; i++)
            rc = confab_web_add_node(web, confab_testnet_node(r->tn, i));
        if (rc != 0) {
            confab_web_free(web);
            return -1;
        }
    }
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f != NULL) {
        char title[80];
        snprintf(title, sizeof title, "confab testnet: %u nodes", r->n);
        rc = confab_web_write_report(web, f, title, text);
        if (fclose(f) != 0)
            rc = -1;
    }
    if (web != r->web)
        confab_web_free(web);
    if (rc != 0)
        cli_error(ctx, "cannot write the report to '%s'; check the path", path);
    return rc;
}

static void help(FILE *f)
{
    fputs("usage: confab testnet [--nodes N] [--seed S] [--timeout SECONDS]"
          " [--json]\n"
          "                      [--web[=ADDR]] [--step] [--html FILE]\n"
          "       confab testnet --measure [--nodes N] [--pairs K] [--seed S]"
          " [--json]\n"
          "\n"
          "Runs N nodes (default 5, at most 1000) in this process, on\n"
          "127.0.0.1 only: they find each other by UDP broadcast to\n"
          "127.255.255.255 and link with Noise handshakes. Then every node\n"
          "sends a unicast to the next one, the first node broadcasts, the\n"
          "odd nodes join a group to which the first node shouts and sends\n"
          "an anycast, and the command reports how long the mesh took,\n"
          "what arrived, and how fast. While the network forms, a line on\n"
          "stderr each second says how far it got. The process raises its\n"
          "own open-file limit as far as the hard limit allows; when that\n"
          "is not enough it says how many it needs (ulimit -n, LimitNOFILE).\n"
          "\n"
          "With --measure it sends no demonstration: it waits until every\n"
          "node knows every other, then reports the links per node (min,\n"
          "median, max), the time that took, one broadcast from a random\n"
          "node (nodes reached, copies received per node), unicasts between\n"
          "K random pairs (sent, delivered, acknowledged) and the memory\n"
          "the network added per node (resident and heap).\n"
          "\n"
          "  -n, --nodes N     how many nodes\n"
          "  -s, --seed S      derive the identities from S (a run can be\n"
          "                    repeated); default: random, and printed\n"
          "  -t, --timeout SECONDS  how long to wait for the mesh and for the\n"
          "                    messages (default 30)\n"
          "  -j, --json        one JSON object: nodes, mesh_ms, sent,\n"
          "                    delivered, lost, duplicates, p50_us, p99_us;\n"
          "                    with --measure: nodes, seed, up, links,\n"
          "                    links_min, links_median, links_max,\n"
          "                    formed_ms, knowing_all, broadcast {from,\n"
          "                    receivers, reached, ms, copies_mean,\n"
          "                    copies_max}, unicast {pairs, sent, delivered,\n"
          "                    acknowledged, ms}, memory {rss_per_node,\n"
          "                    heap_per_node} (bytes)\n"
          "  -m, --measure     measure the network instead of the\n"
          "                    demonstration (see above)\n"
          "  -p, --pairs K     with --measure: unicasts between K random\n"
          "                    pairs of nodes (default 100, 0 to 100000)\n"
          "  --web[=ADDR]      serve a live page of the network on ADDR\n"
          "                    (default " DEFAULT_WEB "), and keep serving\n"
          "                    it after the run until Ctrl-C\n"
          "  --step            wait for a key or a click on the page before\n"
          "                    each pattern\n"
          "  --html FILE       write a self-contained report of the run\n"
          "  --web-sse-max N   bytes queued for a page that does not read\n"
          "                    before it is cut (default 1 MiB)\n"
          "\n"
          "Exit status: 0 when every message arrived exactly once; 4 when\n"
          "the mesh or a message did not come in time; 6 when a message\n"
          "came twice or unbidden, or the process cannot open enough\n"
          "files; 1 for a usage error. With --measure: 0 when the network\n"
          "formed and the broadcast and every unicast arrived (unicasts\n"
          "acknowledged), 4 when something did not in time.\n",
          f);
}

/* What the command line asks for. */
typedef struct tn_opts {
    uint64_t nodes, seed, timeout_s, sse_max;
    const char *web_addr, *html;
    bool step;
    /* area: scale (#13) */
    bool measure;
    uint64_t pairs;
} tn_opts;

/* Reads the options into o: -1 to go on, else the exit code (usage, help). */
static int parse_opts(cli_ctx *ctx, int argc, char **argv, tn_opts *o)
{
    uint64_t nodes = DEFAULT_NODES, seed = 0, timeout_s = 30;
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"web", optional_argument, NULL, 'w'},
        {"step", no_argument, NULL, 'S'},
        {"html", required_argument, NULL, 'H'},
        {"web-sse-max", required_argument, NULL, 'Q'},
        {"measure", no_argument, NULL, 'm'},
        {"pairs", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *web_addr = NULL, *html = NULL;
    bool step = false;
    uint64_t sse_max = 0;
    bool measure = false, pairs_given = false;
    uint64_t pairs = 100;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:s:t:jmp:h", opts, NULL)) != -1) {
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
                cli_error(ctx,
                          "--timeout takes seconds from 1 to 3600, not "
                          "'%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'j':
            ctx->json = true;
            break;
        case 'w':
            web_addr = optarg ? optarg : DEFAULT_WEB;
            break;
        case 'S':
            step = true;
            break;
        case 'H':
            html = optarg;
            break;
        case 'Q':
            if (cli_parse_u64(optarg, 1024, 1u << 30, &sse_max) != 0) {
                cli_error(ctx,
                          "--web-sse-max takes bytes from 1024 to "
                          "1073741824, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'm':
            measure = true;
            break;
        case 'p':
            if (cli_parse_u64(optarg, 0, 100000, &pairs) != 0) {
                cli_error(ctx,
                          "--pairs takes a number from 0 to 100000, not "
                          "'%s'",
                          optarg);
                return CLI_USAGE;
            }
            pairs_given = true;
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
        cli_error(ctx,
                  "testnet takes no arguments ('%s'); try 'confab "
                  "testnet --help'",
                  argv[optind]);
        return CLI_USAGE;
    }
    if (step && web_addr == NULL && !isatty(STDIN_FILENO)) {
        cli_error(ctx, "--step waits for a key on a terminal or a click on "
                       "the page: give --web, or run it on a terminal");
        return CLI_USAGE;
    }
    if (seed == 0) {
        uv_loop_t tmp; /* any entropy will do for the seed */
        seed = (uint64_t)uv_hrtime() ^ ((uint64_t)(uintptr_t)&tmp << 16);
        /* At most 2^53 - 1, so that it stays exact wherever a number is a
         * double (the page's JSON, a script's). */
        seed &= (UINT64_C(1) << 53) - 1u;
        if (seed == 0)
            seed = 1;
    }
    if (pairs_given && !measure) {
        cli_error(ctx, "--pairs goes with --measure: add it, or leave out "
                       "--pairs");
        return CLI_USAGE;
    }
    if (measure && (web_addr != NULL || step || html != NULL)) {
        cli_error(ctx, "--measure sends no demonstration to show: leave out "
                       "--web, --step and --html");
        return CLI_USAGE;
    }
    *o = (tn_opts){nodes, seed, timeout_s, sse_max, web_addr,
                   html,  step, measure,   pairs};
    return -1;
}

/* What each of the four patterns did, for a person. */
static void print_patterns(cli_ctx *ctx, run *r, size_t group_first)
{
    char buf[128], buf2[128];
    printf("Unicast: every node sends one message to the next.\n");
    unsigned show = r->n <= 10 ? r->n : 10;
    for (size_t k = 0; k < r->n_ex && k < show; k++) {
        expect *e = &r->ex[k];
        snprintf(buf2, sizeof buf2, "n%u -> n%u", e->from, e->to);
        if (e->got > 0)
            printf("  %-10s arrived after %llu us\n", buf2,
                   (unsigned long long)e->latency_us);
        else
            printf("  %-10s %s\n", buf2,
                   cli_paint(ctx, "31", "did not arrive", buf, sizeof buf));
    }
    if (show < r->n)
        printf("  ... and %u more\n", r->n - show);
    unsigned bgot = 0;
    for (size_t k = r->n; k < group_first; k++)
        bgot += r->ex[k].got > 0;
    printf("\nBroadcast: n0 sends one message to everybody.\n"
           "  %u of %u other nodes got it.\n",
           bgot, r->n - 1);
    if (group_first < r->n_ex) {
        unsigned sgot = 0, members = r->n / 2;
        for (size_t k = group_first; k + 1 < r->n_ex; k++)
            sgot += r->ex[k].got > 0;
        expect *any = &r->ex[r->n_ex - 1];
        printf("\nMulticast: the odd nodes join group \"%s\"; n0 (not a "
               "member) shouts to it.\n"
               "  %u of %u members got it; nobody else did.\n",
               DEMO_GROUP, sgot, members);
        printf("\nAnycast: n0 sends one job to the group: one member, the "
               "nearest, takes it\n(at-least-once across members: after a "
               "failover two may).\n");
        if (any->got > 0)
            printf("  n%u took it.\n", any->at);
        else
            printf("  %s\n",
                   cli_paint(ctx, "31", "nobody took it", buf, sizeof buf));
    }
    printf("\n");
}

/* The numbers of a run. */
typedef struct tn_result {
    unsigned links;
    uint64_t seed;
    double mesh_ms;
    size_t delivered, lost, extra;
    uint64_t p50, p99;
} tn_result;

/* The summary: JSON, or lines for a person. */
static void print_summary(cli_ctx *ctx, const run *r, const tn_result *t,
                          int exit_code)
{
    char buf[128];
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "nodes", json_object_new_int64(r->n));
        json_object_object_add(o, "links", json_object_new_int64(t->links));
        /* A string: a JSON number above 2^53 is rounded by jq and
         * JavaScript into another seed, so another network. */
        char sd[24];
        snprintf(sd, sizeof sd, "%llu", (unsigned long long)t->seed);
        json_object_object_add(o, "seed", json_object_new_string(sd));
        json_object_object_add(o, "mesh_ms",
                               json_object_new_int64((int64_t)t->mesh_ms));
        json_object_object_add(o, "sent",
                               json_object_new_int64((int64_t)r->n_ex));
        json_object_object_add(o, "delivered",
                               json_object_new_int64((int64_t)t->delivered));
        json_object_object_add(o, "lost",
                               json_object_new_int64((int64_t)t->lost));
        json_object_object_add(o, "duplicates",
                               json_object_new_int64((int64_t)t->extra));
        json_object_object_add(o, "p50_us", json_object_new_uint64(t->p50));
        json_object_object_add(o, "p99_us", json_object_new_uint64(t->p99));
        printf("%s\n",
               json_object_to_json_string_ext(
                   o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("%s\n", cli_paint(ctx, "1", "Summary", buf, sizeof buf));
        printf("  nodes %u, links %u, full mesh in %.0f ms\n", r->n, t->links,
               t->mesh_ms);
        printf("  messages sent %zu, delivered %zu, lost %zu, duplicated %zu"
               "\n",
               r->n_ex, t->delivered, t->lost, t->extra);
        printf("  delivery latency p50 %llu us, p99 %llu us\n",
               (unsigned long long)t->p50, (unsigned long long)t->p99);
        printf("  %s\n",
               exit_code == CLI_OK
                   ? cli_paint(ctx, "32", "every message arrived exactly once",
                               buf, sizeof buf)
                   : cli_paint(ctx, "31", "some messages went astray", buf,
                               sizeof buf));
    }
    fflush(stdout);
}

/* The page with the run's summary (--html). Returns 0 or -1 (said). */
static int summary_html(cli_ctx *ctx, run *r, const char *html,
                        const tn_result *t, size_t group_first)
{
    char text[1024];
    size_t sent_by[N_PATTERNS] = {0}, got_by[N_PATTERNS] = {0};
    for (size_t k = 0; k < r->n_ex; k++) {
        unsigned p = k < r->n          ? 0
                     : k < group_first ? 1
                     : k + 1 < r->n_ex ? 2
                                       : 3;
        sent_by[p]++;
        got_by[p] += r->ex[k].got > 0;
    }
    int len = snprintf(text, sizeof text,
                       "%u nodes, %u links, full mesh in %.0f ms.\n"
                       "seed %llu\n",
                       r->n, t->links, t->mesh_ms, (unsigned long long)t->seed);
    for (unsigned p = 0; p < N_PATTERNS && len > 0 && (size_t)len < sizeof text;
         p++)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "%s\n  %zu of %zu arrived%s\n", pattern_caption[p],
                        got_by[p], sent_by[p],
                        p == 3 && got_by[p] == 1 ? " (one member)" : "");
    if (len > 0 && (size_t)len < sizeof text)
        snprintf(text + len, sizeof text - (size_t)len,
                 "messages sent %zu, delivered %zu, lost %zu, "
                 "duplicated %zu\n",
                 r->n_ex, t->delivered, t->lost, t->extra);
    return write_html(ctx, r, html, text);
}

/* Makes the network of o on loop into r: 0, or an exit code after saying
 * why. */
static int tn_create(cli_ctx *ctx, const tn_opts *o, uv_loop_t *loop, run *r)
{
    confab_testnet_config cfg;
    confab_testnet_config_init(&cfg);
    cfg.nodes = (unsigned)o->nodes;
    cfg.seed = o->seed;
    cfg.discovery = true;
    cfg.node.log_level = CONFAB_LOG_ERROR;
    /* area: scale (#13): a full mesh up to 64 nodes (the page shows every
     * link); past that, the overlay's partial mesh (docs/PROTOCOL.md 15),
     * or a thousand nodes would need a million descriptors */
    if (cfg.nodes <= 64)
        cfg.node.mesh_threshold = cfg.nodes + 1;
    memset(r, 0, sizeof *r);
    r->n = (unsigned)o->nodes;
    r->loop = loop;
    r->timeout_ms = (unsigned)o->timeout_s * 1000u;
    r->web_addr = o->web_addr;
    r->web_sse_max = (size_t)o->sse_max;
    r->step = o->step;
    /* area: scale (#13): the limit raised, or what it needs said */
    r->links_each = confab_testnet_links_per_node(&cfg.node, r->n);
    if (tn_scale_fds(ctx, &cfg.node, r->n) != CLI_OK)
        return CLI_FAILED;
    int rc = confab_testnet_new(loop, &cfg, &r->tn);
    if (rc != 0) {
        cli_error(ctx, "cannot create the nodes: %s", confab_strerror(rc));
        return CLI_FAILED;
    }
    return CLI_OK;
}

static void print_intro(cli_ctx *ctx, const run *r, uint64_t seed)
{
    char buf[128];
    printf("%s\n\n",
           cli_paint(ctx, "1",
                     "confab testnet: a network of nodes in one process", buf,
                     sizeof buf));
    printf("Starting %u node%s on 127.0.0.1, identities from seed %llu "
           "(rerun with --seed %llu to get the same ones).\n",
           r->n, r->n == 1 ? "" : "s", (unsigned long long)seed,
           (unsigned long long)seed);
}

static void print_nodes(const run *r)
{
    unsigned show = r->n <= 10 ? r->n : 10;
    for (unsigned i = 0; i < show; i++) {
        confab_node *nd = confab_testnet_node(r->tn, i);
        char sid[9];
        short_hex(confab_node_id(nd), sid);
        printf("  %-4s id %s...  listening on 127.0.0.1:%u\n",
               confab_node_name(nd), sid, confab_node_port(nd));
    }
    if (show < r->n)
        printf("  ... and %u more\n", r->n - show);
    printf("\nThey find each other by UDP beacons to "
           "127.255.255.255:%u, and each pair\n"
           "opens one TCP link secured by a Noise_XXpsk0 handshake "
           "(the smaller id dials).\n",
           confab_testnet_discovery_port(r->tn));
    fflush(stdout);
}

/* The four patterns, one after the other: each is sent, then waited for,
 * so that the page shows them apart. Returns CLI_OK, CLI_TIMEOUT (the
 * summary says what did not arrive) or CLI_FAILED; *group_first is where
 * the group patterns' messages begin. */
static int send_patterns(cli_ctx *ctx, run *r, size_t *group_first)
{
    int rc = CLI_OK;
    *group_first = 0;
    for (unsigned k = 0; k < N_PATTERNS && r->n >= 2; k++) {
        if (pace(r, k) != 0)
            break;
        if (k == 2)
            *group_first = r->n_ex;
        rc = do_pattern(ctx, r, k);
        if (rc == CLI_TIMEOUT)
            break;
        if (rc != 0)
            return CLI_FAILED;
    }
    if (*group_first == 0)
        *group_first = r->n_ex;
    return rc;
}

/* The messages delivered and the median and 99th percentile of their
 * latency: 0, or -ENOMEM. */
static int latencies(const run *r, size_t *delivered, uint64_t *p50,
                     uint64_t *p99)
{
    uint64_t *lat = calloc(r->n_ex ? r->n_ex : 1, sizeof *lat);
    if (lat == NULL)
        return -ENOMEM;
    size_t d = 0;
    for (size_t k = 0; k < r->n_ex; k++)
        if (r->ex[k].got > 0)
            lat[d++] = r->ex[k].latency_us;
    qsort(lat, d, sizeof *lat, cmp_u64);
    *p50 = d ? lat[(d - 1) / 2] : 0;
    *p99 = d ? lat[(d - 1) * 99 / 100] : 0;
    *delivered = d;
    free(lat);
    return 0;
}

/* The page stays after the run: a teacher goes on clicking through the
 * patterns again (--step), or looks, until Ctrl-C. */
static void serve_on(cli_ctx *ctx, run *r)
{
    fprintf(stderr, "confab: still serving the page; Ctrl-C stops\n");
    for (unsigned k = 0; !r->quit; k = (k + 1) % N_PATTERNS) {
        if (!r->step) {
            (void)confab_testnet_run_until(r->tn, quitting, r, 3600000u);
            continue;
        }
        if (pace(r, k) != 0)
            break;
        if (k == 0) { /* a new round: forget the last one */
            confab_testnet_clear_events(r->tn);
            r->n_ex = 0;
        }
        (void)do_pattern(ctx, r, k);
    }
}

/* After the patterns: the summary, the report, the exit code. */
static int finish(cli_ctx *ctx, run *r, const tn_opts *o, unsigned links,
                  double mesh_ms, size_t group_first, int sent)
{
    size_t extra = tally(r);
    size_t delivered;
    uint64_t p50, p99;
    if (latencies(r, &delivered, &p50, &p99) != 0)
        return CLI_FAILED;
    size_t lost = r->n_ex - delivered;
    if (!ctx->json && r->n >= 2)
        print_patterns(ctx, r, group_first);
    int exit_code = CLI_OK;
    if (lost > 0 || sent == CLI_TIMEOUT)
        exit_code = CLI_TIMEOUT;
    else if (extra > 0)
        exit_code = CLI_FAILED;
    tn_result res = {links, o->seed, mesh_ms, delivered, lost, extra, p50, p99};
    print_summary(ctx, r, &res, exit_code);
    if (o->html != NULL &&
        summary_html(ctx, r, o->html, &res, group_first) != 0 &&
        exit_code == CLI_OK)
        exit_code = CLI_FAILED;
    return exit_code;
}

int cli_cmd_testnet(cli_ctx *ctx, int argc, char **argv)
{
    tn_opts o;
    int early = parse_opts(ctx, argc, argv, &o);
    if (early >= 0)
        return early;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        cli_error(ctx, "cannot make an event loop");
        return CLI_FAILED;
    }
    run r;
    confab_testnet_memory before;
    confab_testnet_memory_now(&before);
    if (tn_create(ctx, &o, &loop, &r) != CLI_OK) {
        (void)uv_loop_close(&loop);
        return CLI_FAILED;
    }
    bool human = !ctx->json;
    if (human)
        print_intro(ctx, &r, o.seed);
    int exit_code = CLI_OK;
    uint64_t t0 = uv_hrtime();
    int rc = confab_testnet_start(r.tn);
    if (rc != 0) {
        cli_error(ctx, "cannot start the nodes: %s", confab_strerror(rc));
        (void)confab_testnet_free(r.tn);
        uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        return CLI_FAILED;
    }
    if ((o.web_addr != NULL || o.step) && web_setup(ctx, &r, o.seed) != 0) {
        exit_code = CLI_FAILED;
        goto out;
    }
    if (o.measure) {
        exit_code = tn_scale_measure(ctx, r.tn, o.seed, (unsigned)o.pairs,
                                     (unsigned)o.timeout_s * 1000u, &before);
        goto out;
    }
    if (human)
        print_nodes(&r);
    unsigned links = r.n * (r.n - 1) / 2;
    bool full_mesh;
    rc = tn_scale_wait_formed(r.tn, r.links_each, (unsigned)o.timeout_s * 1000u,
                              &full_mesh);
    double mesh_ms = (double)(uv_hrtime() - t0) / 1e6;
    if (rc != 0) {
        cli_error(ctx,
                  "the nodes did not all link within %llu s; try a "
                  "longer --timeout, or fewer --nodes",
                  (unsigned long long)o.timeout_s);
        exit_code = CLI_TIMEOUT;
        goto out;
    }
    if (!full_mesh) {
        /* area: scale (#13): a partial mesh; the others by routes */
        confab_testnet_progress p;
        confab_testnet_progress_now(r.tn, &p);
        links = (unsigned)p.links;
        if (human) {
            char buf[128];
            printf("  %s after %.0f ms: %u links (%u to %u a node), every "
                   "node knows every other.\n\n",
                   cli_paint(ctx, "32", "formed", buf, sizeof buf), mesh_ms,
                   links, p.links_min, p.links_max);
        }
    } else if (human) {
        char buf[128];
        printf("  %s after %.0f ms: %u link%s, every node linked to every "
               "other.\n\n",
               cli_paint(ctx, "32", "full mesh", buf, sizeof buf), mesh_ms,
               links, links == 1 ? "" : "s");
    }
    fflush(stdout);
    size_t group_first;
    int sent = send_patterns(ctx, &r, &group_first);
    if (sent == CLI_FAILED) {
        exit_code = CLI_FAILED;
        goto out;
    }
    if (r.quit) {
        /* Ctrl-C before the patterns were all sent: no summary of half a
         * run. */
        fprintf(stderr, "confab: stopped before the four patterns were "
                        "done\n");
        goto out;
    }
    exit_code = finish(ctx, &r, &o, links, mesh_ms, group_first, sent);
    if (r.web != NULL)
        serve_on(ctx, &r);
out:
    web_teardown(&r);
    free(r.ex);
    if (confab_testnet_free(r.tn) != 0 && exit_code == CLI_OK)
        exit_code = CLI_FAILED;
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    return exit_code;
}
