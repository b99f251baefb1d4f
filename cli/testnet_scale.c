/* cli/testnet_scale.c: `confab testnet` for large networks (#13): the
 * descriptor check, progress while the network forms, and --measure's
 * report (cli/testnet_scale.h). */
#include "cli/testnet_scale.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

int tn_scale_fds(cli_ctx *ctx, const confab_config *cfg, unsigned nodes)
{
    unsigned links = confab_testnet_links_per_node(cfg, nodes);
    uint64_t need = confab_testnet_fds_needed(nodes, links);
    confab_testnet_fds f;
    int rc = confab_testnet_raise_fds(need, &f);
    if (rc == 0)
        return CLI_OK;
    if (rc != -EMFILE) {
        cli_error(ctx, "cannot read this process's file descriptor limit: %s",
                  strerror(-rc));
        return CLI_FAILED;
    }
    cli_error(ctx,
              "%u nodes with %u links each need %llu open files, but this "
              "process may open at most %llu (hard limit %llu); raise the "
              "limit where the command runs: 'ulimit -n %llu' in the shell "
              "(above the hard limit only as root, or through nofile in "
              "/etc/security/limits.conf), LimitNOFILE=%llu in a systemd "
              "unit; or use fewer --nodes",
              nodes, links, (unsigned long long)need,
              (unsigned long long)f.soft, (unsigned long long)f.hard,
              (unsigned long long)need, (unsigned long long)need);
    return CLI_FAILED;
}

void tn_scale_progress(const confab_testnet_progress *p, void *user)
{
    (void)user;
    fprintf(stderr,
            "confab: forming: %u of %u nodes up, %llu links (%u to %u a "
            "node), %u know every other, %.1f s\n",
            p->up, p->nodes, (unsigned long long)p->links, p->links_min,
            p->links_max, p->knowing_all, (double)p->elapsed_ms / 1000.0);
}

typedef struct formed_wait {
    bool mesh; /* each node is to link every other */
    bool full; /* it did */
    uint64_t next_check, next_progress;
} formed_wait;

/* Formed: the full mesh when each node is to link every other (the
 * demonstration's groups are learned over links); every node knowing
 * every other (a link or a route) when a node keeps fewer links than the
 * others (the overlay). */
static bool formed(confab_testnet *tn, void *arg)
{
    formed_wait *w = arg;
    uint64_t now = cli_now_ms();
    if (now < w->next_check)
        return false;
    /* a pass looks at every pair: at most a tenth of the loop's time */
    uint64_t t0 = cli_now_us();
    if (w->mesh && confab_testnet_full_mesh(tn)) {
        w->full = true;
        return true;
    }
    confab_testnet_progress p;
    confab_testnet_progress_now(tn, &p);
    uint64_t cost_ms = (cli_now_us() - t0) / 1000u;
    w->next_check = now + (cost_ms * 10 > 50 ? cost_ms * 10 : 50);
    bool done = !w->mesh && p.knowing_all == p.up;
    if (!done && now >= w->next_progress) {
        if (w->next_progress != 0)
            tn_scale_progress(&p, NULL);
        w->next_progress = now + 1000;
    }
    return done;
}

int tn_scale_wait_formed(confab_testnet *tn, unsigned links_each,
                         unsigned timeout_ms, bool *full_mesh)
{
    formed_wait w = {0};
    w.mesh = links_each + 1 >= confab_testnet_size(tn);
    int rc = confab_testnet_run_until(tn, formed, &w, timeout_ms);
    *full_mesh = w.full;
    return rc;
}

static void add_num(json_object *o, const char *key, double v)
{
    json_object_object_add(o, key, json_object_new_double(v));
}

static void add_int(json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

/* A time in ms for JSON: null when it did not happen. */
static void add_ms(json_object *o, const char *key, double ms)
{
    json_object_object_add(
        o, key, ms < 0 ? NULL : json_object_new_int64((int64_t)(ms + 0.5)));
}

static void print_json(const confab_testnet_report *r, uint64_t seed,
                       unsigned pairs)
{
    json_object *o = json_object_new_object();
    add_int(o, "nodes", r->nodes);
    char sd[24]; /* a string, as in the demo's summary */
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)seed);
    json_object_object_add(o, "seed", json_object_new_string(sd));
    add_int(o, "up", r->up);
    add_int(o, "links", r->links);
    add_int(o, "links_min", r->links_min);
    add_int(o, "links_median", r->links_median);
    add_int(o, "links_max", r->links_max);
    add_ms(o, "formed_ms", r->formed_ms);
    add_int(o, "knowing_all", r->knowing_all);
    json_object *b = json_object_new_object();
    add_int(b, "from", r->bcast_from);
    add_int(b, "receivers", r->bcast_receivers);
    add_int(b, "reached", r->bcast_reached);
    add_ms(b, "ms", r->bcast_ms);
    add_num(b, "copies_mean", r->copies_mean);
    add_int(b, "copies_max", r->copies_max);
    json_object_object_add(o, "broadcast", b);
    json_object *u = json_object_new_object();
    add_int(u, "pairs", pairs);
    add_int(u, "sent", r->uni_sent);
    add_int(u, "delivered", r->uni_delivered);
    add_int(u, "acknowledged", r->uni_acked);
    add_ms(u, "ms", r->uni_ms);
    json_object_object_add(o, "unicast", u);
    json_object *m = json_object_new_object();
    add_int(m, "rss_per_node", (uint64_t)r->rss_per_node);
    if (r->heap_per_node > 0) /* else unknown: another allocator */
        add_int(m, "heap_per_node", (uint64_t)r->heap_per_node);
    else
        json_object_object_add(m, "heap_per_node", NULL);
    json_object_object_add(o, "memory", m);
    printf("%s\n",
           json_object_to_json_string_ext(
               o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

static void print_human(cli_ctx *ctx, const confab_testnet_report *r,
                        unsigned pairs, int exit_code)
{
    char buf[128];
    printf("%s\n", cli_paint(ctx, "1", "Measured", buf, sizeof buf));
    printf("  links per node    min %u, median %u, max %u (%llu links)\n",
           r->links_min, r->links_median, r->links_max,
           (unsigned long long)r->links);
    if (r->formed_ms >= 0)
        printf("  formed            every node knew every other after %.0f "
               "ms\n",
               r->formed_ms);
    else
        printf("  formed            %s: %u of %u nodes knew every other\n",
               cli_paint(ctx, "31", "not in time", buf, sizeof buf),
               r->knowing_all, r->up);
    printf("  broadcast         from n%u: reached %u of %u", r->bcast_from,
           r->bcast_reached, r->bcast_receivers);
    if (r->bcast_ms >= 0)
        printf(" in %.0f ms", r->bcast_ms);
    printf("; copies per node %.2f mean, %llu max\n", r->copies_mean,
           (unsigned long long)r->copies_max);
    printf("  unicast           %u random pairs: %u sent, %u delivered, %u "
           "acknowledged",
           pairs, r->uni_sent, r->uni_delivered, r->uni_acked);
    if (r->uni_ms >= 0)
        printf(" in %.0f ms", r->uni_ms);
    printf("\n");
    if (r->heap_per_node > 0)
        printf("  memory per node   %.1f KiB resident, %.1f KiB heap\n",
               r->rss_per_node / 1024.0, r->heap_per_node / 1024.0);
    else /* mallinfo2 does not see this allocator (a sanitizer's) */
        printf("  memory per node   %.1f KiB resident, heap unknown\n",
               r->rss_per_node / 1024.0);
    printf("  %s\n",
           exit_code == CLI_OK
               ? cli_paint(ctx, "32", "everything arrived", buf, sizeof buf)
               : cli_paint(ctx, "31", "something did not arrive", buf,
                           sizeof buf));
    fflush(stdout);
}

int tn_scale_measure(cli_ctx *ctx, confab_testnet *tn, uint64_t seed,
                     unsigned pairs, unsigned timeout_ms,
                     const confab_testnet_memory *before)
{
    confab_testnet_measure_opts o;
    confab_testnet_measure_opts_init(&o);
    o.pairs = pairs;
    o.timeout_ms = timeout_ms;
    o.seed = seed;
    o.before = *before;
    o.progress = tn_scale_progress;
    confab_testnet_report r;
    int rc = confab_testnet_measure(tn, &o, &r);
    int exit_code = CLI_OK;
    if (rc == -ENOMEM) {
        cli_error(ctx, "out of memory while measuring");
        return CLI_FAILED;
    }
    if (rc != 0 && rc != -ETIMEDOUT) {
        cli_error(ctx, "the broadcast could not be sent: %s",
                  confab_strerror(rc));
        exit_code = CLI_FAILED;
    } else if (rc != 0 || r.bcast_reached < r.bcast_receivers ||
               r.uni_acked < pairs || r.uni_delivered < pairs) {
        exit_code = CLI_TIMEOUT;
    }
    if (ctx->json)
        print_json(&r, seed, pairs);
    else
        print_human(ctx, &r, pairs, exit_code);
    return exit_code;
}
