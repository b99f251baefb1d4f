/* test_store_damage.c: a store damaged between two runs of a node (a
 * flipped byte, a cut) loses only the records the damage touched, says
 * so, and never blackholes a sender: after the restart its new unicasts
 * flow, and nothing is delivered twice. A sender whose accepted messages
 * were lost reports them failed. A full disk, then a restart, hands out
 * no message twice (docs/ARCHITECTURE.md, "The store"; docs/PROTOCOL.md
 * 12.1 to 12.3). */
#include "net.h"

#include "crypto/sec.h"
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR    33u
#define SUM    16u
#define MAXREC 512u
#define MAXMSG 64u

/* ---- the store file, as a stranger reads format 2 ---------------------- */

typedef struct record {
    off_t off;
    size_t total;
    uint8_t type;
    uint8_t ref[16];
} record;

typedef struct store_walk {
    record r[MAXREC];
    unsigned n;
    off_t size;
} store_walk;

static void walk(const char *path, store_walk *w)
{
    memset(w, 0, sizeof *w);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hdr[HDR];
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
        assert_int_equal(hdr[0], 0xe3); /* the magic: format 2 */
        size_t len = (size_t)hdr[4] | (size_t)hdr[5] << 8 |
                     (size_t)hdr[6] << 16 | (size_t)hdr[7] << 24;
        assert_true(w->n < MAXREC);
        record *r = &w->r[w->n++];
        r->off = w->size;
        r->total = HDR + len + SUM;
        r->type = hdr[8];
        memcpy(r->ref, hdr + 9, 16);
        w->size += (off_t)r->total;
        assert_int_equal(fseek(f, w->size, SEEK_SET), 0);
    }
    fclose(f);
}

/* The messages (by id) a node's inbox must hold after the damage: an
 * INBOX_PUT the damage did not touch, with no INBOX_READ whose header
 * survived (a read mark's header names the message: store.c). `hit` is
 * the damaged record's index (-1: none), hit_at the offset in it; a cut
 * at `cut` touches the record it falls in and loses those after it. */
typedef struct idset {
    uint8_t id[MAXMSG][16];
    unsigned n;
} idset;

static bool idset_has(const idset *s, const uint8_t *id)
{
    for (unsigned i = 0; i < s->n; i++)
        if (memcmp(s->id[i], id, 16) == 0)
            return true;
    return false;
}

static void idset_add(idset *s, const uint8_t *id)
{
    assert_true(s->n < MAXMSG);
    memcpy(s->id[s->n++], id, 16);
}

static void expected_inbox(const store_walk *w, off_t at, bool cut, idset *out)
{
    idset puts = {0}, reads = {0};
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < w->n; i++) {
        const record *r = &w->r[i];
        bool touched = cut ? r->off + (off_t)r->total > at
                           : at >= r->off && at < r->off + (off_t)r->total;
        bool header_whole = cut ? at >= r->off + (off_t)HDR
                                : !touched || at >= r->off + (off_t)HDR;
        if (r->type == NODE_REC_INBOX_PUT && !touched)
            idset_add(&puts, r->ref);
        if (r->type == NODE_REC_INBOX_READ && header_whole)
            idset_add(&reads, r->ref);
    }
    for (unsigned i = 0; i < puts.n; i++)
        if (!idset_has(&reads, puts.id[i]))
            idset_add(out, puts.id[i]);
}

/* ---- the network ------------------------------------------------------- */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/confab-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *copy = malloc(strlen(d) + 1);
    assert_non_null(copy);
    memcpy(copy, d, strlen(d) + 1);
    return copy;
}

static void remove_dir(char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* Log lines that report a damaged store (one test at a time runs). */
static unsigned damage_logged;

static void grab_log(confab_node *node, confab_log_level level, const char *msg,
                     void *user)
{
    if (level == CONFAB_LOG_WARN && strstr(msg, "records lost") != NULL)
        damage_logged++;
    net_log(node, level, msg, user);
}

static void fast(confab_testnet_config *c, const char *dir)
{
    net_config(c, 2);
    c->static_mesh = true;
    c->record_body_max = 16;
    c->home_dir = dir;
    c->node.inbox_max = 1000;
    c->node.ping_interval_ms = 100;
    c->node.peer_timeout_ms = 500;
    c->node.redial_min_ms = 50;
    c->node.redial_max_ms = 200;
    c->node.log_cb = grab_log;
}

/* Sends unicasts numbered from..to-1 (the body is the number). */
static void send_range(confab_testnet *tn, unsigned from, unsigned to,
                       unsigned a, unsigned b, uint8_t ids[][16])
{
    for (unsigned i = a; i < b; i++) {
        char body[16];
        int len = snprintf(body, sizeof body, "%u", i);
        assert_int_equal(confab_send(confab_testnet_node(tn, from),
                                     net_id(tn, to), body, (size_t)len, NULL,
                                     ids != NULL ? ids[i - a] : NULL),
                         0);
    }
}

/* How many unicasts numbered a..b-1 node `to` got from `from` since the
 * events were cleared; fails on any other number, or one twice. */
static unsigned got_range(confab_testnet *tn, unsigned to, unsigned from,
                          unsigned a, unsigned b)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    unsigned seen[MAXMSG] = {0}, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != CONFAB_EV_MESSAGE || ev[i].node != to ||
            ev[i].peer != (int)from)
            continue;
        char text[16];
        assert_true(ev[i].len < sizeof text);
        memcpy(text, ev[i].body, ev[i].len);
        text[ev[i].len] = '\0';
        unsigned v = (unsigned)strtoul(text, NULL, 10);
        if (v < a || v >= b)
            fail_msg("message %u delivered again", v);
        if (seen[v - a]++ != 0)
            fail_msg("message %u delivered twice", v);
        k++;
    }
    return k;
}

typedef struct range_arg {
    unsigned to, from, a, b;
} range_arg;

static bool range_done(confab_testnet *tn, void *arg)
{
    range_arg *r = arg;
    return got_range(tn, r->to, r->from, r->a, r->b) == r->b - r->a;
}

static bool stopped(confab_testnet *tn, void *arg)
{
    return confab_testnet_node(tn, *(unsigned *)arg)->state == NODE_STOPPED;
}

static void stop_node(confab_testnet *tn, unsigned i)
{
    assert_int_equal(confab_testnet_stop_node(tn, i), 0);
    assert_int_equal(
        confab_testnet_run_until(tn, stopped, &i, net_deadline(10000)), 0);
}

typedef struct inbox_ids {
    idset s;
    bool twice;
} inbox_ids;

static void take_id(const confab_message *m, void *user)
{
    inbox_ids *r = user;
    r->twice |= idset_has(&r->s, m->id);
    idset_add(&r->s, m->id);
}

/* ---- the receiver's store damaged -------------------------------------- */

typedef enum damage { FLIP, CUT } damage;

/* Where in the receiver's store to damage: a record of the given type
 * (the k-th of it, -1 the last) at offset `in` within it. */
typedef struct where {
    damage how;
    int type; /* -1: any record */
    int k;
    size_t in; /* bytes into the record; SIZE_MAX: its middle */
} where;

static off_t locate(const store_walk *w, const where *at)
{
    int k = 0;
    const record *pick = NULL;
    for (unsigned i = 0; i < w->n; i++) {
        if (at->type >= 0 && w->r[i].type != at->type)
            continue;
        pick = &w->r[i];
        if (at->k >= 0 && k++ == at->k)
            break;
    }
    if (pick == NULL) { /* fail_msg does not return; -O3 cannot tell */
        fail_msg("no record of type %d in the store", at->type);
        return 0;
    }
    size_t in = at->in == SIZE_MAX ? pick->total / 2 : at->in;
    assert_true(in < pick->total);
    return pick->off + (off_t)in;
}

static void damage_file(const char *path, damage how, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (how == CUT) {
        assert_int_equal(ftruncate(fd, at), 0);
    } else {
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, at), 1);
        b ^= 0x20;
        assert_int_equal(pwrite(fd, &b, 1, at), 1);
    }
    close(fd);
}

static void run_receiver_damage(const where *at)
{
    char *dir = make_dir();
    net_fixture f;
    confab_testnet_config c;
    fast(&c, dir);
    net_start_meshed(&f, &c);
    /* 20 unicasts, all acknowledged; 5 of them read. */
    send_range(f.tn, 1, 0, 0, 20, NULL);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20, net_deadline(10000)), 0);
    inbox_ids before = {{{{0}}, 0}, false};
    assert_int_equal(
        confab_inbox_read(confab_testnet_node(f.tn, 0), 5, take_id, &before),
        5);
    stop_node(f.tn, 0);

    char path[4300];
    snprintf(path, sizeof path, "%s/n0/store.log", dir);
    store_walk w;
    walk(path, &w);
    off_t off = locate(&w, at);
    idset want;
    expected_inbox(&w, off, at->how == CUT, &want);
    damage_file(path, at->how, off);
    bool boundary = false;
    for (unsigned i = 0; i < w.n; i++)
        boundary |= at->how == CUT && w.r[i].off == off;

    damage_logged = 0;
    confab_testnet_clear_events(f.tn);
    assert_int_equal(confab_testnet_restart_node(f.tn, 0), 0);
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    confab_stats st;
    confab_node_stats(n0, &st);
    if (!boundary) {
        /* The damage is found, counted and logged. */
        assert_true(st.store_records_lost >= 1);
        assert_true(damage_logged >= 1);
    }
    /* Every record the damage did not touch is still there: exactly the
     * unread messages it did not touch are in the inbox, each once. */
    inbox_ids after = {{{{0}}, 0}, false};
    size_t left = confab_inbox_count(n0);
    assert_int_equal(confab_inbox_read(n0, SIZE_MAX, take_id, &after), left);
    assert_false(after.twice);
    assert_int_equal(after.s.n, want.n);
    for (unsigned i = 0; i < want.n; i++)
        assert_true(idset_has(&after.s, want.id[i]));

    /* The sender is not blackholed: its new unicasts flow, each once, and
     * none of the old ones comes again. */
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    send_range(f.tn, 1, 0, 20, 40, NULL);
    range_arg r = {0, 1, 20, 40};
    assert_int_equal(
        confab_testnet_run_until(f.tn, range_done, &r, net_deadline(20000)), 0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20, net_deadline(10000)), 0);
    assert_int_equal(got_range(f.tn, 0, 1, 20, 40), 20);
    net_stop(&f);
    remove_dir(dir);
}

static void test_store_damage_receiver_flipped_byte(void **state)
{
    (void)state;
    static const where at[] = {
        {FLIP, NODE_REC_INBOX_PUT, 7, SIZE_MAX},  /* a message's body */
        {FLIP, NODE_REC_INBOX_PUT, 12, 10},       /* a message's header */
        {FLIP, NODE_REC_INBOX_READ, 2, SIZE_MAX}, /* a read mark's body */
        {FLIP, NODE_REC_RX, -1, 20},              /* the last RX's header */
        {FLIP, NODE_REC_EPOCH, 0, SIZE_MAX},      /* the epoch */
        {FLIP, -1, -1, SIZE_MAX},                 /* the last record */
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        run_receiver_damage(&at[i]);
}

static void test_store_damage_receiver_cut(void **state)
{
    (void)state;
    static const where at[] = {
        {CUT, NODE_REC_INBOX_PUT, 8, 0},         /* at a record boundary */
        {CUT, NODE_REC_INBOX_PUT, 10, SIZE_MAX}, /* inside a message */
        {CUT, NODE_REC_INBOX_PUT, 3, 5},         /* inside a header */
        {CUT, -1, -1, SIZE_MAX},                 /* inside the last record */
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        run_receiver_damage(&at[i]);
}

/* ---- a new epoch does not deliver twice -------------------------------- */

typedef struct cut_at {
    unsigned after; /* cut the link once node 0 got this many */
    unsigned got;
} cut_at;

static void cut_on_delivery(confab_testnet *tn, unsigned node,
                            const confab_event *ev, void *user)
{
    cut_at *c = user;
    if (c == NULL || node != 0 || ev->type != CONFAB_EV_MESSAGE)
        return;
    if (++c->got == c->after)
        confab_testnet_cut(tn, 0, 1); /* before this read's ACK goes */
}

static void test_store_damage_new_epoch_delivers_nothing_twice(void **state)
{
    (void)state;
    char *dir = make_dir();
    net_fixture f;
    confab_testnet_config c;
    fast(&c, dir);
    cut_at cut = {.after = 10};
    c.event_cb = cut_on_delivery;
    c.user = &cut;
    net_start_meshed(&f, &c);
    /* 10 unicasts delivered (unread, in the inbox), the link cut before
     * the last ACK: the sender still holds some of them. */
    send_range(f.tn, 1, 0, 0, 10, NULL);
    range_arg r = {0, 1, 0, 10};
    assert_int_equal(
        confab_testnet_run_until(f.tn, range_done, &r, net_deadline(10000)), 0);
    stop_node(f.tn, 0);
    /* A damaged header in the middle of the receiver's store: a new
     * epoch, so the sender numbers its stream from 1 again and sends
     * what it holds again. */
    char path[4300];
    snprintf(path, sizeof path, "%s/n0/store.log", dir);
    store_walk w;
    walk(path, &w);
    where at = {FLIP, NODE_REC_GROUP_JOIN, 0, 0};
    bool has_join = false;
    for (unsigned i = 0; i < w.n; i++)
        has_join |= w.r[i].type == NODE_REC_GROUP_JOIN;
    if (!has_join)
        at = (where){FLIP, NODE_REC_RX, 0, 4};
    damage_file(path, FLIP, locate(&w, &at));
    assert_int_equal(confab_testnet_restart_node(f.tn, 0), 0);
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 0), &st);
    assert_int_equal(st.store_epoch_restarts, 1);
    confab_testnet_heal(f.tn, 0, 1);
    /* The sender's outbox empties (what it held was delivered before,
     * and is dropped by id), then new ones flow, each once. */
    send_range(f.tn, 1, 0, 10, 20, NULL);
    range_arg all = {0, 1, 0, 20};
    assert_int_equal(
        confab_testnet_run_until(f.tn, range_done, &all, net_deadline(20000)),
        0);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20, net_deadline(10000)), 0);
    assert_int_equal(got_range(f.tn, 0, 1, 0, 20), 20);
    assert_int_equal(confab_inbox_count(confab_testnet_node(f.tn, 0)), 20);
    net_stop(&f);
    remove_dir(dir);
}

/* ---- the sender's store damaged ---------------------------------------- */

static void durable(confab_node *n, void *user)
{
    (void)n;
    *(bool *)user = true;
}

static bool flag_set(confab_testnet *tn, void *arg)
{
    (void)tn;
    return *(bool *)arg;
}

static void test_store_damage_sender_reports_lost_sends(void **state)
{
    (void)state;
    char *dir = make_dir();
    net_fixture f;
    confab_testnet_config c;
    fast(&c, dir);
    net_start_meshed(&f, &c);
    /* 10 unicasts accepted while the link is cut: all in the outbox. */
    confab_testnet_cut(f.tn, 0, 1);
    uint8_t ids[10][16];
    send_range(f.tn, 1, 0, 0, 10, ids);
    bool done = false;
    assert_int_equal(
        confab_node_when_durable(confab_testnet_node(f.tn, 1), durable, &done),
        0);
    assert_int_equal(
        confab_testnet_run_until(f.tn, flag_set, &done, net_deadline(10000)),
        0);
    stop_node(f.tn, 1);

    /* One byte of the 4th message's record flipped. */
    char path[4300];
    snprintf(path, sizeof path, "%s/n1/store.log", dir);
    store_walk w;
    walk(path, &w);
    where at = {FLIP, NODE_REC_OUT_PUT, 3, SIZE_MAX};
    off_t off = locate(&w, &at);
    damage_file(path, FLIP, off);

    confab_testnet_clear_events(f.tn);
    assert_int_equal(confab_testnet_restart_node(f.tn, 1), 0);
    confab_testnet_heal(f.tn, 0, 1);
    /* The lost one is reported failed; the 9 others are delivered, each
     * once and in order, and reported delivered. */
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 1, -1, 10, net_deadline(20000)),
        0);
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    unsigned failed = 0, delivered = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != CONFAB_EV_SEND || ev[i].node != 1)
            continue;
        if (ev[i].status == CONFAB_FAILED) {
            assert_memory_equal(ev[i].msg_id, ids[3], 16);
            failed++;
        } else {
            assert_int_equal(ev[i].status, CONFAB_DELIVERED);
            assert_memory_not_equal(ev[i].msg_id, ids[3], 16);
            delivered++;
        }
    }
    assert_int_equal(failed, 1);
    assert_int_equal(delivered, 9);
    const confab_testnet_event *got;
    size_t m = confab_testnet_events(f.tn, &got);
    unsigned next = 0;
    for (size_t i = 0; i < m; i++) {
        if (got[i].type != CONFAB_EV_MESSAGE || got[i].node != 0)
            continue;
        char text[16];
        memcpy(text, got[i].body, got[i].len);
        text[got[i].len] = '\0';
        if (next == 3)
            next++; /* the lost one */
        assert_int_equal((unsigned)strtoul(text, NULL, 10), next);
        next++;
    }
    assert_int_equal(next, 10);
    net_stop(&f);
    remove_dir(dir);
}

static void test_store_damage_sender_cut_loses_no_new_send(void **state)
{
    (void)state;
    char *dir = make_dir();
    net_fixture f;
    confab_testnet_config c;
    fast(&c, dir);
    net_start_meshed(&f, &c);
    send_range(f.tn, 1, 0, 0, 20, NULL);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20,
                                    net_deadline(10000)),
                     0);
    stop_node(f.tn, 1);
    /* The sender's store cut at a record boundary before its first
     * OUT_PUT: it does not know it sent anything (a cut there is
     * invisible). */
    char path[4300];
    snprintf(path, sizeof path, "%s/n1/store.log", dir);
    store_walk w;
    walk(path, &w);
    where at = {CUT, NODE_REC_OUT_PUT, 0, 0};
    damage_file(path, CUT, locate(&w, &at));
    assert_int_equal(confab_testnet_restart_node(f.tn, 1), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    /* Its new unicasts are numbered after what the receiver has (its ACK
     * says), not dropped there as duplicates and reported delivered. */
    send_range(f.tn, 1, 0, 20, 40, NULL);
    range_arg r = {0, 1, 0, 40};
    assert_int_equal(
        confab_testnet_run_until(f.tn, range_done, &r, net_deadline(20000)),
        0);
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 1), &st);
    assert_true(st.delivery_rebased >= 1);
    net_stop(&f);
    remove_dir(dir);
}

/* ---- a full disk ------------------------------------------------------- */

static void test_store_damage_full_disk_reads_nothing_twice(void **state)
{
    (void)state;
    char *dir = make_dir();
    net_fixture f;
    confab_testnet_config c;
    fast(&c, dir);
    net_start_meshed(&f, &c);
    send_range(f.tn, 1, 0, 0, 20, NULL);
    assert_int_equal(
        net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20, net_deadline(10000)), 0);
    /* The disk fills: reading now cannot store its read marks. */
    confab_node *n0 = confab_testnet_node(f.tn, 0);
    assert_int_equal(node_fault_set_store_write(n0, -ENOSPC, 0), 0);
    inbox_ids first = {{{{0}}, 0}, false};
    size_t k = confab_inbox_read(n0, SIZE_MAX, take_id, &first);
    assert_int_equal(k, first.s.n);
    confab_stats st;
    confab_node_stats(n0, &st);
    assert_true(st.inbox_reads_refused >= 1);
    /* Unread messages wait, with a clear error for whoever asks. */
    assert_int_equal(node_inbox_read_error(n0),
                     confab_inbox_count(n0) > 0 ? -ENOSPC : 0);
    stop_node(f.tn, 0);

    /* Space again, and a restart: what was handed out is not handed out
     * again, and what was not is, each once. */
    assert_int_equal(confab_testnet_restart_node(f.tn, 0), 0);
    n0 = confab_testnet_node(f.tn, 0);
    inbox_ids second = first;
    size_t left = confab_inbox_count(n0);
    assert_int_equal(confab_inbox_read(n0, SIZE_MAX, take_id, &second), left);
    assert_false(second.twice);
    assert_int_equal(second.s.n, 20);
    net_stop(&f);
    remove_dir(dir);
}

/* ---- format 1 ---------------------------------------------------------- */

/* Appends a format 1 record: len (4) | type (1) | body | BLAKE2b-128. */
static size_t v1_record(uint8_t *out, uint8_t type, const uint8_t *body,
                        size_t len)
{
    out[0] = (uint8_t)len;
    out[1] = out[2] = out[3] = 0;
    out[4] = type;
    memcpy(out + 5, body, len);
    sec_checksum(out, 5, body, len, out + 5 + len);
    return 5 + len + SUM;
}

static size_t open_home(const char *home, bool *member, confab_stats *st)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    confab_config c;
    confab_config_init(&c);
    c.home = home;
    c.bind_addr = "127.0.0.1";
    c.log_cb = grab_log;
    c.log_level = CONFAB_LOG_WARN;
    confab_node *n;
    assert_int_equal(confab_node_new(&loop, &c, &n), 0);
    *member = confab_is_member(n, "ops") == 1;
    confab_node_stats(n, st);
    size_t v = (size_t)node_store_version(n->store);
    confab_node_free(n); /* never started: nothing to stop */
    assert_int_equal(uv_loop_close(&loop), 0);
    return v;
}

static void test_store_damage_format_1_is_read_and_rewritten(void **state)
{
    (void)state;
    assert_int_equal(sec_init(), 0);
    char *dir = make_dir();
    char path[4300];
    snprintf(path, sizeof path, "%s/store.log", dir);
    /* A store written by the version before: the epoch, a group joined. */
    static const uint8_t epoch[] = {0x81, 0xa1, 'e', 0xcd, 0x12, 0x34};
    static const uint8_t join[] = {0x81, 0xa1, 'g', 0xa3, 'o', 'p', 's'};
    uint8_t file[256];
    size_t len = v1_record(file, NODE_REC_EPOCH, epoch, sizeof epoch);
    len += v1_record(file + len, NODE_REC_GROUP_JOIN, join, sizeof join);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(file, 1, len, fp), len);
    fclose(fp);

    bool member;
    confab_stats st;
    assert_int_equal(open_home(dir, &member, &st), 1); /* read as format 1 */
    assert_true(member);
    assert_int_equal(st.store_records_replayed, 2);
    assert_int_equal(st.store_records_lost, 0);
    /* ... and rewritten as format 2, which the next start reads. */
    store_walk w;
    walk(path, &w); /* fails unless every record has the magic */
    assert_true(w.n >= 2);
    assert_int_equal(open_home(dir, &member, &st), 2);
    assert_true(member);
    assert_int_equal(st.store_records_lost, 0);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_damage_receiver_flipped_byte),
        cmocka_unit_test(test_store_damage_receiver_cut),
        cmocka_unit_test(test_store_damage_new_epoch_delivers_nothing_twice),
        cmocka_unit_test(test_store_damage_sender_reports_lost_sends),
        cmocka_unit_test(test_store_damage_sender_cut_loses_no_new_send),
        cmocka_unit_test(test_store_damage_full_disk_reads_nothing_twice),
        cmocka_unit_test(test_store_damage_format_1_is_read_and_rewritten),
    };
    return cmocka_run_group_tests_name("store_damage", tests, NULL, NULL);
}
