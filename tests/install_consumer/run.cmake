# Installs the configured ssbnet build tree into a scratch prefix, then configures, builds and runs
# the consumer project against it with find_package(ssbnet). Run with cmake -P (see tests/).
foreach(var SSB_BUILD_DIR SSB_WORK_DIR SSB_CONSUMER_SOURCE SSB_WITH_OPENMP SSB_CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE ${SSB_WORK_DIR})
set(prefix ${SSB_WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${SSB_BUILD_DIR} --prefix ${prefix})
if(NOT EXISTS ${prefix}/include/ssb/ssb.hpp)
  message(FATAL_ERROR "the install did not put ssb/ssb.hpp under ${prefix}/include")
endif()
run(${CMAKE_COMMAND} -S ${SSB_CONSUMER_SOURCE} -B ${SSB_WORK_DIR}/build
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${SSB_CXX_COMPILER}
  -DWITH_OPENMP=${SSB_WITH_OPENMP})
run(${CMAKE_COMMAND} --build ${SSB_WORK_DIR}/build)
run(${SSB_WORK_DIR}/build/consumer)

# Asking for a component that was not built must fail with a clear message.
file(WRITE ${SSB_WORK_DIR}/missing/CMakeLists.txt
  "cmake_minimum_required(VERSION 3.20)\nproject(missing LANGUAGES CXX)\nfind_package(ssbnet REQUIRED COMPONENTS no_such_backend)\n")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SSB_WORK_DIR}/missing -B ${SSB_WORK_DIR}/missing/build
  -DCMAKE_PREFIX_PATH=${prefix} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(result EQUAL 0 OR NOT out MATCHES "without component 'no_such_backend'")
  message(FATAL_ERROR "find_package(ssbnet COMPONENTS no_such_backend) did not fail clearly:\n${out}")
endif()
message(STATUS "install and consume: ok")
