/* test_msg.c: the HELLO and transport message codec (wire/msg.h,
 * PROTOCOL.md sections 3.2, 4 and 5). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/msg.h"
#include "wire_alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int counting; /* allocations are really counted in this run */

static int setup(void **state)
{
    (void)state;
    counting = alloc_counting_works();
    return 0;
}

/* Every decode in this file goes through these, so every input, valid or
 * not, also shows that decoding does not allocate. */
static int decode_msg(const uint8_t *buf, size_t len, wire_msg *m)
{
    alloc_count_start();
    int rc = wire_msg_decode(buf, len, m);
    alloc_count_stop();
    if (counting)
        assert_int_equal(alloc_calls, 0);
    return rc;
}

static int decode_hello(const uint8_t *buf, size_t len, wire_hello *h)
{
    alloc_count_start();
    int rc = wire_hello_decode(buf, len, h);
    alloc_count_stop();
    if (counting)
        assert_int_equal(alloc_calls, 0);
    return rc;
}

/* What wire_mp_check() accepted, msgpack-c's unpacker reads whole. */
static void assert_msgpack_c_agrees(const uint8_t *buf, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return ret =
        msgpack_unpack_next(&u, (const char *)buf, len, &off);
    msgpack_unpacked_destroy(&u);
    assert_int_equal(ret, MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
}

/* ---- building maps by hand ---- */

enum { F_UINT, F_NEG, F_STR, F_BIN, F_RAW };

typedef struct field {
    const char *key;
    int kind;
    uint64_t u;
    const void *p;
    size_t n;
} field;

#define U(k, v)                                                                \
    {                                                                          \
        k, F_UINT, v, NULL, 0                                                  \
    }
#define NEG(k)                                                                 \
    {                                                                          \
        k, F_NEG, 0, NULL, 0                                                   \
    }
#define STR(k, s)                                                              \
    {                                                                          \
        k, F_STR, 0, s, sizeof(s) - 1                                          \
    }
#define STRN(k, s, n)                                                          \
    {                                                                          \
        k, F_STR, 0, s, n                                                      \
    }
#define BIN(k, b, n)                                                           \
    {                                                                          \
        k, F_BIN, 0, b, n                                                      \
    }
#define RAW(k, ...)                                                            \
    {                                                                          \
        k, F_RAW, 0, (const uint8_t[]){__VA_ARGS__},                           \
            sizeof((const uint8_t[]){__VA_ARGS__})                             \
    }
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static size_t build_map(uint8_t *out, size_t cap, const field *f, size_t nf)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, out, cap);
    wire_mp_write_map(&w, (uint32_t)nf);
    for (size_t i = 0; i < nf; i++) {
        wire_mp_write_cstr(&w, f[i].key);
        switch (f[i].kind) {
        case F_UINT:
            wire_mp_write_uint(&w, f[i].u);
            break;
        case F_NEG:
            (void)msgpack_pack_int64(&w.pk, -1);
            break;
        case F_STR:
            wire_mp_write_str(&w, f[i].p, f[i].n);
            break;
        case F_BIN:
            wire_mp_write_bin(&w, f[i].p, f[i].n);
            break;
        case F_RAW: /* msgpack bytes written as they are */
            (void)msgpack_pack_bin_body(&w.pk, f[i].p, f[i].n);
            break;
        }
    }
    size_t len;
    assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
    return len;
}

static const uint8_t id16[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                 8, 9, 10, 11, 12, 13, 14, 15};

static uint8_t buf[1 << 17], buf2[1 << 17];

/* The fields of a valid message of each type, for mutation. */
static const field data_f[] = {
    U("t", 1),
    BIN("id", id16, 16),
    U("k", 0),
    U("seq", 1),
    U("ts", 1700000000000000u),
    STR("ct", "text/plain"),
    BIN("body", "hi", 2),
};
static const field frag_f[] = {U("t", 2), BIN("id", id16, 16), U("off", 100),
                               BIN("data", "x", 1)};
static const field ack_f[] = {U("t", 3), U("seq", 42)};
static const field ping_f[] = {U("t", 4), U("n", 7), BIN("data", "echo", 4)};
static const field pong_f[] = {U("t", 5), U("n", 7), BIN("data", "echo", 4)};
static const field join_f[] = {U("t", 6), STR("g", "ops")};
static const field leave_f[] = {U("t", 7), STR("g", "ops")};
static const field bye_f[] = {U("t", 9), U("r", 1)};
#define PEER_ENTRY                                                             \
    0x93, 0xc4, 0x20, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,    \
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0xc4,  \
        0x04, 127, 0, 0, 1, 0xcd, 0xb7, 0x98
static const field peers_f[] = {U("t", 8), RAW("peers", 0x91, PEER_ENTRY)};
static const field hello_f[] = {
    U("v", 1),
    STR("name", "alpha"),
    U("port", 47000),
    U("boot", 3),
    U("max", 1u << 24),
    U("epoch", 0x1122334455667788u),
    RAW("groups", 0x92, 0xa3, 'o', 'p', 's', 0xa3, 'l', 'a', 'b'),
};

typedef struct msg_shape {
    const char *name;
    const field *f;
    size_t nf;
    uint32_t optional; /* bits of fields that may be left out */
    int hello;
} msg_shape;

static const msg_shape shapes[] = {
    {"DATA", data_f, NFIELDS(data_f), 1u << 5, 0},
    {"FRAG", frag_f, NFIELDS(frag_f), 0, 0},
    {"ACK", ack_f, NFIELDS(ack_f), 0, 0},
    {"PING", ping_f, NFIELDS(ping_f), 1u << 2, 0},
    {"PONG", pong_f, NFIELDS(pong_f), 1u << 2, 0},
    {"JOIN", join_f, NFIELDS(join_f), 0, 0},
    {"LEAVE", leave_f, NFIELDS(leave_f), 0, 0},
    {"PEERS", peers_f, NFIELDS(peers_f), 0, 0},
    {"BYE", bye_f, NFIELDS(bye_f), 0, 0},
    {"HELLO", hello_f, NFIELDS(hello_f), 0, 1},
};

static int decode_shape(const msg_shape *s, const uint8_t *in, size_t len)
{
    if (s->hello) {
        wire_hello h;
        return decode_hello(in, len, &h);
    }
    wire_msg m;
    return decode_msg(in, len, &m);
}

/* Decodes the map both ways: as built (confab writes `t` first, which the
 * one-pass decoder takes) and with its first `t` moved to the end (the
 * general path); #18: the two must accept and refuse alike. */
static int decode_fields(const msg_shape *s, const field *f, size_t nf)
{
    size_t len = build_map(buf, sizeof buf, f, nf);
    int rc = decode_shape(s, buf, len);
    field moved[40];
    if (nf == 0 || nf > NFIELDS(moved) || strcmp(f[0].key, "t") != 0)
        return rc;
    memcpy(moved, f + 1, (nf - 1) * sizeof f[0]);
    moved[nf - 1] = f[0];
    len = build_map(buf, sizeof buf, moved, nf);
    int rc2 = decode_shape(s, buf, len);
    if (rc2 != rc)
        fail_msg("%s: t first %d, t last %d", s->name, rc, rc2);
    return rc;
}

/* ---- round trips ---- */

static void roundtrip(const wire_msg *m, wire_msg *out)
{
    size_t len, len2;
    assert_int_equal(wire_msg_encode(m, buf, sizeof buf, &len), 0);
    assert_int_equal(wire_mp_check(buf, len, WIRE_MAX_DEPTH), 0);
    assert_msgpack_c_agrees(buf, len);
    assert_int_equal(decode_msg(buf, len, out), 0);
    assert_true(out->type == m->type);
    /* Encoding what was decoded gives the same bytes. A decoded PEERS
     * gives its entries through an iterator; the encoder takes an array. */
    wire_msg again = *out;
    static wire_peer_entry entries[WIRE_MAX_PEERS];
    if (out->type == WIRE_T_PEERS) {
        wire_iter it = out->u.peers.iter;
        uint32_t n = 0;
        while (n < WIRE_MAX_PEERS && wire_peers_next(&it, &entries[n]))
            n++;
        assert_int_equal(n, out->u.peers.count);
        again.u.peers.entries = entries;
    }
    assert_int_equal(wire_msg_encode(&again, buf2, sizeof buf2, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(buf, buf2, len);
    /* And every shorter buffer is refused cleanly. */
    for (size_t cap = 0; cap < len; cap += 1 + cap / 8)
        assert_int_equal(wire_msg_encode(m, buf2, cap, &len2), -EMSGSIZE);
    assert_int_equal(wire_msg_encode(m, buf2, len - 1, &len2), -EMSGSIZE);
}

static wire_bytes bytes_of(const char *s)
{
    return (wire_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static void assert_bytes_equal(wire_bytes a, wire_bytes b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void test_msg_roundtrip_data(void **state)
{
    (void)state;
    static uint8_t body[70000], name64[64], ct128[128];
    memset(body, 0xab, sizeof body);
    memset(name64, 'g', sizeof name64);
    memset(ct128, 'c', sizeof ct128);
    struct {
        uint8_t kind;
        wire_bytes group;
        int has_ct;
        wire_bytes ct;
        uint32_t body_len;
        int fragmented;
        uint64_t size;
    } cases[] = {
        {WIRE_K_UNICAST, {NULL, 0}, 1, bytes_of("text/plain"), 2, 0, 0},
        {WIRE_K_BROADCAST, {NULL, 0}, 0, {NULL, 0}, 0, 0, 0},
        {WIRE_K_GROUP, bytes_of("ops"), 1, {ct128, 128}, 300, 0, 0},
        {WIRE_K_ANYCAST, {name64, 64}, 1, {NULL, 0}, 65000, 0, 0},
        {WIRE_K_UNICAST, {NULL, 0}, 0, {NULL, 0}, 65000, 1, 16u << 20},
        {WIRE_K_GROUP,
         bytes_of("\xc3\xa9t\xc3\xa9"),
         0,
         {NULL, 0},
         1,
         1,
         UINT64_MAX},
    };
    for (size_t i = 0; i < NFIELDS(cases); i++) {
        wire_msg m, out;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_DATA;
        wire_data *d = &m.u.data;
        memcpy(d->id, id16, sizeof d->id);
        d->kind = cases[i].kind;
        d->seq = i + 1;
        d->ts = 1700000000000000u + i;
        d->group = cases[i].group;
        d->has_ct = cases[i].has_ct;
        d->ct = cases[i].ct;
        d->body = (wire_bytes){body, cases[i].body_len};
        d->fragmented = cases[i].fragmented;
        d->size = cases[i].size;
        roundtrip(&m, &out);
        const wire_data *o = &out.u.data;
        assert_memory_equal(o->id, id16, 16);
        assert_int_equal(o->kind, d->kind);
        assert_true(o->seq == d->seq && o->ts == d->ts);
        assert_bytes_equal(o->group, d->group);
        assert_int_equal(o->has_ct, d->has_ct);
        if (d->has_ct)
            assert_bytes_equal(o->ct, d->ct);
        assert_bytes_equal(o->body, d->body);
        assert_int_equal(o->fragmented, d->fragmented);
        assert_true(o->size == (d->fragmented ? d->size : d->body.len));
    }
}

/* Encodes m both ways: the msgpack-c writer, and the direct one with the
 * body filled in after; the bytes must be the same, and too small a
 * buffer fails the same way. */
static void assert_hole_same(const wire_msg *m)
{
    static uint8_t a[71000], b[71000];
    size_t alen = 0, blen = 0, hole = 0;
    assert_int_equal(wire_msg_encode(m, a, sizeof a, &alen), 0);
    memset(b, 0x5a, sizeof b);
    assert_int_equal(wire_msg_encode_hole(m, b, sizeof b, &blen, &hole), 0);
    const wire_bytes *body =
        m->type == WIRE_T_DATA ? &m->u.data.body : &m->u.frag.data;
    assert_true(hole + body->len <= blen);
    if (body->len > 0)
        memcpy(b + hole, body->ptr, body->len);
    assert_int_equal(blen, alen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(wire_msg_encode_hole(m, b, alen - 1, &blen, &hole),
                     -EMSGSIZE);
}

/* The direct writer of the per-message path (#18) writes what msgpack-c
 * writes, in every form: fixint to uint 64, fixstr and str 8, bin 8 to
 * bin 32, with and without group, content type, size and skip. */
static void test_msg_encode_hole_same_bytes(void **state)
{
    (void)state;
    static uint8_t body[70000], g64[64], ct128[128];
    memset(body, 0xab, sizeof body);
    memset(g64, 'g', sizeof g64);
    memset(ct128, 'c', sizeof ct128);
    static const uint64_t ints[] = {0,     1,          127,        128,
                                    255,   256,        65535,      65536,
                                    70000, UINT32_MAX, 1ull << 32, UINT64_MAX};
    static const uint32_t lens[] = {0, 1, 255, 256, 65535, 65536, 70000};
    static const uint32_t slen[] = {0, 1, 31, 32, 64, 128};
    size_t ni = sizeof ints / sizeof ints[0];
    for (uint8_t kind = 0; kind <= WIRE_K_ANYCAST; kind++)
        for (size_t i = 0; i < ni; i++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
                for (size_t s = 0; s < sizeof slen / sizeof slen[0]; s++) {
                    wire_msg m;
                    memset(&m, 0, sizeof m);
                    m.type = WIRE_T_DATA;
                    wire_data *d = &m.u.data;
                    memcpy(d->id, id16, sizeof d->id);
                    d->kind = kind;
                    d->seq = ints[i];
                    d->ts = ints[ni - 1 - i];
                    if (kind >= WIRE_K_GROUP)
                        d->group = (wire_bytes){g64, slen[s] == 0   ? 1
                                                     : slen[s] > 64 ? 64
                                                                    : slen[s]};
                    if (slen[s] > 64 || s % 2 == 0) {
                        d->has_ct = 1;
                        d->ct = (wire_bytes){ct128, slen[s]};
                    }
                    d->body = (wire_bytes){body, lens[l]};
                    d->fragmented = i % 3 == 0;
                    d->size = (uint64_t)lens[l] + 1 + ints[i] / 2;
                    if (d->size <= lens[l])
                        d->size = (uint64_t)lens[l] + 1;
                    d->skip = kind == WIRE_K_UNICAST && lens[l] == 0 &&
                              !d->fragmented && s == 1;
                    assert_hole_same(&m);
                }
    for (size_t i = 0; i < ni; i++)
        for (size_t l = 1; l < sizeof lens / sizeof lens[0]; l++) {
            wire_msg m;
            memset(&m, 0, sizeof m);
            m.type = WIRE_T_FRAG;
            memcpy(m.u.frag.id, id16, 16);
            m.u.frag.off = ints[i];
            m.u.frag.data = (wire_bytes){body, lens[l]};
            assert_hole_same(&m);
        }
    /* Other types, and what breaks a limit, are refused as by encode. */
    wire_msg m;
    size_t len, hole;
    uint8_t small[64];
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    m.u.ack.has_seq = 1;
    assert_int_equal(wire_msg_encode_hole(&m, small, sizeof small, &len, &hole),
                     -EINVAL);
    m.type = WIRE_T_FRAG; /* an empty fragment */
    assert_int_equal(wire_msg_encode_hole(&m, small, sizeof small, &len, &hole),
                     -EINVAL);
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_DATA;
    m.u.data.kind = WIRE_K_GROUP; /* no group */
    assert_int_equal(wire_msg_encode_hole(&m, small, sizeof small, &len, &hole),
                     -EINVAL);
}

static void test_msg_roundtrip_frag(void **state)
{
    (void)state;
    wire_msg m, out;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_FRAG;
    memcpy(m.u.frag.id, id16, 16);
    m.u.frag.off = 65000;
    m.u.frag.data = bytes_of("next part");
    roundtrip(&m, &out);
    assert_memory_equal(out.u.frag.id, id16, 16);
    assert_true(out.u.frag.off == 65000);
    assert_bytes_equal(out.u.frag.data, m.u.frag.data);
}

static void test_msg_roundtrip_ack_bye(void **state)
{
    (void)state;
    wire_msg m, out;
    const uint64_t seqs[] = {0, 1, 127, 128, 65536, UINT64_MAX};
    for (size_t i = 0; i < NFIELDS(seqs); i++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_ACK;
        m.u.ack.has_seq = 1;
        m.u.ack.seq = seqs[i];
        roundtrip(&m, &out);
        assert_true(out.u.ack.has_seq);
        assert_false(out.u.ack.has_id);
        assert_true(out.u.ack.seq == seqs[i]);
    }
    /* By id alone (an anycast), and both at once. */
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    m.u.ack.has_id = 1;
    memset(m.u.ack.id, 0xab, WIRE_ID_BYTES);
    roundtrip(&m, &out);
    assert_true(out.u.ack.has_id);
    assert_false(out.u.ack.has_seq);
    assert_memory_equal(out.u.ack.id, m.u.ack.id, WIRE_ID_BYTES);
    m.u.ack.has_seq = 1;
    m.u.ack.seq = 9;
    roundtrip(&m, &out);
    assert_true(out.u.ack.has_id && out.u.ack.has_seq && out.u.ack.seq == 9);
    /* Neither is no ACK at all. */
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    uint8_t small[64];
    size_t len;
    assert_int_equal(wire_msg_encode(&m, small, sizeof small, &len), -EINVAL);
    static const uint8_t bare[] = {0x81, 0xa1, 't', 0x03};
    assert_int_equal(wire_msg_decode(bare, sizeof bare, &out), -EPROTO);
    /* An id of the wrong size is refused. */
    static const uint8_t short_id[] = {0x82, 0xa1, 't',  0x03, 0xa2, 'i',
                                       'd',  0xc4, 0x02, 1,    2};
    assert_int_equal(wire_msg_decode(short_id, sizeof short_id, &out), -EPROTO);
    for (uint64_t r = 0; r <= WIRE_BYE_OTHER; r++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_BYE;
        m.u.bye.reason = r;
        roundtrip(&m, &out);
        assert_true(out.u.bye.reason == r);
    }
}

static void test_msg_roundtrip_ping_pong(void **state)
{
    (void)state;
    static uint8_t echo[WIRE_MAX_PING_DATA];
    memset(echo, 0x5a, sizeof echo);
    const uint32_t lens[] = {0, 1, WIRE_MAX_PING_DATA};
    for (uint64_t t = WIRE_T_PING; t <= WIRE_T_PONG; t++) {
        wire_msg m, out;
        memset(&m, 0, sizeof m);
        m.type = t;
        m.u.ping.n = 99;
        roundtrip(&m, &out);
        assert_true(out.u.ping.n == 99);
        assert_false(out.u.ping.has_data);
        for (size_t i = 0; i < NFIELDS(lens); i++) {
            m.u.ping.has_data = 1;
            m.u.ping.data = (wire_bytes){echo, lens[i]};
            roundtrip(&m, &out);
            assert_true(out.u.ping.has_data);
            assert_bytes_equal(out.u.ping.data, m.u.ping.data);
        }
    }
}

static void test_msg_roundtrip_join_leave(void **state)
{
    (void)state;
    for (uint64_t t = WIRE_T_JOIN; t <= WIRE_T_LEAVE; t++) {
        wire_msg m, out;
        memset(&m, 0, sizeof m);
        m.type = t;
        m.u.group.group = bytes_of("lab");
        roundtrip(&m, &out);
        assert_bytes_equal(out.u.group.group, m.u.group.group);
    }
}

static void test_msg_roundtrip_peers(void **state)
{
    (void)state;
    static wire_peer_entry entries[WIRE_MAX_PEERS];
    static uint8_t ids[WIRE_MAX_PEERS][32];
    static const uint8_t v4[4] = {192, 168, 1, 7};
    static const uint8_t v6[16] = {0xfe, 0x80, [15] = 1};
    for (uint32_t i = 0; i < WIRE_MAX_PEERS; i++) {
        memset(ids[i], (int)(i & 0xff), 32);
        ids[i][0] = (uint8_t)(i >> 8);
        entries[i].id = ids[i];
        entries[i].addr = i % 2 ? v6 : v4;
        entries[i].addr_len = i % 2 ? 16 : 4;
        entries[i].port = (uint16_t)(1 + i * 63);
    }
    const uint32_t counts[] = {0, 1, 2, WIRE_MAX_PEERS};
    for (size_t c = 0; c < NFIELDS(counts); c++) {
        wire_msg m, out;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_PEERS;
        m.u.peers.count = counts[c];
        m.u.peers.entries = entries;
        roundtrip(&m, &out);
        assert_int_equal(out.u.peers.count, counts[c]);
        wire_iter it = out.u.peers.iter;
        wire_peer_entry e;
        uint32_t n = 0;
        while (wire_peers_next(&it, &e)) {
            assert_memory_equal(e.id, ids[n], 32);
            assert_int_equal(e.addr_len, entries[n].addr_len);
            assert_memory_equal(e.addr, entries[n].addr, e.addr_len);
            assert_int_equal(e.port, entries[n].port);
            n++;
        }
        assert_int_equal(n, counts[c]);
        assert_int_equal(wire_peers_next(&it, &e), 0);
    }
}

static void test_msg_hello_roundtrip(void **state)
{
    (void)state;
    static uint8_t names[WIRE_MAX_GROUPS][WIRE_MAX_GROUP];
    static wire_bytes groups[WIRE_MAX_GROUPS];
    for (uint32_t i = 0; i < WIRE_MAX_GROUPS; i++) {
        memset(names[i], 'a' + (int)(i % 26), WIRE_MAX_GROUP);
        names[i][0] = (uint8_t)('A' + i % 26);
        names[i][1] = (uint8_t)('A' + i / 26);
        groups[i] = (wire_bytes){names[i], 1 + i % WIRE_MAX_GROUP};
    }
    static uint8_t name64[WIRE_MAX_NAME];
    memset(name64, 'n', sizeof name64);
    const struct {
        wire_bytes name;
        uint16_t port;
        uint64_t max;
        uint32_t ngroups;
    } cases[] = {
        {bytes_of("alpha"), 47000, 16u << 20, 2},
        {{NULL, 0}, 0, WIRE_MIN_MAX_BODY, 0},
        {{name64, 64}, 65535, UINT32_MAX, WIRE_MAX_GROUPS},
    };
    for (size_t i = 0; i < NFIELDS(cases); i++) {
        wire_hello h, out;
        memset(&h, 0, sizeof h);
        h.version = WIRE_VERSION;
        h.name = cases[i].name;
        h.port = cases[i].port;
        h.boot = UINT64_MAX - i;
        h.max = cases[i].max;
        h.ngroups = cases[i].ngroups;
        h.groups = groups;
        size_t len, len2;
        assert_int_equal(wire_hello_encode(&h, buf, sizeof buf, &len), 0);
        assert_msgpack_c_agrees(buf, len);
        assert_int_equal(decode_hello(buf, len, &out), 0);
        assert_true(out.version == WIRE_VERSION);
        assert_bytes_equal(out.name, h.name);
        assert_int_equal(out.port, h.port);
        assert_true(out.boot == h.boot && out.max == h.max);
        assert_int_equal(out.ngroups, h.ngroups);
        static wire_bytes got[WIRE_MAX_GROUPS];
        wire_iter it = out.group_iter;
        uint32_t n = 0;
        while (wire_groups_next(&it, &got[n])) {
            assert_bytes_equal(got[n], groups[n]);
            n++;
        }
        assert_int_equal(n, h.ngroups);
        /* Re-encoding the decoded HELLO gives the same bytes. */
        out.groups = got;
        assert_int_equal(wire_hello_encode(&out, buf2, sizeof buf2, &len2), 0);
        assert_int_equal(len2, len);
        assert_memory_equal(buf, buf2, len);
        for (size_t cap = 0; cap < len; cap += 1 + cap / 8)
            assert_int_equal(wire_hello_encode(&h, buf2, cap, &len2),
                             -EMSGSIZE);
    }
}

/* ---- what the encoders write ---- */

static void test_msg_encode_exact_bytes(void **state)
{
    (void)state;
    wire_msg m;
    size_t len;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    m.u.ack.has_seq = 1;
    m.u.ack.seq = 300;
    assert_int_equal(wire_msg_encode(&m, buf, sizeof buf, &len), 0);
    const uint8_t ack[] = {0x82, 0xa1, 't',  0x03, 0xa3, 's',
                           'e',  'q',  0xcd, 0x01, 0x2c};
    assert_int_equal(len, sizeof ack);
    assert_memory_equal(buf, ack, sizeof ack);

    /* A DATA with every key: keys in the order of the PROTOCOL.md table. */
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_DATA;
    m.u.data.kind = WIRE_K_GROUP;
    m.u.data.group = bytes_of("g1");
    m.u.data.has_ct = 1;
    m.u.data.ct = bytes_of("");
    m.u.data.body = bytes_of("b");
    m.u.data.fragmented = 1;
    m.u.data.size = 2;
    assert_int_equal(wire_msg_encode(&m, buf, sizeof buf, &len), 0);
    const char *order[] = {"t", "id", "k",    "seq", "ts",
                           "g", "ct", "body", "size"};
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint32_t n;
    assert_int_equal(wire_mp_read_map(&r, &n), 0);
    assert_int_equal(n, NFIELDS(order));
    for (size_t i = 0; i < NFIELDS(order); i++) {
        const uint8_t *k;
        uint32_t klen;
        assert_int_equal(wire_mp_read_str(&r, &k, &klen), 0);
        assert_int_equal(klen, strlen(order[i]));
        assert_memory_equal(k, order[i], klen);
        assert_int_equal(wire_mp_skip(&r), 0);
    }
}

static void test_msg_encode_rejects_out_of_range(void **state)
{
    (void)state;
    static uint8_t big[2000];
    memset(big, 'x', sizeof big);
    const uint8_t bad_utf8[] = {'a', 0xc0, 0x80};
    wire_msg m;
    size_t len;
#define EXPECT_EINVAL()                                                        \
    assert_int_equal(wire_msg_encode(&m, buf, sizeof buf, &len), -EINVAL)
#define RESET(t)                                                               \
    do {                                                                       \
        memset(&m, 0, sizeof m);                                               \
        m.type = (t);                                                          \
    } while (0)

    RESET(0);
    EXPECT_EINVAL();
    RESET(19); /* 10 and 11 are routing's (wire/route.c) */
    EXPECT_EINVAL();

    RESET(WIRE_T_DATA);
    m.u.data.kind = 4;
    EXPECT_EINVAL();
    RESET(WIRE_T_DATA);
    m.u.data.kind = WIRE_K_GROUP; /* no group */
    EXPECT_EINVAL();
    m.u.data.group = (wire_bytes){big, 65};
    EXPECT_EINVAL();
    m.u.data.group = (wire_bytes){bad_utf8, sizeof bad_utf8};
    EXPECT_EINVAL();
    m.u.data.group = (wire_bytes){NULL, 3};
    EXPECT_EINVAL();
    RESET(WIRE_T_DATA);
    m.u.data.kind = WIRE_K_BROADCAST;
    m.u.data.group = bytes_of("ops"); /* a group on a broadcast */
    EXPECT_EINVAL();
    RESET(WIRE_T_DATA);
    m.u.data.has_ct = 1;
    m.u.data.ct = (wire_bytes){big, 129};
    EXPECT_EINVAL();
    m.u.data.ct = (wire_bytes){bad_utf8, sizeof bad_utf8};
    EXPECT_EINVAL();
    RESET(WIRE_T_DATA);
    m.u.data.body = bytes_of("abc");
    m.u.data.fragmented = 1;
    m.u.data.size = 3; /* size must exceed the body */
    EXPECT_EINVAL();
    RESET(WIRE_T_DATA);
    m.u.data.body = (wire_bytes){NULL, 5};
    EXPECT_EINVAL();

    RESET(WIRE_T_FRAG); /* empty data */
    EXPECT_EINVAL();
    RESET(WIRE_T_PING);
    m.u.ping.has_data = 1;
    m.u.ping.data = (wire_bytes){big, WIRE_MAX_PING_DATA + 1};
    EXPECT_EINVAL();
    RESET(WIRE_T_JOIN); /* empty group */
    EXPECT_EINVAL();
    RESET(WIRE_T_LEAVE);
    m.u.group.group = (wire_bytes){big, 65};
    EXPECT_EINVAL();
    RESET(WIRE_T_BYE);
    m.u.bye.reason = 3;
    EXPECT_EINVAL();

    wire_peer_entry e = {id16, id16, 4, 1};
    RESET(WIRE_T_PEERS);
    m.u.peers.count = WIRE_MAX_PEERS + 1;
    m.u.peers.entries = &e;
    EXPECT_EINVAL();
    m.u.peers.count = 1;
    e.addr_len = 6;
    EXPECT_EINVAL();
    e.addr_len = 16;
    e.port = 0;
    EXPECT_EINVAL();
    e.port = 1;
    e.id = NULL;
    EXPECT_EINVAL();
    m.u.peers.entries = NULL;
    EXPECT_EINVAL();

    wire_hello h;
    wire_bytes g[WIRE_MAX_GROUPS + 1];
    for (size_t i = 0; i < NFIELDS(g); i++)
        g[i] = bytes_of("ops");
#define HELLO_EINVAL()                                                         \
    assert_int_equal(wire_hello_encode(&h, buf, sizeof buf, &len), -EINVAL)
    memset(&h, 0, sizeof h);
    h.max = WIRE_MIN_MAX_BODY - 1;
    HELLO_EINVAL();
    h.max = (uint64_t)UINT32_MAX + 1;
    HELLO_EINVAL();
    h.max = WIRE_MIN_MAX_BODY;
    assert_int_equal(wire_hello_encode(&h, buf, sizeof buf, &len), 0);
    h.name = (wire_bytes){big, 65};
    HELLO_EINVAL();
    h.name = (wire_bytes){bad_utf8, sizeof bad_utf8};
    HELLO_EINVAL();
    h.name = bytes_of("ok");
    h.ngroups = WIRE_MAX_GROUPS + 1;
    h.groups = g;
    HELLO_EINVAL();
    h.ngroups = 2;
    g[1] = (wire_bytes){big, 0};
    HELLO_EINVAL();
    g[1] = (wire_bytes){big, 65};
    HELLO_EINVAL();
    g[1] = (wire_bytes){bad_utf8, sizeof bad_utf8};
    HELLO_EINVAL();
    h.groups = NULL;
    HELLO_EINVAL();
}

static void test_msg_bounds(void **state)
{
    (void)state;
    static uint8_t body[70000], g[64], ct[128];
    memset(g, 'g', sizeof g);
    memset(ct, 'c', sizeof ct);
    wire_msg m;
    size_t len;
    /* The largest DATA: every 64-bit field at its widest, every option. */
    const uint32_t body_lens[] = {0, 255, 256, 65535, 65536, 70000};
    for (size_t i = 0; i < NFIELDS(body_lens); i++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_DATA;
        m.u.data.kind = WIRE_K_ANYCAST;
        m.u.data.seq = m.u.data.ts = UINT64_MAX;
        m.u.data.group = (wire_bytes){g, sizeof g};
        m.u.data.has_ct = 1;
        m.u.data.ct = (wire_bytes){ct, sizeof ct};
        m.u.data.body = (wire_bytes){body, body_lens[i]};
        m.u.data.fragmented = 1;
        m.u.data.size = UINT64_MAX;
        assert_int_equal(wire_msg_encode(&m, buf, sizeof buf, &len), 0);
        assert_true(len <= wire_data_bound(sizeof g, sizeof ct, body_lens[i]));
        assert_true(len - sizeof g - sizeof ct - body_lens[i] <=
                    WIRE_DATA_OVERHEAD);

        memset(&m, 0, sizeof m);
        m.type = WIRE_T_FRAG;
        m.u.frag.off = UINT64_MAX;
        m.u.frag.data = (wire_bytes){body, body_lens[i] ? body_lens[i] : 1};
        assert_int_equal(wire_msg_encode(&m, buf, sizeof buf, &len), 0);
        assert_true(len - m.u.frag.data.len <= WIRE_FRAG_OVERHEAD);
    }
    assert_true(wire_data_bound(SIZE_MAX, 1, 1) == SIZE_MAX);
    assert_true(wire_data_bound(1, SIZE_MAX - 10, 1) == SIZE_MAX);
    assert_true(wire_data_bound(0, 0, SIZE_MAX) == SIZE_MAX);
    assert_int_equal(wire_data_bound(1, 2, 3), WIRE_DATA_OVERHEAD + 6);
}

/* wire_msg_bound() is an upper bound for every type at its widest. */
static void test_msg_bound_holds(void **state)
{
    (void)state;
    static uint8_t out[80000], data[1024], g[64];
    static uint8_t ids[WIRE_MAX_PEERS][WIRE_NODE_ID_BYTES];
    static uint8_t addrs[WIRE_MAX_PEERS][16];
    static wire_peer_entry e[WIRE_MAX_PEERS];
    memset(g, 'g', sizeof g);
    for (uint32_t i = 0; i < WIRE_MAX_PEERS; i++) {
        e[i].id = ids[i];
        e[i].addr = addrs[i];
        e[i].addr_len = 16;
        e[i].port = 65535;
    }
    wire_msg m;
    size_t len;
    const uint64_t ping_types[] = {WIRE_T_PING, WIRE_T_PONG};
    for (size_t t = 0; t < 2; t++) {
        memset(&m, 0, sizeof m);
        m.type = ping_types[t];
        m.u.ping.n = UINT64_MAX;
        m.u.ping.has_data = 1;
        m.u.ping.data = (wire_bytes){data, sizeof data};
        assert_int_equal(wire_msg_encode(&m, out, sizeof out, &len), 0);
        assert_true(len <= wire_msg_bound(&m));
    }
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_JOIN;
    m.u.group.group = (wire_bytes){g, sizeof g};
    assert_int_equal(wire_msg_encode(&m, out, sizeof out, &len), 0);
    assert_true(len <= wire_msg_bound(&m));
    const uint32_t counts[] = {0, 1, 15, 16, 64, WIRE_MAX_PEERS};
    for (size_t i = 0; i < NFIELDS(counts); i++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_PEERS;
        m.u.peers.count = counts[i];
        m.u.peers.entries = e;
        assert_int_equal(wire_msg_encode(&m, out, sizeof out, &len), 0);
        assert_true(len <= wire_msg_bound(&m));
    }
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ACK;
    m.u.ack.has_seq = m.u.ack.has_id = 1;
    m.u.ack.seq = UINT64_MAX;
    assert_int_equal(wire_msg_encode(&m, out, sizeof out, &len), 0);
    assert_true(len <= wire_msg_bound(&m));
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_BYE;
    m.u.bye.reason = 2;
    assert_int_equal(wire_msg_encode(&m, out, sizeof out, &len), 0);
    assert_true(len <= wire_msg_bound(&m));
}

/* skip: an expired unicast's place. Only for kind 0, empty, whole. */
static void test_msg_data_skip(void **state)
{
    (void)state;
    wire_msg m, out;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_DATA;
    m.u.data.kind = WIRE_K_UNICAST;
    m.u.data.seq = 7;
    m.u.data.skip = 1;
    roundtrip(&m, &out);
    assert_true(out.u.data.skip);
    assert_true(out.u.data.seq == 7);
    assert_int_equal(out.u.data.body.len, 0);
    uint8_t b[128];
    size_t len;
    m.u.data.body = (wire_bytes){(const uint8_t *)"x", 1};
    assert_int_equal(wire_msg_encode(&m, b, sizeof b, &len), -EINVAL);
    m.u.data.body = (wire_bytes){NULL, 0};
    m.u.data.kind = WIRE_K_BROADCAST;
    assert_int_equal(wire_msg_encode(&m, b, sizeof b, &len), -EINVAL);
    /* Decoding refuses the same shapes. */
    m.u.data.kind = WIRE_K_UNICAST;
    m.u.data.skip = 0;
    m.u.data.body = (wire_bytes){(const uint8_t *)"x", 1};
    assert_int_equal(wire_msg_encode(&m, b, sizeof b - 8, &len), 0);
    /* Append "skip": true to the map: bump the count, add the pair. */
    assert_true(b[0] >= 0x80 && b[0] < 0x8f);
    b[0]++;
    memcpy(b + len, "\xa4skip\xc3", 6);
    assert_int_equal(wire_msg_decode(b, len + 6, &out), -EPROTO);
    /* skip false is no skip. */
    memcpy(b + len, "\xa4skip\xc2", 6);
    assert_int_equal(wire_msg_decode(b, len + 6, &out), 0);
    assert_false(out.u.data.skip);
}

static void test_msg_type_known(void **state)
{
    (void)state;
    assert_false(wire_msg_type_known(0));
    for (uint64_t t = 1; t <= 9; t++)
        assert_true(wire_msg_type_known(t));
    assert_false(wire_msg_type_known(10));
    assert_false(wire_msg_type_known(UINT64_MAX));
}

/* ---- what the decoders refuse ---- */

static void test_msg_decode_valid_shapes(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        if (decode_fields(&shapes[s], shapes[s].f, shapes[s].nf) != 0)
            fail_msg("%s rejected", shapes[s].name);
        /* Key order does not matter. */
        field rev[16];
        for (size_t i = 0; i < shapes[s].nf; i++)
            rev[i] = shapes[s].f[shapes[s].nf - 1 - i];
        if (decode_fields(&shapes[s], rev, shapes[s].nf) != 0)
            fail_msg("%s reversed rejected", shapes[s].name);
    }
}

static void test_msg_decode_missing_required(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        for (size_t drop = 0; drop < shapes[s].nf; drop++) {
            field f[16];
            size_t n = 0;
            for (size_t i = 0; i < shapes[s].nf; i++)
                if (i != drop)
                    f[n++] = shapes[s].f[i];
            int want = (shapes[s].optional >> drop) & 1 ? 0 : -EPROTO;
            if (decode_fields(&shapes[s], f, n) != want)
                fail_msg("%s without %s", shapes[s].name,
                         shapes[s].f[drop].key);
        }
    }
}

static void test_msg_decode_wrong_types(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        for (size_t bad = 0; bad < shapes[s].nf; bad++) {
            field f[16];
            memcpy(f, shapes[s].f, shapes[s].nf * sizeof f[0]);
            const field orig = f[bad];
            /* Each value replaced by each other type. */
            const field others[] = {
                U(orig.key, 1),
                NEG(orig.key),
                STR(orig.key, "1"),
                BIN(orig.key, "1", 1),
                RAW(orig.key, 0xc0),
                RAW(orig.key, 0xc3),
                RAW(orig.key, 0x90),
                RAW(orig.key, 0x80),
                RAW(orig.key, 0xca, 0x3f, 0x80, 0, 0),
            };
            for (size_t o = 0; o < NFIELDS(others); o++) {
                if (others[o].kind == orig.kind && orig.kind != F_RAW)
                    continue;
                /* groups and peers may be empty arrays. */
                if (orig.kind == F_RAW && o == 6)
                    continue;
                f[bad] = others[o];
                if (decode_fields(&shapes[s], f, shapes[s].nf) != -EPROTO)
                    fail_msg("%s with %s of another type (%zu)", shapes[s].name,
                             orig.key, o);
            }
        }
    }
}

static void test_msg_decode_duplicate_keys(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        for (size_t dup = 0; dup < shapes[s].nf; dup++) {
            field f[16];
            memcpy(f, shapes[s].f, shapes[s].nf * sizeof f[0]);
            f[shapes[s].nf] = shapes[s].f[dup];
            if (decode_fields(&shapes[s], f, shapes[s].nf + 1) != -EPROTO)
                fail_msg("%s with %s twice", shapes[s].name,
                         shapes[s].f[dup].key);
        }
        /* A key this type does not know, twice: rejected too. */
        field f[16];
        memcpy(f, shapes[s].f, shapes[s].nf * sizeof f[0]);
        f[shapes[s].nf] = (field)U("zz", 1);
        f[shapes[s].nf + 1] = (field)STR("zz", "again");
        if (decode_fields(&shapes[s], f, shapes[s].nf + 2) != -EPROTO)
            fail_msg("%s with an unknown key twice", shapes[s].name);
    }
    /* An unknown type's map must not repeat keys either. */
    const field unk[] = {U("t", 77), U("x", 1), U("x", 2)};
    wire_msg m;
    size_t len = build_map(buf, sizeof buf, unk, NFIELDS(unk));
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    const field twice_t[] = {U("t", 77), U("t", 77)};
    len = build_map(buf, sizeof buf, twice_t, NFIELDS(twice_t));
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
}

static void test_msg_decode_unknown_keys_skipped(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        field f[16];
        size_t n = 0;
        f[n++] = (field)RAW("zz", 0x92, 0x01, 0x81, 0xa1, 'a', 0xc4, 0x00);
        f[n++] = (field)RAW("", 0xc0);
        for (size_t i = 0; i < shapes[s].nf; i++)
            f[n++] = shapes[s].f[i];
        f[n++] = (field)RAW("\xc3\xa9", 0xdd, 0, 0, 0, 1, 0x90);
        if (decode_fields(&shapes[s], f, n) != 0)
            fail_msg("%s with unknown keys rejected", shapes[s].name);
    }
    /* Keys of other types, even with other types of values, are unknown
     * here and skipped. */
    const field ping[] = {U("t", 4), U("n", 1), U("body", 5), NEG("g"),
                          STR("seq", "x")};
    wire_msg m;
    size_t len = build_map(buf, sizeof buf, ping, NFIELDS(ping));
    assert_int_equal(decode_msg(buf, len, &m), 0);
    assert_true(m.type == WIRE_T_PING && m.u.ping.n == 1);
    assert_false(m.u.ping.has_data);
    /* Many unknown keys, all different. */
    static char keys[200][4];
    field many[210];
    size_t n = 0;
    many[n++] = (field)U("t", 3);
    many[n++] = (field)U("seq", 9);
    for (int i = 0; i < 200; i++) {
        keys[i][0] = 'k';
        keys[i][1] = (char)('a' + i / 26);
        keys[i][2] = (char)('a' + i % 26);
        keys[i][3] = 0;
        many[n++] = (field){keys[i], F_UINT, (uint64_t)i, NULL, 0};
    }
    len = build_map(buf, sizeof buf, many, n);
    assert_int_equal(decode_msg(buf, len, &m), 0);
    assert_true(m.type == WIRE_T_ACK && m.u.ack.seq == 9);
}

static void test_msg_decode_unknown_type(void **state)
{
    (void)state;
    const uint64_t types[] = {0, 19, 200, UINT64_MAX};
    for (size_t i = 0; i < NFIELDS(types); i++) {
        /* Its keys may be anything, even ones that mean something else. */
        const field f[] = {STR("id", "x"), U("t", types[i]), NEG("seq"),
                           RAW("new", 0x91, 0x90)};
        wire_msg m;
        memset(&m, 0x55, sizeof m);
        size_t len = build_map(buf, sizeof buf, f, NFIELDS(f));
        assert_int_equal(decode_msg(buf, len, &m), 0);
        assert_true(m.type == types[i]);
        assert_false(wire_msg_type_known(m.type));
        wire_msg zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&m.u, &zero.u, sizeof m.u); /* nothing filled */
    }
    /* Still a map with a uint `t` and str keys. */
    wire_msg m;
    const field no_t[] = {U("x", 1)};
    size_t len = build_map(buf, sizeof buf, no_t, 1);
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    const field neg_t[] = {NEG("t")};
    len = build_map(buf, sizeof buf, neg_t, 1);
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    const uint8_t int_key[] = {0x82, 0xa1, 't', 0x0a, 0x01, 0x02};
    assert_int_equal(decode_msg(int_key, sizeof int_key, &m), -EPROTO);
    const uint8_t bad_key[] = {0x82, 0xa1, 't', 0x0a, 0xa1, 0xff, 0x02};
    assert_int_equal(decode_msg(bad_key, sizeof bad_key, &m), -EPROTO);
}

static void test_msg_decode_not_a_map(void **state)
{
    (void)state;
    wire_msg m;
    wire_hello h;
    const uint8_t array[] = {0x92, 0xa1, 't', 0x03};
    const uint8_t scalar[] = {0x03};
    const uint8_t str[] = {0xa1, 't'};
    assert_int_equal(decode_msg(array, sizeof array, &m), -EPROTO);
    assert_int_equal(decode_msg(scalar, sizeof scalar, &m), -EPROTO);
    assert_int_equal(decode_msg(str, sizeof str, &m), -EPROTO);
    assert_int_equal(decode_msg(NULL, 0, &m), -EPROTO);
    assert_int_equal(decode_msg(scalar, 0, &m), -EPROTO);
    assert_int_equal(decode_hello(array, sizeof array, &h), -EPROTO);
    assert_int_equal(decode_hello(NULL, 0, &h), -EPROTO);
    /* A key that is not a str, in a known type. */
    const uint8_t bin_key[] = {0x83, 0xa1, 't',  0x03, 0xa3, 's', 'e',
                               'q',  0x01, 0xc4, 0x01, 'x',  0x01};
    assert_int_equal(decode_msg(bin_key, sizeof bin_key, &m), -EPROTO);
    const uint8_t nil_key[] = {0x83, 0xa1, 't',  0x03, 0xa3, 's',
                               'e',  'q',  0x01, 0xc0, 0x01};
    assert_int_equal(decode_msg(nil_key, sizeof nil_key, &m), -EPROTO);
}

static void test_msg_decode_trailing_bytes(void **state)
{
    (void)state;
    for (size_t s = 0; s < NFIELDS(shapes); s++) {
        size_t len = build_map(buf, sizeof buf, shapes[s].f, shapes[s].nf);
        buf[len] = 0xc0;
        if (decode_shape(&shapes[s], buf, len + 1) != -EPROTO)
            fail_msg("%s with a trailing byte", shapes[s].name);
        /* And every truncation fails. */
        for (size_t n = 0; n < len; n++)
            if (decode_shape(&shapes[s], buf, n) != -EPROTO)
                fail_msg("%s cut at %zu", shapes[s].name, n);
    }
}

static void test_msg_decode_depth(void **state)
{
    (void)state;
    wire_msg m;
    /* An empty map followed by what looks like a `t` key: trailing bytes,
     * whichever decoder path looks at it. */
    static const uint8_t empty_then_t[] = {0x80, 0xa1, 't', 0x04, 0xa1, 'n', 1};
    assert_int_equal(decode_msg(empty_then_t, sizeof empty_then_t, &m),
                     -EPROTO);
    /* map > [[[1]]] is depth 4: fine. */
    const field ok[] = {U("t", 3), U("seq", 1), RAW("x", 0x91, 0x91, 0x91, 1)};
    size_t len = build_map(buf, sizeof buf, ok, NFIELDS(ok));
    assert_int_equal(decode_msg(buf, len, &m), 0);
    /* map > [[[[1]]]] is depth 5. */
    const field deep[] = {U("t", 3), U("seq", 1),
                          RAW("x", 0x91, 0x91, 0x91, 0x91, 1)};
    len = build_map(buf, sizeof buf, deep, NFIELDS(deep));
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    const field deep_empty[] = {U("t", 3), U("seq", 1),
                                RAW("x", 0x91, 0x91, 0x91, 0x80)};
    len = build_map(buf, sizeof buf, deep_empty, NFIELDS(deep_empty));
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    wire_hello h;
    field hf[8];
    memcpy(hf, hello_f, sizeof hello_f);
    hf[NFIELDS(hello_f)] = (field)RAW("x", 0x91, 0x91, 0x91, 0x91, 1);
    len = build_map(buf, sizeof buf, hf, NFIELDS(hello_f) + 1);
    assert_int_equal(decode_hello(buf, len, &h), -EPROTO);
}

static void test_msg_decode_integer_formats(void **state)
{
    (void)state;
    wire_msg m;
    /* t as int 8, seq as int 64: non-negative, so accepted. */
    const field f1[] = {RAW("t", 0xd0, 0x03),
                        RAW("seq", 0xd3, 0, 0, 0, 0, 0, 0, 0x01, 0x00)};
    size_t len = build_map(buf, sizeof buf, f1, NFIELDS(f1));
    assert_int_equal(decode_msg(buf, len, &m), 0);
    assert_true(m.type == WIRE_T_ACK && m.u.ack.seq == 256);
    /* uint 64 holding a small value. */
    const field f2[] = {RAW("t", 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x03),
                        RAW("seq", 0xcd, 0x00, 0x05)};
    len = build_map(buf, sizeof buf, f2, NFIELDS(f2));
    assert_int_equal(decode_msg(buf, len, &m), 0);
    assert_true(m.type == WIRE_T_ACK && m.u.ack.seq == 5);
    /* Negative values in any format are not uints. */
    const uint8_t negs[][9] = {{0xff},
                               {0xd0, 0xff},
                               {0xd1, 0xff, 0xff},
                               {0xd2, 0x80, 0, 0, 0},
                               {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}};
    const size_t neg_len[] = {1, 2, 3, 5, 9};
    for (size_t i = 0; i < NFIELDS(negs); i++) {
        field f[] = {U("t", 3), {"seq", F_RAW, 0, negs[i], neg_len[i]}};
        len = build_map(buf, sizeof buf, f, NFIELDS(f));
        assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
    }
    /* A float, even 3.0, is not a uint. */
    const field f3[] = {RAW("t", 0xcb, 0x40, 0x08, 0, 0, 0, 0, 0, 0),
                        U("seq", 1)};
    len = build_map(buf, sizeof buf, f3, NFIELDS(f3));
    assert_int_equal(decode_msg(buf, len, &m), -EPROTO);
}

/* Replaces field `key` of a shape (or adds it) and returns the decode
 * result. */
static int decode_with(const msg_shape *s, field repl)
{
    field f[16];
    size_t n = s->nf;
    memcpy(f, s->f, n * sizeof f[0]);
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(f[i].key, repl.key) == 0)
            break;
    f[i] = repl;
    if (i == n)
        n++;
    return decode_fields(s, f, n);
}

static void test_msg_decode_range_data(void **state)
{
    (void)state;
    static char s129[130];
    memset(s129, 'c', sizeof s129);
    const msg_shape *data = &shapes[0];
    assert_int_equal(decode_with(data, (field)U("k", 3)), -EPROTO); /* no g */
    assert_int_equal(decode_with(data, (field)U("k", 4)), -EPROTO);
    assert_int_equal(decode_with(data, (field)STR("g", "ops")), -EPROTO);
    /* With g, kinds 2 and 3 decode and kinds 0 and 1 do not. */
    field f[16];
    memcpy(f, data_f, sizeof data_f);
    size_t n = NFIELDS(data_f);
    f[n++] = (field)STR("g", "ops");
    for (uint64_t k = 0; k <= 3; k++) {
        f[2] = (field)U("k", k);
        assert_int_equal(decode_fields(data, f, n), k >= 2 ? 0 : -EPROTO);
    }
    f[2] = (field)U("k", 2);
    f[n - 1] = (field)STR("g", "");
    assert_int_equal(decode_fields(data, f, n), -EPROTO);
    f[n - 1] = (field)STRN("g", s129, 64);
    assert_int_equal(decode_fields(data, f, n), 0);
    f[n - 1] = (field)STRN("g", s129, 65);
    assert_int_equal(decode_fields(data, f, n), -EPROTO);
    f[n - 1] = (field)STR("g", "o\xed\xa0\x80");
    assert_int_equal(decode_fields(data, f, n), -EPROTO);

    assert_int_equal(decode_with(data, (field)STRN("ct", s129, 128)), 0);
    assert_int_equal(decode_with(data, (field)STRN("ct", s129, 129)), -EPROTO);
    assert_int_equal(decode_with(data, (field)STR("ct", "")), 0);
    assert_int_equal(decode_with(data, (field)STR("ct", "te\xc0\xafxt")),
                     -EPROTO);
    /* body is "hi": size must exceed 2. */
    assert_int_equal(decode_with(data, (field)U("size", 3)), 0);
    assert_int_equal(decode_with(data, (field)U("size", 2)), -EPROTO);
    assert_int_equal(decode_with(data, (field)U("size", 0)), -EPROTO);
    assert_int_equal(decode_with(data, (field)BIN("id", id16, 15)), -EPROTO);
    assert_int_equal(decode_with(data, (field)BIN("id", buf2, 17)), -EPROTO);
    assert_int_equal(decode_with(data, (field)BIN("body", "", 0)), 0);

    wire_msg m;
    size_t len = build_map(buf, sizeof buf, data_f, NFIELDS(data_f));
    assert_int_equal(decode_msg(buf, len, &m), 0);
    assert_false(m.u.data.fragmented);
    assert_true(m.u.data.size == 2);
    assert_int_equal(m.u.data.group.len, 0);
    assert_true(m.u.data.has_ct);
}

static void test_msg_decode_range_other(void **state)
{
    (void)state;
    static uint8_t data[1100];
    static char s65[65];
    memset(s65, 'g', sizeof s65);
    const msg_shape *frag = &shapes[1], *ping = &shapes[3], *pong = &shapes[4],
                    *join = &shapes[5], *peers = &shapes[7], *bye = &shapes[8];
    assert_int_equal(decode_with(frag, (field)BIN("data", data, 0)), -EPROTO);
    assert_int_equal(decode_with(frag, (field)BIN("id", id16, 15)), -EPROTO);
    for (int p = 0; p < 2; p++) {
        const msg_shape *s = p ? pong : ping;
        assert_int_equal(decode_with(s, (field)BIN("data", data, 0)), 0);
        assert_int_equal(decode_with(s, (field)BIN("data", data, 1024)), 0);
        assert_int_equal(decode_with(s, (field)BIN("data", data, 1025)),
                         -EPROTO);
    }
    assert_int_equal(decode_with(join, (field)STR("g", "")), -EPROTO);
    assert_int_equal(decode_with(join, (field)STRN("g", s65, 64)), 0);
    assert_int_equal(decode_with(join, (field)STRN("g", s65, 65)), -EPROTO);
    assert_int_equal(decode_with(join, (field)STR("g", "\xf4\x90\x80\x80")),
                     -EPROTO);
    assert_int_equal(decode_with(bye, (field)U("r", 2)), 0);
    assert_int_equal(decode_with(bye, (field)U("r", 3)), -EPROTO);

    /* PEERS entries: exactly [bin32, bin4 | bin16, uint 1..65535]. */
    const struct {
        const char *name;
        const uint8_t *p;
        size_t n;
        int ok;
    } entries[] = {
#define E(name, ok, ...)                                                       \
    {name, (const uint8_t[]){0x91, __VA_ARGS__},                               \
     sizeof((const uint8_t[]){0x91, __VA_ARGS__}), ok}
#define ID32                                                                   \
    0xc4, 0x20, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,  \
        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
#define V4 0xc4, 0x04, 10, 0, 0, 1
#define V6 0xc4, 0x10, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
        E("v4", 1, 0x93, ID32, V4, 0xcd, 0xb7, 0x98),
        E("v6", 1, 0x93, ID32, V6, 0x01),
        E("port 65535", 1, 0x93, ID32, V4, 0xcd, 0xff, 0xff),
        E("port 0", 0, 0x93, ID32, V4, 0x00),
        E("port 65536", 0, 0x93, ID32, V4, 0xce, 0, 1, 0, 0),
        E("port negative", 0, 0x93, ID32, V4, 0xff),
        E("two elements", 0, 0x92, ID32, V4),
        E("four elements", 0, 0x94, ID32, V4, 0x01, 0x01),
        E("addr bin5", 0, 0x93, ID32, 0xc4, 0x05, 1, 2, 3, 4, 5, 0x01),
        E("addr str", 0, 0x93, ID32, 0xa4, 1, 2, 3, 4, 0x01),
        E("id bin31", 0, 0x93, 0xc4, 0x1f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
          12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
          29, 30, V4, 0x01),
        E("not an array", 0, 0xc4, 0x01, 0x00),
        E("a map", 0, 0x83, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03),
    };
    for (size_t i = 0; i < NFIELDS(entries); i++) {
        field f = {"peers", F_RAW, 0, entries[i].p, entries[i].n};
        if (decode_with(peers, f) != (entries[i].ok ? 0 : -EPROTO))
            fail_msg("PEERS entry %s", entries[i].name);
    }
    /* peers must be an array of at most 1024. */
    assert_int_equal(decode_with(peers, (field)RAW("peers", 0x90)), 0);
    const uint8_t one[] = {0x93, ID32, V4, 0x01};
    for (uint32_t count = 1023; count <= 1025; count++) {
        static uint8_t arr[1025 * sizeof one + 3];
        arr[0] = 0xdc;
        arr[1] = (uint8_t)(count >> 8);
        arr[2] = (uint8_t)count;
        for (uint32_t i = 0; i < count; i++)
            memcpy(arr + 3 + i * sizeof one, one, sizeof one);
        field f = {"peers", F_RAW, 0, arr, 3 + count * sizeof one};
        assert_int_equal(decode_with(peers, f), count <= 1024 ? 0 : -EPROTO);
    }
}

static void test_msg_hello_decode_rejects(void **state)
{
    (void)state;
    static char s65[65];
    memset(s65, 'n', sizeof s65);
    const msg_shape *hello = &shapes[NFIELDS(shapes) - 1];
    assert_int_equal(decode_with(hello, (field)U("port", 0)), 0);
    assert_int_equal(decode_with(hello, (field)U("port", 65535)), 0);
    assert_int_equal(decode_with(hello, (field)U("port", 65536)), -EPROTO);
    assert_int_equal(decode_with(hello, (field)U("max", 65535)), -EPROTO);
    assert_int_equal(decode_with(hello, (field)U("max", 65536)), 0);
    assert_int_equal(decode_with(hello, (field)U("max", UINT32_MAX)), 0);
    assert_int_equal(decode_with(hello, (field)U("max", 1ull << 32)), -EPROTO);
    assert_int_equal(decode_with(hello, (field)U("epoch", UINT64_MAX)), 0);
    assert_int_equal(decode_with(hello, (field)STR("epoch", "x")), -EPROTO);
    assert_int_equal(decode_with(hello, (field)STRN("name", s65, 64)), 0);
    assert_int_equal(decode_with(hello, (field)STRN("name", s65, 65)), -EPROTO);
    assert_int_equal(decode_with(hello, (field)STR("name", "")), 0);
    assert_int_equal(decode_with(hello, (field)STR("name", "a\xc3")), -EPROTO);
    assert_int_equal(decode_with(hello, (field)U("boot", UINT64_MAX)), 0);
    assert_int_equal(decode_with(hello, (field)RAW("groups", 0x90)), 0);
    assert_int_equal(decode_with(hello, (field)RAW("groups", 0x91, 0xa0)),
                     -EPROTO);
    assert_int_equal(
        decode_with(hello, (field)RAW("groups", 0x91, 0xc4, 0x01, 'x')),
        -EPROTO);
    assert_int_equal(
        decode_with(hello, (field)RAW("groups", 0x91, 0xa2, 0xed, 0xb0)),
        -EPROTO);
    assert_int_equal(
        decode_with(hello, (field)RAW("groups", 0x81, 0xa1, 'a', 0xa1, 'b')),
        -EPROTO);
    /* At most 256 groups, each 1..64 bytes. */
    static uint8_t arr[3 + 257 * 66];
    for (uint32_t count = 255; count <= 257; count++) {
        arr[0] = 0xdc;
        arr[1] = (uint8_t)(count >> 8);
        arr[2] = (uint8_t)count;
        size_t n = 3;
        for (uint32_t i = 0; i < count; i++) {
            arr[n++] = 0xd9;
            arr[n++] = 64;
            memset(arr + n, 'a' + (int)(i % 26), 64);
            n += 64;
        }
        field f = {"groups", F_RAW, 0, arr, n};
        assert_int_equal(decode_with(hello, f), count <= 256 ? 0 : -EPROTO);
    }
    arr[1] = 0;
    arr[2] = 1;
    arr[3] = 0xd9;
    arr[4] = 65;
    memset(arr + 5, 'a', 65);
    field f65 = {"groups", F_RAW, 0, arr, 5 + 65};
    assert_int_equal(decode_with(hello, f65), -EPROTO);

    /* A version other than 1 is returned as sent: the node closes the
     * link, the codec only reports it. */
    field f[8];
    memcpy(f, hello_f, sizeof hello_f);
    f[0] = (field)U("v", 2);
    size_t len = build_map(buf, sizeof buf, f, NFIELDS(hello_f));
    wire_hello h;
    assert_int_equal(decode_hello(buf, len, &h), 0);
    assert_true(h.version == 2);
}

/* Declared counts far beyond the input, inside messages: rejected by the
 * walk before anything reads them, with no allocation. */
static void test_msg_decode_huge_counts_allocate_nothing(void **state)
{
    (void)state;
    const struct {
        const uint8_t *p;
        size_t n;
    } nasty[] = {
#define N(...)                                                                 \
    {(const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})}
        N(0xdd, 0xff, 0xff, 0xff, 0xff),
        N(0xdf, 0xff, 0xff, 0xff, 0xff),
        N(0xde, 0xff, 0xff),
        N(0xdc, 0xff, 0xff),
        N(0xc6, 0xff, 0xff, 0xff, 0xff),
        N(0xdb, 0xff, 0xff, 0xff, 0xff),
        N(0x82, 0xa1, 't', 0x08, 0xa5, 'p', 'e', 'e', 'r', 's', 0xdd, 0xff,
          0xff, 0xff, 0xff),
        N(0x82, 0xa1, 't', 0x01, 0xa4, 'b', 'o', 'd', 'y', 0xc6, 0xff, 0xff,
          0xff, 0xff),
        N(0x82, 0xa1, 't', 0x01, 0xa1, 'g', 0xdb, 0xff, 0xff, 0xff, 0xff),
        N(0x81, 0xa1, 't', 0xdf, 0xff, 0xff, 0xff, 0xff),
        N(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 't', 0x03),
        N(0x86, 0xa6, 'g', 'r', 'o', 'u', 'p', 's', 0xdd, 0xff, 0xff, 0xff,
          0xff),
    };
    for (size_t i = 0; i < NFIELDS(nasty); i++) {
        wire_msg m;
        wire_hello h;
        /* decode_msg and decode_hello check that nothing is allocated. */
        assert_int_equal(decode_msg(nasty[i].p, nasty[i].n, &m), -EPROTO);
        assert_int_equal(decode_hello(nasty[i].p, nasty[i].n, &h), -EPROTO);
    }
    if (!counting)
        print_message("allocation counting unavailable here (ASan or "
                      "valgrind): checked rejection only\n");
}

/* ---- batched transport messages (#18, PROTOCOL.md section 4) ---- */

static int decode_next(const uint8_t *p, size_t len, wire_msg *m, size_t *used)
{
    alloc_count_start();
    int rc = wire_msg_decode_next(p, len, m, used);
    alloc_count_stop();
    if (counting)
        assert_int_equal(alloc_calls, 0);
    return rc;
}

/* Maps back to back: the one-pass shape (`t` first), the general one (`t`
 * last), a type this version ignores and a routing type; each is taken
 * alone and the walk ends exactly at the end. */
static void test_msg_decode_next_walks_a_batch(void **state)
{
    (void)state;
    static const field late_t[] = {U("n", 9), U("t", 4)};
    static const field unknown_t[] = {U("t", 99), STR("x", "y")};
    size_t at = 0, ends[6];
    at += build_map(buf + at, sizeof buf - at, ack_f, NFIELDS(ack_f));
    ends[0] = at;
    at += build_map(buf + at, sizeof buf - at, ping_f, NFIELDS(ping_f));
    ends[1] = at;
    at += build_map(buf + at, sizeof buf - at, data_f, NFIELDS(data_f));
    ends[2] = at;
    at += build_map(buf + at, sizeof buf - at, late_t, NFIELDS(late_t));
    ends[3] = at;
    at += build_map(buf + at, sizeof buf - at, unknown_t, NFIELDS(unknown_t));
    ends[4] = at;
    at += build_map(buf + at, sizeof buf - at, frag_f, NFIELDS(frag_f));
    ends[5] = at;
    const uint64_t types[] = {WIRE_T_ACK,  WIRE_T_PING, WIRE_T_DATA,
                              WIRE_T_PING, 99,          WIRE_T_FRAG};
    size_t off = 0;
    for (size_t i = 0; i < NFIELDS(types); i++) {
        wire_msg m;
        size_t used = 0;
        assert_int_equal(decode_next(buf + off, at - off, &m, &used), 0);
        assert_true(m.type == types[i]);
        off += used;
        assert_int_equal(off, ends[i]);
    }
    /* As one message the same bytes are trailing garbage. */
    wire_msg m;
    assert_int_equal(decode_msg(buf, at, &m), -EPROTO);
    /* The decoded fields point into the batch, each into its own map. */
    size_t used;
    assert_int_equal(decode_next(buf + ends[0], at - ends[0], &m, &used), 0);
    assert_true(m.u.ping.data.ptr > buf + ends[0] &&
                m.u.ping.data.ptr < buf + ends[1]);
    assert_memory_equal(m.u.ping.data.ptr, "echo", 4);
}

/* A ROUTED in a batch (a relay's traffic) decodes as it does alone, and
 * is refused alike when broken after its `t`. */
static void test_msg_decode_next_routed(void **state)
{
    (void)state;
    static uint8_t ids[2][WIRE_NODE_ID_BYTES], box[WIRE_ROUTED_SEAL + 100];
    memset(ids[0], 1, sizeof ids[0]);
    memset(ids[1], 2, sizeof ids[1]);
    memset(box, 0x5a, sizeof box);
    wire_msg r, a, b;
    memset(&r, 0, sizeof r);
    r.type = WIRE_T_ROUTED;
    r.u.routed.src = ids[0];
    r.u.routed.dst = ids[1];
    r.u.routed.hops = 7;
    r.u.routed.box = (wire_bytes){box, sizeof box};
    size_t first = build_map(buf, sizeof buf, ack_f, NFIELDS(ack_f)), n, used;
    assert_int_equal(wire_msg_encode(&r, buf + first, sizeof buf - first, &n),
                     0);
    assert_int_equal(decode_next(buf, first + n, &a, &used), 0);
    assert_int_equal(used, first);
    assert_int_equal(decode_next(buf + first, n, &a, &used), 0);
    assert_int_equal(used, n);
    assert_int_equal(decode_msg(buf + first, n, &b), 0);
    assert_true(a.type == WIRE_T_ROUTED && b.type == WIRE_T_ROUTED);
    assert_true(a.u.routed.src == b.u.routed.src &&
                a.u.routed.dst == b.u.routed.dst && a.u.routed.hops == 7 &&
                b.u.routed.hops == 7 &&
                a.u.routed.box.ptr == b.u.routed.box.ptr &&
                a.u.routed.box.len == sizeof box);
    /* Broken after `t`: a second `t`, a key that is not a str. */
    const field twice[] = {U("t", 11), U("t", 11)};
    const field intkey[] = {U("t", 11), RAW("s", 0x01)};
    n = build_map(buf + first, sizeof buf - first, twice, NFIELDS(twice));
    assert_int_equal(decode_next(buf + first, n, &a, &used), -EPROTO);
    assert_int_equal(decode_msg(buf + first, n, &b), -EPROTO);
    n = build_map(buf + first, sizeof buf - first, intkey, NFIELDS(intkey));
    buf[first + 4] = 0x01; /* the key "s" (a1 73) made 01 73: not a str */
    assert_int_equal(decode_next(buf + first, n, &a, &used), -EPROTO);
    assert_int_equal(decode_msg(buf + first, n, &b), -EPROTO);
}

/* After a good first map, whatever is wrong with what follows fails. */
static void test_msg_decode_next_refuses_bad_rest(void **state)
{
    (void)state;
    static uint8_t big[WIRE_MAX_PING_DATA + 1];
    const field ping_big[] = {U("t", 4), U("n", 1),
                              BIN("data", big, sizeof big)};
    static const field ping_miss[] = {U("t", 4)};
    const field deep[] = {U("t", 3), U("seq", 1),
                          RAW("x", 0x91, 0x91, 0x91, 0x91, 0x90)};
    size_t first = build_map(buf, sizeof buf, ack_f, NFIELDS(ack_f));
    size_t n;
    uint8_t *rest = buf + first;
    size_t room = sizeof buf - first;
    /* Built one at a time into rest, each checked at once. */
    for (int k = 0; k < 8; k++) {
        switch (k) {
        case 0: /* a map cut short */
            n = build_map(rest, room, ping_f, NFIELDS(ping_f)) - 1;
            break;
        case 1: /* garbage after it (a byte msgpack never uses) */
            rest[0] = 0xc1;
            n = 1;
            break;
        case 2: /* a value that is not a map */
            rest[0] = 0x01;
            n = 1;
            break;
        case 3: /* over a limit: PING data of 1025 bytes */
            n = build_map(rest, room, ping_big, NFIELDS(ping_big));
            break;
        case 4: /* a required key missing */
            n = build_map(rest, room, ping_miss, NFIELDS(ping_miss));
            break;
        case 5: /* nested too deep */
            n = build_map(rest, room, deep, NFIELDS(deep));
            break;
        case 6: /* a count larger than the bytes left */
            rest[0] = 0xdf;
            memset(rest + 1, 0xff, 4);
            n = 5;
            break;
        default: /* a good map, then one byte of garbage */
            n = build_map(rest, room, ping_f, NFIELDS(ping_f));
            rest[n++] = 0xc1;
            break;
        }
        wire_msg m;
        size_t used;
        assert_int_equal(decode_next(buf, first + n, &m, &used), 0);
        assert_int_equal(used, first);
        int rc = decode_next(buf + used, n, &m, &used);
        if (k == 7) { /* the good map, then the garbage alone */
            assert_int_equal(rc, 0);
            assert_int_equal(used, n - 1);
            rc = decode_next(rest + used, 1, &m, &used);
        }
        assert_int_equal(rc, -EPROTO);
    }
    wire_msg m;
    size_t used;
    assert_int_equal(decode_next(buf, 0, &m, &used), -EPROTO); /* empty */
}

/* `batch` in a HELLO: written only when true, read as a bool, optional. */
static void test_msg_hello_batch(void **state)
{
    (void)state;
    wire_hello h, out;
    memset(&h, 0, sizeof h);
    h.version = WIRE_VERSION;
    h.name = bytes_of("alpha");
    h.max = WIRE_MIN_MAX_BODY;
    size_t len, len2;
    assert_int_equal(wire_hello_encode(&h, buf, sizeof buf, &len), 0);
    assert_int_equal(decode_hello(buf, len, &out), 0);
    assert_int_equal(out.batch, 0);
    assert_null(memmem(buf, len, "batch", 5));
    h.batch = 1;
    assert_int_equal(wire_hello_encode(&h, buf2, sizeof buf2, &len2), 0);
    assert_int_equal(len2, len + 7); /* a5 "batch" c3 */
    assert_memory_equal(buf2 + len,
                        "\xa5"
                        "batch"
                        "\xc3",
                        7);
    assert_msgpack_c_agrees(buf2, len2);
    assert_int_equal(decode_hello(buf2, len2, &out), 0);
    assert_int_equal(out.batch, 1);
    const msg_shape *hello = &shapes[NFIELDS(shapes) - 1];
    assert_int_equal(decode_with(hello, (field)RAW("batch", 0xc2)), 0);
    assert_int_equal(decode_with(hello, (field)U("batch", 1)), -EPROTO);
    assert_int_equal(decode_with(hello, (field)STR("batch", "yes")), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_roundtrip_data),
        cmocka_unit_test(test_msg_roundtrip_frag),
        cmocka_unit_test(test_msg_roundtrip_ack_bye),
        cmocka_unit_test(test_msg_roundtrip_ping_pong),
        cmocka_unit_test(test_msg_roundtrip_join_leave),
        cmocka_unit_test(test_msg_roundtrip_peers),
        cmocka_unit_test(test_msg_hello_roundtrip),
        cmocka_unit_test(test_msg_encode_exact_bytes),
        cmocka_unit_test(test_msg_encode_rejects_out_of_range),
        cmocka_unit_test(test_msg_bounds),
        cmocka_unit_test(test_msg_bound_holds),
        cmocka_unit_test(test_msg_data_skip),
        cmocka_unit_test(test_msg_type_known),
        cmocka_unit_test(test_msg_decode_valid_shapes),
        cmocka_unit_test(test_msg_decode_missing_required),
        cmocka_unit_test(test_msg_decode_wrong_types),
        cmocka_unit_test(test_msg_decode_duplicate_keys),
        cmocka_unit_test(test_msg_decode_unknown_keys_skipped),
        cmocka_unit_test(test_msg_decode_unknown_type),
        cmocka_unit_test(test_msg_decode_not_a_map),
        cmocka_unit_test(test_msg_decode_trailing_bytes),
        cmocka_unit_test(test_msg_decode_depth),
        cmocka_unit_test(test_msg_decode_integer_formats),
        cmocka_unit_test(test_msg_decode_range_data),
        cmocka_unit_test(test_msg_decode_range_other),
        cmocka_unit_test(test_msg_hello_decode_rejects),
        cmocka_unit_test(test_msg_decode_huge_counts_allocate_nothing),
        cmocka_unit_test(test_msg_encode_hole_same_bytes),
        cmocka_unit_test(test_msg_decode_next_walks_a_batch),
        cmocka_unit_test(test_msg_decode_next_refuses_bad_rest),
        cmocka_unit_test(test_msg_decode_next_routed),
        cmocka_unit_test(test_msg_hello_batch),
    };
    return cmocka_run_group_tests_name("msg", tests, setup, NULL);
}
