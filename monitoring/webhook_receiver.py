"""A webhook receiver for Alertmanager on 127.0.0.1: stores each POST's body as
DIR/<n>-<path>.json (path without slashes) and answers 200. For alert-delivery.sh, or to
watch what a local Alertmanager would send.

    python3 webhook_receiver.py PORT DIR
"""
import http.server
import itertools
import os
import sys

PORT, DIR = int(sys.argv[1]), sys.argv[2]
COUNT = itertools.count(1)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = f"{next(COUNT)}-{self.path.strip('/').replace('/', '_') or 'root'}.json"
        # Written under a temporary name, then renamed: a reader never sees half a file.
        path = os.path.join(DIR, name)
        with open(path + ".part", "wb") as f:
            f.write(body)
        os.rename(path + ".part", path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


os.makedirs(DIR, exist_ok=True)
http.server.HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
