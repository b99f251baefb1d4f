/* web.h: a small HTTP server inside the node process that shows the
 * network live in a browser and answers /metrics for Prometheus.
 *
 * It serves, on the caller's libuv loop (libmicrohttpd driven from it, no
 * thread of its own):
 *   GET /            the page (HTML, JS and CSS built into the program:
 *                    no network fetch, it works on an isolated LAN)
 *   GET /state       the network as the nodes see it, JSON: nodes, links
 *                    with their round trip, groups (docs/WEB.md)
 *   GET /events      server-sent events: peers, groups, every message as
 *                    it is delivered, send outcomes, steps (docs/WEB.md)
 *   GET /metrics     every counter of `confab status`, per-peer round trip,
 *                    bytes and queue depths, in the Prometheus text format
 *   POST /api/step   the next pattern (only when a step callback is set)
 *   POST /api/send   send from the page (only when allow_send is set)
 * Everything else is read-only. The bounds (request size, connections in
 * all and per source, bytes queued for an event-stream client that does
 * not read) each have a counter (confab_web_stats) and a row in
 * docs/SECURITY.md.
 *
 * Like the node, a web server is driven from the loop's thread only. */
#ifndef CONFAB_WEB_H
#define CONFAB_WEB_H

#include "confab.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct confab_web confab_web;

typedef struct confab_web_config {
    /* Where to listen: "HOST:PORT" or "HOST" with an IPv4 or IPv6 literal
     * ("[::1]:8080"). NULL: "127.0.0.1:0". Anything but loopback must be
     * given explicitly (docs/SECURITY.md, "The web page"). */
    const char *addr;
    /* Let the page send (POST /api/send). Off: the page is read-only. */
    bool allow_send;
    /* Bounds. 0 means the default shown. */
    unsigned max_conns;            /* connections in all: 64 */
    unsigned max_conns_per_source; /* from one address: 16 */
    size_t max_request;            /* request line and headers: 16 KiB */
    size_t max_queued;             /* per event-stream client: 1 MiB */
    unsigned idle_timeout_s;       /* a connection silent this long: 10 */
    /* Called on POST /api/step (and may be NULL: then 404). The step
     * itself is the caller's; it reports with confab_web_note(). */
    void (*step_cb)(confab_web *web, void *user);
    void *user;
    confab_log_cb log_cb; /* NULL: no logs */
} confab_web_config;

typedef struct confab_web_stats {
    uint64_t requests;         /* answered */
    uint64_t conns_open;       /* now */
    uint64_t conns_refused;    /* over max_conns or max_conns_per_source */
    uint64_t conns_cut;        /* closed before a request was answered: over
                                  max_request, malformed, or idle */
    uint64_t sse_clients;      /* now */
    uint64_t sse_cut;          /* event-stream clients cut at max_queued */
    uint64_t sse_queued_bytes; /* now, all clients */
} confab_web_stats;

void confab_web_config_init(confab_web_config *c);

/* Creates the server (not listening yet). Returns 0, -EINVAL (a bad
 * address; the log says why) or -ENOMEM. */
__attribute__((warn_unused_result)) int
confab_web_new(uv_loop_t *loop, const confab_web_config *c, confab_web **out);

/* Shows node (borrowed: detach it with confab_web_free() before freeing
 * the node) and sees every event it raises. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int confab_web_add_node(confab_web *web,
                                                            confab_node *node);

/* Binds and listens. Returns 0 or a negative errno (-EADDRINUSE...). */
__attribute__((warn_unused_result)) int confab_web_start(confab_web *web);

/* The port it listens on, once started. */
uint16_t confab_web_port(const confab_web *web);

/* Sends an event to every page: one JSON object, copied (e.g. the
 * testnet's {"t":"step",...}). */
void confab_web_note(confab_web *web, const char *json);
/* Sets the JSON object the page shows beside the network as "run" in
 * /state (copied; NULL: none), e.g. the patterns of a testnet. */
void confab_web_set_run(confab_web *web, const char *json);

void confab_web_stats_get(const confab_web *web, confab_web_stats *out);

/* Writes a self-contained HTML report of the network now (one file, the
 * network as an inline SVG, no script needed) to f, with title and the
 * lines of text (may be NULL) under it. Returns 0, -ENOMEM or -EIO. */
int confab_web_write_report(confab_web *web, FILE *f, const char *title,
                            const char *text);

/* Stops listening, closes every connection, detaches from the nodes, and
 * frees the server once its handles are closed (run the loop). */
void confab_web_free(confab_web *web);

#ifdef __cplusplus
}
#endif

#endif
