/* fuzz_keyfile.c: a key file in the home directory, damaged or planted:
 * the input is the whole file, read as the identity (sec_identity_load)
 * and as the network key (sec_netkey_load), through crypto/keyfile.c.
 *
 * The file is ours and mode 0600 (the loaders refuse others before
 * reading a byte). Properties:
 *   - each loader answers 0 or -EPROTO, and 0 exactly when the file is a
 *     well-formed one of its kind (crypto/keyfile.h): its length, magic,
 *     version 1 and BLAKE2b-128 checksum, and for an identity a public key
 *     that is the secret key's;
 *   - on -EPROTO err holds a sentence (not empty, NUL-terminated);
 *   - a key loaded and saved again gives the same bytes as the input.
 *
 * Seed corpus: tests/fuzz/gen_keyfile_corpus.c (run by the suite too). */
#include <errno.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/identity.h"
#include "crypto/netkey.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

#define SUM 16u

static char in_path[512], out_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sec_init() != 0)
        abort();
    const char *d = fuzz_dir();
    snprintf(in_path, sizeof in_path, "%s/key", d);
    snprintf(out_path, sizeof out_path, "%s/saved", d);
    return 0;
}

/* The oracle: length, magic, version and checksum of crypto/keyfile.h. */
static int well_formed(const uint8_t *d, size_t size, const char *magic,
                       size_t key_len)
{
    uint8_t sum[SUM];
    if (size != 5 + key_len + SUM || memcmp(d, magic, 4) != 0 || d[4] != 1)
        return 0;
    crypto_generichash(sum, SUM, d, size - SUM, NULL, 0);
    return memcmp(sum, d + size - SUM, SUM) == 0;
}

static void check_saved(const uint8_t *data, size_t size)
{
    uint8_t back[256];
    FILE *f = fopen(out_path, "rb");
    CHECK(f != NULL);
    size_t n = fread(back, 1, sizeof back, f);
    fclose(f);
    CHECK(n == size && memcmp(back, data, size) == 0);
    unlink(out_path);
}

static void check_err(int rc, const char *err, size_t cap)
{
    CHECK(rc == -EPROTO);
    CHECK(err[0] != '\0' && strnlen(err, cap) < cap);
}

static void identity(const uint8_t *data, size_t size)
{
    int valid = well_formed(data, size, "CFID", 2 * SEC_KEY_BYTES);
    if (valid) {
        uint8_t pk[SEC_KEY_BYTES];
        valid = crypto_scalarmult_base(pk, data + 5) == 0 &&
                memcmp(pk, data + 5 + SEC_KEY_BYTES, SEC_KEY_BYTES) == 0;
    }
    sec_identity *id = NULL;
    char err[512] = "";
    int rc = sec_identity_load(in_path, &id, err, sizeof err);
    CHECK((rc == 0) == valid);
    if (rc != 0) {
        CHECK(id == NULL);
        check_err(rc, err, sizeof err);
        return;
    }
    CHECK(memcmp(id->pk, data + 5 + SEC_KEY_BYTES, SEC_KEY_BYTES) == 0);
    CHECK(sec_identity_save(id, out_path, err, sizeof err) == 0);
    sec_identity_free(id);
    check_saved(data, size);
}

static void netkey(const uint8_t *data, size_t size)
{
    int valid = well_formed(data, size, "CFNK", SEC_KEY_BYTES);
    sec_netkey *k = NULL;
    char err[512] = "";
    int rc = sec_netkey_load(in_path, &k, err, sizeof err);
    CHECK((rc == 0) == valid);
    if (rc != 0) {
        CHECK(k == NULL);
        check_err(rc, err, sizeof err);
        return;
    }
    CHECK(memcmp(k->key, data + 5, SEC_KEY_BYTES) == 0);
    CHECK(sec_netkey_save(k, out_path, err, sizeof err) == 0);
    sec_netkey_free(k);
    check_saved(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CHECK(fuzz_write_file(in_path, data, size) == 0);
    identity(data, size);
    netkey(data, size);
    return 0;
}
