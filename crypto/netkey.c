/* crypto/netkey.c: the network key, public or private, in memory and in its
 * file. */
#include "crypto/netkey.h"
#include "crypto/keyfile.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const sec__keyfile_kind netkey_file = {
    .magic = {'C', 'F', 'N', 'K'},
    .what = "network key file",
    .key_len = SEC_KEY_BYTES,
    .missing = "run 'confab init --private-network' to make one, or copy it "
               "from a node of the network",
    .recover = "restore it from a backup or copy it again from a node of the "
               "network",
};

static void public_key(uint8_t key[SEC_KEY_BYTES])
{
    (void)crypto_generichash(key, SEC_KEY_BYTES,
                             (const unsigned char *)SEC_PUBLIC_NETWORK_STRING,
                             sizeof SEC_PUBLIC_NETWORK_STRING - 1, NULL, 0);
}

static int alloc_netkey(sec_netkey **out)
{
    sec_netkey *k;
    int rc = sec_init();

    if (rc < 0)
        return rc;
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->key = sodium_malloc(SEC_KEY_BYTES);
    if (k->key == NULL) {
        free(k);
        return -ENOMEM;
    }
    *out = k;
    return 0;
}

int sec_netkey_public(sec_netkey **out)
{
    sec_netkey *k;
    int rc = alloc_netkey(&k);

    if (rc < 0)
        return rc;
    public_key(k->key);
    k->is_public = 1;
    *out = k;
    return 0;
}

int sec_netkey_generate(sec_netkey **out)
{
    sec_netkey *k;
    int rc = alloc_netkey(&k);

    if (rc < 0)
        return rc;
    sec_random(k->key, SEC_KEY_BYTES);
    k->is_public = 0;
    *out = k;
    return 0;
}

int sec_netkey_from_bytes(const uint8_t key[static SEC_KEY_BYTES],
                          sec_netkey **out)
{
    uint8_t pub[SEC_KEY_BYTES];
    sec_netkey *k;
    int rc = alloc_netkey(&k);

    if (rc < 0)
        return rc;
    memcpy(k->key, key, SEC_KEY_BYTES);
    public_key(pub);
    /* sodium_memcmp: key may be a private network key. */
    k->is_public = sodium_memcmp(pub, key, SEC_KEY_BYTES) == 0;
    sodium_memzero(pub, sizeof pub);
    *out = k;
    return 0;
}

void sec_netkey_free(sec_netkey *k)
{
    if (k == NULL)
        return;
    sodium_free(k->key); /* wipes before unmapping */
    free(k);
}

int sec_netkey_save(const sec_netkey *k, const char *path, char *err,
                    size_t errlen)
{
    return sec__keyfile_save(&netkey_file, k->key, path, err, errlen);
}

int sec_netkey_load(const char *path, sec_netkey **out, char *err,
                    size_t errlen)
{
    uint8_t key[SEC_KEY_BYTES];
    int rc;

    rc = sec__keyfile_load(&netkey_file, path, key, err, errlen);
    if (rc < 0)
        goto out;
    rc = sec_netkey_from_bytes(key, out);
    if (rc < 0)
        sec__keyfile_error(err, errlen,
                           "cannot load network key file %s: out of memory",
                           path);

out:
    sodium_memzero(key, sizeof key);
    return rc;
}
