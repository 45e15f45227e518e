"""The model's graph in netron's own viewer, served to this machine only
(:mod:`~app.graph.netron_server`). It may import the loaders, the runtimes and atomic output.
"""
