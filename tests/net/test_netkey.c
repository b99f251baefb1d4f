/* test_netkey.c: a node holding another network key is refused at the
 * first handshake message, again and again as it re-dials, and every node
 * stays healthy on its own network. */
#include "net.h"

#include <sodium.h>

typedef struct two_nets {
    uv_loop_t loop;
    confab_node *n[4]; /* 0, 1: public network; 2, 3: a private one */
    int stopped;
} two_nets;

static void stopped_cb(confab_node *node, void *user)
{
    (void)node;
    ((two_nets *)user)->stopped++;
}

static void nk_event(confab_node *node, const confab_event *ev, void *user)
{
    int *ups = user;
    (void)node;
    if (ev->type == CONFAB_EV_PEER_UP)
        (*ups)++;
}

static void test_netkey_other_network_refused(void **state)
{
    (void)state;
    two_nets t;
    memset(&t, 0, sizeof t);
    assert_int_equal(uv_loop_init(&t.loop), 0);
    uint8_t private_key[32];
    randombytes_buf(private_key, sizeof private_key);
    int ups[4] = {0};
    char addr[4][32];
    for (int i = 0; i < 4; i++) {
        confab_config c;
        confab_config_init(&c);
        c.discovery = 0; /* static peers only: no beacons */
        c.bind_addr = "127.0.0.1";
        c.network_key = i >= 2 ? private_key : NULL;
        c.redial_min_ms = 20;
        c.redial_max_ms = 100;
        c.log_cb = net_log;
        c.log_level = CONFAB_LOG_WARN;
        c.event_cb = nk_event;
        c.user = &ups[i];
        /* 1 dials 0 (same network); 2 dials 0 (the other network) and 3
         * (its own); 3 dials 1 (the other network). */
        const char *statics[2];
        c.static_peers = statics;
        if (i == 1) {
            statics[0] = addr[0];
            c.n_static_peers = 1;
        } else if (i == 2) {
            statics[0] = addr[0];
            c.n_static_peers = 1;
        } else if (i == 3) {
            statics[0] = addr[1];
            statics[1] = addr[2];
            c.n_static_peers = 2;
        }
        assert_int_equal(confab_node_new(&t.loop, &c, &t.n[i]), 0);
        assert_int_equal(confab_node_start(t.n[i]), 0);
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%u",
                 confab_node_port(t.n[i]));
        /* The address strings are copied at creation, so the later ones
         * must exist first: nodes are started in index order and only
         * dial earlier ones. */
    }

    /* Run until the refused dials have been tried several times. */
    uv_update_time(&t.loop);
    uint64_t end = uv_now(&t.loop) + net_deadline(10000);
    for (;;) {
        confab_stats s0, s1, s2, s3;
        confab_node_stats(t.n[0], &s0);
        confab_node_stats(t.n[1], &s1);
        confab_node_stats(t.n[2], &s2);
        confab_node_stats(t.n[3], &s3);
        if (s0.handshakes_failed >= 3 && s1.handshakes_failed >= 3 &&
            s0.peers_up == 1 && s1.peers_up == 1 && s2.peers_up == 1 &&
            s3.peers_up == 1)
            break;
        assert_true(uv_now(&t.loop) < end);
        uv_run(&t.loop, UV_RUN_ONCE);
    }
    /* Nobody ever linked across the networks. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ups[i], 1);
    confab_peer_info info;
    assert_int_equal(confab_peer(t.n[0], confab_node_id(t.n[2]), &info),
                     -ESRCH);
    assert_int_equal(confab_peer(t.n[2], confab_node_id(t.n[0]), &info),
                     -ESRCH);

    for (int i = 0; i < 4; i++)
        assert_int_equal(confab_node_stop(t.n[i], stopped_cb, &t), 0);
    while (t.stopped < 4)
        uv_run(&t.loop, UV_RUN_ONCE);
    for (int i = 0; i < 4; i++)
        confab_node_free(t.n[i]);
    assert_int_equal(uv_loop_close(&t.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netkey_other_network_refused),
    };
    return cmocka_run_group_tests_name("netkey", tests, NULL, NULL);
}
