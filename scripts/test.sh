#!/usr/bin/env bash
# Run every test on a fresh machine: sets up the offline environment on first use (pip + colcon),
# then runs the unit tests and the multi-process integration tests against the installed package.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/install_system_deps.sh"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "$REPO/scripts/env.sh"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((1 + RANDOM % 101))}"  # 1-101: ports below the ephemeral range (see exoactor/ros_domain.py)
cd "$REPO"
echo "[setup] loading the synthetic human model (first use builds its cache: 1-2 minutes)" >&2
python -m exoactor.video.synthetic --warm-up
python -m pytest -v -p no:cacheprovider --durations=10 test/unit "$@"
python -m pytest -v -p no:cacheprovider --durations=15 test/integration "$@"
