"""kidsasr review without a browser: what the server serves and refuses, and what a save writes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kidsasr.subtitles.cues import text_width
from kidsasr.review import document
from review_episode import KIDS, open_session, serving, write_episode


def request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            host: str | None = None) -> tuple[int, bytes]:
    """A raw request: the path goes out exactly as written (no client-side normalisation of `..`)."""
    port = int(base.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host or f"127.0.0.1:{port}")
    for key, value in (headers or {}).items():
        connection.putheader(key, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    return response.status, response.read()


def post_save(base: str, payload: dict, **kwargs) -> tuple[int, dict]:
    status, body = request(base, "POST", "/api/save", json.dumps(payload).encode(),
                           {"Content-Type": "application/json", **kwargs.pop("headers", {})}, **kwargs)
    return status, json.loads(body)


@pytest.fixture()
def episode(tmp_path):
    media, cues = write_episode(tmp_path / "show")
    (tmp_path / "secret.txt").write_text("outside the episode's folder")
    return media, cues


def test_serves_only_the_episode_folder(episode, tmp_path):
    media, _ = episode
    with serving(open_session(media)) as base:
        status, body = request(base, "GET", "/files/ep.wav")
        assert status == 200 and body == media.read_bytes()
        status, body = request(base, "GET", "/files/ep.wav", headers={"Range": "bytes=10-19"})
        assert status == 206 and body == media.read_bytes()[10:20]
        outside = ["/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/..%2fsecret.txt",
                   "/files/%2E%2E%2Fsecret.txt", f"/files/{tmp_path}/secret.txt",
                   f"/files/%2F{str(tmp_path)[1:]}/secret.txt",
                   "/files//etc/passwd", "/files/%2fetc%2fpasswd", "/../secret.txt", "/files/.%2e/secret.txt",
                   "/files/%252e%252e/secret.txt", "/files/..\\secret.txt", "/files/ep.wav%00.txt",
                   "/files/", "/files/.", "/secret.txt", "/etc/passwd"]
        for path in outside:
            status, body = request(base, "GET", path)
            assert status == 404, path
            assert b"outside the episode" not in body and b"root:" not in body, path
        # another host name pointing at 127.0.0.1 (DNS rebinding) gets nothing
        assert request(base, "GET", "/api/episode", host="attacker.example:80")[0] == 403
        assert request(base, "GET", "/api/episode")[0] == 200


def test_episode_payload_carries_cues_words_style_and_the_width_table(episode):
    media, cues = episode
    with serving(open_session(media)) as base:
        status, body = request(base, "GET", "/api/episode")
    data = json.loads(body)
    assert status == 200 and data["kind"] == "audio" and data["loaded_from"] == "machine"
    assert data["style"]["max_cps"] == KIDS.max_cps and data["weak_threshold"] == 0.5
    assert [c["lines"] for c in data["cues"]] == [c.lines for c in cues]
    assert [c["confidence"] for c in data["cues"]] == [c.confidence for c in cues]
    assert [w["text"] for w in data["cues"][0]["words"]] == [w.text for w in cues[0].words]
    wide = data["widths"]["wide"]
    assert any(lo <= ord("가") <= hi for lo, hi in wide) and not any(lo <= ord("a") <= hi for lo, hi in wide)
    assert text_width("가") == 1 and text_width("a") == 0.5


def test_save_writes_the_reviewed_files_and_keeps_the_machine_version(episode):
    media, cues = episode
    folder = media.parent
    machine = (folder / "ep.vtt").read_text(encoding="utf-8")
    session = open_session(media)
    rows = [document.EditableCue(c.start, c.end, list(c.lines), c.confidence, list(c.words)).to_json() for c in cues]
    rows[1]["lines"] = ["오늘은 친구들과", "토마토를 키워요"]
    rows[1]["reviewed"] = True
    with serving(session) as base:
        status, result = post_save(base, {"cues": rows, "log": [{"action": "text", "cue": 2, "after": "x"}]})
        assert status == 200, result
        assert (folder / "ep.vtt").read_text(encoding="utf-8") == machine
        saved = document.read_subtitle_file(folder / "ep.reviewed.vtt")
        assert [c.lines for c in saved][1] == ["오늘은 친구들과", "토마토를 키워요"]
        assert [c.lines for c in document.read_subtitle_file(folder / "ep.reviewed.srt")] == [c.lines for c in saved]
        log = [json.loads(line) for line in (folder / "ep.edits.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [r["action"] for r in log] == ["text", "save"] and log[-1]["reviewed"] == [2]
        assert result["violations"] == document.check(document.load_document(session.files).cues, KIDS)
        # a reload shows the review, with its reviewed mark and the machine's words kept
        data = json.loads(request(base, "GET", "/api/episode")[1])
        assert data["loaded_from"] == "reviewed"
        assert [c["reviewed"] for c in data["cues"]] == [n == 1 for n in range(len(cues))]
        assert data["cues"][1]["words"] == rows[1]["words"]
        # bad saves are refused with the reason, and nothing is written
        for payload, reason in [({"cues": [{**rows[0], "end": rows[0]["start"]}]}, "cue 1: ends"),
                                ({"cues": [{**rows[0], "lines": ["  "]}]}, "cue 1: no text"),
                                ({"cues": rows, "log": [{"action": "rm -rf"}]}, "log row 1"),
                                ({"cues": "all"}, "`cues` must be a list")]:
            status, answer = post_save(base, payload)
            assert status == 400 and reason in answer["error"], answer
        assert post_save(base, {"cues": rows}, headers={"Origin": "http://attacker.example"})[0] == 403
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert request(base, "POST", "/api/save", b"cues=1", form)[0] == 415
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["ep.wav", "ep.vtt", "ep.cues.json", "ep.reviewed.vtt", "ep.reviewed.srt", "ep.reviewed.cues.json",
         "ep.edits.jsonl"])


def test_a_read_only_place_gives_a_clear_error(episode, tmp_path):
    media, cues = episode
    if os.geteuid() == 0:  # root writes through file modes: use a file system that refuses everyone
        out = Path("/sys/kidsasr-review")
    else:
        out = tmp_path / "read-only"
        out.mkdir()
        out.chmod(0o555)
    rows = [document.EditableCue(c.start, c.end, list(c.lines), c.confidence, list(c.words)).to_json() for c in cues]
    with serving(open_session(media, out_dir=out)) as base:
        status, answer = post_save(base, {"cues": rows})
    assert status == 500
    assert f"cannot save the review into {out}" in answer["error"] and "--out DIR" in answer["error"]


def test_the_command_prints_its_local_url_and_names_bad_inputs(episode, tmp_path):
    media, _ = episode
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "kidsasr.cli", "review", str(media), "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        status, _ = request(url.rstrip("/"), "GET", "/")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bare = tmp_path / "bare.wav"
    bare.write_bytes(media.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "kidsasr.cli", "review", str(bare), "--no-browser"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "no subtitles beside it" in proc.stderr and "--vtt" in proc.stderr


def test_waveform_of_a_cue_region(episode):
    media, _ = episode
    with serving(open_session(media)) as base:
        status, body = request(base, "GET", "/api/waveform?start=3.5&end=8.5&bins=100")
        wave = json.loads(body)
        assert status == 200 and (wave["start"], wave["end"], wave["duration"]) == (3.5, 8.5, 18.0)
        assert len(wave["min"]) == len(wave["max"]) == 100
        assert min(wave["min"]) == pytest.approx(-0.1, abs=2e-3) and max(wave["max"]) == pytest.approx(0.1, abs=2e-3)
        assert json.loads(request(base, "GET", "/api/waveform?start=30&end=40")[1])["max"] == []  # past the end
        for query in ("start=1", "start=a&end=2", "start=0&end=1&bins=0", "start=nan&end=1"):
            assert request(base, "GET", f"/api/waveform?{query}")[0] == 400, query
