"""The real read-speech split's two halves, each built into one long episode (kidsasr.evaluation.real_episode):
OUT/real-tune and OUT/real-report, each `episode.wav` + `reference.vtt`, as `kidsasr calibrate --data/--report`
reads them. Derived from the CC BY-NC-ND set: written under the work folder only, never committed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kidsasr.evaluation.real_episode import RealSpeechMissing, build_real_episode
from kidsasr.evaluation.real_speech import HALVES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--real-speech", type=Path, help="the shared real-speech folder (default: beside the checkout)")
    args = parser.parse_args()
    try:
        for half in HALVES:
            episode = build_real_episode(args.out / f"real-{half}", args.real_speech, half=half)
            print(f"real {half} half: {len(episode.spans)} clips, {episode.duration / 60:.1f} min -> {episode.wav}")
    except RealSpeechMissing as e:
        print(f"real_halves: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
