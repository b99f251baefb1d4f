/* wire/msg.h: the message codec (docs/PROTOCOL.md sections 3.2 and 5).
 *
 * Decoding checks the whole input with wire_mp_check() first, then matches
 * the exact shape: wrong types, missing required keys, duplicate keys,
 * over-long strings, invalid UTF-8 and out-of-range values are -EPROTO.
 * Unknown keys are skipped. Decoded str and bin fields are borrowed
 * pointers into the input buffer: copy what you keep. Decoding never
 * allocates.
 *
 * Encoding writes into a caller's buffer and fails with -EMSGSIZE when it
 * does not fit; it never allocates either. */
#ifndef CONFAB_WIRE_MSG_H
#define CONFAB_WIRE_MSG_H

#include "wire/frame.h"
#include "wire/mp.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION        1u
#define WIRE_ID_BYTES       16u /* message id */
#define WIRE_NODE_ID_BYTES  32u /* node id: an X25519 public key */
#define WIRE_AEAD_TAG_BYTES 16u /* a transport message's Poly1305 tag */
#define WIRE_MAX_PLAINTEXT  (WIRE_MAX_FRAME - WIRE_AEAD_TAG_BYTES)
#define WIRE_MAX_NAME       64u    /* node name, bytes */
#define WIRE_MAX_GROUP      64u    /* group name, bytes (at least 1) */
#define WIRE_MAX_GROUPS     256u   /* groups in a HELLO */
#define WIRE_MAX_CT         128u   /* content type, bytes */
#define WIRE_MAX_PEERS      1024u  /* entries in a PEERS message */
#define WIRE_MAX_PING_DATA  1024u  /* echo data in PING/PONG */
#define WIRE_MIN_MAX_BODY   65536u /* smallest `max` a HELLO may announce */

/* Bytes a DATA map takes beyond its group, content type and body. */
#define WIRE_DATA_OVERHEAD 104u
/* Bytes a FRAG map takes beyond its data (46 at most: a 64-bit `off` and a
 * bin 32 header). */
#define WIRE_FRAG_OVERHEAD 48u

/* A borrowed byte range. */
typedef struct wire_bytes {
    const uint8_t *ptr;
    uint32_t len;
} wire_bytes;

/* Message types: the `t` key. */
enum {
    WIRE_T_DATA = 1,
    WIRE_T_FRAG = 2,
    WIRE_T_ACK = 3,
    WIRE_T_PING = 4,
    WIRE_T_PONG = 5,
    WIRE_T_JOIN = 6,
    WIRE_T_LEAVE = 7,
    WIRE_T_PEERS = 8,
    WIRE_T_BYE = 9,
    /* area: routing (#12): types 10 to 19 */
    WIRE_T_ROUTE = 10,       /* a distance vector (section 13.2) */
    WIRE_T_ROUTED = 11,      /* a sealed message, hop by hop (section 13.3) */
    WIRE_T_TRACE = 12,       /* a probe of the path to a node (section 13.5) */
    WIRE_T_TRACE_REPLY = 13, /* a hop's answer to it */
    /* area: request and reply (#19): types 20 to 24 */
    /* area: scale (#13): types 30 to 39 */
    /* 30 HyParView, 31 Plumtree, 32 SWIM: wire/overlay.h; a wire_msg of
     * these types carries the map whole in u.raw */
};

/* DATA kinds: the `k` key. */
enum {
    WIRE_K_UNICAST = 0,
    WIRE_K_BROADCAST = 1,
    WIRE_K_GROUP = 2,
    WIRE_K_ANYCAST = 3,
};

/* BYE reasons: the `r` key. */
enum {
    WIRE_BYE_STOPPING = 0,
    WIRE_BYE_DUPLICATE = 1,
    WIRE_BYE_OTHER = 2,
};

/* An iterator over a decoded array (HELLO groups, PEERS entries). */
typedef struct wire_iter {
    wire_mp_reader r;
    uint32_t left;
} wire_iter;

/* A HELLO (handshake payload). For encoding set groups/ngroups; decoding
 * sets ngroups and group_iter (walk it with wire_groups_next()). */
typedef struct wire_hello {
    uint64_t version;
    wire_bytes name;
    uint16_t port;
    uint64_t boot;
    uint64_t max;
    uint64_t epoch; /* the node's delivery state's identity (section 12) */
    uint32_t ngroups;
    const wire_bytes *groups; /* encode: ngroups names */
    wire_iter group_iter;     /* decode */
    /* `batch` (#18): the node accepts a transport message holding several
     * maps back to back (docs/PROTOCOL.md section 4). 0 when absent;
     * encoded only when 1. */
    int batch;
} wire_hello;

typedef struct wire_data {
    uint8_t id[WIRE_ID_BYTES];
    uint8_t kind; /* WIRE_K_* */
    uint64_t seq;
    uint64_t ts;
    wire_bytes group; /* len 0 when absent (kinds 0 and 1) */
    int has_ct;
    wire_bytes ct;
    wire_bytes body;
    int fragmented; /* `size` present */
    uint64_t size;  /* whole body length: body.len unless fragmented */
    int skip;       /* an expired unicast's place: count, deliver nothing */
} wire_data;

typedef struct wire_frag {
    uint8_t id[WIRE_ID_BYTES];
    uint64_t off;
    wire_bytes data;
} wire_frag;

/* ACK: seq acknowledges kind 0 messages cumulatively, id one message
 * (anycast); at least one of them is present. */
typedef struct wire_ack {
    int has_seq;
    uint64_t seq;
    int has_id;
    uint8_t id[WIRE_ID_BYTES];
} wire_ack;

typedef struct wire_ping { /* PING and PONG */
    uint64_t n;
    int has_data;
    wire_bytes data;
} wire_ping;

typedef struct wire_group { /* JOIN and LEAVE */
    wire_bytes group;
} wire_group;

/* One PEERS entry. addr_len is 4 or 16. */
typedef struct wire_peer_entry {
    const uint8_t *id;   /* WIRE_NODE_ID_BYTES */
    const uint8_t *addr; /* addr_len bytes, network order */
    uint8_t addr_len;
    uint16_t port;
} wire_peer_entry;

/* PEERS. For encoding set entries/count; decoding sets count and iter
 * (walk it with wire_peers_next()). */
typedef struct wire_peers {
    uint32_t count;
    const wire_peer_entry *entries; /* encode */
    wire_iter iter;                 /* decode */
} wire_peers;

typedef struct wire_bye {
    uint64_t reason;
} wire_bye;

#include "wire/route.h" /* ROUTE and ROUTED (routing, #12) */

/* A transport message. type is the `t` key; on decode a type this version
 * does not know is returned as is, with no union member filled. */
typedef struct wire_msg {
    uint64_t type;
    union {
        wire_data data;
        wire_frag frag;
        wire_ack ack;
        wire_ping ping;   /* PING and PONG */
        wire_group group; /* JOIN and LEAVE */
        wire_peers peers;
        wire_bye bye;
        wire_route route;   /* ROUTE */
        wire_routed routed; /* ROUTED */
        wire_trace trace;   /* TRACE, TRACE_REPLY */
        /* area: scale (#13): t 30 to 32, the whole map as it came (or is
         * to go), read and made by wire/overlay.c */
        wire_bytes raw;
    } u;
} wire_msg;

/* True for the types of the table in docs/PROTOCOL.md section 4. */
int wire_msg_type_known(uint64_t type);

/* Decodes one HELLO occupying all of buf[0..len). Returns 0 or -EPROTO.
 * h->version is returned as sent, whatever its value: the caller closes the
 * link unless it is WIRE_VERSION (docs/PROTOCOL.md section 3.2). */
__attribute__((warn_unused_result)) int
wire_hello_decode(const uint8_t *buf, size_t len, wire_hello *h);

/* Encodes h into buf[0..cap); *len is the size written. Returns 0,
 * -EINVAL if h breaks a limit of the protocol, or -EMSGSIZE. */
__attribute__((warn_unused_result)) int
wire_hello_encode(const wire_hello *h, uint8_t *buf, size_t cap, size_t *len);

/* Next group of a decoded HELLO: returns 1 and sets *g, or 0 at the end. */
int wire_groups_next(wire_iter *it, wire_bytes *g);

/* Decodes one transport message occupying all of buf[0..len).
 * Returns 0 (check m->type) or -EPROTO. */
__attribute__((warn_unused_result)) int
wire_msg_decode(const uint8_t *buf, size_t len, wire_msg *m);

/* Decodes the first of the maps back to back in buf[0..len) (a batched
 * transport message, docs/PROTOCOL.md section 4): the same rules as
 * wire_msg_decode() for that map, bytes after it left alone. Returns 0
 * with *used the bytes it took (at least 1), or -EPROTO (len 0 included).
 * Call it again at buf + *used until the bytes are used up. */
__attribute__((warn_unused_result)) int
wire_msg_decode_next(const uint8_t *buf, size_t len, wire_msg *m, size_t *used);

/* Encodes m into buf[0..cap). Returns 0, -EINVAL (a field breaks a limit
 * of the protocol, or an unknown type), or -EMSGSIZE (does not fit). */
__attribute__((warn_unused_result)) int
wire_msg_encode(const wire_msg *m, uint8_t *buf, size_t cap, size_t *len);

/* Encodes a DATA or a FRAG exactly as wire_msg_encode() does, but leaves
 * out the bytes of its body (DATA's body, FRAG's data): their bin header
 * is written, and buf[*hole .. *hole + body length) is left for the caller
 * to fill (the keys after the body, if any, are written behind it). The
 * writer is direct (no msgpack-c packer): the per-message path (#18).
 * Returns what wire_msg_encode() returns; -EINVAL for other types. */
__attribute__((warn_unused_result)) int
wire_msg_encode_hole(const wire_msg *m, uint8_t *buf, size_t cap, size_t *len,
                     size_t *hole);

/* Next entry of a decoded PEERS: returns 1 and sets *e, or 0 at the end. */
int wire_peers_next(wire_iter *it, wire_peer_entry *e);

/* An upper bound on the encoded size of m (checked by the unit tests). */
size_t wire_msg_bound(const wire_msg *m);

/* An upper bound on the encoded size of a DATA with these field lengths. */
size_t wire_data_bound(size_t group_len, size_t ct_len, size_t body_len);

#endif
