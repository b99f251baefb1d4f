/* test_pex_delta.c: peer exchange tells a newcomer only what is new to it
 * (#18): a peer that was in the whole list a newcomer got when its link
 * came up is not sent to it again in the next batch of newcomers. */
#include "net.h"

#include "rawpeer.h"

#include <stdatomic.h>
#include <time.h>

#define LISTEN_MS 1500 /* several of node 0's ticks (250 ms here) */

typedef struct listener {
    atomic_int go; /* node 1 is linked to node 0: link now */
    uint16_t port;
    const uint8_t *watch; /* node 1's id */
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

/* Links to node 0 as soon as node 1 is linked to it (so usually before
 * node 0's next tick sends its batch), then reads what node 0 says for
 * LISTEN_MS. */
static int listen_job(rawpeer_job *job)
{
    listener *a = job->arg;
    rawpeer *r = &a->r;
    uint64_t give_up = mono_ms() + (uint64_t)net_deadline(10000);
    while (!atomic_load(&a->go)) {
        if (mono_ms() > give_up)
            return -ETIMEDOUT;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    int rc = rawpeer_init(r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(r, "listener");
    if (rc != 0)
        return rc;
    uint64_t end = mono_ms() + (uint64_t)net_deadline(LISTEN_MS);
    for (uint64_t now = mono_ms(); now < end; now = mono_ms()) {
        wire_msg m;
        rc = rawpeer_recv_msg(r, &m, (int)(end - now));
        if (rc == -ETIMEDOUT)
            break;
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

typedef struct go_arg {
    listener *a;
    rawpeer_job *job;
} go_arg;

static bool linked_then_done(confab_testnet *tn, void *arg)
{
    go_arg *g = arg;
    if (confab_testnet_linked(tn, 0, 1))
        atomic_store(&g->a->go, 1);
    return rawpeer_job_finished(g->job);
}

static void test_pex_delta_no_repeat_to_a_newcomer(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true; /* node 1 dials node 0 at once */
    /* A tick of 250 ms (a quarter of the shortest interval), so that node
     * 1 and then the listener come up at node 0 between the same two
     * ticks (most of the time: the tick may fall between them, and then
     * this run cannot tell): the listener's whole list names node 1, and
     * so did the batch. */
    c.node.redial_min_ms = 1000;
    net_start(&f, &c);
    listener a;
    memset(&a, 0, sizeof a);
    a.port = confab_node_port(confab_testnet_node(f.tn, 0));
    a.watch = net_id(f.tn, 1);
    atomic_init(&a.go, 0);
    rawpeer_job job;
    rawpeer_job_start(&job, listen_job, &a);
    go_arg g = {&a, &job};
    assert_int_equal(confab_testnet_run_until(f.tn, linked_then_done, &g,
                                              net_deadline(20000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    assert_true(confab_testnet_linked(f.tn, 0, 1));
    /* Told of node 1 once: in the whole list or in a batch, not both. */
    if (a.told != 1)
        fail_msg("the newcomer was told of node 1 %d times (%d entries in "
                 "all)",
                 a.told, a.entries);
    rawpeer_free(&a.r);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pex_delta_no_repeat_to_a_newcomer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
