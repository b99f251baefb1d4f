/* test_liveness.c: peers that vanish are seen down, with the right reason
 * and within the deadline; peers that come back are linked again. */
#include "net.h"

static void fast_config(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->static_mesh = true;
    c->node.ping_interval_ms = 100;
    c->node.peer_timeout_ms = 600;
    c->node.redial_min_ms = 50;
    c->node.redial_max_ms = 400;
}

static void test_liveness_reset_link_down_then_back(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    fast_config(&c, 2);
    net_start_meshed(&f, &c);

    /* n0 resets the link abruptly, as a crash of the connection would. */
    assert_int_equal(confab_testnet_drop(f.tn, 0, 1), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 1, 0, 1, 2000),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 0, 1, 1, 2000),
                     0);
    assert_int_equal(net_last(f.tn, CONFAB_EV_PEER_DOWN, 1, 0)->reason,
                     CONFAB_DOWN_CLOSED);
    /* n1 dialed n0 (a static peer): it re-dials, and the link is back. */
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_UP, 1, 0, 2, 5000), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    /* And it carries messages. */
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 0), net_id(f.tn, 1),
                                 "again", 5, NULL, NULL),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 1, 5000),
                     0);
    net_stop(&f);
}

static void test_liveness_silent_peer_times_out(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    fast_config(&c, 3);
    net_start_meshed(&f, &c);

    /* Cut 0-1: nothing passes, nothing is closed. Only silence tells
     * (counted from the last frame each side received, so no lower bound
     * on the time can be asserted; the reason says how it was found). */
    confab_testnet_cut(f.tn, 0, 1);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 0, 1, 1, 5000),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 1, 0, 1, 5000),
                     0);
    assert_int_equal(net_last(f.tn, CONFAB_EV_PEER_DOWN, 0, 1)->reason,
                     CONFAB_DOWN_TIMEOUT);
    assert_int_equal(net_last(f.tn, CONFAB_EV_PEER_DOWN, 1, 0)->reason,
                     CONFAB_DOWN_TIMEOUT);
    /* The other links never noticed. */
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, 2, -1),
                     0);
    assert_true(confab_testnet_linked(f.tn, 0, 2));
    assert_true(confab_testnet_linked(f.tn, 1, 2));

    /* Healed, the pair links again. */
    confab_testnet_heal(f.tn, 0, 1);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    net_stop(&f);
}

static void test_liveness_stopped_node_says_bye(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    fast_config(&c, 3);
    net_start_meshed(&f, &c);

    assert_int_equal(confab_testnet_stop_node(f.tn, 0), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 1, 0, 1, 3000),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 2, 0, 1, 3000),
                     0);
    assert_int_equal(net_last(f.tn, CONFAB_EV_PEER_DOWN, 1, 0)->reason,
                     CONFAB_DOWN_BYE);
    assert_int_equal(net_last(f.tn, CONFAB_EV_PEER_DOWN, 2, 0)->reason,
                     CONFAB_DOWN_BYE);
    /* Back with the same identity and port: the static peers find it. */
    assert_int_equal(confab_testnet_restart_node(f.tn, 0), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    assert_true(confab_testnet_count(f.tn, CONFAB_EV_PEER_UP, 1, 0) >= 2);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liveness_reset_link_down_then_back),
        cmocka_unit_test(test_liveness_silent_peer_times_out),
        cmocka_unit_test(test_liveness_stopped_node_says_bye),
    };
    return cmocka_run_group_tests_name("liveness", tests, NULL, NULL);
}
