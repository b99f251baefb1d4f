/* bench_flood.c: a node under every member flood at once keeps its memory
 * bounded, keeps serving a good peer and keeps answering its control
 * socket (issue 10's acceptance; docs/SECURITY.md, "Bounds").
 *
 * The victim is a node with a home (store, inbox, control socket) in a
 * child process of its own, so its resident memory is its own. A second
 * child runs a good peer that sends the victim a unicast every 20 ms. The
 * parent attacks from threads, each a member that completed a valid
 * handshake (or a stranger, for the handshake slots), all at once:
 *
 *   ping      PINGs with 1 KiB of data as fast as it can, never reading
 *   peers     PEERS messages of 1,024 made-up ids at made-up addresses
 *   beacons   validly tagged beacons with fresh ids, 2,000 a second
 *   partial   16 identities, each the first part of a 16 MiB body
 *   groups    a member that joins 20,000 groups
 *   slots     300 idle TCP connections from 127.0.0.2 (never a handshake)
 *
 * Every 100 ms the parent reads the victim's VmRSS and asks it for its
 * status over the control socket, timing the reply. At the end it prints
 * the victim's memory over its baseline (the ceiling: 64 MiB with default
 * limits), the longest gap between the good peer's messages as the victim
 * received them (target: at most 1 s), the slowest status reply, which
 * attackers the node cut off, and the victim's counters.
 *
 * Like the other benchmarks it informs and does not gate: it exits
 * non-zero only when it cannot run. BENCH_SCALE scales the flood's
 * length (10 s at 1; at least 2 s). Traffic goes to loopback only. */
#include "node/confab.h"

#include "../net/rawpeer.h"

#include "crypto/netkey.h"
#include "crypto/tag.h"
#include "wire/beacon.h"
#include "wire/ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CEILING_MIB 64.0
#define GOOD_EVERY_MS 20u
#define PARTIALS 16u
#define SLOTS 300u
#define GROUPS 20000u

typedef struct victim_info {
    uint16_t port;
    uint8_t id[CONFAB_ID_BYTES];
} victim_info;

typedef struct victim_result {
    uint64_t good_msgs;
    uint64_t max_gap_us;
} victim_result;

static atomic_int stop_flag;

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000u;
}

/* ---- the victim (a child process) -------------------------------------- */

typedef struct victim {
    uv_loop_t loop;
    uv_signal_t sigterm;
    confab_node *node;
    victim_result res;
    uint64_t last_us;
    int resfd;
} victim;

static void victim_event(confab_node *node, const confab_event *ev,
                         void *user)
{
    (void)node;
    victim *v = user;
    if (ev->type != CONFAB_EV_MESSAGE || ev->message == NULL ||
        strcmp(ev->message->from_name, "good") != 0)
        return;
    uint64_t t = now_us();
    if (v->last_us != 0 && t - v->last_us > v->res.max_gap_us)
        v->res.max_gap_us = t - v->last_us;
    v->last_us = t;
    v->res.good_msgs++;
}

static void victim_stopped(confab_node *node, void *user)
{
    victim *v = user;
    (void)node;
    if (write(v->resfd, &v->res, sizeof v->res) != (ssize_t)sizeof v->res)
        perror("bench_flood: victim result");
    uv_close((uv_handle_t *)&v->sigterm, NULL);
}

static void victim_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    victim *v = h->data;
    uv_signal_stop(h);
    if (confab_node_stop(v->node, victim_stopped, v) != 0)
        _exit(3);
}

static void victim_log(confab_node *node, confab_log_level level,
                       const char *msg, void *user)
{
    (void)node;
    (void)user;
    if (getenv("BENCH_LOG") != NULL || level == CONFAB_LOG_ERROR)
        fprintf(stderr, "victim: %s\n", msg);
}

static void victim_main(const char *home, uint16_t disc_port, int infofd,
                        int resfd)
{
    static const char *const bcast[] = {"127.255.255.255"};
    victim v;
    memset(&v, 0, sizeof v);
    v.resfd = resfd;
    char ctl[512];
    snprintf(ctl, sizeof ctl, "%s/control.sock", home);
    confab_config c;
    confab_config_init(&c);
    c.name = "victim";
    c.home = home;
    c.control_path = ctl;
    c.bind_addr = "127.0.0.1";
    c.discovery = 1;
    c.discovery_port = disc_port;
    c.discovery_bind = "0.0.0.0";
    c.broadcast_addrs = bcast;
    c.n_broadcast_addrs = 1;
    c.event_cb = victim_event;
    c.log_cb = victim_log;
    c.log_level = getenv("BENCH_LOG") ? CONFAB_LOG_INFO : CONFAB_LOG_ERROR;
    c.user = &v;
    if (uv_loop_init(&v.loop) != 0 ||
        confab_node_new(&v.loop, &c, &v.node) != 0 ||
        confab_node_start(v.node) != 0)
        _exit(2);
    victim_info info;
    info.port = confab_node_port(v.node);
    memcpy(info.id, confab_node_id(v.node), CONFAB_ID_BYTES);
    uv_signal_init(&v.loop, &v.sigterm);
    v.sigterm.data = &v;
    uv_signal_start(&v.sigterm, victim_signal, SIGTERM);
    if (write(infofd, &info, sizeof info) != (ssize_t)sizeof info)
        _exit(2);
    uv_run(&v.loop, UV_RUN_DEFAULT);
    confab_node_free(v.node);
    _exit(0);
}

/* ---- the good peer (a child process) ----------------------------------- */

typedef struct good {
    uv_loop_t loop;
    uv_timer_t timer;
    uv_signal_t sigterm;
    confab_node *node;
    uint8_t to[CONFAB_ID_BYTES];
    uint64_t n;
} good;

static void good_tick(uv_timer_t *t)
{
    good *g = t->data;
    char body[64];
    int len = snprintf(body, sizeof body, "good %" PRIu64, g->n);
    if (confab_send(g->node, g->to, body, (size_t)len, NULL, NULL) == 0)
        g->n++;
}

static void good_stopped(confab_node *node, void *user)
{
    good *g = user;
    (void)node;
    uv_close((uv_handle_t *)&g->sigterm, NULL);
    uv_close((uv_handle_t *)&g->timer, NULL);
}

static void good_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    good *g = h->data;
    uv_signal_stop(h);
    uv_timer_stop(&g->timer);
    if (confab_node_stop(g->node, good_stopped, g) != 0)
        _exit(3);
}

static void good_main(const victim_info *vi)
{
    good g;
    memset(&g, 0, sizeof g);
    memcpy(g.to, vi->id, CONFAB_ID_BYTES);
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%u", vi->port);
    const char *statics[] = {peer};
    confab_config c;
    confab_config_init(&c);
    c.name = "good";
    c.bind_addr = "127.0.0.1";
    c.static_peers = statics;
    c.n_static_peers = 1;
    c.user = &g;
    if (uv_loop_init(&g.loop) != 0 ||
        confab_node_new(&g.loop, &c, &g.node) != 0 ||
        confab_node_start(g.node) != 0)
        _exit(2);
    uv_timer_init(&g.loop, &g.timer);
    g.timer.data = &g;
    uv_signal_init(&g.loop, &g.sigterm);
    g.sigterm.data = &g;
    uv_signal_start(&g.sigterm, good_signal, SIGTERM);
    /* Unicasts to a peer not yet linked wait in the outbox: start now. */
    uv_timer_start(&g.timer, good_tick, GOOD_EVERY_MS, GOOD_EVERY_MS);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    confab_node_free(g.node);
    _exit(0);
}

/* ---- the control socket ------------------------------------------------ */

typedef struct ctl_conn {
    int fd;
    wire_ctl_reader rd;
    uint8_t in[65536];
} ctl_conn;

static int ctl_open(ctl_conn *c, const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    if (pl >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, pl + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -errno;
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -errno;
    wire_ctl_reader_init(&c->rd, (size_t)64 << 20);
    return 0;
}

/* Sends {"op":"status","rid":rid} and waits up to timeout_ms for its
 * reply: 0 with the reply's stats map copied to stats (if not NULL). */
static int ctl_status(ctl_conn *c, uint64_t rid, int timeout_ms,
                      uint8_t **stats_copy, size_t *stats_len)
{
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 2);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "status");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, rid);
    uint8_t frame[256];
    size_t flen;
    int rc = wire_ctl_finish(&b);
    if (rc == 0)
        rc = wire_ctl_frame(b.buf, b.len, frame, sizeof frame, &flen);
    wire_ctl_builder_free(&b);
    if (rc != 0)
        return rc;
    if (send(c->fd, frame, flen, MSG_NOSIGNAL) != (ssize_t)flen)
        return -EPIPE;
    uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        uint64_t t = now_us();
        if (t >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)((deadline - t) / 1000u) + 1);
        if (pr <= 0)
            continue;
        ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
        if (n <= 0)
            return -EPIPE;
        const uint8_t *d = c->in;
        size_t left = (size_t)n;
        const uint8_t *msg;
        size_t mlen;
        while ((rc = wire_ctl_read(&c->rd, &d, &left, &msg, &mlen)) == 1) {
            wire_ctl_map m, st;
            uint64_t got;
            if (wire_ctl_parse(msg, mlen, &m) != 0 ||
                wire_ctl_get_uint(&m, "rid", &got) != 0 || got != rid)
                continue;
            if (stats_copy != NULL &&
                wire_ctl_get_map(&m, "stats", &st) == 0) {
                *stats_copy = malloc(mlen);
                if (*stats_copy != NULL) {
                    memcpy(*stats_copy, msg, mlen);
                    *stats_len = mlen;
                }
            }
            return 0;
        }
        if (rc < 0)
            return rc;
    }
}

static void print_stats(const uint8_t *msg, size_t len)
{
    wire_ctl_map m, st;
    if (wire_ctl_parse(msg, len, &m) != 0 ||
        wire_ctl_get_map(&m, "stats", &st) != 0)
        return;
    wire_ctl_walk w;
    wire_bytes key;
    wire_mp_reader *val;
    wire_ctl_walk_init(&st, &w);
    printf("victim counters:");
    int col = 0;
    while (wire_ctl_walk_next(&w, &key, &val) == 1) {
        uint64_t v = 0;
        if (wire_mp_read_uint(val, &v) != 0 || v == 0)
            continue;
        printf("%s %.*s=%" PRIu64, col++ % 4 == 0 ? "\n " : "", (int)key.len,
               (const char *)key.ptr, v);
    }
    printf("\n");
}

/* ---- the attackers (threads of the parent) ----------------------------- */

typedef struct attacker {
    const char *what;
    uint16_t port;
    uint16_t disc_port;
    int cut;       /* the node closed our connection(s) */
    uint64_t sent; /* messages, beacons or connections */
    pthread_t thread;
} attacker;

static void set_send_timeout(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A member: 0 with r handshaken, or an error. */
static int member(rawpeer *r, uint16_t port, const char *name)
{
    int rc = rawpeer_init(r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(r, port);
    if (rc == 0)
        rc = rawpeer_handshake(r, name);
    if (rc == 0)
        set_send_timeout(r->fd, 100);
    return rc;
}

/* Sends m until it goes or the flood ends: 1 sent, 0 flood over, -1 cut. */
static int send_until(rawpeer *r, const wire_msg *m)
{
    size_t len;
    if (wire_msg_encode(m, r->plain, sizeof r->plain - 16, &len) != 0 ||
        sec_cipher_encrypt(&r->tx, NULL, 0, r->plain, len, r->frame) != 0)
        return -1;
    uint8_t hdr[3] = {0xc5, (uint8_t)((len + 16) >> 8), (uint8_t)(len + 16)};
    const uint8_t *parts[2] = {hdr, r->frame};
    size_t lens[2] = {3, len + 16};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            if (atomic_load(&stop_flag))
                return 0;
            ssize_t n = send(r->fd, parts[i] + off, lens[i] - off,
                             MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            else
                return -1;
        }
    }
    return 1;
}

/* Holds a connection, never reading, until the flood ends: 1 if the node
 * closed it meanwhile. */
static int hold(int fd)
{
    while (!atomic_load(&stop_flag)) {
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        if (poll(&p, 1, 50) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return 1;
    }
    return 0;
}

static void *attack_ping(void *arg)
{
    attacker *a = arg;
    rawpeer *r = malloc(sizeof *r);
    if (r == NULL || member(r, a->port, "pinger") != 0)
        goto out;
    uint8_t data[WIRE_MAX_PING_DATA];
    memset(data, 'p', sizeof data);
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PING;
    m.u.ping.has_data = 1;
    m.u.ping.data.ptr = data;
    m.u.ping.data.len = sizeof data;
    for (;;) {
        m.u.ping.n = a->sent + 1;
        int rc = send_until(r, &m);
        if (rc < 0)
            a->cut = 1;
        if (rc <= 0)
            break;
        a->sent++;
    }
out:
    if (r != NULL)
        rawpeer_free(r);
    free(r);
    return NULL;
}

static void *attack_peers(void *arg)
{
    attacker *a = arg;
    rawpeer *r = malloc(sizeof *r);
    static uint8_t ids[WIRE_MAX_PEERS][WIRE_NODE_ID_BYTES];
    wire_peer_entry *e = calloc(WIRE_MAX_PEERS, sizeof *e);
    uint8_t addr[4] = {127, 0, 0, 1};
    if (r == NULL || e == NULL || member(r, a->port, "gossip") != 0)
        goto out;
    while (!atomic_load(&stop_flag)) {
        randombytes_buf(ids, sizeof ids);
        for (size_t i = 0; i < WIRE_MAX_PEERS; i++) {
            e[i].id = ids[i];
            e[i].addr = addr;
            e[i].addr_len = 4;
            e[i].port = (uint16_t)(1 + i); /* nothing listens there */
        }
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_PEERS;
        m.u.peers.count = WIRE_MAX_PEERS;
        m.u.peers.entries = e;
        int rc = send_until(r, &m);
        if (rc < 0)
            a->cut = 1;
        if (rc <= 0)
            break;
        a->sent++;
        /* Twenty such messages a second is already 20,000 made-up peers. */
        usleep(50000);
    }
out:
    if (r != NULL)
        rawpeer_free(r);
    free(r);
    free(e);
    return NULL;
}

static void *attack_beacons(void *arg)
{
    attacker *a = arg;
    sec_netkey *k = NULL;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    if (fd < 0 || sec_netkey_public(&k) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0)
        goto out;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(a->disc_port);
    to.sin_addr.s_addr = htonl(0x7fffffffu); /* 127.255.255.255 */
    while (!atomic_load(&stop_flag)) {
        wire_beacon b;
        memset(&b, 0, sizeof b);
        b.version = 1;
        randombytes_buf(b.id, sizeof b.id);
        b.port = (uint16_t)(1000 + (a->sent % 1000));
        b.name.ptr = (const uint8_t *)"ghost";
        b.name.len = 5;
        b.boot = a->sent + 1;
        uint8_t buf[WIRE_BEACON_MAX];
        size_t tagged, len;
        uint8_t tag[WIRE_BEACON_TAG_BYTES];
        if (wire_beacon_encode(&b, buf, sizeof buf, &tagged) != 0)
            break;
        sec_beacon_tag(k->key, buf, tagged, tag);
        if (wire_beacon_append_tag(buf, sizeof buf, tagged, tag, &len) != 0)
            break;
        if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to) > 0)
            a->sent++;
        usleep(500); /* about 2,000 a second */
    }
out:
    if (k != NULL)
        sec_netkey_free(k);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void *attack_partial(void *arg)
{
    attacker *a = arg;
    rawpeer *r[PARTIALS];
    memset(r, 0, sizeof r);
    static uint8_t chunk[60000];
    memset(chunk, 'x', sizeof chunk);
    for (unsigned i = 0; i < PARTIALS && !atomic_load(&stop_flag); i++) {
        r[i] = malloc(sizeof *r[i]);
        if (r[i] == NULL || member(r[i], a->port, "hoarder") != 0)
            break;
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_DATA;
        randombytes_buf(m.u.data.id, sizeof m.u.data.id);
        m.u.data.kind = WIRE_K_BROADCAST;
        m.u.data.seq = 1;
        m.u.data.body.ptr = chunk;
        m.u.data.body.len = sizeof chunk;
        m.u.data.fragmented = 1;
        m.u.data.size = 16u << 20;
        if (send_until(r[i], &m) == 1)
            a->sent++;
    }
    int cut = 0;
    for (unsigned i = 0; i < PARTIALS; i++)
        if (r[i] != NULL && r[i]->fd >= 0)
            cut += hold(r[i]->fd);
    a->cut = cut;
    for (unsigned i = 0; i < PARTIALS; i++) {
        if (r[i] != NULL)
            rawpeer_free(r[i]);
        free(r[i]);
    }
    return NULL;
}

static void *attack_groups(void *arg)
{
    attacker *a = arg;
    rawpeer *r = malloc(sizeof *r);
    if (r == NULL || member(r, a->port, "joiner") != 0)
        goto out;
    for (unsigned i = 0; i < GROUPS && !atomic_load(&stop_flag); i++) {
        char g[32];
        int len = snprintf(g, sizeof g, "group-%u", i);
        wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_T_JOIN;
        m.u.group.group.ptr = (const uint8_t *)g;
        m.u.group.group.len = (uint32_t)len;
        int rc = send_until(r, &m);
        if (rc < 0)
            a->cut = 1;
        if (rc <= 0)
            break;
        a->sent++;
    }
    if (!a->cut)
        a->cut = hold(r->fd);
out:
    if (r != NULL)
        rawpeer_free(r);
    free(r);
    return NULL;
}

static void *attack_slots(void *arg)
{
    attacker *a = arg;
    int fds[SLOTS];
    unsigned n = 0;
    for (; n < SLOTS && !atomic_load(&stop_flag); n++) {
        struct sockaddr_in from, to;
        memset(&from, 0, sizeof from);
        from.sin_family = AF_INET;
        from.sin_addr.s_addr = htonl(0x7f000002u); /* 127.0.0.2 */
        to = from;
        to.sin_port = htons(a->port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[n] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[n] < 0)
            break;
        if (bind(fds[n], (struct sockaddr *)&from, sizeof from) != 0 ||
            connect(fds[n], (struct sockaddr *)&to, sizeof to) != 0) {
            close(fds[n]);
            break;
        }
        a->sent++;
    }
    /* Held until the flood ends (or the node drops them). */
    int cut = 0;
    while (!atomic_load(&stop_flag)) {
        cut = 0;
        for (unsigned i = 0; i < n; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLRDHUP};
            if (poll(&p, 1, 0) > 0)
                cut++;
        }
        usleep(100000);
    }
    a->cut = cut;
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
    return NULL;
}

/* ---- the parent -------------------------------------------------------- */

static long rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static double scale(void)
{
    const char *s = getenv("BENCH_SCALE");
    double v = s != NULL ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

static int wait_child(pid_t pid, int secs)
{
    for (int i = 0; i < secs * 20; i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    double flood_s = 10.0 * scale();
    if (flood_s < 2.0)
        flood_s = 2.0;
    char home[] = "/tmp/confab-bench-flood-XXXXXX";
    if (mkdtemp(home) == NULL)
        return 1;
    char ctl_path[512];
    snprintf(ctl_path, sizeof ctl_path, "%s/control.sock", home);
    uint16_t disc_port = (uint16_t)(40000 + randombytes_uniform(20000));

    int infop[2], resp[2];
    if (pipe(infop) != 0 || pipe(resp) != 0)
        return 1;
    pid_t vpid = fork();
    if (vpid == 0) {
        close(infop[0]);
        close(resp[0]);
        victim_main(home, disc_port, infop[1], resp[1]);
    }
    close(infop[1]);
    close(resp[1]);
    victim_info vi;
    if (read(infop[0], &vi, sizeof vi) != (ssize_t)sizeof vi) {
        fprintf(stderr, "bench_flood: the victim did not start\n");
        return 1;
    }
    pid_t gpid = fork();
    if (gpid == 0)
        good_main(&vi);

    ctl_conn *cc = calloc(1, sizeof *cc);
    if (cc == NULL || ctl_open(cc, ctl_path) != 0) {
        fprintf(stderr, "bench_flood: cannot reach the control socket\n");
        kill(vpid, SIGKILL);
        kill(gpid, SIGKILL);
        return 1;
    }
    /* Let the good link come up and the victim settle: a second of
     * normal traffic, then the baseline. */
    uint64_t rid = 1;
    uint64_t t_settle = now_us() + 1000000u;
    while (now_us() < t_settle)
        (void)ctl_status(cc, rid++, 1000, NULL, NULL);
    long base = rss_kib(vpid);

    attacker at[] = {
        {.what = "ping"},   {.what = "peers"},  {.what = "beacons"},
        {.what = "partial"}, {.what = "groups"}, {.what = "slots"},
    };
    void *(*fn[])(void *) = {attack_ping,    attack_peers,  attack_beacons,
                             attack_partial, attack_groups, attack_slots};
    size_t na = sizeof at / sizeof at[0];
    for (size_t i = 0; i < na; i++) {
        at[i].port = vi.port;
        at[i].disc_port = disc_port;
        pthread_create(&at[i].thread, NULL, fn[i], &at[i]);
    }
    long peak = base;
    uint64_t worst_ctl_us = 0, ctl_ok = 0, ctl_fail = 0;
    uint64_t t_end = now_us() + (uint64_t)(flood_s * 1e6);
    while (now_us() < t_end) {
        uint64_t t0 = now_us();
        if (ctl_status(cc, rid++, 5000, NULL, NULL) == 0) {
            ctl_ok++;
            if (now_us() - t0 > worst_ctl_us)
                worst_ctl_us = now_us() - t0;
        } else {
            ctl_fail++;
        }
        long r = rss_kib(vpid);
        if (r > peak)
            peak = r;
        uint64_t spent = now_us() - t0;
        if (spent < 100000u)
            usleep((useconds_t)(100000u - spent));
    }
    uint8_t *stats = NULL;
    size_t stats_len = 0;
    (void)ctl_status(cc, rid++, 5000, &stats, &stats_len);
    atomic_store(&stop_flag, 1);
    for (size_t i = 0; i < na; i++)
        pthread_join(at[i].thread, NULL);
    close(cc->fd);
    wire_ctl_reader_free(&cc->rd);
    free(cc);

    kill(gpid, SIGTERM);
    kill(vpid, SIGTERM);
    victim_result vr;
    memset(&vr, 0, sizeof vr);
    struct pollfd p = {.fd = resp[0], .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0 ||
        read(resp[0], &vr, sizeof vr) != (ssize_t)sizeof vr)
        fprintf(stderr, "bench_flood: the victim did not stop in time\n");
    int vrc = wait_child(vpid, 10), grc = wait_child(gpid, 10);

    double over_mib = (double)(peak - base) / 1024.0;
    printf("flood: %.1f s of six member floods at once against one node\n",
           flood_s);
    printf("victim RSS: baseline %.1f MiB, peak %.1f MiB, +%.1f MiB "
           "(ceiling +%.0f MiB: %s)\n",
           (double)base / 1024.0, (double)peak / 1024.0, over_mib,
           CEILING_MIB, over_mib <= CEILING_MIB ? "met" : "MISSED");
    printf("good peer: %" PRIu64 " unicasts received (one sent every %u "
           "ms), longest gap %.0f ms (target 1000 ms: %s)\n",
           vr.good_msgs, GOOD_EVERY_MS, (double)vr.max_gap_us / 1000.0,
           vr.good_msgs > 0 && vr.max_gap_us <= 1000000u ? "met" : "MISSED");
    printf("control socket: %" PRIu64 " status replies, %" PRIu64
           " missing, slowest %.1f ms\n",
           ctl_ok, ctl_fail, (double)worst_ctl_us / 1000.0);
    for (size_t i = 0; i < na; i++)
        printf("attacker %-8s sent %8" PRIu64 "  cut by the node: %d\n",
               at[i].what, at[i].sent, at[i].cut);
    if (stats != NULL)
        print_stats(stats, stats_len);
    free(stats);
    printf("children exited %d (victim) and %d (good peer)\n", vrc, grc);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_flood: could not remove %s\n", home);
    return vrc == 0 ? 0 : 1;
}
