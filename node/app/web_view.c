/* Layer app (node/LAYERS).
 * web_view.c: the network as the shown nodes see it (nodes, links with
 * their round trip, groups), as JSON for the page and as an SVG for the
 * report. */
#include "node/app/web_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the text buffer -------------------------------------------------- */

void web_buf_free(web_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static bool reserve(web_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n < b->cap - b->len && b->p != NULL)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void web_buf_put(web_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void web_buf_puts(web_buf *b, const char *s)
{
    web_buf_put(b, s, strlen(s));
}

void web_buf_printf(web_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)k < sizeof small) {
        web_buf_put(b, small, (size_t)k);
        return;
    }
    if (!reserve(b, (size_t)k))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

void web_buf_json_str(web_buf *b, const char *s)
{
    web_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            web_buf_put(b, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            web_buf_printf(b, "\\u%04x", *p);
        } else if (*p == '<') {
            /* Never "</script>" inside a report's inline JSON. */
            web_buf_puts(b, "\\u003c");
        } else {
            web_buf_put(b, (const char *)p, 1);
        }
    }
    web_buf_put(b, "\"", 1);
}

void web_buf_html(web_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&':
            web_buf_puts(b, "&amp;");
            break;
        case '<':
            web_buf_puts(b, "&lt;");
            break;
        case '>':
            web_buf_puts(b, "&gt;");
            break;
        case '"':
            web_buf_puts(b, "&quot;");
            break;
        default:
            web_buf_put(b, p, 1);
        }
    }
}

void web_short_id(const uint8_t id[CONFAB_ID_BYTES], char out[17])
{
    char hex[65];
    confab_id_hex(id, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

/* ---- building the view ------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds s to a set of owned strings (linear: a node is in at most 256
 * groups). Returns 0 or -ENOMEM. */
static int set_add(char ***set, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*set)[i], s) == 0)
            return 0;
    char **p = realloc(*set, (*n + 1) * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    *set = p;
    p[*n] = strdup(s);
    if (p[*n] == NULL)
        return -ENOMEM;
    (*n)++;
    return 0;
}

typedef struct id_index {
    const uint8_t *id;
    size_t i;
} id_index;

static int cmp_id(const void *a, const void *b)
{
    return memcmp(((const id_index *)a)->id, ((const id_index *)b)->id,
                  CONFAB_ID_BYTES);
}

/* The view's node with that id, adding it (not local) when new. The index
 * is sorted by id; it is rebuilt after each addition, which is rare (peers
 * not shown themselves). */
static long find_or_add(web_view *v, id_index **idx, const uint8_t *id,
                        const char *name)
{
    id_index key = {id, 0};
    id_index *hit =
        v->n_nodes ? bsearch(&key, *idx, v->n_nodes, sizeof key, cmp_id) : NULL;
    if (hit != NULL)
        return (long)hit->i;
    web_vnode *nn = realloc(v->nodes, (v->n_nodes + 1) * sizeof *nn);
    if (nn == NULL)
        return -1;
    v->nodes = nn;
    id_index *ni = realloc(*idx, (v->n_nodes + 1) * sizeof *ni);
    if (ni == NULL)
        return -1;
    *idx = ni;
    web_vnode *w = &v->nodes[v->n_nodes];
    memset(w, 0, sizeof *w);
    memcpy(w->id, id, CONFAB_ID_BYTES);
    snprintf(w->name, sizeof w->name, "%s", name ? name : "");
    v->n_nodes++;
    for (size_t i = 0; i < v->n_nodes; i++)
        ni[i] = (id_index){v->nodes[i].id, i};
    qsort(ni, v->n_nodes, sizeof *ni, cmp_id);
    return (long)(v->n_nodes - 1);
}

static int add_link(web_view *v, size_t *cap, size_t a, size_t b, uint64_t rtt)
{
    if (v->n_links == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        web_vlink *l = realloc(v->links, c * sizeof *l);
        if (l == NULL)
            return -ENOMEM;
        v->links = l;
        *cap = c;
    }
    v->links[v->n_links++] = (web_vlink){a, b, rtt};
    return 0;
}

/* The peers of local node li: their links (each pair once: from the local
 * node listed first) and the groups its peers are in. */
static int add_peers(web_view *v, id_index **idx, size_t li, confab_node *node,
                     size_t *link_cap)
{
    size_t count = 0;
    confab_peers(node, NULL, 0, &count);
    confab_peer_info *pi = calloc(count ? count : 1, sizeof *pi);
    if (pi == NULL)
        return -ENOMEM;
    confab_peers(node, pi, count, &count);
    int rc = 0;
    for (size_t k = 0; k < count && rc == 0; k++) {
        if (pi[k].state != CONFAB_PEER_UP)
            continue;
        long j = find_or_add(v, idx, pi[k].id, pi[k].name);
        if (j < 0) {
            rc = -ENOMEM;
            break;
        }
        v->nodes[j].up = true;
        /* A pair of local nodes is listed by the first of the two. */
        if (v->nodes[j].local && (size_t)j < li)
            continue;
        rc = add_link(v, link_cap, li, (size_t)j, pi[k].rtt_us);
    }
    free(pi);
    if (rc != 0)
        return rc;
    const char *gs[CONFAB_MAX_GROUPS * 4];
    size_t ng = confab_groups(node, gs, sizeof gs / sizeof gs[0]);
    if (ng > sizeof gs / sizeof gs[0])
        ng = sizeof gs / sizeof gs[0];
    for (size_t g = 0; g < ng && rc == 0; g++) {
        size_t nm = confab_group_members(node, gs[g], NULL, 0);
        uint8_t(*ids)[CONFAB_ID_BYTES] = calloc(nm ? nm : 1, sizeof *ids);
        if (ids == NULL)
            return -ENOMEM;
        nm = confab_group_members(node, gs[g], ids, nm);
        for (size_t m = 0; m < nm && rc == 0; m++) {
            long j = find_or_add(v, idx, ids[m], NULL);
            rc = j < 0 ? -ENOMEM
                       : set_add(&v->nodes[j].groups, &v->nodes[j].n_groups,
                                 gs[g]);
        }
        free(ids);
    }
    return rc;
}

int web_view_build(web_view *v, confab_node *const *nodes, size_t n)
{
    memset(v, 0, sizeof *v);
    id_index *idx = NULL;
    size_t link_cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        long j = find_or_add(v, &idx, confab_node_id(nodes[i]),
                             confab_node_name(nodes[i]));
        if (j < 0) {
            rc = -ENOMEM;
            break;
        }
        v->nodes[j].local = v->nodes[j].up = true;
        const char *mine[CONFAB_MAX_GROUPS];
        size_t ng = confab_my_groups(nodes[i], mine, CONFAB_MAX_GROUPS);
        for (size_t g = 0; g < ng && rc == 0; g++)
            rc = set_add(&v->nodes[j].groups, &v->nodes[j].n_groups, mine[g]);
    }
    /* Local nodes come first, in order: their indexes are i. */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_peers(v, &idx, i, nodes[i], &link_cap);
    for (size_t i = 0; i < v->n_nodes && rc == 0; i++) {
        web_vnode *w = &v->nodes[i];
        if (w->name[0] == '\0')
            web_short_id(w->id, w->name);
        if (w->n_groups > 1)
            qsort(w->groups, w->n_groups, sizeof *w->groups, cmp_str);
        for (size_t g = 0; g < w->n_groups && rc == 0; g++)
            rc = set_add(&v->groups, &v->n_groups, w->groups[g]);
    }
    if (v->n_groups > 1)
        qsort(v->groups, v->n_groups, sizeof *v->groups, cmp_str);
    free(idx);
    if (rc != 0)
        web_view_free(v);
    return rc;
}

static void free_set(char **set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(set[i]);
    free(set);
}

void web_view_free(web_view *v)
{
    for (size_t i = 0; i < v->n_nodes; i++)
        free_set(v->nodes[i].groups, v->nodes[i].n_groups);
    free(v->nodes);
    free(v->links);
    free_set(v->groups, v->n_groups);
    memset(v, 0, sizeof *v);
}

/* ---- JSON ------------------------------------------------------------- */

void web_view_json(const web_view *v, web_buf *b)
{
    web_buf_puts(b, "{\"nodes\":[");
    for (size_t i = 0; i < v->n_nodes; i++) {
        const web_vnode *w = &v->nodes[i];
        char sid[17];
        web_short_id(w->id, sid);
        web_buf_printf(b, "%s{\"id\":\"%s\",\"name\":", i ? "," : "", sid);
        web_buf_json_str(b, w->name);
        web_buf_printf(b, ",\"local\":%s,\"up\":%s,\"groups\":[",
                       w->local ? "true" : "false", w->up ? "true" : "false");
        for (size_t g = 0; g < w->n_groups; g++) {
            if (g)
                web_buf_puts(b, ",");
            web_buf_json_str(b, w->groups[g]);
        }
        web_buf_puts(b, "]}");
    }
    web_buf_puts(b, "],\"links\":[");
    for (size_t i = 0; i < v->n_links; i++) {
        char a[17], c[17];
        web_short_id(v->nodes[v->links[i].a].id, a);
        web_short_id(v->nodes[v->links[i].b].id, c);
        web_buf_printf(b, "%s{\"a\":\"%s\",\"b\":\"%s\",\"rtt_us\":%llu}",
                       i ? "," : "", a, c,
                       (unsigned long long)v->links[i].rtt_us);
    }
    web_buf_puts(b, "],\"groups\":[");
    for (size_t g = 0; g < v->n_groups; g++) {
        if (g)
            web_buf_puts(b, ",");
        web_buf_json_str(b, v->groups[g]);
    }
    web_buf_puts(b, "]}");
}

/* ---- SVG -------------------------------------------------------------- */

/* The same palette and layout as web/app.js. */
static const char *const palette[] = {"#e6a117", "#2a9d8f", "#b5179e",
                                      "#4361ee", "#e76f51", "#6a994e"};
#define SVG_W 800.0
#define SVG_H 800.0

static void place(size_t i, size_t n, double *x, double *y)
{
    double r = n <= 1 ? 0 : SVG_W / 2 - 70;
    double a = -M_PI / 2 + 2 * M_PI * (double)i / (double)(n ? n : 1);
    *x = SVG_W / 2 + r * cos(a);
    *y = SVG_H / 2 + r * sin(a);
}

static size_t group_index(const web_view *v, const char *g)
{
    for (size_t i = 0; i < v->n_groups; i++)
        if (strcmp(v->groups[i], g) == 0)
            return i;
    return 0;
}

void web_view_svg(const web_view *v, web_buf *b)
{
    double nr = v->n_nodes > 40 ? 9 : v->n_nodes > 12 ? 14 : 22;
    web_buf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"net\" "
                   "viewBox=\"0 0 %.0f %.0f\" data-nodes=\"%zu\" "
                   "data-links=\"%zu\">\n",
                   SVG_W, SVG_H, v->n_nodes, v->n_links);
    web_buf_puts(b, "<g class=\"links\">\n");
    for (size_t i = 0; i < v->n_links; i++) {
        const web_vlink *l = &v->links[i];
        double x1, y1, x2, y2;
        place(l->a, v->n_nodes, &x1, &y1);
        place(l->b, v->n_nodes, &x2, &y2);
        web_buf_printf(b,
                       "<line class=\"link\" x1=\"%.1f\" y1=\"%.1f\" "
                       "x2=\"%.1f\" y2=\"%.1f\"><title>",
                       x1, y1, x2, y2);
        web_buf_html(b, v->nodes[l->a].name);
        web_buf_puts(b, " - ");
        web_buf_html(b, v->nodes[l->b].name);
        if (l->rtt_us)
            web_buf_printf(b, ": round trip %.2f ms",
                           (double)l->rtt_us / 1000.0);
        web_buf_puts(b, "</title></line>\n");
    }
    web_buf_puts(b, "</g>\n<g class=\"nodes\">\n");
    for (size_t i = 0; i < v->n_nodes; i++) {
        const web_vnode *w = &v->nodes[i];
        double x, y;
        place(i, v->n_nodes, &x, &y);
        web_buf_puts(b, "<g class=\"node\" data-name=\"");
        web_buf_html(b, w->name);
        web_buf_puts(b, "\">");
        for (size_t g = w->n_groups; g-- > 0;)
            web_buf_printf(b,
                           "<circle class=\"ring\" cx=\"%.1f\" cy=\"%.1f\" "
                           "r=\"%.1f\" fill=\"none\" stroke=\"%s\" "
                           "stroke-width=\"4\"/>",
                           x, y, nr + 4 + 5 * (double)g,
                           palette[group_index(v, w->groups[g]) % 6]);
        web_buf_printf(b,
                       "<circle class=\"dot\" cx=\"%.1f\" cy=\"%.1f\" "
                       "r=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\">",
                       x, y, nr, x, y + nr + 16 + 5 * (double)w->n_groups);
        web_buf_html(b, w->name);
        web_buf_puts(b, "</text></g>\n");
    }
    web_buf_puts(b, "</g>\n");
    for (size_t g = 0; g < v->n_groups; g++) {
        web_buf_printf(b,
                       "<text class=\"legend\" x=\"10\" y=\"%.0f\" "
                       "fill=\"%s\">group ",
                       20.0 + 18 * (double)g, palette[g % 6]);
        web_buf_html(b, v->groups[g]);
        web_buf_puts(b, "</text>\n");
    }
    web_buf_puts(b, "</svg>\n");
}
