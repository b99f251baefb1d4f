/* test_pex_cost.c: what peer exchange costs a network forming (#18):
 * about one PEERS per link each way (the whole lists) and a few batches of
 * newcomers (docs/PROTOCOL.md 9.3), not one per link per batch interval,
 * which grew faster than N^2. A count, not a timing; in suite 'slow' (forty
 * nodes under valgrind take minutes). */
#include "net.h"

/* A network forming by beacons: about one PEERS per link each way (the
 * whole lists) and a few batches, not one per link per batch interval:
 * at most 4 a link in all (2.5 to 3.3 seen, debug build, load 8 on 2
 * cores). Before, 40 nodes sent 5.8 to 7.0 a link, and the count grew
 * faster than N^2. */
static void test_pex_cost_forty_nodes_about_a_list_per_link(void **state)
{
    (void)state;
    enum { N = 40 };
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, N);
    c.discovery = true;
    c.node.mesh_threshold = N + 1; /* the full mesh, past the default 16 */
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(30000)), 0);
    uint64_t msgs = 0, entries = 0;
    for (unsigned i = 0; i < N; i++) {
        confab_stats st;
        confab_node_stats(confab_testnet_node(f.tn, i), &st);
        msgs += st.peers_msgs_sent;
        entries += st.peers_entries_sent;
    }
    unsigned links = N * (N - 1) / 2;
    print_message("%u nodes: %llu PEERS (%.2f a link), %llu entries\n", N,
                  (unsigned long long)msgs, (double)msgs / links,
                  (unsigned long long)entries);
    if (msgs > 4u * links)
        fail_msg("%llu PEERS for %u links", (unsigned long long)msgs, links);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pex_cost_forty_nodes_about_a_list_per_link),
    };
    return cmocka_run_group_tests_name("pex_cost", tests, NULL, NULL);
}
