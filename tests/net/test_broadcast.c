/* test_broadcast.c: five nodes; a broadcast reaches every other node
 * exactly once, and never its sender. */
#include "net.h"

static void test_broadcast_five_nodes_exactly_once(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 5);
    c.static_mesh = true;
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);

    /* Every node broadcasts once, with its index in the body. */
    for (unsigned i = 0; i < 5; i++) {
        char body[16];
        int len = snprintf(body, sizeof body, "from %u", i);
        size_t sent = 0;
        uint8_t id[16];
        assert_int_equal(confab_broadcast(confab_testnet_node(f.tn, i), body,
                                          (size_t)len, NULL, id, &sent),
                         0);
        assert_int_equal(sent, 4);
    }
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, -1, -1, 20, 10000), 0);

    /* Let anything extra arrive before counting: wait for a unicast sent
     * after the broadcasts on every link, which arrives after them. */
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 5; j++)
            if (i != j)
                assert_int_equal(confab_send(confab_testnet_node(f.tn, i),
                                             net_id(f.tn, j), "end", 3, NULL,
                                             NULL),
                                 0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, -1, -1, 40, 10000), 0);

    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    unsigned got[5][5];
    memset(got, 0, sizeof got);
    for (size_t k = 0; k < n; k++) {
        if (ev[k].type != CONFAB_EV_MESSAGE || ev[k].kind != CONFAB_BROADCAST)
            continue;
        assert_true(ev[k].peer >= 0);
        char want[16];
        snprintf(want, sizeof want, "from %d", ev[k].peer);
        assert_int_equal(ev[k].len, strlen(want));
        assert_memory_equal(ev[k].body, want, ev[k].len);
        got[ev[k].node][ev[k].peer]++;
    }
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 5; j++)
            assert_int_equal(got[i][j], i == j ? 0 : 1);
    net_stop(&f);
}

static void test_broadcast_no_peers_is_fine(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 1);
    net_start(&f, &c);
    size_t sent = 99;
    assert_int_equal(confab_broadcast(confab_testnet_node(f.tn, 0), "x", 1,
                                      NULL, NULL, &sent),
                     0);
    assert_int_equal(sent, 0);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_five_nodes_exactly_once),
        cmocka_unit_test(test_broadcast_no_peers_is_fine),
    };
    return cmocka_run_group_tests_name("broadcast", tests, NULL, NULL);
}
