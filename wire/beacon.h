/* wire/beacon.h: the beacon codec (docs/PROTOCOL.md section 6).
 *
 * A beacon is a msgpack array of 7 elements, or 8 when it carries the
 * optional extension map (element 6: advertised address and port), at most
 * 512 bytes. Its tag, the last element, covers every byte before it; wire/
 * does not compute or check it (crypto/ does), it only says which bytes it
 * covers. */
#ifndef CONFAB_WIRE_BEACON_H
#define CONFAB_WIRE_BEACON_H

#include "wire/msg.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_BEACON_MAX       512u
#define WIRE_BEACON_TAG_BYTES 16u
#define WIRE_BEACON_MAGIC     "confab"
#define WIRE_BEACON_MAX_EXT   16u /* keys in the extension map */

typedef struct wire_beacon {
    uint64_t version;
    uint8_t id[WIRE_NODE_ID_BYTES];
    uint16_t port;
    wire_bytes name; /* borrowed */
    uint64_t boot;
    /* The extension map (PROTOCOL.md section 6): the address peers should
     * dial instead of the beacon's source (adv_len 4 or 16; 0: none) and
     * the port there (0: the port above). Encoded only when set, so that
     * a beacon without them is the 7-element form every receiver takes. */
    uint8_t adv_addr[16];
    uint8_t adv_len;
    uint16_t adv_port;
    uint8_t tag[WIRE_BEACON_TAG_BYTES];
} wire_beacon;

/* Writes the elements before the tag (the tagged part) into buf[0..cap) and
 * sets *tagged_len. b->tag is ignored. Returns 0, -EINVAL (a field out of
 * range) or -EMSGSIZE. Compute the tag over buf[0..*tagged_len), then call
 * wire_beacon_append_tag(). */
__attribute__((warn_unused_result)) int wire_beacon_encode(const wire_beacon *b,
                                                           uint8_t *buf,
                                                           size_t cap,
                                                           size_t *tagged_len);

/* Appends the tag element after the tagged part; *len is the whole
 * beacon's length. Returns 0 or -EMSGSIZE. */
__attribute__((warn_unused_result)) int
wire_beacon_append_tag(uint8_t *buf, size_t cap, size_t tagged_len,
                       const uint8_t tag[static WIRE_BEACON_TAG_BYTES],
                       size_t *len);

/* Decodes a datagram. Returns 0 with *b filled (b->name borrowed from buf)
 * and *tagged_len set to the length of the bytes the tag covers, or
 * -EPROTO (too long, bad shape, wrong magic or version, trailing bytes, an
 * extension map over WIRE_BEACON_MAX_EXT keys, a non-str or repeated key,
 * a known key of the wrong type: addr not bin 4 or 16, port not 1..65535).
 * Unknown extension keys are skipped.
 * The caller must still verify b->tag over buf[0..*tagged_len). */
__attribute__((warn_unused_result)) int wire_beacon_decode(const uint8_t *buf,
                                                           size_t len,
                                                           wire_beacon *b,
                                                           size_t *tagged_len);

#endif
