"""The anti-starvation policies as pure logic (worker/scheduling.py); no Redis."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from rpqueue.worker.scheduling import (
    Aging,
    QueuePolicy,
    Settings,
    Weighted,
    check_mode,
    check_weight,
    parse_settings,
)

# -- settings ------------------------------------------------------------------------


def test_check_mode_accepts_the_three_modes() -> None:
    assert check_mode("strict") == ("strict", None)
    assert check_mode(b"weighted") == ("weighted", None)
    assert check_mode("aging", 2) == ("aging", 2.0)
    assert check_mode("aging", 0.5) == ("aging", 0.5)


@pytest.mark.parametrize(("mode", "age", "named"), [
    ("fair", None, "'fair'"),
    ("", None, "''"),
    (None, None, "None"),
    ("aging", None, "age="),
    ("aging", 0, "0"),
    ("aging", -1, "-1"),
    ("aging", "5", "'5'"),
    ("aging", math.nan, "nan"),
    ("aging", math.inf, "inf"),
    ("aging", True, "True"),
    ("weighted", 5, "age=5"),
    ("strict", 1.5, "age=1.5"),
])
def test_check_mode_names_what_is_wrong(mode: Any, age: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        check_mode(mode, age)


@pytest.mark.parametrize("weight", [0, -2, 0.0, "3", None, True, math.nan, math.inf])
def test_check_weight_wants_a_finite_number_above_zero(weight: Any) -> None:
    with pytest.raises(ValueError, match=re_escape(repr(weight))):
        check_weight(weight)
    assert check_weight(3) == 3.0 and check_weight(0.25) == 0.25


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_settings_parse_what_redis_returns_and_fall_back_on_bad_values(
        caplog: pytest.LogCaptureFixture) -> None:
    s = parse_settings({b"mode": b"aging", b"age": b"1.5"}, {b"a": b"3", "b": "0.5"})
    assert (s.mode, s.age, dict(s.weights)) == ("aging", 1.5, {"a": 3.0, "b": 0.5})
    assert s.weight("a") == 3.0 and s.weight("elsewhere") == 1.0
    # An age left over from an earlier aging mode means nothing in another mode.
    assert parse_settings({"mode": "weighted", "age": "3"}, {}) == Settings("weighted")
    assert parse_settings({}, {}) == Settings()
    # Written by hand, wrong: strict order and weight 1, never a dead worker.
    assert parse_settings({"mode": "aging"}, {}).mode == "strict"
    assert parse_settings({"mode": "aging", "age": "soon"}, {}).mode == "strict"
    assert parse_settings({"mode": "random"}, {}).mode == "strict"
    assert dict(parse_settings({}, {"a": "heavy", "b": "-1", "c": "2"}).weights) == {"c": 2.0}
    assert "strict order" in caplog.text and "'heavy'" in caplog.text


# -- weighted ------------------------------------------------------------------------


def serve(w: Weighted, queues: list[str], settings: Settings, has_work: set[str]) -> str | None:
    """One take the way Worker.step does it: try in order, record what was found."""
    order = w.order(queues, settings)
    for i, q in enumerate(order):
        if q in has_work:
            w.record(order, i, settings)
            return q
    w.record(order, None, settings)
    return None


def test_weighted_interleaves_smoothly_in_proportion() -> None:
    w, s = Weighted(), Settings("weighted", weights={"a": 3})
    served = [serve(w, ["a", "b"], s, {"a", "b"}) for _ in range(12)]
    # Smooth: b's turn comes every 4th take, not after a run of 3 a's at once.
    assert served == ["a", "a", "b", "a"] * 3


def test_weighted_ties_go_by_priority_order() -> None:
    w, s = Weighted(), Settings("weighted")
    assert [serve(w, ["x", "y", "z"], s, {"x", "y", "z"}) for _ in range(6)] == [
        "x", "y", "z", "x", "y", "z"]
    w = Weighted()
    assert [serve(w, ["z", "y", "x"], s, {"x", "y", "z"}) for _ in range(3)] == ["z", "y", "x"]


def test_weighted_shares_follow_weights_when_all_have_work() -> None:
    queues = ["a", "b", "c", "d"]
    s = Settings("weighted", weights={"a": 5, "b": 2, "c": 0.5})
    w = Weighted()
    counts = Counter(serve(w, queues, s, set(queues)) for _ in range(850))
    assert counts == {"a": 500, "b": 200, "c": 50, "d": 100}


def test_an_empty_queue_banks_no_credit() -> None:
    """After a long quiet spell a queue gets its share, not a burst."""
    w, s = Weighted(), Settings("weighted", weights={"a": 3})
    for _ in range(500):
        assert serve(w, ["a", "b"], s, {"a"}) == "a"
    assert all(abs(c) <= 4 for c in w.credit.values()), w.credit
    after = [serve(w, ["a", "b"], s, {"a", "b"}) for _ in range(8)]
    assert after.count("b") == 2 and "b" in after[:4]
    # The other way round: the heavy queue idles, then returns.
    for _ in range(500):
        assert serve(w, ["a", "b"], s, {"b"}) == "b"
    after = [serve(w, ["a", "b"], s, {"a", "b"}) for _ in range(8)]
    assert after.count("a") == 6


def test_weighted_credits_stay_bounded_whatever_runs_dry() -> None:
    """Queues run dry and fill again in spells; credits stay within the sum of
    the weights, and in the spells where all have work each gets its share."""
    rng = random.Random(12)
    queues = ["a", "b", "c"]
    s = Settings("weighted", weights={"a": 4, "b": 2})
    w = Weighted()
    total = 7
    busy = Counter[str]()
    for _ in range(400):
        has_work = {q for q in queues if rng.random() < 0.6}
        for _ in range(rng.randint(1, 60)):
            got = serve(w, queues, s, has_work)
            if has_work == set(queues):
                busy[got] += 1
            assert all(-total <= c <= total for c in w.credit.values()), w.credit
    n = sum(busy.values())
    assert n > 1000
    for q, weight in (("a", 4), ("b", 2), ("c", 1)):
        assert busy[q] / n == pytest.approx(weight / total, abs=0.02), busy


def test_run_length_counts_the_takes_a_share_gives_in_a_row() -> None:
    s = Settings("weighted", weights={"a": 6})
    w = Weighted()
    before = dict(w.credit)
    # a a a b a a a ... : from the start, three of a in a row.
    assert w.run_length("a", ["a", "b"], s, 32) == 3
    assert w.run_length("a", ["a", "b"], s, 2) == 2
    assert w.run_length("b", ["a", "b"], s, 32) == 0
    assert w.credit == before  # only a look ahead
    assert Weighted().run_length("a", ["a"], s, 5) == 5


# -- aging ---------------------------------------------------------------------------


def test_aged_queues_go_first_oldest_first_then_by_priority() -> None:
    a = Aging(2.0)
    assert a.interval == 0.25 and Aging(0.4).interval == pytest.approx(0.1)
    queues = ["high", "mid", "low", "lowest"]
    assert a.order(queues) == queues
    now = 100_000
    a.update(queues, [(now, now - 500), (now, now - 2500), (now, now - 9000), (now, -1)])
    assert a.order(queues) == ["low", "mid", "high", "lowest"]
    # Equal waits: priority order.
    a.update(queues, [(now, now - 2500), (now, -1), (now, now - 2500), (now, now - 2500)])
    assert a.order(queues) == ["high", "low", "lowest", "mid"]
    # Exactly the age is not over it.
    a.update(queues, [(now, now - 2000), (now, -1), (now, -1), (now, -1)])
    assert a.order(queues) == queues


def test_an_aged_queue_found_empty_goes_back_to_its_place() -> None:
    a = Aging(1.0)
    queues = ["high", "low"]
    a.update(queues, [(5000, -1), (5000, 1000)])
    assert a.order(queues) == ["low", "high"]
    a.record(["low", "high"], 0)  # low gave a task: its next may be old too
    assert a.order(queues) == ["low", "high"]
    a.record(["low", "high"], 1)  # low was empty, high gave one
    assert a.order(queues) == ["high", "low"]


def test_a_failed_peek_keeps_what_the_last_check_said() -> None:
    a = Aging(1.0)
    queues = ["high", "low", "other"]
    a.update(queues, [(5000, -1), (5000, 1000), (5000, 2000)])
    a.update(queues, [(6000, -1), ConnectionError("gone"), (6000, 5500)])
    assert a.aged == {"low": 1000}


# -- the per-process scheduler ---------------------------------------------------------


def test_scheduler_strict_returns_the_priority_order_untouched() -> None:
    sched = QueuePolicy(app=None)  # type: ignore[arg-type]  # strict never touches Redis
    queues = ["a", "b"]
    assert sched.order(queues) is queues
    sched.record(queues, 1)
    assert sched.prefetch_limit("a", queues, 32) == 32


def test_scheduler_weighted_with_batched_takes() -> None:
    sched = QueuePolicy(app=None)  # type: ignore[arg-type]
    sched.configure(Settings("weighted", weights={"a": 3}))
    queues = ["a", "b"]
    order = sched.order(queues)
    assert order == ["a", "b"]
    sched.record(order, 0)
    # After one a: one more a fits before b's turn.
    assert sched.prefetch_limit("a", queues, 32) == 1
    sched.prefetched("a", queues, 1, ran_dry=False)
    assert sched.order(queues)[0] == "b"
    # A batch that came back short ran the queue dry: no credit kept.
    sched.prefetched("b", queues, 0, ran_dry=True)
    assert sched.weighted.credit["b"] == 0.0
    # Back to strict: the credits go.
    sched.configure(Settings())
    assert sched.weighted.credit == {} and sched.order(queues) is queues
