"""The web page in a real browser: Debian's headless Chromium driven by Selenium through
Debian's ChromeDriver (nothing downloads a browser), against `mhinr serve` with its worker."""

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.test_e2e import service

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
AXE = Path(__file__).resolve().parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


def browser_or_skip():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "Chromium and ChromeDriver are required under CI (make browser installs them)"
            )
        pytest.skip("no chromium/chromedriver (make browser installs them)")
    return chromium, driver


@pytest.fixture
def browser(tmp_path):
    drv = make_browser(tmp_path)
    yield drv
    drv.quit()


@pytest.fixture
def offline_browser(tmp_path):
    """A browser for which every host but 127.0.0.1 fails to resolve: the network unplugged
    (a CDN, a font service, anything not served by mhinr itself, fails to load)."""
    drv = make_browser(tmp_path, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    yield drv
    drv.quit()


def make_browser(tmp_path, *extra_flags: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_or_skip()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2200",
        *extra_flags,
    ):
        opts.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for 404s
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.downloads = downloads
    drv.console = []
    return drv


def console(drv) -> list[str]:
    """Everything the page's console said so far (kept across calls: reading empties it)."""
    drv.console += [e["message"] for e in drv.get_log("browser")]
    return drv.console


def not_found(drv) -> list[str]:
    """What the console said of a missing resource (a 404) or a script that threw. Chrome
    words a 404 "the server responded with a status of 404"; a bare "404" also matched the
    page's address when the test server's port held those digits (127.0.0.1:40401)."""
    return [m for m in console(drv) if "status of 404" in m or "Uncaught" in m]


def axe_violations(drv) -> list:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("axe-core is required under CI (make browser installs it)")
        pytest.skip("no axe-core (make browser installs it)")
    drv.execute_script(AXE.read_text())
    drv.set_script_timeout(60)
    found = drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
        "v => [v.id, v.impact, v.nodes.slice(0, 3).map(n => n.target.join(' '))])));"
    )
    return [v for v in found if v[1] in ("serious", "critical")]


def tab_to(drv, element_id: str, presses: int = 12) -> int:
    """Press Tab from the top of the page until `element_id` has the focus; the presses."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    drv.execute_script("document.activeElement && document.activeElement.blur()")
    for n in range(1, presses + 1):
        ActionChains(drv).send_keys(Keys.TAB).perform()
        if drv.execute_script("return document.activeElement.id") == element_id:
            return n
    raise AssertionError(f"{presses} presses of Tab never reached #{element_id}")


def shot(drv, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    drv.save_screenshot(str(path))
    if os.environ.get("MHINR_SAVE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)
    return path


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_page_upload_watch_compare_zoom_download(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    drv = browser
    with service(tmp_path) as client:
        drv.get(str(client.base_url))
        wait_for(lambda: "megapixels" in drv.find_element(By.ID, "limits").text, 20, "the limits")
        wait_for(lambda: drv.find_element(By.ID, "preset-note").text, 20, "the presets")
        assert client.get("/favicon.ico").status_code == 200

        # the keyboard: Tab reaches the file chooser's button, Enter opens the chooser
        drv.execute_script(
            "document.getElementById('file').addEventListener('click', e => {"
            " window.picked = (window.picked || 0) + 1; e.preventDefault(); })"
        )
        tab_to(drv, "pick")
        ActionChains(drv).send_keys(Keys.ENTER).perform()
        assert drv.execute_script("return window.picked") == 1
        outline = drv.find_element(By.ID, "pick").value_of_css_property("outline-style")
        assert outline != "none", outline  # the focus is visible
        assert axe_violations(drv) == []

        # the fields follow the preset (GET /presets): fast trains nothing, takes no steps
        presets = client.get("/presets").json()["presets"]
        Select(drv.find_element(By.ID, "preset")).select_by_value("fast")
        assert not drv.find_element(By.ID, "steps-field").is_displayed()
        assert presets["fast"]["summary"] in drv.find_element(By.ID, "preset-note").text
        Select(drv.find_element(By.ID, "preset")).select_by_value("compact")
        assert drv.find_element(By.ID, "steps-field").is_displayed()
        assert not drv.find_element(By.ID, "heads-field").is_displayed()
        cut = drv.execute_script(  # a select whose chosen text is wider than the box
            "return [...document.querySelectorAll('select')]"
            ".filter(s => s.offsetParent).filter(s => {"
            " const c = document.createElement('canvas').getContext('2d');"
            " c.font = getComputedStyle(s).font;"
            " return c.measureText(s.options[s.selectedIndex].text).width + 24 > s.clientWidth;"
            "}).map(s => s.id)"
        )
        assert cut == [], cut

        # a refused upload shows the server's message
        junk = tmp_path / "notes.png"
        junk.write_bytes(b"these are not pixels" * 50)
        drv.find_element(By.ID, "file").send_keys(str(junk))
        drv.find_element(By.ID, "submit").click()
        err = wait_for(lambda: drv.find_element(By.ID, "error").text, 20, "the refusal")
        assert "415" in err and "not an image" in err

        drv.find_element(By.ID, "file").send_keys(str(KODAK / "kodim23.png"))
        Select(drv.find_element(By.ID, "preset")).select_by_value("fast")
        assert "seconds" in drv.find_element(By.ID, "preset-note").text
        assert "nothing" in drv.find_element(By.ID, "preset-note").text
        Select(drv.find_element(By.ID, "target-kind")).select_by_value("max_bytes")
        drv.find_element(By.ID, "target").send_keys("12")  # kB: sent as max_bytes=12000
        drv.find_element(By.ID, "submit").click()
        wait_for(
            lambda: (
                drv.find_element(By.ID, "status").text.split(" ")[0] in ("running", "succeeded")
            ),
            60,
            "training to start",
        )
        wait_for(
            lambda: drv.execute_script(
                "return document.getElementById('preview').naturalWidth > 0"
            ),
            60,
            "a training preview",
        )
        shot(drv, tmp_path, "training")
        wait_for(lambda: drv.find_element(By.ID, "result").is_displayed(), 240, "the result")
        job = drv.execute_script("return location.hash").split("=", 1)[1]
        metrics = client.get(f"/jobs/{job}/metrics").json()
        wait_for(lambda: drv.find_element(By.ID, "m-psnr").text, 10, "the numbers")
        assert drv.find_element(By.ID, "m-psnr").text == f"{metrics['psnr']:.2f}"
        assert drv.find_element(By.ID, "m-ssim").text == f"{metrics['ssim']:.4f}"
        assert drv.find_element(By.ID, "m-bytes").text == f"{metrics['bytes']:,}"
        assert drv.find_element(By.ID, "m-bpp").text == f"{metrics['bpp']:.3f}"
        assert drv.find_element(By.ID, "m-jpeg").text == f"{metrics['jpeg_psnr_same_bytes']:.2f}"
        assert drv.find_element(By.ID, "m-webp").text == f"{metrics['webp_psnr_same_bytes']:.2f}"
        assert drv.find_element(By.ID, "m-avif").text == f"{metrics['avif_psnr_same_bytes']:.2f}"
        assert drv.find_element(By.ID, "m-ratio").text == f"{metrics['compression_ratio_raw']:.1f}×"
        assert client.get(f"/jobs/{job}").json()["options"]["max_bytes"] == 12000
        assert metrics["bytes"] <= 12000
        # the final figure, labelled final; the comparison in words
        status = drv.find_element(By.ID, "status").text
        assert f"final PSNR {metrics['psnr']:.2f} dB" in status, status
        verdict = drv.find_element(By.ID, "verdict").text
        assert drv.find_element(By.ID, "m-jxl").text == f"{metrics['jxl_psnr_same_bytes']:.2f}"
        for name in ("jpeg", "webp", "avif", "jxl"):
            d = metrics[f"{name}_psnr_same_bytes"] - metrics["psnr"]
            word = "better" if d > 0 else "worse"
            label = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL"}[name]
            expect = f"{label} is {abs(d):.1f} dB {word}"
            assert expect in verdict, verdict
            # and at how many bytes: the rival's file is the largest not over mhinr's
            fewer = 100 * (metrics["bytes"] - metrics[f"{name}_bytes"]) / metrics["bytes"]
            if fewer >= 0.05:
                assert f"{fewer:.1f} % fewer bytes ({metrics[f'{name}_bytes']:,})" in verdict
        outcome = drv.find_element(By.ID, "outcome").text
        assert outcome.startswith("Target met") and "12,000 bytes" in outcome, outcome
        assert metrics["target_outcome"].startswith("met")
        # a job that trains nothing shows no training chart; the coding line says what was kept
        assert not drv.find_element(By.ID, "chart-figure").is_displayed()
        coding = drv.find_element(By.ID, "coding").text
        assert f"Kept: {metrics['cell'][0]} px cells" in coding, coding
        assert "PSNR" in drv.find_element(By.CSS_SELECTOR, ".explain").text

        loaded = (
            "return ['orig', 'recon', 'jpeg-img', 'webp-img', 'avif-img']"
            ".every(i => document.getElementById(i).naturalWidth > 0)"
        )
        wait_for(lambda: drv.execute_script(loaded), 30, "the comparison images")
        drv.execute_script(
            "const s = document.getElementById('split-slider'); s.value = 30;"
            "s.dispatchEvent(new Event('input'));"
        )
        line, split = drv.find_element(By.ID, "split-line"), drv.find_element(By.ID, "split")
        assert line.is_displayed() and line.rect["height"] == split.rect["height"] > 0
        assert abs(line.rect["x"] - (split.rect["x"] + 0.3 * split.rect["width"])) < 3
        first = wait_for(
            lambda: drv.find_element(By.ID, "zoom-inr").get_attribute("data-size"),
            60,
            "the first zoom render",
        )
        # the codec's enlargement says how it is made (the render's X-Mhinr-Render header)
        assert drv.find_element(By.ID, "zoom-inr").get_attribute("data-render") == (
            "lanczos-of-decode"
        )
        assert "Lanczos" in drv.find_element(By.ID, "zoom-caption").text
        assert axe_violations(drv) == []
        shot(drv, tmp_path, "result")

        # move the zoom slider: a new render at the new size loads
        drv.execute_script(
            "const z = document.getElementById('zoom'); z.value = 2400;"
            "z.dispatchEvent(new Event('change'));"
        )
        wait_for(
            lambda: drv.find_element(By.ID, "zoom-inr").get_attribute("data-size") == "2400",
            60,
            "the zoomed render",
        )
        assert first != "2400"
        assert drv.execute_script("return document.getElementById('zoom-inr').naturalWidth") == 2400
        # or type the size: any number of pixels, not the slider's steps
        box = drv.find_element(By.ID, "zoom-size")
        box.clear()
        box.send_keys("2000", Keys.ENTER)
        wait_for(
            lambda: drv.find_element(By.ID, "zoom-inr").get_attribute("data-size") == "2000",
            60,
            "the typed size",
        )
        assert drv.execute_script("return document.getElementById('zoom-inr').naturalWidth") == 2000
        drv.execute_script(
            "const z = document.getElementById('zoom-size'); z.value = 2400;"
            "z.dispatchEvent(new Event('change'));"
        )
        wait_for(
            lambda: drv.find_element(By.ID, "zoom-inr").get_attribute("data-size") == "2400",
            60,
            "the zoomed render again",
        )
        lanczos = "return document.getElementById('zoom-lanczos').naturalWidth"
        wait_for(lambda: drv.execute_script(lanczos) == 2400, 30, "the Lanczos enlargement")
        drv.execute_script("document.getElementById('crop-inr').scrollTo(900, 500)")
        shot(drv, tmp_path, "zoom")

        # download the .inr
        drv.find_element(By.ID, "dl-model").click()
        inr = wait_for(lambda: next(iter(drv.downloads.glob("*.inr")), None), 30, "the download")
        assert inr.name == "kodim23.inr"  # named after the upload
        wait_for(lambda: inr.stat().st_size == metrics["bytes"], 10, "the whole download")
        assert inr.read_bytes()[:4] == b"MINR"
        assert inr.read_bytes() == client.get(f"/jobs/{job}/model").content

        # the recent-jobs list remembers it; a narrow screen still shows the page
        assert job in drv.find_element(By.ID, "recent").get_attribute("innerHTML")
        drv.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 1400, "deviceScaleFactor": 1, "mobile": True},
        )
        drv.refresh()
        wait_for(
            lambda: drv.find_element(By.ID, "result").is_displayed(), 60, "the result after reload"
        )
        time.sleep(1.0)
        width = drv.execute_script("return document.documentElement.scrollWidth")
        inner = drv.execute_script("return window.innerWidth")
        wide = drv.execute_script(
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.crop'))"
            ".map(e => e.tagName + '#' + e.id).slice(0, 8)"
        )
        assert inner == 390 and width <= inner, f"{width}px wide in a {inner}px window: {wide}"
        shot(drv, tmp_path, "narrow")
        drv.execute_script("document.getElementById('zoom').scrollIntoView()")
        shot(drv, tmp_path, "narrow_zoom")
        drv.execute_script("window.scrollTo(0, 0)")
        a, b = (drv.find_element(By.ID, i).rect for i in ("crop-inr", "crop-lanczos"))
        assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 2  # side by side
        broken = drv.execute_script(  # a number on more than one line ("37,83 / 4")
            "return [...document.querySelectorAll('#numbers td:not(:first-child)')]"
            ".filter(td => { const r = document.createRange(); r.selectNodeContents(td);"
            " return td.textContent && r.getClientRects().length > 1; })"
            ".map(td => td.textContent)"
        )
        assert not broken, broken

        drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        drv.refresh()
        wait_for(lambda: drv.find_element(By.ID, "result").is_displayed(), 60, "the result")

        # a target that cannot be met says so, with what was reached instead
        wait_for(lambda: drv.find_element(By.ID, "preset-note").text, 20, "the presets")
        drv.find_element(By.ID, "file").send_keys(str(KODAK / "kodim05.png"))
        Select(drv.find_element(By.ID, "preset")).select_by_value("fast")
        Select(drv.find_element(By.ID, "target-kind")).select_by_value("max_bytes")
        drv.find_element(By.ID, "target").send_keys("1")
        drv.find_element(By.ID, "submit").click()
        wait_for(
            lambda: drv.find_element(By.ID, "outcome").text.startswith("Target not met"),
            120,
            "the missed target",
        )
        outcome = drv.find_element(By.ID, "outcome").text
        assert "smallest file" in outcome and "over the 1,000 bytes asked" in outcome, outcome
        assert "target not met" in drv.find_element(By.ID, "status").text
        shot(drv, tmp_path, "not_met")

        # cancel a running job: it ends cancelled, the bar empty; #job= navigates back
        drv.find_element(By.ID, "file").send_keys(str(KODAK / "kodim05.png"))
        Select(drv.find_element(By.ID, "preset")).select_by_value("paper")
        drv.find_element(By.ID, "steps").send_keys("20000")
        drv.find_element(By.ID, "submit").click()
        wait_for(
            lambda: drv.find_element(By.ID, "status").text.startswith("running"),
            60,
            "the second job to run",
        )
        # its first preview shown (a preview asked for as the cancel deletes it would be a
        # 404: the page asks for none once the cancel is clicked, but one already on its way
        # could still meet the deletion)
        wait_for(lambda: drv.find_element(By.ID, "preview-figure").is_displayed(), 60, "a preview")
        drv.find_element(By.ID, "cancel").click()
        wait_for(
            lambda: "cancelled" in drv.find_element(By.ID, "status").text, 30, "the cancellation"
        )
        assert "cancelled" in drv.find_element(By.ID, "watch").get_attribute("class")
        assert drv.execute_script("return document.getElementById('progress').value") == 0
        assert not drv.find_element(By.ID, "cancel").is_displayed()
        shot(drv, tmp_path, "cancelled")
        drv.execute_script(f"location.hash = 'job={job}'")
        wait_for(lambda: drv.find_element(By.ID, "result").is_displayed(), 30, "the first job")
        wait_for(lambda: "final PSNR" in drv.find_element(By.ID, "status").text, 30, "its numbers")
        time.sleep(1.0)
        assert not_found(drv) == [], not_found(drv)  # nothing the page asked for was missing


def test_page_upscale_job_zooms_with_the_upscaler_beside_lanczos(browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    small = tmp_path / "kodim23_small.png"
    with Image.open(KODAK / "kodim23.png") as img:
        img.reduce(3).save(small)  # 256x171: a picture worth enlarging
    drv = browser
    with service(tmp_path) as client:
        drv.get(str(client.base_url))
        wait_for(lambda: "megapixels" in drv.find_element(By.ID, "limits").text, 20, "the limits")
        wait_for(lambda: drv.find_element(By.ID, "preset-note").text, 20, "the presets")
        drv.find_element(By.ID, "file").send_keys(str(small))
        Select(drv.find_element(By.ID, "preset")).select_by_value("upscale")
        # it trains nothing: no steps to ask for (GET /presets: what the preset takes)
        assert not drv.find_element(By.ID, "steps").is_displayed()
        drv.find_element(By.ID, "submit").click()
        wait_for(lambda: drv.find_element(By.ID, "result").is_displayed(), 120, "the result")
        job = drv.execute_script("return location.hash").split("=", 1)[1]
        metrics = client.get(f"/jobs/{job}/metrics").json()
        assert metrics["storage"] == "upscale" and metrics["train_steps"] is None
        check = metrics["upscale"]
        # what matters for an upscaler: its file, its network, its held-out check against Lanczos
        wait_for(lambda: drv.find_element(By.ID, "u-check").text, 10, "the numbers")
        text = drv.find_element(By.ID, "upscale-numbers").text
        assert f"{metrics['params']:,} weights" in text and check["prior"] in text, text
        assert "trained once on other photos" in text, text
        assert f"the network {check['held_out_psnr']:.2f} dB" in text, text
        assert f"Lanczos {check['held_out_lanczos_psnr']:.2f} dB" in text, text
        for codec_only in ("codec-numbers", "ratio-line", "classic-pair", "verdict"):
            assert not drv.find_element(By.ID, codec_only).is_displayed(), codec_only
        assert drv.find_element(By.ID, "upscale-note").is_displayed()
        drv.execute_script(
            "const z = document.getElementById('zoom'); z.value = 1024;"
            "z.dispatchEvent(new Event('change'));"
        )
        wait_for(
            lambda: drv.find_element(By.ID, "zoom-inr").get_attribute("data-size") == "1024",
            60,
            "the upscaler's render",
        )
        lanczos = "return document.getElementById('zoom-lanczos').naturalWidth"
        wait_for(lambda: drv.execute_script(lanczos) == 1024, 30, "the Lanczos enlargement")
        rendered = client.get(f"/render?job={job}&size=1024&format=png")
        assert rendered.status_code == 200
        assert rendered.headers["x-mhinr-render"] == "upscaler"
        assert drv.find_element(By.ID, "zoom-inr").get_attribute("data-render") == "upscaler"
        assert "upscaler network" in drv.find_element(By.ID, "zoom-caption").text
        assert axe_violations(drv) == []
        assert not_found(drv) == [], not_found(drv)
        drv.execute_script("document.getElementById('crop-inr').scrollTo(300, 200)")
        drv.execute_script("document.getElementById('upscale-note').scrollIntoView()")
        shot(drv, tmp_path, "upscale")


def test_page_shows_a_failed_job_as_failed(browser, tmp_path):
    import torch
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: INR_DEVICE=cuda would not fail")
    drv = browser
    # a worker told to use a GPU it does not have fails every job, with the reason
    with service(tmp_path, env_extra={"INR_DEVICE": "cuda"}) as client:
        drv.get(str(client.base_url))
        wait_for(lambda: "megapixels" in drv.find_element(By.ID, "limits").text, 20, "the limits")
        drv.find_element(By.ID, "file").send_keys(str(KODAK / "kodim23.png"))
        Select(drv.find_element(By.ID, "preset")).select_by_value("fast")
        drv.find_element(By.ID, "submit").click()
        status = wait_for(
            lambda: (t := drv.find_element(By.ID, "status").text).startswith("failed") and t,
            60,
            "the failure",
        )
        assert "CUDA" in status
        assert "failed" in drv.find_element(By.ID, "watch").get_attribute("class")
        assert drv.execute_script("return document.getElementById('progress').value") == 0
        color = drv.find_element(By.ID, "status").value_of_css_property("color")
        assert color.startswith("rgba(176, 0, 32"), color  # the page's red
        assert not drv.find_element(By.ID, "result").is_displayed()
        shot(drv, tmp_path, "failed")
        # the other tests' check for missing resources sees one (and not the address)
        assert not_found(drv) == [], not_found(drv)
        drv.execute_script("fetch('/no-such-resource')")
        time.sleep(1.0)
        assert any("no-such-resource" in m for m in not_found(drv)), console(drv)


def test_docs_and_redoc_render_fully_with_the_network_unplugged(offline_browser, tmp_path):
    from selenium.webdriver.common.by import By

    drv = offline_browser
    with service(tmp_path) as client:
        spec = client.get("/openapi.json").json()
        operations = sum(len(ops) for ops in spec["paths"].values())
        drv.get(f"{client.base_url}/docs")
        shown = "return document.querySelectorAll('.opblock').length"
        wait_for(lambda: drv.execute_script(shown) == operations, 30, "Swagger UI's operations")
        assert "Fit a network to an image" in drv.find_element(By.TAG_NAME, "body").text
        assert drv.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the bearer scheme
        shot(drv, tmp_path, "docs")
        drv.get(f"{client.base_url}/redoc")
        wait_for(
            lambda: "Fit a network to an image" in drv.find_element(By.TAG_NAME, "body").text,
            30,
            "ReDoc's operations",
        )
        wait_for(
            lambda: "Idempotency-Key" in drv.find_element(By.TAG_NAME, "body").text,
            10,
            "the documented header",
        )
        shot(drv, tmp_path, "redoc")
