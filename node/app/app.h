/* node/app/app.h -- layer app: what sits on top of the node.
 *
 * The control socket (control.c), the test network (testnet.c) and the web
 * page (web.c, web_view.c, metrics.c), each a user of the api below it.
 *
 * Who may include it: node/app/ only (node/LAYERS). */
#ifndef CONFAB_NODE_APP_APP_H
#define CONFAB_NODE_APP_APP_H

#include "node/api/api.h"

/* control.c */
int node_control_start(confab_node *n);
void node_control_stop(confab_node *n);
void node_control_free(confab_node *n);
/* Sees every event before the program does. */
void node_control_event(confab_node *n, const confab_event *ev);
void node_control_tick(confab_node *n, uint64_t now);
/* A line the node logged, to the clients subscribed to "log". */
void node_control_log(confab_node *n, confab_log_level lvl, const char *line);

#endif
