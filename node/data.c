/* data.c: application messages: the send calls, each peer's data lane
 * (framed lazily so a large body is fragmented as the socket drains, and
 * control frames never wait behind it), send outcomes, and the receive
 * side with reassembly of fragmented bodies. */
#include "node/node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- bodies and queue entries ----------------------------------------- */

void node_body_unref(node_body *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

void node_out_free(node_out *o)
{
    node_body *b = o->body;
    if (o != &b->own)
        free(o);
    node_body_unref(b);
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
    node_random(n, b->id, sizeof b->id);
    b->kind = kind;
    b->ts = node_clock_us(n);
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

static node_out *out_new(node_body *b, uint64_t seq, bool report)
{
    node_out *o;
    if (!b->own_used) {
        o = &b->own;
        b->own_used = true;
    } else if ((o = malloc(sizeof *o)) == NULL) {
        return NULL;
    }
    o->next = NULL;
    o->body = b;
    b->refs++;
    o->seq = seq;
    o->off = 0;
    o->report = report;
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

static void enqueue(node_peer *p, node_out *o)
{
    if (p->q_tail != NULL)
        p->q_tail->next = o;
    else
        p->q_head = o;
    p->q_tail = o;
    p->q_bytes += o->body->len + NODE_MSG_OVERHEAD;
    if (p->conn != NULL)
        node_conn_mark_dirty(p->conn);
}

bool node_peer_linked(const node_peer *p)
{
    return (p->conn != NULL && p->conn->state == CONN_UP) || p->switching;
}

int node_enqueue(node_peer *p, node_body *b, uint64_t seq, bool report)
{
    node_out *o = out_new(b, seq, report);
    if (o == NULL)
        return -ENOMEM;
    enqueue(p, o);
    return 0;
}

/* ---- sending ---------------------------------------------------------- */

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
    if (!node_peer_linked(p))
        return -ENOTCONN;
    if (len > p->max_body)
        return -EMSGSIZE;
    if (!node_peer_has_room(n, p, len)) {
        p->want_writable = true;
        n->stats.sends_refused_full++;
        return -EAGAIN;
    }
    node_body *b = node_body_new(n, WIRE_K_UNICAST, NULL, opts, body, len);
    if (b == NULL)
        return -ENOMEM;
    node_out *o = out_new(b, p->seq_unicast + 1, true);
    if (o == NULL) {
        free(b);
        return -ENOMEM;
    }
    p->seq_unicast++;
    if (msg_id != NULL)
        memcpy(msg_id, b->id, CONFAB_MSG_ID_BYTES);
    enqueue(p, o);
    return 0;
}

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
    for (size_t i = 0; i < n->peers_cap; i++) {
        node_peer *p = n->peers[i];
        if (p == NULL || !node_peer_linked(p) || len > p->max_body)
            continue;
        if (!node_peer_has_room(n, p, len)) {
            p->want_writable = true;
            n->stats.sends_refused_full++;
            continue;
        }
        node_out *o = out_new(b, p->seq_multi + 1, false);
        if (o == NULL) {
            rc = -ENOMEM;
            break;
        }
        p->seq_multi++;
        enqueue(p, o);
        sent++;
    }
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
}

void node_data_fill(node_conn *c)
{
    node_peer *p = c->peer;
    confab_node *n = c->node;
    if (p == NULL || p->conn != c || c->state != CONN_UP)
        return;
    while (p->q_head != NULL && node_conn_tx_queued(c) < NODE_TX_WINDOW) {
        node_out *o = p->q_head;
        const node_body *b = o->body;
        wire_msg m;
        size_t chunk, bound;
        if (o->off == 0) {
            size_t room = WIRE_MAX_PLAINTEXT -
                          wire_data_bound(b->group_len, b->ct_len, 0);
            chunk = b->len < room ? b->len : room;
            fill_data(&m, o, chunk);
            bound = wire_data_bound(b->group_len, b->ct_len, chunk);
        } else {
            size_t room = WIRE_MAX_PLAINTEXT - WIRE_FRAG_OVERHEAD;
            chunk = b->len - o->off < room ? b->len - o->off : room;
            memset(&m, 0, sizeof m);
            m.type = WIRE_T_FRAG;
            memcpy(m.u.frag.id, b->id, WIRE_ID_BYTES);
            m.u.frag.off = o->off;
            m.u.frag.data.ptr = b->bytes + o->off;
            m.u.frag.data.len = (uint32_t)chunk;
            bound = WIRE_FRAG_OVERHEAD + chunk;
        }
        int rc = node_conn_send_data(c, &m, bound,
                                     p->q_bytes > NODE_TXBUF_SMALL);
        if (rc != 0) {
            node_log(n, CONFAB_LOG_ERROR, "cannot frame a message: %s",
                     uv_strerror(rc));
            node_conn_abort(c, CONFAB_DOWN_CLOSED);
            return;
        }
        o->off += chunk;
        if (o->off < b->len)
            continue;
        p->q_head = o->next;
        if (p->q_head == NULL)
            p->q_tail = NULL;
        o->next = NULL;
        p->q_bytes -= b->len + NODE_MSG_OVERHEAD;
        p->msgs_sent++;
        n->stats.msgs_sent++;
        if (o->report)
            node_conn_attach_done(c, o);
        else
            node_out_free(o);
    }
    if (p->want_writable &&
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

void node_data_written(confab_node *n, node_peer *p, node_out *done,
                       confab_send_status st)
{
    while (done != NULL) {
        node_out *o = done;
        done = o->next;
        if (p != NULL && o->report) {
            confab_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = CONFAB_EV_SEND;
            ev.peer = p->id;
            ev.peer_name = p->name;
            ev.msg_id = o->body->id;
            ev.status = st;
            node_emit(n, &ev);
        }
        node_out_free(o);
    }
}

void node_data_fail_queue(confab_node *n, node_peer *p)
{
    node_out *list = p->q_head;
    p->q_head = p->q_tail = NULL;
    p->q_bytes = 0;
    p->want_writable = false;
    node_data_written(n, p, list, CONFAB_FAILED);
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
    p->msgs_received++;
    n->stats.msgs_received++;
    if (n->inbox != NULL)
        (void)node_inbox_put(n, &msg); /* a full inbox is counted */
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CONFAB_EV_MESSAGE;
    ev.peer = p->id;
    ev.peer_name = p->name;
    ev.message = &msg;
    node_emit(n, &ev);
    if (d->kind == WIRE_K_ANYCAST && c->state == CONN_UP) {
        /* The member that takes an anycast says so, by id. */
        wire_msg ack;
        memset(&ack, 0, sizeof ack);
        ack.type = WIRE_T_ACK;
        ack.u.ack.has_id = 1;
        memcpy(ack.u.ack.id, d->id, WIRE_ID_BYTES);
        (void)node_conn_send_ctl(c, &ack);
    }
}

static int on_data(node_conn *c, const wire_data *d)
{
    confab_node *n = c->node;
    if (d->fragmented) {
        /* One fragmented body at a time per link, within what we told the
         * peer we accept. */
        if (c->rx_big != NULL || d->size > n->cfg.max_message)
            return -EPROTO;
        c->rx_big = malloc(d->size);
        if (c->rx_big == NULL)
            return -ENOMEM;
        memcpy(c->rx_big, d->body.ptr, d->body.len);
        c->rx_big_len = d->body.len;
        c->rx_big_size = d->size;
        c->rx_big_hdr = *d;
        copy_str(c->rx_big_group, &d->group);
        c->rx_big_hdr.has_ct = d->has_ct;
        if (d->has_ct)
            copy_str(c->rx_big_ct, &d->ct);
        return 0;
    }
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
    if (c->rx_big == NULL ||
        memcmp(f->id, c->rx_big_hdr.id, WIRE_ID_BYTES) != 0 ||
        f->off != c->rx_big_len ||
        f->data.len > c->rx_big_size - c->rx_big_len)
        return -EPROTO; /* out of order, or more than it announced */
    memcpy(c->rx_big + c->rx_big_len, f->data.ptr, f->data.len);
    c->rx_big_len += f->data.len;
    if (c->rx_big_len < c->rx_big_size)
        return 0;
    uint8_t *body = c->rx_big;
    c->rx_big = NULL;
    const wire_data *d = &c->rx_big_hdr;
    deliver(c, d, d->group.len ? c->rx_big_group : NULL,
            d->has_ct ? c->rx_big_ct : NULL, body, c->rx_big_size);
    free(body);
    return 0;
}

int node_data_on_msg(node_conn *c, const wire_msg *m)
{
    if (c->peer == NULL)
        return -EPROTO;
    switch (m->type) {
    case WIRE_T_DATA:
        return on_data(c, &m->u.data);
    case WIRE_T_FRAG:
        return on_frag(c, &m->u.frag);
    case WIRE_T_PING:
    case WIRE_T_PONG:
        return node_peer_on_ping(c, m);
    case WIRE_T_PEERS:
        return node_pex_on_peers(c, m);
    case WIRE_T_ACK:
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        return node_groups_on_msg(c, m);
    default:
        /* Types this version does not know: the protocol says ignore. */
        return 0;
    }
}
