/* bench_overlay.c: the overlay state machines together, in memory, at
 * 100, 300 and 1000 nodes (no sockets: node/peers/hyparview.c feeds its
 * active view to node/peers/plumtree.c, as the node will once they are
 * wired in; docs/PROTOCOL.md section 15).
 *
 * Each run: nodes join one every 5 ms through a random earlier node;
 * messages take 5 to 25 ms per link; time advances in 5 ms steps. Printed:
 * simulated time until the active views form one connected overlay, links
 * per node (min/median/max), copies of a broadcast received per node on
 * the first broadcast and once the tree has formed, coverage, the same
 * after 30% of the nodes fail at once (broadcast 10 s later), the state
 * held per node (HyParView + Plumtree with its 1024-id cache + SWIM with a
 * member table of N), and the wall time of the run. Three seeds per size:
 * medians and ranges. Informs, does not gate. */
#include "node/peers/hyparview.h"
#include "node/peers/plumtree.h"
#include "node/peers/swim.h"
#include "../unit/ovl_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEP_MS 5u
#define RING    8u

typedef struct ev {
    uint8_t kind; /* 1 hpv message, 2 pt message, 3 link failed */
    uint32_t from, to;
    node_hpv_msg h;
    node_pt_msg p;
} ev;

typedef struct bucket {
    ev *v;
    size_t n, cap;
} bucket;

typedef struct sim {
    uint32_t n;
    node_hpv *h;
    node_pt *p;
    node_pt_mid *seen;
    uint64_t *seeds;
    uint8_t *alive, *joined;
    uint32_t *copies, delivered;
    bucket ring[RING];
    uint64_t step, net;
} sim;

static ev *slot(sim *s, uint32_t from, uint32_t to)
{
    uint32_t lo = from < to ? from : to, hi = from < to ? to : from;
    uint32_t lat = 1u + ((lo * 2654435761u ^ hi * 40503u) >> 7) % 5u;
    bucket *b = &s->ring[(s->step + lat) % RING];
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1024;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        if (b->v == NULL)
            abort();
    }
    ev *e = &b->v[b->n++];
    e->from = from;
    e->to = to;
    return e;
}

static void hpv_apply(sim *s, uint32_t i, const node_hpv_out *out)
{
    for (size_t k = 0; k < out->n; k++) {
        const node_hpv_action *a = &out->a[k];
        uint32_t to = sim_index(&a->peer);
        if (a->kind == NODE_HPV_A_DOWN) {
            node_pt_neighbor_down(&s->p[i], &a->peer);
            continue;
        }
        if (!s->alive[to]) {
            slot(s, to, i)->kind = 3;
            continue;
        }
        if (a->kind == NODE_HPV_A_UP) {
            (void)node_pt_neighbor_up(&s->p[i], &a->peer);
            continue;
        }
        ev *e = slot(s, i, to);
        e->kind = 1;
        e->h = a->msg;
    }
}

static void pt_apply(sim *s, uint32_t i, const node_pt_out *out)
{
    for (size_t k = 0; k < out->n; k++) {
        const node_pt_action *a = &out->a[k];
        if (a->kind == NODE_PT_A_DELIVER) {
            s->delivered++;
            continue;
        }
        uint32_t to = sim_index(&a->peer);
        if (!s->alive[to])
            continue;
        ev *e = slot(s, i, to);
        e->kind = 2;
        e->p = a->msg;
    }
}

static void step(sim *s)
{
    static node_hpv_action ha[NODE_HPV_OUT_MAX_PER_CALL];
    static node_pt_action pa[NODE_PT_OUT_MAX_PER_CALL];
    s->step++;
    uint64_t now = s->step * STEP_MS;
    bucket *b = &s->ring[s->step % RING];
    for (size_t k = 0; k < b->n; k++) {
        ev *e = &b->v[k];
        if (!s->alive[e->to])
            continue;
        node_ovl_id from = sim_id(e->from);
        node_hpv_out ho = {ha, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
        node_pt_out po = {pa, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
        if (e->kind == 3) {
            node_hpv_link_failed(&s->h[e->to], &from, now, &ho);
        } else if (!s->alive[e->from]) {
            slot(s, e->to, e->from)->kind = 3; /* a reply will fail */
            continue;
        } else if (e->kind == 1) {
            node_hpv_recv(&s->h[e->to], &from, &e->h, now, &ho);
        } else {
            if (e->p.type == NODE_PT_GOSSIP)
                s->copies[e->to]++;
            node_pt_recv(&s->p[e->to], &from, &e->p, now, &po);
        }
        hpv_apply(s, e->to, &ho);
        pt_apply(s, e->to, &po);
    }
    b->n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->alive[i] || !s->joined[i])
            continue;
        node_pt_out po = {pa, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
        node_pt_tick(&s->p[i], now, &po);
        pt_apply(s, i, &po);
        if (s->step % 20 == (i % 20)) { /* every 100 ms, spread */
            node_hpv_out ho = {ha, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
            node_hpv_tick(&s->h[i], now, &ho);
            hpv_apply(s, i, &ho);
        }
    }
}

/* Live nodes reachable from a live node over active links. */
static uint32_t reach(const sim *s)
{
    uint32_t *st = malloc(s->n * sizeof *st), sp = 0, c = 0, start = 0;
    uint8_t *seen = calloc(s->n, 1);
    while (!s->alive[start])
        start++;
    st[sp++] = start;
    seen[start] = 1;
    while (sp > 0) {
        uint32_t u = st[--sp];
        c++;
        for (unsigned k = 0; k < s->h[u].nactive; k++) {
            uint32_t v = sim_index(&s->h[u].active[k]);
            if (s->alive[v] && !seen[v]) {
                seen[v] = 1;
                st[sp++] = v;
            }
        }
    }
    free(st);
    free(seen);
    return c;
}

static uint32_t live(const sim *s)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < s->n; i++)
        c += s->alive[i];
    return c;
}

/* Broadcast from a random live node, run 3 s: copies per receiver. */
static double broadcast(sim *s, uint32_t nb, uint32_t *covered)
{
    static node_pt_action pa[NODE_PT_OUT_MAX_PER_CALL];
    uint32_t src;
    do
        src = sim_rand(&s->net) % s->n;
    while (!s->alive[src]);
    node_pt_mid id;
    memset(&id, 0, sizeof id);
    memcpy(id.b, &nb, sizeof nb);
    memset(s->copies, 0, s->n * sizeof *s->copies);
    s->delivered = 1;
    node_pt_out po = {pa, 0, NODE_PT_OUT_MAX_PER_CALL, 0};
    node_pt_broadcast(&s->p[src], &id, &po);
    pt_apply(s, src, &po);
    for (unsigned k = 0; k < 3000 / STEP_MS; k++)
        step(s);
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->n; i++)
        total += s->copies[i];
    *covered = s->delivered;
    return (double)total / (double)(live(s) - 1);
}

typedef struct result {
    double form_s, first, tree, after_copies, wall_s;
    uint32_t lmin, lmed, lmax, cover, survivors, cover_after;
    size_t mem;
} result;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static result run(uint32_t n, uint64_t seed)
{
    static node_hpv_action ha[NODE_HPV_OUT_MAX_PER_CALL];
    result r;
    memset(&r, 0, sizeof r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sim s;
    memset(&s, 0, sizeof s);
    s.n = n;
    s.net = seed;
    s.h = calloc(n, sizeof *s.h);
    s.p = calloc(n, sizeof *s.p);
    node_pt_config pc;
    memset(&pc, 0, sizeof pc);
    size_t per = node_pt_seen_bytes(&pc) / sizeof(node_pt_mid);
    s.seen = calloc(n * per, sizeof *s.seen);
    s.seeds = calloc(n, sizeof *s.seeds);
    s.alive = calloc(n, 1);
    s.joined = calloc(n, 1);
    s.copies = calloc(n, sizeof *s.copies);
    node_hpv_config hc;
    memset(&hc, 0, sizeof hc);
    hc.expected_n = n;
    for (uint32_t i = 0; i < n; i++) {
        s.seeds[i] = seed * 1000003u + i;
        node_ovl_id id = sim_id(i);
        node_ovl_rng rng = {sim_rand, &s.seeds[i]};
        if (node_hpv_init(&s.h[i], &id, &hc, rng, 0) != 0 ||
            node_pt_init(&s.p[i], &pc, s.seen + i * per) != 0)
            abort();
        s.alive[i] = 1;
    }
    s.joined[0] = 1;
    for (uint32_t i = 1; i < n; i++) {
        node_ovl_id c = sim_id(sim_rand(&s.net) % i);
        node_hpv_out ho = {ha, 0, NODE_HPV_OUT_MAX_PER_CALL, 0};
        node_hpv_join(&s.h[i], &c, &ho);
        s.joined[i] = 1;
        hpv_apply(&s, i, &ho);
        step(&s);
    }
    while (reach(&s) < n && s.step < 600000 / STEP_MS)
        step(&s);
    r.form_s = (double)(s.step * STEP_MS) / 1000.0;
    uint32_t *links = malloc(n * sizeof *links);
    for (uint32_t i = 0; i < n; i++)
        links[i] = s.h[i].nactive;
    qsort(links, n, sizeof *links, cmp_u32);
    r.lmin = links[0];
    r.lmed = links[n / 2];
    r.lmax = links[n - 1];
    free(links);
    uint32_t cov;
    r.first = broadcast(&s, 0, &cov);
    double sum = 0;
    for (uint32_t k = 1; k < 10; k++)
        broadcast(&s, k, &cov);
    for (uint32_t k = 10; k < 15; k++) {
        sum += broadcast(&s, k, &cov);
        r.cover = cov;
    }
    r.tree = sum / 5;
    /* 30% fail at once: their links close. */
    for (uint32_t killed = 0; killed < n * 3 / 10;) {
        uint32_t k = sim_rand(&s.net) % n;
        if (s.alive[k]) {
            s.alive[k] = 0;
            killed++;
        }
    }
    for (uint32_t u = 0; u < n; u++)
        for (unsigned k = 0; s.alive[u] && k < s.h[u].nactive; k++) {
            uint32_t v = sim_index(&s.h[u].active[k]);
            if (!s.alive[v])
                slot(&s, v, u)->kind = 3;
        }
    for (unsigned k = 0; k < 10000 / STEP_MS; k++)
        step(&s);
    r.survivors = live(&s);
    r.after_copies = broadcast(&s, 100, &r.cover_after);
    r.mem = sizeof(node_hpv) + sizeof(node_pt) + per * sizeof(node_pt_mid) +
            sizeof(node_swim) + n * sizeof(node_swim_member);
    for (unsigned k = 0; k < RING; k++)
        free(s.ring[k].v);
    free(s.h);
    free(s.p);
    free(s.seen);
    free(s.seeds);
    free(s.alive);
    free(s.joined);
    free(s.copies);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r.wall_s = (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return r;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define SEEDS 3

static void med(const char *what, double v[SEEDS])
{
    qsort(v, SEEDS, sizeof v[0], cmp_d);
    printf("  %-44s %9.3f  (%.3f .. %.3f)\n", what, v[1], v[0], v[2]);
}

int main(void)
{
    static const uint32_t sizes[] = {100, 300, 1000};
    printf("overlay in memory (HyParView + Plumtree), medians of %d seeds "
           "(range):\n",
           SEEDS);
    for (unsigned z = 0; z < 3; z++) {
        double form[SEEDS], lmin[SEEDS], lmed[SEEDS], lmax[SEEDS];
        double first[SEEDS], tree[SEEDS], cover[SEEDS], after[SEEDS];
        double cafter[SEEDS], mem[SEEDS], wall[SEEDS];
        uint32_t survivors = 0;
        for (unsigned k = 0; k < SEEDS; k++) {
            result r = run(sizes[z], 100 + k);
            form[k] = r.form_s;
            lmin[k] = r.lmin;
            lmed[k] = r.lmed;
            lmax[k] = r.lmax;
            first[k] = r.first;
            tree[k] = r.tree;
            cover[k] = r.cover;
            after[k] = r.after_copies;
            cafter[k] = r.cover_after;
            mem[k] = (double)r.mem / 1024.0;
            wall[k] = r.wall_s;
            survivors = r.survivors;
        }
        printf("N = %u (joins 5 ms apart)\n", sizes[z]);
        med("overlay connected at, simulated s", form);
        med("active links per node: min", lmin);
        med("active links per node: median", lmed);
        med("active links per node: max", lmax);
        med("copies per node, first broadcast", first);
        med("copies per node, after the tree formed", tree);
        med("nodes reached (of N)", cover);
        printf("  after 30%% fail (%u survivors), broadcast 10 s later:\n",
               survivors);
        med("  nodes reached", cafter);
        med("  copies per node", after);
        med("state per node, KiB (SWIM table of N)", mem);
        med("wall time of the run, s", wall);
    }
    return 0;
}
