#!/usr/bin/env bash
# How long a new user waits: `make demo`, then `make test`, in a fresh clone of this
# repository's committed HEAD, with a cold pip cache and no C/C++ compiler.  Prints, per
# run, the wall time of each and the size of .venv after each, plus what each printed last.
#
#   benchmarks/setup_time.sh [RUNS]      (or `make measure-setup RUNS=2`)
#
# EXTRAS in the environment is passed on to make (e.g. EXTRAS=yolo).  Clones and logs go to
# a temporary folder that is removed at the end, unless a run fails (its log is kept).
set -euo pipefail
runs=${1:-1}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    echo "note: uncommitted changes are not measured (the clone has the committed HEAD)" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/setup-time.XXXXXX")

# No compiler: CC/CXX for setuptools, and failing stand-ins first on PATH for the rest.
mkdir "$work/no-compiler"
for tool in cc gcc c++ g++ clang clang++; do
    printf '#!/bin/sh\necho "%s: no compiler here (setup_time.sh)" >&2\nexit 1\n' "$tool" \
        > "$work/no-compiler/$tool"
    chmod +x "$work/no-compiler/$tool"
done
export PATH="$work/no-compiler:$PATH" CC=/bin/false CXX=/bin/false
# Cold cache, and nothing built here is kept for later installs.
export PIP_NO_CACHE_DIR=1

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
megabytes() { du -sm "$1" | cut -f1; }

# run_make LOG TARGET: make TARGET in the clone, its output to LOG; on failure show the log.
run_make() {
    if ! make --no-print-directory -C "$clone" "$2" > "$1" 2>&1; then
        tail -n 30 "$1" >&2
        echo "make $2 failed: see $1" >&2
        exit 1
    fi
}

echo "commit $(git -C "$repo" rev-parse --short HEAD), $(python3 --version)," \
     "EXTRAS=${EXTRAS:-}, cold pip cache, no compiler"
for run in $(seq 1 "$runs"); do
    clone="$work/clone-$run"
    git clone -q "$repo" "$clone"
    start=$(now)
    run_make "$work/demo-$run.log" demo
    demo_done=$(now)
    demo_mb=$(megabytes "$clone/.venv")
    run_make "$work/test-$run.log" test
    test_done=$(now)
    test_mb=$(megabytes "$clone/.venv")
    echo "run $run: make demo $(seconds "$start" "$demo_done") s, .venv $demo_mb MB;" \
         "make test $(seconds "$demo_done" "$test_done") s more" \
         "($(seconds "$start" "$test_done") s in all), .venv $test_mb MB"
    # What the demo printed (not make's echo of its commands).
    awk '/^rm -rf demo-out/ { on = 1; next } on && !/^(\.venv\/bin\/python|    )/' \
        "$work/demo-$run.log" | sed 's/^/  demo: /'
    tail -n 1 "$work/test-$run.log" | sed 's/^/  test: /'
    rm -rf "$clone"
done
rm -rf "$work"
