"""A stateful property test: the raw-bytes API against a dict model, across commits,
rollbacks, snapshots, checkpoints and reopening the file."""

from __future__ import annotations

import copy
import pathlib
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import obj

Model = dict[str, dict[int, bytes]]

COLLECTIONS = st.sampled_from(["a", "b", "c"])
IDS = st.integers(min_value=1, max_value=40)
VALUES = st.one_of(
    st.binary(max_size=64),
    # Large values go to overflow pages; build them cheaply from a byte and a length.
    st.builds(lambda b, n: bytes([b]) * n, st.integers(0, 255), st.integers(2000, 30000)),
)


class RawApiMachine(RuleBasedStateMachine):
    """Committed state, the open write transaction's view, and one pinned snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="obj-model-"))
        self.path = self.dir / "model.obj"
        self.db = obj.Db(self.path, durability="none", checkpoint_frames=50)
        self.committed: Model = {}
        self.next_ids: dict[str, int] = {}
        self.tx: obj.WriteTransaction | None = None
        self.pending: Model = {}
        self.pending_next: dict[str, int] = {}
        self.snapshot: obj.ReadTransaction | None = None
        self.snapshot_model: Model = {}

    @initialize()
    def start(self) -> None:
        assert self.db.checkpoint() == obj.CheckpointInfo(0, False, False)

    # -- write transaction ------------------------------------------------------------------

    @precondition(lambda self: self.tx is None)
    @rule()
    def begin(self) -> None:
        self.tx = self.db.transaction()
        self.pending = copy.deepcopy(self.committed)
        self.pending_next = dict(self.next_ids)

    @precondition(lambda self: self.tx is not None)
    @rule(collection=COLLECTIONS, value=VALUES)
    def insert(self, collection: str, value: bytes) -> None:
        assert self.tx is not None
        doc_id = self.tx.insert(collection, value)
        assert doc_id == self.pending_next.get(collection, 1)
        self.pending.setdefault(collection, {})[doc_id] = value
        self.pending_next[collection] = doc_id + 1

    @precondition(lambda self: self.tx is not None)
    @rule(collection=COLLECTIONS, doc_id=IDS, value=VALUES)
    def upsert(self, collection: str, doc_id: int, value: bytes) -> None:
        assert self.tx is not None
        docs = self.pending.setdefault(collection, {})
        assert self.tx.upsert(collection, doc_id, value) == (doc_id in docs)
        docs[doc_id] = value
        self.pending_next[collection] = max(self.pending_next.get(collection, 1), doc_id + 1)

    @precondition(lambda self: self.tx is not None)
    @rule(collection=COLLECTIONS, doc_id=IDS)
    def delete(self, collection: str, doc_id: int) -> None:
        assert self.tx is not None
        docs = self.pending.get(collection, {})
        assert self.tx.delete(collection, doc_id) == (doc_id in docs)
        docs.pop(doc_id, None)

    @precondition(lambda self: self.tx is not None)
    @rule(collection=COLLECTIONS, doc_id=IDS)
    def get_in_transaction(self, collection: str, doc_id: int) -> None:
        assert self.tx is not None
        assert self.tx.get(collection, doc_id) == self.pending.get(collection, {}).get(doc_id)

    @precondition(lambda self: self.tx is not None)
    @rule()
    def commit(self) -> None:
        assert self.tx is not None
        self.tx.commit()
        self.tx = None
        self.committed = self.pending
        self.next_ids = self.pending_next

    @precondition(lambda self: self.tx is not None)
    @rule(by_exception=st.booleans())
    def rollback(self, by_exception: bool) -> None:
        assert self.tx is not None
        if by_exception:
            try:
                with self.tx:
                    raise KeyError("roll back")
            except KeyError:
                pass
        else:
            self.tx.rollback()
        assert not self.tx.active
        self.tx = None

    # -- snapshots, checkpoints, reopening ---------------------------------------------------

    @precondition(lambda self: self.snapshot is None)
    @rule()
    def take_snapshot(self) -> None:
        self.snapshot = self.db.read_transaction()
        self.snapshot_model = copy.deepcopy(self.committed)

    @precondition(lambda self: self.snapshot is not None)
    @rule()
    def release_snapshot(self) -> None:
        assert self.snapshot is not None
        self.check_reader(self.snapshot, self.snapshot_model)
        self.snapshot.close()
        self.snapshot = None

    @precondition(lambda self: self.tx is None)
    @rule()
    def checkpoint(self) -> None:
        info = self.db.checkpoint()
        if self.snapshot is None:
            assert not info.deferred

    @precondition(lambda self: self.tx is None)
    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if self.snapshot is not None:
            self.snapshot.close()
            self.snapshot = None
        if clean:
            self.db.close()
        else:
            try:
                with self.db:
                    raise ValueError("close without checkpoint")
            except ValueError:
                pass
        self.db = obj.Db(self.path, durability="none", checkpoint_frames=50)

    # -- checks ------------------------------------------------------------------------------

    def check_reader(
        self, reader: obj.ReadTransaction | obj.WriteTransaction, model: Model
    ) -> None:
        for name in ["a", "b", "c"]:
            docs = model.get(name, {})
            assert reader.count(name) == len(docs)
            assert list(reader.iter_all(name)) == sorted(docs.items())
        assert reader.collections() == sorted(model)

    @invariant()
    def committed_state_matches(self) -> None:
        with self.db.read_transaction() as r:
            self.check_reader(r, self.committed)

    @invariant()
    def transaction_view_matches(self) -> None:
        if self.tx is not None:
            self.check_reader(self.tx, self.pending)

    @invariant()
    def snapshot_is_frozen(self) -> None:
        if self.snapshot is not None:
            self.check_reader(self.snapshot, self.snapshot_model)

    def teardown(self) -> None:
        if self.tx is not None:
            self.tx.rollback()
        if self.snapshot is not None:
            self.snapshot.close()
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


RawApiMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestRawApi = RawApiMachine.TestCase
