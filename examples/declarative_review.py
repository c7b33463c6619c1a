"""A workflow declared in YAML: load it, run it, write it back, and see a bad file rejected.

What it shows: `sg.load_workflow(path)` builds the graph in
declarative_review.yaml (executors by import path, a built-in agent, a switch
whose conditions are written in the safe condition language);
`Workflow.to_yaml()` writes it back (loading that gives the same graph
signature); a condition that tries to call something is refused at load time
with the file and line. Needs the `yaml` extra: pip install 'stepgraph[yaml]'.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import stepgraph as sg

HERE = Path(__file__).parent


async def main() -> None:
    wf = sg.load_workflow(HERE / "declarative_review.yaml")
    print(f"loaded {wf.name!r}: {', '.join(wf.executor_ids)}")
    for text in (
        "Supersteps make agent workflows predictable, durable and fast",
        "Supersteps are neat",
        "Hi",
    ):
        result = await wf.run(text)
        for out in result.outputs:
            print("OUTPUT", getattr(out, "text", out))

    text = wf.to_yaml()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "declarative_review.yaml"
        # The copy sits elsewhere: its import paths resolve on sys.path (this folder is on it).
        copy.write_text(text)
        again = sg.load_workflow(copy)
        print("round trip keeps the signature:", again.signature == wf.signature)

        hostile = Path(tmp) / "hostile.yaml"
        source = (HERE / "declarative_review.yaml").read_text()
        hostile.write_text(source.replace('"message.score >= 0.8"', "\"__import__('os')\""))
        try:
            sg.load_workflow(hostile)
        except sg.GraphError as exc:
            print("rejected:", str(exc).replace(f"{tmp}/", ""))


if __name__ == "__main__":
    asyncio.run(main())
