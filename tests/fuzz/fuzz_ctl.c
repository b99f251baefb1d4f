/* fuzz_ctl.c: the byte stream of a control connection (wire/ctl.h).
 *
 * Input: byte 0 picks the reader's limit, byte 1 how the stream is cut into
 * chunks (0: one chunk; otherwise pseudo-random sizes seeded by it); the
 * rest is the stream. Properties:
 *   - the reader yields the same messages and the same final result
 *     whatever the chunking, and never keeps more than its limit;
 *   - any message the reader yields frames again (wire_ctl_frame) and reads
 *     back to the same bytes;
 *   - every getter, on a few fixed keys, answers 0, -ENOENT or -EPROTO, and
 *     consistently (absent for one is absent for all); arrays and nested
 *     maps found are iterated and walked;
 *   - a parsed map, walked and rebuilt with the builder, is never longer,
 *     frames and reads back, parses, holds the same values, and rebuilding
 *     it again gives the same bytes (the builder is canonical). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

#define MAX_KEPT 16u /* messages of the one-chunk pass kept for comparing */

static const size_t limits[4] = {1u << 20, WIRE_MAX_FRAME, 300, 200000};

static const char *const keys[] = {"op",   "rid",    "to",   "body",
                                   "msgs", "groups", "stats"};

/* ---- structural equality of two values ---- */

static int value_eq(wire_mp_reader *a, wire_mp_reader *b);

static int bytes_eq(const uint8_t *p, uint32_t n, const uint8_t *q, uint32_t m)
{
    return n == m && (n == 0 || memcmp(p, q, n) == 0);
}

static int value_eq(wire_mp_reader *a, wire_mp_reader *b)
{
    int ta = wire_mp_peek_type(a);
    if (ta != wire_mp_peek_type(b))
        return 0;
    const uint8_t *p, *q;
    uint32_t n, m;
    switch (ta) {
    case MSGPACK_OBJECT_NIL:
        return wire_mp_read_nil(a) == 0 && wire_mp_read_nil(b) == 0;
    case MSGPACK_OBJECT_BOOLEAN: {
        int x, y;
        return wire_mp_read_bool(a, &x) == 0 && wire_mp_read_bool(b, &y) == 0 &&
               x == y;
    }
    case MSGPACK_OBJECT_POSITIVE_INTEGER: {
        uint64_t x, y;
        return wire_mp_read_uint(a, &x) == 0 && wire_mp_read_uint(b, &y) == 0 &&
               x == y;
    }
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: {
        int64_t x, y;
        return wire_mp_read_int(a, &x) == 0 && wire_mp_read_int(b, &y) == 0 &&
               x == y;
    }
    case MSGPACK_OBJECT_STR:
        return wire_mp_read_str(a, &p, &n) == 0 &&
               wire_mp_read_str(b, &q, &m) == 0 && bytes_eq(p, n, q, m);
    case MSGPACK_OBJECT_BIN:
        return wire_mp_read_bin(a, &p, &n) == 0 &&
               wire_mp_read_bin(b, &q, &m) == 0 && bytes_eq(p, n, q, m);
    case MSGPACK_OBJECT_ARRAY:
        if (wire_mp_read_array(a, &n) != 0 || wire_mp_read_array(b, &m) != 0 ||
            n != m)
            return 0;
        for (uint32_t i = 0; i < n; i++)
            if (!value_eq(a, b))
                return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        if (wire_mp_read_map(a, &n) != 0 || wire_mp_read_map(b, &m) != 0 ||
            n != m)
            return 0;
        /* The order of entries is kept by the rebuild. */
        for (uint32_t i = 0; i < 2 * n; i++)
            if (!value_eq(a, b))
                return 0;
        return 1;
    default:
        return 0;
    }
}

/* ---- rebuilding with the builder ---- */

static void rebuild_map(wire_ctl_builder *b, const wire_ctl_map *m);

/* The map at r as a wire_ctl_map; r moves past it. */
static void take_map(wire_mp_reader *r, wire_ctl_map *sub)
{
    wire_mp_reader t = *r;
    CHECK(wire_mp_read_map(&t, &sub->count) == 0);
    t = *r;
    CHECK(wire_mp_skip(&t) == 0);
    sub->buf = r->p;
    sub->len = (size_t)(t.p - r->p);
    *r = t;
}

static void rebuild_value(wire_ctl_builder *b, wire_mp_reader *r)
{
    const uint8_t *p;
    uint32_t n;
    switch (wire_mp_peek_type(r)) {
    case MSGPACK_OBJECT_NIL:
        CHECK(wire_mp_read_nil(r) == 0);
        wire_ctl_put_nil(b);
        return;
    case MSGPACK_OBJECT_BOOLEAN: {
        int v;
        CHECK(wire_mp_read_bool(r, &v) == 0);
        wire_ctl_put_bool(b, v);
        return;
    }
    case MSGPACK_OBJECT_POSITIVE_INTEGER: {
        uint64_t v;
        CHECK(wire_mp_read_uint(r, &v) == 0);
        wire_ctl_put_uint(b, v);
        return;
    }
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: {
        int64_t v;
        CHECK(wire_mp_read_int(r, &v) == 0 && v < 0);
        wire_ctl_put_int(b, v);
        return;
    }
    case MSGPACK_OBJECT_STR:
        CHECK(wire_mp_read_str(r, &p, &n) == 0);
        wire_ctl_put_str(b, p, n);
        return;
    case MSGPACK_OBJECT_BIN:
        CHECK(wire_mp_read_bin(r, &p, &n) == 0);
        wire_ctl_put_bin(b, p, n);
        return;
    case MSGPACK_OBJECT_ARRAY:
        CHECK(wire_mp_read_array(r, &n) == 0);
        wire_ctl_array_begin(b, n);
        for (uint32_t i = 0; i < n; i++)
            rebuild_value(b, r);
        return;
    case MSGPACK_OBJECT_MAP: {
        wire_ctl_map sub;
        take_map(r, &sub);
        rebuild_map(b, &sub);
        return;
    }
    default:
        abort(); /* wire_ctl_parse() lets nothing else through */
    }
}

static void rebuild_map(wire_ctl_builder *b, const wire_ctl_map *m)
{
    wire_ctl_walk w;
    wire_bytes key;
    wire_mp_reader *val;
    wire_ctl_map_begin(b, m->count);
    wire_ctl_walk_init(m, &w);
    uint32_t seen = 0;
    int rc;
    while ((rc = wire_ctl_walk_next(&w, &key, &val)) == 1) {
        wire_ctl_put_str(b, key.ptr, key.len);
        rebuild_value(b, val);
        CHECK(wire_mp_left(val) == 0); /* the reader held just the value */
        seen++;
    }
    CHECK(rc == 0 && seen == m->count);
}

/* Reads back a framed message with a reader whose limit is its length. */
static void frame_and_read(const uint8_t *msg, size_t len)
{
    size_t cap = wire_ctl_framed_len(len), flen;
    uint8_t *f = malloc(cap);
    CHECK(f != NULL);
    CHECK(wire_ctl_frame(msg, len, f, cap, &flen) == 0 && flen == cap);
    CHECK(cap < 2 || wire_ctl_frame(msg, len, f, cap - 1, &flen) == -EMSGSIZE);
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, len);
    const uint8_t *data = f, *out;
    size_t left = cap, olen;
    CHECK(wire_ctl_read(&r, &data, &left, &out, &olen) == 1);
    CHECK(left == 0 && olen == len && (len == 0 || memcmp(out, msg, len) == 0));
    CHECK(wire_ctl_read(&r, &data, &left, &out, &olen) == 0);
    wire_ctl_reader_free(&r);
    free(f);
}

static void roundtrip(const wire_ctl_map *m)
{
    wire_ctl_builder b;
    /* Shortest forms: the rebuilt map is never longer than the input. */
    wire_ctl_builder_init(&b, m->len);
    rebuild_map(&b, m);
    CHECK(wire_ctl_finish(&b) == 0);
    CHECK(b.len <= m->len && b.cap <= m->len);
    frame_and_read(b.buf, b.len);

    wire_ctl_map again;
    CHECK(wire_ctl_parse(b.buf, b.len, &again) == 0);
    CHECK(again.count == m->count);
    wire_mp_reader x, y;
    wire_mp_reader_init(&x, m->buf, m->len);
    wire_mp_reader_init(&y, again.buf, again.len);
    CHECK(value_eq(&x, &y));
    CHECK(wire_mp_left(&x) == 0 && wire_mp_left(&y) == 0);

    wire_ctl_builder b2;
    wire_ctl_builder_init(&b2, b.len);
    rebuild_map(&b2, &again);
    CHECK(wire_ctl_finish(&b2) == 0);
    CHECK(b2.len == b.len && memcmp(b2.buf, b.buf, b.len) == 0);
    wire_ctl_builder_free(&b2);
    wire_ctl_builder_free(&b);
}

/* ---- the getters ---- */

static void exercise(const wire_ctl_map *m, unsigned depth);

static void exercise_array(wire_iter it, uint32_t count, unsigned depth)
{
    uint32_t got = 0;
    for (;;) {
        wire_ctl_map sub;
        wire_bytes s;
        int rc = wire_ctl_next_map(&it, &sub);
        if (rc == 1) {
            exercise(&sub, depth + 1);
        } else if (rc == 0) {
            break;
        } else if ((rc = wire_ctl_next_str(&it, &s)) == 1) {
            CHECK(wire_utf8_valid(s.ptr, s.len));
        } else if (rc == 0 || (rc = wire_ctl_next_bin(&it, &s)) != 1) {
            CHECK(rc == -EPROTO);
            return; /* an element none of them reads */
        }
        got++;
    }
    CHECK(got == count && it.left == 0);
}

static void exercise(const wire_ctl_map *m, unsigned depth)
{
    CHECK(depth <= WIRE_CTL_MAX_DEPTH);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *key = keys[k];
        uint64_t u;
        int64_t i;
        int v;
        wire_bytes s, so;
        wire_ctl_map sub;
        wire_iter it;
        uint32_t n;
        int r[8] = {
            wire_ctl_get_uint(m, key, &u),
            wire_ctl_get_int(m, key, &i),
            wire_ctl_get_bool(m, key, &v),
            wire_ctl_get_str(m, key, &s),
            wire_ctl_get_str_opt(m, key, &so),
            wire_ctl_get_bin(m, key, &s),
            wire_ctl_get_map(m, key, &sub),
            wire_ctl_get_array(m, key, &it, &n),
        };
        int ok = 0;
        for (int g = 0; g < 8; g++) {
            CHECK(r[g] == 0 || r[g] == -ENOENT || r[g] == -EPROTO);
            CHECK((r[g] == -ENOENT) == (r[0] == -ENOENT) ||
                  (g == 4 && r[g] == -ENOENT)); /* nil for _opt */
            ok += r[g] == 0;
        }
        if (r[0] == 0 && r[1] == 0)
            CHECK(i >= 0 && (uint64_t)i == u);
        if (r[3] == 0)
            CHECK(r[4] == 0 && so.ptr == s.ptr);
        /* A value has one type: uint and int, or str and its _opt, may
         * both answer; nothing else does. */
        CHECK(ok <= 2);
        if (r[6] == 0) {
            exercise(&sub, depth + 1);
            wire_ctl_walk w;
            wire_bytes wk;
            wire_mp_reader *val;
            wire_ctl_walk_init(&sub, &w);
            uint32_t entries = 0;
            while (wire_ctl_walk_next(&w, &wk, &val) == 1) {
                uint64_t counter;
                (void)wire_mp_read_uint(val, &counter);
                entries++;
            }
            CHECK(entries == sub.count);
        }
        if (r[7] == 0)
            exercise_array(it, n, depth);
    }
}

/* ---- the stream ---- */

typedef struct chunker {
    uint32_t x;
    size_t max;
} chunker;

static size_t next_chunk(chunker *c, size_t left)
{
    if (c->max == 0)
        return left;
    c->x ^= c->x << 13;
    c->x ^= c->x >> 17;
    c->x ^= c->x << 5;
    size_t n = 1 + c->x % c->max;
    return n < left ? n : left;
}

typedef struct pass {
    size_t n;    /* messages */
    int rc;      /* the final result */
    size_t used; /* bytes consumed */
    uint8_t *kept[MAX_KEPT];
    size_t kept_len[MAX_KEPT];
} pass;

static void on_message(pass *p, pass *ref, const uint8_t *msg, size_t len,
                       size_t limit)
{
    CHECK(len <= limit);
    if (ref == NULL) {
        if (p->n < MAX_KEPT) {
            p->kept[p->n] = malloc(len ? len : 1);
            CHECK(p->kept[p->n] != NULL);
            if (len > 0)
                memcpy(p->kept[p->n], msg, len);
            p->kept_len[p->n] = len;
        }
        p->n++;
        return;
    }
    if (p->n < MAX_KEPT && p->n < ref->n)
        CHECK(ref->kept_len[p->n] == len &&
              (len == 0 || memcmp(ref->kept[p->n], msg, len) == 0));
    p->n++;

    frame_and_read(msg, len);
    wire_ctl_map m;
    if (wire_ctl_parse(msg, len, &m) != 0)
        return;
    CHECK(wire_mp_check(msg, len, WIRE_CTL_MAX_DEPTH) == 0);
    exercise(&m, 0);
    roundtrip(&m);
}

static void run(const uint8_t *s, size_t size, size_t limit, chunker c, pass *p,
                pass *ref)
{
    wire_ctl_reader r;
    wire_ctl_reader_init(&r, limit);
    size_t off = 0;
    p->rc = 0;
    while (off < size && p->rc == 0) {
        size_t n = next_chunk(&c, size - off);
        const uint8_t *data = s + off, *msg;
        size_t left = n, mlen;
        int rc;
        while ((rc = wire_ctl_read(&r, &data, &left, &msg, &mlen)) == 1)
            on_message(p, ref, msg, mlen, limit);
        CHECK(r.cap <= limit && r.len <= limit);
        p->rc = rc;
        p->used += n - left;
        CHECK(rc != 0 || left == 0);
        off += n;
    }
    wire_ctl_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t limit = limits[data[0] & 3u];
    static const size_t maxes[4] = {1, 7, 300, 70000};
    chunker c = {(uint32_t)data[1] * 2654435761u | 1u,
                 data[1] == 0 ? 0 : maxes[data[1] & 3u]};
    const uint8_t *s = data + 2;
    size -= 2;

    pass whole = {0}, cut = {0};
    run(s, size, limit, (chunker){0, 0}, &whole, NULL);
    run(s, size, limit, c, &cut, &whole);
    CHECK(cut.n == whole.n && cut.rc == whole.rc && cut.used == whole.used);
    for (size_t i = 0; i < whole.n && i < MAX_KEPT; i++)
        free(whole.kept[i]);
    return 0;
}
