"""A work-around for notebook executions that stall with the kernel idle (jupyter/nbclient#312).

nbclient waits for each kernel message with one long ``await socket.poll(timeout)`` on zmq.asyncio
sockets. Now and then the wake-up for a message that has arrived is lost, and nbclient only sees it
when that poll times out: the chapter stalls for the whole cell timeout (600 s here, once in the inside
chapter right after its feature-map explorer cell, the kernel idle), or for ever where nbclient polls
without a timeout (IOPub). Three such stalls cost runs on the lent GPU machine.

:func:`poll_channels_often` makes a kernel client's shell and IOPub channels wait in steps of at most
``every`` seconds instead: when a step times out, pyzmq checks the socket itself, so a lost wake-up
costs at most a step, and the caller's own timeout (or none) is kept. Install it from nbclient's
``on_notebook_start`` hook, which runs once the kernel client exists:

    client.on_notebook_start = lambda notebook: poll_channels_often(client.kc)
"""

from __future__ import annotations

from queue import Empty
from time import monotonic


def poll_channels_often(kernel_client, every: float = 1.0) -> None:
    """Make ``kernel_client``'s shell and IOPub ``get_msg`` wait in steps of at most ``every`` seconds."""
    for channel in (kernel_client.shell_channel, kernel_client.iopub_channel):
        channel.get_msg = in_steps(channel.get_msg, every)


def in_steps(get_msg, every: float):
    """An async ``get_msg(timeout=None)`` that calls ``get_msg`` with at most ``every`` seconds at a time,
    until a message comes or ``timeout`` (None: no limit) has passed, then raises ``queue.Empty``."""
    async def get_msg_in_steps(timeout: float | None = None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = every if deadline is None else max(0.0, min(every, deadline - monotonic()))
            try:
                return await get_msg(timeout=step)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise
    return get_msg_in_steps
