/* netaddr: the address a socket is bound to, as text (see netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

int netaddr_local(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    snprintf(buf, cap, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    const void *ip;
    unsigned port;
    if (ss.ss_family == AF_INET) {
        ip = &((const struct sockaddr_in *)&ss)->sin_addr;
        port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        ip = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        return -1;
    }
    if (!inet_ntop(ss.ss_family, ip, host, sizeof host))
        return -1;
    snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return 0;
}
