"""esenas export --format onnx: onnxruntime runs the file and matches Policy.act (plus the rollouts'
clipping) to 1e-5 on 1,000 observations, for every template and topology a policy.json holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from esenas.network import Architecture
from esenas.policies import Policy
from esenas.spec import PolicySpec
from esenas_cli.main import main

OBS, ACT = 17, 6  # HalfCheetah-v5, whose action space is [-1, 1]^6
ENV = {"id": "HalfCheetah-v5", "maxEpisodeSteps": 1000, "kwargs": {}}

# Every template x topology (and edge search space) that policy.json can hold.
CASES: dict[str, dict[str, Any]] = {
    "linear-dense": {"template": "linear", "topology": "dense"},
    "linear-partition": {"template": "linear", "topology": "partition", "partitions": 9},
    "linear-edges": {"template": "linear", "topology": "edges", "edges": 30},
    "linear-toeplitz": {"template": "linear", "topology": "toeplitz"},
    "linear-dense-clipped": {"template": "linear", "topology": "dense", "clip_actions": True},
    "mlp-dense": {"template": "mlp", "hidden_layers": (41,), "topology": "dense"},
    "mlp-partition-h41": {"template": "mlp", "hidden_layers": (41,), "topology": "partition", "partitions": 17},
    "mlp-partition-300": {"template": "mlp", "hidden_layers": (41,), "topology": "partition", "partitions": 300},
    "mlp-partition-2layers": {"template": "mlp", "hidden_layers": (32, 16), "topology": "partition", "partitions": 8},
    "mlp-edges-aggregate": {"template": "mlp", "hidden_layers": (41,), "topology": "edges", "edges": 64},
    "mlp-edges-independent": {"template": "mlp", "hidden_layers": (32, 16), "topology": "edges", "edges": 20,
                              "search_space": "independent_edges"},
    "mlp-edges-residual": {"template": "mlp", "hidden_layers": (16, 16), "topology": "edges", "edges": 40,
                           "search_space": "residual_edges"},
    "mlp-edges-path": {"template": "mlp", "hidden_layers": (16, 16), "topology": "edges", "edges": 39, "search_space": "path_edges"},
    "mlp-toeplitz": {"template": "mlp", "hidden_layers": (41,), "topology": "toeplitz"},
    "mlp-circulant": {"template": "mlp", "hidden_layers": (41,), "topology": "circulant"},
    "mlp-circulant-2layers": {"template": "mlp", "hidden_layers": (8, 30), "topology": "circulant"},
    "mlp-dense-unclipped": {"template": "mlp", "hidden_layers": (41,), "topology": "dense", "clip_actions": False},
}
SEARCHED = {"partition", "edges"}


def make_policy(case: dict[str, Any], seed: int = 0) -> Policy:
    """A trained-looking policy: initial weights plus noise, ARS-like observation statistics."""
    rng = np.random.default_rng(seed)
    arch = Architecture(PolicySpec(**case), OBS, ACT)
    space = arch.search_space()
    topo = space.sample(rng) if space.num_decisions else arch.default_topology()
    params = arch.init_params(rng) + rng.normal(0.0, 0.3, arch.num_params)
    return Policy(arch, topo, params, rng.normal(0.0, 2.0, OBS), rng.uniform(0.05, 5.0, OBS))


def write_folder(folder: Path, policy: Policy) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    policy.save(folder / "policy.json", environment=ENV, reward=None, iteration=3)
    return folder


def expected(policy: Policy, obs: np.ndarray) -> np.ndarray:
    """What the task gets: Policy.act, clipped to the action space when clipActions (esenas.rollout)."""
    a = policy.act(obs)
    return np.clip(a, -1.0, 1.0) if policy.arch.spec.clip_actions else a


def run_model(path: Path, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    return np.asarray(session.run(["action"], {"observation": obs.astype(dtype)})[0], np.float64)


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_matches_policy_act_on_1000_observations(name: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    policy = make_policy(CASES[name])
    folder = write_folder(tmp_path / "run", policy)
    rng = np.random.default_rng(1)
    obs = policy.obs_mean + policy.obs_std * rng.normal(0.0, 1.5, (1000, OBS))
    want = expected(policy, obs)
    assert np.ptp(want) > 0.5  # the check is not vacuous: the actions vary

    sizes = {}
    for form in ("compact", "dense"):
        out = tmp_path / f"{form}.onnx"
        assert main(["export", str(folder), "--format", "onnx", "--form", form, "-o", str(out)]) == 0
        got = run_model(out, obs)
        assert got.shape == (1000, ACT)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{name} {form}")
        sizes[form] = out.stat().st_size
        # one observation at a time, as a robot's control loop calls it
        np.testing.assert_allclose(run_model(out, obs[:1]), want[:1], rtol=0, atol=1e-5)
    report = capsys.readouterr().out
    assert f"dense form {sizes['dense']:,} bytes" in report
    assert f": {policy.arch.kind} {policy.arch.spec.template} policy in the compact form, {sizes['compact']:,} bytes" in report
    if policy.arch.kind in SEARCHED | {"toeplitz", "circulant"} and policy.arch.spec.template == "mlp":
        assert sizes["compact"] < sizes["dense"], sizes  # the compact file keeps the compression

    f64 = tmp_path / "f64.onnx"
    assert main(["export", str(folder), "--dtype", "float64", "-o", str(f64)]) == 0
    np.testing.assert_allclose(run_model(f64, obs), want, rtol=0, atol=1e-10)


def test_default_output_is_the_smaller_form_in_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_folder(tmp_path / "run", make_policy(CASES["mlp-partition-h41"]))
    assert main(["export", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {folder / 'policy.onnx'}: partition mlp policy in the compact form")
    assert "observation normalisation inside; actions clipped to the action space" in out
    dense = make_policy(CASES["mlp-dense"])
    write_folder(tmp_path / "dense", dense)
    assert main(["export", str(tmp_path / "dense" / "policy.json")]) == 0  # a policy.json works too
    assert "wrote" in capsys.readouterr().out and (tmp_path / "dense" / "policy.onnx").stat().st_size > 4 * 41 * 23


def test_the_posters_chromatic_h41_is_half_the_dense_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """HalfCheetah H41 with 17 colours: 17 shared weights and a 1-byte colour per edge, against 943
    4-byte weights."""
    folder = write_folder(tmp_path / "run", make_policy(CASES["mlp-partition-h41"]))
    assert main(["export", str(folder), "--form", "compact", "-o", str(tmp_path / "c.onnx")]) == 0
    assert main(["export", str(folder), "--form", "dense", "-o", str(tmp_path / "d.onnx")]) == 0
    compact, dense = (tmp_path / "c.onnx").stat().st_size, (tmp_path / "d.onnx").stat().st_size
    assert compact < 0.55 * dense, (compact, dense)
    assert f"dense form {dense:,} bytes" in capsys.readouterr().out


def test_no_clip_exports_the_raw_output(tmp_path: Path) -> None:
    policy = make_policy(CASES["mlp-toeplitz"])
    folder = write_folder(tmp_path / "run", policy)
    obs = policy.obs_mean + 3 * policy.obs_std * np.random.default_rng(2).normal(size=(1000, OBS))
    assert main(["export", str(folder), "--no-clip", "-o", str(tmp_path / "raw.onnx")]) == 0
    got = run_model(tmp_path / "raw.onnx", obs)
    assert np.abs(got).max() > 1.0  # really unclipped
    np.testing.assert_allclose(got, policy.act(obs), rtol=0, atol=1e-5)


def test_the_model_says_what_it_is(tmp_path: Path) -> None:
    import onnx

    folder = write_folder(tmp_path / "run", make_policy(CASES["mlp-edges-aggregate"]))
    assert main(["export", str(folder), "-o", str(tmp_path / "m.onnx")]) == 0
    model = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["observation"]
    assert [o.name for o in model.graph.output] == ["action"]
    assert "HalfCheetah-v5" in model.doc_string and model.opset_import[0].version == 17
    # no kept edge is stored twice and none of the 943 dense weights is stored at all
    floats = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    assert floats == 64 + 41 + 6 + 2 * OBS + 2 * ACT  # kept weights, biases, mean and 1/std, bounds


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: p / "missing", "missing: no such file or folder"),
    (lambda p: p, "holds no policy.json: not a results folder"),
])
def test_bad_folders_are_one_line(make: Any, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(make(tmp_path)), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_broken_policy_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "policy.json").write_text(json.dumps({"format": "esenas.policy/v1"}))
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot load a policy" in err and err.count("\n") == 1


def test_without_onnx_it_names_the_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_folder(tmp_path / "run", make_policy(CASES["linear-dense"]))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert main(["export", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: esenas export --format onnx needs the onnx package: "
                   "pip install 'esenas-cli[export]' (or: make, which installs it)\n")
    assert not (folder / "policy.onnx").exists()


def test_unknown_format_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path), "--format", "tflite"])
    assert exc.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err


def test_an_mlp_for_a_discrete_task_exports_its_unclipped_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A discrete task's scores are unbounded (esenas.spaces), so the rollouts clip nothing; export
    # once refused such an MLP ("the rollouts do not clip this policy").
    rng = np.random.default_rng(0)
    arch = Architecture(PolicySpec(template="mlp", hidden_layers=(4,), topology="dense"), 4, 2)
    policy = Policy(arch, arch.default_topology(), rng.normal(0.0, 3.0, arch.num_params))
    folder = tmp_path / "run"
    folder.mkdir()
    policy.save(folder / "policy.json", environment={"id": "CartPole-v1", "maxEpisodeSteps": 500, "kwargs": {}}, reward=None, iteration=1)
    assert main(["export", str(folder), "-o", str(tmp_path / "m.onnx")]) == 0
    said = capsys.readouterr().out
    assert "actions clipped" not in said and "the argmax of the 2 scores (Discrete(2))" in said
    obs = rng.normal(size=(100, 4))
    np.testing.assert_allclose(run_model(tmp_path / "m.onnx", obs), policy.act(obs), rtol=0, atol=1e-5)


def test_a_flattened_observation_is_named_and_an_unbuildable_task_is_noted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Taxi's observation is one Discrete(500) number; the model takes its one-hot vector."""
    arch = Architecture(PolicySpec(), 500, 6)
    policy = Policy(arch, arch.default_topology(), np.zeros(arch.num_params))
    folder = tmp_path / "taxi"
    folder.mkdir()
    policy.save(folder / "policy.json", environment={"id": "Taxi-v4", "maxEpisodeSteps": 200, "kwargs": {}}, reward=None, iteration=1)
    assert main(["export", str(folder), "-o", str(tmp_path / "taxi.onnx")]) == 0
    said = capsys.readouterr().out.splitlines()
    assert "Taxi-v4: the model's input is gymnasium.spaces.flatten(space, observation) of its Discrete(500)" in said
    assert "Taxi-v4: the model outputs scores; the task's action is the argmax of the 6 scores (Discrete(6))" in said
    # A task this machine cannot build (its package is not installed here): exported, with a note.
    gone = tmp_path / "gone"
    gone.mkdir()
    policy.save(gone / "policy.json", environment={"id": "esenas_not_installed:Arm", "maxEpisodeSteps": 20, "kwargs": {}},
                reward=None, iteration=1)
    assert main(["export", str(gone), "-o", str(tmp_path / "gone.onnx")]) == 0
    note = capsys.readouterr().out.splitlines()[-1]
    assert note.startswith("note: cannot build esenas_not_installed:Arm to read its action bounds: ") and "No module named" in note
    assert (tmp_path / "gone.onnx").exists()
