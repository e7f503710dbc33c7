"""The main subject among several people (exoactor.motion.subject), with a stand-in detector.

People are flat rectangles of their own colour; the stand-in detector, like a single-person pose
detector left to itself, always answers with the largest person it sees (as its box's corners).
"""
import numpy as np
import pytest

from exoactor.motion.subject import Box, SubjectTracker, enumerate_people, pick_subject, same_person

W, H = 320, 240
BACKGROUND = 100


def frame(people: list[tuple[int, float, float, float, float]]) -> np.ndarray:
    """people: (colour id 1-9, x0, y0, x1, y1), drawn in order (later ones in front)."""
    img = np.full((H, W, 3), BACKGROUND, np.uint8)
    for c, x0, y0, x1, y1 in people:
        r0, r1, c0, c1 = (int(np.clip(v, 0, n)) for v, n in ((y0, H), (y1, H), (x0, W), (x1, W)))
        img[r0:r1, c0:c1] = (20 * c, 255 - 20 * c, 7 * c)
    return img


def largest_person(image: np.ndarray):
    """The biggest single-coloured blob that is not the background: (corner pixels (4, 2), colour id)."""
    ids = image[..., 0].astype(int) // 20
    best = None
    for c in range(1, 10):
        mask = (ids == c) & (image[..., 1] == 255 - 20 * c)
        if mask.sum() < 30:
            continue
        ys, xs = np.nonzero(mask)
        if best is None or mask.sum() > best[0]:
            best = (mask.sum(), np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.min(), ys.max()],
                                           [xs.max(), ys.max()]], float), c)
    return None if best is None else (best[1], best[2])


def follow(frames, rule="center"):
    tracker = SubjectTracker(largest_person, largest_person, W, H, rule=rule)
    return tracker, [tracker.step(f) for f in frames]


def who(found) -> list:
    return [None if f.detection is None else f.detection[1] for f in found]


def test_the_person_nearest_the_centre_is_followed_not_a_larger_one_elsewhere():
    frames = [frame([(1, 140, 60, 180, 200), (2, 10 + t, 20, 90 + t, 235)]) for t in range(20)]
    tracker, found = follow(frames)
    assert who(found) == [1] * 20  # left alone, the detector would always answer with person 2
    assert tracker.people_at_start == 2
    assert not any(f.other_person for f in found)
    _, found = follow(frames, rule="largest")
    assert who(found) == [2] * 20


def test_a_person_crossing_in_front_is_never_taken_for_the_subject():
    subject = (1, 140, 60, 180, 200)
    frames = []
    for t in range(60):  # a bigger person walks from left to right in front of the subject
        x = -100 + 8 * t
        frames.append(frame([subject, (2, x, 20, x + 70, 235)]))
    _, found = follow(frames)
    seen = who(found)
    assert 2 not in seen
    covered = [t for t in range(60) if -100 + 8 * t <= 140 and -100 + 8 * t + 70 >= 180]
    assert all(seen[t] is None for t in covered)  # hidden: not found (the caller fills these)
    assert any(found[t].other_person for t in covered)
    after = range(max(covered) + 2, 60)
    assert all(seen[t] == 1 for t in after)  # found again once the other person has passed
    before = [t for t in range(60) if -100 + 8 * t + 70 < 130]
    assert all(seen[t] == 1 for t in before)


def test_a_subject_that_walks_out_is_not_replaced_by_someone_else_in_view():
    frames = [frame([(1, 140 + 12 * t, 60, 180 + 12 * t, 200), (2, 20, 50, 70, 200)]) for t in range(40)]
    tracker, found = follow(frames)
    seen = who(found)
    assert seen[0] == 1 and 2 not in seen
    gone = [t for t in range(40) if 140 + 12 * t > W]
    assert gone and all(seen[t] is None for t in gone)
    assert tracker.region() is None  # lost for long: searched on the whole frame again, still not person 2


def test_a_subject_moving_across_the_frame_is_followed_through_a_moving_region():
    frames = [frame([(3, 10 + 5 * t, 60 + t, 50 + 5 * t, 200 + t)]) for t in range(40)]
    _, found = follow(frames)
    assert who(found) == [3] * 40
    last = found[-1].detection[0]
    assert np.allclose(last.min(0), [10 + 5 * 39, 60 + 39], atol=1.0)  # full-frame pixels, not the region's


def test_a_subject_hidden_for_a_moment_is_found_again_where_it_was():
    frames = [frame([(4, 140, 60, 180, 200)]) if not 10 <= t < 25 else frame([]) for t in range(40)]
    _, found = follow(frames)
    seen = who(found)
    assert seen[:10] == [4] * 10 and seen[10:25] == [None] * 15 and seen[25:] == [4] * 15


def test_nobody_in_view_gives_no_detection_and_no_error():
    _, found = follow([frame([])] * 5)
    assert who(found) == [None] * 5 and not any(f.other_person for f in found)


def test_enumerate_people_finds_everyone_once():
    img = frame([(1, 10, 10, 50, 100), (2, 100, 20, 160, 220), (3, 200, 40, 230, 120)])
    people = enumerate_people(largest_person, img)
    assert [d[1] for _, d in people] == [2, 1, 3]
    assert enumerate_people(largest_person, frame([])) == []


def test_pick_subject_rules():
    boxes = [Box(0, 0, 40, 200), Box(150, 50, 170, 100), Box(140, 0, 180, 150)]
    assert pick_subject(boxes, 320, "center") == 2  # box 1 is nearer the centre but too small
    assert pick_subject(boxes, 320, "largest") == 0
    with pytest.raises(ValueError, match="center"):
        pick_subject(boxes, 320, "nearest")
    with pytest.raises(ValueError, match="no person"):
        pick_subject([], 320)


def test_same_person_is_about_place_and_size():
    a = Box(100, 50, 140, 200)
    assert same_person(a, Box(110, 55, 150, 205))
    assert not same_person(a, Box(200, 50, 240, 200))  # too far for one frame
    assert same_person(a, Box(160, 50, 200, 200), frames_since=6)  # but not after a while
    assert not same_person(a, Box(90, -30, 250, 270))  # much bigger


def test_tracker_checks_its_arguments():
    with pytest.raises(ValueError, match="center"):
        SubjectTracker(largest_person, largest_person, W, H, rule="tallest")
    with pytest.raises(ValueError, match="positive"):
        SubjectTracker(largest_person, largest_person, 0, H)


# ---- on real pixels: anny bodies, MediaPipe Pose ------------------------------------------------

def _two_people(tmp_path, bystander, frames=60, name="two.mp4"):
    """The subject waves at the origin; ``bystander(t, pose)`` places the other person each frame."""
    from exoactor.video.anny_body import AnnyBody
    from fakes.people import action_poses, camera, render_people

    subject = action_poses("wave", frames)
    other = action_poses("idle", frames)
    for t, p in enumerate(other):
        bystander(t / (frames - 1), p)
    cam = camera()
    path = tmp_path / name
    truth, other_truth = render_people(path, cam, [(AnnyBody({}), subject),
                                                   (AnnyBody({"gender": 1.0, "height": 0.8, "weight": 0.8}), other)])
    return path, cam, truth, other_truth


def _estimate(path, cam, **kw):
    import threading

    from exoactor.motion.mediapipe_estimator import MediaPipeEstimator
    from exoactor.progress import no_progress

    return MediaPipeEstimator(**kw).estimate(path, cam, no_progress, threading.Event())


def test_someone_walking_past_in_front_of_the_camera_does_not_take_the_subjects_place(tmp_path):
    from exoactor.motion.human_motion import FLAG_NO_PERSON, FLAG_OTHER_PERSON
    from exoactor.skeleton import KP

    def walk_past(u, p):  # between the camera and the subject, across the view
        c, d = np.array([1.3, -0.65]), np.array([0.447, 0.894])
        p.xy_world_m = c + (-2.0 + 4.0 * u) * d
        p.yaw_rad = float(np.arctan2(d[1], d[0]))

    path, cam, truth, _ = _two_people(tmp_path, walk_past, frames=90)
    m = _estimate(path, cam)
    err = np.linalg.norm(m.keypoints_world_m[:, KP["pelvis"]] - truth[:, KP["pelvis"]], axis=1)
    hidden = (m.frame_flags & (FLAG_NO_PERSON | FLAG_OTHER_PERSON)) > 0
    assert 2 <= hidden.sum() <= 30  # flagged (and filled) while the other person is in front
    # Left to itself, MediaPipe followed the passer-by for a while: 42 cm off at worst (measured).
    assert err.max() < 0.25, np.round(err, 2)
    # The subject's own pelvis error: 5-7 cm mid-clip, 10-12 cm in the first and last frames, where
    # MediaPipe's estimate itself is off along the camera ray (median 0.070 m with the preconditioned
    # clip fit, which follows the detections more closely than the earlier unconverged one: under 0.06 m).
    assert np.median(err) < 0.08


def test_the_subject_rule_chooses_between_two_people_standing_in_view(tmp_path):
    from exoactor.skeleton import KP

    def beside(u, p):  # nearer the camera, off to the side: larger in the frame
        p.xy_world_m = np.array([1.0, 0.6])
        p.yaw_rad = -2.5

    path, cam, truth, other = _two_people(tmp_path, beside, frames=30)
    apart = np.linalg.norm(truth[:, KP["pelvis"], :2] - other[:, KP["pelvis"], :2], axis=1).min()
    assert apart > 1.1
    for rule, whose, not_whose in (("center", truth, other), ("largest", other, truth)):
        m = _estimate(path, cam, subject=rule)
        pelvis = m.keypoints_world_m[:, KP["pelvis"], :2]
        err = np.linalg.norm(pelvis - whose[:, KP["pelvis"], :2], axis=1)
        off = np.linalg.norm(pelvis - not_whose[:, KP["pelvis"], :2], axis=1)
        assert err.max() < 0.35 and off.min() > apart - 0.35, (rule, np.round(err, 2))


@pytest.mark.parametrize("param,fragment", [("mediapipe.subject:=tallest", "subject must be one of center, largest"),
                                            ("mediapipe.max_video_s:=0.0", "max_video_s must be positive")])
def test_a_bad_estimator_option_stops_the_node_in_one_line(param, fragment):
    import os
    import subprocess
    import sys

    from fakes.domains import domain_id

    node = subprocess.run([sys.executable, "-m", "exoactor.nodes.pose_node", "--ros-args", "-p", param],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ROS_DOMAIN_ID": str(domain_id(7))})
    assert node.returncode == 2, node.stderr
    last = node.stderr.strip().splitlines()[-1]
    assert last.startswith("configuration error: motion estimator backend 'mediapipe': ") and fragment in last, \
        node.stderr
    assert "Traceback" not in node.stderr
