/* node/api/api.h -- layer api: the public confab_* functions over the rest.
 *
 * node.c makes, starts, stops and frees the node; home.c opens its home
 * directory (identity, store, inbox). Everything a program calls goes
 * through node/confab.h into this layer.
 *
 * Who may include it: node/api/ and node/app/ (node/LAYERS). */
#ifndef CONFAB_NODE_API_API_H
#define CONFAB_NODE_API_API_H

#include "node/messaging/messaging.h"

/* home.c */
int node_home_open(confab_node *n);
/* Compacts the store when it holds much more than is live. */
void node_home_tick(confab_node *n, uint64_t now);

#endif
