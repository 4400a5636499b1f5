# Evaluated by cpack for each generator (CPACK_PROJECT_CONFIG_FILE): names
# the files after the version being packaged, which `cpack -R` may override.
set(CPACK_DEBIAN_FILE_NAME "ragbox_${CPACK_PACKAGE_VERSION}_amd64.deb")
set(CPACK_DEBIAN_PACKAGE_VERSION "${CPACK_PACKAGE_VERSION}")
set(CPACK_RPM_FILE_NAME "ragbox-${CPACK_PACKAGE_VERSION}.x86_64.rpm")
set(CPACK_RPM_PACKAGE_VERSION "${CPACK_PACKAGE_VERSION}")
set(CPACK_RPM_PACKAGE_RELEASE 1)
if(CPACK_GENERATOR STREQUAL "DEB")
  set(CPACK_PRE_BUILD_SCRIPTS "${CMAKE_CURRENT_LIST_DIR}/cpack-deb-changelog.cmake")
else()
  set(CPACK_PRE_BUILD_SCRIPTS "")
endif()
