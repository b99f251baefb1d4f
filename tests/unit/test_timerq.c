/* test_timerq.c: node/base/timerq.c, the deadlines' timing wheel (#18). */
#include "node/base/timerq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N    1000
#define SLOT ((uint64_t)1 << NODE_TIMERQ_SHIFT)
#define TURN (SLOT * NODE_TIMERQ_SLOTS)

static uint64_t rnd_state = 0x12345678u;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Pops everything due at now; checks each was due and armed, and that
 * what stays is not due. Returns how many came out. */
static size_t pop_all(node_timerq *q, node_timer *t, size_t n, uint64_t now)
{
    size_t k = 0;
    node_timer *x;
    while ((x = node_timerq_pop_due(q, now)) != NULL) {
        assert_true(x >= t && x < t + n);
        assert_true(x->due <= now);
        assert_false(node_timer_armed(x));
        k++;
    }
    for (size_t i = 0; i < n; i++)
        if (node_timer_armed(&t[i]))
            assert_true(t[i].due > now);
    return k;
}

/* Deadlines over three turns of the wheel, the clock moving in steps of
 * random size: every timer comes out once, at the first step at or after
 * its deadline, never before. */
static void test_timerq_due_ones_and_only_them(void **state)
{
    (void)state;
    static node_timer t[N];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    uint64_t base = 1700000000000000u; /* a wall clock in us */
    for (size_t i = 0; i < N; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], base + rnd() % (3 * TURN)),
                         0);
    assert_int_equal(node_timerq_len(&q), N);
    size_t out = 0;
    for (uint64_t now = base; now < base + 4 * TURN; now += rnd() % (2 * SLOT))
        out += pop_all(&q, t, N, now);
    out += pop_all(&q, t, N, base + 4 * TURN);
    assert_int_equal(out, N);
    assert_int_equal(node_timerq_len(&q), 0);
    node_timerq_free(&q);
}

/* Deadlines spaced by more than a slot come out in their order, whatever
 * the order they were armed in; one slot's in arming order. */
static void test_timerq_order(void **state)
{
    (void)state;
    node_timer t[4];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    uint64_t base = 5 * TURN;
    assert_int_equal(node_timerq_arm(&q, &t[2], base + 3 * SLOT), 0);
    assert_int_equal(node_timerq_arm(&q, &t[0], base + 1 * SLOT), 0);
    assert_int_equal(node_timerq_arm(&q, &t[1], base + 2 * SLOT), 0);
    assert_int_equal(node_timerq_arm(&q, &t[3], base + 2 * TURN), 0);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(node_timerq_pop_due(&q, base + 10 * SLOT), &t[i]);
    assert_null(node_timerq_pop_due(&q, base + 10 * SLOT));
    /* Same slot: arming order. */
    assert_int_equal(node_timerq_arm(&q, &t[1], base + 20 * SLOT + 5), 0);
    assert_int_equal(node_timerq_arm(&q, &t[0], base + 20 * SLOT + 9), 0);
    assert_ptr_equal(node_timerq_pop_due(&q, base + 21 * SLOT), &t[1]);
    assert_ptr_equal(node_timerq_pop_due(&q, base + 21 * SLOT), &t[0]);
    assert_ptr_equal(node_timerq_pop_due(&q, base + 2 * TURN), &t[3]);
    node_timerq_free(&q);
}

/* A long deadline armed first must not hide a short one armed after it
 * (the cursor moves back to the earliest slot). */
static void test_timerq_short_after_long(void **state)
{
    (void)state;
    node_timer t[2];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    uint64_t now = 7 * TURN + 123;
    assert_int_equal(node_timerq_arm(&q, &t[0], now + 1000 * TURN), 0);
    assert_int_equal(node_timerq_arm(&q, &t[1], now + 3 * SLOT), 0);
    assert_null(node_timerq_pop_due(&q, now));
    assert_null(node_timerq_pop_due(&q, now + 2 * SLOT));
    assert_ptr_equal(node_timerq_pop_due(&q, now + 3 * SLOT), &t[1]);
    assert_null(node_timerq_pop_due(&q, now + 3 * SLOT));
    node_timerq_free(&q);
    assert_false(node_timer_armed(&t[0]));
}

/* Disarming from anywhere and re-arming: the due ones are still exactly
 * those found by a walk. */
static void test_timerq_disarm_and_rearm_anywhere(void **state)
{
    (void)state;
    static node_timer t[N];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    uint64_t now = 9 * TURN;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], now + rnd() % TURN), 0);
    for (int step = 0; step < 5000; step++) {
        node_timer *x = &t[rnd() % N];
        if (rnd() % 3 == 0) {
            node_timerq_disarm(&q, x);
            node_timerq_disarm(&q, x); /* twice: nothing */
        } else {
            assert_int_equal(node_timerq_arm(&q, x, now + rnd() % TURN), 0);
        }
        if (step % 50 == 0) {
            now += rnd() % (4 * SLOT);
            size_t due = 0, armed = 0;
            for (size_t i = 0; i < N; i++)
                if (node_timer_armed(&t[i])) {
                    armed++;
                    due += t[i].due <= now;
                }
            assert_int_equal(node_timerq_len(&q), armed);
            assert_int_equal(pop_all(&q, t, N, now), due);
        }
    }
    node_timerq_free(&q);
    for (size_t i = 0; i < N; i++)
        assert_false(node_timer_armed(&t[i]));
}

/* The clock going back: nothing is lost. */
static void test_timerq_clock_back(void **state)
{
    (void)state;
    node_timer t[1];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    uint64_t now = 11 * TURN;
    assert_int_equal(node_timerq_arm(&q, &t[0], now + 5 * SLOT), 0);
    assert_null(node_timerq_pop_due(&q, now + 4 * SLOT));
    assert_null(node_timerq_pop_due(&q, now - 100 * SLOT));
    assert_ptr_equal(node_timerq_pop_due(&q, now + 5 * SLOT), &t[0]);
    node_timerq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timerq_due_ones_and_only_them),
        cmocka_unit_test(test_timerq_order),
        cmocka_unit_test(test_timerq_short_after_long),
        cmocka_unit_test(test_timerq_disarm_and_rearm_anywhere),
        cmocka_unit_test(test_timerq_clock_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
