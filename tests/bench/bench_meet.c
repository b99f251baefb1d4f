/* bench_meet.c: how long two nodes that start one second apart take to
 * link, with and without the instant re-announce (docs/PROTOCOL.md 9.1: a
 * node that hears a node it did not know sends one extra beacon at once).
 *
 * Two nodes in one process, beacons every second (the default) to
 * 127.255.255.255. The early node starts; one second later the late one
 * starts, and the clock runs from its start until both see the link up.
 * The late node is the one with the smaller id: it is the one that dials
 * (PROTOCOL.md 9.2), so it must hear the early node first. Without the
 * re-announce it hears it only at the early node's next regular beacon
 * (0 to 1.25 s later); with it, the early node answers the late node's
 * first beacon at once. (In the other order the early node, the smaller,
 * dials as soon as it hears the first beacon either way.)
 *
 * Five runs each way (a fresh network each, ids from a different seed);
 * printed: the median and the range. Informs, does not gate. */
#include "node/node.h"
#include "node/testnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5

static bool never(confab_testnet *tn, void *arg)
{
    (void)tn;
    (void)arg;
    return false;
}

static bool both_linked(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_testnet_linked(tn, 0, 1) && confab_testnet_linked(tn, 1, 0);
}

/* One run: milliseconds from the late node's start to the link, or a
 * negative value on failure. */
static double one_run(unsigned seed, bool reannounce)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return -1;
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = 2;
    c.seed = seed;
    c.discovery = true;
    confab_testnet *tn;
    double ms = -1;
    if (confab_testnet_new(&loop, &c, &tn) != 0)
        goto out_loop;
    const uint8_t *id0 = confab_node_id(confab_testnet_node(tn, 0));
    const uint8_t *id1 = confab_node_id(confab_testnet_node(tn, 1));
    unsigned late = memcmp(id0, id1, CONFAB_ID_BYTES) < 0 ? 0u : 1u;
    unsigned early = 1u - late;
    if (confab_testnet_start(tn) != 0 || confab_testnet_stop_node(tn, late))
        goto out;
    if (node_fault_set_no_reannounce(confab_testnet_node(tn, early),
                                     !reannounce) != 0)
        goto out;
    /* The one second between the two starts (a schedule, not a wait for
     * something to happen). */
    (void)confab_testnet_run_until(tn, never, NULL, 1000);
    uint64_t t0 = uv_hrtime();
    if (confab_testnet_restart_node(tn, late) != 0)
        goto out;
    if (confab_testnet_run_until(tn, both_linked, NULL, 10000) == 0)
        ms = (double)(uv_hrtime() - t0) / 1e6;
out:
    (void)confab_testnet_free(tn);
    uv_run(&loop, UV_RUN_DEFAULT);
out_loop:
    (void)uv_loop_close(&loop);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    double r[2][RUNS];
    for (int way = 0; way < 2; way++) {
        for (unsigned i = 0; i < RUNS; i++) {
            r[way][i] = one_run(0x3ee70000u + i, way == 1);
            if (r[way][i] < 0) {
                fprintf(stderr, "bench_meet: run %u did not link in 10 s\n", i);
                return 1;
            }
        }
        qsort(r[way], RUNS, sizeof r[way][0], cmp_double);
    }
    printf("two nodes starting 1 s apart, beacons every 1 s, %d runs each:\n"
           "  start to link without the re-announce: median %8.1f ms "
           "(range %.1f to %.1f)\n"
           "  start to link with the re-announce:    median %8.1f ms "
           "(range %.1f to %.1f)\n"
           "  ratio of medians: %.1f x\n",
           RUNS, r[0][RUNS / 2], r[0][0], r[0][RUNS - 1], r[1][RUNS / 2],
           r[1][0], r[1][RUNS - 1],
           r[1][RUNS / 2] > 0 ? r[0][RUNS / 2] / r[1][RUNS / 2] : 0.0);
    return 0;
}
