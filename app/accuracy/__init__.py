"""How close an artifact stays to its source: the metrics every verification shares
(:mod:`~app.accuracy.verify`), real data for calibration and evaluation (:mod:`~app.accuracy.data`),
evaluation on it, the per-node diagnosis of where the error comes from, and the accuracy budget that
keeps the worst nodes in float. It may import the loaders, the runtimes, the model, artifacts and
the plain types below them; never converters, the pipeline or anything above.
"""
