"""subtitle/preview.html in headless Chromium: the browser's own WebVTT parser reads a generated file, and the
cue list the page builds from the TextTrack API has our cue count, times, text and weak-cue flags."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from kidsasr.audio import write_wav
from kidsasr.subtitles.cues import CueWord, Cue, build_cues, check_cues, load_style, write_cues_json, write_vtt

PREVIEW = Path(__file__).resolve().parents[1] / "subtitle" / "preview.html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KIDS = load_style("kids")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is needed for the preview test but `chromium` is not installed: "
                    "run `make setup` (it installs Debian's chromium and chromium-driver)")
    return path


@pytest.fixture()
def served(tmp_path):
    """A localhost HTTP server on tmp_path, with the preview page copied in."""
    shutil.copy(PREVIEW, tmp_path / "preview.html")
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".vtt": "text/vtt"}

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class CueList(HTMLParser):
    """The <body> data attributes and each <li> of the page's cue list: data-*, classes and text by span."""

    def __init__(self, dom: str):
        super().__init__()
        self.body: dict[str, str] = {}
        self.items: list[dict] = []
        self._span: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "li":
            self.items.append({**attrs, "classes": set((attrs.get("class") or "").split())})
        elif tag == "span" and self.items and attrs.get("class") in ("text", "confidence", "violations"):
            self._span = attrs["class"]
            self.items[-1][self._span] = ""

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None

    def handle_data(self, data):
        if self._span:
            self.items[-1][self._span] += data


def episode_cues() -> list[Cue]:
    words = []
    for start, text, probability in [(0.5, "안녕하세요 여러분", 0.95), (2.5, "a<b> & c --> d", 0.9),
                                     (5.0, "오늘은 우리 친구들과 함께 3개월 동안 키운 토마토를", 0.8),
                                     (12.0, "음", 0.2), (3725.25, "한 시간 뒤에도 맞아요", 0.7)]:
        t = start
        for token in text.split():
            words.append(CueWord(token, t, t + 0.2 * len(token), probability))
            t += 0.2 * len(token) + 0.05
    # said too fast to read at 9 chars/s, with the next words right after: a cue that breaks a rule
    words += [CueWord("빨리빨리말하는아이들이에요", 30.0, 30.4, 0.6), CueWord("그치", 30.45, 31.5, 0.9, "B")]
    return build_cues(words, KIDS)


def assert_page_matches(page: CueList, cues: list[Cue]) -> None:
    assert page.body.get("data-state") == "ready", page.body
    assert int(page.body["data-cue-count"]) == len(cues)
    assert len(page.items) == len(cues)
    for item, cue in zip(page.items, cues):
        assert item["data-start"] == f"{cue.start:.3f}" and item["data-end"] == f"{cue.end:.3f}"
        assert item["text"] == "\n".join(cue.lines)  # unescaped by the browser, line breaks kept
        assert float(item["data-confidence"]) == pytest.approx(cue.confidence, abs=1e-3)
        assert ("weak" in item["classes"]) == (cue.confidence < 0.5)


def test_preview_reads_the_vtt_through_the_browser_parser_with_the_side_file(chromium, served, tmp_path):
    folder, base = served
    cues = episode_cues()
    assert any(len(c.lines) == 2 for c in cues) and cues[-1].start > 3600
    write_vtt(cues, folder / "ep.vtt", header="kidsasr preview test")
    write_cues_json(cues, folder / "ep.cues.json", KIDS)
    write_wav(folder / "ep.wav", np.zeros(16000 * 2, dtype=np.float32))
    page = CueList(dump_dom(chromium, f"{base}/preview.html?media=ep.wav&vtt=ep.vtt", tmp_path / "profile"))
    assert_page_matches(page, cues)
    flagged = [bool(v) for v in check_cues(cues, KIDS)]
    assert any(flagged)
    assert ["rule" in item["classes"] for item in page.items] == flagged


def test_preview_falls_back_to_note_confidences_and_reports_bad_files(chromium, served, tmp_path):
    folder, base = served
    cues = episode_cues()
    write_vtt(cues, folder / "ep.vtt")
    page = CueList(dump_dom(chromium, f"{base}/preview.html?vtt=ep.vtt", tmp_path / "profile"))
    assert_page_matches(page, cues)

    write_vtt([], folder / "silence.vtt")
    page = CueList(dump_dom(chromium, f"{base}/preview.html?vtt=silence.vtt", tmp_path / "profile2"))
    assert page.body.get("data-state") == "ready" and page.body["data-cue-count"] == "0"

    (folder / "broken.vtt").write_text("this is not a subtitle file\n")
    page = CueList(dump_dom(chromium, f"{base}/preview.html?vtt=broken.vtt", tmp_path / "profile3"))
    assert page.body.get("data-state") == "error"
