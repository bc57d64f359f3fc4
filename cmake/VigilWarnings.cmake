# vigil_target_warnings(<target>): the warning set for vigil's own code.
# Applied per target so code owned by others (tests/vm) keeps its own flags.
function(vigil_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Werror
    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual>
    $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes>)
endfunction()
