#!/usr/bin/python3
"""Browser tests for the Paredão pages, run against the real stack behind nginx.

Run with Debian's own interpreter (its python3-selenium and chromium-driver):

    PAREDAO_WEB_URL=http://127.0.0.1:8000 \
    PAREDAO_PANEL_USER=producao PAREDAO_PANEL_PASSWORD=... \
    PAREDAO_BROKER_CTL='/path/to/broker-ctl' PAREDAO_ADMIN_CREDENTIAL_FILE=var/secrets/admin-token \
    /usr/bin/python3 Tests/browser/test_pages.py        # or: /usr/bin/python3 -m pytest Tests/browser

Environment:
  PAREDAO_WEB_URL          nginx base URL (required)
  PAREDAO_PANEL_USER       panel basic-auth user (required)
  PAREDAO_PANEL_PASSWORD   panel password (required; or PAREDAO_PANEL_PASSWORD_FILE)
  PAREDAO_BROKER_CTL       command taking `stop` / `start` for RabbitMQ (required)
  PAREDAO_ADMIN_CREDENTIAL_FILE  the admin API's credential file, "name:secret" (required);
                           the last tests close the open poll and open a new one from the panel
  PAREDAO_SCREENSHOT_DIR   where screenshots go (default docs/screenshots in the repo)
  PAREDAO_CHROMIUM, PAREDAO_CHROMEDRIVER   binaries (default /usr/bin/chromium, /usr/bin/chromedriver)

Without the required variables the tests are skipped, except with CI=true, where
they fail. Screenshots of every page at phone (360x800) and desktop (1280x900)
sizes are written to docs/screenshots/.
"""

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                            TimeoutException, WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the machine
    SELENIUM_ERROR = exc

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ("PAREDAO_WEB_URL", "PAREDAO_PANEL_USER", "PAREDAO_PANEL_PASSWORD", "PAREDAO_BROKER_CTL",
            "PAREDAO_ADMIN_CREDENTIAL_FILE")
SIZES = (("phone", 360, 800), ("desktop", 1280, 900))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

def P_FORMAT(n):
    """A count as the pages print it (pt-BR thousands with dots)."""
    return "{:,}".format(int(n)).replace(",", ".")


# Errors shown to the viewer always end with an invitation to try again.
FRIENDLY_ERROR_WORDS = "tente de novo"


def env_password():
    if os.environ.get("PAREDAO_PANEL_PASSWORD"):
        return os.environ["PAREDAO_PANEL_PASSWORD"]
    path = os.environ.get("PAREDAO_PANEL_PASSWORD_FILE")
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip()
    return ""


def missing_settings():
    missing = []
    for name in REQUIRED:
        value = env_password() if name == "PAREDAO_PANEL_PASSWORD" else os.environ.get(name, "")
        if not value:
            missing.append(name)
    return missing


# ---- small HTTP client (urllib) ------------------------------------------------------

def http(method, url, body=None, headers=None, timeout=20):
    """Returns (status, headers, parsed JSON or raw bytes). Never raises on HTTP errors."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, resp_headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, resp_headers, raw = err.code, err.headers, err.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw
    return status, resp_headers, payload


# The same proof of work as frontend/js/pow-worker.js, for votes cast from Python.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "contract"))
from paredao_client import solve_pow  # noqa: E402


def api_vote(base, participant):
    """Casts one vote through nginx without a browser; returns the vote response."""
    status, _, ch = http("POST", base + "/api/v1/challenges", body={})
    assert status == 201, (status, ch)
    counter = solve_pow(ch["challenge"], int(ch["difficulty"]))
    status, _, sess = http("POST", base + "/api/v1/sessions",
                           body={"challenge": ch["challenge"], "counter": counter})
    assert status == 201, (status, sess)
    status, _, vote = http("POST", base + "/api/v1/votes",
                           body={"participant": participant, "voteId": str(uuid.uuid4())},
                           headers={"Authorization": "Bearer " + sess["token"]})
    assert status == 202, (status, vote)
    return vote


CHART_PIXELS_JS = """
const canvas = document.getElementById('grafico');
if (!canvas || !window.Chart || !Chart.getChart(canvas)) return null;
const chart = Chart.getChart(canvas);
let sum = 0;
chart.data.datasets.forEach(d => d.data.forEach(v => { sum += Number(v) || 0; }));
const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0, colored = 0;
for (let i = 0; i < px.length; i += 4) {
  if (px[i + 3] === 0) continue;
  painted++;
  const r = px[i], g = px[i + 1], b = px[i + 2];
  if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;   // bars, not grey axes
}
return {width: canvas.width, height: canvas.height, painted: painted, colored: colored, sum: sum};
"""

INLINE_CODE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


class PagesTest(unittest.TestCase):
    """Ordered scenario: the test methods run in name order and share one browser."""

    driver = None
    base = ""
    poll = None
    voted = None          # {"participant": id, "before": total before the browser vote}
    shots = []

    # ---- set-up -----------------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        missing = missing_settings()
        if missing:
            message = "missing environment: " + ", ".join(missing)
            if IN_CI:
                raise AssertionError(message + " (required when CI=true)")
            raise unittest.SkipTest(message)
        if SELENIUM_ERROR is not None:
            message = ("selenium is not importable (%s); run with /usr/bin/python3 and "
                       "apt-get install python3-selenium chromium-driver" % SELENIUM_ERROR)
            if IN_CI:
                raise AssertionError(message)
            raise unittest.SkipTest(message)

        cls.base = os.environ["PAREDAO_WEB_URL"].rstrip("/")
        cls.user = os.environ["PAREDAO_PANEL_USER"]
        cls.password = env_password()
        cls.broker_ctl = shlex.split(os.environ["PAREDAO_BROKER_CTL"])
        with open(os.environ["PAREDAO_ADMIN_CREDENTIAL_FILE"], encoding="utf-8") as fh:
            cls.admin_credential = fh.readline().strip()
        cls.shot_dir = Path(os.environ.get("PAREDAO_SCREENSHOT_DIR", REPO / "docs" / "screenshots"))
        cls.shot_dir.mkdir(parents=True, exist_ok=True)
        cls.download_dir = tempfile.mkdtemp(prefix="paredao-downloads-")

        status, _, body = http("GET", cls.base + "/api/v1/poll")
        if status != 200:
            raise AssertionError("GET /api/v1/poll through nginx answered %s: %r" % (status, body))
        cls.poll = body["poll"]

        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("PAREDAO_CHROMIUM", "/usr/bin/chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--lang=pt-BR", "--disable-extensions",
                    "--hide-scrollbars", "--force-color-profile=srgb"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option("prefs", {
            "download.default_directory": cls.download_dir,
            "download.prompt_for_download": False,
            "intl.accept_languages": "pt-BR,pt",
        })
        service = Service(executable_path=os.environ.get("PAREDAO_CHROMEDRIVER", "/usr/bin/chromedriver"))
        cls.driver = webdriver.Chrome(service=service, options=options)
        cls.driver.set_page_load_timeout(30)
        cls.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": cls.download_dir})

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            cls.driver.quit()
            cls.driver = None
        cls.ensure_open_poll()

    @classmethod
    def ensure_open_poll(cls):
        """The suites after this one vote in the open poll: when the admin tests failed
        half-way (the seeded poll closed, no new one open), open one through the API."""
        if not cls.base or not getattr(cls, "admin_credential", ""):
            return
        status, _, body = http("GET", cls.base + "/api/v1/poll")
        if status == 200 and body["poll"]["state"] == "open":
            return
        auth = {"Authorization": "Bearer " + cls.admin_credential}
        poll_id = "paredao-restaurado-%d" % (int(time.time()) % 100000)
        http("POST", cls.base + "/api/v1/admin/polls", headers=auth, body={
            "id": poll_id, "title": "Paredão restaurado pelos testes",
            "participants": [{"id": "aline", "name": "Aline", "photoUrl": "/img/aline.svg"},
                             {"id": "diego", "name": "Diego", "photoUrl": "/img/diego.svg"}]})
        status, _, body = http("POST", cls.base + "/api/v1/admin/polls/%s/open" % poll_id, headers=auth)
        print("restored an open poll for the later suites: %s %r" % (status, body))

    # ---- helpers ----------------------------------------------------------------------

    def wait(self, condition, timeout=30, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(
            lambda d: condition(d), message)

    def open(self, path):
        self.driver.get(self.base + path)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def csp_violations(self):
        try:
            entries = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [e["message"] for e in entries
                if "Content Security Policy" in e.get("message", "")
                or "Refused to" in e.get("message", "")]

    def totals(self):
        status, _, body = http("GET", self.base + "/api/v1/totals")
        self.assertEqual(status, 200, body)
        return body

    def screenshot(self, name):
        """Full-page PNGs at phone and desktop widths into docs/screenshots/."""
        d = self.driver
        try:
            for label, width, height in SIZES:
                metrics = {"width": width, "height": height, "deviceScaleFactor": 1,
                           "mobile": label == "phone"}
                d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                time.sleep(0.6)   # relayout, chart resize
                full = int(self.js("return Math.ceil(document.documentElement.scrollHeight)") or height)
                metrics["height"] = max(height, min(full, 4000))
                d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                time.sleep(0.4)
                shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
                path = self.shot_dir / ("%s-%s.png" % (name, label))
                path.write_bytes(base64.b64decode(shot["data"]))
                PagesTest.shots.append(str(path))
        finally:
            d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            time.sleep(0.3)

    def wait_for_ballot(self):
        count = len(self.poll["participants"])
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#opcoes input[name=participante]")) == count,
                  30, "the ballot did not show the %d participants" % count)

    def choose(self, participant_id):
        self.driver.find_element(By.CSS_SELECTOR, "label.opcao[data-participant='%s']" % participant_id).click()
        self.assertTrue(self.driver.find_element(By.ID, "opcao-" + participant_id).is_selected())

    def percentages(self, list_selector):
        # one script call, so a refresh of the list cannot interleave with the reads
        return self.js("return Array.from(document.querySelectorAll(arguments[0] + ' [data-percentage]'))"
                       ".map(e => parseFloat(e.dataset.percentage))", list_selector)

    def broker(self, action):
        try:
            proc = subprocess.run(self.broker_ctl + [action], capture_output=True, text=True,
                                  timeout=240, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail("PAREDAO_BROKER_CTL %s timed out" % action)
        self.assertEqual(proc.returncode, 0, "PAREDAO_BROKER_CTL %s failed:\n%s\n%s"
                         % (action, proc.stdout[-2000:], proc.stderr[-2000:]))

    def set_panel_auth(self, enabled):
        headers = {}
        if enabled:
            token = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            headers = {"Authorization": "Basic " + token}
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})

    # ---- tests ------------------------------------------------------------------------

    def test_01_ballot_shows_participants(self):
        self.open("/")
        self.wait_for_ballot()
        d = self.driver
        self.assertEqual(d.find_element(By.TAG_NAME, "html").get_attribute("lang"), "pt-BR")
        for p in self.poll["participants"]:
            label = d.find_element(By.CSS_SELECTOR, "label.opcao[data-participant='%s']" % p["id"])
            self.assertTrue(label.is_displayed(), p)
            self.assertIn(p["name"], label.text)
            radio = d.find_element(By.ID, "opcao-" + p["id"])
            self.assertEqual(radio.get_attribute("type"), "radio")
        # every photo loaded (the fallback counts)
        self.wait(lambda d: self.js(
            "return Array.from(document.querySelectorAll('#opcoes img'))"
            ".every(i => i.complete && i.naturalWidth > 0)"), 15, "participant photos did not load")
        # accessible structure: legend, live regions
        self.assertTrue(d.find_element(By.CSS_SELECTOR, "#cedula fieldset legend").text.strip())
        self.assertEqual(d.find_element(By.ID, "status").get_attribute("aria-live"), "polite")
        self.assertEqual(d.find_element(By.ID, "erro-texto").get_attribute("role"), "alert")
        # the session is prepared in the background, without the viewer doing anything
        self.wait(lambda d: self.js("return !!sessionStorage.getItem('paredao.session.v1')"), 60,
                  "no session token after solving the challenge in the background")
        self.assertEqual(self.csp_violations(), [])
        self.screenshot("ballot")

    def test_02_vote_shows_percentages(self):
        participant = self.poll["participants"][0]["id"]
        before = self.totals()["total"]
        if before == 0:
            # The vote answer carries the latest totals snapshot (refreshed about once a
            # second), which may not hold this very vote yet: with an empty store its
            # percentages would all be 0.0. Count one vote first.
            api_vote(self.base, self.poll["participants"][1]["id"])
            try:
                self.wait(lambda d: self.totals()["total"] >= 1, 30)
            except TimeoutException:
                self.fail("a vote cast through the API never showed up in /api/v1/totals")
            before = self.totals()["total"]
        before_mine = {p["id"]: p["votes"] for p in self.totals()["participants"]}[participant]
        self.open("/")
        self.wait_for_ballot()
        self.choose(participant)
        self.driver.find_element(By.ID, "votar").click()
        self.wait(lambda d: d.find_element(By.ID, "confirmacao").is_displayed(), 60,
                  "no vote confirmation; error shown: %r" % self.driver.find_element(By.ID, "erro-texto").text)
        PagesTest.voted = {"participant": participant, "before": before}
        # The partial "até aquele momento" includes the viewer's own vote.
        shown_mine = int(self.js("return document.querySelector('#parcial li.escolhido [data-votes]').dataset.votes"))
        self.assertGreaterEqual(shown_mine, before_mine + 1, "the confirmation's partial does not count the vote just cast")

        status = self.driver.find_element(By.ID, "status").text
        self.assertIn("Voto registrado", status)
        pcts = self.percentages("#parcial")
        self.assertEqual(len(pcts), len(self.poll["participants"]))
        self.assertAlmostEqual(sum(pcts), 100.0, delta=0.1, msg="percentages %r" % pcts)
        chosen = self.driver.find_elements(By.CSS_SELECTOR, "#parcial li.escolhido")
        self.assertEqual([e.get_attribute("data-participant") for e in chosen], [participant])
        again = self.driver.find_element(By.ID, "votar-novamente")
        self.assertTrue(again.is_displayed())
        self.assertEqual(self.driver.switch_to.active_element.get_attribute("id"), "votar-novamente")
        self.assertEqual(self.csp_violations(), [])
        self.screenshot("ballot-voted")

        again.click()
        self.wait(lambda d: d.find_element(By.ID, "cedula").is_displayed(), 5)
        self.assertFalse(self.driver.find_element(By.ID, "confirmacao").is_displayed())
        self.assertEqual(self.driver.find_element(By.ID, "status").text, "")

    def test_03_result_page_shows_new_total(self):
        if PagesTest.voted is None:
            # The browser vote failed (reported by test_02); vote from Python instead so
            # the result page is still checked.
            before = self.totals()["total"]
            api_vote(self.base, self.poll["participants"][0]["id"])
            PagesTest.voted = {"participant": self.poll["participants"][0]["id"], "before": before}
        expected = PagesTest.voted["before"] + 1
        self.open("/resultado.html")

        def shown_total(d):
            value = d.find_element(By.ID, "total").get_attribute("data-total")
            return int(value) if value else -1

        try:
            self.wait(lambda d: shown_total(d) >= expected, 30)
        except TimeoutException:
            self.fail("result page shows %d votes, expected at least %d"
                      % (shown_total(self.driver), expected))
        pcts = self.percentages("#barras")
        self.assertEqual(len(pcts), len(self.poll["participants"]))
        self.assertAlmostEqual(sum(pcts), 100.0, delta=0.1, msg="percentages %r" % pcts)
        self.assertIn("Atualizado", self.driver.find_element(By.ID, "atualizado").text)
        # it refreshes by itself: the "updated at" time changes
        first = self.driver.find_element(By.ID, "atualizado").text
        self.wait(lambda d: d.find_element(By.ID, "atualizado").text != first, 15,
                  "result page did not refresh itself")
        self.assertEqual(self.csp_violations(), [])
        self.screenshot("result")

    def test_04_panel_requires_password(self):
        for path in ("/painel.html", "/js/painel.js", "/js/painel-admin.js", "/vendor/chart.js/chart.min.js"):
            status, headers, _ = http("GET", self.base + path)
            self.assertEqual(status, 401, path)
            self.assertIn("Basic", headers.get("WWW-Authenticate", ""), path)
        wrong = base64.b64encode(("%s:%s" % (self.user, self.password + "x")).encode()).decode()
        status, _, _ = http("GET", self.base + "/painel.html", headers={"Authorization": "Basic " + wrong})
        self.assertEqual(status, 401)
        right = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
        for path in ("/painel.html", "/js/painel.js", "/js/painel-admin.js", "/vendor/chart.js/chart.min.js"):
            status, _, _ = http("GET", self.base + path, headers={"Authorization": "Basic " + right})
            self.assertEqual(status, 200, path)

    def test_05_panel_shows_hourly_table_and_chart(self):
        self.set_panel_auth(True)
        try:
            self.open("/painel.html")
            d = self.driver
            self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tabela-horas tbody tr[data-hour]")) >= 1,
                      30, "the hourly table stayed empty")
            self.assertGreaterEqual(int(d.find_element(By.ID, "total").get_attribute("data-total")), 1)
            rows = d.find_elements(By.CSS_SELECTOR, "#tabela-participantes tbody tr")
            self.assertEqual(len(rows), len(self.poll["participants"]))
            headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#tabela-horas thead th")]
            self.assertEqual(headers[:2], ["Hora", "Total"])
            for p in self.poll["participants"]:
                self.assertIn(p["name"], headers)

            try:
                info = self.wait(lambda d: (lambda r: r if r and r["colored"] > 100 and r["sum"] > 0 else None)(
                    self.js(CHART_PIXELS_JS)), 20)
            except TimeoutException:
                self.fail("chart not drawn: %r" % self.js(CHART_PIXELS_JS))
            self.assertGreater(info["width"], 100)
            self.assertGreater(info["height"], 100)

            # CSV of the hourly table, made in the browser
            for f in Path(self.download_dir).glob("*"):
                f.unlink()
            d.find_element(By.ID, "baixar-csv").click()
            deadline = time.time() + 15
            files = []
            while time.time() < deadline:
                files = [f for f in Path(self.download_dir).glob("*.csv")]
                if files:
                    break
                time.sleep(0.2)
            self.assertTrue(files, "no CSV downloaded into %s" % self.download_dir)
            text = files[0].read_text(encoding="utf-8-sig")
            lines = [line for line in text.splitlines() if line]
            self.assertTrue(lines[0].startswith("hora_utc,total,"), lines[0])
            hour_rows = len(d.find_elements(By.CSS_SELECTOR, "#tabela-horas tbody tr[data-hour]"))
            self.assertEqual(len(lines) - 1, hour_rows)
            self.assertRegex(lines[1], r"^\d{4}-\d\d-\d\dT\d\d:00:00(\.000)?Z,\d+(,\d+)+$")

            self.assertEqual(self.csp_violations(), [])
            self.screenshot("panel")
        finally:
            self.set_panel_auth(False)

    def test_06_security_headers_and_no_inline_code(self):
        right = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
        for path in ("/", "/resultado.html", "/painel.html"):
            req = urllib.request.Request(self.base + path, headers={"Authorization": "Basic " + right})
            with urllib.request.urlopen(req, timeout=10) as resp:
                headers, html = resp.headers, resp.read().decode("utf-8")
            csp = headers.get("Content-Security-Policy", "")
            self.assertIn("default-src 'self'", csp, path)
            self.assertNotIn("unsafe-inline", csp, path)
            self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff", path)
            self.assertEqual(headers.get("X-Frame-Options"), "DENY", path)
            self.assertTrue(headers.get("Referrer-Policy"), path)
            self.assertIsNone(INLINE_CODE.search(html), "inline script/style/handler in %s" % path)
        status, _, _ = http("GET", self.base + "/metrics")
        self.assertEqual(status, 404)

    def test_06b_api_spellings_that_are_not_routes_are_json_404s(self):
        # A trailing slash, another case or an unknown path under /api/ never reaches a
        # route (so no per-location limit is stepped around); a merged double slash does,
        # under its limits, and the API answers 404 to the unexact spelling.
        for method, path in (("POST", "/api/v1/challenges/"), ("POST", "/api/v1/sessions/"), ("POST", "/api/v1/votes/"),
                             ("GET", "/api/v1/totals/"), ("GET", "/api/v1/Totals"), ("GET", "/api/v2/totals"),
                             ("POST", "//api/v1/challenges"), ("GET", "/api/")):
            status, headers, body = http(method, self.base + path)
            self.assertEqual(status, 404, "%s %s" % (method, path))
            self.assertEqual((body or {}).get("error", {}).get("code"), "not_found", "%s %s: %r" % (method, path, body))
        minted = sum(http("POST", self.base + "/api/v1/challenges/")[0] == 201 for _ in range(20))
        self.assertEqual(minted, 0, "a slashed spelling must not mint challenges")

    def test_07_broker_down_shows_friendly_error(self):
        d = self.driver
        participant = self.poll["participants"][-1]["id"]
        self.open("/")
        self.wait_for_ballot()
        self.wait(lambda d: self.js("return !!sessionStorage.getItem('paredao.session.v1')"), 60,
                  "no session token before stopping the broker")
        self.broker("stop")
        try:
            self.choose(participant)
            d.find_element(By.ID, "votar").click()
            try:
                self.wait(lambda d: d.find_element(By.ID, "erro-texto").text.strip()
                          and d.find_element(By.ID, "erro-repetir").is_displayed(), 60)
            except TimeoutException:
                self.fail("no error shown with the broker stopped; status: %r, confirmation shown: %r"
                          % (d.find_element(By.ID, "status").text,
                             d.find_element(By.ID, "confirmacao").is_displayed()))
            text = d.find_element(By.ID, "erro-texto").text
            self.assertIn(FRIENDLY_ERROR_WORDS, text.lower())
            self.assertNotRegex(text, r"\b(50[0-9]|broker|undefined|null|Error)\b")
            self.assertFalse(d.find_element(By.ID, "confirmacao").is_displayed())
            self.assertEqual(d.find_element(By.ID, "erro-repetir").text, "Tentar novamente")
            self.assertEqual(d.switch_to.active_element.get_attribute("id"), "erro-repetir")
            self.screenshot("ballot-error")
        finally:
            self.broker("start")

        # Once the broker is back, "Tentar novamente" sends the same vote and it goes through.
        deadline = time.time() + 120
        while time.time() < deadline:
            if d.find_element(By.ID, "confirmacao").is_displayed():
                break
            button = d.find_element(By.ID, "erro-repetir")
            if button.is_displayed() and button.get_attribute("aria-busy") != "true":
                button.click()
            time.sleep(3)
        self.assertTrue(d.find_element(By.ID, "confirmacao").is_displayed(),
                        "vote still failing after the broker restart: %r"
                        % d.find_element(By.ID, "erro-texto").text)
        self.assertIn("Voto registrado", d.find_element(By.ID, "status").text)

    # ---- the admin section (last: these change the poll the earlier tests vote in) -------

    def admin_api(self, method, path, body=None):
        return http(method, self.base + "/api/v1/admin" + path, body=body,
                    headers={"Authorization": "Bearer " + self.admin_credential})

    # The polls table is re-rendered on every read of the list: read it in one script
    # call, and retry a click whose button was replaced meanwhile.
    ROW_JS = "return document.querySelector(\"#tabela-enquetes tbody tr[data-poll='\" + arguments[0] + \"']\")"

    def row_state(self, poll_id):
        return self.js(self.ROW_JS + "?.dataset.state ?? null", poll_id)

    def row_text(self, poll_id):
        return self.js(self.ROW_JS + "?.innerText ?? ''", poll_id)

    def click_in_row(self, poll_id, selector):
        deadline = time.time() + 10
        while True:
            try:
                row = self.driver.find_element(By.CSS_SELECTOR, "#tabela-enquetes tbody tr[data-poll='%s']" % poll_id)
                row.find_element(By.CSS_SELECTOR, selector).click()
                return
            except (StaleElementReferenceException, NoSuchElementException):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def admin_error(self):
        return self.driver.find_element(By.ID, "admin-erro").text.strip()

    def open_panel(self):
        """The panel with its basic auth in the URL (the browser then keeps it for the
        page's scripts), not as an extra header: the admin section sends its own
        Authorization header, which an extra header set through DevTools would replace."""
        scheme, rest = self.base.split("://", 1)
        self.driver.get("%s://%s:%s@%s/painel.html" % (scheme, urllib.parse.quote(self.user, safe=""),
                                                        urllib.parse.quote(self.password, safe=""), rest))

    def open_panel_admin(self):
        """Opens the panel and logs in to its admin section (unless this tab already did)."""
        d = self.driver
        self.open_panel()
        self.wait(lambda d: d.find_element(By.ID, "admin-area").is_displayed()
                  or d.find_element(By.ID, "admin-login").is_displayed(), 20, "no admin section")
        if d.find_element(By.ID, "admin-login").is_displayed():
            box = d.find_element(By.ID, "admin-credencial")
            box.clear()
            box.send_keys(self.admin_credential)
            d.find_element(By.ID, "admin-entrar").click()
        try:
            self.wait(lambda d: d.find_element(By.ID, "admin-area").is_displayed(), 20)
        except TimeoutException:
            self.fail("the admin section did not open: %r" % self.admin_error())
        self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tabela-enquetes tbody tr[data-poll]")) >= 1,
                  20, "the polls are not listed")

    def test_08_panel_closes_the_poll_and_the_ballot_shows_the_final_result(self):
        d = self.driver
        current = http("GET", self.base + "/api/v1/poll")[2]["poll"]
        self.assertEqual(current["state"], "open", current)
        # the admin API refuses without (401) and with a wrong credential (403)
        self.assertEqual(http("GET", self.base + "/api/v1/admin/polls")[0], 401)
        status, _, body = http("GET", self.base + "/api/v1/admin/polls", headers={"Authorization": "Bearer produtor:" + "y" * 24})
        self.assertEqual((status, body["error"]["code"]), (403, "admin_forbidden"))
        self.open_panel()
        self.wait(lambda d: d.find_element(By.ID, "admin-login").is_displayed(), 20, "no admin login form")
        # a wrong credential: a pt-BR message, the section stays closed
        name = self.admin_credential.split(":", 1)[0]
        box = d.find_element(By.ID, "admin-credencial")
        box.send_keys(name + ":" + "x" * 24)
        d.find_element(By.ID, "admin-entrar").click()
        self.wait(lambda d: "recusada" in self.admin_error(), 20, "no message for a wrong credential")
        self.assertFalse(d.find_element(By.ID, "admin-area").is_displayed())
        self.assertEqual(self.js("return sessionStorage.getItem('paredao.admin.v1')"), None)

        self.open_panel_admin()
        # kept in this tab's sessionStorage only, never in the URL or a cookie
        self.assertEqual(self.js("return sessionStorage.getItem('paredao.admin.v1')"), self.admin_credential)
        self.assertNotIn(self.admin_credential.split(":", 1)[1], d.current_url)
        self.assertNotIn(self.admin_credential.split(":", 1)[1], self.js("return document.cookie"))
        self.assertEqual(self.js("return localStorage.length"), 0)
        self.wait(lambda d: self.row_state(current["id"]) == "open", 10, "the open poll is not listed as open")
        self.assertIn(current["title"], self.row_text(current["id"]))

        # close, cancel in the confirmation: nothing changes
        self.click_in_row(current["id"], "button.acao-encerrar")
        dialog = d.find_element(By.ID, "confirmar-encerrar")
        self.wait(lambda d: dialog.is_displayed(), 5, "no confirmation before closing")
        self.assertIn(current["title"], d.find_element(By.ID, "confirmar-texto").text)
        d.find_element(By.ID, "confirmar-nao").click()
        self.wait(lambda d: not dialog.is_displayed(), 5)
        self.assertIsNone(self.admin_api("GET", "/polls/" + current["id"])[2]["poll"].get("closedAt"))

        # close, confirmed
        self.click_in_row(current["id"], "button.acao-encerrar")
        self.wait(lambda d: dialog.is_displayed(), 5, "no confirmation before closing")
        d.find_element(By.ID, "confirmar-sim").click()
        try:
            self.wait(lambda d: self.row_state(current["id"]) == "closed", 20)
        except TimeoutException:
            self.fail("the poll did not turn Encerrada in the panel: %r / %r"
                      % (self.row_state(current["id"]), self.admin_error()))
        self.assertIn("Encerrada", self.row_text(current["id"]))
        self.assertIn("encerrada", d.find_element(By.ID, "admin-status").text)

        # the audit log says who, what, from where
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                  "#tabela-auditoria tbody tr[data-action='close'][data-poll='%s']" % current["id"]), 20,
                  "the close is not in the audit log")
        entry = d.find_element(By.CSS_SELECTOR,
                               "#tabela-auditoria tbody tr[data-action='close'][data-poll='%s']" % current["id"])
        cells = [c.text for c in entry.find_elements(By.CSS_SELECTOR, "th, td")]
        self.assertEqual(cells[1], name, cells)
        self.assertEqual(cells[2], "encerrou", cells)
        self.assertEqual(cells[5], "127.0.0.1", cells)
        # the refused credentials: one summary row per window (2 s in this stack), not one per try
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#tabela-auditoria tbody tr[data-action='auth_refused']"), 20,
                  "the wrong credential is not in the audit log")
        refused = d.find_element(By.CSS_SELECTOR, "#tabela-auditoria tbody tr[data-action='auth_refused']")
        self.assertIn("recusa", refused.text)
        self.assertIn("127.0.0.1", refused.text)
        # closing it again: 409
        status, _, body = self.admin_api("POST", "/polls/%s/close" % current["id"])
        self.assertEqual((status, body["error"]["code"]), (409, "poll_not_open"))
        self.assertEqual(self.csp_violations(), [])
        self.screenshot("panel-admin")

        # votes are refused now, and the ballot shows the final result
        status, _, ch = http("POST", self.base + "/api/v1/challenges", body={})
        self.assertEqual(status, 201, ch)
        status, _, body = http("POST", self.base + "/api/v1/sessions",
                               body={"challenge": ch["challenge"], "counter": solve_pow(ch["challenge"], int(ch["difficulty"]))})
        self.assertEqual(status, 201, body)
        status, _, body = http("POST", self.base + "/api/v1/votes",
                               body={"participant": current["participants"][0]["id"], "voteId": str(uuid.uuid4()),
                                     "poll": current["id"]},
                               headers={"Authorization": "Bearer " + body["token"]})
        self.assertEqual((status, body["error"]["code"]), (409, "poll_closed"), body)
        self.open("/")
        try:
            self.wait(lambda d: "Votação encerrada" in d.find_element(By.ID, "confirmacao-titulo").text
                      and d.find_element(By.ID, "confirmacao").is_displayed()
                      and len(d.find_elements(By.CSS_SELECTOR, "#parcial li[data-participant]"))
                      == len(current["participants"]), 30)
        except TimeoutException:
            self.fail("the ballot does not say Votação encerrada: %r" % d.find_element(By.TAG_NAME, "main").text)
        self.assertFalse(d.find_element(By.ID, "cedula").is_displayed(), "the ballot still offers a vote")
        self.assertIn("encerrada", d.find_element(By.ID, "instrucao").text)

        def shown_votes():
            return self.js("return Object.fromEntries(Array.from(document.querySelectorAll('#parcial li[data-participant]'))"
                           ".map(li => [li.dataset.participant, Number(li.querySelector('[data-votes]').dataset.votes)]))")
        final = http("GET", self.base + "/api/v1/totals?poll=" + current["id"])[2]
        if shown_votes() != {p["id"]: p["votes"] for p in final["participants"]}:
            # a vote accepted before the close was still in the queue: the page is reloaded
            # once the totals have settled
            time.sleep(2)
            final = http("GET", self.base + "/api/v1/totals?poll=" + current["id"])[2]
            self.open("/")
            self.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#parcial li[data-participant]")) > 0, 30)
        shown = shown_votes()
        self.assertEqual(shown, {p["id"]: p["votes"] for p in final["participants"]})
        self.assertGreaterEqual(sum(shown.values()), 1)
        self.assertIn(P_FORMAT(final["total"]), d.find_element(By.ID, "parcial-total").text)
        self.assertEqual(self.csp_violations(), [])
        self.screenshot("ballot-closed")
        PagesTest.closed_poll = current

    def test_09_panel_creates_and_opens_a_three_participant_paredao(self):
        d = self.driver
        poll_id = "paredao-painel-%d" % (int(time.time()) % 100000)
        people = [("marina", "Marina"), ("rafael", "Rafael"), ("tati", "Tati")]
        self.open_panel_admin()   # the credential is still in this tab's sessionStorage
        # a problem in the form is told before anything is sent
        d.find_element(By.ID, "enquete-id").send_keys(poll_id)
        d.find_element(By.ID, "enquete-titulo").send_keys("Paredão do painel")
        rows = d.find_elements(By.CSS_SELECTOR, "#form-enquete .participante")
        rows[0].find_element(By.NAME, "pid").send_keys(people[0][0])
        rows[0].find_element(By.NAME, "pname").send_keys(people[0][1])
        d.find_element(By.ID, "enquete-salvar").click()
        self.wait(lambda d: "de 2 a 4 participantes" in self.admin_error(), 5, "no message for one participant")
        for row, (pid, pname) in zip(rows[1:], people[1:]):
            row.find_element(By.NAME, "pid").send_keys(pid)
            row.find_element(By.NAME, "pname").send_keys(pname)
        rows[0].find_element(By.NAME, "pphoto").send_keys("/img/sem-foto.svg")
        d.find_element(By.ID, "enquete-salvar").click()
        try:
            self.wait(lambda d: self.row_state(poll_id) == "draft", 20)
        except TimeoutException:
            self.fail("the draft was not created: %r" % self.admin_error())
        self.assertIn("Rascunho", self.row_text(poll_id))
        # the same id again: 409, in Portuguese
        d.find_element(By.ID, "enquete-id").send_keys(poll_id)
        d.find_element(By.ID, "enquete-titulo").send_keys("De novo")
        for row, (pid, pname) in zip(rows, people):
            row.find_element(By.NAME, "pid").send_keys(pid)
            row.find_element(By.NAME, "pname").send_keys(pname)
        d.find_element(By.ID, "enquete-salvar").click()
        self.wait(lambda d: "Já existe uma votação com esse identificador" in self.admin_error(), 20,
                  "no message for a duplicate id: %r" % self.admin_error())

        # edit the draft's title
        self.click_in_row(poll_id, "button.acao-editar")
        self.assertEqual(d.find_element(By.ID, "enquete-id").get_attribute("value"), poll_id)
        title = d.find_element(By.ID, "enquete-titulo")
        title.clear()
        title.send_keys("Paredão 11 — quem deve sair?")
        d.find_element(By.ID, "enquete-salvar").click()
        self.wait(lambda d: "Paredão 11" in self.row_text(poll_id), 20,
                  "the edited title is not listed: %r" % self.admin_error())

        # open it: no restart, the ballot shows the three at once
        self.click_in_row(poll_id, "button.acao-abrir")
        try:
            self.wait(lambda d: self.row_state(poll_id) == "open", 20)
        except TimeoutException:
            self.fail("the draft did not open: %r" % self.admin_error())
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                  "#tabela-auditoria tbody tr[data-action='open'][data-poll='%s']" % poll_id), 20,
                  "the open is not in the audit log")
        self.assertEqual(self.csp_violations(), [])

        self.open("/")
        try:
            self.wait(lambda d: sorted(e.get_attribute("value") for e in
                                       d.find_elements(By.CSS_SELECTOR, "#opcoes input[name=participante]"))
                      == sorted(p for p, _ in people), 30)
        except TimeoutException:
            self.fail("the ballot does not show the new paredão: %r" % d.find_element(By.TAG_NAME, "main").text)
        self.assertEqual(d.find_element(By.ID, "titulo").text, "Paredão 11 — quem deve sair?")
        for pid, pname in people:
            self.assertIn(pname, d.find_element(By.CSS_SELECTOR, "label.opcao[data-participant='%s']" % pid).text)
        self.assertTrue(d.find_element(By.ID, "cedula").is_displayed())
        # and it takes votes: one from the browser
        self.wait(lambda d: self.js("return !!sessionStorage.getItem('paredao.session.v1')"), 60,
                  "no session token for the new paredão")
        self.choose("rafael")
        d.find_element(By.ID, "votar").click()
        self.wait(lambda d: d.find_element(By.ID, "confirmacao").is_displayed(), 60,
                  "no vote confirmation in the new paredão: %r" % d.find_element(By.ID, "erro-texto").text)
        self.assertIn("Rafael", d.find_element(By.ID, "status").text)
        self.assertEqual(self.csp_violations(), [])
        PagesTest.new_poll = poll_id

    def test_10_panel_shows_a_past_polls_result(self):
        closed = getattr(PagesTest, "closed_poll", None)
        if closed is None:
            self.skipTest("no poll was closed (test_08 failed)")
        d = self.driver
        final = http("GET", self.base + "/api/v1/totals?poll=" + closed["id"])[2]
        self.open_panel_admin()
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#seletor-enquete option[value='%s']" % closed["id"]),
                  20, "the closed poll is not in the selector")
        self.click_in_row(closed["id"], "button.acao-resultado")
        self.assertEqual(d.find_element(By.ID, "seletor-enquete").get_attribute("value"), closed["id"])
        try:
            self.wait(lambda d: d.find_element(By.ID, "enquete").text == closed["title"]
                      and d.find_element(By.ID, "total").get_attribute("data-total") == str(final["total"]), 20)
        except TimeoutException:
            self.fail("the panel does not show the closed poll's result: %r, %r"
                      % (d.find_element(By.ID, "enquete").text, d.find_element(By.ID, "total").text))
        names = [r.find_element(By.TAG_NAME, "th").text
                 for r in d.find_elements(By.CSS_SELECTOR, "#tabela-participantes tbody tr")]
        self.assertEqual(names, [p["name"] for p in closed["participants"]])
        self.assertGreaterEqual(len(d.find_elements(By.CSS_SELECTOR, "#tabela-horas tbody tr[data-hour]")), 1)
        # back to the current poll: the new paredão
        Select(d.find_element(By.ID, "seletor-enquete")).select_by_value("")
        self.wait(lambda d: d.find_element(By.ID, "enquete").text == "Paredão 11 — quem deve sair?", 20,
                  "the current poll is not shown again")
        self.assertEqual(self.csp_violations(), [])


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(PagesTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    bad = result.failures + result.errors
    failed = len(bad) + len(result.unexpectedSuccesses)
    failed_tests = len([t for t, _ in bad if isinstance(t, unittest.TestCase)])
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - failed_tests - skipped - len(result.unexpectedSuccesses))
    if PagesTest.shots:
        print("screenshots: " + ", ".join(sorted(set(PagesTest.shots))))
    print("browser: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
