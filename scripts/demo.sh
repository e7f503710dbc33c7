#!/usr/bin/env bash
# The offline demo: set up on first use, start the whole graph (one process per node, simulated
# G1), send one task, show progress, print where the episode is. No keys, no GPU, no robot.
#   scripts/demo.sh ["instruction"]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTRUCTION="${1:-wave with the right hand, then walk forward 1 meter, then turn left}"
bash "$REPO/scripts/install_system_deps.sh"
bash "$REPO/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "$REPO/scripts/env.sh"
cd "$REPO"
echo "[setup] loading the synthetic human model (first use builds its cache: 1-2 minutes)" >&2
python -m exoactor.video.synthetic --warm-up >&2
exec python -m exoactor.nodes.demo "$INSTRUCTION"
