/* fuzz_beacon.c: a UDP datagram from a stranger, read as a beacon.
 *
 * Properties of a decoded beacon:
 *   - the tag is the last element: c4 10 and 16 bytes right after the
 *     tagged part;
 *   - encoding the decoded values gives a tagged part no longer than the
 *     input's, which decodes to the same values;
 *   - that encoding equals the input's tagged part byte for byte exactly
 *     when the input used the shortest form for every element (receivers
 *     accept any integer and str format, so other inputs decode too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/beacon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

/* The shortest first byte msgpack has for a uint. */
static uint8_t uint_head(uint64_t v)
{
    if (v < 128)
        return (uint8_t)v;
    if (v < 256)
        return 0xcc;
    if (v < 65536)
        return 0xcd;
    if (v <= UINT32_MAX)
        return 0xce;
    return 0xcf;
}

/* True if every element of the (decoded) input is in its shortest form. */
static int shortest(const uint8_t *data, size_t tagged, const wire_beacon *b)
{
    const uint8_t *start[7];
    wire_mp_reader r;
    wire_mp_reader_init(&r, data, tagged);
    uint32_t n;
    CHECK(wire_mp_read_array(&r, &n) == 0);
    for (int i = 0; i < 6; i++) {
        start[i] = r.p;
        CHECK(wire_mp_skip(&r) == 0);
    }
    return data[0] == 0x97 && start[0][0] == 0xa6 && start[1][0] == 0x01 &&
           start[2][0] == 0xc4 && start[3][0] == uint_head(b->port) &&
           start[4][0] == (b->name.len < 32 ? 0xa0 | b->name.len : 0xd9) &&
           start[5][0] == uint_head(b->boot);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_beacon b;
    size_t tagged;
    if (wire_beacon_decode(data, size, &b, &tagged) != 0)
        return 0;
    CHECK(size <= WIRE_BEACON_MAX);
    CHECK(tagged + 2 + WIRE_BEACON_TAG_BYTES == size);
    CHECK(data[tagged] == 0xc4 && data[tagged + 1] == WIRE_BEACON_TAG_BYTES);
    CHECK(memcmp(data + tagged + 2, b.tag, WIRE_BEACON_TAG_BYTES) == 0);

    uint8_t out[WIRE_BEACON_MAX];
    size_t t2, n2;
    CHECK(wire_beacon_encode(&b, out, sizeof out, &t2) == 0);
    CHECK(t2 <= tagged);
    CHECK((t2 == tagged && memcmp(out, data, tagged) == 0) ==
          shortest(data, tagged, &b));
    CHECK(wire_beacon_append_tag(out, sizeof out, t2, b.tag, &n2) == 0);
    CHECK(n2 == t2 + 2 + WIRE_BEACON_TAG_BYTES);

    wire_beacon again;
    size_t t3;
    CHECK(wire_beacon_decode(out, n2, &again, &t3) == 0);
    CHECK(t3 == t2);
    CHECK(again.version == b.version && again.port == b.port &&
          again.boot == b.boot && again.name.len == b.name.len &&
          memcmp(again.id, b.id, WIRE_NODE_ID_BYTES) == 0 &&
          memcmp(again.tag, b.tag, WIRE_BEACON_TAG_BYTES) == 0 &&
          (b.name.len == 0 ||
           memcmp(again.name.ptr, b.name.ptr, b.name.len) == 0));
    return 0;
}
