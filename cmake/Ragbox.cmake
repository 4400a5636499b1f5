# Helpers shared by the module CMakeLists.

# ragbox_module(NAME SOURCES ... DEPS ...): static library rb_<NAME> whose
# only public include path is <module>/include.
function(ragbox_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(rb_${name} STATIC ${M_SOURCES})
  target_include_directories(rb_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                             PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(rb_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  set_target_properties(rb_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# ragbox_test(NAME SOURCES ... LIBS ... LABELS ... [TIMEOUT s]): one CTest
# executable. Tests find the shared inputs through $RAGBOX_SHARED and write
# scratch files under $RAGBOX_TEST_TMP (a per-test directory in the build tree).
function(ragbox_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES
    LABELS "${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "RAGBOX_SHARED=${RAGBOX_SHARED};RAGBOX_TEST_TMP=${CMAKE_BINARY_DIR}/test-tmp/${name};RAGBOX_BIN=${CMAKE_BINARY_DIR}/cli/ragbox;RAGBOX_SOURCE=${CMAKE_SOURCE_DIR};RAGBOX_LOG=warn")
endfunction()
