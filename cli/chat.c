/* cli/chat.c: `confab chat`: an interactive line mode. Lines typed go to
 * a peer, a group or everyone; messages and peer and group events are
 * printed above the line being typed as they arrive.
 *
 * On a terminal the line is edited with libedit through its readline
 * callback interface, so that one poll() watches both the keyboard and
 * the control socket. Anything else on stdin (a pipe, a file) is read
 * line by line, and the end of input ends the chat. */
#include "cli/show.h"

#include <editline/readline.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING    64
#define CALL_MS        10000
#define DRAIN_MS       5000 /* at the end, for the replies still due */
#define LINE_MAX_BYTES 65536

typedef enum target { T_ALL, T_PEER, T_GROUP } target;

/* What a request in flight was for, to act on its reply. W_SYNC: a
 * request made only for its reply, which comes after every event the node
 * sent before it. */
typedef enum what { W_SEND, W_JOIN, W_LEAVE, W_PEERS, W_SYNC, W_NAMES } what;

typedef struct pending {
    uint64_t rid;
    what w;
    char arg[CONFAB_MAX_GROUP + 1];
    char *text; /* W_SEND: the line, shown as sent once the reply comes */
    size_t len;
    uint64_t t_us;
    bool queued; /* the peer was not linked: shown at once as queued */
} pending;

typedef struct chat {
    cli_ctx *ctx;
    cli_client c;
    bool tty;  /* libedit on a terminal */
    bool quit; /* /quit, end of input, a signal */
    int rc;    /* the exit code */
    target t;
    uint8_t to[CONFAB_ID_BYTES];
    char label[CONFAB_MAX_NAME + 32]; /* the target, for people */
    char group[CONFAB_MAX_GROUP + 1];
    bool joined_here; /* chat joined the group: it leaves at the end */
    char prompt[CONFAB_MAX_NAME + 40];
    pending pend[MAX_PENDING];
    size_t n_pend;
    char *line; /* stdin that is not a terminal: the partial line */
    size_t line_len;
    /* the first hour (#14) */
    char me[CONFAB_MAX_NAME + 1]; /* this node's name, for own lines */
    bool to_up;                   /* T_PEER: the peer is linked now */
    cli_peers known;              /* names, to tell equal ones apart */
    bool between; /* a line was just entered: nothing is being typed */
} chat;

/* libedit's line callback takes no user pointer: this is its way back to
 * the one chat of the process. */
static chat *the_chat;
static volatile sig_atomic_t got_signal, got_winch;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        got_winch = 1;
    else
        got_signal = sig;
}

/* ---- output above the input line -------------------------------------- */

/* Erases the prompt and the line being typed, leaving the cursor at the
 * start of the row where the prompt was. The line may wrap: the cursor's
 * row within it comes from the prompt's and the text's widths. */
static void out_begin(chat *ch)
{
    fflush(stdout);
    if (!ch->tty || ch->quit)
        return; /* after the end, nothing is being typed */
    int rows = 0, cols = 0;
    rl_get_screen_size(&rows, &cols);
    if (cols <= 0)
        cols = 80;
    if (ch->between) { /* the cursor is at the start of an empty row */
        fputs("\r\033[J", stdout);
        fflush(stdout); /* before an error goes to stderr */
        return;
    }
    size_t at = cli_text_width((const uint8_t *)ch->prompt, strlen(ch->prompt));
    if (rl_line_buffer != NULL && rl_point > 0)
        at += cli_text_width((const uint8_t *)rl_line_buffer, (size_t)rl_point);
    size_t up = at / (size_t)cols;
    if (up > 0)
        printf("\033[%zuA", up);
    fputs("\r\033[J", stdout);
    fflush(stdout); /* before an error goes to stderr */
}

/* Draws the prompt and the line again, below what was printed. */
static void out_end(chat *ch)
{
    fflush(stdout);
    fflush(stderr);
    /* Between a line entered and the prompt drawn again for the next,
     * libedit still holds the old line: drawing it would leave it there
     * ("bob> /nopebob> "). The prompt comes with the next line. */
    if (ch->tty && !ch->quit && !ch->between)
        rl_forced_update_display();
}

/* ---- requests --------------------------------------------------------- */

static void lost(chat *ch, int rc)
{
    out_begin(ch);
    ch->rc = cli_lost(&ch->c, rc);
    ch->quit = true;
    out_end(ch);
}

static void pump(chat *ch, int timeout_ms);
static void submit_one(chat *ch, wire_ctl_builder *b, uint64_t rid, what w,
                       const char *arg);
static void submit_text(chat *ch, wire_ctl_builder *b, uint64_t rid, what w,
                        const char *arg, const char *text, size_t len,
                        bool queued);
static void print_own(chat *ch, const char *text, size_t len, const char *mark);

/* A request made for its reply only. */
static void submit(chat *ch, wire_ctl_builder *b, uint64_t rid, what w,
                   const char *arg)
{
    submit_text(ch, b, rid, w, arg, NULL, 0, false);
}

/* The own line, as sent: time, this node's name, the text and a mark. */
static void print_own(chat *ch, const char *text, size_t len, const char *mark)
{
    time_t now = time(NULL);
    struct tm tm;
    char when[16] = "??:??:??";
    if (localtime_r(&now, &tm) != NULL)
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    cli_sgr(ch->ctx, stdout, "2");
    printf("[%s]", when);
    cli_sgr(ch->ctx, stdout, "0");
    fputc(' ', stdout);
    cli_sgr(ch->ctx, stdout, "1");
    fputs(ch->me[0] ? ch->me : "me", stdout);
    cli_sgr(ch->ctx, stdout, "0");
    fputs("> ", stdout);
    cli_put_text(stdout, (const uint8_t *)text, len, "    ");
    fputs("  ", stdout);
    cli_sgr(ch->ctx, stdout, "2");
    fputs(mark, stdout);
    cli_sgr(ch->ctx, stdout, "0");
    fputc('\n', stdout);
}

/* Sends a built request and remembers it; waits for a free slot first. */
static void submit_one(chat *ch, wire_ctl_builder *b, uint64_t rid, what w,
                       const char *arg)
{
    while (ch->n_pend == MAX_PENDING && ch->rc == CLI_OK)
        pump(ch, CALL_MS);
    if (ch->rc != CLI_OK) { /* the node is gone */
        wire_ctl_builder_free(b);
        return;
    }
    int rc = cli_send(&ch->c, b);
    wire_ctl_builder_free(b);
    if (rc != 0) {
        lost(ch, rc);
        return;
    }
    pending *p = &ch->pend[ch->n_pend++];
    p->rid = rid;
    p->w = w;
    snprintf(p->arg, sizeof p->arg, "%s", arg ? arg : "");
    p->text = NULL;
    p->len = 0;
    p->t_us = cli_now_us();
    p->queued = false;
}

/* submit(), for a line typed: it is shown as sent when the reply says
 * how it went (or at once, as queued, for a peer not linked). */
static void submit_text(chat *ch, wire_ctl_builder *b, uint64_t rid, what w,
                        const char *arg, const char *text, size_t len,
                        bool queued)
{
    size_t before = ch->n_pend;
    submit_one(ch, b, rid, w, arg);
    if (text == NULL || ch->n_pend == before)
        return;
    pending *p = &ch->pend[ch->n_pend - 1];
    p->text = malloc(len + 1);
    if (p->text != NULL) {
        memcpy(p->text, text, len);
        p->len = len;
    }
    p->queued = queued;
    if (queued) {
        out_begin(ch);
        print_own(ch, text, len, "… queued (not linked now; sent when back)");
        out_end(ch);
    }
}

static void send_text(chat *ch, const char *text, size_t len)
{
    wire_ctl_builder b;
    uint64_t rid;
    switch (ch->t) {
    case T_PEER:
        /* A linked peer: the reply waits for its acknowledgement, and the
         * line shows delivered. One not linked: queued, shown so now. */
        cli_request(&ch->c, &b, "send", ch->to_up ? 4 : 3, &rid);
        wire_ctl_key(&b, "to");
        wire_ctl_put_bin(&b, ch->to, CONFAB_ID_BYTES);
        if (ch->to_up) {
            wire_ctl_key(&b, "wait");
            wire_ctl_put_bool(&b, 1);
        }
        break;
    case T_GROUP:
        cli_request(&ch->c, &b, "shout", 3, &rid);
        wire_ctl_key(&b, "group");
        wire_ctl_put_cstr(&b, ch->group);
        break;
    case T_ALL:
        cli_request(&ch->c, &b, "broadcast", 2, &rid);
        break;
    }
    wire_ctl_key(&b, "body");
    wire_ctl_put_bin(&b, text, len);
    wire_ctl_key(&b, "ct");
    wire_ctl_put_cstr(&b, "text/plain");
    submit_text(ch, &b, rid, W_SEND, NULL, text, len,
                ch->t == T_PEER && !ch->to_up);
}

static void group_op(chat *ch, const char *op, what w, const char *g)
{
    wire_ctl_builder b;
    uint64_t rid;
    cli_request(&ch->c, &b, op, 1, &rid);
    wire_ctl_key(&b, "group");
    wire_ctl_put_cstr(&b, g);
    submit(ch, &b, rid, w, g);
}

static void help(FILE *f)
{
    fputs("usage: confab chat [PEER | '#'GROUP]\n"
          "\n"
          "An interactive chat: each line typed is sent to PEER (a name or\n"
          "4+ hex digits of its id), shouted to GROUP (which chat joins\n"
          "first if this node is not a member, and leaves at the end), or\n"
          "with neither, broadcast to every peer. Messages, peers coming up\n"
          "or going down, and joins and leaves are shown as they happen.\n"
          "\n"
          "  /join GROUP    join a group     /leave GROUP   leave a group\n"
          "  /peers         list the peers   /help          these commands\n"
          "  /quit          leave (also Ctrl-D, or the end of input)\n"
          "  //text         send a line that starts with '/'\n"
          "\n"
          "When stdin is not a terminal, lines are read and sent as they\n"
          "come, and the end of input ends the chat.\n",
          f);
}

static void command(chat *ch, char *line)
{
    char *arg = line + 1;
    while (*arg != '\0' && *arg != ' ')
        arg++;
    size_t cmd_len = (size_t)(arg - line);
    while (*arg == ' ')
        arg++;
    size_t n = strlen(arg);
    while (n > 0 && arg[n - 1] == ' ')
        arg[--n] = '\0';
    if (arg[0] == '#' && arg[1] != '\0')
        arg++, n--;
#define IS(name) (cmd_len == strlen(name) && memcmp(line, name, cmd_len) == 0)
    if (IS("/quit") || IS("/exit") || IS("/q")) {
        ch->quit = true;
    } else if (IS("/join") || IS("/leave")) {
        bool join = IS("/join");
        if (n == 0 || n > CONFAB_MAX_GROUP || strchr(arg, ' ') != NULL) {
            out_begin(ch);
            cli_error(ch->ctx, "%s takes one GROUP name (1 to %u bytes)",
                      join ? "/join" : "/leave", CONFAB_MAX_GROUP);
            out_end(ch);
            return;
        }
        group_op(ch, join ? "join" : "leave", join ? W_JOIN : W_LEAVE, arg);
    } else if (IS("/peers")) {
        wire_ctl_builder b;
        uint64_t rid;
        cli_request(&ch->c, &b, "peers", 0, &rid);
        submit(ch, &b, rid, W_PEERS, NULL);
    } else if (IS("/help") || IS("/?")) {
        out_begin(ch);
        help(stdout);
        out_end(ch);
    } else {
        out_begin(ch);
        cli_error(ch->ctx, "unknown command '%.*s'; /help lists them",
                  (int)cmd_len, line);
        out_end(ch);
    }
#undef IS
}

/* One line typed (without its newline). */
static void on_input(chat *ch, char *line)
{
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = '\0';
    if (n == 0)
        return;
    if (line[0] == '/' && line[1] != '/') {
        command(ch, line);
        return;
    }
    if (line[0] == '/')
        line++, n--; /* "//text" sends "/text" */
    send_text(ch, line, n);
}

/* ---- what the node sends ------------------------------------------------ */

static void print_event(chat *ch, const wire_ctl_map *m, const wire_bytes *ev)
{
    wire_bytes id = {0}, name = {0}, state = {0}, reason = {0}, group = {0};
    (void)wire_ctl_get_bin(m, "id", &id);
    (void)wire_ctl_get_str(m, "name", &name);
    if (ch->ctx->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ev", cli_json_bytes(ev->ptr, ev->len));
        json_object_object_add(o, "id", cli_json_hex(id.ptr, id.len));
        json_object_object_add(o, "name", cli_json_bytes(name.ptr, name.len));
        if (wire_ctl_get_str(m, "state", &state) == 0)
            json_object_object_add(o, "state",
                                   cli_json_bytes(state.ptr, state.len));
        if (wire_ctl_get_str(m, "reason", &reason) == 0)
            json_object_object_add(o, "reason",
                                   cli_json_bytes(reason.ptr, reason.len));
        if (wire_ctl_get_str(m, "group", &group) == 0)
            json_object_object_add(o, "group",
                                   cli_json_bytes(group.ptr, group.len));
        cli_json_print(o);
        return;
    }
    char sid[9] = "?";
    if (id.len == CONFAB_ID_BYTES)
        cli_short_id(id.ptr, sid);
    cli_sgr(ch->ctx, stdout, "2");
    fputs("-- ", stdout);
    cli_put_text(stdout, name.ptr, name.len, NULL);
    printf(" (%s)", sid);
    if (ev->len == 4 && memcmp(ev->ptr, "peer", 4) == 0) {
        (void)wire_ctl_get_str(m, "state", &state);
        bool up = state.len == 2 && memcmp(state.ptr, "up", 2) == 0;
        printf(" is %s", up ? "up" : "down");
        if (!up && wire_ctl_get_str(m, "reason", &reason) == 0)
            printf(" (%.*s)", (int)reason.len, (const char *)reason.ptr);
    } else {
        (void)wire_ctl_get_str(m, "group", &group);
        fputs(ev->len == 4 ? " joined #" : " left #", stdout);
        cli_put_text(stdout, group.ptr, group.len, NULL);
    }
    cli_sgr(ch->ctx, stdout, "0");
    fputc('\n', stdout);
}

/* A line typed, shown as sent once the reply says how it went. */
static void own_outcome(chat *ch, const wire_ctl_map *m, const pending *p)
{
    wire_bytes st;
    uint64_t sent = 0;
    char mark[96];
    if (wire_ctl_get_str(m, "status", &st) == 0) {
        bool delivered = st.len == 9 && memcmp(st.ptr, "delivered", 9) == 0;
        char ms[32];
        cli_fmt_ms(cli_now_us() - p->t_us, ms, sizeof ms);
        if (delivered)
            snprintf(mark, sizeof mark, "✓ delivered (%s ms)", ms);
        else
            snprintf(mark, sizeof mark, "✗ %.*s", (int)st.len,
                     (const char *)st.ptr);
    } else if (wire_ctl_get_uint(m, "sent", &sent) == 0) {
        snprintf(mark, sizeof mark, "✓ sent to %llu %s%s",
                 (unsigned long long)sent, ch->t == T_GROUP ? "member" : "peer",
                 sent == 1 ? "" : "s");
    } else {
        snprintf(mark, sizeof mark, "✓ sent");
    }
    print_own(ch, p->text, p->len, mark);
}

static void on_reply(chat *ch, const wire_ctl_map *m, uint64_t rid)
{
    size_t i = 0;
    while (i < ch->n_pend && ch->pend[i].rid != rid)
        i++;
    if (i == ch->n_pend)
        return;
    pending p = ch->pend[i];
    ch->pend[i] = ch->pend[--ch->n_pend];
    int ok = 0;
    (void)wire_ctl_get_bool(m, "ok", &ok);
    if (ok && p.w == W_NAMES) {
        cli_peers l;
        if (cli_peers_parse(m, &l) == 0) {
            cli_peers_free(&ch->known);
            ch->known = l;
        }
        return;
    }
    if (ok && (p.w == W_SYNC || (p.w == W_SEND && p.queued))) {
        free(p.text);
        return; /* a queued line was shown when it was typed */
    }
    if (ok && p.w == W_SEND && p.text != NULL && !ch->ctx->json) {
        out_begin(ch);
        own_outcome(ch, m, &p);
        out_end(ch);
        free(p.text);
        return;
    }
    free(p.text);
    if (ok && p.w == W_SEND)
        return;
    out_begin(ch);
    if (cli_reply_status(&ch->c, m) == CLI_OK) {
        switch (p.w) {
        case W_SEND:
        case W_SYNC:
        case W_NAMES:
            break;
        case W_JOIN:
        case W_LEAVE:
            cli_sgr(ch->ctx, stdout, "2");
            printf("-- %s #", p.w == W_JOIN ? "joined" : "left");
            cli_put_text(stdout, (const uint8_t *)p.arg, strlen(p.arg), NULL);
            cli_sgr(ch->ctx, stdout, "0");
            putchar('\n');
            if (strcmp(p.arg, ch->group) == 0)
                ch->joined_here = false; /* the user took it over */
            break;
        case W_PEERS: {
            cli_peers l;
            if (cli_peers_parse(m, &l) == 0) {
                cli_peers_print(ch->ctx, stdout, &l);
                cli_peers_free(&l);
            }
            break;
        }
        }
    }
    out_end(ch);
}

/* Whether the sender's name is another known peer's too (or this
 * node's): then its short id tells them apart. */
static bool name_shared(const chat *ch, const wire_ctl_map *msg)
{
    wire_bytes from, name;
    if (wire_ctl_get_bin(msg, "from", &from) != 0 ||
        from.len != CONFAB_ID_BYTES ||
        wire_ctl_get_str(msg, "from_name", &name) != 0 || name.len == 0)
        return false;
    if (strlen(ch->me) == name.len && memcmp(ch->me, name.ptr, name.len) == 0)
        return true;
    for (size_t i = 0; i < ch->known.n; i++) {
        const cli_peer *p = &ch->known.v[i];
        if (memcmp(p->id, from.ptr, CONFAB_ID_BYTES) != 0 &&
            strlen(p->name) == name.len &&
            memcmp(p->name, name.ptr, name.len) == 0)
            return true;
    }
    return false;
}

/* A peer event: the target's state, and the names known, kept fresh. */
static void track_peer(chat *ch, const wire_ctl_map *m)
{
    wire_bytes id, state;
    if (wire_ctl_get_bin(m, "id", &id) != 0 || id.len != CONFAB_ID_BYTES ||
        wire_ctl_get_str(m, "state", &state) != 0)
        return;
    bool up = state.len == 2 && memcmp(state.ptr, "up", 2) == 0;
    if (ch->t == T_PEER && memcmp(id.ptr, ch->to, CONFAB_ID_BYTES) == 0)
        ch->to_up = up;
    if (up && ch->n_pend < MAX_PENDING) {
        wire_ctl_builder b;
        uint64_t rid;
        cli_request(&ch->c, &b, "peers", 0, &rid);
        submit(ch, &b, rid, W_NAMES, NULL);
    }
}

static void on_node_msg(chat *ch, const wire_ctl_map *m)
{
    uint64_t rid;
    wire_bytes ev;
    wire_ctl_map msg;
    if (wire_ctl_get_uint(m, "rid", &rid) == 0) {
        on_reply(ch, m, rid);
        return;
    }
    if (wire_ctl_get_str(m, "ev", &ev) != 0)
        return;
    out_begin(ch);
    if (ev.len == 3 && memcmp(ev.ptr, "msg", 3) == 0) {
        if (wire_ctl_get_map(m, "msg", &msg) == 0)
            (void)cli_print_message_ex(ch->ctx, stdout, &msg,
                                       name_shared(ch, &msg));
    } else if ((ev.len == 4 && memcmp(ev.ptr, "peer", 4) == 0) ||
               (ev.len == 4 && memcmp(ev.ptr, "join", 4) == 0) ||
               (ev.len == 5 && memcmp(ev.ptr, "leave", 5) == 0)) {
        print_event(ch, m, &ev);
    }
    out_end(ch);
    if (ev.len == 4 && memcmp(ev.ptr, "peer", 4) == 0)
        track_peer(ch, m);
}

/* Handles what the node sent, waiting at most timeout_ms for the first
 * message (0: only what is here). */
static void pump(chat *ch, int timeout_ms)
{
    wire_ctl_map m;
    int wait = timeout_ms;
    for (;;) {
        int rc = cli_next(&ch->c, &m, wait);
        if (rc == -ETIMEDOUT)
            return;
        if (rc <= 0) {
            lost(ch, rc);
            return;
        }
        on_node_msg(ch, &m);
        wait = 0;
    }
}

/* ---- input ------------------------------------------------------------ */

static void on_readline(char *line)
{
    chat *ch = the_chat;
    if (line == NULL) {
        ch->quit = true; /* Ctrl-D */
        fputc('\n', stdout);
        return;
    }
    if (*line != '\0')
        add_history(line);
    /* A line to send: its echo under the prompt (which names the other
     * side) goes; the line comes back as this node's, with its time and
     * how it went. A command stays as typed. */
    if (line[0] != '\0' && (line[0] != '/' || line[1] == '/')) {
        int rows = 0, cols = 0;
        rl_get_screen_size(&rows, &cols);
        if (cols <= 0)
            cols = 80;
        size_t w =
            cli_text_width((const uint8_t *)ch->prompt, strlen(ch->prompt)) +
            cli_text_width((const uint8_t *)line, strlen(line));
        printf("\033[%zuA\r\033[J", w / (size_t)cols + 1);
    }
    ch->between = true;
    on_input(ch, line);
    ch->between = false;
    free(line);
    /* libedit leaves unbuffered mode for the callback: enter it again,
     * which also draws the prompt. */
    if (!ch->quit)
        rl_callback_handler_install(ch->prompt, on_readline);
}

/* stdin is not a terminal: reads what is there and acts on whole lines;
 * at the end of input, on the last partial one too. */
static void read_lines(chat *ch)
{
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (ch->line_len > 0) {
            ch->line[ch->line_len] = '\0';
            on_input(ch, ch->line);
            ch->line_len = 0;
        }
        ch->quit = true;
        return;
    }
    for (ssize_t i = 0; i < n && !ch->quit; i++) {
        if (buf[i] == '\n' || ch->line_len == LINE_MAX_BYTES) {
            ch->line[ch->line_len] = '\0';
            on_input(ch, ch->line);
            ch->line_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        ch->line[ch->line_len++] = buf[i];
    }
}

/* ---- setting up ------------------------------------------------------- */

static int call(chat *ch, const char *op, const char *group,
                wire_ctl_map *reply)
{
    wire_ctl_builder b;
    uint64_t rid;
    cli_request(&ch->c, &b, op, group ? 1 : 0, &rid);
    if (group != NULL) {
        wire_ctl_key(&b, "group");
        wire_ctl_put_cstr(&b, group);
    }
    int rc = cli_call(&ch->c, &b, rid, reply, CALL_MS);
    wire_ctl_builder_free(&b);
    return rc;
}

/* Resolves the target; for a group, joins it unless already a member. */
static int set_target(chat *ch, const char *arg)
{
    wire_ctl_map r;
    /* This node's name, for its own lines; the peers, for their names. */
    int src = call(ch, "status", NULL, &r);
    if (src != CLI_OK)
        return src;
    wire_bytes me;
    if (wire_ctl_get_str(&r, "name", &me) == 0 && me.len < sizeof ch->me) {
        memcpy(ch->me, me.ptr, me.len);
        ch->me[me.len] = '\0';
        cli_safe_copy(ch->me, sizeof ch->me, ch->me);
    }
    src = cli_peers_fetch(&ch->c, &ch->known);
    if (src != CLI_OK)
        return src;
    if (arg == NULL) {
        ch->t = T_ALL;
        snprintf(ch->label, sizeof ch->label, "everyone");
        snprintf(ch->prompt, sizeof ch->prompt, "all> ");
        return CLI_OK;
    }
    if (arg[0] == '#') {
        size_t n = strlen(arg + 1);
        if (n == 0 || n > CONFAB_MAX_GROUP) {
            cli_error(ch->ctx, "a group name is 1 to %u bytes",
                      CONFAB_MAX_GROUP);
            return CLI_USAGE;
        }
        ch->t = T_GROUP;
        memcpy(ch->group, arg + 1, n + 1);
        int rc = call(ch, "status", NULL, &r);
        if (rc != CLI_OK)
            return rc;
        bool member = false;
        wire_iter it;
        uint32_t count;
        wire_bytes g;
        if (wire_ctl_get_array(&r, "groups", &it, &count) == 0)
            while (wire_ctl_next_str(&it, &g) == 1)
                member =
                    member || (g.len == n && memcmp(g.ptr, ch->group, n) == 0);
        if (!member) {
            rc = call(ch, "join", ch->group, &r);
            if (rc != CLI_OK)
                return rc;
            ch->joined_here = true;
        }
        char safe[CONFAB_MAX_GROUP + 1];
        cli_safe_copy(safe, sizeof safe, ch->group);
        snprintf(ch->label, sizeof ch->label, "#%s", safe);
        snprintf(ch->prompt, sizeof ch->prompt, "#%s> ", safe);
        return CLI_OK;
    }
    cli_peers l;
    const cli_peer *p;
    int rc = cli_peers_fetch(&ch->c, &l);
    if (rc == CLI_OK)
        rc = cli_resolve_peer(ch->ctx, &l, arg, &p);
    if (rc == CLI_OK) {
        char sid[9], safe[CONFAB_MAX_NAME + 1];
        ch->t = T_PEER;
        ch->to_up = strcmp(p->state, "up") == 0;
        memcpy(ch->to, p->id, CONFAB_ID_BYTES);
        cli_short_id(p->id, sid);
        cli_safe_copy(safe, sizeof safe, p->name);
        snprintf(ch->label, sizeof ch->label, "%s (%s)", safe, sid);
        snprintf(ch->prompt, sizeof ch->prompt, "%s> ",
                 safe[0] != '\0' ? safe : sid);
    }
    cli_peers_free(&l);
    return rc;
}

/* The options: CLI_OK to go on, -1 after --help, or CLI_USAGE. */
static int chat_parse(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return -1;
        }
        cli_error(ctx, "unknown option '%s'; try 'confab chat --help'",
                  argv[optind - 1]);
        return CLI_USAGE;
    }
    if (argc - optind > 1) {
        cli_error(ctx, "chat takes at most one PEER or #GROUP; try 'confab "
                       "chat --help'");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Subscribes to messages, peers and groups. */
static int chat_subscribe(chat *ch)
{
    /* Unread messages come first, as events, right after the reply. */
    wire_ctl_builder b;
    wire_ctl_map r;
    uint64_t rid;
    cli_request(&ch->c, &b, "subscribe", 1, &rid);
    wire_ctl_key(&b, "events");
    wire_ctl_array_begin(&b, 3);
    wire_ctl_put_cstr(&b, "msg");
    wire_ctl_put_cstr(&b, "peer");
    wire_ctl_put_cstr(&b, "group");
    int rc = cli_call(&ch->c, &b, rid, &r, CALL_MS);
    wire_ctl_builder_free(&b);
    return rc;
}

/* Reads lines and events until the chat ends (quit, Ctrl-D, a signal or
 * an error in ch->rc). */
static void chat_loop(chat *ch)
{
    if (ch->tty) {
        setlocale(LC_CTYPE, "");
        printf("chatting with %s; /help for commands, /quit or Ctrl-D to "
               "leave\n",
               ch->label);
        fflush(stdout);
        rl_catch_signals = 0; /* ours: they end the chat cleanly */
        rl_readline_name = "confab";
        using_history();
        rl_callback_handler_install(ch->prompt, on_readline);
    }
    ch->rc = CLI_OK;
    while (!ch->quit) {
        pump(ch, 0);
        if (ch->quit)
            break;
        struct pollfd fds[2] = {{.fd = ch->c.fd, .events = POLLIN},
                                {.fd = STDIN_FILENO, .events = POLLIN}};
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR) {
            ch->rc = CLI_FAILED;
            break;
        }
        if (got_signal) {
            ch->quit = true;
            break;
        }
        if (got_winch) {
            got_winch = 0;
            if (ch->tty)
                rl_resize_terminal();
        }
        if (n <= 0)
            continue;
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (ch->tty)
                rl_callback_read_char();
            else
                read_lines(ch);
        }
    }
    if (ch->tty) {
        rl_callback_handler_remove();
        if (got_signal)
            fputc('\n', stdout);
    }
}

/* Ends the chat with the node: follows no more, waits for the replies
 * still due, leaves a group joined for the chat. */
static void chat_finish(chat *ch)
{
    /* The replies still due say whether the last lines went out. The
     * node marks a message read as it sends it: it stops at `unfollow`,
     * and the messages it sent before answering are printed before the
     * end, so none is marked read unseen. */
    if (ch->rc == CLI_OK) {
        wire_ctl_builder b;
        uint64_t rid;
        cli_request(&ch->c, &b, "unfollow", 0, &rid);
        submit(ch, &b, rid, W_SYNC, NULL);
    }
    uint64_t deadline = cli_now_ms() + DRAIN_MS, now;
    while (ch->n_pend > 0 && ch->rc == CLI_OK &&
           (now = cli_now_ms()) < deadline)
        pump(ch, (int)(deadline - now));
    wire_ctl_map r;
    if (ch->joined_here && ch->rc == CLI_OK)
        (void)call(ch, "leave", ch->group, &r);
}

int cli_cmd_chat(cli_ctx *ctx, int argc, char **argv)
{
    int rc = chat_parse(ctx, argc, argv);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    chat *ch = calloc(1, sizeof *ch);
    if (ch == NULL || (ch->line = malloc(LINE_MAX_BYTES + 1)) == NULL) {
        free(ch);
        cli_error(ctx, "out of memory");
        return CLI_FAILED;
    }
    ch->ctx = ctx;
    ch->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !ctx->json;
    rc = cli_connect(ctx, &ch->c);
    if (rc != CLI_OK) {
        free(ch->line);
        free(ch);
        return rc;
    }
    rc = set_target(ch, optind < argc ? argv[optind] : NULL);
    if (rc == CLI_OK)
        rc = chat_subscribe(ch);
    if (rc != CLI_OK)
        goto out;

    struct sigaction sa, old_int, old_term, old_winch;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGWINCH, &sa, &old_winch);
    the_chat = ch;
    chat_loop(ch);
    chat_finish(ch);
    rc = ch->rc;
    if (rc == CLI_OK && got_signal == SIGINT)
        rc = CLI_INTERRUPTED;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGWINCH, &old_winch, NULL);
out:
    fflush(stdout);
    cli_close(&ch->c);
    cli_peers_free(&ch->known);
    for (size_t i = 0; i < ch->n_pend; i++)
        free(ch->pend[i].text);
    the_chat = NULL;
    free(ch->line);
    free(ch);
    return rc;
}
