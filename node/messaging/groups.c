/* Layer messaging (node/LAYERS).
 * groups.c: named groups: membership (this node's and its peers'), JOIN
 * and LEAVE, the HELLO's group list, multicast (shout) and anycast to the
 * nearest member with failover (docs/PROTOCOL.md section 10).
 *
 * A node knows which groups each peer is in from the peer's HELLO and its
 * JOIN and LEAVE messages; the members of a group are the linked peers
 * that say they are in it. Groups are few per node (at most 256) and
 * peers tens to hundreds, so membership is kept as plain lists per peer
 * and found by scanning. What a member can make us hold is bounded: groups
 * per member (max_groups_per_member) and memberships in all
 * (max_memberships); a member past either loses its link. Listing every
 * group sorts the memberships once (node_groups_list), never comparing
 * each group with each other one. */
#include "node/messaging/messaging.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANYCASTS 4096u /* pending at once */

/* ---- names ------------------------------------------------------------ */

int node_groups_check_name(const char *group, size_t *len)
{
    if (group == NULL)
        return -EINVAL;
    size_t l = strlen(group);
    if (l == 0 || !wire_utf8_valid((const uint8_t *)group, l))
        return -EINVAL;
    if (l > WIRE_MAX_GROUP)
        return -EMSGSIZE;
    if (len != NULL)
        *len = l;
    return 0;
}

static char *dup_name(const uint8_t *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static ssize_t find(char *const *list, size_t n, const char *g, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], g, len) == 0)
            return (ssize_t)i;
    return -1;
}

bool node_peer_in_group(const node_peer *p, const char *group)
{
    return find(p->groups, p->n_groups, group, strlen(group)) >= 0;
}

int confab_is_member(const confab_node *n, const char *group)
{
    return group != NULL &&
           find(n->groups, n->n_groups, group, strlen(group)) >= 0;
}

/* ---- the HELLO -------------------------------------------------------- */

int node_hello_encode(confab_node *n)
{
    wire_bytes *g = calloc(n->n_groups ? n->n_groups : 1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    size_t cap = 80 + WIRE_MAX_NAME; /* the keys, `batch` (7) included */
    for (size_t i = 0; i < n->n_groups; i++) {
        g[i].ptr = (const uint8_t *)n->groups[i];
        g[i].len = (uint32_t)strlen(n->groups[i]);
        cap += g[i].len + 2;
    }
    wire_hello h;
    memset(&h, 0, sizeof h);
    h.version = WIRE_VERSION;
    h.name.ptr = (const uint8_t *)n->name;
    h.name.len = (uint32_t)strlen(n->name);
    h.port = n->port;
    h.boot = n->boot;
    h.max = n->cfg.max_message;
    h.epoch = n->epoch;
    h.ngroups = (uint32_t)n->n_groups;
    h.groups = g;
    h.batch = 1; /* #18: this node takes batched transport messages */
    uint8_t *buf = malloc(cap);
    int rc = buf ? wire_hello_encode(&h, buf, cap, &n->hello_len) : -ENOMEM;
    free(g);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    /* A handshake step copies the HELLO when it is queued, so the old one
     * can go now. */
    free(n->hello);
    n->hello = buf;
    return 0;
}

/* ---- events ----------------------------------------------------------- */

static void emit_group(confab_node *n, node_peer *p, confab_event_type type,
                       const char *group)
{
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.peer = p->id;
    ev.peer_name = p->name;
    ev.group = group;
    node_emit(n, &ev);
}

/* ---- a peer's membership ---------------------------------------------- */

static void peer_remove(confab_node *n, node_peer *p, size_t i)
{
    free(p->groups[i]);
    p->groups[i] = p->groups[--p->n_groups];
    n->stats.group_memberships--;
}

void node_peer_groups_free(confab_node *n, node_peer *p)
{
    n->stats.group_memberships -= p->n_groups;
    for (size_t i = 0; i < p->n_groups; i++)
        free(p->groups[i]);
    free(p->groups);
    p->groups = NULL;
    p->n_groups = p->cap_groups = 0;
}

/* Forgets what p said it is in. */
static void peer_clear(confab_node *n, node_peer *p)
{
    node_peer_groups_free(n, p);
}

/* At the node-wide bound, the memberships of peers that are not linked go
 * first: they are no members now, and their next HELLO says again what
 * they are in. So members that left cannot lock new ones out. */
static void reclaim_unlinked(confab_node *n)
{
    node_peer *p;
    node_peer_each (n, p) {
        if (p->n_groups > 0 && !node_peer_linked(p))
            peer_clear(n, p);
    }
}

/* Adds a group to p's membership. Returns 0, -ENOMEM, -ENOSPC (p is in
 * max_groups_per_member groups) or -EDQUOT (max_memberships in all). */
static int peer_add(confab_node *n, node_peer *p, const uint8_t *g, size_t len)
{
    if (p->n_groups >= n->cfg.max_groups_per_member)
        return -ENOSPC;
    if (n->stats.group_memberships >= n->cfg.max_memberships) {
        reclaim_unlinked(n);
        if (n->stats.group_memberships >= n->cfg.max_memberships)
            return -EDQUOT;
    }
    if (p->n_groups == p->cap_groups) {
        uint16_t cap = p->cap_groups ? (uint16_t)(p->cap_groups * 2) : 4;
        if (cap > WIRE_MAX_GROUPS)
            cap = WIRE_MAX_GROUPS;
        char **t = realloc(p->groups, cap * sizeof *t);
        if (t == NULL)
            return -ENOMEM;
        p->groups = t;
        p->cap_groups = cap;
    }
    char *d = dup_name(g, len);
    if (d == NULL)
        return -ENOMEM;
    p->groups[p->n_groups++] = d;
    n->stats.group_memberships++;
    return 0;
}

/* p went past a group bound (peer_add's error): say so, count it, and
 * forget its groups; the caller cuts its link. */
static int over_bound(confab_node *n, node_peer *p, int rc)
{
    char sid[9];
    node_short_id(p->id, sid);
    if (rc == -ENOSPC) {
        n->stats.group_members_cut++;
        node_log(n, CONFAB_LOG_WARN,
                 "cutting the link to %s (%s): it claims more than %u "
                 "groups, the most one member may be in "
                 "(max_groups_per_member)",
                 sid, p->name, n->cfg.max_groups_per_member);
    } else {
        n->stats.group_total_cut++;
        node_log(n, CONFAB_LOG_WARN,
                 "cutting the link to %s (%s): the linked peers are in %zu "
                 "groups in all, the most this node holds "
                 "(max_memberships); raise it if the network is that big",
                 sid, p->name, n->cfg.max_memberships);
    }
    peer_clear(n, p);
    return -EPROTO;
}

static void anycast_member_left(confab_node *n, node_peer *p,
                                const char *group);

int node_groups_from_hello(confab_node *n, node_peer *p, const wire_hello *h)
{
    /* Left: what we knew of it and its HELLO no longer lists. */
    for (size_t i = p->n_groups; i-- > 0;) {
        bool still = false;
        wire_iter it = h->group_iter;
        wire_bytes g;
        while (!still && wire_groups_next(&it, &g) == 1)
            still = strlen(p->groups[i]) == g.len &&
                    memcmp(p->groups[i], g.ptr, g.len) == 0;
        if (!still) {
            char name[WIRE_MAX_GROUP + 1];
            memcpy(name, p->groups[i], strlen(p->groups[i]) + 1);
            peer_remove(n, p, i);
            anycast_member_left(n, p, name);
            emit_group(n, p, CONFAB_EV_LEAVE, name);
        }
    }
    /* Joined: what it lists and we did not know. */
    wire_iter it = h->group_iter;
    wire_bytes g;
    while (wire_groups_next(&it, &g) == 1) {
        if (find(p->groups, p->n_groups, (const char *)g.ptr, g.len) >= 0)
            continue;
        int rc = peer_add(n, p, g.ptr, g.len);
        if (rc == -ENOSPC || rc == -EDQUOT)
            return over_bound(n, p, rc);
        if (rc != 0)
            return rc;
        emit_group(n, p, CONFAB_EV_JOIN, p->groups[p->n_groups - 1]);
    }
    return 0;
}

/* ---- this node's membership ------------------------------------------- */

static void tell_peers(confab_node *n, uint64_t type, const char *group)
{
    wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.u.group.group.ptr = (const uint8_t *)group;
    m.u.group.group.len = (uint32_t)strlen(group);
    node_peer *p;
    node_peer_each (n, p) {
        if (node_peer_up(p))
            (void)node_conn_send_ctl(p->conn, &m);
    }
}

/* ---- persistence (the store) ------------------------------------------ */

static int group_record(uint8_t *buf, size_t cap, const char *group,
                        size_t *len)
{
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_map(&w, 1);
    wire_mp_write_cstr(&w, "g");
    wire_mp_write_cstr(&w, group);
    return wire_mp_writer_finish(&w, len);
}

/* Records a join or leave so that a restart rejoins the same groups. */
static void persist(confab_node *n, uint8_t type, const char *group)
{
    uint8_t rec[WIRE_MAX_GROUP + 16];
    size_t len;
    if (n->store != NULL && group_record(rec, sizeof rec, group, &len) == 0 &&
        node_store_append(n->store, type, rec, len) == 0)
        node_store_sync(n->store);
}

int node_groups_replay(confab_node *n, uint8_t type, const uint8_t *body,
                       size_t len)
{
    wire_mp_reader r;
    uint32_t count, klen, glen;
    const uint8_t *key, *g;
    wire_mp_reader_init(&r, body, len);
    if (wire_mp_check(body, len, 1) != 0 || wire_mp_read_map(&r, &count) != 0 ||
        count != 1 || wire_mp_read_str(&r, &key, &klen) != 0 || klen != 1 ||
        key[0] != 'g' || wire_mp_read_str(&r, &g, &glen) != 0 || glen == 0 ||
        glen > WIRE_MAX_GROUP)
        return -EPROTO;
    char name[WIRE_MAX_GROUP + 1];
    memcpy(name, g, glen);
    name[glen] = '\0';
    /* Replayed before the node runs: nothing is sent or recorded. */
    node_store *st = n->store;
    n->store = NULL;
    int rc = type == NODE_REC_GROUP_JOIN ? confab_join(n, name)
                                         : confab_leave(n, name);
    n->store = st;
    return rc == -ENOENT ? 0 : rc;
}

int node_groups_dump(confab_node *n, int fd)
{
    for (size_t i = 0; i < n->n_groups; i++) {
        uint8_t rec[WIRE_MAX_GROUP + 16];
        size_t len;
        int rc = group_record(rec, sizeof rec, n->groups[i], &len);
        if (rc == 0)
            rc = node_store_dump_put(fd, NODE_REC_GROUP_JOIN, rec, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int confab_join(confab_node *n, const char *group)
{
    size_t len;
    int rc = node_groups_check_name(group, &len);
    if (rc != 0)
        return rc;
    if (confab_is_member(n, group))
        return 0;
    if (n->n_groups >= WIRE_MAX_GROUPS)
        return -ENOSPC;
    char **t = realloc(n->groups, (n->n_groups + 1) * sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    n->groups = t;
    char *d = dup_name((const uint8_t *)group, len);
    if (d == NULL)
        return -ENOMEM;
    n->groups[n->n_groups++] = d;
    persist(n, NODE_REC_GROUP_JOIN, d);
    if (n->state == NODE_NEW)
        return 0; /* the HELLO is made at start */
    rc = node_hello_encode(n);
    if (rc != 0)
        return rc;
    tell_peers(n, WIRE_T_JOIN, d);
    return 0;
}

int confab_leave(confab_node *n, const char *group)
{
    size_t len;
    int rc = node_groups_check_name(group, &len);
    if (rc != 0)
        return rc;
    ssize_t i = find(n->groups, n->n_groups, group, len);
    if (i < 0)
        return -ENOENT;
    char name[WIRE_MAX_GROUP + 1];
    memcpy(name, group, len + 1);
    free(n->groups[i]);
    n->groups[i] = n->groups[--n->n_groups];
    persist(n, NODE_REC_GROUP_LEAVE, name);
    if (n->state == NODE_NEW)
        return 0;
    rc = node_hello_encode(n);
    if (rc != 0)
        return rc;
    tell_peers(n, WIRE_T_LEAVE, name);
    return 0;
}

size_t confab_my_groups(const confab_node *n, const char **out, size_t cap)
{
    for (size_t i = 0; i < n->n_groups && i < cap; i++)
        out[i] = n->groups[i];
    return n->n_groups;
}

size_t confab_group_members(const confab_node *n, const char *group,
                            uint8_t (*ids)[CONFAB_ID_BYTES], size_t cap)
{
    size_t k = 0;
    if (group == NULL)
        return 0;
    const node_peer *p;
    node_peer_each (n, p) {
        if (!node_peer_linked(p) || !node_peer_in_group(p, group))
            continue;
        if (k < cap)
            memcpy(ids[k], p->id, CONFAB_ID_BYTES);
        k++;
    }
    return k;
}

/* ---- listing every group ----------------------------------------------- */

typedef struct membership {
    const char *group;
    const node_peer *peer; /* NULL: this node */
} membership;

static int by_group(const void *a, const void *b)
{
    const membership *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    if (c != 0)
        return c;
    if (x->peer == NULL || y->peer == NULL)
        return (x->peer != NULL) - (y->peer != NULL); /* this node first */
    return memcmp(x->peer->id, y->peer->id, WIRE_NODE_ID_BYTES);
}

/* Every group known here, each once, sorted by name: one pass over the
 * memberships, one sort (M log M for M memberships, with M bounded by
 * max_memberships), one pass to cut it into groups. Comparing each group
 * with every other one (what this replaced) blocked the loop for seconds
 * at 100 members of 256 groups each. */
int node_groups_list(const confab_node *n, node_group_list *out)
{
    memset(out, 0, sizeof *out);
    size_t m = n->n_groups;
    const node_peer *p;
    node_peer_each (n, p) {
        if (node_peer_linked(p))
            m += p->n_groups;
    }
    membership *all = malloc((m ? m : 1) * sizeof *all);
    out->rows = malloc((m ? m : 1) * sizeof *out->rows);
    out->members = malloc((m ? m : 1) * sizeof *out->members);
    if (all == NULL || out->rows == NULL || out->members == NULL) {
        free(all);
        node_group_list_free(out);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n->n_groups; i++)
        all[k++] = (membership){n->groups[i], NULL};
    node_peer_each (n, p) {
        if (!node_peer_linked(p))
            continue;
        for (size_t j = 0; j < p->n_groups; j++)
            all[k++] = (membership){p->groups[j], p};
    }
    qsort(all, m, sizeof *all, by_group);
    node_group_row *row = NULL;
    for (size_t i = 0; i < m; i++) {
        if (row == NULL || strcmp(row->name, all[i].group) != 0) {
            row = &out->rows[out->n++];
            *row = (node_group_row){all[i].group, false, out->n_members, 0};
        }
        if (all[i].peer == NULL) {
            row->self = true;
        } else if (row->count == 0 ||
                   out->members[out->n_members - 1] != all[i].peer->id) {
            out->members[out->n_members++] = all[i].peer->id;
            row->count++;
        }
    }
    free(all);
    return 0;
}

void node_group_list_free(node_group_list *l)
{
    free(l->rows);
    free(l->members);
    memset(l, 0, sizeof *l);
}

size_t confab_groups(const confab_node *n, const char **out, size_t cap)
{
    node_group_list l;
    if (node_groups_list(n, &l) != 0)
        return 0; /* out of memory: nothing to show */
    for (size_t i = 0; i < l.n && i < cap; i++)
        out[i] = l.rows[i].name;
    size_t total = l.n;
    node_group_list_free(&l);
    return total;
}

/* ---- multicast -------------------------------------------------------- */

int confab_shout(confab_node *n, const char *group, const void *body,
                 size_t len, const confab_send_opts *opts,
                 uint8_t msg_id[CONFAB_MSG_ID_BYTES], size_t *n_sent)
{
    size_t ct_len, sent = 0;
    if (body == NULL && len > 0)
        return -EINVAL;
    int rc = node_groups_check_name(group, NULL);
    if (rc == 0)
        rc = node_check_opts(opts, &ct_len);
    if (rc != 0)
        return rc;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    if (len > n->cfg.max_message)
        return -EMSGSIZE;
    node_body *b = node_body_new(n, WIRE_K_GROUP, group, opts, body, len);
    if (b == NULL)
        return -ENOMEM;
    b->refs = 1;
    node_peer *p;
    node_peer_each (n, p) {
        if (rc != 0)
            break;
        if (!node_peer_linked(p) || !node_peer_in_group(p, group) ||
            len > p->max_body)
            continue;
        if (!node_peer_has_room(n, p, len)) {
            p->want_writable = true;
            n->stats.sends_refused_full++;
            continue;
        }
        rc = node_enqueue(p, b, ++p->seq_multi);
        if (rc == 0)
            sent++;
    }
    if (msg_id != NULL)
        memcpy(msg_id, b->id, CONFAB_MSG_ID_BYTES);
    node_body_unref(b);
    if (n_sent != NULL)
        *n_sent = sent;
    return rc;
}

/* ---- anycast ---------------------------------------------------------- */

static bool tried(const node_anycast *a, const node_peer *p)
{
    for (size_t i = 0; i < a->n_tried; i++)
        if (a->tried[i] == p)
            return true;
    return false;
}

/* The nearest linked member not tried yet: lowest smoothed round trip,
 * members never measured after measured ones, ties to the smaller id. */
static node_peer *nearest(confab_node *n, const char *group,
                          const node_anycast *a, size_t len)
{
    node_peer *best = NULL;
    node_peer *p;
    node_peer_each (n, p) {
        if (!node_peer_up(p) || !node_peer_in_group(p, group) ||
            len > p->max_body || (a != NULL && tried(a, p)))
            continue;
        if (best == NULL) {
            best = p;
            continue;
        }
        uint64_t rp = p->srtt_us ? p->srtt_us : UINT64_MAX;
        uint64_t rb = best->srtt_us ? best->srtt_us : UINT64_MAX;
        if (rp < rb ||
            (rp == rb && memcmp(p->id, best->id, WIRE_NODE_ID_BYTES) < 0))
            best = p;
    }
    return best;
}

static unsigned anycast_timeout(const confab_node *n)
{
    return n->cfg.anycast_timeout_ms;
}

static void anycast_free(confab_node *n, node_anycast *a)
{
    node_list_del(&a->link);
    n->n_anycasts--;
    node_body_unref(a->body);
    free(a->tried);
    free(a);
}

static void anycast_outcome(confab_node *n, node_anycast *a,
                            confab_send_status st)
{
    node_delivery_anycast_done(n, a->body->id);
    confab_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CONFAB_EV_SEND;
    ev.msg_id = a->body->id;
    ev.status = st;
    ev.group = a->body->group;
    ev.failovers = a->failovers;
    if (st == CONFAB_DELIVERED) {
        ev.peer = a->member->id;
        ev.peer_name = a->member->name;
    }
    node_emit(n, &ev);
    anycast_free(n, a);
}

/* Gives a to the nearest member not tried. When every linked member has
 * had it, it waits (the tick tries again) for a member until its time to
 * live runs out. */
static void anycast_next(confab_node *n, node_anycast *a)
{
    node_peer *p = nearest(n, a->body->group, a, a->body->len);
    if (p == NULL && a->n_tried > 0) {
        a->n_tried = 0; /* a new round: members may have come back */
        p = nearest(n, a->body->group, a, a->body->len);
    }
    if (p == NULL) {
        a->member = NULL;
        return;
    }
    if (a->n_tried == a->cap_tried) {
        size_t cap = a->cap_tried ? a->cap_tried * 2 : 4;
        node_peer **t = realloc(a->tried, cap * sizeof *t);
        if (t == NULL) {
            anycast_outcome(n, a, CONFAB_FAILED);
            return;
        }
        a->tried = t;
        a->cap_tried = cap;
    }
    a->tried[a->n_tried++] = p;
    a->member = p;
    a->deadline = node_now_ms(n) + anycast_timeout(n);
    if (node_enqueue(p, a->body, ++p->seq_multi) != 0)
        a->member = NULL; /* out of memory: the tick tries again */
}

int confab_anycast(confab_node *n, const char *group, const void *body,
                   size_t len, const confab_send_opts *opts,
                   uint8_t msg_id[CONFAB_MSG_ID_BYTES])
{
    size_t ct_len;
    if (body == NULL && len > 0)
        return -EINVAL;
    int rc = node_groups_check_name(group, NULL);
    if (rc == 0)
        rc = node_check_opts(opts, &ct_len);
    if (rc != 0)
        return rc;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    if (len > n->cfg.max_message)
        return -EMSGSIZE;
    if (nearest(n, group, NULL, len) == NULL)
        return -ENOENT; /* no linked member: say so at once */
    if (n->n_anycasts >= MAX_ANYCASTS)
        return -EAGAIN;
    node_anycast *a = calloc(1, sizeof *a);
    node_body *b = node_body_new(n, WIRE_K_ANYCAST, group, opts, body, len);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    b->refs = 1;
    a->body = b;
    a->expires = b->ts + node_send_ttl_us(opts);
    rc = node_delivery_put_anycast(n, b, a->expires);
    if (rc != 0) {
        node_body_unref(b);
        free(a);
        return rc == -ENOMEM ? rc : -EIO;
    }
    node_list_add_tail(&n->anycasts, &a->link);
    n->n_anycasts++;
    if (msg_id != NULL)
        memcpy(msg_id, b->id, CONFAB_MSG_ID_BYTES);
    anycast_next(n, a);
    return 0;
}

int node_groups_anycast_restore(confab_node *n, node_body *b, uint64_t expires)
{
    node_anycast *a = calloc(1, sizeof *a);
    if (a == NULL) {
        free(b);
        return -ENOMEM;
    }
    b->refs = 1;
    a->body = b;
    a->expires = expires;
    node_list_add_tail(&n->anycasts, &a->link);
    n->n_anycasts++;
    return 0; /* it goes out from the tick, once members are linked */
}

void node_groups_anycast_forget(confab_node *n, const uint8_t *id)
{
    for (node_list *e = n->anycasts.next; e != &n->anycasts; e = e->next) {
        node_anycast *a = node_container_of(e, node_anycast, link);
        if (memcmp(a->body->id, id, WIRE_ID_BYTES) == 0) {
            anycast_free(n, a);
            return;
        }
    }
}

int node_groups_anycast_dump(confab_node *n, int fd)
{
    for (node_list *e = n->anycasts.next; e != &n->anycasts; e = e->next) {
        node_anycast *a = node_container_of(e, node_anycast, link);
        int rc = node_delivery_dump_anycast(fd, a->body, a->expires);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void anycast_member_left(confab_node *n, node_peer *p, const char *group)
{
    node_list *e, *next;
    for (e = n->anycasts.next; e != &n->anycasts; e = next) {
        next = e->next;
        node_anycast *a = node_container_of(e, node_anycast, link);
        if (a->member == p &&
            (group == NULL || strcmp(a->body->group, group) == 0)) {
            n->stats.anycast_failovers++;
            a->failovers++;
            anycast_next(n, a);
        }
    }
}

void node_groups_peer_down(confab_node *n, node_peer *p)
{
    anycast_member_left(n, p, NULL);
}

void node_groups_tick(confab_node *n, uint64_t now)
{
    uint64_t wall = node_clock_us(n);
    node_list *e, *next;
    for (e = n->anycasts.next; e != &n->anycasts; e = next) {
        next = e->next;
        node_anycast *a = node_container_of(e, node_anycast, link);
        if (wall >= a->expires) {
            a->member = NULL;
            anycast_outcome(n, a, CONFAB_EXPIRED);
        } else if (a->member == NULL) {
            anycast_next(n, a); /* waiting for a member */
        } else if (now >= a->deadline) {
            n->stats.anycast_failovers++;
            a->failovers++;
            anycast_next(n, a);
        }
    }
}

void node_groups_stop(confab_node *n)
{
    /* With a store, a pending anycast is in it and goes on at the next
     * start: it must not end here (an outcome writes ANY_DONE). */
    if (n->store != NULL && !node_store_failed(n->store))
        return; /* node_groups_free() releases the memory */
    while (!node_list_empty(&n->anycasts)) {
        node_anycast *a =
            node_container_of(n->anycasts.next, node_anycast, link);
        anycast_outcome(n, a, CONFAB_FAILED);
    }
}

void node_groups_free(confab_node *n)
{
    if (n->anycasts.next != NULL)
        while (!node_list_empty(&n->anycasts))
            anycast_free(
                n, node_container_of(n->anycasts.next, node_anycast, link));
    for (size_t i = 0; i < n->n_groups; i++)
        free(n->groups[i]);
    free(n->groups);
    n->groups = NULL;
    n->n_groups = 0;
    free(n->hello);
    n->hello = NULL;
}

/* ---- messages --------------------------------------------------------- */

int node_groups_on_anycast_ack(node_conn *c, const wire_ack *ack)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    node_list *e;
    for (e = n->anycasts.next; e != &n->anycasts; e = e->next) {
        node_anycast *a = node_container_of(e, node_anycast, link);
        if (a->member == p &&
            memcmp(a->body->id, ack->id, WIRE_ID_BYTES) == 0) {
            anycast_outcome(n, a, CONFAB_DELIVERED);
            return 0;
        }
    }
    return 0; /* late: it had failed over already */
}

int node_groups_on_msg(node_conn *c, const wire_msg *m)
{
    confab_node *n = c->node;
    node_peer *p = c->peer;
    const wire_bytes *g = &m->u.group.group;
    ssize_t i = find(p->groups, p->n_groups, (const char *)g->ptr, g->len);
    if (m->type == WIRE_T_JOIN) {
        if (i >= 0)
            return 0;
        int rc = peer_add(n, p, g->ptr, g->len);
        if (rc == -ENOSPC || rc == -EDQUOT)
            return over_bound(n, p, rc);
        if (rc != 0)
            return rc;
        emit_group(n, p, CONFAB_EV_JOIN, p->groups[p->n_groups - 1]);
        return 0;
    }
    if (i < 0)
        return 0;
    char name[WIRE_MAX_GROUP + 1];
    memcpy(name, g->ptr, g->len);
    name[g->len] = '\0';
    peer_remove(n, p, (size_t)i);
    anycast_member_left(n, p, name);
    emit_group(n, p, CONFAB_EV_LEAVE, name);
    return 0;
}
