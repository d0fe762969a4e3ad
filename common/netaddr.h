/* netaddr: the address a socket is bound to as text, so that a listener
 * configured with port 0 can say which port the kernel gave it. */
#ifndef DEVSYS_NETADDR_H
#define DEVSYS_NETADDR_H

#include <stddef.h>

/* Writes "127.0.0.1:43121" or "[::1]:43121" for fd's local address into buf.
 * Returns 0, or -1 (buf then holds "?") when fd has no IP address. */
int netaddr_local(int fd, char *buf, size_t cap);

#endif
