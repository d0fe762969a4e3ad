/* curlev: libcurl's multi interface driven by a libevent loop, so outgoing
 * HTTP (artifact uploads and downloads, webhooks, monitor probes) never
 * blocks the loop. The one such glue in devsys; transfers are plain CURL
 * easies, and each user may keep its own curlev on the same loop. */
#ifndef DEVSYS_CURLEV_H
#define DEVSYS_CURLEV_H

#include <curl/curl.h>

struct event_base;
typedef struct curlev curlev_t;

/* Called once per transfer when it ends, after the easy left the multi: the
 * callback may curl_easy_cleanup it and add new transfers. */
typedef void curlev_done_fn(CURL *easy, CURLcode rc, void *arg);

curlev_t *curlev_new(struct event_base *base);
/* Every transfer must have ended or been removed (curlev_remove) first. */
void curlev_free(curlev_t *cv);
/* Starts easy (the caller keeps it and set its options; CURLOPT_PRIVATE is
 * used here). Returns 0, or -1 when curl refuses it (fn is then not called). */
int curlev_add(curlev_t *cv, CURL *easy, curlev_done_fn *fn, void *arg);
/* Stops easy; its callback is not called. The caller still owns it. */
void curlev_remove(curlev_t *cv, CURL *easy);

#endif
