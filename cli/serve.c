/* cli/serve.c: `confab serve NAME --exec COMMAND`: any program as a
 * service (docs/PROTOCOL.md section 14).
 *
 * For each request the node hands over, runs COMMAND with /bin/sh -c (the
 * operator's command line, never anything a peer sent), the request body
 * on its standard input and the requester in its environment, and answers
 * with its standard output; a run that fails, runs over its time or
 * prints more than the requester takes is answered with an error saying
 * so. At most --jobs run at once; each is its own process group, so that
 * killing it kills what it started. */
#include "cli/show.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_JOBS    64u
#define MAX_WAITING 1024u /* requests waiting for a free job */
#define ERR_KEEP    4096u /* bytes of a run's stderr kept for the reply */
#define SLICE_MS    100

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void help(FILE *f)
{
    fputs("usage: confab serve NAME --exec COMMAND [--jobs N] [--timeout "
          "SECONDS]\n"
          "\n"
          "Serves NAME: joins the group NAME and, for every request to it\n"
          "('confab request NAME ...'), runs COMMAND with /bin/sh -c, the\n"
          "request's body on its standard input, and answers with what it\n"
          "writes to standard output. The body never becomes part of a\n"
          "command line. COMMAND's environment has CONFAB_FROM (the\n"
          "requester's name), CONFAB_FROM_ID (its id, hex) and\n"
          "CONFAB_SERVICE (NAME). If COMMAND exits with another status than\n"
          "0, is killed, runs over its time, or writes more than the\n"
          "requester takes, the answer is an error that says so (with the\n"
          "start of its standard error). Runs until Ctrl-C.\n"
          "\n"
          "  -e, --exec COMMAND  what to run for each request (required)\n"
          "  -j, --jobs N       runs at once, 1 to 64 (default 4); more\n"
          "                     requests wait, up to 1024, then are refused\n"
          "  -t, --timeout SECONDS  longest run (default 30); the requester's\n"
          "                     own wait may be shorter. A run over it is\n"
          "                     killed with its process group\n"
          "\n"
          "Exit status: 0 stopped by Ctrl-C or SIGTERM; 1 usage; 2 no node\n"
          "running, or it went away; 6 NAME cannot be served (e.g. another\n"
          "'confab serve' serves it on this node).\n",
          f);
}

/* One request, waiting or running. */
typedef struct job {
    uint64_t handle;
    char from_name[CONFAB_MAX_NAME + 1];
    char from_hex[65];
    uint8_t *body;
    size_t len, written;
    size_t max_reply;
    uint64_t deadline; /* monotonic ms */
    pid_t pid;         /* 0: not started */
    int in, out, err;  /* pipes, -1 when closed */
    uint8_t *obuf;
    size_t olen;
    char ebuf[ERR_KEEP];
    size_t elen;
    bool too_much, timed_out, exited;
    bool own_limit; /* the deadline is --timeout's, not the requester's */
    int status;
    uint64_t started;
} job;

typedef struct server {
    cli_client *c;
    const cli_ctx *ctx;
    const char *service;
    const char *command;
    unsigned max_jobs;
    int timeout_ms;
    job *running[MAX_JOBS];
    unsigned n_running;
    job **waiting;
    size_t n_waiting, head;
    uint64_t done, failed;
} server;

static void job_free(job *j)
{
    if (j->in >= 0)
        close(j->in);
    if (j->out >= 0)
        close(j->out);
    if (j->err >= 0)
        close(j->err);
    free(j->body);
    free(j->obuf);
    free(j);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* In the child: the pipes on 0, 1 and 2, its own process group, the
 * environment, then the shell. Never returns. */
static void child(const server *s, const job *j, int in[2], int out[2],
                  int err[2])
{
    (void)setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
        _exit(127);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    if (setenv("CONFAB_FROM", j->from_name, 1) != 0 ||
        setenv("CONFAB_FROM_ID", j->from_hex, 1) != 0 ||
        setenv("CONFAB_SERVICE", s->service, 1) != 0)
        _exit(127);
    execl("/bin/sh", "sh", "-c", s->command, (char *)NULL);
    _exit(127);
}

static int job_start(server *s, job *j)
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -errno;
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child(s, j, in, out, err);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -errno;
    }
    (void)setpgid(pid, pid); /* also here: no race with the child's own */
    j->pid = pid;
    j->in = in[1];
    j->out = out[0];
    j->err = err[0];
    set_nonblock(j->in);
    set_nonblock(j->out);
    set_nonblock(j->err);
    j->started = cli_now_ms();
    uint64_t limit = (uint64_t)s->timeout_ms;
    if (j->deadline == 0 || j->started + limit <= j->deadline) {
        j->deadline = j->started + limit;
        j->own_limit = true;
    }
    if (j->len == 0) {
        close(j->in);
        j->in = -1;
    }
    return 0;
}

static void job_kill(job *j)
{
    if (j->pid > 0 && !j->exited)
        (void)kill(-j->pid, SIGKILL);
}

/* Sends the answer of a finished run (or why there is none). */
static void job_answer(server *s, job *j)
{
    char msg[ERR_KEEP + 512];
    if (j->timed_out && !j->own_limit) {
        /* The requester stopped waiting: nobody takes an answer. */
        s->failed++;
        if (!s->ctx->json)
            printf("%s: request from %s: its requester stopped waiting; the "
                   "run was stopped\n",
                   s->service, j->from_name);
        fflush(stdout);
        return;
    }
    const uint8_t *body = j->obuf;
    size_t len = j->olen;
    bool error = true;
    if (j->too_much) {
        snprintf(msg, sizeof msg,
                 "the service wrote more than %zu bytes, the most the "
                 "requester takes; its run was stopped",
                 j->max_reply);
    } else if (j->timed_out) {
        snprintf(msg, sizeof msg,
                 "the service ran over its time (%.3g s) and was stopped",
                 (double)(j->deadline - j->started) / 1000.0);
    } else if (WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0) {
        error = false;
    } else if (WIFEXITED(j->status)) {
        snprintf(msg, sizeof msg, "the service exited with status %d%s%.*s",
                 WEXITSTATUS(j->status), j->elen ? ": " : "", (int)j->elen,
                 j->ebuf);
    } else {
        snprintf(msg, sizeof msg, "the service was killed by signal %d%s%.*s",
                 WIFSIGNALED(j->status) ? WTERMSIG(j->status) : 0,
                 j->elen ? ": " : "", (int)j->elen, j->ebuf);
    }
    if (error) {
        body = (const uint8_t *)msg;
        len = strlen(msg);
        s->failed++;
    }
    s->done++;
    wire_ctl_builder b;
    uint64_t rid;
    cli_request(s->c, &b, "reply", error ? 3 : 2, &rid);
    wire_ctl_key(&b, "handle");
    wire_ctl_put_uint(&b, j->handle);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, body, len);
    if (error) {
        wire_ctl_key(&b, "error");
        wire_ctl_put_bool(&b, 1);
    }
    (void)cli_send(s->c, &b); /* its answer comes as a reply, read later */
    wire_ctl_builder_free(&b);
    double secs = (double)(cli_now_ms() - j->started) / 1000.0;
    if (s->ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "service",
                               json_object_new_string(s->service));
        json_object_object_add(o, "from", json_object_new_string(j->from_hex));
        json_object_object_add(o, "name", json_object_new_string(j->from_name));
        json_object_object_add(o, "ok", json_object_new_boolean(!error));
        json_object_object_add(o, "len", json_object_new_uint64(len));
        json_object_object_add(o, "seconds", json_object_new_double(secs));
        if (error)
            json_object_object_add(o, "error", json_object_new_string(msg));
        cli_json_print(o);
    } else {
        printf("%s: request from %s: %s (%zu bytes, %.3f s)\n", s->service,
               j->from_name, error ? msg : "ok", len, secs);
        fflush(stdout);
    }
}

/* Reads what fd has into j's buffers. Returns false at EOF or error. */
static bool drain(job *j, int fd, bool is_out)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        size_t k = (size_t)n;
        if (!is_out) {
            size_t room = ERR_KEEP - 1 - j->elen;
            size_t take = k < room ? k : room;
            memcpy(j->ebuf + j->elen, buf, take);
            j->elen += take;
            continue;
        }
        if (k > j->max_reply - j->olen) {
            j->too_much = true;
            job_kill(j);
            return false;
        }
        uint8_t *nb = realloc(j->obuf, j->olen + k);
        if (nb == NULL) {
            j->too_much = true;
            job_kill(j);
            return false;
        }
        j->obuf = nb;
        memcpy(j->obuf + j->olen, buf, k);
        j->olen += k;
    }
}

static void feed(job *j)
{
    while (j->in >= 0 && j->written < j->len) {
        ssize_t n = write(j->in, j->body + j->written, j->len - j->written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) { /* EPIPE: it does not read its input; fine */
            j->written = j->len;
            break;
        }
        j->written += (size_t)n;
    }
    if (j->in >= 0 && j->written >= j->len) {
        close(j->in);
        j->in = -1;
    }
}

/* Moves j on: feed, read, reap; true when it is over (answered). */
static bool job_step(server *s, job *j, uint64_t now)
{
    feed(j);
    if (j->out >= 0 && !drain(j, j->out, true)) {
        close(j->out);
        j->out = -1;
    }
    if (j->err >= 0 && !drain(j, j->err, false)) {
        close(j->err);
        j->err = -1;
    }
    if (!j->exited && now >= j->deadline && !j->too_much) {
        j->timed_out = true;
        job_kill(j);
    }
    if (!j->exited && waitpid(j->pid, &j->status, WNOHANG) == j->pid)
        j->exited = true;
    /* Over: it exited and its output ended, or it was killed (what it
     * started may hold the pipes open: do not wait for them). */
    bool killed = j->too_much || j->timed_out;
    if (!j->exited ||
        (!killed && (j->out >= 0 || j->err >= 0) && now < j->deadline))
        return false;
    job_answer(s, j);
    return true;
}

static void start_waiting(server *s)
{
    while (s->n_running < s->max_jobs && s->n_waiting > 0) {
        job *j = s->waiting[s->head];
        s->head = (s->head + 1) % MAX_WAITING;
        s->n_waiting--;
        int rc = job_start(s, j);
        if (rc != 0) {
            cli_error(s->ctx, "cannot run the command: %s", strerror(-rc));
            j->status = 127 << 8;
            j->exited = true;
            j->started = cli_now_ms();
            job_answer(s, j);
            job_free(j);
            continue;
        }
        s->running[s->n_running++] = j;
    }
}

static void refuse(server *s, uint64_t handle, const char *why)
{
    wire_ctl_builder b;
    uint64_t rid;
    cli_request(s->c, &b, "reply", 3, &rid);
    wire_ctl_key(&b, "handle");
    wire_ctl_put_uint(&b, handle);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, why, strlen(why));
    wire_ctl_key(&b, "error");
    wire_ctl_put_bool(&b, 1);
    (void)cli_send(s->c, &b);
    wire_ctl_builder_free(&b);
}

/* A `request` event: a new job, waiting. */
static void on_request(server *s, const wire_ctl_map *ev)
{
    uint64_t handle, wait_ms = 0, max = 0;
    wire_bytes body = {0}, from = {0}, name = {0};
    if (wire_ctl_get_uint(ev, "handle", &handle) != 0 ||
        wire_ctl_get_bin(ev, "body", &body) != 0)
        return;
    (void)wire_ctl_get_uint(ev, "wait_ms", &wait_ms);
    (void)wire_ctl_get_uint(ev, "max_reply", &max);
    (void)wire_ctl_get_bin(ev, "from", &from);
    (void)wire_ctl_get_str(ev, "from_name", &name);
    if (s->n_waiting >= MAX_WAITING) {
        refuse(s, handle, "busy: too many requests wait for this service");
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (j == NULL || (j->body = malloc(body.len ? body.len : 1)) == NULL) {
        free(j);
        refuse(s, handle, "the server is out of memory");
        return;
    }
    j->handle = handle;
    memcpy(j->body, body.ptr, body.len);
    j->len = body.len;
    j->max_reply = max > SIZE_MAX ? SIZE_MAX : (size_t)max;
    j->in = j->out = j->err = -1;
    if (name.len <= CONFAB_MAX_NAME) {
        memcpy(j->from_name, name.ptr, name.len);
        j->from_name[name.len] = '\0';
    }
    if (from.len == CONFAB_ID_BYTES)
        cli_hex(from.ptr, from.len, j->from_hex, sizeof j->from_hex);
    if (wait_ms > 0)
        j->deadline = cli_now_ms() + wait_ms;
    s->waiting[(s->head + s->n_waiting) % MAX_WAITING] = j;
    s->n_waiting++;
}

/* A control message: a request event, or the answer to a reply. */
static void on_message(server *s, const wire_ctl_map *m)
{
    wire_bytes kind;
    if (wire_ctl_get_str(m, "ev", &kind) == 0) {
        if (kind.len == 7 && memcmp(kind.ptr, "request", 7) == 0)
            on_request(s, m);
        return;
    }
    int ok = 1;
    (void)wire_ctl_get_bool(m, "ok", &ok);
    if (!ok)
        (void)cli_reply_status(s->c, m); /* says why (e.g. it expired) */
}

/* One turn: wait for the node or a run, then move everything on. Returns
 * CLI_OK to go on, or an exit code. */
static int turn(server *s)
{
    struct pollfd pf[1 + 3 * MAX_JOBS];
    nfds_t n = 0;
    pf[n++] = (struct pollfd){.fd = s->c->fd, .events = POLLIN};
    for (unsigned i = 0; i < s->n_running; i++) {
        job *j = s->running[i];
        if (j->in >= 0)
            pf[n++] = (struct pollfd){.fd = j->in, .events = POLLOUT};
        if (j->out >= 0)
            pf[n++] = (struct pollfd){.fd = j->out, .events = POLLIN};
        if (j->err >= 0)
            pf[n++] = (struct pollfd){.fd = j->err, .events = POLLIN};
    }
    /* Buffered control messages first: poll cannot see them. */
    int wait = s->c->in_off < s->c->in_len ? 0 : SLICE_MS;
    (void)poll(pf, n, wait);
    for (;;) {
        wire_ctl_map m;
        int rc = cli_next(s->c, &m, 0);
        if (rc == -ETIMEDOUT)
            break;
        if (rc <= 0)
            return cli_lost(s->c, rc);
        on_message(s, &m);
    }
    start_waiting(s);
    uint64_t now = cli_now_ms();
    for (unsigned i = 0; i < s->n_running;) {
        if (job_step(s, s->running[i], now)) {
            job_free(s->running[i]);
            s->running[i] = s->running[--s->n_running];
        } else {
            i++;
        }
    }
    start_waiting(s);
    return CLI_OK;
}

static int parse_args(cli_ctx *ctx, int argc, char **argv, server *s)
{
    static const struct option opts[] = {
        {"exec", required_argument, NULL, 'e'},
        {"jobs", required_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    s->max_jobs = 4;
    s->timeout_ms = 30000;
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "e:j:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            s->command = optarg;
            break;
        case 'j':
            if (cli_parse_u64(optarg, 1, MAX_JOBS, &v) != 0) {
                cli_error(ctx, "--jobs takes a number from 1 to %u, not '%s'",
                          MAX_JOBS, optarg);
                return CLI_USAGE;
            }
            s->max_jobs = (unsigned)v;
            break;
        case 't':
            if (cli_parse_seconds(optarg, 86400, &s->timeout_ms) != 0 ||
                s->timeout_ms == 0) {
                cli_error(ctx,
                          "--timeout takes seconds (e.g. 30 or 0.5, at most "
                          "a day), not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx,
                      "unknown option or missing value '%s'; try "
                      "'confab serve --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (argc - optind != 1 || s->command == NULL || s->command[0] == '\0') {
        cli_error(ctx, "serve takes a NAME and --exec COMMAND, e.g. 'confab "
                       "serve echo --exec cat'");
        return CLI_USAGE;
    }
    s->service = argv[optind];
    size_t sl = strlen(s->service);
    if (sl == 0 || sl > CONFAB_MAX_GROUP) {
        cli_error(ctx, "a service name is 1 to %u bytes", CONFAB_MAX_GROUP);
        return CLI_USAGE;
    }
    return -1;
}

static int serve_op(server *s)
{
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(s->c, &b, "serve", 1, &rid);
    wire_ctl_key(&b, "service");
    wire_ctl_put_cstr(&b, s->service);
    int rc = cli_call(s->c, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    return rc == CLI_UNKNOWN || rc == CLI_REFUSED ? CLI_FAILED : rc;
}

static void stop_all(server *s)
{
    for (unsigned i = 0; i < s->n_running; i++) {
        job *j = s->running[i];
        job_kill(j);
        if (!j->exited)
            (void)waitpid(j->pid, &j->status, 0);
        job_free(j);
    }
    while (s->n_waiting > 0) {
        job_free(s->waiting[s->head]);
        s->head = (s->head + 1) % MAX_WAITING;
        s->n_waiting--;
    }
}

int cli_cmd_serve(cli_ctx *ctx, int argc, char **argv)
{
    server s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    int early = parse_args(ctx, argc, argv, &s);
    if (early >= 0)
        return early;
    s.waiting = calloc(MAX_WAITING, sizeof *s.waiting);
    if (s.waiting == NULL)
        return CLI_FAILED;
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    s.c = &cl;
    if (rc == CLI_OK)
        rc = serve_op(&s);
    if (rc != CLI_OK) {
        free(s.waiting);
        if (cl.fd >= 0)
            cli_close(&cl);
        return rc;
    }
    struct sigaction sa, old_int, old_term, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    if (!ctx->json) {
        printf("serving %s: each request runs: %s\n", s.service, s.command);
        fflush(stdout);
    }
    while (!stopping && rc == CLI_OK)
        rc = turn(&s);
    stop_all(&s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    free(s.waiting);
    cli_close(&cl);
    return rc;
}
