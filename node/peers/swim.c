/* node/peers/swim.c: SWIM (Das, Gupta, Motivala, DSN 2002) with Lifeguard
 * (Dadgar, Phillips, Currey, 2018), a state machine with no I/O. "SWIM n"
 * and "Lifeguard n" below are sections of the papers. */
#include "node/peers/swim.h"

#include <errno.h>

static node_swim_msg *push(node_swim_out *out, uint8_t kind,
                           const node_ovl_id *peer)
{
    if (out->n >= out->cap) {
        out->dropped++;
        return NULL;
    }
    node_swim_action *a = &out->a[out->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->peer = *peer;
    return &a->msg;
}

/* 1000 x log10(n), at least 1000 (memberlist's nodeScale: small networks
 * get the timeouts of ten nodes). */
static uint32_t log10_milli(uint32_t n)
{
    static const uint16_t lg[10] = {0,   0,   301, 477, 602,
                                    699, 778, 845, 903, 954};
    uint32_t whole = 0;
    while (n >= 10) {
        n /= 10;
        whole++;
    }
    uint32_t v = whole * 1000u + lg[n];
    return v < 1000u ? 1000u : v;
}

int node_swim_init(node_swim *s, const node_ovl_id *self,
                   const node_swim_config *cfg, node_ovl_rng rng,
                   node_swim_member *members, uint32_t cap, uint64_t now_ms)
{
    if (s == NULL || self == NULL || cfg == NULL || rng.next == NULL ||
        members == NULL || cap == 0)
        return -EINVAL;
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    node_swim_config *c = &s->cfg;
    c->interval_ms = c->interval_ms ? c->interval_ms : 1000;
    c->timeout_ms = c->timeout_ms ? c->timeout_ms : 500;
    c->suspicion_mult = c->suspicion_mult ? c->suspicion_mult : 4;
    c->suspicion_max_mult = c->suspicion_max_mult ? c->suspicion_max_mult : 6;
    c->retransmit_mult = c->retransmit_mult ? c->retransmit_mult : 4;
    c->gossip_ms = c->gossip_ms ? c->gossip_ms : 200;
    c->gossip_nodes = c->gossip_nodes ? c->gossip_nodes : 3;
    if (c->timeout_ms >= c->interval_ms ||
        c->gossip_nodes > NODE_SWIM_GOSSIP_MAX)
        return -EINVAL;
    s->self = *self;
    s->rng = rng;
    s->m = members;
    s->cap = cap;
    s->next_probe = now_ms + node_ovl_below(&rng, c->interval_ms);
    return 0;
}

static node_swim_member *find(const node_swim *s, const node_ovl_id *id)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (node_ovl_id_eq(&s->m[i].id, id))
            return &s->m[i];
    return NULL;
}

const node_swim_member *node_swim_get(const node_swim *s, const node_ovl_id *id)
{
    return find(s, id);
}

uint64_t node_swim_suspicion_ms(const node_swim *s, unsigned nconf)
{
    /* Lifeguard 4.3: max - (max - min) x log(C + 1) / log(K + 1), for
     * K = 3: log(C + 1) / log(4) is 0, 0.5, 0.792, 1. */
    static const uint16_t frac[NODE_SWIM_DOGPILE_K + 1] = {0, 500, 792, 1000};
    uint64_t min = (uint64_t)s->cfg.suspicion_mult * s->cfg.interval_ms *
                   log10_milli(s->n + 1) / 1000u;
    uint64_t max = min * s->cfg.suspicion_max_mult;
    if (nconf > NODE_SWIM_DOGPILE_K)
        nconf = NODE_SWIM_DOGPILE_K;
    return max - (max - min) * frac[nconf] / 1000u;
}

/* SWIM 4.1: an update is sent lambda x log10(N + 1) times; a newer one
 * about the same member replaces it; when the queue is full the one sent
 * most often goes. */
static void enqueue(node_swim *s, const node_swim_update *u)
{
    unsigned victim = 0;
    for (unsigned i = 0; i < s->nq; i++) {
        if (node_ovl_id_eq(&s->q[i].u.id, &u->id)) {
            s->q[i].u = *u;
            s->q[i].sent = 0;
            return;
        }
        if (s->q[i].sent > s->q[victim].sent)
            victim = i;
    }
    if (s->nq < NODE_SWIM_QUEUE_CAP)
        victim = s->nq++;
    s->q[victim].u = *u;
    s->q[victim].sent = 0;
}

static void gossip(node_swim *s, const node_swim_member *mb,
                   const node_ovl_id *from)
{
    node_swim_update u;
    u.id = mb->id;
    u.state = mb->state;
    u.inc = mb->inc;
    u.from = *from;
    enqueue(s, &u);
}

static void gossip_self(node_swim *s)
{
    node_swim_update u;
    u.id = s->self;
    u.state = NODE_SWIM_ALIVE;
    u.inc = s->inc;
    u.from = s->self;
    enqueue(s, &u);
}

/* Fills m's piggyback: the buddy update first (Lifeguard 4.4: a suspect
 * we ping hears that it is suspected, so it can refute), then the updates
 * sent least often. */
static void piggyback(node_swim *s, node_swim_msg *m, const node_ovl_id *to)
{
    uint32_t limit =
        s->cfg.retransmit_mult * (log10_milli(s->n + 1) + 999u) / 1000u;
    node_swim_member *t = find(s, to);
    if (t != NULL && t->state == NODE_SWIM_SUSPECT) {
        node_swim_update *u = &m->upd[m->n++];
        u->id = t->id;
        u->state = t->state;
        u->inc = t->inc;
        u->from = s->self;
    }
    while (m->n < NODE_SWIM_PIGGYBACK && s->nq > 0) {
        unsigned best = NODE_SWIM_QUEUE_CAP;
        for (unsigned i = 0; i < s->nq; i++) {
            int taken = 0;
            for (unsigned k = 0; k < m->n; k++)
                taken |= node_ovl_id_eq(&m->upd[k].id, &s->q[i].u.id);
            if (!taken &&
                (best == NODE_SWIM_QUEUE_CAP || s->q[i].sent < s->q[best].sent))
                best = i;
        }
        if (best == NODE_SWIM_QUEUE_CAP)
            break;
        m->upd[m->n++] = s->q[best].u;
        if (++s->q[best].sent >= limit)
            s->q[best] = s->q[--s->nq];
    }
}

static void send(node_swim *s, const node_ovl_id *to, uint8_t type,
                 uint32_t seq, const node_ovl_id *target, node_swim_out *out)
{
    node_swim_msg *m = push(out, NODE_SWIM_A_SEND, to);
    if (m == NULL)
        return;
    m->type = type;
    m->seq = seq;
    if (target != NULL)
        m->target = *target;
    piggyback(s, m, to);
}

static void lhm_up(node_swim *s)
{
    if (s->lhm < NODE_SWIM_LHM_MAX)
        s->lhm++;
}

static void lhm_down(node_swim *s)
{
    if (s->lhm > 0)
        s->lhm--;
}

static void set_state(node_swim *s, node_swim_member *mb, uint8_t state,
                      uint32_t inc, uint64_t now_ms, node_swim_out *out)
{
    if (mb->state == NODE_SWIM_SUSPECT)
        s->nsuspect--;
    mb->state = state;
    mb->inc = inc;
    mb->nconf = 0;
    static const uint8_t kind[] = {NODE_SWIM_A_ALIVE, NODE_SWIM_A_SUSPECT,
                                   NODE_SWIM_A_DOWN};
    push(out, kind[state], &mb->id);
    if (state == NODE_SWIM_SUSPECT) {
        s->nsuspect++;
        mb->suspect_since = (uint32_t)now_ms;
        s->stats.suspected++;
    } else if (state == NODE_SWIM_DEAD) {
        s->stats.declared_down++;
    }
}

int node_swim_learn(node_swim *s, const node_ovl_id *id, node_swim_out *out)
{
    if (node_ovl_id_eq(id, &s->self) || find(s, id) != NULL)
        return 0;
    if (s->n >= s->cap) {
        s->stats.members_full++;
        return -ENOSPC;
    }
    node_swim_member *mb = &s->m[s->n++];
    memset(mb, 0, sizeof *mb);
    mb->id = *id;
    push(out, NODE_SWIM_A_ALIVE, id);
    return 0;
}

int node_swim_add(node_swim *s, const node_ovl_id *id, node_swim_out *out)
{
    int rc = node_swim_learn(s, id, out);
    node_swim_member *mb = find(s, id);
    if (mb != NULL)
        mb->heard = 1;
    return rc;
}

/* Counts an independent suspicion (Lifeguard 4.3). Returns 1 when it is
 * new: like memberlist, a new confirmation is gossiped on, so that the
 * others' timeouts shrink too. */
static int confirm(node_swim_member *mb, const node_ovl_id *from)
{
    uint16_t tag;
    memcpy(&tag, from->b, sizeof tag);
    for (unsigned i = 0; i < mb->nconf; i++)
        if (mb->conf[i] == tag)
            return 0;
    if (mb->nconf >= NODE_SWIM_DOGPILE_K)
        return 0;
    mb->conf[mb->nconf++] = tag;
    return 1;
}

/* SWIM 4.2 and its order of precedence, with memberlist's rule that an
 * ALIVE of a higher incarnation brings a dead member back (a node that
 * was declared dead wrongly can return). */
static void apply_update(node_swim *s, const node_swim_update *u,
                         uint64_t now_ms, node_swim_out *out)
{
    if (u->state > NODE_SWIM_DEAD) {
        s->stats.refused++;
        return;
    }
    if (node_ovl_id_eq(&u->id, &s->self)) {
        /* Refute (SWIM 4.2); Lifeguard 4.2 counts it against our own
         * health: if we were suspected, we may be the slow one. */
        if (u->state != NODE_SWIM_ALIVE && u->inc >= s->inc) {
            s->inc = u->inc + 1;
            s->stats.refuted++;
            lhm_up(s);
            gossip_self(s);
        }
        return;
    }
    node_swim_member *mb = find(s, &u->id);
    if (mb == NULL) {
        if (u->state != NODE_SWIM_ALIVE || node_swim_learn(s, &u->id, out) != 0)
            return;
        mb = &s->m[s->n - 1]; /* node_swim_learn appends */
        mb->inc = u->inc;
        gossip(s, mb, &s->self);
        return;
    }
    switch (u->state) {
    case NODE_SWIM_ALIVE:
        if (u->inc > mb->inc) {
            set_state(s, mb, NODE_SWIM_ALIVE, u->inc, now_ms, out);
            gossip(s, mb, &s->self);
        }
        break;
    case NODE_SWIM_SUSPECT:
        if (mb->state == NODE_SWIM_DEAD || u->inc < mb->inc)
            break;
        if (mb->state == NODE_SWIM_SUSPECT && u->inc == mb->inc) {
            if (confirm(mb, &u->from)) /* Lifeguard 4.3: dogpile */
                gossip(s, mb, &u->from);
            break;
        }
        set_state(s, mb, NODE_SWIM_SUSPECT, u->inc, now_ms, out);
        confirm(mb, &u->from);
        gossip(s, mb, &u->from);
        break;
    case NODE_SWIM_DEAD:
        if (mb->state != NODE_SWIM_DEAD && u->inc >= mb->inc) {
            set_state(s, mb, NODE_SWIM_DEAD, u->inc, now_ms, out);
            gossip(s, mb, &s->self);
        }
        break;
    }
}

static void on_ping_req(node_swim *s, const node_ovl_id *from,
                        const node_swim_msg *m, uint64_t now_ms,
                        node_swim_out *out)
{
    if (node_ovl_id_eq(&m->target, &s->self) ||
        node_ovl_id_eq(&m->target, from)) {
        s->stats.refused++;
        return;
    }
    if (s->nrelay >= NODE_SWIM_RELAY_CAP) {
        s->stats.relays_full++;
        return;
    }
    node_swim_relay *r = &s->relay[s->nrelay++];
    r->requester = *from;
    r->target = m->target;
    r->req_seq = m->seq;
    r->seq = ++s->seq;
    /* Lifeguard 4.2: a NACK at 80% of the timeout tells the requester
     * that we are alive and the target did not answer. */
    r->nack_at = now_ms + (uint64_t)s->cfg.timeout_ms * 4u / 5u;
    send(s, &m->target, NODE_SWIM_PING, r->seq, NULL, out);
}

static void on_ack(node_swim *s, const node_ovl_id *from,
                   const node_swim_msg *m, node_swim_out *out)
{
    for (unsigned i = 0; i < s->nrelay; i++) {
        node_swim_relay *r = &s->relay[i];
        if (r->seq == m->seq && node_ovl_id_eq(&r->target, from)) {
            send(s, &r->requester, NODE_SWIM_ACK, r->req_seq, NULL, out);
            *r = s->relay[--s->nrelay];
            return;
        }
    }
    /* The probe's own seq, not the counter: PINGs relayed for others
     * since it was sent took later values of the counter, and their
     * turn must not make our target's ACK look stale. */
    if (s->probing && !s->acked && m->seq == s->probe_seq &&
        (node_ovl_id_eq(from, &s->target) || s->indirect))
        s->acked = 1;
}

void node_swim_recv(node_swim *s, const node_ovl_id *from,
                    const node_swim_msg *m, uint64_t now_ms, node_swim_out *out)
{
    if (m->n > NODE_SWIM_PIGGYBACK || node_ovl_id_eq(from, &s->self)) {
        s->stats.refused++;
        return;
    }
    node_swim_member *sender = find(s, from);
    if (sender != NULL)
        sender->heard = 1;
    for (unsigned i = 0; i < m->n; i++)
        apply_update(s, &m->upd[i], now_ms, out);
    switch (m->type) {
    case NODE_SWIM_PING:
        send(s, from, NODE_SWIM_ACK, m->seq, NULL, out);
        break;
    case NODE_SWIM_PING_REQ:
        on_ping_req(s, from, m, now_ms, out);
        break;
    case NODE_SWIM_ACK:
        on_ack(s, from, m, out);
        break;
    case NODE_SWIM_GOSSIP:
        break; /* the updates were all it carried */
    case NODE_SWIM_NACK:
        if (s->probing && s->indirect && m->seq == s->probe_seq &&
            s->nacks < s->nacks_expected)
            s->nacks++;
        break;
    default:
        s->stats.refused++;
        break;
    }
}

/* SWIM 4.3: the next live member in a round-robin over the list,
 * reshuffled at each wrap, so that every member is probed within 2N - 1
 * periods. */
static node_swim_member *next_target(node_swim *s)
{
    for (uint32_t tries = 0; tries < s->n; tries++) {
        if (s->next >= s->n) {
            s->next = 0;
            for (uint32_t i = s->n; i > 1; i--) {
                uint32_t j = node_ovl_below(&s->rng, i);
                node_swim_member t = s->m[i - 1];
                s->m[i - 1] = s->m[j];
                s->m[j] = t;
            }
        }
        node_swim_member *mb = &s->m[s->next++];
        if (mb->state != NODE_SWIM_DEAD && mb->heard)
            return mb;
    }
    return NULL;
}

/* The end of a period: Lifeguard 4.2 scores the probe (a success lowers
 * the multiplier; a failure, and each NACK that did not come, raise it),
 * SWIM suspects a target that did not answer. */
static void end_probe(node_swim *s, uint64_t now_ms, node_swim_out *out)
{
    if (!s->probing)
        return;
    s->probing = 0;
    if (s->acked) {
        lhm_down(s);
        return;
    }
    lhm_up(s);
    if (s->indirect && s->nacks < s->nacks_expected)
        lhm_up(s);
    node_swim_member *mb = find(s, &s->target);
    if (mb == NULL || mb->state == NODE_SWIM_DEAD)
        return;
    if (mb->state == NODE_SWIM_ALIVE)
        set_state(s, mb, NODE_SWIM_SUSPECT, mb->inc, now_ms, out);
    /* Our own failed probe of a suspect confirms the suspicion. */
    if (confirm(mb, &s->self))
        gossip(s, mb, &s->self);
}

static void start_indirect(node_swim *s, node_swim_out *out)
{
    s->indirect = 1;
    s->stats.indirect++;
    for (unsigned k = 0; k < NODE_SWIM_INDIRECT * 4u &&
                         s->nacks_expected < NODE_SWIM_INDIRECT && s->n > 1;
         k++) {
        node_swim_member *h = &s->m[node_ovl_below(&s->rng, s->n)];
        if (h->state != NODE_SWIM_ALIVE || !h->heard ||
            node_ovl_id_eq(&h->id, &s->target))
            continue;
        s->nacks_expected++;
        send(s, &h->id, NODE_SWIM_PING_REQ, s->probe_seq, &s->target, out);
    }
}

static void run_suspicions(node_swim *s, uint64_t now_ms, node_swim_out *out)
{
    for (uint32_t i = 0; i < s->n && s->nsuspect > 0; i++) {
        node_swim_member *mb = &s->m[i];
        if (mb->state != NODE_SWIM_SUSPECT)
            continue;
        uint32_t age = (uint32_t)now_ms - mb->suspect_since;
        if (age < node_swim_suspicion_ms(s, mb->nconf))
            continue;
        set_state(s, mb, NODE_SWIM_DEAD, mb->inc, now_ms, out);
        gossip(s, mb, &s->self);
    }
}

static void gossip_round(node_swim *s, uint64_t now_ms, node_swim_out *out)
{
    if (now_ms < s->next_gossip)
        return;
    s->next_gossip = now_ms + s->cfg.gossip_ms;
    for (unsigned k = 0; k < s->cfg.gossip_nodes && s->nq > 0 && s->n > 0;
         k++) {
        node_swim_member *mb = &s->m[node_ovl_below(&s->rng, s->n)];
        if (mb->state != NODE_SWIM_DEAD)
            send(s, &mb->id, NODE_SWIM_GOSSIP, 0, NULL, out);
    }
}

void node_swim_tick(node_swim *s, uint64_t now_ms, node_swim_out *out)
{
    gossip_round(s, now_ms, out);
    for (unsigned i = 0; i < s->nrelay;) {
        node_swim_relay *r = &s->relay[i];
        if (now_ms < r->nack_at) {
            i++;
            continue;
        }
        send(s, &r->requester, NODE_SWIM_NACK, r->req_seq, NULL, out);
        *r = s->relay[--s->nrelay];
    }
    if (s->probing && !s->acked && !s->indirect && now_ms >= s->probe_deadline)
        start_indirect(s, out);
    run_suspicions(s, now_ms, out);
    if (now_ms < s->next_probe)
        return;
    end_probe(s, now_ms, out);
    /* Lifeguard 4.2: the period and the timeout grow with the local
     * health multiplier: a slow node waits longer before it accuses. */
    uint64_t mult = s->lhm + 1u;
    s->next_probe = now_ms + s->cfg.interval_ms * mult;
    node_swim_member *t = next_target(s);
    if (t == NULL)
        return;
    s->probing = 1;
    s->acked = 0;
    s->indirect = 0;
    s->nacks = 0;
    s->nacks_expected = 0;
    s->target = t->id;
    s->probe_seq = ++s->seq;
    s->probe_deadline = now_ms + s->cfg.timeout_ms * mult;
    s->stats.probes++;
    send(s, &t->id, NODE_SWIM_PING, s->probe_seq, NULL, out);
}
