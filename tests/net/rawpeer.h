/* rawpeer.h: a hand-made confab peer for the network tests.
 *
 * Built from wire/ and crypto/ alone, as a stranger would build one from
 * docs/PROTOCOL.md, it speaks to a node over a blocking TCP socket on
 * 127.0.0.1 and can also break every rule on purpose: garbage bytes,
 * oversized frames, bad ciphertext, or simply never reading.
 *
 * The node under test runs on the loop in the main thread, so a raw peer
 * does its blocking work in a job on its own thread while the test runs
 * the loop until the job is done (rawpeer_job_done as the condition). */
#ifndef CONFAB_TESTS_RAWPEER_H
#define CONFAB_TESTS_RAWPEER_H

#include "crypto/cipher.h"
#include "crypto/identity.h"
#include "wire/frame.h"
#include "wire/msg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct rawpeer {
    int fd;
    sec_identity *id;
    uint8_t netkey[32];
    sec_cipher tx, rx;
    uint8_t peer_id[WIRE_NODE_ID_BYTES];
    wire_frame_decoder dec;
    uint8_t in[65536];
    size_t in_len, in_off;
    uint8_t frame[WIRE_MAX_FRAME];
    uint8_t plain[WIRE_MAX_FRAME];
    wire_hello hello; /* the node's HELLO (pointers into hello_buf) */
    uint8_t hello_buf[WIRE_MAX_FRAME];
} rawpeer;

/* netkey NULL: the public network key. Returns 0 or a negative errno. */
int rawpeer_init(rawpeer *r, const uint8_t *netkey);
void rawpeer_free(rawpeer *r);

int rawpeer_connect(rawpeer *r, uint16_t port);
/* The whole XXpsk0 handshake as initiator, announcing name and port 0. */
int rawpeer_handshake(rawpeer *r, const char *name);
int rawpeer_send_raw(rawpeer *r, const void *buf, size_t len);
/* One frame (bin 8 or bin 16 header) holding payload. */
int rawpeer_send_frame(rawpeer *r, const void *payload, size_t len);
/* Encrypts plaintext and sends it as one frame. */
int rawpeer_send_plain(rawpeer *r, const void *plain, size_t len);
int rawpeer_send_msg(rawpeer *r, const wire_msg *m);
/* Next frame within timeout_ms: 0 with the frame in *f and *len (borrowed),
 * -ETIMEDOUT, or -EPIPE when the node closed the connection. */
int rawpeer_recv_frame(rawpeer *r, const uint8_t **f, size_t *len,
                       int timeout_ms);
/* Next transport message, decrypted and decoded (borrowed). */
int rawpeer_recv_msg(rawpeer *r, wire_msg *m, int timeout_ms);
/* 0 once the node has closed the connection (EOF or reset), else
 * -ETIMEDOUT. Discards anything that arrives meanwhile. */
int rawpeer_wait_closed(rawpeer *r, int timeout_ms);

/* A job on its own thread. */
typedef struct rawpeer_job {
    pthread_t thread;
    int (*fn)(struct rawpeer_job *job);
    void *arg;
    atomic_int done;
    int result;
} rawpeer_job;

void rawpeer_job_start(rawpeer_job *job, int (*fn)(rawpeer_job *), void *arg);
bool rawpeer_job_finished(const rawpeer_job *job);
/* The same, shaped as a confab_testnet_run_until() condition. */
struct confab_testnet;
bool rawpeer_job_finished_cb(struct confab_testnet *tn, void *job);
/* Joins the thread and returns fn's result. */
int rawpeer_job_join(rawpeer_job *job);

/* the peer table and who may join: */
/* As rawpeer_connect, from the loopback address src (such as
 * "127.0.0.2": all of 127/8 is local on Linux), so that the node sees
 * another source than 127.0.0.1. */
int rawpeer_connect_from(rawpeer *r, const char *src, uint16_t port);
/* Sends a PEERS of n entries (at most 1024): fresh random ids, each at
 * 127.0.0.1:port. */
int rawpeer_send_fake_peers(rawpeer *r, unsigned n, uint16_t port);
/* Sends a PING with token n and len bytes of echo data (NULL: zeros). */
int rawpeer_send_ping(rawpeer *r, uint64_t n, const void *data, size_t len);
/* Sends a message of kind k (WIRE_K_*) with this id, seq and group (NULL
 * for none): one DATA if len fits in part bytes, else a DATA holding the
 * first part bytes and `size` len, then FRAGs of part bytes. */
int rawpeer_send_body(rawpeer *r, uint8_t k, const uint8_t id[WIRE_ID_BYTES],
                      uint64_t seq, const char *group, const uint8_t *body,
                      size_t len, size_t part);
/* 0 once the node has closed the connection, -ETIMEDOUT if it has not
 * within timeout_ms. Reads nothing: what the node sent stays unread. */
int rawpeer_wait_hangup(rawpeer *r, int timeout_ms);
/* added for tests/fuzz/fuzz_link.c */
/* rawpeer_handshake with the HELLO payload of message 3 given as bytes
 * (hello[0..len), sent as is, so it may break the rules). */
int rawpeer_handshake_hello(rawpeer *r, const uint8_t *hello, size_t len);
/* The next frame if one has fully arrived, without waiting: 0 with the
 * frame in *f and *len (borrowed), -EAGAIN when none has yet, -EPIPE when
 * the node closed the connection. */
int rawpeer_poll_frame(rawpeer *r, const uint8_t **f, size_t *len);

/* rawpeer_handshake(), its HELLO listing groups[0..n) (at most 256 are
 * valid; more make a HELLO the node must refuse). */
int rawpeer_handshake_groups(rawpeer *r, const char *name,
                             const char *const *groups, size_t n);
/* Sends JOIN (join) or LEAVE for group. */
int rawpeer_send_group(rawpeer *r, bool join, const char *group);

/* added for tests/net/test_request.c */
/* Sends one unicast DATA of seq (its id made from seq) with content type
 * ct and body[0..len) (at most one frame's worth). */
int rawpeer_send_unicast_ct(rawpeer *r, uint64_t seq, const char *ct,
                            const uint8_t *body, size_t len);

/* added for tests/net/test_relay.c */
/* Encodes and encrypts m[0..n) and sends their frames in one write, so
 * that the node reads them together. */
int rawpeer_send_msgs_at_once(rawpeer *r, const wire_msg *m, size_t n);
/* added for tests/net/test_pex_batch.c */
/* rawpeer_handshake(), its HELLO naming port as the one it accepts links
 * on (so that the node has an address for it to hand on in PEERS). */
int rawpeer_handshake_port(rawpeer *r, const char *name, uint16_t port);
/* Sends one PEERS naming id at 127.0.0.1 port. */
int rawpeer_send_peer_entry(rawpeer *r, const uint8_t *id, uint16_t port);

/* added for tests/net/test_batch.c */
/* rawpeer_handshake(), its HELLO announcing `batch` (PROTOCOL.md 3.2): the
 * node may then send it several maps per transport message. */
int rawpeer_handshake_batch(rawpeer *r, const char *name);
/* Encodes m[0..n) back to back, then appends tail[0..tail_len) as it is
 * (garbage on purpose, or nothing), and sends it all as one transport
 * message: a batch (PROTOCOL.md section 4). */
int rawpeer_send_batch(rawpeer *r, const wire_msg *m, size_t n,
                       const void *tail, size_t tail_len);
/* The next transport message, decrypted, not decoded: 0 with its
 * plaintext in *p and *len (borrowed), -ETIMEDOUT or -EPIPE. */
int rawpeer_recv_plain(rawpeer *r, const uint8_t **p, size_t *len,
                       int timeout_ms);

#endif
