/* test_mesh50.c: fifty nodes in one process mesh by beacons alone, and a
 * message from each reaches every other: 1,225 links, 2,450 unicasts. */
#include "net.h"

static void test_mesh50_full_mesh_and_traffic(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 50);
    c.discovery = true;
    c.node.mesh_threshold = 64; /* the full mesh, past the default 16 */
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(30000)), 0);
    for (unsigned i = 0; i < 50; i++)
        for (unsigned j = 0; j < 50; j++)
            if (i != j)
                assert_int_equal(confab_send(confab_testnet_node(f.tn, i),
                                             net_id(f.tn, j), "hi", 2, NULL,
                                             NULL),
                                 0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, -1, -1, 50 * 49, 30000), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, i, -1),
                         49);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh50_full_mesh_and_traffic),
    };
    return cmocka_run_group_tests_name("mesh50", tests, NULL, NULL);
}
