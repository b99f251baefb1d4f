/* fuzz_beacon.c: a UDP datagram from a stranger, read as a beacon.
 *
 * Asserts only what docs/PROTOCOL.md sections 1, 6 and 9.1 promise of a
 * beacon the decoder accepts (and, of course, no crash):
 *   - it is at most 512 bytes;
 *   - its values are in range: version 1, port 1..65535, a name of at most
 *     64 bytes of valid UTF-8;
 *   - the tag covers every byte before element 6, and element 6 is a bin
 *     of exactly 16 bytes (in any bin format: `c4 10`, `c5 00 10` and
 *     `c6 00 00 00 10` are all a bin16) that ends the datagram;
 *   - decode, encode, decode gives the same fields, and our encoding
 *     (shortest forms, which PROTOCOL.md asks of encoders) is never longer
 *     than the input and encodes again to the same bytes.
 * Byte-for-byte equality with the input is not promised: a receiver
 * accepts any msgpack format for a uint, str or bin. */
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

static int same_fields(const wire_beacon *a, const wire_beacon *b)
{
    return a->version == b->version && a->port == b->port &&
           a->boot == b->boot && a->name.len == b->name.len &&
           memcmp(a->id, b->id, WIRE_NODE_ID_BYTES) == 0 &&
           memcmp(a->tag, b->tag, WIRE_BEACON_TAG_BYTES) == 0 &&
           (a->name.len == 0 ||
            memcmp(a->name.ptr, b->name.ptr, a->name.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_beacon b;
    size_t tagged;
    if (wire_beacon_decode(data, size, &b, &tagged) != 0)
        return 0;
    CHECK(size <= WIRE_BEACON_MAX);
    CHECK(b.version == WIRE_VERSION && b.port >= 1);
    CHECK(b.name.len <= WIRE_MAX_NAME &&
          (b.name.len == 0 || wire_utf8_valid(b.name.ptr, b.name.len)));

    /* Element 6 starts where the tagged part ends: one bin of 16 bytes,
     * the tag, and nothing after it. */
    CHECK(tagged < size);
    wire_mp_reader r;
    const uint8_t *tag;
    uint32_t taglen;
    wire_mp_reader_init(&r, data + tagged, size - tagged);
    CHECK(wire_mp_read_bin(&r, &tag, &taglen) == 0);
    CHECK(taglen == WIRE_BEACON_TAG_BYTES && wire_mp_left(&r) == 0);
    CHECK(memcmp(tag, b.tag, WIRE_BEACON_TAG_BYTES) == 0);

    /* decode -> encode -> decode */
    uint8_t out[WIRE_BEACON_MAX];
    size_t t2, n2;
    CHECK(wire_beacon_encode(&b, out, sizeof out, &t2) == 0);
    CHECK(wire_beacon_append_tag(out, sizeof out, t2, b.tag, &n2) == 0);
    CHECK(n2 <= size);
    wire_beacon again;
    size_t t3;
    CHECK(wire_beacon_decode(out, n2, &again, &t3) == 0);
    CHECK(t3 == t2 && same_fields(&b, &again));

    /* The encoding is a fixed point. */
    uint8_t out2[WIRE_BEACON_MAX];
    size_t t4;
    CHECK(wire_beacon_encode(&again, out2, sizeof out2, &t4) == 0);
    CHECK(t4 == t2 && memcmp(out, out2, t2) == 0);
    return 0;
}
