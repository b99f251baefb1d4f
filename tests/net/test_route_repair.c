/* test_route_repair.c: how a node keeps and mends its routes while links
 * come and go (#13, docs/PROTOCOL.md 13.2), shown with two hand-made peers
 * R1 and R2 telling one node about a destination D that exists only in
 * their adverts:
 *
 * - another peer's "unreachable" does not take away a route whose next
 *   hop still has it (taken, every link closed anywhere in a 150-node
 *   overlay cut routes across the network, which never had them all at
 *   once);
 * - when the next hop's link goes, a route from another peer that is
 *   feasible (same number, a metric below the one held) mends it at once,
 *   without waiting for D's next number.
 *
 * The raw peers run in a job on their own thread, one step at a time: the
 * test runs the loop until the node has taken what a step sent, checks
 * the route table, then lets the job go on. */
#include "net.h"
#include "rawpeer.h"

#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct repair {
    uint16_t port;
    uint8_t d[32]; /* the destination */
    rawpeer r1, r2;
    atomic_int go;   /* the step the job may run */
    atomic_int done; /* the last step the job finished */
} repair;

static void entry(wire_route_entry *e, const uint8_t *id, uint64_t seq,
                  uint64_t metric)
{
    e->id = id;
    e->seq = seq;
    e->metric = metric;
    e->epoch = 1;
}

/* One ROUTE from r: itself at seq self_seq, then D at (seq, metric). */
static int advert(rawpeer *r, uint64_t self_seq, const uint8_t *d, uint64_t seq,
                  uint64_t metric)
{
    wire_route_entry e[2];
    entry(&e[0], r->id->pk, self_seq, 0);
    entry(&e[1], d, seq, metric);
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ROUTE;
    m.u.route.count = 2;
    m.u.route.entries = e;
    return rawpeer_send_msg(r, &m);
}

/* Waits until the test lets the job run step; -ETIMEDOUT when it does not
 * (the test failed and left), so the job ends instead of spinning on. */
static int wait_go(repair *a, int step)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const long give_up_ms = (long)net_deadline(30000);
    while (atomic_load(&a->go) < step) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000L +
                (t.tv_nsec - t0.tv_nsec) / 1000000L >
            give_up_ms)
            return -ETIMEDOUT;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

static int repair_job(rawpeer_job *job)
{
    repair *a = job->arg;
    int rc = rawpeer_init(&a->r1, NULL);
    if (rc == 0)
        rc = rawpeer_init(&a->r2, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&a->r1, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(&a->r1, "r1");
    if (rc == 0)
        rc = rawpeer_connect(&a->r2, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(&a->r2, "r2");
    /* 1: R1 reaches D at 1 hop under D's number 10. */
    if (rc == 0)
        rc = advert(&a->r1, 2, a->d, 10, 1);
    atomic_store(&a->done, 1);
    if (rc == 0)
        rc = wait_go(a, 2);
    /* 2: R2 has lost D, under a newer (odd) number, as a node whose link
     * broke says it. */
    if (rc == 0)
        rc = advert(&a->r2, 2, a->d, 11, WIRE_ROUTE_INFINITY);
    atomic_store(&a->done, 2);
    if (rc == 0)
        rc = wait_go(a, 3);
    /* 3: R1 goes away: its link closes. */
    if (a->r1.fd >= 0) {
        close(a->r1.fd);
        a->r1.fd = -1;
    }
    atomic_store(&a->done, 3);
    if (rc == 0)
        rc = wait_go(a, 4);
    /* 4: R2 reaches D at 1 hop under number 10: as near as R1 was, so no
     * path of R2's runs through the node. */
    if (rc == 0)
        rc = advert(&a->r2, 4, a->d, 10, 1);
    atomic_store(&a->done, 4);
    if (rc == 0)
        rc = wait_go(a, 5);
    return rc;
}

typedef struct step_wait {
    repair *a;
    int step;
    confab_node *n;
    uint64_t adverts; /* route_adverts_received to reach */
    unsigned peers_up;
} step_wait;

static bool step_taken(confab_testnet *tn, void *arg)
{
    (void)tn;
    step_wait *w = arg;
    if (atomic_load(&w->a->done) < w->step)
        return false;
    confab_stats st;
    confab_node_stats(w->n, &st);
    return st.route_adverts_received >= w->adverts &&
           st.peers_up == w->peers_up;
}

/* The node's route to d: its metric, and via in *via. */
static unsigned route_to(confab_node *n, const uint8_t *d, uint8_t *via)
{
    confab_route r[16];
    size_t k = confab_routes(n, r, 16);
    for (size_t i = 0; i < k && i < 16; i++)
        if (memcmp(r[i].dst, d, 32) == 0) {
            memcpy(via, r[i].via, 32);
            return r[i].metric;
        }
    return 0;
}

static void step(net_fixture *f, repair *a, confab_node *n, int s,
                 uint64_t adverts, unsigned peers_up)
{
    atomic_store(&a->go, s);
    step_wait w = {a, s, n, adverts, peers_up};
    assert_int_equal(
        confab_testnet_run_until(f->tn, step_taken, &w, net_deadline(10000)),
        0);
}

static void test_route_repair_keeps_and_mends(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 1);
    net_start(&f, &c);
    confab_node *n = confab_testnet_node(f.tn, 0);
    repair a;
    memset(&a, 0, sizeof a);
    a.r1.fd = a.r2.fd = -1;
    a.port = confab_node_port(n);
    randombytes_buf(a.d, sizeof a.d);
    rawpeer_job job;
    rawpeer_job_start(&job, repair_job, &a);
    uint8_t via[32];

    step(&f, &a, n, 1, 1, 2);
    assert_int_equal(route_to(n, a.d, via), 2);
    assert_memory_equal(via, a.r1.id->pk, 32);

    /* Another peer's "unreachable", however new its number: kept. */
    step(&f, &a, n, 2, 2, 2);
    assert_int_equal(route_to(n, a.d, via), 2);
    assert_memory_equal(via, a.r1.id->pk, 32);

    /* Its next hop gone: unreachable... */
    step(&f, &a, n, 3, 2, 1);
    assert_int_equal(route_to(n, a.d, via), CONFAB_ROUTE_INFINITY);

    /* ... until a feasible route comes: taken at once. */
    step(&f, &a, n, 4, 3, 1);
    assert_int_equal(route_to(n, a.d, via), 2);
    assert_memory_equal(via, a.r2.id->pk, 32);

    atomic_store(&a.go, 5);
    assert_int_equal(rawpeer_job_join(&job), 0);
    rawpeer_free(&a.r1);
    rawpeer_free(&a.r2);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_repair_keeps_and_mends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
