#!/usr/bin/env bash
# The appliance's life cycle on a clean Debian bookworm (label: slow).
#
#  1. cpack builds the .deb of this build tree (version V) and a newer one (V+1 patch).
#  2. A fresh root is unpacked from a cached `debootstrap --variant=minbase bookworm`
#     (packaging/bookworm-root.sh builds the cache once, from the mirror apt uses).
#  3. `apt-get install ./ragbox_V_amd64.deb` inside it: apt resolves the
#     dependencies dpkg-shlibdeps declared, from the Debian archive.
#  4. Checks the install: user, directories and modes, conffile, units; runs the
#     binaries as the service user (systemd cannot run in a chroot): doctor, model
#     add; when this build has them, ingests a document (`ragbox ingest`) and
#     answers a question through the HTTP API (`ragbox serve` + /api/ask), or
#     through `ragbox ask` when there is no server.
#  5. Upgrades to V+1 with apt: the schema migration runs, the configuration the
#     operator changed is kept, every data file is intact, the audit chain
#     verifies (when `ragbox audit verify` exists), doctor passes.
#  6. `apt-get remove` keeps the data; `dpkg --purge` deletes it.
# Prints the time of each phase. Skips (77) without root, debootstrap or mounts.
. "$(dirname "$0")/lib.sh"
BUILD=${RAGBOX_BUILD:?}
SRC=${RAGBOX_SOURCE:?}
HERE=$(cd "$(dirname "$0")" && pwd)
bash "$SRC/packaging/bookworm-root.sh" --check || exit $?
command -v cpack >/dev/null || skip "cpack not installed"
command -v curl >/dev/null || skip "curl not installed (needed for the API step)"

T=$(scratch install)
R=$T/root
cache=${RAGBOX_ROOT_CACHE:-/var/cache/ragbox-test}
t_start=$(date +%s)
t_last=$t_start
phase() { local now; now=$(date +%s); say "[$((now - t_last)) s] $*"; t_last=$now; }

unmount_all() {
  local m
  for m in $(awk -v r="$R" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
}
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  unmount_all
  # Never delete through a live mount (that would reach the host's /dev).
  if awk -v r="$R" 'index($2, r) == 1 {f=1} END {exit !f}' /proc/mounts; then
    echo "mounts remain under $R: not removing it" >&2
  elif [ -z "${RAGBOX_KEEP_ROOT:-}" ]; then
    rm -rf "$R"
  fi
}
trap cleanup EXIT

# --- 1. the packages ---------------------------------------------------------------
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$BUILD/CPackConfig.cmake" | head -1)
[ -n "$version" ] || { bad "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake"; finish; exit 1; }
IFS=. read -r vmaj vmin vpat <<<"$version"
newer="$vmaj.$vmin.$((${vpat%%[!0-9]*} + 1))"
(cd "$BUILD" && cpack -G DEB -B "$T/pkg1" >"$T/cpack1.log" 2>&1) || { cat "$T/cpack1.log" >&2; bad "cpack $version"; finish; exit 1; }
(cd "$BUILD" && cpack -G DEB -B "$T/pkg2" -R "$newer" >"$T/cpack2.log" 2>&1) || { cat "$T/cpack2.log" >&2; bad "cpack $newer"; finish; exit 1; }
deb1=$T/pkg1/ragbox_${version}_amd64.deb
deb2=$T/pkg2/ragbox_${newer}_amd64.deb
check "built $deb1" [ -s "$deb1" ]
check "built $deb2" [ -s "$deb2" ]
phase "cpack: ragbox $version and $newer"

# --- 2. a clean bookworm root --------------------------------------------------------
tarball=$(bash "$SRC/packaging/bookworm-root.sh") || { bad "cannot build the bookworm root"; finish; exit 1; }
phase "base root ready: $tarball"
mkdir -p "$R"
tar -C "$R" --numeric-owner -xf "$tarball"
check "the root is minbase: no ragbox, no libsqlite3" sh -c "! chroot '$R' dpkg-query -W ragbox libsqlite3-0 >/dev/null 2>&1"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --bind /dev "$R/dev"
mount -t devpts devpts "$R/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
# Downloaded .debs are kept between runs (the archive is only read when they change).
mkdir -p "$cache/apt-archives/partial"
mount --bind "$cache/apt-archives" "$R/var/cache/apt/archives"
# No daemons start inside the chroot (there is no systemd to start them).
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
as_ragbox() { in_root setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox \
                ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf "$@"; }
phase "root unpacked into $R"

# --- 3. install with apt -------------------------------------------------------------
in_root apt-get update -qq >"$T/apt-update.log" 2>&1 || { cat "$T/apt-update.log" >&2; bad "apt-get update in the root"; finish; exit 1; }
cp "$deb1" "$deb2" "$R/tmp/"
check "apt-get install ./ragbox_${version}_amd64.deb" in_root sh -c \
  "apt-get install -y -q --no-install-recommends /tmp/ragbox_${version}_amd64.deb >/tmp/install.log 2>&1"
cat "$R/tmp/install.log" >"$T/install.log"
check "dpkg says installed $version" [ "$(in_root dpkg-query -W -f='${Status} ${Version}' ragbox)" = "install ok installed $version" ]
in_root dpkg-query -W -f='${Depends}\n' ragbox >"$T/depends"
say "Depends: $(cat "$T/depends")"
grep -E '^(Setting up|Unpacking) ' "$T/install.log" | sed 's/^/  apt: /' | head -40 >&2
phase "installed with its dependencies"

# --- 4. what the install created ---------------------------------------------------------
stat_of() { in_root stat -c '%U:%G %a' "$1" 2>/dev/null; }
check "the ragbox user is a system user" sh -c "[ \$(chroot '$R' id -u ragbox) -lt 1000 ]"
check "the ragbox user has no login shell" [ "$(in_root getent passwd ragbox | cut -d: -f7)" = /usr/sbin/nologin ]
check "/var/lib/ragbox ragbox:ragbox 0750" [ "$(stat_of /var/lib/ragbox)" = "ragbox:ragbox 750" ]
check "/var/lib/ragbox/keys 0700" [ "$(stat_of /var/lib/ragbox/keys)" = "ragbox:ragbox 700" ]
check "/var/log/ragbox/audit ragbox:ragbox 0750" [ "$(stat_of /var/log/ragbox/audit)" = "ragbox:ragbox 750" ]
check "data audit/ points to /var/log/ragbox/audit" [ "$(readlink "$R/var/lib/ragbox/audit")" = /var/log/ragbox/audit ]
check "/etc/ragbox/ragbox.conf root:ragbox 0640" [ "$(stat_of /etc/ragbox/ragbox.conf)" = "root:ragbox 640" ]
check "conffile registered" sh -c "chroot '$R' dpkg-query -W -f='\${Conffiles}' ragbox | grep -q /etc/ragbox/ragbox.conf"
for u in ragbox.target ragbox-web.service ragbox-ingestd.service; do
  check "unit $u installed" [ -f "$R/usr/lib/systemd/system/$u" ]
done
check "ragbox --version ($version)" sh -c "chroot '$R' ragbox --version | grep -qx 'ragbox $version'"
check "man ragbox installed" [ -s "$R/usr/share/man/man1/ragbox.1.gz" ]
check "doctor passes as the service user" as_ragbox doctor >"$T/doctor1.txt" 2>&1
sed 's/^/  doctor: /' "$T/doctor1.txt" >&2
check "ragbox-admin doctor (root -> service user)" in_root ragbox-admin doctor --quick >/dev/null 2>&1

# An operator-supplied model, through ragbox-admin (root: it edits /etc).
model=$RAGBOX_SHARED/models/real/stories260K.gguf
[ -r "$model" ] || model=$RAGBOX_SHARED/models/fixtures/llama-spm-64.q4_0.gguf
if [ -r "$model" ]; then
  cp "$model" "$R/tmp/operator-model.gguf"
  check "ragbox-admin model add" in_root ragbox-admin model add /tmp/operator-model.gguf --role chat >"$T/model.txt" 2>&1
  check "model owned by ragbox" [ "$(stat_of /var/lib/ragbox/models/operator-model.gguf)" = "ragbox:ragbox 640" ]
  check "config kept root:ragbox 0640 after the edit" [ "$(stat_of /etc/ragbox/ragbox.conf)" = "root:ragbox 640" ]
  check "config names the model" grep -qx "chat = models/operator-model.gguf" "$R/etc/ragbox/ragbox.conf"
else
  say "no shared GGUF model: model add not exercised"
fi
# The operator's own change to the conffile, which upgrades must keep.
printf '\n# site change %s\n' "$$" >>"$R/etc/ragbox/ragbox.conf"

# --- ingest and answer, with whatever this build has ----------------------------------------
commands=$(in_root ragbox --help 2>&1 | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1" "$2}')
has() { grep -q "^$1" <<<"$commands"; }
doc=$SRC/samples/healthcare/pmid-10135926.txt
question="Does the in-flight environment of a helicopter impair oral endotracheal intubation by flight nurses?"
exercised=()
if has "collection create" && { has "ingest" || has "index add"; } && [ -r "$doc" ]; then
  cp "$doc" "$R/tmp/pmid-10135926.txt"
  check "collection create" as_ragbox collection create clinical >/dev/null 2>"$T/coll.err"
  if has "ingest"; then
    check "ragbox ingest a document as the service user" as_ragbox ingest --collection clinical /tmp/pmid-10135926.txt >"$T/ingest.txt" 2>&1
    exercised+=("ingest")
  else
    # No ingest command in this build: the document goes in through `index add`
    # (its JSON Lines input), one chunk per paragraph.
    python3 - "$doc" >"$R/tmp/doc.jsonl" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
paras = [p.strip() for p in text.split("\n\n") if p.strip()]
print(json.dumps({"source": "pmid-10135926.txt", "title": "pmid-10135926", "language": "en",
                  "mime": "text/plain",
                  "chunks": [{"text": p, "ordinal": i} for i, p in enumerate(paras)]}))
PY
    check "index add a document as the service user" as_ragbox index add --collection clinical /tmp/doc.jsonl >"$T/ingest.txt" 2>&1
    exercised+=("index add (no ingest command in this build)")
  fi
  if has "serve"; then
    port=$((20000 + RANDOM % 20000))
    in_root setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox \
      ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf serve --listen "127.0.0.1:$port" \
      >"$T/serve.log" 2>&1 &
    server_pid=$!
    up=0
    for _ in $(seq 1 150); do
      curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && { up=1; break; }
      sleep 0.2
    done
    check "ragbox serve (as the service user) answers /api/health" [ $up = 1 ]
    [ $up = 1 ] || sed 's/^/  serve: /' "$T/serve.log" >&2
    key=""
    if has "user add" && has "apikey create"; then
      head -c 18 /dev/urandom | base64 | in_root setpriv --reuid=ragbox --regid=ragbox --init-groups \
        env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf \
        user add ops-admin --role admin --password-stdin >/dev/null 2>"$T/useradd.err" || cat "$T/useradd.err" >&2
      key=$(as_ragbox apikey create ops-admin 2>/dev/null | tail -1)
      check "an API key was issued" [ -n "$key" ]
    fi
    auth=(-H "Authorization: Bearer $key")
    code=$(curl -sS -o "$T/api-ask.txt" -w '%{http_code}' -m 120 "${auth[@]}" -H 'Content-Type: application/json' \
      -d "$(python3 -c 'import json,sys; print(json.dumps({"collection":"clinical","collections":["clinical"],"question":sys.argv[1]}))' "$question")" \
      "http://127.0.0.1:$port/api/ask" 2>/dev/null || echo 000)
    if [ "$code" = 404 ] || [ "$code" = 405 ]; then
      say "this server has no /api/ask: the question goes through /api/search"
      curl -sS -m 60 "${auth[@]}" -H 'Content-Type: application/json' \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"query":sys.argv[1],"collections":["clinical"],"k":3}))' "$question")" \
        "http://127.0.0.1:$port/api/search" >"$T/api-answer.txt" 2>&1 || true
      check "API search finds the ingested document" grep -q "pmid-10135926" "$T/api-answer.txt"
      exercised+=("serve + /api/search")
    else
      cp "$T/api-ask.txt" "$T/api-answer.txt"
      check "API answer ($code) cites the ingested document" grep -q "pmid-10135926" "$T/api-answer.txt"
      exercised+=("serve + /api/ask")
    fi
    head -c 1500 "$T/api-answer.txt" | sed 's/^/  api: /' >&2; echo >&2
    kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""
  fi
  if has "ask"; then
    check "ragbox ask --json cites the ingested document" sh -c "chroot '$R' setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf ask --json --collection clinical '$question' >'$T/ask.json' 2>'$T/ask.err'; grep -q pmid-10135926 '$T/ask.json'"
    head -c 1500 "$T/ask.json" | sed 's/^/  ask: /' >&2; echo >&2
    exercised+=("ask (CLI)")
  fi
else
  say "this build has no 'collection create' + 'ingest'/'index add': ingest and answer not exercised"
fi
audit_ok=""
if has "audit verify"; then
  check "audit verify before the upgrade" as_ragbox audit verify >"$T/audit1.txt" 2>&1
  audit_ok=1
  exercised+=("audit verify")
fi
if has "index verify" && [ -e "$R/var/lib/ragbox/ragbox.db" ]; then
  check "index verify before the upgrade" as_ragbox index verify >/dev/null 2>&1
  exercised+=("index verify")
fi
say "exercised: ${exercised[*]:-install, doctor, model add only (no ingest/answer commands in this build)}"
phase "installed appliance exercised"

# An online backup through ragbox-admin (run by the service user), verified.
check "ragbox-admin backup" in_root ragbox-admin backup /var/backups/ragbox-pre-upgrade >"$T/backup.txt" 2>&1
check "the backup's SHA256SUMS verify" in_root sh -c "cd /var/backups/ragbox-pre-upgrade && sha256sum --quiet -c SHA256SUMS"
check "the backup is the service user's, 0700" [ "$(stat_of /var/backups/ragbox-pre-upgrade)" = "ragbox:ragbox 700" ]
[ -e "$R/var/lib/ragbox/ragbox.db" ] && check "the backup holds the database" [ -s "$R/var/backups/ragbox-pre-upgrade/ragbox.db" ]

# --- 5. upgrade ------------------------------------------------------------------------
# Fingerprint of every data and audit file (the database by its logical
# content, since a migration may legitimately rewrite pages).
fingerprint() {
  (cd "$R" && find var/lib/ragbox var/log/ragbox -type f ! -name '*.db' ! -name '*.db-wal' \
      ! -name '*.db-shm' ! -name '*.faiss' -print0 | sort -z | xargs -0 -r sha256sum)
  if [ -e "$R/var/lib/ragbox/ragbox.db" ] && command -v sqlite3 >/dev/null; then
    # Row counts of every table, read from the root's database file.
    for t in $(sqlite3 "file:$R/var/lib/ragbox/ragbox.db?mode=ro" "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%' AND name <> 'schema_versions' ORDER BY name"); do
      echo "table $t $(sqlite3 "file:$R/var/lib/ragbox/ragbox.db?mode=ro" "SELECT count(*) FROM \"$t\"")"
    done
  fi
}
fingerprint >"$T/before.txt"
check "upgrade with apt to $newer" in_root sh -c \
  "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold /tmp/ragbox_${newer}_amd64.deb >/tmp/upgrade.log 2>&1"
cat "$R/tmp/upgrade.log" >"$T/upgrade.log"
check "dpkg says installed $newer" [ "$(in_root dpkg-query -W -f='${Version}' ragbox)" = "$newer" ]
check "postinst ran the migration" grep -q "upgrading from $version: migrating" "$T/upgrade.log"
check "the operator's configuration change survived" grep -q "# site change $$" "$R/etc/ragbox/ragbox.conf"
if [ -r "$model" ]; then
  check "the model setting survived" grep -qx "chat = models/operator-model.gguf" "$R/etc/ragbox/ragbox.conf"
  check "model list --verify after the upgrade" as_ragbox model list --verify >/dev/null 2>&1
fi
check "no .dpkg-new/.dpkg-dist configuration left" sh -c "! ls '$R/etc/ragbox/' | grep -q dpkg"
fingerprint >"$T/after.txt"
check "every data and audit file is intact after the upgrade" cmp -s "$T/before.txt" "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" >&2 || true
say "data fingerprint: $(wc -l <"$T/after.txt") entries"
[ -n "$audit_ok" ] && check "audit verify after the upgrade" as_ragbox audit verify >/dev/null 2>&1
if has "index verify" && [ -e "$R/var/lib/ragbox/ragbox.db" ]; then
  check "index verify after the upgrade" as_ragbox index verify >/dev/null 2>&1
fi
check "doctor passes after the upgrade" as_ragbox doctor >"$T/doctor2.txt" 2>&1
check "ragbox --version is the new one" sh -c "chroot '$R' ragbox --version | grep -q ragbox"
phase "upgraded to $newer"

# --- 6. remove keeps the data, purge deletes it -------------------------------------------
check "apt-get remove ragbox" in_root sh -c "apt-get remove -y -q ragbox >/tmp/remove.log 2>&1"
check "remove: binary gone" [ ! -e "$R/usr/bin/ragbox" ]
check "remove: data kept" [ -d "$R/var/lib/ragbox" ] && [ -d "$R/var/log/ragbox" ]
[ -r "$model" ] && check "remove: model kept" [ -s "$R/var/lib/ragbox/models/operator-model.gguf" ]
check "remove: configuration kept" [ -f "$R/etc/ragbox/ragbox.conf" ]
check "dpkg --purge ragbox" in_root sh -c "dpkg --purge ragbox >/tmp/purge.log 2>&1"
check "purge: /var/lib/ragbox deleted" [ ! -e "$R/var/lib/ragbox" ]
check "purge: /var/log/ragbox deleted" [ ! -e "$R/var/log/ragbox" ]
check "purge: /etc/ragbox deleted" [ ! -e "$R/etc/ragbox" ]
check "purge: dpkg forgot the package" sh -c "! chroot '$R' dpkg-query -W -f='\${Status}' ragbox 2>/dev/null | grep -q installed"
phase "removed and purged"
say "total: $(( $(date +%s) - t_start )) s"
finish
