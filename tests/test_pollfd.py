"""core/pollfd: readiness waits work past descriptor 1024 (select(2)'s FD_SETSIZE)."""

from __future__ import annotations

import os
import resource
import time

import pytest

from fleetops.core.pollfd import readable


@pytest.fixture
def high_pipe():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip("descriptor limit too low")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    r, w = os.pipe()
    high_r, high_w = os.dup2(r, 2000), os.dup2(w, 2001)
    os.close(r)
    os.close(w)
    yield high_r, high_w
    os.close(high_r)
    os.close(high_w)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_descriptor_above_1024_times_out_then_reports_data(high_pipe):
    r, w = high_pipe
    started = time.monotonic()
    assert readable([r], 0.05) == []
    assert 0.04 <= time.monotonic() - started < 2
    os.write(w, b"x")
    assert readable([r], 1.0) == [r]


def test_objects_with_fileno_come_back_as_given(high_pipe):
    r, w = high_pipe

    class Wrapped:
        def fileno(self) -> int:
            return r

    item = Wrapped()
    os.close(os.dup(w))
    os.write(w, b"y")
    assert readable([item], 0) == [item]
