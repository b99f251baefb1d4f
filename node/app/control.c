/* Layer app (node/LAYERS).
 * control.c: the control socket (docs/PROTOCOL.md section 11): the
 * `confab` command's way into a running node.
 *
 * A Unix socket in the home directory (mode 0700); only the node's own
 * user may talk to it (SO_PEERCRED). Each client sends requests and gets
 * one reply each; some replies wait for an outcome (send --wait, anycast,
 * ping). Clients that follow or subscribe get events: messages (which
 * they consume from the inbox), peers up and down, joins and leaves. */
#include "node/app/app.h"

#include "wire/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PING_TIMEOUT_MS 5000u
/* A follower with this much unwritten gets no more msg events until half
 * of it is written: the messages wait, unread, in the inbox (bounded by
 * inbox_max), instead of in its queue. */
#define FOLLOW_HIGH ((size_t)4 << 20)
/* Waits for the store (a send answered once durable) end at the next
 * fsync; this many at once means the disk is stuck or the client abuses. */
#define ACCEPT_WAITS_MAX 65536u
#define RECV_BUDGET      ((size_t)32 << 20) /* bodies in one recv reply */
#define RECV_MAX         10000u             /* messages in one recv reply */

typedef struct ctl_client {
    uv_pipe_t pipe;
    node_control *ctl;
    node_list link;
    wire_ctl_reader reader;
    bool closing;
    bool follow;        /* consumes messages as events */
    size_t follow_left; /* how many more (SIZE_MAX: no end) */
    bool sub_peer, sub_group;
    bool sub_log;     /* the first hour (#14): the node's log lines */
    bool sub_traffic; /* the web page's events (issue 15) */
    bool msg_held;    /* msg events held back by FOLLOW_HIGH */
    bool in_batch;    /* takes the msg events being pushed */
    size_t out_bytes; /* queued to it, not yet written */
    size_t ev_bytes;  /* of which events (not msg events): never asked for */
    size_t held;      /* bytes of a request being read (reader buffers) */
    size_t n_waits;   /* send --wait, anycast and ping waits */
    size_t n_accepts; /* sends waiting for the store */
} ctl_client;

enum { WAIT_SEND = 1, WAIT_ANYCAST = 2, WAIT_PING = 3, WAIT_ACCEPT = 4 };
enum { WAIT_TRACE = 5 }; /* routing (#12): polled at the tick */

typedef struct ctl_wait {
    node_list link;
    ctl_client *client;
    uint64_t rid;
    uint64_t id; /* for a store waiter to find it again */
    int kind;
    uint8_t mid[CONFAB_MSG_ID_BYTES];
    uint64_t token;
    uint64_t deadline;
} ctl_wait;

struct node_control {
    confab_node *node;
    uv_pipe_t server;
    bool open;
    /* A client stays in clients from its accept to its close callback,
     * also while closing (then every walk skips it): a walk may close any
     * client, and none is freed before the walk is over. */
    node_list clients;
    node_list waits;
    size_t n_clients;  /* not closing */
    size_t out_total;  /* bytes queued to clients not closing */
    size_t held_total; /* bytes of requests being read, in all */
    bool in_log;       /* a log line is being sent: one it causes is not */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint64_t next_wait_id;
    uint8_t rbuf[65536];
    bool rbuf_busy;
    node_list reqs, svcs; /* request and reply (#19): ctl_req, ctl_svc */
};

typedef struct ctl_write {
    uv_write_t req;
    ctl_client *client;
    size_t len;
    bool event;
    uint8_t data[];
} ctl_write;

/* What a map sent to a client is, for the bounds. */
enum { SEND_REPLY = 0, SEND_EVENT = 1, SEND_MSG = 2 };

static void client_close(ctl_client *c);
static void count_held(ctl_client *c);
static void client_cut(ctl_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- writing ---------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
    ctl_write *w = (ctl_write *)req;
    ctl_client *c = w->client;
    c->out_bytes -= w->len;
    if (w->event)
        c->ev_bytes -= w->len;
    if (!c->closing)
        c->ctl->out_total -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        client_close(c);
        return;
    }
    /* A follower that reads again gets what waited in the inbox. */
    if (!c->closing && c->msg_held && c->out_bytes < FOLLOW_HIGH / 2) {
        c->msg_held = false;
        node_control_event(c->ctl->node,
                           &(confab_event){.type = CONFAB_EV_MESSAGE});
    }
}

/* The client (not closing) with the most bytes queued, counting extra
 * more for c. */
static ctl_client *largest_queue(node_control *ctl, ctl_client *c, size_t extra)
{
    ctl_client *big = NULL;
    size_t most = 0;
    for (node_list *e = ctl->clients.next; e != &ctl->clients; e = e->next) {
        ctl_client *k = node_container_of(e, ctl_client, link);
        size_t q = k->out_bytes + (k == c ? extra : 0);
        if (!k->closing && (big == NULL || q > most)) {
            big = k;
            most = q;
        }
    }
    return big;
}

/* The bounds on what waits to be written (docs/SECURITY.md, "Bounds"):
 * events a client never asked for, per client; everything, node-wide.
 * Returns false when c was cut. */
static bool room_to_send(ctl_client *c, size_t flen, int kind)
{
    node_control *ctl = c->ctl;
    const confab_config *cfg = &ctl->node->cfg;
    if (kind == SEND_EVENT && flen > cfg->ctl_events_max - c->ev_bytes) {
        client_cut(c,
                   "a control client does not read its events (%zu bytes "
                   "wait, at most %zu); closing it. A program that "
                   "subscribes must read what it subscribed to",
                   c->ev_bytes, cfg->ctl_events_max);
        return false;
    }
    while (!c->closing && flen > cfg->ctl_out_total - ctl->out_total) {
        ctl_client *big = largest_queue(ctl, c, flen);
        if (big == NULL)
            big = c; /* not reached: c itself is not closing */
        client_cut(big,
                   "the control clients leave %zu bytes unread, over the "
                   "bound of %zu (ctl_out_total); closing the one that "
                   "holds the most (%zu bytes). Clients must read their "
                   "replies",
                   ctl->out_total, cfg->ctl_out_total, big->out_bytes);
    }
    return !c->closing;
}

/* Frames and writes the map built in b. */
static void send_map(ctl_client *c, const wire_ctl_builder *b, int kind)
{
    if (c->closing)
        return;
    if (wire_ctl_finish(b) != 0) {
        client_close(c);
        return;
    }
    size_t flen = wire_ctl_framed_len(b->len);
    if (!room_to_send(c, flen, kind))
        return;
    ctl_write *w = malloc(sizeof *w + flen);
    if (w == NULL ||
        wire_ctl_frame(b->buf, b->len, w->data, flen, &w->len) != 0) {
        free(w);
        client_close(c);
        return;
    }
    w->client = c;
    w->event = kind == SEND_EVENT;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) != 0) {
        free(w);
        client_close(c);
        return;
    }
    c->out_bytes += w->len;
    c->ctl->out_total += w->len;
    if (w->event)
        c->ev_bytes += w->len;
}

static size_t builder_limit(const node_control *ctl)
{
    return ctl->node->cfg.max_message + ((size_t)64 << 10) + RECV_BUDGET;
}

/* Starts a reply {rid, ok: true, ...extra entries}. */
static void reply_begin(wire_ctl_builder *b, const node_control *ctl,
                        uint64_t rid, uint32_t extra)
{
    wire_ctl_builder_init(b, builder_limit(ctl));
    wire_ctl_map_begin(b, 2 + extra);
    wire_ctl_key(b, "rid");
    wire_ctl_put_uint(b, rid);
    wire_ctl_key(b, "ok");
    wire_ctl_put_bool(b, 1);
}

static void reply_done(ctl_client *c, wire_ctl_builder *b)
{
    send_map(c, b, SEND_REPLY);
    wire_ctl_builder_free(b);
}

static void reply_ok(ctl_client *c, uint64_t rid)
{
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 0);
    reply_done(c, &b);
}

static void reply_err(ctl_client *c, uint64_t rid, int err, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));

static void reply_err(ctl_client *c, uint64_t rid, int err, const char *fmt,
                      ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 5);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, rid);
    wire_ctl_key(&b, "ok");
    wire_ctl_put_bool(&b, 0);
    wire_ctl_key(&b, "err");
    wire_ctl_put_int(&b, err);
    wire_ctl_key(&b, "code");
    wire_ctl_put_cstr(&b, uv_err_name(err));
    wire_ctl_key(&b, "msg");
    wire_ctl_put_cstr(&b, msg);
    reply_done(c, &b);
}

static void put_hex_id(char out[65], const uint8_t *id)
{
    confab_id_hex(id, out);
}

/* ---- message maps ----------------------------------------------------- */

static const char *kind_name(confab_kind k)
{
    switch (k) {
    case CONFAB_UNICAST:
        return "unicast";
    case CONFAB_BROADCAST:
        return "broadcast";
    case CONFAB_GROUP:
        return "group";
    case CONFAB_ANYCAST:
        return "anycast";
    }
    return "unknown";
}

static void put_opt_str(wire_ctl_builder *b, const char *s)
{
    if (s != NULL)
        wire_ctl_put_cstr(b, s);
    else
        wire_ctl_put_nil(b);
}

static void put_message(wire_ctl_builder *b, const confab_message *m)
{
    wire_ctl_map_begin(b, 10);
    wire_ctl_key(b, "mid");
    wire_ctl_put_bin(b, m->id, CONFAB_MSG_ID_BYTES);
    wire_ctl_key(b, "from");
    wire_ctl_put_bin(b, m->from, CONFAB_ID_BYTES);
    wire_ctl_key(b, "from_name");
    wire_ctl_put_cstr(b, m->from_name);
    wire_ctl_key(b, "kind");
    wire_ctl_put_cstr(b, kind_name(m->kind));
    wire_ctl_key(b, "group");
    put_opt_str(b, m->group);
    wire_ctl_key(b, "seq");
    wire_ctl_put_uint(b, m->seq);
    wire_ctl_key(b, "ts");
    wire_ctl_put_uint(b, m->ts_us);
    wire_ctl_key(b, "ct");
    put_opt_str(b, m->content_type);
    wire_ctl_key(b, "body");
    wire_ctl_put_bin(b, m->body, m->len);
    /* area: routing (#12) */
    wire_ctl_key(b, "hops");
    wire_ctl_put_uint(b, m->hops != 0 ? m->hops : 1);
}

static void put_message_cb(const confab_message *m, void *user)
{
    put_message(user, m);
}

/* ---- requests --------------------------------------------------------- */

/* Reads an optional body and content type shared by the sending ops. */
static int get_body(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                    wire_bytes *body, char ct[WIRE_MAX_CT + 1], bool *has_ct)
{
    int rc = wire_ctl_get_bin(m, "body", body);
    if (rc != 0) {
        reply_err(c, rid, -EINVAL, "the request needs a body (bin)");
        return -1;
    }
    wire_bytes v;
    *has_ct = false;
    rc = wire_ctl_get_str(m, "ct", &v);
    if (rc == 0) {
        if (v.len > WIRE_MAX_CT) {
            reply_err(c, rid, -EMSGSIZE, "the content type is over %u bytes",
                      WIRE_MAX_CT);
            return -1;
        }
        memcpy(ct, v.ptr, v.len);
        ct[v.len] = '\0';
        *has_ct = true;
    } else if (rc != -ENOENT) {
        reply_err(c, rid, -EINVAL, "ct must be a string");
        return -1;
    }
    return 0;
}

static int get_group(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                     char out[WIRE_MAX_GROUP + 1])
{
    wire_bytes g;
    if (wire_ctl_get_str(m, "group", &g) != 0 || g.len == 0 ||
        g.len > WIRE_MAX_GROUP) {
        reply_err(c, rid, -EINVAL,
                  "the request needs a group: a name of 1 to %u bytes",
                  WIRE_MAX_GROUP);
        return -1;
    }
    memcpy(out, g.ptr, g.len);
    out[g.len] = '\0';
    return 0;
}

static int get_peer(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                    const char *key, uint8_t id[CONFAB_ID_BYTES])
{
    wire_bytes v;
    if (wire_ctl_get_bin(m, key, &v) != 0 || v.len != CONFAB_ID_BYTES) {
        reply_err(c, rid, -EINVAL, "the request needs %s: a 32-byte node id",
                  key);
        return -1;
    }
    memcpy(id, v.ptr, CONFAB_ID_BYTES);
    return 0;
}

static void send_error(ctl_client *c, uint64_t rid, int rc, const uint8_t *peer,
                       const char *group)
{
    char hex[65] = "";
    if (peer != NULL)
        put_hex_id(hex, peer);
    switch (rc) {
    case -ESRCH:
        reply_err(c, rid, rc,
                  "no known peer has id %.16s...; list them with 'confab "
                  "peers'",
                  hex);
        break;
    case -ENOTCONN:
        reply_err(c, rid, rc,
                  "peer %.16s... is not linked now; wait for it to come up "
                  "('confab peers' shows its state)",
                  hex);
        break;
    case -EAGAIN:
        reply_err(c, rid, rc,
                  "the queue is full (the peer reads slowly); try again "
                  "shortly");
        break;
    case -EMSGSIZE:
        reply_err(c, rid, rc,
                  "too large: a message body is at most %zu bytes here (and "
                  "the receiver may accept less)",
                  c->ctl->node->cfg.max_message);
        break;
    case -ENOENT:
        reply_err(c, rid, rc,
                  "no linked peer is a member of group %s; check 'confab "
                  "groups'",
                  group ? group : "?");
        break;
    default:
        reply_err(c, rid, rc, "%s", confab_strerror(rc));
        break;
    }
}

/* Whether c may start one more wait of kind; cuts it at the bound. Waits
 * for an outcome (send --wait, anycast) have no deadline of the node's,
 * so their number is bounded per client. */
static bool wait_room(ctl_client *c, int kind)
{
    const confab_config *cfg = &c->ctl->node->cfg;
    if (kind == WAIT_ACCEPT && c->n_accepts >= ACCEPT_WAITS_MAX) {
        client_cut(c,
                   "a control client has %zu sends waiting for the store, "
                   "the most at once; closing it. Is the disk stuck?",
                   c->n_accepts);
        return false;
    }
    if (kind != WAIT_ACCEPT && c->n_waits >= cfg->ctl_max_waits) {
        client_cut(c,
                   "a control client has %zu requests waiting for an "
                   "outcome (send --wait, anycast, ping), the most at once "
                   "(ctl_max_waits); closing it. Wait for answers before "
                   "asking more",
                   c->n_waits);
        return false;
    }
    return true;
}

static ctl_wait *add_wait(ctl_client *c, uint64_t rid, int kind,
                          const uint8_t *mid, uint64_t token)
{
    ctl_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return NULL;
    }
    w->id = ++c->ctl->next_wait_id;
    w->client = c;
    w->rid = rid;
    w->kind = kind;
    if (mid != NULL)
        memcpy(w->mid, mid, CONFAB_MSG_ID_BYTES);
    w->token = token;
    w->deadline = node_now_ms(c->ctl->node) + PING_TIMEOUT_MS;
    if (kind == WAIT_ACCEPT)
        c->n_accepts++;
    else
        c->n_waits++;
    node_list_add_tail(&c->ctl->waits, &w->link);
    return w;
}

/* The first hour (#14): how the node is set up, as "about" in the status
 * reply (docs/PROTOCOL.md, the control socket's status). */
static void put_about(wire_ctl_builder *b, const confab_node *n)
{
    confab_node_about a;
    confab_node_about_get(n, &a);
    wire_ctl_key(b, "about");
    wire_ctl_map_begin(b, 15);
    wire_ctl_key(b, "version");
    wire_ctl_put_cstr(b, a.version);
    wire_ctl_key(b, "uptime_ms");
    wire_ctl_put_uint(b, a.uptime_ms);
    wire_ctl_key(b, "network");
    wire_ctl_put_cstr(b, a.private_network ? "private" : "public");
    wire_ctl_key(b, "netkey_fp");
    wire_ctl_put_cstr(b, a.netkey_fp);
    wire_ctl_key(b, "bind");
    wire_ctl_put_cstr(b, a.bind_addr);
    wire_ctl_key(b, "discovery");
    wire_ctl_put_bool(b, a.discovery);
    wire_ctl_key(b, "discovery_port");
    wire_ctl_put_uint(b, a.discovery_port);
    size_t nt = a.n_targets < 8 ? a.n_targets : 8;
    wire_ctl_key(b, "targets");
    wire_ctl_array_begin(b, (uint32_t)nt);
    for (size_t i = 0; i < nt; i++)
        wire_ctl_put_cstr(b, a.targets[i]);
    wire_ctl_key(b, "targets_total");
    wire_ctl_put_uint(b, a.n_targets);
    wire_ctl_key(b, "allow_list");
    wire_ctl_put_bool(b, a.allow_list);
    wire_ctl_key(b, "allowed");
    wire_ctl_put_uint(b, a.n_allowed);
    wire_ctl_key(b, "ping_interval_ms");
    wire_ctl_put_uint(b, a.ping_interval_ms);
    wire_ctl_key(b, "peer_timeout_ms");
    wire_ctl_put_uint(b, a.peer_timeout_ms);
    wire_ctl_key(b, "anycast_timeout_ms");
    wire_ctl_put_uint(b, a.anycast_timeout_ms);
    wire_ctl_key(b, "max_message");
    wire_ctl_put_uint(b, a.max_message);
}

static void op_status(ctl_client *c, uint64_t rid)
{
    confab_node *n = c->ctl->node;
    confab_stats st;
    confab_node_stats(n, &st);
    const char *mine[WIRE_MAX_GROUPS];
    size_t ng = confab_my_groups(n, mine, WIRE_MAX_GROUPS);
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 9);
    wire_ctl_key(&b, "id");
    wire_ctl_put_bin(&b, confab_node_id(n), CONFAB_ID_BYTES);
    put_about(&b, n);
    wire_ctl_key(&b, "name");
    wire_ctl_put_cstr(&b, confab_node_name(n));
    wire_ctl_key(&b, "port");
    wire_ctl_put_uint(&b, confab_node_port(n));
    wire_ctl_key(&b, "peers");
    wire_ctl_put_uint(&b, st.peers_up);
    wire_ctl_key(&b, "known");
    wire_ctl_put_uint(&b, n->peers_len);
    wire_ctl_key(&b, "groups");
    wire_ctl_array_begin(&b, (uint32_t)ng);
    for (size_t i = 0; i < ng; i++)
        wire_ctl_put_cstr(&b, mine[i]);
    wire_ctl_key(&b, "inbox");
    wire_ctl_put_uint(&b, confab_inbox_count(n));
    struct {
        const char *k;
        uint64_t v;
    } counters[] = {
        {"msgs_sent", st.msgs_sent},
        {"msgs_received", st.msgs_received},
        {"bytes_sent", st.bytes_sent},
        {"bytes_received", st.bytes_received},
        {"links_accepted", st.links_accepted},
        {"links_dialed", st.links_dialed},
        {"links_open", st.links_open},
        {"handshakes_failed", st.handshakes_failed},
        {"protocol_errors", st.protocol_errors},
        {"duplicate_links", st.duplicate_links},
        {"beacons_sent", st.beacons_sent},
        {"beacons_received", st.beacons_received},
        {"beacons_dropped", st.beacons_dropped},
        {"group_msgs_dropped", st.group_msgs_dropped},
        {"anycast_failovers", st.anycast_failovers},
        {"inbox_refused_full", st.inbox_refused_full},
        {"store_records_replayed", st.store_records_replayed},
        {"store_bytes_discarded", st.store_bytes_discarded},
        /* bounds: the control socket */
        {"ctl_clients_cut", st.ctl_clients_cut},
        {"ctl_clients", st.ctl_clients},
        /* bounds: links */
        {"links_cut_tx_full", st.links_cut_tx_full},
        {"link_tx_peak", st.link_tx_peak},
        {"pings_unanswered", st.pings_unanswered},
        {"reasm_bytes", st.reasm_bytes},
        {"reasm_peak", st.reasm_peak},
        {"reasm_dropped", st.reasm_dropped},
        {"bcast_repeats_dropped", st.bcast_repeats_dropped},

        /* bounds: the peer table and who may join */
        {"peers_evicted", st.peers_evicted},
        {"peers_expired", st.peers_expired},
        {"peers_refused_full", st.peers_refused_full},
        {"dials_rate_limited", st.dials_rate_limited},
        {"links_refused_source", st.links_refused_source},
        {"handshakes_not_allowed", st.handshakes_not_allowed},
        {"beacons_not_allowed", st.beacons_not_allowed},

        /* bounds: groups */
        {"group_members_cut", st.group_members_cut},
        {"group_total_cut", st.group_total_cut},
        {"group_memberships", st.group_memberships},

        /* bounds: the store */
        {"store_records_lost", st.store_records_lost},
        {"store_epoch_restarts", st.store_epoch_restarts},
        {"delivery_rebased", st.delivery_rebased},
        {"inbox_reads_refused", st.inbox_reads_refused},

        /* area: routing (#12) */
        {"routes", st.routes},
        {"route_adverts_sent", st.route_adverts_sent},
        {"route_adverts_received", st.route_adverts_received},
        {"route_adverts_dropped", st.route_adverts_dropped},
        {"route_entries_bad", st.route_entries_bad},
        {"route_table_full", st.route_table_full},
        {"route_peers_cut", st.route_peers_cut},
        {"routed_sent", st.routed_sent},
        {"routed_received", st.routed_received},
        {"routed_forwarded", st.routed_forwarded},
        {"routed_no_route", st.routed_no_route},
        {"routed_hops_exhausted", st.routed_hops_exhausted},
        {"routed_forged", st.routed_forged},
        {"routed_inner_bad", st.routed_inner_bad},
        {"routed_relay_full", st.routed_relay_full},
        {"routed_not_allowed", st.routed_not_allowed},
        {"traces_answered", st.traces_answered},
        {"traces_dropped", st.traces_dropped},
        {"link_writes", st.link_writes},

        /* area: request and reply (#19) */
        {"requests_sent", st.requests_sent},
        {"requests_answered", st.requests_answered},
        {"requests_timed_out", st.requests_timed_out},
        {"request_failovers", st.request_failovers},
        {"requests_served", st.requests_served},
        {"requests_refused_busy", st.requests_refused_busy},
        {"requests_no_service", st.requests_no_service},
        {"requests_expired_in", st.requests_expired_in},
        {"requests_pending", st.requests_pending},
        {"replies_unmatched", st.replies_unmatched},
        {"replies_duplicate", st.replies_duplicate},
        {"replies_oversized", st.replies_oversized},
        {"requests_malformed", st.requests_malformed},

        /* area: the first hour (#14) */
        /* dropped beacons and failed handshakes, by cause */
        {"beacons_own", st.beacons_own},
        {"beacons_bad_tag", st.beacons_bad_tag},
        {"beacons_rate_limited", st.beacons_rate_limited},
        {"beacons_malformed", st.beacons_malformed},
        {"handshakes_refused_key", st.handshakes_refused_key},
        {"handshakes_timed_out", st.handshakes_timed_out},
        {"links_refused_busy", st.links_refused_busy},
        {"peers_gone", st.peers_gone},

        /* area: discovery on every interface (#16) */
        {"beacons_bad_addr", st.beacons_bad_addr},
        {"peers_addr_refused", st.peers_addr_refused},
        {"peers_addr_withheld", st.peers_addr_withheld},
        {"beacons6_sent", st.beacons6_sent},
        {"beacons6_received", st.beacons6_received},

        /* area: performance (#18) */
        {"timer_wakeups", st.timer_wakeups},
        {"pings_spared", st.pings_spared},
        {"peers_entries_sent", st.peers_entries_sent},
        {"peers_entries_received", st.peers_entries_received},
        {"frames_sent", st.frames_sent},
        {"frames_batched", st.frames_batched},
        {"frame_maps_sent", st.frame_maps_sent},
        {"frames_received", st.frames_received},
        {"frame_maps_received", st.frame_maps_received},
        {"frames_batch_refused", st.frames_batch_refused},

        /* area: one-copy (#18) */
        {"frags_in_place", st.frags_in_place},

        /* area: scale (#13) */
        {"overlay_on", st.overlay_on},
        {"overlay_links", st.overlay_links},
        {"overlay_passive", st.overlay_passive},
        {"overlay_msgs_sent", st.overlay_msgs_sent},
        {"overlay_msgs_received", st.overlay_msgs_received},
        {"overlay_refused", st.overlay_refused},
        {"overlay_view_changes", st.overlay_view_changes},
        {"overlay_links_closed", st.overlay_links_closed},
        {"overlay_gossip_dup", st.overlay_gossip_dup},
        {"overlay_grafts", st.overlay_grafts},
        {"overlay_suspected", st.overlay_suspected},
        {"overlay_declared_down", st.overlay_declared_down},
        {"overlay_refuted", st.overlay_refuted},
        {"overlay_view_repairs", st.overlay_view_repairs},

    };
    /* A client refuses a map of more than WIRE_CTL_MAX_KEYS entries. */
    _Static_assert(sizeof counters / sizeof counters[0] <= WIRE_CTL_MAX_KEYS,
                   "the stats map outgrew WIRE_CTL_MAX_KEYS");
    size_t nc = sizeof counters / sizeof counters[0];
    wire_ctl_key(&b, "stats");
    wire_ctl_map_begin(&b, (uint32_t)nc);
    for (size_t i = 0; i < nc; i++) {
        wire_ctl_key(&b, counters[i].k);
        wire_ctl_put_uint(&b, counters[i].v);
    }
    reply_done(c, &b);
}

static const char *state_name(confab_peer_state s)
{
    switch (s) {
    case CONFAB_PEER_KNOWN:
        return "known";
    case CONFAB_PEER_CONNECTING:
        return "connecting";
    case CONFAB_PEER_UP:
        return "up";
    case CONFAB_PEER_DOWN:
        return "down";
    case CONFAB_PEER_GONE:
        return "gone";
    }
    return "unknown";
}

static void op_peers(ctl_client *c, uint64_t rid)
{
    confab_node *n = c->ctl->node;
    size_t count;
    confab_peers(n, NULL, 0, &count);
    confab_peer_info *info = calloc(count ? count : 1, sizeof *info);
    if (info == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    confab_peers(n, info, count, &count);
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 1);
    wire_ctl_key(&b, "peers");
    wire_ctl_array_begin(&b, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        const confab_peer_info *p = &info[i];
        wire_ctl_map_begin(&b, 11);
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, p->id, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "name");
        wire_ctl_put_cstr(&b, p->name);
        wire_ctl_key(&b, "address");
        wire_ctl_put_cstr(&b, p->address);
        wire_ctl_key(&b, "state");
        wire_ctl_put_cstr(&b, state_name(p->state));
        wire_ctl_key(&b, "rtt_us");
        wire_ctl_put_uint(&b, p->rtt_us);
        wire_ctl_key(&b, "outbound");
        wire_ctl_put_bool(&b, p->outbound);
        wire_ctl_key(&b, "msgs_sent");
        wire_ctl_put_uint(&b, p->msgs_sent);
        wire_ctl_key(&b, "msgs_received");
        wire_ctl_put_uint(&b, p->msgs_received);
        wire_ctl_key(&b, "bytes_sent");
        wire_ctl_put_uint(&b, p->bytes_sent);
        wire_ctl_key(&b, "bytes_received");
        wire_ctl_put_uint(&b, p->bytes_received);
        wire_ctl_key(&b, "queued");
        wire_ctl_put_uint(&b, p->queued_bytes);
    }
    free(info);
    reply_done(c, &b);
}

static void op_groups(ctl_client *c, uint64_t rid)
{
    node_group_list l;
    if (node_groups_list(c->ctl->node, &l) != 0) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 1);
    wire_ctl_key(&b, "groups");
    wire_ctl_array_begin(&b, (uint32_t)l.n);
    for (size_t i = 0; i < l.n; i++) {
        const node_group_row *g = &l.rows[i];
        wire_ctl_map_begin(&b, 3);
        wire_ctl_key(&b, "group");
        wire_ctl_put_cstr(&b, g->name);
        wire_ctl_key(&b, "members");
        wire_ctl_array_begin(&b, (uint32_t)g->count);
        for (size_t j = 0; j < g->count; j++)
            wire_ctl_put_bin(&b, l.members[g->first + j], CONFAB_ID_BYTES);
        wire_ctl_key(&b, "self");
        wire_ctl_put_bool(&b, g->self);
    }
    node_group_list_free(&l);
    reply_done(c, &b);
}

/* the peer table and who may join: `allow` (with an id: allow it; without:
 * the list) and `deny`. The reply is the list as it is now. */
/* The first hour (#14): the outbox, listed (at most QUEUE_LIST_MAX, and
 * how many in all), or one message cancelled. */
#define QUEUE_LIST_MAX 1000u
static void op_queue(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    confab_node *n = c->ctl->node;
    wire_bytes v;
    int rc = wire_ctl_get_bin(m, "cancel", &v);
    if (rc == 0 && v.len == CONFAB_MSG_ID_BYTES) {
        rc = confab_queued_cancel(n, v.ptr);
        if (rc != 0)
            reply_err(c, rid, rc,
                      "no such message in the queue (delivered, expired "
                      "or never sent)");
        else
            reply_ok(c, rid);
        return;
    }
    if (rc != -ENOENT) {
        reply_err(c, rid, -EINVAL, "cancel must be a 16-byte message id");
        return;
    }
    confab_queued *q = calloc(QUEUE_LIST_MAX, sizeof *q);
    if (q == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    size_t total = confab_queued_list(n, q, QUEUE_LIST_MAX);
    size_t k = total < QUEUE_LIST_MAX ? total : QUEUE_LIST_MAX;
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 2);
    wire_ctl_key(&b, "total");
    wire_ctl_put_uint(&b, total);
    wire_ctl_key(&b, "queued");
    wire_ctl_array_begin(&b, (uint32_t)k);
    for (size_t i = 0; i < k; i++) {
        wire_ctl_map_begin(&b, 5);
        wire_ctl_key(&b, "mid");
        wire_ctl_put_bin(&b, q[i].id, CONFAB_MSG_ID_BYTES);
        wire_ctl_key(&b, "to");
        wire_ctl_put_bin(&b, q[i].to, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "len");
        wire_ctl_put_uint(&b, q[i].len);
        wire_ctl_key(&b, "expires_us");
        wire_ctl_put_uint(&b, q[i].expires_us);
        wire_ctl_key(&b, "sent");
        wire_ctl_put_bool(&b, q[i].sent);
    }
    free(q);
    reply_done(c, &b);
}

/* The first hour (#14): give up on a peer (confab_forget). */
static void op_forget(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    wire_bytes v;
    if (wire_ctl_get_bin(m, "id", &v) != 0 || v.len != CONFAB_ID_BYTES) {
        reply_err(c, rid, -EINVAL, "the request needs id: a 32-byte node id");
        return;
    }
    int rc = confab_forget(c->ctl->node, v.ptr);
    if (rc == -EBUSY)
        reply_err(c, rid, rc,
                  "it is linked now; 'confab deny ID' cuts it and keeps it "
                  "out");
    else if (rc == -ENOENT)
        reply_err(c, rid, rc, "no such peer");
    else if (rc != 0)
        reply_err(c, rid, rc, "%s", confab_strerror(rc));
    else
        reply_ok(c, rid);
}

static void op_allow(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                     bool allow)
{
    confab_node *n = c->ctl->node;
    wire_bytes v;
    int rc = wire_ctl_get_bin(m, "id", &v);
    if ((rc == -ENOENT && !allow) || rc == -EPROTO ||
        (rc == 0 && v.len != CONFAB_ID_BYTES)) {
        reply_err(c, rid, -EINVAL, "the request needs id: a 32-byte node id");
        return;
    }
    char err[600];
    if (rc == 0 &&
        (rc = node_allow_set(n, v.ptr, allow, err, sizeof err)) != 0) {
        reply_err(c, rid, rc, "%s", err);
        return;
    }
    size_t count = 0;
    bool list = confab_allowed(n, NULL, 0, &count) == 0;
    uint8_t(*ids)[CONFAB_ID_BYTES] = calloc(count ? count : 1, sizeof *ids);
    if (ids == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    (void)confab_allowed(n, ids, count, &count);
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 2);
    wire_ctl_key(&b, "list");
    wire_ctl_put_bool(&b, list);
    wire_ctl_key(&b, "ids");
    wire_ctl_array_begin(&b, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        wire_ctl_put_bin(&b, ids[i], CONFAB_ID_BYTES);
    free(ids);
    reply_done(c, &b);
}

static void op_join_leave(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                          bool join)
{
    char g[WIRE_MAX_GROUP + 1];
    if (get_group(c, rid, m, g) != 0)
        return;
    confab_node *n = c->ctl->node;
    int rc = join ? confab_join(n, g) : confab_leave(n, g);
    if (rc == -ENOENT)
        reply_err(c, rid, rc, "this node is not a member of group %s", g);
    else if (rc == -ENOSPC)
        reply_err(c, rid, rc,
                  "this node is in %u groups already; leave one "
                  "first",
                  WIRE_MAX_GROUPS);
    else if (rc != 0)
        reply_err(c, rid, rc, "group names are 1 to %u bytes of UTF-8",
                  WIRE_MAX_GROUP);
    else
        reply_ok(c, rid);
}

static void reply_mid(ctl_client *c, uint64_t rid, const uint8_t *mid,
                      const char *extra_key, uint64_t extra)
{
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, extra_key ? 2 : 1);
    wire_ctl_key(&b, "mid");
    wire_ctl_put_bin(&b, mid, CONFAB_MSG_ID_BYTES);
    if (extra_key != NULL) {
        wire_ctl_key(&b, extra_key);
        wire_ctl_put_uint(&b, extra);
    }
    reply_done(c, &b);
}

static void finish_wait(ctl_wait *w);

/* A send is answered once it is accepted: once its record is durable, so
 * that a node killed after the answer still has it. */
static void accepted_cb(confab_node *n, void *user)
{
    uint64_t id = (uint64_t)(uintptr_t)user;
    node_control *ctl = n->control;
    if (ctl == NULL)
        return;
    for (node_list *e = ctl->waits.next; e != &ctl->waits; e = e->next) {
        ctl_wait *w = node_container_of(e, ctl_wait, link);
        if (w->kind == WAIT_ACCEPT && w->id == id && !w->client->closing) {
            reply_mid(w->client, w->rid, w->mid, NULL, 0);
            finish_wait(w);
            return;
        }
    }
}

static void op_send(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                    const char *op)
{
    confab_node *n = c->ctl->node;
    wire_bytes body;
    char ct[WIRE_MAX_CT + 1], g[WIRE_MAX_GROUP + 1];
    bool has_ct;
    uint8_t to[CONFAB_ID_BYTES], mid[CONFAB_MSG_ID_BYTES];
    if (get_body(c, rid, m, &body, ct, &has_ct) != 0)
        return;
    confab_send_opts o = {.content_type = has_ct ? ct : NULL};
    size_t sent = 0;
    int rc;
    if (strcmp(op, "send") == 0) {
        if (get_peer(c, rid, m, "to", to) != 0)
            return;
        int wait = 0;
        uint64_t ttl = 0;
        (void)wire_ctl_get_bool(m, "wait", &wait);
        (void)wire_ctl_get_uint(m, "ttl_ms", &ttl);
        o.ttl_ms = ttl;
        if (!wait_room(c, wait ? WAIT_SEND : WAIT_ACCEPT))
            return;
        rc = confab_send(n, to, body.ptr, body.len, &o, mid);
        if (rc != 0) {
            send_error(c, rid, rc, to, NULL);
        } else if (wait) {
            (void)add_wait(c, rid, WAIT_SEND, mid, 0);
        } else {
            ctl_wait *w = add_wait(c, rid, WAIT_ACCEPT, mid, 0);
            if (w != NULL &&
                confab_node_when_durable(n, accepted_cb,
                                         (void *)(uintptr_t)w->id) != 0) {
                finish_wait(w);
                reply_err(c, rid, -EIO,
                          "the node cannot write its store; see its log");
            }
        }
        return;
    }
    if (strcmp(op, "broadcast") == 0) {
        rc = confab_broadcast(n, body.ptr, body.len, &o, mid, &sent);
        if (rc != 0)
            send_error(c, rid, rc, NULL, NULL);
        else
            reply_mid(c, rid, mid, "sent", sent);
        return;
    }
    if (get_group(c, rid, m, g) != 0)
        return;
    if (strcmp(op, "shout") == 0) {
        rc = confab_shout(n, g, body.ptr, body.len, &o, mid, &sent);
        if (rc != 0)
            send_error(c, rid, rc, NULL, g);
        else
            reply_mid(c, rid, mid, "sent", sent);
        return;
    }
    if (!wait_room(c, WAIT_ANYCAST))
        return;
    rc = confab_anycast(n, g, body.ptr, body.len, &o, mid);
    if (rc != 0)
        send_error(c, rid, rc, NULL, g);
    else
        (void)add_wait(c, rid, WAIT_ANYCAST, mid, 0);
}

static void op_ping(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    uint8_t to[CONFAB_ID_BYTES];
    if (get_peer(c, rid, m, "to", to) != 0)
        return;
    wire_bytes data = {NULL, 0};
    int rc = wire_ctl_get_bin(m, "data", &data);
    if (rc != 0 && rc != -ENOENT) {
        reply_err(c, rid, -EINVAL, "data must be bin");
        return;
    }
    uint64_t token;
    if (!wait_room(c, WAIT_PING))
        return;
    rc = confab_ping(c->ctl->node, to, data.ptr, data.len, &token);
    if (rc != 0)
        send_error(c, rid, rc, to, NULL);
    else
        (void)add_wait(c, rid, WAIT_PING, NULL, token);
}

/* routing (#12): the route table, and `confab trace` */
static void op_routes(ctl_client *c, uint64_t rid)
{
    confab_node *n = c->ctl->node;
    confab_route r[256];
    size_t count = confab_routes(n, r, 256);
    if (count > 256)
        count = 256;
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 1);
    wire_ctl_key(&b, "routes");
    wire_ctl_array_begin(&b, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        confab_peer_info info;
        bool known = confab_peer(n, r[i].dst, &info) == 0;
        wire_ctl_map_begin(&b, 5);
        wire_ctl_key(&b, "dst");
        wire_ctl_put_bin(&b, r[i].dst, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "name");
        wire_ctl_put_cstr(&b, known ? info.name : "");
        wire_ctl_key(&b, "via");
        wire_ctl_put_bin(&b, r[i].via, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "metric");
        wire_ctl_put_uint(&b, r[i].metric);
        wire_ctl_key(&b, "seq");
        wire_ctl_put_uint(&b, r[i].seq);
    }
    reply_done(c, &b);
}

static void op_trace(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    uint8_t to[CONFAB_ID_BYTES];
    if (get_peer(c, rid, m, "to", to) != 0)
        return;
    uint64_t token;
    if (!wait_room(c, WAIT_TRACE))
        return;
    int rc = confab_trace(c->ctl->node, to, &token);
    if (rc == -ESRCH)
        reply_err(c, rid, rc,
                  "no link and no route to that node now; 'confab peers' "
                  "shows who is reachable");
    else if (rc != 0)
        send_error(c, rid, rc, to, NULL);
    else
        (void)add_wait(c, rid, WAIT_TRACE, NULL, token);
}

/* A trace that is done is answered: its hops, in order. */
static void trace_reply(ctl_wait *w)
{
    confab_node *n = w->client->ctl->node;
    confab_trace_hop hops[CONFAB_TRACE_HOPS];
    size_t count = 0;
    int done = 0;
    if (confab_trace_result(n, w->token, hops, CONFAB_TRACE_HOPS, &count,
                            &done) != 0) {
        reply_err(w->client, w->rid, -ENOENT,
                  "the trace was dropped (8 run at once at most); try again");
        finish_wait(w);
        return;
    }
    if (!done)
        return;
    wire_ctl_builder b;
    reply_begin(&b, w->client->ctl, w->rid, 1);
    wire_ctl_key(&b, "hops");
    wire_ctl_array_begin(&b, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        wire_ctl_map_begin(&b, 6);
        wire_ctl_key(&b, "hop");
        wire_ctl_put_uint(&b, hops[i].hop);
        wire_ctl_key(&b, "answered");
        wire_ctl_put_bool(&b, hops[i].answered);
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, hops[i].id, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "name");
        wire_ctl_put_cstr(&b, hops[i].name);
        wire_ctl_key(&b, "address");
        wire_ctl_put_cstr(&b, hops[i].address);
        wire_ctl_key(&b, "rtt_us");
        wire_ctl_put_uint(&b, hops[i].rtt_us);
    }
    reply_done(w->client, &b);
    finish_wait(w);
}

static size_t recv_into(ctl_client *c, wire_ctl_builder *b, size_t max);

/* Makes c follow for `more` messages (SIZE_MAX: with no end). */
static void follow_more(ctl_client *c, size_t more)
{
    if (more == 0)
        return;
    if (!c->follow)
        c->follow_left = 0;
    c->follow = true;
    c->follow_left = more == SIZE_MAX || c->follow_left > SIZE_MAX - more
                         ? SIZE_MAX
                         : c->follow_left + more;
}

static void op_recv(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    uint64_t max = UINT64_MAX;
    int follow = 0;
    int rc = wire_ctl_get_uint(m, "max", &max);
    if ((rc != 0 && rc != -ENOENT) ||
        ((rc = wire_ctl_get_bool(m, "follow", &follow)) != 0 &&
         rc != -ENOENT)) {
        reply_err(c, rid, -EINVAL, "max must be a uint and follow a bool");
        return;
    }
    bool bounded = max != UINT64_MAX;
    if ((rc = node_inbox_read_error(c->ctl->node)) != 0) {
        /* the store: a message is not handed out before its read mark
         * is written (docs/ARCHITECTURE.md, "The store") */
        reply_err(c, rid, rc,
                  "the node cannot write its store (is the disk full?), so "
                  "it cannot mark messages read: they stay unread until "
                  "space is freed and the node restarted");
        return;
    }
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 1);
    wire_ctl_key(&b, "msgs");
    size_t got = recv_into(c, &b, max > RECV_MAX ? RECV_MAX : (size_t)max);
    reply_done(c, &b);
    if (!follow)
        return;
    /* With max, the follow ends after max messages in all, so that nothing
     * is marked read that the client will not take. */
    uint64_t left = bounded ? max - got : UINT64_MAX;
    follow_more(c, left >= SIZE_MAX ? SIZE_MAX : (size_t)left);
    /* What the reply had no room for comes at once as events. */
    node_control_event(c->ctl->node,
                       &(confab_event){.type = CONFAB_EV_MESSAGE});
}

/* Puts up to max unread messages (within the budget) into b as an array,
 * marking them read. */
static size_t recv_into(ctl_client *c, wire_ctl_builder *b, size_t max)
{
    confab_node *n = c->ctl->node;
    size_t k = node_inbox_fit(n, max, RECV_BUDGET);
    wire_ctl_array_begin(b, (uint32_t)k);
    return confab_inbox_read(n, k, put_message_cb, b);
}

static void op_subscribe(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    wire_iter it;
    uint32_t count;
    if (wire_ctl_get_array(m, "events", &it, &count) != 0) {
        reply_err(c, rid, -EINVAL,
                  "subscribe needs events: an array of \"msg\", \"peer\", "
                  "\"group\", \"traffic\"");
        return;
    }
    bool msg = false, peer = false, group = false;
    wire_bytes e;
    int rc;
    while ((rc = wire_ctl_next_str(&it, &e)) == 1) {
        if (e.len == 3 && memcmp(e.ptr, "msg", 3) == 0)
            msg = true;
        else if (e.len == 4 && memcmp(e.ptr, "peer", 4) == 0)
            peer = true;
        else if (e.len == 5 && memcmp(e.ptr, "group", 5) == 0)
            group = true;
        else if (e.len == 7 && memcmp(e.ptr, "traffic", 7) == 0)
            c->sub_traffic = true;
        else if (e.len == 3 && memcmp(e.ptr, "log", 3) == 0)
            c->sub_log = true;
        else
            rc = -1;
        if (rc < 0)
            break;
    }
    if (rc != 0) {
        reply_err(c, rid, -EINVAL,
                  "unknown event kind; the kinds are msg, peer, group, "
                  "traffic and log");
        return;
    }
    if (msg)
        follow_more(c, SIZE_MAX);
    c->sub_peer = c->sub_peer || peer;
    c->sub_group = c->sub_group || group;
    reply_ok(c, rid);
    if (msg)
        node_control_event(c->ctl->node,
                           &(confab_event){.type = CONFAB_EV_MESSAGE});
}

/* ---- requests and replies (section 14) --------------------------------- */

/* A `request` op waiting for its replies, and a service a client serves.
 * Both end with their client (client_closed). */
typedef struct ctl_req {
    node_list link;
    ctl_client *client;
    uint64_t rid;
    uint64_t handle;
} ctl_req;

typedef struct ctl_svc {
    node_list link;
    ctl_client *client;
    char name[WIRE_MAX_GROUP + 1];
} ctl_svc;

static const char *reply_status_name(confab_reply_status s)
{
    switch (s) {
    case CONFAB_REPLY_OK:
        return "ok";
    case CONFAB_REPLY_BUSY:
        return "busy";
    case CONFAB_REPLY_NO_SERVICE:
        return "no_service";
    case CONFAB_REPLY_TOO_LARGE:
        return "too_large";
    case CONFAB_REPLY_ERROR:
        break;
    }
    return "error";
}

static void event_begin(wire_ctl_builder *b, const node_control *ctl,
                        const char *ev, uint32_t extra);

static void on_request_reply(confab_node *n, const confab_reply_info *r,
                             void *user)
{
    ctl_req *q = user;
    ctl_client *c = q->client;
    wire_ctl_builder b;
    event_begin(&b, n->control, r->done ? "done" : "reply", r->done ? 3 : 5);
    wire_ctl_key(&b, "req"); /* events carry no rid (section 11.2) */
    wire_ctl_put_uint(&b, q->rid);
    if (r->done) {
        wire_ctl_key(&b, "answered");
        wire_ctl_put_uint(&b, r->answered);
        wire_ctl_key(&b, "err");
        wire_ctl_put_int(&b, r->result);
    } else {
        wire_ctl_key(&b, "from");
        wire_ctl_put_bin(&b, r->from, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "from_name");
        wire_ctl_put_cstr(&b, r->from_name);
        wire_ctl_key(&b, "status");
        wire_ctl_put_cstr(&b, reply_status_name(r->status));
        wire_ctl_key(&b, "body");
        wire_ctl_put_bin(&b, r->body, r->len);
    }
    /* Replies are as large as messages: bounded as msg events are. */
    send_map(c, &b, SEND_MSG);
    wire_ctl_builder_free(&b);
    if (r->done) {
        c->n_waits--;
        node_list_del(&q->link);
        free(q);
    }
}

static int get_service(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                       char out[WIRE_MAX_GROUP + 1])
{
    wire_bytes g;
    if (wire_ctl_get_str(m, "service", &g) != 0 || g.len == 0 ||
        g.len > WIRE_MAX_GROUP) {
        reply_err(c, rid, -EINVAL,
                  "the request needs service: a name of 1 to %u bytes",
                  WIRE_MAX_GROUP);
        return -1;
    }
    memcpy(out, g.ptr, g.len);
    out[g.len] = '\0';
    return 0;
}

static int get_request_opts(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                            confab_request_opts *o, uint8_t peer[32])
{
    uint64_t timeout = 0, try_ms = 0, max = 0;
    int all = 0, rc = 0;
    wire_bytes v;
    if ((wire_ctl_get_uint(m, "timeout_ms", &timeout) == -EPROTO) ||
        (wire_ctl_get_uint(m, "try_ms", &try_ms) == -EPROTO) ||
        (wire_ctl_get_uint(m, "max_reply", &max) == -EPROTO) ||
        (wire_ctl_get_bool(m, "all", &all) == -EPROTO) || timeout > 86400000u ||
        try_ms > 86400000u)
        rc = -1;
    int prc = wire_ctl_get_bin(m, "peer", &v);
    if (rc != 0 || (prc == 0 && v.len != CONFAB_ID_BYTES) || prc == -EPROTO ||
        (prc == 0 && all)) {
        reply_err(c, rid, -EINVAL,
                  "bad request options: timeout_ms and try_ms are uints of "
                  "at most a day, peer a 32-byte node id, all a bool (not "
                  "with peer)");
        return -1;
    }
    o->mode = all ? CONFAB_REQ_ALL : CONFAB_REQ_ANY;
    if (prc == 0) {
        memcpy(peer, v.ptr, CONFAB_ID_BYTES);
        o->mode = CONFAB_REQ_PEER;
        o->peer = peer;
    }
    o->timeout_ms = (unsigned)timeout;
    o->try_ms = (unsigned)try_ms;
    o->max_reply = max > SIZE_MAX ? SIZE_MAX : (size_t)max;
    return 0;
}

static void op_request(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    char svc[WIRE_MAX_GROUP + 1];
    uint8_t peer[CONFAB_ID_BYTES];
    wire_bytes body;
    confab_request_opts o;
    memset(&o, 0, sizeof o);
    if (get_service(c, rid, m, svc) != 0 ||
        get_request_opts(c, rid, m, &o, peer) != 0)
        return;
    if (wire_ctl_get_bin(m, "body", &body) != 0) {
        reply_err(c, rid, -EINVAL, "the request needs a body (bin)");
        return;
    }
    if (!wait_room(c, WAIT_SEND))
        return;
    ctl_req *q = calloc(1, sizeof *q);
    if (q == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    q->client = c;
    q->rid = rid;
    int rc = confab_request(c->ctl->node, svc, body.ptr, body.len, &o,
                            on_request_reply, q, &q->handle);
    if (rc == -ENOENT) {
        reply_err(c, rid, rc,
                  "no linked peer serves %s (none is a member of group "
                  "%s); start 'confab serve %s --exec COMMAND' on one, "
                  "and check 'confab groups'",
                  svc, svc, svc);
    } else if (rc == -EAGAIN && o.mode != CONFAB_REQ_PEER) {
        reply_err(c, rid, rc,
                  "this node waits on too many requests "
                  "(request_max_pending); wait for answers first");
    } else if (rc != 0) {
        send_error(c, rid, rc, o.peer, svc);
    }
    if (rc != 0) {
        free(q);
        return;
    }
    c->n_waits++;
    node_list_add_tail(&c->ctl->reqs, &q->link);
    wire_ctl_builder b;
    reply_begin(&b, c->ctl, rid, 1);
    wire_ctl_key(&b, "handle");
    wire_ctl_put_uint(&b, q->handle);
    reply_done(c, &b);
}

static void on_serve_request(confab_node *n, const confab_request_in *r,
                             void *user)
{
    ctl_svc *s = user;
    wire_ctl_builder b;
    event_begin(&b, n->control, "request", 7);
    wire_ctl_key(&b, "handle");
    wire_ctl_put_uint(&b, r->handle);
    wire_ctl_key(&b, "service");
    wire_ctl_put_cstr(&b, r->service);
    wire_ctl_key(&b, "from");
    wire_ctl_put_bin(&b, r->from, CONFAB_ID_BYTES);
    wire_ctl_key(&b, "from_name");
    wire_ctl_put_cstr(&b, r->from_name);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, r->body, r->len);
    wire_ctl_key(&b, "wait_ms");
    wire_ctl_put_uint(&b, r->wait_ms);
    wire_ctl_key(&b, "max_reply");
    wire_ctl_put_uint(&b, r->max_reply);
    send_map(s->client, &b, SEND_MSG);
    wire_ctl_builder_free(&b);
}

static void svc_end(ctl_svc *s, confab_node *n)
{
    (void)confab_unserve(n, s->name);
    node_list_del(&s->link);
    free(s);
}

static void op_serve(ctl_client *c, uint64_t rid, const wire_ctl_map *m,
                     bool serve)
{
    char svc[WIRE_MAX_GROUP + 1];
    if (get_service(c, rid, m, svc) != 0)
        return;
    node_control *ctl = c->ctl;
    if (!serve) {
        for (node_list *e = ctl->svcs.next; e != &ctl->svcs; e = e->next) {
            ctl_svc *s = node_container_of(e, ctl_svc, link);
            if (s->client == c && strcmp(s->name, svc) == 0) {
                svc_end(s, ctl->node);
                reply_ok(c, rid);
                return;
            }
        }
        reply_err(c, rid, -ENOENT, "this client does not serve %s", svc);
        return;
    }
    ctl_svc *s = calloc(1, sizeof *s);
    if (s == NULL) {
        reply_err(c, rid, -ENOMEM, "out of memory");
        return;
    }
    s->client = c;
    memcpy(s->name, svc, sizeof svc);
    int rc = confab_serve(ctl->node, svc, on_serve_request, s);
    if (rc != 0) {
        free(s);
        if (rc == -EEXIST)
            reply_err(c, rid, rc,
                      "%s is served on this node already (by another "
                      "'confab serve'); stop that one first",
                      svc);
        else
            reply_err(c, rid, rc, "cannot serve %s: %s", svc,
                      confab_strerror(rc));
        return;
    }
    node_list_add_tail(&ctl->svcs, &s->link);
    reply_ok(c, rid);
}

static void op_reply(ctl_client *c, uint64_t rid, const wire_ctl_map *m)
{
    uint64_t handle;
    wire_bytes body;
    int error = 0;
    if (wire_ctl_get_uint(m, "handle", &handle) != 0 ||
        wire_ctl_get_bin(m, "body", &body) != 0 ||
        wire_ctl_get_bool(m, "error", &error) == -EPROTO) {
        reply_err(c, rid, -EINVAL,
                  "reply needs handle (uint) and body (bin); error is a "
                  "bool");
        return;
    }
    confab_node *n = c->ctl->node;
    int rc = error ? confab_reply_error(n, handle, body.ptr, body.len)
                   : confab_reply(n, handle, body.ptr, body.len);
    if (rc == -ENOENT)
        reply_err(c, rid, rc,
                  "no request %llu waits here: it was answered, or its "
                  "requester stopped waiting",
                  (unsigned long long)handle);
    else if (rc == -EMSGSIZE)
        reply_err(c, rid, rc,
                  "the reply is larger than the requester takes; answer "
                  "with an error instead");
    else if (rc != 0)
        reply_err(c, rid, rc, "the reply was not sent: %s",
                  confab_strerror(rc));
    else
        reply_ok(c, rid);
}

/* A client that goes takes its requests and its services with it. */
static void client_reqs_end(ctl_client *c)
{
    node_control *ctl = c->ctl;
    node_list *e, *next;
    for (e = ctl->reqs.next; e != &ctl->reqs; e = next) {
        next = e->next;
        ctl_req *q = node_container_of(e, ctl_req, link);
        if (q->client != c)
            continue;
        (void)confab_request_cancel(ctl->node, q->handle);
        c->n_waits--;
        node_list_del(&q->link);
        free(q);
    }
    for (e = ctl->svcs.next; e != &ctl->svcs; e = next) {
        next = e->next;
        ctl_svc *s = node_container_of(e, ctl_svc, link);
        if (s->client == c)
            svc_end(s, ctl->node);
    }
}

static void handle(ctl_client *c, const uint8_t *buf, size_t len)
{
    wire_ctl_map m;
    uint64_t rid;
    wire_bytes op;
    if (wire_ctl_parse(buf, len, &m) != 0 ||
        wire_ctl_get_uint(&m, "rid", &rid) != 0) {
        node_log(c->ctl->node, CONFAB_LOG_WARN,
                 "a control client sent a malformed request; closing it");
        client_close(c);
        return;
    }
    if (wire_ctl_get_str(&m, "op", &op) != 0 || op.len >= 16) {
        reply_err(c, rid, -EINVAL, "the request needs op, a string");
        return;
    }
    char name[16];
    memcpy(name, op.ptr, op.len);
    name[op.len] = '\0';
    confab_node *n = c->ctl->node;
    if (strcmp(name, "id") == 0) {
        wire_ctl_builder b;
        reply_begin(&b, c->ctl, rid, 2);
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, confab_node_id(n), CONFAB_ID_BYTES);
        wire_ctl_key(&b, "name");
        wire_ctl_put_cstr(&b, confab_node_name(n));
        reply_done(c, &b);
    } else if (strcmp(name, "status") == 0) {
        op_status(c, rid);
    } else if (strcmp(name, "peers") == 0) {
        op_peers(c, rid);
    } else if (strcmp(name, "groups") == 0) {
        op_groups(c, rid);
    } else if (strcmp(name, "join") == 0 || strcmp(name, "leave") == 0) {
        op_join_leave(c, rid, &m, name[0] == 'j');
    } else if (strcmp(name, "send") == 0 || strcmp(name, "broadcast") == 0 ||
               strcmp(name, "shout") == 0 || strcmp(name, "anycast") == 0) {
        op_send(c, rid, &m, name);
    } else if (strcmp(name, "allow") == 0 || strcmp(name, "deny") == 0) {
        op_allow(c, rid, &m, name[0] == 'a');
    } else if (strcmp(name, "forget") == 0) {
        op_forget(c, rid, &m);
    } else if (strcmp(name, "queue") == 0) {
        op_queue(c, rid, &m);
    } else if (strcmp(name, "ping") == 0) {
        op_ping(c, rid, &m);
    } else if (strcmp(name, "routes") == 0) { /* routing (#12) */
        op_routes(c, rid);
    } else if (strcmp(name, "trace") == 0) {
        op_trace(c, rid, &m);
    } else if (strcmp(name, "recv") == 0) {
        op_recv(c, rid, &m);
    } else if (strcmp(name, "subscribe") == 0) {
        op_subscribe(c, rid, &m);
    } else if (strcmp(name, "request") == 0) {
        op_request(c, rid, &m);
    } else if (strcmp(name, "serve") == 0 || strcmp(name, "unserve") == 0) {
        op_serve(c, rid, &m, name[0] == 's');
    } else if (strcmp(name, "reply") == 0) {
        op_reply(c, rid, &m);
    } else if (strcmp(name, "unfollow") == 0) {
        /* No more msg events; every one already sent is before the reply,
         * so a client that reads up to it has every message marked read. */
        c->follow = false;
        c->follow_left = 0;
        reply_ok(c, rid);
    } else {
        reply_err(c, rid, -ENOTSUP,
                  "unknown op '%s'; this node speaks the ops of "
                  "docs/PROTOCOL.md section 11",
                  name);
    }
}

/* ---- events ----------------------------------------------------------- */

static void event_begin(wire_ctl_builder *b, const node_control *ctl,
                        const char *ev, uint32_t extra)
{
    wire_ctl_builder_init(b, builder_limit(ctl));
    wire_ctl_map_begin(b, 1 + extra);
    wire_ctl_key(b, "ev");
    wire_ctl_put_cstr(b, ev);
}

typedef struct push_arg {
    node_control *ctl;
} push_arg;

/* How many msg events c takes in the next batch: none while its queue is
 * over FOLLOW_HIGH (they wait, unread, in the inbox until it reads:
 * write_cb), else what fits under FOLLOW_HIGH, at least one. */
static size_t msgs_wanted(ctl_client *c)
{
    if (c->closing || !c->follow || c->follow_left == 0)
        return 0;
    if (c->out_bytes >= FOLLOW_HIGH) {
        c->msg_held = true;
        return 0;
    }
    confab_node *n = c->ctl->node;
    size_t k = node_inbox_fit(n, c->follow_left, FOLLOW_HIGH - c->out_bytes);
    if (k < c->follow_left && k < confab_inbox_count(n))
        c->msg_held = true; /* the rest once it has read these */
    return k;
}

static void push_message(const confab_message *m, void *user)
{
    push_arg *a = user;
    /* Closing a client leaves it in the list (client_close), so the walk
     * goes on safely from it. */
    for (node_list *e = a->ctl->clients.next; e != &a->ctl->clients;
         e = e->next) {
        ctl_client *c = node_container_of(e, ctl_client, link);
        if (!c->in_batch || c->closing || !c->follow || c->follow_left == 0)
            continue;
        wire_ctl_builder b;
        event_begin(&b, a->ctl, "msg", 1);
        wire_ctl_key(&b, "msg");
        put_message(&b, m);
        send_map(c, &b, SEND_MSG);
        wire_ctl_builder_free(&b);
        if (c->follow_left != SIZE_MAX && --c->follow_left == 0)
            c->follow = false;
    }
}

static const char *reason_name(confab_down_reason r)
{
    switch (r) {
    case CONFAB_DOWN_BYE:
        return "bye";
    case CONFAB_DOWN_TIMEOUT:
        return "timeout";
    case CONFAB_DOWN_PROTOCOL:
        return "protocol";
    case CONFAB_DOWN_STOPPING:
        return "stopping";
    case CONFAB_DOWN_CLOSED:
        return "closed";
    }
    return "closed";
}

static const char *status_name(confab_send_status s)
{
    switch (s) {
    case CONFAB_DELIVERED:
        return "delivered";
    case CONFAB_EXPIRED:
        return "expired";
    case CONFAB_FAILED:
        return "failed";
    }
    return "failed";
}

static void finish_wait(ctl_wait *w)
{
    /* A store waiter may still hold its id: it finds nothing later. */
    if (w->kind == WAIT_ACCEPT)
        w->client->n_accepts--;
    else
        w->client->n_waits--;
    node_list_del(&w->link);
    free(w);
}

static void on_outcome(node_control *ctl, const confab_event *ev)
{
    /* It answers one wait and returns: the walk never goes on from a wait
     * it freed. A closing client's waits are freed with it. */
    for (node_list *e = ctl->waits.next; e != &ctl->waits; e = e->next) {
        ctl_wait *w = node_container_of(e, ctl_wait, link);
        if (w->client->closing)
            continue;
        if (ev->type == CONFAB_EV_PONG) {
            if (w->kind != WAIT_PING || w->token != ev->token)
                continue;
            wire_ctl_builder b;
            reply_begin(&b, ctl, w->rid, 2);
            wire_ctl_key(&b, "rtt_us");
            wire_ctl_put_uint(&b, ev->rtt_us);
            wire_ctl_key(&b, "data");
            wire_ctl_put_bin(&b, ev->data, ev->len);
            reply_done(w->client, &b);
            finish_wait(w);
            return;
        }
        if ((w->kind != WAIT_SEND && w->kind != WAIT_ANYCAST) ||
            memcmp(w->mid, ev->msg_id, CONFAB_MSG_ID_BYTES) != 0)
            continue;
        bool member = w->kind == WAIT_ANYCAST &&
                      ev->status == CONFAB_DELIVERED && ev->peer != NULL;
        wire_ctl_builder b;
        bool any = w->kind == WAIT_ANYCAST;
        /* area: routing (#12): whether it was relayed, and how far */
        bool hops = w->kind == WAIT_SEND && ev->status == CONFAB_DELIVERED &&
                    ev->hops != 0;
        reply_begin(&b, ctl, w->rid, (member ? 3u : 2u) + any + hops);
        wire_ctl_key(&b, "mid");
        wire_ctl_put_bin(&b, w->mid, CONFAB_MSG_ID_BYTES);
        wire_ctl_key(&b, "status");
        wire_ctl_put_cstr(&b, status_name(ev->status));
        if (any) { /* the first hour (#14): a failover is shown */
            wire_ctl_key(&b, "failovers");
            wire_ctl_put_uint(&b, ev->failovers);
        }
        if (member) {
            wire_ctl_key(&b, "member");
            wire_ctl_put_bin(&b, ev->peer, CONFAB_ID_BYTES);
        }
        if (hops) {
            wire_ctl_key(&b, "hops");
            wire_ctl_put_uint(&b, ev->hops);
        }
        reply_done(w->client, &b);
        finish_wait(w);
        return;
    }
}

/* "traffic" events (issue 15: the web page and `confab monitor`): every
 * message as it arrives, without marking it read, every send outcome and
 * every measured round trip, for clients that watch rather than read. */
static void traffic_event(node_control *ctl, const confab_event *ev)
{
    const confab_message *m = ev->message;
    bool msg = ev->type == CONFAB_EV_MESSAGE && m != NULL;
    bool out = ev->type == CONFAB_EV_SEND;
    if (!msg && !out && ev->type != CONFAB_EV_PONG)
        return;
    for (node_list *e = ctl->clients.next; e != &ctl->clients; e = e->next) {
        ctl_client *c = node_container_of(e, ctl_client, link);
        if (!c->sub_traffic || c->closing)
            continue;
        wire_ctl_builder b;
        bool peer = !msg && ev->peer != NULL;
        event_begin(&b, ctl, "traffic", (msg ? 6u : out ? 3u : 2u) + peer);
        wire_ctl_key(&b, "what");
        wire_ctl_put_cstr(&b, msg ? "msg" : out ? "outcome" : "rtt");
        if (msg) {
            wire_ctl_key(&b, "kind");
            wire_ctl_put_cstr(&b, kind_name(m->kind));
            wire_ctl_key(&b, "from");
            wire_ctl_put_bin(&b, m->from, CONFAB_ID_BYTES);
            wire_ctl_key(&b, "group");
            wire_ctl_put_cstr(&b, m->group ? m->group : "");
            wire_ctl_key(&b, "len");
            wire_ctl_put_uint(&b, m->len);
        }
        if (msg || out) {
            wire_ctl_key(&b, "mid");
            wire_ctl_put_bin(&b, msg ? m->id : ev->msg_id, CONFAB_MSG_ID_BYTES);
        }
        if (out) {
            wire_ctl_key(&b, "status");
            wire_ctl_put_cstr(&b, status_name(ev->status));
        }
        if (ev->type == CONFAB_EV_PONG) {
            wire_ctl_key(&b, "rtt_us");
            wire_ctl_put_uint(&b, ev->rtt_us);
        }
        if (peer) {
            wire_ctl_key(&b, "id");
            wire_ctl_put_bin(&b, ev->peer, CONFAB_ID_BYTES);
        }
        send_map(c, &b, SEND_EVENT);
        wire_ctl_builder_free(&b);
    }
}

void node_control_event(confab_node *n, const confab_event *ev)
{
    node_control *ctl = n->control;
    if (ctl == NULL)
        return;
    traffic_event(ctl, ev);
    switch (ev->type) {
    case CONFAB_EV_MESSAGE: {
        /* As many as the most wanting follower takes: each message read
         * goes to at least one. A follower that reads too slowly sits the
         * batch out. */
        size_t want = 0;
        node_list *e;
        for (e = ctl->clients.next; e != &ctl->clients; e = e->next) {
            ctl_client *c = node_container_of(e, ctl_client, link);
            size_t k = msgs_wanted(c);
            c->in_batch = k > 0;
            if (k > want)
                want = k;
        }
        if (want > 0) {
            push_arg a = {ctl};
            (void)confab_inbox_read(n, want, push_message, &a);
        }
        for (e = ctl->clients.next; e != &ctl->clients; e = e->next)
            node_container_of(e, ctl_client, link)->in_batch = false;
        return; /* the rest waits in the inbox */
    }
    case CONFAB_EV_SEND:
    case CONFAB_EV_PONG:
        on_outcome(ctl, ev);
        return;
    case CONFAB_EV_PEER_UP:
    case CONFAB_EV_PEER_DOWN:
    case CONFAB_EV_JOIN:
    case CONFAB_EV_LEAVE:
        break;
    case CONFAB_EV_WRITABLE:
        return;
    }
    bool peer_ev =
        ev->type == CONFAB_EV_PEER_UP || ev->type == CONFAB_EV_PEER_DOWN;
    for (node_list *e = ctl->clients.next; e != &ctl->clients; e = e->next) {
        ctl_client *c = node_container_of(e, ctl_client, link);
        if (c->closing || (peer_ev && !c->sub_peer) ||
            (!peer_ev && !c->sub_group))
            continue;
        wire_ctl_builder b;
        if (peer_ev) {
            bool down = ev->type == CONFAB_EV_PEER_DOWN;
            event_begin(&b, ctl, "peer", down ? 4 : 3);
            wire_ctl_key(&b, "state");
            wire_ctl_put_cstr(&b, down ? "down" : "up");
            if (down) {
                wire_ctl_key(&b, "reason");
                wire_ctl_put_cstr(&b, reason_name(ev->reason));
            }
        } else {
            event_begin(&b, ctl, ev->type == CONFAB_EV_JOIN ? "join" : "leave",
                        3);
            wire_ctl_key(&b, "group");
            wire_ctl_put_cstr(&b, ev->group ? ev->group : "");
        }
        wire_ctl_key(&b, "id");
        wire_ctl_put_bin(&b, ev->peer, CONFAB_ID_BYTES);
        wire_ctl_key(&b, "name");
        wire_ctl_put_cstr(&b, ev->peer_name ? ev->peer_name : "");
        send_map(c, &b, SEND_EVENT);
        wire_ctl_builder_free(&b);
    }
}

static const char *level_name(confab_log_level l)
{
    switch (l) {
    case CONFAB_LOG_ERROR:
        return "error";
    case CONFAB_LOG_WARN:
        return "warn";
    case CONFAB_LOG_INFO:
        return "info";
    case CONFAB_LOG_DEBUG:
        return "debug";
    }
    return "info";
}

void node_control_log(confab_node *n, confab_log_level lvl, const char *line)
{
    node_control *ctl = n->control;
    /* A client cut for falling behind is logged: that line goes to the
     * node's log only, not round again. */
    if (ctl == NULL || ctl->in_log)
        return;
    ctl->in_log = true;
    for (node_list *e = ctl->clients.next; e != &ctl->clients; e = e->next) {
        ctl_client *c = node_container_of(e, ctl_client, link);
        if (!c->sub_log || c->closing)
            continue;
        wire_ctl_builder b;
        event_begin(&b, ctl, "log", 2);
        wire_ctl_key(&b, "level");
        wire_ctl_put_cstr(&b, level_name(lvl));
        wire_ctl_key(&b, "line");
        wire_ctl_put_cstr(&b, line);
        send_map(c, &b, SEND_EVENT);
        wire_ctl_builder_free(&b);
    }
    ctl->in_log = false;
}

void node_control_tick(confab_node *n, uint64_t now)
{
    node_control *ctl = n->control;
    node_list *e, *next;
    for (e = ctl->waits.next; e != &ctl->waits; e = next) {
        next = e->next;
        ctl_wait *w = node_container_of(e, ctl_wait, link);
        /* Replying may close the client, which frees none of its waits
         * (client_closed does), so next stays good. */
        if (w->kind == WAIT_TRACE && !w->client->closing) {
            trace_reply(w); /* routing (#12) */
            continue;
        }
        if (w->kind == WAIT_PING && now >= w->deadline && !w->client->closing) {
            reply_err(w->client, w->rid, -ETIMEDOUT,
                      "no answer to the ping within %u s; the peer may be "
                      "gone",
                      PING_TIMEOUT_MS / 1000);
            finish_wait(w);
        }
    }
}

/* ---- clients ---------------------------------------------------------- */

static void client_closed(uv_handle_t *h)
{
    ctl_client *c = h->data;
    node_control *ctl = c->ctl;
    confab_node *n = ctl->node;
    /* Its waits and its place in the list go only now: no walk is running
     * in a close callback. */
    node_list *e, *next;
    for (e = ctl->waits.next; e != &ctl->waits; e = next) {
        next = e->next;
        ctl_wait *w = node_container_of(e, ctl_wait, link);
        if (w->client == c)
            finish_wait(w);
    }
    client_reqs_end(c);
    node_list_del(&c->link);
    wire_ctl_reader_free(&c->reader);
    free(c);
    node_handle_closed(n);
}

static void client_close(ctl_client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    node_control *ctl = c->ctl;
    ctl->n_clients--;
    ctl->node->stats.ctl_clients = ctl->n_clients;
    ctl->out_total -= c->out_bytes;
    ctl->held_total -= c->held;
    c->held = 0;
    uv_close((uv_handle_t *)&c->pipe, client_closed);
}

/* Closes c at a bound, saying why, and counts it. */
static void client_cut(ctl_client *c, const char *fmt, ...)
{
    if (c->closing)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    node_log(c->ctl->node, CONFAB_LOG_WARN, "%s", msg);
    c->ctl->node->stats.ctl_clients_cut++;
    client_close(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ctl_client *c = h->data;
    (void)suggested;
    if (c->ctl->rbuf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    c->ctl->rbuf_busy = true;
    *buf = uv_buf_init((char *)c->ctl->rbuf, sizeof c->ctl->rbuf);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ctl_client *c = s->data;
    node_control *ctl = c->ctl;
    if (buf->base == (char *)ctl->rbuf)
        ctl->rbuf_busy = false;
    if (nread == 0 || nread == UV_ENOBUFS || c->closing)
        return;
    if (nread < 0) {
        client_close(c);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = (size_t)nread;
    const uint8_t *msg;
    size_t len;
    int rc;
    while (!c->closing &&
           (rc = wire_ctl_read(&c->reader, &p, &left, &msg, &len)) == 1)
        handle(c, msg, len);
    if (rc < 0 && !c->closing) {
        node_log(ctl->node, CONFAB_LOG_WARN,
                 "a control client broke the framing (%s); closing it",
                 uv_strerror(rc));
        client_close(c);
    }
    if (!c->closing)
        count_held(c);
}

/* Requests being read, node-wide: each client may hold one of up to the
 * largest message plus 64 KiB, so many at once are bounded in all, by
 * cutting the one that holds the most. */
static void count_held(ctl_client *c)
{
    node_control *ctl = c->ctl;
    size_t max = ctl->node->cfg.ctl_held_total;
    size_t now = c->reader.cap + c->reader.dec.cap;
    ctl->held_total = ctl->held_total - c->held + now;
    c->held = now;
    while (ctl->held_total > max) {
        ctl_client *big = NULL;
        for (node_list *e = ctl->clients.next; e != &ctl->clients;
             e = e->next) {
            ctl_client *k = node_container_of(e, ctl_client, link);
            if (!k->closing && (big == NULL || k->held > big->held))
                big = k;
        }
        if (big == NULL) {
            ctl->held_total = 0; /* not reached: c itself is counted */
            return;
        }
        client_cut(big,
                   "the control clients hold %zu bytes of unfinished "
                   "requests, over the bound of %zu (ctl_held_total); "
                   "closing the one that holds the most (%zu bytes)",
                   ctl->held_total, max, big->held);
    }
}

static void on_client(uv_stream_t *server, int status)
{
    node_control *ctl = server->data;
    confab_node *n = ctl->node;
    if (status < 0)
        return;
    ctl_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    if (uv_pipe_init(n->loop, &c->pipe, 0) != 0) {
        free(c);
        return;
    }
    c->pipe.data = c;
    c->ctl = ctl;
    node_list_add_tail(&ctl->clients, &c->link);
    ctl->n_clients++;
    n->stats.ctl_clients = ctl->n_clients;
    n->open_handles++;
    wire_ctl_reader_init(&c->reader, n->cfg.max_message + ((size_t)64 << 10));
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        client_close(c);
        return;
    }
    if (ctl->n_clients > n->cfg.ctl_max_clients) {
        client_cut(c,
                   "refused a control connection: %zu clients are connected, "
                   "the most at once (ctl_max_clients); close one first",
                   ctl->n_clients - 1);
        return;
    }
    /* Only this node's user may drive it. */
    uv_os_fd_t fd;
    struct ucred cred;
    memset(&cred, 0, sizeof cred);
    socklen_t clen = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
        node_log(n, CONFAB_LOG_WARN,
                 "refused a control connection: cannot tell whose it is");
        client_close(c);
        return;
    }
    if (cred.uid != geteuid()) {
        node_log(n, CONFAB_LOG_WARN,
                 "refused a control connection from another user (uid %u)",
                 (unsigned)cred.uid);
        client_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->pipe, client_alloc, client_read) != 0)
        client_close(c);
}

/* ---- start and stop --------------------------------------------------- */

/* A socket file left by a node that died: nobody answers on it. */
static bool socket_alive(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    bool alive = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return alive;
}

static void server_closed(uv_handle_t *h)
{
    node_handle_closed(((node_control *)h->data)->node);
}

int node_control_start(confab_node *n)
{
    node_control *ctl = calloc(1, sizeof *ctl);
    if (ctl == NULL)
        return -ENOMEM;
    ctl->node = n;
    node_list_init(&ctl->clients);
    node_list_init(&ctl->waits);
    node_list_init(&ctl->reqs);
    node_list_init(&ctl->svcs);
    if (strlen(n->control_path) >= sizeof ctl->path) {
        node_log(n, CONFAB_LOG_ERROR,
                 "the control socket path %s is too long for a Unix socket "
                 "(at most %zu bytes); use a shorter --home",
                 n->control_path, sizeof ctl->path - 1);
        free(ctl);
        return -ENAMETOOLONG;
    }
    memcpy(ctl->path, n->control_path, strlen(n->control_path) + 1);
    struct stat st;
    if (lstat(ctl->path, &st) == 0) {
        if (socket_alive(ctl->path)) {
            node_log(n, CONFAB_LOG_ERROR,
                     "another node is already running with this home (its "
                     "control socket %s answers); stop it first, or use "
                     "another --home",
                     ctl->path);
            free(ctl);
            return -EADDRINUSE;
        }
        unlink(ctl->path); /* left by a node that died */
    }
    n->control = ctl;
    int rc = uv_pipe_init(n->loop, &ctl->server, 0);
    if (rc != 0)
        return rc;
    ctl->server.data = ctl;
    ctl->open = true;
    n->open_handles++;
    /* Created 0600: the directory is 0700 too. */
    mode_t old = umask(077);
    rc = uv_pipe_bind(&ctl->server, ctl->path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl->server, 64, on_client);
    if (rc != 0)
        node_log(n, CONFAB_LOG_ERROR, "cannot listen on %s: %s", ctl->path,
                 uv_strerror(rc));
    return rc;
}

void node_control_stop(confab_node *n)
{
    node_control *ctl = n->control;
    if (ctl == NULL || !ctl->open)
        return;
    ctl->open = false;
    for (node_list *e = ctl->clients.next; e != &ctl->clients; e = e->next)
        client_close(node_container_of(e, ctl_client, link));
    uv_close((uv_handle_t *)&ctl->server, server_closed);
    unlink(ctl->path);
}

void node_control_free(confab_node *n)
{
    free(n->control);
    n->control = NULL;
}
