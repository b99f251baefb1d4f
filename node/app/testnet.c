/* Layer app (node/LAYERS).
 * testnet.c: a whole confab network in one process (node/testnet.h). */
#include "node/app/testnet_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const loopback_broadcast[] = {"127.255.255.255"};

void confab_testnet_config_init(confab_testnet_config *c)
{
    memset(c, 0, sizeof *c);
    confab_config_init(&c->node);
    c->nodes = 3;
}

/* ---- events ----------------------------------------------------------- */

static void record(confab_testnet *tn, unsigned node, const confab_event *ev)
{
    if (tn->n_ev == tn->cap_ev) {
        size_t cap = tn->cap_ev ? tn->cap_ev * 2 : 256;
        confab_testnet_event *e = realloc(tn->ev, cap * sizeof *e);
        if (e == NULL)
            return;
        tn->ev = e;
        tn->cap_ev = cap;
    }
    confab_testnet_event *r = &tn->ev[tn->n_ev];
    memset(r, 0, sizeof *r);
    r->type = ev->type;
    r->node = node;
    r->peer = ev->peer ? confab_testnet_index(tn, ev->peer) : -1;
    if (ev->peer)
        memcpy(r->peer_id, ev->peer, CONFAB_ID_BYTES);
    r->reason = ev->reason;
    r->status = ev->status;
    if (ev->msg_id)
        memcpy(r->msg_id, ev->msg_id, CONFAB_MSG_ID_BYTES);
    r->token = ev->token;
    r->rtt_us = ev->rtt_us;
    r->hops = ev->hops; /* outcomes; a message's own below */
    if (ev->group != NULL)
        snprintf(r->group, sizeof r->group, "%s", ev->group);
    r->at_us = node_clock_us(tn->m[node].node);
    const confab_message *msg = ev->message;
    if (msg != NULL) {
        memcpy(r->msg_id, msg->id, CONFAB_MSG_ID_BYTES);
        r->kind = msg->kind;
        if (msg->group)
            snprintf(r->group, sizeof r->group, "%s", msg->group);
        r->seq = msg->seq;
        r->sent_us = msg->ts_us;
        r->hops = msg->hops;
        r->len = msg->len;
        size_t keep = msg->len < tn->cfg.record_body_max
                          ? msg->len
                          : tn->cfg.record_body_max;
        if (keep > 0) {
            r->body = malloc(keep);
            if (r->body != NULL)
                memcpy(r->body, msg->body, keep);
        }
    }
    tn->n_ev++;
}

static void on_event(confab_node *node, const confab_event *ev, void *user)
{
    tn_member *m = user;
    (void)node;
    record(m->tn, m->index, ev);
    if (m->tn->cfg.event_cb != NULL)
        m->tn->cfg.event_cb(m->tn, m->index, ev, m->tn->cfg.user);
}

size_t confab_testnet_events(const confab_testnet *tn,
                             const confab_testnet_event **out)
{
    *out = tn->ev;
    return tn->n_ev;
}

size_t confab_testnet_count(const confab_testnet *tn, confab_event_type type,
                            int node, int peer)
{
    size_t k = 0;
    for (size_t i = 0; i < tn->n_ev; i++) {
        const confab_testnet_event *e = &tn->ev[i];
        if (e->type == type && (node < 0 || e->node == (unsigned)node) &&
            (peer < 0 || e->peer == peer))
            k++;
    }
    return k;
}

void confab_testnet_clear_events(confab_testnet *tn)
{
    for (size_t i = 0; i < tn->n_ev; i++)
        free(tn->ev[i].body);
    tn->n_ev = 0;
}

/* ---- creation --------------------------------------------------------- */

/* Raises the soft descriptor limit to what n nodes with the links each
 * keeps need (node/app/testnet_scale.c), or says what is missing. */
static int ensure_fds(confab_testnet *tn, unsigned n)
{
    unsigned links = confab_testnet_links_per_node(&tn->cfg.node, n);
    confab_testnet_fds f;
    int rc = confab_testnet_raise_fds(confab_testnet_fds_needed(n, links), &f);
    if (rc == -EMFILE && tn->cfg.node.log_cb != NULL) {
        char line[320];
        snprintf(line, sizeof line,
                 "%u nodes with %u links each need %llu file descriptors "
                 "but the hard limit is %llu; raise it (ulimit -Hn, or "
                 "LimitNOFILE= in a systemd unit) or use fewer nodes",
                 n, links, (unsigned long long)f.need,
                 (unsigned long long)f.hard);
        tn->cfg.node.log_cb(NULL, CONFAB_LOG_ERROR, line, tn->cfg.node.user);
    }
    return rc == -EMFILE ? rc : 0;
}

static void derive_identity(uint64_t seed, unsigned i, uint8_t sk[32])
{
    uint8_t in[24];
    memcpy(in, "testnet:", 8);
    for (int b = 0; b < 8; b++)
        in[8 + b] = (uint8_t)(seed >> (8 * b));
    for (int b = 0; b < 8; b++)
        in[16 + b] = (uint8_t)((uint64_t)i >> (8 * b));
    crypto_generichash(sk, 32, in, sizeof in, NULL, 0);
}

static int member_create(confab_testnet *tn, tn_member *m)
{
    confab_config c = tn->cfg.node;
    c.identity_sk = m->sk;
    c.name = m->name;
    c.bind_addr = "127.0.0.1";
    c.port = m->port;
    c.static_peers = (const char *const *)m->statics;
    c.n_static_peers = m->n_statics;
    c.event_cb = on_event;
    c.user = m;
    if (m->own_key)
        c.network_key = m->key;
    c.groups = (const char *const *)m->groups;
    c.n_groups = m->n_groups;
    if (m->home[0] != '\0')
        c.home = m->home;
    /* Beacons stay on this host: loopback broadcast, a port of our own. */
    c.discovery = tn->cfg.discovery;
    c.discovery_port = tn->discovery_port;
    c.discovery_bind = "0.0.0.0";
    c.broadcast_addrs = loopback_broadcast;
    c.n_broadcast_addrs = 1;
    /* the peer table and who may join: every node here is ours, so they
     * dial each other as fast as the handshake cap allows unless the test
     * sets a rate (the limit guards against a member's made-up addresses:
     * tests/net/test_peer_bounds.c). */
    if (c.dial_rate == 0)
        c.dial_rate = 1000;
    if (c.dial_burst == 0)
        c.dial_burst = 1000;
    /* Every node here dials from 127.0.0.1: one source for the bound on
     * handshakes per source address, which would make a large network
     * mesh in waves of eight. */
    /* area: scale (#13): every node here shares this process's CPU.
     * With each node allowed 256 handshakes at once, the 4,950 links of
     * 100 nodes all start together, all progress together, and on a
     * loaded machine all pass the 5 s handshake timeout before any ends:
     * nothing links, and the re-dials do it again (100 nodes formed
     * within 60 s in 1 of 6 runs at load 6 to 9 on 2 cores). A budget of
     * about 2,048 for the process, at least 16 a node, lets them finish
     * in waves (16 to 32 a node: 5 of 5 formed, in 7.8 to 17 s; 20, what
     * this gives 100 nodes: 2 of 2, 18 to 21 s); a dial over it waits for
     * the next tick, a connection over it is refused and dialed again. */
    if (c.max_handshakes == 0) {
        unsigned share = 2048u / tn->n;
        c.max_handshakes = share < 16u ? 16u : share > 256u ? 256u : share;
    }
    if (c.max_handshakes_per_source == 0)
        c.max_handshakes_per_source =
            c.max_handshakes != 0 ? c.max_handshakes : 256;
    int rc = confab_node_new(tn->loop, &c, &m->node);
    if (rc == 0)
        memcpy(m->id, confab_node_id(m->node), CONFAB_ID_BYTES);
    /* A topology holds across restarts too: its cuts, made again. */
    for (unsigned j = 0; rc == 0 && tn->topology >= 0 && j < tn->n; j++)
        if (j != m->index &&
            !confab_testnet_adjacent((confab_testnet_topology)tn->topology,
                                     tn->n, m->index, j))
            rc = node_block_peer(m->node, tn->m[j].id,
                                 NODE_BLOCK_LINK | NODE_BLOCK_BEACON);
    /* Latency set on its links holds across restarts. */
    for (unsigned j = 0; rc == 0 && tn->latency && j < tn->n; j++)
        if (tn->latency[m->index * tn->n + j] != 0)
            rc = node_set_peer_delay(m->node, tn->m[j].id,
                                     tn->latency[m->index * tn->n + j]);
    return rc;
}

int confab_testnet_new(uv_loop_t *loop, const confab_testnet_config *c,
                       confab_testnet **out)
{
    if (c->nodes == 0 || c->nodes > 4096)
        return -EINVAL;
    confab_testnet *tn = calloc(1, sizeof *tn);
    if (tn == NULL)
        return -ENOMEM;
    tn->loop = loop;
    tn->topology = -1;
    tn->cfg = *c;
    if (tn->cfg.record_body_max == 0)
        tn->cfg.record_body_max = 4096;
    tn->n = c->nodes;
    int rc = ensure_fds(tn, c->nodes);
    if (rc != 0) {
        free(tn);
        return rc;
    }
    tn->m = calloc(tn->n, sizeof *tn->m);
    if (tn->m == NULL) {
        free(tn);
        return -ENOMEM;
    }
    uint64_t seed = c->seed;
    if (seed == 0)
        randombytes_buf(&seed, sizeof seed);
    tn->discovery_port = c->discovery_port;
    if (tn->discovery_port == 0)
        tn->discovery_port = (uint16_t)(20000u + randombytes_uniform(40000u));
    for (unsigned i = 0; i < tn->n; i++) {
        tn_member *m = &tn->m[i];
        m->tn = tn;
        m->index = i;
        snprintf(m->name, sizeof m->name, "n%u", i);
        derive_identity(seed, i, m->sk);
        if (c->home_dir != NULL)
            snprintf(m->home, sizeof m->home, "%s/n%u", c->home_dir, i);
    }
    for (unsigned i = 0; i < tn->n && rc == 0; i++)
        rc = member_create(tn, &tn->m[i]);
    if (rc != 0) {
        for (unsigned i = 0; i < tn->n; i++)
            confab_node_free(tn->m[i].node);
        free(tn->m);
        free(tn);
        return rc;
    }
    *out = tn;
    return 0;
}

static int member_start(tn_member *m)
{
    int rc = confab_node_start(m->node);
    if (rc == 0) {
        m->running = true;
        m->port = confab_node_port(m->node);
    }
    return rc;
}

static int set_statics(confab_testnet *tn, tn_member *m)
{
    /* Node i dials nodes 0..i-1, whose ports are known once they run. */
    m->statics = calloc(m->index ? m->index : 1, sizeof *m->statics);
    if (m->statics == NULL)
        return -ENOMEM;
    for (unsigned j = 0; j < m->index; j++) {
        m->statics[j] = malloc(32);
        if (m->statics[j] == NULL)
            return -ENOMEM;
        snprintf(m->statics[j], 32, "127.0.0.1:%u", tn->m[j].port);
        m->n_statics++;
    }
    /* The node copied its config at creation: make it again with them. */
    confab_node_free(m->node);
    m->node = NULL;
    return member_create(tn, m);
}

int confab_testnet_set_network_key(confab_testnet *tn, unsigned i,
                                   const uint8_t key[CONFAB_KEY_BYTES])
{
    if (i >= tn->n || tn->m[i].running)
        return -EINVAL;
    tn_member *m = &tn->m[i];
    memcpy(m->key, key, CONFAB_KEY_BYTES);
    m->own_key = true;
    confab_node_free(m->node);
    m->node = NULL;
    return member_create(tn, m);
}

int confab_testnet_set_groups(confab_testnet *tn, unsigned i,
                              const char *const *groups, size_t n)
{
    if (i >= tn->n)
        return -EINVAL;
    tn_member *m = &tn->m[i];
    for (size_t k = 0; k < m->n_groups; k++)
        free(m->groups[k]);
    free(m->groups);
    m->groups = NULL;
    m->n_groups = 0;
    if (n > 0 && (m->groups = calloc(n, sizeof *m->groups)) == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(groups[k]) + 1;
        if ((m->groups[k] = malloc(len)) == NULL)
            return -ENOMEM;
        memcpy(m->groups[k], groups[k], len);
        m->n_groups++;
    }
    if (m->running)
        return 0; /* used at its next start */
    confab_node_free(m->node);
    m->node = NULL;
    return member_create(tn, m);
}

uint16_t confab_testnet_discovery_port(const confab_testnet *tn)
{
    return tn->discovery_port;
}

int confab_testnet_start(confab_testnet *tn)
{
    tn->started_ns = uv_hrtime();
    for (unsigned i = 0; i < tn->n; i++) {
        tn_member *m = &tn->m[i];
        int rc;
        if (tn->cfg.static_mesh && i > 0 && (rc = set_statics(tn, m)) != 0)
            return rc;
        if ((rc = member_start(m)) != 0)
            return rc;
    }
    return 0;
}

unsigned confab_testnet_size(const confab_testnet *tn)
{
    return tn->n;
}

confab_node *confab_testnet_node(confab_testnet *tn, unsigned i)
{
    return i < tn->n ? tn->m[i].node : NULL;
}

int confab_testnet_index(const confab_testnet *tn,
                         const uint8_t id[CONFAB_ID_BYTES])
{
    for (unsigned i = 0; i < tn->n; i++)
        if (memcmp(tn->m[i].id, id, CONFAB_ID_BYTES) == 0)
            return (int)i;
    return -1;
}

bool confab_testnet_running(const confab_testnet *tn, unsigned i)
{
    return i < tn->n && tn->m[i].running;
}

/* ---- waiting ---------------------------------------------------------- */

static void deadline_cb(uv_timer_t *t)
{
    (void)t; /* only wakes the loop */
}

int confab_testnet_run_until(confab_testnet *tn,
                             bool (*done)(confab_testnet *tn, void *arg),
                             void *arg, unsigned timeout_ms)
{
    if (!tn->deadline_init) {
        uv_timer_init(tn->loop, &tn->deadline);
        tn->deadline_init = true;
    }
    uv_update_time(tn->loop);
    uint64_t end = uv_now(tn->loop) + timeout_ms;
    /* A repeating timer keeps UV_RUN_ONCE from blocking past the deadline
     * and lets done() be checked at least every 10 ms. */
    uv_timer_start(&tn->deadline, deadline_cb, 10, 10);
    int rc = 0;
    while (!done(tn, arg)) {
        if (uv_now(tn->loop) >= end) {
            rc = -ETIMEDOUT;
            break;
        }
        uv_run(tn->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&tn->deadline);
    return rc;
}

bool confab_testnet_linked(confab_testnet *tn, unsigned i, unsigned j)
{
    if (i >= tn->n || j >= tn->n || !tn->m[i].running)
        return false;
    confab_peer_info info;
    if (confab_peer(tn->m[i].node, tn->m[j].id, &info) != 0)
        return false;
    return info.state == CONFAB_PEER_UP;
}

bool confab_testnet_full_mesh(confab_testnet *tn)
{
    for (unsigned i = 0; i < tn->n; i++) {
        if (!tn->m[i].running)
            continue;
        confab_stats st;
        confab_node_stats(tn->m[i].node, &st);
        unsigned want = 0;
        for (unsigned j = 0; j < tn->n; j++)
            if (j != i && tn->m[j].running)
                want++;
        if (st.peers_up < want)
            return false;
        for (unsigned j = 0; j < tn->n; j++)
            if (j != i && tn->m[j].running && !confab_testnet_linked(tn, i, j))
                return false;
    }
    return true;
}

static bool mesh_done(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_testnet_full_mesh(tn);
}

int confab_testnet_wait_mesh(confab_testnet *tn, unsigned timeout_ms)
{
    return confab_testnet_run_until(tn, mesh_done, NULL, timeout_ms);
}

/* ---- faults ----------------------------------------------------------- */

void confab_testnet_cut(confab_testnet *tn, unsigned i, unsigned j)
{
    if (i >= tn->n || j >= tn->n || i == j)
        return;
    if (tn->m[i].node)
        (void)node_block_peer(tn->m[i].node, tn->m[j].id,
                              NODE_BLOCK_LINK | NODE_BLOCK_BEACON);
    if (tn->m[j].node)
        (void)node_block_peer(tn->m[j].node, tn->m[i].id,
                              NODE_BLOCK_LINK | NODE_BLOCK_BEACON);
}

void confab_testnet_cut_beacons(confab_testnet *tn, unsigned i, unsigned j)
{
    if (i >= tn->n || j >= tn->n || i == j)
        return;
    confab_node *a = tn->m[i].node, *b = tn->m[j].node;
    if (a)
        (void)node_block_peer(a, tn->m[j].id,
                              node_blocked_what(a, tn->m[j].id) |
                                  NODE_BLOCK_BEACON);
    if (b)
        (void)node_block_peer(b, tn->m[i].id,
                              node_blocked_what(b, tn->m[i].id) |
                                  NODE_BLOCK_BEACON);
}

void confab_testnet_heal(confab_testnet *tn, unsigned i, unsigned j)
{
    if (i >= tn->n || j >= tn->n || i == j)
        return;
    if (tn->m[i].node)
        (void)node_block_peer(tn->m[i].node, tn->m[j].id, 0);
    if (tn->m[j].node)
        (void)node_block_peer(tn->m[j].node, tn->m[i].id, 0);
}

int confab_testnet_set_latency(confab_testnet *tn, unsigned i, unsigned j,
                               unsigned ms)
{
    if (i >= tn->n || j >= tn->n || i == j)
        return -EINVAL;
    if (tn->latency == NULL &&
        (tn->latency = calloc((size_t)tn->n * tn->n, sizeof *tn->latency)) ==
            NULL)
        return -ENOMEM;
    tn->latency[i * tn->n + j] = tn->latency[j * tn->n + i] = ms;
    int rc = node_set_peer_delay(tn->m[i].node, tn->m[j].id, ms);
    if (rc == 0)
        rc = node_set_peer_delay(tn->m[j].node, tn->m[i].id, ms);
    return rc;
}

int confab_testnet_drop(confab_testnet *tn, unsigned i, unsigned j)
{
    if (i >= tn->n || j >= tn->n || !tn->m[i].running)
        return -ENOTCONN;
    return node_reset_peer(tn->m[i].node, tn->m[j].id);
}

static void member_stopped(confab_node *node, void *user)
{
    tn_member *m = user;
    (void)node;
    m->stopping = false;
}

int confab_testnet_stop_node(confab_testnet *tn, unsigned i)
{
    if (i >= tn->n || !tn->m[i].running)
        return -EINVAL;
    tn_member *m = &tn->m[i];
    int rc = confab_node_stop(m->node, member_stopped, m);
    if (rc != 0)
        return rc;
    m->running = false;
    m->stopping = true;
    return 0;
}

static bool member_idle(confab_testnet *tn, void *arg)
{
    (void)tn;
    return !((tn_member *)arg)->stopping;
}

int confab_testnet_restart_node(confab_testnet *tn, unsigned i)
{
    if (i >= tn->n || tn->m[i].running)
        return -EINVAL;
    tn_member *m = &tn->m[i];
    if (m->stopping && confab_testnet_run_until(tn, member_idle, m, 10000) != 0)
        return -ETIMEDOUT;
    /* Copy the cut links of the old node to the new one. */
    confab_node *old = m->node;
    m->node = NULL;
    int rc = member_create(tn, m);
    if (rc == 0) {
        for (size_t k = 0; k < old->n_blocked; k++)
            (void)node_block_peer(m->node, old->blocked[k].id,
                                  old->blocked[k].what);
        rc = member_start(m);
    }
    confab_node_free(old);
    return rc;
}

static bool all_stopped(confab_testnet *tn, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < tn->n; i++)
        if (tn->m[i].stopping)
            return false;
    return true;
}

static void deadline_closed(uv_handle_t *h)
{
    (void)h;
}

int confab_testnet_free(confab_testnet *tn)
{
    if (tn == NULL)
        return 0;
    for (unsigned i = 0; i < tn->n; i++)
        if (tn->m[i].running)
            (void)confab_testnet_stop_node(tn, i);
    int rc = confab_testnet_run_until(tn, all_stopped, NULL, 10000);
    if (tn->deadline_init) {
        uv_close((uv_handle_t *)&tn->deadline, deadline_closed);
        uv_run(tn->loop, UV_RUN_NOWAIT);
    }
    for (unsigned i = 0; i < tn->n; i++) {
        tn_member *m = &tn->m[i];
        if (!m->stopping)
            confab_node_free(m->node);
        for (size_t k = 0; k < m->n_statics; k++)
            free(m->statics[k]);
        free(m->statics);
        for (size_t k = 0; k < m->n_groups; k++)
            free(m->groups[k]);
        free(m->groups);
        sodium_memzero(m->sk, sizeof m->sk);
    }
    confab_testnet_clear_events(tn);
    free(tn->latency);
    free(tn->ev);
    free(tn->m);
    free(tn);
    return rc;
}

bool confab_testnet_adjacent(confab_testnet_topology t, unsigned n, unsigned i,
                             unsigned j)
{
    if (i == j || i >= n || j >= n)
        return false;
    unsigned lo = i < j ? i : j, hi = i < j ? j : i;
    switch (t) {
    case CONFAB_TOPO_LINE:
        return hi - lo == 1;
    case CONFAB_TOPO_RING:
        return hi - lo == 1 || (lo == 0 && hi == n - 1 && n > 2);
    case CONFAB_TOPO_CLUSTERS:
        return hi <= n / 2 || lo >= n / 2;
    case CONFAB_TOPO_MESH:
    default:
        return true;
    }
}

void confab_testnet_set_topology(confab_testnet *tn, confab_testnet_topology t)
{
    tn->topology = t == CONFAB_TOPO_MESH ? -1 : (int)t;
    for (unsigned i = 0; i < tn->n; i++)
        for (unsigned j = i + 1; j < tn->n; j++) {
            if (confab_testnet_adjacent(t, tn->n, i, j))
                confab_testnet_heal(tn, i, j);
            else
                confab_testnet_cut(tn, i, j);
        }
}
