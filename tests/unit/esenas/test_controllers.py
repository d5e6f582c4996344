"""Each trained controller beats random search on a toy objective with a known best topology."""

from __future__ import annotations

import numpy as np
import pytest
from esenas.controllers import Controller, make_controller
from esenas.spec import ControllerSpec
from esenas.topology import SearchSpace, Topology

D, C = 24, 4
TARGET = np.arange(D) % C  # the known best topology


def fitness(t: Topology) -> float:
    """Decisions matching the target, plus noise so it is no easier than a real job."""
    return float(np.sum(t.decisions == TARGET))


def run(ctrl: Controller, rounds: int, batch: int, seed: int) -> float:
    """Mean fitness of the last 5 rounds' proposals."""
    noise = np.random.default_rng(seed)
    late: list[float] = []
    for k in range(rounds):
        topos = ctrl.ask(batch)
        f = np.array([fitness(t) for t in topos])
        ctrl.tell(topos, f + noise.normal(0, 0.5, f.size))
        if k >= rounds - 5:
            late.extend(f.tolist())
    return float(np.mean(late))


SPACE = SearchSpace("partition", np.full(D, C, np.int64))
SPACE_BIG = SearchSpace("partition", np.full(900, 17, np.int64))  # the size of a chromatic H41


@pytest.mark.parametrize(
    "spec",
    [
        ControllerSpec(type="evolution", population_size=32, mutation_rate=0.05),
        ControllerSpec(type="policy_gradient", algorithm="reinforce", learning_rate=0.5),
        ControllerSpec(type="policy_gradient", algorithm="ppo", learning_rate=0.2),
    ],
    ids=["evolution", "reinforce", "ppo"],
)
def test_controller_beats_random_search(spec: ControllerSpec) -> None:
    seeds = range(3)
    trained = [run(make_controller(spec, SPACE, s), 40, 16, s) for s in seeds]
    rand = [run(make_controller(ControllerSpec(type="random"), SPACE, s), 40, 16, s) for s in seeds]
    # random search stays near D/C = 6 matches; a learning controller climbs well above
    assert np.mean(rand) < D / C + 1
    assert np.mean(trained) > np.mean(rand) + 4, (trained, rand)


def test_evolution_on_an_edge_space_keeps_distinct_edges() -> None:
    space = SearchSpace("edges", np.full(5, 30, np.int64), distinct=True)
    ctrl = make_controller(ControllerSpec(type="evolution", population_size=8), space, 0)
    for t in ctrl.ask(20):
        assert np.unique(t.decisions).size == 5


@pytest.mark.parametrize("ctype", ["random", "evolution", "policy_gradient"])
def test_state_round_trip_gives_the_same_proposals(ctype: str) -> None:
    spec = ControllerSpec(type=ctype, population_size=4)
    a = make_controller(spec, SPACE, 7)
    for _ in range(3):
        t = a.ask(6)
        a.tell(t, [fitness(x) for x in t])
    b = make_controller(spec, SPACE, 999)
    b.load_state_dict(a.state_dict())
    assert a.ask(5) == b.ask(5)


def test_ppo_epochs_after_the_first_still_learn_on_a_thousand_decisions() -> None:
    # The ratio over the joint log-prob of ~1,000 decisions leaves [1-e, 1+e] after the first
    # epoch, so the clip zeroed every later epoch; per-decision ratios keep them working.
    g = np.random.default_rng(1)
    topos = [SPACE_BIG.sample(g) for _ in range(32)]
    f = g.normal(0, 1, 32)
    moves = []
    for epochs in (1, 5):
        spec = ControllerSpec(type="policy_gradient", algorithm="ppo", learning_rate=0.5, ppo_epochs=epochs)
        ctrl = make_controller(spec, SPACE_BIG, 0)
        ctrl.tell(topos, f)
        moves.append(float(np.abs(ctrl.state_dict()["logits"]).sum()))
    assert moves[1] > 3 * moves[0], moves

