"""A webhook receiver on loopback for the notification tests.

Every request is verified with the `standardwebhooks` package (an implementation of the
Standard Webhooks specification written elsewhere) when a secret is given, and logged as one
JSON line: receipt time, path, headers, body, whether the signature verified, the status sent.

What it answers comes from a JSON plan file, read again on every request (a test may rewrite
it; a new plan starts from its first step):
    {"steps": [{"status": 500}, {"status": 503, "retry_after": "1"},
               {"status": 302, "location": "http://..."}, {"hang": 30}],
     "then": {"status": 204, "body": "ok"}}
Usage: webhook_receiver.py PORT_FILE LOG_FILE PLAN_FILE [SECRET_FILE]
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, plan_file = sys.argv[1:4]
secret = open(sys.argv[4]).read().strip() if len(sys.argv) > 4 else None
verifier = None
if secret:
    from standardwebhooks.webhooks import Webhook

    verifier = Webhook(secret)

lock = threading.Lock()
state = {"plan_text": None, "step": 0}


def next_answer():
    with lock:
        text = open(plan_file).read()
        if text != state["plan_text"]:
            state["plan_text"], state["step"] = text, 0
        plan = json.loads(text)
        steps = plan.get("steps", [])
        i = state["step"]
        state["step"] += 1
        return steps[i] if i < len(steps) else plan.get("then", {"status": 204})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        received = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified, error = None, None
        if verifier is not None:
            try:
                verifier.verify(body, headers)
                verified = True
            except Exception as e:  # the verifier's own error names the problem
                verified, error = False, f"{type(e).__name__}: {e}"
        answer = next_answer()
        entry = {
            "t": received,
            "path": self.path,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "verified": verified,
            "verify_error": error,
            "answer": answer,
        }
        with lock:
            with open(log_file, "a") as f:
                f.write(json.dumps(entry) + "\n")
        if "hang" in answer:
            time.sleep(answer["hang"])
            return
        payload = answer.get("body", "").encode()
        self.send_response(answer.get("status", 204))
        if "retry_after" in answer:
            self.send_header("Retry-After", answer["retry_after"])
        if "location" in answer:
            self.send_header("Location", answer["location"])
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
tmp = port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.replace(tmp, port_file)
server.serve_forever()
