/* test_peers.c: parts of node/peers/ that stand alone, on a zeroed, never
 * started confab_node: the tie-break between two links to one peer, the
 * re-dial backoff, and the beacon limiter. */
#include "crypto/sec.h"
#include "node/node.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Two nodes, a and b, each with an identity; a has the smaller id. */
typedef struct pair {
    confab_node *a, *b;
    node_peer pa, pb; /* b as a sees it, a as b sees it */
} pair;

static int setup(void **state)
{
    assert_int_equal(sec_init(), 0);
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->a = calloc(1, sizeof *p->a);
    p->b = calloc(1, sizeof *p->b);
    assert_non_null(p->a);
    assert_non_null(p->b);
    assert_int_equal(sec_identity_generate(&p->a->identity), 0);
    assert_int_equal(sec_identity_generate(&p->b->identity), 0);
    if (memcmp(p->a->identity->pk, p->b->identity->pk, WIRE_NODE_ID_BYTES) >
        0) {
        sec_identity *t = p->a->identity;
        p->a->identity = p->b->identity;
        p->b->identity = t;
    }
    memcpy(p->pa.id, p->b->identity->pk, WIRE_NODE_ID_BYTES);
    memcpy(p->pb.id, p->a->identity->pk, WIRE_NODE_ID_BYTES);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    sec_identity_free(p->a->identity);
    sec_identity_free(p->b->identity);
    free(p->a);
    free(p->b);
    free(p);
    return 0;
}

/* One link as each end sees it: dialed by a (outbound at a) or by b. */
static void link_of(pair *p, bool dialed_by_a, uint8_t hash, node_conn *at_a,
                    node_conn *at_b)
{
    memset(at_a, 0, sizeof *at_a);
    memset(at_b, 0, sizeof *at_b);
    at_a->node = p->a;
    at_a->peer = &p->pa;
    at_a->outbound = dialed_by_a;
    at_b->node = p->b;
    at_b->peer = &p->pb;
    at_b->outbound = !dialed_by_a;
    memset(at_a->hs_hash, hash, sizeof at_a->hs_hash);
    memset(at_b->hs_hash, hash, sizeof at_b->hs_hash);
}

/* Both ends keep the same link, whichever order they saw the two in: the
 * one dialed by the smaller id; of two dialed by one side, the smaller
 * handshake hash. */
static void test_peers_tie_break_both_ends_agree(void **state)
{
    pair *p = *state;
    node_conn x_a, x_b, y_a, y_b;
    /* x dialed by a (the smaller id), y dialed by b. */
    link_of(p, true, 0x90, &x_a, &x_b);
    link_of(p, false, 0x10, &y_a, &y_b);
    assert_ptr_equal(node_tie_break(&x_a, &y_a), &x_a);
    assert_ptr_equal(node_tie_break(&y_a, &x_a), &x_a);
    assert_ptr_equal(node_tie_break(&x_b, &y_b), &x_b);
    assert_ptr_equal(node_tie_break(&y_b, &x_b), &x_b);
    /* Both dialed by b: the smaller handshake hash, at both ends. */
    link_of(p, false, 0x90, &x_a, &x_b);
    link_of(p, false, 0x10, &y_a, &y_b);
    assert_ptr_equal(node_tie_break(&x_a, &y_a), &y_a);
    assert_ptr_equal(node_tie_break(&y_a, &x_a), &y_a);
    assert_ptr_equal(node_tie_break(&x_b, &y_b), &y_b);
    assert_ptr_equal(node_tie_break(&y_b, &x_b), &y_b);
}

/* The backoff starts at redial_min_ms, doubles, stops at redial_max_ms;
 * the next dial is between half and all of it from now. */
static void test_peers_redial_backoff(void **state)
{
    pair *p = *state;
    confab_node *n = p->a;
    n->cfg.redial_min_ms = 100;
    n->cfg.redial_max_ms = 1000;
    unsigned b = 0;
    uint64_t next = 0;
    const unsigned want[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        for (int k = 0; k < 50; k++) {
            unsigned bb = b;
            node_backoff_next(n, &bb, &next, 5000);
            assert_int_equal(bb, want[i]);
            assert_true(next >= 5000 + want[i] / 2);
            assert_true(next <= 5000 + want[i]);
        }
        node_backoff_next(n, &b, &next, 5000);
    }
}

/* A source may send NODE_RATE_BEACONS beacons a second; another id from
 * the same address is another source; the next second starts afresh. */
static void test_peers_beacon_rate_limit(void **state)
{
    pair *p = *state;
    confab_node *n = p->a;
    struct sockaddr_in src;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 47001, &src), 0);
    uint8_t id1[WIRE_NODE_ID_BYTES] = {1, 2, 3, 4};
    uint8_t id2[WIRE_NODE_ID_BYTES] = {9, 8, 7, 6};
    for (unsigned i = 0; i < NODE_RATE_BEACONS; i++)
        assert_true(node_beacon_rate_ok(n, &src, id1, 1000 + i));
    assert_false(node_beacon_rate_ok(n, &src, id1, 1500));
    assert_false(node_beacon_rate_ok(n, &src, id1, 1999));
    assert_true(node_beacon_rate_ok(n, &src, id2, 1999));
    /* A new second. */
    for (unsigned i = 0; i < NODE_RATE_BEACONS; i++)
        assert_true(node_beacon_rate_ok(n, &src, id1, 2000 + i));
    assert_false(node_beacon_rate_ok(n, &src, id1, 2100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peers_tie_break_both_ends_agree,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_redial_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peers_beacon_rate_limit, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("peers", tests, NULL, NULL);
}
