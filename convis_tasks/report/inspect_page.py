"""Render ``convis inspect``'s one self-contained HTML page from :class:`.inspect_data.InspectData` and the strips.

The page (``templates/inspect.html.j2`` with ``inspect.css`` and ``inspect.js`` inlined) fetches nothing: images are
``data:`` URIs, styles and the script are inline, no font or other resource is named, and its Content-Security-Policy
(``default-src 'none'``; ``img-src data:``; the style block and the script allowed by their sha256) stops anything
else. Every value the template prints goes through :func:`convis_tasks.safetext.html` (the environment's
``finalize``): answers, names, labels and prompts can never become markup. The script reads only ``data-*``
attributes and moves, hides and shows the elements already there; it builds no HTML and evaluates no data.
"""

from __future__ import annotations

import base64
import hashlib
import math
from datetime import datetime, timezone
from importlib import resources

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from convis_tasks.concepts import CONCEPT_KEYS, get_concept
from convis_tasks.safetext import html
from convis_tasks.report.inspect_data import InspectData
from convis_tasks.report.inspect_frames import SOURCE_CACHE, SOURCE_NONE, SOURCE_VIDEOS, Strip

TEMPLATE = "inspect.html.j2"


def _safe(value: object) -> Markup:
    """``finalize``: every printed value is escaped by the project's one HTML escaper, unless it is Markup the
    renderer built itself (the inline CSS and script, the multi-line blocks of :func:`_lines`)."""
    if isinstance(value, Markup):
        return value
    return Markup(html("" if value is None else value))


def _lines(value: object) -> Markup:
    """Multi-line text for a ``<pre>``: each line escaped by :func:`html` (which writes a newline as ``\\n``)."""
    return Markup("\n".join(html(line) for line in str(value).split("\n")))


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _title(concept: str | None) -> str:
    return "concept-free" if concept is None else get_concept(concept).title


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def _environment() -> Environment:
    env = Environment(autoescape=True, finalize=_safe, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(lines=_lines, num=_num, title=_title)
    return env


def _histogram_bars(histogram: list[tuple[str, int]], width: int = 120, height: int = 28) -> list[dict]:
    """SVG bar geometry (attributes, not styles: the CSP allows no inline style) for one answer histogram."""
    top = max((c for _, c in histogram), default=0) or 1
    step = width / len(histogram)
    return [{"x": round(i * step + 1, 1), "w": round(step - 2, 1), "h": round((height - 10) * c / top, 1),
             "y": round(height - 10 - (height - 10) * c / top, 1), "label": label, "count": c,
             "unparsed": label == "unparsed"} for i, (label, c) in enumerate(histogram)]


def frame_counts(strips: dict[tuple, Strip]) -> dict[str, int]:
    """How many strips came from each source (clip cache, source videos, unavailable)."""
    counts = {SOURCE_CACHE: 0, SOURCE_VIDEOS: 0, SOURCE_NONE: 0}
    for strip in strips.values():
        counts[strip.source] += 1
    return counts


def render_page(data: InspectData, strips: dict[tuple, Strip], thumb_px: int, inputs: list[str]) -> str:
    """The page. ``strips`` maps ``(model, task, video1, video2)`` to the strip that answer's frames are in;
    pairs share one strip object whenever their settings are the same, and each is written once per card."""
    css, script = _asset("inspect.css"), _asset("inspect.js")
    csp = (f"default-src 'none'; img-src data:; style-src {_csp_hash(css)}; script-src {_csp_hash(script)}; "
           "base-uri 'none'; form-action 'none'")
    models = data.models
    concepts = [c for c in CONCEPT_KEYS if any(a.concept == c for p in data.pairs for a in p.answers)
                or any(a.concept == c for av in data.anchors for a in av.answers)]
    pair_cards = []
    for pv in data.pairs:
        card_strips: list[tuple[Strip, list[str]]] = []
        for a in pv.answers:
            strip = strips.get((a.model, a.task, pv.video1, pv.video2))
            if strip is None:
                continue
            for known, users in card_strips:
                if known is strip:
                    if a.model not in users:
                        users.append(a.model)
                    break
            else:
                card_strips.append((strip, [a.model]))
        pair_cards.append({"pair": pv, "strips": card_strips})
    anchor_cards = []
    for av in data.anchors:
        found = {a.candidate: strips.get((a.model, a.task, av.anchor, a.candidate)) for a in reversed(av.answers)}
        rows = [{"candidate": c, "strip": found.get(c)} for c in av.candidates]
        columns = sorted({(a.model, a.concept) for a in av.answers},
                         key=lambda mc: ([m.label for m in models].index(mc[0]), CONCEPT_KEYS.index(mc[1])))
        anchor_cards.append({"anchor": av, "strip": next((r["strip"] for r in rows if r["strip"]), None),
                             "rows": rows, "columns": columns,
                             "cells": {(a.candidate, a.model, a.concept): a for a in av.answers}})
    env = _environment()
    template = env.from_string(_asset(TEMPLATE))
    counts = frame_counts({id(s): s for s in strips.values()})
    summaries = {m.label: {(s.concept, s.concept_free): s for s in m.summaries} for m in models}
    return template.render(
        data=data, models=models, concepts=concepts, pair_cards=pair_cards, anchor_cards=anchor_cards,
        summaries=summaries, bars=_histogram_bars, counts=counts, thumb_px=thumb_px, inputs=inputs,
        css=Markup(css), script=Markup(script), csp=csp, concept_keys=CONCEPT_KEYS,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        SOURCE_CACHE=SOURCE_CACHE, SOURCE_VIDEOS=SOURCE_VIDEOS, SOURCE_NONE=SOURCE_NONE)

