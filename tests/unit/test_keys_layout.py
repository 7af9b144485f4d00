"""The key layout (storage/keys.py), without Redis: names, hash tags, the
escaping of braces in queue names, and the prefix checks."""

from __future__ import annotations

import pytest

from rpqueue.storage.keys import DEFAULT_PREFIX, QUEUE_PARTS, Keys, QueueKeys, normalize_queue


def _hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: between the first '{' and the
    first '}' after it, when that is not empty; else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def test_globals() -> None:
    k = Keys()
    assert k.prefix == DEFAULT_PREFIX == "rpqueue:"
    assert (k.queues, k.queues_wake, k.priorities, k.tasks, k.paused) == (
        "rpqueue:queues", "rpqueue:queues:wake", "rpqueue:priorities", "rpqueue:tasks",
        "rpqueue:paused")
    assert (k.scheduling, k.weights, k.data_queues, k.workers) == (
        "rpqueue:scheduling", "rpqueue:weights", "rpqueue:dataqueues", "rpqueue:workers")


def test_queue_keys() -> None:
    q = Keys("p:").queue("emails")
    assert q.base == "p:q:{emails}:"
    for part in QUEUE_PARTS:
        assert getattr(q, part) == f"p:q:{{emails}}:{part}"
    assert q.result("id1") == "p:q:{emails}:result:id1"
    assert q.abort("id1") == "p:q:{emails}:abort:id1"


def test_data_keys_are_apart_from_task_keys() -> None:
    k = Keys("p:")
    assert k.data("x").ready == "p:d:{x}:ready"
    assert k.data("x").ready != k.queue("x").ready


@pytest.mark.parametrize("name", ["emails", "a}b", "{x}", "}", "{", "%7B", "a%b", " ", "ü{}"])
def test_one_slot_per_queue(name: str) -> None:
    q = Keys("p:").queue(name)
    keys = [getattr(q, part) for part in QUEUE_PARTS] + [q.result("r}{"), q.abort("x")]
    tags = {_hash_tag(key) for key in keys}
    assert len(tags) == 1
    (tag,) = tags
    # The tag is the name, percent-encoded: never empty, never cut short by a brace.
    assert tag and "{" not in tag and "}" not in tag
    assert tag.replace("%7B", "{").replace("%7D", "}").replace("%25", "%") == name


def test_escaping_keeps_names_apart() -> None:
    # A name that already looks escaped must not share keys with the raw one.
    k = Keys()
    names = ["a{b", "a%7Bb", "a%257Bb", "a}b", "a%7Db"]
    bases = {k.queue(n).base for n in names}
    assert len(bases) == len(names)


@pytest.mark.parametrize("prefix", ["{x}", "a{", "b}:", "{"])
def test_prefix_with_braces_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        Keys(prefix)


@pytest.mark.parametrize("prefix", ["", "app:", "a b:", "ü:", "x"])
def test_other_prefixes_are_used_as_given(prefix: str) -> None:
    k = Keys(prefix)
    assert k.queues == prefix + "queues"
    assert k.queue("q").ready == f"{prefix}q:{{q}}:ready"


def test_queue_keys_are_cached_per_layout() -> None:
    k = Keys("p:")
    assert k.queue("q") is k.queue("q")
    assert k.data("q") is k.data("q")
    assert Keys("o:").queue("q") != k.queue("q")
    assert k.queue("q") == QueueKeys("q", "p:q:{q}:")


def test_normalize_queue() -> None:
    assert normalize_queue("q") == "q"
    assert normalize_queue("ü".encode()) == "ü"
    with pytest.raises(ValueError, match="UTF-8"):
        normalize_queue(b"\xff")
    with pytest.raises(ValueError, match="empty"):
        normalize_queue("")
    with pytest.raises(ValueError, match="str or bytes"):
        normalize_queue(3)  # type: ignore[arg-type]


def test_parts_are_properties() -> None:
    q = Keys().queue("q")
    for part in QUEUE_PARTS:
        assert isinstance(getattr(q, part), str)
    assert len(set(QUEUE_PARTS)) == len(QUEUE_PARTS)
