/* Layer api (node/LAYERS).
 * home.c: the node's home directory: its identity (made on first use),
 * its network key, its name, and the store (store.c) with the records of
 * the inbox and the groups it is in.
 *
 *   <home>/            mode 0700, owned by the user
 *   <home>/identity    the key pair (crypto/keyfile.h format, mode 0600)
 *   <home>/network.key a private network key, if any
 *   <home>/name        the node's name, one line (confab init --name)
 *   <home>/store.log   the store
 *   <home>/control.sock the control socket, while `confab run` runs */
#include "node/api/api.h"

#include "crypto/identity.h"
#include "crypto/netkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the directory ---------------------------------------------------- */

static int make_dirs(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Creates home if missing (mode 0700) and checks that it is a directory
 * of ours that we can write. */
static int check_home(const char *home, char *err, size_t errlen)
{
    int rc = make_dirs(home);
    if (rc != 0) {
        snprintf(err, errlen,
                 "cannot create the home directory %s: %s; create it "
                 "yourself or choose another with --home",
                 home, uv_strerror(rc));
        return rc;
    }
    struct stat st;
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "the home %s is not a directory; choose "
                 "another with --home",
                 home);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "the home directory %s belongs to another user; use a "
                 "directory of your own (--home)",
                 home);
        return -EACCES;
    }
    if (access(home, W_OK | X_OK) != 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "cannot write to the home directory %s: %s; make it "
                 "writable (chmod 700 %s) or choose another with --home",
                 home, uv_strerror(rc), home);
        return rc;
    }
    /* Others must not look in: the control socket lives here. */
    if ((st.st_mode & 077) != 0 && chmod(home, 0700) != 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "the home directory %s is open to other users and cannot be "
                 "closed (%s); run chmod 700 %s",
                 home, uv_strerror(rc), home);
        return rc;
    }
    return 0;
}

static int home_file(char *out, size_t cap, const char *home, const char *f)
{
    return (size_t)snprintf(out, cap, "%s/%s", home, f) >= cap ? -ENAMETOOLONG
                                                               : 0;
}

/* Loads the identity, or makes and saves one when there is none. */
static int load_identity(const char *home, bool create, sec_identity **out,
                         char *err, size_t errlen)
{
    char path[4096];
    int rc = home_file(path, sizeof path, home, "identity");
    if (rc != 0)
        return rc;
    rc = sec_identity_load(path, out, err, errlen);
    if (rc != -ENOENT || !create)
        return rc;
    rc = sec_identity_generate(out);
    if (rc == 0)
        rc = sec_identity_save(*out, path, err, errlen);
    if (rc != 0) {
        sec_identity_free(*out);
        *out = NULL;
    }
    return rc;
}

static int read_name(const char *home, char *name, size_t cap)
{
    char path[4096];
    if (home_file(path, sizeof path, home, "name") != 0)
        return -ENAMETOOLONG;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[256];
    int rc = -ENOENT;
    if (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t len = strlen(line);
        if (len > 0 && len < cap && len <= WIRE_MAX_NAME &&
            wire_utf8_valid((const uint8_t *)line, len)) {
            memcpy(name, line, len + 1);
            rc = 0;
        } else {
            rc = -EINVAL;
        }
    }
    fclose(f);
    return rc;
}

/* ---- for `confab init` and `confab id` --------------------------------- */

int confab_home_init(const char *home, const char *name, int private_network,
                     char *err, size_t errlen)
{
    if (sec_init() != 0)
        return -ENOSYS;
    int rc = check_home(home, err, errlen);
    if (rc != 0)
        return rc;
    if (name != NULL) {
        size_t len = strlen(name);
        if (len == 0 || len > WIRE_MAX_NAME ||
            !wire_utf8_valid((const uint8_t *)name, len) ||
            strchr(name, '\n') != NULL) {
            snprintf(err, errlen,
                     "a name is 1 to %u bytes of UTF-8 on one "
                     "line",
                     WIRE_MAX_NAME);
            return -EINVAL;
        }
    }
    char path[4096];
    rc = home_file(path, sizeof path, home, "identity");
    if (rc != 0)
        return rc;
    bool existing = access(path, F_OK) == 0;
    if (existing && !private_network && name == NULL) {
        snprintf(err, errlen,
                 "%s already has an identity; remove %s first to make a new "
                 "one (the node id will change)",
                 home, path);
        return -EEXIST;
    }
    /* A home that has an identity keeps it: --private-network and --name
     * only add what they name, so the man page's private-network example
     * works on a home made by `confab run`. */
    if (existing && private_network) {
        rc = home_file(path, sizeof path, home, "network.key");
        if (rc == 0 && access(path, F_OK) == 0) {
            snprintf(err, errlen,
                     "%s already has a private network key (%s); copy that "
                     "file to the other machines, or remove it first to "
                     "make a new one",
                     home, path);
            return -EEXIST;
        }
    }
    sec_identity *id = NULL;
    rc = load_identity(home, true, &id, err, errlen);
    sec_identity_free(id);
    if (rc == 0 && private_network) {
        sec_netkey *k = NULL;
        rc = home_file(path, sizeof path, home, "network.key");
        if (rc == 0)
            rc = sec_netkey_generate(&k);
        if (rc == 0)
            rc = sec_netkey_save(k, path, err, errlen);
        sec_netkey_free(k);
    }
    if (rc == 0 && name != NULL) {
        rc = home_file(path, sizeof path, home, "name");
        FILE *f = rc == 0 ? fopen(path, "w") : NULL;
        if (f == NULL || fprintf(f, "%s\n", name) < 0 || fclose(f) != 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot write %s: %s", path, uv_strerror(rc));
        }
    }
    return rc;
}

int confab_home_id(const char *home, uint8_t id[CONFAB_ID_BYTES], char *name,
                   size_t name_cap, char *err, size_t errlen)
{
    if (sec_init() != 0)
        return -ENOSYS;
    sec_identity *ident = NULL;
    int rc = load_identity(home, false, &ident, err, errlen);
    if (rc == -ENOENT)
        snprintf(err, errlen,
                 "%s has no identity yet; run 'confab init' (or 'confab run', "
                 "which makes one)",
                 home);
    if (rc != 0)
        return rc;
    memcpy(id, ident->pk, CONFAB_ID_BYTES);
    sec_identity_free(ident);
    if (name != NULL && name_cap > 0 && read_name(home, name, name_cap) != 0)
        name[0] = '\0';
    return 0;
}

/* ---- the node's home -------------------------------------------------- */

static int dump_live(confab_node *n, int fd, void *arg);

/* Whether losing a record of this type (not at the end of the log) can
 * leave the numbering of a unicast stream wrong: an accepted message
 * missing from the middle of an outbox shifts the seq of those behind
 * it; a lost TX or EPOCH leaves the numbering under the wrong epoch. */
static bool breaks_numbering(const node_store_loss *l)
{
    return !l->tail && (l->type < 0 || l->type == NODE_REC_OUT_PUT ||
                        l->type == NODE_REC_TX || l->type == NODE_REC_EPOCH);
}

/* What the node does about damage replay found: accepted unicasts whose
 * records were lost are reported failed; a stream whose numbering may be
 * wrong restarts under a new epoch (docs/PROTOCOL.md 12.1); the log is
 * rewritten whole (the damaged file kept beside it); and a format 1 log
 * is rewritten as format 2. */
static int after_damage(confab_node *n)
{
    node_store *s = n->store;
    size_t nl;
    const node_store_loss *l = node_store_losses(s, &nl);
    bool lost = node_store_lost(s) > 0, restart = nl < node_store_lost(s);
    bool mid = restart;   /* damage with whole records after it */
    bool applied = false; /* a lost record's header changed the state */
    for (size_t i = 0; i < nl; i++) {
        if (l[i].type == NODE_REC_OUT_PUT && l[i].has_ref)
            node_delivery_report_lost(n, l[i].ref);
        /* A read mark whose body was damaged: its header still says
         * which message was read. */
        if (l[i].type == NODE_REC_INBOX_READ && l[i].has_ref) {
            node_inbox_mark_read(n, l[i].ref);
            applied = true;
        }
        restart |= breaks_numbering(&l[i]);
        mid |= !l[i].tail;
    }
    /* The epoch itself lost, with the rest of the state kept. */
    restart |= lost && n->epoch == 0;
    int rc = 0;
    if (restart)
        rc = node_delivery_state_lost(n);
    /* Damage at the end only is already cut off (store.c), unless what a
     * lost record's header said was applied: the log no longer holds it
     * (a read mark cut off with the tail), so it is rewritten from the
     * state, or the next start would hand that message out again. */
    if (rc != 0 || (!mid && !applied && node_store_version(s) == 2))
        return rc;
    char keep[4200];
    if (mid && (size_t)snprintf(keep, sizeof keep, "%s.damaged",
                                node_store_path(s)) < sizeof keep) {
        /* The damaged file as it was, for a person to look at: a second
         * name for it (no space needed), replacing an older one. */
        (void)unlink(keep);
        if (link(node_store_path(s), keep) == 0)
            node_log(n, CONFAB_LOG_WARN,
                     "the damaged store is kept as %s; the store is "
                     "rewritten without the damage",
                     keep);
    }
    rc = node_store_compact(s, dump_live, NULL);
    if (rc != 0)
        node_log(n, CONFAB_LOG_ERROR, "cannot rewrite %s: %s",
                 node_store_path(s), uv_strerror(rc));
    return rc;
}

/* Replays one record of the store into the node's state. */
static int replay_record(confab_node *n, uint8_t type, const uint8_t *ref,
                         const uint8_t *body, size_t len, void *arg)
{
    (void)arg;
    if (type <= NODE_REC_MAX && node_record_types[type].replay != NULL)
        return node_record_types[type].replay(n, type, ref, body, len);
    /* A type this version does not know, which a newer version wrote:
     * node_delivery_replay() ignores it and counts it, as before. */
    return node_delivery_replay(n, type, ref, body, len);
}

int node_home_open(confab_node *n)
{
    const char *home = n->home;
    char err[512] = "";
    int rc = check_home(home, err, sizeof err);
    if (rc == 0 && n->identity == NULL) {
        rc = load_identity(home, true, &n->identity, err, sizeof err);
        if (rc == 0)
            n->identity_from_home = true;
    }
    if (rc == 0 && n->netkey == NULL) {
        char path[4096];
        rc = home_file(path, sizeof path, home, "network.key");
        if (rc == 0) {
            rc = sec_netkey_load(path, &n->netkey, err, sizeof err);
            if (rc == -ENOENT)
                rc = 0; /* none: the public network key is used */
        }
    }
    if (rc == 0 && n->cfg.name == NULL) /* a name in the config wins */
        (void)read_name(home, n->name, sizeof n->name);
    if (rc != 0) {
        if (err[0] != '\0')
            node_log(n, CONFAB_LOG_ERROR, "%s", err);
        return rc;
    }
    rc = node_store_open(n, home, replay_record, NULL, &n->store);
    if (rc == 0)
        rc = after_damage(n);
    return rc;
}

/* ---- compaction -------------------------------------------------------- */

#define COMPACT_MIN ((uint64_t)4 << 20) /* never below 4 MiB */

static int dump_live(confab_node *n, int fd, void *arg)
{
    (void)arg;
    int rc = node_delivery_dump(n, fd);
    if (rc == 0)
        rc = node_groups_dump(n, fd);
    if (rc == 0)
        rc = node_inbox_dump(n, fd);
    return rc;
}

void node_home_tick(confab_node *n, uint64_t now)
{
    (void)now;
    if (n->store == NULL || node_store_failed(n->store))
        return;
    /* What is live: the unread messages (each with its record's keys) and
     * the groups. Compact once the log is four times that, so that the
     * rewriting costs a constant share of what is written. */
    uint64_t live = node_inbox_bytes(n) +
                    (uint64_t)confab_inbox_count(n) * 256u +
                    (uint64_t)n->n_groups * 80u + n->ob_total +
                    (uint64_t)n->ob_msgs * 256u +
                    (uint64_t)n->peers_len * 200u + (uint64_t)n->seen_len * 40u;
    uint64_t size = node_store_size(n->store);
    if (size < COMPACT_MIN || size < 4 * live)
        return;
    int rc = node_store_compact(n->store, dump_live, NULL);
    if (rc != 0 && rc != -EBUSY)
        node_log(n, CONFAB_LOG_WARN, "compacting the store failed: %s",
                 uv_strerror(rc));
}
