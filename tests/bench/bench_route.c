/* bench_route.c: what a relay costs (routing, docs/PROTOCOL.md section
 * 13). Three nodes in one process, in a line (0 - 1 - 2: node 0 has no
 * link to node 2), measured in the same run:
 *
 * - throughput of 1 KiB unicasts, 0 -> 1 (direct) and 0 -> 2 (through
 *   relay 1, sealed end to end), from the first send until the sender has
 *   every acknowledgement; target: relayed >= 0.5 x direct;
 * - the round trip of one unicast (send to its acknowledgement), one at a
 *   time, direct and relayed: the median; target: the relay adds no more
 *   than the direct round trip.
 *
 * All three nodes share this one thread, so the relay's work and the
 * seal and open at the two ends are counted against the relayed figures:
 * per message the relayed path does about three times the crypto of the
 * direct one (box, two link hops), all on one core here, where on three
 * machines the relay's runs beside the sender's. The figure is therefore
 * a floor. A missed target is printed; the exit status is 0 when every
 * case ran. BENCH_SCALE scales the counts. */
#include "node/testnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY        1024u
#define TPUT_MSGS   20000u
#define RTT_ROUNDS  200u
#define DEADLINE_MS 120000u
#define RUNS        3u

typedef struct bench {
    uv_loop_t loop;
    confab_testnet *tn;
    unsigned to;        /* the receiver now */
    uint64_t delivered; /* outcomes DELIVERED at node 0 for `to` */
    uint64_t received;  /* messages at `to` */
    uint64_t sent, total;
} bench;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_event(confab_testnet *tn, unsigned node, const confab_event *ev,
                     void *user)
{
    bench *b = user;
    int peer = ev->peer != NULL ? confab_testnet_index(tn, ev->peer) : -1;
    if (ev->type == CONFAB_EV_SEND && node == 0 && peer == (int)b->to &&
        ev->status == CONFAB_DELIVERED)
        b->delivered++;
    if (ev->type == CONFAB_EV_MESSAGE && node == b->to)
        b->received++;
}

static void pump(bench *b)
{
    static uint8_t body[BODY];
    confab_node *n = confab_testnet_node(b->tn, 0);
    const uint8_t *to = confab_node_id(confab_testnet_node(b->tn, b->to));
    while (b->sent < b->total) {
        int rc = confab_send(n, to, body, sizeof body, NULL, NULL);
        if (rc == -EAGAIN || rc == -ENOBUFS)
            return;
        if (rc != 0) {
            fprintf(stderr, "send: %s\n", confab_strerror(rc));
            exit(1);
        }
        b->sent++;
    }
}

static bool all_acked(confab_testnet *tn, void *arg)
{
    bench *b = arg;
    confab_testnet_clear_events(tn); /* counted in on_event */
    pump(b);
    return b->delivered >= b->total;
}

static bool has_route(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_route r[8];
    size_t k = confab_routes(confab_testnet_node(tn, 0), r, 8);
    const uint8_t *id2 = confab_node_id(confab_testnet_node(tn, 2));
    for (size_t i = 0; i < k && i < 8; i++)
        if (memcmp(r[i].dst, id2, CONFAB_ID_BYTES) == 0 && r[i].metric == 2)
            return confab_testnet_linked(tn, 0, 1) &&
                   confab_testnet_linked(tn, 1, 2);
    return false;
}

/* msg/s of total 1 KiB unicasts from 0 to `to`, to the last ACK. */
static double throughput(bench *b, unsigned to, uint64_t total)
{
    b->to = to;
    b->delivered = b->received = b->sent = 0;
    b->total = total;
    double t0 = now_s();
    if (confab_testnet_run_until(b->tn, all_acked, b, DEADLINE_MS) != 0) {
        fprintf(stderr, "throughput to node %u: timed out (%llu of %llu)\n", to,
                (unsigned long long)b->delivered, (unsigned long long)total);
        exit(1);
    }
    return (double)total / (now_s() - t0);
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

/* The median round trip (send to ACK) of one unicast at a time, in us. */
static double round_trip(bench *b, unsigned to, unsigned rounds)
{
    double *v = calloc(rounds, sizeof *v);
    if (v == NULL)
        exit(1);
    for (unsigned i = 0; i < rounds; i++) {
        b->to = to;
        b->delivered = b->received = b->sent = 0;
        b->total = 1;
        double t0 = now_s();
        if (confab_testnet_run_until(b->tn, all_acked, b, DEADLINE_MS) != 0) {
            fprintf(stderr, "round trip to node %u: timed out\n", to);
            exit(1);
        }
        v[i] = (now_s() - t0) * 1e6;
    }
    qsort(v, rounds, sizeof *v, cmp_d);
    double m = v[rounds / 2];
    free(v);
    return m;
}

int main(void)
{
    double scale = getenv("BENCH_SCALE") ? atof(getenv("BENCH_SCALE")) : 1.0;
    uint64_t msgs = (uint64_t)(TPUT_MSGS * scale);
    unsigned rounds = (unsigned)(RTT_ROUNDS * scale);
    if (msgs < 100)
        msgs = 100;
    if (rounds < 11)
        rounds = 11;
    bench b;
    memset(&b, 0, sizeof b);
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = 3;
    c.seed = 0xbe7c4;
    c.static_mesh = true;
    c.record_body_max = 1;
    c.event_cb = on_event;
    c.user = &b;
    c.node.log_level = CONFAB_LOG_ERROR;
    if (uv_loop_init(&b.loop) != 0 ||
        confab_testnet_new(&b.loop, &c, &b.tn) != 0)
        return 1;
    confab_testnet_set_topology(b.tn, CONFAB_TOPO_LINE);
    if (confab_testnet_start(b.tn) != 0 ||
        confab_testnet_run_until(b.tn, has_route, NULL, 20000) != 0) {
        fprintf(stderr, "the line 0 - 1 - 2 did not form\n");
        return 1;
    }
    printf("bench_route: 3 nodes in one thread, a line 0 - 1 - 2; 1 KiB "
           "unicasts, %llu per run, %u runs; round trips: %u, median\n",
           (unsigned long long)msgs, RUNS, rounds);
    double direct[RUNS], relayed[RUNS];
    (void)throughput(&b, 1, msgs / 10); /* warm up both paths */
    (void)throughput(&b, 2, msgs / 10);
    for (unsigned r = 0; r < RUNS; r++) {
        direct[r] = throughput(&b, 1, msgs);
        relayed[r] = throughput(&b, 2, msgs);
    }
    qsort(direct, RUNS, sizeof direct[0], cmp_d);
    qsort(relayed, RUNS, sizeof relayed[0], cmp_d);
    double ratio = relayed[RUNS / 2] / direct[RUNS / 2];
    printf("throughput direct:  %.0f msg/s (median; range %.0f..%.0f)\n",
           direct[RUNS / 2], direct[0], direct[RUNS - 1]);
    printf("throughput relayed: %.0f msg/s (median; range %.0f..%.0f)\n",
           relayed[RUNS / 2], relayed[0], relayed[RUNS - 1]);
    printf("relayed / direct: %.2f (target >= 0.50): %s\n", ratio,
           ratio >= 0.5 ? "met" : "MISSED");
    double rd = round_trip(&b, 1, rounds), rr = round_trip(&b, 2, rounds);
    double added = rr - rd;
    printf("round trip direct: %.0f us, relayed: %.0f us; the relay adds "
           "%.0f us = %.2f x direct (target <= 1.00): %s\n",
           rd, rr, added, added / rd, added <= rd ? "met" : "MISSED");
    confab_stats st;
    confab_node_stats(confab_testnet_node(b.tn, 1), &st);
    printf("relay: %llu envelopes forwarded, %llu dropped at a full link, "
           "%llu opened\n",
           (unsigned long long)st.routed_forwarded,
           (unsigned long long)st.routed_relay_full,
           (unsigned long long)st.routed_received);
    confab_node_stats(confab_testnet_node(b.tn, 0), &st);
    printf("sender: %llu retransmits; ", (unsigned long long)st.retransmits);
    confab_node_stats(confab_testnet_node(b.tn, 2), &st);
    printf("receiver: %llu duplicates, %llu out of order dropped\n",
           (unsigned long long)st.duplicates_dropped,
           (unsigned long long)st.out_of_order_dropped);
    int rc = confab_testnet_free(b.tn);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    return rc == 0 && uv_loop_close(&b.loop) == 0 ? 0 : 1;
}
