"""Subtitle files from cues: WebVTT, SubRip, SAMI, TTML (IMSC1 text profile) and plain text, written atomically.

The deliverable is clean by default: no NOTE blocks, no header naming the source or the model (those go to the
`.cues.json` review file). `notes=True` puts a NOTE with each cue's confidence back into a WebVTT file for
reviewers. Formats:
  vtt   WebVTT (webvtt-py), `&`, `<`, `>` escaped, so `-->` cannot appear in a cue or a NOTE
  srt   SubRip (webvtt-py), angle brackets shown as ‹ › since players read them as tags
  smi   SAMI, still the common Korean VOD format: one SYNC per cue start and a clearing SYNC (&nbsp;) at its end,
        class KRCC (lang ko-KR); UTF-8 by default, CP949 on request (characters outside it as &#...; references)
  ttml  TTML2 / IMSC1 text profile (ttconv's IMSC writer), xml:lang="ko", times on the style's frame grid
  txt   the text alone, a cue a line
"""

from __future__ import annotations

import html
import io
import os
import xml.etree.ElementTree as et
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..fileio import atomic_path
from .frames import frame_of, frame_rate

FORMATS = ("vtt", "srt", "smi", "ttml", "txt")
SUFFIXES = {"vtt": ".vtt", "srt": ".srt", "smi": ".smi", "ttml": ".ttml", "txt": ".txt"}
IMSC1_TEXT = "http://www.w3.org/ns/ttml/profile/imsc1/text"
TTP = "http://www.w3.org/ns/ttml#parameter"
WEAK_CONFIDENCE = 0.5


def format_of(path: str | os.PathLike) -> str | None:
    """The format a file name asks for (`ep.srt` -> "srt", `ep.xml`/`ep.dfxp` -> "ttml"), None if none."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"dfxp": "ttml", "xml": "ttml", "sami": "smi", "webvtt": "vtt"}.get(suffix, suffix if suffix in FORMATS
                                                                              else None)


def escape_vtt(text: str) -> str:
    """WebVTT cue text escaping: `&`, `<` and `>` (so `-->` cannot end up in a cue)."""
    return html.escape(text, quote=False)


def escape_srt(text: str) -> str:
    """SRT has no escapes, and players read `<...>` as tags: angle brackets become ‹ › (so no `-->` either)."""
    return text.replace("<", "‹").replace(">", "›")


def _timestamp(seconds: float) -> str:
    import webvtt

    return str(webvtt.models.Timestamp.from_seconds(round(seconds, 3)))


def _note(cue) -> str:
    weakest = min(cue.words, key=lambda w: w.probability) if getattr(cue, "words", None) else None
    text = f"confidence {cue.confidence:.3f}" + (" WEAK" if cue.confidence < WEAK_CONFIDENCE else "")
    if weakest is not None:
        text += f", weakest word {weakest.text} {weakest.probability:.3f}"
    return escape_vtt(" ".join(text.split()))  # a NOTE may not hold "-->": the name of a word could


def _captions(cues: Sequence, escape, notes: bool) -> list:
    import webvtt

    captions = []
    for cue in cues:
        caption = webvtt.Caption(_timestamp(cue.start), _timestamp(cue.end), [escape(line) for line in cue.lines])
        if notes:
            caption.comments = [_note(cue)]
        captions.append(caption)
    return captions


def vtt_text(cues: Sequence, notes: bool = False) -> str:
    """WebVTT; with `notes`, a NOTE with the cue's confidence and weakest word before each cue (for reviewers)."""
    import webvtt

    buffer = io.StringIO()
    webvtt.WebVTT(captions=_captions(cues, escape_vtt, notes)).write(buffer)
    text = buffer.getvalue()
    return text if text.endswith("\n") else text + "\n"


def srt_text(cues: Sequence, escape=escape_srt) -> str:
    import webvtt

    buffer = io.StringIO()
    webvtt.WebVTT(captions=_captions(cues, escape, notes=False)).write(buffer, format="srt")
    return buffer.getvalue() + "\n" if cues else ""


def smi_text(cues: Sequence, title: str = "") -> str:
    """SAMI: each cue from its start to a clearing SYNC at its end; lines joined with <br>."""
    out = ["<SAMI>", "<HEAD>", f"<TITLE>{html.escape(title)}</TITLE>", '<STYLE TYPE="text/css">', "<!--",
           "P { margin-left:8pt; margin-right:8pt; margin-bottom:2pt; margin-top:2pt; text-align:center; "
           "font-size:20pt; font-family:sans-serif; font-weight:normal; color:white; }",
           ".KRCC { Name:Korean; lang:ko-KR; SAMIType:CC; }", "-->", "</STYLE>", "</HEAD>", "<BODY>"]
    for cue in cues:
        text = "<br>".join(html.escape(line, quote=False) for line in cue.lines)
        out.append(f"<SYNC Start={int(round(cue.start * 1000))}><P Class=KRCC>{text}")
        out.append(f"<SYNC Start={int(round(cue.end * 1000))}><P Class=KRCC>&nbsp;")
    out += ["</BODY>", "</SAMI>", ""]
    return "\n".join(out)


def ttml_text(cues: Sequence, fps: float = 29.97) -> str:
    """IMSC1 text profile TTML: ttconv builds the document (region, styling) and writes it; times are media clock
    times on the frame grid of `fps` (the rate is declared in ttp:frameRate).

    ttconv reads the cues as SubRip (entities escaped, which its reader resolves) for its model; each paragraph
    then gets the cue's exact frame times.
    """
    from ttconv.imsc import config as imsc_config, writer as imsc_writer
    from ttconv.srt import reader as srt_reader

    rate = frame_rate(fps)
    doc = srt_reader.to_model(io.StringIO(srt_text(cues, escape_vtt)))
    doc.set_lang("ko")
    paragraphs = [p for div in doc.get_body() for p in div] if doc.get_body() is not None else []
    for p, cue in zip(paragraphs, cues):
        p.set_begin(Fraction(frame_of(cue.start, rate)) / rate)
        p.set_end(Fraction(frame_of(cue.end, rate)) / rate)
    config = imsc_config.IMSCWriterConfiguration(time_format=imsc_config.TimeExpressionSyntaxEnum.clock_time, fps=rate)
    root = imsc_writer.from_model(doc, config).getroot()
    root.set(f"{{{TTP}}}contentProfiles", IMSC1_TEXT)
    return et.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def txt_text(cues: Sequence) -> str:
    return "".join(" ".join(line.strip() for line in cue.lines) + "\n" for cue in cues)


def subtitle_text(cues: Sequence, fmt: str, notes: bool = False, fps: float = 29.97, title: str = "") -> str:
    if fmt == "vtt":
        return vtt_text(cues, notes)
    if fmt == "srt":
        return srt_text(cues)
    if fmt == "smi":
        return smi_text(cues, title)
    if fmt == "ttml":
        return ttml_text(cues, fps)
    if fmt == "txt":
        return txt_text(cues)
    raise ValueError(f"unknown subtitle format {fmt!r}: choose from {', '.join(FORMATS)}")


def write_subtitles(cues: Sequence, path: str | os.PathLike, fmt: str | None = None, notes: bool = False,
                    fps: float = 29.97, smi_encoding: str = "utf-8") -> Path:
    """Write `cues` to `path` atomically in `fmt` (default: from the file name's extension)."""
    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt is None:
        raise ValueError(f"{path}: no subtitle format for the extension {path.suffix!r} "
                         f"(choose from {', '.join('.' + f for f in FORMATS)})")
    text = subtitle_text(cues, fmt, notes, fps, title=path.stem)
    encoding, errors = (smi_encoding, "xmlcharrefreplace") if fmt == "smi" else ("utf-8", "strict")
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode(encoding, errors))
    return path
