#!/usr/bin/env python3
"""A stand-in ingest endpoint for the reporter benchmarks: accepts every POST
with 202 and appends each sample's collectedAt to a file, one per line, so a
script can check that nothing was lost. It checks nothing else (signatures are
the real ingest's job and are covered by the Go tests).

usage: sink.py PORT OUTFILE [CERTFILE KEYFILE]   (with a cert: HTTPS)
"""
import gzip
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as real ingest endpoints do: the reporter reuses its
    # connection instead of paying a TCP (and TLS) handshake per batch.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        samples = json.loads(body)["samples"]
        with open(sys.argv[2], "a") as f:
            for s in samples:
                f.write(s["collectedAt"] + "\n")
        out = json.dumps({"accepted": len(samples), "duplicates": 0, "stale": 0}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
