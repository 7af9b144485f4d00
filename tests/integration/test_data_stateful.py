"""A Hypothesis state machine drives a data queue against an in-memory model.

Every lease in the machine is long (10 minutes), and leases end only through
``refresh_data(..., vis_timeout=0)``, so what is expired is known exactly
and no step depends on timing. After every step the keys in Redis are read
back and compared with the model: each item in exactly one state, reads never
above attempts, and (through the rules) only the latest lease's receipt can
refresh or finish an item.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import rpqueue
from rpqueue.data import Data, Leased

LONG = 600.0
LIVE = ("ready", "delayed", "leased", "released")
values = st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2))


@dataclass
class Item:
    value: Any
    state: str  # ready | delayed | leased | released | dead | gone
    max: int  # leased reads allowed, 0 while open
    dead: bool | None  # dead-letter when out of reads, None while open
    reads: int = 0
    token: str | None = None  # receipt of the current lease, None if unknown


class DataMachine(RuleBasedStateMachine):
    app: ClassVar[rpqueue.RPQueue]

    def __init__(self) -> None:
        super().__init__()
        self.queue = "sm-" + uuid.uuid4().hex
        self.items: dict[str, Item] = {}
        # ready, front first: each group is a set whose inner order the model
        # does not fix (expired leases go back to the front in one batch).
        self.groups: list[set[str]] = []
        self.receipts: list[tuple[str, str]] = []
        self.readers: list[Data] = []

    @initialize(attempts=st.integers(1, 3), use_dead=st.sampled_from([None, True, False]),
                other_attempts=st.integers(1, 3), other_dead=st.booleans())
    def setup(self, attempts: int, use_dead: bool | None, other_attempts: int,
              other_dead: bool) -> None:
        self.readers = [
            Data(self.queue, attempts=attempts, vis_timeout=LONG, use_dead=use_dead,
                 app=self.app),
            Data(self.queue, attempts=other_attempts, vis_timeout=LONG, use_dead=other_dead,
                 app=self.app),
        ]

    # -- model helpers -----------------------------------------------------------

    def ids_in(self, *states: str) -> list[str]:
        # In put order, never sorted: ids are random, and draws from a list
        # ordered by them would differ between Hypothesis's replays.
        return [i for i, it in self.items.items() if it.state in states]

    def upkeep(self) -> None:
        """What a script's upkeep does: act on leases ended by refresh(0)."""
        back: set[str] = set()
        for taskid in self.ids_in("released"):
            item = self.items[taskid]
            if item.reads < item.max:
                item.state = "ready"
                back.add(taskid)
            else:
                item.state = "dead" if item.dead else "gone"
        if back:
            self.groups.insert(0, back)

    def check_prefix(self, got: list[str], n: int) -> list[set[str]]:
        """``got`` must be the first n ready items; returns the groups left."""
        groups = [set(g & set(self.ids_in("ready"))) for g in self.groups]
        groups = [g for g in groups if g]
        assert len(got) == min(n, sum(len(g) for g in groups))
        assert len(set(got)) == len(got)
        at = 0
        for group in groups:
            if at == len(got):
                break
            take = got[at:at + len(group)]
            assert set(take) <= group, (take, group)
            group -= set(take)
            at += len(take)
        return [g for g in groups if g]

    # -- rules -------------------------------------------------------------------
    # Hypothesis takes rules in name order and draws the first ones more
    # often: the names put the steps that build interesting states first.

    @rule(batch=st.lists(values, min_size=1, max_size=5),
          use_dead=st.sampled_from([None, True, False]), delayed=st.booleans())
    def step1_put(self, batch: list[Any], use_dead: bool | None, delayed: bool) -> None:
        d = self.readers[0]
        put = d.put_data(batch, use_dead=use_dead, delay=LONG if delayed else 0)
        assert list(put.values()) == batch
        dead = d.use_dead if use_dead is None else use_dead
        for taskid, value in put.items():
            self.items[taskid] = Item(value, "delayed" if delayed else "ready",
                                      d.attempts if d.attempts > 1 else 0, dead)
            if not delayed:
                self.groups.append({taskid})

    @rule(reader=st.integers(0, 1), mode=st.sampled_from(["take", "lease", "receipts", "peek"]),
          n=st.integers(1, 6))
    def step2_read(self, reader: int, mode: str, n: int) -> None:
        self.read(reader, mode, n)

    @rule(n=st.integers(1, 4), plain=st.booleans())
    def step3_churn(self, n: int, plain: bool) -> None:
        """Lease, give back, lease again: the states where stale receipts matter."""
        for mode in ("receipts", "plain-back", "lease" if plain else "receipts"):
            if mode == "plain-back":
                self.give_back(self.ids_in("leased"))
            else:
                self.read(0, mode, n)

    def read(self, reader: int, mode: str, n: int) -> None:
        d = self.readers[reader]
        if mode == "receipts":
            leased = d.get_data_with_receipts(n)
            got = {i: v.item for i, v in leased.items()}
            tokens: dict[str, str | None] = {i: v.receipt for i, v in leased.items()}
        else:
            vis = {"take": 0.0, "lease": LONG, "peek": -1.0}[mode]
            got = d.get_data(n, vis_timeout=vis)
            tokens = dict.fromkeys(got)
        self.upkeep()
        left = self.check_prefix(list(got), n)
        for taskid, value in got.items():
            item = self.items[taskid]
            assert value == item.value
            if mode == "take":
                item.state = "gone"
            elif mode != "peek":
                item.state, item.token = "leased", tokens[taskid]
                item.reads += 1
                item.max = item.max or d.attempts
                item.dead = bool(d.use_dead) if item.dead is None else item.dead
                if item.token is not None:
                    self.receipts.append((taskid, item.token))
        if mode != "peek":
            self.groups = left

    # Rules draw plain indexes, never values sampled from the model: which
    # items a read returns can vary between replays of one example (expired
    # leases return in Redis's order), and Hypothesis needs the same draws
    # each time. An index picks from whatever the state holds now.

    @staticmethod
    def pick(pool: list[Any], picks: list[int]) -> list[Any]:
        if not pool:
            return []
        chosen = [pool[i % len(pool)] for i in picks]
        firsts: dict[Any, Any] = {}
        for value in chosen:
            firsts.setdefault(value[0] if isinstance(value, tuple) else value, value)
        return list(firsts.values())

    def holds(self, taskid: str, receipt: str | None) -> bool:
        item = self.items[taskid]
        return item.state == "leased" and (receipt is None or item.token == receipt)

    @rule(picks=st.lists(st.integers(0, 99), min_size=1, max_size=3))
    def step4_give_back(self, picks: list[int]) -> None:
        """End some leases now, with their receipt where it is known."""
        self.give_back(self.pick(self.ids_in("leased"), picks))

    def give_back(self, chosen: list[str]) -> None:
        arg: dict[str, Leased | None] = {}
        for taskid in chosen:
            token = self.items[taskid].token
            arg[taskid] = None if token is None else Leased(None, token)
        assert sorted(self.readers[1].refresh_data(arg, vis_timeout=0)) == sorted(chosen)
        for taskid in chosen:
            self.items[taskid].state = "released"

    @rule(pick=st.integers(0, 99))
    def step5_stale_receipt(self, pick: int) -> None:
        """A receipt of an earlier lease acts on nothing, whatever the item's state."""
        stale = [(i, r) for i, r in self.receipts if self.items[i].token != r]
        for taskid, receipt in self.pick(stale, [pick]):
            value = self.items[taskid].value
            d = self.readers[0]
            assert d.refresh_data({taskid: Leased(value, receipt)}) == []
            assert d.done_data({taskid: Leased(value, receipt)}) == 0

    def some_ids(self, picks: list[int]) -> list[str]:
        # Leased items twice over: they are the interesting ones.
        return self.pick(self.ids_in("leased") * 2 + list(self.items), picks)

    @rule(picks=st.lists(st.integers(0, 99), max_size=4), fenced=st.booleans(),
          release=st.booleans())
    def step6_refresh(self, picks: list[int], fenced: bool, release: bool) -> None:
        chosen: list[tuple[str, str | None]]
        if fenced:
            receipts: list[tuple[str, str]] = self.pick(self.receipts, picks)
            arg: Any = {i: Leased(self.items[i].value, r) for i, r in receipts}
            chosen = list(receipts)
        else:
            chosen = [(i, None) for i in self.some_ids(picks)]
            arg = [i for i, _ in chosen]
        ok = [i for i, r in chosen if self.holds(i, r)]
        assert self.readers[0].refresh_data(arg, vis_timeout=0 if release else LONG) == ok
        if release:
            for taskid in ok:
                self.items[taskid].state = "released"

    @rule(picks=st.lists(st.integers(0, 99), max_size=4), fenced=st.booleans())
    def step7_done(self, picks: list[int], fenced: bool) -> None:
        if fenced:
            receipts: list[tuple[str, str]] = self.pick(self.receipts, picks)
            arg: Any = {i: Leased(None, r) for i, r in receipts}
            ok = [i for i, r in receipts if self.holds(i, r)]
        else:
            arg = self.some_ids(picks)
            ok = [i for i in arg if self.items[i].state in LIVE]
        assert self.readers[1].done_data(arg) == len(ok)
        for taskid in ok:
            self.items[taskid].state = "gone"

    @rule()
    def step8_count(self) -> None:
        available, invisible = self.readers[0].currently_available()
        self.upkeep()
        assert available == len(self.ids_in("ready"))
        assert invisible == len(self.ids_in("leased", "delayed"))

    @rule(take=st.integers(0, 3))
    def step9_dead_letters(self, take: int) -> None:
        view = Data(self.queue, is_dead=True, app=self.app)
        rows = view.get_data(1000, vis_timeout=-1)
        self.upkeep()
        dead = self.ids_in("dead")
        assert set(rows) == set(dead)
        for taskid, row in rows.items():
            assert row[0] == taskid and row[1] == "" and row[2] == self.items[taskid].value
            assert row[3]["attempts_used"] == self.items[taskid].reads
        if take:
            removed = view.get_data(take)
            assert len(removed) == min(take, len(dead)) and set(removed) <= set(dead)
            for taskid in removed:
                self.items[taskid].state = "gone"

    # -- what Redis holds must match the model after every step -------------------------

    @invariant()
    def storage_matches_model(self) -> None:
        if not self.readers:
            return
        client, base = self.app.client, self.app.keys.data(self.queue).base

        def members(key: str) -> set[str]:
            return {m.decode() for m in client.zrange(base + key, 0, -1)}

        msg = {k.decode() for k in client.hkeys(base + "msg")}
        ready = [i.decode() for i in client.lrange(base + "ready", 0, -1)]
        ready_live = [i for i in ready if i in msg]
        leases, delayed, dead = members("leases"), members("delayed"), members("dead")
        assert msg == set(self.ids_in(*LIVE))
        assert sorted(ready_live) == sorted(self.ids_in("ready"))  # each id once
        assert leases == set(self.ids_in("leased", "released"))
        assert delayed == set(self.ids_in("delayed"))
        assert dead == set(self.ids_in("dead"))
        # Exactly one place per live item.
        assert len(set(ready_live) | leases | delayed) == len(ready_live) + len(leases) + len(
            delayed)
        for taskid, raw in client.hgetall(base + "meta").items():
            reads, most, _, _ = raw.decode().split(" ")
            item = self.items[taskid.decode()]
            assert int(reads) == item.reads
            assert int(most) == 0 or int(reads) <= int(most)


def test_data_queue_matches_model(redis_url: str) -> None:
    app = rpqueue.new_rpqueue("test-data-stateful")
    app.set_redis_url(redis_url)
    DataMachine.app = app
    run_state_machine_as_test(DataMachine, settings=settings(
        max_examples=100, stateful_step_count=50, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow]))


def test_receipt_of_a_given_back_lease_is_refused(redis_url: str) -> None:
    app = rpqueue.new_rpqueue("test-data-stateful")
    app.set_redis_url(redis_url)
    d = Data("fence-check", attempts=2, vis_timeout=LONG, app=app)
    put = d.put_data(["x"])
    stale = d.get_data_with_receipts(1)
    assert d.refresh_data(stale, vis_timeout=0) == list(put)
    fresh = d.get_data_with_receipts(1)
    assert fresh[next(iter(put))].receipt != stale[next(iter(put))].receipt
    assert d.done_data(stale) == 0 and d.done_data(fresh) == 1
