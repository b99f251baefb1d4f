/* node/peers/plumtree.c: the epidemic broadcast tree (Leitao, Pereira,
 * Rodrigues, "Epidemic Broadcast Trees", SRDS 2007), a state machine with
 * no I/O. Section and figure numbers below are the paper's. */
#include "node/peers/plumtree.h"

#include <errno.h>

static node_pt_msg *push(node_pt_out *out, uint8_t kind,
                         const node_ovl_id *peer)
{
    if (out->n >= out->cap) {
        out->dropped++;
        return NULL;
    }
    node_pt_action *a = &out->a[out->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    if (peer != NULL)
        a->peer = *peer;
    return &a->msg;
}

static int mid_eq(const node_pt_mid *a, const node_pt_mid *b)
{
    return memcmp(a->b, b->b, NODE_PT_ID_BYTES) == 0;
}

size_t node_pt_seen_bytes(const node_pt_config *cfg)
{
    return (cfg->seen_max ? cfg->seen_max : 1024u) * sizeof(node_pt_mid);
}

int node_pt_init(node_pt *p, const node_pt_config *cfg, node_pt_mid *seen)
{
    if (p == NULL || cfg == NULL || seen == NULL)
        return -EINVAL;
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    node_pt_config *c = &p->cfg;
    c->timeout1_ms = c->timeout1_ms ? c->timeout1_ms : 1000;
    c->timeout2_ms = c->timeout2_ms ? c->timeout2_ms : 500;
    c->threshold = c->threshold ? c->threshold : 3;
    c->seen_max = c->seen_max ? c->seen_max : 1024;
    if (c->seen_max > NODE_PT_SEEN_CAP)
        return -EINVAL;
    p->seen = seen;
    return 0;
}

static int peer_index(const node_pt *p, const node_ovl_id *id)
{
    for (unsigned i = 0; i < p->npeers; i++)
        if (node_ovl_id_eq(&p->peers[i].id, id))
            return (int)i;
    return -1;
}

int node_pt_is_neighbor(const node_pt *p, const node_ovl_id *peer)
{
    return peer_index(p, peer) >= 0;
}

int node_pt_is_eager(const node_pt *p, const node_ovl_id *peer)
{
    int i = peer_index(p, peer);
    return i >= 0 && p->peers[i].eager;
}

/* The received-ids cache: a ring, the oldest id evicted first. A message
 * older than the ring's reach would be delivered twice; the caller's store
 * (which keeps ids longer) catches that. */
static int seen(const node_pt *p, const node_pt_mid *id)
{
    for (uint32_t i = 0; i < p->nseen; i++)
        if (mid_eq(&p->seen[i], id))
            return 1;
    return 0;
}

static void remember(node_pt *p, const node_pt_mid *id)
{
    p->seen[p->seen_next] = *id;
    p->seen_next = (p->seen_next + 1) % p->cfg.seen_max;
    if (p->nseen < p->cfg.seen_max)
        p->nseen++;
}

static node_pt_missing *find_missing(node_pt *p, const node_pt_mid *id)
{
    for (unsigned i = 0; i < p->nmissing; i++)
        if (mid_eq(&p->missing[i].id, id))
            return &p->missing[i];
    return NULL;
}

static void drop_missing(node_pt *p, node_pt_missing *ms)
{
    *ms = p->missing[--p->nmissing];
}

/* Removes announcer i of ms, keeping the order (first come, first
 * grafted: removeFirstAnnouncement). */
static void drop_announcer(node_pt_missing *ms, unsigned i)
{
    for (unsigned k = i + 1; k < ms->n; k++) {
        ms->ann[k - 1] = ms->ann[k];
        ms->round[k - 1] = ms->round[k];
    }
    ms->n--;
}

int node_pt_neighbor_up(node_pt *p, const node_ovl_id *peer)
{
    if (peer_index(p, peer) >= 0)
        return 0;
    if (p->npeers >= NODE_PT_PEER_CAP)
        return -ENOSPC;
    /* Section 3.6 (NeighborUp): a new neighbour starts eager. */
    node_pt_peer *e = &p->peers[p->npeers++];
    memset(e, 0, sizeof *e);
    e->id = *peer;
    e->eager = 1;
    return 0;
}

void node_pt_neighbor_down(node_pt *p, const node_ovl_id *peer)
{
    int i = peer_index(p, peer);
    if (i < 0)
        return;
    uint8_t last = (uint8_t)(p->npeers - 1);
    /* Its queued announcements go; the last peer's move to slot i. */
    for (unsigned k = 0; k < p->nlazy;) {
        if (p->lazy[k].peer == i) {
            p->lazy[k] = p->lazy[--p->nlazy];
            continue;
        }
        if (p->lazy[k].peer == last)
            p->lazy[k].peer = (uint8_t)i;
        k++;
    }
    p->peers[i] = p->peers[last];
    p->npeers = last;
    /* Section 3.6 (NeighborDown): forget its announcements. */
    for (unsigned m = 0; m < p->nmissing;) {
        node_pt_missing *ms = &p->missing[m];
        for (unsigned a = 0; a < ms->n;)
            if (node_ovl_id_eq(&ms->ann[a], peer))
                drop_announcer(ms, a);
            else
                a++;
        m++;
    }
}

/* Sends the queued announcements, one IHAVE per lazy peer holding up to
 * NODE_PT_IHAVE_MAX ids (the paper's lazy queue and its dispatch policy,
 * section 3.4: announcements are batched). */
static void flush_lazy(node_pt *p, node_pt_out *out)
{
    for (unsigned i = 0; i < p->npeers && p->nlazy > 0; i++) {
        node_pt_msg *m = NULL;
        for (unsigned k = 0; k < p->nlazy;) {
            if (p->lazy[k].peer != i) {
                k++;
                continue;
            }
            if (m == NULL || m->n == NODE_PT_IHAVE_MAX) {
                m = push(out, NODE_PT_A_SEND, &p->peers[i].id);
                if (m == NULL)
                    return;
                m->type = NODE_PT_IHAVE;
            }
            m->ids[m->n] = p->lazy[k].id;
            m->rounds[m->n] = p->lazy[k].round;
            m->n++;
            p->lazy[k] = p->lazy[--p->nlazy];
        }
    }
}

/* EagerPush and LazyPush (figure 1): the message to eager peers now, its
 * id to lazy peers at the next flush. */
static void push_out(node_pt *p, const node_pt_mid *id, uint32_t round,
                     const node_ovl_id *sender, node_pt_out *out)
{
    for (unsigned i = 0; i < p->npeers; i++) {
        const node_pt_peer *e = &p->peers[i];
        if (sender != NULL && node_ovl_id_eq(&e->id, sender))
            continue;
        if (e->eager) {
            node_pt_msg *m = push(out, NODE_PT_A_SEND, &e->id);
            if (m != NULL) {
                m->type = NODE_PT_GOSSIP;
                m->id = *id;
                m->round = round;
            }
            continue;
        }
        if (p->nlazy >= NODE_PT_LAZY_CAP)
            flush_lazy(p, out);
        if (p->nlazy < NODE_PT_LAZY_CAP) {
            node_pt_lazy *l = &p->lazy[p->nlazy++];
            l->peer = (uint8_t)i;
            l->round = round;
            l->id = *id;
        }
    }
}

void node_pt_broadcast(node_pt *p, const node_pt_mid *id, node_pt_out *out)
{
    if (seen(p, id))
        return;
    remember(p, id);
    push_out(p, id, 0, NULL, out);
}

static void set_eager(node_pt *p, int i, uint8_t eager)
{
    if (i >= 0)
        p->peers[i].eager = eager;
}

static void send_prune(const node_ovl_id *to, node_pt_out *out)
{
    node_pt_msg *m = push(out, NODE_PT_A_SEND, to);
    if (m != NULL)
        m->type = NODE_PT_PRUNE;
}

static void send_graft(node_pt *p, const node_ovl_id *to, const node_pt_mid *id,
                       uint32_t round, node_pt_out *out)
{
    node_pt_msg *m = push(out, NODE_PT_A_SEND, to);
    if (m == NULL)
        return;
    m->type = NODE_PT_GRAFT;
    m->round = round;
    m->has_id = id != NULL;
    if (id != NULL)
        m->id = *id;
    p->stats.grafts_sent++;
}

/* Section 3.8 (Optimization): an announcer that had the message
 * `threshold` hops sooner than the tree delivered it replaces the tree
 * link it came on. */
static void optimise(node_pt *p, node_pt_missing *ms, uint32_t round,
                     const node_ovl_id *sender, node_pt_out *out)
{
    for (unsigned a = 0; a < ms->n; a++) {
        uint32_t r = ms->round[a];
        if (r < round && round - r >= p->cfg.threshold) {
            set_eager(p, peer_index(p, &ms->ann[a]), 1);
            send_graft(p, &ms->ann[a], NULL, r, out);
            set_eager(p, peer_index(p, sender), 0);
            send_prune(sender, out);
            p->stats.optimised++;
            return;
        }
    }
}

static void on_gossip(node_pt *p, int from, const node_pt_msg *m,
                      node_pt_out *out)
{
    const node_ovl_id *sender = &p->peers[from].id;
    p->stats.gossip_in++;
    if (seen(p, &m->id)) {
        /* A duplicate: the link it came on is not a tree link. */
        p->stats.dup_in++;
        set_eager(p, from, 0);
        send_prune(sender, out);
        return;
    }
    remember(p, &m->id);
    node_pt_msg *d = push(out, NODE_PT_A_DELIVER, sender);
    if (d != NULL)
        d->id = m->id;
    uint32_t next = m->round < UINT32_MAX ? m->round + 1 : m->round;
    push_out(p, &m->id, next, sender, out);
    set_eager(p, from, 1);
    node_pt_missing *ms = find_missing(p, &m->id);
    if (ms != NULL) {
        optimise(p, ms, m->round, sender, out);
        drop_missing(p, ms);
    }
}

static void on_ihave(node_pt *p, int from, const node_pt_msg *m,
                     uint64_t now_ms)
{
    const node_ovl_id *sender = &p->peers[from].id;
    p->stats.ihave_in++;
    for (unsigned i = 0; i < m->n; i++) {
        if (seen(p, &m->ids[i]))
            continue;
        node_pt_missing *ms = find_missing(p, &m->ids[i]);
        if (ms == NULL) {
            if (p->nmissing >= NODE_PT_MISSING_CAP) {
                /* Full: the message may still come on the tree. */
                p->stats.missing_full++;
                continue;
            }
            ms = &p->missing[p->nmissing++];
            memset(ms, 0, sizeof *ms);
            ms->id = m->ids[i];
            ms->deadline = now_ms + p->cfg.timeout1_ms;
        }
        if (ms->n < NODE_PT_ANNOUNCERS &&
            node_ovl_find(ms->ann, ms->n, sender) < 0) {
            ms->ann[ms->n] = *sender;
            ms->round[ms->n] = m->rounds[i];
            ms->n++;
        }
    }
}

static void on_graft(node_pt *p, int from, const node_pt_msg *m,
                     node_pt_out *out)
{
    node_pt_peer *e = &p->peers[from];
    p->stats.graft_in++;
    e->eager = 1;
    if (!m->has_id || !seen(p, &m->id))
        return;
    /* A neighbour asking for the same messages again and again gets a
     * few per tick: resends cost us a payload each. */
    if (e->grafts >= NODE_PT_GRAFTS_PER_TICK) {
        p->stats.grafts_limited++;
        return;
    }
    e->grafts++;
    node_pt_msg *g = push(out, NODE_PT_A_SEND, &e->id);
    if (g != NULL) {
        g->type = NODE_PT_GOSSIP;
        g->id = m->id;
        g->round = m->round;
    }
}

/* A GOSSIP from a node that is not a neighbour (docs/PROTOCOL.md 15.3):
 * the caller knows it for a member, which holds this node as a
 * neighbour while this node does not (the views disagree for a moment;
 * the caller tells it so). Dropping it would lose the message for this
 * node and for everything below it in the sender's tree: it is
 * delivered and passed on as any first copy, but it changes no eager
 * bit and a repeat is not PRUNEd (there is no link state to change). */
static void on_stray_gossip(node_pt *p, const node_ovl_id *from,
                            const node_pt_msg *m, node_pt_out *out)
{
    p->stats.gossip_in++;
    p->stats.stray_in++;
    if (seen(p, &m->id)) {
        p->stats.dup_in++;
        return;
    }
    remember(p, &m->id);
    node_pt_msg *d = push(out, NODE_PT_A_DELIVER, from);
    if (d != NULL)
        d->id = m->id;
    uint32_t next = m->round < UINT32_MAX ? m->round + 1 : m->round;
    push_out(p, &m->id, next, NULL, out);
    node_pt_missing *ms = find_missing(p, &m->id);
    if (ms != NULL)
        drop_missing(p, ms);
}

void node_pt_recv(node_pt *p, const node_ovl_id *from, const node_pt_msg *m,
                  uint64_t now_ms, node_pt_out *out)
{
    int i = peer_index(p, from);
    if (i < 0 && m->type == NODE_PT_GOSSIP) {
        on_stray_gossip(p, from, m, out);
        return;
    }
    if (i < 0 || m->n > NODE_PT_IHAVE_MAX) {
        p->stats.refused++;
        return;
    }
    switch (m->type) {
    case NODE_PT_GOSSIP:
        on_gossip(p, i, m, out);
        break;
    case NODE_PT_IHAVE:
        on_ihave(p, i, m, now_ms);
        break;
    case NODE_PT_GRAFT:
        on_graft(p, i, m, out);
        break;
    case NODE_PT_PRUNE:
        p->stats.prune_in++;
        p->peers[i].eager = 0;
        break;
    default:
        p->stats.refused++;
        break;
    }
}

/* Figure 2 (Timer): the first announcer is grafted and asked for the
 * message; the next waits timeout2. With no announcer left, give up. */
static void run_timers(node_pt *p, uint64_t now_ms, node_pt_out *out)
{
    for (unsigned k = 0; k < p->nmissing;) {
        node_pt_missing *ms = &p->missing[k];
        if (now_ms < ms->deadline) {
            k++;
            continue;
        }
        if (ms->n == 0) {
            drop_missing(p, ms);
            continue;
        }
        node_ovl_id to = ms->ann[0];
        uint32_t round = ms->round[0];
        drop_announcer(ms, 0);
        ms->deadline = now_ms + p->cfg.timeout2_ms;
        set_eager(p, peer_index(p, &to), 1);
        send_graft(p, &to, &ms->id, round, out);
        k++;
    }
}

void node_pt_tick(node_pt *p, uint64_t now_ms, node_pt_out *out)
{
    for (unsigned i = 0; i < p->npeers; i++)
        p->peers[i].grafts = 0;
    flush_lazy(p, out);
    run_timers(p, now_ms, out);
}
