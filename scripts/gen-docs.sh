#!/usr/bin/env bash
# Regenerates man/ and completions/ from the command tree (cli/: CLI11 options and the pages
# registered with register_manual). Run it after changing any command, option or manual text,
# then commit the result: the docs.drift test fails until the committed files match.
#
#   scripts/gen-docs.sh            build rtcat-gendocs, write the files, delete stale ones
#   scripts/gen-docs.sh --check    only compare, as the docs.drift test does
#   scripts/gen-docs.sh --lint     groff warnings and shell syntax, as docs.man_lint and
#                                  docs.completions_syntax do
#
# Environment:
#   RTCAT_BUILD_DIR  build tree to use (default: build/, configured like scripts/build.sh)
#   RTCAT_JOBS       parallel jobs (default 2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode='write'
case "${1:-}" in
'') ;;
--check) mode=check ;;
--lint) mode=lint ;;
-h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "gen-docs.sh: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

if [[ ! -f $ROOT/cli/app.cpp ]]; then
    echo "gen-docs.sh: cli/app.cpp (the command tree) does not exist yet; nothing to generate" >&2
    exit 1
fi

dir="${RTCAT_BUILD_DIR:-$ROOT/build}"
jobs="${RTCAT_JOBS:-2}"
# Configure when there is no tree yet, or when it was configured before cli/app.cpp existed
# (tools/CMakeLists.txt only defines the target once it does).
if [[ ! -f $dir/build.ninja && ! -f $dir/Makefile ]] ||
    ! grep -qs 'rtcat-gendocs' "$dir/build.ninja" "$dir/Makefile"; then
    cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTCAT_WERROR=ON
fi
cmake --build "$dir" -j "$jobs" --target rtcat-gendocs
tool="$dir/tools/rtcat-gendocs"

case "$mode" in
write)
    "$tool" --write "$ROOT"
    echo "gen-docs.sh: review with 'git status -- man completions' and commit"
    ;;
check) exec "$tool" --check "$ROOT" ;;
lint)
    status=0
    groff="$(command -v groff || true)"
    "$tool" --lint-man ${groff:+--groff "$groff"} || status=$?
    shells=()
    for shell in bash zsh fish; do
        path="$(command -v "$shell" || true)"
        [[ -n $path ]] && shells+=("--$shell" "$path")
    done
    "$tool" --lint-completions "${shells[@]}" || status=$?
    # 77 means a tool was missing: a skip, not a failure.
    ((status == 77)) && status=0
    exit "$status"
    ;;
esac
