"""End to end in a real headless Chromium, with the real embedder: a registrar uploads an
object with two photos and reports it stolen; an investigator finds it with a third photo and
gets "no match" for an unrelated one. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.enums import Role
from kernel.settings import Settings
from service.security import hash_password
from storage.catalogue import create_catalogue
from storage.catalogue.accounts import Accounts
from tests.utils.images import jpeg_bytes, photographed, textured_object

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "browser test password"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not os.environ.get("CI"):
    pytest.skip(
        "Chromium and chromedriver are not installed (apt-get install chromium "
        "chromium-driver); set CI=1 to make this a failure instead",
        allow_module_level=True,
    )
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from service.main import create_app

    home = tmp_path_factory.mktemp("e2e") / "home"
    settings = Settings(home=home)
    accounts = Accounts(create_catalogue(settings.database_url).engine)
    digest = hash_password(PASSWORD)
    accounts.create_account(
        username="registrar", password_hash=digest, role=Role.REGISTRAR, institution="Museum A"
    )
    accounts.create_account(
        username="investigator", password_hash=digest, role=Role.INVESTIGATOR, institution=None
    )
    accounts.engine.dispose()
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{url}/api/v1/ready", timeout=2)
            if ready.status_code == 200:
                break
            assert "failed" not in (ready.json().get("message") or ""), ready.text
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("the service did not become ready")
    yield url
    uv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    art = textured_object(4242, size=(480, 600))
    images = {
        "front": art,
        "angle": photographed(art, seed=1),
        "query": photographed(art, seed=2),
        "unrelated": _unrelated(),
    }
    paths = {}
    for name, img in images.items():
        paths[name] = folder / f"{name}.jpg"
        paths[name].write_bytes(jpeg_bytes(img))
    return paths


def _unrelated():  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    # Something that is no painting: a smooth sky-and-ground scene with noise.
    rng = np.random.default_rng(7)
    h, w = 600, 800
    y = np.linspace(0, 1, h)[:, None]
    sky = np.stack([90 + 80 * y, 140 + 60 * y, 220 - 40 * y], axis=-1) * np.ones((1, w, 1))
    sky[int(h * 0.65) :] = [70, 110, 50]
    sky += rng.normal(0, 12, sky.shape)
    return Image.fromarray(np.clip(sky, 0, 255).astype("uint8"))


def _login(driver: webdriver.Chrome, url: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def _shot(driver: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_upload_report_stolen_and_search(
    server: str, browser: webdriver.Chrome, photos: dict[str, Path]
) -> None:
    wait = WebDriverWait(browser, 60)
    _login(browser, server, "registrar")
    browser.get(f"{server}/upload")
    browser.find_element(By.ID, "object_id").send_keys("E2E-1")
    browser.find_element(By.ID, "title").send_keys("Still life with shapes")
    browser.find_element(By.ID, "maker").send_keys("Test Painter")
    file_input = browser.find_element(By.ID, "photo-files")
    file_input.send_keys(f"{photos['front']}\n{photos['angle']}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#file-list li")) == 2
    browser.find_element(By.ID, "photo-view").send_keys("front")
    _shot(browser, "upload-form")
    browser.find_element(By.ID, "upload-submit").click()
    wait.until(EC.url_contains("/objects/E2E-1"))
    assert len(browser.find_elements(By.CSS_SELECTOR, ".photos figure")) == 2

    Select(browser.find_element(By.ID, "status-select")).select_by_value("stolen")
    browser.find_element(By.ID, "status-reference").send_keys("POLICE-2024-17")
    browser.find_element(By.ID, "status-submit").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "object-status"), "stolen"))
    assert "POLICE-2024-17" in browser.page_source
    _shot(browser, "object-page")

    _login(browser, server, "investigator")
    browser.get(f"{server}/search")
    browser.find_element(By.ID, "search-file").send_keys(str(photos["query"]))
    browser.find_element(By.ID, "case-reference").send_keys("CASE-E2E")
    browser.find_element(By.ID, "search-submit").click()
    first = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".pair")))
    assert first.get_attribute("data-object-id") == "E2E-1"
    assert "is-match" in (first.get_attribute("class") or "")
    assert "match" in browser.find_element(By.ID, "result-summary").text
    _shot(browser, "search-match")
    browser.set_window_size(390, 844)
    _shot(browser, "search-match-phone")
    browser.set_window_size(1280, 1000)

    browser.get(f"{server}/search")
    browser.find_element(By.ID, "search-file").send_keys(str(photos["unrelated"]))
    browser.find_element(By.ID, "search-submit").click()
    summary = wait.until(EC.presence_of_element_located((By.ID, "result-summary")))
    assert summary.text.startswith("No match")
    assert not browser.find_elements(By.CSS_SELECTOR, ".pair.is-match")
    _shot(browser, "search-no-match")


def test_a_case_walked_through(
    server: str, browser: webdriver.Chrome, photos: dict[str, Path]
) -> None:
    """Open a case, search for it, confirm the match, get the signed report and check it.
    Runs after the test above, which catalogued E2E-1 and reported it stolen."""
    import pypdfium2
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from engine.reports import verify_document

    wait = WebDriverWait(browser, 60)
    _login(browser, server, "investigator")
    browser.get(f"{server}/cases")
    browser.find_element(By.ID, "case-reference").send_keys("POL-2026-0142")
    browser.find_element(By.ID, "case-title").send_keys("Still life seized at the border")
    browser.find_element(By.ID, "case-notes").send_keys("Lot 3 of the seizure of 14 May.")
    _shot(browser, "case-open")
    browser.find_element(By.ID, "case-submit").click()
    wait.until(EC.url_matches(r"/cases/\d+$"))
    case_id = browser.current_url.rsplit("/", 1)[1]

    browser.get(f"{server}/search?case_id={case_id}")
    browser.find_element(By.ID, "search-file").send_keys(str(photos["query"]))
    browser.find_element(By.ID, "search-submit").click()
    first = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".pair")))
    assert first.get_attribute("data-object-id") == "E2E-1"
    _shot(browser, "case-search")
    browser.find_element(By.ID, "case-link").click()
    wait.until(EC.url_contains(f"/cases/{case_id}"))
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-object-id="E2E-1"]')
    assert "match" in row.text and "matching points" in row.text
    row.find_element(By.CSS_SELECTOR, 'button[value="confirmed"]').click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".badge.decision-confirmed")))
    _shot(browser, "case-confirmed")

    # The signed report, fetched as the browser would (its session cookie), and checked
    # against the public key anyone can fetch.
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    html = httpx.get(f"{server}/api/v1/cases/{case_id}/report.html", cookies=cookies)
    pdf = httpx.get(f"{server}/api/v1/cases/{case_id}/report.pdf", cookies=cookies, timeout=60)
    assert html.status_code == 200 and pdf.status_code == 200, (html.text, pdf.text)
    pem = httpx.get(f"{server}/api/v1/reports/public-key").json()["pem"]
    public = load_pem_public_key(pem.encode())
    for document in (html.content, pdf.content):
        verdict = verify_document(document, public)  # type: ignore[arg-type]
        assert verdict.valid, verdict.reason
    tampered = html.content.replace(b"E2E-1", b"E2E-9", 1)
    assert not verify_document(tampered, public).valid  # type: ignore[arg-type]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "case-report.html").write_bytes(html.content)
    browser.get((ARTIFACTS / "case-report.html").as_uri())
    _shot(browser, "case-report-html")
    page = pypdfium2.PdfDocument(pdf.content)[0]
    page.render(scale=1.2).to_pil().save(ARTIFACTS / "case-report-pdf-page1.png")


# -- phone layout: every page kind at 390 px --------------------------------------------------

PHONE_WIDTH = 390
#: One role per page kind it can see, and the pages it loads there.
PHONE_ROLES = {
    "registrar": ("reg_phone", Role.REGISTRAR, "Museum of Very Long Institution Names Belgrade"),
    "investigator": ("inv_phone", Role.INVESTIGATOR, None),
    "analyst": ("an_phone", Role.ANALYST, None),
    "auditor": ("aud_phone", Role.AUDITOR, None),
    "admin": ("adm_phone", Role.ADMIN, None),
}


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A service with the fake embedder, and a catalogue, a job and a case to show: the
    layout, not the matching, is under test."""
    import uvicorn

    from models.embedders import FakeEmbedder
    from service.main import create_app
    from service.security import new_token

    home = tmp_path_factory.mktemp("phone") / "home"
    settings = Settings(home=home)
    accounts = Accounts(create_catalogue(settings.database_url).engine)
    digest = hash_password(PASSWORD)
    tokens = {}
    for role_name, (username, role, institution) in PHONE_ROLES.items():
        account = accounts.create_account(
            username=username, password_hash=digest, role=role, institution=institution
        )
        token, token_digest = new_token()
        accounts.add_token(account_id=account.id, name="phone", token_sha256=token_digest)
        tokens[role_name] = token
    accounts.engine.dispose()
    port = _free_port()
    app = create_app(settings, embedder=FakeEmbedder())
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("the service did not become ready")
    yield url, tokens
    uv.should_exit = True
    thread.join(timeout=30)


def _seed(url: str, tokens: dict[str, str]) -> dict[str, str]:
    """An object with a very long id, photos and a loss; a finished job; a case."""

    def call(role: str, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        r = httpx.request(method, f"{url}{path}", headers=headers, timeout=60, **kwargs)
        assert r.status_code < 300, (path, r.text)
        return r.json()

    long_id = "RS-NMB-1987-0042-ИКОНА-БОГОРОДИЦЕ-ОДИГИТРИЈЕ-SA-ОКЛОПОМ-" + "X" * 40
    call(
        "registrar",
        "POST",
        "/api/v1/objects/with-photos",
        data={
            "record": json.dumps(
                {"object_id": long_id, "title": "Икона Богородице Одигитрије " * 4}
            ),
            "views": ["front", "back"],
        },
        files=[
            ("files", ("front.jpg", jpeg_bytes(textured_object(11)), "image/jpeg")),
            ("files", ("back.jpg", jpeg_bytes(textured_object(12)), "image/jpeg")),
        ],
    )
    call(
        "registrar",
        "POST",
        f"/api/v1/objects/{long_id}/status",
        json={"status": "stolen", "reference": "POLICE-REFERENCE-" + "9" * 60},
    )
    manifest = "listing_id,image,title\n" + "".join(
        f"LISTING-WITH-A-VERY-LONG-IDENTIFIER-{i:04d}-{'Z' * 30},p{i}.jpg,Title {i}\n"
        for i in range(2)
    )
    job = call(
        "analyst",
        "POST",
        "/api/v1/jobs",
        files=[
            ("manifest", ("listings.csv", manifest.encode(), "text/csv")),
            ("images", ("p0.jpg", jpeg_bytes(photographed(textured_object(11), 3)), "image/jpeg")),
            ("images", ("p1.jpg", b"\xff\xd8\xff broken", "image/jpeg")),
        ],
    )
    deadline = time.monotonic() + 60
    while call("analyst", "GET", f"/api/v1/jobs/{job['id']}")["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.2)
    case = call(
        "investigator",
        "POST",
        "/api/v1/cases",
        json={"reference": "POL-" + "2026-" * 20, "title": "Seizure " * 20},
    )
    return {"object": long_id, "job": job["id"], "case": str(case["id"])}


@pytest.fixture(scope="module")
def seeded(phone_server: tuple[str, dict[str, str]]) -> dict[str, str]:
    return _seed(*phone_server)


def _width(driver: webdriver.Chrome, name: str, widths: dict[str, int]) -> None:
    widths[name] = int(driver.execute_script("return document.documentElement.scrollWidth"))
    _shot(driver, f"phone-{name}")


def test_every_page_fits_a_phone(
    phone_server: tuple[str, dict[str, str]],
    seeded: dict[str, str],
    browser: webdriver.Chrome,
) -> None:
    from urllib.parse import quote

    url, _ = phone_server
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    widths: dict[str, int] = {}
    try:
        browser.delete_all_cookies()
        browser.get(f"{url}/login")
        _width(browser, "login", widths)
        pages = {
            "registrar": {
                "upload": "/upload",
                "catalogue": "/objects",
                "object": f"/objects/{quote(seeded['object'])}",
            },
            "analyst": {"jobs": "/jobs", "job": f"/jobs/{seeded['job']}"},
            "investigator": {
                "cases": "/cases",
                "case": f"/cases/{seeded['case']}",
                "alerts": "/alerts",
            },
            "auditor": {"audit": "/audit"},
            "admin": {"admin": "/admin"},
        }
        for role, kinds in pages.items():
            _login(browser, url, PHONE_ROLES[role][0])
            for name, path in kinds.items():
                browser.get(f"{url}{path}")
                _width(browser, name, widths)
        # the search page with its results
        _login(browser, url, PHONE_ROLES["investigator"][0])
        browser.get(f"{url}/search")
        _width(browser, "search", widths)
        ARTIFACTS.mkdir(exist_ok=True)
        query = ARTIFACTS / "phone-query.jpg"
        query.write_bytes(jpeg_bytes(photographed(textured_object(11), 5)))
        browser.find_element(By.ID, "search-file").send_keys(str(query))
        browser.find_element(By.ID, "case-reference").send_keys("CASE-" + "0123456789" * 8)
        browser.find_element(By.ID, "search-submit").click()
        WebDriverWait(browser, 60).until(EC.presence_of_element_located((By.ID, "result-summary")))
        assert browser.find_elements(By.CSS_SELECTOR, ".pair")
        _width(browser, "search-results", widths)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert len(widths) == 13
    too_wide = {name: w for name, w in widths.items() if w > PHONE_WIDTH}
    assert not too_wide, f"pages wider than a {PHONE_WIDTH} px phone: {too_wide}"


def test_upload_labels_each_photo_and_refuses_a_non_image(
    phone_server: tuple[str, dict[str, str]],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    url, tokens = phone_server
    front, back, notes = tmp_path / "front.jpg", tmp_path / "back.jpg", tmp_path / "notes.txt"
    front.write_bytes(jpeg_bytes(textured_object(31)))
    back.write_bytes(jpeg_bytes(textured_object(32)))
    notes.write_text("not a photo")
    _login(browser, url, PHONE_ROLES["registrar"][0])
    browser.get(f"{url}/upload")
    browser.find_element(By.ID, "object_id").send_keys("UP-1")
    browser.find_element(By.ID, "photo-files").send_keys(f"{front}\n{notes}")
    error = browser.find_element(By.ID, "upload-error")
    assert "notes.txt" in error.text and error.is_displayed()
    browser.find_element(By.ID, "photo-files").send_keys(str(back))
    rows = browser.find_elements(By.CSS_SELECTOR, "#file-list li")
    assert len(rows) == 2  # the text file was not added
    for row, view in zip(rows, ("front", "back"), strict=True):
        row.find_element(By.CSS_SELECTOR, ".photo-view").send_keys(view)
    browser.find_element(By.ID, "upload-submit").click()
    WebDriverWait(browser, 60).until(EC.url_contains("/objects/UP-1"))
    r = httpx.get(
        f"{url}/api/v1/objects/UP-1", headers={"Authorization": f"Bearer {tokens['registrar']}"}
    )
    assert sorted(p["view"] for p in r.json()["photos"]) == ["back", "front"]


#: The languages the pages are photographed in: one in Cyrillic, one in Latin script.
SHOT_LANGUAGES = {"sr": "Претрага", "de": "Suche"}


def test_the_main_pages_in_two_languages_at_desk_and_phone_width(
    phone_server: tuple[str, dict[str, str]],
    seeded: dict[str, str],
    browser: webdriver.Chrome,
) -> None:
    """Screenshots (test-artifacts/lang-<language>-<width>-<page>.png) of the search results,
    object, batch-check and case pages, looked at by people; the test checks that each page
    speaks the language picked and fits its width."""
    from urllib.parse import quote

    url, _ = phone_server
    ARTIFACTS.mkdir(exist_ok=True)
    query = ARTIFACTS / "lang-query.jpg"
    query.write_bytes(jpeg_bytes(photographed(textured_object(11), 5)))
    pages = {
        "investigator": {"case": f"/cases/{seeded['case']}"},
        "registrar": {"object": f"/objects/{quote(seeded['object'])}"},
        "analyst": {"batch-check": f"/jobs/{seeded['job']}"},
    }
    problems = []
    try:
        for width in (1366, PHONE_WIDTH):
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800},
            )
            for language, search_word in SHOT_LANGUAGES.items():
                shots: dict[str, str] = {}
                for role, kinds in pages.items():
                    _login(browser, url, PHONE_ROLES[role][0])
                    for name, path in kinds.items():
                        browser.get(f"{url}{path}?lang={language}")
                        shots[name] = browser.page_source
                        _shot(browser, f"lang-{language}-{width}-{name}")
                        wide = int(
                            browser.execute_script("return document.documentElement.scrollWidth")
                        )
                        if wide > width:
                            problems.append(f"{language} {width} {name}: {wide} px wide")
                _login(browser, url, PHONE_ROLES["investigator"][0])
                browser.get(f"{url}/search?lang={language}")
                browser.find_element(By.ID, "search-file").send_keys(str(query))
                browser.find_element(By.ID, "search-submit").click()
                WebDriverWait(browser, 60).until(
                    EC.presence_of_element_located((By.ID, "result-summary"))
                )
                shots["search"] = browser.page_source
                _shot(browser, f"lang-{language}-{width}-search")
                for name, html in shots.items():
                    if f'<html lang="{language}' not in html.replace("_", "-"):
                        problems.append(f"{language} {width} {name}: not in {language}")
                    # Engineering words and English left-overs a reader would stumble on.
                    for word in ("Pillow", "hit(s)", "inliers", "homography"):
                        if word in html.split("<details", 1)[0]:
                            problems.append(f"{language} {width} {name}: {word!r}")
                if search_word not in shots["search"]:
                    problems.append(f"{language} {width} search: no {search_word!r}")
                scroll = int(browser.execute_script("return document.documentElement.scrollWidth"))
                if scroll > width:
                    problems.append(f"{language} {width} search: {scroll} px wide")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert not problems, problems
