"""augcli: clean, split and augment image-classification datasets from one YAML strategy."""

__version__ = "0.1.0"

__all__ = ["Pipeline", "__version__"]


def __getattr__(name):
    # Lazy so that `augcli --help` does not pay for importing every transform.
    if name == "Pipeline":
        from augcli.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
