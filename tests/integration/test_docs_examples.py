"""Every fenced code block of README.md and the docs this suite covers is run
against a real redis-server, so an example cannot rot.

How a block is run is said by an HTML comment on the line before it:

- none: a ``python`` block is executed; the blocks of one document share
  one namespace, in order (as a reader types them into one session);
- ``<!-- module: NAME -->``: the block is the file NAME.py; it is written to
  a scratch directory on sys.path, and a worker process is started that
  imports it (``rpqueue worker --module=NAME``), so later blocks can wait
  for results;
- ``<!-- run -->`` before an ``sh`` block: each ``rpqueue ...`` line is run
  as the command (shell blocks are not run otherwise: most start servers or
  workers);
- ``<!-- not run: REASON -->``: skipped, with the reason in the document.

Every block may use ``rpqueue`` without importing it, as the docs take
``import rpqueue`` as read. The examples name ``localhost:6379``; the test points them at its own
server by rewriting that address, and at nothing else.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.worker import Workers

import rpqueue
from rpqueue import cli

ROOT = Path(__file__).resolve().parents[2]
# The documents whose examples are checked here (those kept by the docs'
# owner; the others are checked by their own suites).
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\s*$")
MARK = re.compile(r"<!--\s*(?P<what>not run|module|run)\s*:?\s*(?P<arg>.*?)\s*-->")


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    code: str
    mark: str | None  # "not run", "module", "run" or None
    arg: str


def blocks(doc: str) -> Iterator[Block]:
    lines = (ROOT / doc).read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = len(fence.group("indent")), i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.search(before)
        yield Block(doc, start + 1, fence.group("lang"), "\n".join(body) + "\n",
                    mark.group("what") if mark else None, mark.group("arg") if mark else "")


def test_every_skipped_block_says_why() -> None:
    for doc in DOCS:
        for b in blocks(doc):
            if b.mark == "not run":
                assert b.arg, f"{doc}:{b.line}: <!-- not run: ... --> needs a reason"


def local(code: str, url: str) -> str:
    """The example, pointed at the test's server instead of localhost:6379."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    code = code.replace("redis://localhost:6379", f"redis://{host_port}")
    return code.replace('"localhost", 6379', f'"{host}", {port}')


@pytest.mark.parametrize("doc", DOCS)
def test_the_examples_run(doc: str, app: rpqueue.RPQueue, redis_url: str,
                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scratch = tmp_path / "modules"
    scratch.mkdir()
    sys.path.insert(0, str(scratch))
    workers = Workers(redis_url, tmp_path / "workers", cwd=scratch)
    written: list[str] = []
    # The docs take `import rpqueue` as read.
    namespace: dict[str, object] = {"__name__": "doc_" + Path(doc).stem.lower(),
                                    "rpqueue": rpqueue}
    try:
        for b in blocks(doc):
            where = f"{doc}:{b.line}"
            if b.mark == "not run":
                continue
            if b.mark == "module":
                (scratch / f"{b.arg}.py").write_text(local(b.code, redis_url))
                written.append(b.arg)
                sys.modules.pop(b.arg, None)
                workers.start(b.arg, args=["--threads", "2"])
            elif b.lang == "python":
                try:
                    exec(compile(local(b.code, redis_url), where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"the example at {where} failed: {exc!r}") from exc
            elif b.mark == "run":
                for line in b.code.splitlines():
                    argv = shlex.split(line, comments=True)
                    if argv and argv[0] == "rpqueue":
                        code = cli.main([*argv[1:], "--url", redis_url])
                        assert code == 0, f"{where}: {line}: {capsys.readouterr().err}"
    finally:
        workers.stop_all()
        sys.path.remove(str(scratch))
        for name in written:
            sys.modules.pop(name, None)
