"""Prints how long quote checking takes on a 30,000-character story: exact matches, near matches
(one typo), and quotes found nowhere (the fuzzy search runs over the whole story).

    .venv/bin/python bench/quotes.py
"""

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from debates import quotes  # noqa: E402


def story(chars: int, rng) -> str:
    words = (
        "the captain opened airlock to vent fire while crew slept in forward cabin station ship engineer "
        "wrote later decision saved rations hydroponics failed twice Mars bulkhead sealed"
    ).split()
    text, length = [], 0
    while length < chars:
        text.append(rng.choice(words) + rng.choice([" ", " ", " ", ", ", ". "]))
        length += len(text[-1])
    return "".join(text)


def timed(passage, quote, runs=20):
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        found = passage.check(quote)
        took.append(time.perf_counter() - start)
    return found.status, statistics.median(took) * 1000


def main():
    rng = random.Random(1)
    text = story(30_000, rng)
    start = time.perf_counter()
    passage = quotes.Passage(text)
    print(f"story: {len(text)} characters; normalising it: {(time.perf_counter() - start) * 1000:.1f} ms")
    for length in (50, 250, 1000):
        piece = text[15_000 : 15_000 + length]
        typo = piece[: length // 2] + "#q" + piece[length // 2 + 2 :]
        for name, quote in (("exact", piece), ("one typo", typo), ("nowhere", "zebra quartz " * (length // 13))):
            status, ms = timed(passage, quote)
            print(f"quote of {length:4d} chars, {name:8s}: {status:10s} median {ms:7.2f} ms")


if __name__ == "__main__":
    main()
