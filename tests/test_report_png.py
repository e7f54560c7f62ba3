"""PNG figures on request: the report draws each figure once (SVG) unless `--png` asks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.records.workspace import Workspace
from policetrial.report.figures import ReportFigure, score_figure

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure() -> ReportFigure:
    return score_figure([0.1, 0.2, 0.2, 0.4, 0.9], chosen=0.2, cutoff=0.5, metric="B", caption="")


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (PNG specification, section 11.2.2)."""
    assert png.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_png_is_the_svg_figure_at_150_dpi(tmp_path: Path) -> None:
    """The PNG drawn later has the box the SVG was drawn in, at 150 dots per inch."""
    figure = _figure()
    assert figure.box is not None
    width, height = _png_size(figure.png())
    assert abs(width - figure.box.width * 150) <= 1 and abs(height - figure.box.height * 150) <= 1
    assert figure.write(tmp_path, png=True) == (
        tmp_path / "randomisation_scores.svg",
        tmp_path / "randomisation_scores.png",
    )


def test_without_png_only_the_svg_is_written_and_an_old_png_goes(tmp_path: Path) -> None:
    stale = tmp_path / "randomisation_scores.png"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(PNG_MAGIC + b"an earlier report's figure")
    assert _figure().write(tmp_path) == (tmp_path / "randomisation_scores.svg",)
    assert not stale.exists()


def test_report_command_writes_png_with_the_option(reported: Workspace) -> None:
    result = runner.invoke(app, ["report", "-w", str(reported.root), "--png", "--json"])
    assert result.exit_code == 0, result.output
    figures = [Path(p) for p in json.loads(result.stdout)["figures"]]
    svgs = {p.stem for p in figures if p.suffix == ".svg"}
    pngs = {p.stem for p in figures if p.suffix == ".png"}
    assert svgs == pngs and "consort_flow" in pngs
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in figures if p.suffix == ".png")
