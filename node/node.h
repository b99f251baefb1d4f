/* node/node.h: the node's private structures, shared by the files of node/.
 *
 * Ownership: the node owns its peers and connections. A connection is
 * freed only in the close callback of its TCP handle; a peer lives until
 * the node is freed (it keeps the address to re-dial and its counters).
 * Nothing here is visible through node/confab.h. */
#ifndef CONFAB_NODE_NODE_H
#define CONFAB_NODE_NODE_H

#include "node/confab.h"

#include "crypto/cipher.h"
#include "crypto/identity.h"
#include "crypto/netkey.h"
#include "crypto/noise.h"
#include "crypto/sec.h"
#include "wire/beacon.h"
#include "wire/frame.h"
#include "wire/msg.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/socket.h>

/* ---- small helpers ---------------------------------------------------- */

/* An intrusive doubly linked list (a ring with a sentinel head). */
typedef struct node_list {
    struct node_list *prev, *next;
} node_list;

#define node_container_of(ptr, type, member)                                   \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void node_list_init(node_list *h)
{
    h->prev = h->next = h;
}
static inline bool node_list_empty(const node_list *h)
{
    return h->next == h;
}
static inline void node_list_add_tail(node_list *h, node_list *e)
{
    e->prev = h->prev;
    e->next = h;
    h->prev->next = e;
    h->prev = e;
}
static inline void node_list_del(node_list *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

#define NODE_PROLOGUE    "confab/1"
#define NODE_HS_MSG1_LEN 48u  /* e (32) + tag of the empty payload (16) */
#define NODE_TXBUF_SMALL 960u /* a small transmit block (malloc: ~1 KiB) */
#define NODE_TXBUF_LARGE (WIRE_MAX_FRAME + 1024u) /* one full frame fits */
#define NODE_TX_WINDOW   (256u * 1024u) /* bytes handed to libuv at once */
/* One link's transmit queue (config link_tx_bytes): the data window, a
 * frame over it, and room for control messages above them. */
#define NODE_LINK_TX_DEFAULT (1024u * 1024u)
#define NODE_LINK_TX_MIN     (512u * 1024u)
#define NODE_BCAST_WINDOW    64u /* broadcast ids remembered per sender */
#define NODE_FRAG_CHUNK      (WIRE_MAX_PLAINTEXT - WIRE_FRAG_OVERHEAD - 64u)
#define NODE_USER_PINGS      16u   /* outstanding confab_ping() per peer */
#define NODE_PEX_CHUNK       64u   /* PEERS entries per message we send */
#define NODE_DRAIN_MS        5000u /* longest wait for a peer's BYE */
#define NODE_STOP_GRACE_MS   1000u /* longest wait for writes at stop */

/* ---- outgoing data ---------------------------------------------------- */

struct node_body;

/* One message queued for one peer. A unicast is also in the peer's
 * outbox until acknowledged; it is freed when it is in neither. */
typedef struct node_out {
    struct node_out *next;    /* in the peer's data lane */
    struct node_out *ob_next; /* in the peer's outbox (unicast) */
    struct node_body *body;
    uint64_t seq;
    size_t off; /* body bytes already framed */
    bool in_lane, in_outbox;
    bool skip;        /* expired: sent as a place-holder */
    uint64_t expires; /* wall clock, microseconds */
    uint64_t gen;     /* store generation of its record */
    uint64_t sent_ms; /* loop time it was last sent; 0: never */
} node_out;

/* A message body and its header, shared by the per-peer queue entries of
 * one send (a broadcast queues the same body for every peer). One
 * allocation holds the body, then the group and the content type
 * (NUL-terminated), and the queue entry of the first peer (`own`), so a
 * unicast costs one allocation. */
typedef struct node_body {
    uint32_t refs;
    uint8_t id[WIRE_ID_BYTES];
    uint8_t kind;
    uint8_t group_len;
    uint8_t ct_len;
    bool has_ct;
    bool own_used;
    uint64_t ts;
    size_t len;
    const char *group; /* "" when none */
    const char *ct;    /* "" when none */
    node_out own;
    uint8_t bytes[]; /* len bytes of body, then group and ct */
} node_body;

/* What a queued message costs besides its body, counted against the send
 * queue's bound so that many small messages cannot outgrow it. */
#define NODE_MSG_OVERHEAD 128u

/* A block of encrypted frames waiting for, or in, one uv_write. */
typedef struct node_txbuf {
    struct node_txbuf *next;
    uint32_t len;
    uint32_t off;   /* bytes of it already written */
    uint32_t cap;   /* NODE_TXBUF_SMALL, NODE_TXBUF_LARGE, or one odd
                       frame's size (not recycled) */
    uv_write_t req; /* used by the first block of a write */
    uint32_t nbufs; /* blocks in that write (first block only) */
    uint8_t data[];
} node_txbuf;

/* ---- connections ------------------------------------------------------ */

typedef enum node_conn_state {
    CONN_CONNECTING = 0, /* TCP connect in progress */
    CONN_HANDSHAKE = 1,  /* Noise handshake in progress */
    CONN_UP = 2,         /* established, carries messages */
    CONN_DRAINING = 3,   /* BYE sent or received; no new data */
    CONN_CLOSING = 4,    /* uv_close called */
} node_conn_state;

typedef struct node_peer node_peer;
typedef struct node_static node_static;
typedef struct node_hs node_hs;
typedef struct node_store node_store;
typedef struct node_inbox node_inbox;
typedef struct node_control node_control;

/* Record types of the store (store.c). */
enum {
    NODE_REC_INBOX_PUT = 1,   /* a delivered message, unread */
    NODE_REC_INBOX_READ = 2,  /* it was read */
    NODE_REC_GROUP_JOIN = 3,  /* this node joined a group */
    NODE_REC_GROUP_LEAVE = 4, /* and left it */
};

/* Bytes read from a link whose processing a test delays (testnet.c). */
typedef struct node_delayed {
    struct node_delayed *next;
    uint64_t due; /* loop ms */
    size_t len;
    uint8_t data[];
} node_delayed;

typedef struct node_conn {
    uv_tcp_t tcp; /* tcp.data = this */
    confab_node *node;
    node_list link; /* in node->conns */
    node_conn_state state;
    bool outbound;
    bool bye_sent, bye_received;
    bool dirty;    /* in node->dirty, waiting for a flush */
    bool flushing; /* in node_conn_flush(): stays clean */
    node_list dirty_link;
    node_peer *peer;     /* known once the handshake reveals it */
    node_static *target; /* the static peer this dial serves, if any */
    uint8_t expect_id[WIRE_NODE_ID_BYTES]; /* dialed a known peer */
    bool has_expect_id;
    uint8_t peer_id[WIRE_NODE_ID_BYTES]; /* learned in the handshake */
    uint8_t hs_hash[16]; /* prefix of the handshake hash: the tie-break
                            between two links dialed by one side */
    node_hs *hs;         /* during the handshake (handshake.c) */
    bool hs_busy;        /* a handshake step is on the thread pool */
    bool free_deferred;  /* closed while a step ran: free after it */
    uint8_t *hs_rest;    /* bytes read behind a handshake message */
    size_t hs_rest_len;
    sec_cipher tx, rx;
    wire_frame_decoder dec;
    struct sockaddr_storage remote;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    bool shutting_down;
    bool paused; /* cut by a test: neither read nor written */
    node_delayed *delayed_head, *delayed_tail; /* a test's added latency */
    node_list delay_link; /* in node->delayed while it has some */
    /* transmit */
    node_txbuf *tx_head, *tx_tail; /* filled, not yet handed to libuv */
    size_t tx_pending;             /* bytes in tx_head.. */
    size_t tx_inflight;            /* bytes handed to libuv, not yet written */
    bool tx_over;                  /* a control message found the queue at
                                      link_tx_bytes: cut at the next flush */
    /* receive: a fragmented message being reassembled (data.c). In
     * progress while rx_big_size != 0; rx_big is NULL when the body was
     * dropped at the node's bound: its fragments are read and discarded. */
    uint8_t *rx_big;
    size_t rx_big_len, rx_big_size;
    uint64_t rx_big_t0;   /* loop ms of its first part */
    wire_data rx_big_hdr; /* strings copied below */
    char rx_big_group[WIRE_MAX_GROUP + 1];
    char rx_big_ct[WIRE_MAX_CT + 1];
    /* times, in loop milliseconds */
    uint64_t t_start, t_rx, t_tx, t_drain;
} node_conn;

/* ---- peers ------------------------------------------------------------ */

typedef struct node_user_ping {
    uint64_t token;
    uint64_t sent_us;
} node_user_ping;

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
    uint64_t srtt_us, rttvar_us;
    node_user_ping user_pings[NODE_USER_PINGS];
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
};

/* The ids of the last NODE_BCAST_WINDOW broadcasts and multicasts
 * delivered from one sender, a ring (delivery.c). */
typedef struct node_bseen {
    uint8_t ids[NODE_BCAST_WINDOW][WIRE_ID_BYTES];
    uint32_t next, len;
} node_bseen;

/* An anycast waiting for a member to acknowledge it (groups.c). */
typedef struct node_anycast {
    node_list link;    /* in node->anycasts */
    node_body *body;   /* kind WIRE_K_ANYCAST, group set */
    node_peer *member; /* the member that has it now */
    uint64_t deadline; /* loop ms: then the next member */
    node_peer **tried; /* members that had it */
    size_t n_tried, cap_tried;
    uint64_t expires; /* wall clock, microseconds */
} node_anycast;

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
};

/* ---- discovery -------------------------------------------------------- */

#define NODE_RATE_SLOTS      64u /* sources tracked by the beacon limiter */
#define NODE_RATE_BEACONS    8u  /* beacons a source may send per second */
#define NODE_EXTRA_BEACON_MS 50u /* at most one extra beacon this often */

/* A per-source beacon counter: a fixed table hashed by address, so a
 * flood of forged sources cannot make it grow. */
typedef struct node_rate {
    uint32_t ip;
    uint16_t port;
    uint32_t id; /* the first bytes of the node id it claims */
    uint32_t count;
    uint64_t window; /* loop ms at which this second began */
} node_rate;

/* A test hook: what is cut between this node and one peer. */
#define NODE_BLOCK_LINK   1u /* links: paused, new ones refused */
#define NODE_BLOCK_BEACON 2u /* its beacons are not heard */
typedef struct node_block {
    uint8_t id[WIRE_NODE_ID_BYTES];
    unsigned what;
} node_block;

/* ---- the node --------------------------------------------------------- */

typedef enum node_state {
    NODE_NEW = 0,
    NODE_RUNNING = 1,
    NODE_STOPPING = 2,
    NODE_STOPPED = 3,
} node_state;

/* One observer of the node, the web page (node/web.c): it sees every
 * event node_emit() raises (after the control socket, before the
 * program's callback), and every message as it is framed for a peer, so
 * that it can draw the path each one takes (an anycast's failover too).
 * Either callback may be NULL. */
typedef struct node_observer {
    void (*event)(confab_node *n, const confab_event *ev, void *user);
    /* kind: WIRE_K_*; group: "" when none. Borrowed for the call. */
    void (*sent)(confab_node *n, const uint8_t *peer, unsigned kind,
                 const uint8_t *msg_id, const char *group, void *user);
    void *user;
} node_observer;

struct confab_node {
    uv_loop_t *loop;
    node_state state;
    confab_config cfg; /* pointers in it are NULLed; copies below */
    char name[WIRE_MAX_NAME + 1];
    char bind_addr[64];
    sec_identity *identity;
    sec_netkey *netkey;
    /* handles */
    uv_tcp_t listener;
    bool listening;
    uv_timer_t tick;
    uv_idle_t flusher;
    uv_check_t flush_check;
    bool flush_armed;
    unsigned open_handles; /* closed handles still to call back */
    unsigned tick_ms;
    confab_stop_cb stop_cb;
    void *stop_user;
    uint16_t port;
    uint64_t boot;
    /* HELLO payload, encoded again when the groups change */
    uint8_t *hello;
    size_t hello_len;
    /* groups this node is a member of, names owned */
    char **groups;
    size_t n_groups;
    node_list anycasts; /* pending anycasts */
    size_t n_anycasts;
    /* test hook: links whose reading a test delays */
    uv_timer_t delay_timer;
    bool delay_timer_open;
    node_list delayed;
    /* peers: open addressing by id */
    node_peer **peers;
    size_t peers_cap, peers_len;
    /* static peers */
    node_static *statics;
    size_t n_statics;
    /* connections */
    node_list conns;
    node_list dirty;
    unsigned handshakes;
    /* the read buffer of every connection (never held across callbacks;
     * frames are decrypted in place in it) */
    uint8_t *rxbuf; /* WIRE_MAX_FRAME + 1 */
    bool rxbuf_busy;
    /* recycled transmit blocks: [0] small, [1] large */
    node_txbuf *txfree[2];
    unsigned txfree_len[2];
    uint64_t token_seq;
    confab_stats stats;
    /* delivery (delivery.c) */
    uint64_t epoch;  /* this node's delivery state's identity */
    size_t ob_total; /* bytes in every peer's outbox */
    size_t ob_msgs;
    bool durable_waiting;           /* a store waiter will release the lanes */
    uint8_t (*seen)[WIRE_ID_BYTES]; /* anycast ids delivered (a ring) */
    uint8_t (*lost_ids)[WIRE_ID_BYTES]; /* accepted unicasts whose records
                                           the store lost: FAILED soon */
    size_t n_lost_ids;
    size_t seen_next, seen_len;
    /* random bytes drawn ahead, for message ids and jitter (a getrandom
     * call per message cost an eighth of a sender's time) */
    uint8_t rand_pool[256];
    size_t rand_left;
    /* discovery (discovery.c) */
    bool udp_open;
    uv_udp_t udp;
    uv_timer_t beacon_timer;
    bool beacon_timer_open;
    uint16_t discovery_port;
    char discovery_bind[64];
    uint8_t beacon[WIRE_BEACON_MAX];
    size_t beacon_len;
    struct sockaddr_in *bcast; /* where beacons go */
    size_t n_bcast;
    bool bcast_fixed; /* configured, not read from interfaces */
    uint8_t beacon_rx[WIRE_BEACON_MAX + 1];
    bool beacon_rx_busy;
    uint64_t last_extra_beacon;
    bool extra_beacon_due;
    node_rate rate[NODE_RATE_SLOTS];
    /* peer exchange (pex.c): peers that came up since the last PEERS */
    node_peer **pex_new;
    size_t pex_new_len, pex_new_cap;
    /* bounds: the peer table and who may join (peer.c, allow.c) */
    uint8_t peers_key[SEC_SHORTHASH_KEY_BYTES]; /* the table's hash key */
    node_list learned; /* never-linked peers, oldest heard first */
    size_t n_learned;
    uint64_t dial_tokens;     /* second-hand dials, in 1/1000 tokens */
    uint64_t dial_refill_ms;  /* loop time of the last refill */
    struct node_allow *allow; /* the allow-list, NULL: none */
    /* the home directory, the store, the inbox, the control server */
    char *home;
    char *control_path;
    bool identity_from_home;
    node_store *store;
    node_inbox *inbox;
    node_control *control;
    /* one more subscriber to every event: the web page (node/web.c) */
    node_observer observer;
    /* test hooks: peers whose links or beacons are cut (testnet.c) */
    node_block *blocked;
    size_t n_blocked;
    /* test hooks: faults injected into the node's own I/O (fault.c) */
    struct node_fault *fault;
};

/* ---- internal API ----------------------------------------------------- */

/* node.c */
void node_log(confab_node *n, confab_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void node_emit(confab_node *n, confab_event *ev);
/* Sets the one observer (copied; NULL: none). */
void node_set_observer(confab_node *n, const node_observer *o);
uint64_t node_now_ms(const confab_node *n);   /* loop time */
uint64_t node_clock_us(const confab_node *n); /* wall clock (config) */
uint64_t node_mono_us(void);                  /* monotonic, for RTT */
void node_random(confab_node *n, void *buf, size_t len);
void node_handle_closed(confab_node *n); /* one of the node's handles closed */
void node_conns_gone(confab_node *n);    /* a connection was freed */
int node_split_host_port(const char *hp, char *host, size_t cap,
                         uint16_t *port);
void node_short_id(const uint8_t id[WIRE_NODE_ID_BYTES], char out[9]);
int node_format_addr(const struct sockaddr_storage *ss, char *out, size_t cap);

/* handshake.c */
#define NODE_HS_ASYNC 1 /* node_hs_on_frame: a step went to the pool */
/* Begins the handshake of a connected or accepted connection. */
int node_hs_start(node_conn *c);
/* Hands a handshake frame to the next step: NODE_HS_ASYNC, or an error
 * that must close the connection. */
int node_hs_on_frame(node_conn *c, const uint8_t *f, size_t len);
void node_hs_free(node_hs *h);

/* conn.c */
/* Queues an unencrypted frame (a handshake message). */
int node_conn_tx_raw(node_conn *c, const uint8_t *msg, size_t len);
/* The connection leaves the handshake (done or failed). */
void node_conn_leave_handshake(node_conn *c);
/* A handshake step is done: feed what waited and read again. */
void node_conn_resume(node_conn *c);
/* A handshake step came back for a connection that was closed meanwhile. */
void node_conn_hs_orphaned(node_conn *c);
int node_conn_accept(confab_node *n, uv_stream_t *server);
int node_conn_dial(confab_node *n, const struct sockaddr_storage *addr,
                   node_peer *expect, node_static *target, node_conn **out);
/* Closes a connection at once (no BYE). */
void node_conn_abort(node_conn *c, confab_down_reason why);
/* Closes a connection at once with a TCP RST (a test hook). */
void node_conn_reset(node_conn *c);
/* Sends BYE(reason), then closes once the peer's BYE arrives, EOF, or the
 * drain deadline passes. */
void node_conn_bye(node_conn *c, uint64_t reason);
/* Encodes, encrypts and queues one control message (PING, PONG, BYE, ...)
 * ahead of the data lane. Returns 0 or -ENOMEM / -EMSGSIZE. */
int node_conn_send_ctl(node_conn *c, const wire_msg *m);
void node_conn_mark_dirty(node_conn *c);
void node_conn_flush(node_conn *c);
void node_flush_all(confab_node *n);
/* Makes the node's flusher run at the end of this loop turn (node_flush_all
 * from a check handle). False when it cannot: the node is not running or
 * its handles are closing. */
bool node_flush_arm(confab_node *n);
void node_conn_tick(node_conn *c, uint64_t now);
void node_txbuf_free_all(confab_node *n);
/* Encodes m (plaintext at most bound bytes), encrypts and queues it in
 * order on the data lane; bulk asks for a large block when a new one is
 * needed. Returns 0, -ENOMEM or -EMSGSIZE. */
int node_conn_send_data(node_conn *c, const wire_msg *m, size_t bound,
                        bool bulk);
/* Bytes queued on c and not yet written to the socket. */
size_t node_conn_tx_queued(const node_conn *c);

/* peer.c */
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
void node_statics_tick(confab_node *n, uint64_t now);
void node_peer_info(const node_peer *p, confab_peer_info *info);
void node_peer_rtt_sample(node_peer *p, uint64_t rtt_us);
/* Answers a PING, or takes the round trip of a PONG. */
int node_peer_on_ping(node_conn *c, const wire_msg *m);
void node_backoff_next(confab_node *n, unsigned *backoff_ms,
                       uint64_t *next_dial, uint64_t now);

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
void node_conn_pause(node_conn *c, bool paused);

/* discovery.c */
int node_discovery_start(confab_node *n);
void node_discovery_stop(confab_node *n);
/* Asks for one extra beacon soon (coalesced), after hearing a new peer. */
void node_discovery_extra_beacon(confab_node *n);
/* The dial rule for a peer we learned of (beacon or PEERS) and are not
 * linked to: the smaller id dials now, the larger after the grace. */
void node_discovered(confab_node *n, node_peer *p, uint64_t now);

/* allow.c: the allow-list (docs/SECURITY.md, "Who may join") */
typedef struct node_allow node_allow;
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

/* groups.c */
/* Encodes the HELLO from the name, port and groups. */
int node_hello_encode(confab_node *n);
/* The groups a peer's HELLO lists replace what we knew of it. */
int node_groups_from_hello(confab_node *n, node_peer *p, const wire_hello *h);
int node_groups_on_msg(node_conn *c, const wire_msg *m);
/* A peer went down: its anycasts go to the next member. */
void node_groups_peer_down(confab_node *n, node_peer *p);
void node_groups_tick(confab_node *n, uint64_t now);
/* Ends every pending anycast (the node stops): FAILED. */
void node_groups_stop(confab_node *n);
void node_groups_free(confab_node *n);
/* Frees what p said it is in, and takes it off the node's count of
 * memberships (the bound max_memberships). */
void node_peer_groups_free(confab_node *n, node_peer *p);
bool node_peer_in_group(const node_peer *p, const char *group);
int node_groups_check_name(const char *group, size_t *len);
/* Every group known here (this node's and its linked peers'), sorted by
 * name, each with its linked members (sorted by id): rows[i]'s are
 * members[rows[i].first ..) for rows[i].count. Names and ids are borrowed
 * until the loop runs again. Returns 0 or -ENOMEM. */
typedef struct node_group_row {
    const char *name;
    bool self; /* this node is a member */
    size_t first, count;
} node_group_row;
typedef struct node_group_list {
    node_group_row *rows;
    size_t n;
    const uint8_t **members;
    size_t n_members;
} node_group_list;
int node_groups_list(const confab_node *n, node_group_list *out);
void node_group_list_free(node_group_list *l);

/* delivery.c: the reliable unicast stream (docs/PROTOCOL.md section 12) */
enum {
    NODE_REC_EPOCH = 10,      /* this node's epoch */
    NODE_REC_OUT_PUT = 11,    /* a unicast accepted */
    NODE_REC_OUT_ACK = 12,    /* a peer acknowledged up to a seq */
    NODE_REC_OUT_EXPIRE = 13, /* a unicast expired */
    NODE_REC_TX = 14,         /* our numbering for a peer restarts */
    NODE_REC_RX = 15,         /* the next seq expected from a peer */
    NODE_REC_ANY_PUT = 16,    /* an anycast accepted */
    NODE_REC_ANY_DONE = 17,   /* and finished */
    NODE_REC_ANY_SEEN = 18,   /* an anycast id delivered here */
};
int node_delivery_init(confab_node *n);
void node_delivery_free(confab_node *n);
/* A new link to p: epochs, re-sending the outbox, our ACK state. */
void node_delivery_link_up(confab_node *n, node_peer *p, uint64_t epoch);
/* A unicast left the lane fully framed. */
void node_delivery_sent(node_peer *p, node_out *o, uint64_t now);
/* May the lane frame o now (its record is durable)? */
bool node_delivery_ready(const confab_node *n, const node_out *o);
int node_delivery_on_ack(node_conn *c, const wire_ack *a);
/* A received unicast: 1 deliver it, 0 drop it (duplicate, ahead of a gap,
 * a place-holder, or no room). */
int node_delivery_accept(node_conn *c, const wire_data *d);
/* It was delivered: count it. */
void node_delivery_delivered(node_conn *c, const wire_data *d);
/* An anycast: 1 deliver it, 0 already delivered (acknowledge again),
 * -ENOMEM no memory to remember it (neither: it will come again). */
int node_delivery_anycast_new(confab_node *n, const uint8_t id[WIRE_ID_BYTES]);
/* A broadcast or multicast from p: 1 new (then node_delivery_bcast_seen
 * cannot fail), 0 a repeat (counted: drop it), -ENOMEM no memory for the
 * window (drop it). */
int node_delivery_bcast_new(confab_node *n, node_peer *p,
                            const uint8_t id[WIRE_ID_BYTES]);
/* It was delivered: remember its id. */
void node_delivery_bcast_seen(node_peer *p, const uint8_t id[WIRE_ID_BYTES]);
/* Frees what delivery keeps for p alone (its broadcast window). */
void node_delivery_peer_free(node_peer *p);
/* The end of a read: acknowledge what was delivered, once durable. */
void node_delivery_read_done(node_conn *c);
void node_delivery_tick(confab_node *n, uint64_t now);
int node_delivery_replay(confab_node *n, uint8_t type, const uint8_t *ref,
                         const uint8_t *body, size_t len);
/* After damage to the store: the epoch is new (both sides restart their
 * streams) and the accepted unicasts whose records were lost are reported
 * failed at the next tick. */
int node_delivery_state_lost(confab_node *n);
void node_delivery_report_lost(confab_node *n, const uint8_t *id);
/* After replay: make the epoch if the store had none. */
int node_delivery_loaded(confab_node *n);
int node_delivery_dump(confab_node *n, int fd);

int node_delivery_put_anycast(confab_node *n, const node_body *b,
                              uint64_t expires);
void node_delivery_anycast_done(confab_node *n, const uint8_t *id);
int node_delivery_dump_anycast(int fd, const node_body *b, uint64_t expires);
/* groups.c: anycasts in the store */
int node_groups_anycast_restore(confab_node *n, node_body *b, uint64_t expires);
void node_groups_anycast_forget(confab_node *n, const uint8_t *id);
int node_groups_anycast_dump(confab_node *n, int fd);

/* Test hook: delays processing what peer sends (read side). */
int node_set_peer_delay(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                        unsigned ms);
void node_conn_delay_free(node_conn *c);
void node_delay_cb(uv_timer_t *t);

/* store.c */
#define NODE_STORE_REF_BYTES 16u
/* A record replay found damaged (docs/ARCHITECTURE.md, "The store"). */
typedef struct node_store_loss {
    uint64_t off; /* where it began in the file */
    int type;     /* its type; -1 when its header was damaged too */
    bool has_ref; /* ref holds the message id it was about */
    bool tail;    /* nothing whole came after it */
    uint8_t ref[NODE_STORE_REF_BYTES];
} node_store_loss;
/* Called for each record that verifies, in order; ref is the message id
 * the record is about (zeros if none; NULL for a format 1 record). A
 * non-zero return counts the record as damaged. */
typedef int (*node_store_replay_cb)(confab_node *n, uint8_t type,
                                    const uint8_t *ref, const uint8_t *body,
                                    size_t len, void *arg);
int node_store_open(confab_node *n, const char *dir, node_store_replay_cb cb,
                    void *arg, node_store **out);
/* Appends a record: while the node runs, into a buffer written out at the
 * end of the loop turn (node_store_kick), else written at once; durable
 * after the next fsync. Returns 0, or an error after which the store
 * writes nothing more. */
int node_store_append(node_store *s, uint8_t type, const uint8_t *body,
                      size_t len);
/* The same, with the id of the message the record is about (16 bytes),
 * which stays readable when the record's body is damaged. */
int node_store_append_ref(node_store *s, uint8_t type, const uint8_t *ref,
                          const uint8_t *body, size_t len);
/* Writes a record to the file at once (with what is buffered before it):
 * 0 once the write returned, or the error (-ENOSPC) that stopped the
 * store. For what must be on file before it is acted on (a read mark). */
int node_store_write_now(node_store *s, uint8_t type, const uint8_t *ref,
                         const uint8_t *body, size_t len);
/* Asks for an fsync of everything written so far (at the end of this loop
 * turn, while the node runs). */
void node_store_sync(node_store *s);
/* The end of a loop turn: writes the buffered records and starts the fsync
 * asked for, if none is in flight. */
void node_store_kick(node_store *s);
/* Calls cb once everything written so far is durable (at once if it is).
 * Returns 0, or an error (then cb never runs). */
int node_store_when_durable(node_store *s,
                            void (*cb)(confab_node *n, void *arg), void *arg);
bool node_store_failed(const node_store *s);
int node_store_error(const node_store *s); /* 0, or the sticky error */
/* What replay found: the file's format (1 or 2), the records lost to
 * damage (listed up to 1024; node_store_lost counts them all). */
int node_store_version(const node_store *s);
const node_store_loss *node_store_losses(const node_store *s, size_t *n);
uint64_t node_store_lost(const node_store *s);
const char *node_store_path(const node_store *s);
const char *node_store_type_name(int type);
uint64_t node_store_gen_written(const node_store *s);
uint64_t node_store_gen_synced(const node_store *s);
uint64_t node_store_size(const node_store *s);
int node_store_compact(node_store *s,
                       int (*dump)(confab_node *n, int fd, void *arg),
                       void *arg);
int node_store_dump_put(int fd, uint8_t type, const uint8_t *body, size_t len);
int node_store_dump_put_ref(node_store *s, int fd, uint8_t type,
                            const uint8_t *ref, const uint8_t *body,
                            size_t len);
/* A last blocking fsync (the node stops). */
void node_store_close(node_store *s);
void node_store_free(node_store *s);

/* fault.c: the one place tests inject faults into the node's own I/O */
/* From now on, after `after` more writes succeed, the store's writes fail
 * with err (-ENOSPC: a full disk); err 0 heals. Returns 0 or -ENOMEM. */
int node_fault_set_store_write(confab_node *n, int err, uint64_t after);
/* 0, or the error the store's next write must fail with. */
int node_fault_store_write(confab_node *n);
void node_fault_free(confab_node *n);

/* home.c */
int node_home_open(confab_node *n);
/* Compacts the store when it holds much more than is live. */
void node_home_tick(confab_node *n, uint64_t now);

/* inbox.c */
int node_inbox_init(confab_node *n);
void node_inbox_free(confab_node *n);
/* Puts a delivered message in the inbox (and the store); epoch is its
 * sender's, for a unicast. Returns 0 or a negative errno. */
int node_inbox_put(confab_node *n, const confab_message *msg, uint64_t epoch);
/* Whether a body of len bytes fits. */
bool node_inbox_has_room(const confab_node *n, size_t len);
int node_inbox_replay(confab_node *n, uint8_t type, const uint8_t *body,
                      size_t len);
/* Whether an unread message with this id from this sender is in the inbox
 * (a unicast sent again after its stream restarted). */
/* 1: the inbox holds it; 0: not, but holds other messages from that
 * sender put before serial `below`; -1: neither. */
int node_inbox_holds(const confab_node *n, const uint8_t *from,
                     const uint8_t id[WIRE_ID_BYTES], uint64_t below);
/* Removes the message with this id (a read mark found at replay). */
void node_inbox_mark_read(confab_node *n, const uint8_t id[WIRE_ID_BYTES]);
/* 0, or why unread messages cannot be handed out (the store failed:
 * -ENOSPC for a full disk). */
int node_inbox_read_error(const confab_node *n);
/* The serial the next message put in the inbox gets. */
uint64_t node_inbox_serial(const confab_node *n);
int node_inbox_dump(confab_node *n, int fd);
size_t node_inbox_bytes(const confab_node *n);
/* How many of the oldest unread messages (at most max) fit in budget bytes
 * of bodies (at least one if there is one). */
size_t node_inbox_fit(const confab_node *n, size_t max, size_t budget);

/* groups.c, the store's part */
int node_groups_replay(confab_node *n, uint8_t type, const uint8_t *body,
                       size_t len);
int node_groups_dump(confab_node *n, int fd);

/* control.c */
int node_control_start(confab_node *n);
void node_control_stop(confab_node *n);
void node_control_free(confab_node *n);
/* Sees every event before the program does. */
void node_control_event(confab_node *n, const confab_event *ev);
void node_control_tick(confab_node *n, uint64_t now);

/* data.c */
/* Makes a message body (id, timestamp, kind, group, content type). */
node_body *node_body_new(confab_node *n, uint8_t kind, const char *group,
                         const confab_send_opts *opts, const void *data,
                         size_t len);
/* Validates the send options; sets the content type's length. */
int node_check_opts(const confab_send_opts *opts, size_t *ct_len);
/* Queues body for p (taking a reference). Returns 0 or -ENOMEM. */
int node_enqueue(node_peer *p, node_body *b, uint64_t seq);
/* Appends o to p's data lane. */
void node_lane_push(node_peer *p, node_out *o);
/* A queue entry for body b (taking a reference), or NULL. */
node_out *node_out_new(node_body *b, uint64_t seq);
bool node_peer_linked(const node_peer *p);
bool node_peer_has_room(const confab_node *n, const node_peer *p, size_t len);
/* Frames the next part of the data lane of c's peer into c's transmit
 * blocks, within the window. */
void node_data_fill(node_conn *c);
/* Empties p's data lane (its link is gone): unicasts stay in the outbox,
 * anything else is dropped. */
void node_data_drop_lane(confab_node *n, node_peer *p);
/* The link of p changed: restart a message cut between fragments. */
void node_data_relink(node_peer *p);
/* Handles one decrypted transport message on an established conn.
 * Returns 0, or -EPROTO when the conn must be cut. */
int node_data_on_msg(node_conn *c, const wire_msg *m);
/* Frees c's body in reassembly, if any, and gives its bytes back to the
 * node's bound (the link closes). */
void node_data_reasm_free(node_conn *c);
void node_out_free(node_out *o);
void node_body_unref(node_body *b);

#endif
