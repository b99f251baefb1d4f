/* node/peers/hyparview.h: HyParView, the partial view membership of
 * Leitao, Pereira and Rodrigues, "HyParView: a membership protocol for
 * reliable gossip-based broadcast" (DSN 2007), as a state machine with no
 * I/O (node/peers/ovl.h). docs/PROTOCOL.md section 15.2 is the wire form.
 *
 * Each node keeps a small symmetric ACTIVE view (the links it keeps open,
 * the neighbours of the broadcast tree) and a larger PASSIVE view (known
 * nodes to replace failed links from). Both are fixed arrays: nothing a
 * peer sends grows them.
 *
 * Inputs: node_hpv_join() once, node_hpv_recv() for each decoded message,
 * node_hpv_link_failed() when a link to a node closes or cannot be opened
 * (TCP is the failure detector of the active view, paper section 4.3),
 * node_hpv_tick() periodically. Outputs: actions appended to a
 * node_hpv_out the caller owns; each call appends at most
 * NODE_HPV_OUT_MAX_PER_CALL of them. */
#ifndef CONFAB_NODE_PEERS_HYPARVIEW_H
#define CONFAB_NODE_PEERS_HYPARVIEW_H

#include "node/peers/ovl.h"

#include <stddef.h>
#include <stdint.h>

#define NODE_HPV_ACTIVE_CAP       8u  /* most active members, any config */
#define NODE_HPV_PASSIVE_CAP      48u /* most passive members, any config */
#define NODE_HPV_LIST_CAP         16u /* ids in one SHUFFLE or SHUFFLE_REPLY */
#define NODE_HPV_MAX_WALK         10u /* largest random walk length accepted */
#define NODE_HPV_RETRIES_PER_TICK 3u
#define NODE_HPV_OUT_MAX_PER_CALL (2u * NODE_HPV_ACTIVE_CAP + 4u)

/* Message types (wire: docs/PROTOCOL.md 15.2). */
enum node_hpv_type {
    NODE_HPV_JOIN = 1,
    NODE_HPV_FORWARD_JOIN = 2,
    NODE_HPV_NEIGHBOR = 3,
    NODE_HPV_NEIGHBOR_REPLY = 4,
    NODE_HPV_DISCONNECT = 5,
    NODE_HPV_SHUFFLE = 6,
    NODE_HPV_SHUFFLE_REPLY = 7,
};

typedef struct node_hpv_msg {
    uint8_t type;     /* NODE_HPV_* */
    uint8_t ttl;      /* FORWARD_JOIN, SHUFFLE: steps left on the walk */
    uint8_t high;     /* NEIGHBOR: priority high (the sender has no link) */
    uint8_t accept;   /* NEIGHBOR_REPLY */
    node_ovl_id node; /* FORWARD_JOIN: the new node; SHUFFLE: its origin */
    uint8_t n;        /* SHUFFLE, SHUFFLE_REPLY: ids in list */
    node_ovl_id list[NODE_HPV_LIST_CAP];
} node_hpv_msg;

enum node_hpv_action_kind {
    NODE_HPV_A_SEND = 1, /* send msg to peer (open a link if none) */
    NODE_HPV_A_UP = 2,   /* peer joined the active view: keep its link */
    NODE_HPV_A_DOWN = 3, /* peer left the active view: close its link */
};

typedef struct node_hpv_action {
    uint8_t kind;
    node_ovl_id peer;
    node_hpv_msg msg; /* NODE_HPV_A_SEND */
} node_hpv_action;

/* The caller's action queue: a[0..n) filled, cap slots. An action that
 * does not fit is counted in dropped (size the queue with
 * NODE_HPV_OUT_MAX_PER_CALL per call and it never happens). */
typedef struct node_hpv_out {
    node_hpv_action *a;
    size_t n, cap;
    size_t dropped;
} node_hpv_out;

typedef struct node_hpv_config {
    uint8_t active_max;   /* <= NODE_HPV_ACTIVE_CAP; 0: node_hpv_active_for */
    uint8_t passive_max;  /* <= NODE_HPV_PASSIVE_CAP; 0: 6 x active_max */
    uint8_t arwl;         /* active random walk length; 0: 6 */
    uint8_t prwl;         /* passive random walk length; 0: 3 */
    uint8_t ka, kp;       /* active/passive ids per SHUFFLE; 0: 3 and 4 */
    uint32_t shuffle_ms;  /* shuffle period; 0: 10000 */
    uint32_t neighbor_ms; /* wait for a NEIGHBOR_REPLY; 0: 2000 */
    uint32_t expected_n;  /* network size guess for active_max; 0: 1000 */
} node_hpv_config;

typedef struct node_hpv_stats {
    uint64_t refused; /* messages that broke a rule, ignored */
    uint64_t shuffles, neighbor_tries, joins_forwarded;
} node_hpv_stats;

typedef struct node_hpv {
    node_hpv_config cfg;
    node_ovl_id self;
    node_ovl_rng rng;
    node_ovl_id active[NODE_HPV_ACTIVE_CAP];
    node_ovl_id passive[NODE_HPV_PASSIVE_CAP];
    node_ovl_id sent[NODE_HPV_LIST_CAP]; /* ids of our last SHUFFLE */
    uint8_t nactive, npassive, nsent;
    uint8_t retries; /* refused NEIGHBOR requests retried until next tick */
    uint8_t pending; /* a NEIGHBOR request to pending_id is outstanding */
    node_ovl_id pending_id;
    uint64_t pending_until;
    uint64_t next_shuffle;
    node_hpv_stats stats;
} node_hpv;

/* log2(n) + 1, bounded by NODE_HPV_ACTIVE_CAP (paper section 5: 5 for
 * 10,000 nodes keeps it connected; a little more costs little). */
unsigned node_hpv_active_for(uint32_t n);

/* Fills in defaults and checks cfg. Returns 0 or -EINVAL. */
__attribute__((warn_unused_result)) int
node_hpv_init(node_hpv *h, const node_ovl_id *self, const node_hpv_config *cfg,
              node_ovl_rng rng, uint64_t now_ms);

/* Joins the overlay through contact (section 4.2): it goes into the
 * active view at once and is sent a JOIN. */
void node_hpv_join(node_hpv *h, const node_ovl_id *contact, node_hpv_out *out);

/* A decoded message m from node `from` (authenticated by the link). A
 * message that breaks a rule of 15.2 is ignored and counted. */
void node_hpv_recv(node_hpv *h, const node_ovl_id *from, const node_hpv_msg *m,
                   uint64_t now_ms, node_hpv_out *out);

/* The link to peer closed, or could not be opened. */
void node_hpv_link_failed(node_hpv *h, const node_ovl_id *peer, uint64_t now_ms,
                          node_hpv_out *out);

/* Periodic work: shuffles and refilling the active view. */
void node_hpv_tick(node_hpv *h, uint64_t now_ms, node_hpv_out *out);

int node_hpv_is_active(const node_hpv *h, const node_ovl_id *id);

/* A member learnt otherwise (a beacon, PEERS, the links of the full mesh
 * the overlay took over): into the passive view, evicting a random one
 * when full (it is a sample of the network, and stays one). */
void node_hpv_add_passive(node_hpv *h, const node_ovl_id *id);

/* The network grew: the active view may hold up to active_max members
 * (at most NODE_HPV_ACTIVE_CAP; it never shrinks, so no link is dropped
 * for it). */
void node_hpv_grow_active(node_hpv *h, unsigned active_max);

#endif
