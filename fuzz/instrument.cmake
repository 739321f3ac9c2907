# Included from the top-level CMakeLists.txt when RGPU_FUZZ is ON, before any
# add_subdirectory: every rgpu library is then compiled with libFuzzer's
# coverage instrumentation and ASan/UBSan, so the harnesses in fuzz/ see (and
# check) the code they drive, not just their own main. Only the fuzz targets
# link libFuzzer itself (-fsanitize=fuzzer, in fuzz/CMakeLists.txt).
#
# UBSan findings abort (-fno-sanitize-recover) so that libFuzzer records them
# as crashes with a reproducer, like ASan's.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "RGPU_FUZZ needs clang (libFuzzer): configure with "
                      "CC=clang CXX=clang++ (see fuzz/run_all.sh)")
endif()
set(RGPU_FUZZ_SANITIZERS address,undefined)
add_compile_options(-fsanitize=fuzzer-no-link,${RGPU_FUZZ_SANITIZERS}
                    -fno-sanitize-recover=undefined -fno-omit-frame-pointer -gline-tables-only)
add_link_options(-fsanitize=${RGPU_FUZZ_SANITIZERS})
