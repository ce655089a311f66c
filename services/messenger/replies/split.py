"""Freeze the train/dev/test split of the labelled replies, once; extend it, once per batch.

    python -m services.messenger.replies.split [--extend] [--force]

Whole ``source`` groups (a situation and its rewordings) go to one side, so near-duplicates
never straddle the split. Each writer's file is split on its own, by a seeded shuffle of its
groups, so every split has every writer's style:

- the first three writers' files (``WRITERS``): 60/20/20 of their lines to train/dev/test;
- the files added later (``ADDED``, written to the first pass's weak spots): 75/25 of their
  lines to train/dev, never to test (the test split stays exactly what it was, so figures
  before and after stay comparable). Their dev lines are **held**: no error of theirs is ever
  shown, nothing is written from them; they serve only the final, automatic choice of the
  temperatures and thresholds (``train.py``), which the rest of dev, whose errors were read
  to write rules, would flatter.

The result, with every file's SHA-256, is written to ``corpus/split.json`` and committed: it
never changes afterwards (the command refuses to overwrite it without ``--force``;
``--extend`` adds the files of ``ADDED`` only if every line already there stays where it was;
``corpus`` refuses lines whose group is not in it). The legacy corpus is training data only
and is not in the split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from services.messenger.replies.corpus import ADDED, CORPUS_DIR, SPLIT_FILE, WRITERS, load_file

SEED = 20261207
SHARES = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
ADDED_SEED = 20261208
ADDED_SHARES = (("train", 0.75), ("dev", 0.25))


def split_groups(
    sizes: dict[str, int], seed: int, shares: Sequence[tuple[str, float]] = SHARES
) -> dict[str, str]:
    """Groups (with their line counts) to splits: shuffled, then filled in order to each share."""
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    total = sum(sizes.values())
    out: dict[str, str] = {}
    filled = 0
    bounds = []
    cumulative = 0.0
    for name, share in shares:
        cumulative += share
        bounds.append((name, cumulative * total))
    for group in order:
        middle = filled + sizes[group] / 2
        out[group] = next(name for name, bound in bounds if middle <= bound)
        filled += sizes[group]
    return out


def _split_files(
    directory: Path, names: Sequence[str], seed: int, shares: Sequence[tuple[str, float]]
) -> tuple[dict[str, str], dict[str, str]]:
    groups: dict[str, str] = {}
    files = {}
    for index, name in enumerate(names):
        path = directory / name
        loaded = load_file(path, strict=True)
        sizes = Counter(x.source for x in loaded.lines)
        groups.update(split_groups(dict(sizes), seed + index, shares))
        files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return groups, files


def make_split(directory: Path = CORPUS_DIR, seed: int = SEED) -> dict[str, object]:
    groups, files = _split_files(directory, WRITERS, seed, SHARES)
    added_groups, added_files = _split_files(directory, ADDED, ADDED_SEED, ADDED_SHARES)
    return {
        "seed": seed,
        "method": "per file, whole source groups, seeded shuffle, 60/20/20 of lines",
        "files": files,
        "added": {
            "seed": ADDED_SEED,
            "method": "per file, whole source groups, seeded shuffle, 75/25 of lines to "
            "train/dev, none to test; their dev lines are held (never shown as errors), "
            "for the final choice of temperatures and thresholds only",
            "files": added_files,
        },
        "groups": dict(sorted({**groups, **added_groups}.items())),
    }


def extend(frozen: dict[str, object], directory: Path = CORPUS_DIR) -> dict[str, object]:
    """The frozen split with the files of ``ADDED``; refused if any line already placed would
    move or any frozen file changed."""
    fresh = make_split(directory, int(frozen["seed"]))  # type: ignore[call-overload]
    if fresh["files"] != frozen["files"]:
        raise SystemExit("a frozen writer's file changed: the split cannot be extended")
    old: dict[str, str] = frozen["groups"]  # type: ignore[assignment]
    new: dict[str, str] = fresh["groups"]  # type: ignore[assignment]
    moved = [g for g, side in old.items() if new.get(g) != side]
    if moved:
        raise SystemExit(f"{len(moved)} frozen groups would move: the split cannot be extended")
    return fresh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite a frozen split")
    parser.add_argument("--extend", action="store_true", help="add the files of ADDED, once")
    args = parser.parse_args(argv)
    if SPLIT_FILE.exists() and args.extend:
        frozen = json.loads(SPLIT_FILE.read_text(encoding="utf-8"))
        if "added" in frozen:
            print(f"{SPLIT_FILE} already holds the added files: the split is frozen")
            return 1
        split = extend(frozen)
    elif SPLIT_FILE.exists() and not args.force:
        print(f"{SPLIT_FILE} exists: the split is frozen (use --force only with reason)")
        return 1
    else:
        split = make_split()
    SPLIT_FILE.write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    groups: dict[str, str] = split["groups"]  # type: ignore[assignment]
    counts = Counter(groups.values())
    print(f"wrote {SPLIT_FILE}: groups {dict(counts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
