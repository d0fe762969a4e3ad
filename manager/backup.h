/* backup: `devsys-manager backup FILE [PART...]` and `restore FILE [PART...]`.
 * One tar archive holds manifest.json (format, devsys version, schema version,
 * time, each part's size and sha256) and the parts: db.dump (pg_dump custom
 * format), artifacts.tar (the manager's DEVSYS_ARTIFACT_DIR), deploy.tar (an
 * agent's DEVSYS_DEPLOY_ROOT). Blocking one-shot commands, like migrate. */
#ifndef DEVSYS_BACKUP_H
#define DEVSYS_BACKUP_H

#include <stddef.h>

/* parts: names among "db", "artifacts", "deploy" (nparts 0: db, the artifact
 * store when its directory exists, the deploy root when DEVSYS_DEPLOY_ROOT is
 * set). Writes FILE (never over an existing one: it is written under
 * FILE.partial and renamed). Returns 0, or -1 with a message in err. */
int backup_run(const char *file, char **parts, int nparts, char *err, size_t errlen);

/* parts: as above (nparts 0: every part of the archive; deploy.tar only when
 * DEVSYS_DEPLOY_ROOT is set). Checks the manifest and every part's sha256
 * first; refuses a schema newer than this binary's migrations, a database
 * that is not empty and a deploy root that is not. Restores the database with
 * pg_restore in one transaction, applies newer migrations, and marks every
 * non-final task's transport as lost (taskdb_restore_lost_sql) so that the
 * reconciler republishes it to the (empty) Redis. Returns 0, or -1 with a
 * message in err. */
int restore_run(const char *file, char **parts, int nparts, char *err, size_t errlen);

#endif
