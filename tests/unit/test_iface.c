/* test_iface.c: discovery's address rules (node/peers/iface.c,
 * docs/PROTOCOL.md 9.2 and 9.3), on made-up addresses: which address a
 * beacon makes a node dial, which PEERS entries it takes (and with which
 * scope), and which it hands to whom. No sockets. */
#include "node/base/addr.h"
#include "node/peers/iface.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static struct sockaddr_storage sa(const char *ip, uint16_t port, unsigned scope)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') == NULL) {
        assert_int_equal(uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss), 0);
    } else {
        assert_int_equal(uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss), 0);
        ((struct sockaddr_in6 *)&ss)->sin6_scope_id = scope;
    }
    return ss;
}

static unsigned scope(const struct sockaddr_storage *ss)
{
    return ((const struct sockaddr_in6 *)ss)->sin6_scope_id;
}

static void beacon_with(wire_beacon *b, const char *adv, uint16_t adv_port)
{
    memset(b, 0, sizeof *b);
    b->port = 47000;
    b->adv_port = adv_port;
    if (adv == NULL)
        return;
    if (strchr(adv, ':') == NULL) {
        assert_int_equal(inet_pton(AF_INET, adv, b->adv_addr), 1);
        b->adv_len = 4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, adv, b->adv_addr), 1);
        b->adv_len = 16;
    }
}

static int beacon_addr(const char *src, unsigned src_scope, const char *adv,
                       uint16_t adv_port, struct sockaddr_storage *out)
{
    struct sockaddr_storage s = sa(src, 47474, src_scope);
    wire_beacon b;
    beacon_with(&b, adv, adv_port);
    return node_beacon_address((const struct sockaddr *)&s, &b, out);
}

static void test_iface_beacon_address_rules(void **state)
{
    (void)state;
    struct sockaddr_storage out, want;
    /* The source, with its scope, at the beacon's port. */
    assert_int_equal(beacon_addr("fe80::1", 3, NULL, 0, &out), 0);
    want = sa("fe80::1", 47000, 3);
    assert_memory_equal(&out, &want, sizeof(struct sockaddr_in6));
    /* A link-local source without a scope cannot be dialed. */
    assert_int_equal(beacon_addr("fe80::1", 0, NULL, 0, &out), -EINVAL);
    /* An IPv4 peer of a dual-stack socket is dialed as IPv4. */
    assert_int_equal(beacon_addr("::ffff:10.0.0.7", 0, NULL, 0, &out), 0);
    want = sa("10.0.0.7", 47000, 0);
    assert_memory_equal(&out, &want, sizeof(struct sockaddr_in));
    /* The named address and port replace the source's. */
    assert_int_equal(beacon_addr("fe80::1", 3, "fd00::7", 47001, &out), 0);
    want = sa("fd00::7", 47001, 0);
    assert_memory_equal(&out, &want, sizeof(struct sockaddr_in6));
    assert_int_equal(beacon_addr("10.0.0.1", 0, "203.0.113.7", 0, &out), 0);
    want = sa("203.0.113.7", 47000, 0);
    assert_memory_equal(&out, &want, sizeof(struct sockaddr_in));
    /* Loopback named: only from a loopback source. */
    assert_int_equal(beacon_addr("::1", 0, "127.0.0.1", 0, &out), 0);
    assert_int_equal(beacon_addr("10.0.0.1", 0, "127.0.0.1", 0, &out), -EINVAL);
    assert_int_equal(beacon_addr("10.0.0.1", 0, "::1", 0, &out), -EINVAL);
    /* Hostile: unspecified, multicast, broadcast, mapped, link-local. */
    const char *bad[] = {"::",          "0.0.0.0",         "ff02::1",
                         "224.0.0.251", "255.255.255.255", "::ffff:10.0.0.1",
                         "fe80::9",     "0.1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (beacon_addr("10.0.0.1", 0, bad[i], 0, &out) != -EINVAL)
            fail_msg("a beacon naming %s was taken", bad[i]);
}

static int entry_addr(const char *via, unsigned via_scope, const char *ip,
                      struct sockaddr_storage *out)
{
    struct sockaddr_storage v = sa(via, 40000, via_scope);
    uint8_t raw[16];
    wire_peer_entry e;
    memset(&e, 0, sizeof e);
    if (strchr(ip, ':') == NULL) {
        assert_int_equal(inet_pton(AF_INET, ip, raw), 1);
        e.addr_len = 4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, raw), 1);
        e.addr_len = 16;
    }
    e.addr = raw;
    e.port = 47002;
    return node_pex_entry_address(&v, &e, out);
}

static void test_iface_pex_entry_rules(void **state)
{
    (void)state;
    struct sockaddr_storage out, want;
    assert_int_equal(entry_addr("fd00::1", 0, "fd00::9", &out), 0);
    want = sa("fd00::9", 47002, 0);
    assert_memory_equal(&out, &want, sizeof(struct sockaddr_in6));
    assert_int_equal(entry_addr("10.0.0.1", 0, "10.0.0.9", &out), 0);
    /* Link-local over a link-local link: that link's scope. */
    assert_int_equal(entry_addr("fe80::1", 5, "fe80::9", &out), 0);
    assert_int_equal(out.ss_family, AF_INET6);
    assert_int_equal(scope(&out), 5);
    /* Bad scope: link-local over a link that is not (or has none). */
    assert_int_equal(entry_addr("fd00::1", 0, "fe80::9", &out), -EINVAL);
    assert_int_equal(entry_addr("10.0.0.1", 0, "fe80::9", &out), -EINVAL);
    assert_int_equal(entry_addr("fe80::1", 0, "fe80::9", &out), -EINVAL);
    /* Loopback only over loopback (also a dual-stack socket's form). */
    assert_int_equal(entry_addr("127.0.0.1", 0, "::1", &out), 0);
    assert_int_equal(entry_addr("::ffff:127.0.0.1", 0, "127.0.0.1", &out), 0);
    assert_int_equal(entry_addr("10.0.0.1", 0, "127.0.0.1", &out), -EINVAL);
    assert_int_equal(entry_addr("fd00::1", 0, "::1", &out), -EINVAL);
    /* Never dialable. */
    const char *bad[] = {
        "::",        "0.0.0.0",         "ff02::1",         "ff0e::5",
        "239.1.2.3", "255.255.255.255", "::ffff:10.0.0.1", "::10.0.0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (entry_addr("10.0.0.1", 0, bad[i], &out) != -EINVAL)
            fail_msg("a PEERS entry at %s was taken", bad[i]);
}

static bool shareable(const char *a, unsigned a_scope, const char *to,
                      unsigned to_scope)
{
    struct sockaddr_storage x = sa(a, 47000, a_scope);
    struct sockaddr_storage y = sa(to, 40000, to_scope);
    return node_pex_shareable(&x, &y);
}

static void test_iface_pex_shareable_rules(void **state)
{
    (void)state;
    assert_true(shareable("10.0.0.9", 0, "10.0.0.2", 0));
    assert_true(shareable("fd00::9", 0, "10.0.0.2", 0));
    /* A loopback address learned from a local link: not to a remote
     * peer, but to a local one. */
    assert_false(shareable("127.0.0.1", 0, "10.0.0.2", 0));
    assert_false(shareable("::1", 0, "fd00::2", 0));
    assert_true(shareable("127.0.0.1", 0, "127.0.0.1", 0));
    /* Link-local: to a peer on the same link only. */
    assert_true(shareable("fe80::9", 4, "fe80::2", 4));
    assert_false(shareable("fe80::9", 4, "fe80::2", 5));
    assert_false(shareable("fe80::9", 4, "fd00::2", 0));
    assert_false(shareable("fe80::9", 4, "10.0.0.2", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iface_beacon_address_rules),
        cmocka_unit_test(test_iface_pex_entry_rules),
        cmocka_unit_test(test_iface_pex_shareable_rules),
    };
    return cmocka_run_group_tests_name("iface", tests, NULL, NULL);
}
