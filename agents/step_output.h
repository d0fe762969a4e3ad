/* step_output: what an exec-like step leaves behind, read after its command
 * ended: the JSON document at $DEVSYS_RESULT and the files its
 * expected_artifacts name. File-system work only, no loop, no network. */
#ifndef DEVSYS_STEP_OUTPUT_H
#define DEVSYS_STEP_OUTPUT_H

#include <jansson.h>
#include <stddef.h>

#define SOUT_RESULT_MAX (64 * 1024)           /* bytes of the $DEVSYS_RESULT document */
#define SOUT_ARTIFACTS_MAX 128                /* files all the patterns match together */
#define SOUT_ARTIFACT_MAX_DEFAULT (256LL << 20) /* DEVSYS_ARTIFACT_MAX_BYTES */

/* Reads the result document at path: 0 when there is none (*out NULL), 1
 * with *out a new reference, -1 with the reason in err ("... is 70000 bytes,
 * over the 65536-byte limit", "... is not JSON: ..."). */
int sout_result_read(const char *path, size_t max, json_t **out, char *err, size_t errlen);

/* Is p a relative path that stays where it is put: not empty, not absolute,
 * no "." or ".." component, no empty component? */
int sout_relpath_ok(const char *p);

/* One file an expected_artifacts pattern matched. */
typedef struct sout_file {
    char *rel;   /* relative to the base directory, as the result lists it */
    char *path;  /* absolute, symlinks resolved (inside the base) */
    long long size;
    char sha256[65];
} sout_file_t;

/* Matches patterns (a JSON array of relative paths or glob patterns) in
 * base. Returns the files (caller frees with sout_files_free) and 0, or -1
 * with err naming what is wrong: "expected artifacts missing: a, b"; a path
 * that is absolute or climbs out; a symlink pointing outside base; a file
 * over max_bytes; not a regular file; more than SOUT_ARTIFACTS_MAX files. */
int sout_collect(const char *base, const json_t *patterns, long long max_bytes, sout_file_t **files, size_t *n,
                 char *err, size_t errlen);
void sout_files_free(sout_file_t *files, size_t n);

/* sha256 (hex) and size of the file at path, read in pieces. 0 or -1 with err. */
int sout_hash_file(const char *path, char hex[65], long long *size, char *err, size_t errlen);

#endif
