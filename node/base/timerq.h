/* node/base/timerq.h -- layer base: deadlines, earliest first (#18).
 *
 * An indexed binary min-heap of timers embedded in their owners: arming,
 * disarming and taking the earliest cost O(log n), so a tick looks only at
 * what is due instead of walking everything that has a deadline. Timers
 * with the same deadline come out in the order they were armed.
 *
 * Who may include it: every file of node/ (it includes nothing of node/).
 * A zeroed node_timerq and node_timer are valid and empty/disarmed. */
#ifndef CONFAB_NODE_BASE_TIMERQ_H
#define CONFAB_NODE_BASE_TIMERQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct node_timer {
    uint64_t due;   /* any clock: the queue only compares */
    uint64_t order; /* set when armed: ties go in arming order */
    size_t slot;    /* 1 + its index in the heap; 0: disarmed */
} node_timer;

typedef struct node_timerq {
    node_timer **heap;
    size_t len, cap;
    uint64_t armed; /* arming counter, for order */
} node_timerq;

/* Arms t (disarming it first if armed) for due. 0, or -ENOMEM (t is then
 * disarmed). */
int node_timerq_arm(node_timerq *q, node_timer *t, uint64_t due);
/* Disarms t; nothing if it is not armed. */
void node_timerq_disarm(node_timerq *q, node_timer *t);
/* The earliest armed timer, or NULL. */
static inline node_timer *node_timerq_first(const node_timerq *q)
{
    return q->len > 0 ? q->heap[0] : NULL;
}
static inline bool node_timer_armed(const node_timer *t)
{
    return t->slot != 0;
}
static inline size_t node_timerq_len(const node_timerq *q)
{
    return q->len;
}
/* Frees the heap; the timers still armed are left disarmed. */
void node_timerq_free(node_timerq *q);

#endif
