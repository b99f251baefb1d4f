/* wire/req.h: the request and reply envelopes (docs/PROTOCOL.md section
 * 14).
 *
 * A request and a reply each travel as the body of a unicast DATA whose
 * content type names it (WIRE_REQ_CT, WIRE_REP_CT), so they have every
 * promise of a unicast (acknowledged, ordered, once, fragmented when
 * large). The body is one msgpack map, decoded here as wire/msg.c decodes
 * a message: checked whole first, exact types, no duplicate keys, unknown
 * keys skipped. Decoded str and bin fields are borrowed pointers into the
 * input. Nothing here allocates. */
#ifndef CONFAB_WIRE_REQ_H
#define CONFAB_WIRE_REQ_H

#include "wire/msg.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_REQ_CT          "confab/request"
#define WIRE_REP_CT          "confab/reply"
#define WIRE_REQ_ID_BYTES    16u
#define WIRE_REQ_MAX_SERVICE 64u       /* service name, bytes (at least 1) */
#define WIRE_REQ_MAX_WAIT    86400000u /* `d`, milliseconds: one day */
/* Bytes an envelope takes beyond its service name and body (the largest
 * forms of every header, rounded up). */
#define WIRE_REQ_OVERHEAD 64u

/* Reply codes: the `c` key. */
enum {
    WIRE_REP_OK = 0,         /* the service answered: the body */
    WIRE_REP_ERROR = 1,      /* the service failed: the body says how */
    WIRE_REP_BUSY = 2,       /* the server holds too many requests */
    WIRE_REP_NO_SERVICE = 3, /* nothing serves that name there */
    WIRE_REP_TOO_LARGE = 4,  /* the answer was over the requester's `m` */
};

typedef struct wire_req {
    uint8_t id[WIRE_REQ_ID_BYTES]; /* `r`: chosen by the requester */
    wire_bytes service;            /* `s`: 1 to 64 bytes of UTF-8 */
    uint64_t wait_ms;              /* `d`: time left, 1 to a day */
    uint64_t max_reply;            /* `m`: largest reply body taken */
    wire_bytes body;               /* `b` */
} wire_req;

typedef struct wire_rep {
    uint8_t id[WIRE_REQ_ID_BYTES]; /* `r`: the request's */
    uint64_t code;                 /* `c`: WIRE_REP_*; others mean error */
    wire_bytes body;               /* `b` */
} wire_rep;

/* Decode all of buf[0..len). Return 0 or -EPROTO. */
__attribute__((warn_unused_result)) int
wire_req_decode(const uint8_t *buf, size_t len, wire_req *r);
__attribute__((warn_unused_result)) int
wire_rep_decode(const uint8_t *buf, size_t len, wire_rep *r);

/* Encode into buf[0..cap); *len is the size written. Return 0, -EINVAL
 * (a field breaks a limit above), or -EMSGSIZE. */
__attribute__((warn_unused_result)) int
wire_req_encode(const wire_req *r, uint8_t *buf, size_t cap, size_t *len);
__attribute__((warn_unused_result)) int
wire_rep_encode(const wire_rep *r, uint8_t *buf, size_t cap, size_t *len);

/* Upper bounds on the encoded sizes. */
size_t wire_req_bound(size_t service_len, size_t body_len);
size_t wire_rep_bound(size_t body_len);

#endif
