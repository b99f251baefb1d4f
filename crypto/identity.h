/* crypto/identity.h: a node's identity, an X25519 key pair.
 *
 * The public key is the node id. The secret key lives in sodium_malloc
 * memory (guard pages, locked, wiped on free). On disk the key pair is one
 * file, mode 0600, written atomically (temp file, fsync, rename, fsync of
 * the directory); its format is in docs/SECURITY.md. */
#ifndef CONFAB_CRYPTO_IDENTITY_H
#define CONFAB_CRYPTO_IDENTITY_H

#include "crypto/sec.h"

typedef struct sec_identity {
    uint8_t pk[SEC_KEY_BYTES]; /* public: the node id */
    uint8_t *sk;               /* secret: SEC_KEY_BYTES, sodium_malloc */
} sec_identity;

/* Makes a new random identity (crypto_box_keypair). *out is owned by the
 * caller: release it with sec_identity_free(). Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int
sec_identity_generate(sec_identity **out);

/* Makes the identity whose secret key is sk (the public key is derived).
 * Used for reproducible identities in tests. Returns 0, -ENOMEM, or -EINVAL
 * if sk gives a weak key. */
__attribute__((warn_unused_result)) int
sec_identity_from_secret(const uint8_t sk[static SEC_KEY_BYTES],
                         sec_identity **out);

/* Wipes and frees id. NULL is fine. */
void sec_identity_free(sec_identity *id);

/* Writes id to path atomically with mode 0600. Returns 0 or a negative
 * errno; on failure a sentence saying what went wrong and what to do is
 * written to err[0..errlen). */
__attribute__((warn_unused_result)) int
sec_identity_save(const sec_identity *id, const char *path, char *err,
                  size_t errlen);

/* Reads an identity from path. Refuses (-EACCES) a file that group or
 * others may read or write, like ssh, and a file of the wrong size, magic,
 * checksum or a public key that does not match the secret (-EPROTO). A
 * missing file is -ENOENT. On failure err holds a sentence for a person:
 * what is wrong and how to fix it. */
__attribute__((warn_unused_result)) int sec_identity_load(const char *path,
                                                          sec_identity **out,
                                                          char *err,
                                                          size_t errlen);

#endif
