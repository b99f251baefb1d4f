/* hs_fixture.h: the fixed keys and payloads of the handshake fuzz targets
 * (fuzz_hs_responder.c, fuzz_hs_initiator.c) and of the program that makes
 * their seed corpora (gen_hs_corpus.c).
 *
 * With every key fixed the handshake is deterministic: the same valid
 * transcript is accepted on every run, so the fuzzer can mutate from it.
 * The keys are those of the Noise test vectors and of docs/PROTOCOL.md
 * section 3.5.
 *
 * The first input byte of both targets chooses the case:
 *   bits 0-1  pattern: 0 XX, 1 and 3 XXpsk0, 2 XXpsk3
 *   bit 2     (responder only) message 1 is the valid one of the fixed
 *             initiator and the rest of the input is message 3
 *   bit 3     read payloads into a 16-byte buffer, to reach -EMSGSIZE */
#ifndef CONFAB_TESTS_HS_FIXTURE_H
#define CONFAB_TESTS_HS_FIXTURE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "crypto/noise.h"

#define HS_VALID_MSG1   0x04u
#define HS_SMALL_BUFFER 0x08u
#define HS_SMALL_CAP    16u

/* initiator static secret key */
static const uint8_t hs_init_static[32] = {
    0xe6, 0x1e, 0xf9, 0x91, 0x9c, 0xde, 0x45, 0xdd, 0x5f, 0x82, 0x16,
    0x64, 0x04, 0xbd, 0x08, 0xe3, 0x8b, 0xce, 0xb5, 0xdf, 0xdf, 0xde,
    0xd0, 0xa3, 0x4c, 0x8d, 0xf7, 0xed, 0x54, 0x22, 0x14, 0xd1};
/* initiator ephemeral secret key */
static const uint8_t hs_init_ephemeral[32] = {
    0x89, 0x3e, 0x28, 0xb9, 0xdc, 0x6c, 0xa8, 0xd6, 0x11, 0xab, 0x66,
    0x47, 0x54, 0xb8, 0xce, 0xb7, 0xba, 0xc5, 0x11, 0x73, 0x49, 0xa4,
    0x43, 0x9a, 0x6b, 0x05, 0x69, 0xda, 0x97, 0x7c, 0x46, 0x4a};
/* responder static secret key */
static const uint8_t hs_resp_static[32] = {
    0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3,
    0x19, 0x4d, 0xec, 0xe6, 0x76, 0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4,
    0x08, 0xb4, 0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93};
/* responder ephemeral secret key */
static const uint8_t hs_resp_ephemeral[32] = {
    0xbb, 0xdb, 0x4c, 0xdb, 0xd3, 0x09, 0xf1, 0xa1, 0xf2, 0xe1, 0x45,
    0x69, 0x67, 0xfe, 0x28, 0x8c, 0xad, 0xd6, 0xf7, 0x12, 0xd6, 0x5d,
    0xc7, 0xb7, 0x79, 0x3d, 0x5e, 0x63, 0xda, 0x6b, 0x37, 0x5b};
/* the public network key */
static const uint8_t hs_psk[32] = {
    0x7d, 0xff, 0x18, 0xf2, 0x81, 0x7a, 0x3a, 0xe1, 0xaa, 0x79, 0x85,
    0xe1, 0x5e, 0xa7, 0xc8, 0x33, 0xc1, 0xbe, 0xc9, 0x0b, 0xa7, 0x86,
    0xdd, 0x31, 0xae, 0x94, 0xe8, 0xb7, 0x3d, 0x2f, 0x90, 0x50};
/* the responder's HELLO (message 2 payload) */
static const uint8_t hs_hello_resp[44] = {
    0x86, 0xa1, 0x76, 0x01, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa3, 0x62,
    0x6f, 0x62, 0xa4, 0x70, 0x6f, 0x72, 0x74, 0xcd, 0xb7, 0x99, 0xa4,
    0x62, 0x6f, 0x6f, 0x74, 0x01, 0xa3, 0x6d, 0x61, 0x78, 0xce, 0x01,
    0x00, 0x00, 0x00, 0xa6, 0x67, 0x72, 0x6f, 0x75, 0x70, 0x73, 0x90};
/* the initiator's HELLO (message 3 payload) */
static const uint8_t hs_hello_init[50] = {
    0x86, 0xa1, 0x76, 0x01, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0xa5,
    0x61, 0x6c, 0x69, 0x63, 0x65, 0xa4, 0x70, 0x6f, 0x72, 0x74,
    0xcd, 0xb7, 0x98, 0xa4, 0x62, 0x6f, 0x6f, 0x74, 0x07, 0xa3,
    0x6d, 0x61, 0x78, 0xce, 0x01, 0x00, 0x00, 0x00, 0xa6, 0x67,
    0x72, 0x6f, 0x75, 0x70, 0x73, 0x91, 0xa3, 0x6f, 0x70, 0x73};

static const uint8_t hs_prologue[] = "confab/1";

/* Stops the fuzzer: an invariant of crypto/noise.h was broken. */
#define HS_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

static inline sec_noise_pattern hs_pattern(uint8_t mode)
{
    switch (mode & 3u) {
    case 0:
        return SEC_NOISE_XX;
    case 2:
        return SEC_NOISE_XXPSK3;
    default:
        return SEC_NOISE_XXPSK0;
    }
}

/* A handshake state with the fixed keys; aborts if it cannot be made. */
static inline sec_noise *hs_new(sec_noise_pattern pattern, int initiator)
{
    sec_noise_config c = {
        .pattern = pattern,
        .initiator = initiator,
        .prologue = hs_prologue,
        .prologue_len = sizeof hs_prologue - 1,
        .static_sk = initiator ? hs_init_static : hs_resp_static,
        .psk = pattern == SEC_NOISE_XX ? NULL : hs_psk,
        .ephemeral_sk = initiator ? hs_init_ephemeral : hs_resp_ephemeral,
    };
    sec_noise *hs = NULL;
    HS_CHECK(sec_noise_new(&c, &hs) == 0);
    return hs;
}

/* After a failed read or write, the state must refuse everything. */
static inline void hs_check_failed(sec_noise *hs)
{
    uint8_t buf[64];
    size_t n;
    sec_cipher s, r;

    HS_CHECK(!sec_noise_done(hs));
    HS_CHECK(!sec_noise_our_turn(hs));
    HS_CHECK(sec_noise_remote_static(hs) == NULL);
    HS_CHECK(sec_noise_write(hs, NULL, 0, buf, sizeof buf, &n) == -EPROTO);
    HS_CHECK(sec_noise_read(hs, buf, 48, buf, sizeof buf, &n) == -EPROTO);
    HS_CHECK(sec_noise_split(hs, &s, &r) == -EPROTO);
}

/* After a complete handshake: split, and one message each way through
 * the pair of ciphers (ours and, mirrored, the peer's). */
static inline void hs_check_done(sec_noise *hs)
{
    uint8_t pt[8] = "payload", ct[sizeof pt + SEC_AEAD_TAG_BYTES];
    sec_cipher s, r;

    HS_CHECK(sec_noise_done(hs));
    HS_CHECK(sec_noise_remote_static(hs) != NULL);
    HS_CHECK(sec_noise_split(hs, &s, &r) == 0);
    HS_CHECK(sec_cipher_encrypt(&s, NULL, 0, pt, sizeof pt, ct) == 0);
    /* Our receiving cipher must not accept what we sent. */
    HS_CHECK(sec_cipher_decrypt(&r, NULL, 0, ct, sizeof ct, pt) == -EACCES);
    sec_cipher_wipe(&s);
    sec_cipher_wipe(&r);
}

#endif
