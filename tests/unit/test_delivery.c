/* test_delivery.c: the receiving side of the reliable unicast stream
 * (node/messaging/delivery.c, docs/PROTOCOL.md section 12) on a bare peer
 * of a zeroed, never started confab_node: which sequence numbers are
 * delivered, which are dropped as repeats or as after a gap, place-holders,
 * and the check by id after the sender's stream restarted. */
#include "crypto/sec.h"
#include "node/node.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct bare {
    confab_node *n;
    node_peer p;
    node_conn c;
} bare;

static int setup(void **state)
{
    bare *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->n = calloc(1, sizeof *b->n);
    assert_non_null(b->n);
    b->n->cfg.inbox_max = 16;
    assert_int_equal(node_inbox_init(b->n), 0);
    b->p.id[0] = 0x42;
    b->c.node = b->n;
    b->c.peer = &b->p;
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    bare *b = *state;
    node_inbox_free(b->n);
    free(b->n);
    free(b);
    return 0;
}

static wire_data unicast(uint64_t seq, uint8_t tag, bool skip)
{
    wire_data d;
    memset(&d, 0, sizeof d);
    d.kind = WIRE_K_UNICAST;
    d.seq = seq;
    d.skip = skip;
    d.id[0] = tag;
    return d;
}

/* Delivers d if the stream takes it; returns what accept said. */
static int offer(bare *b, uint64_t seq, uint8_t tag, bool skip)
{
    wire_data d = unicast(seq, tag, skip);
    int rc = node_delivery_accept(&b->c, &d);
    if (rc == 1)
        node_delivery_delivered(&b->c, &d);
    return rc;
}

/* In order: each next seq once. A repeat and a seq after a gap are
 * dropped, counted, and make the next ACK go out again; a place-holder
 * (an expired message) takes its seq without being delivered. */
static void test_delivery_seq_arithmetic(void **state)
{
    bare *b = *state;
    confab_stats *st = &b->n->stats;
    assert_int_equal(offer(b, 1, 1, false), 1);
    assert_int_equal(b->p.rx_next, 2);
    assert_true(b->p.rx_dirty);
    assert_int_equal(offer(b, 1, 1, false), 0); /* a repeat */
    assert_int_equal(st->duplicates_dropped, 1);
    assert_int_equal(b->p.rx_acked, UINT64_MAX);
    b->p.rx_acked = 1;
    assert_int_equal(offer(b, 3, 3, false), 0); /* 2 is missing */
    assert_int_equal(st->out_of_order_dropped, 1);
    assert_int_equal(b->p.rx_acked, UINT64_MAX);
    assert_int_equal(b->p.rx_next, 2);
    assert_int_equal(offer(b, 2, 2, true), 0); /* a place-holder */
    assert_int_equal(b->p.rx_next, 3);
    assert_int_equal(offer(b, 3, 3, false), 1);
    assert_int_equal(b->p.rx_next, 4);
    assert_int_equal(st->duplicates_dropped, 1);
    assert_int_equal(st->out_of_order_dropped, 1);
}

/* After the sender's stream restarted, a unicast that is still unread in
 * the inbox from the old stream takes its seq and is not delivered twice.
 * Each unicast checked counts down what is left to check; the check ends
 * at once when nothing of the old stream from that sender is unread. */
static void test_delivery_restart_checks_the_inbox(void **state)
{
    bare *b = *state;
    confab_message m;
    memset(&m, 0, sizeof m);
    m.id[0] = 7;
    m.from = b->p.id;
    m.from_name = "p";
    m.kind = CONFAB_UNICAST;
    assert_int_equal(node_inbox_put(b->n, &m, 1), 0);
    b->p.rx_next = 1; /* the new stream */
    b->p.rx_check_left = 5;
    b->p.rx_check_below = node_inbox_serial(b->n);
    assert_int_equal(offer(b, 1, 7, false), 0); /* unread already */
    assert_int_equal(b->n->stats.duplicates_dropped, 1);
    assert_int_equal(b->p.rx_next, 2);
    assert_int_equal(b->p.rx_check_left, 4);
    assert_int_equal(offer(b, 2, 8, false), 1); /* new: delivered */
    assert_int_equal(b->p.rx_next, 3);
    assert_int_equal(b->p.rx_check_left, 3); /* 7 still unread: go on */
    node_inbox_mark_read(b->n, m.id);
    assert_int_equal(offer(b, 3, 9, false), 1);
    assert_int_equal(b->p.rx_check_left, 0); /* nothing old unread: done */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery_seq_arithmetic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delivery_restart_checks_the_inbox,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
