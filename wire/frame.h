/* wire/frame.h: the TCP frame codec (docs/PROTOCOL.md section 2).
 *
 * A frame is one msgpack bin 8 or bin 16 object whose payload is one Noise
 * message of at most WIRE_MAX_FRAME bytes. Pure functions over buffers: no
 * sockets, no libuv. */
#ifndef CONFAB_WIRE_FRAME_H
#define CONFAB_WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAX_FRAME      65535u /* largest frame payload */
#define WIRE_FRAME_HEADROOM 3u     /* bytes to reserve in front of a payload */

/* Length of the header that wire_frame_seal() writes for a payload of
 * payload_len bytes: 2 below 256 bytes, else 3. */
size_t wire_frame_header_len(size_t payload_len);

/* Seals a frame in place, without copying the payload.
 *
 * buf holds WIRE_FRAME_HEADROOM bytes of headroom followed by payload_len
 * bytes of payload. The header is written immediately in front of the
 * payload; on success *start is the offset in buf where the frame begins
 * (1 or 0), so the frame is buf[*start .. WIRE_FRAME_HEADROOM + payload_len).
 *
 * Returns 0, or -EMSGSIZE if payload_len > WIRE_MAX_FRAME. */
__attribute__((warn_unused_result)) int
wire_frame_seal(uint8_t *buf, size_t payload_len, size_t *start);

/* A streaming frame decoder. Feed it the bytes of a TCP stream in chunks of
 * any size; it yields each complete frame's payload.
 *
 * A payload that lies whole within the chunk being fed is yielded in place
 * (no copy). Only a payload split across chunks is copied into an internal
 * buffer, which grows to the largest such frame seen (at most the limit)
 * and is released by wire_frame_decoder_trim() or _free().
 *
 * After an error the decoder stays failed: every later call returns the
 * same error. */
typedef struct wire_frame_decoder {
    size_t limit;     /* largest payload accepted now */
    uint32_t need;    /* payload length of the frame being read */
    uint32_t have;    /* payload bytes of it held in buf */
    uint8_t hdr[3];   /* header bytes seen so far */
    uint8_t hdr_have; /* how many of hdr are filled */
    int error;        /* 0, or the error that failed the decoder */
    uint8_t *buf;     /* partial payload, NULL when none is held */
    size_t cap;       /* capacity of buf */
} wire_frame_decoder;

/* Initializes d to accept payloads of at most limit bytes
 * (limit <= WIRE_MAX_FRAME). Allocates nothing. */
void wire_frame_decoder_init(wire_frame_decoder *d, size_t limit);

/* Changes the limit for frames whose header has not been read yet
 * (for instance when a handshake ends). limit <= WIRE_MAX_FRAME. */
void wire_frame_decoder_set_limit(wire_frame_decoder *d, size_t limit);

/* Decodes at most one frame from the chunk *data of *len bytes.
 *
 * Consumes bytes by advancing *data and decreasing *len. Returns:
 *   1        a frame is complete: *payload and *payload_len describe it. The
 *            payload is borrowed: it points into the chunk or into the
 *            decoder, and is valid until the next call on d or until the
 *            chunk is released, whichever comes first.
 *   0        the chunk is used up (*len == 0) without completing a frame.
 *   -EPROTO  the stream is not a sequence of frames (a first byte other
 *            than bin 8 / bin 16), or a frame is longer than the limit.
 *   -ENOMEM  a partial frame could not be buffered.
 * Call it in a loop until it returns 0 or an error. */
__attribute__((warn_unused_result)) int
wire_frame_decode(wire_frame_decoder *d, const uint8_t **data, size_t *len,
                  const uint8_t **payload, size_t *payload_len);

/* wire_frame_decode(), except for a frame of at least stream_min payload
 * bytes whose payload is not all in the chunk and of which nothing is
 * held yet: it is not buffered. Returns 2 with *payload at the first of
 * its bytes in the chunk and *payload_len its whole length; the decoder
 * is left at the start of the next frame, and the caller takes those
 * payload_len bytes itself, from this chunk (*data, *len are left at the
 * payload's start) and the next ones (#18: a large fragment goes straight
 * to its final place). stream_min 0 never returns 2. */
__attribute__((warn_unused_result)) int
wire_frame_decode_stream(wire_frame_decoder *d, const uint8_t **data,
                         size_t *len, const uint8_t **payload,
                         size_t *payload_len, size_t stream_min);

/* True when d holds part of a frame (so the stream ended mid-frame). */
int wire_frame_decoder_busy(const wire_frame_decoder *d);

/* Releases the internal buffer if no partial frame is held in it. */
void wire_frame_decoder_trim(wire_frame_decoder *d);

/* Releases everything d holds. d may be initialized again afterwards. */
void wire_frame_decoder_free(wire_frame_decoder *d);

#endif
