/* test_delivery.c: the reliable unicast stream (node/messaging/delivery.c,
 * docs/PROTOCOL.md section 12) on a bare peer of a zeroed, never started
 * confab_node. The receiving side: which sequence numbers are delivered,
 * which are dropped as repeats or as after a gap, place-holders, and the
 * check by id after the sender's stream restarted. The sending side: the
 * outbox numbered from the peer's epoch, a cumulative ACK releasing it,
 * and a new epoch from the peer numbering what is left from 1 again. */
#include "crypto/sec.h"
#include "node/node.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct bare {
    uv_loop_t loop; /* only for the node's clock (node_now_ms) */
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
    assert_int_equal(uv_loop_init(&b->loop), 0);
    b->n->loop = &b->loop;
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
    /* What the tests left queued: the lane first, then the outbox. */
    while (b->p.q_head != NULL) {
        node_out *o = b->p.q_head;
        b->p.q_head = o->next;
        o->in_lane = false;
        node_out_release(o);
    }
    while (b->p.ob_head != NULL) {
        node_out *o = b->p.ob_head;
        b->p.ob_head = o->ob_next;
        o->in_outbox = false;
        node_out_release(o);
    }
    node_inbox_free(b->n);
    assert_int_equal(uv_loop_close(&b->loop), 0);
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

/* ---- the sending side ------------------------------------------------ */

/* Puts a one-byte unicast tagged tag at the end of the peer's outbox, as
 * confab_send does on a running node, not yet numbered (seq 0): the
 * numbers come from the peer's epoch (node_delivery_link_up). */
static node_out *outbox_put(bare *b, uint8_t tag)
{
    node_body *body =
        node_body_new(b->n, WIRE_K_UNICAST, NULL, NULL, &tag, sizeof tag);
    assert_non_null(body);
    body->id[0] = tag;
    node_out *o = node_out_new(body, 0);
    assert_non_null(o);
    node_peer *p = &b->p;
    o->in_outbox = true;
    if (p->ob_tail != NULL)
        p->ob_tail->ob_next = o;
    else
        p->ob_head = o;
    p->ob_tail = o;
    p->ob_count++;
    p->ob_bytes += body->len + NODE_MSG_OVERHEAD;
    b->n->ob_total += body->len + NODE_MSG_OVERHEAD;
    b->n->ob_msgs++;
    return o;
}

static int ack(bare *b, uint64_t seq)
{
    wire_ack a;
    memset(&a, 0, sizeof a);
    a.has_seq = 1;
    a.seq = seq;
    return node_delivery_on_ack(&b->c, &a);
}

/* A link up with the peer's epoch numbers the outbox 1, 2, 3 and puts it
 * in the lane; a cumulative ACK takes out everything up to its seq, one
 * at or below the base changes nothing. */
static void test_delivery_send_seq_and_cumulative_ack(void **state)
{
    bare *b = *state;
    node_peer *p = &b->p;
    node_out *o1 = outbox_put(b, 1), *o2 = outbox_put(b, 2);
    node_out *o3 = outbox_put(b, 3);
    node_delivery_link_up(b->n, p, 5);
    assert_int_equal(p->tx_epoch, 5);
    assert_int_equal(p->ob_base, 0);
    assert_int_equal(o1->seq, 1);
    assert_int_equal(o2->seq, 2);
    assert_int_equal(o3->seq, 3);
    assert_true(o1->in_lane && o2->in_lane && o3->in_lane);
    assert_ptr_equal(p->q_head, o1);
    assert_int_equal(b->n->stats.retransmits, 0); /* never sent before */
    node_delivery_sent(p, o1, 100);
    node_delivery_sent(p, o2, 100);
    node_delivery_sent(p, o3, 100);

    assert_int_equal(ack(b, 2), 0); /* 1 and 2 arrived */
    assert_int_equal(p->ob_base, 2);
    assert_int_equal(p->ob_count, 1);
    assert_ptr_equal(p->ob_head, o3);
    assert_int_equal(b->n->ob_msgs, 1);
    assert_false(o1->in_outbox);    /* still in the lane: freed from there */
    assert_int_equal(ack(b, 2), 0); /* the same again: nothing moves */
    assert_int_equal(p->ob_count, 1);
    assert_int_equal(ack(b, 1), 0); /* a late one below the base */
    assert_int_equal(p->ob_base, 2);
    assert_int_equal(p->ob_count, 1);
    assert_int_equal(b->n->stats.delivery_rebased, 0);

    assert_int_equal(ack(b, 3), 0);
    assert_int_equal(p->ob_base, 3);
    assert_int_equal(p->ob_count, 0);
    assert_null(p->ob_head);
    assert_int_equal(b->n->ob_msgs, 0);
    assert_int_equal(b->n->ob_total, 0);
}

/* The peer comes back with a new epoch (it lost our stream): what it has
 * not acknowledged is numbered from 1 again, and an ACK counts in the new
 * numbers. The same epoch again renumbers nothing. */
static void test_delivery_send_new_epoch_renumbers(void **state)
{
    bare *b = *state;
    node_peer *p = &b->p;
    node_out *o1 = outbox_put(b, 1), *o2 = outbox_put(b, 2);
    node_out *o3 = outbox_put(b, 3);
    node_delivery_link_up(b->n, p, 5);
    node_delivery_sent(p, o1, 100);
    node_delivery_sent(p, o2, 100);
    node_delivery_sent(p, o3, 100);
    assert_int_equal(ack(b, 1), 0);
    assert_int_equal(p->ob_base, 1);
    assert_int_equal(o2->seq, 2);

    node_delivery_link_up(b->n, p, 5); /* the same stream, a new link */
    assert_int_equal(p->ob_base, 1);
    assert_int_equal(o2->seq, 2);
    assert_int_equal(o3->seq, 3);

    node_delivery_link_up(b->n, p, 9); /* a new stream */
    assert_int_equal(p->tx_epoch, 9);
    assert_int_equal(p->ob_base, 0);
    assert_int_equal(o2->seq, 1);
    assert_int_equal(o3->seq, 2);
    assert_int_equal(ack(b, 1), 0); /* 1 of the new numbers: o2 */
    assert_ptr_equal(p->ob_head, o3);
    assert_int_equal(p->ob_base, 1);
    assert_int_equal(p->ob_count, 1);
    assert_int_equal(b->n->stats.delivery_rebased, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery_seq_arithmetic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delivery_restart_checks_the_inbox,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_delivery_send_seq_and_cumulative_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_send_new_epoch_renumbers,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
