/* Layer messaging (node/LAYERS).
 * data.c: application messages: the send calls, each peer's data lane
 * (framed lazily so a large body is fragmented as the socket drains, and
 * control frames never wait behind it), send outcomes, and the receive
 * side with reassembly of fragmented bodies. */
#include "node/messaging/messaging.h"

#include "node/peers/overlay.h" /* area: scale (#13) */
#include "wire/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- bodies and queue entries ----------------------------------------- */

void node_body_unref(node_body *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

static void out_free(node_out *o)
{
    node_body *b = o->body;
    if (o != &b->own)
        free(o);
    node_body_unref(b);
}

/* The one release path of a queue entry: it is freed once it is in
 * neither the data lane nor the outbox (a unicast is in both). */
void node_out_release(node_out *o)
{
    if (!o->in_lane && !o->in_outbox)
        out_free(o);
}

int node_check_opts(const confab_send_opts *opts, size_t *ct_len)
{
    *ct_len = 0;
    if (opts == NULL || opts->content_type == NULL)
        return 0;
    size_t len = strlen(opts->content_type);
    if (len > WIRE_MAX_CT)
        return -EMSGSIZE;
    if (!wire_utf8_valid((const uint8_t *)opts->content_type, len))
        return -EINVAL;
    *ct_len = len;
    return 0;
}

/* A new message id: a keyed PRF of a counter, so a send costs no draw
 * from the system's random source (#18) and ids stay unpredictable to
 * anyone without the key (an ACK by id cannot be forged blindly). A new
 * key each run: ids of two runs do not repeat either. */
static void msg_id(confab_node *n, uint8_t id[WIRE_ID_BYTES])
{
    if (n->msgid_next == 0) {
        node_random(n, n->msgid_key, sizeof n->msgid_key);
        n->msgid_next = 1;
    }
    sec_id128(n->msgid_key, n->msgid_next++, id);
}

/* A message's timestamp: the wall clock read once per loop turn (#18),
 * so a burst of sends from one callback shares one reading; a timestamp
 * is then behind by at most what the turn has taken so far. */
static uint64_t send_clock(confab_node *n)
{
    uint64_t turn = node_now_ms(n); /* the loop's time: once per turn */
    if (!n->send_clock_valid || n->send_clock_turn != turn) {
        n->send_clock_us = node_clock_us(n);
        n->send_clock_turn = turn;
        n->send_clock_valid = true;
    }
    return n->send_clock_us;
}

node_body *node_body_new(confab_node *n, uint8_t kind, const char *group,
                         const confab_send_opts *opts, const void *data,
                         size_t len)
{
    size_t ct_len = 0, gl = group != NULL ? strlen(group) : 0;
    if (opts != NULL && opts->content_type != NULL)
        ct_len = strlen(opts->content_type);
    node_body *b = malloc(sizeof *b + len + gl + 1 + ct_len + 1);
    if (b == NULL)
        return NULL;
    b->refs = 0;
    b->own_used = false;
    msg_id(n, b->id);
    b->kind = kind;
    b->ts = send_clock(n);
    b->len = len;
    if (len > 0)
        memcpy(b->bytes, data, len);
    char *g = (char *)b->bytes + len;
    if (gl > 0)
        memcpy(g, group, gl);
    g[gl] = '\0';
    b->group = g;
    b->group_len = (uint8_t)gl;
    char *ct = g + gl + 1;
    b->has_ct = opts != NULL && opts->content_type != NULL;
    if (ct_len > 0)
        memcpy(ct, opts->content_type, ct_len);
    ct[ct_len] = '\0';
    b->ct = ct;
    b->ct_len = (uint8_t)ct_len;
    return b;
}

node_out *node_out_new(node_body *b, uint64_t seq)
{
    node_out *o;
    if (!b->own_used) {
        o = &b->own;
        b->own_used = true;
    } else if ((o = malloc(sizeof *o)) == NULL) {
        return NULL;
    }
    memset(o, 0, sizeof *o);
    o->body = b;
    b->refs++;
    o->seq = seq;
    return o;
}

static size_t peer_queued(const node_peer *p)
{
    return p->q_bytes + (p->conn != NULL ? node_conn_tx_queued(p->conn) : 0);
}

/* A send is accepted when the queue is empty (so any message within the
 * size limit can go) or when it fits under the bound. */
bool node_peer_has_room(const confab_node *n, const node_peer *p, size_t len)
{
    size_t q = peer_queued(p);
    return q == 0 || q + len + NODE_MSG_OVERHEAD <= n->cfg.send_queue_bytes;
}

void node_lane_push(node_peer *p, node_out *o)
{
    o->next = NULL;
    o->in_lane = true;
    if (p->q_tail != NULL)
        p->q_tail->next = o;
    else
        p->q_head = o;
    p->q_tail = o;
    p->q_bytes += o->body->len + NODE_MSG_OVERHEAD;
    if (p->conn != NULL)
        node_conn_mark_dirty(p->conn);
}

void node_lane_kick(confab_node *n, node_peer *p)
{
    if (p->conn != NULL) {
        node_conn_mark_dirty(p->conn);
        return;
    }
    /* No link: its next hop's link pulls it (routed.c). */
    if (n->routing == NULL || p->q_head == NULL)
        return;
    node_peer *h = node_route_next_hop(n, p->id);
    if (h != NULL)
        node_conn_mark_dirty(h->conn);
}

bool node_peer_linked(const node_peer *p)
{
    return node_peer_up(p) || p->switching;
}

int node_enqueue(node_peer *p, node_body *b, uint64_t seq)
{
    node_out *o = node_out_new(b, seq);
    if (o == NULL)
        return -ENOMEM;
    node_lane_push(p, o);
    return 0;
}

/* ---- sending ---------------------------------------------------------- */

int confab_broadcast(confab_node *n, const void *body, size_t len,
                     const confab_send_opts *opts,
                     uint8_t msg_id[CONFAB_MSG_ID_BYTES], size_t *n_sent)
{
    size_t ct_len, sent = 0;
    if (body == NULL && len > 0)
        return -EINVAL;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    int rc = node_check_opts(opts, &ct_len);
    if (rc != 0)
        return rc;
    if (len > n->cfg.max_message)
        return -EMSGSIZE;
    node_body *b = node_body_new(n, WIRE_K_BROADCAST, NULL, opts, body, len);
    if (b == NULL)
        return -ENOMEM;
    b->refs = 1; /* held by this call until the loop ends */
    /* area: scale (#13): past the threshold, over the overlay's tree */
    rc = node_gossip_broadcast(n, b, &sent);
    if (rc != -ENOTSUP)
        goto done;
    rc = 0;
    node_peer *p;
    node_peer_each (n, p) {
        if (!node_peer_linked(p) || len > p->max_body)
            continue;
        if (!node_peer_has_room(n, p, len)) {
            p->want_writable = true;
            n->stats.sends_refused_full++;
            continue;
        }
        rc = node_enqueue(p, b, ++p->seq_multi);
        if (rc != 0)
            break;
        sent++;
    }
    if (rc == 0)
        sent += node_routed_broadcast(n, b); /* routing (#12) */
done:
    if (msg_id != NULL)
        memcpy(msg_id, b->id, CONFAB_MSG_ID_BYTES);
    node_body_unref(b);
    if (n_sent != NULL)
        *n_sent = sent;
    return rc;
}

/* ---- the data lane ---------------------------------------------------- */

static void fill_data(wire_msg *m, const node_out *o, size_t chunk)
{
    const node_body *b = o->body;
    memset(m, 0, sizeof *m);
    m->type = WIRE_T_DATA;
    wire_data *d = &m->u.data;
    memcpy(d->id, b->id, WIRE_ID_BYTES);
    d->kind = b->kind;
    d->seq = o->seq;
    d->ts = b->ts;
    d->group.ptr = (const uint8_t *)b->group;
    d->group.len = b->group_len;
    d->has_ct = b->has_ct;
    d->ct.ptr = (const uint8_t *)b->ct;
    d->ct.len = b->ct_len;
    d->body.ptr = b->bytes;
    d->body.len = (uint32_t)chunk;
    d->fragmented = chunk < b->len;
    d->size = b->len;
    if (o->skip) { /* an expired unicast: its place, without its body */
        d->skip = 1;
        d->body.len = 0;
        d->fragmented = 0;
        d->size = 0;
        d->has_ct = 0;
    }
}

/* Whether c is the established link of its peer, the one its lane
 * leaves on. */
static bool lane_link(const node_conn *c)
{
    return c->peer != NULL && c->peer->conn == c && c->state == CONN_UP;
}

bool node_data_pull(node_conn *c, node_frame *f)
{
    if (!lane_link(c))
        return false;
    c->node->route_pulled = NULL;
    if (node_lane_pull(c->node, c->peer, f, WIRE_MAX_PLAINTEXT))
        return true;
    return node_routed_pull(c, f); /* the lanes it relays (routed.c) */
}

bool node_lane_pull(confab_node *n, node_peer *p, node_frame *f, size_t max)
{
    while (p->q_head != NULL) {
        node_out *o = p->q_head;
        const node_body *b = o->body;
        bool unicast = b->kind == WIRE_K_UNICAST;
        if (unicast && !o->in_outbox) {
            /* Acknowledged while it waited (after a re-send): drop it. */
            p->q_head = o->next;
            if (p->q_head == NULL)
                p->q_tail = NULL;
            p->q_bytes -= b->len + NODE_MSG_OVERHEAD;
            o->in_lane = false;
            node_out_release(o);
            continue;
        }
        if (unicast && o->off == 0 && !node_delivery_ready(n, o))
            return false; /* its record is not durable yet: nothing after */
        wire_msg *m = &f->m;
        size_t chunk, bound;
        if (o->skip) {
            chunk = 0;
            fill_data(m, o, 0);
            bound = wire_data_bound(0, 0, 0);
        } else if (o->off == 0) {
            size_t room = max - wire_data_bound(b->group_len, b->ct_len, 0);
            chunk = b->len < room ? b->len : room;
            fill_data(m, o, chunk);
            bound = wire_data_bound(b->group_len, b->ct_len, chunk);
        } else {
            size_t room = max - WIRE_FRAG_OVERHEAD;
            chunk = b->len - o->off < room ? b->len - o->off : room;
            memset(m, 0, sizeof *m);
            m->type = WIRE_T_FRAG;
            memcpy(m->u.frag.id, b->id, WIRE_ID_BYTES);
            m->u.frag.off = o->off;
            m->u.frag.data.ptr = b->bytes + o->off;
            m->u.frag.data.len = (uint32_t)chunk;
            bound = WIRE_FRAG_OVERHEAD + chunk;
        }
        f->bound = bound;
        f->bulk = p->q_bytes > NODE_TXBUF_SMALL;
        f->chunk = chunk;
        return true;
    }
    return false;
}

void node_data_pushed(node_conn *c, const node_frame *f)
{
    confab_node *n = c->node;
    node_peer *p = n->route_pulled != NULL ? n->route_pulled : c->peer;
    n->route_pulled = NULL;
    node_lane_pushed(n, p, f);
}

void node_lane_pushed(confab_node *n, node_peer *p, const node_frame *f)
{
    node_out *o = p->q_head; /* the one node_lane_pull framed */
    const node_body *b = o->body;
    bool unicast = b->kind == WIRE_K_UNICAST;
    o->off += f->chunk;
    if (o->off < b->len && !o->skip)
        return;
    p->q_head = o->next;
    if (p->q_head == NULL)
        p->q_tail = NULL;
    o->next = NULL;
    o->in_lane = false;
    p->q_bytes -= b->len + NODE_MSG_OVERHEAD;
    p->msgs_sent++;
    n->stats.msgs_sent++;
    if (n->observer.sent != NULL && !o->skip) /* the web page */
        n->observer.sent(n, p->id, b->kind, b->id, b->group, n->observer.user);
    if (unicast)
        node_delivery_sent(p, o, node_now_ms(n)); /* kept till its ACK */
    else
        node_out_release(o);
}

void node_data_pulled(node_conn *c)
{
    node_peer *p = c->peer;
    confab_node *n = c->node;
    if (!lane_link(c))
        return;
    /* Unicasts make room by being acknowledged (delivery.c); this is for
     * broadcasts and shouts, which leave once they are framed. */
    if (p->want_writable && p->ob_count == 0 &&
        peer_queued(p) <= n->cfg.send_queue_bytes / 2) {
        p->want_writable = false;
        confab_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = CONFAB_EV_WRITABLE;
        ev.peer = p->id;
        ev.peer_name = p->name;
        node_emit(n, &ev);
    }
}

void node_data_drop_lane(confab_node *n, node_peer *p)
{
    (void)n;
    node_out *o = p->q_head;
    p->q_head = p->q_tail = NULL;
    p->q_bytes = 0;
    while (o != NULL) {
        node_out *next = o->next;
        o->next = NULL;
        o->in_lane = false;
        o->off = 0;
        /* A unicast stays in the outbox for the next link; anything else
         * (best effort, or an anycast, which groups.c moves on) goes. */
        if (!o->in_outbox)
            node_out_release(o);
        o = next;
    }
}

void node_data_relink(node_peer *p)
{
    /* A body cut between fragments starts again on the next link: the
     * receiver dropped the part it had when the old link closed. */
    if (p->q_head != NULL && p->q_head->off < p->q_head->body->len)
        p->q_head->off = 0;
}

/* ---- receiving -------------------------------------------------------- */

static void copy_str(char *dst, const wire_bytes *s)
{
    if (s->len > 0)
        memcpy(dst, s->ptr, s->len);
    dst[s->len] = '\0';
}

/* The member that takes an anycast says so, by id, once that is durable. */
typedef struct any_ack {
    node_peer *peer;
    uint8_t id[WIRE_ID_BYTES];
} any_ack;

static void send_any_ack(confab_node *n, void *arg)
{
    any_ack *a = arg;
    node_peer *p = a->peer;
    (void)n;
    if (node_peer_up(p)) {
        wire_msg ack;
        memset(&ack, 0, sizeof ack);
        ack.type = WIRE_T_ACK;
        ack.u.ack.has_id = 1;
        memcpy(ack.u.ack.id, a->id, WIRE_ID_BYTES);
        (void)node_conn_send_ctl(p->conn, &ack);
    }
    free(a);
}

static void ack_anycast(node_conn *c, const uint8_t id[WIRE_ID_BYTES])
{
    any_ack *a = malloc(sizeof *a);
    if (a == NULL)
        return; /* no ACK: the sender moves on to another member */
    a->peer = c->peer;
    memcpy(a->id, id, WIRE_ID_BYTES);
    if (c->node->store == NULL) {
        send_any_ack(c->node, a);
    } else if (node_store_when_durable(c->node->store, send_any_ack, a) != 0) {
        free(a);
    }
}

static void deliver(node_conn *c, const wire_data *d, const char *group,
                    const char *ct, const uint8_t *body, size_t len)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    /* A group message for a group we are not in (we left, and the sender
     * did not know yet) is dropped: non-members never see one. */
    if ((d->kind == WIRE_K_GROUP || d->kind == WIRE_K_ANYCAST) &&
        (group == NULL || !confab_is_member(n, group))) {
        n->stats.group_msgs_dropped++;
        return;
    }
    /* Requests and replies go to request.c, not to the inbox: they are
     * acknowledged once handed over, like any unicast. */
    if (d->kind == WIRE_K_UNICAST && node_request_is(ct)) {
        if (!node_delivery_accept(c, d))
            return;
        p->msgs_received++;
        n->stats.msgs_received++;
        node_delivery_delivered(c, d);
        node_request_on_data(n, p, ct, body, len);
        return;
    }
    /* No room in the inbox: not delivered, not acknowledged; the sender
     * keeps it and sends it again (best-effort kinds are lost). */
    if (n->inbox != NULL && !node_inbox_has_room(n, len)) {
        n->stats.inbox_refused_full++;
        return;
    }
    if (d->kind == WIRE_K_UNICAST && !node_delivery_accept(c, d))
        return; /* a duplicate, ahead of a gap, or a place-holder */
    bool bcast = d->kind == WIRE_K_BROADCAST || d->kind == WIRE_K_GROUP;
    if (bcast && node_delivery_bcast_new(n, p, d->id) != 1)
        return; /* a repeat, or no memory to remember it: best effort */
    if (d->kind == WIRE_K_ANYCAST) {
        int fresh = node_delivery_anycast_new(n, d->id);
        if (fresh < 0)
            return; /* no memory to remember it: not taken, sent again */
        if (fresh == 0) {
            ack_anycast(c, d->id); /* delivered before; say so again */
            return;
        }
    }
    confab_message msg;
    memcpy(msg.id, d->id, sizeof msg.id);
    msg.from = p->id;
    msg.from_name = p->name;
    msg.kind = (confab_kind)d->kind;
    msg.group = group;
    msg.seq = d->seq;
    msg.ts_us = d->ts;
    msg.content_type = ct;
    msg.body = body;
    msg.len = len;
    msg.hops = n->rx_hops != 0 ? n->rx_hops : 1; /* routed.c sets it */
    p->msgs_received++;
    n->stats.msgs_received++;
    if (n->inbox != NULL && node_inbox_put(n, &msg, p->rx_epoch) != 0)
        return; /* the store failed: not delivered, not acknowledged */
    if (d->kind == WIRE_K_UNICAST)
        node_delivery_delivered(c, d);
    if (bcast)
        node_delivery_bcast_seen(p, d->id);
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CONFAB_EV_MESSAGE;
    ev.peer = p->id;
    ev.peer_name = p->name;
    ev.message = &msg;
    node_emit(n, &ev);
    if (d->kind == WIRE_K_ANYCAST)
        ack_anycast(c, d->id);
}

/* ---- reassembly and its node-wide bound ------------------------------- */

#define RATE_MIN_MS 1000u /* a body's rate counts at least this long */

/* A fragmented body is allocated at its announced size when its first
 * part arrives, and counted at that size against cfg.reassembly_bytes,
 * for all links together: one partial body per link is the protocol's
 * limit, but links are as many as identities a member cares to make.
 *
 * At the bound the slowest bodies give way: those that received the
 * fewest bytes per second since they began, the newcomer included, where
 * a body younger than a second counts as a second old. So a young body is
 * measured by what it received (a first part and nothing more is slow,
 * however new), an old one by its average rate; ties go against the
 * newcomer. A body that gives way is dropped, not its link: the rest of
 * its fragments are read and thrown away and it is not delivered. A
 * unicast then comes again from the sender's outbox (its ACK never came),
 * an anycast goes to another member, a broadcast or multicast is lost
 * (best effort). So memory held without sending (the attack: a first
 * part announcing 16 MiB, then nothing) loses its room to a sender that
 * is sending, and a sender waits only for others that send faster. */

static double body_rate(const node_conn *c, uint64_t now)
{
    uint64_t age = now - c->rx_big_t0;
    if (age < RATE_MIN_MS)
        age = RATE_MIN_MS;
    return (double)c->rx_big_len / (double)age;
}

static void reasm_release(confab_node *n, size_t size)
{
    n->stats.reasm_bytes -= size;
}

/* Drops v's body (it gave way, or there was no memory for it). */
static void reasm_drop(node_conn *v, const char *why)
{
    confab_node *n = v->node;
    char sid[9] = "?";
    if (v->peer != NULL)
        node_short_id(v->peer->id, sid);
    n->stats.reasm_dropped++;
    node_log(n, CONFAB_LOG_WARN,
             "dropping a %zu-byte message from %s in reassembly (%zu bytes "
             "of it arrived): %s; a unicast is sent again, a broadcast is "
             "lost (raise reassembly_bytes if this is normal traffic)",
             v->rx_big_size, sid, v->rx_big_len, why);
    if (v->rx_big != NULL) {
        reasm_release(n, v->rx_big_size);
        free(v->rx_big);
        v->rx_big = NULL;
    }
}

/* The body in reassembly (other than on c, which is the newcomer) that
 * gives way first, or c itself when all the others are faster. */
static node_conn *slowest_body(confab_node *n, node_conn *c, uint64_t now)
{
    node_conn *slow = c;
    double r = body_rate(c, now);
    for (node_list *e = n->conns.next; e != &n->conns; e = e->next) {
        node_conn *o = node_container_of(e, node_conn, link);
        if (o == c || o->rx_big == NULL)
            continue;
        double ro = body_rate(o, now);
        if (ro < r) {
            slow = o;
            r = ro;
        }
    }
    return slow;
}

/* Makes room for c's new body of c->rx_big_size bytes. False when c's
 * body is the one that gives way. */
static bool reasm_admit(node_conn *c, uint64_t now)
{
    confab_node *n = c->node;
    size_t bound = n->cfg.reassembly_bytes;
    while (n->stats.reasm_bytes > bound ||
           c->rx_big_size > bound - n->stats.reasm_bytes) {
        node_conn *v = slowest_body(n, c, now);
        if (v == c)
            return false;
        reasm_drop(v, "the bodies in reassembly reached reassembly_bytes; "
                      "it was the slowest");
    }
    return true;
}

void node_data_reasm_free(node_conn *c)
{
    if (c->rx_big != NULL) {
        reasm_release(c->node, c->rx_big_size);
        free(c->rx_big);
        c->rx_big = NULL;
    }
    c->rx_big_size = 0;
    c->rx_big_len = 0;
}

/* The first part of a fragmented body. */
static int begin_body(node_conn *c, const wire_data *d)
{
    confab_node *n = c->node;
    /* One fragmented body at a time per link, within what we told the
     * peer we accept. */
    if (c->rx_big_size != 0 || d->size > n->cfg.max_message)
        return -EPROTO;
    uint64_t now = node_now_ms(n);
    c->rx_big_size = d->size;
    c->rx_big_len = d->body.len;
    c->rx_big_t0 = now;
    c->rx_big_hdr = *d;
    copy_str(c->rx_big_group, &d->group);
    c->rx_big_hdr.has_ct = d->has_ct;
    if (d->has_ct)
        copy_str(c->rx_big_ct, &d->ct);
    /* A repeat broadcast needs no room: it will not be delivered. */
    bool bcast = d->kind == WIRE_K_BROADCAST || d->kind == WIRE_K_GROUP;
    if (bcast && c->peer->bseen != NULL &&
        node_delivery_bcast_new(n, c->peer, d->id) == 0)
        return 0;
    if (!reasm_admit(c, now)) {
        reasm_drop(c, "the bodies in reassembly are at reassembly_bytes "
                      "and arrive faster");
        return 0;
    }
    c->rx_big = malloc(d->size);
    if (c->rx_big == NULL) {
        reasm_drop(c, "no memory");
        return 0;
    }
    memcpy(c->rx_big, d->body.ptr, d->body.len);
    n->stats.reasm_bytes += d->size;
    if (n->stats.reasm_bytes > n->stats.reasm_peak)
        n->stats.reasm_peak = n->stats.reasm_bytes;
    return 0;
}

static int on_data(node_conn *c, const wire_data *d)
{
    if (d->fragmented)
        return begin_body(c, d);
    char group[WIRE_MAX_GROUP + 1], ct[WIRE_MAX_CT + 1];
    copy_str(group, &d->group);
    if (d->has_ct)
        copy_str(ct, &d->ct);
    deliver(c, d, d->group.len ? group : NULL, d->has_ct ? ct : NULL,
            d->body.ptr, d->body.len);
    return 0;
}

static int on_frag(node_conn *c, const wire_frag *f)
{
    if (c->rx_big_size == 0 ||
        memcmp(f->id, c->rx_big_hdr.id, WIRE_ID_BYTES) != 0 ||
        f->off != c->rx_big_len || f->data.len > c->rx_big_size - c->rx_big_len)
        return -EPROTO; /* out of order, or more than it announced */
    /* A large fragment may already be in place: the link read it
     * straight into rx_big (node/link/conn.c, #18). */
    if (c->rx_big != NULL && f->data.ptr != c->rx_big + c->rx_big_len)
        memcpy(c->rx_big + c->rx_big_len, f->data.ptr, f->data.len);
    c->rx_big_len += f->data.len;
    if (c->rx_big_len < c->rx_big_size)
        return 0;
    uint8_t *body = c->rx_big;
    size_t size = c->rx_big_size;
    c->rx_big = NULL;
    c->rx_big_size = 0;
    c->rx_big_len = 0;
    if (body == NULL)
        return 0; /* dropped on the way: all of it read, none delivered */
    reasm_release(c->node, size);
    const wire_data *d = &c->rx_big_hdr;
    deliver(c, d, d->group.len ? c->rx_big_group : NULL,
            d->has_ct ? c->rx_big_ct : NULL, body, size);
    free(body);
    return 0;
}

static int on_data_msg(node_conn *c, const wire_msg *m)
{
    return on_data(c, &m->u.data);
}

static int on_frag_msg(node_conn *c, const wire_msg *m)
{
    return on_frag(c, &m->u.frag);
}

/* An ACK carries a seq for the unicast stream (delivery.c), an id for an
 * anycast (groups.c), or both: each part goes straight to its owner. */
static int on_ack_msg(node_conn *c, const wire_msg *m)
{
    if (m->u.ack.has_seq)
        (void)node_delivery_on_ack(c, &m->u.ack);
    if (m->u.ack.has_id)
        return node_groups_on_anycast_ack(c, &m->u.ack);
    return 0;
}

/* The one owner of each message type on an established link, by type
 * (docs/ARCHITECTURE.md, "Who owns what"). BYE is the link's own
 * (node/link/conn.c) and never reaches this table. */
static int (*const msg_handlers[])(node_conn *c, const wire_msg *m) = {
    [WIRE_T_DATA] = on_data_msg,         [WIRE_T_FRAG] = on_frag_msg,
    [WIRE_T_ACK] = on_ack_msg,           [WIRE_T_PING] = node_peer_on_ping,
    [WIRE_T_PONG] = node_peer_on_ping,   [WIRE_T_JOIN] = node_groups_on_msg,
    [WIRE_T_LEAVE] = node_groups_on_msg, [WIRE_T_PEERS] = node_pex_on_peers,
};

int node_data_on_msg(node_conn *c, const wire_msg *m)
{
    if (c->peer == NULL)
        return -EPROTO;
    if (wire_route_type(m->type)) /* ROUTE, ROUTED, TRACE: routing's */
        return node_route_on_msg(c, m);
    if (m->type >= WIRE_T_HPV && m->type <= WIRE_T_SWIM) /* area: scale */
        return node_overlay_on_msg(c, m);                /* (#13) */
    /* Types this version does not know: the protocol says ignore. */
    if (m->type >= sizeof msg_handlers / sizeof msg_handlers[0] ||
        msg_handlers[m->type] == NULL)
        return 0;
    return msg_handlers[m->type](c, m);
}
