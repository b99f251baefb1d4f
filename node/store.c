/* store.c: the node's log on disk, `<home>/store.log`: an append-only
 * sequence of checksummed records (docs/ARCHITECTURE.md, "The store").
 *
 *   record = len (4 bytes, little-endian) | type (1) | body (len bytes,
 *            a msgpack map) | BLAKE2b-128 of the 5 header bytes and body
 *
 * While the node runs, appending copies the record into a buffer that is
 * written (to the page cache) in one write at the end of the loop turn;
 * otherwise it is written at once. Durability comes from fsync, batched:
 * one fsync, run on libuv's thread pool and started at the end of the
 * turn, covers every record written before it started, and whoever waits
 * for durability (an ACK, a send's acceptance) is called back when it
 * completes (group commit). Nothing waits on a record that is only in the
 * buffer: a kill -9 loses at most records nobody was told are durable. At
 * open the log is replayed; the first record that is short or fails its
 * checksum ends it: it and everything after it are reported and cut off
 * (a crash tears only the last record; nothing before it is lost). When
 * the log holds much more than is live, it is compacted: the live records
 * are written to a new file, which is synced and renamed over the old. */
#include "node/node.h"

#include "crypto/sec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 5u
#define SUM SEC_CHECKSUM_BYTES
#define MAX_RECORD ((size_t)64 << 20) /* larger than any body we write */
#define BUF_CAP ((size_t)256 << 10)    /* records buffered in one turn */

typedef struct store_waiter {
    struct store_waiter *next;
    uint64_t gen; /* the write generation it waits to be durable */
    void (*cb)(confab_node *n, void *arg);
    void *arg;
} store_waiter;

struct node_store {
    confab_node *node;
    char path[4096];
    char tmp_path[4096];
    char dir[4096];
    int fd;
    uint64_t size;          /* bytes in the file */
    uint64_t gen_written;   /* records appended */
    uint64_t gen_synced;    /* covered by a completed fsync */
    uint64_t gen_syncing;   /* covered by the fsync in flight */
    bool syncing;
    bool sync_again;        /* writes came during the fsync in flight */
    bool sync_wanted;       /* start an fsync at the end of the turn */
    uint8_t *buf;           /* records not yet written (BUF_CAP) */
    size_t buf_len;
    bool closing;
    uv_fs_t fsync_req;
    store_waiter *wait_head, *wait_tail;
    int error;              /* a failed write or fsync: sticky */
};

static void fsync_cb(uv_fs_t *req);
static void release_waiters(node_store *s);

/* ---- writing ---------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Lays out the record at rec (HDR + len + SUM bytes). */
static void encode(uint8_t *rec, uint8_t type, const uint8_t *body,
                   size_t len)
{
    rec[0] = (uint8_t)len;
    rec[1] = (uint8_t)(len >> 8);
    rec[2] = (uint8_t)(len >> 16);
    rec[3] = (uint8_t)(len >> 24);
    rec[4] = type;
    if (len > 0)
        memcpy(rec + HDR, body, len);
    sec_checksum(rec, HDR, body, len, rec + HDR + len);
}

static int append_fd(int fd, uint8_t type, const uint8_t *body, size_t len)
{
    /* One write of the whole record, so a crash tears at most this one. */
    size_t total = HDR + len + SUM;
    uint8_t stackbuf[1024];
    uint8_t *rec = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (rec == NULL)
        return -ENOMEM;
    encode(rec, type, body, len);
    int rc = write_all(fd, rec, total);
    if (rec != stackbuf)
        free(rec);
    return rc;
}

static void write_failed(node_store *s, int rc)
{
    /* A partial record may be on disk: the next open cuts it off. Stop
     * writing here, so nothing is claimed durable that is not. */
    s->error = rc;
    s->buf_len = 0;
    node_log(s->node, CONFAB_LOG_ERROR,
             "cannot write %s: %s; the node keeps running but stores "
             "nothing more (free some space and restart it)",
             s->path, uv_strerror(rc));
}

/* Writes the buffered records. */
static int flush_buf(node_store *s)
{
    if (s->buf_len == 0 || s->error != 0)
        return s->error;
    int rc = write_all(s->fd, s->buf, s->buf_len);
    s->buf_len = 0;
    if (rc != 0)
        write_failed(s, rc);
    return rc;
}

int node_store_append(node_store *s, uint8_t type, const uint8_t *body,
                      size_t len)
{
    if (s->error != 0)
        return s->error;
    if (len > MAX_RECORD)
        return -EMSGSIZE;
    size_t total = HDR + len + SUM;
    if (s->buf_len + total > BUF_CAP && flush_buf(s) != 0)
        return s->error;
    if (s->buf == NULL && !s->closing)
        s->buf = malloc(BUF_CAP); /* NULL: records are written at once */
    int rc = 0;
    if (total <= BUF_CAP && s->buf != NULL && node_flush_arm(s->node)) {
        encode(s->buf + s->buf_len, type, body, len);
        s->buf_len += total;
    } else {
        rc = flush_buf(s);
        if (rc == 0) {
            rc = append_fd(s->fd, type, body, len);
            if (rc != 0)
                write_failed(s, rc);
        }
    }
    if (rc != 0)
        return rc;
    s->size += total;
    s->gen_written++;
    return 0;
}

/* ---- durability ------------------------------------------------------- */

static void start_fsync(node_store *s)
{
    s->sync_wanted = false;
    if (flush_buf(s) != 0 || s->syncing || s->gen_synced == s->gen_written)
        return;
    if (s->node->state != NODE_RUNNING && s->node->state != NODE_STOPPING) {
        /* Not running (records written while the node is made): a node
         * that is never started may be freed at once, so nothing may be
         * left pending on the loop. */
        if (fsync(s->fd) != 0) {
            s->error = -errno;
            return;
        }
        s->gen_synced = s->gen_written;
        release_waiters(s);
        return;
    }
    s->gen_syncing = s->gen_written;
    s->syncing = true;
    s->sync_again = false;
    s->fsync_req.data = s;
    int rc = uv_fs_fsync(s->node->loop, &s->fsync_req, s->fd, fsync_cb);
    if (rc != 0) {
        s->syncing = false;
        s->error = rc;
        return;
    }
    s->node->open_handles++; /* a stop waits for it */
}

static void release_waiters(node_store *s)
{
    while (s->wait_head != NULL &&
           (s->wait_head->gen <= s->gen_synced || s->error != 0)) {
        store_waiter *w = s->wait_head;
        s->wait_head = w->next;
        if (s->wait_head == NULL)
            s->wait_tail = NULL;
        if (s->error == 0)
            w->cb(s->node, w->arg);
        free(w);
    }
}

static void fsync_cb(uv_fs_t *req)
{
    node_store *s = req->data;
    confab_node *n = s->node;
    int rc = (int)req->result;
    uv_fs_req_cleanup(req);
    s->syncing = false;
    if (rc < 0 && s->error == 0) {
        s->error = rc;
        node_log(n, CONFAB_LOG_ERROR,
                 "cannot sync %s to disk: %s; nothing more is acknowledged",
                 s->path, uv_strerror(rc));
    } else if (rc >= 0) {
        s->gen_synced = s->gen_syncing;
    }
    release_waiters(s);
    if (!s->closing && s->gen_synced < s->gen_written)
        start_fsync(s);
    node_handle_closed(n); /* may finish a stop: touch nothing after */
}

int node_store_when_durable(node_store *s,
                            void (*cb)(confab_node *n, void *arg), void *arg)
{
    if (s->error != 0)
        return s->error;
    if (s->gen_synced >= s->gen_written) {
        cb(s->node, arg);
        return 0;
    }
    store_waiter *w = malloc(sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->next = NULL;
    w->gen = s->gen_written;
    w->cb = cb;
    w->arg = arg;
    if (s->wait_tail != NULL)
        s->wait_tail->next = w;
    else
        s->wait_head = w;
    s->wait_tail = w;
    node_store_sync(s);
    return 0;
}

void node_store_sync(node_store *s)
{
    /* At the end of the turn, so that one fsync covers all of it. */
    if (!s->syncing && node_flush_arm(s->node))
        s->sync_wanted = true;
    else
        start_fsync(s);
}

void node_store_kick(node_store *s)
{
    if (s->sync_wanted && !s->syncing)
        start_fsync(s);
    else
        (void)flush_buf(s);
}

bool node_store_failed(const node_store *s)
{
    return s->error != 0;
}

uint64_t node_store_gen_written(const node_store *s)
{
    return s->gen_written;
}

uint64_t node_store_gen_synced(const node_store *s)
{
    return s->gen_synced;
}

uint64_t node_store_size(const node_store *s)
{
    return s->size;
}

/* ---- opening and replay ----------------------------------------------- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -errno;
    close(fd);
    return rc;
}

static int read_exact(int fd, uint8_t *buf, size_t len, off_t off,
                      size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t r = pread(fd, buf + *got, len - *got, off + (off_t)*got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* Replays the log; cuts it at the first bad record. */
static int replay(node_store *s, node_store_replay_cb cb, void *arg)
{
    confab_node *n = s->node;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t off = 0, records = 0;
    int rc = 0;
    const char *why = NULL;
    for (;;) {
        uint8_t hdr[HDR];
        size_t got;
        rc = read_exact(s->fd, hdr, HDR, (off_t)off, &got);
        if (rc != 0)
            goto out;
        if (got == 0)
            break; /* the end, cleanly */
        if (got < HDR) {
            why = "is cut short";
            break;
        }
        size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 |
                     (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        if (len > MAX_RECORD) {
            why = "has an impossible length";
            break;
        }
        if (len + SUM > cap) {
            uint8_t *b = realloc(buf, len + SUM);
            if (b == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            buf = b;
            cap = len + SUM;
        }
        rc = read_exact(s->fd, buf, len + SUM, (off_t)(off + HDR), &got);
        if (rc != 0)
            goto out;
        if (got < len + SUM) {
            why = "is cut short";
            break;
        }
        uint8_t sum[SUM];
        sec_checksum(hdr, HDR, buf, len, sum);
        if (memcmp(sum, buf + len, SUM) != 0) { /* damage, not a secret */
            why = "fails its checksum";
            break;
        }
        rc = cb(n, hdr[4], buf, len, arg);
        if (rc != 0) {
            /* A record that checks out but makes no sense is damage too. */
            why = "does not make sense";
            rc = 0;
            break;
        }
        off += HDR + len + SUM;
        records++;
    }
    if (why != NULL) {
        struct stat st;
        uint64_t total = fstat(s->fd, &st) == 0 ? (uint64_t)st.st_size : off;
        node_log(n, CONFAB_LOG_WARN,
                 "%s: the record at byte %llu %s (the node may have stopped "
                 "while writing it); it and the %llu bytes after it are "
                 "discarded, the %llu records before it are kept",
                 s->path, (unsigned long long)off, why,
                 (unsigned long long)(total - off), (unsigned long long)records);
        n->stats.store_bytes_discarded += total - off;
        if (ftruncate(s->fd, (off_t)off) != 0 || fsync(s->fd) != 0) {
            rc = -errno;
            goto out;
        }
    }
    s->size = off;
    n->stats.store_records_replayed = records;
out:
    free(buf);
    return rc;
}

int node_store_open(confab_node *n, const char *dir, node_store_replay_cb cb,
                    void *arg, node_store **out)
{
    node_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->node = n;
    s->fd = -1;
    if ((size_t)snprintf(s->path, sizeof s->path, "%s/store.log", dir) >=
            sizeof s->path ||
        (size_t)snprintf(s->tmp_path, sizeof s->tmp_path, "%s/store.log.tmp",
                         dir) >= sizeof s->tmp_path) {
        free(s);
        return -ENAMETOOLONG;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        int rc = -errno;
        node_log(n, CONFAB_LOG_ERROR,
                 "cannot open %s for writing: %s; the home directory must be "
                 "writable by you (check its owner and mode), or choose "
                 "another with --home",
                 s->path, uv_strerror(rc));
        free(s);
        return rc;
    }
    int rc = replay(s, cb, arg);
    if (rc == 0)
        rc = fsync_dir(dir);
    if (rc != 0) {
        node_log(n, CONFAB_LOG_ERROR, "cannot read %s: %s", s->path,
                 uv_strerror(rc));
        close(s->fd);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- compaction ------------------------------------------------------- */

/* Writes the live records to a new file (dump calls node_store_dump_put()
 * for each), makes it durable, and renames it over the log. */
int node_store_compact(node_store *s,
                       int (*dump)(confab_node *n, int fd, void *arg),
                       void *arg)
{
    if (s->error != 0 || s->syncing)
        return -EBUSY; /* an fsync on the old file is in flight: later */
    /* What is buffered is part of the live state dumped below; written to
     * the old file first all the same, so the file never lags behind. */
    int rc = flush_buf(s);
    if (rc != 0)
        return rc;
    int fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = dump(s->node, fd, arg);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    struct stat st;
    if (rc == 0 && fstat(fd, &st) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(s->tmp_path, s->path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(s->dir);
    if (rc != 0) {
        unlink(s->tmp_path);
        return rc;
    }
    int nfd = open(s->path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (nfd < 0) {
        s->error = -errno;
        return s->error;
    }
    close(s->fd);
    s->fd = nfd;
    s->size = (uint64_t)st.st_size;
    /* Everything live is in the new file, durably. */
    s->gen_synced = s->gen_written;
    release_waiters(s);
    s->node->stats.store_compactions++;
    return 0;
}

int node_store_dump_put(int fd, uint8_t type, const uint8_t *body, size_t len)
{
    return append_fd(fd, type, body, len);
}

/* ---- closing ---------------------------------------------------------- */

void node_store_close(node_store *s)
{
    if (s == NULL)
        return;
    s->closing = true;
    (void)flush_buf(s);
    /* A last, blocking fsync: the node is going away. */
    if (s->error == 0 && s->gen_synced < s->gen_written && fsync(s->fd) == 0)
        s->gen_synced = s->gen_written;
    release_waiters(s);
}

void node_store_free(node_store *s)
{
    if (s == NULL)
        return;
    while (s->wait_head != NULL) {
        store_waiter *w = s->wait_head;
        s->wait_head = w->next;
        free(w);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    free(s);
}
