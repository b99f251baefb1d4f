/* fuzz_req.c: the body of a unicast whose content type says request or
 * reply (docs/PROTOCOL.md section 14): a member controls every byte.
 *
 * Asserts what section 14 promises of an envelope the decoder accepts
 * (and no crash): a request has a service of 1 to 64 bytes of UTF-8 and a
 * wait of 1 ms to a day; decode, encode, decode gives the same fields,
 * and our encoding is never longer than the bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static int same_bytes(wire_bytes a, wire_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_req(const uint8_t *data, size_t size)
{
    wire_req r, back;
    if (wire_req_decode(data, size, &r) != 0)
        return;
    CHECK(r.service.len >= 1 && r.service.len <= WIRE_REQ_MAX_SERVICE);
    CHECK(wire_utf8_valid(r.service.ptr, r.service.len));
    CHECK(r.wait_ms >= 1 && r.wait_ms <= WIRE_REQ_MAX_WAIT);
    size_t cap = wire_req_bound(r.service.len, r.body.len), len;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);
    CHECK(wire_req_encode(&r, buf, cap, &len) == 0);
    CHECK(wire_req_decode(buf, len, &back) == 0);
    CHECK(memcmp(r.id, back.id, WIRE_REQ_ID_BYTES) == 0);
    CHECK(same_bytes(r.service, back.service) && same_bytes(r.body, back.body));
    CHECK(r.wait_ms == back.wait_ms && r.max_reply == back.max_reply);
    free(buf);
}

static void check_rep(const uint8_t *data, size_t size)
{
    wire_rep r, back;
    if (wire_rep_decode(data, size, &r) != 0)
        return;
    size_t cap = wire_rep_bound(r.body.len), len;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);
    CHECK(wire_rep_encode(&r, buf, cap, &len) == 0);
    CHECK(wire_rep_decode(buf, len, &back) == 0);
    CHECK(memcmp(r.id, back.id, WIRE_REQ_ID_BYTES) == 0);
    CHECK(r.code == back.code && same_bytes(r.body, back.body));
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_req(data, size);
    check_rep(data, size);
    return 0;
}
