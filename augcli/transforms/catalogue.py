"""The transform catalogue, read from the registry: the `transforms` command and docs/transforms.md
are both rendered from here, so they cannot drift from the code."""

from __future__ import annotations

from augcli.config.schema import Float
from augcli.transforms.registry import load_all

_P_DOC = "probability that the transform fires per sample"


def parameters(name: str) -> list[dict]:
    """Each parameter of transform ``name``: name, type, range, default, doc (``p`` first)."""
    cls = load_all()[name]
    specs = {"p": Float(cls.default_p, low=0.0, high=1.0, doc=_P_DOC)}
    specs.update(cls.spec)
    rows = [{"name": key, "type": spec.type_name(), "range": spec.range_text(),
             "default": spec.default_text(), "doc": spec.doc} for key, spec in specs.items()]
    if getattr(cls, "is_container", False):
        rows.insert(1, {"name": "transforms", "type": "list of transforms", "range": "",
                        "default": "required", "doc": "the child transforms"})
    return rows


def describe(name: str) -> str:
    """Plain-text description of one transform for the terminal."""
    cls = load_all()[name]
    lines = [f"{name}: {cls.summary}", ""]
    rows = parameters(name)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        rng = f" in {r['range']}" if r["range"] else ""
        lines.append(f"  {r['name']:<{width}}  {r['type']}{rng}, default {r['default']}")
        lines.append(f"  {'':<{width}}  {r['doc']}")
    return "\n".join(lines)


def summary_table() -> list[tuple[str, str]]:
    return [(name, cls.summary) for name, cls in load_all().items()]


def render_markdown() -> str:
    """docs/transforms.md: every registered transform with its parameters."""
    reg = load_all()
    out = ["# Transform catalogue", "",
           "Generated from the registry by `augcli transforms --markdown`; do not edit by hand.", "",
           f"{len(reg)} transforms.", "", "| name | what it does |", "|---|---|"]
    out += [f"| [`{name}`](#{name}) | {cls.summary} |" for name, cls in reg.items()]
    for name, cls in reg.items():
        out += ["", f"## {name}", "", cls.summary, "", "| parameter | type | range | default | meaning |",
                "|---|---|---|---|---|"]
        out += [f"| `{r['name']}` | {r['type']} | {r['range']} | {r['default']} | {r['doc']} |" for r in parameters(name)]
    return "\n".join(out) + "\n"
