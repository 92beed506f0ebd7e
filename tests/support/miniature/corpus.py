"""The miniature's synthetic English: a fixed sentence generator, the planted feature (marker count) and seeds."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np

SEED = 20231201

MARKERS = ("river", "forest", "mountain", "harbor", "meadow", "canyon")
NOUNS = ("teacher", "farmer", "doctor", "child", "painter", "sailor", "baker", "letter", "window", "table",
         "market", "station", "bridge", "village", "kitchen", "lantern", "engine", "basket", "ticket", "mirror")
ADJECTIVES = ("old", "quiet", "small", "bright", "heavy", "young", "famous", "careful", "hidden", "narrow",
              "distant", "gentle")
VERBS = ("watched", "visited", "crossed", "painted", "described", "remembered", "followed", "reached", "avoided",
         "found", "admired", "mentioned")
PREPOSITIONS = ("near", "behind", "beyond", "across", "beside", "above")
OPENERS = ("Yesterday", "Later", "Every morning", "At last", "Once again", "In the evening")
WORD = re.compile(r"[A-Za-z']+")


def marker_count(text: str) -> int:
    """The planted feature: how many words of ``text`` are marker words (case and punctuation ignored)."""
    return sum(1 for word in WORD.findall(text.lower()) if word in MARKERS)


def _noun(rng, marker: bool) -> str:
    return str(rng.choice(MARKERS if marker else NOUNS))


def make_sentence(rng, n_markers: int) -> str:
    """One English-like sentence with exactly ``n_markers`` (0-3) marker nouns among its three noun slots."""
    slots = np.zeros(3, dtype=bool)
    slots[rng.choice(3, size=int(n_markers), replace=False)] = True
    adj = lambda: (str(rng.choice(ADJECTIVES)) + " ") if rng.random() < 0.5 else ""  # noqa: E731
    words = f"the {adj()}{_noun(rng, slots[0])} {rng.choice(VERBS)} the {adj()}{_noun(rng, slots[1])} " \
            f"{rng.choice(PREPOSITIONS)} the {_noun(rng, slots[2])}"
    if rng.random() < 0.3:
        words = f"{str(rng.choice(OPENERS)).lower()} {words}"
    return words[0].upper() + words[1:] + "."


def zscore(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return (values - values.mean()) / (values.std() or 1.0)


def seeded_rng(*keys) -> np.random.Generator:
    """A generator seeded by SEED and the keys (stable across numpy versions: PCG64 + SeedSequence)."""
    return np.random.default_rng([SEED, *[zlib.crc32(str(k).encode()) for k in keys]])


def unigram_surprisal(words) -> dict:
    """-log2 relative frequency of each (lower-cased, punctuation-free) word in ``words``."""
    keys = [w.lower().strip(".,") for w in words]
    counts = {k: keys.count(k) for k in set(keys)}
    return {k: -math.log2(c / len(keys)) for k, c in counts.items()}
