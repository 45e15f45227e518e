"""This machine, detected at run time: what its CPU and GPU can do for inference
(:mod:`~app.machine.hardware`) and its memory and disk before, during and after a job
(:mod:`~app.machine.memory`). It may import the runtimes (to ask them what they offer) and the plain
types below them.
"""
