/* test_swim.c: SWIM with Lifeguard (node/peers/swim.c) alone and as 100
 * state machines exchanging their actions through an in-memory network
 * with latencies, loss and a seeded random source: with one node's
 * messages dropped 10% for two minutes no live node is ever declared
 * down, a dead node is declared down by every other within its bound,
 * and a forged suspicion of a live node is refuted. */
#include "node/peers/swim.h"
#include "ovl_sim.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define STEP_MS 10u
#define RING    8u

typedef struct smsg {
    uint32_t from, to;
    node_swim_msg m;
} smsg;

typedef struct bucket {
    smsg *v;
    size_t n, cap;
} bucket;

typedef struct ssim {
    uint32_t n;
    node_swim *s;
    node_swim_member *mem;
    uint64_t *seeds;
    uint8_t *alive;
    bucket ring[RING];
    uint64_t step, net_seed;
    uint32_t lossy;       /* this node's messages drop 10%; n: none */
    uint64_t wrong_downs; /* DOWN for a live node */
    uint32_t watch;       /* a node whose DOWNs are timed */
    uint64_t *down_at;    /* per observer: when it declared watch down */
    uint64_t suspicions_of_lossy;
} ssim;

static void sendto(ssim *s, uint32_t from, uint32_t to, const node_swim_msg *m)
{
    if ((from == s->lossy || to == s->lossy) &&
        sim_rand(&s->net_seed) % 10 == 0)
        return;
    uint32_t lat = 1u + sim_rand(&s->net_seed) % 3u;
    bucket *b = &s->ring[(s->step + lat) % RING];
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        assert_non_null(b->v);
    }
    b->v[b->n++] = (smsg){from, to, *m};
}

static void apply(ssim *s, uint32_t i, const node_swim_out *out)
{
    assert_int_equal(out->dropped, 0);
    for (size_t k = 0; k < out->n; k++) {
        const node_swim_action *a = &out->a[k];
        uint32_t p = sim_index(&a->peer);
        if (a->kind == NODE_SWIM_A_SEND) {
            sendto(s, i, p, &a->msg);
        } else if (a->kind == NODE_SWIM_A_DOWN) {
            if (s->alive[p])
                s->wrong_downs++;
            if (p == s->watch && s->down_at[i] == 0)
                s->down_at[i] = s->step * STEP_MS;
        } else if (a->kind == NODE_SWIM_A_SUSPECT && p == s->lossy) {
            s->suspicions_of_lossy++;
        }
    }
}

static void step(ssim *s)
{
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    s->step++;
    uint64_t now = s->step * STEP_MS;
    bucket *b = &s->ring[s->step % RING];
    for (size_t k = 0; k < b->n; k++) {
        smsg *e = &b->v[k];
        if (!s->alive[e->to])
            continue;
        node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
        node_ovl_id from = sim_id(e->from);
        node_swim_recv(&s->s[e->to], &from, &e->m, now, &out);
        apply(s, e->to, &out);
    }
    b->n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->alive[i])
            continue;
        node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
        node_swim_tick(&s->s[i], now, &out);
        apply(s, i, &out);
    }
}

static void sim_init(ssim *s, uint32_t n, uint64_t seed)
{
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    memset(s, 0, sizeof *s);
    s->n = n;
    s->lossy = n;
    s->watch = n;
    s->net_seed = seed;
    s->s = calloc(n, sizeof *s->s);
    s->mem = calloc((size_t)n * n, sizeof *s->mem);
    s->seeds = calloc(n, sizeof *s->seeds);
    s->alive = calloc(n, 1);
    s->down_at = calloc(n, sizeof *s->down_at);
    assert_non_null(s->s);
    assert_non_null(s->mem);
    assert_non_null(s->seeds);
    assert_non_null(s->alive);
    assert_non_null(s->down_at);
    node_swim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (uint32_t i = 0; i < n; i++) {
        s->seeds[i] = seed * 7919u + i;
        node_ovl_id id = sim_id(i);
        node_ovl_rng rng = {sim_rand, &s->seeds[i]};
        assert_int_equal(node_swim_init(&s->s[i], &id, &cfg, rng,
                                        s->mem + (size_t)i * n, n, 0),
                         0);
        s->alive[i] = 1;
        for (uint32_t j = 0; j < n; j++) {
            node_ovl_id o = sim_id(j);
            node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
            assert_int_equal(node_swim_add(&s->s[i], &o, &out), 0);
        }
    }
}

static void sim_free(ssim *s)
{
    for (unsigned r = 0; r < RING; r++)
        free(s->ring[r].v);
    free(s->s);
    free(s->mem);
    free(s->seeds);
    free(s->alive);
    free(s->down_at);
}

static void run_ms(ssim *s, uint64_t ms)
{
    for (uint64_t k = 0; k < ms / STEP_MS; k++)
        step(s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_swim_lossy_node_not_downed_dead_node_downed(void **state)
{
    (void)state;
    ssim s;
    sim_init(&s, 100, 11);
    s.lossy = 7;
    run_ms(&s, 120000);
    assert_int_equal(s.wrong_downs, 0);
    uint32_t lhm7 = s.s[7].lhm;

    /* Node 13 dies. Every other declares it down within the bound: the
     * suspicion timeout with no confirmation (the longest), plus a round
     * of probes and the dissemination. */
    s.watch = 13;
    s.alive[13] = 0;
    uint64_t died = s.step * STEP_MS;
    uint64_t bound = node_swim_suspicion_ms(&s.s[0], 0) + 12000;
    run_ms(&s, bound);
    assert_int_equal(s.wrong_downs, 0);
    uint64_t t[100];
    uint32_t nt = 0;
    for (uint32_t i = 0; i < s.n; i++) {
        if (!s.alive[i])
            continue;
        assert_true(s.down_at[i] != 0);
        t[nt++] = s.down_at[i] - died;
    }
    qsort(t, nt, sizeof t[0], cmp_u64);
    print_message("swim 100 nodes, node 7 losing 10%%: %llu suspicions of "
                  "it refuted, its LHM %u; dead node declared down after "
                  "%llu ms (median) to %llu ms (last), bound %llu ms\n",
                  (unsigned long long)s.suspicions_of_lossy, lhm7,
                  (unsigned long long)t[nt / 2], (unsigned long long)t[nt - 1],
                  (unsigned long long)bound);
    sim_free(&s);
}

static void test_swim_forged_suspicion_refuted(void **state)
{
    (void)state;
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    ssim s;
    sim_init(&s, 60, 12);
    run_ms(&s, 5000);
    /* Node 59 tells ten nodes that node 5 is suspected, by three
     * made-up confirmers each (forging the dogpile down to its
     * minimum). */
    for (uint32_t v = 10; v < 20; v++) {
        node_swim_msg m;
        memset(&m, 0, sizeof m);
        m.type = NODE_SWIM_ACK;
        m.seq = 0;
        m.n = 3;
        for (unsigned k = 0; k < 3; k++) {
            m.upd[k].id = sim_id(5);
            m.upd[k].state = NODE_SWIM_SUSPECT;
            m.upd[k].inc = 0;
            m.upd[k].from = sim_id(1000 + k);
        }
        node_ovl_id forger = sim_id(59);
        node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
        node_swim_recv(&s.s[v], &forger, &m, s.step * STEP_MS, &out);
        apply(&s, v, &out);
        assert_int_equal(node_swim_get(&s.s[v], &m.upd[0].id)->state,
                         NODE_SWIM_SUSPECT);
    }
    run_ms(&s, 60000);
    assert_int_equal(s.wrong_downs, 0);
    assert_true(s.s[5].inc >= 1);
    node_ovl_id five = sim_id(5);
    for (uint32_t i = 0; i < s.n; i++) {
        if (i == 5)
            continue;
        const node_swim_member *mb = node_swim_get(&s.s[i], &five);
        assert_non_null(mb);
        assert_int_equal(mb->state, NODE_SWIM_ALIVE);
        assert_true(mb->inc >= 1);
    }
    sim_free(&s);
}

static void test_swim_bounds(void **state)
{
    (void)state;
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    node_swim s;
    node_swim_member mem[4];
    uint64_t seed = 5;
    node_ovl_id self = sim_id(0);
    node_ovl_rng rng = {sim_rand, &seed};
    node_swim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(node_swim_init(&s, &self, &cfg, rng, mem, 4, 0), 0);
    node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
    /* Made-up members: the table holds cap, the rest are counted. */
    node_swim_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_SWIM_ACK;
    m.n = NODE_SWIM_PIGGYBACK;
    for (unsigned k = 0; k < m.n; k++) {
        m.upd[k].id = sim_id(100 + k);
        m.upd[k].state = NODE_SWIM_ALIVE;
    }
    node_ovl_id from = sim_id(1);
    node_swim_recv(&s, &from, &m, 0, &out);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.stats.members_full, 2);
    /* Too many updates, a bad state: refused. */
    m.n = NODE_SWIM_PIGGYBACK + 1;
    node_swim_recv(&s, &from, &m, 0, &out);
    assert_int_equal(s.stats.refused, 1);
    m.n = 1;
    m.upd[0].state = 3;
    node_swim_recv(&s, &from, &m, 0, &out);
    assert_int_equal(s.stats.refused, 2);
    /* A PING-REQ flood: a bounded number relayed at once. */
    memset(&m, 0, sizeof m);
    m.type = NODE_SWIM_PING_REQ;
    m.target = sim_id(100);
    out.n = 0;
    for (unsigned k = 0; k < NODE_SWIM_RELAY_CAP + 5; k++) {
        m.seq = k;
        node_swim_recv(&s, &from, &m, 0, &out);
        out.n = 0;
    }
    assert_int_equal(s.nrelay, NODE_SWIM_RELAY_CAP);
    assert_int_equal(s.stats.relays_full, 5);
    /* Each gets a NACK when the target stays silent. */
    node_swim_tick(&s, cfg.timeout_ms ? cfg.timeout_ms : 500, &out);
    assert_int_equal(s.nrelay, 0);
    /* Dogpile: the timeout shrinks from 6 x min to min. */
    uint64_t t0 = node_swim_suspicion_ms(&s, 0);
    uint64_t t3 = node_swim_suspicion_ms(&s, 3);
    assert_int_equal(t0, 6 * t3);
    assert_true(node_swim_suspicion_ms(&s, 1) < t0);
    assert_int_equal(node_swim_suspicion_ms(&s, 9), t3);
    cfg.timeout_ms = 2000;
    assert_int_equal(node_swim_init(&s, &self, &cfg, rng, mem, 4, 0), -EINVAL);
}

/* A PING_REQ relayed for another member while our own probe waits takes
 * a seq of its own: the target's late ACK of our probe (its seq) still
 * counts. It did not: the relay moved the counter the ACK was checked
 * against, and a busy node suspected members that had answered. */
static void test_swim_relay_keeps_probe_seq(void **state)
{
    (void)state;
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    node_swim s;
    node_swim_member mem[4];
    uint64_t seed = 9;
    node_ovl_id self = sim_id(0), t = sim_id(1), other = sim_id(2),
                asker = sim_id(3);
    node_ovl_rng rng = {sim_rand, &seed};
    node_swim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(node_swim_init(&s, &self, &cfg, rng, mem, 4, 0), 0);
    node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
    assert_int_equal(node_swim_add(&s, &t, &out), 0);
    out.n = 0;
    node_swim_tick(&s, 1000, &out); /* the probe of t */
    uint32_t probe = 0;
    for (size_t i = 0; i < out.n; i++)
        if (acts[i].kind == NODE_SWIM_A_SEND &&
            acts[i].msg.type == NODE_SWIM_PING)
            probe = acts[i].msg.seq;
    assert_int_not_equal(probe, 0);
    node_swim_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_SWIM_PING_REQ; /* asker wants other probed */
    m.seq = 77;
    m.target = other;
    out.n = 0;
    node_swim_recv(&s, &asker, &m, 1010, &out);
    assert_int_equal(s.nrelay, 1);
    memset(&m, 0, sizeof m);
    m.type = NODE_SWIM_ACK; /* t answers our probe */
    m.seq = probe;
    node_swim_recv(&s, &t, &m, 1020, &out);
    out.n = 0;
    node_swim_tick(&s, 2100, &out); /* the period ends */
    for (size_t i = 0; i < out.n; i++)
        assert_int_not_equal(acts[i].kind, NODE_SWIM_A_SUSPECT);
    assert_int_equal(s.stats.suspected, 0);
    assert_int_equal(node_swim_get(&s, &t)->state, NODE_SWIM_ALIVE);
}

/* A member known by hearsay only (a beacon, an update) is not probed:
 * in a forming network there may be no route to it yet, and a probe that
 * cannot leave would make it a suspect, then dead. Once it has reached
 * this node (any message from it) it is probed like the others. */
static void test_swim_hearsay_not_probed(void **state)
{
    (void)state;
    static node_swim_action acts[NODE_SWIM_OUT_MAX_PER_CALL];
    node_swim s;
    node_swim_member mem[4];
    uint64_t seed = 11;
    node_ovl_id self = sim_id(0), far = sim_id(1);
    node_ovl_rng rng = {sim_rand, &seed};
    node_swim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(node_swim_init(&s, &self, &cfg, rng, mem, 4, 0), 0);
    node_swim_out out = {acts, 0, NODE_SWIM_OUT_MAX_PER_CALL, 0};
    assert_int_equal(node_swim_learn(&s, &far, &out), 0);
    for (uint64_t t = 0; t <= 60000; t += 100) {
        out.n = 0;
        node_swim_tick(&s, t, &out);
        for (size_t i = 0; i < out.n; i++)
            assert_int_not_equal(acts[i].kind, NODE_SWIM_A_SEND);
    }
    assert_int_equal(s.stats.suspected, 0);
    assert_int_equal(s.stats.declared_down, 0);
    node_swim_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_SWIM_GOSSIP;
    out.n = 0;
    node_swim_recv(&s, &far, &m, 60000, &out);
    bool pinged = false;
    for (uint64_t t = 60100; t <= 63000 && !pinged; t += 100) {
        out.n = 0;
        node_swim_tick(&s, t, &out);
        for (size_t i = 0; i < out.n; i++)
            pinged |= acts[i].kind == NODE_SWIM_A_SEND &&
                      acts[i].msg.type == NODE_SWIM_PING &&
                      node_ovl_id_eq(&acts[i].peer, &far);
    }
    assert_true(pinged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swim_lossy_node_not_downed_dead_node_downed),
        cmocka_unit_test(test_swim_forged_suspicion_refuted),
        cmocka_unit_test(test_swim_bounds),
        cmocka_unit_test(test_swim_relay_keeps_probe_seq),
        cmocka_unit_test(test_swim_hearsay_not_probed),
    };
    return cmocka_run_group_tests_name("swim", tests, NULL, NULL);
}
