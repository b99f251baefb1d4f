/* fuzz_hs_responder.c: a responder with fixed keys reads a stranger's
 * message 1, answers with message 2 and reads the stranger's message 3.
 *
 * Input, after the mode byte of hs_fixture.h:
 *   mode bit 2 clear: [n] [message 1: n bytes] [message 3: the rest]
 *   mode bit 2 set:   [message 3]   (message 1 is the fixed initiator's)
 * The second form is past message 1's psk check at once; the first, seeded
 * with valid transcripts (tests/fuzz/corpus/hs_responder), lets the fuzzer
 * mutate both messages. Whatever the input, the calls must return one of
 * their documented errors, and a failed state must refuse all further use. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "hs_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t payload[SEC_NOISE_MAX_MSG], msg2[SEC_NOISE_MAX_MSG];
    uint8_t valid1[64];
    const uint8_t *m1, *m3;
    size_t n1, n3, len, cap;
    sec_noise *res;
    uint8_t mode;
    int rc;

    if (size < 1)
        return 0;
    HS_CHECK(sec_init() == 0);
    mode = data[0];
    data++;
    size--;
    sec_noise_pattern pattern = hs_pattern(mode);
    cap = (mode & HS_SMALL_BUFFER) ? HS_SMALL_CAP : sizeof payload;

    if (mode & HS_VALID_MSG1) {
        sec_noise *ini = hs_new(pattern, 1);
        HS_CHECK(sec_noise_write(ini, NULL, 0, valid1, sizeof valid1, &n1) ==
                 0);
        sec_noise_free(ini);
        m1 = valid1;
        m3 = data;
        n3 = size;
    } else {
        if (size < 1)
            return 0;
        n1 = data[0];
        data++;
        size--;
        if (n1 > size)
            n1 = size;
        m1 = data;
        m3 = data + n1;
        n3 = size - n1;
    }

    res = hs_new(pattern, 0);
    HS_CHECK(!sec_noise_our_turn(res));

    /* -> [psk,] e */
    rc = sec_noise_read(res, m1, n1, payload, cap, &len);
    if (rc != 0) {
        HS_CHECK(!(mode & HS_VALID_MSG1));
        HS_CHECK(rc == -EACCES || rc == -EPROTO || rc == -EMSGSIZE);
        hs_check_failed(res);
        goto out;
    }
    HS_CHECK(len <= cap && len < n1);
    HS_CHECK(sec_noise_remote_static(res) == NULL);
    HS_CHECK(sec_noise_our_turn(res));

    /* <- e, ee, s, es: a low-order ephemeral key from the stranger fails
     * here, in ee. */
    rc = sec_noise_write(res, hs_hello_resp, sizeof hs_hello_resp, msg2,
                         sizeof msg2, &len);
    if (rc != 0) {
        HS_CHECK(rc == -EACCES);
        hs_check_failed(res);
        goto out;
    }
    HS_CHECK(len == 96 + sizeof hs_hello_resp);

    /* -> s, se [, psk] */
    rc = sec_noise_read(res, m3, n3, payload, cap, &len);
    if (rc != 0) {
        HS_CHECK(rc == -EACCES || rc == -EPROTO || rc == -EMSGSIZE);
        hs_check_failed(res);
        goto out;
    }
    HS_CHECK(len <= cap && len + 64 == n3);
    hs_check_done(res);

out:
    sec_noise_free(res);
    return 0;
}
