/* test_request.c: requests and replies (docs/PROTOCOL.md section 14):
 * one to one; anycast failing over when the nearest member is silent;
 * a request to all members collecting exactly the replies that came in
 * time; and what a hostile member sends (replies nobody asked for, late,
 * twice or too large, a flood of requests) dropped, bounded and counted
 * while the node serves everyone else. */
#include "net.h"

#include "rawpeer.h"
#include "wire/req.h"

#include <errno.h>

/* ---- a requester that records what it gets ---------------------------- */

typedef struct got {
    size_t replies;
    int from[8]; /* testnet index of each reply's sender (-1: another) */
    confab_reply_status status[8];
    uint8_t body[8][256];
    size_t len[8];
    bool done;
    size_t answered;
    int result;
    confab_testnet *tn;
} got;

static void on_reply(confab_node *node, const confab_reply_info *r, void *user)
{
    (void)node;
    got *g = user;
    if (r->done) {
        assert_false(g->done);
        g->done = true;
        g->answered = r->answered;
        g->result = r->result;
        return;
    }
    assert_false(g->done);
    assert_true(g->replies < 8);
    size_t i = g->replies++;
    g->from[i] = confab_testnet_index(g->tn, r->from);
    g->status[i] = r->status;
    g->len[i] = r->len;
    if (r->len <= sizeof g->body[i] && r->len > 0)
        memcpy(g->body[i], r->body, r->len);
}

static bool got_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    return ((got *)arg)->done;
}

static void wait_done(confab_testnet *tn, got *g, unsigned ms)
{
    assert_int_equal(
        confab_testnet_run_until(tn, got_done, g, net_deadline(ms)), 0);
}

/* ---- servers ------------------------------------------------------------ */

/* What each node's handler does: echo at once, or hold the request and
 * never answer. */
typedef struct server {
    confab_testnet *tn;
    unsigned index;
    bool silent;
    bool silent_first; /* silent for the first request any server sees */
    int *first_taker;  /* shared: who saw the first request */
    size_t seen;
    uint64_t held[256];
    size_t n_held;
    const uint8_t *hold_from; /* hold requests from this peer only */
} server;

static void serve_cb(confab_node *node, const confab_request_in *r, void *user)
{
    server *s = user;
    s->seen++;
    bool hold = s->silent;
    if (s->silent_first && *s->first_taker < 0) {
        *s->first_taker = (int)s->index;
        hold = true;
    }
    if (s->hold_from != NULL)
        hold = memcmp(r->from, s->hold_from, CONFAB_ID_BYTES) == 0;
    if (hold) {
        if (s->n_held < 256)
            s->held[s->n_held++] = r->handle;
        return;
    }
    assert_int_equal(confab_reply(node, r->handle, r->body, r->len), 0);
}

static void serve(confab_testnet *tn, server *s, unsigned i, const char *name)
{
    s->tn = tn;
    s->index = i;
    assert_int_equal(
        confab_serve(confab_testnet_node(tn, i), name, serve_cb, s), 0);
}

typedef struct members_arg {
    unsigned node;
    const char *group;
    size_t want;
} members_arg;

static bool members_known(confab_testnet *tn, void *arg)
{
    members_arg *a = arg;
    return confab_group_members(confab_testnet_node(tn, a->node), a->group,
                                NULL, 0) >= a->want;
}

static void wait_members(confab_testnet *tn, unsigned node, const char *group,
                         size_t want)
{
    members_arg a = {node, group, want};
    assert_int_equal(
        confab_testnet_run_until(tn, members_known, &a, net_deadline(5000)), 0);
}

static confab_stats stats_of(confab_testnet *tn, unsigned i)
{
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, i), &st);
    return st;
}

/* ---- one to one --------------------------------------------------------- */

static void test_request_one_to_one(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    server s = {0};
    serve(f.tn, &s, 1, "echo");
    confab_node *n0 = confab_testnet_node(f.tn, 0);

    /* To that peer, by id. */
    got g = {.tn = f.tn};
    confab_request_opts o = {.mode = CONFAB_REQ_PEER,
                             .peer = net_id(f.tn, 1),
                             .timeout_ms = net_deadline(5000)};
    uint64_t h = 0;
    assert_int_equal(
        confab_request(n0, "echo", "hello", 5, &o, on_reply, &g, &h), 0);
    assert_true(h != 0);
    wait_done(f.tn, &g, 6000);
    assert_int_equal(g.replies, 1);
    assert_int_equal(g.from[0], 1);
    assert_int_equal(g.status[0], CONFAB_REPLY_OK);
    assert_int_equal(g.len[0], 5);
    assert_memory_equal(g.body[0], "hello", 5);
    assert_int_equal(g.answered, 1);
    assert_int_equal(g.result, 0);

    /* To the group (the nearest member, the only one), a binary body. */
    wait_members(f.tn, 0, "echo", 1);
    uint8_t bin[200];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7);
    got g2 = {.tn = f.tn};
    confab_request_opts any = {.mode = CONFAB_REQ_ANY,
                               .timeout_ms = net_deadline(5000)};
    assert_int_equal(
        confab_request(n0, "echo", bin, sizeof bin, &any, on_reply, &g2, NULL),
        0);
    wait_done(f.tn, &g2, 6000);
    assert_int_equal(g2.replies, 1);
    assert_int_equal(g2.len[0], sizeof bin);
    assert_memory_equal(g2.body[0], bin, sizeof bin);

    /* A name nothing serves there: NO_SERVICE, at once. */
    got g3 = {.tn = f.tn};
    assert_int_equal(
        confab_request(n0, "nothing", "x", 1, &o, on_reply, &g3, NULL), 0);
    wait_done(f.tn, &g3, 6000);
    assert_int_equal(g3.replies, 1);
    assert_int_equal(g3.status[0], CONFAB_REPLY_NO_SERVICE);
    assert_int_equal(stats_of(f.tn, 1).requests_no_service, 1);

    /* No member of a group: said at once. */
    assert_int_equal(
        confab_request(n0, "nobody", "x", 1, &any, on_reply, &g3, NULL),
        -ENOENT);
    confab_stats st = stats_of(f.tn, 0);
    assert_int_equal(st.requests_sent, 3);
    assert_int_equal(st.requests_answered, 3);
    assert_int_equal(st.requests_pending, 0);
    assert_int_equal(stats_of(f.tn, 1).requests_served, 2);
    /* Requests and replies never reach the inbox or the message events. */
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, -1, -1), 0);
    net_stop(&f);
}

/* ---- anycast with failover ---------------------------------------------- */

static void test_request_anycast_failover(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 3);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    int first = -1;
    server s1 = {.silent_first = true, .first_taker = &first};
    server s2 = {.silent_first = true, .first_taker = &first};
    serve(f.tn, &s1, 1, "work");
    serve(f.tn, &s2, 2, "work");
    wait_members(f.tn, 0, "work", 2);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    got g = {.tn = f.tn};
    confab_request_opts o = {.mode = CONFAB_REQ_ANY,
                             .timeout_ms = net_deadline(10000),
                             .try_ms = 300};
    assert_int_equal(
        confab_request(n0, "work", "job", 3, &o, on_reply, &g, NULL), 0);
    wait_done(f.tn, &g, 12000);
    /* The first member asked held it without a word; the next answered. */
    assert_true(first == 1 || first == 2);
    assert_int_equal(g.replies, 1);
    assert_int_equal(g.from[0], first == 1 ? 2 : 1);
    assert_memory_equal(g.body[0], "job", 3);
    assert_int_equal(g.result, 0);
    assert_int_equal(s1.seen, 1);
    assert_int_equal(s2.seen, 1);
    assert_int_equal(stats_of(f.tn, 0).request_failovers, 1);

    /* Without a failover (try_ms the whole time) the silent one gets it
     * and the request times out with nothing. */
    server *silent = first == 1 ? &s1 : &s2;
    server *other = first == 1 ? &s2 : &s1;
    silent->silent = true;
    other->silent = true;
    got g2 = {.tn = f.tn};
    confab_request_opts slow = {.mode = CONFAB_REQ_ANY, .timeout_ms = 500};
    assert_int_equal(
        confab_request(n0, "work", "job", 3, &slow, on_reply, &g2, NULL), 0);
    wait_done(f.tn, &g2, 5000);
    assert_int_equal(g2.replies, 0);
    assert_int_equal(g2.result, -ETIMEDOUT);
    assert_int_equal(stats_of(f.tn, 0).requests_timed_out, 1);
    net_stop(&f);
}

/* ---- to all members ----------------------------------------------------- */

static void test_request_all_collects(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 5);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    server s[5] = {0};
    serve(f.tn, &s[1], 1, "q");
    serve(f.tn, &s[2], 2, "q");
    serve(f.tn, &s[3], 3, "q");
    s[3].silent = true; /* node 4 serves nothing */
    wait_members(f.tn, 0, "q", 3);
    got g = {.tn = f.tn};
    /* The deadline bounds the silent one; the others answer long before
     * it, even on a loaded machine. */
    confab_request_opts o = {.mode = CONFAB_REQ_ALL,
                             .timeout_ms = net_deadline(3000)};
    assert_int_equal(confab_request(confab_testnet_node(f.tn, 0), "q", "who", 3,
                                    &o, on_reply, &g, NULL),
                     0);
    wait_done(f.tn, &g, 40000);
    assert_int_equal(g.replies, 2);
    assert_true((g.from[0] == 1 && g.from[1] == 2) ||
                (g.from[0] == 2 && g.from[1] == 1));
    assert_int_equal(g.answered, 2);
    assert_int_equal(g.result, 0);
    assert_int_equal(s[3].seen, 1);
    assert_int_equal(s[4].seen, 0);

    /* All answer: done as soon as the last one did, well before the
     * deadline. */
    s[3].silent = false;
    wait_members(f.tn, 0, "q", 3);
    got g2 = {.tn = f.tn};
    o.timeout_ms = net_deadline(60000);
    assert_int_equal(confab_request(confab_testnet_node(f.tn, 0), "q", "all", 3,
                                    &o, on_reply, &g2, NULL),
                     0);
    wait_done(f.tn, &g2, 10000); /* far before its deadline */
    /* Every member linked when it was sent (all three, unless a link was
     * being replaced just then on a loaded machine) answered. */
    assert_int_equal(g2.answered, g2.replies);
    assert_true(g2.replies >= 2);
    for (size_t i = 0; i < g2.replies; i++)
        assert_true(g2.from[i] >= 1 && g2.from[i] <= 3);
    net_stop(&f);
}

/* ---- hostile input ------------------------------------------------------ */

typedef struct raw_arg {
    rawpeer r;
    uint16_t port;
    uint8_t rid[WIRE_REQ_ID_BYTES];
    uint64_t seq;
    unsigned flood;
} raw_arg;

static int raw_link(rawpeer_job *job)
{
    raw_arg *a = job->arg;
    const char *groups[] = {"svc"};
    int rc = rawpeer_init(&a->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&a->r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake_groups(&a->r, "raw", groups, 1);
    return rc;
}

static int send_rep(raw_arg *a, const uint8_t *rid, const uint8_t *body,
                    size_t len)
{
    wire_rep w;
    memcpy(w.id, rid, WIRE_REQ_ID_BYTES);
    w.code = WIRE_REP_OK;
    w.body.ptr = body;
    w.body.len = (uint32_t)len;
    uint8_t buf[1024];
    size_t out;
    int rc = wire_rep_encode(&w, buf, sizeof buf, &out);
    return rc ? rc
              : rawpeer_send_unicast_ct(&a->r, ++a->seq, WIRE_REP_CT, buf, out);
}

/* Waits for the node's request, then replies: too large, well, twice
 * more, and with an id nobody used. */
static int raw_replies(rawpeer_job *job)
{
    raw_arg *a = job->arg;
    wire_msg m;
    for (;;) {
        int rc = rawpeer_recv_msg(&a->r, &m, 10000);
        if (rc != 0)
            return rc;
        if (m.type == WIRE_T_DATA && m.u.data.has_ct &&
            m.u.data.ct.len == strlen(WIRE_REQ_CT) &&
            memcmp(m.u.data.ct.ptr, WIRE_REQ_CT, m.u.data.ct.len) == 0)
            break;
    }
    wire_req req;
    int rc = wire_req_decode(m.u.data.body.ptr, m.u.data.body.len, &req);
    if (rc != 0)
        return rc;
    if (req.max_reply != 100)
        return -EINVAL;
    memcpy(a->rid, req.id, WIRE_REQ_ID_BYTES);
    uint8_t big[200] = {0}, unknown[WIRE_REQ_ID_BYTES];
    memset(unknown, 0xee, sizeof unknown);
    if ((rc = send_rep(a, a->rid, big, sizeof big)) != 0 ||
        (rc = send_rep(a, a->rid, (const uint8_t *)"fine", 4)) != 0 ||
        (rc = send_rep(a, a->rid, (const uint8_t *)"again", 5)) != 0 ||
        (rc = send_rep(a, a->rid, (const uint8_t *)"again", 5)) != 0)
        return rc;
    return send_rep(a, unknown, (const uint8_t *)"who?", 4);
}

static int raw_late(rawpeer_job *job)
{
    raw_arg *a = job->arg;
    return send_rep(a, a->rid, (const uint8_t *)"late", 4);
}

static int raw_flood(rawpeer_job *job)
{
    raw_arg *a = job->arg;
    for (unsigned i = 0; i < a->flood; i++) {
        wire_req w;
        memset(&w, 0, sizeof w);
        w.id[0] = (uint8_t)i;
        w.id[1] = (uint8_t)(i >> 8);
        w.service.ptr = (const uint8_t *)"svc";
        w.service.len = 3;
        w.wait_ms = 600000;
        w.max_reply = 1000;
        w.body.ptr = (const uint8_t *)"flood";
        w.body.len = 5;
        uint8_t buf[256];
        size_t len;
        int rc = wire_req_encode(&w, buf, sizeof buf, &len);
        if (rc == 0)
            rc =
                rawpeer_send_unicast_ct(&a->r, ++a->seq, WIRE_REQ_CT, buf, len);
        if (rc != 0)
            return rc;
    }
    /* And things that are not envelopes at all. */
    return rawpeer_send_unicast_ct(&a->r, ++a->seq, WIRE_REQ_CT,
                                   (const uint8_t *)"\xdd\xff\xff\xff\xff", 5);
}

static void run_job(confab_testnet *tn, rawpeer_job *job,
                    int (*fn)(rawpeer_job *), raw_arg *a)
{
    rawpeer_job_start(job, fn, a);
    assert_int_equal(confab_testnet_run_until(tn, rawpeer_job_finished_cb, job,
                                              net_deadline(20000)),
                     0);
    assert_int_equal(rawpeer_job_join(job), 0);
}

typedef struct stat_at {
    unsigned node;
    size_t off; /* of a uint64_t in confab_stats */
    uint64_t want;
} stat_at;

static bool stat_reached(confab_testnet *tn, void *arg)
{
    stat_at *a = arg;
    confab_stats st = stats_of(tn, a->node);
    uint64_t v;
    memcpy(&v, (const uint8_t *)&st + a->off, sizeof v);
    return v >= a->want;
}

static void wait_stat(confab_testnet *tn, unsigned node, size_t off,
                      uint64_t want)
{
    stat_at a = {node, off, want};
    assert_int_equal(
        confab_testnet_run_until(tn, stat_reached, &a, net_deadline(10000)), 0);
}

#define WAIT_STAT(tn, node, field, want)                                       \
    wait_stat(tn, node, offsetof(confab_stats, field), want)

static void test_request_hostile_replies(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.peer_timeout_ms = 600000; /* the raw peer answers no ping */
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    server s1 = {.silent = true};
    serve(f.tn, &s1, 1, "svc"); /* holds the request open */
    raw_arg a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    rawpeer_job job;
    run_job(f.tn, &job, raw_link, &a);
    wait_members(f.tn, 0, "svc", 2);

    got g = {.tn = f.tn};
    confab_request_opts o = {.mode = CONFAB_REQ_ALL,
                             .timeout_ms = net_deadline(3000),
                             .max_reply = 100};
    assert_int_equal(confab_request(n0, "svc", "q", 1, &o, on_reply, &g, NULL),
                     0);
    run_job(f.tn, &job, raw_replies, &a);
    WAIT_STAT(f.tn, 0, replies_unmatched, 1);
    WAIT_STAT(f.tn, 0, replies_duplicate, 2);
    confab_stats st = stats_of(f.tn, 0);
    assert_int_equal(st.replies_oversized, 1);
    assert_int_equal(st.replies_duplicate, 2);
    assert_int_equal(st.replies_unmatched, 1);
    assert_int_equal(g.replies, 1); /* "fine", once */
    assert_int_equal(g.len[0], 4);
    assert_memory_equal(g.body[0], "fine", 4);
    wait_done(f.tn, &g, 10000);
    assert_int_equal(g.answered, 1);

    /* After its end, a reply is one nobody waits for. */
    run_job(f.tn, &job, raw_late, &a);
    WAIT_STAT(f.tn, 0, replies_unmatched, 2);
    assert_int_equal(g.replies, 1);
    assert_int_equal(stats_of(f.tn, 0).requests_pending, 0);
    rawpeer_free(&a.r);
    net_stop(&f);
}

static void test_request_hostile_flood(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    c.node.peer_timeout_ms = 600000;
    c.node.request_max_per_peer = 16;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    raw_arg a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(n0);
    a.flood = 500;
    rawpeer_job job;
    run_job(f.tn, &job, raw_link, &a);
    server s0 = {0};
    serve(f.tn, &s0, 0, "svc");
    s0.hold_from = NULL;
    /* Node 0 holds every request of the raw peer (a slow service). */
    wait_members(f.tn, 0, "svc", 1);
    confab_peer_info info[4];
    size_t np;
    confab_peers(n0, info, 4, &np);
    const uint8_t *raw_id = NULL;
    for (size_t i = 0; i < np && i < 4; i++)
        if (strcmp(info[i].name, "raw") == 0)
            raw_id = info[i].id;
    assert_non_null(raw_id);
    s0.hold_from = raw_id;
    run_job(f.tn, &job, raw_flood, &a);
    WAIT_STAT(f.tn, 0, requests_malformed, 1);
    confab_stats st = stats_of(f.tn, 0);
    assert_int_equal(st.requests_served, 16);
    assert_int_equal(st.requests_refused_busy, 500 - 16);
    assert_int_equal(st.requests_pending, 16);
    assert_int_equal(s0.n_held, 16);
    /* It never acknowledges: the refusals it made us queue are bounded. */
    confab_peer_info ri;
    assert_int_equal(confab_peer(n0, raw_id, &ri), 0);
    assert_int_equal(ri.outbox_msgs, 64);

    /* Everyone else is served meanwhile. */
    got g = {.tn = f.tn};
    confab_request_opts o = {.mode = CONFAB_REQ_PEER,
                             .peer = net_id(f.tn, 0),
                             .timeout_ms = net_deadline(5000)};
    assert_int_equal(confab_request(confab_testnet_node(f.tn, 1), "svc", "hi",
                                    2, &o, on_reply, &g, NULL),
                     0);
    wait_done(f.tn, &g, 6000);
    assert_int_equal(g.replies, 1);
    assert_int_equal(g.status[0], CONFAB_REPLY_OK);
    assert_memory_equal(g.body[0], "hi", 2);

    /* A held request answered late is still fine; one answered twice is
     * not there any more. */
    assert_int_equal(confab_reply(n0, s0.held[0], "ok", 2), 0);
    assert_int_equal(confab_reply(n0, s0.held[0], "ok", 2), -ENOENT);
    assert_int_equal(confab_reply(n0, 999999, "ok", 2), -ENOENT);
    rawpeer_free(&a.r);
    net_stop(&f);
}

/* ---- the node's own bounds ---------------------------------------------- */

static void test_request_bounds(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 3);
    c.static_mesh = true;
    c.node.request_max_pending = 4;
    c.node.request_max_bytes = 1000;
    net_start_meshed(&f, &c);
    server s1 = {.silent = true};
    serve(f.tn, &s1, 1, "svc");
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_node *n2 = confab_testnet_node(f.tn, 2);
    confab_request_opts o = {
        .mode = CONFAB_REQ_PEER, .peer = net_id(f.tn, 1), .timeout_ms = 600000};
    got g[5];
    uint64_t h[5];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 4; i++) {
        g[i].tn = f.tn;
        assert_int_equal(
            confab_request(n0, "svc", "x", 1, &o, on_reply, &g[i], &h[i]), 0);
    }
    /* Requests this node waits on: at most request_max_pending. */
    assert_int_equal(
        confab_request(n0, "svc", "x", 1, &o, on_reply, &g[4], NULL), -EAGAIN);
    assert_int_equal(stats_of(f.tn, 0).requests_pending, 4);
    WAIT_STAT(f.tn, 1, requests_served, 4);

    /* Requests it holds for others: the fifth is answered busy. */
    got b = {.tn = f.tn};
    assert_int_equal(confab_request(n2, "svc", "y", 1, &o, on_reply, &b, NULL),
                     0);
    wait_done(f.tn, &b, 10000);
    assert_int_equal(b.replies, 1);
    assert_int_equal(b.status[0], CONFAB_REPLY_BUSY);
    assert_int_equal(stats_of(f.tn, 1).requests_refused_busy, 1);
    assert_int_equal(stats_of(f.tn, 1).requests_pending, 4);

    /* Bytes of bodies held: a slot is free, but not 1000 bytes more. */
    assert_int_equal(
        confab_reply(confab_testnet_node(f.tn, 1), s1.held[0], "done", 4), 0);
    wait_done(f.tn, &g[0], 10000);
    uint8_t big[1200] = {0};
    got b2 = {.tn = f.tn};
    assert_int_equal(
        confab_request(n2, "svc", big, sizeof big, &o, on_reply, &b2, NULL), 0);
    wait_done(f.tn, &b2, 10000);
    assert_int_equal(b2.status[0], CONFAB_REPLY_BUSY);
    assert_int_equal(stats_of(f.tn, 1).requests_refused_busy, 2);

    /* Cancelled requests take no callback and free their place. */
    for (int i = 1; i < 4; i++)
        assert_int_equal(confab_request_cancel(n0, h[i]), 0);
    assert_int_equal(confab_request_cancel(n0, h[1]), -ENOENT);
    assert_int_equal(stats_of(f.tn, 0).requests_pending, 0);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_one_to_one),
        cmocka_unit_test(test_request_anycast_failover),
        cmocka_unit_test(test_request_all_collects),
        cmocka_unit_test(test_request_hostile_replies),
        cmocka_unit_test(test_request_hostile_flood),
        cmocka_unit_test(test_request_bounds),
    };
    return cmocka_run_group_tests_name("request", tests, NULL, NULL);
}
