# Installs the configured ssbnet build tree (built with SSB_ENABLE_CUDA) into a scratch prefix,
# then configures, builds and runs the CUDA consumer against it. The consumer's exit code 77 (no
# CUDA device) is passed on, so that ctest reports the test skipped after a successful build.
foreach(var SSB_BUILD_DIR SSB_WORK_DIR SSB_CONSUMER_SOURCE SSB_CUDA_COMPILER SSB_CUDA_ARCHITECTURES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}")
  endif()
endfunction()
file(REMOVE_RECURSE ${SSB_WORK_DIR})
set(prefix ${SSB_WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${SSB_BUILD_DIR} --prefix ${prefix})
foreach(header ssb/cuda.cuh ssb/detail/gpu_verbs.hpp ssb/detail/gpu_runtime.hpp)
  if(NOT EXISTS ${prefix}/include/${header})
    message(FATAL_ERROR "the install did not put ${header} under ${prefix}/include")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SSB_CONSUMER_SOURCE} -B ${SSB_WORK_DIR}/build
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CUDA_COMPILER=${SSB_CUDA_COMPILER}
  "-DCMAKE_CUDA_ARCHITECTURES=${SSB_CUDA_ARCHITECTURES}")
run(${CMAKE_COMMAND} --build ${SSB_WORK_DIR}/build)
execute_process(COMMAND ${SSB_WORK_DIR}/build/consumer RESULT_VARIABLE result
  OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "${out}")
if(result EQUAL 77)
  # cmake -P cannot exit with a chosen code; print the marker ctest's SKIP_REGULAR_EXPRESSION sees.
  message(STATUS "ssbnet-cuda-consumer: skipped (no CUDA device)")
elseif(NOT result EQUAL 0)
  message(FATAL_ERROR "the consumer failed (${result})")
endif()
