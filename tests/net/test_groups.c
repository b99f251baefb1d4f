/* test_groups.c: groups over the test network: membership converges and
 * survives reconnects and restarts; a shout reaches exactly the members;
 * an anycast goes to the nearest member, and to the next one when that
 * one goes away, in flight or not; an anycast to an empty group fails at
 * once. */
#include "net.h"

#define N 6

static void group_config(confab_testnet_config *c)
{
    net_config(c, N);
    c->discovery = true;
    c->node.beacon_interval_ms = 200;
    c->node.ping_interval_ms = 50; /* fresh round trips for anycast */
    c->node.redial_min_ms = 50;
    c->node.anycast_timeout_ms = 1000;
}

typedef struct members_arg {
    const char *group;
    unsigned want[N]; /* 1 for the nodes that must be members */
} members_arg;

/* Every running node sees exactly the wanted members (itself aside). */
static bool converged(confab_testnet *tn, void *arg)
{
    members_arg *a = arg;
    for (unsigned i = 0; i < N; i++) {
        if (!confab_testnet_running(tn, i))
            continue;
        confab_node *n = confab_testnet_node(tn, i);
        if ((unsigned)confab_is_member(n, a->group) != a->want[i])
            return false;
        uint8_t ids[N][CONFAB_ID_BYTES];
        size_t k = confab_group_members(n, a->group, ids, N);
        size_t expect = 0;
        for (unsigned j = 0; j < N; j++)
            if (j != i && a->want[j] && confab_testnet_running(tn, j))
                expect++;
        if (k != expect)
            return false;
        for (size_t m = 0; m < k; m++) {
            int idx = confab_testnet_index(tn, ids[m]);
            if (idx < 0 || !a->want[idx])
                return false;
        }
    }
    return true;
}

/* How many group messages with this body each node received. */
static void count_shouts(confab_testnet *tn, const char *body,
                         unsigned got[N])
{
    memset(got, 0, sizeof(unsigned) * N);
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_MESSAGE && ev[k].kind == CONFAB_GROUP &&
            ev[k].len == strlen(body) &&
            memcmp(ev[k].body, body, ev[k].len) == 0)
            got[ev[k].node]++;
}

typedef struct sent_arg {
    uint8_t id[CONFAB_MSG_ID_BYTES];
} sent_arg;

static const confab_testnet_event *outcome(confab_testnet *tn,
                                           const uint8_t *id)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_SEND &&
            memcmp(ev[k].msg_id, id, CONFAB_MSG_ID_BYTES) == 0)
            return &ev[k];
    return NULL;
}

/* The outcome of the send with this id, which must have come. */
static const confab_testnet_event *must_outcome(confab_testnet *tn,
                                                const uint8_t *id)
{
    const confab_testnet_event *e = outcome(tn, id);
    if (e == NULL) {
        fail_msg("no outcome for the message");
        abort(); /* not reached: fail_msg does not return */
    }
    return e;
}

static bool has_outcome(confab_testnet *tn, void *arg)
{
    return outcome(tn, ((sent_arg *)arg)->id) != NULL;
}

static void test_groups_membership_shout_and_leave(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    group_config(&c);
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);

    /* Bad names are refused clearly. */
    confab_node *n1 = confab_testnet_node(f.tn, 1);
    assert_int_equal(confab_join(n1, ""), -EINVAL);
    assert_int_equal(confab_join(n1, "\xff\xfe"), -EINVAL);
    char longname[66];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    assert_int_equal(confab_join(n1, longname), -EMSGSIZE);
    assert_int_equal(confab_leave(n1, "ops"), -ENOENT);

    members_arg a = {"ops", {0, 1, 1, 1, 0, 0}};
    for (unsigned i = 1; i <= 3; i++)
        assert_int_equal(confab_join(confab_testnet_node(f.tn, i), "ops"), 0);
    assert_int_equal(confab_join(n1, "ops"), 0); /* twice is fine */
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);
    /* Every other node saw each join as an event. */
    for (int i = 0; i < N; i++)
        for (int j = 1; j <= 3; j++)
            if (i != j)
                assert_true(confab_testnet_count(f.tn, CONFAB_EV_JOIN, i, j) >=
                            1);

    /* A shout from a non-member reaches exactly the three, once. */
    size_t sent;
    assert_int_equal(confab_shout(confab_testnet_node(f.tn, 5), "ops",
                                  "shout 1", 7, NULL, NULL, &sent),
                     0);
    assert_int_equal(sent, 3);
    /* A unicast after it, to every node, arrives after it: then count. */
    for (unsigned j = 0; j < N - 1; j++)
        assert_int_equal(confab_send(confab_testnet_node(f.tn, 5),
                                     net_id(f.tn, j), "after", 5, NULL, NULL),
                         0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, -1, 5, 8, 5000),
                     0);
    unsigned got[N];
    count_shouts(f.tn, "shout 1", got);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(got[i], i >= 1 && i <= 3 ? 1 : 0);

    /* A member's shout reaches the other two, not itself. */
    assert_int_equal(confab_shout(confab_testnet_node(f.tn, 2), "ops",
                                  "shout 2", 7, NULL, NULL, &sent),
                     0);
    assert_int_equal(sent, 2);

    /* One leaves: everybody sees it, and the next shout reaches two. */
    assert_int_equal(confab_leave(confab_testnet_node(f.tn, 3), "ops"), 0);
    a.want[3] = 0;
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);
    assert_true(confab_testnet_count(f.tn, CONFAB_EV_LEAVE, 0, 3) >= 1);
    confab_testnet_clear_events(f.tn);
    assert_int_equal(confab_shout(confab_testnet_node(f.tn, 5), "ops",
                                  "shout 3", 7, NULL, NULL, &sent),
                     0);
    assert_int_equal(sent, 2);
    for (unsigned j = 0; j < N - 1; j++)
        assert_int_equal(confab_send(confab_testnet_node(f.tn, 5),
                                     net_id(f.tn, j), "after", 5, NULL, NULL),
                         0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, -1, 5, 7, 5000),
                     0);
    count_shouts(f.tn, "shout 3", got);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(got[i], i == 1 || i == 2 ? 1 : 0);

    /* The groups listing knows "ops" everywhere. */
    const char *names[8];
    size_t k = confab_groups(confab_testnet_node(f.tn, 0), names, 8);
    assert_int_equal(k, 1);
    assert_string_equal(names[0], "ops");
    net_stop(&f);
}

static void test_groups_membership_across_reconnect_and_restart(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    group_config(&c);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(confab_testnet_new(&f.loop, &c, &f.tn), 0);
    /* Node 4 is configured with its groups, as `confab run` would be. */
    const char *const g4[] = {"lab", "ops"};
    assert_int_equal(confab_testnet_set_groups(f.tn, 4, g4, 2), 0);
    assert_int_equal(confab_testnet_start(f.tn), 0);
    members_arg a = {"lab", {0, 0, 0, 0, 1, 0}};
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(10000)), 0);

    /* The link to 0 resets and comes back: 0 knows it again from the
     * HELLO. */
    assert_int_equal(confab_testnet_drop(f.tn, 0, 4), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_UP, 0, 4, 2, 5000),
                     0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);

    /* It restarts, and rejoins its groups as configured. */
    assert_int_equal(confab_testnet_stop_node(f.tn, 4), 0);
    assert_int_equal(confab_testnet_restart_node(f.tn, 4), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);
    a.group = "ops";
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);
    net_stop(&f);
}

typedef struct rtt_arg {
    unsigned from, nearest;
    unsigned members[3];
} rtt_arg;

/* The sender has measured the nearest member as nearer than the others. */
static bool nearest_measured(confab_testnet *tn, void *arg)
{
    rtt_arg *a = arg;
    confab_peer_info near, other;
    confab_node *n = confab_testnet_node(tn, a->from);
    if (confab_peer(n, net_id(tn, a->nearest), &near) != 0 ||
        near.rtt_us == 0)
        return false;
    for (int k = 0; k < 3; k++) {
        if (a->members[k] == a->nearest ||
            !confab_testnet_running(tn, a->members[k]))
            continue;
        if (confab_peer(n, net_id(tn, a->members[k]), &other) != 0 ||
            other.rtt_us == 0 || other.rtt_us < near.rtt_us + 20000)
            return false;
    }
    return true;
}

static void test_groups_anycast_nearest_then_failover(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    group_config(&c);
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    confab_node *sender = confab_testnet_node(f.tn, 0);

    /* An empty group: an error at once, nothing sent. */
    uint8_t id[CONFAB_MSG_ID_BYTES];
    assert_int_equal(confab_anycast(sender, "nobody", "x", 1, NULL, id),
                     -ENOENT);

    members_arg a = {"calc", {0, 0, 1, 1, 1, 0}};
    for (unsigned i = 2; i <= 4; i++)
        assert_int_equal(confab_join(confab_testnet_node(f.tn, i), "calc"), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);

    /* Members 2 and 4 are 30 ms away (60 ms round trip); 3 is near. */
    assert_int_equal(confab_testnet_set_latency(f.tn, 0, 2, 30), 0);
    assert_int_equal(confab_testnet_set_latency(f.tn, 0, 4, 30), 0);
    rtt_arg r = {0, 3, {2, 3, 4}};
    assert_int_equal(confab_testnet_run_until(f.tn, nearest_measured, &r,
                                              net_deadline(10000)),
                     0);
    sent_arg s;
    assert_int_equal(confab_anycast(sender, "calc", "job 1", 5, NULL, s.id),
                     0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, has_outcome, &s, net_deadline(5000)),
        0);
    const confab_testnet_event *e = must_outcome(f.tn, s.id);
    assert_int_equal(e->status, CONFAB_DELIVERED);
    assert_int_equal(e->peer, 3);
    assert_string_equal(e->group, "calc");
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, 3, 0), 1);
    const confab_testnet_event *m = net_last(f.tn, CONFAB_EV_MESSAGE, 3, 0);
    assert_int_equal(m->kind, CONFAB_ANYCAST);
    assert_string_equal(m->group, "calc");

    /* Stop the nearest member with an anycast in flight to it: another
     * member gets it. */
    sent_arg s2;
    assert_int_equal(confab_anycast(sender, "calc", "job 2", 5, NULL, s2.id),
                     0);
    assert_int_equal(confab_testnet_stop_node(f.tn, 3), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, has_outcome, &s2, net_deadline(5000)),
        0);
    e = must_outcome(f.tn, s2.id);
    assert_int_equal(e->status, CONFAB_DELIVERED);
    assert_true(e->peer == 2 || e->peer == 4);

    /* And the next anycast goes to one of the others as well. */
    sent_arg s3;
    assert_int_equal(confab_anycast(sender, "calc", "job 3", 5, NULL, s3.id),
                     0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, has_outcome, &s3, net_deadline(5000)),
        0);
    e = must_outcome(f.tn, s3.id);
    assert_int_equal(e->status, CONFAB_DELIVERED);
    assert_true(e->peer == 2 || e->peer == 4);
    /* Each job was taken by one member only. */
    const char *jobs[] = {"job 1", "job 2", "job 3"};
    for (int j = 0; j < 3; j++) {
        unsigned takers = 0;
        const confab_testnet_event *ev;
        size_t n = confab_testnet_events(f.tn, &ev);
        for (size_t k = 0; k < n; k++)
            if (ev[k].type == CONFAB_EV_MESSAGE && ev[k].len == 5 &&
                memcmp(ev[k].body, jobs[j], 5) == 0)
                takers++;
        assert_int_equal(takers, 1);
    }
    net_stop(&f);
}

static void test_groups_anycast_unanswered_times_out_to_next(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    group_config(&c);
    c.node.anycast_timeout_ms = 300;
    c.node.peer_timeout_ms = 60000; /* the cut must not look like a loss */
    net_start(&f, &c);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(10000)), 0);
    members_arg a = {"calc", {0, 1, 1, 0, 0, 0}};
    for (unsigned i = 1; i <= 2; i++)
        assert_int_equal(confab_join(confab_testnet_node(f.tn, i), "calc"), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, converged, &a, net_deadline(5000)), 0);
    /* Member 1 is nearest but its link is cut: it cannot answer. */
    assert_int_equal(confab_testnet_set_latency(f.tn, 0, 2, 20), 0);
    rtt_arg r = {0, 1, {1, 2, 2}};
    assert_int_equal(confab_testnet_run_until(f.tn, nearest_measured, &r,
                                              net_deadline(10000)),
                     0);
    confab_testnet_cut(f.tn, 0, 1);
    sent_arg s;
    assert_int_equal(confab_anycast(confab_testnet_node(f.tn, 0), "calc",
                                    "job", 3, NULL, s.id),
                     0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, has_outcome, &s, net_deadline(5000)),
        0);
    const confab_testnet_event *e = must_outcome(f.tn, s.id);
    assert_int_equal(e->status, CONFAB_DELIVERED);
    assert_int_equal(e->peer, 2);
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 0), &st);
    assert_true(st.anycast_failovers >= 1);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_membership_shout_and_leave),
        cmocka_unit_test(test_groups_membership_across_reconnect_and_restart),
        cmocka_unit_test(test_groups_anycast_nearest_then_failover),
        cmocka_unit_test(test_groups_anycast_unanswered_times_out_to_next),
    };
    return cmocka_run_group_tests_name("groups", tests, NULL, NULL);
}
