/* Layer messaging (node/LAYERS).
 * delivery.c: unicast that loses nothing (docs/PROTOCOL.md section 12).
 *
 * Sender: every accepted unicast goes into the peer's outbox and stays
 * there until the peer acknowledges it or its time to live runs out. Its
 * sequence number is its place in that stream: the last seq the peer
 * acknowledged (ob_base) plus its position in the outbox. The outbox is
 * sent again, from its head, whenever a link to the peer comes up, and
 * again when an acknowledgement is overdue on a live link (go-back-N). An
 * expired message keeps its place and is sent as a place-holder (DATA with
 * `skip`), so it never blocks the ones behind it.
 *
 * Receiver: delivers seq rx_next and nothing else: a lower one is a
 * duplicate, a higher one comes after a gap the sender will fill. Each
 * read ends with one cumulative ACK, sent once what was delivered is
 * durable in the store.
 *
 * Epochs: each node's delivery state has an identity (its epoch, drawn
 * when the state is made) that it announces in its HELLO. A peer whose
 * epoch changed lost its state: a sender numbers its stream to it from 1
 * again, and a receiver expects 1 from it again.
 *
 * With a home directory every step is a record in the store, and nothing
 * is sent before its record is durable, so kill -9 loses nothing that was
 * accepted or acknowledged.
 *
 * Damage to a store (docs/ARCHITECTURE.md, "What damage costs") never
 * leaves a stream stuck: a loss that can shift the numbering draws a new
 * epoch (node_delivery_state_lost); a receiver whose state was rolled
 * back keeps acknowledging below our base, and we number the rest from
 * its ACK (rebase); a sender rolled back gets an ACK covering what it
 * never sent, and numbers the rest after it (ack_beyond). A restarted
 * stream drops by id what the inbox still holds of the old one. */
#include "node/messaging/messaging.h"

#include <sodium.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_RTO_MS 1000u
#define LOW_ACK_FORGET_MS                                                      \
    30000u                /* ACKs below the base this far apart are            \
                             not one rollback */
#define SEEN_WINDOW 4096u /* anycast ids remembered */
#define CHECK_SLACK                                                            \
    4096u /* unicasts checked by id after a restart, beyond                    \
             the unread ones */

static void emit_lost(confab_node *n);

/* The one place the send TTL's default lives (confab_send_opts: 0 means
 * 24 hours), for unicasts and anycasts alike. */
#define DEFAULT_TTL_MS ((uint64_t)24 * 3600 * 1000)

uint64_t node_send_ttl_us(const confab_send_opts *opts)
{
    uint64_t ms = opts != NULL && opts->ttl_ms ? opts->ttl_ms : DEFAULT_TTL_MS;
    return ms * 1000u;
}

static size_t outbox_max(const confab_node *n)
{
    return n->cfg.outbox_bytes;
}

/* ---- records ---------------------------------------------------------- */

/* Appends a record; ref is the id of the message it is about, if any
 * (the store keeps it readable when the body is damaged). */
static int put(confab_node *n, uint8_t type, const uint8_t *ref,
               const uint8_t *rec, size_t len)
{
    if (n->store == NULL)
        return 0;
    return node_store_append_ref(n->store, type, ref, rec, len);
}

static int rec_epoch(confab_node *n, uint8_t *buf, size_t cap, size_t *len)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 1);
    wire_mp_write_cstr(&w, "e");
    wire_mp_write_uint(&w, n->epoch);
    return wire_mp_writer_finish(&w, len);
}

/* {peer: bin32, a: uint[, b: uint]}: TX (a epoch, b base), RX (a epoch, b
 * next), OUT_ACK (a seq). */
static int rec_peer(const node_peer *p, uint64_t a, const uint64_t *b,
                    uint8_t *buf, size_t cap, size_t *len)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, b ? 3 : 2);
    wire_mp_write_cstr(&w, "p");
    wire_mp_write_bin(&w, p->id, WIRE_NODE_ID_BYTES);
    wire_mp_write_cstr(&w, "a");
    wire_mp_write_uint(&w, a);
    if (b != NULL) {
        wire_mp_write_cstr(&w, "b");
        wire_mp_write_uint(&w, *b);
    }
    return wire_mp_writer_finish(&w, len);
}

static void put_peer(confab_node *n, uint8_t type, const node_peer *p,
                     uint64_t a, const uint64_t *b, const uint8_t *ref)
{
    uint8_t buf[96];
    size_t len;
    if (n->store != NULL && rec_peer(p, a, b, buf, sizeof buf, &len) == 0)
        (void)put(n, type, ref, buf, len);
}

static int rec_id(const uint8_t *id, uint8_t *buf, size_t cap, size_t *len)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 1);
    wire_mp_write_cstr(&w, "id");
    wire_mp_write_bin(&w, id, WIRE_ID_BYTES);
    return wire_mp_writer_finish(&w, len);
}

/* OUT_PUT or ANY_PUT: a whole message. to is NULL for an anycast. */
static uint8_t *rec_message(const node_body *b, const uint8_t *to,
                            uint64_t expires, size_t *len)
{
    size_t cap = 256 + b->len + b->group_len + b->ct_len;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 5 + (to != NULL) + (b->group_len > 0) + b->has_ct);
    wire_mp_write_cstr(&w, "id");
    wire_mp_write_bin(&w, b->id, WIRE_ID_BYTES);
    if (to != NULL) {
        wire_mp_write_cstr(&w, "to");
        wire_mp_write_bin(&w, to, WIRE_NODE_ID_BYTES);
    }
    if (b->group_len > 0) {
        wire_mp_write_cstr(&w, "g");
        wire_mp_write_str(&w, b->group, b->group_len);
    }
    if (b->has_ct) {
        wire_mp_write_cstr(&w, "ct");
        wire_mp_write_str(&w, b->ct, b->ct_len);
    }
    wire_mp_write_cstr(&w, "ts");
    wire_mp_write_uint(&w, b->ts);
    wire_mp_write_cstr(&w, "exp");
    wire_mp_write_uint(&w, expires);
    wire_mp_write_cstr(&w, "body");
    wire_mp_write_bin(&w, b->bytes, b->len);
    wire_mp_write_cstr(&w, "v");
    wire_mp_write_uint(&w, 1);
    if (wire_mp_writer_finish(&w, len) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- sending ---------------------------------------------------------- */

/* CONFAB_EV_SEND: the unicast o to p was delivered, or expired. */
static void emit_outcome(confab_node *n, const node_peer *p, const node_out *o,
                         confab_send_status st)
{
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CONFAB_EV_SEND;
    ev.peer = p->id;
    ev.peer_name = p->name;
    ev.msg_id = o->body->id;
    ev.status = st;
    /* Delivered: the ACK being read says it; routed.c sets rx_hops while
     * it hands up an opened envelope, and a link's ACK crossed one. */
    if (st == CONFAB_DELIVERED)
        ev.hops = n->rx_hops != 0 ? n->rx_hops : 1;
    node_emit(n, &ev);
}

static void outbox_push(confab_node *n, node_peer *p, node_out *o)
{
    o->ob_next = NULL;
    if (p->ob_tail != NULL)
        p->ob_tail->ob_next = o;
    else
        p->ob_head = o;
    p->ob_tail = o;
    p->ob_count++;
    p->ob_bytes += o->body->len + NODE_MSG_OVERHEAD;
    n->ob_total += o->body->len + NODE_MSG_OVERHEAD;
    n->ob_msgs++;
    o->in_outbox = true;
    o->seq = p->ob_base + p->ob_count;
    o->owner = p;
    if (!o->skip && node_timerq_arm(&n->ob_expiry, &o->expiry, o->expires) != 0)
        n->ob_expiry_walk = true; /* the tick walks every outbox */
}

static node_out *outbox_pop(confab_node *n, node_peer *p)
{
    node_out *o = p->ob_head;
    p->ob_head = o->ob_next;
    if (p->ob_head == NULL)
        p->ob_tail = NULL;
    p->ob_count--;
    p->ob_bytes -= o->body->len + NODE_MSG_OVERHEAD;
    n->ob_total -= o->body->len + NODE_MSG_OVERHEAD;
    n->ob_msgs--;
    o->in_outbox = false;
    o->ob_next = NULL;
    node_timerq_disarm(&n->ob_expiry, &o->expiry);
    return o;
}

/* Numbers p's outbox from base + 1 (its epoch or its base changed). */
static void renumber(node_peer *p, uint64_t base)
{
    p->ob_base = base;
    uint64_t seq = base;
    for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
        o->seq = ++seq;
}

/* The outbox entry of p with this id, or NULL. */
static node_out *outbox_find(node_peer *p, const uint8_t *id)
{
    for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
        if (memcmp(o->body->id, id, WIRE_ID_BYTES) == 0)
            return o;
    return NULL;
}

bool node_delivery_ready(const confab_node *n, const node_out *o)
{
    return n->store == NULL || o->gen <= node_store_gen_synced(n->store);
}

/* A store sync completed: what it made durable may go out. */
static void lanes_durable(confab_node *n, void *arg)
{
    (void)arg;
    n->durable_waiting = false;
    node_peer *p;
    node_peer_each (n, p) {
        if (p->q_head != NULL)
            node_lane_kick(n, p);
    }
}

static void wait_durable(confab_node *n)
{
    if (n->store != NULL && !n->durable_waiting &&
        node_store_when_durable(n->store, lanes_durable, NULL) == 0)
        n->durable_waiting =
            !node_store_failed(n->store) &&
            node_store_gen_synced(n->store) < node_store_gen_written(n->store);
}

int confab_node_when_durable(confab_node *n,
                             void (*cb)(confab_node *node, void *user),
                             void *user)
{
    if (n->store == NULL) {
        cb(n, user);
        return 0;
    }
    return node_store_when_durable(n->store, cb, user) == 0 ? 0 : -EIO;
}

int confab_send(confab_node *n, const uint8_t to[CONFAB_ID_BYTES],
                const void *body, size_t len, const confab_send_opts *opts,
                uint8_t msg_id[CONFAB_MSG_ID_BYTES])
{
    size_t ct_len;
    if (to == NULL || (body == NULL && len > 0))
        return -EINVAL;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    int rc = node_check_opts(opts, &ct_len);
    if (rc != 0)
        return rc;
    if (len > n->cfg.max_message)
        return -EMSGSIZE;
    node_peer *p = node_peer_find(n, to);
    if (p == NULL)
        return -ESRCH;
    if (p->max_body != 0 && len > p->max_body)
        return -EMSGSIZE;
    if (n->store != NULL && node_store_failed(n->store))
        return -EIO;
    if (p->ob_count > 0 &&
        p->ob_bytes + len + NODE_MSG_OVERHEAD > n->cfg.send_queue_bytes) {
        p->want_writable = true;
        n->stats.sends_refused_full++;
        return -EAGAIN;
    }
    if (n->ob_total + len + NODE_MSG_OVERHEAD > outbox_max(n))
        return -ENOBUFS;
    node_body *b = node_body_new(n, WIRE_K_UNICAST, NULL, opts, body, len);
    if (b == NULL)
        return -ENOMEM;
    node_out *o = node_out_new(b, 0);
    if (o == NULL) {
        free(b);
        return -ENOMEM;
    }
    o->expires = b->ts + node_send_ttl_us(opts);
    if (n->store != NULL) {
        size_t rlen;
        uint8_t *rec = rec_message(b, p->id, o->expires, &rlen);
        rc = rec ? put(n, NODE_REC_OUT_PUT, b->id, rec, rlen) : -ENOMEM;
        free(rec);
        if (rc != 0) {
            node_out_release(o); /* never queued */
            return rc == -ENOMEM ? rc : -EIO;
        }
        o->gen = node_store_gen_written(n->store);
        wait_durable(n);
    }
    outbox_push(n, p, o);
    if (msg_id != NULL)
        memcpy(msg_id, b->id, CONFAB_MSG_ID_BYTES);
    if (node_peer_linked(p)) {
        node_lane_push(p, o);
    } else if (node_routed_ready(n, p)) { /* no link, a route (routed.c) */
        if (!o->in_lane)
            node_lane_push(p, o);
        node_lane_kick(n, p);
    }
    return 0;
}

void node_delivery_sent(node_peer *p, node_out *o, uint64_t now)
{
    (void)p;
    o->sent_ms = now ? now : 1;
}

/* Puts every outbox entry not already in the lane back in it, in order:
 * after a new link, or when an acknowledgement is overdue. */
static void resend(confab_node *n, node_peer *p)
{
    for (node_out *o = p->ob_head; o != NULL; o = o->ob_next) {
        if (o->in_lane)
            continue;
        if (o->sent_ms != 0)
            n->stats.retransmits++;
        o->off = 0;
        node_lane_push(p, o);
    }
    node_lane_kick(n, p);
}

/* Sends the cumulative ACK of what was delivered, if it moved. */
static void send_ack(confab_node *n, node_peer *p)
{
    uint64_t s = p->rx_next ? p->rx_next - 1 : 0;
    if (s == p->rx_acked && s != 0)
        return;
    if (!node_peer_up(p) && node_route_find(n, p->id) == NULL)
        return; /* neither a link nor a route */
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    m.u.ack.has_seq = 1;
    m.u.ack.seq = s;
    if (node_peer_send_ctl(n, p, &m) == 0)
        p->rx_acked = s;
}

void node_delivery_link_up(confab_node *n, node_peer *p, uint64_t epoch)
{
    if (p->rx_epoch != epoch) {
        /* It lost its state, or we never heard from it: a new stream.
         * What it sends again may include unicasts we delivered and it
         * never saw acknowledged: those the inbox holds are dropped. */
        if (p->rx_epoch != 0 || p->rx_check_left != 0) {
            /* What comes again is what the sender had not seen
             * acknowledged: at most the unread ones and those read in
             * the meantime, which a bound on the checks covers (each
             * check walks the inbox). */
            p->rx_check_left =
                n->inbox != NULL ? confab_inbox_count(n) + CHECK_SLACK : 0;
            p->rx_check_below = node_inbox_serial(n);
        }
        p->rx_epoch = epoch;
        p->rx_next = 1;
        p->rx_acked = 0;
        uint64_t next = 1;
        put_peer(n, NODE_REC_RX, p, epoch, &next, NULL);
    }
    if (p->tx_epoch != epoch) {
        /* It forgot our stream: number the outbox from 1 again. */
        p->tx_epoch = epoch;
        renumber(p, 0);
        uint64_t base = 0;
        put_peer(n, NODE_REC_TX, p, epoch, &base, NULL);
    }
    if (n->store != NULL)
        node_store_sync(n->store);
    p->low_ack_ms = 0;
    resend(n, p);
    /* Tell it where we are, so that it drops what we have at once. */
    p->rx_acked = UINT64_MAX;
    send_ack(n, p);
}

/* ACKs below our base (which moves only with its ACKs) that keep coming
 * mean it lost delivery state it had acknowledged (its store was cut or
 * restored from a copy) and now expects seq + 1: we number what it has
 * not acknowledged from there, instead of sending seqs it would drop as
 * after a gap for ever (docs/PROTOCOL.md 12.2). */
static void rebase(confab_node *n, node_peer *p, uint64_t seq)
{
    char sid[9];
    node_short_id(p->id, sid);
    node_log(n, CONFAB_LOG_WARN,
             "peer %s acknowledges up to %llu, below the %llu it had "
             "acknowledged: it lost part of its delivery state; the %zu "
             "unicasts it has not acknowledged are numbered from %llu",
             sid, (unsigned long long)seq, (unsigned long long)p->ob_base,
             p->ob_count, (unsigned long long)seq + 1);
    n->stats.delivery_rebased++;
    renumber(p, seq);
    uint64_t base = seq;
    put_peer(n, NODE_REC_TX, p, p->tx_epoch, &base, NULL);
    for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
        o->sent_ms = 0; /* what went out went with the old numbers */
}

/* Every unicast up to seq s was delivered: out of the outbox, reported;
 * but never one accepted in this run and never sent (gen set, sent_ms
 * not): an ACK cannot cover that one, and the caller sees it stayed. */
static void pop_through(confab_node *n, node_peer *p, uint64_t s)
{
    const uint8_t *last = NULL;
    uint8_t last_id[WIRE_ID_BYTES];
    while (p->ob_head != NULL && p->ob_head->seq <= s &&
           (p->ob_head->gen == 0 || p->ob_head->sent_ms != 0)) {
        node_out *o = outbox_pop(n, p);
        /* The base moves with each entry, before the event: its callback
         * may send again, and new numbers come from base + count. */
        p->ob_base = o->seq;
        memcpy(last_id, o->body->id, WIRE_ID_BYTES);
        last = last_id;
        if (!o->skip) {
            emit_outcome(n, p, o, CONFAB_DELIVERED);
        }
        node_out_release(o);
    }
    if (last == NULL)
        return;
    /* With the id of the last one acknowledged: replay pops by it, so a
     * lost OUT_PUT before it cannot make it pop one too many. */
    put_peer(n, NODE_REC_OUT_ACK, p, p->ob_base, NULL, last);
}

/* It acknowledges s, and we have nothing it can have had up to s (an
 * entry there was never sent, or the outbox ends before): our store lost
 * records of unicasts it delivered (it was cut, or restored from a copy),
 * so our numbers are behind its. What is left is numbered after s, where
 * it expects it, instead of being dropped there as duplicates and
 * reported delivered (docs/PROTOCOL.md 12.2). */
static void ack_beyond(confab_node *n, node_peer *p, uint64_t s)
{
    char sid[9];
    node_short_id(p->id, sid);
    n->stats.delivery_rebased++;
    /* Logged at the 1st, 2nd, 4th, ... time: a peer cannot flood the log
     * with ACKs. */
    if ((n->stats.delivery_rebased & (n->stats.delivery_rebased - 1)) == 0)
        node_log(n, CONFAB_LOG_WARN,
                 "peer %s acknowledges up to %llu, beyond what this node "
                 "sent it (%llu): this node lost records of unicasts it "
                 "sent; the stream goes on from %llu",
                 sid, (unsigned long long)s, (unsigned long long)p->ob_base,
                 (unsigned long long)s + 1);
    renumber(p, s);
    uint64_t base = s;
    put_peer(n, NODE_REC_TX, p, p->tx_epoch, &base, NULL);
    for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
        o->sent_ms = 0; /* what went out went with the old numbers */
}

int node_delivery_on_ack(node_conn *c, const wire_ack *a)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    if (!a->has_seq)
        return 0; /* only an anycast's, handled apart */
    uint64_t s = a->seq;
    bool renumbered = false;
    if (s < p->ob_base) {
        /* Below what it acknowledged before: late, from a link being
         * replaced, or it lost state. Only the second kind keeps coming
         * (it drops what we send as after a gap, and says so again):
         * rebase once such ACKs have kept coming for a retransmission
         * timeout with none at or above the base between them. */
        uint64_t now = node_now_ms(n) + 1; /* never 0 */
        if (p->low_ack_ms == 0 || now < p->low_ack_ms ||
            now - p->low_ack_ms > LOW_ACK_FORGET_MS)
            p->low_ack_ms = now; /* the first, or a lone one long ago */
        if (now - p->low_ack_ms < MIN_RTO_MS)
            return 0;
        p->low_ack_ms = 0;
        rebase(n, p, s);
        renumbered = true;
    } else {
        p->low_ack_ms = 0;
        if (s == p->ob_base || s - p->ob_base > (uint64_t)1 << 40)
            return 0; /* nothing new, or not a count anyone reaches */
        /* Acknowledging data that went out shows that the peer reads
         * (its liveness PING can wait, peer.c); an ACK of nothing new, or
         * of what was never sent, shows nothing. */
        bool read = p->ob_head != NULL && p->ob_head->sent_ms != 0 &&
                    p->ob_head->seq <= s;
        uint64_t before = p->ob_base;
        pop_through(n, p, s);
        if (read && p->ob_base > before)
            node_peer_reads(p, node_now_ms(n));
        if (s > p->ob_base) {
            ack_beyond(n, p, s);
            renumbered = true;
        }
    }
    if (renumbered && (p->conn != NULL || node_route_find(n, p->id) != NULL))
        resend(n, p); /* out again at once, with the new numbers */
    if (p->want_writable && p->ob_bytes <= n->cfg.send_queue_bytes / 2) {
        p->want_writable = false;
        confab_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = CONFAB_EV_WRITABLE;
        ev.peer = p->id;
        ev.peer_name = p->name;
        node_emit(n, &ev);
    }
    return 0;
}

/* ---- receiving -------------------------------------------------------- */

int node_delivery_accept(node_conn *c, const wire_data *d)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    if (p->rx_next == 0)
        p->rx_next = 1;
    if (d->seq < p->rx_next) {
        n->stats.duplicates_dropped++;
        p->rx_acked = UINT64_MAX; /* acknowledge again */
        return 0;
    }
    if (d->seq > p->rx_next) {
        n->stats.out_of_order_dropped++;
        p->rx_acked = UINT64_MAX;
        return 0;
    }
    if (p->rx_check_left != 0 && !d->skip) {
        /* The stream restarted: a unicast delivered under the old one
         * and still unread comes again if its ACK never reached the
         * sender. It takes its place in the stream, and is not
         * delivered twice. */
        int held = node_inbox_holds(n, p->id, d->id, p->rx_check_below);
        p->rx_check_left--;
        if (held < 0)
            p->rx_check_left = 0; /* nothing of the old stream unread */
        if (held > 0) {
            n->stats.duplicates_dropped++;
            p->rx_next++;
            p->rx_dirty = true;
            return 0;
        }
    }
    if (d->skip) {
        p->rx_next++;
        p->rx_dirty = true;
        return 0;
    }
    return 1;
}

void node_delivery_delivered(node_conn *c, const wire_data *d)
{
    node_peer *p = c->peer;
    (void)d;
    p->rx_next++;
    p->rx_dirty = true;
}

static void ack_when_durable(confab_node *n, void *arg)
{
    node_peer *p = arg;
    p->ack_waiting = false;
    send_ack(n, p);
}

void node_delivery_read_done(node_conn *c)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    if (p == NULL || c->state != CONN_UP)
        return;
    if (p->rx_dirty) {
        p->rx_dirty = false;
        uint64_t next = p->rx_next;
        put_peer(n, NODE_REC_RX, p, p->rx_epoch, &next, NULL);
    }
    uint64_t s = p->rx_next ? p->rx_next - 1 : 0;
    if (s == p->rx_acked || p->ack_waiting)
        return;
    if (n->store == NULL) {
        send_ack(n, p);
        return;
    }
    /* Nothing is acknowledged before it is on disk. */
    p->ack_waiting = true;
    if (node_store_when_durable(n->store, ack_when_durable, p) != 0)
        p->ack_waiting = false;
}

/* Remembers an anycast id delivered here, in the ring of the last
 * SEEN_WINDOW. The ring (64 KiB) is made at the first anycast: most nodes
 * never get one. */
static int seen_add(confab_node *n, const uint8_t id[WIRE_ID_BYTES])
{
    if (n->seen == NULL) {
        n->seen = calloc(SEEN_WINDOW, sizeof *n->seen);
        if (n->seen == NULL)
            return -ENOMEM;
    }
    memcpy(n->seen[n->seen_next], id, WIRE_ID_BYTES);
    n->seen_next = (n->seen_next + 1) % SEEN_WINDOW;
    if (n->seen_len < SEEN_WINDOW)
        n->seen_len++;
    return 0;
}

int node_delivery_anycast_new(confab_node *n, const uint8_t id[WIRE_ID_BYTES])
{
    for (size_t i = 0; i < n->seen_len; i++)
        if (memcmp(n->seen[i], id, WIRE_ID_BYTES) == 0) {
            n->stats.duplicates_dropped++;
            return 0;
        }
    if (seen_add(n, id) != 0)
        return -ENOMEM; /* not delivered, not acknowledged: sent again */
    uint8_t buf[32];
    size_t len;
    if (n->store != NULL && rec_id(id, buf, sizeof buf, &len) == 0)
        (void)put(n, NODE_REC_ANY_SEEN, id, buf, len);
    return 1;
}

/* Broadcasts and multicasts are delivered at most once (PROTOCOL.md
 * 12.6): each sender's last NODE_BCAST_WINDOW ids, a ring of 1 KiB made at
 * the first one it sends (most peers never broadcast), kept as long as
 * the peer. Per sender, so that one member's flood cannot push another's
 * ids out; a linear scan, as 64 ids are 1 KiB. */
static bool bcast_known(const node_bseen *w, const uint8_t id[WIRE_ID_BYTES])
{
    for (uint32_t i = 0; i < w->len; i++)
        if (memcmp(w->ids[i], id, WIRE_ID_BYTES) == 0)
            return true;
    return false;
}

int node_delivery_bcast_new(confab_node *n, node_peer *p,
                            const uint8_t id[WIRE_ID_BYTES])
{
    if (p->bseen == NULL) {
        p->bseen = calloc(1, sizeof *p->bseen);
        if (p->bseen == NULL)
            return -ENOMEM;
    }
    if (bcast_known(p->bseen, id)) {
        n->stats.bcast_repeats_dropped++;
        return 0;
    }
    return 1;
}

void node_delivery_bcast_seen(node_peer *p, const uint8_t id[WIRE_ID_BYTES])
{
    node_bseen *w = p->bseen;
    if (w == NULL)
        return; /* not reached: node_delivery_bcast_new made it */
    memcpy(w->ids[w->next], id, WIRE_ID_BYTES);
    w->next = (w->next + 1) % NODE_BCAST_WINDOW;
    if (w->len < NODE_BCAST_WINDOW)
        w->len++;
}

void node_delivery_peer_free(node_peer *p)
{
    free(p->bseen);
    p->bseen = NULL;
}

/* ---- time to live and overdue acknowledgements ------------------------ */

/* Expired: it keeps its place, and goes as a place-holder. */
static void expire(confab_node *n, node_peer *p, node_out *o)
{
    o->skip = true;
    node_timerq_disarm(&n->ob_expiry, &o->expiry);
    n->stats.expired++;
    uint8_t buf[32];
    size_t len;
    if (n->store != NULL && rec_id(o->body->id, buf, sizeof buf, &len) == 0)
        (void)put(n, NODE_REC_OUT_EXPIRE, o->body->id, buf, len);
    emit_outcome(n, p, o, CONFAB_EXPIRED);
}

/* The expired entries: those due on n->ob_expiry, or every outbox walked
 * when an entry could not be armed there. */
static void expire_due(confab_node *n, uint64_t wall)
{
    node_timer *t;
    while (!n->ob_expiry_walk &&
           (t = node_timerq_pop_due(&n->ob_expiry, wall)) != NULL) {
        node_out *o = node_container_of(t, node_out, expiry);
        expire(n, o->owner, o);
    }
    if (!n->ob_expiry_walk)
        return;
    node_peer *p;
    node_peer_each (n, p)
        for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
            if (!o->skip && wall >= o->expires)
                expire(n, p, o);
    /* Armed again from scratch, now that memory may be back. */
    node_timerq_free(&n->ob_expiry);
    n->ob_expiry_walk = false;
    node_peer_each (n, p)
        for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
            if (!o->skip &&
                node_timerq_arm(&n->ob_expiry, &o->expiry, o->expires) != 0)
                n->ob_expiry_walk = true;
}

void node_delivery_tick(confab_node *n, uint64_t now)
{
    uint64_t wall = node_clock_us(n);
    if (n->n_lost_ids > 0)
        emit_lost(n);
    expire_due(n, wall);
    node_peer *p;
    node_peer_each (n, p) {
        if (p->ob_head == NULL)
            continue;
        /* An acknowledgement overdue on a live link: something after a
         * gap was dropped; send everything unacknowledged again. */
        node_out *h = p->ob_head;
        uint64_t rto = 4 * p->srtt_us / 1000u;
        if (rto < MIN_RTO_MS)
            rto = MIN_RTO_MS;
        bool path = node_peer_up(p) || node_route_find(n, p->id) != NULL;
        if (h != NULL && !h->in_lane && h->sent_ms != 0 && path &&
            now - h->sent_ms >= rto)
            resend(n, p); /* over its link or its route */
    }
}

/* ---- the outbox, for a person (the first hour, #14) --------------------- */

size_t confab_queued_list(const confab_node *n, confab_queued *out, size_t cap)
{
    size_t k = 0;
    node_peer *p;
    node_peer_each (n, p) {
        for (node_out *o = p->ob_head; o != NULL; o = o->ob_next) {
            if (o->skip)
                continue;
            if (k < cap) {
                memcpy(out[k].id, o->body->id, CONFAB_MSG_ID_BYTES);
                memcpy(out[k].to, p->id, CONFAB_ID_BYTES);
                out[k].len = o->body->len;
                out[k].expires_us = o->expires;
                out[k].sent = o->sent_ms != 0;
            }
            k++;
        }
    }
    return k;
}

int confab_queued_cancel(confab_node *n, const uint8_t id[CONFAB_MSG_ID_BYTES])
{
    node_peer *p;
    node_peer_each (n, p) {
        for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
            if (!o->skip && memcmp(o->body->id, id, CONFAB_MSG_ID_BYTES) == 0) {
                expire(n, p, o);
                return 0;
            }
    }
    return -ENOENT;
}

/* ---- the store -------------------------------------------------------- */

int node_delivery_init(confab_node *n)
{
    if (n->home == NULL)
        node_random(n, &n->epoch, sizeof n->epoch); /* state of this run */
    return 0;
}

void node_delivery_free(confab_node *n)
{
    free(n->seen);
    n->seen = NULL;
    free(n->lost_ids);
    n->lost_ids = NULL;
    n->n_lost_ids = 0;
    node_fault_free(n); /* the test hook on the store's writes */
    node_timerq_free(&n->ob_expiry);
    sodium_memzero(n->msgid_key, sizeof n->msgid_key); /* data.c's ids */
}

int node_delivery_state_lost(confab_node *n)
{
    /* Both directions restart: every peer numbers its stream to us from
     * 1 again (it sees the new epoch), so we expect 1 from each; and it
     * expects 1 from us, so we number ours from 1 again (docs/PROTOCOL.md
     * 12.1). What is in the outboxes is sent again. */
    uint64_t old = n->epoch;
    do
        node_random(n, &n->epoch, sizeof n->epoch);
    while (n->epoch == 0 || n->epoch == old);
    node_peer *p;
    node_peer_each (n, p) {
        p->rx_check_left = p->rx_epoch != 0; /* made a bound at link up */
        p->rx_epoch = 0;
        p->rx_next = 1;
        p->rx_acked = 0;
        p->tx_epoch = 0;
        renumber(p, 0);
    }
    node_log(n, CONFAB_LOG_WARN,
             "the store lost part of this node's delivery state: it starts "
             "a new epoch, so every peer restarts its stream to it and it "
             "sends its unacknowledged unicasts again");
    n->stats.store_epoch_restarts++;
    uint8_t buf[32];
    size_t len;
    int rc = rec_epoch(n, buf, sizeof buf, &len);
    if (rc == 0)
        rc = put(n, NODE_REC_EPOCH, NULL, buf, len);
    return rc;
}

void node_delivery_report_lost(confab_node *n, const uint8_t *id)
{
    /* Reported at the first tick, when the program listens. */
    void *l = realloc(n->lost_ids, (n->n_lost_ids + 1) * sizeof *n->lost_ids);
    if (l == NULL)
        return;
    n->lost_ids = l;
    memcpy(n->lost_ids[n->n_lost_ids++], id, WIRE_ID_BYTES);
}

/* CONFAB_EV_SEND FAILED for each accepted unicast the store lost: its
 * destination is unknown (it was in the damaged body), its id is not. */
static void emit_lost(confab_node *n)
{
    for (size_t i = 0; i < n->n_lost_ids; i++) {
        bool gone = true;
        node_peer *p;
        node_peer_each (n, p)
            if (outbox_find(p, n->lost_ids[i]) != NULL) {
                gone = false;
                break;
            }
        if (!gone)
            continue; /* another record of it survived */
        char hex[2 * WIRE_ID_BYTES + 1];
        for (size_t k = 0; k < WIRE_ID_BYTES; k++)
            snprintf(hex + 2 * k, 3, "%02x", n->lost_ids[i][k]);
        node_log(n, CONFAB_LOG_WARN,
                 "unicast %s was accepted but its record in the store was "
                 "damaged: it is reported failed (send it again)",
                 hex);
        confab_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = CONFAB_EV_SEND;
        ev.msg_id = n->lost_ids[i];
        ev.status = CONFAB_FAILED;
        node_emit(n, &ev);
    }
    free(n->lost_ids);
    n->lost_ids = NULL;
    n->n_lost_ids = 0;
}

int node_delivery_loaded(confab_node *n)
{
    if (n->epoch != 0)
        return 0;
    /* A new store: its state gets an identity of its own. */
    while (n->epoch == 0)
        node_random(n, &n->epoch, sizeof n->epoch);
    uint8_t buf[32];
    size_t len;
    int rc = rec_epoch(n, buf, sizeof buf, &len);
    if (rc == 0)
        rc = put(n, NODE_REC_EPOCH, NULL, buf, len);
    if (rc == 0)
        node_store_sync(n->store);
    return rc;
}

/* Reads the fields of a delivery record (one shape serves them all). */
typedef struct rec_fields {
    wire_bytes p, id, to, g, ct, body;
    uint64_t a, b, e, ts, exp;
    bool has_b, has_ct;
} rec_fields;

static int read_fields(const uint8_t *buf, size_t len, rec_fields *f)
{
    memset(f, 0, sizeof *f);
    if (wire_mp_check(buf, len, 1) != 0)
        return -EPROTO;
    wire_mp_reader r;
    uint32_t count;
    wire_mp_reader_init(&r, buf, len);
    if (wire_mp_read_map(&r, &count) != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint32_t kl;
        int rc;
        if (wire_mp_read_str(&r, &k, &kl) != 0)
            return -EPROTO;
#define IS(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
        if (IS("p"))
            rc = wire_mp_read_bin(&r, &f->p.ptr, &f->p.len);
        else if (IS("id"))
            rc = wire_mp_read_bin(&r, &f->id.ptr, &f->id.len);
        else if (IS("to"))
            rc = wire_mp_read_bin(&r, &f->to.ptr, &f->to.len);
        else if (IS("g"))
            rc = wire_mp_read_str(&r, &f->g.ptr, &f->g.len);
        else if (IS("ct"))
            rc = wire_mp_read_str(&r, &f->ct.ptr, &f->ct.len), f->has_ct = 1;
        else if (IS("body"))
            rc = wire_mp_read_bin(&r, &f->body.ptr, &f->body.len);
        else if (IS("a"))
            rc = wire_mp_read_uint(&r, &f->a);
        else if (IS("b"))
            rc = wire_mp_read_uint(&r, &f->b), f->has_b = true;
        else if (IS("e"))
            rc = wire_mp_read_uint(&r, &f->e);
        else if (IS("ts"))
            rc = wire_mp_read_uint(&r, &f->ts);
        else if (IS("exp"))
            rc = wire_mp_read_uint(&r, &f->exp);
        else
            rc = wire_mp_skip(&r);
#undef IS
        if (rc != 0)
            return -EPROTO;
    }
    return 0;
}

static node_peer *record_peer(confab_node *n, const wire_bytes *id)
{
    if (id->len != WIRE_NODE_ID_BYTES)
        return NULL;
    return node_peer_get(n, id->ptr);
}

/* Rebuilds a message body from an OUT_PUT or ANY_PUT record. */
static node_body *record_body(confab_node *n, const rec_fields *f, uint8_t kind)
{
    if (f->id.len != WIRE_ID_BYTES || f->g.len > WIRE_MAX_GROUP ||
        f->ct.len > WIRE_MAX_CT || f->body.len > n->cfg.max_message)
        return NULL;
    char group[WIRE_MAX_GROUP + 1], ct[WIRE_MAX_CT + 1];
    memcpy(group, f->g.ptr ? (const char *)f->g.ptr : "", f->g.len);
    group[f->g.len] = '\0';
    memcpy(ct, f->ct.ptr ? (const char *)f->ct.ptr : "", f->ct.len);
    ct[f->ct.len] = '\0';
    confab_send_opts o = {.content_type = f->has_ct ? ct : NULL};
    node_body *b = node_body_new(n, kind, f->g.len ? group : NULL, &o,
                                 f->body.ptr, f->body.len);
    if (b != NULL) {
        memcpy(b->id, f->id.ptr, WIRE_ID_BYTES);
        b->ts = f->ts;
    }
    return b;
}

static bool ref_set(const uint8_t *ref)
{
    static const uint8_t zero[WIRE_ID_BYTES];
    return ref != NULL && memcmp(ref, zero, WIRE_ID_BYTES) != 0;
}

int node_delivery_replay(confab_node *n, uint8_t type, const uint8_t *ref,
                         const uint8_t *buf, size_t len)
{
    rec_fields f;
    if (read_fields(buf, len, &f) != 0)
        return -EPROTO;
    node_peer *p;
    switch (type) {
    case NODE_REC_EPOCH:
        n->epoch = f.e;
        return 0;
    case NODE_REC_OUT_PUT: {
        if ((p = record_peer(n, &f.to)) == NULL)
            return -EPROTO;
        node_body *b = record_body(n, &f, WIRE_K_UNICAST);
        node_out *o = b ? node_out_new(b, 0) : NULL;
        if (o == NULL) {
            free(b);
            return -EPROTO;
        }
        o->expires = f.exp;
        outbox_push(n, p, o);
        return 0;
    }
    case NODE_REC_OUT_ACK: {
        if ((p = record_peer(n, &f.p)) == NULL)
            return -EPROTO;
        /* By the id of the last one it acknowledged, when the record has
         * it: numbers are positions, and a lost OUT_PUT before it would
         * shift them. */
        node_out *last = ref_set(ref) ? outbox_find(p, ref) : NULL;
        if (last != NULL) {
            node_out *o;
            do {
                o = outbox_pop(n, p);
                node_out_release(o);
            } while (o != last);
        } else if (!ref_set(ref)) {
            while (p->ob_head != NULL && p->ob_head->seq <= f.a)
                node_out_release(outbox_pop(n, p));
        }
        /* (An id not in the outbox: its OUT_PUT was lost; nothing is
         * popped by a number that may be shifted. What stays is sent
         * again under a new epoch, and the receiver drops it by id.) */
        if (f.a > p->ob_base)
            p->ob_base = f.a;
        return 0;
    }
    case NODE_REC_OUT_EXPIRE:
        if (f.id.len != WIRE_ID_BYTES)
            return -EPROTO;
        node_peer_each (n, p)
            for (node_out *o = p->ob_head; o != NULL; o = o->ob_next)
                if (memcmp(o->body->id, f.id.ptr, WIRE_ID_BYTES) == 0) {
                    o->skip = true;
                    node_timerq_disarm(&n->ob_expiry, &o->expiry);
                }
        return 0;
    case NODE_REC_TX: {
        if ((p = record_peer(n, &f.p)) == NULL || !f.has_b)
            return -EPROTO;
        p->tx_epoch = f.a;
        renumber(p, f.b);
        return 0;
    }
    case NODE_REC_RX:
        if ((p = record_peer(n, &f.p)) == NULL || !f.has_b)
            return -EPROTO;
        p->rx_epoch = f.a;
        p->rx_next = f.b;
        p->rx_acked = f.b ? f.b - 1 : 0;
        return 0;
    case NODE_REC_ANY_PUT: {
        node_body *b = record_body(n, &f, WIRE_K_ANYCAST);
        if (b == NULL || f.g.len == 0) {
            free(b);
            return -EPROTO;
        }
        return node_groups_anycast_restore(n, b, f.exp);
    }
    case NODE_REC_ANY_DONE:
        if (f.id.len != WIRE_ID_BYTES)
            return -EPROTO;
        node_groups_anycast_forget(n, f.id.ptr);
        return 0;
    case NODE_REC_ANY_SEEN:
        if (f.id.len != WIRE_ID_BYTES)
            return -EPROTO;
        return seen_add(n, f.id.ptr);
    default:
        n->stats.store_records_unknown++;
        return 0;
    }
}

int node_delivery_dump(confab_node *n, int fd)
{
    uint8_t buf[128];
    size_t len;
    int rc = rec_epoch(n, buf, sizeof buf, &len);
    if (rc == 0)
        rc = node_store_dump_put(fd, NODE_REC_EPOCH, buf, len);
    node_peer *p;
    node_peer_each (n, p) {
        if (rc != 0)
            break;
        if (p->rx_epoch != 0 && rc == 0) {
            uint64_t next = p->rx_next;
            rc = rec_peer(p, p->rx_epoch, &next, buf, sizeof buf, &len);
            if (rc == 0)
                rc = node_store_dump_put(fd, NODE_REC_RX, buf, len);
        }
        if (p->ob_head == NULL && p->tx_epoch == 0)
            continue;
        uint64_t base = p->ob_base;
        rc = rec_peer(p, p->tx_epoch, &base, buf, sizeof buf, &len);
        if (rc == 0)
            rc = node_store_dump_put(fd, NODE_REC_TX, buf, len);
        for (node_out *o = p->ob_head; rc == 0 && o != NULL; o = o->ob_next) {
            size_t rl;
            uint8_t *rec = rec_message(o->body, p->id, o->expires, &rl);
            rc = rec ? node_store_dump_put_ref(n->store, fd, NODE_REC_OUT_PUT,
                                               o->body->id, rec, rl)
                     : -ENOMEM;
            free(rec);
            if (rc == 0 && o->skip &&
                rec_id(o->body->id, buf, sizeof buf, &len) == 0)
                rc = node_store_dump_put_ref(n->store, fd, NODE_REC_OUT_EXPIRE,
                                             o->body->id, buf, len);
        }
    }
    for (size_t i = 0; rc == 0 && i < n->seen_len; i++) {
        size_t k = (n->seen_next + SEEN_WINDOW - n->seen_len + i) % SEEN_WINDOW;
        rc = rec_id(n->seen[k], buf, sizeof buf, &len);
        if (rc == 0)
            rc = node_store_dump_put_ref(n->store, fd, NODE_REC_ANY_SEEN,
                                         n->seen[k], buf, len);
    }
    if (rc == 0)
        rc = node_groups_anycast_dump(n, fd);
    return rc;
}

/* Used by groups.c to keep its anycasts in the store. */
int node_delivery_put_anycast(confab_node *n, const node_body *b,
                              uint64_t expires)
{
    if (n->store == NULL)
        return 0;
    size_t len;
    uint8_t *rec = rec_message(b, NULL, expires, &len);
    int rc = rec ? put(n, NODE_REC_ANY_PUT, b->id, rec, len) : -ENOMEM;
    free(rec);
    if (rc == 0)
        node_store_sync(n->store);
    return rc;
}

void node_delivery_anycast_done(confab_node *n, const uint8_t *id)
{
    uint8_t buf[32];
    size_t len;
    if (n->store != NULL && rec_id(id, buf, sizeof buf, &len) == 0)
        (void)put(n, NODE_REC_ANY_DONE, id, buf, len);
}

int node_delivery_dump_anycast(int fd, const node_body *b, uint64_t expires)
{
    size_t len;
    uint8_t *rec = rec_message(b, NULL, expires, &len);
    int rc = rec ? node_store_dump_put_ref(NULL, fd, NODE_REC_ANY_PUT, b->id,
                                           rec, len)
                 : -ENOMEM;
    free(rec);
    return rc;
}
