/* wire/beacon.c: the beacon codec (docs/PROTOCOL.md section 6): a msgpack
 * array of 7 elements (8 with the extension map) whose last one, the tag,
 * covers all the bytes before it. */
#include "wire/beacon.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define BEACON_ELEMS     7u
#define BEACON_ELEMS_EXT 8u

/* Tag element: bin 8 header (c4 10) and 16 bytes. */
#define TAG_ELEM_BYTES (2u + WIRE_BEACON_TAG_BYTES)

int wire_beacon_encode(const wire_beacon *b, uint8_t *buf, size_t cap,
                       size_t *tagged_len)
{
    bool ext = b->adv_len != 0 || b->adv_port != 0;
    if (b->version != WIRE_VERSION || b->port == 0 ||
        (b->adv_len != 0 && b->adv_len != 4 && b->adv_len != 16) ||
        b->name.len > WIRE_MAX_NAME ||
        (b->name.len > 0 &&
         (b->name.ptr == NULL || !wire_utf8_valid(b->name.ptr, b->name.len))))
        return -EINVAL;
    wire_mp_writer w;
    wire_mp_writer_init(&w, buf, cap);
    wire_mp_write_array(&w, ext ? BEACON_ELEMS_EXT : BEACON_ELEMS);
    wire_mp_write_cstr(&w, WIRE_BEACON_MAGIC);
    wire_mp_write_uint(&w, b->version);
    wire_mp_write_bin(&w, b->id, WIRE_NODE_ID_BYTES);
    wire_mp_write_uint(&w, b->port);
    wire_mp_write_str(&w, b->name.ptr, b->name.len);
    wire_mp_write_uint(&w, b->boot);
    if (ext) {
        wire_mp_write_map(&w, (b->adv_len ? 1u : 0u) + (b->adv_port ? 1u : 0u));
        if (b->adv_len) {
            wire_mp_write_cstr(&w, "addr");
            wire_mp_write_bin(&w, b->adv_addr, b->adv_len);
        }
        if (b->adv_port) {
            wire_mp_write_cstr(&w, "port");
            wire_mp_write_uint(&w, b->adv_port);
        }
    }
    size_t n;
    int rc = wire_mp_writer_finish(&w, &n);
    if (rc != 0)
        return rc;
    /* The longest tagged part (64-byte name, 64-bit boot, both extension
     * keys) is far below
     * WIRE_BEACON_MAX, so a beacon we make always fits one. */
    *tagged_len = n;
    return 0;
}

int wire_beacon_append_tag(uint8_t *buf, size_t cap, size_t tagged_len,
                           const uint8_t tag[static WIRE_BEACON_TAG_BYTES],
                           size_t *len)
{
    if (tagged_len > cap || TAG_ELEM_BYTES > cap - tagged_len)
        return -EMSGSIZE;
    buf[tagged_len] = 0xc4;
    buf[tagged_len + 1] = WIRE_BEACON_TAG_BYTES;
    memcpy(buf + tagged_len + 2, tag, WIRE_BEACON_TAG_BYTES);
    *len = tagged_len + TAG_ELEM_BYTES;
    return 0;
}

static bool key_is(const uint8_t *k, uint32_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

/* Element 6 of an 8-element beacon: a map of optional keys. Known keys are
 * checked; unknown ones are skipped, so that later versions can add keys
 * that this one ignores (PROTOCOL.md section 6). */
static int read_ext(wire_mp_reader *r, wire_beacon *b)
{
    uint32_t n;
    bool seen_addr = false, seen_port = false;
    if (wire_mp_read_map(r, &n) != 0 || n > WIRE_BEACON_MAX_EXT)
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        uint32_t klen, vlen;
        uint64_t port;
        if (wire_mp_read_str(r, &k, &klen) != 0)
            return -EPROTO;
        if (key_is(k, klen, "addr")) {
            if (seen_addr || wire_mp_read_bin(r, &v, &vlen) != 0 ||
                (vlen != 4 && vlen != 16))
                return -EPROTO;
            memcpy(b->adv_addr, v, vlen);
            b->adv_len = (uint8_t)vlen;
            seen_addr = true;
        } else if (key_is(k, klen, "port")) {
            if (seen_port || wire_mp_read_uint(r, &port) != 0 || port < 1 ||
                port > 65535)
                return -EPROTO;
            b->adv_port = (uint16_t)port;
            seen_port = true;
        } else if (wire_mp_skip(r) != 0) {
            return -EPROTO;
        }
    }
    return 0;
}

int wire_beacon_decode(const uint8_t *buf, size_t len, wire_beacon *b,
                       size_t *tagged_len)
{
    memset(b, 0, sizeof *b);
    /* Depth 1 is the array itself, 2 its extension map of scalars. */
    if (len > WIRE_BEACON_MAX || wire_mp_check(buf, len, 2) != 0)
        return -EPROTO;
    wire_mp_reader r;
    wire_mp_reader_init(&r, buf, len);
    uint32_t n, mlen, idlen, namelen, taglen;
    const uint8_t *magic, *id, *name, *tag;
    uint64_t port;
    size_t covered;
    if (wire_mp_read_array(&r, &n) != 0 ||
        (n != BEACON_ELEMS && n != BEACON_ELEMS_EXT))
        goto bad;
    if (wire_mp_read_str(&r, &magic, &mlen) != 0 ||
        mlen != strlen(WIRE_BEACON_MAGIC) ||
        memcmp(magic, WIRE_BEACON_MAGIC, mlen) != 0)
        goto bad;
    if (wire_mp_read_uint(&r, &b->version) != 0 || b->version != WIRE_VERSION)
        goto bad;
    if (wire_mp_read_bin(&r, &id, &idlen) != 0 || idlen != WIRE_NODE_ID_BYTES)
        goto bad;
    if (wire_mp_read_uint(&r, &port) != 0 || port < 1 || port > 65535)
        goto bad;
    if (wire_mp_read_str(&r, &name, &namelen) != 0 || namelen > WIRE_MAX_NAME)
        goto bad;
    if (wire_mp_read_uint(&r, &b->boot) != 0)
        goto bad;
    if (n == BEACON_ELEMS_EXT && read_ext(&r, b) != 0)
        goto bad;
    covered = len - wire_mp_left(&r);
    if (wire_mp_read_bin(&r, &tag, &taglen) != 0 ||
        taglen != WIRE_BEACON_TAG_BYTES || wire_mp_left(&r) != 0)
        goto bad;
    memcpy(b->id, id, WIRE_NODE_ID_BYTES);
    b->port = (uint16_t)port;
    b->name.ptr = name;
    b->name.len = namelen;
    memcpy(b->tag, tag, WIRE_BEACON_TAG_BYTES);
    *tagged_len = covered;
    return 0;
bad:
    memset(b, 0, sizeof *b);
    return -EPROTO;
}
