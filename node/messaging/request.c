/* Layer messaging (node/LAYERS).
 * request.c: requests and replies (docs/PROTOCOL.md section 14): the
 * requests this node waits on, the ones it serves, and the services that
 * serve them.
 *
 * Both travel as unicasts (delivery.c) whose content type names them;
 * data.c hands every such unicast here instead of to the inbox. A request
 * carries an id of the requester's choosing, the time it waits and the
 * largest reply it takes; a reply carries the request's id. The requester
 * matches a reply by id and by the peer it asked, so a reply nobody asked
 * for, a second one, or one past its request's end is dropped and
 * counted. */
#include "node/messaging/messaging.h"

#include "wire/req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define DEFAULT_TIMEOUT_MS 5000u
#define REPLY_SLACK        256u /* max_message less this: a reply body */
#define MEMBER_POLL_MS     250u /* ANY, every member asked: look again */
/* Refusals (busy, no service) are sent only while the requester's outbox
 * here holds fewer unicasts than this: a peer that floods us with
 * requests and never acknowledges cannot make us hold more of them. */
#define REFUSALS_MAX 64u

/* A request this node waits on. */
typedef struct req_out {
    node_list link;
    uint64_t handle;
    uint8_t rid[WIRE_REQ_ID_BYTES];
    confab_request_mode mode;
    char service[WIRE_REQ_MAX_SERVICE + 1];
    uint8_t *body; /* kept for the next member (ANY) */
    size_t len;
    uint64_t deadline;     /* loop ms: the end */
    uint64_t try_deadline; /* loop ms: ANY, the next member */
    bool waiting;          /* ANY: every member asked, waiting for more */
    unsigned try_ms;
    size_t max_reply;
    uint8_t (*asked)[WIRE_NODE_ID_BYTES];
    bool *replied;
    size_t n_asked, cap_asked;
    size_t answered;
    confab_reply_cb cb;
    void *user;
} req_out;

/* A request this node serves, not answered yet. */
typedef struct req_in {
    node_list link;
    uint64_t handle;
    uint8_t rid[WIRE_REQ_ID_BYTES];
    uint8_t from[WIRE_NODE_ID_BYTES];
    char service[WIRE_REQ_MAX_SERVICE + 1];
    uint64_t deadline; /* loop ms */
    size_t max_reply;
    size_t bytes;
} req_in;

typedef struct req_svc {
    node_list link;
    char name[WIRE_REQ_MAX_SERVICE + 1];
    confab_serve_cb cb;
    void *user;
} req_svc;

struct node_reqs {
    node_list out, in, svcs;
    size_t n_out, n_in, n_svcs, in_bytes;
    uint64_t next_handle;
};

static struct node_reqs *reqs(confab_node *n)
{
    if (n->reqs == NULL) {
        n->reqs = calloc(1, sizeof *n->reqs);
        if (n->reqs == NULL)
            return NULL;
        node_list_init(&n->reqs->out);
        node_list_init(&n->reqs->in);
        node_list_init(&n->reqs->svcs);
    }
    return n->reqs;
}

static void count_pending(confab_node *n)
{
    n->stats.requests_pending =
        n->reqs ? (uint64_t)(n->reqs->n_out + n->reqs->n_in) : 0;
}

/* ---- sending envelopes ------------------------------------------------ */

static int send_env(confab_node *n, const uint8_t *to, const char *ct,
                    const uint8_t *env, size_t len, uint64_t ttl_ms)
{
    confab_send_opts o = {.content_type = ct, .ttl_ms = ttl_ms ? ttl_ms : 1};
    return confab_send(n, to, env, len, &o, NULL);
}

static int send_reply(confab_node *n, const uint8_t *to,
                      const uint8_t rid[WIRE_REQ_ID_BYTES], unsigned code,
                      const void *body, size_t len, uint64_t ttl_ms)
{
    wire_rep r;
    memcpy(r.id, rid, WIRE_REQ_ID_BYTES);
    r.code = code;
    r.body.ptr = body;
    r.body.len = (uint32_t)len;
    size_t cap = wire_rep_bound(len), out;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    int rc = wire_rep_encode(&r, buf, cap, &out);
    if (rc == 0)
        rc = send_env(n, to, WIRE_REP_CT, buf, out, ttl_ms);
    free(buf);
    return rc;
}

/* ---- the requester ---------------------------------------------------- */

static req_out *out_find_handle(struct node_reqs *q, uint64_t h)
{
    for (node_list *e = q->out.next; e != &q->out; e = e->next) {
        req_out *r = node_container_of(e, req_out, link);
        if (r->handle == h)
            return r;
    }
    return NULL;
}

static void out_free(confab_node *n, req_out *r)
{
    node_list_del(&r->link);
    n->reqs->n_out--;
    count_pending(n);
    free(r->body);
    free(r->asked);
    free(r->replied);
    free(r);
}

static void out_done(confab_node *n, req_out *r, int result)
{
    confab_reply_info rep;
    memset(&rep, 0, sizeof rep);
    rep.request = r->handle;
    rep.done = 1;
    rep.answered = r->answered;
    rep.result = result;
    if (r->answered > 0)
        n->stats.requests_answered++;
    else
        n->stats.requests_timed_out++;
    confab_reply_cb cb = r->cb;
    void *user = r->user;
    out_free(n, r); /* first: the callback may send another */
    cb(n, &rep, user);
}

static uint64_t time_left(const confab_node *n, const req_out *r)
{
    uint64_t now = node_now_ms(n);
    return r->deadline > now ? r->deadline - now : 0;
}

/* Sends r to one peer; remembers it as asked. */
static int ask(confab_node *n, req_out *r, const uint8_t *peer)
{
    if (r->n_asked == r->cap_asked) {
        size_t cap = r->cap_asked ? r->cap_asked * 2 : 4;
        uint8_t(*a)[WIRE_NODE_ID_BYTES] = realloc(r->asked, cap * sizeof *a);
        if (a == NULL)
            return -ENOMEM;
        r->asked = a;
        bool *rp = realloc(r->replied, cap * sizeof *rp);
        if (rp == NULL)
            return -ENOMEM;
        r->replied = rp;
        r->cap_asked = cap;
    }
    uint64_t left = time_left(n, r);
    if (left == 0)
        left = 1;
    wire_req w;
    memcpy(w.id, r->rid, WIRE_REQ_ID_BYTES);
    w.service.ptr = (const uint8_t *)r->service;
    w.service.len = (uint32_t)strlen(r->service);
    w.wait_ms = left;
    w.max_reply = r->max_reply;
    w.body.ptr = r->body;
    w.body.len = (uint32_t)r->len;
    size_t cap = wire_req_bound(w.service.len, r->len), len;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    int rc = wire_req_encode(&w, buf, cap, &len);
    if (rc == 0)
        rc = send_env(n, peer, WIRE_REQ_CT, buf, len, left);
    free(buf);
    if (rc != 0)
        return rc;
    memcpy(r->asked[r->n_asked], peer, WIRE_NODE_ID_BYTES);
    r->replied[r->n_asked] = false;
    r->n_asked++;
    return 0;
}

static ssize_t asked_index(const req_out *r, const uint8_t *peer)
{
    for (size_t i = 0; i < r->n_asked; i++)
        if (memcmp(r->asked[i], peer, WIRE_NODE_ID_BYTES) == 0)
            return (ssize_t)i;
    return -1;
}

/* The nearest linked member of r's group not asked yet: lowest smoothed
 * round trip, members never measured last, ties to the smaller id (as an
 * anycast chooses, groups.c). */
static node_peer *next_member(confab_node *n, const req_out *r)
{
    node_peer *best = NULL, *p;
    node_peer_each (n, p) {
        if (!node_peer_up(p) || !node_peer_in_group(p, r->service) ||
            (r != NULL && asked_index(r, p->id) >= 0))
            continue;
        uint64_t rp = p->srtt_us ? p->srtt_us : UINT64_MAX;
        uint64_t rb = best && best->srtt_us ? best->srtt_us : UINT64_MAX;
        if (best == NULL || rp < rb ||
            (rp == rb && memcmp(p->id, best->id, WIRE_NODE_ID_BYTES) < 0))
            best = p;
    }
    return best;
}

/* ANY: the next member gets its turn, if there is one; else the request
 * waits (the tick looks again) until its end. */
static void try_next(confab_node *n, req_out *r)
{
    uint64_t now = node_now_ms(n);
    node_peer *p;
    while ((p = next_member(n, r)) != NULL) {
        size_t before = r->n_asked;
        if (ask(n, r, p->id) == 0) {
            if (before > 0)
                n->stats.request_failovers++; /* a member before it */
            r->try_deadline = now + r->try_ms;
            r->waiting = false;
            return;
        }
        /* Its outbox is full or it is too small for us: skip it. */
        if (r->n_asked == r->cap_asked)
            break;
        memcpy(r->asked[r->n_asked], p->id, WIRE_NODE_ID_BYTES);
        r->replied[r->n_asked++] = true; /* skipped, not asked */
    }
    r->waiting = true;
    r->try_deadline = now + MEMBER_POLL_MS;
}

static int check_request(confab_node *n, const char *service, const void *body,
                         size_t len, const confab_request_opts *o)
{
    size_t slen;
    if (service == NULL || o == NULL || (body == NULL && len > 0) ||
        node_groups_check_name(service, &slen) != 0 ||
        o->timeout_ms > WIRE_REQ_MAX_WAIT ||
        (o->mode == CONFAB_REQ_PEER && o->peer == NULL) ||
        (o->mode != CONFAB_REQ_PEER && o->mode != CONFAB_REQ_ANY &&
         o->mode != CONFAB_REQ_ALL))
        return -EINVAL;
    if (n->state != NODE_RUNNING)
        return -EPROTO;
    if (len > n->cfg.max_message ||
        wire_req_bound(slen, len) > n->cfg.max_message)
        return -EMSGSIZE;
    return 0;
}

static req_out *out_new(confab_node *n, const char *service, const void *body,
                        size_t len, const confab_request_opts *o)
{
    req_out *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->body = malloc(len ? len : 1);
    if (r->body == NULL) {
        free(r);
        return NULL;
    }
    if (len > 0)
        memcpy(r->body, body, len);
    r->len = len;
    snprintf(r->service, sizeof r->service, "%s", service);
    r->mode = o->mode;
    unsigned t = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->deadline = node_now_ms(n) + t;
    r->try_ms = o->try_ms ? o->try_ms : n->cfg.anycast_timeout_ms;
    if (r->try_ms > t)
        r->try_ms = t;
    size_t deflt = n->cfg.max_message - REPLY_SLACK;
    r->max_reply = o->max_reply && o->max_reply < deflt ? o->max_reply : deflt;
    r->try_deadline = UINT64_MAX;
    node_random(n, r->rid, sizeof r->rid);
    return r;
}

/* Asks whom the mode says. Returns 0 or the error for confab_request(). */
static int first_asks(confab_node *n, req_out *r, const confab_request_opts *o)
{
    if (r->mode == CONFAB_REQ_PEER)
        return ask(n, r, o->peer);
    if (r->mode == CONFAB_REQ_ANY) {
        if (next_member(n, r) == NULL)
            return -ENOENT;
        try_next(n, r);
        return r->waiting ? -EAGAIN : 0;
    }
    node_peer *p;
    node_peer_each (n, p) {
        if (node_peer_up(p) && node_peer_in_group(p, r->service))
            (void)ask(n, r, p->id); /* a full outbox: that one is not asked */
    }
    return r->n_asked > 0 ? 0 : -ENOENT;
}

int confab_request(confab_node *n, const char *service, const void *body,
                   size_t len, const confab_request_opts *opts,
                   confab_reply_cb cb, void *user, uint64_t *request)
{
    confab_request_opts dflt = {.mode = CONFAB_REQ_ANY};
    const confab_request_opts *o = opts ? opts : &dflt;
    if (cb == NULL)
        return -EINVAL;
    int rc = check_request(n, service, body, len, o);
    if (rc != 0)
        return rc;
    struct node_reqs *q = reqs(n);
    if (q == NULL)
        return -ENOMEM;
    if (q->n_out >= n->cfg.request_max_pending)
        return -EAGAIN;
    req_out *r = out_new(n, service, body, len, o);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->user = user;
    rc = first_asks(n, r, o);
    if (rc != 0) {
        free(r->body);
        free(r->asked);
        free(r->replied);
        free(r);
        return rc;
    }
    r->handle = ++q->next_handle;
    node_list_add_tail(&q->out, &r->link);
    q->n_out++;
    count_pending(n);
    n->stats.requests_sent++;
    if (request != NULL)
        *request = r->handle;
    return 0;
}

int confab_request_cancel(confab_node *n, uint64_t request)
{
    req_out *r = n->reqs ? out_find_handle(n->reqs, request) : NULL;
    if (r == NULL)
        return -ENOENT;
    out_free(n, r);
    return 0;
}

static req_out *out_find_rid(struct node_reqs *q, const uint8_t *rid)
{
    for (node_list *e = q->out.next; e != &q->out; e = e->next) {
        req_out *r = node_container_of(e, req_out, link);
        if (memcmp(r->rid, rid, WIRE_REQ_ID_BYTES) == 0)
            return r;
    }
    return NULL;
}

static void on_reply(confab_node *n, node_peer *p, const wire_rep *w)
{
    req_out *r = n->reqs ? out_find_rid(n->reqs, w->id) : NULL;
    ssize_t i = r ? asked_index(r, p->id) : -1;
    if (r == NULL || i < 0) {
        n->stats.replies_unmatched++;
        return;
    }
    if (r->replied[i]) {
        n->stats.replies_duplicate++;
        return;
    }
    if (w->body.len > r->max_reply) {
        n->stats.replies_oversized++;
        return;
    }
    r->replied[i] = true;
    bool refused = w->code == WIRE_REP_BUSY || w->code == WIRE_REP_NO_SERVICE;
    if (r->mode == CONFAB_REQ_ANY && refused) {
        try_next(n, r); /* it said no at once: the next member now */
        return;
    }
    confab_reply_info rep;
    memset(&rep, 0, sizeof rep);
    rep.request = r->handle;
    rep.from = p->id;
    rep.from_name = p->name;
    rep.status = w->code <= WIRE_REP_TOO_LARGE ? (confab_reply_status)w->code
                                               : CONFAB_REPLY_ERROR;
    rep.body = w->body.ptr;
    rep.len = w->body.len;
    r->answered++;
    uint64_t h = r->handle;
    r->cb(n, &rep, r->user);
    /* The callback may have cancelled it. */
    r = out_find_handle(n->reqs, h);
    if (r == NULL)
        return;
    size_t asked = 0;
    for (size_t k = 0; k < r->n_asked; k++)
        asked += r->replied[k] ? 0u : 1u;
    if (r->mode != CONFAB_REQ_ALL || asked == 0)
        out_done(n, r, 0);
}

/* ---- the server -------------------------------------------------------- */

static req_svc *svc_find(struct node_reqs *q, const char *name)
{
    for (node_list *e = q->svcs.next; e != &q->svcs; e = e->next) {
        req_svc *s = node_container_of(e, req_svc, link);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static req_in *in_find(struct node_reqs *q, uint64_t h)
{
    for (node_list *e = q->in.next; e != &q->in; e = e->next) {
        req_in *r = node_container_of(e, req_in, link);
        if (r->handle == h)
            return r;
    }
    return NULL;
}

static void in_free(confab_node *n, req_in *r)
{
    node_list_del(&r->link);
    n->reqs->n_in--;
    n->reqs->in_bytes -= r->bytes;
    count_pending(n);
    free(r);
}

/* Whether p may make us hold one more request of len bytes. */
static bool in_room(confab_node *n, const node_peer *p, size_t len)
{
    struct node_reqs *q = n->reqs;
    if (q->n_in >= n->cfg.request_max_pending ||
        len > n->cfg.request_max_bytes - q->in_bytes)
        return false;
    size_t mine = 0;
    for (node_list *e = q->in.next; e != &q->in; e = e->next)
        if (memcmp(node_container_of(e, req_in, link)->from, p->id,
                   WIRE_NODE_ID_BYTES) == 0)
            mine++;
    return mine < n->cfg.request_max_per_peer;
}

static void on_request(confab_node *n, node_peer *p, const wire_req *w)
{
    struct node_reqs *q = reqs(n);
    char name[WIRE_REQ_MAX_SERVICE + 1];
    memcpy(name, w->service.ptr, w->service.len);
    name[w->service.len] = '\0';
    req_svc *s = q ? svc_find(q, name) : NULL;
    if (s == NULL) {
        n->stats.requests_no_service++;
        if (p->ob_count < REFUSALS_MAX)
            (void)send_reply(n, p->id, w->id, WIRE_REP_NO_SERVICE, NULL, 0,
                             w->wait_ms);
        return;
    }
    req_in *r = in_room(n, p, w->body.len) ? calloc(1, sizeof *r) : NULL;
    if (r == NULL) {
        /* Best effort: a requester that does not take it loses nothing
         * it was promised. */
        n->stats.requests_refused_busy++;
        if (p->ob_count < REFUSALS_MAX)
            (void)send_reply(n, p->id, w->id, WIRE_REP_BUSY, NULL, 0,
                             w->wait_ms);
        return;
    }
    r->handle = ++q->next_handle;
    memcpy(r->rid, w->id, WIRE_REQ_ID_BYTES);
    memcpy(r->from, p->id, WIRE_NODE_ID_BYTES);
    memcpy(r->service, name, sizeof name);
    r->deadline = node_now_ms(n) + w->wait_ms;
    r->max_reply = w->max_reply > SIZE_MAX ? SIZE_MAX : (size_t)w->max_reply;
    r->bytes = w->body.len;
    node_list_add_tail(&q->in, &r->link);
    q->n_in++;
    q->in_bytes += r->bytes;
    count_pending(n);
    n->stats.requests_served++;
    confab_request_in in = {
        .handle = r->handle,
        .from = p->id,
        .from_name = p->name,
        .service = s->name,
        .body = w->body.ptr,
        .len = w->body.len,
        .wait_ms = w->wait_ms,
        .max_reply = r->max_reply,
    };
    s->cb(n, &in, s->user); /* it may answer at once (confab_reply) */
}

int confab_serve(confab_node *n, const char *service, confab_serve_cb cb,
                 void *user)
{
    if (service == NULL || cb == NULL ||
        node_groups_check_name(service, NULL) != 0)
        return -EINVAL;
    struct node_reqs *q = reqs(n);
    if (q == NULL)
        return -ENOMEM;
    if (svc_find(q, service) != NULL)
        return -EEXIST;
    if (q->n_svcs >= CONFAB_MAX_GROUPS)
        return -ENOSPC;
    req_svc *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    int rc = confab_join(n, service);
    if (rc != 0) {
        free(s);
        return rc;
    }
    snprintf(s->name, sizeof s->name, "%s", service);
    s->cb = cb;
    s->user = user;
    node_list_add_tail(&q->svcs, &s->link);
    q->n_svcs++;
    return 0;
}

int confab_unserve(confab_node *n, const char *service)
{
    req_svc *s = n->reqs && service ? svc_find(n->reqs, service) : NULL;
    if (s == NULL)
        return -ENOENT;
    node_list_del(&s->link);
    n->reqs->n_svcs--;
    free(s);
    if (confab_leave(n, service) != 0)
        node_log(n, CONFAB_LOG_DEBUG, "serve: %s was left already", service);
    node_list *e, *next;
    for (e = n->reqs->in.next; e != &n->reqs->in; e = next) {
        next = e->next;
        req_in *r = node_container_of(e, req_in, link);
        if (strcmp(r->service, service) != 0)
            continue;
        uint64_t now = node_now_ms(n);
        (void)send_reply(n, r->from, r->rid, WIRE_REP_NO_SERVICE, NULL, 0,
                         r->deadline > now ? r->deadline - now : 1);
        in_free(n, r);
    }
    return 0;
}

static int reply_with(confab_node *n, uint64_t handle, unsigned code,
                      const void *body, size_t len)
{
    req_in *r = n->reqs ? in_find(n->reqs, handle) : NULL;
    if (body == NULL && len > 0)
        return -EINVAL;
    if (r == NULL)
        return -ENOENT;
    if (len > r->max_reply || wire_rep_bound(len) > n->cfg.max_message)
        return -EMSGSIZE;
    uint64_t now = node_now_ms(n);
    int rc = send_reply(n, r->from, r->rid, code, body, len,
                        r->deadline > now ? r->deadline - now : 1);
    if (rc == 0 || rc == -ESRCH)
        in_free(n, r); /* -ESRCH: the requester is gone for good */
    return rc == -ESRCH ? -ENOENT : rc;
}

int confab_reply(confab_node *n, uint64_t handle, const void *body, size_t len)
{
    return reply_with(n, handle, WIRE_REP_OK, body, len);
}

int confab_reply_error(confab_node *n, uint64_t handle, const void *body,
                       size_t len)
{
    return reply_with(n, handle, WIRE_REP_ERROR, body, len);
}

/* ---- hooks ------------------------------------------------------------- */

bool node_request_is(const char *ct)
{
    return ct != NULL &&
           (strcmp(ct, WIRE_REQ_CT) == 0 || strcmp(ct, WIRE_REP_CT) == 0);
}

void node_request_on_data(confab_node *n, node_peer *p, const char *ct,
                          const uint8_t *body, size_t len)
{
    if (n->state != NODE_RUNNING)
        return; /* no callback once the node stops */
    if (strcmp(ct, WIRE_REQ_CT) == 0) {
        wire_req w;
        if (wire_req_decode(body, len, &w) != 0)
            n->stats.requests_malformed++;
        else
            on_request(n, p, &w);
        return;
    }
    wire_rep w;
    if (wire_rep_decode(body, len, &w) != 0)
        n->stats.requests_malformed++;
    else
        on_reply(n, p, &w);
}

void node_request_tick(confab_node *n, uint64_t now)
{
    struct node_reqs *q = n->reqs;
    if (q == NULL || n->state != NODE_RUNNING)
        return;
    node_list *e, *next;
    for (e = q->in.next; e != &q->in; e = next) {
        next = e->next;
        req_in *r = node_container_of(e, req_in, link);
        if (now >= r->deadline) {
            n->stats.requests_expired_in++;
            in_free(n, r);
        }
    }
    /* A done callback may end or start other requests: walk again from
     * the head after each one (they are few: request_max_pending). */
    bool again = true;
    while (again) {
        again = false;
        for (e = q->out.next; e != &q->out; e = e->next) {
            req_out *r = node_container_of(e, req_out, link);
            if (now >= r->deadline) {
                out_done(n, r, r->answered ? 0 : -ETIMEDOUT);
                again = true;
                break;
            }
            if (r->mode == CONFAB_REQ_ANY && now >= r->try_deadline)
                try_next(n, r); /* or look again for a new member */
        }
    }
}

void node_request_free(confab_node *n)
{
    struct node_reqs *q = n->reqs;
    if (q == NULL)
        return;
    while (!node_list_empty(&q->out))
        out_free(n, node_container_of(q->out.next, req_out, link));
    while (!node_list_empty(&q->in))
        in_free(n, node_container_of(q->in.next, req_in, link));
    while (!node_list_empty(&q->svcs)) {
        req_svc *s = node_container_of(q->svcs.next, req_svc, link);
        node_list_del(&s->link);
        free(s);
    }
    free(q);
    n->reqs = NULL;
}
