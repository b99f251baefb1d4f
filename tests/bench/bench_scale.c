/* bench_scale.c: a thousand nodes (#13): the figures of the issue's
 * acceptance list at N = 100, 300 and 1,000 nodes in one process.
 *
 * Each run is a fresh child process (its own heap, its own descriptors),
 * the figure the median of three runs (one under BENCH_SCALE < 1). A run:
 * start N nodes with default settings as the test network sets them (its
 * dial rate and handshake budget: node/app/testnet.c; beacons to
 * 127.255.255.255, the dial rule, peer exchange, routing, and the overlay
 * above its threshold once the node has one), wait until every node knows every
 * other (confab_testnet_measure), then
 *   - links per node (min, median, max) against the configured maximum;
 *   - memory per node: the process's resident growth over N, and the heap
 *     in use (mallinfo2) over N;
 *   - a first broadcast from a random node (it builds a broadcast tree
 *     where there is one), then a second: nodes reached, and the copies
 *     received per node (the nodes' own counters) of the second;
 *   - 1,000 unicasts between random pairs: sent, delivered, acknowledged;
 *   - 30% of the nodes crash at once (silent: cut from all, no BYE); 10 s
 *     later a survivor broadcasts: survivors reached.
 * Then the curve of formation time and memory per node against N, with
 * the exponent of a least-squares fit of log(figure) on log(N).
 *
 * A size whose nodes cannot have the descriptors they need (the full mesh
 * of this version needs N * (N - 1) link ends: 300 nodes already pass the
 * usual hard limit) is skipped with the figures and what to do; it runs
 * once the overlay bounds the links per node.
 *
 * Arguments pick the sizes ("100 300"); BENCH_SCALE_MAX_NODES caps them
 * (default 1000); BENCH_SCALE < 1 (the CI's smoke run) runs 100 only,
 * once, with a 1 s wait after the crash. Exit status 1 only when a run
 * failed to run (a child died, or the nodes could not start). */
#include "node/testnet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS      3
#define MAX_SIZES 8
#define PAIRS     1000u

typedef struct result {
    int status;          /* 0 done, 1 not formed in time, -1 could not run */
    unsigned links_each; /* the configured maximum */
    confab_testnet_report first; /* formation, first broadcast, unicasts */
    double copies_after;         /* second broadcast: copies per node */
    uint64_t copies_after_max;
    unsigned reached_after, receivers_after;
    unsigned survivors, survivors_reached; /* after the crash */
    double survivors_ms;
    double wall_s;
} result;

static void quiet_log(confab_node *node, confab_log_level level,
                      const char *msg, void *user)
{
    (void)node;
    (void)user;
    if (getenv("BENCH_LOG") != NULL)
        fprintf(stderr, "[%d] %s\n", (int)level, msg);
}

static void progress(const confab_testnet_progress *p, void *user)
{
    (void)user;
    if (getenv("BENCH_PROGRESS") != NULL)
        fprintf(stderr,
                "  forming: %u up, %llu links (%u-%u), %u know all, "
                "%.1f s\n",
                p->up, (unsigned long long)p->links, p->links_min, p->links_max,
                p->knowing_all, (double)p->elapsed_ms / 1e3);
}

static bool never(confab_testnet *tn, void *arg)
{
    (void)tn;
    (void)arg;
    return false;
}

/* The run, in the child. */
static void one_run(unsigned n, unsigned seed, unsigned crash_wait_ms,
                    result *res)
{
    memset(res, 0, sizeof *res);
    res->status = -1;
    uint64_t t0 = uv_hrtime();
    confab_testnet_memory before;
    confab_testnet_memory_now(&before);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return;
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = n;
    c.seed = 0x5ca1e000u + seed;
    c.discovery = true;
    c.node.log_cb = quiet_log;
    c.node.log_level = CONFAB_LOG_ERROR;
    res->links_each = confab_testnet_links_per_node(&c.node, n);
    confab_testnet *tn = NULL;
    if (confab_testnet_new(&loop, &c, &tn) != 0)
        return;
    if (confab_testnet_start(tn) != 0) {
        (void)confab_testnet_free(tn);
        return;
    }
    confab_testnet_measure_opts o;
    confab_testnet_measure_opts_init(&o);
    o.pairs = PAIRS;
    o.timeout_ms = 60000;
    o.seed = seed + 1;
    o.before = before;
    o.progress = progress;
    int rc = confab_testnet_measure(tn, &o, &res->first);
    res->status = rc == 0 ? 0 : 1;
    if (res->first.formed_ms >= 0) {
        /* The tree formed by the first broadcast carries the second. */
        confab_testnet_report r2;
        o.skip_formation = true;
        o.pairs = 0;
        o.seed = seed + 2;
        o.timeout_ms = 30000;
        (void)confab_testnet_measure(tn, &o, &r2);
        res->copies_after = r2.copies_mean;
        res->copies_after_max = r2.copies_max;
        res->reached_after = r2.bcast_reached;
        res->receivers_after = r2.bcast_receivers;
        /* 30% crash at once, chosen by the seed. */
        unsigned kill = n * 3 / 10, killed = 0;
        uint64_t s = seed * 7919u + 1;
        while (killed < kill) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            if (confab_testnet_crash_node(tn, (unsigned)(s >> 33) % n) == 0)
                killed++;
        }
        (void)confab_testnet_run_until(tn, never, NULL, crash_wait_ms);
        o.seed = seed + 3;
        (void)confab_testnet_measure(tn, &o, &r2);
        res->survivors = r2.up;
        res->survivors_reached = r2.bcast_reached + 1; /* and the sender */
        res->survivors_ms = r2.bcast_ms;
    }
    (void)confab_testnet_free(tn);
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    res->wall_s = (double)(uv_hrtime() - t0) / 1e9;
}

static int run_child(unsigned n, unsigned seed, unsigned crash_wait_ms,
                     result *out)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fd[0]);
        result r;
        one_run(n, seed, crash_wait_ms, &r);
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t k = read(fd[0], (char *)out + got, sizeof *out - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return got == sizeof *out && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                   out->status >= 0
               ? 0
               : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, low and high of v[0..k). */
typedef struct stat3 {
    double med, lo, hi;
} stat3;

static stat3 stat_of(double *v, int k)
{
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    return (stat3){v[(k - 1) / 2], v[0], v[k - 1]};
}

/* The slope of log(y) on log(x), least squares: the exponent of the
 * curve y = a * x^b. NAN with fewer than two points. */
static double exponent(const double *x, const double *y, int k)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < k; i++) {
        if (x[i] <= 0 || y[i] <= 0)
            continue;
        double lx = log(x[i]), ly = log(y[i]);
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
        m++;
    }
    if (m < 2 || m * sxx - sx * sx == 0)
        return NAN;
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

static const char *ok(bool met)
{
    return met ? "met" : "MISSED";
}

typedef struct size_row {
    unsigned n;
    bool ran;
    double formed_ms, rss_kib, heap_kib;
} size_row;

/* Runs one size `runs` times and prints its figures. Returns 0, or -1
 * when a run failed to run. */
static int bench_size(unsigned n, int runs, unsigned crash_wait_ms,
                      size_row *row)
{
    row->n = n;
    confab_config cfg;
    confab_config_init(&cfg);
    unsigned links = confab_testnet_links_per_node(&cfg, n);
    uint64_t need = confab_testnet_fds_needed(n, links);
    confab_testnet_fds f;
    if (confab_testnet_raise_fds(need, &f) != 0) {
        printf("\n%u nodes: skipped: with %u links a node (%s) they need "
               "%llu descriptors and the hard limit is %llu; raise it "
               "(ulimit -Hn as root, LimitNOFILE=) or bound the links\n",
               n, links,
               links + 1 >= n ? "the full mesh: this version keeps no "
                                "partial mesh yet"
                              : "the overlay's maximum",
               (unsigned long long)need, (unsigned long long)f.hard);
        return 0;
    }
    double formed[RUNS], lmin[RUNS], lmed[RUNS], lmax[RUNS], rss[RUNS],
        heap[RUNS], reach[RUNS], copies1[RUNS], copies2[RUNS], cmax[RUNS],
        usent[RUNS], udel[RUNS], uack[RUNS], uni_ms[RUNS], surv[RUNS],
        surv_reached[RUNS], wall[RUNS], reach2[RUNS];
    int done = 0;
    unsigned recv = n - 1;
    for (int i = 0; i < runs; i++) {
        result r;
        if (run_child(n, (unsigned)i + 1, crash_wait_ms, &r) != 0) {
            printf("\n%u nodes: run %d failed to run (a child died or the "
                   "nodes could not start)\n",
                   n, i + 1);
            return -1;
        }
        if (r.first.formed_ms < 0) {
            printf("\n%u nodes, run %d: the network did not form in 60 s: "
                   "%u of %u nodes knew every other; links %u/%u/%u; "
                   "%.0f s\n",
                   n, i + 1, r.first.knowing_all, r.first.up, r.first.links_min,
                   r.first.links_median, r.first.links_max, r.wall_s);
            continue;
        }
        formed[done] = r.first.formed_ms;
        lmin[done] = r.first.links_min;
        lmed[done] = r.first.links_median;
        lmax[done] = r.first.links_max;
        rss[done] = r.first.rss_per_node / 1024.0;
        heap[done] = r.first.heap_per_node / 1024.0;
        reach[done] = r.first.bcast_reached;
        copies1[done] = r.first.copies_mean;
        copies2[done] = r.copies_after;
        reach2[done] = r.reached_after;
        cmax[done] = (double)r.copies_after_max;
        usent[done] = r.first.uni_sent;
        udel[done] = r.first.uni_delivered;
        uack[done] = r.first.uni_acked;
        uni_ms[done] = r.first.uni_ms;
        surv[done] = r.survivors;
        surv_reached[done] = r.survivors_reached;
        wall[done] = r.wall_s;
        done++;
    }
    if (done == 0)
        return 0;
    stat3 fm = stat_of(formed, done), lo = stat_of(lmin, done),
          me = stat_of(lmed, done), hi = stat_of(lmax, done),
          rs = stat_of(rss, done), hp = stat_of(heap, done),
          rc = stat_of(reach, done), c1 = stat_of(copies1, done),
          c2 = stat_of(copies2, done), cm = stat_of(cmax, done),
          us = stat_of(usent, done), ud = stat_of(udel, done),
          ua = stat_of(uack, done), um = stat_of(uni_ms, done),
          sv = stat_of(surv, done), sr = stat_of(surv_reached, done),
          wl = stat_of(wall, done), r2 = stat_of(reach2, done);
    printf("\n%u nodes (median of %d, [low, high]; %.0f s a run):\n", n, done,
           wl.med);
    printf("  formed: every node knew all in %.0f ms [%.0f, %.0f]\n", fm.med,
           fm.lo, fm.hi);
    printf("  links per node: min %.0f, median %.0f, max %.0f [max %.0f, "
           "%.0f]; configured maximum %u: %s\n",
           lo.med, me.med, hi.med, hi.lo, hi.hi, links,
           ok(hi.hi <= (double)links));
    printf("  memory per node: %.1f KiB resident [%.1f, %.1f], %.1f KiB "
           "heap [%.1f, %.1f]\n",
           rs.med, rs.lo, rs.hi, hp.med, hp.lo, hp.hi);
    printf("  broadcast: reached %.0f of %u [%.0f, %.0f], the second %.0f "
           "[%.0f, %.0f]; copies per node %.3f the first time [%.3f, %.3f], "
           "%.3f the second [%.3f, %.3f], most at one node %.0f\n",
           rc.med, recv, rc.lo, rc.hi, r2.med, r2.lo, r2.hi, c1.med, c1.lo,
           c1.hi, c2.med, c2.lo, c2.hi, cm.med);
    printf("  unicast: %u random pairs: %.0f sent, %.0f delivered, %.0f "
           "acknowledged [%.0f, %.0f] in %.0f ms\n",
           PAIRS, us.med, ud.med, ua.med, ua.lo, ua.hi, um.med);
    printf("  30%% crashed, broadcast %.0f s later: %.0f of %.0f survivors "
           "reached [%.0f, %.0f]\n",
           crash_wait_ms / 1000.0, sr.med, sv.med, sr.lo, sr.hi);
    printf("  targets: formed <= 10 s %s; memory <= 64 KiB %s; reached all "
           "%s; copies <= 1.1 %s; unicasts all acknowledged %s; survivors "
           "all reached %s\n",
           ok(fm.med <= 10000), ok(rs.med <= 64),
           ok(rc.lo >= recv && r2.lo >= recv), ok(c2.med <= 1.1),
           ok(ua.lo >= PAIRS), ok(sr.lo >= sv.hi));
    row->ran = true;
    row->formed_ms = fm.med;
    row->rss_kib = rs.med;
    row->heap_kib = hp.med;
    return 0;
}

int main(int argc, char **argv)
{
    static const unsigned all_sizes[] = {100, 300, 1000};
    unsigned sizes[MAX_SIZES];
    size_t n_sizes = 0;
    for (int i = 1; i < argc && n_sizes < MAX_SIZES; i++) {
        unsigned long v = strtoul(argv[i], NULL, 10);
        if (v >= 10 && v <= 4096)
            sizes[n_sizes++] = (unsigned)v;
    }
    if (n_sizes == 0)
        for (; n_sizes < 3; n_sizes++)
            sizes[n_sizes] = all_sizes[n_sizes];
    const char *scale = getenv("BENCH_SCALE");
    bool smoke = scale != NULL && strtod(scale, NULL) < 1.0;
    unsigned cap = 1000;
    const char *capv = getenv("BENCH_SCALE_MAX_NODES");
    if (capv != NULL && strtoul(capv, NULL, 10) >= 10)
        cap = (unsigned)strtoul(capv, NULL, 10);
    if (smoke)
        cap = 100;
    int runs = smoke ? 1 : RUNS;
    unsigned crash_wait_ms = smoke ? 1000 : 10000;
    printf("confab scale benchmark: N nodes in one process, the test "
           "network's settings, median of %d; %u unicasts between random "
           "pairs\n",
           runs, PAIRS);
    size_row rows[MAX_SIZES];
    size_t n_rows = 0;
    int status = 0;
    for (size_t s = 0; s < n_sizes; s++) {
        if (sizes[s] > cap) {
            printf("\n%u nodes: skipped: over BENCH_SCALE_MAX_NODES (%u)\n",
                   sizes[s], cap);
            continue;
        }
        memset(&rows[n_rows], 0, sizeof rows[n_rows]);
        if (bench_size(sizes[s], runs, crash_wait_ms, &rows[n_rows]) != 0)
            status = 1;
        if (rows[n_rows].ran)
            n_rows++;
    }
    double xs[MAX_SIZES], fy[MAX_SIZES], ry[MAX_SIZES], hy[MAX_SIZES];
    printf("\ncurve (medians):\n  %-6s %12s %14s %12s\n", "nodes", "formed",
           "resident/node", "heap/node");
    for (size_t i = 0; i < n_rows; i++) {
        xs[i] = rows[i].n;
        fy[i] = rows[i].formed_ms;
        ry[i] = rows[i].rss_kib;
        hy[i] = rows[i].heap_kib;
        printf("  %-6u %9.0f ms %10.1f KiB %8.1f KiB\n", rows[i].n,
               rows[i].formed_ms, rows[i].rss_kib, rows[i].heap_kib);
    }
    double ef = exponent(xs, fy, (int)n_rows),
           er = exponent(xs, ry, (int)n_rows),
           eh = exponent(xs, hy, (int)n_rows);
    if (n_rows >= 2)
        printf("  exponent (log-log least squares over %zu sizes): formation "
               "time ~ N^%.2f, resident memory per node ~ N^%.2f, heap per "
               "node ~ N^%.2f\n",
               n_rows, ef, er, eh);
    else
        printf("  exponent: needs two sizes that ran (%zu did)\n", n_rows);
    return status;
}
