"""Goal hygiene: paths in stage goals confined to the episode root, instructions bounded and logged on one line."""
from __future__ import annotations

import os

import pytest

from exoactor.episode import MAX_INSTRUCTION_CHARS, Episode, EpisodePathError, confine, one_line
from exoactor.nodes.orchestrator_node import instruction_problem


def test_paths_inside_the_root_are_resolved(tmp_path):
    ep = tmp_path / "episodes" / "20261201_wave"
    ep.mkdir(parents=True)
    assert confine(str(ep / "segment_00.mp4"), tmp_path / "episodes") == (ep / "segment_00.mp4").resolve()
    assert confine(str(ep / "sub" / ".." / "x.png"), tmp_path / "episodes") == (ep / "x.png").resolve()


@pytest.mark.parametrize("path", ["/etc/passwd", "{root}/../outside", "{root}/link/x", "", "{root}/a\x00b"])
def test_paths_outside_the_root_are_refused(tmp_path, path):
    root = tmp_path / "episodes"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)  # a symlink that leaves the root
    with pytest.raises(EpisodePathError) as e:
        confine(path.format(root=root), root, "episode_dir")
    assert "episode_dir" in str(e.value)


def test_refusal_message_is_one_bounded_line(tmp_path):
    with pytest.raises(EpisodePathError) as e:
        confine("/x\n2026-12-01 forged log line" + "y" * 500, tmp_path, "video_path")
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400 and "outside the episode root" in msg


def test_one_line_escapes_and_bounds():
    out = one_line("wave\nresult: success=True\x1b[2J" + "z" * 500, 100)
    assert "\n" not in out and "\x1b" not in out and len(out) < 130 and out.endswith("...'")


@pytest.mark.parametrize("text,ok", [("wave", True), ("raise the left arm,\nthen wave", True),
                                     ("x" * (MAX_INSTRUCTION_CHARS + 1), False), ("wave\x1b[31m", False),
                                     ("wave\x00", False)])
def test_instruction_problem(text, ok):
    assert (instruction_problem(text) == "") is ok


def test_episode_log_lines_cannot_be_forged(tmp_path):
    ep = Episode.create(tmp_path, "wave\n2026-12-01T00:00:00 result: success=True")
    ep.log(f"goal: {one_line('wave' + chr(10) + '2026-12-01T00:00:00 result: success=True')}")
    lines = (ep.path / "log.txt").read_text().splitlines()
    assert len(lines) == 1 and "result: success=True" in lines[0]
    assert "\n" not in ep.path.name and os.sep not in ep.path.name[len(str(tmp_path)):]
