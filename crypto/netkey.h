/* crypto/netkey.h: the network key, which decides who may join.
 *
 * Nodes holding different network keys can neither complete a handshake
 * (it is the Noise psk) nor accept each other's beacons (it keys the tag).
 * With none configured a node uses the public network key, the BLAKE2b-256
 * of "confab public network v1", so a LAN works with zero set-up. The key
 * lives in sodium_malloc memory. */
#ifndef CONFAB_CRYPTO_NETKEY_H
#define CONFAB_CRYPTO_NETKEY_H

#include "crypto/sec.h"

#define SEC_PUBLIC_NETWORK_STRING "confab public network v1"

typedef struct sec_netkey {
    uint8_t *key;  /* SEC_KEY_BYTES, sodium_malloc */
    int is_public; /* 1 for the well-known public network key */
} sec_netkey;

/* The public network key. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int sec_netkey_public(sec_netkey **out);

/* A new random (private) network key. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int sec_netkey_generate(sec_netkey **out);

/* A network key with the given bytes (is_public is set when they equal the
 * public key). Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int
sec_netkey_from_bytes(const uint8_t key[static SEC_KEY_BYTES],
                      sec_netkey **out);

/* Wipes and frees k. NULL is fine. */
void sec_netkey_free(sec_netkey *k);

/* Save and load, with the same rules and error reporting as the identity
 * (crypto/identity.h): mode 0600, atomic, refused when readable by others,
 * size/magic/checksum checked. */
__attribute__((warn_unused_result)) int sec_netkey_save(const sec_netkey *k,
                                                        const char *path,
                                                        char *err,
                                                        size_t errlen);
__attribute__((warn_unused_result)) int
sec_netkey_load(const char *path, sec_netkey **out, char *err, size_t errlen);

#endif
