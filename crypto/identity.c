/* crypto/identity.c: a node's X25519 identity key pair, in memory and in
 * its file. */
#include "crypto/identity.h"
#include "crypto/keyfile.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The key bytes of an identity file: the secret key, then the public key.
 * The public key is redundant; keeping it lets a damaged file be told from a
 * good one even when its checksum was recomputed. */
static const sec__keyfile_kind identity_file = {
    .magic = {'C', 'F', 'I', 'D'},
    .what = "identity file",
    .key_len = 2 * SEC_KEY_BYTES,
    .missing = "run 'confab init' to make a new identity, or check --home",
    .recover = "restore it from a backup or remove it to make a new identity "
               "(the node id will change)",
};

static int alloc_identity(sec_identity **out)
{
    sec_identity *id;
    int rc = sec_init();

    if (rc < 0)
        return rc;
    id = calloc(1, sizeof *id);
    if (id == NULL)
        return -ENOMEM;
    id->sk = sodium_malloc(SEC_KEY_BYTES);
    if (id->sk == NULL) {
        free(id);
        return -ENOMEM;
    }
    *out = id;
    return 0;
}

int sec_identity_generate(sec_identity **out)
{
    sec_identity *id;
    int rc = alloc_identity(&id);

    if (rc < 0)
        return rc;
    (void)crypto_box_keypair(id->pk, id->sk);
    *out = id;
    return 0;
}

int sec_identity_from_secret(const uint8_t sk[static SEC_KEY_BYTES],
                             sec_identity **out)
{
    sec_identity *id;
    int rc = alloc_identity(&id);

    if (rc < 0)
        return rc;
    memcpy(id->sk, sk, SEC_KEY_BYTES);
    /* crypto_scalarmult_base() refuses a scalar whose public key would be
     * the all-zero point. */
    if (crypto_scalarmult_base(id->pk, id->sk) != 0) {
        sec_identity_free(id);
        return -EINVAL;
    }
    *out = id;
    return 0;
}

void sec_identity_free(sec_identity *id)
{
    if (id == NULL)
        return;
    sodium_free(id->sk); /* wipes before unmapping */
    free(id);
}

int sec_identity_save(const sec_identity *id, const char *path, char *err,
                      size_t errlen)
{
    uint8_t key[2 * SEC_KEY_BYTES];
    int rc;

    memcpy(key, id->sk, SEC_KEY_BYTES);
    memcpy(key + SEC_KEY_BYTES, id->pk, SEC_KEY_BYTES);
    rc = sec__keyfile_save(&identity_file, key, path, err, errlen);
    sodium_memzero(key, sizeof key);
    return rc;
}

int sec_identity_load(const char *path, sec_identity **out, char *err,
                      size_t errlen)
{
    uint8_t key[2 * SEC_KEY_BYTES];
    sec_identity *id = NULL;
    int rc;

    rc = sec__keyfile_load(&identity_file, path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = sec_identity_from_secret(key, &id);
    if (rc == -EINVAL) {
        rc = -EPROTO;
        sec__keyfile_error(err, errlen,
                           "identity file %s holds an unusable secret key; %s",
                           path, identity_file.recover);
        goto out;
    }
    if (rc < 0) {
        sec__keyfile_error(err, errlen,
                           "cannot load identity file %s: out "
                           "of memory",
                           path);
        goto out;
    }
    /* memcmp: both are public keys. */
    if (memcmp(id->pk, key + SEC_KEY_BYTES, SEC_KEY_BYTES) != 0) {
        rc = -EPROTO;
        sec__keyfile_error(err, errlen,
                           "identity file %s is corrupted (its public key does "
                           "not match its secret key); %s",
                           path, identity_file.recover);
        goto out;
    }
    *out = id;
    id = NULL;
    rc = 0;

out:
    sec_identity_free(id);
    sodium_memzero(key, sizeof key);
    return rc;
}
