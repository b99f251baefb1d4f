/* node/app/testnet_int.h -- the test network's state, shared by
 * testnet.c (the network) and testnet_scale.c (large networks: descriptors,
 * progress, measurement; #13). Private to node/app/. */
#ifndef CONFAB_NODE_APP_TESTNET_INT_H
#define CONFAB_NODE_APP_TESTNET_INT_H

#include "node/testnet.h"

#include "node/app/app.h"

typedef struct tn_member {
    confab_testnet *tn;
    unsigned index;
    confab_node *node;
    bool running;
    bool stopping;
    bool crashed; /* area: scale (#13): cut from all, counted as gone */
    uint8_t sk[CONFAB_ID_BYTES];
    uint8_t id[CONFAB_ID_BYTES];
    char name[16];
    char home[4096];
    uint16_t port;
    bool own_key;
    uint8_t key[CONFAB_KEY_BYTES];
    char **groups; /* joined at every start */
    size_t n_groups;
    char **statics;
    size_t n_statics;
} tn_member;

struct confab_testnet {
    uv_loop_t *loop;
    confab_testnet_config cfg;
    tn_member *m;
    unsigned n;
    confab_testnet_event *ev;
    size_t n_ev, cap_ev;
    uv_timer_t deadline;
    bool deadline_init;
    uint16_t discovery_port;
    unsigned *latency;   /* n * n: ms added between i and j */
    int topology;        /* confab_testnet_topology, -1: none set */
    uint64_t started_ns; /* area: scale (#13): uv_hrtime() at start */
};

#endif
