"""Kill a training process at a checkpoint, as a crash would, to test that the run resumes.

`run_killed(code)` runs `code` in a new Python process whose checkpointer SIGKILLs the process right after
a save: its `saves`-th save, without waiting for Orbax (the process may die while the checkpoint is still
being written), or its save of step `step`, once that checkpoint is on disk. The subprocess inherits the
test session's compilation cache through the environment (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_killed(code: str, *, saves: int | None = None, step: int | None = None) -> subprocess.CompletedProcess:
    if (saves is None) == (step is None):
        raise ValueError("give saves or step")
    condition = f"len(saves) == {saves}" if saves is not None else f"step == {step}"
    wait = "self.wait()" if step is not None else "pass"
    script = textwrap.dedent(f"""
        import os, signal
        import jaxrl.engine.checkpoint as checkpoint
        save, saves = checkpoint.Checkpointer.save, []
        def save_then_die(self, step, state):
            save(self, step, state)
            saves.append(step)
            if {condition}:
                {wait}
                os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.Checkpointer.save = save_then_die
    """) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    return proc
