"""tools/kernel_polling.py: a lost wake-up costs one short step, not the cell's whole timeout."""

import asyncio
import sys
from pathlib import Path
from queue import Empty
from time import monotonic

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from kernel_polling import in_steps  # noqa: E402


def deaf_channel(arrives_after: float):
    """A get_msg that, like a socket whose wake-up was lost, sees only a message that was already there
    when it started waiting: one that arrives during a wait is found by the next call."""
    arrival = monotonic() + arrives_after
    calls = []

    async def get_msg(timeout=None):
        calls.append(timeout)
        if monotonic() >= arrival:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)
        raise Empty

    return get_msg, calls


def test_a_message_whose_wake_up_was_lost_is_found_at_the_next_step():
    get_msg, _ = deaf_channel(arrives_after=0.2)
    start = monotonic()
    with pytest.raises(Empty):   # waiting in one piece, as nbclient does: the message is missed
        asyncio.run(get_msg(timeout=0.6))
    assert monotonic() - start >= 0.6
    get_msg, calls = deaf_channel(arrives_after=0.2)
    start = monotonic()
    assert asyncio.run(in_steps(get_msg, 0.05)(timeout=30)) == {"msg_type": "execute_reply"}
    assert monotonic() - start < 0.2 + 0.5 and all(step <= 0.05 for step in calls)


def test_the_callers_timeout_is_kept_and_none_still_waits():
    get_msg, calls = deaf_channel(arrives_after=60)
    start = monotonic()
    with pytest.raises(Empty):
        asyncio.run(in_steps(get_msg, 0.05)(timeout=0.3))
    assert 0.3 <= monotonic() - start < 1.0 and len(calls) >= 5
    get_msg, calls = deaf_channel(arrives_after=0.3)   # no timeout: steps until the message comes
    assert asyncio.run(in_steps(get_msg, 0.05)(timeout=None)) == {"msg_type": "execute_reply"}
    assert calls[0] == 0.05
