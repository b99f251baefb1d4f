/* node/base/timerq.h -- layer base: many deadlines, cheaply (#18).
 *
 * A hashed timing wheel of timers embedded in their owners: arming and
 * disarming cost O(1) (a doubly linked list per slot), and taking the due
 * ones costs a visit of the slots the clock passed, plus one look at each
 * timer whose slot comes round before its deadline (once per turn of the
 * wheel, NODE_TIMERQ_SLOTS << NODE_TIMERQ_SHIFT units of the clock). So a
 * tick looks at what is due, not at everything that has a deadline, and
 * a message acknowledged at once costs two pointer writes.
 *
 * Timers come out by slot (the clock's units >> NODE_TIMERQ_SHIFT), and
 * within a slot in the order they were armed: the order of their
 * deadlines up to the slot's width.
 *
 * Who may include it: every file of node/ (it includes nothing of node/).
 * A zeroed node_timerq and node_timer are valid, empty and disarmed. */
#ifndef CONFAB_NODE_BASE_TIMERQ_H
#define CONFAB_NODE_BASE_TIMERQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_TIMERQ_SHIFT 16u   /* a slot: 65,536 units (65 ms of us) */
#define NODE_TIMERQ_SLOTS 1024u /* a turn: 67 s of us */

typedef struct node_timer {
    uint64_t due;                   /* any clock: the queue only compares */
    struct node_timer *prev, *next; /* in its slot; NULL: disarmed */
} node_timer;

typedef struct node_timerq {
    node_timer *slots; /* NODE_TIMERQ_SLOTS list heads, made at the first
                          arm */
    size_t len;
    uint64_t cursor; /* slots before this one hold nothing due */
} node_timerq;

/* Arms t (disarming it first if armed) for due. 0, or -ENOMEM (the first
 * arm makes the wheel; t is then disarmed). */
int node_timerq_arm(node_timerq *q, node_timer *t, uint64_t due);
/* Disarms t; nothing if it is not armed. */
void node_timerq_disarm(node_timerq *q, node_timer *t);
/* Disarms and returns a timer due at now or before, or NULL when none is. */
node_timer *node_timerq_pop_due(node_timerq *q, uint64_t now);
static inline bool node_timer_armed(const node_timer *t)
{
    return t->next != NULL;
}
static inline size_t node_timerq_len(const node_timerq *q)
{
    return q->len;
}
/* Frees the wheel; the timers still armed are left disarmed. */
void node_timerq_free(node_timerq *q);

#endif
