/* test_relay.c: what a relay costs, in counts rather than times (issue
 * #12's relay throughput and round trip), and what a sender learns of the
 * path (docs/PROTOCOL.md section 13). On a line of 3 (0 - 1 - 2), node 1
 * relays between the ends:
 * - a burst of forwards shares the relay's transmit blocks and writes:
 *   more than 16 envelopes a write (a block of its own per envelope, and
 *   an empty one before it, held a write of 32 buffers to 16 at best);
 * - a relayed unicast's outcome says how many links its acknowledgement
 *   crossed (2), a direct one's says 1. */
#include "net.h"

#include <errno.h>

#define BODY  1024u
#define BURST 400u

static void fast(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->static_mesh = true;
    c->record_body_max = 16;
    c->node.ping_interval_ms = 100;
    c->node.peer_timeout_ms = 500;
    c->node.redial_min_ms = 50;
    c->node.redial_max_ms = 200;
}

static unsigned metric(confab_testnet *tn, unsigned i, unsigned j)
{
    confab_route r[16];
    size_t k = confab_routes(confab_testnet_node(tn, i), r, 16);
    for (size_t x = 0; x < k && x < 16; x++)
        if (memcmp(r[x].dst, net_id(tn, j), CONFAB_ID_BYTES) == 0)
            return r[x].metric;
    return CONFAB_ROUTE_INFINITY;
}

static bool ends_routed(confab_testnet *tn, void *arg)
{
    (void)arg;
    return metric(tn, 0, 2) == 2 && metric(tn, 2, 0) == 2;
}

static void start_line(net_fixture *f, unsigned n)
{
    confab_testnet_config c;
    fast(&c, n);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(confab_testnet_new(&f->loop, &c, &f->tn), 0);
    confab_testnet_set_topology(f->tn, CONFAB_TOPO_LINE);
    assert_int_equal(confab_testnet_start(f->tn), 0);
    assert_int_equal(
        confab_testnet_run_until(f->tn, ends_routed, NULL, net_deadline(10000)),
        0);
}

/* ---- forwards share writes --------------------------------------------- */

typedef struct burst {
    unsigned sent;
} burst;

/* Sends what the window takes, and is done when node 2 has every one. */
static bool burst_done(confab_testnet *tn, void *arg)
{
    burst *b = arg;
    static uint8_t body[BODY];
    confab_node *n = confab_testnet_node(tn, 0);
    while (b->sent < BURST) {
        int rc = confab_send(n, net_id(tn, 2), body, sizeof body, NULL, NULL);
        if (rc == -EAGAIN || rc == -ENOBUFS)
            break;
        assert_int_equal(rc, 0);
        b->sent++;
    }
    return confab_testnet_count(tn, CONFAB_EV_MESSAGE, 2, 0) >= BURST;
}

static void test_relay_forwards_share_writes(void **state)
{
    (void)state;
    net_fixture f;
    start_line(&f, 3);
    confab_stats s0, s1;
    confab_node_stats(confab_testnet_node(f.tn, 1), &s0);
    burst b = {0};
    assert_int_equal(
        confab_testnet_run_until(f.tn, burst_done, &b, net_deadline(20000)), 0);
    confab_node_stats(confab_testnet_node(f.tn, 1), &s1);
    uint64_t fwd = s1.routed_forwarded - s0.routed_forwarded;
    uint64_t writes = s1.link_writes - s0.link_writes;
    print_message("relay: %llu envelopes forwarded in %llu writes\n",
                  (unsigned long long)fwd, (unsigned long long)writes);
    assert_true(fwd >= BURST);
    /* More than 16 envelopes a write: a block of its own per envelope
     * (and an empty one before it) held a write of 32 buffers to 16. */
    assert_true(writes * 16 < fwd);
    net_stop(&f);
}

/* ---- the hops of an outcome -------------------------------------------- */

static bool delivered_from_0(confab_testnet *tn, void *arg)
{
    size_t *want = arg;
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev), got = 0;
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_SEND && ev[k].node == 0 &&
            ev[k].status == CONFAB_DELIVERED)
            got++;
    return got >= *want;
}

/* The hops of node 0's delivered outcome for the unicast to `to`. */
static unsigned outcome_hops(confab_testnet *tn, unsigned to)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_SEND && ev[k].node == 0 &&
            ev[k].peer == (int)to && ev[k].status == CONFAB_DELIVERED)
            return ev[k].hops;
    fail_msg("no delivered outcome at node 0 for node %u", to);
    return 0;
}

static void test_relay_outcome_says_hops(void **state)
{
    (void)state;
    net_fixture f;
    start_line(&f, 3);
    confab_node *a = confab_testnet_node(f.tn, 0);
    assert_int_equal(confab_send(a, net_id(f.tn, 2), "far", 3, NULL, NULL), 0);
    size_t want = 1;
    assert_int_equal(confab_testnet_run_until(f.tn, delivered_from_0, &want,
                                              net_deadline(10000)),
                     0);
    assert_int_equal(confab_send(a, net_id(f.tn, 1), "near", 4, NULL, NULL), 0);
    want = 2;
    assert_int_equal(confab_testnet_run_until(f.tn, delivered_from_0, &want,
                                              net_deadline(10000)),
                     0);
    assert_int_equal(outcome_hops(f.tn, 2), 2);
    assert_int_equal(outcome_hops(f.tn, 1), 1);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_forwards_share_writes),
        cmocka_unit_test(test_relay_outcome_says_hops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
