/* wire/ctl.h: the control protocol's codec (docs/PROTOCOL.md section 11).
 *
 * The `confab` command talks to a running node over a Unix socket with the
 * same frames as links (section 2), unencrypted. A control message is one
 * msgpack map. One longer than a frame spans several: every frame of
 * exactly WIRE_MAX_FRAME bytes says that another follows, and the message
 * ends with the first shorter frame (possibly empty).
 *
 * Reading: a wire_ctl_reader collects the frames of one message, within a
 * limit checked before anything is buffered, then wire_ctl_parse() checks
 * the map (wire_mp_check, depth WIRE_CTL_MAX_DEPTH, and section 1's map
 * rules). Fields are then looked up by key without allocating; str and bin
 * values are borrowed.
 *
 * Writing: a wire_ctl_builder makes a map in a growing buffer (this side
 * trusts itself), then wire_ctl_frame() cuts it into frames. */
#ifndef CONFAB_WIRE_CTL_H
#define CONFAB_WIRE_CTL_H

#include "wire/frame.h"
#include "wire/mp.h"
#include "wire/msg.h"

#include <stddef.h>
#include <stdint.h>

/* Nesting, counted as wire_mp_check() does (a map of scalars is 1). The
 * deepest message, the `groups` reply, is map > array > map > array (of
 * bin32): 4; the limit leaves one level to grow. */
#define WIRE_CTL_MAX_DEPTH 5u
/* Entries in any one map of a control message. The largest map confab
 * sends is `stats` (about 80 counters in 2026-12, every area together;
 * node/app/control.c asserts at build time that it fits); the cap bounds
 * the duplicate-key
 * check, which compares each key with the earlier ones of its map. */
#define WIRE_CTL_MAX_KEYS 128u

/* ---- reading ---------------------------------------------------------- */

/* Collects the frames of control messages from a stream. */
typedef struct wire_ctl_reader {
    wire_frame_decoder dec;
    size_t limit; /* largest message accepted, bytes */
    uint8_t *buf; /* the message so far */
    size_t len, cap;
    int error; /* sticky */
} wire_ctl_reader;

/* limit: the largest whole message accepted, in bytes. Any value works and
 * is enforced exactly, also below a frame's worth (0 accepts only empty
 * messages). Allocates nothing. */
void wire_ctl_reader_init(wire_ctl_reader *r, size_t limit);
/* Releases everything r holds; r may be initialized again. */
void wire_ctl_reader_free(wire_ctl_reader *r);

/* Feeds bytes of the stream (as wire_frame_decode does: advances *data,
 * decreases *len). Returns 1 when a whole message is ready in *msg and *msg_len
 * (borrowed until the next call), 0 when the bytes are used up, -EPROTO
 * (bad frames, a message over the limit: the limit is checked as each
 * frame arrives, before it is kept), or -ENOMEM. Sticky on error. The
 * message is not checked yet: use wire_ctl_parse().
 *
 * Call it in a loop until it returns 0 or an error, as with
 * wire_frame_decode(). A message that came in one frame lying whole in
 * the chunk is returned in place (pointing into *data); any other is
 * collected in r->buf, which grows by doubling up to the limit. The call
 * after a message was returned frees r->buf if it exceeds 64 KiB, so a
 * reader between messages holds at most 64 KiB here, plus at most one
 * frame (WIRE_MAX_FRAME) in the frame decoder for a frame split across
 * chunks. */
__attribute__((warn_unused_result)) int
wire_ctl_read(wire_ctl_reader *r, const uint8_t **data, size_t *len,
              const uint8_t **msg, size_t *msg_len);

/* A checked control map. */
typedef struct wire_ctl_map {
    const uint8_t *buf; /* the map's bytes */
    size_t len;
    uint32_t count; /* entries */
} wire_ctl_map;

/* Checks that buf[0..len) is exactly one msgpack map, nested at most
 * WIRE_CTL_MAX_DEPTH deep, in which every map (the top one and any nested
 * one) has str keys, no key twice and at most WIRE_CTL_MAX_KEYS entries,
 * and every str is valid UTF-8. An empty buffer is not a map. Returns 0
 * or -EPROTO. */
__attribute__((warn_unused_result)) int
wire_ctl_parse(const uint8_t *buf, size_t len, wire_ctl_map *m);

/* Looks key up in m (keys compare by bytes). Each returns 0 and the
 * value, -ENOENT when the key is absent (or, for the _opt reader, when its
 * value is nil), or -EPROTO when it has another type or is out of range.
 * Strings must be valid UTF-8. */
/* Any integer format with a non-negative value. */
int wire_ctl_get_uint(const wire_ctl_map *m, const char *key, uint64_t *v);
/* Any integer format with a value in int64_t (`err`, a negative errno). */
int wire_ctl_get_int(const wire_ctl_map *m, const char *key, int64_t *v);
int wire_ctl_get_bool(const wire_ctl_map *m, const char *key, int *v);
int wire_ctl_get_str(const wire_ctl_map *m, const char *key, wire_bytes *v);
/* A str that may be nil (a message map's `group` and `ct`). */
int wire_ctl_get_str_opt(const wire_ctl_map *m, const char *key, wire_bytes *v);
int wire_ctl_get_bin(const wire_ctl_map *m, const char *key, wire_bytes *v);
/* A nested map. */
int wire_ctl_get_map(const wire_ctl_map *m, const char *key, wire_ctl_map *v);
/* An array: sets *it for wire_ctl_next_*() and *count. */
int wire_ctl_get_array(const wire_ctl_map *m, const char *key, wire_iter *it,
                       uint32_t *count);
/* The next element of an array, of the named type: 1 and the value, 0 at
 * the end, -EPROTO if it has another type (the iterator then stays on that
 * element). */
int wire_ctl_next_map(wire_iter *it, wire_ctl_map *v);
int wire_ctl_next_str(wire_iter *it, wire_bytes *v);
int wire_ctl_next_bin(wire_iter *it, wire_bytes *v);
/* The next key and value of a map in order (for maps of counters):
 * 1 with the key and *value pointing at a reader over exactly that value
 * (inside w, valid until the next call; read it or not: the walk moves on
 * either way), 0 at the end, -EPROTO if a key is not a str or a value is
 * malformed (never for a map wire_ctl_parse() accepted). */
typedef struct wire_ctl_walk {
    wire_mp_reader r;     /* at the next key */
    wire_mp_reader value; /* the current value */
    uint32_t left;
} wire_ctl_walk;
void wire_ctl_walk_init(const wire_ctl_map *m, wire_ctl_walk *w);
int wire_ctl_walk_next(wire_ctl_walk *w, wire_bytes *key,
                       wire_mp_reader **value);

/* ---- writing ---------------------------------------------------------- */

/* A map under construction. The builder grows its buffer as needed,
 * doubling, up to a limit in bytes (the buffer never exceeds it); any
 * failure is sticky and reported by wire_ctl_finish(). Maps and arrays are
 * opened with their count of entries, which the caller must then write (as
 * msgpack requires). Every value takes the shortest msgpack form. */
typedef struct wire_ctl_builder {
    msgpack_packer pk;
    uint8_t *buf;
    size_t len, cap, limit;
    int error;
} wire_ctl_builder;

/* Allocates nothing until the first value is written. */
void wire_ctl_builder_init(wire_ctl_builder *b, size_t limit);
/* Releases the buffer; b may be initialized again. */
void wire_ctl_builder_free(wire_ctl_builder *b);
void wire_ctl_map_begin(wire_ctl_builder *b, uint32_t entries);
void wire_ctl_array_begin(wire_ctl_builder *b, uint32_t entries);
void wire_ctl_key(wire_ctl_builder *b, const char *key);
void wire_ctl_put_uint(wire_ctl_builder *b, uint64_t v);
void wire_ctl_put_int(wire_ctl_builder *b, int64_t v);
void wire_ctl_put_bool(wire_ctl_builder *b, int v);
void wire_ctl_put_nil(wire_ctl_builder *b);
void wire_ctl_put_str(wire_ctl_builder *b, const void *s, size_t len);
void wire_ctl_put_cstr(wire_ctl_builder *b, const char *s);
void wire_ctl_put_bin(wire_ctl_builder *b, const void *p, size_t len);
/* Returns 0 with the encoded map in b->buf[0..b->len), or the first error
 * (-ENOMEM, -EMSGSIZE past the limit). */
__attribute__((warn_unused_result)) int
wire_ctl_finish(const wire_ctl_builder *b);

/* The bytes needed to frame a message of len bytes: a bin 16 frame of
 * WIRE_MAX_FRAME bytes for each whole WIRE_MAX_FRAME of it, then one frame
 * of the rest in the shortest form (`c4 00` when nothing is left, so a
 * message of 0 bytes takes 2). SIZE_MAX if that overflows a size_t. */
size_t wire_ctl_framed_len(size_t len);

/* Frames msg[0..len) into out[0..cap) as section 11.1 says; *out_len is
 * the framed length. msg and out must not overlap; msg may be NULL when
 * len is 0. Returns 0 or -EMSGSIZE (cap too small). */
__attribute__((warn_unused_result)) int wire_ctl_frame(const uint8_t *msg,
                                                       size_t len, uint8_t *out,
                                                       size_t cap,
                                                       size_t *out_len);

#endif
