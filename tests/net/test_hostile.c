/* test_hostile.c: a peer that breaks the protocol loses its link, and
 * nothing else is disturbed: garbage before the handshake, oversized and
 * unknown frames, a frame that fails to decrypt, malformed msgpack, a
 * fragment past what was announced, and the wrong network key. */
#include "net.h"

#include "rawpeer.h"

#include <sodium.h>

typedef struct attack {
    uint16_t port;
    int kind;
    rawpeer r;
} attack;

enum {
    A_GARBAGE,       /* an HTTP request instead of a handshake */
    A_BIG_MSG1,      /* a first handshake frame over 48 bytes */
    A_BAD_PSK,       /* the wrong network key */
    A_BIN32,         /* after the handshake: a bin 32 header */
    A_BAD_CIPHER,    /* after the handshake: a frame that fails to decrypt */
    A_BAD_MSGPACK,   /* after the handshake: dd ff ff ff ff, encrypted */
    A_FRAG_OVERRUN,  /* after the handshake: more than the size announced */
    A_TRUNCATED,     /* after the handshake: a frame cut off, then EOF */
};

static int attack_job(rawpeer_job *job)
{
    attack *a = job->arg;
    rawpeer *r = &a->r;
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    int rc = rawpeer_init(r, a->kind == A_BAD_PSK ? key : NULL);
    if (rc == 0)
        rc = rawpeer_connect(r, a->port);
    if (rc != 0)
        return rc;
    switch (a->kind) {
    case A_GARBAGE:
        rc = rawpeer_send_raw(r, "GET / HTTP/1.0\r\n\r\n", 18);
        break;
    case A_BIG_MSG1: {
        uint8_t junk[49] = {0};
        rc = rawpeer_send_frame(r, junk, sizeof junk);
        break;
    }
    case A_BAD_PSK:
        /* Message 1 fails to authenticate: the node answers nothing. */
        rc = rawpeer_handshake(r, "intruder");
        if (rc == -EPIPE)
            return 0;
        return rc == 0 ? -EPROTO : rc;
    default:
        rc = rawpeer_handshake(r, "mallory");
        if (rc != 0)
            return rc;
        if (a->kind == A_BIN32) {
            uint8_t hdr[5] = {0xc6, 0, 1, 0, 0};
            rc = rawpeer_send_raw(r, hdr, sizeof hdr);
        } else if (a->kind == A_BAD_CIPHER) {
            uint8_t junk[64];
            randombytes_buf(junk, sizeof junk);
            rc = rawpeer_send_frame(r, junk, sizeof junk);
        } else if (a->kind == A_BAD_MSGPACK) {
            uint8_t bad[5] = {0xdd, 0xff, 0xff, 0xff, 0xff};
            rc = rawpeer_send_plain(r, bad, sizeof bad);
        } else if (a->kind == A_FRAG_OVERRUN) {
            wire_msg m;
            memset(&m, 0, sizeof m);
            m.type = WIRE_T_DATA;
            memset(m.u.data.id, 7, 16);
            m.u.data.body.ptr = (const uint8_t *)"abcd";
            m.u.data.body.len = 4;
            m.u.data.fragmented = 1;
            m.u.data.size = 8;
            rc = rawpeer_send_msg(r, &m);
            memset(&m, 0, sizeof m);
            m.type = WIRE_T_FRAG;
            memset(m.u.frag.id, 7, 16);
            m.u.frag.off = 4;
            m.u.frag.data.ptr = (const uint8_t *)"efghij";
            m.u.frag.data.len = 6; /* 10 bytes in all, 8 announced */
            if (rc == 0)
                rc = rawpeer_send_msg(r, &m);
        } else if (a->kind == A_TRUNCATED) {
            uint8_t part[3] = {0xc5, 0x01, 0x00}; /* 256 bytes announced */
            rc = rawpeer_send_raw(r, part, sizeof part);
            shutdown(r->fd, SHUT_WR);
        }
        break;
    }
    if (rc != 0)
        return rc;
    return rawpeer_wait_closed(r, 5000);
}

static void run_attack(int kind)
{
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_stats before;
    confab_node_stats(n0, &before);

    attack a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    a.kind = kind;
    rawpeer_job job;
    rawpeer_job_start(&job, attack_job, &a);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(10000)),
                     0);
    /* The node closed the connection. */
    assert_int_equal(rawpeer_job_join(&job), 0);
    rawpeer_free(&a.r);

    confab_stats after;
    confab_node_stats(n0, &after);
    if (kind <= A_BAD_PSK) {
        assert_int_equal(after.handshakes_failed, before.handshakes_failed + 1);
    } else {
        /* The intruder was linked, then cut: for a protocol error, or, when
         * the stream ended mid-frame, because it closed. */
        assert_int_equal(after.protocol_errors,
                         before.protocol_errors + (kind != A_TRUNCATED));
        const confab_testnet_event *ev;
        size_t n = confab_testnet_events(f.tn, &ev);
        int downs = 0;
        for (size_t k = 0; k < n; k++)
            if (ev[k].type == CONFAB_EV_PEER_DOWN && ev[k].node == 0 &&
                ev[k].peer < 0) {
                assert_int_equal(ev[k].reason, kind == A_TRUNCATED
                                                   ? CONFAB_DOWN_CLOSED
                                                   : CONFAB_DOWN_PROTOCOL);
                downs++;
            }
        assert_int_equal(downs, 1);
    }
    /* Nothing else was disturbed: the n0-n1 link is up and carries a
     * message both ways. */
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, -1, 1), 0);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, 1, -1), 0);
    assert_int_equal(
        confab_send(n0, net_id(f.tn, 1), "still here", 10, NULL, NULL), 0);
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 1), net_id(f.tn, 0),
                                 "me too", 6, NULL, NULL),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 1, 5000),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 0, 1, 1, 5000),
                     0);
    net_stop(&f);
}

static void test_hostile_garbage_before_handshake(void **s)
{
    (void)s;
    run_attack(A_GARBAGE);
}
static void test_hostile_oversized_first_frame(void **s)
{
    (void)s;
    run_attack(A_BIG_MSG1);
}
static void test_hostile_wrong_network_key(void **s)
{
    (void)s;
    run_attack(A_BAD_PSK);
}
static void test_hostile_bin32_frame(void **s)
{
    (void)s;
    run_attack(A_BIN32);
}
static void test_hostile_frame_fails_to_decrypt(void **s)
{
    (void)s;
    run_attack(A_BAD_CIPHER);
}
static void test_hostile_malformed_msgpack(void **s)
{
    (void)s;
    run_attack(A_BAD_MSGPACK);
}
static void test_hostile_fragment_overrun(void **s)
{
    (void)s;
    run_attack(A_FRAG_OVERRUN);
}
static void test_hostile_truncated_frame(void **s)
{
    (void)s;
    run_attack(A_TRUNCATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_garbage_before_handshake),
        cmocka_unit_test(test_hostile_oversized_first_frame),
        cmocka_unit_test(test_hostile_wrong_network_key),
        cmocka_unit_test(test_hostile_bin32_frame),
        cmocka_unit_test(test_hostile_frame_fails_to_decrypt),
        cmocka_unit_test(test_hostile_malformed_msgpack),
        cmocka_unit_test(test_hostile_fragment_overrun),
        cmocka_unit_test(test_hostile_truncated_frame),
    };
    return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
