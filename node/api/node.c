/* Layer api (node/LAYERS).
 * node.c: a node's life cycle: configuration, start, stop, the periodic
 * tick, logging and events. */
#include "node/api/api.h"
#include "node/api/wake.h"

#include "crypto/sec.h"
#include "node/peers/hyparview.h" /* area: scale (#13) */
#include "node/peers/iface.h"
#include "node/peers/overlay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_MESSAGE    CONFAB_DEFAULT_MAX_MESSAGE
#define DEFAULT_QUEUE_BYTES    (32u << 20)
#define DEFAULT_HANDSHAKES     256u
#define DEFAULT_HS_TIMEOUT_MS  5000u
#define DEFAULT_PING_MS        5000u
#define DEFAULT_PEER_TIMEOUT   15000u
#define DEFAULT_REDIAL_MIN_MS  250u
#define DEFAULT_REDIAL_MAX_MS  30000u
#define DEFAULT_OUTBOX         ((size_t)1 << 30)
#define DEFAULT_INBOX_MAX      10000u
#define DEFAULT_ANYCAST_MS     2000u
#define DEFAULT_DISCOVERY_PORT 47474u
#define DEFAULT_BEACON_MS      1000u
/* bounds: the peer table and who may join */
#define DEFAULT_KNOWN_PEERS   1024u
#define DEFAULT_KNOWN_TTL_MS  30000u
#define DEFAULT_DIAL_RATE     16u
#define DEFAULT_DIAL_BURST    128u
#define DEFAULT_HS_PER_SOURCE 8u
/* bounds: groups, and the control socket (docs/SECURITY.md, "Bounds") */
#define DEFAULT_MEMBERSHIPS 65536u
#define DEFAULT_CTL_CLIENTS 64u
#define DEFAULT_CTL_WAITS   1024u
#define DEFAULT_CTL_EVENTS  ((size_t)4 << 20)
#define DEFAULT_CTL_OUT     ((size_t)256 << 20)
#define DEFAULT_CTL_HELD    ((size_t)64 << 20)

void confab_config_init(confab_config *c)
{
    memset(c, 0, sizeof *c);
    c->log_level = CONFAB_LOG_INFO;
}

/* ---- environment ------------------------------------------------------ */

void node_log(confab_node *n, confab_log_level lvl, const char *fmt, ...)
{
    /* A node with a control socket also hands its lines to the services
     * (`confab monitor` streams them). */
    if ((n->cfg.log_cb == NULL && n->control == NULL) || lvl > n->cfg.log_level)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n->cfg.log_cb != NULL)
        n->cfg.log_cb(n, lvl, line, n->cfg.user);
    if (n->control != NULL)
        for (const node_service *const *s = node_services; *s != NULL; s++)
            if ((*s)->log != NULL)
                (*s)->log(n, lvl, line);
}

void node_emit(confab_node *n, confab_event *ev)
{
    if (n->state != NODE_RUNNING)
        return;
    for (const node_service *const *s = node_services; *s != NULL; s++)
        if ((*s)->event != NULL)
            (*s)->event(n, ev);
    if (n->observer.event != NULL)
        n->observer.event(n, ev, n->observer.user);
    if (n->cfg.event_cb != NULL)
        n->cfg.event_cb(n, ev, n->cfg.user);
}

void node_set_observer(confab_node *n, const node_observer *o)
{
    if (o != NULL)
        n->observer = *o;
    else
        memset(&n->observer, 0, sizeof n->observer);
}

uint64_t node_now_ms(const confab_node *n)
{
    return uv_now(n->loop);
}

uint64_t node_mono_us(void)
{
    return uv_hrtime() / 1000u;
}

uint64_t node_clock_us(const confab_node *n)
{
    if (n->cfg.clock_us != NULL)
        return n->cfg.clock_us(n->cfg.user);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void node_random(confab_node *n, void *buf, size_t len)
{
    if (n->cfg.random != NULL) {
        n->cfg.random(buf, len, n->cfg.user);
        return;
    }
    if (len > sizeof n->rand_pool) {
        sec_random(buf, len);
        return;
    }
    if (len > n->rand_left) {
        sec_random(n->rand_pool, sizeof n->rand_pool);
        n->rand_left = sizeof n->rand_pool;
    }
    /* Each byte is handed out once, then wiped from the pool. */
    n->rand_left -= len;
    memcpy(buf, n->rand_pool + n->rand_left, len);
    memset(n->rand_pool + n->rand_left, 0, len);
}

void confab_id_hex(const uint8_t id[CONFAB_ID_BYTES], char out[65])
{
    sodium_bin2hex(out, 65, id, CONFAB_ID_BYTES);
}

void node_short_id(const uint8_t id[WIRE_NODE_ID_BYTES], char out[9])
{
    sodium_bin2hex(out, 9, id, 4);
}

int node_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        return snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        /* A link-local address names its interface (RFC 4007's text
         * form, which --peer reads back), when that fits. */
        char ifname[IF_NAMESIZE];
        if (a->sin6_scope_id != 0 &&
            if_indextoname(a->sin6_scope_id, ifname) != NULL) {
            int k = snprintf(out, cap, "[%s%%%s]:%u", ip, ifname,
                             ntohs(a->sin6_port));
            if (k >= 0 && (size_t)k < cap)
                return k;
        }
        return snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return snprintf(out, cap, "%s", "");
}

/* Every address of both families ("::" takes IPv4 too, as ::ffff:a.b.c.d,
 * on Linux's default bindv6only=0), so that an IPv6-only LAN can dial us;
 * "0.0.0.0" on a host without IPv6. */
static const char *default_bind(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return "0.0.0.0";
    close(fd);
    return "::";
}

const char *confab_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -EAGAIN:
        return "the peer's send queue is full; wait until it drains and "
               "send again";
    case -ENOTCONN:
        return "no link to that peer right now; wait until it is up";
    case -ESRCH:
        return "no such peer; list the known peers to find its id";
    case -EMSGSIZE:
        return "too large: the message, name or group is over its limit";
    case -EPROTO:
        return "not possible in the node's current state";
    case -ECANCELED:
        return "canceled because the node stopped";
    default:
        return uv_strerror(err);
    }
}

/* ---- creation --------------------------------------------------------- */

static int parse_static(node_static *s, const char *hp)
{
    size_t len = strlen(hp);
    if (len == 0 || len >= sizeof s->host_port)
        return -EINVAL;
    memcpy(s->host_port, hp, len + 1);
    return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port. */
static int split_host_port(const char *hp, char *host, size_t cap,
                           uint16_t *port)
{
    const char *colon;
    const char *h = hp;
    size_t hl;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        h = hp + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL)
            return -EINVAL;
        hl = (size_t)(colon - hp);
    }
    if (hl == 0 || hl >= cap)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 || p > 65535)
        return -EINVAL;
    *port = (uint16_t)p;
    return 0;
}

/* The link's hooks: what a link hands up goes to the data lane
 * (messaging/data.c), to delivery (messaging/delivery.c) and to the peer
 * table (peers/peer.c, peers/allow.c). */
static const node_link_ops link_ops = {
    node_data_pull,          node_data_pushed,
    node_data_pulled,        node_data_on_msg,
    node_routed_read_ended,  node_data_reasm_free,
    node_peer_link_dialing,  node_allowed,
    node_peer_established,   node_peer_bye_received,
    node_peer_link_ended,    node_peer_link_freed,
    node_peer_link_tick,     node_peer_link_resumed,
    node_peer_link_counted,  node_data_more,
    node_peer_link_delay_ms,
};

/* The peer table's hooks, in the order the layers above need them. */
static int peer_up(confab_node *n, node_peer *p, const wire_hello *h)
{
    node_data_relink(p);
    node_delivery_link_up(n, p, h->epoch);
    node_route_link_up(n, p);
    node_pex_peer_up(n, p);
    node_overlay_peer_up(n, p); /* area: scale (#13) */
    return node_groups_from_hello(n, p, h);
}

static void peer_down(confab_node *n, node_peer *p)
{
    node_data_drop_lane(n, p);
    node_groups_peer_down(n, p);
    node_route_link_down(n, p);   /* what it relayed goes another way */
    node_overlay_peer_down(n, p); /* area: scale (#13) */
}

/* A peer forgotten while the node runs holds no queue (it is not pinned);
 * at node_peers_free it may: its lane and its outbox go first. */
static void peer_forget(confab_node *n, node_peer *p)
{
    node_data_drop_lane(n, p);
    while (p->ob_head != NULL) { /* what it never acknowledged */
        node_out *o = p->ob_head;
        p->ob_head = o->ob_next;
        o->in_outbox = false;
        node_timerq_disarm(&n->ob_expiry, &o->expiry);
        node_out_release(o);
    }
    node_pex_forget(n, p);
    node_peer_groups_free(n, p);
    node_delivery_peer_free(p);
    node_routed_forget(n, p);
}

/* The routing layer's hooks: what an envelope holds goes to delivery. */
static const node_route_ops route_ops = {
    node_routed_deliver,
    node_routed_changed,
};

static const node_peer_ops peer_ops = {
    node_data_relink,
    peer_up,
    peer_down,
    peer_forget,
};

/* area: scale (#13): the read buffer (WIRE_MAX_FRAME + 1 bytes) is
 * shared by the nodes of a thread: libuv hands it to one read at a time
 * (alloc_cb, then read_cb, which is done with it before it returns; see
 * node/link/conn.c), so a node need not hold 64 KiB of its own, which was
 * a sixth of a node's heap in a 1,000-node test network. Made with the
 * thread's first node, freed with its last (a node lives on its loop's
 * thread). */
static _Thread_local uint8_t *rx_shared;
static _Thread_local unsigned rx_users;

static uint8_t *rxbuf_take(void)
{
    if (rx_shared == NULL) {
        rx_shared = malloc(WIRE_MAX_FRAME + 1);
        if (rx_shared == NULL)
            return NULL;
    }
    rx_users++;
    return rx_shared;
}

static void rxbuf_release(uint8_t *b)
{
    if (b == NULL || b != rx_shared || rx_users == 0)
        return;
    if (--rx_users == 0) {
        sodium_memzero(rx_shared, WIRE_MAX_FRAME + 1); /* plaintext */
        free(rx_shared);
        rx_shared = NULL;
    }
}

/* The config's limits left 0 ("the default") get their values here, at
 * creation. Returns 0 or -EINVAL (logged). */
static int resolve_defaults(confab_node *n)
{
    confab_config *c = &n->cfg;
    if (c->max_message == 0)
        c->max_message = DEFAULT_MAX_MESSAGE;
    if (c->send_queue_bytes == 0)
        c->send_queue_bytes = DEFAULT_QUEUE_BYTES;
    if (c->max_handshakes == 0)
        c->max_handshakes = DEFAULT_HANDSHAKES;
    if (c->handshake_timeout_ms == 0)
        c->handshake_timeout_ms = DEFAULT_HS_TIMEOUT_MS;
    if (c->ping_interval_ms == 0)
        c->ping_interval_ms = DEFAULT_PING_MS;
    if (c->peer_timeout_ms == 0)
        c->peer_timeout_ms = DEFAULT_PEER_TIMEOUT;
    if (c->redial_min_ms == 0)
        c->redial_min_ms = DEFAULT_REDIAL_MIN_MS;
    if (c->redial_max_ms == 0)
        c->redial_max_ms = DEFAULT_REDIAL_MAX_MS;
    if (c->max_message < WIRE_MIN_MAX_BODY || c->max_message > UINT32_MAX) {
        node_log(n, CONFAB_LOG_ERROR,
                 "max_message must be between %u and %u bytes",
                 WIRE_MIN_MAX_BODY, UINT32_MAX);
        return -EINVAL;
    }
    if (c->redial_max_ms < c->redial_min_ms)
        c->redial_max_ms = c->redial_min_ms;
    if (c->outbox_bytes == 0)
        c->outbox_bytes = DEFAULT_OUTBOX;
    /* 0 means no inbox (events only), unless a control socket serves
     * one: messages then wait for `confab recv`. */
    if (c->inbox_max == 0 && c->control_path != NULL)
        c->inbox_max = DEFAULT_INBOX_MAX;
    if (c->anycast_timeout_ms == 0)
        c->anycast_timeout_ms = DEFAULT_ANYCAST_MS;
    if (c->discovery_port == 0)
        c->discovery_port = DEFAULT_DISCOVERY_PORT;
    if (c->beacon_interval_ms == 0)
        c->beacon_interval_ms = DEFAULT_BEACON_MS;
    /* bounds: the peer table and who may join */
    if (c->max_known_peers == 0)
        c->max_known_peers = DEFAULT_KNOWN_PEERS;
    if (c->known_peer_ttl_ms == 0)
        c->known_peer_ttl_ms = DEFAULT_KNOWN_TTL_MS;
    if (c->dial_rate == 0)
        c->dial_rate = DEFAULT_DIAL_RATE;
    if (c->dial_burst == 0)
        c->dial_burst = DEFAULT_DIAL_BURST;
    if (c->max_handshakes_per_source == 0)
        c->max_handshakes_per_source = DEFAULT_HS_PER_SOURCE;
    n->dial_tokens = (uint64_t)c->dial_burst * 1000u;
    n->dial_refill_ms = node_now_ms(n);
    /* bounds: links */
    if (c->link_tx_bytes == 0)
        c->link_tx_bytes = NODE_LINK_TX_DEFAULT;
    if (c->link_tx_bytes < NODE_LINK_TX_MIN)
        c->link_tx_bytes = NODE_LINK_TX_MIN;
    if (c->reassembly_bytes == 0)
        c->reassembly_bytes = 4 * c->max_message;
    if (c->reassembly_bytes < c->max_message)
        c->reassembly_bytes = c->max_message;
    /* bounds: groups, and the control socket */
    if (c->max_groups_per_member == 0 ||
        c->max_groups_per_member > WIRE_MAX_GROUPS)
        c->max_groups_per_member = WIRE_MAX_GROUPS;
    if (c->max_memberships == 0)
        c->max_memberships = DEFAULT_MEMBERSHIPS;
    if (c->ctl_max_clients == 0)
        c->ctl_max_clients = DEFAULT_CTL_CLIENTS;
    if (c->ctl_max_waits == 0)
        c->ctl_max_waits = DEFAULT_CTL_WAITS;
    if (c->ctl_events_max == 0)
        c->ctl_events_max = DEFAULT_CTL_EVENTS;
    if (c->ctl_out_total == 0)
        c->ctl_out_total = DEFAULT_CTL_OUT;
    if (c->ctl_held_total == 0)
        c->ctl_held_total = DEFAULT_CTL_HELD;
    /* area: routing (#12) */
    if (c->max_routes == 0) /* area: scale (#13): 4096, not 255 */
        c->max_routes = 4096;
    if (c->max_routes > NODE_ROUTE_MAX)
        c->max_routes = NODE_ROUTE_MAX;
    /* area: request and reply (#19) */
    if (c->request_max_pending == 0)
        c->request_max_pending = 1024;
    if (c->request_max_per_peer == 0)
        c->request_max_per_peer = 64;
    if (c->request_max_bytes == 0)
        c->request_max_bytes = (size_t)64 << 20;
    /* area: the first hour (#14) */
    if (c->peer_forget_ms == 0)
        c->peer_forget_ms = 7u * 86400000u;
    if (c->other_net_warn_ms == 0)
        c->other_net_warn_ms = 60000u;
    /* area: discovery on every interface (#16) */
    /* area: performance (#18) */
    /* area: scale (#13) */
    if (c->mesh_threshold == 0)
        c->mesh_threshold = 16;
    if (c->max_links == 0 || c->max_links > NODE_HPV_ACTIVE_CAP)
        c->max_links = NODE_HPV_ACTIVE_CAP;
    if (c->overlay_period_ms == 0)
        c->overlay_period_ms = 1000;
    if (c->overlay_period_ms < 20)
        c->overlay_period_ms = 20;
    return 0;
}

/* Digits and dots only, yet not an IPv4 address (999.1.1.1): no host
 * name is all digits (its last label never is), so the resolver would only
 * fail on it for ever. */
static bool bad_dotted_quad(const char *host)
{
    if (host[strspn(host, "0123456789.")] != '\0')
        return false;
    struct sockaddr_in sa;
    return uv_ip4_addr(host, 0, &sa) != 0;
}

/* The configured static peers, parsed (HOST:PORT). Returns 0, -ENOMEM
 * or -EINVAL (logged). */
static int statics_from_config(confab_node *n)
{
    const confab_config *c = &n->cfg;
    if (c->n_static_peers > 0) {
        n->statics = calloc(c->n_static_peers, sizeof *n->statics);
        if (n->statics == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < c->n_static_peers; i++) {
            char host[256];
            uint16_t port;
            if (c->static_peers[i] == NULL ||
                parse_static(&n->statics[i], c->static_peers[i]) != 0 ||
                split_host_port(c->static_peers[i], host, sizeof host, &port) !=
                    0) {
                node_log(n, CONFAB_LOG_ERROR,
                         "static peer '%s' is not HOST:PORT (for example "
                         "127.0.0.1:47000 or [::1]:47000)",
                         c->static_peers[i] ? c->static_peers[i] : "(null)");
                return -EINVAL;
            }
            if (bad_dotted_quad(host)) {
                node_log(n, CONFAB_LOG_ERROR,
                         "static peer '%s': '%s' is not an IPv4 address (four "
                         "numbers from 0 to 255) nor a host name",
                         c->static_peers[i], host);
                return -EINVAL;
            }
            n->statics[i].node = n;
            n->n_statics++;
        }
    }
    return 0;
}

/* Joins the configured groups. Returns 0 or an error (logged). */
static int groups_from_config(confab_node *n)
{
    const confab_config *c = &n->cfg;
    for (size_t i = 0; i < c->n_groups; i++) {
        int rc = c->groups[i] ? confab_join(n, c->groups[i]) : -EINVAL;
        if (rc != 0) {
            node_log(n, CONFAB_LOG_ERROR,
                     "group '%s' cannot be joined: a group name is 1 to %u "
                     "bytes of UTF-8, and a node is in at most %u groups",
                     c->groups[i] ? c->groups[i] : "(null)", WIRE_MAX_GROUP,
                     WIRE_MAX_GROUPS);
            return rc;
        }
    }
    return 0;
}

/* Keys given in the config come first, then the home's, then new ones;
 * the inbox, the home (its store replayed), the control socket's path.
 * Returns 0 or an error (logged where the cause is not plain). */
static int keys_and_home(confab_node *n)
{
    const confab_config *c = &n->cfg;
    int rc = 0;
    if (c->identity_sk != NULL)
        rc = sec_identity_from_secret(c->identity_sk, &n->identity);
    if (rc == 0 && c->network_key != NULL)
        rc = sec_netkey_from_bytes(c->network_key, &n->netkey);
    if (rc != 0)
        return rc;
    if (c->inbox_max > 0) {
        rc = node_inbox_init(n);
        if (rc != 0)
            return rc;
    }
    if (c->home != NULL) {
        size_t hl = strlen(c->home);
        n->home = malloc(hl + 1);
        if (n->home == NULL)
            return -ENOMEM;
        memcpy(n->home, c->home, hl + 1);
    }
    rc = node_delivery_init(n);
    if (rc == 0)
        rc = node_route_init(n);
    if (rc == 0) /* area: scale (#13) */
        rc = node_overlay_init(n);
    if (rc != 0)
        return rc;
    n->ovl_deliver = node_gossip_deliver;
    n->ovl_send = node_gossip_send;
    if (n->home != NULL) {
        rc = node_home_open(n);
        if (rc == 0)
            rc = node_allow_load(n);
        if (rc == 0)
            rc = node_delivery_loaded(n);
        if (rc != 0)
            return rc;
    }
    if (c->control_path != NULL) {
        size_t pl = strlen(c->control_path);
        n->control_path = malloc(pl + 1);
        if (n->control_path == NULL)
            return -ENOMEM;
        memcpy(n->control_path, c->control_path, pl + 1);
    }
    if (n->identity == NULL &&
        (rc = sec_identity_generate(&n->identity)) != 0) {
        node_log(n, CONFAB_LOG_ERROR, "identity: %s", uv_strerror(rc));
        return rc;
    }
    if (n->netkey == NULL && (rc = sec_netkey_public(&n->netkey)) != 0)
        return rc;
    return 0;
}

int confab_node_new(uv_loop_t *loop, const confab_config *config,
                    confab_node **out)
{
    if (loop == NULL || config == NULL || out == NULL)
        return -EINVAL;
    if (sec_init() != 0)
        return -ENOSYS;
    /* libuv writes with write(2): a peer that closed its end would raise
     * SIGPIPE, whose default kills the process. Ignore it unless the
     * program chose a disposition of its own. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    confab_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    int rc = -ENOMEM;
    n->loop = loop;
    n->link_ops = &link_ops;
    n->peer_ops = &peer_ops;
    n->route_ops = &route_ops;
    n->cfg = *config;
    node_list_init(&n->conns);
    node_list_init(&n->vconns);
    node_list_init(&n->dirty);
    node_list_init(&n->anycasts);
    node_list_init(&n->delayed);

    /* The peer table first: replaying the store makes peers. */
    node_list_init(&n->learned);
    node_random(n, n->peers_key, sizeof n->peers_key);
    n->peers_cap = 16;
    n->peers = calloc(n->peers_cap, sizeof *n->peers);
    if (n->peers == NULL)
        goto fail;

    confab_config *c = &n->cfg;
    rc = resolve_defaults(n);
    if (rc != 0)
        goto fail;

    rc = keys_and_home(n);
    if (rc != 0)
        goto fail;
    c->identity_sk = NULL;
    c->network_key = NULL;
    c->home = NULL;
    c->control_path = NULL;
    if (c->debug_rx_dump != NULL) { /* a test's: see confab.h */
        int fd = open(c->debug_rx_dump,
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = -errno;
            node_log(n, CONFAB_LOG_ERROR, "cannot open %s: %s",
                     c->debug_rx_dump, uv_strerror(rc));
            goto fail;
        }
        n->rx_dump_fd = fd; /* never 0: stdin is open */
        c->debug_rx_dump = NULL;
    }

    /* Name. */
    if (c->name != NULL) {
        size_t len = strlen(c->name);
        if (len > WIRE_MAX_NAME ||
            !wire_utf8_valid((const uint8_t *)c->name, len)) {
            node_log(n, CONFAB_LOG_ERROR,
                     "the node name must be UTF-8 of at most %u bytes",
                     WIRE_MAX_NAME);
            rc = -EINVAL;
            goto fail;
        }
        memcpy(n->name, c->name, len + 1);
    } else if (n->name[0] == '\0') {
        char sid[9];
        node_short_id(n->identity->pk, sid);
        snprintf(n->name, sizeof n->name, "node-%s", sid);
    }
    c->name = NULL;

    const char *bind = c->bind_addr != NULL ? c->bind_addr : default_bind();
    if (strlen(bind) >= sizeof n->bind_addr) {
        rc = -EINVAL;
        goto fail;
    }
    memcpy(n->bind_addr, bind, strlen(bind) + 1);
    c->bind_addr = NULL;

    rc = statics_from_config(n);
    if (rc != 0)
        goto fail;
    c->static_peers = NULL;

    rc = groups_from_config(n);
    if (rc != 0)
        goto fail;
    c->groups = NULL;

    n->rxbuf = rxbuf_take();
    if (n->rxbuf == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    /* The boot counter must grow with every start: the caller's, or the
     * wall clock in milliseconds. */
    n->boot = c->boot ? c->boot : node_clock_us(n) / 1000u;
    const char *db = c->discovery_bind ? c->discovery_bind : "0.0.0.0";
    if (strlen(db) >= sizeof n->discovery_bind) {
        rc = -EINVAL;
        goto fail;
    }
    memcpy(n->discovery_bind, db, strlen(db) + 1);
    c->discovery_bind = NULL;
    rc = node_iface_config(n);
    if (rc != 0)
        goto fail;
    *out = n;
    return 0;
fail:
    confab_node_free(n);
    return rc;
}

/* ---- start ------------------------------------------------------------ */

static void on_handle_close(uv_handle_t *h)
{
    node_handle_closed(h->data);
}

static void tick_cb(uv_timer_t *t);

/* The tick runs every tick_ms while the node has work in progress, and
 * sleeps until the earliest deadline while it is idle (wake.c). */
static void tick_rearm(confab_node *n, uint64_t now)
{
    if (n->state != NODE_RUNNING)
        return;
    uint64_t due = node_wake_due(n, now);
    if (due == 0 || due < now + n->tick_ms) {
        if (n->tick_asleep) {
            n->tick_asleep = false;
            uv_timer_start(&n->tick, tick_cb, n->tick_ms, n->tick_ms);
        }
        return;
    }
    if (n->tick_asleep && n->tick_due <= due)
        return; /* armed for as soon or sooner */
    n->tick_asleep = true;
    n->tick_due = due;
    uv_timer_start(&n->tick, tick_cb, due - now, 0);
}

static void wake_cb(uv_prepare_t *h)
{
    confab_node *n = h->data;
    if (n->tick_asleep)
        tick_rearm(n, node_now_ms(n));
}

static void tick_cb(uv_timer_t *t)
{
    confab_node *n = t->data;
    uint64_t now = node_now_ms(n);
    n->stats.timer_wakeups++;
    if (n->tick_asleep) {
        /* Woken for a deadline: back to the period until idle again. */
        n->tick_asleep = false;
        uv_timer_start(&n->tick, tick_cb, n->tick_ms, n->tick_ms);
    }
    node_list *e, *next;
    for (e = n->conns.next; e != &n->conns; e = next) {
        next = e->next;
        node_conn_tick(node_container_of(e, node_conn, link), now);
    }
    node_peer *p;
    node_peer_each (n, p)
        node_peer_tick(n, p, now);
    node_statics_tick(n, now);
    node_peers_expire(n, now);
    node_pex_flush(n);
    node_groups_tick(n, now);
    node_request_tick(n, now);
    node_route_tick(n, now);
    node_delivery_tick(n, now);
    node_home_tick(n, now);
    for (const node_service *const *s = node_services; *s != NULL; s++)
        if ((*s)->tick != NULL)
            (*s)->tick(n, now);
    /* Write what the tick queued now (pings, a batch of PEERS to every
     * peer) rather than on the next turn: every node's tick fires in the
     * same turn, and a hundred nodes' batches at once would all wait in
     * memory together. */
    node_flush_all(n);
    tick_rearm(n, node_now_ms(n));
}

static void on_connection(uv_stream_t *server, int status)
{
    confab_node *n = server->data;
    if (status < 0) {
        node_log(n, CONFAB_LOG_WARN, "accept failed: %s", uv_strerror(status));
        return;
    }
    node_conn_accept(n, server);
}

static void flush_idle_cb(uv_idle_t *h)
{
    node_flush_all(h->data);
}

static void flush_check_cb(uv_check_t *h)
{
    node_flush_all(h->data);
}

/* The services (node_services[]) start in order; the first error stops. */
static int services_start(confab_node *n)
{
    for (const node_service *const *s = node_services; *s != NULL; s++) {
        int rc = (*s)->start != NULL ? (*s)->start(n) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void services_stop(confab_node *n)
{
    for (const node_service *const *s = node_services; *s != NULL; s++)
        if ((*s)->stop != NULL)
            (*s)->stop(n);
}

static unsigned clamp_tick(const confab_config *c)
{
    unsigned t = c->ping_interval_ms;
    if (c->peer_timeout_ms / 2 < t)
        t = c->peer_timeout_ms / 2;
    if (c->handshake_timeout_ms < t)
        t = c->handshake_timeout_ms;
    if (c->redial_min_ms < t)
        t = c->redial_min_ms;
    t /= 4;
    if (t < 5)
        t = 5;
    if (t > 250)
        t = 250;
    return t;
}

/* A start that failed once the listener was open closes it, so that stop
 * and free complete (a listener left open kept stop from ever calling
 * back). */
static int start_failed(confab_node *n, int rc)
{
    uv_close((uv_handle_t *)&n->listener, on_handle_close);
    n->listening = false;
    n->state = NODE_STOPPED; /* after the close callback runs */
    return rc;
}

int confab_node_start(confab_node *n)
{
    if (n->state != NODE_NEW)
        return -EPROTO;
    n->started_ms = node_now_ms(n);
    struct sockaddr_storage ss;
    int rc;
    if (strchr(n->bind_addr, ':') != NULL)
        rc = uv_ip6_addr(n->bind_addr, n->cfg.port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(n->bind_addr, n->cfg.port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        node_log(n, CONFAB_LOG_ERROR,
                 "bind address '%s' is not an IPv4 or IPv6 literal",
                 n->bind_addr);
        return -EINVAL;
    }
    rc = uv_tcp_init(n->loop, &n->listener);
    if (rc != 0)
        return rc;
    n->listener.data = n;
    n->open_handles++;
    n->listening = true;
    rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
    if (rc != 0) {
        node_log(n, CONFAB_LOG_ERROR, "cannot listen on %s port %u: %s",
                 n->bind_addr, n->cfg.port, uv_strerror(rc));
        return start_failed(n, rc);
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&bound, &blen);
    n->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);
    rc = node_hello_encode(n);
    if (rc != 0)
        return start_failed(n, rc);

    uv_timer_init(n->loop, &n->tick);
    n->tick.data = n;
    n->open_handles++;
    uv_idle_init(n->loop, &n->flusher);
    n->flusher.data = n;
    n->open_handles++;
    uv_check_init(n->loop, &n->flush_check);
    n->flush_check.data = n;
    n->open_handles++;
    uv_timer_init(n->loop, &n->delay_timer);
    n->delay_timer.data = n;
    n->open_handles++;
    n->delay_timer_open = true;
    uv_prepare_init(n->loop, &n->wake);
    n->wake.data = n;
    n->open_handles++;
    uv_prepare_start(&n->wake, wake_cb);
    uv_unref((uv_handle_t *)&n->wake); /* it keeps no loop running */
    n->tick_asleep = false;
    n->tick_ms = clamp_tick(&n->cfg);
    uv_timer_start(&n->tick, tick_cb, n->tick_ms, n->tick_ms);
    n->state = NODE_RUNNING;
    if ((n->cfg.discovery && (rc = node_discovery_start(n)) != 0) ||
        (rc = services_start(n)) != 0) {
        services_stop(n);
        /* Undo the start: the caller stops and frees as usual. */
        node_discovery_stop(n);
        uv_close((uv_handle_t *)&n->listener, on_handle_close);
        n->listening = false;
        uv_close((uv_handle_t *)&n->tick, on_handle_close);
        uv_close((uv_handle_t *)&n->flusher, on_handle_close);
        uv_close((uv_handle_t *)&n->flush_check, on_handle_close);
        uv_close((uv_handle_t *)&n->delay_timer, on_handle_close);
        n->delay_timer_open = false;
        uv_close((uv_handle_t *)&n->wake, on_handle_close);
        n->state = NODE_STOPPED;
        return rc;
    }

    char sid[9];
    node_short_id(n->identity->pk, sid);
    node_log(n, CONFAB_LOG_INFO, "node %s (%s) listening on %s port %u", sid,
             n->name, n->bind_addr, n->port);
    /* Static peers are dialed by the first tick. */
    for (size_t i = 0; i < n->n_statics; i++)
        n->statics[i].next_dial = node_now_ms(n);
    node_statics_tick(n, node_now_ms(n));
    return 0;
}

/* Dirty connections are flushed once per loop turn: by a check handle,
 * which runs right after the poll phase, so that a reply sent from a read
 * callback leaves in the same turn; and by an idle handle, which also
 * keeps poll from blocking while output waits (for output queued outside
 * the poll phase, such as from a timer). Both stop once nothing waits. */
void node_conn_mark_dirty(node_conn *c)
{
    confab_node *n = c->node;
    if (c->dirty || c->state == CONN_CLOSING)
        return;
    c->dirty = true;
    node_list_add_tail(&n->dirty, &c->dirty_link);
    (void)node_flush_arm(n);
}

bool node_flush_arm(confab_node *n)
{
    if (n->flush_armed)
        return true;
    /* After a stop the handles may be closing: never restart them then. */
    if (uv_is_closing((uv_handle_t *)&n->flusher) ||
        (n->state != NODE_RUNNING && n->state != NODE_STOPPING))
        return false;
    uv_idle_start(&n->flusher, flush_idle_cb);
    uv_check_start(&n->flush_check, flush_check_cb);
    n->flush_armed = true;
    return true;
}

void node_flush_all(confab_node *n)
{
    /* Only the connections dirty now: one that becomes dirty again while
     * flushing (more to frame) waits for the next turn, so a fast link
     * cannot keep the loop from reading. */
    node_list now;
    node_list_init(&now);
    if (!node_list_empty(&n->dirty)) {
        now.next = n->dirty.next;
        now.prev = n->dirty.prev;
        now.next->prev = &now;
        now.prev->next = &now;
        node_list_init(&n->dirty);
    }
    while (!node_list_empty(&now)) {
        node_conn *c = node_container_of(now.next, node_conn, dirty_link);
        node_list_del(&c->dirty_link);
        c->dirty = false;
        node_conn_flush(c);
    }
    /* The store's records of this turn, in one write, and one fsync for
     * everyone who waits (group commit). */
    if (n->store != NULL)
        node_store_kick(n->store);
    if (node_list_empty(&n->dirty) && n->flush_armed) {
        uv_idle_stop(&n->flusher);
        uv_check_stop(&n->flush_check);
        n->flush_armed = false;
    }
}

/* ---- stop ------------------------------------------------------------- */

static void maybe_stopped(confab_node *n)
{
    if (n->state != NODE_STOPPING || n->open_handles > 0)
        return;
    n->state = NODE_STOPPED;
    if (n->stop_cb != NULL)
        n->stop_cb(n, n->stop_user);
}

void node_handle_closed(confab_node *n)
{
    n->open_handles--;
    maybe_stopped(n);
}

static void stop_grace_cb(uv_timer_t *t)
{
    confab_node *n = t->data;
    /* Whatever did not drain in the grace period is cut now. */
    node_list *e, *next;
    for (e = n->conns.next; e != &n->conns; e = next) {
        next = e->next;
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->state != CONN_CLOSING)
            node_conn_abort(c, CONFAB_DOWN_STOPPING);
    }
    uv_timer_stop(&n->tick);
    if (!uv_is_closing((uv_handle_t *)&n->tick))
        uv_close((uv_handle_t *)&n->tick, on_handle_close);
}

int confab_node_stop(confab_node *n, confab_stop_cb cb, void *user)
{
    if (n->state == NODE_STOPPING)
        return -EPROTO;
    n->stop_cb = cb;
    n->stop_user = user;
    if (n->state == NODE_NEW || n->state == NODE_STOPPED) {
        /* Nothing open (a failed start closes its own listener). */
        n->state = NODE_STOPPING;
        if (n->open_handles == 0) {
            /* The callback must not run from inside this call. */
            n->state = NODE_STOPPING;
            uv_timer_init(n->loop, &n->tick);
            n->tick.data = n;
            n->open_handles++;
            uv_close((uv_handle_t *)&n->tick, on_handle_close);
        }
        return 0;
    }
    node_log(n, CONFAB_LOG_INFO, "stopping");
    n->state = NODE_STOPPING;
    for (size_t i = 0; i < n->n_statics; i++)
        if (n->statics[i].resolving)
            uv_cancel((uv_req_t *)&n->statics[i].gai);
    if (n->listening) {
        uv_close((uv_handle_t *)&n->listener, on_handle_close);
        n->listening = false;
    }
    node_discovery_stop(n);
    services_stop(n);
    node_overlay_stop(n); /* area: scale (#13) */
    /* Say goodbye on every link; handshakes are cut at once. */
    node_list *e, *next;
    for (e = n->conns.next; e != &n->conns; e = next) {
        next = e->next;
        node_conn *c = node_container_of(e, node_conn, link);
        if (c->state == CONN_UP || c->state == CONN_DRAINING)
            node_conn_bye(c, WIRE_BYE_STOPPING);
        else if (c->state != CONN_CLOSING)
            node_conn_abort(c, CONFAB_DOWN_STOPPING);
    }
    node_groups_stop(n);
    node_peer *p;
    node_peer_each (n, p)
        node_data_drop_lane(n, p);
    node_flush_all(n);
    /* The tick timer becomes the grace timer. */
    uv_close((uv_handle_t *)&n->wake, on_handle_close);
    n->tick_asleep = false;
    uv_timer_stop(&n->tick);
    uv_timer_start(&n->tick, stop_grace_cb, NODE_STOP_GRACE_MS, 0);
    uv_idle_stop(&n->flusher);
    uv_check_stop(&n->flush_check);
    n->flush_armed = false;
    uv_close((uv_handle_t *)&n->flusher, on_handle_close);
    uv_close((uv_handle_t *)&n->flush_check, on_handle_close);
    if (n->delay_timer_open) {
        uv_close((uv_handle_t *)&n->delay_timer, on_handle_close);
        n->delay_timer_open = false;
    }
    /* If every link is already gone, finish now. */
    if (node_list_empty(&n->conns))
        stop_grace_cb(&n->tick);
    return 0;
}

/* Called by conn.c each time a connection is freed: during a stop, the
 * last one lets the node finish. */
void node_conns_gone(confab_node *n)
{
    if (n->state == NODE_STOPPING && node_list_empty(&n->conns) &&
        !uv_is_closing((uv_handle_t *)&n->tick)) {
        uv_timer_stop(&n->tick);
        uv_close((uv_handle_t *)&n->tick, on_handle_close);
    }
}

void confab_node_free(confab_node *n)
{
    if (n == NULL)
        return;
    for (const node_service *const *s = node_services; *s != NULL; s++)
        if ((*s)->free != NULL)
            (*s)->free(n);
    if (n->store != NULL)
        node_store_close(n->store);
    node_store_free(n->store);
    node_inbox_free(n);
    free(n->home);
    free(n->control_path);
    node_groups_free(n);
    node_request_free(n);
    node_routed_free(n);
    node_peers_free(n);
    node_route_free(n);
    node_overlay_free(n); /* area: scale (#13) */
    if (n->rx_dump_fd > 0)
        close(n->rx_dump_fd);
    node_allow_free(n);
    node_delivery_free(n);
    node_txbuf_free_all(n);
    free(n->statics);
    free(n->blocked);
    free(n->bcast);
    node_iface_free(n);
    free(n->pex_new);
    rxbuf_release(n->rxbuf);
    sec_identity_free(n->identity);
    sec_netkey_free(n->netkey);
    free(n);
}

/* ---- queries ---------------------------------------------------------- */

const uint8_t *confab_node_id(const confab_node *n)
{
    return n->identity->pk;
}

const char *confab_node_name(const confab_node *n)
{
    return n->name;
}

uint16_t confab_node_port(const confab_node *n)
{
    return n->port;
}

void confab_node_stats(const confab_node *n, confab_stats *out)
{
    *out = n->stats;
    uint64_t up = 0;
    const node_peer *p;
    node_peer_each (n, p)
        if (p->state == CONFAB_PEER_UP)
            up++;
    out->peers_up = up;
    uint64_t links = 0;
    for (const node_list *e = n->conns.next; e != &n->conns; e = e->next) {
        const node_conn *c =
            (const node_conn *)(const void *)((const char *)e -
                                              offsetof(node_conn, link));
        if (c->state != CONN_CLOSING)
            links++;
    }
    out->links_open = links;
    out->outbox_msgs = n->ob_msgs;
}

int confab_node_dial(confab_node *n, const char *host_port)
{
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    char host[256];
    uint16_t port;
    if (host_port == NULL ||
        split_host_port(host_port, host, sizeof host, &port) != 0)
        return -EINVAL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return -EINVAL;
    node_conn *c;
    return node_conn_dial(n, &ss, NULL, NULL, &c);
}

int node_split_host_port(const char *hp, char *host, size_t cap, uint16_t *port)
{
    return split_host_port(hp, host, cap, port);
}
