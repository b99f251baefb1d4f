/* test_discovery.c: nodes find each other by beacons alone (to
 * 127.255.255.255 on a port chosen for this run), only within their
 * network, again after a restart, and through peer exchange where
 * beacons do not reach. */
#include "net.h"

#include <sodium.h>

static void disc_config(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->discovery = true;
    c->node.beacon_interval_ms = 200;
    /* The default grace (two intervals) for the smaller id to dial; but
     * under valgrind a handshake can take longer than that, and the larger
     * id would dial too (a duplicate link, resolved, but counted); on a
     * loaded machine under valgrind a handshake has taken over 4 s. The
     * grace only delays the larger id's fall-back dial, so a long one
     * costs nothing while the smaller id dials. */
    c->node.dial_grace_ms =
        getenv("CONFAB_UNDER_VALGRIND") ? 30000 : 2 * 200;
}

static void test_discovery_ten_nodes_mesh_by_beacons(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    disc_config(&c, 10);
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    for (unsigned i = 0; i < 10; i++) {
        confab_stats st;
        confab_node_stats(confab_testnet_node(f.tn, i), &st);
        assert_int_equal(st.peers_up, 9);
        assert_true(st.beacons_sent > 0);
        assert_true(st.beacons_received > 0);
        /* Every node hears its own broadcasts too, and drops them. */
        assert_true(st.beacons_own > 0);
        assert_int_equal(st.beacons_bad_tag, 0);
        /* The smaller id dials: no pair dialed each other. */
        assert_int_equal(st.duplicate_links, 0);
    }
    net_stop(&f);
}

static bool bad_tags_seen(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, 0), &st);
    confab_stats odd;
    confab_node_stats(confab_testnet_node(tn, 3), &odd);
    return st.beacons_bad_tag >= 3 && odd.beacons_bad_tag >= 3;
}

static void test_discovery_other_network_never_linked(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    disc_config(&c, 4);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(confab_testnet_new(&f.loop, &c, &f.tn), 0);
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    assert_int_equal(confab_testnet_set_network_key(f.tn, 3, key), 0);
    assert_int_equal(confab_testnet_start(f.tn), 0);

    /* Nodes 0-2 mesh; node 3 hears their beacons but drops every one
     * (wrong tag), and they drop its. */
    assert_int_equal(
        confab_testnet_run_until(f.tn, bad_tags_seen, NULL,
                                 net_deadline(10000)),
        0);
    for (unsigned i = 0; i < 3; i++)
        for (unsigned j = 0; j < 3; j++)
            if (i != j)
                assert_true(confab_testnet_linked(f.tn, i, j));
    for (unsigned i = 0; i < 3; i++) {
        assert_false(confab_testnet_linked(f.tn, i, 3));
        assert_false(confab_testnet_linked(f.tn, 3, i));
        confab_peer_info info;
        /* It is not even known: its beacons never verified. */
        assert_int_equal(confab_peer(confab_testnet_node(f.tn, i),
                                     net_id(f.tn, 3), &info),
                         -ESRCH);
    }
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 3), &st);
    assert_int_equal(st.peers_up, 0);
    assert_int_equal(st.beacons_received, 0);
    assert_int_equal(st.links_accepted + st.links_dialed, 0);
    assert_true(st.beacons_dropped >= st.beacons_bad_tag);
    net_stop(&f);
}

static void test_discovery_restart_seen_down_and_up(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    disc_config(&c, 5);
    c.node.redial_min_ms = 50;
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    confab_testnet_clear_events(f.tn);

    assert_int_equal(confab_testnet_stop_node(f.tn, 2), 0);
    for (int i = 0; i < 5; i++)
        if (i != 2)
            assert_int_equal(
                net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, i, 2, 1, 5000), 0);
    assert_int_equal(confab_testnet_restart_node(f.tn, 2), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    for (int i = 0; i < 5; i++)
        if (i != 2)
            assert_int_equal(
                net_wait_count(f.tn, CONFAB_EV_PEER_UP, i, 2, 1, 5000), 0);
    net_stop(&f);
}

static void test_discovery_peer_exchange_bridges_groups(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    disc_config(&c, 8);
    /* A long grace, so that links across the groups can only come from
     * peer exchange answered by the smaller id, not from waiting. */
    c.node.dial_grace_ms = 60000;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(confab_testnet_new(&f.loop, &c, &f.tn), 0);
    /* Group A = 1..3, group B = 4..7; node 0 bridges: it hears both. No
     * beacon crosses between A and B. */
    for (unsigned i = 1; i <= 3; i++)
        for (unsigned j = 4; j <= 7; j++)
            confab_testnet_cut_beacons(f.tn, i, j);
    assert_int_equal(confab_testnet_start(f.tn), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(15000)), 0);
    /* The cross links exist, and their ends heard of each other only by
     * PEERS. */
    for (unsigned i = 1; i <= 3; i++)
        for (unsigned j = 4; j <= 7; j++)
            assert_true(confab_testnet_linked(f.tn, i, j));
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 0), &st);
    assert_true(st.peers_msgs_sent > 0);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_ten_nodes_mesh_by_beacons),
        cmocka_unit_test(test_discovery_other_network_never_linked),
        cmocka_unit_test(test_discovery_restart_seen_down_and_up),
        cmocka_unit_test(test_discovery_peer_exchange_bridges_groups),
    };
    return cmocka_run_group_tests_name("discovery", tests, NULL, NULL);
}
