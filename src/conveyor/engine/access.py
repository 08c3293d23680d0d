"""Folder permissions applied to planned operations: when a run is planned, and again
just before each operation is performed, so a revoked permission stops the run.

An admin's automation is never restricted (grants None). The rules themselves
are in `conveyor.domain.permissions`.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.domain.permissions import Grant, Need, allows, folder_of, refusal
from conveyor.engine.context import EngineContext
from conveyor.engine.operations import Action, Kind, Operation, Outcome, State
from conveyor.engine.storage import PathEscape
from conveyor.store import permissions as permission_store


def needs(op: Operation) -> list[tuple[Need, str]]:
    """What performing `op` needs, on which folder. Replacing an existing file needs
    `full` on its folder, as in Files.com (`writeonly` may only add files)."""
    if op.kind is Kind.CREATE_FOLDER:
        assert op.destination is not None
        return [(Need.WRITE, op.destination)]
    if op.kind is Kind.DELETE:
        assert op.source is not None
        return [(Need.FULL, folder_of(op.source))]
    if op.kind not in (Kind.COPY, Kind.MOVE):
        return []
    assert op.source is not None and op.destination is not None
    target = folder_of(op.destination)
    found = [
        (Need.READ if op.kind is Kind.COPY else Need.FULL, folder_of(op.source)),
        (Need.WRITE, target),
    ]
    if op.action is Action.OVERWRITE:
        found.append((Need.FULL, target))
    return found


class Rules:
    """The owner's grants (None: an admin's, unrestricted), with each folder's answer
    remembered: a plan's operations share few folders."""

    def __init__(self, grants: list[Grant] | None) -> None:
        self.grants = grants
        self._answers: dict[tuple[Need, str], bool] = {}

    def allows(self, need: Need, folder: str) -> bool:
        if self.grants is None:
            return True
        key = (need, folder)
        allowed = self._answers.get(key)
        if allowed is None:
            allowed = self._answers[key] = allows(self.grants, need, folder)
        return allowed

    def refused(self, op: Operation) -> str | None:
        """Why `op` may not be performed (None: it may)."""
        if self.grants is None:
            return None
        for need, folder in needs(op):
            if not self.allows(need, folder):
                return f"permission denied: {refusal(need, folder)}"
        return None


def restrict(operations: list[Operation], grants: list[Grant] | None) -> list[Operation]:
    """The plan with every operation the owner may not perform turned into a refusal."""
    if grants is None:
        return operations
    rules = Rules(grants)
    out = []
    for op in operations:
        reason = rules.refused(op)
        out.append(op if reason is None else replace(op, kind=Kind.REFUSE, reason=reason))
    return out


class Guard:
    """The owner's grants during execution, read again by `refresh` (once per batch of
    outcomes), so a revocation takes effect at the latest at the next batch. The
    first batch uses `grants` as the claim read them, in its transaction."""

    def __init__(
        self, engine: EngineContext, automation_id: int, grants: list[Grant] | None
    ) -> None:
        self._engine = engine
        self._automation_id = automation_id
        self.rules = Rules(grants)
        self._fresh = True  # read by the claim, just now

    def refresh(self) -> None:
        if self._fresh:
            self._fresh = False
            return
        with self._engine.db.read() as conn:
            self.rules = Rules(permission_store.grants_for_automation(conn, self._automation_id))

    def check(self, op: Operation) -> Outcome | None:
        """The failed outcome of an operation the owner may no longer perform, else None."""
        reason = self.rules.refused(op) or self._replaces_unplanned(op)
        if reason is None:
            return None
        return Outcome(State.FAILED, f"Refused to {op.describe()}: {reason}.")

    def _replaces_unplanned(self, op: Operation) -> str | None:
        """A copy or move planned as a new file whose destination has appeared since would
        replace that file, which needs `full` (a `writeonly` owner may only add files)."""
        if op.kind not in (Kind.COPY, Kind.MOVE) or op.action is not Action.WRITE:
            return None
        assert op.destination is not None
        folder = folder_of(op.destination)
        if self.rules.allows(Need.FULL, folder):
            return None
        try:
            appeared = self._engine.storage.size(op.destination) is not None
        except PathEscape:
            return None  # performing it refuses the path, with its own reason
        if not appeared:
            return None
        return (
            f"permission denied: {op.destination} appeared after planning and replacing it "
            f"needs {refusal(Need.FULL, folder).removeprefix('no ')}"
        )
