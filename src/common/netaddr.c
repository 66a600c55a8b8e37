/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int
netaddr_family(const char *s)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, buf) == 1)
        return AF_INET6;
    return 0;
}

bool
netaddr_mac_valid(const char *mac)
{
    if (strlen(mac) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
            return false;
    return !(strtoul(mac, NULL, 16) & 1); /* the group bit of the first octet */
}
