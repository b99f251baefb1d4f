/* test_pex_batch.c: a batch of newcomers goes only to the peers that need
 * it (#18, docs/PROTOCOL.md 9.3). Of two peers of node 0, the later to
 * come up (node 1) is told of the earlier (a raw peer) in the whole list;
 * the earlier is told of the later only when it is the one to dial (the
 * smaller id), and not when it already named the later to node 0 (it is
 * linked to it). Before, every peer was sent every newcomer, which made a
 * mesh forming cost a PEERS per link per tick. */
#include "net.h"

#include "rawpeer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_MS 2500 /* two of node 0's batches (at most every 1 s) */

typedef struct listener {
    uint16_t port;        /* node 0's */
    const uint8_t *watch; /* node 1's id */
    uint16_t watch_port;  /* node 1's port */
    uint16_t own_port;    /* where the raw peer says it accepts links */
    bool smaller;         /* the raw peer's id is below node 1's */
    bool name_it;         /* the raw peer names node 1 as linked to it */
    atomic_int linked;    /* the raw peer's link to node 0 is up */
    atomic_int go;        /* node 1 is linked to node 0: count from now */
    rawpeer r;
    int told;    /* PEERS entries naming node 1 */
    int entries; /* all PEERS entries */
} listener;

static uint64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* An identity on the wanted side of node 1's: ids are random keys, so
 * each try is a coin toss. */
static int init_ordered(listener *a)
{
    for (int i = 0; i < 64; i++) {
        int rc = rawpeer_init(&a->r, NULL);
        if (rc != 0)
            return rc;
        int cmp = memcmp(a->r.id->pk, a->watch, WIRE_NODE_ID_BYTES);
        if ((cmp < 0) == a->smaller)
            return 0;
        rawpeer_free(&a->r);
    }
    return -EAGAIN;
}

/* Links to node 0 (before node 1 can), then reads what node 0 says until
 * LISTEN_MS after node 1 came up there. */
static int listen_job(rawpeer_job *job)
{
    listener *a = job->arg;
    rawpeer *r = &a->r;
    int rc = init_ordered(a);
    if (rc != 0)
        return rc;
    rc = rawpeer_connect(r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake_port(r, "early", a->own_port);
    if (rc == 0 && a->name_it)
        rc = rawpeer_send_peer_entry(r, a->watch, a->watch_port);
    if (rc != 0)
        return rc;
    atomic_store(&a->linked, 1);
    uint64_t give_up = mono_ms() + (uint64_t)net_deadline(20000);
    uint64_t end = 0;
    for (uint64_t now = mono_ms(); end == 0 || now < end; now = mono_ms()) {
        if (end == 0 && atomic_load(&a->go))
            end = now + (uint64_t)net_deadline(LISTEN_MS);
        if (end == 0 && now > give_up)
            return -ETIMEDOUT;
        wire_msg m;
        rc = rawpeer_recv_msg(r, &m, 50);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0)
            return rc;
        if (m.type == WIRE_T_PING) {
            /* Answered, or a slow run (valgrind) outlasts the peer
             * timeout and the node cuts us. */
            wire_msg pong = m;
            pong.type = WIRE_T_PONG;
            rc = rawpeer_send_msg(r, &pong);
            if (rc != 0)
                return rc;
            continue;
        }
        if (m.type != WIRE_T_PEERS)
            continue;
        wire_iter it = m.u.peers.iter;
        wire_peer_entry e;
        while (wire_peers_next(&it, &e) == 1) {
            a->entries++;
            if (memcmp(e.id, a->watch, WIRE_NODE_ID_BYTES) == 0)
                a->told++;
        }
    }
    return 0;
}

typedef struct step_arg {
    listener *a;
    rawpeer_job *job;
    bool healed;
} step_arg;

/* The raw peer is up at node 0, and what it named has been read. */
static bool early_is_up(confab_testnet *tn, const listener *a)
{
    confab_node *n0 = confab_testnet_node(tn, 0);
    confab_peer_info info;
    if (confab_peer(n0, a->r.id->pk, &info) != 0 ||
        info.state != CONFAB_PEER_UP)
        return false;
    confab_stats st;
    confab_node_stats(n0, &st);
    return !a->name_it || st.peers_entries_received >= 1;
}

/* Node 1 may link to node 0 once node 0 has the raw peer up (and has read
 * what it named): then node 1 is the later of the two there, whatever the
 * pool's speed. Counting starts when node 1 is up. */
static bool steps(confab_testnet *tn, void *arg)
{
    step_arg *g = arg;
    if (!g->healed && atomic_load(&g->a->linked) && early_is_up(tn, g->a)) {
        confab_testnet_heal(tn, 0, 1);
        g->healed = true;
    }
    if (g->healed && confab_testnet_linked(tn, 0, 1))
        atomic_store(&g->a->go, 1);
    return rawpeer_job_finished(g->job);
}

/* A socket that accepts links at the kernel and never answers: the
 * address the raw peer names. Returns its fd and sets *port. */
static int sink_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* How many times node 0 told the early raw peer of node 1. */
static int told_of_newcomer(bool smaller, bool name_it)
{
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true; /* node 1 dials node 0, once healed */
    c.node.redial_min_ms = 100;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(confab_testnet_new(&f.loop, &c, &f.tn), 0);
    confab_testnet_cut(f.tn, 0, 1); /* until the raw peer is up */
    assert_int_equal(confab_testnet_start(f.tn), 0);
    listener a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(confab_testnet_node(f.tn, 0));
    a.watch = net_id(f.tn, 1);
    a.watch_port = confab_node_port(confab_testnet_node(f.tn, 1));
    a.smaller = smaller;
    a.name_it = name_it;
    int sink = sink_socket(&a.own_port);
    atomic_init(&a.linked, 0);
    atomic_init(&a.go, 0);
    rawpeer_job job;
    rawpeer_job_start(&job, listen_job, &a);
    step_arg g = {&a, &job, false};
    assert_int_equal(
        confab_testnet_run_until(f.tn, steps, &g, net_deadline(30000)), 0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_true(confab_testnet_linked(f.tn, 0, 1));
    rawpeer_free(&a.r);
    close(sink);
    net_stop(&f);
    return a.told;
}

/* The raw peer has the larger id: node 1 dials it, having heard of it in
 * node 0's whole list, so node 0 does not send it node 1. */
static void test_pex_batch_not_to_the_larger(void **state)
{
    (void)state;
    int told = told_of_newcomer(false, false);
    if (told != 0)
        fail_msg("the larger peer was sent the newcomer %d times", told);
}

/* The raw peer has the smaller id: it is the one to dial, so node 0 tells
 * it of node 1, once. */
static void test_pex_batch_to_the_smaller_once(void **state)
{
    (void)state;
    int told = told_of_newcomer(true, false);
    if (told != 1)
        fail_msg("the smaller peer was sent the newcomer %d times", told);
}

/* The raw peer has the smaller id but named node 1 in its own PEERS (it
 * is linked to node 1): nothing to tell it. */
static void test_pex_batch_not_what_it_named(void **state)
{
    (void)state;
    int told = told_of_newcomer(true, true);
    if (told != 0)
        fail_msg("the peer that named the newcomer was sent it %d times", told);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pex_batch_not_to_the_larger),
        cmocka_unit_test(test_pex_batch_to_the_smaller_once),
        cmocka_unit_test(test_pex_batch_not_what_it_named),
    };
    return cmocka_run_group_tests_name("pex_batch", tests, NULL, NULL);
}
