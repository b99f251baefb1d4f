/* fuzz_control.c: what a control client sends, through the whole control
 * server (node/control.c), not only its codec (fuzz_ctl does that).
 *
 * Each input is the byte stream one client writes to the control socket
 * (framed requests, docs/PROTOCOL.md section 11) of a real node, made
 * fresh for the input: a home in a scratch directory, listening on
 * 127.0.0.1 and on <home>/control.sock, a member of group "ops", knowing
 * one peer that is not linked (id 01 02 .. 20, so send, ping and anycast
 * reach their real paths) and holding three unread messages (so recv and
 * follow have something to hand out). The client connects, writes the
 * input, closes its sending side, and reads until the node closes the
 * connection; then the node is stopped and freed.
 *
 * Properties: no crash, no leak, no hang (the node closes the client
 * within a bound after its EOF; every handle closes: uv_loop_close()
 * returns 0), and everything the node sends back is framed as section 11
 * says and parses: replies carry a rid and ok, events an ev.
 *
 * Seeds: tests/fuzz/gen_ctl_corpus.py writes corpus/control too. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "node/node.h"
#include "wire/ctl.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

#define HANG_MS 10000u /* a node that takes longer than this hangs */

static char home[512], sock_path[600], store_path[600];
static const uint8_t known[CONFAB_ID_BYTES] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sec_init() != 0)
        abort();
    snprintf(home, sizeof home, "%s/home", fuzz_dir());
    snprintf(sock_path, sizeof sock_path, "%s/control.sock", home);
    snprintf(store_path, sizeof store_path, "%s/store.log", home);
    if (mkdir(home, 0700) != 0 ||
        strlen(sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        abort();
    return 0;
}

static uint64_t fixed_clock(void *user)
{
    (void)user;
    return UINT64_C(1700000000000000);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The state the requests work on. */
static void furnish(confab_node *n)
{
    node_peer *p = node_peer_get(n, known);
    CHECK(p != NULL);
    static const char *const groups[3] = {NULL, "ops", NULL};
    static const char *const cts[3] = {"text/plain", NULL, NULL};
    static const confab_kind kinds[3] = {CONFAB_UNICAST, CONFAB_GROUP,
                                         CONFAB_BROADCAST};
    for (int i = 0; i < 3; i++) {
        confab_message m;
        memset(&m, 0, sizeof m);
        m.id[0] = (uint8_t)(i + 1);
        m.from = known;
        m.from_name = "known";
        m.kind = kinds[i];
        m.group = groups[i];
        m.seq = (uint64_t)i + 1;
        m.ts_us = fixed_clock(NULL);
        m.content_type = cts[i];
        m.body = (const uint8_t *)"a body";
        m.len = 6;
        CHECK(node_inbox_put(n, &m, 7) == 0);
    }
}

typedef struct client {
    int fd;
    uv_poll_t poll;
    bool eof;
    wire_ctl_reader reader;
} client;

static void check_reply(const uint8_t *msg, size_t len)
{
    wire_ctl_map m;
    uint64_t rid;
    int ok;
    wire_bytes ev;
    CHECK(wire_ctl_parse(msg, len, &m) == 0);
    CHECK((wire_ctl_get_uint(&m, "rid", &rid) == 0 &&
           wire_ctl_get_bool(&m, "ok", &ok) == 0) ||
          wire_ctl_get_str(&m, "ev", &ev) == 0);
}

/* Reads what is there; sets eof once the node closed the connection. */
static void drain(client *c)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            c->eof = true;
            return;
        }
        const uint8_t *p = buf, *msg;
        size_t left = (size_t)n, mlen;
        int rc;
        while ((rc = wire_ctl_read(&c->reader, &p, &left, &msg, &mlen)) == 1)
            check_reply(msg, mlen);
        CHECK(rc == 0); /* the node frames what it sends */
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drain(h->data);
}

static void stopped_cb(confab_node *n, void *user)
{
    (void)n;
    *(bool *)user = true;
}

static void run_client(uv_loop_t *loop, const uint8_t *data, size_t size)
{
    client c = {.fd = -1};
    /* Replies are bounded by what the node may send one client. */
    wire_ctl_reader_init(&c.reader, (size_t)256 << 20);
    c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK(c.fd >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
    CHECK(connect(c.fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(uv_poll_init(loop, &c.poll, c.fd) == 0);
    c.poll.data = &c;
    CHECK(uv_poll_start(&c.poll, UV_READABLE, poll_cb) == 0);

    uint64_t deadline = now_ms() + HANG_MS;
    size_t off = 0;
    while (off < size && !c.eof) {
        ssize_t w = send(c.fd, data + off, size - off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR)
            break; /* the node closed it (a framing error): fine */
        uv_run(loop, UV_RUN_ONCE); /* let the node read */
        CHECK(now_ms() < deadline);
    }
    shutdown(c.fd, SHUT_WR);
    while (!c.eof) {
        uv_run(loop, UV_RUN_ONCE);
        CHECK(now_ms() < deadline); /* the node must close after our EOF */
    }
    uv_poll_stop(&c.poll);
    uv_close((uv_handle_t *)&c.poll, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    close(c.fd);
    wire_ctl_reader_free(&c.reader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t sk[CONFAB_KEY_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    static const char *const groups[] = {"ops"};
    unlink(store_path); /* each input starts from nothing */
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    confab_config cfg;
    confab_config_init(&cfg);
    cfg.identity_sk = sk;
    cfg.name = "fuzz";
    cfg.home = home;
    cfg.control_path = sock_path;
    cfg.bind_addr = "127.0.0.1";
    cfg.groups = groups;
    cfg.n_groups = 1;
    cfg.log_level = CONFAB_LOG_ERROR;
    cfg.clock_us = fixed_clock;
    confab_node *n;
    CHECK(confab_node_new(&loop, &cfg, &n) == 0);
    CHECK(confab_node_start(n) == 0);
    furnish(n);

    run_client(&loop, data, size);

    bool stopped = false;
    CHECK(confab_node_stop(n, stopped_cb, &stopped) == 0);
    uint64_t deadline = now_ms() + HANG_MS;
    while (!stopped) {
        uv_run(&loop, UV_RUN_ONCE);
        CHECK(now_ms() < deadline);
    }
    confab_node_free(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    return 0;
}
