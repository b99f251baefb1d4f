/* Layer link (node/LAYERS).
 * conn.c: one TCP connection: dial or accept, the Noise XXpsk0 handshake,
 * reading frames, transmit blocks and their writes, goodbye and close.
 *
 * Life cycle (docs/ARCHITECTURE.md draws it):
 *   CONNECTING -> HANDSHAKE -> UP -> DRAINING -> CLOSING -> freed
 * Any error jumps to CLOSING. A connection is freed only in the close
 * callback of its TCP handle, after libuv has cancelled its writes. */
#include "node/link/link.h"

#include "node/base/addr.h"

#include "crypto/sec.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void delay_chunk(node_conn *c, const uint8_t *data, size_t len);
static void rxs_clear(node_conn *c);

/* ---- transmit blocks -------------------------------------------------- */

/* Two sizes of block: small ones for control frames and messages of an
 * idle link, so that thousands of links each with a PING in flight (a
 * network forming) do not hold thousands of 64 KiB blocks; large ones for
 * bulk data, so that a busy link writes many frames per writev. Each size
 * has a short free list. A frame too big for a small block but not bulk
 * (a PEERS list) gets a block of its own size. */
#define TXFREE_MAX 8u

static size_t class_cap(int large)
{
    return large ? NODE_TXBUF_LARGE : NODE_TXBUF_SMALL;
}

/* large: 0 small, 1 large; or 2 for an odd block of exactly `need`. */
static node_txbuf *txbuf_get(confab_node *n, int large, size_t need)
{
    node_txbuf *b = large < 2 ? n->txfree[large] : NULL;
    if (b != NULL) {
        n->txfree[large] = b->next;
        n->txfree_len[large]--;
    } else {
        size_t cap = large < 2 ? class_cap(large) : need;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->cap = (uint32_t)cap;
    }
    b->next = NULL;
    b->len = 0;
    b->off = 0;
    b->nbufs = 0;
    return b;
}

static void txbuf_put(confab_node *n, node_txbuf *b)
{
    int large = b->cap == NODE_TXBUF_LARGE;
    if ((large || b->cap == NODE_TXBUF_SMALL) &&
        n->txfree_len[large] < TXFREE_MAX && n->state == NODE_RUNNING) {
        b->next = n->txfree[large];
        n->txfree[large] = b;
        n->txfree_len[large]++;
    } else {
        free(b);
    }
}

void node_txbuf_free_all(confab_node *n)
{
    for (int k = 0; k < 2; k++) {
        while (n->txfree[k] != NULL) {
            node_txbuf *b = n->txfree[k];
            n->txfree[k] = b->next;
            free(b);
        }
        n->txfree_len[k] = 0;
    }
}

static int open_seal(node_conn *c);

/* Sets *out where a frame payload of up to max_payload bytes can be
 * written (with WIRE_FRAME_HEADROOM bytes in front of it free for the
 * header), after sealing the open frame (a new frame goes behind it).
 * Returns 0, -ENOMEM, or the cipher's error. A new block is large when
 * the caller has bulk to send, small when the payload fits one, else
 * exactly its size. */
static int tx_begin(node_conn *c, size_t max_payload, bool bulk, uint8_t **out)
{
    int rc = open_seal(c);
    if (rc != 0)
        return rc;
    size_t need = WIRE_FRAME_HEADROOM + max_payload;
    node_txbuf *t = c->tx_tail;
    if (t == NULL || t->cap - t->len < need) {
        int large = bulk ? 1 : need <= NODE_TXBUF_SMALL ? 0 : 2;
        node_txbuf *b = txbuf_get(c->node, large, need);
        if (b == NULL)
            return -ENOMEM;
        if (t == NULL)
            c->tx_head = b;
        else
            t->next = b;
        c->tx_tail = t = b;
    }
    *out = t->data + t->len + WIRE_FRAME_HEADROOM;
    return 0;
}

/* Seals the frame whose payload_len bytes were written where tx_begin()
 * pointed. The header goes into the headroom; a short (bin 8) header
 * leaves one spare byte, closed up by moving the frame down so that the
 * block stays one contiguous run of frames. */
/* Seals the frame begun by tx_begin; mark: the link must be flushed for
 * it (not when the flush itself framed it: that flush writes it). */
static void tx_seal(node_conn *c, size_t payload_len, bool mark)
{
    node_txbuf *t = c->tx_tail;
    uint8_t *frame = t->data + t->len;
    size_t start;
    int rc = wire_frame_seal(frame, payload_len, &start);
    (void)rc; /* payload_len <= WIRE_MAX_FRAME by construction */
    size_t flen = WIRE_FRAME_HEADROOM - start + payload_len;
    if (start != 0)
        memmove(frame, frame + start, flen);
    t->len += (uint32_t)flen;
    c->tx_pending += flen;
    size_t q = c->tx_pending + c->tx_inflight;
    if (q > c->node->stats.link_tx_peak)
        c->node->stats.link_tx_peak = q;
    c->t_tx = node_now_ms(c->node);
    if (mark)
        node_conn_mark_dirty(c);
}

static void tx_commit(node_conn *c, size_t payload_len)
{
    tx_seal(c, payload_len, true);
}

/* Queues a handshake message: a frame holding msg unencrypted. */
int node_conn_tx_raw(node_conn *c, const uint8_t *msg, size_t len)
{
    uint8_t *p;
    int rc = tx_begin(c, len, false, &p);
    if (rc != 0)
        return rc;
    memcpy(p, msg, len);
    tx_commit(c, len);
    return 0;
}

/* ---- the open frame: several messages per transport message (#18) -- */

/* A message is not encrypted as it is queued: its map is appended to the
 * link's open frame, the plaintext of one transport message growing in
 * the tail block at tx_tail->data + tx_tail->len (behind the header's
 * room). The open frame is sealed (encrypted in place, one AEAD call for
 * all its maps) when the next map does not fit it or its block, before
 * any other frame is placed behind it, and before the block goes to the
 * socket (node_conn_flush): so frames are sealed, and their nonces used,
 * in the order they are written, and batching adds no wait. A peer whose
 * HELLO did not announce `batch` gets each frame sealed at once: one map
 * per transport message, as PROTOCOL.md section 4 requires. */

/* The body a DATA or FRAG carries, or NULL. */
static const wire_bytes *msg_body(const wire_msg *m)
{
    return m->type == WIRE_T_DATA   ? &m->u.data.body
           : m->type == WIRE_T_FRAG ? &m->u.frag.data
                                    : NULL;
}

/* Encodes m at p[0..cap): a DATA or FRAG by the direct writer with its
 * body copied into its place, others by wire_msg_encode. */
static int encode_map(const wire_msg *m, uint8_t *p, size_t cap, size_t *len)
{
    const wire_bytes *body = msg_body(m);
    if (body == NULL)
        return wire_msg_encode(m, p, cap, len);
    size_t hole;
    int rc = wire_msg_encode_hole(m, p, cap, len, &hole);
    if (rc == 0 && body->len > 0)
        memcpy(p + hole, body->ptr, body->len);
    return rc;
}

/* Where the next map goes: behind the open frame's maps, or at the start
 * of a new frame in the tail block's free room; *cap is what fits there
 * (the frame's plaintext limit and the block's room, its tag kept). NULL
 * when the tail block has no room left. */
static uint8_t *open_room(node_conn *c, size_t *cap)
{
    node_txbuf *t = c->tx_tail;
    size_t over = WIRE_FRAME_HEADROOM + WIRE_AEAD_TAG_BYTES + c->open_len;
    if (t == NULL || t->cap - t->len <= over)
        return NULL;
    size_t room = t->cap - t->len - over;
    size_t lim = WIRE_MAX_PLAINTEXT - c->open_len;
    *cap = room < lim ? room : lim;
    return t->data + t->len + WIRE_FRAME_HEADROOM + c->open_len;
}

/* One transport message is sealed with maps maps in it. */
static void count_frame(node_conn *c, uint32_t maps)
{
    confab_stats *st = &c->node->stats;
    st->frames_sent++;
    st->frame_maps_sent += maps;
    if (maps > 1)
        st->frames_batched++;
}

/* Seals the open frame, if there is one. Returns 0 or the cipher's error
 * (the link must then be closed). */
static int open_seal(node_conn *c)
{
    if (c->open_len == 0)
        return 0;
    node_txbuf *t = c->tx_tail;
    uint8_t *p = t->data + t->len + WIRE_FRAME_HEADROOM;
    size_t len = c->open_len;
    uint32_t maps = c->open_maps;
    c->open_len = 0;
    c->open_maps = 0;
    int rc = sec_cipher_encrypt(&c->tx, NULL, 0, p, len, p);
    if (rc != 0)
        return rc;
    count_frame(c, maps);
    tx_seal(c, len + WIRE_AEAD_TAG_BYTES, false);
    return 0;
}

/* Appends m (its plaintext at most need bytes) to the open frame, or to a
 * new one when it does not fit: in the tail block, else in a new block
 * (large when bulk). Returns 0, -ENOMEM, -EINVAL (m breaks a limit) or
 * the cipher's error. */
static int put_map(node_conn *c, const wire_msg *m, size_t need, bool bulk)
{
    size_t cap = 0, len;
    uint8_t *p = open_room(c, &cap);
    int rc = p != NULL ? encode_map(m, p, cap, &len) : -EMSGSIZE;
    if (rc == -EMSGSIZE) {
        if (need > WIRE_MAX_PLAINTEXT)
            need = WIRE_MAX_PLAINTEXT;
        /* A control message too big for a small block (PEERS) gets a block
         * of its own size; the data lane's and relayed bursts large ones. */
        rc = tx_begin(c, need + WIRE_AEAD_TAG_BYTES, bulk, &p);
        if (rc != 0)
            return rc;
        p = open_room(c, &cap);
        rc = p != NULL ? encode_map(m, p, cap, &len) : -EMSGSIZE;
    }
    if (rc != 0)
        return rc;
    c->open_len += (uint32_t)len;
    c->open_maps++;
    return c->batch ? 0 : open_seal(c);
}

/* Control messages are what a peer makes us send by sending (a PONG for
 * each PING, ACKs, PEERS): unlike the data lane, which stops at its
 * window, nothing else limits them. A peer that asks and never reads
 * would have them pile up without end, so one link's transmit queue stops
 * at link_tx_bytes: the message is refused and the link is cut at the
 * next flush (not here: the caller may be walking the peers). */
static bool tx_room(node_conn *c, const wire_msg *m)
{
    size_t lim = c->node->cfg.link_tx_bytes;
    size_t q = node_conn_tx_queued(c);
    size_t need = wire_msg_bound(m) + WIRE_FRAME_HEADROOM + WIRE_AEAD_TAG_BYTES;
    if (!c->tx_over && q < lim && need <= lim - q)
        return true;
    c->tx_over = true;
    node_conn_mark_dirty(c);
    return false;
}

/* The cut of a link whose transmit queue reached its bound. */
static void cut_tx_full(node_conn *c)
{
    confab_node *n = c->node;
    char sid[9] = "?";
    if (c->peer != NULL)
        node_short_id(c->peer_id, sid);
    n->stats.links_cut_tx_full++;
    node_log(n, CONFAB_LOG_WARN,
             "cutting the link to %s: %zu bytes wait to be sent to it "
             "(link_tx_bytes %zu): it asks (PINGs, data to acknowledge) but "
             "does not read the answers; it may link again once it reads",
             sid, node_conn_tx_queued(c), n->cfg.link_tx_bytes);
    node_conn_abort(c, CONFAB_DOWN_PROTOCOL);
}

static int send_ctl(node_conn *c, const wire_msg *m, bool bulk)
{
    /* BYE is the last message on a link (PROTOCOL.md 8.1): after ours,
     * nothing (a PONG to the peer's late PING, say) may follow it. */
    if ((c->state != CONN_UP && c->state != CONN_DRAINING) || c->bye_sent)
        return -ENOTCONN;
    if (!tx_room(c, m))
        return -ENOBUFS;
    /* Into the open frame, with whatever else this loop turn sends the
     * peer; the flush at the end of the turn seals and writes it. */
    int rc = put_map(c, m, wire_msg_bound(m), bulk);
    if (rc != 0)
        return rc;
    node_conn_mark_dirty(c);
    return 0;
}

int node_conn_send_ctl(node_conn *c, const wire_msg *m)
{
    return send_ctl(c, m, false);
}

int node_conn_send_relayed(node_conn *c, const wire_msg *m)
{
    return send_ctl(c, m, true);
}

/* Bodies from this size up are not copied into the open frame: they get
 * a transport message of their own, encrypted straight from the sender's
 * buffer (the outbox's record), where one more AEAD call is cheap beside
 * the body's bytes (crypto/cipher.c, SPLIT_MIN). */
#define ONECOPY_MIN 16384u

/* Queues m (plaintext at most bound bytes) in order on the data lane,
 * from inside a flush (the link stays clean: the flush seals and writes
 * it); bulk asks for a large block when a new one is needed. Returns 0,
 * -ENOMEM or -EMSGSIZE. */
static int conn_frame_data(node_conn *c, const wire_msg *m, size_t bound,
                           bool bulk)
{
    if (bound > WIRE_MAX_PLAINTEXT)
        bound = WIRE_MAX_PLAINTEXT;
    const wire_bytes *body = msg_body(m);
    if (body == NULL || body->len < ONECOPY_MIN)
        return put_map(c, m, bound, bulk);
    /* The body goes from the sender's buffer to the transmit block once,
     * through the cipher: the header and the keys after the body are
     * written around its place (#18). Behind the open frame, sealed
     * first. */
    uint8_t *p;
    int rc = tx_begin(c, bound + WIRE_AEAD_TAG_BYTES, bulk, &p);
    if (rc != 0)
        return rc;
    size_t len, hole;
    rc = wire_msg_encode_hole(m, p, bound, &len, &hole);
    if (rc == 0)
        rc = sec_cipher_encrypt_from(&c->tx, p, hole, body->ptr, body->len,
                                     len - hole - body->len);
    if (rc != 0)
        return rc;
    count_frame(c, 1);
    tx_seal(c, len + WIRE_AEAD_TAG_BYTES, false);
    return 0;
}

/* Frames what the layer above has for c's peer, while the window has
 * room (node_link_ops pull). */
static void conn_pull(node_conn *c)
{
    const node_link_ops *ops = c->node->link_ops;
    node_frame f;
    while (node_conn_tx_queued(c) < NODE_TX_WINDOW && ops->pull(c, &f)) {
        int rc = conn_frame_data(c, &f.m, f.bound, f.bulk);
        if (rc != 0) {
            node_log(c->node, CONFAB_LOG_ERROR, "cannot frame a message: %s",
                     uv_strerror(rc));
            node_conn_abort(c, CONFAB_DOWN_CLOSED);
            return;
        }
        ops->pushed(c, &f);
    }
    ops->pulled(c);
}

size_t node_conn_tx_queued(const node_conn *c)
{
    size_t open = c->open_len > 0
                      ? WIRE_FRAME_HEADROOM + c->open_len + WIRE_AEAD_TAG_BYTES
                      : 0;
    return c->tx_pending + c->tx_inflight + open;
}

/* ---- writes ----------------------------------------------------------- */

static void conn_close_after_flush(node_conn *c);

static void write_cb(uv_write_t *req, int status)
{
    node_txbuf *first = node_container_of(req, node_txbuf, req);
    node_conn *c = req->data;
    confab_node *n = c->node;
    uint32_t nb = first->nbufs;
    node_txbuf *b = first;
    size_t bytes = 0;
    for (uint32_t i = 0; i < nb && b != NULL; i++) {
        node_txbuf *next = b->next;
        bytes += b->len - b->off;
        txbuf_put(n, b);
        b = next;
    }
    c->tx_inflight -= bytes;
    if (status == 0) {
        n->stats.bytes_sent += bytes;
        n->link_ops->counted(c, bytes, 0);
    }
    if (status < 0) {
        if (status != UV_ECANCELED && c->state != CONN_CLOSING) {
            node_log(n, CONFAB_LOG_DEBUG, "write failed: %s",
                     uv_strerror(status));
            node_conn_abort(c, CONFAB_DOWN_CLOSED);
        }
        return;
    }
    if (c->state == CONN_CLOSING)
        return;
    /* Room in the window again: frame more of the data lane. */
    node_conn_mark_dirty(c);
}

/* Writes what the kernel takes at once, without a write request, and
 * recycles those blocks now rather than a loop turn later: on a link that
 * keeps up (the usual case) no block outlives the turn that filled it.
 * Returns 0, or -1 if the connection was cut. */
static int try_write_now(node_conn *c)
{
    uv_buf_t bufs[32];
    uint32_t nb = 0;
    for (node_txbuf *b = c->tx_head; b != NULL && nb < 32; b = b->next)
        bufs[nb++] = uv_buf_init((char *)b->data + b->off, b->len - b->off);
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
    c->node->stats.link_writes++;
    if (n == UV_EAGAIN || n == 0)
        return 0;
    if (n < 0) {
        node_log(c->node, CONFAB_LOG_DEBUG, "write failed: %s", uv_strerror(n));
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return -1;
    }
    size_t w = (size_t)n;
    c->tx_pending -= w;
    c->node->stats.bytes_sent += w;
    c->node->link_ops->counted(c, w, 0);
    while (w > 0) {
        node_txbuf *b = c->tx_head;
        size_t left = b->len - b->off;
        if (w < left) {
            b->off += (uint32_t)w;
            break;
        }
        w -= left;
        c->tx_head = b->next;
        if (c->tx_head == NULL)
            c->tx_tail = NULL;
        txbuf_put(c->node, b);
    }
    return 0;
}

void node_conn_flush(node_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    if (c->tx_over) {
        cut_tx_full(c);
        return;
    }
    if (c->paused)
        return;
    /* What this flush frames it also writes (conn_pull does not mark the
     * link dirty); whatever it leaves behind marks it again below. */
    if (c->state == CONN_UP)
        conn_pull(c);
    if (c->state == CONN_CLOSING)
        return;
    /* The open frame goes with this write: batching waits for nothing. */
    int src = open_seal(c);
    if (src != 0) {
        node_log(c->node, CONFAB_LOG_ERROR, "cannot seal a frame: %s",
                 uv_strerror(src));
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return;
    }
    /* Behind a write in flight, bytes must queue behind it. */
    if (c->tx_head != NULL && c->tx_inflight == 0 && try_write_now(c) != 0) {
        return;
    }
    if (c->tx_head != NULL) {
        uv_buf_t bufs[32];
        node_txbuf *first = c->tx_head, *b = first;
        uint32_t nb = 0;
        size_t bytes = 0;
        node_txbuf *last = first;
        while (b != NULL && nb < 32) {
            bufs[nb] = uv_buf_init((char *)b->data + b->off, b->len - b->off);
            bytes += b->len - b->off;
            nb++;
            last = b;
            b = b->next;
        }
        /* Detach the written blocks; the chain stays linked for write_cb. */
        c->tx_head = last->next;
        if (c->tx_head == NULL)
            c->tx_tail = NULL;
        last->next = NULL;
        first->nbufs = nb;
        first->req.data = c;
        c->tx_pending -= bytes;
        c->tx_inflight += bytes;
        int rc =
            uv_write(&first->req, (uv_stream_t *)&c->tcp, bufs, nb, write_cb);
        c->node->stats.link_writes++;
        if (rc != 0) {
            /* No callback will come: account for the blocks here. */
            c->tx_inflight -= bytes;
            for (node_txbuf *x = first; x != NULL;) {
                node_txbuf *next = x->next;
                txbuf_put(c->node, x);
                x = next;
            }
            node_conn_abort(c, CONFAB_DOWN_CLOSED);
            return;
        }
        if (c->tx_head != NULL)
            node_conn_mark_dirty(c);
    } else if (c->state == CONN_UP && c->tx_inflight == 0 &&
               c->node->link_ops->more(c)) {
        /* All written at once and more waits: frame it on the next turn
         * (with a write in flight, its callback does that). */
        node_conn_mark_dirty(c);
    }
    if (c->state == CONN_DRAINING)
        conn_close_after_flush(c);
}

/* ---- close ------------------------------------------------------------ */

static void conn_free(node_conn *c)
{
    confab_node *n = c->node;
    if (c->hs_busy) {
        /* A handshake step still uses c->hs: free when it comes back. */
        c->free_deferred = true;
        return;
    }
    while (c->tx_head != NULL) {
        node_txbuf *b = c->tx_head;
        c->tx_head = b->next;
        txbuf_put(n, b);
    }
    wire_frame_decoder_free(&c->dec);
    rxs_clear(c);
    free(c->rxs);
    c->rxs = NULL;
    n->link_ops->closing(c);
    free(c->hs_rest);
    node_conn_delay_free(c);
    node_hs_free(c->hs);
    sec_cipher_wipe(&c->tx);
    sec_cipher_wipe(&c->rx);
    if (c->dirty)
        node_list_del(&c->dirty_link);
    /* Nothing above may point here any more. */
    n->link_ops->freed(c);
    node_list_del(&c->link);
    free(c);
    node_conns_gone(n);
}

static void on_close(uv_handle_t *h)
{
    conn_free(h->data);
}

void node_conn_leave_handshake(node_conn *c)
{
    if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE)
        c->node->handshakes--;
    if (!c->hs_busy) { /* else the step's return frees it */
        node_hs_free(c->hs);
        c->hs = NULL;
    }
}

void node_conn_hs_orphaned(node_conn *c)
{
    if (c->free_deferred)
        conn_free(c);
}

static void conn_abort(node_conn *c, confab_down_reason why, bool reset)
{
    if (c->state == CONN_CLOSING)
        return;
    node_conn_state was = c->state;
    /* A handshake that ends other than by timing out or by our stopping
     * failed: a wrong network key, garbage, or a peer that hung up. */
    if (was == CONN_HANDSHAKE && why != CONFAB_DOWN_TIMEOUT &&
        why != CONFAB_DOWN_STOPPING)
        c->node->stats.handshakes_failed++;
    node_conn_leave_handshake(c);
    c->state = CONN_CLOSING;
    /* Its body in reassembly will never complete: give its room back. */
    c->node->link_ops->closing(c);
    c->node->link_ops->ended(c, was, why);
    if (c->dirty) {
        node_list_del(&c->dirty_link);
        c->dirty = false;
    }
    if (!reset || c->shutting_down ||
        uv_tcp_close_reset(&c->tcp, on_close) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

void node_conn_abort(node_conn *c, confab_down_reason why)
{
    conn_abort(c, why, false);
}

void node_conn_reset(node_conn *c)
{
    conn_abort(c, CONFAB_DOWN_CLOSED, true);
}

void node_conn_pause(node_conn *c, bool paused)
{
    if (c->paused == paused || c->state == CONN_CLOSING)
        return;
    c->paused = paused;
    if (paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    } else {
        /* Silence while cut does not count against the peer, nor does
         * the wait for the answer to a PING sent before the cut. */
        c->t_rx = node_now_ms(c->node);
        c->node->link_ops->resumed(c);
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
        node_conn_mark_dirty(c);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    node_conn *c = req->data;
    (void)status;
    if (c->state != CONN_CLOSING) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* A draining connection closes once our BYE is handed to the kernel and
 * the peer's BYE has been read (so every message it sent before its BYE
 * was delivered). */
static void conn_close_after_flush(node_conn *c)
{
    if (c->shutting_down || !c->bye_sent || c->tx_head != NULL)
        return;
    if (!c->bye_received && c->node->state != NODE_STOPPING)
        return;
    c->shutting_down = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) !=
        0) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

void node_conn_bye(node_conn *c, uint64_t reason)
{
    if (c->state != CONN_UP && c->state != CONN_DRAINING)
        return;
    c->state = CONN_DRAINING;
    if (c->t_drain == 0)
        c->t_drain = node_now_ms(c->node);
    if (!c->bye_sent) {
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_BYE;
        m.u.bye.reason = reason;
        if (node_conn_send_ctl(c, &m) != 0) {
            if (c->tx_over)
                cut_tx_full(c);
            else
                node_conn_abort(c, CONFAB_DOWN_CLOSED);
            return;
        }
        c->bye_sent = true;
    }
    node_conn_mark_dirty(c);
}

/* ---- creation --------------------------------------------------------- */

static node_conn *conn_new(confab_node *n, bool outbound)
{
    node_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (uv_tcp_init(n->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->node = n;
    c->outbound = outbound;
    c->state = CONN_CONNECTING;
    c->t_start = c->t_rx = c->t_tx = node_now_ms(n);
    node_list_init(&c->dirty_link);
    node_list_init(&c->delay_link);
    node_list_add_tail(&n->conns, &c->link);
    n->handshakes++;
    return c;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    node_conn *c = h->data;
    confab_node *n = c->node;
    (void)suggested;
    /* One read buffer serves every connection of the node: libuv calls
     * read_cb right after this, and the decoder copies any partial frame
     * out of it before read_cb returns. */
    if (n->rxbuf_busy) {
        *buf = uv_buf_init(NULL, 0); /* UV_ENOBUFS: read again later */
        return;
    }
    n->rxbuf_busy = true;
    *buf = uv_buf_init((char *)n->rxbuf, WIRE_MAX_FRAME + 1);
}

static int conn_start_reading(node_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* Whether a and b are one source: one IPv4 address, or one IPv6 /64 (a
 * host picks any address in its /64 at will). */
static bool same_source(const struct sockaddr_storage *a,
                        const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr,
                      ((const struct sockaddr_in6 *)b)->sin6_addr.s6_addr,
                      8) == 0;
    return false;
}

/* Accepted connections from the source of addr still in handshake (the
 * one just accepted included). */
static unsigned source_handshakes(const confab_node *n,
                                  const struct sockaddr_storage *addr)
{
    unsigned k = 0;
    for (const node_list *e = n->conns.next; e != &n->conns; e = e->next) {
        const node_conn *c =
            (const node_conn *)(const void *)((const char *)e -
                                              offsetof(node_conn, link));
        if (!c->outbound &&
            (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) &&
            same_source(&c->remote, addr))
            k++;
    }
    return k;
}

static void reject_closed(uv_handle_t *h)
{
    free(h);
}

int node_conn_accept(confab_node *n, uv_stream_t *server)
{
    node_conn *c = node_fault_accept_alloc(n) ? NULL : conn_new(n, false);
    if (c == NULL) {
        /* Take the connection off the backlog and drop it. The handle
         * lives until its close callback: one on the stack would be gone
         * before libuv is done with it. */
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp != NULL && uv_tcp_init(n->loop, tmp) == 0) {
            (void)uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, reject_closed);
        } else {
            free(tmp);
        }
        return -ENOMEM;
    }
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return rc;
    }
    if (n->state != NODE_RUNNING || n->handshakes > n->cfg.max_handshakes) {
        n->stats.links_refused_busy++;
        node_log(n, CONFAB_LOG_DEBUG,
                 "refusing a connection: %u handshakes in progress",
                 n->handshakes - 1);
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return -EBUSY;
    }
    int alen = sizeof c->remote;
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->remote, &alen);
    node_addr_unmap(&c->remote); /* IPv4 on a dual-stack listener */
    unsigned from = source_handshakes(n, &c->remote);
    if (from > n->cfg.max_handshakes_per_source) {
        /* One host may not take every handshake slot: others must still
         * be able to link while it holds its share. */
        uint64_t k = ++n->stats.links_refused_source;
        char a[64];
        node_format_addr(&c->remote, a, sizeof a);
        node_log(n, (k & (k - 1)) == 0 ? CONFAB_LOG_WARN : CONFAB_LOG_DEBUG,
                 "refusing a connection from %s: it has %u in handshake "
                 "already (max_handshakes_per_source; %llu refused so far)",
                 a, from - 1, (unsigned long long)k);
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return -EBUSY;
    }
    n->stats.links_accepted++;
    rc = node_hs_start(c);
    if (rc == 0)
        rc = conn_start_reading(c);
    if (rc != 0) {
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return rc;
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    node_conn *c = req->data;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        char a[64];
        node_format_addr(&c->remote, a, sizeof a);
        node_log(c->node, CONFAB_LOG_DEBUG, "dial %s failed: %s", a,
                 uv_strerror(status));
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return;
    }
    int rc = node_hs_start(c);
    if (rc == 0)
        rc = conn_start_reading(c);
    if (rc != 0)
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
}

int node_conn_dial(confab_node *n, const struct sockaddr_storage *addr,
                   node_peer *expect, node_static *target, node_conn **out)
{
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    if (n->handshakes >= n->cfg.max_handshakes)
        return -EAGAIN;
    node_conn *c = conn_new(n, true);
    if (c == NULL)
        return -ENOMEM;
    c->remote = *addr;
    c->target = target;
    c->peer = expect;
    n->link_ops->dialing(c);
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                            (const struct sockaddr *)addr, on_connect);
    if (rc != 0) {
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return rc;
    }
    n->stats.links_dialed++;
    *out = c;
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

/* One decrypted message on an established link: 0, or an error that must
 * close the link. */
static int conn_on_msg(node_conn *c, const wire_msg *m)
{
    if (c->bye_received)
        return -EPROTO; /* BYE is the last message on a link */
    if (m->type != WIRE_T_BYE)
        return c->node->link_ops->message(c, m);
    c->bye_received = true;
    c->node->link_ops->bye(c, m->u.bye.reason);
    if (c->state != CONN_CLOSING)
        node_conn_bye(c, m->u.bye.reason == WIRE_BYE_DUPLICATE
                             ? WIRE_BYE_DUPLICATE
                             : WIRE_BYE_OTHER);
    return 0;
}

/* Returns 0, NODE_HS_ASYNC, or an error that must close the link. */
static int conn_on_frame(node_conn *c, const uint8_t *f, size_t len)
{
    confab_node *n = c->node;
    c->t_rx = node_now_ms(n);
    if (c->state == CONN_HANDSHAKE)
        return node_hs_on_frame(c, f, len);
    if (len < WIRE_AEAD_TAG_BYTES)
        return -EPROTO;
    size_t plen = len - WIRE_AEAD_TAG_BYTES;
    /* Decrypted in place: a frame lies either in the node's read buffer or
     * in the decoder's own, both ours to write, so no plaintext buffer. */
    uint8_t *plain = (uint8_t *)(uintptr_t)f;
    int rc = sec_cipher_decrypt(&c->rx, NULL, 0, f, len, plain);
    if (rc != 0)
        return rc;
    if (c->node->rx_dump_fd > 0) /* a test's record of all it decrypts */
        (void)!write(c->node->rx_dump_fd, plain, plen);
    c->node->link_ops->counted(c, 0, len);
    n->stats.frames_received++;
    /* One or more maps back to back (PROTOCOL.md section 4), each taken
     * as it is decoded, as if it had come in a frame of its own: nothing
     * is held for the rest, and an error anywhere cuts the link. */
    uint32_t maps = 0;
    do {
        wire_msg m;
        size_t used;
        rc = wire_msg_decode_next(plain, plen, &m, &used);
        if (rc == 0)
            rc = conn_on_msg(c, &m);
        if (rc != 0 && maps > 0)
            n->stats.frames_batch_refused++;
        if (rc != 0)
            return rc;
        maps++;
        n->stats.frame_maps_received++;
        plain += used;
        plen -= used;
    } while (plen > 0 && c->state != CONN_CLOSING);
    return 0;
}

/* ---- large fragments, read straight into place (#18) ----------------- */

/* A frame of a fragmented body in reassembly that the read did not hold
 * whole is not buffered: its ciphertext is authenticated and decrypted as
 * it comes, and a FRAG's data goes straight into c->rx_big at its offset,
 * so a large message is copied once on its way in (the kernel's copy into
 * the read buffer aside). The first bytes of the frame are looked at
 * first: anything but a FRAG of that body, in confab's key order with its
 * data last, is buffered whole and handled as any frame. The data written
 * before the tag is checked is not yet authentic: it stays in rx_big,
 * which nothing reads before the body is complete, and a tag that fails
 * cuts the link (rx_big goes with it), as any failed decryption does. */
#define RXS_MIN  4096u /* smaller frames are buffered as before */
#define RXS_PEEK 64u   /* bytes looked at: a FRAG's header is at most 48 */

enum { RXS_PEEKING = 1, RXS_STREAM = 2, RXS_BUFFER = 3 };

struct node_rxs {
    int phase;              /* 0: no frame taken */
    uint32_t need, got;     /* payload bytes in all, and taken */
    uint8_t peek[RXS_PEEK]; /* its first ciphertext bytes */
    uint8_t tag[WIRE_AEAD_TAG_BYTES];
    uint8_t id[WIRE_ID_BYTES];  /* the FRAG's */
    uint64_t off;               /* where its data goes in rx_big */
    uint32_t data_len, hdr_len; /* its data; the plaintext before it */
    uint8_t *buf;               /* RXS_BUFFER: the whole payload */
    sec_open open;
};

static bool rxs_wanted(const node_conn *c)
{
    return c->state == CONN_UP && !c->bye_received && c->peer != NULL &&
           c->rx_big != NULL && c->rx_big_size != 0 && c->node->rx_dump_fd <= 0;
}

static void rxs_clear(node_conn *c)
{
    struct node_rxs *r = c->rxs;
    if (r == NULL)
        return;
    free(r->buf);
    r->buf = NULL;
    sodium_memzero(&r->open, sizeof r->open);
    r->phase = 0;
}

/* A msgpack uint at h[*i..end): 0, or -1 when it is not one. */
static int peek_uint(const uint8_t *h, size_t *i, size_t end, uint64_t *v)
{
    if (*i >= end)
        return -1;
    uint8_t b = h[(*i)++];
    unsigned bytes = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : 8;
    if (b < 0x80) {
        *v = b;
        return 0;
    }
    if (b != 0xcc && b != 0xcd && b != 0xce && b != 0xcf)
        return -1;
    if (bytes > end - *i)
        return -1;
    *v = 0;
    for (unsigned k = 0; k < bytes; k++)
        *v = *v << 8 | h[(*i)++];
    return 0;
}

/* Reads a FRAG header as confab writes it (wire_msg_encode_hole: t, id,
 * off, data last) from the first plaintext bytes of a payload of plen
 * plaintext bytes: 0, or -1 when it is anything else. */
static int peek_frag(struct node_rxs *r, const uint8_t *h, size_t plen)
{
    static const uint8_t open[] = {0x84, 0xa1, 't',  0x02,         0xa2,
                                   'i',  'd',  0xc4, WIRE_ID_BYTES};
    static const uint8_t off_key[] = {0xa3, 'o', 'f', 'f'};
    static const uint8_t data_key[] = {0xa4, 'd', 'a', 't', 'a'};
    size_t i = sizeof open;
    if (memcmp(h, open, sizeof open) != 0)
        return -1;
    memcpy(r->id, h + i, WIRE_ID_BYTES);
    i += WIRE_ID_BYTES;
    if (memcmp(h + i, off_key, sizeof off_key) != 0)
        return -1;
    i += sizeof off_key;
    if (peek_uint(h, &i, RXS_PEEK, &r->off) != 0 ||
        RXS_PEEK - i < sizeof data_key + 5u ||
        memcmp(h + i, data_key, sizeof data_key) != 0)
        return -1;
    i += sizeof data_key;
    uint64_t n = 0;
    uint8_t b = h[i++];
    unsigned bytes = b == 0xc4 ? 1 : b == 0xc5 ? 2 : b == 0xc6 ? 4 : 0;
    if (bytes == 0)
        return -1;
    for (unsigned k = 0; k < bytes; k++)
        n = n << 8 | h[i++];
    if (n == 0 || i > plen || n != plen - i)
        return -1; /* the data must run to the end of the message */
    r->data_len = (uint32_t)n;
    r->hdr_len = (uint32_t)i;
    return 0;
}

/* The first RXS_PEEK bytes are in: stream the frame, or buffer it. */
static void rxs_decide(node_conn *c)
{
    struct node_rxs *r = c->rxs;
    uint8_t h[RXS_PEEK];
    size_t plen = r->need - WIRE_AEAD_TAG_BYTES;
    if (sec_cipher_open_begin(&c->rx, &r->open, plen) == 0) {
        sec_cipher_open_update(&c->rx, &r->open, r->peek, RXS_PEEK, h);
        if (peek_frag(r, h, plen) == 0 && rxs_wanted(c) &&
            memcmp(r->id, c->rx_big_hdr.id, WIRE_ID_BYTES) == 0 &&
            r->off == c->rx_big_len &&
            r->data_len <= c->rx_big_size - c->rx_big_len) {
            memcpy(c->rx_big + r->off, h + r->hdr_len, RXS_PEEK - r->hdr_len);
            r->phase = RXS_STREAM;
            sodium_memzero(h, sizeof h);
            return;
        }
        sodium_memzero(&r->open, sizeof r->open);
    }
    sodium_memzero(h, sizeof h);
    /* Anything else: the whole frame, then conn_on_frame as usual. */
    r->buf = malloc(r->need);
    if (r->buf != NULL)
        memcpy(r->buf, r->peek, RXS_PEEK);
    r->phase = RXS_BUFFER;
}

/* The streamed frame is all in: check its tag, hand the FRAG up with its
 * data already in place. */
static int rxs_finish(node_conn *c)
{
    struct node_rxs *r = c->rxs;
    int rc = sec_cipher_open_final(&c->rx, &r->open, r->tag);
    r->phase = 0;
    if (rc != 0)
        return rc;
    c->t_rx = node_now_ms(c->node);
    c->node->stats.frags_in_place++;
    c->node->stats.frames_received++;
    c->node->stats.frame_maps_received++;
    c->node->link_ops->counted(c, 0, r->need);
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_FRAG;
    memcpy(m.u.frag.id, r->id, WIRE_ID_BYTES);
    m.u.frag.off = r->off;
    /* Where the data already is; NULL when the body was dropped on the
     * way (its bytes were read, authenticated and thrown away). */
    m.u.frag.data.ptr = c->rx_big != NULL ? c->rx_big + r->off : NULL;
    m.u.frag.data.len = r->data_len;
    return c->node->link_ops->message(c, &m);
}

/* Takes what the chunk holds of the frame being streamed. */
static int rxs_feed(node_conn *c, const uint8_t **p, size_t *left)
{
    struct node_rxs *r = c->rxs;
    size_t take = r->need - r->got < *left ? r->need - r->got : *left;
    const uint8_t *in = *p;
    *p += take;
    *left -= take;
    if (r->phase == RXS_PEEKING) {
        size_t k = RXS_PEEK - r->got < take ? RXS_PEEK - r->got : take;
        memcpy(r->peek + r->got, in, k);
        r->got += (uint32_t)k;
        in += k;
        take -= k;
        if (r->got == RXS_PEEK)
            rxs_decide(c);
        if (take == 0)
            return 0;
    }
    if (r->phase == RXS_BUFFER) {
        if (r->buf != NULL)
            memcpy(r->buf + r->got, in, take);
        r->got += (uint32_t)take;
        if (r->got < r->need)
            return 0;
        uint8_t *buf = r->buf;
        r->buf = NULL;
        r->phase = 0;
        int rc = buf != NULL ? conn_on_frame(c, buf, r->need) : -ENOMEM;
        free(buf);
        return rc;
    }
    /* RXS_STREAM: ciphertext up to need - 16, then the tag. */
    size_t ct_end = r->need - WIRE_AEAD_TAG_BYTES;
    size_t kct = r->got < ct_end ? ct_end - r->got : 0;
    if (kct > take)
        kct = take;
    if (kct > 0) {
        /* The body may have given way meanwhile (reassembly's bound):
         * then its bytes are authenticated only. */
        uint8_t *dst = c->rx_big != NULL
                           ? c->rx_big + r->off + (r->got - r->hdr_len)
                           : NULL;
        sec_cipher_open_update(&c->rx, &r->open, in, kct, dst);
        r->got += (uint32_t)kct;
        in += kct;
        take -= kct;
    }
    if (take > 0) {
        memcpy(r->tag + (r->got - ct_end), in, take);
        r->got += (uint32_t)take;
    }
    return r->got == r->need ? rxs_finish(c) : 0;
}

/* The decoder yielded a frame of need payload bytes to take as it comes. */
static int rxs_start(node_conn *c, size_t need)
{
    if (c->rxs == NULL && (c->rxs = calloc(1, sizeof *c->rxs)) == NULL)
        return -ENOMEM;
    c->rxs->phase = RXS_PEEKING;
    c->rxs->need = (uint32_t)need;
    c->rxs->got = 0;
    return 0;
}

/* Decodes and handles the frames in data[0..len). Stops early when the
 * connection closes, or when a handshake step went to the thread pool:
 * then the bytes left wait in c->hs_rest and reading pauses. */
static void conn_feed(node_conn *c, const uint8_t *p, size_t left)
{
    confab_node *n = c->node;
    const uint8_t *f;
    size_t flen;
    int rc;
    for (;;) {
        if (c->rxs != NULL && c->rxs->phase != 0) {
            rc = rxs_feed(c, &p, &left);
            if (rc != 0 || c->state == CONN_CLOSING || left == 0)
                break;
            continue;
        }
        rc = wire_frame_decode_stream(&c->dec, &p, &left, &f, &flen,
                                      rxs_wanted(c) ? RXS_MIN : 0);
        if (rc == 2) {
            rc = rxs_start(c, flen);
            if (rc != 0)
                break;
            continue;
        }
        if (rc != 1)
            break;
        rc = conn_on_frame(c, f, flen);
        if (rc == NODE_HS_ASYNC) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            if (left > 0) {
                c->hs_rest = malloc(left);
                if (c->hs_rest == NULL) {
                    node_conn_abort(c, CONFAB_DOWN_CLOSED);
                    return;
                }
                memcpy(c->hs_rest, p, left);
                c->hs_rest_len = left;
            }
            return;
        }
        if (rc != 0 || c->state == CONN_CLOSING)
            break;
    }
    /* What this read delivered is acknowledged (once durable). */
    if (c->state == CONN_UP)
        c->node->link_ops->read_ended(c);
    /* A small frame split across reads left a buffer behind: free it now.
     * A large one (bulk transfer) is kept for the next frame, and freed by
     * the tick once the link is idle. */
    if (rc == 0 && c->dec.cap <= 16384u)
        wire_frame_decoder_trim(&c->dec);
    if (rc < 0 && c->state != CONN_CLOSING) {
        if (c->state == CONN_UP || c->state == CONN_DRAINING) {
            n->stats.protocol_errors++;
            char sid[9] = "?";
            if (c->peer != NULL)
                node_short_id(c->peer_id, sid);
            node_log(n, CONFAB_LOG_WARN,
                     "cutting the link to %s: protocol error (%s)", sid,
                     uv_strerror(rc));
        } else {
            node_log(n, CONFAB_LOG_DEBUG, "handshake failed: %s",
                     uv_strerror(rc));
        }
        node_conn_abort(c, CONFAB_DOWN_PROTOCOL);
    }
}

void node_conn_resume(node_conn *c)
{
    if (c->hs_rest != NULL) {
        uint8_t *rest = c->hs_rest;
        size_t len = c->hs_rest_len;
        c->hs_rest = NULL;
        c->hs_rest_len = 0;
        conn_feed(c, rest, len);
        free(rest);
    }
    if (c->state == CONN_CLOSING || c->hs_busy || c->paused)
        return;
    /* The initiator's first step runs while it already reads. */
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0 && rc != UV_EALREADY)
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    node_conn *c = s->data;
    confab_node *n = c->node;
    if (buf->base == (char *)n->rxbuf)
        n->rxbuf_busy = false;
    if (nread == 0 || nread == UV_ENOBUFS)
        return;
    if (c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        if (c->state == CONN_DRAINING && c->bye_received) {
            conn_close_after_flush(c);
        } else {
            node_log(n, CONFAB_LOG_DEBUG, "connection lost: %s",
                     uv_strerror((int)nread));
            node_conn_abort(c, CONFAB_DOWN_CLOSED);
        }
        return;
    }
    n->stats.bytes_received += (uint64_t)nread;
    if (c->peer != NULL && (n->link_ops->delay_ms(c) > 0 || c->delayed_head)) {
        delay_chunk(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- added latency (a test hook) --------------------------------------- */

/* A test adds latency to a link by holding what was read from it and
 * processing it when due, in order. Both ends of a link hold, so the round
 * trip grows by twice the delay. */
static void arm_delay(confab_node *n)
{
    uint64_t due = UINT64_MAX;
    for (node_list *e = n->delayed.next; e != &n->delayed; e = e->next) {
        node_conn *c = node_container_of(e, node_conn, delay_link);
        if (c->delayed_head != NULL && c->delayed_head->due < due)
            due = c->delayed_head->due;
    }
    if (due == UINT64_MAX || !n->delay_timer_open)
        return;
    uint64_t now = node_now_ms(n);
    uv_timer_start(&n->delay_timer, node_delay_cb, due > now ? due - now : 0,
                   0);
}

static void delay_chunk(node_conn *c, const uint8_t *data, size_t len)
{
    confab_node *n = c->node;
    node_delayed *d = malloc(sizeof *d + len);
    if (d == NULL) {
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
        return;
    }
    d->next = NULL;
    d->due = node_now_ms(n) + n->link_ops->delay_ms(c);
    d->len = len;
    memcpy(d->data, data, len);
    if (c->delayed_tail != NULL) {
        c->delayed_tail->next = d;
    } else {
        c->delayed_head = d;
        node_list_add_tail(&n->delayed, &c->delay_link);
    }
    c->delayed_tail = d;
    arm_delay(n);
}

void node_conn_delay_free(node_conn *c)
{
    while (c->delayed_head != NULL) {
        node_delayed *d = c->delayed_head;
        c->delayed_head = d->next;
        free(d);
    }
    c->delayed_tail = NULL;
    if (c->delay_link.next != NULL && !node_list_empty(&c->delay_link))
        node_list_del(&c->delay_link);
}

void node_delay_cb(uv_timer_t *t)
{
    confab_node *n = t->data;
    uint64_t now = node_now_ms(n);
    n->stats.timer_wakeups++;
    node_list *e, *next;
    for (e = n->delayed.next; e != &n->delayed; e = next) {
        next = e->next;
        node_conn *c = node_container_of(e, node_conn, delay_link);
        while (c->delayed_head != NULL && c->delayed_head->due <= now &&
               c->state != CONN_CLOSING) {
            node_delayed *d = c->delayed_head;
            c->delayed_head = d->next;
            if (c->delayed_head == NULL)
                c->delayed_tail = NULL;
            conn_feed(c, d->data, d->len);
            free(d);
        }
        if (c->delayed_head == NULL || c->state == CONN_CLOSING) {
            next = e->next; /* conn_feed may have changed the list */
            node_conn_delay_free(c);
        }
    }
    arm_delay(n);
}

/* ---- the tick --------------------------------------------------------- */

void node_conn_tick(node_conn *c, uint64_t now)
{
    confab_node *n = c->node;
    wire_frame_decoder_trim(&c->dec);
    switch (c->state) {
    case CONN_CONNECTING:
    case CONN_HANDSHAKE:
        if (now - c->t_start >= n->cfg.handshake_timeout_ms) {
            n->stats.handshakes_timed_out++;
            node_log(n, CONFAB_LOG_DEBUG, "handshake timed out");
            node_conn_abort(c, CONFAB_DOWN_TIMEOUT);
        }
        break;
    case CONN_UP:
        if (c->tx_over) /* a backstop: the flush cuts it first */
            cut_tx_full(c);
        else if (c->peer != NULL)
            n->link_ops->tick(c, now);
        break;
    case CONN_DRAINING:
        if (c->tx_over)
            cut_tx_full(c);
        else if (now - c->t_drain >= NODE_DRAIN_MS)
            node_conn_abort(c, CONFAB_DOWN_TIMEOUT);
        break;
    case CONN_CLOSING:
        break;
    }
}
