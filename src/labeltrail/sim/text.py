"""A richer, seeded comment generator for the simulator (``PlatformConfig(text_style="rich")``).

Openers, bodies and endings compose from small vocabularies, so most comments are new strings
and a held-out gold set does not contain the very strings a classifier trained on (as the
default fixed templates did); coded harassment shares benign openers and endings and carries
its meaning in a few innocuous markers ("your kind", "you people", numbers, echoes), which is
why the crowd misses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RichTextGenerator"]

_OPENERS = ("", "", "honestly ", "lol ", "ok so ", "wow ", "interesting, ", "great video but ")
_ENDINGS = ("", "", "", " lol", " :)", "!", "...", " tbh", " fr", " 😂")
_TIMES = ("1:02", "3:10", "7:45", "12:30", "the end", "the intro")
_SUBJECTS = ("the sequel", "this build", "the recipe", "the lore", "that trick", "the update")
_INSULTS = ("loser", "clown", "idiot", "moron", "joke", "failure", "waste of space")
_GROUPS = ("[group]", "[group-a]", "[group-b]", "those [group]")
_WHEN = ("after the stream", "tonight", "soon", "when you least expect it", "next week")
_NAMES = ("buddy", "pal", "friend", "sweetie", "champ")

_BODIES: dict[str, tuple[str, ...]] = {
    "non-toxic": (
        "great video, thanks for sharing",
        "the part at {time} was so useful",
        "first time here, subscribed",
        "can you do one on {subject}?",
        "love how you explained {subject}",
        "this helped me with {subject} so much",
        "thanks, watching again from {time}",
        "you really nailed {subject}",
        "we all loved the part at {time}",
        "say hi to your dog for us",
    ),
    "mild": (
        "this is kind of dumb",
        "meh, boring take on {subject}",
        "worst edit ever, bro",
        "kinda cringe ngl",
        "{subject} was a waste of my time",
        "who even asked for this",
    ),
    "harassment": (
        "nobody wants you here, {insult}",
        "log off forever, you {insult}",
        "you are such a {insult}",
        "go away {insult}, nobody likes you",
        "everyone laughs at you, {insult}",
        "quit making videos, {insult}",
    ),
    "hate": (
        "people like {group} ruin everything",
        "[slur] don't belong on this site",
        "all {group} are subhuman",
        "{group} should be banned from here",
        "get these [slur] out of my feed",
    ),
    "threats": (
        "I know where you live",
        "watch your back {when}",
        "you'll regret this {when}",
        "someone should hurt you {when}",
        "I'm coming for you {when}",
    ),
}
_CODED: tuple[str, ...] = (
    "you're really not what we said you'd be",
    "we all know what your kind is good for",
    "interesting how you people always show up",
    "say hi to the 88 club for us",
    "funny how your kind always ends up here",
    "we see you {name}, we know what you are",
    "(((you))) again?",
    "you people never learn, do you {name}",
    "just asking what your kind is doing here",
    "1488 reasons to skip this channel",
    "your people always find a way, huh",
    "we said you'd be back, {name}",
)


@dataclass(frozen=True)
class RichTextGenerator:
    """``text(truth, coded, index)``: deterministic in ``(seed, index)``."""

    seed: int = 0

    def text(self, truth: str, coded: bool, index: int) -> str:
        rng = np.random.default_rng([self.seed, index])
        bodies = _CODED if coded else _BODIES[truth]
        body = str(bodies[int(rng.integers(len(bodies)))])
        body = body.format(
            time=_pick(rng, _TIMES),
            subject=_pick(rng, _SUBJECTS),
            insult=_pick(rng, _INSULTS),
            group=_pick(rng, _GROUPS),
            when=_pick(rng, _WHEN),
            name=_pick(rng, _NAMES),
        )
        return f"{_pick(rng, _OPENERS)}{body}{_pick(rng, _ENDINGS)}"


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]
