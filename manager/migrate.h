/* migrate: apply the numbered SQL files of migrations/ (embedded at build time) in
 * order, each in its own transaction, recorded in schema_migrations, under a
 * PostgreSQL advisory lock so concurrent runs serialize and a rerun is a no-op. */
#ifndef DEVSYS_MIGRATE_H
#define DEVSYS_MIGRATE_H

#include <stddef.h>

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* Blocking (a one-shot command, never on a request path). Returns the number
 * of migrations applied (0 when up to date) or -1 with a message in err. */
int migrate_run(const char *conninfo, char *err, size_t errlen);

#endif
