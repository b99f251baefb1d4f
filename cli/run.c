/* cli/run.c: `confab run` (a node in the foreground, serving the control
 * socket), and the commands that work on the home directory without a
 * running node: `confab init` and `confab id`. */
#include "cli/client.h"
#include "cli/settings.h"
#include "cli/systemd.h"

#include "node/confab.h"
#include "node/web.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LIST 64

/* ---- confab run ------------------------------------------------------- */

typedef struct run_state {
    uv_loop_t loop;
    confab_node *node;
    confab_web *web; /* --web, or NULL */
    uv_signal_t sigint, sigterm;
    bool stopping;
    int exit_code;
} run_state;

static const char *level_name(confab_log_level l)
{
    switch (l) {
    case CONFAB_LOG_ERROR:
        return "error";
    case CONFAB_LOG_WARN:
        return "warn";
    case CONFAB_LOG_INFO:
        return "info";
    case CONFAB_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

/* Until the node runs, its errors are the command's: one line
 * "confab: ..." (and {"error": ...} with --json), as every command's. */
static const cli_ctx *starting_ctx;
static bool start_error_said;

static void log_cb(confab_node *node, confab_log_level level, const char *msg,
                   void *user)
{
    (void)node;
    (void)user;
    if (starting_ctx != NULL && level == CONFAB_LOG_ERROR) {
        cli_error(starting_ctx, "%s", msg);
        start_error_said = true;
        return;
    }
    static int journal = -1; /* decided at the first line */
    if (journal < 0)
        journal = cli_journal_stderr();
    if (journal) {
        fprintf(stderr, "%sconfab %s: %s\n", cli_journal_prefix(level),
                level_name(level), msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld confab %s: %s\n", tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name(level), msg);
}

static void on_stopped(confab_node *node, void *user)
{
    run_state *s = user;
    (void)node;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    run_state *s = h->data;
    (void)signum;
    if (s->stopping)
        return;
    s->stopping = true;
    (void)cli_sd_notify("STOPPING=1\nSTATUS=saying goodbye to the peers");
    fprintf(stderr, "confab: stopping (saying goodbye to the peers)\n");
    confab_web_free(s->web); /* before the node it shows */
    s->web = NULL;
    if (confab_node_stop(s->node, on_stopped, s) != 0)
        on_stopped(s->node, s);
}

/* --web: the page and /metrics of this node (node/web.h). */
static int start_web(cli_ctx *ctx, run_state *s, const char *addr,
                     bool allow_send)
{
    confab_web_config wc;
    confab_web_config_init(&wc);
    wc.addr = addr;
    wc.allow_send = allow_send;
    wc.log_cb = log_cb;
    int rc = confab_web_new(&s->loop, &wc, &s->web);
    if (rc == 0)
        rc = confab_web_add_node(s->web, s->node);
    if (rc == 0)
        rc = confab_web_start(s->web);
    if (rc != 0) {
        cli_error(ctx,
                  "cannot serve the page on %s (%s); give another "
                  "address with --web=HOST:PORT",
                  addr, confab_strerror(rc));
        confab_web_free(s->web);
        s->web = NULL;
        return -1;
    }
    const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
    int hl =
        end == NULL ? (int)strlen(addr) : (int)(end - addr) + (addr[0] == '[');
    fprintf(stderr,
            "confab: web page at http://%.*s:%u/ (%s), metrics at "
            "/metrics\n",
            hl, addr, confab_web_port(s->web),
            allow_send ? "it may send" : "read-only");
    return 0;
}

static void run_help(FILE *f)
{
    fputs(
        "usage: confab run [--name NAME] [--bind ADDR] [--port N]\n"
        "                  [--discovery-port N] [--broadcast ADDR]...\n"
        "                  [--no-discovery] [--peer HOST:PORT]...\n"
        "                  [--beacon-interval MS]\n"
        "                  [--log-level error|warn|info|debug]\n"
        "                  [--web[=ADDR]] [--web-allow-send]\n"
        "                  [--interface NAME]... [--advertise ADDR[:PORT]]\n"
        "\n"
        "Runs a node in the foreground until interrupted (Ctrl-C or SIGTERM),\n"
        "logging to stderr. It makes an identity in the home directory on\n"
        "first use, finds peers by UDP broadcast on the LAN, and serves the\n"
        "other confab commands on <home>/control.sock.\n"
        "\n"
        "  --name NAME           the name peers see (default: the one given "
        "to\n"
        "                        'confab init', else node-<short id>)\n"
        "  --bind ADDR           address to accept links on (default ::, "
        "which\n"
        "                        takes IPv4 too; 0.0.0.0 without IPv6)\n"
        "  --port N              TCP port (default 0: any free port)\n"
        "  --discovery-port N    UDP port of the beacons (default 47474)\n"
        "  --broadcast ADDR      where beacons go (repeatable; default: the\n"
        "                        broadcast address of every interface)\n"
        "  --no-discovery        no beacons: only --peer links\n"
        "  --peer HOST:PORT      a peer to dial whether or not discovery "
        "finds\n"
        "                        it (repeatable)\n"
        "  --beacon-interval MS  time between beacons (default 1000)\n"
        "  --log-level LEVEL     error, warn, info (default) or debug\n"
        "  --web[=ADDR]          serve a live page of the network and\n"
        "                        /metrics on ADDR (default 127.0.0.1:8474);\n"
        "                        anything but loopback must be named here\n"
        "                        (see docs/SECURITY.md)\n"
        "  --web-allow-send      let the page send messages (it is\n"
        "                        read-only otherwise)\n"
        "  --interface NAME      discovery only on this interface, IPv4 and\n"
        "                        IPv6 (repeatable; default: every interface)\n"
        "  --advertise ADDR[:PORT]  the address (and port) peers should dial,\n"
        "                        named in beacons (behind NAT or in a\n"
        "                        container); [IPv6]:PORT for IPv6\n",
        f);
    fputs("\nTimers and limits (unset: the default shown):\n", f);
    fputs(cli_settings_help(), f);
    fputs("\nEvery long option can also be a line 'key = value' of\n"
          "<home>/config (no-discovery = true); the command line wins.\n",
          f);
}

/* A --log-level: 0, or -1 when it names no level. */
static int parse_level(const char *s, confab_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const confab_log_level levels[] = {
        CONFAB_LOG_ERROR, CONFAB_LOG_WARN, CONFAB_LOG_INFO, CONFAB_LOG_DEBUG};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = levels[i];
            return 0;
        }
    return -1;
}

/* What the command line asks for; the lists are kept here, the config
 * points to them. */
typedef struct run_opts {
    confab_config cfg;
    const char *bcast[MAX_LIST], *peers[MAX_LIST];
    size_t nb, np;
    const char *web_addr;
    bool web_send;
    const char *ifaces[MAX_LIST]; /* --interface */
    size_t ni;
} run_opts;

static int run_node(cli_ctx *ctx, run_opts *op, const char *home, char *sock,
                    size_t sock_cap);

/* Reads the options into o: -1 to go on, else the exit code. */
static int run_parse(cli_ctx *ctx, int argc, char **argv, run_opts *o)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"bind", required_argument, NULL, 'b'},
        {"port", required_argument, NULL, 'p'},
        {"discovery-port", required_argument, NULL, 'd'},
        {"broadcast", required_argument, NULL, 'B'},
        {"no-discovery", no_argument, NULL, 'N'},
        {"peer", required_argument, NULL, 'P'},
        {"beacon-interval", required_argument, NULL, 'i'},
        {"log-level", required_argument, NULL, 'l'},
        {"web", optional_argument, NULL, 'w'},
        {"web-allow-send", no_argument, NULL, 'A'},
        {"interface", required_argument, NULL, 'I'},
        {"advertise", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    confab_config_init(&o->cfg);
    o->cfg.discovery = 1;
    /* For tests only (confab.1, ENVIRONMENT): what the node decrypts. */
    o->cfg.debug_rx_dump = getenv("CONFAB_DEBUG_RX_DUMP");
    uint64_t v;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->cfg.name = optarg;
            break;
        case 'b':
            o->cfg.bind_addr = optarg;
            break;
        case 'p':
        case 'd':
            if (cli_parse_u64(optarg, c == 'd' ? 1 : 0, 65535, &v) != 0) {
                cli_error(ctx, "--%s takes a port number, not '%s'",
                          c == 'p' ? "port" : "discovery-port", optarg);
                return CLI_USAGE;
            }
            if (c == 'p')
                o->cfg.port = (uint16_t)v;
            else
                o->cfg.discovery_port = (uint16_t)v;
            break;
        case 'B':
        case 'P':
            if ((c == 'B' ? o->nb : o->np) >= MAX_LIST) {
                cli_error(ctx, "at most %d --%s options", MAX_LIST,
                          c == 'B' ? "broadcast" : "peer");
                return CLI_USAGE;
            }
            if (c == 'B')
                o->bcast[o->nb++] = optarg;
            else
                o->peers[o->np++] = optarg;
            break;
        case 'N':
            o->cfg.discovery = 0;
            break;
        case 'i':
            if (cli_parse_u64(optarg, 10, 3600000, &v) != 0) {
                cli_error(ctx,
                          "--beacon-interval takes milliseconds from 10 "
                          "to 3600000, not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            o->cfg.beacon_interval_ms = (unsigned)v;
            break;
        case 'l':
            if (parse_level(optarg, &o->cfg.log_level) != 0) {
                cli_error(ctx,
                          "--log-level is error, warn, info or debug, "
                          "not '%s'",
                          optarg);
                return CLI_USAGE;
            }
            break;
        case 'w':
            o->web_addr = optarg ? optarg : "127.0.0.1:8474";
            break;
        case 'A':
            o->web_send = true;
            break;
        case 'I':
            if (o->ni >= MAX_LIST) {
                cli_error(ctx, "at most %d --interface options", MAX_LIST);
                return CLI_USAGE;
            }
            o->ifaces[o->ni++] = optarg;
            break;
        case 'D':
            o->cfg.advertise = optarg;
            break;
        case 'h':
            run_help(stdout);
            return CLI_OK;
        default:
            cli_error(ctx, "unknown option '%s'; try 'confab run --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(ctx,
                  "run takes no arguments ('%s'); try 'confab run "
                  "--help'",
                  argv[optind]);
        return CLI_USAGE;
    }
    if (o->nb > 0 && o->cfg.discovery == 0) {
        cli_error(ctx, "--broadcast and --no-discovery contradict each other");
        return CLI_USAGE;
    }
    return -1;
}

/* The first hour (#14): the settings on the command line and in the
 * configuration file, then run's own options. The merged argv is freed by
 * the caller, the config's words by cli_config_free(). */
static int run_configure(cli_ctx *ctx, int argc, char **argv, const char *home,
                         run_opts *o, cli_config *file, char ***merged)
{
    cli_settings st;
    int rc = cli_settings_take(ctx, &argc, argv, &st);
    if (rc != CLI_OK)
        return rc;
    bool help = false;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        help = help || strcmp(argv[i], "--help") == 0 ||
               strcmp(argv[i], "-h") == 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/config", home);
    if (!help && !st.no_config)
        rc = cli_config_read(ctx, st.config_path ? st.config_path : path,
                             st.config_path != NULL, file);
    if (rc != CLI_OK)
        return rc;
    int n = argc;
    rc = cli_config_argv(ctx, file, argc, argv, &n, merged);
    if (rc != CLI_OK)
        return rc;
    rc = run_parse(ctx, n, *merged, o);
    if (rc >= 0)
        return rc;
    rc = cli_config_apply_settings(ctx, file, &st, &o->cfg);
    if (rc == CLI_OK)
        rc = cli_settings_apply(ctx, &st, &o->cfg);
    return rc == CLI_OK ? -1 : rc;
}

int cli_cmd_run(cli_ctx *ctx, int argc, char **argv)
{
    run_opts o;
    char home[4096], sock[4200];
    if (cli_home(ctx, home, sizeof home) != 0)
        return CLI_USAGE;
    cli_config file;
    memset(&file, 0, sizeof file);
    char **merged = NULL;
    int early = run_configure(ctx, argc, argv, home, &o, &file, &merged);
    if (early >= 0) {
        cli_config_free(&file);
        free(merged);
        return early;
    }
    int rc = run_node(ctx, &o, home, sock, sizeof sock);
    cli_config_free(&file);
    free(merged);
    return rc;
}

static int run_node(cli_ctx *ctx, run_opts *op, const char *home, char *sock,
                    size_t sock_cap)
{
    run_opts o = *op;
    confab_config cfg = o.cfg;
    const char *web_addr = o.web_addr;
    bool web_send = o.web_send;
    snprintf(sock, sock_cap, "%s/control.sock", home);
    cfg.home = home;
    cfg.control_path = sock;
    cfg.broadcast_addrs = o.bcast;
    cfg.n_broadcast_addrs = o.nb;
    cfg.static_peers = o.peers;
    cfg.n_static_peers = o.np;
    cfg.interfaces = o.ifaces;
    cfg.n_interfaces = o.ni;
    cfg.log_cb = log_cb;

    run_state s;
    memset(&s, 0, sizeof s);
    if (uv_loop_init(&s.loop) != 0) {
        cli_error(ctx, "cannot make an event loop");
        return CLI_FAILED;
    }
    starting_ctx = ctx;
    start_error_said = false;
    int rc = confab_node_new(&s.loop, &cfg, &s.node);
    if (rc != 0) {
        starting_ctx = NULL;
        /* The node's log said why, unless it had nothing to say. */
        if (!start_error_said)
            cli_error(ctx, "the node could not be created (%s)",
                      confab_strerror(rc));
        uv_loop_close(&s.loop);
        return rc == -EINVAL ? CLI_USAGE : CLI_FAILED;
    }
    rc = confab_node_start(s.node);
    starting_ctx = NULL;
    if (rc != 0) {
        if (!start_error_said)
            cli_error(ctx, "the node could not start (%s)",
                      confab_strerror(rc));
        if (confab_node_stop(s.node, NULL, NULL) == 0)
            uv_run(&s.loop, UV_RUN_DEFAULT);
        confab_node_free(s.node);
        uv_loop_close(&s.loop);
        return rc == -EINVAL ? CLI_USAGE : CLI_FAILED;
    }
    /* The signals are ours before the node says it runs: a script that
     * stops it as soon as it reads the line gets a goodbye, not a kill. */
    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    if (web_addr != NULL && start_web(ctx, &s, web_addr, web_send) != 0) {
        s.stopping = true;
        if (confab_node_stop(s.node, on_stopped, &s) != 0)
            on_stopped(s.node, &s);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        confab_node_free(s.node);
        (void)uv_loop_close(&s.loop);
        return CLI_FAILED;
    }
    char hex[65];
    confab_id_hex(confab_node_id(s.node), hex);
    fprintf(stderr,
            "confab: node %s running; its id is %s\n"
            "confab: links on port %u, control socket %s%s\n",
            confab_node_name(s.node), hex, confab_node_port(s.node), sock,
            cfg.discovery ? "" : ", discovery off");
    /* Type=notify: ready once the control socket serves (it does now). */
    char ready[256];
    snprintf(ready, sizeof ready,
             "READY=1\nSTATUS=node %s on port %u, control socket ready",
             confab_node_name(s.node), confab_node_port(s.node));
    int nrc = cli_sd_notify(ready);
    if (nrc != 0)
        fprintf(stderr, "confab: warning: cannot notify systemd (%s)\n",
                strerror(-nrc));
    uv_run(&s.loop, UV_RUN_DEFAULT);
    confab_node_free(s.node);
    if (uv_loop_close(&s.loop) != 0)
        fprintf(stderr, "confab: warning: the loop still had handles\n");
    return CLI_OK;
}

/* ---- confab init ------------------------------------------------------ */

int cli_cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"private-network", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL;
    int private_network = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'p':
            private_network = 1;
            break;
        case 'h':
            fputs("usage: confab init [--name NAME] [--private-network]\n"
                  "\n"
                  "Makes the home directory with a new identity. With\n"
                  "--private-network it also makes a secret network key\n"
                  "(<home>/network.key): copy that file to the other\n"
                  "machines' homes, and only they can link with this one.\n"
                  "On a home that has an identity already, --name and\n"
                  "--private-network add to it and the id stays.\n"
                  "\n"
                  "  --name NAME          the name peers see\n"
                  "  --private-network    also make a secret network key\n",
                  stdout);
            return CLI_OK;
        default:
            cli_error(ctx, "unknown option '%s'; try 'confab init --help'",
                      argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error(ctx, "init takes no arguments ('%s')", argv[optind]);
        return CLI_USAGE;
    }
    char home[4096], err[512] = "";
    if (cli_home(ctx, home, sizeof home) != 0)
        return CLI_USAGE;
    uint8_t had[CONFAB_ID_BYTES];
    char hadname[CONFAB_MAX_NAME + 1];
    /* An existing home keeps its identity: say so, not "made". */
    bool existed = confab_home_id(home, had, hadname, sizeof hadname, err,
                                  sizeof err) == 0;
    err[0] = '\0';
    int rc = confab_home_init(home, name, private_network, err, sizeof err);
    if (rc != 0) {
        cli_error(ctx, "%s", err[0] ? err : confab_strerror(rc));
        return rc == -EINVAL ? CLI_USAGE : CLI_FAILED;
    }
    uint8_t id[CONFAB_ID_BYTES];
    char hex[65], nm[CONFAB_MAX_NAME + 1];
    if (confab_home_id(home, id, nm, sizeof nm, err, sizeof err) != 0) {
        cli_error(ctx, "%s", err);
        return CLI_FAILED;
    }
    confab_id_hex(id, hex);
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(o, "name", json_object_new_string(nm));
        json_object_object_add(o, "home", json_object_new_string(home));
        json_object_object_add(o, "private_network",
                               json_object_new_boolean(private_network));
        json_object_object_add(o, "existed", json_object_new_boolean(existed));
        cli_json_print(o);
    } else {
        printf("%s %s\n  id   %s\n", existed ? "updated" : "made", home, hex);
        if (nm[0])
            printf("  name %s\n", nm);
        if (private_network)
            printf("  a private network key is in %s/network.key: copy it to "
                   "the other machines' homes\n",
                   home);
    }
    return CLI_OK;
}

/* ---- confab id -------------------------------------------------------- */

int cli_cmd_id(cli_ctx *ctx, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        fputs("usage: confab id\n\nPrints this node's id (from the home "
              "directory; no node needs to run).\n",
              stdout);
        return CLI_OK;
    }
    if (argc > 1) {
        cli_error(ctx, "id takes no arguments ('%s')", argv[1]);
        return CLI_USAGE;
    }
    char home[4096], err[512] = "", hex[65], nm[CONFAB_MAX_NAME + 1];
    uint8_t id[CONFAB_ID_BYTES];
    if (cli_home(ctx, home, sizeof home) != 0)
        return CLI_USAGE;
    int rc = confab_home_id(home, id, nm, sizeof nm, err, sizeof err);
    if (rc != 0) {
        cli_error(ctx, "%s", err);
        return rc == -ENOENT ? CLI_NO_NODE : CLI_FAILED;
    }
    confab_id_hex(id, hex);
    if (ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(hex));
        json_object_object_add(o, "name", json_object_new_string(nm));
        cli_json_print(o);
    } else {
        printf("%s\n", hex);
    }
    return CLI_OK;
}
