"""The aiortc engine of tests/interop/plain_peer.py: the same modes, flow and result as the page
(plain_page.js), written against aiortc's API (Debian's python3-aiortc 1.4, aioice 0.8).

Imported by plain_peer.py under /usr/bin/python3 only (the interpreter python3-aiortc is
installed for). aiortc differs from the browsers in ways that matter here:
- aioice never offers 127.0.0.1 (get_host_addresses skips it): in a namespace with only `lo` it
  would gather nothing, so the engine adds loopback (see _loopback_candidates).
- aiortc has no "disconnected" state and no SCTP statechange event: a hang-up of the peer shows
  as the DTLS transport's "closed" (close_notify) and/or the SCTP transport's state becoming
  "closed" (ABORT, or SHUTDOWN completed), which is polled.
- RTCDataChannel.close() queues the stream reset at once, with the TSN reached so far: bytes still
  in the channel's queue (bufferedAmount) would go out after the reset. Hence "bufferedAmount is
  0" before every close, as in the page.
"""

import asyncio
import signal
import threading
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from plain_peer import EXIT_CONNECT, EXIT_DATA, EXIT_INTERNAL, EXIT_OK, EXIT_TIMEOUT, Failure, kChunk, \
    kCloseDelayMs, kHighWater, kLowWater

_host_addresses = aioice.ice.get_host_addresses


def _loopback_candidates(use_ipv4, use_ipv6):
    # Loopback first: these tests run in namespaces whose only interface is lo.
    addrs = _host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return (["127.0.0.1"] if use_ipv4 else []) + addrs


aioice.ice.get_host_addresses = _loopback_candidates


HELD_RESETS = []  # streams of each reset request held back (reported in the result)


def _honour_reset_last_tsn():
    """aiortc 1.4 performs a peer's stream reset the moment the request arrives, ignoring its
    last TSN, and drops the stream's DATA that is still in flight. RFC 6525 §5.2.2: the reset
    waits until every TSN up to that one has arrived. Seen here: Chromium -> aiortc lost the
    last 58 KB of a 1.5 MB file, the channel "closing" while its data was still arriving. Held
    requests get no answer yet; the sender retransmits them, and they are performed once covered.
    Without this the aiortc engine would be a receiver no sender can trust, which is not what
    the tests are about."""
    from aiortc import rtcsctptransport as st

    receive_param = st.RTCSctpTransport._receive_reconfig_param
    receive_chunk = st.RTCSctpTransport._receive_chunk

    async def reconfig_param(self, param):
        if isinstance(param, st.StreamResetOutgoingParam) and \
                st.uint32_gt(param.last_tsn, self._last_received_tsn):
            held = self.__dict__.setdefault("_plain_held_resets", {})
            if param.request_sequence not in held:
                HELD_RESETS.append(param.streams)
            held[param.request_sequence] = param
            return
        await receive_param(self, param)

    async def chunk(self, c):
        await receive_chunk(self, c)
        held = self.__dict__.get("_plain_held_resets")
        for seq, param in list((held or {}).items()):
            if not st.uint32_gt(param.last_tsn, self._last_received_tsn):
                del held[seq]
                await receive_param(self, param)

    st.RTCSctpTransport._receive_reconfig_param = reconfig_param
    st.RTCSctpTransport._receive_chunk = chunk


_honour_reset_last_tsn()


def _announce_closing():
    """aiortc marks a channel "closing" when the peer's stream reset arrives but emits nothing;
    polling missed it when the peer's ABORT followed within milliseconds (aiortc -> aiortc: a
    complete file judged aborted). Emit a "closing" event, as browsers do. Observation only."""
    from aiortc.rtcdatachannel import RTCDataChannel

    set_state = RTCDataChannel._setReadyState

    def patched(self, state):
        if state == "closing" and self.readyState == "open":
            self.emit("closing")
        set_state(self, state)

    RTCDataChannel._setReadyState = patched


_announce_closing()


async def in_thread(fn):
    """fn() on a daemon thread: a blocking stdin read must not keep asyncio.run() from ending
    (its default executor is joined at shutdown)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(ok, value):
        if not fut.done():
            (fut.set_result if ok else fut.set_exception)(value)

    def work():
        try:
            value = fn()
            loop.call_soon_threadsafe(settle, True, value)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, False, e)

    threading.Thread(target=work, daemon=True).start()
    return await fut


class Chan:
    """One data channel as the page keeps it: bytes, messages, when and how it closed."""

    def __init__(self, engine, ch, origin, placeholder=False):
        self.key = engine.next_key
        engine.next_key += 1
        self.ch, self.origin, self.placeholder = ch, origin, placeholder
        self.label, self.protocol = ch.label, ch.protocol
        self.bytes = self.messages = self.text_messages = 0
        self.parts = []
        self.opened_ms = self.closed_ms = None
        self.clean = None
        self.complete = None
        self.error = None
        self.closed = False
        self.closing_by_us = False
        self.close_called_ms = None
        self.peer_reset_ms = None
        self.saved = None

    def describe(self):
        return {"key": self.key, "label": self.label, "protocol": self.protocol, "id": self.ch.id,
                "origin": self.origin, "placeholder": self.placeholder, "bytes": self.bytes,
                "messages": self.messages, "text_messages": self.text_messages,
                "opened_ms": self.opened_ms, "closed_ms": self.closed_ms, "clean": self.clean,
                "peer_reset_ms": self.peer_reset_ms, "complete": self.complete, "error": self.error}

    def poll_closing(self, engine, event=False):
        # The peer's stream reset: the "closing" event (_announce_closing), or the state seen.
        if (event or self.ch.readyState == "closing") and not self.closing_by_us \
                and self.peer_reset_ms is None and not self.closed and not engine.we_closed:
            self.peer_reset_ms = engine.run.ms()
            engine.note("peerReset", key=self.key, label=self.label, bytes=self.bytes)


class Engine:
    def __init__(self, run):
        self.run = run
        self.opt = run.opt
        self.pc = None
        self.chans = []
        self.next_key = 1
        self.hangup = None
        self.we_closed = False
        self.failed = None
        self.changed = asyncio.Event()  # pulsed on every change; waiters re-check
        self.timings = {}
        self.events = run.result["events"]

    # Helpers -----------------------------------------------------------------------------------
    def note(self, what, **extra):
        e = {"t": self.run.ms(), "what": what, **extra}
        self.events.append(e)
        if self.opt.verbose or what not in ("open",):
            self.run.log("aiortc: " + " ".join(f"{k}={v}" for k, v in e.items() if k != "t"))

    def pulse(self):
        self.changed.set()

    async def until(self, cond):
        while True:
            if self.failed:
                raise Failure(*self.failed)
            if cond():
                return
            self.changed.clear()
            await self.changed.wait()

    def fail(self, code, error):
        if not self.failed:
            self.failed = (code, error)
        self.pulse()
        raise Failure(code, error)

    def sctp_state(self):
        return self.pc.sctp.state if self.pc and self.pc.sctp else None

    def dtls_state(self):
        return self.pc.sctp.transport.state if self.pc and self.pc.sctp else None

    def transports_up(self):
        return not self.hangup and not self.we_closed and self.sctp_state() == "connected" \
            and self.dtls_state() == "connected"

    def peer_hung_up(self, how):
        if self.we_closed or self.hangup:
            return
        self.hangup = {"how": how, "t": self.run.ms()}
        self.note("hangup", how=how)
        self.pulse()

    # Connection --------------------------------------------------------------------------------
    def watch(self):
        pc = self.pc

        @pc.on("connectionstatechange")
        def _():
            s = pc.connectionState
            self.note("connectionState", state=s)
            if s == "connected" and "connected_ms" not in self.timings:
                self.timings["connected_ms"] = self.run.ms()
            if s == "failed" and "connected_ms" not in self.timings and not self.failed:
                self.failed = (EXIT_CONNECT, "connection failed (ICE/DTLS)")
            if s in ("failed", "closed"):
                self.peer_hung_up(f"connectionState {s}")
            self.pulse()

        @pc.on("iceconnectionstatechange")
        def _():
            self.note("iceConnectionState", state=pc.iceConnectionState)

        @pc.on("datachannel")
        def _(ch):
            self.adopt(ch, "remote")

    def watch_transports(self):
        sctp = self.pc.sctp
        if sctp is None:
            return
        dtls = sctp.transport

        @dtls.on("statechange")
        def _():
            self.note("dtlsState", state=dtls.state)
            if dtls.state in ("closed", "failed"):
                self.peer_hung_up(f"dtls {dtls.state}")
            self.pulse()

        async def poll_sctp():
            # aiortc's RTCSctpTransport emits no statechange.
            last = None
            while not self.we_closed:
                for c in self.chans:
                    c.poll_closing(self)
                s = sctp.state
                if s != last:
                    self.note("sctpState", state=s)
                    last = s
                    if s == "closed":
                        self.peer_hung_up("sctp closed")
                    self.pulse()
                await asyncio.sleep(0.02)

        self.sctp_poller = asyncio.ensure_future(poll_sctp())

    def adopt(self, ch, origin, placeholder=False):
        c = Chan(self, ch, origin, placeholder)
        self.chans.append(c)
        if origin == "remote":
            self.note("channel", key=c.key, label=c.label, protocol=c.protocol, id=ch.id)

        def opened():
            if c.opened_ms is None:
                c.opened_ms = self.run.ms()
                self.timings.setdefault("first_open_ms", c.opened_ms)
                self.note("open", key=c.key, label=c.label, origin=origin, id=ch.id)
                self.pulse()

        ch.on("open", opened)
        ch.on("closing", lambda: c.poll_closing(self, event=True))
        if ch.readyState == "open":
            opened()  # aiortc announces a remote channel already open

        @ch.on("message")
        def _(data):
            c.messages += 1
            if isinstance(data, str):
                c.text_messages += 1
                data = data.encode()
            c.parts.append(data)
            c.bytes += len(data)

        @ch.on("close")
        def _():
            if c.closed:
                return
            c.closed = True
            c.closed_ms = self.run.ms()
            # aiortc closes every channel after setting the association's state to closed, so
            # a channel closed by ABORT/SHUTDOWN is seen as unclean here.
            c.poll_closing(self)
            c.clean = self.transports_up()
            c.complete = c.clean or c.peer_reset_ms is not None
            self.note("close", key=c.key, label=c.label, origin=origin, clean=c.clean,
                      peer_reset=c.peer_reset_ms is not None, bytes=c.bytes,
                      sctp=self.sctp_state(), dtls=self.dtls_state())
            if not c.placeholder:
                c.saved = self.run.channel_bytes(c.key, c.label, c.origin, b"".join(c.parts), True,
                                                   c.clean, c.complete)
            self.pulse()

        return c

    def peer_channels(self):
        return [c for c in self.chans if c.origin == "remote"]

    async def wait_open(self, c):
        await self.until(lambda: c.opened_ms is not None or c.closed)
        if c.closed:
            self.fail(EXIT_DATA, f'channel "{c.label}" closed before it opened ({c.error or "no error"})')

    async def drained(self, c):
        while c.ch.readyState == "open" and c.ch.bufferedAmount > 0:
            await asyncio.sleep(0.005)

    async def dry(self, c):
        """Until the association holds nothing unacknowledged. aiortc 1.4 sends a stream reset
        at once (its DATA may still be queued behind it) and, as a receiver, performs a peer's
        reset at once too, ignoring the request's last TSN (RFC 6525 §5.2.2 says to hold it
        "in progress"). aiortc <-> aiortc lost half a 1.5 MB file that way. Private state: the
        public API has nothing past bufferedAmount."""
        sctp = self.pc.sctp
        while c.ch.readyState == "open" and (getattr(sctp, "_outbound_queue", None)
                                             or getattr(sctp, "_sent_queue", None)):
            await asyncio.sleep(0.005)

    # Signaling ---------------------------------------------------------------------------------
    async def signal(self):
        pc, run = self.pc, self.run
        if self.opt.role == "offer":
            await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers here, fully
            self.timings["gathered_ms"] = run.ms()
            run.print_description({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
            remote = await in_thread(run.read_description)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=remote["sdp"], type=remote["type"]))
        else:
            remote = await in_thread(run.read_description)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=remote["sdp"], type=remote["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
            self.timings["gathered_ms"] = run.ms()
            run.print_description({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
        self.watch_transports()

    # Modes ---------------------------------------------------------------------------------------
    def chunk_size(self):
        # aiortc enforces no limit of its own; respect the peer's announced one.
        remote = self.run.result["max_message_size"].get("remote_sdp")
        try:
            m = int(remote)
        except (TypeError, ValueError):
            m = 0
        return m if 0 < m < kChunk else kChunk

    async def send_bytes(self, c, data):
        ch = c.ch
        ch.bufferedAmountLowThreshold = kLowWater
        low = asyncio.Event()
        ch.on("bufferedamountlow", low.set)
        chunk, waits = self.chunk_size(), 0
        for off in range(0, len(data), chunk):
            while ch.bufferedAmount > kHighWater and ch.readyState == "open":
                waits += 1
                low.clear()
                await self.until_or(low, lambda: c.closed)
            if ch.readyState != "open":
                self.fail(EXIT_DATA, f'channel "{c.label}" is {ch.readyState} after {off} bytes')
            ch.send(data[off:off + chunk])
        await self.drained(c)
        return {"bytes": len(data), "waits": waits, "chunk": chunk}

    async def until_or(self, event, cond):
        """Until `event` is set or cond() holds (or the run failed)."""
        waiter = asyncio.ensure_future(event.wait())
        try:
            while not event.is_set():
                if self.failed:
                    raise Failure(*self.failed)
                if cond():
                    return
                self.changed.clear()
                changed = asyncio.ensure_future(self.changed.wait())
                await asyncio.wait([waiter, changed], return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
        finally:
            waiter.cancel()

    def hung_up_after_close(self, c):
        """The peer hung up after our close(): a peer done reading may leave before our half of
        the reset is confirmed (aiortc does); that is not a failure of ours."""
        return bool(self.hangup and c.close_called_ms is not None and self.hangup["t"] >= c.close_called_ms)

    async def close_and_wait(self, c):
        await asyncio.sleep(kCloseDelayMs / 1000)  # see kCloseDelayMs (Chromium)
        c.closing_by_us = True
        c.close_called_ms = self.run.ms()
        c.ch.close()
        await self.until(lambda: c.closed)

    async def run_send(self, first):
        files = []
        for i, f in enumerate(self.run.send_files):
            entry = {"label": f["label"], "size": f["size"], "ok": False, "seconds": None, "clean": None}
            files.append(entry)
            self.run.result["files"] = files
            c = first if i == 0 and first else self.adopt(self.pc.createDataChannel(f["label"]), "local")
            await self.wait_open(c)
            t = time.monotonic()
            with open(f["path"], "rb") as fh:
                data = fh.read()
            sent = await self.send_bytes(c, data)
            await self.dry(c)
            await self.close_and_wait(c)
            last = i == len(self.run.send_files) - 1
            entry.update(seconds=round(time.monotonic() - t, 3), bytes=sent["bytes"], chunk=sent["chunk"],
                         backpressure_waits=sent["waits"], clean=c.clean,
                         ok=sent["bytes"] == f["size"] and bool(c.clean or (last and self.hung_up_after_close(c))))
            if not entry["ok"]:
                self.fail(EXIT_DATA, f'channel "{c.label}" did not close cleanly ({c.error or "hang-up"})')
        return {"files": files}

    async def hangup_or_grace(self):
        t = self.run.ms()
        try:
            await asyncio.wait_for(self.until(lambda: self.hangup), self.opt.grace)
        except asyncio.TimeoutError:
            pass
        return {"peer_hung_up": bool(self.hangup), "waited_ms": self.run.ms() - t}

    async def run_recv(self):
        expect = self.opt.expect

        def saved():
            return {c.label for c in self.peer_channels() if c.saved and c.saved.get("saved")}

        def complete():
            s = saved()
            if expect:
                return all(lbl in s for lbl in expect)
            return bool(s) and all(c.closed for c in self.peer_channels())

        await self.until(lambda: complete() or self.hangup)
        if not complete():
            await asyncio.sleep(0.3)  # the closes the hang-up causes
            if not complete():
                missing = [lbl for lbl in expect if lbl not in saved()]
                self.fail(EXIT_DATA, f"the peer hung up ({self.hangup['how']}) before " +
                          (f"sending {', '.join(missing)}" if missing else "any channel was saved"))
        end = await self.hangup_or_grace()
        unclean = [c.label for c in self.peer_channels() if c.label in expect and not c.complete]
        if unclean:
            self.fail(EXIT_DATA, "not closed by a stream reset (incomplete as far as we can tell): " +
                      ", ".join(unclean))
        return end

    async def run_netcat(self, ours):
        await self.wait_open(ours)
        text = (self.opt.netcat or "").encode()
        if text:
            ours.ch.send(text)
        await self.drained(ours)
        await self.dry(ours)
        await asyncio.sleep(kCloseDelayMs / 1000)  # see kCloseDelayMs (Chromium)
        ours.closing_by_us = True
        ours.close_called_ms = self.run.ms()
        ours.ch.close()
        sent_ms = self.run.ms()
        await self.until(lambda: ours.closed and (self.hangup or (
            self.peer_channels() and all(c.closed for c in self.peer_channels()))))
        if not ours.clean and not self.hung_up_after_close(ours):
            self.fail(EXIT_DATA, f'our channel "{ours.label}" did not close cleanly '
                                 f'({ours.error or (self.hangup or {}).get("how")}): the peer may not have all of it')
        return {"our_close_ms": ours.closed_ms - sent_ms,
                "our_close": "clean" if ours.clean else "peer hung up", "peer_hung_up": bool(self.hangup)}

    def selected_pair(self):
        # Private API (aioice's nominated pair): there is no getStats() pair in aiortc 1.4.
        try:
            conn = self.pc.sctp.transport.transport._connection
            pair = conn._nominated.get(1)
            if pair is None:
                return None
            side = lambda c: {"candidateType": c.type, "address": c.host, "port": c.port,  # noqa: E731
                              "protocol": c.transport.lower()}
            return {"local": side(pair.local_candidate), "remote": side(pair.remote_candidate)}
        except Exception as e:  # noqa: BLE001
            return {"error": repr(e)}

    async def close_pc(self):
        if self.pc and not self.we_closed:
            self.we_closed = True
            self.note("closing our connection")
            await self.pc.close()

    # Main ------------------------------------------------------------------------------------------
    async def main(self):
        opt, run = self.opt, self.run
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.watch()
        first = None
        if opt.role == "offer":
            # An offer needs an m=application section, hence a channel before createOffer.
            if run.mode == "send":
                first = self.adopt(self.pc.createDataChannel(run.send_files[0]["label"]), "local")
            elif run.mode == "netcat":
                first = self.adopt(self.pc.createDataChannel(opt.label), "local")
            else:  # a negotiated channel sends no DCEP OPEN: the peer never sees it
                first = self.adopt(self.pc.createDataChannel("placeholder", negotiated=True, id=1023),
                                   "local", placeholder=True)
        await self.signal()
        await self.until(lambda: "connected_ms" in self.timings or self.hangup)
        pair = self.selected_pair()
        if run.mode == "send":
            outcome = await self.run_send(first)
        elif run.mode == "recv":
            outcome = await self.run_recv()
        else:
            ours = first or self.adopt(self.pc.createDataChannel(opt.label), "local")
            outcome = await self.run_netcat(ours)
        self.timings["done_ms"] = run.ms()
        # A hang-up seen after the mode's own end still counts.
        outcome["peer_hung_up"] = bool(outcome.get("peer_hung_up") or self.hangup)
        await self.close_pc()  # hang up
        return pair, outcome

    def merge(self, pair=None):
        # Channels still open: what they received so far counts for netcat's "received" (not
        # saved as files), as the page does.
        for c in self.chans:
            if not c.closed and not c.placeholder:
                self.run.channel_bytes(c.key, c.label, c.origin, b"".join(c.parts), False, None, None)
        r = self.run.result
        with self.run.lock:
            r["channels"] = [c.describe() for c in self.chans]
            r["hangup"] = self.hangup
            r["selected_pair"] = pair or r.get("selected_pair")
            r["timings"].update(self.timings)
            r["max_message_size"]["api"] = None  # aiortc exposes no remote limit
            r["held_resets"] = len(HELD_RESETS)


async def _run(run):
    engine = Engine(run)
    code, error = EXIT_OK, None
    main = asyncio.ensure_future(engine.main())
    got_signal = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # Signals end the flow through asyncio (a Python-level handler raising inside the loop
        # could land in aiortc's own callbacks).
        loop.add_signal_handler(sig, lambda s=sig: (got_signal.append(s), main.cancel()))
    try:
        pair, outcome = await asyncio.wait_for(main, max(0.1, run.opt.timeout - run.ms() / 1000))
        engine.merge(pair)
        with run.lock:
            for k, v in outcome.items():
                run.result[k] = v
    except asyncio.TimeoutError:
        code, error = EXIT_TIMEOUT, f"timeout after {run.opt.timeout:g} s"
    except asyncio.CancelledError:
        sig = got_signal[0] if got_signal else signal.SIGTERM
        code, error = 128 + sig, f"got signal {signal.Signals(sig).name}"
    except Failure as e:
        code, error = e.code, str(e)
    finally:
        if code != EXIT_OK:
            engine.merge()
            # Hang up so the peer notices at once, not after ICE consent (30 s).
            try:
                await asyncio.wait_for(engine.close_pc(), 2)
            except Exception:  # noqa: BLE001
                pass
    with run.lock:
        if run.result.get("peer_hung_up") is None:
            run.result["peer_hung_up"] = bool(engine.hangup)
    return run.finish(code, error)


def run(run_state):
    try:
        return asyncio.run(_run(run_state))
    except Failure:
        raise
    except Exception as e:  # noqa: BLE001
        raise Failure(EXIT_INTERNAL, f"aiortc engine: {e!r}") from e
