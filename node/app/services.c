/* Layer app (node/LAYERS).
 * services.c: the services above the api layer, as the node sees them
 * (node_service, node/base/base.h): the control socket. The node starts,
 * ticks, stops and frees them and hands them every event through this
 * table only, so that no file below app names a function of app. */
#include "node/app/app.h"

static int control_start(confab_node *n)
{
    return n->control_path == NULL ? 0 : node_control_start(n);
}

static void control_tick(confab_node *n, uint64_t now)
{
    if (n->control != NULL)
        node_control_tick(n, now);
}

static const node_service control_service = {
    "control",    control_start,      node_control_stop, node_control_free,
    control_tick, node_control_event, node_control_log,
};

const node_service *const node_services[] = {&control_service, NULL};
