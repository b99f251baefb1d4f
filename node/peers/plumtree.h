/* node/peers/plumtree.h: Plumtree, the epidemic broadcast tree of Leitao,
 * Pereira and Rodrigues, "Epidemic Broadcast Trees" (SRDS 2007), as a
 * state machine with no I/O (node/peers/ovl.h). docs/PROTOCOL.md 15.3 is
 * the wire form.
 *
 * Neighbours come from the membership (HyParView's active view:
 * node_pt_neighbor_up/down). Each is either EAGER (sent the whole message:
 * the tree) or LAZY (sent its id only, in batched IHAVEs). A duplicate
 * prunes its sender into the lazy set; an announced message that does not
 * arrive in time grafts the announcer into the eager set: the tree forms
 * and repairs itself.
 *
 * The machine holds message ids, never payloads: a GOSSIP action names the
 * id and the caller attaches the payload it holds (or drops the action if
 * it holds it no longer). All tables are fixed arrays. */
#ifndef CONFAB_NODE_PEERS_PLUMTREE_H
#define CONFAB_NODE_PEERS_PLUMTREE_H

#include "node/peers/ovl.h"

#include <stddef.h>
#include <stdint.h>

#define NODE_PT_ID_BYTES        16u   /* a message id, as DATA's `id` */
#define NODE_PT_PEER_CAP        16u   /* neighbours, eager and lazy together */
#define NODE_PT_IHAVE_MAX       32u   /* ids in one IHAVE */
#define NODE_PT_LAZY_CAP        256u  /* announcements waiting for a flush */
#define NODE_PT_MISSING_CAP     64u   /* announced ids not yet received */
#define NODE_PT_ANNOUNCERS      4u    /* announcers kept per missing id */
#define NODE_PT_SEEN_CAP        4096u /* largest received-ids cache */
#define NODE_PT_GRAFTS_PER_TICK 16u   /* resends a neighbour may ask per tick */
/* Actions one call appends at most: a GOSSIP and an IHAVE per neighbour,
 * the IHAVEs of a full lazy queue, a GRAFT per missing id, and a few. */
#define NODE_PT_OUT_MAX_PER_CALL                                               \
    (2u * NODE_PT_PEER_CAP + NODE_PT_LAZY_CAP / NODE_PT_IHAVE_MAX +            \
     NODE_PT_MISSING_CAP + 4u)

typedef struct node_pt_mid {
    uint8_t b[NODE_PT_ID_BYTES];
} node_pt_mid;

enum node_pt_type {
    NODE_PT_GOSSIP = 1,
    NODE_PT_IHAVE = 2,
    NODE_PT_GRAFT = 3,
    NODE_PT_PRUNE = 4,
};

typedef struct node_pt_msg {
    uint8_t type;
    uint8_t has_id; /* GRAFT: 0 is "add me to your eager set, resend none" */
    uint32_t round; /* GOSSIP, GRAFT: hops from the source */
    node_pt_mid id; /* GOSSIP, GRAFT */
    uint8_t n;      /* IHAVE: entries in ids/rounds */
    node_pt_mid ids[NODE_PT_IHAVE_MAX];
    uint32_t rounds[NODE_PT_IHAVE_MAX];
} node_pt_msg;

enum node_pt_action_kind {
    NODE_PT_A_SEND = 1,    /* send msg to peer (GOSSIP: attach payload) */
    NODE_PT_A_DELIVER = 2, /* deliver message id to the application */
};

typedef struct node_pt_action {
    uint8_t kind;
    node_ovl_id peer;
    node_pt_msg msg; /* SEND; DELIVER: msg.id */
} node_pt_action;

typedef struct node_pt_out {
    node_pt_action *a;
    size_t n, cap;
    size_t dropped;
} node_pt_out;

typedef struct node_pt_config {
    uint32_t timeout1_ms; /* wait for an announced message; 0: 1000 */
    uint32_t timeout2_ms; /* wait after a GRAFT; 0: 500 */
    uint32_t threshold;   /* optimisation hop threshold (3.8); 0: 3 */
    uint32_t seen_max;    /* received-ids cache; 0: 1024 */
} node_pt_config;

typedef struct node_pt_stats {
    uint64_t gossip_in, dup_in, ihave_in, graft_in, prune_in;
    uint64_t refused; /* from a non-neighbour, or out of bounds */
    uint64_t missing_full, grafts_sent, grafts_limited, optimised;
    uint64_t stray_in; /* GOSSIPs from a non-neighbour, taken */
} node_pt_stats;

typedef struct node_pt_peer {
    node_ovl_id id;
    uint8_t eager;
    uint8_t grafts; /* GRAFTs answered since the last tick */
} node_pt_peer;

typedef struct node_pt_missing {
    node_pt_mid id;
    uint64_t deadline;
    uint8_t n; /* announcers */
    node_ovl_id ann[NODE_PT_ANNOUNCERS];
    uint32_t round[NODE_PT_ANNOUNCERS];
} node_pt_missing;

typedef struct node_pt_lazy {
    uint8_t peer; /* index in peers[] */
    uint32_t round;
    node_pt_mid id;
} node_pt_lazy;

typedef struct node_pt {
    node_pt_config cfg;
    node_pt_peer peers[NODE_PT_PEER_CAP];
    uint8_t npeers;
    node_pt_missing missing[NODE_PT_MISSING_CAP];
    uint8_t nmissing;
    node_pt_lazy lazy[NODE_PT_LAZY_CAP];
    uint16_t nlazy;
    node_pt_mid *seen; /* ring of seen_max ids, the caller's memory */
    uint32_t nseen, seen_next;
    node_pt_stats stats;
} node_pt;

/* seen: seen_max ids of the caller's memory (cfg->seen_max, default
 * 1024), borrowed for the life of p. Returns 0 or -EINVAL. */
__attribute__((warn_unused_result)) int
node_pt_init(node_pt *p, const node_pt_config *cfg, node_pt_mid *seen);

/* Bytes of seen memory node_pt_init needs for cfg. */
size_t node_pt_seen_bytes(const node_pt_config *cfg);

/* A membership neighbour came up (joins the eager set, section 3.6) or
 * went down (forgotten, with its announcements). Returns -ENOSPC when
 * NODE_PT_PEER_CAP neighbours are already known. */
int node_pt_neighbor_up(node_pt *p, const node_ovl_id *peer);
void node_pt_neighbor_down(node_pt *p, const node_ovl_id *peer);

/* Broadcasts our own message id (the caller delivers it locally). */
void node_pt_broadcast(node_pt *p, const node_pt_mid *id, node_pt_out *out);

/* A message m from `from`. Only a neighbour is heard, but for a GOSSIP:
 * from a non-neighbour (a member that holds us as its neighbour while we
 * do not: the caller must know it for a member and tell it, 15.3) it is
 * delivered and passed on as a first copy, changing no eager bit. */
void node_pt_recv(node_pt *p, const node_ovl_id *from, const node_pt_msg *m,
                  uint64_t now_ms, node_pt_out *out);

/* Flushes IHAVEs and runs the missing-message timers. Call every few tens
 * of milliseconds: the IHAVE batching delay is the tick period. */
void node_pt_tick(node_pt *p, uint64_t now_ms, node_pt_out *out);

int node_pt_is_eager(const node_pt *p, const node_ovl_id *peer);
int node_pt_is_neighbor(const node_pt *p, const node_ovl_id *peer);

#endif
