/* Layer peers (node/LAYERS).
 * peer.c: the peers a node knows: the table, the one link per pair (the
 * tie-break), up and down, liveness, re-dial with backoff, static peers.
 *
 * A peer outlives its links: it keeps the address to re-dial, its queue
 * while the link changes hands, and its counters. */
#include "node/peers/peers.h"

#include "node/peers/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table -------------------------------------------------------- */

/* Node ids are public keys, but a member chooses its own and can make up
 * ids at will: an unkeyed hash of their first bytes would let it pick ids
 * that all land in one run of slots. SipHash under a key of this node's
 * own keeps their slots unpredictable. */
static size_t id_hash(const confab_node *n, const uint8_t *id)
{
    return (size_t)sec_shorthash(n->peers_key, id, WIRE_NODE_ID_BYTES);
}

node_peer *node_peer_find(const confab_node *n,
                          const uint8_t id[WIRE_NODE_ID_BYTES])
{
    size_t mask = n->peers_cap - 1;
    for (size_t i = id_hash(n, id) & mask;; i = (i + 1) & mask) {
        node_peer *p = n->peers[i];
        if (p == NULL)
            return NULL;
        if (memcmp(p->id, id, WIRE_NODE_ID_BYTES) == 0) /* public: memcmp */
            return p;
    }
}

static int table_grow(confab_node *n)
{
    size_t cap = n->peers_cap * 2;
    node_peer **t = calloc(cap, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    node_peer *p;
    node_peer_each (n, p) {
        size_t j = id_hash(n, p->id) & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = p;
    }
    free(n->peers);
    n->peers = t;
    n->peers_cap = cap;
    return 0;
}

node_peer *node_peer_get(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES])
{
    node_peer *p = node_peer_find(n, id);
    if (p != NULL)
        return p;
    if ((n->peers_len + 1) * 2 > n->peers_cap && table_grow(n) != 0)
        return NULL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    memcpy(p->id, id, WIRE_NODE_ID_BYTES);
    p->state = CONFAB_PEER_KNOWN;
    char sid[9];
    node_short_id(id, sid);
    snprintf(p->name, sizeof p->name, "node-%s", sid);
    size_t mask = n->peers_cap - 1;
    size_t i = id_hash(n, id) & mask;
    while (n->peers[i] != NULL)
        i = (i + 1) & mask;
    n->peers[i] = p;
    n->peers_len++;
    /* Never linked yet: on the learned list, as just heard of. */
    p->heard_ms = node_now_ms(n);
    node_list_add_tail(&n->learned, &p->learned_link);
    n->n_learned++;
    return p;
}

/* Takes p out of the open-addressed table: the entries after it in its
 * run move back into the hole when their home slot allows (so that every
 * lookup still finds them without tombstones). */
static void table_remove(confab_node *n, const node_peer *p)
{
    size_t mask = n->peers_cap - 1;
    size_t i = id_hash(n, p->id) & mask;
    while (n->peers[i] != p)
        i = (i + 1) & mask;
    n->peers[i] = NULL;
    for (size_t j = (i + 1) & mask; n->peers[j] != NULL; j = (j + 1) & mask) {
        size_t home = id_hash(n, n->peers[j]->id) & mask;
        /* May the entry at j move to the hole at i? Only if its home is
         * not in the cyclic range (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        n->peers[i] = n->peers[j];
        n->peers[j] = NULL;
        i = j;
    }
    n->peers_len--;
}

/* A peer never linked may be forgotten only when nothing holds it: no
 * connection points to it (a dial in flight, or one closing), nothing
 * waits to be sent to it or acknowledged by it, the store keeps no stream
 * state for it, and no test hook set its latency. Linked peers are held
 * by anycasts, peer exchange and store waiters: they are never forgotten. */
static bool pinned(const node_peer *p)
{
    return p->linked || p->conn_refs > 0 || p->conn != NULL ||
           p->dialing != NULL || p->switching || p->ob_head != NULL ||
           p->q_head != NULL || p->rx_epoch != 0 || p->tx_epoch != 0 ||
           p->rx_next != 0 || p->ob_base != 0 || p->n_groups > 0 ||
           p->ack_waiting || p->delay_ms > 0;
}

static void peer_forget(confab_node *n, node_peer *p)
{
    table_remove(n, p);
    node_list_del(&p->learned_link);
    n->n_learned--;
    n->peer_ops->forget(n, p);
    free(p->more);
    free(p);
}

node_peer_more *node_peer_more_get(node_peer *p)
{
    if (p->more == NULL)
        p->more = calloc(1, sizeof *p->more);
    return p->more;
}

void node_peer_hold(node_peer *p)
{
    p->conn_refs++;
}

void node_peer_release(node_peer *p)
{
    p->conn_refs--;
}

/* The peer is linked: from now on it stays. */
static void peer_linked(confab_node *n, node_peer *p)
{
    if (p->linked)
        return;
    p->linked = true;
    node_list_del(&p->learned_link);
    n->n_learned--;
}

node_peer *node_peer_learn(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES])
{
    uint64_t now = node_now_ms(n);
    node_peer *p = node_peer_find(n, id);
    if (p != NULL) {
        if (!p->linked) { /* heard again: the newest now */
            p->heard_ms = now;
            node_list_del(&p->learned_link);
            node_list_add_tail(&n->learned, &p->learned_link);
        }
        return p;
    }
    if (n->n_learned >= n->cfg.max_known_peers) {
        /* Full: forget the one heard of longest ago that nothing holds. */
        node_peer *old = NULL;
        for (node_list *e = n->learned.next; e != &n->learned; e = e->next) {
            node_peer *q = node_container_of(e, node_peer, learned_link);
            if (!pinned(q)) {
                old = q;
                break;
            }
        }
        if (old == NULL) {
            n->stats.peers_refused_full++;
            return NULL;
        }
        if (n->stats.peers_evicted++ % 1024u == 0)
            node_log(n, CONFAB_LOG_WARN,
                     "the peer table holds %zu peers never linked "
                     "(max_known_peers): forgetting the oldest to learn a "
                     "new one (%llu so far); a member may be announcing "
                     "made-up peers (if the network really is this large, "
                     "raise max_known_peers)",
                     n->n_learned, (unsigned long long)n->stats.peers_evicted);
        peer_forget(n, old);
    }
    return node_peer_get(n, id);
}

void node_peers_expire(confab_node *n, uint64_t now)
{
    uint64_t ttl = n->cfg.known_peer_ttl_ms;
    node_list *e, *next;
    for (e = n->learned.next; e != &n->learned; e = next) {
        next = e->next;
        node_peer *p = node_container_of(e, node_peer, learned_link);
        if (now - p->heard_ms < ttl)
            break; /* oldest first: the rest were heard later */
        if (pinned(p))
            continue;
        n->stats.peers_expired++;
        peer_forget(n, p);
    }
}

void node_peers_free(confab_node *n)
{
    node_peer *p;
    node_peer_each (n, p) {
        n->peer_ops->forget(n, p);
        free(p->more);
        free(p);
    }
    free(n->peers);
    n->peers = NULL;
    n->peers_cap = n->peers_len = 0;
    node_list_init(&n->learned);
    n->n_learned = 0;
}

/* ---- second-hand dials --------------------------------------------------- */

/* Whether p's address is only someone's word: it was never linked, and
 * this node has no stream with it (none restored from the store, nothing
 * in its outbox). */
static bool second_hand(const node_peer *p)
{
    return !p->linked && p->rx_epoch == 0 && p->tx_epoch == 0 &&
           p->ob_head == NULL;
}

/* A token bucket for dials to peers never linked: their addresses came
 * from a beacon or a PEERS entry, which any member can make up, so that
 * the node cannot be made to dial a victim's address at will. */
static bool dial_token(confab_node *n, uint64_t now)
{
    uint64_t cap = (uint64_t)n->cfg.dial_burst * 1000u;
    if (now > n->dial_refill_ms) {
        uint64_t add = (now - n->dial_refill_ms) * n->cfg.dial_rate;
        n->dial_tokens =
            add >= cap - n->dial_tokens ? cap : n->dial_tokens + add;
        n->dial_refill_ms = now;
    }
    if (n->dial_tokens < 1000u)
        return false;
    n->dial_tokens -= 1000u;
    return true;
}

/* ---- backoff ---------------------------------------------------------- */

void node_backoff_next(confab_node *n, unsigned *backoff_ms,
                       uint64_t *next_dial, uint64_t now)
{
    unsigned b = *backoff_ms;
    if (b == 0)
        b = n->cfg.redial_min_ms;
    else if (b < n->cfg.redial_max_ms / 2)
        b *= 2;
    else
        b = n->cfg.redial_max_ms;
    *backoff_ms = b;
    /* Jitter: wait between half and all of the backoff, so that peers that
     * lost each other at the same moment do not re-dial in lockstep. */
    uint32_t r;
    node_random(n, &r, sizeof r);
    uint64_t half = b / 2;
    *next_dial = now + half + (half ? r % (half + 1) : 0);
}

/* ---- up and down ------------------------------------------------------ */

static void emit_peer(confab_node *n, node_peer *p, confab_event_type type,
                      confab_down_reason why)
{
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.peer = p->id;
    ev.peer_name = p->name;
    ev.reason = why;
    node_emit(n, &ev);
}

static void peer_down(confab_node *n, node_peer *p, confab_down_reason why)
{
    p->state = CONFAB_PEER_DOWN;
    p->down_ms = node_now_ms(n);
    p->switching = false;
    p->ping_token = 0;
    free(p->more); /* its pings are over, its PEERS forgotten */
    p->more = NULL;
    char sid[9];
    node_short_id(p->id, sid);
    node_log(n, CONFAB_LOG_INFO, "peer %s (%s) down", sid, p->name);
    emit_peer(n, p, CONFAB_EV_PEER_DOWN, why);
    n->peer_ops->down(n, p);
    if (p->redial && p->has_addr && n->state == NODE_RUNNING) {
        p->backoff_ms = 0;
        node_backoff_next(n, &p->backoff_ms, &p->next_dial, node_now_ms(n));
    }
}

static const uint8_t *dialer_of(const node_conn *c)
{
    return c->outbound ? c->node->identity->pk : c->peer->id;
}

/* The tie-break of DESIGN.md: of two links between the same pair, both
 * sides keep the one dialed by the smaller node id. Two links dialed by the
 * same side are told apart by their handshake hashes, which both ends
 * share. */
node_conn *node_tie_break(node_conn *a, node_conn *b)
{
    int d = memcmp(dialer_of(a), dialer_of(b), WIRE_NODE_ID_BYTES);
    if (d < 0)
        return a;
    if (d > 0)
        return b;
    return memcmp(a->hs_hash, b->hs_hash, sizeof a->hs_hash) <= 0 ? a : b;
}

static void send_ping(node_conn *c, node_peer *p, uint64_t token,
                      const void *data, size_t len)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PING;
    m.u.ping.n = token;
    if (data != NULL) {
        m.u.ping.has_data = 1;
        m.u.ping.data.ptr = data;
        m.u.ping.data.len = (uint32_t)len;
    }
    if (node_conn_send_ctl(c, &m) == 0) {
        c->node->stats.pings_sent++;
        (void)p;
    }
}

static void liveness_ping(node_conn *c, node_peer *p, uint64_t now)
{
    confab_node *n = c->node;
    p->ping_token = ++n->token_seq;
    p->ping_sent_us = node_mono_us();
    p->ping_sent_ms = now;
    send_ping(c, p, p->ping_token, NULL, 0);
}

int node_peer_established(node_conn *c, const wire_hello *h)
{
    confab_node *n = c->node;
    if (node_peer_blocked(n, c->peer_id))
        return -ECONNREFUSED; /* a test cut this pair */
    node_peer *p = node_peer_get(n, c->peer_id);
    if (p == NULL)
        return -ENOMEM;
    if (c->peer != p) {
        c->peer = p;
        node_peer_hold(p);
    }
    peer_linked(n, p);
    memcpy(p->name, h->name.ptr, h->name.len);
    p->name[h->name.len] = '\0';
    p->boot = h->boot;
    p->max_body = h->max;
    /* Where it accepts links: the address we dialed, the one its beacon
     * names (behind NAT, its source is not), or the address it came from
     * with the port its HELLO names. */
    if (c->outbound) {
        p->addr = c->remote;
        p->has_addr = true;
    } else if (p->advertised && p->has_addr) {
        /* kept: what it asked to be dialed at, and handed on at */
    } else if (h->port != 0) {
        p->addr = c->remote;
        if (p->addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&p->addr)->sin_port = htons(h->port);
        else
            ((struct sockaddr_in6 *)&p->addr)->sin6_port = htons(h->port);
        p->has_addr = true;
    }
    if (c->target != NULL) {
        node_static *s = c->target;
        memcpy(s->id, p->id, WIRE_NODE_ID_BYTES);
        s->has_id = true;
        s->backoff_ms = 0;
        s->fails = 0;
        if (s->dialing == c)
            s->dialing = NULL;
    }
    if (p->dialing == c)
        p->dialing = NULL;
    p->backoff_ms = 0;
    p->next_dial = 0;
    p->grace_deadline = 0;

    char sid[9];
    node_short_id(p->id, sid);
    if (p->conn == NULL) {
        p->conn = c;
        if (p->switching) {
            p->switching = false;
        } else {
            p->state = CONFAB_PEER_UP;
            p->gone = false; /* back after all */
            /* A new link may take another path: the estimate of the old
             * one (perhaps from its last, dying stretch) says nothing of
             * it (RFC 6298 section 5: start afresh). */
            p->srtt_us = 0;
            p->rttvar_us = 0;
            char a[64];
            node_format_addr(&c->remote, a, sizeof a);
            node_log(n, CONFAB_LOG_INFO, "peer %s (%s) up, %s %s", sid, p->name,
                     c->outbound ? "dialed" : "accepted from", a);
            emit_peer(n, p, CONFAB_EV_PEER_UP, 0);
        }
        int rc = n->peer_ops->up(n, p, h);
        if (rc != 0)
            return rc;
    } else {
        n->stats.duplicate_links++;
        node_conn *old = p->conn;
        node_conn *win = node_tie_break(old, c);
        node_conn *lose = win == c ? old : c;
        node_log(n, CONFAB_LOG_DEBUG, "two links to %s: keeping the one %s",
                 sid, win->outbound ? "we dialed" : "it dialed");
        if (win == c) {
            p->conn = c;
            n->peer_ops->relinked(p);
        }
        node_conn_bye(lose, WIRE_BYE_DUPLICATE);
    }
    if (c->state == CONN_UP && p->conn == c)
        liveness_ping(c, p, node_now_ms(n));
    node_conn_mark_dirty(c);
    return 0;
}

void node_peer_conn_lost(node_conn *c, confab_down_reason why)
{
    node_peer *p = c->peer;
    if (p->conn != c)
        return; /* a link that lost the tie-break: nobody noticed it */
    p->conn = NULL;
    c->node->peer_ops->relinked(p);
    if (c->node->state == NODE_STOPPING)
        why = CONFAB_DOWN_STOPPING;
    peer_down(c->node, p, why);
}

void node_peer_bye_received(node_conn *c, uint64_t reason)
{
    node_peer *p = c->peer;
    confab_node *n = c->node;
    if (p == NULL || p->conn != c)
        return;
    p->conn = NULL;
    n->peer_ops->relinked(p);
    if (reason == WIRE_BYE_DUPLICATE) {
        /* The peer kept another link, which has not finished its handshake
         * here yet: wait for it, keeping the queue. */
        p->switching = true;
        p->switch_deadline = node_now_ms(n) + n->cfg.handshake_timeout_ms;
        return;
    }
    peer_down(n, p, CONFAB_DOWN_BYE);
}

void node_peer_dial_failed(node_conn *c)
{
    node_peer *p = c->peer;
    confab_node *n = c->node;
    if (p->dialing == c)
        p->dialing = NULL;
    if (c->target != NULL)
        node_static_dial_failed(c->target);
    else if (n->state == NODE_RUNNING)
        node_backoff_next(n, &p->backoff_ms, &p->next_dial, node_now_ms(n));
}

void node_static_dial_failed(node_static *s)
{
    confab_node *n = s->node;
    s->dialing = NULL;
    if (n->state != NODE_RUNNING)
        return;
    node_backoff_next(n, &s->backoff_ms, &s->next_dial, node_now_ms(n));
    /* A person who gave --peer wants to know it does not answer, without
     * a line per retry: the 1st, 2nd, 4th, 8th... failure in a row. */
    s->fails++;
    if ((s->fails & (s->fails - 1)) == 0)
        node_log(n, CONFAB_LOG_INFO,
                 "static peer %s: no link (%u attempt%s so far); trying "
                 "again in %.1f s; check the address and that a node runs "
                 "there with the same network key",
                 s->host_port, s->fails, s->fails == 1 ? "" : "s",
                 (double)(s->next_dial - node_now_ms(n)) / 1000.0);
}

/* ---- liveness --------------------------------------------------------- */

void node_peer_liveness(node_conn *c, uint64_t now)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    char sid[9];
    if (now - c->t_rx >= n->cfg.peer_timeout_ms) {
        node_short_id(p->id, sid);
        node_log(n, CONFAB_LOG_INFO, "peer %s silent for %u ms", sid,
                 n->cfg.peer_timeout_ms);
        node_conn_abort(c, CONFAB_DOWN_TIMEOUT);
        return;
    }
    /* Alive means reading too (PROTOCOL.md 8.3): a peer that keeps sending
     * but has not answered our PING for as long is not reading what we
     * send, and would hold the link (and whatever we queue for it) for
     * ever. */
    if (p->ping_token != 0 && now - p->ping_sent_ms >= n->cfg.peer_timeout_ms) {
        node_short_id(p->id, sid);
        n->stats.pings_unanswered++;
        node_log(n, CONFAB_LOG_WARN,
                 "cutting the link to %s: it sends but has not answered our "
                 "PING for %u ms, so it does not read what we send",
                 sid, n->cfg.peer_timeout_ms);
        node_conn_abort(c, CONFAB_DOWN_TIMEOUT);
        return;
    }
    if (p->ping_token != 0)
        return;
    /* Ping when nothing came for a ping interval: the node with the
     * smaller id after one interval, the other after two, so that on an
     * idle link one PING and its PONG refresh both ends (both pinging at
     * once doubled the traffic of an idle network). */
    uint64_t iv = n->cfg.ping_interval_ms;
    uint64_t quiet =
        memcmp(n->identity->pk, p->id, WIRE_NODE_ID_BYTES) < 0 ? iv : 2 * iv;
    if (now - c->t_rx >= quiet) {
        liveness_ping(c, p, now);
        return;
    }
    /* Something arrives, but that shows only that it sends: ping every
     * four intervals anyway to see that it reads (PROTOCOL.md 8.3), unless
     * it acknowledged our data meanwhile, which shows that as well. */
    uint64_t last = p->ping_sent_ms;
    if (now - last < 4 * iv)
        return;
    if (p->read_ms > last && now - p->read_ms < 4 * iv) {
        n->stats.pings_spared++;
        p->ping_sent_ms = p->read_ms; /* counts as the last proof */
        return;
    }
    liveness_ping(c, p, now);
}

void node_peer_reads(node_peer *p, uint64_t now)
{
    p->read_ms = now;
}

void node_peer_rtt_sample(node_peer *p, uint64_t r)
{
    /* RFC 6298 smoothing, except after a slow stretch: a sample under a
     * quarter of the estimate means the queue or the outage that made it
     * is over, and eighths would take dozens of pings (minutes) to
     * forget it, while the nearest anycast member is chosen by it. */
    if (p->srtt_us == 0 || r < p->srtt_us / 4) {
        p->srtt_us = r ? r : 1;
        p->rttvar_us = r / 2;
        return;
    }
    uint64_t diff = p->srtt_us > r ? p->srtt_us - r : r - p->srtt_us;
    p->rttvar_us = (3 * p->rttvar_us + diff) / 4;
    p->srtt_us = (7 * p->srtt_us + r) / 8;
    if (p->srtt_us == 0)
        p->srtt_us = 1;
}

int node_peer_on_ping(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    if (m->type == WIRE_T_PING) {
        wire_msg r = *m;
        r.type = WIRE_T_PONG;
        int rc = node_conn_send_ctl(c, &r);
        return rc == -ENOMEM ? rc : 0;
    }
    uint64_t now = node_mono_us();
    if (p->ping_token != 0 && m->u.ping.n == p->ping_token) {
        node_peer_rtt_sample(p, now - p->ping_sent_us);
        p->ping_token = 0;
        return 0;
    }
    for (unsigned i = 0; p->more != NULL && i < NODE_USER_PINGS; i++) {
        node_user_ping *u = &p->more->user_pings[i];
        if (u->token == 0 || u->token != m->u.ping.n)
            continue;
        uint64_t rtt = now - u->sent_us;
        node_peer_rtt_sample(p, rtt);
        u->token = 0;
        n->stats.pongs_received++;
        confab_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = CONFAB_EV_PONG;
        ev.peer = p->id;
        ev.peer_name = p->name;
        ev.token = m->u.ping.n;
        ev.rtt_us = rtt;
        ev.data = m->u.ping.has_data ? m->u.ping.data.ptr : NULL;
        ev.len = m->u.ping.has_data ? m->u.ping.data.len : 0;
        node_emit(n, &ev);
        return 0;
    }
    return 0; /* a PONG nobody waits for any more (the peer may be slow) */
}

int confab_ping(confab_node *n, const uint8_t id[CONFAB_ID_BYTES],
                const void *data, size_t len, uint64_t *token)
{
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    if (len > WIRE_MAX_PING_DATA || (len > 0 && data == NULL))
        return len > WIRE_MAX_PING_DATA ? -EMSGSIZE : -EINVAL;
    node_peer *p = node_peer_find(n, id);
    if (p == NULL)
        return -ESRCH;
    if (!node_peer_up(p))
        return -ENOTCONN;
    node_peer_more *more = node_peer_more_get(p);
    if (more == NULL)
        return -ENOMEM;
    node_user_ping *slot = NULL;
    for (unsigned i = 0; i < NODE_USER_PINGS && slot == NULL; i++)
        if (more->user_pings[i].token == 0)
            slot = &more->user_pings[i];
    if (slot == NULL)
        return -EAGAIN;
    slot->token = ++n->token_seq;
    slot->sent_us = node_mono_us();
    send_ping(p->conn, p, slot->token, data, len);
    if (token != NULL)
        *token = slot->token;
    return 0;
}

/* ---- the tick: switch deadlines and re-dials --------------------------- */

void node_peer_dial_now(confab_node *n, node_peer *p, uint64_t now)
{
    node_conn *c;
    if (!node_allowed(n, p->id))
        return; /* the allow-list refuses it: never dialed */
    if (!node_overlay_may_dial(n, p)) { /* area: scale (#13) */
        p->redial = false; /* past the threshold the overlay picks links */
        p->grace_deadline = 0;
        return;
    }
    if (second_hand(p) && n->handshakes < n->cfg.max_handshakes &&
        !dial_token(n, now)) {
        /* Over the rate: try again once a token has come. */
        n->stats.dials_rate_limited++;
        p->next_dial = now + 1000u / n->cfg.dial_rate + 1u;
        return;
    }
    int rc = node_conn_dial(n, &p->addr, p, NULL, &c);
    if (rc == -EAGAIN)
        return; /* too many handshakes now: the next tick tries again */
    if (rc != 0)
        node_backoff_next(n, &p->backoff_ms, &p->next_dial, now);
}

void node_peer_give_up(confab_node *n, node_peer *p, const char *why)
{
    char sid[9];
    node_short_id(p->id, sid);
    p->gone = true;
    p->redial = false;
    p->grace_deadline = 0;
    n->stats.peers_gone++;
    node_log(n, CONFAB_LOG_INFO,
             "peer %s (%s) %s: no more dials (its beacon or its own dial "
             "brings it back)",
             sid, p->name, why);
}

void node_peer_tick(confab_node *n, node_peer *p, uint64_t now)
{
    /* Down for good: stop dialing it and say so, instead of re-dialing
     * a machine that is gone for ever. */
    if (p->linked && !p->gone && p->conn == NULL && !p->switching &&
        p->dialing == NULL && p->state == CONFAB_PEER_DOWN &&
        now - p->down_ms >= n->cfg.peer_forget_ms)
        node_peer_give_up(n, p, "down too long (peer_forget_ms)");
    if (p->switching && now >= p->switch_deadline) {
        p->switching = false;
        peer_down(n, p, CONFAB_DOWN_CLOSED);
    }
    if (n->state == NODE_RUNNING && p->redial && p->has_addr &&
        p->conn == NULL && !p->switching && p->dialing == NULL &&
        now >= p->next_dial)
        node_peer_dial_now(n, p, now);
    /* The larger id waited for the smaller to dial; nothing came. */
    if (p->grace_deadline != 0 && now >= p->grace_deadline) {
        p->grace_deadline = 0;
        if (p->conn == NULL && !p->switching && p->has_addr) {
            p->redial = true;
            if (p->dialing == NULL && now >= p->next_dial)
                node_peer_dial_now(n, p, now);
        }
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    node_static *s = req->data;
    s->resolving = false;
    if (status == 0 && res != NULL) {
        uint16_t port = s->addr.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&s->addr)->sin6_port
                            : ((struct sockaddr_in *)&s->addr)->sin_port;
        memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
        if (s->addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&s->addr)->sin6_port = port;
        else
            ((struct sockaddr_in *)&s->addr)->sin_port = port;
        s->resolved = true;
    } else if (status != UV_ECANCELED) {
        node_log(s->node, CONFAB_LOG_WARN,
                 "cannot resolve static peer %s: %s; will try again",
                 s->host_port, uv_strerror(status));
        node_backoff_next(s->node, &s->backoff_ms, &s->next_dial,
                          node_now_ms(s->node));
    }
    uv_freeaddrinfo(res);
}

static void static_resolve(confab_node *n, node_static *s)
{
    char host[256];
    uint16_t port;
    if (node_split_host_port(s->host_port, host, sizeof host, &port) != 0)
        return;
    memset(&s->addr, 0, sizeof s->addr);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&s->addr) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&s->addr) == 0) {
        s->resolved = true;
        return;
    }
    /* A host name: resolve it off the loop. The port is kept in s->addr. */
    ((struct sockaddr_in *)&s->addr)->sin_family = AF_INET;
    ((struct sockaddr_in *)&s->addr)->sin_port = htons(port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->gai.data = s;
    if (uv_getaddrinfo(n->loop, &s->gai, on_resolved, host, NULL, &hints) == 0)
        s->resolving = true;
}

void node_statics_tick(confab_node *n, uint64_t now)
{
    if (n->state != NODE_RUNNING)
        return;
    for (size_t i = 0; i < n->n_statics; i++) {
        node_static *s = &n->statics[i];
        if (s->dialing != NULL || s->resolving || now < s->next_dial)
            continue;
        if (s->has_id) {
            node_peer *p = node_peer_find(n, s->id);
            if (p != NULL &&
                (p->conn != NULL || p->switching || p->dialing != NULL)) {
                s->backoff_ms = 0;
                continue;
            }
        }
        if (!s->resolved) {
            static_resolve(n, s);
            if (!s->resolved)
                continue;
        }
        node_conn *c;
        int rc = node_conn_dial(n, &s->addr, NULL, s, &c);
        if (rc != 0 && rc != -EAGAIN)
            node_backoff_next(n, &s->backoff_ms, &s->next_dial, now);
    }
}

/* ---- queries ---------------------------------------------------------- */

void node_peer_info(const node_peer *p, confab_peer_info *info)
{
    memset(info, 0, sizeof *info);
    memcpy(info->id, p->id, WIRE_NODE_ID_BYTES);
    memcpy(info->name, p->name, sizeof info->name);
    if (p->conn != NULL || p->switching)
        info->state = CONFAB_PEER_UP;
    else if (p->dialing != NULL)
        info->state = CONFAB_PEER_CONNECTING;
    else if (p->gone)
        info->state = CONFAB_PEER_GONE;
    else
        info->state = p->state == CONFAB_PEER_UP ? CONFAB_PEER_DOWN : p->state;
    if (p->has_addr)
        node_format_addr(&p->addr, info->address, sizeof info->address);
    info->outbound = p->conn != NULL && p->conn->outbound;
    info->rtt_us = p->srtt_us;
    info->msgs_sent = p->msgs_sent;
    info->msgs_received = p->msgs_received;
    info->bytes_sent = p->bytes_sent;
    info->bytes_received = p->bytes_received;
    info->queued_bytes =
        p->q_bytes + (p->conn != NULL ? node_conn_tx_queued(p->conn) : 0);
    info->outbox_msgs = p->ob_count;
    info->outbox_bytes = p->ob_bytes;
}

void confab_peers(const confab_node *n, confab_peer_info *out, size_t cap,
                  size_t *count)
{
    size_t k = 0;
    const node_peer *p;
    node_peer_each (n, p) {
        if (k < cap)
            node_peer_info(p, &out[k]);
        k++;
    }
    *count = k;
}

int confab_peer(const confab_node *n, const uint8_t id[CONFAB_ID_BYTES],
                confab_peer_info *info)
{
    node_peer *p = node_peer_find(n, id);
    if (p == NULL)
        return -ESRCH;
    node_peer_info(p, info);
    return 0;
}

/* ---- test hooks ------------------------------------------------------- */

unsigned node_blocked_what(const confab_node *n,
                           const uint8_t id[WIRE_NODE_ID_BYTES])
{
    for (size_t i = 0; i < n->n_blocked; i++)
        if (memcmp(n->blocked[i].id, id, WIRE_NODE_ID_BYTES) == 0)
            return n->blocked[i].what;
    return 0;
}

bool node_peer_blocked(const confab_node *n,
                       const uint8_t id[WIRE_NODE_ID_BYTES])
{
    return (node_blocked_what(n, id) & NODE_BLOCK_LINK) != 0;
}

bool node_beacon_blocked(const confab_node *n,
                         const uint8_t id[WIRE_NODE_ID_BYTES])
{
    return (node_blocked_what(n, id) & NODE_BLOCK_BEACON) != 0;
}

int node_block_peer(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                    unsigned what)
{
    size_t i;
    for (i = 0; i < n->n_blocked; i++)
        if (memcmp(n->blocked[i].id, id, WIRE_NODE_ID_BYTES) == 0)
            break;
    if (i == n->n_blocked && what != 0) {
        node_block *b = realloc(n->blocked, (n->n_blocked + 1) * sizeof *b);
        if (b == NULL)
            return -ENOMEM;
        n->blocked = b;
        memcpy(b[i].id, id, WIRE_NODE_ID_BYTES);
        n->n_blocked++;
    }
    if (i < n->n_blocked)
        n->blocked[i].what = what;
    bool cut = (what & NODE_BLOCK_LINK) != 0;
    node_list *e;
    for (e = n->conns.next; e != &n->conns; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->peer != NULL &&
            memcmp(c->peer->id, id, WIRE_NODE_ID_BYTES) == 0 &&
            (c->state == CONN_UP || c->state == CONN_DRAINING))
            node_conn_pause(c, cut);
    }
    return 0;
}

int node_reset_peer(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES])
{
    node_peer *p = node_peer_find(n, id);
    if (p == NULL || p->conn == NULL)
        return -ENOTCONN;
    node_conn_reset(p->conn);
    return 0;
}

int node_set_peer_delay(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                        unsigned ms)
{
    node_peer *p = node_peer_get(n, id);
    if (p == NULL)
        return -ENOMEM;
    p->delay_ms = ms;
    return 0;
}

/* ---- the link's hooks (node_link_ops) ---------------------------------- */

void node_peer_link_dialing(node_conn *c)
{
    node_peer *expect = c->peer;
    if (expect != NULL) {
        memcpy(c->expect_id, expect->id, sizeof c->expect_id);
        c->has_expect_id = true;
        node_peer_hold(expect);
        expect->dialing = c;
    }
    if (c->target != NULL)
        c->target->dialing = c;
}

void node_peer_link_ended(node_conn *c, node_conn_state was,
                          confab_down_reason why)
{
    if (c->target != NULL && c->target->dialing == c)
        c->target->dialing = NULL;
    if (c->peer != NULL && c->peer->dialing == c)
        c->peer->dialing = NULL;
    if (c->peer != NULL && (was == CONN_UP || was == CONN_DRAINING))
        node_peer_conn_lost(c, why);
    else if (c->peer != NULL && was != CONN_UP)
        node_peer_dial_failed(c);
    else if (c->target != NULL)
        node_static_dial_failed(c->target);
}

void node_peer_link_freed(node_conn *c)
{
    /* A link closed by the BYE exchange never went through an abort,
     * which is where these are cleared. */
    if (c->peer != NULL && c->peer->conn == c)
        c->peer->conn = NULL;
    if (c->peer != NULL && c->peer->dialing == c)
        c->peer->dialing = NULL;
    if (c->target != NULL && c->target->dialing == c)
        c->target->dialing = NULL;
    if (c->peer != NULL)
        node_peer_release(c->peer); /* the table may forget it now */
}

void node_peer_link_tick(node_conn *c, uint64_t now)
{
    if (c->peer != NULL && c->peer->conn == c)
        node_peer_liveness(c, now);
}

void node_peer_link_resumed(node_conn *c)
{
    /* The wait for the answer to a PING sent before the cut does not
     * count against the peer. */
    if (c->peer != NULL && c->peer->conn == c && c->peer->ping_token)
        c->peer->ping_sent_ms = c->t_rx;
}

void node_peer_link_counted(node_conn *c, size_t sent, size_t received)
{
    if (c->peer != NULL) {
        c->peer->bytes_sent += sent;
        c->peer->bytes_received += received;
    }
}

bool node_peer_link_more(const node_conn *c)
{
    return c->peer != NULL && c->peer->q_head != NULL;
}

unsigned node_peer_link_delay_ms(const node_conn *c)
{
    return c->peer != NULL ? c->peer->delay_ms : 0;
}
