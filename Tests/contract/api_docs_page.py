#!/usr/bin/python3
"""/api/docs/ in headless Chromium (Debian's python3-selenium and chromium-driver): Swagger UI
renders every operation of docs/openapi.yaml, the console shows no error (no script or style
refused by the Content-Security-Policy, no failed load), and the page came with the CSP.

    /usr/bin/python3 Tests/contract/api_docs_page.py http://127.0.0.1:8000

Ends with "N passed, N failed".
"""

import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paredao_client  # noqa: E402
from selenium import webdriver
from selenium.webdriver.chrome.service import Service



def main():
    base = sys.argv[1].rstrip("/")
    results = []
    with urllib.request.urlopen(base + "/api/docs/", timeout=10) as resp:
        csp = resp.headers.get("Content-Security-Policy", "")
    results.append(("the page is served with script-src 'self'", csp[:60], [] if "script-src 'self'" in csp else ["no CSP with script-src 'self'"]))

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(base + "/api/docs/")
        deadline = time.monotonic() + 15
        paths = set()
        while time.monotonic() < deadline:
            paths = {e.get_attribute("data-path") for e in driver.find_elements("css selector", ".opblock-summary-path")}
            if len(paths) >= 8:
                break
            time.sleep(0.2)
        wanted = {"/api/v1/challenges", "/api/v1/sessions", "/api/v1/votes", "/api/v1/totals", "/total", "/api/v1/poll", "/healthz", "/readyz"}
        missing = wanted - paths
        results.append(("Swagger UI renders every path", f"{len(driver.find_elements('css selector', '.opblock'))} operations",
                        [f"missing {sorted(missing)}"] if missing else []))
        titles = driver.find_elements("css selector", ".info .title")
        title = titles[0].text.splitlines()[0].strip() if titles else ""
        results.append(("the document's title is shown", title, [] if "Paredão" in title else [f"title {title!r}"]))
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        results.append(("no console errors (CSP refusals, failed loads)", f"{len(errors)} messages", [m[:200] for m in errors]))
    finally:
        driver.quit()

    return paredao_client.report(results)


if __name__ == "__main__":
    sys.exit(main())
