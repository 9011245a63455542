#!/usr/bin/env bash
# THE test command (CI's .ci/run calls it): installs dependencies, checks formatting, builds and
# tests the normal tree, then the ASan+UBSan tree, then builds the libFuzzer targets and runs
# each for a bounded time over a copy of its corpus. Every step runs even after a failure, so
# the summary names every failing step; the exit code is non-zero if any step failed.
#
# The last line is "N passed, N failed": ctest tests of both trees plus fuzz runs (skipped
# tests are not counted as passed); a failed step that ran no test (install, format, build)
# counts as one failure.
#
# Environment: RTCAT_BUILD_ROOT (where build/, build-asan/, build-fuzz/ live; default: the
# repository), RTCAT_JOBS (default 2), RTCAT_FUZZ_SECONDS (per fuzzer, default 20),
# RTCAT_TEST_SKIP="asan fuzz format" (skip steps, for local iteration only).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export RTCAT_BUILD_ROOT="${RTCAT_BUILD_ROOT:-$ROOT}"
unset RTCAT_BUILD_DIR
JOBS="${RTCAT_JOBS:-2}"
FUZZ_SECONDS="${RTCAT_FUZZ_SECONDS:-20}"
SKIP=" ${RTCAT_TEST_SKIP:-} "
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/rtcat-test.XXXXXX")"
START=$SECONDS

STEP_NAMES=()
STEP_RESULTS=()
STEP_TIMES=()
STEP_NOTES=()
TOTAL_PASSED=0
TOTAL_FAILED=0
ANY_FAILED=0

banner() { printf '\n===== %s =====\n' "$*"; }

# record NAME RESULT(ok|FAILED|skipped) SECONDS NOTE
record() {
    STEP_NAMES+=("$1")
    STEP_RESULTS+=("$2")
    STEP_TIMES+=("$3")
    STEP_NOTES+=("$4")
    if [[ $2 == FAILED ]]; then
        ANY_FAILED=1
    fi
}

skipped() { [[ $SKIP == *" $1 "* ]]; }

# Runs a step that is not a test: failure counts as one failed.
plain_step() {
    local name=$1
    shift
    banner "$name"
    local t0=$SECONDS
    if "$@"; then
        record "$name" ok $((SECONDS - t0)) ""
        return 0
    fi
    record "$name" FAILED $((SECONDS - t0)) "see output above"
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    return 1
}

format_check() {
    if ! command -v clang-format >/dev/null; then
        echo "clang-format not installed"
        return 1
    fi
    local files=()
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        mapfile -t files < <(git -C "$ROOT" ls-files --cached --others --exclude-standard -- \
            core cli tools tests bench | grep -E '\.(cpp|hpp)$' | sort -u)
    else
        mapfile -t files < <(find core cli tools tests bench -type f \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)
    fi
    local existing=()
    for f in "${files[@]}"; do
        [[ -f $f ]] && existing+=("$f")
    done
    echo "clang-format --dry-run -Werror over ${#existing[@]} files"
    ((${#existing[@]} == 0)) && return 0
    local out
    out="$(clang-format --dry-run -Werror "${existing[@]}" 2>&1)"
    local rc=$?
    if ((rc != 0)); then
        echo "$out" | head -60
        echo "files needing clang-format:"
        echo "$out" | grep -oE '^[^:]+\.(cpp|hpp):[0-9]+' | cut -d: -f1 | sort -u | sed 's/^/  /'
        echo "fix with: clang-format -i FILE..."
    fi
    return $rc
}

# ctest_step NAME BUILD_DIR [env assignments...]
ctest_step() {
    local name=$1 dir=$2
    shift 2
    banner "$name"
    local t0=$SECONDS log="$LOGDIR/$name.log"
    env "$@" timeout 2400 ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 300 \
        -LE 'bench|soak' --no-tests=error 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line total failed nskipped passed
    line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)"
    if [[ -z $line ]]; then
        record "$name" FAILED $((SECONDS - t0)) "ctest produced no summary (rc=$rc)"
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        return 1
    fi
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")"
    failed="$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")"
    nskipped="$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log" || true)"
    passed=$((total - failed - nskipped))
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    local note="$passed passed, $failed failed, $nskipped skipped"
    if ((rc != 0 || failed != 0)); then
        local names
        names="$(sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ' |
            sed -E 's/^[[:space:]]+[0-9]+ - ([^ ]+).*/\1/' | head -20 | tr '\n' ' ')"
        record "$name" FAILED $((SECONDS - t0)) "$note${names:+; failed: $names}"
        if ((failed == 0)); then
            TOTAL_FAILED=$((TOTAL_FAILED + 1)) # ctest itself failed (e.g. timeout of the step)
        fi
        return 1
    fi
    record "$name" ok $((SECONDS - t0)) "$note"
}

fuzz_step() {
    local name=fuzz
    banner "$name"
    local t0=$SECONDS dir="$RTCAT_BUILD_ROOT/build-fuzz/tests/fuzz"
    local sources=() bins=()
    mapfile -t sources < <(find "$ROOT/tests/fuzz" -maxdepth 1 -name 'fuzz_*.cpp' | sort)
    if [[ -d $dir ]]; then
        mapfile -t bins < <(find "$dir" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
    fi
    if ((${#bins[@]} < ${#sources[@]})); then
        record fuzz-missing FAILED $((SECONDS - t0)) "${#sources[@]} fuzz sources but ${#bins[@]} binaries in $dir"
        TOTAL_FAILED=$((TOTAL_FAILED + ${#sources[@]} - ${#bins[@]}))
    fi
    if ((${#bins[@]} == 0)); then
        ((${#sources[@]} == 0)) && record "$name" ok 0 "no fuzz targets yet"
        return 0
    fi
    local notes=() ok=1
    for bin in "${bins[@]}"; do
        local base short corpus work log
        base="$(basename "$bin")"
        short="${base#fuzz_}"
        corpus="$ROOT/tests/fuzz/corpus/$short"
        work="$LOGDIR/corpus-$short"
        log="$LOGDIR/$base.log"
        mkdir -p "$work" "$LOGDIR/artifacts-$short"
        if [[ -d $corpus ]]; then
            cp -r "$corpus/." "$work/"
        fi
        echo "+ $base -max_total_time=$FUZZ_SECONDS $work ($(find "$work" -type f | wc -l) seed inputs)"
        # timeout: libFuzzer stops itself after max_total_time; this is the backstop.
        (cd "$LOGDIR/artifacts-$short" &&
            timeout $((FUZZ_SECONDS * 3 + 120)) "$bin" -max_total_time="$FUZZ_SECONDS" \
                -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$LOGDIR/artifacts-$short/" "$work") >"$log" 2>&1
        local rc=$?
        local execs
        execs="$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
        if ((rc == 0)); then
            echo "  ok: ${execs:-?} executions"
            TOTAL_PASSED=$((TOTAL_PASSED + 1))
            notes+=("$short ok (${execs:-?} execs)")
        else
            ok=0
            TOTAL_FAILED=$((TOTAL_FAILED + 1))
            echo "  FAILED (rc=$rc); last lines of $log:"
            tail -40 "$log" | sed 's/^/    /'
            local arts
            arts="$(ls "$LOGDIR/artifacts-$short" 2>/dev/null | tr '\n' ' ')"
            echo "  artifacts in $LOGDIR/artifacts-$short/: ${arts:-none}"
            notes+=("$short FAILED rc=$rc")
        fi
    done
    local joined
    joined="$(IFS=';'; echo "${notes[*]}")"
    if ((ok)); then
        record "$name" ok $((SECONDS - t0)) "$joined"
    else
        record "$name" FAILED $((SECONDS - t0)) "$joined"
        return 1
    fi
}

# --- the steps --------------------------------------------------------------------------------

plain_step install-deps bash "$ROOT/scripts/install-deps.sh"

if skipped format; then
    record clang-format skipped 0 "RTCAT_TEST_SKIP"
else
    plain_step clang-format format_check
fi

if plain_step build timeout 2400 bash "$ROOT/scripts/build.sh"; then
    ctest_step ctest "$RTCAT_BUILD_ROOT/build"
else
    record ctest skipped 0 "build failed"
fi

if skipped asan; then
    record build-asan skipped 0 "RTCAT_TEST_SKIP"
elif plain_step build-asan timeout 2400 bash "$ROOT/scripts/build.sh" --asan; then
    ctest_step ctest-asan "$RTCAT_BUILD_ROOT/build-asan" \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
    record ctest-asan skipped 0 "build failed"
fi

if skipped fuzz; then
    record build-fuzz skipped 0 "RTCAT_TEST_SKIP"
elif plain_step build-fuzz timeout 2400 bash "$ROOT/scripts/build.sh" --fuzz; then
    fuzz_step
else
    record fuzz skipped 0 "build failed"
fi

# --- summary ----------------------------------------------------------------------------------

banner summary
for i in "${!STEP_NAMES[@]}"; do
    printf '  %-13s %-8s %5ss  %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}" \
        "${STEP_NOTES[$i]}"
done
printf '  total time %ss; logs in %s\n' $((SECONDS - START)) "$LOGDIR"
if ((ANY_FAILED)); then
    echo "RESULT: FAILED"
else
    echo "RESULT: OK"
fi
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit $ANY_FAILED
