/* rawpeer.c: a hand-made confab peer for the network tests. */
#include "rawpeer.h"

#include "crypto/netkey.h"
#include "crypto/noise.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int rawpeer_init(rawpeer *r, const uint8_t *netkey)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (sec_init() != 0)
        return -ENOSYS;
    int rc = sec_identity_generate(&r->id);
    if (rc != 0)
        return rc;
    if (netkey != NULL) {
        memcpy(r->netkey, netkey, 32);
    } else {
        sec_netkey *k;
        rc = sec_netkey_public(&k);
        if (rc != 0)
            return rc;
        memcpy(r->netkey, k->key, 32);
        sec_netkey_free(k);
    }
    wire_frame_decoder_init(&r->dec, WIRE_MAX_FRAME);
    return 0;
}

void rawpeer_free(rawpeer *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    sec_identity_free(r->id);
    r->id = NULL;
    wire_frame_decoder_free(&r->dec);
}

int rawpeer_connect(rawpeer *r, uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(r->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -errno;
    return 0;
}

int rawpeer_send_raw(rawpeer *r, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int rawpeer_send_frame(rawpeer *r, const void *payload, size_t len)
{
    uint8_t hdr[3];
    size_t hl;
    if (len < 256) {
        hdr[0] = 0xc4;
        hdr[1] = (uint8_t)len;
        hl = 2;
    } else {
        hdr[0] = 0xc5;
        hdr[1] = (uint8_t)(len >> 8);
        hdr[2] = (uint8_t)len;
        hl = 3;
    }
    int rc = rawpeer_send_raw(r, hdr, hl);
    return rc ? rc : rawpeer_send_raw(r, payload, len);
}

int rawpeer_send_plain(rawpeer *r, const void *plain, size_t len)
{
    if (len + 16 > sizeof r->frame)
        return -EMSGSIZE;
    int rc = sec_cipher_encrypt(&r->tx, NULL, 0, plain, len, r->frame);
    return rc ? rc : rawpeer_send_frame(r, r->frame, len + 16);
}

int rawpeer_send_msg(rawpeer *r, const wire_msg *m)
{
    size_t len;
    int rc = wire_msg_encode(m, r->plain, sizeof r->plain - 16, &len);
    return rc ? rc : rawpeer_send_plain(r, r->plain, len);
}

int rawpeer_recv_frame(rawpeer *r, const uint8_t **f, size_t *len,
                       int timeout_ms)
{
    for (;;) {
        if (r->in_off < r->in_len) {
            const uint8_t *p = r->in + r->in_off;
            size_t left = r->in_len - r->in_off;
            int rc = wire_frame_decode(&r->dec, &p, &left, f, len);
            r->in_off = r->in_len - left;
            if (rc == 1) {
                /* The frame may point into r->in: copy it out first. */
                memcpy(r->frame, *f, *len);
                *f = r->frame;
                return 0;
            }
            if (rc < 0)
                return rc;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0)
            return -errno;
        ssize_t n = recv(r->fd, r->in, sizeof r->in, 0);
        if (n <= 0)
            return -EPIPE;
        r->in_len = (size_t)n;
        r->in_off = 0;
    }
}

int rawpeer_recv_msg(rawpeer *r, wire_msg *m, int timeout_ms)
{
    const uint8_t *p;
    size_t len;
    int rc = rawpeer_recv_plain(r, &p, &len, timeout_ms);
    if (rc != 0)
        return rc;
    return wire_msg_decode(p, len, m);
}

int rawpeer_wait_closed(rawpeer *r, int timeout_ms)
{
    uint8_t sink[4096];
    for (;;) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0)
            return -errno;
        ssize_t n = recv(r->fd, sink, sizeof sink, 0);
        if (n <= 0)
            return 0;
    }
}

/* Encodes our HELLO (name, port 0, groups[0..n)) for message 3. */
static int encode_hello(const char *name, const char *const *groups, size_t n,
                        uint8_t *out, size_t cap, size_t *len)
{
    wire_bytes *g = calloc(n ? n : 1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        g[i].ptr = (const uint8_t *)groups[i];
        g[i].len = (uint32_t)strlen(groups[i]);
    }
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.name.ptr = (const uint8_t *)name;
    h.name.len = (uint32_t)strlen(name);
    h.max = 1u << 24;
    h.ngroups = (uint32_t)n;
    h.groups = g;
    int rc = wire_hello_encode(&h, out, cap, len);
    free(g);
    return rc;
}

int rawpeer_handshake(rawpeer *r, const char *name)
{
    return rawpeer_handshake_groups(r, name, NULL, 0);
}

static void *job_main(void *arg)
{
    rawpeer_job *job = arg;
    job->result = job->fn(job);
    atomic_store(&job->done, 1);
    return NULL;
}

void rawpeer_job_start(rawpeer_job *job, int (*fn)(rawpeer_job *), void *arg)
{
    job->fn = fn;
    job->arg = arg;
    job->result = 0;
    atomic_store(&job->done, 0);
    pthread_create(&job->thread, NULL, job_main, job);
}

bool rawpeer_job_finished(const rawpeer_job *job)
{
    return atomic_load(&job->done) != 0;
}

int rawpeer_job_join(rawpeer_job *job)
{
    pthread_join(job->thread, NULL);
    return job->result;
}

bool rawpeer_job_finished_cb(struct confab_testnet *tn, void *job)
{
    (void)tn;
    return rawpeer_job_finished(job);
}

/* the peer table and who may join */

int rawpeer_connect_from(rawpeer *r, const char *src, uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    if (inet_pton(AF_INET, src, &a.sin_addr) != 1)
        return -EINVAL;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0)
        return -errno;
    if (bind(r->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -errno;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(r->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -errno;
    return 0;
}

int rawpeer_send_fake_peers(rawpeer *r, unsigned n, uint16_t port)
{
    if (n == 0 || n > 1024)
        return -EINVAL;
    static const uint8_t lo[4] = {127, 0, 0, 1};
    wire_peer_entry *e = calloc(n, sizeof *e);
    uint8_t(*ids)[WIRE_NODE_ID_BYTES] = calloc(n, sizeof *ids);
    int rc = e != NULL && ids != NULL ? 0 : -ENOMEM;
    if (rc == 0) {
        sec_random(ids, n * sizeof *ids);
        for (unsigned i = 0; i < n; i++) {
            e[i].id = ids[i];
            e[i].addr = lo;
            e[i].addr_len = 4;
            e[i].port = port;
        }
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_PEERS;
        m.u.peers.count = n;
        m.u.peers.entries = e;
        rc = rawpeer_send_msg(r, &m);
    }
    free(e);
    free(ids);
    return rc;
}
int rawpeer_send_ping(rawpeer *r, uint64_t n, const void *data, size_t len)
{
    static const uint8_t zeros[WIRE_MAX_PING_DATA];
    if (len > sizeof zeros)
        return -EMSGSIZE;
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PING;
    m.u.ping.n = n;
    m.u.ping.has_data = 1;
    m.u.ping.data.ptr = data != NULL ? data : zeros;
    m.u.ping.data.len = (uint32_t)len;
    return rawpeer_send_msg(r, &m);
}

int rawpeer_send_body(rawpeer *r, uint8_t k, const uint8_t id[WIRE_ID_BYTES],
                      uint64_t seq, const char *group, const uint8_t *body,
                      size_t len, size_t part)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_DATA;
    wire_data *d = &m.u.data;
    memcpy(d->id, id, WIRE_ID_BYTES);
    d->kind = k;
    d->seq = seq;
    d->ts = 1;
    if (group != NULL) {
        d->group.ptr = (const uint8_t *)group;
        d->group.len = (uint32_t)strlen(group);
    }
    size_t first = len < part ? len : part;
    d->body.ptr = body;
    d->body.len = (uint32_t)first;
    d->fragmented = first < len;
    d->size = len;
    int rc = rawpeer_send_msg(r, &m);
    for (size_t off = first; rc == 0 && off < len;) {
        size_t n = len - off < part ? len - off : part;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_FRAG;
        memcpy(m.u.frag.id, id, WIRE_ID_BYTES);
        m.u.frag.off = off;
        m.u.frag.data.ptr = body + off;
        m.u.frag.data.len = (uint32_t)n;
        rc = rawpeer_send_msg(r, &m);
        off += n;
    }
    return rc;
}

int rawpeer_wait_hangup(rawpeer *r, int timeout_ms)
{
    /* POLLRDHUP reports the node's FIN even with unread bytes before it;
     * POLLHUP and POLLERR a reset. */
    struct pollfd pfd = {.fd = r->fd, .events = POLLRDHUP};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0)
        return -ETIMEDOUT;
    if (pr < 0)
        return -errno;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? 0 : -EPROTO;
}

/* added for tests/fuzz/fuzz_link.c */

int rawpeer_handshake_hello(rawpeer *r, const uint8_t *hello, size_t hlen)
{
    sec_noise *hs = NULL;
    sec_noise_config c;
    memset(&c, 0, sizeof c);
    c.pattern = SEC_NOISE_XXPSK0;
    c.initiator = 1;
    c.prologue = (const uint8_t *)"confab/1";
    c.prologue_len = 8;
    c.static_sk = r->id->sk;
    c.psk = r->netkey;
    int rc = sec_noise_new(&c, &hs);
    uint8_t *msg = malloc(WIRE_MAX_FRAME);
    size_t len, plen;
    const uint8_t *f;
    if (rc == 0 && msg == NULL)
        rc = -ENOMEM;
    if (rc != 0)
        goto out;
    /* -> psk, e */
    rc = sec_noise_write(hs, NULL, 0, msg, WIRE_MAX_FRAME, &len);
    if (rc == 0)
        rc = rawpeer_send_frame(r, msg, len);
    if (rc != 0)
        goto out;
    /* <- e, ee, s, es + the node's HELLO */
    rc = rawpeer_recv_frame(r, &f, &len, 5000);
    if (rc == 0)
        rc = sec_noise_read(hs, f, len, r->hello_buf, sizeof r->hello_buf,
                            &plen);
    if (rc == 0)
        rc = wire_hello_decode(r->hello_buf, plen, &r->hello);
    if (rc != 0)
        goto out;
    memcpy(r->peer_id, sec_noise_remote_static(hs), sizeof r->peer_id);
    /* -> s, se + the given HELLO */
    rc = sec_noise_write(hs, hello, hlen, msg, WIRE_MAX_FRAME, &len);
    if (rc == 0)
        rc = rawpeer_send_frame(r, msg, len);
    if (rc == 0)
        rc = sec_noise_split(hs, &r->tx, &r->rx);
out:
    free(msg);
    sec_noise_free(hs);
    return rc;
}

int rawpeer_poll_frame(rawpeer *r, const uint8_t **f, size_t *len)
{
    for (;;) {
        if (r->in_off < r->in_len) {
            const uint8_t *p = r->in + r->in_off;
            size_t left = r->in_len - r->in_off;
            int rc = wire_frame_decode(&r->dec, &p, &left, f, len);
            r->in_off = r->in_len - left;
            if (rc == 1) {
                memcpy(r->frame, *f, *len);
                *f = r->frame;
                return 0;
            }
            if (rc < 0)
                return rc;
        }
        ssize_t n = recv(r->fd, r->in, sizeof r->in, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        if (n <= 0)
            return -EPIPE;
        r->in_len = (size_t)n;
        r->in_off = 0;
    }
}

/* The whole handshake as rawpeer_handshake(), with a HELLO that lists
 * groups[0..n) (a member of those groups from its first message). */
int rawpeer_handshake_groups(rawpeer *r, const char *name,
                             const char *const *groups, size_t n)
{
    size_t cap = 256 + n * (WIRE_MAX_GROUP + 3), hlen;
    uint8_t *hello = malloc(cap);
    int rc = hello != NULL ? encode_hello(name, groups, n, hello, cap, &hlen)
                           : -ENOMEM;
    if (rc == 0)
        rc = rawpeer_handshake_hello(r, hello, hlen);
    free(hello);
    return rc;
}

/* Sends JOIN (join true) or LEAVE for group. */
int rawpeer_send_group(rawpeer *r, bool join, const char *group)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = join ? WIRE_T_JOIN : WIRE_T_LEAVE;
    m.u.group.group.ptr = (const uint8_t *)group;
    m.u.group.group.len = (uint32_t)strlen(group);
    return rawpeer_send_msg(r, &m);
}

/* added for tests/net/test_request.c */
int rawpeer_send_unicast_ct(rawpeer *r, uint64_t seq, const char *ct,
                            const uint8_t *body, size_t len)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_DATA;
    wire_data *d = &m.u.data;
    for (size_t i = 0; i < WIRE_ID_BYTES; i++)
        d->id[i] = (uint8_t)(seq * 31u + i);
    d->kind = WIRE_K_UNICAST;
    d->seq = seq;
    d->ts = 1;
    d->has_ct = 1;
    d->ct.ptr = (const uint8_t *)ct;
    d->ct.len = (uint32_t)strlen(ct);
    d->body.ptr = body;
    d->body.len = (uint32_t)len;
    d->size = len;
    return rawpeer_send_msg(r, &m);
}

/* added for tests/net/test_relay.c */
int rawpeer_send_msgs_at_once(rawpeer *r, const wire_msg *m, size_t n)
{
    /* Each frame: 3 header bytes, the ciphertext, its 16-byte tag. */
    size_t cap = n * (sizeof r->frame + 3), used = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = 0;
        rc = wire_msg_encode(&m[i], r->plain, sizeof r->plain - 16, &len);
        size_t clen = len + 16, hl = clen < 256 ? 2 : 3;
        if (rc == 0)
            rc = sec_cipher_encrypt(&r->tx, NULL, 0, r->plain, len,
                                    buf + used + hl);
        if (rc == 0) {
            /* bin 8 below 256 bytes, bin 16 otherwise (section 2) */
            buf[used] = hl == 2 ? 0xc4 : 0xc5;
            if (hl == 3)
                buf[used + 1] = (uint8_t)(clen >> 8);
            buf[used + hl - 1] = (uint8_t)clen;
            used += hl + clen;
        }
    }
    if (rc == 0)
        rc = rawpeer_send_raw(r, buf, used);
    free(buf);
    return rc;
}

/* added for tests/net/test_pex_batch.c */
int rawpeer_handshake_port(rawpeer *r, const char *name, uint16_t port)
{
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.name.ptr = (const uint8_t *)name;
    h.name.len = (uint32_t)strlen(name);
    h.port = port;
    h.max = 1u << 24;
    uint8_t hello[256];
    size_t hlen;
    int rc = wire_hello_encode(&h, hello, sizeof hello, &hlen);
    return rc != 0 ? rc : rawpeer_handshake_hello(r, hello, hlen);
}

int rawpeer_send_peer_entry(rawpeer *r, const uint8_t *id, uint16_t port)
{
    static const uint8_t loopback[4] = {127, 0, 0, 1};
    wire_peer_entry e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.addr = loopback;
    e.addr_len = 4;
    e.port = port;
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PEERS;
    m.u.peers.count = 1;
    m.u.peers.entries = &e;
    return rawpeer_send_msg(r, &m);
}

/* added for tests/net/test_batch.c */
int rawpeer_handshake_batch(rawpeer *r, const char *name)
{
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.name.ptr = (const uint8_t *)name;
    h.name.len = (uint32_t)strlen(name);
    h.max = 1u << 24;
    h.batch = 1;
    uint8_t hello[256];
    size_t hlen;
    int rc = wire_hello_encode(&h, hello, sizeof hello, &hlen);
    return rc != 0 ? rc : rawpeer_handshake_hello(r, hello, hlen);
}

int rawpeer_send_batch(rawpeer *r, const wire_msg *m, size_t n,
                       const void *tail, size_t tail_len)
{
    size_t used = 0, cap = sizeof r->plain - 16;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        int rc = wire_msg_encode(&m[i], r->plain + used, cap - used, &len);
        if (rc != 0)
            return rc;
        used += len;
    }
    if (tail_len > cap - used)
        return -EMSGSIZE;
    if (tail_len > 0)
        memcpy(r->plain + used, tail, tail_len);
    return rawpeer_send_plain(r, r->plain, used + tail_len);
}

int rawpeer_recv_plain(rawpeer *r, const uint8_t **p, size_t *len,
                       int timeout_ms)
{
    const uint8_t *f;
    size_t flen;
    int rc = rawpeer_recv_frame(r, &f, &flen, timeout_ms);
    if (rc != 0)
        return rc;
    if (flen < 16)
        return -EPROTO;
    rc = sec_cipher_decrypt(&r->rx, NULL, 0, f, flen, r->plain);
    if (rc != 0)
        return rc;
    *p = r->plain;
    *len = flen - 16;
    return 0;
}
