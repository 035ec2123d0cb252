"""augcli: clean, split and augment image-classification datasets from one YAML strategy.

The public API, one import away (each name loads its module on first use, so ``import augcli`` and
``augcli --help`` stay cheap)::

    from augcli import load_strategy, run, RunOptions
    report = run(load_strategy("configs/digits.yaml"), RunOptions(out="data/out/digits", overwrite=True))

    from augcli import Pipeline                      # the strategy's augmentation on your own arrays
    from augcli import evaluate, search              # does it raise accuracy? / find a better policy
    from augcli import AdaptivePipeline, AdaptiveController   # on-line strength (docs/training-loops.md)
    from augcli import Transform, register           # a transform of your own
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Pipeline": "augcli.pipeline",
    "load_strategy": "augcli.config.strategy",
    "Strategy": "augcli.config.strategy",
    "run": "augcli.engine.runner",
    "RunOptions": "augcli.engine.runner",
    "evaluate": "augcli.evaluation.api",
    "search": "augcli.policy_search.api",
    "AdaptivePipeline": "augcli.adaptive",
    "AdaptiveController": "augcli.adaptive",
    "Transform": "augcli.transforms.base",
    "register": "augcli.transforms.registry",
    "AugcliError": "augcli.errors",
    "UsageError": "augcli.errors",
    "StrategyError": "augcli.errors",
    "DataError": "augcli.errors",
    "SchemaError": "augcli.errors",
    "GateError": "augcli.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'augcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    # `import augcli.evaluation` would not shadow these (the packages have other names), so caching
    # the value on the module is safe and makes later lookups plain attribute reads
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
