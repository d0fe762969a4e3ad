/* uuid: task ids: random time-ordered UUIDv7 for new tasks, the canonical
 * text form, and its check. */
#include "uuid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void uuid_format(const unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

int uuid_valid(const char *s, size_t len)
{
    if (!s || len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

void uuid_v7(char out[37])
{
    unsigned char b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    size_t got = 0;
    while (got < 10) {
        ssize_t n = getrandom(b + 6 + got, 10 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        /* Without the kernel's generator ids could collide across agents:
         * better to stop than to corrupt task identity. */
        if (n <= 0)
            abort();
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}
