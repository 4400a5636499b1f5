#!/usr/bin/env bash
# ragbox model add / model list / doctor over real GGUF files from ../shared:
# the copy, its recorded SHA-256, the configuration edit (comments and other
# keys kept, mode kept), hostile files refused, a corrupted copy detected.
. "$(dirname "$0")/lib.sh"
B=${RAGBOX_BIN:?}
chat=$RAGBOX_SHARED/models/fixtures/llama-spm-64.q4_0.gguf
emb=$RAGBOX_SHARED/models/fixtures/bert-bge-128.q8_0.gguf
[ -r "$chat" ] && [ -r "$emb" ] || skip "shared models missing under $RAGBOX_SHARED/models/fixtures"
T=$(scratch model)
D=$T/data C=$T/ragbox.conf
mkdir -m 0750 "$D"
cp "$RAGBOX_SOURCE/packaging/ragbox.conf" "$C"
chmod 0640 "$C"
rb() { "$B" --data "$D" --config "$C" "$@"; }

check "doctor passes on an empty installation" rb doctor --quick >"$T/doctor0.txt"
check "doctor says extractive mode" grep -q "extractive" "$T/doctor0.txt"

check "model add chat" rb model add "$chat" >"$T/add.txt" 2>&1
check "model add embedding" rb model add --role embedding "$emb" >>"$T/add.txt" 2>&1
want=$(sha256sum "$chat" | cut -d' ' -f1)
check "copied file is identical" cmp -s "$chat" "$D/models/llama-spm-64.q4_0.gguf"
got=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print([x["sha256"] for x in m["models"] if x["role"]=="chat"][0])' "$D/models/manifest.json")
check "manifest records the SHA-256 ($got)" [ "$got" = "$want" ]
check "config: chat set" grep -qx "chat = models/llama-spm-64.q4_0.gguf" "$C"
check "config: embedding set" grep -qx "embedding = models/bert-bge-128.q8_0.gguf" "$C"
check "config: comments kept" grep -q "^# How long records are kept" "$C"
check "config: other keys kept" grep -qx "audit_days = 2555" "$C"
check "config: mode kept (0640)" [ "$(stat -c %a "$C")" = 640 ]
check "config: no temporary files left" [ -z "$(ls "$T" | grep tmp)" ]
# Only the two keys changed: the rest of the file is byte-identical.
diff "$RAGBOX_SOURCE/packaging/ragbox.conf" "$C" | grep '^[<>]' >"$T/diff.txt" || true
check "config: exactly two lines changed" [ "$(grep -c '^>' "$T/diff.txt")" = 2 ]
check "model list --verify" rb model list --verify >"$T/list.txt"
check "model list shows both in use" [ "$(grep -c '(in use)' "$T/list.txt")" = 2 ]
check "doctor passes with models" rb doctor >"$T/doctor1.txt"
check "doctor: hashes match" grep -q "2 model files present with matching SHA-256" "$T/doctor1.txt"

# Re-adding replaces the entry (one entry per file name).
check "model add again (options after FILE)" rb model add "$chat" --role chat >/dev/null 2>&1
check "one manifest entry per file" [ "$(grep -c '"file":' "$D/models/manifest.json")" = 2 ]

# Hostile and wrong inputs: clear errors, nothing installed.
printf 'this is a text file, not a model at all\n' >"$T/text.gguf"
check_fails "a text file is refused" rb model add "$T/text.gguf" 2>"$T/e1.txt"
check "error names the problem" grep -q 'does not start with "GGUF"' "$T/e1.txt"
head -c 16 "$chat" >"$T/short.gguf"
check_fails "a truncated header is refused" rb model add "$T/short.gguf" 2>"$T/e2.txt"
check "error says shorter than a header" grep -q "shorter than a GGUF header" "$T/e2.txt"
{ printf 'GGUF\x07\x00\x00\x00'; tail -c +9 "$chat"; } >"$T/v7.gguf"
check_fails "GGUF version 7 is refused" rb model add "$T/v7.gguf" 2>"$T/e3.txt"
check "error names the version" grep -q "version 7 is not supported" "$T/e3.txt"
{ head -c 8 "$chat"; printf '\xff\xff\xff\xff\xff\xff\xff\x7f'; tail -c +17 "$chat"; } >"$T/huge.gguf"
check_fails "an impossible tensor count is refused" rb model add "$T/huge.gguf" 2>"$T/e4.txt"
head -c 100000 "$chat" >"$T/cut.gguf"
check_fails "a truncated model is refused" rb model add "$T/cut.gguf" 2>/dev/null
check "refused files were not installed" [ ! -e "$D/models/text.gguf" ] && [ ! -e "$D/models/cut.gguf" ]
check_fails "bad role" rb model add --role vision "$chat" 2>/dev/null
check_fails "missing file" rb model add "$T/nope.gguf" 2>/dev/null
check_fails "name without .gguf" rb model add --name model.bin "$chat" 2>/dev/null

# A corrupted installed model: doctor and model list --verify fail and say which file.
printf "X" | dd of="$D/models/bert-bge-128.q8_0.gguf" bs=1 seek=$(( $(stat -c %s "$D/models/bert-bge-128.q8_0.gguf") - 100 )) conv=notrunc status=none
check_fails "doctor fails on a corrupted model" rb doctor >"$T/doctor2.txt"
check "doctor names the corrupted file" grep -q "bert-bge-128.q8_0.gguf: SHA-256 .* does not match" "$T/doctor2.txt"
check_fails "model list --verify fails" rb model list --verify >/dev/null
check "doctor --quick does not re-hash" rb doctor --quick >/dev/null
rb doctor --json >"$T/doctor.json" || true
check "doctor --json is JSON with ok=false" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["failures"]>=1' "$T/doctor.json"
rm "$D/models/bert-bge-128.q8_0.gguf"
check_fails "doctor fails on a missing model" rb doctor --quick >"$T/doctor3.txt"
check "doctor says missing" grep -q "is missing" "$T/doctor3.txt"

# Key custody: a readable private key fails, a public key may be readable.
mkdir -m 0700 "$D/keys"
cp "$emb" "$D/models/bert-bge-128.q8_0.gguf"
echo "public" >"$D/keys/audit-ed25519.pub.pem"; chmod 0644 "$D/keys/audit-ed25519.pub.pem"
echo "private" >"$D/keys/audit-ed25519.pem"; chmod 0600 "$D/keys/audit-ed25519.pem"
check "doctor accepts a 0644 public key and a 0600 private key" rb doctor --quick >"$T/doctor5.txt"
chmod 0644 "$D/keys/audit-ed25519.pem"
check_fails "doctor fails on a readable private key" rb doctor --quick >"$T/doctor6.txt"
check "doctor names the key file" grep -q "audit-ed25519.pem is readable by others" "$T/doctor6.txt"
chmod 0600 "$D/keys/audit-ed25519.pem"
chmod 0755 "$D"
check_fails "doctor fails on a world-readable data directory" rb doctor --quick >"$T/doctor7.txt"
chmod 0750 "$D"

# Broken configuration values are reported with their line.
printf '\n[retention]\naudit_days = forever\n' >>"$C"
check_fails "doctor fails on a bad retention value" rb doctor --quick >"$T/doctor4.txt"
check "doctor names the key" grep -q 'retention.audit_days: "forever" is not an integer' "$T/doctor4.txt"
finish
