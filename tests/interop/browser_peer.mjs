#!/usr/bin/env node
// A headless-Chromium WebRTC peer for rtcat's interop tests.
//
//   node browser_peer.mjs --role offer|answer [--send FILE [--send-as NAME]]... [--recv DIR]
//                         [--expect-files N] [--netcat TEXT] [--timeout SECONDS] [--result PATH]
//                         [--label-echo] [--verbose]
//
// Signaling: one JSON line {"type":"offer"|"answer","sdp":"..."} on stdout (nothing else ever goes
// to stdout); the peer's description is read from stdin as a JSON object or as plain SDP ended by
// a blank line or EOF. ICE is non-trickle: the description is printed once gathering completes.
//
// Modes: --send FILE... makes the browser the sender of rtcat's file protocol (docs/file-transfer.md),
// --recv DIR the receiver; --netcat TEXT a peer of rtcat's netcat mode (one "rtcat-stdio" channel
// each way); without any of them it opens one data channel and exchanges "ping" / "echo:ping". Everything is logged to stderr; the outcome is also written as JSON to --result.
//
// Why things are the way they are (all found on Debian 12 with Debian's chromium 156):
// - Chromium is started by hand and attached with connectOverCDP, because Playwright's launch()
//   replaces our --disable-features list (docs/DESIGN.md, Known traps).
// - The page is served from http://127.0.0.1:<port>/, not about:blank: on about:blank (opaque
//   origin) Chromium's FilteringNetworkManager reports the media permission as "denied" and falls
//   back to default-route-only gathering, which in a namespace with only `lo` yields NO candidate
//   at all. On a 127.0.0.1 origin with --use-fake-ui-for-media-stream the permission reads
//   "granted", interfaces are enumerated, and --allow-loopback-in-peer-connection adds a
//   127.0.0.1 host candidate.
// - --host-resolver-rules "MAP * ~NOTFOUND" also maps IP literals: 127.0.0.1 must be EXCLUDEd or
//   the page cannot load (net::ERR_NAME_NOT_RESOLVED).
// - File bytes move between node and the page over that same local HTTP server (binary fetch
//   bodies), not through CDP: no base64, no JSON, and the page pulls at the speed the data
//   channel drains.
//
// Exit codes follow rtcat's where they make sense: 0 ok, 1 internal, 2 usage/bad input,
// 3 connectivity, 4 timeout, 7 transfer/verification, 130/143 signals.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import process from "node:process";

// ---- Tunables ---------------------------------------------------------------------------------
// Chunk size of file messages: rtcat's choice (docs/file-transfer.md); pion-style peers cap
// messages at 65535 bytes, so this is also lowered to the peer's a=max-message-size.
const kChunkBytes = 64 * 1024;
// Data-channel back-pressure: stop calling send() above kHighWater buffered bytes and resume on
// bufferedamountlow at kLowWater. Chromium closes a channel whose buffer exceeds 16 MiB, so stay
// well under; a few MiB keep a loopback path busy.
const kHighWater = 4 * 1024 * 1024;
const kLowWater = 1 * 1024 * 1024;
// The receiving page batches channel messages into uploads of at most this size (an upload
// starts as soon as the previous one finished, so small files do not wait for the batch to fill).
const kUploadBatch = 4 * 1024 * 1024;
// After our part is done, how long we wait for the peer to close before we leave anyway.
const kLingerMs = 3000;
const kDefaultTimeoutS = 60;
const kChromium = process.env.RTCAT_CHROMIUM || "/usr/lib/chromium/chromium";

const EXIT = { ok: 0, internal: 1, usage: 2, connectivity: 3, timeout: 4, transfer: 7 };

// ---- Arguments --------------------------------------------------------------------------------
const USAGE = `usage: node browser_peer.mjs --role offer|answer [--send FILE [--send-as NAME]]...
        [--recv DIR] [--expect-files N] [--netcat TEXT] [--timeout SECONDS] [--result PATH]
        [--label-echo] [--verbose]
  --send FILE     send FILE with rtcat's file protocol (repeatable); channel label = base name
  --send-as NAME  announce the preceding --send FILE as NAME (any string: for tests of the
                  receiver's path checks, e.g. "../evil.txt")
  --ignore-reject (sender) misbehave: after a "reject", send "start", open the file's channel and
                  send its bytes anyway (tests that a receiver never writes refused names)
  --recv DIR      receive files into DIR (NAME.part, renamed to NAME once the SHA-256 matches)
  --expect-files N  (receiver) succeed only after N verified files and "done"
  --timeout S     hard limit for the whole run (default ${kDefaultTimeoutS})
  --result PATH   write the outcome as JSON
  --netcat TEXT   be a peer of rtcat's netcat mode: open "rtcat-stdio", send TEXT on it (binary,
                  UTF-8; nothing when empty), close it; collect what arrives on the peer's
                  "rtcat-stdio" until the peer closes it (result JSON: "received")
  --netcat-hangup (with --netcat) close the whole connection right after our channel closed,
                  without waiting for the peer's channel (tests how the peer notices)
  --label-echo    (no --send/--recv) reply "echo:<label>:<text>" instead of "echo:<text>"
  --verbose       copy Chromium's own stderr to ours
Without --send/--recv: the offerer opens channel "rtcat-test" and sends "ping"; the answerer
replies "echo:" + the text on any channel it is given; both exit 0 after one exchange.`;

function usage_error(msg) {
    process.stderr.write(`browser_peer: ${msg}\n${USAGE}\n`);
    process.exit(EXIT.usage);
}

function parse_args(argv) {
    const o = {
        role: null, send: [], sendAs: [], recv: null, netcat: null, netcatHangup: false,
        ignoreReject: false, expectFiles: null, timeout: kDefaultTimeoutS,
        result: null, labelEcho: false, verbose: false,
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) usage_error(`${a} needs a value`);
            return argv[++i];
        };
        if (a === "--role") o.role = value();
        else if (a === "--send") { o.send.push(value()); o.sendAs.push(null); }
        else if (a === "--send-as") {
            if (!o.send.length) usage_error("--send-as must follow a --send FILE");
            if (o.sendAs[o.send.length - 1] !== null) usage_error("one --send-as per --send");
            o.sendAs[o.send.length - 1] = value();
        }
        else if (a === "--netcat") o.netcat = value();
        else if (a === "--netcat-hangup") o.netcatHangup = true;
        else if (a === "--ignore-reject") o.ignoreReject = true;
        else if (a === "--recv") o.recv = value();
        else if (a === "--expect-files") o.expectFiles = Number(value());
        else if (a === "--timeout") o.timeout = Number(value());
        else if (a === "--result") o.result = value();
        else if (a === "--label-echo") o.labelEcho = true;
        else if (a === "--verbose" || a === "-v") o.verbose = true;
        else if (a === "--help" || a === "-h") { process.stdout.write(USAGE + "\n"); process.exit(0); }
        else usage_error(`unknown argument ${a}`);
    }
    if (o.role !== "offer" && o.role !== "answer") usage_error("--role offer|answer is required");
    if (o.send.length && o.recv) usage_error("--send and --recv are exclusive");
    if (o.netcat !== null && (o.send.length || o.recv)) usage_error("--netcat excludes --send/--recv");
    if (o.netcatHangup && o.netcat === null) usage_error("--netcat-hangup needs --netcat");
    if (o.ignoreReject && !o.send.length) usage_error("--ignore-reject needs --send");
    if (!(o.timeout > 0)) usage_error("--timeout must be a positive number of seconds");
    if (o.expectFiles !== null && !(Number.isInteger(o.expectFiles) && o.expectFiles >= 0))
        usage_error("--expect-files must be a non-negative integer");
    if (o.expectFiles !== null && !o.recv) usage_error("--expect-files needs --recv");
    return o;
}

const opt = parse_args(process.argv.slice(2));
const mode = opt.send.length ? "send" : opt.recv ? "recv" : opt.netcat !== null ? "netcat" : "ping";
const t0 = performance.now();
const ms = () => Math.round(performance.now() - t0);
const log = (msg) => process.stderr.write(`[browser_peer ${opt.role} ${(ms() / 1000).toFixed(3)}s] ${msg}\n`);

// ---- Outcome and cleanup ----------------------------------------------------------------------
const result = {
    ok: false, role: opt.role, mode, error: null, files: [], bytes: 0, seconds: null,
    transfer_seconds: null, mbytes_per_second: null, selected_pair: null, timings: {},
    channels: [], messages: [], local_description: null, remote_description: null,
};
let phase = "starting";
let chrome = null; // { proc, pgid, dir, exited: Promise }
let browser = null; // playwright-core Browser (over CDP)
let page = null;
let server = null;
let finishing = false;

function sleep(msec) { return new Promise((r) => setTimeout(r, msec)); }

// Live (non-zombie) processes in process group 'pgid', from /proc. A zombie still answers
// kill(pid, 0), and where PID 1 does not reap orphans (some sandboxes) they never go away.
function live_group_members(pgid) {
    const pids = [];
    for (const d of fs.readdirSync("/proc")) {
        if (!/^[0-9]+$/.test(d)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
            const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state ppid pgrp ...
            if (Number(f[2]) === pgid && f[0] !== "Z") pids.push(Number(d));
        } catch { /* raced with exit */ }
    }
    return pids;
}

// Processes whose command line mentions our (unique) temporary profile dir. Chromium's crashpad
// handlers put themselves in process groups of their own (and --disable-crashpad-for-testing
// crashes Chromium 156's network service with "FD ownership violation"), but their --database
// lies under HOME, which we point into the profile dir.
function processes_mentioning(dir) {
    const pids = [];
    for (const d of fs.readdirSync("/proc")) {
        if (!/^[0-9]+$/.test(d) || Number(d) === process.pid) continue;
        try {
            if (fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(dir)) pids.push(Number(d));
        } catch { /* raced with exit */ }
    }
    return pids;
}

async function kill_chromium() {
    if (!chrome) return;
    const c = chrome;
    const t = ms();
    chrome = null;
    // Ask Chromium to quit first: it then ends and reaps its own children (a SIGKILLed browser
    // leaves them to PID 1). Whatever is left of the process group (the launcher shell, stragglers)
    // is then SIGKILLed.
    if (browser) {
        // browser.close() on a connectOverCDP browser only disconnects; CDP Browser.close quits.
        const quit = (async () => {
            const s = await browser.newBrowserCDPSession();
            await s.send("Browser.close");
        })().catch(() => {});
        await Promise.race([quit, sleep(3000)]);
        for (let i = 0; i < 150 && live_group_members(c.pgid).length > 1; i++) await sleep(20);
        if (opt.verbose) log(`Chromium quit; ${live_group_members(c.pgid).length} process(es) left after ${ms() - t} ms`);
    }
    try { process.kill(-c.pgid, "SIGKILL"); } catch { /* already gone */ }
    await Promise.race([c.exited, sleep(2000)]);
    for (const pid of processes_mentioning(c.dir)) {
        try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    }
    // Wait until the group is empty so nothing writes into the profile while it is removed.
    for (let i = 0; i < 100 && live_group_members(c.pgid).length; i++) await sleep(20);
    try { fs.rmSync(c.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }); }
    catch (e) { log(`warning: could not remove ${c.dir}: ${e.message}`); }
}

async function finish(code, error) {
    if (finishing) return;
    finishing = true;
    clearTimeout(hard_timer);
    result.ok = code === 0;
    if (error) result.error = error;
    result.seconds = +(ms() / 1000).toFixed(3);
    if (opt.result) {
        try { fs.writeFileSync(opt.result, JSON.stringify(result, null, 2) + "\n"); }
        catch (e) { log(`cannot write ${opt.result}: ${e.message}`); }
    }
    if (code === 0) log(`OK: ${summary()}`);
    else log(`FAILED (exit ${code}) while ${phase}: ${error}`);
    const t_cleanup = ms();
    // Close the PeerConnection before Chromium goes: the peer then gets SCTP ABORT and DTLS
    // close_notify at once. Killed with it open, the peer can only notice through ICE consent
    // (RFC 7675: 30 s), which turned every early failure here into a 30 s stall and exit 3.
    if (page) {
        try { await Promise.race([page.evaluate(() => window.rt && window.rt.closePc()), sleep(1000)]); }
        catch { }
    }
    await kill_chromium();
    if (opt.verbose) log(`cleanup took ${ms() - t_cleanup} ms`);
    if (server) server.close();
    for (const f of recv_files.values()) if (f.fd !== null) { try { fs.closeSync(f.fd); } catch { } }
    process.exit(code);
}

// finish() and never resolve: `await halt(...)` stops the flow that detected the failure.
function halt(code, error) {
    finish(code, error);
    return new Promise(() => {});
}

function summary() {
    const pair = result.selected_pair;
    const p = pair ? ` via ${pair.local.candidateType} ${pair.local.address}:${pair.local.port} <-> ` +
        `${pair.remote.candidateType} ${pair.remote.address}:${pair.remote.port}` : "";
    if (mode === "ping") return `ping exchange done${p} in ${result.seconds}s`;
    if (mode === "netcat") return `netcat: sent ${Buffer.byteLength(opt.netcat)} byte(s), received ` +
        `${Buffer.byteLength(result.received ?? "")} byte(s)${p} in ${result.seconds}s`;
    const n = result.files.length;
    const rate = result.mbytes_per_second !== null ? `, ${result.mbytes_per_second} MB/s` : "";
    return `${mode === "send" ? "sent" : "received"} ${n} file(s), ${result.bytes} bytes` +
        `${rate}${p}, all SHA-256 verified, ${result.seconds}s total`;
}

const hard_timer = setTimeout(() => finish(EXIT.timeout, `timeout after ${opt.timeout}s`),
    opt.timeout * 1000);
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]])
    process.on(sig, () => finish(code, `got ${sig}`));
process.on("uncaughtException", (e) => finish(EXIT.internal, `internal error: ${e.stack || e}`));
process.on("unhandledRejection", (e) => finish(EXIT.internal, `internal error: ${e?.stack || e}`));
process.stdout.on("error", (e) => finish(EXIT.internal, `stdout: ${e.message}`));

// ---- Input files (sender) ---------------------------------------------------------------------
const send_files = [];
for (const [i, p] of opt.send.entries()) {
    let st;
    try { st = fs.statSync(p); } catch (e) { usage_error(`--send ${p}: ${e.message}`); }
    if (!st.isFile()) usage_error(`--send ${p}: not a regular file`);
    send_files.push({ id: i + 1, path: p, name: opt.sendAs[i] ?? path.basename(p), size: st.size, sha256: null });
}
async function sha256_file(p, limit = Infinity) {
    const h = crypto.createHash("sha256");
    if (limit <= 0) return h.digest("hex");
    const end = Number.isFinite(limit) ? limit - 1 : undefined;
    for await (const chunk of fs.createReadStream(p, { start: 0, end })) h.update(chunk);
    return h.digest("hex");
}
if (opt.recv) {
    try { fs.mkdirSync(opt.recv, { recursive: true }); }
    catch (e) { usage_error(`--recv ${opt.recv}: ${e.message}`); }
}

// ---- Receiver state ---------------------------------------------------------------------------
// id -> { id, name, size, target, part, fd, received, hash, end, done, ok, sha256, t_start }
const recv_files = new Map();
const recv_by_label = new Map(); // channel label -> file (label is the file's relative path)
const early_uploads = new Map(); // label -> [Buffer] that arrived before the file was accepted
let recv_done_seen = false;
let recv_bye_sent = false;

// docs/file-transfer.md, flow step 2: relative, no "..", no empty or "." segments, no NUL or
// backslash, not absolute.
function unsafe_name(name) {
    if (typeof name !== "string" || name.length === 0) return "empty name";
    if (name.includes("\0") || name.includes("\\")) return "NUL or backslash in name";
    if (name.startsWith("/")) return "absolute path";
    for (const seg of name.split("/")) {
        if (seg === "" || seg === "." || seg === "..") return `bad path segment "${seg}"`;
    }
    return null;
}

// ---- Local HTTP server: the page, file sources and file sinks ---------------------------------
function start_server() {
    return new Promise((resolve, reject) => {
        server = http.createServer((req, res) => {
            const url = new URL(req.url, "http://127.0.0.1");
            if (req.method === "GET" && url.pathname === "/") {
                res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
                res.end(`<!doctype html><meta charset="utf-8"><title>rtcat interop peer</title>` +
                    `<script>${PAGE_SCRIPT}</script>`);
            } else if (url.pathname === "/favicon.ico") {
                res.writeHead(204);
                res.end();
            } else if (req.method === "GET" && url.pathname.startsWith("/src/")) {
                // The sender page pulls file bytes from here, from ?offset=.
                const f = send_files.find((x) => x.id === Number(url.pathname.slice(5)));
                const offset = Number(url.searchParams.get("offset") || 0);
                if (!f || !(offset >= 0 && offset <= f.size)) { res.writeHead(404); res.end(); return; }
                res.writeHead(200, { "content-type": "application/octet-stream", "content-length": f.size - offset });
                if (offset === f.size) { res.end(); return; }
                fs.createReadStream(f.path, { start: offset, highWaterMark: 1024 * 1024 }).pipe(res);
            } else if (req.method === "POST" && url.pathname === "/sink") {
                // The receiver page pushes the bytes of file channel ?label= from ?offset=.
                const label = url.searchParams.get("label");
                const offset = Number(url.searchParams.get("offset"));
                const parts = [];
                req.on("data", (d) => parts.push(d));
                req.on("end", () => {
                    const err = on_sink_bytes(label, offset, Buffer.concat(parts));
                    res.writeHead(err ? 409 : 204, { "content-type": "text/plain" });
                    res.end(err || "");
                });
            } else {
                res.writeHead(404);
                res.end();
            }
        });
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server.address().port));
    });
}

// ---- Chromium -----------------------------------------------------------------------------------
function chromium_flags(dir) {
    return [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps",
        "--disable-extensions", "--disable-crash-reporter",
        "--mute-audio",
        "--password-store=basic", "--use-mock-keychain",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        // Debugging aid, e.g. RTCAT_CHROMIUM_EXTRA_FLAGS="--enable-logging=stderr --v=1" (with
        // --verbose to see Chromium's stderr). Split on spaces: no quoting.
        ...(process.env.RTCAT_CHROMIUM_EXTRA_FLAGS || "").split(" ").filter((f) => f),
        `--user-data-dir=${dir}`, "--remote-debugging-port=0", "about:blank",
    ];
}

async function start_chromium() {
    if (!fs.existsSync(kChromium)) throw Object.assign(new Error(`${kChromium} not found`), { code: EXIT.internal });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtcat-chromium-"));
    // A launcher shell leads a new process group holding Chromium and all its children, so one
    // kill(-pgid) ends them all; it also kills that group if this node process disappears
    // without cleaning up (e.g. SIGKILL from `timeout -s KILL`).
    const quoted = chromium_flags(dir).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    const script = `'${kChromium}' ${quoted} & c=$!
        while kill -0 ${process.pid} 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 0.5; done
        trap '' TERM
        for p in /proc/[0-9]*; do
            [ "\${p#/proc/}" = $$ ] || ! grep -qF '${dir}' $p/cmdline 2>/dev/null || kill -KILL \${p#/proc/}
        done
        kill -KILL $c 2>/dev/null; sleep 0.3; rm -rf '${dir}'
        kill -KILL 0`;
    // HOME and XDG dirs point into the temporary profile so nothing lands in the real $HOME
    // (crash-report databases, font caches).
    const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, ".config"),
        XDG_CACHE_HOME: path.join(dir, ".cache") };
    const proc = spawn("/bin/sh", ["-c", script], { detached: true, env, stdio: ["ignore", "ignore", "pipe"] });
    const exited = new Promise((r) => proc.on("exit", r));
    chrome = { proc, pgid: proc.pid, dir, exited };
    const tail = [];
    let buf = "";
    const ws = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("Chromium printed no DevTools URL within 20 s")), 20000);
        proc.stderr.on("data", (d) => {
            const s = d.toString();
            if (opt.verbose) process.stderr.write(s);
            for (const line of s.split("\n")) if (line.trim()) { tail.push(line); if (tail.length > 30) tail.shift(); }
            buf += s;
            const m = buf.match(/DevTools listening on (ws:\/\/\S+)/);
            if (m) { clearTimeout(timer); buf = ""; result.timings.devtools_ms = ms(); resolve(m[1]); }
        });
        proc.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`Chromium exited (${code}) before DevTools was ready:\n${tail.join("\n")}`));
        });
    });
    proc.on("exit", () => { if (!finishing) finish(EXIT.internal, `Chromium exited unexpectedly:\n${tail.join("\n")}`); });
    return ws;
}

// ---- The page: RTCPeerConnection plumbing; the file protocol lives in node ---------------------
// Everything the page tells node goes through one CDP binding, window.__rtcatEvent(JSON).
const PAGE_SCRIPT = String.raw`
"use strict";
const emit = (ev) => window.__rtcatEvent(JSON.stringify(ev));
const rt = window.rt = { pc: null, channels: new Map(), nextKey: 1, sinkMode: false, echo: null };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

rt.create = () => {
  const pc = rt.pc = new RTCPeerConnection({ iceServers: [] });
  pc.onconnectionstatechange = () => emit({ ev: "pc", state: pc.connectionState });
  pc.oniceconnectionstatechange = () => emit({ ev: "ice", state: pc.iceConnectionState });
  pc.ondatachannel = ({ channel }) => rt.adopt(channel, true);
};

rt.describe = (ch, key) => ({ key, label: ch.label, protocol: ch.protocol, id: ch.id,
  ordered: ch.ordered, maxRetransmits: ch.maxRetransmits, maxPacketLifeTime: ch.maxPacketLifeTime,
  negotiated: ch.negotiated });

rt.adopt = (ch, remote) => {
  const key = rt.nextKey++;
  ch.binaryType = "arraybuffer";
  rt.channels.set(key, ch);
  const sink = remote && rt.sinkMode && ch.label !== "rtcat-control" ? rt.makeSink(ch) : null;
  if (remote) emit({ ev: "channel", remote: true, sink: !!sink, ...rt.describe(ch, key) });
  ch.onopen = () => emit({ ev: "open", ...rt.describe(ch, key) });
  ch.onclose = () => { if (sink) sink.close(); else emit({ ev: "close", key, label: ch.label }); };
  ch.onerror = (e) => emit({ ev: "error", key, label: ch.label, error: String(e.error && e.error.message || e) });
  if (sink) ch.onmessage = ({ data }) => sink.push(data);
  else ch.onmessage = ({ data }) => {
    const binary = typeof data !== "string";
    const text = binary ? new TextDecoder().decode(data) : data;
    emit({ ev: "message", key, label: ch.label, binary, text });
  };
  return key;
};

rt.open = (label, init) => rt.adopt(rt.pc.createDataChannel(label, init || {}), false);

rt.localDescription = async () => {
  const pc = rt.pc;
  if (pc.iceGatheringState !== "complete")
    await new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve()));
  return JSON.stringify(pc.localDescription);
};
rt.offer = async () => { await rt.pc.setLocalDescription(); return rt.localDescription(); };
rt.answer = async (offer) => {
  await rt.pc.setRemoteDescription(offer);
  await rt.pc.setLocalDescription();
  return rt.localDescription();
};
rt.setAnswer = (answer) => rt.pc.setRemoteDescription(answer);
rt.maxMessageSize = () => (rt.pc.sctp ? rt.pc.sctp.maxMessageSize : null);

rt.send = (key, text, binary) => {
  const ch = rt.channels.get(key);
  ch.send(binary ? new TextEncoder().encode(text) : text);
};
rt.close = (key) => rt.channels.get(key).close();
rt.isOpen = (key) => rt.channels.get(key).readyState === "open";
rt.closePc = () => rt.pc && rt.pc.close();

rt.drained = async (key) => {
  const ch = rt.channels.get(key);
  while (ch.readyState === "open" && ch.bufferedAmount > 0) await sleep(5);
  return ch.readyState;
};

// Sender: stream a file from node's HTTP server into channel 'key' as binary messages of
// exactly 'chunk' bytes (the last one shorter), pausing on bufferedAmount.
rt.pump = async (key, url, chunk, high, low) => {
  const ch = rt.channels.get(key);
  ch.bufferedAmountLowThreshold = low;
  const resp = await fetch(url, { cache: "no-store" });
  if (!resp.ok) throw new Error("GET " + url + ": " + resp.status);
  const reader = resp.body.getReader();
  let pending = new Uint8Array(chunk), fill = 0, total = 0, waits = 0;
  const waitLow = () => new Promise((resolve, reject) => {
    const done = () => { ch.removeEventListener("bufferedamountlow", done); ch.removeEventListener("close", done);
      ch.readyState === "open" ? resolve() : reject(new Error("channel closed while sending")); };
    ch.addEventListener("bufferedamountlow", done);
    ch.addEventListener("close", done);
  });
  const sendOne = async (u8) => {
    if (ch.bufferedAmount >= high) { waits++; await waitLow(); }
    if (ch.readyState !== "open") throw new Error("channel " + ch.label + " is " + ch.readyState);
    ch.send(u8);
    total += u8.length;
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let off = 0;
    while (off < value.length) {
      if (fill === 0 && value.length - off >= chunk) {   // aligned: send a view, no copy
        await sendOne(value.subarray(off, off + chunk)); off += chunk; continue;
      }
      const n = Math.min(chunk - fill, value.length - off);
      pending.set(value.subarray(off, off + n), fill); fill += n; off += n;
      if (fill === chunk) { await sendOne(pending); pending = new Uint8Array(chunk); fill = 0; }
    }
  }
  if (fill) await sendOne(pending.subarray(0, fill));
  return { bytes: total, waits };
};

// Receiver: every remote channel other than rtcat-control is a file channel; its messages are
// uploaded to node in order, batched while an upload is in flight.
rt.batch = 4 << 20;
rt.makeSink = (ch) => {
  const s = { parts: [], queued: 0, offset: 0, inflight: false, closed: false, reported: false,
    messages: 0, textMessages: 0 };
  const label = encodeURIComponent(ch.label);
  s.kick = () => {
    if (s.inflight) return;
    if (s.parts.length === 0) {
      if (s.closed && !s.reported) { s.reported = true;
        emit({ ev: "sink-closed", label: ch.label, bytes: s.offset, messages: s.messages, textMessages: s.textMessages }); }
      return;
    }
    let take = 0, size = 0;
    while (take < s.parts.length && (take === 0 || size + s.parts[take].byteLength <= rt.batch))
      size += s.parts[take++].byteLength;
    const body = new Blob(s.parts.splice(0, take));
    s.queued -= size;
    const off = s.offset; s.offset += size; s.inflight = true;
    fetch("/sink?label=" + label + "&offset=" + off, { method: "POST", body })
      .then(async (r) => { if (!r.ok) emit({ ev: "sink-error", label: ch.label, error: r.status + " " + await r.text() }); })
      .catch((e) => emit({ ev: "sink-error", label: ch.label, error: String(e) }))
      .finally(() => { s.inflight = false; s.kick(); });
  };
  s.push = (data) => {
    s.messages++;
    if (typeof data === "string") { s.textMessages++; data = new TextEncoder().encode(data).buffer; }
    s.parts.push(data); s.queued += data.byteLength; s.kick();
  };
  s.close = () => { s.closed = true; s.kick(); };
  return s;
};

rt.selectedPair = async () => {
  if (!rt.pc) return null;
  const stats = await rt.pc.getStats();
  let transport = null;
  stats.forEach((s) => { if (s.type === "transport") transport = s; });
  let pair = transport && transport.selectedCandidatePairId ? stats.get(transport.selectedCandidatePairId) : null;
  if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
  if (!pair) return null;
  const cand = (id) => { const c = stats.get(id) || {};
    return { candidateType: c.candidateType, address: c.address, port: c.port, protocol: c.protocol }; };
  return { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId),
    currentRoundTripTime: pair.currentRoundTripTime, bytesSent: pair.bytesSent,
    bytesReceived: pair.bytesReceived,
    dtlsCipher: transport && transport.dtlsCipher, srtpCipher: transport && transport.srtpCipher,
    tlsVersion: transport && transport.tlsVersion };
};
`;

// ---- Events from the page ---------------------------------------------------------------------
const handlers = []; // { match(ev) -> bool, resolve } waiting for one event
const backlog = []; // events nobody has claimed yet (for next())
let on_event_hook = null; // mode-specific handler, sees every event first

function dispatch(ev) {
    if (ev.ev === "pc" || ev.ev === "ice") {
        log(`${ev.ev === "pc" ? "connection" : "ICE"} state: ${ev.state}`);
        if (ev.ev === "pc" && ev.state === "connected" && result.timings.connected_ms === undefined)
            result.timings.connected_ms = ms();
        if (ev.ev === "pc" && ev.state === "failed") finish(EXIT.connectivity, "peer connection failed (ICE/DTLS)");
    } else if (ev.ev === "channel") {
        result.channels.push({ label: ev.label, protocol: ev.protocol, id: ev.id, ordered: ev.ordered,
            maxRetransmits: ev.maxRetransmits, maxPacketLifeTime: ev.maxPacketLifeTime, remote: true });
        log(`remote opened channel "${ev.label}" protocol "${ev.protocol}" id ${ev.id}${ev.sink ? " (file sink)" : ""}`);
    } else if (ev.ev === "error") {
        log(`channel "${ev.label}" error: ${ev.error}`);
    } else if (ev.ev === "sink-error") {
        finish(EXIT.transfer, `writing file channel "${ev.label}": ${ev.error}`);
        return;
    }
    if (on_event_hook && on_event_hook(ev)) return;
    const i = handlers.findIndex((h) => h.match(ev));
    if (i >= 0) handlers.splice(i, 1)[0].resolve(ev);
    else backlog.push(ev);
}

// The next event matching 'match' (from the backlog first).
function next(match) {
    const i = backlog.findIndex(match);
    if (i >= 0) return Promise.resolve(backlog.splice(i, 1)[0]);
    return new Promise((resolve) => handlers.push({ match, resolve }));
}

const call = (fn, ...args) => page.evaluate(fn, args.length <= 1 ? args[0] : args);

// ---- Signaling over stdin/stdout ---------------------------------------------------------------
function read_remote_description(expected_type) {
    // Accepts {"type":..,"sdp":..} (one line or pretty-printed) or plain SDP ended by a blank line
    // or EOF. Only the first description is consumed; stdin is released afterwards.
    return new Promise((resolve, reject) => {
        let buf = "";
        let settled = false;
        const done = (v, err) => {
            if (settled) return;
            settled = true;
            process.stdin.removeAllListeners("data");
            process.stdin.removeAllListeners("end");
            process.stdin.pause();
            err ? reject(err) : resolve(v);
        };
        const plain = (text) => {
            const lines = text.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.length);
            if (!lines.length || !lines[0].startsWith("v=")) return null;
            return { type: expected_type, sdp: lines.join("\r\n") + "\r\n" };
        };
        const try_parse = (at_eof) => {
            const trimmed = buf.replace(/^\s+/, "");
            if (!trimmed.length) return at_eof ? done(null, new Error("EOF on stdin before a description")) : undefined;
            if (trimmed[0] === "{") {
                // JSON: complete once it parses (also when spread over several lines).
                const nl = [...trimmed.matchAll(/\n/g)].map((m) => m.index);
                for (const end of [...nl, trimmed.length]) {
                    try {
                        const m = JSON.parse(trimmed.slice(0, end));
                        if (typeof m.sdp !== "string") return done(null, new Error(`JSON description without "sdp"`));
                        if (m.type !== expected_type)
                            return done(null, new Error(`expected a description of type "${expected_type}", got "${m.type}"`));
                        return done({ type: m.type, sdp: m.sdp });
                    } catch { /* incomplete so far */ }
                }
                if (at_eof) done(null, new Error(`stdin ended inside a JSON description: ${trimmed.slice(0, 200)}`));
                return;
            }
            const blank = trimmed.search(/\r?\n\r?\n/);
            if (blank >= 0 || at_eof) {
                const d = plain(blank >= 0 ? trimmed.slice(0, blank) : trimmed);
                if (!d) return done(null, new Error(`stdin is neither JSON nor SDP: ${JSON.stringify(trimmed.slice(0, 200))}`));
                return done(d);
            }
        };
        process.stdin.setEncoding("utf8");
        process.stdin.on("data", (d) => { buf += d; try_parse(false); });
        process.stdin.on("end", () => try_parse(true));
        process.stdin.resume();
    });
}

async function signal() {
    const sdp_line = (json) => {
        process.stdout.write(json + "\n");
        result.local_description = JSON.parse(json);
    };
    const cands = (sdp) => sdp.split(/\r?\n/).filter((l) => l.startsWith("a=candidate:"));
    if (opt.role === "offer") {
        phase = "gathering ICE candidates for the offer";
        const offer = await call(() => rt.offer());
        result.timings.gathered_ms = ms();
        const c = cands(JSON.parse(offer).sdp);
        log(`offer ready with ${c.length} candidate(s): ${c.map((l) => l.split(" ").slice(4, 8).join(" ")).join(" | ")}`);
        sdp_line(offer);
        phase = "waiting for the answer on stdin";
        const answer = await read_remote_description("answer").catch((e) => halt(EXIT.usage, e.message));
        result.remote_description = answer;
        result.timings.remote_description_ms = ms();
        log(`got answer (${cands(answer.sdp).length} candidate(s))`);
        await call((a) => rt.setAnswer(a), answer);
    } else {
        phase = "waiting for the offer on stdin";
        const offer = await read_remote_description("offer").catch((e) => halt(EXIT.usage, e.message));
        result.remote_description = offer;
        result.timings.remote_description_ms = ms();
        log(`got offer (${cands(offer.sdp).length} candidate(s))`);
        phase = "gathering ICE candidates for the answer";
        const answer = await call((o) => rt.answer(o), offer);
        result.timings.gathered_ms = ms();
        log(`answer ready with ${cands(JSON.parse(answer).sdp).length} candidate(s)`);
        sdp_line(answer);
    }
    phase = "connecting (ICE + DTLS + SCTP)";
}

// ---- Mode: ping --------------------------------------------------------------------------------
async function run_ping() {
    if (opt.role === "offer") {
        const key = await call(() => rt.open("rtcat-test", {}));
        await signal();
        await next((e) => e.ev === "open" && e.key === key);
        log(`channel "rtcat-test" open; sending "ping"`);
        phase = "waiting for the echo";
        await call(([k]) => rt.send(k, "ping", false), [key]);
        const reply = await next((e) => e.ev === "message" && e.key === key);
        result.messages.push({ label: reply.label, binary: reply.binary, text: reply.text });
        const want = "echo:ping";
        const got = reply.text.replace(/\r?\n$/, "");
        const ok = got === want || (opt.labelEcho && got === "echo:rtcat-test:ping");
        if (!ok) return finish(EXIT.transfer, `expected "${want}", got ${JSON.stringify(reply.text)}`);
        log(`got ${JSON.stringify(reply.text)}`);
        result.selected_pair = await call(() => rt.selectedPair());
        await call(([k]) => rt.close(k), [key]);
        await sleep(100);
        await call(() => rt.closePc());
        return finish(EXIT.ok);
    }
    // Answerer: echo the first message on whatever channel the offerer opens, then wait for the
    // offerer to close (or linger).
    await signal();
    phase = "waiting for a channel and a message";
    const msg = await next((e) => e.ev === "message");
    result.messages.push({ label: msg.label, binary: msg.binary, text: msg.text });
    const reply = opt.labelEcho ? `echo:${msg.label}:${msg.text}` : `echo:${msg.text}`;
    log(`got ${JSON.stringify(msg.text)} on "${msg.label}"; replying ${JSON.stringify(reply)}`);
    await call(([k, t, b]) => rt.send(k, t, b), [msg.key, reply, msg.binary]);
    await call(([k]) => rt.drained(k), [msg.key]);
    result.selected_pair = await call(() => rt.selectedPair());
    phase = "waiting for the peer to close";
    await Promise.race([next((e) => e.ev === "close" && e.key === msg.key), sleep(kLingerMs)]);
    return finish(EXIT.ok);
}

// ---- Mode: netcat (rtcat's netcat mode) ----------------------------------------------------------
// rtcat (offer|answer without --out) opens its own channel labelled "rtcat-stdio", sends its stdin
// on it and closes it at EOF; what arrives on the peer's "rtcat-stdio" goes to its stdout; the
// session ends once both channels are closed. We do the same with --netcat TEXT as our "stdin".
// Messages are decoded per message, so TEXT and the peer's data should be ASCII (a multi-byte
// character split across two messages would be mangled).
async function run_netcat() {
    const label = "rtcat-stdio";
    const remote = { key: null, closed: false, chunks: [] };
    let remote_closed;
    const remote_closed_p = new Promise((r) => { remote_closed = r; });
    on_event_hook = (ev) => {
        if (ev.ev === "channel" && ev.label === label && remote.key === null) {
            remote.key = ev.key;
            return true;
        }
        if (ev.ev === "message" && ev.key === remote.key) {
            remote.chunks.push(ev.text);
            result.messages.push({ label: ev.label, binary: ev.binary, text: ev.text });
            return true;
        }
        if (ev.ev === "close" && ev.key === remote.key) {
            remote.closed = true;
            remote_closed();
            return true;
        }
        if (ev.ev === "pc" && ["disconnected", "closed"].includes(ev.state) && !remote.closed)
            finish(EXIT.transfer, `connection ${ev.state} before the peer closed "${label}"`);
        return false;
    };
    const open_ours = () => call(([l]) => rt.open(l, {}), [label]);
    let ours;
    if (opt.role === "offer") { ours = await open_ours(); await signal(); }
    else { await signal(); ours = await open_ours(); }
    phase = `waiting for our "${label}" to open`;
    await next((e) => e.ev === "open" && e.key === ours);
    phase = "sending";
    if (opt.netcat.length) await call(([k, t]) => rt.send(k, t, true), [ours, opt.netcat]);
    await call(([k]) => rt.drained(k), [ours]);
    const closed = next((e) => e.ev === "close" && e.key === ours);
    await call(([k]) => rt.close(k), [ours]);
    await closed;
    log(`sent ${Buffer.byteLength(opt.netcat)} byte(s) and closed our "${label}"`);
    if (opt.netcatHangup) {
        result.received = remote.chunks.join("");
        result.selected_pair = await call(() => rt.selectedPair());
        remote.closed = true; // from here on a closed connection is ours, not a failure
        log("hanging up: closing the peer connection");
        await call(() => rt.closePc());
        return finish(EXIT.ok);
    }
    phase = `waiting for the peer to close its "${label}"`;
    await remote_closed_p;
    result.received = remote.chunks.join("");
    log(`the peer closed its "${label}" after ${remote.chunks.length} message(s), ` +
        `${Buffer.byteLength(result.received)} byte(s)`);
    result.selected_pair = await call(() => rt.selectedPair());
    await call(() => rt.closePc());
    return finish(EXIT.ok);
}

// ---- Mode: send (docs/file-transfer.md, sender side) ---------------------------------------------
function control_send(key, obj) {
    log(`-> ${JSON.stringify(obj)}`);
    return call(([k, t]) => rt.send(k, t, false), [key, JSON.stringify(obj)]);
}
function control_next(key, types) {
    return next((e) => (e.ev === "message" && e.key === key) || (e.ev === "close" && e.key === key))
        .then((e) => {
            if (e.ev === "close") return halt(EXIT.transfer, "control channel closed by the peer");
            let m;
            try { m = JSON.parse(e.text); } catch { return halt(EXIT.transfer, `control message is not JSON: ${e.text}`); }
            log(`<- ${e.text}`);
            // The receiver's greeting (docs/file-transfer.md): nothing to answer.
            if (m.type === "hello") return control_next(key, types);
            if (!types.includes(m.type)) return halt(EXIT.transfer, `expected ${types.join("|")}, got ${e.text}`);
            return m;
        });
}

async function run_send() {
    for (const f of send_files) f.sha256 = await sha256_file(f.path);
    const total = send_files.reduce((a, f) => a + f.size, 0);
    let ctrl;
    const open_control = () => call(() => rt.open("rtcat-control", { protocol: "rtcat-file/1" }));
    if (opt.role === "offer") { ctrl = await open_control(); await signal(); }
    else { await signal(); ctrl = await open_control(); }
    await next((e) => e.ev === "open" && e.key === ctrl);
    log("control channel open");
    phase = "transferring";
    const max = await call(() => rt.maxMessageSize());
    const chunk = max ? Math.min(kChunkBytes, max) : kChunkBytes;
    const t_start = performance.now();
    let failures = 0;
    await control_send(ctrl, { type: "hello", version: 1, files: send_files.length, bytes: total });
    for (const f of send_files) {
        phase = `sending ${f.name}`;
        const entry = { id: f.id, name: f.name, size: f.size, sha256: f.sha256, ok: false };
        result.files.push(entry);
        await control_send(ctrl, { type: "file", id: f.id, name: f.name, size: f.size });
        const reply = await control_next(ctrl, ["accept", "reject"]);
        if (reply.id !== f.id) return finish(EXIT.transfer, `reply for id ${reply.id}, expected ${f.id}`);
        if (reply.type === "reject") {
            entry.error = `rejected: ${reply.reason}`;
            log(`${f.name} rejected: ${reply.reason}`);
            failures++;
            if (!opt.ignoreReject) continue;
            // A hostile sender: push the bytes anyway. The receiver may drop them, reset the
            // channel or end the session; any of that is its right, so none is an error here.
            log(`--ignore-reject: sending ${f.name} anyway`);
            try {
                await control_send(ctrl, { type: "start", id: f.id, offset: 0 });
                const k = await call(([label]) => rt.open(label, { protocol: "rtcat-file/1" }), [f.name]);
                await Promise.race([next((e) => e.ev === "open" && e.key === k), sleep(2000)]);
                await call(([kk, url, c, h, l]) => rt.pump(kk, url, c, h, l),
                    [k, `/src/${f.id}?offset=0`, chunk, kHighWater, kLowWater]);
                await control_send(ctrl, { type: "end", id: f.id, size: f.size, sha256: f.sha256 });
                await call(([kk]) => rt.drained(kk), [k]);
                const closed = next((e) => e.ev === "close" && e.key === k);
                await call(([kk]) => rt.close(kk), [k]);
                await Promise.race([closed, sleep(2000)]);
            } catch (e) {
                // The receiver reset the refused file's channel, maybe before the last byte was
                // pushed (a race: the reset often lands after it). That is its right (above): go
                // on with the next file. Only a dead connection ends the run.
                if (!(await call(([kk]) => rt.isOpen(kk), [ctrl])))
                    return finish(EXIT.transfer, `--ignore-reject: the receiver stopped us: ${e.message}`);
                log(`--ignore-reject: the receiver closed ${f.name}'s channel (${e.message.split("\n")[0]})`);
            }
            continue;
        }
        let offset = Number(reply.offset || 0);
        if (!(offset >= 0 && offset <= f.size)) offset = 0;
        if (offset > 0 && (await sha256_file(f.path, offset)) !== reply.prefix_sha256) {
            log(`prefix hash of the first ${offset} bytes differs: restarting from 0`);
            offset = 0;
        }
        entry.offset = offset;
        await control_send(ctrl, { type: "start", id: f.id, offset });
        const fkey = await call(([label]) => rt.open(label, { protocol: "rtcat-file/1" }), [f.name]);
        await next((e) => e.ev === "open" && e.key === fkey);
        const t_file = performance.now();
        const pumped = await call(([k, url, c, h, l]) => rt.pump(k, url, c, h, l),
            [fkey, `/src/${f.id}?offset=${offset}`, chunk, kHighWater, kLowWater]);
        if (pumped.bytes !== f.size - offset)
            return finish(EXIT.transfer, `${f.name}: pumped ${pumped.bytes} bytes, expected ${f.size - offset}`);
        await control_send(ctrl, { type: "end", id: f.id, size: f.size, sha256: f.sha256 });
        // Close only once Chromium has handed every byte to SCTP.
        await call(([k]) => rt.drained(k), [fkey]);
        const closed = next((e) => e.ev === "close" && e.key === fkey);
        await call(([k]) => rt.close(k), [fkey]);
        // Wait for the closing procedure (the SCTP stream reset) to finish before the next
        // file's channel is opened: Chromium reuses the stream id at once, and a reset still in
        // flight then closes the new channel and its bytes land on the old one (seen here with
        // Chromium on both ends when the answerer sends).
        await closed;
        const ack = await control_next(ctrl, ["ack"]);
        entry.seconds = +((performance.now() - t_file) / 1000).toFixed(3);
        entry.backpressure_waits = pumped.waits;
        if (ack.id !== f.id) return finish(EXIT.transfer, `ack for id ${ack.id}, expected ${f.id}`);
        if (!ack.ok || ack.sha256 !== f.sha256) {
            entry.error = `ack not ok: ${ack.error || `sha256 ${ack.sha256}`}`;
            failures++;
        } else {
            entry.ok = true;
            result.bytes += f.size - offset;
            log(`${f.name}: ${f.size - offset} bytes acknowledged in ${entry.seconds}s ` +
                `(${((f.size - offset) / 1e6 / entry.seconds).toFixed(1)} MB/s, ${pumped.waits} back-pressure waits)`);
        }
    }
    await control_send(ctrl, { type: "done" });
    phase = "waiting for bye";
    await control_next(ctrl, ["bye"]);
    const secs = (performance.now() - t_start) / 1000;
    result.transfer_seconds = +secs.toFixed(3);
    result.mbytes_per_second = +(result.bytes / 1e6 / secs).toFixed(1);
    result.selected_pair = await call(() => rt.selectedPair());
    await call(([k]) => rt.drained(k), [ctrl]);
    await call(() => rt.closePc());
    if (failures) return finish(EXIT.transfer, `${failures} file(s) failed`);
    return finish(EXIT.ok);
}

// ---- Mode: recv (docs/file-transfer.md, receiver side) -------------------------------------------
let recv_ctrl = null;
let recv_t_start = null;

function on_sink_bytes(label, offset, data) {
    const f = recv_by_label.get(label);
    if (!f) {
        // The protocol makes this impossible (the channel opens after our accept), but buffer
        // rather than lose bytes if it happens.
        if (!early_uploads.has(label)) early_uploads.set(label, []);
        early_uploads.get(label).push({ offset, data });
        return null;
    }
    return write_file_bytes(f, offset, data);
}

function write_file_bytes(f, offset, data) {
    if (offset !== f.channel_bytes) return `out-of-order upload: offset ${offset}, expected ${f.channel_bytes}`;
    f.channel_bytes += data.length;
    if (f.done) {
        if (data.length) {
            f.entry.extra_bytes = (f.entry.extra_bytes || 0) + data.length;
            log(`warning: ${data.length} byte(s) on "${f.name}" after it was complete`);
        }
        return null;
    }
    if (f.expected !== null && f.received + data.length > f.expected) {
        recv_fail_file(f, `more bytes than announced (${f.received + data.length} > ${f.expected})`);
        return null;
    }
    fs.writeSync(f.fd, data);
    f.hash.update(data);
    f.received += data.length;
    maybe_complete(f);
    return null;
}

function recv_fail_file(f, error) {
    if (f.done) return;
    f.done = true;
    f.entry.ok = false;
    f.entry.error = error;
    log(`${f.name}: ${error}`);
    send_recv_control({ type: "ack", id: f.id, ok: false, sha256: null, error });
    maybe_bye();
}

function maybe_complete(f) {
    if (f.done || !f.end) return;
    const size = f.end.size;
    if (f.received < size) return;
    f.done = true;
    fs.closeSync(f.fd);
    f.fd = null;
    const got = f.hash.digest("hex");
    const entry = f.entry;
    entry.size = f.received;
    entry.sha256 = got;
    entry.seconds = +((performance.now() - f.t_start) / 1000).toFixed(3);
    if (got !== f.end.sha256) {
        entry.ok = false;
        entry.error = `sha256 mismatch: got ${got}, end says ${f.end.sha256}`;
        log(`${f.name}: ${entry.error}; keeping ${f.part}`);
        send_recv_control({ type: "ack", id: f.id, ok: false, sha256: got, error: entry.error });
    } else if (fs.existsSync(f.target)) {
        entry.ok = false;
        entry.error = "target appeared meanwhile; not overwriting";
        send_recv_control({ type: "ack", id: f.id, ok: false, sha256: got, error: entry.error });
    } else {
        fs.renameSync(f.part, f.target);
        entry.ok = true;
        result.bytes += f.received;
        log(`${f.name}: ${f.received} bytes, SHA-256 verified, written to ${f.target} in ${entry.seconds}s ` +
            `(${(f.received / 1e6 / Math.max(entry.seconds, 1e-3)).toFixed(1)} MB/s)`);
        send_recv_control({ type: "ack", id: f.id, ok: true, sha256: got });
    }
    maybe_bye();
}

function send_recv_control(obj) {
    log(`-> ${JSON.stringify(obj)}`);
    call(([k, t]) => rt.send(k, t, false), [recv_ctrl, JSON.stringify(obj)])
        .catch((e) => {
            // "bye" is a courtesy (docs/file-transfer.md): a sender holding every ack may have
            // closed the control channel before our send reached the page.
            if (obj.type === "bye") log(`bye not sent: ${e.message.split("\n")[0]}`);
            else finish(EXIT.transfer, `sending on the control channel: ${e.message}`);
        });
}

function maybe_bye() {
    if (!recv_done_seen || recv_bye_sent) return;
    for (const f of recv_files.values()) if (!f.done) return;
    recv_bye_sent = true;
    send_recv_control({ type: "bye" });
    const secs = (performance.now() - (recv_t_start ?? performance.now())) / 1000;
    result.transfer_seconds = +secs.toFixed(3);
    result.mbytes_per_second = +(result.bytes / 1e6 / Math.max(secs, 1e-3)).toFixed(1);
    (async () => {
        result.selected_pair = await call(() => rt.selectedPair());
        const bad = result.files.filter((e) => !e.ok);
        const verified = result.files.length - bad.length;
        let err = null;
        if (bad.length) err = `${bad.length} file(s) failed: ` + bad.map((e) => `${e.name}: ${e.error}`).join("; ");
        else if (opt.expectFiles !== null && verified !== opt.expectFiles)
            err = `expected ${opt.expectFiles} file(s), received ${verified}`;
        // Let "bye" reach the sender; it closes first, then we leave.
        phase = "waiting for the sender to close";
        await call(([k]) => rt.drained(k), [recv_ctrl]);
        await Promise.race([next((e) => (e.ev === "close" && e.key === recv_ctrl) ||
            (e.ev === "pc" && ["disconnected", "closed", "failed"].includes(e.state))), sleep(kLingerMs)]);
        finish(err ? EXIT.transfer : EXIT.ok, err);
    })().catch((e) => finish(EXIT.internal, e.stack || String(e)));
}

function on_recv_control(m) {
    if (m.type === "hello") {
        if (m.version !== 1) log(`warning: hello version ${m.version}`);
        result.announced = { files: m.files, bytes: m.bytes };
        recv_t_start = performance.now();
    } else if (m.type === "file") {
        const entry = { id: m.id, name: m.name, size: m.size, sha256: null, ok: false };
        result.files.push(entry);
        const why = unsafe_name(m.name);
        const target = why ? null : path.join(opt.recv, m.name);
        let reason = why;
        if (!reason && recv_files.has(m.id)) reason = `duplicate id ${m.id}`;
        if (!reason && recv_by_label.has(m.name)) reason = "duplicate name in this session";
        if (!reason && fs.existsSync(target)) reason = "file exists";
        if (reason) {
            entry.error = `rejected: ${reason}`;
            recv_files.set(m.id, { id: m.id, name: m.name, done: true, entry });
            send_recv_control({ type: "reject", id: m.id, reason });
            maybe_bye();
            return;
        }
        fs.mkdirSync(path.dirname(target), { recursive: true });
        const part = `${target}.part`;
        const f = {
            id: m.id, name: m.name, target, part, fd: fs.openSync(part, "w"), received: 0,
            channel_bytes: 0, expected: typeof m.size === "number" ? m.size : null,
            hash: crypto.createHash("sha256"), end: null, done: false, entry, t_start: performance.now(),
        };
        recv_files.set(m.id, f);
        recv_by_label.set(m.name, f);
        send_recv_control({ type: "accept", id: m.id, offset: 0 });
        for (const u of early_uploads.get(m.name) || []) write_file_bytes(f, u.offset, u.data);
        early_uploads.delete(m.name);
    } else if (m.type === "start") {
        const f = recv_files.get(m.id);
        if (f && Number(m.offset || 0) !== 0) recv_fail_file(f, `start at offset ${m.offset}, we accepted 0`);
    } else if (m.type === "end") {
        const f = recv_files.get(m.id);
        if (!f) return finish(EXIT.transfer, `end for unknown id ${m.id}`);
        if (f.done) return;
        if (f.expected !== null && m.size !== f.expected) return recv_fail_file(f, `end size ${m.size} != announced ${f.expected}`);
        f.end = { size: m.size, sha256: String(m.sha256).toLowerCase() };
        if (f.sink_closed && f.received < m.size)
            return recv_fail_file(f, `channel closed after ${f.received} of ${m.size} bytes`);
        maybe_complete(f);
    } else if (m.type === "done") {
        recv_done_seen = true;
        maybe_bye();
    } else {
        log(`ignoring control message of unknown type ${m.type}`);
    }
}

async function run_recv() {
    await call(() => { rt.sinkMode = true; });
    await call((b) => { rt.batch = b; }, kUploadBatch);
    on_event_hook = (ev) => {
        if (ev.ev === "channel" && ev.label === "rtcat-control") {
            if (ev.protocol !== "rtcat-file/1") log(`warning: control channel protocol "${ev.protocol}"`);
            recv_ctrl = ev.key;
            phase = "transferring";
            return true;
        }
        if (ev.ev === "message" && ev.key === recv_ctrl) {
            log(`<- ${ev.text}`);
            let m;
            try { m = JSON.parse(ev.text); } catch { finish(EXIT.transfer, `control message is not JSON: ${ev.text}`); return true; }
            on_recv_control(m);
            return true;
        }
        if (ev.ev === "sink-closed") {
            const f = recv_by_label.get(ev.label);
            if (ev.textMessages) log(`warning: ${ev.textMessages} string message(s) on file channel "${ev.label}"`);
            if (f) f.sink_closed = true;
            if (f && !f.done && f.end && f.received < f.end.size)
                recv_fail_file(f, `channel closed after ${f.received} of ${f.end.size} bytes`);
            return true;
        }
        if (ev.ev === "close" && ev.key === recv_ctrl && !recv_bye_sent) {
            finish(EXIT.transfer, "control channel closed before done/bye");
            return true;
        }
        return false;
    };
    if (opt.role === "offer") {
        // An offer needs an m=application section, hence a data channel. A negotiated one sends
        // no DCEP OPEN, so the remote never sees it.
        await call(() => rt.open("rtcat-placeholder", { negotiated: true, id: 1023 }));
    }
    await signal();
    phase = "waiting for the control channel";
}

// ---- Main ----------------------------------------------------------------------------------------
async function main() {
    log(`mode ${mode}; Chromium ${kChromium}`);
    const port = await start_server();
    // Chromium starts while node loads playwright-core (~0.3 s and ~0.5-0.8 s here).
    phase = "starting Chromium";
    const ws_promise = start_chromium();
    ws_promise.catch(() => {}); // reported below
    const { chromium } = await import("playwright-core").catch((e) => {
        throw Object.assign(new Error(`playwright-core is not installed (run tests/interop/setup.sh): ${e.message}`), { code: EXIT.internal });
    });
    result.timings.imported_ms = ms();
    const ws = await ws_promise;
    phase = "attaching over CDP";
    browser = await chromium.connectOverCDP(ws, { timeout: 20000 });
    result.timings.cdp_connected_ms = ms();
    const ctx = browser.contexts()[0];
    page = ctx.pages()[0] || (await ctx.newPage());
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Runtime.enable");
    await cdp.send("Runtime.addBinding", { name: "__rtcatEvent" });
    cdp.on("Runtime.bindingCalled", ({ name, payload }) => {
        if (name !== "__rtcatEvent") return;
        let ev;
        try { ev = JSON.parse(payload); } catch { return; }
        if (opt.verbose) log(`page event ${payload.slice(0, 300)}`);
        dispatch(ev);
    });
    page.on("console", (m) => log(`page console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log(`page error: ${e.message}`));
    await page.goto(`http://127.0.0.1:${port}/`);
    await call(() => rt.create());
    result.timings.page_ready_ms = ms();
    log(`Chromium up: DevTools after ${result.timings.devtools_ms} ms, CDP attached after ` +
        `${result.timings.cdp_connected_ms} ms, page ready after ${result.timings.page_ready_ms} ms`);
    if (mode === "ping") await run_ping();
    else if (mode === "netcat") await run_netcat();
    else if (mode === "send") await run_send();
    else await run_recv();
}

main().catch((e) => finish(e.code && Number.isInteger(e.code) ? e.code : EXIT.internal, e.stack || String(e)));
