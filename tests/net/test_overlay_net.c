/* test_overlay_net.c: the overlay of large networks in a real network
 * (#13, docs/PROTOCOL.md section 15): 24 nodes in one process, found by
 * beacons, with the mesh threshold lowered to 6 and at most 4 links each.
 *
 * - the partial mesh forms: no node above max_links, the links connect
 *   everyone, every node knows every other, unicasts reach nodes with no
 *   link (routes);
 * - a broadcast reaches every node exactly once, over the tree;
 * - it stays connected under churn (nodes stopped and restarted), and the
 *   next broadcast reaches every running node;
 * - the tree repairs: with tree links cut (nothing passes, nothing
 *   closes), the broadcast still reaches everyone (IHAVE, GRAFT). */
#include "net.h"

#include "node/node.h"

#define NODES     24u
#define THRESHOLD 6u
#define MAX_LINKS 4u

static void overlay_config(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->discovery = true;
    c->node.mesh_threshold = THRESHOLD;
    c->node.max_links = MAX_LINKS;
    /* A fifth of the default time scale: shuffles every 2 s. */
    c->node.overlay_period_ms = 200;
}

static unsigned links_of(confab_testnet *tn, unsigned i)
{
    unsigned k = 0;
    for (unsigned j = 0; j < confab_testnet_size(tn); j++)
        if (j != i && confab_testnet_running(tn, j) &&
            confab_testnet_linked(tn, i, j))
            k++;
    return k;
}

/* Every running node reaches every other over links (a BFS). */
static bool connected(confab_testnet *tn)
{
    unsigned n = confab_testnet_size(tn);
    bool seen[64] = {false};
    unsigned queue[64], head = 0, tail = 0, first = n, running = 0;
    for (unsigned i = 0; i < n; i++)
        if (confab_testnet_running(tn, i)) {
            running++;
            if (first == n)
                first = i;
        }
    if (first == n)
        return true;
    seen[first] = true;
    queue[tail++] = first;
    unsigned reached = 1;
    while (head < tail) {
        unsigned i = queue[head++];
        for (unsigned j = 0; j < n; j++)
            if (!seen[j] && confab_testnet_running(tn, j) &&
                confab_testnet_linked(tn, i, j)) {
                seen[j] = true;
                queue[tail++] = j;
                reached++;
            }
    }
    return reached == running;
}

static bool knows_all(confab_testnet *tn, unsigned i)
{
    confab_node *node = confab_testnet_node(tn, i);
    for (unsigned j = 0; j < confab_testnet_size(tn); j++)
        if (j != i && node_peer_find(node, net_id(tn, j)) == NULL)
            return false;
    return true;
}

static bool formed(confab_testnet *tn, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < confab_testnet_size(tn); i++) {
        if (!confab_testnet_running(tn, i))
            continue;
        confab_stats st;
        confab_node_stats(confab_testnet_node(tn, i), &st);
        unsigned k = links_of(tn, i);
        if (st.overlay_on != 1 || k == 0 || k > MAX_LINKS || !knows_all(tn, i))
            return false;
    }
    return connected(tn);
}

/* Broadcast copies of msg id delivered to node i. */
static size_t copies(confab_testnet *tn, unsigned i, const uint8_t *id)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev), k = 0;
    for (size_t e = 0; e < n; e++)
        if (ev[e].type == CONFAB_EV_MESSAGE && ev[e].node == i &&
            ev[e].kind == CONFAB_BROADCAST &&
            memcmp(ev[e].msg_id, id, CONFAB_MSG_ID_BYTES) == 0)
            k++;
    return k;
}

typedef struct bcast_arg {
    const uint8_t *id;
    unsigned from;
} bcast_arg;

static bool everyone_has(confab_testnet *tn, void *arg)
{
    const bcast_arg *a = arg;
    for (unsigned i = 0; i < confab_testnet_size(tn); i++)
        if (i != a->from && confab_testnet_running(tn, i) &&
            copies(tn, i, a->id) == 0)
            return false;
    return true;
}

/* Node from broadcasts; every running node gets it once. */
static void broadcast_reaches_all(confab_testnet *tn, unsigned from,
                                  const char *text)
{
    uint8_t id[CONFAB_MSG_ID_BYTES];
    size_t sent = 0;
    assert_int_equal(confab_broadcast(confab_testnet_node(tn, from), text,
                                      strlen(text), NULL, id, &sent),
                     0);
    assert_true(sent <= MAX_LINKS); /* the tree's links, not N - 1 */
    bcast_arg a = {id, from};
    assert_int_equal(
        confab_testnet_run_until(tn, everyone_has, &a, net_deadline(15000)), 0);
    /* A second broadcast after it: once it is everywhere, any copy of
     * the first still on its way has had the time to arrive. */
    uint8_t id2[CONFAB_MSG_ID_BYTES];
    assert_int_equal(confab_broadcast(confab_testnet_node(tn, from), "after", 5,
                                      NULL, id2, NULL),
                     0);
    bcast_arg a2 = {id2, from};
    assert_int_equal(
        confab_testnet_run_until(tn, everyone_has, &a2, net_deadline(15000)),
        0);
    for (unsigned i = 0; i < confab_testnet_size(tn); i++)
        if (i != from && confab_testnet_running(tn, i))
            assert_int_equal(copies(tn, i, id), 1);
}

/* What a test that timed out waiting for formed() saw, node by node. */
static void dump(confab_testnet *tn)
{
    for (unsigned i = 0; i < confab_testnet_size(tn); i++) {
        if (!confab_testnet_running(tn, i))
            continue;
        confab_stats st;
        confab_node_stats(confab_testnet_node(tn, i), &st);
        fprintf(stderr, "n%u: on %llu links %u view %llu passive %llu%s\n", i,
                (unsigned long long)st.overlay_on, links_of(tn, i),
                (unsigned long long)st.overlay_links,
                (unsigned long long)st.overlay_passive,
                knows_all(tn, i) ? "" : " (does not know everyone)");
    }
    fprintf(stderr, "connected: %d\n", connected(tn));
}

static void wait_formed(confab_testnet *tn)
{
    int rc = confab_testnet_run_until(tn, formed, NULL, net_deadline(30000));
    if (rc != 0)
        dump(tn);
    assert_int_equal(rc, 0);
}

static void start_formed(net_fixture *f)
{
    confab_testnet_config c;
    overlay_config(&c, NODES);
    net_start(f, &c);
    wait_formed(f->tn);
}

static void test_overlay_partial_mesh_forms(void **state)
{
    (void)state;
    net_fixture f;
    start_formed(&f);
    unsigned total = 0;
    for (unsigned i = 0; i < NODES; i++) {
        total += links_of(f.tn, i);
        confab_stats st;
        confab_node_stats(confab_testnet_node(f.tn, i), &st);
        assert_true(st.overlay_links >= 1 && st.overlay_links <= MAX_LINKS);
        assert_true(st.overlay_msgs_sent > 0 && st.overlay_msgs_received > 0);
    }
    /* Far from the full mesh's 23 links each. */
    assert_true(total / 2 <= NODES * MAX_LINKS / 2);

    /* A unicast to a node with no link goes over routes, and is
     * acknowledged end to end. */
    unsigned to = 1;
    while (confab_testnet_linked(f.tn, 0, to))
        to++;
    assert_true(to < NODES);
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 0), net_id(f.tn, to),
                                 "far", 3, NULL, NULL),
                     0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, (int)to, 0, 1, 10000), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 0, (int)to, 1, 10000),
                     0);
    assert_int_equal(net_last(f.tn, CONFAB_EV_SEND, 0, (int)to)->status,
                     CONFAB_DELIVERED);
    net_stop(&f);
}

static void test_overlay_broadcast_once(void **state)
{
    (void)state;
    net_fixture f;
    start_formed(&f);
    broadcast_reaches_all(f.tn, 0, "to all of you");
    broadcast_reaches_all(f.tn, 7, "and from here");
    net_stop(&f);
}

static void test_overlay_churn(void **state)
{
    (void)state;
    net_fixture f;
    start_formed(&f);
    /* A quarter of the nodes go; the rest stay connected and within
     * their bound, and the next broadcast reaches every one left. */
    for (unsigned i = 3; i < NODES; i += 4)
        assert_int_equal(confab_testnet_stop_node(f.tn, i), 0);
    wait_formed(f.tn);
    broadcast_reaches_all(f.tn, 0, "after the losses");
    /* They come back (same identities), and join again. */
    for (unsigned i = 3; i < NODES; i += 4)
        assert_int_equal(confab_testnet_restart_node(f.tn, i), 0);
    wait_formed(f.tn);
    broadcast_reaches_all(f.tn, 1, "welcome back");
    net_stop(&f);
}

static void test_overlay_tree_repairs(void **state)
{
    (void)state;
    net_fixture f;
    start_formed(&f);
    /* The first broadcast builds the tree (duplicates prune). */
    broadcast_reaches_all(f.tn, 0, "build the tree");
    /* Cut every link of the source but one, silently: its eager pushes
     * there are lost until liveness notices; the rest of the network
     * must get the next broadcast from the one left, and repair any
     * branch that hung off a cut link by IHAVE and GRAFT. */
    unsigned kept = NODES;
    for (unsigned j = 1; j < NODES; j++) {
        if (!confab_testnet_linked(f.tn, 0, j))
            continue;
        if (kept == NODES) {
            kept = j;
            continue;
        }
        confab_testnet_cut(f.tn, 0, j);
    }
    assert_true(kept < NODES);
    broadcast_reaches_all(f.tn, 0, "through the cut");
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlay_partial_mesh_forms),
        cmocka_unit_test(test_overlay_broadcast_once),
        cmocka_unit_test(test_overlay_churn),
        cmocka_unit_test(test_overlay_tree_repairs),
    };
    return cmocka_run_group_tests_name("overlay_net", tests, NULL, NULL);
}
