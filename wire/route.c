/* wire/route.c: the routing messages' codec (docs/PROTOCOL.md section 13).
 * Kept apart from wire/msg.c, which hands the routing types over here. */
#include "wire/msg.h"

#include <errno.h>
#include <string.h>

int wire_route_type(uint64_t type)
{
    return type >= WIRE_T_ROUTE && type <= WIRE_T_TRACE_REPLY;
}

static bool key_is(const uint8_t *k, uint32_t kl, const char *s)
{
    size_t sl = strlen(s);
    return kl == sl && memcmp(k, s, sl) == 0;
}

/* One ROUTE entry: [bin32 id, uint seq, uint metric, uint epoch]. A
 * metric above 16 is well formed: the receiver refuses the entry (13.2). */
static int read_entry(wire_mp_reader *r, wire_route_entry *e)
{
    uint32_t n, len;
    if (wire_mp_read_array(r, &n) != 0 || n != 4 ||
        wire_mp_read_bin(r, &e->id, &len) != 0 || len != WIRE_NODE_ID_BYTES ||
        wire_mp_read_uint(r, &e->seq) != 0 ||
        wire_mp_read_uint(r, &e->metric) != 0 ||
        wire_mp_read_uint(r, &e->epoch) != 0)
        return -EPROTO;
    return 0;
}

int wire_route_next(wire_iter *it, wire_route_entry *e)
{
    if (it->left == 0)
        return 0;
    if (read_entry(&it->r, e) != 0) /* checked at decode: cannot fail */
        return 0;
    it->left--;
    return 1;
}

enum {
    RK_T = 1,
    RK_R = 2,
    RK_S = 4,
    RK_D = 8,
    RK_H = 16,
    RK_B = 32,
    RK_N = 64,
    RK_K = 128,
    RK_NAME = 256,
    RK_ADDR = 512,
};

static int read_id(wire_mp_reader *r, const uint8_t **id)
{
    uint32_t len;
    if (wire_mp_read_bin(r, id, &len) != 0 || len != WIRE_NODE_ID_BYTES)
        return -EPROTO;
    return 0;
}

static int read_str_max(wire_mp_reader *r, uint32_t max, wire_bytes *s)
{
    if (wire_mp_read_str(r, &s->ptr, &s->len) != 0 || s->len > max)
        return -EPROTO;
    return 0;
}

/* A key of TRACE (12) or TRACE_REPLY (13). */
static int trace_key(wire_mp_reader *r, const uint8_t *k, uint32_t kl,
                     uint64_t t, unsigned *bit, wire_trace *tr)
{
    bool reply = t == WIRE_T_TRACE_REPLY;
    if (key_is(k, kl, "s")) {
        *bit = RK_S;
        return read_id(r, &tr->src);
    }
    if (key_is(k, kl, "d")) {
        *bit = RK_D;
        return read_id(r, &tr->dst);
    }
    if (key_is(k, kl, "h")) {
        *bit = RK_H;
        if (wire_mp_read_uint(r, &tr->hops) != 0 ||
            tr->hops > WIRE_ROUTE_INFINITY)
            return -EPROTO;
        return 0;
    }
    if (key_is(k, kl, "n")) {
        *bit = RK_N;
        return wire_mp_read_uint(r, &tr->token);
    }
    if (key_is(k, kl, "k")) {
        *bit = RK_K;
        if (wire_mp_read_uint(r, &tr->k) != 0 || tr->k < 1 ||
            tr->k > WIRE_ROUTE_INFINITY)
            return -EPROTO;
        return 0;
    }
    if (reply && key_is(k, kl, "name")) {
        *bit = RK_NAME;
        return read_str_max(r, WIRE_MAX_NAME, &tr->name);
    }
    if (reply && key_is(k, kl, "addr")) {
        *bit = RK_ADDR;
        return read_str_max(r, WIRE_TRACE_ADDR, &tr->addr);
    }
    *bit = 0;
    return wire_mp_skip(r);
}

static int route_key(wire_mp_reader *r, const uint8_t *k, uint32_t kl,
                     uint64_t t, unsigned *seen, struct wire_msg *m)
{
    uint32_t len;
    unsigned bit;
    int rc;
    if (t >= WIRE_T_TRACE && !key_is(k, kl, "t")) {
        rc = trace_key(r, k, kl, t, &bit, &m->u.trace);
        if (rc != 0 || (*seen & bit) != 0)
            return -EPROTO;
        *seen |= bit;
        return 0;
    }
    if (key_is(k, kl, "t")) {
        uint64_t v;
        bit = RK_T;
        rc = wire_mp_read_uint(r, &v);
    } else if (t == WIRE_T_ROUTE && key_is(k, kl, "r")) {
        wire_route *ro = &m->u.route;
        uint32_t n;
        bit = RK_R;
        rc = wire_mp_read_array(r, &n);
        if (rc == 0 && n > WIRE_ROUTE_MAX)
            rc = -EPROTO;
        ro->count = n;
        ro->iter.r = *r;
        ro->iter.left = n;
        wire_route_entry e;
        for (uint32_t i = 0; rc == 0 && i < n; i++)
            rc = read_entry(r, &e);
    } else if (t == WIRE_T_ROUTED && key_is(k, kl, "s")) {
        bit = RK_S;
        rc = wire_mp_read_bin(r, &m->u.routed.src, &len);
        if (rc == 0 && len != WIRE_NODE_ID_BYTES)
            rc = -EPROTO;
    } else if (t == WIRE_T_ROUTED && key_is(k, kl, "d")) {
        bit = RK_D;
        rc = wire_mp_read_bin(r, &m->u.routed.dst, &len);
        if (rc == 0 && len != WIRE_NODE_ID_BYTES)
            rc = -EPROTO;
    } else if (t == WIRE_T_ROUTED && key_is(k, kl, "h")) {
        bit = RK_H;
        rc = wire_mp_read_uint(r, &m->u.routed.hops);
        if (rc == 0 && m->u.routed.hops > WIRE_ROUTE_INFINITY)
            rc = -EPROTO;
    } else if (t == WIRE_T_ROUTED && key_is(k, kl, "b")) {
        bit = RK_B;
        rc = wire_mp_read_bin(r, &m->u.routed.box.ptr, &m->u.routed.box.len);
        if (rc == 0 && m->u.routed.box.len < WIRE_ROUTED_SEAL)
            rc = -EPROTO;
    } else {
        return wire_mp_skip(r); /* unknown keys are skipped */
    }
    if (rc != 0 || (*seen & bit) != 0)
        return -EPROTO;
    *seen |= bit;
    return 0;
}

int wire_route_decode(const uint8_t *buf, size_t len, uint64_t t,
                      struct wire_msg *m)
{
    wire_mp_reader r;
    uint32_t n;
    unsigned seen = 0;
    memset(m, 0, sizeof *m);
    wire_mp_reader_init(&r, buf, len);
    if (wire_mp_read_map(&r, &n) != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k;
        uint32_t kl;
        if (wire_mp_read_str(&r, &k, &kl) != 0 ||
            route_key(&r, k, kl, t, &seen, m) != 0)
            goto bad;
    }
    unsigned need = RK_T | RK_S | RK_D | RK_H | RK_N | RK_K; /* a trace */
    if (t == WIRE_T_ROUTE)
        need = RK_T | RK_R;
    else if (t == WIRE_T_ROUTED)
        need = RK_T | RK_S | RK_D | RK_H | RK_B;
    else if (t == WIRE_T_TRACE_REPLY)
        need |= RK_NAME | RK_ADDR;
    if (wire_mp_left(&r) != 0 || (seen & need) != need)
        goto bad;
    m->type = t;
    return 0;
bad:
    memset(m, 0, sizeof *m);
    return -EPROTO;
}

static int encode_trace(uint64_t t, const wire_trace *tr, wire_mp_writer *w)
{
    bool reply = t == WIRE_T_TRACE_REPLY;
    if (tr->src == NULL || tr->dst == NULL || tr->hops > WIRE_ROUTE_INFINITY ||
        tr->k < 1 || tr->k > WIRE_ROUTE_INFINITY ||
        (reply &&
         (tr->name.len > WIRE_MAX_NAME || tr->addr.len > WIRE_TRACE_ADDR ||
          !wire_utf8_valid(tr->name.ptr, tr->name.len) ||
          !wire_utf8_valid(tr->addr.ptr, tr->addr.len))))
        return -EINVAL;
    wire_mp_write_map(w, reply ? 8 : 6);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, t);
    wire_mp_write_cstr(w, "s");
    wire_mp_write_bin(w, tr->src, WIRE_NODE_ID_BYTES);
    wire_mp_write_cstr(w, "d");
    wire_mp_write_bin(w, tr->dst, WIRE_NODE_ID_BYTES);
    wire_mp_write_cstr(w, "h");
    wire_mp_write_uint(w, tr->hops);
    wire_mp_write_cstr(w, "n");
    wire_mp_write_uint(w, tr->token);
    wire_mp_write_cstr(w, "k");
    wire_mp_write_uint(w, tr->k);
    if (reply) {
        wire_mp_write_cstr(w, "name");
        wire_mp_write_str(w, tr->name.ptr, tr->name.len);
        wire_mp_write_cstr(w, "addr");
        wire_mp_write_str(w, tr->addr.ptr, tr->addr.len);
    }
    return 0;
}

int wire_route_encode(const struct wire_msg *m, wire_mp_writer *w)
{
    if (m->type == WIRE_T_ROUTE) {
        const wire_route *ro = &m->u.route;
        if (ro->count > WIRE_ROUTE_MAX || (ro->count > 0 && !ro->entries))
            return -EINVAL;
        wire_mp_write_map(w, 2);
        wire_mp_write_cstr(w, "t");
        wire_mp_write_uint(w, WIRE_T_ROUTE);
        wire_mp_write_cstr(w, "r");
        wire_mp_write_array(w, ro->count);
        for (uint32_t i = 0; i < ro->count; i++) {
            const wire_route_entry *e = &ro->entries[i];
            if (e->id == NULL || e->metric > WIRE_ROUTE_INFINITY)
                return -EINVAL;
            wire_mp_write_array(w, 4);
            wire_mp_write_bin(w, e->id, WIRE_NODE_ID_BYTES);
            wire_mp_write_uint(w, e->seq);
            wire_mp_write_uint(w, e->metric);
            wire_mp_write_uint(w, e->epoch);
        }
        return 0;
    }
    if (m->type == WIRE_T_TRACE || m->type == WIRE_T_TRACE_REPLY)
        return encode_trace(m->type, &m->u.trace, w);
    if (m->type != WIRE_T_ROUTED)
        return -EINVAL;
    const wire_routed *rd = &m->u.routed;
    if (rd->src == NULL || rd->dst == NULL || rd->hops > WIRE_ROUTE_INFINITY ||
        rd->box.len < WIRE_ROUTED_SEAL || rd->box.ptr == NULL)
        return -EINVAL;
    wire_mp_write_map(w, 5);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, WIRE_T_ROUTED);
    wire_mp_write_cstr(w, "s");
    wire_mp_write_bin(w, rd->src, WIRE_NODE_ID_BYTES);
    wire_mp_write_cstr(w, "d");
    wire_mp_write_bin(w, rd->dst, WIRE_NODE_ID_BYTES);
    wire_mp_write_cstr(w, "h");
    wire_mp_write_uint(w, rd->hops);
    wire_mp_write_cstr(w, "b");
    wire_mp_write_bin(w, rd->box.ptr, rd->box.len);
    return 0;
}

size_t wire_route_bound(const struct wire_msg *m)
{
    if (m->type == WIRE_T_ROUTE)
        return 16 + (size_t)m->u.route.count * 64u;
    if (m->type == WIRE_T_TRACE || m->type == WIRE_T_TRACE_REPLY)
        return 128 + (size_t)m->u.trace.name.len + m->u.trace.addr.len;
    return WIRE_ROUTED_OVERHEAD + m->u.routed.box.len;
}
