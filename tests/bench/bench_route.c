/* bench_route.c: what a relay costs (routing, docs/PROTOCOL.md section
 * 13). Three nodes, each in its own process, in a line A - R - B, as on
 * three machines (each node's crypto runs on its own core when the
 * machine has one to spare):
 *
 * - R (forked) listens on 127.0.0.1;
 * - B (forked) listens on 127.0.0.2 and statically dials R;
 * - A (this process) listens on 127.0.0.3 and statically dials R.
 *
 * Discovery is off. A and B learn of each other from R's PEERS, at the
 * address their links to R came from (127.0.0.1) with their listening
 * port, where nothing listens: their dials are refused, so they are never
 * linked and A reaches B only through R. Before measuring, A's route to B
 * must be 2 hops via R with no link to B, and after measuring A must
 * still have no link to B, or the run fails.
 *
 * Measured in the same run, rounds alternating:
 * - throughput of 1 KiB unicasts from the first send until A has every
 *   acknowledgement, direct (A -> R: two working processes; B idles) and
 *   relayed (A -> B through R, sealed end to end); target: relayed >= 0.5
 *   x direct;
 * - the round trip of one unicast (send to its acknowledgement), one at a
 *   time, direct and relayed, medians; target: the relay adds no more
 *   than the direct round trip.
 * Each figure is the median of ROUNDS rounds. A missed target is printed;
 * the exit status is 0 when every case ran. BENCH_SCALE scales the
 * counts. */
#include "node/confab.h"
#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#define BODY        1024u
#define TPUT_MSGS   20000u
#define RTT_ROUNDS  200u
#define DEADLINE_MS 120000u
#define ROUNDS      5u
#define SETUP_MS    20000u

typedef struct bench {
    uv_loop_t loop;
    confab_node *node;
    uv_check_t pump;
    uv_timer_t deadline;
    uint8_t to[CONFAB_ID_BYTES]; /* the receiver now */
    uint64_t delivered;          /* outcomes DELIVERED for `to` */
    uint64_t failed;             /* any other outcome */
    uint64_t sent, total;
    bool timed_out;
} bench;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

static void log_cb(confab_node *node, confab_log_level level, const char *msg,
                   void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "bench_route: [%s] %s\n", confab_node_name(node), msg);
}

/* ---- R and B: forked children ------------------------------------------ */

/* A node's counters that say what a relay did, on one line. */
static void print_counters(const char *who, confab_node *n)
{
    confab_stats s;
    confab_node_stats(n, &s);
    fprintf(stderr,
            "%s: forwarded %llu, writes %llu (%.1f envelopes a write), "
            "dropped full %llu, links cut tx full %llu, retransmits %llu\n",
            who, (unsigned long long)s.routed_forwarded,
            (unsigned long long)s.link_writes,
            s.link_writes ? (double)s.routed_forwarded / (double)s.link_writes
                          : 0.0,
            (unsigned long long)s.routed_relay_full,
            (unsigned long long)s.links_cut_tx_full,
            (unsigned long long)s.retransmits);
}

/* SIGTERM from the parent: say the counters, stop. */
static void on_term(uv_signal_t *h, int sig)
{
    (void)sig;
    confab_node *n = h->data;
    print_counters(confab_node_name(n), n);
    fflush(stderr);
    _exit(0);
}

/* Runs one node until killed. Writes its port (2 bytes) and id to fd once
 * it listens. */
static int child_node(const char *name, const char *bind, const char *peer,
                      int fd)
{
    uv_loop_t loop;
    confab_node *n;
    confab_config c;
    confab_config_init(&c);
    c.name = name;
    c.bind_addr = bind;
    c.log_cb = log_cb;
    c.log_level = CONFAB_LOG_ERROR;
    c.discovery = 0;
    const char *peers[1] = {peer};
    if (peer != NULL) {
        c.static_peers = peers;
        c.n_static_peers = 1;
    }
    if (uv_loop_init(&loop) != 0 || confab_node_new(&loop, &c, &n) != 0 ||
        confab_node_start(n) != 0)
        return 1;
    uint8_t out[2 + CONFAB_ID_BYTES];
    uint16_t port = confab_node_port(n);
    out[0] = (uint8_t)(port >> 8);
    out[1] = (uint8_t)port;
    memcpy(out + 2, confab_node_id(n), CONFAB_ID_BYTES);
    uv_signal_t term;
    uv_signal_init(&loop, &term);
    term.data = n;
    uv_signal_start(&term, on_term, SIGTERM);
    if (write(fd, out, sizeof out) != (ssize_t)sizeof out)
        return 1;
    uv_run(&loop, UV_RUN_DEFAULT); /* until the parent kills it */
    return 0;
}

typedef struct child {
    pid_t pid;
    uint16_t port;
    uint8_t id[CONFAB_ID_BYTES];
} child;

static int spawn(child *ch, const char *name, const char *bind,
                 const char *peer)
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
        /* Never outlive the parent, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int rc = child_node(name, bind, peer, p[1]);
        fflush(stderr);
        _exit(rc);
    }
    close(p[1]);
    ch->pid = pid;
    uint8_t in[2 + CONFAB_ID_BYTES];
    size_t got = 0;
    while (got < sizeof in) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int rc = poll(&pfd, 1, (int)SETUP_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        ssize_t k = read(p[0], in + got, sizeof in - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(p[0]);
    if (got != sizeof in) {
        fprintf(stderr, "bench_route: %s did not start\n", name);
        return -EPIPE;
    }
    ch->port = (uint16_t)(in[0] << 8 | in[1]);
    memcpy(ch->id, in + 2, CONFAB_ID_BYTES);
    return 0;
}

/* SIGTERM first (the child prints its counters), SIGKILL after 2 s. */
static void reap(child *ch)
{
    if (ch->pid <= 0)
        return;
    kill(ch->pid, SIGTERM);
    int st;
    for (int i = 0; i < 200; i++) {
        pid_t w = waitpid(ch->pid, &st, WNOHANG);
        if (w == ch->pid || (w < 0 && errno != EINTR)) {
            ch->pid = 0;
            return;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(ch->pid, SIGKILL);
    while (waitpid(ch->pid, &st, 0) < 0 && errno == EINTR)
        ;
    ch->pid = 0;
}

/* ---- A: this process ---------------------------------------------------- */

static void pump(bench *b)
{
    static uint8_t body[BODY];
    while (b->sent < b->total) {
        int rc = confab_send(b->node, b->to, body, sizeof body, NULL, NULL);
        if (rc == -EAGAIN || rc == -ENOBUFS)
            return;
        if (rc != 0) {
            fprintf(stderr, "bench_route: send: %s\n", confab_strerror(rc));
            exit(1);
        }
        b->sent++;
    }
}

static void on_event(confab_node *node, const confab_event *ev, void *user)
{
    bench *b = user;
    (void)node;
    if (ev->type != CONFAB_EV_SEND || ev->peer == NULL ||
        memcmp(ev->peer, b->to, CONFAB_ID_BYTES) != 0)
        return;
    if (ev->status == CONFAB_DELIVERED)
        b->delivered++;
    else
        b->failed++;
    if (b->delivered + b->failed >= b->total)
        uv_stop(&b->loop);
}

/* Sends again whenever the loop has run (acks free room). */
static void on_check(uv_check_t *h)
{
    pump(h->data);
}

static void on_deadline(uv_timer_t *t)
{
    bench *b = t->data;
    b->timed_out = true;
    uv_stop(&b->loop);
}

/* Runs the loop until done(b) or the deadline. */
static int run_until(bench *b, bool (*done)(bench *b), unsigned ms)
{
    b->timed_out = false;
    uv_timer_start(&b->deadline, on_deadline, ms, 0);
    while (!done(b) && !b->timed_out)
        uv_run(&b->loop, UV_RUN_ONCE);
    uv_timer_stop(&b->deadline);
    return b->timed_out ? -ETIMEDOUT : 0;
}

static bool all_acked(bench *b)
{
    return b->delivered + b->failed >= b->total;
}

static const uint8_t *g_r, *g_b; /* R's and B's ids */

/* A is linked to R, not to B. */
static bool linked_only_to_r(bench *b)
{
    confab_peer_info info[8];
    size_t count = 0;
    confab_peers(b->node, info, 8, &count);
    bool to_r = false;
    for (size_t i = 0; i < count && i < 8; i++) {
        if (info[i].state != CONFAB_PEER_UP)
            continue;
        if (memcmp(info[i].id, g_b, CONFAB_ID_BYTES) == 0)
            return false;
        if (memcmp(info[i].id, g_r, CONFAB_ID_BYTES) == 0)
            to_r = true;
    }
    return to_r;
}

static bool route_via_r(bench *b)
{
    confab_route r[8];
    size_t k = confab_routes(b->node, r, 8);
    for (size_t i = 0; i < k && i < 8; i++)
        if (memcmp(r[i].dst, g_b, CONFAB_ID_BYTES) == 0 && r[i].metric == 2 &&
            memcmp(r[i].via, g_r, CONFAB_ID_BYTES) == 0)
            return linked_only_to_r(b);
    return false;
}

/* ---- CPU per message of each process ----------------------------------- */

/* CPU clocks of A (this process), R and B: clock_getcpuclockid reads
 * another process's CPU time without its help. */
typedef struct cpu_clocks {
    clockid_t clk[3];
} cpu_clocks;
enum { P_A = 0, P_R = 1, P_B = 2 };
static cpu_clocks g_cpu;
static double g_rx_per_msg; /* bytes A received per message, last phase */

static double cpu_s(clockid_t clk)
{
    struct timespec t;
    if (clock_gettime(clk, &t) != 0)
        return 0;
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static pid_t g_pid[3]; /* A, R, B */

/* Context switches (voluntary and not) of pid: how often it slept and
 * woke (/proc/PID/status). */
static double ctxt_of(pid_t pid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    double sum = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *v = strchr(line, ':');
        if (v != NULL && strstr(line, "ctxt_switches") != NULL)
            sum += strtod(v + 1, NULL);
    }
    fclose(f);
    return sum;
}

static void cpu_now(double out[6])
{
    for (int i = 0; i < 3; i++) {
        out[i] = cpu_s(g_cpu.clk[i]);
        out[3 + i] = ctxt_of(g_pid[i]);
    }
}

/* CPU per message (us) of A, R and B over a phase of msgs messages, then
 * their context switches per message. */
static void cpu_per_msg(const double t0[6], double msgs, double out[6])
{
    double t1[6];
    cpu_now(t1);
    for (int i = 0; i < 6; i++)
        out[i] = (t1[i] - t0[i]) * (i < 3 ? 1e6 : 1.0) / msgs;
}

/* msg/s of total 1 KiB unicasts to `to`, to the last ACK. */
static double throughput_cpu(bench *b, const uint8_t *to, uint64_t total,
                             double cpu[6])
{
    /* Only when asked: the round trips call this once per message, and
     * reading /proc there would be timed with them. */
    double c0[6] = {0};
    confab_stats s0;
    memset(&s0, 0, sizeof s0);
    if (cpu != NULL) {
        cpu_now(c0);
        confab_node_stats(b->node, &s0);
    }
    memcpy(b->to, to, CONFAB_ID_BYTES);
    b->delivered = b->failed = b->sent = 0;
    b->total = total;
    double t0 = now_s();
    pump(b);
    if (run_until(b, all_acked, DEADLINE_MS) != 0 || b->failed != 0) {
        fprintf(stderr,
                "bench_route: throughput: %llu of %llu delivered, %llu "
                "failed%s\n",
                (unsigned long long)b->delivered, (unsigned long long)total,
                (unsigned long long)b->failed,
                b->timed_out ? ", timed out" : "");
        exit(1);
    }
    double rate = (double)total / (now_s() - t0);
    if (cpu != NULL) {
        cpu_per_msg(c0, (double)total, cpu);
        confab_stats s1;
        confab_node_stats(b->node, &s1);
        /* A receives acknowledgements only: their bytes per message
         * show how many come back (an ACK frame is ~40 bytes direct,
         * ~160 in an envelope). */
        g_rx_per_msg =
            (double)(s1.bytes_received - s0.bytes_received) / (double)total;
    }
    return rate;
}

static double throughput(bench *b, const uint8_t *to, uint64_t total)
{
    return throughput_cpu(b, to, total, NULL);
}

/* The median round trip (send to ACK) of one unicast at a time, in us. */
static double round_trip(bench *b, const uint8_t *to, unsigned rounds,
                         double cpu[6])
{
    double *v = calloc(rounds, sizeof *v);
    if (v == NULL)
        exit(1);
    double c0[6];
    cpu_now(c0);
    for (unsigned i = 0; i < rounds; i++) {
        double t0 = now_s();
        (void)throughput(b, to, 1);
        v[i] = (now_s() - t0) * 1e6;
    }
    cpu_per_msg(c0, rounds, cpu);
    qsort(v, rounds, sizeof *v, cmp_d);
    double m = v[rounds / 2];
    free(v);
    return m;
}

static void print_fig(const char *what, const char *unit, double *v, int prec)
{
    qsort(v, ROUNDS, sizeof v[0], cmp_d);
    printf("%-20s %.*f %s (median of %u; range %.*f..%.*f)\n", what, prec,
           v[ROUNDS / 2], unit, ROUNDS, prec, v[0], prec, v[ROUNDS - 1]);
}

/* The median over the rounds of column k of v[round][3]. */
static double med_col(double v[ROUNDS][6], int k)
{
    double c[ROUNDS];
    for (unsigned i = 0; i < ROUNDS; i++)
        c[i] = v[i][k];
    qsort(c, ROUNDS, sizeof c[0], cmp_d);
    return c[ROUNDS / 2];
}

/* The slowest process's CPU per message bounds a pipeline with a core
 * per process: 1 / max(CPU per message) messages a second. */
static double bound_of(double v[ROUNDS][6], int procs)
{
    double worst = 0;
    for (int k = 0; k < procs; k++)
        if (med_col(v, k) > worst)
            worst = med_col(v, k);
    return worst > 0 ? 1e6 / worst : 0;
}

/* Extra rows, not the issue's figures: what each process spends per
 * message, which load on a shared machine changes far less than the wall
 * clock, and the rate a core per node would reach. */
static void print_cpu(double td[ROUNDS][6], double tr[ROUNDS][6],
                      double rd[ROUNDS][6], double rr[ROUNDS][6])
{
    printf("CPU per message, us (medians of %u rounds; A R B):\n", ROUNDS);
    printf("  throughput direct:   %6.2f %6.2f %6.2f\n", med_col(td, P_A),
           med_col(td, P_R), med_col(td, P_B));
    printf("  throughput relayed:  %6.2f %6.2f %6.2f\n", med_col(tr, P_A),
           med_col(tr, P_R), med_col(tr, P_B));
    printf("  round trip direct:   %6.2f %6.2f %6.2f\n", med_col(rd, P_A),
           med_col(rd, P_R), med_col(rd, P_B));
    printf("  round trip relayed:  %6.2f %6.2f %6.2f\n", med_col(rr, P_A),
           med_col(rr, P_R), med_col(rr, P_B));
    printf("context switches per message (medians; A R B):\n");
    printf("  throughput direct:   %6.2f %6.2f %6.2f\n", med_col(td, 3),
           med_col(td, 4), med_col(td, 5));
    printf("  throughput relayed:  %6.2f %6.2f %6.2f\n", med_col(tr, 3),
           med_col(tr, 4), med_col(tr, 5));
    printf("  round trip direct:   %6.2f %6.2f %6.2f\n", med_col(rd, 3),
           med_col(rd, 4), med_col(rd, 5));
    printf("  round trip relayed:  %6.2f %6.2f %6.2f\n", med_col(rr, 3),
           med_col(rr, 4), med_col(rr, 5));
    /* Direct: A and R work, B idles (its timers only). */
    double bd = bound_of(td, 2), br = bound_of(tr, 3);
    printf("pipeline bound (1 / max CPU per msg of any process; a core per "
           "node): direct %.0f msg/s, relayed %.0f msg/s, relayed / direct "
           "%.2f (not the issue's figure: the wall ratio above is)\n",
           bd, br, bd > 0 ? br / bd : 0);
    double sd = med_col(rd, P_A) + med_col(rd, P_R);
    double sr = med_col(rr, P_A) + med_col(rr, P_R) + med_col(rr, P_B);
    printf("CPU on the round trip's path (sum of the processes): direct %.1f "
           "us, relayed %.1f us, relayed / direct %.2f\n",
           sd, sr, sd > 0 ? sr / sd : 0);
}

/* ---- the crypto floor ---------------------------------------------------- */

/* CPU us per call of f over many calls, on this process. */
static double cpu_per_call(void (*f)(void), unsigned n)
{
    double t0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    for (unsigned i = 0; i < n; i++)
        f();
    return (cpu_s(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e6 / n;
}

static uint8_t g_key[32], g_nonce[24], g_pt[BODY + 256], g_ct[BODY + 512];

/* One link frame of a relayed 1 KiB unicast (the envelope around the
 * sealed map, ~1.2 KB): the Noise cipher's work per hop. */
static void one_aead(void)
{
    unsigned long long clen;
    g_nonce[0]++;
    (void)crypto_aead_chacha20poly1305_ietf_encrypt(
        g_ct, &clen, g_pt, BODY + 160, NULL, 0, NULL, g_nonce, g_key);
}

/* The end-to-end seal of the map (~1.1 KB) with a precomputed key. */
static void one_box(void)
{
    g_nonce[0]++;
    (void)crypto_box_easy_afternm(g_ct, g_pt, BODY + 80, g_nonce, g_key);
}

/* What the ciphers alone cost: direct, A encrypts once and R decrypts
 * once; relayed, A seals and encrypts, R decrypts and encrypts, B
 * decrypts and opens (a box opens at the cost it seals). */
static void print_floor(void)
{
    double aead = cpu_per_call(one_aead, 20000);
    double box = cpu_per_call(one_box, 20000);
    double d_sum = 2 * aead, r_sum = 4 * aead + 2 * box;
    double d_max = aead, r_max = aead + box > 2 * aead ? aead + box : 2 * aead;
    printf("crypto floor (this process, CPU): ChaCha20-Poly1305 of a "
           "frame %.2f us, box of the map %.2f us\n",
           aead, box);
    printf("  all processes sharing the cores: direct %.1f us/msg, relayed "
           "%.1f us/msg: a wall ratio of at most %.2f\n",
           d_sum, r_sum, d_sum / r_sum);
    printf("  a core per node: direct %.1f us, relayed %.1f us in the "
           "busiest process: a pipeline ratio of at most %.2f\n",
           d_max, r_max, d_max / r_max);
}

int main(void)
{
    double scale = getenv("BENCH_SCALE") ? atof(getenv("BENCH_SCALE")) : 1.0;
    uint64_t msgs = (uint64_t)(TPUT_MSGS * scale);
    unsigned rounds = (unsigned)(RTT_ROUNDS * scale);
    if (msgs < 100)
        msgs = 100;
    if (rounds < 11)
        rounds = 11;
    /* BENCH_ROUTE_RTT=N: N round trips a round and the fewest messages,
     * for profiling the round trip (perf record). */
    if (getenv("BENCH_ROUTE_RTT") != NULL) {
        rounds = (unsigned)strtoul(getenv("BENCH_ROUTE_RTT"), NULL, 10);
        msgs = 100;
        if (rounds < 11)
            rounds = 11;
    }

    /* BENCH_ROUTE_RELAYED=1: the direct rounds at the fewest messages,
     * for profiling the relay (perf record -p R). */
    uint64_t dmsgs = getenv("BENCH_ROUTE_RELAYED") != NULL ? 100 : msgs;
    /* BENCH_ROUTE_ONLY=direct or relayed: the other round trips at the
     * fewest (profiling one path). */
    const char *only = getenv("BENCH_ROUTE_ONLY");
    bool only_d = only != NULL && strcmp(only, "direct") == 0;
    bool only_r = only != NULL && strcmp(only, "relayed") == 0;
    /* No libuv loop exists yet: each child makes its own after the fork. */
    child r = {0}, bn = {0};
    if (spawn(&r, "bench-R", "127.0.0.1", NULL) != 0)
        return 1;
    char rpeer[32];
    snprintf(rpeer, sizeof rpeer, "127.0.0.1:%u", r.port);
    if (spawn(&bn, "bench-B", "127.0.0.2", rpeer) != 0) {
        reap(&r);
        return 1;
    }
    g_r = r.id;
    g_b = bn.id;
    g_pid[P_A] = getpid();
    g_pid[P_R] = r.pid;
    g_pid[P_B] = bn.pid;
    if (clock_getcpuclockid(0, &g_cpu.clk[P_A]) != 0 ||
        clock_getcpuclockid(r.pid, &g_cpu.clk[P_R]) != 0 ||
        clock_getcpuclockid(bn.pid, &g_cpu.clk[P_B]) != 0) {
        fprintf(stderr, "bench_route: cannot read the children's CPU clocks\n");
        reap(&bn);
        reap(&r);
        return 1;
    }

    bench b;
    memset(&b, 0, sizeof b);
    const char *peers[1] = {rpeer};
    confab_config c;
    confab_config_init(&c);
    c.name = "bench-A";
    c.bind_addr = "127.0.0.3";
    c.static_peers = peers;
    c.n_static_peers = 1;
    c.discovery = 0;
    c.event_cb = on_event;
    c.user = &b;
    c.log_cb = log_cb;
    c.log_level = CONFAB_LOG_ERROR;
    int rc = 1;
    if (uv_loop_init(&b.loop) != 0 ||
        confab_node_new(&b.loop, &c, &b.node) != 0 ||
        confab_node_start(b.node) != 0)
        goto out;
    uv_check_init(&b.loop, &b.pump);
    b.pump.data = &b;
    uv_check_start(&b.pump, on_check);
    uv_timer_init(&b.loop, &b.deadline);
    b.deadline.data = &b;
    if (run_until(&b, route_via_r, SETUP_MS) != 0) {
        fprintf(stderr, "bench_route: A's route to B via R (2 hops, no link "
                        "A - B) did not form\n");
        goto out;
    }
    printf("bench_route: 3 processes, A - R - B (A and B never linked; "
           "A's route to B: 2 hops via R); 1 KiB unicasts, %llu a round, "
           "%u rounds alternating direct (A -> R) and relayed (A -> B); "
           "round trips: median of %u a round\n",
           (unsigned long long)msgs, ROUNDS, rounds);
    /* For `perf report --pid` on one of them. */
    printf("processes: A %d, R %d, B %d\n", (int)getpid(), (int)r.pid,
           (int)bn.pid);
    double direct[ROUNDS], relayed[ROUNDS], ratio[ROUNDS];
    double rtt_d[ROUNDS], rtt_r[ROUNDS], added[ROUNDS];
    double rx_d[ROUNDS], rx_r[ROUNDS];
    /* CPU per message (us) of each process, per round: [round][A R B]. */
    double cpu_td[ROUNDS][6], cpu_tr[ROUNDS][6];
    double cpu_rd[ROUNDS][6], cpu_rr[ROUNDS][6];
    (void)throughput(&b, r.id, msgs / 10); /* warm up both paths */
    (void)throughput(&b, bn.id, msgs / 10);
    for (unsigned i = 0; i < ROUNDS; i++) {
        direct[i] = throughput_cpu(&b, r.id, dmsgs, cpu_td[i]);
        rx_d[i] = g_rx_per_msg;
        relayed[i] = throughput_cpu(&b, bn.id, msgs, cpu_tr[i]);
        rx_r[i] = g_rx_per_msg;
        ratio[i] = relayed[i] / direct[i];
        rtt_d[i] = round_trip(&b, r.id, only_r ? 11 : rounds, cpu_rd[i]);
        rtt_r[i] = round_trip(&b, bn.id, only_d ? 11 : rounds, cpu_rr[i]);
        added[i] = (rtt_r[i] - rtt_d[i]) / rtt_d[i];
    }
    if (!linked_only_to_r(&b)) {
        fprintf(stderr, "bench_route: A linked to B during the run: the "
                        "relayed figures are void\n");
        goto out;
    }
    print_fig("throughput direct:", "msg/s", direct, 0);
    print_fig("throughput relayed:", "msg/s", relayed, 0);
    print_fig("relayed / direct:", "", ratio, 2);
    print_fig("round trip direct:", "us", rtt_d, 0);
    print_fig("round trip relayed:", "us", rtt_r, 0);
    print_fig("added / direct rtt:", "", added, 2);
    print_cpu(cpu_td, cpu_tr, cpu_rd, cpu_rr);
    if (sodium_init() >= 0)
        print_floor();
    print_fig("A rx B/msg direct:", "bytes", rx_d, 1);
    print_fig("A rx B/msg relayed:", "bytes", rx_r, 1);
    /* The verdicts on the medians of the per-round ratios. */
    printf("relayed / direct throughput %.2f (target >= 0.50): %s\n",
           ratio[ROUNDS / 2], ratio[ROUNDS / 2] >= 0.5 ? "met" : "MISSED");
    printf("added round trip per hop %.2f x direct (target <= 1.00): %s\n",
           added[ROUNDS / 2], added[ROUNDS / 2] <= 1.0 ? "met" : "MISSED");
    confab_stats st;
    confab_node_stats(b.node, &st);
    printf("A: %llu retransmits\n", (unsigned long long)st.retransmits);
    fflush(stdout);
    rc = 0;
out:
    /* The children hold no state worth a clean stop: a benchmark's nodes
     * keep nothing on disk. */
    reap(&bn);
    reap(&r);
    /* A's node is left running: the process ends here and its sockets
     * with it. */
    fflush(stdout);
    _exit(rc);
}
