"""`kidsasr review EPISODE [--vtt EP.vtt] [--out DIR] [--port N] [--no-browser]`: the subtitle editor.

A standard-library HTTP server on 127.0.0.1 serves the editor page and a small JSON API:
  GET  /                     the page (editor.html)
  GET  /api/episode          the cues (times, lines, confidence, timed words, reviewed), the style's numbers,
                             the weak threshold, the media URL and kind, and where a save writes
  GET  /api/waveform?start=&end=&bins=   the audio's min/max envelope over a time range
  POST /api/save             {cues, log}: checked with `kidsasr.cues` rules, written by `document.save`
  GET  /files/<path>         a file of the episode's folder (with byte ranges, for seeking)
Nothing else: a path outside the episode's folder (`..`, absolute, percent-encoded) is refused, a request
naming another host is refused (DNS rebinding), and a save writes only the review's own files.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import sys
import threading
import webbrowser
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from ..audio import AudioError, load_audio
from ..constants import SAMPLE_RATE
from ..fileio import BusyError, check_writable, run_lock
from ..subtitles.cues import Style, load_style
from . import document

PAGE = Path(__file__).with_name("editor.html")
HOST = "127.0.0.1"
DEFAULT_PORT = 8765
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ogv", ".mpg", ".mpeg", ".ts"})
ENVELOPE_RATE = 100  # envelope values per second of audio
MAX_BODY = 32 * 1024 * 1024
MAX_BINS = 4000


@dataclass
class ReviewSession:
    """One episode under review: its media, the review's files, the style and the audio envelope."""

    media: Path
    files: document.ReviewFiles
    style: Style
    weak_threshold: float
    error_threshold: float | None = None
    _envelope: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def folder(self) -> Path:
        return self.media.resolve().parent

    def episode(self) -> dict:
        doc = document.load_document(self.files)
        return {
            "episode": self.media.name, "media": "/files/" + self.media.name,
            "kind": "video" if self.media.suffix.lower() in VIDEO_SUFFIXES else "audio",
            "subtitle": str(self.files.machine), "loaded_from": doc.loaded_from,
            "saves_to": {k: str(getattr(self.files, k)) for k in ("vtt", "srt", "state", "log")},
            "style": asdict(self.style), "frames": document.frame_numbers(self.style),
            "widths": document.width_table(), "weak_threshold": self.weak_threshold,
            "error_threshold": self.error_threshold,
            "cues": [c.to_json() for c in doc.cues], "violations": document.check(doc.cues, self.style),
        }

    def save(self, body: dict) -> dict:
        cues = document.cues_from_payload(body.get("cues"))
        edits = document.log_rows(body.get("log"))
        with self._lock:
            result = document.save(cues, self.files, self.style, edits, self.media.name, self.weak_threshold,
                                   self.error_threshold)
        return {"saved": {k: str(getattr(self.files, k)) for k in ("vtt", "srt", "state", "log")},
                "cues": len(cues), "violations": result.violations, "reviewed": result.reviewed}

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """Min and max of the audio per 1/ENVELOPE_RATE s, decoded once."""
        with self._lock:
            if self._envelope is None:
                audio = load_audio(self.media)
                hop = SAMPLE_RATE // ENVELOPE_RATE
                frames = np.pad(audio, (0, -len(audio) % hop)).reshape(-1, hop)
                self._envelope = frames.min(axis=1), frames.max(axis=1)
            return self._envelope

    def waveform(self, start: float, end: float, bins: int) -> dict:
        low, high = self.envelope()
        duration = len(low) / ENVELOPE_RATE
        start, end = max(0.0, start), min(duration, end)
        if not end > start:
            return {"start": start, "end": end, "duration": duration, "min": [], "max": []}
        a, b = int(start * ENVELOPE_RATE), max(int(start * ENVELOPE_RATE) + 1, int(np.ceil(end * ENVELOPE_RATE)))
        edges = np.linspace(a, b, min(bins, b - a) + 1).astype(int)
        mins = [float(low[i:j].min()) for i, j in zip(edges, edges[1:])]
        maxs = [float(high[i:j].max()) for i, j in zip(edges, edges[1:])]
        return {"start": a / ENVELOPE_RATE, "end": b / ENVELOPE_RATE, "duration": duration,
                "min": np.round(mins, 4).tolist(), "max": np.round(maxs, 4).tolist()}

    def resolve(self, raw: str) -> Path | None:
        """The file of the episode's folder that the URL path `raw` (after /files/) names, or None."""
        if "\\" in raw or "\x00" in raw:
            return None
        relative = unquote(raw)
        if not relative or "\x00" in relative or relative.startswith("/") or "\\" in relative:
            return None
        parts = relative.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            return None
        candidate = (self.folder / relative).resolve()
        try:
            candidate.relative_to(self.folder)
        except ValueError:
            return None
        return candidate if candidate.is_file() else None


class Handler(BaseHTTPRequestHandler):
    session: ReviewSession  # set by make_server
    server_version = "kidsasr-review"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    # ---- plumbing

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")

    # ---- requests

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._host_ok():
            return self._error(HTTPStatus.FORBIDDEN, "this server answers only http://127.0.0.1")
        url = urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            return self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        if url.path == "/api/episode":
            try:
                return self._json(HTTPStatus.OK, self.session.episode())
            except ValueError as e:
                return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))
        if url.path == "/api/waveform":
            return self._waveform(parse_qs(url.query))
        if url.path.startswith("/files/"):
            path = self.session.resolve(url.path[len("/files/"):])
            if path is None:
                return self._error(HTTPStatus.NOT_FOUND, "not a file of the episode's folder")
            return self._file(path)
        return self._error(HTTPStatus.NOT_FOUND, "no such page")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self._host_ok():
            return self._error(HTTPStatus.FORBIDDEN, "this server answers only http://127.0.0.1")
        if urlsplit(self.path).path != "/api/save":
            return self._error(HTTPStatus.NOT_FOUND, "no such page")
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host')}":
            return self._error(HTTPStatus.FORBIDDEN, f"a save from {origin} is refused")
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "a save is a JSON body")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a save is 1 byte to {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return self._json(HTTPStatus.OK, self.session.save(body))
        except document.SaveError as e:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(e))
        except (ValueError, UnicodeDecodeError) as e:
            return self._error(HTTPStatus.BAD_REQUEST, f"not saved: {e}")

    def _waveform(self, query: dict[str, list[str]]) -> None:
        try:
            start, end = float(query["start"][0]), float(query["end"][0])
            bins = int(query.get("bins", ["600"])[0])
            if not (np.isfinite(start) and np.isfinite(end) and 1 <= bins <= MAX_BINS):
                raise ValueError
        except (KeyError, ValueError):
            return self._error(HTTPStatus.BAD_REQUEST, f"waveform needs start, end (seconds) and 1-{MAX_BINS} bins")
        try:
            return self._json(HTTPStatus.OK, self.session.waveform(start, end, bins))
        except AudioError as e:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot decode the episode: {e}")

    def _file(self, path: Path) -> None:
        size = path.stat().st_size
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        first, last, status = 0, size - 1, HTTPStatus.OK
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if wanted and (wanted[1] or wanted[2]):
            if wanted[1]:
                first, last = int(wanted[1]), min(int(wanted[2]), size - 1) if wanted[2] else size - 1
            else:  # the last N bytes
                first = max(0, size - int(wanted[2]))
            if first >= size or first > last:
                return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", content_type,
                                  {"Content-Range": f"bytes */{size}"})
            status = HTTPStatus.PARTIAL_CONTENT
        with open(path, "rb") as f:
            f.seek(first)
            body = f.read(last - first + 1)
        headers = {"Accept-Ranges": "bytes"}
        if status == HTTPStatus.PARTIAL_CONTENT:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._send(status, body, content_type, headers)


def make_server(session: ReviewSession, port: int = 0) -> ThreadingHTTPServer:
    """A server for `session` on 127.0.0.1:`port` (0: any free port); call serve_forever() on it."""
    handler = type("ReviewHandler", (Handler,), {"session": session})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    return server


def open_session(episode: str | os.PathLike, subtitle: str | os.PathLike | None = None,
                 out_dir: str | os.PathLike | None = None, style: str | None = None) -> ReviewSession:
    """A session for `episode`; its subtitles default to EP.vtt (or EP.srt) beside it. ValueError says why not."""
    media = Path(episode)
    if not media.is_file():
        raise ValueError(f"{media}: no such episode file")
    if subtitle is None:
        found = [media.with_suffix(s) for s in document.SUBTITLE_SUFFIXES if media.with_suffix(s).is_file()]
        if not found:
            raise ValueError(f"{media}: no subtitles beside it ({media.with_suffix('.vtt').name} or "
                             f"{media.with_suffix('.srt').name}); name them with --vtt")
        subtitle = found[0]
    files = document.review_files(subtitle, out_dir)
    doc = document.load_document(files)  # reads every file now, so a bad one fails before the server starts
    chosen = load_style(style) if style else doc.style or load_style("kids")
    return ReviewSession(media, files, chosen, doc.weak_threshold, doc.error_threshold)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("episode", metavar="EPISODE", help="the episode's video or audio file")
    parser.add_argument("--vtt", metavar="EP.vtt", help="its subtitles, VTT or SRT (default: EP.vtt beside it)")
    parser.add_argument("--out", metavar="DIR", help="where saves go (default: beside the subtitle file)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--style", help="cue rules: kids, adult or a style YAML (default: the subtitles' own)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")


def run(args: argparse.Namespace) -> int:
    try:
        session = open_session(args.episode, args.vtt, args.out, args.style)
    except ValueError as e:
        print(f"kidsasr review: {e}", file=sys.stderr)
        return 2
    saves = session.files.vtt
    try:  # one review per output: a second one's saves would overwrite the first's
        check_writable(saves.parent)
        with run_lock(saves.parent, "review", output=saves.name):
            return _serve(session, args)
    except BusyError as e:
        print(f"kidsasr review: {e}", file=sys.stderr)
        return 2
    except PermissionError as e:
        print(f"kidsasr review: {e}: saves go there; choose a writable place with --out DIR", file=sys.stderr)
        return 2


def _serve(session: ReviewSession, args: argparse.Namespace) -> int:
    try:
        server = make_server(session, args.port)
    except OSError as e:
        print(f"kidsasr review: cannot listen on {HOST}:{args.port}: {e.strerror or e} (try --port 0)",
              file=sys.stderr)
        return 2
    url = f"http://{HOST}:{server.server_address[1]}/"
    print(f"reviewing {session.media} with {session.files.machine} (style {session.style.name}); "
          f"saves go to {session.files.vtt}", file=sys.stderr)
    print(url, flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
