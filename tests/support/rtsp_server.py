#!/usr/bin/python3
"""Tiny live RTSP/H.264 test server for Vigil integration tests.

Run with Debian's system interpreter (python3-gi is only installed for it):

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --path /cam \
        [--width 640 --height 360 --fps 25 --gop 25] [--user U --password P]

Serves a live videotestsrc pattern encoded with x264enc at
rtsp://127.0.0.1:PORT/PATH (TCP-interleaved and UDP transports). Once the
listening socket is bound and attached it prints exactly one line

    READY rtsp://127.0.0.1:PORT/PATH

to stdout (flushed). With --port 0 the kernel picks a free port and the
READY line carries the real one. SIGTERM/SIGINT stop it cleanly (exit 0).
Errors go to stderr; a non-zero exit status means it failed to start.
See tests/support/README.md.
"""

import argparse
import ctypes
import signal
import sys
import time

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer, GstVideo
except (ImportError, ValueError) as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "rtsp_server.py: cannot load GStreamer introspection bindings (%s).\n"
        "Run it with /usr/bin/python3 and install the Debian packages listed in "
        "tests/support/README.md.\n" % exc
    )
    sys.exit(2)

HOST = "127.0.0.1"


def log(msg):
    sys.stderr.write("rtsp_server.py: %s\n" % msg)
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(description="Live H.264 RTSP test server (127.0.0.1 only)")
    p.add_argument("--port", type=int, default=8554, help="TCP port for RTSP (0 = pick a free one)")
    p.add_argument("--path", default="/cam", help="mount path, e.g. /cam")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--gop", type=int, default=None, help="keyframe interval in frames (default: fps)")
    p.add_argument("--bitrate", type=int, default=800, help="x264enc bitrate in kbit/s")
    p.add_argument("--pattern", default="ball", help="videotestsrc pattern (default: ball, moves)")
    p.add_argument("--no-overlay", action="store_true", help="do not burn a running time overlay in")
    p.add_argument("--user", default=None, help="require RTSP basic auth with this user")
    p.add_argument("--password", default=None, help="password for --user")
    p.add_argument("--rtp-ports", default="20000-32767",
                   help="UDP port range (LO-HI) for server-side RTP/RTCP sockets")
    p.add_argument("--bind-retry-secs", type=float, default=5.0,
                   help="keep retrying to bind the port this long if it is busy")
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="exit by itself after this many seconds (0 = run until signalled)")
    p.add_argument("--die-with-parent", action="store_true",
                   help="get SIGTERM when the parent process exits (Linux PR_SET_PDEATHSIG)")
    a = p.parse_args(argv)

    if not a.path.startswith("/"):
        a.path = "/" + a.path
    if a.gop is None:
        a.gop = a.fps
    if (a.user is None) != (a.password is None):
        p.error("--user and --password must be given together")
    for name in ("width", "height", "fps", "gop", "bitrate"):
        if getattr(a, name) <= 0:
            p.error("--%s must be positive" % name)
    if not 0 <= a.port <= 65535:
        p.error("--port must be 0..65535")
    try:
        lo, hi = (int(x) for x in a.rtp_ports.split("-", 1))
    except ValueError:
        p.error("--rtp-ports must look like 20000-32767")
    if not (1024 <= lo < hi <= 65535):
        p.error("--rtp-ports must be an increasing range within 1024-65535")
    a.rtp_ports = (lo, hi)
    return a


def build_launch(a):
    overlay = ""
    if not a.no_overlay and Gst.ElementFactory.find("timeoverlay") is not None:
        # timeoverlay comes from gstreamer1.0-x (pango); optional.
        overlay = "timeoverlay font-desc=\"Sans 24\" halignment=left valignment=top ! "
    return (
        "( videotestsrc is-live=true pattern={pattern} "
        "! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 "
        "! {overlay}"
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
        "bitrate={br} byte-stream=true "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    ).format(pattern=a.pattern, w=a.width, h=a.height, fps=a.fps, overlay=overlay,
             gop=a.gop, br=a.bitrate)


def setup_auth(server, factory, user, password):
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)

    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(perms)


def _not_seekable_probe(_pad, info):
    """Answer SEEKING queries with 'not seekable' and swallow seek events.

    videotestsrc claims to be seekable even when live. rtsp-media then flushes
    and seeks the *shared* pipeline on every PLAY that carries a Range header
    (ffmpeg always sends one); with 2+ concurrent clients that races and
    gst-rtsp-server 1.22 aborts in gst_rtsp_media_get_rates(). A camera is
    not seekable anyway.
    """
    if info.type & Gst.PadProbeType.QUERY_UPSTREAM:
        query = info.get_query()
        if query is not None and query.type == Gst.QueryType.SEEKING:
            # A fresh SEEKING query already says seekable=FALSE; PyGObject's
            # extra ref makes it non-writable here, so just answer it as is.
            return Gst.PadProbeReturn.HANDLED
    elif info.type & Gst.PadProbeType.EVENT_UPSTREAM:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.SEEK:
            return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


# payloader of the current shared media, to request key frames for new viewers
_current_pay = {"pay": None}


def on_media_configure(_factory, media):
    pay = media.get_element().get_by_name("pay0")
    if pay is None:
        log("pay0 not found; seek guard not installed")
        return
    pay.get_static_pad("src").add_probe(
        Gst.PadProbeType.QUERY_UPSTREAM | Gst.PadProbeType.EVENT_UPSTREAM
        | Gst.PadProbeType.PUSH, _not_seekable_probe)
    _current_pay["pay"] = pay
    media.connect("unprepared", _on_media_unprepared, pay)


def _on_media_unprepared(_media, pay):
    if _current_pay["pay"] is pay:
        _current_pay["pay"] = None


def on_play_request(_client, _ctx):
    """A viewer joining the shared live stream gets an IDR (+SPS/PPS) right
    away instead of waiting up to one GOP."""
    pay = _current_pay["pay"]
    if pay is not None:
        pay.send_event(GstVideo.video_event_new_upstream_force_key_unit(
            Gst.CLOCK_TIME_NONE, True, 0))


def on_client_connected(_server, client):
    client.connect("play-request", on_play_request)


def attach_with_retry(server, retry_secs):
    """attach() creates, binds and listens; it returns 0 if that failed."""
    deadline = time.monotonic() + max(0.0, retry_secs)
    while True:
        source_id = server.attach(None)
        if source_id:
            return source_id
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.2)


def main(argv):
    a = parse_args(argv)

    if a.die_with_parent:
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except OSError as exc:
            log("PR_SET_PDEATHSIG unavailable: %s" % exc)

    Gst.init(None)
    for elem in ("videotestsrc", "x264enc", "rtph264pay"):
        if Gst.ElementFactory.find(elem) is None:
            log("missing GStreamer element %r (see tests/support/README.md)" % elem)
            return 2

    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address(HOST)
    server.set_service(str(a.port))

    launch = build_launch(a)
    try:  # catch bad --pattern etc. now rather than on the first DESCRIBE
        Gst.parse_launch(launch.strip("() ")).set_state(Gst.State.NULL)
    except GLib.Error as exc:
        log("bad pipeline %r: %s" % (launch, exc.message))
        return 2

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.connect("media-configure", on_media_configure)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP)
    # Without a pool the UDP RTP/RTCP sockets bind to 0.0.0.0/[::]; a unicast
    # pool makes them bind to 127.0.0.1 too (busy ports are skipped).
    pool = GstRtspServer.RTSPAddressPool()
    lo, hi = a.rtp_ports
    if not pool.add_range(HOST, HOST, lo, hi, 0):
        log("bad --rtp-ports range %d-%d" % (lo, hi))
        return 2
    factory.set_address_pool(pool)
    if a.user is not None:
        setup_auth(server, factory, a.user, a.password)
    server.get_mount_points().add_factory(a.path, factory)
    server.connect("client-connected", on_client_connected)

    def stop(signame):
        log("%s: shutting down" % signame)
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop, "SIGINT")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGHUP, stop, "SIGHUP")
    if a.max_seconds > 0:
        GLib.timeout_add(int(a.max_seconds * 1000), stop, "max-seconds")

    source_id = attach_with_retry(server, a.bind_retry_secs)
    if not source_id:
        log("could not listen on %s:%d" % (HOST, a.port))
        return 1
    port = server.get_bound_port()
    url = "rtsp://%s:%d%s" % (HOST, port, a.path)
    try:
        sys.stdout.write("READY %s\n" % url)
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass  # nobody reads stdout; keep serving anyway

    try:
        loop.run()
    except KeyboardInterrupt:
        pass

    # Tear down: stop accepting, drop client connections so readers see EOF now.
    GLib.source_remove(source_id)
    server.client_filter(lambda _srv, _client, _data=None: GstRtspServer.RTSPFilterResult.REMOVE)
    ctx = GLib.MainContext.default()
    for _ in range(50):  # let pending teardown callbacks run, bounded
        if not ctx.iteration(False):
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
