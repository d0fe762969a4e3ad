/* curl_loop: libcurl's multi interface driven by the agent's libevent loop
 * (socket and timer callbacks), so outgoing HTTP never blocks the loop. One
 * per process (one event base); handlers add easy handles and get one
 * completion callback each. */
#ifndef DEVSYS_CURL_LOOP_H
#define DEVSYS_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;

/* Called once per added handle when its transfer ends (from a loop
 * callback, never from curl_loop_add). The handle is still in the multi:
 * the callback calls curl_loop_remove (and may clean it up). */
typedef void curl_loop_done_fn(CURL *easy, CURLcode code, void *arg);

/* Starts the transfer of easy on base's loop (created on first use).
 * 0, or -1 when curl refuses the handle. */
int curl_loop_add(struct event_base *base, CURL *easy, curl_loop_done_fn *fn, void *arg);
/* Takes easy out of the loop (an ended or a cancelled transfer); its
 * callback will not be called. The caller still owns easy. */
void curl_loop_remove(CURL *easy);
/* Frees the loop after every handle was removed; call before event_base_free. */
void curl_loop_shutdown(void);

#endif
