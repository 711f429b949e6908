#!/usr/bin/env bash
# One install script for synmix: a virtual environment in .venv with the curation tool, torch,
# Detectron2 (+ PointRend) and the test tools. Idempotent: a stamp records what was installed and
# nothing is done when it still matches.  Recipe and reasons: README.md "Installing" section.
#
#   ./install.sh            # curate + train + test extras (everything the README commands need)
#   ./install.sh --no-train # curate only (no torch / Detectron2)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
WITH_TRAIN=1
[ "${1:-}" = "--no-train" ] && WITH_TRAIN=0

# Versions that install together here (numpy < 2 because Detectron2 0.7 and cityscapesscripts'
# instance evaluator need it; opencv/pyarrow releases that still support numpy 1.26).
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
D2_VERSION=0.7.2
D2_EXTRA_PINS="fvcore==0.1.5.post20221221 iopath==0.1.9 setuptools==80.9.0 cityscapesscripts==2.3.0"
DATUMARO_VERSION=1.12.0
DATUMARO_DEPS="attrs defusedxml imagesize json-stream lxml orjson PyYAML==6.0.2 ruamel.yaml shapely typing_extensions"

# setup.py and curate/_rle.c: the compiled part is rebuilt when its source changes.
stamp_of() { cat install.sh pyproject.toml setup.py curate/_rle.c | sha256sum | cut -c1-16; echo "train=$WITH_TRAIN"; }
STAMP="$VENV/.synmix-install"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_of)" ]; then
    exit 0
fi
# A stamp that does not match means an older environment: it is updated in place.

command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found (set PYTHON=...)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip -q, minus the warnings this machine's pip config prints for index folders it does not have.
pip_q() {
    "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
PIP=pip_q
$PIP install "pip>=24" wheel

if [ "$WITH_TRAIN" = 1 ]; then
    echo "install.sh: torch + torchvision (local wheel store, ~2 min)" >&2
    $PIP install $TORCH_PINS
    if ! "$VENV/bin/python" -c "import detectron2" 2>/dev/null; then
        echo "install.sh: Detectron2 $D2_VERSION (re-tagged sal-detectron2 wheel)" >&2
        tmp=$(mktemp -d)
        # The wheel's file name says cp310-none-any but its WHEEL file says cp310-cp310-linux_x86_64;
        # its C extension is optional (torchvision supplies ROIAlign/NMS), so it runs as pure Python.
        $PIP download --no-deps --only-binary=:all: --python-version 3.10 --platform any \
            "sal-detectron2==$D2_VERSION" -d "$tmp"
        cp "$tmp/sal_detectron2-$D2_VERSION-cp310-none-any.whl" "$tmp/sal_detectron2-$D2_VERSION-cp310-cp310-linux_x86_64.whl"
        "$VENV/bin/python" -m wheel tags --python-tag py3 --abi-tag none --platform-tag any --remove \
            "$tmp/sal_detectron2-$D2_VERSION-cp310-cp310-linux_x86_64.whl" >/dev/null
        $PIP install "$tmp/sal_detectron2-$D2_VERSION-py3-none-any.whl" $D2_EXTRA_PINS
        rm -rf "$tmp"
    fi
    $PIP install -e ".[train,test]" $D2_EXTRA_PINS
    # Datumaro, to test that `curate export coco` opens in it: installed without its opencv-python
    # requirement (that GUI build would replace opencv-python-headless's cv2 and need libGL); the
    # rest of what it imports is listed here. 1.12.0 is the newest release for numpy 1.26.
    $PIP install --no-deps "datumaro==$DATUMARO_VERSION"
    $PIP install $DATUMARO_DEPS
else
    $PIP install -e ".[test]"
fi
# The compiled part is optional (setup.py): say so when it could not be built.
"$VENV/bin/python" -c "import curate._rle" 2>/dev/null || echo "install.sh: warning: curate/_rle.c was not" \
    "compiled (no C compiler?): convert uses NumPy instead, same output, ~1 ms a frame slower" >&2
stamp_of > "$STAMP"
echo "install.sh: environment ready in $VENV" >&2
