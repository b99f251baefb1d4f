/* wire/req.c: the request and reply envelopes (docs/PROTOCOL.md section
 * 14): bytes <-> wire_req and wire_rep. */
#include "wire/req.h"

#include <errno.h>
#include <string.h>

#define MAX_KEYS 16u /* keys in one envelope, unknown ones included */

/* One key of an envelope map: its letter, or 0 for an unknown key (the
 * value is skipped). Keys longer than one byte are unknown. */
static int read_key(wire_mp_reader *rd, char *key)
{
    const uint8_t *k;
    uint32_t klen;
    if (wire_mp_read_str(rd, &k, &klen) != 0)
        return -EPROTO;
    *key = klen == 1 ? (char)k[0] : 0;
    return 0;
}

/* Marks key seen; a key seen twice is -EPROTO. */
static int once(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return -EPROTO;
    *seen |= bit;
    return 0;
}

static int read_id(wire_mp_reader *rd, uint8_t id[WIRE_REQ_ID_BYTES])
{
    const uint8_t *b;
    uint32_t len;
    if (wire_mp_read_bin(rd, &b, &len) != 0 || len != WIRE_REQ_ID_BYTES)
        return -EPROTO;
    memcpy(id, b, WIRE_REQ_ID_BYTES);
    return 0;
}

static int read_bin(wire_mp_reader *rd, wire_bytes *v)
{
    return wire_mp_read_bin(rd, &v->ptr, &v->len) == 0 ? 0 : -EPROTO;
}

static int open_map(const uint8_t *buf, size_t len, wire_mp_reader *rd,
                    uint32_t *count)
{
    if (buf == NULL || wire_mp_check(buf, len, WIRE_MAX_DEPTH) != 0)
        return -EPROTO;
    wire_mp_reader_init(rd, buf, len);
    if (wire_mp_read_map(rd, count) != 0 || *count > MAX_KEYS)
        return -EPROTO;
    return 0;
}

enum { K_R = 1, K_S = 2, K_D = 4, K_M = 8, K_B = 16, K_C = 32 };

static int req_field(wire_mp_reader *rd, char key, wire_req *r, unsigned *seen)
{
    switch (key) {
    case 'r':
        return once(seen, K_R) ? -EPROTO : read_id(rd, r->id);
    case 's':
        if (once(seen, K_S) ||
            wire_mp_read_str(rd, &r->service.ptr, &r->service.len) != 0 ||
            r->service.len == 0 || r->service.len > WIRE_REQ_MAX_SERVICE)
            return -EPROTO;
        return 0;
    case 'd':
        if (once(seen, K_D) || wire_mp_read_uint(rd, &r->wait_ms) != 0 ||
            r->wait_ms == 0 || r->wait_ms > WIRE_REQ_MAX_WAIT)
            return -EPROTO;
        return 0;
    case 'm':
        if (once(seen, K_M) || wire_mp_read_uint(rd, &r->max_reply) != 0)
            return -EPROTO;
        return 0;
    case 'b':
        return once(seen, K_B) ? -EPROTO : read_bin(rd, &r->body);
    default:
        return wire_mp_skip(rd) == 0 ? 0 : -EPROTO;
    }
}

int wire_req_decode(const uint8_t *buf, size_t len, wire_req *r)
{
    wire_mp_reader rd;
    uint32_t count;
    unsigned seen = 0;
    memset(r, 0, sizeof *r);
    if (open_map(buf, len, &rd, &count) != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        char key;
        if (read_key(&rd, &key) != 0 || req_field(&rd, key, r, &seen) != 0)
            return -EPROTO;
    }
    unsigned need = K_R | K_S | K_D | K_M | K_B;
    return (seen & need) == need ? 0 : -EPROTO;
}

static int rep_field(wire_mp_reader *rd, char key, wire_rep *r, unsigned *seen)
{
    switch (key) {
    case 'r':
        return once(seen, K_R) ? -EPROTO : read_id(rd, r->id);
    case 'c':
        if (once(seen, K_C) || wire_mp_read_uint(rd, &r->code) != 0)
            return -EPROTO;
        return 0;
    case 'b':
        return once(seen, K_B) ? -EPROTO : read_bin(rd, &r->body);
    default:
        return wire_mp_skip(rd) == 0 ? 0 : -EPROTO;
    }
}

int wire_rep_decode(const uint8_t *buf, size_t len, wire_rep *r)
{
    wire_mp_reader rd;
    uint32_t count;
    unsigned seen = 0;
    memset(r, 0, sizeof *r);
    if (open_map(buf, len, &rd, &count) != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        char key;
        if (read_key(&rd, &key) != 0 || rep_field(&rd, key, r, &seen) != 0)
            return -EPROTO;
    }
    unsigned need = K_R | K_C | K_B;
    return (seen & need) == need ? 0 : -EPROTO;
}

size_t wire_req_bound(size_t service_len, size_t body_len)
{
    return WIRE_REQ_OVERHEAD + service_len + body_len;
}

size_t wire_rep_bound(size_t body_len)
{
    return WIRE_REQ_OVERHEAD + body_len;
}

int wire_req_encode(const wire_req *r, uint8_t *buf, size_t cap, size_t *len)
{
    if (r->service.len == 0 || r->service.len > WIRE_REQ_MAX_SERVICE ||
        r->wait_ms == 0 || r->wait_ms > WIRE_REQ_MAX_WAIT ||
        !wire_utf8_valid(r->service.ptr, r->service.len) ||
        (r->body.ptr == NULL && r->body.len > 0))
        return -EINVAL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 5);
    wire_mp_write_cstr(&w, "r");
    wire_mp_write_bin(&w, r->id, WIRE_REQ_ID_BYTES);
    wire_mp_write_cstr(&w, "s");
    wire_mp_write_str(&w, r->service.ptr, r->service.len);
    wire_mp_write_cstr(&w, "d");
    wire_mp_write_uint(&w, r->wait_ms);
    wire_mp_write_cstr(&w, "m");
    wire_mp_write_uint(&w, r->max_reply);
    wire_mp_write_cstr(&w, "b");
    wire_mp_write_bin(&w, r->body.ptr, r->body.len);
    return wire_mp_writer_finish(&w, len);
}

int wire_rep_encode(const wire_rep *r, uint8_t *buf, size_t cap, size_t *len)
{
    if (r->body.ptr == NULL && r->body.len > 0)
        return -EINVAL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 3);
    wire_mp_write_cstr(&w, "r");
    wire_mp_write_bin(&w, r->id, WIRE_REQ_ID_BYTES);
    wire_mp_write_cstr(&w, "c");
    wire_mp_write_uint(&w, r->code);
    wire_mp_write_cstr(&w, "b");
    wire_mp_write_bin(&w, r->body.ptr, r->body.len);
    return wire_mp_writer_finish(&w, len);
}
