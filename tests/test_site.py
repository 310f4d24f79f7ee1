"""Build the website from the saved notebooks and open every page in headless Chromium.

Checks what a reader sees: the page title, typeset math (MathJax ran, served from the site itself),
every figure present, each saved widget (progress bars, explorers) drawn once from its saved state,
long printed lines wrapped, code that fits its cell without a scroll bar at 1280 px, folded
solutions, the Colab button, and no WCAG 2 A/AA violation that axe-core finds on any page (with every
control reachable by keyboard). Screenshots go to book/_build/screenshots/ for a person (or CI artifact) to look at.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html import unescape
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SCREENSHOTS = BOOK / "_build" / "screenshots"
PAGES = {p.stem: p for p in sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*.md"))}


def title_of(page: Path) -> str:
    if page.suffix == ".ipynb":
        first = json.loads(page.read_text())["cells"][0]
        text = "".join(first["source"])
    else:
        text = page.read_text()
    return re.search(r"^# (.+)$", text, re.M).group(1).strip()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    browser = chromium()
    if browser is None:
        message = "Chromium is not installed (Debian: apt-get install chromium; `make setup` does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (BOOK / "_vendor" / "require.js").exists():
        pytest.fail("book/_vendor/ is missing: run `make setup` to vendor MathJax, require.js and the widget manager")
    # built as `make book` builds it: the book's own configuration renders the outputs saved in the notebooks
    assert yaml.safe_load((BOOK / "_config.yml").read_text())["execute"]["execute_notebooks"] == "off"
    out = tmp_path_factory.mktemp("site")
    jb = Path(sys.executable).with_name("jupyter-book")
    build = subprocess.run([str(jb), "build", str(BOOK), "--path-output", str(out), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = out / "_build" / "html"
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make setup` (npm install axe-core into build/axe/)")
    shutil.copy(AXE, html / "axe.min.js")   # the pages' copies below load it from beside them
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Chromium's profile in pytest's temporary folder (which pytest prunes), not one more folder in /tmp per run
    browser = (browser, tmp_path_factory.mktemp("chromium-profile"))
    yield browser, f"http://127.0.0.1:{server.server_address[1]}", html, {}   # {}: pages loaded so far
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def run_chromium(browser, *args):
    browser, profile = browser
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=15000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


# Appended to a copy of a page: once laid out, it lists by how many pixels each code cell's code is
# wider than its box (0 or less: no scroll bar).
MEASURE_CODE = """<script>window.addEventListener("load", () => setTimeout(() => {
  const over = [...document.querySelectorAll("div.cell_input pre")].map(p => p.scrollWidth - p.clientWidth);
  const out = document.createElement("div");
  out.id = "code-overflow";
  out.textContent = over.join(" ");
  document.body.appendChild(out);
}, 500));</script>"""

# axe-core (npm, `make setup` puts it in build/axe/) runs in the page once it has loaded and its
# widgets are drawn, with the WCAG 2.0 and 2.1 A and AA rules, and writes what it found into the
# page; so does a check that every control of the animations and widgets can be reached with Tab.
AXE = ROOT / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """<script src="axe.min.js"></script>
<script>window.addEventListener("load", () => setTimeout(() => {
  const controls = ".animation button, .animation input, .widget-subarea input, .widget-subarea button, [role=slider]";
  const unreachable = [...document.querySelectorAll(controls)].filter((e) => e.tabIndex < 0).map((e) => e.outerHTML.slice(0, 80));
  axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then((results) => {
    const out = document.createElement("pre");
    out.id = "axe-results";
    out.textContent = JSON.stringify({unreachable, violations: results.violations.map((v) => ({
      rule: v.id, impact: v.impact, help: v.help, where: v.nodes.slice(0, 3).map((n) => n.html.slice(0, 100))}))});
    document.body.appendChild(out);
  });
}, 1000));</script>"""


def loaded(site, name: str) -> str:
    """The page as Chromium shows it at 1280 px, once laid out, with its code cells measured and axe-core's
    findings written in: the DOM of one load, shared by the three tests below (a Chromium start takes
    seconds), and its screenshot."""
    browser, url, html, pages = site
    if name not in pages:
        copy = html / f"checked-{name}.html"   # beside the page: the same links and scripts
        copy.write_text((html / f"{name}.html").read_text().replace("</body>", MEASURE_CODE + RUN_AXE + "</body>"))
        for attempt in range(2):   # once in a CI run, axe-core had not written its results in time: again
            dom = run_chromium(browser, "--window-size=1280,2000", f"--screenshot={SCREENSHOTS / name}.png",
                               "--dump-dom", f"{url}/{copy.name}").stdout
            if '<pre id="axe-results">' in dom:
                break
        pages[name] = dom
    return pages[name]


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(site, name):
    html = site[2]
    page = PAGES[name]
    dom = loaded(site, name)
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000

    title = title_of(page)
    # chapters carry their number ("3. The architecture ..."); the preface and back matter do not
    assert re.search(r"<title>\s*(\d+\.\s+)?" + re.escape(title.replace("&", "&amp;")), dom), f"title {title!r} missing"
    source = page.read_text()
    if re.search(r"\$[^$\s]", source):
        assert "<mjx-container" in dom, "math was not typeset: MathJax did not run"
        assert "$$" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S), "raw TeX left on the page"

    if page.suffix == ".ipynb":
        notebook = json.loads(source)
        figures = sum("image/png" in o.get("data", {}) for c in notebook["cells"] if c["cell_type"] == "code"
                      for o in c["outputs"])
        images = re.findall(r'<img[^>]+src="(_images/[^"]+)"', dom)
        assert len(images) >= figures
        for src in images:
            assert (html / src).stat().st_size > 1000, f"figure {src} is missing or empty"
        assert f"colab.research.google.com/github/alexnet-edu/alexnet-edu/blob/main/book/{name}.ipynb" in dom
        assert re.search(r"<title>\s*\d+\.\s", dom), "chapters are numbered (so are their exercises: 4.1, 4.2, ...)"
        assert re.search(r"Exercise\s*\d+\.1\b", dom), "exercises are numbered within their chapter"
        assert 'class="solution dropdown' in dom or "solution dropdown" in dom, "solutions are not folded"
        # each saved widget (progress bars, explorers) is drawn once: the widget manager is loaded once
        views = len(re.findall(r'<script type="application/vnd.jupyter.widget-view\+json"', dom))
        assert dom.count('class="widget-subarea"') == views, "widgets drawn more (or fewer) times than saved"
        # long printed lines wrap, as in Jupyter, instead of hiding their end behind a scroll bar
        assert "_static/wrap-output.css" in dom
        assert "white-space: pre-wrap" in (html / "_static" / "wrap-output.css").read_text()
        if "_explorer(" in source:   # an ipywidgets explorer, rendered from its saved state
            rendered = re.sub(r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>', "", dom, flags=re.S)
            assert 'class="lm-Widget' in rendered and "widget-hslider" in rendered, "the widget did not render"


@pytest.mark.parametrize("name", [name for name, page in PAGES.items() if page.suffix == ".ipynb"])
def test_code_needs_no_scroll_bar_on_a_laptop_screen(site, name):
    overflow = [int(v) for v in re.search(r'id="code-overflow">([^<]*)<', loaded(site, name)).group(1).split()]
    assert overflow, "no code cells found on the page"
    assert max(overflow) <= 0, f"code wider than its cell at 1280 px (px per cell): {overflow}"


@pytest.mark.parametrize("name", PAGES)
def test_page_passes_axe_core_wcag_2_a_and_aa(site, name):
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', loaded(site, name), re.S)
    assert found, "axe-core did not finish within the page's time budget, twice"
    results = json.loads(unescape(found.group(1)))
    assert not results["unreachable"], f"controls that Tab cannot reach: {results['unreachable']}"
    assert not results["violations"], "WCAG 2 A/AA violations:\n" + "\n".join(
        f"{v['rule']} ({v['impact']}): {v['help']}, e.g. {v['where']}" for v in results["violations"])
