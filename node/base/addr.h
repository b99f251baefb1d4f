/* node/base/addr.h -- layer base: what kind of IP address a sockaddr holds.
 *
 * Small pure tests used by discovery and peer exchange (node/peers/) to
 * decide which addresses a node may dial and which it may hand to whom
 * (docs/PROTOCOL.md 9.2 and 9.3), and by the link layer to show an IPv4
 * peer of a dual-stack listener as IPv4.
 *
 * Who may include it: every file of node/. */
#ifndef CONFAB_NODE_BASE_ADDR_H
#define CONFAB_NODE_BASE_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* An IPv4 peer of a dual-stack ("::") socket shows as ::ffff:a.b.c.d:
 * rewritten as the plain IPv4 address (and port), so that it is compared,
 * shown and handed on as one. Anything else is left alone. */
static inline void node_addr_unmap(struct sockaddr_storage *ss)
{
    if (ss->ss_family != AF_INET6)
        return;
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    if (!IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
        return;
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = a->sin6_port;
    memcpy(&v4.sin_addr.s_addr, a->sin6_addr.s6_addr + 12, 4);
    memset(ss, 0, sizeof *ss);
    memcpy(ss, &v4, sizeof v4);
}

static inline uint32_t node_addr_ip4(const struct sockaddr_storage *ss)
{
    return ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
}

static inline const struct in6_addr *
node_addr_ip6(const struct sockaddr_storage *ss)
{
    return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

/* 127/8 or ::1. */
static inline bool node_addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (node_addr_ip4(ss) >> 24) == 127u;
    return ss->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(node_addr_ip6(ss));
}

/* fe80::/10: meaningful only with the scope (interface) it was seen on. */
static inline bool node_addr_is_linklocal6(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LINKLOCAL(node_addr_ip6(ss));
}

/* An address no peer can be dialed at: unspecified (0.0.0.0/8, ::),
 * multicast (224/4, ff00::/8), the limited broadcast 255.255.255.255, an
 * IPv4-mapped or -compatible IPv6 form (a peer names IPv4 as 4 bytes),
 * a port 0, or another family. */
static inline bool node_addr_is_bad(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uint32_t ip = node_addr_ip4(ss);
        return a->sin_port == 0 || (ip >> 24) == 0u || (ip >> 28) == 0xeu ||
               ip == 0xffffffffu;
    }
    if (ss->ss_family != AF_INET6)
        return true;
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    const struct in6_addr *ip = &a->sin6_addr;
    return a->sin6_port == 0 || IN6_IS_ADDR_UNSPECIFIED(ip) ||
           IN6_IS_ADDR_MULTICAST(ip) || IN6_IS_ADDR_V4MAPPED(ip) ||
           IN6_IS_ADDR_V4COMPAT(ip);
}

#endif
