/* fuzz_link.c: what a member sends over an established link, through the
 * node's per-link state machine (node/conn.c, data.c, peer.c, pex.c,
 * groups.c, delivery.c) along the true path: a real node, a real TCP
 * connection on 127.0.0.1, a valid Noise handshake by a raw peer
 * (tests/net/rawpeer.c), and every message encrypted with the raw peer's
 * transport cipher, so the node decrypts, decodes and handles it as it
 * would a member's.
 *
 * The input is a sequence of msgpack objects, split with the msgpack
 * walker (wire_mp_skip); bytes at the end that are no whole object are
 * sent as one last message. If the first object is a valid HELLO (section
 * 3.2) it is the raw peer's HELLO in the handshake; otherwise the raw peer
 * says a default HELLO (in group "ops", epoch 1) and the first object is a
 * message too. Each message is one transport message (DATA, FRAG, ACK,
 * PING, PONG, JOIN, LEAVE, PEERS, BYE, or anything else), plaintext cut to
 * 65519 bytes; a nil (c0) between two objects glues the second to the
 * first, in one transport message: a batch (section 4, #18).
 *
 * Each input gets a fresh node: a home in a scratch directory (so delivery
 * and the inbox write the store), a member of "ops", with two unicasts for
 * the raw peer in its outbox once the link is up (so ACKs have something
 * to acknowledge). Then the raw peer sends every message, closes its
 * sending side, and reads until the node closes the link; the node is
 * stopped and freed.
 *
 * Properties: no crash, no leak, no hang (the node closes the link within
 * a bound after the raw peer's EOF, and stops: uv_loop_close() returns 0),
 * and every frame the node sends decrypts and decodes as a transport
 * message: exactly one map, or one or more back to back when the raw
 * peer's HELLO announced `batch` (it never sends garbage, whatever it was
 * sent).
 *
 * The node must never reach the network: PEERS makes it dial the
 * addresses a member names, so this program replaces connect(): only the
 * node's own listening port on 127.0.0.1 (and Unix sockets) may be
 * reached; any other address is refused at once (ECONNREFUSED).
 *
 * Seeds: tests/fuzz/gen_link_corpus.py. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "node/confab.h"
#include "../net/rawpeer.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

#define HANG_MS 15000u /* beyond any of the node's own deadlines (5 s) */

/* ---- no network but our own port ------------------------------------- */

static uint16_t allowed_port; /* network order; 0: none */

int connect(int fd, const struct sockaddr *addr, socklen_t len);
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    bool ok = addr != NULL && addr->sa_family == AF_UNIX;
    if (addr != NULL && addr->sa_family == AF_INET &&
        len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        ok = a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
             allowed_port != 0 && a->sin_port == allowed_port;
    }
    if (!ok) {
        errno = ECONNREFUSED;
        return -1;
    }
    return (int)syscall(SYS_connect, fd, addr, len);
}

/* ---- the fixture ------------------------------------------------------ */

static char home[512], store_path[600];
/* FUZZ_LOG=1 in the environment prints the node's log, its events and what
 * it sends, to see what an input does. */
static bool verbose;
static uint8_t default_hello[512];
static size_t default_hello_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sec_init() != 0)
        abort();
    verbose = getenv("FUZZ_LOG") != NULL;
    snprintf(home, sizeof home, "%s/home", fuzz_dir());
    snprintf(store_path, sizeof store_path, "%s/store.log", home);
    if (mkdir(home, 0700) != 0)
        abort();
    wire_bytes ops = {(const uint8_t *)"ops", 3};
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.name.ptr = (const uint8_t *)"raw";
    h.name.len = 3;
    h.boot = 1;
    h.max = 1u << 24;
    h.epoch = 1;
    h.ngroups = 1;
    h.groups = &ops;
    if (wire_hello_encode(&h, default_hello, sizeof default_hello,
                          &default_hello_len) != 0)
        abort();
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct fixture {
    uv_loop_t loop;
    confab_node *node;
    rawpeer raw;
    uv_poll_t poll;
    bool poll_open;
    bool up, down, stopped, eof;
    bool batch; /* the raw peer's HELLO said `batch` (#18) */
    unsigned data_seen; /* DATA the node sent */
    uint64_t deadline;
} fixture;

static void log_cb(confab_node *n, confab_log_level level, const char *msg,
                   void *user)
{
    (void)n;
    (void)user;
    fprintf(stderr, "  node log %d: %s\n", (int)level, msg);
}

static void event_cb(confab_node *n, const confab_event *ev, void *user)
{
    (void)n;
    fixture *fx = user;
    if (verbose)
        fprintf(stderr, "  node event %d\n", (int)ev->type);
    if (ev->type == CONFAB_EV_PEER_UP)
        fx->up = true;
    if (ev->type == CONFAB_EV_PEER_DOWN)
        fx->down = true;
}

/* Reads and checks what the node sent, without waiting. */
static void drain(fixture *fx)
{
    const uint8_t *f;
    size_t len;
    int rc;
    while ((rc = rawpeer_poll_frame(&fx->raw, &f, &len)) == 0) {
        CHECK(len >= WIRE_AEAD_TAG_BYTES);
        CHECK(sec_cipher_decrypt(&fx->raw.rx, NULL, 0, f, len,
                                 fx->raw.plain) == 0);
        /* One map, or several to a raw peer that announced `batch`. */
        const uint8_t *p = fx->raw.plain;
        size_t left = len - WIRE_AEAD_TAG_BYTES;
        do {
            wire_msg m;
            size_t used = left;
            if (fx->batch)
                CHECK(wire_msg_decode_next(p, left, &m, &used) == 0);
            else
                CHECK(wire_msg_decode(p, left, &m) == 0);
            if (verbose)
                fprintf(stderr, "  node sent type %u\n", (unsigned)m.type);
            if (m.type == WIRE_T_DATA)
                fx->data_seen++;
            p += used;
            left -= used;
        } while (left > 0);
    }
    if (rc == -EAGAIN)
        return;
    CHECK(rc == -EPIPE); /* the node frames what it sends */
    fx->eof = true;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drain(h->data);
}

static void turn(fixture *fx)
{
    uv_run(&fx->loop, UV_RUN_ONCE);
    CHECK(now_ms() < fx->deadline);
}

typedef struct hs_arg {
    fixture *fx;
    const uint8_t *hello;
    size_t len;
} hs_arg;

static int run_handshake(rawpeer_job *job)
{
    hs_arg *a = job->arg;
    return rawpeer_handshake_hello(&a->fx->raw, a->hello, a->len);
}

static void stopped_cb(confab_node *n, void *user)
{
    (void)n;
    ((fixture *)user)->stopped = true;
}

static void start(fixture *fx)
{
    static const uint8_t sk[CONFAB_KEY_BYTES] = {3, 1, 4, 1, 5, 9, 2, 6};
    static const char *const groups[] = {"ops"};
    unlink(store_path); /* each input starts from nothing */
    CHECK(uv_loop_init(&fx->loop) == 0);
    confab_config cfg;
    confab_config_init(&cfg);
    cfg.identity_sk = sk;
    cfg.name = "fuzz";
    cfg.home = home;
    cfg.inbox_max = 1000;
    cfg.bind_addr = "127.0.0.1";
    cfg.groups = groups;
    cfg.n_groups = 1;
    cfg.log_level = verbose ? CONFAB_LOG_DEBUG : CONFAB_LOG_ERROR;
    cfg.log_cb = verbose ? log_cb : NULL;
    cfg.event_cb = event_cb;
    cfg.user = fx;
    CHECK(confab_node_new(&fx->loop, &cfg, &fx->node) == 0);
    CHECK(confab_node_start(fx->node) == 0);
    allowed_port = htons(confab_node_port(fx->node));

    static const uint8_t raw_sk[CONFAB_KEY_BYTES] = {2, 7, 1, 8, 2, 8, 1, 8};
    CHECK(rawpeer_init(&fx->raw, NULL) == 0);
    sec_identity_free(fx->raw.id);
    fx->raw.id = NULL;
    CHECK(sec_identity_from_secret(raw_sk, &fx->raw.id) == 0);
    CHECK(rawpeer_connect(&fx->raw, confab_node_port(fx->node)) == 0);
}

/* The handshake, with the raw peer's half on a thread. Returns whether the
 * link is up (a HELLO the node refuses ends the input there). */
static bool link_up(fixture *fx, const uint8_t *hello, size_t len)
{
    hs_arg a = {fx, hello, len};
    rawpeer_job job;
    rawpeer_job_start(&job, run_handshake, &a);
    /* The node answers message 1 only while the loop runs. */
    while (!rawpeer_job_finished(&job) && !fx->up)
        turn(fx);
    if (rawpeer_job_join(&job) != 0)
        return false;
    CHECK(uv_poll_init(&fx->loop, &fx->poll, fx->raw.fd) == 0);
    fx->poll.data = fx;
    fx->poll_open = true;
    CHECK(uv_poll_start(&fx->poll, UV_READABLE, poll_cb) == 0);
    /* Message 3 may still be on its way: up, or refused (closed). */
    while (!fx->up && !fx->eof)
        turn(fx);
    if (!fx->up)
        return false;
    /* Two unicasts for the raw peer in the outbox: seq 1 and 2. */
    CHECK(confab_send(fx->node, fx->raw.id->pk, "one", 3, NULL, NULL) == 0);
    CHECK(confab_send(fx->node, fx->raw.id->pk, "two", 3, NULL, NULL) == 0);
    /* Sent once their records are durable: then an ACK has its target. */
    while (fx->data_seen < 2 && !fx->eof)
        turn(fx);
    return !fx->eof;
}

static void send_all(fixture *fx, const uint8_t *buf, size_t len)
{
    while (len > 0 && !fx->eof) {
        ssize_t w = send(fx->raw.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR)
            return; /* the node cut the link: fine */
        turn(fx);
    }
}

/* Encrypts one message and sends it as one frame. */
static void send_msg(fixture *fx, const uint8_t *plain, size_t len)
{
    if (len > WIRE_MAX_PLAINTEXT)
        len = WIRE_MAX_PLAINTEXT;
    size_t flen = len + WIRE_AEAD_TAG_BYTES;
    uint8_t *frame = malloc(3 + flen);
    CHECK(frame != NULL);
    CHECK(sec_cipher_encrypt(&fx->raw.tx, NULL, 0, plain, len, frame + 3) ==
          0);
    size_t off;
    if (flen < 256) {
        frame[1] = 0xc4;
        frame[2] = (uint8_t)flen;
        off = 1;
    } else {
        frame[0] = 0xc5;
        frame[1] = (uint8_t)(flen >> 8);
        frame[2] = (uint8_t)flen;
        off = 0;
    }
    send_all(fx, frame + off, 3 + flen - off);
    free(frame);
}

/* The length of the msgpack object at data, or 0 if none is whole. */
static size_t object_len(const uint8_t *data, size_t size)
{
    wire_mp_reader r;
    wire_mp_reader_init(&r, data, size);
    if (wire_mp_skip(&r) != 0)
        return 0;
    return size - wire_mp_left(&r);
}

static void finish(fixture *fx)
{
    if (fx->poll_open) {
        /* Our EOF: the node must close the link. */
        shutdown(fx->raw.fd, SHUT_WR);
        while (!fx->eof)
            turn(fx);
        uv_poll_stop(&fx->poll);
        uv_close((uv_handle_t *)&fx->poll, NULL);
    }
    rawpeer_free(&fx->raw);
    CHECK(confab_node_stop(fx->node, stopped_cb, fx) == 0);
    while (!fx->stopped)
        turn(fx);
    confab_node_free(fx->node);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&fx->loop) == 0);
    allowed_port = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fixture fx;
    memset(&fx, 0, sizeof fx);
    fx.deadline = now_ms() + HANG_MS;
    start(&fx);

    const uint8_t *hello = default_hello;
    size_t hello_len = default_hello_len;
    size_t first = object_len(data, size);
    wire_hello h;
    if (first > 0 && wire_hello_decode(data, first, &h) == 0) {
        hello = data;
        hello_len = first;
        fx.batch = h.batch != 0;
        data += first;
        size -= first;
    }
    if (link_up(&fx, hello, hello_len)) {
        static uint8_t batch[WIRE_MAX_PLAINTEXT];
        while (size > 0 && !fx.eof) {
            /* An object, and each one glued to it by a nil (c0) before
             * it: one transport message (a batch, PROTOCOL.md 4). */
            size_t blen = 0;
            bool more = true;
            for (bool first_obj = true; more; first_obj = false) {
                size_t skip = first_obj ? 0 : 1;
                size_t n = object_len(data + skip, size - skip);
                if (n == 0)
                    n = size - skip; /* the rest, as the last part */
                size_t k = n < sizeof batch - blen ? n : sizeof batch - blen;
                memcpy(batch + blen, data + skip, k);
                blen += k;
                data += skip + n;
                size -= skip + n;
                more = size > 1 && data[0] == 0xc0;
            }
            send_msg(&fx, batch, blen);
        }
    }
    finish(&fx);
    return 0;
}
