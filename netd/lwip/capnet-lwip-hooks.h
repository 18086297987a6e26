/* Functions lwipopts.h wires into lwIP (implemented in netd/stack/lwip-glue.cpp). */
#ifndef CAPNET_LWIP_HOOKS_H
#define CAPNET_LWIP_HOOKS_H

#include "lwip/arch.h"
#include "lwip/ip_addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 32 bits from getrandom(2). */
u32_t capnet_lwip_rand(void);
/* A random initial sequence number for each connection. */
u32_t capnet_lwip_tcp_isn(const ip_addr_t* local_ip, u16_t local_port, const ip_addr_t* remote_ip,
                          u16_t remote_port);

#ifdef __cplusplus
}
#endif

#endif
