/* node/peers/ovl.h: what the overlay state machines share (HyParView,
 * Plumtree, SWIM: node/peers/hyparview.h, plumtree.h, swim.h): a node's id
 * and the caller's random source. The machines do no I/O and read no
 * clock: the caller passes events in and the time as now_ms, and carries
 * out the actions they append to a bounded queue. Same inputs and same
 * random numbers give the same actions, so a thousand of them can run in
 * one test, deterministically. */
#ifndef CONFAB_NODE_PEERS_OVL_H
#define CONFAB_NODE_PEERS_OVL_H

#include <stdint.h>
#include <string.h>

#define NODE_OVL_ID_BYTES 32u /* a node id: an X25519 public key */

typedef struct node_ovl_id {
    uint8_t b[NODE_OVL_ID_BYTES];
} node_ovl_id;

/* The caller's random source: returns 32 uniformly random bits. A test
 * passes a seeded generator; the node passes randombytes_random(). */
typedef uint32_t (*node_ovl_rand_cb)(void *user);

typedef struct node_ovl_rng {
    node_ovl_rand_cb next;
    void *user;
} node_ovl_rng;

static inline int node_ovl_id_eq(const node_ovl_id *a, const node_ovl_id *b)
{
    /* Public keys: memcmp is fine (not secret). */
    return memcmp(a->b, b->b, NODE_OVL_ID_BYTES) == 0;
}

/* A random number in [0, n); n > 0. The modulo bias (n is at most a few
 * thousand) does not matter for choosing peers. */
static inline uint32_t node_ovl_below(const node_ovl_rng *r, uint32_t n)
{
    return r->next(r->user) % n;
}

/* Index of id in v[0..n), or -1. */
static inline int node_ovl_find(const node_ovl_id *v, unsigned n,
                                const node_ovl_id *id)
{
    for (unsigned i = 0; i < n; i++)
        if (node_ovl_id_eq(&v[i], id))
            return (int)i;
    return -1;
}

#endif
