/* wire/mp.h: a bounded msgpack reader and a buffer writer.
 *
 * Reading: wire_mp_check() walks one msgpack object and rejects it unless
 * it is well formed, nests no deeper than a limit, declares no count or
 * length larger than the bytes that remain, and is followed by no trailing
 * bytes. The reader functions then pull typed values out of the checked
 * bytes without allocating; str and bin values are borrowed pointers into
 * the input. Nothing here calls malloc, so input a stranger controls can
 * never make msgpack-c (or anything else) allocate.
 *
 * Writing: wire_mp_writer wraps a msgpack-c packer around a fixed buffer;
 * writing past its end fails cleanly (-EMSGSIZE) instead of growing it. */
#ifndef CONFAB_WIRE_MP_H
#define CONFAB_WIRE_MP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAX_DEPTH 4u /* deepest nesting any confab message uses */

/* Walks exactly one msgpack object occupying all of buf[0..len).
 * Returns 0, or -EPROTO: malformed, truncated, deeper than max_depth
 * (a scalar is depth 0, a map of scalars depth 1), a count or length larger
 * than the bytes left, a type confab never uses (ext, float, nil-as-key is
 * fine to walk but see the readers), or trailing bytes. A max_depth above
 * 32 is taken as 32. */
__attribute__((warn_unused_result)) int
wire_mp_check(const uint8_t *buf, size_t len, unsigned max_depth);

/* The same walk over the first of several objects back to back in
 * buf[0..len) (a batched transport message, #18): 0 with *used the bytes
 * that object takes (bytes after it are left alone), or -EPROTO. */
__attribute__((warn_unused_result)) int wire_mp_check_first(const uint8_t *buf,
                                                            size_t len,
                                                            unsigned max_depth,
                                                            size_t *used);

/* A cursor over bytes that wire_mp_check() has accepted (the readers still
 * check every bound themselves, so they are safe on any input). */
typedef struct wire_mp_reader {
    const uint8_t *p;
    const uint8_t *end;
} wire_mp_reader;

void wire_mp_reader_init(wire_mp_reader *r, const uint8_t *buf, size_t len);

/* Each reader consumes one value of the named type and returns 0, or
 * returns -EPROTO and consumes nothing if the next value is not of that
 * type (or is out of bounds). */
int wire_mp_read_map(wire_mp_reader *r, uint32_t *count);
int wire_mp_read_array(wire_mp_reader *r, uint32_t *count);
/* Any integer format with a non-negative value. */
int wire_mp_read_uint(wire_mp_reader *r, uint64_t *v);
/* Any integer format whose value fits an int64_t (a uint 64 above
 * INT64_MAX is -EPROTO). */
int wire_mp_read_int(wire_mp_reader *r, int64_t *v);
/* A str holding valid UTF-8; *s is borrowed, not NUL-terminated. */
int wire_mp_read_str(wire_mp_reader *r, const uint8_t **s, uint32_t *len);
int wire_mp_read_bin(wire_mp_reader *r, const uint8_t **b, uint32_t *len);
int wire_mp_read_bool(wire_mp_reader *r, int *v);
int wire_mp_read_nil(wire_mp_reader *r);
/* Skips one whole value of any type confab uses (not ext or float), nested
 * ones included. */
int wire_mp_skip(wire_mp_reader *r);
/* Peeks at the next value's msgpack type (a msgpack_object_type), or -1. */
int wire_mp_peek_type(const wire_mp_reader *r);
/* Bytes left. */
size_t wire_mp_left(const wire_mp_reader *r);

/* True if s[0..len) is valid UTF-8 (no overlong forms, no surrogates, no
 * code points above U+10FFFF). */
int wire_utf8_valid(const uint8_t *s, size_t len);

/* A msgpack-c packer that writes into buf[0..cap) and fails, sticky, with
 * -EMSGSIZE when the buffer is full. */
typedef struct wire_mp_writer {
    msgpack_packer pk;
    uint8_t *buf;
    size_t cap;
    size_t len;
    int error;
} wire_mp_writer;

void wire_mp_writer_init(wire_mp_writer *w, uint8_t *buf, size_t cap);

/* Convenience writers; each records the first error in w->error. */
void wire_mp_write_map(wire_mp_writer *w, uint32_t n);
void wire_mp_write_array(wire_mp_writer *w, uint32_t n);
void wire_mp_write_uint(wire_mp_writer *w, uint64_t v);
void wire_mp_write_str(wire_mp_writer *w, const void *s, size_t len);
void wire_mp_write_cstr(wire_mp_writer *w, const char *s);
void wire_mp_write_bin(wire_mp_writer *w, const void *b, size_t len);
void wire_mp_write_bool(wire_mp_writer *w, int v);
void wire_mp_write_nil(wire_mp_writer *w);

/* Returns 0 and sets *len to the bytes written, or the first error. */
__attribute__((warn_unused_result)) int
wire_mp_writer_finish(const wire_mp_writer *w, size_t *len);

#endif
