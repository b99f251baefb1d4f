/* test_control_bounds.c: a local program that misbehaves on the control
 * socket cannot hang or bloat the node (docs/SECURITY.md, "Bounds"): a
 * follower that never reads, more clients than the bound, more waiting
 * requests, unread events, unread replies and unfinished requests. Each
 * time the node goes on answering another client and a good peer. */
#include "ctl_client.h"

#include "rawpeer.h"

/* ---- a follower that never reads --------------------------------------- */

#define BIG_LEN ((size_t)1 << 20)
/* Over 128 MiB: the old per-client bound, where cutting the follower sent
 * the client walk round an unlinked entry for ever. */
#define BIG_COUNT 140u

static void test_control_follower_never_reads(void **state)
{
    (void)state;
    ctl_net cn;
    ctl_net_start(&cn, NULL);
    tclient follower;
    tc_open(&follower, cn.path);
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "recv");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "follow");
    wire_ctl_put_bool(&b, 1);
    tc_queue(&follower, &b);
    tc_flush(&follower); /* and never read while the messages come */

    ctl_net_send(&cn, BIG_COUNT, BIG_LEN, 120000);

    /* The node answers another client, and was not made to cut the
     * follower: what it has not read waits in the inbox. */
    tclient other;
    tc_open(&other, cn.path);
    tc_simple(&other, "status", 2);
    tc_wait_replies(cn.srv, &other, 1, 0, 5000);
    assert_false(other.eof);
    assert_true(other.last_ok);
    assert_int_equal(other.last_rid, 2);
    confab_stats st = ctl_net_stats(&cn);
    assert_int_equal(st.ctl_clients_cut, 0);
    assert_true(confab_inbox_count(ctl_net_node(&cn)) > 0);

    /* A good peer's unicasts still arrive. */
    ctl_net_send(&cn, 5, 100, 10000);

    /* Once it reads, the follower gets every message, each once: in its
     * reply those that came before it followed, then as events. */
    tc_wait_replies(cn.srv, &follower, 1, BIG_COUNT + 5, 120000);
    assert_false(follower.eof);
    assert_int_equal(follower.n_msgs, BIG_COUNT + 5);
    assert_int_equal(follower.msg_bytes, BIG_COUNT * BIG_LEN + 5 * 100);
    assert_true(follower.n_events > BIG_COUNT / 2);
    assert_int_equal(confab_inbox_count(ctl_net_node(&cn)), 0);

    tc_close(&follower);
    tc_close(&other);
    ctl_net_stop(&cn);
}

/* ---- clients at once --------------------------------------------------- */

static bool clients_are(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, 0), &st);
    return st.ctl_clients == 63;
}

static void test_control_clients_at_bound(void **state)
{
    (void)state;
    enum { MAX = 64 }; /* the default ctl_max_clients */
    ctl_net cn;
    ctl_net_start(&cn, NULL);
    tclient *t = calloc(MAX + 2, sizeof *t);
    assert_non_null(t);
    for (unsigned i = 0; i < MAX; i++) {
        tc_open(&t[i], cn.path);
        tc_simple(&t[i], "id", i);
        tc_wait_replies(cn.srv, &t[i], 1, 0, 5000);
        assert_false(t[i].eof);
    }
    /* One more is closed unanswered, and counted. */
    tc_open(&t[MAX], cn.path);
    tc_simple(&t[MAX], "id", 99);
    assert_int_equal(tc_wait_eof(cn.srv, &t[MAX], 5000), 0);
    assert_int_equal(t[MAX].n_replies, 0);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    /* Those connected are still served; one that leaves makes room. */
    tc_simple(&t[0], "status", 100);
    tc_wait_replies(cn.srv, &t[0], 2, 0, 5000);
    assert_true(t[0].last_ok);
    tc_close(&t[1]);
    assert_int_equal(confab_testnet_run_until(cn.srv, clients_are, NULL,
                                              net_deadline(5000)),
                     0);
    tc_open(&t[MAX + 1], cn.path);
    tc_simple(&t[MAX + 1], "id", 101);
    tc_wait_replies(cn.srv, &t[MAX + 1], 1, 0, 5000);
    assert_false(t[MAX + 1].eof);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    for (unsigned i = 0; i < MAX + 2; i++)
        tc_close(&t[i]);
    free(t);
    ctl_net_stop(&cn);
}

/* ---- requests waiting for an outcome ----------------------------------- */

static bool peer_down(confab_testnet *tn, void *arg)
{
    ctl_net *cn = arg;
    confab_peer_info info;
    return confab_peer(confab_testnet_node(tn, 0),
                       confab_node_id(ctl_net_peer(cn)), &info) == 0 &&
           info.state != CONFAB_PEER_UP;
}

static void queue_send_wait(tclient *t, const uint8_t *to, uint64_t rid)
{
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 5);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "send");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, rid);
    wire_ctl_key(&b, "to");
    wire_ctl_put_bin(&b, to, CONFAB_ID_BYTES);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, "x", 1);
    wire_ctl_key(&b, "wait");
    wire_ctl_put_bool(&b, 1);
    tc_queue(t, &b);
}

static void test_control_waits_at_bound(void **state)
{
    (void)state;
    enum { MAX = 1024 }; /* the default ctl_max_waits */
    ctl_net cn;
    ctl_net_start(&cn, NULL);
    uint8_t to[CONFAB_ID_BYTES];
    memcpy(to, confab_node_id(ctl_net_peer(&cn)), sizeof to);
    /* The peer stays known but is gone: a send --wait has no outcome
     * until its time to live ends (24 hours). */
    assert_int_equal(confab_testnet_stop_node(cn.good, 0), 0);
    assert_int_equal(confab_testnet_run_until(cn.srv, peer_down, &cn,
                                              net_deadline(5000)),
                     0);
    tclient w;
    tc_open(&w, cn.path);
    for (unsigned i = 0; i < MAX; i++)
        queue_send_wait(&w, to, i);
    assert_int_equal(confab_testnet_run_until(cn.srv, tc_flushed, &w,
                                              net_deadline(10000)),
                     0);
    /* All MAX wait; the node answers the client's next request still. */
    tc_simple(&w, "id", 5000);
    tc_wait_replies(cn.srv, &w, 1, 0, 10000);
    assert_false(w.eof);
    assert_int_equal(w.last_rid, 5000);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 0);
    /* One more is over the bound: the client is cut, and counted. */
    queue_send_wait(&w, to, MAX);
    assert_int_equal(tc_wait_eof(cn.srv, &w, 10000), 0);
    assert_int_equal(w.n_replies, 1);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    /* Another client is served. */
    tclient other;
    tc_open(&other, cn.path);
    tc_simple(&other, "status", 1);
    tc_wait_replies(cn.srv, &other, 1, 0, 5000);
    assert_true(other.last_ok);
    tc_close(&w);
    tc_close(&other);
    ctl_net_stop(&cn);
}

/* ---- events never read ------------------------------------------------- */

typedef struct toggler {
    uint16_t port;
    unsigned pairs;
    /* When set, the events a subscriber that reads has seen: the toggler
     * stays at most `window` events ahead of it, so that subscriber's
     * backlog stays under the bound however slowly its thread runs
     * (valgrind), while one that never reads still passes it. */
    struct reader_arg *seen;
    size_t window;
    rawpeer r;
} toggler;

/* A PING and its PONG: the node has handled all sent before (flow
 * control, so that a subscriber that reads keeps up). */
static int round_trip(rawpeer *r, uint64_t n)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PING;
    m.u.ping.n = n;
    int rc = rawpeer_send_msg(r, &m);
    while (rc == 0) {
        rc = rawpeer_recv_msg(r, &m, 10000);
        if (rc == 0 && m.type == WIRE_T_PONG && m.u.ping.n == n)
            return 0;
    }
    return rc;
}

/* A subscriber that reads on a thread of its own, as a program would,
 * until it has `want` events or the node closes it (or 60 s pass). It
 * tells how far it got through a condition variable. */
typedef struct reader_arg {
    tclient *t;
    size_t want;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t seen; /* t->event_frames, under mu */
    bool done;
} reader_arg;

/* Waits until the reader has seen at least sent - window events (or is
 * done): 0, or -ETIMEDOUT after 60 s (scaled). */
static int reader_wait(reader_arg *a, size_t sent, size_t window)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += net_deadline(60000) / 1000;
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    while (rc == 0 && !a->done && sent > a->seen + window)
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &end);
    pthread_mutex_unlock(&a->mu);
    return rc == 0 ? 0 : -ETIMEDOUT;
}

/* A member that joins and leaves one group again and again: each is an
 * event for a subscriber. */
static int toggle_job(rawpeer_job *job)
{
    toggler *t = job->arg;
    int rc = rawpeer_init(&t->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&t->r, t->port);
    if (rc == 0)
        rc = rawpeer_handshake(&t->r, "toggler");
    char g[WIRE_MAX_GROUP + 1];
    memset(g, 'g', WIRE_MAX_GROUP);
    g[WIRE_MAX_GROUP] = '\0';
    for (unsigned i = 0; rc == 0 && i < t->pairs; i++) {
        rc = rawpeer_send_group(&t->r, true, g);
        if (rc == 0)
            rc = rawpeer_send_group(&t->r, false, g);
        if (rc == 0 && i % 500 == 499)
            rc = round_trip(&t->r, i);
        if (rc == 0 && t->seen != NULL)
            rc = reader_wait(t->seen, 2u * (size_t)(i + 1), t->window);
    }
    return rc;
}


static int reader_job(rawpeer_job *job)
{
    reader_arg *a = job->arg;
    /* A deadline, not a wait: it returns as soon as all came. */
    uint64_t end = uv_hrtime() + (uint64_t)net_deadline(60000) * 1000000u;
    while (!a->t->eof && a->t->event_frames < a->want && uv_hrtime() < end) {
        struct pollfd pfd = {.fd = a->t->fd, .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        tc_pump(a->t);
        pthread_mutex_lock(&a->mu);
        a->seen = a->t->event_frames;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
    pthread_mutex_lock(&a->mu);
    a->done = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return a->t->eof ? -EPIPE : 0;
}

/* The toggler below never answers the node's PINGs (it reads only its
 * own PONGs); under valgrind the test outlasts the peer timeout, after
 * which the node rightly cuts a peer that does not read. */
static void patient(confab_config *c)
{
    c->peer_timeout_ms = 600000;
}

static void test_control_events_unread_cut(void **state)
{
    (void)state;
    ctl_net cn;
    ctl_net_start(&cn, patient);
    tclient sub;
    tc_open(&sub, cn.path);
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "subscribe");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "events");
    wire_ctl_array_begin(&b, 1);
    wire_ctl_put_cstr(&b, "group");
    tc_queue(&sub, &b);
    tc_wait_replies(cn.srv, &sub, 1, 0, 5000);
    assert_true(sub.last_ok);
    /* A second subscriber, after it in the node's list, reads: the event
     * fan-out goes on past the one it cuts. */
    tclient reader;
    tc_open(&reader, cn.path);
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "subscribe");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "events");
    wire_ctl_array_begin(&b, 1);
    wire_ctl_put_cstr(&b, "group");
    tc_queue(&reader, &b);
    tc_wait_replies(cn.srv, &reader, 1, 0, 5000);

    /* About 130 bytes an event: 60,000 of them are over the 4 MiB of
     * unread events a client may leave (and under the old 128 MiB). */
    toggler *tgp = calloc(1, sizeof *tgp); /* a rawpeer: not on the stack */
    reader_arg *rap = calloc(1, sizeof *rap);
    assert_non_null(tgp);
    assert_non_null(rap);
    toggler *const tg = tgp;
    reader_arg *const ra = rap;
    tg->port = confab_node_port(ctl_net_node(&cn));
    tg->pairs = 30000;
    ra->t = &reader;
    ra->want = 2 * (size_t)tg->pairs;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    /* 8,000 events (about 1 MiB) ahead of the reader at most. */
    tg->seen = ra;
    tg->window = 8000;
    rawpeer_job rjob, job;
    rawpeer_job_start(&rjob, reader_job, ra);
    rawpeer_job_start(&job, toggle_job, tg);
    assert_int_equal(confab_testnet_run_until(cn.srv, rawpeer_job_finished_cb,
                                              &job, net_deadline(60000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(confab_testnet_run_until(cn.srv, rawpeer_job_finished_cb,
                                              &rjob, net_deadline(60000)),
                     0);
    /* The subscriber that reads got every event and was not cut... */
    assert_int_equal(rawpeer_job_join(&rjob), 0);
    assert_false(reader.eof);
    assert_true(reader.event_frames >= ra->want);
    /* ...the one that never read was, and counted. */
    assert_int_equal(tc_wait_eof(cn.srv, &sub, 10000), 0);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    /* Another client and the good peer are served. */
    tclient other;
    tc_open(&other, cn.path);
    tc_simple(&other, "status", 2);
    tc_wait_replies(cn.srv, &other, 1, 0, 5000);
    assert_true(other.last_ok);
    ctl_net_send(&cn, 3, 100, 10000);
    rawpeer_free(&tg->r);
    pthread_mutex_destroy(&rap->mu);
    pthread_cond_destroy(&rap->cv);
    free(tgp);
    free(rap);
    tc_close(&sub);
    tc_close(&reader);
    tc_close(&other);
    ctl_net_stop(&cn);
}

/* ---- replies never read, node-wide ------------------------------------- */

#define PART ((size_t)512 << 10)

static void small_out_total(confab_config *c)
{
    c->ctl_out_total = (size_t)3 << 20;
}

static void queue_recv(tclient *t, uint64_t rid, uint64_t max)
{
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "recv");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, rid);
    wire_ctl_key(&b, "max");
    wire_ctl_put_uint(&b, max);
    tc_queue(t, &b);
}

typedef struct inbox_at {
    ctl_net *cn;
    size_t count;
} inbox_at;

static bool inbox_is(confab_testnet *tn, void *arg)
{
    (void)tn;
    inbox_at *a = arg;
    return confab_inbox_count(ctl_net_node(a->cn)) == a->count;
}

static void wait_inbox(ctl_net *cn, size_t count)
{
    inbox_at a = {cn, count};
    assert_int_equal(
        confab_testnet_run_until(cn->srv, inbox_is, &a, net_deadline(5000)),
        0);
}

static void test_control_queued_total_cut(void **state)
{
    (void)state;
    ctl_net cn;
    ctl_net_start(&cn, small_out_total);
    ctl_net_send(&cn, 6, PART, 10000);
    /* x asks for 2 MiB and reads none of it; y for 0.5 MiB, twice. The
     * second is over the 3 MiB the clients may leave unread in all: x,
     * which holds the most, is cut. */
    tclient x, y;
    tc_open(&x, cn.path);
    queue_recv(&x, 1, 4);
    tc_flush(&x);
    wait_inbox(&cn, 2);
    tc_open(&y, cn.path);
    queue_recv(&y, 2, 1);
    tc_flush(&y);
    wait_inbox(&cn, 1);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 0);
    queue_recv(&y, 3, 1);
    tc_flush(&y);
    wait_inbox(&cn, 0);
    assert_int_equal(tc_wait_eof(cn.srv, &x, 5000), 0);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    /* y gets both its replies. */
    tc_wait_replies(cn.srv, &y, 2, 0, 5000);
    assert_false(y.eof);
    assert_int_equal(y.last_rid, 3);
    assert_int_equal(y.last_count, 1);
    tc_close(&x);
    tc_close(&y);
    ctl_net_stop(&cn);
}

/* ---- unfinished requests, node-wide ------------------------------------ */

static void small_held_total(confab_config *c)
{
    c->ctl_held_total = (size_t)1280 << 10;
}

/* Queues n full frames (each says more follows) of filler, or of msg. */
static void queue_full_frames(tclient *t, const uint8_t *msg, unsigned n)
{
    static uint8_t filler[WIRE_MAX_FRAME];
    uint8_t hdr[3] = {0xc5, 0xff, 0xff};
    for (unsigned i = 0; i < n; i++) {
        tc_queue_raw(t, hdr, sizeof hdr);
        tc_queue_raw(t, msg ? msg + (size_t)i * WIRE_MAX_FRAME : filler,
                     WIRE_MAX_FRAME);
    }
}

static void test_control_unfinished_requests_cut(void **state)
{
    (void)state;
    ctl_net cn;
    ctl_net_start(&cn, small_held_total);
    /* p holds 12 frames of a request it never ends (about 1 MiB held);
     * then q's 5 frames (0.5 MiB) are over the 1.25 MiB in all: p, which
     * holds the most, is cut. */
    tclient p, q;
    tc_open(&p, cn.path);
    queue_full_frames(&p, NULL, 12);
    assert_int_equal(confab_testnet_run_until(cn.srv, tc_flushed, &p,
                                              net_deadline(5000)),
                     0);
    tclient probe;
    tc_open(&probe, cn.path);
    tc_simple(&probe, "id", 1);
    tc_wait_replies(cn.srv, &probe, 1, 0, 5000); /* p's bytes are read */
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 0);

    /* q's request: {"op": "id", "rid": 7, "pad": bin} in 5 full frames
     * and a short last one. */
    size_t len = 5 * (size_t)WIRE_MAX_FRAME + 100, pad = len - 21;
    uint8_t *msg = malloc(len);
    assert_non_null(msg);
    static const uint8_t head[17] = {0x83, 0xa2, 'o', 'p', 0xa2, 'i',
                                     'd',  0xa3, 'r', 'i', 'd',  0x07,
                                     0xa3, 'p',  'a', 'd', 0xc6};
    memcpy(msg, head, sizeof head);
    msg[17] = (uint8_t)(pad >> 24);
    msg[18] = (uint8_t)(pad >> 16);
    msg[19] = (uint8_t)(pad >> 8);
    msg[20] = (uint8_t)pad;
    memset(msg + 21, 'p', pad);
    tc_open(&q, cn.path);
    queue_full_frames(&q, msg, 5);
    assert_int_equal(confab_testnet_run_until(cn.srv, tc_flushed, &q,
                                              net_deadline(5000)),
                     0);
    assert_int_equal(tc_wait_eof(cn.srv, &p, 5000), 0);
    assert_int_equal(ctl_net_stats(&cn).ctl_clients_cut, 1);
    /* q ends its request and is answered. */
    uint8_t hdr[2] = {0xc4, 100};
    tc_queue_raw(&q, hdr, sizeof hdr);
    tc_queue_raw(&q, msg + 5 * (size_t)WIRE_MAX_FRAME, 100);
    free(msg);
    tc_wait_replies(cn.srv, &q, 1, 0, 5000);
    assert_false(q.eof);
    assert_true(q.last_ok);
    assert_int_equal(q.last_rid, 7);
    tc_close(&p);
    tc_close(&q);
    tc_close(&probe);
    ctl_net_stop(&cn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_follower_never_reads),
        cmocka_unit_test(test_control_clients_at_bound),
        cmocka_unit_test(test_control_waits_at_bound),
        cmocka_unit_test(test_control_events_unread_cut),
        cmocka_unit_test(test_control_queued_total_cut),
        cmocka_unit_test(test_control_unfinished_requests_cut),
    };
    /* CMOCKA_TEST_FILTER=name runs only the tests matching it. */
    if (getenv("CMOCKA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CMOCKA_TEST_FILTER"));
    return cmocka_run_group_tests_name("control_bounds", tests, NULL, NULL);
}
