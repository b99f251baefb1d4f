/* crypto/noise.c: the Noise handshake of confab links,
 *
 *   Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b
 *     -> psk, e
 *     <- e, ee, s, es
 *     -> s, se
 *
 * and, to prove the code against the published vectors, the same XX
 * pattern without a psk and with the psk at the end of the last message
 * (XXpsk3). Written from the Noise Protocol Framework, revision 34: section
 * 5 (CipherState, SymmetricState, HandshakeState), 9 (psk modifiers: in a psk
 * handshake the `e` token also calls MixKey(e.public_key)), 12 (25519,
 * ChaChaPoly, BLAKE2b with HASHLEN 64 and BLOCKLEN 128). Each message is
 * written out step by step with its tokens commented, the way the kernel
 * WireGuard noise.c lays out Noise_IKpsk2.
 *
 * The handshake state lives in ordinary memory: it is per connection and
 * short-lived, and sec_noise_free() wipes it. Temporary secrets on the
 * stack are wiped before each function returns. */
#include "crypto/noise.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HASHLEN  SEC_HASH_BYTES /* 64 for BLAKE2b */
#define BLOCKLEN 128u           /* BLAKE2b block, for HMAC */
#define DHLEN    SEC_KEY_BYTES  /* X25519 */
#define TAGLEN   SEC_AEAD_TAG_BYTES

struct sec_noise {
    sec_noise_pattern pattern;
    int initiator;
    int msg;    /* index of the next handshake message; 3 when done */
    int failed; /* sticky */

    /* SymmetricState */
    uint8_t ck[HASHLEN];
    uint8_t h[HASHLEN];
    sec_cipher cs;

    uint8_t s_sk[DHLEN], s_pk[DHLEN]; /* our static pair */
    uint8_t e_sk[DHLEN], e_pk[DHLEN]; /* our ephemeral pair */
    uint8_t rs[DHLEN], re[DHLEN];     /* the peer's */
    int has_rs;
    uint8_t psk[SEC_KEY_BYTES];
};

static const char *const protocol_names[] = {
    [SEC_NOISE_XX] = "Noise_XX_25519_ChaChaPoly_BLAKE2b",
    [SEC_NOISE_XXPSK0] = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b",
    [SEC_NOISE_XXPSK3] = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
};

static int has_psk(const sec_noise *hs)
{
    return hs->pattern != SEC_NOISE_XX;
}

/* HASH(a || b): BLAKE2b-512. */
static void hash2(uint8_t out[HASHLEN], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;

    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, a, alen);
    (void)crypto_generichash_blake2b_update(&st, b, blen);
    (void)crypto_generichash_blake2b_final(&st, out, HASHLEN);
    sodium_memzero(&st, sizeof st);
}

/* HMAC-BLAKE2b (RFC 2104) of a || b. The key is always HASHLEN bytes here
 * (a chaining key or an HKDF temp key), shorter than the block, so it is
 * padded with zeros to BLOCKLEN. */
static void hmac(uint8_t out[HASHLEN], const uint8_t key[HASHLEN],
                 const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;
    uint8_t pad[BLOCKLEN];
    uint8_t inner[HASHLEN];

    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < HASHLEN; i++)
        pad[i] ^= key[i];
    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    (void)crypto_generichash_blake2b_update(&st, a, alen);
    (void)crypto_generichash_blake2b_update(&st, b, blen);
    (void)crypto_generichash_blake2b_final(&st, inner, sizeof inner);

    memset(pad, 0x5c, sizeof pad);
    for (size_t i = 0; i < HASHLEN; i++)
        pad[i] ^= key[i];
    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    (void)crypto_generichash_blake2b_update(&st, inner, sizeof inner);
    (void)crypto_generichash_blake2b_final(&st, out, HASHLEN);

    sodium_memzero(&st, sizeof st);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

/* HKDF(chaining_key, input_key_material, 2 or 3): out3 may be NULL. The
 * outputs may not alias ck. */
static void hkdf(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikmlen,
                 uint8_t out1[HASHLEN], uint8_t out2[HASHLEN], uint8_t *out3)
{
    static const uint8_t one = 1, two = 2, three = 3;
    uint8_t temp_key[HASHLEN];

    hmac(temp_key, ck, ikm, ikmlen, NULL, 0);
    hmac(out1, temp_key, &one, 1, NULL, 0);
    hmac(out2, temp_key, out1, HASHLEN, &two, 1);
    if (out3 != NULL)
        hmac(out3, temp_key, out2, HASHLEN, &three, 1);
    sodium_memzero(temp_key, sizeof temp_key);
}

static void mix_hash(sec_noise *hs, const uint8_t *data, size_t len)
{
    hash2(hs->h, hs->h, HASHLEN, data, len);
}

static void mix_key(sec_noise *hs, const uint8_t *ikm, size_t len)
{
    uint8_t ck[HASHLEN], temp_k[HASHLEN];

    hkdf(hs->ck, ikm, len, ck, temp_k, NULL);
    memcpy(hs->ck, ck, HASHLEN);
    /* HASHLEN is 64: the cipher key is the first 32 bytes. */
    sec_cipher_init(&hs->cs, temp_k);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(temp_k, sizeof temp_k);
}

static void mix_key_and_hash(sec_noise *hs, const uint8_t *ikm, size_t len)
{
    uint8_t ck[HASHLEN], temp_h[HASHLEN], temp_k[HASHLEN];

    hkdf(hs->ck, ikm, len, ck, temp_h, temp_k);
    memcpy(hs->ck, ck, HASHLEN);
    mix_hash(hs, temp_h, HASHLEN);
    sec_cipher_init(&hs->cs, temp_k);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(temp_h, sizeof temp_h);
    sodium_memzero(temp_k, sizeof temp_k);
}

/* MixKey(DH(sk, pk)). crypto_scalarmult() fails on a low-order point or an
 * all-zero result: a peer's key that contributes nothing is an
 * authentication failure, like any other. */
static int mix_dh(sec_noise *hs, const uint8_t sk[DHLEN],
                  const uint8_t pk[DHLEN])
{
    uint8_t shared[DHLEN];
    int rc = 0;

    if (crypto_scalarmult(shared, sk, pk) != 0) {
        rc = -EACCES;
        goto out;
    }
    mix_key(hs, shared, sizeof shared);
out:
    sodium_memzero(shared, sizeof shared);
    return rc;
}

/* EncryptAndHash(pt) into out; returns the bytes written. Before the first
 * key the payload goes out in the clear, as Noise says. */
static size_t encrypt_and_hash(sec_noise *hs, const uint8_t *pt, size_t len,
                               uint8_t *out)
{
    size_t n = len;

    if (hs->cs.has_key) {
        /* Cannot fail: the counter is at most 2 and len is bounded. */
        if (sec_cipher_encrypt(&hs->cs, hs->h, HASHLEN, pt, len, out) != 0)
            abort();
        n += TAGLEN;
    } else if (len > 0) {
        memmove(out, pt, len);
    }
    mix_hash(hs, out, n);
    return n;
}

/* DecryptAndHash(ct[0..len)) into out; the caller has checked that len
 * holds the tag when there is a key. */
static int decrypt_and_hash(sec_noise *hs, const uint8_t *ct, size_t len,
                            uint8_t *out)
{
    if (hs->cs.has_key) {
        if (sec_cipher_decrypt(&hs->cs, hs->h, HASHLEN, ct, len, out) != 0)
            return -EACCES;
    } else if (len > 0) {
        memcpy(out, ct, len);
    }
    /* h covers the ciphertext, which the caller's buffer still holds. */
    mix_hash(hs, ct, len);
    return 0;
}

/* Bytes a handshake message has besides its payload (tokens, and the tag
 * of the payload when it is encrypted). */
static size_t overhead(const sec_noise *hs)
{
    switch (hs->msg) {
    case 0: /* e, and with a psk the payload is already encrypted */
        return DHLEN + (has_psk(hs) ? TAGLEN : 0);
    case 1: /* e, encrypted s, encrypted payload */
        return DHLEN + (DHLEN + TAGLEN) + TAGLEN;
    default: /* encrypted s, encrypted payload */
        return (DHLEN + TAGLEN) + TAGLEN;
    }
}

/* -> psk, e   (XX and XXpsk3: -> e) */
static int write_msg1(sec_noise *hs, const uint8_t *payload, size_t len,
                      uint8_t *out)
{
    uint8_t *p = out;

    if (hs->pattern == SEC_NOISE_XXPSK0) {
        /* psk */
        mix_key_and_hash(hs, hs->psk, SEC_KEY_BYTES);
    }
    /* e */
    memcpy(p, hs->e_pk, DHLEN);
    mix_hash(hs, hs->e_pk, DHLEN);
    if (has_psk(hs))
        mix_key(hs, hs->e_pk, DHLEN);
    p += DHLEN;

    (void)encrypt_and_hash(hs, payload, len, p);
    return 0;
}

static int read_msg1(sec_noise *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload)
{
    const uint8_t *p = msg;

    if (hs->pattern == SEC_NOISE_XXPSK0) {
        /* psk */
        mix_key_and_hash(hs, hs->psk, SEC_KEY_BYTES);
    }
    /* e */
    memcpy(hs->re, p, DHLEN);
    mix_hash(hs, hs->re, DHLEN);
    if (has_psk(hs))
        mix_key(hs, hs->re, DHLEN);
    p += DHLEN;

    /* With psk0 this is where a wrong network key shows. */
    return decrypt_and_hash(hs, p, len - DHLEN, payload);
}

/* <- e, ee, s, es */
static int write_msg2(sec_noise *hs, const uint8_t *payload, size_t len,
                      uint8_t *out)
{
    uint8_t *p = out;
    int rc;

    /* e */
    memcpy(p, hs->e_pk, DHLEN);
    mix_hash(hs, hs->e_pk, DHLEN);
    if (has_psk(hs))
        mix_key(hs, hs->e_pk, DHLEN);
    p += DHLEN;

    /* ee */
    rc = mix_dh(hs, hs->e_sk, hs->re);
    if (rc < 0)
        return rc;

    /* s */
    p += encrypt_and_hash(hs, hs->s_pk, DHLEN, p);

    /* es: the responder holds s */
    rc = mix_dh(hs, hs->s_sk, hs->re);
    if (rc < 0)
        return rc;

    (void)encrypt_and_hash(hs, payload, len, p);
    return 0;
}

static int read_msg2(sec_noise *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload)
{
    const uint8_t *p = msg;
    /* Room for the encrypted token, though only DHLEN bytes come out: GCC
     * -O3 cannot see that the unencrypted path never runs for `s`. */
    uint8_t rs[DHLEN + TAGLEN];
    int rc;

    /* e */
    memcpy(hs->re, p, DHLEN);
    mix_hash(hs, hs->re, DHLEN);
    if (has_psk(hs))
        mix_key(hs, hs->re, DHLEN);
    p += DHLEN;

    /* ee */
    rc = mix_dh(hs, hs->e_sk, hs->re);
    if (rc < 0)
        goto out;

    /* s */
    rc = decrypt_and_hash(hs, p, DHLEN + TAGLEN, rs);
    if (rc < 0)
        goto out;
    memcpy(hs->rs, rs, DHLEN);
    hs->has_rs = 1;
    p += DHLEN + TAGLEN;

    /* es: the initiator holds e */
    rc = mix_dh(hs, hs->e_sk, hs->rs);
    if (rc < 0)
        goto out;

    rc = decrypt_and_hash(hs, p, len - (size_t)(p - msg), payload);
out:
    sodium_memzero(rs, sizeof rs);
    return rc;
}

/* -> s, se   (XXpsk3: -> s, se, psk) */
static int write_msg3(sec_noise *hs, const uint8_t *payload, size_t len,
                      uint8_t *out)
{
    uint8_t *p = out;
    int rc;

    /* s */
    p += encrypt_and_hash(hs, hs->s_pk, DHLEN, p);

    /* se: the initiator holds s */
    rc = mix_dh(hs, hs->s_sk, hs->re);
    if (rc < 0)
        return rc;

    if (hs->pattern == SEC_NOISE_XXPSK3) {
        /* psk */
        mix_key_and_hash(hs, hs->psk, SEC_KEY_BYTES);
    }

    (void)encrypt_and_hash(hs, payload, len, p);
    return 0;
}

static int read_msg3(sec_noise *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload)
{
    const uint8_t *p = msg;
    /* Room for the encrypted token, though only DHLEN bytes come out: GCC
     * -O3 cannot see that the unencrypted path never runs for `s`. */
    uint8_t rs[DHLEN + TAGLEN];
    int rc;

    /* s */
    rc = decrypt_and_hash(hs, p, DHLEN + TAGLEN, rs);
    if (rc < 0)
        goto out;
    memcpy(hs->rs, rs, DHLEN);
    hs->has_rs = 1;
    p += DHLEN + TAGLEN;

    /* se: the responder holds e */
    rc = mix_dh(hs, hs->e_sk, hs->rs);
    if (rc < 0)
        goto out;

    if (hs->pattern == SEC_NOISE_XXPSK3) {
        /* psk */
        mix_key_and_hash(hs, hs->psk, SEC_KEY_BYTES);
    }

    rc = decrypt_and_hash(hs, p, len - (size_t)(p - msg), payload);
out:
    sodium_memzero(rs, sizeof rs);
    return rc;
}

size_t sec_noise_size(void)
{
    return sizeof(sec_noise);
}

int sec_noise_new(const sec_noise_config *c, sec_noise **out)
{
    if (out == NULL)
        return -EINVAL;
    sec_noise *hs = malloc(sizeof *hs);
    if (hs == NULL)
        return -ENOMEM;
    int rc = sec_noise_init(hs, c);
    if (rc != 0) {
        free(hs);
        return rc;
    }
    *out = hs;
    return 0;
}

int sec_noise_init(sec_noise *hs, const sec_noise_config *c)
{
    const char *name;
    size_t name_len;
    int rc;

    if (hs == NULL || c == NULL || c->static_sk == NULL ||
        (c->prologue == NULL && c->prologue_len > 0))
        return -EINVAL;
    if (c->pattern != SEC_NOISE_XX && c->pattern != SEC_NOISE_XXPSK0 &&
        c->pattern != SEC_NOISE_XXPSK3)
        return -EINVAL;
    if ((c->pattern == SEC_NOISE_XX) != (c->psk == NULL))
        return -EINVAL;
    rc = sec_init();
    if (rc < 0)
        return rc;
    memset(hs, 0, sizeof *hs);
    hs->pattern = c->pattern;
    hs->initiator = c->initiator != 0;

    memcpy(hs->s_sk, c->static_sk, DHLEN);
    if (c->psk != NULL)
        memcpy(hs->psk, c->psk, SEC_KEY_BYTES);
    if (c->ephemeral_sk != NULL)
        memcpy(hs->e_sk, c->ephemeral_sk, DHLEN);
    else
        sec_random(hs->e_sk, DHLEN);
    if (c->static_pk != NULL)
        memcpy(hs->s_pk, c->static_pk, DHLEN);
    if ((c->static_pk == NULL &&
         crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0) ||
        crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0) {
        sec_noise_wipe(hs);
        return -EINVAL;
    }

    /* InitializeSymmetric(protocol_name): every name here is shorter than
     * HASHLEN, so h is the name padded with zeros. */
    name = protocol_names[c->pattern];
    name_len = strlen(name);
    memcpy(hs->h, name, name_len);
    memcpy(hs->ck, hs->h, HASHLEN);
    hs->cs.has_key = 0;
    mix_hash(hs, c->prologue, c->prologue_len);
    /* XX has no pre-messages. */
    return 0;
}

int sec_noise_our_turn(const sec_noise *hs)
{
    if (hs->failed || hs->msg >= 3)
        return 0;
    /* The initiator writes messages 0 and 2, the responder message 1. */
    return (hs->msg % 2 == 0) == hs->initiator;
}

int sec_noise_done(const sec_noise *hs)
{
    return !hs->failed && hs->msg == 3;
}

int sec_noise_write(sec_noise *hs, const uint8_t *payload, size_t payload_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    size_t need;
    int rc;

    if (hs == NULL || out_len == NULL || (payload == NULL && payload_len > 0) ||
        (out == NULL && cap > 0))
        return -EINVAL;
    if (!sec_noise_our_turn(hs)) {
        hs->failed = 1;
        return -EPROTO;
    }
    /* Sizes first, so that a too-small buffer changes nothing. */
    if (payload_len > SEC_NOISE_MAX_MSG)
        return -EMSGSIZE;
    need = overhead(hs) + payload_len;
    if (need > SEC_NOISE_MAX_MSG || need > cap)
        return -EMSGSIZE;

    switch (hs->msg) {
    case 0:
        rc = write_msg1(hs, payload, payload_len, out);
        break;
    case 1:
        rc = write_msg2(hs, payload, payload_len, out);
        break;
    default:
        rc = write_msg3(hs, payload, payload_len, out);
        break;
    }
    if (rc < 0) {
        hs->failed = 1;
        return rc;
    }
    hs->msg++;
    *out_len = need;
    return 0;
}

int sec_noise_read(sec_noise *hs, const uint8_t *msg, size_t len,
                   uint8_t *payload, size_t cap, size_t *payload_len)
{
    size_t over;
    int rc;

    if (hs == NULL)
        return -EINVAL;
    if (payload_len == NULL || (msg == NULL && len > 0) ||
        (payload == NULL && cap > 0)) {
        rc = -EINVAL;
        goto fail;
    }
    if (hs->failed || hs->msg >= 3 || sec_noise_our_turn(hs)) {
        rc = -EPROTO;
        goto fail;
    }
    if (len > SEC_NOISE_MAX_MSG) {
        rc = -EMSGSIZE;
        goto fail;
    }
    over = overhead(hs);
    if (len < over) {
        rc = -EPROTO;
        goto fail;
    }
    if (len - over > cap) {
        rc = -EMSGSIZE;
        goto fail;
    }

    switch (hs->msg) {
    case 0:
        rc = read_msg1(hs, msg, len, payload);
        break;
    case 1:
        rc = read_msg2(hs, msg, len, payload);
        break;
    default:
        rc = read_msg3(hs, msg, len, payload);
        break;
    }
    if (rc < 0)
        goto fail;
    hs->msg++;
    *payload_len = len - over;
    return 0;

fail:
    hs->failed = 1;
    return rc;
}

const uint8_t *sec_noise_remote_static(const sec_noise *hs)
{
    if (hs->failed || !hs->has_rs)
        return NULL;
    return hs->rs;
}

void sec_noise_hash(const sec_noise *hs, uint8_t h[static SEC_HASH_BYTES])
{
    memcpy(h, hs->h, HASHLEN);
}

int sec_noise_split(sec_noise *hs, sec_cipher *send, sec_cipher *recv)
{
    uint8_t k1[HASHLEN], k2[HASHLEN];

    if (!sec_noise_done(hs))
        return -EPROTO;
    hkdf(hs->ck, NULL, 0, k1, k2, NULL);
    /* Truncated to 32 bytes by sec_cipher_init, as HASHLEN 64 requires. */
    if (hs->initiator) {
        sec_cipher_init(send, k1);
        sec_cipher_init(recv, k2);
    } else {
        sec_cipher_init(send, k2);
        sec_cipher_init(recv, k1);
    }
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    return 0;
}

void sec_noise_wipe(sec_noise *hs)
{
    if (hs != NULL)
        sodium_memzero(hs, sizeof *hs);
}

void sec_noise_free(sec_noise *hs)
{
    if (hs == NULL)
        return;
    sec_noise_wipe(hs);
    free(hs);
}
