/* test_identity.c: identity key pairs and their file.
 *
 * The file is "CFID", version 1, the secret key, the public key, and the
 * BLAKE2b-128 of the 69 bytes before it: 85 bytes, mode 0600. */
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

#define FILE_LEN 85
#define SUM_AT   69

static void assert_contains(const char *s, const char *part)
{
    if (strstr(s, part) == NULL)
        fail_msg("\"%s\"\ndoes not contain \"%s\"", s, part);
}

/* Saves a fresh identity at dir/identity; returns it. */
static sec_identity *saved(tmpdir *t)
{
    sec_identity *id;
    char err[512] = "";

    assert_int_equal(sec_identity_generate(&id), 0);
    assert_int_equal(
        sec_identity_save(id, tmpdir_file(t, "identity"), err, sizeof err), 0);
    return id;
}

/* Loads t->path, expecting rc, and returns the message. */
static void load_fails(tmpdir *t, int rc, char *err, size_t errlen)
{
    sec_identity *id = NULL;

    err[0] = '\0';
    assert_int_equal(sec_identity_load(t->path, &id, err, errlen), rc);
    assert_null(id);
    assert_contains(err, t->path);
}

/* Rewrites the checksum after an edit, as a careless tool would. */
static void fix_checksum(unsigned char *buf)
{
    crypto_generichash(buf + SUM_AT, 16, buf, SUM_AT, NULL, 0);
}

static void test_identity_generate_and_free(void **state)
{
    uint8_t pk[SEC_KEY_BYTES];
    sec_identity *a, *b;
    (void)state;

    assert_int_equal(sec_identity_generate(&a), 0);
    assert_int_equal(sec_identity_generate(&b), 0);
    assert_non_null(a->sk);
    assert_memory_not_equal(a->pk, b->pk, SEC_KEY_BYTES);
    assert_int_not_equal(sodium_memcmp(a->sk, b->sk, SEC_KEY_BYTES), 0);
    /* The public key is the secret key's. */
    assert_int_equal(crypto_scalarmult_base(pk, a->sk), 0);
    assert_memory_equal(pk, a->pk, SEC_KEY_BYTES);
    sec_identity_free(a);
    sec_identity_free(b);
    sec_identity_free(NULL);
}

/* The initiator static key of the Noise vectors, and its public key. */
static void test_identity_from_secret(void **state)
{
    uint8_t sk[SEC_KEY_BYTES], pk[SEC_KEY_BYTES];
    sec_identity *id;
    size_t len;
    (void)state;

    sodium_hex2bin(
        sk, sizeof sk,
        "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1", 64,
        NULL, &len, NULL);
    sodium_hex2bin(
        pk, sizeof pk,
        "6bc3822a2aa7f4e6981d6538692b3cdf3e6df9eea6ed269eb41d93c22757b75a", 64,
        NULL, &len, NULL);
    assert_int_equal(sec_identity_from_secret(sk, &id), 0);
    assert_memory_equal(id->pk, pk, SEC_KEY_BYTES);
    assert_int_equal(sodium_memcmp(id->sk, sk, SEC_KEY_BYTES), 0);
    sec_identity_free(id);
}

static void test_identity_save_load_round_trip(void **state)
{
    tmpdir *t = *state;
    char err[512] = "";
    sec_identity *id = saved(t), *back = NULL;
    struct stat st;

    assert_int_equal(stat(t->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, FILE_LEN);
    assert_int_equal(sec_identity_load(t->path, &back, err, sizeof err), 0);
    assert_memory_equal(back->pk, id->pk, SEC_KEY_BYTES);
    assert_int_equal(sodium_memcmp(back->sk, id->sk, SEC_KEY_BYTES), 0);
    /* Atomic: only the file itself is left, no temp file. */
    assert_int_equal(tmpdir_count(t), 1);
    sec_identity_free(id);
    sec_identity_free(back);
}

static void test_identity_file_format(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256], sum[16];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    assert_memory_equal(buf, "CFID", 4);
    assert_int_equal(buf[4], 1);
    assert_int_equal(sodium_memcmp(buf + 5, id->sk, SEC_KEY_BYTES), 0);
    assert_memory_equal(buf + 37, id->pk, SEC_KEY_BYTES);
    crypto_generichash(sum, sizeof sum, buf, SUM_AT, NULL, 0);
    assert_memory_equal(buf + SUM_AT, sum, sizeof sum);
    sec_identity_free(id);
}

/* Saving over an existing file replaces it whole. */
static void test_identity_save_replaces(void **state)
{
    tmpdir *t = *state;
    char err[512] = "";
    sec_identity *a = saved(t), *b, *back;

    assert_int_equal(sec_identity_generate(&b), 0);
    assert_int_equal(sec_identity_save(b, t->path, err, sizeof err), 0);
    assert_int_equal(sec_identity_load(t->path, &back, err, sizeof err), 0);
    assert_memory_equal(back->pk, b->pk, SEC_KEY_BYTES);
    assert_int_equal(tmpdir_count(t), 1);
    sec_identity_free(a);
    sec_identity_free(b);
    sec_identity_free(back);
}

/* Whatever the umask, the file ends up 0600. */
static void test_identity_save_mode_ignores_umask(void **state)
{
    tmpdir *t = *state;
    struct stat st;
    mode_t old = umask(0277);
    sec_identity *id = saved(t);

    umask(old);
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    sec_identity_free(id);
}

static void test_identity_save_to_missing_directory_fails(void **state)
{
    tmpdir *t = *state;
    char err[512] = "";
    sec_identity *id;

    assert_int_equal(sec_identity_generate(&id), 0);
    assert_int_equal(sec_identity_save(id, tmpdir_file(t, "no/such/identity"),
                                       err, sizeof err),
                     -ENOENT);
    assert_contains(err, "cannot write identity file");
    assert_contains(err, t->path);
    assert_int_equal(tmpdir_count(t), 0);
    sec_identity_free(id);
}

static void test_identity_load_refuses_open_modes(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0620, 0602};
    tmpdir *t = *state;
    char err[512], want[300], mode[16];
    sec_identity *id = saved(t);

    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(t->path, modes[i]), 0);
        load_fails(t, -EACCES, err, sizeof err);
        snprintf(mode, sizeof mode, "%04o", (unsigned)modes[i]);
        assert_contains(err, mode);
        assert_contains(err, "too open");
        snprintf(want, sizeof want, "chmod 600 %s", t->path);
        assert_contains(err, want);
    }
    /* Read-only for the owner is fine. */
    assert_int_equal(chmod(t->path, 0400), 0);
    sec_identity *back = NULL;
    assert_int_equal(sec_identity_load(t->path, &back, err, sizeof err), 0);
    sec_identity_free(back);
    sec_identity_free(id);
}

static void test_identity_load_missing_is_enoent(void **state)
{
    tmpdir *t = *state;
    char err[512];

    tmpdir_file(t, "identity");
    load_fails(t, -ENOENT, err, sizeof err);
    assert_contains(err, "does not exist");
}

static void test_identity_load_refuses_short_file(void **state)
{
    static const size_t cuts[] = {FILE_LEN - 1, 40, 5, 4, 2, 0};
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(file_write(t->path, buf, cuts[i]), 0);
        load_fails(t, -EPROTO, err, sizeof err);
        assert_contains(err, "too short");
        assert_contains(err, "restore it from a backup or remove it to make a "
                             "new identity (the node id will change)");
    }
    sec_identity_free(id);
}

static void test_identity_load_refuses_long_file(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    buf[FILE_LEN] = '\n';
    assert_int_equal(file_write(t->path, buf, FILE_LEN + 1), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "too long (86 bytes, expected 85)");
    assert_contains(err, "restore it from a backup");
    sec_identity_free(id);
}

static void test_identity_load_refuses_wrong_magic(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    memcpy(buf, "CFIX", 4);
    fix_checksum(buf);
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "is not a confab identity file");
    assert_contains(err, "\"CFID\"");
    sec_identity_free(id);
}

/* A network key file given where the identity belongs. */
static void test_identity_load_refuses_network_key_file(void **state)
{
    tmpdir *t = *state;
    char err[512];
    sec_netkey *k;

    assert_int_equal(sec_netkey_generate(&k), 0);
    assert_int_equal(
        sec_netkey_save(k, tmpdir_file(t, "netkey"), err, sizeof err), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "is not a confab identity file");
    sec_netkey_free(k);
}

static void test_identity_load_refuses_unknown_version(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    buf[4] = 2;
    fix_checksum(buf);
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "format version 2");
    sec_identity_free(id);
}

static void test_identity_load_refuses_bad_checksum(void **state)
{
    static const size_t at[] = {5, 36, 37, 68, SUM_AT, FILE_LEN - 1};
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t);

    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        buf[at[i]] ^= 0x04;
        assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
        load_fails(t, -EPROTO, err, sizeof err);
        assert_contains(err, "is corrupted (checksum mismatch); restore it "
                             "from a backup or remove it to make a new "
                             "identity (the node id will change)");
        buf[at[i]] ^= 0x04;
    }
    sec_identity_free(id);
}

static void test_identity_load_refuses_mismatched_public_key(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256];
    char err[512];
    sec_identity *id = saved(t), *other;

    assert_int_equal(sec_identity_generate(&other), 0);
    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    memcpy(buf + 37, other->pk, SEC_KEY_BYTES);
    fix_checksum(buf);
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "its public key does not match its secret key");
    assert_contains(err, "restore it from a backup");
    sec_identity_free(id);
    sec_identity_free(other);
}

static void test_identity_load_refuses_directory(void **state)
{
    tmpdir *t = *state;
    char err[512];

    assert_int_equal(mkdir(tmpdir_file(t, "identity"), 0700), 0);
    load_fails(t, -EPROTO, err, sizeof err);
    assert_contains(err, "not a regular file");
}

/* Each failure has its own message. */
static void test_identity_messages_are_distinct(void **state)
{
    tmpdir *t = *state;
    unsigned char buf[256];
    char msgs[6][512];
    sec_identity *id = saved(t), *other;

    assert_int_equal(sec_identity_generate(&other), 0);
    assert_int_equal(file_read(t->path, buf, sizeof buf), FILE_LEN);
    assert_int_equal(chmod(t->path, 0644), 0);
    load_fails(t, -EACCES, msgs[0], sizeof msgs[0]);
    assert_int_equal(chmod(t->path, 0600), 0);
    assert_int_equal(file_write(t->path, buf, 50), 0);
    load_fails(t, -EPROTO, msgs[1], sizeof msgs[1]);
    buf[FILE_LEN] = 0;
    assert_int_equal(file_write(t->path, buf, FILE_LEN + 1), 0);
    load_fails(t, -EPROTO, msgs[2], sizeof msgs[2]);
    buf[0] ^= 1;
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, msgs[3], sizeof msgs[3]);
    buf[0] ^= 1;
    buf[10] ^= 1;
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, msgs[4], sizeof msgs[4]);
    buf[10] ^= 1;
    memcpy(buf + 37, other->pk, SEC_KEY_BYTES);
    fix_checksum(buf);
    assert_int_equal(file_write(t->path, buf, FILE_LEN), 0);
    load_fails(t, -EPROTO, msgs[5], sizeof msgs[5]);
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            assert_string_not_equal(msgs[i], msgs[j]);
    sec_identity_free(id);
    sec_identity_free(other);
}

/* err may be NULL, and a short err is cut, not overrun. */
static void test_identity_error_buffer_optional(void **state)
{
    tmpdir *t = *state;
    char err[8];
    sec_identity *id = NULL;

    tmpdir_file(t, "missing");
    assert_int_equal(sec_identity_load(t->path, &id, NULL, 0), -ENOENT);
    assert_int_equal(sec_identity_load(t->path, &id, err, sizeof err), -ENOENT);
    assert_int_equal(strlen(err), sizeof err - 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_generate_and_free),
        cmocka_unit_test(test_identity_from_secret),
        T(test_identity_save_load_round_trip),
        T(test_identity_file_format),
        T(test_identity_save_replaces),
        T(test_identity_save_mode_ignores_umask),
        T(test_identity_save_to_missing_directory_fails),
        T(test_identity_load_refuses_open_modes),
        T(test_identity_load_missing_is_enoent),
        T(test_identity_load_refuses_short_file),
        T(test_identity_load_refuses_long_file),
        T(test_identity_load_refuses_wrong_magic),
        T(test_identity_load_refuses_network_key_file),
        T(test_identity_load_refuses_unknown_version),
        T(test_identity_load_refuses_bad_checksum),
        T(test_identity_load_refuses_mismatched_public_key),
        T(test_identity_load_refuses_directory),
        T(test_identity_messages_are_distinct),
        T(test_identity_error_buffer_optional),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("identity", tests, NULL, NULL);
}
