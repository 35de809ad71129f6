#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (small real inputs for each target).

An independent implementation of the wire layouts (Sources/VoteShared/Tokens and Wire):
the tokens and challenges are signed with the fixed keys of
fuzz/Sources/FuzzSupport/Fixtures.swift, so the seeds that should verify do, and the
fuzzer starts from inside the MAC check. Deterministic: run it again after a layout or
fixture change and commit the result.

Usage: fuzz/make-corpus.py [--help]
"""
import base64
import hashlib
import hmac
import pathlib
import struct
import sys

NOW = 1_800_000_000
KEYS = {1: bytes([0x11] * 32), 2: bytes(range(32))}
SIGNING_KEY_ID = 2
NETWORK = (203, 0, 113)        # 203.0.113.7 -> 203.0.113.0/24
OTHER_NETWORK = (198, 51, 100)  # 198.51.100.9
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SESSION_ID = bytes.fromhex("0123456789abcdef0123456789abcdef")
NONCE = bytes.fromhex("fedcba9876543210fedcba9876543210")

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def network_hash(key: bytes, prefix: tuple) -> bytes:
    packed = (1 << 56) | (prefix[0] << 16) | (prefix[1] << 8) | prefix[2]
    return hmac.new(key, b"\x4e" + struct.pack(">Q", packed), hashlib.sha256).digest()[:8]


def token(key_id=SIGNING_KEY_ID, issued=NOW - 60, expires=NOW + 1740, budget=200,
          network=NETWORK, sign_with=None) -> str:
    key = KEYS[sign_with or key_id]
    body = bytes([0x54, key_id]) + SESSION_ID + struct.pack(">qqI", issued, expires, budget)
    body += network_hash(key, network)
    return b64url(body + hmac.new(key, body, hashlib.sha256).digest())


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def challenge(key_id=SIGNING_KEY_ID, issued=NOW - 10, expires=NOW + 110, difficulty=8,
              solve=True, sign_with=None) -> bytes:
    """A fuzz input: the 8-byte counter, then the challenge text."""
    key = KEYS[sign_with or key_id]
    body = bytes([0x43, key_id]) + NONCE + struct.pack(">qqB", issued, expires, difficulty)
    signed = body + hmac.new(key, body, hashlib.sha256).digest()
    counter = 0
    while solve and difficulty <= 32:
        digest = hashlib.sha256(signed + struct.pack(">Q", counter)).digest()
        if leading_zero_bits(digest) >= difficulty:
            break
        counter += 1
    return struct.pack(">Q", counter) + b64url(signed).encode()


def vote(index: int, accepted=NOW * 1000, poll=b"paredao-fuzz", participant=b"ana") -> bytes:
    vote_id = bytes.fromhex("0192f3a47b2c7def8123456789abcd") + bytes([index])
    return (vote_id + struct.pack(">q", accepted) + bytes([len(poll)]) + poll
            + bytes([len(participant)]) + participant)


def message(*votes: bytes, count=None) -> bytes:
    return b"PV\x01" + struct.pack(">H", len(votes) if count is None else count) + b"".join(votes)


def seeds() -> dict:
    good_token = token()
    good_challenge = challenge()
    return {
        "vote-body": {
            "participant": b'{"participant":"ana"}',
            "with-vote-id": b'{"participant":"bia","voteId":"0192f3a4-7b2c-7def-8123-456789abcdef"}',
            "upper-vote-id": b'{"voteId":"0192F3A4-7B2C-7DEF-8123-456789ABCDEF","participant":"caio_2"}',
            "null-vote-id": b'{ "participant" : "ana" , "voteId" : null }\n',
            "escapes": b'{"participant":"an\\u0061","note":"\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\n\\t\\u00e9"}',
            "values": b'{"a":-12.5e+3,"b":true,"c":false,"d":null,"e":0,"participant":"unknown"}',
            "nested": b'{"participant":{"id":"ana"}}',
            "duplicate": b'{"participant":"ana","participant":"bia"}',
            "many-fields": ("{" + ",".join(f'"k{i}":{i}' for i in range(33)) + "}").encode(),
            "empty-object": b"{}",
        },
        "session-token": {
            "valid": good_token.encode(),
            "valid-old-key": token(key_id=1).encode(),
            "expired": token(issued=NOW - 4000, expires=NOW - 1).encode(),
            "future": token(issued=NOW + 3600, expires=NOW + 7200).encode(),
            "wrong-network": token(network=OTHER_NETWORK).encode(),
            "unknown-key": token(key_id=7, sign_with=2).encode(),
            "int64-edges": token(issued=INT64_MIN, expires=INT64_MAX).encode(),
            "bad-mac": (good_token[:-2] + ("AA" if good_token[-2:] != "AA" else "BA")).encode(),
            "short": good_token[:50].encode(),
        },
        "challenge": {
            "valid": good_challenge,
            "valid-old-key": challenge(key_id=1),
            "difficulty-0": challenge(difficulty=0),
            "difficulty-32-unsolved": challenge(difficulty=32, solve=False),
            "difficulty-33": challenge(difficulty=33, solve=False),
            "expired": challenge(issued=NOW - 200, expires=NOW - 80),
            "int64-edges": challenge(issued=INT64_MIN, expires=INT64_MAX, difficulty=4),
            "wrong-counter": struct.pack(">Q", 2**64 - 1) + good_challenge[8:],
            "unknown-key": challenge(key_id=9, sign_with=2, difficulty=0),
        },
        "base64url": {
            "token": good_token.encode(),
            "challenge": good_challenge[8:],
            "empty": b"",
            "one": b"A",
            "two": b"QQ",
            "three": b"QUI",
            "non-canonical": b"QR",
            "url-alphabet": b"-_-_",
            "padded": b"QQ==",
        },
        "vote-message": {
            "one-vote": message(vote(1)),
            "three-votes": message(vote(1), vote(2, participant=b"bia"), vote(3, participant=b"caio_2")),
            "int64-min-accepted-at": message(vote(4, accepted=INT64_MIN)),
            "int64-max-accepted-at": message(vote(5, accepted=INT64_MAX)),
            "negative-accepted-at": message(vote(6, accepted=-1)),
            "long-ids": message(vote(7, poll=b"p" * 255, participant="é".encode() * 127)),
            "zero-votes": message(count=0),
            "count-too-high": message(vote(1), count=2),
            "trailing-byte": message(vote(1)) + b"\x00",
            "bad-magic": b"PW\x01\x00\x01",
            "bad-utf8": message(vote(8, participant=b"\xff\xfe")),
        },
        "client-network": {
            "ipv4": b"203.0.113.7",
            "ipv4-mapped": b"::ffff:203.0.113.7",
            "ipv6": b"2001:db8:1234:5678::1",
            "loopback6": b"::1",
            "full-ipv6": b"2001:0db8:0000:0000:0000:ff00:0042:8329",
            "zone": b"fe80::1%eth0",
            "leading-zero": b"1.2.3.04",
            "octet-too-big": b"256.1.1.1",
            "empty": b"",
            # Found by the fuzzer (ClientNetwork disagreed with inet_pton), kept as seeds.
            "ipv4-mapped-upper": b"::FFFF:203.0.113.7",
            "nul-inside": b"::ffff\0:2f03:0f.:ff",
            "mapped-prefix-on-ipv6": b"::ffff:1::2.3.4.5",
        },
        # Requests as clients and nginx send them, pipelined, and the framing edge cases.
        "http-request": {
            "vote": b"POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + token().encode() + b"\r\nContent-Length: 23\r\n\r\n"
                    b'{"participant":"aline"}',
            "via-nginx": b"POST /api/v1/votes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Real-IP: 203.0.113.7\r\n"
                         b"Content-Length: 2\r\nContent-Type: application/json\r\nAuthorization: Bearer x\r\n\r\n{}",
            "pipelined": b"GET /total HTTP/1.1\r\nHost: h\r\n\r\nGET /api/v1/poll?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         b"HEAD /total HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "chunked": b"POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5;ext=1\r\n{\"par\r\n12\r\nticipant\":\"aline\"}\r\n0\r\nX-Trailer: y\r\n\r\n"
                       b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "cl-and-te": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two-lengths": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
            "expect": b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            "empty-lines-first": b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "upgrade": b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "http10-chunked": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            # Issue 27: a request answered later (a vote waits for its confirm, a wrong admin
            # credential for its check) with a second head pipelined behind it that never ends;
            # the connection's deadlines must hold for it (ConnectionDeadlinesTests).
            "vote-then-partial-head": b"POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                                      b"Authorization: Bearer " + token().encode() + b"\r\nContent-Length: 23\r\n\r\n"
                                      b'{"participant":"aline"}GET /total HTTP/1.1\r\nHost: h\r\n',
            "admin-then-partial-body": b"POST /api/v1/admin/polls/p/close HTTP/1.1\r\nHost: h\r\n"
                                       b"Authorization: Bearer produtor:wrong-secret-wrong\r\n\r\n"
                                       b"POST /api/v1/votes HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n{\"par",
        },
    }


def main() -> int:
    if len(sys.argv) > 1:
        print(__doc__.strip())
        return 0 if sys.argv[1] in ("-h", "--help") else 64
    for target, files in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
