"""What keeps an untrusted model file from doing harm: the fence around a job's child process
(:mod:`~app.safety.sandbox`), allow-list unpickling, the checks of code inside archives, ``--arch``
loading, start-up limits and dependency floors, and the data-only wire the child answers on. It
imports nothing of :mod:`app` but :mod:`app.errors`.
"""
