/* crypto/sec.c: libsodium set-up and the module's source of randomness. */
#include "crypto/sec.h"

#include <errno.h>
#include <sodium.h>

int sec_init(void)
{
    /* sodium_init() takes its own lock and returns 1 once it has already
     * run, so every node (and every constructor in crypto/) may call it. */
    if (sodium_init() < 0)
        return -ENOSYS;
    return 0;
}

void sec_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}
