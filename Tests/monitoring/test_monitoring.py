#!/usr/bin/env python3
"""Tests for monitoring/: Prometheus config and rules, consoles, Grafana
dashboard, monitoring.sh, lnav format and views, logs.sh.

Run:  bash Tests/monitoring/run.sh      (or python3 Tests/monitoring/test_monitoring.py)
Needs: prometheus (promtool), prometheus-alertmanager (amtool), lnav, curl;
       optional: shellcheck, chromium (tests skipped without them).
Ends with a line "N passed, N failed[, N skipped]"; exits non-zero on failure.

Nothing here uses the real backend: a throwaway Prometheus and Alertmanager
(on free loopback ports, data in a temporary folder) scrape
fake_exporters.py, which serves the contract's metric names.
"""

import csv
import datetime
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MON = REPO / "monitoring"
MONITORING_SH = MON / "monitoring.sh"
LOGS_SH = MON / "logs.sh"
CONSOLES = ["executions.html", "latency.html", "errors.html"]

# Queries that may legitimately return no series (no alert is firing).
MAY_BE_EMPTY = re.compile(r"\bALERTS\b")


def need(tool, package):
    if shutil.which(tool) is None:
        raise AssertionError(f"{tool} not found: apt-get install {package} "
                             f"(monitoring/install-deps.sh installs everything)")


def run(cmd, env=None, timeout=120, check=False, **kw):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run([str(c) for c in cmd], env=full_env, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, data=None, timeout=10):
    req = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def process_alive(pid):
    """False for missing and zombie processes (kill -0 succeeds on zombies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# ------------------------------------------------------------ query extraction

def _read_js_string(text, i):
    quote = text[i]
    j = i + 1
    out = []
    while text[j] != quote:
        if text[j] == "\\":
            out.append(text[j + 1])
            j += 2
        else:
            out.append(text[j])
            j += 1
    return "".join(out), j + 1


def console_queries(path):
    """Every PromQL expression of a console: PromConsole.Graph expr (a string
    or a list of strings) and prom_query_drilldown args."""
    text = Path(path).read_text()
    queries = []
    for m in re.finditer(r"\bexpr:\s*", text):
        i = m.end()
        if text[i] in "\"'":
            q, _ = _read_js_string(text, i)
            queries.append(q)
        elif text[i] == "[":
            i += 1
            while True:
                while text[i] in " \t\r\n,":
                    i += 1
                if text[i] == "]":
                    break
                assert text[i] in "\"'", f"{path}: unexpected {text[i:i + 20]!r} in expr list"
                q, i = _read_js_string(text, i)
                queries.append(q)
        else:
            raise AssertionError(f"{path}: cannot read expr at {text[i:i + 30]!r}")
    for m in re.finditer(r'prom_query_drilldown"\s*\(args\s+', text):
        q, _ = _read_js_string(text, m.end())
        queries.append(q)
    return queries


def grafana_queries(path):
    dash = json.loads(Path(path).read_text())
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return out


# ----------------------------------------------------------------- static tests

class StaticConfigTests(unittest.TestCase):
    """promtool / amtool checks and file structure; no processes."""

    def test_promtool_check_rules(self):
        need("promtool", "prometheus")
        p = run(["promtool", "check", "rules", MON / "rules" / "paredao.rules.yml"], check=True)
        self.assertIn("SUCCESS: 9 rules found", p.stdout)

    def test_promtool_test_rules(self):
        need("promtool", "prometheus")
        p = run(["promtool", "test", "rules", MON / "rules" / "paredao.rules.test.yml"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_rules_tests_cover_every_alert_firing_and_quiet(self):
        rules_text = (MON / "rules" / "paredao.rules.yml").read_text()
        alerts = re.findall(r"^\s*- alert:\s*(\S+)", rules_text, re.M)
        self.assertEqual(len(alerts), 9)
        tests_text = (MON / "rules" / "paredao.rules.test.yml").read_text()
        # Split into alert_rule_test entries: alertname + whether exp_alerts is empty.
        entries = re.findall(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*(\[\])?", tests_text)
        for a in alerts:
            firing = [e for e in entries if e[0] == a and e[1] == ""]
            quiet = [e for e in entries if e[0] == a and e[1] == "[]"]
            self.assertTrue(firing, f"no firing test for {a}")
            self.assertTrue(quiet, f"no not-firing test for {a}")

    def test_rendered_config_default_and_overridden(self):
        need("promtool", "prometheus")
        with tempfile.TemporaryDirectory() as d:
            p = run([MONITORING_SH, "config"], check=True)
            cfg = Path(d) / "default.yml"
            cfg.write_text(p.stdout)
            for want in ('"127.0.0.1:9101"', '"127.0.0.1:9102"', '"127.0.0.1:15692"',
                         '"127.0.0.1:9093"', "scrape_interval: 2s", "job_name: paredao-api",
                         "job_name: paredao-consumer", "job_name: rabbitmq",
                         '"127.0.0.1:9103"', "job_name: paredao-supervisor",
                         str(MON / "rules" / "paredao.rules.yml")):
                self.assertIn(want, p.stdout)
            c = run(["promtool", "check", "config", cfg])
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            self.assertIn("SUCCESS", c.stdout + c.stderr)

            env = {"PAREDAO_API_METRICS_TARGET": "127.0.0.1:19101",
                   "PAREDAO_CONSUMER_METRICS_TARGET": "localhost:19102",
                   "PAREDAO_RABBITMQ_METRICS_TARGET": "127.0.0.1:25692",
                   "PAREDAO_SCRAPE_INTERVAL": "5s", "PAREDAO_EVAL_INTERVAL": "5s",
                   "PAREDAO_AM_LISTEN": "127.0.0.1:19093"}
            p = run([MONITORING_SH, "config"], env=env, check=True)
            for want in ('"127.0.0.1:19101"', '"localhost:19102"', '"127.0.0.1:25692"',
                         '"127.0.0.1:19093"', "scrape_interval: 5s", "scrape_timeout: 5s"):
                self.assertIn(want, p.stdout)
            cfg.write_text(p.stdout)
            c = run(["promtool", "check", "config", cfg])
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_bad_settings_are_refused(self):
        p = run([MONITORING_SH, "config"], env={"PAREDAO_API_METRICS_TARGET": "http://x:1/metrics"})
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run([MONITORING_SH, "config"], env={"PAREDAO_SCRAPE_INTERVAL": "fast"})
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_amtool_check_config(self):
        need("amtool", "prometheus-alertmanager")
        p = run(["amtool", "check-config", MON / "alertmanager.yml"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_help_and_usage_exit_codes(self):
        p = run([MONITORING_SH, "--help"])
        self.assertEqual(p.returncode, 0)
        for var in ("PAREDAO_PROM_LISTEN", "PAREDAO_AM_LISTEN", "PAREDAO_API_METRICS_TARGET",
                    "PAREDAO_CONSUMER_METRICS_TARGET", "PAREDAO_RABBITMQ_METRICS_TARGET",
                    "PAREDAO_SCRAPE_INTERVAL", "--data", "--timeout"):
            self.assertIn(var, p.stdout)
        self.assertEqual(run([MONITORING_SH]).returncode, 2)
        self.assertEqual(run([MONITORING_SH, "start", "--bogus"]).returncode, 2)
        self.assertEqual(run([MONITORING_SH, "frobnicate"]).returncode, 2)
        with tempfile.TemporaryDirectory() as d:
            p = run([MONITORING_SH, "status", "--data", d])
            self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
            self.assertIn("not running", p.stdout)
            p = run([MONITORING_SH, "stop", "--data", d])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run([LOGS_SH, "--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("--query", p.stdout)
        self.assertEqual(run([LOGS_SH]).returncode, 2)
        self.assertEqual(run([LOGS_SH, "--query", "nope"]).returncode, 2)
        self.assertEqual(run([LOGS_SH, "--live"], stdin=subprocess.DEVNULL).returncode, 2)

    def test_shellcheck(self):
        if shutil.which("shellcheck") is None:
            self.skipTest("shellcheck not installed")
        scripts = [MONITORING_SH, LOGS_SH] + sorted(HERE.glob("*.sh")) + sorted(MON.glob("*.sh"))
        p = run(["shellcheck"] + sorted(set(scripts)))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_consoles_structure(self):
        for name in CONSOLES:
            text = (MON / "consoles" / name).read_text()
            self.assertIn('{{ template "head" . }}', text)
            self.assertIn('{{ template "paredao_live_tail" . }}', text, f"{name} is not live")
            self.assertIn("PromConsole.Graph", text)
            self.assertGreaterEqual(len(console_queries(MON / "consoles" / name)), 8, name)
        lib = (MON / "console_libraries" / "menu.lib").read_text()
        self.assertIn("prom_graph_refresh_button", lib)
        self.assertRegex(lib, r"setInterval\(function \(\) \{[^}]*click\(\)", "no live refresh")
        self.assertIn("5000", lib)
        self.assertTrue((MON / "console_libraries" / "prom.lib").is_file())

    def test_grafana_dashboard_structure(self):
        dash = json.loads((MON / "grafana" / "paredao.json").read_text())
        self.assertEqual(dash["uid"], "paredao")
        rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
        self.assertEqual(rows, ["Executions", "Latency", "Errors"])
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "duplicate panel ids")
        ds_vars = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
        self.assertEqual(ds_vars[0]["name"], "datasource")
        for p in dash["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            self.assertTrue(p["targets"], p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
        self.assertGreaterEqual(len(grafana_queries(MON / "grafana" / "paredao.json")), 30)
        # No two panels overlap on the 24-column grid.
        cells = {}
        for p in dash["panels"]:
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = p["title"]


# --------------------------------------------------------- live Prometheus tests

class LivePrometheusTests(unittest.TestCase):
    """monitoring.sh starts Prometheus + Alertmanager on free ports; they scrape
    fake_exporters.py. Every dashboard query must evaluate; alerts must fire."""

    exporter = None
    tmp = None
    env = None
    data = None

    @classmethod
    def setUpClass(cls):
        need("prometheus", "prometheus")
        need("prometheus-alertmanager", "prometheus-alertmanager")
        need("curl", "curl")
        cls.tmp = tempfile.mkdtemp(prefix="paredao-mon-test.")
        cls.data = Path(cls.tmp) / "mon"
        cls.log_dir = Path(cls.tmp) / "log"
        cls.exporter = subprocess.Popen(
            [sys.executable, str(HERE / "fake_exporters.py"), "--max-seconds", "600",
             "--http-api", "--log-dir", str(cls.log_dir)],
            stdout=subprocess.PIPE, text=True)
        ports = json.loads(cls.exporter.stdout.readline())
        cls.ports = ports
        cls.prom = f"127.0.0.1:{free_port()}"
        cls.am = f"127.0.0.1:{free_port()}"
        cls.env = {
            "PAREDAO_PROM_LISTEN": cls.prom, "PAREDAO_AM_LISTEN": cls.am,
            "PAREDAO_API_METRICS_TARGET": f"127.0.0.1:{ports['api']}",
            "PAREDAO_CONSUMER_METRICS_TARGET": f"127.0.0.1:{ports['consumer']}",
            "PAREDAO_RABBITMQ_METRICS_TARGET": f"127.0.0.1:{ports['rabbitmq']}",
            "PAREDAO_SUPERVISOR_METRICS_TARGET": f"127.0.0.1:{ports['supervisor']}",
            "PAREDAO_SCRAPE_INTERVAL": "1s", "PAREDAO_EVAL_INTERVAL": "1s",
        }
        t0 = time.monotonic()
        p = run([MONITORING_SH, "start", "--data", cls.data, "--timeout", "30"], env=cls.env)
        if p.returncode != 0:
            cls._teardown()
            raise AssertionError(f"monitoring.sh start failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        cls.start_seconds = time.monotonic() - t0
        # rate(...[1m]) needs two samples of every series; wait for real data.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = cls.query("sum(rate(paredao_consumer_commit_seconds_count[1m])) > 0")
                if r["data"]["result"]:
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        time.sleep(2)

    @classmethod
    def _teardown(cls):
        if cls.data:
            run([MONITORING_SH, "stop", "--data", cls.data], env=cls.env or {})
        if cls.exporter:
            cls.exporter.send_signal(signal.SIGTERM)
            try:
                cls.exporter.wait(10)
            except subprocess.TimeoutExpired:
                cls.exporter.kill()
                cls.exporter.wait()
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._teardown()

    @classmethod
    def query(cls, expr):
        url = f"http://{cls.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return http_json(url)

    def check_query(self, where, expr, require_data=True):
        try:
            r = self.query(expr)
        except urllib.error.HTTPError as e:
            self.fail(f"{where}: {expr}\n  -> HTTP {e.code}: {e.read().decode()[:300]}")
        self.assertEqual(r["status"], "success", f"{where}: {expr}: {r}")
        now = time.time()
        url = f"http://{self.prom}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": now - 120, "end": now, "step": 2})
        try:
            rr = http_json(url)
        except urllib.error.HTTPError as e:
            self.fail(f"{where} (range): {expr}\n  -> HTTP {e.code}: {e.read().decode()[:300]}")
        self.assertEqual(rr["status"], "success", f"{where}: {expr}")
        if require_data and not MAY_BE_EMPTY.search(expr):
            self.assertTrue(r["data"]["result"], f"{where}: no data for {expr}")
        return r

    def test_a_monitoring_sh_status_and_targets(self):
        self.assertLess(self.start_seconds, 20)
        p = run([MONITORING_SH, "status", "--data", self.data], env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"prometheus: running \(pid \d+, .*ready\)")
        self.assertRegex(p.stdout, r"alertmanager: running \(pid \d+, .*ready\)")
        p = run([MONITORING_SH, "targets", "--data", self.data], env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        jobs = {line.split()[0] for line in p.stdout.splitlines()}
        self.assertEqual(jobs, {"paredao-api", "paredao-consumer", "paredao-supervisor", "rabbitmq", "prometheus"})
        # A second start is a no-op.
        p = run([MONITORING_SH, "start", "--data", self.data], env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("already running", p.stdout)

    def test_b_rules_loaded_and_healthy(self):
        r = http_json(f"http://{self.prom}/api/v1/rules")
        rules = [rule for g in r["data"]["groups"] for rule in g["rules"]]
        self.assertEqual(len(rules), 9)
        for rule in rules:
            self.assertEqual(rule["health"], "ok", rule)
        firing = [a for a in http_json(f"http://{self.prom}/api/v1/alerts")["data"]["alerts"]
                  if a["state"] == "firing"]
        self.assertEqual(firing, [], "no alert should fire while everything is healthy")

    def test_c_every_console_query_evaluates(self):
        n = 0
        for name in CONSOLES:
            for expr in console_queries(MON / "consoles" / name):
                self.check_query(name, expr)
                n += 1
        self.assertGreaterEqual(n, 40)
        print(f"\n    {n} console queries evaluated", file=sys.stderr)

    def test_d_every_grafana_query_evaluates(self):
        n = 0
        for title, expr in grafana_queries(MON / "grafana" / "paredao.json"):
            self.check_query(f"grafana: {title}", expr)
            n += 1
        print(f"\n    {n} Grafana queries evaluated", file=sys.stderr)

    def test_e_consoles_render(self):
        for name in CONSOLES:
            url = f"http://{self.prom}/consoles/{name}"
            with urllib.request.urlopen(url, timeout=10) as r:
                self.assertEqual(r.status, 200, name)
                body = r.read().decode()
            self.assertIn("Paredão", body)
            self.assertNotIn("error executing template", body)
            self.assertIn("prom_graph_refresh_button", body)
            self.assertIn("new PromConsole.Graph", body)
            # The right-hand table queries ran server-side and found data.
            self.assertRegex(body, r'class="prom_query_drilldown"[^>]*>\s*[0-9]')

    def test_f_consoles_draw_in_chromium(self):
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            self.skipTest("chromium not installed")
        drawn = []
        for name in CONSOLES:
            url = f"http://{self.prom}/consoles/{name}"
            p = run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,900", "--virtual-time-budget=8000",
                     f"--user-data-dir={self.tmp}/chromium", "--dump-dom", url], timeout=90)
            dom = p.stdout
            graphs = len(re.findall(r"new PromConsole\.Graph", dom))
            svgs = len(re.findall(r'<td class="rickshaw_graph"[^>]*><svg', dom))
            self.assertGreater(graphs, 0, f"{name}: no DOM ({p.stderr[-500:]})")
            self.assertNotIn("Error loading data", dom, name)
            # Every graph but the alerts one (empty while nothing fires) drew.
            self.assertGreaterEqual(svgs, graphs - 1, f"{name}: {svgs} of {graphs} graphs drawn")
            drawn.append(f"{name} {svgs}/{graphs}")
        print(f"\n    graphs drawn by Chromium: {', '.join(drawn)}", file=sys.stderr)

    def test_z_broker_outage_fires_alerts(self):
        err_expr = "sum(rate(paredao_http_requests_total{job='paredao-api',status=~'5..'}[1m]))"
        before = float(self.query(err_expr)["data"]["result"][0]["value"][1])
        urllib.request.urlopen(f"http://127.0.0.1:{self.ports['api']}/control?broker=down", timeout=5).read()
        try:
            t0 = time.monotonic()
            firing = set()
            while time.monotonic() - t0 < 45:
                alerts = http_json(f"http://{self.prom}/api/v1/alerts")["data"]["alerts"]
                firing = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
                if {"ParedaoBrokerDown", "RabbitMQDown"} <= firing:
                    break
                time.sleep(1)
            fired_after = time.monotonic() - t0
            print(f"\n    broker alerts firing after {fired_after:.1f} s: {sorted(firing)}", file=sys.stderr)
            self.assertIn("ParedaoBrokerDown", firing)
            self.assertIn("RabbitMQDown", firing)
            after = float(self.query(err_expr)["data"]["result"][0]["value"][1])
            self.assertGreater(after, before * 10, "the 5xx series did not rise")
            # Alertmanager received it.
            deadline = time.monotonic() + 20
            names = set()
            while time.monotonic() < deadline:
                am_alerts = http_json(f"http://{self.am}/api/v2/alerts")
                names = {a["labels"]["alertname"] for a in am_alerts}
                if "ParedaoBrokerDown" in names:
                    break
                time.sleep(1)
            self.assertIn("ParedaoBrokerDown", names)
            # The errors console shows it.
            with urllib.request.urlopen(f"http://{self.prom}/consoles/errors.html", timeout=10) as r:
                body = r.read().decode()
            self.assertRegex(body, r"API → RabbitMQ</td>\s*<td>\s*<a[^>]*>0</a>")
        finally:
            urllib.request.urlopen(f"http://127.0.0.1:{self.ports['api']}/control?broker=up", timeout=5).read()
        # And stops firing once the broker is back.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            alerts = http_json(f"http://{self.prom}/api/v1/alerts")["data"]["alerts"]
            if not any(a["labels"]["alertname"] == "ParedaoBrokerDown" for a in alerts):
                break
            time.sleep(1)
        else:
            self.fail("ParedaoBrokerDown still active 30 s after the broker came back")


    def test_zz_e2e_script_against_stand_in_backend(self):
        """Rehearse e2e_broker_outage.sh with fake_exporters.py's stand-in API."""
        env = {
            "PAREDAO_API_URL": f"http://127.0.0.1:{self.ports['http']}",
            "PAREDAO_PROM_URL": f"http://{self.prom}",
            "PAREDAO_AM_URL": f"http://{self.am}",
            "PAREDAO_LOG_DIR": str(self.log_dir),
            "PAREDAO_BROKER_CTL": f"{sys.executable} {HERE / 'fake_exporters.py'} --ctl http://127.0.0.1:{self.ports['api']}",
            "E2E_ALERTS": "ParedaoBrokerDown",
            "E2E_ALERT_TIMEOUT": "45",
            "E2E_RECOVERY_TIMEOUT": "20",
        }
        p = run(["bash", HERE / "e2e_broker_outage.sh"], env=env, timeout=240)
        # Echo the script's report, less its own "N passed, N failed" line.
        shown = [line for line in p.stdout.splitlines() if not re.match(r"^\d+ passed, \d+ failed", line)]
        print("\n" + "\n".join("    " + line for line in shown), file=sys.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^\d+ passed, 0 failed$")
        self.assertIn("PASS: alert ParedaoBrokerDown firing", p.stdout)


class MonitoringLifecycleTests(unittest.TestCase):
    """start / status / stop by PID, without touching processes it did not start."""

    def test_start_stop_only_own_processes(self):
        need("prometheus", "prometheus")
        with tempfile.TemporaryDirectory() as d:
            env = {"PAREDAO_PROM_LISTEN": f"127.0.0.1:{free_port()}",
                   "PAREDAO_AM_LISTEN": f"127.0.0.1:{free_port()}"}
            data = Path(d) / "m"
            p = run([MONITORING_SH, "start", "--data", data, "--no-alertmanager"], env=env)
            try:
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                pid = int((data / "prometheus.pid").read_text())
                self.assertTrue(process_alive(pid))
                p = run([MONITORING_SH, "status", "--data", data], env=env)
                self.assertEqual(p.returncode, 0, p.stdout)
                self.assertIn("alertmanager: not started", p.stdout)
                p = run([MONITORING_SH, "wait-ready", "--data", data, "--timeout", "5"], env=env)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                # A second instance on the same port is refused.
                p2 = run([MONITORING_SH, "start", "--data", Path(d) / "other", "--no-alertmanager"], env=env)
                self.assertEqual(p2.returncode, 1, p2.stdout + p2.stderr)
                self.assertIn("already answers", p2.stderr)
            finally:
                p = run([MONITORING_SH, "stop", "--data", data], env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("prometheus: stopped", p.stdout)
            self.assertFalse(process_alive(pid))
            self.assertFalse((data / "prometheus.pid").exists())
            self.assertEqual(run([MONITORING_SH, "status", "--data", data], env=env).returncode, 3)

            # A PID file naming somebody else's process: stop leaves it alone.
            sleeper = subprocess.Popen(["sleep", "60"])
            try:
                (data / "prometheus.pid").write_text(f"{sleeper.pid}\n")
                p = run([MONITORING_SH, "stop", "--data", data], env=env)
                self.assertEqual(p.returncode, 0)
                self.assertIn("stale", p.stdout)
                self.assertIsNone(sleeper.poll(), "stop killed a process it did not start")
            finally:
                sleeper.kill()
                sleeper.wait()


# ------------------------------------------------------------------ lnav tests

class LogQueryTests(unittest.TestCase):
    """logs.sh and the lnav format/views on a generated log with known counts."""

    RECENT = {"ERROR": 4, "WARNING": 3, "INFO": 10, "DEBUG": 2}   # last minute
    OLD = {"ERROR": 6, "INFO": 5}                                 # 5 minutes ago

    def setUp(self):
        need("lnav", "lnav")
        self.dir = tempfile.mkdtemp(prefix="paredao-logs-test.")
        now = datetime.datetime.now(datetime.timezone.utc)

        def ts(seconds_ago):
            t = now - datetime.timedelta(seconds=seconds_ago)
            return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

        api, consumer = [], []
        self.newest_error_id = None
        age = 40.0
        for level, n in self.RECENT.items():
            for i in range(n):
                age -= 1.5
                rec = {"ts": ts(age), "level": level, "logger": "VoteAPI",
                       "message": f"{level.lower()} event {i}", "request_id": f"req-{level}-{i}"}
                if level == "ERROR":
                    rec.update(message="Broker unavailable", route="/api/v1/votes",
                               status="503", duration_ms="0.412")
                elif level == "INFO":
                    rec.update(message="Vote accepted", route="/api/v1/votes", status="202",
                               duration_ms="3.1")
                (consumer if level == "DEBUG" else api).append(rec)
        for level, n in self.OLD.items():
            for i in range(n):
                rec = {"ts": ts(300 + i), "level": level, "logger": "VoteConsumer",
                       "message": f"old {level.lower()} {i}"}
                consumer.append(rec)
        # One ERROR in the consumer log, the newest error of all.
        consumer.append({"ts": ts(1), "level": "ERROR", "logger": "VoteConsumer",
                         "message": "Commit failed", "request_id": "req-newest"})
        self.expected_recent = dict(self.RECENT, ERROR=self.RECENT["ERROR"] + 1)
        self.total_errors = self.RECENT["ERROR"] + 1 + self.OLD["ERROR"]
        self.total = sum(self.RECENT.values()) + sum(self.OLD.values()) + 1
        for name, recs in (("api.log", api), ("consumer.log", consumer)):
            recs.sort(key=lambda r: r["ts"])
            with open(Path(self.dir) / name, "w") as f:
                for r in recs:
                    f.write(json.dumps(r, separators=(",", ":")) + "\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self, *args, env=None):
        return run([LOGS_SH, "--dir", self.dir, *args], env=env, timeout=60)

    def test_levels_last_minute(self):
        p = self.logs("--query", "levels-1m", "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        got = {r["level"]: int(r["events"]) for r in rows}
        self.assertEqual(got, self.expected_recent)
        self.assertEqual([r["level"] for r in rows], ["ERROR", "WARNING", "INFO", "DEBUG"])

    def test_levels_table_and_json(self):
        p = self.logs("--query", "levels-1m")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"ERROR\s+5\b")
        p = self.logs("--query", "levels-1m", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual({r["level"]: r["events"] for r in json.loads(p.stdout)}, self.expected_recent)

    def test_errors_last_minute_is_a_bare_number(self):
        p = self.logs("--query", "errors-1m")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "5")

    def test_counts_do_not_depend_on_local_timezone(self):
        p = self.logs("--query", "errors-1m", env={"TZ": "America/Sao_Paulo"})
        self.assertEqual(p.stdout.strip(), "5", p.stderr)

    def test_last_errors(self):
        p = self.logs("--query", "last-errors", "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = json.loads(p.stdout)
        self.assertEqual(len(rows), self.total_errors)
        self.assertEqual(rows[0]["request_id"], "req-newest")
        self.assertEqual(rows[0]["message"], "Commit failed")
        self.assertEqual(rows[1]["status"], "503")
        times = [r["log_time"] for r in rows]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_http_last_minute(self):
        p = self.logs("--query", "http-1m", "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = {(r["route"], r["status"]): int(r["events"]) for r in csv.DictReader(io.StringIO(p.stdout))}
        self.assertEqual(got, {("/api/v1/votes", "503"): 4, ("/api/v1/votes", "202"): 10})

    def test_every_line_parsed_by_the_format(self):
        p = self.logs("--sql", "SELECT count(*) AS n FROM paredao_log", "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines()[1], str(self.total))
        p = self.logs("--sql", "SELECT log_format, count(*) AS n FROM all_logs GROUP BY log_format",
                      "--format", "csv")
        self.assertEqual(p.stdout.splitlines()[1:], [f"paredao_log,{self.total}"])

    def test_sql_errors_fail(self):
        p = self.logs("--sql", "SELECT nope FROM nowhere")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such table", p.stderr)

    def test_missing_log_files_fail(self):
        p = run([LOGS_SH, "--dir", Path(self.dir) / "absent", "--query", "levels-1m"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("no log file", p.stderr)

    def test_format_has_no_lnav_warnings(self):
        with tempfile.TemporaryDirectory() as cfg:
            fmt = Path(cfg) / "formats" / "paredao"
            fmt.mkdir(parents=True)
            shutil.copy(MON / "lnav" / "paredao_log.json", fmt)
            shutil.copy(MON / "lnav" / "paredao_views.sql", fmt)
            p = run(["lnav", "-W", "-I", cfg, "-n", "-c", ";SELECT 1", Path(self.dir) / "api.log"],
                    env={"TZ": "UTC"})
            self.assertEqual(p.returncode, 0)
            self.assertNotIn("warning", p.stderr.lower(), p.stderr)
            self.assertNotIn("error", p.stderr.lower(), p.stderr)


# ------------------------------------------------------------------- runner

def main():
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    names = sys.argv[1:]
    if names:
        suite.addTests(loader.loadTestsFromNames(names, sys.modules[__name__]))
    else:
        for cls in (StaticConfigTests, LogQueryTests, MonitoringLifecycleTests, LivePrometheusTests):
            suite.addTests(loader.loadTestsFromTestCase(cls))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    t0 = time.monotonic()
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"monitoring tests took {time.monotonic() - t0:.1f} s")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
