/* test_idle.c: what a node sends when there is little to say (#18).
 *
 * Counters, not timing: each case watches the nodes' own counters over a
 * stretch of the loop's clock and asserts an upper bound on what they
 * sent. A slow machine only makes the timers fire later, so fewer beacons
 * and PINGs: the bounds cannot fail for slowness. */
#include "net.h"

typedef struct window_arg {
    uv_loop_t *loop;
    uint64_t until;
} window_arg;

static bool window_over(confab_testnet *tn, void *arg)
{
    window_arg *w = arg;
    (void)tn;
    return uv_now(w->loop) >= w->until;
}

/* Runs the network for ms of loop time (the stretch the counters are
 * read over; not a wait for an event). */
static void run_for(net_fixture *f, unsigned ms)
{
    uv_update_time(&f->loop);
    window_arg w = {&f->loop, uv_now(&f->loop) + ms};
    assert_int_equal(
        confab_testnet_run_until(f->tn, window_over, &w, ms + 60000), 0);
}

static confab_stats stats_of(net_fixture *f, unsigned i)
{
    confab_stats s;
    confab_node_stats(confab_testnet_node(f->tn, i), &s);
    return s;
}

typedef struct heard_arg {
    unsigned nodes;
    uint64_t want;
} heard_arg;

static bool all_heard(confab_testnet *tn, void *arg)
{
    heard_arg *a = arg;
    for (unsigned i = 0; i < a->nodes; i++) {
        confab_stats s;
        confab_node_stats(confab_testnet_node(tn, i), &s);
        if (s.beacons_received < a->want)
            return false;
    }
    return true;
}

#define BEACON_NODES 6u
#define BEACON_MS    100u
#define BEACON_IVS   30u

/* Nodes linked by static peers before they heard each other's beacons
 * still beacon at the configured rate: each of a linked peer's beacons
 * used to earn it an extra one (p->heard was never set for it), so with
 * five peers a node beaconed up to twice as often. */
static void test_idle_beacons_at_the_configured_rate(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, BEACON_NODES);
    c.static_mesh = true;
    c.discovery = true;
    c.node.beacon_interval_ms = BEACON_MS;
    net_start(&f, &c);
    /* Linked before any beacon is heard: beacons are cut until the static
     * links are up (as when beacons come late, or a peer was learned by
     * peer exchange). */
    for (unsigned i = 0; i < BEACON_NODES; i++)
        for (unsigned j = i + 1; j < BEACON_NODES; j++)
            confab_testnet_cut_beacons(f.tn, i, j);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    for (unsigned i = 0; i < BEACON_NODES; i++)
        for (unsigned j = i + 1; j < BEACON_NODES; j++)
            confab_testnet_heal(f.tn, i, j);
    /* Every node has heard a few beacons of each peer: any first-time
     * extra beacon is behind us. */
    heard_arg h = {BEACON_NODES, 3u * (BEACON_NODES - 1u)};
    assert_int_equal(
        confab_testnet_run_until(f.tn, all_heard, &h, net_deadline(10000)), 0);

    uint64_t before[BEACON_NODES];
    for (unsigned i = 0; i < BEACON_NODES; i++)
        before[i] = stats_of(&f, i).beacons_sent;
    run_for(&f, BEACON_IVS * BEACON_MS);
    /* The interval is jittered by +-25% around its mean: 30 intervals'
     * time holds about 30 beacons; two extra bound the window's edges. */
    uint64_t most = BEACON_IVS * 6u / 5u + 2u;
    for (unsigned i = 0; i < BEACON_NODES; i++) {
        uint64_t sent = stats_of(&f, i).beacons_sent - before[i];
        if (sent > most)
            fail_msg("node %u sent %llu beacons in %u beacon intervals "
                     "(at most %llu expected)",
                     i, (unsigned long long)sent, BEACON_IVS,
                     (unsigned long long)most);
    }
    net_stop(&f);
}

#define PING_MS  100u
#define PING_IVS 20u

/* An idle link: one PING per ping interval for the link, not one from
 * each end. */
static void test_idle_one_ping_per_interval_per_link(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.ping_interval_ms = PING_MS;
    c.node.peer_timeout_ms = 5000;
    net_start_meshed(&f, &c);
    run_for(&f, 2u * PING_MS); /* past the pings of the link's start */
    uint64_t p0 = stats_of(&f, 0).pings_sent, p1 = stats_of(&f, 1).pings_sent;
    run_for(&f, PING_IVS * PING_MS);
    uint64_t sent =
        stats_of(&f, 0).pings_sent - p0 + stats_of(&f, 1).pings_sent - p1;
    /* Both ends pinging made it about 1.5 to 2 per interval. */
    if (sent > PING_IVS * 5u / 4u + 2u)
        fail_msg("%llu PINGs on one idle link in %u ping intervals (at most "
                 "%u expected)",
                 (unsigned long long)sent, PING_IVS, PING_IVS * 5u / 4u + 2u);
    assert_true(sent > 0); /* it is still watched */
    assert_true(confab_testnet_linked(f.tn, 0, 1));
    net_stop(&f);
}

#define BUSY_PING_MS 250u
#define BUSY_IVS     12u

typedef struct busy_arg {
    uv_loop_t *loop;
    uint64_t until;
    bool started;
} busy_arg;

/* Each node keeps one message in flight to the other: a new one as soon
 * as the last is acknowledged. The events are cleared at every step, so
 * a SEND event recorded is an acknowledgement since the last step. */
static bool busy_step(confab_testnet *tn, void *arg)
{
    busy_arg *b = arg;
    for (unsigned i = 0; i < 2; i++) {
        if (b->started &&
            confab_testnet_count(tn, CONFAB_EV_SEND, (int)i, -1) == 0)
            continue;
        assert_int_equal(confab_send(confab_testnet_node(tn, i),
                                     net_id(tn, 1u - i), "busy", 4, NULL, NULL),
                         0);
    }
    b->started = true;
    confab_testnet_clear_events(tn);
    return uv_now(b->loop) >= b->until;
}

/* A link that carries messages both ways needs no PING: the messages show
 * that the peer sends, their acknowledgements that it reads. */
static void test_idle_no_ping_on_a_busy_link(void **state)
{
    (void)state;
    /* Under valgrind a message takes the time of many: an interval ten
     * times as long holds the same traffic (net_deadline's factor). */
    const unsigned busy_ping_ms = net_deadline(BUSY_PING_MS);
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.ping_interval_ms = busy_ping_ms;
    c.node.peer_timeout_ms = net_deadline(10000);
    net_start_meshed(&f, &c);
    run_for(&f, busy_ping_ms); /* past the pings of the link's start */
    confab_stats s0 = stats_of(&f, 0), s1 = stats_of(&f, 1);

    uv_update_time(&f.loop);
    busy_arg b;
    memset(&b, 0, sizeof b);
    b.loop = &f.loop;
    b.until = uv_now(&f.loop) + BUSY_IVS * busy_ping_ms;
    confab_testnet_clear_events(f.tn);
    assert_int_equal(confab_testnet_run_until(f.tn, busy_step, &b,
                                              BUSY_IVS * busy_ping_ms + 60000),
                     0);
    confab_stats e0 = stats_of(&f, 0), e1 = stats_of(&f, 1);
    /* It was busy: many messages each way. */
    assert_true(e0.msgs_received - s0.msgs_received > 4 * BUSY_IVS);
    assert_true(e1.msgs_received - s1.msgs_received > 4 * BUSY_IVS);
    /* Three PINGs each (one every four intervals) before. */
    assert_int_equal(e0.pings_sent - s0.pings_sent, 0);
    assert_int_equal(e1.pings_sent - s1.pings_sent, 0);
    assert_true(e0.pings_spared + e1.pings_spared > 0);
    net_stop(&f);
}

#define WAKE_WINDOW_MS 3000u

/* An idle node's tick sleeps until something is due: it used to run
 * every 25 ms here (every 62.5 ms at the defaults) whatever was pending. */
static void test_idle_tick_sleeps(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 3);
    c.static_mesh = true;
    c.node.ping_interval_ms = 1000;
    c.node.peer_timeout_ms = 15000;
    net_start_meshed(&f, &c);
    run_for(&f, 500); /* the links' first PINGs answered */
    uint64_t w[3];
    for (unsigned i = 0; i < 3; i++)
        w[i] = stats_of(&f, i).timer_wakeups;
    run_for(&f, WAKE_WINDOW_MS);
    /* At most the PINGs due (one per second per link at the smaller end)
     * and the tick's longest sleep (NODE_WAKE_MAX_MS, 1 s) per second,
     * and one at each end of the window. */
    uint64_t most = 3u * WAKE_WINDOW_MS / 1000u + 2u;
    /* Under valgrind timers due together natively fire in separate loop
     * turns: one more a second (the old tick woke 48 times here). */
    if (getenv("CONFAB_UNDER_VALGRIND"))
        most += WAKE_WINDOW_MS / 1000u;
    for (unsigned i = 0; i < 3; i++) {
        uint64_t woke = stats_of(&f, i).timer_wakeups - w[i];
        if (woke > most)
            fail_msg("node %u woke %llu times in %u ms idle (at most %llu "
                     "expected)",
                     i, (unsigned long long)woke, WAKE_WINDOW_MS,
                     (unsigned long long)most);
    }
    /* Still watched: the links are up and the PINGs went. */
    assert_true(confab_testnet_full_mesh(f.tn));
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_beacons_at_the_configured_rate),
        cmocka_unit_test(test_idle_one_ping_per_interval_per_link),
        cmocka_unit_test(test_idle_no_ping_on_a_busy_link),
        cmocka_unit_test(test_idle_tick_sleeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
