/* config: environment variables first, command-line flags override them.
 * Invalid values stop the process with a message naming the variable. */
#ifndef DEVSYS_CONFIG_H
#define DEVSYS_CONFIG_H

/* A flag --name VALUE (or --name=VALUE) sets environment variable env. */
struct cfg_flag {
    const char *name; /* without the leading "--" */
    const char *env;
    const char *help;
};

/* Applies flags (setenv) from argv[1..]. Stops at the first argument that is
 * not a flag and returns its index (argc if none). Exits with status 2 and a
 * message on an unknown flag or a flag without a value. --help prints the
 * flags with usage and exits 0; --version prints "PROGRAM VERSION" and exits 0. */
int cfg_flags(int argc, char **argv, const struct cfg_flag *flags, const char *usage);

const char *cfg_str(const char *env, const char *def);
/* A credential: the value of env, or the content of the file named by
 * env_FILE (as Docker and Kubernetes secrets are mounted), trailing newlines
 * removed, at most 64 KiB. Exits 2 naming the variables when both are set,
 * or when the file cannot be read or is empty. The returned text lives until
 * the process exits. A flag (--database ...) sets env and clears env_FILE. */
const char *cfg_secret(const char *env, const char *def);
/* Integer in [min, max]; exits 2 with "DEVSYS_X: must be an integer from min to max". */
long cfg_long(const char *env, long def, long min, long max);
double cfg_double(const char *env, double def, double min, double max);

#endif
