/* Layer base (node/LAYERS).
 * timerq.c: deadlines on a hashed timing wheel (timerq.h). */
#include "node/base/timerq.h"

#include <errno.h>
#include <stdlib.h>

#define MASK ((uint64_t)NODE_TIMERQ_SLOTS - 1u)

static uint64_t tick_of(uint64_t t)
{
    return t >> NODE_TIMERQ_SHIFT;
}

int node_timerq_arm(node_timerq *q, node_timer *t, uint64_t due)
{
    node_timerq_disarm(q, t);
    if (q->slots == NULL) {
        q->slots = malloc(NODE_TIMERQ_SLOTS * sizeof *q->slots);
        if (q->slots == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < NODE_TIMERQ_SLOTS; i++)
            q->slots[i].prev = q->slots[i].next = &q->slots[i];
    }
    /* The cursor stays at or before every armed timer's slot, so that the
     * look from the cursor to now's slot sees every due one. */
    if (q->len == 0 || tick_of(due) < q->cursor)
        q->cursor = tick_of(due);
    node_timer *head = &q->slots[tick_of(due) & MASK];
    t->due = due;
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
    q->len++;
    return 0;
}

void node_timerq_disarm(node_timerq *q, node_timer *t)
{
    if (t->next == NULL)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
    q->len--;
}

node_timer *node_timerq_pop_due(node_timerq *q, uint64_t now)
{
    if (q->len == 0)
        return NULL;
    uint64_t last = tick_of(now);
    if (last < q->cursor)
        q->cursor = last; /* the clock went back: look from here */
    /* Each slot from the cursor to now's once; a gap longer than a turn
     * looks at every slot once. */
    uint64_t span = last - q->cursor;
    if (span >= NODE_TIMERQ_SLOTS)
        span = NODE_TIMERQ_SLOTS - 1u;
    for (uint64_t k = 0; k <= span; k++) {
        node_timer *head = &q->slots[(q->cursor + k) & MASK];
        for (node_timer *t = head->next; t != head; t = t->next) {
            if (t->due > now)
                continue; /* a later turn's */
            /* The slots before hold nothing due: start here next time. */
            q->cursor += k;
            node_timerq_disarm(q, t);
            return t;
        }
    }
    q->cursor = last;
    return NULL;
}

void node_timerq_free(node_timerq *q)
{
    if (q->slots != NULL)
        for (size_t i = 0; i < NODE_TIMERQ_SLOTS; i++) {
            node_timer *head = &q->slots[i];
            while (head->next != head)
                node_timerq_disarm(q, head->next);
        }
    free(q->slots);
    q->slots = NULL;
    q->len = 0;
    q->cursor = 0;
}
