/* crypto/cipher.c: a Noise CipherState, ChaCha20-Poly1305 (IETF) with the
 * 64-bit message counter as nonce. Used for the transport messages after
 * Split() and, by noise.c, inside the handshake. */
#include "crypto/cipher.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* Noise section 5.1 reserves n = 2^64-1; a state that reached it is done. */
#define NONCE_MAX UINT64_MAX

/* The ChaChaPoly nonce of Noise section 12.3: 32 bits of zeros followed by
 * the little-endian encoding of n. */
static void
make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES],
           uint64_t n)
{
    memset(nonce, 0, 4);
    for (size_t i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

void sec_cipher_init(sec_cipher *c, const uint8_t k[static SEC_KEY_BYTES])
{
    memcpy(c->k, k, SEC_KEY_BYTES);
    c->n = 0;
    c->has_key = 1;
    c->failed = 0;
}

int sec_cipher_encrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *pt, size_t len, uint8_t *ct)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    if (c->failed || !c->has_key)
        return -EPROTO;
    if (c->n == NONCE_MAX) {
        c->failed = 1;
        return -EOVERFLOW;
    }
    if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return -EMSGSIZE;
    make_nonce(nonce, c->n);
    /* libsodium encrypts in place when ct == pt: the stream cipher is
     * applied first and the tag is written after the ciphertext. */
    (void)crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, pt, len, ad,
                                                    adlen, NULL, nonce, c->k);
    c->n++;
    return 0;
}

int sec_cipher_decrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *ct, size_t len, uint8_t *pt)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    if (c->failed || !c->has_key)
        return -EPROTO;
    if (len < SEC_AEAD_TAG_BYTES) {
        /* A truncated message fails the link like a forged one. */
        c->failed = 1;
        return -EPROTO;
    }
    if (c->n == NONCE_MAX) {
        c->failed = 1;
        return -EOVERFLOW;
    }
    make_nonce(nonce, c->n);
    /* The tag is checked before anything is written to pt, so pt == ct is
     * safe; on failure libsodium zeroes pt. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, len, ad,
                                                  adlen, nonce, c->k) != 0) {
        c->failed = 1;
        return -EACCES;
    }
    c->n++;
    return 0;
}

void sec_cipher_wipe(sec_cipher *c)
{
    sodium_memzero(c->k, sizeof c->k);
    c->n = 0;
    c->has_key = 0;
    c->failed = 1;
}
