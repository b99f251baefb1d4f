/* test_store.c: the store's log (node/store.c) survives damage: a flipped
 * byte anywhere, or a cut anywhere, loses only the record it touched;
 * every other record is replayed, in order, and the loss is counted.
 * Format 1 logs are still read; a full disk fails writes cleanly.
 * Compaction interrupted before its rename leaves the old log whole; once
 * renamed, the compacted log is what replays, and appends follow it. */
#include "crypto/sec.h"
#include "node/node.h"
#include "tmpdir.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#define NREC   24u
#define HDR    33u
#define SUM    16u
#define MAXREC 64u

/* What replay handed back. */
typedef struct seen {
    unsigned n;
    int idx[MAXREC]; /* which record each was (from its body) */
    uint8_t type[MAXREC];
} seen;

/* A record's body: its index, then filler; bodies of several sizes. */
static size_t body_of(unsigned i, uint8_t *buf)
{
    size_t len = 1 + (i * 37u) % 150u;
    buf[0] = (uint8_t)i;
    for (size_t k = 1; k < len; k++)
        buf[k] = (uint8_t)(i * 7u + k);
    return len;
}

static uint8_t type_of(unsigned i)
{
    static const uint8_t t[] = {NODE_REC_INBOX_PUT, NODE_REC_INBOX_READ,
                                NODE_REC_OUT_PUT, NODE_REC_RX,
                                NODE_REC_GROUP_JOIN};
    return t[i % (sizeof t / sizeof t[0])];
}

static void ref_of(unsigned i, uint8_t ref[16])
{
    memset(ref, 0, 16);
    ref[0] = 0xa0;
    ref[15] = (uint8_t)i;
}

static int collect(confab_node *n, uint8_t type, const uint8_t *ref,
                   const uint8_t *body, size_t len, void *arg)
{
    seen *s = arg;
    (void)n;
    assert_true(len >= 1);
    unsigned i = body[0];
    uint8_t want[256], wref[16];
    assert_int_equal(len, body_of(i, want));
    assert_memory_equal(body, want, len);
    assert_int_equal(type, type_of(i));
    if (ref != NULL) {
        ref_of(i, wref);
        assert_memory_equal(ref, wref, 16);
    }
    assert_true(s->n < MAXREC);
    s->idx[s->n] = (int)i;
    s->type[s->n] = type;
    s->n++;
    return 0;
}

typedef struct fixture {
    tmpdir *t;
    confab_node *node;   /* zeroed: never started */
    off_t off[NREC + 1]; /* where each record starts; [NREC]: the end */
    uint8_t *pristine;
    size_t size;
} fixture;

static int setup(void **state)
{
    assert_int_equal(sec_init(), 0);
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    void *t = NULL;
    assert_int_equal(tmpdir_setup(&t), 0);
    f->t = t;
    f->node = calloc(1, sizeof *f->node);
    assert_non_null(f->node);
    snprintf(f->t->path, sizeof f->t->path, "%s/store.log", f->t->dir);
    /* The log every test starts from. */
    seen s = {0};
    node_store *st;
    assert_int_equal(node_store_open(f->node, f->t->dir, collect, &s, &st), 0);
    assert_int_equal(s.n, 0);
    for (unsigned i = 0; i < NREC; i++) {
        uint8_t body[256], ref[16];
        size_t len = body_of(i, body);
        ref_of(i, ref);
        f->off[i] = (off_t)node_store_size(st);
        assert_int_equal(node_store_append_ref(st, type_of(i), ref, body, len),
                         0);
    }
    f->off[NREC] = (off_t)node_store_size(st);
    node_store_close(st);
    node_store_free(st);
    FILE *fp = fopen(f->t->path, "rb");
    assert_non_null(fp);
    f->size = (size_t)f->off[NREC];
    f->pristine = malloc(f->size);
    assert_non_null(f->pristine);
    assert_int_equal(fread(f->pristine, 1, f->size, fp), f->size);
    fclose(fp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->pristine);
    node_fault_free(f->node);
    free(f->node);
    void *t = f->t;
    tmpdir_teardown(&t);
    free(f);
    return 0;
}

/* Writes the log as given (len bytes of data). */
static void put_file(fixture *f, const uint8_t *data, size_t len)
{
    FILE *fp = fopen(f->t->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* Opens the log as it stands: what was replayed, and the store. */
static node_store *open_log(fixture *f, seen *s)
{
    memset(s, 0, sizeof *s);
    memset(&f->node->stats, 0, sizeof f->node->stats);
    node_store *st;
    assert_int_equal(node_store_open(f->node, f->t->dir, collect, s, &st), 0);
    return st;
}

/* The record that holds byte `at`. */
static unsigned record_at(const fixture *f, off_t at)
{
    unsigned i = 0;
    while (f->off[i + 1] <= at)
        i++;
    return i;
}

static void test_store_replays_every_record(void **state)
{
    fixture *f = *state;
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(s.n, NREC);
    for (unsigned i = 0; i < NREC; i++)
        assert_int_equal(s.idx[i], (int)i);
    assert_int_equal(node_store_version(st), 2);
    assert_int_equal(node_store_lost(st), 0);
    assert_int_equal(f->node->stats.store_records_replayed, NREC);
    node_store_free(st);
}

static void test_store_flipped_byte_loses_only_its_record(void **state)
{
    fixture *f = *state;
    uint8_t *copy = malloc(f->size);
    assert_non_null(copy);
    /* Every byte of the first records (each part of a header and a body),
     * then every seventh byte of the rest (the stride is prime, so it
     * lands on every part of them too). */
    for (size_t at = 0; at < f->size; at += at < (size_t)f->off[2] ? 1 : 7) {
        memcpy(copy, f->pristine, f->size);
        copy[at] ^= 0x40;
        put_file(f, copy, f->size);
        unsigned hit = record_at(f, (off_t)at);
        seen s;
        node_store *st = open_log(f, &s);
        /* Every other record, in order, and nothing else. */
        assert_int_equal(s.n, NREC - 1);
        for (unsigned i = 0, k = 0; i < NREC; i++)
            if (i != hit)
                assert_int_equal(s.idx[k++], (int)i);
        assert_int_equal(node_store_lost(st), 1);
        assert_int_equal(f->node->stats.store_records_lost, 1);
        assert_int_equal(f->node->stats.store_bytes_discarded,
                         (uint64_t)(f->off[hit + 1] - f->off[hit]));
        size_t nl;
        const node_store_loss *l = node_store_losses(st, &nl);
        assert_int_equal(nl, 1);
        assert_int_equal(l->off, (uint64_t)f->off[hit]);
        assert_int_equal(l->tail, hit == NREC - 1);
        if (at - (size_t)f->off[hit] >= HDR) {
            /* The header is whole: the loss says what the record was. */
            uint8_t ref[16];
            ref_of(hit, ref);
            assert_int_equal(l->type, type_of(hit));
            assert_true(l->has_ref);
            assert_memory_equal(l->ref, ref, 16);
        } else {
            assert_int_equal(l->type, -1);
        }
        node_store_free(st);
    }
    free(copy);
}

static void test_store_cut_anywhere_keeps_every_whole_record(void **state)
{
    fixture *f = *state;
    /* Every offset of the first records, then every seventh, and the end. */
    for (size_t cut = 0; cut <= f->size; cut = cut == f->size ? cut + 1
                                               : cut < (size_t)f->off[2]
                                                   ? cut + 1
                                               : cut + 7 > f->size ? f->size
                                                                   : cut + 7) {
        put_file(f, f->pristine, cut);
        unsigned whole = 0;
        while (whole < NREC && (size_t)f->off[whole + 1] <= cut)
            whole++;
        seen s;
        node_store *st = open_log(f, &s);
        assert_int_equal(s.n, whole);
        for (unsigned i = 0; i < whole; i++)
            assert_int_equal(s.idx[i], (int)i);
        bool torn = (size_t)f->off[whole] != cut;
        assert_int_equal(node_store_lost(st), torn);
        assert_int_equal(f->node->stats.store_bytes_discarded,
                         cut - (size_t)f->off[whole]);
        /* The torn part is cut off, so the next record follows a whole one. */
        assert_int_equal(node_store_size(st), (uint64_t)f->off[whole]);
        struct stat sb;
        assert_int_equal(stat(f->t->path, &sb), 0);
        assert_int_equal((size_t)sb.st_size, (size_t)f->off[whole]);
        node_store_free(st);
    }
}

static void test_store_finds_records_after_a_torn_one(void **state)
{
    fixture *f = *state;
    /* Record 5 torn half way (as a crash leaves it), the rest after it. */
    size_t keep = (size_t)(f->off[5] + (f->off[6] - f->off[5]) / 2);
    size_t len = keep + (f->size - (size_t)f->off[6]);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, f->pristine, keep);
    memcpy(copy + keep, f->pristine + f->off[6], f->size - (size_t)f->off[6]);
    put_file(f, copy, len);
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(s.n, NREC - 1);
    for (unsigned i = 0, k = 0; i < NREC; i++)
        if (i != 5)
            assert_int_equal(s.idx[k++], (int)i);
    assert_int_equal(node_store_lost(st), 1);
    assert_int_equal(f->node->stats.store_bytes_discarded,
                     keep - (size_t)f->off[5]);
    node_store_free(st);
    free(copy);
}

static void test_store_garbage_between_records_is_skipped(void **state)
{
    fixture *f = *state;
    /* 300 bytes of junk (with the magic's first byte in it) over records
     * 8 to 10: those are lost, everything else is kept. */
    uint8_t *copy = malloc(f->size);
    assert_non_null(copy);
    memcpy(copy, f->pristine, f->size);
    size_t from = (size_t)f->off[8] + 3, to = from + 300;
    assert_true(to < (size_t)f->off[NREC - 1]);
    for (size_t k = from; k < to; k++)
        copy[k] = k % 3 ? 0xe3 : (uint8_t)k;
    put_file(f, copy, f->size);
    unsigned first = record_at(f, (off_t)from),
             last = record_at(f, (off_t)to - 1);
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(s.n, NREC - (last - first + 1));
    for (unsigned i = 0, k = 0; i < NREC; i++)
        if (i < first || i > last)
            assert_int_equal(s.idx[k++], (int)i);
    assert_true(node_store_lost(st) >= 1);
    node_store_free(st);
    free(copy);
}

static void test_store_reads_format_1(void **state)
{
    fixture *f = *state;
    /* Format 1: len (4) | type (1) | body | BLAKE2b-128 of both. */
    uint8_t file[4096];
    size_t at = 0;
    for (unsigned i = 0; i < 5; i++) {
        uint8_t body[256];
        size_t len = body_of(i, body);
        uint8_t *r = file + at;
        r[0] = (uint8_t)len;
        r[1] = r[2] = r[3] = 0;
        r[4] = type_of(i);
        memcpy(r + 5, body, len);
        sec_checksum(r, 5, body, len, r + 5 + len);
        at += 5 + len + SUM;
    }
    put_file(f, file, at);
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(node_store_version(st), 1);
    assert_int_equal(s.n, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(s.idx[i], (int)i);
    assert_int_equal(node_store_lost(st), 0);
    node_store_free(st);
}

static void test_store_full_disk_fails_writes_cleanly(void **state)
{
    fixture *f = *state;
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(node_fault_set_store_write(f->node, -ENOSPC, 1), 0);
    uint8_t body[256];
    size_t len = body_of(NREC, body);
    /* One more write succeeds, then the disk is full. */
    assert_int_equal(node_store_write_now(st, 1, NULL, body, len), 0);
    assert_int_equal(node_store_write_now(st, 1, NULL, body, len), -ENOSPC);
    assert_true(node_store_failed(st));
    assert_int_equal(node_store_error(st), -ENOSPC);
    /* Sticky: nothing more is written. */
    assert_int_equal(node_store_append(st, 1, body, len), -ENOSPC);
    node_store_free(st);
}

/* A compaction's dump: the records listed in arg, ending with -1; then
 * fails with arg's error if it has one. */
typedef struct dump_spec {
    int keep[8];
    int fail;
} dump_spec;

static int dump_some(confab_node *n, int fd, void *arg)
{
    (void)n;
    const dump_spec *d = arg;
    for (const int *i = d->keep; *i >= 0; i++) {
        uint8_t body[256], ref[16];
        size_t len = body_of((unsigned)*i, body);
        ref_of((unsigned)*i, ref);
        int rc = node_store_dump_put_ref(NULL, fd, type_of((unsigned)*i), ref,
                                         body, len);
        if (rc != 0)
            return rc;
    }
    return d->fail;
}

static void tmp_path(const fixture *f, char *out, size_t cap)
{
    assert_true((size_t)snprintf(out, cap, "%s/store.log.tmp", f->t->dir) <
                cap);
}

static bool file_equals(const char *path, const uint8_t *data, size_t len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    uint8_t *buf = malloc(len + 1);
    assert_non_null(buf);
    size_t got = fread(buf, 1, len + 1, fp);
    fclose(fp);
    bool same = got == len && memcmp(buf, data, len) == 0;
    free(buf);
    return same;
}

/* Interrupted before the rename: a crash that left a half-written
 * store.log.tmp, and a dump that failed. Either way the old log is whole
 * and replays every record; the store goes on working. */
static void test_store_compaction_interrupted_before_rename(void **state)
{
    fixture *f = *state;
    char tmp[sizeof f->t->path + 16];
    tmp_path(f, tmp, sizeof tmp);
    /* The crash: half a log, then a torn record, in the temporary file. */
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(f->pristine, 1, (size_t)f->off[NREC / 2] + 5, fp),
                     (size_t)f->off[NREC / 2] + 5);
    fclose(fp);
    seen s;
    node_store *st = open_log(f, &s);
    assert_int_equal(s.n, NREC);
    for (unsigned i = 0; i < NREC; i++)
        assert_int_equal(s.idx[i], (int)i);
    assert_int_equal(node_store_lost(st), 0);

    /* The dump fails: the temporary file goes, the log stays as it was. */
    dump_spec d = {{0, 1, 2, -1}, -EIO};
    assert_int_equal(node_store_compact(st, dump_some, &d), -EIO);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_true(file_equals(f->t->path, f->pristine, f->size));
    assert_int_equal(f->node->stats.store_compactions, 0);
    uint8_t body[256], ref[16];
    size_t len = body_of(NREC, body);
    ref_of(NREC, ref);
    assert_int_equal(node_store_append_ref(st, type_of(NREC), ref, body, len),
                     0);
    node_store_close(st);
    node_store_free(st);
    st = open_log(f, &s);
    assert_int_equal(s.n, NREC + 1);
    assert_int_equal(s.idx[NREC], (int)NREC);
    node_store_free(st);
}

/* Once renamed, the compacted log is the log: a node that dies right
 * after replays exactly what the dump wrote, and what is appended after
 * the compaction follows it. */
static void test_store_compaction_after_rename(void **state)
{
    fixture *f = *state;
    seen s;
    node_store *st = open_log(f, &s);
    dump_spec d = {{3, 7, 11, 20, -1}, 0};
    assert_int_equal(node_store_compact(st, dump_some, &d), 0);
    assert_int_equal(f->node->stats.store_compactions, 1);
    char tmp[sizeof f->t->path + 16];
    tmp_path(f, tmp, sizeof tmp);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_true(node_store_size(st) < f->size);
    /* An append after the compaction goes to the compacted log; then the
     * node dies (no close, no last fsync). */
    uint8_t body[256], ref[16];
    size_t len = body_of(NREC, body);
    ref_of(NREC, ref);
    assert_int_equal(node_store_append_ref(st, type_of(NREC), ref, body, len),
                     0);
    node_store_free(st);
    st = open_log(f, &s);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.idx[0], 3);
    assert_int_equal(s.idx[1], 7);
    assert_int_equal(s.idx[2], 11);
    assert_int_equal(s.idx[3], 20);
    assert_int_equal(s.idx[4], (int)NREC);
    assert_int_equal(node_store_lost(st), 0);
    node_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_replays_every_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_store_flipped_byte_loses_only_its_record, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_cut_anywhere_keeps_every_whole_record, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_finds_records_after_a_torn_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_garbage_between_records_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_reads_format_1, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_store_full_disk_fails_writes_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_store_compaction_interrupted_before_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_compaction_after_rename,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
