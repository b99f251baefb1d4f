/* node/peers/overlay.h -- the overlay of large networks, wired into the
 * node (#13; docs/PROTOCOL.md section 15).
 *
 * Up to cfg.mesh_threshold nodes (this one and the peers it has linked)
 * nothing here runs: every node links to every other. Past it the node
 * turns the overlay on, for the rest of its run:
 *
 * - HyParView (hyparview.c) decides which links are dialed and kept: its
 *   active view, at most cfg.max_links. Other nodes heard of (beacons,
 *   PEERS, routes) go to its passive view instead of being dialed
 *   (node_overlay_discovered, node_overlay_may_dial); a link to a node
 *   outside the view is closed after a short linger.
 * - Plumtree (plumtree.c) carries broadcasts over the active links: the
 *   whole message on tree links, ids on the others (node_overlay_broadcast;
 *   what arrives is handed up through confab_node.ovl_deliver).
 * - SWIM with Lifeguard (swim.c) watches every member, probing through
 *   routed envelopes, and declares a member down only after others could
 *   not reach it either.
 *
 * Everything it keeps is fixed in size or bounded (docs/SECURITY.md). */
#ifndef CONFAB_NODE_PEERS_OVERLAY_H
#define CONFAB_NODE_PEERS_OVERLAY_H

#include "node/peers/peers.h"

typedef struct node_overlay node_overlay;

#define NODE_OVL_OUTQ        8u  /* messages waiting for a link to open */
#define NODE_OVL_CACHE       64u /* broadcasts kept to answer GRAFTs */
#define NODE_OVL_CACHE_BYTES (1u << 20) /* ... in at most this many bytes */
#define NODE_OVL_TICK_MS     50u        /* the overlay's tick, while it is on */
#define NODE_OVL_SEEN        1024u      /* broadcast ids remembered */
#define NODE_OVL_MEMBERS_MAX 4096u      /* SWIM's member table, at most */
/* A new tree neighbour is told the ids of the broadcasts taken in the
 * last this many periods (docs/PROTOCOL.md 15.3). */
#define NODE_OVL_ANNOUNCE_PERIODS 30u

/* Allocates the overlay's state (off). 0 or -ENOMEM. */
int node_overlay_init(confab_node *n);
/* Closes its timer, if it runs (the node is stopping). */
void node_overlay_stop(confab_node *n);
void node_overlay_free(confab_node *n);
/* True once the node is past the threshold. */
bool node_overlay_on(const confab_node *n);
/* True when the overlay may link to p now (off: always). The one gate of
 * node_peer_dial_now. */
bool node_overlay_may_dial(confab_node *n, const node_peer *p);
/* A peer heard of (beacon, PEERS). True when the overlay took it (into
 * the passive view): the caller does not dial it. */
bool node_overlay_discovered(confab_node *n, node_peer *p);
/* The peer table's hooks: a link to p is up, or went down. */
void node_overlay_peer_up(confab_node *n, node_peer *p);
void node_overlay_peer_down(confab_node *n, node_peer *p);
/* t 30, 31 and 32 from the peer of c (a link, or a routed envelope's
 * origin for t 32). 0, or -EPROTO to close the link. */
int node_overlay_on_msg(node_conn *c, const wire_msg *m);
/* Broadcasts map[0..len), an encoded DATA of kind 1 whose id is id, over
 * the tree. Returns the number of links it left on now, or -ENOTSUP when
 * the overlay is off, -EMSGSIZE when it does not fit one GOSSIP. */
int node_overlay_broadcast(confab_node *n, const uint8_t id[WIRE_ID_BYTES],
                           const uint8_t *map, size_t len);

/* area: scale (#13, b-mem): true when routes may go through the link to
 * p: always while the overlay is off, then only for the active view's
 * peers, or any while none of those is linked. A link outside the view
 * (a linger, a NEIGHBOR asked and refused, a shuffle's reply) is about to
 * close, and routes drawn through it broke with it, several times a
 * second in a 100-node network. */
bool node_overlay_routes_via(const confab_node *n, const node_peer *p);

/* Bytes of a GOSSIP around a body of len bytes, at most. */
#define NODE_OVL_GOSSIP_OVERHEAD 96u

#endif
