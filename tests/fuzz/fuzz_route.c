/* fuzz_route.c: a routing message from a member (docs/PROTOCOL.md section
 * 13): ROUTE adverts, ROUTED envelopes, TRACE and TRACE_REPLY, t 10 to 13.
 *
 * The bytes go to wire_msg_decode(), which hands the routing types to
 * wire/route.c. Properties, for a routing type it accepts:
 *   - only what wire_mp_check() accepts is accepted;
 *   - the decoded values are within the section's bounds: at most 256
 *     entries in an advert, each with a 32-byte id, and the iterator yields
 *     exactly `count` of them; hop limits at most 16; a trace's k 1..16,
 *     its name and address at most 64 bytes; a box holds nonce and tag;
 *   - a decoded message encodes again into wire_msg_bound() bytes (unless
 *     an advert carries a metric above 16, which decodes, is refused by
 *     the receiver and which the encoder refuses), that encoding decodes
 *     to the same values, and encoding those gives the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static int bytes_eq(wire_bytes a, wire_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int id_eq(const uint8_t *a, const uint8_t *b)
{
    return a != NULL && b != NULL && memcmp(a, b, WIRE_NODE_ID_BYTES) == 0;
}

/* Reads every entry of an advert into e (at most WIRE_ROUTE_MAX); returns
 * how many the iterator yielded and whether any metric is above 16. */
static uint32_t entries(const wire_route *ro, wire_route_entry *e, int *over)
{
    wire_iter it = ro->iter;
    uint32_t n = 0;
    *over = 0;
    while (n < WIRE_ROUTE_MAX && wire_route_next(&it, &e[n])) {
        CHECK(e[n].id != NULL);
        if (e[n].metric > WIRE_ROUTE_INFINITY)
            *over = 1;
        n++;
    }
    return n;
}

static int same(const wire_msg *a, const wire_msg *b,
                const wire_route_entry *ea, uint32_t na)
{
    if (a->type != b->type)
        return 0;
    if (a->type == WIRE_T_ROUTE) {
        static wire_route_entry eb[WIRE_ROUTE_MAX];
        int over;
        uint32_t nb = entries(&b->u.route, eb, &over);
        if (nb != na || b->u.route.count != a->u.route.count)
            return 0;
        for (uint32_t i = 0; i < na; i++)
            if (!id_eq(ea[i].id, eb[i].id) || ea[i].seq != eb[i].seq ||
                ea[i].metric != eb[i].metric || ea[i].epoch != eb[i].epoch)
                return 0;
        return 1;
    }
    if (a->type == WIRE_T_ROUTED) {
        const wire_routed *x = &a->u.routed, *y = &b->u.routed;
        return id_eq(x->src, y->src) && id_eq(x->dst, y->dst) &&
               x->hops == y->hops && bytes_eq(x->box, y->box);
    }
    const wire_trace *x = &a->u.trace, *y = &b->u.trace;
    return id_eq(x->src, y->src) && id_eq(x->dst, y->dst) &&
           x->hops == y->hops && x->token == y->token && x->k == y->k &&
           bytes_eq(x->name, y->name) && bytes_eq(x->addr, y->addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a[WIRE_MAX_FRAME], b[WIRE_MAX_FRAME];
    static wire_route_entry ea[WIRE_ROUTE_MAX];
    wire_msg m, m2;
    size_t alen, blen;
    uint32_t na = 0;
    int over = 0;

    if (wire_msg_decode(data, size, &m) != 0 || !wire_route_type(m.type))
        return 0;
    CHECK(wire_mp_check(data, size, WIRE_MAX_DEPTH) == 0);

    switch (m.type) {
    case WIRE_T_ROUTE:
        CHECK(m.u.route.count <= WIRE_ROUTE_MAX);
        na = entries(&m.u.route, ea, &over);
        CHECK(na == m.u.route.count);
        /* The encoder takes entries as an array, as the node gives them. */
        m.u.route.entries = ea;
        break;
    case WIRE_T_ROUTED:
        CHECK(m.u.routed.src != NULL && m.u.routed.dst != NULL);
        CHECK(m.u.routed.hops <= WIRE_ROUTE_INFINITY);
        CHECK(m.u.routed.box.len >= WIRE_ROUTED_SEAL &&
              m.u.routed.box.ptr != NULL);
        break;
    default: /* TRACE, TRACE_REPLY */
        CHECK(m.u.trace.src != NULL && m.u.trace.dst != NULL);
        CHECK(m.u.trace.hops <= WIRE_ROUTE_INFINITY);
        CHECK(m.u.trace.k >= 1 && m.u.trace.k <= WIRE_ROUTE_INFINITY);
        CHECK(m.u.trace.name.len <= WIRE_MAX_NAME &&
              m.u.trace.addr.len <= WIRE_TRACE_ADDR);
        CHECK(m.type == WIRE_T_TRACE_REPLY ||
              (m.u.trace.name.len == 0 && m.u.trace.addr.len == 0));
        break;
    }

    size_t bound = wire_msg_bound(&m);
    CHECK(bound <= sizeof a);
    int rc = wire_msg_encode(&m, a, bound, &alen);
    if (over) { /* an absurd metric: the encoder never writes one */
        CHECK(rc != 0);
        return 0;
    }
    CHECK(rc == 0 && alen <= bound);
    CHECK(wire_msg_decode(a, alen, &m2) == 0);
    CHECK(same(&m, &m2, ea, na));
    if (m2.type == WIRE_T_ROUTE) {
        static wire_route_entry e2[WIRE_ROUTE_MAX];
        entries(&m2.u.route, e2, &over);
        m2.u.route.entries = e2;
    }
    CHECK(wire_msg_encode(&m2, b, sizeof b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    return 0;
}
