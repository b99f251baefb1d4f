/* gen_hs_corpus.c: writes the seed corpora of fuzz_hs_responder and
 * fuzz_hs_initiator: the valid transcripts of the fixed keys in
 * hs_fixture.h for each pattern, and a few nasty inputs.
 *
 * Not part of the build; run it again when hs_fixture.h or the input
 * layout changes:
 *
 *   cc -std=c11 -I. -Itests/fuzz tests/fuzz/gen_hs_corpus.c \
 *      build/crypto/libconfab-crypto.a -lsodium -o /tmp/gen_hs_corpus
 *   /tmp/gen_hs_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/noise.h"
#include "hs_fixture.h"

static const char *root;
static int failed;

static void put(const char *target, const char *name, const uint8_t *a,
                size_t alen, const uint8_t *b, size_t blen)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(a, 1, alen, f) != alen ||
        (blen > 0 && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0) {
        fprintf(stderr, "gen_hs_corpus: cannot write %s\n", path);
        failed = 1;
    }
}

typedef struct transcript {
    uint8_t m1[64], m2[256], m3[256];
    size_t n1, n2, n3;
} transcript;

static void make(sec_noise_pattern p, transcript *t)
{
    uint8_t pt[256];
    size_t n;
    sec_noise *i = hs_new(p, 1), *r = hs_new(p, 0);

    HS_CHECK(sec_noise_write(i, NULL, 0, t->m1, sizeof t->m1, &t->n1) == 0);
    HS_CHECK(sec_noise_read(r, t->m1, t->n1, pt, sizeof pt, &n) == 0);
    HS_CHECK(sec_noise_write(r, hs_hello_resp, sizeof hs_hello_resp, t->m2,
                             sizeof t->m2, &t->n2) == 0);
    HS_CHECK(sec_noise_read(i, t->m2, t->n2, pt, sizeof pt, &n) == 0);
    HS_CHECK(sec_noise_write(i, hs_hello_init, sizeof hs_hello_init, t->m3,
                             sizeof t->m3, &t->n3) == 0);
    HS_CHECK(sec_noise_read(r, t->m3, t->n3, pt, sizeof pt, &n) == 0);
    sec_noise_free(i);
    sec_noise_free(r);
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"xx", "xxpsk0", "xxpsk3"};
    static const uint8_t modes[] = {0, 1, 2};
    uint8_t buf[512], zero[96] = {0};
    char name[64];
    transcript t;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_hs_corpus CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    HS_CHECK(sec_init() == 0);
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "%s/%s", root,
                 k ? "hs_initiator" : "hs_responder");
        if (mkdir(name, 0755) != 0 && errno != EEXIST)
            return 1;
    }

    for (size_t k = 0; k < 3; k++) {
        uint8_t m = modes[k];
        make(hs_pattern(m), &t);

        /* responder: [mode][n1][m1][m3] and [mode|valid][m3] */
        buf[0] = m;
        buf[1] = (uint8_t)t.n1;
        memcpy(buf + 2, t.m1, t.n1);
        snprintf(name, sizeof name, "valid-%s", names[k]);
        put("hs_responder", name, buf, 2 + t.n1, t.m3, t.n3);
        buf[0] = m | HS_VALID_MSG1;
        snprintf(name, sizeof name, "valid-msg1-%s", names[k]);
        put("hs_responder", name, buf, 1, t.m3, t.n3);

        /* initiator: [mode][m2] */
        buf[0] = m;
        snprintf(name, sizeof name, "valid-%s", names[k]);
        put("hs_initiator", name, buf, 1, t.m2, t.n2);
    }

    /* The nasty ones, around XXpsk0 (confab's pattern) and XX (whose
     * message 1 is unauthenticated, so a bad key reaches the DH). */
    make(SEC_NOISE_XXPSK0, &t);
    put("hs_responder", "empty", buf, 0, NULL, 0);
    buf[0] = 1;
    put("hs_responder", "mode-only", buf, 1, NULL, 0);
    buf[0] = 0;
    buf[1] = 32;
    put("hs_responder", "xx-zero-ephemeral", buf, 2, zero, 32);
    memcpy(buf + 2, zero, 32);
    buf[2] = 1;
    put("hs_responder", "xx-ephemeral-one", buf, 34, NULL, 0);
    buf[0] = 1;
    buf[1] = 48;
    put("hs_responder", "psk0-zeros", buf, 2, zero, 48);
    buf[1] = 255;
    put("hs_responder", "length-past-end", buf, 2, zero, 10);
    buf[0] = 1 | HS_SMALL_BUFFER;
    buf[1] = (uint8_t)t.n1;
    memcpy(buf + 2, t.m1, t.n1);
    put("hs_responder", "small-buffer", buf, 2 + t.n1, t.m3, t.n3);
    buf[0] = 1;
    buf[2 + 40] ^= 1;
    put("hs_responder", "msg1-flipped", buf, 2 + t.n1, t.m3, t.n3);
    buf[0] = 1 | HS_VALID_MSG1;
    put("hs_responder", "msg3-truncated", buf, 1, t.m3, 63);
    t.m3[t.n3 - 1] ^= 1;
    put("hs_responder", "msg3-flipped-tag", buf, 1, t.m3, t.n3);
    t.m3[t.n3 - 1] ^= 1;

    put("hs_initiator", "empty", buf, 0, NULL, 0);
    buf[0] = 1;
    put("hs_initiator", "mode-only", buf, 1, NULL, 0);
    buf[0] = 1 | HS_SMALL_BUFFER;
    put("hs_initiator", "small-buffer", buf, 1, t.m2, t.n2);
    buf[0] = 1;
    memcpy(buf + 1, zero, 32);
    memcpy(buf + 33, t.m2 + 32, t.n2 - 32);
    put("hs_initiator", "zero-ephemeral", buf, 1 + t.n2, NULL, 0);
    put("hs_initiator", "truncated", buf, 1, t.m2, 95);
    t.m2[50] ^= 1;
    put("hs_initiator", "encrypted-static-flipped", buf, 1, t.m2, t.n2);
    t.m2[50] ^= 1;
    buf[0] = 0;
    put("hs_initiator", "xx-zeros", buf, 1, zero, 96);
    return failed;
}
