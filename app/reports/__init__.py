"""What is handed on to a person: the self-contained HTML report of manifests and benchmarks
(:mod:`~app.reports.html`) and the command line that reproduces a job
(:mod:`~app.reports.command_echo`). It may import the benchmark, the converters' options and
everything below them.
"""
