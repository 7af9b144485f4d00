"""Optional coverage-guided fuzzing of the message decoding path with atheris.

Not collected by pytest (the Hypothesis tests in test_security_fuzz.py are
the suite's fuzzing); run by hand where atheris is installed::

    pip install atheris
    python tests/security/atheris_decode.py -max_total_time=300

Every input must decode to a Message or raise MalformedMessage; anything
else (another exception, a crash) is a finding.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from rpqueue.storage.message import MalformedMessage, Message, decode


def one_input(data: bytes) -> None:
    try:
        message = decode(data)
    except MalformedMessage:
        return
    assert isinstance(message, Message) and isinstance(message.name, str) and message.name
    assert isinstance(message.args, list) and isinstance(message.kwargs, dict)


SEEDS = [
    '{"v":1,"id":"a","name":"tasks.send","queue":"default","args":[1,"x",null],"kwargs":{"k":[]}}',
    '{"v":2,"name":"x"}', '{"name":"","args":{}}', '{"name":"n","args":[[[[[[]]]]]]}', "[]",
    '{"v":1,"id":7,"name":"n","kwargs":[]}',
]


def with_seed_corpus(argv: list[str]) -> list[str]:
    """Start from a few messages (random bytes are rarely JSON) unless a corpus
    directory was given."""
    if any(not a.startswith("-") for a in argv[1:]):
        return argv
    corpus = Path(tempfile.mkdtemp(prefix="rpqueue-atheris-"))
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_text(seed)
    return [*argv, str(corpus)]


if __name__ == "__main__":
    atheris.Setup(with_seed_corpus(sys.argv), one_input)
    atheris.Fuzz()
