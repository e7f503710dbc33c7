# Source me: activates the offline environment made by scripts/setup_env.sh.
_EXO_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_EXO_HOME="${EXOACTOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/exoactor}"
# colcon's setup scripts reference unset variables: suspend `set -u` while sourcing them.
case $- in *u*) _EXO_NOUNSET=1; set +u ;; *) _EXO_NOUNSET= ;; esac
# shellcheck disable=SC1091
source "$_EXO_HOME/venv/bin/activate"
# shellcheck disable=SC1091
source "$_EXO_HOME/ws/install/setup.bash"
[ -n "$_EXO_NOUNSET" ] && set -u
# The Menagerie G1 offline: a checkout beside this repository (../shared/assets/menagerie) if present.
if [ -z "${MENAGERIE_ROOT:-}" ] && [ -f "$_EXO_REPO/../shared/assets/menagerie/unitree_g1/g1.xml" ]; then
  export MENAGERIE_ROOT="$(cd "$_EXO_REPO/../shared/assets/menagerie" && pwd)"
fi
# Unitree's G1 leg policy offline: ../shared/assets/unitree_rl_gym/g1/motion.pt if present.
if [ -z "${EXOACTOR_LEG_POLICY:-}" ] && [ -f "$_EXO_REPO/../shared/assets/unitree_rl_gym/g1/motion.pt" ]; then
  export EXOACTOR_LEG_POLICY="$(cd "$_EXO_REPO/../shared/assets/unitree_rl_gym/g1" && pwd)/motion.pt"
fi
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
unset _EXO_REPO _EXO_HOME _EXO_NOUNSET
