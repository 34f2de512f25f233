# ssb_zoom test driver: cmake -DPROGRAM=ssb_zoom -DARGS=a|b|c -DCODE=n -DREGEX=re -P expect.cmake
# Runs PROGRAM with ARGS ('|'-separated) and fails unless it exits with CODE, its stdout + stderr
# match REGEX, and no sanitizer reported anything.
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${PROGRAM} ${args} RESULT_VARIABLE code OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
set(output "${out}${err}")
message("${output}")
if(NOT code STREQUAL CODE)
  message(FATAL_ERROR "exit code ${code}, expected ${CODE}")
endif()
if(NOT output MATCHES "${REGEX}")
  message(FATAL_ERROR "the output does not match '${REGEX}'")
endif()
if(output MATCHES "Sanitizer|runtime error:")
  message(FATAL_ERROR "a sanitizer reported an error")
endif()
