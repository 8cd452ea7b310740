# Installation and the Debian package (`make deb`: CPack's DEB generator).
#   /usr/bin/ballast, /lib/systemd/system/ballast-{serve,agent}.service, /etc/default/ballast-*,
#   bash completion, ballast.1 (generated from --help with help2man), copyright and changelog.
# Depends: from dpkg-shlibdeps (libgit2, libssl, libcap2 and libseccomp2 for process pods, ...),
# plus adduser for postinst. The image (Dockerfile) installs the same list, computed the same way.

include(GNUInstallDirs)
# `make install` / cpack build what they install (below), not every test program first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(packaging ${PROJECT_SOURCE_DIR}/packaging)
set(BALLAST_PACKAGE_CONTACT "ballast developers <maintainers@ballast.invalid>" CACHE STRING
    "The Maintainer: of the Debian package (a placeholder until the project has a list)")


install(TARGETS ballast RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${packaging}/systemd/ballast-serve.service ${packaging}/systemd/ballast-agent.service
        DESTINATION /lib/systemd/system)
install(FILES ${packaging}/default/ballast-serve ${packaging}/default/ballast-agent
        DESTINATION /etc/default)
install(FILES ${packaging}/completion/ballast
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# The manual page, generated from the binary's own --help texts (packaging/make-manpage.sh).
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(man ${PROJECT_BINARY_DIR}/ballast.1.gz)
  add_custom_command(
    OUTPUT ${man}
    COMMAND ${packaging}/make-manpage.sh $<TARGET_FILE:ballast> ${man}
    DEPENDS ballast ${packaging}/make-manpage.sh ${packaging}/manpage.h2m
    COMMENT "Writing the manual page ballast.1 from --help"
    VERBATIM)
  add_custom_target(ballast_man ALL DEPENDS ${man})
  install(FILES ${man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  add_custom_target(ballast_man
    COMMAND ${CMAKE_COMMAND} -E echo "help2man is not installed (apt install help2man)"
    COMMAND ${CMAKE_COMMAND} -E false)
endif()

# Debian's changelog and copyright, as lintian expects them.
# A native package (no Debian revision), so the changelog is changelog.gz.
set(changelog ${PROJECT_BINARY_DIR}/packaging/changelog)
string(TIMESTAMP changelog_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${packaging}/debian/changelog.in ${changelog} @ONLY)
add_custom_command(
  OUTPUT ${changelog}.gz
  COMMAND gzip -9n -f -k ${changelog}
  DEPENDS ${changelog}
  VERBATIM)
add_custom_target(ballast_changelog ALL DEPENDS ${changelog}.gz)
install(FILES ${changelog}.gz ${packaging}/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ballast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "${BALLAST_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "GitOps reconciler with its own lightweight cluster")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "A git repository of Kubernetes-style manifests is the desired state: ballast\npulls it, plans placement and rolling updates, applies the plan through node\nagents and records every applied state in a history repository, so that any\nearlier state can be restored. One binary: the reconciler (ballast serve),\nthe node agent (ballast agent) and the client commands.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "git, ca-certificates, age")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${packaging}/debian/postinst ${packaging}/debian/prerm ${packaging}/debian/postrm
    ${packaging}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR})
include(CPack)
