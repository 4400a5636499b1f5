#!/usr/bin/env bash
# Builds ragbox_<version>_amd64.deb or ragbox-<version>.x86_64.rpm with cpack
# from the build tree and checks what is inside and what it declares:
#   test-packages.sh deb   dpkg-deb -c/-I/-e, lintian (no errors), units, man page
#   test-packages.sh rpm   rpm -qpl/-qpR/--scripts/--configfiles, rpmlint
. "$(dirname "$0")/lib.sh"
kind=${1:?deb or rpm}
BUILD=${RAGBOX_BUILD:?}
command -v cpack >/dev/null || skip "cpack not installed"
command -v dpkg-deb >/dev/null || skip "dpkg-deb not installed"
T=$(scratch "packages-$kind")
version=$(sed -n 's/^CPACK_PACKAGE_VERSION:.*=//p; s/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$BUILD/CPackConfig.cmake" | head -1)
[ -n "$version" ] || { bad "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake"; finish; exit 1; }

deb=$T/ragbox_${version}_amd64.deb
rpm=$T/ragbox-${version}.x86_64.rpm
if [ "$kind" = rpm ]; then
  command -v rpmbuild >/dev/null || skip "rpmbuild not installed (apt-get install rpm)"
  gen=RPM out=$rpm
else
  gen=DEB out=$deb
fi
start=$(date +%s)
check "cpack -G $gen" sh -c "cd '$BUILD' && cpack -B '$T' -G $gen >'$T/cpack.log' 2>&1"
say "cpack -G $gen: $(( $(date +%s) - start )) s"
check "named ${out##*/}" [ -s "$out" ]
[ -s "$out" ] || { cat "$T/cpack.log" >&2; finish; exit 1; }

if [ "$kind" = deb ]; then
# --- the .deb ------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$T/deb.files"
for f in /usr/bin/ragbox /usr/sbin/ragbox-admin /etc/ragbox/ragbox.conf \
         /usr/lib/systemd/system/ragbox-web.service /usr/lib/systemd/system/ragbox-ingestd.service \
         /usr/lib/systemd/system/ragbox.target /usr/share/man/man1/ragbox.1.gz \
         /usr/lib/systemd/system/ragbox-retention.service /usr/lib/systemd/system/ragbox-retention.timer \
         /usr/share/man/man8/ragbox-admin.8.gz /usr/share/doc/ragbox/copyright \
         /usr/share/doc/ragbox/changelog.gz /usr/share/ragbox/ragbox.conf.default; do
  check "deb contains $f" grep -qx "$f" "$T/deb.files"
done
[ -d "$RAGBOX_SOURCE/web/ui" ] && check "deb contains web assets" grep -q '^/usr/share/ragbox/web/.' "$T/deb.files"
[ -d "$RAGBOX_SOURCE/verticals/packs" ] && check "deb contains vertical packs" grep -q '^/usr/share/ragbox/verticals/.' "$T/deb.files"
check "deb ships no data or log directory" sh -c "! grep -q '^/var/' '$T/deb.files'"
check "deb ships no static libraries or headers" sh -c "! grep -qE '\\.a\$|\\.h\$|/include/' '$T/deb.files'"
dpkg-deb -f "$deb" Depends >"$T/depends"
say "Depends: $(cat "$T/depends")"
check "Depends come from dpkg-shlibdeps (libc6 with a version)" grep -qE 'libc6 \(>= [0-9.]+\)' "$T/depends"
check "Depends names passwd (useradd in postinst)" grep -qw passwd "$T/depends"
if ldd "$BUILD/cli/ragbox" | grep -q libsqlite3; then
  check "Depends has libsqlite3-0 (linked dynamically)" grep -q libsqlite3-0 "$T/depends"
fi
check "FAISS is linked statically (no libfaiss in Depends)" sh -c "! grep -q libfaiss '$T/depends'"
check "ragbox is not linked to libfaiss.so" sh -c "! ldd '$BUILD/cli/ragbox' | grep -q libfaiss"
mkdir -p "$T/ctl"
dpkg-deb -e "$deb" "$T/ctl"
check "conffiles lists /etc/ragbox/ragbox.conf" grep -qx /etc/ragbox/ragbox.conf "$T/ctl/conffiles"
for s in postinst prerm postrm; do
  check "$s is executable" [ -x "$T/ctl/$s" ]
  check "$s passes sh -n" sh -n "$T/ctl/$s"
done
mkdir -p "$T/x"
dpkg-deb -x "$deb" "$T/x"
unit=$T/x/usr/lib/systemd/system/ragbox-web.service
for key in "User=ragbox" "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
           "PrivateTmp=yes" "ReadWritePaths=/var/lib/ragbox /var/log/ragbox" \
           "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "Restart=on-failure" \
           "LimitNOFILE=65536" "StandardOutput=journal" "WantedBy=ragbox.target"; do
  check "ragbox-web.service has $key" grep -qx "$key" "$unit"
  check "ragbox-ingestd.service has $key" grep -qx "$key" "$T/x/usr/lib/systemd/system/ragbox-ingestd.service"
done
ret=$T/x/usr/lib/systemd/system/ragbox-retention.service
for key in "User=ragbox" "Type=oneshot" "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
           "PrivateTmp=yes" "ReadWritePaths=/var/lib/ragbox /var/log/ragbox" "RestrictAddressFamilies=AF_UNIX" \
           "PrivateNetwork=yes" "CapabilityBoundingSet=" "SystemCallFilter=@system-service" "LimitCORE=0" \
           "ExecStart=/usr/bin/ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf retention run"; do
  check "ragbox-retention.service has $key" grep -qx "$key" "$ret"
done
check "ragbox-retention.timer runs daily, catching up" sh -c "grep -qx 'OnCalendar=daily' '$T/x/usr/lib/systemd/system/ragbox-retention.timer' && grep -qx 'Persistent=true' '$T/x/usr/lib/systemd/system/ragbox-retention.timer'"
check "ragbox.target wants the retention timer" grep -q 'ragbox-retention.timer' "$T/x/usr/lib/systemd/system/ragbox.target"
if command -v systemd-analyze >/dev/null; then
  # Only the file syntax: the binary path is inside $T/x, not at /usr/bin.
  check "systemd-analyze verify (syntax)" sh -c "systemd-analyze verify '$T/x/usr/lib/systemd/system/ragbox.target' '$T/x/usr/lib/systemd/system/ragbox-retention.timer' 2>&1 | grep -v -e 'is not executable' -e 'man ragbox' | grep -q . && exit 1 || exit 0"
fi
check "man page renders without warnings" sh -c "zcat '$T/x/usr/share/man/man1/ragbox.1.gz' | groff -man -Tutf8 -ww -z 2>&1 | grep -q . && exit 1 || exit 0"
check "man page has a section per command (doctor, backup, model add)" sh -c "zcat '$T/x/usr/share/man/man1/ragbox.1.gz' | grep -q '^.SS ragbox backup' && zcat '$T/x/usr/share/man/man1/ragbox.1.gz' | grep -q '^.SS ragbox doctor' && zcat '$T/x/usr/share/man/man1/ragbox.1.gz' | grep -q '^.SS ragbox model add'"
check "packaged binary runs" "$T/x/usr/bin/ragbox" --version
check "packaged binary is stripped" sh -c "! file '$T/x/usr/bin/ragbox' | grep -q 'not stripped'"

if command -v lintian >/dev/null; then
  lintian --tag-display-limit 0 "$deb" >"$T/lintian.txt" 2>&1 || true
  sed 's/^/  lintian: /' "$T/lintian.txt" >&2
  check "lintian: no errors" sh -c "! grep -q '^E:' '$T/lintian.txt'"
else
  say "lintian not installed: not run"
fi

fi

# --- the .rpm ------------------------------------------------------------------
if [ "$kind" = rpm ]; then
  rpm -qpl "$rpm" >"$T/rpm.files" 2>/dev/null
  for f in /usr/bin/ragbox /usr/sbin/ragbox-admin /etc/ragbox/ragbox.conf \
           /usr/lib/systemd/system/ragbox-web.service /usr/lib/systemd/system/ragbox.target; do
    check "rpm contains $f" grep -qx "$f" "$T/rpm.files"
  done
  check "rpm does not own /etc or /usr/lib/systemd" sh -c "! grep -qxE '/etc|/usr/lib/systemd|/usr/lib/systemd/system|/usr/bin' '$T/rpm.files'"
  rpm -qpR "$rpm" >"$T/rpm.requires" 2>/dev/null
  sed 's/^/  requires: /' "$T/rpm.requires" >&2
  check "rpm requires come from find-requires (libc.so.6)" grep -q '^libc.so.6' "$T/rpm.requires"
  check "rpm requires shadow-utils (useradd in %pre)" grep -q shadow-utils "$T/rpm.requires"
  check "rpm has no libfaiss requirement" sh -c "! grep -q libfaiss '$T/rpm.requires'"
  rpm -qp --configfiles "$rpm" >"$T/rpm.conf" 2>/dev/null
  check "rpm: ragbox.conf is a config file" grep -qx /etc/ragbox/ragbox.conf "$T/rpm.conf"
  rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" >"$T/rpm.flags" 2>/dev/null
  check "rpm: ragbox.conf is %config(noreplace)" grep -qE '^cn? /etc/ragbox/ragbox.conf$|^c?n /etc/ragbox/ragbox.conf$' "$T/rpm.flags"
  rpm -qp --scripts "$rpm" >"$T/rpm.scripts" 2>/dev/null
  check "rpm %pre creates the user" grep -q "useradd --system" "$T/rpm.scripts"
  check "rpm %post migrates on upgrade" grep -q "migrate" "$T/rpm.scripts"
  if command -v rpmlint >/dev/null; then
    rpmlint "$rpm" >"$T/rpmlint.txt" 2>&1 || true
    sed 's/^/  rpmlint: /' "$T/rpmlint.txt" >&2
    # Accepted, by design: unsigned (sign at release with rpmsign), the
    # configuration is 0640 root:ragbox (it may hold TLS key paths and API
    # settings), no Packager (set by the release build host).
    grep ': E: ' "$T/rpmlint.txt" | grep -vE 'E: (no-signature|non-readable /etc/ragbox/ragbox.conf|no-packager-tag)' >"$T/rpmlint.errors" || true
    check "rpmlint: no unexpected errors" [ ! -s "$T/rpmlint.errors" ]
  fi
fi
finish
