/* fuzz_store.c: a node's store after any damage: the input is a whole
 * <home>/store.log, and a node is made over it through the public API
 * (confab_node_new with a home: node_home_open, node_store_open, the
 * replay into the inbox, the groups and delivery). The target knows
 * nothing of the store's format, so it stays valid when the format
 * changes; its seeds are real stores (tests/fuzz/gen_store_corpus.c).
 *
 * Properties (docs/SECURITY.md, issue #10: a damaged disk must not stop a
 * node, nor lose what the damage did not touch):
 *   - whatever the file holds, the node opens (confab_node_new returns 0),
 *     and what it replayed is sane: every unread message reads back with
 *     its fields in their limits; no crash, no leak;
 *   - the state survives a restart: opened again, the node holds the same
 *     groups, the same outbox, and the unread messages less the ones read
 *     in between (whose reads were appended to the store after the
 *     replay, so they must be found after whatever damage was there). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node/confab.h"
#include "fuzz_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static char home[512], store_path[600];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(home, sizeof home, "%s/home", fuzz_dir());
    snprintf(store_path, sizeof store_path, "%s/store.log", home);
    if (mkdir(home, 0700) != 0)
        abort();
    return 0;
}

/* A fixed environment: the same input replays the same way. */
static uint64_t fixed_clock(void *user)
{
    (void)user;
    return UINT64_C(1700000000000000);
}

static void fixed_random(void *buf, size_t len, void *user)
{
    (void)user;
    memset(buf, 0x5a, len);
}

static void read_cb(const confab_message *m, void *user)
{
    size_t *sum = user;
    CHECK(m->from != NULL && m->from_name != NULL);
    CHECK(strlen(m->from_name) <= CONFAB_MAX_NAME);
    CHECK(m->kind == CONFAB_UNICAST || m->kind == CONFAB_BROADCAST ||
          m->kind == CONFAB_GROUP || m->kind == CONFAB_ANYCAST);
    if (m->kind == CONFAB_GROUP || m->kind == CONFAB_ANYCAST)
        CHECK(m->group != NULL && m->group[0] != '\0' &&
              strlen(m->group) <= CONFAB_MAX_GROUP);
    if (m->content_type != NULL)
        CHECK(strlen(m->content_type) <= CONFAB_MAX_CT);
    CHECK(m->len <= CONFAB_DEFAULT_MAX_MESSAGE);
    CHECK(m->len == 0 || m->body != NULL);
    /* Touch every byte: ASan sees a body shorter than it claims. */
    for (size_t i = 0; i < m->len; i++)
        *sum += m->body[i];
    for (size_t i = 0; i < CONFAB_ID_BYTES; i++)
        *sum += m->from[i];
}

typedef struct state {
    size_t inbox;
    size_t n_groups;
    char groups[CONFAB_MAX_GROUPS][CONFAB_MAX_GROUP + 1];
    uint64_t outbox;
} state;

static void snapshot(confab_node *n, state *s)
{
    const char *g[CONFAB_MAX_GROUPS];
    confab_stats st;
    s->inbox = confab_inbox_count(n);
    s->n_groups = confab_my_groups(n, g, CONFAB_MAX_GROUPS);
    CHECK(s->n_groups <= CONFAB_MAX_GROUPS);
    for (size_t i = 0; i < s->n_groups; i++) {
        size_t len = strlen(g[i]);
        CHECK(len >= 1 && len <= CONFAB_MAX_GROUP);
        memcpy(s->groups[i], g[i], len + 1);
        CHECK(confab_is_member(n, g[i]));
    }
    confab_node_stats(n, &st);
    s->outbox = st.outbox_msgs;
}

/* FUZZ_LOG=1: the node's log on stderr, to see what it made of an input. */
static void log_cb(confab_node *node, confab_log_level level, const char *msg,
                   void *user)
{
    (void)node;
    (void)level;
    (void)user;
    fprintf(stderr, "node: %s\n", msg);
}

static int open_node(uv_loop_t *loop, confab_node **n)
{
    static const uint8_t sk[CONFAB_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
    confab_config c;
    confab_config_init(&c);
    c.identity_sk = sk;
    c.name = "fuzz";
    c.home = home;
    c.inbox_max = 100000;
    c.log_level = CONFAB_LOG_ERROR;
    if (getenv("FUZZ_LOG") != NULL) {
        c.log_cb = log_cb;
        c.log_level = CONFAB_LOG_DEBUG;
    }
    c.clock_us = fixed_clock;
    c.random = fixed_random;
    return confab_node_new(loop, &c, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CHECK(fuzz_write_file(store_path, data, size) == 0);
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);

    confab_node *n;
    CHECK(open_node(&loop, &n) == 0);
    state before;
    snapshot(n, &before);
    size_t sum = 0, half = before.inbox / 2;
    CHECK(confab_inbox_read(n, half, read_cb, &sum) == half);
    confab_node_free(n);

    CHECK(open_node(&loop, &n) == 0);
    state after;
    snapshot(n, &after);
    CHECK(after.inbox == before.inbox - half);
    CHECK(after.outbox == before.outbox);
    CHECK(after.n_groups == before.n_groups);
    for (size_t i = 0; i < after.n_groups; i++)
        CHECK(confab_is_member(n, before.groups[i]));
    CHECK(confab_inbox_read(n, SIZE_MAX, read_cb, &sum) == after.inbox);
    confab_node_free(n);

    CHECK(uv_loop_close(&loop) == 0);
    return 0;
}
