/* node/peers/iface.h -- layer peers: interfaces and addresses for discovery.
 *
 * IPv6 discovery (docs/PROTOCOL.md 9.1): one UDP socket bound to
 * [::]:discovery_port (IPV6_V6ONLY, so the IPv4 socket keeps the IPv4
 * port), joined to confab's link-local multicast group on every interface
 * that is up, has IPv6 and can multicast, re-enumerated before each
 * beacon; beacons go out once per interface. Also the user's choices
 * (--interface, --advertise) and the rules of which address a node dials
 * and which it hands to whom (9.2, 9.3).
 *
 * Who may include it: node/peers/ (discovery.c, pex.c) and node/api/. */
#ifndef CONFAB_NODE_PEERS_IFACE_H
#define CONFAB_NODE_PEERS_IFACE_H

#include "node/peers/peers.h"

/* confab's IPv6 beacon group: link-local scope (ff02::/16), the low 48
 * bits the ASCII bytes of "confab" (63 6f 6e 66 61 62). */
#define NODE_BEACON_GROUP6 "ff02::636f:6e66:6162"

/* Copies config.interfaces and config.advertise into the node at creation.
 * Returns 0, -EINVAL (an advertise address that is not one, or one no
 * peer can dial; logged with what to do) or -ENOMEM. */
int node_iface_config(confab_node *n);
void node_iface_free(confab_node *n);
/* True when discovery may use the interface called name (no --interface,
 * or named by one). */
bool node_iface_wanted(const confab_node *n, const char *name);

/* Opens the IPv6 beacon socket when the discovery bind address is the
 * wildcard ("0.0.0.0" or "::") or an IPv6 literal, and starts receiving
 * on it with these callbacks. A host without IPv6 is not an error (0, no
 * socket). Returns 0 or a negative errno (logged). */
int node_disc6_start(confab_node *n, uv_alloc_cb alloc, uv_udp_recv_cb recv);
void node_disc6_stop(confab_node *n, uv_close_cb closed);
/* Sends the beacon to the group on every IPv6 interface, joining and
 * leaving the group as interfaces come and go; nothing when the beacon
 * targets are configured (config.broadcast_addrs). */
void node_disc6_send(confab_node *n, const uv_buf_t *buf);

/* The advertised address (if any) into the beacon's extension fields. */
void node_beacon_fill_advert(const confab_node *n, wire_beacon *b);
/* Where to dial the sender of beacon b that came from src: the address the
 * beacon names, or src (with its scope), at the named port or b->port.
 * Returns 0, or -EINVAL when that address is not one this node can dial
 * from where the beacon came (unspecified, multicast, link-local without
 * scope, loopback from another host). */
int node_beacon_address(const struct sockaddr *src, const wire_beacon *b,
                        struct sockaddr_storage *out);
/* The beacon limiter (node_beacon_rate_ok) for either family. */
bool node_beacon_rate_ok_any(confab_node *n, const struct sockaddr *src,
                             const uint8_t *id, uint64_t now);

/* A PEERS entry that came over a link with remote address via, as an
 * address to dial: link-local IPv6 gets via's scope when via is
 * link-local too. Returns 0, or -EINVAL when this node cannot use it
 * (unspecified, multicast, mapped, loopback over a link that is not,
 * link-local over a link that is not). */
int node_pex_entry_address(const struct sockaddr_storage *via,
                           const wire_peer_entry *e,
                           struct sockaddr_storage *out);
/* True when a peer whose remote address is to can use address a: no
 * loopback address to a remote host, link-local only on the same link. */
bool node_pex_shareable(const struct sockaddr_storage *a,
                        const struct sockaddr_storage *to);

#endif
