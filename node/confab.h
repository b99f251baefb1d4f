/* confab.h: the public C API of a confab node.
 *
 * A node keeps authenticated, encrypted TCP links to its peers and moves
 * messages over them. It runs on the caller's libuv loop and never blocks
 * it; many nodes may share one loop (there is no global mutable state).
 * Every function must be called from the loop's thread.
 *
 * Errors: functions return 0 or a negative errno in libuv's convention, so
 * uv_strerror() and uv_err_name() name every one of them:
 *   -EINVAL     a bad argument
 *   -ENOMEM     out of memory
 *   -EMSGSIZE   a message, name or group over its limit
 *   -EAGAIN     the peer's send queue is full: wait for CONFAB_EV_WRITABLE
 *   -ENOTCONN   no link to that peer now
 *   -ESRCH      no such peer
 *   -EPROTO     the call is out of state (e.g. the node is not started)
 *   -ECANCELED  the node stopped while the operation was pending
 * confab_strerror() turns any of them into a sentence for a person.
 *
 * Callbacks run on the loop's thread, never from inside the call that
 * caused them (a call that returns an error never calls its callback; one
 * that returns 0 calls it exactly once, later). Pointers an event carries
 * are borrowed until the callback returns: copy what you keep. */
#ifndef CONFAB_H
#define CONFAB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONFAB_ID_BYTES            32u  /* a node id: its X25519 public key */
#define CONFAB_MSG_ID_BYTES        16u  /* a message id */
#define CONFAB_KEY_BYTES           32u  /* a secret key or the network key */
#define CONFAB_MAX_NAME            64u  /* node name, bytes */
#define CONFAB_MAX_CT              128u /* content type, bytes */
#define CONFAB_MAX_GROUP           64u  /* group name, bytes (at least 1) */
#define CONFAB_MAX_GROUPS          256u /* groups one node may be a member of */
#define CONFAB_DEFAULT_MAX_MESSAGE (16u << 20) /* 16 MiB */

typedef struct confab_node confab_node;

/* ---- events ---------------------------------------------------------- */

typedef enum confab_kind {
    CONFAB_UNICAST = 0,
    CONFAB_BROADCAST = 1,
    CONFAB_GROUP = 2,
    CONFAB_ANYCAST = 3,
} confab_kind;

/* Why a peer went down. */
typedef enum confab_down_reason {
    CONFAB_DOWN_BYE = 1,      /* the peer said goodbye (it is stopping) */
    CONFAB_DOWN_CLOSED = 2,   /* the connection closed or failed */
    CONFAB_DOWN_TIMEOUT = 3,  /* the peer was silent too long */
    CONFAB_DOWN_PROTOCOL = 4, /* the peer broke the protocol; link cut */
    CONFAB_DOWN_STOPPING = 5, /* this node is stopping */
} confab_down_reason;

/* Outcome of a unicast or anycast send (docs/PROTOCOL.md section 12). */
typedef enum confab_send_status {
    CONFAB_DELIVERED = 3, /* the receiver acknowledged it: it is in the
                             receiver's inbox, or was handed to its program
                             (anycast: the member in the event's peer) */
    CONFAB_EXPIRED = 4,   /* its time to live ran out before any receiver
                             acknowledged it */
    CONFAB_FAILED = 2,    /* the node stopped, or the store failed, first;
                             or (reported just after a start, with no
                             peer) its record in the store was damaged */
} confab_send_status;

/* A message as received. Everything is borrowed until the callback
 * returns. */
typedef struct confab_message {
    uint8_t id[CONFAB_MSG_ID_BYTES];
    const uint8_t *from;   /* CONFAB_ID_BYTES: the sender */
    const char *from_name; /* the sender's name, NUL-terminated */
    confab_kind kind;
    const char *group;        /* NULL unless CONFAB_GROUP or CONFAB_ANYCAST */
    uint64_t seq;             /* the sender's sequence number */
    uint64_t ts_us;           /* the sender's clock, microseconds since 1970 */
    const char *content_type; /* NULL when none was given */
    const uint8_t *body;
    size_t len;
    /* Links it crossed: 1 from a linked peer, more relayed (routing,
     * docs/PROTOCOL.md section 13); read back from the inbox as well (a
     * message kept before the inbox kept it reads as 1). */
    unsigned hops;
} confab_message;

typedef enum confab_event_type {
    /* A link to a peer is up (handshake done). peer, peer_name. */
    CONFAB_EV_PEER_UP = 1,
    /* The link to a peer is down. peer, peer_name, reason. */
    CONFAB_EV_PEER_DOWN = 2,
    /* A message arrived. message (and peer, peer_name: its sender). */
    CONFAB_EV_MESSAGE = 3,
    /* Outcome of a unicast send. peer, msg_id, status. */
    CONFAB_EV_SEND = 4,
    /* A peer's send queue, which refused a send with -EAGAIN, has room
     * again. peer. */
    CONFAB_EV_WRITABLE = 5,
    /* A PONG answered confab_ping(). peer, token, rtt_us, data/len. */
    CONFAB_EV_PONG = 6,
    /* A peer joined a group (by JOIN, or in the HELLO of a new link).
     * peer, peer_name, group. */
    CONFAB_EV_JOIN = 7,
    /* A peer left a group. peer, peer_name, group. */
    CONFAB_EV_LEAVE = 8,
    /* area: routing (#12) */
    /* area: request and reply (#19) */
    /* area: the first hour (#14) */
    /* area: discovery on every interface (#16) */
    /* area: performance (#18) */
} confab_event_type;

typedef struct confab_event {
    confab_event_type type;
    const uint8_t *peer; /* CONFAB_ID_BYTES */
    const char *peer_name;
    confab_down_reason reason;
    const confab_message *message;
    const uint8_t *msg_id; /* CONFAB_MSG_ID_BYTES */
    confab_send_status status;
    uint64_t token;
    uint64_t rtt_us;
    const uint8_t *data;
    size_t len;
    const char *group;  /* JOIN, LEAVE; anycast outcomes */
    unsigned failovers; /* anycast outcomes: how many times it moved on to
                           the next member (a member that did not
                           acknowledge in time may have it too) */
    unsigned hops;      /* CONFAB_EV_SEND delivered: links its end-to-end
                           acknowledgement crossed back (1: direct; 2 or more:
                           relayed, section 13.4); 0 otherwise */
} confab_event;

typedef void (*confab_event_cb)(confab_node *node, const confab_event *ev,
                                void *user);

/* Log levels, most severe first. */
typedef enum confab_log_level {
    CONFAB_LOG_ERROR = 0,
    CONFAB_LOG_WARN = 1,
    CONFAB_LOG_INFO = 2,
    CONFAB_LOG_DEBUG = 3,
} confab_log_level;

/* msg is one line without a trailing newline. No log line holds key
 * material. */
typedef void (*confab_log_cb)(confab_node *node, confab_log_level level,
                              const char *msg, void *user);

/* ---- configuration ---------------------------------------------------- */

typedef struct confab_config {
    /* Identity: the 32-byte X25519 secret key, copied. NULL: a new random
     * identity. */
    const uint8_t *identity_sk;
    /* Network key, copied. NULL: the public network key. */
    const uint8_t *network_key;
    /* Name shown to peers, at most CONFAB_MAX_NAME bytes of UTF-8.
     * NULL: the name kept in the home directory, else "node-" and the
     * short id. */
    const char *name;
    /* The node's home directory, created (mode 0700) if missing: it holds
     * the identity (made on first use, unless identity_sk is given), the
     * network key (if one was made there, unless network_key is given),
     * the name, and the store: the inbox and the groups joined, so that a
     * restart loses none of them. NULL: nothing is kept on disk. */
    const char *home;
    /* Serve the control protocol (docs/PROTOCOL.md section 11) on this
     * Unix socket path, for the `confab` command. NULL: none. */
    const char *control_path;
    /* Keep delivered messages in an inbox until read (confab_inbox_read),
     * at most this many. 0: no inbox, unless control_path is set (then
     * 10000). */
    size_t inbox_max;

    /* Where to accept links: an IPv4 or IPv6 literal ("0.0.0.0" by default)
     * and a port (0: any free port; see confab_node_port()). */
    const char *bind_addr;
    uint16_t port;
    /* Peers to dial whether or not discovery finds them, as "HOST:PORT"
     * (IPv4 literal, "[IPv6]:PORT", or a host name resolved at start). */
    const char *const *static_peers;
    size_t n_static_peers;

    /* Discovery by UDP broadcast (docs/PROTOCOL.md section 6). Off unless
     * set: a library never broadcasts unless asked (`confab run` turns it
     * on). Beacons go to the broadcast address of every IPv4 interface
     * that is up and can broadcast, read again before each beacon, unless
     * broadcast_addrs names the targets (tests use "127.255.255.255"). */
    int discovery;
    uint16_t discovery_port;    /* 0: 47474 */
    const char *discovery_bind; /* NULL: "0.0.0.0" */
    const char *const *broadcast_addrs;
    size_t n_broadcast_addrs;
    unsigned beacon_interval_ms; /* 0: 1000, jittered by +-25% */
    /* How long the node with the larger id waits for the smaller one to
     * dial after hearing of it, before dialing itself. 0: two beacon
     * intervals. */
    unsigned dial_grace_ms;
    /* Boot counter announced in beacons; it must grow each time the node
     * starts. 0: the wall clock in milliseconds. */
    uint64_t boot;

    /* Groups to join at start (each as confab_join() checks them). */
    const char *const *groups;
    size_t n_groups;
    /* How long an anycast member has to acknowledge before the next one
     * gets the message. 0: 2000. */
    unsigned anycast_timeout_ms;
    /* The outbox: unicasts not yet acknowledged, for all peers together,
     * bytes of bodies. 0: 1 GiB. (Each peer's share is send_queue_bytes.) */
    size_t outbox_bytes;

    /* Limits. 0 means the default shown. */
    size_t max_message;      /* largest body sent or accepted: 16 MiB */
    size_t send_queue_bytes; /* per peer, bytes waiting to be sent: 32 MiB */
    unsigned max_handshakes; /* connections still in handshake: 256 */
    unsigned handshake_timeout_ms; /* 5000 */
    unsigned ping_interval_ms;     /* ping a peer idle this long: 5000 */
    unsigned peer_timeout_ms;      /* silent this long: down. 15000 */
    unsigned redial_min_ms;        /* first re-dial delay: 250 */
    unsigned redial_max_ms;        /* longest re-dial delay: 30000 */
    /* Bounds on what a member, a stranger or a client can make the node
     * hold (docs/SECURITY.md, "Bounds"). 0 means the default shown. */
    /* links */
    /* Bytes queued to send on one link and not yet taken by the kernel:
     * the data lane's window (256 KiB) and the control messages a peer
     * makes us send (PONG, ACK, PEERS, ...) together. A link whose queue
     * would pass it does not read what it asks for and is cut. 1 MiB;
     * less than 512 KiB is raised to that. */
    size_t link_tx_bytes;
    /* Bytes of message bodies being reassembled from fragments, all links
     * together (each counts at its announced size). At the bound the
     * slowest body is dropped (docs/PROTOCOL.md 8.4). 4 x max_message
     * (64 MiB); less than max_message is raised to that. */
    size_t reassembly_bytes;

    /* the peer table and who may join */
    size_t max_known_peers;     /* peers heard of (beacon, PEERS) but never
                                   linked, kept at once: 1024; at the
                                   bound the one heard of longest ago goes */
    unsigned known_peer_ttl_ms; /* such a peer unheard this long is
                                   forgotten: 30000 */
    unsigned dial_rate;         /* dials per second, node-wide, to peers
                                   never linked (addresses someone told
                                   us): 16 */
    unsigned dial_burst;        /* and at most this many at once: 128 */
    unsigned max_handshakes_per_source; /* connections in handshake from
                                    one IP address: 8 */

    /* groups */
    unsigned max_groups_per_member; /* groups one peer may be in (its
                                       HELLO and JOINs): 256, the most */
    size_t max_memberships;         /* peers' group memberships in all: 65536 */
    /* (and the control socket, whose bounds have no label of their own) */
    unsigned ctl_max_clients; /* control clients at once: 64 */
    unsigned ctl_max_waits;   /* per client, requests waiting for an
                                 outcome (send --wait, anycast, ping): 1024 */
    size_t ctl_events_max;    /* per client, bytes of unread events
                                 (peer, join, leave): 4 MiB */
    size_t ctl_out_total;     /* bytes queued to all control clients:
                                 256 MiB */
    size_t ctl_held_total;    /* bytes of unfinished requests, all
                                 clients: 64 MiB */

    /* the store */

    /* area: routing (#12) */
    unsigned max_routes; /* destinations in the route table: 255 (the most;
                            1 keeps one) */
    /* For tests that show what a node can read: a file every link message
     * this node decrypts is appended to (plaintext, mode 0600). NULL: none.
     * Never in production: it writes what peers send in the clear. */
    const char *debug_rx_dump;

    /* area: request and reply (#19) */
    /* Requests (docs/PROTOCOL.md section 14). This node waits on at most
     * request_max_pending requests of its own (confab_request() says
     * -EAGAIN past it) and holds at most as many unanswered requests
     * from others, of which request_max_per_peer from any one peer and
     * request_max_bytes of bodies in all; past those it answers BUSY
     * (counted in requests_refused_busy). 1024, 64, 64 MiB. */
    unsigned request_max_pending;
    unsigned request_max_per_peer;
    size_t request_max_bytes;

    /* area: the first hour (#14) */
    /* A peer that was linked and has been down this long is gone: no more
     * dials (its beacon or its own dial brings it back), shown as gone.
     * 0: 7 days. */
    unsigned peer_forget_ms;
    /* Hearing nodes of another network key is logged at WARN once, then
     * at most once per this, with how many came meanwhile. 0: 60000. */
    unsigned other_net_warn_ms;

    /* area: discovery on every interface (#16) */
    /* Discovery only on these interfaces (names such as "eth0"), both
     * IPv4 broadcast and IPv6 multicast; NULL/0: every interface that is
     * up. Copied at creation. */
    const char *const *interfaces;
    size_t n_interfaces;
    /* The address peers should dial, named in the beacon instead of its
     * source address: "ADDR", "ADDR:PORT", "[IPv6]" or "[IPv6]:PORT" (no
     * link-local IPv6: it has no meaning on another host). NULL: the
     * beacon's source address and the listening port. Copied at
     * creation. */
    const char *advertise;

    /* area: performance (#18) */

    /* area: scale (#13) */
    /* Up to mesh_threshold nodes (this one and the peers it has linked)
     * every node links to every other. Beyond it each keeps at most
     * max_links links, chosen by the overlay (docs/PROTOCOL.md section
     * 15), and reaches the others through routes. 0: 16; set it above
     * the network's size to keep the full mesh at any size. */
    unsigned mesh_threshold;
    /* The overlay's active view: floor(log2 N) + 1 links, at most this
     * many. 0: 8 (the most, 1..8). */
    unsigned max_links;
    /* SWIM's probe period (and, scaled with it, the probe timeout, the
     * suspicion timeouts and the shuffle period) in ms. 0: 1000. Tests
     * lower it to run a minute of failure detection in seconds. */
    unsigned overlay_period_ms;

    /* Events and logs. event_cb may be NULL (then nothing is reported). */
    confab_event_cb event_cb;
    confab_log_cb log_cb; /* NULL: no logs */
    confab_log_level log_level;
    void *user; /* passed to the callbacks */

    /* The environment, for reproducible tests. NULL: libsodium's
     * randombytes_buf and the wall clock. */
    void (*random)(void *buf, size_t len, void *user);
    uint64_t (*clock_us)(void *user); /* microseconds since 1970 */
} confab_config;

/* Fills c with the defaults: log level INFO, every other field zero or
 * NULL (which means its default; discovery off). */
void confab_config_init(confab_config *c);

/* ---- life cycle ------------------------------------------------------- */

/* Creates a node on loop from config (copied: config and everything it
 * points to may be released when this returns). Binds nothing yet.
 * If the process still has the default disposition for SIGPIPE (which
 * kills it when a peer closes a connection being written), the node sets
 * it to SIG_IGN; a program that set its own keeps it.
 * Returns 0 and *out, -EINVAL for a bad config (the log callback, if any,
 * says which field), or -ENOMEM. */
__attribute__((warn_unused_result)) int
confab_node_new(uv_loop_t *loop, const confab_config *config,
                confab_node **out);

/* Binds the listener and the discovery port, starts beaconing and dialing
 * the static peers. Returns 0, -EINVAL (a bad address in the config; the
 * log says which), or a libuv error from binding (e.g. -EADDRINUSE). After
 * a failed start the node is stopped: call confab_node_stop() and free it
 * in its callback, as after any run. */
__attribute__((warn_unused_result)) int confab_node_start(confab_node *node);

typedef void (*confab_stop_cb)(confab_node *node, void *user);

/* Stops the node: sends BYE on every link, lets queued writes finish for
 * a short grace period, closes every handle. Events stop at once; cb runs
 * once all handles are closed. Calling it again while stopping is -EPROTO.
 * A node that was never started may be stopped too. */
__attribute__((warn_unused_result)) int
confab_node_stop(confab_node *node, confab_stop_cb cb, void *user);

/* Frees a node that is stopped (its stop callback has run) or was never
 * started. */
void confab_node_free(confab_node *node);

/* ---- identity and addresses ------------------------------------------ */

/* The node id (CONFAB_ID_BYTES), valid as long as the node. */
const uint8_t *confab_node_id(const confab_node *node);
/* The node's name, NUL-terminated. */
const char *confab_node_name(const confab_node *node);
/* The TCP port the node listens on, once started (0 before). */
uint16_t confab_node_port(const confab_node *node);

/* Writes the 64-digit lowercase hex of id into out (65 bytes with NUL). */
void confab_id_hex(const uint8_t id[CONFAB_ID_BYTES], char out[65]);

/* ---- links ------------------------------------------------------------ */

/* Dials HOST:PORT (as in static_peers). The outcome is a CONFAB_EV_PEER_UP
 * if it leads to a new link. Returns 0 or -EINVAL. */
__attribute__((warn_unused_result)) int confab_node_dial(confab_node *node,
                                                         const char *host_port);

/* ---- sending ---------------------------------------------------------- */

typedef struct confab_send_opts {
    const char *content_type; /* NULL: none. At most CONFAB_MAX_CT bytes. */
    /* How long a unicast or anycast may wait for a receiver to acknowledge
     * it before it expires, milliseconds. 0: 24 hours. */
    uint64_t ttl_ms;
} confab_send_opts;

/* Sends body[0..len) to the peer `to`, reliably: the message is kept in
 * the outbox until the peer acknowledges it, re-sent whenever the link
 * comes back, delivered there once and in order, and reported by a
 * CONFAB_EV_SEND event: DELIVERED, or EXPIRED when its time to live ran
 * out first. The peer need not be linked now; it must be known. The body
 * is copied. With a home directory the message is written to the store,
 * and sent once that write is durable (confab_node_when_durable()).
 * On 0, the message id is written to msg_id (may be NULL).
 * Returns 0, -ESRCH (unknown peer), -EMSGSIZE (len over max_message or
 * over what the peer accepts), -EAGAIN (the peer's share of the outbox is
 * full: retry after CONFAB_EV_WRITABLE), -ENOBUFS (the whole outbox is
 * full), -EIO (the store cannot be written), -EINVAL. */
__attribute__((warn_unused_result)) int
confab_send(confab_node *node, const uint8_t to[CONFAB_ID_BYTES],
            const void *body, size_t len, const confab_send_opts *opts,
            uint8_t msg_id[CONFAB_MSG_ID_BYTES]);

/* Sends body to every linked peer, each once. Best effort: no outcome
 * event. Returns 0 (also when no peer is linked), -EMSGSIZE, -EINVAL.
 * *n_sent (may be NULL) is the number of peers it was queued for; a peer
 * whose queue is full is skipped and not counted. */
__attribute__((warn_unused_result)) int
confab_broadcast(confab_node *node, const void *body, size_t len,
                 const confab_send_opts *opts,
                 uint8_t msg_id[CONFAB_MSG_ID_BYTES], size_t *n_sent);

/* Sends a PING carrying data[0..len) (at most 1024 bytes) to a linked
 * peer; its PONG raises CONFAB_EV_PONG with token and the round trip.
 * Returns 0, -ESRCH, -ENOTCONN, -EMSGSIZE, -EAGAIN. */
__attribute__((warn_unused_result)) int
confab_ping(confab_node *node, const uint8_t peer[CONFAB_ID_BYTES],
            const void *data, size_t len, uint64_t *token);

/* ---- groups ------------------------------------------------------------ */

/* Group names are UTF-8, 1 to CONFAB_MAX_GROUP bytes. */

/* Joins a group: peers learn it at once (JOIN) and from the HELLO of every
 * new link. Joining a group twice is fine. Returns 0, -EINVAL (not UTF-8
 * or empty), -EMSGSIZE (over 64 bytes), -ENOSPC (already in
 * CONFAB_MAX_GROUPS groups). */
__attribute__((warn_unused_result)) int confab_join(confab_node *node,
                                                    const char *group);

/* Leaves a group. Returns 0, -ENOENT (not a member), -EINVAL. */
__attribute__((warn_unused_result)) int confab_leave(confab_node *node,
                                                     const char *group);

/* 1 if this node is a member of group, else 0. */
int confab_is_member(const confab_node *node, const char *group);

/* The groups this node is in: fills out[0..cap) with borrowed names (valid
 * until the next join or leave) and returns how many there are. */
size_t confab_my_groups(const confab_node *node, const char **out, size_t cap);

/* The linked peers that are members of group: fills ids[0..cap) and
 * returns how many there are (which may exceed cap). This node itself is
 * not counted: see confab_is_member(). */
size_t confab_group_members(const confab_node *node, const char *group,
                            uint8_t (*ids)[CONFAB_ID_BYTES], size_t cap);

/* Every group known here (this node's and its linked peers'), each once,
 * sorted by name: fills out[0..cap) with borrowed names (valid until the
 * loop runs again) and returns how many there are (0 when out of memory).
 * It costs one sort of the memberships (bounded by max_memberships). */
size_t confab_groups(const confab_node *node, const char **out, size_t cap);

/* Multicast: sends body to every linked member of group, each once; not
 * to this node. Best effort, like confab_broadcast(). Returns 0 (also with
 * no member), -EINVAL, -EMSGSIZE; *n_sent (may be NULL) is how many
 * members it was queued for. */
__attribute__((warn_unused_result)) int
confab_shout(confab_node *node, const char *group, const void *body, size_t len,
             const confab_send_opts *opts, uint8_t msg_id[CONFAB_MSG_ID_BYTES],
             size_t *n_sent);

/* Anycast: sends body to exactly one linked member of group, the one with
 * the lowest smoothed round trip (ties: the smaller id; members not yet
 * measured come last). If it does not acknowledge within
 * anycast_timeout_ms, leaves the group or goes down, the next member gets
 * it; when every member has had it, it waits for one (members that come
 * back, or new ones) until its time to live runs out. A CONFAB_EV_SEND
 * event says DELIVERED with the member that took it (ev->peer), or EXPIRED.
 * A node that stops drops the anycasts still pending (events stop with
 * it), unless it has a home directory: then they wait in its store and go
 * on at its next start, as unicasts do.
 * Returns 0; -ENOENT at once when no linked peer is a member; -EINVAL,
 * -EMSGSIZE; -EAGAIN when too many anycasts are pending. */
__attribute__((warn_unused_result)) int
confab_anycast(confab_node *node, const char *group, const void *body,
               size_t len, const confab_send_opts *opts,
               uint8_t msg_id[CONFAB_MSG_ID_BYTES]);

/* Calls cb once everything accepted so far is durable (at once when the
 * node has no home directory, or all is already synced). Returns 0, or
 * -EIO when the store failed (cb then never runs). */
__attribute__((warn_unused_result)) int
confab_node_when_durable(confab_node *node,
                         void (*cb)(confab_node *node, void *user), void *user);

/* ---- the inbox -------------------------------------------------------- */

/* Unread messages in the inbox. */
size_t confab_inbox_count(const confab_node *node);

/* Reads up to max unread messages, oldest first: cb runs for each (the
 * message is borrowed until it returns), each marked read just before.
 * Returns how many were read. With a home, a message is handed out only
 * once its read mark is written: when it cannot be (a full disk), fewer
 * are read, or none, and the rest stay unread. */
size_t confab_inbox_read(confab_node *node, size_t max,
                         void (*cb)(const confab_message *msg, void *user),
                         void *user);

/* ---- home directories (for the confab command) -------------------------- */

/* Makes a home directory (mode 0700) with a new identity, a name (may be
 * NULL) and, when private_network, a new private network key. A home that
 * has an identity keeps it: the name and the key are added to it. Returns
 * 0, -EEXIST (it has an identity and nothing to add, or a network key
 * already when private_network), or another negative errno; on failure
 * err holds a sentence for a person. */
__attribute__((warn_unused_result)) int
confab_home_init(const char *home, const char *name, int private_network,
                 char *err, size_t errlen);

/* Reads the node id (and name, "" if none was set) kept in a home
 * directory, without starting a node. Returns 0, -ENOENT (no identity),
 * or another negative errno, with a sentence in err. */
__attribute__((warn_unused_result)) int
confab_home_id(const char *home, uint8_t id[CONFAB_ID_BYTES], char *name,
               size_t name_cap, char *err, size_t errlen);

/* ---- who may join (docs/SECURITY.md, "Who may join") ------------------ */

#define CONFAB_MAX_ALLOW 16384u /* ids on an allow-list, at most */

/* An allow-list narrows who may join below the network key. While a node
 * has one, a node not on it is refused at the handshake (once its static
 * key shows who it is; counted in handshakes_not_allowed), its beacons
 * are ignored and it is never dialed. With a home directory the list is
 * the file <home>/allow (one hex node id a line, '#' comments), read at
 * start (a list that cannot be read keeps the node from starting) and
 * written atomically on each change; without one it lives in memory.
 * With no list, every holder of the network key may join. */

/* Puts id on the list, starting one if there was none (then only the ids
 * on it may join: links to any other node are closed at once). Allowing
 * an id twice is fine. Returns 0, -ENOSPC (CONFAB_MAX_ALLOW ids already),
 * -ENOMEM, or a file error (the log says which; the list is unchanged). */
__attribute__((warn_unused_result)) int
confab_allow(confab_node *node, const uint8_t id[CONFAB_ID_BYTES]);

/* Takes id off the list and closes its links at once. A list left empty
 * stays a list: no node may join until one is allowed (remove the file,
 * with the node stopped, to let every member in again). Returns 0,
 * -ENOENT (not on the list, or no list), -ENOMEM, or a file error. */
__attribute__((warn_unused_result)) int
confab_deny(confab_node *node, const uint8_t id[CONFAB_ID_BYTES]);

/* Copies up to cap listed ids into ids (sorted) and sets *count to how
 * many there are (which may exceed cap). Returns 0, or -ENOENT when the
 * node has no list (every member may join). */
int confab_allowed(const confab_node *node, uint8_t (*ids)[CONFAB_ID_BYTES],
                   size_t cap, size_t *count);

/* The same two on the list of a home directory whose node is not running
 * (a running node reads its file only at start: change its list through
 * the node). allow: 1 allow, 0 deny. Returns as confab_allow() and
 * confab_deny(), with a sentence for a person in err. */
__attribute__((warn_unused_result)) int
confab_home_allow(const char *home, const uint8_t id[CONFAB_ID_BYTES],
                  int allow, char *err, size_t errlen);
/* Reads a home's list as confab_allowed() does; -ENOENT: no list. */
__attribute__((warn_unused_result)) int
confab_home_allowed(const char *home, uint8_t (*ids)[CONFAB_ID_BYTES],
                    size_t cap, size_t *count, char *err, size_t errlen);

/* ---- peers and counters ---------------------------------------------- */

typedef enum confab_peer_state {
    CONFAB_PEER_KNOWN = 0,      /* known address, no link, not dialing */
    CONFAB_PEER_CONNECTING = 1, /* dialing or in handshake */
    CONFAB_PEER_UP = 2,         /* linked */
    CONFAB_PEER_DOWN = 3,       /* was linked, lost; re-dial pending */
    CONFAB_PEER_GONE = 4,       /* down for peer_forget_ms, or forgotten
                                   (confab_forget): no more dials */
} confab_peer_state;

typedef struct confab_peer_info {
    uint8_t id[CONFAB_ID_BYTES];
    char name[CONFAB_MAX_NAME + 1];
    confab_peer_state state;
    char address[48]; /* "IP:PORT" where it accepts links, "" if unknown */
    int outbound;     /* 1 if this node dialed the current link */
    uint64_t rtt_us;  /* smoothed round trip, 0 before the first sample */
    uint64_t msgs_sent, msgs_received;
    uint64_t bytes_sent, bytes_received; /* on the wire, frames included */
    size_t queued_bytes;                 /* waiting to be sent */
    size_t outbox_msgs;  /* unicasts to it not yet acknowledged */
    size_t outbox_bytes; /* their bodies and overhead */
} confab_peer_info;

/* Fills out[0..cap) with the peers the node knows, in no fixed order, and
 * sets *count to how many there are (which may exceed cap). */
void confab_peers(const confab_node *node, confab_peer_info *out, size_t cap,
                  size_t *count);

/* Fills *info for one peer. Returns 0 or -ESRCH. */
__attribute__((warn_unused_result)) int
confab_peer(const confab_node *node, const uint8_t id[CONFAB_ID_BYTES],
            confab_peer_info *info);

typedef struct confab_stats {
    uint64_t peers_up;
    uint64_t links_open; /* connections now, in any state */
    uint64_t links_accepted, links_dialed;
    uint64_t handshakes_failed; /* incl. wrong network key */
    uint64_t handshakes_timed_out;
    uint64_t links_refused_busy; /* over max_handshakes */
    uint64_t duplicate_links;    /* closed by the tie-break */
    uint64_t protocol_errors;    /* links cut for a protocol error */
    uint64_t msgs_sent, msgs_received;
    uint64_t bytes_sent, bytes_received;
    uint64_t sends_refused_full; /* -EAGAIN results */
    uint64_t pings_sent, pongs_received;
    /* discovery */
    uint64_t beacons_sent;
    uint64_t beacons_received;     /* accepted: well formed, tagged, new */
    uint64_t beacons_dropped;      /* all dropped beacons, of which: */
    uint64_t beacons_malformed;    /* bad shape or over 512 bytes */
    uint64_t beacons_bad_tag;      /* another network key, or forged */
    uint64_t beacons_own;          /* this node's own */
    uint64_t beacons_rate_limited; /* over the per-source rate */
    uint64_t peers_msgs_sent, peers_msgs_received; /* peer exchange */
    /* groups */
    uint64_t group_msgs_dropped; /* for a group this node is not in */
    uint64_t anycast_failovers;  /* an anycast moved to the next member */
    /* the store and the inbox */
    uint64_t store_records_replayed; /* at start */
    uint64_t store_bytes_discarded;  /* damaged or torn, at start */
    uint64_t store_records_unknown;  /* of a newer version, ignored */
    uint64_t store_compactions;
    uint64_t inbox_refused_full;
    /* delivery */
    uint64_t outbox_msgs;          /* unicasts waiting for an ACK, now */
    uint64_t retransmits;          /* unicasts sent again */
    uint64_t duplicates_dropped;   /* received twice: dropped */
    uint64_t out_of_order_dropped; /* ahead of a gap: dropped, sent again */
    uint64_t expired;              /* unicasts whose time to live ran out */
    /* bounds (docs/SECURITY.md, "Bounds"): the control socket */
    uint64_t ctl_clients_cut; /* control clients closed at a bound */
    uint64_t ctl_clients;     /* control clients connected, now */

    /* bounds: links and what a member can make one hold */
    uint64_t links_cut_tx_full;     /* cut: link_tx_bytes waited to be sent
                                       (the peer does not read) */
    uint64_t link_tx_peak;          /* most bytes one link's queue held */
    uint64_t pings_unanswered;      /* cut: our PING had no PONG within the
                                       peer timeout (sends, does not read) */
    uint64_t reasm_bytes;           /* bodies in reassembly now, bytes */
    uint64_t reasm_peak;            /* most bytes in reassembly at once */
    uint64_t reasm_dropped;         /* bodies dropped at reassembly_bytes */
    uint64_t bcast_repeats_dropped; /* broadcasts and multicasts received
                                       again (same sender and id) */

    /* bounds: the peer table and who may join */
    uint64_t peers_evicted;          /* never-linked peers dropped at
                                        max_known_peers, oldest first */
    uint64_t peers_expired;          /* never-linked peers unheard for
                                        known_peer_ttl_ms */
    uint64_t peers_refused_full;     /* not learned: every slot was pinned */
    uint64_t dials_rate_limited;     /* dials to never-linked peers put off
                                        by dial_rate */
    uint64_t links_refused_source;   /* over max_handshakes_per_source */
    uint64_t handshakes_not_allowed; /* refused by the allow-list */
    uint64_t beacons_not_allowed;    /* from nodes not on the allow-list */

    /* bounds: groups */
    uint64_t group_members_cut; /* links cut: over max_groups_per_member */
    uint64_t group_total_cut;   /* links cut: over max_memberships */
    uint64_t group_memberships; /* peers' memberships held, now */

    /* bounds: the store */
    uint64_t store_records_lost;   /* damaged records skipped, at start */
    uint64_t store_epoch_restarts; /* new epochs after damage, at start */
    uint64_t delivery_rebased;     /* a peer's stream found rolled back */
    uint64_t inbox_reads_refused;  /* a read mark could not be written */

    /* area: routing (#12) */
    uint64_t routes;                 /* destinations reachable through
                                        others, now */
    uint64_t route_adverts_sent;     /* ROUTE messages sent */
    uint64_t route_adverts_received; /* ROUTE messages taken */
    uint64_t route_adverts_dropped;  /* over 20 a second from one peer */
    uint64_t route_entries_bad;      /* claims a loop, a cost or an id */
    uint64_t route_table_full;       /* new destinations refused at
                                        max_routes */
    uint64_t route_peers_cut;        /* links cut for bad routing input */
    uint64_t routed_sent;            /* envelopes sealed and sent here */
    uint64_t routed_received;        /* envelopes opened here */
    uint64_t routed_forwarded;       /* envelopes relayed for others */
    uint64_t routed_no_route;        /* dropped: no route onwards */
    uint64_t routed_hops_exhausted;  /* dropped: hop limit spent (a loop) */
    uint64_t routed_forged;          /* dropped: did not open (forged
                                        origin, or damaged) */
    uint64_t routed_inner_bad;       /* opened, but the inner message
                                        breaks the rules */
    uint64_t routed_relay_full;      /* dropped: the next link backed up */
    uint64_t traces_answered;        /* TRACE probes this node answered */
    uint64_t traces_dropped;         /* TRACE probes and replies dropped:
                                        no route, spent, unknown token */
    uint64_t routed_not_allowed;     /* dropped: origin or destination not
                                        on the allow-list */
    uint64_t link_writes; /* writes handed to the kernel, all links (each
                             uv_try_write or uv_write): what a relay's
                             forwards cost in system calls */

    /* area: request and reply (#19) */
    uint64_t requests_sent;         /* confab_request() calls accepted */
    uint64_t requests_answered;     /* of which at least one reply came */
    uint64_t requests_timed_out;    /* of which none came in time */
    uint64_t request_failovers;     /* anycast: the next member asked */
    uint64_t requests_served;       /* requests handed to a handler */
    uint64_t requests_refused_busy; /* answered BUSY at a bound */
    uint64_t requests_no_service;   /* for a name nothing serves here */
    uint64_t requests_expired_in;   /* unanswered by the handler in time */
    uint64_t requests_pending;      /* waited on and held, now */
    uint64_t replies_unmatched;     /* for an unknown, expired or finished
                                       request, or from a peer not asked */
    uint64_t replies_duplicate;     /* a second reply of one peer */
    uint64_t replies_oversized;     /* over the request's reply limit */
    uint64_t requests_malformed;    /* envelopes that did not decode */

    /* area: the first hour (#14) */
    uint64_t handshakes_refused_key; /* the peer holds another network
                                        key (its first message did not
                                        authenticate under ours) */
    uint64_t peers_gone; /* linked peers given up: down peer_forget_ms,
                            or forgotten (confab_forget) */

    /* area: discovery on every interface (#16) */
    uint64_t beacons_bad_addr;    /* beacons naming an address no one can
                                     dial (also in beacons_dropped) */
    uint64_t peers_addr_refused;  /* PEERS entries with an address this
                                     node cannot use from that link */
    uint64_t peers_addr_withheld; /* PEERS entries not sent: the receiver
                                     could not use the address */
    uint64_t beacons6_sent;       /* IPv6 multicast beacons (also in
                                     beacons_sent), one per interface */
    uint64_t beacons6_received;   /* beacons heard over IPv6 (also in
                                     beacons_received) */

    /* area: performance (#18) */
    /* Times one of this node's timers woke the loop (the tick, beacons):
     * what an idle node costs the machine. */
    uint64_t timer_wakeups;
    /* Liveness PINGs left unsent: the link carried traffic both ways
     * (the peer acknowledged what we sent), so it is known alive. */
    uint64_t pings_spared;
    /* Peer exchange entries (one peer each) sent and received: what a
     * mesh forming costs beyond the count of PEERS messages. */
    uint64_t peers_entries_sent, peers_entries_received;
    /* Transport messages sent and taken on established links, and the
     * maps (messages) they carried: maps per frame is what batching
     * (PROTOCOL.md 4) saves in cipher calls; frames_batched are those
     * sent with several maps. frames_batch_refused: links cut for a bad
     * map after the first of a transport message. */
    uint64_t frames_sent, frames_batched, frame_maps_sent;
    uint64_t frames_received, frame_maps_received;
    uint64_t frames_batch_refused;

    /* area: one-copy (#18) */
    /* Fragments of large messages read from the socket straight into
     * their message's buffer (decrypted there, never copied). */
    uint64_t frags_in_place;

    /* area: scale (#13) */
    uint64_t overlay_on;            /* 1 once this node is past
                                       mesh_threshold (docs/PROTOCOL.md 15) */
    uint64_t overlay_links;         /* the active view's members, now */
    uint64_t overlay_passive;       /* the passive view's members, now */
    uint64_t overlay_msgs_sent;     /* t 30-32 messages sent */
    uint64_t overlay_msgs_received; /* t 30-32 messages taken */
    uint64_t overlay_refused;       /* well formed, broke a rule: ignored */
    uint64_t overlay_view_changes;  /* members in or out of the active view */
    uint64_t overlay_links_closed;  /* links closed: not in the active view */
    uint64_t overlay_gossip_dup;    /* broadcast copies received again */
    uint64_t overlay_grafts;        /* GRAFTs sent: a broadcast came late */
    uint64_t overlay_suspected;     /* members this node suspected */
    uint64_t overlay_declared_down; /* members declared down (dead) */
    uint64_t overlay_refuted;       /* suspicions of this node refuted */
    uint64_t overlay_view_repairs;  /* DISCONNECTs to a peer that held this
                                       node active while it did not */

} confab_stats;

/* area: routing (#12) */
/* One destination of the route table (docs/PROTOCOL.md section 13). */
#define CONFAB_ROUTE_INFINITY 16u
typedef struct confab_route {
    uint8_t dst[CONFAB_ID_BYTES]; /* the node reached */
    uint8_t via[CONFAB_ID_BYTES]; /* the linked peer it is reached through */
    unsigned metric;              /* hops; CONFAB_ROUTE_INFINITY: none now */
    uint64_t seq;                 /* the destination's sequence number */
} confab_route;
/* Copies up to cap routes into out (reachable ones first is not
 * promised); returns how many the table holds. out may be NULL with cap
 * 0. A linked peer reached directly has no row unless it also relays. */
size_t confab_routes(const confab_node *node, confab_route *out, size_t cap);
/* The path to a node, hop by hop, like traceroute: confab_trace sends
 * one probe per hop of the route (TRACE, docs/PROTOCOL.md 13.5) and
 * returns its token; each hop answers with its id, name and address, and
 * the round trip to it is measured here. confab_trace_result copies the
 * hops probed so far (up to cap) and says whether the trace is done (every
 * hop answered up to the destination, or 3 s passed: the rest are lost).
 * confab_trace returns 0, -ESRCH (no link and no route to it) or -ENOMEM;
 * confab_trace_result 0 or -ENOENT (no such trace: 8 are kept). */
#define CONFAB_TRACE_HOPS 16u
typedef struct confab_trace_hop {
    unsigned hop; /* 1: the first link */
    int answered; /* 0: no answer (yet) */
    uint8_t id[CONFAB_ID_BYTES];
    char name[CONFAB_MAX_NAME + 1];
    char address[65]; /* "IP:PORT" where it heard the probe and accepts
                         links */
    uint64_t rtt_us;
} confab_trace_hop;
__attribute__((warn_unused_result)) int
confab_trace(confab_node *node, const uint8_t to[CONFAB_ID_BYTES],
             uint64_t *token);
__attribute__((warn_unused_result)) int
confab_trace_result(const confab_node *node, uint64_t token,
                    confab_trace_hop *out, size_t cap, size_t *count,
                    int *done);

/* area: request and reply (#19) */

/* ---- requests and replies (docs/PROTOCOL.md section 14) ---------------- */

/* A request asks a service (a name of 1 to CONFAB_MAX_GROUP bytes; its
 * servers are the members of the group of that name) and waits for
 * replies until its deadline. It travels as a unicast to each server
 * asked, and each reply as a unicast back, so both have a unicast's
 * guarantees (and raise CONFAB_EV_SEND events of their own, which a
 * program may ignore). */
typedef enum confab_request_mode {
    CONFAB_REQ_ANY = 0,  /* the nearest member of the group; if no reply
                            comes within try_ms (or it answers BUSY or
                            NO_SERVICE), the next one; one reply */
    CONFAB_REQ_PEER = 1, /* that peer only, whether a member or not */
    CONFAB_REQ_ALL = 2,  /* every linked member: each reply, until all
                            answered or the deadline */
} confab_request_mode;

typedef struct confab_request_opts {
    confab_request_mode mode;
    const uint8_t *peer; /* CONFAB_REQ_PEER: CONFAB_ID_BYTES */
    unsigned timeout_ms; /* the whole request: 0 means 5000; at most a
                            day */
    unsigned try_ms;     /* ANY: each member's turn; 0 means
                            anycast_timeout_ms (at most timeout_ms) */
    size_t max_reply;    /* largest reply body taken: 0 means
                            max_message less 256 bytes */
} confab_request_opts;

/* How a server answered (the `c` of a reply). */
typedef enum confab_reply_status {
    CONFAB_REPLY_OK = 0,         /* the body is the answer */
    CONFAB_REPLY_ERROR = 1,      /* the service failed: the body says how */
    CONFAB_REPLY_BUSY = 2,       /* the server held too many requests */
    CONFAB_REPLY_NO_SERVICE = 3, /* nothing serves that name there */
    CONFAB_REPLY_TOO_LARGE = 4,  /* the answer was over max_reply */
} confab_reply_status;

/* One reply, or (done) the end of a request. Borrowed until the callback
 * returns. */
typedef struct confab_reply {
    uint64_t request;    /* the handle confab_request() gave */
    int done;            /* 0: a reply; 1: the request is over */
    const uint8_t *from; /* reply: the server (CONFAB_ID_BYTES) */
    const char *from_name;
    confab_reply_status status;
    const uint8_t *body;
    size_t len;
    size_t answered; /* done: how many replies came */
    int result;      /* done: 0 (some came), -ETIMEDOUT (none in time) */
} confab_reply_info;

typedef void (*confab_reply_cb)(confab_node *node, const confab_reply_info *r,
                                void *user);

/* Sends a request for service carrying body[0..len) (copied). cb runs for
 * each reply (ANY and PEER: one at most) and then once with done set;
 * never from inside this call, never after confab_request_cancel() or
 * once the node stops. *request (may be NULL) is its handle.
 * Returns 0; -ENOENT (ANY, ALL: no linked member of the group now);
 * -ESRCH (PEER: unknown peer); -EAGAIN (request_max_pending requests
 * wait already, or the peer's outbox is full); -EMSGSIZE; -EINVAL;
 * -EPROTO (the node is not running); or another error of confab_send()
 * (PEER: -ENOBUFS, -EIO). */
__attribute__((warn_unused_result)) int
confab_request(confab_node *node, const char *service, const void *body,
               size_t len, const confab_request_opts *opts, confab_reply_cb cb,
               void *user, uint64_t *request);

/* Forgets a pending request: its callback never runs again; replies that
 * still come are counted as unmatched. Returns 0 or -ENOENT. */
int confab_request_cancel(confab_node *node, uint64_t request);

/* A request as a server sees it. Borrowed until the callback returns. */
typedef struct confab_request_in {
    uint64_t handle; /* for confab_reply() */
    const uint8_t *from;
    const char *from_name;
    const char *service;
    const uint8_t *body;
    size_t len;
    uint64_t wait_ms; /* how long the requester waits, at most */
    size_t max_reply; /* the largest reply body it takes */
} confab_request_in;

typedef void (*confab_serve_cb)(confab_node *node, const confab_request_in *r,
                                void *user);

/* Serves service: joins the group of that name (as confab_join()) and
 * hands each request for it to cb, which answers now or later with
 * confab_reply() (until wait_ms has passed: then the handle is gone).
 * Returns 0, -EEXIST (served already), -ENOSPC (CONFAB_MAX_GROUPS
 * services at once), or confab_join()'s errors. */
__attribute__((warn_unused_result)) int confab_serve(confab_node *node,
                                                     const char *service,
                                                     confab_serve_cb cb,
                                                     void *user);

/* Stops serving: leaves the group, answers its unanswered requests
 * NO_SERVICE (so that an ANY request moves on at once). Returns 0 or
 * -ENOENT. */
int confab_unserve(confab_node *node, const char *service);

/* Answers request handle with body[0..len) (copied) as OK;
 * confab_reply_error() as ERROR (body: a sentence for a person). Returns
 * 0 (the handle is used up); -ENOENT (unknown, already answered, or past
 * its wait); -EMSGSIZE (over the requester's max_reply: the handle stays,
 * answer again, e.g. with an error); -EAGAIN (the requester's outbox is
 * full: the handle stays). */
__attribute__((warn_unused_result)) int
confab_reply(confab_node *node, uint64_t handle, const void *body, size_t len);
__attribute__((warn_unused_result)) int confab_reply_error(confab_node *node,
                                                           uint64_t handle,
                                                           const void *body,
                                                           size_t len);

/* area: the first hour (#14) */
/* What a node is and how it is set up, for `confab status`: everything a
 * person checks when a node sees no peers. The strings are borrowed from
 * the node until it is freed. */
typedef struct confab_node_about {
    const char *version;     /* the library's version */
    uint64_t uptime_ms;      /* since confab_node_start() */
    int private_network;     /* 0: the well-known public network key */
    char netkey_fp[17];      /* 16 hex digits naming the network key
                                (a keyed hash: it reveals no key bits) */
    const char *bind_addr;   /* where links are accepted */
    uint16_t port;           /* the TCP port links are accepted on */
    int discovery;           /* beacons on */
    uint16_t discovery_port; /* their UDP port */
    size_t n_targets;        /* where beacons go now: */
    char targets[8][48];     /* the first 8 of them, "ADDR:PORT" */
    int allow_list;          /* an allow-list is in force */
    size_t n_allowed;        /* ids on it */
    /* timers and limits in force (defaults resolved) */
    unsigned ping_interval_ms, peer_timeout_ms, anycast_timeout_ms;
    size_t max_message;
} confab_node_about;

void confab_node_about_get(const confab_node *node, confab_node_about *out);

/* Unicasts waiting for an acknowledgement (the outbox), for a person to
 * see (`confab queue`). */
typedef struct confab_queued {
    uint8_t id[CONFAB_MSG_ID_BYTES];
    uint8_t to[CONFAB_ID_BYTES];
    size_t len;          /* body bytes */
    uint64_t expires_us; /* wall clock */
    int sent;            /* written to a link at least once */
} confab_queued;

/* Copies up to cap of them into out, oldest first for each peer; returns
 * how many there are (which may exceed cap). */
size_t confab_queued_list(const confab_node *node, confab_queued *out,
                          size_t cap);

/* Cancels a queued unicast: it ends as if its time to live ran out (the
 * outcome is CONFAB_EXPIRED, recorded in the store, so a restart does not
 * bring it back). One already written to a linked peer may still arrive.
 * Returns 0, or -ENOENT (not queued: unknown, delivered or over). */
__attribute__((warn_unused_result)) int
confab_queued_cancel(confab_node *node, const uint8_t id[CONFAB_MSG_ID_BYTES]);

/* Gives up on a peer that is not linked now: no more dials, shown as
 * CONFAB_PEER_GONE (its beacon, its own dial or a static --peer brings it
 * back). Messages queued for it stay until they expire. Returns 0,
 * -ENOENT (unknown), or -EBUSY (linked now: confab_deny() cuts a link). */
__attribute__((warn_unused_result)) int
confab_forget(confab_node *node, const uint8_t id[CONFAB_ID_BYTES]);

/* area: discovery on every interface (#16) */

/* area: performance (#18) */

void confab_node_stats(const confab_node *node, confab_stats *out);

/* A sentence for a person describing a confab or libuv error code. */
const char *confab_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
