/* test_frame.c: the frame codec (wire/frame.h, PROTOCOL.md section 2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A deterministic generator, so a failure can be replayed. */
static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* Seals a payload of n bytes (pattern seed) and appends the frame to out. */
static size_t append_frame(uint8_t *out, size_t n, uint32_t seed)
{
    uint8_t *buf = test_malloc(WIRE_FRAME_HEADROOM + n);
    assert_non_null(buf);
    fill(buf + WIRE_FRAME_HEADROOM, n, seed);
    size_t start;
    assert_int_equal(wire_frame_seal(buf, n, &start), 0);
    size_t flen = WIRE_FRAME_HEADROOM + n - start;
    memcpy(out, buf + start, flen);
    test_free(buf);
    return flen;
}

static void check_payload(const uint8_t *p, size_t len, size_t want,
                          uint32_t seed)
{
    assert_int_equal(len, want);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(p[i], (uint8_t)(seed + i * 7));
}

static void test_frame_header_len(void **state)
{
    (void)state;
    assert_int_equal(wire_frame_header_len(0), 2);
    assert_int_equal(wire_frame_header_len(255), 2);
    assert_int_equal(wire_frame_header_len(256), 3);
    assert_int_equal(wire_frame_header_len(65535), 3);
}

static void test_frame_seal_lengths(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 255, 256, 65535};
    uint8_t *buf = test_malloc(WIRE_FRAME_HEADROOM + 65536);
    assert_non_null(buf);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i], start = 99;
        fill(buf + WIRE_FRAME_HEADROOM, n, 5);
        assert_int_equal(wire_frame_seal(buf, n, &start), 0);
        assert_int_equal(WIRE_FRAME_HEADROOM - start, wire_frame_header_len(n));
        if (n < 256) {
            assert_int_equal(start, 1);
            assert_int_equal(buf[1], 0xc4);
            assert_int_equal(buf[2], n);
        } else {
            assert_int_equal(start, 0);
            assert_int_equal(buf[0], 0xc5);
            assert_int_equal(buf[1], n >> 8);
            assert_int_equal(buf[2], n & 0xff);
        }
        /* The payload is where it was: sealing copies nothing. */
        check_payload(buf + WIRE_FRAME_HEADROOM, n, n, 5);
    }
    size_t start = 99;
    assert_int_equal(wire_frame_seal(buf, 65536, &start), -EMSGSIZE);
    assert_int_equal(start, 99);
    assert_int_equal(wire_frame_seal(buf, SIZE_MAX, &start), -EMSGSIZE);
    test_free(buf);
}

static void test_frame_decode_in_place(void **state)
{
    (void)state;
    uint8_t chunk[] = {0xc4, 0x03, 0x01, 0x02, 0x03};
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = chunk, *payload = NULL;
    size_t len = sizeof chunk, plen = 0;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    assert_ptr_equal(payload, chunk + 2);
    assert_int_equal(plen, 3);
    assert_int_equal(len, 0);
    assert_ptr_equal(data, chunk + sizeof chunk);
    assert_null(d.buf); /* nothing was buffered */
    assert_false(wire_frame_decoder_busy(&d));
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    wire_frame_decoder_free(&d);
}

static void test_frame_decode_empty_chunk(void **state)
{
    (void)state;
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = NULL, *payload = NULL;
    size_t len = 0, plen = 0;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    assert_false(wire_frame_decoder_busy(&d));
    wire_frame_decoder_free(&d);
}

static void test_frame_decode_empty_payload(void **state)
{
    (void)state;
    uint8_t chunk[] = {0xc4, 0x00, 0xc5, 0x00, 0x00};
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, 0);
    const uint8_t *data = chunk, *payload = NULL;
    size_t len = sizeof chunk, plen = 99;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                         1);
        assert_int_equal(plen, 0);
    }
    assert_int_equal(len, 0);
    assert_null(d.buf);
    wire_frame_decoder_free(&d);
}

/* Sizes around both header forms and the limit. */
static const size_t sizes[] = {0, 1, 3, 254, 255, 256, 257, 1000, 65534, 65535};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_frame_decode_one_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t *stream = test_malloc(NSIZES * (WIRE_MAX_FRAME + 3));
    assert_non_null(stream);
    size_t total = 0;
    for (size_t i = 0; i < NSIZES; i++)
        total += append_frame(stream + total, sizes[i], (uint32_t)i);

    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    size_t got = 0;
    for (size_t off = 0; off < total; off++) {
        const uint8_t *data = stream + off, *payload;
        size_t len = 1, plen;
        int rc;
        while ((rc = wire_frame_decode(&d, &data, &len, &payload, &plen)) ==
               1) {
            assert_true(got < NSIZES);
            check_payload(payload, plen, sizes[got], (uint32_t)got);
            got++;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(len, 0);
    }
    assert_int_equal(got, NSIZES);
    assert_false(wire_frame_decoder_busy(&d));
    /* The buffer grew only to the largest frame that needed it. */
    assert_int_equal(d.cap, 65535);
    wire_frame_decoder_free(&d);
    test_free(stream);
}

static void test_frame_decode_many_per_chunk(void **state)
{
    (void)state;
    uint8_t *stream = test_malloc(NSIZES * (WIRE_MAX_FRAME + 3));
    assert_non_null(stream);
    size_t total = 0;
    for (size_t i = 0; i < NSIZES; i++)
        total += append_frame(stream + total, sizes[i], (uint32_t)i);

    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = stream, *payload;
    size_t len = total, plen, got = 0;
    int rc;
    while ((rc = wire_frame_decode(&d, &data, &len, &payload, &plen)) == 1) {
        /* Whole in the chunk: yielded in place. */
        assert_true(payload >= stream && payload + plen <= stream + total);
        check_payload(payload, plen, sizes[got], (uint32_t)got);
        got++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, NSIZES);
    assert_null(d.buf);
    wire_frame_decoder_free(&d);
    test_free(stream);
}

static void test_frame_decode_random_chunks(void **state)
{
    (void)state;
    uint32_t seed = 0x2545f491;
    uint8_t *stream = test_malloc(64 * (WIRE_MAX_FRAME + 3));
    assert_non_null(stream);
    size_t want[64], total = 0;
    for (size_t i = 0; i < 64; i++) {
        uint32_t r = rng_next(&seed);
        want[i] = (r & 3) == 0 ? r % 65536 : r % 600;
        total += append_frame(stream + total, want[i], (uint32_t)i);
    }
    for (int round = 0; round < 20; round++) {
        wire_frame_decoder d;
        wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
        size_t off = 0, got = 0;
        while (off < total) {
            size_t n = 1 + rng_next(&seed) % (round < 10 ? 7 : 70000);
            if (n > total - off)
                n = total - off;
            const uint8_t *data = stream + off, *payload;
            size_t len = n, plen;
            int rc;
            while ((rc = wire_frame_decode(&d, &data, &len, &payload, &plen)) ==
                   1) {
                check_payload(payload, plen, want[got], (uint32_t)got);
                got++;
            }
            assert_int_equal(rc, 0);
            off += n;
        }
        assert_int_equal(got, 64);
        assert_false(wire_frame_decoder_busy(&d));
        wire_frame_decoder_free(&d);
    }
    test_free(stream);
}

static void test_frame_decode_bin8_and_bin16_any_length(void **state)
{
    (void)state;
    /* Receivers accept either form for any length: bin 16 for 2 bytes. */
    uint8_t chunk[] = {0xc5, 0x00, 0x02, 0xaa, 0xbb, 0xc4, 0xff};
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = chunk, *payload;
    size_t len = sizeof chunk, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    assert_int_equal(plen, 2);
    assert_int_equal(payload[0], 0xaa);
    assert_int_equal(payload[1], 0xbb);
    /* Then a bin 8 of 255 bytes whose header is all we have. */
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    assert_true(wire_frame_decoder_busy(&d));
    assert_null(d.buf); /* a header alone allocates nothing */
    uint8_t body[255];
    fill(body, sizeof body, 9);
    data = body;
    len = sizeof body;
    /* The whole payload in the next chunk is still yielded in place. */
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    assert_ptr_equal(payload, body);
    check_payload(payload, plen, 255, 9);
    assert_null(d.buf);
    wire_frame_decoder_free(&d);
}

static void test_frame_decode_rejects_other_first_bytes(void **state)
{
    (void)state;
    for (unsigned b = 0; b < 256; b++) {
        if (b == 0xc4 || b == 0xc5)
            continue;
        uint8_t chunk[] = {(uint8_t)b, 0x01, 0x00, 0x00, 0x00, 0x00};
        wire_frame_decoder d;
        wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
        const uint8_t *data = chunk, *payload;
        size_t len = sizeof chunk, plen;
        assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                         -EPROTO);
        assert_null(d.buf);
        wire_frame_decoder_free(&d);
    }
}

static void test_frame_decode_error_is_sticky(void **state)
{
    (void)state;
    /* bin 32 (c6) is not a frame, even for a short length. */
    uint8_t bad[] = {0xc4, 0x01, 0x07, 0xc6, 0x00, 0x00, 0x00, 0x01, 0x07};
    uint8_t good[] = {0xc4, 0x01, 0x07};
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = bad, *payload;
    size_t len = sizeof bad, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                     -EPROTO);
    for (int i = 0; i < 3; i++) {
        data = good;
        len = sizeof good;
        assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                         -EPROTO);
        assert_int_equal(len, sizeof good); /* nothing consumed */
    }
    wire_frame_decoder_free(&d);
}

static void test_frame_decode_over_limit(void **state)
{
    (void)state;
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, 48);
    /* 49 bytes announced by a header split across two chunks. */
    uint8_t h1[] = {0xc5, 0x00}, h2[] = {0x31, 0x00};
    const uint8_t *data = h1, *payload;
    size_t len = sizeof h1, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    data = h2;
    len = sizeof h2;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                     -EPROTO);
    assert_null(d.buf); /* rejected before any allocation */
    wire_frame_decoder_free(&d);

    /* At the limit is fine; the largest header too with the largest limit. */
    uint8_t *stream = test_malloc(65535 + 3);
    assert_non_null(stream);
    size_t n = append_frame(stream, 48, 1);
    wire_frame_decoder_init(&d, 48);
    data = stream;
    len = n;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    check_payload(payload, plen, 48, 1);
    wire_frame_decoder_free(&d);

    uint8_t big[] = {0xc5, 0xff, 0xff};
    wire_frame_decoder_init(&d, 65534);
    data = big;
    len = sizeof big;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                     -EPROTO);
    wire_frame_decoder_free(&d);
    test_free(stream);
}

static void test_frame_decode_limit_change(void **state)
{
    (void)state;
    uint8_t *stream = test_malloc(2 * (65535 + 3));
    assert_non_null(stream);
    size_t n1 = append_frame(stream, 48, 1);
    size_t n2 = append_frame(stream + n1, 1000, 2);
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, 48);
    const uint8_t *data = stream, *payload;
    size_t len = n1 + n2, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    check_payload(payload, plen, 48, 1);
    /* The handshake ended: larger frames from now on. */
    wire_frame_decoder_set_limit(&d, WIRE_MAX_FRAME);
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    check_payload(payload, plen, 1000, 2);
    wire_frame_decoder_free(&d);

    /* A lowered limit applies to the next header. */
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    data = stream + n1;
    len = 3; /* the 1000-byte frame's header only */
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    wire_frame_decoder_set_limit(&d, 48); /* header already read: no effect */
    len = n2 - 3;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    check_payload(payload, plen, 1000, 2);
    data = stream + n1;
    len = n2;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen),
                     -EPROTO);
    wire_frame_decoder_free(&d);
    test_free(stream);
}

static void test_frame_decoder_buffer_and_trim(void **state)
{
    (void)state;
    uint8_t stream[1003];
    size_t n = append_frame(stream, 1000, 3);
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *data = stream, *payload;
    size_t len = 10, plen;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    assert_true(wire_frame_decoder_busy(&d));
    /* Only as much as this frame needs. */
    assert_non_null(d.buf);
    assert_int_equal(d.cap, 1000);
    wire_frame_decoder_trim(&d); /* holds part of a frame: kept */
    assert_non_null(d.buf);
    len = n - 10;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 1);
    assert_ptr_equal(payload, d.buf);
    check_payload(payload, plen, 1000, 3);
    assert_false(wire_frame_decoder_busy(&d));
    wire_frame_decoder_trim(&d);
    assert_null(d.buf);
    assert_int_equal(d.cap, 0);
    /* The decoder goes on working after a trim. */
    data = stream;
    len = 500;
    assert_int_equal(wire_frame_decode(&d, &data, &len, &payload, &plen), 0);
    wire_frame_decoder_free(&d); /* frees a partial frame too */
    assert_null(d.buf);
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    wire_frame_decoder_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header_len),
        cmocka_unit_test(test_frame_seal_lengths),
        cmocka_unit_test(test_frame_decode_in_place),
        cmocka_unit_test(test_frame_decode_empty_chunk),
        cmocka_unit_test(test_frame_decode_empty_payload),
        cmocka_unit_test(test_frame_decode_one_byte_at_a_time),
        cmocka_unit_test(test_frame_decode_many_per_chunk),
        cmocka_unit_test(test_frame_decode_random_chunks),
        cmocka_unit_test(test_frame_decode_bin8_and_bin16_any_length),
        cmocka_unit_test(test_frame_decode_rejects_other_first_bytes),
        cmocka_unit_test(test_frame_decode_error_is_sticky),
        cmocka_unit_test(test_frame_decode_over_limit),
        cmocka_unit_test(test_frame_decode_limit_change),
        cmocka_unit_test(test_frame_decoder_buffer_and_trim),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
