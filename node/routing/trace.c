/* Layer routing (node/LAYERS).
 * trace.c: `confab trace`: probes that each hop of a route answers, the
 * way traceroute's do (docs/PROTOCOL.md section 13.5). */
#include "node/base/addr.h"
#include "node/routing/routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HOP_LIMIT WIRE_ROUTE_INFINITY

static node_trace *trace_find(const confab_node *n, uint64_t token)
{
    if (n->routing == NULL || n->routing->traces == NULL || token == 0)
        return NULL;
    for (size_t i = 0; i < NODE_TRACES; i++)
        if (n->routing->traces[i].token == token)
            return (node_trace *)&n->routing->traces[i];
    return NULL;
}

int confab_trace(confab_node *n, const uint8_t to[CONFAB_ID_BYTES],
                 uint64_t *token)
{
    node_routing *rt = n->routing;
    if (to == NULL || rt == NULL)
        return -EINVAL;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    node_peer *h = node_route_next_hop(n, to);
    if (h == NULL)
        return -ESRCH;
    if (rt->traces == NULL) {
        rt->traces = calloc(NODE_TRACES, sizeof *rt->traces);
        if (rt->traces == NULL)
            return -ENOMEM;
    }
    unsigned probes = 1;
    node_peer *p = node_peer_find(n, to);
    if (p == NULL || !node_peer_up(p))
        probes = node_route_find(n, to)->metric;
    /* The oldest trace gives way. */
    node_trace *t = &rt->traces[0];
    for (size_t i = 1; i < NODE_TRACES; i++)
        if (rt->traces[i].started_ms < t->started_ms)
            t = &rt->traces[i];
    memset(t, 0, sizeof *t);
    t->token = ++rt->trace_seq;
    t->started_ms = node_now_ms(n);
    t->probes = probes;
    memcpy(t->dst, to, WIRE_NODE_ID_BYTES);
    for (unsigned k = 1; k <= probes; k++) {
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_TRACE;
        m.u.trace.src = n->identity->pk;
        m.u.trace.dst = to;
        m.u.trace.hops = k;
        m.u.trace.token = t->token;
        m.u.trace.k = k;
        t->hops[k - 1].hop = k;
        t->sent_us[k - 1] = node_mono_us();
        int rc = node_conn_send_ctl(h->conn, &m);
        if (rc != 0)
            return rc;
    }
    *token = t->token;
    return 0;
}

static bool trace_done(const confab_node *n, const node_trace *t)
{
    if (node_now_ms(n) - t->started_ms >= NODE_TRACE_MS)
        return true;
    if (t->dest_hop == 0)
        return false;
    for (unsigned k = 0; k < t->dest_hop; k++)
        if (!t->hops[k].answered)
            return false;
    return true;
}

int confab_trace_result(const confab_node *n, uint64_t token,
                        confab_trace_hop *out, size_t cap, size_t *count,
                        int *done)
{
    const node_trace *t = trace_find(n, token);
    if (t == NULL)
        return -ENOENT;
    /* Past the destination nothing answers: the hops are up to it. */
    unsigned k = t->dest_hop != 0 ? t->dest_hop : t->probes;
    for (unsigned i = 0; i < k && i < cap && out != NULL; i++)
        out[i] = t->hops[i];
    *count = k;
    *done = trace_done(n, t);
    return 0;
}

/* Sends m toward id: its link, or its route; back on c when neither. */
static void send_toward(confab_node *n, node_conn *c, const uint8_t *id,
                        const wire_msg *m)
{
    node_peer *h = node_route_next_hop(n, id);
    node_conn *out = h != NULL ? h->conn : c;
    if (node_conn_tx_queued(out) >= NODE_ROUTE_RELAY_QUEUE ||
        node_conn_send_ctl(out, m) != 0)
        n->stats.traces_dropped++;
}

/* This node is the hop the probe was for (its limit ends here) or the
 * node traced: it answers, with the address the probe came in on. */
static void answer(node_conn *c, const wire_trace *tr)
{
    confab_node *n = c->node;
    char addr[WIRE_TRACE_ADDR + 1] = "";
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        /* A dual-stack listener's IPv4 link: shown as plain IPv4. */
        node_addr_unmap(&ss);
        /* The port is where it accepts links, not this link's own. */
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(n->port);
        else if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(n->port);
        (void)node_format_addr(&ss, addr, sizeof addr);
    }
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_TRACE_REPLY;
    m.u.trace.src = n->identity->pk;
    m.u.trace.dst = tr->src;
    m.u.trace.hops = HOP_LIMIT;
    m.u.trace.token = tr->token;
    m.u.trace.k = tr->k;
    m.u.trace.name.ptr = (const uint8_t *)n->name;
    m.u.trace.name.len = (uint32_t)strlen(n->name);
    m.u.trace.addr.ptr = (const uint8_t *)addr;
    m.u.trace.addr.len = (uint32_t)strlen(addr);
    n->stats.traces_answered++;
    send_toward(n, c, tr->src, &m);
}

/* A hop's answer to one of our probes. */
static void take_reply(confab_node *n, const wire_trace *tr)
{
    node_trace *t = trace_find(n, tr->token);
    if (t == NULL || tr->k > t->probes || t->hops[tr->k - 1].answered) {
        n->stats.traces_dropped++; /* late, unknown, or a second answer */
        return;
    }
    confab_trace_hop *h = &t->hops[tr->k - 1];
    uint64_t now = node_mono_us();
    h->answered = 1;
    h->rtt_us = now - t->sent_us[tr->k - 1];
    memcpy(h->id, tr->src, CONFAB_ID_BYTES);
    memcpy(h->name, tr->name.ptr, tr->name.len);
    h->name[tr->name.len] = '\0';
    memcpy(h->address, tr->addr.ptr, tr->addr.len);
    h->address[tr->addr.len] = '\0';
    /* The node traced answers every probe that reaches it: the first
     * hop it answers at is its distance. */
    if (memcmp(tr->src, t->dst, WIRE_NODE_ID_BYTES) == 0 &&
        (t->dest_hop == 0 || tr->k < t->dest_hop))
        t->dest_hop = (unsigned)tr->k;
}

int node_trace_on_msg(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    const wire_trace *tr = &m->u.trace;
    const uint8_t *self = n->identity->pk;
    bool for_me = memcmp(tr->dst, self, WIRE_NODE_ID_BYTES) == 0;
    if (tr->hops == 0) {
        n->stats.traces_dropped++;
        return node_route_strike_peer(n, c->peer) ? -EPROTO : 0;
    }
    if (m->type == WIRE_T_TRACE) {
        if (for_me || tr->hops == 1) {
            answer(c, tr);
            return 0;
        }
    } else if (for_me) {
        take_reply(n, tr);
        return 0;
    } else if (tr->hops == 1) {
        n->stats.traces_dropped++;
        return 0;
    }
    node_peer *h = node_route_next_hop(n, tr->dst);
    if (h == NULL || h == c->peer ||
        node_conn_tx_queued(h->conn) >= NODE_ROUTE_RELAY_QUEUE) {
        n->stats.traces_dropped++;
        return 0;
    }
    wire_msg f = *m;
    f.u.trace.hops = tr->hops - 1;
    if (node_conn_send_ctl(h->conn, &f) != 0)
        n->stats.traces_dropped++;
    return 0;
}
