"""The command line on top of the game (:mod:`splendor`) and the preprocessing job
(:mod:`imitation_learning`): the composition root, the only package that imports both.

``splendor-il`` (:mod:`splendor_il.cli`) dispatches to ``simulate``
(:mod:`splendor_il.simulate_cli`), ``preprocess`` (:mod:`splendor_il.preprocess_cli`) and
``check`` (:mod:`splendor_il.check_cli`); each parses its flags, opens what the run needs (a
cluster, a configuration) and calls the lower layers' Python API.
"""
