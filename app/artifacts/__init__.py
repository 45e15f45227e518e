"""What lies beside every artifact and how it gets there: the manifest
(:mod:`~app.artifacts.manifest`), atomic output into the output folder
(:mod:`~app.artifacts.atomic_output`) and the versions of the tools that shaped it
(:mod:`~app.artifacts.versions`). It imports only the request, the model's signature and
:mod:`app.errors`.
"""
