/* test_inbox.c: the inbox (node/store/inbox.c) on a zeroed, never started
 * confab_node without a store: its bound and what happens at it, the
 * order of reading, the lookups a restarted stream makes (holds), the
 * read budget (fit), and a read mark found at replay. */
#include "crypto/sec.h"
#include "node/node.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const uint8_t FROM_A[CONFAB_ID_BYTES] = {0xa};
static const uint8_t FROM_B[CONFAB_ID_BYTES] = {0xb};

static confab_node *bare(size_t max)
{
    confab_node *n = calloc(1, sizeof *n);
    assert_non_null(n);
    n->cfg.inbox_max = max;
    assert_int_equal(node_inbox_init(n), 0);
    return n;
}

static void done(confab_node *n)
{
    node_inbox_free(n);
    free(n);
}

/* Puts a unicast of len bytes whose id starts with tag. */
static int put(confab_node *n, const uint8_t *from, uint8_t tag, size_t len)
{
    static uint8_t body[64];
    confab_message m;
    memset(&m, 0, sizeof m);
    m.id[0] = tag;
    m.from = from;
    m.from_name = "peer";
    m.kind = CONFAB_UNICAST;
    m.seq = tag;
    m.body = body;
    m.len = len;
    memset(body, tag, sizeof body);
    return node_inbox_put(n, &m, 7);
}

typedef struct got {
    uint8_t tags[8];
    size_t n;
} got;

static void collect(const confab_message *msg, void *user)
{
    got *g = user;
    assert_true(g->n < sizeof g->tags);
    assert_true(msg->len == 0 || msg->body[0] == msg->id[0]);
    g->tags[g->n++] = msg->id[0];
}

/* At inbox_max a message is refused (-ENOSPC) and counted; reading makes
 * room again; messages come out oldest first. */
static void test_inbox_bound_and_order(void **state)
{
    (void)state;
    confab_node *n = bare(3);
    assert_int_equal(put(n, FROM_A, 1, 10), 0);
    assert_int_equal(put(n, FROM_B, 2, 20), 0);
    assert_int_equal(put(n, FROM_A, 3, 30), 0);
    assert_false(node_inbox_has_room(n, 1));
    assert_int_equal(put(n, FROM_A, 4, 1), -ENOSPC);
    assert_int_equal(n->stats.inbox_refused_full, 1);
    assert_int_equal(confab_inbox_count(n), 3);
    assert_int_equal(node_inbox_bytes(n), 60);
    assert_int_equal(node_inbox_serial(n), 3);

    got g = {{0}, 0};
    assert_int_equal(confab_inbox_read(n, 2, collect, &g), 2);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.tags[0], 1);
    assert_int_equal(g.tags[1], 2);
    assert_int_equal(confab_inbox_count(n), 1);
    assert_true(node_inbox_has_room(n, 1));
    assert_int_equal(put(n, FROM_B, 5, 5), 0);
    assert_int_equal(confab_inbox_read(n, 10, collect, &g), 2);
    assert_int_equal(g.tags[2], 3);
    assert_int_equal(g.tags[3], 5);
    assert_int_equal(confab_inbox_count(n), 0);
    done(n);
}

/* holds: 1 when that sender's message with that id is unread (put before
 * serial `below`), 0 when only other messages of that sender are, -1 when
 * none is. */
static void test_inbox_holds(void **state)
{
    (void)state;
    confab_node *n = bare(10);
    assert_int_equal(put(n, FROM_A, 1, 1), 0); /* serial 0 */
    assert_int_equal(put(n, FROM_B, 2, 1), 0); /* serial 1 */
    assert_int_equal(put(n, FROM_A, 3, 1), 0); /* serial 2 */
    uint8_t id[WIRE_ID_BYTES] = {3};
    assert_int_equal(node_inbox_holds(n, FROM_A, id, 3), 1);
    assert_int_equal(node_inbox_holds(n, FROM_A, id, 2), 0); /* 3 is later */
    assert_int_equal(node_inbox_holds(n, FROM_B, id, 3), 0);
    uint8_t other[CONFAB_ID_BYTES] = {0xc};
    assert_int_equal(node_inbox_holds(n, other, id, 3), -1);
    assert_int_equal(node_inbox_holds(n, FROM_A, id, 0), -1);
    /* A read mark found at replay takes it out. */
    node_inbox_mark_read(n, id);
    assert_int_equal(node_inbox_holds(n, FROM_A, id, 3), 0);
    assert_int_equal(confab_inbox_count(n), 2);
    done(n);
}

/* fit: the oldest messages whose bodies fit the budget, at most max, and
 * always at least one. */
static void test_inbox_fit(void **state)
{
    (void)state;
    confab_node *n = bare(10);
    assert_int_equal(node_inbox_fit(n, 10, 100), 0);
    assert_int_equal(put(n, FROM_A, 1, 10), 0);
    assert_int_equal(put(n, FROM_A, 2, 20), 0);
    assert_int_equal(put(n, FROM_A, 3, 30), 0);
    assert_int_equal(node_inbox_fit(n, 10, 1000), 3);
    assert_int_equal(node_inbox_fit(n, 2, 1000), 2);
    assert_int_equal(node_inbox_fit(n, 10, 30), 2);
    assert_int_equal(node_inbox_fit(n, 10, 29), 1);
    assert_int_equal(node_inbox_fit(n, 10, 5), 1); /* one, however large */
    done(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inbox_bound_and_order),
        cmocka_unit_test(test_inbox_holds),
        cmocka_unit_test(test_inbox_fit),
    };
    return cmocka_run_group_tests_name("inbox", tests, NULL, NULL);
}
