"""The cue layer alone, on a generated episode's true timings: how close can `build_cues` get to the style rules
when the words are right and timed from the truth (each sentence's eojeols spread over its true span by syllable
count)? Prints, per style and with/without speaker ids: cues, share within the rules (check_cue), share of
on-screen time outside true speech, cues spanning a pause, and which rules are broken.

    python subtitle/oracle_cues.py [--label work/bench-subtitle/episode.json --truth work/bench-subtitle/truth.jsonl]

(`make bench-subtitle` writes that episode.) Overlapping sentences (two speakers at once) are where rules break.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from kidsasr.evaluation.longform import merge_regions
from kidsasr.fileio import read_jsonl
from kidsasr.subtitles.cues import CueWord, build_cues, check_cues, load_style, reading_length
from kidsasr.textnorm import parse_label

WORD_GAP = 0.3  # silence between two words, in syllables' worth of time


def oracle_words(label: dict, truth: dict[int, dict], with_speakers: bool) -> tuple[list[CueWord], list]:
    words, speech = [], []
    for sentence in label["media_info"]["sentence_list"]:
        true = truth[sentence["sentence_id"]]
        start, end = true["true_start"], true["true_end"]
        speech.append((start, end))
        tokens = parse_label(sentence["sentence"]).spelling.split()
        weights = [max(1, reading_length(t)) for t in tokens]
        unit = (end - start) / (sum(weights) + WORD_GAP * (len(tokens) - 1))
        t = start
        for token, weight in zip(tokens, weights):
            words.append(CueWord(token, t, t + weight * unit, 1.0, sentence["speaker_id"] if with_speakers else None))
            t += (weight + WORD_GAP) * unit
    return words, speech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", type=Path, default=Path("work/bench-subtitle/episode.json"))
    parser.add_argument("--truth", type=Path, default=Path("work/bench-subtitle/truth.jsonl"))
    args = parser.parse_args()
    label = json.loads(args.label.read_text(encoding="utf-8"))
    truth = {row["sentence_id"]: row for row in read_jsonl(args.truth)}
    print("| style | speaker ids | cues | within rules | on screen outside speech | spanning a pause | broken |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for style_name in ("kids", "adult"):
        style = load_style(style_name)
        for with_speakers in (False, True):
            words, speech = oracle_words(label, truth, with_speakers)
            cues = build_cues(words, style, speech)
            problems = check_cues(cues, style, speech)
            speech_spans = merge_regions(speech)
            shown = sum(c.end - c.start for c in cues)
            heard = sum(max(0.0, min(c.end, e) - max(c.start, s)) for c in cues for s, e in speech_spans)
            pauses = sum(any(b.start - a.end > style.max_pause_in_cue for a, b in zip(c.words, c.words[1:]))
                         for c in cues)
            broken = Counter(p.split(" ")[0] for found in problems for p in found)
            print(f"| {style_name} | {'yes' if with_speakers else 'no'} | {len(cues)} | "
                  f"{1 - sum(map(bool, problems)) / max(1, len(cues)):.1%} | {(shown - heard) / max(shown, 1e-9):.1%} "
                  f"| {pauses} | {dict(broken)} |")


if __name__ == "__main__":
    main()
