/* test_backpressure.c: a receiver that never reads. The sender's share of
 * the outbox (what the receiver has not acknowledged) stops at its bound
 * and says so (-EAGAIN); memory does not grow; once the receiver reads and
 * acknowledges again, CONFAB_EV_WRITABLE says there is room. */
#include "net.h"

#include "rawpeer.h"

#define QUEUE_BOUND (1u << 20)
#define MSG (64u * 1024u)

typedef struct sink {
    uint16_t port;
    rawpeer r;
    atomic_int drain; /* set by the test: start reading */
    atomic_int drained_bytes;
    size_t want;
} sink;

static bool all_drained(confab_testnet *tn, void *arg)
{
    sink *s = arg;
    (void)tn;
    return (size_t)atomic_load(&s->drained_bytes) >= s->want;
}

static int handshake_job(rawpeer_job *job)
{
    sink *s = job->arg;
    int rc = rawpeer_init(&s->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&s->r, s->port);
    if (rc == 0)
        rc = rawpeer_handshake(&s->r, "sloth");
    return rc;
}

/* Reads, acknowledges what it got (as any peer does: the cumulative seq
 * of the unicasts), and answers PINGs, until the connection closes. */
static int drain_job(rawpeer_job *job)
{
    sink *s = job->arg;
    for (;;) {
        wire_msg m;
        int rc = rawpeer_recv_msg(&s->r, &m, 10000);
        if (rc == -EPIPE)
            return 0;
        if (rc != 0)
            return rc;
        if (m.type == WIRE_T_DATA) {
            atomic_fetch_add(&s->drained_bytes, (int)m.u.data.body.len);
            wire_msg ack;
            memset(&ack, 0, sizeof ack);
            ack.type = WIRE_T_ACK;
            ack.u.ack.has_seq = 1;
            ack.u.ack.seq = m.u.data.seq;
            rc = rawpeer_send_msg(&s->r, &ack);
            if (rc != 0)
                return rc;
        }
        if (m.type == WIRE_T_FRAG)
            atomic_fetch_add(&s->drained_bytes, (int)m.u.frag.data.len);
        if (m.type == WIRE_T_PING) {
            m.type = WIRE_T_PONG;
            rc = rawpeer_send_msg(&s->r, &m);
            if (rc != 0)
                return rc;
        }
    }
}

typedef struct pusher {
    confab_node *n;
    const uint8_t *to;
    uint8_t *body;
    size_t accepted;
    int last_rc;
    unsigned refusals;
} pusher;

/* Sends until refused, yielding to the loop between sends so that what
 * can be written is written (and the kernel's buffers fill up). */
static bool push_until_refused(confab_testnet *tn, void *arg)
{
    pusher *p = arg;
    (void)tn;
    p->last_rc = confab_send(p->n, p->to, p->body, MSG, NULL, NULL);
    if (p->last_rc == 0)
        p->accepted += MSG;
    return p->last_rc == -EAGAIN;
}

static void test_backpressure_queue_stops_at_bound(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 1);
    c.node.send_queue_bytes = QUEUE_BOUND;
    /* The sink answers no pings while it does not read: give it time. */
    c.node.peer_timeout_ms = 60000;
    net_start(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);

    sink s;
    memset(&s, 0, sizeof s);
    s.port = confab_node_port(n0);
    rawpeer_job job;
    rawpeer_job_start(&job, handshake_job, &s);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(5000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_UP, 0, -1, 1, 5000),
                     0);

    pusher p = {.n = n0, .to = s.r.peer_id};
    p.to = s.r.peer_id;
    uint8_t sink_id[32];
    memcpy(sink_id, s.r.id->pk, 32);
    p.to = sink_id;
    p.body = calloc(1, MSG);
    assert_non_null(p.body);
    assert_int_equal(confab_testnet_run_until(f.tn, push_until_refused, &p,
                                              net_deadline(20000)),
                     0);
    assert_int_equal(p.last_rc, -EAGAIN);
    /* What was accepted and not acknowledged stops at the bound (plus one
     * message): far below what an unbounded queue would have swallowed. */
    confab_peer_info info;
    assert_int_equal(confab_peer(n0, sink_id, &info), 0);
    assert_true(info.outbox_bytes <= QUEUE_BOUND + MSG + 256);
    assert_true(info.outbox_bytes + MSG + 256 > QUEUE_BOUND);
    assert_true(p.accepted <= QUEUE_BOUND + MSG);
    assert_true(info.queued_bytes <= info.outbox_bytes);
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_true(st.sends_refused_full >= 1);
    /* Still refused: the queue does not drain by itself. */
    assert_int_equal(confab_send(n0, sink_id, p.body, MSG, NULL, NULL),
                     -EAGAIN);

    /* The sink reads again: the node says there is room. */
    rawpeer_job_start(&job, drain_job, &s);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_WRITABLE, 0, -1, 1, 10000), 0);
    assert_int_equal(confab_send(n0, sink_id, p.body, MSG, NULL, NULL), 0);
    p.accepted += MSG;
    free(p.body);
    /* Everything accepted arrives. */
    s.want = p.accepted;
    assert_int_equal(
        confab_testnet_run_until(f.tn, all_drained, &s, net_deadline(10000)),
        0);

    /* Closing the node ends the drain job. */
    net_stop(&f);
    assert_int_equal(rawpeer_job_join(&job), 0);
    rawpeer_free(&s.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backpressure_queue_stops_at_bound),
    };
    return cmocka_run_group_tests_name("backpressure", tests, NULL, NULL);
}
