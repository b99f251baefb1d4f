/* test_web.c: the web server's parts that need no browser: the metrics
 * name every counter, text is escaped for JSON and HTML, the view of a
 * network (nodes, links, groups) and its SVG, and the server's life cycle
 * on the loop (suite 'web'; the browser tests are the Python ones). */
#include "node/app/web_int.h"

#include "node/node.h"
#include "node/testnet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_web_metrics_cover_stats(void **state)
{
    (void)state;
    /* Every field of confab_stats is a uint64_t and has a metric: a new
     * counter needs its row in node/metrics.c. */
    assert_int_equal(node_metrics_stats_named() * sizeof(uint64_t),
                     sizeof(confab_stats));
}

static void test_web_text_escaped(void **state)
{
    (void)state;
    web_buf b = {0};
    web_buf_json_str(&b, "a\"b\\c\n</script>\x01");
    assert_false(b.failed);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u003c/script>\\u0001\"");
    web_buf_free(&b);
    web_buf_html(&b, "<n0 & \"x\">");
    assert_string_equal(b.p, "&lt;n0 &amp; &quot;x&quot;&gt;");
    web_buf_free(&b);
    /* Longer than printf's small buffer. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    web_buf_printf(&b, "%s%d", big, 7);
    assert_int_equal(b.len, sizeof big);
    assert_int_equal(b.p[b.len - 1], '7');
    web_buf_free(&b);
}

static bool group_known(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_group_members(confab_testnet_node(tn, 0), "g", NULL, 0) ==
           1;
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        k++;
    return k;
}

static void test_web_view_of_a_testnet(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = 3;
    c.seed = 15;
    c.static_mesh = true;
    confab_testnet *tn;
    assert_int_equal(confab_testnet_new(&loop, &c, &tn), 0);
    const char *g[] = {"g"};
    assert_int_equal(confab_testnet_set_groups(tn, 2, g, 1), 0);
    assert_int_equal(confab_testnet_start(tn), 0);
    assert_int_equal(confab_testnet_wait_mesh(tn, 10000), 0);
    assert_int_equal(confab_testnet_run_until(tn, group_known, NULL, 10000),
                     0);

    confab_node *nodes[3];
    for (unsigned i = 0; i < 3; i++)
        nodes[i] = confab_testnet_node(tn, i);
    web_view v;
    assert_int_equal(web_view_build(&v, nodes, 3), 0);
    assert_int_equal(v.n_nodes, 3);
    assert_int_equal(v.n_links, 3); /* each pair once */
    assert_int_equal(v.n_groups, 1);
    assert_string_equal(v.nodes[2].name, "n2");
    assert_int_equal(v.nodes[2].n_groups, 1);
    assert_int_equal(v.nodes[0].n_groups, 0);
    /* One node alone sees its peers too, as remote nodes. */
    web_view one;
    assert_int_equal(web_view_build(&one, nodes, 1), 0);
    assert_int_equal(one.n_nodes, 3);
    assert_int_equal(one.n_links, 2);
    assert_true(one.nodes[0].local);
    assert_false(one.nodes[1].local);
    web_view_free(&one);

    web_buf b = {0};
    web_view_svg(&v, &b);
    assert_false(b.failed);
    assert_int_equal(count(b.p, "<g class=\"node\""), 3);
    assert_int_equal(count(b.p, "<line class=\"link\""), 3);
    assert_int_equal(count(b.p, "class=\"ring\""), 1);
    web_buf_free(&b);
    web_view_json(&v, &b);
    assert_int_equal(count(b.p, "\"rtt_us\""), 3);
    web_buf_free(&b);
    web_view_free(&v);

    /* Metrics: one sample per node of each counter. */
    confab_web_stats ws = {0};
    node_metrics_write(&b, nodes, 3, &ws);
    assert_false(b.failed);
    assert_int_equal(count(b.p, "\nconfab_peers_up{node="), 3);
    assert_int_equal(count(b.p, "\nconfab_peer_up{node="), 6);
    web_buf_free(&b);

    /* The server on the loop: a bad address is refused; a good one
     * listens on loopback, and everything closes. */
    confab_web_config wc;
    confab_web_config_init(&wc);
    confab_web *w;
    wc.addr = "localhost:80";
    assert_int_equal(confab_web_new(&loop, &wc, &w), -EINVAL);
    wc.addr = "127.0.0.1:0";
    assert_int_equal(confab_web_new(&loop, &wc, &w), 0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(confab_web_add_node(w, nodes[i]), 0);
    assert_int_equal(confab_web_start(w), 0);
    assert_true(confab_web_port(w) > 0);
    confab_web_note(w, "{\"t\":\"step\"}");
    confab_web_free(w);
    assert_int_equal(confab_testnet_free(tn), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* What the observer saw node 0 frame: the anycast's attempts, in order. */
typedef struct sent_log {
    int peers[8];
    size_t n;
    confab_testnet *tn;
} sent_log;

static void on_sent(confab_node *n, const uint8_t *peer, unsigned kind,
                    const uint8_t *msg_id, const char *group, void *user)
{
    sent_log *l = user;
    (void)n;
    (void)msg_id;
    if (kind == CONFAB_ANYCAST && strcmp(group, "g") == 0 && l->n < 8)
        l->peers[l->n++] = confab_testnet_index(l->tn, peer);
}

static bool rtts_known(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_node *n0 = confab_testnet_node(tn, 0);
    for (unsigned j = 1; j < 3; j++) {
        confab_peer_info pi;
        if (confab_peer(n0, confab_node_id(confab_testnet_node(tn, j)),
                        &pi) != 0 ||
            pi.rtt_us == 0)
            return false;
    }
    return confab_group_members(n0, "g", NULL, 0) == 2;
}

static bool anycast_settled(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_testnet_count(tn, CONFAB_EV_SEND, 0, -1) > 0;
}

/* An anycast that fails over shows as two paths: the observer sees it
 * framed for the nearest member (which answers too late), then for the
 * next, which takes it. */
static void test_web_sees_anycast_failover(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    confab_testnet_config c;
    confab_testnet_config_init(&c);
    c.nodes = 3;
    c.seed = 16;
    c.static_mesh = true;
    c.node.ping_interval_ms = 50;
    c.node.anycast_timeout_ms = 300;
    c.node.peer_timeout_ms = 60000;
    confab_testnet *tn;
    assert_int_equal(confab_testnet_new(&loop, &c, &tn), 0);
    const char *g[] = {"g"};
    assert_int_equal(confab_testnet_set_groups(tn, 1, g, 1), 0);
    assert_int_equal(confab_testnet_set_groups(tn, 2, g, 1), 0);
    /* n2 is farther: n1 is the nearest member. */
    assert_int_equal(confab_testnet_set_latency(tn, 0, 2, 40), 0);
    assert_int_equal(confab_testnet_start(tn), 0);
    assert_int_equal(confab_testnet_wait_mesh(tn, 10000), 0);
    assert_int_equal(confab_testnet_run_until(tn, rtts_known, NULL, 10000),
                     0);
    sent_log l = {.tn = tn};
    node_observer o = {NULL, on_sent, &l};
    node_set_observer(confab_testnet_node(tn, 0), &o);
    /* n1 hears it a second late, long after its turn: the anycast moves
     * on to n2. */
    assert_int_equal(confab_testnet_set_latency(tn, 0, 1, 1000), 0);
    assert_int_equal(confab_anycast(confab_testnet_node(tn, 0), "g", "job",
                                    3, NULL, NULL),
                     0);
    assert_int_equal(
        confab_testnet_run_until(tn, anycast_settled, NULL, 10000), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.peers[0], 1);
    assert_int_equal(l.peers[1], 2);
    assert_int_equal(confab_testnet_count(tn, CONFAB_EV_MESSAGE, 2, 0), 1);
    node_set_observer(confab_testnet_node(tn, 0), NULL);
    assert_int_equal(confab_testnet_free(tn), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_web_metrics_cover_stats),
        cmocka_unit_test(test_web_text_escaped),
        cmocka_unit_test(test_web_view_of_a_testnet),
        cmocka_unit_test(test_web_sees_anycast_failover),
    };
    return cmocka_run_group_tests_name("web", tests, NULL, NULL);
}
