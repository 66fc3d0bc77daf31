"""report.html in a real browser (headless Chromium): every table and every image present and rendered.

A copy of the report gets a small probe script that, once the page has loaded, writes each image's
natural size and each table's row count into the DOM; `--dump-dom` returns that DOM. A screenshot
must not be blank. Skips with the reason where Chromium is absent (.ci/run installs Debian's package).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from fexprune.data.synth import write_synthetic
from fexprune.experiments.reproduce import ReproduceConfig, run_reproduce
from fexprune.report.build import build_run_report as build_report

PROBE = """<script>
window.addEventListener("load", () => {
  const report = {
    images: [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.complete]),
    tables: [...document.querySelectorAll("table")].map(t => t.tBodies[0].rows.length),
    captions: [...document.querySelectorAll("caption")].map(c => c.textContent),
    width: document.documentElement.scrollWidth,
    window: window.innerWidth,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does this where it can)")


def run_chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    try:
        done = subprocess.run([binary, *flags, *arguments], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("Chromium did not finish within 60 s")
    if done.returncode != 0:
        pytest.skip(f"Chromium is installed but could not run here (exit {done.returncode}): {done.stderr[-300:]}")
    return done


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    data = write_synthetic(tmp_path_factory.mktemp("tiny"), per_class=6, size=(180, 144), progress=False)
    config = ReproduceConfig(data=str(data), quick=True, channels=(6, 12), sweep_channels=[(6, 12)], sweep_repeats=2,
                             sweep_epochs=3, train_epochs=6, pic_epochs=60, pic_retrain_epochs=10, workers=1)
    return run_reproduce(config, out=tmp_path_factory.mktemp("runs") / "reproduce", progress=False).run_dir


def probe_page(binary: str, folder: Path, tmp_path: Path, width: int = 1280) -> dict:
    """The probe's measurements of `folder`/report.html in a window `width` px wide."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    tmp_path.mkdir(parents=True, exist_ok=True)
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = run_chromium(binary, tmp_path / "profile", f"--window-size={width},2000", "--virtual-time-budget=5000",
                        "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run; DOM starts {done.stdout[:300]!r}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_every_table_and_image_renders_in_chromium(report_dir, tmp_path):
    binary = chromium()
    measured = probe_page(binary, report_dir, tmp_path)
    report = build_report(report_dir)
    assert len(measured["images"]) == len(report.figures()) >= 6
    for (width, height, complete), figure in zip(measured["images"], report.figures()):
        assert complete and width > 100 and height > 100, figure.title
        with Image.open(figure.path) as image:
            assert (width, height) == image.size  # the embedded bytes are the figure file
    assert measured["captions"] == [t.title for t in report.tables()]
    for rows, table in zip(measured["tables"], report.tables()):
        assert rows == len(table.rows), table.title
    assert sum(measured["tables"]) > 20


def test_every_report_reads_at_1280_px_without_scrolling_sideways(report_dir, tmp_path):
    """The reproduce report and the report of each run it made (train, prune, pic, sweep...)."""
    binary = chromium()
    folders = sorted({p.parent for p in report_dir.rglob("report.html")})
    assert len(folders) >= 4
    too_wide = []
    for index, folder in enumerate(folders):
        measured = probe_page(binary, folder, tmp_path / str(index))
        assert measured["window"] == 1280
        if measured["width"] > measured["window"]:
            too_wide.append(f"{folder.name}: {measured['width']} px")
    assert not too_wide, f"wider than a 1280 px window: {too_wide}"


def test_screenshot_of_the_report_is_not_blank(report_dir, tmp_path):
    binary = chromium()
    shot = tmp_path / "shot.png"
    run_chromium(binary, tmp_path / "profile", "--window-size=1200,2400", "--hide-scrollbars",
                 f"--screenshot={shot}", (report_dir / "report.html").as_uri())
    with Image.open(shot) as image:
        assert image.size == (1200, 2400)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 50  # text, table borders and plot colours
        # the lower half holds figures: more than a handful of non-white pixels there
        lower = rgb.crop((0, 1200, 1200, 2400)).convert("L")
        assert sum(lower.histogram()[:200]) > 5000
