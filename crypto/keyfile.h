/* crypto/keyfile.h: internal to crypto/: the one on-disk format shared by
 * the identity file and the network key file, and its atomic save.
 *
 * A key file is exactly 4 + 1 + key_len + 16 bytes:
 *
 *   magic    4 bytes, "CFID" (identity) or "CFNK" (network key)
 *   version  1 byte, 1
 *   key      key_len bytes (identity: secret key then public key, 64;
 *            network key: 32)
 *   sum      16 bytes, unkeyed BLAKE2b-128 of every byte before it
 *
 * The checksum catches damage (a torn copy, a flipped bit), not an attacker:
 * whoever can write the file can also fix its checksum. docs/SECURITY.md
 * describes the files. */
#ifndef CONFAB_CRYPTO_KEYFILE_H
#define CONFAB_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define SEC__KEYFILE_MAGIC_BYTES 4u
#define SEC__KEYFILE_VERSION     1u
#define SEC__KEYFILE_SUM_BYTES   16u
#define SEC__KEYFILE_MAX_KEY     64u

typedef struct sec__keyfile_kind {
    char magic[SEC__KEYFILE_MAGIC_BYTES];
    const char *what;    /* "identity file": starts every message */
    size_t key_len;      /* at most SEC__KEYFILE_MAX_KEY */
    const char *missing; /* what to do when there is no file */
    const char *recover; /* what to do when the file is damaged */
} sec__keyfile_kind;

/* The total length of a file of this kind. */
size_t sec__keyfile_len(const sec__keyfile_kind *kind);

/* Writes key[0..kind->key_len) to path: a new temp file PATH.tmp-XXXXXXXX
 * (O_EXCL, mode 0600), write, fsync, rename over path, fsync of the
 * directory. No temp file is left on failure. Returns 0 or a negative errno
 * with a sentence in err. */
__attribute__((warn_unused_result)) int
sec__keyfile_save(const sec__keyfile_kind *kind, const uint8_t *key,
                  const char *path, char *err, size_t errlen);

/* Reads path into key[0..kind->key_len) after checking its owner and mode
 * (-EACCES), that it is a regular file, its magic, length, version and
 * checksum (-EPROTO). A missing file is -ENOENT. key is written only on
 * success. Returns 0 or a negative errno with a sentence in err. */
__attribute__((warn_unused_result)) int
sec__keyfile_load(const sec__keyfile_kind *kind, const char *path, uint8_t *key,
                  char *err, size_t errlen);

/* Formats a message into err[0..errlen) (nothing when err is NULL). */
__attribute__((format(printf, 3, 4))) void
sec__keyfile_error(char *err, size_t errlen, const char *fmt, ...);

#endif
