/* Layer api (node/LAYERS).
 * about.c: what a node is and how it is set up (confab_node_about_get),
 * for `confab status`: the answers to "why does it see no peer?"; and
 * confab_forget(), giving up on a peer. */
#include "node/api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef CONFAB_VERSION
#define CONFAB_VERSION "unknown"
#endif

void confab_node_about_get(const confab_node *n, confab_node_about *out)
{
    memset(out, 0, sizeof *out);
    out->version = CONFAB_VERSION;
    if (n->state != NODE_NEW)
        out->uptime_ms = node_now_ms(n) - n->started_ms;
    out->private_network = !n->netkey->is_public;
    node_netkey_fingerprint(n, out->netkey_fp);
    out->bind_addr = n->bind_addr;
    out->port = n->port;
    out->discovery = n->cfg.discovery != 0;
    out->discovery_port = n->discovery_port;
    out->n_targets = n->n_bcast;
    size_t cap = sizeof out->targets / sizeof out->targets[0];
    for (size_t i = 0; i < n->n_bcast && i < cap; i++) {
        char ip[INET_ADDRSTRLEN] = "?";
        (void)inet_ntop(AF_INET, &n->bcast[i].sin_addr, ip, sizeof ip);
        snprintf(out->targets[i], sizeof out->targets[i], "%s:%u", ip,
                 (unsigned)ntohs(n->bcast[i].sin_port));
    }
    uint8_t none[1][CONFAB_ID_BYTES];
    size_t count = 0;
    out->allow_list = confab_allowed(n, none, 0, &count) == 0;
    out->n_allowed = out->allow_list ? count : 0;
    out->ping_interval_ms = n->cfg.ping_interval_ms;
    out->peer_timeout_ms = n->cfg.peer_timeout_ms;
    out->anycast_timeout_ms = n->cfg.anycast_timeout_ms;
    out->max_message = n->cfg.max_message;
}

int confab_forget(confab_node *n, const uint8_t id[CONFAB_ID_BYTES])
{
    node_peer *p = node_peer_find(n, id);
    if (p == NULL)
        return -ENOENT;
    if (p->conn != NULL || p->switching)
        return -EBUSY;
    if (!p->gone)
        node_peer_give_up(n, p, "forgotten (confab forget)");
    return 0;
}
