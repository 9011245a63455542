#!/usr/bin/env python3
"""A stand-in for rtcat in plain mode, built on plain_peer.py's aiortc engine. It proves that
tests/cli/test_interop_plain.py can pass against a peer that behaves as the matrix expects, so a
failing case there is rtcat's, not the harness's:

    RTCAT=tests/interop/plain_standin_rtcat.py python3 tests/cli/test_interop_plain.py

It understands just the command lines the matrix uses: `send-file [--answer] FILE...`,
`offer|answer --out DIR`, and netcat `offer|answer --sdp-in X --sdp-out Y` (stdin -> the peer,
the peer's data -> stdout); -v, --json, --sdp-format and --timeout are accepted and ignored
except that send-file prints a --json-like report on stderr.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain_peer.py")


def main(args):
    args = [a for a in args if a not in ("-v", "--json")]

    def option(name):
        if name in args:
            i = args.index(name)
            value = args[i + 1]
            del args[i:i + 2]
            return value
        return None

    option("--sdp-format")
    option("--timeout")
    sdp_in, sdp_out, out = option("--sdp-in"), option("--sdp-out"), option("--out")
    command = args.pop(0)
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "r.json")
        base = [sys.executable, PEER, "--engine", "aiortc", "--result", result, "--timeout", "25"]
        if command == "send-file":
            role = "answer" if "--answer" in args else "offer"
            files = [a for a in args if a != "--answer"]
            rc = subprocess.call(base + ["--role", role] + sum((["--send", f] for f in files), []))
            sha = lambda f: hashlib.sha256(open(f, "rb").read()).hexdigest()  # noqa: E731
            sys.stderr.write(json.dumps({"ok": rc == 0, "files": [
                {"name": os.path.basename(f), "sha256": sha(f), "verified": False} for f in files]}) + "\n")
            return rc
        if out:
            return subprocess.call(base + ["--role", command, "--recv", out])
        text = sys.stdin.read()
        fin = open(sdp_in, "rb") if sdp_in else sys.stdin
        fout = open(sdp_out, "wb") if sdp_out else sys.stdout
        rc = subprocess.call(base + ["--role", command, "--netcat", text], stdin=fin, stdout=fout)
        with open(result) as f:
            sys.stdout.write(json.load(f).get("received") or "")
        return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
