/* Layer app (node/LAYERS).
 * metrics.c: the node's counters in the Prometheus text exposition format
 * (version 0.0.4), for /metrics. Names are stable: confab_<field of
 * confab_stats>, with _total for counters; every sample carries the node's
 * name as the label node (a testnet shows many nodes). docs/WEB.md lists
 * them. */
#include "node/app/web_int.h"

#include "node/app/app.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct stat_metric {
    const char *name; /* the field of confab_stats */
    bool gauge;       /* a level now, not a count since start */
    size_t off;
    const char *help;
} stat_metric;

#define C(f, h)                                                                \
    {                                                                          \
#f, false, offsetof(confab_stats, f), h                                \
    }
#define G(f, h)                                                                \
    {                                                                          \
#f, true, offsetof(confab_stats, f), h                                 \
    }

/* Every field of confab_stats, in its order. A new counter needs a row
 * here: test_web_metrics_cover_stats fails until it has one. */
static const stat_metric stats[] = {
    G(peers_up, "Peers linked now."),
    G(links_open, "Connections open now, in any state."),
    C(links_accepted, "Connections accepted."),
    C(links_dialed, "Connections dialed."),
    C(handshakes_failed, "Handshakes that failed, wrong network key included."),
    C(handshakes_timed_out, "Handshakes that did not finish in time."),
    C(links_refused_busy, "Connections refused: too many in handshake."),
    C(duplicate_links, "Connections closed by the tie-break between two."),
    C(protocol_errors, "Links cut for a protocol error."),
    C(msgs_sent, "Messages sent."),
    C(msgs_received, "Messages received."),
    C(bytes_sent, "Bytes sent on links, frames included."),
    C(bytes_received, "Bytes received on links, frames included."),
    C(sends_refused_full, "Sends refused with EAGAIN: a queue was full."),
    C(pings_sent, "Pings sent."),
    C(pongs_received, "Pongs received."),
    C(beacons_sent, "Discovery beacons sent."),
    C(beacons_received, "Beacons accepted."),
    C(beacons_dropped, "Beacons dropped, for any reason."),
    C(beacons_malformed, "Beacons dropped: bad shape or too long."),
    C(beacons_bad_tag, "Beacons dropped: another network key, or forged."),
    C(beacons_own, "Beacons dropped: this node's own."),
    C(beacons_rate_limited, "Beacons dropped: over the per-source rate."),
    C(peers_msgs_sent, "Peer exchange messages sent."),
    C(peers_msgs_received, "Peer exchange messages received."),
    C(group_msgs_dropped, "Group messages dropped: not a member."),
    C(anycast_failovers, "Anycasts moved on to the next member."),
    C(store_records_replayed, "Store records replayed at start."),
    C(store_bytes_discarded,
      "Store bytes discarded at start: torn or corrupt."),
    C(store_records_unknown, "Store records of a newer version, ignored."),
    C(store_compactions, "Store compactions."),
    C(inbox_refused_full, "Messages refused: the inbox was full."),
    G(outbox_msgs, "Unicasts waiting for an acknowledgement now."),
    C(retransmits, "Unicasts sent again."),
    C(duplicates_dropped, "Messages received twice, dropped."),
    C(out_of_order_dropped, "Messages ahead of a gap, dropped."),
    C(expired, "Unicasts whose time to live ran out."),
    C(ctl_clients_cut, "Control clients closed at a bound."),
    G(ctl_clients, "Control clients connected now."),
    /* The bounds' counters, as they land in confab_stats under the same
     * labels: */
    /* area: routing (#12) */
    G(routes, "Destinations reachable through other nodes now."),
    C(route_adverts_sent, "ROUTE messages sent."),
    C(route_adverts_received, "ROUTE messages taken."),
    C(route_adverts_dropped,
      "ROUTE messages over the rate from one peer, dropped."),
    C(route_entries_bad,
      "Route entries refused: a loop, a cost or a claimed id."),
    C(route_table_full, "New destinations refused: the route table was full."),
    C(route_peers_cut, "Links cut for bad routing input."),
    C(routed_sent, "Envelopes sealed and sent by this node."),
    C(routed_received, "Envelopes opened by this node."),
    C(routed_forwarded, "Envelopes relayed for other nodes."),
    C(routed_no_route, "Envelopes dropped: no route onwards."),
    C(routed_hops_exhausted, "Envelopes dropped: hop limit spent."),
    C(routed_forged, "Envelopes dropped: did not open (forged origin)."),
    C(routed_inner_bad, "Envelopes opened whose message broke the rules."),
    C(routed_relay_full, "Envelopes dropped: the next link was backed up."),
    C(traces_answered, "TRACE probes answered."),
    C(traces_dropped, "TRACE probes and replies dropped."),
    C(routed_not_allowed, "Envelopes dropped: an end not on the allow-list."),
    C(link_writes, "Writes handed to the kernel on all links."),

    /* area: request and reply (#19) */
    C(requests_sent, "Requests sent."),
    C(requests_answered, "Requests that had at least one reply."),
    C(requests_timed_out, "Requests that had no reply in time."),
    C(request_failovers, "Requests moved on to the next member."),
    C(requests_served, "Requests handed to a service."),
    C(requests_refused_busy, "Requests answered BUSY at a bound."),
    C(requests_no_service, "Requests for a service not served here."),
    C(requests_expired_in, "Requests the service did not answer in time."),
    G(requests_pending, "Requests waited on and held, now."),
    C(replies_unmatched, "Replies dropped: unknown, finished or unasked."),
    C(replies_duplicate, "Replies dropped: a second from one peer."),
    C(replies_oversized, "Replies dropped: over the request's limit."),
    C(requests_malformed, "Requests and replies that did not decode."),

    /* area: the first hour (#14) */
    C(handshakes_refused_key,
      "Handshakes refused: the peer holds another network key."),
    C(peers_gone, "Linked peers given up: down too long, or forgotten."),

    /* area: discovery on every interface (#16) */
    C(beacons_bad_addr, "Beacons dropped: they named an address no one can "
                        "dial."),
    C(peers_addr_refused,
      "PEERS entries refused: an address unusable from that link."),
    C(peers_addr_withheld,
      "PEERS entries not sent: the receiver could not use the address."),
    C(beacons6_sent, "IPv6 multicast beacons sent, one per interface."),
    C(beacons6_received, "Beacons heard over IPv6."),

    /* area: performance (#18) */
    C(timer_wakeups, "Times this node's timers woke the loop."),
    C(pings_spared, "Liveness pings not sent: the link was busy both ways."),
    C(peers_entries_sent, "Peer exchange entries sent (one peer each)."),
    C(peers_entries_received, "Peer exchange entries received."),
    C(frames_sent, "Transport messages sent on established links."),
    C(frames_batched, "Transport messages sent holding several messages."),
    C(frame_maps_sent, "Messages sent, over all transport messages."),
    C(frames_received, "Transport messages taken on established links."),
    C(frame_maps_received, "Messages taken, over all transport messages."),
    C(frames_batch_refused,
      "Links cut for a bad message after the first of a transport message."),

    /* area: one-copy (#18) */
    C(frags_in_place,
      "Fragments read from the socket straight into their message's buffer."),

    /* area: scale (#13) */
    G(overlay_on, "1 once the node is past mesh_threshold: partial mesh."),
    G(overlay_links, "Members of the overlay's active view (linked)."),
    G(overlay_passive, "Members of the overlay's passive view."),
    C(overlay_msgs_sent, "Overlay messages (t 30-32) sent."),
    C(overlay_msgs_received, "Overlay messages (t 30-32) taken."),
    C(overlay_refused, "Overlay messages that broke a rule: ignored."),
    C(overlay_view_changes, "Members in or out of the active view."),
    C(overlay_links_closed, "Links closed: not in the active view."),
    C(overlay_gossip_dup, "Broadcast copies received again (tree repair)."),
    C(overlay_grafts, "GRAFTs sent: an announced broadcast came late."),
    C(overlay_suspected, "Members this node suspected (SWIM)."),
    C(overlay_declared_down, "Members declared down (SWIM dead)."),
    C(overlay_refuted, "Suspicions of this node it refuted."),
    C(overlay_view_repairs, "DISCONNECTs sent to a peer that held this node "
                            "in its active view while this node did not."),

    /* bounds: links and what a member can make one hold */
    C(links_cut_tx_full,
      "Links cut: link_tx_bytes waited to be sent (the peer does not read)."),
    G(link_tx_peak, "Most bytes one link's transmit queue held."),
    C(pings_unanswered,
      "Links cut: a PING had no PONG within the peer timeout."),
    G(reasm_bytes, "Bytes of bodies in reassembly now."),
    G(reasm_peak, "Most bytes of bodies in reassembly at once."),
    C(reasm_dropped, "Bodies dropped at the reassembly bound."),
    C(bcast_repeats_dropped,
      "Broadcasts and multicasts received again, dropped."),

    /* bounds: the peer table and who may join */
    C(peers_evicted, "Never-linked peers dropped at max_known_peers."),
    C(peers_expired, "Never-linked peers forgotten after known_peer_ttl_ms."),
    C(peers_refused_full,
      "Peers not learned: every place in the table was held."),
    C(dials_rate_limited, "Dials to never-linked peers put off by dial_rate."),
    C(links_refused_source,
      "Connections refused: over max_handshakes_per_source."),
    C(handshakes_not_allowed, "Handshakes refused by the allow-list."),
    C(beacons_not_allowed,
      "Beacons dropped: from nodes not on the allow-list."),

    /* bounds: groups */
    C(group_members_cut, "Links cut: a member past max_groups_per_member."),
    C(group_total_cut, "Links cut: memberships in all past max_memberships."),
    G(group_memberships, "Group memberships of peers held now."),

    /* bounds: the store */
    C(store_records_lost, "Damaged store records skipped at start."),
    C(store_epoch_restarts, "New epochs drawn after store damage."),
    C(delivery_rebased, "Peer streams found rolled back and renumbered."),
    C(inbox_reads_refused, "Reads refused: a read mark could not be written."),

};

#undef C
#undef G

size_t node_metrics_stats_named(void)
{
    return sizeof stats / sizeof stats[0];
}

/* A label value: backslash, quote and newline escaped. */
static void label(web_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            web_buf_puts(b, "\\\\");
        else if (*p == '"')
            web_buf_puts(b, "\\\"");
        else if (*p == '\n')
            web_buf_puts(b, "\\n");
        else
            web_buf_put(b, p, 1);
    }
}

static void family(web_buf *b, const char *name, bool gauge, const char *help)
{
    web_buf_printf(b, "# HELP confab_%s %s\n# TYPE confab_%s %s\n", name, help,
                   name, gauge ? "gauge" : "counter");
}

static void sample_start(web_buf *b, const char *name, confab_node *node)
{
    web_buf_printf(b, "confab_%s{node=\"", name);
    label(b, confab_node_name(node));
    web_buf_puts(b, "\"");
}

typedef struct peer_metric {
    const char *name;
    bool gauge;
    const char *help;
} peer_metric;

static const peer_metric peer_metrics[] = {
    {"peer_up", true, "1 while the peer is linked, else 0."},
    {"peer_rtt_seconds", true,
     "Smoothed round trip to the peer; 0 before "
     "the first sample."},
    {"peer_msgs_sent_total", false, "Messages sent to the peer."},
    {"peer_msgs_received_total", false, "Messages received from the peer."},
    {"peer_bytes_sent_total", false,
     "Bytes sent to the peer, frames "
     "included."},
    {"peer_bytes_received_total", false,
     "Bytes received from the peer, "
     "frames included."},
    {"peer_queued_bytes", true, "Bytes waiting to be sent to the peer."},
    {"peer_outbox_msgs", true, "Unicasts to the peer not yet acknowledged."},
    {"peer_outbox_bytes", true,
     "Bytes of the unicasts to the peer not yet "
     "acknowledged."},
};

static void peer_value(web_buf *b, size_t k, const confab_peer_info *p)
{
    switch (k) {
    case 0:
        web_buf_printf(b, "%d", p->state == CONFAB_PEER_UP);
        return;
    case 1:
        web_buf_printf(b, "%.6f", (double)p->rtt_us / 1e6);
        return;
    }
    uint64_t v[] = {p->msgs_sent,      p->msgs_received, p->bytes_sent,
                    p->bytes_received, p->queued_bytes,  p->outbox_msgs,
                    p->outbox_bytes};
    web_buf_printf(b, "%llu", (unsigned long long)v[k - 2]);
}

static void peers_write(web_buf *b, confab_node *const *nodes, size_t n)
{
    confab_peer_info **pi = calloc(n ? n : 1, sizeof *pi);
    size_t *count = calloc(n ? n : 1, sizeof *count);
    if (pi == NULL || count == NULL) {
        b->failed = true;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        confab_peers(nodes[i], NULL, 0, &count[i]);
        pi[i] = calloc(count[i] ? count[i] : 1, sizeof **pi);
        if (pi[i] == NULL) {
            b->failed = true;
            goto out;
        }
        confab_peers(nodes[i], pi[i], count[i], &count[i]);
    }
    for (size_t k = 0; k < sizeof peer_metrics / sizeof peer_metrics[0]; k++) {
        family(b, peer_metrics[k].name, peer_metrics[k].gauge,
               peer_metrics[k].help);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < count[i]; j++) {
                char sid[17];
                web_short_id(pi[i][j].id, sid);
                sample_start(b, peer_metrics[k].name, nodes[i]);
                web_buf_printf(b, ",peer=\"%s\",peer_name=\"", sid);
                label(b, pi[i][j].name);
                web_buf_puts(b, "\"} ");
                peer_value(b, k, &pi[i][j]);
                web_buf_puts(b, "\n");
            }
    }
out:
    for (size_t i = 0; pi != NULL && i < n; i++)
        free(pi[i]);
    free(pi);
    free(count);
}

static void web_write(web_buf *b, const confab_web_stats *w)
{
    const struct {
        const char *name;
        bool gauge;
        uint64_t v;
        const char *help;
    } rows[] = {
        {"web_requests_total", false, w->requests, "HTTP requests answered."},
        {"web_connections", true, w->conns_open, "HTTP connections open now."},
        {"web_conns_refused_total", false, w->conns_refused,
         "HTTP connections refused: over the limit in all or per source."},
        {"web_conns_cut_total", false, w->conns_cut,
         "HTTP connections closed before a request was answered: too "
         "large, malformed or idle."},
        {"web_sse_clients", true, w->sse_clients,
         "Event-stream clients connected now."},
        {"web_sse_cut_total", false, w->sse_cut,
         "Event-stream clients cut: too many bytes queued unread."},
        {"web_sse_queued_bytes", true, w->sse_queued_bytes,
         "Bytes queued for event-stream clients now."},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        family(b, rows[i].name, rows[i].gauge, rows[i].help);
        web_buf_printf(b, "confab_%s %llu\n", rows[i].name,
                       (unsigned long long)rows[i].v);
    }
}

void node_metrics_write(web_buf *b, confab_node *const *nodes, size_t n,
                        const confab_web_stats *web)
{
    confab_stats *st = calloc(n ? n : 1, sizeof *st);
    if (st == NULL) {
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        confab_node_stats(nodes[i], &st[i]);
    for (size_t k = 0; k < sizeof stats / sizeof stats[0]; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", stats[k].name,
                 stats[k].gauge ? "" : "_total");
        family(b, name, stats[k].gauge, stats[k].help);
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&st[i] + stats[k].off, sizeof v);
            sample_start(b, name, nodes[i]);
            web_buf_printf(b, "} %llu\n", (unsigned long long)v);
        }
    }
    free(st);
    /* Queue depths the stats do not hold. */
    family(b, "inbox_msgs", true, "Unread messages in the inbox now.");
    for (size_t i = 0; i < n; i++) {
        sample_start(b, "inbox_msgs", nodes[i]);
        web_buf_printf(b, "} %zu\n", confab_inbox_count(nodes[i]));
    }
    family(b, "anycasts_pending", true, "Anycasts not yet taken by a member.");
    for (size_t i = 0; i < n; i++) {
        sample_start(b, "anycasts_pending", nodes[i]);
        web_buf_printf(b, "} %zu\n", nodes[i]->n_anycasts);
    }
    peers_write(b, nodes, n);
    web_write(b, web);
}
