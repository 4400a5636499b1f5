# CPACK_PRE_BUILD_SCRIPTS for the .deb: writes
# /usr/share/doc/ragbox/changelog.gz (Debian policy 12.7; a native package) for the
# version being packaged into the staging directory.
file(GLOB_RECURSE _docdirs LIST_DIRECTORIES true "${CPACK_TEMPORARY_DIRECTORY}/*/share/doc/ragbox")
if(NOT _docdirs)
  file(GLOB_RECURSE _docdirs LIST_DIRECTORIES true "${CPACK_TEMPORARY_DIRECTORY}/share/doc/ragbox")
endif()
foreach(d ${_docdirs})
  if(IS_DIRECTORY "${d}")
    file(READ "${CPACK_RB_CHANGELOG_IN}" _text)
    string(REPLACE "@VERSION@" "${CPACK_PACKAGE_VERSION}" _text "${_text}")
    file(WRITE "${d}/changelog" "${_text}")
    execute_process(COMMAND gzip -9nf "${d}/changelog" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip changelog.Debian failed")
    endif()
  endif()
endforeach()
