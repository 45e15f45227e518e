"""The command line: ``python main.py COMMAND``. :mod:`app.cli.parser` builds the parser and
dispatches; one module per group of commands (convert/inspect/targets/report in the parser module,
``bench``/``optimize``, ``evaluate``/``diagnose``, ``serve-bundle``/``native-check``/``pack``), the
flags several commands share (:mod:`app.cli.flags`) and what a command prints while it runs
(:mod:`app.cli.console`). It may import everything in :mod:`app` and :mod:`converters`; nothing
imports it but ``main.py`` (the window drives the core, not the command line).
"""
