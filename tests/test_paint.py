"""The paint demo (samples/paint): its HTTP API with real requests against a real server and ONNX model, and the
page itself in headless Chromium (skipped, with the reason, where Debian's chromium or playwright is missing)."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import tiny_config
from export.to_onnx import export_encoder, export_generator
from gaugan_sdk.contract import Shapes
from gaugan_sdk import Synthesizer
from gaugan_sdk.metadata import write_sidecar
from gaugan_sdk.models import ConvEncoder
from helpers import ROOT, load_sample, realistic_generator

ARTIFACTS = Path(os.environ.get("GAUGAN_TEST_ARTIFACTS", ROOT / "test-artifacts"))


paint_server = load_sample("paint_server", ROOT / "samples" / "paint" / "server.py")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny Cityscapes-layout generator with instance edges and a style encoder, as ONNX."""
    import torch

    folder = tmp_path_factory.mktemp("paint")
    cfg = tiny_config("cityscapes", use_vae=True)
    generator = realistic_generator(cfg)
    torch.manual_seed(1)
    encoder = ConvEncoder(cfg).eval()
    meta = export_generator(generator, folder / "city.onnx", Shapes(batch=(1, 1, 2)),
                            encoder_file="city_encoder.onnx")
    write_sidecar(folder / "city.onnx", meta)
    write_sidecar(folder / "city_encoder.onnx", export_encoder(encoder, folder / "city_encoder.onnx"))
    return folder / "city.onnx"


@pytest.fixture(scope="module")
def server(model):
    app = paint_server.PaintApp(Synthesizer(model), max_upload=256 * 1024)
    httpd = paint_server.make_server(app, "127.0.0.1", 0, timeout=3.0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt)
    return out.getvalue()


def two_label_mask(height: int, width: int, left: int, right: int) -> np.ndarray:
    mask = np.full((height, width), left, np.uint8)
    mask[:, width // 2:] = right
    return mask


def test_model_info_and_page(server):
    status, kind, body = request(server, "GET", "/api/model")
    info = json.loads(body)
    assert status == 200 and kind == "application/json"
    assert (info["height"], info["width"], info["style"], info["seeded"]) == (64, 128, True, True)
    assert info["labels"][26] == {"id": 26, "name": "car", "color": "#00008e"}  # gaugan_sdk.labels' Cityscapes
    assert len(info["labels"]) == 35
    for path, expected in (("/", "text/html"), ("/paint.js", "text/javascript"), ("/paint.css", "text/css")):
        status, kind, body = request(server, "GET", path)
        assert status == 200 and kind.startswith(expected) and len(body) > 500


def test_synthesize_label_png(server, model):
    mask = two_label_mask(64, 128, 23, 21)  # sky | vegetation
    status, kind, body = request(server, "POST", "/api/synthesize?seed=5", png(mask), {"Content-Type": "image/png"})
    assert status == 200 and kind == "image/png"
    image = np.asarray(Image.open(io.BytesIO(body)))
    expected = Synthesizer(model).run(mask, mask, seed=5)
    np.testing.assert_array_equal(image, expected)  # what the server sends is what the runtime makes
    colours = Synthesizer(model).labels.colorize(mask)  # an RGB palette mask gives the same picture
    status, _, body = request(server, "POST", "/api/synthesize?seed=5", png(colours), {"Content-Type": "image/png"})
    assert status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(body))), expected)
    # another size comes back at its own size (resized to the model and back)
    status, _, body = request(server, "POST", "/api/synthesize", png(two_label_mask(96, 96, 7, 8)),
                              {"Content-Type": "image/png"})
    assert status == 200 and Image.open(io.BytesIO(body)).size == (96, 96)


def test_style_upload_changes_the_image(server):
    photo = np.zeros((48, 40, 3), np.uint8)
    photo[..., 0] = 255  # a red photo
    status, _, body = request(server, "POST", "/api/style", png(photo), {"Content-Type": "image/png"})
    token = json.loads(body)["style"]
    assert status == 200 and len(token) == 16
    mask = png(two_label_mask(64, 128, 23, 21))
    plain = request(server, "POST", "/api/synthesize", mask, {"Content-Type": "image/png"})[2]
    styled = request(server, "POST", f"/api/synthesize?style={token}", mask, {"Content-Type": "image/png"})[2]
    again = request(server, "POST", f"/api/synthesize?style={token}", mask, {"Content-Type": "image/png"})[2]
    assert styled == again != plain  # z = mu of the style: deterministic, and not a random style


@pytest.mark.parametrize("path, body, headers, status, message", [
    ("/api/synthesize", b"x" * 300_000, {"Content-Type": "image/png"}, 413, "upload of 300,000 bytes; at most 262,144"),
    ("/api/synthesize", "wide mask", {"Content-Type": "image/png"}, 413, "label mask of 2100x8 px; at most 2048"),
    ("/api/synthesize", b"not an image", {"Content-Type": "image/png"}, 415, "not a PNG file"),
    ("/api/synthesize", b"GIF89a", {"Content-Type": "image/gif"}, 415, "got 'image/gif'"),
    ("/api/synthesize", "jpeg", {"Content-Type": "image/png"}, 415, "not a PNG file"),
    ("/api/synthesize", "ids 200", {"Content-Type": "image/png"}, 422, r"label id\(s\) out of range .* 200 \(8192 px\)"),
    ("/api/synthesize", "unknown colour", {"Content-Type": "image/png"}, 422, "colour"),
    ("/api/synthesize", "16-bit", {"Content-Type": "image/png"}, 422, "label PNG of mode I;16"),
    ("/api/synthesize?seed=-1", "ids", {"Content-Type": "image/png"}, 400, r"seed='-1'; accepted: an integer"),
    ("/api/synthesize?seed=1&seed=2", "ids", {"Content-Type": "image/png"}, 400, "seed given 2 times"),
    ("/api/synthesize?style=feedbeef", "ids", {"Content-Type": "image/png"}, 400, "unknown style 'feedbeef'"),
    ("/api/style", b"\x00" * 100, {"Content-Type": "image/png"}, 415, "style image is not a readable image"),
    ("/api/style", "tiny photo", {"Content-Type": "image/png"}, 422, r"8x8 px; accepted: sides 16..2048"),
    ("/api/nothing", b"", {}, 404, "no endpoint '/api/nothing'"),
])
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, path, body, headers, status, message):
    import re

    bodies = {"jpeg": lambda: png(np.zeros((64, 128, 3), np.uint8), "JPEG"),
              "ids 200": lambda: png(np.full((64, 128), 200, np.uint8)),
              "unknown colour": lambda: png(np.full((64, 128, 3), (1, 2, 3), np.uint8)),
              "16-bit": lambda: png(np.zeros((64, 128), np.uint16)),
              "ids": lambda: png(np.zeros((64, 128), np.uint8)),
              "wide mask": lambda: png(np.zeros((8, 2100), np.uint8)),
              "tiny photo": lambda: png(np.zeros((8, 8, 3), np.uint8))}
    payload = bodies[body]() if isinstance(body, str) else body
    got, kind, answer = request(server, "POST", path, payload, headers)
    error = json.loads(answer)
    assert got == status and kind == "application/json" and re.search(message, error["error"]), error
    assert request(server, "GET", "/api/model")[0] == 200  # still serving


def test_missing_length_and_unknown_pages(server):
    with socket.create_connection(server.server_address[:2], timeout=10) as raw:
        raw.sendall(b"POST /api/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 411")
    status, _, body = request(server, "GET", "/../../etc/passwd")
    assert status == 404 and b"no page" in body


def test_a_stalled_client_does_not_block_the_others(server):
    with socket.create_connection(server.server_address[:2], timeout=10) as slow:
        slow.sendall(b"POST /api/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 5000\r\n\r\n" + png(np.zeros((64, 128), np.uint8))[:100])
        for _ in range(3):  # served while the slow request is still waiting for its body
            mask = png(two_label_mask(64, 128, 23, 21))
            assert request(server, "POST", "/api/synthesize", mask, {"Content-Type": "image/png"})[0] == 200
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(1)  # ... and it has had no answer yet
        slow.settimeout(10)
        answer = b""
        while chunk := slow.recv(65536):  # after the server's timeout (3 s here): 408, then the connection closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"no complete request within 3.0 s" in answer


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_client_trickling_its_headers_is_cut_off_by_the_whole_request_deadline(server):
    """One byte every 0.25 s keeps each read alive, but not the request: at the 3 s deadline the server answers
    408 and closes, while serving others meanwhile."""
    with socket.create_connection(server.server_address[:2], timeout=10) as slow:
        slow.sendall(b"POST /api/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent = 0
        try:
            for byte in b"X-Slow: " + b"a" * 200:
                slow.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.25)
                if sent == 4:
                    assert request(server, "GET", "/api/model")[0] == 200  # the others are served
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(slow)
    assert sent < 100, "the trickling client kept its connection"  # 25 s of trickle: no deadline at all
    assert answer.startswith(b"HTTP/1.1 408") and b"no complete request within 3.0 s" in answer


def test_connections_over_the_cap_get_503_and_the_server_recovers(model):
    app = paint_server.PaintApp(Synthesizer(model), max_upload=256 * 1024)
    httpd = paint_server.make_server(app, "127.0.0.1", 0, timeout=30.0, quiet=True, max_connections=2)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        idle = [socket.create_connection(httpd.server_address[:2], timeout=10) for _ in range(2)]
        time.sleep(0.2)  # both accepted and waiting for their requests
        status, kind, body = request(httpd, "GET", "/api/model")
        assert status == 503 and kind == "application/json" and b"at its 2 connections" in body
        idle[0].close()
        for _ in range(50):  # the freed slot is taken back as soon as its thread ends
            if request(httpd, "GET", "/api/model")[0] == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("a closed connection's slot was never released")
        idle[1].close()
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("host, status", [("127.0.0.1:8000", 200), ("localhost", 200), ("[::1]:80", 200),
                                          ("evil.example", 421), ("127.0.0.1.evil.example:8000", 421), ("", 421)])
def test_host_header_is_checked_when_bound_to_loopback(server, host, status):
    with socket.create_connection(server.server_address[:2], timeout=10) as raw:
        raw.sendall(f"GET /api/model HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = read_all(raw)
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    if status != 200:
        assert b"application/json" in answer and b"is not this server's" in answer


def test_http_servers_own_errors_are_json_and_digits_are_ascii(server):
    status, kind, body = request(server, "PUT", "/api/synthesize", b"x")
    assert status == 501 and kind == "application/json" and "method 'PUT' is not supported" in json.loads(body)["error"]
    with socket.create_connection(server.server_address[:2], timeout=10) as raw:
        raw.sendall("POST /api/synthesize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \u00b2\r\n\r\n"
                    .encode("utf-8"))
        answer = read_all(raw)
    assert answer.startswith(b"HTTP/1.1 411") and b"a byte count is required" in answer
    mask = png(two_label_mask(64, 128, 23, 21))
    status, _, body = request(server, "POST", "/api/synthesize?seed=%C2%B2", mask, {"Content-Type": "image/png"})
    assert status == 400 and "seed='\u00b2'; accepted: an integer" in json.loads(body)["error"]


@pytest.mark.parametrize("argv, said", [
    (["--timeout", "inf"], "--timeout inf; accepted: seconds > 0 and at most 3600"),
    (["--timeout", "1e12"], "--timeout 1e+12; accepted: seconds > 0 and at most 3600"),
    (["--timeout", "nan"], "--timeout nan; accepted"),
    (["--timeout", "0"], "--timeout 0; accepted"),
    (["--max-upload-mb", "-1"], "--max-upload-mb -1; accepted: megabytes > 0 and at most 1024"),
    (["--max-upload-mb", "inf"], "--max-upload-mb inf; accepted"),
    (["--port", "70000"], "--port 70000; accepted: 0 to 65535"),
    (["--max-connections", "0"], "--max-connections 0; accepted: 1 to 10000"),
])
def test_out_of_range_options_are_refused_at_start_in_one_line(model, argv, said, capsys, monkeypatch):
    """Was: --timeout inf started a server that dropped every connection unanswered (the deadline's Timer
    overflows); --max-upload-mb -1 refused every upload; --port 70000 ended in an OverflowError traceback."""
    monkeypatch.setattr(paint_server, "Synthesizer", lambda *a, **k: pytest.fail("the model loaded first"))
    assert paint_server.main([str(model), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paint: error: {said}") and err.count("\n") == 1, err
    with pytest.raises(ValueError, match="timeout=inf; accepted"):
        paint_server.make_server(paint_server.PaintApp.__new__(paint_server.PaintApp), timeout=float("inf"))


def test_an_unreadable_upload_is_named_without_pils_object_repr(server):
    """Was: 415 "... cannot identify image file <_io.BytesIO object at 0x7f...>"."""
    for path in ("/api/style", "/api/synthesize"):
        body = b"\x89PNG\r\n\x1a\n" + b"\x00" * 50 if path == "/api/synthesize" else b"hello, not an image"
        status, _, answer = request(server, "POST", path, body, {"Content-Type": "image/png"})
        error = json.loads(answer)["error"]
        assert status == 415 and "not a readable image" in error, error
        assert "0x" not in error and "<" not in error and "BytesIO" not in error, error


# ---------------------------------------------------------------------------------------------- the page
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("headless browser test: Debian's chromium is not installed (apt-get install chromium; .ci/run "
                    "installs it where it can)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("headless browser test: playwright is not installed (pip install -e '.[dev]')")
    return path


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def test_paint_in_a_real_browser(server, model):
    """Load the page, paint strokes with two labels, wait for the image: its size is the model's, and the regions
    painted with different labels differ. The screenshot is saved as a test artifact."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    host, port = server.server_address[:2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 700})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://{host}:{port}/")
            page.wait_for_function("document.querySelector('#output').dataset.generation !== '0'")  # first image
            box = page.locator("#canvas").bounding_box()

            def stroke(label_id: int, x0: float, x1: float, rows: list[float]) -> None:
                page.click(f"#palette button[data-id='{label_id}']")
                for row in rows:  # the canvas is 64x128 label pixels shown at box size
                    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + row * box["height"])
                    page.mouse.down()
                    page.mouse.move(box["x"] + x1 * box["width"], box["y"] + row * box["height"], steps=12)
                    page.mouse.up()

            page.fill("#size", "16")
            page.dispatch_event("#size", "input")
            stroke(26, 0.05, 0.4, [0.3, 0.5, 0.7])  # car, left half
            stroke(21, 0.6, 0.95, [0.3, 0.5, 0.7])  # vegetation, right half
            page.wait_for_function("window.paint.timer === 0 && window.paint.inflight === null")  # settled
            ids = np.array(page.evaluate("Array.from(window.paint.ids)"), np.uint8).reshape(64, 128)
            data_url = page.evaluate("""async () => {
                const blob = await (await fetch(document.querySelector('#output').src)).blob();
                return await new Promise((done) => { const r = new FileReader(); r.onload = () => done(r.result);
                                                     r.readAsDataURL(blob); });
            }""")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "paint_demo.png"))
        finally:
            browser.close()
    import base64

    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))
    assert not errors, errors
    assert image.shape == (64, 128, 3)
    car, vegetation = ids == 26, ids == 21
    assert car.sum() > 300 and vegetation.sum() > 300 and not (car[:, 64:].any() or vegetation[:, :64].any())
    print(f"painted: car {car.sum()} px, vegetation {vegetation.sum()} px")
    # the page's last answer is the server's image of exactly the mask it holds
    expected = Synthesizer(model).run(ids, ids, seed=0)
    np.testing.assert_array_equal(image, expected)
    difference = np.abs(image[car].mean(0) - image[vegetation].mean(0)).max()
    print(f"mean colour, car region {image[car].mean(0).round(1)} vs vegetation {image[vegetation].mean(0).round(1)}")
    assert difference > 5
    assert (ARTIFACTS / "paint_demo.png").stat().st_size > 10_000
