#!/usr/bin/env bash
# ragbox backup / restore: an online backup taken while a writer keeps
# changing the database is one consistent snapshot; restore verifies the
# manifest before changing anything, refuses a non-empty data directory
# without --force, refuses tampered or hostile backups; the restored data
# directory equals the backup file for file.
. "$(dirname "$0")/lib.sh"
B=${RAGBOX_BIN:?}
command -v sqlite3 >/dev/null || skip "sqlite3 command-line shell not installed"
model=$RAGBOX_SHARED/models/fixtures/llama-spm-64.q4_0.gguf
[ -r "$model" ] || skip "shared model missing: $model"
T=$(scratch backup)
D=$T/data C=$T/ragbox.conf
mkdir -m 0750 "$D" "$D/faiss" "$D/audit" "$D/keys" "$D/uploads"
chmod 0700 "$D/keys"
cp "$RAGBOX_SOURCE/packaging/ragbox.conf" "$C"
rb() { "$B" --data "$D" --config "$C" "$@"; }

# --- a data directory with real content -------------------------------------
# The database: WAL mode (as the modules use it) with an invariant the writer
# below keeps in every transaction: the balances always sum to 1000000.
sqlite3 "$D/ragbox.db" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE schema_versions(module TEXT PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO schema_versions VALUES ('test', 1);
CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE transfer(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO account SELECT i, 1000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO transfer SELECT i, i % 1000 + 1, (i * 7) % 1000 + 1, 0, hex(randomblob(64)) FROM n;
SQL
check "model add" rb model add "$model" >/dev/null 2>&1
head -c 300000 /dev/urandom >"$D/faiss/1.faiss"
printf '{"seq":1,"prev":"0"}\n{"seq":2,"prev":"a"}\n' >"$D/audit/audit-000001.jsonl"
printf '{"seq":1}\n{"seq":2}\n{"seq":3,"partial' >"$D/audit/audit-000002.jsonl"   # being appended
printf '{"checkpoint":2}\n' >"$D/audit/checkpoint-000002.json"
head -c 32 /dev/urandom >"$D/keys/audit-signing.key"
chmod 0600 "$D/keys/audit-signing.key"
echo "quarterly report" >"$D/uploads/pending.txt"

# --- a writer that keeps the database busy during the backup -----------------
writer() {
  local i=0
  while [ ! -e "$T/stop" ]; do
    i=$((i + 1))
    sqlite3 "$D/ragbox.db" "PRAGMA busy_timeout=5000; BEGIN IMMEDIATE;
      UPDATE account SET balance = balance - 7 WHERE id = $((i % 1000 + 1));
      UPDATE account SET balance = balance + 7 WHERE id = $(((i * 13) % 1000 + 1));
      INSERT INTO transfer(src, dst, amount, note) VALUES ($((i % 1000 + 1)), $(((i * 13) % 1000 + 1)), 7, hex(randomblob(200)));
      COMMIT;" >/dev/null 2>&1 || true
  done
}
writer &
wpid=$!
sleep 0.3
check "backup while writing" rb backup "$T/bk" >"$T/backup.out" 2>"$T/backup.err"
touch "$T/stop"
wait $wpid
rows_after=$(sqlite3 "$D/ragbox.db" "SELECT count(*) FROM transfer")
check "backup warns about the signing key" grep -q "audit signing key" "$T/backup.err"
check "backup has a manifest" [ -s "$T/bk/MANIFEST.json" ]
check "SHA256SUMS verify with sha256sum -c" sh -c "cd '$T/bk' && sha256sum --quiet -c SHA256SUMS"
check "backup is private (0700)" [ "$(stat -c %a "$T/bk")" = 700 ]
check "backup db: integrity ok" [ "$(sqlite3 "$T/bk/ragbox.db" 'PRAGMA integrity_check')" = ok ]
check "backup db: consistent snapshot (sum = 1000000)" \
  [ "$(sqlite3 "$T/bk/ragbox.db" 'SELECT sum(balance) FROM account')" = 1000000 ]
rows_bk=$(sqlite3 "$T/bk/ragbox.db" "SELECT count(*) FROM transfer")
check "backup db: rows between start and end ($rows_bk of $rows_after)" \
  [ "$rows_bk" -ge 20000 ] && [ "$rows_bk" -le "$rows_after" ]
check "backup db: no WAL side files" [ ! -e "$T/bk/ragbox.db-wal" ]
check "backup db: self-contained (journal_mode delete)" \
  [ "$(sqlite3 "$T/bk/ragbox.db" 'PRAGMA journal_mode')" = delete ]
check "audit log cut at the last complete record" \
  [ "$(cat "$T/bk/audit/audit-000002.jsonl")" = "$(printf '{"seq":1}\n{"seq":2}')" ]
check "complete audit log copied whole" cmp -s "$D/audit/audit-000001.jsonl" "$T/bk/audit/audit-000001.jsonl"
check "checkpoint copied" cmp -s "$D/audit/checkpoint-000002.json" "$T/bk/audit/checkpoint-000002.json"
check "faiss copied" cmp -s "$D/faiss/1.faiss" "$T/bk/faiss/1.faiss"
check "model copied" cmp -s "$model" "$T/bk/models/llama-spm-64.q4_0.gguf"
check "configuration copied" cmp -s "$C" "$T/bk/config/ragbox.conf"
check "keys copied" cmp -s "$D/keys/audit-signing.key" "$T/bk/keys/audit-signing.key"
check_fails "backup into a non-empty directory is refused" rb backup "$T/bk" 2>/dev/null
check_fails "backup inside the data directory is refused" rb backup "$D/inner" 2>/dev/null
check "--no-keys --no-models" rb backup --no-keys --no-models "$T/bk-small" >/dev/null 2>"$T/small.err"
check "--no-keys: no key, no warning" [ ! -e "$T/bk-small/keys" ] && ! grep -q "signing key" "$T/small.err"
check "--no-models: no GGUF" [ ! -e "$T/bk-small/models/llama-spm-64.q4_0.gguf" ]

# --- restore into a fresh data directory, then compare -------------------------
D2=$T/restored C2=$T/restored.conf
echo "[retention]" >"$C2"
check "restore into a new data dir" "$B" --data "$D2" --config "$C2" restore "$T/bk" >"$T/restore.out"
check "restored config replaces, old kept" cmp -s "$T/bk/config/ragbox.conf" "$C2" && [ -f "$C2.pre-restore" ]
(cd "$T/bk" && find . -type f ! -name MANIFEST.json ! -name SHA256SUMS ! -path './config/*' | sort) >"$T/bk.list"
(cd "$D2" && find . -type f | sort) >"$T/d2.list"
check "restored file list equals the backup's" cmp -s "$T/bk.list" "$T/d2.list"
same=1
while read -r f; do cmp -s "$T/bk/$f" "$D2/$f" || { same=0; echo "differs: $f" >&2; }; done <"$T/bk.list"
check "every restored file equals the backup" [ $same = 1 ]
check "restored db answers queries" [ "$(sqlite3 "$D2/ragbox.db" 'SELECT sum(balance) FROM account')" = 1000000 ]
check "restored keys are 0600 in a 0700 dir" [ "$(stat -c %a "$D2/keys/audit-signing.key")" = 600 ] && [ "$(stat -c %a "$D2/keys")" = 700 ]
check "doctor passes on the restored data" "$B" --data "$D2" --config "$C2" doctor >"$T/doctor.out"

# --- refusals: non-empty target, tampering, hostile manifests ------------------
check_fails "restore into a non-empty data dir needs --force" "$B" --data "$D2" --config "$C2" restore "$T/bk" 2>"$T/e1"
check "the refusal says --force" grep -q -- "--force" "$T/e1"
echo "local change" >"$D2/uploads/new.txt"
cp -a "$T/bk" "$T/bk-tampered"
printf 'Z' | dd of="$T/bk-tampered/faiss/1.faiss" bs=1 seek=1000 conv=notrunc status=none
check_fails "a tampered backup is refused" "$B" --data "$D2" --config "$C2" restore --force "$T/bk-tampered" 2>"$T/e2"
check "the refusal names the file" grep -q "faiss/1.faiss: SHA-256" "$T/e2"
check "nothing changed after the refusal" [ -e "$D2/uploads/new.txt" ]
cp -a "$T/bk" "$T/bk-hostile"
python3 - "$T/bk-hostile/MANIFEST.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"].append({"path": "../escape.txt", "sha256": "0" * 64, "size": 0, "mode": 420, "kind": "file"})
json.dump(m, open(sys.argv[1], "w"))
PY
check_fails "a manifest path with .. is refused" "$B" --data "$D2" --config "$C2" restore --force "$T/bk-hostile" 2>"$T/e3"
check "the refusal says unsafe" grep -q "unsafe" "$T/e3"
check "nothing escaped" [ ! -e "$T/escape.txt" ]
echo '{"format": "ragbox-backup", "files": [' >"$T/bk-hostile/MANIFEST.json"
check_fails "a malformed manifest is refused" "$B" --data "$D2" --config "$C2" restore --force "$T/bk-hostile" 2>/dev/null
rm "$T/bk-hostile/MANIFEST.json"
check_fails "a backup without a manifest is refused" "$B" --data "$D2" --config "$C2" restore --force "$T/bk-hostile" 2>/dev/null
check "restore --force replaces" "$B" --data "$D2" --config "$C2" restore --force --no-config "$T/bk" >/dev/null
check "--force removed the local change" [ ! -e "$D2/uploads/new.txt" ]
finish
