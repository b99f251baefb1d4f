/* Layer store (node/LAYERS).
 * inbox.c: messages kept until someone reads them (the `confab` command's
 * `recv` and `chat`, or a program through confab_inbox_read()).
 *
 * Every message delivered while the inbox is on is appended to it; with a
 * home directory each one is also a record in the store (INBOX_PUT), and
 * reading one appends INBOX_READ, so a restart finds the unread ones
 * again. The inbox is bounded in messages and bytes; a message that does
 * not fit is refused (and counted), never silently lost from within. */
#include "node/peers/peers.h"
#include "node/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_INBOX_BYTES ((size_t)256 << 20)

typedef struct inbox_msg {
    struct inbox_msg *next;
    uint8_t id[WIRE_ID_BYTES];
    uint8_t from[WIRE_NODE_ID_BYTES];
    char from_name[WIRE_MAX_NAME + 1];
    uint8_t kind;
    bool has_group, has_ct;
    char group[WIRE_MAX_GROUP + 1];
    char ct[WIRE_MAX_CT + 1];
    uint64_t seq, ts;
    uint64_t epoch;  /* the sender's, for a unicast: replay rebuilds rx_next */
    uint64_t serial; /* its place in the inbox's order (not stored) */
    /* Links it crossed: 1 direct, more relayed (routing). Stored as "hops"
     * only when more than 1, so a record without it (direct, or written
     * before routing) reads as 1. */
    uint8_t hops;
    size_t len;
    uint8_t body[];
} inbox_msg;

struct node_inbox {
    inbox_msg *head, *tail;
    uint64_t serial; /* the next message's */
    size_t count, bytes;
    size_t max_count, max_bytes;
};

int node_inbox_init(confab_node *n)
{
    n->inbox = calloc(1, sizeof *n->inbox);
    if (n->inbox == NULL)
        return -ENOMEM;
    n->inbox->max_count = n->cfg.inbox_max;
    n->inbox->max_bytes = DEFAULT_INBOX_BYTES;
    return 0;
}

void node_inbox_free(confab_node *n)
{
    if (n->inbox == NULL)
        return;
    while (n->inbox->head != NULL) {
        inbox_msg *m = n->inbox->head;
        n->inbox->head = m->next;
        free(m);
    }
    free(n->inbox);
    n->inbox = NULL;
}

size_t node_inbox_bytes(const confab_node *n)
{
    return n->inbox ? n->inbox->bytes : 0;
}

size_t confab_inbox_count(const confab_node *n)
{
    return n->inbox ? n->inbox->count : 0;
}

/* ---- records ---------------------------------------------------------- */

static void cstr(wire_mp_writer *w, const char *key, const char *v)
{
    wire_mp_write_cstr(w, key);
    wire_mp_write_cstr(w, v);
}

/* Encodes m as an INBOX_PUT body into a malloc'd buffer. */
static uint8_t *put_record(const inbox_msg *m, size_t *len)
{
    size_t cap = 512 + m->len;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 9u + m->has_group + m->has_ct + (m->hops > 1));
    wire_mp_write_cstr(&w, "id");
    wire_mp_write_bin(&w, m->id, WIRE_ID_BYTES);
    wire_mp_write_cstr(&w, "from");
    wire_mp_write_bin(&w, m->from, WIRE_NODE_ID_BYTES);
    cstr(&w, "name", m->from_name);
    wire_mp_write_cstr(&w, "k");
    wire_mp_write_uint(&w, m->kind);
    wire_mp_write_cstr(&w, "seq");
    wire_mp_write_uint(&w, m->seq);
    wire_mp_write_cstr(&w, "ts");
    wire_mp_write_uint(&w, m->ts);
    if (m->has_group)
        cstr(&w, "g", m->group);
    if (m->has_ct)
        cstr(&w, "ct", m->ct);
    wire_mp_write_cstr(&w, "body");
    wire_mp_write_bin(&w, m->body, m->len);
    wire_mp_write_cstr(&w, "ep");
    wire_mp_write_uint(&w, m->epoch);
    wire_mp_write_cstr(&w, "v");
    wire_mp_write_uint(&w, 1);
    if (m->hops > 1) {
        wire_mp_write_cstr(&w, "hops");
        wire_mp_write_uint(&w, m->hops);
    }
    if (wire_mp_writer_finish(&w, len) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Reads an INBOX_PUT body. Returns the message or NULL if malformed. */
static inbox_msg *parse_put(const uint8_t *body, size_t len)
{
    if (wire_mp_check(body, len, 2) != 0)
        return NULL;
    wire_mp_reader r;
    wire_mp_reader_init(&r, body, len);
    uint32_t count;
    if (wire_mp_read_map(&r, &count) != 0)
        return NULL;
    wire_bytes id = {0}, from = {0}, name = {0}, g = {0}, ct = {0}, b = {0};
    uint64_t k = 99, seq = 0, ts = 0, ep = 0, hops = 1;
    bool has_g = false, has_ct = false;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *key;
        uint32_t klen;
        if (wire_mp_read_str(&r, &key, &klen) != 0)
            return NULL;
        int rc = 0;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)
        if (KEY("id"))
            rc = wire_mp_read_bin(&r, &id.ptr, &id.len);
        else if (KEY("from"))
            rc = wire_mp_read_bin(&r, &from.ptr, &from.len);
        else if (KEY("name"))
            rc = wire_mp_read_str(&r, &name.ptr, &name.len);
        else if (KEY("k"))
            rc = wire_mp_read_uint(&r, &k);
        else if (KEY("seq"))
            rc = wire_mp_read_uint(&r, &seq);
        else if (KEY("ts"))
            rc = wire_mp_read_uint(&r, &ts);
        else if (KEY("ep"))
            rc = wire_mp_read_uint(&r, &ep);
        else if (KEY("g"))
            rc = wire_mp_read_str(&r, &g.ptr, &g.len), has_g = true;
        else if (KEY("ct"))
            rc = wire_mp_read_str(&r, &ct.ptr, &ct.len), has_ct = true;
        else if (KEY("hops"))
            rc = wire_mp_read_uint(&r, &hops);
        else if (KEY("body"))
            rc = wire_mp_read_bin(&r, &b.ptr, &b.len);
        else
            rc = wire_mp_skip(&r);
#undef KEY
        if (rc != 0)
            return NULL;
    }
    if (id.len != WIRE_ID_BYTES || from.len != WIRE_NODE_ID_BYTES ||
        name.len > WIRE_MAX_NAME || k > WIRE_K_ANYCAST ||
        g.len > WIRE_MAX_GROUP || ct.len > WIRE_MAX_CT || hops == 0 ||
        hops > UINT8_MAX)
        return NULL;
    inbox_msg *m = calloc(1, sizeof *m + b.len);
    if (m == NULL)
        return NULL;
    memcpy(m->id, id.ptr, WIRE_ID_BYTES);
    memcpy(m->from, from.ptr, WIRE_NODE_ID_BYTES);
    if (name.len)
        memcpy(m->from_name, name.ptr, name.len);
    m->kind = (uint8_t)k;
    m->has_group = has_g;
    if (g.len)
        memcpy(m->group, g.ptr, g.len);
    m->has_ct = has_ct;
    if (ct.len)
        memcpy(m->ct, ct.ptr, ct.len);
    m->seq = seq;
    m->ts = ts;
    m->epoch = ep;
    m->hops = (uint8_t)hops;
    m->len = b.len;
    if (b.len)
        memcpy(m->body, b.ptr, b.len);
    return m;
}

static void push(node_inbox *ib, inbox_msg *m)
{
    m->serial = ib->serial++;
    if (ib->tail != NULL)
        ib->tail->next = m;
    else
        ib->head = m;
    ib->tail = m;
    ib->count++;
    ib->bytes += m->len;
}

int node_inbox_replay(confab_node *n, uint8_t type, const uint8_t *body,
                      size_t len)
{
    node_inbox *ib = n->inbox;
    if (ib == NULL)
        return 0; /* an inbox kept by an earlier run, and none now */
    if (type == NODE_REC_INBOX_PUT) {
        inbox_msg *m = parse_put(body, len);
        if (m == NULL)
            return -EPROTO;
        /* The record that holds a unicast also says it was delivered, so
         * that a lost RX record cannot make it come twice. */
        if (m->kind == WIRE_K_UNICAST && m->epoch != 0) {
            node_peer *p = node_peer_get(n, m->from);
            if (p != NULL && p->rx_epoch == m->epoch && m->seq >= p->rx_next) {
                p->rx_next = m->seq + 1;
                p->rx_acked = m->seq;
            }
        }
        push(ib, m);
        return 0;
    }
    /* INBOX_READ: the message with that id was read. */
    wire_mp_reader r;
    uint32_t count;
    const uint8_t *id;
    uint32_t idlen;
    const uint8_t *key;
    uint32_t klen;
    wire_mp_reader_init(&r, body, len);
    if (wire_mp_check(body, len, 1) != 0 || wire_mp_read_map(&r, &count) != 0 ||
        count != 1 || wire_mp_read_str(&r, &key, &klen) != 0 || klen != 2 ||
        memcmp(key, "id", 2) != 0 || wire_mp_read_bin(&r, &id, &idlen) != 0 ||
        idlen != WIRE_ID_BYTES)
        return -EPROTO;
    node_inbox_mark_read(n, id);
    return 0;
}

void node_inbox_mark_read(confab_node *n, const uint8_t id[WIRE_ID_BYTES])
{
    node_inbox *ib = n->inbox;
    inbox_msg *prev = NULL;
    if (ib == NULL)
        return;
    for (inbox_msg *m = ib->head; m != NULL; prev = m, m = m->next) {
        if (memcmp(m->id, id, WIRE_ID_BYTES) != 0)
            continue;
        if (prev != NULL)
            prev->next = m->next;
        else
            ib->head = m->next;
        if (ib->tail == m)
            ib->tail = prev;
        ib->count--;
        ib->bytes -= m->len;
        free(m);
        return;
    }
}

int node_inbox_holds(const confab_node *n, const uint8_t *from,
                     const uint8_t id[WIRE_ID_BYTES], uint64_t below)
{
    const node_inbox *ib = n->inbox;
    int rc = -1;
    if (ib == NULL)
        return -1;
    /* Linear, and only while a restarted stream has old messages unread. */
    for (const inbox_msg *m = ib->head; m != NULL && m->serial < below;
         m = m->next) {
        if (memcmp(m->from, from, WIRE_NODE_ID_BYTES) != 0)
            continue;
        if (memcmp(m->id, id, WIRE_ID_BYTES) == 0)
            return 1;
        rc = 0;
    }
    return rc;
}

uint64_t node_inbox_serial(const confab_node *n)
{
    return n->inbox != NULL ? n->inbox->serial : 0;
}

/* ---- putting and reading ---------------------------------------------- */

bool node_inbox_has_room(const confab_node *n, size_t len)
{
    const node_inbox *ib = n->inbox;
    return ib->count < ib->max_count && len <= ib->max_bytes - ib->bytes;
}

int node_inbox_put(confab_node *n, const confab_message *msg, uint64_t epoch)
{
    node_inbox *ib = n->inbox;
    if (!node_inbox_has_room(n, msg->len)) {
        n->stats.inbox_refused_full++;
        return -ENOSPC;
    }
    inbox_msg *m = calloc(1, sizeof *m + msg->len);
    if (m == NULL)
        return -ENOMEM;
    memcpy(m->id, msg->id, WIRE_ID_BYTES);
    memcpy(m->from, msg->from, WIRE_NODE_ID_BYTES);
    snprintf(m->from_name, sizeof m->from_name, "%s", msg->from_name);
    m->kind = (uint8_t)msg->kind;
    m->has_group = msg->group != NULL;
    if (msg->group)
        snprintf(m->group, sizeof m->group, "%s", msg->group);
    m->has_ct = msg->content_type != NULL;
    if (msg->content_type)
        snprintf(m->ct, sizeof m->ct, "%s", msg->content_type);
    m->seq = msg->seq;
    m->ts = msg->ts_us;
    m->epoch = msg->kind == CONFAB_UNICAST ? epoch : 0;
    /* Hops are bounded by the hop limit (PROTOCOL.md section 13). */
    m->hops = (uint8_t)(msg->hops == 0          ? 1
                        : msg->hops > UINT8_MAX ? UINT8_MAX
                                                : msg->hops);
    m->len = msg->len;
    if (msg->len)
        memcpy(m->body, msg->body, msg->len);
    if (n->store != NULL) {
        size_t len;
        uint8_t *rec = put_record(m, &len);
        int rc = rec ? node_store_append_ref(n->store, NODE_REC_INBOX_PUT,
                                             m->id, rec, len)
                     : -ENOMEM;
        free(rec);
        if (rc != 0) {
            free(m);
            return rc;
        }
        node_store_sync(n->store);
    }
    push(ib, m);
    return 0;
}

static void to_message(const inbox_msg *m, confab_message *out)
{
    memcpy(out->id, m->id, WIRE_ID_BYTES);
    out->from = m->from;
    out->from_name = m->from_name;
    out->kind = (confab_kind)m->kind;
    out->group = m->has_group ? m->group : NULL;
    out->seq = m->seq;
    out->ts_us = m->ts;
    out->content_type = m->has_ct ? m->ct : NULL;
    out->body = m->body;
    out->len = m->len;
    out->hops = m->hops;
}

/* Writes m's INBOX_READ to the file now (not at the end of the turn). */
static int mark_read(confab_node *n, const inbox_msg *m)
{
    uint8_t rec[32];
    wire_mp_writer w;
    size_t len;
    wire_mp_writer_init(&w, rec, sizeof rec);
    wire_mp_write_map(&w, 1);
    wire_mp_write_cstr(&w, "id");
    wire_mp_write_bin(&w, m->id, WIRE_ID_BYTES);
    int rc = wire_mp_writer_finish(&w, &len);
    if (rc == 0)
        rc = node_store_write_now(n->store, NODE_REC_INBOX_READ, m->id, rec,
                                  len);
    if (rc != 0) {
        n->stats.inbox_reads_refused++;
        if (n->stats.inbox_reads_refused == 1)
            node_log(n, CONFAB_LOG_ERROR,
                     "cannot mark messages read in the store (%s): the %zu "
                     "unread messages stay in the inbox and are not handed "
                     "out until the node can write its store (free some "
                     "space and restart it)",
                     uv_strerror(rc), n->inbox->count);
    }
    return rc;
}

int node_inbox_read_error(const confab_node *n)
{
    if (n->store == NULL || n->inbox == NULL || n->inbox->count == 0)
        return 0;
    return node_store_error(n->store);
}

size_t confab_inbox_read(confab_node *n, size_t max,
                         void (*cb)(const confab_message *msg, void *user),
                         void *user)
{
    node_inbox *ib = n->inbox;
    size_t k = 0;
    if (ib == NULL)
        return 0;
    while (ib->head != NULL && k < max) {
        inbox_msg *m = ib->head;
        /* The read mark is on file before the message is handed out: a
         * message whose mark cannot be written (a full disk) stays unread
         * and is not handed out, so a restart hands out nothing twice. */
        if (n->store != NULL && mark_read(n, m) != 0)
            break;
        confab_message msg;
        to_message(m, &msg);
        cb(&msg, user);
        ib->head = m->next;
        if (ib->head == NULL)
            ib->tail = NULL;
        ib->count--;
        ib->bytes -= m->len;
        free(m);
        k++;
    }
    if (k > 0 && n->store != NULL)
        node_store_sync(n->store);
    return k;
}

/* Writes every unread message to a new store file (compaction). */
int node_inbox_dump(confab_node *n, int fd)
{
    if (n->inbox == NULL)
        return 0;
    for (inbox_msg *m = n->inbox->head; m != NULL; m = m->next) {
        size_t len;
        uint8_t *rec = put_record(m, &len);
        int rc = rec ? node_store_dump_put_ref(n->store, fd, NODE_REC_INBOX_PUT,
                                               m->id, rec, len)
                     : -ENOMEM;
        free(rec);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t node_inbox_fit(const confab_node *n, size_t max, size_t budget)
{
    size_t k = 0, bytes = 0;
    if (n->inbox == NULL)
        return 0;
    for (const inbox_msg *m = n->inbox->head; m != NULL && k < max;
         m = m->next) {
        /* At least one, however large: it must get out somehow. */
        if (k > 0 && m->len > budget - bytes)
            break;
        bytes += m->len < budget - bytes ? m->len : budget - bytes;
        k++;
    }
    return k;
}
