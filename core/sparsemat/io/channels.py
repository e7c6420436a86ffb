"""Which channels of an image hold the plate or the matte: RGB (and alpha) by name, layers, parts, stereo views.

OpenImageIO hands over every part (subimage) of a file with its channel names; these functions pick the ones to
read without reading pixels: ``R, G, B`` before ``rgba.*`` and ``beauty.*``, a named layer (``plate.R``) or part,
and in a stereo EXR the view asked for (Nuke's single-part layout, where the hero view is unprefixed and the others
carry their name, ``right.R``; or one part per view). Candidates are ``(part, [(channel index, name)])`` with any
view or layer prefix already removed from the names.
"""

from __future__ import annotations

import OpenImageIO as oiio

from sparsemat.errors import InputError

_PREFERRED_PARTS = ("rgba", "beauty")
_PREFERRED_LAYERS = ("", "rgba", "beauty")

#: ``(part, [(channel index, name without view/layer prefix)])`` for each part considered.
Candidates = list[tuple[int, list[tuple[int, str]]]]


def part_name(spec: oiio.ImageSpec) -> str:
    return str(spec.getattribute("oiio:subimagename") or spec.getattribute("name") or "")


def split_name(name: str) -> tuple[str, str]:
    layer, _, chan = name.rpartition(".")
    return layer.lower(), chan.lower()


def find_rgb(names: tuple[str, ...] | list[str]) -> tuple[tuple[int, int, int], int | None] | None:
    """Indices of R, G, B (and A or None) in ``names``, case-insensitive, or None.

    Layers are tried in the order: no prefix (``R``), ``rgba.``, ``beauty.``, then any other
    layer that has all three of R, G and B (``diffuse.R`` …). Alpha is ``A``/``alpha`` in the
    same layer. A greyscale image (``Y``, e.g. a grey PNG) gives ``(Y, Y, Y)``.
    """
    layers: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        layer, chan = split_name(name)
        layers.setdefault(layer, {}).setdefault(chan, i)
    order = [p for p in _PREFERRED_LAYERS if p in layers] + [p for p in layers if p not in _PREFERRED_LAYERS]
    for layer in order:
        chans = layers[layer]
        if all(c in chans for c in "rgb"):
            alpha = chans.get("a", chans.get("alpha"))
            return (chans["r"], chans["g"], chans["b"]), alpha
    for layer in order:
        chans = layers[layer]
        if "y" in chans:
            return (chans["y"], chans["y"], chans["y"]), chans.get("a", chans.get("alpha"))
    return None


def file_views(specs: list[oiio.ImageSpec]) -> list[str]:
    """Views of a stereo (multi-view) EXR in file order, the hero view first: the parts' ``view`` attributes of a
    multi-part file, else the single part's ``multiView`` list; empty for a one-view image."""
    part_views = [str(s.getattribute("view") or "") for s in specs]
    if len(specs) > 1 and any(part_views):
        return list(dict.fromkeys(v for v in part_views if v))
    listed = specs[0].getattribute("multiView") if specs else None
    if isinstance(listed, str):
        return [listed] if listed else []
    return [str(v) for v in listed] if listed else []


def pick_view(views: list[str], view: str | None, where: str) -> str | None:
    """The view to read: ``view`` as the file spells it, the hero view when None, None for a one-view image."""
    if view is None:
        return views[0] if views else None
    for v in views:
        if v.lower() == view.lower():
            return v
    if not views:
        raise InputError(f"{where} holds one view only; the view '{view}' applies to stereo (multi-view) EXRs. "
                         "Leave the view out for this file.")
    raise InputError(f"{where} has no view '{view}'. Views found: {', '.join(views)}.")


def view_channels(specs: list[oiio.ImageSpec], views: list[str],
                   view: str | None) -> Candidates:
    """``(part, [(channel index, name without its view prefix)])`` of the channels that belong to ``view``.

    Multi-part stereo: the parts whose ``view`` is ``view``. Single-part stereo (``multiView``): the hero view's
    channels are unprefixed (``R``), the others' carry the view's name (``right.R``). Without views: everything.
    """
    if view is None or not views:
        return [(p, list(enumerate(s.channelnames))) for p, s in enumerate(specs)]
    if len(specs) > 1 and any(s.getattribute("view") for s in specs):
        return [(p, list(enumerate(s.channelnames))) for p, s in enumerate(specs)
                if str(s.getattribute("view") or "").lower() == view.lower()]
    known = {v.lower() for v in views}
    hero = views[0].lower() == view.lower()
    out: Candidates = []
    for p, spec in enumerate(specs):
        chans = []
        for i, name in enumerate(spec.channelnames):
            head, dot, rest = name.partition(".")
            if dot and head.lower() in known:
                if head.lower() == view.lower():
                    chans.append((i, rest))
            elif hero:
                chans.append((i, name))
        out.append((p, chans))
    return out


def layer_channels(specs: list[oiio.ImageSpec], candidates: Candidates,
                    layer: str) -> Candidates:
    """The channels of ``layer`` among ``candidates``, its prefix removed: ``plate.R`` → ``R``; in a multi-part
    file a part named ``layer`` gives all its channels."""
    want = layer.lower()
    out = []
    for p, chans in candidates:
        if part_name(specs[p]).lower() == want and len(specs) > 1:
            out.append((p, chans))
            continue
        out.append((p, [(i, name.rpartition(".")[2]) for i, name in chans if split_name(name)[0] == want]))
    return out


def choose_part(specs: list[oiio.ImageSpec],
                 candidates: Candidates) -> tuple[int, list[tuple[int, str]]] | None:
    with_rgb = [(p, chans) for p, chans in candidates if find_rgb([n for _, n in chans]) is not None]
    for p, chans in with_rgb:
        if part_name(specs[p]).lower() in _PREFERRED_PARTS:
            return p, chans
    return with_rgb[0] if with_rgb else None


def describe_channels(specs: list[oiio.ImageSpec]) -> str:
    if len(specs) == 1:
        return ", ".join(specs[0].channelnames) or "none"
    return "; ".join(f"part {i} '{part_name(s)}': {', '.join(s.channelnames)}" for i, s in enumerate(specs))


def find_channel(specs: list[oiio.ImageSpec], channel: str | None,
                  candidates: Candidates | None = None) -> tuple[int, int] | None:
    """(part, channel index) of ``channel`` (None: alpha, else the first channel) among ``candidates``
    (:func:`_view_channels`; default: every channel)."""
    parts = candidates if candidates is not None else view_channels(specs, [], None)
    if channel is None:
        for p, chans in parts:
            for i, name in chans:
                if name.lower() in ("a", "alpha"):
                    return p, i
        for p, chans in parts:
            for i, name in chans:
                if split_name(name)[1] in ("a", "alpha"):
                    return p, i
        firsts = [(p, chans[0][0]) for p, chans in parts if chans]
        return firsts[0] if firsts else None
    want = channel.lower()
    for p, chans in parts:
        for i, name in chans:
            if name.lower() == want or f"{part_name(specs[p])}.{name}".lower() == want:
                return p, i
    suffix = [(p, i) for p, chans in parts for i, name in chans if split_name(name)[1] == want]
    return suffix[0] if len(suffix) == 1 else None
