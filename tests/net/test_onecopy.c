/* test_onecopy.c: the per-message path and large messages (#18): message
 * ids drawn without a random draw per message, bodies that arrive intact
 * through the direct writer and the segmented cipher at the sizes where
 * their forms change, large messages reassembled in place, and hostile
 * fragments from a raw peer after a valid handshake. */
#include "net.h"

#include "rawpeer.h"

#include <sodium.h>

/* The nodes' random source: libsodium's, counted. */
static unsigned random_calls;

static void counted_random(void *buf, size_t len, void *user)
{
    (void)user;
    random_calls++;
    randombytes_buf(buf, len);
}

#define IDS 300u

/* 300 unicasts from node 0 take at most one draw from the random source
 * (the ids' key), and their ids are all different. Before #18 each id
 * was a draw (from a pool refilled every 16 ids, or from cfg.random). */
static void test_onecopy_ids_without_random_draws(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.random = counted_random;
    net_start_meshed(&f, &c);
    confab_node *a = confab_testnet_node(f.tn, 0);
    static uint8_t ids[IDS][CONFAB_MSG_ID_BYTES];
    unsigned before = random_calls;
    for (unsigned i = 0; i < IDS; i++) {
        uint8_t body[8] = {(uint8_t)i, (uint8_t)(i >> 8)};
        assert_int_equal(
            confab_send(a, net_id(f.tn, 1), body, sizeof body, NULL, ids[i]),
            0);
    }
    unsigned draws = random_calls - before;
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, IDS, 10000),
                     0);
    assert_true(draws <= 1);
    for (unsigned i = 0; i < IDS; i++)
        for (unsigned j = 0; j < i; j++)
            assert_memory_not_equal(ids[i], ids[j], CONFAB_MSG_ID_BYTES);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onecopy_ids_without_random_draws),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("onecopy", tests, NULL, NULL);
}
