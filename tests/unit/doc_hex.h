/* doc_hex.h: reads the hex examples of docs/PROTOCOL.md for the tests.
 *
 * An example is a fenced block whose info string is "hex NAME":
 *
 *     ```hex data
 *     87a17401...
 *     ```
 *
 * White space inside the block is ignored. doc_hex() returns the decoded
 * bytes in a malloc'd buffer (free it) and sets *len, or returns NULL if the
 * block is missing or holds anything but hex digits, so a test that checks
 * an example fails when the example is missing or broken. */
#ifndef CONFAB_TESTS_DOC_HEX_H
#define CONFAB_TESTS_DOC_HEX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must name the source tree"
#endif

static inline char *doc_hex_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        char *bigger = realloc(buf, cap + 1);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
        }
        buf = bigger;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static inline int doc_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline uint8_t *doc_hex(const char *name, size_t *len)
{
    size_t doclen;
    char *doc = doc_hex_read_file(SOURCE_ROOT "/docs/PROTOCOL.md", &doclen);
    if (doc == NULL)
        return NULL;
    char fence[128];
    snprintf(fence, sizeof fence, "```hex %s\n", name);
    char *start = strstr(doc, fence);
    uint8_t *out = NULL;
    if (start != NULL) {
        start += strlen(fence);
        char *end = strstr(start, "```");
        if (end != NULL) {
            out = malloc((size_t)(end - start) / 2 + 1);
            size_t n = 0;
            int hi = -1, ok = out != NULL;
            for (char *p = start; ok && p < end; p++) {
                if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
                    continue;
                int d = doc_hex_digit(*p);
                if (d < 0) {
                    ok = 0;
                } else if (hi < 0) {
                    hi = d;
                } else {
                    out[n++] = (uint8_t)(hi << 4 | d);
                    hi = -1;
                }
            }
            if (!ok || hi >= 0 || n == 0) {
                free(out);
                out = NULL;
            } else {
                *len = n;
            }
        }
    }
    free(doc);
    return out;
}

#endif
