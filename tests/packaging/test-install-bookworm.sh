#!/usr/bin/env bash
# The appliance's life cycle on a clean Debian bookworm (label: slow), upgrading
# from the previous release as customers will.
#
#  1. The OLD package: the .deb of the previous release, tag $RAGBOX_UPGRADE_FROM
#     (default v0.1.0), built from that tag with packaging/build-ref-deb.sh
#     (git archive of the tag, Release -O2, only the packaged targets, the
#     tag's own CPack; ~2 min once, then cached by commit under
#     /var/cache/ragbox-test/ref-debs). RAGBOX_OLD_DEB=FILE uses a given .deb
#     instead (e.g. the released artifact). The NEW package: cpack of this build
#     tree, versioned after the old one (V+git<n>.<hash> when this tree still
#     says the old version).
#     If the tag is not in the repository (a shallow clone), the test FAILS with
#     a message saying how to fetch it: the upgrade from a real release is what
#     this test exists to show, and a skip would let CI go green without it.
#  2. A fresh root is unpacked from a cached `debootstrap --variant=minbase bookworm`.
#  3. `apt-get install ./ragbox_OLD_amd64.deb`: apt resolves the dependencies.
#  4. Checks the install (user, directories and modes, conffile, units); runs the
#     OLD binaries as the service user (systemd cannot run in a chroot): doctor,
#     model add, ingest, an answer through the HTTP API (serve + /api/ask, and
#     /api/search), `ragbox ask`, audit verify, index verify, a backup.
#  5. Upgrades to NEW with apt: postinst migrates the schema as the service
#     user; the configuration the operator changed is kept; every data and audit
#     file is byte-identical; each module's schema version equals what the new
#     binary creates on a fresh database (the migration brought it forward; the
#     test says which modules changed, or that none did); the OLD audit chain
#     verifies with the NEW binary and new records continue it; the index
#     verifies and the same search finds the same document; the retention timer
#     is installed and enabled; `retention run` works; doctor passes.
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
from_ref=${RAGBOX_UPGRADE_FROM:-v0.1.0}
if [ -n "${RAGBOX_OLD_DEB:-}" ]; then
  deb1=$RAGBOX_OLD_DEB
  from_ref="$(basename "$deb1") (RAGBOX_OLD_DEB)"
elif ! deb1=$(bash "$SRC/packaging/build-ref-deb.sh" --src "$SRC" "$from_ref" 2>"$T/build-ref.log"); then
  cat "$T/build-ref.log" >&2
  bad "cannot build the package of the previous release $from_ref: the upgrade from a real release is not tested. In a shallow clone run 'git fetch --tags --unshallow', or set RAGBOX_OLD_DEB to the released .deb"
  finish; exit 1
fi
sed 's/^/  /' "$T/build-ref.log" >&2 2>/dev/null || true
old=$(dpkg-deb -f "$deb1" Version)
if dpkg --compare-versions "$version" gt "$old"; then
  newer=$version
else
  # This tree still says the released version: a snapshot after it.
  n=$(git -C "$SRC" rev-list --count HEAD 2>/dev/null || echo 0)
  h=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo local)
  newer="$version+git$n.$h"
fi
(cd "$BUILD" && cpack -G DEB -B "$T/pkg2" -R "$newer" >"$T/cpack2.log" 2>&1) || { cat "$T/cpack2.log" >&2; bad "cpack $newer"; finish; exit 1; }
deb2=$T/pkg2/ragbox_${newer}_amd64.deb
check "old package $deb1 ($old)" [ -s "$deb1" ]
check "new package $deb2" [ -s "$deb2" ]
check "the new version $newer sorts after $old" dpkg --compare-versions "$newer" gt "$old"
phase "packages: ragbox $old (from $from_ref) and $newer (this tree)"

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
# Copied in and back rather than bind-mounted: concurrent runs (other worktrees)
# would otherwise fight over apt's lock on the shared directory.
mkdir -p "$cache/apt-archives/partial" "$R/var/cache/apt/archives/partial"
find "$cache/apt-archives" -maxdepth 1 -name '*.deb' -exec cp -t "$R/var/cache/apt/archives/" {} +
save_debs() {
  local f
  for f in "$R"/var/cache/apt/archives/*.deb; do
    [ -e "$f" ] && [ ! -e "$cache/apt-archives/${f##*/}" ] || continue
    cp "$f" "$cache/apt-archives/.${f##*/}.$$" && mv "$cache/apt-archives/.${f##*/}.$$" "$cache/apt-archives/${f##*/}"
  done
}
# No daemons start inside the chroot (there is no systemd to start them).
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
as_ragbox() { in_root setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox \
                ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf "$@"; }
phase "root unpacked into $R"

# --- 3. install with apt -------------------------------------------------------------
in_root apt-get update -qq >"$T/apt-update.log" 2>&1 || { cat "$T/apt-update.log" >&2; bad "apt-get update in the root"; finish; exit 1; }
cp "$deb1" "$R/tmp/ragbox-old.deb"
cp "$deb2" "$R/tmp/ragbox-new.deb"
check "apt-get install ./ragbox_${old}_amd64.deb (the previous release)" in_root sh -c \
  "apt-get install -y -q --no-install-recommends /tmp/ragbox-old.deb >/tmp/install.log 2>&1"
cat "$R/tmp/install.log" >"$T/install.log"
save_debs
check "dpkg says installed $old" [ "$(in_root dpkg-query -W -f='${Status} ${Version}' ragbox)" = "install ok installed $old" ]
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
check "ragbox --version (${old%%[+~-]*})" sh -c "chroot '$R' ragbox --version | grep -qx 'ragbox ${old%%[+~-]*}'"
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

# --- ingest and answer with the OLD binaries ------------------------------------------------
doc=$SRC/samples/healthcare/pmid-10135926.txt
question="Does the in-flight environment of a helicopter impair oral endotracheal intubation by flight nurses?"
[ -r "$doc" ] || { bad "sample document $doc missing"; finish; exit 1; }
cp "$doc" "$R/tmp/pmid-10135926.txt"
check "collection create (old)" as_ragbox collection create clinical >/dev/null 2>"$T/coll.err"
check "ragbox ingest a document as the service user (old)" as_ragbox ingest --collection clinical /tmp/pmid-10135926.txt >"$T/ingest.txt" 2>&1

# The web server as the service user, on loopback; the API key's user is an admin.
port=0
start_server() {
  port=$((20000 + RANDOM % 20000))
  in_root setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox \
    ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf serve --listen "127.0.0.1:$port" \
    >"$T/serve-$1.log" 2>&1 &
  server_pid=$!
  local up=0
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && { up=1; break; }
    sleep 0.2
  done
  check "ragbox serve ($1, as the service user) answers /api/health" [ $up = 1 ]
  [ $up = 1 ] || sed 's/^/  serve: /' "$T/serve-$1.log" >&2
}
stop_server() { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""; }
api() { # api PATH JSON OUTFILE -> HTTP status
  curl -sS -o "$3" -w '%{http_code}' -m 120 -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$port$1" 2>/dev/null || echo 000
}
# Extractive: the operator's model above is a tiny story model (a newer server uses
# [models] chat for generation, and an uncited generated answer is withheld).
ask_json=$(python3 -c 'import json,sys; print(json.dumps({"collections":["clinical"],"question":sys.argv[1],"mode":"extractive"}))' "$question")
search_json=$(python3 -c 'import json,sys; print(json.dumps({"query":sys.argv[1],"collections":["clinical"],"k":3}))' "$question")
# First document of a search answer (the same search must find it after the upgrade).
top_doc() { python3 -c 'import json,sys; h=json.load(open(sys.argv[1])).get("hits") or []; print("%s#%s" % (h[0].get("source"), h[0].get("chunk_id")) if h else "")' "$1" 2>/dev/null; }

head -c 18 /dev/urandom | base64 | in_root setpriv --reuid=ragbox --regid=ragbox --init-groups \
  env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf \
  user add ops-admin --role admin --password-stdin >/dev/null 2>"$T/useradd.err" || cat "$T/useradd.err" >&2
key=$(as_ragbox apikey create ops-admin 2>/dev/null | tail -1)
check "an API key was issued (old)" [ -n "$key" ]
start_server old
check "API /api/ask (old) answers 200" [ "$(api /api/ask "$ask_json" "$T/api-ask-old.txt")" = 200 ]
check "API answer (old) cites the ingested document" grep -q "pmid-10135926" "$T/api-ask-old.txt"
head -c 800 "$T/api-ask-old.txt" | sed 's/^/  api ask (old): /' >&2; echo >&2
check "API /api/search (old) answers 200" [ "$(api /api/search "$search_json" "$T/api-search-old.json")" = 200 ]
doc_old=$(top_doc "$T/api-search-old.json")
check "API search (old) finds the ingested document" grep -q "pmid-10135926" "$T/api-search-old.json"
stop_server
check "ragbox ask --json (old) cites the ingested document" sh -c "chroot '$R' setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf ask --json --collection clinical '$question' >'$T/ask-old.json' 2>'$T/ask.err'; grep -q pmid-10135926 '$T/ask-old.json'"
check "audit verify (old binary)" as_ragbox audit verify >"$T/audit1.txt" 2>&1
as_ragbox audit verify --json >"$T/audit-old.json" 2>/dev/null
old_last_seq=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_seq"])' "$T/audit-old.json" 2>/dev/null || echo 0)
check "the old binary wrote audit records (ingest, login, ask: last seq $old_last_seq)" [ "$old_last_seq" -ge 3 ]
check "index verify (old binary)" as_ragbox index verify >/dev/null 2>&1
phase "old release exercised: ingest, API ask + search, CLI ask, $old_last_seq audit records"

# An online backup through ragbox-admin (run by the service user), verified.
check "ragbox-admin backup" in_root ragbox-admin backup /var/backups/ragbox-pre-upgrade >"$T/backup.txt" 2>&1
check "the backup's SHA256SUMS verify" in_root sh -c "cd /var/backups/ragbox-pre-upgrade && sha256sum --quiet -c SHA256SUMS"
check "the backup is the service user's, 0700" [ "$(stat_of /var/backups/ragbox-pre-upgrade)" = "ragbox:ragbox 700" ]
check "the backup holds the database" [ -s "$R/var/backups/ragbox-pre-upgrade/ragbox.db" ]

# --- 5. upgrade ------------------------------------------------------------------------
db="file:$R/var/lib/ragbox/ragbox.db?mode=ro"
# Fingerprint of every data and audit file (the database by its logical
# content, since a migration may legitimately rewrite pages).
fingerprint() {
  (cd "$R" && find var/lib/ragbox var/log/ragbox -type f ! -name '*.db' ! -name '*.db-wal' \
      ! -name '*.db-shm' ! -name '*.faiss' -print0 | sort -z | xargs -0 -r sha256sum)
  # Row counts of every table, read from the root's database file.
  for t in $(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%' AND name <> 'schema_versions' ORDER BY name"); do
    echo "table $t $(sqlite3 "$db" "SELECT count(*) FROM \"$t\"")"
  done
}
schemas() { sqlite3 "$1" "SELECT module || ' ' || version FROM schema_versions ORDER BY module"; }
fingerprint >"$T/before.txt"
cp "$R/usr/share/ragbox/ragbox.conf.default" "$T/conf-default-old"
rm -rf "$T/audit-old" && cp -a "$R/var/log/ragbox/audit" "$T/audit-old"
schemas "$db" >"$T/schema-old.txt"
check "the old database records module schema versions" [ -s "$T/schema-old.txt" ]
check "upgrade with apt to $newer" in_root sh -c \
  "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold /tmp/ragbox-new.deb >/tmp/upgrade.log 2>&1"
cat "$R/tmp/upgrade.log" >"$T/upgrade.log"
check "dpkg says installed $newer" [ "$(in_root dpkg-query -W -f='${Version}' ragbox)" = "$newer" ]
check "postinst ran the migration" grep -q "upgrading from $old: migrating" "$T/upgrade.log"
grep -E '^schema ' "$T/upgrade.log" | sed 's/^/  migrate: /' >&2
check "the operator's configuration change survived" grep -q "# site change $$" "$R/etc/ragbox/ragbox.conf"
if [ -r "$model" ]; then
  check "the model setting survived" grep -qx "chat = models/operator-model.gguf" "$R/etc/ragbox/ragbox.conf"
  check "model list --verify after the upgrade" as_ragbox model list --verify >/dev/null 2>&1
fi
# The operator changed the conffile; when the packaged default changed too, dpkg
# (--force-confold) keeps theirs and puts the new default beside it to merge.
if cmp -s "$T/conf-default-old" "$R/usr/share/ragbox/ragbox.conf.default"; then
  check "the default configuration did not change: no .dpkg-dist" sh -c "! ls '$R/etc/ragbox/' | grep -q dpkg"
else
  say "the packaged default configuration changed since $old: ragbox.conf.dpkg-dist holds it"
  check "the new default is offered as ragbox.conf.dpkg-dist" cmp -s "$R/etc/ragbox/ragbox.conf.dpkg-dist" "$R/usr/share/ragbox/ragbox.conf.default"
fi
check "no .dpkg-new configuration left" sh -c "! ls '$R/etc/ragbox/' | grep -q dpkg-new"
fingerprint >"$T/after.txt"
check "every data and audit file is intact after the upgrade" cmp -s "$T/before.txt" "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" >&2 || true
say "data fingerprint: $(wc -l <"$T/after.txt") entries"

# Schema: every module is at the version the new binary creates on a fresh database.
schemas "$db" >"$T/schema-migrated.txt"
in_root install -d -o ragbox -g ragbox -m 0750 /tmp/fresh
fresh() { in_root setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/tmp/fresh \
            ragbox --data /tmp/fresh --config /etc/ragbox/ragbox.conf "$@"; }
fresh collection create clinical >/dev/null 2>&1
fresh ingest --collection clinical /tmp/pmid-10135926.txt >/dev/null 2>&1
echo "fresh-password-$$" | fresh user add fresh-admin --role admin --password-stdin >/dev/null 2>&1
schemas "file:$R/tmp/fresh/ragbox.db?mode=ro" >"$T/schema-fresh.txt"
check "each module's schema version after the upgrade equals a fresh database's" cmp -s "$T/schema-migrated.txt" "$T/schema-fresh.txt"
join -a1 -a2 -e none -o 0,1.2,2.2 "$T/schema-old.txt" "$T/schema-migrated.txt" >"$T/schema-diff.txt"
changed=$(awk '$2 != $3' "$T/schema-diff.txt")
not_back=$(awk '$2 != "none" && $3 != "none" && $3 < $2' "$T/schema-diff.txt")
check "no module's schema version went backwards" [ -z "$not_back" ]
if [ -n "$changed" ]; then
  say "schema versions migrated ($from_ref -> this tree):"; sed 's/^/  /; s/ / : /' <<<"$changed" >&2
else
  say "no module's schema changed between $from_ref and this tree (versions: $(tr '\n' ' ' <"$T/schema-migrated.txt")); the migration step ran and left them"
fi

# The old audit chain verifies with the new binary, and new records continue it.
check "audit verify after the upgrade (new binary, old records)" as_ragbox audit verify >"$T/audit2.txt" 2>&1
check "index verify after the upgrade" as_ragbox index verify >/dev/null 2>&1
start_server new
check "API /api/search (new) answers 200" [ "$(api /api/search "$search_json" "$T/api-search-new.json")" = 200 ]
doc_new=$(top_doc "$T/api-search-new.json")
check "the same search finds the same document after the upgrade ($doc_old)" [ -n "$doc_old" ] && [ "$doc_new" = "$doc_old" ]
check "API /api/ask (new) answers 200" [ "$(api /api/ask "$ask_json" "$T/api-ask-new.txt")" = 200 ]
check "API answer (new) cites the document ingested before the upgrade" grep -q "pmid-10135926" "$T/api-ask-new.txt"
stop_server
check "ragbox ask --json (new) cites it" sh -c "chroot '$R' setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf ask --json --collection clinical '$question' >'$T/ask-new.json' 2>>'$T/ask.err'; grep -q pmid-10135926 '$T/ask-new.json'"
as_ragbox audit verify --json >"$T/audit-new.json" 2>/dev/null
check "audit verify over old and new records" python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["ok"] and r["first_seq"] == 1 and r["last_seq"] > int(sys.argv[2]) else 1)' "$T/audit-new.json" "$old_last_seq"
say "audit chain: seq 1..$old_last_seq written by $old, continued to $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_seq"])' "$T/audit-new.json" 2>/dev/null) by $newer"
prefix_ok=1
for f in "$T/audit-old"/audit-*.jsonl; do
  n=$(stat -c %s "$f")
  cmp -s -n "$n" "$f" "$R/var/log/ragbox/audit/${f##*/}" || prefix_ok=0
done
check "the records written before the upgrade are unchanged (each old log file is a prefix of its current one)" [ $prefix_ok = 1 ]

# The retention job the new version brings.
for u in ragbox-retention.service ragbox-retention.timer; do
  check "unit $u installed by the upgrade" [ -f "$R/usr/lib/systemd/system/$u" ]
done
if in_root sh -c 'command -v deb-systemd-helper' >/dev/null 2>&1; then
  # (deb-systemd-helper only runs under dpkg: look at the links it made.)
  check "the upgrade enabled ragbox-retention.timer (timers.target wants it)" sh -c \
    "readlink '$R/etc/systemd/system/timers.target.wants/ragbox-retention.timer' | grep -q '/systemd/system/ragbox-retention.timer\$'"
fi
check "retention run (new, as the service user)" as_ragbox retention run >"$T/retention.txt" 2>&1
sed 's/^/  retention: /' "$T/retention.txt" >&2
check "retention status shows the run" sh -c "chroot '$R' setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf retention status | grep -q '^last run: '"
check "audit verify after retention" as_ragbox audit verify >/dev/null 2>&1
check "doctor passes after the upgrade" as_ragbox doctor >"$T/doctor2.txt" 2>&1
sed 's/^/  doctor: /' "$T/doctor2.txt" >&2
check "doctor reports retention" grep -q "retention  last run" "$T/doctor2.txt"
phase "upgraded $old -> $newer"

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
