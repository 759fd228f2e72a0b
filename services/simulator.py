"""The simulated platform's moving parts, as processes: the stand-in model and the crowd.

SIMULATION ONLY: ``python services/simulator.py scorer|annotators [n_comments] [seed]``
runs the fold that stands in for the deployed model, or the simulated annotation frontends,
for the platform ``PlatformConfig.sized(n_comments, seed=seed)``.
"""

import sys

from labeltrail.config import Settings
from labeltrail.folds.base import Fold
from labeltrail.kafka.serve import serve
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer


def main(argv: list[str]) -> int:
    stage = argv[1] if len(argv) > 1 else ""
    n_comments = int(argv[2]) if len(argv) > 2 else 2_000
    seed = int(argv[3]) if len(argv) > 3 else 7
    platform = Platform(PlatformConfig.sized(n_comments, seed=seed))

    def make(settings: Settings) -> Fold:
        if stage == "scorer":
            return SimulatedScorer(platform, threshold=settings.low_margin_threshold)
        return SimulatedAnnotators(platform)

    if stage not in ("scorer", "annotators"):
        print("usage: simulator.py scorer|annotators [n_comments] [seed]", file=sys.stderr)
        return 2
    return serve(make)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
