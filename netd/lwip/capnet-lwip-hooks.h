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

struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
/* LWIP_HOOK_TCP_INPACKET_PCB: drops, before lwIP's own processing, a segment of a synchronised
 * connection whose sequence number is 2^30 or more away from the next expected one (no window is
 * that large without window scaling, which this build does not use). lwIP 2.1.3's tcp_receive
 * treats a segment exactly 2^31 past rcv_nxt as overlapping it ("insane offset!" assertion: a
 * remote crash found by fuzz/fuzz-frames.cpp, reproducer in fuzz/corpus/frames/). ERR_OK keeps the
 * segment; anything else drops it. */
s8_t capnet_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, u16_t optlen, u16_t opt1len, u8_t* opt2,
                              struct pbuf* p);

#ifdef __cplusplus
}
#endif

#endif
