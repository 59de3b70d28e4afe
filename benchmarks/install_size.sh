#!/usr/bin/env bash
# Size on disk of a fresh virtual environment after `pip install .` (the default install),
# and after `pip install '.[fast-png]'`, built from the committed HEAD (pip's cache is used).
# Also times `tfrecord-lite --version` in each, with its peak memory (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive HEAD | tar -x -C "$work"
for extra in "" "[fast-png]"; do
    venv="$work/venv$extra"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$work$extra" 2>/dev/null
    size=$(du -sm "$venv" | cut -f1)
    echo "pip install .$extra: $size MB ($("$PYTHON" --version), $(uname -m))"
    "$venv/bin/tfrecord-lite" --version
    for run in 1 2 3; do
        /usr/bin/time -f "  tfrecord-lite --version: %e s, peak RSS %M KB" \
            "$venv/bin/tfrecord-lite" --version >/dev/null
    done
done
