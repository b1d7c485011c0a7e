"""SQA's flip moves run eight reads at once in SIMD lanes (``rust/src/core/sqa/lanes.rs``) where
a group has >= 5 reads, read by read otherwise: a read's result must not depend on which kernel
ran it, on how many reads the call has, or on the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from qfsel.samplers.sqa import simulated_quantum_annealing


@pytest.mark.parametrize("global_moves, readout", [(True, "best"), (False, "slice")])
def test_a_read_is_the_same_whatever_its_group_and_the_threads(global_moves, readout):
    q = np.triu(np.random.default_rng(4).uniform(-1, 1, size=(2, 48, 48)))
    kw = dict(num_sweeps=40, num_slices=6, seed=3, global_moves=global_moves, readout=readout)
    # 19 reads: groups of 8, 8 (lanes) and 3 (read by read); 4 reads: all read by read.
    many = [simulated_quantum_annealing(q, None, num_reads=19, num_threads=t, **kw) for t in (1, 2)]
    few = simulated_quantum_annealing(q, None, num_reads=4, num_threads=1, **kw)
    np.testing.assert_array_equal(many[0]["states"], many[1]["states"])
    np.testing.assert_array_equal(many[0]["energies"], many[1]["energies"])
    np.testing.assert_array_equal(many[0]["states"][:, :4], few["states"])
    np.testing.assert_array_equal(many[0]["energies"][:, :4], few["energies"])
    # the lanes draw from their own streams: two sweeps leave the reads of a group all different
    short = simulated_quantum_annealing(q, None, num_reads=8, **{**kw, "num_sweeps": 2})
    assert len({row.tobytes() for row in short["states"][0]}) == 8
