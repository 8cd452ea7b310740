# Per-target build settings, applied through small functions (spdlog's cmake/utils.cmake shape).

# Warnings are errors on every ballast target; every target is hardened as Debian's
# dpkg-buildflags would (fortified where optimised, stack protector and clash protection, CET,
# full RELRO with immediate binding).
include(CheckCXXCompilerFlag)
set(BALLAST_HARDENING_FLAGS -fstack-protector-strong)
foreach(flag -fstack-clash-protection -fcf-protection)  # not every architecture has them
  string(MAKE_C_IDENTIFIER "BALLAST_HAS${flag}" has_flag)
  check_cxx_compiler_flag(${flag} ${has_flag})
  if(${has_flag})
    list(APPEND BALLAST_HARDENING_FLAGS ${flag})
  endif()
endforeach()

function(ballast_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
  target_compile_options(${target} PRIVATE ${BALLAST_HARDENING_FLAGS}
                                           $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  target_link_options(${target} PRIVATE -Wl,-z,relro -Wl,-z,now)
endfunction()

# Sanitizers by BALLAST_SANITIZE: address (ASan + UBSan; ON means the same) or thread (TSan).
function(ballast_enable_sanitizers target)
  if(BALLAST_SANITIZE STREQUAL "address" OR BALLAST_SANITIZE STREQUAL "ON")
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(BALLAST_SANITIZE STREQUAL "thread")
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  elseif(BALLAST_SANITIZE AND NOT BALLAST_SANITIZE STREQUAL "OFF")
    message(FATAL_ERROR "BALLAST_SANITIZE=${BALLAST_SANITIZE}: use OFF, address or thread")
  endif()
  if(BALLAST_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()

# Sources that include Boost.Asio/Beast: each takes most of a minute alone, so never batched
# into a unity build. Under GCC's ThreadSanitizer, -Wtsan (added by GCC PR sanitizer/97868)
# flags the std::atomic_thread_fence that Asio's headers use (TSan does not model fences); that
# one warning is silenced for these files only, since the fence is Asio's, not ours.
#   ballast_asio_sources(<file> ...)
function(ballast_asio_sources)
  set_source_files_properties(${ARGN} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
  if(BALLAST_SANITIZE STREQUAL "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS -Wno-tsan)
  endif()
endfunction()

# A ballast library: ballast_<name>, aliased ballast::<name>.
#   ballast_library(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
function(ballast_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(ballast_${name} STATIC ${ARG_SOURCES})
  add_library(ballast::${name} ALIAS ballast_${name})
  target_include_directories(ballast_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_features(ballast_${name} PUBLIC cxx_std_20)
  target_link_libraries(ballast_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  ballast_set_warnings(ballast_${name})
  ballast_enable_sanitizers(ballast_${name})
endfunction()

# A GoogleTest executable registered with ctest through gtest_discover_tests.
#   ballast_test(<name> SOURCES ... DEPS ... [PROPERTIES ...])
function(ballast_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  target_compile_definitions(${name} PRIVATE
    BALLAST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    BALLAST_BINARY="$<TARGET_FILE:ballast>")
  ballast_set_warnings(${name})
  ballast_enable_sanitizers(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${ARG_PROPERTIES})
endfunction()

# A Google Benchmark executable: built by `make bench` (target ballast_benchmarks), not by the
# default build, so `make test` does not pay for it.
function(ballast_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} EXCLUDE_FROM_ALL ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark Threads::Threads)
  ballast_set_warnings(${name})
  add_dependencies(ballast_benchmarks ${name})
endfunction()
