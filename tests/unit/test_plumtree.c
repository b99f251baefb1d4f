/* test_plumtree.c: Plumtree (node/peers/plumtree.c) alone and as 500
 * state machines over a random connected graph, exchanging their actions
 * through an in-memory network with per-link latencies and a seeded random
 * source: every broadcast reaches every node; once the tree has formed a
 * node receives each broadcast about once (<= 1.1 copies on average, the
 * paper's figure); the tree repairs itself after tree links are cut. The
 * receiver's bounds of docs/PROTOCOL.md 15.3 are checked one by one. */
#include "node/peers/plumtree.h"
#include "ovl_sim.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define STEP_MS 5u
#define RING    8u /* latency is 1 to 5 steps: fewer than RING */

typedef struct pmsg {
    uint32_t from, to;
    node_pt_msg m;
} pmsg;

typedef struct bucket {
    pmsg *v;
    size_t n, cap;
} bucket;

typedef struct psim {
    uint32_t n;
    node_pt *p;
    node_pt_mid *seen;
    bucket ring[RING];
    uint64_t step;
    uint32_t *copies;    /* GOSSIP received per node, this broadcast */
    uint32_t *delivered; /* nodes that delivered broadcast k */
    uint32_t nbcast;
    uint64_t msgs, ihaves;
} psim;

static uint32_t latency(uint32_t a, uint32_t b)
{
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    uint32_t h = lo * 2654435761u ^ hi * 40503u;
    return 1u + (h >> 7) % 5u;
}

static void sendto(psim *s, uint32_t from, uint32_t to, const node_pt_msg *m)
{
    bucket *b = &s->ring[(s->step + latency(from, to)) % RING];
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        assert_non_null(b->v);
    }
    b->v[b->n++] = (pmsg){from, to, *m};
    s->msgs++;
    if (m->type == NODE_PT_IHAVE)
        s->ihaves++;
}

static void apply(psim *s, uint32_t i, const node_pt_out *out)
{
    assert_int_equal(out->dropped, 0);
    for (size_t k = 0; k < out->n; k++) {
        const node_pt_action *a = &out->a[k];
        if (a->kind == NODE_PT_A_DELIVER) {
            uint32_t b;
            memcpy(&b, a->msg.id.b, sizeof b);
            assert_true(b < s->nbcast);
            s->delivered[b]++;
            continue;
        }
        sendto(s, i, sim_index(&a->peer), &a->msg);
    }
}

static void step(psim *s)
{
    static node_pt_action acts[NODE_PT_OUT_MAX_PER_CALL];
    s->step++;
    uint64_t now = s->step * STEP_MS;
    bucket *b = &s->ring[s->step % RING];
    for (size_t k = 0; k < b->n; k++) {
        pmsg *e = &b->v[k];
        node_pt_out out = {acts, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
        node_ovl_id from = sim_id(e->from);
        if (e->m.type == NODE_PT_GOSSIP)
            s->copies[e->to]++;
        node_pt_recv(&s->p[e->to], &from, &e->m, now, &out);
        apply(s, e->to, &out);
    }
    b->n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        node_pt_out out = {acts, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
        node_pt_tick(&s->p[i], now, &out);
        apply(s, i, &out);
    }
}

static void link2(psim *s, uint32_t a, uint32_t b)
{
    node_ovl_id ia = sim_id(a), ib = sim_id(b);
    if (a == b || s->p[a].npeers >= 8 || s->p[b].npeers >= 8)
        return;
    for (unsigned k = 0; k < s->p[a].npeers; k++)
        if (node_ovl_id_eq(&s->p[a].peers[k].id, &ib))
            return;
    assert_int_equal(node_pt_neighbor_up(&s->p[a], &ib), 0);
    assert_int_equal(node_pt_neighbor_up(&s->p[b], &ia), 0);
}

/* A ring (connected) plus two random chords per node: degree about 6,
 * like HyParView's active views. */
static void sim_init(psim *s, uint32_t n, uint64_t seed, uint32_t maxb)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->p = calloc(n, sizeof *s->p);
    node_pt_config cfg;
    memset(&cfg, 0, sizeof cfg);
    size_t per = node_pt_seen_bytes(&cfg) / sizeof(node_pt_mid);
    s->seen = calloc(n * per, sizeof *s->seen);
    s->copies = calloc(n, sizeof *s->copies);
    s->delivered = calloc(maxb, sizeof *s->delivered);
    assert_non_null(s->p);
    assert_non_null(s->seen);
    assert_non_null(s->copies);
    assert_non_null(s->delivered);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(node_pt_init(&s->p[i], &cfg, s->seen + i * per), 0);
    for (uint32_t i = 0; i < n; i++)
        link2(s, i, (i + 1) % n);
    for (uint32_t i = 0; i < n; i++)
        for (unsigned c = 0; c < 2; c++)
            link2(s, i, sim_rand(&seed) % n);
}

static void sim_free(psim *s)
{
    for (unsigned r = 0; r < RING; r++)
        free(s->ring[r].v);
    free(s->p);
    free(s->seen);
    free(s->copies);
    free(s->delivered);
}

/* Broadcasts message number nbcast from src and runs ms milliseconds
 * (2 s covers one missing-message timer and its GRAFT). Returns the mean copies
 * received per other node. */
static double broadcast_for(psim *s, uint32_t src, unsigned ms)
{
    static node_pt_action acts[NODE_PT_OUT_MAX_PER_CALL];
    node_pt_mid id;
    memset(&id, 0, sizeof id);
    uint32_t b = s->nbcast++;
    memcpy(id.b, &b, sizeof b);
    memset(s->copies, 0, s->n * sizeof *s->copies);
    node_pt_out out = {acts, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
    node_pt_broadcast(&s->p[src], &id, &out);
    s->delivered[b]++; /* the source delivers its own */
    apply(s, src, &out);
    for (unsigned k = 0; k < ms / STEP_MS; k++)
        step(s);
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->n; i++)
        total += s->copies[i];
    return (double)total / (double)(s->n - 1);
}

static double broadcast(psim *s, uint32_t src)
{
    return broadcast_for(s, src, 2000);
}

static void test_plumtree_broadcast_tree_forms(void **state)
{
    (void)state;
    psim s;
    uint64_t seed = 7;
    sim_init(&s, 500, seed, 64);
    /* The first broadcast floods every link. */
    double first = broadcast(&s, 0);
    assert_int_equal(s.delivered[0], 500);
    assert_true(first > 2.0);
    for (unsigned k = 0; k < 9; k++) {
        broadcast(&s, sim_rand(&seed) % s.n);
        assert_int_equal(s.delivered[s.nbcast - 1], 500);
    }
    double sum = 0;
    for (unsigned k = 0; k < 10; k++) {
        double c = broadcast(&s, sim_rand(&seed) % s.n);
        assert_int_equal(s.delivered[s.nbcast - 1], 500);
        sum += c;
    }
    print_message("plumtree 500 nodes: first broadcast %.2f copies/node, "
                  "after the tree formed %.3f\n",
                  first, sum / 10);
    assert_true(sum / 10 <= 1.1);
    sim_free(&s);
}

static void test_plumtree_tree_repairs_after_cut(void **state)
{
    (void)state;
    psim s;
    uint64_t seed = 8;
    sim_init(&s, 300, seed, 64);
    for (unsigned k = 0; k < 10; k++)
        broadcast(&s, sim_rand(&seed) % s.n);
    /* Cut 30 tree links (eager at both ends): the membership would
     * replace them, here they are just gone. */
    unsigned cut = 0;
    for (uint32_t i = 0; i < s.n && cut < 30; i += 7) {
        for (unsigned k = 0; k < s.p[i].npeers; k++) {
            node_ovl_id peer = s.p[i].peers[k].id;
            uint32_t j = sim_index(&peer);
            node_ovl_id me = sim_id(i);
            if (!s.p[i].peers[k].eager || !node_pt_is_eager(&s.p[j], &me))
                continue;
            node_pt_neighbor_down(&s.p[i], &peer);
            node_pt_neighbor_down(&s.p[j], &me);
            cut++;
            break;
        }
    }
    assert_true(cut >= 20);
    uint64_t grafts = 0;
    for (uint32_t i = 0; i < s.n; i++)
        grafts += s.p[i].stats.grafts_sent;
    /* An orphaned subtree inside another is repaired one timer after
     * the other: allow a few. */
    for (unsigned k = 0; k < 5; k++) {
        broadcast_for(&s, sim_rand(&seed) % s.n, 6000);
        assert_int_equal(s.delivered[s.nbcast - 1], 300);
    }
    uint64_t after = 0;
    for (uint32_t i = 0; i < s.n; i++)
        after += s.p[i].stats.grafts_sent;
    assert_true(after > grafts); /* repaired through IHAVE and GRAFT */
    sim_free(&s);
}

static void two(node_pt *p, node_pt_mid *seen, node_ovl_id *peer)
{
    node_pt_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.seen_max = 16;
    assert_int_equal(node_pt_init(p, &cfg, seen), 0);
    *peer = sim_id(1);
    assert_int_equal(node_pt_neighbor_up(p, peer), 0);
}

static void test_plumtree_bounds(void **state)
{
    (void)state;
    static node_pt_action acts[NODE_PT_OUT_MAX_PER_CALL];
    node_pt p;
    node_pt_mid seen[16];
    node_ovl_id peer;
    two(&p, seen, &peer);
    node_pt_mid id;
    memset(&id, 0, sizeof id);
    node_pt_out out = {acts, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
    node_pt_broadcast(&p, &id, &out);
    assert_int_equal(out.n, 1); /* GOSSIP to the eager peer */

    /* A GRAFT flood: a few resends per tick, the rest counted. */
    node_pt_msg g;
    memset(&g, 0, sizeof g);
    g.type = NODE_PT_GRAFT;
    g.has_id = 1;
    g.id = id;
    out.n = 0;
    for (unsigned k = 0; k < 100; k++)
        node_pt_recv(&p, &peer, &g, 0, &out);
    assert_int_equal(out.n, NODE_PT_GRAFTS_PER_TICK);
    assert_int_equal(p.stats.grafts_limited, 100 - NODE_PT_GRAFTS_PER_TICK);

    /* A non-neighbour is not heard. */
    node_ovl_id stranger = sim_id(9);
    out.n = 0;
    node_pt_recv(&p, &stranger, &g, 0, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(p.stats.refused, 1);

    /* Announcements of more ids than we track: the table stays bounded. */
    node_pt_msg ih;
    memset(&ih, 0, sizeof ih);
    ih.type = NODE_PT_IHAVE;
    ih.n = NODE_PT_IHAVE_MAX;
    for (unsigned r = 0; r < 4; r++) {
        for (unsigned k = 0; k < ih.n; k++) {
            memset(&ih.ids[k], 0, sizeof ih.ids[k]);
            ih.ids[k].b[0] = (uint8_t)(r + 1);
            ih.ids[k].b[1] = (uint8_t)k;
        }
        node_pt_recv(&p, &peer, &ih, 0, &out);
    }
    assert_int_equal(p.nmissing, NODE_PT_MISSING_CAP);
    assert_int_equal(p.stats.missing_full,
                     4 * NODE_PT_IHAVE_MAX - NODE_PT_MISSING_CAP);
    ih.n = NODE_PT_IHAVE_MAX + 1;
    node_pt_recv(&p, &peer, &ih, 0, &out);
    assert_int_equal(p.stats.refused, 2);

    /* The timers graft the announcer once per missing id, then give up
     * when no other announcer is left. */
    out.n = 0;
    node_pt_tick(&p, 1000, &out);
    assert_int_equal(out.dropped, 0);
    assert_int_equal(out.n, NODE_PT_MISSING_CAP);
    out.n = 0;
    node_pt_tick(&p, 1500, &out);
    assert_int_equal(out.n, 0);
    assert_int_equal(p.nmissing, 0);

    /* A PRUNE flood only moves the peer to the lazy set. */
    node_pt_msg pr;
    memset(&pr, 0, sizeof pr);
    pr.type = NODE_PT_PRUNE;
    for (unsigned k = 0; k < 100; k++)
        node_pt_recv(&p, &peer, &pr, 0, &out);
    assert_false(node_pt_is_eager(&p, &peer));
    /* Neighbours are bounded. */
    for (uint32_t k = 2; k < 2 + NODE_PT_PEER_CAP - 1; k++) {
        node_ovl_id n = sim_id(k);
        assert_int_equal(node_pt_neighbor_up(&p, &n), 0);
    }
    node_ovl_id extra = sim_id(1000);
    assert_int_equal(node_pt_neighbor_up(&p, &extra), -ENOSPC);
}

/* A GOSSIP from a member that holds us as its neighbour while we do not
 * (the views disagree for a moment): delivered and passed on to our own
 * neighbours, a repeat neither delivered nor PRUNEd, no eager bit
 * changed; any other message from it is still refused. */
static void test_plumtree_stray_gossip_taken(void **state)
{
    (void)state;
    static node_pt_action acts[NODE_PT_OUT_MAX_PER_CALL];
    node_pt p;
    node_pt_mid seen[16];
    node_ovl_id peer;
    two(&p, seen, &peer);
    node_ovl_id stray = sim_id(7);
    node_pt_msg g;
    memset(&g, 0, sizeof g);
    g.type = NODE_PT_GOSSIP;
    g.id.b[0] = 42;
    g.round = 2;
    node_pt_out out = {acts, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
    node_pt_recv(&p, &stray, &g, 0, &out);
    assert_int_equal(out.n, 2);
    assert_int_equal(acts[0].kind, NODE_PT_A_DELIVER);
    assert_int_equal(acts[1].kind, NODE_PT_A_SEND);
    assert_int_equal(acts[1].msg.type, NODE_PT_GOSSIP);
    assert_true(node_ovl_id_eq(&acts[1].peer, &peer));
    assert_int_equal(acts[1].msg.round, 3);
    assert_int_equal(p.stats.stray_in, 1);
    assert_false(node_pt_is_neighbor(&p, &stray));
    out.n = 0;
    node_pt_recv(&p, &stray, &g, 0, &out); /* a repeat: nothing */
    assert_int_equal(out.n, 0);
    assert_int_equal(p.stats.dup_in, 1);
    node_pt_msg prune;
    memset(&prune, 0, sizeof prune);
    prune.type = NODE_PT_PRUNE;
    node_pt_recv(&p, &stray, &prune, 0, &out);
    assert_int_equal(p.stats.refused, 1);
    assert_true(node_pt_is_eager(&p, &peer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plumtree_broadcast_tree_forms),
        cmocka_unit_test(test_plumtree_tree_repairs_after_cut),
        cmocka_unit_test(test_plumtree_bounds),
        cmocka_unit_test(test_plumtree_stray_gossip_taken),
    };
    return cmocka_run_group_tests_name("plumtree", tests, NULL, NULL);
}
