"""The package builds without a warning, and its wheel carries every file the code reads.

`make package` (run by CI) goes further: it installs the wheel in a fresh virtual
environment and runs `policetrial demo` from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = {".toml", ".j2", ".html", ".css", ".mako", ".typed"}
"""Suffixes of the files the code reads at run time besides its modules."""


def test_the_wheel_builds_without_a_warning_and_holds_every_data_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    log = (built.stdout + built.stderr).lower()
    assert "warning" not in log and "deprecat" not in log, log[-3000:]
    (wheel,) = tmp_path.glob("policetrial-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    source = ROOT / "src"
    wanted = {
        str(p.relative_to(source))
        for p in source.joinpath("policetrial").rglob("*")
        if p.is_file() and p.suffix in DATA
    }
    assert wanted, "no data files found"
    assert not wanted - names, sorted(wanted - names)
