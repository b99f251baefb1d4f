/* node/routing/routing.h -- layer routing: reaching nodes with no link.
 *
 * A distance vector with per-destination sequence numbers (DSDV): each
 * node tells each linked peer, in ROUTE messages, whom it reaches at how
 * many hops; split horizon with poisoned reverse, infinity 16, triggered
 * and periodic adverts, routes that expire. ROUTED envelopes carry a
 * message sealed end to end (crypto_box under the two identity keys) hop
 * by hop along the table; a relay sees the header only. What an opened
 * envelope holds goes up through node_route_ops (messaging's delivery
 * stream runs over it as over a link). docs/PROTOCOL.md section 13.
 *
 * Who may include it: node/routing/ and the layers above it
 * (node/LAYERS). */
#ifndef CONFAB_NODE_ROUTING_ROUTING_H
#define CONFAB_NODE_ROUTING_ROUTING_H

#include "node/peers/peers.h"

#include <sodium.h>

#define NODE_ROUTE_PERIOD_MS 1000u /* full adverts to each linked peer */
/* Triggered adverts at most this often (RFC 2453 3.10.1 holds them 1 to 5
 * s): while a mesh forms every link up triggers one, and unheld they went
 * to every peer at every tick, which tripled a 100-node mesh's time. */
#define NODE_ROUTE_TRIGGER_MS 250u
#define NODE_ROUTE_EXPIRE_MS  4000u /* a route its next hop stopped telling */
#define NODE_ROUTE_FORGET_MS  8000u /* an unreachable route is forgotten */
/* area: scale (#13): a newer sequence number over a longer path than the
 * route's replaces it only when its next hop has not refreshed it for
 * this long (route.c, take_entry) */
#define NODE_ROUTE_SETTLE_MS 2000u
/* area: scale (#13): destinations at most, whatever max_routes says; an
 * advert of more than WIRE_ROUTE_MAX - 1 goes in several ROUTE messages
 * (docs/PROTOCOL.md 13.2) */
#define NODE_ROUTE_MAX 65536u
/* area: scale (#13): bytes of each of the sealing and opening buffers */
#define NODE_ROUTE_SCRATCH   WIRE_MAX_FRAME
#define NODE_ROUTE_STRIKES   8u     /* bad routing inputs before the cut */
#define NODE_ROUTE_STRIKE_MS 10000u /* ... within this long */
#define NODE_ROUTE_KEYS      32u    /* box keys kept for origins */
/* A relay forwards while its next hop's link has less than this queued
 * (below any link_tx_bytes, which would cut that link). */
#define NODE_ROUTE_RELAY_QUEUE (256u * 1024u)
/* The origin's window: bytes of a routed stream sent and not yet
 * acknowledged, at most (relays hold no queue of their own, so the end to
 * end window is what keeps one flow from overrunning a relay's link). */
#define NODE_ROUTE_WINDOW (96u * 1024u)

typedef struct node_route {
    uint8_t id[WIRE_NODE_ID_BYTES]; /* the destination */
    node_peer *via;                 /* its next hop, a linked peer */
    uint64_t seq;                   /* the destination's sequence number */
    uint64_t epoch;                 /* its delivery epoch (section 12) */
    unsigned metric;                /* hops; WIRE_ROUTE_INFINITY: none */
    unsigned fd_metric; /* the lowest metric held under seq (feasibility) */
    uint64_t heard_ms;  /* loop ms it was last refreshed */
    uint8_t key[crypto_box_BEFORENMBYTES]; /* box key with it */
    bool has_key;
} node_route;

/* A box key computed for an origin with no route (replies come that way
 * before adverts do). */
typedef struct node_route_key {
    uint8_t id[WIRE_NODE_ID_BYTES];
    uint8_t key[crypto_box_BEFORENMBYTES];
    bool used;
} node_route_key;

/* Bad routing input from one linked peer, counted for the cut. */
typedef struct node_route_strike {
    const node_peer *peer;
    unsigned count;
    uint64_t since_ms;
} node_route_strike;

/* ROUTE messages heard from one linked peer this second (a slot per
 * first byte of its id, taken over by another: a flood is still cut). */
#define NODE_ROUTE_RATES 64u
typedef struct node_route_rate {
    const node_peer *peer;
    uint64_t window_ms;
    unsigned count;
} node_route_rate;

/* What routing hands up (set by the api layer at creation). */
typedef struct node_route_ops {
    /* An envelope for this node opened: from the origin `from` (proved by
     * the box), whose delivery epoch is epoch, the inner message m, after
     * hops links. 0, or -EPROTO: the inner message breaks the rules (the
     * envelope is dropped and counted; the link stays). */
    int (*deliver)(confab_node *n, const uint8_t *from, uint64_t epoch,
                   const wire_msg *m, unsigned hops);
    /* The route to id changed: up, down or through another hop. */
    void (*changed)(confab_node *n, const uint8_t *id);
} node_route_ops;

/* A trace this node runs (trace.c). */
#define NODE_TRACES   8u
#define NODE_TRACE_MS 3000u /* then what did not answer is lost */
typedef struct node_trace {
    uint64_t token; /* 0: free */
    uint8_t dst[WIRE_NODE_ID_BYTES];
    uint64_t started_ms;
    unsigned probes; /* hops probed: 1..16 */
    uint64_t sent_us[CONFAB_TRACE_HOPS];
    confab_trace_hop hops[CONFAB_TRACE_HOPS];
    unsigned dest_hop; /* the hop the destination answered at, 0: not yet */
} node_trace;

typedef struct node_routing {
    /* area: scale (#13): grown up to max_routes, and found through an
     * open-addressed index of route numbers + 1 (0: empty), keyed by the
     * id's first bytes (ids are public keys: random, for anyone but their
     * owner; a member who grinds keys to collide costs lookups, bounded
     * by the table) */
    node_route *routes;
    size_t n_routes, cap_routes;
    uint32_t *index;
    size_t index_cap; /* a power of 2, at least twice cap_routes */
    uint64_t self_seq;
    uint64_t next_advert_ms;
    uint64_t last_advert_ms; /* loop time of the last advert sent */
    bool triggered;          /* an advert is due at the next tick */
    node_route_key keys[NODE_ROUTE_KEYS];
    unsigned next_key;
    node_route_strike strikes[16];
    node_route_rate rates[NODE_ROUTE_RATES];
    /* sealing and opening: one message at a time, in NODE_ROUTE_SCRATCH
     * bytes each. area: scale (#13): shared by the nodes of a thread
     * (route.c), as nothing holds them across a callback: 192 KiB a node
     * was a third of a node's heap in a 1,000-node test network */
    uint8_t *plain;
    uint8_t *box;
    uint8_t *rx;
    size_t rr; /* where the next routed pull starts (round robin) */
    /* area: scale (#13): made at the first confab_trace (25 KiB that
     * most nodes never use) */
    node_trace *traces;
    uint64_t trace_seq;
} node_routing;

int node_route_init(confab_node *n);
void node_route_free(confab_node *n);
void node_route_tick(confab_node *n, uint64_t now);
/* A link to p is up or down (the peer table's hooks). */
void node_route_link_up(confab_node *n, node_peer *p);
void node_route_link_down(confab_node *n, node_peer *p);
/* ROUTE and ROUTED from a linked peer: 0, or -EPROTO to cut the link. */
int node_route_on_msg(node_conn *c, const wire_msg *m);
/* trace.c: TRACE and TRACE_REPLY from a linked peer (0 or -EPROTO). */
int node_trace_on_msg(node_conn *c, const wire_msg *m);
/* Counts one bad routing input from p: true when its link must be cut. */
bool node_route_strike_peer(confab_node *n, const node_peer *p);
/* The route to id, reachable, or NULL. */
node_route *node_route_find(confab_node *n, const uint8_t *id);
/* The linked peer a message to id leaves on: id itself when linked, else
 * the next hop of a reachable route; NULL: neither. */
node_peer *node_route_next_hop(confab_node *n, const uint8_t *id);
/* Seals plain[0..len) for dst with this node's epoch in front: into
 * box, *box_len set. 0, -EMSGSIZE or -ENOMEM. */
int node_route_seal(confab_node *n, const uint8_t *dst, const uint8_t *plain,
                    size_t len, uint8_t *box, size_t cap, size_t *box_len);
/* Seals and sends the message m to id through its next hop, ahead of the
 * data (an ACK). 0, -EHOSTUNREACH (no route) or an error. */
int node_route_send_ctl(confab_node *n, const uint8_t *id, const wire_msg *m);
/* Fills r with what a ROUTED from this node to dst carrying box needs. */
void node_route_envelope(confab_node *n, const uint8_t *dst, const uint8_t *box,
                         size_t len, wire_msg *r);

#endif
