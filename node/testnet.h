/* testnet.h: a whole confab network in one process, for tests and demos.
 *
 * N nodes share the caller's loop; each listens on 127.0.0.1 port 0.
 * Identities are derived from a seed, so a run can be repeated. Every event
 * of every node is recorded, and the wait helpers run the loop until a
 * condition holds or a deadline passes (never a fixed sleep). Faults can be
 * injected per link: cut it (a partition: nothing passes, nothing is
 * closed), heal it, or drop it abruptly (a reset).
 *
 * Like the node, a testnet is driven from the loop's thread only. */
#ifndef CONFAB_TESTNET_H
#define CONFAB_TESTNET_H

#include "confab.h" /* beside it, in the tree and installed */

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct confab_testnet confab_testnet;

typedef struct confab_testnet_config {
    unsigned nodes; /* how many nodes, at least 1 */
    uint64_t seed;  /* identities derive from it; 0: random */
    /* Link the nodes by static peers: node i dials nodes 0..i-1. */
    bool static_mesh;
    /* Let the nodes find each other by beacons to 127.255.255.255 on a
     * discovery port chosen at random for this network (so parallel runs
     * never meet), or on discovery_port when it is not 0. */
    bool discovery;
    uint16_t discovery_port;
    /* Template for every node: limits, timeouts, log level. The testnet
     * sets identity, name ("n0", "n1", ...), bind address, port, static
     * peers and the event callback itself. */
    confab_config node;
    /* Called after an event is recorded (may be NULL). */
    void (*event_cb)(confab_testnet *tn, unsigned node, const confab_event *ev,
                     void *user);
    void *user;
    /* Bodies are recorded up to this many bytes each (0: 4096). */
    size_t record_body_max;
    /* When set, node i keeps its home directory (identity, store) in
     * home_dir/n<i>, so that a restart finds its state; the directory must
     * exist. The caller removes it afterwards. */
    const char *home_dir;
} confab_testnet_config;

/* One recorded event, with everything copied. */
typedef struct confab_testnet_event {
    confab_event_type type;
    unsigned node; /* the node that raised it */
    int peer;      /* index of the peer in the testnet, or -1 */
    uint8_t peer_id[CONFAB_ID_BYTES];
    confab_down_reason reason;
    confab_send_status status;
    uint8_t msg_id[CONFAB_MSG_ID_BYTES];
    confab_kind kind; /* messages */
    char group[65];
    uint64_t seq;
    uint64_t sent_us; /* the sender's timestamp */
    uint64_t at_us;   /* when it was recorded (wall clock) */
    size_t len;       /* the whole body's length */
    uint8_t *body;    /* its first record_body_max bytes (owned) */
    uint64_t token, rtt_us;
    unsigned hops; /* messages: links crossed (confab_message.hops);
                      delivered outcomes: confab_event.hops */
} confab_testnet_event;

void confab_testnet_config_init(confab_testnet_config *c);

/* Creates the nodes (not started). Returns 0, -EINVAL, -EMFILE (the
 * descriptor limit cannot hold the full mesh; the log says how many are
 * needed) or -ENOMEM. */
__attribute__((warn_unused_result)) int
confab_testnet_new(uv_loop_t *loop, const confab_testnet_config *c,
                   confab_testnet **out);

/* Gives node i its own network key (32 bytes, copied) before the network
 * starts, to show that it never joins. Returns 0, -EINVAL or -ENOMEM. */
__attribute__((warn_unused_result)) int
confab_testnet_set_network_key(confab_testnet *tn, unsigned i,
                               const uint8_t key[CONFAB_KEY_BYTES]);

/* Node i joins these groups (copied) whenever it starts, as a node
 * configured with them does: before the network starts, or before a
 * restart_node(). Returns 0, -EINVAL or -ENOMEM. */
int confab_testnet_set_groups(confab_testnet *tn, unsigned i,
                              const char *const *groups, size_t n);

/* Starts every node. Returns 0 or the first node's error. */
__attribute__((warn_unused_result)) int
confab_testnet_start(confab_testnet *tn);

/* Stops every node, runs the loop until all have stopped (or 10 s pass),
 * and frees the testnet. Returns 0 or -ETIMEDOUT. */
int confab_testnet_free(confab_testnet *tn);

unsigned confab_testnet_size(const confab_testnet *tn);
confab_node *confab_testnet_node(confab_testnet *tn, unsigned i);
/* Index of the node with that id, or -1. */
int confab_testnet_index(const confab_testnet *tn,
                         const uint8_t id[CONFAB_ID_BYTES]);

/* Runs the loop until done(tn, arg) returns true or timeout_ms pass.
 * done is checked before each loop turn. Returns 0 or -ETIMEDOUT. */
int confab_testnet_run_until(confab_testnet *tn,
                             bool (*done)(confab_testnet *tn, void *arg),
                             void *arg, unsigned timeout_ms);

/* True when node i has a link up to node j. */
bool confab_testnet_linked(confab_testnet *tn, unsigned i, unsigned j);
/* True when every running node is linked to every other running node. */
bool confab_testnet_full_mesh(confab_testnet *tn);
/* Waits for the full mesh. Returns 0 or -ETIMEDOUT. */
int confab_testnet_wait_mesh(confab_testnet *tn, unsigned timeout_ms);

/* The recorded events, oldest first. The array is valid until the next
 * loop turn or call on tn. */
size_t confab_testnet_events(const confab_testnet *tn,
                             const confab_testnet_event **out);
/* Counts events of a type raised by node (or any node when node < 0) about
 * peer (or any peer when peer < 0). */
size_t confab_testnet_count(const confab_testnet *tn, confab_event_type type,
                            int node, int peer);
/* Forgets the recorded events. */
void confab_testnet_clear_events(confab_testnet *tn);

/* Fault injection. */
/* Cuts the link between i and j both ways: nothing passes, nothing is
 * closed, new connections between them fail. heal undoes it. */
void confab_testnet_cut(confab_testnet *tn, unsigned i, unsigned j);
void confab_testnet_heal(confab_testnet *tn, unsigned i, unsigned j);
/* Cuts only the beacons between i and j, both ways: they may still link
 * if they learn of each other another way (peer exchange). */
void confab_testnet_cut_beacons(confab_testnet *tn, unsigned i, unsigned j);
/* The UDP port the network's beacons use. */
uint16_t confab_testnet_discovery_port(const confab_testnet *tn);
/* Resets i's connection to j at once (TCP RST), as a crash of the link
 * would. Returns 0 or -ENOTCONN. */
int confab_testnet_drop(confab_testnet *tn, unsigned i, unsigned j);
/* Adds latency to the link between i and j: what each reads from the
 * other is processed ms later (so the round trip grows by 2 * ms). 0 takes
 * it away. Holds across reconnects. Returns 0 or -ENOMEM. */
int confab_testnet_set_latency(confab_testnet *tn, unsigned i, unsigned j,
                               unsigned ms);
/* Stops node i (asynchronously; it says BYE). restart starts it again
 * with the same identity and port. */
int confab_testnet_stop_node(confab_testnet *tn, unsigned i);
int confab_testnet_restart_node(confab_testnet *tn, unsigned i);
bool confab_testnet_running(const confab_testnet *tn, unsigned i);

/* Topologies other than the full mesh (routing, docs/PROTOCOL.md 13). */
typedef enum confab_testnet_topology {
    CONFAB_TOPO_MESH = 0,     /* every pair (heals every cut pair) */
    CONFAB_TOPO_LINE = 1,     /* i links i - 1 and i + 1 only */
    CONFAB_TOPO_RING = 2,     /* the line, and the ends to each other */
    CONFAB_TOPO_CLUSTERS = 3, /* 0..n/2 a mesh, n/2..n-1 a mesh: node n/2
                                 alone joins them */
} confab_testnet_topology;
/* True when i and j are neighbours in topology t of n nodes. */
bool confab_testnet_adjacent(confab_testnet_topology t, unsigned n, unsigned i,
                             unsigned j);
/* Cuts every pair that is not a pair of neighbours (confab_testnet_cut:
 * links and beacons, so neither discovery nor peer exchange links them),
 * heals every pair that is. Call it before start, or at any time. */
void confab_testnet_set_topology(confab_testnet *tn, confab_testnet_topology t);

/* ---- large networks (#13) -------------------------------------------- */
/* area: scale (#13) */

/* Links each node of a network of `nodes` keeps under the node config c:
 * every other node (the full mesh) in this version. When the overlay
 * (docs/PROTOCOL.md 15) bounds a node's links above its mesh threshold,
 * this is where its maximum counts. */
unsigned confab_testnet_links_per_node(const confab_config *c, unsigned nodes);

/* File descriptors a network of `nodes` in one process needs when each
 * node keeps links_per_node links: per node a listener, its discovery
 * sockets, one socket per link and a margin for links being replaced and
 * handshakes in flight, plus the process's own (loop, stdio, files). */
uint64_t confab_testnet_fds_needed(unsigned nodes, unsigned links_per_node);

/* The descriptor limit of this process (RLIMIT_NOFILE), before and after
 * confab_testnet_raise_fds(). RLIM_INFINITY reads as UINT64_MAX. */
typedef struct confab_testnet_fds {
    uint64_t need;        /* what was asked for */
    uint64_t soft_before; /* the soft limit found */
    uint64_t soft;        /* the soft limit now */
    uint64_t hard;        /* the hard limit: a process can go no higher */
} confab_testnet_fds;

/* Raises the soft descriptor limit to `need`, or as far as the hard limit
 * allows. Returns 0 when the limit now holds need, -EMFILE when it cannot
 * (out says the figures: give them to a person with what to do, ulimit
 * -n or LimitNOFILE=), or -errno from getrlimit. out may be NULL. */
int confab_testnet_raise_fds(uint64_t need, confab_testnet_fds *out);

/* Where a forming network stands. */
typedef struct confab_testnet_progress {
    unsigned nodes;       /* in the network (crashed ones too) */
    unsigned up;          /* running, and not crashed */
    uint64_t links;       /* links up, each pair counted once */
    unsigned links_min;   /* fewest links up at one running node */
    unsigned links_max;   /* most */
    unsigned knowing_all; /* running nodes that know every other one */
    uint64_t elapsed_ms;  /* since confab_testnet_start() */
} confab_testnet_progress;

/* Fills *p now. Costs a pass over every node's peer table. */
void confab_testnet_progress_now(confab_testnet *tn,
                                 confab_testnet_progress *p);

/* How many of the other running nodes node i knows: holds in its peer
 * table (linked or not, but not given up) or reaches by a route. */
unsigned confab_testnet_known(confab_testnet *tn, unsigned i);

/* Crashes node i as a machine that vanished would: every link to it and
 * its beacons go silent at once (cut both ways, nothing closed, no BYE),
 * so the others find out only by their failure detection. It stays
 * allocated until confab_testnet_free(). Returns 0 or -EINVAL. */
int confab_testnet_crash_node(confab_testnet *tn, unsigned i);
bool confab_testnet_crashed(const confab_testnet *tn, unsigned i);

/* The process's memory now: resident set (from /proc/self/statm) and heap
 * in use (mallinfo2: arena and mmapped blocks), in bytes; 0 when unknown
 * (heap: malloc is not glibc's, as under ASan or valgrind). */
typedef struct confab_testnet_memory {
    uint64_t rss, heap;
} confab_testnet_memory;
void confab_testnet_memory_now(confab_testnet_memory *m);

/* What confab_testnet_measure() does and reports. */
typedef struct confab_testnet_measure_opts {
    unsigned pairs;      /* unicasts between random pairs (0: none) */
    unsigned timeout_ms; /* for each phase: formation, broadcast, unicasts
                            (0: 60000) */
    uint64_t seed;       /* picks the pairs and the broadcaster (0: 1) */
    /* The process's memory before the network was made (memory_now()),
     * for the memory per node; all zero: not measured. */
    confab_testnet_memory before;
    /* Called about every progress_ms while the network forms (NULL: not
     * called; 0: 1000 ms), and once when it has formed. */
    void (*progress)(const confab_testnet_progress *p, void *user);
    unsigned progress_ms;
    void *user;
    bool skip_formation; /* formed already: measure from the state now */
} confab_testnet_measure_opts;

void confab_testnet_measure_opts_init(confab_testnet_measure_opts *o);

typedef struct confab_testnet_report {
    unsigned nodes, up;
    /* links up per running node, once formed */
    unsigned links_min, links_median, links_max;
    uint64_t links; /* each pair once */
    /* ms from confab_testnet_start() until every running node knew every
     * other; -1: not within the timeout */
    double formed_ms;
    unsigned knowing_all; /* running nodes that knew all at the end */
    /* one broadcast from a random running node */
    unsigned bcast_from;
    unsigned bcast_receivers; /* the other running nodes */
    unsigned bcast_reached;   /* of them, delivered it */
    double bcast_ms;          /* until the last one did; -1: not all */
    /* copies that reached a node (delivered + dropped as repeats, from
     * the nodes' msgs_received and bcast_repeats_dropped counters), over
     * the receivers: 1.0 is one copy each */
    double copies_mean;
    uint64_t copies_max; /* at the node that received most */
    uint64_t copies_total;
    /* unicasts between random pairs of running nodes */
    unsigned uni_sent;      /* confab_send() accepted */
    unsigned uni_delivered; /* the receiver delivered it */
    unsigned uni_acked;     /* the sender heard CONFAB_DELIVERED */
    double uni_ms;          /* until the last ACK; -1: not all */
    /* memory the network added, over its nodes; 0: not measured (or the
     * heap unknown: confab_testnet_memory_now) */
    double rss_per_node, heap_per_node; /* bytes */
} confab_testnet_report;

/* Measures the network (started, or about to form): waits until every
 * running node knows every other (unless skip_formation), then sends one
 * broadcast and `pairs` unicasts and waits for them (each phase up to
 * timeout_ms). Forgets the recorded events before each phase. Fills *r
 * as far as it got. Returns 0, -ETIMEDOUT (a phase did not finish: *r
 * says how far it went), -ENOMEM, or the error the broadcast returned. */
int confab_testnet_measure(confab_testnet *tn,
                           const confab_testnet_measure_opts *o,
                           confab_testnet_report *r);

#ifdef __cplusplus
}
#endif

#endif
