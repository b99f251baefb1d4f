/* Layer link (node/LAYERS).
 * handshake.c: the Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b handshake of one
 * connection (docs/PROTOCOL.md section 3), its crypto run on libuv's
 * thread pool.
 *
 *   -> psk, e              (initiator: step INIT_1)
 *   <- e, ee, s, es        (responder: step RESP_1, after reading message 1)
 *   -> s, se               (initiator: step INIT_2, after reading message 2)
 *                          (responder: step RESP_3, reads message 3)
 *
 * A handshake costs four X25519 operations a side (about 0.3 ms for both
 * sides here): a network of 50 nodes makes 1,225 of them at once. Run on
 * the loop, they would stall every link of the node; on the pool they use
 * every core while the loop keeps serving. While a step is on the pool the
 * connection reads nothing more; bytes that came behind the handshake
 * message wait in c->hs_rest.
 *
 * The worker touches only its node_hs and reads the node's keys, which do
 * not change while the node lives (a stop waits for every step: each counts
 * as an open handle). It allocates nothing: the loop thread prepares every
 * buffer, because memory a pool thread mallocs lands in that thread's own
 * glibc arena, where it fragments and stays resident (a network of 100
 * nodes held 70 MB more that way). */
#include "node/link/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef enum hs_step {
    HS_INIT_1 = 1, /* new state, write message 1 */
    HS_RESP_1 = 2, /* new state, read message 1, write message 2 */
    HS_INIT_2 = 3, /* read message 2, write message 3, split */
    HS_RESP_3 = 4, /* read message 3, split */
} hs_step;

struct node_hs {
    uv_work_t work;
    node_conn *conn;
    sec_noise *noise;
    /* inputs of the step */
    hs_step step;
    sec_noise_config cfg;
    uint8_t *in; /* the peer's message, copied */
    size_t in_len;
    uint8_t *hello; /* our HELLO, copied (groups may change meanwhile) */
    size_t hello_len;
    /* outputs */
    int rc;
    uint8_t *out; /* our next message */
    size_t out_cap, out_len;
    uint8_t *payload; /* the peer's HELLO */
    size_t payload_len;
    uint8_t remote[WIRE_NODE_ID_BYTES];
    bool has_remote;
    bool done; /* split: tx, rx and hash are set */
    sec_cipher tx, rx;
    uint8_t hash[SEC_HASH_BYTES];
    bool noise_ready;
    sec_noise *noise_mem; /* sec_noise_size() bytes, after this struct */
};

static void hs_clear_step(node_hs *h)
{
    free(h->in);
    free(h->out);
    free(h->payload);
    free(h->hello);
    h->in = h->out = h->payload = h->hello = NULL;
    h->in_len = h->out_len = h->out_cap = h->payload_len = h->hello_len = 0;
}

void node_hs_free(node_hs *h)
{
    if (h == NULL)
        return;
    hs_clear_step(h);
    sec_noise_wipe(h->noise_mem);
    sec_cipher_wipe(&h->tx);
    sec_cipher_wipe(&h->rx);
    free(h);
}

/* ---- the worker (thread pool) ------------------------------------------ */

static int write_msg(node_hs *h)
{
    return sec_noise_write(h->noise, h->hello, h->hello_len, h->out, h->out_cap,
                           &h->out_len);
}

static int read_msg(node_hs *h)
{
    int rc = sec_noise_read(h->noise, h->in, h->in_len, h->payload, h->in_len,
                            &h->payload_len);
    const uint8_t *rs = sec_noise_remote_static(h->noise);
    if (rc == 0 && rs != NULL) {
        memcpy(h->remote, rs, WIRE_NODE_ID_BYTES);
        h->has_remote = true;
    }
    return rc;
}

static int split(node_hs *h)
{
    int rc = sec_noise_split(h->noise, &h->tx, &h->rx);
    if (rc == 0) {
        sec_noise_hash(h->noise, h->hash);
        h->done = true;
    }
    return rc;
}

static void work_cb(uv_work_t *w)
{
    node_hs *h = w->data;
    int rc = 0;
    switch (h->step) {
    case HS_INIT_1:
        /* -> psk, e (an empty payload: message 1 is exactly 48 bytes) */
        rc = sec_noise_init(h->noise_mem, &h->cfg);
        if (rc == 0) {
            h->noise = h->noise_mem;
            rc = write_msg(h);
        }
        break;
    case HS_RESP_1:
        rc = sec_noise_init(h->noise_mem, &h->cfg);
        if (rc == 0)
            h->noise = h->noise_mem;
        if (rc == 0 && h->in_len != NODE_HS_MSG1_LEN)
            rc = -EPROTO;
        if (rc == 0)
            rc = read_msg(h);
        if (rc == 0 && h->payload_len != 0)
            rc = -EPROTO;
        /* <- e, ee, s, es (payload: our HELLO) */
        if (rc == 0)
            rc = write_msg(h);
        break;
    case HS_INIT_2:
        /* <- e, ee, s, es, then -> s, se (payload: our HELLO) */
        rc = read_msg(h);
        if (rc == 0)
            rc = write_msg(h);
        if (rc == 0)
            rc = split(h);
        break;
    case HS_RESP_3:
        /* -> s, se */
        rc = read_msg(h);
        if (rc == 0)
            rc = split(h);
        break;
    }
    h->rc = rc;
}

/* ---- the loop side ---------------------------------------------------- */

static void after_work_cb(uv_work_t *w, int status);

/* Bytes a step's message has besides its payload (our HELLO). */
static size_t step_overhead(hs_step step)
{
    switch (step) {
    case HS_INIT_1: /* e, the tag of the empty payload */
        return NODE_HS_MSG1_LEN;
    case HS_RESP_1: /* e, encrypted s, the payload's tag */
        return 2 * WIRE_NODE_ID_BYTES + 2 * WIRE_AEAD_TAG_BYTES;
    case HS_INIT_2: /* encrypted s, the payload's tag */
        return WIRE_NODE_ID_BYTES + 2 * WIRE_AEAD_TAG_BYTES;
    default:
        return 0;
    }
}

static int queue_step(node_conn *c, hs_step step, const uint8_t *in,
                      size_t in_len)
{
    confab_node *n = c->node;
    node_hs *h = c->hs;
    h->step = step;
    h->rc = 0;
    /* Everything the worker writes is allocated here, on the loop. */
    if (in_len > 0) {
        h->in = malloc(in_len);
        h->payload = malloc(in_len);
        if (h->in == NULL || h->payload == NULL)
            return -ENOMEM;
        memcpy(h->in, in, in_len);
        h->in_len = in_len;
    }
    if (step == HS_RESP_1 || step == HS_INIT_2) {
        h->hello = malloc(n->hello_len);
        if (h->hello == NULL)
            return -ENOMEM;
        memcpy(h->hello, n->hello, n->hello_len);
        h->hello_len = n->hello_len;
    }
    if (step != HS_RESP_3) {
        h->out_cap = h->hello_len + step_overhead(step);
        h->out = malloc(h->out_cap);
        if (h->out == NULL)
            return -ENOMEM;
    }
    h->work.data = h;
    int rc = uv_queue_work(n->loop, &h->work, work_cb, after_work_cb);
    if (rc != 0)
        return rc;
    c->hs_busy = true;
    n->open_handles++; /* a stop waits for the step */
    return 0;
}

int node_hs_start(node_conn *c)
{
    confab_node *n = c->node;
    /* One allocation: the struct, then the Noise state. */
    size_t head = (sizeof(node_hs) + 15u) & ~(size_t)15u;
    node_hs *h = calloc(1, head + sec_noise_size());
    if (h == NULL)
        return -ENOMEM;
    h->noise_mem = (sec_noise *)(void *)((char *)h + head);
    h->conn = c;
    h->cfg.pattern = SEC_NOISE_XXPSK0;
    h->cfg.initiator = c->outbound;
    h->cfg.prologue = (const uint8_t *)NODE_PROLOGUE;
    h->cfg.prologue_len = strlen(NODE_PROLOGUE);
    h->cfg.static_sk = n->identity->sk;
    h->cfg.static_pk = n->identity->pk;
    h->cfg.psk = n->netkey->key;
    c->hs = h;
    c->state = CONN_HANDSHAKE;
    wire_frame_decoder_init(&c->dec,
                            c->outbound ? WIRE_MAX_FRAME : NODE_HS_MSG1_LEN);
    /* The responder waits for message 1 before doing any work. */
    return c->outbound ? queue_step(c, HS_INIT_1, NULL, 0) : 0;
}

int node_hs_on_frame(node_conn *c, const uint8_t *f, size_t len)
{
    node_hs *h = c->hs;
    if (h == NULL || c->hs_busy)
        return -EPROTO;
    hs_step next;
    if (c->outbound)
        next = h->step == HS_INIT_1 ? HS_INIT_2 : 0;
    else
        next = h->step == 0 ? HS_RESP_1 : h->step == HS_RESP_1 ? HS_RESP_3 : 0;
    if (next == 0)
        return -EPROTO; /* a frame out of turn */
    int rc = queue_step(c, next, f, len);
    return rc == 0 ? NODE_HS_ASYNC : rc;
}

/* Checks who the peer is, once its static key is known. */
static int check_peer(node_conn *c, const node_hs *h)
{
    confab_node *n = c->node;
    if (!h->has_remote)
        return -EPROTO;
    memcpy(c->peer_id, h->remote, WIRE_NODE_ID_BYTES);
    if (memcmp(h->remote, n->identity->pk, WIRE_NODE_ID_BYTES) == 0) {
        node_log(n, CONFAB_LOG_DEBUG, "refusing a link to ourselves");
        return -EPROTO;
    }
    if (!n->link_ops->allowed(n, h->remote)) {
        /* Authenticated, and not welcome: the allow-list is narrower than
         * the network key. Logged at the first refusals, then rarely. */
        uint64_t k = ++n->stats.handshakes_not_allowed;
        char sid[9];
        node_short_id(h->remote, sid);
        node_log(n, (k & (k - 1)) == 0 ? CONFAB_LOG_WARN : CONFAB_LOG_DEBUG,
                 "refusing %s: not on the allow-list (%llu refused so far); "
                 "'confab allow ID' lets a node in",
                 sid, (unsigned long long)k);
        return -EACCES;
    }
    if (c->has_expect_id &&
        memcmp(h->remote, c->expect_id, WIRE_NODE_ID_BYTES) != 0) {
        char a[9], b[9];
        node_short_id(c->expect_id, a);
        node_short_id(h->remote, b);
        node_log(n, CONFAB_LOG_INFO, "dialed %s but reached %s at that address",
                 a, b);
        return -EPROTO;
    }
    return 0;
}

static int established(node_conn *c, node_hs *h)
{
    wire_hello hello;
    if (wire_hello_decode(h->payload, h->payload_len, &hello) != 0 ||
        hello.version != WIRE_VERSION) {
        node_log(c->node, CONFAB_LOG_DEBUG, "bad HELLO in handshake");
        return -EPROTO;
    }
    c->tx = h->tx;
    c->rx = h->rx;
    memcpy(c->hs_hash, h->hash, sizeof c->hs_hash);
    /* The HELLO points into h->payload: keep h until the peer is set up. */
    c->hs = NULL;
    node_conn_leave_handshake(c);
    c->state = CONN_UP;
    c->batch = hello.batch != 0; /* #18: PROTOCOL.md 3.2 and 4 */
    wire_frame_decoder_set_limit(&c->dec, WIRE_MAX_FRAME);
    int rc = c->node->link_ops->established(c, &hello);
    node_hs_free(h);
    return rc;
}

/* Applies the step's result on the loop. Returns 0 or the error that must
 * close the connection. */
static int apply(node_conn *c, node_hs *h)
{
    if (h->rc != 0)
        return h->rc;
    int rc = 0;
    switch (h->step) {
    case HS_INIT_1:
    case HS_RESP_1:
        rc = node_conn_tx_raw(c, h->out, h->out_len);
        if (rc == 0 && h->step == HS_RESP_1)
            wire_frame_decoder_set_limit(&c->dec, WIRE_MAX_FRAME);
        break;
    case HS_INIT_2:
        rc = check_peer(c, h);
        if (rc == 0)
            rc = node_conn_tx_raw(c, h->out, h->out_len);
        if (rc == 0)
            rc = established(c, h);
        return rc; /* h is gone (or is freed with the connection) */
    case HS_RESP_3:
        rc = check_peer(c, h);
        if (rc == 0)
            rc = established(c, h);
        return rc;
    }
    hs_clear_step(h);
    return rc;
}

static void after_work_cb(uv_work_t *w, int status)
{
    node_hs *h = w->data;
    node_conn *c = h->conn;
    confab_node *n = c->node;
    c->hs_busy = false;
    if (status == UV_ECANCELED)
        h->rc = -ECANCELED;
    if (c->state == CONN_CLOSING) {
        /* The connection died while the step ran: finish its free. */
        node_conn_hs_orphaned(c);
    } else {
        /* The first message each side reads is sealed under the network
         * key (psk0): failing to open it means another network's node. */
        if (h->rc == -EACCES &&
            (h->step == HS_RESP_1 || h->step == HS_INIT_2)) {
            n->stats.handshakes_refused_key++;
            node_explain_other_network(n, "handshake", &c->remote);
        }
        int rc = apply(c, h);
        if (rc != 0) {
            node_log(n, CONFAB_LOG_DEBUG, "handshake failed: %s",
                     uv_strerror(rc));
            node_conn_abort(c, CONFAB_DOWN_PROTOCOL);
        } else {
            node_conn_resume(c);
        }
    }
    node_handle_closed(n); /* may finish a stop: touch nothing after */
}
