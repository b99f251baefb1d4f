/* bench_link.c: the link benchmark: two processes on 127.0.0.1, unicast
 * throughput at 64 B, 1 KiB and 64 KiB, one-way 16 MiB messages and the
 * 64 B round trip over a confab link, each beside a plain-socket baseline
 * and (throughput) an encrypted end-to-end ceiling measured in the same
 * run, with the ratios and the targets of the issues (#18's table last).
 *
 * Every case forks two fresh children: the receiver (a confab node, or a
 * plain blocking socket) tells the parent its port through a pipe; the
 * sender then runs in a second child and hands its result back through
 * another. No libuv loop exists when we fork: each process makes its own
 * after (libuv's thread pool, which the node's handshake uses, starts
 * again in the child by itself). Every wait has a deadline; on any failure
 * the receiver is killed, and every child is reaped before the next case
 * starts. Each side's peak memory is measured against what it held at its
 * start (/proc/self/clear_refs resets the peak).
 *
 * Exit status: 0 when every case ran (a missed target is printed, not an
 * exit failure), 1 when anything failed. BENCH_SCALE (a factor, e.g. 0.01)
 * scales the message and round-trip counts for quick runs; an argument
 * runs only the cases whose label contains it. */
#include "node/confab.h"
#include <sodium.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <ftw.h>
#include <limits.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define DEADLINE_MS    60000u        /* longest wait, times BENCH_SCALE > 1 */
#define PORT_WAIT_MS   10000         /* for the child to report its port */
#define REAP_WAIT_MS   15000         /* for the child to exit once done */
#define RAW_BUF        (64u * 1024u) /* the raw writer's and reader's buffer */
#define RAW_HDR        4u /* big-endian length in front of a raw body */
#define MAX_SIZE       (64u * 1024u)         /* round trips */
#define BIG_SIZE       (16u * 1024u * 1024u) /* the largest message */
#define DONE_BODY      "done"
#define DONE_LEN       4u
#define TARGET_1K_MSGS 400000.0 /* 1 KiB unicast, msg/s, at least */
#define TARGET_RTT     1.25     /* round trip median, times raw, at most */

typedef enum bench_mode {
    MODE_TPUT = 0, /* N messages one way, then "done" back */
    MODE_RTT = 1,  /* ping-pong: warmup + n round trips */
} bench_mode;

typedef struct bench_case {
    const char *label;
    bench_mode mode;
    size_t size;     /* body bytes */
    uint64_t n;      /* messages, or timed round trips */
    uint64_t warmup; /* untimed round trips first (MODE_RTT) */
    /* Persistence on: both nodes keep a home directory (made afresh in
     * the current directory, removed after) and the receiver an inbox, as
     * `confab run` does: every message is in the sender's store before it
     * leaves and in the receiver's before it is acknowledged. The case is
     * compared with the case at index `off` (the same without a home), not
     * with a raw baseline. */
    bool persist;
    size_t off;
} bench_case;

typedef struct bench_result {
    bool ok;
    double secs;      /* MODE_TPUT: first send to "done" */
    double median_us; /* MODE_RTT */
    double p99_us;
    double tx_cpu, rx_cpu; /* CPU seconds of the sender and the receiver */
    /* Peak resident memory each side added during the case (KiB), and
     * the most messages the sender had sent and not yet seen
     * acknowledged (confab only). */
    uint64_t tx_grow_kib, rx_grow_kib, max_in_flight;
    /* The same above the linked node (mem_mark_linked). */
    uint64_t tx_msg_kib, rx_msg_kib;
    /* The sender's transport messages and the maps they carried (#18:
     * several messages per transport message), confab only. */
    uint64_t tx_frames, tx_maps;
} bench_result;

static uint8_t payload[BIG_SIZE];          /* what every sender sends */
static unsigned deadline_ms = DEADLINE_MS; /* set once by main, then read */

/* ---- helpers ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* Milliseconds left until deadline (a uv_hrtime() value), at least 0. */
static int ms_left(uint64_t deadline)
{
    uint64_t t = now_ns();
    if (t >= deadline)
        return 0;
    uint64_t ms = (deadline - t + 999999u) / 1000000u;
    return ms > 600000u ? 600000 : (int)ms;
}

/* Writes v with thousands separators ("1,234,567"). */
static void fmt_count(char *out, size_t cap, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t len = n > 0 ? (size_t)n : 0, o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < cap)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* Rounds a non-negative x to the nearest integer (without libm). */
static uint64_t round_u64(double x)
{
    return x <= 0.0 ? 0 : (uint64_t)(x + 0.5);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the round trips (ns) and takes the median and p99 in us. */
static void rtt_summary(uint64_t *ns, size_t n, bench_result *r)
{
    qsort(ns, n, sizeof *ns, cmp_u64);
    double med = n % 2 == 1 ? (double)ns[n / 2]
                            : ((double)ns[n / 2 - 1] + (double)ns[n / 2]) / 2;
    /* The nearest rank: the ceil(0.99 n)-th smallest. */
    size_t i99 = (99u * n + 99u) / 100u;
    if (i99 > 0)
        i99--;
    r->median_us = med / 1000.0;
    r->p99_us = (double)ns[i99] / 1000.0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A field of /proc/self/status in KiB (VmRSS, VmHWM), or 0. */
static uint64_t status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    size_t len = strlen(field);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            v = strtoull(line + len + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Starts a measure of peak memory: the peak (VmHWM) is reset to what is
 * resident now (Linux 4.0 and later; elsewhere the peak stays the
 * process's, which overstates). Returns the resident KiB now. */
static uint64_t mem_mark(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
    return status_kib("VmRSS");
}

/* The linked node's mark (#18): at the first link up of a process, the
 * peak so far is kept and the peak is reset, so that what the messages
 * add (their bodies, buffers, queues) is measured apart from what the
 * node's own set-up touched (its tables, the libraries' pages it first
 * ran, the thread pool's stacks). */
static uint64_t up_rss, up_hwm;
static bool up_marked;

static void mem_mark_linked(void)
{
    if (up_marked)
        return;
    up_marked = true;
    up_hwm = status_kib("VmHWM");
    up_rss = mem_mark();
}

/* The peak resident memory since mem_mark() returned rss0, above it. */
static uint64_t mem_grown(uint64_t rss0)
{
    uint64_t hwm = status_kib("VmHWM");
    if (up_marked && up_hwm > hwm)
        hwm = up_hwm;
    return hwm > rss0 ? hwm - rss0 : 0;
}

/* The peak since the link came up, above what was resident then. */
static uint64_t mem_grown_linked(void)
{
    uint64_t hwm = status_kib("VmHWM");
    return up_marked && hwm > up_rss ? hwm - up_rss : 0;
}

static double cpu_secs(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_stime.tv_sec +
           ((double)ru->ru_utime.tv_usec + (double)ru->ru_stime.tv_usec) / 1e6;
}

/* ---- the child process ------------------------------------------------ */

typedef struct child {
    pid_t pid;
    int fd; /* read end: the port, then EOF when the child exits */
} child;

typedef int (*child_main)(const bench_case *bc, int port_fd);

/* Forks a child running fn(bc, write end of the port pipe). The write end
 * stays open in the child until it exits, so EOF on ch->fd means the child
 * is gone. */
static int child_spawn(child *ch, child_main fn, const bench_case *bc)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    /* Whatever stdio holds would be written twice otherwise. */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(p[0]);
        close(p[1]);
        return err;
    }
    if (pid == 0) {
        close(p[0]);
#ifdef __linux__
        /* Never outlive the parent, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
#else
        (void)parent;
#endif
        uint64_t rss0 = mem_mark();
        int rc = fn(bc, p[1]);
        /* After the port: what the receiver added at its peak, for
         * child_reap. */
        uint64_t grown = mem_grown(rss0) | mem_grown_linked() << 32;
        if (write(p[1], &grown, sizeof grown) != (ssize_t)sizeof grown)
            rc = -EPIPE;
        fflush(stderr);
        _exit(rc == 0 ? 0 : 1);
    }
    close(p[1]);
    ch->pid = pid;
    ch->fd = p[0];
    return 0;
}

static int child_read_port(const child *ch, uint16_t *port)
{
    uint8_t b[2];
    size_t got = 0;
    uint64_t deadline = now_ns() + (uint64_t)PORT_WAIT_MS * 1000000u;
    while (got < sizeof b) {
        struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, ms_left(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return -ETIMEDOUT;
        ssize_t n = read(ch->fd, b + got, sizeof b - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE; /* the child failed before it listened */
        got += (size_t)n;
    }
    *port = (uint16_t)(b[0] << 8 | b[1]);
    return *port != 0 ? 0 : -EPROTO;
}

static int write_port(int fd, uint16_t port)
{
    uint8_t b[2] = {(uint8_t)(port >> 8), (uint8_t)port};
    return write(fd, b, sizeof b) == (ssize_t)sizeof b ? 0 : -EPIPE;
}

/* Reaps the child: waits for it to exit on its own (unless kill_now),
 * kills it once the wait passes its deadline; *cpu is the CPU time it
 * used. Returns 0 only if it exited with status 0 by itself. */
static int child_reap(child *ch, bool kill_now, double *cpu, uint64_t *grown)
{
    uint8_t g[sizeof *grown];
    size_t have = 0;
    *grown = 0;
    bool killed = false;
    uint64_t deadline = now_ns() + (uint64_t)REAP_WAIT_MS * 1000000u;
    while (!kill_now) {
        struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
        int rc = poll(&pfd, 1, ms_left(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            fprintf(stderr, "bench: the child did not exit in time\n");
            kill_now = true;
            break;
        }
        uint8_t b[16];
        ssize_t n = read(ch->fd, b, sizeof b);
        if (n == 0)
            break; /* EOF: it exited */
        for (ssize_t i = 0; i < n && have < sizeof g; i++)
            g[have++] = b[i];
        if (n < 0 && errno != EINTR) {
            kill_now = true;
            break;
        }
    }
    if (kill_now) {
        kill(ch->pid, SIGKILL);
        killed = true;
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    do
        w = wait4(ch->pid, &st, 0, &ru);
    while (w < 0 && errno == EINTR);
    close(ch->fd);
    ch->fd = -1;
    *cpu = cpu_secs(&ru);
    if (have == sizeof g)
        memcpy(grown, g, sizeof g);
    if (w != ch->pid || killed)
        return -ECHILD;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench: the child failed (status %d)\n", st);
        return -ECHILD;
    }
    return 0;
}

/* ---- confab: a node on its own loop ---------------------------------- */

/* Fatal: a node did not stop, so its memory and loop cannot be released.
 * The process reports the failure and exits at once. */
#define ERR_NO_STOP (-10000)

typedef struct bench_node {
    uv_loop_t loop;
    char home[PATH_MAX]; /* "" unless the case persists */
    confab_node *node;
    uv_timer_t deadline; /* the case, then the stop */
    const char *who;
    bool stopping, stopped, timer_closed, stop_late;
    int err;
    confab_stats at_finish; /* the node's counters when the case ended */
} bench_node;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* Removes the node's home directory and everything in it, if it has one. */
static void home_remove(bench_node *b)
{
    if (b->home[0] != '\0' &&
        nftw(b->home, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench: %s: cannot remove %s: %s\n", b->who, b->home,
                strerror(errno));
    b->home[0] = '\0';
}

static void log_cb(confab_node *node, confab_log_level level, const char *msg,
                   void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "bench: [%s] %s\n", confab_node_name(node), msg);
}

static void bn_timer_closed(uv_handle_t *h)
{
    bench_node *b = h->data;
    b->timer_closed = true;
    uv_stop(&b->loop);
}

static void bn_stopped(confab_node *node, void *user)
{
    bench_node *b = user;
    (void)node;
    b->stopped = true;
    uv_close((uv_handle_t *)&b->deadline, bn_timer_closed);
}

/* Ends the case: records the first error and stops the node; the deadline
 * timer now bounds the stop. */
static void bn_finish(bench_node *b, int err, const char *why)
{
    if (b->stopping)
        return;
    b->stopping = true;
    b->err = err;
    confab_node_stats(b->node, &b->at_finish);
    if (err != 0)
        fprintf(stderr, "bench: %s: %s (%s)\n", b->who, why,
                confab_strerror(err));
    if (confab_node_stop(b->node, bn_stopped, b) != 0) {
        b->err = ERR_NO_STOP;
        b->stop_late = true;
        uv_stop(&b->loop);
    }
}

static void bn_deadline_cb(uv_timer_t *t)
{
    bench_node *b = t->data;
    if (!b->stopping) {
        uv_timer_start(&b->deadline, bn_deadline_cb, deadline_ms, 0);
        bn_finish(b, -ETIMEDOUT, "deadline passed");
        return;
    }
    fprintf(stderr, "bench: %s: the node did not stop in time\n", b->who);
    b->err = ERR_NO_STOP;
    b->stop_late = true;
    uv_stop(&b->loop);
}

static int bn_init(bench_node *b, const char *who, bool persist,
                   confab_config *c)
{
    memset(b, 0, sizeof *b);
    b->who = who;
    if (persist) {
        /* In the current directory (the build directory under meson), a
         * real file system: /tmp may be a tmpfs, where fsync is free. */
        snprintf(b->home, sizeof b->home, "bench-home-%s-XXXXXX", who);
        if (mkdtemp(b->home) == NULL) {
            int err = -errno;
            fprintf(stderr, "bench: %s: cannot make a home in .: %s\n", who,
                    strerror(errno));
            return err;
        }
        c->home = b->home;
    }
    c->name = who;
    c->bind_addr = "127.0.0.1";
    c->port = 0;
    c->log_cb = log_cb;
    c->log_level = CONFAB_LOG_WARN;
    /* Only 127.0.0.1: no beacons on the machine's other interfaces. */
    c->discovery = 0;
    int rc = uv_loop_init(&b->loop);
    if (rc != 0) {
        home_remove(b);
        return rc;
    }
    rc = confab_node_new(&b->loop, c, &b->node);
    if (rc != 0) {
        fprintf(stderr, "bench: %s: %s\n", who, confab_strerror(rc));
        uv_loop_close(&b->loop);
        home_remove(b);
        return rc;
    }
    uv_timer_init(&b->loop, &b->deadline);
    b->deadline.data = b;
    return 0;
}

/* Starts the node and runs the loop until the case ends and the node has
 * stopped. It waits for the stop callback, not for the loop to run out of
 * work: node/node.c node_conn_mark_dirty() restarts the node's flusher
 * idle handle when a write completes after confab_node_stop() closed that
 * handle, which leaves libuv's count of active handles one too high, so
 * uv_run() would never return by itself: the stop callback ends it with
 * uv_stop() instead (through the close of the deadline timer). Returns the
 * case's result (ERR_NO_STOP if the node could not be stopped). */
static int bn_run(bench_node *b, int (*started)(bench_node *b))
{
    int rc = confab_node_start(b->node);
    if (rc == 0)
        rc = started(b);
    uv_timer_start(&b->deadline, bn_deadline_cb, deadline_ms, 0);
    if (rc != 0)
        bn_finish(b, rc, "cannot start");
    while (!(b->stopped && b->timer_closed) && !b->stop_late)
        uv_run(&b->loop, UV_RUN_DEFAULT);
    if (b->stop_late)
        return ERR_NO_STOP;
    confab_node_free(b->node);
    b->node = NULL;
    home_remove(b);
    if (uv_loop_close(&b->loop) != 0) {
        fprintf(stderr, "bench: %s: a handle leaked\n", b->who);
        return b->err != 0 ? b->err : -EBUSY;
    }
    return b->err;
}

/* ---- confab: the receiver (child) ------------------------------------- */

typedef struct rx_ctx {
    bench_node bn; /* first: the node's user pointer is the context */
    const bench_case *bc;
    int port_fd;
    uint64_t got;  /* messages received, or echoed */
    uint64_t want; /* how many make the case complete */
} rx_ctx;

static void rx_inbox_msg(const confab_message *msg, void *user)
{
    size_t *bytes = user;
    *bytes += msg->len;
}

static void rx_event(confab_node *node, const confab_event *ev, void *user)
{
    rx_ctx *x = user;
    const bench_case *bc = x->bc;
    int rc;
    switch (ev->type) {
    case CONFAB_EV_PEER_UP:
        mem_mark_linked();
        return;
    case CONFAB_EV_MESSAGE: {
        const confab_message *m = ev->message;
        if (m->len != bc->size) {
            bn_finish(&x->bn, -EPROTO, "a message of the wrong size");
            return;
        }
        if (bc->persist) {
            size_t bytes = 0;
            if (confab_inbox_read(node, 1, rx_inbox_msg, &bytes) != 1 ||
                bytes != bc->size) {
                bn_finish(&x->bn, -EPROTO, "the message is not in the inbox");
                return;
            }
        }
        if (bc->mode == MODE_RTT) {
            /* Straight back from inside the callback. */
            rc = confab_send(node, ev->peer, m->body, m->len, NULL, NULL);
            if (rc != 0) {
                bn_finish(&x->bn, rc, "cannot echo");
                return;
            }
            x->got++;
            return;
        }
        /* One lane, in order: a gap in the sequence is a lost message. */
        if (m->seq != x->got + 1) {
            bn_finish(&x->bn, -EPROTO, "a message out of sequence");
            return;
        }
        x->got++;
        if (x->got == x->want) {
            rc = confab_send(node, ev->peer, DONE_BODY, DONE_LEN, NULL, NULL);
            if (rc != 0)
                bn_finish(&x->bn, rc, "cannot send done");
        }
        return;
    }
    case CONFAB_EV_SEND:
        if (ev->status != CONFAB_DELIVERED)
            bn_finish(&x->bn, -EPIPE, "a send failed");
        return;
    case CONFAB_EV_PEER_DOWN:
        /* The sender stops once it has what it measured: its goodbye ends
         * the case. */
        if (x->got == x->want)
            bn_finish(&x->bn, 0, NULL);
        else
            bn_finish(&x->bn, -ENOTCONN, "the link went down early");
        return;
    default:
        return;
    }
}

static int rx_started(bench_node *b)
{
    rx_ctx *x = (rx_ctx *)(void *)b;
    return write_port(x->port_fd, confab_node_port(b->node));
}

static int confab_child(const bench_case *bc, int port_fd)
{
    rx_ctx x;
    confab_config c;
    confab_config_init(&c);
    c.event_cb = rx_event;
    c.user = &x;
    /* Persistence on: an inbox, read as messages come (as `confab recv`
     * would), so that each message costs its INBOX_PUT and INBOX_READ. */
    if (bc->persist)
        c.inbox_max = 10000;
    int rc = bn_init(&x.bn, "bench-rx", bc->persist, &c);
    if (rc != 0)
        return rc;
    x.bc = bc;
    x.port_fd = port_fd;
    x.got = 0;
    x.want = bc->mode == MODE_RTT ? bc->warmup + bc->n : bc->n;
    return bn_run(&x.bn, rx_started);
}

/* ---- confab: the sender (parent) -------------------------------------- */

typedef struct tx_ctx {
    bench_node bn; /* first: the node's user pointer is the context */
    const bench_case *bc;
    uint8_t peer[CONFAB_ID_BYTES];
    bool started;
    uint64_t sent;  /* MODE_TPUT: messages accepted by confab_send */
    uint64_t acked; /* MODE_TPUT: of them, acknowledged */
    uint64_t max_in_flight;
    uint64_t rounds; /* MODE_RTT: round trips completed */
    uint64_t t0, t1, t_send;
    uint64_t *samples; /* MODE_RTT: n round trips, ns */
} tx_ctx;

/* Sends until the peer's queue refuses (-EAGAIN); CONFAB_EV_WRITABLE calls
 * again. Never spins, never sleeps. */
static void tx_pump(tx_ctx *x)
{
    const bench_case *bc = x->bc;
    while (x->sent < bc->n) {
        int rc =
            confab_send(x->bn.node, x->peer, payload, bc->size, NULL, NULL);
        if (rc == -EAGAIN)
            return;
        if (rc != 0) {
            bn_finish(&x->bn, rc, "confab_send");
            return;
        }
        x->sent++;
        if (x->sent - x->acked > x->max_in_flight)
            x->max_in_flight = x->sent - x->acked;
    }
}

static void tx_ping(tx_ctx *x)
{
    put_u64(payload, x->rounds);
    x->t_send = now_ns();
    int rc = confab_send(x->bn.node, x->peer, payload, x->bc->size, NULL, NULL);
    if (rc != 0)
        bn_finish(&x->bn, rc, "confab_send");
}

static void tx_event(confab_node *node, const confab_event *ev, void *user)
{
    tx_ctx *x = user;
    const bench_case *bc = x->bc;
    (void)node;
    switch (ev->type) {
    case CONFAB_EV_PEER_UP:
        mem_mark_linked();
        if (x->started)
            return;
        x->started = true;
        memcpy(x->peer, ev->peer, CONFAB_ID_BYTES);
        x->t0 = now_ns();
        if (bc->mode == MODE_TPUT)
            tx_pump(x);
        else
            tx_ping(x);
        return;
    case CONFAB_EV_WRITABLE:
        if (bc->mode == MODE_TPUT && x->started)
            tx_pump(x);
        return;
    case CONFAB_EV_MESSAGE: {
        uint64_t t = now_ns();
        const confab_message *m = ev->message;
        if (bc->mode == MODE_TPUT) {
            if (x->sent != bc->n || m->len != DONE_LEN ||
                memcmp(m->body, DONE_BODY, DONE_LEN) != 0) {
                bn_finish(&x->bn, -EPROTO, "an unexpected reply");
                return;
            }
            x->t1 = t;
            bn_finish(&x->bn, 0, NULL);
            return;
        }
        if (m->len != bc->size || get_u64(m->body) != x->rounds) {
            bn_finish(&x->bn, -EPROTO, "a wrong echo");
            return;
        }
        if (x->rounds >= bc->warmup)
            x->samples[x->rounds - bc->warmup] = t - x->t_send;
        x->rounds++;
        if (x->rounds == bc->warmup + bc->n)
            bn_finish(&x->bn, 0, NULL);
        else
            tx_ping(x);
        return;
    }
    case CONFAB_EV_SEND:
        if (ev->status != CONFAB_DELIVERED)
            bn_finish(&x->bn, -EPIPE, "a send failed");
        x->acked++;
        return;
    case CONFAB_EV_PEER_DOWN:
        bn_finish(&x->bn, -ENOTCONN, "the link went down");
        return;
    default:
        return;
    }
}

static int tx_started(bench_node *b)
{
    (void)b;
    return 0; /* the static peer is dialed; CONFAB_EV_PEER_UP starts */
}

static int confab_sender(const bench_case *bc, uint16_t port, bench_result *r)
{
    tx_ctx x;
    uint64_t *samples = NULL;
    if (bc->mode == MODE_RTT) {
        samples = calloc(bc->n, sizeof *samples);
        if (samples == NULL)
            return -ENOMEM;
    }
    char peer[32];
    snprintf(peer, sizeof peer, "127.0.0.1:%u", port);
    const char *peers[1] = {peer};
    confab_config c;
    confab_config_init(&c);
    c.event_cb = tx_event;
    c.user = &x;
    c.static_peers = peers;
    c.n_static_peers = 1;
    int rc = bn_init(&x.bn, "bench-tx", bc->persist, &c);
    if (rc != 0) {
        free(samples);
        return rc;
    }
    x.bc = bc;
    x.started = false;
    x.sent = x.rounds = x.t0 = x.t1 = x.t_send = 0;
    x.acked = x.max_in_flight = 0;
    x.samples = samples;
    rc = bn_run(&x.bn, tx_started);
    r->max_in_flight = x.max_in_flight;
    r->tx_frames = x.bn.at_finish.frames_sent;
    r->tx_maps = x.bn.at_finish.frame_maps_sent;
    if (rc == 0) {
        if (bc->mode == MODE_TPUT)
            r->secs = (double)(x.t1 - x.t0) / 1e9;
        else
            rtt_summary(samples, bc->n, r);
    }
    free(samples);
    return rc;
}

/* ---- raw: plain blocking sockets -------------------------------------- */

/* Blocking sockets with a deadline on every read and write. */
static int raw_setup(int s)
{
    int one = 1;
    struct timeval tv = {.tv_sec = deadline_ms / 1000u, .tv_usec = 0};
    if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        return -errno;
    return 0;
}

static int raw_write_all(int s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(s, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A header and a body too large for the batch buffer, in one writev. */
static int raw_writev_all(int s, const uint8_t *hdr, const uint8_t *body,
                          size_t len)
{
    struct iovec iov[2] = {
        {.iov_base = (void *)(uintptr_t)hdr, .iov_len = RAW_HDR},
        {.iov_base = (void *)(uintptr_t)body, .iov_len = len}};
    int idx = 0;
    while (idx < 2) {
        ssize_t n = writev(s, iov + idx, 2 - idx);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        size_t left = (size_t)n;
        while (idx < 2 && left >= iov[idx].iov_len) {
            left -= iov[idx].iov_len;
            idx++;
        }
        if (idx < 2) {
            iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + left;
            iov[idx].iov_len -= left;
        }
    }
    return 0;
}

static int raw_read_full(int s, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(s, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Waits for the other side to close first, so the sender's clock and the
 * receiver's exit never race. */
static int raw_wait_eof(int s)
{
    uint8_t b[64];
    for (;;) {
        ssize_t n = read(s, b, sizeof b);
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? (errno == EAGAIN ? -ETIMEDOUT : -errno) : -EPROTO;
    }
}

/* Reads 64 KiB at a time and walks the length prefixes. */
static int raw_count(int s, const bench_case *bc)
{
    static uint8_t buf[RAW_BUF];
    uint8_t hdr[RAW_HDR];
    size_t hdr_have = 0, body_left = 0;
    bool in_body = false;
    uint64_t got = 0;
    while (got < bc->n) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
            return -EPIPE;
        const uint8_t *p = buf;
        size_t left = (size_t)n;
        while (left > 0) {
            if (!in_body) {
                size_t take = RAW_HDR - hdr_have;
                if (take > left)
                    take = left;
                memcpy(hdr + hdr_have, p, take);
                hdr_have += take;
                p += take;
                left -= take;
                if (hdr_have < RAW_HDR)
                    break;
                hdr_have = 0;
                body_left = get_be32(hdr);
                if (body_left != bc->size || got == bc->n)
                    return -EPROTO;
                in_body = true;
            }
            size_t take = body_left < left ? body_left : left;
            p += take;
            left -= take;
            body_left -= take;
            if (body_left == 0) {
                in_body = false;
                got++;
            }
        }
    }
    if (in_body || hdr_have != 0)
        return -EPROTO;
    uint8_t done[RAW_HDR + DONE_LEN];
    put_be32(done, DONE_LEN);
    memcpy(done + RAW_HDR, DONE_BODY, DONE_LEN);
    return raw_write_all(s, done, sizeof done);
}

static int raw_echo(int s, const bench_case *bc)
{
    uint8_t msg[RAW_HDR + MAX_SIZE];
    size_t len = RAW_HDR + bc->size;
    for (uint64_t i = 0; i < bc->warmup + bc->n; i++) {
        int rc = raw_read_full(s, msg, len);
        if (rc != 0)
            return rc;
        if (get_be32(msg) != bc->size)
            return -EPROTO;
        rc = raw_write_all(s, msg, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The encrypted ceiling (below) runs on the raw programs' sockets. */
static bool ceil_mode; /* set by main before each fork */
static int ceil_send_all(int s, const bench_case *bc);
static int ceil_count(int s, const bench_case *bc);

static int raw_child(const bench_case *bc, int port_fd)
{
    int rc = 0, s = -1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0)
        return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    struct timeval tv = {.tv_sec = deadline_ms / 1000u, .tv_usec = 0};
    /* SO_RCVTIMEO bounds accept() too. */
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0 ||
        setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        rc = -errno;
        goto out;
    }
    rc = write_port(port_fd, ntohs(a.sin_port));
    if (rc != 0)
        goto out;
    do
        s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
        rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
        goto out;
    }
    rc = raw_setup(s);
    if (rc == 0)
        rc = bc->mode != MODE_TPUT ? raw_echo(s, bc)
             : ceil_mode           ? ceil_count(s, bc)
                                   : raw_count(s, bc);
    if (rc == 0)
        rc = raw_wait_eof(s);
out:
    if (rc != 0)
        fprintf(stderr, "bench: raw receiver: %s\n", strerror(-rc));
    if (s >= 0)
        close(s);
    close(ls);
    return rc;
}

/* The writer batches messages into a 64 KiB buffer and writes it whole,
 * as any sane plain program would: one write per message would measure
 * system calls, not the link. A message too large for the buffer goes out
 * in one writev of its header and body. */
static int raw_send_all(int s, const bench_case *bc)
{
    static uint8_t buf[RAW_BUF];
    size_t used = 0;
    int rc;
    for (uint64_t i = 0; i < bc->n; i++) {
        if (used + RAW_HDR + bc->size > sizeof buf && used > 0) {
            rc = raw_write_all(s, buf, used);
            if (rc != 0)
                return rc;
            used = 0;
        }
        if (RAW_HDR + bc->size > sizeof buf) {
            uint8_t hdr[RAW_HDR];
            put_be32(hdr, (uint32_t)bc->size);
            rc = raw_writev_all(s, hdr, payload, bc->size);
            if (rc != 0)
                return rc;
            continue;
        }
        put_be32(buf + used, (uint32_t)bc->size);
        memcpy(buf + used + RAW_HDR, payload, bc->size);
        used += RAW_HDR + bc->size;
    }
    return used > 0 ? raw_write_all(s, buf, used) : 0;
}

static int raw_sender(const bench_case *bc, uint16_t port, bench_result *r)
{
    uint64_t *samples = NULL;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int rc = raw_setup(s);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (rc == 0 && connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        rc = -errno;
    if (rc != 0)
        goto out;
    if (bc->mode == MODE_TPUT) {
        uint64_t t0 = now_ns();
        rc = ceil_mode ? ceil_send_all(s, bc) : raw_send_all(s, bc);
        uint8_t done[RAW_HDR + DONE_LEN];
        if (rc == 0)
            rc = raw_read_full(s, done, sizeof done);
        uint64_t t1 = now_ns();
        if (rc == 0 && (get_be32(done) != DONE_LEN ||
                        memcmp(done + RAW_HDR, DONE_BODY, DONE_LEN) != 0))
            rc = -EPROTO;
        r->secs = (double)(t1 - t0) / 1e9;
        goto out;
    }
    samples = calloc(bc->n, sizeof *samples);
    if (samples == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    uint8_t msg[RAW_HDR + MAX_SIZE], back[RAW_HDR + MAX_SIZE];
    size_t len = RAW_HDR + bc->size;
    put_be32(msg, (uint32_t)bc->size);
    memcpy(msg + RAW_HDR, payload, bc->size);
    for (uint64_t i = 0; i < bc->warmup + bc->n && rc == 0; i++) {
        put_u64(msg + RAW_HDR, i);
        uint64_t t0 = now_ns();
        rc = raw_write_all(s, msg, len);
        if (rc == 0)
            rc = raw_read_full(s, back, len);
        uint64_t t1 = now_ns();
        if (rc == 0 && memcmp(msg, back, len) != 0)
            rc = -EPROTO;
        if (i >= bc->warmup)
            samples[i - bc->warmup] = t1 - t0;
    }
    if (rc == 0)
        rtt_summary(samples, bc->n, r);
out:
    if (rc != 0)
        fprintf(stderr, "bench: raw sender: %s\n", strerror(-rc));
    free(samples);
    close(s);
    return rc;
}

/* ---- the encrypted ceiling --------------------------------------------- */

/* What any program must do at least to carry these messages encrypted end
 * to end on one core a side: ChaCha20-Poly1305 (libsodium, the cipher of
 * confab's links) over frames of at most a Noise message's payload, each
 * encrypted straight from the body into a 128 KiB transmit buffer that is
 * written whole (writes coalesced), and decrypted in place in the
 * receiver's read buffer. No message format, no acknowledgement, no
 * reassembly copy: a limit, not a rival. */

#define CEIL_CHUNK (65535u - crypto_aead_chacha20poly1305_IETF_ABYTES)
#define CEIL_TXBUF (128u * 1024u)
#define CEIL_RXBUF (256u * 1024u)

static const uint8_t ceil_key[crypto_aead_chacha20poly1305_IETF_KEYBYTES] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void ceil_nonce(uint8_t n[crypto_aead_chacha20poly1305_IETF_NPUBBYTES],
                       uint64_t ctr)
{
    memset(n, 0, crypto_aead_chacha20poly1305_IETF_NPUBBYTES);
    memcpy(n + 4, &ctr, sizeof ctr);
}

static int ceil_send_all(int s, const bench_case *bc)
{
    static uint8_t buf[CEIL_TXBUF];
    size_t used = 0;
    uint64_t ctr = 0;
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    for (uint64_t i = 0; i < bc->n; i++) {
        size_t off = 0;
        do {
            size_t take = bc->size - off;
            if (take > CEIL_CHUNK)
                take = CEIL_CHUNK;
            size_t frame =
                RAW_HDR + take + crypto_aead_chacha20poly1305_IETF_ABYTES;
            if (frame > sizeof buf - used) {
                int rc = raw_write_all(s, buf, used);
                if (rc != 0)
                    return rc;
                used = 0;
            }
            unsigned long long clen = 0;
            ceil_nonce(nonce, ctr++);
            put_be32(buf + used, (uint32_t)(frame - RAW_HDR));
            crypto_aead_chacha20poly1305_ietf_encrypt(
                buf + used + RAW_HDR, &clen, payload + off, take, NULL, 0, NULL,
                nonce, ceil_key);
            used += frame;
            off += take;
        } while (off < bc->size);
    }
    return used > 0 ? raw_write_all(s, buf, used) : 0;
}

/* Reads 256 KiB at a time, decrypts every whole frame in place, counts
 * the body bytes into messages. */
static int ceil_count(int s, const bench_case *bc)
{
    static uint8_t buf[CEIL_RXBUF];
    size_t have = 0;
    uint64_t got = 0, ctr = 0;
    size_t left = bc->size; /* of the message being received */
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    while (got < bc->n) {
        ssize_t n = read(s, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (n == 0)
            return -EPIPE;
        have += (size_t)n;
        size_t pos = 0;
        while (have - pos >= RAW_HDR) {
            size_t clen = get_be32(buf + pos);
            if (clen < crypto_aead_chacha20poly1305_IETF_ABYTES ||
                clen > 65535u)
                return -EPROTO;
            if (have - pos - RAW_HDR < clen)
                break;
            uint8_t *c = buf + pos + RAW_HDR;
            unsigned long long mlen = 0;
            ceil_nonce(nonce, ctr++);
            if (crypto_aead_chacha20poly1305_ietf_decrypt(
                    c, &mlen, NULL, c, clen, NULL, 0, nonce, ceil_key) != 0 ||
                mlen > left || got == bc->n)
                return -EPROTO;
            left -= (size_t)mlen;
            if (left == 0) {
                got++;
                left = bc->size;
            }
            pos += RAW_HDR + clen;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
    }
    if (have != 0 || left != bc->size)
        return -EPROTO;
    uint8_t done[RAW_HDR + DONE_LEN];
    put_be32(done, DONE_LEN);
    memcpy(done + RAW_HDR, DONE_BODY, DONE_LEN);
    return raw_write_all(s, done, sizeof done);
}

/* ---- one case --------------------------------------------------------- */

typedef int (*parent_main)(const bench_case *bc, uint16_t port,
                           bench_result *r);

/* The sender runs in a fresh process too, so that what one case left in
 * the heap cannot hide what the next one needs (its peak memory is
 * measured), and a node that cannot stop takes only its own process. */
typedef struct sender_out {
    int rc;
    bench_result r;
} sender_out;

static int run_sender(const bench_case *bc, uint16_t port, parent_main pm,
                      bench_result *r)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(p[0]);
        close(p[1]);
        return err;
    }
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        sender_out o;
        memset(&o, 0, sizeof o);
        struct rusage a, b;
        uint64_t rss0 = mem_mark();
        getrusage(RUSAGE_SELF, &a);
        o.rc = pm(bc, port, &o.r);
        getrusage(RUSAGE_SELF, &b);
        o.r.tx_grow_kib = mem_grown(rss0);
        o.r.tx_msg_kib = mem_grown_linked();
        o.r.tx_cpu = cpu_secs(&b) - cpu_secs(&a);
        fflush(stderr);
        _exit(write(p[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
    }
    close(p[1]);
    sender_out o;
    size_t got = 0;
    while (got < sizeof o) {
        ssize_t n = read(p[0], (uint8_t *)&o + got, sizeof o - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof o)
        return -EPIPE;
    *r = o.r;
    return o.rc;
}

static void run_case(const bench_case *bc, const char *what, child_main cm,
                     parent_main pm, bench_result *r)
{
    memset(r, 0, sizeof *r);
    fprintf(stderr, "bench: %s, %s ...\n", bc->label, what);
    child ch = {.pid = -1, .fd = -1};
    int rc = child_spawn(&ch, cm, bc);
    if (rc != 0) {
        fprintf(stderr, "bench: cannot fork: %s\n", strerror(-rc));
        return;
    }
    uint16_t port = 0;
    rc = child_read_port(&ch, &port);
    if (rc != 0)
        fprintf(stderr, "bench: no port from the receiver: %s\n",
                strerror(-rc));
    else
        rc = run_sender(bc, port, pm, r);
    uint64_t grown = 0;
    int crc = child_reap(&ch, rc != 0, &r->rx_cpu, &grown);
    r->rx_grow_kib = grown & 0xffffffffu; /* KiB: both fit 32 bits */
    r->rx_msg_kib = grown >> 32;
    r->ok = rc == 0 && crc == 0;
    if (!r->ok)
        fprintf(stderr, "bench: %s, %s: FAILED\n", bc->label, what);
}

/* ---- the report ------------------------------------------------------- */

static void fmt_tput(char *out, size_t cap, const bench_case *bc,
                     const bench_result *r)
{
    if (!r->ok) {
        snprintf(out, cap, "FAILED");
        return;
    }
    char a[32], b[32];
    double mps = (double)bc->n / r->secs;
    fmt_count(a, sizeof a, round_u64(mps));
    fmt_count(b, sizeof b, round_u64(mps * (double)bc->size / 1e6));
    snprintf(out, cap, "%s msg/s %s MB/s", a, b);
}

static void fmt_rtt(char *out, size_t cap, const bench_result *r)
{
    if (!r->ok)
        snprintf(out, cap, "FAILED");
    else
        snprintf(out, cap, "median %.1f us p99 %.1f us", r->median_us,
                 r->p99_us);
}

/* Persistence on against off: throughput and round trip, with the ratio
 * (on / off: the share of the rate kept, the factor on the latency). */
static void print_persist(const bench_case *cases, const bench_result *conf,
                          const bool *run, size_t n_cases)
{
    bool any = false;
    for (size_t i = 0; i < n_cases; i++)
        any = any || (run[i] && cases[i].persist);
    if (!any)
        return;
    char cwd[PATH_MAX] = "?";
    const char *fs = "";
    struct statfs sf;
    if (getcwd(cwd, sizeof cwd) == NULL)
        snprintf(cwd, sizeof cwd, "?");
    if (statfs(".", &sf) == 0 && sf.f_type == 0x01021994) /* TMPFS_MAGIC */
        fs = " (a tmpfs: fsync costs nothing there)";
    printf("persistence: on (a home directory on both sides, in %s%s, the "
           "receiver's inbox read as messages come) vs off\n",
           cwd, fs);
    printf("%-17s %-30s %-30s %s\n", "test", "on", "off", "ratio on/off");
    for (size_t i = 0; i < n_cases; i++) {
        if (!run[i] || !cases[i].persist)
            continue;
        const bench_case *on = &cases[i], *off = &cases[on->off];
        const bench_result *ron = &conf[i], *roff = &conf[on->off];
        char a[96], b[96], ratio[16] = "-";
        if (on->mode == MODE_TPUT) {
            fmt_tput(a, sizeof a, on, ron);
            fmt_tput(b, sizeof b, off, roff);
            if (ron->ok && roff->ok)
                snprintf(ratio, sizeof ratio, "%.2f",
                         ((double)on->n / ron->secs) /
                             ((double)off->n / roff->secs));
        } else {
            fmt_rtt(a, sizeof a, ron);
            fmt_rtt(b, sizeof b, roff);
            if (ron->ok && roff->ok)
                snprintf(ratio, sizeof ratio, "%.2f",
                         ron->median_us / roff->median_us);
        }
        printf("%-17s %-30s %-30s %s\n", on->label, a, b, ratio);
    }
    printf("ratio: msg/s on over msg/s off; round trip median on over off\n");
}

/* The cipher alone on one core: ChaCha20-Poly1305 over 64 KiB frames of a
 * 16 MiB body, MB/s. */
static double cipher_mbs(void)
{
    static uint8_t out[65536];
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    uint64_t ctr = 0, t0 = now_ns();
    for (int round = 0; round < 4; round++)
        for (size_t off = 0; off < BIG_SIZE; off += CEIL_CHUNK) {
            size_t take =
                BIG_SIZE - off < CEIL_CHUNK ? BIG_SIZE - off : CEIL_CHUNK;
            unsigned long long clen;
            ceil_nonce(nonce, ctr++);
            crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, payload + off,
                                                      take, NULL, 0, NULL,
                                                      nonce, ceil_key);
        }
    double secs = (double)(now_ns() - t0) / 1e9;
    return 4.0 * BIG_SIZE / 1e6 / secs;
}

/* The table (#18): each figure against its limit measured in
 * this run, the ratio and the target. */
static void print_limits(const bench_case *cases, const bench_result *conf,
                         const bench_result *raw, const bench_result *ceil,
                         const bool *run, size_t n_cases)
{
    printf("against the limits (issue #18): the encrypted ceiling is "
           "ChaCha20-Poly1305 end to end, one core a side, writes "
           "coalesced, two processes\n");
    printf("%-17s %-30s %-30s %-6s %s\n", "figure", "confab", "limit", "ratio",
           "target");
    for (size_t i = 0; i < n_cases; i++) {
        const bench_case *bc = &cases[i];
        if (!run[i] || bc->persist)
            continue;
        char c[96], l[96], ratio[16] = "-", target[64] = "";
        if (bc->mode == MODE_RTT) {
            fmt_rtt(c, sizeof c, &conf[i]);
            fmt_rtt(l, sizeof l, &raw[i]);
            if (conf[i].ok && raw[i].ok) {
                double q = conf[i].median_us / raw[i].median_us;
                snprintf(ratio, sizeof ratio, "%.2f", q);
                snprintf(target, sizeof target, "<= 1.10 x raw TCP: %s",
                         q <= 1.10 ? "met" : "MISSED");
            }
        } else {
            fmt_tput(c, sizeof c, bc, &conf[i]);
            fmt_tput(l, sizeof l, bc, &ceil[i]);
            double want = bc->size >= BIG_SIZE ? 0.95 : 0.90;
            if (conf[i].ok && ceil[i].ok) {
                double q = ceil[i].secs / conf[i].secs;
                snprintf(ratio, sizeof ratio, "%.2f", q);
                snprintf(target, sizeof target, ">= %.2f of the ceiling: %s",
                         want, q >= want ? "met" : "MISSED");
            }
        }
        printf("%-17s %-30s %-30s %-6s %s\n", bc->label, c, l, ratio, target);
        if (bc->size >= BIG_SIZE && conf[i].ok) {
            uint64_t fl = conf[i].max_in_flight ? conf[i].max_in_flight : 1;
            double mib = (double)bc->size / 1048576.0;
            double tx = (double)conf[i].tx_grow_kib / 1024.0 / (double)fl;
            double rx = (double)conf[i].rx_grow_kib / 1024.0;
            printf("  memory per message in flight: sender %.1f MiB (%.1f MiB "
                   "at the peak, %llu in flight), receiver %.1f MiB; target "
                   "<= %.0f MiB each side: %s\n",
                   tx, (double)conf[i].tx_grow_kib / 1024.0,
                   (unsigned long long)fl, rx, mib + 1.0,
                   tx <= mib + 1.0 && rx <= mib + 1.0 ? "met" : "MISSED");
            double txm = (double)conf[i].tx_msg_kib / 1024.0 / (double)fl;
            double rxm = (double)conf[i].rx_msg_kib / 1024.0;
            printf("  of it above the linked node (what the messages add): "
                   "sender %.1f MiB, receiver %.1f MiB; target <= %.0f MiB "
                   "each side: %s\n",
                   txm, rxm, mib + 1.0,
                   txm <= mib + 1.0 && rxm <= mib + 1.0 ? "met" : "MISSED");
            printf("  the cipher alone, one core: %.0f MB/s\n", cipher_mbs());
        }
    }
    printf("ratio: confab msg/s over the ceiling's; the round trip's median "
           "over raw TCP's; the idle rows are bench_idle's\n");
}

static int parse_scale(double *scale)
{
    const char *s = getenv("BENCH_SCALE");
    *scale = 1.0;
    if (s == NULL || *s == '\0')
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0.0) || v > 100.0) {
        fprintf(stderr,
                "bench: BENCH_SCALE must be a number above 0 and at most "
                "100 (e.g. 0.01 for a quick run), not '%s'\n",
                s);
        return -EINVAL;
    }
    *scale = v;
    return 0;
}

static uint64_t scaled(uint64_t n, double scale)
{
    uint64_t v = round_u64((double)n * scale);
    return v < 1 ? 1 : v;
}

int main(int argc, char **argv)
{
    double scale;
    if (parse_scale(&scale) != 0)
        return 1;
    if (scale > 1.0)
        deadline_ms = (unsigned)(DEADLINE_MS * scale);
    /* A peer that vanishes must fail a write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 131u + 7u);

    bench_case cases[] = {
        {"unicast 64 B", MODE_TPUT, 64, scaled(2000000, scale), 0, false, 0},
        {"unicast 1 KiB", MODE_TPUT, 1024, scaled(1000000, scale), 0, false, 0},
        {"unicast 64 KiB", MODE_TPUT, 65536, scaled(30000, scale), 0, false, 0},
        {"round trip 64 B", MODE_RTT, 64, scaled(20000, scale),
         scaled(1000, scale), false, 0},
        {"message 16 MiB", MODE_TPUT, BIG_SIZE, scaled(40, scale), 0, false, 0},
        /* Persistence on, each against its case above. */
        {"persist 1 KiB", MODE_TPUT, 1024, scaled(200000, scale), 0, true, 1},
        {"persist rt 64 B", MODE_RTT, 64, scaled(5000, scale),
         scaled(200, scale), true, 3},
    };
    enum { N_CASES = sizeof cases / sizeof cases[0] };
    bench_result conf[N_CASES], raw[N_CASES], ceil[N_CASES];
    if (sodium_init() < 0)
        return 1;
    bool all_ok = true;
    bool run[N_CASES];
    for (size_t i = 0; i < N_CASES; i++) {
        /* An argument picks the cases whose label contains it. */
        run[i] = argc < 2 || strstr(cases[i].label, argv[1]) != NULL;
        memset(&conf[i], 0, sizeof conf[i]);
        memset(&raw[i], 0, sizeof raw[i]);
        memset(&ceil[i], 0, sizeof ceil[i]);
    }
    /* A persistence case needs the same case without persistence beside
     * it, measured in the same run. */
    for (size_t i = 0; i < N_CASES; i++)
        if (run[i] && cases[i].persist)
            run[cases[i].off] = true;
    for (size_t i = 0; i < N_CASES; i++) {
        if (!run[i])
            continue;
        run_case(&cases[i], "confab", confab_child, confab_sender, &conf[i]);
        if (cases[i].persist) {
            all_ok = all_ok && conf[i].ok;
            continue;
        }
        run_case(&cases[i], "raw", raw_child, raw_sender, &raw[i]);
        all_ok = all_ok && conf[i].ok && raw[i].ok;
        if (cases[i].mode == MODE_TPUT) {
            ceil_mode = true;
            run_case(&cases[i], "encrypted ceiling", raw_child, raw_sender,
                     &ceil[i]);
            ceil_mode = false;
            all_ok = all_ok && ceil[i].ok;
        }
    }

    printf("confab link benchmark (two processes, 127.0.0.1)\n");
    if (scale != 1.0)
        printf("BENCH_SCALE=%g: counts scaled, numbers are rough\n", scale);
    printf("%-17s %-30s %-30s %-6s %s\n", "test", "confab", "raw", "ratio",
           "target");
    const char *t1k = "not run", *trtt = "not run";
    double r1k = 0, rrtt = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        if (!run[i] || cases[i].persist)
            continue;
        const bench_case *bc = &cases[i];
        char c[96], w[96], ratio[16] = "-", target[64] = "";
        bool both = conf[i].ok && raw[i].ok;
        if (bc->mode == MODE_TPUT) {
            fmt_tput(c, sizeof c, bc, &conf[i]);
            fmt_tput(w, sizeof w, bc, &raw[i]);
            if (both)
                snprintf(ratio, sizeof ratio, "%.2f",
                         raw[i].secs / conf[i].secs);
            if (bc->size == 1024 && !conf[i].ok)
                t1k = "FAILED";
            if (bc->size == 1024 && conf[i].ok) {
                r1k = (double)bc->n / conf[i].secs;
                t1k = r1k >= TARGET_1K_MSGS ? "met" : "MISSED";
                snprintf(target, sizeof target, "target >= 400,000 msg/s: %s",
                         t1k);
            }
        } else {
            fmt_rtt(c, sizeof c, &conf[i]);
            fmt_rtt(w, sizeof w, &raw[i]);
            if (!both)
                trtt = "FAILED";
            if (both) {
                rrtt = conf[i].median_us / raw[i].median_us;
                snprintf(ratio, sizeof ratio, "%.2f", rrtt);
                trtt = rrtt <= TARGET_RTT ? "met" : "MISSED";
                snprintf(target, sizeof target, "target <= 1.25: %s", trtt);
            }
        }
        printf("%-17s %-30s %-30s %-6s %s\n", bc->label, c, w, ratio, target);
    }
    printf("ratio: confab / raw for throughput, confab median / raw median "
           "for the round trip; MB = 10^6 body bytes\n");
    /* CPU time per message says what the wall clock cannot on a busy
     * machine: which side is the bottleneck, and by how much. */
    printf("CPU per message, sender + receiver:\n");
    for (size_t i = 0; i < N_CASES; i++) {
        const bench_case *bc = &cases[i];
        /* Not for the round trip: the kernel samples CPU time at its tick,
         * which says little about a process that mostly sleeps. */
        if (!run[i] || !conf[i].ok || bc->mode != MODE_TPUT ||
            (!bc->persist && !raw[i].ok))
            continue;
        double n = (double)bc->n;
        if (bc->persist) {
            printf("  %-17s confab %.2f + %.2f us\n", bc->label,
                   conf[i].tx_cpu / n * 1e6, conf[i].rx_cpu / n * 1e6);
            continue;
        }
        printf("  %-17s confab %.2f + %.2f us   raw %.2f + %.2f us\n",
               bc->label, conf[i].tx_cpu / n * 1e6, conf[i].rx_cpu / n * 1e6,
               raw[i].tx_cpu / n * 1e6, raw[i].rx_cpu / n * 1e6);
    }
    printf("messages per transport message, the sender's (batches, #18):\n");
    for (size_t i = 0; i < N_CASES; i++)
        if (run[i] && conf[i].ok && conf[i].tx_frames > 0)
            printf("  %-17s %.1f (%llu in %llu)\n", cases[i].label,
                   (double)conf[i].tx_maps / (double)conf[i].tx_frames,
                   (unsigned long long)conf[i].tx_maps,
                   (unsigned long long)conf[i].tx_frames);
    print_persist(cases, conf, run, N_CASES);
    print_limits(cases, conf, raw, ceil, run, N_CASES);
    char v[32];
    fmt_count(v, sizeof v, round_u64(r1k));
    printf("target unicast 1 KiB >= 400,000 msg/s: %s (%s msg/s)\n", t1k, v);
    printf("target round trip median <= 1.25 x raw: %s (%.2f x)\n", trtt, rrtt);
    if (!all_ok)
        printf("some cases FAILED: see the messages above\n");
    return all_ok ? 0 : 1;
}
