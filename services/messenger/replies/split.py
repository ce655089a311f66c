"""Freeze the train/dev/test split of the labelled replies, once.

    python -m services.messenger.replies.split [--force]

Whole ``source`` groups (a situation and its rewordings) go to one side, so near-duplicates
never straddle the split. Each writer's file is split on its own (60/20/20 of its lines, by a
seeded shuffle of its groups), so every split has every writer's style. The result, with the
files' SHA-256, is written to ``corpus/split.json`` and committed: it never changes afterwards
(the command refuses to overwrite it without ``--force``, and ``corpus`` refuses lines whose
group is not in it). The legacy corpus is training data only and is not in the split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from pathlib import Path

from services.messenger.replies.corpus import CORPUS_DIR, SPLIT_FILE, WRITERS, load_file

SEED = 20261207
SHARES = (("train", 0.6), ("dev", 0.2), ("test", 0.2))


def split_groups(sizes: dict[str, int], seed: int) -> dict[str, str]:
    """Groups (with their line counts) to splits: shuffled, then filled in order to each share."""
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    total = sum(sizes.values())
    out: dict[str, str] = {}
    filled = 0
    bounds = []
    cumulative = 0.0
    for name, share in SHARES:
        cumulative += share
        bounds.append((name, cumulative * total))
    for group in order:
        middle = filled + sizes[group] / 2
        out[group] = next(name for name, bound in bounds if middle <= bound)
        filled += sizes[group]
    return out


def make_split(directory: Path = CORPUS_DIR, seed: int = SEED) -> dict[str, object]:
    groups: dict[str, str] = {}
    files = {}
    for index, name in enumerate(WRITERS):
        path = directory / name
        loaded = load_file(path, strict=True)
        sizes = Counter(x.source for x in loaded.lines)
        groups.update(split_groups(dict(sizes), seed + index))
        files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "seed": seed,
        "method": "per file, whole source groups, seeded shuffle, 60/20/20 of lines",
        "files": files,
        "groups": dict(sorted(groups.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite a frozen split")
    args = parser.parse_args(argv)
    if SPLIT_FILE.exists() and not args.force:
        print(f"{SPLIT_FILE} exists: the split is frozen (use --force only with reason)")
        return 1
    split = make_split()
    SPLIT_FILE.write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    groups: dict[str, str] = split["groups"]  # type: ignore[assignment]
    counts = Counter(groups.values())
    print(f"wrote {SPLIT_FILE}: groups {dict(counts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
