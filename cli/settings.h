/* cli/settings.h: `confab run`'s timers and limits, from its command line
 * and from the configuration file <home>/config (cli/settings.c). */
#ifndef CONFAB_CLI_SETTINGS_H
#define CONFAB_CLI_SETTINGS_H

#include "cli/cli.h"

#include "node/confab.h"

#define CLI_MAX_SETTINGS 64
#define CLI_MAX_CONFIG   256

/* The settings given on the command line, taken out of argv. */
typedef struct cli_settings {
    struct {
        const char *name, *value; /* borrowed from argv */
    } given[CLI_MAX_SETTINGS];
    size_t n;
    const char *config_path; /* --config FILE, or NULL */
    bool no_config;          /* --no-config */
} cli_settings;

/* The lines of a configuration file, checked. */
typedef struct cli_config {
    const char *path;
    char *text; /* owned: the entries point into it */
    struct {
        const char *key, *value;
        unsigned line;
    } e[CLI_MAX_CONFIG];
    size_t n;
    confab_config probe; /* where the values were tried */
    char **owned;        /* words made by cli_config_argv() */
    size_t n_owned;
} cli_config;

/* Lines for `confab run --help`, one a setting. */
const char *cli_settings_help(void);

/* Takes the settings, --config FILE and --no-config out of argv (argv[0]
 * is the command; *argc shrinks) into *out. Returns CLI_OK or CLI_USAGE
 * after saying why. */
int cli_settings_take(const cli_ctx *ctx, int *argc, char **argv,
                      cli_settings *out);

/* Stores the command line's settings into cfg: CLI_OK, or CLI_USAGE after
 * saying which value is wrong. */
int cli_settings_apply(const cli_ctx *ctx, const cli_settings *st,
                       confab_config *cfg);

/* Reads and checks a configuration file (a missing one is empty unless
 * must_exist). Returns CLI_OK, or CLI_USAGE / CLI_FAILED after saying
 * what is wrong and on which line. cli_config_free() it either way. */
int cli_config_read(const cli_ctx *ctx, const char *path, bool must_exist,
                    cli_config *out);

/* Stores the file's settings into cfg, except those the command line
 * gives (it wins). */
int cli_config_apply_settings(const cli_ctx *ctx, const cli_config *c,
                              const cli_settings *given, confab_config *cfg);

/* A new argv for run's own options: the file's run keys (name, bind,
 * peer, ...) as options before the command line's, except those the
 * command line gives. The words live until cli_config_free(c); *out_argv
 * is the caller's to free(). Returns CLI_OK, or an exit code after saying
 * why. */
int cli_config_argv(const cli_ctx *ctx, cli_config *c, int argc, char **argv,
                    int *out_argc, char ***out_argv);

void cli_config_free(cli_config *c);

#endif
