/* Layer routing (node/LAYERS).
 * route.c: the route table (DSDV), ROUTE adverts, and ROUTED envelopes:
 * sealing, opening and relaying them (docs/PROTOCOL.md section 13). */
#include "node/routing/routing.h"

#include "node/peers/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HOP_LIMIT     WIRE_ROUTE_INFINITY
#define ADVERTS_PER_S 20u /* ROUTE messages a peer may send per second */
#define EPOCH_BYTES   8u  /* the sender's epoch, before the sealed map */

/* The sealing and opening buffers of every node of this thread (area:
 * scale (#13)): a message is sealed, or an envelope opened, from start to
 * end within one call, and the nodes of a thread never run inside each
 * other's calls, so one set serves them all. Made with the thread's first
 * node, freed with its last (a node lives on its loop's thread). */
static _Thread_local uint8_t *scratch;
static _Thread_local unsigned scratch_users;

int node_route_init(confab_node *n)
{
    n->routing = calloc(1, sizeof *n->routing);
    if (n->routing == NULL)
        return -ENOMEM;
    if (scratch == NULL) {
        scratch = malloc(3u * NODE_ROUTE_SCRATCH);
        if (scratch == NULL) {
            free(n->routing);
            n->routing = NULL;
            return -ENOMEM;
        }
    }
    scratch_users++;
    n->routing->plain = scratch;
    n->routing->box = scratch + NODE_ROUTE_SCRATCH;
    n->routing->rx = scratch + 2u * NODE_ROUTE_SCRATCH;
    /* Even, and above anything an earlier run of this node sent (the
     * wall clock in ms, doubled): peers drop what is not newer. */
    n->routing->self_seq = (node_clock_us(n) / 1000u) * 2u;
    return 0;
}

void node_route_free(confab_node *n)
{
    node_routing *rt = n->routing;
    if (rt == NULL)
        return;
    if (rt->routes != NULL) /* their box keys */
        sodium_memzero(rt->routes, rt->cap_routes * sizeof *rt->routes);
    free(rt->routes);
    free(rt->index);
    free(rt->traces);
    /* plaintext left in the thread's buffers, and the keys */
    sodium_memzero(rt->plain, NODE_ROUTE_SCRATCH);
    sodium_memzero(rt->rx, NODE_ROUTE_SCRATCH);
    if (scratch_users > 0 && --scratch_users == 0) {
        free(scratch);
        scratch = NULL;
    }
    sodium_memzero(rt, sizeof *rt);
    free(rt);
    n->routing = NULL;
}

/* ---- the table's index (area: scale (#13)) ---------------------------- */

static size_t id_slot(const node_routing *rt, const uint8_t *id)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)(h * 0x9E3779B97F4A7C15ull >> 20) & (rt->index_cap - 1);
}

static void index_rebuild(node_routing *rt)
{
    if (rt->index == NULL)
        return;
    memset(rt->index, 0, rt->index_cap * sizeof *rt->index);
    for (size_t i = 0; i < rt->n_routes; i++) {
        size_t k = id_slot(rt, rt->routes[i].id);
        while (rt->index[k] != 0)
            k = (k + 1) & (rt->index_cap - 1);
        rt->index[k] = (uint32_t)i + 1u;
    }
}

/* Room for one more route: the table doubles, up to max_routes. 0 or
 * -ENOSPC (at the bound) or -ENOMEM. */
static int table_room(confab_node *n)
{
    node_routing *rt = n->routing;
    if (rt->n_routes < rt->cap_routes)
        return 0;
    size_t max =
        n->cfg.max_routes < NODE_ROUTE_MAX ? n->cfg.max_routes : NODE_ROUTE_MAX;
    if (rt->n_routes >= max)
        return -ENOSPC;
    size_t cap = rt->cap_routes ? rt->cap_routes * 2 : 16;
    if (cap > max)
        cap = max;
    node_route *t = malloc(cap * sizeof *t);
    size_t icap = 32;
    while (icap < 2 * cap)
        icap *= 2;
    uint32_t *ix = calloc(icap, sizeof *ix);
    if (t == NULL || ix == NULL) {
        free(t);
        free(ix);
        return -ENOMEM;
    }
    /* Moved by hand, so that the old copy's box keys can be wiped. */
    if (rt->n_routes > 0)
        memcpy(t, rt->routes, rt->n_routes * sizeof *t);
    if (rt->routes != NULL)
        sodium_memzero(rt->routes, rt->cap_routes * sizeof *rt->routes);
    free(rt->routes);
    free(rt->index);
    rt->routes = t;
    rt->cap_routes = cap;
    rt->index = ix;
    rt->index_cap = icap;
    index_rebuild(rt);
    return 0;
}

static node_route *route_lookup(confab_node *n, const uint8_t *id)
{
    node_routing *rt = n->routing;
    if (rt->index == NULL)
        return NULL;
    for (size_t k = id_slot(rt, id); rt->index[k] != 0;
         k = (k + 1) & (rt->index_cap - 1)) {
        node_route *r = &rt->routes[rt->index[k] - 1u];
        if (memcmp(r->id, id, WIRE_NODE_ID_BYTES) == 0)
            return r;
    }
    return NULL;
}

node_route *node_route_find(confab_node *n, const uint8_t *id)
{
    if (n->routing == NULL)
        return NULL;
    node_route *r = route_lookup(n, id);
    if (r == NULL || r->metric >= WIRE_ROUTE_INFINITY || r->via == NULL ||
        !node_peer_up(r->via))
        return NULL;
    return r;
}

node_peer *node_route_next_hop(confab_node *n, const uint8_t *id)
{
    node_peer *p = node_peer_find(n, id);
    if (p != NULL && node_peer_up(p))
        return p;
    node_route *r = node_route_find(n, id);
    return r != NULL ? r->via : NULL;
}

static void changed(confab_node *n, const uint8_t *id)
{
    n->routing->triggered = true;
    if (n->route_ops != NULL && n->route_ops->changed != NULL)
        n->route_ops->changed(n, id);
}

static void count_routes(confab_node *n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n->routing->n_routes; i++)
        if (n->routing->routes[i].metric < WIRE_ROUTE_INFINITY)
            k++;
    n->stats.routes = k;
}

/* ---- strikes: bad input from one linked peer -------------------------- */

/* Counts one bad routing input from p: true when p has now sent too many
 * in the window, and its link is cut. */
bool node_route_strike_peer(confab_node *n, const node_peer *p)
{
    node_routing *rt = n->routing;
    uint64_t now = node_now_ms(n);
    node_route_strike *s = NULL, *old = &rt->strikes[0];
    for (size_t i = 0; i < sizeof rt->strikes / sizeof rt->strikes[0]; i++) {
        if (rt->strikes[i].peer == p) {
            s = &rt->strikes[i];
            break;
        }
        if (rt->strikes[i].since_ms < old->since_ms)
            old = &rt->strikes[i];
    }
    if (s == NULL || now - s->since_ms > NODE_ROUTE_STRIKE_MS) {
        if (s == NULL)
            s = old;
        s->peer = p;
        s->count = 0;
        s->since_ms = now;
    }
    if (++s->count < NODE_ROUTE_STRIKES)
        return false;
    s->peer = NULL;
    n->stats.route_peers_cut++;
    char sid[9];
    node_short_id(p->id, sid);
    node_log(n, CONFAB_LOG_WARN,
             "cutting the link to %s (%s): %u bad routing messages in %u s "
             "(adverts that loop or cost too much, envelopes that do not "
             "open or ran out of hops); see the route_* counters",
             sid, p->name, NODE_ROUTE_STRIKES, NODE_ROUTE_STRIKE_MS / 1000u);
    return true;
}

/* ---- adverts ---------------------------------------------------------- */

/* The whole table, in as many ROUTE messages of WIRE_ROUTE_MAX entries
 * as it takes (area: scale (#13): a table of 1,000 is four); this node
 * first. */
static void send_advert(confab_node *n, node_peer *to)
{
    node_routing *rt = n->routing;
    wire_route_entry e[WIRE_ROUTE_MAX];
    uint32_t k = 0;
    e[k].id = n->identity->pk;
    e[k].seq = rt->self_seq;
    e[k].metric = 0;
    e[k].epoch = n->epoch;
    k++;
    size_t i = 0;
    do {
        for (; i < rt->n_routes && k < WIRE_ROUTE_MAX; i++) {
            node_route *r = &rt->routes[i];
            if (memcmp(r->id, to->id, WIRE_NODE_ID_BYTES) == 0)
                continue; /* what it is to itself, it knows */
            e[k].id = r->id;
            e[k].seq = r->seq;
            /* Poisoned reverse: a route through `to` is no route for it;
             * nor one through a link that is closing, for anyone. */
            e[k].metric =
                r->via == to || r->via == NULL || !node_peer_up(r->via)
                    ? WIRE_ROUTE_INFINITY
                    : r->metric;
            e[k].epoch = r->epoch;
            k++;
        }
        if (k == 0)
            break;
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_ROUTE;
        m.u.route.count = k;
        m.u.route.entries = e;
        if (node_conn_send_ctl(to->conn, &m) != 0)
            return;
        n->stats.route_adverts_sent++;
        k = 0;
    } while (i < rt->n_routes);
}

/* ROUTE messages one advert of a table of max_routes takes. */
static unsigned advert_parts(const confab_node *n)
{
    return (unsigned)(((size_t)n->cfg.max_routes + WIRE_ROUTE_MAX) /
                      WIRE_ROUTE_MAX);
}

static void advertise(confab_node *n)
{
    n->routing->last_advert_ms = node_now_ms(n);
    node_peer *p;
    node_peer_each (n, p)
        if (node_peer_up(p))
            send_advert(n, p);
    n->routing->triggered = false;
}

/* Takes one entry of a ROUTE from h. False: the entry is bad. */
static bool take_entry(confab_node *n, node_peer *h, const wire_route_entry *e,
                       uint64_t now)
{
    node_routing *rt = n->routing;
    if (e->metric > WIRE_ROUTE_INFINITY)
        return false; /* an absurd cost */
    bool is_h = memcmp(e->id, h->id, WIRE_NODE_ID_BYTES) == 0;
    if (is_h != (e->metric == 0))
        return false; /* only the sender is at distance 0 from itself */
    if (memcmp(e->id, n->identity->pk, WIRE_NODE_ID_BYTES) == 0) {
        /* A route to this node: it must be poisoned or older than what
         * we said; one fresher than ours is made up (a loop). */
        return e->seq <= rt->self_seq;
    }
    if (!node_allowed(n, e->id))
        return true; /* not one this node lets in: not a destination */
    unsigned m = (unsigned)e->metric + 1u;
    if (m > WIRE_ROUTE_INFINITY)
        m = WIRE_ROUTE_INFINITY;
    node_route *r = route_lookup(n, e->id);
    if (r == NULL) {
        if (m >= WIRE_ROUTE_INFINITY)
            return true;
        if (table_room(n) != 0) {
            n->stats.route_table_full++;
            return true; /* the table's bound: the newcomer waits */
        }
        r = &rt->routes[rt->n_routes++];
        memset(r, 0, sizeof *r);
        memcpy(r->id, e->id, WIRE_NODE_ID_BYTES);
        r->metric = WIRE_ROUTE_INFINITY;
        r->fd_metric = WIRE_ROUTE_INFINITY;
        size_t k = id_slot(rt, r->id);
        while (rt->index[k] != 0)
            k = (k + 1) & (rt->index_cap - 1);
        rt->index[k] = (uint32_t)rt->n_routes;
    }
    /* Which entries may replace the route: Babel's feasibility condition
     * (RFC 8966 3.5.1) over DSDV's numbers (area: scale (#13)). A route
     * is feasible when its number is newer than the one held, or equal
     * with a metric (the sender's) below the lowest this node held under
     * that number (fd_metric): a peer whose path ran through this node
     * would say more than that, so taking it cannot close a loop. That
     * lets a node whose route broke take another peer's at once, where
     * DSDV waited for the destination's next number, and a forming
     * overlay, which closes links by the hundred, never had all its
     * routes at once. */
    /* A next hop whose link is closing (its BYE said, the peer's awaited,
     * up to NODE_DRAIN_MS) carries nothing: the route is mended now, not
     * when the link is gone. */
    bool up_now = r->metric < WIRE_ROUTE_INFINITY && r->via != NULL &&
                  node_peer_up(r->via);
    bool newer = e->seq > r->seq;
    bool feasible = newer || (e->seq == r->seq && e->metric < r->fd_metric);
    bool take = false;
    if (up_now && r->via == h) {
        /* Its next hop's word: a refresh, a change, or a retraction (an
         * unfeasible metric is one too: it cannot be kept). */
        if (e->seq < r->seq)
            return true;
        if (e->seq == r->seq && m == r->metric) {
            r->heard_ms = now; /* the same route, told again */
            return true;
        }
        take = true;
        if (!feasible)
            m = WIRE_ROUTE_INFINITY;
    } else if (up_now) {
        /* Another peer's. Its "unreachable" says that it lost its way,
         * not that ours broke (taken, every link that closed anywhere cut
         * routes across the network). A newer number over a path no
         * shorter waits a while for the next hop's own (DSDV's settling
         * time: taken at once, routes flapped between paths at every
         * number). Keeping an older number is what a node does before a
         * newer one reaches it: neither rule can make a loop. */
        take = feasible && m < WIRE_ROUTE_INFINITY &&
               (m < r->metric || now - r->heard_ms >= NODE_ROUTE_SETTLE_MS);
    } else {
        /* Unreachable: any feasible route; a newer "unreachable" only
         * moves the number on. */
        take = feasible;
    }
    if (!take)
        return true;
    bool was_up = up_now;
    node_peer *was_via = r->via;
    uint64_t was_epoch = r->epoch;
    if (newer)
        r->fd_metric = WIRE_ROUTE_INFINITY; /* nothing held under it yet */
    r->seq = e->seq;
    r->metric = m;
    r->epoch = e->epoch;
    r->heard_ms = now;
    bool up = m < WIRE_ROUTE_INFINITY;
    if (up) {
        r->via = h;
        if (m < r->fd_metric)
            r->fd_metric = m;
        (void)node_peer_learn(n, r->id); /* known, so that it can be sent to */
    }
    if (up != was_up || (up && was_via != h) || was_epoch != r->epoch)
        changed(n, r->id);
    return true;
}

static int on_route(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    node_peer *h = c->peer;
    uint64_t now = node_now_ms(n);
    node_routing *rt = n->routing;
    /* A link about to close, or closing: no routes through it (#13). */
    if (!node_peer_up(h) || !node_overlay_routes_via(n, h))
        return 0;
    /* Adverts come once a second and at link changes: many more is a
     * flood, each costing a walk of the table per entry. */
    node_route_rate *q = &rt->rates[(size_t)h->id[0] % NODE_ROUTE_RATES];
    if (q->peer != h || now - q->window_ms >= 1000u) {
        q->peer = h;
        q->window_ms = now;
        q->count = 0;
    }
    if (++q->count > ADVERTS_PER_S * advert_parts(n)) {
        n->stats.route_adverts_dropped++;
        return node_route_strike_peer(n, h) ? -EPROTO : 0;
    }
    wire_iter it = m->u.route.iter;
    wire_route_entry e;
    unsigned bad = 0;
    while (wire_route_next(&it, &e))
        if (!take_entry(n, h, &e, now))
            bad++;
    count_routes(n);
    n->stats.route_adverts_received++;
    if (bad > 0) {
        n->stats.route_entries_bad += bad;
        if (node_route_strike_peer(n, h))
            return -EPROTO;
    }
    return 0;
}

void node_route_link_up(confab_node *n, node_peer *p)
{
    (void)p;
    if (n->routing != NULL)
        n->routing->triggered = true;
}

void node_route_link_down(confab_node *n, node_peer *p)
{
    node_routing *rt = n->routing;
    if (rt == NULL)
        return;
    for (size_t i = 0; i < rt->n_routes; i++) {
        node_route *r = &rt->routes[i];
        if (r->via != p || r->metric >= WIRE_ROUTE_INFINITY)
            continue;
        /* Broken: unreachable under the same number; a feasible route
         * from another peer, or the destination's next number, mends it
         * (take_entry). */
        r->metric = WIRE_ROUTE_INFINITY;
        r->heard_ms = node_now_ms(n);
        changed(n, r->id);
    }
    for (size_t i = 0; i < rt->n_routes; i++)
        if (rt->routes[i].via == p)
            rt->routes[i].via = NULL; /* p may be forgotten later */
    for (size_t i = 0; i < sizeof rt->strikes / sizeof rt->strikes[0]; i++)
        if (rt->strikes[i].peer == p)
            rt->strikes[i].peer = NULL;
    for (size_t i = 0; i < NODE_ROUTE_RATES; i++)
        if (rt->rates[i].peer == p)
            rt->rates[i].peer = NULL;
    count_routes(n);
    rt->triggered = true;
}

void node_route_tick(confab_node *n, uint64_t now)
{
    node_routing *rt = n->routing;
    if (rt == NULL)
        return;
    bool forgot = false;
    for (size_t i = 0; i < rt->n_routes;) {
        node_route *r = &rt->routes[i];
        if (r->metric < WIRE_ROUTE_INFINITY &&
            now - r->heard_ms > NODE_ROUTE_EXPIRE_MS) {
            r->metric = WIRE_ROUTE_INFINITY; /* its next hop went quiet */
            r->heard_ms = now;
            changed(n, r->id);
        }
        if (r->metric >= WIRE_ROUTE_INFINITY &&
            now - r->heard_ms > NODE_ROUTE_FORGET_MS) {
            sodium_memzero(r, sizeof *r);
            *r = rt->routes[--rt->n_routes];
            forgot = true;
            continue;
        }
        i++;
    }
    if (forgot)
        index_rebuild(rt);
    count_routes(n);
    if (now >= rt->next_advert_ms) {
        rt->self_seq += 2;
        rt->next_advert_ms = now + NODE_ROUTE_PERIOD_MS;
        advertise(n);
    } else if (rt->triggered &&
               now - rt->last_advert_ms >= NODE_ROUTE_TRIGGER_MS) {
        advertise(n);
    }
}

/* ---- sealing and opening ---------------------------------------------- */

/* The box key with id: the route's, a kept one, or computed now. */
static const uint8_t *box_key(confab_node *n, const uint8_t *id)
{
    node_routing *rt = n->routing;
    node_route *r = route_lookup(n, id);
    if (r != NULL && r->has_key)
        return r->key;
    for (size_t i = 0; i < NODE_ROUTE_KEYS; i++)
        if (rt->keys[i].used &&
            memcmp(rt->keys[i].id, id, WIRE_NODE_ID_BYTES) == 0)
            return rt->keys[i].key;
    node_route_key *k = &rt->keys[rt->next_key++ % NODE_ROUTE_KEYS];
    if (crypto_box_beforenm(k->key, id, n->identity->sk) != 0) {
        k->used = false;
        return NULL; /* a weak public key: nothing seals for it */
    }
    memcpy(k->id, id, WIRE_NODE_ID_BYTES);
    k->used = true;
    if (r != NULL) {
        memcpy(r->key, k->key, sizeof r->key);
        r->has_key = true;
    }
    return k->key;
}

int node_route_seal(confab_node *n, const uint8_t *dst, const uint8_t *plain,
                    size_t len, uint8_t *box, size_t cap, size_t *box_len)
{
    if (len > SIZE_MAX - WIRE_ROUTED_SEAL - EPOCH_BYTES ||
        cap < len + EPOCH_BYTES + WIRE_ROUTED_SEAL)
        return -EMSGSIZE;
    const uint8_t *key = box_key(n, dst);
    if (key == NULL)
        return -EINVAL;
    /* The plaintext is the sender's epoch and the map: put the epoch in
     * front of the map, in place, when plain is the scratch buffer. */
    uint8_t *pt = n->routing->plain;
    if (plain != pt + EPOCH_BYTES) {
        if (len > NODE_ROUTE_SCRATCH - EPOCH_BYTES)
            return -EMSGSIZE;
        memmove(pt + EPOCH_BYTES, plain, len);
    }
    uint64_t ep = n->epoch;
    for (unsigned i = 0; i < EPOCH_BYTES; i++)
        pt[i] = (uint8_t)(ep >> (56 - 8 * i));
    node_random(n, box, WIRE_ROUTED_NONCE); /* from the pool: no syscall */
    if (crypto_box_easy_afternm(box + WIRE_ROUTED_NONCE, pt, len + EPOCH_BYTES,
                                box, key) != 0)
        return -EINVAL;
    *box_len = WIRE_ROUTED_NONCE + WIRE_ROUTED_MAC + EPOCH_BYTES + len;
    return 0;
}

void node_route_envelope(confab_node *n, const uint8_t *dst, const uint8_t *box,
                         size_t len, wire_msg *r)
{
    memset(r, 0, sizeof *r);
    r->type = WIRE_T_ROUTED;
    r->u.routed.src = n->identity->pk;
    r->u.routed.dst = dst;
    r->u.routed.hops = HOP_LIMIT;
    r->u.routed.box.ptr = box;
    r->u.routed.box.len = (uint32_t)len;
}

int node_route_send_ctl(confab_node *n, const uint8_t *id, const wire_msg *m)
{
    node_peer *h = node_route_next_hop(n, id);
    if (h == NULL)
        return -EHOSTUNREACH;
    if (node_conn_tx_queued(h->conn) >= NODE_ROUTE_RELAY_QUEUE) {
        n->stats.routed_relay_full++; /* never to the link's cut */
        return -EAGAIN;
    }
    node_routing *rt = n->routing;
    size_t len, blen;
    int rc = wire_msg_encode(m, rt->plain + EPOCH_BYTES,
                             NODE_ROUTE_SCRATCH - EPOCH_BYTES, &len);
    if (rc == 0)
        rc = node_route_seal(n, id, rt->plain + EPOCH_BYTES, len, rt->box,
                             NODE_ROUTE_SCRATCH, &blen);
    if (rc != 0)
        return rc;
    wire_msg r;
    node_route_envelope(n, id, rt->box, blen, &r);
    rc = node_conn_send_ctl(h->conn, &r);
    if (rc == 0)
        n->stats.routed_sent++;
    return rc;
}

/* An envelope for this node: open it, hand up what it holds. */
static int open_envelope(node_conn *c, const wire_routed *rd)
{
    confab_node *n = c->node;
    node_routing *rt = n->routing;
    const uint8_t *key = box_key(n, rd->src);
    size_t clen = rd->box.len - WIRE_ROUTED_NONCE;
    if (key == NULL || clen < WIRE_ROUTED_MAC + EPOCH_BYTES ||
        clen - WIRE_ROUTED_MAC > NODE_ROUTE_SCRATCH ||
        crypto_box_open_easy_afternm(rt->rx, rd->box.ptr + WIRE_ROUTED_NONCE,
                                     clen, rd->box.ptr, key) != 0) {
        /* Not sealed by the origin it names: forged, or damaged. */
        n->stats.routed_forged++;
        return node_route_strike_peer(n, c->peer) ? -EPROTO : 0;
    }
    size_t plen = clen - WIRE_ROUTED_MAC;
    uint64_t epoch = 0;
    for (unsigned i = 0; i < EPOCH_BYTES; i++)
        epoch = epoch << 8 | rt->rx[i];
    wire_msg inner;
    unsigned hops = HOP_LIMIT - (unsigned)rd->hops + 1u;
    if (wire_msg_decode(rt->rx + EPOCH_BYTES, plen - EPOCH_BYTES, &inner) !=
            0 ||
        n->route_ops == NULL ||
        n->route_ops->deliver(n, rd->src, epoch, &inner, hops) != 0) {
        /* Opened, so from its origin, which breaks the rules: dropped,
         * and no fault of the link that carried it. */
        n->stats.routed_inner_bad++;
        return 0;
    }
    n->stats.routed_received++;
    return 0;
}

static int on_routed(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    const wire_routed *rd = &m->u.routed;
    const uint8_t *self = n->identity->pk;
    if (rd->hops == 0 || memcmp(rd->src, self, WIRE_NODE_ID_BYTES) == 0) {
        /* Spent on the way, or our own come back: a loop somewhere. */
        n->stats.routed_hops_exhausted++;
        return node_route_strike_peer(n, c->peer) ? -EPROTO : 0;
    }
    if (!node_allowed(n, rd->src) || !node_allowed(n, rd->dst)) {
        n->stats.routed_not_allowed++; /* the allow-list holds end to end */
        return 0;
    }
    if (memcmp(rd->dst, self, WIRE_NODE_ID_BYTES) == 0)
        return open_envelope(c, rd);
    if (rd->hops <= 1) {
        n->stats.routed_hops_exhausted++;
        return node_route_strike_peer(n, c->peer) ? -EPROTO : 0;
    }
    node_peer *h = node_route_next_hop(n, rd->dst);
    if (h == NULL || h == c->peer) {
        n->stats.routed_no_route++;
        return 0;
    }
    if (node_conn_tx_queued(h->conn) >= NODE_ROUTE_RELAY_QUEUE) {
        /* Its next link is backed up: dropped like a full router's
         * packet; the origin sends it again (section 13.3). */
        n->stats.routed_relay_full++;
        return 0;
    }
    wire_msg f = *m;
    f.u.routed.hops = rd->hops - 1;
    if (node_conn_send_relayed(h->conn, &f) == 0)
        n->stats.routed_forwarded++;
    return 0;
}

int node_route_on_msg(node_conn *c, const wire_msg *m)
{
    if (c->node->routing == NULL)
        return 0;
    if (m->type == WIRE_T_ROUTE)
        return on_route(c, m);
    if (m->type == WIRE_T_ROUTED)
        return on_routed(c, m);
    return node_trace_on_msg(c, m);
}

size_t confab_routes(const confab_node *n, confab_route *out, size_t cap)
{
    const node_routing *rt = n->routing;
    if (rt == NULL)
        return 0;
    for (size_t i = 0; i < rt->n_routes && i < cap && out != NULL; i++) {
        const node_route *r = &rt->routes[i];
        memset(&out[i], 0, sizeof out[i]);
        memcpy(out[i].dst, r->id, CONFAB_ID_BYTES);
        bool up = r->via != NULL && r->metric < WIRE_ROUTE_INFINITY;
        if (up)
            memcpy(out[i].via, r->via->id, CONFAB_ID_BYTES);
        out[i].metric = up ? r->metric : CONFAB_ROUTE_INFINITY;
        out[i].seq = r->seq;
    }
    return rt->n_routes;
}
