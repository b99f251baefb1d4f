/* Layer peers (node/LAYERS).
 * allow.c: who may join, narrower than the network key: the allow-list of
 * node ids (docs/SECURITY.md, "Who may join").
 *
 * While a node has a list, a node not on it is refused at the handshake
 * (once its static key shows who it is), its beacons are ignored and it is
 * never dialed. With a home directory the list is the file <home>/allow:
 *
 *   # anything after a '#' is a comment
 *   3f0c...(64 hex digits)   # alice's laptop
 *
 * read at start with suspicion (a bounded size, every line of exactly that
 * shape, an error naming the first line that is not), and rewritten
 * atomically (temp file, fsync, rename, fsync of the directory) when an id
 * is allowed or denied, keeping every other line and comment as it was.
 * The file must belong to the user and be writable by no one else: anyone
 * who can write it can let themselves in. */
#include "node/peers/peers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALLOW_FILE      "allow"
#define ALLOW_MAX_BYTES ((size_t)1 << 20) /* the file, at most */
#define ALLOW_MAX_LINE  512u              /* one line, at most */
#define ALLOW_HEADER                                                           \
    "# confab allow-list: only the node ids below may join (confab(1),\n"      \
    "# 'confab allow'). One id a line; '#' starts a comment.\n"

struct node_allow {
    uint8_t (*ids)[WIRE_NODE_ID_BYTES]; /* sorted, each once */
    size_t len, cap;
};

/* ---- the list in memory ------------------------------------------------ */

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, WIRE_NODE_ID_BYTES); /* public keys: memcmp */
}

static const uint8_t *list_find(const node_allow *a, const uint8_t *id)
{
    if (a->len == 0)
        return NULL;
    return bsearch(id, a->ids, a->len, sizeof a->ids[0], cmp_id);
}

static int list_add(node_allow *a, const uint8_t *id)
{
    if (list_find(a, id) != NULL)
        return 0;
    if (a->len >= CONFAB_MAX_ALLOW)
        return -ENOSPC;
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void *t = realloc(a->ids, cap * sizeof a->ids[0]);
        if (t == NULL)
            return -ENOMEM;
        a->ids = t;
        a->cap = cap;
    }
    size_t i = a->len;
    while (i > 0 && memcmp(a->ids[i - 1], id, WIRE_NODE_ID_BYTES) > 0) {
        memcpy(a->ids[i], a->ids[i - 1], WIRE_NODE_ID_BYTES);
        i--;
    }
    memcpy(a->ids[i], id, WIRE_NODE_ID_BYTES);
    a->len++;
    return 0;
}

static void list_remove(node_allow *a, const uint8_t *id)
{
    const uint8_t *f = list_find(a, id);
    if (f == NULL)
        return;
    size_t i = (size_t)(f - a->ids[0]) / WIRE_NODE_ID_BYTES;
    memmove(a->ids[i], a->ids[i + 1], (a->len - i - 1) * sizeof a->ids[0]);
    a->len--;
}

static void list_free(node_allow *a)
{
    if (a == NULL)
        return;
    free(a->ids);
    free(a);
}

bool node_allowed(const confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES])
{
    return n->allow == NULL || list_find(n->allow, id) != NULL;
}

/* ---- the file: parsing ------------------------------------------------- */

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* One line (without its newline): 1 with *id set when it holds an id, 0
 * when it is blank or a comment, -1 when it is neither. The shape is
 * exact: 64 hex digits first, then nothing but blanks and a comment. */
static int parse_line(const char *s, size_t len, uint8_t id[WIRE_NODE_ID_BYTES])
{
    size_t i = 0;
    if (len > ALLOW_MAX_LINE || memchr(s, '\0', len) != NULL)
        return -1;
    if (len >= 64 && is_hex(s[0])) {
        for (; i < 64; i++)
            if (!is_hex(s[i]))
                return -1;
        if (len > 64 && s[64] != ' ' && s[64] != '\t' && s[64] != '#')
            return -1;
        if (sodium_hex2bin(id, WIRE_NODE_ID_BYTES, s, 64, NULL, NULL, NULL) !=
            0)
            return -1;
    }
    bool has_id = i == 64;
    for (; i < len; i++) {
        if (s[i] == '#')
            return has_id;
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return -1;
    }
    return has_id;
}

/* Walks text[0..len): calls each(id, line start, line length, arg) for
 * every line holding an id. Returns 0, or the 1-based number of the first
 * line of a wrong shape. */
static size_t parse_text(const char *text, size_t len,
                         int (*each)(const uint8_t *id, const char *line,
                                     size_t llen, void *arg),
                         void *arg, int *rc)
{
    size_t lineno = 0;
    const char *p = text;
    size_t left = len;
    *rc = 0;
    while (left > 0) {
        lineno++;
        const char *nl = memchr(p, '\n', left);
        size_t ll = nl ? (size_t)(nl - p) : left;
        uint8_t id[WIRE_NODE_ID_BYTES];
        int r = parse_line(p, ll, id);
        if (r < 0)
            return lineno;
        if (r == 1 && each != NULL && (*rc = each(id, p, ll, arg)) != 0)
            return 0;
        size_t step = nl ? ll + 1 : ll;
        p += step;
        left -= step;
    }
    return 0;
}

static int home_path(char *out, size_t cap, const char *home)
{
    int w = snprintf(out, cap, "%s/%s", home, ALLOW_FILE);
    return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

/* Reads the file into a fresh buffer (*text, *len; NUL-terminated).
 * Returns 0, -ENOENT (no list), or an error with a sentence in err. */
static int read_file(const char *path, char **text, size_t *len, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = -errno;
        if (e != -ENOENT)
            snprintf(err, errlen, "cannot read the allow-list %s: %s", path,
                     strerror(-e));
        return e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot read the allow-list %s: %s", path,
                 strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "the allow-list %s is not a regular file", path);
    } else if (st.st_uid != geteuid()) {
        rc = -EACCES;
        snprintf(err, errlen,
                 "the allow-list %s belongs to another user: whoever can "
                 "write it decides who may join; chown it to yourself",
                 path);
    } else if ((st.st_mode & 022) != 0) {
        rc = -EACCES;
        snprintf(err, errlen,
                 "the allow-list %s may be written by others, who could "
                 "let themselves in; run 'chmod 600 %s'",
                 path, path);
    } else if ((uint64_t)st.st_size > ALLOW_MAX_BYTES) {
        rc = -EFBIG;
        snprintf(err, errlen,
                 "the allow-list %s is over %zu bytes; it holds at most %u "
                 "ids",
                 path, ALLOW_MAX_BYTES, CONFAB_MAX_ALLOW);
    }
    char *buf = NULL;
    size_t got = 0;
    if (rc == 0 && (buf = malloc(ALLOW_MAX_BYTES + 1)) == NULL)
        rc = -ENOMEM;
    /* Read to the end, whatever the size said: it may grow meanwhile. */
    while (rc == 0) {
        ssize_t r = read(fd, buf + got, ALLOW_MAX_BYTES + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot read the allow-list %s: %s", path,
                     strerror(-rc));
        } else if (r == 0) {
            break;
        } else if ((got += (size_t)r) > ALLOW_MAX_BYTES) {
            rc = -EFBIG;
            snprintf(err, errlen, "the allow-list %s is over %zu bytes", path,
                     ALLOW_MAX_BYTES);
        }
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

static int collect(const uint8_t *id, const char *line, size_t llen, void *arg)
{
    (void)line;
    (void)llen;
    return list_add(arg, id);
}

/* Parses text into a new list. Returns 0 or an error (err says which
 * line). */
static int parse_list(const char *path, const char *text, size_t len,
                      node_allow **out, char *err, size_t errlen)
{
    node_allow *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -ENOMEM;
    int rc;
    size_t bad = parse_text(text, len, collect, a, &rc);
    if (bad != 0) {
        snprintf(err, errlen,
                 "the allow-list %s, line %zu: expected a node id (64 hex "
                 "digits), optionally followed by a '#' comment, or a blank "
                 "or comment line; fix or remove that line",
                 path, bad);
        rc = -EINVAL;
    } else if (rc == -ENOSPC) {
        snprintf(err, errlen, "the allow-list %s holds over %u ids", path,
                 CONFAB_MAX_ALLOW);
    } else if (rc != 0) {
        snprintf(err, errlen, "reading the allow-list %s: %s", path,
                 strerror(-rc));
    }
    if (rc != 0) {
        list_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Reads <home>/allow: 0 and *out, -ENOENT (no list), or an error. */
static int load(const char *home, node_allow **out, char *err, size_t errlen)
{
    char path[4096];
    if (home_path(path, sizeof path, home) != 0) {
        snprintf(err, errlen, "the home's path is too long");
        return -ENAMETOOLONG;
    }
    char *text;
    size_t len;
    int rc = read_file(path, &text, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = parse_list(path, text, len, out, err, errlen);
    free(text);
    return rc;
}

/* ---- the file: writing ------------------------------------------------- */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Replaces path by text[0..len) atomically: a crash leaves the old list
 * or the new one, never a torn one. */
static int write_atomic(const char *path, const char *home, const char *text,
                        size_t len, char *err, size_t errlen)
{
    char tmp[4096 + 32];
    int fd = -1, rc = 0;
    const char *step = "creating a temporary file";
    for (int i = 0; i < 16 && fd < 0; i++) {
        uint32_t r = randombytes_random();
        snprintf(tmp, sizeof tmp, "%s.tmp-%08" PRIx32, path, r);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    step = "writing it";
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, text, len)) != 0 ||
        fsync(fd) != 0) {
        rc = rc ? rc : -errno;
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    step = "renaming it into place";
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    int dfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename is durable once the directory is */
        close(dfd);
    }
    return 0;
fail:
    snprintf(err, errlen,
             "cannot write the allow-list %s (%s failed: %s); check that "
             "the home is writable and the disk not full",
             path, step, strerror(-rc));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

/* Allows or denies id in the file of home, keeping every other line.
 * Returns 0 (also when nothing changed: *changed false), -ENOENT (deny:
 * not listed, or no list) or an error with a sentence in err. */
static int edit_file(const char *home, const uint8_t *id, bool allow, char *err,
                     size_t errlen)
{
    char path[4096];
    if (home_path(path, sizeof path, home) != 0) {
        snprintf(err, errlen, "the home's path is too long");
        return -ENAMETOOLONG;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err, errlen);
    if (rc == -ENOENT && allow) {
        rc = 0;
        text = NULL;
        len = 0;
    } else if (rc == -ENOENT) {
        snprintf(err, errlen,
                 "there is no allow-list (%s): every node with the network "
                 "key may join; 'confab allow ID' starts one",
                 path);
        return rc;
    } else if (rc != 0) {
        return rc;
    }
    node_allow *cur = NULL;
    if (text != NULL &&
        (rc = parse_list(path, text, len, &cur, err, errlen)) != 0) {
        free(text);
        return rc;
    }
    bool listed = cur != NULL && list_find(cur, id) != NULL;
    size_t count = cur != NULL ? cur->len : 0;
    list_free(cur);
    if (allow && listed) {
        free(text);
        return 0;
    }
    if (!allow && !listed) {
        free(text);
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, id, WIRE_NODE_ID_BYTES);
        snprintf(err, errlen, "%.16s... is not on the allow-list %s", hex,
                 path);
        return -ENOENT;
    }
    if (allow && count >= CONFAB_MAX_ALLOW) {
        free(text);
        snprintf(err, errlen, "the allow-list %s is full (%u ids)", path,
                 CONFAB_MAX_ALLOW);
        return -ENOSPC;
    }
    /* The new text: at most the old plus a header and one line. */
    size_t cap = len + sizeof ALLOW_HEADER + 80;
    char *out = malloc(cap);
    if (out == NULL) {
        free(text);
        return -ENOMEM;
    }
    size_t o = 0;
    if (allow) {
        if (text == NULL) {
            memcpy(out, ALLOW_HEADER, sizeof ALLOW_HEADER - 1);
            o = sizeof ALLOW_HEADER - 1;
        } else {
            memcpy(out, text, len);
            o = len;
            if (o > 0 && out[o - 1] != '\n')
                out[o++] = '\n';
        }
        sodium_bin2hex(out + o, 65, id, WIRE_NODE_ID_BYTES);
        o += 64;
        out[o++] = '\n';
    } else {
        /* Copy every line but those holding the id. */
        const char *p = text;
        size_t left = len;
        while (left > 0) {
            const char *nl = memchr(p, '\n', left);
            size_t ll = nl ? (size_t)(nl - p) : left;
            size_t step = nl ? ll + 1 : ll;
            uint8_t lid[WIRE_NODE_ID_BYTES];
            if (!(parse_line(p, ll, lid) == 1 &&
                  memcmp(lid, id, WIRE_NODE_ID_BYTES) == 0)) {
                memcpy(out + o, p, step);
                o += step;
            }
            p += step;
            left -= step;
        }
    }
    rc = write_atomic(path, home, out, o, err, errlen);
    free(out);
    free(text);
    return rc;
}

/* ---- the node ---------------------------------------------------------- */

int node_allow_load(confab_node *n)
{
    char err[600] = "";
    node_allow *a = NULL;
    int rc = load(n->home, &a, err, sizeof err);
    if (rc == -ENOENT)
        return 0; /* no list: the network key decides alone */
    if (rc != 0) {
        /* Never start open when the owner meant to close: refuse. */
        node_log(n, CONFAB_LOG_ERROR, "%s", err);
        return rc;
    }
    list_free(n->allow);
    n->allow = a;
    node_log(n, CONFAB_LOG_INFO, "allow-list: %zu node ids may join", a->len);
    return 0;
}

void node_allow_free(confab_node *n)
{
    list_free(n->allow);
    n->allow = NULL;
}

/* Closes every link, and every dial, to a node the list now refuses. */
static void enforce(confab_node *n)
{
    node_list *e, *next;
    for (e = n->conns.next; e != &n->conns; e = next) {
        next = e->next;
        node_conn *c = node_container_of(e, node_conn, link);
        const uint8_t *id = c->peer != NULL    ? c->peer->id
                            : c->has_expect_id ? c->expect_id
                                               : NULL;
        if (c->state == CONN_CLOSING || id == NULL || node_allowed(n, id))
            continue;
        char sid[9];
        node_short_id(id, sid);
        node_log(n, CONFAB_LOG_INFO,
                 "closing the link to %s: not on the allow-list", sid);
        node_conn_abort(c, CONFAB_DOWN_CLOSED);
    }
}

int node_allow_set(confab_node *n, const uint8_t id[WIRE_NODE_ID_BYTES],
                   bool allow, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!allow && (n->allow == NULL || list_find(n->allow, id) == NULL)) {
        snprintf(err, errlen, "that node id is not on the allow-list");
        return -ENOENT;
    }
    node_allow *a = n->allow;
    bool fresh = a == NULL;
    if (fresh && (a = calloc(1, sizeof *a)) == NULL)
        return -ENOMEM;
    bool was = list_find(a, id) != NULL;
    int rc = allow ? list_add(a, id) : 0;
    if (rc == 0 && n->home != NULL)
        rc = edit_file(n->home, id, allow, err, errlen);
    if (rc != 0) {
        if (allow && !was && !fresh)
            list_remove(a, id); /* the file says no: neither does memory */
        if (fresh)
            list_free(a);
        if (err[0] == '\0')
            snprintf(err, errlen, "%s", strerror(-rc));
        node_log(n, CONFAB_LOG_ERROR, "%s", err);
        return rc;
    }
    if (!allow)
        list_remove(a, id);
    n->allow = a;
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, id, WIRE_NODE_ID_BYTES);
    node_log(n, CONFAB_LOG_INFO, "allow-list: %s %s (%zu ids)",
             allow ? "allowed" : "denied", hex, a->len);
    enforce(n);
    return 0;
}

/* ---- the public API ---------------------------------------------------- */

int confab_allow(confab_node *n, const uint8_t id[CONFAB_ID_BYTES])
{
    if (n == NULL || id == NULL)
        return -EINVAL;
    return node_allow_set(n, id, true, NULL, 0);
}

int confab_deny(confab_node *n, const uint8_t id[CONFAB_ID_BYTES])
{
    if (n == NULL || id == NULL)
        return -EINVAL;
    return node_allow_set(n, id, false, NULL, 0);
}

int confab_allowed(const confab_node *n, uint8_t (*ids)[CONFAB_ID_BYTES],
                   size_t cap, size_t *count)
{
    if (n == NULL || count == NULL || (cap > 0 && ids == NULL))
        return -EINVAL;
    *count = 0;
    if (n->allow == NULL)
        return -ENOENT;
    for (size_t i = 0; i < n->allow->len && i < cap; i++)
        memcpy(ids[i], n->allow->ids[i], CONFAB_ID_BYTES);
    *count = n->allow->len;
    return 0;
}

int confab_home_allow(const char *home, const uint8_t id[CONFAB_ID_BYTES],
                      int allow, char *err, size_t errlen)
{
    if (home == NULL || id == NULL || err == NULL || errlen == 0)
        return -EINVAL;
    err[0] = '\0';
    return edit_file(home, id, allow != 0, err, errlen);
}

int confab_home_allowed(const char *home, uint8_t (*ids)[CONFAB_ID_BYTES],
                        size_t cap, size_t *count, char *err, size_t errlen)
{
    if (home == NULL || count == NULL || err == NULL || errlen == 0 ||
        (cap > 0 && ids == NULL))
        return -EINVAL;
    err[0] = '\0';
    *count = 0;
    node_allow *a = NULL;
    int rc = load(home, &a, err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->len && i < cap; i++)
        memcpy(ids[i], a->ids[i], CONFAB_ID_BYTES);
    *count = a->len;
    list_free(a);
    return 0;
}
