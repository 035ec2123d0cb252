"""`augcli evaluate`: does this augmentation raise accuracy? (``api.evaluate``)."""
