/* bench_mesh.c: how fast a network meshes, and what a link costs.
 *
 * For N = 10, 20, 50 and 100 nodes in one process, at default settings
 * (beacons every second to 127.255.255.255, the dial rule, peer exchange),
 * measures the time from starting the nodes to the full mesh, and the
 * resident memory the network added divided by its number of links. Each
 * run is a fresh child process, so one run's heap cannot flatter the next;
 * the figure is the median of five runs.
 *
 * Targets: 50 nodes in at most 500 ms; at most 16 KiB per link; (#18)
 * PEERS messages O(N^2) in all (the growth exponent of a log-log fit is
 * printed), and CPU per link within 1.5 x a link's 8 X25519 operations.
 *
 * Memory is shown two ways: the network's whole resident memory over its
 * links (the target's measure), and what the links themselves add: the
 * same N nodes started without discovery (so never linked) are measured in
 * another child, and the difference is divided by the links. With few
 * nodes the first is mostly the nodes' fixed cost (their keys live in
 * guarded, locked pages, for one). */
#include "node/testnet.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 5

typedef struct result {
    double mesh_ms;
    double rss_kib; /* what the network added to the process */
    int ok;
    /* area: performance (#18) */
    double peers_msgs;    /* PEERS messages all nodes sent until the mesh */
    double cpu_us;        /* CPU time of the process (every thread) */
    double peers_entries; /* entries those PEERS carried */
    double route_msgs;    /* ROUTE adverts (#12) sent until the mesh */
} result;

static double cpu_now_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double thread_cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* One X25519 operation on this machine now, microseconds of CPU (not of
 * the wall: on a loaded machine the wall clock counts other processes'
 * turns, and the figure it is compared with is CPU time too). The
 * handshake of a link does eight (Noise XX: a key pair and three DH a
 * side). */
static double x25519_us(void)
{
    uint8_t sk[32], pk[32], out[32];
    randombytes_buf(sk, sizeof sk);
    crypto_scalarmult_base(pk, sk);
    enum { OPS = 2000 };
    double t0 = thread_cpu_us();
    for (int i = 0; i < OPS; i++) {
        if (crypto_scalarmult(out, sk, pk) != 0)
            return 0;
        pk[0] ^= out[0]; /* depends on the last: no reordering */
    }
    return (thread_cpu_us() - t0) / OPS;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
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

static bool quiet_done(confab_testnet *tn, void *arg)
{
    (void)tn;
    (void)arg;
    return false;
}

/* One network in this (child) process. linked: with discovery, until the
 * full mesh; else the same nodes, started and left alone for a moment. */
static void one_run(unsigned n, bool linked, int fd)
{
    result r;
    memset(&r, 0, sizeof r);
    uv_loop_t loop;
    confab_testnet *tn = NULL;
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = n;
    c.discovery = linked;
    c.node.log_level = CONFAB_LOG_ERROR;
    c.node.mesh_threshold = n + 1; /* the full mesh it measures (#13) */
    if (uv_loop_init(&loop) != 0)
        goto out;
    long before = rss_kib();
    double cpu0 = cpu_now_us();
    uint64_t t0 = uv_hrtime();
    if (confab_testnet_new(&loop, &c, &tn) != 0 ||
        confab_testnet_start(tn) != 0)
        goto out;
    if (linked) {
        if (confab_testnet_wait_mesh(tn, 60000) != 0) {
            /* Say how far it got: links up, and what the nodes did. */
            unsigned up = 0;
            for (unsigned i = 0; i < n; i++)
                for (unsigned j = i + 1; j < n; j++)
                    up += confab_testnet_linked(tn, i, j);
            uint64_t dialed = 0, tmo = 0, dup = 0, busy = 0;
            for (unsigned i = 0; i < n; i++) {
                confab_stats st;
                confab_node_stats(confab_testnet_node(tn, i), &st);
                dialed += st.links_dialed;
                tmo += st.handshakes_timed_out;
                dup += st.duplicate_links;
                busy += st.links_refused_busy;
            }
            fprintf(stderr,
                    "bench_mesh: %u nodes: %u of %u links up after 60 s "
                    "(dialed %" PRIu64 ", handshakes timed out %" PRIu64
                    ", duplicates %" PRIu64 ", refused busy %" PRIu64 ")\n",
                    n, up, n * (n - 1) / 2, dialed, tmo, dup, busy);
            goto out;
        }
    } else {
        (void)confab_testnet_run_until(tn, quiet_done, NULL, 200);
    }
    uint64_t t1 = uv_hrtime();
    r.cpu_us = cpu_now_us() - cpu0;
    for (unsigned i = 0; i < n; i++) {
        confab_stats st;
        confab_node_stats(confab_testnet_node(tn, i), &st);
        r.peers_msgs += (double)st.peers_msgs_sent;
        r.peers_entries += (double)st.peers_entries_sent;
        r.route_msgs += (double)st.route_adverts_sent;
    }
    r.rss_kib = (double)(rss_kib() - before);
    r.mesh_ms = (double)(t1 - t0) / 1e6;
    r.ok = 1;
out:
    if (tn != NULL)
        confab_testnet_free(tn);
    uv_run(&loop, UV_RUN_NOWAIT);
    (void)uv_loop_close(&loop);
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(2);
    _exit(r.ok ? 0 : 1);
}

static int run_child(unsigned n, bool linked, result *r)
{
    int p[2];
    if (pipe(p) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        close(p[0]);
        one_run(n, linked, p[1]);
    }
    close(p[1]);
    ssize_t got = read(p[0], r, sizeof *r);
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof *r || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0 || !r->ok)
        return -EIO;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_SIZES 6

/* The slope of log(y) over log(x), least squares: how y grows with x. */
static double growth_exponent(const double *x, const double *y, size_t k)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (x[i] <= 0 || y[i] <= 0)
            continue;
        double lx = log(x[i]), ly = log(y[i]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
        m++;
    }
    double d = (double)m * sxx - sx * sx;
    return m >= 2 && d > 0 ? ((double)m * sxy - sx * sy) / d : 0;
}

int main(int argc, char **argv)
{
    static const unsigned all_sizes[] = {10, 20, 50, 100};
    /* Arguments pick the sizes (e.g. "10 50"); none: all four. */
    unsigned sizes[MAX_SIZES];
    size_t n_sizes = 0;
    for (int i = 1; i < argc && n_sizes < MAX_SIZES; i++) {
        unsigned long v = strtoul(argv[i], NULL, 10);
        if (v >= 2 && v <= 200)
            sizes[n_sizes++] = (unsigned)v;
    }
    const char *scale = getenv("BENCH_SCALE");
    /* CI's smoke run (BENCH_SCALE 0.01) checks that it runs: 100 nodes
     * in one process take most of a minute on a loaded 2-core machine,
     * and once did not mesh in 60 s there. Name 100 to run it. */
    size_t all_n = scale && strtod(scale, NULL) < 0.1 ? 3 : 4;
    if (n_sizes == 0)
        for (; n_sizes < all_n; n_sizes++)
            sizes[n_sizes] = all_sizes[n_sizes];
    const char *runs_env = getenv("BENCH_MESH_RUNS");
    int runs = scale && strtod(scale, NULL) < 1.0 ? 1 : RUNS;
    if (runs_env != NULL) {
        long v = strtol(runs_env, NULL, 10);
        if (v >= 1 && v <= RUNS)
            runs = (int)v;
    }
    printf("confab mesh benchmark (one process, default settings, "
           "median of %d)\n",
           runs);
    if (sodium_init() < 0)
        return 1;
    printf("%-6s %-6s %10s %18s %14s %11s %8s %12s %11s %10s %14s %8s\n",
           "nodes", "links", "mesh time", "memory/link (all)", "(links only)",
           "PEERS msgs", "/ N^2", "entries", "ROUTE msgs", "CPU/link",
           "X25519 x 8", "ratio");
    double ms50 = 0, worst_all = 0, worst_links = 0, worst_x = 0;
    double fit_n[MAX_SIZES], fit_msgs[MAX_SIZES], fit_entries[MAX_SIZES];
    size_t fitted = 0;
    int failed = 0;
    for (size_t s = 0; s < n_sizes; s++) {
        unsigned n = sizes[s];
        double links = (double)n * (n - 1) / 2.0;
        double ms[RUNS], all[RUNS], marg[RUNS], pm[RUNS], cpu[RUNS];
        double pe[RUNS], xs[RUNS], rm[RUNS];
        int i;
        for (i = 0; i < runs; i++) {
            result r, q;
            /* The cost of a handshake's key work, measured next to each
             * run: the load the run saw, it saw too. */
            xs[i] = 8.0 * x25519_us();
            if (run_child(n, true, &r) != 0 || run_child(n, false, &q) != 0)
                break;
            ms[i] = r.mesh_ms;
            all[i] = r.rss_kib / links;
            marg[i] = (r.rss_kib - q.rss_kib) / links;
            pm[i] = r.peers_msgs;
            pe[i] = r.peers_entries;
            rm[i] = r.route_msgs;
            cpu[i] = r.cpu_us / links;
        }
        if (i < runs) {
            printf("%-6u %-6.0f did not mesh in 60 s\n", n, links);
            failed = 1;
            continue;
        }
        qsort(pm, (size_t)runs, sizeof pm[0], cmp_double);
        qsort(pe, (size_t)runs, sizeof pe[0], cmp_double);
        qsort(rm, (size_t)runs, sizeof rm[0], cmp_double);
        qsort(xs, (size_t)runs, sizeof xs[0], cmp_double);
        qsort(cpu, (size_t)runs, sizeof cpu[0], cmp_double);
        qsort(ms, (size_t)runs, sizeof ms[0], cmp_double);
        qsort(all, (size_t)runs, sizeof all[0], cmp_double);
        qsort(marg, (size_t)runs, sizeof marg[0], cmp_double);
        double m = ms[runs / 2], a = all[runs / 2], g = marg[runs / 2];
        double c = cpu[runs / 2], x = xs[runs / 2];
        printf("%-6u %-6.0f %7.0f ms %14.1f KiB %10.1f KiB %11.0f %8.2f "
               "%12.0f %11.0f %7.0f us %11.0f us %7.2fx\n",
               n, links, m, a, g, pm[runs / 2], pm[runs / 2] / ((double)n * n),
               pe[runs / 2], rm[runs / 2], c, x, c / x);
        fit_n[fitted] = n;
        fit_msgs[fitted] = pm[runs / 2];
        fit_entries[fitted] = pe[runs / 2];
        fitted++;
        if (c / x > worst_x)
            worst_x = c / x;
        if (n == 50)
            ms50 = m;
        if (a > worst_all)
            worst_all = a;
        if (g > worst_links)
            worst_links = g;
    }
    if (fitted >= 2)
        printf("growth with N (log-log least squares over %zu sizes): PEERS "
               "messages N^%.2f, entries N^%.2f; target (#18): messages "
               "O(N^2), %s\n",
               fitted, growth_exponent(fit_n, fit_msgs, fitted),
               growth_exponent(fit_n, fit_entries, fitted),
               growth_exponent(fit_n, fit_msgs, fitted) <= 2.2 ? "met"
                                                               : "MISSED");
    printf("target: 50 nodes mesh in <= 500 ms: %.0f ms, %s "
           "(the issue quotes Zyre, unauthenticated, at about 1,060 ms)\n",
           ms50, ms50 <= 500 ? "met" : "MISSED");
    printf("target: <= 16 KiB per link: worst %.1f KiB over all the "
           "network, %s; links alone at most %.1f KiB, %s\n",
           worst_all, worst_all <= 16 ? "met" : "MISSED", worst_links,
           worst_links <= 16 ? "met" : "MISSED");
    printf("target (#18): CPU per link (process CPU time until the mesh "
           "over links) <= 1.5 x the CPU of a link's 8 X25519 operations "
           "measured next to each run: worst %.2f x, %s\n",
           worst_x, worst_x <= 1.5 ? "met" : "MISSED");
    return failed;
}
