"""How a run looks in the terminal: live progress, plain lines, or JSON lines.

* `ProgressView` (stdout is a terminal): outputs, requests, failures and user
  events scroll by; one status line at the bottom shows the superstep, the
  executors running, counts and elapsed time, redrawn in place.
* `PlainView` (not a terminal): one line per event, `Name key=value ...`,
  flushed at once so a pipe sees events as they happen.
* `JsonView` (`--json`): one JSON object per event, then a `Result` line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from typing import Protocol, TextIO

import stepgraph as sg

from ._values import event_fields, event_json, jsonable, request_json, show, type_name

__all__ = ["JsonView", "PlainView", "ProgressView", "View", "make_view", "plain_line"]


class View(Protocol):
    """What the run commands report to."""

    def header(self, text: str) -> None:
        """A line about what is about to run (not shown in JSON mode)."""
        ...

    def event(self, event: sg.Event) -> None:
        """One event, as it happens."""
        ...

    def result(self, result: sg.RunResult) -> None:
        """The run ended (successfully, or waiting for answers)."""
        ...

    def finish(self) -> None:
        """The run stopped streaming in any way; leave the terminal tidy."""
        ...

    async def animate(self) -> None:
        """Redraw periodically until cancelled (only the progress view does)."""
        ...


def plain_line(event: sg.Event) -> str:
    """`Output executor_id=shout value=HI!`: the event's class name and its fields."""
    name = type(event).__name__
    if isinstance(event, sg.SubWorkflowEvent):
        return f"{name} executor_id={event.executor_id} | {plain_line(event.event)}"
    if isinstance(event, sg.RequestIssued):
        r = event.request
        return (
            f"{name} id={r.id} executor_id={r.executor_id} "
            f"response_type={type_name(r.response_type)} payload={show(r.payload)}"
        )
    fields = " ".join(f"{k}={show(v)}" for k, v in event_fields(event).items())
    return f"{name} {fields}".rstrip()


class PlainView:
    """One line per event on `out`."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def header(self, text: str) -> None:
        return None

    def event(self, event: sg.Event) -> None:
        self.out.write(plain_line(event) + "\n")
        self.out.flush()

    def result(self, result: sg.RunResult) -> None:
        return None

    def finish(self) -> None:
        return None

    async def animate(self) -> None:
        return None


class JsonView(PlainView):
    """One JSON object per line: every event, then `{"event": "Result", ...}`."""

    def _line(self, data: dict[str, object]) -> None:
        self.out.write(json.dumps(data, ensure_ascii=False) + "\n")
        self.out.flush()

    def event(self, event: sg.Event) -> None:
        self._line(event_json(event))

    def result(self, result: sg.RunResult) -> None:
        self._line(
            {
                "event": "Result",
                "session_id": result.session_id,
                "status": result.status.value,
                "outputs": [jsonable(v) for v in result.outputs],
                "pending_requests": [request_json(r) for r in result.pending_requests],
                "checkpoint_id": result.checkpoint_id,
            }
        )


_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_COLORS = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "dim": "2", "bold": "1"}


def _cut(text: str, width: int) -> str:
    text = " ".join(text.splitlines())
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class ProgressView:
    """A compact live view for a terminal: scrolling results above one status line."""

    def __init__(self, out: TextIO, *, color: bool = True) -> None:
        self.out = out
        self.color = color
        self.started = time.monotonic()
        self.superstep: int | None = None
        self.supersteps = 0
        self.running: dict[str, None] = {}
        self.invoked = False
        self.outputs = 0
        self.checkpoints = 0
        self.frame = 0
        self.drawn = False
        self.status: sg.RunStatus | None = None

    def _c(self, color: str, text: str) -> str:
        return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if self.color else text

    def _width(self) -> int:
        return max(shutil.get_terminal_size((100, 24)).columns - 1, 20)

    def _print(self, line: str) -> None:
        if self.drawn:
            self.out.write("\r\x1b[2K")
        self.out.write(line + "\n")
        self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.started
        step = "starting" if self.superstep is None else f"superstep {self.superstep}"
        running = ""
        if self.superstep is not None:
            running = ", ".join(self.running) or ("committing" if self.invoked else "delivering")
        parts = [step, running, _plural(self.outputs, "output")]
        parts += [_plural(self.checkpoints, "checkpoint"), f"{elapsed:.1f}s"]
        text = " · ".join(p for p in parts if p)
        spin = _SPINNER[self.frame % len(_SPINNER)]
        line = f"{spin} {text}"[: self._width()]
        self.out.write("\r\x1b[2K" + self._c("dim", line))
        self.out.flush()
        self.drawn = True

    def header(self, text: str) -> None:
        self._print(self._c("bold", "▶ " + text))

    def event(self, event: sg.Event, prefix: str = "") -> None:
        width = self._width()
        match event:
            case sg.SuperstepStarted(superstep=n):
                self.superstep = n
                self.supersteps += 1
                self.running.clear()
                self.invoked = False
                self._draw()
            case sg.ExecutorInvoked(executor_id=eid):
                self.invoked = True
                self.running[prefix + eid] = None
                self._draw()
            case sg.ExecutorCompleted(executor_id=eid):
                self.running.pop(prefix + eid, None)
                self._draw()
            case sg.CheckpointSaved():
                self.checkpoints += 1
            case sg.Output(executor_id=eid, value=value) if not prefix:
                self.outputs += 1
                text = value if isinstance(value, str) else show(value)
                self._print(f"{self._c('green', '→')} {eid}: {_cut(text, width - len(eid) - 4)}")
            case sg.RequestIssued(request=r) if not prefix:
                head = f"? {r.executor_id} asks for {type_name(r.response_type)}: "
                self._print(self._c("yellow", head) + show(r.payload, width - len(head)))
            case sg.ExecutorFailed(executor_id=eid, error=error):
                self._print(
                    self._c("red", f"✗ {prefix}{eid} failed: ") + _cut(str(jsonable(error)), width)
                )
            case sg.SubWorkflowEvent(executor_id=eid, event=inner):
                self.event(inner, f"{prefix}{eid}/")
            case sg.RunCompleted(status=status) if not prefix:
                self.status = status
            case (
                sg.RunStarted() | sg.SuperstepCompleted() | sg.Output() | sg.RequestIssued()
                | sg.RunCompleted()
            ):  # fmt: skip
                pass
            case _:  # a user event
                line = plain_line(event)
                self._print(f"{self._c('cyan', '•')} {prefix}{line}"[: width + 10])

    def result(self, result: sg.RunResult) -> None:
        return None

    def finish(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[2K")
            self.drawn = False
        elapsed = time.monotonic() - self.started
        status = self.status
        counts = [
            _plural(self.supersteps, "superstep"),
            _plural(self.outputs, "output"),
            _plural(self.checkpoints, "checkpoint"),
            f"{elapsed:.2f}s",
        ]
        if status is sg.RunStatus.IDLE:
            mark = self._c("green", "✓ idle")
        elif status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS:
            mark = self._c("yellow", "? waiting for answers")
        elif status is sg.RunStatus.PAUSED:
            mark = self._c("yellow", "⏸ paused at a breakpoint")
        elif status is None:
            mark = self._c("red", "✗ interrupted")
        else:
            mark = self._c("red", f"✗ {status.value}")
        self.out.write(f"{mark} · {' · '.join(counts)}\n")
        self.out.flush()
        self.started = time.monotonic()
        self.superstep, self.supersteps, self.outputs, self.checkpoints = None, 0, 0, 0
        self.running.clear()
        self.status = None

    async def animate(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.frame += 1
            self._draw()


def make_view(out: TextIO, *, as_json: bool) -> View:
    """The view for `out`: JSON lines, a live progress view on a terminal, else plain lines."""
    if as_json:
        return JsonView(out)
    if out.isatty():
        color = "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        return ProgressView(out, color=color)
    return PlainView(out)
