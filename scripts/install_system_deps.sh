#!/usr/bin/env bash
# System packages the offline environment needs (Debian/Ubuntu): a C/C++ toolchain and CMake for
# the colcon build of the interfaces, and Mesa's EGL for headless rendering. Installs only what is
# missing; uses sudo when not root.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v gcc >/dev/null || need+=(gcc)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -c 'import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"],"Python.h")) else 1)' || need+=(python3-dev)
for lib in libEGL.so.1 libEGL_mesa.so.0 libGL.so.1 libgbm.so.1; do
  ldconfig -p | grep -q "$lib" || need+=("$lib")
done
[ ${#need[@]} -eq 0 ] && exit 0
pkgs=()
for n in "${need[@]}"; do
  case "$n" in
    libEGL.so.1) pkgs+=(libegl1) ;;
    libEGL_mesa.so.0) pkgs+=(libegl-mesa0 libgl1-mesa-dri) ;;
    libGL.so.1) pkgs+=(libgl1) ;;
    libgbm.so.1) pkgs+=(libgbm1) ;;
    *) pkgs+=("$n") ;;
  esac
done
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "missing system packages (${pkgs[*]}); install them with your package manager" >&2; exit 1
fi
echo "[setup] installing system packages: ${pkgs[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
