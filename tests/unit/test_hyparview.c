/* test_hyparview.c: HyParView (node/peers/hyparview.c) alone and as a
 * thousand state machines exchanging their actions through an in-memory
 * queue with a seeded random source: the views stay within bounds, the
 * overlay is connected, and it stays connected after 30% of the nodes
 * fail at once. The receiver's rules of docs/PROTOCOL.md 15.2 (walks only
 * from active members, list bounds, floods of JOINs) are checked one by
 * one. */
#include "node/peers/hyparview.h"
#include "ovl_sim.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define LINK_FAILED 0 /* a queue entry that reports a failed link */

typedef struct qmsg {
    uint32_t from, to;
    node_hpv_msg m;
} qmsg;

typedef struct hsim {
    uint32_t n;
    node_hpv *h;
    uint8_t *alive;
    uint64_t *seeds;
    qmsg *q;
    size_t head, tail, cap;
    uint64_t now, delivered;
} hsim;

static void enqueue(hsim *s, uint32_t from, uint32_t to, const node_hpv_msg *m)
{
    if (s->tail == s->cap) {
        if (s->head > 0) {
            memmove(s->q, s->q + s->head, (s->tail - s->head) * sizeof *s->q);
            s->tail -= s->head;
            s->head = 0;
        } else {
            s->cap = s->cap ? 2 * s->cap : 1024;
            s->q = realloc(s->q, s->cap * sizeof *s->q);
            assert_non_null(s->q);
        }
    }
    qmsg *e = &s->q[s->tail++];
    e->from = from;
    e->to = to;
    if (m != NULL)
        e->m = *m;
    else
        memset(&e->m, 0, sizeof e->m);
}

static void apply(hsim *s, uint32_t i, const node_hpv_out *out)
{
    assert_int_equal(out->dropped, 0);
    for (size_t k = 0; k < out->n; k++) {
        const node_hpv_action *a = &out->a[k];
        uint32_t to = sim_index(&a->peer);
        assert_true(to < s->n);
        if (a->kind == NODE_HPV_A_DOWN)
            continue;
        if (!s->alive[to]) {
            /* Connecting to a dead node fails: tell the sender. */
            enqueue(s, to, i, NULL);
            continue;
        }
        if (a->kind == NODE_HPV_A_SEND)
            enqueue(s, i, to, &a->msg);
    }
}

static void run(hsim *s)
{
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    while (s->head < s->tail) {
        qmsg e = s->q[s->head++];
        if (!s->alive[e.to])
            continue;
        node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
        node_ovl_id from = sim_id(e.from);
        if (e.m.type == LINK_FAILED) {
            node_hpv_link_failed(&s->h[e.to], &from, s->now, &out);
        } else if (!s->alive[e.from]) {
            continue; /* died with the message in flight */
        } else {
            node_hpv_recv(&s->h[e.to], &from, &e.m, s->now, &out);
            s->delivered++;
        }
        apply(s, e.to, &out);
    }
}

static void sim_init(hsim *s, uint32_t n, uint64_t seed,
                     const node_hpv_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->h = calloc(n, sizeof *s->h);
    s->alive = calloc(n, 1);
    s->seeds = calloc(n, sizeof *s->seeds);
    assert_non_null(s->h);
    assert_non_null(s->alive);
    assert_non_null(s->seeds);
    for (uint32_t i = 0; i < n; i++) {
        s->seeds[i] = seed * 1000003u + i;
        node_ovl_id id = sim_id(i);
        node_ovl_rng rng = {sim_rand, &s->seeds[i]};
        assert_int_equal(node_hpv_init(&s->h[i], &id, cfg, rng, 0), 0);
        s->alive[i] = 1;
    }
}

static void sim_free(hsim *s)
{
    free(s->h);
    free(s->alive);
    free(s->seeds);
    free(s->q);
}

static void join_all(hsim *s, uint64_t *seed)
{
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    for (uint32_t i = 1; i < s->n; i++) {
        uint32_t c = sim_rand(seed) % i;
        node_ovl_id contact = sim_id(c);
        node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
        node_hpv_join(&s->h[i], &contact, &out);
        apply(s, i, &out);
        run(s);
    }
}

static void rounds(hsim *s, unsigned nrounds, uint64_t step_ms)
{
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    for (unsigned r = 0; r < nrounds; r++) {
        s->now += step_ms;
        for (uint32_t i = 0; i < s->n; i++) {
            if (!s->alive[i])
                continue;
            node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
            node_hpv_tick(&s->h[i], s->now, &out);
            apply(s, i, &out);
        }
        run(s);
    }
}

/* Live nodes reachable from the first live one over active links (taken
 * as undirected), and the largest active view. */
static uint32_t reachable(const hsim *s, unsigned *max_active, unsigned *asym)
{
    uint32_t *stack = calloc(s->n, sizeof *stack);
    uint8_t *seen = calloc(s->n, 1);
    assert_non_null(stack);
    assert_non_null(seen);
    *max_active = 0;
    *asym = 0;
    uint32_t start = 0;
    while (start < s->n && !s->alive[start])
        start++;
    /* Undirected: count both directions through an adjacency scan. */
    uint32_t sp = 0, count = 0;
    stack[sp++] = start;
    seen[start] = 1;
    while (sp > 0) {
        uint32_t u = stack[--sp];
        count++;
        for (uint32_t k = 0; k < s->h[u].nactive; k++) {
            uint32_t v = sim_index(&s->h[u].active[k]);
            if (s->alive[v] && !seen[v]) {
                seen[v] = 1;
                stack[sp++] = v;
            }
        }
    }
    for (uint32_t u = 0; u < s->n; u++) {
        if (!s->alive[u])
            continue;
        if (s->h[u].nactive > *max_active)
            *max_active = s->h[u].nactive;
        node_ovl_id uid = sim_id(u);
        for (uint32_t k = 0; k < s->h[u].nactive; k++) {
            uint32_t v = sim_index(&s->h[u].active[k]);
            if (s->alive[v] && !node_hpv_is_active(&s->h[v], &uid))
                (*asym)++;
        }
    }
    free(stack);
    free(seen);
    return count;
}

static uint32_t live_count(const hsim *s)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < s->n; i++)
        c += s->alive[i];
    return c;
}

static void test_hyparview_thousand_connected_after_30pct_fail(void **state)
{
    (void)state;
    node_hpv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.expected_n = 1000;
    cfg.shuffle_ms = 10000;
    hsim s;
    uint64_t seed = 42;
    sim_init(&s, 1000, seed, &cfg);
    assert_int_equal(s.h[0].cfg.active_max, 8);
    assert_int_equal(s.h[0].cfg.passive_max, 48);
    join_all(&s, &seed);
    rounds(&s, 30, 1000); /* three shuffles each */
    unsigned max_active, asym;
    assert_int_equal(reachable(&s, &max_active, &asym), 1000);
    assert_true(max_active <= 8);
    assert_int_equal(asym, 0);
    for (uint32_t i = 0; i < s.n; i++) {
        assert_true(s.h[i].nactive >= 1);
        assert_true(s.h[i].npassive <= 48);
    }

    /* 30% fail at once; their links close. */
    uint32_t killed = 0;
    while (killed < 300) {
        uint32_t k = sim_rand(&seed) % s.n;
        if (s.alive[k]) {
            s.alive[k] = 0;
            killed++;
        }
    }
    for (uint32_t u = 0; u < s.n; u++) {
        if (!s.alive[u])
            continue;
        for (uint32_t k = 0; k < s.h[u].nactive; k++) {
            uint32_t v = sim_index(&s.h[u].active[k]);
            if (!s.alive[v])
                enqueue(&s, v, u, NULL);
        }
    }
    run(&s);
    rounds(&s, 10, 1000);
    assert_int_equal(reachable(&s, &max_active, &asym), live_count(&s));
    assert_true(max_active <= 8);
    assert_int_equal(asym, 0);
    for (uint32_t i = 0; i < s.n; i++)
        if (s.alive[i])
            assert_true(s.h[i].nactive >= 1);
    sim_free(&s);
}

static node_hpv one(uint64_t *seed, unsigned active_max)
{
    node_hpv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.active_max = (uint8_t)active_max;
    node_hpv h;
    node_ovl_id self = sim_id(0);
    node_ovl_rng rng = {sim_rand, seed};
    assert_int_equal(node_hpv_init(&h, &self, &cfg, rng, 0), 0);
    return h;
}

static void test_hyparview_walk_from_non_member_refused(void **state)
{
    (void)state;
    uint64_t seed = 1;
    node_hpv h = one(&seed, 4);
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
    node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_HPV_FORWARD_JOIN;
    m.ttl = 0;
    m.node = sim_id(7);
    node_ovl_id stranger = sim_id(5);
    node_hpv_recv(&h, &stranger, &m, 0, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(h.nactive, 0);
    assert_int_equal(h.stats.refused, 1);
    m.type = NODE_HPV_SHUFFLE;
    node_hpv_recv(&h, &stranger, &m, 0, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(h.stats.refused, 2);
    /* A list longer than the protocol allows, from anyone. */
    m.type = NODE_HPV_SHUFFLE_REPLY;
    m.n = NODE_HPV_LIST_CAP + 1;
    node_hpv_recv(&h, &stranger, &m, 0, &out);
    assert_int_equal(h.npassive, 0);
    assert_int_equal(h.stats.refused, 3);
    /* Unknown type. */
    m.type = 99;
    m.n = 0;
    node_hpv_recv(&h, &stranger, &m, 0, &out);
    assert_int_equal(h.stats.refused, 4);
}

static void test_hyparview_join_flood_bounded(void **state)
{
    (void)state;
    uint64_t seed = 2;
    node_hpv h = one(&seed, 5);
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    for (uint32_t i = 1; i <= 500; i++) {
        node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
        node_ovl_id from = sim_id(i);
        node_hpv_msg m;
        memset(&m, 0, sizeof m);
        m.type = NODE_HPV_JOIN;
        node_hpv_recv(&h, &from, &m, 0, &out);
        assert_int_equal(out.dropped, 0);
        assert_true(h.nactive <= 5);
        assert_true(h.npassive <= 30);
        /* Made-up members in a reply: bounded by the passive view. */
        m.type = NODE_HPV_SHUFFLE_REPLY;
        m.n = NODE_HPV_LIST_CAP;
        for (unsigned k = 0; k < m.n; k++)
            m.list[k] = sim_id(10000 + i * 16 + k);
        out.n = 0;
        node_hpv_recv(&h, &from, &m, 0, &out);
        assert_true(h.npassive <= 30);
    }
    assert_int_equal(h.nactive, 5);
    assert_int_equal(h.npassive, 30);
}

static void test_hyparview_neighbor_priority(void **state)
{
    (void)state;
    uint64_t seed = 3;
    node_hpv h = one(&seed, 2);
    node_hpv_action acts[NODE_HPV_OUT_MAX_PER_CALL];
    node_hpv_out out = {acts, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
    node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_HPV_NEIGHBOR;
    for (uint32_t i = 1; i <= 3; i++) {
        node_ovl_id from = sim_id(i);
        out.n = 0;
        node_hpv_recv(&h, &from, &m, 0, &out);
        /* the last action is the reply */
        assert_int_equal(acts[out.n - 1].msg.type, NODE_HPV_NEIGHBOR_REPLY);
        assert_int_equal(acts[out.n - 1].msg.accept, i <= 2);
    }
    assert_int_equal(h.nactive, 2);
    /* High priority is accepted when full: a random member is told
     * DISCONNECT, closed, and kept passive. */
    m.high = 1;
    node_ovl_id from = sim_id(4);
    out.n = 0;
    node_hpv_recv(&h, &from, &m, 0, &out);
    assert_int_equal(h.nactive, 2);
    assert_true(node_hpv_is_active(&h, &from));
    assert_int_equal(acts[0].kind, NODE_HPV_A_SEND);
    assert_int_equal(acts[0].msg.type, NODE_HPV_DISCONNECT);
    assert_int_equal(acts[1].kind, NODE_HPV_A_DOWN);
    assert_int_equal(h.npassive, 1);
}

static void test_hyparview_config_checked(void **state)
{
    (void)state;
    uint64_t seed = 4;
    node_hpv h;
    node_ovl_id self = sim_id(0);
    node_ovl_rng rng = {sim_rand, &seed};
    node_hpv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.active_max = NODE_HPV_ACTIVE_CAP + 1;
    assert_int_equal(node_hpv_init(&h, &self, &cfg, rng, 0), -EINVAL);
    memset(&cfg, 0, sizeof cfg);
    cfg.arwl = NODE_HPV_MAX_WALK + 1;
    assert_int_equal(node_hpv_init(&h, &self, &cfg, rng, 0), -EINVAL);
    assert_int_equal(node_hpv_active_for(1), 1);
    assert_int_equal(node_hpv_active_for(16), 5);
    assert_int_equal(node_hpv_active_for(100), 7);
    assert_int_equal(node_hpv_active_for(1000), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hyparview_thousand_connected_after_30pct_fail),
        cmocka_unit_test(test_hyparview_walk_from_non_member_refused),
        cmocka_unit_test(test_hyparview_join_flood_bounded),
        cmocka_unit_test(test_hyparview_neighbor_priority),
        cmocka_unit_test(test_hyparview_config_checked),
    };
    return cmocka_run_group_tests_name("hyparview", tests, NULL, NULL);
}
