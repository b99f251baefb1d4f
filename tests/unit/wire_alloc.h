/* wire_alloc.h: counts the heap allocations a piece of code makes, for the
 * tests that show decoding never allocates.
 *
 * The test executable defines malloc, calloc, realloc and free itself,
 * forwarding to glibc's __libc_* entry points; the dynamic linker then
 * sends every allocation of the process (msgpack-c's included) through
 * them. While counting is on they record how many calls were made and the
 * largest size asked for, and refuse anything over ALLOC_REFUSE_OVER so a
 * positive control cannot exhaust the machine.
 *
 * Interposing malloc conflicts with AddressSanitizer's own, so under ASan
 * nothing is defined; valgrind replaces even an executable's malloc. In both
 * cases alloc_counting_works() says so and the tests check only that the
 * input is rejected. Include this header from one file only. */
#ifndef CONFAB_TESTS_WIRE_ALLOC_H
#define CONFAB_TESTS_WIRE_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_INTERPOSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_INTERPOSE 0
#endif
#endif
#ifndef ALLOC_INTERPOSE
#define ALLOC_INTERPOSE 1
#endif

#define ALLOC_REFUSE_OVER ((size_t)1 << 30)

static int alloc_counting;
static size_t alloc_calls;
static size_t alloc_largest;

#if ALLOC_INTERPOSE
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

/* Records one request; returns 0 if it must be refused. */
static int alloc_record(size_t n)
{
    if (!alloc_counting)
        return 1;
    alloc_calls++;
    if (n > alloc_largest)
        alloc_largest = n;
    return n <= ALLOC_REFUSE_OVER;
}

void *malloc(size_t n)
{
    return alloc_record(n) ? __libc_malloc(n) : NULL;
}

void *calloc(size_t n, size_t size)
{
    size_t total = size != 0 && n > SIZE_MAX / size ? SIZE_MAX : n * size;
    return alloc_record(total) ? __libc_calloc(n, size) : NULL;
}

void *realloc(void *p, size_t n)
{
    return alloc_record(n) ? __libc_realloc(p, n) : NULL;
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static void alloc_count_start(void)
{
    alloc_calls = 0;
    alloc_largest = 0;
    alloc_counting = 1;
}

static void alloc_count_stop(void)
{
    alloc_counting = 0;
}

/* True when allocations are really counted in this build and run: makes
 * one allocation through a pointer the compiler cannot see through. */
static int alloc_counting_works(void)
{
    void *(*volatile do_malloc)(size_t) = malloc;
    alloc_count_start();
    void *p = do_malloc(16);
    alloc_count_stop();
    free(p);
    return alloc_calls == 1;
}

#endif
