/* Layer messaging (node/LAYERS).
 * routed.c: the reliable unicast stream to and from a node this one has no
 * link to. Its messages (DATA, FRAG, ACK) leave its data lane as ROUTED
 * envelopes through the link of the next hop, which pulls them after its
 * own; what arrives in an envelope is handled as if read on a link: each
 * origin has a receiving state of its own (a connection that is never
 * connected, holding its reassembly), so sequence numbers, ACKs, the
 * outbox, order and exactly-once are the same code as over a link
 * (docs/PROTOCOL.md section 13.4). */
#include "node/messaging/messaging.h"

#include "wire/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EPOCH_BYTES 8u

static void vconns_init(confab_node *n)
{
    if (n->vconns.next == NULL)
        node_list_init(&n->vconns);
}

/* The receiving state of origin p, made at its first envelope. */
static node_conn *vconn_get(confab_node *n, node_peer *p)
{
    vconns_init(n);
    for (node_list *e = n->vconns.next; e != &n->vconns; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->peer == p)
            return c;
    }
    node_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->node = n;
    c->peer = p;
    c->state = CONN_UP;
    memcpy(c->peer_id, p->id, WIRE_NODE_ID_BYTES);
    node_list_add_tail(&n->vconns, &c->link);
    return c;
}

static void vconn_free(node_conn *c)
{
    node_list_del(&c->link);
    node_data_reasm_free(c);
    free(c);
}

void node_routed_forget(confab_node *n, node_peer *p)
{
    vconns_init(n);
    for (node_list *e = n->vconns.next; e != &n->vconns; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->peer == p) {
            vconn_free(c);
            return;
        }
    }
}

void node_routed_free(confab_node *n)
{
    vconns_init(n);
    while (!node_list_empty(&n->vconns))
        vconn_free(node_container_of(n->vconns.next, node_conn, link));
}

bool node_routed_ready(confab_node *n, node_peer *p)
{
    if (node_peer_up(p))
        return false;
    node_route *r = node_route_find(n, p->id);
    if (r == NULL)
        return false;
    if (p->tx_epoch != r->epoch || p->rx_epoch != r->epoch)
        node_delivery_link_up(n, p, r->epoch); /* as a HELLO would */
    return true;
}

int node_peer_send_ctl(confab_node *n, node_peer *p, const wire_msg *m)
{
    if (node_peer_up(p))
        return node_conn_send_ctl(p->conn, m);
    return node_route_send_ctl(n, p->id, m);
}

/* The inner messages an envelope may hold: the unicast stream's. */
static bool inner_ok(const wire_msg *m)
{
    switch (m->type) {
    case WIRE_T_DATA: /* a broadcast: whole, one frame (13.6) */
        return m->u.data.kind == WIRE_K_UNICAST ||
               (m->u.data.kind == WIRE_K_BROADCAST && !m->u.data.fragmented);
    case WIRE_T_FRAG:
        return true;
    case WIRE_T_ACK:
        return m->u.ack.has_seq && !m->u.ack.has_id;
    case WIRE_T_HPV:  /* area: scale (#13): SHUFFLE_REPLY and SWIM, */
    case WIRE_T_SWIM: /* whose rules node/peers/overlay.c checks */
        return true;
    default:
        return false;
    }
}

int node_routed_deliver(confab_node *n, const uint8_t *from, uint64_t epoch,
                        const wire_msg *m, unsigned hops)
{
    if (!inner_ok(m))
        return -EPROTO;
    /* The box proved the origin: it may take a place in the table. */
    node_peer *p = node_peer_get(n, from);
    if (p == NULL)
        return -ENOMEM;
    /* area: scale (#13): only the unicast stream keeps a receiving state
     * per origin (a body in reassembly, the ACK at the end of the read);
     * SWIM, HyParView, ACKs and whole broadcasts are read through one on
     * the stack, as nothing of theirs outlives the call: a node probed
     * through routes by every other held 1.3 KiB for each. */
    bool stream = m->type == WIRE_T_FRAG ||
                  (m->type == WIRE_T_DATA && m->u.data.kind == WIRE_K_UNICAST);
    node_conn once, *c = &once;
    if (stream) {
        c = vconn_get(n, p);
        if (c == NULL)
            return -ENOMEM;
    } else {
        memset(&once, 0, sizeof once);
        once.node = n;
        once.peer = p;
        once.state = CONN_UP;
        memcpy(once.peer_id, p->id, WIRE_NODE_ID_BYTES);
    }
    if (epoch != 0 && (p->rx_epoch != epoch || p->tx_epoch != epoch))
        node_delivery_link_up(n, p, epoch); /* its stream (re)starts */
    if (m->type == WIRE_T_DATA && m->u.data.fragmented && c->rx_big_size != 0)
        node_data_reasm_free(c); /* the origin began the body again */
    n->rx_hops = hops;
    int rc = node_data_on_msg(c, m);
    n->rx_hops = 0;
    if (m->type == WIRE_T_ACK && p->q_head != NULL)
        node_lane_kick(n, p); /* the window opened */
    if (rc != 0)
        node_data_reasm_free(c); /* out of order after a re-route */
    /* Acknowledged at the end of the read that carried it, with all the
     * others of that read, as on a link (node_routed_read_ended). Its
     * `dirty` (a link's place in the flush list) never serves that here. */
    c->dirty = stream;
    return rc;
}

void node_routed_read_ended(node_conn *link)
{
    confab_node *n = link->node;
    node_delivery_read_done(link);
    vconns_init(n);
    for (node_list *e = n->vconns.next; e != &n->vconns; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->dirty) {
            c->dirty = false;
            node_delivery_read_done(c);
        }
    }
}

void node_routed_changed(confab_node *n, const uint8_t *id)
{
    node_peer *p = node_peer_find(n, id);
    if (p == NULL || node_peer_up(p))
        return;
    /* A body cut between fragments starts again on the new path. */
    node_data_relink(p);
    if (p->ob_head == NULL && p->q_head == NULL)
        return; /* nothing to send: its stream starts at the first send */
    if (node_routed_ready(n, p)) {
        node_delivery_link_up(n, p, p->tx_epoch); /* what waits goes now */
        node_lane_kick(n, p);
    }
}

/* Bytes of p's stream sent and not acknowledged: its outbox less what
 * still waits in its lane (a routed peer's lane holds unicasts only). */
static size_t in_flight(const node_peer *p)
{
    return p->ob_bytes > p->q_bytes ? p->ob_bytes - p->q_bytes : 0;
}

/* Whether p's window lets more go. The oldest unacknowledged message
 * waiting in the lane always may: the receiver takes the stream in order
 * only, so what went after it is lost to a gap anyway, and waiting for
 * those would wait for ever (its retransmission timer runs only once it
 * is sent). */
static bool window_open(const node_peer *p)
{
    return in_flight(p) < NODE_ROUTE_WINDOW ||
           (p->ob_head != NULL && p->ob_head->in_lane);
}

static bool relays(const node_conn *c, const node_route *r)
{
    return r->via == c->peer && r->metric < WIRE_ROUTE_INFINITY;
}

bool node_routed_pull(node_conn *c, node_frame *f)
{
    confab_node *n = c->node;
    node_routing *rt = n->routing;
    if (rt == NULL || rt->n_routes == 0)
        return false;
    /* Room in one link frame for the envelope around the sealed map. */
    const size_t max = WIRE_MAX_PLAINTEXT - WIRE_ROUTED_OVERHEAD -
                       WIRE_ROUTED_SEAL - EPOCH_BYTES;
    size_t nr = rt->n_routes;
    for (size_t k = 0; k < nr; k++) {
        size_t i = (rt->rr + k) % nr;
        node_route *r = &rt->routes[i];
        if (!relays(c, r))
            continue;
        node_peer *p = node_peer_find(n, r->id);
        if (p == NULL || p->q_head == NULL || node_peer_up(p) ||
            !window_open(p))
            continue;
        node_frame in;
        if (!node_lane_pull(n, p, &in, max))
            continue;
        size_t len, blen;
        int rc =
            wire_msg_encode(&in.m, rt->plain + EPOCH_BYTES, in.bound, &len);
        if (rc == 0)
            rc = node_route_seal(n, p->id, rt->plain + EPOCH_BYTES, len,
                                 rt->box, NODE_ROUTE_SCRATCH, &blen);
        if (rc != 0) {
            node_log(n, CONFAB_LOG_ERROR, "cannot seal a routed message: %s",
                     confab_strerror(rc));
            continue;
        }
        node_route_envelope(n, p->id, rt->box, blen, &f->m);
        f->bound = WIRE_ROUTED_OVERHEAD + blen;
        f->bulk = in.bulk;
        f->chunk = in.chunk;
        n->route_pulled = p;
        n->stats.routed_sent++;
        rt->rr = i + 1;
        return true;
    }
    return false;
}

bool node_data_more(const node_conn *c)
{
    if (c->peer == NULL)
        return false;
    if (c->peer->q_head != NULL)
        return true;
    confab_node *n = c->node;
    node_routing *rt = n->routing;
    for (size_t i = 0; rt != NULL && i < rt->n_routes; i++) {
        if (!relays(c, &rt->routes[i]))
            continue;
        node_peer *p = node_peer_find(n, rt->routes[i].id);
        if (p != NULL && p->q_head != NULL && !node_peer_up(p) &&
            window_open(p))
            return true;
    }
    return false;
}

/* The DATA of broadcast b, borrowing b's bytes: what goes sealed to a
 * node reached only through others, and as GOSSIP along the tree. */
void node_body_broadcast_msg(const node_body *b, wire_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = WIRE_T_DATA;
    wire_data *d = &m->u.data;
    memcpy(d->id, b->id, WIRE_ID_BYTES);
    d->kind = WIRE_K_BROADCAST;
    d->ts = b->ts;
    d->has_ct = b->has_ct;
    d->ct.ptr = (const uint8_t *)b->ct;
    d->ct.len = b->ct_len;
    d->body.ptr = b->bytes;
    d->body.len = (uint32_t)b->len;
    d->size = b->len;
}

size_t node_routed_broadcast(confab_node *n, const node_body *b)
{
    node_routing *rt = n->routing;
    if (rt == NULL)
        return 0;
    /* One envelope each: a broadcast that does not fit one frame reaches
     * the linked peers only. */
    size_t room = WIRE_MAX_PLAINTEXT - WIRE_ROUTED_OVERHEAD - WIRE_ROUTED_SEAL -
                  EPOCH_BYTES;
    if (wire_data_bound(0, b->ct_len, b->len) > room)
        return 0;
    wire_msg m;
    node_body_broadcast_msg(b, &m);
    size_t sent = 0;
    for (size_t i = 0; i < rt->n_routes; i++) {
        node_route *r = &rt->routes[i];
        if (r->metric >= WIRE_ROUTE_INFINITY || r->via == NULL)
            continue;
        node_peer *p = node_peer_find(n, r->id);
        if (p != NULL && node_peer_linked(p))
            continue; /* it has it over its link */
        if (node_route_send_ctl(n, r->id, &m) == 0)
            sent++;
    }
    return sent;
}
