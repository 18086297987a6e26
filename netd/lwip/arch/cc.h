/* lwIP's port header for netd on Linux/x86-64 (the Debian source package ships no ports). */
#ifndef CAPNET_LWIP_ARCH_CC_H
#define CAPNET_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_ERRNO_STDINCLUDE 1

#ifdef __cplusplus
extern "C" {
#endif
/* Reports an lwIP internal invariant violation (never input-dependent: lwIP validates input with
 * LWIP_ERROR, which returns errors). netd logs it and aborts: its state can no longer be trusted,
 * and init restarts it with a marker. */
void capnet_lwip_assert(const char* message, const char* file, int line);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { printf x; fflush(stdout); } while (0)
#define LWIP_PLATFORM_ASSERT(x) capnet_lwip_assert((x), __FILE__, __LINE__)

#endif /* CAPNET_LWIP_ARCH_CC_H */
