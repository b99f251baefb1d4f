/* Layer base (node/LAYERS).
 * fault.c: the one place where tests inject faults into the node's own
 * I/O (here: the store's writes, to play a full disk), so that no
 * production struct carries test state beyond one pointer. */
#include "node/base/base.h"

#include <errno.h>
#include <stdlib.h>

struct node_fault {
    int store_err;        /* the error the store's writes fail with */
    uint64_t store_after; /* writes that still succeed before that */
    uint64_t accept_fail; /* accepted connections still to find no memory */
    bool no_reannounce;   /* no extra beacon on hearing a new peer */
    unsigned ovl_loss;    /* area: scale (#13): SWIM messages lost, in 1000 */
};

static struct node_fault *fault_get(confab_node *n)
{
    if (n->fault == NULL)
        n->fault = calloc(1, sizeof *n->fault);
    return n->fault;
}

int node_fault_set_store_write(confab_node *n, int err, uint64_t after)
{
    if (n->fault == NULL) {
        n->fault = calloc(1, sizeof *n->fault);
        if (n->fault == NULL)
            return -ENOMEM;
    }
    n->fault->store_err = err;
    n->fault->store_after = after;
    return 0;
}

int node_fault_store_write(confab_node *n)
{
    struct node_fault *f = n->fault;
    if (f == NULL || f->store_err == 0)
        return 0;
    if (f->store_after > 0) {
        f->store_after--;
        return 0;
    }
    return f->store_err;
}

int node_fault_set_accept_alloc(confab_node *n, uint64_t count)
{
    struct node_fault *f = fault_get(n);
    if (f == NULL)
        return -ENOMEM;
    f->accept_fail = count;
    return 0;
}

bool node_fault_accept_alloc(confab_node *n)
{
    struct node_fault *f = n->fault;
    if (f == NULL || f->accept_fail == 0)
        return false;
    f->accept_fail--;
    return true;
}

int node_fault_set_no_reannounce(confab_node *n, bool off)
{
    struct node_fault *f = fault_get(n);
    if (f == NULL)
        return -ENOMEM;
    f->no_reannounce = off;
    return 0;
}

bool node_fault_no_reannounce(const confab_node *n)
{
    return n->fault != NULL && n->fault->no_reannounce;
}

void node_fault_free(confab_node *n)
{
    free(n->fault);
    n->fault = NULL;
}

/* area: scale (#13) */
int node_fault_set_ovl_loss(confab_node *n, unsigned permille)
{
    struct node_fault *f = fault_get(n);
    if (f == NULL)
        return -ENOMEM;
    f->ovl_loss = permille > 1000 ? 1000 : permille;
    return 0;
}

bool node_fault_ovl_lost(confab_node *n)
{
    struct node_fault *f = n->fault;
    if (f == NULL || f->ovl_loss == 0)
        return false;
    uint16_t r;
    node_random(n, &r, sizeof r);
    return r % 1000u < f->ovl_loss;
}
