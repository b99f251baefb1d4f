/* test_mp.c: the bounded msgpack walker, readers and writer (wire/mp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/mp.h"
#include "wire_alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct sample {
    const char *name;
    const uint8_t *bytes;
    size_t len;
} sample;

#define S(name, ...)                                                           \
    {                                                                          \
        name, (const uint8_t[]){__VA_ARGS__},                                  \
            sizeof((const uint8_t[]){__VA_ARGS__})                             \
    }

/* One value of every type confab uses, in every format. */
static const sample valid[] = {
    S("fixint 0", 0x00),
    S("fixint 127", 0x7f),
    S("negative fixint", 0xff),
    S("nil", 0xc0),
    S("false", 0xc2),
    S("true", 0xc3),
    S("uint 8", 0xcc, 0xff),
    S("uint 16", 0xcd, 0x01, 0x00),
    S("uint 32", 0xce, 0x00, 0x01, 0x00, 0x00),
    S("uint 64", 0xcf, 1, 2, 3, 4, 5, 6, 7, 8),
    S("int 8", 0xd0, 0x80),
    S("int 16", 0xd1, 0x80, 0x00),
    S("int 32", 0xd2, 0x00, 0x00, 0x00, 0x01),
    S("int 64", 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    S("fixstr", 0xa3, 'a', 'b', 'c'),
    S("empty fixstr", 0xa0),
    S("str 8", 0xd9, 0x02, 'h', 'i'),
    S("str 16", 0xda, 0x00, 0x01, 'x'),
    S("str 32", 0xdb, 0x00, 0x00, 0x00, 0x01, 'x'),
    S("bin 8", 0xc4, 0x02, 0x00, 0xff),
    S("bin 16", 0xc5, 0x00, 0x01, 0x00),
    S("bin 32", 0xc6, 0x00, 0x00, 0x00, 0x00),
    S("fixarray", 0x93, 0x01, 0x02, 0x03),
    S("empty fixarray", 0x90),
    S("array 16", 0xdc, 0x00, 0x02, 0x01, 0xc0),
    S("array 32", 0xdd, 0x00, 0x00, 0x00, 0x01, 0xc3),
    S("fixmap", 0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0x01, 0x02),
    S("empty fixmap", 0x80),
    S("map 16", 0xde, 0x00, 0x01, 0x01, 0x02),
    S("map 32", 0xdf, 0x00, 0x00, 0x00, 0x01, 0xc0, 0xc0),
    S("map of array of arrays", 0x81, 0xa1, 'p', 0x92, 0x91, 0x01, 0x90),
    S("depth 4", 0x91, 0x91, 0x91, 0x91, 0x01),
};

/* Declared counts and lengths far beyond the bytes given: a decoder that
 * believed them would allocate gigabytes. */
static const sample huge[] = {
    S("array 32 ffffffff", 0xdd, 0xff, 0xff, 0xff, 0xff),
    S("array 16 ffff", 0xdc, 0xff, 0xff),
    S("map 16 ffff", 0xde, 0xff, 0xff),
    S("map 32 ffffffff", 0xdf, 0xff, 0xff, 0xff, 0xff),
    S("bin 32 ffffffff", 0xc6, 0xff, 0xff, 0xff, 0xff),
    S("str 32 ffffffff", 0xdb, 0xff, 0xff, 0xff, 0xff),
    S("bin 16 ffff", 0xc5, 0xff, 0xff),
    S("str 16 ffff", 0xda, 0xff, 0xff),
    S("bin 8 ff", 0xc4, 0xff),
    S("str 8 ff", 0xd9, 0xff),
    S("fixarray 15", 0x9f),
    S("fixmap 15", 0x8f),
    S("array 32 with some bytes", 0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4),
    S("nested huge", 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff),
    S("map then huge", 0x81, 0xa1, 't', 0xdf, 0xff, 0xff, 0xff, 0xff),
    S("array 32 of 8 for 7", 0xdd, 0x00, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7),
    S("map 16 of 2 for 3", 0xde, 0x00, 0x02, 1, 2, 3),
    S("pending over left", 0x92, 0x93, 0x01, 0x02, 0x03),
};

static const sample invalid[] = {
    S("float 32", 0xca, 0, 0, 0, 0),
    S("float 64", 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
    S("fixext 1", 0xd4, 0x01, 0x00),
    S("fixext 2", 0xd5, 0x01, 0x00, 0x00),
    S("fixext 4", 0xd6, 0x01, 0, 0, 0, 0),
    S("fixext 8", 0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0),
    S("fixext 16", 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    S("ext 8", 0xc7, 0x00, 0x01),
    S("ext 16", 0xc8, 0x00, 0x00, 0x01),
    S("ext 32", 0xc9, 0x00, 0x00, 0x00, 0x00, 0x01),
    S("never used", 0xc1),
    S("float inside a map", 0x81, 0xa1, 'f', 0xca, 0, 0, 0, 0),
    S("trailing byte", 0x01, 0x02),
    S("trailing after map", 0x80, 0xc0),
    S("truncated uint 16", 0xcd, 0x01),
    S("truncated uint 64", 0xcf, 1, 2, 3, 4, 5, 6, 7),
    S("truncated str", 0xa3, 'a', 'b'),
    S("truncated str 16 header", 0xda, 0x00),
    S("truncated map", 0x82, 0xa1, 'a', 0x01, 0xa1, 'b'),
    S("depth 5", 0x91, 0x91, 0x91, 0x91, 0x91, 0x01),
    S("depth 5 empty", 0x91, 0x91, 0x91, 0x91, 0x90),
};

static void test_mp_check_accepts_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        if (wire_mp_check(valid[i].bytes, valid[i].len, WIRE_MAX_DEPTH) != 0)
            fail_msg("rejected %s", valid[i].name);
    }
}

static void test_mp_check_rejects_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (wire_mp_check(invalid[i].bytes, invalid[i].len, WIRE_MAX_DEPTH) !=
            -EPROTO)
            fail_msg("accepted %s", invalid[i].name);
    }
    assert_int_equal(wire_mp_check(NULL, 0, WIRE_MAX_DEPTH), -EPROTO);
    uint8_t one = 0x01;
    assert_int_equal(wire_mp_check(&one, 0, WIRE_MAX_DEPTH), -EPROTO);
}

/* wire_mp_check_first (#18, batches): every valid object followed by
 * anything (another object, garbage, nothing) is taken at its own length;
 * every invalid one but for the trailing-bytes cases is still refused. */
static void test_mp_check_first(void **state)
{
    (void)state;
    uint8_t buf[512];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = valid[i].len, used = 0;
        assert_true(n + 2 <= sizeof buf);
        memcpy(buf, valid[i].bytes, n);
        buf[n] = 0xc1; /* never valid msgpack */
        buf[n + 1] = 0x91;
        for (size_t extra = 0; extra <= 2; extra++) {
            if (wire_mp_check_first(buf, n + extra, WIRE_MAX_DEPTH, &used) !=
                    0 ||
                used != n)
                fail_msg("%s followed by %zu bytes: not taken at %zu",
                         valid[i].name, extra, n);
        }
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        size_t used;
        int rc = wire_mp_check_first(invalid[i].bytes, invalid[i].len,
                                     WIRE_MAX_DEPTH, &used);
        if (strncmp(invalid[i].name, "trailing", 8) == 0)
            assert_true(rc == 0 && used < invalid[i].len);
        else if (rc != -EPROTO)
            fail_msg("accepted %s", invalid[i].name);
    }
    size_t used;
    assert_int_equal(wire_mp_check_first(NULL, 0, WIRE_MAX_DEPTH, &used),
                     -EPROTO);
}

static void test_mp_check_rejects_every_truncation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        for (size_t n = 0; n < valid[i].len; n++)
            if (wire_mp_check(valid[i].bytes, n, WIRE_MAX_DEPTH) != -EPROTO)
                fail_msg("accepted %zu bytes of %s", n, valid[i].name);
}

/* The STYLE.md test: dd ff ff ff ff and friends are rejected by the walk,
 * which allocates nothing; msgpack-c's unpacker, handed the same bytes,
 * asks for gigabytes (a positive control showing the counter works). */
static void test_mp_check_huge_counts_allocate_nothing(void **state)
{
    (void)state;
    int counting = alloc_counting_works();
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        alloc_count_start();
        int rc = wire_mp_check(huge[i].bytes, huge[i].len, WIRE_MAX_DEPTH);
        wire_mp_reader r;
        wire_mp_reader_init(&r, huge[i].bytes, huge[i].len);
        int skip = wire_mp_skip(&r);
        alloc_count_stop();
        if (rc != -EPROTO || skip != -EPROTO)
            fail_msg("accepted %s", huge[i].name);
        assert_int_equal(wire_mp_left(&r), huge[i].len); /* consumed nothing */
        if (counting && alloc_calls != 0)
            fail_msg("%s: %zu allocations", huge[i].name, alloc_calls);
    }
    if (!counting) {
        print_message("allocation counting unavailable here (ASan or "
                      "valgrind): checked rejection only\n");
        return;
    }
    const uint8_t dd[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    alloc_count_start();
    msgpack_unpack_return ret =
        msgpack_unpack_next(&u, (const char *)dd, sizeof dd, &off);
    alloc_count_stop();
    msgpack_unpacked_destroy(&u);
    assert_int_not_equal(ret, MSGPACK_UNPACK_SUCCESS);
    assert_true(alloc_largest >= (size_t)0xffffffff);
}

/* What wire_mp_check() accepts, msgpack-c's unpacker accepts too, using
 * exactly the same bytes. */
static void test_mp_check_agrees_with_msgpack_c(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        msgpack_unpack_return ret = msgpack_unpack_next(
            &u, (const char *)valid[i].bytes, valid[i].len, &off);
        msgpack_unpacked_destroy(&u);
        if (ret != MSGPACK_UNPACK_SUCCESS || off != valid[i].len)
            fail_msg("msgpack-c disagrees on %s", valid[i].name);
    }
}

static void test_mp_check_depth(void **state)
{
    (void)state;
    uint8_t nest[64];
    for (unsigned d = 0; d <= 40; d++) {
        memset(nest, 0x91, d);
        nest[d] = 0x01;
        for (unsigned max = 0; max <= 34; max++) {
            int want = d <= max && d <= 32 ? 0 : -EPROTO;
            assert_int_equal(wire_mp_check(nest, d + 1, max), want);
        }
    }
    /* A scalar is depth 0; an empty map is depth 1. */
    const uint8_t scalar = 0x05, empty = 0x80;
    assert_int_equal(wire_mp_check(&scalar, 1, 0), 0);
    assert_int_equal(wire_mp_check(&empty, 1, 0), -EPROTO);
    assert_int_equal(wire_mp_check(&empty, 1, 1), 0);
    /* A map holding an array of arrays is depth 3. */
    const uint8_t m[] = {0x81, 0xa1, 'p', 0x91, 0x92, 0x01, 0x02};
    assert_int_equal(wire_mp_check(m, sizeof m, 2), -EPROTO);
    assert_int_equal(wire_mp_check(m, sizeof m, 3), 0);
    /* Siblings close their containers: [[1],[2],[3]] is depth 2. */
    const uint8_t s[] = {0x93, 0x91, 0x01, 0x91, 0x02, 0x91, 0x03};
    assert_int_equal(wire_mp_check(s, sizeof s, 2), 0);
    assert_int_equal(wire_mp_check(s, sizeof s, 1), -EPROTO);
}

static void test_mp_check_deep_input_no_recursion(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    uint8_t *deep = test_malloc(n);
    assert_non_null(deep);
    memset(deep, 0x91, n - 1);
    deep[n - 1] = 0x00;
    assert_int_equal(wire_mp_check(deep, n, WIRE_MAX_DEPTH), -EPROTO);
    assert_int_equal(wire_mp_check(deep, n, UINT32_MAX), -EPROTO);
    /* skip has no depth limit but no recursion either. */
    wire_mp_reader r;
    wire_mp_reader_init(&r, deep, n);
    assert_int_equal(wire_mp_skip(&r), 0);
    assert_int_equal(wire_mp_left(&r), 0);
    test_free(deep);
}

static void test_mp_read_uint_formats(void **state)
{
    (void)state;
    const struct {
        sample s;
        int ok;
        uint64_t v;
    } cases[] = {
        {S("fixint", 0x05), 1, 5},
        {S("uint 8", 0xcc, 0xc8), 1, 200},
        {S("uint 16", 0xcd, 0xb7, 0x98), 1, 47000},
        {S("uint 32", 0xce, 0x01, 0x00, 0x00, 0x00), 1, 16777216},
        {S("uint 64", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 1,
         UINT64_MAX},
        {S("int 8 non-negative", 0xd0, 0x7f), 1, 127},
        {S("int 16 non-negative", 0xd1, 0x03, 0xe8), 1, 1000},
        {S("int 32 non-negative", 0xd2, 0x00, 0x01, 0x00, 0x00), 1, 65536},
        {S("int 64 non-negative", 0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
           0xff, 0xff),
         1, INT64_MAX},
        {S("int 8 zero", 0xd0, 0x00), 1, 0},
        {S("int 8 negative", 0xd0, 0xff), 0, 0},
        {S("int 16 negative", 0xd1, 0x80, 0x00), 0, 0},
        {S("int 32 negative", 0xd2, 0xff, 0xff, 0xff, 0xfe), 0, 0},
        {S("int 64 negative", 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), 0, 0},
        {S("negative fixint", 0xe0), 0, 0},
        {S("float", 0xca, 0x3f, 0x80, 0x00, 0x00), 0, 0},
        {S("str", 0xa1, '1'), 0, 0},
        {S("nil", 0xc0), 0, 0},
        {S("bool", 0xc3), 0, 0},
        {S("truncated", 0xcd, 0x01), 0, 0},
        {S("truncated int 64", 0xd3, 0x00), 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wire_mp_reader r;
        wire_mp_reader_init(&r, cases[i].s.bytes, cases[i].s.len);
        uint64_t v = 12345;
        int rc = wire_mp_read_uint(&r, &v);
        if (cases[i].ok) {
            if (rc != 0 || v != cases[i].v || wire_mp_left(&r) != 0)
                fail_msg("%s: rc %d v %llu", cases[i].s.name, rc,
                         (unsigned long long)v);
        } else {
            if (rc != -EPROTO || wire_mp_left(&r) != cases[i].s.len)
                fail_msg("%s accepted or consumed", cases[i].s.name);
        }
    }
}

static void test_mp_read_str_bin_bool_nil(void **state)
{
    (void)state;
    const uint8_t in[] = {0xa2, 'h',  'i',  0xc4, 0x01, 0x09, 0xc3,
                          0xc2, 0xc0, 0xd9, 0x00, 0xa2, 0xff, 0xfe};
    wire_mp_reader r;
    wire_mp_reader_init(&r, in, sizeof in);
    const uint8_t *p;
    uint32_t len;
    int b;
    assert_int_equal(wire_mp_read_bin(&r, &p, &len), -EPROTO); /* a str */
    assert_int_equal(wire_mp_read_str(&r, &p, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "hi", 2);
    assert_ptr_equal(p, in + 1);                               /* borrowed */
    assert_int_equal(wire_mp_read_str(&r, &p, &len), -EPROTO); /* a bin */
    assert_int_equal(wire_mp_read_bin(&r, &p, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 9);
    assert_int_equal(wire_mp_read_nil(&r), -EPROTO);
    assert_int_equal(wire_mp_read_bool(&r, &b), 0);
    assert_true(b);
    assert_int_equal(wire_mp_read_bool(&r, &b), 0);
    assert_false(b);
    assert_int_equal(wire_mp_read_bool(&r, &b), -EPROTO);
    assert_int_equal(wire_mp_read_nil(&r), 0);
    assert_int_equal(wire_mp_read_str(&r, &p, &len), 0); /* str 8, empty */
    assert_int_equal(len, 0);
    /* Invalid UTF-8 is not a str; nothing is consumed. */
    size_t left = wire_mp_left(&r);
    assert_int_equal(wire_mp_read_str(&r, &p, &len), -EPROTO);
    assert_int_equal(wire_mp_left(&r), left);
    assert_int_equal(wire_mp_skip(&r), 0);
    assert_int_equal(wire_mp_left(&r), 0);
    assert_int_equal(wire_mp_read_nil(&r), -EPROTO);
    assert_int_equal(wire_mp_peek_type(&r), -1);

    /* A length past the end. */
    const uint8_t cut[] = {0xc4, 0x05, 0x01};
    wire_mp_reader_init(&r, cut, sizeof cut);
    assert_int_equal(wire_mp_read_bin(&r, &p, &len), -EPROTO);
    assert_int_equal(wire_mp_left(&r), sizeof cut);
}

static void test_mp_read_containers_and_skip(void **state)
{
    (void)state;
    const uint8_t in[] = {0x82, 0xa1, 'a',  0x93, 0x01, 0x81, 0xc0,
                          0xc0, 0xa0, 0xa1, 'b',  0xdc, 0x00, 0x00};
    wire_mp_reader r;
    wire_mp_reader_init(&r, in, sizeof in);
    uint32_t n;
    assert_int_equal(wire_mp_read_array(&r, &n), -EPROTO);
    assert_int_equal(wire_mp_read_map(&r, &n), 0);
    assert_int_equal(n, 2);
    const uint8_t *k;
    uint32_t klen;
    assert_int_equal(wire_mp_read_str(&r, &k, &klen), 0);
    assert_int_equal(wire_mp_skip(&r), 0); /* [1, {nil: nil}, ""] */
    assert_int_equal(wire_mp_read_str(&r, &k, &klen), 0);
    assert_int_equal(k[0], 'b');
    assert_int_equal(wire_mp_read_map(&r, &n), -EPROTO);
    assert_int_equal(wire_mp_read_array(&r, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wire_mp_left(&r), 0);

    /* skip refuses what check refuses, and consumes nothing then. */
    const uint8_t f[] = {0x92, 0x01, 0xca, 0, 0, 0, 0};
    wire_mp_reader_init(&r, f, sizeof f);
    assert_int_equal(wire_mp_skip(&r), -EPROTO);
    assert_int_equal(wire_mp_left(&r), sizeof f);
}

static void test_mp_peek_type(void **state)
{
    (void)state;
    const struct {
        sample s;
        int type;
    } cases[] = {
        {S("fixint", 0x01), MSGPACK_OBJECT_POSITIVE_INTEGER},
        {S("uint 8", 0xcc, 0x01), MSGPACK_OBJECT_POSITIVE_INTEGER},
        {S("int 8 positive", 0xd0, 0x01), MSGPACK_OBJECT_POSITIVE_INTEGER},
        {S("int 8 negative", 0xd0, 0x81), MSGPACK_OBJECT_NEGATIVE_INTEGER},
        {S("negative fixint", 0xf0), MSGPACK_OBJECT_NEGATIVE_INTEGER},
        {S("nil", 0xc0), MSGPACK_OBJECT_NIL},
        {S("bool", 0xc2), MSGPACK_OBJECT_BOOLEAN},
        {S("fixstr", 0xa0), MSGPACK_OBJECT_STR},
        {S("str 8", 0xd9, 0x00), MSGPACK_OBJECT_STR},
        {S("bin 8", 0xc4, 0x00), MSGPACK_OBJECT_BIN},
        {S("fixarray", 0x90), MSGPACK_OBJECT_ARRAY},
        {S("array 32", 0xdd, 0, 0, 0, 0), MSGPACK_OBJECT_ARRAY},
        {S("fixmap", 0x80), MSGPACK_OBJECT_MAP},
        {S("map 16", 0xde, 0, 0), MSGPACK_OBJECT_MAP},
        {S("float 32", 0xca, 0, 0, 0, 0), MSGPACK_OBJECT_FLOAT32},
        {S("float 64", 0xcb, 0, 0, 0, 0, 0, 0, 0, 0), MSGPACK_OBJECT_FLOAT64},
        {S("fixext", 0xd4, 0, 0), MSGPACK_OBJECT_EXT},
        {S("c1", 0xc1), -1},
        {S("int 8 cut", 0xd0), -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wire_mp_reader r;
        wire_mp_reader_init(&r, cases[i].s.bytes, cases[i].s.len);
        if (wire_mp_peek_type(&r) != cases[i].type)
            fail_msg("%s", cases[i].s.name);
        assert_int_equal(wire_mp_left(&r), cases[i].s.len);
    }
}

static void test_mp_utf8(void **state)
{
    (void)state;
    const sample ok[] = {
        S("ascii", 'a', 'b'),
        S("nul", 0x00),
        S("2 bytes", 0xc3, 0xa9),
        S("3 bytes", 0xe2, 0x82, 0xac),
        S("e0 lowest", 0xe0, 0xa0, 0x80),
        S("before surrogates", 0xed, 0x9f, 0xbf),
        S("after surrogates", 0xee, 0x80, 0x80),
        S("4 bytes", 0xf0, 0x9f, 0x98, 0x80),
        S("U+10FFFF", 0xf4, 0x8f, 0xbf, 0xbf),
    };
    const sample bad[] = {
        S("lone continuation", 0x80),
        S("overlong 2", 0xc0, 0x80),
        S("overlong 2 c1", 0xc1, 0xbf),
        S("overlong 3", 0xe0, 0x80, 0x80),
        S("overlong 3 high", 0xe0, 0x9f, 0xbf),
        S("overlong 4", 0xf0, 0x80, 0x80, 0x80),
        S("overlong 4 high", 0xf0, 0x8f, 0xbf, 0xbf),
        S("surrogate low", 0xed, 0xa0, 0x80),
        S("surrogate high", 0xed, 0xbf, 0xbf),
        S("above U+10FFFF", 0xf4, 0x90, 0x80, 0x80),
        S("f5", 0xf5, 0x80, 0x80, 0x80),
        S("ff", 0xff),
        S("truncated 3", 0xe2, 0x82),
        S("truncated 4", 0xf0, 0x9f, 0x98),
        S("bad continuation", 0xe2, 0x28, 0xa1),
        S("bad third", 0xe2, 0x82, 0x28),
        S("bad fourth", 0xf0, 0x9f, 0x98, 0x28),
        S("ascii then bad", 'a', 'b', 0xc3),
    };
    assert_true(wire_utf8_valid(NULL, 0));
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!wire_utf8_valid(ok[i].bytes, ok[i].len))
            fail_msg("rejected %s", ok[i].name);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wire_utf8_valid(bad[i].bytes, bad[i].len))
            fail_msg("accepted %s", bad[i].name);
}

static void test_mp_writer_shortest_forms(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        size_t len;
        uint8_t first;
    } ints[] = {
        {0, 1, 0x00},
        {127, 1, 0x7f},
        {128, 2, 0xcc},
        {255, 2, 0xcc},
        {256, 3, 0xcd},
        {65535, 3, 0xcd},
        {65536, 5, 0xce},
        {UINT32_MAX, 5, 0xce},
        {(uint64_t)UINT32_MAX + 1, 9, 0xcf},
        {UINT64_MAX, 9, 0xcf},
    };
    uint8_t buf[400];
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        wire_mp_writer w;
        wire_mp_writer_init(&w, buf, sizeof buf);
        wire_mp_write_uint(&w, ints[i].v);
        size_t len;
        assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
        assert_int_equal(len, ints[i].len);
        assert_int_equal(buf[0], ints[i].first);
        wire_mp_reader r;
        wire_mp_reader_init(&r, buf, len);
        uint64_t v;
        assert_int_equal(wire_mp_read_uint(&r, &v), 0);
        assert_true(v == ints[i].v);
    }
    static const struct {
        size_t n;
        size_t hdr;
        uint8_t str, bin;
    } raws[] = {
        {0, 1, 0xa0, 0xc4},   {31, 1, 0xbf, 0xc4},  {32, 2, 0xd9, 0xc4},
        {255, 2, 0xd9, 0xc4}, {256, 3, 0xda, 0xc5},
    };
    uint8_t text[256];
    memset(text, 'x', sizeof text);
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        wire_mp_writer w;
        size_t len;
        wire_mp_writer_init(&w, buf, sizeof buf);
        wire_mp_write_str(&w, text, raws[i].n);
        assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
        assert_int_equal(len, raws[i].hdr + raws[i].n);
        assert_int_equal(buf[0], raws[i].str);
        wire_mp_writer_init(&w, buf, sizeof buf);
        wire_mp_write_bin(&w, text, raws[i].n);
        assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
        assert_int_equal(buf[0], raws[i].bin);
        assert_int_equal(len, (raws[i].n < 256 ? 2u : 3u) + raws[i].n);
    }
    wire_mp_writer w;
    size_t len;
    wire_mp_writer_init(&w, buf, sizeof buf);
    wire_mp_write_map(&w, 1);
    wire_mp_write_cstr(&w, "k");
    wire_mp_write_array(&w, 16); /* array 16 from 16 up */
    for (int i = 0; i < 14; i++)
        wire_mp_write_nil(&w);
    wire_mp_write_bool(&w, 1);
    wire_mp_write_bool(&w, 0);
    assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
    const uint8_t want[] = {0x81, 0xa1, 'k', 0xdc, 0x00, 0x10};
    assert_memory_equal(buf, want, sizeof want);
    assert_int_equal(buf[len - 2], 0xc3);
    assert_int_equal(buf[len - 1], 0xc2);
    assert_int_equal(wire_mp_check(buf, len, WIRE_MAX_DEPTH), 0);
}

static void test_mp_writer_full_is_sticky(void **state)
{
    (void)state;
    uint8_t buf[8];
    wire_mp_writer w;
    size_t len = 77;
    /* Exactly full is fine. */
    wire_mp_writer_init(&w, buf, 3);
    wire_mp_write_str(&w, "ab", 2);
    assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
    assert_int_equal(len, 3);
    /* One byte over fails, and later writes that would fit fail too. */
    wire_mp_writer_init(&w, buf, 3);
    wire_mp_write_str(&w, "abc", 3);
    wire_mp_write_nil(&w);
    len = 77;
    assert_int_equal(wire_mp_writer_finish(&w, &len), -EMSGSIZE);
    assert_int_equal(len, 77);
    assert_true(w.len <= 3);
    /* No buffer at all. */
    wire_mp_writer_init(&w, NULL, 0);
    wire_mp_write_nil(&w);
    assert_int_equal(wire_mp_writer_finish(&w, &len), -EMSGSIZE);
    wire_mp_writer_init(&w, buf, 0);
    wire_mp_write_uint(&w, 1);
    assert_int_equal(wire_mp_writer_finish(&w, &len), -EMSGSIZE);
    /* Nothing written is an empty, successful result. */
    wire_mp_writer_init(&w, buf, sizeof buf);
    assert_int_equal(wire_mp_writer_finish(&w, &len), 0);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp_check_accepts_valid),
        cmocka_unit_test(test_mp_check_rejects_invalid),
        cmocka_unit_test(test_mp_check_rejects_every_truncation),
        cmocka_unit_test(test_mp_check_huge_counts_allocate_nothing),
        cmocka_unit_test(test_mp_check_agrees_with_msgpack_c),
        cmocka_unit_test(test_mp_check_depth),
        cmocka_unit_test(test_mp_check_deep_input_no_recursion),
        cmocka_unit_test(test_mp_read_uint_formats),
        cmocka_unit_test(test_mp_read_str_bin_bool_nil),
        cmocka_unit_test(test_mp_read_containers_and_skip),
        cmocka_unit_test(test_mp_peek_type),
        cmocka_unit_test(test_mp_utf8),
        cmocka_unit_test(test_mp_check_first),
        cmocka_unit_test(test_mp_writer_shortest_forms),
        cmocka_unit_test(test_mp_writer_full_is_sticky),
    };
    return cmocka_run_group_tests_name("mp", tests, NULL, NULL);
}
