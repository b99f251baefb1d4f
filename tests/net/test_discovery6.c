/* test_discovery6.c: IPv6 discovery and the addresses peers are told of,
 * on loopback only (docs/PROTOCOL.md 6, 9.2, 9.3). Beacons made here and
 * sent to [::1] at the node's discovery port reach its IPv6 beacon
 * socket; a raw peer over 127.0.0.1 sends PEERS with IPv6 entries. The
 * multicast group itself is exercised in network namespaces
 * (tests/netns/test_netns6.py). */
#include "net.h"
#include "rawpeer.h"

#include "crypto/netkey.h"
#include "crypto/tag.h"
#include "wire/beacon.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

static void one_node(net_fixture *f)
{
    confab_testnet_config c;
    net_config(&c, 1);
    c.discovery = true;
    c.node.beacon_interval_ms = 200;
    net_start(f, &c);
}

static confab_stats stats_of(confab_testnet *tn)
{
    confab_stats st;
    confab_node_stats(confab_testnet_node(tn, 0), &st);
    return st;
}

/* A beacon of node id, port, advertising adv (an IP literal, or NULL) at
 * adv_port, tagged under the public network key, sent to [::1]. */
static void send_beacon6(confab_testnet *tn, const uint8_t id[32],
                         uint16_t port, const char *adv, uint16_t adv_port)
{
    wire_beacon b;
    memset(&b, 0, sizeof b);
    b.version = WIRE_VERSION;
    memcpy(b.id, id, 32);
    b.port = port;
    b.name = (wire_bytes){(const uint8_t *)"six", 3};
    b.boot = 1;
    b.adv_port = adv_port;
    if (adv != NULL) {
        int v6 = strchr(adv, ':') != NULL;
        assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, adv, b.adv_addr),
                         1);
        b.adv_len = v6 ? 16 : 4;
    }
    uint8_t buf[WIRE_BEACON_MAX], tag[WIRE_BEACON_TAG_BYTES];
    size_t tagged, len;
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), 0);
    sec_netkey *nk;
    assert_int_equal(sec_netkey_public(&nk), 0);
    sec_beacon_tag(nk->key, buf, tagged, tag);
    sec_netkey_free(nk);
    assert_int_equal(wire_beacon_append_tag(buf, sizeof buf, tagged, tag, &len),
                     0);
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in6 to;
    assert_int_equal(uv_ip6_addr("::1", confab_testnet_discovery_port(tn), &to),
                     0);
    assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to),
                     (ssize_t)len);
    close(fd);
}

typedef struct known_at {
    const uint8_t *id;
    const char *address;
} known_at;

static bool peer_known_at(confab_testnet *tn, void *arg)
{
    known_at *k = arg;
    confab_peer_info info;
    return confab_peer(confab_testnet_node(tn, 0), k->id, &info) == 0 &&
           strcmp(info.address, k->address) == 0;
}

static void wait_known_at(confab_testnet *tn, const uint8_t *id,
                          const char *address)
{
    known_at k = {id, address};
    if (confab_testnet_run_until(tn, peer_known_at, &k, net_deadline(5000)) !=
        0) {
        confab_peer_info info;
        int rc = confab_peer(confab_testnet_node(tn, 0), id, &info);
        fail_msg("peer not learned at %s (%s)", address,
                 rc == 0 ? info.address : "unknown");
    }
}

static void test_discovery6_beacon_over_ipv6_learned(void **state)
{
    (void)state;
    net_fixture f;
    one_node(&f);
    uint8_t id[32], id2[32];
    randombytes_buf(id, sizeof id);
    randombytes_buf(id2, sizeof id2);
    /* From [::1]: dialed there, at the beacon's port. */
    send_beacon6(f.tn, id, 47123, NULL, 0);
    wait_known_at(f.tn, id, "[::1]:47123");
    /* The address and port it names replace the source's. */
    send_beacon6(f.tn, id2, 47124, "127.0.0.1", 47125);
    wait_known_at(f.tn, id2, "127.0.0.1:47125");
    assert_true(stats_of(f.tn).beacons_received >= 2);
    assert_int_equal(stats_of(f.tn).beacons_bad_addr, 0);
    net_stop(&f);
}

typedef struct want_stat {
    size_t off;
    uint64_t want;
} want_stat;

static bool stat_reached(confab_testnet *tn, void *arg)
{
    want_stat *w = arg;
    confab_stats st = stats_of(tn);
    uint64_t v;
    memcpy(&v, (const char *)&st + w->off, sizeof v);
    return v >= w->want;
}

#define WAIT_STAT(tn, field, n)                                                \
    do {                                                                       \
        want_stat w_ = {offsetof(confab_stats, field), (n)};                   \
        if (confab_testnet_run_until((tn), stat_reached, &w_,                  \
                                     net_deadline(5000)) != 0)                 \
            fail_msg(#field " stayed at %llu, not %llu",                       \
                     (unsigned long long)stats_of(tn).field,                   \
                     (unsigned long long)(n));                                 \
    } while (0)

static void test_discovery6_hostile_advertise_refused(void **state)
{
    (void)state;
    net_fixture f;
    one_node(&f);
    /* Unspecified, multicast, broadcast, link-local (no scope we could
     * know), mapped. */
    const char *bad[] = {
        "::",      "0.0.0.0",         "ff02::1", "224.0.0.1", "255.255.255.255",
        "fe80::1", "::ffff:127.0.0.9"};
    const size_t k = sizeof bad / sizeof bad[0];
    uint8_t ids[sizeof bad / sizeof bad[0]][32];
    for (size_t i = 0; i < k; i++) {
        randombytes_buf(ids[i], 32);
        send_beacon6(f.tn, ids[i], 47123, bad[i], 0);
    }
    WAIT_STAT(f.tn, beacons_bad_addr, k);
    confab_stats st = stats_of(f.tn);
    assert_int_equal(st.beacons_bad_addr, k);
    assert_true(st.beacons_dropped >= k);
    for (size_t i = 0; i < k; i++) {
        confab_peer_info info;
        if (confab_peer(confab_testnet_node(f.tn, 0), ids[i], &info) == 0)
            fail_msg("a beacon naming %s was learned", bad[i]);
    }
    net_stop(&f);
}

/* ---- PEERS with IPv6 entries ------------------------------------------ */

#define N_ENTRIES 8u

typedef struct pex_job {
    rawpeer r;
    uint16_t port;
    uint8_t ids[N_ENTRIES][32];
} pex_job;

/* Entry 0 is good (::1 over a loopback link); the rest are refused. */
static const char *const entry_ip[N_ENTRIES] = {
    "::1",
    "::",
    "0.0.0.0",
    "ff02::1",
    "224.0.0.1",
    "fe80::1", /* bad scope: the link is not link-local */
    "::ffff:127.0.0.9",
    "::127.0.0.9"};

static int pex_send(rawpeer_job *job)
{
    pex_job *a = job->arg;
    int rc = rawpeer_init(&a->r, NULL);
    if (rc == 0)
        rc = rawpeer_connect(&a->r, a->port);
    if (rc == 0)
        rc = rawpeer_handshake(&a->r, "mallory");
    if (rc != 0)
        return rc;
    uint8_t raw[N_ENTRIES][16];
    wire_peer_entry e[N_ENTRIES];
    memset(e, 0, sizeof e);
    for (unsigned i = 0; i < N_ENTRIES; i++) {
        int v6 = strchr(entry_ip[i], ':') != NULL;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, entry_ip[i], raw[i]) != 1)
            return -EINVAL;
        e[i].id = a->ids[i];
        e[i].addr = raw[i];
        e[i].addr_len = v6 ? 16 : 4;
        e[i].port = 47200;
    }
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_PEERS;
    m.u.peers.count = N_ENTRIES;
    m.u.peers.entries = e;
    return rawpeer_send_msg(&a->r, &m);
}

static void test_discovery6_hostile_peers_entries_refused(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    net_config(&c, 1);
    net_start(&f, &c);
    pex_job *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->port = confab_node_port(confab_testnet_node(f.tn, 0));
    randombytes_buf(a->ids, sizeof a->ids);
    rawpeer_job job;
    rawpeer_job_start(&job, pex_send, a);
    assert_int_equal(confab_testnet_run_until(f.tn, rawpeer_job_finished_cb,
                                              &job, net_deadline(10000)),
                     0);
    assert_int_equal(rawpeer_job_join(&job), 0);
    WAIT_STAT(f.tn, peers_addr_refused, N_ENTRIES - 1);
    wait_known_at(f.tn, a->ids[0], "[::1]:47200");
    assert_int_equal(stats_of(f.tn).peers_addr_refused, N_ENTRIES - 1);
    for (unsigned i = 1; i < N_ENTRIES; i++) {
        confab_peer_info info;
        if (confab_peer(confab_testnet_node(f.tn, 0), a->ids[i], &info) == 0)
            fail_msg("a PEERS entry at %s was learned", entry_ip[i]);
    }
    rawpeer_free(&a->r);
    free(a);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery6_beacon_over_ipv6_learned),
        cmocka_unit_test(test_discovery6_hostile_advertise_refused),
        cmocka_unit_test(test_discovery6_hostile_peers_entries_refused),
    };
    return cmocka_run_group_tests_name("discovery6", tests, NULL, NULL);
}
