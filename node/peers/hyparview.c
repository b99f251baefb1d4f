/* node/peers/hyparview.c: HyParView's active and passive views (Leitao,
 * Pereira, Rodrigues, DSN 2007), a state machine with no I/O. Section
 * numbers below are the paper's. */
#include "node/peers/hyparview.h"

#include <errno.h>

static void push(node_hpv_out *out, uint8_t kind, const node_ovl_id *peer,
                 const node_hpv_msg *m)
{
    if (out->n >= out->cap) {
        out->dropped++;
        return;
    }
    node_hpv_action *a = &out->a[out->n++];
    a->kind = kind;
    a->peer = *peer;
    if (m != NULL)
        a->msg = *m;
    else
        memset(&a->msg, 0, sizeof a->msg);
}

static void send_simple(node_hpv_out *out, const node_ovl_id *to, uint8_t type,
                        uint8_t flag)
{
    node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.high = type == NODE_HPV_NEIGHBOR ? flag : 0;
    m.accept = type == NODE_HPV_NEIGHBOR_REPLY ? flag : 0;
    push(out, NODE_HPV_A_SEND, to, &m);
}

static void remove_at(node_ovl_id *v, uint8_t *n, unsigned i)
{
    v[i] = v[*n - 1];
    (*n)--;
}

static int remove_id(node_ovl_id *v, uint8_t *n, const node_ovl_id *id)
{
    int i = node_ovl_find(v, *n, id);
    if (i < 0)
        return 0;
    remove_at(v, n, (unsigned)i);
    return 1;
}

unsigned node_hpv_active_for(uint32_t n)
{
    unsigned k = 1;
    while (n > 1) {
        n >>= 1;
        k++;
    }
    return k < NODE_HPV_ACTIVE_CAP ? k : NODE_HPV_ACTIVE_CAP;
}

int node_hpv_init(node_hpv *h, const node_ovl_id *self,
                  const node_hpv_config *cfg, node_ovl_rng rng, uint64_t now_ms)
{
    if (h == NULL || self == NULL || cfg == NULL || rng.next == NULL)
        return -EINVAL;
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    node_hpv_config *c = &h->cfg;
    if (c->expected_n == 0)
        c->expected_n = 1000;
    if (c->active_max == 0)
        c->active_max = (uint8_t)node_hpv_active_for(c->expected_n);
    if (c->passive_max == 0)
        c->passive_max = (uint8_t)(6u * c->active_max < NODE_HPV_PASSIVE_CAP
                                       ? 6u * c->active_max
                                       : NODE_HPV_PASSIVE_CAP);
    c->arwl = c->arwl ? c->arwl : 6;
    c->prwl = c->prwl ? c->prwl : 3;
    c->ka = c->ka ? c->ka : 3;
    c->kp = c->kp ? c->kp : 4;
    c->shuffle_ms = c->shuffle_ms ? c->shuffle_ms : 10000;
    c->neighbor_ms = c->neighbor_ms ? c->neighbor_ms : 2000;
    if (c->active_max < 1 || c->active_max > NODE_HPV_ACTIVE_CAP ||
        c->passive_max > NODE_HPV_PASSIVE_CAP || c->arwl > NODE_HPV_MAX_WALK ||
        c->prwl > c->arwl || 1u + c->ka + c->kp > NODE_HPV_LIST_CAP)
        return -EINVAL;
    h->self = *self;
    h->rng = rng;
    /* Spread the shuffles of nodes started together over one period. */
    h->next_shuffle = now_ms + 1 + node_ovl_below(&rng, c->shuffle_ms);
    return 0;
}

int node_hpv_is_active(const node_hpv *h, const node_ovl_id *id)
{
    return node_ovl_find(h->active, h->nactive, id) >= 0;
}

/* Adds id to the passive view; when full, evicts one of pref[0..npref)
 * if the view holds any (section 4.4: those sent in the shuffle), else a
 * random member. */
static void add_passive(node_hpv *h, const node_ovl_id *id,
                        const node_ovl_id *pref, unsigned npref)
{
    if (node_ovl_id_eq(id, &h->self) || node_hpv_is_active(h, id) ||
        node_ovl_find(h->passive, h->npassive, id) >= 0 ||
        h->cfg.passive_max == 0)
        return;
    if (h->npassive >= h->cfg.passive_max) {
        int victim = -1;
        for (unsigned i = 0; i < npref && victim < 0; i++)
            victim = node_ovl_find(h->passive, h->npassive, &pref[i]);
        if (victim < 0)
            victim = (int)node_ovl_below(&h->rng, h->npassive);
        remove_at(h->passive, &h->npassive, (unsigned)victim);
    }
    h->passive[h->npassive++] = *id;
}

/* Drops a random active member to make room (section 4.2,
 * dropRandomElementFromActiveView): it is told (DISCONNECT) and kept in
 * the passive view. */
static void drop_random_active(node_hpv *h, node_hpv_out *out)
{
    unsigned i = node_ovl_below(&h->rng, h->nactive);
    node_ovl_id victim = h->active[i];
    remove_at(h->active, &h->nactive, i);
    send_simple(out, &victim, NODE_HPV_DISCONNECT, 0);
    push(out, NODE_HPV_A_DOWN, &victim, NULL);
    add_passive(h, &victim, NULL, 0);
}

static void add_active(node_hpv *h, const node_ovl_id *id, node_hpv_out *out)
{
    if (node_ovl_id_eq(id, &h->self) || node_hpv_is_active(h, id))
        return;
    if (h->nactive >= h->cfg.active_max)
        drop_random_active(h, out);
    remove_id(h->passive, &h->npassive, id);
    h->active[h->nactive++] = *id;
    push(out, NODE_HPV_A_UP, id, NULL);
}

/* A random active member other than not1 and not2, or NULL. */
static const node_ovl_id *random_active_except(node_hpv *h,
                                               const node_ovl_id *not1,
                                               const node_ovl_id *not2)
{
    node_ovl_id *c[NODE_HPV_ACTIVE_CAP];
    unsigned n = 0;
    for (unsigned i = 0; i < h->nactive; i++)
        if (!node_ovl_id_eq(&h->active[i], not1) &&
            (not2 == NULL || !node_ovl_id_eq(&h->active[i], not2)))
            c[n++] = &h->active[i];
    return n ? c[node_ovl_below(&h->rng, n)] : NULL;
}

void node_hpv_join(node_hpv *h, const node_ovl_id *contact, node_hpv_out *out)
{
    if (node_ovl_id_eq(contact, &h->self))
        return;
    add_active(h, contact, out);
    send_simple(out, contact, NODE_HPV_JOIN, 0);
}

/* Section 4.3: ask a random passive member to become active, with high
 * priority when we have no active member at all. One request at a time. */
static void try_refill(node_hpv *h, uint64_t now_ms, node_hpv_out *out)
{
    if (h->nactive >= h->cfg.active_max || h->npassive == 0)
        return;
    if (h->pending && now_ms < h->pending_until)
        return;
    unsigned i = node_ovl_below(&h->rng, h->npassive);
    h->pending = 1;
    h->pending_id = h->passive[i];
    h->pending_until = now_ms + h->cfg.neighbor_ms;
    h->stats.neighbor_tries++;
    send_simple(out, &h->pending_id, NODE_HPV_NEIGHBOR, h->nactive == 0);
}

static void on_join(node_hpv *h, const node_ovl_id *from, node_hpv_out *out)
{
    add_active(h, from, out);
    for (unsigned i = 0; i < h->nactive; i++) {
        if (node_ovl_id_eq(&h->active[i], from))
            continue;
        node_hpv_msg m;
        memset(&m, 0, sizeof m);
        m.type = NODE_HPV_FORWARD_JOIN;
        m.ttl = h->cfg.arwl;
        m.node = *from;
        push(out, NODE_HPV_A_SEND, &h->active[i], &m);
    }
}

/* Section 4.2, FORWARD_JOIN: the walk ends here when its time to live is
 * spent or we have no one else to pass it to; at ttl == PRWL the new node
 * also enters our passive view. A ttl above our ARWL is cut down to it,
 * so that no walk a peer starts is longer than ours. */
static void on_forward_join(node_hpv *h, const node_ovl_id *from,
                            const node_hpv_msg *m, node_hpv_out *out)
{
    uint8_t ttl = m->ttl < h->cfg.arwl ? m->ttl : h->cfg.arwl;
    if (node_ovl_id_eq(&m->node, &h->self))
        return;
    const node_ovl_id *next = NULL;
    if (ttl > 0 && h->nactive > 1)
        next = random_active_except(h, from, &m->node);
    if (next == NULL) {
        if (!node_hpv_is_active(h, &m->node)) {
            add_active(h, &m->node, out);
            send_simple(out, &m->node, NODE_HPV_NEIGHBOR, 1);
        }
        return;
    }
    if (ttl == h->cfg.prwl)
        add_passive(h, &m->node, NULL, 0);
    node_hpv_msg f = *m;
    f.ttl = (uint8_t)(ttl - 1);
    f.n = 0;
    h->stats.joins_forwarded++;
    push(out, NODE_HPV_A_SEND, next, &f);
}

/* Section 4.3, NEIGHBOR: high priority is always accepted (evicting a
 * random member when full), low only when there is room. */
static void on_neighbor(node_hpv *h, const node_ovl_id *from,
                        const node_hpv_msg *m, node_hpv_out *out)
{
    int ok = m->high || h->nactive < h->cfg.active_max ||
             node_hpv_is_active(h, from);
    if (ok)
        add_active(h, from, out);
    send_simple(out, from, NODE_HPV_NEIGHBOR_REPLY, (uint8_t)ok);
}

static void on_neighbor_reply(node_hpv *h, const node_ovl_id *from,
                              const node_hpv_msg *m, uint64_t now_ms,
                              node_hpv_out *out)
{
    int asked = h->pending && node_ovl_id_eq(&h->pending_id, from);
    if (!asked) {
        /* An accept we did not ask for (or asked for long ago and gave
         * up on): the peer now holds a link we do not want. */
        if (m->accept && !node_hpv_is_active(h, from)) {
            h->stats.refused++;
            send_simple(out, from, NODE_HPV_DISCONNECT, 0);
        }
        return;
    }
    h->pending = 0;
    if (m->accept) {
        add_active(h, from, out);
        return;
    }
    /* Rejected: it stays passive (section 4.3); try another, a few times
     * per tick only, so that a network of full views does not turn into
     * an endless exchange of requests and refusals. */
    if (h->retries > 0) {
        h->retries--;
        try_refill(h, now_ms, out);
    }
}

static void on_disconnect(node_hpv *h, const node_ovl_id *from,
                          node_hpv_out *out)
{
    if (!remove_id(h->active, &h->nactive, from))
        return;
    push(out, NODE_HPV_A_DOWN, from, NULL);
    add_passive(h, from, NULL, 0);
}

/* Section 4.4: add the ids of a shuffle to the passive view, evicting
 * first the ids we sent (they now live at the other end). */
static void integrate(node_hpv *h, const node_hpv_msg *m,
                      const node_ovl_id *pref, unsigned npref)
{
    for (unsigned i = 0; i < m->n && i < NODE_HPV_LIST_CAP; i++)
        add_passive(h, &m->list[i], pref, npref);
}

static void on_shuffle(node_hpv *h, const node_ovl_id *from,
                       const node_hpv_msg *m, node_hpv_out *out)
{
    uint8_t ttl = m->ttl < h->cfg.arwl ? m->ttl : h->cfg.arwl;
    if (node_ovl_id_eq(&m->node, &h->self))
        return;
    if (ttl > 1 && h->nactive > 1) {
        const node_ovl_id *next = random_active_except(h, from, &m->node);
        if (next != NULL) {
            node_hpv_msg f = *m;
            f.ttl = (uint8_t)(ttl - 1);
            push(out, NODE_HPV_A_SEND, next, &f);
            return;
        }
    }
    /* Accept: reply with as many random passive ids as we were sent. */
    node_hpv_msg r;
    memset(&r, 0, sizeof r);
    r.type = NODE_HPV_SHUFFLE_REPLY;
    node_ovl_id pool[NODE_HPV_PASSIVE_CAP];
    unsigned np = h->npassive;
    memcpy(pool, h->passive, np * sizeof pool[0]);
    while (r.n < m->n && np > 0) {
        unsigned i = node_ovl_below(&h->rng, np);
        r.list[r.n++] = pool[i];
        pool[i] = pool[--np];
    }
    push(out, NODE_HPV_A_SEND, &m->node, &r);
    integrate(h, m, r.list, r.n);
}

static int shape_ok(const node_hpv *h, const node_ovl_id *from,
                    const node_hpv_msg *m)
{
    if (m->n > NODE_HPV_LIST_CAP || node_ovl_id_eq(from, &h->self))
        return 0;
    switch (m->type) {
    case NODE_HPV_FORWARD_JOIN:
    case NODE_HPV_SHUFFLE:
        /* Walks travel along active links only. */
        return node_hpv_is_active(h, from);
    case NODE_HPV_JOIN:
    case NODE_HPV_NEIGHBOR:
    case NODE_HPV_NEIGHBOR_REPLY:
    case NODE_HPV_DISCONNECT:
    case NODE_HPV_SHUFFLE_REPLY:
        return 1;
    default:
        return 0;
    }
}

void node_hpv_recv(node_hpv *h, const node_ovl_id *from, const node_hpv_msg *m,
                   uint64_t now_ms, node_hpv_out *out)
{
    if (!shape_ok(h, from, m)) {
        h->stats.refused++;
        return;
    }
    switch (m->type) {
    case NODE_HPV_JOIN:
        on_join(h, from, out);
        break;
    case NODE_HPV_FORWARD_JOIN:
        on_forward_join(h, from, m, out);
        break;
    case NODE_HPV_NEIGHBOR:
        on_neighbor(h, from, m, out);
        break;
    case NODE_HPV_NEIGHBOR_REPLY:
        on_neighbor_reply(h, from, m, now_ms, out);
        break;
    case NODE_HPV_DISCONNECT:
        on_disconnect(h, from, out);
        break;
    case NODE_HPV_SHUFFLE:
        on_shuffle(h, from, m, out);
        break;
    case NODE_HPV_SHUFFLE_REPLY:
        integrate(h, m, h->sent, h->nsent);
        break;
    }
}

void node_hpv_link_failed(node_hpv *h, const node_ovl_id *peer, uint64_t now_ms,
                          node_hpv_out *out)
{
    if (remove_id(h->active, &h->nactive, peer))
        push(out, NODE_HPV_A_DOWN, peer, NULL);
    /* A node we could not reach is dropped from the passive view too
     * (section 4.3: "removes q from its passive view"). */
    remove_id(h->passive, &h->npassive, peer);
    if (h->pending && node_ovl_id_eq(&h->pending_id, peer))
        h->pending = 0;
    try_refill(h, now_ms, out);
}

/* Section 4.4: a SHUFFLE to a random active member carries our id, ka
 * active and kp passive ids, on a walk of ARWL steps. */
static void shuffle(node_hpv *h, node_hpv_out *out)
{
    if (h->nactive == 0)
        return;
    node_hpv_msg m;
    memset(&m, 0, sizeof m);
    m.type = NODE_HPV_SHUFFLE;
    m.ttl = h->cfg.arwl;
    m.node = h->self;
    m.list[m.n++] = h->self;
    const node_ovl_id *to = &h->active[node_ovl_below(&h->rng, h->nactive)];
    node_ovl_id pool[NODE_HPV_PASSIVE_CAP];
    unsigned np = h->nactive;
    memcpy(pool, h->active, np * sizeof pool[0]);
    for (unsigned k = 0; k < h->cfg.ka && np > 0; k++) {
        unsigned i = node_ovl_below(&h->rng, np);
        m.list[m.n++] = pool[i];
        pool[i] = pool[--np];
    }
    np = h->npassive;
    memcpy(pool, h->passive, np * sizeof pool[0]);
    for (unsigned k = 0; k < h->cfg.kp && np > 0; k++) {
        unsigned i = node_ovl_below(&h->rng, np);
        m.list[m.n++] = pool[i];
        pool[i] = pool[--np];
    }
    memcpy(h->sent, m.list, m.n * sizeof m.list[0]);
    h->nsent = m.n;
    h->stats.shuffles++;
    push(out, NODE_HPV_A_SEND, to, &m);
}

void node_hpv_tick(node_hpv *h, uint64_t now_ms, node_hpv_out *out)
{
    h->retries = NODE_HPV_RETRIES_PER_TICK;
    if (now_ms >= h->next_shuffle) {
        h->next_shuffle = now_ms + h->cfg.shuffle_ms;
        shuffle(h, out);
    }
    try_refill(h, now_ms, out);
}

void node_hpv_add_passive(node_hpv *h, const node_ovl_id *id)
{
    add_passive(h, id, NULL, 0);
}

void node_hpv_grow_active(node_hpv *h, unsigned active_max)
{
    if (active_max > NODE_HPV_ACTIVE_CAP)
        active_max = NODE_HPV_ACTIVE_CAP;
    if (active_max > h->cfg.active_max)
        h->cfg.active_max = (uint8_t)active_max;
}
