/* node/api/wake.h -- when the node's tick must run next (wake.c, #18). */
#ifndef CONFAB_NODE_API_WAKE_H
#define CONFAB_NODE_API_WAKE_H

#include "node/api/api.h"

#define NODE_WAKE_MAX_MS 1000u /* the longest the tick sleeps */

/* The loop time (ms) at which the tick must next run when the node is
 * idle, at most NODE_WAKE_MAX_MS from now; 0 when it has work in progress
 * and the tick must run every tick_ms. */
uint64_t node_wake_due(confab_node *n, uint64_t now);

#endif
