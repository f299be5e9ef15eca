"""The review editor in real headless Chromium, driven by selenium through Debian's chromium-driver: keys to
flagged cues, edit, live style checks, split, undo, mark reviewed, save, reload; the page's width and rule
checks agree with kidsasr.cues; a file:// page names the command; a video episode gets its track."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from kidsasr.subtitles.cues import reading_length, text_width
from kidsasr.review import document
from kidsasr.review.server import PAGE
from kidsasr.subtitles.frames import frame_of
from review_episode import KIDS, open_session, serving, write_episode

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def driver():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail("the editor test needs Debian's chromium and chromium-driver: run `make setup`")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' installs selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    browser.set_script_timeout(30)
    yield browser
    browser.quit()


def wait_for(driver, condition: str, timeout: float = 30):
    """Wait until the JavaScript expression `condition` is true in the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(f"return {condition};"))


def body(driver, name: str) -> str:
    return driver.execute_script(f"return document.body.dataset.{name};")


def press(driver, *keys) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def press_with_control(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).key_down(Keys.CONTROL).send_keys(key).key_up(Keys.CONTROL).perform()


def items(driver) -> list[dict]:
    return driver.execute_script("""return Array.from(document.querySelectorAll('#cue-list li')).map(li => ({
        text: li.querySelector('.text').textContent, classes: Array.from(li.classList),
        words: Array.from(li.querySelectorAll('.word')).map(w => +w.dataset.probability)}));""")


def test_edit_split_undo_save_reload(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    media, cues = write_episode(tmp_path / "show")
    machine = (media.parent / "ep.vtt").read_text(encoding="utf-8")
    with serving(open_session(media)) as base:
        driver.get(base + "/")
        wait_for(driver, "document.body.dataset.state === 'ready'")
        shown = items(driver)
        assert [s["text"] for s in shown] == ["\n".join(c.lines) for c in cues]
        assert [s["words"] for s in shown] == [[w.probability for w in c.words] for c in cues]
        weak = [n for n, c in enumerate(cues) if c.confidence < 0.5]
        assert weak == [1, 3] and [n for n, s in enumerate(shown) if "flagged" in s["classes"]] == weak
        assert driver.find_element(By.ID, "now-text")  # an audio episode shows the cue text large

        # keys: next / previous flagged cue
        press(driver, "n")
        assert body(driver, "selected") == "1"
        press(driver, "n")
        assert body(driver, "selected") == "3"
        press(driver, "p")
        assert body(driver, "selected") == "1"

        # a line typed too wide is flagged as it is typed, then the fix clears it
        text = driver.find_element(By.ID, "cue-text")
        text.send_keys(Keys.CONTROL, "a")
        text.send_keys("오늘은 친구들과 함께 토마토를 정말 많이 키워요")
        wait_for(driver, "document.querySelectorAll('#checks li.bad').length > 0")
        assert "rule" in items(driver)[1]["classes"]
        assert "line 1 width" in driver.find_element(By.CSS_SELECTOR, "#cue-list li.selected .problems").text
        text.send_keys(Keys.CONTROL, "a")
        text.send_keys("오늘은 친구들과 함께", Keys.ENTER, "토마토를 키워요")
        wait_for(driver, "document.querySelectorAll('#checks li.bad').length === 0")
        assert "rule" not in items(driver)[1]["classes"]

        # split at the line break, undo it, split again
        def split_at_line_break():
            driver.execute_script("const t = document.getElementById('cue-text'); t.focus();"
                                  "t.setSelectionRange(t.value.indexOf('\\n'), t.value.indexOf('\\n'));")
            driver.find_element(By.ID, "split").click()

        split_at_line_break()
        assert body(driver, "cueCount") == str(len(cues) + 1)
        driver.find_element(By.ID, "undo").click()
        assert body(driver, "cueCount") == str(len(cues))
        assert items(driver)[1]["text"] == "오늘은 친구들과 함께\n토마토를 키워요"  # the text edit stays
        split_at_line_break()
        assert [s["text"] for s in items(driver)[1:3]] == ["오늘은 친구들과 함께", "토마토를 키워요"]

        # an out time moved by typing, and the last cue marked reviewed with the key
        driver.find_element(By.CSS_SELECTOR, '#cue-list li[data-index="3"]').click()
        end = driver.find_element(By.ID, "cue-end")
        end.send_keys(Keys.CONTROL, "a")
        end.send_keys(f"{cues[2].end + 0.3:.3f}", Keys.TAB)
        driver.find_element(By.CSS_SELECTOR, '#cue-list li[data-index="4"]').click()
        press(driver, "r")
        press_with_control(driver, "s")
        wait_for(driver, "['saved', 'save-error'].includes(document.body.dataset.state)")
        assert body(driver, "state") == "saved", driver.find_element(By.ID, "status").text
        saved_texts = [s["text"] for s in items(driver)]

        driver.refresh()
        wait_for(driver, "document.body.dataset.state === 'ready'")
        reloaded = items(driver)
        assert [s["text"] for s in reloaded] == saved_texts
        assert ["reviewed" in s["classes"] for s in reloaded] == [False, True, True, True, True]

    folder = media.parent
    assert (folder / "ep.vtt").read_text(encoding="utf-8") == machine  # the machine version is kept
    saved = document.load_document(document.review_files(folder / "ep.vtt"))
    assert saved.loaded_from == "reviewed"
    assert [c.lines for c in saved.cues] == [cues[0].lines, ["오늘은 친구들과 함께"], ["토마토를 키워요"],
                                             cues[2].lines, cues[3].lines]
    assert saved.cues[3].end == pytest.approx(round(cues[2].end + 0.3, 3))
    assert saved.cues[1].end < saved.cues[2].start
    # the saved files pass `kidsasr check`, and the style's rules with the recognised words' timing as well
    check = subprocess.run([sys.executable, "-m", "kidsasr.cli", "check", "--style", "kids",
                            str(folder / "ep.reviewed.vtt"), str(folder / "ep.reviewed.srt")],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert check.returncode == 0, check.stdout + check.stderr
    assert document.check(saved.cues, KIDS) == [[]] * 5
    # the words went with their halves: "오늘은 우리 친구들과 함께" (우리 deleted in the text) | "토마토를 키워요"
    assert [[w.text for w in c.words] for c in saved.cues[1:3]] == [["오늘은", "우리", "친구들과", "함께"], ["토마토를", "키워요"]]
    log = [json.loads(line) for line in (folder / "ep.edits.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["action"] for r in log] == ["text", "split", "undo", "split", "times", "reviewed", "save"]
    assert log[-1]["reviewed"] == [2, 3, 4, 5] and log[-1]["violations"] == 0


def test_a_cue_the_recogniser_missed_is_added_at_the_playhead(driver, tmp_path):
    from selenium.webdriver.common.by import By

    media, cues = write_episode(tmp_path / "show")
    with serving(open_session(media)) as base:
        driver.get(base + "/")
        wait_for(driver, "document.body.dataset.state === 'ready'")
        driver.execute_script("document.getElementById('player').currentTime = 9.0;")
        wait_for(driver, "Math.abs(document.getElementById('player').currentTime - 9.0) < 0.01")
        driver.find_element(By.ID, "add").click()
        driver.find_element(By.ID, "cue-text").send_keys("새 자막")  # the placeholder is selected: typed over
        driver.find_element(By.ID, "save").click()
        wait_for(driver, "['saved', 'save-error'].includes(document.body.dataset.state)")
        assert body(driver, "state") == "saved", driver.find_element(By.ID, "status").text
    saved = document.load_document(document.review_files(media.with_suffix(".vtt"))).cues
    frames = document.frame_numbers(KIDS)
    first = frame_of(9.0, Fraction(*frames["rate"]))  # the cue starts on the frame grid and lasts the minimum
    at = [round(float(n / Fraction(*frames["rate"])), 3) for n in (first, first + frames["min_duration"])]
    assert [(c.start, c.end, c.lines) for c in saved[2:3]] == [(*at, ["새 자막"])]
    assert len(saved) == len(cues) + 1 and document.check(saved, KIDS) == [[]] * len(saved)


def test_page_checks_agree_with_the_python_rules(driver, tmp_path):
    media, _ = write_episode(tmp_path / "show")
    samples = ["안녕하세요", "abc 123", "ＡＢＣ", "3개월", "가나다…!?", "e\u0301", "\u1100\u1161\u11a8", "😀 ok",
               "漢字とかな", "- 뭐야?", "tab\there", "\u200bzero"]
    rows = [  # (start, end, lines): each breaks some rule, some none
        (1.0, 3.0, ["안녕하세요 여러분"]), (3.05, 3.5, ["너무 빨리 지나가는 자막이에요"]),
        (3.4, 12.0, ["길고", "긴", "자막"]), (13.0, 15.0, ["가나다라마바사아자차카타파하가나다라"]),
        (16.0, 18.0, ["ok"]), (20.0, 22.0, ["abcdefghijklmnopqrstuvwxyz0123456789 ABC"])]
    cues = [document.EditableCue(s, e, lines) for s, e, lines in rows]
    with serving(open_session(media)) as base:
        driver.get(base + "/")
        wait_for(driver, "document.body.dataset.state === 'ready'")
        widths = driver.execute_script("return arguments[0].map(textWidth);", samples)
        lengths = driver.execute_script("return arguments[0].map(readingLength);", samples)
        live = driver.execute_script("return arguments[0].map((c, i, all) => liveProblems(c, all[i - 1]));",
                                     [c.to_json() for c in cues])
    assert widths == [text_width(s) for s in samples]
    assert lengths == [reading_length(s) for s in samples]
    assert live == document.check(cues, KIDS) and sum(map(bool, live)) >= 4


def test_file_page_names_the_command(driver):
    driver.get(PAGE.as_uri())
    wait_for(driver, "document.body.dataset.state === 'needs-server'")
    assert "kidsasr review EPISODE" in driver.execute_script("return document.getElementById('status').textContent")


def test_video_episode_shows_the_video_with_the_track(driver, tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed (make setup installs it)")
    media, cues = write_episode(tmp_path / "show")
    video = media.with_suffix(".webm")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10:duration=18", "-i", str(media), "-c:v", "libvpx", "-c:a", "libopus",
                    "-shortest", str(video)], check=True, timeout=120)
    with serving(open_session(video)) as base:  # ep.vtt beside ep.webm
        driver.get(base + "/")
        wait_for(driver, "document.body.dataset.state === 'ready'")
        wait_for(driver, "document.querySelector('video track').track.cues && "
                         "document.querySelector('video track').track.cues.length > 0")
        track_cues = driver.execute_script(
            "return Array.from(document.querySelector('video track').track.cues).map(c => [c.startTime, c.text]);")
        assert driver.execute_script("return document.getElementById('now-text');") is None
    assert [(round(s, 3), t) for s, t in track_cues] == [(round(c.start, 3), "\n".join(c.lines)) for c in cues]
