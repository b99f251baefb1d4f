/* ctl_client.h: a raw control client for the network tests
 * (docs/PROTOCOL.md section 11), and a node that serves a control socket.
 *
 * The node runs on the test's loop, so the client never blocks: it queues
 * what it sends, and tc_pump() writes and reads what it can without
 * waiting. Tests call tc_pump() from a confab_testnet_run_until()
 * condition, so the loop runs between tries. A client that must not read
 * (a misbehaving one) is simply never pumped for reading: tc_flush()
 * only writes. */
#ifndef CONFAB_TESTS_CTL_CLIENT_H
#define CONFAB_TESTS_CTL_CLIENT_H

#include "net.h"

#include "wire/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct tclient {
    int fd;
    wire_ctl_reader rd;
    uint8_t *out;              /* queued to send */
    size_t out_len, out_off, out_cap;
    bool eof;                  /* the node closed it */
    size_t n_events;           /* msg events read */
    size_t n_replies;          /* replies read */
    uint64_t last_rid;         /* of the last reply */
    int last_ok;
    uint32_t last_count;       /* entries of its "groups" or "msgs" array */
    size_t event_bytes;        /* body bytes of msg events read */
    size_t event_frames;       /* events of any kind read */
    size_t n_msgs;             /* messages read: events and in replies */
    size_t msg_bytes;          /* their body bytes */
} tclient;

static inline void tc_open(tclient *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(t->fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    assert_true(pl < sizeof a.sun_path);
    memcpy(a.sun_path, path, pl + 1);
    /* The listen backlog takes it while the loop is not running. */
    assert_int_equal(connect(t->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(fcntl(t->fd, F_SETFL, O_NONBLOCK), 0);
    wire_ctl_reader_init(&t->rd, (size_t)64 << 20);
}

static inline void tc_close(tclient *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    wire_ctl_reader_free(&t->rd);
    free(t->out);
    t->out = NULL;
}

/* Queues raw bytes. */
static inline void tc_queue_raw(tclient *t, const void *p, size_t len)
{
    if (t->out_len + len > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + len)
            cap *= 2;
        t->out = realloc(t->out, cap);
        assert_non_null(t->out);
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, p, len);
    t->out_len += len;
}

/* Queues the map built in b (finished and framed here), and frees b. */
static inline void tc_queue(tclient *t, wire_ctl_builder *b)
{
    assert_int_equal(wire_ctl_finish(b), 0);
    size_t flen = wire_ctl_framed_len(b->len), len;
    uint8_t *f = malloc(flen);
    assert_non_null(f);
    assert_int_equal(wire_ctl_frame(b->buf, b->len, f, flen, &len), 0);
    tc_queue_raw(t, f, len);
    free(f);
    wire_ctl_builder_free(b);
}

/* Queues {"op": op, "rid": rid}. */
static inline void tc_simple(tclient *t, const char *op, uint64_t rid)
{
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 2);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, op);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, rid);
    tc_queue(t, &b);
}

/* Writes what it can of the queue. */
static inline void tc_flush(tclient *t)
{
    while (t->out_off < t->out_len && !t->eof) {
        ssize_t n = send(t->fd, t->out + t->out_off, t->out_len - t->out_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EPIPE || errno == ECONNRESET)
                t->eof = true;
            return; /* EAGAIN: later */
        }
        t->out_off += (size_t)n;
    }
    if (t->out_off == t->out_len)
        t->out_off = t->out_len = 0;
}

static inline void tc_take(tclient *t, const uint8_t *msg, size_t len)
{
    wire_ctl_map m;
    assert_int_equal(wire_ctl_parse(msg, len, &m), 0);
    wire_bytes ev;
    if (wire_ctl_get_str(&m, "ev", &ev) == 0) {
        t->event_frames++;
        wire_ctl_map mm;
        wire_bytes body;
        if (ev.len == 3 && memcmp(ev.ptr, "msg", 3) == 0 &&
            wire_ctl_get_map(&m, "msg", &mm) == 0 &&
            wire_ctl_get_bin(&mm, "body", &body) == 0) {
            t->n_events++;
            t->event_bytes += body.len;
            t->n_msgs++;
            t->msg_bytes += body.len;
        }
        return;
    }
    t->n_replies++;
    assert_int_equal(wire_ctl_get_uint(&m, "rid", &t->last_rid), 0);
    assert_int_equal(wire_ctl_get_bool(&m, "ok", &t->last_ok), 0);
    wire_iter it;
    t->last_count = 0;
    if (wire_ctl_get_array(&m, "groups", &it, &t->last_count) == 0 ||
        wire_ctl_get_array(&m, "msgs", &it, &t->last_count) != 0)
        return;
    wire_ctl_map mm;
    wire_bytes body;
    while (wire_ctl_next_map(&it, &mm) == 1 &&
           wire_ctl_get_bin(&mm, "body", &body) == 0) {
        t->n_msgs++;
        t->msg_bytes += body.len;
    }
}

/* Writes and reads what it can; every message read is counted. */
static inline void tc_pump(tclient *t)
{
    tc_flush(t);
    uint8_t buf[65536];
    while (!t->eof) {
        ssize_t n = recv(t->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            t->eof = true;
            return;
        }
        const uint8_t *p = buf, *msg;
        size_t left = (size_t)n, len;
        int rc;
        while ((rc = wire_ctl_read(&t->rd, &p, &left, &msg, &len)) == 1)
            tc_take(t, msg, len);
        assert_int_equal(rc, 0);
    }
}

/* ---- conditions for confab_testnet_run_until -------------------------- */

typedef struct tc_wait {
    tclient *t;
    size_t replies;  /* until this many replies were read */
    size_t msgs;     /* and this many messages (events or in replies) */
} tc_wait;

static inline bool tc_replies_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    tc_wait *w = arg;
    tc_pump(w->t);
    return w->t->eof ||
           (w->t->n_replies >= w->replies && w->t->n_msgs >= w->msgs);
}

/* Pumps t until it has read `replies` replies in all (and `msgs`
 * messages, as msg events or in recv replies), or the node closed it.
 * Fails the test at the deadline. */
static inline void tc_wait_replies(confab_testnet *tn, tclient *t,
                                   size_t replies, size_t msgs, unsigned ms)
{
    tc_wait w = {t, replies, msgs};
    assert_int_equal(
        confab_testnet_run_until(tn, tc_replies_done, &w, net_deadline(ms)),
        0);
}

static inline bool tc_eof_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    tclient *t = arg;
    /* Reads (and drops) whatever came before the close. */
    tc_pump(t);
    return t->eof;
}

/* Waits until the node closed t (reading whatever it sent first). */
static inline int tc_wait_eof(confab_testnet *tn, tclient *t, unsigned ms)
{
    return confab_testnet_run_until(tn, tc_eof_done, t, net_deadline(ms));
}

/* Writes t's queue while the loop runs, without reading. */
static inline bool tc_flushed(confab_testnet *tn, void *arg)
{
    (void)tn;
    tclient *t = arg;
    tc_flush(t);
    return t->out_len == 0 || t->eof;
}

/* ---- a node with a control socket ------------------------------------ */

/* Two testnets on one loop: `srv` holds node 0, which serves a control
 * socket in a fresh directory; `good` holds one well-behaved peer linked
 * to it. (A testnet's node template is the same for all its nodes, so the
 * control socket needs a network of its own.) */
typedef struct ctl_net {
    uv_loop_t loop;
    confab_testnet *srv, *good;
    char dir[64];
    char path[128];
} ctl_net;

static inline bool ctl_net_linked(confab_testnet *tn, void *arg)
{
    ctl_net *cn = arg;
    (void)tn;
    confab_peer_info info;
    return confab_peer(confab_testnet_node(cn->srv, 0),
                       confab_node_id(confab_testnet_node(cn->good, 0)),
                       &info) == 0 &&
           info.state == CONFAB_PEER_UP;
}

/* Starts both and links the good peer to the node. tune (may be NULL)
 * adjusts the node's config first. */
static inline void ctl_net_start(ctl_net *cn,
                                 void (*tune)(confab_config *c))
{
    snprintf(cn->dir, sizeof cn->dir, "/tmp/confab-ctl-XXXXXX");
    assert_non_null(mkdtemp(cn->dir));
    snprintf(cn->path, sizeof cn->path, "%s/control.sock", cn->dir);
    assert_int_equal(uv_loop_init(&cn->loop), 0);
    confab_testnet_config c;
    net_config(&c, 1);
    c.seed = 0xc0117001u;
    c.node.control_path = cn->path;
    if (tune != NULL)
        tune(&c.node);
    assert_int_equal(confab_testnet_new(&cn->loop, &c, &cn->srv), 0);
    assert_int_equal(confab_testnet_start(cn->srv), 0);
    net_config(&c, 1);
    c.seed = 0xc0117002u;
    assert_int_equal(confab_testnet_new(&cn->loop, &c, &cn->good), 0);
    assert_int_equal(confab_testnet_start(cn->good), 0);
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.1:%u",
             (unsigned)confab_node_port(confab_testnet_node(cn->srv, 0)));
    assert_int_equal(confab_node_dial(confab_testnet_node(cn->good, 0), hp),
                     0);
    /* Generous: on a loaded machine under valgrind a first handshake
     * has taken most of a minute. */
    assert_int_equal(confab_testnet_run_until(cn->srv, ctl_net_linked, cn,
                                              net_deadline(15000)),
                     0);
}

static inline confab_node *ctl_net_node(ctl_net *cn)
{
    return confab_testnet_node(cn->srv, 0);
}

static inline confab_node *ctl_net_peer(ctl_net *cn)
{
    return confab_testnet_node(cn->good, 0);
}

/* The good peer's messages that reached the node. */
static inline size_t ctl_net_received(ctl_net *cn)
{
    return confab_testnet_count(cn->srv, CONFAB_EV_MESSAGE, 0, -1);
}

/* Stops both networks; the loop must then close cleanly. */
static inline void ctl_net_stop(ctl_net *cn)
{
    assert_int_equal(confab_testnet_free(cn->good), 0);
    assert_int_equal(confab_testnet_free(cn->srv), 0);
    uv_run(&cn->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&cn->loop), 0);
    (void)rmdir(cn->dir); /* the node removed its socket */
}

static inline confab_stats ctl_net_stats(ctl_net *cn)
{
    confab_stats st;
    confab_node_stats(ctl_net_node(cn), &st);
    return st;
}

/* Sends `count` unicasts of len bytes from the good peer to the node,
 * retrying while its queue is full, and waits until all arrived. */
typedef struct ctl_sender {
    ctl_net *cn;
    size_t len, count, sent, base;
    uint8_t *body;
} ctl_sender;

static inline bool ctl_sender_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    ctl_sender *s = arg;
    while (s->sent < s->count) {
        int rc = confab_send(ctl_net_peer(s->cn),
                             confab_node_id(ctl_net_node(s->cn)), s->body,
                             s->len, NULL, NULL);
        if (rc == -EAGAIN || rc == -ENOBUFS)
            break;
        assert_int_equal(rc, 0);
        s->sent++;
    }
    return s->sent == s->count &&
           ctl_net_received(s->cn) >= s->base + s->count;
}

static inline void ctl_net_send(ctl_net *cn, size_t count, size_t len,
                                unsigned ms)
{
    ctl_sender s = {cn, len, count, 0, ctl_net_received(cn), malloc(len)};
    assert_non_null(s.body);
    memset(s.body, 'm', len);
    assert_int_equal(confab_testnet_run_until(cn->srv, ctl_sender_done, &s,
                                              net_deadline(ms)),
                     0);
    free(s.body);
}

#endif
