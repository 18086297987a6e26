# lwIP, built from Debian's lwip source package (scripts/fetch-lwip.sh) with netd's lwipopts.h.
# Debian's prebuilt liblwip is the GNU Hurd build and is not used. The source is copied into the
# build tree because lwIP's Filelists.cmake writes lwip/init.h next to its sources.
execute_process(COMMAND ${PROJECT_SOURCE_DIR}/scripts/fetch-lwip.sh
                OUTPUT_VARIABLE LWIP_UPSTREAM OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE LWIP_FETCH_RESULT)
if(NOT LWIP_FETCH_RESULT EQUAL 0 OR NOT IS_DIRECTORY "${LWIP_UPSTREAM}/src/core")
  message(FATAL_ERROR "lwIP source not available (scripts/fetch-lwip.sh failed)")
endif()
set(LWIP_DIR ${CMAKE_BINARY_DIR}/lwip-src)
if(NOT EXISTS ${LWIP_DIR}/src/core/tcp.c)
  file(COPY ${LWIP_UPSTREAM}/src DESTINATION ${LWIP_DIR})
  # Filelists.cmake also configures lwIP's Doxyfile; it needs the template.
  file(COPY ${LWIP_UPSTREAM}/doc/doxygen/lwip.Doxyfile.cmake.in DESTINATION ${LWIP_DIR}/doc/doxygen)
endif()
set(LWIP_INCLUDE_DIRS ${CMAKE_CURRENT_LIST_DIR} ${LWIP_DIR}/src/include)
include(${LWIP_DIR}/src/Filelists.cmake)

add_library(capnet_lwip STATIC ${lwipcore_SRCS} ${lwipcore4_SRCS} ${LWIP_DIR}/src/netif/ethernet.c)
target_include_directories(capnet_lwip SYSTEM PUBLIC ${LWIP_INCLUDE_DIRS})
# Third-party C: lwIP's own sources are built without our -Werror (our code keeps it); nothing
# of ours is compiled here.
target_compile_options(capnet_lwip PRIVATE -Wno-error)
set_target_properties(capnet_lwip PROPERTIES POSITION_INDEPENDENT_CODE ON)
