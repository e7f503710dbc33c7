"""``python -m exoactor.media EPISODE_DIR [...]``: (re)build the media of episode folders."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exoactor.media.build import build_episode_media
from exoactor.realtime import lower_process_priority


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exoactor.media", description=__doc__)
    ap.add_argument("episode_dir", type=Path, nargs="+")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the index.html paths")
    ap.add_argument("--nice", type=int, default=0, choices=range(20), metavar="0-19",
                    help="run at this nice value (yield the CPU to a control loop)")
    a = ap.parse_args(argv)
    lower_process_priority(a.nice)
    code = 0
    for d in a.episode_dir:
        def show(done: int, total: int, detail: str) -> None:
            if not a.quiet:
                print(f"\r[{100 * done // max(total, 1):3d}%] {detail:<60}", end="", file=sys.stderr, flush=True)

        res = build_episode_media(d, show)
        if not a.quiet:
            print(file=sys.stderr)
            for w in res["warnings"]:
                print(f"  note: {w}", file=sys.stderr)
            print(f"  built in {res['seconds']:.1f} s: video {res['video'] or '-'}, {len(res['plots'])} plot(s)",
                  file=sys.stderr)
        if res["index_html"] is None:
            print(f"{d}: no index.html", file=sys.stderr)
            code = 1
        else:
            print(res["index_html"])
    return code


if __name__ == "__main__":
    sys.exit(main())
