/* wire/msg.c: the HELLO and transport message codec (docs/PROTOCOL.md
 * sections 3.2, 4 and 5): exact shapes in, shortest forms out.
 *
 * Every decoder runs wire_mp_check() over the whole input first, so what
 * follows walks bytes known to be well formed, shallow and exactly one
 * object long; the readers still check every bound. Nothing here allocates.
 *
 * Duplicate keys. The keys a decoder knows for the map at hand are tracked
 * in a bit mask, so a known key seen twice is always rejected. The other
 * keys are remembered in a small array on the stack (the first DUP_SLOTS of
 * them), and every later unknown key is compared with those: a repeated
 * unknown key is rejected whenever its first occurrence is among the first
 * DUP_SLOTS unknown keys of the map, which covers every map a real peer
 * sends. Catching every repeat in a map of thousands of unknown keys would
 * take memory that grows with the map or quadratic time, and a repeated key
 * we ignore anyway cannot change what we decode. */
#include "wire/msg.h"

#include <errno.h>
#include <string.h>

#define DUP_SLOTS 32u

/* Every key of the transport messages, by bit. A key has the same type in
 * every message that uses it; which keys a message knows is a mask. */
enum {
    K_T,
    K_ID,
    K_K,
    K_SEQ,
    K_TS,
    K_G,
    K_CT,
    K_BODY,
    K_SIZE,
    K_OFF,
    K_DATA,
    K_N,
    K_PEERS,
    K_R,
    K_SKIP,
    K_COUNT
};

static const char *const msg_keys[K_COUNT] = {
    "t",    "id",  "k",    "seq", "ts",    "g", "ct",   "body",
    "size", "off", "data", "n",   "peers", "r", "skip",
};

#define BIT(k) (1u << (k))

/* The HELLO's keys. */
enum {
    H_V,
    H_NAME,
    H_PORT,
    H_BOOT,
    H_MAX,
    H_EPOCH,
    H_GROUPS,
    H_BATCH, /* optional (#18): batched transport messages (section 4) */
    H_COUNT
};

static const char *const hello_keys[H_COUNT] = {
    "v", "name", "port", "boot", "max", "epoch", "groups", "batch",
};

/* The keys every HELLO must carry: all but the optional ones. */
#define H_REQUIRED (BIT(H_BATCH) - 1u)

/* Reads the value of known key `key`; must consume exactly that value. */
typedef int (*field_fn)(void *ctx, unsigned key, wire_mp_reader *r);

/* True when the NUL-terminated name is exactly k[0..klen): compared byte
 * by byte, stopping at the name's end, so that no strlen runs per key. */
static bool key_is(const char *name, const uint8_t *k, uint32_t klen)
{
    uint32_t j = 0;
    for (; j < klen; j++)
        if (name[j] == '\0' || (uint8_t)name[j] != k[j])
            return false;
    return name[j] == '\0';
}

/* The index of key k among names[] (known ones only), or nnames. The
 * search starts at hint, where the key after the last one found usually
 * is: senders write the keys in one order (confab in names[]' order), so
 * a map decodes with about one compare per key. */
static unsigned key_index(const char *const *names, unsigned nnames,
                          uint32_t known, const uint8_t *k, uint32_t klen,
                          unsigned hint)
{
    if (hint >= nnames)
        hint = 0;
    /* The known keys from hint up, then those below it: set bits only. */
    uint32_t from = known & ~(BIT(hint) - 1u), below = known & (BIT(hint) - 1u);
    for (uint32_t m = from; m != 0; m &= m - 1u) {
        unsigned i = (unsigned)__builtin_ctz(m);
        if (key_is(names[i], k, klen))
            return i;
    }
    for (uint32_t m = below; m != 0; m &= m - 1u) {
        unsigned i = (unsigned)__builtin_ctz(m);
        if (key_is(names[i], k, klen))
            return i;
    }
    (void)nnames;
    return nnames;
}

/* Walks one map whose keys are all str. Keys in `known` (bits of names[])
 * go to fn, at most once each; other keys are skipped, after the duplicate
 * check described at the top of the file. Sets *seen to the known keys
 * found. */
static int walk_map(wire_mp_reader *r, const char *const *names,
                    unsigned nnames, uint32_t known, field_fn fn, void *ctx,
                    uint32_t *seen, bool dups)
{
    uint32_t count;
    if (wire_mp_read_map(r, &count) != 0)
        return -EPROTO;
    wire_bytes unknown[DUP_SLOTS];
    unsigned nunknown = 0;
    uint32_t mask = 0;
    unsigned hint = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint32_t klen;
        if (wire_mp_read_str(r, &k, &klen) != 0)
            return -EPROTO;
        unsigned idx = key_index(names, nnames, known, k, klen, hint);
        if (idx < nnames) {
            if (mask & BIT(idx))
                return -EPROTO;
            mask |= BIT(idx);
            hint = idx + 1;
            if (fn(ctx, idx, r) != 0)
                return -EPROTO;
            continue;
        }
        for (unsigned j = 0; dups && j < nunknown; j++)
            if (unknown[j].len == klen && memcmp(unknown[j].ptr, k, klen) == 0)
                return -EPROTO;
        if (dups && nunknown < DUP_SLOTS)
            unknown[nunknown++] = (wire_bytes){k, klen};
        if (wire_mp_skip(r) != 0)
            return -EPROTO;
    }
    *seen = mask;
    return 0;
}

/* A str of min..max bytes (valid UTF-8: the reader checks). */
static int read_str_range(wire_mp_reader *r, uint32_t min, uint32_t max,
                          wire_bytes *out)
{
    const uint8_t *s;
    uint32_t len;
    if (wire_mp_read_str(r, &s, &len) != 0 || len < min || len > max)
        return -EPROTO;
    out->ptr = s;
    out->len = len;
    return 0;
}

static int read_bin_any(wire_mp_reader *r, wire_bytes *out)
{
    const uint8_t *b;
    uint32_t len;
    if (wire_mp_read_bin(r, &b, &len) != 0)
        return -EPROTO;
    out->ptr = b;
    out->len = len;
    return 0;
}

static int read_bin_exact(wire_mp_reader *r, uint32_t want, const uint8_t **out)
{
    uint32_t len;
    if (wire_mp_read_bin(r, out, &len) != 0 || len != want)
        return -EPROTO;
    return 0;
}

static int read_uint_max(wire_mp_reader *r, uint64_t max, uint64_t *v)
{
    if (wire_mp_read_uint(r, v) != 0 || *v > max)
        return -EPROTO;
    return 0;
}

/* One PEERS entry: [bin32 id, bin4 | bin16 address, uint 1..65535 port]. */
static int read_peer_entry(wire_mp_reader *r, wire_peer_entry *e)
{
    uint32_t n, alen;
    uint64_t port;
    if (wire_mp_read_array(r, &n) != 0 || n != 3 ||
        read_bin_exact(r, WIRE_NODE_ID_BYTES, &e->id) != 0 ||
        wire_mp_read_bin(r, &e->addr, &alen) != 0 ||
        (alen != 4 && alen != 16) || wire_mp_read_uint(r, &port) != 0 ||
        port < 1 || port > 65535)
        return -EPROTO;
    e->addr_len = (uint8_t)alen;
    e->port = (uint16_t)port;
    return 0;
}

/* An array of at most max values, each checked by `one`; *it is left at
 * the first value so the caller can walk them again. */
static int read_checked_array(wire_mp_reader *r, uint32_t max,
                              int (*one)(wire_mp_reader *r), wire_iter *it)
{
    uint32_t n;
    if (wire_mp_read_array(r, &n) != 0 || n > max)
        return -EPROTO;
    it->r = *r;
    it->left = n;
    for (uint32_t i = 0; i < n; i++)
        if (one(r) != 0)
            return -EPROTO;
    return 0;
}

static int check_peer(wire_mp_reader *r)
{
    wire_peer_entry e;
    return read_peer_entry(r, &e);
}

static int check_group(wire_mp_reader *r)
{
    wire_bytes g;
    return read_str_range(r, 1, WIRE_MAX_GROUP, &g);
}

int wire_groups_next(wire_iter *it, wire_bytes *g)
{
    if (it->left == 0)
        return 0;
    if (read_str_range(&it->r, 1, WIRE_MAX_GROUP, g) != 0) {
        it->left = 0; /* not from wire_hello_decode(): stop */
        return 0;
    }
    it->left--;
    return 1;
}

int wire_peers_next(wire_iter *it, wire_peer_entry *e)
{
    if (it->left == 0)
        return 0;
    if (read_peer_entry(&it->r, e) != 0) {
        it->left = 0;
        return 0;
    }
    it->left--;
    return 1;
}

/* ---- HELLO ---- */

static int hello_field(void *ctx, unsigned key, wire_mp_reader *r)
{
    wire_hello *h = ctx;
    uint64_t v;
    switch (key) {
    case H_V:
        return wire_mp_read_uint(r, &h->version);
    case H_NAME:
        return read_str_range(r, 0, WIRE_MAX_NAME, &h->name);
    case H_PORT:
        if (read_uint_max(r, 65535, &v) != 0)
            return -EPROTO;
        h->port = (uint16_t)v;
        return 0;
    case H_BOOT:
        return wire_mp_read_uint(r, &h->boot);
    case H_MAX:
        if (read_uint_max(r, UINT32_MAX, &h->max) != 0 ||
            h->max < WIRE_MIN_MAX_BODY)
            return -EPROTO;
        return 0;
    case H_EPOCH:
        return wire_mp_read_uint(r, &h->epoch);
    case H_GROUPS:
        if (read_checked_array(r, WIRE_MAX_GROUPS, check_group,
                               &h->group_iter) != 0)
            return -EPROTO;
        h->ngroups = h->group_iter.left;
        return 0;
    case H_BATCH:
        return wire_mp_read_bool(r, &h->batch);
    default:
        return -EPROTO;
    }
}

int wire_hello_decode(const uint8_t *buf, size_t len, wire_hello *h)
{
    memset(h, 0, sizeof *h);
    if (wire_mp_check(buf, len, WIRE_MAX_DEPTH) != 0)
        return -EPROTO;
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint32_t all = BIT(H_COUNT) - 1, seen;
    if (walk_map(&r, hello_keys, H_COUNT, all, hello_field, h, &seen, true) !=
            0 ||
        (seen & H_REQUIRED) != H_REQUIRED || wire_mp_left(&r) != 0) {
        memset(h, 0, sizeof *h);
        return -EPROTO;
    }
    return 0;
}

static int str_ok(const wire_bytes *b, uint32_t min, uint32_t max)
{
    if (b->len < min || b->len > max)
        return 0;
    return b->len == 0 || (b->ptr != NULL && wire_utf8_valid(b->ptr, b->len));
}

static int bytes_ok(const wire_bytes *b)
{
    return b->len == 0 || b->ptr != NULL;
}

int wire_hello_encode(const wire_hello *h, uint8_t *buf, size_t cap,
                      size_t *len)
{
    if (!str_ok(&h->name, 0, WIRE_MAX_NAME) || h->max < WIRE_MIN_MAX_BODY ||
        h->max > UINT32_MAX || h->ngroups > WIRE_MAX_GROUPS ||
        (h->ngroups > 0 && h->groups == NULL))
        return -EINVAL;
    for (uint32_t i = 0; i < h->ngroups; i++)
        if (!str_ok(&h->groups[i], 1, WIRE_MAX_GROUP))
            return -EINVAL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    /* `batch` is written only when true, so that a HELLO without it is
     * the same bytes an older node writes. */
    wire_mp_write_map(&w, h->batch ? H_COUNT : H_COUNT - 1u);
    wire_mp_write_cstr(&w, "v");
    wire_mp_write_uint(&w, h->version);
    wire_mp_write_cstr(&w, "name");
    wire_mp_write_str(&w, h->name.ptr, h->name.len);
    wire_mp_write_cstr(&w, "port");
    wire_mp_write_uint(&w, h->port);
    wire_mp_write_cstr(&w, "boot");
    wire_mp_write_uint(&w, h->boot);
    wire_mp_write_cstr(&w, "max");
    wire_mp_write_uint(&w, h->max);
    wire_mp_write_cstr(&w, "epoch");
    wire_mp_write_uint(&w, h->epoch);
    wire_mp_write_cstr(&w, "groups");
    wire_mp_write_array(&w, h->ngroups);
    for (uint32_t i = 0; i < h->ngroups; i++)
        wire_mp_write_str(&w, h->groups[i].ptr, h->groups[i].len);
    if (h->batch) {
        wire_mp_write_cstr(&w, "batch");
        wire_mp_write_bool(&w, 1);
    }
    return wire_mp_writer_finish(&w, len);
}

/* ---- transport messages ---- */

int wire_msg_type_known(uint64_t type)
{
    return type >= WIRE_T_DATA && type <= WIRE_T_BYE;
}

/* The keys each type knows, and the ones it requires. DATA's `g` is
 * required or forbidden by kind, checked after the walk. */
static uint32_t type_keys(uint64_t t)
{
    switch (t) {
    case WIRE_T_DATA:
        return BIT(K_T) | BIT(K_ID) | BIT(K_K) | BIT(K_SEQ) | BIT(K_TS) |
               BIT(K_G) | BIT(K_CT) | BIT(K_BODY) | BIT(K_SIZE) | BIT(K_SKIP);
    case WIRE_T_FRAG:
        return BIT(K_T) | BIT(K_ID) | BIT(K_OFF) | BIT(K_DATA);
    case WIRE_T_ACK:
        return BIT(K_T) | BIT(K_SEQ) | BIT(K_ID);
    case WIRE_T_PING:
    case WIRE_T_PONG:
        return BIT(K_T) | BIT(K_N) | BIT(K_DATA);
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        return BIT(K_T) | BIT(K_G);
    case WIRE_T_PEERS:
        return BIT(K_T) | BIT(K_PEERS);
    case WIRE_T_BYE:
        return BIT(K_T) | BIT(K_R);
    default:
        return 0;
    }
}

static uint32_t type_required(uint64_t t)
{
    switch (t) {
    case WIRE_T_DATA:
        return BIT(K_T) | BIT(K_ID) | BIT(K_K) | BIT(K_SEQ) | BIT(K_TS) |
               BIT(K_BODY);
    case WIRE_T_PING:
    case WIRE_T_PONG:
        return BIT(K_T) | BIT(K_N);
    case WIRE_T_ACK: /* seq, id or both: checked after the walk */
        return BIT(K_T);
    default:
        return type_keys(t);
    }
}

/* The fields of any transport message, as read. */
typedef struct fields {
    uint64_t t, k, seq, ts, size, off, n, r;
    int skip;
    const uint8_t *id;
    wire_bytes g, ct, body, data;
    wire_iter peers;
} fields;

static int msg_field(void *ctx, unsigned key, wire_mp_reader *r)
{
    fields *f = ctx;
    switch (key) {
    case K_T:
        return wire_mp_read_uint(r, &f->t);
    case K_ID:
        return read_bin_exact(r, WIRE_ID_BYTES, &f->id);
    case K_K:
        return read_uint_max(r, WIRE_K_ANYCAST, &f->k);
    case K_SEQ:
        return wire_mp_read_uint(r, &f->seq);
    case K_TS:
        return wire_mp_read_uint(r, &f->ts);
    case K_G:
        return read_str_range(r, 1, WIRE_MAX_GROUP, &f->g);
    case K_CT:
        return read_str_range(r, 0, WIRE_MAX_CT, &f->ct);
    case K_BODY:
        return read_bin_any(r, &f->body);
    case K_SIZE:
        return wire_mp_read_uint(r, &f->size);
    case K_OFF:
        return wire_mp_read_uint(r, &f->off);
    case K_DATA:
        return read_bin_any(r, &f->data);
    case K_N:
        return wire_mp_read_uint(r, &f->n);
    case K_PEERS:
        return read_checked_array(r, WIRE_MAX_PEERS, check_peer, &f->peers);
    case K_SKIP: {
        int v;
        if (wire_mp_read_bool(r, &v) != 0)
            return -EPROTO;
        f->skip = v;
        return 0;
    }
    case K_R:
        return read_uint_max(r, WIRE_BYE_OTHER, &f->r);
    default:
        return -EPROTO;
    }
}

/* Checks the rules that tie fields together and fills m. */
static int msg_fill(const fields *f, uint32_t seen, wire_msg *m)
{
    uint32_t req = type_required(f->t);
    if ((seen & req) != req)
        return -EPROTO;
    switch (f->t) {
    case WIRE_T_DATA: {
        wire_data *d = &m->u.data;
        int grouped = f->k == WIRE_K_GROUP || f->k == WIRE_K_ANYCAST;
        if (grouped != ((seen & BIT(K_G)) != 0))
            return -EPROTO;
        memcpy(d->id, f->id, WIRE_ID_BYTES);
        d->kind = (uint8_t)f->k;
        d->seq = f->seq;
        d->ts = f->ts;
        d->group = f->g;
        d->has_ct = (seen & BIT(K_CT)) != 0;
        d->ct = f->ct;
        d->body = f->body;
        d->fragmented = (seen & BIT(K_SIZE)) != 0;
        if (d->fragmented && f->size <= f->body.len)
            return -EPROTO;
        d->size = d->fragmented ? f->size : f->body.len;
        /* A skip (an expired unicast's place) is a unicast and carries
         * nothing. */
        d->skip = (seen & BIT(K_SKIP)) && f->skip;
        if (d->skip &&
            (f->k != WIRE_K_UNICAST || d->fragmented || f->body.len != 0))
            return -EPROTO;
        return 0;
    }
    case WIRE_T_FRAG:
        if (f->data.len == 0)
            return -EPROTO;
        memcpy(m->u.frag.id, f->id, WIRE_ID_BYTES);
        m->u.frag.off = f->off;
        m->u.frag.data = f->data;
        return 0;
    case WIRE_T_ACK:
        if (!(seen & (BIT(K_SEQ) | BIT(K_ID))))
            return -EPROTO;
        m->u.ack.has_seq = (seen & BIT(K_SEQ)) != 0;
        m->u.ack.seq = f->seq;
        m->u.ack.has_id = (seen & BIT(K_ID)) != 0;
        if (m->u.ack.has_id)
            memcpy(m->u.ack.id, f->id, WIRE_ID_BYTES);
        return 0;
    case WIRE_T_PING:
    case WIRE_T_PONG:
        if (f->data.len > WIRE_MAX_PING_DATA)
            return -EPROTO;
        m->u.ping.n = f->n;
        m->u.ping.has_data = (seen & BIT(K_DATA)) != 0;
        m->u.ping.data = f->data;
        return 0;
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        m->u.group.group = f->g;
        return 0;
    case WIRE_T_PEERS:
        m->u.peers.count = f->peers.left;
        m->u.peers.iter = f->peers;
        return 0;
    case WIRE_T_BYE:
        m->u.bye.reason = f->r;
        return 0;
    default:
        return -EPROTO;
    }
}

static int t_field(void *ctx, unsigned key, wire_mp_reader *r)
{
    (void)key;
    return wire_mp_read_uint(r, ctx);
}

/* ---- the one-pass decoder (#18) ---- */

/* The index of a transport message key by its length and bytes, without
 * a string compare: K_COUNT when it is none of msg_keys[]. */
static unsigned msg_key(const uint8_t *k, uint32_t klen)
{
#define KEY2(a, b)       ((unsigned)(a) << 8 | (unsigned)(b))
#define KEY4(a, b, c, d) ((uint32_t)KEY2(a, b) << 16 | KEY2(c, d))
    switch (klen) {
    case 1:
        switch (k[0]) {
        case 't':
            return K_T;
        case 'k':
            return K_K;
        case 'g':
            return K_G;
        case 'n':
            return K_N;
        case 'r':
            return K_R;
        default:
            return K_COUNT;
        }
    case 2:
        switch (KEY2(k[0], k[1])) {
        case KEY2('i', 'd'):
            return K_ID;
        case KEY2('t', 's'):
            return K_TS;
        case KEY2('c', 't'):
            return K_CT;
        default:
            return K_COUNT;
        }
    case 3:
        if (k[0] == 's' && k[1] == 'e' && k[2] == 'q')
            return K_SEQ;
        if (k[0] == 'o' && k[1] == 'f' && k[2] == 'f')
            return K_OFF;
        return K_COUNT;
    case 4:
        switch ((uint32_t)KEY2(k[0], k[1]) << 16 | KEY2(k[2], k[3])) {
        case KEY4('b', 'o', 'd', 'y'):
            return K_BODY;
        case KEY4('s', 'i', 'z', 'e'):
            return K_SIZE;
        case KEY4('d', 'a', 't', 'a'):
            return K_DATA;
        case KEY4('s', 'k', 'i', 'p'):
            return K_SKIP;
        default:
            return K_COUNT;
        }
    case 5:
        return memcmp(k, "peers", 5) == 0 ? K_PEERS : K_COUNT;
    default:
        return K_COUNT;
    }
#undef KEY2
#undef KEY4
}

/* Skips a value the message does not know, holding it to what
 * wire_mp_check() would have: well formed, and nested at most
 * WIRE_MAX_DEPTH deep counting the message's own map. */
static int skip_checked(wire_mp_reader *r)
{
    const uint8_t *at = r->p;
    if (wire_mp_skip(r) != 0 ||
        wire_mp_check(at, (size_t)(r->p - at), WIRE_MAX_DEPTH - 1u) != 0)
        return -EPROTO;
    return 0;
}

/* A map whose first key is `t`, as every confab node writes it, of a type
 * this version knows: one walk reads it all, where the general path below
 * walks it three times (the check, `t`, the fields). It accepts and
 * refuses exactly what the general path does: every value is read by a
 * bounded reader or skipped under the same depth limit, keys are matched
 * by their length and bytes, repeats are refused as walk_map() refuses
 * them, and trailing bytes fail. Returns 1 when the map is not of that
 * shape (the caller takes the general path), else 0 or -EPROTO. */
static int decode_fast(const uint8_t *buf, size_t len, wire_msg *m,
                       size_t *used)
{
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint32_t count;
    uint64_t t;
    if (len < 3 || buf[1] != 0xa1 || buf[2] != 't' ||
        wire_mp_read_map(&r, &count) != 0 || r.p != buf + 1 || count == 0)
        return 1; /* not a fixmap opening with `t` */
    r.p += 2;
    if (wire_mp_read_uint(&r, &t) != 0 || !wire_msg_type_known(t))
        return 1;
    uint32_t known = type_keys(t), mask = BIT(K_T);
    wire_bytes unknown[DUP_SLOTS];
    unsigned nunknown = 0;
    fields f;
    memset(&f, 0, sizeof f);
    f.t = t;
    for (uint32_t i = 1; i < count; i++) {
        const uint8_t *k;
        uint32_t klen;
        if (wire_mp_read_str(&r, &k, &klen) != 0)
            return -EPROTO;
        unsigned idx = msg_key(k, klen);
        if (idx < K_COUNT && (known & BIT(idx))) {
            if (mask & BIT(idx))
                return -EPROTO;
            mask |= BIT(idx);
            if (msg_field(&f, idx, &r) != 0)
                return -EPROTO;
            continue;
        }
        for (unsigned j = 0; j < nunknown; j++)
            if (unknown[j].len == klen && memcmp(unknown[j].ptr, k, klen) == 0)
                return -EPROTO;
        if (nunknown < DUP_SLOTS)
            unknown[nunknown++] = (wire_bytes){k, klen};
        if (skip_checked(&r) != 0)
            return -EPROTO;
    }
    /* used: the map may be followed by others (a batch); else it must
     * fill the buffer. */
    if ((used == NULL && wire_mp_left(&r) != 0) || msg_fill(&f, mask, m) != 0)
        return -EPROTO;
    if (used != NULL)
        *used = (size_t)(r.p - buf);
    m->type = t;
    return 0;
}

int wire_msg_decode(const uint8_t *buf, size_t len, wire_msg *m)
{
    memset(m, 0, sizeof *m);
    if (buf != NULL) {
        int rc = decode_fast(buf, len, m, NULL);
        if (rc <= 0) {
            if (rc < 0)
                memset(m, 0, sizeof *m);
            return rc;
        }
    }
    if (wire_mp_check(buf, len, WIRE_MAX_DEPTH) != 0)
        return -EPROTO;

    /* Pass 1 finds `t`, which may come after the keys it gives a meaning
     * to, and checks what every map must satisfy: str keys, no repeats.
     * The repeats of other keys are left to pass 2, which looks at every
     * key again (#18: one look fewer per key on the hot path); a type
     * this version ignores has no pass 2, so its map is walked again
     * with the check. */
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint64_t t = 0;
    uint32_t seen;
    if (walk_map(&r, msg_keys, K_COUNT, BIT(K_T), t_field, &t, &seen, false) !=
            0 ||
        seen != BIT(K_T))
        return -EPROTO;
    if (wire_route_type(t)) /* routing's own codec (wire/route.c) */
        return wire_route_decode(buf, len, t, m);
    if (!wire_msg_type_known(t)) {
        wire_mp_reader_init(&r, buf, len);
        if (walk_map(&r, msg_keys, K_COUNT, BIT(K_T), t_field, &t, &seen,
                     true) != 0)
            return -EPROTO;
        m->type = t; /* well formed, of a type this version ignores */
        if (t >= 30 && t <= 32) { /* area: scale (#13): the overlay's, */
            m->u.raw.ptr = buf;   /* decoded by wire/overlay.c */
            m->u.raw.len = (uint32_t)len;
        }
        return 0;
    }

    /* Pass 2 reads the keys this type knows and skips the others. */
    fields f;
    memset(&f, 0, sizeof f);
    wire_mp_reader_init(&r, buf, len);
    if (walk_map(&r, msg_keys, K_COUNT, type_keys(t), msg_field, &f, &seen,
                 true) != 0 ||
        wire_mp_left(&r) != 0 || msg_fill(&f, seen, m) != 0) {
        memset(m, 0, sizeof *m);
        return -EPROTO;
    }
    m->type = t;
    return 0;
}

/* The value of `t` when it is the first key of the map at buf, as a
 * uint: true and *t, else false (the general path finds it). */
static bool t_first(const uint8_t *buf, size_t len, uint64_t *t)
{
    if (len < 4 || (buf[0] & 0xf0u) != 0x80u || buf[0] == 0x80u ||
        buf[1] != 0xa1u || buf[2] != 't')
        return false;
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf + 3, len - 3);
    return wire_mp_read_uint(&r, t) == 0;
}

int wire_msg_decode_next(const uint8_t *buf, size_t len, wire_msg *m,
                         size_t *used)
{
    memset(m, 0, sizeof *m);
    if (buf == NULL || len == 0)
        return -EPROTO;
    int rc = decode_fast(buf, len, m, used);
    if (rc <= 0) {
        if (rc < 0)
            memset(m, 0, sizeof *m);
        return rc;
    }
    /* Any other shape: find where the first map ends (checked as the
     * general path checks a whole message), then decode it alone. A
     * routing message opening with `t`, as every node writes it (a relay's
     * whole traffic), goes to its own decoder at once: what
     * wire_msg_decode() would add first (the same check again, and a walk
     * for `t`) the routing decoder does as it reads. */
    size_t n;
    uint64_t t;
    if (wire_mp_check_first(buf, len, WIRE_MAX_DEPTH, &n) != 0)
        return -EPROTO;
    if (t_first(buf, n, &t) && wire_route_type(t))
        rc = wire_route_decode(buf, n, t, m);
    else
        rc = wire_msg_decode(buf, n, m);
    if (rc == 0)
        *used = n;
    return rc;
}

/* The limits a DATA must meet to be encoded. */
static int data_check(const wire_data *d)
{
    if (d->kind > WIRE_K_ANYCAST)
        return -EINVAL;
    int grouped = d->kind == WIRE_K_GROUP || d->kind == WIRE_K_ANYCAST;
    if (grouped ? !str_ok(&d->group, 1, WIRE_MAX_GROUP) : d->group.len != 0)
        return -EINVAL;
    if ((d->has_ct && !str_ok(&d->ct, 0, WIRE_MAX_CT)) || !bytes_ok(&d->body))
        return -EINVAL;
    if (d->fragmented && d->size <= d->body.len)
        return -EINVAL;
    if (d->skip &&
        (d->kind != WIRE_K_UNICAST || d->fragmented || d->body.len != 0))
        return -EINVAL;
    return 0;
}

static int encode_data(wire_mp_writer *w, const wire_data *d)
{
    int rc = data_check(d);
    if (rc != 0)
        return rc;
    int grouped = d->kind == WIRE_K_GROUP || d->kind == WIRE_K_ANYCAST;
    uint32_t n = 6 + (uint32_t)grouped + (d->has_ct ? 1u : 0u) +
                 (d->fragmented ? 1u : 0u) + (d->skip ? 1u : 0u);
    wire_mp_write_map(w, n);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, WIRE_T_DATA);
    wire_mp_write_cstr(w, "id");
    wire_mp_write_bin(w, d->id, WIRE_ID_BYTES);
    wire_mp_write_cstr(w, "k");
    wire_mp_write_uint(w, d->kind);
    wire_mp_write_cstr(w, "seq");
    wire_mp_write_uint(w, d->seq);
    wire_mp_write_cstr(w, "ts");
    wire_mp_write_uint(w, d->ts);
    if (grouped) {
        wire_mp_write_cstr(w, "g");
        wire_mp_write_str(w, d->group.ptr, d->group.len);
    }
    if (d->has_ct) {
        wire_mp_write_cstr(w, "ct");
        wire_mp_write_str(w, d->ct.ptr, d->ct.len);
    }
    wire_mp_write_cstr(w, "body");
    wire_mp_write_bin(w, d->body.ptr, d->body.len);
    if (d->fragmented) {
        wire_mp_write_cstr(w, "size");
        wire_mp_write_uint(w, d->size);
    }
    if (d->skip) {
        wire_mp_write_cstr(w, "skip");
        wire_mp_write_bool(w, 1);
    }
    return 0;
}

static int encode_frag(wire_mp_writer *w, const wire_frag *f)
{
    if (f->data.len == 0 || !bytes_ok(&f->data))
        return -EINVAL;
    wire_mp_write_map(w, 4);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, WIRE_T_FRAG);
    wire_mp_write_cstr(w, "id");
    wire_mp_write_bin(w, f->id, WIRE_ID_BYTES);
    wire_mp_write_cstr(w, "off");
    wire_mp_write_uint(w, f->off);
    wire_mp_write_cstr(w, "data");
    wire_mp_write_bin(w, f->data.ptr, f->data.len);
    return 0;
}

static int encode_ping(wire_mp_writer *w, uint64_t t, const wire_ping *p)
{
    if (p->has_data &&
        (p->data.len > WIRE_MAX_PING_DATA || !bytes_ok(&p->data)))
        return -EINVAL;
    wire_mp_write_map(w, p->has_data ? 3 : 2);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, t);
    wire_mp_write_cstr(w, "n");
    wire_mp_write_uint(w, p->n);
    if (p->has_data) {
        wire_mp_write_cstr(w, "data");
        wire_mp_write_bin(w, p->data.ptr, p->data.len);
    }
    return 0;
}

static int encode_peers(wire_mp_writer *w, const wire_peers *p)
{
    if (p->count > WIRE_MAX_PEERS || (p->count > 0 && p->entries == NULL))
        return -EINVAL;
    for (uint32_t i = 0; i < p->count; i++) {
        const wire_peer_entry *e = &p->entries[i];
        if (e->id == NULL || e->addr == NULL ||
            (e->addr_len != 4 && e->addr_len != 16) || e->port == 0)
            return -EINVAL;
    }
    wire_mp_write_map(w, 2);
    wire_mp_write_cstr(w, "t");
    wire_mp_write_uint(w, WIRE_T_PEERS);
    wire_mp_write_cstr(w, "peers");
    wire_mp_write_array(w, p->count);
    for (uint32_t i = 0; i < p->count; i++) {
        const wire_peer_entry *e = &p->entries[i];
        wire_mp_write_array(w, 3);
        wire_mp_write_bin(w, e->id, WIRE_NODE_ID_BYTES);
        wire_mp_write_bin(w, e->addr, e->addr_len);
        wire_mp_write_uint(w, e->port);
    }
    return 0;
}

int wire_msg_encode(const wire_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    int rc = 0;
    switch (m->type) {
    case WIRE_T_DATA:
        rc = encode_data(&w, &m->u.data);
        break;
    case WIRE_T_FRAG:
        rc = encode_frag(&w, &m->u.frag);
        break;
    case WIRE_T_ACK:
        if (!m->u.ack.has_seq && !m->u.ack.has_id)
            return -EINVAL;
        wire_mp_write_map(&w, 1u + (m->u.ack.has_seq != 0) +
                                  (m->u.ack.has_id != 0));
        wire_mp_write_cstr(&w, "t");
        wire_mp_write_uint(&w, WIRE_T_ACK);
        if (m->u.ack.has_seq) {
            wire_mp_write_cstr(&w, "seq");
            wire_mp_write_uint(&w, m->u.ack.seq);
        }
        if (m->u.ack.has_id) {
            wire_mp_write_cstr(&w, "id");
            wire_mp_write_bin(&w, m->u.ack.id, WIRE_ID_BYTES);
        }
        break;
    case WIRE_T_PING:
    case WIRE_T_PONG:
        rc = encode_ping(&w, m->type, &m->u.ping);
        break;
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        if (!str_ok(&m->u.group.group, 1, WIRE_MAX_GROUP))
            return -EINVAL;
        wire_mp_write_map(&w, 2);
        wire_mp_write_cstr(&w, "t");
        wire_mp_write_uint(&w, m->type);
        wire_mp_write_cstr(&w, "g");
        wire_mp_write_str(&w, m->u.group.group.ptr, m->u.group.group.len);
        break;
    case WIRE_T_PEERS:
        rc = encode_peers(&w, &m->u.peers);
        break;
    case WIRE_T_BYE:
        if (m->u.bye.reason > WIRE_BYE_OTHER)
            return -EINVAL;
        wire_mp_write_map(&w, 2);
        wire_mp_write_cstr(&w, "t");
        wire_mp_write_uint(&w, WIRE_T_BYE);
        wire_mp_write_cstr(&w, "r");
        wire_mp_write_uint(&w, m->u.bye.reason);
        break;
    case WIRE_T_ROUTE:
    case WIRE_T_ROUTED:
    case WIRE_T_TRACE:
    case WIRE_T_TRACE_REPLY:
        rc = wire_route_encode(m, &w);
        break;
    case 30: /* area: scale (#13): an overlay map made by wire/overlay.c */
    case 31:
    case 32:
        if (m->u.raw.len > cap)
            return -EMSGSIZE;
        memcpy(buf, m->u.raw.ptr, m->u.raw.len);
        *len = m->u.raw.len;
        return 0;
    default:
        return -EINVAL;
    }
    if (rc != 0)
        return rc;
    return wire_mp_writer_finish(&w, len);
}

/* ---- the direct writer of DATA and FRAG (#18) ---- */

/* A cursor over the caller's buffer; ok turns false, for good, at the
 * first write that does not fit. Forms are msgpack's shortest, as
 * msgpack-c writes them (the unit tests compare the two). */
typedef struct dw {
    uint8_t *p;
    size_t left;
    bool ok;
} dw;

static uint8_t *dw_take(dw *w, size_t n)
{
    if (!w->ok || n > w->left) {
        w->ok = false;
        return NULL;
    }
    uint8_t *at = w->p;
    w->p += n;
    w->left -= n;
    return at;
}

static void dw_raw(dw *w, const void *b, size_t n)
{
    uint8_t *at = dw_take(w, n);
    if (at != NULL && n > 0)
        memcpy(at, b, n);
}

static void dw_be(dw *w, uint8_t tag, uint64_t v, unsigned bytes)
{
    uint8_t *at = dw_take(w, 1u + bytes);
    if (at == NULL)
        return;
    at[0] = tag;
    for (unsigned i = 0; i < bytes; i++)
        at[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static void dw_uint(dw *w, uint64_t v)
{
    if (v < 128) {
        uint8_t b = (uint8_t)v;
        dw_raw(w, &b, 1);
    } else if (v <= UINT8_MAX) {
        dw_be(w, 0xcc, v, 1);
    } else if (v <= UINT16_MAX) {
        dw_be(w, 0xcd, v, 2);
    } else if (v <= UINT32_MAX) {
        dw_be(w, 0xce, v, 4);
    } else {
        dw_be(w, 0xcf, v, 8);
    }
}

/* A str header and its bytes; str lengths here are under 256. */
static void dw_str(dw *w, const uint8_t *s, uint32_t len)
{
    if (len < 32) {
        uint8_t b = (uint8_t)(0xa0u | len);
        dw_raw(w, &b, 1);
    } else {
        dw_be(w, 0xd9, len, 1);
    }
    dw_raw(w, s, len);
}

static void dw_bin_head(dw *w, uint32_t len)
{
    if (len <= UINT8_MAX)
        dw_be(w, 0xc4, len, 1);
    else if (len <= UINT16_MAX)
        dw_be(w, 0xc5, len, 2);
    else
        dw_be(w, 0xc6, len, 4);
}

/* A fixed key: its fixstr header and name, as one literal. */
#define DW_KEY(w, lit) dw_raw((w), lit, sizeof lit - 1u)

static void dw_data(dw *w, const wire_data *d, uint8_t **hole)
{
    int grouped = d->kind == WIRE_K_GROUP || d->kind == WIRE_K_ANYCAST;
    uint8_t map =
        (uint8_t)(0x80u | (6u + (unsigned)grouped + (d->has_ct ? 1u : 0u) +
                           (d->fragmented ? 1u : 0u) + (d->skip ? 1u : 0u)));
    dw_raw(w, &map, 1);
    DW_KEY(w, "\xa1t\x01\xa2id\xc4\x10");
    dw_raw(w, d->id, WIRE_ID_BYTES);
    DW_KEY(w, "\xa1k");
    dw_uint(w, d->kind);
    DW_KEY(w, "\xa3seq");
    dw_uint(w, d->seq);
    DW_KEY(w, "\xa2ts");
    dw_uint(w, d->ts);
    if (grouped) {
        DW_KEY(w, "\xa1g");
        dw_str(w, d->group.ptr, d->group.len);
    }
    if (d->has_ct) {
        DW_KEY(w, "\xa2"
                  "ct");
        dw_str(w, d->ct.ptr, d->ct.len);
    }
    DW_KEY(w, "\xa4"
              "body");
    dw_bin_head(w, d->body.len);
    *hole = dw_take(w, d->body.len);
    if (d->fragmented) {
        DW_KEY(w, "\xa4size");
        dw_uint(w, d->size);
    }
    if (d->skip)
        DW_KEY(w, "\xa4skip\xc3");
}

static void dw_frag(dw *w, const wire_frag *f, uint8_t **hole)
{
    DW_KEY(w, "\x84\xa1t\x02\xa2id\xc4\x10");
    dw_raw(w, f->id, WIRE_ID_BYTES);
    DW_KEY(w, "\xa3off");
    dw_uint(w, f->off);
    DW_KEY(w, "\xa4"
              "data");
    dw_bin_head(w, f->data.len);
    *hole = dw_take(w, f->data.len);
}

int wire_msg_encode_hole(const wire_msg *m, uint8_t *buf, size_t cap,
                         size_t *len, size_t *hole)
{
    dw w = {buf, buf == NULL ? 0 : cap, true};
    uint8_t *at = NULL;
    if (m->type == WIRE_T_DATA) {
        int rc = data_check(&m->u.data);
        if (rc != 0)
            return rc;
        dw_data(&w, &m->u.data, &at);
    } else if (m->type == WIRE_T_FRAG) {
        if (m->u.frag.data.len == 0 || !bytes_ok(&m->u.frag.data))
            return -EINVAL;
        dw_frag(&w, &m->u.frag, &at);
    } else {
        return -EINVAL;
    }
    if (!w.ok)
        return -EMSGSIZE;
    *len = (size_t)(w.p - buf);
    *hole = (size_t)(at - buf);
    return 0;
}

size_t wire_data_bound(size_t group_len, size_t ct_len, size_t body_len)
{
    size_t n = WIRE_DATA_OVERHEAD;
    if (group_len > SIZE_MAX - n)
        return SIZE_MAX;
    n += group_len;
    if (ct_len > SIZE_MAX - n)
        return SIZE_MAX;
    n += ct_len;
    if (body_len > SIZE_MAX - n)
        return SIZE_MAX;
    return n + body_len;
}

size_t wire_msg_bound(const wire_msg *m)
{
    /* Every small map here is under 64 bytes besides its variable parts;
     * a PEERS entry is at most 3 + 34 + 18 + 3 bytes (array header, bin32,
     * bin16, uint16). */
    switch (m->type) {
    case WIRE_T_DATA:
        return wire_data_bound(m->u.data.group.len, m->u.data.ct.len,
                               m->u.data.body.len);
    case WIRE_T_FRAG:
        return WIRE_FRAG_OVERHEAD + m->u.frag.data.len;
    case WIRE_T_PING:
    case WIRE_T_PONG:
        return 64 + m->u.ping.data.len;
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        return 64 + m->u.group.group.len;
    case WIRE_T_PEERS:
        return 64 + (size_t)m->u.peers.count * 58;
    case WIRE_T_ACK:
        return 64;
    case WIRE_T_ROUTE:
    case WIRE_T_ROUTED:
    case WIRE_T_TRACE:
    case WIRE_T_TRACE_REPLY:
        return wire_route_bound(m);
    case 30: /* area: scale (#13): an overlay map, made already */
    case 31:
    case 32:
        return m->u.raw.len;
    default:
        return 64;
    }
}
