#!/usr/bin/env python3
"""nginx's own 429 in the documented shape: against an nginx with the shipped per-IP limits
(challenges and sessions 2 r/s, burst 10), a burst of challenges must end in
`429 rate_limited` with `Retry-After`, in the one JSON error shape, and the API behind it
must still answer; and so must a burst of votes (50 r/s, burst 100). The admin routes have a
zone of their own (5 r/s, burst 40): an admin burst ends in nginx's 429 after about 40
requests, and neither it nor the challenges' burst spends the other's. Standard library only.

    python3 Tests/contract/nginx_limits.py http://127.0.0.1:8000 --admin-token FILE

Ends with "N passed, N failed".
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paredao_client as client  # noqa: E402
from bad_input import Suite  # noqa: E402


ADMIN_BURST = 40


def admin_burst(suite, credential):
    """Admin reads on one connection until nginx's 429: (statuses, the 429 or None)."""
    statuses = []
    conn = suite.connect()
    try:
        raw = suite.request("GET", "/api/v1/admin/polls", headers=["Authorization: Bearer " + credential], content_type=None)
        for _ in range(3 * ADMIN_BURST):
            conn.send(raw)
            response = conn.read_response()
            statuses.append(response.status if response else None)
            if response is None or response.status == 429:
                return statuses, response
    finally:
        conn.close()
    return statuses, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="an nginx with the shipped limits")
    parser.add_argument("--admin-token", required=True, help="the admin credential file (name:secret)")
    args = parser.parse_args()
    base = args.base
    with open(args.admin_token, encoding="utf-8") as fh:
        credential = fh.readline().strip()
    suite = Suite(base, "nginx", None, False)
    results = []

    # The admin zone first, while the challenges' zone is full.
    statuses, limited = admin_burst(suite, credential)
    accepted = statuses.count(200)
    problems = [] if limited is not None else [f"no 429 in {len(statuses)} admin reads: {sorted(set(statuses))}"]
    if limited is not None:
        problems += suite.check(limited, 429, "rate_limited")
        if limited.header("X-Request-ID") is not None:
            problems.append("the API's 429, not nginx's")
    if accepted < ADMIN_BURST * 3 // 4:
        problems.append(f"only {accepted} admin reads before the 429: not the admin zone's burst of {ADMIN_BURST}")
    results.append((f"admin reads beyond burst {ADMIN_BURST}: nginx's 429 rate_limited", [f"{accepted} × 200", statuses[-1]], problems))
    status, _, raw = client.request(base, "POST", "/api/v1/challenges")
    results.append(("a challenge right after the admin burst: 201 (its zone untouched)", [status],
                    [] if status == 201 else [f"status {status}: {raw[:100]!r}"]))

    statuses = []
    limited = None
    for _ in range(40):
        responses, _ = suite.exchange(suite.request("POST", "/api/v1/challenges", content_type=None))
        response = responses[0] if responses else None
        statuses.append(response.status if response else None)
        if response is not None and response.status == 429:
            limited = response
            break
    problems = [] if limited is not None else [f"no 429 in 40 challenges: {statuses}"]
    if limited is not None:
        problems += suite.check(limited, 429, "rate_limited")
        if not (limited.header("Retry-After") or "").isdigit():
            problems.append(f"Retry-After {limited.header('Retry-After')!r}")
    results.append(("challenges beyond the burst: 429 rate_limited, Retry-After", statuses[-3:], problems))

    responses, _ = suite.exchange(suite.request("POST", "/api/v1/sessions", b'{"challenge":"x","counter":1}'))
    response = responses[0] if responses else None
    problems = suite.check(response, 429, "rate_limited")
    results.append(("sessions share the limit: 429 rate_limited", [response.status if response else None], problems))

    # 0.8 s refills 4 of the admin zone's 40, but fewer than 2 of the challenges' 10, which
    # the burst above spent: three admin reads pass only in a zone of their own.
    time.sleep(0.8)
    statuses = [client.request(base, "GET", "/api/v1/admin/polls", headers={"Authorization": "Bearer " + credential})[0]
                for _ in range(3)]
    results.append(("three admin reads 0.8 s after the challenges' burst: 200 (their zone apart)", statuses,
                    [] if statuses == [200] * 3 else [f"statuses {statuses}"]))

    # Votes: 50 r/s, burst 100. Without a token the API answers 401 until nginx steps in.
    statuses = []
    limited = None
    conn = suite.connect()
    try:
        raw = suite.request("POST", "/api/v1/votes", b'{"participant":"aline"}')
        for _ in range(300):
            conn.send(raw)
            response = conn.read_response()
            statuses.append(response.status if response else None)
            if response is None or response.status == 429:
                limited = response
                break
    finally:
        conn.close()
    problems = [] if limited is not None else [f"no 429 in 300 votes: {sorted(set(statuses))}"]
    if limited is not None:
        problems += suite.check(limited, 429, "rate_limited")
    results.append(("votes beyond 50 r/s + burst 100: 429 rate_limited", [f"{len(statuses) - 1} × {statuses[0]}", statuses[-1]], problems))

    status, _, _ = client.request(base, "GET", "/total")
    results.append(("/total is not limited meanwhile", [status], [] if status == 200 else [f"status {status}"]))

    return client.report(results)


if __name__ == "__main__":
    sys.exit(main())
