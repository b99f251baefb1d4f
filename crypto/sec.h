/* crypto/sec.h: constants and set-up shared by the crypto module.
 *
 * crypto/ holds keys, the Noise handshake and the transport cipher. It is
 * libsodium only: no sockets, no libuv, no clock of its own. Every function
 * returns 0 or a negative errno: -EINVAL bad argument, -ENOMEM, -EMSGSIZE
 * over a limit, -EPROTO malformed or out of state, -EACCES authentication
 * failed. */
#ifndef CONFAB_CRYPTO_SEC_H
#define CONFAB_CRYPTO_SEC_H

#include <stddef.h>
#include <stdint.h>

#define SEC_KEY_BYTES        32u /* X25519 keys, network key, cipher keys */
#define SEC_AEAD_TAG_BYTES   16u /* ChaCha20-Poly1305 tag */
#define SEC_HASH_BYTES       64u /* BLAKE2b, Noise HASHLEN */
#define SEC_BEACON_TAG_BYTES 16u /* keyed BLAKE2b beacon tag */

/* Initializes libsodium. Safe to call many times and from many nodes.
 * Returns 0, or -ENOSYS if libsodium cannot be initialized. */
__attribute__((warn_unused_result)) int sec_init(void);

/* Fills buf with len random bytes from libsodium. */
void sec_random(void *buf, size_t len);

#define SEC_CHECKSUM_BYTES 16u

/* An unkeyed BLAKE2b-128 of the concatenation of a[0..alen) and
 * b[0..blen) (b may be NULL when blen is 0): a checksum that catches
 * damage on disk, not an attacker. */
void sec_checksum(const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[static SEC_CHECKSUM_BYTES]);

#define SEC_SHORTHASH_KEY_BYTES 16u

/* A keyed 64-bit hash of in[0..len) (SipHash-2-4, libsodium's
 * crypto_shorthash): for hash tables whose keys a peer chooses, so that it
 * cannot pick keys that collide without knowing key. Not a MAC. */
uint64_t sec_shorthash(const uint8_t key[static SEC_SHORTHASH_KEY_BYTES],
                       const void *in, size_t len);

#define SEC_ID_BYTES 16u

/* A 128-bit keyed PRF of a counter (SipHash-2-4 with 128-bit output,
 * libsodium's crypto_shorthash_siphashx24): unpredictable ids without a
 * random draw each. Distinct counters under one key give ids that collide
 * with probability about 2^-128 a pair. */
void sec_id128(const uint8_t key[static SEC_SHORTHASH_KEY_BYTES], uint64_t ctr,
               uint8_t out[static SEC_ID_BYTES]);

#endif
