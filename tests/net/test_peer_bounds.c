/* test_peer_bounds.c: a member cannot grow the peer table or make the
 * node dial at will, and a stranger cannot hold every handshake slot.
 *
 * - PEERS from a member, full of made-up ids at an address it chose: the
 *   never-linked peers stay at max_known_peers, the dials to them are put
 *   off by the rate limit, and a good peer's unicasts still arrive.
 * - Beacons with fresh ids and valid tags: the same bound.
 * - Never-linked peers unheard for known_peer_ttl_ms are forgotten.
 * - Idle connections from one address hold at most
 *   max_handshakes_per_source slots: a good peer from another address
 *   still links. */
#include "net.h"

#include "rawpeer.h"

#include "crypto/netkey.h"
#include "crypto/tag.h"
#include "wire/beacon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#define KNOWN_MAX 64u

static void bounds_config(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->static_mesh = true;
    c->node.max_known_peers = KNOWN_MAX;
    c->node.dial_rate = 5;
    c->node.dial_burst = 5;
}

/* A TCP port on 127.0.0.1 that nobody listens on (bound, so that nothing
 * else takes it meanwhile): every dial to it is refused at once. */
static int dead_port(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static confab_stats stats_of(confab_testnet *tn, unsigned i)
{
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, i), &st);
    return st;
}

static size_t known_of(confab_testnet *tn, unsigned i)
{
    size_t count;
    confab_peers(confab_testnet_node(tn, i), NULL, 0, &count);
    return count;
}

/* The good peer (node 1) sends node 0 k unicasts; all of them arrive. */
static void good_peer_delivers(confab_testnet *tn, size_t k)
{
    assert_true(confab_testnet_linked(tn, 0, 1));
    size_t before = confab_testnet_count(tn, CONFAB_EV_MESSAGE, 0, 1);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(confab_send(confab_testnet_node(tn, 1),
                                     net_id(tn, 0), "still here", 10, NULL,
                                     NULL),
                         0);
    assert_int_equal(
        net_wait_count(tn, CONFAB_EV_MESSAGE, 0, 1, before + k, 5000), 0);
}

/* ---- PEERS -------------------------------------------------------------- */

typedef struct flood {
    rawpeer r;
    uint16_t port;      /* node 0's */
    uint16_t dead;      /* the address every made-up peer is at */
    unsigned msgs, per; /* PEERS messages, entries in each */
} flood;

static int peers_flood_job(rawpeer_job *job)
{
    flood *a = job->arg;
    int rc = rawpeer_init(&a->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&a->r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(&a->r, "mallory");
    for (unsigned i = 0; rc == 0 && i < a->msgs; i++)
        rc = rawpeer_send_fake_peers(&a->r, a->per, a->dead);
    return rc;
}

typedef struct want_stat {
    unsigned node;
    size_t off; /* offsetof(confab_stats, field) */
    uint64_t want;
} want_stat;

static bool stat_reached(confab_testnet *tn, void *arg)
{
    want_stat *w = arg;
    confab_stats st = stats_of(tn, w->node);
    uint64_t v;
    memcpy(&v, (const char *)&st + w->off, sizeof v);
    return v >= w->want;
}

static int wait_stat(confab_testnet *tn, unsigned node, size_t off,
                     uint64_t want, unsigned ms)
{
    want_stat w = {node, off, want};
    return confab_testnet_run_until(tn, stat_reached, &w, net_deadline(ms));
}

#define WAIT_STAT(tn, node, field, want, ms)                                   \
    wait_stat(tn, node, offsetof(confab_stats, field), want, ms)

static bool linked_pair(confab_testnet *tn, void *arg)
{
    const unsigned *p = arg;
    return confab_testnet_linked(tn, p[0], p[1]) &&
           confab_testnet_linked(tn, p[1], p[0]);
}

/* Node j dials node 0 (a link that comes up after the flood). */
static void dial_node0(net_fixture *f, unsigned j)
{
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u",
             confab_node_port(confab_testnet_node(f->tn, 0)));
    assert_int_equal(confab_node_dial(confab_testnet_node(f->tn, j), hp), 0);
    unsigned pair[2] = {0, j};
    assert_int_equal(confab_testnet_run_until(f->tn, linked_pair, pair,
                                              net_deadline(5000)),
                     0);
}

static void test_peer_bounds_peers_flood_capped(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    bounds_config(&c, 3);
    c.static_mesh = false; /* node 1 links now, node 2 after the flood */
    net_start(&f, &c);
    dial_node0(&f, 1);
    flood a;
    memset(&a, 0, sizeof a);
    int dfd = dead_port(&a.dead);
    a.port = confab_node_port(confab_testnet_node(f.tn, 0));
    a.msgs = 20;
    a.per = 1024;
    uint64_t t0 = uv_now(&f.loop);
    uint64_t dialed0 = stats_of(f.tn, 0).links_dialed;

    rawpeer_job job;
    rawpeer_job_start(&job, peers_flood_job, &a);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(20000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    /* Every PEERS was read (node 1 sends node 0 none of its own). */
    assert_int_equal(WAIT_STAT(f.tn, 0, peers_msgs_received, a.msgs, 10000),
                     0);
    /* Dials to the made-up peers wait for the rate. */
    assert_int_equal(WAIT_STAT(f.tn, 0, dials_rate_limited, 1, 5000), 0);

    confab_stats st = stats_of(f.tn, 0);
    /* 20,480 made-up peers: the table holds the linked two and at most
     * KNOWN_MAX that were never linked; the rest were evicted. */
    assert_true(known_of(f.tn, 0) <= KNOWN_MAX + 2);
    assert_true(st.peers_evicted >= a.msgs * a.per - KNOWN_MAX);
    /* The burst, then the rate (5 a second), and no more. */
    uint64_t secs = (uv_now(&f.loop) - t0) / 1000u + 1u;
    assert_true(st.links_dialed - dialed0 <= 5u + 5u * secs);

    good_peer_delivers(f.tn, 20);
    /* A new good peer links meanwhile. */
    dial_node0(&f, 2);
    assert_true(known_of(f.tn, 0) <= KNOWN_MAX + 3);
    rawpeer_free(&a.r);
    close(dfd);
    net_stop(&f);
}

static void test_peer_bounds_unlinked_peers_expire(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    bounds_config(&c, 2);
    c.node.known_peer_ttl_ms = 300;
    net_start_meshed(&f, &c);
    flood a;
    memset(&a, 0, sizeof a);
    int dfd = dead_port(&a.dead);
    a.port = confab_node_port(confab_testnet_node(f.tn, 0));
    a.msgs = 1;
    a.per = 16;
    rawpeer_job job;
    rawpeer_job_start(&job, peers_flood_job, &a);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(10000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    /* Heard once, never linked, never heard again: forgotten, every one,
     * while the linked peers (node 1 and the raw peer) stay. */
    assert_int_equal(WAIT_STAT(f.tn, 0, peers_expired, a.per, 10000), 0);
    assert_int_equal(known_of(f.tn, 0), 2);
    assert_int_equal(stats_of(f.tn, 0).peers_evicted, 0);
    good_peer_delivers(f.tn, 3);
    rawpeer_free(&a.r);
    close(dfd);
    net_stop(&f);
}

/* ---- beacons ------------------------------------------------------------ */

/* Sends n beacons with fresh ids and valid tags under the public network
 * key, each naming port, to 127.255.255.255:to. */
static void send_fake_beacons(int fd, unsigned n, uint16_t port, uint16_t to)
{
    sec_netkey *k;
    assert_int_equal(sec_netkey_public(&k), 0);
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons(to);
    inet_pton(AF_INET, "127.255.255.255", &dst.sin_addr);
    for (unsigned i = 0; i < n; i++) {
        wire_beacon b;
        memset(&b, 0, sizeof b);
        b.version = WIRE_VERSION;
        randombytes_buf(b.id, sizeof b.id);
        b.port = port;
        b.name.ptr = (const uint8_t *)"ghost";
        b.name.len = 5;
        b.boot = 1;
        uint8_t buf[WIRE_BEACON_MAX];
        size_t tagged, len;
        assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), 0);
        uint8_t tag[WIRE_BEACON_TAG_BYTES];
        sec_beacon_tag(k->key, buf, tagged, tag);
        assert_int_equal(
            wire_beacon_append_tag(buf, sizeof buf, tagged, tag, &len), 0);
        assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&dst,
                                sizeof dst),
                         (ssize_t)len);
    }
    sec_netkey_free(k);
}

static void test_peer_bounds_beacon_flood_capped(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    bounds_config(&c, 2);
    c.discovery = true;
    c.node.beacon_interval_ms = 200;
    net_start_meshed(&f, &c);
    uint16_t dead;
    int dfd = dead_port(&dead);
    int ufd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(ufd >= 0);
    int one = 1;
    assert_int_equal(
        setsockopt(ufd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one), 0);
    uint16_t to = confab_testnet_discovery_port(f.tn);

    /* In rounds, so that the socket buffers never overflow: each round
     * waits until node 0 has taken most of what was sent. */
    const unsigned rounds = 40, per = 64;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t got = stats_of(f.tn, 0).beacons_received;
        send_fake_beacons(ufd, per, dead, to);
        (void)WAIT_STAT(f.tn, 0, beacons_received, got + per / 2, 2000);
    }
    confab_stats st = stats_of(f.tn, 0);
    /* Far more made-up nodes heard than the table keeps. */
    assert_true(st.beacons_received > 4u * KNOWN_MAX);
    assert_true(known_of(f.tn, 0) <= KNOWN_MAX + 1);
    assert_true(st.peers_evicted > 0);
    assert_int_equal(WAIT_STAT(f.tn, 0, dials_rate_limited, 1, 5000), 0);
    good_peer_delivers(f.tn, 20);
    close(ufd);
    close(dfd);
    net_stop(&f);
}

/* ---- handshake slots ---------------------------------------------------- */

static bool linked_0_1(confab_testnet *tn, void *arg)
{
    (void)arg;
    return confab_testnet_linked(tn, 0, 1) && confab_testnet_linked(tn, 1, 0);
}

static bool all_seen(confab_testnet *tn, void *arg)
{
    confab_stats st = stats_of(tn, 0);
    return st.links_accepted + st.links_refused_busy +
               st.links_refused_source >=
           *(const unsigned *)arg;
}

static void test_peer_bounds_handshake_slots_per_source(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 2);
    /* Few slots, and a long deadline: idle connections hold them for the
     * whole test, as a stranger reconnecting at once would. */
    c.node.max_handshakes = 16;
    c.node.max_handshakes_per_source = 8; /* the library's default; a
                                              testnet raises it */
    c.node.handshake_timeout_ms = 60000;
    net_start(&f, &c);
    uint16_t port = confab_node_port(confab_testnet_node(f.tn, 0));

    /* A stranger at 127.0.0.2 opens more idle connections than there are
     * slots, and never says a word. */
    enum { HOLD = 24 };
    rawpeer *r = calloc(HOLD, sizeof *r); /* large: not on the stack */
    assert_non_null(r);
    for (unsigned i = 0; i < HOLD; i++) {
        assert_int_equal(rawpeer_init(&r[i], NULL), 0);
        assert_int_equal(rawpeer_connect_from(&r[i], "127.0.0.2", port), 0);
    }
    unsigned want = HOLD;
    assert_int_equal(confab_testnet_run_until(f.tn, all_seen, &want,
                                              net_deadline(5000)),
                     0);
    confab_stats st = stats_of(f.tn, 0);
    assert_int_equal(st.links_accepted, 8);
    assert_int_equal(st.links_refused_source, HOLD - 8);

    /* A good peer from 127.0.0.1 links meanwhile. */
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%u", port);
    assert_int_equal(confab_node_dial(confab_testnet_node(f.tn, 1), hp), 0);
    assert_int_equal(confab_testnet_run_until(f.tn, linked_0_1, NULL,
                                              net_deadline(5000)),
                     0);
    good_peer_delivers(f.tn, 3);
    for (unsigned i = 0; i < HOLD; i++)
        rawpeer_free(&r[i]);
    free(r);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_bounds_peers_flood_capped),
        cmocka_unit_test(test_peer_bounds_unlinked_peers_expire),
        cmocka_unit_test(test_peer_bounds_beacon_flood_capped),
        cmocka_unit_test(test_peer_bounds_handshake_slots_per_source),
    };
    return cmocka_run_group_tests_name("peer_bounds", tests, NULL, NULL);
}
