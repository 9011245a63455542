// The page of tests/interop/plain_peer.py's browser engines (Chromium and Firefox alike).
//
// It uses nothing but the standard RTCPeerConnection / RTCDataChannel API and talks to the
// harness (a small HTTP server on 127.0.0.1, the page's own origin) with fetch():
//   GET  /config                 what to do: role, mode, files, labels, text, limits
//   POST /local                  our description once ICE gathering is complete
//   GET  /remote                 long poll: the peer's description (204: ask again)
//   GET  /file/<i>               bytes of the i-th file to send
//   POST /data?key=&label=&...   every byte one channel received, once it closed (or at the end)
//   POST /event                  one log line / state change (also kept for the result)
//   GET  /control                long poll: "close" asks us to close the connection now
//   POST /result                 the outcome; the harness then ends the browser
// The page knows nothing of rtcat: no protocol beyond "bytes on channels, close when done".
"use strict";

const T0 = performance.now();
const now = () => Math.round(performance.now() - T0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const EXIT = { ok: 0, internal: 1, connectivity: 3, data: 7 };

let cfg = null;
let pc = null;
let capture = null; // Firefox: a live fake microphone keeps its 127.0.0.1 candidate
const chans = []; // { key, ch, label, protocol, id, origin, bytes, messages, textMessages, parts, ... }
const timings = {};
const events = [];
let hangup = null; // { how, t }: the peer closed the connection (first sign we saw)
let weClosed = false;
let failed = null; // { code, error }: set once; every waiting flow gives up
const waiters = new Set(); // callbacks re-checked on every change

function changed() { for (const w of [...waiters]) w(); }
// Resolves when cond() holds, re-checked on every change (events, saves, closes).
function until(cond) {
    return new Promise((resolve, reject) => {
        const w = () => {
            if (failed) { waiters.delete(w); reject(new Error(failed.error)); }
            else if (cond()) { waiters.delete(w); resolve(); }
        };
        waiters.add(w);
        w();
    });
}
function fail(code, error) {
    if (!failed) failed = { code, error };
    changed();
    throw new Error(error);
}

function post(path, body, type) {
    return fetch(path, { method: "POST", body,
        headers: { "content-type": type || "application/json" }, cache: "no-store" });
}
function note(what, extra) {
    const e = { t: now(), what, ...(extra || {}) };
    events.push(e);
    post("/event", JSON.stringify(e)).catch(() => {});
}

// ---- Connection-level state: how a hang-up of the peer shows in this browser -----------------
function peerHungUp(how) {
    if (weClosed || hangup) return;
    hangup = { how, t: now() };
    note("hangup", { how });
    changed();
}

function watch() {
    pc.onconnectionstatechange = () => {
        const s = pc.connectionState;
        note("connectionState", { state: s });
        if (s === "connected" && timings.connected_ms === undefined) timings.connected_ms = now();
        if (s === "failed" && timings.connected_ms === undefined)
            failed = failed || { code: EXIT.connectivity, error: "connection failed (ICE/DTLS)" };
        if (["closed", "failed", "disconnected"].includes(s)) peerHungUp(`connectionState ${s}`);
        changed();
    };
    pc.oniceconnectionstatechange = () => note("iceConnectionState", { state: pc.iceConnectionState });
    pc.onicegatheringstatechange = () => note("iceGatheringState", { state: pc.iceGatheringState });
    pc.onicecandidate = (e) => note("candidate", { candidate: e.candidate ? e.candidate.candidate : null });
    pc.onicecandidateerror = (e) => note("candidateError", { code: e.errorCode, text: e.errorText, url: e.url });
    pc.ondatachannel = ({ channel }) => adopt(channel, "remote");
}

// pc.sctp (and its DTLS transport) exist only once a description with m=application is set.
function watchTransports() {
    const sctp = pc.sctp;
    if (!sctp || sctp.__watched) return;
    sctp.__watched = true;
    note("sctp", { state: sctp.state, maxMessageSize: sctp.maxMessageSize, maxChannels: sctp.maxChannels });
    sctp.onstatechange = () => {
        note("sctpState", { state: sctp.state });
        if (sctp.state === "closed") peerHungUp("sctp closed");
        changed();
    };
    const dtls = sctp.transport;
    if (dtls) {
        dtls.onstatechange = () => {
            note("dtlsState", { state: dtls.state });
            if (dtls.state === "closed" || dtls.state === "failed") peerHungUp(`dtls ${dtls.state}`);
            changed();
        };
        dtls.onerror = (e) => note("dtlsError", { error: String(e.error && e.error.message || e) });
    }
}
function transportsUp() {
    const sctp = pc.sctp;
    if (weClosed) return false; // our own hang-up closes every channel: not a stream reset
    if (!sctp) return !hangup; // no RTCSctpTransport in this browser: trust the hang-up signs
    return !hangup && sctp.state === "connected" &&
        (!sctp.transport || sctp.transport.state === "connected");
}

// ---- Channels ------------------------------------------------------------------------------------
let nextKey = 1;
function adopt(ch, origin, placeholder) {
    const c = { key: nextKey++, ch, label: ch.label, protocol: ch.protocol, id: ch.id, origin,
        placeholder: !!placeholder, bytes: 0, messages: 0, textMessages: 0, parts: [],
        opened_ms: null, closed_ms: null, clean: null, error: null, closed: false,
        closing_by_us: false, peer_reset_ms: null, upload: null, saved: null };
    ch.binaryType = "arraybuffer";
    chans.push(c);
    if (origin === "remote") note("channel", { key: c.key, label: c.label, protocol: c.protocol, id: ch.id });
    const opened = () => {
        if (c.opened_ms !== null) return;
        c.opened_ms = now();
        c.id = ch.id;
        if (timings.first_open_ms === undefined) timings.first_open_ms = c.opened_ms;
        note("open", { key: c.key, label: c.label, origin, id: ch.id });
        changed();
    };
    ch.onopen = opened;
    if (ch.readyState === "open") opened(); // a remote channel may arrive already open
    ch.onmessage = ({ data }) => {
        c.messages++;
        if (typeof data === "string") { c.textMessages++; data = new TextEncoder().encode(data); }
        c.parts.push(data);
        c.bytes += data.byteLength;
    };
    // The peer's stream reset (its end of the channel) shows as readyState "closing" (and a
    // "closing" event where implemented) before "close". Seen that way, the bytes before it are
    // complete even if the peer hangs up before our half of the reset finishes.
    const closing = () => {
        if (c.peer_reset_ms !== null || c.closing_by_us || c.closed || weClosed) return;
        c.peer_reset_ms = now();
        note("peerReset", { key: c.key, label: c.label, bytes: c.bytes });
    };
    ch.addEventListener("closing", closing);
    c.pollClosing = () => { if (ch.readyState === "closing") closing(); };
    ch.onerror = (e) => {
        c.error = String(e.error && (e.error.errorDetail + ": " + e.error.message) || e.message || e);
        note("channelError", { key: c.key, label: c.label, error: c.error });
    };
    ch.onclose = () => {
        if (c.closed) return;
        c.closed = true;
        c.closed_ms = now();
        // Closed by a stream reset while the association lives (clean), or as part of a
        // hang-up/abort (then the receiver cannot know it has every byte).
        c.pollClosing();
        c.clean = !c.error && transportsUp();
        c.complete = c.clean || c.peer_reset_ms !== null;
        note("close", { key: c.key, label: c.label, origin, clean: c.clean, peer_reset: c.peer_reset_ms !== null, bytes: c.bytes,
            sctp: pc.sctp && pc.sctp.state, dtls: pc.sctp && pc.sctp.transport && pc.sctp.transport.state });
        if (!c.placeholder) c.upload = uploadChannel(c, true);
        changed();
    };
    return c;
}

// Hands the channel's bytes to the harness (which saves them in --recv mode).
async function uploadChannel(c, final) {
    const q = new URLSearchParams({ key: c.key, label: c.label, origin: c.origin,
        final: final ? "1" : "0", clean: String(c.clean), complete: String(c.complete),
        messages: c.messages,
        text_messages: c.textMessages });
    const body = new Blob(c.parts);
    const r = await post("/data?" + q, body, "application/octet-stream");
    c.saved = await r.json();
    if (c.saved.error) note("saveError", { key: c.key, label: c.label, error: c.saved.error });
    changed();
    return c.saved;
}

const peerChannels = () => chans.filter((c) => c.origin === "remote");
const describe = (c) => ({ key: c.key, label: c.label, protocol: c.protocol, id: c.id, origin: c.origin,
    placeholder: c.placeholder, bytes: c.bytes, messages: c.messages, text_messages: c.textMessages,
    opened_ms: c.opened_ms, closed_ms: c.closed_ms, clean: c.clean, peer_reset_ms: c.peer_reset_ms,
    complete: c.complete, error: c.error });

function waitOpen(c) {
    return until(() => c.opened_ms !== null || c.closed).then(() => {
        if (c.closed) fail(EXIT.data, `channel "${c.label}" closed before it opened (${c.error || "no error"})`);
    });
}

// ---- Signaling (non-trickle) ---------------------------------------------------------------------
async function localDescription() {
    // until(() => false) only ends by rejecting: when ICE failed meanwhile (Firefox without a
    // usable address fails before gathering ever completes).
    if (pc.iceGatheringState !== "complete")
        await Promise.race([until(() => false), new Promise((resolve) => pc.addEventListener(
            "icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve()))]);
    timings.gathered_ms = now();
    await post("/local", JSON.stringify(pc.localDescription));
}
async function remoteDescription() {
    for (;;) {
        const r = await fetch("/remote", { cache: "no-store" });
        if (r.status === 200) { timings.remote_ms = now(); return r.json(); }
        if (r.status !== 204) fail(EXIT.internal, `GET /remote: ${r.status}`);
    }
}
async function signal() {
    if (cfg.role === "offer") {
        await pc.setLocalDescription(await pc.createOffer());
        await localDescription();
        await pc.setRemoteDescription(await remoteDescription());
    } else {
        await pc.setRemoteDescription(await remoteDescription());
        await pc.setLocalDescription(await pc.createAnswer());
        await localDescription();
    }
    watchTransports();
}

// ---- Modes ---------------------------------------------------------------------------------------
function chunkSize() {
    const m = pc.sctp && pc.sctp.maxMessageSize;
    return m > 0 && m < cfg.chunk ? m : cfg.chunk; // 0/Infinity: no limit announced
}

async function sendBytes(c, url) {
    const ch = c.ch;
    ch.bufferedAmountLowThreshold = cfg.low_water;
    const resp = await fetch(url, { cache: "no-store" });
    if (!resp.ok) fail(EXIT.internal, `GET ${url}: ${resp.status}`);
    const data = new Uint8Array(await resp.arrayBuffer());
    const chunk = chunkSize();
    let waits = 0;
    for (let off = 0; off < data.length; off += chunk) {
        if (ch.bufferedAmount > cfg.high_water) {
            waits++;
            await new Promise((resolve) => {
                const done = () => { ch.removeEventListener("bufferedamountlow", done);
                    ch.removeEventListener("close", done); resolve(); };
                ch.addEventListener("bufferedamountlow", done);
                ch.addEventListener("close", done);
            });
        }
        if (ch.readyState !== "open") fail(EXIT.data, `channel "${c.label}" is ${ch.readyState} after ${off} bytes`);
        ch.send(data.subarray(off, Math.min(off + chunk, data.length)));
    }
    // Everything handed to SCTP before the close (a close right away would be legal too: the
    // stream reset is queued behind the data; waiting keeps the timings readable).
    while (ch.readyState === "open" && ch.bufferedAmount > 0) await sleep(5);
    return { bytes: data.length, waits, chunk };
}

function closeOurs(c) {
    c.closing_by_us = true;
    c.close_called_ms = now();
    c.ch.close();
}
const hungUpAfterClose = (c) => !!(hangup && c.close_called_ms !== undefined && hangup.t >= c.close_called_ms);

async function closeAndWait(c) {
    await sleep(cfg.close_delay_ms);
    closeOurs(c);
    await until(() => c.closed);
}

async function runSend(first) {
    const files = [];
    for (const [i, f] of cfg.files.entries()) {
        const entry = { label: f.label, size: f.size, ok: false, seconds: null, clean: null };
        files.push(entry);
        const c = i === 0 && first ? first : adopt(pc.createDataChannel(f.label), "local");
        await waitOpen(c);
        const t = performance.now();
        const sent = await sendBytes(c, `/file/${i}`);
        // The next channel waits for this one's 'close' (the reset finished both ways): a stream
        // id is reused at once, and the close is also the receiver's only end-of-file mark.
        await closeAndWait(c);
        entry.seconds = +((performance.now() - t) / 1000).toFixed(3);
        entry.bytes = sent.bytes;
        entry.chunk = sent.chunk;
        entry.backpressure_waits = sent.waits;
        entry.clean = c.clean;
        // The last channel may also end by the peer's hang-up after our close(): a peer done
        // reading may leave before our half of the reset is confirmed (aiortc does).
        const last = i === cfg.files.length - 1;
        entry.ok = sent.bytes === f.size && (c.clean || (last && hungUpAfterClose(c)));
        if (!entry.ok) fail(EXIT.data, `channel "${c.label}" did not close cleanly (${c.error || "hang-up"})`);
    }
    return { files };
}

// Waits for the peer to hang up, at most cfg.grace_s; says whether it did.
async function hangupOrGrace() {
    const t = now();
    await Promise.race([until(() => hangup), sleep(cfg.grace_s * 1000)]);
    return { peer_hung_up: !!hangup, waited_ms: now() - t };
}

async function runRecv() {
    const saved = () => new Set(peerChannels().filter((c) => c.saved && c.saved.saved).map((c) => c.label));
    const complete = () => {
        const s = saved();
        if (cfg.expect.length) return cfg.expect.every((l) => s.has(l));
        return s.size > 0 && peerChannels().every((c) => c.closed);
    };
    await until(() => complete() || hangup);
    if (!complete()) {
        // The peer hung up first: let the closes it caused be uploaded, then judge.
        await Promise.all(peerChannels().map((c) => c.upload).filter((u) => u));
        await sleep(300);
        await Promise.all(peerChannels().map((c) => c.upload).filter((u) => u));
        if (!complete()) {
            const s = saved();
            const missing = cfg.expect.filter((l) => !s.has(l));
            fail(EXIT.data, `the peer hung up (${hangup.how}) before ` +
                (missing.length ? `sending ${missing.join(", ")}` : "any channel was saved"));
        }
    }
    const end = await hangupOrGrace();
    const unclean = peerChannels().filter((c) => cfg.expect.includes(c.label) && !c.complete);
    if (unclean.length) {
        end.error = "not closed by a stream reset (incomplete as far as we can tell): " +
            unclean.map((c) => c.label).join(", ");
        fail(EXIT.data, end.error);
    }
    return end;
}

async function runNetcat(ours) {
    await waitOpen(ours);
    if (cfg.text_b64.length) {
        const bytes = Uint8Array.from(atob(cfg.text_b64), (ch) => ch.charCodeAt(0));
        ours.ch.send(bytes);
    }
    while (ours.ch.readyState === "open" && ours.ch.bufferedAmount > 0) await sleep(5);
    await sleep(cfg.close_delay_ms);
    closeOurs(ours);
    const sent_ms = now();
    // Done when ours is closed and every channel of the peer is (one seen at least), or the
    // peer hung up.
    await until(() => ours.closed && (hangup ||
        (peerChannels().length > 0 && peerChannels().every((c) => c.closed))));
    // Clean, or the peer hung up after our close() (a peer done reading may leave before our
    // half of the reset is confirmed: seen aiortc -> Firefox). Anything else: the peer may not
    // have all of it.
    if (!ours.clean && !hungUpAfterClose(ours))
        fail(EXIT.data, `our channel "${ours.label}" did not close cleanly ` +
            `(${ours.error || (hangup ? hangup.how : "?")}): the peer may not have all of it`);
    return { our_close_ms: ours.closed_ms - sent_ms, our_close: ours.clean ? "clean" : "peer hung up",
        peer_hung_up: !!hangup };
}

// ---- Result ----------------------------------------------------------------------------------------
async function selectedPair() {
    try {
        const stats = await pc.getStats();
        let transport = null, pair = null;
        stats.forEach((s) => { if (s.type === "transport") transport = s; });
        if (transport && transport.selectedCandidatePairId) pair = stats.get(transport.selectedCandidatePairId);
        // Firefox marks the pair itself (no transport stats).
        if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.selected) pair = s; });
        if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
        if (!pair) return null;
        const cand = (id) => { const c = stats.get(id) || {};
            return { candidateType: c.candidateType, address: c.address || c.ipAddress,
                port: c.port || c.portNumber, protocol: c.protocol || c.transport }; };
        return { local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId),
            currentRoundTripTime: pair.currentRoundTripTime,
            dtlsCipher: transport && transport.dtlsCipher, tlsVersion: transport && transport.tlsVersion };
    } catch (e) { return { error: String(e) }; }
}

let pairAtConnect = null;
let reported = false;
async function report(outcome) {
    if (reported) return;
    reported = true;
    // Channels still open: hand over what they received so far (not saved as files).
    await Promise.all(chans.filter((c) => !c.closed && !c.placeholder).map((c) => uploadChannel(c, false).catch(() => {})));
    await Promise.all(chans.map((c) => c.upload).filter((u) => u).map((u) => u.catch(() => {})));
    // A hang-up seen after the mode's own end (e.g. while our close finished) still counts.
    const body = { ...outcome, peer_hung_up: !!(outcome.peer_hung_up || hangup), hangup,
        channels: chans.map(describe), events, timings,
        selected_pair: pairAtConnect,
        max_message_size_api: pc && pc.sctp ? pc.sctp.maxMessageSize : null,
        user_agent: navigator.userAgent };
    await post("/result", JSON.stringify(body));
}

function closePc() {
    if (pc && !weClosed) { weClosed = true; note("closing our connection"); pc.close(); }
}

async function main() {
    cfg = await (await fetch("/config", { cache: "no-store" })).json();
    timings.config_ms = now();
    // Long poll: the harness asks us to hang up (timeout, signal, its own failure).
    (async () => {
        for (;;) {
            const r = await fetch("/control", { cache: "no-store" }).catch(() => null);
            if (r && r.status === 200 && (await r.text()) === "close") {
                closePc();
                failed = failed || { code: EXIT.internal, error: "stopped by the harness" };
                changed();
                await report({ code: failed.code, error: failed.error });
                return;
            }
            if (!r) await sleep(200);
        }
    })();
    if (cfg.capture) {
        // Firefox gathers a 127.0.0.1 candidate only while a capture is active. The track is
        // kept alive (never added to the connection).
        capture = await navigator.mediaDevices.getUserMedia(cfg.capture);
        note("capture", { tracks: capture.getTracks().map((t) =>
            ({ kind: t.kind, label: t.label, readyState: t.readyState, muted: t.muted })) });
    }
    pc = new RTCPeerConnection({ iceServers: [] });
    watch();
    // Where no "closing" event exists, poll: a peer may hang up milliseconds after its reset.
    setInterval(() => { for (const c of chans) if (!c.closed) c.pollClosing(); }, 5);
    let first = null;
    if (cfg.role === "offer") {
        // An offer needs an m=application section, hence a channel before createOffer.
        if (cfg.mode === "send") first = adopt(pc.createDataChannel(cfg.files[0].label), "local");
        else if (cfg.mode === "netcat") first = adopt(pc.createDataChannel(cfg.label), "local");
        // recv: a negotiated channel sends no DCEP OPEN, so the peer never sees it.
        else first = adopt(pc.createDataChannel("placeholder", { negotiated: true, id: 1023 }), "local", true);
    }
    await signal();
    await until(() => timings.connected_ms !== undefined || hangup);
    pairAtConnect = await selectedPair();
    let outcome;
    if (cfg.mode === "send") outcome = await runSend(first);
    else if (cfg.mode === "recv") outcome = await runRecv();
    else {
        const ours = first || adopt(pc.createDataChannel(cfg.label), "local");
        outcome = await runNetcat(ours);
    }
    pairAtConnect = (await selectedPair()) || pairAtConnect;
    timings.done_ms = now();
    closePc(); // hang up
    await report({ code: EXIT.ok, error: null, ...outcome });
}

main().catch(async (e) => {
    const f = failed || { code: EXIT.internal, error: `page: ${e && e.stack || e}` };
    closePc();
    try { await report({ code: f.code, error: f.error }); } catch (e2) { /* harness gone */ }
});
