/* Layer peers (node/LAYERS).
 * overlay.c: the overlay of large networks wired into the node (#13,
 * docs/PROTOCOL.md section 15; overlay.h says what it does). The state
 * machines (hyparview.c, plumtree.c, swim.c) do no I/O: this file feeds
 * them what links and peers report, and carries out the actions they
 * return: sends, dials, link closes, deliveries.
 *
 * Their action buffers are per thread, not per node: a thousand nodes in
 * one process would otherwise hold 100 KiB each for them. A call that
 * comes back into the overlay while it carries out actions (a send that
 * closes a link, say) is not run then: the tick, every NODE_OVL_TICK_MS,
 * reconciles the views with the links, so nothing is lost but 50 ms. */
#include "node/peers/overlay.h"

#include "node/peers/hyparview.h"
#include "node/peers/iface.h"
#include "node/peers/plumtree.h"
#include "node/peers/swim.h"
#include "wire/overlay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct ovl_pending {
    node_ovl_id to;
    uint64_t until;
    node_hpv_msg m;
    bool used;
} ovl_pending;

typedef struct ovl_cached {
    uint8_t id[WIRE_ID_BYTES];
    uint8_t origin[WIRE_NODE_ID_BYTES];
    uint8_t *map;
    size_t len;
    uint64_t at;    /* loop time it was taken */
    uint32_t round; /* the round this node passes it on with */
} ovl_cached;

struct node_overlay {
    confab_node *n;
    bool on;
    bool timer_open;
    uv_timer_t timer;
    unsigned depth; /* > 0 while actions are carried out */
    uint64_t linked_ever;
    uint64_t linger_ms;
    uint64_t next_hpv_tick;
    node_hpv hpv;
    node_pt pt;
    node_swim swim;
    node_swim_member *members; /* swim's table, cfg.max_known_peers + 64 */
    node_pt_mid seen[NODE_OVL_SEEN];
    ovl_pending outq[NODE_OVL_OUTQ];
    ovl_cached cache[NODE_OVL_CACHE];
    unsigned cache_next;
    size_t cache_bytes;
};

/* Per thread (see the top): actions and the encoding buffer. */
static _Thread_local node_hpv_action hpv_buf[NODE_HPV_OUT_MAX_PER_CALL];
static _Thread_local node_pt_action pt_buf[NODE_PT_OUT_MAX_PER_CALL];
static _Thread_local node_swim_action swim_buf[NODE_SWIM_OUT_MAX_PER_CALL];
static _Thread_local uint8_t enc_buf[WIRE_MAX_PLAINTEXT];

static uint32_t ovl_rand(void *user)
{
    uint32_t v;
    node_random(user, &v, sizeof v);
    return v;
}

static const node_ovl_id *as_ovl(const uint8_t *id)
{
    return (const node_ovl_id *)(const void *)id;
}

/* ---- life ------------------------------------------------------------- */

int node_overlay_init(confab_node *n)
{
    node_overlay *ov = calloc(1, sizeof *ov);
    if (ov == NULL)
        return -ENOMEM;
    ov->n = n;
    n->overlay = ov;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    node_overlay *ov = h->data;
    node_handle_closed(ov->n);
}

void node_overlay_stop(confab_node *n)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL || !ov->timer_open)
        return;
    ov->timer_open = false;
    uv_timer_stop(&ov->timer);
    uv_close((uv_handle_t *)&ov->timer, on_timer_closed);
}

void node_overlay_free(confab_node *n)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL)
        return;
    for (unsigned i = 0; i < NODE_OVL_CACHE; i++)
        free(ov->cache[i].map);
    free(ov->members);
    free(ov);
    n->overlay = NULL;
}

bool node_overlay_on(const confab_node *n)
{
    return n->overlay != NULL && n->overlay->on;
}

/* ---- the queue of messages waiting for a link -------------------------- */

static bool outq_has(const node_overlay *ov, const uint8_t *id)
{
    for (unsigned i = 0; i < NODE_OVL_OUTQ; i++)
        if (ov->outq[i].used &&
            memcmp(ov->outq[i].to.b, id, WIRE_NODE_ID_BYTES) == 0)
            return true;
    return false;
}

bool node_overlay_may_dial(confab_node *n, const node_peer *p)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL || !ov->on)
        return true;
    return node_hpv_is_active(&ov->hpv, as_ovl(p->id)) || outq_has(ov, p->id);
}

static bool is_static(const confab_node *n, const node_peer *p)
{
    for (size_t i = 0; i < n->n_statics; i++)
        if (n->statics[i].has_id &&
            memcmp(n->statics[i].id, p->id, WIRE_NODE_ID_BYTES) == 0)
            return true;
    return false;
}

/* ---- encoding and sending --------------------------------------------- */

static int send_map(node_overlay *ov, node_conn *c, uint8_t t, size_t len)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.u.raw.ptr = enc_buf;
    m.u.raw.len = (uint32_t)len;
    int rc = node_conn_send_ctl(c, &m);
    if (rc == 0)
        ov->n->stats.overlay_msgs_sent++;
    return rc;
}

/* The map in enc_buf to p through routes (confab_node.ovl_send). */
static int send_routed(node_overlay *ov, const uint8_t *to, uint8_t t,
                       size_t len)
{
    confab_node *n = ov->n;
    if (n->ovl_send == NULL)
        return -ENOTSUP;
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.u.raw.ptr = enc_buf;
    m.u.raw.len = (uint32_t)len;
    int rc = n->ovl_send(n, to, &m);
    if (rc == 0)
        n->stats.overlay_msgs_sent++;
    return rc;
}

/* Where this node accepts links, as the peer of c can reach it: the
 * local address of c (an IPv4 peer on an IPv6 socket sees plain IPv4)
 * and the listening port. */
static bool self_entry(node_overlay *ov, node_conn *c, wire_ovl_entry *e,
                       uint8_t abuf[16])
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return false;
    e->id = ov->n->identity->pk;
    e->port = ov->n->port;
    if (ss.ss_family == AF_INET) {
        memcpy(abuf, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        e->addr_len = 4;
    } else if (ss.ss_family == AF_INET6) {
        const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            memcpy(abuf, a + 12, 4);
            e->addr_len = 4;
        } else {
            memcpy(abuf, a, 16);
            e->addr_len = 16;
        }
    } else {
        return false;
    }
    e->addr = abuf;
    return e->port != 0;
}

/* The entry naming id, for the peer of c: false when this node knows no
 * address for it that the peer could use. */
static bool entry_for(node_overlay *ov, node_conn *c,
                      const struct sockaddr_storage *to, const node_ovl_id *id,
                      wire_ovl_entry *e, uint8_t abuf[16])
{
    confab_node *n = ov->n;
    if (memcmp(id->b, n->identity->pk, WIRE_NODE_ID_BYTES) == 0)
        return c != NULL && self_entry(ov, c, e, abuf);
    const node_peer *p = node_peer_find(n, id->b);
    if (p == NULL || !p->has_addr || !node_pex_shareable(&p->addr, to))
        return false;
    e->id = p->id;
    if (p->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->addr;
        memcpy(abuf, a->sin6_addr.s6_addr, 16);
        e->addr_len = 16;
        e->port = ntohs(a->sin6_port);
    } else if (p->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&p->addr;
        memcpy(abuf, &a->sin_addr.s_addr, 4);
        e->addr_len = 4;
        e->port = ntohs(a->sin_port);
    } else {
        return false;
    }
    e->addr = abuf;
    return e->port != 0;
}

/* Sends hm to p: over c, its link, or (c NULL) sealed in a routed
 * envelope (a SHUFFLE_REPLY to an origin we have no link to, 15.5). */
static int send_hpv(node_overlay *ov, node_peer *p, node_conn *c,
                    const node_hpv_msg *hm)
{
    const struct sockaddr_storage *to = c != NULL ? &c->remote : &p->addr;
    static _Thread_local wire_ovl w;
    static _Thread_local uint8_t abuf[WIRE_OVL_MAX_IDS + 1][16];
    memset(&w, 0, sizeof w);
    w.t = WIRE_T_HPV;
    w.op = hm->type;
    w.ttl = hm->ttl > WIRE_OVL_MAX_TTL ? WIRE_OVL_MAX_TTL : hm->ttl;
    w.hi = hm->high != 0;
    w.ok = hm->accept != 0;
    if (hm->type == NODE_HPV_FORWARD_JOIN || hm->type == NODE_HPV_SHUFFLE) {
        if (!entry_for(ov, c, to, &hm->node, &w.node, abuf[WIRE_OVL_MAX_IDS]))
            return -EHOSTUNREACH; /* no address for it: the walk ends */
    }
    for (unsigned i = 0; i < hm->n && i < NODE_HPV_LIST_CAP; i++)
        if (entry_for(ov, c, to, &hm->list[i], &w.ids[w.nids], abuf[w.nids]))
            w.nids++;
    size_t len;
    int rc = wire_ovl_encode(&w, enc_buf, sizeof enc_buf, &len);
    if (rc != 0)
        return rc;
    if (c != NULL)
        return send_map(ov, c, WIRE_T_HPV, len);
    return send_routed(ov, p->id, WIRE_T_HPV, len);
}

/* The peer of c holds this node in its active view (it sent a walk or a
 * t 31 message only active members send), while this node does not hold
 * it: the views disagree (a JOIN this node did not take, a DISCONNECT or
 * a reply lost on a link that was being replaced, ...). Plumtree over
 * such a pair loses broadcasts: the peer counts this node as a branch
 * of its tree. DISCONNECT tells it (15.2), at most once per period per
 * peer: it moves this node to its passive view and closes the link. */
static void disown(node_overlay *ov, node_conn *c, uint64_t now)
{
    node_peer *p = c->peer;
    /* Asked to be its neighbour: its reply may come on another link. */
    if (ov->hpv.pending &&
        memcmp(ov->hpv.pending_id.b, p->id, WIRE_NODE_ID_BYTES) == 0)
        return;
    if (p->ovl_disown_ms != 0 &&
        now - p->ovl_disown_ms < ov->n->cfg.overlay_period_ms)
        return;
    p->ovl_disown_ms = now;
    node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_HPV_DISCONNECT;
    if (send_hpv(ov, p, c, &m) == 0)
        ov->n->stats.overlay_view_repairs++;
}

static ovl_cached *cache_find(node_overlay *ov, const uint8_t *id)
{
    for (unsigned i = 0; i < NODE_OVL_CACHE; i++)
        if (ov->cache[i].map != NULL &&
            memcmp(ov->cache[i].id, id, WIRE_ID_BYTES) == 0)
            return &ov->cache[i];
    return NULL;
}

static void cache_evict(node_overlay *ov, ovl_cached *e)
{
    if (e->map == NULL)
        return;
    ov->cache_bytes -= e->len;
    free(e->map);
    e->map = NULL;
    e->len = 0;
}

/* Keeps a copy of a broadcast to send on: the oldest go first, by count
 * and by bytes. Returns the entry, or NULL without memory. */
static ovl_cached *cache_put(node_overlay *ov, const uint8_t *id,
                             const uint8_t *origin, const uint8_t *map,
                             size_t len, uint32_t round)
{
    ovl_cached *e = cache_find(ov, id);
    if (e != NULL)
        return e;
    for (unsigned k = 0;
         k < NODE_OVL_CACHE && ov->cache_bytes > NODE_OVL_CACHE_BYTES - len;
         k++)
        cache_evict(ov, &ov->cache[(ov->cache_next + k) % NODE_OVL_CACHE]);
    e = &ov->cache[ov->cache_next];
    ov->cache_next = (ov->cache_next + 1) % NODE_OVL_CACHE;
    cache_evict(ov, e);
    e->map = malloc(len);
    if (e->map == NULL)
        return NULL;
    memcpy(e->map, map, len);
    e->len = len;
    memcpy(e->id, id, WIRE_ID_BYTES);
    memcpy(e->origin, origin, WIRE_NODE_ID_BYTES);
    e->at = node_now_ms(ov->n);
    e->round = round;
    ov->cache_bytes += len;
    return e;
}

static void send_pt(node_overlay *ov, node_conn *c, const node_pt_msg *pm)
{
    static _Thread_local wire_ovl w;
    memset(&w, 0, sizeof w);
    w.t = WIRE_T_PT;
    w.op = pm->type;
    w.round = pm->round;
    switch (pm->type) {
    case NODE_PT_GOSSIP: {
        const ovl_cached *e = cache_find(ov, pm->id.b);
        if (e == NULL)
            return; /* no longer held: the IHAVEs and GRAFTs repair it */
        w.has_id = 1;
        w.id = e->id;
        w.origin = e->origin;
        w.body.ptr = e->map;
        w.body.len = (uint32_t)e->len;
        break;
    }
    case NODE_PT_IHAVE:
        w.nih = pm->n;
        for (unsigned i = 0; i < pm->n && i < WIRE_OVL_MAX_IHAVE; i++) {
            w.ih_id[i] = pm->ids[i].b;
            w.ih_round[i] = pm->rounds[i];
        }
        break;
    case NODE_PT_GRAFT:
        if (pm->has_id) {
            w.has_id = 1;
            w.id = pm->id.b;
        }
        ov->n->stats.overlay_grafts++;
        break;
    default:
        break;
    }
    size_t len;
    if (wire_ovl_encode(&w, enc_buf, sizeof enc_buf, &len) == 0)
        (void)send_map(ov, c, WIRE_T_PT, len);
}

/* A new tree neighbour hears of the broadcasts this node took in the last
 * NODE_OVL_ANNOUNCE_PERIODS periods (IHAVE, 15.3): one that passed
 * through the network while the views were changing, before the
 * neighbour was one, would otherwise never reach it (Plumtree pushes
 * and announces a message only to the neighbours of the moment). What
 * it has already it ignores; what it lacks it GRAFTs. */
static void announce_recent(node_overlay *ov, node_conn *c)
{
    uint64_t now = node_now_ms(ov->n);
    uint64_t horizon =
        (uint64_t)NODE_OVL_ANNOUNCE_PERIODS * ov->n->cfg.overlay_period_ms;
    static _Thread_local node_pt_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_PT_IHAVE;
    for (unsigned k = 0; k < NODE_OVL_CACHE; k++) {
        /* oldest first, as they were taken */
        const ovl_cached *e = &ov->cache[(ov->cache_next + k) % NODE_OVL_CACHE];
        if (e->map == NULL || now - e->at > horizon)
            continue;
        memcpy(m.ids[m.n].b, e->id, WIRE_ID_BYTES);
        m.rounds[m.n] = e->round;
        if (++m.n == NODE_PT_IHAVE_MAX) {
            send_pt(ov, c, &m);
            m.n = 0;
        }
    }
    if (m.n > 0)
        send_pt(ov, c, &m);
}

/* id, an active member whose link c is up, is a neighbour of the tree. */
static void pt_up(node_overlay *ov, const node_ovl_id *id, node_conn *c)
{
    if (node_pt_is_neighbor(&ov->pt, id))
        return;
    if (node_pt_neighbor_up(&ov->pt, id) == 0)
        announce_recent(ov, c);
}

/* ---- carrying out actions --------------------------------------------- */

static node_conn *link_of(confab_node *n, const node_ovl_id *id)
{
    node_peer *p = node_peer_find(n, id->b);
    return p != NULL && node_peer_up(p) ? p->conn : NULL;
}

/* A HyParView message to a node we may have no link to: it waits for
 * the link the overlay now dials (a short-lived one for a SHUFFLE_REPLY,
 * closed after the linger when the node does not enter the view). */
static void queue_hpv(node_overlay *ov, const node_ovl_id *to,
                      const node_hpv_msg *m, uint64_t now)
{
    confab_node *n = ov->n;
    ovl_pending *slot = NULL;
    for (unsigned i = 0; i < NODE_OVL_OUTQ && slot == NULL; i++)
        if (!ov->outq[i].used)
            slot = &ov->outq[i];
    if (slot == NULL) {
        /* Full: the one that expires first goes (a flood of walks to
         * made-up nodes cannot hold more). */
        slot = &ov->outq[0];
        for (unsigned i = 1; i < NODE_OVL_OUTQ; i++)
            if (ov->outq[i].until < slot->until)
                slot = &ov->outq[i];
        n->stats.overlay_refused++;
    }
    slot->used = true;
    slot->to = *to;
    slot->m = *m;
    slot->until = now + 2u * n->cfg.overlay_period_ms;
    node_peer *p = node_peer_find(n, to->b);
    if (p != NULL && p->has_addr && p->conn == NULL && p->dialing == NULL &&
        !p->switching && n->state == NODE_RUNNING)
        node_peer_dial_now(n, p, now);
}

static void run_hpv(node_overlay *ov, node_hpv_out *out, uint64_t now)
{
    confab_node *n = ov->n;
    ov->depth++;
    for (size_t i = 0; i < out->n; i++) {
        const node_hpv_action *a = &out->a[i];
        node_conn *c = link_of(n, &a->peer);
        switch (a->kind) {
        case NODE_HPV_A_SEND:
            if (c != NULL) {
                (void)send_hpv(ov, c->peer, c, &a->msg);
                break;
            }
            /* A reply to a shuffle's origin goes by route when there is
             * one (no link to open, none to linger); the rest need the
             * link they ask for. */
            if (a->msg.type == NODE_HPV_SHUFFLE_REPLY) {
                node_peer *p = node_peer_find(n, a->peer.b);
                if (p != NULL && p->has_addr &&
                    send_hpv(ov, p, NULL, &a->msg) == 0)
                    break;
            }
            queue_hpv(ov, &a->peer, &a->msg, now);
            break;
        case NODE_HPV_A_UP:
            n->stats.overlay_view_changes++;
            if (c != NULL)
                c->peer->ovl_idle_ms = 0;
            break;
        case NODE_HPV_A_DOWN:
            n->stats.overlay_view_changes++;
            node_pt_neighbor_down(&ov->pt, &a->peer);
            /* Its DISCONNECT went first, if any; BYE follows it. */
            if (c != NULL && !is_static(n, c->peer)) {
                n->stats.overlay_links_closed++;
                node_conn_bye(c, WIRE_BYE_OTHER);
            }
            break;
        }
    }
    /* New members join the tree after the sends: its first IHAVE must
     * not overtake the JOIN, NEIGHBOR or NEIGHBOR_REPLY that makes this
     * node one of the member's (it would take it for a stranger). */
    for (size_t i = 0; i < out->n; i++) {
        const node_hpv_action *a = &out->a[i];
        node_conn *c;
        if (a->kind == NODE_HPV_A_UP &&
            node_hpv_is_active(&ov->hpv, &a->peer) &&
            (c = link_of(n, &a->peer)) != NULL)
            pt_up(ov, &a->peer, c);
    }
    out->n = 0;
    ov->depth--;
}

static void run_pt(node_overlay *ov, node_pt_out *out)
{
    confab_node *n = ov->n;
    ov->depth++;
    for (size_t i = 0; i < out->n; i++) {
        const node_pt_action *a = &out->a[i];
        if (a->kind == NODE_PT_A_DELIVER) {
            const ovl_cached *e = cache_find(ov, a->msg.id.b);
            if (e != NULL && n->ovl_deliver != NULL &&
                memcmp(e->origin, n->identity->pk, WIRE_NODE_ID_BYTES) != 0)
                (void)n->ovl_deliver(n, e->origin, e->map, e->len,
                                     a->msg.round + 1u);
            continue;
        }
        node_conn *c = link_of(n, &a->peer);
        if (c != NULL)
            send_pt(ov, c, &a->msg);
    }
    out->n = 0;
    ov->depth--;
}

#define HPV_OUT(name)                                                          \
    node_hpv_out name = {hpv_buf, 0, sizeof hpv_buf / sizeof hpv_buf[0], 0}
#define PT_OUT(name)                                                           \
    node_pt_out name = {pt_buf, 0, sizeof pt_buf / sizeof pt_buf[0], 0}
#define SWIM_OUT(name)                                                         \
    node_swim_out name = {swim_buf, 0, sizeof swim_buf / sizeof swim_buf[0], 0}

/* ---- SWIM: failure detection ------------------------------------------ */

/* Over the link when there is one, else sealed through routes: a probe's
 * ACK then proves the member itself answered. */
static void send_swim(node_overlay *ov, const node_ovl_id *to,
                      const node_swim_msg *sm)
{
    confab_node *n = ov->n;
    if (node_fault_ovl_lost(n))
        return; /* a test's lossy network */
    static _Thread_local wire_ovl w;
    memset(&w, 0, sizeof w);
    w.t = WIRE_T_SWIM;
    w.op = sm->type;
    w.seq = sm->seq;
    if (sm->type == NODE_SWIM_PING_REQ)
        w.target = sm->target.b;
    for (unsigned i = 0; i < sm->n && i < WIRE_OVL_MAX_UPD; i++) {
        wire_ovl_upd *u = &w.up[w.nup++];
        u->id = sm->upd[i].id.b;
        u->state = sm->upd[i].state;
        u->inc = sm->upd[i].inc;
        u->from = sm->upd[i].from.b;
    }
    size_t len;
    if (wire_ovl_encode(&w, enc_buf, sizeof enc_buf, &len) != 0)
        return;
    node_conn *c = link_of(n, to);
    if (c != NULL)
        (void)send_map(ov, c, WIRE_T_SWIM, len);
    else
        (void)send_routed(ov, to->b, WIRE_T_SWIM, len);
}

static void run_swim(node_overlay *ov, node_swim_out *out)
{
    confab_node *n = ov->n;
    ov->depth++;
    for (size_t i = 0; i < out->n; i++) {
        const node_swim_action *a = &out->a[i];
        char sid[9];
        switch (a->kind) {
        case NODE_SWIM_A_SEND:
            send_swim(ov, &a->peer, &a->msg);
            break;
        case NODE_SWIM_A_SUSPECT:
            n->stats.overlay_suspected++;
            break;
        case NODE_SWIM_A_DOWN:
            n->stats.overlay_declared_down++;
            node_short_id(a->peer.b, sid);
            node_log(n, CONFAB_LOG_INFO,
                     "member %s declared down: it answered no probe, direct "
                     "or through others, and did not refute the suspicion",
                     sid);
            break;
        default:
            break;
        }
    }
    out->n = 0;
    ov->depth--;
}

/* reached: over a link of ours (probed from now on), not by hearsay. */
static void swim_add(node_overlay *ov, const uint8_t *id, bool reached)
{
    if (!ov->on || ov->members == NULL || ov->depth > 0 ||
        memcmp(id, ov->n->identity->pk, WIRE_NODE_ID_BYTES) == 0)
        return;
    SWIM_OUT(out);
    int rc = reached ? node_swim_add(&ov->swim, as_ovl(id), &out)
                     : node_swim_learn(&ov->swim, as_ovl(id), &out);
    if (rc != 0)
        ov->n->stats.overlay_refused++; /* the member table is full */
    run_swim(ov, &out);
}

/* ---- turning on -------------------------------------------------------- */

static void tick_cb(uv_timer_t *t);

static uint32_t network_size(const confab_node *n)
{
    size_t k = n->peers_len + 1;
    return k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
}

/* SWIM's state, made when the overlay turns on or when a peer past its
 * threshold probes this node before: a node not on yet answers probes
 * (and refutes suspicions of itself), or the others would declare down
 * every node that crosses the threshold after them. 0 or -ENOMEM. */
static int swim_ready(node_overlay *ov)
{
    if (ov->members != NULL)
        return 0;
    confab_node *n = ov->n;
    uint32_t period = n->cfg.overlay_period_ms;
    size_t cap = n->cfg.max_known_peers + 64u;
    if (cap > NODE_OVL_MEMBERS_MAX)
        cap = NODE_OVL_MEMBERS_MAX;
    node_swim_member *m = calloc(cap, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    node_swim_config sc;
    memset(&sc, 0, sizeof sc);
    sc.interval_ms = period;
    sc.timeout_ms = period / 2u;
    sc.gossip_ms = period / 5u;
    node_ovl_rng rng = {ovl_rand, n};
    if (node_swim_init(&ov->swim, as_ovl(n->identity->pk), &sc, rng, m,
                       (uint32_t)cap, node_now_ms(n)) != 0) {
        free(m);
        return -EINVAL;
    }
    ov->members = m;
    return 0;
}

/* by: the linked peer whose message of this section turned the overlay
 * on here (15.1), or NULL when this node passed its own threshold. */
static void turn_on(node_overlay *ov, const node_peer *by)
{
    confab_node *n = ov->n;
    uint64_t now = node_now_ms(n);
    uint32_t period = n->cfg.overlay_period_ms;
    node_hpv_config hc;
    memset(&hc, 0, sizeof hc);
    unsigned a = node_hpv_active_for(network_size(n));
    hc.active_max = (uint8_t)(a < n->cfg.max_links ? a : n->cfg.max_links);
    hc.passive_max = NODE_HPV_PASSIVE_CAP;
    hc.shuffle_ms = 10u * period;
    hc.neighbor_ms = 2u * period;
    node_ovl_rng rng = {ovl_rand, n};
    if (node_hpv_init(&ov->hpv, as_ovl(n->identity->pk), &hc, rng, now) != 0)
        return;
    node_pt_config pc;
    memset(&pc, 0, sizeof pc);
    pc.timeout1_ms = period;
    pc.timeout2_ms = period / 2u;
    pc.seen_max = NODE_OVL_SEEN;
    if (node_pt_init(&ov->pt, &pc, ov->seen) != 0)
        return;
    if (swim_ready(ov) != 0)
        return;
    ov->linger_ms = 3u * period;
    if (uv_timer_init(n->loop, &ov->timer) != 0)
        return;
    ov->timer.data = ov;
    ov->timer_open = true;
    n->open_handles++;
    unsigned tick =
        NODE_OVL_TICK_MS < period / 10u ? NODE_OVL_TICK_MS : period / 10u;
    uv_timer_start(&ov->timer, tick_cb, tick, tick);
    ov->on = true;
    n->stats.overlay_on = 1;
    char sid[9], bid[9];
    node_short_id(n->identity->pk, sid);
    if (by != NULL) {
        node_short_id(by->id, bid);
        node_log(n, CONFAB_LOG_INFO,
                 "node %s: peer %s is past its mesh threshold: partial mesh "
                 "from now on here too (at most %u links)",
                 sid, bid, (unsigned)hc.active_max);
    } else {
        node_log(n, CONFAB_LOG_INFO,
                 "node %s: %llu nodes known, past mesh_threshold %u: "
                 "partial mesh from now on (at most %u links)",
                 sid, (unsigned long long)network_size(n),
                 n->cfg.mesh_threshold, (unsigned)hc.active_max);
    }
    /* Join through one linked peer; the others linked now are known
     * members (passive), their links go after the linger unless they
     * enter the view. */
    node_peer *contact = NULL, *p;
    uint32_t seen = 0;
    node_peer_each (n, p) {
        if (node_peer_up(p) && node_ovl_below(&rng, ++seen) == 0)
            contact = p;
        if (p->has_addr && !p->gone)
            node_hpv_add_passive(&ov->hpv, as_ovl(p->id));
        if (p->linked || p->heard)
            swim_add(ov, p->id, p->linked);
    }
    /* Turned on by a peer: its JOIN or NEIGHBOR makes it our first
     * member, or (any other message) the view fills from the passive
     * one at the first tick, asking with high priority. */
    if (contact != NULL && by == NULL) {
        HPV_OUT(out);
        node_hpv_join(&ov->hpv, as_ovl(contact->id), &out);
        run_hpv(ov, &out, now);
    }
}

/* ---- the hooks ---------------------------------------------------------- */

bool node_overlay_discovered(confab_node *n, node_peer *p)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL || !ov->on)
        return false;
    swim_add(ov, p->id, false);
    if (node_overlay_may_dial(n, p))
        return false; /* wanted: the usual rule dials it */
    node_hpv_add_passive(&ov->hpv, as_ovl(p->id));
    p->redial = false;
    p->grace_deadline = 0;
    return true;
}

/* Sends what waited for p's link. */
static void flush_outq(node_overlay *ov, node_peer *p)
{
    if (!node_peer_up(p))
        return;
    for (unsigned i = 0; i < NODE_OVL_OUTQ; i++) {
        ovl_pending *q = &ov->outq[i];
        if (!q->used || memcmp(q->to.b, p->id, WIRE_NODE_ID_BYTES) != 0)
            continue;
        q->used = false;
        (void)send_hpv(ov, p, p->conn, &q->m);
    }
}

void node_overlay_peer_up(confab_node *n, node_peer *p)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL)
        return;
    if (!p->ovl_counted) {
        p->ovl_counted = true;
        ov->linked_ever++;
    }
    if (!ov->on) {
        if (ov->linked_ever + 1u > n->cfg.mesh_threshold &&
            n->state == NODE_RUNNING)
            turn_on(ov, NULL);
        return;
    }
    if (ov->depth > 0)
        return; /* the tick sends what waits */
    swim_add(ov, p->id, true);
    p->ovl_idle_ms = 0;
    flush_outq(ov, p); /* a NEIGHBOR, say: before any t 31 (run_hpv) */
    if (node_hpv_is_active(&ov->hpv, as_ovl(p->id)))
        pt_up(ov, as_ovl(p->id), p->conn);
}

/* The views against the links: an active member with no link and none
 * coming has failed (HyParView: TCP is the failure detector of the
 * active view). */
static void reconcile(node_overlay *ov, uint64_t now)
{
    confab_node *n = ov->n;
    HPV_OUT(out);
    for (unsigned i = 0; i < ov->hpv.nactive;) {
        node_ovl_id id = ov->hpv.active[i];
        node_peer *p = node_peer_find(n, id.b);
        if (p != NULL && node_peer_up(p)) {
            flush_outq(ov, p); /* before any t 31, as in run_hpv */
            pt_up(ov, &id, p->conn);
            p->ovl_idle_ms = 0;
            i++;
            continue;
        }
        if (p != NULL &&
            (p->dialing != NULL || p->switching || outq_has(ov, id.b))) {
            i++;
            continue;
        }
        node_pt_neighbor_down(&ov->pt, &id);
        node_hpv_link_failed(&ov->hpv, &id, now, &out);
        run_hpv(ov, &out, now);
        i = 0; /* the view changed: look again */
    }
    for (unsigned i = 0; i < ov->pt.npeers;) {
        node_ovl_id id = ov->pt.peers[i].id;
        if (node_hpv_is_active(&ov->hpv, &id) && link_of(n, &id) != NULL) {
            i++;
            continue;
        }
        node_pt_neighbor_down(&ov->pt, &id);
    }
}

void node_overlay_peer_down(confab_node *n, node_peer *p)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL)
        return;
    p->ovl_join_ms = 0; /* its next link may JOIN again at once */
    if (!ov->on || ov->depth > 0)
        return;
    reconcile(ov, node_now_ms(n));
}

/* ---- the tick ----------------------------------------------------------- */

static void outq_tick(node_overlay *ov, uint64_t now)
{
    confab_node *n = ov->n;
    HPV_OUT(out);
    for (unsigned i = 0; i < NODE_OVL_OUTQ; i++) {
        ovl_pending *q = &ov->outq[i];
        if (!q->used)
            continue;
        node_peer *p = node_peer_find(n, q->to.b);
        if (p != NULL && node_peer_up(p)) {
            flush_outq(ov, p);
            continue;
        }
        if (now < q->until)
            continue;
        /* No link came: the node is unreachable (section 15.2, Failure). */
        q->used = false;
        node_ovl_id id = q->to;
        if (!outq_has(ov, id.b)) {
            node_hpv_link_failed(&ov->hpv, &id, now, &out);
            run_hpv(ov, &out, now);
        }
    }
}

/* Links outside the active view (the full mesh of before, a dial of a
 * peer still below the threshold, a short-lived link of a shuffle) close
 * after the linger. */
static void linger_tick(node_overlay *ov, uint64_t now)
{
    confab_node *n = ov->n;
    node_list *e, *next;
    for (e = n->conns.next; e != &n->conns; e = next) {
        next = e->next;
        node_conn *c = node_container_of(e, node_conn, link);
        node_peer *p = c->peer;
        if (c->state != CONN_UP || p == NULL || p->conn != c || c->bye_sent)
            continue;
        if (node_hpv_is_active(&ov->hpv, as_ovl(p->id)) ||
            outq_has(ov, p->id) || is_static(n, p)) {
            p->ovl_idle_ms = 0;
            continue;
        }
        if (p->ovl_idle_ms == 0) {
            p->ovl_idle_ms = now;
            continue;
        }
        if (now - p->ovl_idle_ms < ov->linger_ms)
            continue;
        p->ovl_idle_ms = 0;
        n->stats.overlay_links_closed++;
        node_conn_bye(c, WIRE_BYE_OTHER);
    }
}

static void tick_cb(uv_timer_t *t)
{
    node_overlay *ov = t->data;
    confab_node *n = ov->n;
    if (n->state != NODE_RUNNING)
        return;
    uint64_t now = node_now_ms(n);
    unsigned a = node_hpv_active_for(network_size(n));
    node_hpv_grow_active(&ov->hpv, a < n->cfg.max_links ? a : n->cfg.max_links);
    reconcile(ov, now);
    outq_tick(ov, now);
    /* HyParView's tick (shuffles, refilling the view: 3 NEIGHBOR tries
     * at most) once per period, not at every tick of ours: a node whose
     * view cannot fill in a network of full views asks a few times a
     * period, not fifty. */
    if (now >= ov->next_hpv_tick) {
        ov->next_hpv_tick = now + n->cfg.overlay_period_ms;
        HPV_OUT(hout);
        node_hpv_tick(&ov->hpv, now, &hout);
        run_hpv(ov, &hout, now);
    }
    PT_OUT(pout);
    node_pt_tick(&ov->pt, now, &pout);
    run_pt(ov, &pout);
    SWIM_OUT(sout);
    node_swim_tick(&ov->swim, now, &sout);
    run_swim(ov, &sout);
    linger_tick(ov, now);
    n->stats.overlay_refuted = ov->swim.stats.refuted;
    n->stats.overlay_links = ov->hpv.nactive;
    n->stats.overlay_passive = ov->hpv.npassive;
}

/* ---- receiving ---------------------------------------------------------- */

/* An entry naming a node: it takes a bounded place in the peer table
 * with the address given, as a PEERS entry would. False: not usable. */
static bool learn_entry(confab_node *n, node_conn *c,
                        const struct sockaddr_storage *via,
                        const wire_ovl_entry *e)
{
    if (memcmp(e->id, n->identity->pk, WIRE_NODE_ID_BYTES) == 0 ||
        memcmp(e->id, c->peer->id, WIRE_NODE_ID_BYTES) == 0)
        return true;
    if (node_peer_blocked(n, e->id) || !node_allowed(n, e->id))
        return false;
    wire_peer_entry pe = {e->id, e->addr, e->addr_len, e->port};
    struct sockaddr_storage at;
    if (node_pex_entry_address(via, &pe, &at) != 0) {
        n->stats.peers_addr_refused++;
        return false;
    }
    node_peer *p = node_peer_learn(n, e->id);
    if (p == NULL)
        return false;
    if (!p->has_addr) {
        p->addr = at;
        p->has_addr = true;
    }
    return true;
}

static bool routed_msg(const confab_node *n)
{
    return n->rx_hops > 0;
}

static int on_hpv(node_overlay *ov, node_conn *c, const wire_ovl *w,
                  uint64_t now)
{
    confab_node *n = ov->n;
    node_peer *from = c->peer;
    const struct sockaddr_storage *via =
        n->rx_hops > 0 ? &from->addr : &c->remote;
    static _Thread_local node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = w->op;
    m.ttl = w->ttl;
    m.high = (uint8_t)(w->hi != 0);
    m.accept = (uint8_t)(w->ok != 0);
    if ((w->op == WIRE_HPV_FORWARD_JOIN || w->op == WIRE_HPV_SHUFFLE) &&
        !routed_msg(n) && !node_hpv_is_active(&ov->hpv, as_ovl(from->id))) {
        /* Walks come from active members only: this one holds us, we do
         * not hold it. */
        n->stats.overlay_refused++;
        disown(ov, c, now);
        return 0;
    }
    if (w->op == WIRE_HPV_FORWARD_JOIN || w->op == WIRE_HPV_SHUFFLE) {
        if (!learn_entry(n, c, via, &w->node)) {
            n->stats.overlay_refused++;
            return 0;
        }
        memcpy(m.node.b, w->node.id, WIRE_NODE_ID_BYTES);
    }
    for (uint32_t i = 0; i < w->nids && m.n < NODE_HPV_LIST_CAP; i++) {
        if (!learn_entry(n, c, via, &w->ids[i]))
            continue;
        memcpy(m.list[m.n++].b, w->ids[i].id, WIRE_NODE_ID_BYTES);
    }
    if (w->op == WIRE_HPV_JOIN) {
        /* One JOIN per peer per shuffle period: each costs a walk to
         * every active member (section 15.2, Bounds). */
        if (from->ovl_join_ms != 0 &&
            now - from->ovl_join_ms < ov->hpv.cfg.shuffle_ms) {
            n->stats.overlay_refused++;
            /* It holds us active since it sent the JOIN: unless it is
             * active here already, say we are not its neighbour. */
            if (!node_hpv_is_active(&ov->hpv, as_ovl(from->id)))
                disown(ov, c, now);
            return 0;
        }
        from->ovl_join_ms = now;
    }
    uint64_t refused = ov->hpv.stats.refused;
    HPV_OUT(out);
    node_hpv_recv(&ov->hpv, as_ovl(from->id), &m, now, &out);
    n->stats.overlay_refused += ov->hpv.stats.refused - refused;
    run_hpv(ov, &out, now);
    /* Refused: the link we opened to ask goes now, not after the linger
     * (15.2, NEIGHBOR_REPLY). */
    if (w->op == WIRE_HPV_NEIGHBOR_REPLY && !w->ok && !routed_msg(n) &&
        from->conn == c && c->state == CONN_UP && !c->bye_sent &&
        !node_hpv_is_active(&ov->hpv, as_ovl(from->id)) &&
        !outq_has(ov, from->id) && !is_static(n, from)) {
        n->stats.overlay_links_closed++;
        node_conn_bye(c, WIRE_BYE_OTHER);
    }
    return 0;
}

/* A GOSSIP's body must be what a broadcast's source makes: a DATA of
 * kind 1 in one frame, with the GOSSIP's id, from a node we know. */
static bool gossip_ok(confab_node *n, const wire_ovl *w)
{
    wire_msg d;
    if (wire_msg_decode(w->body.ptr, w->body.len, &d) != 0 ||
        d.type != WIRE_T_DATA || d.u.data.kind != WIRE_K_BROADCAST ||
        d.u.data.fragmented || memcmp(d.u.data.id, w->id, WIRE_ID_BYTES) != 0)
        return false;
    return memcmp(w->origin, n->identity->pk, WIRE_NODE_ID_BYTES) == 0 ||
           node_peer_find(n, w->origin) != NULL;
}

static int on_pt(node_overlay *ov, node_conn *c, const wire_ovl *w,
                 uint64_t now)
{
    confab_node *n = ov->n;
    /* Plumtree's neighbours are the active members with a link up. One
     * that became active a moment ago (its link came up while actions
     * were carried out, or after the tick) is one now; a message from a
     * node that is not active here means the views disagree. */
    if (node_hpv_is_active(&ov->hpv, as_ovl(c->peer->id)))
        pt_up(ov, as_ovl(c->peer->id), c);
    else
        disown(ov, c, now);
    static _Thread_local node_pt_msg m;
    memset(&m, 0, sizeof m);
    m.type = w->op;
    m.round = w->round;
    if (w->has_id) {
        m.has_id = 1;
        memcpy(m.id.b, w->id, WIRE_ID_BYTES);
    }
    if (w->op == WIRE_PT_GOSSIP) {
        if (!gossip_ok(n, w)) {
            n->stats.overlay_refused++;
            return 0;
        }
        uint64_t dups = ov->pt.stats.dup_in;
        uint32_t next = w->round < UINT32_MAX ? w->round + 1u : w->round;
        if (cache_put(ov, w->id, w->origin, w->body.ptr, w->body.len, next) ==
            NULL)
            return 0; /* no memory: a later copy or GRAFT brings it */
        PT_OUT(out);
        node_pt_recv(&ov->pt, as_ovl(c->peer->id), &m, now, &out);
        if (ov->pt.stats.dup_in != dups)
            n->stats.overlay_gossip_dup++;
        run_pt(ov, &out);
        return 0;
    }
    if (w->op == WIRE_PT_IHAVE) {
        m.n = (uint8_t)w->nih;
        for (uint32_t i = 0; i < w->nih && i < NODE_PT_IHAVE_MAX; i++) {
            memcpy(m.ids[i].b, w->ih_id[i], WIRE_ID_BYTES);
            m.rounds[i] = w->ih_round[i];
        }
    }
    uint64_t refused = ov->pt.stats.refused + ov->pt.stats.grafts_limited +
                       ov->pt.stats.missing_full;
    PT_OUT(out);
    node_pt_recv(&ov->pt, as_ovl(c->peer->id), &m, now, &out);
    n->stats.overlay_refused += ov->pt.stats.refused +
                                ov->pt.stats.grafts_limited +
                                ov->pt.stats.missing_full - refused;
    run_pt(ov, &out);
    return 0;
}

static int on_swim(node_overlay *ov, node_conn *c, const wire_ovl *w,
                   uint64_t now)
{
    confab_node *n = ov->n;
    if (node_fault_ovl_lost(n))
        return 0; /* a test's lossy network */
    static _Thread_local node_swim_msg m;
    memset(&m, 0, sizeof m);
    m.type = w->op;
    m.seq = w->seq;
    if (w->target != NULL)
        memcpy(m.target.b, w->target, WIRE_NODE_ID_BYTES);
    for (uint32_t i = 0; i < w->nup && i < NODE_SWIM_PIGGYBACK; i++) {
        node_swim_update *u = &m.upd[m.n++];
        memcpy(u->id.b, w->up[i].id, WIRE_NODE_ID_BYTES);
        u->state = w->up[i].state;
        u->inc = w->up[i].inc;
        memcpy(u->from.b, w->up[i].from, WIRE_NODE_ID_BYTES);
    }
    const node_swim_stats *st = &ov->swim.stats;
    uint64_t refused = st->refused + st->members_full + st->relays_full;
    SWIM_OUT(out);
    node_swim_recv(&ov->swim, as_ovl(c->peer->id), &m, now, &out);
    n->stats.overlay_refused +=
        st->refused + st->members_full + st->relays_full - refused;
    run_swim(ov, &out);
    return 0;
}

/* A message only a node past its threshold sends to a node it holds (or
 * asks to hold) in its active view: the network is past the threshold,
 * for this node too (15.1). Not DISCONNECT and the replies: they answer
 * what this node sent. SWIM is answered before the threshold anyway. */
static bool turns_on(const wire_ovl *w)
{
    if (w->t == WIRE_T_PT)
        return true;
    return w->t == WIRE_T_HPV &&
           (w->op == WIRE_HPV_JOIN || w->op == WIRE_HPV_FORWARD_JOIN ||
            w->op == WIRE_HPV_NEIGHBOR || w->op == WIRE_HPV_SHUFFLE);
}

int node_overlay_on_msg(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    node_overlay *ov = n->overlay;
    static _Thread_local wire_ovl w;
    /* The map must be one of section 15's, whether or not the overlay is
     * on here: a malformed one closes the link (15.1). */
    if (wire_ovl_decode(m->u.raw.ptr, m->u.raw.len, &w) != 0)
        return -EPROTO;
    n->stats.overlay_msgs_received++;
    /* Routed (sealed: the origin is proved): a SHUFFLE_REPLY, or SWIM's.
     * The rest only over a link (15.5). */
    bool routed = n->rx_hops > 0;
    if (routed && !(w.t == WIRE_T_HPV && w.op == WIRE_HPV_SHUFFLE_REPLY) &&
        w.t != WIRE_T_SWIM) {
        n->stats.overlay_refused++;
        return 0;
    }
    if (ov != NULL && w.t == WIRE_T_SWIM && ov->depth == 0 && c->peer != NULL &&
        (routed || c->peer->conn == c) && swim_ready(ov) == 0)
        return on_swim(ov, c, &w, node_now_ms(n)); /* on or not yet */
    if (ov != NULL && !ov->on && ov->depth == 0 && !routed && c->peer != NULL &&
        c->peer->conn == c && n->state == NODE_RUNNING && turns_on(&w))
        turn_on(ov, c->peer);
    if (ov == NULL || !ov->on || ov->depth > 0 || c->peer == NULL ||
        (!routed && c->peer->conn != c)) {
        /* Not on (yet), and the message is a reply or a DISCONNECT
         * (turns_on): nothing here asked for it. */
        n->stats.overlay_refused++;
        return 0;
    }
    uint64_t now = node_now_ms(n);
    switch (w.t) {
    case WIRE_T_HPV:
        return on_hpv(ov, c, &w, now);
    case WIRE_T_PT:
        return on_pt(ov, c, &w, now);
    default:
        n->stats.overlay_refused++;
        return 0;
    }
}

/* ---- broadcasting ------------------------------------------------------- */

int node_overlay_broadcast(confab_node *n, const uint8_t id[WIRE_ID_BYTES],
                           const uint8_t *map, size_t len)
{
    node_overlay *ov = n->overlay;
    if (ov == NULL || !ov->on)
        return -ENOTSUP;
    if (len > WIRE_MAX_PLAINTEXT - NODE_OVL_GOSSIP_OVERHEAD)
        return -EMSGSIZE;
    /* No tree neighbour now (the view is empty, or its links are still
     * being dialed): the tree would carry it nowhere, and no neighbour
     * that comes later hears of it. It goes as below the threshold. */
    if (ov->pt.npeers == 0)
        return -ENOTSUP;
    if (cache_put(ov, id, n->identity->pk, map, len, 0) == NULL)
        return -ENOMEM;
    node_pt_mid mid;
    memcpy(mid.b, id, WIRE_ID_BYTES);
    PT_OUT(out);
    node_pt_broadcast(&ov->pt, &mid, &out);
    int sent = 0;
    for (size_t i = 0; i < out.n; i++)
        if (out.a[i].kind == NODE_PT_A_SEND &&
            out.a[i].msg.type == NODE_PT_GOSSIP)
            sent++;
    run_pt(ov, &out);
    return sent;
}

/* area: scale (#13, b-mem) */
bool node_overlay_routes_via(const confab_node *n, const node_peer *p)
{
    const node_overlay *ov = n->overlay;
    if (ov == NULL || !ov->on)
        return true;
    if (node_hpv_is_active(&ov->hpv, as_ovl(p->id)))
        return true;
    /* A node none of whose view is linked yet takes what it can get. */
    for (unsigned i = 0; i < ov->hpv.nactive; i++) {
        const node_peer *a = node_peer_find(n, ov->hpv.active[i].b);
        if (a != NULL && node_peer_up(a))
            return false;
    }
    return true;
}
