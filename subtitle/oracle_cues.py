"""`make bench-cues`: the cue layer alone, on true words: how close can `build_cues` get to the style rules, and
where does it cut the text, when the words are right and timed from the truth?

Episodes:
  generated  the 10-minute episode `make bench-subtitle` renders (rendered here when missing); each sentence's
             eojeols spread over its true span (truth.jsonl) by syllable count
  real       the real read-speech episode (kidsasr.evaluation.real_episode: the 300 clips of
             ../shared/real-speech/korean-read end to end); each clip's text spread over its span the same way;
             skipped, with the reason, when the set is absent
Prints, per episode and style (and with/without speaker ids on the generated one): cues, share within the rules
(check_cue), on-screen time outside speech, cues spanning a pause, rules broken, and from kidsasr.subtitles.breaks
(a checker written apart from the builder): the share of bad line and cue breaks, cues that end a sentence and
start the next with three or fewer characters, and fragment cues, with examples. Writes the figures to
`--work`/results.json.

    python subtitle/oracle_cues.py [--work work/bench-cues] [--label EP.json --truth truth.jsonl]
                                   [--real-speech ../shared/real-speech]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from kidsasr.evaluation.longform import merge_regions, read_subtitles
from kidsasr.evaluation.real_episode import RealSpeechMissing, build_real_episode
from kidsasr.fileio import read_jsonl, write_json_atomic
from kidsasr.subtitles.breaks import check_breaks
from kidsasr.subtitles.cues import CueWord, build_cues, check_cues, load_style, reading_length
from kidsasr.textnorm import parse_label

WORD_GAP = 0.3  # silence between two words, in syllables' worth of time
EXAMPLES = 8


def spread(text_spans: list[tuple[str, float, float, str | None]]) -> list[CueWord]:
    """Words of each (text, start, end, speaker) spread over its span by syllable count."""
    words = []
    for text, start, end, speaker in text_spans:
        tokens = text.split()
        weights = [max(1, reading_length(t)) for t in tokens]
        unit = (end - start) / (sum(weights) + WORD_GAP * (len(tokens) - 1))
        t = start
        for token, weight in zip(tokens, weights):
            words.append(CueWord(token, t, t + weight * unit, 1.0, speaker))
            t += (weight + WORD_GAP) * unit
    return words


def generated_words(label: dict, truth: dict[int, dict], with_speakers: bool) -> tuple[list[CueWord], list]:
    spans = []
    for sentence in label["media_info"]["sentence_list"]:
        true = truth[sentence["sentence_id"]]
        spans.append((parse_label(sentence["sentence"]).spelling, true["true_start"], true["true_end"],
                      sentence["speaker_id"] if with_speakers else None))
    return spread(spans), [(s, e) for _, s, e, _ in spans]


def real_words(reference: Path) -> tuple[list[CueWord], list]:
    spans = [(" ".join(seg.lines), seg.start, seg.end, None) for seg in read_subtitles(reference)]
    return spread(spans), [(s, e) for _, s, e, _ in spans]


def measure(words: list[CueWord], speech: list, style) -> dict:
    cues = build_cues(words, style, speech)
    problems = check_cues(cues, style, speech)
    spans = merge_regions(speech)
    shown = sum(c.end - c.start for c in cues)
    heard = sum(max(0.0, min(c.end, e) - max(c.start, s)) for c in cues for s, e in spans)
    pauses = sum(any(b.start - a.end > style.max_pause_in_cue for a, b in zip(c.words, c.words[1:])) for c in cues)
    breaks = check_breaks(cues)
    return {"cues": len(cues), "within_rules": 1 - sum(map(bool, problems)) / max(1, len(cues)),
            "outside_speech": (shown - heard) / max(shown, 1e-9), "spanning_pause": pauses,
            "broken": dict(Counter(p.split(" ")[0] for found in problems for p in found)), **breaks.summary(),
            "bad_examples": [str(b) for b in breaks.bad[:EXAMPLES]],
            "stub_examples": [text for _, text in breaks.stubs[:EXAMPLES]],
            "fragment_examples": [text for _, text in breaks.fragments[:EXAMPLES]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("work/bench-cues"))
    parser.add_argument("--label", type=Path, default=Path("work/bench-subtitle/episode.json"))
    parser.add_argument("--truth", type=Path, default=Path("work/bench-subtitle/truth.jsonl"))
    parser.add_argument("--real-speech", type=Path, default=None,
                        help="folder holding korean-read/manifest.jsonl (default ../shared/real-speech)")
    args = parser.parse_args()
    if not (args.label.exists() and args.truth.exists()):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
        from bench_subtitle import make_episode  # the same episode `make bench-subtitle` renders

        make_episode(args.label.parent, seed=0)
    label = json.loads(args.label.read_text(encoding="utf-8"))
    truth = {row["sentence_id"]: row for row in read_jsonl(args.truth)}
    runs = []
    for style_name in ("kids", "adult"):
        for with_speakers in (False, True):
            runs.append(("generated", style_name, with_speakers, *generated_words(label, truth, with_speakers)))
    try:
        episode = build_real_episode(args.work / "real-episode", args.real_speech)
        words, speech = real_words(episode.reference)
        runs += [("real read speech", style_name, False, words, speech) for style_name in ("kids", "adult")]
    except RealSpeechMissing as e:
        print(f"real read-speech episode skipped: {e}", file=sys.stderr)
    results = []
    print("| episode | style | speaker ids | cues | within rules | outside speech | spanning a pause | bad breaks "
          "(line / cue / cue at a pause > 1 s) | sentence-start stubs | fragment cues | broken |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for episode_name, style_name, with_speakers, words, speech in runs:
        r = measure(words, speech, load_style(style_name))
        results.append({"episode": episode_name, "style": style_name, "speaker_ids": with_speakers, **r})
        print(f"| {episode_name} | {style_name} | {'yes' if with_speakers else 'no'} | {r['cues']} | "
              f"{r['within_rules']:.1%} | {r['outside_speech']:.1%} | {r['spanning_pause']} | "
              f"{r['bad_share']:.1%} of {r['breaks']} ({r['bad_line_breaks']} / "
              f"{r['bad_breaks'] - r['bad_line_breaks'] - r['bad_breaks_in_pauses']} / {r['bad_breaks_in_pauses']}) | "
              f"{r['sentence_start_stubs']} | {r['fragment_cues']} | "
              f"{r['broken']} |")
    for r in results:
        if r["style"] == "kids" and not r["speaker_ids"]:
            print(f"\n{r['episode']}, kids: bad breaks ({r['bad_breaks']}):")
            print("\n".join(f"  {example}" for example in r["bad_examples"]) or "  none")
            print("  stubs: " + (" | ".join(r["stub_examples"]) or "none"))
            print("  fragments: " + (" | ".join(r["fragment_examples"]) or "none"))
    write_json_atomic(args.work / "results.json", results)


if __name__ == "__main__":
    main()
