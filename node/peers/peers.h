/* node/peers/peers.h -- layer peers: who is out there, and the link to each.
 *
 * The peer table (open addressing by id, bounded), the tie-break between
 * two links to one peer, liveness (PING/PONG), re-dial with backoff,
 * static peers, discovery by beacon, peer exchange (PEERS) and the
 * allow-list. It uses the link layer below it.
 *
 * Who may include it: node/peers/ and the layers above it (node/LAYERS). */
#ifndef CONFAB_NODE_PEERS_PEERS_H
#define CONFAB_NODE_PEERS_PEERS_H

#include "node/link/link.h"

#define NODE_USER_PINGS 16u  /* outstanding confab_ping() per peer */
#define NODE_PEX_CHUNK  256u /* PEERS entries per message we send */
/* area: performance (#18) */
#define NODE_PEX_NAMED_BITS 1024u /* filter of the peers a peer named */
#define NODE_PEX_BATCH_MS   1000u /* newcomers sent at most this often */

/* ---- peers ------------------------------------------------------------ */

typedef struct node_user_ping {
    uint64_t token;
    uint64_t sent_us;
} node_user_ping;

/* area: scale (#13): what only a linked peer needs, made at its first use
 * and freed when the link goes down: a node of a 1,000-node overlay knows
 * 999 peers and links 8, and these 384 bytes were in each record. */
typedef struct node_peer_more {
    node_user_ping user_pings[NODE_USER_PINGS];
    /* The peers its PEERS named since it came up (it is linked to them),
     * as a Bloom filter: a newcomer is not sent to a peer that it named
     * or that named it. A false positive costs a late link (the grace
     * period), never a missing one; no filter (no memory) costs a
     * newcomer sent twice. */
    uint8_t pex_named[NODE_PEX_NAMED_BITS / 8];
} node_peer_more;

struct node_peer {
    uint8_t id[WIRE_NODE_ID_BYTES];
    char name[WIRE_MAX_NAME + 1];
    confab_peer_state state;
    node_conn *conn;    /* the link used for sending */
    node_conn *dialing; /* our outbound attempt, if any */
    bool switching;     /* lost the link to the tie-break, winner pending */
    uint64_t switch_deadline;
    /* where it accepts links */
    struct sockaddr_storage addr;
    bool has_addr;
    uint64_t boot;
    uint64_t max_body;       /* from its HELLO */
    uint64_t grace_deadline; /* larger id: dial if still unlinked then */
    bool heard;              /* learned from a beacon or PEERS */
    bool advertised;         /* addr is the one its beacon names (#16) */
    /* re-dial */
    unsigned backoff_ms;
    uint64_t next_dial;
    bool redial; /* this node is the one that re-dials it */
    /* send queue (data lane) */
    node_out *q_head, *q_tail;
    size_t q_bytes;
    bool want_writable;
    uint64_t seq_multi;
    /* the reliable unicast stream to it (delivery.c) */
    node_out *ob_head, *ob_tail; /* outbox: accepted, not acknowledged */
    size_t ob_count, ob_bytes;
    uint64_t ob_base;  /* last seq it acknowledged (cumulative) */
    uint64_t tx_epoch; /* its epoch our numbering is for */
    /* the reliable unicast stream from it */
    uint64_t rx_epoch;       /* its epoch rx_next is for */
    uint64_t rx_next;        /* next seq to deliver */
    uint64_t rx_acked;       /* last seq we acknowledged */
    bool rx_dirty;           /* rx_next moved: record it */
    bool ack_waiting;        /* an ACK waits for the store */
    uint64_t rx_check_left;  /* its stream restarted: unicasts still to
                                check by id against the unread inbox */
    uint64_t rx_check_below; /* inbox serials of the old stream */
    uint64_t low_ack_ms;     /* loop ms of the first of the ACKs below
                                the base coming now (delivery.c) */
    /* liveness and round trip */
    uint64_t ping_token; /* outstanding liveness ping, 0 if none */
    uint64_t ping_sent_us;
    uint64_t ping_sent_ms; /* loop time of the last liveness ping */
    uint64_t read_ms;      /* loop time it last acknowledged our data */
    /* peer exchange (pex.c, #18): n->pex_gen when it went into the batch
     * of newcomers, and when it was sent our whole list */
    uint64_t pex_up_gen, pex_list_gen;
    uint64_t srtt_us, rttvar_us;
    node_peer_more *more; /* NULL until needed (area: scale (#13)) */
    /* ids of the last broadcasts and multicasts delivered from it (made at
     * the first; docs/PROTOCOL.md 12.6) */
    struct node_bseen *bseen;
    /* groups it is a member of (as it told us), names owned */
    char **groups;
    uint16_t n_groups, cap_groups;
    /* a test's added latency: its bytes are processed this late */
    unsigned delay_ms;
    /* counters */
    uint64_t msgs_sent, msgs_received, bytes_sent, bytes_received;
    /* the table's bounds (peer.c). A peer never linked is only an id and
     * an address someone told us of: it expires and may be evicted, unless
     * something still holds it (see peer.c, "pinned"). */
    bool linked;            /* a link to it was established, ever */
    unsigned conn_refs;     /* connections whose c->peer is this one */
    uint64_t heard_ms;      /* loop time it was last heard of */
    node_list learned_link; /* in node->learned while never linked */
    /* the first hour (#14): given up on (peer_forget_ms, confab_forget) */
    bool gone;
    uint64_t down_ms; /* loop time it went down */
    /* area: scale (#13): the overlay's (overlay.c) */
    bool ovl_counted;       /* counted among the nodes linked, ever */
    uint64_t ovl_idle_ms;   /* linked outside the active view since */
    uint64_t ovl_join_ms;   /* its last JOIN taken (one per shuffle period) */
    uint64_t ovl_disown_ms; /* its last DISCONNECT for a view it got wrong */
};

/* A configured static peer: dialed whether or not discovery finds it. */
struct node_static {
    char host_port[300];
    struct sockaddr_storage addr;
    bool resolved;
    bool resolving;
    uv_getaddrinfo_t gai;
    uint8_t id[WIRE_NODE_ID_BYTES]; /* learned from the first handshake */
    bool has_id;
    node_conn *dialing;
    unsigned backoff_ms;
    uint64_t next_dial;
    confab_node *node;
    unsigned fails; /* dials in a row that failed, for the log */
};

/* A test hook: what is cut between this node and one peer. */
#define NODE_BLOCK_LINK   1u /* links: paused, new ones refused */
#define NODE_BLOCK_BEACON 2u /* its beacons are not heard */
typedef struct node_block {
    uint8_t id[WIRE_NODE_ID_BYTES];
    unsigned what;
} node_block;

/* area: scale (#13): p's node_peer_more, made now if need be; NULL: no
 * memory. */
node_peer_more *node_peer_more_get(node_peer *p);

/* peer.c */
/* True when p has an established link that carries messages: the one
 * test of "up" (a link being switched after the tie-break is not; see
 * node_peer_linked for the lane's wider view). */
static inline bool node_peer_up(const node_peer *p)
{
    return p->conn != NULL && p->conn->state == CONN_UP;
}

/* The peer table's one iterator: the first peer at slot *i or after (*i
 * moves to it), or NULL at the end. */
static inline node_peer *node_peer_next(const confab_node *n, size_t *i)
{
    for (; *i < n->peers_cap; ++*i)
        if (n->peers[*i] != NULL)
            return n->peers[*i];
    return NULL;
}

/* Every peer of the table, p a variable of the caller:
 *     node_peer *p;
 *     node_peer_each (n, p) { ... }
 * break works; the body must not add peers (the table may grow). */
#define node_peer_each(n, p)                                                   \
    for (size_t node_slot_ = 0;                                                \
         ((p) = node_peer_next((n), &node_slot_)) != NULL; node_slot_++)

/* What the layers above do when a peer changes, instead of the peer table
 * calling them: one table per node (confab_node.peer_ops), filled by the
 * api layer at creation (node/api/node.c), which calls the data lane,
 * delivery, peer exchange and groups in a fixed order. */
typedef struct node_peer_ops {
    /* The link p sends on changed (up, lost, switched). */
    void (*relinked)(node_peer *p);
    /* A first link to p is up; h is its HELLO. 0, or an error that
     * closes the link. */
    int (*up)(confab_node *n, node_peer *p, const wire_hello *h);
    /* p went down (after the event was raised). */
    void (*down)(confab_node *n, node_peer *p);
    /* p is forgotten (never linked, expired or evicted) or the node is
     * freed: what the layers above keep for it goes. */
    void (*forget)(confab_node *n, node_peer *p);
} node_peer_ops;

node_peer *node_peer_find(const confab_node *n,
                          const uint8_t id[WIRE_NODE_ID_BYTES]);
/* The peer with that id, made if unknown (no bound: for a peer that
 * proved its id in a handshake, or state from the store). NULL: -ENOMEM. */
node_peer *node_peer_get(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES]);
/* The same for a peer someone told us of (a beacon, a PEERS entry): it
 * counts as heard now, and a new one takes a place among the never-linked
 * peers (max_known_peers), forgetting the oldest unpinned one when full.
 * NULL when there is no room or memory. */
node_peer *node_peer_learn(confab_node *n,
                           const uint8_t id[WIRE_NODE_ID_BYTES]);
/* Forgets the never-linked peers unheard for known_peer_ttl_ms. */
void node_peers_expire(confab_node *n, uint64_t now);
/* A connection points to p (c->peer): p is not forgotten meanwhile. */
void node_peer_hold(node_peer *p);
void node_peer_release(node_peer *p);
void node_peers_free(confab_node *n);
/* A connection finished its handshake; hello is the peer's HELLO. Returns
 * 0, or a negative errno when the connection must be closed. */
int node_peer_established(node_conn *c, const wire_hello *hello);
/* A connection stopped carrying messages for its peer. */
void node_peer_conn_lost(node_conn *c, confab_down_reason why);
void node_peer_bye_received(node_conn *c, uint64_t reason);
void node_peer_tick(confab_node *n, node_peer *p, uint64_t now);
/* Pings or times out the peer of c, its active link. */
void node_peer_liveness(node_conn *c, uint64_t now);
/* Dials a known peer at its address (unless the handshake cap is reached:
 * the next tick tries again). */
void node_peer_dial_now(confab_node *n, node_peer *p, uint64_t now);
/* An outbound attempt to a known peer failed before it was established. */
void node_peer_dial_failed(node_conn *c);
/* An outbound attempt to a static peer failed before it was established. */
void node_static_dial_failed(node_static *s);
/* Gives up on p (not linked now): no more dials, shown as gone. */
void node_peer_give_up(confab_node *n, node_peer *p, const char *why);
void node_statics_tick(confab_node *n, uint64_t now);
void node_peer_info(const node_peer *p, confab_peer_info *info);
/* The peer acknowledged data we sent: it reads, so the liveness check
 * that it does (a PING every four intervals) can wait. */
void node_peer_reads(node_peer *p, uint64_t now);
void node_peer_rtt_sample(node_peer *p, uint64_t rtt_us);
/* Answers a PING, or takes the round trip of a PONG. */
int node_peer_on_ping(node_conn *c, const wire_msg *m);
/* The tie-break of DESIGN.md: of two links to one peer (both
 * established), the one both ends keep. */
node_conn *node_tie_break(node_conn *a, node_conn *b);
void node_backoff_next(confab_node *n, unsigned *backoff_ms,
                       uint64_t *next_dial, uint64_t now);
/* The link's hooks (node_link_ops, link.h says what each does). */
void node_peer_link_dialing(node_conn *c);
void node_peer_link_ended(node_conn *c, node_conn_state was,
                          confab_down_reason why);
void node_peer_link_freed(node_conn *c);
void node_peer_link_tick(node_conn *c, uint64_t now);
void node_peer_link_resumed(node_conn *c);
void node_peer_link_counted(node_conn *c, size_t sent, size_t received);
bool node_peer_link_more(const node_conn *c);
unsigned node_peer_link_delay_ms(const node_conn *c);

/* Test hooks, used by testnet.c. Cutting a peer's links (NODE_BLOCK_LINK)
 * pauses them (nothing read, nothing written, nothing closed) and refuses
 * new ones; cutting its beacons (NODE_BLOCK_BEACON) makes them unheard.
 * what is the set of cuts from now on; 0 heals. Returns 0 or -ENOMEM. */
int node_block_peer(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                    unsigned what);
unsigned node_blocked_what(const confab_node *n,
                           const uint8_t id[WIRE_NODE_ID_BYTES]);
/* True when links to that peer are cut. */
bool node_peer_blocked(const confab_node *n,
                       const uint8_t id[WIRE_NODE_ID_BYTES]);
/* True when that peer's beacons are cut. */
bool node_beacon_blocked(const confab_node *n,
                         const uint8_t id[WIRE_NODE_ID_BYTES]);
/* Resets the active link to a peer (TCP RST). Returns 0 or -ENOTCONN. */
int node_reset_peer(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES]);

/* discovery.c */
int node_discovery_start(confab_node *n);
void node_discovery_stop(confab_node *n);
/* Asks for one extra beacon soon (coalesced), after hearing a new peer. */
void node_discovery_extra_beacon(confab_node *n);
/* The beacon limiter: true while the source (address and claimed id) has
 * sent at most NODE_RATE_BEACONS in the second that began at its first. */
bool node_beacon_rate_ok(confab_node *n, const struct sockaddr_in *src,
                         const uint8_t *id, uint64_t now);
/* The dial rule for a peer we learned of (beacon or PEERS) and are not
 * linked to: the smaller id dials now, the larger after the grace. */
void node_discovered(confab_node *n, node_peer *p, uint64_t now);

/* allow.c: the allow-list (docs/SECURITY.md, "Who may join") */
/* True when id may join: no list, or it is on the list. */
bool node_allowed(const confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES]);
/* Reads <home>/allow, if there is one. Returns 0 or an error (logged): a
 * list that cannot be read keeps the node from starting. */
int node_allow_load(confab_node *n);
void node_allow_free(confab_node *n);
/* Allows or denies id: in memory and in the home's file (atomically),
 * then closes the links the list now refuses. Returns 0, -ENOENT (deny:
 * not listed), -ENOSPC, -ENOMEM or a file error; err (may be NULL) says
 * what went wrong. */
int node_allow_set(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                   bool allow, char *err, size_t errlen);

/* pex.c */
/* A peer came up: send it our peers, and announce it to the others. */
void node_pex_peer_up(confab_node *n, node_peer *p);
/* Sends the pending announcements (called by the tick). */
void node_pex_flush(confab_node *n);
int node_pex_on_peers(node_conn *c, const wire_msg *m);
void node_pex_forget(confab_node *n, node_peer *p);

/* Test hook: delays processing what peer sends (read side). */
int node_set_peer_delay(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                        unsigned ms);

#endif
