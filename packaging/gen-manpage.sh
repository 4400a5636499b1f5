#!/bin/sh
# Writes the ragbox(1) man page (roff) to stdout from the built binary's own
# help texts: `ragbox --help` and `ragbox COMMAND --help` for every command it
# lists, so the page always matches the program.
#   gen-manpage.sh /path/to/ragbox VERSION DATE
set -eu
bin=$1
version=$2
date=$3

# roff-escape a text block: backslashes, and lines starting with . or '
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'; }

cat <<HEAD
.TH RAGBOX 1 "$date" "ragbox $version" "ragbox manual"
.SH NAME
ragbox \\- on\\-premise retrieval\\-augmented question answering appliance
.SH SYNOPSIS
.B ragbox
[\\fB\\-\\-data\\fR \\fIDIR\\fR] [\\fB\\-\\-config\\fR \\fIFILE\\fR] [\\fB\\-\\-log\\-level\\fR \\fIL\\fR]
\\fICOMMAND\\fR [\\fIARGS\\fR]
.br
.B ragbox\\-admin
\\fICOMMAND\\fR [\\fIARGS\\fR]
.SH DESCRIPTION
ragbox indexes an organisation's documents and answers questions from them,
citing its sources, entirely on this machine; every access is recorded in a
verifiable audit trail.
.PP
The packaged appliance keeps its data in
.I /var/lib/ragbox
(audit trail in
.IR /var/log/ragbox ),
reads
.I /etc/ragbox/ragbox.conf
and runs as the
.B ragbox
user under systemd
.RB ( ragbox.target ", " ragbox\\-web.service ", " ragbox\\-ingestd.service ).
.B ragbox\\-admin
runs a command against that installation as the right user, e.g.
.BR "sudo ragbox\\-admin doctor" .
.SH OVERVIEW
.nf
HEAD
"$bin" --help 2>&1 | esc
echo ".fi"
echo ".SH COMMANDS"
# Command names: the indented lines after "Commands:" (one or two words).
"$bin" --help 2>&1 | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{
    n=split($0, w, " "); name=w[1];
    if (n >= 3 && w[2] ~ /^[a-z][a-z-]*$/ && substr($0, 3 + length(w[1]) + 1, 1) != " ") name=w[1] " " w[2];
    print name }' | while read -r cmd; do
  printf '.SS ragbox %s\n' "$(printf '%s' "$cmd" | sed 's/-/\\-/g')"
  echo ".nf"
  # shellcheck disable=SC2086
  "$bin" $cmd --help 2>&1 | esc || true
  echo ".fi"
done
cat <<TAIL
.SH FILES
.TP
.I /etc/ragbox/ragbox.conf
configuration (INI; a conffile, kept on upgrade)
.TP
.I /var/lib/ragbox
data directory: ragbox.db, faiss/, models/ (with manifest.json), uploads/, keys/
.TP
.I /var/log/ragbox/audit
the hash\\-chained audit trail and its checkpoints
.TP
.I /usr/share/doc/ragbox/OPERATIONS.md
install, upgrade, backup and restore, retention, air\\-gapped installation, troubleshooting
.SH EXIT STATUS
0 on success, 1 on failure (for \\fBdoctor\\fR: a problem was found), 2 on a usage error.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
TAIL
