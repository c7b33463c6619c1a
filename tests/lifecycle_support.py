"""Shared pieces of the lifecycle tests: bounded waits, loop spins, a gate hub."""

from __future__ import annotations

import asyncio
import dataclasses

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


async def spin(iterations: int = 50) -> None:
    """Let the event loop run a few iterations (never used to order a race)."""
    for _ in range(iterations):
        await asyncio.sleep(0)


@dataclasses.dataclass(frozen=True)
class Entered(sg.Event):
    n: int


class Hub:
    """Test-side switchboard shared (by reference) with every fresh executor copy."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.entered: dict[int, asyncio.Event] = {}
        self.cancelled: list[int] = []
        self.calls: list[int] = []
        self.entry_supersteps: list[int] = []

    def gate(self, n: int) -> asyncio.Event:
        """Make the worker block on input `n` until the returned event is set."""
        self.gates[n] = asyncio.Event()
        self.entered[n] = asyncio.Event()
        return self.gates[n]
