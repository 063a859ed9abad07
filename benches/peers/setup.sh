#!/usr/bin/env bash
# Side venvs of the peers that benches/compare_peers.py measures us against (not used by CI;
# each peer pins what it needs, so each has its own interpreter):
#   .venv-ray       Ray (its object store), on this machine's python3 (3.11 or 3.12)
#   .venv-brain     brain-plasma 0.3.3 on pyarrow 11 (the last pyarrow with Plasma and its
#                   plasma-store-server), numpy<2, pandas<2; needs a Python <= 3.11
#   .venv-ataraxis  ataraxis-data-structures 7.2 (requires Python >= 3.12)
#   .venv-peer      allye_data_connector 0.1.2 (as tests/conftest.py makes it)
# Interpreters: PY311 / PY312 override the defaults below (pyenv's, else python3.11 / python3.12).
# Idempotent: a venv whose probe import works is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."

pick() {  # first existing interpreter among the arguments
    for p in "$@"; do
        if [ -n "$p" ] && command -v "$p" >/dev/null 2>&1; then command -v "$p"; return; fi
    done
    return 1
}
PY311=$(pick "${PY311:-}" "$HOME/.pyenv/versions/3.11.7/bin/python" python3.11 python3)
PY312=$(pick "${PY312:-}" "$HOME/.pyenv/versions/3.12.1/bin/python" python3.12)

make_venv() {  # name interpreter probe packages...
    local name=$1 py=$2 probe=$3; shift 3
    if [ -x "$name/bin/python" ] && "$name/bin/python" -c "$probe" >/dev/null 2>&1; then
        echo "== $name: present"; return
    fi
    echo "== $name: $("$py" -V) + $*"
    rm -rf "$name"
    "$py" -m venv "$name"
    "$name/bin/python" -m pip install -q --upgrade pip
    "$name/bin/python" -m pip install -q "$@"
    "$name/bin/python" -c "$probe"
}

make_venv .venv-ray "$PY311" "import ray, numpy, pandas" "ray" numpy pandas
make_venv .venv-brain "$PY311" "import brain_plasma, pyarrow.plasma; assert pyarrow.__version__.startswith('11.')" \
    "brain-plasma==0.3.3" "pyarrow==11.0.0" "numpy<2" "pandas<2"
make_venv .venv-ataraxis "$PY312" "import ataraxis_data_structures, numpy" "ataraxis-data-structures==7.2.*" numpy
make_venv .venv-peer "$PY311" "import importlib.metadata as m; assert m.version('allye_data_connector') == '0.1.2'" \
    "allye_data_connector==0.1.2"
echo "== peers ready: python benches/compare_peers.py"
