"""GauGAN paint demo: a local web page where you paint labels and see the synthesized image live.

    python samples/paint/server.py engines/city.onnx               # then open http://127.0.0.1:8000
    python samples/paint/server.py runs/00000-quickstart/engines/quickstart_fp32.onnx --port 8080
    python samples/paint/server.py engines/city.plan --labels cityscapes   # a plan without its sidecar

Any artifact `Synthesizer` loads works (ONNX, TensorRT, .pt2, checkpoints). The page paints class ids with the
model's palette (`gaugan_sdk.labels`) and posts them as 8-bit grayscale label PNGs; the server answers with the
synthesized PNG. Standard library HTTP server, one thread per connection, at most `--max-connections` at once
(more get 503): a client whose request is not complete within `--timeout` seconds, headers and body together,
is answered 408 or dropped, without holding up the others; the model runs one request at a time. Bound to a
loopback address, it answers only requests whose Host is that address or localhost (no DNS rebinding).

API (what the page uses; errors are JSON {"error": message} with a 4xx status):
    GET  /api/model                      label set, size, whether the model takes a style image
    POST /api/synthesize?seed=N&style=T  body: label PNG (image/png: 8-bit ids, or RGB palette colours)
    POST /api/style                      body: a PNG / JPEG / WebP photo -> {"style": T}
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import math
import re
import secrets
import socket
import sys
import threading
import warnings
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from gaugan_sdk import Synthesizer
from gaugan_sdk.labels import BUILTIN_LABEL_SETS

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/paint.js": "paint.js", "/paint.css": "paint.css"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STYLE_FORMATS = {"PNG", "JPEG", "WEBP"}
MAX_MASK_SIDE = 2048
KEPT_STYLES = 16
# The numeric options' accepted ranges: a request that takes over an hour to arrive is a stalled client (and an
# infinite deadline overflows the Timer that enforces it: the server dropped every connection unanswered)
LIMITS = {"timeout": (0.0, 3600.0, "seconds > 0 and at most 3600"),
          "max_upload_mb": (0.0, 1024.0, "megabytes > 0 and at most 1024"),
          "port": (-1, 65535, "0 to 65535 (0: a free port)"), "max_connections": (0, 10000, "1 to 10000")}


class RequestError(Exception):
    """A bad request: answered with `status` and the message, the server keeps serving."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class PaintApp:
    """The demo's logic, apart from HTTP: decode uploads, run the model, encode the answer."""

    def __init__(self, synthesizer: Synthesizer, max_upload: int = 8 << 20):
        if synthesizer.labels is None:
            raise ValueError(f"{synthesizer.path.name} does not record its label set, which the brushes need: "
                             f"pass --labels ({', '.join(BUILTIN_LABEL_SETS)})")
        if len(synthesizer.labels) > 256:
            raise ValueError(f"label set {synthesizer.labels.name!r} has {len(synthesizer.labels)} ids; the page "
                             f"paints 8-bit label PNGs (up to 256 ids)")
        self.syn, self.max_upload = synthesizer, max_upload
        self.has_style = synthesizer.encoder is not None
        self._model_lock = threading.Lock()  # one engine context: one request at a time
        self._styles: OrderedDict[str, np.ndarray] = OrderedDict()
        self._styles_lock = threading.Lock()

    def model_info(self) -> dict:
        labels = self.syn.labels
        height, width = self.syn.size
        return {"artifact": self.syn.path.name, "backend": self.syn.backend, "height": height, "width": width,
                "style": self.has_style, "seeded": self.syn.meta.z_dim is not None, "max_upload": self.max_upload,
                "labels": [{"id": i, "name": labels.names[i], "color": "#%02x%02x%02x" % tuple(labels.palette[i])}
                           for i in range(len(labels))]}

    def synthesize(self, body: bytes, content_type: str, query: dict[str, list[str]]) -> bytes:
        if content_type != "image/png":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                               f"label masks are PNG files (Content-Type image/png), got {content_type or 'none'!r}")
        ids = self._decode_mask(body)
        seed = _int_param(query, "seed", 0, 2**32 - 1)
        style = self._style(query)
        try:
            with self._model_lock:
                image = self.syn.run(ids, ids if self.syn.meta.takes_instance else None, style=style,
                                     seed=seed if self.syn.meta.z_dim is not None else None)
        except (ValueError, TypeError) as e:  # ids the model does not know, wrong sizes
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(e)) from e
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="PNG", compress_level=1)
        return out.getvalue()

    def add_style(self, body: bytes) -> dict:
        if not self.has_style:
            raise RequestError(HTTPStatus.CONFLICT, f"{self.syn.path.name} has no style encoder (the model has no "
                                                    f"style path): style images do not apply")
        sides = self.syn.encoder_meta.height  # the style sizes the encoder takes
        photo = _open_image(body, STYLE_FORMATS, "a style image", 2 * sides.max)  # sides checked below
        if not all(side in sides for side in photo.size):
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, f"style image of {photo.size[0]}x{photo.size[1]} px; "
                                                                f"accepted: sides {sides.min}..{sides.max}")
        rgb = np.asarray(photo.convert("RGB"))
        token = secrets.token_hex(8)
        with self._styles_lock:
            self._styles[token] = rgb
            while len(self._styles) > KEPT_STYLES:
                self._styles.popitem(last=False)
        return {"style": token, "width": photo.size[0], "height": photo.size[1]}

    def _style(self, query: dict[str, list[str]]) -> np.ndarray | None:
        token = _param(query, "style")
        if not token:
            return None
        with self._styles_lock:
            style = self._styles.get(token)
        if style is None:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"unknown style {token!r} (the server keeps the last "
                                                       f"{KEPT_STYLES} uploads): upload it again")
        return style

    def _decode_mask(self, body: bytes) -> np.ndarray:
        if not body.startswith(PNG_SIGNATURE):
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the label mask is not a PNG file")
        image = _open_image(body, {"PNG"}, "the label mask", MAX_MASK_SIDE)
        if image.mode in ("L", "P"):  # ids (a P image's indices are the ids, as in NVlabs label files)
            return np.asarray(image)
        if image.mode in ("RGB", "RGBA"):  # palette colours
            try:
                return self.syn.labels.decode(np.asarray(image.convert("RGB")))
            except ValueError as e:
                raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, str(e)) from e
        raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, f"label PNG of mode {image.mode}; accepted: 8-bit "
                                                            f"grayscale ids (L), palette indices (P) or RGB colours")


def _open_image(body: bytes, formats: set[str], what: str, max_side: int) -> Image.Image:
    """The decoded image, its format and size checked from the header before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(body))
            if image.format not in formats:
                raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                   f"{what} is {image.format}; accepted: {', '.join(sorted(formats))}")
            if max(image.size) > max_side:
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{what} of {image.size[0]}x"
                                                                        f"{image.size[1]} px; at most {max_side} a side")
            image.load()
    except RequestError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        # PIL names the file object it read (<_io.BytesIO object at 0x...>): the client is told what it sent
        reason = "its format is not one PIL recognizes" if isinstance(e, UnidentifiedImageError) else \
            re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the upload", str(e))
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"{what} is not a readable image: {reason}") from e
    return image


def _param(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values and len(values) > 1:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{name} given {len(values)} times")
    return values[0] if values else None


def _int_param(query: dict[str, list[str]], name: str, low: int, high: int) -> int | None:
    value = _param(query, name)
    if value is None or value == "":
        return None
    number = _decimal(value)
    if number is None or not low <= number <= high:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{name}={value!r}; accepted: an integer {low}..{high}")
    return number


def _decimal(text: str) -> int | None:
    """A non-negative integer written in ASCII digits (str.isdigit alone accepts "²" and other digits int()
    refuses), at most 18 of them; else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _host_allowed(host_header: str | None, bound: str) -> bool:
    """A server bound to a loopback address answers only Host headers naming loopback (localhost, 127.x, ::1),
    so a web page of another site cannot reach it through DNS rebinding. Servers bound elsewhere take any."""
    if not _is_loopback(bound):
        return True
    if not host_header:
        return False
    host = host_header.strip().lower()
    host = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    return _is_loopback(host)


class Handler(BaseHTTPRequestHandler):
    """One connection (own thread). `app` and `timeout` are set on a subclass by `make_server`."""

    app: PaintApp
    server_version = "gaugan-paint"
    protocol_version = "HTTP/1.1"
    _deadline: threading.Timer | None = None
    _timed_out = False

    def handle_one_request(self) -> None:
        """One request, its line, headers and body within `timeout` seconds in all (the socket's own timeout
        bounds each read only: a client sending a byte at a time would hold its thread for ever)."""
        self._deadline = threading.Timer(self.timeout, self._expire)
        self._deadline.daemon = True
        self._deadline.start()
        try:
            super().handle_one_request()
        finally:
            self._received()

    def _received(self) -> None:
        """The request is in: the deadline no longer applies (the model and the answer take what they take)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> bool:
        return self._timed_out

    def _expire(self) -> None:
        self._timed_out = self.close_connection = True
        try:  # wakes the blocked read with end-of-file: the thread answers 408 if it can, and ends
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self._expired():  # the headers were cut off by the deadline
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, f"no complete request within {self.timeout} s")
            return False
        if not _host_allowed(self.headers.get("Host"), self.server.server_address[0]):
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, f"Host {self.headers.get('Host')!r} is not this "
                                                            f"server's: use http://127.0.0.1:{self.server.server_port}")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method, headers too long) as JSON too."""
        status = HTTPStatus(code)
        if code == HTTPStatus.NOT_IMPLEMENTED:
            message = f"method {self.command!r} is not supported; use GET or POST"
        self.close_connection = True
        self._send_error(status, message or status.phrase)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._received()
        path = urlsplit(self.path).path
        if path == "/api/model":
            return self._send_json(HTTPStatus.OK, self.app.model_info())
        if path in PAGES:
            file = STATIC / PAGES[path]
            return self._send(HTTPStatus.OK, file.read_bytes(), CONTENT_TYPES[file.suffix])
        self._send_error(HTTPStatus.NOT_FOUND, f"no page {path!r}")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)  # the body is read within the deadline, in _read_body
        routes = {"/api/synthesize", "/api/style"}
        try:
            if url.path not in routes:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no endpoint {url.path!r}; POST to {sorted(routes)}")
            body = self._read_body()
            query = parse_qs(url.query, keep_blank_values=True)
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if url.path == "/api/style":
                return self._send_json(HTTPStatus.OK, self.app.add_style(body))
            self._send(HTTPStatus.OK, self.app.synthesize(body, content_type, query), "image/png")
        except RequestError as e:
            self._send_error(e.status, str(e))

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        size = None if length is None else _decimal(length)
        if size is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, f"Content-Length {length!r}; a byte count is required")
        if size > self.app.max_upload:
            self.close_connection = True  # the body is not read: drop the connection after the answer
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"upload of {size:,} bytes; at most {self.app.max_upload:,}")
        try:
            body = self.rfile.read(size)
        except (TimeoutError, OSError):  # a stalled client: its own thread gives up, the others never waited
            body = b""
        expired = self._expired()
        self._received()
        if len(body) != size:
            self.close_connection = True
            if expired:
                raise RequestError(HTTPStatus.REQUEST_TIMEOUT, f"no complete request within {self.timeout} s")
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body of {len(body)} bytes; Content-Length said {size}")
        return body

    def _send_json(self, status: HTTPStatus, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send_json(status, {"error": message, "status": int(status)})

    def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if not getattr(self.server, "quiet", False):
            super().log_message(format, *args)


class PaintServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` connection threads; one more gets 503 and is closed."""

    daemon_threads = True

    def __init__(self, address, handler, max_connections: int, quiet: bool):
        super().__init__(address, handler)
        self.quiet, self.max_connections = quiet, max_connections
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            body = json.dumps({"error": f"the server is at its {self.max_connections} connections; try again",
                               "status": 503}).encode()
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def check_option(name: str, value: float, flag: bool = False) -> None:
    """One numeric option within LIMITS (exclusive low, inclusive high, finite), else a one-line ValueError naming
    it as `--name value` (`flag`) or `name=value`."""
    low, high, accepted = LIMITS[name]
    if not (math.isfinite(value) and low < value <= high):
        shown = f"--{name.replace('_', '-')} {value:g}" if flag else f"{name}={value:g}"
        raise ValueError(f"{shown}; accepted: {accepted}")


def make_server(app: PaintApp, host: str = "127.0.0.1", port: int = 8000, timeout: float = 15.0,
                quiet: bool = False, max_connections: int = 32) -> PaintServer:
    """A threaded server (not started: call serve_forever); port 0 picks a free port. `timeout`: seconds a
    request may take to arrive (line, headers, body); `max_connections`: connection threads at once."""
    for name, value in (("timeout", timeout), ("port", port), ("max_connections", max_connections)):
        check_option(name, value)
    handler = type("PaintHandler", (Handler,), {"app": app, "timeout": timeout})
    return PaintServer((host, port), handler, max_connections, quiet)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", help="any artifact Synthesizer loads (.onnx .plan .engine .pt2 .pt .pth)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default localhost only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--labels", choices=BUILTIN_LABEL_SETS, help="label set, for artifacts that do not record theirs")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--backend", default="auto", help="runtime (auto: this CPU's plan, gaugan_sdk.cpu)")
    p.add_argument("--precision", default="auto", help="execution precision (auto: the plan's, where verified)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="largest accepted upload")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds a request may take to arrive, headers and body (default 15)")
    p.add_argument("--max-connections", type=int, default=32, help="connections served at once (default 32)")
    args = p.parse_args(argv)
    try:  # before the model loads
        for name in ("timeout", "max_upload_mb", "port", "max_connections"):
            check_option(name, getattr(args, name), flag=True)
    except ValueError as e:
        print(f"paint: error: {e}", file=sys.stderr)
        return 2
    try:
        app = PaintApp(Synthesizer(args.artifact, device=args.device, labels=args.labels, warmup=1,
                                   backend=args.backend, precision=args.precision),
                       int(args.max_upload_mb * (1 << 20)))
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as e:
        print(f"paint: error: {e}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"paint: warning: serving on {args.host}, reachable from other machines; the demo has no "
              f"authentication", file=sys.stderr)
    try:
        server = make_server(app, args.host, args.port, args.timeout, max_connections=args.max_connections)
    except (ValueError, OSError) as e:
        print(f"paint: error: {e}", file=sys.stderr)
        app.syn.close()
        return 2
    host, port = server.server_address[:2]
    print(f"paint: {app.syn!r}\npaint: open http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}  "
          f"(Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.syn.close()
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    sys.exit(main())
