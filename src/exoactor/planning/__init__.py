"""Task decomposition: instruction -> atomic steps (:class:`exoactor.planning.vocabulary.Step`)."""
from exoactor.planning.vocabulary import PlanningError, Step, TaskPlanner, VOCABULARY

PLANNER_BACKENDS = {
    "rules": "exoactor.planning.rules:RuleBasedPlanner",
    "gemini": "exoactor.planning.gemini_planner:GeminiPlanner",
    "openai": "exoactor.planning.openai_planner:OpenAIPlanner",
}
"""Registry: backend name -> "module:class" implementing :class:`TaskPlanner`."""

__all__ = ["PlanningError", "Step", "TaskPlanner", "VOCABULARY", "PLANNER_BACKENDS"]
