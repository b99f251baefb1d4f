/* test_req.c: the request and reply envelopes (wire/req.c,
 * docs/PROTOCOL.md section 14): the document's examples decode to what its
 * prose says and encode back to the same bytes; every malformed envelope
 * is refused, a stranger's `dd ff ff ff ff` included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "doc_hex.h"
#include "wire/req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *example(const char *name, size_t *len)
{
    uint8_t *b = doc_hex(name, len);
    if (b == NULL) {
        fail_msg("docs/PROTOCOL.md has no valid ```hex %s block", name);
        abort(); /* not reached */
    }
    return b;
}

static void test_req_doc_examples(void **state)
{
    (void)state;
    size_t len, out;
    uint8_t id[16], buf[256];
    memset(id, 0x11, sizeof id);
    uint8_t *b = example("req-request", &len);
    wire_req r;
    assert_int_equal(wire_req_decode(b, len, &r), 0);
    assert_memory_equal(r.id, id, 16);
    assert_int_equal(r.service.len, 4);
    assert_memory_equal(r.service.ptr, "echo", 4);
    assert_int_equal(r.wait_ms, 5000);
    assert_int_equal(r.max_reply, 1000);
    assert_int_equal(r.body.len, 2);
    assert_memory_equal(r.body.ptr, "hi", 2);
    assert_int_equal(wire_req_encode(&r, buf, sizeof buf, &out), 0);
    assert_int_equal(out, len);
    assert_memory_equal(buf, b, len);
    assert_true(out <= wire_req_bound(4, 2));
    free(b);

    b = example("req-reply", &len);
    wire_rep p;
    assert_int_equal(wire_rep_decode(b, len, &p), 0);
    assert_memory_equal(p.id, id, 16);
    assert_int_equal(p.code, WIRE_REP_OK);
    assert_memory_equal(p.body.ptr, "hi", 2);
    assert_int_equal(wire_rep_encode(&p, buf, sizeof buf, &out), 0);
    assert_int_equal(out, len);
    assert_memory_equal(buf, b, len);
    free(b);
}

/* Each is a request map gone wrong in one way. */
static void test_req_malformed_refused(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *hex;
    } bad[] = {
        {"huge map header", "ddffffffff"},
        {"not a map", "93010203"},
        {"empty", ""},
        {"no body", "84a172c41011111111111111111111111111111111a173a46563686f"
                    "a164cd1388a16dcd03e8"},
        {"id of 15 bytes", "85a172c40f111111111111111111111111111111a173a46563"
                           "686fa164cd1388a16dcd03e8a162c4026869"},
        {"empty service", "85a172c41011111111111111111111111111111111a173a0a164"
                          "cd1388a16dcd03e8a162c4026869"},
        {"wait 0", "85a172c41011111111111111111111111111111111a173a46563686f"
                   "a16400a16dcd03e8a162c4026869"},
        {"duplicate key", "86a172c41011111111111111111111111111111111a173a46563"
                          "686fa164cd1388a16dcd03e8a162c4026869a162c4026869"},
        {"body as str", "85a172c41011111111111111111111111111111111a173a46563"
                        "686fa164cd1388a16dcd03e8a162a26869"},
        {"trailing byte", "85a172c41011111111111111111111111111111111a173a46563"
                          "686fa164cd1388a16dcd03e8a162c402686900"},
        {"invalid UTF-8 service",
         "85a172c41011111111111111111111111111111111a173a2c328a164cd1388a16d"
         "cd03e8a162c4026869"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i].hex) / 2;
        uint8_t buf[256];
        for (size_t k = 0; k < n; k++) {
            unsigned v;
            assert_int_equal(sscanf(bad[i].hex + 2 * k, "%2x", &v), 1);
            buf[k] = (uint8_t)v;
        }
        wire_req r;
        wire_rep p;
        if (wire_req_decode(buf, n, &r) != -EPROTO)
            fail_msg("request accepted: %s", bad[i].what);
        if (wire_rep_decode(buf, n, &p) != -EPROTO)
            fail_msg("reply accepted: %s", bad[i].what);
    }
    assert_int_equal(wire_req_decode(NULL, 0, &(wire_req){0}), -EPROTO);
}

static void test_req_encode_checks_limits(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t out;
    char long_name[WIRE_REQ_MAX_SERVICE + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    wire_req r = {
        .service = {(const uint8_t *)long_name, WIRE_REQ_MAX_SERVICE + 1},
        .wait_ms = 1};
    assert_int_equal(wire_req_encode(&r, buf, sizeof buf, &out), -EINVAL);
    r.service.len = WIRE_REQ_MAX_SERVICE;
    r.wait_ms = 0;
    assert_int_equal(wire_req_encode(&r, buf, sizeof buf, &out), -EINVAL);
    r.wait_ms = WIRE_REQ_MAX_WAIT + 1;
    assert_int_equal(wire_req_encode(&r, buf, sizeof buf, &out), -EINVAL);
    r.wait_ms = WIRE_REQ_MAX_WAIT;
    r.max_reply = UINT64_MAX;
    assert_int_equal(wire_req_encode(&r, buf, sizeof buf, &out), 0);
    assert_true(out <= wire_req_bound(WIRE_REQ_MAX_SERVICE, 0));
    assert_int_equal(wire_req_encode(&r, buf, 10, &out), -EMSGSIZE);
    wire_req back;
    assert_int_equal(wire_req_decode(buf, out, &back), -0);
    assert_int_equal(back.max_reply, UINT64_MAX);
    /* Unknown keys are skipped; unknown codes come through for the
     * caller to take as errors. */
    static const uint8_t rep[] = {
        0x84, 0xa1, 'r',  0xc4, 16,   1,  2,    3,   4,   5,    6,
        7,    8,    9,    10,   11,   12, 13,   14,  15,  16,   0xa1,
        'c',  0x63, 0xa1, 'b',  0xc4, 0,  0xa2, 'z', 'z', 0x91, 0xc0};
    wire_rep p;
    assert_int_equal(wire_rep_decode(rep, sizeof rep, &p), 0);
    assert_int_equal(p.code, 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_doc_examples),
        cmocka_unit_test(test_req_malformed_refused),
        cmocka_unit_test(test_req_encode_checks_limits),
    };
    return cmocka_run_group_tests_name("req", tests, NULL, NULL);
}
