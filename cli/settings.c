/* cli/settings.c: the timers and limits `confab run` can set (every one
 * the protocol calls configurable), from its command line and from the
 * home's configuration file, <home>/config. The command line wins.
 *
 * The file is one "key = value" a line; '#' starts a comment; keys are the
 * long options of `confab run` without their dashes. It is read with
 * bounds (its size, a line's length) and every value is checked as the
 * option's would be; a mistake names the file and the line. */
#include "cli/settings.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES (64u * 1024u)
#define CONFIG_MAX_LINE  1024u
#define DAY_MS           86400000u

typedef enum kind { K_MS, K_BYTES, K_COUNT } kind;

typedef struct setting {
    const char *name;
    kind k;
    size_t off; /* in confab_config */
    size_t size;
    uint64_t min, max;
} setting;

#define S(n, k, f, lo, hi)                                                     \
    {                                                                          \
        n, k, offsetof(confab_config, f), sizeof(((confab_config *)0)->f), lo, \
            hi                                                                 \
    }

/* The order of `confab run --help`. */
static const setting settings[] = {
    S("ping-interval", K_MS, ping_interval_ms, 10, DAY_MS),
    S("peer-timeout", K_MS, peer_timeout_ms, 50, DAY_MS),
    S("anycast-timeout", K_MS, anycast_timeout_ms, 10, DAY_MS),
    S("handshake-timeout", K_MS, handshake_timeout_ms, 100, DAY_MS),
    S("redial-max", K_MS, redial_max_ms, 10, DAY_MS),
    S("known-peer-ttl", K_MS, known_peer_ttl_ms, 100, DAY_MS),
    S("peer-forget", K_MS, peer_forget_ms, 100, 4000000000u),
    S("other-network-warn", K_MS, other_net_warn_ms, 100, DAY_MS),
    S("max-message", K_BYTES, max_message, 1024, (uint64_t)1 << 32),
    S("send-queue-bytes", K_BYTES, send_queue_bytes, 65536, (uint64_t)1 << 40),
    S("outbox-bytes", K_BYTES, outbox_bytes, 65536, (uint64_t)1 << 40),
    S("inbox-max", K_COUNT, inbox_max, 1, 100000000),
    S("max-known-peers", K_COUNT, max_known_peers, 1, 10000000),
    S("max-handshakes", K_COUNT, max_handshakes, 1, 100000),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* The keys of the file that are `confab run` options of its own (run.c
 * reads them); "no-discovery" takes true or false there. */
static const char *const run_keys[] = {
    "name",      "bind", "port",           "discovery-port",
    "broadcast", "peer", "no-discovery",   "beacon-interval",
    "log-level", "web",  "web-allow-send",
};

const char *cli_settings_help(void)
{
    return "  --ping-interval MS    ping a peer idle this long (default 5000)\n"
           "  --peer-timeout MS     a peer silent this long is down (15000)\n"
           "  --anycast-timeout MS  a member has this long to acknowledge\n"
           "                        before the next gets it (2000)\n"
           "  --handshake-timeout MS  a handshake must end in this (5000)\n"
           "  --redial-max MS       longest wait between re-dials (30000)\n"
           "  --known-peer-ttl MS   a peer heard of but never linked is\n"
           "                        forgotten unheard this long (30000)\n"
           "  --peer-forget MS      a peer down this long is given up: no\n"
           "                        more dials, not in 'peers' (7 days)\n"
           "  --other-network-warn MS  hearing nodes of another network\n"
           "                        key is logged once, then at most this\n"
           "                        often (60000)\n"
           "  --max-message BYTES   largest body sent or accepted (16 MiB)\n"
           "  --send-queue-bytes BYTES  per peer, waiting to be sent (32 "
           "MiB)\n"
           "  --outbox-bytes BYTES  unacknowledged unicasts, all peers (1 "
           "GiB)\n"
           "  --inbox-max N         messages kept until read (10000)\n"
           "  --max-known-peers N   peers never linked kept at once (1024)\n"
           "  --max-handshakes N    connections in handshake at once (256)\n"
           "  --config FILE         read settings from FILE, not "
           "<home>/config\n"
           "  --no-config           read no configuration file\n";
}

static const setting *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len &&
            memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

static bool is_run_key(const char *name)
{
    for (size_t i = 0; i < sizeof run_keys / sizeof run_keys[0]; i++)
        if (strcmp(run_keys[i], name) == 0)
            return true;
    return false;
}

static int store(const setting *s, const char *value, confab_config *cfg)
{
    uint64_t v;
    if (cli_parse_u64(value, s->min, s->max, &v) != 0)
        return -1;
    char *p = (char *)cfg + s->off;
    if (s->size == sizeof(unsigned)) {
        unsigned u = (unsigned)v;
        memcpy(p, &u, sizeof u);
    } else {
        size_t z = (size_t)v;
        memcpy(p, &z, sizeof z);
    }
    return 0;
}

static const char *unit(kind k)
{
    return k == K_MS ? "milliseconds" : k == K_BYTES ? "bytes" : "a count";
}

/* ---- the command line ------------------------------------------------- */

int cli_settings_take(const cli_ctx *ctx, int *argc, char **argv,
                      cli_settings *out)
{
    memset(out, 0, sizeof *out);
    int k = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[k++] = argv[i++];
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            argv[k++] = argv[i];
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        bool is_config = len == 6 && memcmp(name, "config", 6) == 0;
        if (len == 9 && memcmp(name, "no-config", 9) == 0 && eq == NULL) {
            out->no_config = true;
            continue;
        }
        const setting *s = is_config ? NULL : find(name, len);
        if (s == NULL && !is_config) {
            argv[k++] = argv[i];
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < *argc ? argv[++i] : NULL);
        if (value == NULL) {
            cli_error(ctx, "--%.*s needs a value; try 'confab run --help'",
                      (int)len, name);
            return CLI_USAGE;
        }
        if (is_config) {
            out->config_path = value;
            continue;
        }
        if (out->n >= CLI_MAX_SETTINGS) {
            cli_error(ctx, "too many settings on the command line");
            return CLI_USAGE;
        }
        out->given[out->n].name = s->name;
        out->given[out->n].value = value;
        out->n++;
    }
    argv[k] = NULL;
    *argc = k;
    return CLI_OK;
}

int cli_settings_apply(const cli_ctx *ctx, const cli_settings *st,
                       confab_config *cfg)
{
    for (size_t i = 0; i < st->n; i++) {
        const setting *s = find(st->given[i].name, strlen(st->given[i].name));
        if (s == NULL || store(s, st->given[i].value, cfg) != 0) {
            cli_error(ctx,
                      "--%s takes %s from %llu to %llu, not '%s'; try 'confab "
                      "run --help'",
                      st->given[i].name, s ? unit(s->k) : "a number",
                      (unsigned long long)(s ? s->min : 0),
                      (unsigned long long)(s ? s->max : 0), st->given[i].value);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

/* ---- the file --------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* One line: CLI_OK, or CLI_USAGE after saying what is wrong with it. */
static int config_line(const cli_ctx *ctx, const char *path, unsigned no,
                       char *line, cli_config *out)
{
    char *hash = strchr(line, '#');
    if (hash != NULL)
        *hash = '\0';
    char *s = trim(line);
    if (*s == '\0')
        return CLI_OK;
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        cli_error(ctx, "%s line %u: expected 'key = value', not '%s'", path, no,
                  s);
        return CLI_USAGE;
    }
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (!printable(key) || !printable(value)) {
        cli_error(ctx,
                  "%s line %u: a control character; keys and values are "
                  "text on one line",
                  path, no);
        return CLI_USAGE;
    }
    const setting *st = find(key, strlen(key));
    if (st == NULL && !is_run_key(key)) {
        cli_error(ctx,
                  "%s line %u: unknown key '%s'; the keys are confab run's "
                  "long options without '--' (see 'confab run --help')",
                  path, no, key);
        return CLI_USAGE;
    }
    if (*value == '\0') {
        cli_error(ctx, "%s line %u: '%s' has no value", path, no, key);
        return CLI_USAGE;
    }
    bool flag =
        strcmp(key, "no-discovery") == 0 || strcmp(key, "web-allow-send") == 0;
    if (flag && strcmp(value, "true") != 0 && strcmp(value, "false") != 0 &&
        strcmp(value, "yes") != 0 && strcmp(value, "no") != 0 &&
        strcmp(value, "1") != 0 && strcmp(value, "0") != 0) {
        cli_error(ctx, "%s line %u: %s is true or false, not '%s'", path, no,
                  key, value);
        return CLI_USAGE;
    }
    if (st != NULL && store(st, value, &out->probe) != 0) {
        cli_error(ctx, "%s line %u: %s takes %s from %llu to %llu, not '%s'",
                  path, no, key, unit(st->k), (unsigned long long)st->min,
                  (unsigned long long)st->max, value);
        return CLI_USAGE;
    }
    if (out->n >= CLI_MAX_CONFIG) {
        cli_error(ctx, "%s line %u: more than %d settings", path, no,
                  CLI_MAX_CONFIG);
        return CLI_USAGE;
    }
    out->e[out->n].key = key;
    out->e[out->n].value = value;
    out->e[out->n].line = no;
    out->n++;
    return CLI_OK;
}

int cli_config_read(const cli_ctx *ctx, const char *path, bool must_exist,
                    cli_config *out)
{
    memset(out, 0, sizeof *out);
    confab_config_init(&out->probe);
    out->path = path;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT && !must_exist)
            return CLI_OK;
        cli_error(ctx, "cannot read the configuration file %s: %s", path,
                  strerror(errno));
        return CLI_FAILED;
    }
    out->text = malloc(CONFIG_MAX_BYTES + 1);
    if (out->text == NULL) {
        fclose(f);
        cli_error(ctx, "out of memory");
        return CLI_FAILED;
    }
    size_t len = fread(out->text, 1, CONFIG_MAX_BYTES + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || len > CONFIG_MAX_BYTES) {
        cli_error(ctx, "%s: %s", path,
                  bad ? "cannot be read"
                      : "over 64 KiB; a configuration file is a few lines");
        return CLI_FAILED;
    }
    if (memchr(out->text, '\0', len) != NULL) {
        cli_error(ctx, "%s: a NUL byte; it is not a text file", path);
        return CLI_USAGE;
    }
    out->text[len] = '\0';
    unsigned no = 0;
    char *p = out->text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        no++;
        if (strlen(p) > CONFIG_MAX_LINE) {
            cli_error(ctx, "%s line %u: over %u bytes", path, no,
                      CONFIG_MAX_LINE);
            return CLI_USAGE;
        }
        int rc = config_line(ctx, path, no, p, out);
        if (rc != CLI_OK)
            return rc;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return CLI_OK;
}

int cli_config_apply_settings(const cli_ctx *ctx, const cli_config *c,
                              const cli_settings *given, confab_config *cfg)
{
    (void)ctx;
    for (size_t i = 0; i < c->n; i++) {
        const setting *s = find(c->e[i].key, strlen(c->e[i].key));
        if (s == NULL)
            continue; /* one of run's own: run.c reads it */
        bool overridden = false;
        for (size_t j = 0; j < given->n; j++)
            overridden =
                overridden || strcmp(given->given[j].name, s->name) == 0;
        if (!overridden)
            (void)store(s, c->e[i].value, cfg); /* checked when read */
    }
    return CLI_OK;
}

void cli_config_free(cli_config *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    c->owned = NULL;
    c->n_owned = 0;
    free(c->text);
    c->text = NULL;
}

/* ---- run's own options from the file ---------------------------------- */

/* Whether argv (before "--") gives --key, as "--key", "--key=V". */
static bool given_on_line(int argc, char **argv, const char *key)
{
    size_t len = strlen(key);
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strncmp(argv[i], "--", 2) == 0 &&
            strncmp(argv[i] + 2, key, len) == 0 &&
            (argv[i][2 + len] == '\0' || argv[i][2 + len] == '='))
            return true;
    return false;
}

static int bool_value(const cli_ctx *ctx, const cli_config *c, size_t i,
                      bool *out)
{
    const char *v = c->e[i].value;
    if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
             strcmp(v, "0") == 0)
        *out = false;
    else {
        cli_error(ctx, "%s line %u: %s is true or false, not '%s'", c->path,
                  c->e[i].line, c->e[i].key, v);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_config_argv(const cli_ctx *ctx, cli_config *c, int argc, char **argv,
                    int *out_argc, char ***out_argv)
{
    /* Each entry becomes at most two words, and "--key=value" is one. */
    char **v = calloc((size_t)argc + 2 * c->n + 1, sizeof *v);
    char **owned = calloc(c->n + 1, sizeof *owned);
    if (v == NULL || owned == NULL) {
        free(v);
        free(owned);
        cli_error(ctx, "out of memory");
        return CLI_FAILED;
    }
    int k = 0;
    size_t no = 0;
    v[k++] = argv[0];
    for (size_t i = 0; i < c->n; i++) {
        const char *key = c->e[i].key;
        if (!is_run_key(key) || given_on_line(argc, argv, key))
            continue;
        bool flag = strcmp(key, "no-discovery") == 0 ||
                    strcmp(key, "web-allow-send") == 0;
        bool on = true;
        if (flag && bool_value(ctx, c, i, &on) != CLI_OK) {
            for (size_t j = 0; j < no; j++)
                free(owned[j]);
            free(owned);
            free(v);
            return CLI_USAGE;
        }
        size_t n = strlen(key) + strlen(c->e[i].value) + 4;
        char *w = malloc(n);
        if (w == NULL)
            continue; /* the option goes unset; nothing is half-written */
        owned[no++] = w;
        if (flag)
            snprintf(w, n, "--%s", key);
        else
            snprintf(w, n, "--%s=%s", key, c->e[i].value);
        if (on)
            v[k++] = w;
    }
    for (int i = 1; i < argc; i++)
        v[k++] = argv[i];
    v[k] = NULL;
    *out_argc = k;
    *out_argv = v;
    /* The words live as long as the run: the config keeps them. */
    c->owned = owned;
    c->n_owned = no;
    return CLI_OK;
}
