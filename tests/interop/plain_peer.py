#!/usr/bin/env python3
"""A WebRTC peer that knows nothing of rtcat: a browser page or aiortc using only the standard
data-channel API ("plain" peers). rtcat's tests pipe it to rtcat exactly as they pipe two rtcats.

  plain_peer.py --engine chromium|firefox|aiortc --role offer|answer MODE [--result R.json]
                [--timeout S] [--grace S] [--verbose]
  MODE:  --recv DIR [--expect LABEL]...          save every channel the peer opens as DIR/<label>
         --send FILE [--send-as LABEL]...        one channel per file, then hang up
         --netcat TEXT [--label chat]            send TEXT on one channel, collect the peer's

Signaling: our description is ONE line of JSON {"type":"offer","sdp":"..."} on stdout, printed
once ICE gathering is complete (non-trickle); the peer's is read from stdin, as JSON or as plain
SDP ended by a blank line or EOF. Nothing else is ever written to stdout; logs go to stderr.

Exit codes: 0 ok, 1 internal, 2 usage, 3 connection failed, 4 timeout, 7 data missing,
mismatched or incomplete, 128+N on signal N. tests/interop/README.md ("Plain peers") documents
the result JSON and what each engine does here.

Browsers are driven by a page only (tests/interop/plain_page.js), served with its instructions by
a stdlib HTTP server on 127.0.0.1: no WebDriver, no DevTools. The aiortc engine
(tests/interop/plain_aiortc.py) needs Debian's python3-aiortc, i.e. /usr/bin/python3; this file
re-executes itself with it when the running interpreter lacks aiortc. Everything outside the
aiortc engine is stdlib only.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

HERE = Path(__file__).resolve().parent
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_CONNECT, EXIT_TIMEOUT, EXIT_DATA = 0, 1, 2, 3, 4, 7

# ---- Tunables ------------------------------------------------------------------------------------
# 64 KiB messages: what rtcat and browsers send; pion-style stacks refuse more than 65535 bytes,
# so a smaller a=max-message-size of the peer lowers it (docs/DESIGN.md, known traps).
kChunk = 64 * 1024
# Back-pressure: stop sending above kHighWater buffered bytes, resume on "bufferedamountlow"
# (threshold kLowWater). Loopback needs little; Chromium closes a channel past 16 MiB.
kHighWater = 1024 * 1024
kLowWater = 256 * 1024
# Between "everything sent" and the channel's close. Chromium 156 drops every message of a
# channel whose stream reset arrives a few milliseconds after them, although its SCTP stack
# acknowledged them (README.md, "What Chromium does here"); seen with aiortc -> Chromium in
# netcat mode. A plain sender that waits a moment avoids tripping it.
kCloseDelayMs = 200
# After our part is complete, how long we wait for the peer to hang up before we do.
kGraceS = 3.0
kDefaultTimeoutS = 60.0
# A label becomes a file name: refuse path separators, dot segments and control characters.
kMaxLabel = 255

CHROMIUM = os.environ.get("RTCAT_CHROMIUM", "/usr/lib/chromium/chromium")
FIREFOX = os.environ.get("RTCAT_FIREFOX", "/usr/lib/firefox-esr/firefox-esr")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, the one python3-aiortc is installed for


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def unsafe_label(label):
    """Why `label` cannot be a file name in DIR, or None."""
    if not label:
        return "empty label"
    if len(label.encode()) > kMaxLabel:
        return "label too long"
    if "/" in label or "\\" in label:
        return "path separator in label"
    if label in (".", "..") or ".." in label:
        return "'..' in label"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        return "control character in label"
    return None


def sdp_attr(sdp, name):
    """Values of a=name:... lines (e.g. max-message-size) in a description."""
    return [ln.split(":", 1)[1].strip() for ln in (sdp or "").splitlines()
            if ln.startswith(f"a={name}:")]


def candidates(sdp):
    return [" ".join(ln.split()[4:8]) for ln in (sdp or "").splitlines() if ln.startswith("a=candidate:")]


# ---- The run: options, logging, outcome ------------------------------------------------------------
class Run:
    """State shared by every engine: options, the clock, logs, the received data, the result."""

    def __init__(self, opt):
        self.opt = opt
        self.t0 = time.monotonic()
        self.mode = "send" if opt.send else "recv" if opt.recv is not None else "netcat"
        self.lock = threading.Lock()
        self.result = {
            "ok": False, "engine": opt.engine, "role": opt.role, "mode": self.mode, "error": None,
            "exit_code": None, "files": [], "channels": [], "hangup": None, "peer_hung_up": None,
            "selected_pair": None, "max_message_size": {}, "timings": {}, "events": [],
            "local_description": None, "remote_description": None,
        }
        if self.mode == "netcat":
            self.result["received"] = None
        self.send_files = []
        for i, path in enumerate(opt.send):
            p = Path(path)
            if not p.is_file():
                raise Failure(EXIT_USAGE, f"--send {path}: not a readable regular file")
            label = opt.send_as[i] or p.name
            self.send_files.append({"path": str(p), "label": label, "size": p.stat().st_size})
        self.saved_labels = set()
        self.channel_data = {}  # key -> (label, origin, bytes), for netcat's "received"
        self.finished = False

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000)

    def log(self, msg):
        sys.stderr.write(f"[plain_peer {self.opt.engine} {self.opt.role} {self.ms() / 1000:.3f}s] {msg}\n")
        sys.stderr.flush()

    def timing(self, name):
        self.result["timings"].setdefault(name, self.ms())

    # Signaling ------------------------------------------------------------------------------------
    def print_description(self, desc):
        """desc: {"type","sdp"}. The one line stdout ever gets."""
        self.result["local_description"] = desc
        self.result["max_message_size"]["local_sdp"] = (sdp_attr(desc["sdp"], "max-message-size") or [None])[0]
        self.log(f"our {desc['type']}: candidates {candidates(desc['sdp'])}")
        try:
            sys.stdout.write(json.dumps({"type": desc["type"], "sdp": desc["sdp"]}) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError) as e:
            raise Failure(EXIT_INTERNAL, f"cannot write our description to stdout: {e}")
        self.timing("local_description_ms")

    def read_description(self):
        """The peer's description from stdin: JSON (one or more lines) or plain SDP ended by a
        blank line or EOF. Reads no further than the description."""
        want = "answer" if self.opt.role == "offer" else "offer"
        lines = []
        stdin = sys.stdin.buffer
        while True:
            raw = stdin.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace")
            if not lines and not line.strip():
                continue
            lines.append(line)
            text = "".join(lines)
            if text.lstrip().startswith("{"):
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError:
                    continue  # more lines to come
                return self._accept_description(obj, want)
            if not line.strip():
                break  # a blank line ends plain SDP
        text = "".join(lines).strip()
        if not text:
            raise Failure(EXIT_USAGE, "stdin ended before the peer's description")
        if text.startswith("{"):
            raise Failure(EXIT_USAGE, f"stdin ended inside a JSON description: {text[:200]!r}")
        if not text.startswith("v="):
            raise Failure(EXIT_USAGE, f"stdin is neither JSON nor SDP: {text[:200]!r}")
        sdp = "\r\n".join(ln.rstrip("\r") for ln in text.splitlines() if ln.strip()) + "\r\n"
        return self._accept_description({"type": want, "sdp": sdp}, want)

    def _accept_description(self, obj, want):
        if not isinstance(obj, dict) or not isinstance(obj.get("sdp"), str):
            raise Failure(EXIT_USAGE, "JSON description without \"sdp\"")
        if obj.get("type") != want:
            raise Failure(EXIT_USAGE, f"expected a description of type {want!r}, got {obj.get('type')!r}")
        desc = {"type": want, "sdp": obj["sdp"]}
        self.result["remote_description"] = desc
        self.result["max_message_size"]["remote_sdp"] = (sdp_attr(desc["sdp"], "max-message-size") or [None])[0]
        self.log(f"their {want}: candidates {candidates(desc['sdp'])}")
        self.timing("remote_description_ms")
        return desc

    # Received data ------------------------------------------------------------------------------
    def channel_bytes(self, key, label, origin, data, final, clean, complete):
        """Everything one channel received. In --recv mode a channel the peer opened that closed
        is saved as DIR/<label>. Returns what the page/engine should know."""
        with self.lock:
            self.channel_data[key] = (label, origin, data)
            if self.mode != "recv" or origin != "remote" or not final:
                return {"saved": False}
            why = unsafe_label(label)
            if not why and label in self.saved_labels:
                why = "a channel with this label was already saved"
            entry = {"label": label, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                     "clean": clean, "complete": complete, "saved": False, "path": None,
                     "at_ms": self.ms()}
            self.result["files"].append(entry)
            if why:
                entry["error"] = why
                self.log(f"channel {label!r}: {len(data)} bytes NOT saved: {why}")
                return {"saved": False, "error": why}
            path = Path(self.opt.recv) / label
            path.write_bytes(data)
            self.saved_labels.add(label)
            entry.update(saved=True, path=str(path))
            how = "cleanly" if clean else "after the peer's reset" if complete else "UNCLEANLY"
            self.log(f"channel {label!r} closed {how}: "
                     f"{len(data)} bytes saved to {path} (sha256 {entry['sha256'][:16]}...)")
            return {"saved": True, "path": str(path), "sha256": entry["sha256"], "size": len(data)}

    def finish(self, code, error=None, **fields):
        """Completes and writes the result JSON; returns the exit code."""
        with self.lock:
            if self.finished:
                return self.result["exit_code"]
            self.finished = True
            r = self.result
            r.update({k: v for k, v in fields.items() if v is not None})
            if self.mode == "netcat":
                # Everything that arrived, on any channel but our own placeholder, in open order.
                got = b"".join(d for _, (lbl, origin, d) in sorted(self.channel_data.items()))
                r["received"] = got.decode("utf-8", "replace")
                r["received_bytes"] = len(got)
            if self.mode == "send":
                for f in r["files"]:
                    src = next((s for s in self.send_files if s["label"] == f.get("label")), None)
                    if src:
                        f.setdefault("path", src["path"])
                        f["sha256"] = hashlib.sha256(Path(src["path"]).read_bytes()).hexdigest()
            r["exit_code"] = code
            r["ok"] = code == EXIT_OK
            if error:
                r["error"] = error
            r["seconds"] = round(self.ms() / 1000, 3)
            if self.opt.result:
                try:
                    Path(self.opt.result).write_text(json.dumps(r, indent=2) + "\n")
                except OSError as e:
                    self.log(f"cannot write {self.opt.result}: {e}")
        if code == EXIT_OK:
            self.log(f"OK: {self.summary()}")
        else:
            self.log(f"FAILED (exit {code}): {error}")
        return code

    def summary(self):
        r = self.result
        pair = r.get("selected_pair") or {}
        via = ""
        if pair.get("local"):
            via = (f" via {pair['local'].get('address')}:{pair['local'].get('port')} <-> "
                   f"{pair['remote'].get('address')}:{pair['remote'].get('port')}")
        hung = f"; peer hung up: {r.get('peer_hung_up')}" if r.get("peer_hung_up") is not None else ""
        if self.mode == "netcat":
            return f"netcat: received {r.get('received_bytes')} byte(s){via}{hung}, {r['seconds']} s"
        n = len(r["files"])
        return f"{'sent' if self.mode == 'send' else 'saved'} {n} channel(s){via}{hung}, {r['seconds']} s"


# ---- Browser engines ---------------------------------------------------------------------------------
def firefox_user_js():
    """Prefs: loopback candidates and a fake microphone (DESIGN.md, traps), and no background
    connection of any kind (updates, telemetry, captive portal, safe browsing, remote settings,
    normandy, push, ...): the tests run without internet, inside a namespace with only lo."""
    prefs = {
        # WebRTC on loopback: host candidates unobfuscated (no mDNS), 127.0.0.1 included;
        # getUserMedia answered by a fake device without a prompt.
        # Firefox gathers only the default route's address unless the page is capturing or
        # holds a camera/microphone permission (MediaManager::IsActivelyCapturingOrHasAPermission);
        # in a namespace with only lo there is no default route, hence no candidate at all.
        # The live fake capture the page keeps was NOT enough here (ICE "failed" before
        # gathering, "Couldn't gather ICE candidates, error=10"); allowing the microphone and
        # camera for every site is. README.md, "Plain peers".
        "permissions.default.microphone": 1, "permissions.default.camera": 1,
        "media.peerconnection.ice.loopback": True,
        "media.peerconnection.ice.obfuscate_host_addresses": False,
        "media.navigator.streams.fake": True,
        "media.navigator.permission.disabled": True,
        # Updates (browser, add-ons, system add-ons, search engines, GMP plugins such as OpenH264).
        "app.update.auto": False, "app.update.enabled": False, "app.update.checkInstallTime": False,
        "app.update.disabledForTesting": True, "app.update.url": "",
        "extensions.update.enabled": False, "extensions.update.autoUpdateDefault": False,
        "extensions.systemAddon.update.enabled": False, "extensions.systemAddon.update.url": "",
        "extensions.getAddons.cache.enabled": False, "extensions.blocklist.enabled": False,
        "extensions.webservice.discoverURL": "", "extensions.getAddons.discovery.api_url": "",
        "browser.search.update": False, "browser.search.geoSpecificDefaults": False,
        "browser.region.network.url": "", "browser.region.update.enabled": False,
        "media.gmp-manager.url": "", "media.gmp-gmpopenh264.enabled": False,
        "media.gmp-gmpopenh264.autoupdate": False, "media.gmp-provider.enabled": False,
        "media.gmp-widevinecdm.enabled": False, "media.eme.enabled": False,
        # Telemetry and data reporting.
        "toolkit.telemetry.enabled": False, "toolkit.telemetry.unified": False,
        "toolkit.telemetry.archive.enabled": False, "toolkit.telemetry.server": "",
        "toolkit.telemetry.updatePing.enabled": False, "toolkit.telemetry.bhrPing.enabled": False,
        "toolkit.telemetry.newProfilePing.enabled": False,
        "toolkit.telemetry.shutdownPingSender.enabled": False,
        "toolkit.telemetry.firstShutdownPing.enabled": False, "toolkit.coverage.endpoint.base": "",
        "datareporting.healthreport.uploadEnabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
        "datareporting.policy.firstRunURL": "", "browser.ping-centre.telemetry": False,
        "browser.newtabpage.activity-stream.telemetry": False,
        "browser.newtabpage.activity-stream.feeds.telemetry": False,
        "browser.tabs.crashReporting.sendReport": False, "breakpad.reportURL": "",
        # Studies, experiments, remote settings (normandy, nimbus, messaging system).
        "app.normandy.enabled": False, "app.normandy.api_url": "",
        "app.shield.optoutstudies.enabled": False, "messaging-system.rsexperimentloader.enabled": False,
        "services.settings.server": "data:,#remote-settings-disabled",
        "security.remote_settings.crlite_filters.enabled": False,
        "security.remote_settings.intermediates.enabled": False,
        "browser.translations.enable": False, "browser.ml.enable": False,
        # Captive portal and connectivity checks.
        "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
        "captivedetect.canonicalURL": "",
        # Safe browsing lists and lookups.
        "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
        "browser.safebrowsing.downloads.enabled": False,
        "browser.safebrowsing.downloads.remote.enabled": False,
        "browser.safebrowsing.blockedURIs.enabled": False,
        "browser.safebrowsing.provider.google.updateURL": "",
        "browser.safebrowsing.provider.google4.updateURL": "",
        "browser.safebrowsing.provider.mozilla.updateURL": "",
        "browser.safebrowsing.update.enabled": False,
        # Push, sync, accounts, geolocation, OCSP.
        "dom.push.enabled": False, "dom.push.connection.enabled": False, "dom.push.serverURL": "",
        "identity.fxaccounts.enabled": False, "services.sync.engine.addons": False,
        "geo.enabled": False, "geo.provider.network.url": "", "security.OCSP.enabled": 0,
        # Speculative connections, prefetching, DNS over HTTPS (5 = off), new-tab content.
        "network.dns.disablePrefetch": True, "network.prefetch-next": False,
        "network.predictor.enabled": False, "network.http.speculative-parallel-limit": 0,
        "browser.places.speculativeConnect.enabled": False, "network.trr.mode": 5,
        "browser.newtabpage.enabled": False, "browser.newtabpage.activity-stream.default.sites": "",
        "browser.newtabpage.activity-stream.feeds.section.topstories": False,
        "browser.newtabpage.activity-stream.feeds.topsites": False,
        "browser.topsites.contile.enabled": False, "browser.urlbar.quicksuggest.enabled": False,
        "browser.urlbar.suggest.quicksuggest.sponsored": False, "browser.discovery.enabled": False,
        # First-run and start-up pages.
        "browser.shell.checkDefaultBrowser": False, "browser.startup.page": 0,
        "browser.startup.homepage_override.mstone": "ignore", "startup.homepage_welcome_url": "",
        "startup.homepage_welcome_url.additional": "", "browser.aboutwelcome.enabled": False,
        "browser.sessionstore.resume_from_crash": False, "toolkit.startup.max_resumed_crashes": -1,
    }
    # Debugging aid: RTCAT_FIREFOX_EXTRA_PREFS='{"pref": value, ...}'.
    prefs.update(json.loads(os.environ.get("RTCAT_FIREFOX_EXTRA_PREFS") or "{}"))
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def chromium_argv(profile, url):
    # Flags from DESIGN.md (§5/§6). No --remote-debugging-port: the page drives itself.
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--disable-crash-reporter", "--mute-audio",
            "--password-store=basic", "--use-mock-keychain",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            *os.environ.get("RTCAT_CHROMIUM_EXTRA_FLAGS", "").split(),
            f"--user-data-dir={profile}/chromium", url]


def firefox_argv(profile, url):
    (Path(profile) / "firefox").mkdir(exist_ok=True)
    (Path(profile) / "firefox" / "user.js").write_text(firefox_user_js())
    return [FIREFOX, "--headless", "--no-remote", "--profile", f"{profile}/firefox", url]


class Browser:
    """One browser in a process group of its own, led by a watchdog shell that removes it (and
    the profile) if this process dies without cleaning up."""

    def __init__(self, run, engine, url):
        self.run = run
        self.profile = tempfile.mkdtemp(prefix=f"rtcat-plain-{engine}-")
        argv = chromium_argv(self.profile, url) if engine == "chromium" else firefox_argv(self.profile, url)
        if not os.access(argv[0], os.X_OK):
            shutil.rmtree(self.profile, ignore_errors=True)
            raise Failure(EXIT_INTERNAL, f"{engine} not found at {argv[0]}")
        self.log_path = Path(self.profile) / "browser.log"
        q = lambda s: "'" + str(s).replace("'", "'\\''") + "'"  # noqa: E731
        p = q(self.profile)
        # The browser's children share the group; Chromium's crashpad handlers do not (own
        # groups), so stragglers are also found by the profile path in their command lines.
        script = f"""{" ".join(q(a) for a in argv)} >{q(self.log_path)} 2>&1 & c=$!
while kill -0 {os.getpid()} 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 0.5; done
trap '' TERM
kill -KILL $c 2>/dev/null
for d in /proc/[0-9]*; do
    [ "${{d#/proc/}}" = $$ ] || ! grep -qF {p} $d/cmdline 2>/dev/null || kill -KILL ${{d#/proc/}}
done
sleep 0.3; rm -rf {p}
kill -KILL 0"""
        env = dict(os.environ)
        env.update(HOME=self.profile, XDG_CONFIG_HOME=f"{self.profile}/.config",
                   XDG_CACHE_HOME=f"{self.profile}/.cache", XDG_DATA_HOME=f"{self.profile}/.local",
                   TMPDIR=self.profile, MOZ_CRASHREPORTER_DISABLE="1",
                   MOZ_CRASHREPORTER_NO_REPORT="1", MOZ_DISABLE_AUTO_SAFE_MODE="1")
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        self.proc = subprocess.Popen(["/bin/sh", "-c", script], env=env, start_new_session=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.pgid = self.proc.pid
        run.log(f"{engine} started (pgid {self.pgid}, profile {self.profile})")

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=25):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def _members(self):
        """Live (non-zombie) processes of our group or naming our profile."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if fields[0] == "Z":
                    continue
                if int(fields[2]) == self.pgid or self.profile.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    out.append(int(d))
            except (OSError, ValueError):
                pass
        return out

    def stop(self):
        """Ends every process of the browser and removes the profile."""
        t = time.monotonic()
        # SIGTERM first: the browser then reaps its own children (a SIGKILLed browser leaves
        # zombies to PID 1, which some sandboxes never reap). The watchdog ignores TERM.
        for pid in self._members():
            if pid != self.pgid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        while time.monotonic() - t < 2.0 and len(self._members()) > 1:
            time.sleep(0.05)
        for pid in [self.pgid, *self._members()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        while time.monotonic() - t < 4.0 and self._members():
            time.sleep(0.05)
        shutil.rmtree(self.profile, ignore_errors=True)
        self.run.log(f"browser stopped and profile removed in {time.monotonic() - t:.2f} s")


class PageServer(ThreadingHTTPServer):
    """The page's only contact: instructions, signaling, file bytes, events, the result."""

    daemon_threads = True

    def __init__(self, run, config):
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.run = run
        self.config = config
        self.cond = threading.Condition()
        self.local = None  # our description, posted by the page
        self.remote = None  # the peer's, from stdin
        self.result = None  # the page's outcome
        self.close_requested = False
        self.page_seen = False
        self.page_closed_pc = False


class PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PageServer

    def log_message(self, fmt, *args):  # BaseHTTPRequestHandler logs every request otherwise
        pass

    def reply(self, status, body=b"", ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def wait_for(self, pred, seconds):
        s = self.server
        with s.cond:
            s.cond.wait_for(pred, timeout=seconds)
            return pred()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        s, run = self.server, self.server.run
        url = urlparse(self.path)
        if url.path == "/":
            s.page_seen = True
            run.timing("page_loaded_ms")
            self.reply(200, '<!doctype html><meta charset="utf-8"><title>plain peer</title>'
                            '<script src="/page.js"></script>', "text/html; charset=utf-8")
        elif url.path == "/page.js":
            self.reply(200, (HERE / "plain_page.js").read_bytes(), "text/javascript")
        elif url.path == "/config":
            run.timing("page_config_ms")
            self.reply(200, s.config)
        elif url.path == "/remote":
            if self.wait_for(lambda: s.remote is not None, 20):
                self.reply(200, s.remote)
            else:
                self.reply(204)
        elif url.path == "/control":
            if self.wait_for(lambda: s.close_requested, 20):
                self.reply(200, "close", "text/plain")
            else:
                self.reply(204)
        elif url.path.startswith("/file/"):
            i = int(url.path[len("/file/"):])
            self.reply(200, Path(run.send_files[i]["path"]).read_bytes(), "application/octet-stream")
        else:
            self.reply(404, b"", "text/plain")

    def do_POST(self):  # noqa: N802
        s, run = self.server, self.server.run
        url = urlparse(self.path)
        data = self.body()
        if url.path == "/local":
            with s.cond:
                s.local = json.loads(data)
                s.cond.notify_all()
            self.reply(204)
        elif url.path == "/event":
            e = json.loads(data)
            with run.lock:
                run.result["events"].append(e)
            if e.get("what") == "closing our connection":
                s.page_closed_pc = True
            if run.opt.verbose or e.get("what") not in ("open", "sctp"):
                run.log("page: " + json.dumps(e, separators=(",", ":"))[:300])
            self.reply(204)
        elif url.path == "/data":
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.reply(200, run.channel_bytes(int(q["key"]), q.get("label", ""), q.get("origin"), data,
                                              q.get("final") == "1", q.get("clean") == "true",
                                              q.get("complete") == "true"))
        elif url.path == "/result":
            with s.cond:
                s.result = json.loads(data)
                s.cond.notify_all()
            self.reply(204)
        else:
            self.reply(404, b"", "text/plain")


def run_browser(run):
    opt = run.opt
    config = {
        "engine": opt.engine, "role": opt.role, "mode": run.mode, "expect": opt.expect,
        "label": opt.label, "text_b64": base64.b64encode((opt.netcat or "").encode()).decode(),
        "files": [{"label": f["label"], "size": f["size"]} for f in run.send_files],
        "chunk": kChunk, "high_water": kHighWater, "low_water": kLowWater, "grace_s": opt.grace,
        "close_delay_ms": kCloseDelayMs,
        # Firefox offers 127.0.0.1 only while a capture is active (DESIGN.md, traps).
        "capture": json.loads(os.environ.get("RTCAT_FIREFOX_CAPTURE", '{"audio": true}'))
        if opt.engine == "firefox" else None,
    }
    server = PageServer(run, config)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    browser = None
    deadline = run.t0 + opt.timeout

    def wait(pred, what, limit=None):
        """Until pred() (under server.cond) or the page's result; bounded by the run's deadline
        and, for start-up steps, by `limit` seconds (a browser that never loads the page)."""
        end = deadline if limit is None else min(deadline, time.monotonic() + limit)
        with server.cond:
            while not pred() and server.result is None:
                if not browser.alive():
                    raise Failure(EXIT_INTERNAL, f"the browser exited while {what}:\n{browser.log_tail()}")
                left = end - time.monotonic()
                if left <= 0:
                    if time.monotonic() < deadline:
                        raise Failure(EXIT_INTERNAL, f"no progress in {limit:.0f} s while {what}; "
                                                     f"page loaded: {server.page_seen}\n{browser.log_tail()}")
                    raise Failure(EXIT_TIMEOUT, f"timeout after {opt.timeout:g} s while {what}")
                server.cond.wait(min(left, 0.25))

    def hand_over_remote():
        remote = read_remote(run, deadline)
        with server.cond:
            server.remote = remote
            server.cond.notify_all()

    try:
        browser = Browser(run, opt.engine, url)
        run.timing("browser_spawned_ms")
        if opt.role == "answer":
            hand_over_remote()  # the browser starts meanwhile
        wait(lambda: server.local is not None, "waiting for the page's description", limit=45)
        if server.local is not None:
            run.print_description(server.local)
            if opt.role == "offer":
                hand_over_remote()
        wait(lambda: False, "waiting for the page to finish")
        return finish_from_page(run, server.result)
    finally:
        # No signal may interrupt the cleanup (it would leave a browser behind).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        if browser is not None:
            # The page hangs up itself when it finishes; otherwise (timeout, signal, failure) it
            # is asked to, so the peer sees a hang-up rather than waiting for ICE consent (30 s).
            if not server.page_closed_pc and browser.alive() and server.page_seen:
                with server.cond:
                    server.close_requested = True
                    server.cond.notify_all()
                # It also reports what it saw so far (channels, events) for the result.
                t = time.monotonic()
                while time.monotonic() - t < 1.5 and server.result is None:
                    time.sleep(0.05)
                if server.result is not None:
                    merge_page(run, server.result)
            browser.stop()
        server.shutdown()


def read_remote(run, deadline):
    """Reads the peer's description on a thread so the overall timeout still applies."""
    box = {}

    def reader():
        try:
            box["desc"] = run.read_description()
        except Failure as e:
            box["error"] = e
        except Exception as e:  # noqa: BLE001
            box["error"] = Failure(EXIT_INTERNAL, f"reading stdin: {e}")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if t.is_alive():
        raise Failure(EXIT_TIMEOUT, f"timeout after {run.opt.timeout:g} s waiting for the peer's description")
    if "error" in box:
        raise box["error"]
    return box["desc"]


def finish_from_page(run, page):
    merge_page(run, page)
    return run.finish(page.get("code", EXIT_INTERNAL), page.get("error"))


def merge_page(run, page):
    """The page's view (channels, hang-up, events, pair, timings) into the result."""
    r = run.result
    with run.lock:
        for k in ("channels", "hangup", "selected_pair", "user_agent"):
            if page.get(k) is not None:
                r[k] = page[k]
        r["events"] = page.get("events") or r["events"]
        r["timings"].update({f"page_{k}": v for k, v in (page.get("timings") or {}).items()})
        r["max_message_size"]["api"] = page.get("max_message_size_api")
        r["peer_hung_up"] = page.get("peer_hung_up", bool(page.get("hangup")))
        if run.mode == "send" and page.get("files"):
            r["files"] = page["files"]


# ---- Command line ------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(prog="plain_peer.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", required=True, choices=["chromium", "firefox", "aiortc"])
    p.add_argument("--role", choices=["offer", "answer"])
    p.add_argument("--check", action="store_true",
                   help="only say whether ENGINE can run here: exit 0, or 77 with the reason")
    p.add_argument("--recv", metavar="DIR", help="save every channel the peer opens as DIR/<label>")
    p.add_argument("--expect", metavar="LABEL", action="append", default=[],
                   help="(--recv) done only once LABEL was saved (repeatable)")
    p.add_argument("--send", metavar="FILE", action="append", default=[],
                   help="send FILE on a channel labelled with its base name (repeatable)")
    p.add_argument("--send-as", metavar="LABEL", action="append", default=[],
                   help="label of the preceding --send FILE")
    p.add_argument("--netcat", metavar="TEXT", help="send TEXT on one channel, collect what arrives")
    p.add_argument("--label", default="chat", help="(--netcat) our channel's label (default chat)")
    p.add_argument("--result", metavar="PATH", help="write the outcome as JSON")
    p.add_argument("--timeout", type=float, default=kDefaultTimeoutS, help="hard limit for the run")
    p.add_argument("--grace", type=float, default=kGraceS,
                   help="seconds to wait for the peer to hang up once we are done (default 3)")
    p.add_argument("--verbose", "-v", action="store_true")
    # --send-as pairs with the --send before it: re-walk argv to keep that pairing.
    opt = p.parse_args(argv)
    pairs, last = [], None
    for i, a in enumerate(argv):
        if a == "--send":
            pairs.append(None)
            last = len(pairs) - 1
        elif a == "--send-as":
            if last is None or pairs[last] is not None:
                p.error("--send-as must follow its --send FILE (one each)")
            pairs[last] = argv[i + 1]
    opt.send_as = pairs
    if opt.check:
        return opt
    if opt.role is None:
        p.error("--role offer|answer is required")
    modes = [bool(opt.send), opt.recv is not None, opt.netcat is not None]
    if sum(modes) != 1:
        p.error("exactly one of --send, --recv, --netcat")
    if opt.expect and opt.recv is None:
        p.error("--expect needs --recv")
    if opt.timeout <= 0:
        p.error("--timeout must be positive")
    return opt


def maybe_reexec_for_aiortc(argv):
    """aiortc is Debian's python3-aiortc, installed for /usr/bin/python3 only; a pyenv python
    earlier on PATH lacks it."""
    try:
        import aiortc  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and os.access(SYSTEM_PYTHON, os.X_OK):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, str(Path(__file__).resolve()), *argv])
    sys.stderr.write("plain_peer: aiortc is not installed (apt-get install python3-aiortc)\n")
    sys.exit(EXIT_INTERNAL)


def check_engine(engine):
    """Exit code 0 when `engine` can run here, else 77 (the tests' "skip") with the reason."""
    if engine == "aiortc":
        r = subprocess.run([SYSTEM_PYTHON, "-c", "import aiortc; print(aiortc.__version__)"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"aiortc is not importable by {SYSTEM_PYTHON} (apt-get install python3-aiortc)")
            return 77
        print(f"aiortc {r.stdout.strip()}")
        return 0
    path = CHROMIUM if engine == "chromium" else FIREFOX
    if not os.access(path, os.X_OK):
        pkg = "chromium" if engine == "chromium" else "firefox-esr"
        print(f"{engine} not found at {path} (apt-get install {pkg})")
        return 77
    print(path)
    return 0


def main(argv):
    opt = parse_args(argv)
    if opt.check:
        return check_engine(opt.engine)
    if opt.engine == "aiortc":
        maybe_reexec_for_aiortc(argv)
    try:
        run = Run(opt)
    except Failure as e:
        sys.stderr.write(f"plain_peer: {e}\n")
        return e.code
    if opt.recv is not None:
        Path(opt.recv).mkdir(parents=True, exist_ok=True)

    def on_signal(signum, _frame):
        raise Failure(128 + signum, f"got signal {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    run.log(f"mode {run.mode}, timeout {opt.timeout:g} s")
    try:
        if opt.engine == "aiortc":
            sys.path.insert(0, str(HERE))
            # plain_aiortc imports this file as "plain_peer": make that this very module (one
            # Failure class), not a second copy.
            sys.modules.setdefault("plain_peer", sys.modules[__name__])
            import plain_aiortc
            return plain_aiortc.run(run)
        return run_browser(run)
    except Failure as e:
        return run.finish(e.code, str(e))
    except Exception as e:  # noqa: BLE001
        import traceback
        return run.finish(EXIT_INTERNAL, f"internal error: {e}\n{traceback.format_exc()}")


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # os._exit: a reader thread may still block in stdin's readline (the peer never sent its
    # description); interpreter shutdown would then abort on stdin's lock (exit 134, not ours).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
