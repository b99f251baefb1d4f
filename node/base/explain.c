/* Layer base (node/LAYERS).
 * explain.c: what the node tells a person about a set-up it cannot fix
 * itself. A node whose network key differs from its neighbours' sees no
 * peer and nothing fails loudly: beacons are dropped for their tag and
 * handshakes for their first message. Said once, then now and then, so
 * that the log of a node left running says it without flooding. */
#include "node/base/base.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void node_netkey_fingerprint(const confab_node *n, char out[17])
{
    /* Keyed by the network key, over a fixed string: equal keys give
     * equal fingerprints, and the fingerprint tells nothing of the key. */
    static const char what[] = "confab network key fingerprint v1";
    uint8_t fp[8];
    crypto_generichash(fp, sizeof fp, (const uint8_t *)what, sizeof what - 1,
                       n->netkey->key, SEC_KEY_BYTES);
    for (size_t i = 0; i < sizeof fp; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

void node_explain_other_network(confab_node *n, const char *what,
                                const struct sockaddr_storage *addr)
{
    uint64_t now = node_now_ms(n);
    if (n->other_net_warned != 0 &&
        now - n->other_net_warned < n->cfg.other_net_warn_ms) {
        n->other_net_quiet++;
        return;
    }
    char a[64] = "?", fp[17], more[64] = "";
    if (addr != NULL)
        (void)node_format_addr(addr, a, sizeof a);
    node_netkey_fingerprint(n, fp);
    if (n->other_net_warned != 0)
        snprintf(more, sizeof more, "; %" PRIu64 " more since the last warning",
                 n->other_net_quiet);
    node_log(n, CONFAB_LOG_WARN,
             "hearing %s from nodes of another network (from %s%s): check "
             "the network key: every node needs the same <home>/network.key "
             "(or none, for the public network); this node uses %s, "
             "fingerprint %s ('confab status' shows it)",
             strcmp(what, "beacon") == 0 ? "beacons" : "handshakes", a, more,
             n->netkey->is_public ? "the public network key"
                                  : "a private network key",
             fp);
    n->other_net_warned = now == 0 ? 1 : now;
    n->other_net_quiet = 0;
}
