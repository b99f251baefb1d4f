/* Layer store (node/LAYERS).
 * store.c: the node's log on disk, `<home>/store.log`: an append-only
 * sequence of checksummed records (docs/ARCHITECTURE.md, "The store").
 *
 *   record (format 2) = magic (4: e3 c0 fa b2) | len (4, little-endian) |
 *       type (1) | ref (16: the message id the record is about, or zeros) |
 *       hsum (8: BLAKE2b-128 of the 25 bytes before it, first 8 bytes) |
 *       body (len bytes, a msgpack map) |
 *       sum (16: BLAKE2b-128 of the 33 header bytes and the body)
 *
 * The magic and the header's own checksum make records findable again
 * after damage: replay skips a record that fails its checksum (its header
 * still says how long it is, what type it was and which message it was
 * about) and, when the header itself is damaged, scans forward to the
 * next offset where a header verifies. Every record the damage did not
 * touch is replayed; what was lost is logged, counted and kept in a list
 * (node_store_losses) for the node to act on. Format 1 (len | type | body
 * | sum, no magic) is still read, up to its first bad record, and is
 * rewritten as format 2 at once (home.c).
 *
 * While the node runs, appending copies the record into a buffer that is
 * written (to the page cache) in one write at the end of the loop turn;
 * otherwise it is written at once. Durability comes from fsync, batched:
 * one fsync, run on libuv's thread pool and started at the end of the
 * turn, covers every record written before it started, and whoever waits
 * for durability (an ACK, a send's acceptance) is called back when it
 * completes (group commit). Nothing waits on a record that is only in the
 * buffer: a kill -9 loses at most records nobody was told are durable.
 * When the log holds much more than is live, it is compacted: the live
 * records are written to a new file, which is synced and renamed over the
 * old. */
#include "node/link/link.h"
#include "node/store/store.h"

#include "crypto/sec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC0     0xe3u
#define MAGIC1     0xc0u
#define MAGIC2     0xfau
#define MAGIC3     0xb2u /* over 4: no format 1 length (at most 64 MiB) has it */
#define REF        NODE_STORE_REF_BYTES
#define HSUM       8u
#define HDR        (4u + 4u + 1u + REF + HSUM) /* 33 */
#define V1_HDR     5u
#define SUM        SEC_CHECKSUM_BYTES
#define MAX_RECORD ((size_t)64 << 20)  /* larger than any body we write */
#define BUF_CAP    ((size_t)256 << 10) /* records buffered in one turn */
#define MAX_LOSSES 1024u               /* losses listed one by one */
#define MAX_LOGGED 32u                 /* losses logged one by one */

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
    uint64_t size;        /* bytes in the file */
    uint64_t gen_written; /* records appended */
    uint64_t gen_synced;  /* covered by a completed fsync */
    uint64_t gen_syncing; /* covered by the fsync in flight */
    bool syncing;
    bool sync_again;  /* writes came during the fsync in flight */
    bool sync_wanted; /* start an fsync at the end of the turn */
    uint8_t *buf;     /* records not yet written (BUF_CAP) */
    size_t buf_len;
    bool closing;
    uv_fs_t fsync_req;
    store_waiter *wait_head, *wait_tail;
    int error; /* a failed write or fsync: sticky */
    /* what replay found */
    int version;       /* of the file as found: 1 or 2 */
    uint64_t tail_off; /* damage from here to the end: cut off */
    node_store_loss *losses;
    size_t n_losses;
    uint64_t lost_records, lost_unknown, bytes_skipped;
    uint64_t lost_by_type[256];
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

/* The store's writes, through the one place a test can make them fail
 * (none for a compaction's new file: s is NULL). */
static int store_write(node_store *s, int fd, const uint8_t *p, size_t len)
{
    int rc = s != NULL ? node_fault_store_write(s->node) : 0;
    return rc != 0 ? rc : write_all(fd, p, len);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Lays out the record at rec (HDR + len + SUM bytes). */
static void encode(uint8_t *rec, uint8_t type, const uint8_t *ref,
                   const uint8_t *body, size_t len)
{
    rec[0] = MAGIC0;
    rec[1] = MAGIC1;
    rec[2] = MAGIC2;
    rec[3] = MAGIC3;
    put_le32(rec + 4, (uint32_t)len);
    rec[8] = type;
    if (ref != NULL)
        memcpy(rec + 9, ref, REF);
    else
        memset(rec + 9, 0, REF);
    uint8_t h[SUM];
    sec_checksum(rec, HDR - HSUM, NULL, 0, h);
    memcpy(rec + HDR - HSUM, h, HSUM);
    if (len > 0)
        memcpy(rec + HDR, body, len);
    sec_checksum(rec, HDR, body, len, rec + HDR + len);
}

static int append_fd(node_store *s, int fd, uint8_t type, const uint8_t *ref,
                     const uint8_t *body, size_t len)
{
    /* One write of the whole record, so a crash tears at most this one. */
    size_t total = HDR + len + SUM;
    uint8_t stackbuf[1024];
    uint8_t *rec = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (rec == NULL)
        return -ENOMEM;
    encode(rec, type, ref, body, len);
    int rc = store_write(s, fd, rec, total);
    if (rec != stackbuf)
        free(rec);
    return rc;
}

static void write_failed(node_store *s, int rc)
{
    /* A partial record may be on disk: the next open skips it. Stop
     * writing here, so nothing is claimed durable that is not. */
    s->error = rc;
    s->buf_len = 0;
    node_log(s->node, CONFAB_LOG_ERROR,
             "cannot write %s: %s; the node keeps running but stores "
             "nothing more: it accepts no sends, acknowledges nothing and "
             "hands out no message it cannot mark read (free some space "
             "and restart it)",
             s->path, uv_strerror(rc));
}

/* Writes the buffered records. */
static int flush_buf(node_store *s)
{
    if (s->buf_len == 0 || s->error != 0)
        return s->error;
    int rc = store_write(s, s->fd, s->buf, s->buf_len);
    s->buf_len = 0;
    if (rc != 0)
        write_failed(s, rc);
    return rc;
}

int node_store_append_ref(node_store *s, uint8_t type, const uint8_t *ref,
                          const uint8_t *body, size_t len)
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
        encode(s->buf + s->buf_len, type, ref, body, len);
        s->buf_len += total;
    } else {
        rc = flush_buf(s);
        if (rc == 0) {
            rc = append_fd(s, s->fd, type, ref, body, len);
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

int node_store_append(node_store *s, uint8_t type, const uint8_t *body,
                      size_t len)
{
    return node_store_append_ref(s, type, NULL, body, len);
}

int node_store_write_now(node_store *s, uint8_t type, const uint8_t *ref,
                         const uint8_t *body, size_t len)
{
    if (s->error != 0)
        return s->error;
    if (len > MAX_RECORD)
        return -EMSGSIZE;
    int rc = flush_buf(s);
    if (rc == 0) {
        rc = append_fd(s, s->fd, type, ref, body, len);
        if (rc != 0)
            write_failed(s, rc);
    }
    if (rc != 0)
        return rc;
    s->size += HDR + len + SUM;
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

int node_store_error(const node_store *s)
{
    return s->error;
}

int node_store_version(const node_store *s)
{
    return s->version;
}

const node_store_loss *node_store_losses(const node_store *s, size_t *n)
{
    *n = s->n_losses;
    return s->losses;
}

uint64_t node_store_lost(const node_store *s)
{
    return s->lost_records;
}

const char *node_store_path(const node_store *s)
{
    return s->path;
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

const char *node_store_type_name(int type)
{
    if (type < 0 || type > NODE_REC_MAX || node_record_types[type].name == NULL)
        return "unknown";
    return node_record_types[type].name;
}

/* Notes one lost record: type -1 when its header was damaged too. */
static void lost(node_store *s, uint64_t off, int type, const uint8_t *ref,
                 bool tail, const char *why)
{
    s->lost_records++;
    if (type < 0)
        s->lost_unknown++;
    else
        s->lost_by_type[type]++;
    bool has_ref = false;
    if (ref != NULL)
        for (size_t i = 0; i < REF; i++)
            has_ref |= ref[i] != 0;
    char hex[2 * REF + 1] = "";
    if (has_ref)
        for (size_t i = 0; i < REF; i++)
            snprintf(hex + 2 * i, 3, "%02x", ref[i]);
    if (s->lost_records <= MAX_LOGGED) /* then only the summary */
        node_log(s->node, CONFAB_LOG_WARN,
                 "%s: the record at byte %llu %s: lost one %s record%s%s",
                 s->path, (unsigned long long)off, why,
                 node_store_type_name(type), has_ref ? " about message " : "",
                 hex);
    if (s->n_losses == MAX_LOSSES)
        return; /* counted, not listed */
    if (s->losses == NULL) {
        s->losses = calloc(MAX_LOSSES, sizeof *s->losses);
        if (s->losses == NULL)
            return;
    }
    node_store_loss *l = &s->losses[s->n_losses++];
    l->off = off;
    l->type = type;
    l->tail = tail;
    l->has_ref = has_ref;
    if (has_ref)
        memcpy(l->ref, ref, REF);
}

static bool magic_at(const uint8_t *p)
{
    return p[0] == MAGIC0 && p[1] == MAGIC1 && p[2] == MAGIC2 && p[3] == MAGIC3;
}

/* Whether a format 2 header that verifies starts at p (HDR bytes there). */
static bool header_ok(const uint8_t *p)
{
    if (!magic_at(p))
        return false;
    uint8_t h[SUM];
    sec_checksum(p, HDR - HSUM, NULL, 0, h);
    /* damage, not a secret: memcmp */
    return memcmp(h, p + HDR - HSUM, HSUM) == 0 &&
           get_le32(p + 4) <= MAX_RECORD;
}

/* The next offset at or after from where a header verifies; size if none. */
static uint64_t next_header(const uint8_t *m, uint64_t size, uint64_t from)
{
    for (uint64_t o = from; size - o >= HDR; o++) {
        const uint8_t *q = memchr(m + o, MAGIC0, (size_t)(size - o - HDR + 1));
        if (q == NULL)
            break;
        o = (uint64_t)(q - m);
        if (header_ok(q))
            return o;
    }
    return size;
}

/* Replays format 2: every record that verifies, skipping what does not. */
static void replay_v2(node_store *s, const uint8_t *m, uint64_t size,
                      node_store_replay_cb cb, void *arg, uint64_t *kept)
{
    uint64_t off = 0;
    while (off < size) {
        uint64_t left = size - off;
        const uint8_t *p = m + off;
        if (left < HDR || !header_ok(p)) {
            /* The header is damaged (or cut short): what it was is
             * unknown; the next header that verifies ends the damage. */
            uint64_t next = next_header(m, size, off + 1);
            lost(s, off, -1, NULL, next == size,
                 left < HDR ? "is cut short" : "has a damaged header");
            s->bytes_skipped += next - off;
            if (next == size)
                s->tail_off = off;
            off = next;
            continue;
        }
        size_t len = get_le32(p + 4);
        uint8_t type = p[8];
        const uint8_t *ref = p + 9;
        if (left - HDR < (uint64_t)len + SUM) {
            /* Cut short, unless records were appended after a torn one. */
            uint64_t next = next_header(m, size, off + HDR);
            lost(s, off, type, ref, next == size, "is cut short");
            s->bytes_skipped += next - off;
            if (next == size)
                s->tail_off = off;
            off = next;
            continue;
        }
        uint64_t total = HDR + len + SUM;
        uint8_t sum[SUM];
        sec_checksum(p, HDR, p + HDR, len, sum);
        if (memcmp(sum, p + HDR + len, SUM) != 0) { /* damage, not a secret */
            /* The header verified, so its length is most likely right and
             * the next record starts where this one ends; unless no
             * record does start there (a record torn by a crash, with
             * records appended after it): then at the next header. */
            uint64_t next = off + total;
            if (next < size && (size - next < HDR || !header_ok(m + next)))
                next = next_header(m, size, off + HDR);
            lost(s, off, type, ref, next == size, "fails its checksum");
            s->bytes_skipped += next - off;
            if (next == size)
                s->tail_off = off;
            off = next;
            continue;
        } else if (cb(s->node, type, ref, p + HDR, len, arg) != 0) {
            /* A record that checks out but makes no sense is damage too. */
            lost(s, off, type, ref, left == total, "does not make sense");
            s->bytes_skipped += total;
        } else {
            (*kept)++;
        }
        off += total;
    }
}

/* Replays format 1 (no magic, no header checksum): records are not
 * findable after a bad one, so the first bad record ends the replay. */
static void replay_v1(node_store *s, const uint8_t *m, uint64_t size,
                      node_store_replay_cb cb, void *arg, uint64_t *kept)
{
    uint64_t off = 0;
    while (off < size) {
        uint64_t left = size - off;
        const uint8_t *p = m + off;
        const char *why = NULL;
        size_t len = left >= V1_HDR ? get_le32(p) : 0;
        uint8_t sum[SUM];
        if (left < V1_HDR || len > MAX_RECORD ||
            left - V1_HDR < (uint64_t)len + SUM) {
            why = "is cut short";
        } else {
            sec_checksum(p, V1_HDR, p + V1_HDR, len, sum);
            if (memcmp(sum, p + V1_HDR + len, SUM) != 0)
                why = "fails its checksum";
            else if (cb(s->node, p[4], NULL, p + V1_HDR, len, arg) != 0)
                why = "does not make sense";
        }
        if (why != NULL) {
            lost(s, off, left >= V1_HDR ? p[4] : -1, NULL, true, why);
            s->bytes_skipped += left;
            s->tail_off = off;
            return;
        }
        (*kept)++;
        off += V1_HDR + len + SUM;
    }
}

/* Which format the file is in: 2 if it starts with the magic (or is
 * empty), 1 if it starts with a format 1 record that verifies, else 2
 * (damaged at its start: the scan finds what follows). */
static int detect_version(const uint8_t *m, uint64_t size)
{
    if (size == 0 || (size >= 4 && magic_at(m)))
        return 2;
    if (size < V1_HDR)
        return 2;
    size_t len = get_le32(m);
    if (len > MAX_RECORD || size - V1_HDR < (uint64_t)len + SUM)
        return 2;
    uint8_t sum[SUM];
    sec_checksum(m, V1_HDR, m + V1_HDR, len, sum);
    return memcmp(sum, m + V1_HDR + len, SUM) == 0 ? 1 : 2;
}

static void log_summary(node_store *s, uint64_t kept)
{
    char by[1024] = "";
    size_t at = 0;
    for (int t = -1; t < 256; t++) {
        uint64_t c = t < 0 ? s->lost_unknown : s->lost_by_type[t];
        if (c == 0 || at >= sizeof by)
            continue;
        int w = snprintf(by + at, sizeof by - at, "%s%llu %s", at ? ", " : "",
                         (unsigned long long)c, node_store_type_name(t));
        if (w > 0)
            at += (size_t)w;
    }
    node_log(s->node, CONFAB_LOG_WARN,
             "%s is damaged: %llu records lost (%s), %llu bytes discarded; "
             "the %llu records the damage did not touch are kept",
             s->path, (unsigned long long)s->lost_records, by,
             (unsigned long long)s->bytes_skipped, (unsigned long long)kept);
}

/* Replays the log; records what the damage, if any, cost. */
static int replay(node_store *s, node_store_replay_cb cb, void *arg)
{
    confab_node *n = s->node;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size, kept = 0;
    s->version = 2;
    s->tail_off = size;
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, s->fd, 0);
        if (m == MAP_FAILED)
            return -errno;
        s->version = detect_version(m, size);
        if (s->version == 1)
            replay_v1(s, m, size, cb, arg, &kept);
        else
            replay_v2(s, m, size, cb, arg, &kept);
        munmap(m, (size_t)size);
    }
    if (s->lost_records > 0)
        log_summary(s, kept);
    s->size = size;
    if (s->lost_records > 0 && s->tail_off < size) {
        /* Damage that runs to the end (a crash's torn write, or a cut):
         * cut it off, so that what is appended next follows a whole
         * record. */
        if (ftruncate(s->fd, (off_t)s->tail_off) != 0 || fsync(s->fd) != 0)
            return -errno;
        s->size = s->tail_off;
    }
    n->stats.store_records_replayed = kept;
    n->stats.store_bytes_discarded += s->bytes_skipped;
    n->stats.store_records_lost += s->lost_records;
    return 0;
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
        free(s->losses);
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

int node_store_dump_put_ref(node_store *s, int fd, uint8_t type,
                            const uint8_t *ref, const uint8_t *body, size_t len)
{
    (void)s;
    return append_fd(NULL, fd, type, ref, body, len);
}

int node_store_dump_put(int fd, uint8_t type, const uint8_t *body, size_t len)
{
    return append_fd(NULL, fd, type, NULL, body, len);
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
    free(s->losses);
    free(s->buf);
    free(s);
}
