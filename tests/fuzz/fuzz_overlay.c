/* fuzz_overlay.c: an overlay message (docs/PROTOCOL.md section 15) from a
 * member: HyParView, Plumtree and SWIM, t 30 to 32.
 *
 * Properties:
 *   - wire_ovl_decode() accepts only what wire_mp_check() accepts, and its
 *     lists stay within their bounds;
 *   - a decoded message encodes again (its values are within the limits),
 *     that encoding decodes, and encoding it again gives the same bytes
 *     (the encoder is canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[WIRE_MAX_FRAME], b[WIRE_MAX_FRAME];
    wire_ovl m, m2;
    size_t alen, blen;
    if (wire_ovl_decode(data, size, &m) != 0)
        return 0;
    CHECK(wire_mp_check(data, size, WIRE_MAX_DEPTH) == 0);
    CHECK(m.nids <= WIRE_OVL_MAX_IDS && m.nih <= WIRE_OVL_MAX_IHAVE &&
          m.nup <= WIRE_OVL_MAX_UPD && m.ttl <= WIRE_OVL_MAX_TTL);
    CHECK(wire_ovl_encode(&m, a, sizeof a, &alen) == 0);
    CHECK(wire_ovl_decode(a, alen, &m2) == 0);
    CHECK(m2.t == m.t && m2.op == m.op);
    CHECK(wire_ovl_encode(&m2, b, sizeof b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    return 0;
}
