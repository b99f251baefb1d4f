/* node/node.h -- the umbrella: every layer of node/ at once.
 *
 * For the few that need all of it: the tests that look inside a node
 * (tests/unit, tests/net, tests/fuzz). A file of node/ includes its own
 * layer's header instead (node/LAYERS says which it may include). */
#ifndef CONFAB_NODE_NODE_H
#define CONFAB_NODE_NODE_H

#include "node/app/app.h"

#endif
