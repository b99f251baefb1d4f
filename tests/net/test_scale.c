/* test_scale.c: the test network's tools for large networks (#13,
 * node/testnet.h "large networks"), at a small size: the measurement of a
 * formed network (links per node, formation, broadcast coverage and
 * copies, unicasts between random pairs, memory), progress while it
 * forms, crashing 30% of the nodes at once, and the descriptor limit:
 * raised when the hard limit allows, refused with the figures when not. */
#include "net.h"

#include "node/node.h"

#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct progress_log {
    unsigned calls;
    confab_testnet_progress last;
} progress_log;

static void on_progress(const confab_testnet_progress *p, void *user)
{
    progress_log *l = user;
    l->calls++;
    l->last = *p;
}

static void test_scale_measure_small_network(void **state)
{
    (void)state;
    confab_testnet_memory before;
    confab_testnet_memory_now(&before);
    assert_true(before.rss > 0);
    /* 0 where malloc is not glibc's (ASan, valgrind): heap unknown */
    bool heap_known = before.heap > 0;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 20);
    c.discovery = true;
    /* the full mesh this was written for; the overlay's own limits are
     * checked in test_overlay_net */
    c.node.mesh_threshold = 21;
    net_start(&f, &c);
    progress_log log = {0};
    confab_testnet_measure_opts o;
    confab_testnet_measure_opts_init(&o);
    o.pairs = 40;
    o.timeout_ms = net_deadline(30000);
    o.seed = 7;
    o.before = before;
    o.progress = on_progress;
    o.user = &log;
    o.progress_ms = 100;
    confab_testnet_report r;
    assert_int_equal(confab_testnet_measure(f.tn, &o, &r), 0);
    assert_int_equal(r.nodes, 20);
    assert_int_equal(r.up, 20);
    assert_int_equal(r.knowing_all, 20);
    assert_true(r.formed_ms > 0);
    /* the last progress came when it had formed */
    assert_true(log.calls >= 1);
    assert_int_equal(log.last.nodes, 20);
    assert_int_equal(log.last.up, 20);
    assert_int_equal(log.last.knowing_all, 20);
    assert_true(log.last.links >= 19); /* connected: a tree at least */
    /* links: ordered, never more than the others, never none */
    unsigned most = confab_testnet_links_per_node(&c.node, 20);
    assert_true(most <= 19);
    assert_true(r.links_min >= 1);
    assert_true(r.links_min <= r.links_median);
    assert_true(r.links_median <= r.links_max);
    assert_true(r.links_max <= most);
    assert_true(r.links * 2 >= (uint64_t)r.links_min * 20);
    /* the broadcast reached everyone, each counting at least its copy */
    assert_int_equal(r.bcast_receivers, 19);
    assert_int_equal(r.bcast_reached, 19);
    assert_true(r.bcast_ms >= 0);
    assert_true(r.copies_total >= 19);
    assert_true(r.copies_mean >= 1.0);
    assert_true(r.copies_max >= 1);
    /* unicasts: sent, delivered and acknowledged */
    assert_int_equal(r.uni_sent, 40);
    assert_int_equal(r.uni_delivered, 40);
    assert_int_equal(r.uni_acked, 40);
    assert_true(r.uni_ms >= 0);
    /* twenty nodes hold memory: keys, buffers, peer tables */
    assert_true(r.rss_per_node > 0);
    if (heap_known) {
        assert_true(r.heap_per_node > 1024);
        /* area: scale (#13): 414 KiB a node before the buffers the
         * nodes of a thread share (routing's 192 KiB, the read buffer's
         * 64) and the per-peer parts made only when linked; 144 after */
        assert_true(r.heap_per_node < 256.0 * 1024);
    } else
        assert_true(r.heap_per_node == 0);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(confab_testnet_known(f.tn, i), 19);
    net_stop(&f);
}

static bool all_know_all(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_testnet_progress p;
    confab_testnet_progress_now(tn, &p);
    return p.up > 0 && p.knowing_all == p.up;
}

static void test_scale_crash_thirty_percent(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 20);
    c.discovery = true;
    net_start(&f, &c);
    confab_testnet_measure_opts o;
    confab_testnet_measure_opts_init(&o);
    o.pairs = 0;
    o.timeout_ms = net_deadline(30000);
    confab_testnet_report r;
    assert_int_equal(confab_testnet_measure(f.tn, &o, &r), 0);
    /* Every node knows every other once a route reaches it, before the
     * full mesh: where each node is to link every other, wait for it, or
     * a route through a node about to crash would lose the broadcast. */
    if (confab_testnet_links_per_node(&c.node, 20) == 19)
        assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(30000)),
                         0);
    /* Past mesh_threshold (16) the overlay's links come and go, and a
     * node may lack a route for a moment after the network formed: wait
     * until all 20 know all at once, then crash in the same turn, so the
     * count below is the crash's doing (CI saw 11, not 14, without it). */
    assert_int_equal(
        confab_testnet_run_until(f.tn, all_know_all, NULL, net_deadline(30000)),
        0);
    /* 6 of 20 vanish at once: silent, no BYE */
    for (unsigned i = 0; i < 20; i += 3) {
        if (i == 18)
            break;
        assert_int_equal(confab_testnet_crash_node(f.tn, i), 0);
    }
    assert_int_equal(confab_testnet_crash_node(f.tn, 0), -EINVAL);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(confab_testnet_crashed(f.tn, i), i % 3 == 0 && i < 18);
    confab_testnet_progress p;
    confab_testnet_progress_now(f.tn, &p);
    assert_int_equal(p.nodes, 20);
    assert_int_equal(p.up, 14);
    assert_int_equal(p.knowing_all, 14);
    o.skip_formation = true;
    o.pairs = 20;
    o.seed = 3;
    assert_int_equal(confab_testnet_measure(f.tn, &o, &r), 0);
    assert_int_equal(r.up, 14);
    assert_true(r.formed_ms >= 0);
    assert_int_equal(r.bcast_receivers, 13);
    assert_int_equal(r.bcast_reached, 13);
    assert_false(confab_testnet_crashed(f.tn, r.bcast_from));
    assert_int_equal(r.uni_acked, 20);
    /* nothing reached a crashed node */
    for (unsigned i = 0; i < 18; i += 3)
        assert_int_equal(
            confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, (int)i, -1), 0);
    net_stop(&f);
}

static void test_scale_descriptor_estimate(void **state)
{
    (void)state;
    /* a descriptor at each end of every link, and more with the nodes */
    assert_true(confab_testnet_fds_needed(150, 149) >= 150u * 149u);
    assert_true(confab_testnet_fds_needed(1000, 8) >= 1000u * 8u);
    assert_true(confab_testnet_fds_needed(1000, 8) <
                confab_testnet_fds_needed(1000, 999));
    assert_true(confab_testnet_fds_needed(1000, 8) <
                confab_testnet_fds_needed(1001, 8));
    confab_config cfg;
    confab_config_init(&cfg);
    assert_true(confab_testnet_links_per_node(&cfg, 5) == 4);
    assert_true(confab_testnet_links_per_node(&cfg, 1000) <= 999);
    assert_int_equal(confab_testnet_links_per_node(&cfg, 1), 0);
}

/* In a child, whose soft limit can be lowered for good: the soft limit
 * is raised as far as the hard one, and past it the figures come back.
 * The hard limit stays as it is (valgrind refuses to change it). */
static void test_scale_descriptor_limit(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(10);
        if (rl.rlim_max == RLIM_INFINITY)
            rl.rlim_max = 4096; /* a finite one to pass */
        uint64_t hard = (uint64_t)rl.rlim_max;
        if (hard < 1600)
            _exit(11); /* below any system's usual hard limit */
        rl.rlim_cur = 64;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(12);
        confab_testnet_fds fds;
        if (confab_testnet_raise_fds(1500, &fds) != 0 || fds.soft != 1500 ||
            fds.soft_before != 64 || fds.hard != hard || fds.need != 1500)
            _exit(13);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 1500)
            _exit(14);
        if (confab_testnet_raise_fds(hard + 1, &fds) != -EMFILE ||
            fds.soft != hard || fds.hard != hard || fds.need != hard + 1)
            _exit(15);
        /* A network that would not fit is refused before any node. */
        uv_loop_t loop;
        uv_loop_init(&loop);
        confab_testnet_config c;
        confab_testnet_config_init(&c);
        c.nodes = 20;
        c.node.mesh_threshold = 5000; /* a full mesh at every size here */
        while (confab_testnet_fds_needed(c.nodes, c.nodes - 1) <= hard)
            c.nodes++;
        confab_testnet *tn = NULL;
        if (c.nodes > 4096 || confab_testnet_new(&loop, &c, &tn) != -EMFILE ||
            tn != NULL)
            _exit(16);
        c.nodes = 20;
        if (confab_testnet_new(&loop, &c, &tn) != 0)
            _exit(17);
        if (confab_testnet_free(tn) != 0)
            _exit(18);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(uv_loop_close(&loop) == 0 ? 0 : 19);
    }
    int st;
    assert_true(waitpid(pid, &st, 0) == pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The nodes of one process share its CPU: a handshake budget of about
 * 2,048 for the process, 16 to 256 a node, unless the test sets one. */
static void test_scale_handshake_budget(void **state)
{
    (void)state;
    static const struct {
        unsigned nodes, set, want;
    } cases[] = {{4, 0, 256}, {40, 0, 51}, {16, 0, 128}, {40, 99, 99}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        confab_testnet_config c;
        net_config(&c, cases[k].nodes);
        c.node.max_handshakes = cases[k].set;
        confab_testnet *tn;
        assert_int_equal(confab_testnet_new(&loop, &c, &tn), 0);
        for (unsigned i = 0; i < cases[k].nodes; i += 7) {
            const confab_node *n = confab_testnet_node(tn, i);
            assert_int_equal(n->cfg.max_handshakes, cases[k].want);
            assert_int_equal(n->cfg.max_handshakes_per_source, cases[k].want);
        }
        assert_int_equal(confab_testnet_free(tn), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

/* A partial mesh of 60 nodes past a threshold of 8 forms (every node
 * knows every other, by link or route) once every node has turned its
 * overlay on, and stays formed, or nearly (at least half the nodes know
 * all at every check for 5 s): routes are not lost to the links the
 * overlay closes (a shuffle's, a NEIGHBOR refused, a linger), nor to a
 * peer's word that it lost its own way (test_route_repair shows the
 * rules; before them a network like this one fell apart again seconds
 * after it had formed, and 150 nodes never formed). */
typedef struct stays {
    uv_loop_t *loop;
    uint64_t until_ms; /* loop time the watch ends; 0: not formed yet */
    uint64_t next_ms;
    unsigned on, checks, broken, worst;
} stays;

static bool stays_formed(confab_testnet *tn, void *arg)
{
    stays *s = arg;
    uint64_t now = uv_now(s->loop);
    if (now < s->next_ms)
        return false;
    s->next_ms = now + 100;
    unsigned n = confab_testnet_size(tn), on = 0;
    for (unsigned i = 0; i < n; i++) {
        confab_stats st;
        confab_node_stats(confab_testnet_node(tn, i), &st);
        on += st.overlay_on != 0;
    }
    s->on = on;
    confab_testnet_progress p;
    confab_testnet_progress_now(tn, &p);
    bool formed = on == n && p.knowing_all == p.up;
    if (s->until_ms == 0) {
        if (formed)
            s->until_ms = now + 5000;
        return false;
    }
    s->checks++;
    if (!formed) {
        s->broken++;
        s->worst = p.knowing_all < s->worst ? p.knowing_all : s->worst;
    }
    return now >= s->until_ms;
}

static void test_scale_overlay_stays_formed(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 60);
    c.discovery = true;
    c.node.mesh_threshold = 8;
    net_start(&f, &c);
    stays s = {&f.loop, 0, 0, 0, 0, 0, 60};
    int rc =
        confab_testnet_run_until(f.tn, stays_formed, &s, net_deadline(90000));
    if (rc != 0 || s.broken != 0)
        fprintf(stderr,
                "overlay on at %u of 60; formed: %s; then not formed at %u "
                "of %u checks (as few as %u knowing all)\n",
                s.on, s.until_ms ? "yes" : "no", s.broken, s.checks, s.worst);
    assert_int_equal(rc, 0);
    assert_true(s.checks > 0);
    /* The overlay still churns (links it opens and closes, b-ovfix's
     * #13), so a node may miss a route for a moment; what broke before
     * was the whole network: from formed to none knowing all. */
    assert_true(s.worst >= 30);
    net_stop(&f);
}

/* Past mesh_threshold known peers a node beacons less often, in
 * proportion, and sends no extra beacons: 1,000 nodes beaconing every
 * second (and more at each newcomer) made a million receptions a second
 * in one process. 20 nodes with a threshold of 4: each interval grows
 * about 5 times once all know all, so 5 s of loop time hold at most 2 of
 * a node's beacons, not 4 to 6 (a budget of 3 each, for the jitter). */
typedef struct beacons {
    uv_loop_t *loop;
    uint64_t until_ms; /* 0: not all known yet */
    uint64_t before;
} beacons;

static uint64_t beacons_sent(confab_testnet *tn)
{
    uint64_t k = 0;
    for (unsigned i = 0; i < confab_testnet_size(tn); i++) {
        confab_stats st;
        confab_node_stats(confab_testnet_node(tn, i), &st);
        k += st.beacons_sent;
    }
    return k;
}

static bool beacons_watched(confab_testnet *tn, void *arg)
{
    beacons *b = arg;
    uint64_t now = uv_now(b->loop);
    if (b->until_ms == 0) {
        for (unsigned i = 0; i < confab_testnet_size(tn); i++)
            if (confab_testnet_node(tn, i)->peers_len < 19)
                return false;
        b->before = beacons_sent(tn);
        b->until_ms = now + 5000;
        return false;
    }
    return now >= b->until_ms;
}

static void test_scale_beacons_thin_out(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 20);
    c.discovery = true;
    c.node.mesh_threshold = 4;
    net_start(&f, &c);
    beacons b = {&f.loop, 0, 0};
    assert_int_equal(confab_testnet_run_until(f.tn, beacons_watched, &b,
                                              net_deadline(60000)),
                     0);
    uint64_t sent = beacons_sent(f.tn) - b.before;
    if (sent >= 60)
        fprintf(stderr, "%llu beacons in 5 s from 20 nodes\n",
                (unsigned long long)sent);
    assert_true(sent < 60);
    net_stop(&f);
}

/* The networks that form (20 nodes, twice) run alone as scale_slow, in
 * suite slow: under valgrind their handshakes take minutes. */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_descriptor_estimate),
        cmocka_unit_test(test_scale_descriptor_limit),
        cmocka_unit_test(test_scale_handshake_budget),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test(test_scale_measure_small_network),
        cmocka_unit_test(test_scale_crash_thirty_percent),
        cmocka_unit_test(test_scale_overlay_stays_formed),
        cmocka_unit_test(test_scale_beacons_thin_out),
    };
    if (argc > 1 && strcmp(argv[1], "slow") == 0)
        return cmocka_run_group_tests_name("scale_slow", slow, NULL, NULL);
    return cmocka_run_group_tests_name("scale", tests, NULL, NULL);
}
