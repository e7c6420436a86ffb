"""Per-site refinement-confidence gates around a trained SHM: capture, fit, score (docs/experiments.md, "Tenth session").

The engine's ``temper_refinement`` accepts one strength per active site. This tool measures what such a strength
can buy without retraining the refiner:

* ``capture`` runs the real engine (``Session``, ``prior="input"``, default knobs but the soft-edge guard off) on
  validation-style plates
  (:func:`sparsemat.evaluation.validation.validation_plate`, the eight target degradations) and stores, per plate
  and kind, the engine's matte and, at every active site, the SHM's value, its guided base, the upsampled prior
  and the colour-sample features (``DIR/plate{i}.npz``, ``DIR/p{i}_{kind}.npz``; ~45 s per 2560×1440 plate on one
  core, ~50 MB).
* ``fit`` fits ``s = σ(w·φ + b)`` (features :data:`FEATURES`, standardised) on captured plates: unknown-region MAD
  of ``σ(s·logit α + (1 − s)·logit base)`` on sampled sites, optionally plus ``--grad-weight`` × a Grad estimate on
  two 256 px crops per plate × kind.
* ``score`` rebuilds the engine's matte with the gate applied (or the soft-edge guard, or the per-pixel oracle that
  picks whichever of SHM and base is closer to the ground truth) and prints unknown-region MAD (×1e3) / Grad
  (/1e3) per kind. With no gate it reproduces the engine's own figures with the guard off exactly; ``--guard T``
  reproduces the engine at ``soft_edge_guard = T`` to within 1e-5 mean absolute alpha (at most 0.05 at single
  sites; three kinds of one decision-set plate checked in the twelfth session) as the guard was then; since the
  thirteenth session the engine's guard also spares plate structure, which ``--guard T --guard-contrast 0.1``
  reproduces (to 6.5e-6 mean absolute alpha, the same level). ``--baselines`` adds the prior and guided rows,
  the target line and the target kinds each row meets.

Usage::

    python tools/confidence_gates.py capture --seed 161803 --plates 12 --out runs/fit
    python tools/confidence_gates.py capture --seed 314159 --plates 8 --out runs/sel     # the selection set
    python tools/confidence_gates.py fit --data runs/fit --plates 12 --features slope,lrcon,sep,unc,corr,proj --out g2.pt
    python tools/confidence_gates.py score --data runs/sel --plates 8 --gate g2.pt       # or --guard 0.1, --oracle
    python tools/confidence_gates.py capture --seed 20261202 --plates 24 --out runs/dec   # the decision set
    python tools/confidence_gates.py score --data runs/dec --plates 24 --baselines        # + target kinds met
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sparsemat.engine.resize import upsample_at
from sparsemat.engine.soft_ramp import ramp_gate
from sparsemat.evaluation.metrics import evaluate, gauss_derivative_kernels, unknown_mask
from sparsemat.evaluation.validation import ACCEPT_KINDS, TARGET_REDUCTION, baseline_methods, summarise
from sparsemat.train.losses import local_contrast

FEATURES = ("slope", "lrcon", "sep", "unc", "corr", "proj", "hrcon")
"""Prior slope (alpha per prior pixel, 3×3 max); low-res plate contrast (3×3); colour-sample separation |F̂ − B̂|;
base uncertainty 4b(1 − b); SHM correction |logit α − logit b| / 10; |colour projection − base|; full-res 5×5 plate
contrast. All at the site, clipped to [0, 1]."""


# ------------------------------------------------------------------------------------------------------ capture
def capture(seed: int, plates: int, out: Path, model: str, first: int = 0,
            size: tuple[int, int] = (1440, 2560), budget: int = 0) -> None:
    import sparsemat.engine.session as session_module
    from sparsemat.builders import build_shm
    from sparsemat.engine import FrameInput, Session
    from sparsemat.engine.colour_samples import samples_at_sites
    from sparsemat.engine.guided import guided_at_sites
    from sparsemat.engine.refine import refine_sites
    from sparsemat.evaluation.validation import degraded_matte, validation_plate
    from sparsemat.settings import Settings
    from sparsemat.train.datasets import training_photos
    from sparsemat.train.trainer import TrainConfig

    record: dict[str, np.ndarray] = {}

    def recording_refine_sites(refiner: Any, backend: Any, rgb_hwc: torch.Tensor, prior: torch.Tensor,
                               mask: torch.Tensor, lr_rgb: torch.Tensor, lr_prior: torch.Tensor,
                               **kw: Any) -> tuple[torch.Tensor, float]:
        kw.update(strength=1.0, gate=None)
        values, macs = refine_sites(refiner, backend, rgb_hwc, prior, mask, lr_rgb, lr_prior, **kw)
        coords = torch.nonzero(mask)
        size = (int(mask.shape[0]), int(mask.shape[1]))
        rgb = rgb_hwc[coords[:, 0], coords[:, 1]].float()
        record.update(
            coords=coords.int().numpy(), values=values.numpy(), prior_hr=prior[coords[:, 0], coords[:, 1]].numpy(),
            base=guided_at_sites(kw["guide"], rgb, coords, size).numpy(),
            samples=samples_at_sites(lr_rgb, lr_prior, rgb, coords, size, est=kw.get("colour_est")).numpy()
            .astype(np.float16),
            lr_prior=lr_prior[0, 0].numpy(), lr_rgb=lr_rgb[0].numpy())
        return values, macs

    session_module.refine_sites = recording_refine_sites  # type: ignore[assignment]
    out.mkdir(parents=True, exist_ok=True)
    photos = training_photos(None, TrainConfig().exclude_photos)
    # the guard off: the capture stores the SHM's own values, and ``score --guard`` applies the guard afterwards
    session = Session(Settings(prior="input", temporal=False, device="cpu", soft_edge_guard=0.0,
                               max_active_pixels=budget), refiner=build_shm(model))
    t0 = time.time()
    for i in range(first, first + plates):
        smp = validation_plate(i, size, photos, seed)
        np.savez_compressed(out / f"plate{i}.npz", rgb=smp.rgb.astype(np.float16), alpha=smp.alpha.astype(np.float32))
        for kind in ACCEPT_KINDS:
            matte = degraded_matte(smp.alpha, i, kind, seed=seed)
            session.reset()
            record.clear()
            res = session.process(0, FrameInput(rgb=smp.rgb, matte=matte))
            np.savez_compressed(out / f"p{i}_{kind}.npz", out=res.alpha.astype(np.float32), matte=matte, **record)
        print(f"seed {seed}: plate {i} captured ({time.time() - t0:.0f} s)", flush=True)


# ------------------------------------------------------------------------------------------------------ features
def site_features(d: dict[str, np.ndarray], size: tuple[int, int], hr_contrast: torch.Tensor | None
                  ) -> dict[str, torch.Tensor]:
    """:data:`FEATURES` at the captured sites, plus ``la``/``lb`` (logits of the SHM value and of the base).

    ``hr_contrast``: the plate's full-resolution 5 × 5 contrast ``[H, W]`` (computed once per plate), or None to
    leave out ``hrcon``.
    """
    coords = torch.from_numpy(d["coords"]).long()
    samples = torch.from_numpy(d["samples"].astype(np.float32))
    base, values = torch.from_numpy(d["base"]), torch.from_numpy(d["values"])
    la = torch.logit(values.double(), eps=1e-12).float()
    lb = torch.logit(base.double(), eps=1e-3).float()
    f = {
        "slope": upsample_at(ramp_gate(torch.from_numpy(d["lr_prior"])[None, None], 1.0), coords, size)[0],
        "lrcon": upsample_at(local_contrast(torch.from_numpy(d["lr_rgb"])[None].float(), 3), coords, size)[0],
        "sep": samples[:, 7], "unc": 4 * base * (1 - base), "corr": (la - lb).abs() / 10,
        "proj": (samples[:, 6] - base).abs(), "la": la, "lb": lb,
    }
    if hr_contrast is not None:
        f["hrcon"] = hr_contrast[coords[:, 0], coords[:, 1]]
    return {k: (v if k in ("la", "lb") else v.clamp(0, 1)) for k, v in f.items()}


def load(data: Path, plates: int, want_hr: bool) -> list[dict[str, Any]]:
    items = []
    for i in range(plates):
        p = np.load(data / f"plate{i}.npz")
        gt, rgb = p["alpha"], p["rgb"]
        unk = unknown_mask(gt, 15)
        size = (int(gt.shape[0]), int(gt.shape[1]))
        hc = local_contrast(torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None], 5)[0, 0] if want_hr else None
        for kind in ACCEPT_KINDS:
            d = dict(np.load(data / f"p{i}_{kind}.npz"))
            c = d["coords"]
            items.append({"plate": i, "kind": kind, "d": d, "gtimg": gt, "rgb": rgb, "unkimg": unk,
                          "f": site_features(d, size, hc),
                          "gt": torch.from_numpy(gt[c[:, 0], c[:, 1]]), "unk": unk[c[:, 0], c[:, 1]],
                          "nunk": int(unk.sum())})
    return items


# ------------------------------------------------------------------------------------------------------ gate
class Gate(torch.nn.Module):
    """``s = σ(w · (φ − μ) / σ + b)`` over the named features; starts at s ≈ 0.95 everywhere."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names
        self.register_buffer("mu", torch.zeros(len(names)))
        self.register_buffer("sd", torch.ones(len(names)))
        self.linear = torch.nn.Linear(len(names), 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.constant_(self.linear.bias, 3.0)

    def forward(self, f: dict[str, torch.Tensor], idx: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.stack([f[k] if idx is None else f[k][idx] for k in self.names], 1)
        return torch.sigmoid(self.linear((x - self.mu) / self.sd))[:, 0]


def blend(s: torch.Tensor, la: torch.Tensor, lb: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(s * la + (1 - s) * lb)


_G, _DG = (torch.tensor(k, dtype=torch.float32) for k in gauss_derivative_kernels(1.4))


def _gradmag(a: torch.Tensor) -> torch.Tensor:
    """The Grad metric's Gaussian-derivative gradient magnitude of ``[1, 1, H, W]``, differentiable."""
    r = len(_G) // 2
    p = F.pad(a, (r, r, r, r), mode="replicate")
    gx = F.conv2d(F.conv2d(p, _G.view(1, 1, -1, 1)), _DG.view(1, 1, 1, -1))
    gy = F.conv2d(F.conv2d(p, _DG.view(1, 1, -1, 1)), _G.view(1, 1, 1, -1))
    return torch.sqrt(gx * gx + gy * gy + 1e-12)


def _prepare(items: list[dict[str, Any]], rng: np.random.Generator, sites: int, crops: int, size: int) -> None:
    for it in items:
        in_unk = np.nonzero(it["unk"])[0]
        pick = rng.choice(in_unk, min(sites, len(in_unk)), replace=False) if len(in_unk) else in_unk
        it["idx"], it["w"] = torch.from_numpy(pick), len(in_unk) / max(len(pick), 1)
        c, (h, w) = it["d"]["coords"], it["gtimg"].shape
        it["crops"] = []
        for _ in range(crops if len(in_unk) else 0):
            y, x = c[in_unk[rng.integers(len(in_unk))]]
            y0, x0 = int(np.clip(y - size // 2, 0, h - size)), int(np.clip(x - size // 2, 0, w - size))
            inside = np.nonzero((c[:, 0] >= y0) & (c[:, 0] < y0 + size) & (c[:, 1] >= x0) & (c[:, 1] < x0 + size))[0]
            win = (slice(y0, y0 + size), slice(x0, x0 + size))
            it["crops"].append({
                "idx": torch.from_numpy(inside), "y": torch.from_numpy(c[inside, 0] - y0).long(),
                "x": torch.from_numpy(c[inside, 1] - x0).long(), "out": torch.from_numpy(it["d"]["out"][win].copy()),
                "ggt": _gradmag(torch.from_numpy(it["gtimg"][win].copy())[None, None])[0, 0],
                "unk": torch.from_numpy(it["unkimg"][win].copy())})
        it["gscale"] = it["nunk"] / max(sum(int(cr["unk"].sum()) for cr in it["crops"]), 1)


def fit(items: list[dict[str, Any]], names: list[str], steps: int, grad_weight: float, seed: int) -> Gate:
    torch.manual_seed(seed)
    _prepare(items, np.random.default_rng(seed), sites=20000, crops=2 if grad_weight > 0 else 0, size=256)
    gate = Gate(names)
    x = torch.cat([torch.stack([it["f"][k][it["idx"]] for k in names], 1) for it in items])
    gate.mu.copy_(x.mean(0))
    gate.sd.copy_(x.std(0).clamp(min=1e-4))
    opt = torch.optim.Adam(gate.linear.parameters(), lr=0.05)
    for step in range(steps):
        opt.zero_grad()
        total_mad = total_grad = 0.0
        for it in items:
            ix = it["idx"]
            vals = blend(gate(it["f"], ix), it["f"]["la"][ix], it["f"]["lb"][ix])
            mad = (vals - it["gt"][ix]).abs().sum() * it["w"] / it["nunk"] * 1e3 / len(items)
            gerr = torch.zeros(())
            for cr in it["crops"]:
                j = cr["idx"]
                o = cr["out"].clone()
                o[cr["y"], cr["x"]] = blend(gate(it["f"], j), it["f"]["la"][j], it["f"]["lb"][j])
                d2 = (_gradmag(o[None, None])[0, 0] - cr["ggt"]) ** 2
                gerr = gerr + d2[cr["unk"]].sum() / 1e3 * it["gscale"] / len(items)
            (mad + grad_weight * gerr).backward()
            total_mad += float(mad.detach())
            total_grad += float(gerr.detach())
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            print(f"step {step}: sampled MAD_unk part {total_mad:.3f}, Grad estimate {total_grad:.3f}", flush=True)
    return gate


# ------------------------------------------------------------------------------------------------------ score
def _kind_means(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    return {kind: (float(np.mean([r["mad_unk"] for r in rows if r["kind"] == kind])),
                   float(np.mean([r["grad_unk"] for r in rows if r["kind"] == kind]))) for kind in ACCEPT_KINDS}


def _print_row(label: str, means: dict[str, tuple[float, float]], met: list[str] | None) -> None:
    cells = [f"{m:.2f} / {g:.2f}" for m, g in means.values()]
    mean = f"{np.mean([m for m, _ in means.values()]):.2f} / {np.mean([g for _, g in means.values()]):.2f}"
    print(f"| {label} | " + " | ".join(cells) + f" | {mean}" + ("" if met is None else f" | {', '.join(met) or 'none'}")
          + " |")


def baseline_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The yardstick's two baselines (:func:`~sparsemat.evaluation.validation.baseline_methods`) scored on the
    captured plates: one row ``{kind, image, method, mad_unk, grad_unk, ...}`` per item and method. Guided from the
    stored half-float plate, so its figures can differ from ``sparsemat eval --validation``'s in the third digit."""
    rows = []
    for it in items:
        for method, pred in baseline_methods(it["rgb"].astype(np.float32), it["d"]["matte"]).items():
            rows.append({"kind": it["kind"], "image": it["plate"], "method": method,
                         **evaluate(pred, it["gtimg"], 15, ("mad", "grad"))})
    return rows


def score(items: list[dict[str, Any]], strength: Any, with_baselines: bool = False, label: str = "scored") -> None:
    """Print per-kind mean unknown-region MAD / Grad of the engine's matte with per-site values replaced.

    With ``with_baselines`` also the prior and guided rows, the target line (0.75 × prior, capped by guided, on MAD
    and Grad) and the target kinds each row meets, by the yardstick's own verdict
    (:func:`~sparsemat.evaluation.validation.summarise`).
    """
    rows = []
    for it in items:
        d = it["d"]
        out = d["out"].copy()
        if strength is not None:
            with torch.no_grad():
                out[d["coords"][:, 0], d["coords"][:, 1]] = strength(it).numpy()
        rows.append({"kind": it["kind"], "image": it["plate"], "method": "shm",
                     **evaluate(out, it["gtimg"], 15, ("mad", "grad"))})
    header = "| row | " + " | ".join(ACCEPT_KINDS) + " | mean |"
    if not with_baselines:
        print(header)
        _print_row(label, _kind_means(rows), None)
        return
    base = baseline_rows(items)
    by = {m: _kind_means([r for r in base if r["method"] == m]) for m in ("prior", "guided")}

    def met(method_rows: list[dict[str, Any]]) -> list[str]:
        _, verdict = summarise(base + [{**r, "method": "shm"} for r in method_rows], ACCEPT_KINDS)
        return [k for k in ACCEPT_KINDS if verdict[k]["pass"]]

    target = {k: (min((1 - TARGET_REDUCTION) * by["prior"][k][0], by["guided"][k][0]),
                  min((1 - TARGET_REDUCTION) * by["prior"][k][1], by["guided"][k][1])) for k in ACCEPT_KINDS}
    print(header + " kinds met |")
    for m in ("prior", "guided"):
        _print_row(m, by[m], met([r for r in base if r["method"] == m]))
    _print_row("target", target, None)
    _print_row(label, _kind_means(rows), met(rows))


def _guard_strength(f: dict[str, torch.Tensor], tau: float, contrast: float | None) -> torch.Tensor:
    """The soft-edge guard's per-site strength ``clip(slope / τ)``; with ``contrast``, at least ``clip(hrcon / c)``."""
    g = (f["slope"] / tau).clamp(0, 1)
    return g if contrast is None else torch.maximum(g, (f["hrcon"] / contrast).clamp(0, 1))


def _oracle(it: dict[str, Any]) -> torch.Tensor:
    v, b, g = torch.from_numpy(it["d"]["values"]), torch.from_numpy(it["d"]["base"]), it["gt"]
    return torch.where((v - g).abs() <= (b - g).abs(), v, b)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--plates", type=int, default=8)
    c.add_argument("--first", type=int, default=0, help="first plate index (to split a capture over processes)")
    c.add_argument("--model", default="lite_cs2")
    c.add_argument("--size", default="2560x1440", help="plate WxH [%(default)s]")
    c.add_argument("--budget", type=int, default=0,
                   help="the engine's max_active_pixels (0: from free memory; fix it above W*H at 4K, where a "
                        "budget fallback refines a coarse level first and the capture needs one full-res pass)")
    c.add_argument("--out", type=Path, required=True)
    for name in ("fit", "score"):
        s = sub.add_parser(name)
        s.add_argument("--data", type=Path, required=True)
        s.add_argument("--plates", type=int, default=8)
    f = sub.choices["fit"]
    f.add_argument("--features", default="slope,lrcon,sep,unc,corr,proj")
    f.add_argument("--steps", type=int, default=300)
    f.add_argument("--grad-weight", type=float, default=0.0)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", type=Path, required=True)
    s = sub.choices["score"]
    s.add_argument("--gate", type=Path, default=None)
    s.add_argument("--guard", default=None,
                   help="the soft-edge guard at this τ instead of a gate; a comma list scores each (0 = off)")
    s.add_argument("--oracle", action="store_true", help="per site, the closer of SHM value and base")
    s.add_argument("--guard-contrast", type=float, default=None,
                   help="with --guard: keep refining where the full-res 5x5 plate contrast / this value exceeds the "
                        "guard's gate (structure the plate shows, e.g. dense hair); 0.1 is the engine's guard since "
                        "the thirteenth session, without it the plain slope guard of before")
    s.add_argument("--baselines", action="store_true",
                   help="also print the prior and guided rows, the target line and the kinds each row meets")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "capture":
        w, h = (int(v) for v in a.size.lower().split("x"))
        capture(a.seed, a.plates, a.out, a.model, a.first, (h, w), a.budget)
        return
    if a.cmd == "fit":
        names = [n for n in a.features.split(",") if n]
        unknown = sorted(set(names) - set(FEATURES))
        if unknown:
            p.error(f"unknown features {unknown}; choose from {', '.join(FEATURES)}")
        gate = fit(load(a.data, a.plates, "hrcon" in names), names, a.steps, a.grad_weight, a.seed)
        torch.save({"names": names, "state_dict": gate.state_dict()}, a.out)
        print("weights", dict(zip(names, gate.linear.weight.data[0].tolist(), strict=True)), "bias", float(gate.linear.bias))
        return
    strength: Any = None
    want_hr = False
    label = "engine"
    if a.gate is not None:
        ck = torch.load(a.gate)
        gate = Gate(ck["names"])
        gate.load_state_dict(ck["state_dict"])
        want_hr = "hrcon" in ck["names"]
        strength = lambda it: blend(gate(it["f"]), it["f"]["la"], it["f"]["lb"])  # noqa: E731
        label = f"gate {a.gate.name}"
    elif a.guard is not None:
        c = a.guard_contrast
        items = load(a.data, a.plates, c is not None)
        for n, tau in enumerate(float(v) for v in a.guard.split(",")):
            guard = (lambda it, t=tau: blend(_guard_strength(it["f"], t, c), it["f"]["la"], it["f"]["lb"])
                     ) if tau > 0 else None
            label = (f"guard {tau:g}" + (f", contrast {c:g}" if c is not None else "")) if tau > 0 else "guard off"
            score(items, guard, a.baselines and n == 0, label)
        return
    elif a.oracle:
        strength = _oracle
        label = "oracle"
    score(load(a.data, a.plates, want_hr), strength, a.baselines, label)


if __name__ == "__main__":
    main()
