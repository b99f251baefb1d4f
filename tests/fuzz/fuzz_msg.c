/* fuzz_msg.c: a decrypted transport message or HELLO from a stranger.
 *
 * The same bytes go to wire_mp_check(), wire_msg_decode(),
 * wire_msg_decode_next() (as a batch of maps, #18) and wire_hello_decode().
 * Properties:
 *   - what wire_mp_check() accepts, msgpack-c's unpacker also reads, using
 *     exactly all the bytes (so the walk is never looser than msgpack-c);
 *   - a decoder accepts only what wire_mp_check() accepts;
 *   - a decoded message encodes again (its values are within the limits),
 *     the encoding decodes to the same values, and encoding those gives
 *     the same bytes (the encoder is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static int bytes_eq(wire_bytes a, wire_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int peers_eq(wire_iter a, wire_iter b)
{
    wire_peer_entry x, y;
    for (;;) {
        int ga = wire_peers_next(&a, &x), gb = wire_peers_next(&b, &y);
        if (ga != gb)
            return 0;
        if (!ga)
            return 1;
        if (memcmp(x.id, y.id, WIRE_NODE_ID_BYTES) != 0 ||
            x.addr_len != y.addr_len ||
            memcmp(x.addr, y.addr, x.addr_len) != 0 || x.port != y.port)
            return 0;
    }
}

static int msg_eq(const wire_msg *a, const wire_msg *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case WIRE_T_DATA: {
        const wire_data *x = &a->u.data, *y = &b->u.data;
        return memcmp(x->id, y->id, WIRE_ID_BYTES) == 0 && x->kind == y->kind &&
               x->seq == y->seq && x->ts == y->ts &&
               bytes_eq(x->group, y->group) && x->has_ct == y->has_ct &&
               (!x->has_ct || bytes_eq(x->ct, y->ct)) &&
               bytes_eq(x->body, y->body) && x->fragmented == y->fragmented &&
               x->size == y->size;
    }
    case WIRE_T_FRAG:
        return memcmp(a->u.frag.id, b->u.frag.id, WIRE_ID_BYTES) == 0 &&
               a->u.frag.off == b->u.frag.off &&
               bytes_eq(a->u.frag.data, b->u.frag.data);
    case WIRE_T_ACK:
        return a->u.ack.seq == b->u.ack.seq;
    case WIRE_T_PING:
    case WIRE_T_PONG:
        return a->u.ping.n == b->u.ping.n &&
               a->u.ping.has_data == b->u.ping.has_data &&
               bytes_eq(a->u.ping.data, b->u.ping.data);
    case WIRE_T_JOIN:
    case WIRE_T_LEAVE:
        return bytes_eq(a->u.group.group, b->u.group.group);
    case WIRE_T_PEERS:
        return a->u.peers.count == b->u.peers.count &&
               peers_eq(a->u.peers.iter, b->u.peers.iter);
    case WIRE_T_BYE:
        return a->u.bye.reason == b->u.bye.reason;
    default:
        return 0;
    }
}

static int groups_eq(wire_iter a, wire_iter b)
{
    wire_bytes x, y;
    for (;;) {
        int ga = wire_groups_next(&a, &x), gb = wire_groups_next(&b, &y);
        if (ga != gb)
            return 0;
        if (!ga)
            return 1;
        if (!bytes_eq(x, y))
            return 0;
    }
}

static int hello_eq(const wire_hello *a, const wire_hello *b)
{
    return a->version == b->version && bytes_eq(a->name, b->name) &&
           a->port == b->port && a->boot == b->boot && a->max == b->max &&
           a->ngroups == b->ngroups && a->batch == b->batch &&
           groups_eq(a->group_iter, b->group_iter);
}

/* A decoded message gives PEERS and groups through iterators; the encoders
 * take arrays. */
static wire_peer_entry peer_buf[WIRE_MAX_PEERS];
static wire_bytes group_buf[WIRE_MAX_GROUPS];

static void roundtrip_msg(const wire_msg *m, size_t size)
{
    wire_msg in = *m;
    if (in.type == WIRE_T_PEERS) {
        wire_iter it = in.u.peers.iter;
        uint32_t n = 0;
        while (n < WIRE_MAX_PEERS && wire_peers_next(&it, &peer_buf[n]))
            n++;
        CHECK(n == in.u.peers.count);
        in.u.peers.entries = peer_buf;
    }
    /* Shortest forms and no unknown keys: never longer than the input. */
    size_t cap = size + 1;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    CHECK(a != NULL && b != NULL);
    size_t alen, blen;
    CHECK(wire_msg_encode(&in, a, cap, &alen) == 0);
    CHECK(alen <= size);
    wire_msg again;
    CHECK(wire_msg_decode(a, alen, &again) == 0);
    CHECK(msg_eq(m, &again));
    if (again.type == WIRE_T_PEERS)
        again.u.peers.entries = peer_buf; /* the same entries, as checked */
    CHECK(wire_msg_encode(&again, b, cap, &blen) == 0);
    CHECK(blen == alen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
}

static void roundtrip_hello(const wire_hello *h, size_t size)
{
    wire_hello in = *h;
    wire_iter it = in.group_iter;
    uint32_t n = 0;
    while (n < WIRE_MAX_GROUPS && wire_groups_next(&it, &group_buf[n]))
        n++;
    CHECK(n == in.ngroups);
    in.groups = group_buf;
    size_t cap = size + 1;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    CHECK(a != NULL && b != NULL);
    size_t alen, blen;
    CHECK(wire_hello_encode(&in, a, cap, &alen) == 0);
    CHECK(alen <= size);
    wire_hello again;
    CHECK(wire_hello_decode(a, alen, &again) == 0);
    CHECK(hello_eq(h, &again));
    again.groups = group_buf;
    CHECK(wire_hello_encode(&again, b, cap, &blen) == 0);
    CHECK(blen == alen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int checked = wire_mp_check(data, size, WIRE_MAX_DEPTH);
    if (checked == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        msgpack_unpack_return ret =
            msgpack_unpack_next(&u, (const char *)data, size, &off);
        msgpack_unpacked_destroy(&u);
        CHECK(ret == MSGPACK_UNPACK_SUCCESS && off == size);
    }

    wire_msg m;
    if (wire_msg_decode(data, size, &m) == 0) {
        CHECK(checked == 0);
        if (wire_msg_type_known(m.type))
            roundtrip_msg(&m, size);
    }
    /* The same bytes as a batch (#18): each map wire_msg_decode_next()
     * takes is one that wire_msg_decode() takes alone, with the same
     * values; a whole message is a batch of one. */
    const uint8_t *p = data;
    size_t left = size, used;
    wire_msg one;
    while (left > 0 && wire_msg_decode_next(p, left, &m, &used) == 0) {
        CHECK(used >= 1 && used <= left);
        CHECK(wire_mp_check(p, used, WIRE_MAX_DEPTH) == 0);
        CHECK(wire_msg_decode(p, used, &one) == 0);
        CHECK(one.type == m.type);
        CHECK(!wire_msg_type_known(m.type) || msg_eq(&m, &one));
        if (p == data && wire_msg_decode(data, size, &one) == 0)
            CHECK(used == size);
        p += used;
        left -= used;
    }

    wire_hello h;
    if (wire_hello_decode(data, size, &h) == 0) {
        CHECK(checked == 0);
        roundtrip_hello(&h, size);
    }
    return 0;
}
