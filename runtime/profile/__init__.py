"""``edgeclf profile``: how fast and how heavy a bundle is on this machine (docs/profiling.md).

- :mod:`.inputs`: what is measured (settings, flags, defaults), on which
  texts, and the machine it runs on.
- :mod:`.timing`: one configuration timed, split into tokenizer, ONNX and rest.
- :mod:`.measure`: :func:`~edgeclf.profile.measure.profile`, every
  configuration of a bundle, and the JSON result.
- :mod:`.footprint`: RSS readings and fresh-process cold starts (also
  behind ``edgeclf models --memory``).
- :mod:`.cli`: the command's arguments and its terminal table.
- :mod:`.report` and :mod:`.plots`: the ``--html`` page and its plots
  (matplotlib, the ``report`` extra, imported only when a page is drawn).

This package imports nothing on its own, so ``edgeclf.profile.footprint``
costs no more than itself in the fresh processes it measures.
"""
