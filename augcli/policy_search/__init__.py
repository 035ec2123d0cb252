"""`augcli search`: find a better augmentation policy (``api.search``)."""
