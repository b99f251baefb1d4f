/* gen_route_corpus.c: writes the seed corpus of fuzz_route: the routing
 * messages of docs/PROTOCOL.md section 13 (ROUTE, ROUTED, TRACE,
 * TRACE_REPLY) as the node's encoder writes them, at and around the
 * section's bounds, and damaged copies made without knowing the format.
 *
 * Built with the tests (tests/fuzz/meson.build); the suite runs it into a
 * scratch directory and replays fuzz_route over the result, so it keeps
 * working when the codec changes. To regenerate the committed corpus:
 *
 *   ninja -C build && build/tests/fuzz/gen_route_corpus tests/fuzz/corpus/route
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "wire/msg.h"

static const char *dir;
static int failed;
static uint8_t buf[WIRE_MAX_FRAME];

static void put(const char *name, const uint8_t *d, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(d, 1, len, f) != len) ||
        fclose(f) != 0) {
        fprintf(stderr, "gen_route_corpus: cannot write %s\n", path);
        failed = 1;
    }
}

/* Damaged copies: cut short, one byte more, and a flipped last byte. */
static void variants(const char *name, const uint8_t *d, size_t len)
{
    static uint8_t v[WIRE_MAX_FRAME + 1];
    char out[128];
    if (len < 2 || len + 1 > sizeof v)
        return;
    snprintf(out, sizeof out, "%s-truncated", name);
    put(out, d, len - 1);
    memcpy(v, d, len);
    v[len] = 0xc0; /* nil after the map */
    snprintf(out, sizeof out, "%s-extra-byte", name);
    put(out, v, len + 1);
    memcpy(v, d, len);
    v[len - 1] ^= 0x80;
    snprintf(out, sizeof out, "%s-flipped", name);
    put(out, v, len);
}

/* Encodes m with the node's encoder and writes it, with its variants
 * when `damaged`. Returns the encoded length (0 on failure). */
static size_t emit(const char *name, const wire_msg *m, int damaged)
{
    size_t len = 0;
    if (wire_msg_encode(m, buf, sizeof buf, &len) != 0) {
        fprintf(stderr, "gen_route_corpus: cannot encode %s\n", name);
        failed = 1;
        return 0;
    }
    put(name, buf, len);
    if (damaged)
        variants(name, buf, len);
    return len;
}

static uint8_t ids[WIRE_ROUTE_MAX + 1][WIRE_NODE_ID_BYTES];
static wire_route_entry ents[WIRE_ROUTE_MAX];

static void route(const char *name, uint32_t n, int damaged)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ROUTE;
    for (uint32_t i = 0; i < n; i++) {
        ents[i].id = ids[i];
        ents[i].seq = i == 0 ? 2 : 2u * i + (i % 3 == 0); /* odd: broken */
        ents[i].metric = i == 0 ? 0 : 1u + i % WIRE_ROUTE_INFINITY;
        ents[i].epoch = 0x0102030405060708ull + i;
    }
    m.u.route.count = n;
    m.u.route.entries = ents;
    emit(name, &m, damaged);
}

static void routed(const char *name, uint64_t hops, uint32_t box_len,
                   int damaged)
{
    static uint8_t box[1200];
    wire_msg m;
    memset(&m, 0, sizeof m);
    for (uint32_t i = 0; i < box_len && i < sizeof box; i++)
        box[i] = (uint8_t)(i * 7u + 1u);
    m.type = WIRE_T_ROUTED;
    m.u.routed.src = ids[1];
    m.u.routed.dst = ids[2];
    m.u.routed.hops = hops;
    m.u.routed.box.ptr = box;
    m.u.routed.box.len = box_len;
    emit(name, &m, damaged);
}

static void trace(const char *name, uint64_t t, uint64_t hops, uint64_t k,
                  const char *nm, const char *addr, int damaged)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.u.trace.src = ids[1];
    m.u.trace.dst = ids[3];
    m.u.trace.hops = hops;
    m.u.trace.k = k;
    m.u.trace.token = 0xfeedfacecafe0001ull;
    m.u.trace.name.ptr = (const uint8_t *)nm;
    m.u.trace.name.len = (uint32_t)strlen(nm);
    m.u.trace.addr.ptr = (const uint8_t *)addr;
    m.u.trace.addr.len = (uint32_t)strlen(addr);
    emit(name, &m, damaged);
}

/* An advert of two entries, the second with metric 17: the codec takes
 * it, the receiver counts it bad (13.2), the encoder never writes it. */
static void route_absurd_metric(void)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_T_ROUTE;
    ents[0] = (wire_route_entry){ids[0], 2, 0, 1};
    ents[1] = (wire_route_entry){ids[1], 4, WIRE_ROUTE_INFINITY, 1};
    m.u.route.count = 2;
    m.u.route.entries = ents;
    size_t len = emit("route-metric-16", &m, 0);
    /* The last entry ends [.., metric 16 (0x10), epoch 1 (0x01)]. */
    if (len > 2 && buf[len - 2] == 0x10) {
        buf[len - 2] = 0x11;
        put("route-metric-17", buf, len);
    } else {
        fprintf(stderr, "gen_route_corpus: unexpected ROUTE layout\n");
        failed = 1;
    }
}

/* An advert announcing 257 entries: one more than 13.2 allows. */
static void route_too_many(void)
{
    route("route-256", WIRE_ROUTE_MAX, 0);
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, sizeof buf);
    wire_mp_write_map(&w, 2);
    wire_mp_write_cstr(&w, "t");
    wire_mp_write_uint(&w, WIRE_T_ROUTE);
    wire_mp_write_cstr(&w, "r");
    wire_mp_write_array(&w, WIRE_ROUTE_MAX + 1);
    for (uint32_t i = 0; i <= WIRE_ROUTE_MAX; i++) {
        wire_mp_write_array(&w, 4);
        wire_mp_write_bin(&w, ids[i], WIRE_NODE_ID_BYTES);
        wire_mp_write_uint(&w, 2);
        wire_mp_write_uint(&w, 1);
        wire_mp_write_uint(&w, 0);
    }
    size_t len;
    if (wire_mp_writer_finish(&w, &len) != 0) {
        fprintf(stderr, "gen_route_corpus: cannot write route-257\n");
        failed = 1;
        return;
    }
    put("route-257", buf, len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_route_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_route_corpus: cannot make %s\n", dir);
        return 1;
    }
    for (size_t i = 0; i <= WIRE_ROUTE_MAX; i++)
        for (size_t j = 0; j < WIRE_NODE_ID_BYTES; j++)
            ids[i][j] = (uint8_t)(i * 31u + j);

    route("route-empty", 0, 0);
    route("route-self", 1, 1);
    route("route-5", 5, 1);
    route_too_many();
    route_absurd_metric();

    routed("routed-min-box", WIRE_ROUTE_INFINITY, WIRE_ROUTED_SEAL, 1);
    routed("routed-1k", WIRE_ROUTE_INFINITY, 1024 + WIRE_ROUTED_SEAL, 1);
    routed("routed-hops-1", 1, 100, 0);
    routed("routed-hops-0", 0, 100, 0);

    trace("trace-k1", WIRE_T_TRACE, 1, 1, "", "", 1);
    trace("trace-k16", WIRE_T_TRACE, 16, 16, "", "", 0);
    trace("trace-h0", WIRE_T_TRACE, 0, 3, "", "", 0);
    trace("trace-reply", WIRE_T_TRACE_REPLY, 16, 2, "relay", "127.0.0.1:47475",
          1);
    trace("trace-reply-ipv6", WIRE_T_TRACE_REPLY, 15, 1,
          "n\xc5\x93ud-\xe4\xb8\xad", "[fe80::1%2]:47475", 0);
    trace("trace-reply-empty", WIRE_T_TRACE_REPLY, 16, 1, "", "", 0);
    put("empty", buf, 0);
    return failed;
}
