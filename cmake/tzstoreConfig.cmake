# CMake package file for tzstore, installed by scripts/install.sh into
# <prefix>/lib/cmake/tzstore/. Relocatable: every path is derived from this
# file's location, so the prefix may be moved or copied.
#
#   find_package(tzstore CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE tzstore::tzstore)         # libtzstore.so
#   target_link_libraries(app PRIVATE tzstore::tzstore_static)  # libtzstore.a
#
# Both targets carry the include directory holding tzstore.h and tzstore.hpp.

get_filename_component(_tzstore_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

foreach(_tzstore_file IN ITEMS include/tzstore.h lib/libtzstore.so lib/libtzstore.a)
  if(NOT EXISTS "${_tzstore_prefix}/${_tzstore_file}")
    set(tzstore_FOUND FALSE)
    set(tzstore_NOT_FOUND_MESSAGE "missing ${_tzstore_prefix}/${_tzstore_file}")
    return()
  endif()
endforeach()

if(NOT TARGET tzstore::tzstore)
  add_library(tzstore::tzstore SHARED IMPORTED)
  set_target_properties(tzstore::tzstore PROPERTIES
    IMPORTED_LOCATION "${_tzstore_prefix}/lib/libtzstore.so"
    # A Rust cdylib has no DT_SONAME; without this CMake would record the
    # build-time absolute path in the consumer's DT_NEEDED.
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${_tzstore_prefix}/include")
endif()

if(NOT TARGET tzstore::tzstore_static)
  include(CMakeFindDependencyMacro)
  find_dependency(Threads)
  add_library(tzstore::tzstore_static STATIC IMPORTED)
  # The Rust standard library's native dependencies (rustc
  # --print native-static-libs); libgcc_s provides the unwinder.
  set_target_properties(tzstore::tzstore_static PROPERTIES
    IMPORTED_LOCATION "${_tzstore_prefix}/lib/libtzstore.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_tzstore_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;${CMAKE_DL_LIBS}")
endif()

unset(_tzstore_file)
unset(_tzstore_prefix)
set(tzstore_FOUND TRUE)
