/* gen_keyfile_corpus.c: writes the seed corpus of fuzz_keyfile: an
 * identity file and a network key file as confab saves them (fixed keys),
 * and damaged copies of each.
 *
 * Built with the tests (tests/fuzz/meson.build); the suite runs it into a
 * scratch directory and replays fuzz_keyfile over the result, so it keeps
 * working when the format changes. To regenerate the committed corpus:
 *
 *   ninja -C build && build/tests/fuzz/gen_keyfile_corpus tests/fuzz/corpus/keyfile
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/identity.h"
#include "crypto/netkey.h"

static const char *dir;
static int failed;

static void put(const char *name, const uint8_t *d, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(d, 1, len, f) != len) ||
        fclose(f) != 0) {
        fprintf(stderr, "gen_keyfile_corpus: cannot write %s\n", path);
        failed = 1;
    }
}

static size_t get(const char *name, uint8_t *d, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(d, 1, cap, f) : 0;
    if (f != NULL)
        fclose(f);
    if (n == 0) {
        fprintf(stderr, "gen_keyfile_corpus: cannot read %s\n", path);
        failed = 1;
    }
    return n;
}

/* The checksum again, after a change inside the file. */
static void resum(uint8_t *d, size_t len)
{
    crypto_generichash(d + len - 16, 16, d, len - 16, NULL, 0);
}

/* Damaged copies of the file `name` (len bytes in d). */
static void variants(const char *name, const uint8_t *d, size_t len)
{
    uint8_t v[256];
    char out[128];
    if (len + 1 > sizeof v)
        return;

    snprintf(out, sizeof out, "%s-truncated", name);
    put(out, d, len - 1);
    snprintf(out, sizeof out, "%s-header-only", name);
    put(out, d, 5);

    memcpy(v, d, len);
    v[len] = '\n';
    snprintf(out, sizeof out, "%s-extra-byte", name);
    put(out, v, len + 1);

    memcpy(v, d, len);
    v[len - 1] ^= 1;
    snprintf(out, sizeof out, "%s-bad-sum", name);
    put(out, v, len);

    memcpy(v, d, len);
    v[4] = 2;
    resum(v, len);
    snprintf(out, sizeof out, "%s-version-2", name);
    put(out, v, len);

    /* A flipped key byte under a good checksum: for an identity, a public
     * key that is not the secret key's. */
    memcpy(v, d, len);
    v[len - 17] ^= 0x80;
    resum(v, len);
    snprintf(out, sizeof out, "%s-key-flipped-resummed", name);
    put(out, v, len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_keyfile_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_keyfile_corpus: cannot make %s\n", dir);
        return 1;
    }
    if (sec_init() != 0)
        return 1;

    uint8_t sk[SEC_KEY_BYTES], nk[SEC_KEY_BYTES];
    for (size_t i = 0; i < SEC_KEY_BYTES; i++) {
        sk[i] = (uint8_t)(0x40 + i);
        nk[i] = (uint8_t)(0x80 + i);
    }
    char path[1024], err[512];
    sec_identity *id = NULL;
    sec_netkey *k = NULL;
    snprintf(path, sizeof path, "%s/identity", dir);
    if (sec_identity_from_secret(sk, &id) != 0 ||
        sec_identity_save(id, path, err, sizeof err) != 0) {
        fprintf(stderr, "gen_keyfile_corpus: %s\n", err);
        return 1;
    }
    sec_identity_free(id);
    snprintf(path, sizeof path, "%s/network-key", dir);
    if (sec_netkey_from_bytes(nk, &k) != 0 ||
        sec_netkey_save(k, path, err, sizeof err) != 0) {
        fprintf(stderr, "gen_keyfile_corpus: %s\n", err);
        return 1;
    }
    sec_netkey_free(k);

    uint8_t d[256];
    size_t n = get("identity", d, sizeof d);
    if (n > 16)
        variants("identity", d, n);
    n = get("network-key", d, sizeof d);
    if (n > 16)
        variants("network-key", d, n);
    put("empty", d, 0);
    return failed;
}
