"""`--executor ray --address` pointing at nothing fails within seconds, in one line naming the address and what to
check (Ray itself retries for many minutes): an unused port, an unknown host, a port where something that is not
Ray listens, an address that is no address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from aullm.core.errors import UserError
from aullm.training import ray_executor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_host() -> str:
    """Where Ray connects for 127.0.0.1: the node's own address (ray resolves localhost to it)."""
    from ray._private.services import canonicalize_bootstrap_address

    return str(canonicalize_bootstrap_address("127.0.0.1:1")).rsplit(":", 1)[0]


def test_an_unused_port_fails_at_once_on_the_command_line(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "aullm", "train", "demo", "--executor", "ray", "--address", address, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(ray_executor.__file__).resolve().parents[2])},
    )
    assert time.perf_counter() - start < 30
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: --address {address}: nothing answers at ") and "Connection refused" in line
    assert "ray start" in line and "6379" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("no-such-head.invalid:6379", "unknown host no-such-head.invalid; check the Ray head node's name or IP"),
        ("ray://no-such-head.invalid:10001", "unknown host no-such-head.invalid"),
        ("head-node", "not an address; use auto or HOST:PORT"),
    ],
)
def test_an_address_with_no_cluster_is_one_clear_error(address: str, message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(UserError, match=message) as err:
        ray_executor.check_reachable(address)
    assert time.perf_counter() - start < 30 and f"address={address}" in str(err.value)


def test_a_port_where_something_else_listens_is_refused_within_the_timeout(monkeypatch) -> None:
    monkeypatch.setattr(ray_executor, "CONNECT_TIMEOUT_S", 2.0)
    with socket.socket() as silent:  # accepts connections, never speaks gRPC
        silent.bind((node_host(), 0))
        silent.listen(4)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(UserError, match="accepts connections but is not a Ray cluster"):
            ray_executor.check_reachable(address)
        assert time.perf_counter() - start < 10
