"""index.html: one page per episode, opened from the file system (relative links, inline style).

Every text taken from the episode (the instruction is user input; messages quote services) is
HTML-escaped; file names in links are URL-quoted.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote

from exoactor.media.episode_data import EpisodeData
from exoactor.media.schedule import Schedule

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px auto;max-width:1200px;color:#222;
padding:0 16px}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.result{padding:10px 14px;border-radius:6px;margin:10px 0}.ok{background:#e6f5e9;border:1px solid #46be5a}
.fail{background:#fbe9e9;border:1px solid #d04545}.muted{color:#666}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
video,img.plot{max-width:100%;border:1px solid #ccc;border-radius:4px}
.row{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}.row>div{flex:1 1 300px}.row>div.video{flex:0 0 640px}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.plots a{flex:0 1 600px}
.plots a.wide{flex:1 1 100%}.plots img{width:100%}
.warn li{color:#8a5a00}pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:.8em;max-height:400px}
code{background:#f2f2f2;padding:0 3px;border-radius:3px}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def link(name: str, text: str | None = None) -> str:
    return f'<a href="{esc(quote(name))}">{esc(text if text is not None else name)}</a>'


def _num(v, fmt: str = "{:.3f}") -> str:
    try:
        return esc(fmt.format(float(v)))
    except (TypeError, ValueError):
        return esc(v) if v not in (None, "") else "&ndash;"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escape before)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def build_page(ep: EpisodeData, sched: Schedule | None, video: Path | None, video_playable: bool,
               plots: list[Path], warnings: list[str], out: Path) -> Path:
    r = ep.result
    parts: list[str] = []
    instruction = ep.instruction or "(instruction not recorded)"
    parts.append(f"<h1>{esc(instruction)}</h1>")
    parts.append(f'<div class="muted">episode <code>{esc(ep.path.name)}</code></div>')
    # ---- result
    if r:
        ok = bool(r.get("success"))
        rows = [f"<b>{'Succeeded' if ok else 'Failed'}</b>: {esc(r.get('message', ''))}"]
        if not ok:
            detail = [f"failed stage <code>{esc(r.get('failed_stage') or '?')}</code>",
                      f"error code {esc(r.get('error_code', '?'))}"]
            if r.get("error_reason"):
                detail.append(f"reason <code>{esc(r['error_reason'])}</code>")
            rows.append(", ".join(detail))
        times = []
        if isinstance(r.get("total_time_s"), (int, float)):
            times.append(f"total {r['total_time_s']:.1f} s")
        if ep.time_to_first_motion_s >= 0:
            times.append(f"time to first motion {ep.time_to_first_motion_s:.1f} s")
        if ep.planner_backend:
            times.append(f"planner <code>{esc(ep.planner_backend)}</code>")
        if times:
            rows.append(", ".join(times))
        parts.append(f'<div class="result {"ok" if ok else "fail"}">' + "<br>".join(rows) + "</div>")
    else:
        parts.append('<div class="result fail"><b>No result recorded</b> (the goal may still be running or the '
                     "orchestrator stopped)</div>")
    # ---- video (and the timings beside it)
    parts.append('<div class="row"><div class="video"><h2>Episode video</h2>')
    if video is not None and video_playable:
        parts.append(f'<video id="episode-video" controls autoplay muted loop playsinline width="640" '
                     f'src="{esc(quote(video.name))}"></video>')
        parts.append('<div class="muted">(a) camera image of the robot, (b) the imagined human video, '
                     "(c) the estimated skeleton projected through the camera calibration, (d) the simulated G1 "
                     "re-rendered from the measured joints; each step's video plays while that step executes. "
                     f"{link(video.name, 'download')}</div>")
    elif video is not None:
        parts.append(f"<p>{link(video.name)} (this codec does not play in browsers; open it in a video player)</p>")
    else:
        parts.append('<p class="muted">no episode video (see the notes below)</p>')
    parts.append("</div><div>")
    if ep.timings:
        rows = [[esc(k.replace("_", " ")), f'<span class="num">{_num(v, "{:.2f}")}</span>']
                for k, v in ep.timings.items()]
        parts.append("<h2>Timings (s)</h2>" + _table(["what", "seconds"], rows))
    parts.append("</div></div>")
    # ---- plots
    if plots:
        parts.append("<h2>Plots</h2><div class=\"plots\">")
        for p in plots:
            wide = ' class="wide"' if p.name in ("plot_timeline.png", "plot_tracking.png") else ""
            parts.append(f'<a{wide} href="{esc(quote(p.name))}"><img class="plot" src="{esc(quote(p.name))}" '
                         f'alt="{esc(p.stem)}"></a>')
        parts.append("</div>")
    # ---- steps
    if ep.steps:
        stages = r.get("stages", {}) if isinstance(r.get("stages"), dict) else {}
        rows = []
        for s in ep.steps:
            k = s.index
            msgs = []
            for st in ("video_generation", "motion_estimation", "tracking"):
                e = stages.get(f"{st}_{k:02d}")
                if isinstance(e, dict):
                    mark = "ok" if e.get("success") else "FAILED"
                    msgs.append(f"<b>{esc(st.replace('_', ' '))}</b> {esc(mark)}: {esc(e.get('message', ''))}")
            files = [link(p.name) for p in (s.segment, s.segment_last) if p is not None]
            for name in (f"motion_{k:02d}.npz", f"trajectory_{k:02d}.npz", f"segment_{k:02d}_truth.npz"):
                if (ep.path / name).is_file():
                    files.append(link(name))
            win = next((w for w in sched.windows if w.step is s), None) if sched else None
            executed = (f"{win.track_start_s:.1f}&ndash;{win.track_end_s:.1f} s" if win and win.executed else
                        "not executed")
            rows.append([str(k + 1), esc(s.label), executed,
                         _num(s.summary.get("tracking_rmse_rad"), "{:.4f}"),
                         _num(s.summary.get("clamped_commands"), "{:.0f}"), "<br>".join(msgs) or "&ndash;",
                         " ".join(files) or "&ndash;"])
        parts.append("<h2>Steps</h2>" + _table(
            ["#", "action", "tracked (task time)", "tracking RMSE (rad)", "clamped commands", "stages", "files"], rows))
    # ---- remote calls
    if ep.remote_calls:
        keys = sorted({k for v in ep.remote_calls.values() if isinstance(v, dict) for k in v})
        rows = [[esc(name)] + [_num(v.get(k), "{:g}") if isinstance(v, dict) else "" for k in keys]
                for name, v in ep.remote_calls.items()]
        parts.append("<h2>Remote calls</h2>" + _table(["backend", *[k.replace("_", " ") for k in keys]], rows))
    # ---- notes
    if warnings:
        parts.append('<h2>Notes</h2><ul class="warn">' + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul>")
    # ---- files
    files = sorted(p for p in ep.path.iterdir() if p.is_file() and not p.name.startswith("."))
    if files:
        rows = [[link(p.name), f'<span class="num">{esc(_human_size(p.stat().st_size))}</span>'] for p in files]
        parts.append("<h2>Files</h2>" + _table(["file", "size"], rows))
    log = ep.path / "log.txt"
    if log.is_file():
        text = log.read_text(errors="replace")
        parts.append(f"<h2>Log</h2><details><summary>{link('log.txt')} ({len(text.splitlines())} lines)</summary>"
                     f"<pre>{esc(text[-20000:])}</pre></details>")
    if ep.request:
        parts.append("<details><summary>request.json</summary><pre>"
                     f"{esc(json.dumps(ep.request, indent=2, default=str))}</pre></details>")
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width\"><title>ExoActor: {esc(instruction[:80])}</title>"
           f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out
