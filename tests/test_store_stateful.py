"""A stateful property test of ``obj.Store`` against a dict model: writes, batches, the
write buffer (flushing on reads or not), closing and reopening, and crashes (a dropped
handle, and a writer process killed with SIGKILL), with ``str`` and bytes keys.

After every step the store must read exactly as the model says: ``len``, iteration in
byte order of the encoded keys, ``get``, ``in``, ``range`` and ``prefix``. After a crash
the reopened store must hold one of the states the model went through since the store
last had nothing buffered: a buffered write that was never flushed may be lost, a flushed
one never, and never half of a flush.

``OBJ_STORE_STATEFUL_EXAMPLES`` and ``OBJ_STORE_STATEFUL_STEPS`` turn it up for long runs
(see CONTRIBUTING.md).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import unicodedata
from typing import Any, Optional

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import obj
from obj.cli import from_json, to_json

NAME = "kv"
EXAMPLES = int(os.environ.get("OBJ_STORE_STATEFUL_EXAMPLES", "50"))
STEPS = int(os.environ.get("OBJ_STORE_STATEFUL_STEPS", "30"))

# Few characters, short keys: keys share prefixes and collide often. The accented letters
# come composed and decomposed (and the Angstrom sign, whose NFC form is U+00C5), so with
# normalize="NFC" several spellings are one key.
STR_KEYS = st.lists(
    st.sampled_from(["a", "b", "\u00e9", "e\u0301", "\u00c5", "A\u030a", "\u212b", "\uffff"]),
    min_size=1,
    max_size=4,
).map("".join)
BYTE_KEYS = st.lists(
    st.sampled_from([b"\x00", b"a", b"ab", b"\xc3", b"\xa9", b"\xff"]), min_size=1, max_size=4
).map(b"".join)
NATIVE_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.text(max_size=4),
        st.binary(max_size=4),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
RAW_VALUES = st.binary(max_size=16)

#: What a writer process does, in order, printing ``<step> <pending>`` after each.
WRITER = textwrap.dedent(
    """
    import json, sys
    import obj
    from obj.cli import from_json

    path, options, ops = from_json(json.loads(sys.stdin.readline()))
    values = bytes if options.pop("raw") else None
    db = obj.Db(path, durability="eventual")
    store = db.store("kv", values=values, **options)
    for step, (op, *args) in enumerate(ops, 1):
        if op == "set":
            store[args[0]] = args[1]
        elif op == "pop":
            store.pop(args[0], None)
        elif op == "put_many":
            store.put_many(args[0])
        elif op == "delete_many":
            store.delete_many(args[0])
        elif op == "flush":
            store.flush()
        print(step, store.pending, flush=True)
    print("done", flush=True)
    sys.stdin.read()  # stay until killed
    """
)


class StoreMachine(RuleBasedStateMachine):
    """One store over one file; ``model`` is what it must read, ``since_flush`` the states
    it went through since it last had nothing buffered (what a crash may leave)."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="obj-store-model-"))
        self.path = self.dir / "store.obj"
        self.db: Optional[obj.Db] = None
        self.store: Any = None
        self.model: dict[bytes, Any] = {}
        self.since_flush: list[dict[bytes, Any]] = [{}]
        self.options: dict[str, Any] = {}
        self.raw = False
        self.kills = 0

    # -- set-up -----------------------------------------------------------------------------

    @initialize(
        keys=st.sampled_from(["str", "bytes"]),
        normalize=st.sampled_from([None, "NFC"]),
        raw=st.booleans(),
        buffer=st.sampled_from([None, 1, 3, 8]),
        autoflush=st.booleans(),
    )
    def open_store(
        self, keys: str, normalize: Optional[str], raw: bool, buffer: Optional[int], autoflush: bool
    ) -> None:
        self.options = {
            "keys": keys,
            "normalize": normalize,
            "buffer": buffer,
            "autoflush_on_read": autoflush,
        }
        self.raw = raw
        self.open()

    def open(self) -> None:
        self.db = obj.Db(self.path, durability="eventual")
        self.store = self.db.store(NAME, values=bytes if self.raw else None, **self.options)

    # -- keys and values as the store sees them ------------------------------------------------

    def encode(self, key: str | bytes) -> bytes:
        if isinstance(key, bytes):
            return key
        normalize = self.options["normalize"]
        return (unicodedata.normalize(normalize, key) if normalize else key).encode()

    def decode(self, raw: bytes) -> str | bytes:
        return raw.decode() if self.options["keys"] == "str" else raw

    def sorted_model(self) -> list[tuple[bytes, Any]]:
        return sorted(self.model.items())

    @property
    def keys(self) -> st.SearchStrategy[str | bytes]:
        # A str-keys store returns str keys, so every stored key must be UTF-8; a
        # bytes-keys store takes both (a str key is stored as its UTF-8).
        return STR_KEYS if self.options["keys"] == "str" else st.one_of(BYTE_KEYS, STR_KEYS)

    def values(self) -> st.SearchStrategy[Any]:
        return RAW_VALUES if self.raw else NATIVE_VALUES

    def stepped(self) -> None:
        """Records the state after a step; nothing buffered means all of it is durable."""
        if self.store.pending == 0:
            self.since_flush = [dict(self.model)]
        else:
            self.since_flush.append(dict(self.model))

    # -- writes ---------------------------------------------------------------------------

    @rule(data=st.data())
    def set(self, data: st.DataObject) -> None:
        key = data.draw(self.keys, "key")
        value = data.draw(self.values(), "value")
        self.store[key] = value
        self.model[self.encode(key)] = value
        self.stepped()

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        key = data.draw(self.known_or_new_key(), "key")
        if self.encode(key) in self.model:
            del self.store[key]
            del self.model[self.encode(key)]
        else:
            try:
                del self.store[key]
            except KeyError:
                pass
            else:
                raise AssertionError(f"del of missing key {key!r} did not raise KeyError")
        self.stepped()

    @rule(data=st.data())
    def pop(self, data: st.DataObject) -> None:
        key = data.draw(self.known_or_new_key(), "key")
        expected = self.model.pop(self.encode(key), "absent")
        assert self.store.pop(key, "absent") == expected
        self.stepped()

    @rule(data=st.data())
    def put_many(self, data: st.DataObject) -> None:
        pairs = data.draw(st.lists(st.tuples(self.keys, self.values()), max_size=6), "pairs")
        self.store.put_many(pairs)
        for key, value in pairs:
            self.model[self.encode(key)] = value
        assert self.store.pending == 0
        self.stepped()

    @rule(data=st.data())
    def delete_many(self, data: st.DataObject) -> None:
        keys = data.draw(st.lists(self.known_or_new_key(), max_size=6), "keys")
        present = {self.encode(k) for k in keys} & set(self.model)
        assert self.store.delete_many(keys) == len(present)
        for raw in present:
            del self.model[raw]
        self.stepped()

    @rule()
    def clear(self) -> None:
        self.store.clear()
        self.model.clear()
        self.stepped()

    @rule()
    def flush(self) -> None:
        self.store.flush()
        assert self.store.pending == 0
        self.stepped()

    def known_or_new_key(self) -> st.SearchStrategy[str | bytes]:
        known = [self.decode(k) for k in self.model]
        return st.sampled_from(known) | self.keys if known else self.keys

    # -- closing, reopening, crashing -----------------------------------------------------

    @rule()
    def close_and_reopen(self) -> None:
        self.store.close(strict=True)
        assert self.db is not None
        self.db.close()
        self.open()
        self.since_flush = [dict(self.model)]

    @rule()
    def crash(self) -> None:
        """The process dies: the log is not checkpointed, the buffer never flushed."""
        assert self.db is not None
        self.db.close_without_checkpoint()
        self.store = self.db = None  # dropped, never closed: nothing more is flushed
        self.open()
        self.reopened_state_is_one_of(self.since_flush)

    # A process per kill is slow: at most one per example.
    @precondition(lambda self: self.kills < 1)
    @rule(data=st.data())
    def killed_writer(self, data: st.DataObject) -> None:
        """Another process writes through the same kind of store and is killed with
        SIGKILL after some of its steps."""
        self.kills += 1
        self.store.close(strict=True)
        assert self.db is not None
        self.db.close()
        ops = data.draw(st.lists(self.writer_op(), min_size=1, max_size=12), "ops")
        states = [dict(self.model)]
        pending = [0]
        for op, *args in ops:
            self.apply(op, args)
            states.append(dict(self.model))
        kill_after = data.draw(st.integers(0, len(ops)), "kill after step")
        options = {**self.options, "raw": self.raw}
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(to_json([str(self.path), options, ops])) + "\n")
            proc.stdin.flush()
            while len(pending) <= kill_after:
                line = proc.stdout.readline()
                assert line and line != "done\n", f"the writer stopped early: {line!r}"
                step, left = map(int, line.split())
                assert step == len(pending)
                pending.append(left)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            proc.stdin.close()
            proc.stdout.close()
        # The writer may have gone on past the steps it reported before it died.
        last_flushed = max(i for i, left in enumerate(pending) if left == 0)
        self.open()
        self.reopened_state_is_one_of(states[last_flushed:])
        # Which of those states the kill left depends on timing, and hypothesis needs the
        # steps after this one to be repeatable: go on from the one the report fixes.
        settled = states[last_flushed]
        self.store.clear()
        self.store.put_many([(self.decode(k), v) for k, v in settled.items()])
        self.model = dict(settled)
        self.since_flush = [dict(settled)]

    def writer_op(self) -> st.SearchStrategy[list[Any]]:
        return st.one_of(
            st.tuples(st.just("set"), self.keys, self.values()).map(list),
            st.tuples(st.just("pop"), self.keys).map(list),
            st.tuples(
                st.just("put_many"), st.lists(st.tuples(self.keys, self.values()), max_size=4)
            ).map(lambda t: [t[0], [list(p) for p in t[1]]]),
            st.tuples(st.just("delete_many"), st.lists(self.keys, max_size=4)).map(list),
            st.just(["flush"]),
        )

    def apply(self, op: str, args: list[Any]) -> None:
        """What the writer process's step does to the model."""
        if op == "set":
            self.model[self.encode(args[0])] = args[1]
        elif op == "pop":
            self.model.pop(self.encode(args[0]), None)
        elif op == "put_many":
            for key, value in args[0]:
                self.model[self.encode(key)] = value
        elif op == "delete_many":
            for key in args[0]:
                self.model.pop(self.encode(key), None)

    def reopened_state_is_one_of(self, states: list[dict[bytes, Any]]) -> None:
        found = {self.encode(k): v for k, v in self.store.items()}
        assert found in states, (
            f"after the crash the store holds {found!r}, none of the states since the last "
            f"flush: {states!r}"
        )
        self.model = found
        self.since_flush = [dict(found)]

    # -- what every step must leave -----------------------------------------------------

    @invariant()
    def reads_match_the_model(self) -> None:
        if self.store is None:
            return
        store, expected = self.store, self.sorted_model()
        assert len(store) == len(expected)
        assert list(store) == [self.decode(k) for k, _ in expected]
        assert list(store.items()) == [(self.decode(k), v) for k, v in expected]
        assert list(reversed(store)) == [self.decode(k) for k, _ in reversed(expected)]
        for raw, value in expected:
            key = self.decode(raw)
            assert key in store
            assert store.get(key, "absent") == value
        for probe in (b"\x01", b"b" * 5, "\u00e5"):
            if self.options["keys"] == "str" and isinstance(probe, bytes):
                probe = probe.decode()
            assert (self.encode(probe) in self.model) == (probe in store)
        # Ranges and prefixes around the stored keys (byte order of the encoded keys).
        for raw, _ in expected[:3]:
            key = self.decode(raw)
            assert list(store.range(key)) == [(self.decode(k), v) for k, v in expected if k >= raw]
            assert list(store.range(None, key, reverse=True)) == [
                (self.decode(k), v) for k, v in reversed(expected) if k < raw
            ]
            first = key[:1]  # a character of a str key, a byte of a bytes key
            assert list(store.prefix(first)) == [
                (self.decode(k), v) for k, v in expected if k.startswith(self.encode(first))
            ]
        self.stepped_reads()

    def stepped_reads(self) -> None:
        """Reads flush the buffer when ``autoflush_on_read`` is set: then it is durable."""
        if self.store.pending == 0:
            self.since_flush = [dict(self.model)]

    @rule(data=st.data())
    def range_and_prefix(self, data: st.DataObject) -> None:
        lo = data.draw(st.none() | self.keys, "lo")
        hi = data.draw(st.none() | self.keys, "hi")
        reverse = data.draw(st.booleans(), "reverse")
        lo_raw = None if lo is None else self.encode(lo)
        hi_raw = None if hi is None else self.encode(hi)
        expected = [
            (self.decode(k), v)
            for k, v in self.sorted_model()
            if (lo_raw is None or k >= lo_raw) and (hi_raw is None or k < hi_raw)
        ]
        if reverse:
            expected.reverse()
        assert list(self.store.range(lo, hi, reverse=reverse)) == expected
        p = data.draw(self.keys, "prefix")
        p_raw = self.encode(p)
        expected = [(self.decode(k), v) for k, v in self.sorted_model() if k.startswith(p_raw)]
        assert list(self.store.prefix(p)) == expected
        self.stepped_reads()

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.db is not None:
            self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


StoreMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestStoreModel = StoreMachine.TestCase


def test_the_writers_ops_cross_json_unchanged() -> None:
    """A guard on the machine itself: ``from_json(to_json(...))`` carries the writer
    process's ops (str and bytes keys, nested values) unchanged."""
    ops = [["set", "\u00e9", {"a": [b"\x00", None]}], ["put_many", [[b"\xff", b"x"]]]]
    assert from_json(json.loads(json.dumps(to_json(ops)))) == ops
