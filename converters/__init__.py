"""One module per deployment target; see :mod:`converters.base` for the interface."""
