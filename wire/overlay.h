/* wire/overlay.h: the overlay messages of large networks (docs/PROTOCOL.md
 * section 15): HyParView membership (t 30), Plumtree broadcast tree
 * (t 31) and SWIM failure detection (t 32), each a msgpack map with an
 * `op` key. Sent past the mesh threshold (node/peers/overlay.c).
 *
 * Decoding checks the whole input with wire_mp_check() first, then the
 * exact shape: wrong types, duplicate keys, missing required keys,
 * out-of-range values and lists over their bounds are -EPROTO; unknown
 * keys are skipped. Lists are decoded into the fixed arrays below (no
 * allocation); id, address and body pointers are borrowed from the input.
 * Encoding writes into the caller's buffer (-EMSGSIZE when it does not
 * fit, -EINVAL when a field breaks a bound). */
#ifndef CONFAB_WIRE_OVERLAY_H
#define CONFAB_WIRE_OVERLAY_H

#include "wire/msg.h"

#include <stddef.h>
#include <stdint.h>

enum {
    WIRE_T_HPV = 30,  /* HyParView (15.2) */
    WIRE_T_PT = 31,   /* Plumtree (15.3) */
    WIRE_T_SWIM = 32, /* SWIM (15.4) */
};

/* `op` of t 30, 31 and 32: the numbers of node/peers/hyparview.h,
 * plumtree.h and swim.h. */
enum {
    WIRE_HPV_JOIN = 1,
    WIRE_HPV_FORWARD_JOIN = 2,
    WIRE_HPV_NEIGHBOR = 3,
    WIRE_HPV_NEIGHBOR_REPLY = 4,
    WIRE_HPV_DISCONNECT = 5,
    WIRE_HPV_SHUFFLE = 6,
    WIRE_HPV_SHUFFLE_REPLY = 7,
    WIRE_PT_GOSSIP = 1,
    WIRE_PT_IHAVE = 2,
    WIRE_PT_GRAFT = 3,
    WIRE_PT_PRUNE = 4,
    WIRE_SWIM_PING = 1,
    WIRE_SWIM_PING_REQ = 2,
    WIRE_SWIM_ACK = 3,
    WIRE_SWIM_NACK = 4,
    WIRE_SWIM_GOSSIP = 5,
};

#define WIRE_OVL_MAX_TTL   10u /* FORWARD_JOIN and SHUFFLE walks */
#define WIRE_OVL_MAX_IDS   16u /* entries in a SHUFFLE or SHUFFLE_REPLY */
#define WIRE_OVL_MAX_IHAVE 32u /* ids in an IHAVE */
#define WIRE_OVL_MAX_UPD   6u  /* updates on a SWIM message */

/* A member as the overlay names it: id, and where it accepts links. */
typedef struct wire_ovl_entry {
    const uint8_t *id;   /* WIRE_NODE_ID_BYTES */
    const uint8_t *addr; /* addr_len bytes, network order */
    uint8_t addr_len;    /* 4 or 16 */
    uint16_t port;       /* 1..65535 */
} wire_ovl_entry;

/* A SWIM membership update; has_addr: the 6-element form (ALIVE only). */
typedef struct wire_ovl_upd {
    const uint8_t *id;   /* WIRE_NODE_ID_BYTES */
    uint8_t state;       /* 0 alive, 1 suspect, 2 dead */
    uint32_t inc;        /* incarnation */
    const uint8_t *from; /* WIRE_NODE_ID_BYTES: who suspects */
    int has_addr;
    const uint8_t *addr;
    uint8_t addr_len;
    uint16_t port;
} wire_ovl_upd;

typedef struct wire_ovl {
    uint8_t t, op;
    /* HyParView */
    wire_ovl_entry node; /* FORWARD_JOIN: the new node; SHUFFLE: origin */
    uint8_t ttl;         /* FORWARD_JOIN, SHUFFLE */
    int hi;              /* NEIGHBOR */
    int ok;              /* NEIGHBOR_REPLY */
    uint32_t nids;       /* SHUFFLE, SHUFFLE_REPLY */
    wire_ovl_entry ids[WIRE_OVL_MAX_IDS];
    /* Plumtree */
    int has_id;            /* GOSSIP: required; GRAFT: optional */
    const uint8_t *id;     /* WIRE_ID_BYTES */
    uint32_t round;        /* GOSSIP, GRAFT */
    const uint8_t *origin; /* GOSSIP: the broadcast's source node id */
    wire_bytes body;       /* GOSSIP */
    uint32_t nih;          /* IHAVE: 1..WIRE_OVL_MAX_IHAVE */
    const uint8_t *ih_id[WIRE_OVL_MAX_IHAVE];
    uint32_t ih_round[WIRE_OVL_MAX_IHAVE];
    /* SWIM */
    uint32_t seq;          /* PING, PING_REQ, ACK, NACK */
    const uint8_t *target; /* PING_REQ */
    uint32_t nup;
    wire_ovl_upd up[WIRE_OVL_MAX_UPD];
} wire_ovl;

/* True for t 30, 31 and 32. */
int wire_ovl_type(uint64_t t);

/* Decodes one overlay message occupying all of buf[0..len). Returns 0 or
 * -EPROTO. */
__attribute__((warn_unused_result)) int
wire_ovl_decode(const uint8_t *buf, size_t len, wire_ovl *m);

/* Encodes m into buf[0..cap); *len is the size written. Returns 0,
 * -EINVAL or -EMSGSIZE. */
__attribute__((warn_unused_result)) int
wire_ovl_encode(const wire_ovl *m, uint8_t *buf, size_t cap, size_t *len);

#endif
