# ssb_find_kokkos([REQUIRED|QUIET] [<version>]): find_package(Kokkos CONFIG) and make the
# Kokkos::kokkos target usable.
#
# Debian's libtrilinos-kokkos-dev (Kokkos 3.4 inside Trilinos 13.2) installs a TriBITS config
# whose Kokkos::kokkos names the include directory "<libdir>/../include" (/usr/lib/include, which
# does not exist; the headers are in /usr/include/trilinos), and CMake refuses an imported target
# with a missing include directory. Here the missing directories are dropped and the one holding
# Kokkos_Core.hpp (Kokkos_INCLUDE_DIRS, else a search) is put in their place. A regular Kokkos
# install (Spack, a source build, cmake/build_kokkos.sh) passes through untouched.
#
# Sets Kokkos_FOUND, Kokkos_VERSION and SSB_KOKKOS_DEVICES (e.g. "SERIAL;OPENMP"). Installed
# next to ssbnetConfig.cmake, which calls it for find_package(ssbnet COMPONENTS kokkos).
macro(ssb_find_kokkos)
  # Kokkos' config forces CMAKE_CXX_EXTENSIONS OFF into the cache with a warning unless it is
  # already off: say so up front (ssbnet needs no GNU extensions).
  if(NOT DEFINED CMAKE_CXX_EXTENSIONS)
    set(CMAKE_CXX_EXTENSIONS OFF)
  endif()
  find_package(Kokkos CONFIG ${ARGN})
  if(Kokkos_FOUND AND TARGET Kokkos::kokkos)
    _ssb_fix_kokkos_includes()
  elseif(Kokkos_FOUND)
    set(Kokkos_FOUND FALSE)
    message(WARNING "ssbnet: Kokkos ${Kokkos_VERSION} was found at ${Kokkos_DIR} but defines no "
                    "Kokkos::kokkos target")
  endif()
  if(Kokkos_FOUND)
    set(SSB_KOKKOS_DEVICES ${Kokkos_DEVICES})
    string(TOUPPER "${SSB_KOKKOS_DEVICES}" SSB_KOKKOS_DEVICES)
  endif()
endmacro()

function(_ssb_fix_kokkos_includes)
  get_target_property(includes Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT includes)
    set(includes "")
  endif()
  set(kept "")
  set(dropped "")
  set(has_core FALSE)
  foreach(dir IN LISTS includes)
    # Generator expressions cannot be checked here: keep them.
    if(dir MATCHES "\\$<" OR EXISTS "${dir}")
      list(APPEND kept "${dir}")
      if(EXISTS "${dir}/Kokkos_Core.hpp")
        set(has_core TRUE)
      endif()
    else()
      list(APPEND dropped "${dir}")
    endif()
  endforeach()
  if(NOT dropped)
    return()
  endif()
  if(NOT has_core)
    set(candidates "")
    foreach(dir IN LISTS Kokkos_INCLUDE_DIRS KokkosCore_INCLUDE_DIRS)
      get_filename_component(dir "${dir}" ABSOLUTE)
      list(APPEND candidates "${dir}")
    endforeach()
    find_path(SSB_KOKKOS_INCLUDE_DIR Kokkos_Core.hpp
      HINTS ${candidates} PATH_SUFFIXES trilinos kokkos)
    if(NOT SSB_KOKKOS_INCLUDE_DIR)
      message(FATAL_ERROR "ssbnet: Kokkos::kokkos (${Kokkos_DIR}) names the include directories "
                          "'${dropped}', which do not exist, and Kokkos_Core.hpp was not found "
                          "elsewhere (set SSB_KOKKOS_INCLUDE_DIR)")
    endif()
    list(APPEND kept "${SSB_KOKKOS_INCLUDE_DIR}")
    message(STATUS "ssbnet: Kokkos::kokkos include directory '${dropped}' does not exist; "
                   "using ${SSB_KOKKOS_INCLUDE_DIR}")
  endif()
  set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${kept}")
endfunction()
