/* test_beacon.c: the beacon codec (wire/beacon.h, PROTOCOL.md section 6). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/beacon.h"
#include "wire_alloc.h"

#include <errno.h>
#include <string.h>

static int counting;

static int setup(void **state)
{
    (void)state;
    counting = alloc_counting_works();
    return 0;
}

/* Every decode goes through here and shows it allocates nothing. */
static int decode(const uint8_t *buf, size_t len, wire_beacon *b,
                  size_t *tagged_len)
{
    alloc_count_start();
    int rc = wire_beacon_decode(buf, len, b, tagged_len);
    alloc_count_stop();
    if (counting)
        assert_int_equal(alloc_calls, 0);
    return rc;
}

static const uint8_t tag16[16] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5,
                                  0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb,
                                  0xfc, 0xfd, 0xfe, 0xff};

static void sample(wire_beacon *b)
{
    memset(b, 0, sizeof *b);
    b->version = WIRE_VERSION;
    for (int i = 0; i < 32; i++)
        b->id[i] = (uint8_t)i;
    b->port = 47000;
    b->name = (wire_bytes){(const uint8_t *)"alpha", 5};
    b->boot = 3;
}

static size_t make(const wire_beacon *b, uint8_t *buf, size_t cap,
                   size_t *tagged_len)
{
    size_t len;
    assert_int_equal(wire_beacon_encode(b, buf, cap, tagged_len), 0);
    assert_int_equal(wire_beacon_append_tag(buf, cap, *tagged_len, tag16, &len),
                     0);
    return len;
}

static void test_beacon_roundtrip(void **state)
{
    (void)state;
    static uint8_t name64[64];
    memset(name64, 'n', sizeof name64);
    const struct {
        wire_bytes name;
        uint16_t port;
        uint64_t boot;
    } cases[] = {
        {{(const uint8_t *)"alpha", 5}, 47000, 3},
        {{NULL, 0}, 1, 0},
        {{name64, 64}, 65535, UINT64_MAX},
        {{(const uint8_t *)"\xe2\x82\xac", 3}, 127, 128},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wire_beacon b, out;
        sample(&b);
        b.name = cases[i].name;
        b.port = cases[i].port;
        b.boot = cases[i].boot;
        uint8_t buf[WIRE_BEACON_MAX];
        size_t tagged, tagged2;
        size_t len = make(&b, buf, sizeof buf, &tagged);
        assert_true(len <= WIRE_BEACON_MAX);
        /* The tag is the last element: c4 10 and 16 bytes. */
        assert_int_equal(len, tagged + 18);
        assert_int_equal(buf[tagged], 0xc4);
        assert_int_equal(buf[tagged + 1], 16);
        assert_int_equal(decode(buf, len, &out, &tagged2), 0);
        assert_int_equal(tagged2, tagged);
        assert_true(out.version == WIRE_VERSION);
        assert_memory_equal(out.id, b.id, 32);
        assert_int_equal(out.port, b.port);
        assert_int_equal(out.name.len, b.name.len);
        if (b.name.len)
            assert_memory_equal(out.name.ptr, b.name.ptr, b.name.len);
        assert_true(out.name.ptr > buf && out.name.ptr <= buf + len);
        assert_true(out.boot == b.boot);
        assert_memory_equal(out.tag, tag16, 16);
        /* Too small a buffer, at every length. */
        for (size_t cap = 0; cap < tagged; cap++)
            assert_int_equal(wire_beacon_encode(&b, buf, cap, &tagged2),
                             -EMSGSIZE);
        for (size_t cap = tagged; cap < len; cap++)
            assert_int_equal(
                wire_beacon_append_tag(buf, cap, tagged, tag16, &tagged2),
                -EMSGSIZE);
    }
}

static void test_beacon_exact_bytes(void **state)
{
    (void)state;
    wire_beacon b;
    sample(&b);
    uint8_t buf[WIRE_BEACON_MAX];
    size_t tagged;
    size_t len = make(&b, buf, sizeof buf, &tagged);
    const uint8_t head[] = {0x97, 0xa6, 'c',  'o',  'n', 'f',
                            'a',  'b',  0x01, 0xc4, 0x20};
    const uint8_t tail[] = {0xcd, 0xb7, 0x98, 0xa5, 'a',
                            'l',  'p',  'h',  'a',  0x03};
    assert_int_equal(tagged, sizeof head + 32 + sizeof tail);
    assert_memory_equal(buf, head, sizeof head);
    assert_memory_equal(buf + sizeof head + 32, tail, sizeof tail);
    assert_int_equal(len, tagged + 18);
}

static void test_beacon_encode_rejects_out_of_range(void **state)
{
    (void)state;
    static uint8_t name65[65];
    memset(name65, 'n', sizeof name65);
    uint8_t buf[WIRE_BEACON_MAX];
    size_t tagged;
    wire_beacon b;
    sample(&b);
    b.port = 0;
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
    sample(&b);
    b.version = 2;
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
    sample(&b);
    b.name = (wire_bytes){name65, 65};
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
    b.name = (wire_bytes){(const uint8_t *)"\xff", 1};
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
    b.name = (wire_bytes){NULL, 1};
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
    size_t len;
    assert_int_equal(wire_beacon_append_tag(buf, 10, 11, tag16, &len),
                     -EMSGSIZE);
}

/* A beacon from its elements as raw msgpack, to build bad shapes. */
typedef struct part {
    const uint8_t *p;
    size_t n;
} part;

#define P(...)                                                                 \
    {                                                                          \
        (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}) \
    }
#define ID32                                                                   \
    0xc4, 0x20, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,  \
        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
#define TAG16                                                                  \
    0xc4, 0x10, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,    \
        0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff

static size_t join(uint8_t *out, const part *parts, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + len, parts[i].p, parts[i].n);
        len += parts[i].n;
    }
    return len;
}

enum { E_HDR, E_MAGIC, E_VER, E_ID, E_PORT, E_NAME, E_BOOT, E_TAG, E_N };

static const part good[E_N] = {
    P(0x97),
    P(0xa6, 'c', 'o', 'n', 'f', 'a', 'b'),
    P(0x01),
    P(ID32),
    P(0xcd, 0xb7, 0x98),
    P(0xa5, 'a', 'l', 'p', 'h', 'a'),
    P(0x03),
    P(TAG16),
};

/* Decodes `good` with element `which` replaced by `with`. */
static int decode_with(int which, part with, size_t *tagged)
{
    part parts[E_N];
    memcpy(parts, good, sizeof parts);
    parts[which] = with;
    uint8_t buf[1024];
    size_t len = join(buf, parts, E_N);
    wire_beacon b;
    return decode(buf, len, &b, tagged);
}

static void test_beacon_decode_rejects_bad_shapes(void **state)
{
    (void)state;
    size_t tagged;
    assert_int_equal(decode_with(E_HDR, (part)P(0x97), &tagged), 0);
    assert_int_equal(tagged, 1 + 7 + 1 + 34 + 3 + 6 + 1);
    const struct {
        const char *name;
        int which;
        part with;
    } bad[] = {
        {"6 elements", E_HDR, P(0x96)},
        {"8 elements", E_HDR, P(0x98)},
        {"a map", E_HDR, P(0x87)},
        {"array 16 of 8", E_HDR, P(0xdc, 0x00, 0x08)},
        {"magic confac", E_MAGIC, P(0xa6, 'c', 'o', 'n', 'f', 'a', 'c')},
        {"magic Confab", E_MAGIC, P(0xa6, 'C', 'o', 'n', 'f', 'a', 'b')},
        {"magic confa", E_MAGIC, P(0xa5, 'c', 'o', 'n', 'f', 'a')},
        {"magic confab!", E_MAGIC, P(0xa7, 'c', 'o', 'n', 'f', 'a', 'b', '!')},
        {"magic as bin", E_MAGIC, P(0xc4, 6, 'c', 'o', 'n', 'f', 'a', 'b')},
        {"version 0", E_VER, P(0x00)},
        {"version 2", E_VER, P(0x02)},
        {"version -1", E_VER, P(0xff)},
        {"version as str", E_VER, P(0xa1, '1')},
        {"id bin 31", E_ID,
         P(0xc4, 0x1f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)},
        {"id as str", E_ID, P(0xa2, 'i', 'd')},
        {"port 0", E_PORT, P(0x00)},
        {"port 65536", E_PORT, P(0xce, 0x00, 0x01, 0x00, 0x00)},
        {"port negative", E_PORT, P(0xd1, 0xff, 0x00)},
        {"port nil", E_PORT, P(0xc0)},
        {"name invalid UTF-8", E_NAME, P(0xa2, 0xc3, 0x28)},
        {"name as bin", E_NAME, P(0xc4, 0x01, 'a')},
        {"boot negative", E_BOOT, P(0xe0)},
        {"boot float", E_BOOT, P(0xca, 0, 0, 0, 0)},
        {"tag bin 15", E_TAG,
         P(0xc4, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)},
        {"tag str", E_TAG,
         P(0xb0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)},
        {"tag nested", E_TAG, P(0x91, 0x01)},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (decode_with(bad[i].which, bad[i].with, &tagged) != -EPROTO)
            fail_msg("accepted %s", bad[i].name);
    /* name: 64 bytes fine, 65 not. */
    uint8_t name[67] = {0xd9, 64};
    memset(name + 2, 'n', 65);
    assert_int_equal(decode_with(E_NAME, (part){name, 66}, &tagged), 0);
    name[1] = 65;
    assert_int_equal(decode_with(E_NAME, (part){name, 67}, &tagged), -EPROTO);
}

static void test_beacon_decode_non_shortest_forms(void **state)
{
    (void)state;
    /* Receivers accept any integer and str format; the tag still covers
     * every byte before it. */
    part parts[E_N];
    memcpy(parts, good, sizeof parts);
    parts[E_HDR] = (part)P(0xdc, 0x00, 0x07);
    parts[E_MAGIC] = (part)P(0xd9, 6, 'c', 'o', 'n', 'f', 'a', 'b');
    parts[E_VER] = (part)P(0xd3, 0, 0, 0, 0, 0, 0, 0, 1);
    parts[E_PORT] = (part)P(0xd1, 0x00, 0x50);
    parts[E_BOOT] = (part)P(0xcf, 0, 0, 0, 0, 0, 0, 0, 3);
    uint8_t buf[256];
    size_t len = join(buf, parts, E_N), tagged;
    wire_beacon b;
    assert_int_equal(decode(buf, len, &b, &tagged), 0);
    assert_int_equal(tagged, len - 18);
    assert_int_equal(b.port, 80);
    assert_true(b.boot == 3);
}

static void test_beacon_decode_rejects_length_and_trailing(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t len = join(buf, good, E_N), tagged;
    wire_beacon b;
    assert_int_equal(decode(buf, len, &b, &tagged), 0);
    buf[len] = 0x00;
    assert_int_equal(decode(buf, len + 1, &b, &tagged), -EPROTO);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(decode(buf, n, &b, &tagged), -EPROTO);
    assert_int_equal(decode(NULL, 0, &b, &tagged), -EPROTO);
    /* Over 512 bytes: dropped whatever it holds. */
    memset(buf, 0, sizeof buf);
    len = join(buf, good, E_N);
    assert_int_equal(decode(buf, WIRE_BEACON_MAX + 1, &b, &tagged), -EPROTO);
    /* Huge declared lengths: rejected without allocation. */
    const uint8_t huge1[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t huge2[] = {0x97, 0xdb, 0xff, 0xff, 0xff, 0xff};
    const uint8_t huge3[] = {0x97, 0xa6, 'c',  'o',  'n',  'f',  'a',
                             'b',  0x01, 0xc6, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(decode(huge1, sizeof huge1, &b, &tagged), -EPROTO);
    assert_int_equal(decode(huge2, sizeof huge2, &b, &tagged), -EPROTO);
    assert_int_equal(decode(huge3, sizeof huge3, &b, &tagged), -EPROTO);
}

/* ---- the extension map (element 6 of an 8-element beacon) ---- */

static void test_beacon_extension_roundtrip(void **state)
{
    (void)state;
    const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    const uint8_t v4[4] = {203, 0, 113, 7};
    struct {
        const uint8_t *addr;
        uint8_t len;
        uint16_t port;
    } cases[] = {{v6, 16, 47001}, {v4, 4, 0}, {NULL, 0, 47002}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wire_beacon b, d;
        sample(&b);
        if (cases[i].len)
            memcpy(b.adv_addr, cases[i].addr, cases[i].len);
        b.adv_len = cases[i].len;
        b.adv_port = cases[i].port;
        uint8_t buf[WIRE_BEACON_MAX];
        size_t tagged, dtagged;
        size_t len = make(&b, buf, sizeof buf, &tagged);
        assert_int_equal(buf[0], 0x98); /* 8 elements with the map */
        assert_int_equal(decode(buf, len, &d, &dtagged), 0);
        assert_int_equal(dtagged, tagged);
        assert_int_equal(d.adv_len, cases[i].len);
        assert_memory_equal(d.adv_addr, b.adv_addr, 16);
        assert_int_equal(d.adv_port, cases[i].port);
        assert_int_equal(d.port, 47000);
        assert_memory_equal(d.tag, tag16, 16);
    }
    /* Nothing to advertise: the 7-element form every receiver takes. */
    wire_beacon b;
    sample(&b);
    uint8_t buf[WIRE_BEACON_MAX];
    size_t tagged;
    make(&b, buf, sizeof buf, &tagged);
    assert_int_equal(buf[0], 0x97);
    /* An address of another length is refused at encode. */
    b.adv_len = 5;
    assert_int_equal(wire_beacon_encode(&b, buf, sizeof buf, &tagged), -EINVAL);
}

/* A beacon whose element 6 is ext[0..n), then a tag. */
static size_t with_ext(const uint8_t *ext, size_t n, uint8_t *buf, size_t cap)
{
    wire_beacon b;
    sample(&b);
    size_t tagged, len;
    assert_int_equal(wire_beacon_encode(&b, buf, cap, &tagged), 0);
    buf[0] = 0x98;
    assert_true(n <= cap - tagged);
    memcpy(buf + tagged, ext, n);
    assert_int_equal(wire_beacon_append_tag(buf, cap, tagged + n, tag16, &len),
                     0);
    return len;
}

static void test_beacon_extension_unknown_keys_ignored(void **state)
{
    (void)state;
    /* {"zz": 1, "port": 47009, "note": "hi", "flag": true} */
    const uint8_t ext[] = {0x84, 0xa2, 'z',  'z',  0x01, 0xa4, 'p', 'o', 'r',
                           't',  0xcd, 0xb7, 0xa1, 0xa4, 'n',  'o', 't', 'e',
                           0xa2, 'h',  'i',  0xa4, 'f',  'l',  'a', 'g', 0xc3};
    uint8_t buf[WIRE_BEACON_MAX];
    size_t len = with_ext(ext, sizeof ext, buf, sizeof buf);
    wire_beacon d;
    size_t tagged;
    assert_int_equal(decode(buf, len, &d, &tagged), 0);
    assert_int_equal(d.adv_port, 47009);
    assert_int_equal(d.adv_len, 0);
    assert_int_equal(tagged, len - 18);
    /* An empty map is fine too. */
    const uint8_t empty[] = {0x80};
    len = with_ext(empty, sizeof empty, buf, sizeof buf);
    assert_int_equal(decode(buf, len, &d, &tagged), 0);
    /* At most WIRE_BEACON_MAX_EXT keys: 16 pass, 17 do not. */
    uint8_t many[3 + 17 * 3] = {0xde, 0x00}; /* map 16 */
    for (unsigned k = 16; k <= 17; k++) {
        many[2] = (uint8_t)k;
        for (unsigned j = 0; j < k; j++) {
            many[3 + 3 * j] = 0xa1;
            many[4 + 3 * j] = (uint8_t)('a' + j);
            many[5 + 3 * j] = 0x01;
        }
        len = with_ext(many, 3 + 3 * k, buf, sizeof buf);
        assert_int_equal(decode(buf, len, &d, &tagged),
                         k <= WIRE_BEACON_MAX_EXT ? 0 : -EPROTO);
    }
}

static void test_beacon_extension_bad_shapes_rejected(void **state)
{
    (void)state;
    const struct {
        const char *name;
        uint8_t ext[24];
        size_t len;
    } bad[] = {
        {"not a map", {0x90}, 1},
        {"addr of 5 bytes",
         {0x81, 0xa4, 'a', 'd', 'd', 'r', 0xc4, 5, 1, 2, 3, 4, 5},
         13},
        {"addr as str", {0x81, 0xa4, 'a', 'd', 'd', 'r', 0xa4, 1, 2, 3, 4}, 11},
        {"port 0", {0x81, 0xa4, 'p', 'o', 'r', 't', 0x00}, 7},
        {"port 65536", {0x81, 0xa4, 'p', 'o', 'r', 't', 0xce, 0, 1, 0, 0}, 11},
        {"port twice",
         {0x82, 0xa4, 'p', 'o', 'r', 't', 0x01, 0xa4, 'p', 'o', 'r', 't', 0x02},
         13},
        {"key not a str", {0x81, 0x01, 0x01}, 3},
        {"a nested value", {0x81, 0xa1, 'x', 0x91, 0x01}, 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t buf[WIRE_BEACON_MAX];
        size_t len = with_ext(bad[i].ext, bad[i].len, buf, sizeof buf);
        wire_beacon d;
        size_t tagged;
        if (decode(buf, len, &d, &tagged) != -EPROTO)
            fail_msg("accepted an extension map with %s", bad[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beacon_roundtrip),
        cmocka_unit_test(test_beacon_exact_bytes),
        cmocka_unit_test(test_beacon_encode_rejects_out_of_range),
        cmocka_unit_test(test_beacon_decode_rejects_bad_shapes),
        cmocka_unit_test(test_beacon_decode_non_shortest_forms),
        cmocka_unit_test(test_beacon_decode_rejects_length_and_trailing),
        cmocka_unit_test(test_beacon_extension_roundtrip),
        cmocka_unit_test(test_beacon_extension_unknown_keys_ignored),
        cmocka_unit_test(test_beacon_extension_bad_shapes_rejected),
    };
    return cmocka_run_group_tests_name("beacon", tests, setup, NULL);
}
