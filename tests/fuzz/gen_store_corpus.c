/* gen_store_corpus.c: writes the seed corpus of fuzz_store: real stores,
 * made by running a small network (three nodes on 127.0.0.1 with their
 * homes in a scratch directory) through the public API, then copying each
 * node's <home>/store.log; and damaged copies of one (a flipped byte, a
 * cut tail), made without knowing the format.
 *
 * What the stores hold, whatever their format: unread and read messages of
 * every kind (unicast with and without a content type, broadcast, group,
 * anycast), groups joined and left, acknowledged unicasts, and a sender's
 * outbox of unicasts to a peer that is down.
 *
 * Built with the tests (tests/fuzz/meson.build); the suite runs it into a
 * scratch directory and replays fuzz_store over the result, so it keeps
 * working when the store format changes. After a format change, refresh
 * the committed corpus (the old seeds stay valid inputs, just less apt):
 *
 *   ninja -C build && build/tests/fuzz/gen_store_corpus tests/fuzz/corpus/store
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/confab.h"
#include "node/testnet.h"
#include "fuzz_dir.h"

#define WAIT_MS 10000u

static int failed;

static void fail(const char *what, int rc)
{
    fprintf(stderr, "gen_store_corpus: %s: %s\n", what,
            rc != 0 ? confab_strerror(rc) : "failed");
    failed = 1;
}

typedef struct want {
    confab_event_type type;
    int node;
    size_t count;
} want;

static bool have(confab_testnet *tn, void *arg)
{
    const want *w = arg;
    return confab_testnet_count(tn, w->type, w->node, -1) >= w->count;
}

static void wait_for(confab_testnet *tn, confab_event_type type, int node,
                     size_t count, const char *what)
{
    want w = {type, node, count};
    if (confab_testnet_run_until(tn, have, &w, WAIT_MS) != 0)
        fail(what, -ETIMEDOUT);
}

static void durable_cb(confab_node *n, void *user)
{
    (void)n;
    *(int *)user = 1;
}

static bool flag_set(confab_testnet *tn, void *arg)
{
    (void)tn;
    return *(int *)arg != 0;
}

/* Waits until everything node i accepted is on disk. */
static void sync_node(confab_testnet *tn, unsigned i)
{
    int done = 0;
    int rc = confab_node_when_durable(confab_testnet_node(tn, i), durable_cb,
                                      &done);
    if (rc != 0 || confab_testnet_run_until(tn, flag_set, &done, WAIT_MS) != 0)
        fail("waiting for the store", rc);
}

static void read_cb(const confab_message *m, void *user)
{
    (void)m;
    (void)user;
}

static void traffic(confab_testnet *tn)
{
    confab_node *a = confab_testnet_node(tn, 0);
    confab_node *b = confab_testnet_node(tn, 1);
    confab_node *c = confab_testnet_node(tn, 2);
    const uint8_t *bid = confab_node_id(b);
    int rc;

    if ((rc = confab_join(b, "ops")) != 0 || (rc = confab_join(c, "ops")) != 0 ||
        (rc = confab_join(b, "lab")) != 0 || (rc = confab_join(b, "gone")) != 0 ||
        (rc = confab_leave(b, "gone")) != 0)
        fail("joining groups", rc);
    wait_for(tn, CONFAB_EV_JOIN, 0, 3, "JOINs reaching node 0");

    confab_send_opts ct = {.content_type = "text/plain"};
    for (int i = 0; i < 4; i++) {
        char body[32];
        int len = snprintf(body, sizeof body, "unicast %d", i);
        rc = confab_send(a, bid, body, (size_t)len, i % 2 ? &ct : NULL, NULL);
        if (rc != 0)
            fail("confab_send", rc);
    }
    wait_for(tn, CONFAB_EV_SEND, 0, 4, "four unicasts delivered");
    if ((rc = confab_broadcast(a, "to all", 6, NULL, NULL, NULL)) != 0 ||
        (rc = confab_shout(a, "ops", "to ops", 6, &ct, NULL, NULL)) != 0 ||
        (rc = confab_anycast(a, "lab", "to one", 6, NULL, NULL)) != 0)
        fail("broadcast, shout, anycast", rc);
    wait_for(tn, CONFAB_EV_SEND, 0, 5, "the anycast delivered");
    /* Node 1 got 4 + 1 + 1 + 1 messages; it reads three of them. */
    wait_for(tn, CONFAB_EV_MESSAGE, 1, 7, "node 1's messages");
    if (confab_inbox_read(b, 3, read_cb, NULL) != 3)
        fail("reading node 1's inbox", 0);
    sync_node(tn, 1);

    /* Node 1 goes down; node 0 has unicasts for it in its outbox. */
    if ((rc = confab_testnet_stop_node(tn, 1)) != 0)
        fail("stopping node 1", rc);
    wait_for(tn, CONFAB_EV_PEER_DOWN, 0, 1, "node 1 down");
    for (int i = 0; i < 3; i++) {
        rc = confab_send(a, bid, "later", 5, NULL, NULL);
        if (rc != 0)
            fail("confab_send to a node that is down", rc);
    }
    sync_node(tn, 0);
    sync_node(tn, 2);
}

static int copy_file(const char *from, const char *to, size_t cut,
                     long flip_at)
{
    FILE *f = fopen(from, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, len = 0;
    uint8_t *d = malloc(cap);
    size_t r;
    while (d != NULL && (r = fread(d + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            uint8_t *t = realloc(d, cap *= 2);
            if (t == NULL) {
                free(d);
                d = NULL;
            }
            d = t;
        }
    }
    fclose(f);
    if (d == NULL || len == 0) {
        free(d);
        return -1;
    }
    if (cut > 0 && cut < len)
        len = cut;
    if (flip_at >= 0 && (size_t)flip_at < len)
        d[flip_at] ^= 0x20;
    int rc = fuzz_write_file(to, d, len);
    free(d);
    return rc;
}

static void put(const char *home, const char *out, const char *name,
                size_t cut_at_frac, long flip_frac)
{
    char from[1024], to[1024];
    struct stat st;
    snprintf(from, sizeof from, "%s/store.log", home);
    snprintf(to, sizeof to, "%s/%s", out, name);
    if (stat(from, &st) != 0 || st.st_size == 0) {
        fail(from, -ENOENT);
        return;
    }
    size_t len = (size_t)st.st_size;
    size_t cut = cut_at_frac ? len * cut_at_frac / 8 + 3 : 0;
    long flip = flip_frac >= 0 ? (long)(len * (size_t)flip_frac / 8) + 7 : -1;
    if (copy_file(from, to, cut, flip) != 0)
        fail(to, -EIO);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_store_corpus DIR\n");
        return 2;
    }
    const char *out = argv[1];
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_store_corpus: cannot make %s\n", out);
        return 1;
    }
    char homes[512];
    snprintf(homes, sizeof homes, "%s/homes", fuzz_dir());
    if (mkdir(homes, 0700) != 0)
        return 1;

    uv_loop_t loop;
    uv_loop_init(&loop);
    confab_testnet_config tc;
    confab_testnet_config_init(&tc);
    tc.nodes = 3;
    tc.seed = 10;
    tc.static_mesh = true;
    tc.home_dir = homes;
    tc.node.inbox_max = 1000;
    tc.node.log_level = CONFAB_LOG_ERROR;
    confab_testnet *tn;
    int rc = confab_testnet_new(&loop, &tc, &tn);
    if (rc != 0) {
        fail("confab_testnet_new", rc);
        return 1;
    }
    if ((rc = confab_testnet_start(tn)) != 0)
        fail("confab_testnet_start", rc);
    else if ((rc = confab_testnet_wait_mesh(tn, WAIT_MS)) != 0)
        fail("waiting for the mesh", rc);
    else
        traffic(tn);
    if (confab_testnet_free(tn) != 0)
        fail("stopping the network", 0);
    if (uv_loop_close(&loop) != 0)
        fail("uv_loop_close", 0);
    if (failed)
        return 1;

    char home[600];
    snprintf(home, sizeof home, "%s/n0", homes);
    put(home, out, "sender-outbox", 0, -1);
    snprintf(home, sizeof home, "%s/n1", homes);
    put(home, out, "receiver-inbox-groups", 0, -1);
    put(home, out, "receiver-cut-5of8", 5, -1);
    put(home, out, "receiver-flipped-3of8", 0, 3);
    put(home, out, "receiver-flipped-1of8", 0, 1);
    snprintf(home, sizeof home, "%s/n2", homes);
    put(home, out, "member", 0, -1);
    put(home, out, "member-cut-2of8", 2, -1);
    return failed;
}
