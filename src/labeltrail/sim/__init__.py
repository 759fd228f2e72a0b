"""A simulated moderation platform: comments with hidden truth, crowd and expert annotators.

Everything here is simulation and says so in its events' ``producer`` field (``sim.*``).
"""

from labeltrail.sim.platform import Platform, PlatformConfig, SimComment, SimulatedAnnotators
from labeltrail.sim.scorer import SimulatedScorer

__all__ = ["Platform", "PlatformConfig", "SimComment", "SimulatedAnnotators", "SimulatedScorer"]
