"""A small real example to start from (:mod:`~app.examples.digits`: a CNN trained in seconds on the
bundled UCI digits). It may import :mod:`app.jobs`.
"""
