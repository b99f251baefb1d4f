/* crypto/cipher.h: a Noise CipherState after Split(): the transport cipher
 * of one direction of one link.
 *
 * ChaCha20-Poly1305 (IETF) with the Noise nonce: 32 zero bits followed by
 * the 64-bit little-endian counter. The counter makes every message's
 * position part of its authentication, so a tampered, replayed, reordered
 * or truncated message fails. After any failure the state refuses all
 * further use (-EPROTO): a link whose decryption failed must be closed.
 *
 * The key is per link and short-lived, so it sits in ordinary memory (the
 * struct is embedded in the peer) and is wiped by sec_cipher_wipe(), as the
 * WireGuard kernel module keeps its session keys; see docs/SECURITY.md. */
#ifndef CONFAB_CRYPTO_CIPHER_H
#define CONFAB_CRYPTO_CIPHER_H

#include "crypto/sec.h"

#include <sodium.h>

typedef struct sec_cipher {
    uint8_t k[SEC_KEY_BYTES];
    uint64_t n;  /* next nonce */
    int has_key; /* 0: empty CipherState (passes plaintext through) */
    int failed;  /* sticky */
} sec_cipher;

/* Sets the key and resets the counter. */
void sec_cipher_init(sec_cipher *c, const uint8_t k[static SEC_KEY_BYTES]);

/* Encrypts pt[0..len) into ct[0..len + SEC_AEAD_TAG_BYTES) with associated
 * data ad (may be NULL when adlen is 0). ct may equal pt (in place).
 * Returns 0, -EPROTO if the state has failed or has no key, -EOVERFLOW
 * when the counter is used up (2^64-1 is reserved, as Noise says; the state
 * is then failed), or -EMSGSIZE if len exceeds ChaCha20-Poly1305's limit
 * (about 256 GiB). */
__attribute__((warn_unused_result)) int
sec_cipher_encrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                   const uint8_t *pt, size_t len, uint8_t *ct);

/* Decrypts ct[0..len) (which includes the tag) into pt[0..len - 16).
 * pt may equal ct. Returns 0; -EACCES if authentication fails; -EPROTO if
 * len < 16, or the state has failed or has no key; -EOVERFLOW when the
 * counter is used up. A short message, a failed authentication and a used
 * up counter all leave the state failed. */
__attribute__((warn_unused_result)) int
sec_cipher_decrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                   const uint8_t *ct, size_t len, uint8_t *pt);

/* Encrypts one message whose plaintext lies in two places, into ct: the
 * first pre bytes are ct[0..pre), the next len bytes are src[0..len) (a
 * body that stays where it is: it is read once, by the cipher), and the
 * last post bytes are ct[pre + len .. pre + len + post). ct then holds the
 * ciphertext of that whole plaintext and its tag, exactly as
 * sec_cipher_encrypt() would write it from one contiguous plaintext (the
 * same bytes on the wire), with no associated data. src must not overlap
 * ct. Returns what sec_cipher_encrypt() returns. */
__attribute__((warn_unused_result)) int
sec_cipher_encrypt_from(sec_cipher *c, uint8_t *ct, size_t pre,
                        const uint8_t *src, size_t len, size_t post);

/* Decryption of one message that arrives in pieces (#18: a large
 * fragment read from the socket straight into its final place). begin
 * fixes the ciphertext length (tag excluded); each update authenticates
 * ct[0..n) (the next n bytes) and writes their plaintext to pt (which may
 * equal ct); final checks the tag. Plaintext written before final is
 * unauthenticated: keep it private until final returns 0. The state's
 * counter moves only at final: 0 (the message is authentic), or -EACCES
 * (the state is then failed, as sec_cipher_decrypt leaves it). */
typedef struct sec_open {
    crypto_onetimeauth_poly1305_state st;
    uint8_t nonce[12];
    uint8_t ks[64];    /* the keystream of block ks_block */
    uint64_t ks_block; /* UINT64_MAX: none held */
    size_t pos, len;   /* ciphertext bytes done, and in all */
} sec_open;

/* Returns 0, -EPROTO (the state failed or has no key), -EOVERFLOW (the
 * counter is used up) or -EMSGSIZE. */
__attribute__((warn_unused_result)) int
sec_cipher_open_begin(const sec_cipher *c, sec_open *o, size_t len);
/* n must not exceed what begin announced, less what was done. pt NULL:
 * authenticate the bytes only (a body dropped on the way). */
void sec_cipher_open_update(const sec_cipher *c, sec_open *o, const uint8_t *ct,
                            size_t n, uint8_t *pt);
__attribute__((warn_unused_result)) int
sec_cipher_open_final(sec_cipher *c, sec_open *o,
                      const uint8_t tag[static SEC_AEAD_TAG_BYTES]);

/* Wipes the key and marks the state failed. */
void sec_cipher_wipe(sec_cipher *c);

#endif
