/* netaddr: the address a socket is bound to, as text (see netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

int netaddr_local(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    snprintf(buf, cap, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof host))
            return -1;
        snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(in->sin_port));
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
            return -1;
        snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
        return 0;
    }
    return -1;
}
