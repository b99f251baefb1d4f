/* Layer peers (node/LAYERS).
 * discovery.c: finding peers by UDP broadcast: sending beacons, hearing
 * them, and the dial rule (docs/PROTOCOL.md sections 6 and 9).
 *
 * Every node binds the discovery port with SO_REUSEADDR and SO_REUSEPORT,
 * so several nodes on one host all hear a broadcast. A beacon is tagged
 * under the network key: nodes of another network never hear each other. */
#include "node/peers/peers.h"

#include "node/peers/iface.h"
#include "node/peers/overlay.h"

#include "crypto/tag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* area: scale (#13): every node of a LAN hears every beacon, so N nodes
 * beaconing each second cost N^2 receptions a second, each a keyed
 * BLAKE2b: a million a second for 1,000 nodes in one process, which then
 * did little else. Past mesh_threshold known peers the interval grows in
 * proportion (RTCP's rule, RFC 3550 6.2), so that the LAN hears about
 * mesh_threshold beacons an interval whatever its size, up to a third of
 * known_peer_ttl_ms (a peer heard of is kept that long); and no extra
 * beacons then: past the threshold newcomers come through the overlay
 * (PEERS, its walks), not through beacons answered at once. */
static bool crowded(const confab_node *n)
{
    return n->cfg.mesh_threshold != 0 && n->peers_len > n->cfg.mesh_threshold;
}

static unsigned beacon_interval(const confab_node *n)
{
    unsigned iv = n->cfg.beacon_interval_ms;
    if (!crowded(n))
        return iv;
    uint64_t s = (uint64_t)iv * n->peers_len / n->cfg.mesh_threshold;
    uint64_t cap = n->cfg.known_peer_ttl_ms / 3u;
    if (cap < iv)
        cap = iv;
    return (unsigned)(s < cap ? s : cap);
}

/* ---- where beacons go ------------------------------------------------- */

static int set_fixed_targets(confab_node *n)
{
    size_t k = n->cfg.n_broadcast_addrs;
    n->bcast = calloc(k ? k : 1, sizeof *n->bcast);
    if (n->bcast == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < k; i++) {
        if (uv_ip4_addr(n->cfg.broadcast_addrs[i], n->discovery_port,
                        &n->bcast[i]) != 0) {
            node_log(n, CONFAB_LOG_ERROR,
                     "broadcast address '%s' is not an IPv4 address (for "
                     "example 192.168.1.255, or 127.255.255.255 on one host)",
                     n->cfg.broadcast_addrs[i]);
            return -EINVAL;
        }
    }
    n->n_bcast = k;
    n->bcast_fixed = true;
    return 0;
}

static bool broadcasts(const confab_node *n, const struct ifaddrs *i)
{
    return i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
           (i->ifa_flags & IFF_UP) && (i->ifa_flags & IFF_BROADCAST) &&
           i->ifa_broadaddr != NULL && node_iface_wanted(n, i->ifa_name);
}

/* Reads the broadcast address of every IPv4 interface that is up and can
 * broadcast (of those --interface names, if any). Called before each
 * beacon, so interfaces that come and go are followed within one
 * interval. */
static void read_interfaces(confab_node *n)
{
    struct ifaddrs *ifa, *i;
    if (getifaddrs(&ifa) != 0)
        return;
    size_t k = 0;
    for (i = ifa; i != NULL; i = i->ifa_next)
        if (broadcasts(n, i))
            k++;
    struct sockaddr_in *t = calloc(k ? k : 1, sizeof *t);
    if (t == NULL) {
        freeifaddrs(ifa);
        return;
    }
    size_t j = 0;
    for (i = ifa; i != NULL && j < k; i = i->ifa_next) {
        if (!broadcasts(n, i))
            continue;
        memcpy(&t[j], i->ifa_broadaddr, sizeof t[j]);
        t[j].sin_family = AF_INET;
        t[j].sin_port = htons(n->discovery_port);
        j++;
    }
    freeifaddrs(ifa);
    free(n->bcast);
    n->bcast = t;
    n->n_bcast = j;
}

/* ---- sending ---------------------------------------------------------- */

static int encode_beacon(confab_node *n)
{
    wire_beacon b;
    memset(&b, 0, sizeof b);
    b.version = WIRE_VERSION;
    memcpy(b.id, n->identity->pk, WIRE_NODE_ID_BYTES);
    b.port = n->port;
    b.name.ptr = (const uint8_t *)n->name;
    b.name.len = (uint32_t)strlen(n->name);
    b.boot = n->boot;
    node_beacon_fill_advert(n, &b);
    size_t tagged;
    int rc = wire_beacon_encode(&b, n->beacon, sizeof n->beacon, &tagged);
    if (rc != 0)
        return rc;
    uint8_t tag[WIRE_BEACON_TAG_BYTES];
    sec_beacon_tag(n->netkey->key, n->beacon, tagged, tag);
    return wire_beacon_append_tag(n->beacon, sizeof n->beacon, tagged, tag,
                                  &n->beacon_len);
}

static void send_beacon(confab_node *n)
{
    if (!n->bcast_fixed)
        read_interfaces(n);
    uv_buf_t buf = uv_buf_init((char *)n->beacon, (unsigned)n->beacon_len);
    for (size_t i = 0; i < n->n_bcast; i++) {
        /* Best effort: a full socket buffer skips one beacon. */
        int rc = uv_udp_try_send(&n->udp, &buf, 1,
                                 (const struct sockaddr *)&n->bcast[i]);
        if (rc >= 0)
            n->stats.beacons_sent++;
        else if (rc != UV_EAGAIN)
            node_log(n, CONFAB_LOG_DEBUG, "beacon not sent: %s",
                     uv_strerror(rc));
    }
    node_disc6_send(n, &buf);
}

static void beacon_cb(uv_timer_t *t);

static void arm_beacon(confab_node *n, uint64_t delay)
{
    uv_timer_start(&n->beacon_timer, beacon_cb, delay, 0);
}

static void beacon_cb(uv_timer_t *t)
{
    confab_node *n = t->data;
    n->stats.timer_wakeups++;
    if (n->state != NODE_RUNNING)
        return;
    send_beacon(n);
    if (n->extra_beacon_due)
        n->last_extra_beacon = node_now_ms(n);
    n->extra_beacon_due = false;
    /* The next one in 75% to 125% of the interval, so that nodes started
     * together do not beacon in lockstep. */
    unsigned iv = beacon_interval(n);
    uint32_t r;
    node_random(n, &r, sizeof r);
    arm_beacon(n, iv * 3u / 4u + (iv / 2u ? r % (iv / 2u + 1u) : 0));
}

void node_discovery_extra_beacon(confab_node *n)
{
    if (!n->beacon_timer_open || n->extra_beacon_due ||
        n->state != NODE_RUNNING || node_fault_no_reannounce(n) || crowded(n))
        return;
    /* Many new peers at once (a network starting) earn one beacon, not one
     * each: at most one extra beacon per NODE_EXTRA_BEACON_MS. */
    uint64_t now = node_now_ms(n);
    uint64_t spacing = NODE_EXTRA_BEACON_MS < beacon_interval(n)
                           ? NODE_EXTRA_BEACON_MS
                           : beacon_interval(n);
    uint64_t at = n->last_extra_beacon + spacing;
    n->extra_beacon_due = true;
    arm_beacon(n, at > now ? at - now : 0);
}

/* ---- the dial rule ---------------------------------------------------- */

static unsigned dial_grace(const confab_node *n)
{
    return n->cfg.dial_grace_ms ? n->cfg.dial_grace_ms
                                : 2u * n->cfg.beacon_interval_ms;
}

void node_discovered(confab_node *n, node_peer *p, uint64_t now)
{
    if (p->conn != NULL || p->switching || !p->has_addr ||
        node_peer_blocked(n, p->id))
        return;
    p->heard = true;
    if (node_overlay_discovered(n, p)) /* area: scale (#13): passive */
        return;
    /* Node ids are public keys: memcmp orders them (PROTOCOL.md 9.2). */
    if (memcmp(n->identity->pk, p->id, WIRE_NODE_ID_BYTES) < 0) {
        /* We are the smaller: we dial, now unless a backoff is running,
         * and again after losses. */
        p->redial = true;
        if (p->dialing == NULL && now >= p->next_dial)
            node_peer_dial_now(n, p, now);
    } else if (!p->redial && p->grace_deadline == 0) {
        /* The other dials; if nothing came within the grace period (it may
         * not hear us), the tick makes us the dialer. */
        p->grace_deadline = now + dial_grace(n);
    }
}

/* ---- receiving -------------------------------------------------------- */

/* The limit is per source: an address and the node id it claims. Every
 * node on a host beacons from the same address and port (the discovery
 * port), so the address alone would make one source of them all. */
bool node_beacon_rate_ok(confab_node *n, const struct sockaddr_in *src,
                         const uint8_t *id, uint64_t now)
{
    uint32_t ip = src->sin_addr.s_addr;
    uint16_t port = src->sin_port;
    uint32_t idh;
    memcpy(&idh, id, sizeof idh);
    size_t slot =
        ((ip * 2654435761u) ^ port ^ (idh * 2246822519u)) % NODE_RATE_SLOTS;
    node_rate *r = &n->rate[slot];
    if (r->ip != ip || r->port != port || r->id != idh ||
        now - r->window >= 1000) {
        r->ip = ip;
        r->port = port;
        r->id = idh;
        r->window = now;
        r->count = 0;
    }
    return ++r->count <= NODE_RATE_BEACONS;
}

static void drop(confab_node *n, uint64_t *counter)
{
    n->stats.beacons_dropped++;
    (*counter)++;
}

static void on_beacon(confab_node *n, const uint8_t *buf, size_t len,
                      const struct sockaddr *src)
{
    wire_beacon b;
    size_t tagged;
    uint64_t now = node_now_ms(n);
    if (len > WIRE_BEACON_MAX ||
        wire_beacon_decode(buf, len, &b, &tagged) != 0) {
        drop(n, &n->stats.beacons_malformed);
        return;
    }
    if (memcmp(b.id, n->identity->pk, WIRE_NODE_ID_BYTES) == 0) {
        drop(n, &n->stats.beacons_own);
        return;
    }
    if (!node_beacon_rate_ok_any(n, src, b.id, now)) {
        drop(n, &n->stats.beacons_rate_limited);
        return;
    }
    if (sec_beacon_verify(n->netkey->key, buf, tagged, b.tag) != 0) {
        drop(n, &n->stats.beacons_bad_tag);
        struct sockaddr_storage from;
        memset(&from, 0, sizeof from);
        memcpy(&from, src, sizeof *src);
        node_explain_other_network(n, "beacon", &from);
        return;
    }
    if (node_beacon_blocked(n, b.id))
        return; /* a test cut this pair: as if the beacon never came */
    if (!node_allowed(n, b.id)) {
        /* Not on the allow-list: never learned, never dialed. */
        drop(n, &n->stats.beacons_not_allowed);
        return;
    }
    struct sockaddr_storage at;
    if (node_beacon_address(src, &b, &at) != 0) {
        /* It names (or comes from) an address no one can dial. */
        drop(n, &n->stats.beacons_bad_addr);
        return;
    }
    n->stats.beacons_received++;
    if (src->sa_family == AF_INET6)
        n->stats.beacons6_received++;
    bool fresh = node_peer_find(n, b.id) == NULL;
    node_peer *p = node_peer_learn(n, b.id);
    if (p == NULL)
        return; /* no room: every never-linked place is held */
    if (p->conn == NULL) {
        /* Not linked: the beacon tells us where it listens now. */
        p->addr = at;
        p->has_addr = true;
        p->advertised = b.adv_len != 0;
        memcpy(p->name, b.name.ptr, b.name.len);
        p->name[b.name.len] = '\0';
        if (b.boot > p->boot) {
            /* It restarted: whatever backoff we had for it is stale. */
            p->boot = b.boot;
            p->next_dial = 0;
            p->backoff_ms = 0;
        }
    }
    if (fresh || !p->heard)
        node_discovery_extra_beacon(n);
    /* Heard now, even when already linked (node_discovered returns early
     * then): otherwise every beacon of a peer that linked before its first
     * beacon came would earn it an extra one, doubling our rate. */
    p->heard = true;
    node_discovered(n, p, now);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    confab_node *n = h->data;
    (void)suggested;
    if (n->beacon_rx_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    n->beacon_rx_busy = true;
    /* One byte more than a beacon may have, to see oversized ones. */
    *buf = uv_buf_init((char *)n->beacon_rx, sizeof n->beacon_rx);
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags)
{
    confab_node *n = h->data;
    if (buf->base == (char *)n->beacon_rx)
        n->beacon_rx_busy = false;
    if (nread <= 0 || addr == NULL || n->state != NODE_RUNNING)
        return;
    if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        (flags & UV_UDP_PARTIAL)) {
        drop(n, &n->stats.beacons_malformed);
        return;
    }
    on_beacon(n, (const uint8_t *)buf->base, (size_t)nread, addr);
}

/* ---- start and stop --------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    node_handle_closed(h->data);
}

/* Opens the beacon socket ourselves: libuv's UV_UDP_REUSEADDR does not set
 * SO_REUSEPORT on Linux, and both are needed for every node on a host to
 * hear every broadcast. */
static int open_socket(confab_node *n, int *fd_out)
{
    struct sockaddr_in a;
    if (uv_ip4_addr(n->discovery_bind, n->discovery_port, &a) != 0) {
        node_log(n, CONFAB_LOG_ERROR,
                 "discovery bind address '%s' is not an IPv4 address",
                 n->discovery_bind);
        return -EINVAL;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = -errno;
        close(fd);
        node_log(n, CONFAB_LOG_ERROR,
                 "cannot open the discovery port %s:%u: %s; choose another "
                 "with --discovery-port, or turn discovery off",
                 n->discovery_bind, n->discovery_port, uv_strerror(err));
        return err;
    }
    *fd_out = fd;
    return 0;
}

int node_discovery_start(confab_node *n)
{
    n->discovery_port = n->cfg.discovery_port;
    int rc = 0;
    if (n->cfg.n_broadcast_addrs > 0)
        rc = set_fixed_targets(n);
    if (rc == 0)
        rc = encode_beacon(n);
    int fd = -1;
    if (rc == 0)
        rc = open_socket(n, &fd);
    if (rc != 0)
        return rc;
    rc = uv_udp_init(n->loop, &n->udp);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    n->udp.data = n;
    n->open_handles++;
    n->udp_open = true;
    rc = uv_udp_open(&n->udp, fd);
    if (rc != 0) {
        close(fd); /* not adopted by libuv: still ours */
        return rc;
    }
    rc = uv_udp_recv_start(&n->udp, udp_alloc, udp_recv);
    if (rc != 0)
        return rc; /* closing the handle closes the socket */
    rc = node_disc6_start(n, udp_alloc, udp_recv);
    if (rc != 0)
        return rc;
    uv_timer_init(n->loop, &n->beacon_timer);
    n->beacon_timer.data = n;
    n->open_handles++;
    n->beacon_timer_open = true;
    /* The first beacon goes out on the first loop turn. */
    arm_beacon(n, 0);
    return 0;
}

void node_discovery_stop(confab_node *n)
{
    node_disc6_stop(n, on_closed);
    if (n->udp_open) {
        uv_close((uv_handle_t *)&n->udp, on_closed);
        n->udp_open = false;
    }
    if (n->beacon_timer_open) {
        uv_close((uv_handle_t *)&n->beacon_timer, on_closed);
        n->beacon_timer_open = false;
    }
}
