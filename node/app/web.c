/* Layer app (node/LAYERS).
 * web.c: the HTTP server of the live page and of /metrics (node/web.h):
 * libmicrohttpd in its external-loop mode, driven from the node's libuv
 * loop (its epoll descriptor under a uv_poll_t, its timeout on a
 * uv_timer_t), so it needs no thread and never touches a node from
 * another one. */
#include "node/app/web_int.h"

#include "node/app/app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEF_MAX_CONNS      64u
#define DEF_MAX_PER_SOURCE 16u
#define DEF_MAX_REQUEST    (16u << 10)
#define DEF_MAX_QUEUED     (1u << 20)
#define DEF_IDLE_S         10u
#define HEARTBEAT_MS       15000u
#define MAX_SEND_BODY      4096u
#define SSE_SNDBUF         (32 << 10)

typedef struct web_sse {
    struct web_sse *prev, *next;
    confab_web *web;
    struct MHD_Connection *conn;
    char *q; /* bytes not yet given to MHD: q[off..len) */
    size_t off, len, cap;
    bool suspended;
    bool cut;
} web_sse;

typedef struct web_conn {
    char src[INET6_ADDRSTRLEN];
    bool answered;
} web_conn;

typedef struct web_source {
    char addr[INET6_ADDRSTRLEN];
    unsigned n;
} web_source;

struct confab_web {
    uv_loop_t *loop;
    confab_web_config cfg;
    char addr[128];
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer, heartbeat;
    unsigned open_handles;
    bool started, freeing;
    uint16_t port;
    confab_node **nodes;
    size_t n_nodes;
    web_sse sse;     /* list head */
    web_source *src; /* max_conns entries */
    confab_web_stats st;
    char *run_json;
    uint64_t last_refusal_log;
};

void confab_web_config_init(confab_web_config *c)
{
    memset(c, 0, sizeof *c);
}

static void wlog(confab_web *w, confab_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wlog(confab_web *w, confab_log_level lvl, const char *fmt, ...)
{
    if (w->cfg.log_cb == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->cfg.log_cb(w->n_nodes ? w->nodes[0] : NULL, lvl, line, w->cfg.user);
}

/* ---- the event stream ------------------------------------------------- */

static void sse_unlink(web_sse *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->prev = s->next = s;
}

static void timer_cb(uv_timer_t *t);

static void sse_resume(web_sse *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
        /* MHD takes a resumed connection back at its next run: make it
         * soon, without waiting for some descriptor to wake it. */
        if (s->web->started && !s->web->freeing)
            uv_timer_start(&s->web->timer, timer_cb, 0, 0);
    }
}

/* Cuts a client that does not read: its queue is freed now, and its
 * socket is shut down so that MHD closes it at its next try. */
static void sse_cut(web_sse *s)
{
    confab_web *w = s->web;
    s->cut = true;
    w->st.sse_queued_bytes -= s->len - s->off;
    free(s->q);
    s->q = NULL;
    s->off = s->len = s->cap = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL)
        (void)shutdown(ci->connect_fd, SHUT_RDWR);
    sse_resume(s);
}

static void sse_push(web_sse *s, const char *data, size_t n)
{
    confab_web *w = s->web;
    if (s->cut)
        return;
    size_t max = w->cfg.max_queued;
    if (n > max || s->len - s->off > max - n) {
        w->st.sse_cut++;
        wlog(w, CONFAB_LOG_WARN,
             "web: an event-stream client has %zu bytes queued unread (the "
             "bound is %zu); cutting it. A page that cannot keep up "
             "reconnects and reloads the state",
             s->len - s->off, max);
        sse_cut(s);
        return;
    }
    if (s->off > 0 && s->off == s->len)
        s->off = s->len = 0;
    if (s->cap - s->len < n) {
        if (s->off > 0) {
            memmove(s->q, s->q + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n)
            cap *= 2;
        if (cap != s->cap) {
            char *q = realloc(s->q, cap);
            if (q == NULL) {
                w->st.sse_cut++;
                sse_cut(s);
                return;
            }
            s->q = q;
            s->cap = cap;
        }
    }
    memcpy(s->q + s->len, data, n);
    s->len += n;
    w->st.sse_queued_bytes += n;
    sse_resume(s);
}

static void broadcast_event(confab_web *w, const web_buf *b)
{
    if (b->failed || b->len == 0)
        return;
    for (web_sse *s = w->sse.next; s != &w->sse; s = s->next)
        sse_push(s, b->p, b->len);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    web_sse *s = cls;
    (void)pos;
    if (s->cut || s->web->freeing)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t avail = s->len - s->off;
    if (avail == 0) {
        /* Nothing to say: wait for an event (sse_push resumes it). */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        return 0;
    }
    size_t k = avail < max ? avail : max;
    memcpy(buf, s->q + s->off, k);
    s->off += k;
    s->web->st.sse_queued_bytes -= k;
    return (ssize_t)k;
}

static void sse_free(void *cls)
{
    web_sse *s = cls;
    confab_web *w = s->web;
    sse_unlink(s);
    w->st.sse_queued_bytes -= s->len - s->off;
    w->st.sse_clients--;
    free(s->q);
    free(s);
}

static void heartbeat_cb(uv_timer_t *t)
{
    confab_web *w = t->data;
    /* A comment line: keeps proxies from timing out, and lets MHD see a
     * page that went away (a suspended connection is not watched). */
    web_buf b = {0};
    web_buf_puts(&b, ": ping\n\n");
    broadcast_event(w, &b);
    web_buf_free(&b);
}

/* ---- events from the nodes --------------------------------------------- */

static const char *kind_name(confab_kind k)
{
    switch (k) {
    case CONFAB_UNICAST:
        return "unicast";
    case CONFAB_BROADCAST:
        return "broadcast";
    case CONFAB_GROUP:
        return "shout";
    case CONFAB_ANYCAST:
        return "anycast";
    }
    return "unknown";
}

static void put_id(web_buf *b, const char *key, const uint8_t *id)
{
    char sid[17] = "";
    if (id != NULL)
        web_short_id(id, sid);
    web_buf_printf(b, ",\"%s\":\"%s\"", key, sid);
}

static void put_mid(web_buf *b, const uint8_t *mid)
{
    web_buf_puts(b, ",\"mid\":\"");
    for (unsigned i = 0; mid != NULL && i < CONFAB_MSG_ID_BYTES; i++)
        web_buf_printf(b, "%02x", mid[i]);
    web_buf_puts(b, "\"");
}

static void on_node_event(confab_node *n, const confab_event *ev, void *user)
{
    confab_web *w = user;
    if (w->sse.next == &w->sse)
        return;
    web_buf b = {0};
    web_buf_puts(&b, "data: {\"t\":");
    switch (ev->type) {
    case CONFAB_EV_PEER_UP:
    case CONFAB_EV_PEER_DOWN:
        web_buf_printf(&b, "\"peer\",\"up\":%s",
                       ev->type == CONFAB_EV_PEER_UP ? "true" : "false");
        break;
    case CONFAB_EV_JOIN:
    case CONFAB_EV_LEAVE:
        web_buf_printf(&b, "\"group\",\"join\":%s,\"group\":",
                       ev->type == CONFAB_EV_JOIN ? "true" : "false");
        web_buf_json_str(&b, ev->group ? ev->group : "");
        break;
    case CONFAB_EV_MESSAGE: {
        const confab_message *m = ev->message;
        web_buf_printf(&b, "\"msg\",\"kind\":\"%s\"", kind_name(m->kind));
        put_id(&b, "from", m->from);
        put_mid(&b, m->id);
        web_buf_printf(&b, ",\"len\":%zu,\"group\":", m->len);
        web_buf_json_str(&b, m->group ? m->group : "");
        break;
    }
    case CONFAB_EV_SEND:
        web_buf_printf(&b, "\"outcome\",\"status\":\"%s\"",
                       ev->status == CONFAB_DELIVERED ? "delivered"
                       : ev->status == CONFAB_EXPIRED ? "expired"
                                                      : "failed");
        put_mid(&b, ev->msg_id);
        break;
    case CONFAB_EV_PONG:
        web_buf_printf(&b, "\"rtt\",\"rtt_us\":%llu",
                       (unsigned long long)ev->rtt_us);
        break;
    case CONFAB_EV_WRITABLE:
        web_buf_free(&b);
        return;
    }
    put_id(&b, "node", confab_node_id(n));
    if (ev->peer != NULL && ev->type != CONFAB_EV_MESSAGE) {
        put_id(&b, "peer", ev->peer);
        web_buf_puts(&b, ",\"name\":");
        web_buf_json_str(&b, ev->peer_name ? ev->peer_name : "");
    }
    web_buf_puts(&b, "}\n\n");
    broadcast_event(w, &b);
    web_buf_free(&b);
}

/* A message framed for a peer: the page draws its path from here. */
static void on_node_sent(confab_node *n, const uint8_t *peer, unsigned kind,
                         const uint8_t *msg_id, const char *group, void *user)
{
    confab_web *w = user;
    if (w->sse.next == &w->sse)
        return;
    web_buf b = {0};
    web_buf_printf(&b, "data: {\"t\":\"sent\",\"kind\":\"%s\"",
                   kind_name((confab_kind)kind));
    put_id(&b, "node", confab_node_id(n));
    put_id(&b, "peer", peer);
    put_mid(&b, msg_id);
    web_buf_puts(&b, ",\"group\":");
    web_buf_json_str(&b, group ? group : "");
    web_buf_puts(&b, "}\n\n");
    broadcast_event(w, &b);
    web_buf_free(&b);
}

void confab_web_note(confab_web *w, const char *json)
{
    web_buf b = {0};
    web_buf_puts(&b, "data: ");
    /* One line: an event's data ends at a newline. */
    for (const char *p = json; *p; p++)
        web_buf_put(&b, *p == '\n' || *p == '\r' ? " " : p, 1);
    web_buf_puts(&b, "\n\n");
    broadcast_event(w, &b);
    web_buf_free(&b);
}

void confab_web_set_run(confab_web *w, const char *json)
{
    free(w->run_json);
    w->run_json = json ? strdup(json) : NULL;
}

/* ---- connections and their bounds -------------------------------------- */

static void addr_name(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    out[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)(const void *)sa, out,
                    INET6_ADDRSTRLEN);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)sa, out,
                    INET6_ADDRSTRLEN);
}

static web_source *source_find(confab_web *w, const char *addr, bool add)
{
    web_source *free_slot = NULL;
    for (unsigned i = 0; i < w->cfg.max_conns; i++) {
        if (w->src[i].n > 0 && strcmp(w->src[i].addr, addr) == 0)
            return &w->src[i];
        if (w->src[i].n == 0 && free_slot == NULL)
            free_slot = &w->src[i];
    }
    if (add && free_slot != NULL)
        snprintf(free_slot->addr, sizeof free_slot->addr, "%s", addr);
    return add ? free_slot : NULL;
}

static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr,
                                 socklen_t addrlen)
{
    confab_web *w = cls;
    (void)addrlen;
    char name[INET6_ADDRSTRLEN];
    addr_name(addr, name);
    web_source *s = source_find(w, name, false);
    bool all = w->st.conns_open >= w->cfg.max_conns;
    if (!all && (s == NULL || s->n < w->cfg.max_conns_per_source))
        return MHD_YES;
    w->st.conns_refused++;
    uint64_t now = uv_now(w->loop);
    if (w->last_refusal_log == 0 || now - w->last_refusal_log >= 10000) {
        w->last_refusal_log = now;
        wlog(w, CONFAB_LOG_WARN,
             "web: refusing a connection from %s: %s (%llu refused so "
             "far); if a real page cannot connect, close other tabs",
             name,
             all ? "the server holds its most connections"
                 : "that address holds its most connections",
             (unsigned long long)w->st.conns_refused);
    }
    return MHD_NO;
}

static void notify_conn_cb(void *cls, struct MHD_Connection *conn,
                           void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    confab_web *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        web_conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (c == NULL)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        addr_name(ci ? ci->client_addr : NULL, c->src);
        web_source *s = source_find(w, c->src, true);
        if (s != NULL)
            s->n++;
        w->st.conns_open++;
        return;
    }
    web_conn *c = *socket_context;
    if (c == NULL)
        return;
    web_source *s = source_find(w, c->src, false);
    if (s != NULL)
        s->n--;
    w->st.conns_open--;
    if (!c->answered)
        w->st.conns_cut++;
    free(c);
    *socket_context = NULL;
}

/* MHD's own messages (a failed accept, a malformed request) come at the
 * rate a stranger chooses: they are not logged; the counters and our own
 * rate-limited lines say what happened. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
}

/* ---- requests ---------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, const void *data, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self' "
                            "'unsafe-inline'; frame-ancestors 'none'");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *msg)
{
    return reply(conn, status, "text/plain; charset=utf-8", msg, strlen(msg),
                 MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result reply_buf(struct MHD_Connection *conn, const char *type,
                                 web_buf *b)
{
    if (b->failed) {
        web_buf_free(b);
        return text(conn, 500, "out of memory\n");
    }
    enum MHD_Result rc =
        reply(conn, 200, type, b->p ? b->p : "", b->len, MHD_RESPMEM_MUST_FREE);
    if (rc == MHD_NO)
        free(b->p);
    return rc;
}

static enum MHD_Result get_state(confab_web *w, struct MHD_Connection *conn)
{
    web_view v;
    if (web_view_build(&v, w->nodes, w->n_nodes) != 0)
        return text(conn, 500, "out of memory\n");
    web_buf b = {0};
    web_buf_printf(&b,
                   "{\"step\":%s,\"allow_send\":%s,\"shown\":%zu,"
                   "\"network\":",
                   w->cfg.step_cb ? "true" : "false",
                   w->cfg.allow_send ? "true" : "false", w->n_nodes);
    web_view_json(&v, &b);
    web_buf_puts(&b, ",\"run\":");
    web_buf_puts(&b, w->run_json ? w->run_json : "null");
    web_buf_puts(&b, "}");
    web_view_free(&v);
    return reply_buf(conn, "application/json", &b);
}

static enum MHD_Result get_events(confab_web *w, struct MHD_Connection *conn)
{
    web_sse *s = calloc(1, sizeof *s);
    if (s == NULL)
        return text(conn, 500, "out of memory\n");
    s->web = w;
    s->conn = conn;
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (r == NULL) {
        free(s);
        return MHD_NO;
    }
    s->prev = &w->sse;
    s->next = w->sse.next;
    w->sse.next->prev = s;
    w->sse.next = s;
    w->st.sse_clients++;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    /* A fixed, small socket buffer: what a page has not read then waits
     * in our queue, where max_queued bounds it, and not in a kernel buffer
     * that autotuning grows to megabytes. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int sndbuf = SSE_SNDBUF;
    if (ci != NULL)
        (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
                         sizeof sndbuf);
    static const char hello[] = "retry: 2000\ndata: {\"t\":\"hello\"}\n\n";
    sse_push(s, hello, sizeof hello - 1);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* POST /api/send?kind=broadcast|shout|anycast|unicast&body=..&group=..
 * &to=<16 hex digits>: sends from the first node shown. */
static enum MHD_Result post_send(confab_web *w, struct MHD_Connection *conn)
{
    if (!w->cfg.allow_send)
        return text(conn, 403,
                    "this page is read-only: start the node "
                    "with --web-allow-send to send from it\n");
    const char *kind =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "kind");
    const char *body =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "body");
    const char *group =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "group");
    const char *to =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    if (kind == NULL || body == NULL || strlen(body) > MAX_SEND_BODY ||
        w->n_nodes == 0)
        return text(conn, 400,
                    "send needs kind and body (at most 4096 "
                    "bytes)\n");
    confab_node *n = w->nodes[0];
    size_t len = strlen(body);
    int rc = -EINVAL;
    if (strcmp(kind, "broadcast") == 0) {
        rc = confab_broadcast(n, body, len, NULL, NULL, NULL);
    } else if (strcmp(kind, "shout") == 0 && group != NULL) {
        rc = confab_shout(n, group, body, len, NULL, NULL, NULL);
    } else if (strcmp(kind, "anycast") == 0 && group != NULL) {
        rc = confab_anycast(n, group, body, len, NULL, NULL);
    } else if (strcmp(kind, "unicast") == 0 && to != NULL) {
        size_t count = 0;
        confab_peers(n, NULL, 0, &count);
        confab_peer_info *pi = calloc(count ? count : 1, sizeof *pi);
        if (pi == NULL)
            return text(conn, 500, "out of memory\n");
        confab_peers(n, pi, count, &count);
        rc = -ESRCH;
        for (size_t i = 0; i < count; i++) {
            char sid[17];
            web_short_id(pi[i].id, sid);
            if (strcmp(sid, to) == 0) {
                rc = confab_send(n, pi[i].id, body, len, NULL, NULL);
                break;
            }
        }
        free(pi);
    }
    if (rc != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "not sent: %s\n", confab_strerror(rc));
        return text(conn, 400, msg);
    }
    return text(conn, 200, "sent\n");
}

/* DNS rebinding: a page of another site that names this server by a host
 * name it controls must not reach it. Only IP literals and "localhost". */
static bool host_ok(struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (h == NULL)
        return true; /* HTTP/1.0: no page of a browser */
    if (h[0] == '[')
        return true;
    size_t n = strcspn(h, ":");
    if (n == 9 && strncmp(h, "localhost", 9) == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
            return false;
    return n > 0;
}

static const web_asset *asset(const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, url) == 0)
            return &web_assets[i];
    return NULL;
}

static enum MHD_Result route(confab_web *w, struct MHD_Connection *conn,
                             const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (!host_ok(conn))
        return text(conn, 421, "use the server's address, not a host name\n");
    if (post && strncmp(url, "/api/", 5) == 0) {
        /* Only the page's own script sets it: a form of another site
         * cannot, and a script of another site needs a CORS preflight,
         * which this server never allows. */
        if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Confab") ==
            NULL)
            return text(conn, 403, "missing X-Confab header\n");
        if (strcmp(url, "/api/step") == 0 && w->cfg.step_cb != NULL) {
            w->cfg.step_cb(w, w->cfg.user);
            return text(conn, 200, "ok\n");
        }
        if (strcmp(url, "/api/send") == 0)
            return post_send(w, conn);
        return text(conn, 404, "no such action\n");
    }
    if (!get)
        return text(conn, 405, "only GET here\n");
    if (strcmp(url, "/state") == 0)
        return get_state(w, conn);
    if (strcmp(url, "/events") == 0)
        return get_events(w, conn);
    if (strcmp(url, "/metrics") == 0) {
        web_buf b = {0};
        node_metrics_write(&b, w->nodes, w->n_nodes, &w->st);
        return reply_buf(conn, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
    const web_asset *a = asset(url);
    if (a != NULL)
        return reply(conn, 200, a->type, a->data, a->len,
                     MHD_RESPMEM_PERSISTENT);
    return text(conn, 404, "not found\n");
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    confab_web *w = cls;
    (void)version;
    (void)upload;
    static int seen;
    if (*req_cls == NULL) {
        *req_cls = &seen; /* the headers are in; wait for any body */
        return MHD_YES;
    }
    if (*upload_size != 0) {
        /* No action takes a body: ignore it, it counts against the
         * connection's memory like the headers. */
        *upload_size = 0;
        return MHD_YES;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != NULL && ci->socket_context != NULL)
        ((web_conn *)ci->socket_context)->answered = true;
    w->st.requests++;
    return route(w, conn, url, method);
}

/* ---- the loop ---------------------------------------------------------- */

static void run_mhd(confab_web *w)
{
    if (w->d == NULL || w->freeing)
        return;
    (void)MHD_run(w->d);
    /* MHD may hold work that no descriptor will signal again (its epoll
     * is edge-triggered): its timeout is then 0. */
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(w->d, &t) == MHD_YES)
        uv_timer_start(&w->timer, timer_cb, t > 60000 ? 60000 : t, 0);
    else
        uv_timer_stop(&w->timer);
}

static void timer_cb(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

/* ---- life cycle -------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_storage *ss, bool *v6)
{
    char host[64];
    const char *port = NULL;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (e == NULL || (size_t)(e - s - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = '\0';
        if (e[1] == ':')
            port = e + 2;
        else if (e[1] != '\0')
            return -EINVAL;
    } else {
        const char *c = strrchr(s, ':');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (n >= sizeof host || (c != NULL && strchr(s, ':') != c))
            return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        port = c ? c + 1 : NULL;
    }
    unsigned long p = 0;
    if (port != NULL) {
        char *end;
        errno = 0;
        p = strtoul(port, &end, 10);
        if (*port == '\0' || *end != '\0' || errno != 0 || p > 65535)
            return -EINVAL;
    }
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0) {
        *v6 = false;
        return 0;
    }
    if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0) {
        *v6 = true;
        return 0;
    }
    return -EINVAL;
}

static bool is_loopback(const struct sockaddr_storage *ss, bool v6)
{
    if (!v6) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    return memcmp(&a->sin6_addr, &in6addr_loopback, sizeof a->sin6_addr) == 0;
}

int confab_web_new(uv_loop_t *loop, const confab_web_config *c,
                   confab_web **out)
{
    confab_web *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->loop = loop;
    w->cfg = *c;
    if (w->cfg.max_conns == 0)
        w->cfg.max_conns = DEF_MAX_CONNS;
    if (w->cfg.max_conns_per_source == 0)
        w->cfg.max_conns_per_source = DEF_MAX_PER_SOURCE;
    if (w->cfg.max_request == 0)
        w->cfg.max_request = DEF_MAX_REQUEST;
    if (w->cfg.max_queued == 0)
        w->cfg.max_queued = DEF_MAX_QUEUED;
    if (w->cfg.idle_timeout_s == 0)
        w->cfg.idle_timeout_s = DEF_IDLE_S;
    snprintf(w->addr, sizeof w->addr, "%s", c->addr ? c->addr : "127.0.0.1:0");
    w->cfg.addr = w->addr;
    w->sse.prev = w->sse.next = &w->sse;
    w->src = calloc(w->cfg.max_conns, sizeof *w->src);
    if (w->src == NULL) {
        free(w);
        return -ENOMEM;
    }
    struct sockaddr_storage ss;
    bool v6;
    if (parse_addr(w->addr, &ss, &v6) != 0) {
        wlog(w, CONFAB_LOG_ERROR,
             "web: '%s' is not an address to listen on; give an IP literal "
             "and a port, e.g. 127.0.0.1:8080 or [::1]:8080",
             w->addr);
        free(w->src);
        free(w);
        return -EINVAL;
    }
    *out = w;
    return 0;
}

int confab_web_add_node(confab_web *w, confab_node *node)
{
    confab_node **p = realloc(w->nodes, (w->n_nodes + 1) * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    w->nodes = p;
    p[w->n_nodes++] = node;
    node_observer o = {on_node_event, on_node_sent, w};
    node_set_observer(node, &o);
    return 0;
}

int confab_web_start(confab_web *w)
{
    struct sockaddr_storage ss;
    bool v6 = false;
    if (parse_addr(w->addr, &ss, &v6) != 0)
        return -EINVAL;
    if (!is_loopback(&ss, v6))
        wlog(w, CONFAB_LOG_WARN,
             "web: serving the page on %s, not loopback: anybody who can "
             "reach it sees the network and its counters (docs/SECURITY.md, "
             "\"The web page\")",
             w->addr);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    w->d = MHD_start_daemon(
        flags, 0, accept_cb, w, access_cb, w, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, w, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * w->cfg.max_request),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(w->cfg.max_conns + 8),
        MHD_OPTION_CONNECTION_TIMEOUT, w->cfg.idle_timeout_s,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn_cb, w, MHD_OPTION_END);
    if (w->d == NULL) {
        int err = errno ? -errno : -EADDRINUSE;
        wlog(w, CONFAB_LOG_ERROR, "web: cannot listen on %s (%s)", w->addr,
             uv_strerror(err));
        return err;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi =
        MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    if (di == NULL || pi == NULL) {
        MHD_stop_daemon(w->d);
        w->d = NULL;
        return -EIO;
    }
    w->port = pi->port;
    uv_poll_init(w->loop, &w->poll, di->epoll_fd);
    uv_timer_init(w->loop, &w->timer);
    uv_timer_init(w->loop, &w->heartbeat);
    w->poll.data = w->timer.data = w->heartbeat.data = w;
    w->open_handles = 3;
    w->started = true;
    uv_poll_start(&w->poll, UV_READABLE, poll_cb);
    uv_timer_start(&w->heartbeat, heartbeat_cb, HEARTBEAT_MS, HEARTBEAT_MS);
    return 0;
}

uint16_t confab_web_port(const confab_web *w)
{
    return w->port;
}

void confab_web_stats_get(const confab_web *w, confab_web_stats *out)
{
    *out = w->st;
}

int confab_web_write_report(confab_web *w, FILE *f, const char *title,
                            const char *txt)
{
    web_view v;
    if (web_view_build(&v, w->nodes, w->n_nodes) != 0)
        return -ENOMEM;
    web_buf b = {0};
    web_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
                     "charset=\"utf-8\"><title>");
    web_buf_html(&b, title);
    web_buf_puts(&b, "</title>\n<style>\n");
    const web_asset *css = asset("/style.css");
    if (css != NULL)
        web_buf_put(&b, (const char *)css->data, css->len);
    web_buf_puts(&b, "</style></head>\n<body class=\"report\"><h1>");
    web_buf_html(&b, title);
    web_buf_printf(&b,
                   "</h1>\n<p id=\"summary\">%zu nodes, %zu links, %zu "
                   "group%s</p>\n",
                   v.n_nodes, v.n_links, v.n_groups,
                   v.n_groups == 1 ? "" : "s");
    web_view_svg(&v, &b);
    if (txt != NULL) {
        web_buf_puts(&b, "<pre id=\"report\">");
        web_buf_html(&b, txt);
        web_buf_puts(&b, "</pre>\n");
    }
    web_buf_puts(&b, "</body></html>\n");
    web_view_free(&v);
    int rc = 0;
    if (b.failed)
        rc = -ENOMEM;
    else if (fwrite(b.p, 1, b.len, f) != b.len)
        rc = -EIO;
    web_buf_free(&b);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    confab_web *w = h->data;
    if (--w->open_handles > 0)
        return;
    free(w->src);
    free(w->nodes);
    free(w->run_json);
    free(w);
}

void confab_web_free(confab_web *w)
{
    if (w == NULL)
        return;
    w->freeing = true;
    for (size_t i = 0; i < w->n_nodes; i++)
        node_set_observer(w->nodes[i], NULL);
    for (web_sse *s = w->sse.next; s != &w->sse; s = s->next) {
        s->cut = true;
        sse_resume(s);
    }
    if (!w->started) {
        if (w->d != NULL)
            MHD_stop_daemon(w->d);
        free(w->src);
        free(w->nodes);
        free(w->run_json);
        free(w);
        return;
    }
    /* Out of the loop's epoll set before MHD closes its descriptor. */
    uv_poll_stop(&w->poll);
    MHD_stop_daemon(w->d);
    w->d = NULL;
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->timer, on_closed);
    uv_close((uv_handle_t *)&w->heartbeat, on_closed);
}
