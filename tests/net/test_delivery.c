/* test_delivery.c: unicast loses nothing (docs/PROTOCOL.md section 12):
 * through cut and healed links, through a receiver's and a sender's
 * restart with the same home, and a store whose tail is torn or corrupt
 * keeps every record before the damage. Broadcast is best effort, and
 * says so. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a stream of numbered unicasts ------------------------------------- */

typedef struct stream {
    unsigned from, to;
    unsigned total;    /* how many to send */
    unsigned sent;     /* accepted so far */
    unsigned refused;  /* -EAGAIN answers */
} stream;

/* Sends as many as the outbox takes now; bodies are the numbers. */
static void pump(confab_testnet *tn, stream *s)
{
    confab_node *n = confab_testnet_node(tn, s->from);
    if (n == NULL || !confab_testnet_running(tn, s->from))
        return;
    while (s->sent < s->total) {
        char body[16];
        int len = snprintf(body, sizeof body, "%u", s->sent);
        int rc = confab_send(n, net_id(tn, s->to), body, (size_t)len, NULL,
                             NULL);
        if (rc == -EAGAIN) {
            s->refused++;
            return;
        }
        assert_int_equal(rc, 0);
        s->sent++;
    }
}

/* The messages node `to` got from `from`, as numbers, checked to be
 * 0, 1, 2, ... with none twice. Returns how many. */
static unsigned check_in_order(confab_testnet *tn, const stream *s)
{
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    unsigned next = 0;
    for (size_t k = 0; k < n; k++) {
        if (ev[k].type != CONFAB_EV_MESSAGE || ev[k].node != s->to ||
            ev[k].peer != (int)s->from)
            continue;
        char text[16];
        assert_true(ev[k].len < sizeof text);
        memcpy(text, ev[k].body, ev[k].len);
        text[ev[k].len] = '\0';
        if ((unsigned)strtoul(text, NULL, 10) != next)
            fail_msg("got message %s where %u was due", text, next);
        next++;
    }
    return next;
}

static size_t received(confab_testnet *tn, const stream *s)
{
    return confab_testnet_count(tn, CONFAB_EV_MESSAGE, (int)s->to,
                                (int)s->from);
}

static void fast(confab_testnet_config *c, unsigned n)
{
    net_config(c, n);
    c->static_mesh = true;
    c->record_body_max = 16;
    c->node.ping_interval_ms = 100;
    c->node.peer_timeout_ms = 500;
    c->node.redial_min_ms = 50;
    c->node.redial_max_ms = 200;
}

/* ---- through cut links ------------------------------------------------ */

typedef struct cutting {
    stream s;
    unsigned cuts_done;
    bool cut;        /* the link is cut now */
    unsigned at[4];  /* cut when this many have arrived */
} cutting;

static bool cut_and_heal(confab_testnet *tn, void *arg)
{
    cutting *c = arg;
    pump(tn, &c->s);
    size_t got = received(tn, &c->s);
    if (!c->cut && c->cuts_done < 4 && got >= c->at[c->cuts_done]) {
        confab_testnet_cut(tn, 0, 1);
        c->cut = true;
    } else if (c->cut && confab_testnet_count(tn, CONFAB_EV_PEER_DOWN, 0, 1) >
                             c->cuts_done &&
               confab_testnet_count(tn, CONFAB_EV_PEER_DOWN, 1, 0) >
                   c->cuts_done) {
        /* Both saw the link die of silence: heal it. */
        confab_testnet_heal(tn, 0, 1);
        c->cut = false;
        c->cuts_done++;
    }
    /* Done when all arrived and the sender heard every acknowledgement. */
    return c->cuts_done == 4 && got == c->s.total &&
           confab_testnet_count(tn, CONFAB_EV_SEND, 0, 1) == c->s.total;
}

static void test_delivery_ten_thousand_through_cuts(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    fast(&c, 2);
    net_start_meshed(&f, &c);
    cutting cut = {.s = {.from = 0, .to = 1, .total = 10000},
                   .at = {1000, 3000, 5500, 8000}};
    assert_int_equal(confab_testnet_run_until(f.tn, cut_and_heal, &cut,
                                              net_deadline(120000)),
                     0);
    /* Every one once, in order, and every one reported delivered. */
    assert_int_equal(check_in_order(f.tn, &cut.s), 10000);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_SEND, 0, 1), 10000);
    confab_stats st;
    confab_node_stats(confab_testnet_node(f.tn, 0), &st);
    assert_int_equal(st.outbox_msgs, 0);
    assert_true(st.retransmits > 0); /* the cuts did cost something */
    net_stop(&f);
}

/* ---- through restarts ------------------------------------------------- */

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

typedef struct restarting {
    stream s;
    unsigned who;      /* the node that restarts */
    unsigned stop_at;  /* once this many arrived */
    int phase;         /* 0 sending, 1 stopped, 2 restarted */
    unsigned sent_while_down;
} restarting;

static bool stop_and_restart(confab_testnet *tn, void *arg)
{
    restarting *r = arg;
    pump(tn, &r->s);
    size_t got = received(tn, &r->s);
    if (r->phase == 0 && got >= r->stop_at) {
        assert_int_equal(confab_testnet_stop_node(tn, r->who), 0);
        r->phase = 1;
        r->sent_while_down = r->s.sent;
    } else if (r->phase == 1 &&
               (r->who == r->s.from || r->s.sent > r->sent_while_down + 100 ||
                r->s.sent == r->s.total)) {
        /* The sender kept sending into its outbox meanwhile (or it is the
         * one that stopped, with its outbox in its store). */
        assert_int_equal(confab_testnet_restart_node(tn, r->who), 0);
        r->phase = 2;
    }
    return r->phase == 2 && got == r->s.total;
}

static void run_restart(unsigned who)
{
    net_fixture f;
    confab_testnet_config c;
    char *dir = make_dir();
    fast(&c, 2);
    c.home_dir = dir;
    net_start_meshed(&f, &c);
    restarting r = {.s = {.from = 1, .to = 0, .total = 3000},
                    .who = who,
                    .stop_at = 1000};
    assert_int_equal(confab_testnet_run_until(f.tn, stop_and_restart, &r,
                                              net_deadline(60000)),
                     0);
    /* Across the two lives of the restarted node: each once, in order. */
    assert_int_equal(check_in_order(f.tn, &r.s), 3000);
    net_stop(&f);
    remove_dir(dir);
}

static void test_delivery_receiver_restarts_with_its_home(void **state)
{
    (void)state;
    run_restart(0);
}

static void test_delivery_sender_restarts_with_its_home(void **state)
{
    (void)state;
    run_restart(1);
}

/* ---- an anycast across the sender's restart --------------------------- */

typedef struct anycast_wait {
    uint8_t id[CONFAB_MSG_ID_BYTES];
    confab_send_status status;
    bool done;
} anycast_wait;

static bool anycast_outcome_came(confab_testnet *tn, void *arg)
{
    anycast_wait *w = arg;
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(tn, &ev);
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_SEND && ev[k].node == 1 &&
            memcmp(ev[k].msg_id, w->id, sizeof w->id) == 0) {
            w->status = ev[k].status;
            w->done = true;
        }
    return w->done;
}

static void durable_cb(confab_node *node, void *user)
{
    (void)node;
    *(bool *)user = true;
}

static bool flag_set(confab_testnet *tn, void *arg)
{
    (void)tn;
    return *(bool *)arg;
}

/* Waits until everything node i accepted is on disk. */
static int net_wait_durable(confab_testnet *tn, unsigned i)
{
    bool durable = false;
    int rc = confab_node_when_durable(confab_testnet_node(tn, i), durable_cb,
                                      &durable);
    if (rc != 0)
        return rc;
    return confab_testnet_run_until(tn, flag_set, &durable,
                                    net_deadline(5000));
}

static void test_delivery_anycast_survives_the_senders_restart(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    char *dir = make_dir();
    fast(&c, 2);
    c.home_dir = dir;
    c.node.anycast_timeout_ms = 200;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(confab_testnet_new(&f.loop, &c, &f.tn), 0);
    const char *calc[] = {"calc"};
    assert_int_equal(confab_testnet_set_groups(f.tn, 0, calc, 1), 0);
    assert_int_equal(confab_testnet_start(f.tn), 0);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);

    /* The member cannot hear: the anycast is accepted and waits. */
    confab_testnet_cut(f.tn, 0, 1);
    anycast_wait w = {.done = false};
    assert_int_equal(confab_anycast(confab_testnet_node(f.tn, 1), "calc",
                                    "job", 3, NULL, w.id),
                     0);
    /* Accepted means durable: then the sender stops, cleanly. */
    assert_int_equal(net_wait_durable(f.tn, 1), 0);
    assert_int_equal(confab_testnet_stop_node(f.tn, 1), 0);
    confab_testnet_heal(f.tn, 0, 1);
    /* It was not given up on the way down... */
    assert_false(anycast_outcome_came(f.tn, &w));
    /* ...and its next life delivers it, once. */
    assert_int_equal(confab_testnet_restart_node(f.tn, 1), 0);
    assert_int_equal(confab_testnet_run_until(f.tn, anycast_outcome_came, &w,
                                              net_deadline(10000)),
                     0);
    assert_int_equal(w.status, CONFAB_DELIVERED);
    assert_int_equal(confab_testnet_count(f.tn, CONFAB_EV_MESSAGE, 0, 1), 1);
    const confab_testnet_event *m = net_last(f.tn, CONFAB_EV_MESSAGE, 0, 1);
    assert_int_equal(m->kind, CONFAB_ANYCAST);
    assert_memory_equal(m->msg_id, w.id, sizeof w.id);
    net_stop(&f);
    remove_dir(dir);
}

/* ---- a damaged store -------------------------------------------------- */

typedef struct record_walk {
    unsigned count;        /* whole, valid-looking records */
    unsigned inbox_puts;   /* of type 1 */
    unsigned inbox_reads;  /* of type 2 */
    off_t last_off;        /* where the last one starts */
    size_t last_len;
    uint8_t last_type;
} record_walk;

/* Walks the store's records by their length fields (docs/ARCHITECTURE.md
 * "The store"): 4 bytes of length, a type byte, the body, 16 bytes of
 * checksum. */
/* Walks a store of format 2 (docs/ARCHITECTURE.md, "The store"): a
 * 33-byte header (magic, length, type, ref, header checksum), the body,
 * a 16-byte checksum. */
static void walk_store(const char *path, record_walk *w)
{
    memset(w, 0, sizeof *w);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    off_t off = 0;
    uint8_t hdr[33];
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
        size_t len = (size_t)hdr[4] | (size_t)hdr[5] << 8 |
                     (size_t)hdr[6] << 16 | (size_t)hdr[7] << 24;
        if (fseek(f, (long)(len + 16), SEEK_CUR) != 0)
            break;
        w->count++;
        w->inbox_puts += hdr[8] == 1;
        w->inbox_reads += hdr[8] == 2;
        w->last_off = off;
        w->last_len = sizeof hdr + len + 16;
        w->last_type = hdr[8];
        off += (off_t)(sizeof hdr + len + 16);
    }
    fclose(f);
}

typedef struct logged {
    char line[1024];
    bool seen;
} logged;

static void grab_log(confab_node *node, confab_log_level level,
                     const char *msg, void *user)
{
    logged *l = user;
    (void)node;
    if (level == CONFAB_LOG_WARN && strstr(msg, "store.log") != NULL) {
        snprintf(l->line, sizeof l->line, "%s", msg);
        l->seen = true;
    }
}

/* Opens a node on home as it stands, and reports what it found. */
static void reopen(const char *home, logged *log, size_t *inbox,
                   confab_stats *st)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    confab_config c;
    confab_config_init(&c);
    c.home = home;
    c.inbox_max = 1000;
    c.bind_addr = "127.0.0.1";
    c.log_cb = grab_log;
    c.log_level = CONFAB_LOG_WARN;
    c.user = log;
    confab_node *n;
    assert_int_equal(confab_node_new(&loop, &c, &n), 0);
    *inbox = confab_inbox_count(n);
    confab_node_stats(n, st);
    confab_node_free(n); /* never started: nothing to stop */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void fill_home(const char *dir, char *home, size_t cap)
{
    /* A receiver with an inbox gets 20 messages, all acknowledged (so all
     * durable), then both stop. */
    net_fixture f;
    confab_testnet_config c;
    fast(&c, 2);
    c.home_dir = dir;
    c.node.inbox_max = 1000;
    net_start_meshed(&f, &c);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(confab_send(confab_testnet_node(f.tn, 1),
                                     net_id(f.tn, 0), "stored", 6, NULL, NULL),
                         0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_SEND, 1, 0, 20, 10000), 0);
    net_stop(&f);
    snprintf(home, cap, "%s/n0", dir);
}

static void test_delivery_torn_tail_is_cut_off(void **state)
{
    (void)state;
    char *dir = make_dir();
    char home[4200], path[4300];
    fill_home(dir, home, sizeof home);
    snprintf(path, sizeof path, "%s/store.log", home);
    record_walk before;
    walk_store(path, &before);
    assert_int_equal(before.inbox_puts, 20);
    /* A record torn by a crash: its header and part of its body. */
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    static const uint8_t torn[] = {200, 0, 0, 0, 1, 0x89, 0xa2, 'i'};
    assert_int_equal(fwrite(torn, 1, sizeof torn, f), sizeof torn);
    fclose(f);

    logged log = {{0}, false};
    size_t inbox;
    confab_stats st;
    reopen(home, &log, &inbox, &st);
    assert_true(log.seen); /* reported */
    assert_non_null(strstr(log.line, "discarded"));
    assert_int_equal(st.store_bytes_discarded, sizeof torn);
    assert_int_equal(inbox, 20); /* every earlier record kept */
    record_walk after;
    walk_store(path, &after);
    assert_int_equal(after.count, before.count); /* the file is whole */
    remove_dir(dir);
}

static void test_delivery_corrupt_tail_is_cut_off(void **state)
{
    (void)state;
    char *dir = make_dir();
    char home[4200], path[4300];
    fill_home(dir, home, sizeof home);
    snprintf(path, sizeof path, "%s/store.log", home);
    record_walk before;
    walk_store(path, &before);
    /* Flip one bit inside the last record's body. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = before.last_off + 33 + (off_t)(before.last_len - 49) / 2;
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);

    logged log = {{0}, false};
    size_t inbox;
    confab_stats st;
    reopen(home, &log, &inbox, &st);
    assert_true(log.seen);
    assert_non_null(strstr(log.line, "1 records lost"));
    assert_int_equal(st.store_bytes_discarded, before.last_len);
    /* All records but the damaged last one were kept. */
    unsigned puts = before.inbox_puts - (before.last_type == 1);
    assert_int_equal(inbox, puts);
    assert_int_equal(st.store_records_replayed, before.count - 1);
    remove_dir(dir);
}

/* ---- an unwritable home ----------------------------------------------- */

static void test_delivery_unwritable_home_is_a_clear_error(void **state)
{
    (void)state;
    char *dir = make_dir();
    char home[4200];
    snprintf(home, sizeof home, "%s/home", dir);
    assert_int_equal(mkdir(home, 0700), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Root may write anywhere: become nobody to meet the refusal. */
        close(p[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        if (geteuid() != 0)
            (void)chmod(home, 0500);
        logged log = {{0}, false};
        uv_loop_t loop;
        uv_loop_init(&loop);
        confab_config c;
        confab_config_init(&c);
        c.home = home;
        c.log_cb = grab_log;
        c.log_level = CONFAB_LOG_ERROR;
        c.user = &log;
        confab_node *n;
        int rc = confab_node_new(&loop, &c, &n);
        if (rc == 0)
            confab_node_free(n);
        (void)uv_loop_close(&loop);
        free(dir); /* the child exits clean, for valgrind's sake */
        if (write(p[1], &rc, sizeof rc) != (ssize_t)sizeof rc)
            _exit(4);
        _exit(0);
    }
    close(p[1]);
    int rc = 0;
    assert_int_equal(read(p[0], &rc, sizeof rc), (ssize_t)sizeof rc);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(rc == -EACCES || rc == -EPERM);
    remove_dir(dir);
}

/* The message the unwritable home gives, checked in this process (the
 * refusal itself needs another user, above). */
static void test_delivery_home_error_says_what_to_do(void **state)
{
    (void)state;
    char *dir = make_dir();
    char home[4200];
    snprintf(home, sizeof home, "%s/file", dir);
    FILE *f = fopen(home, "w"); /* a file where the directory should be */
    assert_non_null(f);
    fclose(f);
    char err[512];
    int rc = confab_home_init(home, NULL, 0, err, sizeof err);
    assert_true(rc < 0);
    assert_non_null(strstr(err, "--home"));
    remove_dir(dir);
}

/* ---- broadcast is best effort ----------------------------------------- */

/* Node 0 holds no reachable route to node 2. After the cuts its route
 * through 1 stays until 1's poisoned advert arrives (PROTOCOL.md 13.2),
 * which may come after the PEER_DOWN events: a broadcast in between goes
 * to 2 through 1 as well (seen once in 10 runs on a loaded machine). */
static bool no_route_0_to_2(confab_testnet *tn, void *arg)
{
    (void)arg;
    confab_route r[16];
    size_t k = confab_routes(confab_testnet_node(tn, 0), r, 16);
    for (size_t x = 0; x < k && x < 16; x++)
        if (memcmp(r[x].dst, net_id(tn, 2), CONFAB_ID_BYTES) == 0)
            return r[x].metric >= CONFAB_ROUTE_INFINITY;
    return true;
}

static void test_delivery_broadcast_is_best_effort(void **state)
{
    (void)state;
    net_fixture f;
    confab_testnet_config c;
    fast(&c, 3);
    net_start_meshed(&f, &c);
    /* 0 cannot reach 2 when it broadcasts: no link, and no route through
     * 1 either (a broadcast also goes through relays, PROTOCOL.md 13.6). */
    confab_testnet_cut(f.tn, 0, 2);
    confab_testnet_cut(f.tn, 1, 2);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 0, 2, 1, 5000),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_PEER_DOWN, 1, 2, 1, 5000),
                     0);
    assert_int_equal(confab_testnet_run_until(f.tn, no_route_0_to_2, NULL,
                                              net_deadline(5000)),
                     0);
    size_t sent;
    assert_int_equal(confab_broadcast(confab_testnet_node(f.tn, 0), "once", 4,
                                      NULL, NULL, &sent),
                     0);
    assert_int_equal(sent, 1);
    confab_testnet_heal(f.tn, 0, 2);
    confab_testnet_heal(f.tn, 1, 2);
    assert_int_equal(confab_testnet_wait_mesh(f.tn, net_deadline(5000)), 0);
    /* A unicast sent after the heal arrives after anything resent would. */
    assert_int_equal(confab_send(confab_testnet_node(f.tn, 0), net_id(f.tn, 2),
                                 "marker", 6, NULL, NULL),
                     0);
    assert_int_equal(net_wait_count(f.tn, CONFAB_EV_MESSAGE, 2, 0, 1, 5000),
                     0);
    /* 1 got it once; 2, unlinked when it was sent, never did. */
    const confab_testnet_event *ev;
    size_t n = confab_testnet_events(f.tn, &ev);
    unsigned at[3] = {0, 0, 0};
    for (size_t k = 0; k < n; k++)
        if (ev[k].type == CONFAB_EV_MESSAGE && ev[k].kind == CONFAB_BROADCAST)
            at[ev[k].node]++;
    assert_int_equal(at[1], 1);
    assert_int_equal(at[2], 0);
    net_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_ten_thousand_through_cuts),
        cmocka_unit_test(test_delivery_receiver_restarts_with_its_home),
        cmocka_unit_test(test_delivery_sender_restarts_with_its_home),
        cmocka_unit_test(test_delivery_anycast_survives_the_senders_restart),
        cmocka_unit_test(test_delivery_torn_tail_is_cut_off),
        cmocka_unit_test(test_delivery_corrupt_tail_is_cut_off),
        cmocka_unit_test(test_delivery_unwritable_home_is_a_clear_error),
        cmocka_unit_test(test_delivery_home_error_says_what_to_do),
        cmocka_unit_test(test_delivery_broadcast_is_best_effort),
    };
    return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
