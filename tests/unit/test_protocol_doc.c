/* test_protocol_doc.c: the hex examples of docs/PROTOCOL.md sections 2,
 * 3.2, 5, 6, 7 and 11, checked as a stranger reading the document would: each
 * is decoded with wire/, every field is compared with the value the prose
 * states, and encoding those values gives the same bytes back. The beacon
 * tag and the public network key are computed with libsodium directly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "doc_hex.h"
#include "wire/beacon.h"
#include "wire/ctl.h"
#include "wire/frame.h"
#include "wire/msg.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Values the prose states. */
static const uint8_t msg_id[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                   8, 9, 10, 11, 12, 13, 14, 15};
static const char public_network_string[] = "confab public network v1";

static uint8_t *example(const char *name, size_t *len)
{
    *len = 0;
    uint8_t *b = doc_hex(name, len);
    if (b == NULL) {
        fail_msg("docs/PROTOCOL.md has no valid ```hex %s block", name);
        abort(); /* not reached: fail_msg does not return */
    }
    return b;
}

static void node_id(uint8_t id[32], uint8_t first)
{
    for (int i = 0; i < 32; i++)
        id[i] = (uint8_t)(first + i);
}

static void assert_str(wire_bytes b, const char *s)
{
    assert_int_equal(b.len, strlen(s));
    assert_memory_equal(b.ptr, s, b.len);
}

static wire_bytes str(const char *s)
{
    return (wire_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Decodes the named example as a transport message of type t. */
static uint8_t *example_msg(const char *name, uint64_t t, wire_msg *m,
                            size_t *len)
{
    uint8_t *b = example(name, len);
    assert_int_equal(wire_msg_decode(b, *len, m), 0);
    assert_true(m->type == t);
    return b;
}

/* Encodes m and compares with the example's bytes. */
static void assert_encodes_to(const wire_msg *m, const uint8_t *want,
                              size_t len)
{
    uint8_t out[4096];
    size_t n;
    assert_int_equal(wire_msg_encode(m, out, sizeof out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, want, len);
}

static void test_protocol_doc_frame(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = example("frame", &len);
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = b, *payload;
    size_t left = len, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &left, &payload, &plen), 1);
    assert_int_equal(left, 0);
    const uint8_t want[] = {0x01, 0x02, 0x03};
    assert_int_equal(plen, sizeof want);
    assert_memory_equal(payload, want, sizeof want);
    wire_frame_decoder_free(&d);

    uint8_t sealed[WIRE_FRAME_HEADROOM + sizeof want];
    memcpy(sealed + WIRE_FRAME_HEADROOM, want, sizeof want);
    size_t start;
    assert_int_equal(wire_frame_seal(sealed, sizeof want, &start), 0);
    assert_int_equal(sizeof sealed - start, len);
    assert_memory_equal(sealed + start, b, len);
    free(b);
}

static void test_protocol_doc_hello(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = example("hello", &len);
    wire_hello h;
    assert_int_equal(wire_hello_decode(b, len, &h), 0);
    assert_true(h.version == 1);
    assert_str(h.name, "alpha");
    assert_int_equal(h.port, 47000);
    assert_true(h.boot == 3);
    assert_true(h.max == 16u << 20);
    assert_true(h.epoch == 0x1122334455667788u);
    assert_int_equal(h.ngroups, 2);
    wire_bytes g[2];
    assert_true(wire_groups_next(&h.group_iter, &g[0]));
    assert_true(wire_groups_next(&h.group_iter, &g[1]));
    assert_false(wire_groups_next(&h.group_iter, &g[1]));
    assert_str(g[0], "ops");
    assert_str(g[1], "lab");

    const wire_bytes groups[2] = {str("ops"), str("lab")};
    wire_hello e = {.version = 1,
                    .name = str("alpha"),
                    .port = 47000,
                    .boot = 3,
                    .max = 16u << 20,
                    .epoch = 0x1122334455667788u,
                    .ngroups = 2,
                    .groups = groups};
    uint8_t out[256];
    size_t n;
    assert_int_equal(wire_hello_encode(&e, out, sizeof out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, b, len);
    free(b);
}

/* Section 3.2: the HELLO example with `batch`, and section 4's batch. */
static void test_protocol_doc_batch(void **state)
{
    (void)state;
    size_t len, plain_len;
    uint8_t *b = example("hello-batch", &len);
    uint8_t *plain = example("hello", &plain_len);
    wire_hello h;
    assert_int_equal(wire_hello_decode(b, len, &h), 0);
    assert_int_equal(h.batch, 1);
    assert_str(h.name, "alpha");
    assert_int_equal(wire_hello_decode(plain, plain_len, &h), 0);
    assert_int_equal(h.batch, 0);
    const wire_bytes groups[2] = {str("ops"), str("lab")};
    wire_hello e = {.version = 1,
                    .name = str("alpha"),
                    .port = 47000,
                    .boot = 3,
                    .max = 16u << 20,
                    .epoch = 0x1122334455667788u,
                    .ngroups = 2,
                    .groups = groups,
                    .batch = 1};
    uint8_t out[256];
    size_t n;
    assert_int_equal(wire_hello_encode(&e, out, sizeof out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, b, len);
    free(b);
    free(plain);

    b = example("batch", &len);
    wire_msg m;
    size_t used, at = 0;
    assert_int_equal(wire_msg_decode_next(b, len, &m, &used), 0);
    assert_true(m.type == WIRE_T_ACK && m.u.ack.has_seq && m.u.ack.seq == 42);
    assert_int_equal(used, 9);
    assert_encodes_to(&m, b, used);
    at += used;
    assert_int_equal(wire_msg_decode_next(b + at, len - at, &m, &used), 0);
    assert_true(m.type == WIRE_T_PING && m.u.ping.n == 1);
    assert_encodes_to(&m, b + at, used);
    at += used;
    assert_int_equal(at, len);
    /* As a single map the same bytes are refused (trailing bytes). */
    assert_int_equal(wire_msg_decode(b, len, &m), -EPROTO);
    free(b);
}

static void test_protocol_doc_data(void **state)
{
    (void)state;
    size_t len;
    wire_msg m;
    uint8_t *b = example_msg("data", WIRE_T_DATA, &m, &len);
    const wire_data *d = &m.u.data;
    assert_memory_equal(d->id, msg_id, 16);
    assert_int_equal(d->kind, WIRE_K_UNICAST);
    assert_true(d->seq == 1);
    assert_true(d->ts == 1700000000000000u);
    assert_int_equal(d->group.len, 0);
    assert_true(d->has_ct);
    assert_str(d->ct, "text/plain");
    assert_str(d->body, "hi");
    assert_false(d->fragmented);
    assert_true(d->size == 2);

    wire_msg e;
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_DATA;
    memcpy(e.u.data.id, msg_id, 16);
    e.u.data.kind = WIRE_K_UNICAST;
    e.u.data.seq = 1;
    e.u.data.ts = 1700000000000000u;
    e.u.data.has_ct = 1;
    e.u.data.ct = str("text/plain");
    e.u.data.body = str("hi");
    assert_encodes_to(&e, b, len);
    free(b);
}

static void test_protocol_doc_frag(void **state)
{
    (void)state;
    size_t len;
    wire_msg m;
    uint8_t *b = example_msg("frag", WIRE_T_FRAG, &m, &len);
    assert_memory_equal(m.u.frag.id, msg_id, 16);
    assert_true(m.u.frag.off == 65400);
    assert_str(m.u.frag.data, "abc");

    wire_msg e;
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_FRAG;
    memcpy(e.u.frag.id, msg_id, 16);
    e.u.frag.off = 65400;
    e.u.frag.data = str("abc");
    assert_encodes_to(&e, b, len);
    free(b);
}

/* The HELLOs inside the handshake example of section 3.5 are HELLOs. */
static void test_protocol_doc_handshake_hellos(void **state)
{
    (void)state;
    const char *names[] = {"handshake-msg2-payload", "handshake-msg3-payload"};
    const char *who[] = {"bob", "alice"};
    const uint64_t epochs[] = {2, 1};
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *b = example(names[i], &len);
        wire_hello h;
        assert_int_equal(wire_hello_decode(b, len, &h), 0);
        assert_str(h.name, who[i]);
        assert_true(h.epoch == epochs[i]);
        free(b);
    }
}

static void test_protocol_doc_ack(void **state)
{
    (void)state;
    size_t len;
    wire_msg m;
    uint8_t *b = example_msg("ack", WIRE_T_ACK, &m, &len);
    assert_true(m.u.ack.has_seq && m.u.ack.seq == 1 && !m.u.ack.has_id);
    wire_msg e;
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_ACK;
    e.u.ack.has_seq = 1;
    e.u.ack.seq = 1;
    assert_encodes_to(&e, b, len);
    free(b);
    /* The anycast ACK: by message id. */
    b = example_msg("ack-id", WIRE_T_ACK, &m, &len);
    uint8_t id[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    assert_true(m.u.ack.has_id && !m.u.ack.has_seq);
    assert_memory_equal(m.u.ack.id, id, 16);
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_ACK;
    e.u.ack.has_id = 1;
    memcpy(e.u.ack.id, id, 16);
    assert_encodes_to(&e, b, len);
    free(b);
}

static void test_protocol_doc_ping_pong(void **state)
{
    (void)state;
    const char *names[2] = {"ping", "pong"};
    const uint64_t types[2] = {WIRE_T_PING, WIRE_T_PONG};
    const uint8_t echo[] = {0x01, 0x02, 0x03, 0x04};
    for (int i = 0; i < 2; i++) {
        size_t len;
        wire_msg m;
        uint8_t *b = example_msg(names[i], types[i], &m, &len);
        assert_true(m.u.ping.n == 42);
        assert_true(m.u.ping.has_data);
        assert_int_equal(m.u.ping.data.len, sizeof echo);
        assert_memory_equal(m.u.ping.data.ptr, echo, sizeof echo);
        wire_msg e;
        memset(&e, 0, sizeof e);
        e.type = types[i];
        e.u.ping.n = 42;
        e.u.ping.has_data = 1;
        e.u.ping.data = (wire_bytes){echo, sizeof echo};
        assert_encodes_to(&e, b, len);
        free(b);
    }
}

static void test_protocol_doc_join_leave(void **state)
{
    (void)state;
    const char *names[2] = {"join", "leave"};
    const char *groups[2] = {"ops", "lab"};
    const uint64_t types[2] = {WIRE_T_JOIN, WIRE_T_LEAVE};
    for (int i = 0; i < 2; i++) {
        size_t len;
        wire_msg m;
        uint8_t *b = example_msg(names[i], types[i], &m, &len);
        assert_str(m.u.group.group, groups[i]);
        wire_msg e;
        memset(&e, 0, sizeof e);
        e.type = types[i];
        e.u.group.group = str(groups[i]);
        assert_encodes_to(&e, b, len);
        free(b);
    }
}

static void test_protocol_doc_peers(void **state)
{
    (void)state;
    size_t len;
    wire_msg m;
    uint8_t *b = example_msg("peers", WIRE_T_PEERS, &m, &len);
    uint8_t id1[32], id2[32];
    node_id(id1, 0x00);
    node_id(id2, 0x20);
    const uint8_t v4[4] = {192, 168, 1, 7};
    const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0,
                            0,    0, 0, 0, 0, 0, 0, 7}; /* fd00::7 */
    const wire_peer_entry want[2] = {{id1, v4, 4, 47000}, {id2, v6, 16, 47001}};
    assert_int_equal(m.u.peers.count, 2);
    wire_peer_entry got;
    for (int i = 0; i < 2; i++) {
        assert_true(wire_peers_next(&m.u.peers.iter, &got));
        assert_memory_equal(got.id, want[i].id, 32);
        assert_int_equal(got.addr_len, want[i].addr_len);
        assert_memory_equal(got.addr, want[i].addr, got.addr_len);
        assert_int_equal(got.port, want[i].port);
    }
    assert_false(wire_peers_next(&m.u.peers.iter, &got));

    wire_msg e;
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_PEERS;
    e.u.peers.count = 2;
    e.u.peers.entries = want;
    assert_encodes_to(&e, b, len);
    free(b);
}

static void test_protocol_doc_bye(void **state)
{
    (void)state;
    size_t len;
    wire_msg m;
    uint8_t *b = example_msg("bye", WIRE_T_BYE, &m, &len);
    assert_true(m.u.bye.reason == WIRE_BYE_STOPPING);
    wire_msg e;
    memset(&e, 0, sizeof e);
    e.type = WIRE_T_BYE;
    e.u.bye.reason = WIRE_BYE_STOPPING;
    assert_encodes_to(&e, b, len);
    free(b);
}

static void public_network_key(uint8_t key[32])
{
    assert_int_equal(crypto_generichash(key, 32,
                                        (const uint8_t *)public_network_string,
                                        strlen(public_network_string), NULL, 0),
                     0);
}

static void test_protocol_doc_public_network_key(void **state)
{
    (void)state;
    assert_int_equal(strlen(public_network_string), 24);
    size_t len;
    uint8_t *b = example("public-network-key", &len);
    uint8_t key[32];
    public_network_key(key);
    assert_int_equal(len, 32);
    assert_memory_equal(b, key, 32); /* a public value: memcmp is fine */
    free(b);
}

static void test_protocol_doc_beacon(void **state)
{
    (void)state;
    size_t len, tagged;
    uint8_t *b = example("beacon", &len);
    assert_true(len <= WIRE_BEACON_MAX);
    wire_beacon bc;
    assert_int_equal(wire_beacon_decode(b, len, &bc, &tagged), 0);
    uint8_t id[32];
    node_id(id, 0x00);
    assert_true(bc.version == 1);
    assert_memory_equal(bc.id, id, 32);
    assert_int_equal(bc.port, 47000);
    assert_str(bc.name, "alpha");
    assert_true(bc.boot == 3);
    /* The tag: keyed BLAKE2b-128 under the public network key over every
     * byte before element 6, which is the last 18 bytes (c4 10, tag). */
    assert_int_equal(tagged, len - 18);
    uint8_t key[32], tag[16];
    public_network_key(key);
    assert_int_equal(crypto_generichash(tag, sizeof tag, b, tagged, key, 32),
                     0);
    assert_memory_equal(bc.tag, tag, 16);

    wire_beacon e = {.version = 1, .port = 47000, .boot = 3};
    memcpy(e.id, id, 32);
    e.name = str("alpha");
    uint8_t out[WIRE_BEACON_MAX];
    size_t n, t;
    assert_int_equal(wire_beacon_encode(&e, out, sizeof out, &t), 0);
    assert_int_equal(t, tagged);
    assert_int_equal(crypto_generichash(tag, sizeof tag, out, t, key, 32), 0);
    assert_int_equal(wire_beacon_append_tag(out, sizeof out, t, tag, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, b, len);
    free(b);
}

/* Section 6's beacon with the extension map: the same node advertising
 * fd00::7 port 47001; decoded, its tag checked, and made again. */
static void test_protocol_doc_beacon_ext(void **state)
{
    (void)state;
    size_t len, tagged;
    uint8_t *b = example("beacon-ext", &len);
    wire_beacon bc;
    assert_int_equal(wire_beacon_decode(b, len, &bc, &tagged), 0);
    const uint8_t fd7[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    assert_int_equal(bc.adv_len, 16);
    assert_memory_equal(bc.adv_addr, fd7, 16);
    assert_int_equal(bc.adv_port, 47001);
    assert_int_equal(bc.port, 47000);
    assert_int_equal(tagged, len - 18);
    uint8_t key[32], tag[16];
    public_network_key(key);
    assert_int_equal(crypto_generichash(tag, sizeof tag, b, tagged, key, 32),
                     0);
    assert_memory_equal(bc.tag, tag, 16);

    wire_beacon e = {.version = 1, .port = 47000, .boot = 3};
    node_id(e.id, 0x00);
    e.name = str("alpha");
    memcpy(e.adv_addr, fd7, 16);
    e.adv_len = 16;
    e.adv_port = 47001;
    uint8_t out[WIRE_BEACON_MAX];
    size_t n, t;
    assert_int_equal(wire_beacon_encode(&e, out, sizeof out, &t), 0);
    assert_int_equal(t, tagged);
    assert_int_equal(wire_beacon_append_tag(out, sizeof out, t, tag, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, b, len);
    free(b);
}

/* Section 11.1: the request {"op": "id", "rid": 1} in one frame, read as
 * the node reads its control socket, and built as the client builds it. */
static void test_protocol_doc_ctl_id(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = example("ctl-id", &len);
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, 1u << 20);
    const uint8_t *data = b, *msg;
    size_t left = len, mlen;
    assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), 1);
    assert_int_equal(left, 0);
    wire_ctl_map m;
    assert_int_equal(wire_ctl_parse(msg, mlen, &m), 0);
    assert_int_equal(m.count, 2);
    wire_bytes op;
    uint64_t rid;
    assert_int_equal(wire_ctl_get_str(&m, "op", &op), 0);
    assert_str(op, "id");
    assert_int_equal(wire_ctl_get_uint(&m, "rid", &rid), 0);
    assert_true(rid == 1);
    assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), 0);
    wire_ctl_reader_free(&r);

    wire_ctl_builder bld;
    wire_ctl_builder_init(&bld, 1024);
    wire_ctl_map_begin(&bld, 2);
    wire_ctl_key(&bld, "op");
    wire_ctl_put_cstr(&bld, "id");
    wire_ctl_key(&bld, "rid");
    wire_ctl_put_uint(&bld, 1);
    assert_int_equal(wire_ctl_finish(&bld), 0);
    uint8_t out[64];
    size_t n;
    assert_int_equal(wire_ctl_frame(bld.buf, bld.len, out, sizeof out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, b, len);
    wire_ctl_builder_free(&bld);
    free(b);
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_doc_frame),
        cmocka_unit_test(test_protocol_doc_hello),
        cmocka_unit_test(test_protocol_doc_batch),
        cmocka_unit_test(test_protocol_doc_data),
        cmocka_unit_test(test_protocol_doc_frag),
        cmocka_unit_test(test_protocol_doc_handshake_hellos),
        cmocka_unit_test(test_protocol_doc_ack),
        cmocka_unit_test(test_protocol_doc_ping_pong),
        cmocka_unit_test(test_protocol_doc_join_leave),
        cmocka_unit_test(test_protocol_doc_peers),
        cmocka_unit_test(test_protocol_doc_bye),
        cmocka_unit_test(test_protocol_doc_public_network_key),
        cmocka_unit_test(test_protocol_doc_beacon),
        cmocka_unit_test(test_protocol_doc_beacon_ext),
        cmocka_unit_test(test_protocol_doc_ctl_id),
    };
    return cmocka_run_group_tests_name("protocol_doc", tests, setup, NULL);
}
