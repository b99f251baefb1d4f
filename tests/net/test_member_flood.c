/* test_member_flood.c: a member (a raw peer with the network key, after a
 * valid handshake) that tries to make the node hold what it should not:
 * PONGs it never reads, a link kept alive by sending while it never
 * reads, partial bodies from many fresh identities, and the same
 * broadcast or multicast again and again. Each attack meets its bound,
 * its counter moves, and a good peer keeps being served. */
#include "net.h"

#include "rawpeer.h"

#include <sodium.h>

#define MIB (1024u * 1024u)

/* ---- a PING flood that never reads ------------------------------------- */

typedef struct flooder {
    uint16_t port;
    rawpeer r;
    unsigned pings_max;  /* give up (the node never cut us) after these */
    unsigned gap_ms;     /* between PINGs, watching for the cut; 0: none */
    int timeout_ms;      /* give up after this long (with gap_ms) */
} flooder;

static int flood_job(rawpeer_job *job)
{
    flooder *a = job->arg;
    rawpeer *r = &a->r;
    int rc = rawpeer_init(r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(r, "flooder");
    if (rc != 0)
        return rc;
    int waited = 0;
    for (unsigned i = 1; i <= a->pings_max; i++) {
        rc = rawpeer_send_ping(r, i, NULL, a->gap_ms ? 8 : WIRE_MAX_PING_DATA);
        if (rc == -EPIPE || rc == -ECONNRESET)
            return 0; /* the node cut us */
        if (rc != 0)
            return rc;
        if (a->gap_ms == 0)
            continue;
        /* Paced: the cut is seen as the node's hang-up, still unread. */
        rc = rawpeer_wait_hangup(r, (int)a->gap_ms);
        if (rc == 0)
            return 0;
        waited += (int)a->gap_ms;
        if (waited >= a->timeout_ms)
            break;
    }
    return -ETIMEDOUT; /* never cut */
}

/* While the flood runs, the good peer n1 keeps sending unicasts to n0. */
typedef struct good_sender {
    rawpeer_job *job;
    confab_node *from;
    const uint8_t *to;
    size_t sent;
} good_sender;

static bool send_while_flooded(confab_testnet *tn, void *arg)
{
    good_sender *g = arg;
    size_t got = confab_testnet_count(tn, CONFAB_EV_MESSAGE, 0, 1);
    if (g->sent < got + 4) {
        char text[32];
        int len = snprintf(text, sizeof text, "good %zu", g->sent);
        if (confab_send(g->from, g->to, text, (size_t)len, NULL, NULL) == 0)
            g->sent++;
    }
    return rawpeer_job_finished(g->job);
}

/* Counts n0's PEER_DOWN events about the raw peer, checking the reason. */
static int raw_downs(confab_testnet *tn, confab_down_reason want)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    int downs = 0;
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_PEER_DOWN && ev[k].node == 0 &&
            ev[k].peer < 0) {
            assert_int_equal(ev[k].reason, want);
            downs++;
        }
    return downs;
}

/* n0 and n1 are linked, the link never went down, and what n1 sent while
 * the attack ran all arrives. */
static void good_link_served(net_fixture *f, size_t sent)
{
    assert_int_equal(confab_testnet_count(f->tn, CONFAB_EV_PEER_DOWN, 0, 1),
                     0);
    assert_int_equal(confab_testnet_count(f->tn, CONFAB_EV_PEER_DOWN, 1, 0),
                     0);
    assert_int_equal(confab_send(confab_testnet_node(f->tn, 1),
                                 net_id(f->tn, 0), "after", 5, NULL, NULL),
                     0);
    assert_int_equal(net_wait_count(f->tn, CONFAB_EV_MESSAGE, 0, 1, sent + 1,
                                    10000),
                     0);
}

static void test_member_flood_pings_never_read(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    /* Only the queue's bound may cut the flooder here, not its unanswered
     * PING (the next test), however slowly the node runs (valgrind). */
    c.node.peer_timeout_ms = net_deadline(120000);
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_stats before;
    confab_node_stats(n0, &before);

    flooder a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    /* 256 MiB of PONGs: far past any kernel buffer and the bound. */
    a.pings_max = 256u * 1024u;
    rawpeer_job job;
    rawpeer_job_start(&job, flood_job, &a);
    good_sender g = {.job = &job,
                     .from = confab_testnet_node(f.tn, 1),
                     .to = net_id(f.tn, 0)};
    assert_int_equal(confab_testnet_run_until(f.tn, send_while_flooded, &g,
                                              net_deadline(60000)),
                     0);
    /* The node cut the flooder. */
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 0, -1, 1, 5000),
                     0);
    assert_int_equal(raw_downs(f.tn, CONFAB_DOWN_PROTOCOL), 1);

    /* Counted, and the queue never held more than the bound (1 MiB by
     * default): it did fill up to it, it did not pass it. */
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_int_equal(st.links_cut_tx_full, before.links_cut_tx_full + 1);
    assert_true(st.link_tx_peak <= 1 * MIB);
    assert_true(st.link_tx_peak > MIB / 2);
    assert_int_equal(st.protocol_errors, before.protocol_errors);

    good_link_served(&f, g.sent);
    rawpeer_free(&a.r);
    net_stop(&f);
}

static void test_member_flood_sends_but_never_reads(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.ping_interval_ms = 100;
    c.node.peer_timeout_ms = 600;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_stats before;
    confab_node_stats(n0, &before);

    /* A PING every 20 ms: never silent, never near the queue's bound, and
     * it never reads our PING. */
    flooder a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    a.pings_max = 1u << 20;
    a.gap_ms = 20;
    a.timeout_ms = (int)net_deadline(10000);
    rawpeer_job job;
    rawpeer_job_start(&job, flood_job, &a);
    good_sender g = {.job = &job,
                     .from = confab_testnet_node(f.tn, 1),
                     .to = net_id(f.tn, 0)};
    assert_int_equal(confab_testnet_run_until(f.tn, send_while_flooded, &g,
                                              net_deadline(30000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 0, -1, 1, 5000),
                     0);
    assert_int_equal(raw_downs(f.tn, CONFAB_DOWN_TIMEOUT), 1);
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_int_equal(st.pings_unanswered, before.pings_unanswered + 1);
    assert_int_equal(st.links_cut_tx_full, before.links_cut_tx_full);

    good_link_served(&f, g.sent);
    rawpeer_free(&a.r);
    net_stop(&f);
}

/* ---- partial bodies from many identities ------------------------------- */

#define IDENTITIES 8u
#define BIG (16u * MIB) /* the default max_message */
#define PART 60000u
#define SQUAT 1024u /* what a squatter sends of its body */

typedef struct squatters {
    uint16_t port;
    rawpeer *r; /* IDENTITIES of them */
} squatters;

/* Each fresh identity links and sends the first part of a 16 MiB body,
 * then nothing: the links stay open, the bodies never complete. */
static int squat_job(rawpeer_job *job)
{
    squatters *s = job->arg;
    static uint8_t part[SQUAT];
    for (unsigned i = 0; i < IDENTITIES; i++) {
        rawpeer *r = &s->r[i];
        int rc = rawpeer_init(r, NULL);
        if (rc == 0)
            rc = rawpeer_connect(r, s->port);
        if (rc == 0)
            rc = rawpeer_handshake(r, "squatter");
        if (rc != 0)
            return rc;
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_DATA;
        randombytes_buf(m.u.data.id, WIRE_ID_BYTES);
        m.u.data.kind = WIRE_K_UNICAST;
        m.u.data.seq = 1;
        m.u.data.ts = 1;
        m.u.data.body.ptr = part;
        m.u.data.body.len = SQUAT;
        m.u.data.fragmented = 1;
        m.u.data.size = BIG;
        rc = rawpeer_send_msg(r, &m);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Every squatter's first part has been handled: held or dropped. */
static bool all_squatted(confab_testnet *tn, void *arg)
{
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, 0), &st);
    (void)arg;
    return st.reasm_bytes / BIG + st.reasm_dropped >= IDENTITIES;
}

static bool big_arrived(confab_testnet *tn, void *arg)
{
    (void)arg;
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_MESSAGE && ev[k].node == 0 &&
            ev[k].peer == 1 && ev[k].len == BIG)
            return true;
    return false;
}

static void test_member_flood_partial_bodies(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.peer_timeout_ms = net_deadline(60000); /* squatters are silent */
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    const uint64_t bound = 4ull * BIG; /* the default: 4 x max_message */

    squatters s;
    s.port = confab_node_port(n0);
    s.r = calloc(IDENTITIES, sizeof *s.r);
    assert_non_null(s.r);
    rawpeer_job job;
    rawpeer_job_start(&job, squat_job, &s);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(20000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, all_squatted, NULL, net_deadline(10000)),
        0);
    /* Four bodies fill the bound; the other four gave way, and no link was
     * cut for it. */
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_true(st.reasm_peak <= bound);
    assert_int_equal(st.reasm_bytes, bound);
    assert_int_equal(st.reasm_dropped, IDENTITIES - 4);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, 0, -1), 0);

    /* A good peer's 16 MiB message still gets through: it is sending, the
     * squatters are not, so one of them gives way. */
    uint8_t *body = malloc(BIG);
    assert_non_null(body);
    memset(body, 0x5a, BIG);
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 1), net_id(f.tn, 0),
                                 body, BIG, NULL, NULL),
                     0);
    free(body);
    assert_int_equal(
        confab_testnet_run_until(f.tn, big_arrived, NULL, net_deadline(30000)),
        0);
    confab_node_stats(n0, &st);
    assert_true(st.reasm_peak <= bound);
    assert_int_equal(st.reasm_dropped, IDENTITIES - 4 + 1);
    assert_int_equal(st.reasm_bytes, 3ull * BIG); /* its room is free again */
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, 0, 1), 0);

    net_stop(&f);
    for (unsigned i = 0; i < IDENTITIES; i++)
        rawpeer_free(&s.r[i]);
    free(s.r);
}

/* ---- the same broadcast again and again -------------------------------- */

typedef struct repeater {
    uint16_t port;
    rawpeer r;
} repeater;

static const uint8_t ID_B[16] = {0xb0, 1}, ID_S[16] = {0x50, 2},
                     ID_F[16] = {0xf0, 3}, ID_END[16] = {0xe0, 4};

static int repeat_job(rawpeer_job *job)
{
    repeater *a = job->arg;
    rawpeer *r = &a->r;
    static uint8_t big[100000];
    int rc = rawpeer_init(r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(r, "parrot");
    uint64_t seq = 0;
    /* Each of a broadcast, a shout and a fragmented broadcast, three
     * times (the same id, new seqs), then one last broadcast: when it is
     * delivered, everything before it on the link was handled. */
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = rawpeer_send_body(r, WIRE_K_BROADCAST, ID_B, ++seq, NULL,
                               (const uint8_t *)"bcast", 5, PART);
        if (rc == 0)
            rc = rawpeer_send_body(r, WIRE_K_GROUP, ID_S, ++seq, "ops",
                                   (const uint8_t *)"shout", 5, PART);
        if (rc == 0)
            rc = rawpeer_send_body(r, WIRE_K_BROADCAST, ID_F, ++seq, NULL,
                                   big, sizeof big, PART);
    }
    if (rc == 0)
        rc = rawpeer_send_body(r, WIRE_K_BROADCAST, ID_END, ++seq, NULL,
                               (const uint8_t *)"end", 3, PART);
    return rc;
}

static size_t delivered_with_id(confab_testnet *tn, const uint8_t id[16])
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == CONFAB_EV_MESSAGE && ev[i].node == 0 &&
            memcmp(ev[i].msg_id, id, 16) == 0)
            k++;
    return k;
}

static bool end_delivered(confab_testnet *tn, void *arg)
{
    (void)arg;
    return delivered_with_id(tn, ID_END) > 0;
}

static void test_member_flood_broadcast_repeats_delivered_once(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 1);
    net_start(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    assert_int_equal(confab_join(n0, "ops"), 0);

    repeater a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    rawpeer_job job;
    rawpeer_job_start(&job, repeat_job, &a);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(10000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, end_delivered, NULL, net_deadline(10000)),
        0);
    assert_int_equal(delivered_with_id(f.tn, ID_B), 1);
    assert_int_equal(delivered_with_id(f.tn, ID_S), 1);
    assert_int_equal(delivered_with_id(f.tn, ID_F), 1);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, 0, -1), 4);
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_int_equal(st.bcast_repeats_dropped, 6);
    /* A repeat of a fragmented body is read and thrown away, not held. */
    assert_int_equal(st.reasm_bytes, 0);
    assert_int_equal(st.reasm_dropped, 0);

    rawpeer_free(&a.r);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_flood_pings_never_read),
        cmocka_unit_test(test_member_flood_sends_but_never_reads),
        cmocka_unit_test(test_member_flood_partial_bodies),
        cmocka_unit_test(test_member_flood_broadcast_repeats_delivered_once),
    };
    return cmocka_run_group_tests_name("member_flood", tests, NULL, NULL);
}
