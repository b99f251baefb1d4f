/* node/peers/swim.h: failure detection and membership by SWIM (Das,
 * Gupta, Motivala, "SWIM: Scalable Weakly-consistent Infection-style
 * Process Group Membership Protocol", DSN 2002) with suspicion and
 * incarnation numbers, and Lifeguard's refinements (Dadgar, Phillips,
 * Currey, "Lifeguard: Local Health Awareness for More Accurate Failure
 * Detection", 2018): local health multiplier, dogpile (a suspicion timeout
 * that shrinks with independent confirmations) and buddy system (a
 * suspect is told it is suspected). A state machine with no I/O
 * (node/peers/ovl.h); docs/PROTOCOL.md 15.4 is the wire form.
 *
 * Each period the node pings one member (round-robin over a shuffled
 * list, SWIM 4.3); without an ACK within the probe timeout it asks k
 * others to ping it (PING-REQ); without any ACK by the end of the period
 * the member is SUSPECT; a suspicion not refuted within its timeout makes
 * it DEAD. Membership updates ride on every message (piggybacked, SWIM
 * 4.1), each sent a bounded number of times; while updates are pending
 * they also go to gossip_nodes random members every gossip_ms, as
 * hashicorp/memberlist (the Lifeguard authors' implementation) does: with
 * piggybacking alone a refutation spreads at one hop per probe period,
 * slower than the shortest suspicion timeout (test_swim shows it). */
#ifndef CONFAB_NODE_PEERS_SWIM_H
#define CONFAB_NODE_PEERS_SWIM_H

#include "node/peers/ovl.h"

#include <stddef.h>
#include <stdint.h>

#define NODE_SWIM_PIGGYBACK  6u  /* updates on one message */
#define NODE_SWIM_QUEUE_CAP  64u /* updates waiting to be disseminated */
#define NODE_SWIM_RELAY_CAP  16u /* PING-REQs relayed at once */
#define NODE_SWIM_INDIRECT   3u  /* k: helpers of an indirect probe */
#define NODE_SWIM_DOGPILE_K  3u  /* confirmations that bring the minimum */
#define NODE_SWIM_LHM_MAX    8u  /* Lifeguard's S: the largest multiplier */
#define NODE_SWIM_GOSSIP_MAX 8u  /* largest gossip_nodes */
#define NODE_SWIM_OUT_MAX_PER_CALL                                             \
    (NODE_SWIM_RELAY_CAP + NODE_SWIM_GOSSIP_MAX + 8u)

enum node_swim_type {
    NODE_SWIM_PING = 1,
    NODE_SWIM_PING_REQ = 2,
    NODE_SWIM_ACK = 3,
    NODE_SWIM_NACK = 4,
    NODE_SWIM_GOSSIP = 5, /* updates only, no reply (memberlist's gossip) */
};

enum node_swim_state {
    NODE_SWIM_ALIVE = 0,
    NODE_SWIM_SUSPECT = 1,
    NODE_SWIM_DEAD = 2, /* SWIM's CONFIRM */
};

/* A membership update, piggybacked. `from` is who suspects (SUSPECT:
 * counted for the dogpile); otherwise the sender's id. */
typedef struct node_swim_update {
    node_ovl_id id;
    uint8_t state;
    uint32_t inc;
    node_ovl_id from;
} node_swim_update;

typedef struct node_swim_msg {
    uint8_t type;
    uint32_t seq;
    node_ovl_id target; /* PING_REQ */
    uint8_t n;
    node_swim_update upd[NODE_SWIM_PIGGYBACK];
} node_swim_msg;

enum node_swim_action_kind {
    NODE_SWIM_A_SEND = 1,    /* send msg to peer */
    NODE_SWIM_A_ALIVE = 2,   /* peer is a member, alive (new or refuted) */
    NODE_SWIM_A_SUSPECT = 3, /* peer is suspected */
    NODE_SWIM_A_DOWN = 4,    /* peer is declared dead */
};

typedef struct node_swim_action {
    uint8_t kind;
    node_ovl_id peer;
    node_swim_msg msg;
} node_swim_action;

typedef struct node_swim_out {
    node_swim_action *a;
    size_t n, cap;
    size_t dropped;
} node_swim_out;

/* One member; the caller gives an array of them (node_swim_init). The
 * confirmers of a suspicion are kept as the first 2 bytes of their ids:
 * enough to tell three apart (two confirmers sharing them count once,
 * which only lengthens the timeout), 6 bytes instead of 96. */
typedef struct node_swim_member {
    node_ovl_id id;
    uint32_t inc;
    uint32_t suspect_since; /* now_ms, low 32 bits (compared wrapping) */
    uint8_t state;
    uint8_t nconf : 7;
    /* It reached us (a message from it, or a link): only such members
     * are probed. One known by hearsay alone (a beacon, an update) may
     * have no route to it yet, and a probe that cannot leave is not the
     * member's failure: accusing it is how forming networks declared
     * live nodes down. */
    uint8_t heard : 1;
    uint16_t conf[NODE_SWIM_DOGPILE_K];
} node_swim_member; /* 48 bytes: 48 KiB for 1000 members */

typedef struct node_swim_config {
    uint32_t interval_ms;        /* probe period at LHM 0; 0: 1000 */
    uint32_t timeout_ms;         /* probe timeout at LHM 0; 0: 500 */
    uint32_t suspicion_mult;     /* Lifeguard alpha; 0: 4 */
    uint32_t suspicion_max_mult; /* Lifeguard beta; 0: 6 */
    uint32_t retransmit_mult;    /* lambda: sends per update x log10 N; 0: 4 */
    uint32_t gossip_ms;          /* pending updates to a few members; 0: 200 */
    uint32_t gossip_nodes;       /* members per gossip round; 0: 3 */
} node_swim_config;

typedef struct node_swim_stats {
    uint64_t probes, indirect, suspected, declared_down, refuted;
    uint64_t refused;      /* malformed or out of bounds */
    uint64_t members_full; /* updates about new members not taken */
    uint64_t relays_full;
} node_swim_stats;

typedef struct node_swim_relay {
    node_ovl_id requester, target;
    uint32_t seq, req_seq;
    uint64_t nack_at;
} node_swim_relay;

typedef struct node_swim_queued {
    node_swim_update u;
    uint32_t sent;
} node_swim_queued;

typedef struct node_swim {
    node_swim_config cfg;
    node_ovl_id self;
    uint32_t inc;
    node_ovl_rng rng;
    node_swim_member *m;
    uint32_t n, cap, nsuspect, next; /* next: round-robin position */
    uint32_t lhm;
    /* the probe of this period */
    uint8_t probing, acked, indirect;
    uint8_t nacks_expected, nacks;
    node_ovl_id target;
    uint32_t seq;       /* the last seq used: probes and relayed PINGs */
    uint32_t probe_seq; /* the seq of this period's probe */
    uint64_t probe_deadline, next_probe, next_gossip;
    node_swim_relay relay[NODE_SWIM_RELAY_CAP];
    uint8_t nrelay;
    node_swim_queued q[NODE_SWIM_QUEUE_CAP];
    uint8_t nq;
    node_swim_stats stats;
} node_swim;

/* members: cap entries of the caller's memory, borrowed for the life of
 * s. Returns 0 or -EINVAL. */
__attribute__((warn_unused_result)) int
node_swim_init(node_swim *s, const node_ovl_id *self,
               const node_swim_config *cfg, node_ovl_rng rng,
               node_swim_member *members, uint32_t cap, uint64_t now_ms);

/* A member that reached this node (a link to it): added alive with
 * incarnation 0 if unknown, and probed from now on. Returns 0 or
 * -ENOSPC. */
int node_swim_add(node_swim *s, const node_ovl_id *id, node_swim_out *out);
/* A member known by hearsay (a beacon, PEERS): added alive if unknown,
 * probed only once it has reached this node (a message from it, or
 * node_swim_add). Returns 0 or -ENOSPC. */
int node_swim_learn(node_swim *s, const node_ovl_id *id, node_swim_out *out);

void node_swim_recv(node_swim *s, const node_ovl_id *from,
                    const node_swim_msg *m, uint64_t now_ms,
                    node_swim_out *out);

/* Probes, indirect probes, NACKs and suspicion timeouts. Call at least
 * every timeout_ms / 5. */
void node_swim_tick(node_swim *s, uint64_t now_ms, node_swim_out *out);

/* The member's entry, or NULL. */
const node_swim_member *node_swim_get(const node_swim *s,
                                      const node_ovl_id *id);

/* The suspicion timeout for a suspect with nconf confirmations (Lifeguard
 * 4.3): from beta x min down to min = alpha x log10(N) x interval. */
uint64_t node_swim_suspicion_ms(const node_swim *s, unsigned nconf);

#endif
