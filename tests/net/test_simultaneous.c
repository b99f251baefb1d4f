/* test_simultaneous.c: both nodes dial each other at once. One link
 * remains, and a stream sent through the tie-break loses nothing. */
#include "net.h"

#define STREAM 300u

typedef struct sim_ctx {
    unsigned sent[2];
    bool up[2];
} sim_ctx;

/* Sends as soon as a link is up, and keeps sending while the duplicate is
 * being resolved. */
static void pump(confab_testnet *tn, sim_ctx *s)
{
    for (unsigned i = 0; i < 2; i++) {
        if (!s->up[i])
            continue;
        while (s->sent[i] < STREAM) {
            char body[16];
            int len = snprintf(body, sizeof body, "%u", s->sent[i]);
            int rc = confab_send(confab_testnet_node(tn, i), net_id(tn, 1 - i),
                                 body, (size_t)len, NULL, NULL);
            if (rc != 0)
                break;
            s->sent[i]++;
            if (s->sent[i] % 10 == 0)
                break; /* spread the stream over several loop turns */
        }
    }
}

static void sim_event(confab_testnet *tn, unsigned node, const confab_event *ev,
                      void *user)
{
    sim_ctx *s = user;
    if (ev->type == CONFAB_EV_PEER_UP)
        s->up[node] = true;
    pump(tn, s);
}

static bool sim_done(confab_testnet *tn, void *arg)
{
    sim_ctx *s = arg;
    pump(tn, s);
    confab_stats a, b;
    confab_node_stats(confab_testnet_node(tn, 0), &a);
    confab_node_stats(confab_testnet_node(tn, 1), &b);
    return s->sent[0] == STREAM && s->sent[1] == STREAM &&
           confab_testnet_count(tn, CONFAB_EV_MESSAGE, 0, 1) >= STREAM &&
           confab_testnet_count(tn, CONFAB_EV_MESSAGE, 1, 0) >= STREAM &&
           a.links_open == 1 && b.links_open == 1;
}

static void one_round(unsigned seed)
{
    net_fixture f;
    confab_testnet_config c;
    sim_ctx s;
    memset(&s, 0, sizeof s);
    net_config(&c, 2);
    c.seed = seed;
    c.event_cb = sim_event;
    c.user = &s;
    net_start(&f, &c);
    char a0[32], a1[32];
    snprintf(a0, sizeof a0, "127.0.0.1:%u",
             confab_node_port(confab_testnet_node(f.tn, 0)));
    snprintf(a1, sizeof a1, "127.0.0.1:%u",
             confab_node_port(confab_testnet_node(f.tn, 1)));
    /* Both dial in the same loop turn. */
    assert_int_equal(confab_node_dial(confab_testnet_node(f.tn, 0), a1), 0);
    assert_int_equal(confab_node_dial(confab_testnet_node(f.tn, 1), a0), 0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, sim_done, &s, net_deadline(20000)), 0);

    /* Every message arrived exactly once and in order: the losing link
     * drained before it closed, and the receiver delivers by sequence
     * number whichever link a message came on. */
    for (unsigned node = 0; node < 2; node++) {
        const confab_testnet_event *ev;
        size_t n = confab_testnet_events(f.tn, &ev);
        unsigned seen[STREAM], total = 0;
        memset(seen, 0, sizeof seen);
        for (size_t k = 0; k < n; k++) {
            if (ev[k].type != CONFAB_EV_MESSAGE || ev[k].node != node)
                continue;
            char text[16];
            assert_true(ev[k].len < sizeof text);
            memcpy(text, ev[k].body, ev[k].len);
            text[ev[k].len] = '\0';
            unsigned v = (unsigned)strtoul(text, NULL, 10);
            assert_true(v < STREAM);
            assert_int_equal(v, total); /* in order */
            seen[v]++;
            total++;
        }
        assert_int_equal(total, STREAM);
        for (unsigned v = 0; v < STREAM; v++)
            assert_int_equal(seen[v], 1);
        /* One up event, no down event: the duplicate was invisible. */
        assert_int_equal(
            confab_testnet_count(f.tn, CONFAB_EV_PEER_UP, (int)node, -1), 1);
        assert_int_equal(
            confab_testnet_count(f.tn, CONFAB_EV_PEER_DOWN, (int)node, -1), 0);
    }
    net_stop(&f);
}

static void test_simultaneous_dial_one_link_nothing_lost(void **state)
{
    (void)state;
    /* The race has several outcomes; try it many times. */
    for (unsigned round = 0; round < 20; round++)
        one_round(1000 + round);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simultaneous_dial_one_link_nothing_lost),
    };
    return cmocka_run_group_tests_name("simultaneous", tests, NULL, NULL);
}
