# Compile through ccache when it is there: make check on a fresh clone then
# rebuilds only what changed since the last run on this machine (the cache
# lives outside the clone, in ccache's default directory or CCACHE_DIR).
# Paths are made relative to the source tree so two clones share entries.
# -DVIGIL_CCACHE=OFF turns it off.
option(VIGIL_CCACHE "Compile through ccache when it is installed" ON)
if(VIGIL_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(VIGIL_CCACHE_PROGRAM ccache)
  if(VIGIL_CCACHE_PROGRAM)
    get_filename_component(_vigil_ccache_base ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
    set(_vigil_launcher ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${_vigil_ccache_base}
                        CCACHE_NOHASHDIR=true ${VIGIL_CCACHE_PROGRAM})
    set(CMAKE_C_COMPILER_LAUNCHER ${_vigil_launcher})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${_vigil_launcher})
    message(STATUS "vigil: compiling through ${VIGIL_CCACHE_PROGRAM}")
  endif()
endif()
