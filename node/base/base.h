/* node/base/base.h -- layer base: the ground every layer of node/ stands on.
 *
 * The intrusive list, the node's log, its clocks, its random pool, the
 * events raised to subscribers, and struct confab_node itself: the state
 * each layer keeps, one labelled block per layer (a layer reads and writes
 * only its own block and those of the layers below it).
 *
 * Who may include it: every file of node/. It includes nothing of node/
 * but the public node/confab.h (node/LAYERS, tests/lint/check_layers.py).
 *
 * Ownership: the node owns its peers and connections. A connection is
 * freed only in the close callback of its TCP handle; a peer lives until
 * the node is freed (it keeps the address to re-dial and its counters). */
#ifndef CONFAB_NODE_BASE_BASE_H
#define CONFAB_NODE_BASE_BASE_H

#include "node/confab.h"

#include "crypto/cipher.h"
#include "crypto/identity.h"
#include "crypto/netkey.h"
#include "crypto/noise.h"
#include "crypto/sec.h"
#include "wire/beacon.h"
#include "wire/frame.h"
#include "wire/msg.h"

#include "node/base/timerq.h"

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

#define NODE_STOP_GRACE_MS 1000u /* longest wait for writes at stop */

typedef struct node_peer node_peer;
typedef struct node_static node_static;
typedef struct node_hs node_hs;
typedef struct node_store node_store;
typedef struct node_inbox node_inbox;
typedef struct node_control node_control;
/* The node's parts, declared by the layer that owns each (pointers to them
 * may be held by any layer). */
typedef struct node_conn node_conn;
typedef struct node_txbuf node_txbuf;
typedef struct node_out node_out;
typedef struct node_body node_body;
typedef struct node_anycast node_anycast;
typedef struct node_allow node_allow;
typedef struct node_block node_block;
typedef struct node_routing node_routing;

/* ---- discovery's state kept in the node (node/peers/discovery.c) ---- */

#define NODE_RATE_SLOTS      64u /* sources tracked by the beacon limiter */
#define NODE_RATE_BEACONS    8u  /* beacons a source may send per second */
#define NODE_EXTRA_BEACON_MS 50u /* at most one extra beacon this often */
#define NODE_MC_IFS_MAX      64u /* interfaces IPv6 beacons go out on */

/* A per-source beacon counter: a fixed table hashed by address, so a
 * flood of forged sources cannot make it grow. */
typedef struct node_rate {
    uint32_t ip;
    uint16_t port;
    uint32_t id; /* the first bytes of the node id it claims */
    uint32_t count;
    uint64_t window; /* loop ms at which this second began */
} node_rate;

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
    /* what its links hand up (node/link/link.h; set at creation) */
    const struct node_link_ops *link_ops;
    /* what its peer table hands up (node/peers/peers.h) */
    const struct node_peer_ops *peer_ops;
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
    /* area: performance (#18): the tick sleeps while the node is idle
     * (node/api/wake.c); the prepare handle looks again before the loop
     * blocks */
    uv_prepare_t wake;
    bool tick_asleep;
    uint64_t tick_due; /* loop ms the sleeping tick is armed for */
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
    /* area: performance (#18): every outbox entry's expiry on a timing
     * wheel, so the tick looks at what is due and not at every entry; if
     * arming one ever failed (no memory), the tick walks them all */
    node_timerq ob_expiry;
    bool ob_expiry_walk;
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
    /* area: one-copy (#18): message ids are a keyed PRF of a counter
     * (data.c): the key is drawn once, at the first id; msgid_next 0 means
     * not yet. Wiped by node_delivery_free. */
    uint8_t msgid_key[SEC_SHORTHASH_KEY_BYTES];
    uint64_t msgid_next;
    /* area: one-copy (#18): the wall clock of this loop turn's sends,
     * read at the first (data.c) */
    uint64_t send_clock_us, send_clock_turn;
    bool send_clock_valid;
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
    /* IPv6 discovery and the interfaces and address the user chose
     * (peers/iface.c) */
    bool udp6_open;
    uv_udp_t udp6;
    unsigned mc_ifs[NODE_MC_IFS_MAX]; /* indexes joined to the group */
    size_t n_mc_ifs;
    char **ifnames; /* --interface: only these (NULL: all) */
    size_t n_ifnames;
    struct sockaddr_storage advertise; /* --advertise, if has_advertise */
    bool has_advertise;
    /* peer exchange (pex.c): peers that came up since the last PEERS */
    node_peer **pex_new;
    size_t pex_new_len, pex_new_cap;
    uint64_t pex_gen;      /* area: performance (#18): orders ups and lists */
    uint64_t pex_batch_ms; /* loop time of the last batch of newcomers */
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
    struct node_reqs *reqs; /* requests and replies (request.c) */
    /* one more subscriber to every event: the web page (node/web.c) */
    node_observer observer;
    /* test hooks: peers whose links or beacons are cut (testnet.c) */
    node_block *blocked;
    size_t n_blocked;
    /* test hooks: faults injected into the node's own I/O (fault.c) */
    struct node_fault *fault;
    /* the first hour (#14): what the node tells a person (explain.c) */
    uint64_t started_ms;       /* loop time of confab_node_start() */
    uint64_t other_net_warned; /* loop time of the last warning, 0: none */
    uint64_t other_net_quiet;  /* heard since, not logged */
    /* routing (node/routing/): the route table, and what it hands up */
    node_routing *routing;
    const struct node_route_ops *route_ops;
    unsigned rx_hops;        /* links the message being delivered crossed */
    node_peer *route_pulled; /* the routed lane the last pull served */
    node_list vconns;        /* receiving state per routed origin */
    int rx_dump_fd; /* > 0: cfg.debug_rx_dump, open (node/link/conn.c) */
    /* area: scale (#13): the overlay past mesh_threshold
     * (node/peers/overlay.c), and what hands a broadcast that came over its
     * tree up to messaging (set by the api layer): origin, the DATA map,
     * links crossed. 0, or -EPROTO when the map breaks the rules. */
    struct node_overlay *overlay;
    int (*ovl_deliver)(confab_node *n, const uint8_t *origin,
                       const uint8_t *map, size_t len, unsigned hops);
    /* ... and what sends an overlay message to a node with no link, sealed
     * through routes: 0, or -EHOSTUNREACH (no route) or an error. */
    int (*ovl_send)(confab_node *n, const uint8_t *to, const wire_msg *m);
};

/* A part of the node above the api layer that the node starts, ticks,
 * stops and frees, and that sees every event before the observer and the
 * program do: the control socket. The api layer reaches it only through
 * node_services[] (node/app/services.c), a table resolved when the
 * library is linked, so that it names no function of a layer above it.
 * Any member may be NULL. */
typedef struct node_service {
    const char *name;
    int (*start)(confab_node *n); /* 0: started, or not configured */
    void (*stop)(confab_node *n);
    void (*free)(confab_node *n);
    void (*tick)(confab_node *n, uint64_t now);
    void (*event)(confab_node *n, const confab_event *ev);
    /* the first hour (#14): every line the node logs (at its level) */
    void (*log)(confab_node *n, confab_log_level lvl, const char *line);
} node_service;
/* NULL-terminated, in the order they see events. */
extern const node_service *const node_services[];

/* ---- the functions of base (node/base/base.c, fault.c) ---- */

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

/* explain.c: the node tells a person what it cannot fix itself */
/* Something of another network was heard: a beacon with a bad tag (what
 * "beacon"), or a handshake whose first message did not authenticate
 * ("handshake"), from addr. Logs a warning the first time, then at most
 * once per cfg.other_net_warn_ms (60 s) with how many came meanwhile. */
void node_explain_other_network(confab_node *n, const char *what,
                                const struct sockaddr_storage *addr);
/* The network key's fingerprint: 16 hex digits and a NUL. */
void node_netkey_fingerprint(const confab_node *n, char out[17]);

/* fault.c: the one place tests inject faults into the node's own I/O */
/* From now on, after `after` more writes succeed, the store's writes fail
 * with err (-ENOSPC: a full disk); err 0 heals. Returns 0 or -ENOMEM. */
int node_fault_set_store_write(confab_node *n, int err, uint64_t after);
/* 0, or the error the store's next write must fail with. */
int node_fault_store_write(confab_node *n);
/* The next count accepted connections find no memory for their state
 * (node_conn_accept's failure path). Returns 0 or -ENOMEM. */
int node_fault_set_accept_alloc(confab_node *n, uint64_t count);
/* True when this accepted connection must find no memory. */
bool node_fault_accept_alloc(confab_node *n);
/* From now on (off true) the node sends no extra beacon on hearing a new
 * peer (PROTOCOL.md 9.1): bench_meet measures what that re-announce buys.
 * Returns 0 or -ENOMEM. */
int node_fault_set_no_reannounce(confab_node *n, bool off);
bool node_fault_no_reannounce(const confab_node *n);
/* area: scale (#13): from now on the node loses permille in 1000 of the
 * SWIM messages (t 32) it sends and of those it receives, as a lossy
 * network would (TCP never loses what it took; this plays a network that
 * delays and drops probes). Returns 0 or -ENOMEM. */
int node_fault_set_ovl_loss(confab_node *n, unsigned permille);
/* True when this SWIM message is to be lost. */
bool node_fault_ovl_lost(confab_node *n);
void node_fault_free(confab_node *n);

#endif
