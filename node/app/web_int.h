/* Layer app (node/LAYERS).
 * web_int.h: what the web server's files share (node/web.c, the view of
 * the network in web_view.c, the Prometheus text in metrics.c). Private to
 * node/. */
#ifndef CONFAB_WEB_INT_H
#define CONFAB_WEB_INT_H

#include "node/web.h"

#include <stdarg.h>

/* A growing text buffer. On allocation failure it sets failed and keeps
 * what it had: the caller checks failed once at the end. */
typedef struct web_buf {
    char *p;
    size_t len, cap;
    bool failed;
} web_buf;

void web_buf_free(web_buf *b);
void web_buf_put(web_buf *b, const char *s, size_t n);
void web_buf_puts(web_buf *b, const char *s);
void web_buf_printf(web_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included. */
void web_buf_json_str(web_buf *b, const char *s);
/* s with &, <, >, " escaped for HTML text and attributes. */
void web_buf_html(web_buf *b, const char *s);
/* The first 16 hex digits of an id: what the page calls a node. */
void web_short_id(const uint8_t id[CONFAB_ID_BYTES], char out[17]);

/* The network the nodes see, one view for /state and the report. */
typedef struct web_vnode {
    uint8_t id[CONFAB_ID_BYTES];
    char name[CONFAB_MAX_NAME + 1];
    bool local; /* one of the nodes shown (else a peer of one) */
    bool up;    /* local, or linked to a local node */
    char **groups;
    size_t n_groups;
} web_vnode;

typedef struct web_vlink {
    size_t a, b;     /* indexes into nodes */
    uint64_t rtt_us; /* 0: not measured yet */
} web_vlink;

typedef struct web_view {
    web_vnode *nodes;
    size_t n_nodes;
    web_vlink *links;
    size_t n_links;
    char **groups; /* every group, sorted */
    size_t n_groups;
} web_view;

int web_view_build(web_view *v, confab_node *const *nodes, size_t n);
void web_view_free(web_view *v);
void web_view_json(const web_view *v, web_buf *b);
/* The network as an SVG, circle layout (the page's app.js draws the
 * same). */
void web_view_svg(const web_view *v, web_buf *b);

/* The Prometheus text exposition of nodes[0..n) and the server. */
void node_metrics_write(web_buf *b, confab_node *const *nodes, size_t n,
                        const confab_web_stats *web);
/* How many fields of confab_stats the metrics name (a test checks it is
 * all of them). */
size_t node_metrics_stats_named(void);

/* The page's files, built into the program (web/, embedded at build
 * time by web/embed.py). */
typedef struct web_asset {
    const char *path;
    const char *type;
    const unsigned char *data;
    size_t len;
} web_asset;
extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif
