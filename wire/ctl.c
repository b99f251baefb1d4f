/* wire/ctl.c: the control socket's codec (docs/PROTOCOL.md section 11):
 * messages collected from frames, maps checked and read by key, maps built
 * in a growing buffer and cut back into frames.
 *
 * Reading never trusts a length before checking it: the frame decoder's
 * limit is lowered, before each frame header, to what the message may
 * still take, so neither the decoder nor the message buffer ever holds
 * more than the reader's limit. wire_ctl_parse() then walks the message
 * once with wire_mp_check() and once more for the map rules of section 1;
 * after that the getters only read. */
#include "wire/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BIN8  0xc4u
#define BIN16 0xc5u

/* The reader keeps a message buffer up to this size for the next message;
 * a bigger one is freed once its message has been handed over. */
#define KEEP_BYTES 65536u

/* ---- reading frames -------------------------------------------------- */

void wire_ctl_reader_init(wire_ctl_reader *r, size_t limit)
{
    memset(r, 0, sizeof *r);
    r->limit = limit;
    wire_frame_decoder_init(&r->dec,
                            limit < WIRE_MAX_FRAME ? limit : WIRE_MAX_FRAME);
}

void wire_ctl_reader_free(wire_ctl_reader *r)
{
    wire_frame_decoder_free(&r->dec);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int reader_fail(wire_ctl_reader *r, int error)
{
    r->error = error;
    return error;
}

/* Appends a frame's payload to the message; the caller has checked (through
 * the decoder's limit) that r->len + n <= r->limit. The buffer doubles, so
 * a long message costs few copies, but never beyond the limit. */
static int reader_append(wire_ctl_reader *r, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    size_t need = r->len + n;
    if (need > r->cap) {
        size_t cap = r->cap > r->limit / 2 ? r->limit : 2 * r->cap;
        if (cap < need)
            cap = need;
        uint8_t *bigger = realloc(r->buf, cap);
        if (bigger == NULL)
            return -ENOMEM;
        r->buf = bigger;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len = need;
    return 0;
}

int wire_ctl_read(wire_ctl_reader *r, const uint8_t **data, size_t *len,
                  const uint8_t **msg, size_t *msg_len)
{
    if (r->error != 0)
        return r->error;
    /* r->len is 0 between messages (it is reset when one is returned), so a
     * big buffer seen here held a message whose borrow has just ended. */
    if (r->len == 0 && r->cap > KEEP_BYTES) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    for (;;) {
        /* The next frame may bring at most what the message has left under
         * the limit: a longer one fails at its header, before the decoder
         * buffers any of it. r->len only changes between frames, so setting
         * this while a header is half read is harmless. */
        size_t room = r->limit - r->len;
        wire_frame_decoder_set_limit(
            &r->dec, room < WIRE_MAX_FRAME ? room : WIRE_MAX_FRAME);
        const uint8_t *p;
        size_t n;
        int rc = wire_frame_decode(&r->dec, data, len, &p, &n);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return reader_fail(r, rc);
        int more = n == WIRE_MAX_FRAME;
        /* The decoder yields a payload in place unless it had to buffer a
         * frame split across chunks. */
        int in_place = r->dec.buf == NULL || p != r->dec.buf;
        if (r->len == 0 && !more && in_place) {
            *msg = p;
            *msg_len = n;
            return 1;
        }
        rc = reader_append(r, p, n);
        if (rc != 0)
            return reader_fail(r, rc);
        if (!more) {
            *msg = r->buf;
            *msg_len = r->len;
            r->len = 0;
            return 1;
        }
    }
}

/* ---- checking maps ---------------------------------------------------- */

static int keys_equal(wire_bytes a, const uint8_t *k, uint32_t klen)
{
    return a.len == klen && (klen == 0 || memcmp(a.ptr, k, klen) == 0);
}

static int check_value(wire_mp_reader *r, unsigned depth);

/* One map: str keys, none twice, at most WIRE_CTL_MAX_KEYS entries, and
 * each value checked in turn. The keys seen are compared pairwise: with at
 * most 128 keys this costs at most 127 comparisons per key byte. */
static int check_map(wire_mp_reader *r, unsigned depth)
{
    uint32_t count;
    if (wire_mp_read_map(r, &count) != 0 || count > WIRE_CTL_MAX_KEYS)
        return -EPROTO;
    wire_bytes keys[WIRE_CTL_MAX_KEYS];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint32_t klen;
        if (wire_mp_read_str(r, &k, &klen) != 0)
            return -EPROTO;
        for (uint32_t j = 0; j < i; j++)
            if (keys_equal(keys[j], k, klen))
                return -EPROTO;
        keys[i] = (wire_bytes){k, klen};
        if (check_value(r, depth + 1) != 0)
            return -EPROTO;
    }
    return 0;
}

/* Any value: maps by the rules above, arrays element by element, str for
 * its UTF-8, the rest skipped. depth is that of the container holding the
 * value; wire_mp_check() has bounded it already, the test here only keeps
 * the recursion safe on its own. */
static int check_value(wire_mp_reader *r, unsigned depth)
{
    if (depth > WIRE_CTL_MAX_DEPTH)
        return -EPROTO;
    switch (wire_mp_peek_type(r)) {
    case MSGPACK_OBJECT_MAP:
        return check_map(r, depth);
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t count;
        if (wire_mp_read_array(r, &count) != 0)
            return -EPROTO;
        for (uint32_t i = 0; i < count; i++)
            if (check_value(r, depth + 1) != 0)
                return -EPROTO;
        return 0;
    }
    case MSGPACK_OBJECT_STR: {
        const uint8_t *s;
        uint32_t slen;
        return wire_mp_read_str(r, &s, &slen);
    }
    default:
        return wire_mp_skip(r);
    }
}

int wire_ctl_parse(const uint8_t *buf, size_t len, wire_ctl_map *m)
{
    if (wire_mp_check(buf, len, WIRE_CTL_MAX_DEPTH) != 0)
        return -EPROTO;
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint32_t count;
    wire_mp_reader head = r;
    if (wire_mp_read_map(&head, &count) != 0 || check_map(&r, 0) != 0 ||
        wire_mp_left(&r) != 0)
        return -EPROTO;
    m->buf = buf;
    m->len = len;
    m->count = count;
    return 0;
}

/* ---- getters ---------------------------------------------------------- */

/* Sets *v to the map at r and moves r past it. */
static int take_map(wire_mp_reader *r, wire_ctl_map *v)
{
    wire_mp_reader t = *r;
    uint32_t count;
    if (wire_mp_read_map(&t, &count) != 0)
        return -EPROTO;
    t = *r;
    if (wire_mp_skip(&t) != 0)
        return -EPROTO;
    v->buf = r->p;
    v->len = (size_t)(t.p - r->p);
    v->count = count;
    *r = t;
    return 0;
}

/* Finds key in m: 0 with *val at its value, -ENOENT, or -EPROTO if m is
 * not a map with str keys. */
static int find(const wire_ctl_map *m, const char *key, wire_mp_reader *val)
{
    wire_mp_reader r;
    wire_mp_reader_init(&r, m->buf, m->len);
    uint32_t count;
    if (wire_mp_read_map(&r, &count) != 0)
        return -EPROTO;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint32_t n;
        if (wire_mp_read_str(&r, &k, &n) != 0)
            return -EPROTO;
        if (n == klen && memcmp(k, key, klen) == 0) {
            *val = r;
            return 0;
        }
        if (wire_mp_skip(&r) != 0)
            return -EPROTO;
    }
    return -ENOENT;
}

int wire_ctl_get_uint(const wire_ctl_map *m, const char *key, uint64_t *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return wire_mp_read_uint(&r, v) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_int(const wire_ctl_map *m, const char *key, int64_t *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return wire_mp_read_int(&r, v) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_bool(const wire_ctl_map *m, const char *key, int *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return wire_mp_read_bool(&r, v) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_str(const wire_ctl_map *m, const char *key, wire_bytes *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return wire_mp_read_str(&r, &v->ptr, &v->len) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_str_opt(const wire_ctl_map *m, const char *key, wire_bytes *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    if (wire_mp_read_nil(&r) == 0)
        return -ENOENT;
    return wire_mp_read_str(&r, &v->ptr, &v->len) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_bin(const wire_ctl_map *m, const char *key, wire_bytes *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return wire_mp_read_bin(&r, &v->ptr, &v->len) == 0 ? 0 : -EPROTO;
}

int wire_ctl_get_map(const wire_ctl_map *m, const char *key, wire_ctl_map *v)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    return take_map(&r, v);
}

int wire_ctl_get_array(const wire_ctl_map *m, const char *key, wire_iter *it,
                       uint32_t *count)
{
    wire_mp_reader r;
    int rc = find(m, key, &r);
    if (rc != 0)
        return rc;
    uint32_t n;
    if (wire_mp_read_array(&r, &n) != 0)
        return -EPROTO;
    it->r = r;
    it->left = n;
    *count = n;
    return 0;
}

int wire_ctl_next_map(wire_iter *it, wire_ctl_map *v)
{
    if (it->left == 0)
        return 0;
    if (take_map(&it->r, v) != 0)
        return -EPROTO;
    it->left--;
    return 1;
}

int wire_ctl_next_str(wire_iter *it, wire_bytes *v)
{
    if (it->left == 0)
        return 0;
    if (wire_mp_read_str(&it->r, &v->ptr, &v->len) != 0)
        return -EPROTO;
    it->left--;
    return 1;
}

int wire_ctl_next_bin(wire_iter *it, wire_bytes *v)
{
    if (it->left == 0)
        return 0;
    if (wire_mp_read_bin(&it->r, &v->ptr, &v->len) != 0)
        return -EPROTO;
    it->left--;
    return 1;
}

void wire_ctl_walk_init(const wire_ctl_map *m, wire_ctl_walk *w)
{
    wire_mp_reader_init(&w->r, m->buf, m->len);
    w->value = w->r;
    if (wire_mp_read_map(&w->r, &w->left) != 0)
        w->left = 0; /* not a map: nothing to walk */
}

int wire_ctl_walk_next(wire_ctl_walk *w, wire_bytes *key,
                       wire_mp_reader **value)
{
    if (w->left == 0)
        return 0;
    wire_mp_reader r = w->r;
    if (wire_mp_read_str(&r, &key->ptr, &key->len) != 0)
        return -EPROTO;
    /* The caller gets a reader that ends with the value, so whatever it
     * reads or leaves unread, the walk resumes after the value. */
    wire_mp_reader v = r;
    if (wire_mp_skip(&r) != 0)
        return -EPROTO;
    v.end = r.p;
    w->value = v;
    w->r = r;
    w->left--;
    *value = &w->value;
    return 1;
}

/* ---- building --------------------------------------------------------- */

/* The packer's write callback: appends, growing the buffer by doubling up
 * to the limit. The first failure sticks, so nothing lands after a lost
 * write. */
static int builder_cb(void *data, const char *buf, size_t len)
{
    wire_ctl_builder *b = data;
    if (b->error != 0)
        return -1;
    if (len > b->limit - b->len) {
        b->error = -EMSGSIZE;
        return -1;
    }
    size_t need = b->len + len;
    if (need > b->cap) {
        /* need <= limit, so the loop ends by reaching the limit at the
         * latest. */
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap < need)
            cap = cap > b->limit / 2 ? b->limit : 2 * cap;
        if (cap > b->limit)
            cap = b->limit;
        uint8_t *bigger = realloc(b->buf, cap);
        if (bigger == NULL) {
            b->error = -ENOMEM;
            return -1;
        }
        b->buf = bigger;
        b->cap = cap;
    }
    if (len > 0) {
        memcpy(b->buf + b->len, buf, len);
        b->len += len;
    }
    return 0;
}

void wire_ctl_builder_init(wire_ctl_builder *b, size_t limit)
{
    b->buf = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->error = 0;
    msgpack_packer_init(&b->pk, b, builder_cb);
}

void wire_ctl_builder_free(wire_ctl_builder *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = 0;
    b->cap = 0;
}

/* msgpack lengths and counts are 32-bit: a longer one cannot be written. */
static int builder_fits32(wire_ctl_builder *b, size_t n)
{
    if (n > UINT32_MAX) {
        if (b->error == 0)
            b->error = -EMSGSIZE;
        return 0;
    }
    return 1;
}

void wire_ctl_map_begin(wire_ctl_builder *b, uint32_t entries)
{
    (void)msgpack_pack_map(&b->pk, entries);
}

void wire_ctl_array_begin(wire_ctl_builder *b, uint32_t entries)
{
    (void)msgpack_pack_array(&b->pk, entries);
}

void wire_ctl_key(wire_ctl_builder *b, const char *key)
{
    wire_ctl_put_cstr(b, key);
}

void wire_ctl_put_uint(wire_ctl_builder *b, uint64_t v)
{
    (void)msgpack_pack_uint64(&b->pk, v);
}

void wire_ctl_put_int(wire_ctl_builder *b, int64_t v)
{
    /* msgpack-c writes a non-negative value in the unsigned forms. */
    (void)msgpack_pack_int64(&b->pk, v);
}

void wire_ctl_put_bool(wire_ctl_builder *b, int v)
{
    if (v)
        (void)msgpack_pack_true(&b->pk);
    else
        (void)msgpack_pack_false(&b->pk);
}

void wire_ctl_put_nil(wire_ctl_builder *b)
{
    (void)msgpack_pack_nil(&b->pk);
}

void wire_ctl_put_str(wire_ctl_builder *b, const void *s, size_t len)
{
    if (!builder_fits32(b, len))
        return;
    (void)msgpack_pack_str(&b->pk, len);
    (void)msgpack_pack_str_body(&b->pk, s, len);
}

void wire_ctl_put_cstr(wire_ctl_builder *b, const char *s)
{
    wire_ctl_put_str(b, s, strlen(s));
}

void wire_ctl_put_bin(wire_ctl_builder *b, const void *p, size_t len)
{
    if (!builder_fits32(b, len))
        return;
    (void)msgpack_pack_bin(&b->pk, len);
    (void)msgpack_pack_bin_body(&b->pk, p, len);
}

int wire_ctl_finish(const wire_ctl_builder *b)
{
    return b->error;
}

/* ---- framing ---------------------------------------------------------- */

size_t wire_ctl_framed_len(size_t len)
{
    size_t full = len / WIRE_MAX_FRAME, rest = len % WIRE_MAX_FRAME;
    /* Each whole frame adds a 3-byte header; the last one 2 or 3. full is
     * at most SIZE_MAX / 65535, so full * 3 cannot overflow. */
    size_t overhead = full * 3 + wire_frame_header_len(rest);
    if (len > SIZE_MAX - overhead)
        return SIZE_MAX;
    return len + overhead;
}

static size_t put_header(uint8_t *out, size_t n)
{
    if (n < 256) {
        out[0] = BIN8;
        out[1] = (uint8_t)n;
        return 2;
    }
    out[0] = BIN16;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    return 3;
}

int wire_ctl_frame(const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    size_t need = wire_ctl_framed_len(len);
    if (need == SIZE_MAX || need > cap)
        return -EMSGSIZE;
    size_t o = 0, i = 0;
    /* Every frame of exactly WIRE_MAX_FRAME bytes says another follows, so
     * the last frame is always shorter: empty when len is a multiple. */
    for (;;) {
        size_t n = len - i < WIRE_MAX_FRAME ? len - i : WIRE_MAX_FRAME;
        o += put_header(out + o, n);
        if (n > 0)
            memcpy(out + o, msg + i, n);
        o += n;
        i += n;
        if (n < WIRE_MAX_FRAME)
            break;
    }
    *out_len = o;
    return 0;
}
