/* fuzz_frame.c: the streaming frame decoder fed a stranger's TCP stream.
 *
 * Input: [chunking] [limit] [stream...]. The stream is decoded twice: in one
 * chunk, and in chunks whose sizes come from the chunking byte and the
 * stream itself (1 byte at a time when it is 0). Both must yield the same
 * payloads and end in the same state, every payload must be within the
 * limit, every error must be sticky, and sealing a payload again and
 * decoding the result must give it back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x))                                                              \
            abort();                                                           \
    } while (0)

static const size_t limits[] = {0, 48, 255, 256, 1000, WIRE_MAX_FRAME};

typedef struct yielded {
    size_t off; /* where the payload lies in the stream */
    size_t len;
} yielded;

/* Sealing the payload again and decoding the frame gives it back. */
static void check_reseal(const uint8_t *payload, size_t len)
{
    uint8_t *buf = malloc(WIRE_FRAME_HEADROOM + len);
    CHECK(buf != NULL);
    if (len > 0)
        memcpy(buf + WIRE_FRAME_HEADROOM, payload, len);
    size_t start;
    CHECK(wire_frame_seal(buf, len, &start) == 0);
    CHECK(WIRE_FRAME_HEADROOM - start == wire_frame_header_len(len));
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, WIRE_MAX_FRAME);
    const uint8_t *p = buf + start, *out;
    size_t left = WIRE_FRAME_HEADROOM + len - start, olen;
    CHECK(wire_frame_decode(&d, &p, &left, &out, &olen) == 1);
    CHECK(left == 0 && olen == len && out == buf + WIRE_FRAME_HEADROOM);
    CHECK(!wire_frame_decoder_busy(&d) && d.buf == NULL);
    wire_frame_decoder_free(&d);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t chunking = data[0];
    size_t limit = limits[data[1] % (sizeof limits / sizeof limits[0])];
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    /* One chunk: every payload is yielded in place. */
    yielded *want = malloc((n / 2 + 1) * sizeof *want);
    CHECK(want != NULL);
    size_t nwant = 0;
    wire_frame_decoder d;
    wire_frame_decoder_init(&d, limit);
    const uint8_t *p = stream, *payload;
    size_t left = n, plen;
    int rc;
    while ((rc = wire_frame_decode(&d, &p, &left, &payload, &plen)) == 1) {
        CHECK(plen <= limit);
        CHECK(payload >= stream && plen <= (size_t)(stream + n - payload));
        CHECK(nwant < n / 2 + 1);
        want[nwant].off = (size_t)(payload - stream);
        want[nwant].len = plen;
        nwant++;
        check_reseal(payload, plen);
    }
    CHECK(rc == 0 || rc == -EPROTO);
    /* Only a frame cut off by the end of the stream is copied. */
    CHECK(d.buf == NULL || (rc == 0 && d.have > 0 && d.cap <= limit));
    int final = rc;
    int busy = wire_frame_decoder_busy(&d);
    if (rc != 0) {
        /* Sticky: the same error, nothing consumed. */
        size_t before = left;
        CHECK(wire_frame_decode(&d, &p, &left, &payload, &plen) == rc);
        CHECK(left == before);
    }
    wire_frame_decoder_free(&d);

    /* Many chunks: the same payloads, in order. */
    wire_frame_decoder_init(&d, limit);
    size_t off = 0, got = 0;
    uint32_t seed = chunking;
    rc = 0;
    while (off < n && rc == 0) {
        size_t c;
        if (chunking == 0) {
            c = 1;
        } else {
            seed = seed * 1103515245u + 12345u + stream[off];
            c = 1 + (chunking & 0x80 ? (seed >> 8) % 70000
                                     : (seed >> 8) % chunking);
        }
        if (c > n - off)
            c = n - off;
        p = stream + off;
        left = c;
        while ((rc = wire_frame_decode(&d, &p, &left, &payload, &plen)) == 1) {
            CHECK(got < nwant);
            CHECK(plen == want[got].len);
            CHECK(plen == 0 ||
                  memcmp(payload, stream + want[got].off, plen) == 0);
            CHECK(d.cap <= limit);
            got++;
        }
        off += c;
    }
    CHECK(rc == final);
    CHECK(got == nwant);
    if (rc == 0)
        CHECK(wire_frame_decoder_busy(&d) == busy);
    wire_frame_decoder_trim(&d);
    wire_frame_decoder_free(&d);
    free(want);
    return 0;
}
