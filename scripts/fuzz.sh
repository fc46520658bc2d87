#!/usr/bin/env bash
# Fuzzes the parsers that read outside bytes with libFuzzer (ASan), each target for a bounded time.
#
# Usage: scripts/fuzz.sh [TARGET...]     every target (Fuzz/*.swift but Support.swift) when none is named:
#   json        JSONParser.parse, checked against JSONSerialization and its own canonical text
#   projection  JSONPath parsing; projected and record-projected parses against the whole parse
#   mapping     a mapping_config and a page of records, mapped from slots and from the whole record
#   date        RFC3339.parse/format, RecordMapping's date transform, UTCDay.validate
#   cursor      PageCursor(parsing:) (HubStore) and its re-encoding
#   strings     URL, endpoint, token, header, event pattern, secret, id and key validation
#   address     IPAddress, CIDR and OutboundPolicy
#   config      auth_config, retry_config, headers, credentials, probe, mapping_config members
# Environment:
#   FUZZ_SECONDS=30   seconds per target
#   FUZZ_OPT=-O       optimisation (-Onone compiles about 3 times faster and fuzzes several times slower)
#   FUZZ_STRICT=1     notes (FUZZ-NOTE lines: oracle differences that are not crashes) stop a run as crashes
#   FUZZ_ARGS="..."   extra libFuzzer flags (e.g. -jobs=2 -workers=2, -seed=1)
# Nothing here goes through SwiftPM (a fuzzer executable does not link there): swiftc builds the HubCore files but
# SecretSealer.swift and WebhookSignature.swift, with HubStore's SQLDatabase.swift and PageCursor.swift (their
# `import HubCore` is ignored with a warning), as one module `HubCore` built with -enable-testing (the targets use
# `@testable import HubCore`), against a stand-in `Crypto` module (Fuzz/Shims/Crypto.swift). Each target is
# Fuzz/<target>.swift with Fuzz/Support.swift. Everything lands in .build/fuzz: bin/fuzz-<target>, corpus/<target>
# (grows across runs; seeded from Fuzz/seeds/<target>), artifacts/<target> (crash-*, timeout-*, oom-*),
# logs/<target>.log. Builds are redone only when a source or a flag changed.
# Exits 1 when a target crashed (or timed out, or ran out of memory), printing each crash file and its input in base64.
# Reproduce: .build/fuzz/bin/fuzz-<target> <crash file>; minimise: add -minimize_crash=1 -max_total_time=60.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
opt="${FUZZ_OPT:--O}"
out=.build/fuzz
mkdir -p "$out/modules" "$out/bin" "$out/logs"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for file in Fuzz/*.swift; do
        name="$(basename "$file" .swift)"
        [ "$name" = Support ] || targets+=("$name")
    done
fi
for target in "${targets[@]}"; do
    [ -f "Fuzz/$target.swift" ] || { echo "fuzz.sh: no target $target (Fuzz/$target.swift)" >&2; exit 2; }
done

core_files=()
for file in Sources/HubCore/*.swift; do
    case "$file" in */SecretSealer.swift | */WebhookSignature.swift) ;; *) core_files+=("$file") ;; esac
done
core_files+=(Sources/HubStore/SQLDatabase.swift Sources/HubStore/PageCursor.swift)
# shellcheck disable=SC2054 # one flag whose value has a comma
sanitize=(-sanitize=fuzzer,address)
common=(-swift-version 6 -parse-as-library -g "$opt" -I "$out/modules")

# Whether $1 is missing, or older than any of the other files or than the flags it was built with ($1.flags).
stale() {
    local product="$1" flags="$2"
    shift 2
    [ -e "$product" ] || return 0
    [ "$(cat "$product.flags" 2>/dev/null)" = "$flags" ] || return 0
    for source in "$@"; do [ "$source" -nt "$product" ] && return 0; done
    return 1
}

# Compiler output without the known noise: PageCursor.swift's and SQLDatabase.swift's ignored `import HubCore` (they
# are compiled into HubCore here), an existing literal warning, and gold's warnings about ASan's local symbols.
quiet() {
    grep -v -e "ignoring import" -e "is not exactly representable" -e "Cannot export local symbol" \
        -e "^ *[0-9]* |" -e "^ *|" >&2 || true
}

started=$SECONDS
if stale "$out/Crypto.o" "$opt" Fuzz/Shims/Crypto.swift; then
    echo "== building the Crypto stand-in"
    swiftc "${common[@]}" -module-name Crypto -emit-module -emit-module-path "$out/modules/Crypto.swiftmodule" \
        -c Fuzz/Shims/Crypto.swift -o "$out/Crypto.o"
    echo "$opt" >"$out/Crypto.o.flags"
fi
if stale "$out/HubCore.o" "$opt" "${core_files[@]}" "$out/Crypto.o"; then
    echo "== building HubCore (${#core_files[@]} files, $opt)"
    swiftc "${common[@]}" "${sanitize[@]}" -module-name HubCore -enable-testing -wmo \
        -emit-module -emit-module-path "$out/modules/HubCore.swiftmodule" -c "${core_files[@]}" -o "$out/HubCore.o" 2> >(quiet)
    echo "$opt" >"$out/HubCore.o.flags"
fi
for target in "${targets[@]}"; do
    binary="$out/bin/fuzz-$target"
    if stale "$binary" "$opt" "Fuzz/$target.swift" Fuzz/Support.swift "$out/HubCore.o"; then
        echo "== building fuzz-$target"
        swiftc "${common[@]}" "${sanitize[@]}" -module-name "Fuzz_$target" "Fuzz/$target.swift" Fuzz/Support.swift \
            "$out/HubCore.o" "$out/Crypto.o" -o "$binary" 2> >(quiet)
        echo "$opt" >"$binary.flags"
    fi
done
echo "== built in $((SECONDS - started)) s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:symbolize=1}"
# Swift's own crash backtracer reads memory ASan reports as overflowing, hiding the real report; libFuzzer prints the
# stack instead.
export SWIFT_BACKTRACE=enable=no
failed=()
for target in "${targets[@]}"; do
    corpus="$out/corpus/$target"
    artifacts="$out/artifacts/$target"
    log="$out/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    dict=()
    [ -f "Fuzz/dicts/$target.dict" ] && dict=(-dict="Fuzz/dicts/$target.dict")
    seeds=()
    [ -d "Fuzz/seeds/$target" ] && seeds=("Fuzz/seeds/$target")
    before="$(ls "$artifacts")"
    echo "== fuzzing $target for $seconds s (log: $log)"
    status=0
    # shellcheck disable=SC2086
    "$out/bin/fuzz-$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" "${seeds[@]}" \
        >"$log" 2>&1 || status=$?
    grep -a -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)" "$log" | tr '\n' ' ' | sed 's/^/   /'
    echo
    notes="$(grep -a -c '^FUZZ-NOTE' "$log" || true)"
    [ "$notes" = 0 ] || { echo "   $notes note(s), the first of each kind (inputs in the log):"; grep -a '^FUZZ-NOTE' "$log" | cut -c1-240 | sort -u -t']' -k1,1 | head -20 | sed 's/^/   /'; }
    new="$(comm -13 <(echo "$before") <(ls "$artifacts") || true)"
    if [ "$status" -ne 0 ] || [ -n "$new" ]; then
        failed+=("$target")
        echo "!! $target failed (exit $status); the end of its log:"
        grep -a -E "FUZZ-DEFECT|ERROR: |Fatal error|SUMMARY|^ *#[0-9]+ " "$log" | head -40 | cut -c1-240 | sed 's/^/   /'
        for file in $new; do
            echo "   crash file: $artifacts/$file"
            echo "   input (base64): $(base64 -w0 "$artifacts/$file")"
        done
    fi
done

echo "== done in $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "no crash"
