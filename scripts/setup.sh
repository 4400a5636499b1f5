#!/usr/bin/env bash
# Installs everything ragbox needs to build, test and run on Debian bookworm.
# Idempotent and quiet on a second run: packages already present are skipped,
# and the FAISS C API library is built once and cached under $RAGBOX_DEPS.
#
#   scripts/setup.sh            install build + runtime + test dependencies
#   scripts/setup.sh --minimal  only what building and running needs (no browser, packaging tools)
set -euo pipefail

RAGBOX_DEPS=${RAGBOX_DEPS:-/opt/ragbox-deps}
minimal=0
[ "${1:-}" = "--minimal" ] && minimal=1

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

say() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
# Which package does what is listed in README.md ("Dependencies").
pkgs=(
  build-essential cmake pkg-config git ca-certificates dpkg-dev
  clang libclang-rt-14-dev                     # libFuzzer + sanitizer runtimes
  libsqlite3-dev sqlite3                       # documents, chunks, FTS5, users, queue
  libfaiss-dev libopenblas-dev liblapack-dev   # vectors (static libfaiss.a + BLAS/LAPACK)
  libssl-dev                                   # SHA-256, Ed25519 signatures, TLS
  libcjson-dev                                 # JSON
  libinih-dev                                  # configuration file parser
  libpcre2-dev                                 # tokenizer pre-tokenizer regexes, redaction rules
  libicu-dev                                   # Unicode NFD, categories, case mapping (BERT WordPiece normaliser)
  libcurl4-openssl-dev                         # remote OpenAI-compatible backend, API tests
  libmicrohttpd-dev                            # HTTP server
  libargon2-dev                                # password hashing (Argon2id)
  libpoppler-glib-dev poppler-utils            # PDF text + layout; pdftotext baseline in bench
  libtesseract-dev libleptonica-dev tesseract-ocr-eng tesseract-ocr-chi-sim   # OCR
  libzip-dev libxml2-dev                       # DOCX/XLSX/PPTX/ODT containers and XML, HTML
  libgmime-3.0-dev                             # e-mail (MIME)
  libuchardet-dev                              # text encoding detection
  libmagic-dev                                 # content-type sniffing
  libcmark-gfm-dev libcmark-gfm-extensions-dev # Markdown (CommonMark + GFM tables) for ingest
  libxlsxwriter-dev                            # answer: batch Q&A results as XLSX
  sentencepiece                                # tests only: spm_train/spm_encode as the reference for the engine's unigram tokenizer
)
if [ $minimal = 0 ]; then
  pkgs+=(
    chromium chromium-driver nodejs            # headless browser tests of the web UI
    fonts-noto-cjk                             # Chinese text in the UI screenshots
    rpm lintian debootstrap fakeroot           # packaging and its install test
    rpmlint                                    # checks the .rpm (tests/packaging)
    curl file groff-base                       # packaging tests: API call, strip check, man page render
  )
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Adds a deb-src entry for the same Debian archive apt already uses (deb822 or
# one-line format), so that `apt-get source faiss` works.
add_deb_src() {
  if grep -rqsE "^(Types:.*deb-src|deb-src .*bookworm)" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local f=/etc/apt/sources.list.d/ragbox-deb-src.sources uri="" signed=""
  local d822=$(grep -lsE "^Suites:.*bookworm( |$)" /etc/apt/sources.list.d/*.sources | head -1)
  if [ -n "$d822" ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' "$d822")
    signed=$(awk '/^Signed-By:/{print $2; exit}' "$d822")
  else
    uri=$(awk '$1=="deb" && / bookworm /{for(i=2;i<=NF;i++) if($i ~ /^(http|https|file):/){print $i; exit}}' /etc/apt/sources.list 2>/dev/null)
  fi
  uri=${uri:-http://deb.debian.org/debian}
  { echo "Types: deb-src"; echo "URIs: $uri"; echo "Suites: bookworm"; echo "Components: main"
    [ -n "$signed" ] && echo "Signed-By: $signed"; } | $SUDO tee "$f" >/dev/null
  $SUDO apt-get update -qq
}

# --- The FAISS C API -------------------------------------------------------
# Debian's libfaiss-dev has libfaiss.a and the C API headers, but no C API
# library. Build libfaiss_c.a from the c_api/ sources of Debian's own faiss
# source package (same version as the installed libfaiss-dev), once.
faiss_ver=$(dpkg-query -W -f='${Version}' libfaiss-dev)
stamp="$RAGBOX_DEPS/faiss_c/.version"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$faiss_ver" ]; then
  say "building the FAISS C API library from Debian's faiss $faiss_ver source package"
  add_deb_src
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq --download-only "faiss=${faiss_ver%+b*}" >/dev/null 2>&1 ||
     (cd "$work" && apt-get source -qq --download-only faiss >/dev/null))
  (cd "$work" && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  $SUDO mkdir -p "$RAGBOX_DEPS/faiss_c/lib" "$RAGBOX_DEPS/faiss_c/include"
  objs=()
  for f in "$work"/src/c_api/*.cpp "$work"/src/c_api/impl/*.cpp "$work"/src/c_api/utils/*.cpp; do
    [ -f "$f" ] || continue
    o="$work/$(basename "${f%.cpp}").o"
    g++ -std=c++17 -O2 -fPIC -fopenmp -I"$work/src" -c "$f" -o "$o"
    objs+=("$o")
  done
  ar rcs "$work/libfaiss_c.a" "${objs[@]}"
  $SUDO cp "$work/libfaiss_c.a" "$RAGBOX_DEPS/faiss_c/lib/"
  # The C API headers, from the same source (libfaiss-dev may lack some).
  (cd "$work/src" && find c_api -name '*.h' -print0 | $SUDO cpio -0 -pdm --quiet "$RAGBOX_DEPS/faiss_c/include/faiss/" 2>/dev/null) ||
    (cd "$work/src" && find c_api -name '*.h' | while read -r h; do
       $SUDO install -D -m 644 "$h" "$RAGBOX_DEPS/faiss_c/include/faiss/$h"; done)
  echo "$faiss_ver" | $SUDO tee "$stamp" >/dev/null
fi
exit 0
