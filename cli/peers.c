/* cli/peers.c: `confab peers`, and the peer list every command that takes
 * a PEER resolves it against. */
#include "cli/show.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MIN_PREFIX 4  /* hex digits of an id prefix */
#define MAX_LISTED 20 /* candidates named in an error */

void cli_short_id(const uint8_t *id, char out[9])
{
    cli_hex(id, 4, out, 9);
}

static void copy_str(char *dst, size_t cap, wire_bytes v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}

static int by_name(const void *a, const void *b)
{
    const cli_peer *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : memcmp(x->id, y->id, CONFAB_ID_BYTES);
}

int cli_peers_parse(const wire_ctl_map *reply, cli_peers *out)
{
    wire_iter it;
    uint32_t count;
    out->v = NULL;
    out->n = 0;
    if (wire_ctl_get_array(reply, "peers", &it, &count) != 0)
        return -EPROTO;
    out->v = calloc(count ? count : 1, sizeof *out->v);
    if (out->v == NULL)
        return -ENOMEM;
    wire_ctl_map m;
    int rc;
    while ((rc = wire_ctl_next_map(&it, &m)) == 1) {
        cli_peer *p = &out->v[out->n];
        wire_bytes id, name, addr, state;
        if (out->n >= count || wire_ctl_get_bin(&m, "id", &id) != 0 ||
            id.len != CONFAB_ID_BYTES ||
            wire_ctl_get_str(&m, "name", &name) != 0 ||
            wire_ctl_get_str(&m, "state", &state) != 0) {
            rc = -EPROTO;
            break;
        }
        memcpy(p->id, id.ptr, CONFAB_ID_BYTES);
        copy_str(p->name, sizeof p->name, name);
        copy_str(p->state, sizeof p->state, state);
        p->address[0] = '\0';
        if (wire_ctl_get_str(&m, "address", &addr) == 0)
            copy_str(p->address, sizeof p->address, addr);
        p->rtt_us = 0;
        (void)wire_ctl_get_uint(&m, "rtt_us", &p->rtt_us);
        out->n++;
    }
    if (rc != 0) {
        cli_peers_free(out);
        return -EPROTO;
    }
    qsort(out->v, out->n, sizeof *out->v, by_name);
    return 0;
}

int cli_peers_fetch(cli_client *c, cli_peers *out)
{
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    out->v = NULL;
    out->n = 0;
    cli_request(c, &b, "peers", 0, &rid);
    int rc = cli_call(c, &b, rid, &r, 10000);
    wire_ctl_builder_free(&b);
    if (rc != CLI_OK)
        return rc;
    if (cli_peers_parse(&r, out) != 0) {
        cli_error(c->ctx, "the node sent a malformed peer list");
        return CLI_FAILED;
    }
    return CLI_OK;
}

void cli_peers_free(cli_peers *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

const cli_peer *cli_peers_find(const cli_peers *l,
                               const uint8_t id[CONFAB_ID_BYTES])
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->v[i].id, id, CONFAB_ID_BYTES) == 0)
            return &l->v[i];
    return NULL;
}

/* Whether the peer's hex id starts with the hex digits in arg (any
 * case). */
static bool has_prefix(const cli_peer *p, const char *arg, size_t n)
{
    char hex[2 * CONFAB_ID_BYTES + 1];
    cli_hex(p->id, CONFAB_ID_BYTES, hex, sizeof hex);
    for (size_t i = 0; i < n; i++)
        if (hex[i] != tolower((unsigned char)arg[i]))
            return false;
    return true;
}

static void list_peer(const cli_peer *p)
{
    char sid[9];
    cli_short_id(p->id, sid);
    fprintf(stderr, "  %s  ", sid);
    cli_put_text(stderr, (const uint8_t *)p->name, strlen(p->name), NULL);
    fprintf(stderr, " (%s)\n", p->state);
}

int cli_resolve_peer(const cli_ctx *ctx, const cli_peers *l, const char *arg,
                     const cli_peer **out)
{
    size_t n_name = 0, n_hex = 0;
    const cli_peer *by_nm = NULL, *by_hex = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, arg) == 0) {
            n_name++;
            by_nm = &l->v[i];
        }
    if (n_name == 1) {
        *out = by_nm;
        return CLI_OK;
    }
    size_t len = strlen(arg);
    bool hex = len > 0 && len <= 2 * CONFAB_ID_BYTES;
    for (size_t i = 0; hex && i < len; i++)
        hex = isxdigit((unsigned char)arg[i]) != 0;
    if (n_name == 0 && hex && len >= MIN_PREFIX) {
        for (size_t i = 0; i < l->n; i++)
            if (has_prefix(&l->v[i], arg, len)) {
                n_hex++;
                by_hex = &l->v[i];
            }
        if (n_hex == 1) {
            *out = by_hex;
            return CLI_OK;
        }
    }
    if (n_name > 1 || n_hex > 1) {
        cli_error(ctx,
                  "'%s' is ambiguous: %zu peers match; give more hex digits "
                  "of the id:",
                  arg, n_name > 1 ? n_name : n_hex);
        size_t shown = 0;
        for (size_t i = 0; i < l->n && shown < MAX_LISTED; i++)
            if (n_name > 1 ? strcmp(l->v[i].name, arg) == 0
                           : has_prefix(&l->v[i], arg, len)) {
                list_peer(&l->v[i]);
                shown++;
            }
        return CLI_UNKNOWN;
    }
    if (hex && len < MIN_PREFIX)
        cli_error(ctx,
                  "no peer is named '%s', and an id prefix needs at least %d "
                  "hex digits",
                  arg, MIN_PREFIX);
    else if (hex)
        cli_error(ctx,
                  "no peer is named '%s', and no peer's id starts with "
                  "it",
                  arg);
    else
        cli_error(ctx, "no peer is named '%s'", arg);
    if (l->n == 0) {
        fprintf(stderr, "  (this node knows no peers yet; 'confab peers' "
                        "lists them once they are found)\n");
    } else {
        fprintf(stderr, "the known peers:\n");
        for (size_t i = 0; i < l->n && i < MAX_LISTED; i++)
            list_peer(&l->v[i]);
        if (l->n > MAX_LISTED)
            fprintf(stderr, "  ... and %zu more ('confab peers')\n",
                    l->n - MAX_LISTED);
    }
    return CLI_UNKNOWN;
}

static const char *state_colour(const char *state)
{
    if (strcmp(state, "up") == 0)
        return "32";
    if (strcmp(state, "down") == 0)
        return "31";
    if (strcmp(state, "connecting") == 0)
        return "33";
    return "2";
}

static void pad(FILE *f, size_t have, size_t want)
{
    for (; have < want; have++)
        fputc(' ', f);
}

void cli_peers_print(const cli_ctx *ctx, FILE *f, const cli_peers *l)
{
    if (ctx->json) {
        for (size_t i = 0; i < l->n; i++) {
            const cli_peer *p = &l->v[i];
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id",
                                   cli_json_hex(p->id, CONFAB_ID_BYTES));
            json_object_object_add(o, "name", json_object_new_string(p->name));
            json_object_object_add(o, "address",
                                   json_object_new_string(p->address));
            json_object_object_add(o, "state",
                                   json_object_new_string(p->state));
            json_object_object_add(o, "rtt_us",
                                   json_object_new_uint64(p->rtt_us));
            cli_json_print(o);
        }
        return;
    }
    if (l->n == 0) {
        fprintf(f, "no peers yet: they appear once their beacons are heard "
                   "(or a --peer is reached)\n");
        return;
    }
    size_t wn = strlen("NAME"), wa = strlen("ADDRESS"), ws = strlen("STATE");
    for (size_t i = 0; i < l->n; i++) {
        const cli_peer *p = &l->v[i];
        size_t w = cli_text_width((const uint8_t *)p->name, strlen(p->name));
        wn = w > wn ? w : wn;
        w = strlen(p->address[0] ? p->address : "-");
        wa = w > wa ? w : wa;
        w = strlen(p->state);
        ws = w > ws ? w : ws;
    }
    cli_sgr(ctx, f, "1");
    fprintf(f, "%-8s  %-*s  %-*s  %-*s  %s", "ID", (int)wn, "NAME", (int)ws,
            "STATE", (int)wa, "ADDRESS", "RTT");
    cli_sgr(ctx, f, "0");
    fputc('\n', f);
    for (size_t i = 0; i < l->n; i++) {
        const cli_peer *p = &l->v[i];
        char sid[9], ms[32];
        cli_short_id(p->id, sid);
        fprintf(f, "%s  ", sid);
        cli_put_text(f, (const uint8_t *)p->name, strlen(p->name), NULL);
        pad(f, cli_text_width((const uint8_t *)p->name, strlen(p->name)), wn);
        fputs("  ", f);
        cli_sgr(ctx, f, state_colour(p->state));
        fputs(p->state, f);
        cli_sgr(ctx, f, "0");
        pad(f, strlen(p->state), ws);
        fprintf(f, "  %-*s  ", (int)wa, p->address[0] ? p->address : "-");
        if (p->rtt_us > 0 && strcmp(p->state, "up") == 0) {
            cli_fmt_ms(p->rtt_us, ms, sizeof ms);
            fprintf(f, "%s ms\n", ms);
        } else {
            fprintf(f, "-\n");
        }
    }
}

int cli_cmd_peers(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"all", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    bool all = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'a') {
            all = true;
            continue;
        }
        if (c == 'h') {
            fputs("usage: confab peers [--all]\n"
                  "\n"
                  "Lists the peers the running node knows: short id, name,\n"
                  "state (up, connecting, known, down), the address where it\n"
                  "accepts links, and the smoothed round trip. With --json,\n"
                  "one object a peer: id, name, address, state, rtt_us.\n"
                  "Then the peers reached only through others (routing),\n"
                  "with their next hop and distance in hops; JSON: state\n"
                  "routed, and via, via_name, hops.\n"
                  "\n"
                  "  --all   also the peers given up on (state gone: down\n"
                  "          longer than run's --peer-forget, or forgotten\n"
                  "          with 'confab forget')\n",
                  stdout);
            return CLI_OK;
        }
        cli_error(ctx, "unknown option '%s'; try 'confab peers --help'",
                  argv[optind - 1]);
        return CLI_USAGE;
    }
    if (optind < argc) {
        cli_error(ctx, "peers takes no arguments ('%s')", argv[optind]);
        return CLI_USAGE;
    }
    cli_client cl;
    int rc = cli_connect(ctx, &cl);
    if (rc != CLI_OK)
        return rc;
    cli_peers l;
    rc = cli_peers_fetch(&cl, &l);
    if (rc != CLI_OK) {
        cli_close(&cl);
        return rc;
    }
    size_t k = 0; /* gone peers are left out unless --all */
    for (size_t i = 0; i < l.n; i++)
        if (all || strcmp(l.v[i].state, "gone") != 0)
            l.v[k++] = l.v[i];
    l.n = k;
    cli_peers_print(ctx, stdout, &l);
    rc = cli_routes_show(ctx, &cl, &l); /* routing (#12) */
    cli_close(&cl);
    cli_peers_free(&l);
    return rc;
}
