/* test_netkey.c: the network key, public or private, and its file.
 *
 * The file is "CFNK", version 1, the 32-byte key, and the BLAKE2b-128 of
 * the 37 bytes before it: 53 bytes, mode 0600. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "crypto/identity.h"
#include "crypto/netkey.h"
#include "tmpdir.h"

#define FILE_LEN 53
#define SUM_AT   37

/* BLAKE2b-256 of "confab public network v1", computed independently with
 * Python's hashlib.blake2b(s, digest_size=32). */
static const char public_hex[] =
    "7dff18f2817a3ae1aa7985e15ea7c833c1bec90ba786dd31ae94e8b73d2f9050";

static void assert_contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        fail_msg("\"%s\"\ndoes not contain \"%s\"", s, part);
}

static sec_netkey *saved(tmpdir *t)
{
    sec_netkey *k;
    char err[512] = "";

    assert_int_equal(sec_netkey_generate(&k), 0);
    assert_int_equal(
        sec_netkey_save(k, tmpdir_file(t, "netkey"), err, sizeof err), 0);
    return k;
}

static void load_fails(tmpdir *t, int rc, char *err, size_t errlen)
{
    sec_netkey *k = NULL;

    err[0] = '\0';
    assert_int_equal(sec_netkey_load(t->path, &k, err, errlen), rc);
    assert_null(k);
    assert_contains(err, t->path);
}

static void fix_checksum(unsigned char *buf)
{
    crypto_generichash(buf + SUM_AT, 16, buf, SUM_AT, NULL, 0);
}

static void test_netkey_public_value(void **state)
{
    uint8_t want[SEC_KEY_BYTES], direct[SEC_KEY_BYTES];
    size_t len;
    sec_netkey *k;
    (void)state;

    assert_int_equal(sodium_hex2bin(want, sizeof want, public_hex,
                                    sizeof public_hex - 1, NULL, &len, NULL),
                     0);
    assert_int_equal(len, SEC_KEY_BYTES);
    crypto_generichash(direct, sizeof direct,
                       (const unsigned char *)"confab public network v1", 24,
                       NULL, 0);
    assert_memory_equal(direct, want, SEC_KEY_BYTES);
    assert_int_equal(sec_netkey_public(&k), 0);
    assert_true(k->is_public);
    assert_memory_equal(k->key, want, SEC_KEY_BYTES);
    sec_netkey_free(k);
    sec_netkey_free(NULL);
}

static void test_netkey_generate_is_private_and_random(void **state)
{
    sec_netkey *a, *b;
    (void)state;

    assert_int_equal(sec_netkey_generate(&a), 0);
    assert_int_equal(sec_netkey_generate(&b), 0);
    assert_false(a->is_public);
    assert_false(b->is_public);
    assert_int_not_equal(sodium_memcmp(a->key, b->key, SEC_KEY_BYTES), 0);
    sec_netkey_free(a);
    sec_netkey_free(b);
}

static void test_netkey_from_bytes(void **state)
{
    uint8_t bytes[SEC_KEY_BYTES];
    size_t len;
    sec_netkey *k;
    (void)state;

    assert_int_equal(sodium_hex2bin(bytes, sizeof bytes, public_hex,
                                    sizeof public_hex - 1, NULL, &len, NULL),
                     0);
    assert_int_equal(sec_netkey_from_bytes(bytes, &k), 0);
    assert_true(k->is_public);
    assert_memory_equal(k->key, bytes, SEC_KEY_BYTES);
    sec_netkey_free(k);

    bytes[31] ^= 1;
    assert_int_equal(sec_netkey_from_bytes(bytes, &k), 0);
    assert_false(k->is_public);
    assert_memory_equal(k->key, bytes, SEC_KEY_BYTES);
    sec_netkey_free(k);
}

static void test_netkey_save_load_round_trip(void **state)
{
    tmpdir *t = *state;
    char err[512] = "";
    sec_netkey *k = saved(t), *back = NULL, *pub, *pub_back = NULL;
    struct stat st;

    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, FILE_LEN);
    assert_int_equal(sec_netkey_load(t->path, &back, err, sizeof err), 0);
    assert_int_equal(sodium_memcmp(back->key, k->key, SEC_KEY_BYTES), 0);
    assert_false(back->is_public);
    assert_int_equal(tmpdir_count(t), 1); /* no temp file left */

    /* The public key saved and loaded is still known as public. */
    assert_int_equal(sec_netkey_public(&pub), 0);
    assert_int_equal(sec_netkey_save(pub, t->path, err, sizeof err), 0);
    assert_int_equal(sec_netkey_load(t->path, &pub_back, err, sizeof err), 0);
    assert_true(pub_back->is_public);
    assert_int_equal(tmpdir_count(t), 1);
    sec_netkey_free(k);
    sec_netkey_free(back);
    sec_netkey_free(pub);
    sec_netkey_free(pub_back);
}

static void test_netkey_file_format(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[128], sum[16];
    sec_netkey *k = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    assert_memory_equal(buf, "CFNK", 4);
    assert_int_equal(buf[4], 1);
    assert_int_equal(sodium_memcmp(buf + 5, k->key, SEC_KEY_BYTES), 0);
    crypto_generichash(sum, sizeof sum, buf, SUM_AT, NULL, 0);
    assert_memory_equal(buf + SUM_AT, sum, sizeof sum);
    sec_netkey_free(k);
}

static void test_netkey_load_refuses_open_modes(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0666};
    tmpdir *t = *state;
    char err[512], want[300], mode[16];
    sec_netkey *k = saved(t);

    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(t->path, modes[i]), 0);
        load_fails(t, -EACCES, err, sizeof err);
        snprintf(mode, sizeof mode, "%04o", (unsigned)modes[i]);
        assert_contains(err, mode);
        snprintf(want, sizeof want, "chmod 600 %s", t->path);
        assert_contains(err, want);
    }
    sec_netkey_free(k);
}

static void test_netkey_load_missing_is_enoent(void **state)
{
    tmpdir *t = *state;
    char err[512];

    tmpdir_file(t, "netkey");
    load_fails(t, -ENOENT, err, sizeof err);
    assert_contains(err, "does not exist");
}

static void test_netkey_load_refuses_short_and_long(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[128];
    char err[512];
    sec_netkey *k = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    assert_int_equal(file_write(t->path, buf, FILE_LEN - 1), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "too short (52 bytes, expected 53)");
    assert_contains(err, "restore it from a backup or copy it again");
    assert_int_equal(file_write(t->path, buf, 0), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "too short");
    buf[FILE_LEN] = 0;
    assert_int_equal(file_write(t->path, buf, FILE_LEN + 1), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "too long");
    sec_netkey_free(k);
}

static void test_netkey_load_refuses_wrong_magic(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[128];
    char err[512];
    sec_netkey *k = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    memcpy(buf, "CFID", 4);
    fix_checksum(buf);
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "is not a confab network key file");
    sec_netkey_free(k);
}

/* An identity file given where the network key belongs. */
static void test_netkey_load_refuses_identity_file(void **state)
{
    tmpdir *t = *state;
    char err[512];
    sec_identity *id;

    assert_int_equal(sec_identity_generate(&id), 0);
    assert_int_equal(
        sec_identity_save(id, tmpdir_file(t, "identity"), err, sizeof err), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "is not a confab network key file");
    sec_identity_free(id);
}

static void test_netkey_load_refuses_bad_checksum(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[128];
    char err[512];
    sec_netkey *k = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    for (size_t at = 4; at < FILE_LEN; at++) {
        buf[at] ^= 0x10;
        assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
        load_fails(t, -EPROTO, err, sizeof err);
        /* The version byte is checked before the checksum. */
        assert_contains(err, at == 4 ? "format version"
                                     : "is corrupted (checksum mismatch)");
        buf[at] ^= 0x10;
    }
    sec_netkey_free(k);
}

static void test_netkey_save_failure_leaves_nothing(void **state)
{
    tmpdir *t = *state;
    char err[512] = "";
    sec_netkey *k;

    assert_int_equal(sec_netkey_generate(&k), 0);
    assert_int_equal(
        sec_netkey_save(k, tmpdir_file(t, "missing/netkey"), err, sizeof err),
        -ENOENT);
    assert_contains(err, "cannot write network key file");
    assert_int_equal(sec_netkey_save(k, "", err, sizeof err), -EINVAL);
    assert_int_equal(tmpdir_count(t), 0);
    sec_netkey_free(k);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netkey_public_value),
        cmocka_unit_test(test_netkey_generate_is_private_and_random),
        cmocka_unit_test(test_netkey_from_bytes),
        T(test_netkey_save_load_round_trip),
        T(test_netkey_file_format),
        T(test_netkey_load_refuses_open_modes),
        T(test_netkey_load_missing_is_enoent),
        T(test_netkey_load_refuses_short_and_long),
        T(test_netkey_load_refuses_wrong_magic),
        T(test_netkey_load_refuses_identity_file),
        T(test_netkey_load_refuses_bad_checksum),
        T(test_netkey_save_failure_leaves_nothing),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("netkey", tests, NULL, NULL);
}
