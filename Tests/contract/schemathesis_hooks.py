"""schemathesis hooks for docs/openapi.yaml (SCHEMATHESIS_HOOKS=schemathesis_hooks, with this
folder on PYTHONPATH): they solve the proof of work so that the fuzzer gets past the
sessions and votes routes with real credentials as well as broken ones.

- Votes: an auth provider buys real session tokens (challenge → proof of work → session) and
  sets `Authorization: Bearer <token>`; every fifth vote carries one of the broken tokens
  instead (malformed, bad MAC, unknown key, and — with PAREDAO_CONTRACT_KEYS — signed but
  expired, from the future, or from another network). schemathesis's own `ignored_auth`
  check then also sends each vote without a token and with a made-up one.
- Sessions: every other body that fits the schema gets a freshly solved challenge, so
  `201` is reached too (the rest stay as generated: 400s and 401s); a real challenge that
  the stateful phase carried over by the document's links (challenge → session → vote) is
  solved in place.
- Votes whose body fits the schema name a real participant (and, if they name a poll, the
  open one) every other time (202), else keep the generated strings (mostly 422
  unknown_participant, or 409 for a poll that is not the open one).
- The admin routes (tag `admin`): an auth provider sends the real admin credential
  (PAREDAO_CONTRACT_ADMIN_TOKEN) four times in five and a wrong one (403) the fifth;
  schemathesis's `ignored_auth` check sends each without one (401) and with a made-up one.
  Opening and closing polls are not fuzzed with the rest (scripts/test-contract.sh
  excludes them): a close would end the poll the later checks vote in, an open would make
  a random draft the poll. They run last, in a run of their own.

Environment: PAREDAO_CONTRACT_URL (the base URL under test, the same as --url),
PAREDAO_CONTRACT_KEYS (optional: the API's token keys file, for the signed broken tokens),
PAREDAO_CONTRACT_ADMIN_TOKEN (the admin credentials file; without it the admin routes get
no credential and answer 401).
"""

import atexit
import itertools
import json
import os
import threading

import schemathesis
from schemathesis.core.parameters import ParameterLocation

import paredao_client as client

BASE = os.environ.get("PAREDAO_CONTRACT_URL", "http://127.0.0.1:8080")
KEYS_FILE = os.environ.get("PAREDAO_CONTRACT_KEYS", "")
ADMIN_TOKEN_FILE = os.environ.get("PAREDAO_CONTRACT_ADMIN_TOKEN", "")
# A token answers 5 votes at once (burst), then one a second: a fresh one every few votes
# keeps most valid-token votes out of the session's rate limit.
VOTES_PER_TOKEN = 4

_lock = threading.Lock()
_state = {"token": None, "uses": 0, "participants": None, "poll": None, "broken": None}
_vote_counter = itertools.count()
_session_counter = itertools.count()
_participant_counter = itertools.count()
_admin_counter = itertools.count()


def _participants():
    with _lock:
        if _state["participants"] is None:
            status, _, raw = client.request(BASE, "GET", "/api/v1/poll")
            if status != 200:
                raise RuntimeError(f"GET /api/v1/poll answered {status}")
            poll = json.loads(raw)["poll"]
            _state["participants"] = [p["id"] for p in poll["participants"]]
            _state["poll"] = poll["id"]
        return _state["participants"]


def _valid_token():
    with _lock:
        if _state["token"] is None or _state["uses"] >= VOTES_PER_TOKEN:
            _state["token"] = client.new_token(BASE)
            _state["uses"] = 0
        _state["uses"] += 1
        return _state["token"]


def _broken_headers():
    with _lock:
        if _state["broken"] is None:
            keys = client.load_keys(KEYS_FILE) if KEYS_FILE and os.path.exists(KEYS_FILE) else None
            token = client.new_token(BASE)
            # A NUL is not valid in a header at all (400 invalid_request): the bad-input suite has it.
            _state["broken"] = [value for _, value, code in client.broken_tokens(token, keys) if value and code and "\x00" not in value]
        return _state["broken"]


def _body_fits_schema(case):
    return case.meta is None or not case.meta.is_negative_at(ParameterLocation.BODY)


@schemathesis.auth(refresh_interval=None).apply_to(path="/api/v1/votes")
class SessionTokenAuth:
    """Real session tokens, bought with solved proofs of work, and now and then a broken one."""

    def get(self, case, ctx):
        number = next(_vote_counter)
        if number % 5 == 4:
            broken = _broken_headers()
            return broken[(number // 5) % len(broken)]
        return "Bearer " + _valid_token()

    def set(self, case, data, ctx):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = data
        if isinstance(case.body, dict) and _body_fits_schema(case) and next(_participant_counter) % 2 == 0:
            participants = _participants()
            case.body = {**case.body, "participant": participants[len(case.body) % len(participants)]}
            # A generated `poll` names no poll (409 poll_not_open): name the open one instead.
            if isinstance(case.body.get("poll"), str):
                case.body["poll"] = _state["poll"]


def _admin_credential():
    if not ADMIN_TOKEN_FILE or not os.path.exists(ADMIN_TOKEN_FILE):
        return ""
    with open(ADMIN_TOKEN_FILE, encoding="utf-8") as fh:
        return fh.readline().strip()


@schemathesis.auth(refresh_interval=None).apply_to(tag="admin")
class AdminCredentialAuth:
    """The real admin credential, and every fifth request a wrong one (403, audited)."""

    def get(self, case, ctx):
        credential = _admin_credential()
        if not credential:
            return None
        if next(_admin_counter) % 5 == 4:
            name = credential.split(":", 1)[0]
            return "Bearer " + name + ":" + "wrong-secret-" + "x" * 16
        return "Bearer " + credential

    def set(self, case, data, ctx):
        if data is None:
            return
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = data


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.operation.path != "/api/v1/sessions" or case.method.upper() != "POST":
        return
    if not isinstance(case.body, dict) or not _body_fits_schema(case):
        return
    # JSON Schema counts 12.0 as an integer, the API only the digits 12 (400 invalid_counter):
    # a known difference (README, "The API contract"), kept out of the
    # fuzzer's failures and checked in the bad-input suite instead.
    counter = case.body.get("counter")
    if isinstance(counter, float) and counter.is_integer():
        case.body = {**case.body, "counter": int(counter)}
    # A challenge the stateful phase carried over from POST /api/v1/challenges (the link
    # SolveAndCreateSession): solve it, as a client would.
    difficulty = client.challenge_difficulty(case.body.get("challenge"))
    if difficulty is not None:
        case.body = {**case.body, "counter": client.solve_pow(case.body["challenge"], difficulty)}
        return
    if next(_session_counter) % 2 == 0:
        challenge, counter = client.solved_challenge(BASE)
        case.body = {**case.body, "challenge": challenge, "counter": counter}


# What the API answered, by operation and status (printed when schemathesis exits), so a run
# shows that the valid-token votes (202) and the solved sessions (201) were reached.
_answers = {}


@schemathesis.hook
def after_call(ctx, case, response):
    key = (f"{case.method.upper()} {case.operation.path}", response.status_code)
    with _lock:
        _answers[key] = _answers.get(key, 0) + 1


def _print_answers():
    if not _answers:
        return
    print("\nAnswers by operation and status (hooks):")
    for (operation, status), count in sorted(_answers.items()):
        print(f"  {operation:28} {status}  {count}")


atexit.register(_print_answers)
