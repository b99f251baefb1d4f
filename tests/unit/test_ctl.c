/* test_ctl.c: the control socket's codec (wire/ctl.h, PROTOCOL.md
 * section 11): frames to messages and back, the map checks, the getters,
 * the walk and the builder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/ctl.h"
#include "wire_alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

static int counting; /* allocations are really counted in this run */

static int setup(void **state)
{
    (void)state;
    counting = alloc_counting_works();
    return 0;
}

static void assert_bytes(wire_bytes b, const void *p, size_t n)
{
    assert_int_equal(b.len, n);
    if (n > 0)
        assert_memory_equal(b.ptr, p, n);
}

static void assert_str(wire_bytes b, const char *s)
{
    assert_bytes(b, s, strlen(s));
}

/* True when p lies within buf[0..len). */
static int points_into(const uint8_t *p, const uint8_t *buf, size_t len)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)buf;
    return a >= lo && a - lo < len;
}

/* ---- helpers: framing and reading ---- */

static uint8_t *frame_msg(const uint8_t *msg, size_t len, size_t *flen)
{
    size_t cap = wire_ctl_framed_len(len);
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    assert_int_equal(wire_ctl_frame(msg, len, out, cap, flen), 0);
    assert_int_equal(*flen, cap);
    return out;
}

/* The messages read from a stream, copied. */
typedef struct got {
    size_t n;
    uint8_t *msg[8];
    size_t len[8];
    int in_place[8]; /* returned pointing into the stream */
    int rc;          /* the last return code: 0 or an error */
    size_t used;     /* stream bytes consumed */
} got;

static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->msg[i]);
    memset(g, 0, sizeof *g);
}

/* Feeds stream[0..len) to r in chunks of step bytes. */
static void feed(wire_ctl_reader *r, const uint8_t *stream, size_t len,
                 size_t step, got *g)
{
    memset(g, 0, sizeof *g);
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        const uint8_t *data = stream + off, *msg;
        size_t left = n, mlen;
        int rc;
        while ((rc = wire_ctl_read(r, &data, &left, &msg, &mlen)) == 1) {
            assert_true(g->n < 8);
            g->msg[g->n] = malloc(mlen ? mlen : 1);
            assert_non_null(g->msg[g->n]);
            if (mlen > 0)
                memcpy(g->msg[g->n], msg, mlen);
            g->len[g->n] = mlen;
            g->in_place[g->n] = points_into(msg, stream, len) ||
                                (mlen == 0 && msg == stream + len);
            g->n++;
        }
        g->used += n - left;
        g->rc = rc;
        if (rc != 0)
            return;
        assert_int_equal(left, 0);
        off += n;
    }
}

/* Reads exactly one message from a whole stream, in chunks of step. */
static void read_back(const uint8_t *stream, size_t len, size_t step,
                      size_t limit, const uint8_t *want, size_t want_len)
{
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, limit);
    got g;
    feed(&r, stream, len, step, &g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.used, len);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], want_len);
    if (want_len > 0)
        assert_memory_equal(g.msg[0], want, want_len);
    assert_true(r.cap <= limit);
    got_free(&g);
    wire_ctl_reader_free(&r);
}

/* A message of exactly n bytes (n >= 8): {"body": bin}, or for n < 8 the
 * empty message (0) and the empty map (1). */
static uint8_t *sized_msg(size_t n)
{
    uint8_t *m = malloc(n ? n : 1);
    assert_non_null(m);
    if (n == 0)
        return m;
    if (n == 1) {
        m[0] = 0x80;
        return m;
    }
    assert_true(n >= 8);
    size_t fixed = 1 + 5; /* map header, "body" */
    size_t d, hdr;
    if (n - fixed - 2 < 256) {
        hdr = 2;
    } else if (n - fixed - 3 < 65536) {
        hdr = 3;
    } else {
        hdr = 5;
    }
    d = n - fixed - hdr;
    size_t o = 0;
    m[o++] = 0x81;
    m[o++] = 0xa4;
    memcpy(m + o, "body", 4);
    o += 4;
    if (hdr == 2) {
        m[o++] = 0xc4;
        m[o++] = (uint8_t)d;
    } else if (hdr == 3) {
        m[o++] = 0xc5;
        m[o++] = (uint8_t)(d >> 8);
        m[o++] = (uint8_t)d;
    } else {
        m[o++] = 0xc6;
        for (int s = 24; s >= 0; s -= 8)
            m[o++] = (uint8_t)(d >> s);
    }
    for (size_t i = 0; i < d; i++)
        m[o + i] = (uint8_t)(i * 7 + (i >> 16));
    return m;
}

/* The frame headers of a framed message, as section 11.1 says. */
static void assert_frames(const uint8_t *f, size_t flen, size_t len)
{
    size_t o = 0, left = len;
    while (left >= WIRE_MAX_FRAME) {
        assert_true(flen - o >= 3 + WIRE_MAX_FRAME);
        assert_int_equal(f[o], 0xc5);
        assert_int_equal(f[o + 1], 0xff);
        assert_int_equal(f[o + 2], 0xff);
        o += 3 + WIRE_MAX_FRAME;
        left -= WIRE_MAX_FRAME;
    }
    if (left < 256) {
        assert_int_equal(f[o], 0xc4);
        assert_int_equal(f[o + 1], left);
        o += 2 + left;
    } else {
        assert_int_equal(f[o], 0xc5);
        assert_int_equal((size_t)f[o + 1] << 8 | f[o + 2], left);
        o += 3 + left;
    }
    assert_int_equal(o, flen);
}

static void parse_ok(const uint8_t *buf, size_t len, wire_ctl_map *m)
{
    alloc_count_start();
    int rc = wire_ctl_parse(buf, len, m);
    alloc_count_stop();
    if (counting)
        assert_int_equal(alloc_calls, 0);
    assert_int_equal(rc, 0);
}

#define BYTES(...)                                                             \
    (const uint8_t[]){__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static int parse_bytes(const uint8_t *b, size_t n)
{
    wire_ctl_map m;
    return wire_ctl_parse(b, n, &m);
}

/* ---- round trips ---- */

static const uint8_t node_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                   12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_ctl_roundtrip_request(void **state)
{
    (void)state;
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 7);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "send");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 7);
    wire_ctl_key(&b, "to");
    wire_ctl_put_bin(&b, node_a, sizeof node_a);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, "hello", 5);
    wire_ctl_key(&b, "ct");
    wire_ctl_put_cstr(&b, "text/plain");
    wire_ctl_key(&b, "wait");
    wire_ctl_put_bool(&b, 1);
    wire_ctl_key(&b, "ttl_ms");
    wire_ctl_put_uint(&b, 100000);
    assert_int_equal(wire_ctl_finish(&b), 0);

    size_t flen;
    uint8_t *f = frame_msg(b.buf, b.len, &flen);
    assert_int_equal(f[0], 0xc4);
    assert_int_equal(f[1], b.len);
    const size_t steps[] = {1, 2, 3, 4, flen};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        size_t step = steps[k];
        wire_ctl_reader r;
        wire_ctl_reader_init(&r, 1 * MIB);
        got g;
        feed(&r, f, flen, step, &g);
        assert_int_equal(g.rc, 0);
        assert_int_equal(g.n, 1);
        /* Whole in one chunk: in place; split: copied. */
        assert_int_equal(g.in_place[0], step == flen);
        assert_int_equal(g.len[0], b.len);
        assert_memory_equal(g.msg[0], b.buf, b.len);

        wire_ctl_map m;
        parse_ok(g.msg[0], g.len[0], &m);
        assert_int_equal(m.count, 7);
        wire_bytes s;
        uint64_t u;
        int v;
        assert_int_equal(wire_ctl_get_str(&m, "op", &s), 0);
        assert_str(s, "send");
        assert_int_equal(wire_ctl_get_uint(&m, "rid", &u), 0);
        assert_true(u == 7);
        assert_int_equal(wire_ctl_get_bin(&m, "to", &s), 0);
        assert_bytes(s, node_a, 32);
        assert_int_equal(wire_ctl_get_bin(&m, "body", &s), 0);
        assert_bytes(s, "hello", 5);
        assert_int_equal(wire_ctl_get_str(&m, "ct", &s), 0);
        assert_str(s, "text/plain");
        assert_int_equal(wire_ctl_get_bool(&m, "wait", &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(wire_ctl_get_uint(&m, "ttl_ms", &u), 0);
        assert_true(u == 100000);
        got_free(&g);
        wire_ctl_reader_free(&r);
    }
    free(f);
    wire_ctl_builder_free(&b);
}

/* Messages around the frame size, framed and read back whole and in
 * several chunkings, 1 byte at a time included. */
static void test_ctl_roundtrip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0,      1,         8,      255,   256,
                            65534,  65535,     65536,  70000, 2 * 65535,
                            131071, 3 * 65535, 3 * MIB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *m = sized_msg(n);
        wire_ctl_map map;
        if (n == 0) {
            assert_int_equal(wire_ctl_parse(m, 0, &map), -EPROTO);
        } else {
            parse_ok(m, n, &map);
            assert_int_equal(map.count, n == 1 ? 0 : 1);
        }
        size_t flen;
        uint8_t *f = frame_msg(m, n, &flen);
        assert_frames(f, flen, n);
        const size_t steps[] = {1, 2, 3, 1000, 65536, flen};
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
            read_back(f, flen, steps[s], 4 * MIB, m, n);
        /* Exactly at the limit is accepted. */
        read_back(f, flen, flen, n, m, n);
        free(f);
        free(m);
    }
}

/* An empty message is a frame `c4 00` alone: the reader returns it, with
 * 0 bytes, and parse rejects it (it is not a map). */
static void test_ctl_empty_message(void **state)
{
    (void)state;
    uint8_t f[4];
    size_t flen;
    assert_int_equal(wire_ctl_framed_len(0), 2);
    assert_int_equal(wire_ctl_frame(NULL, 0, f, sizeof f, &flen), 0);
    assert_int_equal(flen, 2);
    assert_int_equal(f[0], 0xc4);
    assert_int_equal(f[1], 0x00);
    assert_int_equal(wire_ctl_frame(NULL, 0, f, 1, &flen), -EMSGSIZE);

    wire_ctl_reader r;
    wire_ctl_reader_init(&r, 0); /* a limit of 0 takes empty messages */
    const uint8_t *data = f, *msg = NULL;
    size_t left = flen, mlen = 99;
    assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), 1);
    assert_int_equal(mlen, 0);
    assert_non_null(msg);
    assert_int_equal(left, 0);
    wire_ctl_map m;
    assert_int_equal(wire_ctl_parse(msg, mlen, &m), -EPROTO);
    /* But a byte more is over the limit. */
    const uint8_t one[] = {0xc4, 0x01, 0x80};
    data = one;
    left = sizeof one;
    assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), -EPROTO);
    wire_ctl_reader_free(&r);

    /* The empty map is one byte. */
    const uint8_t empty_map[] = {0x80};
    parse_ok(empty_map, 1, &m);
    assert_int_equal(m.count, 0);
    uint64_t u;
    assert_int_equal(wire_ctl_get_uint(&m, "rid", &u), -ENOENT);
}

/* Section 11.1's example: a 70000-byte message goes as `c5 ffff` and
 * 65535 bytes, then `c5 1171` and 4465 bytes. */
static void test_ctl_frame_headers_doc(void **state)
{
    (void)state;
    uint8_t *m = sized_msg(70000);
    size_t flen;
    uint8_t *f = frame_msg(m, 70000, &flen);
    assert_int_equal(flen, 3 + 65535 + 3 + 4465);
    assert_int_equal(wire_ctl_framed_len(70000), 70006);
    const uint8_t h1[] = {0xc5, 0xff, 0xff}, h2[] = {0xc5, 0x11, 0x71};
    assert_memory_equal(f, h1, 3);
    assert_memory_equal(f + 3, m, 65535);
    assert_memory_equal(f + 3 + 65535, h2, 3);
    assert_int_equal(0x1171, 4465);
    assert_memory_equal(f + 3 + 65535 + 3, m + 65535, 4465);
    free(f);
    free(m);

    /* Exact multiples end with an empty frame. */
    assert_int_equal(wire_ctl_framed_len(65535), 65538 + 2);
    assert_int_equal(wire_ctl_framed_len(2 * 65535), 2 * 65538 + 2);
    assert_int_equal(wire_ctl_framed_len(65534), 65537);
    assert_int_equal(wire_ctl_framed_len(255), 257);
    assert_int_equal(wire_ctl_framed_len(256), 259);
    assert_int_equal(wire_ctl_framed_len(65536), 65538 + 3);
    assert_true(wire_ctl_framed_len(SIZE_MAX) == SIZE_MAX);

    /* One byte short of the framed length does not fit. */
    uint8_t *m2 = sized_msg(65535);
    static uint8_t out[65540];
    size_t cap = wire_ctl_framed_len(65535);
    assert_int_equal(cap, sizeof out);
    assert_int_equal(wire_ctl_frame(m2, 65535, out, cap - 1, &flen), -EMSGSIZE);
    assert_int_equal(wire_ctl_frame(m2, 65535, out, cap, &flen), 0);
    assert_int_equal(out[65538], 0xc4);
    assert_int_equal(out[65539], 0x00);
    free(m2);
}

/* Several messages in one chunk come out one by one, in order; the small
 * ones in place, the long one from the reader's buffer. */
static void test_ctl_read_several_in_one_chunk(void **state)
{
    (void)state;
    uint8_t *m1 = sized_msg(8), *m2 = sized_msg(70000), *m3 = sized_msg(300);
    size_t l1, l2, l3;
    uint8_t *f1 = frame_msg(m1, 8, &l1), *f2 = frame_msg(m2, 70000, &l2),
            *f3 = frame_msg(m3, 300, &l3);
    size_t total = l1 + l2 + l3;
    uint8_t *s = malloc(total);
    assert_non_null(s);
    memcpy(s, f1, l1);
    memcpy(s + l1, f2, l2);
    memcpy(s + l1 + l2, f3, l3);

    wire_ctl_reader r;
    wire_ctl_reader_init(&r, MIB);
    got g;
    feed(&r, s, total, total, &g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.len[0], 8);
    assert_memory_equal(g.msg[0], m1, 8);
    assert_int_equal(g.len[1], 70000);
    assert_memory_equal(g.msg[1], m2, 70000);
    assert_int_equal(g.len[2], 300);
    assert_memory_equal(g.msg[2], m3, 300);
    assert_true(g.in_place[0]);
    assert_false(g.in_place[1]);
    assert_true(g.in_place[2]);
    got_free(&g);

    /* The same stream in odd chunks. */
    wire_ctl_reader_free(&r);
    wire_ctl_reader_init(&r, MIB);
    feed(&r, s, total, 4099, &g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.n, 3);
    assert_memory_equal(g.msg[1], m2, 70000);
    assert_memory_equal(g.msg[2], m3, 300);
    got_free(&g);
    wire_ctl_reader_free(&r);
    free(s);
    free(f1);
    free(f2);
    free(f3);
    free(m1);
    free(m2);
    free(m3);
}

/* After a message over 64 KiB the next call frees the buffer; a smaller
 * one is kept for the next message. */
static void test_ctl_read_frees_big_buffer(void **state)
{
    (void)state;
    const size_t sizes[] = {3 * MIB, 70000, 65535};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *m = sized_msg(sizes[i]);
        size_t flen;
        uint8_t *f = frame_msg(m, sizes[i], &flen);
        wire_ctl_reader r;
        wire_ctl_reader_init(&r, 4 * MIB);
        const uint8_t *data = f, *msg;
        size_t left = flen, mlen;
        assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), 1);
        assert_int_equal(mlen, sizes[i]);
        assert_ptr_equal(msg, r.buf);
        assert_true(r.cap >= sizes[i] && r.cap <= 4 * MIB);
        assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), 0);
        if (sizes[i] > 65536) {
            assert_null(r.buf);
            assert_int_equal(r.cap, 0);
        } else {
            assert_non_null(r.buf);
            assert_int_equal(r.cap, 65535);
        }
        wire_ctl_reader_free(&r);
        free(f);
        free(m);
    }
}

/* The limit is checked at each frame's header, before its payload is kept:
 * a frame that would take the message over the limit fails there, and
 * nothing near the limit (or the announced size) is ever allocated. */
static void test_ctl_read_over_limit_allocates_nothing(void **state)
{
    (void)state;
    /* One frame announcing 60000 bytes against a limit of 1000: rejected
     * after its 3 header bytes, with no allocation at all. */
    uint8_t *big = calloc(1, 3 + 60000);
    assert_non_null(big);
    big[0] = 0xc5;
    big[1] = 0xea;
    big[2] = 0x60;
    for (size_t step = 1; step <= 60003; step = step == 1 ? 60003 : 60004) {
        wire_ctl_reader r;
        wire_ctl_reader_init(&r, 1000);
        got g;
        alloc_count_start();
        feed(&r, big, 60003, step, &g);
        alloc_count_stop();
        assert_int_equal(g.rc, -EPROTO);
        assert_int_equal(g.n, 0);
        assert_int_equal(g.used, 3);
        if (counting)
            assert_int_equal(alloc_calls, 0);
        assert_null(r.buf);
        assert_null(r.dec.buf);
        /* Sticky. */
        const uint8_t ok[] = {0xc4, 0x01, 0x80};
        const uint8_t *data = ok, *msg;
        size_t left = sizeof ok, mlen;
        assert_int_equal(wire_ctl_read(&r, &data, &left, &msg, &mlen), -EPROTO);
        assert_int_equal(left, sizeof ok);
        wire_ctl_reader_free(&r);
    }
    free(big);

    /* A 3 MiB message against a limit of 200000 bytes: three full frames
     * (196605 bytes) are taken, the fourth fails at its header. The
     * largest allocation stays within the limit, whether the frames come
     * whole or a byte at a time (when the decoder also buffers). */
    uint8_t *m = sized_msg(3 * MIB);
    size_t flen;
    uint8_t *f = frame_msg(m, 3 * MIB, &flen);
    const size_t steps[] = {flen, 4096, 1};
    for (size_t s = 0; s < 3; s++) {
        wire_ctl_reader r;
        wire_ctl_reader_init(&r, 200000);
        got g;
        alloc_count_start();
        feed(&r, f, flen, steps[s], &g);
        alloc_count_stop();
        assert_int_equal(g.rc, -EPROTO);
        assert_int_equal(g.n, 0);
        assert_int_equal(g.used, 3 * (3 + 65535) + 3);
        if (counting) {
            assert_true(alloc_largest <= 200000);
            assert_true(alloc_calls <= 8);
        }
        assert_true(r.cap <= 200000);
        wire_ctl_reader_free(&r);
    }
    free(f);
    free(m);

    /* One byte over: 65536 bytes against 65535. */
    m = sized_msg(65536);
    f = frame_msg(m, 65536, &flen);
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, 65535);
    got g;
    feed(&r, f, flen, flen, &g);
    assert_int_equal(g.rc, -EPROTO);
    assert_int_equal(g.used, 3 + 65535 + 2);
    wire_ctl_reader_free(&r);
    free(f);
    free(m);

    /* An exact multiple at the limit still takes its empty frame. */
    m = sized_msg(65535);
    f = frame_msg(m, 65535, &flen);
    read_back(f, flen, 1, 65535, m, 65535);
    wire_ctl_reader_init(&r, 65534);
    feed(&r, f, flen, flen, &g);
    assert_int_equal(g.rc, -EPROTO);
    assert_int_equal(g.used, 3);
    wire_ctl_reader_free(&r);
    free(f);
    free(m);
}

static void assert_read_fails(const uint8_t *s, size_t n)
{
    for (size_t step = 1; step <= n; step = step == 1 ? n : n + 1) {
        wire_ctl_reader r;
        wire_ctl_reader_init(&r, MIB);
        got g;
        feed(&r, s, n, step, &g);
        assert_int_equal(g.rc, -EPROTO);
        assert_int_equal(g.n, 0);
        wire_ctl_reader_free(&r);
    }
}

/* Frames are bin 8 or bin 16; anything else fails the stream, first frame
 * or later. */
static void test_ctl_read_bad_frame_headers(void **state)
{
    (void)state;
    const uint8_t firsts[] = {0xc6, 0xc7, 0xc1, 0xc0, 0x00, 0x7f, 0x80,
                              0x90, 0xa0, 0xd9, 0xdc, 0xde, 0xdd, 0xff};
    for (size_t i = 0; i < sizeof firsts; i++) {
        uint8_t s[8] = {firsts[i], 0x00, 0x00, 0x00, 0x01, 0x80, 0, 0};
        assert_read_fails(s, sizeof s);
    }
    /* bin 32 announcing a small frame is still refused. */
    assert_read_fails((const uint8_t[]){0xc6, 0, 0, 0, 1, 0x80}, 6);
    /* A bad header after a full frame. */
    size_t n = 3 + 65535 + 6;
    uint8_t *s = calloc(1, n);
    assert_non_null(s);
    s[0] = 0xc5;
    s[1] = 0xff;
    s[2] = 0xff;
    s[3 + 65535] = 0xc6;
    assert_read_fails(s, n);
    free(s);

    /* A frame that announces more than the stream carries is incomplete,
     * not a message. */
    const uint8_t cut[] = {0xc4, 0x10, 0x81, 0xa1, 0x61};
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, MIB);
    got g;
    feed(&r, cut, sizeof cut, sizeof cut, &g);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.n, 0);
    wire_ctl_reader_free(&r);
}

/* ---- parsing ---- */

static void test_ctl_parse_rejects(void **state)
{
    (void)state;
    /* Not one map. */
    assert_int_equal(parse_bytes(BYTES(0x90)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x01)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0xa1, 'a')), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0xc0)), -EPROTO);
    assert_int_equal(parse_bytes(NULL, 0), -EPROTO);
    /* Trailing bytes. */
    assert_int_equal(parse_bytes(BYTES(0x80, 0x80)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'a', 0x01, 0x00)), -EPROTO);
    /* Cut short. */
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'a')), -EPROTO);
    /* Counts larger than the bytes left. */
    assert_int_equal(parse_bytes(BYTES(0xdf, 0xff, 0xff, 0xff, 0xff)), -EPROTO);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff)),
        -EPROTO);
    /* Duplicate keys, at the top and nested. */
    assert_int_equal(parse_bytes(BYTES(0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02)),
                     -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x83, 0xa2, 'o', 'p', 0x01, 0xa1, 'a',
                                       0x02, 0xd9, 0x02, 'o', 'p', 0x03)),
                     -EPROTO); /* the same key in another str format */
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'm', 0x82, 0xa1, 'x', 0x01,
                                       0xa1, 'x', 0x02)),
                     -EPROTO);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 'l', 0x91, 0x82, 0xa0, 0x01, 0xa0, 0x02)),
        -EPROTO);
    /* Keys that differ only by length or content are fine. */
    wire_ctl_map m;
    parse_ok(BYTES(0x83, 0xa1, 'a', 0x01, 0xa2, 'a', 'a', 0x02, 0xa0, 0x03),
             &m);
    assert_int_equal(m.count, 3);
    /* Keys that are not str: uint, bin, nil, array; at the top and nested. */
    assert_int_equal(parse_bytes(BYTES(0x81, 0x01, 0x01)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xc4, 0x01, 'a', 0x01)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xc0, 0x01)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0x90, 0x01)), -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'm', 0x81, 0x05, 0x01)),
                     -EPROTO);
    /* Invalid UTF-8 in a key, a value, a str in an array. */
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 0xff, 0x01)), -EPROTO);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 's', 0xa2, 0xc0, 0xaf)), /* overlong */
        -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 's', 0xa3, 0xed, 0xa0,
                                       0x80)), /* a surrogate */
                     -EPROTO);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 'l', 0x92, 0xa1, 'x', 0xa1, 0x80)),
        -EPROTO);
    /* The same bytes as bin are fine. */
    parse_ok(BYTES(0x81, 0xa1, 's', 0xc4, 0x02, 0xc0, 0xaf), &m);
    /* Float and ext are not confab's. */
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'f', 0xca, 0, 0, 0, 0)),
                     -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'e', 0xd4, 0x01, 0x02)),
                     -EPROTO);
}

/* Depth 5 (map > array > array > array > array) passes, 6 fails. */
static void test_ctl_parse_depth(void **state)
{
    (void)state;
    wire_ctl_map m;
    parse_ok(BYTES(0x81, 0xa1, 'a', 0x91, 0x91, 0x91, 0x90), &m);
    parse_ok(BYTES(0x81, 0xa1, 'a', 0x91, 0x81, 0xa1, 'b', 0x91, 0x80), &m);
    parse_ok(BYTES(0x81, 0xa1, 'a', 0x91, 0x81, 0xa1, 'b', 0x91, 0xc4, 0x00),
             &m);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 'a', 0x91, 0x91, 0x91, 0x91, 0x90)),
        -EPROTO);
    assert_int_equal(parse_bytes(BYTES(0x81, 0xa1, 'a', 0x91, 0x81, 0xa1, 'b',
                                       0x91, 0x81, 0xa1, 'c', 0x91, 0x01)),
                     -EPROTO);
    assert_int_equal(
        parse_bytes(BYTES(0x81, 0xa1, 'a', 0x81, 0xa1, 'a', 0x81, 0xa1, 'a',
                          0x81, 0xa1, 'a', 0x81, 0xa1, 'a', 0x80)),
        -EPROTO);
}

/* WIRE_CTL_MAX_KEYS entries pass, one more fails, at the top or nested. */
static void test_ctl_parse_max_keys(void **state)
{
    (void)state;
    for (uint32_t n = WIRE_CTL_MAX_KEYS; n <= WIRE_CTL_MAX_KEYS + 1; n++) {
        for (int nested = 0; nested <= 1; nested++) {
            wire_ctl_builder b;
            wire_ctl_builder_init(&b, 4096);
            if (nested) {
                wire_ctl_map_begin(&b, 1);
                wire_ctl_key(&b, "stats");
            }
            wire_ctl_map_begin(&b, n);
            for (uint32_t i = 0; i < n; i++) {
                char key[8] = {'k', (char)('0' + i / 10), (char)('0' + i % 10)};
                wire_ctl_key(&b, key);
                wire_ctl_put_uint(&b, i);
            }
            assert_int_equal(wire_ctl_finish(&b), 0);
            wire_ctl_map m;
            int rc = wire_ctl_parse(b.buf, b.len, &m);
            assert_int_equal(rc, n <= WIRE_CTL_MAX_KEYS ? 0 : -EPROTO);
            wire_ctl_builder_free(&b);
        }
    }
}

/* ---- getters ---- */

enum { G_UINT, G_INT, G_BOOL, G_STR, G_STR_OPT, G_BIN, G_MAP, G_ARRAY, G_N };

static int get_any(const wire_ctl_map *m, const char *key, int g)
{
    uint64_t u;
    int64_t i;
    int b;
    wire_bytes s;
    wire_ctl_map sub;
    wire_iter it;
    uint32_t n;
    switch (g) {
    case G_UINT:
        return wire_ctl_get_uint(m, key, &u);
    case G_INT:
        return wire_ctl_get_int(m, key, &i);
    case G_BOOL:
        return wire_ctl_get_bool(m, key, &b);
    case G_STR:
        return wire_ctl_get_str(m, key, &s);
    case G_STR_OPT:
        return wire_ctl_get_str_opt(m, key, &s);
    case G_BIN:
        return wire_ctl_get_bin(m, key, &s);
    case G_MAP:
        return wire_ctl_get_map(m, key, &sub);
    default:
        return wire_ctl_get_array(m, key, &it, &n);
    }
}

/* Each getter on a value of each type: only its own type (and for uint
 * and int, the integers in range) is accepted. */
static void test_ctl_get_type_checks(void **state)
{
    (void)state;
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 10);
    wire_ctl_key(&b, "u");
    wire_ctl_put_uint(&b, 5);
    wire_ctl_key(&b, "neg");
    wire_ctl_put_int(&b, -2);
    wire_ctl_key(&b, "big");
    wire_ctl_put_uint(&b, UINT64_MAX);
    wire_ctl_key(&b, "b");
    wire_ctl_put_bool(&b, 0);
    wire_ctl_key(&b, "s");
    wire_ctl_put_cstr(&b, "hi");
    wire_ctl_key(&b, "nil");
    wire_ctl_put_nil(&b);
    wire_ctl_key(&b, "x");
    wire_ctl_put_bin(&b, "\x01\x02", 2);
    wire_ctl_key(&b, "m");
    wire_ctl_map_begin(&b, 1);
    wire_ctl_key(&b, "k");
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "a");
    wire_ctl_array_begin(&b, 1);
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "");
    wire_ctl_put_uint(&b, 0);
    assert_int_equal(wire_ctl_finish(&b), 0);
    wire_ctl_map m;
    parse_ok(b.buf, b.len, &m);

    /* For each key, the getters that accept its value. */
    static const struct {
        const char *key;
        unsigned ok; /* bits of G_* */
    } want[] = {
        {"u", 1u << G_UINT | 1u << G_INT},
        {"neg", 1u << G_INT},
        {"big", 1u << G_UINT},
        {"b", 1u << G_BOOL},
        {"s", 1u << G_STR | 1u << G_STR_OPT},
        {"nil", 0},
        {"x", 1u << G_BIN},
        {"m", 1u << G_MAP},
        {"a", 1u << G_ARRAY},
        {"", 1u << G_UINT | 1u << G_INT},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        for (int g = 0; g < G_N; g++) {
            int rc = get_any(&m, want[k].key, g);
            int expect = (want[k].ok & (1u << g)) ? 0 : -EPROTO;
            if (strcmp(want[k].key, "nil") == 0 && g == G_STR_OPT)
                expect = -ENOENT; /* nil reads as absent */
            if (rc != expect)
                fail_msg("key \"%s\" getter %d: %d, want %d", want[k].key, g,
                         rc, expect);
        }
    }
    /* Absent keys, including prefixes and extensions of present ones. */
    const char *absent[] = {"U", "ne", "negx", "bigg", "m ", "missing"};
    for (size_t k = 0; k < sizeof absent / sizeof absent[0]; k++)
        for (int g = 0; g < G_N; g++)
            assert_int_equal(get_any(&m, absent[k], g), -ENOENT);

    /* The values themselves. */
    uint64_t u;
    int64_t i;
    int v;
    wire_bytes s;
    wire_ctl_map sub;
    assert_int_equal(wire_ctl_get_uint(&m, "big", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(wire_ctl_get_int(&m, "neg", &i), 0);
    assert_true(i == -2);
    assert_int_equal(wire_ctl_get_int(&m, "u", &i), 0);
    assert_true(i == 5);
    assert_int_equal(wire_ctl_get_bool(&m, "b", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(wire_ctl_get_str_opt(&m, "s", &s), 0);
    assert_str(s, "hi");
    assert_int_equal(wire_ctl_get_bin(&m, "x", &s), 0);
    assert_bytes(s, "\x01\x02", 2);
    assert_int_equal(wire_ctl_get_map(&m, "m", &sub), 0);
    assert_int_equal(sub.count, 1);
    assert_int_equal(sub.len, 4);
    assert_int_equal(wire_ctl_get_uint(&sub, "k", &u), 0);
    assert_true(u == 1);
    assert_int_equal(wire_ctl_get_uint(&sub, "u", &u), -ENOENT);
    wire_ctl_builder_free(&b);
}

/* Every integer format: uint takes the non-negative values, int those
 * within int64_t. */
static void test_ctl_get_integer_formats(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[10];
        size_t len;
        int uint_ok;
        uint64_t u;
        int int_ok;
        int64_t i;
    } cases[] = {
        {{0x00}, 1, 1, 0, 1, 0},
        {{0x7f}, 1, 1, 127, 1, 127},
        {{0xff}, 1, 0, 0, 1, -1},
        {{0xe0}, 1, 0, 0, 1, -32},
        {{0xcc, 0xff}, 2, 1, 255, 1, 255},
        {{0xcd, 0x01, 0x00}, 3, 1, 256, 1, 256},
        {{0xce, 0xff, 0xff, 0xff, 0xff}, 5, 1, UINT32_MAX, 1, UINT32_MAX},
        {{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         9,
         1,
         INT64_MAX,
         1,
         INT64_MAX},
        {{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, 1, 1ull << 63, 0, 0},
        {{0xd0, 0x80}, 2, 0, 0, 1, -128},
        {{0xd0, 0x7f}, 2, 1, 127, 1, 127},
        {{0xd1, 0x80, 0x00}, 3, 0, 0, 1, -32768},
        {{0xd1, 0xff, 0xfe}, 3, 0, 0, 1, -2},
        {{0xd2, 0x80, 0, 0, 0}, 5, 0, 0, 1, INT32_MIN},
        {{0xd2, 0x00, 0, 0, 5}, 5, 1, 5, 1, 5},
        {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, 0, 0, 1, INT64_MIN},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         9,
         0,
         0,
         1,
         -1},
        {{0xc0}, 1, 0, 0, 0, 0},
        {{0xc3}, 1, 0, 0, 0, 0},
        {{0xa1, '1'}, 2, 0, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t buf[16] = {0x81, 0xa1, 'n'};
        memcpy(buf + 3, cases[k].bytes, cases[k].len);
        wire_ctl_map m;
        parse_ok(buf, 3 + cases[k].len, &m);
        uint64_t u = 0;
        int64_t i = 0;
        int rc = wire_ctl_get_uint(&m, "n", &u);
        assert_int_equal(rc, cases[k].uint_ok ? 0 : -EPROTO);
        if (rc == 0)
            assert_true(u == cases[k].u);
        rc = wire_ctl_get_int(&m, "n", &i);
        assert_int_equal(rc, cases[k].int_ok ? 0 : -EPROTO);
        if (rc == 0)
            assert_true(i == cases[k].i);
    }
    /* The builder writes the shortest forms, and negatives read back. */
    const int64_t vals[] = {
        0,         -1,       -32,    -33,       -128,
        -129,      -32768,   -32769, INT32_MIN, (int64_t)INT32_MIN - 1,
        INT64_MIN, INT64_MAX};
    const size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 5, 5, 9, 9, 9};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        wire_ctl_builder b;
        wire_ctl_builder_init(&b, 64);
        wire_ctl_map_begin(&b, 1);
        wire_ctl_key(&b, "n");
        wire_ctl_put_int(&b, vals[k]);
        assert_int_equal(wire_ctl_finish(&b), 0);
        assert_int_equal(b.len, 3 + lens[k]);
        wire_ctl_map m;
        parse_ok(b.buf, b.len, &m);
        int64_t i;
        assert_int_equal(wire_ctl_get_int(&m, "n", &i), 0);
        assert_true(i == vals[k]);
        wire_ctl_builder_free(&b);
    }
}

/* An error reply: `err` is a negative errno. */
static void test_ctl_error_reply(void **state)
{
    (void)state;
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 1024);
    wire_ctl_map_begin(&b, 5);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 3);
    wire_ctl_key(&b, "ok");
    wire_ctl_put_bool(&b, 0);
    wire_ctl_key(&b, "err");
    wire_ctl_put_int(&b, -ENOENT);
    wire_ctl_key(&b, "code");
    wire_ctl_put_cstr(&b, "ENOENT");
    wire_ctl_key(&b, "msg");
    wire_ctl_put_cstr(&b, "no linked peer is a member of group G");
    assert_int_equal(wire_ctl_finish(&b), 0);
    wire_ctl_map m;
    parse_ok(b.buf, b.len, &m);
    int64_t err;
    uint64_t u;
    int ok;
    wire_bytes s;
    assert_int_equal(wire_ctl_get_bool(&m, "ok", &ok), 0);
    assert_false(ok);
    assert_int_equal(wire_ctl_get_int(&m, "err", &err), 0);
    assert_true(err == -ENOENT);
    assert_int_equal(wire_ctl_get_uint(&m, "err", &u), -EPROTO);
    assert_int_equal(wire_ctl_get_str(&m, "code", &s), 0);
    assert_str(s, "ENOENT");
    wire_ctl_builder_free(&b);
}

/* ---- arrays and the walk ---- */

static void put_peer(wire_ctl_builder *b, uint8_t first, const char *name,
                     int outbound)
{
    uint8_t id[32];
    for (int i = 0; i < 32; i++)
        id[i] = (uint8_t)(first + i);
    wire_ctl_map_begin(b, 4);
    wire_ctl_key(b, "id");
    wire_ctl_put_bin(b, id, sizeof id);
    wire_ctl_key(b, "name");
    wire_ctl_put_cstr(b, name);
    wire_ctl_key(b, "state");
    wire_ctl_put_cstr(b, "up");
    wire_ctl_key(b, "outbound");
    wire_ctl_put_bool(b, outbound);
}

/* A peers reply (an array of maps), a groups reply (maps holding arrays of
 * bin) and a subscribe request (an array of str). */
static void test_ctl_arrays(void **state)
{
    (void)state;
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 5);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 9);
    wire_ctl_key(&b, "peers");
    wire_ctl_array_begin(&b, 2);
    put_peer(&b, 0x10, "alpha", 1);
    put_peer(&b, 0x20, "beta", 0);
    wire_ctl_key(&b, "groups");
    wire_ctl_array_begin(&b, 1);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "group");
    wire_ctl_put_cstr(&b, "ops");
    wire_ctl_key(&b, "members");
    wire_ctl_array_begin(&b, 2);
    wire_ctl_put_bin(&b, node_a, 32);
    wire_ctl_put_bin(&b, node_a, 32);
    wire_ctl_key(&b, "self");
    wire_ctl_put_bool(&b, 1);
    wire_ctl_key(&b, "events");
    wire_ctl_array_begin(&b, 3);
    wire_ctl_put_cstr(&b, "msg");
    wire_ctl_put_cstr(&b, "peer");
    wire_ctl_put_cstr(&b, "group");
    wire_ctl_key(&b, "empty");
    wire_ctl_array_begin(&b, 0);
    assert_int_equal(wire_ctl_finish(&b), 0);
    wire_ctl_map m;
    parse_ok(b.buf, b.len, &m);

    wire_iter it;
    uint32_t n;
    wire_ctl_map e;
    wire_bytes s;
    int v;
    assert_int_equal(wire_ctl_get_array(&m, "peers", &it, &n), 0);
    assert_int_equal(n, 2);
    /* Wrong element types are refused and the iterator stays put. */
    assert_int_equal(wire_ctl_next_str(&it, &s), -EPROTO);
    assert_int_equal(wire_ctl_next_bin(&it, &s), -EPROTO);
    assert_int_equal(it.left, 2);
    assert_int_equal(wire_ctl_next_map(&it, &e), 1);
    assert_int_equal(e.count, 4);
    assert_int_equal(wire_ctl_get_str(&e, "name", &s), 0);
    assert_str(s, "alpha");
    assert_int_equal(wire_ctl_get_bool(&e, "outbound", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(wire_ctl_get_bin(&e, "id", &s), 0);
    assert_int_equal(s.len, 32);
    assert_int_equal(s.ptr[0], 0x10);
    /* A key of the outer map is not in the entry. */
    assert_int_equal(wire_ctl_get_uint(&e, "rid", &(uint64_t){0}), -ENOENT);
    assert_int_equal(wire_ctl_next_map(&it, &e), 1);
    assert_int_equal(wire_ctl_get_str(&e, "name", &s), 0);
    assert_str(s, "beta");
    assert_int_equal(wire_ctl_get_bool(&e, "outbound", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(wire_ctl_next_map(&it, &e), 0);
    assert_int_equal(wire_ctl_next_map(&it, &e), 0);

    assert_int_equal(wire_ctl_get_array(&m, "groups", &it, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(wire_ctl_next_map(&it, &e), 1);
    assert_int_equal(wire_ctl_get_str(&e, "group", &s), 0);
    assert_str(s, "ops");
    wire_iter members;
    assert_int_equal(wire_ctl_get_array(&e, "members", &members, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(wire_ctl_next_map(&members, &e), -EPROTO);
    assert_int_equal(wire_ctl_next_str(&members, &s), -EPROTO);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(wire_ctl_next_bin(&members, &s), 1);
        assert_bytes(s, node_a, 32);
    }
    assert_int_equal(wire_ctl_next_bin(&members, &s), 0);
    assert_int_equal(wire_ctl_next_map(&it, &e), 0);

    assert_int_equal(wire_ctl_get_array(&m, "events", &it, &n), 0);
    assert_int_equal(n, 3);
    const char *ev[] = {"msg", "peer", "group"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(wire_ctl_next_bin(&it, &s), -EPROTO);
        assert_int_equal(wire_ctl_next_str(&it, &s), 1);
        assert_str(s, ev[k]);
    }
    assert_int_equal(wire_ctl_next_str(&it, &s), 0);

    assert_int_equal(wire_ctl_get_array(&m, "empty", &it, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(wire_ctl_next_str(&it, &s), 0);
    assert_int_equal(wire_ctl_get_array(&m, "rid", &it, &n), -EPROTO);
    wire_ctl_builder_free(&b);
}

static void put_message(wire_ctl_builder *b, uint64_t seq, const char *group,
                        const char *ct, const char *body)
{
    uint8_t mid[16] = {(uint8_t)seq};
    wire_ctl_map_begin(b, 9);
    wire_ctl_key(b, "mid");
    wire_ctl_put_bin(b, mid, sizeof mid);
    wire_ctl_key(b, "from");
    wire_ctl_put_bin(b, node_a, 32);
    wire_ctl_key(b, "from_name");
    wire_ctl_put_cstr(b, "alpha");
    wire_ctl_key(b, "kind");
    wire_ctl_put_cstr(b, group ? "group" : "unicast");
    wire_ctl_key(b, "group");
    if (group)
        wire_ctl_put_cstr(b, group);
    else
        wire_ctl_put_nil(b);
    wire_ctl_key(b, "seq");
    wire_ctl_put_uint(b, seq);
    wire_ctl_key(b, "ts");
    wire_ctl_put_uint(b, 1700000000000000ull);
    wire_ctl_key(b, "ct");
    if (ct)
        wire_ctl_put_cstr(b, ct);
    else
        wire_ctl_put_nil(b);
    wire_ctl_key(b, "body");
    wire_ctl_put_bin(b, body, strlen(body));
}

/* A recv reply with two messages, read through the reader: `group` and
 * `ct` are str or nil. */
static void test_ctl_recv_reply(void **state)
{
    (void)state;
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 3);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 4);
    wire_ctl_key(&b, "ok");
    wire_ctl_put_bool(&b, 1);
    wire_ctl_key(&b, "msgs");
    wire_ctl_array_begin(&b, 2);
    put_message(&b, 1, NULL, NULL, "one");
    put_message(&b, 2, "ops", "text/plain", "two");
    assert_int_equal(wire_ctl_finish(&b), 0);
    size_t flen;
    uint8_t *f = frame_msg(b.buf, b.len, &flen);
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, 65536);
    got g;
    feed(&r, f, flen, 1, &g);
    assert_int_equal(g.n, 1);
    wire_ctl_map m;
    parse_ok(g.msg[0], g.len[0], &m);

    wire_iter it;
    uint32_t n;
    assert_int_equal(wire_ctl_get_array(&m, "msgs", &it, &n), 0);
    assert_int_equal(n, 2);
    wire_ctl_map e;
    wire_bytes s;
    uint64_t seq;
    assert_int_equal(wire_ctl_next_map(&it, &e), 1);
    assert_int_equal(wire_ctl_get_str_opt(&e, "group", &s), -ENOENT);
    assert_int_equal(wire_ctl_get_str_opt(&e, "ct", &s), -ENOENT);
    assert_int_equal(wire_ctl_get_str(&e, "ct", &s), -EPROTO);
    assert_int_equal(wire_ctl_get_bin(&e, "body", &s), 0);
    assert_bytes(s, "one", 3);
    assert_int_equal(wire_ctl_get_uint(&e, "seq", &seq), 0);
    assert_true(seq == 1);
    assert_int_equal(wire_ctl_next_map(&it, &e), 1);
    assert_int_equal(wire_ctl_get_str_opt(&e, "group", &s), 0);
    assert_str(s, "ops");
    assert_int_equal(wire_ctl_get_str_opt(&e, "ct", &s), 0);
    assert_str(s, "text/plain");
    assert_int_equal(wire_ctl_get_bin(&e, "body", &s), 0);
    assert_bytes(s, "two", 3);
    assert_int_equal(wire_ctl_next_map(&it, &e), 0);
    got_free(&g);
    wire_ctl_reader_free(&r);
    free(f);
    wire_ctl_builder_free(&b);
}

/* A status reply's `stats`, a map of counters, walked in order. */
static void test_ctl_walk_counters(void **state)
{
    (void)state;
    static const char *const names[] = {"msgs_sent", "msgs_received",
                                        "protocol_errors", "beacons_sent"};
    static const uint64_t values[] = {3, 4, 0, 1ull << 40};
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 4096);
    wire_ctl_map_begin(&b, 4);
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 1);
    wire_ctl_key(&b, "ok");
    wire_ctl_put_bool(&b, 1);
    wire_ctl_key(&b, "stats");
    wire_ctl_map_begin(&b, 4);
    for (int i = 0; i < 4; i++) {
        wire_ctl_key(&b, names[i]);
        wire_ctl_put_uint(&b, values[i]);
    }
    wire_ctl_key(&b, "groups");
    wire_ctl_array_begin(&b, 1);
    wire_ctl_put_cstr(&b, "ops");
    assert_int_equal(wire_ctl_finish(&b), 0);
    wire_ctl_map m, stats;
    parse_ok(b.buf, b.len, &m);
    assert_int_equal(wire_ctl_get_map(&m, "stats", &stats), 0);
    assert_int_equal(stats.count, 4);

    wire_ctl_walk w;
    wire_bytes key;
    wire_mp_reader *val;
    wire_ctl_walk_init(&stats, &w);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 1);
        assert_str(key, names[i]);
        uint64_t u;
        assert_int_equal(wire_mp_read_uint(val, &u), 0);
        assert_true(u == values[i]);
        assert_int_equal(wire_mp_left(val), 0);
    }
    assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 0);

    /* Values left unread, or read wrongly, do not derail the walk. */
    const char *top[] = {"rid", "ok", "stats", "groups"};
    wire_ctl_walk_init(&m, &w);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 1);
        assert_str(key, top[i]);
        uint64_t u;
        if (i == 1)
            assert_int_equal(wire_mp_read_uint(val, &u), -EPROTO);
        if (i == 2) {
            uint32_t c;
            assert_int_equal(wire_mp_read_map(val, &c), 0);
            assert_int_equal(c, 4);
        }
    }
    assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 0);

    /* The empty map, and something that is no map at all. */
    const uint8_t empty[] = {0x80};
    wire_ctl_map em;
    parse_ok(empty, 1, &em);
    wire_ctl_walk_init(&em, &w);
    assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 0);
    const uint8_t arr[] = {0x91, 0x01};
    wire_ctl_map bad = {arr, sizeof arr, 1};
    wire_ctl_walk_init(&bad, &w);
    assert_int_equal(wire_ctl_walk_next(&w, &key, &val), 0);
    /* A non-str key in an unchecked map stops the walk with an error. */
    const uint8_t intkey[] = {0x81, 0x01, 0x02};
    bad = (wire_ctl_map){intkey, sizeof intkey, 1};
    wire_ctl_walk_init(&bad, &w);
    assert_int_equal(wire_ctl_walk_next(&w, &key, &val), -EPROTO);
    uint64_t u;
    assert_int_equal(wire_ctl_get_uint(&bad, "a", &u), -EPROTO);
    wire_ctl_builder_free(&b);
}

/* ---- the builder ---- */

static void test_ctl_builder_limit(void **state)
{
    (void)state;
    /* The exact size fits; one byte less fails, and stays failed. */
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, 1 << 20);
    wire_ctl_map_begin(&b, 2);
    wire_ctl_key(&b, "op");
    wire_ctl_put_cstr(&b, "id");
    wire_ctl_key(&b, "rid");
    wire_ctl_put_uint(&b, 1);
    assert_int_equal(wire_ctl_finish(&b), 0);
    size_t exact = b.len;
    assert_int_equal(exact, 12);
    wire_ctl_builder_free(&b);
    for (size_t limit = exact - 1; limit <= exact; limit++) {
        wire_ctl_builder_init(&b, limit);
        wire_ctl_map_begin(&b, 2);
        wire_ctl_key(&b, "op");
        wire_ctl_put_cstr(&b, "id");
        wire_ctl_key(&b, "rid");
        wire_ctl_put_uint(&b, 1);
        assert_int_equal(wire_ctl_finish(&b), limit == exact ? 0 : -EMSGSIZE);
        assert_true(b.cap <= limit && b.len <= limit);
        /* Sticky: a small write after a failed one does not land. */
        size_t len = b.len;
        wire_ctl_put_nil(&b);
        if (limit < exact) {
            assert_int_equal(b.len, len);
            assert_int_equal(wire_ctl_finish(&b), -EMSGSIZE);
        }
        wire_ctl_builder_free(&b);
    }

    /* A large value grows the buffer by doubling, never past the limit. */
    uint8_t *big = calloc(1, 3 * MIB);
    assert_non_null(big);
    wire_ctl_builder_init(&b, 3 * MIB + 100);
    wire_ctl_map_begin(&b, 1);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, big, 3 * MIB);
    assert_int_equal(wire_ctl_finish(&b), 0);
    assert_int_equal(b.len, 1 + 5 + 5 + 3 * MIB);
    assert_true(b.cap <= 3 * MIB + 100);
    wire_ctl_builder_free(&b);
    assert_null(b.buf);
    wire_ctl_builder_init(&b, 3 * MIB);
    wire_ctl_map_begin(&b, 1);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, big, 3 * MIB);
    assert_int_equal(wire_ctl_finish(&b), -EMSGSIZE);
    assert_true(b.cap <= 3 * MIB);
    wire_ctl_builder_free(&b);
    free(big);

    /* Nothing written: an empty result, nothing allocated. */
    wire_ctl_builder_init(&b, 0);
    assert_int_equal(wire_ctl_finish(&b), 0);
    assert_int_equal(b.len, 0);
    wire_ctl_map_begin(&b, 0);
    assert_int_equal(wire_ctl_finish(&b), -EMSGSIZE);
    wire_ctl_builder_free(&b);
}

/* An allocation failure is sticky -ENOMEM. Only where the allocation
 * counter interposes malloc: it refuses sizes over ALLOC_REFUSE_OVER, so a
 * bin that long fails while growing, before any byte of it is read (the
 * 16-byte buffer stands in for a huge one). */
static void test_ctl_builder_enomem(void **state)
{
    (void)state;
    if (!counting)
        skip();
    uint8_t small[16] = {0};
    wire_ctl_builder b;
    wire_ctl_builder_init(&b, SIZE_MAX);
    wire_ctl_map_begin(&b, 1);
    wire_ctl_key(&b, "body");
    alloc_count_start();
    wire_ctl_put_bin(&b, small, ALLOC_REFUSE_OVER + 1);
    alloc_count_stop();
    assert_int_equal(wire_ctl_finish(&b), -ENOMEM);
    wire_ctl_put_nil(&b);
    assert_int_equal(wire_ctl_finish(&b), -ENOMEM);
    assert_int_equal(b.len, 6 + 5);
    wire_ctl_builder_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_roundtrip_request),
        cmocka_unit_test(test_ctl_roundtrip_sizes),
        cmocka_unit_test(test_ctl_empty_message),
        cmocka_unit_test(test_ctl_frame_headers_doc),
        cmocka_unit_test(test_ctl_read_several_in_one_chunk),
        cmocka_unit_test(test_ctl_read_frees_big_buffer),
        cmocka_unit_test(test_ctl_read_over_limit_allocates_nothing),
        cmocka_unit_test(test_ctl_read_bad_frame_headers),
        cmocka_unit_test(test_ctl_parse_rejects),
        cmocka_unit_test(test_ctl_parse_depth),
        cmocka_unit_test(test_ctl_parse_max_keys),
        cmocka_unit_test(test_ctl_get_type_checks),
        cmocka_unit_test(test_ctl_get_integer_formats),
        cmocka_unit_test(test_ctl_error_reply),
        cmocka_unit_test(test_ctl_arrays),
        cmocka_unit_test(test_ctl_recv_reply),
        cmocka_unit_test(test_ctl_walk_counters),
        cmocka_unit_test(test_ctl_builder_limit),
        cmocka_unit_test(test_ctl_builder_enomem),
    };
    return cmocka_run_group_tests_name("ctl", tests, setup, NULL);
}
