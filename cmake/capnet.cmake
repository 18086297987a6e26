# Helpers shared by every component's CMakeLists.txt.

# capnet_target(<target>): our warning flags and include root on a target we own.
function(capnet_target target)
  target_compile_options(${target} PRIVATE ${CAPNET_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# capnet_test(<name> SOURCES ... LIBS ...): a doctest executable registered with CTest.
# Test sources include <doctest/doctest.h>; tests/support/doctest-main.cpp supplies main().
function(capnet_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  if(CAPNET_GUEST)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  capnet_target(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} capnet_test_support doctest::doctest)
  # A filter that matches no test case would pass vacuously: make that a failure.
  # (Test names must not contain ';', which CMake splits lists on.)
  doctest_discover_tests(${name} TEST_PREFIX "${name}: "
                         PROPERTIES FAIL_REGULAR_EXPRESSION "test cases: +0 [|]")
endfunction()
