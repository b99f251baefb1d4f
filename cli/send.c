/* cli/send.c: the sending commands: `confab send` (unicast), `broadcast`,
 * `shout` (to a group's members) and `anycast` (to one member). */
#include "cli/show.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WAIT_S 30
#define MAX_WAIT_S     86400.0
#define REPLY_MS       10000
/* An anycast is answered once a member took it or every one failed,
 * each after its own timeout (2 s by default): allow for a large group. */
#define ANYCAST_MS 120000
#define MAX_BODY   ((size_t)CONFAB_DEFAULT_MAX_MESSAGE)

typedef enum op { OP_SEND, OP_BROADCAST, OP_SHOUT, OP_ANYCAST } op;

static const char *op_name(op o)
{
    static const char *names[] = {"send", "broadcast", "shout", "anycast"};
    return names[o];
}

static void help(op o, FILE *f)
{
    switch (o) {
    case OP_SEND:
        fputs("usage: confab send PEER (TEXT... | --file PATH) "
              "[--wait [SECONDS]]\n"
              "\n"
              "Sends a message to one peer. PEER is its name, or at least 4\n"
              "hex digits of the start of its id. The words of TEXT are\n"
              "joined by spaces and sent as text/plain; --file PATH sends\n"
              "the file's bytes (\"-\": stdin) as application/octet-stream,\n"
              "up to 16 MiB.\n"
              "\n"
              "  -f, --file PATH    send this file instead of TEXT\n"
              "  --wait [SECONDS]   wait for the outcome (delivered:\n"
              "                     acknowledged; expired; failed), at\n"
              "                     most SECONDS (default 30); exit 4 after.\n"
              "                     The word after --wait is its value.\n"
              "\n"
              "A peer that is not linked now gets the message when it is\n"
              "back: send says \"queued\" then. Text that starts with '-'\n"
              "goes after '--'. With --json: {id, to, status (queued or sent;\n"
              "with --wait the outcome), and with --wait latency_ms and hops\n"
              "(links the acknowledgement crossed back: 1 direct, 2 or more\n"
              "relayed; the line then says \"relayed, N hops\")}.\n",
              f);
        break;
    case OP_BROADCAST:
        fputs("usage: confab broadcast (TEXT... | --file PATH)\n"
              "\n"
              "Sends a message to every linked peer, once each, best\n"
              "effort. With --json: {id, sent (how many peers)}.\n",
              f);
        break;
    case OP_SHOUT:
        fputs("usage: confab shout GROUP (TEXT... | --file PATH)\n"
              "\n"
              "Sends a message to every linked member of GROUP (multicast),\n"
              "best effort; this node need not be a member. With --json:\n"
              "{id, group, sent (how many members)}.\n",
              f);
        break;
    case OP_ANYCAST:
        fputs("usage: confab anycast GROUP (TEXT... | --file PATH)\n"
              "\n"
              "Sends a message to one member of GROUP: the nearest by\n"
              "round trip, failing over to the next when one does not\n"
              "acknowledge in time. Delivery is at-least-once across the\n"
              "members: after a failover (or a partition) two members may\n"
              "both have it. Waits for the outcome. Exit 3 when no linked\n"
              "peer is a member; a failover is said. With --json: {id, group,\n"
              "status, member (hex id), member_name, peer, peer_name,\n"
              "failovers, latency_ms}.\n",
              f);
        break;
    }
}

/* "--wait" followed by a word that is not an option becomes
 * "--wait=WORD", so that getopt's optional argument can be a separate word
 * and a value that is not a number ("5s", "abc") is an error, never part
 * of the text. Only before "--". */
static char **merge_wait(int argc, char **argv, char **owned)
{
    char **v = calloc((size_t)argc + 1, sizeof *v);
    if (v == NULL)
        return NULL;
    int k = 0;
    *owned = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                v[k++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc && *owned == NULL &&
            argv[i + 1][0] != '-') {
            size_t n = strlen(argv[i + 1]) + 8;
            *owned = malloc(n);
            if (*owned == NULL) {
                free(v);
                return NULL;
            }
            snprintf(*owned, n, "--wait=%s", argv[i + 1]);
            v[k++] = *owned;
            i++;
            continue;
        }
        v[k++] = argv[i];
    }
    v[k] = NULL;
    return v;
}

typedef struct req {
    op o;
    const char *target; /* PEER or GROUP */
    const char *file;
    char *text;
    bool wait;
    int wait_ms;
} req;

static int parse(cli_ctx *ctx, op o, int argc, char **argv, req *q)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"wait", optional_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(q, 0, sizeof *q);
    q->o = o;
    q->wait_ms = DEFAULT_WAIT_S * 1000;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            q->file = optarg;
            break;
        case 'w':
            if (o != OP_SEND)
                goto unknown;
            q->wait = true;
            if (optarg != NULL &&
                (cli_parse_seconds(optarg, MAX_WAIT_S, &q->wait_ms) != 0 ||
                 q->wait_ms == 0)) {
                cli_error(ctx,
                          "--wait takes seconds (e.g. 30 or 2.5), not "
                          "'%s'; text goes before --wait, or after '--'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            help(o, stdout);
            return -1;
        default:
        unknown:
            cli_error(ctx,
                      "unknown option or missing value '%s'; try 'confab %s "
                      "--help'",
                      argv[optind - 1], op_name(o));
            return CLI_USAGE;
        }
    }
    int pos = optind;
    if (o != OP_BROADCAST) {
        if (pos >= argc) {
            cli_error(ctx, "%s needs a %s; try 'confab %s --help'", op_name(o),
                      o == OP_SEND ? "PEER" : "GROUP", op_name(o));
            return CLI_USAGE;
        }
        q->target = argv[pos++];
        if (o != OP_SEND && q->target[0] == '#' && q->target[1] != '\0')
            q->target++; /* "#room" as chat writes it */
    }
    if (q->file != NULL && pos < argc) {
        cli_error(ctx, "give either TEXT or --file, not both");
        return CLI_USAGE;
    }
    if (q->file == NULL && pos >= argc) {
        cli_error(ctx, "%s needs a TEXT or --file PATH; try 'confab %s --help'",
                  op_name(o), op_name(o));
        return CLI_USAGE;
    }
    if (q->file == NULL) {
        q->text = cli_join_words(argc - pos, argv + pos);
        if (q->text == NULL) {
            cli_error(ctx, "out of memory");
            return CLI_FAILED;
        }
    }
    return CLI_OK;
}

static void put_body(wire_ctl_builder *b, const uint8_t *body, size_t len,
                     bool text)
{
    wire_ctl_key(b, "body");
    wire_ctl_put_bin(b, body, len);
    wire_ctl_key(b, "ct");
    wire_ctl_put_cstr(b, text ? "text/plain" : "application/octet-stream");
}

static void print_id_line(const cli_ctx *ctx, const char *what,
                          const wire_bytes *mid)
{
    char hex[2 * CONFAB_MSG_ID_BYTES + 1];
    cli_hex(mid->ptr, mid->len, hex, sizeof hex);
    fputs(what, stdout);
    cli_sgr(ctx, stdout, "2");
    printf(": message %s", hex);
    cli_sgr(ctx, stdout, "0");
    fputc('\n', stdout);
}

static void peer_label(const cli_peer *p, const uint8_t *id, char *out,
                       size_t cap)
{
    char sid[9], name[CONFAB_MAX_NAME + 1];
    cli_short_id(id, sid);
    if (p != NULL && p->name[0] != '\0') {
        cli_safe_copy(name, sizeof name, p->name);
        snprintf(out, cap, "%s (%s)", name, sid);
    } else
        snprintf(out, cap, "%s", sid);
}

/* What the node answered, copied out of its reply. */
typedef struct outcome {
    wire_bytes mid, member;
    const char *st; /* the status, "" if none */
    uint64_t sent;
    bool has_status, has_member;
    uint64_t took_us;
    uint64_t failovers;
    uint64_t hops; /* delivered: links the ACK crossed back; 0: not said */
} outcome;

static bool peer_is_up(const cli_peer *p)
{
    return p != NULL && strcmp(p->state, "up") == 0;
}

static void print_json(op o, const req *q, const cli_peer *to,
                       const cli_peer *mp, const outcome *oc)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "id", cli_json_hex(oc->mid.ptr, oc->mid.len));
    if (o == OP_SEND) {
        json_object_object_add(j, "to", cli_json_hex(to->id, CONFAB_ID_BYTES));
        /* The names every command uses for the other node (confab(1),
         * Output); "to" stays for the scripts written before. */
        json_object_object_add(j, "peer",
                               cli_json_hex(to->id, CONFAB_ID_BYTES));
        json_object_object_add(j, "peer_name",
                               json_object_new_string(to->name));
    }
    if (o == OP_SHOUT || o == OP_ANYCAST)
        json_object_object_add(j, "group", json_object_new_string(q->target));
    if (o == OP_BROADCAST || o == OP_SHOUT)
        json_object_object_add(j, "sent", json_object_new_uint64(oc->sent));
    if (oc->has_status)
        json_object_object_add(j, "status", json_object_new_string(oc->st));
    else if (o == OP_SEND)
        json_object_object_add(
            j, "status",
            json_object_new_string(peer_is_up(to) ? "sent" : "queued"));
    if (oc->has_status && strcmp(oc->st, "delivered") == 0)
        json_object_object_add(
            j, "latency_ms", json_object_new_double((double)oc->took_us / 1e3));
    if (o == OP_SEND && oc->hops != 0)
        json_object_object_add(j, "hops", json_object_new_uint64(oc->hops));
    if (o == OP_ANYCAST) {
        json_object_object_add(j, "failovers",
                               json_object_new_uint64(oc->failovers));
        json_object_object_add(
            j, "member",
            oc->has_member ? cli_json_hex(oc->member.ptr, oc->member.len)
                           : NULL);
        json_object_object_add(j, "member_name",
                               mp != NULL ? json_object_new_string(mp->name)
                                          : NULL);
        json_object_object_add(
            j, "peer",
            oc->has_member ? cli_json_hex(oc->member.ptr, oc->member.len)
                           : NULL);
        json_object_object_add(j, "peer_name",
                               mp != NULL ? json_object_new_string(mp->name)
                                          : NULL);
    }
    cli_json_print(j);
}

static void print_line(cli_ctx *ctx, op o, const req *q, const cli_peer *to,
                       const cli_peer *mp, const outcome *oc)
{
    char who[CONFAB_MAX_NAME + 32], line[512], ms[32];
    cli_fmt_ms(oc->took_us, ms, sizeof ms);
    switch (o) {
    case OP_SEND:
        peer_label(to, to->id, who, sizeof who);
        if (!oc->has_status && peer_is_up(to))
            snprintf(line, sizeof line, "sent to %s", who);
        else if (!oc->has_status)
            snprintf(line, sizeof line,
                     "queued for %s (not linked now; it is sent when the "
                     "peer is back)",
                     who);
        else if (strcmp(oc->st, "delivered") == 0 && oc->hops > 1)
            snprintf(line, sizeof line,
                     "delivered to %s in %s ms (relayed, %llu hops)", who, ms,
                     (unsigned long long)oc->hops);
        else if (strcmp(oc->st, "delivered") == 0)
            snprintf(line, sizeof line, "delivered to %s in %s ms", who, ms);
        else
            snprintf(line, sizeof line, "%s: %s", oc->st, who);
        break;
    case OP_BROADCAST:
        snprintf(line, sizeof line, "sent to %llu peer%s",
                 (unsigned long long)oc->sent, oc->sent == 1 ? "" : "s");
        break;
    case OP_SHOUT:
        snprintf(line, sizeof line, "sent to %llu member%s of #%s",
                 (unsigned long long)oc->sent, oc->sent == 1 ? "" : "s",
                 q->target);
        break;
    case OP_ANYCAST:
        if (oc->has_member) {
            peer_label(mp, oc->member.ptr, who, sizeof who);
            char fo[96] = "";
            if (oc->failovers > 0)
                snprintf(fo, sizeof fo,
                         " after %llu failover%s (a member before may have "
                         "it too)",
                         (unsigned long long)oc->failovers,
                         oc->failovers == 1 ? "" : "s");
            snprintf(line, sizeof line,
                     "delivered to %s, a member of #%s, in %s ms%s", who,
                     q->target, ms, fo);
        } else {
            snprintf(line, sizeof line, "%s: #%s", oc->st, q->target);
        }
        break;
    }
    print_id_line(ctx, line, &oc->mid);
}

/* The exit code of an outcome, with what went wrong said. */
static int outcome_exit(cli_ctx *ctx, op o, const req *q, const outcome *oc)
{
    int rc = CLI_OK;
    if (oc->has_status && strcmp(oc->st, "failed") == 0) {
        if (o == OP_ANYCAST)
            cli_error(ctx, "no member of #%s could take the message",
                      q->target);
        else
            cli_error(ctx,
                      "the link to %s was lost before the message was "
                      "written; it was not sent",
                      q->target);
        rc = CLI_FAILED;
    } else if (oc->has_status && strcmp(oc->st, "expired") == 0) {
        cli_error(ctx, "the message expired before %s acknowledged it",
                  q->target);
        rc = CLI_TIMEOUT;
    }
    return rc;
}

/* The body: read from q->file, or q->text; CLI_OK or an exit code after
 * saying why. A group name is checked here too. */
static int load_body(cli_ctx *ctx, op o, const req *q, uint8_t **body,
                     size_t *len)
{
    if (q->file != NULL) {
        int rc = cli_read_file(ctx, q->file, MAX_BODY, body, len);
        if (rc != CLI_OK)
            return rc;
    } else {
        *len = strlen(q->text);
        if (*len > MAX_BODY) {
            cli_error(ctx, "the text is %zu bytes; a message is at most %zu",
                      *len, MAX_BODY);
            return CLI_REFUSED;
        }
    }
    if (o != OP_SEND && o != OP_BROADCAST &&
        (strlen(q->target) == 0 || strlen(q->target) > CONFAB_MAX_GROUP)) {
        cli_error(ctx, "a group name is 1 to %u bytes", CONFAB_MAX_GROUP);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Starts o's request in b (the body follows); returns how long to wait
 * for the reply, in ms. */
static int begin_request(cli_client *cl, wire_ctl_builder *b, op o,
                         const req *q, const cli_peer *to, uint64_t *rid)
{
    int timeout = REPLY_MS;
    switch (o) {
    case OP_SEND:
        cli_request(cl, b, "send", q->wait ? 4 : 3, rid);
        wire_ctl_key(b, "to");
        wire_ctl_put_bin(b, to->id, CONFAB_ID_BYTES);
        if (q->wait) {
            wire_ctl_key(b, "wait");
            wire_ctl_put_bool(b, 1);
            timeout = q->wait_ms;
        }
        break;
    case OP_BROADCAST:
        cli_request(cl, b, "broadcast", 2, rid);
        break;
    case OP_SHOUT:
    case OP_ANYCAST:
        cli_request(cl, b, op_name(o), 3, rid);
        wire_ctl_key(b, "group");
        wire_ctl_put_cstr(b, q->target);
        if (o == OP_ANYCAST)
            timeout = ANYCAST_MS;
        break;
    }
    return timeout;
}

/* What a reply holds, copied: it points into the client's buffer, which
 * the next request (for the member's name) reuses. */
typedef struct reply_copy {
    uint8_t mid[CONFAB_MSG_ID_BYTES], member[CONFAB_ID_BYTES];
    char st[16];
    uint64_t sent, failovers, hops;
    bool has_status, has_member;
} reply_copy;

static int copy_reply(cli_ctx *ctx, const wire_ctl_map *r, reply_copy *c)
{
    wire_bytes v;
    memset(c, 0, sizeof *c);
    if (wire_ctl_get_bin(r, "mid", &v) != 0 || v.len != CONFAB_MSG_ID_BYTES) {
        cli_error(ctx, "the node's reply has no message id");
        return CLI_FAILED;
    }
    memcpy(c->mid, v.ptr, sizeof c->mid);
    c->has_status = wire_ctl_get_str(r, "status", &v) == 0;
    if (c->has_status)
        snprintf(c->st, sizeof c->st, "%.*s", (int)v.len, (const char *)v.ptr);
    c->has_member =
        wire_ctl_get_bin(r, "member", &v) == 0 && v.len == CONFAB_ID_BYTES;
    if (c->has_member)
        memcpy(c->member, v.ptr, sizeof c->member);
    (void)wire_ctl_get_uint(r, "sent", &c->sent);
    (void)wire_ctl_get_uint(r, "failovers", &c->failovers);
    /* A node from before routing says no hops: 0, not shown. */
    (void)wire_ctl_get_uint(r, "hops", &c->hops);
    return CLI_OK;
}

static int run(cli_ctx *ctx, op o, int argc, char **argv)
{
    char *owned = NULL;
    char **args = merge_wait(argc, argv, &owned);
    if (args == NULL) {
        cli_error(ctx, "out of memory");
        return CLI_FAILED;
    }
    int n = 0;
    while (args[n] != NULL)
        n++;
    req q;
    int rc = parse(ctx, o, n, args, &q);
    uint8_t *body = NULL;
    size_t len = 0;
    cli_client cl;
    bool connected = false;
    cli_peers peers = {0};
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    if (rc != CLI_OK) {
        rc = rc < 0 ? CLI_OK : rc; /* -1: --help */
        goto out;
    }
    rc = load_body(ctx, o, &q, &body, &len);
    if (rc != CLI_OK)
        goto out;
    rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        goto out;
    connected = true;
    const cli_peer *to = NULL;
    if (o == OP_SEND) {
        rc = cli_peers_fetch(&cl, &peers);
        if (rc == CLI_OK)
            rc = cli_resolve_peer(ctx, &peers, q.target, &to);
        if (rc != CLI_OK)
            goto out;
    }
    uint64_t t0 = cli_now_us();
    int timeout = begin_request(&cl, &b, o, &q, to, &rid);
    put_body(&b, body != NULL ? body : (const uint8_t *)q.text, len,
             body == NULL);
    rc = cli_call_wait(&cl, &b, rid, &r, timeout);
    wire_ctl_builder_free(&b);
    if (rc == CLI_TIMEOUT && q.wait) {
        cli_error(ctx,
                  "no outcome within %.1f s; the message stays queued "
                  "in the node",
                  q.wait_ms / 1000.0);
        goto out;
    }
    if (rc == CLI_TIMEOUT) {
        cli_error(ctx, "the node did not answer in time");
        goto out;
    }
    if (rc != CLI_OK)
        goto out;
    uint64_t took_us = cli_now_us() - t0;
    reply_copy c;
    rc = copy_reply(ctx, &r, &c);
    if (rc != CLI_OK)
        goto out;
    if (c.has_member && cli_peers_fetch(&cl, &peers) != CLI_OK)
        peers.n = 0; /* the member goes unnamed */
    const cli_peer *mp = c.has_member ? cli_peers_find(&peers, c.member) : NULL;
    wire_bytes mid = {c.mid, CONFAB_MSG_ID_BYTES};
    wire_bytes member = {c.member, CONFAB_ID_BYTES};
    outcome oc = {mid,          member,  c.st,        c.sent, c.has_status,
                  c.has_member, took_us, c.failovers, c.hops};
    if (ctx->json)
        print_json(o, &q, to, mp, &oc);
    else
        print_line(ctx, o, &q, to, mp, &oc);
    if ((o == OP_BROADCAST || o == OP_SHOUT) && c.sent == 0 && !ctx->json)
        fprintf(stderr, "%s: note: %s\n", ctx->prog,
                o == OP_BROADCAST ? "no peer is linked, so nobody got it"
                                  : "no linked peer is a member of the group");
    rc = outcome_exit(ctx, o, &q, &oc);
out:
    if (connected)
        cli_close(&cl);
    cli_peers_free(&peers);
    free(body);
    free(q.text);
    free(owned);
    free(args);
    return rc;
}

int cli_cmd_send(cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, OP_SEND, argc, argv);
}

int cli_cmd_broadcast(cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, OP_BROADCAST, argc, argv);
}

int cli_cmd_shout(cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, OP_SHOUT, argc, argv);
}

int cli_cmd_anycast(cli_ctx *ctx, int argc, char **argv)
{
    return run(ctx, OP_ANYCAST, argc, argv);
}
