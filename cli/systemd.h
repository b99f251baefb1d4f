/* cli/systemd.h: `confab run` under systemd (cli/systemd.c). */
#ifndef CONFAB_CLI_SYSTEMD_H
#define CONFAB_CLI_SYSTEMD_H

#include "node/confab.h"

#include <stdbool.h>

/* True when stderr is the stream journald reads (JOURNAL_STREAM): log
 * lines then carry a priority prefix and no time of their own. */
bool cli_journal_stderr(void);

/* The sd-daemon(3) priority prefix of a level: "<3>" ... "<7>". */
const char *cli_journal_prefix(confab_log_level level);

/* Sends state ("READY=1\nSTATUS=...") to NOTIFY_SOCKET, if set. Returns 0
 * (also when unset) or a negative errno. */
int cli_sd_notify(const char *state);

#endif
