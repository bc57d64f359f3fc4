# BPF object and skeleton generation, in the manner of libbpf-bootstrap's
# FindBpfObject.cmake: every .bpf.c is compiled with clang -target bpf, the
# objects are linked with `bpftool gen object` into one object, and one
# skeleton header is generated from it. Everything lands in the build tree.
#
#   vigil_bpf_skeleton(<name> SOURCES a.bpf.c ... [INCLUDE_DIRS dir ...]
#                      [DEPENDS header ...])
#
# creates the INTERFACE library <name>_skel whose include directory holds
# <name>.skel.h and which links libbpf.

find_program(BPFTOOL_EXECUTABLE NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_CLANG_EXECUTABLE NAMES clang-14 clang REQUIRED)
set(VIGIL_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF from which vmlinux.h is generated (CO-RE makes the result portable)")

if(NOT EXISTS ${VIGIL_VMLINUX_BTF})
  message(FATAL_ERROR "${VIGIL_VMLINUX_BTF} is missing: the build needs a kernel with "
                      "CONFIG_DEBUG_INFO_BTF=y (or set VIGIL_VMLINUX_BTF)")
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(VIGIL_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(VIGIL_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "unsupported architecture for BPF: ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(vigil_bpf_skeleton name)
  cmake_parse_arguments(ARG "" "" "SOURCES;INCLUDE_DIRS;DEPENDS" ${ARGN})
  set(gen_dir ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${gen_dir})

  set(vmlinux_h ${gen_dir}/vmlinux.h)
  add_custom_command(
    OUTPUT ${vmlinux_h}
    COMMAND sh -c "${BPFTOOL_EXECUTABLE} btf dump file ${VIGIL_VMLINUX_BTF} format c > ${vmlinux_h}.tmp && mv ${vmlinux_h}.tmp ${vmlinux_h}"
    COMMENT "Generating vmlinux.h from ${VIGIL_VMLINUX_BTF}"
    VERBATIM)

  set(include_flags -I${gen_dir})
  foreach(dir IN LISTS ARG_INCLUDE_DIRS)
    list(APPEND include_flags -I${dir})
  endforeach()

  set(objects)
  foreach(src IN LISTS ARG_SOURCES)
    get_filename_component(abs_src ${src} ABSOLUTE)
    get_filename_component(stem ${src} NAME_WE)
    set(obj ${gen_dir}/${stem}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${BPF_CLANG_EXECUTABLE} -g -O2 -Wall -Werror -target bpf -mcpu=v3
              -D__TARGET_ARCH_${VIGIL_BPF_ARCH} ${include_flags}
              -c ${abs_src} -o ${obj}
      DEPENDS ${abs_src} ${vmlinux_h} ${ARG_DEPENDS}
      COMMENT "Compiling BPF object ${stem}.bpf.o"
      VERBATIM)
    list(APPEND objects ${obj})
  endforeach()

  set(linked ${gen_dir}/${name}.bpf.o)
  add_custom_command(
    OUTPUT ${linked}
    COMMAND ${BPFTOOL_EXECUTABLE} gen object ${linked} ${objects}
    DEPENDS ${objects}
    COMMENT "Linking BPF objects into ${name}.bpf.o"
    VERBATIM)

  set(skel ${gen_dir}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "${BPFTOOL_EXECUTABLE} gen skeleton ${linked} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${linked}
    COMMENT "Generating BPF skeleton ${name}.skel.h"
    VERBATIM)

  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel SYSTEM INTERFACE ${gen_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
