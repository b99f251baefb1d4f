/* node/link/link.h -- layer link: one TCP connection to one peer.
 *
 * Framing, the Noise handshake (its steps on the libuv thread pool), the
 * transport ciphers and the transmit blocks of one connection. A link
 * knows no peer table and no message but its own control messages; what it
 * hears above that it hands up through an ops table (node_link_ops).
 *
 * Who may include it: node/link/ and the layers above it (node/LAYERS). */
#ifndef CONFAB_NODE_LINK_LINK_H
#define CONFAB_NODE_LINK_LINK_H

#include "node/base/base.h"

#define NODE_PROLOGUE    "confab/1"
#define NODE_HS_MSG1_LEN 48u  /* e (32) + tag of the empty payload (16) */
#define NODE_TXBUF_SMALL 960u /* a small transmit block (malloc: ~1 KiB) */
#define NODE_TXBUF_LARGE (WIRE_MAX_FRAME + 1024u) /* one full frame fits */
#define NODE_TX_WINDOW   (256u * 1024u) /* bytes handed to libuv at once */
/* One link's transmit queue (config link_tx_bytes): the data window, a
 * frame over it, and room for control messages above them. */
#define NODE_LINK_TX_DEFAULT (1024u * 1024u)
#define NODE_LINK_TX_MIN     (512u * 1024u)
#define NODE_DRAIN_MS        5000u /* longest wait for a peer's BYE */

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
    bool dirty; /* in node->dirty, waiting for a flush */
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
    /* area: one-copy (#18): a large FRAG of the body in reassembly read
     * from the socket straight into rx_big (conn.c); NULL until the link
     * first streams one */
    struct node_rxs *rxs;
    /* area: batched frames (#18): the peer's HELLO said `batch`, so a
     * transport message to it may hold several maps (PROTOCOL.md 4); the
     * open frame, whose maps wait in the tail block to be sealed (conn.c):
     * its plaintext bytes (0: none open) and maps */
    bool batch;
    uint32_t open_len, open_maps;
    /* times, in loop milliseconds */
    uint64_t t_start, t_rx, t_tx, t_drain;
} node_conn;

/* handshake.c */
#define NODE_HS_ASYNC 1 /* node_hs_on_frame: a step went to the pool */
/* What a link hands up to the layers above it, instead of calling them:
 * one table per node (confab_node.link_ops), filled by the api layer at
 * creation (node/api/node.c). */
/* One message the link pulls from above to frame on the data lane. */
typedef struct node_frame {
    wire_msg m;
    size_t bound; /* m's plaintext is at most this */
    bool bulk;    /* ask for a large block when a new one is needed */
    size_t chunk; /* the puller's: how much of its message m carries */
} node_frame;

typedef struct node_link_ops {
    /* The link pulls what waits for c's peer while its window has room:
     * pull gives the next message (false: none now), pushed says it is
     * framed (queued on c), pulled ends one pull. The link frames; the
     * layer above never sends from inside a flush. */
    bool (*pull)(node_conn *c, node_frame *f);
    void (*pushed)(node_conn *c, const node_frame *f);
    void (*pulled)(node_conn *c);
    /* One decrypted message other than BYE on an established link: 0, or
     * -EPROTO when the link must be cut. */
    int (*message)(node_conn *c, const wire_msg *m);
    /* The end of one read on an established link. */
    void (*read_ended)(node_conn *c);
    /* c is closing: what the layers above keep for it goes (a body in
     * reassembly gives its room back). May run twice. */
    void (*closing)(node_conn *c);
    /* The peers' side (node/peers/peer.c). c->peer and c->target are the
     * table's: the link holds them and never looks inside. */
    /* A dial begins: c->peer (a known peer expected at the other end) or
     * c->target (a static peer), either may be NULL, point to c now. */
    void (*dialing)(node_conn *c);
    /* Whether the node id a handshake authenticated may link. */
    bool (*allowed)(const confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES]);
    /* c finished its handshake; hello is the peer's HELLO. 0, or a
     * negative errno when c must be closed. */
    int (*established)(node_conn *c, const wire_hello *hello);
    /* The peer of c said BYE(reason). */
    void (*bye)(node_conn *c, uint64_t reason);
    /* c is aborted; was is its state before: the table forgets the dial
     * or the link. */
    void (*ended)(node_conn *c, node_conn_state was, confab_down_reason why);
    /* c is freed: nothing above may point to it any more. */
    void (*freed)(node_conn *c);
    /* A tick of c, established, with a peer. */
    void (*tick)(node_conn *c, uint64_t now);
    /* c came back from a test's cut (node_conn_pause). */
    void (*resumed)(node_conn *c);
    /* Bytes written and read on c, frames included. */
    void (*counted)(node_conn *c, size_t sent, size_t received);
    /* Whether more waits to be framed for c's peer. */
    bool (*more)(const node_conn *c);
    /* The latency a test adds to what c reads (ms), 0 for none. */
    unsigned (*delay_ms)(const node_conn *c);
} node_link_ops;

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
/* The same for a frame relayed for others (routing): framed into the tail
 * block or a large block from the free list, never a block of its own, so
 * that a relay's burst of forwards shares blocks and writes. */
int node_conn_send_relayed(node_conn *c, const wire_msg *m);
void node_conn_mark_dirty(node_conn *c);
void node_conn_flush(node_conn *c);
void node_flush_all(confab_node *n);
/* Makes the node's flusher run at the end of this loop turn (node_flush_all
 * from a check handle). False when it cannot: the node is not running or
 * its handles are closing. */
bool node_flush_arm(confab_node *n);
void node_conn_tick(node_conn *c, uint64_t now);
void node_txbuf_free_all(confab_node *n);
/* Bytes queued on c and not yet written to the socket. */
size_t node_conn_tx_queued(const node_conn *c);

void node_conn_pause(node_conn *c, bool paused);
void node_conn_delay_free(node_conn *c);
void node_delay_cb(uv_timer_t *t);

#endif
