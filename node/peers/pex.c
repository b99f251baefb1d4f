/* Layer peers (node/LAYERS).
 * pex.c: peer exchange. Over an authenticated link, peers tell each other
 * which peers they are linked to (docs/PROTOCOL.md section 9.3), so a node
 * that heard one beacon reaches the rest, and nodes whose beacons do not
 * reach each other still mesh through a common peer.
 *
 * A peer that comes up is sent the whole list at once; the others hear of
 * it in one PEERS per tick that lists every peer that came up since the
 * last one, so a network forming does not send a message per link per
 * peer. That batch leaves out, for each peer, the newcomers its whole
 * list already held (#18). */
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
        if (node_conn_send_ctl(c, &m) == 0)
            n->stats.peers_msgs_sent++;
    }
    free(e);
}

void node_pex_peer_up(confab_node *n, node_peer *p)
{
    /* The whole list to the newcomer: everything in the batch so far is
     * in it (every batched peer is up and has an address, so it is
     * announceable). */
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

/* The batch to q, less what is not new to it (#18): the newcomers that
 * were already in the whole list q got when it came up. Returns how many
 * are left in out. */
static size_t batch_delta(confab_node *n, const node_peer *q, node_peer **out)
{
    size_t k = 0;
    for (size_t i = 0; i < n->pex_new_len; i++)
        if (n->pex_new[i]->pex_up_gen > q->pex_list_gen)
            out[k++] = n->pex_new[i];
    return k;
}

void node_pex_flush(confab_node *n)
{
    if (n->pex_new_len == 0 || n->state != NODE_RUNNING)
        return;
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
    while (wire_peers_next(&it, &e) == 1) {
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
