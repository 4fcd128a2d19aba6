"""Comparing two different programs that compute the same thing.

A sweep member and a run of that config alone, or a sharded and an unsharded sweep, are different XLA
programs: batching a matmul over members, or splitting members over devices, lets XLA pick other kernels
and sum in another order, and which kernels exist depends on the CPU (AVX-512, AVX2, ARM). Float32
addition is not associative, so such programs agree only to rounding, and training feeds every
difference back into the next update.

A rounding error of a sum is relative to the size of its terms, not of its result: a parameter that
ends near zero (a bias whose gradient terms cancel) carries an error of the size of its neighbours'.
So the tolerance here is relative to each leaf's largest magnitude. Measured on the development CPU
(2026-12-02, 200 IQL updates of 2x32 networks, 4 members): the parameters of a sweep and of the same
sweep sharded over two devices, or of a member and its run alone, differ by at most 7.3e-5 of the leaf's
scale with the default kernels and 3e-7 with --xla_cpu_max_isa=SSE4_2; TOLERANCE leaves a margin of
about 14x. A missing or extra update also changes the integer step counters, which are compared exactly,
and the sweep test checks that another hyperparameter value gives other parameters.

Optimiser moments are left out of the float comparison (their integer counters are still compared):
Adam's first moment of a parameter whose per-example gradients cancel (an output bias) is far smaller
than the terms it sums, so its rounding error is large against itself and against its leaf; what those
moments do shows in the parameters, which are compared.

Same program, same machine (a resumed run against an uninterrupted one) is another matter: XLA on CPU is
deterministic, so those tests compare bit for bit.
"""

import jax
import numpy as np

TOLERANCE = 1e-3


def assert_equal_up_to_rounding(a, b, tolerance: float = TOLERANCE) -> None:
    for path_and_x, y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True):
        path, x = path_and_x
        x, y, name = np.asarray(x), np.asarray(y), jax.tree_util.keystr(path)
        if not np.issubdtype(x.dtype, np.floating):  # keys, step counters: no rounding, so exact
            np.testing.assert_array_equal(x, y, err_msg=name)
            continue
        if ".opt_state" in name:
            continue
        scale = float(np.max(np.abs(x))) if x.size else 0.0
        np.testing.assert_allclose(x, y, rtol=tolerance, atol=tolerance * scale, err_msg=name)


def assert_trees_equal(a, b) -> None:
    """Bit for bit: the same program on the same machine (XLA on CPU is deterministic)."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
