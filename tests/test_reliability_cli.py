"""Bad settings for `kidsasr calibrate`, `synth` and `demo` (issue 18): one line on stderr naming what is wrong,
exit status 2 (1 for a demo stage that fails), no traceback."""

from __future__ import annotations

import pytest

from kidsasr.cli import main


@pytest.mark.parametrize("out", [False, True], ids=["beside-the-model", "with-out"])
def test_calibrate_with_a_model_folder_that_does_not_exist(tmp_path, capsys, out):
    missing = tmp_path / "no-such-model"
    argv = ["calibrate", "--model", str(missing), "--data", str(tmp_path)]
    assert main(argv + (["--out", str(tmp_path / "c.json")] if out else [])) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"kidsasr calibrate: {missing}: no such model folder"


def exit_status(argv: list[str]) -> int:
    """main's return value, or the status argparse exits with."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("settings, named", [
    (["--size", "huge"], "huge"), (["--seed", "-3"], "--seed"), (["--workers", "0"], "--workers"),
    (["--workers", "-2"], "--workers")])
def test_synth_with_unusable_settings_writes_nothing(tmp_path, capsys, settings, named):
    out = tmp_path / "corpus"
    assert exit_status(["synth", "--size", "tiny", "--out", str(out), *settings]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and named in err.strip().splitlines()[-1]
    assert not out.exists()


def test_demo_says_which_stage_failed_on_stderr(tmp_path, capsys):
    """A stage that fails stops the demo with its exit status and one line on stderr naming the stage."""
    (tmp_path / "corpus-demo").mkdir()
    (tmp_path / "corpus-demo" / "notes.txt").write_text("mine")  # synth refuses a folder of other files
    assert main(["demo", "--work", str(tmp_path), "--results-dir", str(tmp_path / "results"),
                 "--results-md", "none"]) == 2
    captured = capsys.readouterr()
    assert "demo stopped: stage synth failed (exit 2)" in captured.err
    assert "demo stopped" not in captured.out
