/* fuzz_dir.h: a scratch directory for the fuzz targets that read files.
 *
 * Made once per process under $FUZZ_TMPDIR, else /dev/shm (memory: an
 * fsync there costs nothing, so a target runs thousands of inputs a
 * second), else $TMPDIR or /tmp, and removed with everything in it when
 * the process exits. Header-only: each target is one executable. */
#ifndef CONFAB_TESTS_FUZZ_DIR_H
#define CONFAB_TESTS_FUZZ_DIR_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir_path[256];

/* Removes path and, if it is a directory, what is in it (one level of
 * subdirectories is all the targets make, but any depth is handled). */
static void fuzz_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) <
                sizeof sub)
                fuzz_rm_rf(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void fuzz_dir_cleanup(void)
{
    if (fuzz_dir_path[0] != '\0')
        fuzz_rm_rf(fuzz_dir_path);
}

/* The scratch directory (mode 0700), made on the first call; exits the
 * process if none can be made. */
static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_path[0] != '\0')
        return fuzz_dir_path;
    const char *bases[] = {getenv("FUZZ_TMPDIR"), "/dev/shm", getenv("TMPDIR"),
                           "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (bases[i] == NULL || access(bases[i], W_OK | X_OK) != 0)
            continue;
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/confab-fuzz-XXXXXX",
                 bases[i]);
        if (mkdtemp(fuzz_dir_path) != NULL) {
            atexit(fuzz_dir_cleanup);
            return fuzz_dir_path;
        }
    }
    fuzz_dir_path[0] = '\0';
    fprintf(stderr, "fuzz: cannot make a scratch directory: %s\n",
            strerror(errno));
    exit(1);
}

/* Writes data[0..size) to path (created or truncated, mode 0600).
 * Returns 0 or -1. */
static inline int fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && size > 0) {
        ssize_t w = write(fd, data, size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else {
            data += w;
            size -= (size_t)w;
        }
    }
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

#endif
