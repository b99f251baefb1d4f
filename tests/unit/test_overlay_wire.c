/* test_overlay_wire.c: the overlay codec (wire/overlay.c, docs/PROTOCOL.md
 * section 15): every op round-trips; malformed input, lists over their
 * bounds, out-of-range values, duplicate and missing keys are refused. */
#include "wire/overlay.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const uint8_t ID_A[32] = {1, 2, 3};
static const uint8_t ID_B[32] = {9, 8, 7};
static const uint8_t MID[16] = {0xaa, 0xbb};
static const uint8_t IP4[4] = {10, 0, 0, 7};

static wire_ovl_entry entry(const uint8_t *id)
{
    wire_ovl_entry e = {id, IP4, 4, 47000};
    return e;
}

/* d borrows from the encoded bytes (ids, addresses): they stay in a
 * static buffer until the next call, not on a stack that is gone. */
static void roundtrip(const wire_ovl *m, wire_ovl *d)
{
    static uint8_t buf[4096];
    size_t len;
    assert_int_equal(wire_ovl_encode(m, buf, sizeof buf, &len), 0);
    assert_int_equal(wire_ovl_decode(buf, len, d), 0);
    assert_int_equal(d->t, m->t);
    assert_int_equal(d->op, m->op);
    /* Every prefix is malformed. */
    for (size_t k = 0; k < len; k++) {
        wire_ovl x;
        assert_int_equal(wire_ovl_decode(buf, k, &x), -EPROTO);
    }
}

static void test_overlay_wire_hyparview(void **state)
{
    (void)state;
    wire_ovl m, d;
    memset(&m, 0, sizeof m);
    m.t = WIRE_T_HPV;
    for (uint8_t op = WIRE_HPV_JOIN; op <= WIRE_HPV_SHUFFLE_REPLY; op++) {
        m.op = op;
        m.node = entry(ID_A);
        m.ttl = 6;
        m.hi = 1;
        m.ok = 1;
        m.nids = WIRE_OVL_MAX_IDS;
        for (unsigned i = 0; i < m.nids; i++)
            m.ids[i] = entry(i % 2 ? ID_A : ID_B);
        roundtrip(&m, &d);
        if (op == WIRE_HPV_FORWARD_JOIN || op == WIRE_HPV_SHUFFLE) {
            assert_memory_equal(d.node.id, ID_A, 32);
            assert_int_equal(d.node.port, 47000);
            assert_int_equal(d.ttl, 6);
        }
        if (op == WIRE_HPV_SHUFFLE || op == WIRE_HPV_SHUFFLE_REPLY) {
            assert_int_equal(d.nids, WIRE_OVL_MAX_IDS);
            assert_memory_equal(d.ids[3].id, ID_A, 32);
        }
        if (op == WIRE_HPV_NEIGHBOR)
            assert_int_equal(d.hi, 1);
    }
    /* Over the bounds: refused by the encoder too. */
    uint8_t buf[4096];
    size_t len;
    m.op = WIRE_HPV_SHUFFLE;
    m.nids = WIRE_OVL_MAX_IDS + 1;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
    m.nids = 1;
    m.ttl = WIRE_OVL_MAX_TTL + 1;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
    m.op = 8;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
}

static void test_overlay_wire_plumtree(void **state)
{
    (void)state;
    wire_ovl m, d;
    memset(&m, 0, sizeof m);
    m.t = WIRE_T_PT;
    m.op = WIRE_PT_GOSSIP;
    m.id = MID;
    m.origin = ID_A;
    m.round = 3;
    m.body.ptr = (const uint8_t *)"hello";
    m.body.len = 5;
    roundtrip(&m, &d);
    assert_memory_equal(d.id, MID, 16);
    assert_memory_equal(d.origin, ID_A, 32);
    assert_int_equal(d.round, 3);
    assert_int_equal(d.body.len, 5);
    m.op = WIRE_PT_IHAVE;
    m.nih = WIRE_OVL_MAX_IHAVE;
    for (unsigned i = 0; i < m.nih; i++) {
        m.ih_id[i] = MID;
        m.ih_round[i] = i;
    }
    roundtrip(&m, &d);
    assert_int_equal(d.nih, WIRE_OVL_MAX_IHAVE);
    assert_int_equal(d.ih_round[31], 31);
    m.op = WIRE_PT_GRAFT;
    roundtrip(&m, &d);
    assert_int_equal(d.has_id, 1);
    m.id = NULL;
    roundtrip(&m, &d);
    assert_int_equal(d.has_id, 0);
    m.op = WIRE_PT_PRUNE;
    roundtrip(&m, &d);
    uint8_t buf[4096];
    size_t len;
    m.op = WIRE_PT_IHAVE;
    m.nih = 0;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
    m.nih = WIRE_OVL_MAX_IHAVE + 1;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
}

static void test_overlay_wire_swim(void **state)
{
    (void)state;
    wire_ovl m, d;
    memset(&m, 0, sizeof m);
    m.t = WIRE_T_SWIM;
    m.seq = 77;
    m.target = ID_B;
    m.nup = WIRE_OVL_MAX_UPD;
    for (unsigned i = 0; i < m.nup; i++) {
        m.up[i].id = ID_A;
        m.up[i].state = (uint8_t)(i % 3);
        m.up[i].inc = 1000 + i;
        m.up[i].from = ID_B;
        m.up[i].has_addr = i == 0;
        m.up[i].addr = IP4;
        m.up[i].addr_len = 4;
        m.up[i].port = 9;
    }
    for (uint8_t op = WIRE_SWIM_PING; op <= WIRE_SWIM_GOSSIP; op++) {
        m.op = op;
        roundtrip(&m, &d);
        assert_int_equal(d.nup, WIRE_OVL_MAX_UPD);
        assert_int_equal(d.up[4].state, 1);
        assert_int_equal(d.up[5].inc, 1005);
        assert_int_equal(d.up[0].has_addr, 1);
        assert_int_equal(d.up[0].port, 9);
        if (op != WIRE_SWIM_GOSSIP)
            assert_int_equal(d.seq, 77);
        if (op == WIRE_SWIM_PING_REQ)
            assert_memory_equal(d.target, ID_B, 32);
    }
    uint8_t buf[4096];
    size_t len;
    m.nup = WIRE_OVL_MAX_UPD + 1;
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
    m.nup = 1;
    m.up[0].state = 1; /* an address on a suspicion */
    assert_int_equal(wire_ovl_encode(&m, buf, sizeof buf, &len), -EINVAL);
}

static int dec(const char *hex)
{
    uint8_t buf[512];
    size_t n = 0;
    for (const char *p = hex; p[0] != '\0';) {
        if (p[0] == ' ') {
            p++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(p, "%2x", &v), 1);
        buf[n++] = (uint8_t)v;
        p += 2;
    }
    wire_ovl m;
    return wire_ovl_decode(buf, n, &m);
}

static void test_overlay_wire_malformed(void **state)
{
    (void)state;
    /* A good PRUNE, then the same with each fault. */
    assert_int_equal(dec("82 a174 1f a26f70 04"), 0);
    /* unknown key skipped */
    assert_int_equal(dec("83 a174 1f a26f70 04 a178 c0"), 0);
    assert_int_equal(dec("dd ffffffff"), -EPROTO);             /* huge array */
    assert_int_equal(dec("df ffffffff"), -EPROTO);             /* huge map */
    assert_int_equal(dec("82 a174 1f a26f70 04 00"), -EPROTO); /* trailing */
    assert_int_equal(dec("83 a174 1f a26f70 04 a26f70 04"), -EPROTO); /* dup */
    assert_int_equal(dec("81 a174 1f"), -EPROTO);           /* no op */
    assert_int_equal(dec("82 a174 1f a26f70 05"), -EPROTO); /* bad op */
    assert_int_equal(dec("82 a174 09 a26f70 04"), -EPROTO); /* not overlay */
    assert_int_equal(dec("82 a174 1f a26f70 ff"), -EPROTO); /* negative */
    /* JOIN {t 30, op 1}; FORWARD_JOIN without its node; ttl 11. */
    assert_int_equal(dec("82 a174 1e a26f70 01"), 0);
    assert_int_equal(dec("83 a174 1e a26f70 02 a374746c 03"), -EPROTO);
    assert_int_equal(
        dec("84 a174 1e a26f70 02 a374746c 0b a16e 93 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"
            " c4040a000007 cdb798"),
        -EPROTO);
    assert_int_equal(
        dec("84 a174 1e a26f70 02 a374746c 0a a16e 93 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"
            " c4040a000007 cdb798"),
        0);
    /* port 0 */
    assert_int_equal(
        dec("84 a174 1e a26f70 02 a374746c 0a a16e 93 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"
            " c4040a000007 00"),
        -EPROTO);
    /* IHAVE with no ids; a 15-byte id. */
    assert_int_equal(dec("83 a174 1f a26f70 02 a26968 90"), -EPROTO);
    assert_int_equal(dec("83 a174 1f a26f70 02 a26968 91 92 c40f"
                         "000000000000000000000000000000 00"),
                     -EPROTO);
    assert_int_equal(dec("83 a174 1f a26f70 02 a26968 91 92 c410"
                         "00000000000000000000000000000000 00"),
                     0);
    /* SWIM GOSSIP with an update of state 3. */
    assert_int_equal(
        dec("83 a174 20 a26f70 05 a27570 91 94 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"
            " 03 00 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"),
        -EPROTO);
    assert_int_equal(
        dec("83 a174 20 a26f70 05 a27570 91 94 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"
            " 01 00 c420"
            "0000000000000000000000000000000000000000000000000000000000000000"),
        0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlay_wire_hyparview),
        cmocka_unit_test(test_overlay_wire_plumtree),
        cmocka_unit_test(test_overlay_wire_swim),
        cmocka_unit_test(test_overlay_wire_malformed),
    };
    return cmocka_run_group_tests_name("overlay_wire", tests, NULL, NULL);
}
