/* test_cipher.c: the transport cipher. The counter nonce makes every
 * message's position part of its authentication; any failure is final. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "crypto/cipher.h"

#define TAG SEC_AEAD_TAG_BYTES

static const uint8_t key[SEC_KEY_BYTES] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

typedef struct duplex {
    sec_cipher send;
    sec_cipher recv;
} duplex;

static void duplex_init(duplex *l)
{
    sec_cipher_init(&l->send, key);
    sec_cipher_init(&l->recv, key);
}

static size_t seal(duplex *l, const char *text, uint8_t *ct)
{
    size_t len = strlen(text);
    assert_int_equal(
        sec_cipher_encrypt(&l->send, NULL, 0, (const uint8_t *)text, len, ct),
        0);
    return len + TAG;
}

/* After a failure the receiving state refuses even a good message. */
static void assert_refuses(sec_cipher *c)
{
    uint8_t ct[64], pt[64];
    sec_cipher fresh;

    sec_cipher_init(&fresh, key);
    assert_int_equal(
        sec_cipher_encrypt(&fresh, NULL, 0, (const uint8_t *)"x", 1, ct), 0);
    assert_int_equal(sec_cipher_decrypt(c, NULL, 0, ct, 1 + TAG, pt), -EPROTO);
    assert_int_equal(sec_cipher_encrypt(c, NULL, 0, pt, 1, ct), -EPROTO);
    sec_cipher_wipe(&fresh);
}

static void test_cipher_round_trip(void **state)
{
    uint8_t ct[128], pt[128];
    duplex l;
    (void)state;

    duplex_init(&l);
    for (int i = 0; i < 5; i++) {
        size_t n = seal(&l, "the same text five times", ct);
        assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt), 0);
        assert_memory_equal(pt, "the same text five times", n - TAG);
    }
    assert_int_equal(l.send.n, 5);
    assert_int_equal(l.recv.n, 5);
    /* The empty message is a bare tag. */
    assert_int_equal(seal(&l, "", ct), TAG);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, TAG, pt), 0);
}

/* Noise's nonce is 4 zero bytes then the little-endian counter: check one
 * message against libsodium called directly. */
static void test_cipher_nonce_is_noise_counter(void **state)
{
    uint8_t ct[64], want[64], nonce[12] = {0};
    unsigned long long wlen;
    sec_cipher c;
    (void)state;

    sec_cipher_init(&c, key);
    c.n = 0x0102030405060708u;
    assert_int_equal(sec_cipher_encrypt(&c, (const uint8_t *)"ad", 2,
                                        (const uint8_t *)"hi", 2, ct),
                     0);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(0x08 - i);
    crypto_aead_chacha20poly1305_ietf_encrypt(
        want, &wlen, (const uint8_t *)"hi", 2, (const uint8_t *)"ad", 2, NULL,
        nonce, key);
    assert_int_equal(wlen, 2 + TAG);
    assert_memory_equal(ct, want, 2 + TAG);
    assert_int_equal(c.n, 0x0102030405060709u);
}

static void test_cipher_tampered_byte_fails(void **state)
{
    uint8_t ct[64], pt[64];
    (void)state;

    for (size_t at = 0; at < 5 + TAG; at++) {
        duplex l;
        duplex_init(&l);
        size_t n = seal(&l, "hello", ct);
        ct[at] ^= 0x20;
        assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt),
                         -EACCES);
        assert_true(l.recv.failed);
        assert_refuses(&l.recv);
    }
}

static void test_cipher_wrong_ad_fails(void **state)
{
    uint8_t ct[64], pt[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    assert_int_equal(sec_cipher_encrypt(&l.send, (const uint8_t *)"ad1", 3,
                                        (const uint8_t *)"hello", 5, ct),
                     0);
    assert_int_equal(
        sec_cipher_decrypt(&l.recv, (const uint8_t *)"ad2", 3, ct, 5 + TAG, pt),
        -EACCES);
    assert_refuses(&l.recv);
}

static void test_cipher_replayed_message_fails(void **state)
{
    uint8_t ct[64], pt[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    size_t n = seal(&l, "pay alice 10", ct);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt), 0);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt), -EACCES);
    assert_refuses(&l.recv);
}

static void test_cipher_reordered_messages_fail(void **state)
{
    uint8_t first[64], second[64], pt[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    size_t n1 = seal(&l, "first", first);
    size_t n2 = seal(&l, "second", second);
    (void)n1;
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, second, n2, pt),
                     -EACCES);
    assert_refuses(&l.recv);
}

static void test_cipher_dropped_message_fails(void **state)
{
    uint8_t ct[64], pt[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    (void)seal(&l, "lost", ct);
    size_t n = seal(&l, "next", ct);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt), -EACCES);
}

static void test_cipher_truncated_message_fails(void **state)
{
    uint8_t ct[64], pt[64];
    (void)state;

    /* Cut anywhere: shorter than a tag is -EPROTO, otherwise -EACCES. */
    for (size_t cut = 0; cut < 5 + TAG; cut++) {
        duplex l;
        duplex_init(&l);
        (void)seal(&l, "hello", ct);
        int want = cut < TAG ? -EPROTO : -EACCES;
        assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, cut, pt),
                         want);
        assert_true(l.recv.failed);
        assert_refuses(&l.recv);
    }
}

static void test_cipher_nonce_exhaustion(void **state)
{
    uint8_t ct[64], pt[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    l.send.n = UINT64_MAX - 1;
    l.recv.n = UINT64_MAX - 1;
    /* The last usable nonce works... */
    size_t n = seal(&l, "last", ct);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt), 0);
    assert_memory_equal(pt, "last", 4);
    /* ...and 2^64-1 is reserved. */
    assert_int_equal(sec_cipher_encrypt(&l.send, NULL, 0,
                                        (const uint8_t *)"one more", 8, ct),
                     -EOVERFLOW);
    assert_int_equal(sec_cipher_encrypt(&l.send, NULL, 0,
                                        (const uint8_t *)"one more", 8, ct),
                     -EPROTO);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, ct, n, pt),
                     -EOVERFLOW);
    assert_refuses(&l.recv);
}

static void test_cipher_in_place(void **state)
{
    static const char text[] = "encrypted where it lies";
    uint8_t buf[64];
    size_t len = sizeof text - 1;
    duplex l;
    (void)state;

    duplex_init(&l);
    memcpy(buf, text, len);
    assert_int_equal(sec_cipher_encrypt(&l.send, NULL, 0, buf, len, buf), 0);
    assert_memory_not_equal(buf, text, len);
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, buf, len + TAG, buf),
                     0);
    assert_memory_equal(buf, text, len);

    /* In place and tampered: fails, and leaves no plaintext behind. */
    memcpy(buf, text, len);
    assert_int_equal(sec_cipher_encrypt(&l.send, NULL, 0, buf, len, buf), 0);
    buf[len] ^= 1;
    assert_int_equal(sec_cipher_decrypt(&l.recv, NULL, 0, buf, len + TAG, buf),
                     -EACCES);
}

static void test_cipher_empty_state_refuses(void **state)
{
    uint8_t ct[64], pt[64];
    sec_cipher c;
    (void)state;

    memset(&c, 0, sizeof c); /* no key */
    memset(pt, 0, sizeof pt);
    assert_int_equal(sec_cipher_encrypt(&c, NULL, 0, pt, 1, ct), -EPROTO);
    memset(ct, 0, sizeof ct);
    assert_int_equal(sec_cipher_decrypt(&c, NULL, 0, ct, TAG, pt), -EPROTO);
}

static void test_cipher_wipe(void **state)
{
    static const uint8_t zero[SEC_KEY_BYTES];
    uint8_t ct[64];
    duplex l;
    (void)state;

    duplex_init(&l);
    sec_cipher_wipe(&l.send);
    assert_memory_equal(l.send.k, zero, SEC_KEY_BYTES);
    assert_false(l.send.has_key);
    assert_true(l.send.failed);
    assert_int_equal(
        sec_cipher_encrypt(&l.send, NULL, 0, (const uint8_t *)"x", 1, ct),
        -EPROTO);
    /* init makes it usable again, from nonce 0. */
    sec_cipher_init(&l.send, key);
    assert_int_equal(l.send.n, 0);
    assert_int_equal(
        sec_cipher_encrypt(&l.send, NULL, 0, (const uint8_t *)"x", 1, ct), 0);
}

/* A plaintext in three pieces (a header and a trailer in the output, a
 * body elsewhere) encrypts to exactly the bytes of the one-call cipher,
 * for every way the pieces fall against the 64-byte blocks (#18: the body
 * goes from the sender's buffer to the wire once, through the cipher). */
static void test_cipher_encrypt_from_matches(void **state)
{
    static uint8_t plain[30000], want[30200], got[30200], pt[30200];
    /* Short bodies are copied; from 16 KiB the middle goes straight. */
    static const size_t lens[] = {0,     1,     5,     63,    64,   65,   127,
                                  128,   129,   200,   1000,  1024, 4095, 5000,
                                  16383, 16384, 16385, 16447, 20000};
    (void)state;
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 131u + 7u);
    for (size_t pre = 0; pre <= 130; pre += (pre < 70 ? 1 : 13))
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (size_t post = 0; post <= 20; post += 7) {
                size_t len = lens[li], total = pre + len + post;
                const uint8_t *body = plain + 7000; /* not in the output */
                sec_cipher a, b;
                sec_cipher_init(&a, key);
                sec_cipher_init(&b, key);
                a.n = b.n = 5 + pre;
                memcpy(pt, plain, pre);
                memcpy(pt + pre, body, len);
                memcpy(pt + pre + len, plain + 300, post);
                assert_int_equal(
                    sec_cipher_encrypt(&a, NULL, 0, pt, total, want), 0);
                memset(got, 0xee, sizeof got);
                memcpy(got, plain, pre);
                memcpy(got + pre + len, plain + 300, post);
                assert_int_equal(
                    sec_cipher_encrypt_from(&b, got, pre, body, len, post), 0);
                assert_memory_equal(got, want, total + TAG);
                assert_int_equal(b.n, a.n);
                /* And it decrypts to the pieces, in order. */
                sec_cipher r;
                sec_cipher_init(&r, key);
                r.n = 5 + pre;
                assert_int_equal(
                    sec_cipher_decrypt(&r, NULL, 0, got, total + TAG, got), 0);
                assert_memory_equal(got, pt, total);
            }
}

static void test_cipher_encrypt_from_refuses_failed(void **state)
{
    uint8_t ct[64] = {0};
    sec_cipher c;
    (void)state;
    sec_cipher_init(&c, key);
    c.n = UINT64_MAX;
    assert_int_equal(
        sec_cipher_encrypt_from(&c, ct, 1, (const uint8_t *)"ab", 2, 0),
        -EOVERFLOW);
    assert_int_equal(
        sec_cipher_encrypt_from(&c, ct, 1, (const uint8_t *)"ab", 2, 0),
        -EPROTO);
}

/* A message opened in pieces of every size, in place or into another
 * buffer, gives the plaintext of the one-call decryption and moves the
 * counter once; a changed byte anywhere fails it and the state. */
static void test_cipher_open_in_pieces(void **state)
{
    static uint8_t plain[70000], ct[70100], out[70100];
    static const size_t lens[] = {1, 63, 64, 65, 1000, 65519};
    static const size_t steps[] = {1, 7, 63, 64, 65, 200, 4096, 70000};
    (void)state;
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 29u + 3u);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++)
            for (int in_place = 0; in_place < 2; in_place++) {
                size_t len = lens[li];
                sec_cipher tx, rx;
                sec_cipher_init(&tx, key);
                sec_cipher_init(&rx, key);
                tx.n = rx.n = 9;
                assert_int_equal(
                    sec_cipher_encrypt(&tx, NULL, 0, plain, len, ct), 0);
                sec_open o;
                assert_int_equal(sec_cipher_open_begin(&rx, &o, len), 0);
                uint8_t *dst = in_place ? ct : out;
                /* Pieces that change size, so every alignment occurs. */
                for (size_t at = 0, k = 0; at < len; k++) {
                    size_t n =
                        steps[(si + k) % (sizeof steps / sizeof steps[0])];
                    if (n > len - at)
                        n = len - at;
                    sec_cipher_open_update(&rx, &o, ct + at, n, dst + at);
                    at += n;
                }
                assert_int_equal(sec_cipher_open_final(&rx, &o, ct + len), 0);
                assert_memory_equal(dst, plain, len);
                assert_int_equal(rx.n, 10);
            }
    /* One bit changed: refused, and the state is failed. */
    sec_cipher tx, rx;
    sec_cipher_init(&tx, key);
    sec_cipher_init(&rx, key);
    assert_int_equal(sec_cipher_encrypt(&tx, NULL, 0, plain, 1000, ct), 0);
    ct[500] ^= 1;
    sec_open o;
    assert_int_equal(sec_cipher_open_begin(&rx, &o, 1000), 0);
    sec_cipher_open_update(&rx, &o, ct, 1000, out);
    assert_int_equal(sec_cipher_open_final(&rx, &o, ct + 1000), -EACCES);
    assert_int_equal(rx.n, 0);
    assert_int_equal(sec_cipher_open_begin(&rx, &o, 10), -EPROTO);
    /* Fewer bytes than announced: refused too. */
    sec_cipher_init(&rx, key);
    ct[500] ^= 1;
    assert_int_equal(sec_cipher_open_begin(&rx, &o, 1000), 0);
    sec_cipher_open_update(&rx, &o, ct, 999, out);
    assert_int_equal(sec_cipher_open_final(&rx, &o, ct + 1000), -EACCES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cipher_round_trip),
        cmocka_unit_test(test_cipher_nonce_is_noise_counter),
        cmocka_unit_test(test_cipher_tampered_byte_fails),
        cmocka_unit_test(test_cipher_wrong_ad_fails),
        cmocka_unit_test(test_cipher_replayed_message_fails),
        cmocka_unit_test(test_cipher_reordered_messages_fail),
        cmocka_unit_test(test_cipher_dropped_message_fails),
        cmocka_unit_test(test_cipher_truncated_message_fails),
        cmocka_unit_test(test_cipher_nonce_exhaustion),
        cmocka_unit_test(test_cipher_in_place),
        cmocka_unit_test(test_cipher_empty_state_refuses),
        cmocka_unit_test(test_cipher_wipe),
        cmocka_unit_test(test_cipher_encrypt_from_matches),
        cmocka_unit_test(test_cipher_encrypt_from_refuses_failed),
        cmocka_unit_test(test_cipher_open_in_pieces),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("cipher", tests, NULL, NULL);
}
