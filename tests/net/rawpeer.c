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
    const uint8_t *f;
    size_t len;
    int rc = rawpeer_recv_frame(r, &f, &len, timeout_ms);
    if (rc != 0)
        return rc;
    if (len < 16)
        return -EPROTO;
    rc = sec_cipher_decrypt(&r->rx, NULL, 0, f, len, r->plain);
    if (rc != 0)
        return rc;
    return wire_msg_decode(r->plain, len - 16, m);
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

int rawpeer_handshake(rawpeer *r, const char *name)
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
    uint8_t msg[2048];
    size_t len, plen;
    const uint8_t *f;
    if (rc != 0)
        goto out;
    /* -> psk, e */
    rc = sec_noise_write(hs, NULL, 0, msg, sizeof msg, &len);
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
    /* -> s, se + our HELLO */
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.name.ptr = (const uint8_t *)name;
    h.name.len = (uint32_t)strlen(name);
    h.max = 1u << 24;
    uint8_t hello[256];
    size_t hlen;
    rc = wire_hello_encode(&h, hello, sizeof hello, &hlen);
    if (rc == 0)
        rc = sec_noise_write(hs, hello, hlen, msg, sizeof msg, &len);
    if (rc == 0)
        rc = rawpeer_send_frame(r, msg, len);
    if (rc == 0)
        rc = sec_noise_split(hs, &r->tx, &r->rx);
out:
    sec_noise_free(hs);
    return rc;
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

/* The whole handshake as rawpeer_handshake(), with a HELLO that lists
 * groups[0..n) (a member of those groups from its first message). */
int rawpeer_handshake_groups(rawpeer *r, const char *name,
                             const char *const *groups, size_t n)
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
    wire_bytes *g = calloc(n ? n : 1, sizeof *g);
    size_t cap = 256 + n * (WIRE_MAX_GROUP + 3);
    uint8_t *hello = malloc(cap);
    uint8_t *msg = malloc(cap + 128);
    size_t len, plen, hlen;
    const uint8_t *f;
    int rc = g && hello && msg ? sec_noise_new(&c, &hs) : -ENOMEM;
    if (rc != 0)
        goto out;
    /* -> psk, e */
    rc = sec_noise_write(hs, NULL, 0, msg, cap + 128, &len);
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
    /* -> s, se + our HELLO */
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
    rc = wire_hello_encode(&h, hello, cap, &hlen);
    if (rc == 0)
        rc = sec_noise_write(hs, hello, hlen, msg, cap + 128, &len);
    if (rc == 0)
        rc = rawpeer_send_frame(r, msg, len);
    if (rc == 0)
        rc = sec_noise_split(hs, &r->tx, &r->rx);
out:
    sec_noise_free(hs);
    free(g);
    free(hello);
    free(msg);
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
