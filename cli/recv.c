/* cli/recv.c: `confab recv`: the unread messages, and those that arrive
 * while it follows; and how a received message is shown (also by chat). */
#include "cli/show.h"

#include "wire/mp.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TIMEOUT_S (86400.0 * 365)
#define SYNC_MS       5000 /* for the node's last answer, at the end */

static bool is_text(const wire_bytes *ct, bool has_ct, const wire_bytes *body)
{
    if (has_ct && !(ct->len >= 5 && memcmp(ct->ptr, "text/", 5) == 0))
        return false;
    return wire_utf8_valid(body->ptr, body->len) != 0;
}

static void print_json(const wire_bytes *mid, const wire_bytes *from,
                       const wire_bytes *from_name, const wire_bytes *kind,
                       const wire_bytes *group, bool has_group, uint64_t seq,
                       uint64_t ts, const wire_bytes *ct, bool has_ct,
                       const wire_bytes *body, uint64_t hops)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", cli_json_hex(mid->ptr, mid->len));
    json_object_object_add(o, "from", cli_json_hex(from->ptr, from->len));
    json_object_object_add(o, "peer", cli_json_hex(from->ptr, from->len));
    json_object_object_add(o, "peer_name",
                           cli_json_bytes(from_name->ptr, from_name->len));
    json_object_object_add(o, "from_name",
                           cli_json_bytes(from_name->ptr, from_name->len));
    json_object_object_add(o, "kind", cli_json_bytes(kind->ptr, kind->len));
    json_object_object_add(
        o, "group", has_group ? cli_json_bytes(group->ptr, group->len) : NULL);
    json_object_object_add(o, "seq", json_object_new_uint64(seq));
    json_object_object_add(o, "ts", json_object_new_uint64(ts));
    json_object_object_add(o, "hops", json_object_new_uint64(hops));
    json_object_object_add(o, "ct",
                           has_ct ? cli_json_bytes(ct->ptr, ct->len) : NULL);
    if (wire_utf8_valid(body->ptr, body->len)) {
        json_object_object_add(o, "body", cli_json_bytes(body->ptr, body->len));
    } else {
        size_t cap = sodium_base64_ENCODED_LEN(body->len,
                                               sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (b64 != NULL) {
            sodium_bin2base64(b64, cap, body->ptr, body->len,
                              sodium_base64_VARIANT_ORIGINAL);
            json_object_object_add(o, "body_base64",
                                   json_object_new_string(b64));
            free(b64);
        }
    }
    cli_json_print(o);
}

int cli_print_message(const cli_ctx *ctx, FILE *f, const wire_ctl_map *msg)
{
    return cli_print_message_ex(ctx, f, msg, false);
}

int cli_print_message_ex(const cli_ctx *ctx, FILE *f, const wire_ctl_map *msg,
                         bool with_id)
{
    wire_bytes mid, from, from_name, kind, group = {0}, ct = {0}, body;
    uint64_t seq = 0, ts = 0, hops = 1;
    if (wire_ctl_get_bin(msg, "mid", &mid) != 0 ||
        mid.len != CONFAB_MSG_ID_BYTES ||
        wire_ctl_get_bin(msg, "from", &from) != 0 ||
        from.len != CONFAB_ID_BYTES ||
        wire_ctl_get_str(msg, "from_name", &from_name) != 0 ||
        wire_ctl_get_str(msg, "kind", &kind) != 0 ||
        wire_ctl_get_bin(msg, "body", &body) != 0)
        return -EPROTO;
    bool has_group = wire_ctl_get_str_opt(msg, "group", &group) == 0;
    bool has_ct = wire_ctl_get_str_opt(msg, "ct", &ct) == 0;
    (void)wire_ctl_get_uint(msg, "seq", &seq);
    (void)wire_ctl_get_uint(msg, "ts", &ts);
    /* A node from before routing sends no hops: it only knew direct. */
    if (wire_ctl_get_uint(msg, "hops", &hops) != 0 || hops == 0)
        hops = 1;
    if (ctx->json) {
        print_json(&mid, &from, &from_name, &kind, &group, has_group, seq, ts,
                   &ct, has_ct, &body, hops);
        return 0;
    }

    /* [HH:MM:SS] by the sender's clock in local time, with the date when
     * it is not today's. */
    time_t t = (time_t)(ts / 1000000u), now = time(NULL);
    struct tm tm, today;
    char when[32] = "??:??:??";
    if (localtime_r(&t, &tm) != NULL && localtime_r(&now, &today) != NULL)
        strftime(when, sizeof when,
                 tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday
                     ? "%H:%M:%S"
                     : "%Y-%m-%d %H:%M:%S",
                 &tm);
    cli_sgr(ctx, f, "2");
    fprintf(f, "[%s]", when);
    cli_sgr(ctx, f, "0");
    fputc(' ', f);
    cli_sgr(ctx, f, "1");
    if (from_name.len > 0) {
        cli_put_text(f, from_name.ptr, from_name.len, NULL);
        if (with_id) {
            char sid[9];
            cli_short_id(from.ptr, sid);
            fprintf(f, " (%s)", sid);
        }
    } else {
        char sid[9];
        cli_short_id(from.ptr, sid);
        fputs(sid, f);
    }
    cli_sgr(ctx, f, "0");
    cli_sgr(ctx, f, "2");
    fprintf(f, " (%.*s", (int)kind.len, (const char *)kind.ptr);
    if (has_group) {
        fputs(", #", f);
        cli_put_text(f, group.ptr, group.len, NULL);
    }
    if (hops > 1)
        fprintf(f, ", relayed, %llu hops", (unsigned long long)hops);
    fputs(")", f);
    cli_sgr(ctx, f, "0");
    fputs(": ", f);
    if (is_text(&ct, has_ct, &body)) {
        cli_put_text(f, body.ptr, body.len, "    ");
    } else {
        cli_sgr(ctx, f, "2");
        fprintf(f, "<%zu bytes", (size_t)body.len);
        if (has_ct) {
            fputs(", ", f);
            cli_put_text(f, ct.ptr, ct.len, NULL);
        }
        fputc('>', f);
        cli_sgr(ctx, f, "0");
    }
    fputc('\n', f);
    fflush(f);
    return 0;
}

static void recv_help(FILE *f)
{
    fputs(
        "usage: confab recv [--follow] [--count N] [--timeout SECONDS]\n"
        "\n"
        "Prints the unread messages, oldest first, and marks them read.\n"
        "\n"
        "  -f, --follow       then keep printing messages as they arrive\n"
        "  -n, --count N      end after N messages in all; wait for them\n"
        "  -t, --timeout SECONDS  wait at most this long (without --follow or\n"
        "                     --count: for the first message, if none is\n"
        "                     unread). Exit 4 if it ends the wait before\n"
        "                     --count messages, or before any without it\n"
        "\n"
        "Each message: [HH:MM:SS] name (kind, #group): text; a message\n"
        "relayed by other nodes adds \", relayed, N hops\" in the brackets.\n"
        "With --json, one object a message: id, from, from_name, kind,\n"
        "group, seq, ts (microseconds since 1970, the sender's clock), ct,\n"
        "hops (links crossed: 1 direct, more relayed), and body (valid\n"
        "UTF-8) or body_base64.\n",
        f);
}

/* Prints the `msgs` of a recv reply; returns how many, or -EPROTO. */
static int print_msgs(const cli_ctx *ctx, const wire_ctl_map *r)
{
    wire_iter it;
    uint32_t count;
    wire_ctl_map m;
    int n = 0, rc;
    if (wire_ctl_get_array(r, "msgs", &it, &count) != 0)
        return -EPROTO;
    while ((rc = wire_ctl_next_map(&it, &m)) == 1) {
        if (cli_print_message(ctx, stdout, &m) != 0)
            return -EPROTO;
        n++;
    }
    return rc == 0 ? n : -EPROTO;
}

/* What the command line asks for. */
typedef struct recv_opts {
    bool follow;
    uint64_t count; /* 0: no bound */
    int timeout_ms; /* -1: none */
} recv_opts;

/* Reads the options into o: -1 to go on, else the exit code. */
static int recv_parse(cli_ctx *ctx, int argc, char **argv, recv_opts *o)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool follow = false;
    uint64_t count = 0;
    int timeout_ms = -1;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "fn:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            follow = true;
            break;
        case 'n':
            if (cli_parse_u64(optarg, 1, 1000000000, &count) != 0) {
                cli_error(ctx, "--count takes a whole number from 1, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 't':
            if (cli_parse_seconds(optarg, MAX_TIMEOUT_S, &timeout_ms) != 0) {
                cli_error(ctx,
                          "--timeout takes seconds (e.g. 10 or 0.5), not "
                          "'%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            recv_help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx,
                      "unknown option or missing value '%s'; try "
                      "'confab recv --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(ctx,
                  "recv takes no arguments ('%s'); try 'confab recv "
                  "--help'",
                  argv[optind]);
        return CLI_USAGE;
    }
    *o = (recv_opts){follow, count, timeout_ms};
    return -1;
}

/* One recv request: the unread messages (following from then on with
 * follow), at most max (0: no bound), printed; *got counts them. */
static int recv_request(cli_ctx *ctx, cli_client *cl, bool follow, uint64_t max,
                        uint64_t *got)
{
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(cl, &b, "recv", (follow ? 1 : 0) + (max > 0 ? 1 : 0), &rid);
    if (follow) {
        wire_ctl_key(&b, "follow");
        wire_ctl_put_bool(&b, 1);
    }
    if (max > 0) {
        wire_ctl_key(&b, "max");
        wire_ctl_put_uint(&b, max);
    }
    int rc = cli_call(cl, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK)
        return rc;
    int n = print_msgs(ctx, &r);
    if (n < 0) {
        cli_error(ctx, "the node sent a malformed message list");
        return CLI_FAILED;
    }
    *got += (uint64_t)n;
    return CLI_OK;
}

int cli_cmd_recv(cli_ctx *ctx, int argc, char **argv)
{
    recv_opts o;
    int early = recv_parse(ctx, argc, argv, &o);
    if (early >= 0)
        return early;
    bool follow = o.follow;
    uint64_t count = o.count;
    int timeout_ms = o.timeout_ms;
    bool waits = follow || count > 0 || timeout_ms >= 0;
    uint64_t deadline =
        timeout_ms >= 0 ? cli_now_ms() + (uint64_t)timeout_ms : 0;

    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid, got = 0, sync_rid = 0;

    /* First the unread messages, without following: a follow that ended
     * at --count would take (and mark read) messages it never prints. */
    rc = recv_request(ctx, &cl, false, count, &got);
    if (rc != CLI_OK)
        goto out;
    if (!waits || (count > 0 && got >= count) ||
        (!follow && count == 0 && got > 0)) {
        if (got == 0 && !ctx->json && !waits)
            fprintf(stderr, "no unread messages\n");
        goto out;
    }

    /* Then follow: what came in meanwhile is in the reply, the rest
     * arrives as events. */
    rc = recv_request(ctx, &cl, true, count > 0 ? count - got : 0, &got);
    if (rc != CLI_OK)
        goto out;
    /* Ending, the command asks the node to stop following (`unfollow`)
     * and prints every message until the answer: those the node sent (and
     * so marked read) before it. With --count the node sends no more than
     * N in all (PROTOCOL.md section 11.2, recv). Either way none is marked
     * read without being printed. */
    bool ending = false;
    for (;;) {
        if (count > 0 && got >= count)
            break;
        uint64_t now = cli_now_ms();
        bool timed_out = timeout_ms >= 0 && now >= deadline;
        if (!ending && ((count == 0 && !follow && got > 0) || timed_out)) {
            cli_request(&cl, &b, "unfollow", 0, &rid);
            rc = cli_send(&cl, &b);
            wire_ctl_builder_free(&b);
            if (rc != 0) {
                rc = cli_lost(&cl, rc);
                goto out;
            }
            sync_rid = rid;
            ending = true;
            deadline = now + SYNC_MS;
            timeout_ms = SYNC_MS;
            continue;
        }
        if (timed_out)
            break;
        int k = cli_next(&cl, &r, timeout_ms >= 0 ? (int)(deadline - now) : -1);
        if (k == -ETIMEDOUT)
            continue; /* the deadline check above decides */
        if (k <= 0) {
            rc = cli_lost(&cl, k);
            goto out;
        }
        wire_bytes ev;
        wire_ctl_map m;
        uint64_t reply_rid;
        if (ending && wire_ctl_get_uint(&r, "rid", &reply_rid) == 0 &&
            reply_rid == sync_rid)
            break;
        if (wire_ctl_get_str(&r, "ev", &ev) != 0 || ev.len != 3 ||
            memcmp(ev.ptr, "msg", 3) != 0)
            continue;
        if (wire_ctl_get_map(&r, "msg", &m) != 0 ||
            cli_print_message(ctx, stdout, &m) != 0) {
            cli_error(ctx, "the node sent a malformed message");
            rc = CLI_FAILED;
            goto out;
        }
        got++;
    }
    if ((count > 0 && got < count) || got == 0) {
        if (count == 0)
            cli_error(ctx, "no message arrived in time");
        else
            cli_error(ctx, "timed out after %llu of %llu messages",
                      (unsigned long long)got, (unsigned long long)count);
        rc = CLI_TIMEOUT;
        goto out;
    }
    rc = CLI_OK;
out:
    cli_close(&cl);
    return rc;
}
