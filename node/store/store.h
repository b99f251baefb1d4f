/* node/store/store.h -- beside messaging: the store and the inbox.
 *
 * The store is an append-only log of records with checksums, replayed at
 * start and compacted when mostly dead (docs/ARCHITECTURE.md, "The
 * store"); the inbox holds delivered messages until the program reads
 * them. The record types of every owner are listed here, one table.
 *
 * Who may include it: node/store/ and the layers above it (node/LAYERS). */
#ifndef CONFAB_NODE_STORE_STORE_H
#define CONFAB_NODE_STORE_STORE_H

#include "node/base/base.h"

/* The record types of the store, one list; each has one owner, which
 * writes and replays it: node_record_types[] (node/api/records.c). */
enum {
    NODE_REC_INBOX_PUT = 1,   /* a delivered message, unread */
    NODE_REC_INBOX_READ = 2,  /* it was read */
    NODE_REC_GROUP_JOIN = 3,  /* this node joined a group */
    NODE_REC_GROUP_LEAVE = 4, /* and left it */
    NODE_REC_EPOCH = 10,      /* this node's epoch */
    NODE_REC_OUT_PUT = 11,    /* a unicast accepted */
    NODE_REC_OUT_ACK = 12,    /* a peer acknowledged up to a seq */
    NODE_REC_OUT_EXPIRE = 13, /* a unicast expired */
    NODE_REC_TX = 14,         /* our numbering for a peer restarts */
    NODE_REC_RX = 15,         /* the next seq expected from a peer */
    NODE_REC_ANY_PUT = 16,    /* an anycast accepted */
    NODE_REC_ANY_DONE = 17,   /* and finished */
    NODE_REC_ANY_SEEN = 18,   /* an anycast id delivered here */
    NODE_REC_MAX = 18,
};

/* One record type: its name (the log, `confab status`) and its owner's
 * replay (ref: the message id it is about, zeros if none, NULL for a
 * format 1 record). A type with no entry is one a newer version wrote. */
typedef struct node_record_type {
    const char *name;
    const char *owner; /* the file that writes and replays it */
    int (*replay)(confab_node *n, uint8_t type, const uint8_t *ref,
                  const uint8_t *body, size_t len);
} node_record_type;
/* Defined above the store (node/api/records.c), where every owner is
 * known; the store reads only the names. */
extern const node_record_type node_record_types[NODE_REC_MAX + 1];

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

#endif
