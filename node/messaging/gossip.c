/* Layer messaging (node/LAYERS).
 * gossip.c: broadcasts past the mesh threshold (#13). The source's DATA
 * (kind 1, one frame) travels whole inside Plumtree's GOSSIP along the
 * overlay's tree (node/peers/overlay.c), and is delivered at each node as
 * if its source had sent it over a link: one copy per node, instead of
 * one sealed envelope per node from the source (routed.c).
 *
 * Hop by hop it is protected by the links' Noise encryption; it is not
 * sealed end to end, as a sealed copy per receiver is exactly the cost
 * the tree saves. The source is the GOSSIP's `o`, which only members
 * relay (docs/ARCHITECTURE.md, docs/SECURITY.md say what that trusts). */
#include "node/messaging/messaging.h"

#include "node/peers/overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int node_gossip_broadcast(confab_node *n, const node_body *b, size_t *sent)
{
    if (!node_overlay_on(n))
        return -ENOTSUP;
    wire_msg m;
    node_body_broadcast_msg(b, &m);
    size_t bound = wire_data_bound(0, b->ct_len, b->len);
    if (bound > WIRE_MAX_PLAINTEXT - NODE_OVL_GOSSIP_OVERHEAD)
        return -ENOTSUP; /* over one frame: links and routes, as below */
    uint8_t *map = malloc(bound);
    if (map == NULL)
        return -ENOMEM;
    size_t len;
    int rc = wire_msg_encode(&m, map, bound, &len);
    if (rc == 0)
        rc = node_overlay_broadcast(n, b->id, map, len);
    free(map);
    if (rc == -EMSGSIZE)
        return -ENOTSUP;
    if (rc < 0)
        return rc;
    *sent = (size_t)rc;
    return 0;
}

int node_gossip_deliver(confab_node *n, const uint8_t *origin,
                        const uint8_t *map, size_t len, unsigned hops)
{
    wire_msg m;
    if (wire_msg_decode(map, len, &m) != 0 || m.type != WIRE_T_DATA ||
        m.u.data.kind != WIRE_K_BROADCAST || m.u.data.fragmented)
        return -EPROTO;
    /* Only a source in the table: a made-up `o` takes no place in it. */
    if (node_peer_find(n, origin) == NULL)
        return -EPROTO;
    return node_routed_deliver(n, origin, 0, &m, hops);
}

int node_gossip_send(confab_node *n, const uint8_t *to, const wire_msg *m)
{
    return node_route_send_ctl(n, to, m);
}
