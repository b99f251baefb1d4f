/* node/messaging/messaging.h -- layer messaging: messages between peers.
 *
 * The data lane of each peer, fragmentation and reassembly, the handler of
 * each message type, reliable unicast delivery and its outbox, broadcast
 * windows, groups and anycast. It uses peers, link, store and base.
 *
 * Who may include it: node/messaging/ and the layers above it
 * (node/LAYERS). */
#ifndef CONFAB_NODE_MESSAGING_MESSAGING_H
#define CONFAB_NODE_MESSAGING_MESSAGING_H

#include "node/peers/peers.h"
#include "node/routing/routing.h"
#include "node/store/store.h"

#define NODE_BCAST_WINDOW 64u /* broadcast ids remembered per sender */

/* ---- outgoing data ---------------------------------------------------- */

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
    /* area: performance (#18): its expiry in n->ob_expiry, while in an
     * outbox and not expired, and the peer whose outbox holds it */
    node_timer expiry;
    struct node_peer *owner;
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

/* Fills *m with the DATA of broadcast b (borrowing b's bytes). */
void node_body_broadcast_msg(const node_body *b, wire_msg *m);

/* What a queued message costs besides its body, counted against the send
 * queue's bound so that many small messages cannot outgrow it. */
#define NODE_MSG_OVERHEAD 128u

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
    unsigned failovers; /* moved to the next member, for the outcome */
    uint64_t expires;   /* wall clock, microseconds */
} node_anycast;

/* groups.c */
/* Encodes the HELLO from the name, port and groups. */
int node_hello_encode(confab_node *n);
/* The groups a peer's HELLO lists replace what we knew of it. */
int node_groups_from_hello(confab_node *n, node_peer *p, const wire_hello *h);
/* JOIN and LEAVE from a peer. */
int node_groups_on_msg(node_conn *c, const wire_msg *m);
/* An ACK with an id: the member acknowledged the anycast it holds. */
int node_groups_on_anycast_ack(node_conn *c, const wire_ack *ack);
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

/* groups.c, the store's part */
int node_groups_replay(confab_node *n, uint8_t type, const uint8_t *body,
                       size_t len);
int node_groups_dump(confab_node *n, int fd);

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
/* Something waits in p's lane: the link it leaves on pulls it soon. */
void node_lane_kick(confab_node *n, node_peer *p);
/* The next part of p's lane as one message of at most max plaintext
 * bytes (false: nothing may go now), and that part framed. */
bool node_lane_pull(confab_node *n, node_peer *p, node_frame *f, size_t max);
void node_lane_pushed(confab_node *n, node_peer *p, const node_frame *f);
/* A queue entry for body b (taking a reference), or NULL. */
node_out *node_out_new(node_body *b, uint64_t seq);
/* How long a unicast or anycast sent with opts may wait for its ACK, in
 * microseconds (opts NULL or ttl_ms 0: the default, 24 hours). */
uint64_t node_send_ttl_us(const confab_send_opts *opts);
bool node_peer_linked(const node_peer *p);
bool node_peer_has_room(const confab_node *n, const node_peer *p, size_t len);
/* The link's pull (node_link_ops): the next part of the data lane of c's
 * peer, the part framed, the end of a pull. */
bool node_data_pull(node_conn *c, node_frame *f);
void node_data_pushed(node_conn *c, const node_frame *f);
void node_data_pulled(node_conn *c);
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
/* Frees o once it is in neither its peer's data lane nor its outbox. */
void node_out_release(node_out *o);
void node_body_unref(node_body *b);

/* request.c: requests and replies (docs/PROTOCOL.md section 14) */
/* Whether a unicast's content type makes it a request or a reply. */
bool node_request_is(const char *ct);
/* A request or reply unicast from p, delivered (data.c hands it here
 * instead of to the inbox); what does not decode is counted. */
void node_request_on_data(confab_node *n, node_peer *p, const char *ct,
                          const uint8_t *body, size_t len);
/* Deadlines: requests that end, members whose turn ends. */
void node_request_tick(confab_node *n, uint64_t now);
void node_request_free(confab_node *n);
/* routed.c: the delivery stream to and from a node with no link, over
 * the routing layer's sealed envelopes (docs/PROTOCOL.md section 13.4) */
/* The routing layer's hooks (node_route_ops). */
int node_routed_deliver(confab_node *n, const uint8_t *from, uint64_t epoch,
                        const wire_msg *m, unsigned hops);
void node_routed_changed(confab_node *n, const uint8_t *id);
/* True when p has no link but a route: its streams are started for the
 * route's epoch if they were not. */
bool node_routed_ready(confab_node *n, node_peer *p);
/* The lanes of the peers c's peer relays for, after its own (pull). */
bool node_routed_pull(node_conn *c, node_frame *f);
/* The link's `more`: c's peer's lane, or one it relays, has something. */
bool node_data_more(const node_conn *c);
/* Sends m (an ACK) to p, over its link or its route. */
int node_peer_send_ctl(confab_node *n, node_peer *p, const wire_msg *m);
/* The link's read_ended: acknowledges what the read delivered, over the
 * link and over the routes it carried envelopes of. */
void node_routed_read_ended(node_conn *link);
/* A broadcast also goes, sealed, to every node reached only through
 * others (section 13.6). Returns to how many. */
size_t node_routed_broadcast(confab_node *n, const node_body *b);
/* p is forgotten or the node freed: its receiving state goes. */
void node_routed_forget(confab_node *n, node_peer *p);
void node_routed_free(confab_node *n);

/* area: scale (#13): gossip.c, broadcasts over the overlay's tree */
/* Sends b over the tree (node/peers/overlay.c) when the overlay is on and
 * b fits one GOSSIP: 0 and *sent (links it left on), or -ENOTSUP: the
 * caller sends it as below the threshold. */
int node_gossip_broadcast(confab_node *n, const node_body *b, size_t *sent);
/* confab_node.ovl_deliver: a broadcast of origin that came over the tree
 * (map: its DATA) is delivered as if it came from origin. */
int node_gossip_deliver(confab_node *n, const uint8_t *origin,
                        const uint8_t *map, size_t len, unsigned hops);
/* confab_node.ovl_send: an overlay message sealed through routes. */
int node_gossip_send(confab_node *n, const uint8_t *to, const wire_msg *m);

#endif
