/* wire/route.h: the routing messages' codec (docs/PROTOCOL.md section 13).
 *
 * ROUTE (t 10) is one node's distance vector for one linked peer; ROUTED
 * (t 11) carries a message sealed end to end, hop by hop. Same rules as
 * wire/msg.h: decoding checks the exact shape, never allocates and borrows
 * from the input; encoding writes into the caller's buffer.
 *
 * Include wire/msg.h, not this file: it includes this one where the
 * structs below are needed (the wire_msg union). */
#ifndef CONFAB_WIRE_ROUTE_H
#define CONFAB_WIRE_ROUTE_H

#define WIRE_ROUTE_INFINITY 16u  /* a metric this high: unreachable */
#define WIRE_ROUTE_MAX      256u /* entries in one ROUTE message */
#define WIRE_ROUTED_NONCE   24u  /* crypto_box nonce, before the box */
#define WIRE_ROUTED_MAC     16u  /* crypto_box tag */
/* Bytes a ROUTED map takes beyond its box: map header, four keys, two
 * bin32 ids, a uint8 hop limit, a bin32 header. */
#define WIRE_ROUTED_OVERHEAD 96u
/* What a sealed inner message costs besides its own bytes. */
#define WIRE_ROUTED_SEAL (WIRE_ROUTED_NONCE + WIRE_ROUTED_MAC)

/* One entry of a ROUTE: the sender reaches `id` at `metric` hops (0: it
 * is the sender), with that destination's sequence number `seq` and its
 * delivery epoch `epoch` (section 12). */
typedef struct wire_route_entry {
    const uint8_t *id; /* WIRE_NODE_ID_BYTES */
    uint64_t seq;
    uint64_t metric; /* 0..WIRE_ROUTE_INFINITY (decode: any) */
    uint64_t epoch;
} wire_route_entry;

/* ROUTE. Encode: entries/count; decode: count and iter
 * (wire_route_next()). */
typedef struct wire_route {
    uint32_t count;
    const wire_route_entry *entries;
    wire_iter iter;
} wire_route;

/* ROUTED: from src to dst, hops the hop limit left, box the nonce and
 * the crypto_box of one transport message map. */
typedef struct wire_routed {
    const uint8_t *src; /* WIRE_NODE_ID_BYTES */
    const uint8_t *dst; /* WIRE_NODE_ID_BYTES */
    uint64_t hops;      /* 1..WIRE_ROUTE_INFINITY on the wire */
    wire_bytes box;     /* nonce (24) || crypto_box_easy output */
} wire_routed;

/* TRACE (a probe) and TRACE_REPLY (a hop's answer): section 13.5. */
#define WIRE_TRACE_ADDR 64u /* bytes of a hop's address, at most */
typedef struct wire_trace {
    const uint8_t *src; /* probe: the origin; reply: the hop answering */
    const uint8_t *dst; /* probe: the traced node; reply: the origin */
    uint64_t hops;      /* hop limit left, 0..16 */
    uint64_t token;     /* the origin's, echoed */
    uint64_t k;         /* the probe's first hop limit: which hop, 1..16 */
    wire_bytes name;    /* reply only: the hop's name (str, 0..64) */
    wire_bytes addr;    /* reply only: its address (str, 0..64) */
} wire_trace;

struct wire_msg;

/* True for the routing types this version knows (10 to 13). */
int wire_route_type(uint64_t type);
/* Decodes a map of a routing type (called by wire_msg_decode). */
int wire_route_decode(const uint8_t *buf, size_t len, uint64_t t,
                      struct wire_msg *m);
int wire_route_encode(const struct wire_msg *m, wire_mp_writer *w);
size_t wire_route_bound(const struct wire_msg *m);
/* Next entry of a decoded ROUTE: 1 and *e set, or 0 at the end. */
int wire_route_next(wire_iter *it, wire_route_entry *e);

#endif
