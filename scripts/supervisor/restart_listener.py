#!/usr/bin/python3
"""supervisord event listener: logs and counts the restarts of the supervised programs.

supervisord starts it (an [eventlistener] on PROCESS_STATE events) and talks to it over
stdin/stdout (the listener protocol). For every program it keeps:

  paredao_process_restarts_total{program}   starts after an exit or a failed start
  paredao_process_exits_total{program,expected}   exits ("1": an exit code listed in
                                                  exitcodes, "0": a crash or a signal)
  paredao_process_running{program}          1 while RUNNING

written after each event to a Prometheus text file (--textfile, read by
`./run.sh status`) and served on http://ADDRESS/metrics (--listen). One JSON log line per
exit and restart goes to standard error (supervisord writes it to the listener's log).
Standard library only: runs under Debian's python3 next to Debian's supervisor.
"""

import argparse
import datetime
import http.server
import json
import os
import sys
import threading

# A STARTING that follows one of these states is a restart (from STOPPED it is the first
# start or an operator's `supervisorctl start`).
RESTART_FROM = {"EXITED", "BACKOFF", "FATAL"}


class Counters:
    """The metrics, shared by the event loop and the HTTP thread."""

    def __init__(self, textfile):
        self.lock = threading.Lock()
        self.textfile = textfile
        self.restarts = {}
        self.exits = {}
        self.running = {}
        self.load()

    def load(self):
        """Keeps the counts when supervisord restarts the listener itself."""
        try:
            with open(self.textfile, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("paredao_process_restarts_total{"):
                        labels, value = line.rsplit(" ", 1)
                        self.restarts[label(labels, "program")] = int(float(value))
                    elif line.startswith("paredao_process_exits_total{"):
                        labels, value = line.rsplit(" ", 1)
                        key = (label(labels, "program"), label(labels, "expected"))
                        self.exits[key] = int(float(value))
        except (OSError, ValueError):
            pass

    def event(self, name, headers):
        program = headers.get("processname", "?")
        if program == os.environ.get("SUPERVISOR_PROCESS_NAME"):
            return
        state = name.replace("PROCESS_STATE_", "")
        with self.lock:
            self.restarts.setdefault(program, 0)
            self.running[program] = 1 if state == "RUNNING" else 0
            if state == "EXITED":
                key = (program, headers.get("expected", "0"))
                self.exits[key] = self.exits.get(key, 0) + 1
                log("WARNING" if key[1] == "0" else "INFO", "Program exited",
                    program=program, expected=key[1], pid=headers.get("pid", ""))
            elif state == "STARTING" and headers.get("from_state") in RESTART_FROM:
                self.restarts[program] += 1
                log("WARNING", "Program restarted", program=program,
                    from_state=headers.get("from_state"), attempt=headers.get("tries", "0"),
                    restarts=str(self.restarts[program]))
            elif state == "FATAL":
                log("ERROR", "Program gave up after its start retries", program=program)
            self.write()

    def render(self):
        lines = ["# HELP paredao_process_restarts_total Restarts of a supervised program (after an exit or a failed start).",
                 "# TYPE paredao_process_restarts_total counter"]
        lines += [f'paredao_process_restarts_total{{program="{p}"}} {n}' for p, n in sorted(self.restarts.items())]
        lines += ["# HELP paredao_process_exits_total Exits of a supervised program; expected=\"0\" is a crash or a signal.",
                  "# TYPE paredao_process_exits_total counter"]
        lines += [f'paredao_process_exits_total{{program="{p}",expected="{e}"}} {n}' for (p, e), n in sorted(self.exits.items())]
        lines += ["# HELP paredao_process_running 1 while the supervised program is RUNNING.",
                  "# TYPE paredao_process_running gauge"]
        lines += [f'paredao_process_running{{program="{p}"}} {n}' for p, n in sorted(self.running.items())]
        return "\n".join(lines) + "\n"

    def write(self):
        temporary = self.textfile + ".tmp"
        with open(temporary, "w", encoding="utf-8") as fh:
            fh.write(self.render())
        os.replace(temporary, self.textfile)


def label(labels, name):
    marker = f'{name}="'
    start = labels.index(marker) + len(marker)
    return labels[start:labels.index('"', start)]


def log(level, message, **metadata):
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {"ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
              "level": level, "logger": "supervisor", "message": message, **metadata}
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()


def serve(counters, address):
    host, port = address.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404)
                return
            with counters.lock:
                body = counters.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def parse_headers(line):
    return dict(token.split(":", 1) for token in line.split())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textfile", required=True, help="Prometheus text file to keep up to date")
    parser.add_argument("--listen", help="HOST:PORT serving /metrics (none: the file only)")
    args = parser.parse_args()
    counters = Counters(args.textfile)
    counters.write()
    if args.listen:
        serve(counters, args.listen)
    stdin, stdout = sys.stdin, sys.stdout
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header = parse_headers(stdin.readline())
        payload = stdin.read(int(header.get("len", "0")))
        body_headers, _, _ = payload.partition("\n")
        try:
            counters.event(header.get("eventname", ""), parse_headers(body_headers))
        except Exception as error:  # a bad event must not stop the counting
            log("ERROR", "Event not understood", error=str(error))
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    main()
