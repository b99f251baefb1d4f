/* cli/monitor.c: `confab monitor`: the running node's events as they
 * happen (peers, groups, and the traffic: every message as it arrives,
 * every send outcome, every round trip), one line each, or JSON lines with
 * --json. It watches: messages stay unread. The same events feed the web
 * page (docs/WEB.md). */
#include "cli/client.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>

#define CALL_MS 5000

static volatile sig_atomic_t stop_now;

static void on_signal(int sig)
{
    stop_now = sig; /* SIGINT ends with status 130, SIGTERM with 0 */
}

static void help(FILE *f)
{
    fputs("usage: confab monitor [--count N] [--json]\n"
          "\n"
          "Prints the running node's events as they happen: peers up and\n"
          "down, group joins and leaves, every message as it arrives\n"
          "(without marking it read), every outcome of this node's sends,\n"
          "every measured round trip, and every line the node logs (at its\n"
          "--log-level). Until Ctrl-C (exit 130), or N events.\n"
          "\n"
          "  --count N  stop after N events\n"
          "  --json     one JSON object a line: ev, and the fields of\n"
          "             docs/PROTOCOL.md section 11.2 (ids in hex)\n",
          f);
}

/* The fields every event may have, as JSON: strings as strings, ids as
 * hex, numbers as numbers. */
static json_object *to_json(const wire_ctl_map *m)
{
    static const char *const strs[] = {"ev",    "name", "state", "reason",
                                       "group", "what", "kind",  "status",
                                       "level", "line"};
    static const char *const bins[] = {"id", "from", "mid"};
    static const char *const uints[] = {"len", "rtt_us"};
    json_object *o = json_object_new_object();
    wire_bytes v;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (wire_ctl_get_str(m, strs[i], &v) == 0)
            json_object_object_add(
                o, strs[i],
                json_object_new_string_len((const char *)v.ptr, (int)v.len));
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (wire_ctl_get_bin(m, bins[i], &v) == 0)
            json_object_object_add(o, bins[i], cli_json_hex(v.ptr, v.len));
    for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
        uint64_t u;
        if (wire_ctl_get_uint(m, uints[i], &u) == 0)
            json_object_object_add(o, uints[i], json_object_new_uint64(u));
    }
    return o;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void print_human(json_object *o)
{
    const char *ev = field(o, "ev");
    char id[9];
    snprintf(id, sizeof id, "%s", field(o, "id"));
    if (strcmp(ev, "peer") == 0) {
        printf("peer %s (%s) %s %s\n", field(o, "name"), id, field(o, "state"),
               field(o, "reason"));
    } else if (strcmp(ev, "log") == 0) {
        printf("log %s: ", field(o, "level"));
        const char *line = field(o, "line");
        cli_put_text(stdout, (const uint8_t *)line, strlen(line), NULL);
        putchar('\n');
    } else if (strcmp(ev, "join") == 0 || strcmp(ev, "leave") == 0) {
        printf("%s %s (%s) %s group %s\n", ev, field(o, "name"), id,
               strcmp(ev, "join") == 0 ? "joined" : "left", field(o, "group"));
    } else if (strcmp(ev, "traffic") == 0) {
        const char *what = field(o, "what");
        char from[9];
        snprintf(from, sizeof from, "%s", field(o, "from"));
        if (strcmp(what, "msg") == 0)
            printf("msg %s from %s, %s bytes%s%s\n", field(o, "kind"), from,
                   field(o, "len"), *field(o, "group") ? ", group " : "",
                   field(o, "group"));
        else if (strcmp(what, "outcome") == 0)
            printf("outcome %s by %s\n", field(o, "status"), id);
        else
            printf("rtt %s us to %s\n", field(o, "rtt_us"), id);
    } else {
        printf("%s\n", ev);
    }
}

int cli_cmd_monitor(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t count = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (cli_parse_u64(optarg, 1, UINT64_MAX, &count) != 0) {
                cli_error(ctx, "--count takes a positive number, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx, "unknown option '%s'; try 'confab monitor --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(ctx, "monitor takes no arguments ('%s')", argv[optind]);
        return CLI_USAGE;
    }
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    wire_ctl_builder b;
    uint64_t rid;
    cli_request(&cl, &b, "subscribe", 1, &rid);
    wire_ctl_key(&b, "events");
    wire_ctl_array_begin(&b, 4);
    wire_ctl_put_cstr(&b, "peer");
    wire_ctl_put_cstr(&b, "group");
    wire_ctl_put_cstr(&b, "traffic");
    wire_ctl_put_cstr(&b, "log");
    wire_ctl_map m;
    rc = cli_call(&cl, &b, rid, &m, CALL_MS);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK) {
        cli_close(&cl);
        return rc;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    uint64_t seen = 0;
    rc = CLI_OK;
    while (!stop_now && (count == 0 || seen < count)) {
        int n = cli_next(&cl, &m, 500);
        if (n == -ETIMEDOUT || n == -EINTR)
            continue;
        if (n != 1) {
            rc = cli_lost(&cl, n);
            break;
        }
        json_object *o = to_json(&m);
        if (ctx->json) {
            cli_json_print(o); /* and releases it */
        } else {
            print_human(o);
            json_object_put(o);
            fflush(stdout);
        }
        seen++;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    cli_close(&cl);
    if (rc == CLI_OK && stop_now == SIGINT)
        rc = CLI_INTERRUPTED;
    return rc;
}
