"""The demo's world finds the crowd's blind spot in the first week, as the article asks.

The demo's folds (built by the registry from the demo's settings) replay its 30-day world in
memory; the first weekly agreement window must flag coded harassment: high pairwise agreement,
gold accuracy significantly below the other slices.
"""

from __future__ import annotations

import datetime as dt

from labeltrail.config import Settings
from labeltrail.events.models import IaaWindowClosed
from labeltrail.folds.replay import Replay
from labeltrail.sim import Platform, PlatformConfig, SimulatedAnnotators, SimulatedScorer
from labeltrail.sim.demo import replay_settings
from labeltrail.sim.platform import CODED
from labeltrail.stages import make
from tests.folds.helpers import suffix_topic


def test_the_demo_flags_the_blind_spot_in_its_first_week() -> None:
    platform = Platform(PlatformConfig.demo())
    settings = replay_settings(Settings(), platform)
    replay = Replay(
        [
            SimulatedScorer(platform, threshold=settings.low_margin_threshold),
            make("tasking", settings),
            SimulatedAnnotators(platform),
            make("consensus", settings),
            make("labels", settings),
            make("reliability", settings),
            make("iaa", settings),
        ],
        suffix_topic,
    )
    replay.log.setdefault("gold", []).extend(platform.gold_topic_events())
    replay.append(platform.inputs())
    replay.run()
    flagged = sorted(
        e.window_start
        for e in replay.log["iaa"]
        if isinstance(e, IaaWindowClosed)
        and e.window == "week"
        and e.slice == CODED
        and e.blind_spot
    )
    first_week = platform.config.start.date() - dt.timedelta(days=platform.config.start.weekday())
    assert flagged and flagged[0].date() == first_week, flagged
