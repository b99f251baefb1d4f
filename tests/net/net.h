/* net.h: shared set-up for the network tests (tests/net/).
 *
 * Each test owns a loop and a testnet on 127.0.0.1 port 0. Waiting is
 * always "until a condition holds or a deadline passes"; teardown stops
 * every node and checks that uv_loop_close() succeeds (a leaked handle
 * fails the test). */
#ifndef CONFAB_TESTS_NET_H
#define CONFAB_TESTS_NET_H

#include "node/confab.h"
#include "node/testnet.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Deadlines are generous: they bound a broken test, they do not time a
 * working one. Under valgrind everything is slower still. */
static inline unsigned net_deadline(unsigned ms)
{
    return getenv("CONFAB_UNDER_VALGRIND") ? ms * 10 : ms;
}

typedef struct net_fixture {
    uv_loop_t loop;
    confab_testnet *tn;
} net_fixture;

static inline void net_log(confab_node *node, confab_log_level level,
                           const char *msg, void *user)
{
    (void)node;
    (void)user;
    if (getenv("CONFAB_TEST_LOG") != NULL || level == CONFAB_LOG_ERROR)
        fprintf(stderr, "[%s] %s\n",
                level == CONFAB_LOG_ERROR  ? "error"
                : level == CONFAB_LOG_WARN ? "warn"
                : level == CONFAB_LOG_INFO ? "info"
                                           : "debug",
                msg);
}

/* Fills c with the test defaults: n nodes, a fixed seed, logs to stderr
 * when CONFAB_TEST_LOG is set. */
static inline void net_config(confab_testnet_config *c, unsigned n)
{
    confab_testnet_config_init(c);
    c->nodes = n;
    c->seed = 0x5eed0000u + n;
    c->node.log_cb = net_log;
    c->node.log_level =
        getenv("CONFAB_TEST_LOG") ? CONFAB_LOG_DEBUG : CONFAB_LOG_WARN;
}

static inline void net_start(net_fixture *f, const confab_testnet_config *c)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(confab_testnet_new(&f->loop, c, &f->tn), 0);
    assert_int_equal(confab_testnet_start(f->tn), 0);
}

/* net_start, then waits (5 s, scaled) until every pair is linked. */
static inline void net_start_meshed(net_fixture *f,
                                    const confab_testnet_config *c)
{
    net_start(f, c);
    assert_int_equal(confab_testnet_wait_mesh(f->tn, net_deadline(5000)), 0);
}

static inline void net_stop(net_fixture *f)
{
    assert_int_equal(confab_testnet_free(f->tn), 0);
    f->tn = NULL;
    /* Anything still open is a leak: the loop must close cleanly. */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

typedef struct net_count_arg {
    confab_event_type type;
    int node, peer;
    size_t want;
} net_count_arg;

static inline bool net_count_reached(confab_testnet *tn, void *arg)
{
    net_count_arg *a = arg;
    return confab_testnet_count(tn, a->type, a->node, a->peer) >= a->want;
}

/* Waits until at least want events of type were raised by node about
 * peer (-1: any). Returns 0 or -ETIMEDOUT. */
static inline int net_wait_count(confab_testnet *tn, confab_event_type type,
                                 int node, int peer, size_t want,
                                 unsigned timeout_ms)
{
    net_count_arg a = {type, node, peer, want};
    return confab_testnet_run_until(tn, net_count_reached, &a,
                                    net_deadline(timeout_ms));
}

/* The last recorded event of type from node about peer; fails the test
 * if there is none. */
static inline const confab_testnet_event *
net_last(confab_testnet *tn, confab_event_type type, int node, int peer)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t i = n; i-- > 0;)
        if (ev[i].type == type && (node < 0 || ev[i].node == (unsigned)node) &&
            (peer < 0 || ev[i].peer == peer))
            return &ev[i];
    fail_msg("no event of type %d from node %d about peer %d", (int)type, node,
             peer);
    abort(); /* not reached: fail_msg does not return */
}

static inline const uint8_t *net_id(confab_testnet *tn, unsigned i)
{
    return confab_node_id(confab_testnet_node(tn, i));
}

#endif
