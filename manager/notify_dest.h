/* notify_dest: the rules of a notification destination, shared by the API
 * (http_notify.c) and the destinations file the manager loads at start
 * (notify.c): fields, bounds, defaults, and the messages naming what is wrong. */
#ifndef DEVSYS_NOTIFY_DEST_H
#define DEVSYS_NOTIFY_DEST_H

#include <jansson.h>
#include <stddef.h>

/* The destination body describes (the API's JSON) as the flat object
 * notifydb_dest_put takes, defaults filled in (new reference), or NULL with
 * why ("rate.per_s: must be a number from 0.001 to 1000"). */
json_t *notify_dest_parse(const json_t *body, char *why, size_t cap);

/* Is s one of the NULL-terminated list? */
int notify_dest_one_of(const char *const *list, const char *s);

#endif
