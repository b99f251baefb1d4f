/* cli/client.c: the control client (cli/client.h). */
#include "cli/client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONTROL_MSG ((size_t)64 << 20)

int cli_home(const cli_ctx *ctx, char *out, size_t cap)
{
    const char *h = ctx->home;
    int w;
    if (h == NULL)
        h = getenv("CONFAB_HOME");
    if (h != NULL && *h != '\0') {
        w = snprintf(out, cap, "%s", h);
    } else if ((h = getenv("XDG_DATA_HOME")) != NULL && *h != '\0') {
        w = snprintf(out, cap, "%s/confab", h);
    } else if ((h = getenv("HOME")) != NULL && *h != '\0') {
        w = snprintf(out, cap, "%s/.local/share/confab", h);
    } else {
        cli_error(ctx, "no home directory: set --home DIR, or CONFAB_HOME");
        return -1;
    }
    if (w < 0 || (size_t)w >= cap) {
        cli_error(ctx, "the home directory's path is too long");
        return -1;
    }
    return 0;
}

int cli_connect(const cli_ctx *ctx, cli_client *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->ctx = ctx;
    c->next_rid = 1;
    char home[4096];
    if (cli_home(ctx, home, sizeof home) != 0)
        return CLI_USAGE;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int w = snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock", home);
    if (w < 0 || (size_t)w >= sizeof a.sun_path) {
        cli_error(ctx,
                  "the control socket's path under %s is too long for a "
                  "Unix socket; use a shorter --home",
                  home);
        return CLI_NO_NODE;
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            cli_error(ctx,
                      "no node is running with home %s; start one with "
                      "'confab run' (or give the right --home)",
                      home);
        else if (e == EACCES || e == EPERM)
            cli_error(ctx,
                      "cannot reach the node's control socket %s: %s; "
                      "only the user who runs the node may use it",
                      a.sun_path, strerror(e));
        else
            cli_error(ctx, "cannot reach the node's control socket %s: %s",
                      a.sun_path, strerror(e));
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return CLI_NO_NODE;
    }
    memcpy(c->path, a.sun_path, sizeof c->path);
    wire_ctl_reader_init(&c->reader, MAX_CONTROL_MSG);
    return CLI_OK;
}

void cli_close(cli_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    wire_ctl_reader_free(&c->reader);
}

void cli_request(cli_client *c, wire_ctl_builder *b, const char *op,
                 uint32_t extra, uint64_t *rid)
{
    *rid = c->next_rid++;
    wire_ctl_builder_init(b, MAX_CONTROL_MSG);
    wire_ctl_map_begin(b, 2 + extra);
    wire_ctl_key(b, "op");
    wire_ctl_put_cstr(b, op);
    wire_ctl_key(b, "rid");
    wire_ctl_put_uint(b, *rid);
}

int cli_send(cli_client *c, const wire_ctl_builder *b)
{
    int rc = wire_ctl_finish(b);
    if (rc != 0)
        return rc;
    size_t flen = wire_ctl_framed_len(b->len);
    uint8_t *out = malloc(flen);
    if (out == NULL)
        return -ENOMEM;
    size_t len;
    rc = wire_ctl_frame(b->buf, b->len, out, flen, &len);
    const uint8_t *p = out;
    while (rc == 0 && len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    free(out);
    return rc;
}

int cli_next(cli_client *c, wire_ctl_map *msg, int timeout_ms)
{
    for (;;) {
        if (c->in_off < c->in_len) {
            const uint8_t *p = c->in + c->in_off;
            size_t left = c->in_len - c->in_off;
            const uint8_t *m;
            size_t mlen;
            int rc = wire_ctl_read(&c->reader, &p, &left, &m, &mlen);
            c->in_off = c->in_len - left;
            if (rc == 1)
                return wire_ctl_parse(m, mlen, msg) == 0 ? 1 : -EPROTO;
            if (rc < 0)
                return rc;
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        ssize_t n = recv(c->fd, c->in, sizeof c->in, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c->in_len = (size_t)n;
        c->in_off = 0;
    }
}

int cli_exit_for(int64_t err)
{
    switch (err) {
    case -ESRCH:
    case -ENOENT:
        return CLI_UNKNOWN;
    case -ETIMEDOUT:
        return CLI_TIMEOUT;
    case -EAGAIN:
    case -EMSGSIZE:
    case -EACCES:
    case -EPERM:
    case -ENOSPC:
    case -ENOTCONN:
        return CLI_REFUSED;
    case -EINVAL:
        return CLI_USAGE;
    default:
        return CLI_FAILED;
    }
}

int cli_lost(cli_client *c, int rc)
{
    if (rc == -ETIMEDOUT) {
        cli_error(c->ctx, "the node did not answer in time");
        return CLI_TIMEOUT;
    }
    struct stat st;
    if ((rc == 0 || rc == -EPIPE || rc == -ECONNRESET) &&
        stat(c->path, &st) == 0 && st.st_uid != geteuid()) {
        cli_error(c->ctx,
                  "the node refused this connection: its control socket %s "
                  "belongs to uid %u, and only the user who runs the node "
                  "may use it",
                  c->path, (unsigned)st.st_uid);
        return CLI_NO_NODE;
    }
    if (rc == 0 || rc == -EPIPE || rc == -ECONNRESET)
        cli_error(c->ctx, "the node closed the connection; did it stop? "
                          "('confab status' tells)");
    else if (rc == -EPROTO)
        cli_error(c->ctx, "the node sent a broken message; closing");
    else
        cli_error(c->ctx, "cannot talk to the node: %s", strerror(-rc));
    return CLI_NO_NODE;
}

int cli_reply_status(const cli_client *c, const wire_ctl_map *msg)
{
    int ok = 0;
    if (wire_ctl_get_bool(msg, "ok", &ok) != 0) {
        cli_error(c->ctx, "the node sent a reply without ok");
        return CLI_FAILED;
    }
    if (ok)
        return CLI_OK;
    int64_t err = -EIO;
    wire_bytes text = {(const uint8_t *)"", 0};
    (void)wire_ctl_get_int(msg, "err", &err);
    (void)wire_ctl_get_str(msg, "msg", &text);
    if (text.len == 0)
        cli_error(c->ctx, "the node refused the request (error %lld)",
                  (long long)err);
    else
        cli_error(c->ctx, "%.*s", (int)text.len, (const char *)text.ptr);
    return cli_exit_for(err);
}

static int call(cli_client *c, wire_ctl_builder *b, uint64_t rid,
                wire_ctl_map *reply, int timeout_ms, bool say_timeout);

int cli_call(cli_client *c, wire_ctl_builder *b, uint64_t rid,
             wire_ctl_map *reply, int timeout_ms)
{
    return call(c, b, rid, reply, timeout_ms, true);
}

int cli_call_wait(cli_client *c, wire_ctl_builder *b, uint64_t rid,
                  wire_ctl_map *reply, int timeout_ms)
{
    return call(c, b, rid, reply, timeout_ms, false);
}

static int call(cli_client *c, wire_ctl_builder *b, uint64_t rid,
                wire_ctl_map *reply, int timeout_ms, bool say_timeout)
{
    int rc = cli_send(c, b);
    if (rc != 0)
        return cli_lost(c, rc);
    uint64_t deadline =
        timeout_ms < 0 ? 0 : cli_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = cli_now_ms();
            wait = now >= deadline ? 0 : (int)(deadline - now);
        }
        rc = cli_next(c, reply, wait);
        if (rc == -ETIMEDOUT && !say_timeout)
            return CLI_TIMEOUT;
        if (rc <= 0)
            return cli_lost(c, rc);
        uint64_t got;
        if (wire_ctl_get_uint(reply, "rid", &got) != 0 || got != rid)
            continue; /* an event, or another request's reply */
        return cli_reply_status(c, reply);
    }
}
