"""The fast forward pass (one ``x @ W.T + b`` per layer) gives the general loop's actions.

``Policy.act`` takes a short path for chains of layers; the reference here is the plain
definition: normalise, then per layer the sum of every incoming block's matrix product plus the
bias, tanh on hidden layers. The two may differ in the last bits (BLAS and tanh kernels pick
paths by size and alignment), hence 1e-12, far below anything a rollout can tell apart.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import PolicySpec

CASES = [
    PolicySpec(template="linear", topology="dense"),
    PolicySpec(template="mlp", hidden_layers=(41,), topology="partition", partitions=17),
    PolicySpec(template="mlp", hidden_layers=(41, 41), topology="partition", partitions=17),
    PolicySpec(template="mlp", hidden_layers=(8,), topology="edges", edges=12, search_space="residual_edges"),
    PolicySpec(template="mlp", hidden_layers=(8,), topology="toeplitz"),
    PolicySpec(template="mlp", hidden_layers=(8, 8), topology="edges", edges=3),
    PolicySpec(template="mlp", hidden_layers=(8, 8), topology="edges", edges=12, search_space="path_edges"),
]


def reference(arch: Architecture, policy: Policy, obs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mats, biases = arch.weights(policy.params, policy.topology)
    hs = [(obs - policy.obs_mean) / policy.obs_std]
    for j in range(1, len(arch.layers)):
        z = biases[j - 1] + sum((hs[b.src] @ m.T for b, m in zip(arch.blocks, mats, strict=True) if b.dst == j), 0.0)
        hs.append(z if j == len(arch.layers) - 1 else np.tanh(z))
    return hs[-1]


@pytest.mark.parametrize("spec", CASES, ids=lambda s: f"{s.template}-{s.topology}-{len(s.hidden_layers)}")
def test_fast_forward_pass_matches_the_definition(spec: PolicySpec) -> None:
    rng = np.random.default_rng(3)
    arch = Architecture(spec, 17, 6)
    space = arch.search_space()
    for _ in range(3):
        topo = space.sample(rng) if space.choices.size else arch.default_topology()
        params = rng.normal(size=arch.num_params)
        policy = Policy(arch, topo, params, rng.normal(size=17), rng.uniform(0.5, 2.0, 17))
        one = rng.normal(size=17)
        batch = rng.normal(size=(5, 17))
        np.testing.assert_allclose(policy.act(one), reference(arch, policy, one), rtol=0, atol=1e-12)
        np.testing.assert_allclose(policy.act(batch), reference(arch, policy, batch), rtol=0, atol=1e-12)
        assert policy.act(one).shape == (6,) and policy.act(batch).shape == (5, 6)


def test_chain_fast_path_is_taken_for_chromatic_mlps_and_not_for_residual_edges() -> None:
    rng = np.random.default_rng(0)
    chrom = Architecture(CASES[1], 17, 6)
    residual = Architecture(CASES[3], 17, 6)
    p1 = Policy(chrom, chrom.search_space().sample(rng), rng.normal(size=chrom.num_params))
    p2 = Policy(residual, residual.search_space().sample(rng), rng.normal(size=residual.num_params))
    assert p1._chain is not None and len(p1._chain) == 2
    assert p2._chain is None
