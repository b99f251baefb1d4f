/* cli/ping.c: `confab ping`: echo requests to a peer and their round
 * trips, the way ping(8) shows them. */
#include "cli/show.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <string.h>

#define PING_BYTES 64
#define SLICE_MS   200 /* how often a wait looks at Ctrl-C */
/* The node answers ETIMEDOUT after 5 s; this bounds a silent node. */
#define REPLY_MS 8000

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void help(FILE *f)
{
    fputs("usage: confab ping PEER [--count N] [--interval SECONDS]\n"
          "\n"
          "Sends echo requests (PING) to a linked peer and prints each\n"
          "round trip as the node measured it, then a summary; Ctrl-C stops\n"
          "early. Exit 4 if no request was answered.\n"
          "\n"
          "  -c, --count N        requests to send (default 4)\n"
          "  -i, --interval SECONDS  time between them (default 1)\n",
          f);
}

typedef struct stats {
    uint64_t sent, received, min, max, sum;
} stats;

/* Sleeps until the monotonic clock reaches `until`, or Ctrl-C. */
static void sleep_until(uint64_t until)
{
    for (;;) {
        uint64_t now = cli_now_ms();
        if (interrupted || now >= until)
            return;
        uint64_t left = until - now;
        (void)poll(NULL, 0, left > SLICE_MS ? SLICE_MS : (int)left);
    }
}

/* One request: 1 answered (rtt in *rtt_us), 0 lost, or an exit code
 * (negated) after printing why. */
static int ping_once(cli_client *c, const uint8_t *to, uint64_t seq,
                     uint64_t *rtt_us, size_t *bytes)
{
    uint8_t data[PING_BYTES];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(seq + i);
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(c, &b, "ping", 2, &rid);
    wire_ctl_key(&b, "to");
    wire_ctl_put_bin(&b, to, CONFAB_ID_BYTES);
    wire_ctl_key(&b, "data");
    wire_ctl_put_bin(&b, data, sizeof data);
    int rc = cli_send(c, &b);
    wire_ctl_builder_free(&b);
    if (rc != 0)
        return -cli_lost(c, rc);
    uint64_t deadline = cli_now_ms() + REPLY_MS;
    for (;;) {
        uint64_t now = cli_now_ms();
        if (interrupted)
            return 0;
        if (now >= deadline)
            return 0; /* the node said nothing: count it lost */
        uint64_t left = deadline - now;
        rc = cli_next(c, &r, left > SLICE_MS ? SLICE_MS : (int)left);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc <= 0)
            return -cli_lost(c, rc);
        uint64_t got;
        if (wire_ctl_get_uint(&r, "rid", &got) != 0 || got != rid)
            continue;
        int ok = 0;
        int64_t err = 0;
        (void)wire_ctl_get_bool(&r, "ok", &ok);
        if (!ok && wire_ctl_get_int(&r, "err", &err) == 0 && err == -ETIMEDOUT)
            return 0;
        if (!ok)
            return -cli_reply_status(c, &r);
        wire_bytes echo = {0};
        *rtt_us = 0;
        (void)wire_ctl_get_uint(&r, "rtt_us", rtt_us);
        (void)wire_ctl_get_bin(&r, "data", &echo);
        *bytes = echo.len;
        if (echo.len != sizeof data || memcmp(echo.ptr, data, echo.len) != 0)
            cli_error(c->ctx, "seq=%llu: the echo differs from what was sent",
                      (unsigned long long)seq);
        return 1;
    }
}

/* One line for one ping: its round trip (rtt NULL: no answer). */
static void print_reply(const cli_ctx *ctx, const cli_peer *p, const char *name,
                        const char *sid, uint64_t seq, const uint64_t *rtt,
                        size_t bytes)
{
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "seq", json_object_new_uint64(seq));
        json_object_object_add(o, "peer", cli_json_hex(p->id, CONFAB_ID_BYTES));
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "peer_name", json_object_new_string(p->name));
        json_object_object_add(o, "bytes", json_object_new_uint64(bytes));
        json_object_object_add(
            o, "rtt_us", rtt != NULL ? json_object_new_uint64(*rtt) : NULL);
        cli_json_print(o);
    } else if (rtt != NULL) {
        char ms[32];
        cli_fmt_ms(*rtt, ms, sizeof ms);
        printf("%zu bytes from %s (%s): seq=%llu time=%s ms\n", bytes, name,
               sid, (unsigned long long)seq, ms);
    } else {
        printf("no answer from %s (%s): seq=%llu\n", name, sid,
               (unsigned long long)seq);
    }
}

/* The statistics at the end. */
static void print_stats(const cli_ctx *ctx, const char *name, const char *sid,
                        const stats *s)
{
    uint64_t lost_pct = s->sent ? (s->sent - s->received) * 100u / s->sent : 0;
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "sent", json_object_new_uint64(s->sent));
        json_object_object_add(o, "received",
                               json_object_new_uint64(s->received));
        json_object_object_add(o, "lost_percent",
                               json_object_new_uint64(lost_pct));
        json_object_object_add(
            o, "min_us", s->received ? json_object_new_uint64(s->min) : NULL);
        json_object_object_add(
            o, "avg_us",
            s->received ? json_object_new_uint64(s->sum / s->received) : NULL);
        json_object_object_add(
            o, "max_us", s->received ? json_object_new_uint64(s->max) : NULL);
        cli_json_print(o);
    } else {
        printf("\n--- %s (%s) ping statistics ---\n", name, sid);
        printf("%llu sent, %llu received, %llu%% lost",
               (unsigned long long)s->sent, (unsigned long long)s->received,
               (unsigned long long)lost_pct);
        if (s->received > 0) {
            char a[32], b[32], m[32];
            cli_fmt_ms(s->min, a, sizeof a);
            cli_fmt_ms(s->sum / s->received, b, sizeof b);
            cli_fmt_ms(s->max, m, sizeof m);
            printf("; rtt min/avg/max = %s/%s/%s ms", a, b, m);
        }
        putchar('\n');
    }
}

/* Reads the options: -1 to go on (with *count, *interval_ms and the PEER
 * at argv[optind]), else the exit code (usage, help). */
static int parse_args(cli_ctx *ctx, int argc, char **argv, uint64_t *count,
                      int *interval_ms)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'},
        {"interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *count = 4;
    *interval_ms = 1000;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (cli_parse_u64(optarg, 1, 1000000, count) != 0) {
                cli_error(ctx, "--count takes a whole number from 1, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'i':
            if (cli_parse_seconds(optarg, 3600, interval_ms) != 0) {
                cli_error(ctx,
                          "--interval takes seconds (e.g. 1 or 0.2), not "
                          "'%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx,
                      "unknown option or missing value '%s'; try "
                      "'confab ping --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_error(ctx, "ping takes one PEER; try 'confab ping --help'");
        return CLI_USAGE;
    }
    return -1;
}

int cli_cmd_ping(cli_ctx *ctx, int argc, char **argv)
{
    uint64_t count;
    int interval_ms;
    int early = parse_args(ctx, argc, argv, &count, &interval_ms);
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

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    if (!ctx->json) {
        printf("PING %s (%s): %d bytes of data\n", name, sid, PING_BYTES);
        fflush(stdout);
    }
    stats s = {0, 0, UINT64_MAX, 0, 0};
    rc = CLI_OK;
    for (uint64_t seq = 1; seq <= count && !interrupted; seq++) {
        uint64_t t0 = cli_now_ms(), rtt = 0;
        size_t bytes = 0;
        s.sent++;
        int r = ping_once(&cl, p->id, seq, &rtt, &bytes);
        if (r < 0) {
            rc = -r;
            break;
        }
        if (interrupted && r == 0) {
            s.sent--; /* stopped while waiting: not lost */
            break;
        }
        if (r == 1) {
            s.received++;
            s.sum += rtt;
            s.min = rtt < s.min ? rtt : s.min;
            s.max = rtt > s.max ? rtt : s.max;
        }
        print_reply(ctx, p, name, sid, seq, r == 1 ? &rtt : NULL, bytes);
        fflush(stdout);
        if (seq < count)
            sleep_until(t0 + (uint64_t)interval_ms);
    }
    sigaction(SIGINT, &old, NULL);
    if (rc != CLI_OK && s.sent <= 1)
        goto out; /* refused at once: the error says it all */

    print_stats(ctx, name, sid, &s);
    if (rc == CLI_OK && s.received == 0) {
        cli_error(ctx, "no answer from %s", name);
        rc = CLI_TIMEOUT;
    }
out:
    cli_peers_free(&peers);
    cli_close(&cl);
    return rc;
}
