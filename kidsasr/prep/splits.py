"""Train / dev / test assignment: disjoint by episode (and programme), stratified by category, deterministic.

Episodes are grouped (by programme when the corpus names enough programmes, else one group per episode), groups
are shuffled by a seeded hash of their name, and each category's groups are dealt to the split furthest below its
share of that category's audio. The assignment depends only on the episode list and the seed, never on the
order the corpus was read in or on how many workers ran.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from ..manifest import SPLITS


@dataclass(frozen=True)
class SplitConfig:
    dev: float = 0.05  # share of each category's audio
    test: float = 0.05
    seed: int = 0
    group_by: Literal["program", "episode"] = "program"
    min_programs: int = 10  # fewer named programmes than this: group by episode instead


@dataclass(frozen=True)
class EpisodeKey:
    episode_id: str
    program: str | None
    category: str | None
    hours: float  # labelled speech, the weight balanced across splits


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def grouping(episodes: list[EpisodeKey], config: SplitConfig) -> str:
    """"program" or "episode": what the splits keep disjoint."""
    if config.group_by not in ("program", "episode"):
        raise ValueError(f"splits.group_by must be 'program' or 'episode', not {config.group_by!r}")
    programs = {e.program for e in episodes if e.program}
    return "program" if config.group_by == "program" and len(programs) >= config.min_programs else "episode"


def assign_splits(episodes: list[EpisodeKey], config: SplitConfig) -> dict[str, str]:
    """episode id -> split name."""
    by = grouping(episodes, config)
    groups: dict[str, list[EpisodeKey]] = defaultdict(list)
    for e in episodes:
        groups[f"program:{e.program}" if by == "program" and e.program else f"episode:{e.episode_id}"].append(e)
    category_of: dict[str, str] = {}
    by_category: dict[str, list[str]] = defaultdict(list)
    for name, members in groups.items():
        counts: dict[str, float] = defaultdict(float)
        for e in members:
            counts[e.category or ""] += e.hours
        category_of[name] = max(sorted(counts), key=counts.__getitem__)
        by_category[category_of[name]].append(name)
    shares = {"train": 1.0 - config.dev - config.test, "dev": config.dev, "test": config.test}
    group_split: dict[str, str] = {}
    for category in sorted(by_category):
        names = sorted(by_category[category], key=lambda n: _rank(config.seed, n))
        total = sum(e.hours for n in names for e in groups[n]) or 1.0
        placed = dict.fromkeys(SPLITS, 0.0)
        for name in names:
            split = max(SPLITS, key=lambda s: shares[s] * total - placed[s])
            group_split[name] = split
            placed[split] += sum(e.hours for e in groups[name]) or 1e-9
    _fill_empty_splits(group_split, groups, category_of, shares)
    return {e.episode_id: group_split[name] for name, members in groups.items() for e in members}


def _fill_empty_splits(group_split: dict[str, str], groups: dict[str, list[EpisodeKey]], category_of: dict[str, str],
                       shares: dict[str, float]) -> None:
    """Small corpora: give each split with a nonzero share at least one group, taken from train's smallest,
    preferring a category that dev and test do not hold yet."""
    for split in ("test", "dev"):
        if shares[split] <= 0 or split in group_split.values():
            continue
        train = [n for n, s in group_split.items() if s == "train"]
        if len(train) < 2:
            return
        held = {category_of[n] for n, s in group_split.items() if s != "train"}
        smallest = min(train, key=lambda n: (category_of[n] in held, sum(e.hours for e in groups[n]), n))
        group_split[smallest] = split
