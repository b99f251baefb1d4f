/* cli/util.c: the small helpers every command shares: numbers, clocks,
 * hex, safe text for a terminal, JSON lines, files. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <locale.h>
#include <wchar.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_parse_seconds(const char *s, double max, int *ms)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > max ||
        v * 1000.0 > (double)INT32_MAX)
        return -1;
    *ms = (int)ceil(v * 1000.0);
    return 0;
}

uint64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cli_now_ms(void)
{
    return cli_now_us() / 1000u;
}

void cli_hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    if (cap == 0)
        return;
    if (n > (cap - 1) / 2)
        n = (cap - 1) / 2;
    sodium_bin2hex(out, cap, p, n);
}

void cli_fmt_ms(uint64_t us, char *out, size_t cap)
{
    double ms = (double)us / 1000.0;
    if (ms < 1.0)
        snprintf(out, cap, "%.3f", ms);
    else if (ms < 10.0)
        snprintf(out, cap, "%.2f", ms);
    else if (ms < 100.0)
        snprintf(out, cap, "%.1f", ms);
    else
        snprintf(out, cap, "%.0f", ms);
}

void cli_sgr(const cli_ctx *ctx, FILE *f, const char *code)
{
    if (ctx->color)
        fprintf(f, "\033[%sm", code);
}

/* Decodes one UTF-8 sequence at s[0..n): its length and code point, or 0
 * when it is not valid (overlong, a surrogate, over U+10FFFF, cut short). */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xe0) == 0xc0) {
        len = 2, c = b & 0x1fu, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
        len = 3, c = b & 0x0fu, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
        len = 4, c = b & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

void cli_put_text(FILE *f, const uint8_t *s, size_t n,
                  const char *newline_indent)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            fprintf(f, "\\x%02x", s[i]);
            i++;
            continue;
        }
        if (cp == '\n' && newline_indent != NULL) {
            fputc('\n', f);
            fputs(newline_indent, f);
        } else if (cp == '\n') {
            fputs("\\n", f);
        } else if (cp == '\t') {
            fputc('\t', f);
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            /* Escape sequences and other controls stop here: a peer's
             * text must not move the cursor or recolour the terminal. */
            fprintf(f, "\\x%02x", (unsigned)cp);
        } else {
            fwrite(s + i, 1, len, f);
        }
        i += len;
    }
}

void cli_safe_copy(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    if (cap == 0)
        return;
    for (const unsigned char *s = (const unsigned char *)in;
         *s != '\0' && n + 1 < cap; s++) {
        unsigned char ch = *s;
        if (ch < 0x20 || ch == 0x7f) {
            ch = '?';
        } else if (ch == 0xc2 && s[1] >= 0x80 && s[1] < 0xa0) {
            ch = '?'; /* a C1 control: two bytes, one '?' */
            s++;
        }
        out[n++] = (char)ch;
    }
    /* Never end inside a UTF-8 sequence cut by cap. */
    while (n > 0 && ((unsigned char)out[n - 1] & 0x80) != 0) {
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)out[start] & 0xc0) == 0x80)
            start--;
        unsigned char lead = (unsigned char)out[start];
        size_t want = lead >= 0xf0   ? 4
                      : lead >= 0xe0 ? 3
                      : lead >= 0xc0 ? 2
                                     : 1;
        if (n - start >= want)
            break;
        n = start;
    }
    out[n] = '\0';
}

/* Columns a printable code point takes on a terminal, as wcwidth(3) says
 * in a UTF-8 locale (terminals and tmux use the same tables); without one,
 * the East Asian wide blocks and the emoji take two, combining marks
 * none. */
static size_t cp_width(uint32_t cp)
{
    static int utf8_locale = -1;
    if (utf8_locale < 0) {
        /* The program's locale is "C" until someone sets it: take the
         * user's character type, which decides nothing but widths and
         * character classes here. */
        const char *cur = setlocale(LC_CTYPE, NULL);
        if (cur == NULL || strcmp(cur, "C") == 0 || strcmp(cur, "POSIX") == 0)
            (void)setlocale(LC_CTYPE, "");
        utf8_locale = MB_CUR_MAX > 1;
    }
    if (utf8_locale) {
        int w = wcwidth((wchar_t)cp);
        if (w >= 0)
            return (size_t)w;
    }
    static const uint32_t zero[][2] = {
        {0x0300, 0x036f}, {0x200b, 0x200f},   {0x20d0, 0x20ff},
        {0xfe00, 0xfe0f}, {0xe0100, 0xe01ef},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff},
        {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
        {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe30, 0xfe4f},
        {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x1f300, 0x1f64f},
        {0x1f680, 0x1f6ff}, {0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
    };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (cp >= zero[i][0] && cp <= zero[i][1])
            return 0;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (cp >= wide[i][0] && cp <= wide[i][1])
            return 2;
    return 1;
}

size_t cli_text_width(const uint8_t *s, size_t n)
{
    size_t i = 0, w = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            w += 4; /* \xNN */
            i++;
            continue;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            w += cp == '\n' ? 2 : 4;
        else
            w += cp_width(cp);
        i += len;
    }
    return w;
}

json_object *cli_json_bytes(const uint8_t *p, size_t n)
{
    return json_object_new_string_len((const char *)p, (int)n);
}

json_object *cli_json_hex(const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];
    cli_hex(p, n, hex, sizeof hex);
    return json_object_new_string(hex);
}

void cli_json_print(json_object *o)
{
    fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                JSON_C_TO_STRING_NOSLASHESCAPE),
          stdout);
    fputc('\n', stdout);
    fflush(stdout);
    json_object_put(o);
}

int cli_read_file(const cli_ctx *ctx, const char *path, size_t max,
                  uint8_t **buf, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        cli_error(ctx, "cannot open %s: %s", path, strerror(errno));
        return CLI_FAILED;
    }
    struct stat st;
    int rc = CLI_OK;
    size_t cap = 65536, n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > max) {
            cli_error(ctx,
                      "%s is %llu bytes; a message is at most %zu bytes "
                      "(%zu MiB)",
                      path, (unsigned long long)st.st_size, max, max >> 20);
            rc = CLI_REFUSED;
            goto out;
        }
        cap = (size_t)st.st_size + 1;
    }
    uint8_t *b = malloc(cap);
    if (b == NULL) {
        cli_error(ctx, "out of memory reading %s", path);
        rc = CLI_FAILED;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            /* A pipe, or a file that grew: read on up to one byte past the
             * limit, which is enough to know it is too large. */
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            uint8_t *nb = ncap > cap ? realloc(b, ncap) : NULL;
            if (nb == NULL) {
                free(b);
                cli_error(ctx,
                          ncap > cap ? "out of memory reading %s"
                                     : "%s is larger than %zu bytes, the "
                                       "largest message",
                          path, max);
                rc = ncap > cap ? CLI_FAILED : CLI_REFUSED;
                goto out;
            }
            b = nb;
            cap = ncap;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                cli_error(ctx, "cannot read %s: %s", path, strerror(errno));
                free(b);
                rc = CLI_FAILED;
                goto out;
            }
            break;
        }
    }
    if (n > max) {
        cli_error(ctx, "%s is larger than %zu bytes, the largest message", path,
                  max);
        free(b);
        rc = CLI_REFUSED;
        goto out;
    }
    *buf = b;
    *len = n;
out:
    if (f != stdin)
        fclose(f);
    return rc;
}

char *cli_join_words(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t at = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (i > 0)
            s[at++] = ' ';
        memcpy(s + at, argv[i], n);
        at += n;
    }
    s[at] = '\0';
    return s;
}
