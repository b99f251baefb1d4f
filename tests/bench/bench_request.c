/* bench_request.c: requests and replies against plain unicasts, one to
 * one, 64-byte bodies, in the same run: the round-trip median (one
 * outstanding at a time) and the rate with a window of outstanding ones.
 *
 * The baseline is an echo over two unicasts: the client sends a unicast,
 * the server's program answers each with a unicast back. A request and
 * its reply are the same two unicasts plus the envelopes and the
 * matching, so the ratio shows what request and reply cost beyond them.
 * Both nodes run in this process on one loop (confab_testnet, 127.0.0.1):
 * the figures hold the work of both ends.
 *
 * It informs and does not gate: exit 0 when every case ran, 1 when one
 * failed. BENCH_SCALE (e.g. 0.1) scales the counts. */
#include "node/confab.h"
#include "node/testnet.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY   64u
#define WINDOW 64u

typedef struct bench {
    confab_testnet *tn;
    confab_node *cli, *srv;
    bool use_request;
    uint64_t target; /* round trips to finish */
    uint64_t started, finished, failed;
    unsigned window;
    uint64_t *t_ns; /* send time of each outstanding (by slot) */
    uint64_t *rtt_ns;
    size_t n_rtt;
    uint8_t body[BODY];
} bench;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void start_more(bench *b);

static void finished_one(bench *b, uint64_t slot)
{
    if (b->window == 1 && b->n_rtt < b->target)
        b->rtt_ns[b->n_rtt++] = now_ns() - b->t_ns[slot % WINDOW];
    b->finished++;
    start_more(b);
}

static void on_reply(confab_node *node, const confab_reply_info *r, void *user)
{
    (void)node;
    bench *b = user;
    if (!r->done)
        return;
    if (r->answered == 0)
        b->failed++;
    finished_one(b, r->request);
}

static void on_request(confab_node *node, const confab_request_in *r,
                       void *user)
{
    (void)user;
    if (confab_reply(node, r->handle, r->body, r->len) != 0)
        fprintf(stderr, "bench_request: a reply was refused\n");
}

/* The baseline's both ends: the server echoes each unicast; the client
 * counts each echo (its slot is in its first 8 bytes). */
static void on_event(confab_testnet *tn, unsigned node, const confab_event *ev,
                     void *user)
{
    (void)tn;
    bench *b = user;
    if (ev->type != CONFAB_EV_MESSAGE || b->use_request)
        return;
    const confab_message *m = ev->message;
    if (node == 1) {
        if (confab_send(b->srv, m->from, m->body, m->len, NULL, NULL) != 0)
            b->failed++;
        return;
    }
    uint64_t slot;
    memcpy(&slot, m->body, sizeof slot);
    finished_one(b, slot);
}

static void start_one(bench *b)
{
    uint64_t slot = b->started;
    int rc;
    if (b->use_request) {
        confab_request_opts o = {.mode = CONFAB_REQ_PEER,
                                 .peer = confab_node_id(b->srv),
                                 .timeout_ms = 10000};
        uint64_t h;
        rc =
            confab_request(b->cli, "bench", b->body, BODY, &o, on_reply, b, &h);
        /* Handles count up from 1, one per request: slot from it. */
        slot = h;
    } else {
        memcpy(b->body, &slot, sizeof slot);
        rc = confab_send(b->cli, confab_node_id(b->srv), b->body, BODY, NULL,
                         NULL);
    }
    if (rc != 0) {
        b->failed++;
        b->finished++;
        return;
    }
    b->t_ns[slot % WINDOW] = now_ns();
    b->started++;
}

static void start_more(bench *b)
{
    while (b->started < b->target &&
           b->started - b->finished < (uint64_t)b->window && b->failed == 0)
        start_one(b);
}

static bool all_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    bench *b = arg;
    return b->finished >= b->target || b->failed > 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

/* Runs one case; returns seconds, and the median round trip (window 1). */
static int run_case(bench *b, bool request, unsigned window, uint64_t n,
                    double *secs, double *median_us)
{
    b->use_request = request;
    b->window = window;
    b->target = n;
    b->started = b->finished = b->failed = 0;
    b->n_rtt = 0;
    uint64_t t0 = now_ns();
    start_more(b);
    if (confab_testnet_run_until(b->tn, all_done, b, 120000) != 0 ||
        b->failed > 0)
        return -1;
    *secs = (double)(now_ns() - t0) / 1e9;
    *median_us = 0;
    if (b->n_rtt > 0) {
        qsort(b->rtt_ns, b->n_rtt, sizeof *b->rtt_ns, cmp_u64);
        *median_us = (double)b->rtt_ns[b->n_rtt / 2] / 1000.0;
    }
    return 0;
}

int main(void)
{
    double scale = getenv("BENCH_SCALE") ? atof(getenv("BENCH_SCALE")) : 1.0;
    uint64_t n_rtt = (uint64_t)(20000 * scale) + 10;
    uint64_t n_rate = (uint64_t)(100000 * scale) + 10;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bench b;
    memset(&b, 0, sizeof b);
    b.t_ns = calloc(WINDOW, sizeof *b.t_ns);
    b.rtt_ns = calloc(n_rtt, sizeof *b.rtt_ns);
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = 2;
    c.seed = 0xbe4c0019u;
    c.static_mesh = true;
    c.event_cb = on_event;
    c.user = &b;
    c.node.log_level = CONFAB_LOG_ERROR;
    int rc = 1;
    if (b.t_ns == NULL || b.rtt_ns == NULL ||
        confab_testnet_new(&loop, &c, &b.tn) != 0)
        goto out;
    if (confab_testnet_start(b.tn) != 0 ||
        confab_testnet_wait_mesh(b.tn, 10000) != 0)
        goto out_tn;
    b.cli = confab_testnet_node(b.tn, 0);
    b.srv = confab_testnet_node(b.tn, 1);
    if (confab_serve(b.srv, "bench", on_request, NULL) != 0)
        goto out_tn;
    double s_u, s_r, m_u, m_r, r_u, r_r, dummy;
    /* Warm both paths, then measure. */
    if (run_case(&b, false, 1, n_rtt / 10, &dummy, &dummy) != 0 ||
        run_case(&b, true, 1, n_rtt / 10, &dummy, &dummy) != 0 ||
        run_case(&b, false, 1, n_rtt, &s_u, &m_u) != 0 ||
        run_case(&b, true, 1, n_rtt, &s_r, &m_r) != 0 ||
        run_case(&b, false, WINDOW, n_rate, &r_u, &dummy) != 0 ||
        run_case(&b, true, WINDOW, n_rate, &r_r, &dummy) != 0) {
        fprintf(stderr, "bench_request: a case failed\n");
        goto out_tn;
    }
    printf("round trip, 64 B, one at a time (%llu):\n",
           (unsigned long long)n_rtt);
    printf("  unicast echo     median %8.1f us\n", m_u);
    printf("  request/reply    median %8.1f us  (x%.2f of unicast)\n", m_r,
           m_r / m_u);
    printf("rate, 64 B, %u outstanding (%llu):\n", WINDOW,
           (unsigned long long)n_rate);
    printf("  unicast echo     %10.0f round trips/s\n", (double)n_rate / r_u);
    printf("  request/reply    %10.0f requests/s    (x%.2f of unicast)\n",
           (double)n_rate / r_r, r_u / r_r);
    (void)s_u;
    (void)s_r;
    rc = 0;
out_tn:
    if (confab_testnet_free(b.tn) != 0)
        rc = 1;
out:
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        rc = 1;
    free(b.t_ns);
    free(b.rtt_ns);
    return rc;
}
