/* cli/testnet_scale.h: what `confab testnet` adds for large networks
 * (#13): the descriptor check, progress on stderr while the network forms,
 * and the report of --measure. cli/testnet.c uses it. */
#ifndef CONFAB_CLI_TESTNET_SCALE_H
#define CONFAB_CLI_TESTNET_SCALE_H

#include "cli/cli.h"

#include "node/testnet.h"

/* Makes sure this process may open the descriptors `nodes` nodes made with
 * cfg need, raising its own soft limit up to the hard one. Returns CLI_OK,
 * or CLI_FAILED after saying what is needed and how to get it. */
int tn_scale_fds(cli_ctx *ctx, const confab_config *cfg, unsigned nodes);

/* Progress on stderr, at most once a second (a confab_testnet_measure_opts
 * progress callback; user: unused). */
void tn_scale_progress(const confab_testnet_progress *p, void *user);

/* Waits until the network has formed, with progress on stderr: the full
 * mesh when each node is to link every other (links_each, from
 * confab_testnet_links_per_node, is the size less one), else every node
 * knowing every other (a link or a route). *full_mesh says which.
 * Returns 0 or -ETIMEDOUT. */
int tn_scale_wait_formed(confab_testnet *tn, unsigned links_each,
                         unsigned timeout_ms, bool *full_mesh);

/* --measure: measures the started network (confab_testnet_measure) and
 * prints the report, for a person or as one JSON object. before: the
 * process's memory before the network was made. Returns CLI_OK when the
 * network formed and the broadcast and every unicast arrived (and were
 * acknowledged), CLI_TIMEOUT when something did not in time, CLI_FAILED
 * else. */
int tn_scale_measure(cli_ctx *ctx, confab_testnet *tn, uint64_t seed,
                     unsigned pairs, unsigned timeout_ms,
                     const confab_testnet_memory *before);

#endif
