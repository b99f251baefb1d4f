/* tests/unit/ovl_sim.h: what the overlay simulations share (test_hyparview,
 * test_plumtree, test_swim, bench_overlay): a seeded random source and
 * node ids that carry their index. Header only, static functions. */
#ifndef CONFAB_TESTS_OVL_SIM_H
#define CONFAB_TESTS_OVL_SIM_H

#include "node/peers/ovl.h"

#include <stdint.h>
#include <string.h>

/* splitmix64: deterministic, good enough to pick peers. */
static inline uint32_t sim_rand(void *user)
{
    uint64_t *s = user;
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Node i's id: its index in the first four bytes, then filler. */
static inline node_ovl_id sim_id(uint32_t i)
{
    node_ovl_id id;
    for (unsigned k = 0; k < NODE_OVL_ID_BYTES; k++)
        id.b[k] = (uint8_t)(0xa5u ^ (k * 7u));
    memcpy(id.b, &i, sizeof i);
    return id;
}

static inline uint32_t sim_index(const node_ovl_id *id)
{
    uint32_t i;
    memcpy(&i, id->b, sizeof i);
    return i;
}

#endif
