"""A model as the core sees it, whatever file it came from: :class:`~app.model.loaded.LoadedModel`,
its signature (:mod:`~app.model.specs`), test inputs built from it (:mod:`~app.model.inputs`) and
facts about its layers (:mod:`~app.model.layer_facts`), and the registry of artifact kinds
(:mod:`~app.model.kinds`), filled by the runtimes and the loaders. It imports only :mod:`app.errors` and the
start-up limits of :mod:`app.safety`.
"""
