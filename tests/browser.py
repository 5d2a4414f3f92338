"""Open an HTML file in headless Chromium, take a full-page screenshot, and collect what went wrong on the page.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated
JSON), so it needs only the standard library and a Chromium binary (Debian: ``apt-get install chromium``).
Collected as problems: ``console.error``/``console.assert`` calls, uncaught exceptions, and error-level log entries
(a resource that failed to load, a blocked request).

    python tests/browser.py report.html --screenshot report.png [--width 1280]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CONSOLE_PROBLEMS = {"error", "assert"}
# The protocol reads commands on fd 3 and writes answers on fd 4. This puts the two pipe ends there and execs the
# browser (no shell: dash cannot redirect fds above 9; no preexec_fn: unsafe with threads). The answer pipe was
# created second, so its fd is above the command pipe's and the first dup2 cannot overwrite it.
_TRAMPOLINE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
               "os.execv(sys.argv[3], sys.argv[3:])")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What opening the page gave: its full size in CSS pixels, problems (one line each), every console message."""

    width: int
    height: int
    problems: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


class _Pipe:
    """A DevTools session over the two pipes of one Chromium process."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float):
        self.write = os.fdopen(write_fd, "wb", buffering=0)
        self.read = os.fdopen(read_fd, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.deadline = time.monotonic() + timeout

    def message(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = self.read.read(1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        request: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        self.write.write(json.dumps(request).encode() + b"\0")
        while True:
            msg = self.message()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self.message())

    def close(self) -> None:
        self.write.close()
        self.read.close()


def _describe(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """(console line, problem line) for one DevTools event; None where it is neither."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        line = f"console.{params.get('type')}: {text}"
        return line, line if params.get("type") in CONSOLE_PROBLEMS else None
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        text = details.get("exception", {}).get("description") or details.get("text", "exception")
        return None, f"uncaught: {text}"
    if method == "Log.entryAdded":
        entry = params.get("entry", {})
        line = f"{entry.get('source')} {entry.get('level')}: {entry.get('text')} {entry.get('url', '')}".strip()
        return line, line if entry.get("level") == "error" else None
    return None, None


def check_page(html_file: str | Path, screenshot: str | Path | None = None, width: int = 1280,
               timeout: float = 60.0, chromium: str | None = None) -> PageCheck:
    """Load ``html_file`` in headless Chromium at ``width`` CSS pixels, optionally save a full-page PNG, and return
    the page's size and problems. FileNotFoundError if no Chromium is found."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    url = Path(html_file).resolve().as_uri()
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    with tempfile.TemporaryDirectory(prefix="gateau-chromium-") as profile:
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--hide-scrollbars", f"--user-data-dir={profile}",
                f"--window-size={width},900", "about:blank"]
        proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(to_chrome_r), str(from_chrome_w), *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(to_chrome_r, from_chrome_w))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(to_chrome_w, from_chrome_r, timeout)
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.call(f"{domain}.enable", session)
            pipe.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900, deviceScaleFactor=1,
                      mobile=False)
            pipe.call("Page.navigate", session, url=url)
            pipe.wait_for("Page.loadEventFired")
            size = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
            check = PageCheck(int(size["width"]), int(size["height"]))
            if screenshot is not None:
                shot = pipe.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                                 clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            pipe.call("Runtime.evaluate", session, expression="1")  # flush events queued behind the screenshot
            for event in pipe.events:
                console, problem = _describe(event)
                if console:
                    check.console.append(console)
                if problem:
                    check.problems.append(problem)
            try:
                pipe.call("Browser.close")
            except RuntimeError:
                pass  # the browser may close the pipe before it answers
            return check
        finally:
            pipe.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/browser.py",
                                     description="Open an HTML file in headless Chromium; print its size and problems.")
    parser.add_argument("html", help="the page")
    parser.add_argument("--screenshot", help="write a full-page PNG here")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default 1280)")
    args = parser.parse_args(argv)
    check = check_page(args.html, args.screenshot, args.width)
    print(f"page {check.width}x{check.height} CSS px; console messages: {len(check.console)}; "
          f"problems: {len(check.problems)}")
    for line in check.problems:
        print("  " + line)
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(main())
