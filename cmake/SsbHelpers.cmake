# Helper functions for ssbnet's own tests, benchmarks and examples.

# ssb_strict(target): the project's warning set (-Wall -Wextra, -Werror when SSB_WERROR) and,
# with SSB_SANITIZE, AddressSanitizer + UndefinedBehaviorSanitizer that abort on the first report.
function(ssb_strict target)
  target_compile_options(${target} PRIVATE -Wall -Wextra $<$<BOOL:${SSB_WERROR}>:-Werror>)
  if(SSB_SANITIZE)
    set(flags -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_compile_options(${target} PRIVATE ${flags})
    target_link_options(${target} PRIVATE ${flags})
  endif()
endfunction()
