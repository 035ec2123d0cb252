"""Policies: what a search proposes, and how it becomes an ``augment.pipeline``.

A *step* is ``(op, probability, level)``; a *sub-policy* is a short tuple of steps applied in order
(AutoAugment); a *layer* picks one of its sub-policies per sample (optionally weighted) and fires
with its own probability; a *policy* is a sequence of layers. This covers the policies the methods
produce:

- AutoAugment / Fast AutoAugment: one layer of sub-policies of two steps each;
- RandAugment (N, M): N layers, each choosing one op at level M (layer probability K/(K+1) stands
  for the Identity op of RandAugment's set of K+1);
- ADA: one layer with one sub-policy holding every op, each with the shared strength p.

``entries(space)`` renders the policy with catalogue transforms only (``one_of``, ``sequence`` and
the ops' transforms), so the tuned strategy is an ordinary strategy that ``augcli run`` executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from augcli.policy_search.space import Space

Step = tuple  # (op name, probability in [0, 1], level 0..10)


@dataclass(frozen=True)
class Layer:
    choices: tuple            # tuple of sub-policies, each a tuple of steps
    weights: tuple | None = None
    p: float = 1.0


@dataclass(frozen=True)
class Policy:
    layers: tuple = ()
    label: str = "none"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def entries(self, space: Space) -> list[dict]:
        """The ``augment.pipeline`` entries (YAML-shaped) of this policy."""
        out: list[dict] = []
        for layer in self.layers:
            out.extend(_layer_entries(layer, space))
        return out

    def to_json(self) -> dict:
        return {"label": self.label, "layers": [
            {"p": round(layer.p, 4), "weights": None if layer.weights is None else [round(w, 4) for w in layer.weights],
             "sub_policies": [[{"op": s[0], "p": round(float(s[1]), 4), "level": int(s[2])} for s in choice]
                              for choice in layer.choices]} for layer in self.layers]}

    def describe(self) -> list[str]:
        """One line per sub-policy, e.g. ``layer 1 (p 0.88), 1 of 3 (weight 0.50): rotate p=0.50 L3 -> elastic p=0.80 L2``."""
        lines = []
        for i, layer in enumerate(self.layers):
            for j, choice in enumerate(layer.choices):
                pick = ""
                if len(layer.choices) > 1:
                    weight = layer.weights[j] / sum(layer.weights) if layer.weights else 1 / len(layer.choices)
                    pick = f", {j + 1} of {len(layer.choices)} (weight {weight:.2f})"
                steps = " -> ".join(f"{s[0]} p={float(s[1]):.2f} L{int(s[2])}" for s in choice)
                lines.append(f"layer {i + 1} (p {layer.p:.2f}{pick}): {steps}")
        return lines or ["no augmentation"]


def from_json(data: dict) -> Policy:
    """The inverse of ``Policy.to_json``."""
    layers = tuple(Layer(tuple(tuple((s["op"], float(s["p"]), int(s["level"])) for s in sub) for sub in layer["sub_policies"]),
                         None if layer["weights"] is None else tuple(layer["weights"]), float(layer["p"]))
                   for layer in data["layers"])
    return Policy(layers, data.get("label", ""))


NONE = Policy((), "none")


def sub_policy_policy(subs: list, label: str, weights=None, p: float = 1.0) -> Policy:
    """One layer choosing among ``subs`` (AutoAugment's form)."""
    if not subs:
        return Policy((), label)
    return Policy((Layer(tuple(tuple(s) for s in subs), None if weights is None else tuple(weights), p),), label)


def randaugment_policy(space: Space, ops: list[str], n: int, m: int) -> Policy:
    """RandAugment (N, M) over ``ops``: N layers, each one op uniformly at level M (clamped per op)."""
    if not ops:
        return Policy((), f"randaugment n={n} m={m} (no ops)")
    choices = tuple(((op, 1.0, space.clamp(op, m)),) for op in ops)
    identity_share = len(ops) / (len(ops) + 1.0)  # Identity is one of RandAugment's ops
    return Policy(tuple(Layer(choices, None, identity_share) for _ in range(n)), f"randaugment n={n} m={m}")


def ada_policy(space: Space, ops: list[str], p: float, level: int) -> Policy:
    """ADA's form: every op of ``ops`` fires independently with probability ``p`` at ``level``."""
    if not ops or p <= 0.0:
        return Policy((), f"ada p={p:.3f}")
    steps = tuple((op, float(p), space.clamp(op, level)) for op in ops)
    return Policy((Layer((steps,), None, 1.0),), f"ada p={p:.3f} level={level}")


def _choice_entry(steps, space: Space) -> dict:
    entries = [space.entry(*s) for s in steps]
    return entries[0] if len(entries) == 1 else {"sequence": {"transforms": entries}}


def _layer_entries(layer: Layer, space: Space) -> list[dict]:
    if len(layer.choices) == 1:
        inner = [space.entry(*s) for s in layer.choices[0]]
        return inner if layer.p >= 1.0 else [{"sequence": {"transforms": inner, "p": round(layer.p, 4)}}]
    node: dict = {"transforms": [_choice_entry(c, space) for c in layer.choices]}
    if layer.weights is not None:
        node["weights"] = [round(float(w), 6) for w in layer.weights]
    if layer.p < 1.0:
        node["p"] = round(layer.p, 4)
    return [{"one_of": node}]
