/* agent_secrets: the secrets a task's env refers to ({"secret": "name"}):
 * fetched from PostgreSQL and decrypted with the agent's DEVSYS_SECRET_KEY
 * just before its handler starts, handed to the handler (run->secrets, only
 * the child's environment uses them), and redacted as "[secret:NAME]" from
 * everything the task leaves: output tail, error, result, report, checkpoints. */
#ifndef DEVSYS_AGENT_SECRETS_H
#define DEVSYS_AGENT_SECRETS_H

#include "agent_internal.h"

/* Starts t's handler as ops->start does (same contract), after fetching the
 * secrets its spec refers to; a task without any starts at once. A missing
 * secret or key fails the attempt for good; PostgreSQL down, retryably. */
int agent_secrets_start(struct task *t, handler_result_t *res);
/* At teardown, before held tasks are freed: fetches in flight forget them. */
void agent_secrets_shutdown(void);
/* Replaces the values of t's secrets in t->res (output, error, result, report). */
void agent_secrets_redact_result(struct task *t);
/* s (len bytes) with t's secret values replaced, as a new string (caller
 * frees; *outlen its length), or NULL when t has none in it. */
char *agent_secrets_redact(const struct task *t, const char *s, size_t len, size_t *outlen);

#endif
