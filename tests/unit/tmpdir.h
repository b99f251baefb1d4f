/* tmpdir.h: a fresh directory under /tmp per test, and raw file helpers,
 * for the tests of the key files (test_identity.c, test_netkey.c).
 *
 * Use as a cmocka fixture: tmpdir_setup makes /tmp/confab-test-XXXXXX and
 * passes a tmpdir * as the test's state; tmpdir_teardown removes every file
 * in it and the directory. */
#ifndef CONFAB_TESTS_TMPDIR_H
#define CONFAB_TESTS_TMPDIR_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct tmpdir {
    char dir[64];
    char path[128]; /* dir/name of the file under test */
} tmpdir;

static inline int tmpdir_setup(void **state)
{
    tmpdir *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/confab-test-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static inline int tmpdir_teardown(void **state)
{
    tmpdir *t = *state;
    DIR *d = opendir(t->dir);
    struct dirent *e;
    char sub[sizeof t->dir + sizeof e->d_name + 1];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", t->dir, e->d_name);
        if (unlink(sub) != 0)
            (void)rmdir(sub);
    }
    if (d != NULL)
        closedir(d);
    int rc = rmdir(t->dir);
    free(t);
    return rc;
}

/* dir/name into t->path; returns t->path. */
static inline const char *tmpdir_file(tmpdir *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

/* The number of entries in the directory, "." and ".." aside. */
static inline int tmpdir_count(const tmpdir *t)
{
    DIR *d = opendir(t->dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Reads at most cap bytes of path; returns the count or -1. */
static inline long file_read(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* Replaces path's contents, keeping its mode. Returns 0 or -1. */
static inline int file_write(const char *path, const unsigned char *buf,
                             size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, buf, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

#endif
