/* Layer peers (node/LAYERS).
 * pex.c: peer exchange. Over an authenticated link, peers tell each other
 * which peers they are linked to (docs/PROTOCOL.md section 9.3), so a node
 * that heard one beacon reaches the rest, and nodes whose beacons do not
 * reach each other still mesh through a common peer.
 *
 * A peer that comes up is sent the whole list at once. Of any two peers
 * of ours, the later to come up is thereby told of the earlier; the
 * earlier needs telling of the later only when it is the one to dial (the
 * smaller id, 9.2), or the later could not be told of it. So each batch
 * of newcomers (at most every second) goes only to those, and
 * leaves out what the receiver was already sent in its whole list and any
 * newcomer linked to it already by what either of them named to us
 * (#18): a mesh forming then costs about one PEERS per link each way, not
 * one per link per tick. */
#include "node/peers/peers.h"

#include "node/peers/iface.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool announceable(const node_peer *p)
{
    return node_peer_up(p) && p->has_addr;
}

static void fill_entry(wire_peer_entry *e, const node_peer *p)
{
    e->id = p->id;
    if (p->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->addr;
        e->addr = a->sin6_addr.s6_addr;
        e->addr_len = 16;
        e->port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&p->addr;
        e->addr = (const uint8_t *)&a->sin_addr.s_addr;
        e->addr_len = 4;
        e->port = ntohs(a->sin_port);
    }
}

/* Two bit positions from the id. Ids are public keys, so the bits are
 * spread; a member that picks its key to collide only keeps itself from
 * being announced early (the grace period still links it). */
static void named_bits(const uint8_t *id, unsigned *a, unsigned *b)
{
    *a = ((unsigned)id[0] | (unsigned)id[1] << 8) % NODE_PEX_NAMED_BITS;
    *b = ((unsigned)id[2] | (unsigned)id[3] << 8) % NODE_PEX_NAMED_BITS;
}

static void named_add(node_peer *p, const uint8_t *id)
{
    unsigned a, b;
    named_bits(id, &a, &b);
    node_peer_more *m = node_peer_more_get(p);
    if (m == NULL)
        return; /* no filter: a newcomer may be sent twice */
    m->pex_named[a / 8] |= (uint8_t)(1u << (a % 8));
    m->pex_named[b / 8] |= (uint8_t)(1u << (b % 8));
}

static bool named_has(const node_peer *p, const uint8_t *id)
{
    unsigned a, b;
    named_bits(id, &a, &b);
    return p->more != NULL && (p->more->pex_named[a / 8] >> (a % 8) & 1u) &&
           (p->more->pex_named[b / 8] >> (b % 8) & 1u);
}

/* Sends list[0..n) to the peer of c, in as many PEERS as it takes. */
static void send_list(confab_node *n, node_conn *c, node_peer *const *list,
                      size_t len)
{
    wire_peer_entry *e = malloc(NODE_PEX_CHUNK * sizeof *e);
    if (e == NULL)
        return;
    size_t i = 0;
    while (i < len) {
        uint32_t k = 0;
        for (; i < len && k < NODE_PEX_CHUNK; i++) {
            if (list[i] == c->peer || !announceable(list[i]) ||
                list[i]->addr.ss_family == AF_UNSPEC)
                continue;
            /* Never an address the receiver cannot use: our loopback to
             * another host, a link-local one off its link (9.3). */
            if (!node_pex_shareable(&list[i]->addr, &c->remote)) {
                n->stats.peers_addr_withheld++;
                continue;
            }
            fill_entry(&e[k++], list[i]);
        }
        if (k == 0)
            break;
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_PEERS;
        m.u.peers.count = k;
        m.u.peers.entries = e;
        if (node_conn_send_ctl(c, &m) == 0) {
            n->stats.peers_msgs_sent++;
            n->stats.peers_entries_sent += k;
        }
    }
    free(e);
}

void node_pex_peer_up(confab_node *n, node_peer *p)
{
    /* The whole list to the newcomer: everything in the batch so far is
     * in it (every batched peer is up and has an address, so it is
     * announceable). */
    if (p->more != NULL)
        memset(p->more->pex_named, 0, sizeof p->more->pex_named);
    node_peer **all = malloc(n->peers_len * sizeof *all + 1);
    if (all != NULL) {
        p->pex_list_gen = ++n->pex_gen;
        size_t k = 0;
        node_peer *q;
        node_peer_each (n, q)
            if (q != p && announceable(q))
                all[k++] = q;
        if (k > 0) {
            send_list(n, p->conn, all, k);
            /* Out now, so that many links coming up in one turn do not
             * hold all their lists at once. */
            node_conn_flush(p->conn);
        }
        free(all);
    }
    /* The newcomer to everybody else, at the next tick. */
    if (!p->has_addr)
        return;
    /* Later than any list sent so far (again if it was down and came
     * back within the batch: a list sent meanwhile may lack it). */
    p->pex_up_gen = ++n->pex_gen;
    for (size_t i = 0; i < n->pex_new_len; i++)
        if (n->pex_new[i] == p)
            return;
    if (n->pex_new_len == n->pex_new_cap) {
        size_t cap = n->pex_new_cap ? n->pex_new_cap * 2 : 16;
        node_peer **t = realloc(n->pex_new, cap * sizeof *t);
        if (t == NULL)
            return;
        n->pex_new = t;
        n->pex_new_cap = cap;
    }
    n->pex_new[n->pex_new_len++] = p;
}

/* Whether newcomer x goes to q in a batch. Not when q's whole list held
 * x. Always when x could not be told of q in its own whole list (q had no
 * address to hand on, or none x could use): q is then the only one of
 * the two that can learn of the other from us. Otherwise x knows q, so
 * only when q is the one to dial (the smaller id, 9.2), and not when
 * either named the other to us (they are linked; a false positive of the
 * filter leaves x to dial q after the grace period). */
static bool batch_wants(const node_peer *q, const node_peer *x)
{
    if (x == q || x->pex_up_gen <= q->pex_list_gen)
        return false;
    bool x_told = announceable(q) && x->conn != NULL &&
                  node_pex_shareable(&q->addr, &x->conn->remote);
    if (!x_told)
        return true;
    if (memcmp(q->id, x->id, WIRE_NODE_ID_BYTES) > 0)
        return false; /* x dials q (9.2) */
    return !named_has(x, q->id) && !named_has(q, x->id);
}

/* The batch to q, less what is not new to it or not needed (#18).
 * Returns how many are left in out. */
static size_t batch_delta(confab_node *n, const node_peer *q, node_peer **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n->pex_new_len; i++)
        if (batch_wants(q, n->pex_new[i]))
            out[k++] = n->pex_new[i];
    return k;
}

void node_pex_flush(confab_node *n)
{
    if (n->pex_new_len == 0 || n->state != NODE_RUNNING)
        return;
    /* Held a moment, so that a network forming sends one batch for many
     * newcomers (and what they name reaches us first): a second, or half
     * the dial rule's grace period if that is shorter, so that the one
     * to dial still hears of the other well before the other would dial
     * after the grace. (250 ms sent 3.4-4.0 PEERS a link for 40 nodes
     * forming a mesh; 1 s, 2.5-3.3.) */
    uint64_t now = node_now_ms(n);
    uint64_t grace = n->cfg.dial_grace_ms
                         ? n->cfg.dial_grace_ms
                         : 2u * (uint64_t)n->cfg.beacon_interval_ms;
    uint64_t hold =
        grace / 2 < NODE_PEX_BATCH_MS ? grace / 2 : NODE_PEX_BATCH_MS;
    if (now - n->pex_batch_ms < hold)
        return;
    n->pex_batch_ms = now;
    node_peer **delta = malloc(n->pex_new_len * sizeof *delta);
    node_peer *q;
    node_peer_each (n, q) {
        if (!node_peer_up(q))
            continue;
        if (delta == NULL) { /* no memory: the whole batch, as before */
            send_list(n, q->conn, n->pex_new, n->pex_new_len);
            continue;
        }
        size_t k = batch_delta(n, q, delta);
        if (k > 0)
            send_list(n, q->conn, delta, k);
    }
    free(delta);
    n->pex_new_len = 0;
}

int node_pex_on_peers(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    n->stats.peers_msgs_received++;
    wire_iter it = m->u.peers.iter;
    wire_peer_entry e;
    uint64_t now = node_now_ms(n);
    node_peer *from = c->peer;
    while (wire_peers_next(&it, &e) == 1) {
        n->stats.peers_entries_received++;
        if (from != NULL)
            named_add(from, e.id); /* from is linked to it */
        if (memcmp(e.id, n->identity->pk, WIRE_NODE_ID_BYTES) == 0 ||
            node_peer_blocked(n, e.id) || !node_allowed(n, e.id))
            continue;
        node_peer *p = node_peer_find(n, e.id);
        if (p != NULL && (p->conn != NULL || p->switching))
            continue;
        struct sockaddr_storage at;
        if (node_pex_entry_address(&c->remote, &e, &at) != 0) {
            n->stats.peers_addr_refused++;
            continue;
        }
        /* Heard of: it takes a bounded place in the table (or none, when
         * every place is held), and is dialed at the bounded rate. */
        if ((p = node_peer_learn(n, e.id)) == NULL)
            continue;
        if (!p->has_addr) {
            p->addr = at;
            p->has_addr = true;
        }
        node_discovered(n, p, now);
    }
    return 0;
}

/* A peer's record is going away (the node is freed). */
void node_pex_forget(confab_node *n, node_peer *p)
{
    for (size_t i = 0; i < n->pex_new_len; i++)
        if (n->pex_new[i] == p)
            n->pex_new[i] = n->pex_new[--n->pex_new_len];
}
