/* wire/mp.c: a bounded msgpack walker, allocation-free readers, and a
 * msgpack-c packer that writes into a fixed buffer.
 *
 * confab uses a subset of msgpack: nil, bool, integers, str, bin, array and
 * map. Float and ext never occur in a confab message, so the walker, the
 * readers and wire_mp_skip() all reject them, as they reject the reserved
 * byte c1. */
#include "wire/mp.h"

#include <errno.h>
#include <string.h>

/* wire_mp_check() keeps one count per open container in a fixed array, so
 * it needs no allocation and no recursion. A max_depth above MP_STACK is
 * treated as MP_STACK: no confab message comes close. */
#define MP_STACK 32u

enum { HEAD_SCALAR, HEAD_ARRAY, HEAD_MAP };

/* The header of one value: its type byte and any length or count after it. */
typedef struct mp_head {
    int kind;    /* HEAD_* */
    size_t hlen; /* bytes of the header itself */
    uint64_t n;  /* scalar: bytes after the header; container: its count */
} mp_head;

static uint16_t load16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t load64(const uint8_t *p)
{
    return (uint64_t)load32(p) << 32 | load32(p + 4);
}

/* Reads the header of the value at p. Returns 0, or -EPROTO when the header
 * is cut short or the type is one confab never uses. The bytes the header
 * announces (h->n for a scalar) are not checked here: the caller compares
 * them with what is left. */
static int read_head(const uint8_t *p, const uint8_t *end, mp_head *h)
{
    size_t left = (size_t)(end - p);
    if (left == 0)
        return -EPROTO;
    uint8_t b = p[0];
    h->kind = HEAD_SCALAR;
    h->hlen = 1;
    h->n = 0;
    if (b <= 0x7f || b >= 0xe0) /* positive and negative fixint */
        return 0;
    if (b <= 0x8f) {
        h->kind = HEAD_MAP;
        h->n = b & 0x0fu;
        return 0;
    }
    if (b <= 0x9f) {
        h->kind = HEAD_ARRAY;
        h->n = b & 0x0fu;
        return 0;
    }
    if (b <= 0xbf) { /* fixstr */
        h->n = b & 0x1fu;
        return 0;
    }
    size_t lenbytes = 0; /* size of a length or count field */
    switch (b) {
    case 0xc0: /* nil */
    case 0xc2: /* false */
    case 0xc3: /* true */
        return 0;
    case 0xcc: /* uint 8 */
    case 0xd0: /* int 8 */
        h->n = 1;
        return 0;
    case 0xcd:
    case 0xd1:
        h->n = 2;
        return 0;
    case 0xce:
    case 0xd2:
        h->n = 4;
        return 0;
    case 0xcf:
    case 0xd3:
        h->n = 8;
        return 0;
    case 0xc4: /* bin 8 */
    case 0xd9: /* str 8 */
        lenbytes = 1;
        break;
    case 0xc5:
    case 0xda:
    case 0xdc: /* array 16 */
    case 0xde: /* map 16 */
        lenbytes = 2;
        break;
    case 0xc6:
    case 0xdb:
    case 0xdd: /* array 32 */
    case 0xdf: /* map 32 */
        lenbytes = 4;
        break;
    default: /* c1, ext (c7..c9, d4..d8), float (ca, cb) */
        return -EPROTO;
    }
    if (lenbytes >= left)
        return -EPROTO;
    h->hlen = 1 + lenbytes;
    h->n = lenbytes == 1 ? p[1] : lenbytes == 2 ? load16(p + 1) : load32(p + 1);
    if (b == 0xdc || b == 0xdd)
        h->kind = HEAD_ARRAY;
    else if (b == 0xde || b == 0xdf)
        h->kind = HEAD_MAP;
    return 0;
}

/* The values a container holds: a map's count is of pairs. */
static uint64_t head_elems(const mp_head *h)
{
    return h->kind == HEAD_MAP ? 2 * h->n : h->n;
}

int wire_mp_check_first(const uint8_t *buf, size_t len, unsigned max_depth,
                        size_t *used)
{
    if (buf == NULL || len == 0)
        return -EPROTO;
    if (max_depth > MP_STACK)
        max_depth = MP_STACK;
    const uint8_t *p = buf, *end = buf + len;
    /* rem[d]: values still to walk in the container open at depth d; rem[0]
     * is the one top-level value. pending: the sum of rem[], every value
     * still to walk. Each takes at least one byte, so pending never exceeds
     * the bytes left, and a count that would make it do so is rejected
     * before anything else is read. */
    uint64_t rem[MP_STACK + 1];
    unsigned depth = 0;
    rem[0] = 1;
    uint64_t pending = 1;
    for (;;) {
        while (depth > 0 && rem[depth] == 0)
            depth--;
        if (rem[depth] == 0)
            break;
        mp_head h;
        if (read_head(p, end, &h) != 0)
            return -EPROTO;
        p += h.hlen;
        rem[depth]--;
        pending--;
        size_t left = (size_t)(end - p);
        if (h.kind == HEAD_SCALAR) {
            if (h.n > left)
                return -EPROTO;
            p += h.n;
        } else {
            /* This container sits at depth + 1, even when empty. */
            if (depth >= max_depth)
                return -EPROTO;
            uint64_t elems = head_elems(&h);
            if (pending > left || elems > left - pending)
                return -EPROTO;
            pending += elems;
            if (elems > 0)
                rem[++depth] = elems;
        }
        if (pending > (size_t)(end - p))
            return -EPROTO;
    }
    *used = (size_t)(p - buf);
    return 0;
}

int wire_mp_check(const uint8_t *buf, size_t len, unsigned max_depth)
{
    size_t used;
    if (wire_mp_check_first(buf, len, max_depth, &used) != 0)
        return -EPROTO;
    return used == len ? 0 : -EPROTO; /* trailing bytes */
}

void wire_mp_reader_init(wire_mp_reader *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->end = buf == NULL ? buf : buf + len;
}

size_t wire_mp_left(const wire_mp_reader *r)
{
    return (size_t)(r->end - r->p);
}

/* Reads a map or array header of the wanted kind. */
static int read_container(wire_mp_reader *r, int kind, uint32_t *count)
{
    mp_head h;
    if (read_head(r->p, r->end, &h) != 0 || h.kind != kind)
        return -EPROTO;
    r->p += h.hlen;
    *count = (uint32_t)h.n; /* a count field is at most 32 bits */
    return 0;
}

int wire_mp_read_map(wire_mp_reader *r, uint32_t *count)
{
    return read_container(r, HEAD_MAP, count);
}

int wire_mp_read_array(wire_mp_reader *r, uint32_t *count)
{
    return read_container(r, HEAD_ARRAY, count);
}

int wire_mp_read_uint(wire_mp_reader *r, uint64_t *v)
{
    size_t left = wire_mp_left(r);
    if (left == 0)
        return -EPROTO;
    const uint8_t *p = r->p;
    uint8_t b = p[0];
    if (b <= 0x7f) {
        *v = b;
        r->p++;
        return 0;
    }
    size_t n;
    int is_signed = 0;
    switch (b) {
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        is_signed = 1;
        n = (size_t)1 << (b - 0xd0);
        break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        n = (size_t)1 << (b - 0xcc);
        break;
    default:
        return -EPROTO;
    }
    if (n >= left)
        return -EPROTO;
    /* A signed format holds a uint only when its sign bit is clear; its
     * value is then the same as the unsigned reading. */
    if (is_signed && (p[1] & 0x80))
        return -EPROTO;
    *v = n == 1   ? p[1]
         : n == 2 ? load16(p + 1)
         : n == 4 ? load32(p + 1)
                  : load64(p + 1);
    r->p += 1 + n;
    return 0;
}

int wire_mp_read_int(wire_mp_reader *r, int64_t *v)
{
    size_t left = wire_mp_left(r);
    if (left == 0)
        return -EPROTO;
    const uint8_t *p = r->p;
    uint8_t b = p[0];
    if (b >= 0xe0) { /* negative fixint: -32..-1 */
        *v = (int64_t)b - 256;
        r->p++;
        return 0;
    }
    if (b < 0xd0 || b > 0xd3) {
        /* Every other integer format is unsigned. */
        uint64_t u;
        wire_mp_reader t = *r;
        if (wire_mp_read_uint(&t, &u) != 0 || u > INT64_MAX)
            return -EPROTO;
        *v = (int64_t)u;
        *r = t;
        return 0;
    }
    size_t n = (size_t)1 << (b - 0xd0);
    if (n >= left)
        return -EPROTO;
    uint64_t u = n == 1   ? p[1]
                 : n == 2 ? load16(p + 1)
                 : n == 4 ? load32(p + 1)
                          : load64(p + 1);
    /* Sign-extend the n-byte two's complement value without relying on
     * implementation-defined conversions: subtract 2^(8n) when the sign bit
     * is set. */
    unsigned bits = (unsigned)(8 * n);
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (u & sign) {
        uint64_t mag = (bits == 64 ? ~u : (((uint64_t)1 << bits) - 1) ^ u) + 1;
        /* mag is in 1..2^63: -(mag - 1) - 1 stays within int64_t. */
        *v = -(int64_t)(mag - 1) - 1;
    } else {
        *v = (int64_t)u;
    }
    r->p += 1 + n;
    return 0;
}

/* Reads a str (want_str) or bin header and its bytes. */
static int read_raw(wire_mp_reader *r, int want_str, const uint8_t **s,
                    uint32_t *len)
{
    mp_head h;
    if (read_head(r->p, r->end, &h) != 0 || h.kind != HEAD_SCALAR)
        return -EPROTO;
    uint8_t b = r->p[0];
    int is_str = (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb);
    int is_bin = b >= 0xc4 && b <= 0xc6;
    if (want_str ? !is_str : !is_bin)
        return -EPROTO;
    if (h.n > (size_t)(r->end - r->p) - h.hlen)
        return -EPROTO;
    const uint8_t *data = r->p + h.hlen;
    if (want_str && !wire_utf8_valid(data, (size_t)h.n))
        return -EPROTO;
    *s = data;
    *len = (uint32_t)h.n;
    r->p = data + h.n;
    return 0;
}

int wire_mp_read_str(wire_mp_reader *r, const uint8_t **s, uint32_t *len)
{
    return read_raw(r, 1, s, len);
}

int wire_mp_read_bin(wire_mp_reader *r, const uint8_t **b, uint32_t *len)
{
    return read_raw(r, 0, b, len);
}

int wire_mp_read_bool(wire_mp_reader *r, int *v)
{
    if (r->p == r->end || (r->p[0] != 0xc2 && r->p[0] != 0xc3))
        return -EPROTO;
    *v = r->p[0] == 0xc3;
    r->p++;
    return 0;
}

int wire_mp_read_nil(wire_mp_reader *r)
{
    if (r->p == r->end || r->p[0] != 0xc0)
        return -EPROTO;
    r->p++;
    return 0;
}

int wire_mp_skip(wire_mp_reader *r)
{
    /* The same walk as wire_mp_check() without the depth stack: pending
     * counts the values still to skip and stays below the bytes left, so
     * the loop ends within as many rounds as there are bytes. */
    const uint8_t *p = r->p;
    uint64_t pending = 1;
    while (pending > 0) {
        mp_head h;
        if (read_head(p, r->end, &h) != 0)
            return -EPROTO;
        p += h.hlen;
        pending--;
        size_t left = (size_t)(r->end - p);
        if (h.kind == HEAD_SCALAR) {
            if (h.n > left)
                return -EPROTO;
            p += h.n;
        } else {
            uint64_t elems = head_elems(&h);
            if (pending > left || elems > left - pending)
                return -EPROTO;
            pending += elems;
        }
    }
    r->p = p;
    return 0;
}

int wire_mp_peek_type(const wire_mp_reader *r)
{
    if (r->p == r->end)
        return -1;
    uint8_t b = r->p[0];
    if (b <= 0x7f)
        return MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (b >= 0xe0)
        return MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (b <= 0x8f)
        return MSGPACK_OBJECT_MAP;
    if (b <= 0x9f)
        return MSGPACK_OBJECT_ARRAY;
    if (b <= 0xbf)
        return MSGPACK_OBJECT_STR;
    switch (b) {
    case 0xc0:
        return MSGPACK_OBJECT_NIL;
    case 0xc2:
    case 0xc3:
        return MSGPACK_OBJECT_BOOLEAN;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MSGPACK_OBJECT_BIN;
    case 0xca:
        return MSGPACK_OBJECT_FLOAT32;
    case 0xcb:
        return MSGPACK_OBJECT_FLOAT64;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        return MSGPACK_OBJECT_POSITIVE_INTEGER;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        /* Like msgpack-c: a signed format holding a non-negative value is a
         * positive integer. */
        if (wire_mp_left(r) < 2)
            return -1;
        return (r->p[1] & 0x80) ? MSGPACK_OBJECT_NEGATIVE_INTEGER
                                : MSGPACK_OBJECT_POSITIVE_INTEGER;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return MSGPACK_OBJECT_STR;
    case 0xdc:
    case 0xdd:
        return MSGPACK_OBJECT_ARRAY;
    case 0xde:
    case 0xdf:
        return MSGPACK_OBJECT_MAP;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return MSGPACK_OBJECT_EXT;
    default: /* c1 */
        return -1;
    }
}

int wire_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* The ranges of RFC 3629 section 4: the second byte's range rules
         * out overlong forms (e0, f0), surrogates (ed) and code points above
         * U+10FFFF (f4); c0, c1 and f5..ff never start a sequence. */
        size_t more;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c == 0xe0) {
            more = 2;
            lo = 0xa0;
        } else if (c == 0xed) {
            more = 2;
            hi = 0x9f;
        } else if (c >= 0xe1 && c <= 0xef) {
            more = 2;
        } else if (c == 0xf0) {
            more = 3;
            lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            more = 3;
        } else if (c == 0xf4) {
            more = 3;
            hi = 0x8f;
        } else {
            return 0;
        }
        if (more > len - i - 1)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* The packer's write callback: appends to the fixed buffer or fails. The
 * first failure sticks, so a later small write cannot land after a lost
 * one. */
static int writer_cb(void *data, const char *buf, size_t len)
{
    wire_mp_writer *w = data;
    if (w->error != 0)
        return -1;
    if (len > w->cap - w->len) {
        w->error = -EMSGSIZE;
        return -1;
    }
    if (len > 0) {
        memcpy(w->buf + w->len, buf, len);
        w->len += len;
    }
    return 0;
}

void wire_mp_writer_init(wire_mp_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf == NULL ? 0 : cap;
    w->len = 0;
    w->error = 0;
    msgpack_packer_init(&w->pk, w, writer_cb);
}

/* msgpack lengths and counts are 32-bit: a longer one cannot be written. */
static int writer_fits32(wire_mp_writer *w, size_t n)
{
    if (n > UINT32_MAX) {
        if (w->error == 0)
            w->error = -EMSGSIZE;
        return 0;
    }
    return 1;
}

void wire_mp_write_map(wire_mp_writer *w, uint32_t n)
{
    (void)msgpack_pack_map(&w->pk, n);
}

void wire_mp_write_array(wire_mp_writer *w, uint32_t n)
{
    (void)msgpack_pack_array(&w->pk, n);
}

void wire_mp_write_uint(wire_mp_writer *w, uint64_t v)
{
    /* msgpack-c picks the shortest form: fixint, uint 8, 16, 32 or 64. */
    (void)msgpack_pack_uint64(&w->pk, v);
}

void wire_mp_write_str(wire_mp_writer *w, const void *s, size_t len)
{
    if (!writer_fits32(w, len))
        return;
    /* fixstr below 32 bytes, then str 8, 16, 32. */
    (void)msgpack_pack_str(&w->pk, len);
    (void)msgpack_pack_str_body(&w->pk, s, len);
}

void wire_mp_write_cstr(wire_mp_writer *w, const char *s)
{
    wire_mp_write_str(w, s, strlen(s));
}

void wire_mp_write_bin(wire_mp_writer *w, const void *b, size_t len)
{
    if (!writer_fits32(w, len))
        return;
    (void)msgpack_pack_bin(&w->pk, len);
    (void)msgpack_pack_bin_body(&w->pk, b, len);
}

void wire_mp_write_bool(wire_mp_writer *w, int v)
{
    if (v)
        (void)msgpack_pack_true(&w->pk);
    else
        (void)msgpack_pack_false(&w->pk);
}

void wire_mp_write_nil(wire_mp_writer *w)
{
    (void)msgpack_pack_nil(&w->pk);
}

int wire_mp_writer_finish(const wire_mp_writer *w, size_t *len)
{
    if (w->error != 0)
        return w->error;
    *len = w->len;
    return 0;
}
