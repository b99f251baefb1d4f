/* test_batch.c: several messages per transport message (#18; docs/PROTOCOL.md
 * sections 3.2 and 4), over real sockets:
 * - two nodes announce `batch` to each other and a burst of unicasts
 *   travels several to a frame, each delivered once and in order;
 * - a peer that does not announce it (a raw peer, as an older node) gets
 *   exactly one map per transport message, and may itself send batches;
 * - a peer that announces it gets several maps per transport message;
 * - a batch whose second map is malformed, followed by garbage, or over a
 *   limit cuts the link, counted in frames_batch_refused. */
#include "net.h"

#include "rawpeer.h"

#include <errno.h>
#include <sodium.h>

#define BURST 300u /* unicasts from node 0 to node 1 */
#define PINGS 50u  /* PINGs a raw peer sends in one write */

static bool all_messages(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_testnet_count(tn, CONFAB_EV_MESSAGE, 1, 0) >= BURST;
}

static void test_batch_nodes_negotiate_and_batch(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.record_body_max = 8;
    net_start_meshed(&f, &c);
    confab_node *a = confab_testnet_node(f.tn, 0);
    confab_node *b = confab_testnet_node(f.tn, 1);
    confab_stats a0, b0, a1, b1;
    confab_node_stats(a, &a0);
    confab_node_stats(b, &b0);
    uint8_t body[64];
    for (uint32_t i = 0; i < BURST; i++) {
        memset(body, 0, sizeof body);
        memcpy(body, &i, sizeof i);
        assert_int_equal(
            confab_send(a, net_id(f.tn, 1), body, sizeof body, NULL, NULL), 0);
    }
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 0, 1, BURST, 20000),
                     0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, all_messages, NULL, net_deadline(10000)),
        0);
    /* Each once, in order. */
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    uint32_t next = 0;
    for (size_t k = 0; k < n; k++) {
        if (ev[k].type != CONFAB_EV_MESSAGE || ev[k].node != 1)
            continue;
        uint32_t i;
        memcpy(&i, ev[k].body, sizeof i);
        assert_int_equal(i, next);
        next++;
    }
    assert_int_equal(next, BURST);
    confab_node_stats(a, &a1);
    confab_node_stats(b, &b1);
    uint64_t frames = a1.frames_sent - a0.frames_sent;
    uint64_t maps = a1.frame_maps_sent - a0.frame_maps_sent;
    uint64_t rframes = b1.frames_received - b0.frames_received;
    uint64_t rmaps = b1.frame_maps_received - b0.frame_maps_received;
    print_message("sender: %llu messages in %llu transport messages (%llu "
                  "batched); receiver: %llu in %llu\n",
                  (unsigned long long)maps, (unsigned long long)frames,
                  (unsigned long long)(a1.frames_batched - a0.frames_batched),
                  (unsigned long long)rmaps, (unsigned long long)rframes);
    assert_true(maps >= BURST);
    /* One map per frame would be 300 frames; a loop turn's burst goes in
     * a few (the acknowledgements back, too). */
    assert_true(frames * 4 <= maps);
    assert_true(a1.frames_batched > a0.frames_batched);
    assert_true(rmaps >= BURST && rframes * 4 <= rmaps);
    assert_int_equal(a1.frames_batch_refused, 0);
    assert_int_equal(b1.frames_batch_refused, 0);
    assert_int_equal(a1.protocol_errors + b1.protocol_errors, 0);
    net_stop(&f);
}

/* ---- raw peers -------------------------------------------------------- */

enum {
    R_PLAIN,   /* announces nothing: PINGs in, one PONG per frame out */
    R_BATCH,   /* announces `batch`: PONGs come several to a frame */
    R_SENDS,   /* announces nothing, sends two unicasts in one frame */
    R_TRUNC,   /* a PING, then a map cut short, in one frame */
    R_GARBAGE, /* a PING, then a byte that is no msgpack */
    R_OVER,    /* a PING, then a PING with 1025 bytes of data */
};

typedef struct raw {
    uint16_t port;
    int kind;
    rawpeer r;
    int node_batch;   /* the node's HELLO said `batch` */
    unsigned pongs;   /* PONGs to our PINGs */
    unsigned frames;  /* transport messages that carried them */
    unsigned maxmaps; /* most maps in one of those */
    unsigned acks;    /* ACK maps (R_SENDS) */
} raw;

static void ping_msg(wire_msg *m, uint64_t n)
{
    memset(m, 0, sizeof *m);
    m->type = WIRE_T_PING;
    m->u.ping.n = n;
}

/* Reads until every PING is answered: each frame decoded map by map. */
static int read_pongs(raw *x, bool whole)
{
    while (x->pongs < PINGS) {
        const uint8_t *p;
        size_t len;
        int rc = rawpeer_recv_plain(&x->r, &p, &len, 10000);
        if (rc != 0)
            return rc;
        unsigned maps = 0, here = 0;
        while (len > 0) {
            wire_msg m;
            size_t used;
            /* An older node reads each frame as one map: so must this. */
            rc = whole ? wire_msg_decode(p, len, &m)
                       : wire_msg_decode_next(p, len, &m, &used);
            if (rc != 0)
                return rc;
            if (whole)
                used = len;
            maps++;
            if (m.type == WIRE_T_PONG && m.u.ping.n >= 1 && m.u.ping.n <= PINGS)
                here++;
            p += used;
            len -= used;
        }
        x->pongs += here;
        x->frames += here > 0;
        if (maps > x->maxmaps)
            x->maxmaps = maps;
    }
    return 0;
}

static int send_two_unicasts(raw *x)
{
    wire_msg m[2];
    static const uint8_t body[2][5] = {"one", "two"};
    for (unsigned i = 0; i < 2; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].type = WIRE_T_DATA;
        wire_data *d = &m[i].u.data;
        randombytes_buf(d->id, sizeof d->id);
        d->kind = WIRE_K_UNICAST;
        d->seq = i + 1;
        d->ts = 1;
        d->body.ptr = body[i];
        d->body.len = 3;
        d->size = 3;
    }
    int rc = rawpeer_send_batch(&x->r, m, 2, NULL, 0);
    /* The acknowledgement comes back, one map per frame. */
    while (rc == 0 && x->acks == 0) {
        wire_msg a;
        rc = rawpeer_recv_msg(&x->r, &a, 10000);
        if (rc == 0 && a.type == WIRE_T_ACK && a.u.ack.has_seq &&
            a.u.ack.seq >= 1)
            x->acks++;
    }
    return rc;
}

static int send_bad_batch(raw *x)
{
    wire_msg first;
    ping_msg(&first, 1);
    static uint8_t tail[16 + WIRE_MAX_PING_DATA + 1];
    size_t tlen = 0;
    if (x->kind == R_TRUNC) {
        wire_msg m;
        ping_msg(&m, 2);
        int rc = wire_msg_encode(&m, tail, sizeof tail, &tlen);
        if (rc != 0)
            return rc;
        tlen--; /* its last byte cut off */
    } else if (x->kind == R_GARBAGE) {
        tail[0] = 0xc1;
        tlen = 1;
    } else {
        /* {"t": 4, "n": 2, "data": bin of 1025 bytes}: over PING's limit */
        static const uint8_t head[] = {0x83, 0xa1, 't', 0x04, 0xa1, 'n', 0x02,
                                       0xa4, 'd',  'a', 't',  'a',  0xc5};
        memcpy(tail, head, sizeof head);
        tlen = sizeof head;
        tail[tlen++] = (uint8_t)((WIRE_MAX_PING_DATA + 1) >> 8);
        tail[tlen++] = (uint8_t)(WIRE_MAX_PING_DATA + 1);
        memset(tail + tlen, 0, WIRE_MAX_PING_DATA + 1);
        tlen += WIRE_MAX_PING_DATA + 1;
    }
    int rc = rawpeer_send_batch(&x->r, &first, 1, tail, tlen);
    return rc != 0 ? rc : rawpeer_wait_closed(&x->r, 10000);
}

static int raw_job(rawpeer_job *job)
{
    raw *x = job->arg;
    int rc = rawpeer_init(&x->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&x->r, x->port);
    if (rc == 0)
        rc = x->kind == R_BATCH ? rawpeer_handshake_batch(&x->r, "batcher")
                                : rawpeer_handshake(&x->r, "elder");
    if (rc != 0)
        return rc;
    x->node_batch = x->r.hello.batch;
    if (x->kind == R_SENDS)
        return send_two_unicasts(x);
    if (x->kind >= R_TRUNC)
        return send_bad_batch(x);
    wire_msg m[PINGS];
    for (unsigned i = 0; i < PINGS; i++)
        ping_msg(&m[i], i + 1);
    rc = rawpeer_send_msgs_at_once(&x->r, m, PINGS);
    return rc != 0 ? rc : read_pongs(x, x->kind == R_PLAIN);
}

/* Runs a raw peer of kind against node 0 of a pair; fills x and the
 * node's stats before and after. */
static void run_raw(int kind, raw *x, confab_stats *before, confab_stats *after)
{
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_node_stats(n0, before);
    memset(x, 0, sizeof *x);
    x->port = confab_node_port(n0);
    x->kind = kind;
    rawpeer_job job;
    rawpeer_job_start(&job, raw_job, x);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(20000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    if (kind == R_SENDS)
        assert_int_equal(
            net_wait_count(f.tn, CONFAB_EV_MESSAGE, 0, -1, 2, 10000), 0);
    confab_node_stats(n0, after);
    rawpeer_free(&x->r);
    net_stop(&f);
}

static void test_batch_old_peer_gets_one_map_per_frame(void **state)
{
    (void)state;
    raw x;
    confab_stats s0, s1;
    run_raw(R_PLAIN, &x, &s0, &s1);
    assert_int_equal(x.node_batch, 1); /* the node announces it */
    /* read_pongs decoded each frame as exactly one map */
    assert_int_equal(x.pongs, PINGS);
    assert_int_equal(x.frames, PINGS);
    assert_int_equal(x.maxmaps, 1);
    assert_int_equal(s1.protocol_errors, s0.protocol_errors);
}

static void test_batch_old_peer_may_send_batches(void **state)
{
    (void)state;
    raw x;
    confab_stats s0, s1;
    run_raw(R_SENDS, &x, &s0, &s1);
    assert_true(x.acks >= 1);
    assert_int_equal(s1.protocol_errors, s0.protocol_errors);
    assert_true(s1.frame_maps_received - s0.frame_maps_received >
                s1.frames_received - s0.frames_received);
}

static void test_batch_peer_announcing_gets_batches(void **state)
{
    (void)state;
    raw x;
    confab_stats s0, s1;
    run_raw(R_BATCH, &x, &s0, &s1);
    print_message("%u PONGs in %u transport messages, at most %u maps in "
                  "one\n",
                  x.pongs, x.frames, x.maxmaps);
    assert_int_equal(x.pongs, PINGS);
    /* Read together, answered together: several to a frame. */
    assert_true(x.maxmaps >= 2);
    assert_true(x.frames * 2 <= PINGS);
    assert_true(s1.frames_batched > s0.frames_batched);
}

static void run_hostile(int kind)
{
    raw x;
    confab_stats s0, s1;
    run_raw(kind, &x, &s0, &s1);
    /* The job returned 0: the node closed the connection. */
    assert_int_equal(s1.protocol_errors - s0.protocol_errors, 1);
    assert_int_equal(s1.frames_batch_refused - s0.frames_batch_refused, 1);
}

static void test_batch_hostile_cut_map(void **state)
{
    (void)state;
    run_hostile(R_TRUNC);
}

static void test_batch_hostile_trailing_garbage(void **state)
{
    (void)state;
    run_hostile(R_GARBAGE);
}

static void test_batch_hostile_map_over_limit(void **state)
{
    (void)state;
    run_hostile(R_OVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_nodes_negotiate_and_batch),
        cmocka_unit_test(test_batch_old_peer_gets_one_map_per_frame),
        cmocka_unit_test(test_batch_old_peer_may_send_batches),
        cmocka_unit_test(test_batch_peer_announcing_gets_batches),
        cmocka_unit_test(test_batch_hostile_cut_map),
        cmocka_unit_test(test_batch_hostile_trailing_garbage),
        cmocka_unit_test(test_batch_hostile_map_over_limit),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
