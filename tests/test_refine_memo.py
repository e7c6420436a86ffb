"""Reusing the refiner's output when only a knob after it changes (:mod:`sparsemat.engine.refine_memo`)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.refine_memo import RefinementMemo
from sparsemat.priors.base import prior_input_size
from test_guided import _plate as guided_plate

H, W = 240, 320


@pytest.fixture(scope="module")
def frame() -> FrameInput:
    """The guided-filter tests' warm disc over a noisy background, with a low-res matte prior."""
    rgb, alpha = guided_plate(3, H, W)
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=prior_input_size(H, W, 128), mode="area")
    return FrameInput(rgb=rgb, matte=lr[0, 0].numpy())


def _settings(**knobs: Any) -> Settings:
    return Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128, **knobs)


class _Counted:
    """Counts forward calls of a refiner through a hook (the module itself is unchanged)."""

    def __init__(self) -> None:
        self.calls = 0

    def hook(self, *_: Any) -> None:
        self.calls += 1


@pytest.fixture(scope="module")
def shm() -> torch.nn.Module:
    return build_shm("lite_cs4")


@pytest.fixture
def counted(shm: torch.nn.Module) -> Iterator[_Counted]:
    c = _Counted()
    handle = shm.register_forward_pre_hook(c.hook)
    yield c
    handle.remove()


@pytest.fixture
def refiner(shm: torch.nn.Module, counted: _Counted) -> torch.nn.Module:
    return shm


# ------------------------------------------------------------------------------------------- the memo
def _key(seed: int = 0, n: int = 50) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask.view(-1)[:n] = True
    return {"backend": "torch", "mask": mask, "feats": torch.rand(n, 12, generator=g),
            "lr_rgb": torch.rand(1, 3, 4, 4, generator=g), "lr_prior": torch.rand(1, 1, 4, 4, generator=g),
            "ctx": None}


def test_memo_returns_a_kept_pass_only_for_identical_inputs() -> None:
    net = torch.nn.Identity()
    memo = RefinementMemo()
    key = _key()
    assert memo.lookup(net, **key) is None
    values = torch.linspace(0, 1, 50)
    memo.store(net, **{**key, "feats": key["feats"].clone()}, values=values)
    got = memo.lookup(net, **key)
    assert got is not None and torch.equal(got, values)
    got[:] = -1.0  # a copy: editing it leaves the memo as it was
    again = memo.lookup(net, **key)
    assert again is not None and torch.equal(again, values)

    def changed(name: str, edit: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
        return {**key, name: edit(key[name].clone())}

    one_value = {
        "feats": changed("feats", lambda t: t.index_put_((torch.tensor([7]), torch.tensor([3])), torch.tensor(0.5))),
        "mask": changed("mask", lambda t: t.roll(1, 1)),
        "lr_rgb": changed("lr_rgb", lambda t: t.add_(1e-6)),
        "lr_prior": changed("lr_prior", lambda t: t.mul_(0.5)),
        "ctx": {**key, "ctx": torch.zeros(1, 2)},
        "backend": {**key, "backend": "dense"},
    }
    for name, other in one_value.items():
        assert memo.lookup(net, **other) is None, name
    assert memo.lookup(torch.nn.Identity(), **key) is None  # another model object
    assert memo.hits == 2 and memo.misses == 1 + len(one_value) + 1


def test_memo_keeps_the_most_recently_used_passes() -> None:
    net = torch.nn.Identity()
    memo = RefinementMemo(capacity=2)
    keys = [_key(seed=i) for i in range(3)]
    for i in range(2):
        memo.store(net, **keys[i], values=torch.full((50,), float(i)))
    assert memo.lookup(net, **keys[0]) is not None  # 0 becomes the most recent
    memo.store(net, **keys[2], values=torch.full((50,), 2.0))  # drops 1, the least recently used
    assert len(memo) == 2
    assert memo.lookup(net, **keys[1]) is None
    for i in (0, 2):
        got = memo.lookup(net, **keys[i])
        assert got is not None and float(got[0]) == i
    memo.clear()
    assert len(memo) == 0 and memo.lookup(net, **keys[0]) is None


def test_memo_does_not_keep_a_model_alive_nor_match_a_new_one() -> None:
    memo = RefinementMemo()
    key = _key()
    net = torch.nn.Linear(1, 1)
    memo.store(net, **key, values=torch.zeros(50))
    del net
    gc.collect()
    assert all(e.refiner() is None for e in memo._entries)
    assert memo.lookup(torch.nn.Linear(1, 1), **key) is None


# ------------------------------------------------------------------------------------------- the engine
@pytest.mark.parametrize("knobs", [{"refine_strength": 0.6}, {"soft_edge_guard": 0.4}, {"colour_bound": True},
                                   {"refine_strength": 0.3, "soft_edge_guard": 0.0, "colour_bound": True}])
def test_knobs_after_the_refiner_reuse_its_output_and_give_the_recomputed_matte(
        refiner: torch.nn.Module, counted: _Counted, frame: FrameInput, knobs: dict[str, Any]) -> None:
    session = Session(_settings(), refiner=refiner, reuse_refinement=True)
    first = session.process(1, frame)
    assert counted.calls == 1 and first.stats.shm_reused == 0 and first.stats.shm_gmacs > 0

    session.update(_settings(**knobs))
    tweaked = session.process(1, frame)
    assert counted.calls == 1  # the network did not run again
    assert tweaked.stats.shm_reused == 1 and tweaked.stats.shm_gmacs == 0.0
    fresh = Session(_settings(**knobs), refiner=refiner).process(1, frame)
    assert counted.calls == 2
    np.testing.assert_array_equal(tweaked.alpha, fresh.alpha)
    assert not np.array_equal(tweaked.alpha, first.alpha)  # the knob did change the matte
    np.testing.assert_array_equal(tweaked.active, fresh.active)


@pytest.mark.parametrize("change", ["kernel_size", "plate", "frame_only"])
def test_anything_the_refiner_reads_runs_it_again(refiner: torch.nn.Module, counted: _Counted, frame: FrameInput,
                                                  change: str) -> None:
    session = Session(_settings(), refiner=refiner, reuse_refinement=True)
    first = session.process(1, frame)
    inp, settings = frame, _settings()
    if change == "kernel_size":
        settings = _settings(kernel_size=21)
    elif change == "plate":
        rgb = frame.rgb.copy()
        ys, xs = np.nonzero(first.active)
        rgb[ys[0], xs[0]] += 0.01  # one refined pixel
        inp = FrameInput(rgb=rgb, matte=frame.matte)
    session.update(settings)
    res = session.process(2 if change == "frame_only" else 1, inp)
    if change == "frame_only":  # the same pixels under another frame number: the same inputs, reused
        assert counted.calls == 1 and res.stats.shm_reused == 1
        return
    assert counted.calls == 2 and res.stats.shm_reused == 0 and res.stats.shm_gmacs > 0
    fresh = Session(settings, refiner=refiner).process(1, inp)
    np.testing.assert_array_equal(res.alpha, fresh.alpha)


def test_cascade_reuses_only_the_levels_whose_inputs_are_unchanged(refiner: torch.nn.Module, counted: _Counted,
                                                                    frame: FrameInput) -> None:
    session = Session(_settings(cascade_levels=2), refiner=refiner, reuse_refinement=True)
    session.process(1, frame)
    assert counted.calls == 2
    session.update(_settings(cascade_levels=2, refine_strength=0.5))
    res = session.process(1, frame)
    # level 0.5 sees the same inputs; level 1.0 refines level 0.5's (now tempered) matte, so it runs again
    assert counted.calls == 3 and res.stats.shm_reused == 1
    fresh = Session(_settings(cascade_levels=2, refine_strength=0.5), refiner=refiner).process(1, frame)
    np.testing.assert_array_equal(res.alpha, fresh.alpha)


def test_a_session_keeps_nothing_unless_asked_and_forgets_on_a_model_change(
        refiner: torch.nn.Module, counted: _Counted, frame: FrameInput) -> None:
    plain = Session(_settings(), refiner=refiner)
    plain.process(1, frame)
    plain.update(_settings(refine_strength=0.5))
    assert plain.process(1, frame).stats.shm_reused == 0 and counted.calls == 2

    session = Session(_settings(), refiner=refiner, reuse_refinement=True)
    session.process(1, frame)
    assert session._memo is not None and len(session._memo) == 1
    session.update(_settings(model="lite_cs3"))
    assert len(session._memo) == 0
