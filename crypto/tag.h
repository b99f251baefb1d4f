/* crypto/tag.h: the beacon tag, keyed BLAKE2b with a 16-byte output under
 * the network key (docs/PROTOCOL.md section 6). */
#ifndef CONFAB_CRYPTO_TAG_H
#define CONFAB_CRYPTO_TAG_H

#include "crypto/sec.h"

/* Computes the tag of msg[0..len) under key. */
void sec_beacon_tag(const uint8_t key[static SEC_KEY_BYTES], const uint8_t *msg,
                    size_t len, uint8_t tag[static SEC_BEACON_TAG_BYTES]);

/* Returns 0 if tag is msg's tag under key, else -EACCES. Compares in
 * constant time (sodium_memcmp: the tag is derived from a secret). */
__attribute__((warn_unused_result)) int
sec_beacon_verify(const uint8_t key[static SEC_KEY_BYTES], const uint8_t *msg,
                  size_t len, const uint8_t tag[static SEC_BEACON_TAG_BYTES]);

#endif
