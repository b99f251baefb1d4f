/* test_tag.c: the beacon tag, keyed BLAKE2b-128 under the network key.
 * The known answers were computed independently with Python's
 * hashlib.blake2b(msg, key=key, digest_size=16). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "crypto/netkey.h"
#include "crypto/sec.h"
#include "crypto/tag.h"

static void key_0_to_31(uint8_t key[SEC_KEY_BYTES])
{
    for (unsigned i = 0; i < SEC_KEY_BYTES; i++)
        key[i] = (uint8_t)i;
}

static void from_hex(const char *hex, uint8_t *out, size_t want)
{
    size_t len = 0;
    assert_int_equal(
        sodium_hex2bin(out, want, hex, strlen(hex), NULL, &len, NULL), 0);
    assert_int_equal(len, want);
}

static void test_tag_known_answers(void **state)
{
    uint8_t key[SEC_KEY_BYTES], msg[64], tag[SEC_BEACON_TAG_BYTES],
        want[SEC_BEACON_TAG_BYTES];
    (void)state;

    key_0_to_31(key);
    sec_beacon_tag(key, NULL, 0, tag);
    from_hex("3daf97bce7888fd59773c66bf647459c", want, sizeof want);
    assert_memory_equal(tag, want, sizeof want);

    for (unsigned i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    sec_beacon_tag(key, msg, sizeof msg, tag);
    from_hex("d70096919189ec3b386b4de2e4cf86d4", want, sizeof want);
    assert_memory_equal(tag, want, sizeof want);
}

/* The example beacon of docs/PROTOCOL.md section 6 (node id 00..1f, port
 * 47000, name "alpha", boot 3), everything before its tag, under the
 * public network key. */
static void test_tag_known_answer_public_network(void **state)
{
    static const char beacon_hex[] =
        "97a6636f6e66616201c420000102030405060708090a0b0c0d0e0f1011121314151617"
        "18191a1b1c1d1e1fcdb798a5616c70686103";
    uint8_t msg[53], tag[SEC_BEACON_TAG_BYTES], want[SEC_BEACON_TAG_BYTES];
    sec_netkey *pub;
    (void)state;

    from_hex(beacon_hex, msg, sizeof msg);
    from_hex("0b8e468f7bf8d26dde95844f8f3947ff", want, sizeof want);
    assert_int_equal(sec_netkey_public(&pub), 0);
    sec_beacon_tag(pub->key, msg, sizeof msg, tag);
    assert_memory_equal(tag, want, sizeof want);
    assert_int_equal(sec_beacon_verify(pub->key, msg, sizeof msg, want), 0);
    sec_netkey_free(pub);
}

static void test_tag_verify_ok(void **state)
{
    uint8_t key[SEC_KEY_BYTES], tag[SEC_BEACON_TAG_BYTES];
    static const uint8_t msg[] = "a beacon";
    (void)state;

    key_0_to_31(key);
    sec_beacon_tag(key, msg, sizeof msg, tag);
    assert_int_equal(sec_beacon_verify(key, msg, sizeof msg, tag), 0);
    sec_beacon_tag(key, NULL, 0, tag);
    assert_int_equal(sec_beacon_verify(key, NULL, 0, tag), 0);
}

static void test_tag_wrong_key_fails(void **state)
{
    uint8_t key[SEC_KEY_BYTES], tag[SEC_BEACON_TAG_BYTES];
    static const uint8_t msg[] = "a beacon";
    (void)state;

    key_0_to_31(key);
    sec_beacon_tag(key, msg, sizeof msg, tag);
    for (unsigned i = 0; i < SEC_KEY_BYTES; i++) {
        key[i] ^= 0x01;
        assert_int_equal(sec_beacon_verify(key, msg, sizeof msg, tag), -EACCES);
        key[i] ^= 0x01;
    }
}

static void test_tag_flipped_bit_fails(void **state)
{
    uint8_t key[SEC_KEY_BYTES], tag[SEC_BEACON_TAG_BYTES];
    uint8_t msg[] = "a beacon";
    (void)state;

    key_0_to_31(key);
    sec_beacon_tag(key, msg, sizeof msg, tag);
    /* Any bit of the message... */
    for (size_t bit = 0; bit < 8 * sizeof msg; bit++) {
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sec_beacon_verify(key, msg, sizeof msg, tag), -EACCES);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* ...or of the tag. */
    for (size_t bit = 0; bit < 8 * sizeof tag; bit++) {
        tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sec_beacon_verify(key, msg, sizeof msg, tag), -EACCES);
        tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(sec_beacon_verify(key, msg, sizeof msg, tag), 0);
}

static void test_tag_wrong_length_fails(void **state)
{
    uint8_t key[SEC_KEY_BYTES], tag[SEC_BEACON_TAG_BYTES];
    uint8_t msg[16] = "a beacon";
    (void)state;

    key_0_to_31(key);
    sec_beacon_tag(key, msg, 8, tag);
    assert_int_equal(sec_beacon_verify(key, msg, 7, tag), -EACCES);
    assert_int_equal(sec_beacon_verify(key, msg, 9, tag), -EACCES);
    assert_int_equal(sec_beacon_verify(key, msg, 0, tag), -EACCES);
    assert_int_equal(sec_beacon_verify(key, msg, 8, tag), 0);
}

/* sec_checksum: BLAKE2b-128, the same over one buffer or two halves
 * (the expected value is Python's hashlib.blake2b(..., digest_size=16)). */
static void test_tag_checksum_known_answer(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0xae, 0x67, 0x0a, 0xeb, 0x00, 0xb9,
                                     0x57, 0x24, 0x8d, 0xac, 0x1d, 0x20,
                                     0xf5, 0x83, 0x54, 0xfd};
    const char *s = "confab store record";
    uint8_t a[16], b[16];
    sec_checksum(s, strlen(s), NULL, 0, a);
    assert_memory_equal(a, want, 16);
    sec_checksum(s, 7, s + 7, strlen(s) - 7, b);
    assert_memory_equal(b, want, 16);
    sec_checksum("confab store recorD", strlen(s), NULL, 0, b);
    assert_memory_not_equal(b, want, 16);
}

/* sec_shorthash: SipHash-2-4 (the reference implementation's first two
 * vectors: key 00..0f, messages "" and 00), keyed: ids that share their
 * first bytes, which an unkeyed hash of those bytes would put in one
 * slot, hash apart, and another key gives another hash. */
static void test_tag_shorthash_keyed(void **state)
{
    (void)state;
    uint8_t key[SEC_SHORTHASH_KEY_BYTES];
    for (unsigned i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    uint8_t zero = 0;
    assert_true(sec_shorthash(key, &zero, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(sec_shorthash(key, &zero, 1) == 0x74f839c593dc67fdull);
    uint8_t a[32] = {0}, b[32] = {0};
    b[31] = 1;
    assert_true(sec_shorthash(key, a, 32) != sec_shorthash(key, b, 32));
    uint64_t h = sec_shorthash(key, a, 32);
    key[0] ^= 1;
    assert_true(sec_shorthash(key, a, 32) != h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tag_checksum_known_answer),
        cmocka_unit_test(test_tag_shorthash_keyed),
        cmocka_unit_test(test_tag_known_answers),
        cmocka_unit_test(test_tag_known_answer_public_network),
        cmocka_unit_test(test_tag_verify_ok),
        cmocka_unit_test(test_tag_wrong_key_fails),
        cmocka_unit_test(test_tag_flipped_bit_fails),
        cmocka_unit_test(test_tag_wrong_length_fails),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("tag", tests, NULL, NULL);
}
