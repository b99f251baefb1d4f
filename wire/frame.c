/* wire/frame.c: the TCP frame codec: a msgpack bin 8 or bin 16 header in
 * front of each Noise message, sealed in place and decoded from a stream. */
#include "wire/frame.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BIN8  0xc4u
#define BIN16 0xc5u

size_t wire_frame_header_len(size_t payload_len)
{
    return payload_len < 256 ? 2 : 3;
}

int wire_frame_seal(uint8_t *buf, size_t payload_len, size_t *start)
{
    if (payload_len > WIRE_MAX_FRAME)
        return -EMSGSIZE;
    /* PROTOCOL.md section 2: bin 8 below 256 bytes, bin 16 otherwise. The
     * header ends where the payload begins, at WIRE_FRAME_HEADROOM. */
    if (payload_len < 256) {
        buf[1] = BIN8;
        buf[2] = (uint8_t)payload_len;
        *start = 1;
    } else {
        buf[0] = BIN16;
        buf[1] = (uint8_t)(payload_len >> 8);
        buf[2] = (uint8_t)payload_len;
        *start = 0;
    }
    return 0;
}

void wire_frame_decoder_init(wire_frame_decoder *d, size_t limit)
{
    assert(limit <= WIRE_MAX_FRAME);
    memset(d, 0, sizeof *d);
    d->limit = limit;
}

void wire_frame_decoder_set_limit(wire_frame_decoder *d, size_t limit)
{
    assert(limit <= WIRE_MAX_FRAME);
    d->limit = limit;
}

/* Header length announced by a (valid) first byte. */
static uint8_t header_len(uint8_t first)
{
    return first == BIN8 ? 2 : 3;
}

static void reset_frame(wire_frame_decoder *d)
{
    d->hdr_have = 0;
    d->need = 0;
    d->have = 0;
}

static int fail(wire_frame_decoder *d, int error)
{
    d->error = error;
    return error;
}

int wire_frame_decode(wire_frame_decoder *d, const uint8_t **data, size_t *len,
                      const uint8_t **payload, size_t *payload_len)
{
    return wire_frame_decode_stream(d, data, len, payload, payload_len, 0);
}

int wire_frame_decode_stream(wire_frame_decoder *d, const uint8_t **data,
                             size_t *len, const uint8_t **payload,
                             size_t *payload_len, size_t stream_min)
{
    if (d->error != 0)
        return d->error;

    /* The header, byte by byte: it may be split across chunks too. */
    while (d->hdr_have == 0 || d->hdr_have < header_len(d->hdr[0])) {
        if (*len == 0)
            return 0;
        uint8_t b = **data;
        if (d->hdr_have == 0 && b != BIN8 && b != BIN16)
            return fail(d, -EPROTO);
        d->hdr[d->hdr_have++] = b;
        (*data)++;
        (*len)--;
        if (d->hdr_have == header_len(d->hdr[0])) {
            uint32_t n = d->hdr[0] == BIN8
                             ? d->hdr[1]
                             : (uint32_t)d->hdr[1] << 8 | d->hdr[2];
            /* The limit is checked here, before anything is allocated. */
            if (n > d->limit)
                return fail(d, -EPROTO);
            d->need = n;
            d->have = 0;
        }
    }

    size_t missing = d->need - d->have;
    if (d->have == 0 && *len >= missing) {
        /* The whole payload is in this chunk: yield it in place. */
        *payload = *data;
        *payload_len = missing;
        *data += missing;
        *len -= missing;
        reset_frame(d);
        return 1;
    }
    if (*len == 0)
        return 0;
    if (stream_min != 0 && d->have == 0 && d->need >= stream_min) {
        /* The caller takes this payload as it comes. */
        *payload = *data;
        *payload_len = d->need;
        reset_frame(d);
        return 2;
    }

    /* Part of the payload is here and the rest is yet to come: buffer it.
     * The buffer grows to this frame's size, which passed the limit. */
    if (d->cap < d->need) {
        uint8_t *bigger = realloc(d->buf, d->need);
        if (bigger == NULL)
            return fail(d, -ENOMEM);
        d->buf = bigger;
        d->cap = d->need;
    }
    size_t take = *len < missing ? *len : missing;
    memcpy(d->buf + d->have, *data, take);
    d->have += (uint32_t)take;
    *data += take;
    *len -= take;
    if (d->have < d->need)
        return 0;
    *payload = d->buf;
    *payload_len = d->need;
    reset_frame(d);
    return 1;
}

int wire_frame_decoder_busy(const wire_frame_decoder *d)
{
    return d->hdr_have > 0;
}

void wire_frame_decoder_trim(wire_frame_decoder *d)
{
    if (d->have > 0)
        return;
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

void wire_frame_decoder_free(wire_frame_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof *d);
}
