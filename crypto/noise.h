/* crypto/noise.h: the Noise handshake, patterns XX, XXpsk0 and XXpsk3 over
 * 25519, ChaChaPoly and BLAKE2b (Noise Protocol Framework, revision 34).
 *
 *   XX:      -> e               XXpsk0: -> psk, e        XXpsk3: -> e
 *            <- e, ee, s, es            <- e, ee, s, es          <- e, ee, s,
 * es
 *            -> s, se                   -> s, se                 -> s, se, psk
 *
 * confab links use XXpsk0 (docs/PROTOCOL.md section 3); XX and XXpsk3 are
 * here to prove the implementation against the published test vectors.
 *
 * A handshake state is per connection and short-lived: it lives in ordinary
 * memory and is wiped by sec_noise_free(). */
#ifndef CONFAB_CRYPTO_NOISE_H
#define CONFAB_CRYPTO_NOISE_H

#include "crypto/cipher.h"
#include "crypto/sec.h"

/* Longest handshake message (and payload) handled, bytes. */
#define SEC_NOISE_MAX_MSG 65535u

typedef enum sec_noise_pattern {
    SEC_NOISE_XX = 0,
    SEC_NOISE_XXPSK0 = 1,
    SEC_NOISE_XXPSK3 = 2,
} sec_noise_pattern;

typedef struct sec_noise_config {
    sec_noise_pattern pattern;
    int initiator;           /* 1 initiator, 0 responder */
    const uint8_t *prologue; /* may be NULL when prologue_len is 0 */
    size_t prologue_len;
    const uint8_t *static_sk;    /* our static secret key, 32 bytes */
    const uint8_t *psk;          /* 32 bytes; required for psk patterns */
    const uint8_t *ephemeral_sk; /* NULL: random. Set only by tests. */
    /* Its public key, 32 bytes, or NULL to derive it. A node passes its
     * identity's, which saves one X25519 operation per handshake; it must
     * be the public key of static_sk. */
    const uint8_t *static_pk;
} sec_noise_config;

typedef struct sec_noise sec_noise;

/* Starts a handshake. Returns 0, -EINVAL (a missing key, or a psk with XX),
 * or -ENOMEM. Copies everything it needs from c. */
__attribute__((warn_unused_result)) int sec_noise_new(const sec_noise_config *c,
                                                      sec_noise **out);

/* The same, in storage the caller provides: hs points to sec_noise_size()
 * bytes aligned as malloc aligns. Allocates nothing (so it may run on a
 * worker thread without touching that thread's allocator). On error hs is
 * wiped. Release with sec_noise_wipe(), not sec_noise_free(). */
size_t sec_noise_size(void);
__attribute__((warn_unused_result)) int
sec_noise_init(sec_noise *hs, const sec_noise_config *c);

/* Writes our next handshake message carrying payload into out[0..cap)
 * (out must not overlap payload).
 * Returns 0 and sets *out_len; -EPROTO if it is not our turn or the
 * handshake is over or failed; -EACCES if a DH with the peer's ephemeral
 * key fails (the peer sent a low-order point); -EMSGSIZE if it does not fit
 * in cap or in SEC_NOISE_MAX_MSG. After -EPROTO or -EACCES the handshake is
 * failed; -EMSGSIZE (and -EINVAL for a NULL argument) change nothing. */
__attribute__((warn_unused_result)) int
sec_noise_write(sec_noise *hs, const uint8_t *payload, size_t payload_len,
                uint8_t *out, size_t cap, size_t *out_len);

/* Reads the peer's next handshake message; its payload goes to
 * payload[0..cap), which must not overlap msg. Returns 0 and sets
 * *payload_len; -EPROTO if it is not the peer's turn, or the message is
 * too short; -EACCES if decryption or a DH fails (every authentication
 * failure looks the same); -EMSGSIZE if the message is over
 * SEC_NOISE_MAX_MSG or the payload does not fit in cap. After any error
 * the handshake is failed and refuses further use. */
__attribute__((warn_unused_result)) int
sec_noise_read(sec_noise *hs, const uint8_t *msg, size_t len, uint8_t *payload,
               size_t cap, size_t *payload_len);

/* 1 when all three messages have been written and read. */
int sec_noise_done(const sec_noise *hs);

/* 1 when it is our turn to write. */
int sec_noise_our_turn(const sec_noise *hs);

/* The peer's static public key, or NULL until its `s` token was read (and
 * after any failure). */
const uint8_t *sec_noise_remote_static(const sec_noise *hs);

/* Copies the handshake hash h (SEC_HASH_BYTES). Meaningful when done. */
void sec_noise_hash(const sec_noise *hs, uint8_t h[static SEC_HASH_BYTES]);

/* Split(): fills the sending and receiving transport ciphers for our role
 * (the initiator sends with the first CipherState). Returns 0, or -EPROTO
 * if the handshake is not done. */
__attribute__((warn_unused_result)) int
sec_noise_split(sec_noise *hs, sec_cipher *send, sec_cipher *recv);

/* Wipes and frees hs (from sec_noise_new). NULL is fine. */
void sec_noise_free(sec_noise *hs);

/* Wipes hs (from sec_noise_init) without freeing it. NULL is fine. */
void sec_noise_wipe(sec_noise *hs);

#endif
