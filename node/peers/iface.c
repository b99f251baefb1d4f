/* Layer peers (node/LAYERS).
 * iface.c: discovery's interfaces and addresses: the IPv6 beacon socket
 * and its multicast group, joined per interface and followed as
 * interfaces come and go; --interface and --advertise; and which address
 * a node dials or hands on (docs/PROTOCOL.md 9.1 to 9.3).
 *
 * A link-local address means something only with the interface it was
 * seen on, and that interface index means something only on this host:
 * so scope never crosses the wire. A beacon's source carries the scope the
 * kernel gave it; a PEERS entry gets the scope of the link it came over,
 * and is sent only over a link on the same interface. */
#include "node/peers/iface.h"

#include "node/base/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the user's choices ------------------------------------------------ */

/* "ADDR", "ADDR:PORT", "[IPv6]", "[IPv6]:PORT" or a bare IPv6 literal.
 * The port stays 0 when not given. */
static int parse_advertise(const char *s, struct sockaddr_storage *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t hlen;
    const char *colon = strchr(s, ':');
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -EINVAL;
        hlen = (size_t)(end - s - 1);
        s++;
        port = end[1] == ':' ? end + 2 : NULL;
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        hlen = (size_t)(colon - s); /* IPv4:PORT */
        port = colon + 1;
    } else {
        hlen = strlen(s);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    long p = 0;
    if (port != NULL) {
        char *e;
        errno = 0;
        p = strtol(port, &e, 10);
        if (errno != 0 || e == port || *e != '\0' || p < 1 || p > 65535)
            return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)out) != 0 &&
        uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)out) != 0)
        return -EINVAL;
    return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static uint16_t get_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int advertise_from_config(confab_node *n)
{
    const char *s = n->cfg.advertise;
    n->cfg.advertise = NULL;
    if (s == NULL)
        return 0;
    struct sockaddr_storage a;
    if (parse_advertise(s, &a) != 0) {
        node_log(n, CONFAB_LOG_ERROR,
                 "advertise address '%s' is not ADDR, ADDR:PORT or "
                 "[IPv6]:PORT with an IP literal (for example "
                 "203.0.113.7:47000 or [2001:db8::7]:47000)",
                 s);
        return -EINVAL;
    }
    /* Checked with a port, since the port may be left to the listener. */
    struct sockaddr_storage chk = a;
    set_port(&chk, 1);
    if (node_addr_is_bad(&chk) || node_addr_is_linklocal6(&chk)) {
        node_log(n, CONFAB_LOG_ERROR,
                 "advertise address '%s' cannot be dialed by peers "
                 "(unspecified, multicast, mapped or link-local): name "
                 "the address they reach this node at",
                 s);
        return -EINVAL;
    }
    n->advertise = a;
    n->has_advertise = true;
    return 0;
}

int node_iface_config(confab_node *n)
{
    size_t k = n->cfg.n_interfaces;
    const char *const *names = n->cfg.interfaces;
    n->cfg.interfaces = NULL;
    n->cfg.n_interfaces = 0;
    if (k > 0 && names != NULL) {
        n->ifnames = calloc(k, sizeof *n->ifnames);
        if (n->ifnames == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
            size_t len = names[i] ? strlen(names[i]) : 0;
            if (len == 0 || len >= IF_NAMESIZE) {
                node_log(n, CONFAB_LOG_ERROR,
                         "interface name '%s' is not one (1 to %d "
                         "characters, such as eth0; `ip link` lists them)",
                         names[i] ? names[i] : "", IF_NAMESIZE - 1);
                return -EINVAL;
            }
            n->ifnames[i] = malloc(len + 1);
            if (n->ifnames[i] == NULL)
                return -ENOMEM;
            memcpy(n->ifnames[i], names[i], len + 1);
            n->n_ifnames = i + 1;
            /* Not an error: a laptop's Wi-Fi may come later, and is
             * followed when it does. A typo should still be seen. */
            if (if_nametoindex(names[i]) == 0)
                node_log(n, CONFAB_LOG_WARN,
                         "interface '%s' does not exist now; discovery will "
                         "use it when it appears (`ip link` lists the "
                         "interfaces)",
                         names[i]);
        }
    }
    return advertise_from_config(n);
}

void node_iface_free(confab_node *n)
{
    for (size_t i = 0; i < n->n_ifnames; i++)
        free(n->ifnames[i]);
    free(n->ifnames);
    n->ifnames = NULL;
    n->n_ifnames = 0;
}

bool node_iface_wanted(const confab_node *n, const char *name)
{
    if (n->ifnames == NULL)
        return true;
    for (size_t i = 0; i < n->n_ifnames; i++)
        if (strcmp(n->ifnames[i], name) == 0)
            return true;
    return false;
}

void node_beacon_fill_advert(const confab_node *n, wire_beacon *b)
{
    if (!n->has_advertise)
        return;
    const struct sockaddr_storage *a = &n->advertise;
    if (a->ss_family == AF_INET) {
        memcpy(b->adv_addr, &((const struct sockaddr_in *)a)->sin_addr.s_addr,
               4);
        b->adv_len = 4;
    } else {
        memcpy(b->adv_addr, node_addr_ip6(a)->s6_addr, 16);
        b->adv_len = 16;
    }
    b->adv_port = get_port(a);
}

/* ---- the IPv6 socket and its group ------------------------------------- */

static int open_socket6(confab_node *n, const char *bind_to, int *fd_out)
{
    struct sockaddr_in6 a;
    if (uv_ip6_addr(bind_to, n->discovery_port, &a) != 0)
        return -EINVAL;
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* Loop on: nodes in one namespace hear each other's beacons; hops 1:
     * the group is link-local anyway. */
    int hops = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) !=
            0 ||
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) !=
            0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

int node_disc6_start(confab_node *n, uv_alloc_cb alloc, uv_udp_recv_cb recv)
{
    const char *db = n->discovery_bind;
    const char *bind_to;
    if (strcmp(db, "0.0.0.0") == 0 || strcmp(db, "::") == 0)
        bind_to = "::";
    else if (strchr(db, ':') != NULL)
        bind_to = db;
    else
        return 0; /* bound to one IPv4 address: IPv4 only */
    int fd = -1;
    int rc = open_socket6(n, bind_to, &fd);
    if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
        node_log(n, CONFAB_LOG_INFO,
                 "no IPv6 discovery: %s (IPv4 discovery goes on)",
                 uv_strerror(rc));
        return 0;
    }
    if (rc != 0) {
        node_log(n, CONFAB_LOG_ERROR,
                 "cannot open the IPv6 discovery port [%s]:%u: %s; choose "
                 "another with --discovery-port, or turn discovery off",
                 bind_to, n->discovery_port, uv_strerror(rc));
        return rc;
    }
    rc = uv_udp_init(n->loop, &n->udp6);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    n->udp6.data = n;
    n->open_handles++;
    n->udp6_open = true;
    rc = uv_udp_open(&n->udp6, fd);
    if (rc != 0) {
        close(fd); /* not adopted by libuv: still ours */
        return rc;
    }
    return uv_udp_recv_start(&n->udp6, alloc, recv);
}

void node_disc6_stop(confab_node *n, uv_close_cb closed)
{
    if (!n->udp6_open)
        return;
    /* Closing the socket leaves its groups. */
    uv_close((uv_handle_t *)&n->udp6, closed);
    n->udp6_open = false;
    n->n_mc_ifs = 0;
}

static bool has_index(const unsigned *list, size_t len, unsigned idx)
{
    for (size_t i = 0; i < len; i++)
        if (list[i] == idx)
            return true;
    return false;
}

static bool usable6(const confab_node *n, const struct ifaddrs *i)
{
    if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET6 ||
        !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_MULTICAST))
        return false;
    /* Loopback only when named: a test's choice, never a default. */
    if ((i->ifa_flags & IFF_LOOPBACK) && n->ifnames == NULL)
        return false;
    return node_iface_wanted(n, i->ifa_name);
}

static int membership(confab_node *n, int opt, unsigned idx)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&n->udp6, &fd) != 0)
        return -EBADF;
    struct ipv6_mreq m;
    memset(&m, 0, sizeof m);
    inet_pton(AF_INET6, NODE_BEACON_GROUP6, &m.ipv6mr_multiaddr);
    m.ipv6mr_interface = idx;
    return setsockopt(fd, IPPROTO_IPV6, opt, &m, sizeof m) == 0 ? 0 : -errno;
}

/* Joins the group on every usable interface not joined yet and leaves it
 * on those gone, so that a laptop's Wi-Fi coming back is beaconed on
 * within one interval. */
static void refresh_groups(confab_node *n)
{
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) != 0)
        return;
    unsigned now[NODE_MC_IFS_MAX];
    size_t k = 0;
    for (struct ifaddrs *i = ifa; i != NULL && k < NODE_MC_IFS_MAX;
         i = i->ifa_next) {
        unsigned idx = usable6(n, i) ? if_nametoindex(i->ifa_name) : 0;
        if (idx != 0 && !has_index(now, k, idx))
            now[k++] = idx;
    }
    freeifaddrs(ifa);
    for (size_t i = 0; i < n->n_mc_ifs; i++)
        if (!has_index(now, k, n->mc_ifs[i]))
            (void)membership(n, IPV6_LEAVE_GROUP, n->mc_ifs[i]);
    size_t kept = 0;
    for (size_t i = 0; i < k; i++) {
        int rc = 0;
        if (!has_index(n->mc_ifs, n->n_mc_ifs, now[i]))
            rc = membership(n, IPV6_JOIN_GROUP, now[i]);
        if (rc == 0)
            now[kept++] = now[i];
        else
            node_log(n, CONFAB_LOG_DEBUG,
                     "cannot join the IPv6 beacon group on interface %u: %s",
                     now[i], uv_strerror(rc));
    }
    memcpy(n->mc_ifs, now, kept * sizeof now[0]);
    n->n_mc_ifs = kept;
}

void node_disc6_send(confab_node *n, const uv_buf_t *buf)
{
    if (!n->udp6_open || n->bcast_fixed)
        return;
    refresh_groups(n);
    struct sockaddr_in6 to;
    if (uv_ip6_addr(NODE_BEACON_GROUP6, n->discovery_port, &to) != 0)
        return;
    for (size_t i = 0; i < n->n_mc_ifs; i++) {
        /* The scope id picks the interface of a link-local destination. */
        to.sin6_scope_id = n->mc_ifs[i];
        int rc = uv_udp_try_send(&n->udp6, buf, 1, (struct sockaddr *)&to);
        if (rc >= 0) {
            n->stats.beacons_sent++;
            n->stats.beacons6_sent++;
        } else if (rc != UV_EAGAIN)
            node_log(n, CONFAB_LOG_DEBUG,
                     "IPv6 beacon not sent on interface %u: %s", n->mc_ifs[i],
                     uv_strerror(rc));
    }
}

/* ---- addresses heard ----------------------------------------------------- */

static void from_bytes(const uint8_t *addr, size_t len, uint16_t port,
                       struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (len == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr.s_addr, addr, 4);
        a->sin_port = htons(port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        memcpy(a->sin6_addr.s6_addr, addr, 16);
        a->sin6_port = htons(port);
    }
}

static void copy_sockaddr(const struct sockaddr *src,
                          struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (src->sa_family == AF_INET6)
        memcpy(out, src, sizeof(struct sockaddr_in6));
    else
        memcpy(out, src, sizeof(struct sockaddr_in));
}

static unsigned scope_of(const struct sockaddr_storage *ss)
{
    return ((const struct sockaddr_in6 *)ss)->sin6_scope_id;
}

int node_beacon_address(const struct sockaddr *src, const wire_beacon *b,
                        struct sockaddr_storage *out)
{
    struct sockaddr_storage from;
    copy_sockaddr(src, &from);
    node_addr_unmap(&from);
    uint16_t port = b->adv_port ? b->adv_port : b->port;
    if (b->adv_len != 0) {
        from_bytes(b->adv_addr, b->adv_len, port, out);
        /* A named link-local address has no scope we could know; a named
         * loopback one is this host's only if the beacon came from it. */
        if (node_addr_is_bad(out) || node_addr_is_linklocal6(out) ||
            (node_addr_is_loopback(out) && !node_addr_is_loopback(&from)))
            return -EINVAL;
        return 0;
    }
    *out = from;
    set_port(out, port);
    if (node_addr_is_bad(out) ||
        (node_addr_is_linklocal6(out) && scope_of(out) == 0))
        return -EINVAL;
    return 0;
}

bool node_beacon_rate_ok_any(confab_node *n, const struct sockaddr *src,
                             const uint8_t *id, uint64_t now)
{
    if (src->sa_family == AF_INET)
        return node_beacon_rate_ok(n, (const struct sockaddr_in *)src, id, now);
    /* The limiter keys on 32 bits of address: an IPv6 source is folded
     * into them (with its scope). Two sources that fold alike share a
     * slot, as two that hash alike already do. */
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
    uint32_t w[4];
    memcpy(w, a->sin6_addr.s6_addr, sizeof w);
    struct sockaddr_in folded;
    memset(&folded, 0, sizeof folded);
    folded.sin_family = AF_INET;
    folded.sin_addr.s_addr = w[0] ^ w[1] ^ w[2] ^ w[3] ^ a->sin6_scope_id;
    folded.sin_port = a->sin6_port;
    return node_beacon_rate_ok(n, &folded, id, now);
}

/* ---- addresses handed on (PEERS) ----------------------------------------- */

int node_pex_entry_address(const struct sockaddr_storage *via,
                           const wire_peer_entry *e,
                           struct sockaddr_storage *out)
{
    struct sockaddr_storage link = *via;
    node_addr_unmap(&link);
    from_bytes(e->addr, e->addr_len, e->port, out);
    if (node_addr_is_bad(out) ||
        (node_addr_is_loopback(out) && !node_addr_is_loopback(&link)))
        return -EINVAL;
    if (node_addr_is_linklocal6(out)) {
        /* Usable only on the link it came over: that link's scope. */
        if (!node_addr_is_linklocal6(&link) || scope_of(&link) == 0)
            return -EINVAL;
        ((struct sockaddr_in6 *)out)->sin6_scope_id = scope_of(&link);
    }
    return 0;
}

bool node_pex_shareable(const struct sockaddr_storage *a,
                        const struct sockaddr_storage *to)
{
    if (node_addr_is_bad(a))
        return false;
    if (node_addr_is_loopback(a) && !node_addr_is_loopback(to))
        return false;
    if (node_addr_is_linklocal6(a))
        return node_addr_is_linklocal6(to) && scope_of(a) == scope_of(to);
    return true;
}
