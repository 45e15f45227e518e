"""Taking an artifact to where it is served: Triton model repositories (:mod:`~app.serving.triton`),
the no-Python C++ load check (:mod:`~app.serving.native_check`) and the check that travels with an
artifact (:mod:`~app.serving.pack`). It may import jobs, the benchmark, the pipeline and everything
below them; never the command line.
"""
