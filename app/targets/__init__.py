"""The deployment targets this machine offers (:mod:`~app.targets.probe`: every registered converter
with its availability and options) and whether each precision is expected to be faster here
(:mod:`~app.targets.advice`). It may import :mod:`converters` and :mod:`app.machine`.
"""
