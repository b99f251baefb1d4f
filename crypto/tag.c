/* crypto/tag.c: the beacon tag, keyed BLAKE2b-128 under the network key. */
#include "crypto/tag.h"

#include <errno.h>
#include <sodium.h>

void sec_beacon_tag(const uint8_t key[static SEC_KEY_BYTES], const uint8_t *msg,
                    size_t len, uint8_t tag[static SEC_BEACON_TAG_BYTES])
{
    /* crypto_generichash() fails only for out-of-range output or key
     * lengths; both are constants here. */
    (void)crypto_generichash(tag, SEC_BEACON_TAG_BYTES, msg, len, key,
                             SEC_KEY_BYTES);
}

int sec_beacon_verify(const uint8_t key[static SEC_KEY_BYTES],
                      const uint8_t *msg, size_t len,
                      const uint8_t tag[static SEC_BEACON_TAG_BYTES])
{
    uint8_t want[SEC_BEACON_TAG_BYTES];
    int rc;

    sec_beacon_tag(key, msg, len, want);
    /* sodium_memcmp: the tag is a MAC under the network key, so comparing
     * it in variable time would let a stranger forge one byte by byte. */
    rc = sodium_memcmp(want, tag, SEC_BEACON_TAG_BYTES) == 0 ? 0 : -EACCES;
    sodium_memzero(want, sizeof want);
    return rc;
}
