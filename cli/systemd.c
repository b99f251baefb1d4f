/* cli/systemd.c: `confab run` under systemd, without libsystemd: log
 * lines journald can read, and readiness for Type=notify.
 *
 * journald sets JOURNAL_STREAM ("DEVICE:INODE") to the stream it reads;
 * when stderr is that stream, the journal stamps each line itself, so a
 * line carries no time of its own and starts with its priority as
 * sd-daemon(3) defines them ("<3>" error ... "<7>" debug).
 *
 * systemd's notification protocol (sd_notify(3)): one datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket named by NOTIFY_SOCKET (a path,
 * or '@' and an abstract name). */
#include "cli/systemd.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

bool cli_journal_stderr(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (js == NULL || *js == '\0')
        return false;
    unsigned long long dev, ino;
    char extra;
    if (sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

const char *cli_journal_prefix(confab_log_level level)
{
    switch (level) {
    case CONFAB_LOG_ERROR:
        return "<3>";
    case CONFAB_LOG_WARN:
        return "<4>";
    case CONFAB_LOG_INFO:
        return "<6>";
    case CONFAB_LOG_DEBUG:
        return "<7>";
    }
    return "<6>";
}

int cli_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || *path == '\0')
        return 0; /* not under systemd's Type=notify */
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                       (struct sockaddr *)&sa, sl);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}
