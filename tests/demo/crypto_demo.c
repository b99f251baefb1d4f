/* crypto_demo.c: the crypto core at work, for a newcomer (`scripts/dev
 * demo`).
 *
 * Two nodes, alice and bob, get identities, connect over a real TCP socket
 * on 127.0.0.1 (a port the kernel picks), run the confab handshake
 * Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b (docs/PROTOCOL.md section 3) with
 * the public network key, and exchange one encrypted message each way.
 * Then a tampered message is rejected, and a stranger holding another
 * network key is refused at the first handshake message. Frames and
 * messages are encoded with wire/. Exits 0 when everything behaved. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto/identity.h"
#include "crypto/netkey.h"
#include "crypto/noise.h"
#include "wire/frame.h"
#include "wire/msg.h"

#define MSG1_LIMIT 48u /* docs/PROTOCOL.md 3.4: message 1 is 48 bytes */

/* One end of a TCP connection: a socket and its frame decoder. */
typedef struct end {
    const char *name;
    int fd;
    wire_frame_decoder dec;
    uint8_t in[4096];
    size_t in_off, in_len;
} end;

static uint8_t frame_buf[WIRE_FRAME_HEADROOM + WIRE_MAX_FRAME];

__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("demo: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != 0)
        die("%s failed: %s", what, strerror(rc < 0 ? -rc : rc));
}

static void hex(char *out, size_t cap, const uint8_t *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len && 2 * i + 2 < cap; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * i] = '\0';
}

/* The first 16 bytes in hex, and "..." when there are more. */
static const char *short_hex(const uint8_t *b, size_t len)
{
    static char out[64];
    hex(out, sizeof out, b, len < 16 ? len : 16);
    if (len > 16)
        memcpy(out + 32, "...", 4); /* 32 digits, then "..." and NUL */
    return out;
}

/* " (a 50-byte frame)": what a message of len bytes takes on the wire. */
static const char *framed(size_t len)
{
    static char out[40];
    snprintf(out, sizeof out, " (a %zu-byte frame)",
             wire_frame_header_len(len) + len);
    return out;
}

/* One handshake message: what it is, its size, its first bytes. */
static void print_step(const char *what, const uint8_t *msg, size_t len)
{
    printf("  %s, %zu bytes%s\n     %s\n", what, len, framed(len),
           short_hex(msg, len));
}

static void print_id(const char *who, const uint8_t pk[SEC_KEY_BYTES])
{
    char id[2 * SEC_KEY_BYTES + 1];
    hex(id, sizeof id, pk, SEC_KEY_BYTES);
    printf("  %-6s node id %s\n         short id %.8s\n", who, id, id);
}

/* Sends payload as one frame (a msgpack bin 8 or bin 16, section 2). */
static void send_frame(end *e, const uint8_t *payload, size_t len)
{
    size_t start;
    memcpy(frame_buf + WIRE_FRAME_HEADROOM, payload, len);
    check(wire_frame_seal(frame_buf, len, &start), "wire_frame_seal");
    const uint8_t *p = frame_buf + start;
    size_t left = WIRE_FRAME_HEADROOM + len - start;
    while (left > 0) {
        ssize_t w = write(e->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die("%s: write: %s", e->name, strerror(errno));
        p += w;
        left -= (size_t)w;
    }
}

/* Reads from the socket until one frame is complete; returns its length,
 * or a negative errno (-EPROTO: not a frame, or over the decoder's limit;
 * -ECONNRESET: the peer closed). */
static long recv_frame(end *e, uint8_t *out, size_t cap)
{
    for (;;) {
        if (e->in_off == e->in_len) {
            ssize_t r = read(e->fd, e->in, sizeof e->in);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -ECONNRESET;
            e->in_off = 0;
            e->in_len = (size_t)r;
        }
        const uint8_t *p = e->in + e->in_off, *payload;
        size_t n = e->in_len - e->in_off, plen;
        int rc = wire_frame_decode(&e->dec, &p, &n, &payload, &plen);
        e->in_off = e->in_len - n;
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (plen > cap)
                return -EMSGSIZE;
            memcpy(out, payload, plen);
            return (long)plen;
        }
    }
}

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int listen_loopback(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        die("cannot listen on 127.0.0.1: %s", strerror(errno));
    *port = ntohs(a.sin_port);
    return fd;
}

/* Connects a to the listener and accepts b: a is the initiator. */
static void connect_pair(int lfd, uint16_t port, end *a, end *b)
{
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    a->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0 || connect(a->fd, (struct sockaddr *)&to, sizeof to) != 0)
        die("cannot connect to 127.0.0.1:%u: %s", port, strerror(errno));
    b->fd = accept(lfd, NULL, NULL);
    if (b->fd < 0)
        die("accept: %s", strerror(errno));
    a->in_off = a->in_len = b->in_off = b->in_len = 0;
    /* The initiator takes whole frames at once; the responder accepts only
     * 48 bytes until message 1 is read (docs/PROTOCOL.md 3.4). */
    wire_frame_decoder_init(&a->dec, WIRE_MAX_FRAME);
    wire_frame_decoder_init(&b->dec, MSG1_LIMIT);
}

static void close_end(end *e)
{
    wire_frame_decoder_free(&e->dec);
    close(e->fd);
}

static size_t hello(const char *name, uint16_t port, uint8_t *buf, size_t cap)
{
    wire_hello h = {
        .version = WIRE_VERSION,
        .name = {(const uint8_t *)name, (uint32_t)strlen(name)},
        .port = port,
        .boot = 1,
        .max = 16u << 20,
    };
    size_t len;
    check(wire_hello_encode(&h, buf, cap, &len), "wire_hello_encode");
    return len;
}

static void print_hello(const char *who, const uint8_t *buf, size_t len)
{
    wire_hello h;
    check(wire_hello_decode(buf, len, &h), "wire_hello_decode");
    printf("     %s's HELLO: name \"%.*s\", port %u, protocol version %llu\n",
           who, (int)h.name.len, (const char *)h.name.ptr, h.port,
           (unsigned long long)h.version);
}

/* A unicast DATA message with a text body. */
static size_t data_msg(const char *text, uint64_t seq, uint8_t *buf, size_t cap)
{
    struct timespec now;
    wire_msg m = {.type = WIRE_T_DATA};
    size_t len;
    clock_gettime(CLOCK_REALTIME, &now);
    sec_random(m.u.data.id, sizeof m.u.data.id);
    m.u.data.kind = WIRE_K_UNICAST;
    m.u.data.seq = seq;
    m.u.data.ts =
        (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    m.u.data.has_ct = 1;
    m.u.data.ct = (wire_bytes){(const uint8_t *)"text/plain", 10};
    m.u.data.body = (wire_bytes){(const uint8_t *)text, (uint32_t)strlen(text)};
    m.u.data.size = m.u.data.body.len;
    check(wire_msg_encode(&m, buf, cap, &len), "wire_msg_encode");
    return len;
}

/* Encrypts a DATA message from one end, sends it, and decrypts it at the
 * other. */
static void send_text(end *from, sec_cipher *send, end *to, sec_cipher *recv,
                      const char *text, uint64_t seq)
{
    static uint8_t pt[WIRE_MAX_FRAME], ct[WIRE_MAX_FRAME];
    wire_msg m;
    size_t len = data_msg(text, seq, pt, WIRE_MAX_PLAINTEXT);

    printf("  %s -> %s: \"%s\"\n", from->name, to->name, text);
    printf("     plaintext   %zu bytes (a msgpack DATA map holding the text)\n",
           len);
    check(sec_cipher_encrypt(send, NULL, 0, pt, len, ct), "encrypt");
    printf("     ciphertext  %zu bytes  %s  (nonce %llu)\n",
           len + SEC_AEAD_TAG_BYTES, short_hex(ct, len + SEC_AEAD_TAG_BYTES),
           (unsigned long long)(send->n - 1));
    send_frame(from, ct, len + SEC_AEAD_TAG_BYTES);

    long got = recv_frame(to, ct, sizeof ct);
    if (got < 0)
        check((int)got, "receiving a frame");
    check(sec_cipher_decrypt(recv, NULL, 0, ct, (size_t)got, pt), "decrypt");
    check(wire_msg_decode(pt, (size_t)got - SEC_AEAD_TAG_BYTES, &m),
          "wire_msg_decode");
    printf("     %s decrypted: \"%.*s\"\n\n", to->name, (int)m.u.data.body.len,
           (const char *)m.u.data.body.ptr);
}

int main(void)
{
    static uint8_t msg[WIRE_MAX_FRAME], payload[WIRE_MAX_FRAME];
    uint8_t h_alice[SEC_HASH_BYTES], h_bob[SEC_HASH_BYTES];
    sec_identity *alice_id, *bob_id, *mallory_id;
    sec_netkey *netkey, *other_key;
    sec_noise *alice, *bob, *mallory, *bob2;
    sec_cipher a_send, a_recv, b_send, b_recv;
    end a = {.name = "alice"}, b = {.name = "bob"};
    end m = {.name = "mallory"}, b2 = {.name = "bob"};
    size_t len, plen;
    uint16_t port;
    long got;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    check(sec_init(), "sec_init");

    printf("== Identities\n");
    printf("  Each node has an X25519 key pair; its public key is its node "
           "id.\n");
    check(sec_identity_generate(&alice_id), "sec_identity_generate");
    check(sec_identity_generate(&bob_id), "sec_identity_generate");
    print_id("alice", alice_id->pk);
    print_id("bob", bob_id->pk);
    check(sec_netkey_public(&netkey), "sec_netkey_public");
    printf("  Both use the public network key (BLAKE2b of \"%s\"):\n"
           "         %s\n\n",
           SEC_PUBLIC_NETWORK_STRING, short_hex(netkey->key, SEC_KEY_BYTES));

    printf("== A TCP connection on loopback\n");
    int lfd = listen_loopback(&port);
    connect_pair(lfd, port, &a, &b);
    printf("  bob listens on 127.0.0.1:%u; alice connects, so she is the "
           "initiator.\n\n",
           port);

    printf("== The handshake: Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b, "
           "prologue \"confab/1\"\n");
    sec_noise_config ca = {.pattern = SEC_NOISE_XXPSK0,
                           .initiator = 1,
                           .prologue = (const uint8_t *)"confab/1",
                           .prologue_len = 8,
                           .static_sk = alice_id->sk,
                           .psk = netkey->key};
    sec_noise_config cb = ca;
    cb.initiator = 0;
    cb.static_sk = bob_id->sk;
    check(sec_noise_new(&ca, &alice), "sec_noise_new");
    check(sec_noise_new(&cb, &bob), "sec_noise_new");

    /* -> psk, e */
    check(sec_noise_write(alice, NULL, 0, msg, sizeof msg, &len), "message 1");
    send_frame(&a, msg, len);
    print_step("1. alice -> bob   message 1 (psk, e)", msg, len);
    printf("     alice's fresh ephemeral key and a tag made with the network "
           "key.\n");
    got = recv_frame(&b, msg, sizeof msg);
    if (got < 0)
        check((int)got, "bob receiving message 1");
    check(sec_noise_read(bob, msg, (size_t)got, payload, sizeof payload, &plen),
          "bob reading message 1");
    printf("     bob checked the tag: alice holds the same network key.\n\n");
    wire_frame_decoder_set_limit(&b.dec, WIRE_MAX_FRAME);

    /* <- e, ee, s, es */
    plen = hello("bob", port, payload, sizeof payload);
    check(sec_noise_write(bob, payload, plen, msg, sizeof msg, &len),
          "message 2");
    send_frame(&b, msg, len);
    print_step("2. bob -> alice   message 2 (e, ee, s, es)", msg, len);
    printf("     bob's ephemeral key, then his static key (his node id) and "
           "his HELLO,\n     encrypted.\n");
    got = recv_frame(&a, msg, sizeof msg);
    if (got < 0)
        check((int)got, "alice receiving message 2");
    check(
        sec_noise_read(alice, msg, (size_t)got, payload, sizeof payload, &plen),
        "alice reading message 2");
    /* memcmp: node ids are public keys. */
    if (memcmp(sec_noise_remote_static(alice), bob_id->pk, SEC_KEY_BYTES) != 0)
        die("alice learned the wrong node id");
    printf("     alice learned bob's node id %.8s..., and the es DH proves "
           "bob holds\n     the secret half.\n",
           short_hex(sec_noise_remote_static(alice), SEC_KEY_BYTES));
    print_hello("bob", payload, plen);
    printf("\n");

    /* -> s, se */
    plen = hello("alice", 0, payload, sizeof payload);
    check(sec_noise_write(alice, payload, plen, msg, sizeof msg, &len),
          "message 3");
    send_frame(&a, msg, len);
    print_step("3. alice -> bob   message 3 (s, se)", msg, len);
    printf("     alice's static key (her node id) and her HELLO, "
           "encrypted.\n");
    got = recv_frame(&b, msg, sizeof msg);
    if (got < 0)
        check((int)got, "bob receiving message 3");
    check(sec_noise_read(bob, msg, (size_t)got, payload, sizeof payload, &plen),
          "bob reading message 3");
    if (memcmp(sec_noise_remote_static(bob), alice_id->pk, SEC_KEY_BYTES) != 0)
        die("bob learned the wrong node id");
    printf("     bob learned alice's node id %.8s..., and the se DH proves "
           "alice holds\n     the secret half.\n",
           short_hex(sec_noise_remote_static(bob), SEC_KEY_BYTES));
    print_hello("alice", payload, plen);

    sec_noise_hash(alice, h_alice);
    sec_noise_hash(bob, h_bob);
    if (!sec_noise_done(alice) || !sec_noise_done(bob) ||
        memcmp(h_alice, h_bob, sizeof h_alice) != 0)
        die("the two sides disagree about the handshake");
    printf("\n  Done. Both sides hold the same handshake hash %s\n",
           short_hex(h_alice, sizeof h_alice));
    check(sec_noise_split(alice, &a_send, &a_recv), "split");
    check(sec_noise_split(bob, &b_send, &b_recv), "split");
    printf("  and split it into two transport keys, one per direction.\n\n");
    sec_noise_free(alice);
    sec_noise_free(bob);

    printf("== Encrypted messages\n");
    send_text(&a, &a_send, &b, &b_recv, "hello bob, this is alice", 1);
    send_text(&b, &b_send, &a, &a_recv, "hi alice, bob here", 1);

    printf("== A tampered message\n");
    len = data_msg("pay mallory 100", 2, payload, WIRE_MAX_PLAINTEXT);
    check(sec_cipher_encrypt(&a_send, NULL, 0, payload, len, msg), "encrypt");
    msg[3] ^= 0x01; /* one bit flipped on the way */
    send_frame(&a, msg, len + SEC_AEAD_TAG_BYTES);
    printf("  alice sends \"pay mallory 100\"; one bit is flipped on the "
           "way.\n");
    got = recv_frame(&b, msg, sizeof msg);
    if (got < 0)
        check((int)got, "bob receiving");
    rc = sec_cipher_decrypt(&b_recv, NULL, 0, msg, (size_t)got, payload);
    if (rc != -EACCES)
        die("a tampered message was not rejected (%d)", rc);
    printf("  bob: authentication failed (-EACCES): rejected.\n");
    rc = sec_cipher_decrypt(&b_recv, NULL, 0, msg, (size_t)got, payload);
    if (rc != -EPROTO)
        die("the failed cipher was used again (%d)", rc);
    printf("  bob's receiving cipher now refuses everything; a node closes "
           "the link.\n\n");
    sec_cipher_wipe(&a_send);
    sec_cipher_wipe(&a_recv);
    sec_cipher_wipe(&b_send);
    sec_cipher_wipe(&b_recv);
    close_end(&a);
    close_end(&b);

    printf("== A stranger with another network key\n");
    check(sec_identity_generate(&mallory_id), "sec_identity_generate");
    check(sec_netkey_generate(&other_key), "sec_netkey_generate");
    connect_pair(lfd, port, &m, &b2);
    sec_noise_config cm = ca;
    cm.static_sk = mallory_id->sk;
    cm.psk = other_key->key;
    check(sec_noise_new(&cm, &mallory), "sec_noise_new");
    check(sec_noise_new(&cb, &bob2), "sec_noise_new");
    check(sec_noise_write(mallory, NULL, 0, msg, sizeof msg, &len),
          "message 1");
    send_frame(&m, msg, len);
    printf("  mallory connects and sends message 1 (%zu bytes) made with her "
           "own key.\n",
           len);
    got = recv_frame(&b2, msg, sizeof msg);
    if (got < 0)
        check((int)got, "bob receiving message 1");
    rc = sec_noise_read(bob2, msg, (size_t)got, payload, sizeof payload, &plen);
    if (rc != -EACCES)
        die("a stranger's message 1 was not refused (%d)", rc);
    printf("  bob: the tag does not verify (-EACCES). He closes the "
           "connection without\n  answering, so mallory learns nothing about "
           "him, not even his node id.\n\n");
    sec_noise_free(mallory);
    sec_noise_free(bob2);
    close_end(&m);
    close_end(&b2);
    close(lfd);

    sec_identity_free(alice_id);
    sec_identity_free(bob_id);
    sec_identity_free(mallory_id);
    sec_netkey_free(netkey);
    sec_netkey_free(other_key);
    printf("All good.\n");
    return 0;
}
