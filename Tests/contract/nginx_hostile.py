#!/usr/bin/env python3
"""What one hostile client can do through nginx (issue 27), against the contract stack:

- the totals cache: a request spelled to make nginx and the API read different `poll`s
  (case, duplicates, empty, encoded, extra parameters) must not change what the plain
  `/api/v1/totals` and `/total` show everybody else: the current poll, as the API says;
- made-up methods and paths: 1,000 of each through nginx leave the API's metric series
  where they were, and every made-up method on an API route is nginx's `405` in JSON;
- the admin allowlist: an nginx rendered with `--admin-allow 10.0.0.0/8` answers the
  tests' 127.0.0.1 `403 forbidden_network` on `/api/v1/admin/`, and its public routes work;
- bodies: a 2 KiB vote is `413`, an admin body over 8 KiB is `413`, one under it reaches
  the API; a body that stops for 6 s is cut (`client_body_timeout 5s`).

    python3 Tests/contract/nginx_hostile.py --web http://127.0.0.1:18400 \\
        --api http://127.0.0.1:18480 --metrics http://127.0.0.1:19401/metrics \\
        --allowlist-web http://127.0.0.1:18402 --admin-token var/test/contract/admin-token

Needs a second poll that is not a draft: it uses one the stack has, or makes one through
the admin API (closing the current poll, then opening a new one), so run it after the
suites that vote. Standard library only. Ends with "N passed, N failed".
"""

import argparse
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paredao_client as client  # noqa: E402
from bad_input import Suite  # noqa: E402

CACHE_VALIDITY = 1.0   # proxy_cache_valid 200 1s
ROUNDS = 3


class Stack:
    def __init__(self, args):
        self.web, self.api, self.metrics_url, self.allowlist_web = args.web, args.api, args.metrics, args.allowlist_web
        with open(args.admin_token, encoding="utf-8") as fh:
            self.credential = fh.readline().strip()

    def admin(self, method, path, body=None, base=None):
        return client.request(base or self.api, method, "/api/v1/admin" + path, body,
                              {"Authorization": "Bearer " + self.credential})

    def json(self, base, path):
        status, _, raw = client.request(base, "GET", path)
        return status, (json.loads(raw) if raw else None)

    def current_poll(self):
        """The id of the poll the plain totals show, as the API itself answers."""
        status, body = self.json(self.api, "/api/v1/totals")
        if status != 200:
            raise RuntimeError(f"the API answered GET /api/v1/totals with {status}: {body}")
        return body["poll"]

    def series(self):
        """The API's metric series: the lines of /metrics that are not comments."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return [line for line in text.splitlines() if line and not line.startswith("#")]


def answered_by_nginx(response):
    """nginx's own answers carry no X-Request-ID; every answer of the API does."""
    return response is not None and response.header("X-Request-ID") is None


# ---- a second poll ---------------------------------------------------------------------

def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


def other_poll(stack):
    """(current poll id, another poll id that is not a draft), making the other one if needed:
    the current poll closed, then a new poll opened (it becomes the current one)."""
    current = stack.current_poll()
    status, _, raw = stack.admin("GET", "/polls")
    if status != 200:
        raise RuntimeError(f"GET /api/v1/admin/polls answered {status}: {raw[:200]!r}")
    polls = json.loads(raw)["polls"]
    others = [p["id"] for p in polls if p["id"] != current and p["state"] != "draft"]
    if others:
        return current, others[-1]
    state = next(p["state"] for p in polls if p["id"] == current)
    if state == "open":
        status, _, raw = stack.admin("POST", f"/polls/{current}/close")
        if status != 200:
            raise RuntimeError(f"closing {current} answered {status}: {raw[:200]!r}")

        def closed():
            status, _, raw = stack.admin("GET", f"/polls/{current}")
            return status == 200 and json.loads(raw)["poll"]["state"] == "closed"
        if not wait_until(closed, 30):
            raise RuntimeError(f"{current} did not close within 30 s")
    new_id = f"hostile-{int(time.time()) % 1_000_000}"
    status, _, raw = stack.admin("POST", "/polls", {
        "id": new_id, "title": "Paredão dos testes hostis",
        "participants": [{"id": "aline", "name": "Aline", "photoUrl": "/img/aline.svg"},
                         {"id": "diego", "name": "Diego", "photoUrl": "/img/diego.svg"}]})
    if status != 201:
        raise RuntimeError(f"creating {new_id} answered {status}: {raw[:200]!r}")
    status, _, raw = stack.admin("POST", f"/polls/{new_id}/open")
    if status != 200:
        raise RuntimeError(f"opening {new_id} answered {status}: {raw[:200]!r}")
    if not wait_until(lambda: stack.current_poll() == new_id, 30):
        raise RuntimeError(f"the API's current poll did not become {new_id} within 30 s")
    return new_id, current


# ---- the totals cache --------------------------------------------------------------------

def poisoning_variants(other):
    """Query strings that nginx and the API could each read differently."""
    return [
        f"?POLL=&poll={other}",
        f"?Poll={other}",
        f"?poll={other}&poll=",
        f"?poll=&poll={other}",
        f"?%70oll={other}",
        f"?poll={other}%26poll=x",
        f"?x=1&poll={other}",
        f"?poll={other}&x=1",
        f"?POLL={other}",
        f"?poll=%20&poll={other}",
        f"?poll&poll={other}",
        f"?poll={other}#",
    ]


def totals_poll(stack, base, path):
    status, body = stack.json(base, path)
    return body.get("poll") if status == 200 and isinstance(body, dict) else f"{status}"


def cache_poisoning(stack, current, other):
    """Each variant fills whatever cache entry nginx picks for it (the entries last 1 s, so
    a wait between variants lets the variant's request be the one that fills it); then the
    plain URLs must still show the current poll."""
    results = []
    # The other poll is reachable on purpose through nginx: the attack could succeed.
    seen = [totals_poll(stack, stack.web, f"{path}?poll={other}") for path in ("/api/v1/totals", "/total")]
    results.append((f"the other poll {other} answers through nginx by its id", seen,
                    [] if seen == [other, other] else [f"expected {other} from both"]))
    for variant in poisoning_variants(other):
        poisoned = []
        for _ in range(ROUNDS):
            time.sleep(CACHE_VALIDITY + 0.2)
            for path in ("/api/v1/totals", "/total"):
                client.request(stack.web, "GET", path + variant)
            for path in ("/api/v1/totals", "/total"):
                shown = totals_poll(stack, stack.web, path)
                if shown != current:
                    poisoned.append(f"{path} showed {shown}")
        results.append((f"after GET …{variant}: plain /api/v1/totals and /total show {current}",
                        f"{ROUNDS} rounds", poisoned))
    # HEAD and GET are cached apart; a HEAD with the variant must not fill the GET entry.
    time.sleep(CACHE_VALIDITY + 0.2)
    client.request(stack.web, "HEAD", f"/total?POLL=&poll={other}")
    shown = totals_poll(stack, stack.web, "/total")
    results.append(("after HEAD /total?POLL=&poll=…: GET /total shows the current poll", [shown],
                    [] if shown == current else [f"showed {shown}"]))
    return results


def bad_poll_values(stack):
    """Values outside the poll-id characters are answered by nginx (404 unknown_poll)."""
    suite = Suite(stack.web, "nginx", None, False)
    results = []
    for query in ("?poll=a%26poll=b", "?poll=A", "?poll=a+b", "?poll=%61", "?poll=" + "a" * 65):
        responses, _ = suite.exchange(suite.request("GET", "/api/v1/totals" + query, content_type=None))
        response = responses[0] if responses else None
        results.append((f"GET /api/v1/totals{query[:30]}: 404 unknown_poll", suite.outcome(responses),
                        suite.check(response, 404, "unknown_poll")))
    return results


# ---- made-up methods and paths -------------------------------------------------------------

ROUTES = ["/api/v1/poll", "/api/v1/votes", "/api/v1/challenges", "/api/v1/sessions", "/api/v1/totals",
          "/total", "/api/v1/admin/polls", "/api/v1/admin/polls/p1", "/api/v1/admin/polls/p1/open",
          "/api/v1/admin/audit"]


def made_up_method(index):
    """QA, QB, … : distinct methods of upper-case letters, as the API's parser accepts."""
    letters = ""
    index += 26 * 26   # at least three letters: none is a real method
    while index:
        index, digit = divmod(index, 26)
        letters = chr(65 + digit) + letters
    return "Q" + letters


def made_up_requests(stack, count=1000):
    results = []
    suite = Suite(stack.web, "nginx", None, False)
    before = stack.series()
    wrong = []
    conn = suite.connect()
    try:
        for index in range(count):
            path = ROUTES[index % len(ROUTES)]
            conn.send(suite.request(made_up_method(index), path, content_type=None))
            response = conn.read_response()
            problems = suite.check(response, 405, "method_not_allowed")
            if response is not None and not answered_by_nginx(response):
                problems.append("answered by the API, not nginx")
            if problems:
                wrong.append(f"{made_up_method(index)} {path}: {problems}")
            if response is None or (response.header("Connection") or "").lower() == "close":
                conn.close()
                conn = suite.connect()
    finally:
        conn.close()
    results.append((f"{count} made-up methods on the API routes: nginx's own 405 method_not_allowed, with Allow",
                    f"{count - len(wrong)} of {count}", wrong[:5]))

    paths = []
    for index in range(count):
        paths.append([f"/api/v1/made-up-{index}", f"/api/v1/admin/made-up-{index}", f"/made-up-{index}",
                      f"/api/v1/totals?poll=made-up-{index}", f"/api/v1/admin/polls/p{index}/made-up",
                      f"/API/V1/POLL{index}"][index % 6])
    statuses = {}
    conn = suite.connect()
    try:
        for path in paths:
            conn.send(suite.request("GET", path, content_type=None))
            response = conn.read_response()
            status = response.status if response else None
            statuses[status] = statuses.get(status, 0) + 1
            if response is None or (response.header("Connection") or "").lower() == "close":
                conn.close()
                conn = suite.connect()
    finally:
        conn.close()
    results.append((f"{count} made-up paths: all 404", statuses,
                    [] if set(statuses) == {404} else [f"statuses {statuses}"]))

    after = stack.series()
    known = {line.rsplit(" ", 1)[0] for line in before}
    new_series = [line.rsplit(" ", 1)[0] for line in after if line.rsplit(" ", 1)[0] not in known]
    # A few series may appear for real (a route's first 404, its latency buckets).
    allowed = 40
    results.append((f"the API's /metrics series after {2 * count} made-up requests: at most {allowed} more",
                    f"{len(before)} → {len(after)}",
                    [] if len(new_series) <= allowed else [f"{len(new_series)} new, e.g. {new_series[:3]}"]))
    return results


# ---- the admin allowlist ----------------------------------------------------------------

def admin_allowlist(stack):
    results = []
    suite = Suite(stack.allowlist_web, "nginx", None, False)
    auth = "Authorization: Bearer " + stack.credential
    for method, path in [("GET", "/api/v1/admin/polls"), ("GET", "/api/v1/admin/audit"),
                         ("POST", "/api/v1/admin/polls/p1/open"), ("QA", "/api/v1/admin/polls"),
                         ("GET", "/api/v1/admin/made-up")]:
        responses, _ = suite.exchange(suite.request(method, path, b"{}" if method == "POST" else b"", [auth]))
        response = responses[0] if responses else None
        results.append((f"allowlist 10.0.0.0/8, from 127.0.0.1: {method} {path} is 403 forbidden_network",
                        suite.outcome(responses), suite.check(response, 403, "forbidden_network")))
    for path in ("/api/v1/poll", "/total", "/api/v1/totals", "/"):
        status, _, _ = client.request(stack.allowlist_web, "GET", path)
        results.append((f"allowlist on: public GET {path} still 200", [status], [] if status == 200 else [f"status {status}"]))
    status, _, _ = client.post_retrying(stack.allowlist_web, "/api/v1/challenges")
    results.append(("allowlist on: POST /api/v1/challenges still 201", [status], [] if status == 201 else [f"status {status}"]))
    status, _, raw = stack.admin("GET", "/polls", base=stack.web)
    results.append(("no allowlist (the default): the admin API answers through nginx", [status],
                    [] if status == 200 else [f"status {status}: {raw[:120]!r}"]))
    return results


# ---- bodies ------------------------------------------------------------------------------

def bodies(stack):
    results = []
    suite = Suite(stack.web, "nginx", None, False)
    body = b'{"participant":"aline","pad":"' + b"x" * 2048 + b'"}'
    responses, _ = suite.exchange(suite.vote(body, token="Bearer x"))
    response = responses[0] if responses else None
    problems = suite.check(response, 413, "body_too_large")
    if response is not None and not answered_by_nginx(response):
        problems.append("answered by the API, not nginx")
    results.append(("2 KiB vote body: nginx's 413 body_too_large", suite.outcome(responses), problems))

    chunked = (b"POST /api/v1/votes HTTP/1.1\r\n" + suite.host_header()
               + b"Content-Type: application/json\r\nAuthorization: Bearer x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"200\r\n" + b"x" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n")
    responses, _ = suite.exchange(chunked)
    response = responses[0] if responses else None
    problems = suite.check(response, 413, "body_too_large")
    if response is not None and not answered_by_nginx(response):
        problems.append("answered by the API, not nginx")
    results.append(("2 KiB chunked vote body: nginx's 413 body_too_large", suite.outcome(responses), problems))

    auth = "Authorization: Bearer " + stack.credential
    big = b'{"id":"x","title":"' + b"x" * 9000 + b'"}'
    responses, _ = suite.exchange(suite.request("POST", "/api/v1/admin/polls", big, [auth]))
    response = responses[0] if responses else None
    problems = suite.check(response, 413, "body_too_large")
    if response is not None and not answered_by_nginx(response):
        problems.append("answered by the API, not nginx")
    results.append(("9 KB admin body: nginx's 413 (admin bodies up to 8 KiB)", suite.outcome(responses), problems))

    medium = b'{"id":"x","title":"' + b"x" * 2000 + b'"}'
    responses, _ = suite.exchange(suite.request("POST", "/api/v1/admin/polls", medium, [auth]))
    response = responses[0] if responses else None
    problems = [] if response is not None else ["no answer"]
    if answered_by_nginx(response):
        problems.append(f"nginx answered {response.status} itself")
    results.append(("2 KB admin body: passes nginx (the API answers)", suite.outcome(responses), problems))

    # client_body_timeout 5s: a body that stops for 6 s is cut, answered 408 or closed.
    conn = suite.connect(timeout=10)
    started = time.monotonic()
    try:
        conn.send(suite.request("POST", "/api/v1/votes", headers=["Authorization: Bearer x", "Content-Length: 100"],
                                length=False) + b"{")
        response = conn.read_response()
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    problems = [] if elapsed < 7.5 else [f"still open after {elapsed:.1f} s"]
    if response is not None:
        problems += suite.check(response, 408, "request_timeout")
    results.append(("a body paused after its first byte is cut within 5 s + slack",
                    f"{suite.outcome([response] if response else [])} after {elapsed:.1f} s", problems))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", required=True, help="nginx with raised limits")
    parser.add_argument("--api", required=True, help="the API behind it")
    parser.add_argument("--metrics", required=True, help="the API's /metrics URL")
    parser.add_argument("--allowlist-web", required=True, help="nginx rendered with --admin-allow 10.0.0.0/8")
    parser.add_argument("--admin-token", required=True, help="the admin credential file (name:secret)")
    args = parser.parse_args()
    stack = Stack(args)
    results = []
    for name, run in [("bodies", lambda: bodies(stack)),
                      ("made-up methods and paths", lambda: made_up_requests(stack)),
                      ("admin allowlist", lambda: admin_allowlist(stack)),
                      ("bad poll values", lambda: bad_poll_values(stack))]:
        try:
            results += run()
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
            results.append((name, "error", [f"{type(exc).__name__}: {exc}"]))
    # Last: it may close the current poll to make a second one.
    try:
        current, other = other_poll(stack)
        print(f"current poll {current}, other poll {other}", flush=True)
        results += cache_poisoning(stack, current, other)
    except Exception as exc:  # noqa: BLE001
        results.append(("totals cache poisoning", "error", [f"{type(exc).__name__}: {exc}"]))
    return client.report(results)


if __name__ == "__main__":
    sys.exit(main())
