/* bench_idle.c: what an idle network costs the machine (#18).
 *
 * Ten nodes, each in its own process with its own loop (so that every
 * figure is one node's), at default settings with discovery on 127.0.0.1
 * (beacons to 127.255.255.255 on a random port). Once they have had time
 * to mesh (SETTLE_MS), each counts for IDLE_MS (30 s; times BENCH_SCALE,
 * at least 3 s) what it did while nothing was asked of it:
 *
 *   - beacons sent, per node per second (from the node's counter);
 *   - liveness PINGs sent, per peer per 5 s (from the node's counter);
 *   - wake-ups per second: the node's timers that fired (its counter
 *     timer_wakeups), the loop's turns (a uv_prepare handle of this
 *     program, run once before every poll), and the kernel's count of the
 *     process's context switches (/proc/self/status), which also counts
 *     every beacon heard from the nine others.
 *
 * Targets (issue #18): at most 1.0 beacon per node per second; at most one
 * PING per peer per 5 s; at most 2 wake-ups per second plus one per timer
 * that is due (here: the beacon, 1 per second).
 *
 * Exit status: 0 when every node ran and meshed, 1 otherwise. */
#include "node/confab.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sodium.h>
#include <unistd.h>

#define NODES     10u
#define SETTLE_MS 8000u  /* beacons, the dial rule's grace, the links */
#define IDLE_MS   30000u /* the window counted */
#define LINGER_MS 2000u  /* after it, before stopping */

typedef struct idle_result {
    int ok;
    uint64_t peers_start, peers_end;
    uint64_t beacons_sent, pings_sent, timer_wakeups;
    uint64_t loop_turns, ctx_switches;
    double secs;
} idle_result;

typedef struct idle_node {
    uv_loop_t loop;
    uv_prepare_t turns;
    uv_timer_t phase;
    confab_node *node;
    uint64_t n_turns;
    unsigned window_ms;
    int fd;
    int step; /* 0 settling, 1 counting, 2 stopping */
    idle_result r;
    confab_stats s0;
    uint64_t turns0, ctx0, t0;
} idle_node;

static uint64_t ctx_switches(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    uint64_t v = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0 ||
            strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0)
            v += strtoull(strchr(line, ':') + 1, NULL, 10);
    fclose(f);
    return v;
}

static void on_turn(uv_prepare_t *h)
{
    idle_node *x = h->data;
    x->n_turns++;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_stopped(confab_node *node, void *user)
{
    idle_node *x = user;
    (void)node;
    uv_close((uv_handle_t *)&x->turns, on_closed);
    uv_close((uv_handle_t *)&x->phase, on_closed);
    uv_stop(&x->loop);
}

static void on_phase(uv_timer_t *t)
{
    idle_node *x = t->data;
    confab_stats s;
    confab_node_stats(x->node, &s);
    if (x->step == 2) {
        /* Every node's window is over (they started within moments of
         * each other): stopping now disturbs none. */
        if (confab_node_stop(x->node, on_stopped, x) != 0)
            uv_stop(&x->loop);
        return;
    }
    if (x->step == 0) {
        x->step = 1;
        x->s0 = s;
        x->turns0 = x->n_turns;
        x->ctx0 = ctx_switches();
        x->t0 = uv_hrtime();
        uv_timer_start(&x->phase, on_phase, x->window_ms, 0);
        return;
    }
    x->step = 2;
    x->r.secs = (double)(uv_hrtime() - x->t0) / 1e9;
    x->r.ctx_switches = ctx_switches() - x->ctx0;
    x->r.loop_turns = x->n_turns - x->turns0;
    x->r.peers_start = x->s0.peers_up;
    x->r.peers_end = s.peers_up;
    x->r.beacons_sent = s.beacons_sent - x->s0.beacons_sent;
    x->r.pings_sent = s.pings_sent - x->s0.pings_sent;
    x->r.timer_wakeups = s.timer_wakeups - x->s0.timer_wakeups;
    x->r.ok = 1;
    uv_timer_start(&x->phase, on_phase, LINGER_MS, 0);
}

static const char *const loopback_broadcast[] = {"127.255.255.255"};

static void log_cb(confab_node *node, confab_log_level level, const char *msg,
                   void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "bench: [%s] %s\n", confab_node_name(node), msg);
}

static void node_main(unsigned i, uint16_t port, unsigned window_ms, int fd)
{
    idle_node x;
    memset(&x, 0, sizeof x);
    x.window_ms = window_ms;
    x.fd = fd;
    char name[16];
    snprintf(name, sizeof name, "idle-%u", i);
    confab_config c;
    confab_config_init(&c);
    c.name = name;
    c.bind_addr = "127.0.0.1";
    c.log_cb = log_cb;
    c.log_level = CONFAB_LOG_ERROR;
    c.discovery = 1;
    c.discovery_port = port;
    c.discovery_bind = "0.0.0.0";
    c.broadcast_addrs = loopback_broadcast;
    c.n_broadcast_addrs = 1;
    if (uv_loop_init(&x.loop) != 0 ||
        confab_node_new(&x.loop, &c, &x.node) != 0)
        goto out;
    uv_prepare_init(&x.loop, &x.turns);
    x.turns.data = &x;
    uv_prepare_start(&x.turns, on_turn);
    uv_unref((uv_handle_t *)&x.turns);
    uv_timer_init(&x.loop, &x.phase);
    x.phase.data = &x;
    if (confab_node_start(x.node) != 0)
        goto out;
    uv_timer_start(&x.phase, on_phase, SETTLE_MS, 0);
    uv_run(&x.loop, UV_RUN_DEFAULT);
out:
    if (write(fd, &x.r, sizeof x.r) != (ssize_t)sizeof x.r)
        _exit(2);
    /* The process ends here: the kernel takes back the node. */
    _exit(x.r.ok ? 0 : 1);
}

static double median(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct row {
    const char *label;
    double v[NODES];
} row;

static void print_row(row *r, const char *target)
{
    double mean = 0, max = 0;
    for (unsigned i = 0; i < NODES; i++) {
        mean += r->v[i];
        max = r->v[i] > max ? r->v[i] : max;
    }
    mean /= NODES;
    double med = median(r->v, NODES);
    printf("%-40s %8.2f %8.2f %8.2f   %s\n", r->label, mean, med, max, target);
}

int main(void)
{
    double scale = 1.0;
    const char *s = getenv("BENCH_SCALE");
    if (s != NULL && *s != '\0') {
        char *end;
        scale = strtod(s, &end);
        if (*end != '\0' || !(scale > 0.0) || scale > 100.0) {
            fprintf(stderr,
                    "bench: BENCH_SCALE must be a number above 0 and "
                    "at most 100, not '%s'\n",
                    s);
            return 1;
        }
    }
    unsigned window_ms = (unsigned)(IDLE_MS * scale);
    if (window_ms < 3000)
        window_ms = 3000;
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    uint16_t port = (uint16_t)(20000u + randombytes_uniform(40000u));
    pid_t pids[NODES];
    int fds[NODES];
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    for (unsigned i = 0; i < NODES; i++) {
        int p[2];
        if (pipe(p) != 0)
            return 1;
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(p[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            node_main(i, port, window_ms, p[1]);
        }
        close(p[1]);
        pids[i] = pid;
        fds[i] = p[0];
    }
    idle_result r[NODES];
    bool ok = true;
    for (unsigned i = 0; i < NODES; i++) {
        memset(&r[i], 0, sizeof r[i]);
        ssize_t got = read(fds[i], &r[i], sizeof r[i]);
        close(fds[i]);
        int st = 0;
        waitpid(pids[i], &st, 0);
        if (got != (ssize_t)sizeof r[i] || !r[i].ok) {
            fprintf(stderr, "bench: node %u failed\n", i);
            ok = false;
        } else if (r[i].peers_start != NODES - 1 ||
                   r[i].peers_end != NODES - 1) {
            fprintf(stderr,
                    "bench: node %u had %llu then %llu peers of %u "
                    "(not meshed)\n",
                    i, (unsigned long long)r[i].peers_start,
                    (unsigned long long)r[i].peers_end, NODES - 1);
            ok = false;
        }
    }
    if (!ok)
        return 1;
    row beacons = {"beacons per node per second", {0}};
    row pings = {"pings per peer per 5 s", {0}};
    row timers = {"wake-ups/s: the node's timers", {0}};
    row turns = {"wake-ups/s: loop turns", {0}};
    row ctx = {"wake-ups/s: kernel context switches", {0}};
    for (unsigned i = 0; i < NODES; i++) {
        double t = r[i].secs;
        beacons.v[i] = (double)r[i].beacons_sent / t;
        pings.v[i] = (double)r[i].pings_sent / (double)(NODES - 1) / t * 5.0;
        timers.v[i] = (double)r[i].timer_wakeups / t;
        turns.v[i] = (double)r[i].loop_turns / t;
        ctx.v[i] = (double)r[i].ctx_switches / t;
    }
    printf("confab idle benchmark: %u nodes, one process each, meshed, idle "
           "for %.1f s\n",
           NODES, r[0].secs);
    printf("%-40s %8s %8s %8s   %s\n", "figure (per node)", "mean", "median",
           "max", "target");
    double bmax = 0, pmax = 0, tmax = 0;
    for (unsigned i = 0; i < NODES; i++) {
        bmax = beacons.v[i] > bmax ? beacons.v[i] : bmax;
        pmax = pings.v[i] > pmax ? pings.v[i] : pmax;
        tmax = timers.v[i] > tmax ? timers.v[i] : tmax;
    }
    char tb[64], tp[64], tt[64];
    /* The beacon interval is jittered: a node's mean over the window may
     * pass 1.0 by chance, by about 1 / sqrt(beacons) at most. */
    snprintf(tb, sizeof tb, "<= 1.0 (+ jitter): %s",
             bmax <= 1.05 ? "met" : "MISSED");
    snprintf(tp, sizeof tp, "<= 1: %s", pmax <= 1.0 ? "met" : "MISSED");
    snprintf(tt, sizeof tt, "<= 2 + 1 (the beacon): %s",
             tmax <= 3.0 ? "met" : "MISSED");
    print_row(&beacons, tb);
    print_row(&pings, tp);
    print_row(&timers, tt);
    print_row(&turns, "(also counts the 9 others' beacons heard)");
    print_row(&ctx, "(from the kernel, same)");
    return 0;
}
