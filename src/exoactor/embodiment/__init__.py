"""Embodiment transfer: an exocentric image of the robot -> the same scene with a human."""

EMBODIMENT_BACKENDS = {
    "passthrough": "exoactor.embodiment.passthrough:PassthroughTransfer",
    "gemini": "exoactor.embodiment.gemini:GeminiImageTransfer",
}
"""Registry: backend name -> "module:class" implementing :class:`exoactor.embodiment.base.EmbodimentTransfer`."""
