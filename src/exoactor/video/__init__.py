"""Video generation: a planned step (+ reference image) -> a video of a human doing it."""

VIDEO_BACKENDS = {
    "synthetic": "exoactor.video.synthetic:SyntheticVideoGenerator",
    "file": "exoactor.video.file_backend:FileVideoGenerator",
    "veo": "exoactor.video.veo:VeoVideoGenerator",
    "kling": "exoactor.video.kling:KlingVideoGenerator",
    "diffusers": "exoactor.video.diffusers_backend:DiffusersVideoGenerator",
}
"""Registry: backend name -> "module:class" implementing :class:`exoactor.video.base.VideoGenerator`."""
