/* test_link.c: two nodes over real TCP on 127.0.0.1: handshake, unicast
 * both ways with outcomes, a 16 MiB message intact, limits, peer info. */
#include "net.h"

#include "node/node.h"

#include <sodium.h>

/* Plain TCP clients of a node, counting the connections the node closed. */
typedef struct reject_client {
    uv_tcp_t tcp;
    uv_connect_t req;
    char buf[64];
    unsigned *closed;
} reject_client;

static void reject_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
    (void)want;
    reject_client *rc = h->data;
    *b = uv_buf_init(rc->buf, sizeof rc->buf);
}

static void reject_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    reject_client *rc = s->data;
    if (nread < 0) {
        (*rc->closed)++;
        uv_close((uv_handle_t *)s, NULL);
    }
}

static void reject_connected(uv_connect_t *req, int status)
{
    reject_client *rc = req->data;
    if (status != 0) {
        (*rc->closed)++;
        uv_close((uv_handle_t *)&rc->tcp, NULL);
        return;
    }
    uv_read_start((uv_stream_t *)&rc->tcp, reject_alloc, reject_read);
}

static bool rejects_closed(confab_testnet *tn, void *arg)
{
    (void)tn;
    return *(unsigned *)arg == 3;
}

/* A connection accepted when there is no memory for it is closed, with
 * the handle that took it off the backlog alive until libuv is done with
 * it (it was a stack variable closed after its function returned), and
 * the node goes on serving and stops cleanly. */
static void test_link_accept_without_memory(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    assert_int_equal(node_fault_set_accept_alloc(n0, 3), 0);

    struct sockaddr_in to;
    assert_int_equal(uv_ip4_addr("127.0.0.1", confab_node_port(n0), &to), 0);
    reject_client cl[3];
    unsigned closed = 0;
    for (int i = 0; i < 3; i++) {
        cl[i].closed = &closed;
        assert_int_equal(uv_tcp_init(&f.loop, &cl[i].tcp), 0);
        cl[i].tcp.data = &cl[i];
        cl[i].req.data = &cl[i];
        assert_int_equal(uv_tcp_connect(&cl[i].req, &cl[i].tcp,
                                        (const struct sockaddr *)&to,
                                        reject_connected),
                         0);
    }
    assert_int_equal(confab_testnet_run_until(f.tn, rejects_closed, &closed,
                                              net_deadline(5000)),
                     0);
    /* Still serving: a message crosses the link. */
    uint8_t mid[CONFAB_MSG_ID_BYTES];
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 1), net_id(f.tn, 0),
                                 "after", 5, NULL, mid),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 0, 1, 1, 5000),
                     0);
    net_stop(&f);
}

static void test_link_handshake_and_info(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);

    /* Each side knows the other by name and address, and has measured a
     * round trip (a ping goes out as soon as a link is up). */
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_UP, 0, 1, 1, 5000),
                     0);
    confab_peer_info info;
    assert_int_equal(confab_peer(confab_testnet_node(f.tn, 1), net_id(f.tn, 0),
                                 &info),
                     0);
    assert_string_equal(info.name, "n0");
    assert_int_equal(info.state, CONFAB_PEER_UP);
    assert_int_equal(info.outbound, 1); /* n1 dialed n0 */
    char want[48];
    snprintf(want, sizeof want, "127.0.0.1:%u",
             confab_node_port(confab_testnet_node(f.tn, 0)));
    assert_string_equal(info.address, want);

    /* n0 learned where n1 accepts links from n1's HELLO. */
    assert_int_equal(confab_peer(confab_testnet_node(f.tn, 0), net_id(f.tn, 1),
                                 &info),
                     0);
    assert_string_equal(info.name, "n1");
    snprintf(want, sizeof want, "127.0.0.1:%u",
             confab_node_port(confab_testnet_node(f.tn, 1)));
    assert_string_equal(info.address, want);
    assert_int_equal(info.outbound, 0);
    net_stop(&f);
}

static bool rtt_known(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_peer_info a, b;
    return confab_peer(confab_testnet_node(tn, 0), net_id(tn, 1), &a) == 0 &&
           confab_peer(confab_testnet_node(tn, 1), net_id(tn, 0), &b) == 0 &&
           a.rtt_us > 0 && b.rtt_us > 0;
}

static void test_link_rtt_measured(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    assert_int_equal(
        confab_testnet_run_until(f.tn, rtt_known, NULL, net_deadline(5000)),
        0);
    net_stop(&f);
}

static void test_link_unicast_both_ways(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_node *n1 = confab_testnet_node(f.tn, 1);

    uint8_t id_a[16], id_b[16];
    confab_send_opts o = {.content_type = "text/plain"};
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), "hello", 5, &o, id_a), 0);
    assert_int_equal(confab_send(n1, net_id(f.tn, 0), "world!", 6, NULL, id_b),
                     0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 1, 5000), 0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, 0, 1, 1, 5000), 0);

    const confab_testnet_event *e = net_last(f.tn, CONFAB_EV_MESSAGE, 1, 0);
    assert_int_equal(e->len, 5);
    assert_memory_equal(e->body, "hello", 5);
    assert_memory_equal(e->msg_id, id_a, 16);
    assert_int_equal(e->kind, CONFAB_UNICAST);
    assert_int_equal(e->seq, 1);
    e = net_last(f.tn, CONFAB_EV_MESSAGE, 0, 1);
    assert_int_equal(e->len, 6);
    assert_memory_equal(e->body, "world!", 6);
    assert_memory_equal(e->msg_id, id_b, 16);
    /* A node with no inbox (inbox_max 0, no control socket) hands
     * messages to its program only: none waits to be read, so a program
     * that never reads cannot fill one and stall its peers. */
    assert_int_equal(confab_inbox_count(n0), 0);
    assert_int_equal(confab_inbox_count(n1), 0);

    /* Both senders learn the outcome. */
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 0, 1, 1, 5000), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 1, 5000), 0);
    e = net_last(f.tn, CONFAB_EV_SEND, 0, 1);
    assert_int_equal(e->status, CONFAB_DELIVERED); /* acknowledged */
    assert_memory_equal(e->msg_id, id_a, 16);

    /* A second message carries the next sequence number; an empty body
     * is a message too. */
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), NULL, 0, NULL, NULL), 0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 2, 5000), 0);
    e = net_last(f.tn, CONFAB_EV_MESSAGE, 1, 0);
    assert_int_equal(e->len, 0);
    assert_int_equal(e->seq, 2);

    confab_stats st;
    confab_node_stats(n0, &st);
    assert_int_equal(st.msgs_sent, 2);
    assert_int_equal(st.msgs_received, 1);
    confab_peer_info info;
    assert_int_equal(confab_peer(n0, net_id(f.tn, 1), &info), 0);
    assert_int_equal(info.msgs_sent, 2);
    assert_int_equal(info.msgs_received, 1);
    assert_true(info.bytes_sent > 5);
    net_stop(&f);
}

/* A 16 MiB body: its hash is taken in the event callback, since the
 * recorder keeps only the first bytes of a body. */
typedef struct big_ctx {
    uint8_t want[32];
    uint8_t got[32];
    size_t got_len;
    int got_count;
} big_ctx;

static void big_event(confab_testnet *tn, unsigned node, const confab_event *ev,
                      void *user)
{
    big_ctx *b = user;
    (void)tn;
    if (node != 1 || ev->type != CONFAB_EV_MESSAGE)
        return;
    crypto_generichash(b->got, 32, ev->message->body, ev->message->len, NULL,
                       0);
    b->got_len = ev->message->len;
    b->got_count++;
}

static void test_link_16mib_message_intact(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    big_ctx b;
    memset(&b, 0, sizeof b);
    net_config(&c, 2);
    c.static_mesh = true;
    c.event_cb = big_event;
    c.user = &b;
    net_start_meshed(&f, &c);

    size_t len = CONFAB_DEFAULT_MAX_MESSAGE;
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    randombytes_buf(body, len + 1);
    crypto_generichash(b.want, 32, body, len, NULL, 0);
    confab_node *n0 = confab_testnet_node(f.tn, 0);

    /* One byte over the limit is refused at once. */
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), body, len + 1, NULL, NULL),
                     -EMSGSIZE);
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), body, len, NULL, NULL),
                     0);
    /* A small message sent after it arrives after it (one lane). */
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), "after", 5, NULL, NULL),
                     0);
    free(body);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 2, 30000), 0);
    assert_int_equal(b.got_count, 2);
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (ev[i].type == CONFAB_EV_MESSAGE && ev[i].node == 1)
            first = i;
    assert_int_equal(ev[first].len, len);
    assert_int_equal(ev[first].seq, 1);
    /* The callback saw the big one first, then "after" (5 bytes). */
    assert_int_equal(b.got_len, 5);
    b.got_len = 0;
    net_stop(&f);
    (void)b.got;
}

/* Same, but checks the big body's hash (the callback overwrote it with
 * "after" in the test above, so this one sends the big body alone). */
static void test_link_16mib_hash_matches(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    big_ctx b;
    memset(&b, 0, sizeof b);
    net_config(&c, 2);
    c.static_mesh = true;
    c.event_cb = big_event;
    c.user = &b;
    net_start_meshed(&f, &c);
    size_t len = CONFAB_DEFAULT_MAX_MESSAGE;
    uint8_t *body = malloc(len);
    assert_non_null(body);
    randombytes_buf(body, len);
    crypto_generichash(b.want, 32, body, len, NULL, 0);
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 0), net_id(f.tn, 1),
                                 body, len, NULL, NULL),
                     0);
    free(body);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_MESSAGE, 1, 0, 1, 30000), 0);
    assert_int_equal(b.got_len, len);
    assert_memory_equal(b.got, b.want, 32);
    net_stop(&f);
}

static void test_link_send_errors(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    c.static_mesh = true;
    net_start_meshed(&f, &c);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    uint8_t stranger[32];
    memset(stranger, 0x42, sizeof stranger);
    assert_int_equal(confab_send(n0, stranger, "x", 1, NULL, NULL), -ESRCH);
    char ct[CONFAB_MAX_CT + 2];
    memset(ct, 'a', sizeof ct - 1);
    ct[sizeof ct - 1] = '\0';
    confab_send_opts o = {.content_type = ct};
    assert_int_equal(confab_send(n0, net_id(f.tn, 1), "x", 1, &o, NULL),
                     -EMSGSIZE);
    assert_int_equal(confab_send(n0, NULL, "x", 1, NULL, NULL), -EINVAL);
    uint64_t token;
    uint8_t big[1025] = {0};
    assert_int_equal(confab_ping(n0, net_id(f.tn, 1), big, sizeof big, &token),
                     -EMSGSIZE);
    /* A ping with echo data comes back with it. */
    assert_int_equal(confab_ping(n0, net_id(f.tn, 1), "echo", 4, &token), 0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PONG, 0, 1, 1, 5000), 0);
    const confab_testnet_event *e = net_last(f.tn, CONFAB_EV_PONG, 0, 1);
    assert_int_equal(e->token, token);
    assert_true(e->rtt_us > 0);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_handshake_and_info),
        cmocka_unit_test(test_link_rtt_measured),
        cmocka_unit_test(test_link_unicast_both_ways),
        cmocka_unit_test(test_link_16mib_message_intact),
        cmocka_unit_test(test_link_16mib_hash_matches),
        cmocka_unit_test(test_link_send_errors),
        cmocka_unit_test(test_link_accept_without_memory),
    };
    return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
