/* Layer api (node/LAYERS).
 * wake.c: when the node's tick must run next (#18).
 *
 * The tick (node.c tick_cb) runs every tick_ms while the node has work
 * in progress: handshakes, dials, re-dials, messages in the outbox,
 * anycasts, a peer-exchange batch. An established, idle node has only
 * deadlines that it can compute: each link's liveness (silence before a
 * PING, the peer timeout, an unanswered PING), a peer's re-dial or dial
 * grace, a static peer's next dial, the expiry of a peer heard of and
 * never linked. Then the tick sleeps until the earliest of them, so an
 * idle node wakes for what is due and not sixteen times a second.
 *
 * Correctness does not rest on every place that makes work calling in:
 * while the tick sleeps, a prepare handle (node.c) asks node_wake_due()
 * again before the loop blocks, so whatever a callback changed is seen
 * before the loop sleeps. A sleep never passes NODE_WAKE_MAX_MS, for the
 * tick's chores that have no deadline (compacting the store). */
#include "node/api/api.h"
#include "node/api/wake.h"

#include <string.h>

static void earliest(uint64_t *due, uint64_t at)
{
    if (at < *due)
        *due = at;
}

/* A link's liveness deadlines (peer.c node_peer_liveness). */
static void link_due(confab_node *n, const node_conn *c, uint64_t *due)
{
    const node_peer *p = c->peer;
    uint64_t iv = n->cfg.ping_interval_ms;
    earliest(due, c->t_rx + n->cfg.peer_timeout_ms);
    if (p->ping_token != 0) {
        earliest(due, p->ping_sent_ms + n->cfg.peer_timeout_ms);
        return;
    }
    bool smaller = memcmp(n->identity->pk, p->id, WIRE_NODE_ID_BYTES) < 0;
    earliest(due, c->t_rx + (smaller ? iv : 2 * iv));
    earliest(due, p->ping_sent_ms + 4 * iv);
}

static bool conns_due(confab_node *n, uint64_t *due)
{
    for (node_list *e = n->conns.next; e != &n->conns; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->state != CONN_UP || c->tx_over || c->rx_big_size != 0)
            return false; /* a handshake, a drain, a close, a reassembly */
        if (c->peer == NULL || c->peer->conn != c)
            return false; /* a duplicate link on its way out */
        link_due(n, c, due);
    }
    return true;
}

static bool peers_due(confab_node *n, uint64_t *due)
{
    node_peer *p;
    node_peer_each (n, p) {
        if (p->dialing != NULL || p->ob_head != NULL || p->q_head != NULL ||
            p->switching)
            return false; /* a dial, the outbox or the lane in progress */
        for (unsigned k = 0; p->more != NULL && k < NODE_USER_PINGS; k++)
            if (p->more->user_pings[k].token != 0)
                return false; /* a control client may wait on it */
        if (p->redial && p->has_addr && p->conn == NULL)
            earliest(due, p->next_dial);
        if (p->grace_deadline != 0)
            earliest(due, p->grace_deadline);
    }
    return true;
}

static bool statics_due(confab_node *n, uint64_t *due)
{
    for (size_t i = 0; i < n->n_statics; i++) {
        const node_static *s = &n->statics[i];
        if (s->dialing != NULL || s->resolving)
            return false;
        if (s->has_id) {
            const node_peer *p = node_peer_find(n, s->id);
            if (p != NULL && (p->conn != NULL || p->switching))
                continue;
        }
        earliest(due, s->next_dial);
    }
    return true;
}

/* The first never-linked peer that will expire (node_peers_expire). */
static void learned_due(confab_node *n, uint64_t now, uint64_t *due)
{
    uint64_t ttl = n->cfg.known_peer_ttl_ms;
    for (node_list *e = n->learned.next; e != &n->learned; e = e->next) {
        node_peer *p = node_container_of(e, node_peer, learned_link);
        if (now - p->heard_ms < ttl) {
            earliest(due, p->heard_ms + ttl);
            return;
        }
    }
}

uint64_t node_wake_due(confab_node *n, uint64_t now)
{
    if (n->state != NODE_RUNNING || n->pex_new_len > 0 || n->n_lost_ids > 0 ||
        !node_list_empty(&n->anycasts) || !node_list_empty(&n->dirty))
        return 0;
    uint64_t due = now + NODE_WAKE_MAX_MS;
    if (!conns_due(n, &due) || !peers_due(n, &due) || !statics_due(n, &due))
        return 0;
    learned_due(n, now, &due);
    return due;
}
