"""Episode media (ROS-free): a four-panel video, plots and an index.html per episode folder.

    from exoactor.media import build_episode_media
    build_episode_media(episode_dir)          # or: python -m exoactor.media EPISODE_DIR

Modules: ``episode_data`` (reading a possibly partial episode), ``schedule`` (the video's clock on
the task timeline), ``robot_render`` (offline MuJoCo re-render), ``panels`` (drawing),
``episode_video`` (the four-panel video), ``codec`` (a file browsers play), ``plots``, ``page``
(index.html), ``build`` (all of it).
"""
from exoactor.media.build import build_episode_media
from exoactor.media.episode_data import CAMERA_FILE, save_camera

__all__ = ["CAMERA_FILE", "build_episode_media", "save_camera"]
