/* Layer app (node/LAYERS).
 * testnet_scale.c: large test networks (#13, node/testnet.h "large
 * networks"): the descriptors they need, where a forming network stands,
 * and the measurement of a formed one: links per node, time until every
 * node knows every other, broadcast coverage and copies, unicasts between
 * random pairs, memory per node. */
#include "node/app/testnet_int.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- descriptors ------------------------------------------------------- */

unsigned confab_testnet_links_per_node(const confab_config *c, unsigned nodes)
{
    /* Past mesh_threshold (0: the default, 16) a node keeps at most
     * max_links (0: 8) links, chosen by the overlay (docs/PROTOCOL.md 15):
     * 1,000 nodes need about 16,000 descriptors, not 1.1 million. The
     * descriptor check, the CLI and bench_scale all read it here. */
    unsigned t = c != NULL && c->mesh_threshold ? c->mesh_threshold : 16;
    unsigned m = c != NULL && c->max_links ? c->max_links : 8;
    if (nodes > t && m + 1 < nodes)
        return m;
    return nodes > 0 ? nodes - 1 : 0;
}

uint64_t confab_testnet_fds_needed(unsigned nodes, unsigned links_per_node)
{
    /* Per node: the listener, the IPv4 and IPv6 discovery sockets, one
     * socket per link, and room for a few links in handshake or being
     * replaced (a duplicate pair before the tie-break, a re-dial). A link
     * inside this process holds one descriptor at each end, and each end
     * is counted at its own node. 64 for the process: the loop, stdio,
     * the store's files. */
    uint64_t extra = links_per_node / 8u + 4u;
    return (uint64_t)nodes * (3u + (uint64_t)links_per_node + extra) + 64u;
}

static uint64_t lim(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int confab_testnet_raise_fds(uint64_t need, confab_testnet_fds *out)
{
    confab_testnet_fds f = {need, 0, 0, 0};
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    f.soft_before = lim(rl.rlim_cur);
    f.hard = lim(rl.rlim_max);
    if (lim(rl.rlim_cur) < need) {
        /* As far as the hard limit lets an unprivileged process go. */
        rl.rlim_cur = lim(rl.rlim_max) > need ? (rlim_t)need : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    f.soft = lim(rl.rlim_cur);
    if (out != NULL)
        *out = f;
    return f.soft >= need ? 0 : -EMFILE;
}

/* ---- where the network stands ----------------------------------------- */

static bool alive(const confab_testnet *tn, unsigned i)
{
    return tn->m[i].running && !tn->m[i].crashed;
}

unsigned confab_testnet_known(confab_testnet *tn, unsigned i)
{
    if (i >= tn->n || !alive(tn, i))
        return 0;
    confab_node *n = tn->m[i].node;
    unsigned k = 0;
    for (unsigned j = 0; j < tn->n; j++)
        if (j != i && alive(tn, j) && node_route_next_hop(n, tn->m[j].id))
            k++;
    return k;
}

/* True when node i knows every other running node; stops at the first it
 * does not (most nodes of a forming network), so a pass stays cheap. */
static bool knows_all(confab_testnet *tn, unsigned i)
{
    confab_node *n = tn->m[i].node;
    for (unsigned j = 0; j < tn->n; j++)
        if (j != i && alive(tn, j) && !node_route_next_hop(n, tn->m[j].id))
            return false;
    return true;
}

static unsigned links_up(confab_testnet *tn, unsigned i)
{
    confab_stats st;
    confab_node_stats(tn->m[i].node, &st);
    return (unsigned)st.peers_up;
}

static uint64_t elapsed_ms(const confab_testnet *tn)
{
    return tn->started_ns ? (uv_hrtime() - tn->started_ns) / 1000000u : 0;
}

void confab_testnet_progress_now(confab_testnet *tn, confab_testnet_progress *p)
{
    memset(p, 0, sizeof *p);
    p->nodes = tn->n;
    p->links_min = UINT32_MAX;
    for (unsigned i = 0; i < tn->n; i++) {
        if (!alive(tn, i))
            continue;
        p->up++;
        unsigned l = links_up(tn, i);
        p->links += l;
        p->links_min = l < p->links_min ? l : p->links_min;
        p->links_max = l > p->links_max ? l : p->links_max;
        p->knowing_all += knows_all(tn, i);
    }
    if (p->up == 0)
        p->links_min = 0;
    p->links /= 2;
    p->elapsed_ms = elapsed_ms(tn);
}

int confab_testnet_crash_node(confab_testnet *tn, unsigned i)
{
    if (i >= tn->n || !tn->m[i].running || tn->m[i].crashed)
        return -EINVAL;
    for (unsigned j = 0; j < tn->n; j++)
        confab_testnet_cut(tn, i, j);
    tn->m[i].crashed = true;
    return 0;
}

bool confab_testnet_crashed(const confab_testnet *tn, unsigned i)
{
    return i < tn->n && tn->m[i].crashed;
}

void confab_testnet_memory_now(confab_testnet_memory *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long size, resident;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            m->rss = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    struct mallinfo2 mi = mallinfo2();
    m->heap = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* ---- measurement ------------------------------------------------------ */

void confab_testnet_measure_opts_init(confab_testnet_measure_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pairs = 100;
    o->timeout_ms = 60000;
    o->seed = 1;
    o->progress_ms = 1000;
}

/* splitmix64: the pairs and the broadcaster, repeatable from a seed. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned pick_alive(confab_testnet *tn, uint64_t *s, unsigned up)
{
    unsigned k = (unsigned)(next_rand(s) % up);
    for (unsigned i = 0; i < tn->n; i++)
        if (alive(tn, i) && k-- == 0)
            return i;
    return 0; /* not reached: up counts the alive nodes */
}

typedef struct formation {
    const confab_testnet_measure_opts *o;
    uint64_t next_progress; /* elapsed ms of the next call */
    uint64_t next_check;    /* loop ms of the next pass */
    bool formed;
} formation;

/* A pass costs one route lookup per pair at worst (a million at 1,000
 * nodes): every 50 ms, or ten times as long as the last pass took, so
 * that looking takes a tenth of the loop at most. */
static bool formed_done(confab_testnet *tn, void *arg)
{
    formation *f = arg;
    uint64_t now = uv_now(tn->loop);
    if (now < f->next_check)
        return false;
    uint64_t t0 = uv_hrtime();
    confab_testnet_progress p;
    confab_testnet_progress_now(tn, &p);
    uint64_t cost_ms = (uv_hrtime() - t0) / 1000000u;
    f->next_check = now + (cost_ms * 10 > 50 ? cost_ms * 10 : 50);
    f->formed = p.up > 0 && p.knowing_all == p.up;
    if (f->o->progress != NULL &&
        (f->formed || p.elapsed_ms >= f->next_progress)) {
        f->next_progress = p.elapsed_ms + f->o->progress_ms;
        f->o->progress(&p, f->o->user);
    }
    return f->formed;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

static int measure_links(confab_testnet *tn, confab_testnet_report *r)
{
    unsigned *l = calloc(tn->n, sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    unsigned k = 0;
    r->links = 0;
    for (unsigned i = 0; i < tn->n; i++)
        if (alive(tn, i)) {
            l[k] = links_up(tn, i);
            r->links += l[k++];
        }
    r->links /= 2;
    qsort(l, k, sizeof *l, cmp_unsigned);
    r->links_min = k ? l[0] : 0;
    r->links_median = k ? l[(k - 1) / 2] : 0;
    r->links_max = k ? l[k - 1] : 0;
    free(l);
    return 0;
}

/* What one phase waits for: ids, and per id whether the receiver has it
 * and the sender has its ACK. Events are read from `seen` on, so each
 * check looks only at what is new. */
typedef struct wanted {
    uint8_t (*id)[CONFAB_MSG_ID_BYTES];
    unsigned *from, *to; /* to: UINT32_MAX: every alive node but from */
    bool *got, *acked;
    size_t n;
    size_t seen; /* events read */
    unsigned got_n, acked_n;
    bool want_acks;
    bool *reached; /* broadcast: per node */
    unsigned reached_n, receivers;
} wanted;

static void scan(confab_testnet *tn, wanted *w)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (; w->seen < n; w->seen++) {
        const confab_testnet_event *e = &ev[w->seen];
        if (e->type != CONFAB_EV_MESSAGE && e->type != CONFAB_EV_SEND)
            continue;
        for (size_t k = 0; k < w->n; k++) {
            if (memcmp(w->id[k], e->msg_id, CONFAB_MSG_ID_BYTES) != 0)
                continue;
            if (e->type == CONFAB_EV_SEND) {
                if (e->node == w->from[k] && e->status == CONFAB_DELIVERED &&
                    !w->acked[k]) {
                    w->acked[k] = true;
                    w->acked_n++;
                }
            } else if (w->reached != NULL) {
                if (e->node != w->from[k] && !w->reached[e->node]) {
                    w->reached[e->node] = true;
                    w->reached_n += alive(tn, e->node);
                }
            } else if (e->node == w->to[k] && !w->got[k]) {
                w->got[k] = true;
                w->got_n++;
            }
            break;
        }
    }
}

static bool wanted_done(confab_testnet *tn, void *arg)
{
    wanted *w = arg;
    scan(tn, w);
    if (w->reached != NULL)
        return w->reached_n >= w->receivers;
    return w->got_n == w->n && (!w->want_acks || w->acked_n == w->n);
}

static void wanted_free(wanted *w)
{
    free(w->id);
    free(w->from);
    free(w->to);
    free(w->got);
    free(w->acked);
    free(w->reached);
}

/* Copies of broadcasts that reached the nodes: delivered, or dropped as
 * repeats. With the overlay (#13, branch b-overlay) a Plumtree copy that
 * came again is dropped before delivery and counted in its own
 * overlay_gossip_dup: add it here when confab_stats has it. */
static uint64_t copies(confab_testnet *tn, unsigned i)
{
    confab_stats st;
    confab_node_stats(tn->m[i].node, &st);
    return st.msgs_received + st.bcast_repeats_dropped + st.overlay_gossip_dup;
}

typedef struct settle {
    uint64_t total;
    uint64_t quiet_since;
} settle;

/* Late copies of a broadcast (lazy repair, a slower path) still count:
 * waits until the nodes' counters stand still for 300 ms. */
static bool settled(confab_testnet *tn, void *arg)
{
    settle *s = arg;
    uint64_t t = 0;
    for (unsigned i = 0; i < tn->n; i++)
        if (alive(tn, i))
            t += copies(tn, i);
    uint64_t now = uv_now(tn->loop);
    if (t != s->total) {
        s->total = t;
        s->quiet_since = now;
    }
    return now - s->quiet_since >= 300;
}

static int measure_broadcast(confab_testnet *tn,
                             const confab_testnet_measure_opts *o,
                             uint64_t *rng, confab_testnet_report *r)
{
    wanted w = {0};
    uint64_t *before = calloc(tn->n, sizeof *before);
    w.id = calloc(1, sizeof *w.id);
    w.from = calloc(1, sizeof *w.from);
    w.reached = calloc(tn->n, sizeof *w.reached);
    if (before == NULL || w.id == NULL || w.from == NULL || w.reached == NULL) {
        free(before);
        wanted_free(&w);
        return -ENOMEM;
    }
    unsigned from = pick_alive(tn, rng, r->up);
    r->bcast_from = from;
    r->bcast_receivers = w.receivers = r->up - 1;
    w.from[0] = from;
    w.n = 1;
    for (unsigned i = 0; i < tn->n; i++)
        before[i] = alive(tn, i) ? copies(tn, i) : 0;
    confab_testnet_clear_events(tn);
    static const char body[] = "scale: one broadcast to everybody";
    uint64_t t0 = uv_hrtime();
    int rc = confab_broadcast(tn->m[from].node, body, sizeof body - 1, NULL,
                              w.id[0], NULL);
    if (rc == 0) {
        rc = confab_testnet_run_until(tn, wanted_done, &w, o->timeout_ms);
        r->bcast_ms = rc == 0 ? (double)(uv_hrtime() - t0) / 1e6 : -1;
        settle s = {0, uv_now(tn->loop)};
        (void)confab_testnet_run_until(tn, settled, &s, 3000);
        scan(tn, &w);
    }
    r->bcast_reached = w.reached_n;
    r->copies_total = 0;
    r->copies_max = 0;
    for (unsigned i = 0; i < tn->n; i++) {
        if (i == from || !alive(tn, i))
            continue;
        uint64_t c = copies(tn, i) - before[i];
        r->copies_total += c;
        r->copies_max = c > r->copies_max ? c : r->copies_max;
    }
    r->copies_mean = w.receivers ? (double)r->copies_total / w.receivers : 0;
    free(before);
    wanted_free(&w);
    return rc;
}

static int measure_unicasts(confab_testnet *tn,
                            const confab_testnet_measure_opts *o, uint64_t *rng,
                            confab_testnet_report *r)
{
    size_t k = o->pairs;
    wanted w = {0};
    w.id = calloc(k, sizeof *w.id);
    w.from = calloc(k, sizeof *w.from);
    w.to = calloc(k, sizeof *w.to);
    w.got = calloc(k, sizeof *w.got);
    w.acked = calloc(k, sizeof *w.acked);
    if (w.id == NULL || w.from == NULL || w.to == NULL || w.got == NULL ||
        w.acked == NULL) {
        wanted_free(&w);
        return -ENOMEM;
    }
    w.want_acks = true;
    confab_testnet_clear_events(tn);
    uint64_t t0 = uv_hrtime();
    for (size_t p = 0; p < k; p++) {
        unsigned a = pick_alive(tn, rng, r->up), b;
        do
            b = pick_alive(tn, rng, r->up);
        while (b == a);
        char body[64];
        int len = snprintf(body, sizeof body, "scale: n%u to n%u", a, b);
        if (confab_send(tn->m[a].node, tn->m[b].id, body, (size_t)len, NULL,
                        w.id[w.n]) != 0)
            continue; /* not accepted: counted as not sent */
        w.from[w.n] = a;
        w.to[w.n] = b;
        w.n++;
    }
    r->uni_sent = (unsigned)w.n;
    int rc = confab_testnet_run_until(tn, wanted_done, &w, o->timeout_ms);
    r->uni_ms = rc == 0 ? (double)(uv_hrtime() - t0) / 1e6 : -1;
    scan(tn, &w);
    r->uni_delivered = w.got_n;
    r->uni_acked = w.acked_n;
    wanted_free(&w);
    return rc;
}

int confab_testnet_measure(confab_testnet *tn,
                           const confab_testnet_measure_opts *o,
                           confab_testnet_report *r)
{
    confab_testnet_measure_opts d;
    if (o == NULL) {
        confab_testnet_measure_opts_init(&d);
        o = &d;
    }
    memset(r, 0, sizeof *r);
    r->formed_ms = r->bcast_ms = r->uni_ms = -1;
    r->nodes = tn->n;
    uint64_t rng = o->seed ? o->seed : 1;
    unsigned timeout = o->timeout_ms ? o->timeout_ms : 60000;
    confab_testnet_measure_opts oo = *o;
    oo.timeout_ms = timeout;
    if (oo.progress_ms == 0)
        oo.progress_ms = 1000;
    int rc = 0;
    if (!o->skip_formation) {
        formation f = {&oo, oo.progress_ms, 0, false};
        rc = confab_testnet_run_until(tn, formed_done, &f, timeout);
        if (rc == 0)
            r->formed_ms = (double)elapsed_ms(tn);
    }
    for (unsigned i = 0; i < tn->n; i++)
        if (alive(tn, i)) {
            r->up++;
            r->knowing_all += knows_all(tn, i);
        }
    if (o->skip_formation && r->knowing_all == r->up)
        r->formed_ms = (double)elapsed_ms(tn);
    /* Memory now, before the phases' own records add to the heap. */
    if (o->before.rss != 0 || o->before.heap != 0) {
        confab_testnet_memory m;
        confab_testnet_memory_now(&m);
        r->rss_per_node =
            m.rss > o->before.rss ? (double)(m.rss - o->before.rss) / tn->n : 0;
        r->heap_per_node = m.heap > o->before.heap
                               ? (double)(m.heap - o->before.heap) / tn->n
                               : 0;
    }
    int rc2 = 0;
    if (r->up >= 2) {
        rc2 = measure_broadcast(tn, &oo, &rng, r);
        if (rc2 != -ENOMEM && oo.pairs > 0) {
            int rc3 = measure_unicasts(tn, &oo, &rng, r);
            if (rc2 == 0)
                rc2 = rc3;
        }
    }
    if (measure_links(tn, r) != 0)
        return -ENOMEM;
    return rc != 0 ? rc : rc2;
}
