/* uuid: task ids in their canonical text form (36 characters). */
#ifndef DEVSYS_UUID_H
#define DEVSYS_UUID_H

#include <stddef.h>

/* Fill out with a new random time-ordered UUIDv7 (ms timestamp + random). */
void uuid_v7(char out[37]);
/* Is s a canonical UUID (36 chars, hex and dashes)? */
int uuid_valid(const char *s, size_t len);
/* The 16 bytes b as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
void uuid_format(const unsigned char b[16], char out[37]);

#endif
