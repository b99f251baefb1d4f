/* Layer base (node/LAYERS).
 * timerq.c: deadlines in an indexed binary min-heap (timerq.h). */
#include "node/base/timerq.h"

#include <errno.h>
#include <stdlib.h>

static bool before(const node_timer *a, const node_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void place(node_timerq *q, size_t i, node_timer *t)
{
    q->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(node_timerq *q, size_t i)
{
    node_timer *t = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, q->heap[parent]))
            break;
        place(q, i, q->heap[parent]);
        i = parent;
    }
    place(q, i, t);
}

static void sift_down(node_timerq *q, size_t i)
{
    node_timer *t = q->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->len)
            break;
        if (child + 1 < q->len && before(q->heap[child + 1], q->heap[child]))
            child++;
        if (!before(q->heap[child], t))
            break;
        place(q, i, q->heap[child]);
        i = child;
    }
    place(q, i, t);
}

int node_timerq_arm(node_timerq *q, node_timer *t, uint64_t due)
{
    node_timerq_disarm(q, t);
    if (q->len == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 64;
        node_timer **h = realloc(q->heap, cap * sizeof *h);
        if (h == NULL)
            return -ENOMEM;
        q->heap = h;
        q->cap = cap;
    }
    t->due = due;
    t->order = ++q->armed;
    q->heap[q->len++] = t;
    sift_up(q, q->len - 1);
    return 0;
}

void node_timerq_disarm(node_timerq *q, node_timer *t)
{
    if (t->slot == 0)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    node_timer *last = q->heap[--q->len];
    if (i == q->len)
        return; /* it was the last */
    place(q, i, last);
    /* The moved one may belong above or below its new place. */
    if (i > 0 && before(last, q->heap[(i - 1) / 2]))
        sift_up(q, i);
    else
        sift_down(q, i);
}

void node_timerq_free(node_timerq *q)
{
    for (size_t i = 0; i < q->len; i++)
        q->heap[i]->slot = 0;
    free(q->heap);
    q->heap = NULL;
    q->len = q->cap = 0;
}
