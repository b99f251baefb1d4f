/* cli/request.c: `confab request`: asks a service (the nodes that serve a
 * name, `confab serve`) and prints the answer (docs/PROTOCOL.md section
 * 14). */
#include "cli/show.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLACK_MS                                                               \
    3000 /* the node's `done` comes by the deadline; this bounds               \
            a node that says nothing */

static void help(FILE *f)
{
    fputs("usage: confab request NAME [TEXT...] [--file PATH] [--timeout "
          "SECONDS]\n"
          "                      [--peer PEER | --all] [--try SECONDS]\n"
          "\n"
          "Asks the service NAME (the nodes running 'confab serve NAME') and\n"
          "writes its answer to standard output, byte for byte. The body is\n"
          "TEXT (the words joined by spaces), or the file PATH ('-': standard\n"
          "input). By default the nearest server is asked, and if it does not\n"
          "answer within its turn the next one is.\n"
          "\n"
          "  -f, --file PATH    the body is this file's bytes\n"
          "  -t, --timeout SECONDS  how long to wait for answers (default 10)\n"
          "  -p, --peer PEER    ask that peer (a name or an id prefix)\n"
          "  -a, --all          ask every server; print each answer as it\n"
          "                     comes, until all answered or the timeout\n"
          "  -T, --try SECONDS  each server's turn before the next is asked\n"
          "                     (default 2)\n"
          "\n"
          "Exit status: 0 answered (with --all: at least one answered); 3 no\n"
          "server of NAME (or PEER unknown); 4 no answer in time; 5 busy,\n"
          "or the answer was too large; 6 the service failed (its message\n"
          "is printed); 1 usage; 2 no node running.\n",
          f);
}

typedef struct req_args {
    const char *service;
    const char *file;
    const char *peer;
    bool all;
    int timeout_ms, try_ms;
    int first_word; /* argv index of TEXT */
} req_args;

static int parse_args(cli_ctx *ctx, int argc, char **argv, req_args *a)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"timeout", required_argument, NULL, 't'},
        {"peer", required_argument, NULL, 'p'},
        {"all", no_argument, NULL, 'a'},
        {"try", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->timeout_ms = 10000;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+f:t:p:aT:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            a->file = optarg;
            break;
        case 't':
        case 'T':
            if (cli_parse_seconds(optarg, 86400,
                                  c == 't' ? &a->timeout_ms : &a->try_ms) !=
                    0 ||
                (c == 't' && a->timeout_ms == 0)) {
                cli_error(ctx,
                          "--%s takes seconds (e.g. 5 or 0.5, at most a day), "
                          "not '%s'",
                          c == 't' ? "timeout" : "try", optarg);
                return CLI_USAGE;
            }
            break;
        case 'p':
            a->peer = optarg;
            break;
        case 'a':
            a->all = true;
            break;
        case 'h':
            help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx,
                      "unknown option or missing value '%s'; try "
                      "'confab request --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
        /* Options may also follow NAME and TEXT. */
    }
    if (optind >= argc) {
        cli_error(ctx, "request needs a NAME; try 'confab request --help'");
        return CLI_USAGE;
    }
    a->service = argv[optind];
    a->first_word = optind + 1;
    if (a->all && a->peer != NULL) {
        cli_error(ctx, "--all and --peer do not go together: one asks every "
                       "server, the other one peer");
        return CLI_USAGE;
    }
    if (a->file != NULL && a->first_word < argc) {
        cli_error(ctx, "give TEXT or --file, not both");
        return CLI_USAGE;
    }
    size_t sl = strlen(a->service);
    if (sl == 0 || sl > CONFAB_MAX_GROUP) {
        cli_error(ctx, "a service name is 1 to %u bytes", CONFAB_MAX_GROUP);
        return CLI_USAGE;
    }
    return -1;
}

/* getopt stops at NAME ("+"): the options after it are read here, so that
 * `confab request echo hi --timeout 3` works. Moves the words of TEXT to
 * the end and parses again. */
static int parse_all(cli_ctx *ctx, int *argcp, char **argv, req_args *a)
{
    int argc = *argcp;
    char **v = calloc((size_t)argc + 1, sizeof *v);
    if (v == NULL)
        return CLI_FAILED;
    int n = 0, words = 0;
    char **w = calloc((size_t)argc + 1, sizeof *w);
    if (w == NULL) {
        free(v);
        return CLI_FAILED;
    }
    bool dashes = false;
    v[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool takes = strcmp(s, "--file") == 0 || strcmp(s, "--timeout") == 0 ||
                     strcmp(s, "--peer") == 0 || strcmp(s, "--try") == 0;
        if (!dashes && strcmp(s, "--") == 0) {
            dashes = true;
        } else if (!dashes && s[0] == '-' && s[1] != '\0') {
            v[n++] = argv[i];
            if (takes && i + 1 < argc)
                v[n++] = argv[++i];
        } else {
            w[words++] = argv[i];
        }
    }
    for (int i = 0; i < words; i++)
        v[n++] = w[i];
    memcpy(argv, v, (size_t)n * sizeof *v);
    free(v);
    free(w);
    *argcp = n;
    return parse_args(ctx, n, argv, a);
}

static const char *status_of(const wire_ctl_map *ev, char *buf, size_t cap)
{
    wire_bytes s = {0};
    (void)wire_ctl_get_str(ev, "status", &s);
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n > 0)
        memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return buf;
}

static int exit_for_status(const char *st)
{
    if (strcmp(st, "ok") == 0)
        return CLI_OK;
    if (strcmp(st, "no_service") == 0)
        return CLI_UNKNOWN;
    if (strcmp(st, "busy") == 0 || strcmp(st, "too_large") == 0)
        return CLI_REFUSED;
    return CLI_FAILED;
}

/* Prints one reply event; returns its exit code. */
static int print_reply(const cli_ctx *ctx, const req_args *a,
                       const wire_ctl_map *ev)
{
    wire_bytes from = {0}, name = {0}, body = {0};
    char st[16], nm[CONFAB_MAX_NAME + 1] = "", sid[9] = "?";
    (void)wire_ctl_get_bin(ev, "from", &from);
    (void)wire_ctl_get_str(ev, "from_name", &name);
    (void)wire_ctl_get_bin(ev, "body", &body);
    status_of(ev, st, sizeof st);
    if (name.len <= CONFAB_MAX_NAME) {
        char raw[CONFAB_MAX_NAME + 1];
        memcpy(raw, name.ptr, name.len);
        raw[name.len] = '\0';
        cli_safe_copy(nm, sizeof nm, raw);
    }
    if (from.len == CONFAB_ID_BYTES)
        cli_short_id(from.ptr, sid);
    int code = exit_for_status(st);
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "service",
                               json_object_new_string(a->service));
        json_object_object_add(o, "from",
                               from.len == CONFAB_ID_BYTES
                                   ? cli_json_hex(from.ptr, from.len)
                                   : NULL);
        json_object_object_add(o, "name", json_object_new_string(nm));
        json_object_object_add(o, "status", json_object_new_string(st));
        json_object_object_add(o, "len", json_object_new_uint64(body.len));
        if (wire_utf8_valid(body.ptr, body.len))
            json_object_object_add(o, "body",
                                   cli_json_bytes(body.ptr, body.len));
        else
            json_object_object_add(o, "body_hex",
                                   cli_json_hex(body.ptr, body.len));
        cli_json_print(o);
        return code;
    }
    if (code != CLI_OK) {
        fprintf(stderr, "%s: %s on %s (%s) answered %s", ctx->prog, a->service,
                nm, sid, st);
        if (body.len > 0) {
            fputs(": ", stderr);
            cli_put_text(stderr, body.ptr, body.len, "  ");
        }
        fputc('\n', stderr);
        return code;
    }
    if (a->all) {
        printf("%s (%s): ", nm, sid);
        cli_put_text(stdout, body.ptr, body.len, "  ");
        putchar('\n');
    } else {
        /* The answer as it is: a program may pipe it on. */
        if (body.len > 0)
            fwrite(body.ptr, 1, body.len, stdout);
        if (isatty(STDOUT_FILENO) && body.len > 0 &&
            body.ptr[body.len - 1] != '\n')
            putchar('\n');
    }
    fflush(stdout);
    return code;
}

/* Sends the request; returns CLI_OK with *rid, or an exit code. */
static int send_request(cli_client *c, const req_args *a, const uint8_t *peer,
                        const uint8_t *body, size_t len, uint64_t *rid)
{
    wire_ctl_builder b;
    uint32_t extra =
        3 + (peer ? 1u : 0u) + (a->all ? 1u : 0u) + (a->try_ms ? 1u : 0u);
    cli_request(c, &b, "request", extra, rid);
    wire_ctl_key(&b, "service");
    wire_ctl_put_cstr(&b, a->service);
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, body, len);
    wire_ctl_key(&b, "timeout_ms");
    wire_ctl_put_uint(&b, (uint64_t)a->timeout_ms);
    if (peer != NULL) {
        wire_ctl_key(&b, "peer");
        wire_ctl_put_bin(&b, peer, CONFAB_ID_BYTES);
    }
    if (a->all) {
        wire_ctl_key(&b, "all");
        wire_ctl_put_bool(&b, 1);
    }
    if (a->try_ms) {
        wire_ctl_key(&b, "try_ms");
        wire_ctl_put_uint(&b, (uint64_t)a->try_ms);
    }
    wire_ctl_map r;
    int rc = cli_call(c, &b, *rid, &r, 10000);
    wire_ctl_builder_free(&b);
    return rc;
}

/* Reads reply events and the done event. */
static int collect(cli_client *c, const req_args *a, uint64_t rid)
{
    uint64_t deadline = cli_now_ms() + (uint64_t)a->timeout_ms + SLACK_MS;
    int worst = -1; /* the exit code of the replies so far; -1: none */
    for (;;) {
        uint64_t now = cli_now_ms();
        if (now >= deadline) {
            cli_error(c->ctx, "the node did not end the request in time");
            return CLI_TIMEOUT;
        }
        wire_ctl_map ev;
        int rc = cli_next(c, &ev, (int)(deadline - now));
        if (rc <= 0)
            return cli_lost(c, rc);
        wire_bytes kind;
        uint64_t got;
        if (wire_ctl_get_str(&ev, "ev", &kind) != 0 ||
            wire_ctl_get_uint(&ev, "req", &got) != 0 || got != rid)
            continue;
        if (kind.len == 5 && memcmp(kind.ptr, "reply", 5) == 0) {
            int code = print_reply(c->ctx, a, &ev);
            if (worst < 0 || code == CLI_OK ||
                (worst != CLI_OK && code > worst))
                worst = code;
            continue;
        }
        if (kind.len != 4 || memcmp(kind.ptr, "done", 4) != 0)
            continue;
        uint64_t answered = 0;
        (void)wire_ctl_get_uint(&ev, "answered", &answered);
        if (answered == 0 || worst < 0) {
            cli_error(c->ctx,
                      "no server of %s answered within %.3g s; is one "
                      "running ('confab serve %s ...')? A slow service "
                      "needs a longer --timeout",
                      a->service, a->timeout_ms / 1000.0, a->service);
            return CLI_TIMEOUT;
        }
        return worst;
    }
}

int cli_cmd_request(cli_ctx *ctx, int argc, char **argv)
{
    req_args a;
    int early = parse_all(ctx, &argc, argv, &a);
    if (early >= 0)
        return early;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc;
    if (a.file != NULL) {
        rc =
            cli_read_file(ctx, a.file, CONFAB_DEFAULT_MAX_MESSAGE, &body, &len);
        if (rc != CLI_OK)
            return rc;
    } else {
        body =
            (uint8_t *)cli_join_words(argc - a.first_word, argv + a.first_word);
        if (body == NULL)
            return CLI_FAILED;
        len = strlen((char *)body);
    }
    cli_client cl;
    rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK) {
        free(body);
        return rc;
    }
    cli_peers peers = {0};
    const cli_peer *p = NULL;
    if (a.peer != NULL) {
        rc = cli_peers_fetch(&cl, &peers);
        if (rc == CLI_OK)
            rc = cli_resolve_peer(ctx, &peers, a.peer, &p);
    }
    uint64_t rid = 0;
    if (rc == CLI_OK)
        rc = send_request(&cl, &a, p ? p->id : NULL, body, len, &rid);
    if (rc == CLI_OK)
        rc = collect(&cl, &a, rid);
    cli_peers_free(&peers);
    cli_close(&cl);
    free(body);
    return rc;
}
