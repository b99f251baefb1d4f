/* crypto/keyfile.c: reading and atomically writing key files, with messages
 * that tell a person what went wrong and what to do. */
#include "crypto/keyfile.h"
#include "crypto/sec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES (SEC__KEYFILE_MAGIC_BYTES + 1u)
#define MAX_FILE     (HEADER_BYTES + SEC__KEYFILE_MAX_KEY + SEC__KEYFILE_SUM_BYTES)

/* How often save picks a new temp name when one is taken. */
#define TEMP_TRIES 16

void sec__keyfile_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

size_t sec__keyfile_len(const sec__keyfile_kind *kind)
{
    return HEADER_BYTES + kind->key_len + SEC__KEYFILE_SUM_BYTES;
}

static void checksum(const uint8_t *buf, size_t len,
                     uint8_t sum[SEC__KEYFILE_SUM_BYTES])
{
    (void)crypto_generichash(sum, SEC__KEYFILE_SUM_BYTES, buf, len, NULL, 0);
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads until cap bytes or the end of the file; returns the count or a
 * negative errno. */
static ssize_t read_all(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;

    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The directory holding path, for the fsync that makes the rename durable. */
static int dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        n = 1;
        path = ".";
    } else if (slash == path) {
        n = 1;
    } else {
        n = (size_t)(slash - path);
    }
    if (n >= cap)
        return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* Writes len bytes of buf to a new file tmp (path plus a random suffix),
 * mode 0600, on disk and closed. Returns 0 or a negative errno, *step
 * saying what failed; *fd is -1 unless the file was created (the caller
 * closes it if still open and unlinks tmp). */
static int write_temp(const char *path, char *tmp, size_t tmpcap,
                      const uint8_t *buf, size_t len, int *fd,
                      const char **step)
{
    /* O_EXCL under a random name: never follow or truncate a file someone
     * else placed there, and never share a temp file with a concurrent
     * save. */
    *step = "creating a temporary file";
    for (int i = 0; i < TEMP_TRIES && *fd < 0; i++) {
        uint32_t r;
        sec_random(&r, sizeof r);
        (void)snprintf(tmp, tmpcap, "%s.tmp-%08" PRIx32, path, r);
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   0600);
        if (*fd < 0 && errno != EEXIST)
            break;
    }
    if (*fd < 0)
        return -errno;
    /* The umask may have taken bits away from 0600; make it exact. */
    *step = "setting its mode to 0600";
    if (fchmod(*fd, 0600) != 0)
        return -errno;
    *step = "writing";
    int rc = write_all(*fd, buf, len);
    if (rc < 0)
        return rc;
    *step = "flushing it to disk";
    if (fsync(*fd) != 0)
        return -errno;
    *step = "closing it";
    rc = close(*fd);
    *fd = -2; /* created, and closed */
    return rc != 0 ? -errno : 0;
}

/* Flushes directory dir to disk: a rename in it is durable only then.
 * *dfd is its descriptor, for the caller to close. */
static int sync_dir(const char *dir, int *dfd)
{
    *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dfd < 0)
        return -errno;
    /* Some file systems cannot fsync a directory (EINVAL); the file itself
     * is already on disk there. */
    if (fsync(*dfd) != 0 && errno != EINVAL)
        return -errno;
    return 0;
}

int sec__keyfile_save(const sec__keyfile_kind *kind, const uint8_t *key,
                      const char *path, char *err, size_t errlen)
{
    uint8_t buf[MAX_FILE];
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    size_t len = sec__keyfile_len(kind);
    size_t off = 0;
    const char *step = "creating a temporary file";
    int fd = -1, dfd = -1, created;
    int rc;

    if (path == NULL || path[0] == '\0' ||
        kind->key_len > SEC__KEYFILE_MAX_KEY) {
        sec__keyfile_error(err, errlen, "no path given for the %s", kind->what);
        return -EINVAL;
    }
    rc = dir_of(path, dir, sizeof dir);
    if (rc == 0 && strlen(path) + sizeof ".tmp-00000000" > sizeof tmp)
        rc = -ENAMETOOLONG;
    if (rc < 0) {
        sec__keyfile_error(err, errlen,
                           "cannot write %s %s: the path is too long; choose "
                           "a shorter --home",
                           kind->what, path);
        return rc;
    }

    memcpy(buf, kind->magic, SEC__KEYFILE_MAGIC_BYTES);
    off = SEC__KEYFILE_MAGIC_BYTES;
    buf[off++] = SEC__KEYFILE_VERSION;
    memcpy(buf + off, key, kind->key_len);
    off += kind->key_len;
    checksum(buf, off, buf + off);

    rc = write_temp(path, tmp, sizeof tmp, buf, len, &fd, &step);
    created = fd != -1; /* -2: created and closed */
    if (rc == 0) {
        step = "renaming the temporary file into place";
        rc = rename(tmp, path) != 0 ? -errno : 0;
    }
    if (rc == 0) {
        created = 0;
        step = "flushing its directory to disk";
        rc = sync_dir(dir, &dfd);
    }
    if (rc != 0)
        goto fail;
    rc = 0;
    goto out;

fail:
    sec__keyfile_error(err, errlen,
                       "cannot write %s %s (%s failed: %s); check that the "
                       "directory %s exists and is writable and that the disk "
                       "is not full",
                       kind->what, path, step, strerror(-rc), dir);
out:
    if (fd >= 0)
        (void)close(fd);
    if (dfd >= 0)
        (void)close(dfd);
    if (created)
        (void)unlink(tmp);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* Opens path for reading, refused (an error said in err) unless it is a
 * regular file owned by us and closed to everyone else. Returns the
 * descriptor or a negative errno; *st is what fstat said. */
static int open_private(const sec__keyfile_kind *kind, const char *path,
                        struct stat *st, char *err, size_t errlen)
{
    int rc;
    /* O_NONBLOCK: a FIFO planted at the path must not hang the node; it is
     * refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            sec__keyfile_error(err, errlen, "%s %s does not exist; %s",
                               kind->what, path, kind->missing);
        else
            sec__keyfile_error(err, errlen,
                               "cannot open %s %s: %s; check the path and the "
                               "permissions of its directories",
                               kind->what, path, strerror(-rc));
        return rc;
    }
    /* fstat of the open file, not stat of the path: what is checked is what
     * is read. */
    if (fstat(fd, st) != 0) {
        rc = -errno;
        sec__keyfile_error(err, errlen, "cannot read %s %s: %s", kind->what,
                           path, strerror(-rc));
    } else if (!S_ISREG(st->st_mode)) {
        rc = -EPROTO;
        sec__keyfile_error(err, errlen,
                           "%s %s is not a regular file; check the path",
                           kind->what, path);
    } else if (st->st_uid != geteuid()) {
        /* As ssh does for private keys: the file must be ours and closed
         * to everyone else, or it is not used at all. */
        rc = -EACCES;
        sec__keyfile_error(err, errlen,
                           "%s %s is owned by uid %u, not by the user running "
                           "confab (uid %u), so it is not used: it holds a "
                           "secret key; make it yours with 'chown %u %s' (as "
                           "root) and try again",
                           kind->what, path, (unsigned)st->st_uid,
                           (unsigned)geteuid(), (unsigned)geteuid(), path);
    } else if ((st->st_mode & 077) != 0) {
        rc = -EACCES;
        sec__keyfile_error(err, errlen,
                           "permissions %04o for %s %s are too open, so it is "
                           "not used: it holds a secret key and must not be "
                           "accessible by group or others; run 'chmod 600 %s' "
                           "and try again",
                           (unsigned)(st->st_mode & 07777), kind->what, path,
                           path);
    } else {
        return fd;
    }
    (void)close(fd);
    return rc;
}

/* Checks the got bytes read from path (want of them make a valid file):
 * magic, length, version, checksum. Returns 0 or -EPROTO (said in err). */
static int check_contents(const sec__keyfile_kind *kind, const char *path,
                          const uint8_t *buf, size_t got, const struct stat *st,
                          char *err, size_t errlen)
{
    uint8_t sum[SEC__KEYFILE_SUM_BYTES];
    size_t want = sec__keyfile_len(kind);
    int rc = -EPROTO;
    if (got >= SEC__KEYFILE_MAGIC_BYTES &&
        memcmp(buf, kind->magic, SEC__KEYFILE_MAGIC_BYTES) != 0) {
        sec__keyfile_error(err, errlen,
                           "%s %s is not a confab %s (it does not start with "
                           "\"%.4s\"); check the path, or %s",
                           kind->what, path, kind->what, kind->magic,
                           kind->recover);
        return rc;
    }
    if (got < want) {
        sec__keyfile_error(err, errlen,
                           "%s %s is too short (%zu bytes, expected %zu): it "
                           "was cut off; %s",
                           kind->what, path, got, want, kind->recover);
        return rc;
    }
    if (got > want) {
        sec__keyfile_error(err, errlen,
                           "%s %s is too long (%lld bytes, expected %zu): "
                           "something was added to it; %s",
                           kind->what, path, (long long)st->st_size, want,
                           kind->recover);
        return rc;
    }
    if (buf[SEC__KEYFILE_MAGIC_BYTES] != SEC__KEYFILE_VERSION) {
        sec__keyfile_error(err, errlen,
                           "%s %s has format version %u but this confab reads "
                           "only version %u; use the confab that wrote it, or "
                           "%s",
                           kind->what, path,
                           (unsigned)buf[SEC__KEYFILE_MAGIC_BYTES],
                           SEC__KEYFILE_VERSION, kind->recover);
        return rc;
    }
    checksum(buf, want - SEC__KEYFILE_SUM_BYTES, sum);
    /* sodium_memcmp: the checksum is computed over the secret key. */
    if (sodium_memcmp(sum, buf + want - SEC__KEYFILE_SUM_BYTES,
                      SEC__KEYFILE_SUM_BYTES) != 0)
        sec__keyfile_error(err, errlen,
                           "%s %s is corrupted (checksum mismatch); %s",
                           kind->what, path, kind->recover);
    else
        rc = 0;
    sodium_memzero(sum, sizeof sum);
    return rc;
}

int sec__keyfile_load(const sec__keyfile_kind *kind, const char *path,
                      uint8_t *key, char *err, size_t errlen)
{
    uint8_t buf[MAX_FILE + 1];
    size_t want = sec__keyfile_len(kind);
    struct stat st;

    if (path == NULL || path[0] == '\0' ||
        kind->key_len > SEC__KEYFILE_MAX_KEY) {
        sec__keyfile_error(err, errlen, "no path given for the %s", kind->what);
        return -EINVAL;
    }
    int fd = open_private(kind, path, &st, err, errlen);
    if (fd < 0)
        return fd;
    /* One byte more than a valid file, to tell "too long" from "exact". */
    ssize_t got = read_all(fd, buf, want + 1);
    int rc;
    if (got < 0) {
        rc = (int)got;
        sec__keyfile_error(err, errlen, "cannot read %s %s: %s", kind->what,
                           path, strerror(-rc));
    } else {
        rc = check_contents(kind, path, buf, (size_t)got, &st, err, errlen);
        if (rc == 0)
            memcpy(key, buf + HEADER_BYTES, kind->key_len);
    }
    (void)close(fd);
    sodium_memzero(buf, sizeof buf);
    return rc;
}
