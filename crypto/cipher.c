/* crypto/cipher.c: a Noise CipherState, ChaCha20-Poly1305 (IETF) with the
 * 64-bit message counter as nonce. Used for the transport messages after
 * Split() and, by noise.c, inside the handshake. */
#include "crypto/cipher.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* Noise section 5.1 reserves n = 2^64-1; a state that reached it is done. */
#define NONCE_MAX UINT64_MAX

/* The ChaChaPoly nonce of Noise section 12.3: 32 bits of zeros followed by
 * the little-endian encoding of n. */
static void
make_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES],
           uint64_t n)
{
    memset(nonce, 0, 4);
    for (size_t i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

void sec_cipher_init(sec_cipher *c, const uint8_t k[static SEC_KEY_BYTES])
{
    memcpy(c->k, k, SEC_KEY_BYTES);
    c->n = 0;
    c->has_key = 1;
    c->failed = 0;
}

int sec_cipher_encrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *pt, size_t len, uint8_t *ct)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    if (c->failed || !c->has_key)
        return -EPROTO;
    if (c->n == NONCE_MAX) {
        c->failed = 1;
        return -EOVERFLOW;
    }
    if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return -EMSGSIZE;
    make_nonce(nonce, c->n);
    /* libsodium encrypts in place when ct == pt: the stream cipher is
     * applied first and the tag is written after the ciphertext. */
    (void)crypto_aead_chacha20poly1305_ietf_encrypt(ct, NULL, pt, len, ad,
                                                    adlen, NULL, nonce, c->k);
    c->n++;
    return 0;
}

/* The IETF ChaCha20-Poly1305 construction (RFC 8439 section 2.8) from
 * libsodium's parts, so that the plaintext need not be contiguous: the
 * keystream's block 0 keys Poly1305, blocks 1.. encrypt. A call of the
 * stream cipher starts at a block boundary, so the body is split at the
 * boundaries: the few bytes before the first one inside it and after the
 * last one are copied next to the header and the trailer (at most 63 each)
 * and encrypted in place with them; the aligned middle goes from src to ct
 * in one call. */
#define BLOCK 64u
/* Below this many body bytes a copy and one call of the cipher cost less
 * than three calls (the vector code runs 8 blocks at a time and the short
 * runs around the middle do not): measured per message on this machine's
 * AVX2 libsodium, three calls cost 20% more at 1 KiB and about break even
 * at 8 KiB, and save 6-8% at 16-64 KiB. */
#define SPLIT_MIN 16384u

static void stream_xor(uint8_t *out, const uint8_t *in, size_t len,
                       const uint8_t *nonce, size_t at, const uint8_t *k)
{
    if (len > 0)
        (void)crypto_stream_chacha20_ietf_xor_ic(
            out, in, len, nonce, (uint32_t)(1u + at / BLOCK), k);
}

int sec_cipher_encrypt_from(sec_cipher *c, uint8_t *ct, size_t pre,
                            const uint8_t *src, size_t len, size_t post)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    uint8_t block0[BLOCK], lens[16];
    crypto_onetimeauth_poly1305_state st;
    static const uint8_t zeros[16];

    if (c->failed || !c->has_key)
        return -EPROTO;
    if (c->n == NONCE_MAX) {
        c->failed = 1;
        return -EOVERFLOW;
    }
    /* Block counters are 32 bits: 256 GiB, as the one-call AEAD. */
    size_t total = pre + len + post;
    if (total < pre ||
        total > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return -EMSGSIZE;
    make_nonce(nonce, c->n);
    size_t head = (BLOCK - pre % BLOCK) % BLOCK; /* body bytes to a boundary */
    if (head > len)
        head = len;
    size_t mid = (len - head) / BLOCK * BLOCK;
    if (mid == 0 || len < SPLIT_MIN) {
        /* A short body: copy it and encrypt all in place. */
        if (len > 0)
            memcpy(ct + pre, src, len);
        stream_xor(ct, ct, total, nonce, 0, c->k);
    } else {
        size_t a = pre + head, tail = len - head - mid;
        memcpy(ct + pre, src, head);
        memcpy(ct + a + mid, src + head + mid, tail);
        stream_xor(ct, ct, a, nonce, 0, c->k);
        stream_xor(ct + a, src + head, mid, nonce, a, c->k);
        stream_xor(ct + a + mid, ct + a + mid, tail + post, nonce, a + mid,
                   c->k);
    }
    crypto_stream_chacha20_ietf(block0, sizeof block0, nonce, c->k);
    crypto_onetimeauth_poly1305_init(&st, block0);
    crypto_onetimeauth_poly1305_update(&st, ct, total);
    crypto_onetimeauth_poly1305_update(&st, zeros, (16u - total % 16u) % 16u);
    memset(lens, 0, 8); /* the length of the associated data: none */
    for (size_t i = 0; i < 8; i++)
        lens[8 + i] = (uint8_t)((uint64_t)total >> (8 * i));
    crypto_onetimeauth_poly1305_update(&st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&st, ct + total);
    sodium_memzero(block0, sizeof block0);
    sodium_memzero(&st, sizeof st);
    c->n++;
    return 0;
}

int sec_cipher_open_begin(const sec_cipher *c, sec_open *o, size_t len)
{
    uint8_t block0[BLOCK];
    if (c->failed || !c->has_key)
        return -EPROTO;
    if (c->n == NONCE_MAX)
        return -EOVERFLOW;
    if (len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return -EMSGSIZE;
    make_nonce(o->nonce, c->n);
    crypto_stream_chacha20_ietf(block0, sizeof block0, o->nonce, c->k);
    crypto_onetimeauth_poly1305_init(&o->st, block0);
    sodium_memzero(block0, sizeof block0);
    o->ks_block = UINT64_MAX;
    o->pos = 0;
    o->len = len;
    return 0;
}

void sec_cipher_open_update(const sec_cipher *c, sec_open *o, const uint8_t *ct,
                            size_t n, uint8_t *pt)
{
    static const uint8_t zeros[BLOCK];
    if (n > o->len - o->pos)
        n = o->len - o->pos; /* never past what begin announced */
    /* Authenticate the ciphertext before pt (maybe ct) is overwritten. */
    crypto_onetimeauth_poly1305_update(&o->st, ct, n);
    if (pt == NULL) { /* authenticated, its plaintext not wanted */
        o->pos += n;
        return;
    }
    while (n > 0) {
        uint64_t blk = o->pos / BLOCK;
        size_t off = o->pos % BLOCK;
        size_t k;
        if (off == 0 && n >= BLOCK) {
            /* Whole blocks: one call of the stream cipher. */
            k = n / BLOCK * BLOCK;
            stream_xor(pt, ct, k, o->nonce, o->pos, c->k);
        } else {
            /* A piece of a block: from that block's keystream, kept for
             * the next piece. */
            if (o->ks_block != blk) {
                stream_xor(o->ks, zeros, BLOCK, o->nonce, o->pos - off, c->k);
                o->ks_block = blk;
            }
            k = BLOCK - off < n ? BLOCK - off : n;
            for (size_t i = 0; i < k; i++)
                pt[i] = ct[i] ^ o->ks[off + i];
        }
        o->pos += k;
        ct += k;
        pt += k;
        n -= k;
    }
}

int sec_cipher_open_final(sec_cipher *c, sec_open *o,
                          const uint8_t tag[static SEC_AEAD_TAG_BYTES])
{
    static const uint8_t zeros[16];
    uint8_t lens[16], mac[16];
    int rc = 0;
    crypto_onetimeauth_poly1305_update(&o->st, zeros,
                                       (16u - o->len % 16u) % 16u);
    memset(lens, 0, 8);
    for (size_t i = 0; i < 8; i++)
        lens[8 + i] = (uint8_t)((uint64_t)o->len >> (8 * i));
    crypto_onetimeauth_poly1305_update(&o->st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&o->st, mac);
    if (o->pos != o->len || c->failed || !c->has_key ||
        crypto_verify_16(mac, tag) != 0) {
        c->failed = 1;
        rc = -EACCES;
    } else {
        c->n++;
    }
    sodium_memzero(o, sizeof *o);
    sodium_memzero(mac, sizeof mac);
    return rc;
}

int sec_cipher_decrypt(sec_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *ct, size_t len, uint8_t *pt)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    if (c->failed || !c->has_key)
        return -EPROTO;
    if (len < SEC_AEAD_TAG_BYTES) {
        /* A truncated message fails the link like a forged one. */
        c->failed = 1;
        return -EPROTO;
    }
    if (c->n == NONCE_MAX) {
        c->failed = 1;
        return -EOVERFLOW;
    }
    make_nonce(nonce, c->n);
    /* The tag is checked before anything is written to pt, so pt == ct is
     * safe; on failure libsodium zeroes pt. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, len, ad,
                                                  adlen, nonce, c->k) != 0) {
        c->failed = 1;
        return -EACCES;
    }
    c->n++;
    return 0;
}

void sec_cipher_wipe(sec_cipher *c)
{
    sodium_memzero(c->k, sizeof c->k);
    c->n = 0;
    c->has_key = 0;
    c->failed = 1;
}
