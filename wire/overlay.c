/* wire/overlay.c: the overlay messages (docs/PROTOCOL.md section 15). */
#include "wire/overlay.h"

#include <errno.h>
#include <string.h>

/* Keys, as bits: which were seen, which each op requires. */
enum {
    K_T = 1u << 0,
    K_OP = 1u << 1,
    K_N = 1u << 2,
    K_TTL = 1u << 3,
    K_HI = 1u << 4,
    K_OK = 1u << 5,
    K_IDS = 1u << 6,
    K_ID = 1u << 7,
    K_R = 1u << 8,
    K_O = 1u << 9,
    K_BODY = 1u << 10,
    K_IH = 1u << 11,
    K_SEQ = 1u << 12,
    K_TG = 1u << 13,
    K_UP = 1u << 14,
};

static const char *const key_names[] = {"t",    "op",  "n",   "ttl", "hi",
                                        "ok",   "ids", "id",  "r",   "o",
                                        "body", "ih",  "seq", "tg",  "up"};
#define NKEYS (sizeof key_names / sizeof key_names[0])

int wire_ovl_type(uint64_t t)
{
    return t == WIRE_T_HPV || t == WIRE_T_PT || t == WIRE_T_SWIM;
}

/* Keys required by (t, op), or 0 for an op that does not exist. */
static unsigned required(unsigned t, unsigned op)
{
    static const unsigned hpv[] = {
        0,           K_OP, K_OP | K_N | K_TTL,         K_OP | K_HI,
        K_OP | K_OK, K_OP, K_OP | K_N | K_TTL | K_IDS, K_OP | K_IDS};
    static const unsigned pt[] = {0, K_OP | K_ID | K_R | K_O | K_BODY,
                                  K_OP | K_IH, K_OP | K_R, K_OP};
    static const unsigned swim[] = {
        0, K_OP | K_SEQ, K_OP | K_SEQ | K_TG, K_OP | K_SEQ, K_OP | K_SEQ, K_OP};
    if (t == WIRE_T_HPV && op >= 1 && op <= 7)
        return hpv[op] | K_T;
    if (t == WIRE_T_PT && op >= 1 && op <= 4)
        return pt[op] | K_T;
    if (t == WIRE_T_SWIM && op >= 1 && op <= 5)
        return swim[op] | K_T;
    return 0;
}

static int read_fixed_bin(wire_mp_reader *r, uint32_t want, const uint8_t **b)
{
    uint32_t len;
    if (wire_mp_read_bin(r, b, &len) != 0 || len != want)
        return -EPROTO;
    return 0;
}

static int read_u(wire_mp_reader *r, uint64_t max, uint64_t *v)
{
    if (wire_mp_read_uint(r, v) != 0 || *v > max)
        return -EPROTO;
    return 0;
}

/* [id, addr, port]: the PEERS entry of section 5.6. */
static int read_addr(wire_mp_reader *r, const uint8_t **addr, uint8_t *alen,
                     uint16_t *port)
{
    uint32_t len;
    uint64_t v;
    if (wire_mp_read_bin(r, addr, &len) != 0 || (len != 4 && len != 16))
        return -EPROTO;
    *alen = (uint8_t)len;
    if (read_u(r, 65535, &v) != 0 || v == 0)
        return -EPROTO;
    *port = (uint16_t)v;
    return 0;
}

static int read_entry(wire_mp_reader *r, wire_ovl_entry *e)
{
    uint32_t n;
    if (wire_mp_read_array(r, &n) != 0 || n != 3 ||
        read_fixed_bin(r, WIRE_NODE_ID_BYTES, &e->id) != 0)
        return -EPROTO;
    return read_addr(r, &e->addr, &e->addr_len, &e->port);
}

static int read_ids(wire_mp_reader *r, wire_ovl *m)
{
    if (wire_mp_read_array(r, &m->nids) != 0 || m->nids > WIRE_OVL_MAX_IDS)
        return -EPROTO;
    for (uint32_t i = 0; i < m->nids; i++)
        if (read_entry(r, &m->ids[i]) != 0)
            return -EPROTO;
    return 0;
}

static int read_ihave(wire_mp_reader *r, wire_ovl *m)
{
    uint32_t n;
    uint64_t v;
    if (wire_mp_read_array(r, &m->nih) != 0 || m->nih == 0 ||
        m->nih > WIRE_OVL_MAX_IHAVE)
        return -EPROTO;
    for (uint32_t i = 0; i < m->nih; i++) {
        if (wire_mp_read_array(r, &n) != 0 || n != 2 ||
            read_fixed_bin(r, WIRE_ID_BYTES, &m->ih_id[i]) != 0 ||
            read_u(r, UINT32_MAX, &v) != 0)
            return -EPROTO;
        m->ih_round[i] = (uint32_t)v;
    }
    return 0;
}

static int read_upd(wire_mp_reader *r, wire_ovl_upd *u)
{
    uint32_t n;
    uint64_t v;
    if (wire_mp_read_array(r, &n) != 0 || (n != 4 && n != 6) ||
        read_fixed_bin(r, WIRE_NODE_ID_BYTES, &u->id) != 0 ||
        read_u(r, 2, &v) != 0)
        return -EPROTO;
    u->state = (uint8_t)v;
    if (read_u(r, UINT32_MAX, &v) != 0 ||
        read_fixed_bin(r, WIRE_NODE_ID_BYTES, &u->from) != 0)
        return -EPROTO;
    u->inc = (uint32_t)v;
    u->has_addr = n == 6;
    if (!u->has_addr)
        return 0;
    /* Only an ALIVE says where a member is. */
    if (u->state != 0)
        return -EPROTO;
    return read_addr(r, &u->addr, &u->addr_len, &u->port);
}

static int read_ups(wire_mp_reader *r, wire_ovl *m)
{
    if (wire_mp_read_array(r, &m->nup) != 0 || m->nup > WIRE_OVL_MAX_UPD)
        return -EPROTO;
    for (uint32_t i = 0; i < m->nup; i++)
        if (read_upd(r, &m->up[i]) != 0)
            return -EPROTO;
    return 0;
}

static int read_value(wire_mp_reader *r, unsigned k, wire_ovl *m)
{
    uint64_t v;
    uint32_t len;
    switch (1u << k) {
    case K_T:
        if (read_u(r, UINT64_MAX, &v) != 0 || !wire_ovl_type(v))
            return -EPROTO;
        m->t = (uint8_t)v;
        return 0;
    case K_OP:
        if (read_u(r, 255, &v) != 0)
            return -EPROTO;
        m->op = (uint8_t)v;
        return 0;
    case K_N:
        return read_entry(r, &m->node);
    case K_TTL:
        if (read_u(r, WIRE_OVL_MAX_TTL, &v) != 0)
            return -EPROTO;
        m->ttl = (uint8_t)v;
        return 0;
    case K_HI:
        return wire_mp_read_bool(r, &m->hi);
    case K_OK:
        return wire_mp_read_bool(r, &m->ok);
    case K_IDS:
        return read_ids(r, m);
    case K_ID:
        m->has_id = 1;
        return read_fixed_bin(r, WIRE_ID_BYTES, &m->id);
    case K_R:
    case K_SEQ:
        if (read_u(r, UINT32_MAX, &v) != 0)
            return -EPROTO;
        *((1u << k) == K_R ? &m->round : &m->seq) = (uint32_t)v;
        return 0;
    case K_O:
        return read_fixed_bin(r, WIRE_NODE_ID_BYTES, &m->origin);
    case K_BODY:
        if (wire_mp_read_bin(r, &m->body.ptr, &len) != 0)
            return -EPROTO;
        m->body.len = len;
        return 0;
    case K_IH:
        return read_ihave(r, m);
    case K_TG:
        return read_fixed_bin(r, WIRE_NODE_ID_BYTES, &m->target);
    case K_UP:
        return read_ups(r, m);
    }
    return -EPROTO;
}

static int key_index(const uint8_t *s, uint32_t len)
{
    for (unsigned k = 0; k < NKEYS; k++)
        if (strlen(key_names[k]) == len && memcmp(key_names[k], s, len) == 0)
            return (int)k;
    return -1;
}

int wire_ovl_decode(const uint8_t *buf, size_t len, wire_ovl *m)
{
    wire_mp_reader r;
    uint32_t count, klen;
    const uint8_t *key;
    unsigned seen = 0;
    memset(m, 0, sizeof *m);
    if (wire_mp_check(buf, len, WIRE_MAX_DEPTH) != 0)
        return -EPROTO;
    wire_mp_reader_init(&r, buf, len);
    if (wire_mp_read_map(&r, &count) != 0)
        return -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        if (wire_mp_read_str(&r, &key, &klen) != 0)
            return -EPROTO;
        int k = key_index(key, klen);
        if (k < 0) {
            if (wire_mp_skip(&r) != 0)
                return -EPROTO;
            continue;
        }
        if (seen & (1u << k))
            return -EPROTO; /* the same key twice */
        seen |= 1u << k;
        if (read_value(&r, (unsigned)k, m) != 0)
            return -EPROTO;
    }
    unsigned need = required(m->t, m->op);
    if (need == 0 || (seen & need) != need || wire_mp_left(&r) != 0)
        return -EPROTO;
    return 0;
}

/* Encoding. */

static void write_entry(wire_mp_writer *w, const wire_ovl_entry *e)
{
    wire_mp_write_array(w, 3);
    wire_mp_write_bin(w, e->id, WIRE_NODE_ID_BYTES);
    wire_mp_write_bin(w, e->addr, e->addr_len);
    wire_mp_write_uint(w, e->port);
}

static int entry_ok(const wire_ovl_entry *e)
{
    return e->id != NULL && e->addr != NULL &&
           (e->addr_len == 4 || e->addr_len == 16) && e->port != 0;
}

static int check(const wire_ovl *m, unsigned need)
{
    if (need == 0)
        return -EINVAL;
    if ((need & K_N) && (!entry_ok(&m->node) || m->ttl > WIRE_OVL_MAX_TTL))
        return -EINVAL;
    if ((need & K_IDS) && m->nids > WIRE_OVL_MAX_IDS)
        return -EINVAL;
    for (uint32_t i = 0; (need & K_IDS) && i < m->nids; i++)
        if (!entry_ok(&m->ids[i]))
            return -EINVAL;
    if ((need & K_IH) && (m->nih == 0 || m->nih > WIRE_OVL_MAX_IHAVE))
        return -EINVAL;
    if ((need & (K_ID | K_O)) && (m->id == NULL || m->origin == NULL))
        return -EINVAL;
    if ((need & K_TG) && m->target == NULL)
        return -EINVAL;
    if (m->nup > WIRE_OVL_MAX_UPD)
        return -EINVAL;
    for (uint32_t i = 0; i < m->nup; i++) {
        const wire_ovl_upd *u = &m->up[i];
        if (u->state > 2 || (u->has_addr && u->state != 0))
            return -EINVAL;
    }
    return 0;
}

static void write_key(wire_mp_writer *w, unsigned bit)
{
    for (unsigned k = 0; k < NKEYS; k++)
        if (bit == 1u << k)
            wire_mp_write_cstr(w, key_names[k]);
}

static void write_ups(wire_mp_writer *w, const wire_ovl *m)
{
    write_key(w, K_UP);
    wire_mp_write_array(w, m->nup);
    for (uint32_t i = 0; i < m->nup; i++) {
        const wire_ovl_upd *u = &m->up[i];
        wire_mp_write_array(w, u->has_addr ? 6 : 4);
        wire_mp_write_bin(w, u->id, WIRE_NODE_ID_BYTES);
        wire_mp_write_uint(w, u->state);
        wire_mp_write_uint(w, u->inc);
        wire_mp_write_bin(w, u->from, WIRE_NODE_ID_BYTES);
        if (u->has_addr) {
            wire_mp_write_bin(w, u->addr, u->addr_len);
            wire_mp_write_uint(w, u->port);
        }
    }
}

int wire_ovl_encode(const wire_ovl *m, uint8_t *buf, size_t cap, size_t *len)
{
    unsigned need = required(m->t, m->op);
    int rc = check(m, need);
    if (rc != 0)
        return rc;
    /* GRAFT's id is optional; SWIM's updates are written when present. */
    unsigned keys = need;
    if (m->t == WIRE_T_PT && m->op == WIRE_PT_GRAFT && m->id != NULL)
        keys |= K_ID;
    if (m->t == WIRE_T_SWIM && m->nup > 0)
        keys |= K_UP;
    uint32_t n = 0;
    for (unsigned k = 0; k < NKEYS; k++)
        n += (keys >> k) & 1u;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, n);
    for (unsigned k = 0; k < NKEYS; k++) {
        unsigned bit = 1u << k;
        if (!(keys & bit))
            continue;
        if (bit == K_UP) {
            write_ups(&w, m);
            continue;
        }
        write_key(&w, bit);
        switch (bit) {
        case K_T:
            wire_mp_write_uint(&w, m->t);
            break;
        case K_OP:
            wire_mp_write_uint(&w, m->op);
            break;
        case K_N:
            write_entry(&w, &m->node);
            break;
        case K_TTL:
            wire_mp_write_uint(&w, m->ttl);
            break;
        case K_HI:
            wire_mp_write_bool(&w, m->hi);
            break;
        case K_OK:
            wire_mp_write_bool(&w, m->ok);
            break;
        case K_IDS:
            wire_mp_write_array(&w, m->nids);
            for (uint32_t i = 0; i < m->nids; i++)
                write_entry(&w, &m->ids[i]);
            break;
        case K_ID:
            wire_mp_write_bin(&w, m->id, WIRE_ID_BYTES);
            break;
        case K_R:
            wire_mp_write_uint(&w, m->round);
            break;
        case K_SEQ:
            wire_mp_write_uint(&w, m->seq);
            break;
        case K_O:
            wire_mp_write_bin(&w, m->origin, WIRE_NODE_ID_BYTES);
            break;
        case K_BODY:
            wire_mp_write_bin(&w, m->body.ptr, m->body.len);
            break;
        case K_IH:
            wire_mp_write_array(&w, m->nih);
            for (uint32_t i = 0; i < m->nih; i++) {
                wire_mp_write_array(&w, 2);
                wire_mp_write_bin(&w, m->ih_id[i], WIRE_ID_BYTES);
                wire_mp_write_uint(&w, m->ih_round[i]);
            }
            break;
        case K_TG:
            wire_mp_write_bin(&w, m->target, WIRE_NODE_ID_BYTES);
            break;
        }
    }
    return wire_mp_writer_finish(&w, len);
}
