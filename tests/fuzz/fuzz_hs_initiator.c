/* fuzz_hs_initiator.c: an initiator with fixed keys writes message 1 and
 * reads a stranger's message 2; if that is accepted it writes message 3 and
 * splits.
 *
 * Input, after the mode byte of hs_fixture.h: message 2. The seed corpus
 * (tests/fuzz/corpus/hs_initiator) holds the valid message 2 of the fixed
 * responder for each pattern, so the fuzzer mutates from a real one. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "hs_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t payload[SEC_NOISE_MAX_MSG], msg[SEC_NOISE_MAX_MSG];
    size_t len, cap;
    sec_noise *ini;
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

    ini = hs_new(pattern, 1);

    /* -> [psk,] e */
    HS_CHECK(sec_noise_write(ini, NULL, 0, msg, sizeof msg, &len) == 0);
    HS_CHECK(len == (pattern == SEC_NOISE_XX ? 32u : 48u));
    HS_CHECK(!sec_noise_our_turn(ini));

    /* <- e, ee, s, es */
    rc = sec_noise_read(ini, data, size, payload, cap, &len);
    if (rc != 0) {
        HS_CHECK(rc == -EACCES || rc == -EPROTO || rc == -EMSGSIZE);
        hs_check_failed(ini);
        goto out;
    }
    HS_CHECK(len <= cap && len + 96 == size);
    HS_CHECK(sec_noise_remote_static(ini) != NULL);

    /* -> s, se [, psk]: every DH with the stranger's keys already worked,
     * so this cannot fail. */
    rc = sec_noise_write(ini, hs_hello_init, sizeof hs_hello_init, msg,
                         sizeof msg, &len);
    HS_CHECK(rc == 0);
    HS_CHECK(len == 64 + sizeof hs_hello_init);
    hs_check_done(ini);

out:
    sec_noise_free(ini);
    return 0;
}
