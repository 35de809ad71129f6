#!/usr/bin/env python3
"""nginx's own 429 in the documented shape: against an nginx with the shipped per-IP limits
(challenges and sessions 2 r/s, burst 10), a burst of challenges must end in
`429 rate_limited` with `Retry-After`, in the one JSON error shape, and the API behind it
must still answer; and so must a burst of votes (50 r/s, burst 100). Standard library only.

    python3 Tests/contract/nginx_limits.py http://127.0.0.1:8000

Ends with "N passed, N failed".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paredao_client as client  # noqa: E402
from bad_input import Suite  # noqa: E402


def main():
    base = sys.argv[1]
    suite = Suite(base, "nginx", None, False)
    results = []

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
