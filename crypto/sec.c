/* crypto/sec.c: libsodium set-up and the module's source of randomness. */
#include "crypto/sec.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int sec_init(void)
{
    /* sodium_init() takes its own lock and returns 1 once it has already
     * run, so every node (and every constructor in crypto/) may call it. */
    if (sodium_init() < 0)
        return -ENOSYS;
    return 0;
}

void sec_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void sec_checksum(const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[static SEC_CHECKSUM_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, SEC_CHECKSUM_BYTES);
    crypto_generichash_update(&st, a, alen);
    if (blen > 0)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, SEC_CHECKSUM_BYTES);
}

uint64_t sec_shorthash(const uint8_t key[static SEC_SHORTHASH_KEY_BYTES],
                       const void *in, size_t len)
{
    _Static_assert(crypto_shorthash_KEYBYTES == SEC_SHORTHASH_KEY_BYTES,
                   "SipHash key size");
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, in, len, key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

void sec_id128(const uint8_t key[static SEC_SHORTHASH_KEY_BYTES], uint64_t ctr,
               uint8_t out[static SEC_ID_BYTES])
{
    _Static_assert(crypto_shorthash_siphashx24_BYTES == SEC_ID_BYTES &&
                       crypto_shorthash_siphashx24_KEYBYTES ==
                           SEC_SHORTHASH_KEY_BYTES,
                   "SipHash-128 sizes");
    uint8_t in[8];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(ctr >> (8 * i));
    crypto_shorthash_siphashx24(out, in, sizeof in, key);
}
