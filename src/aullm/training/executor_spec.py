"""Where a run's folds train, as a user names it: the one statement of the executor options (`local` or `ray`, and
Ray's address, resources and retries), which the Python API takes and the command line builds from its flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from aullm.core.errors import UserError, arg
from aullm.training.execution import Executor, LocalExecutor


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a run's folds train, as the user names it: `local` (this process, one task after another) or `ray`
    (one Ray task per seed and fold), with Ray's cluster `address`, resources per task and retries. The one
    statement of these options: the Python API takes it and the command line builds it from its flags."""

    kind: str = "local"
    address: Optional[str] = None
    cpus_per_task: Optional[float] = None
    gpus_per_task: Optional[float] = None
    max_retries: Optional[int] = None

    def ray_options(self) -> dict[str, object]:
        """The Ray-only options that were given."""
        names = ("address", "cpus_per_task", "gpus_per_task", "max_retries")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def build(self) -> Executor:
        if self.kind == "local":
            given = self.ray_options()
            if given:
                named = ", ".join(arg(name) for name in given)
                raise UserError(f"{named} only apply with {arg('executor', 'ray')}")
            return LocalExecutor()
        if self.kind != "ray":
            raise UserError(f"{arg('executor', repr(self.kind))}: choose local or ray")
        try:
            from aullm.training.ray_executor import DEFAULT_MAX_RETRIES, RayExecutor
        except ImportError:
            raise UserError(f"{arg('executor', 'ray')} needs Ray: pip install 'aullm[ray]'") from None
        return RayExecutor(
            address=self.address,
            cpus_per_task=1.0 if self.cpus_per_task is None else self.cpus_per_task,
            gpus_per_task=self.gpus_per_task,
            max_retries=DEFAULT_MAX_RETRIES if self.max_retries is None else self.max_retries,
        )


__all__ = ["ExecutorSpec"]
