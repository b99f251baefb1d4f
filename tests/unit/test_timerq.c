/* test_timerq.c: node/base/timerq.c, the deadlines' min-heap (#18). */
#include "node/base/timerq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N 1000

static uint64_t rnd_state = 0x12345678u;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Takes every timer out, earliest first, checking the order. */
static size_t drain_in_order(node_timerq *q)
{
    size_t n = 0;
    node_timer *prev = NULL, *t;
    while ((t = node_timerq_first(q)) != NULL) {
        if (prev != NULL)
            assert_true(prev->due < t->due ||
                        (prev->due == t->due && prev->order < t->order));
        node_timerq_disarm(q, t);
        assert_false(node_timer_armed(t));
        prev = t;
        n++;
    }
    return n;
}

static void test_timerq_earliest_first(void **state)
{
    (void)state;
    static node_timer t[N];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], rnd() % 100), 0);
    assert_int_equal(node_timerq_len(&q), N);
    assert_int_equal(drain_in_order(&q), N);
    assert_null(node_timerq_first(&q));
    node_timerq_free(&q);
}

static void test_timerq_ties_in_arming_order(void **state)
{
    (void)state;
    node_timer t[8];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], 5), 0);
    for (size_t i = 0; i < 8; i++) {
        assert_ptr_equal(node_timerq_first(&q), &t[i]);
        node_timerq_disarm(&q, &t[i]);
    }
    node_timerq_free(&q);
}

/* Disarming from anywhere and re-arming keep the heap in order: checked
 * against the earliest found by a walk after every step. */
static void test_timerq_disarm_and_rearm_anywhere(void **state)
{
    (void)state;
    static node_timer t[N];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], rnd() % 10000), 0);
    for (int step = 0; step < 20000; step++) {
        node_timer *x = &t[rnd() % N];
        switch (rnd() % 3) {
        case 0:
            node_timerq_disarm(&q, x);
            node_timerq_disarm(&q, x); /* twice: nothing */
            break;
        default:
            assert_int_equal(node_timerq_arm(&q, x, rnd() % 10000), 0);
            break;
        }
        const node_timer *best = NULL;
        size_t armed = 0;
        for (size_t i = 0; i < N; i++) {
            if (!node_timer_armed(&t[i]))
                continue;
            armed++;
            if (best == NULL || t[i].due < best->due ||
                (t[i].due == best->due && t[i].order < best->order))
                best = &t[i];
        }
        assert_int_equal(node_timerq_len(&q), armed);
        assert_ptr_equal(node_timerq_first(&q), best);
    }
    drain_in_order(&q);
    node_timerq_free(&q);
}

static void test_timerq_free_disarms(void **state)
{
    (void)state;
    node_timer t[3];
    node_timerq q;
    memset(&q, 0, sizeof q);
    memset(t, 0, sizeof t);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(node_timerq_arm(&q, &t[i], i), 0);
    node_timerq_free(&q);
    for (size_t i = 0; i < 3; i++)
        assert_false(node_timer_armed(&t[i]));
    assert_null(node_timerq_first(&q));
    /* Usable again after a free. */
    assert_int_equal(node_timerq_arm(&q, &t[0], 1), 0);
    assert_ptr_equal(node_timerq_first(&q), &t[0]);
    node_timerq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timerq_earliest_first),
        cmocka_unit_test(test_timerq_ties_in_arming_order),
        cmocka_unit_test(test_timerq_disarm_and_rearm_anywhere),
        cmocka_unit_test(test_timerq_free_disarms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
