"""A small client for the contract suites (standard library only): the proof of work,
sessions, and session tokens broken on purpose.

The proof of work is the one in docs/API.md and frontend/js/pow-worker.js; the token layout
is SessionToken's (Sources/VoteShared/Tokens/SessionToken.swift): 78 bytes, base64url,
bytes 0-45 signed with HMAC-SHA256 by the key whose id is byte 1.
"""

import base64
import hashlib
import hmac
import http.client
import json
import struct
import time
import urllib.parse


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def solve_pow(challenge, difficulty):
    """The smallest counter whose SHA-256(challenge bytes ‖ counter) starts with `difficulty` zero bits."""
    prefix = b64url_decode(challenge)
    counter = 0
    while True:
        digest = hashlib.sha256(prefix + counter.to_bytes(8, "big")).digest()
        if int.from_bytes(digest, "big") >> (256 - difficulty) == 0:
            return counter
        counter += 1


def challenge_difficulty(challenge):
    """The difficulty a challenge carries (byte 34 of its 67), or None if it is not one."""
    try:
        raw = b64url_decode(challenge)
    except (ValueError, TypeError):
        return None
    return raw[34] if len(raw) == 67 and raw[0] == 0x43 and 1 <= raw[34] <= 24 else None


def request(base, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers as a dict of lower-case names, body bytes)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_retrying(base, path, body=None, attempts=6):
    """A POST that waits out `429`/`503` answers (their Retry-After, at most 2 s) a few times."""
    for attempt in range(attempts):
        status, headers, raw = request(base, "POST", path, body)
        if status not in (429, 503) or attempt == attempts - 1:
            return status, headers, raw
        time.sleep(min(2.0, float(headers.get("retry-after", "1") or 1)))
    return status, headers, raw


def solved_challenge(base):
    """A fresh challenge and its solution: (challenge, counter)."""
    status, _, raw = post_retrying(base, "/api/v1/challenges")
    if status != 201:
        raise RuntimeError(f"POST /api/v1/challenges answered {status}: {raw[:200]!r}")
    answer = json.loads(raw)
    return answer["challenge"], solve_pow(answer["challenge"], int(answer["difficulty"]))


def new_token(base):
    """A session token bought with a solved challenge."""
    challenge, counter = solved_challenge(base)
    status, _, raw = post_retrying(base, "/api/v1/sessions", {"challenge": challenge, "counter": counter})
    if status != 201:
        raise RuntimeError(f"POST /api/v1/sessions answered {status}: {raw[:200]!r}")
    return json.loads(raw)["token"]


def load_keys(path):
    """The token keys file (`id:base64` per line, `#` comments): {id: secret bytes}."""
    keys = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key_id, secret = line.split(":", 1)
            keys[int(key_id)] = base64.b64decode(secret)
    return keys


def resign(raw, keys):
    """`raw` (78 bytes) with its MAC made again with the key its byte 1 names."""
    body = bytes(raw[:46])
    return body + hmac.new(keys[body[1]], body, hashlib.sha256).digest()


def forged(token, keys, *, issued_at=None, expires_at=None, network=None):
    """A well-signed token with some fields changed (the server's own key signs it)."""
    raw = bytearray(b64url_decode(token))
    if issued_at is not None:
        raw[18:26] = struct.pack(">q", issued_at)
    if expires_at is not None:
        raw[26:34] = struct.pack(">q", expires_at)
    if network is not None:
        raw[38:46] = network
    return b64url_encode(resign(raw, keys))


def broken_tokens(token, keys=None):
    """(name, Authorization header value or None, expected 401 code) for a token broken in every way."""
    raw = bytearray(b64url_decode(token))
    flipped_mac = bytearray(raw)
    flipped_mac[-1] ^= 0x01
    flipped_body = bytearray(raw)
    flipped_body[40] ^= 0x80
    wrong_kind = bytearray(raw)
    wrong_kind[0] = 0x55
    unknown_key = bytearray(raw)
    unknown_key[1] = (raw[1] + 97) % 256
    cases = [
        ("no Authorization header", None, "token_missing"),
        ("empty Authorization", "", ("token_missing", "token_malformed")),
        ("scheme only", "Bearer", "token_malformed"),
        ("scheme and a space", "Bearer ", "token_malformed"),
        ("Basic scheme", "Basic " + base64.b64encode(b"produtor:x").decode(), "token_malformed"),
        ("token without scheme", token, "token_malformed"),
        ("lower-case bearer", "bearer " + token, None),  # the scheme is case-insensitive: valid
        ("two spaces after Bearer", "Bearer  " + token, "token_malformed"),
        ("truncated by one character", "Bearer " + token[:-1], "token_malformed"),
        ("one character too many", "Bearer " + token + "A", "token_malformed"),
        ("padded base64", "Bearer " + token + "==", "token_malformed"),
        ("standard base64 alphabet", "Bearer " + token.replace("-", "+").replace("_", "/")[:-1] + "+", "token_malformed"),
        ("not base64 (same length)", "Bearer " + "!" * len(token), "token_malformed"),
        ("wrong kind byte", "Bearer " + b64url_encode(wrong_kind), "token_malformed"),
        ("MAC bit flipped", "Bearer " + b64url_encode(flipped_mac), "token_invalid"),
        ("body bit flipped", "Bearer " + b64url_encode(flipped_body), "token_invalid"),
        ("unknown key id", "Bearer " + b64url_encode(unknown_key), "token_unknown_key"),
        ("a challenge instead of a token", None, None),  # filled in by the caller (needs the API)
        ("token twice", "Bearer " + token + " " + token, "token_malformed"),
        ("NUL inside", "Bearer " + token[:50] + "\x00" + token[51:], "token_malformed"),
    ]
    if keys:
        now = int(time.time())
        cases += [
            ("expired (signed)", "Bearer " + forged(token, keys, expires_at=now - 10), "token_expired"),
            ("issued in the future (signed)", "Bearer " + forged(token, keys, issued_at=now + 3600, expires_at=now + 7200), "token_not_yet_valid"),
            ("another network (signed)", "Bearer " + forged(token, keys, network=b"\x01" * 8), "token_wrong_network"),
            ("expiry at Int64.min (signed)", "Bearer " + forged(token, keys, expires_at=-(2**63)), "token_expired"),
            ("issued at Int64.max (signed)", "Bearer " + forged(token, keys, issued_at=2**63 - 1), "token_not_yet_valid"),
        ]
    return cases


def report(results):
    """Prints one line per (name, seen, problems) and the closing count; the exit status."""
    for name, seen, problems in results:
        print(f"{'ok  ' if not problems else 'FAIL'} {name}: {seen}" + ("  <- " + "; ".join(problems) if problems else ""))
    failed = sum(1 for _, _, problems in results if problems)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1
