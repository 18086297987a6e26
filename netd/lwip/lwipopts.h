/* lwIP options for netd: NO_SYS (one KJ event loop drives everything), IPv4 + ARP + ICMP + TCP,
 * nothing else. Sizes are for a daemon serving tens of concurrent connections at LAN speed.
 * README.md beside this file says why each security-relevant choice was made. */
#ifndef CAPNET_LWIPOPTS_H
#define CAPNET_LWIPOPTS_H

#define NO_SYS                          1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_SOCKET                     0
#define LWIP_NETCONN                    0
#define LWIP_NETIF_API                  0

/* Protocols: IPv4 with ARP, ICMP (echo replies) and TCP. No UDP, so no DNS, DHCP or SNTP: names
 * resolve only through capd's hosts map, addresses are static. */
#define LWIP_IPV4                       1
#define LWIP_IPV6                       0
#define LWIP_ARP                        1
#define LWIP_ETHERNET                   1
#define LWIP_ICMP                       1
#define LWIP_RAW                        0
#define LWIP_UDP                        0
#define LWIP_TCP                        1
#define LWIP_DNS                        0
#define LWIP_DHCP                       0
#define LWIP_AUTOIP                     0
#define LWIP_IGMP                       0
#define IP_FORWARD                      0
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define LWIP_NETIF_LOOPBACK             0
#define LWIP_HAVE_LOOPIF                0
#define LWIP_SINGLE_NETIF               0
#define LWIP_NETIF_STATUS_CALLBACK      0
#define LWIP_NETIF_LINK_CALLBACK        0
#define ETHARP_SUPPORT_STATIC_ENTRIES   0
#define ARP_QUEUEING                    1
#define ARP_TABLE_SIZE                  16

/* Memory: the heap comes from libc (bounded by the pools below and by netd's connection limit). */
#define MEM_LIBC_MALLOC                 1
#define MEMP_MEM_MALLOC                 1
#define MEM_ALIGNMENT                   8
#define MEMP_NUM_TCP_PCB                64
#define MEMP_NUM_TCP_PCB_LISTEN         4
#define MEMP_NUM_TCP_SEG                512
#define MEMP_NUM_REASSDATA              8
#define MEMP_NUM_FRAG_PBUF              16
#define MEMP_NUM_ARP_QUEUE              32
#define MEMP_NUM_SYS_TIMEOUT            8
/* Frames are received into PBUF_RAM buffers sized to the frame (netd/stack/netif.cpp); the pool
 * exists only because lwIP requires one. */
#define PBUF_POOL_SIZE                  16
#define PBUF_POOL_BUFSIZE               1536

/* TCP: MSS for a 1500-byte MTU, 64 KiB window (no window scaling in this lwIP build), a send
 * buffer large enough to keep the window full. */
#define TCP_MSS                         1460
#define TCP_WND                         (44 * TCP_MSS)
#define TCP_SND_BUF                     (44 * TCP_MSS)
#define TCP_SND_QUEUELEN                ((4 * TCP_SND_BUF) / TCP_MSS)
#define TCP_QUEUE_OOSEQ                 1
#define TCP_OVERSIZE                    TCP_MSS
#define LWIP_TCP_KEEPALIVE              1
#define TCP_LISTEN_BACKLOG              1
#define LWIP_TCP_TIMESTAMPS             0
#define TCP_MAXRTX                      6
#define TCP_SYNMAXRTX                   4

/* Randomness: every random number lwIP draws (initial local ports, ISNs via the hook below) comes
 * from getrandom(2), never rand(). */
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1
#define LWIP_HOOK_FILENAME              "capnet-lwip-hooks.h"
#define LWIP_RAND()                     capnet_lwip_rand()
#define LWIP_HOOK_TCP_ISN(local_ip, local_port, remote_ip, remote_port) \
  capnet_lwip_tcp_isn(local_ip, local_port, remote_ip, remote_port)
/* Segments of a synchronised connection far outside any window are dropped before lwIP sees them
 * (capnet-lwip-hooks.h: lwIP 2.1.3 crashes on one exactly 2^31 past rcv_nxt). */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
  capnet_lwip_tcp_inpacket(pcb, hdr, optlen, opt1len, opt2, p)

/* Checksums are generated and checked in software (the virtio device offers no offload we use). */
#define CHECKSUM_GEN_IP                 1
#define CHECKSUM_GEN_TCP                1
#define CHECKSUM_CHECK_IP               1
#define CHECKSUM_CHECK_TCP              1
#define LWIP_CHECKSUM_ON_COPY           0

#define LWIP_STATS                      0
#define LWIP_NETIF_HOSTNAME             0
#define LWIP_NETIF_TX_SINGLE_PBUF       1

#endif /* CAPNET_LWIPOPTS_H */
