"""nntrain view: the size of a page, the time to write it, and the time a browser takes to draw
it, for one run, a 30-run and a 100-run compare, and a folder of shell-sweep runs.

    python benchmarks/view_pages.py [--repeats 3] [--keep DIR]

Each page is written ``--repeats`` times by ``nntrain view`` as a whole process (the
command's own start-up included); the median is given. When Playwright and Debian's chromium
are installed (pip install -e .[test]; apt-get install chromium) each page is also opened,
headless and offline, ``--repeats`` times: "drawn" is the median time from navigation to the
end of the page's script (the first screen drawn; the sections below it are drawn as they are
scrolled to), "slider" the median time a boundary slider move takes to redraw (5 moves).
There is no peer: no other tool writes such a page.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XOR = str(ROOT / "configs" / "xor.yaml")
SETS = {
    "1 run (xor, 1000 epochs)": [["train", XOR, "--out", "{dir}", "--quiet"]],
    "30 runs (xor, 3 inits x 10 seeds)": [
        ["compare", XOR, "--initializers", "zeros,xavier_uniform,he_normal", "--seeds", "10",
         "--out", "{dir}", "--quiet"]],
    "100 runs (xor, 5 inits x 2 lr x 10 seeds)": [
        ["compare", XOR, "--initializers", "zeros,xavier_uniform,he_normal,normal,xavier_normal",
         "optimizer.lr=0.5,2", "--seeds", "10", "--out", "{dir}", "--quiet"]],
    "9 runs (examples/sweep.sh, moons, 500 epochs)": [["sweep.sh", "{dir}"]],
}


def nntrain(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "nntrain", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make(commands: list[list[str]], folder: Path) -> None:
    for command in commands:
        if command[0] == "sweep.sh":
            bin_dir = Path(sys.executable).parent
            subprocess.run(["bash", str(ROOT / "examples" / "sweep.sh")], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={"PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": str(folder),
                                "EPOCHS": "500"})
        else:
            nntrain(*[part.replace("{dir}", str(folder)) for part in command])


def write_times(folder: Path, page: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        nntrain("view", str(folder), "-o", str(page))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def browser_times(page: Path, repeats: int) -> tuple[float, float | None] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        drawn, moves = [], []
        for _ in range(repeats):
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.route("http*://**", lambda route: route.abort())
            tab.goto(page.resolve().as_uri())
            tab.wait_for_selector("body[data-ready]", timeout=60000)
            drawn.append(tab.evaluate("window.nntrainView.readyMs"))
            if not moves and tab.evaluate("!!document.getElementById('epoch-slider')"):
                tab.evaluate("window.nntrainView.drawAll()")
                last = int(tab.evaluate("document.getElementById('epoch-slider').max"))
                for frame in [0, last // 2, last, 1, last]:
                    moves.append(tab.evaluate(
                        "async (f) => { const t = performance.now(); "
                        "await window.nntrainView.showFrame(f); return performance.now() - t; }",
                        frame))
            tab.close()
        browser.close()
    return statistics.median(drawn), statistics.median(moves) if moves else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="make the runs and pages here, and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="nntrain-view-"))
    print("| runs | page | written | drawn | slider |\n|---|---|---|---|---|")
    try:
        for k, (name, commands) in enumerate(SETS.items()):
            folder, page = root / f"set{k}", root / f"set{k}.html"
            if not folder.exists():
                make(commands, folder)
            written = write_times(folder, page, args.repeats)
            size = page.stat().st_size / 1e6
            measured = browser_times(page, args.repeats)
            drawn, slider = measured if measured else (None, None)
            print(f"| {name} | {size:.1f} MB | {written:.2f} s | "
                  f"{'-' if drawn is None else f'{drawn / 1000:.2f} s'} | "
                  f"{'-' if slider is None else f'{slider:.0f} ms'} |", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
