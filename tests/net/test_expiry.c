/* test_expiry.c: unicasts whose time to live runs out are reported
 * EXPIRED, earliest deadline first, however many wait beside them (#18:
 * the tick takes the due ones from a timing wheel, node/base/timerq.c,
 * instead of walking every outbox). */
#include "net.h"

#define WAITING 2000u /* long-lived messages beside the short ones */

static int send_ttl(net_fixture *f, uint64_t ttl_ms, uint8_t id[16])
{
    confab_send_opts o;
    memset(&o, 0, sizeof o);
    o.ttl_ms = ttl_ms;
    return confab_send(confab_testnet_node(f->tn, 0), net_id(f->tn, 1), "x", 1,
                       &o, id);
}

static void test_expiry_earliest_first_among_many(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.peer_timeout_ms = 30000;
    net_start_meshed(&f, &c);
    /* Nothing passes: every message stays in node 0's outbox. */
    confab_testnet_cut(f.tn, 0, 1);
    uint8_t id[3][16], junk[16];
    for (unsigned i = 0; i < WAITING / 2; i++)
        assert_int_equal(send_ttl(&f, 600000, junk), 0);
    /* Sent in one order, due in another. */
    assert_int_equal(send_ttl(&f, 400, id[2]), 0);
    assert_int_equal(send_ttl(&f, 200, id[0]), 0);
    for (unsigned i = 0; i < WAITING / 2; i++)
        assert_int_equal(send_ttl(&f, 600000, junk), 0);
    assert_int_equal(send_ttl(&f, 300, id[1]), 0);

    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 0, 1, 3, 10000), 0);
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    unsigned k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != CONFAB_EV_SEND)
            continue;
        assert_true(k < 3);
        assert_int_equal(ev[i].status, CONFAB_EXPIRED);
        assert_memory_equal(ev[i].msg_id, id[k], 16);
        k++;
    }
    assert_int_equal(k, 3);
    confab_stats s;
    confab_node_stats(confab_testnet_node(f.tn, 0), &s);
    assert_int_equal(s.expired, 3);

    /* Healed: the rest is delivered, the expired ones are not. */
    confab_testnet_heal(f.tn, 0, 1);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 0, 1, 3 + WAITING, 30000), 0);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, 1, 0),
                     WAITING);
    confab_node_stats(confab_testnet_node(f.tn, 0), &s);
    assert_int_equal(s.expired, 3);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expiry_earliest_first_among_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
