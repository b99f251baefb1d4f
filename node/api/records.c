/* Layer api (node/LAYERS).
 * records.c: the one owner of each record type of the store
 * (node_record_type, node/store/store.h): its name and the function that
 * replays it. home.c replays the store through this table; the store
 * reads the names for its log. */
#include "node/api/api.h"

static int inbox_replay(confab_node *n, uint8_t type, const uint8_t *ref,
                        const uint8_t *body, size_t len)
{
    (void)ref;
    return node_inbox_replay(n, type, body, len);
}

static int groups_replay(confab_node *n, uint8_t type, const uint8_t *ref,
                         const uint8_t *body, size_t len)
{
    (void)ref;
    return node_groups_replay(n, type, body, len);
}

#define INBOX    "node/store/inbox.c"
#define GROUPS   "node/messaging/groups.c"
#define DELIVERY "node/messaging/delivery.c"

const node_record_type node_record_types[NODE_REC_MAX + 1] = {
    [NODE_REC_INBOX_PUT] = {"INBOX_PUT", INBOX, inbox_replay},
    [NODE_REC_INBOX_READ] = {"INBOX_READ", INBOX, inbox_replay},
    [NODE_REC_GROUP_JOIN] = {"GROUP_JOIN", GROUPS, groups_replay},
    [NODE_REC_GROUP_LEAVE] = {"GROUP_LEAVE", GROUPS, groups_replay},
    [NODE_REC_EPOCH] = {"EPOCH", DELIVERY, node_delivery_replay},
    [NODE_REC_OUT_PUT] = {"OUT_PUT", DELIVERY, node_delivery_replay},
    [NODE_REC_OUT_ACK] = {"OUT_ACK", DELIVERY, node_delivery_replay},
    [NODE_REC_OUT_EXPIRE] = {"OUT_EXPIRE", DELIVERY, node_delivery_replay},
    [NODE_REC_TX] = {"TX", DELIVERY, node_delivery_replay},
    [NODE_REC_RX] = {"RX", DELIVERY, node_delivery_replay},
    [NODE_REC_ANY_PUT] = {"ANY_PUT", DELIVERY, node_delivery_replay},
    [NODE_REC_ANY_DONE] = {"ANY_DONE", DELIVERY, node_delivery_replay},
    [NODE_REC_ANY_SEEN] = {"ANY_SEEN", DELIVERY, node_delivery_replay},
};
