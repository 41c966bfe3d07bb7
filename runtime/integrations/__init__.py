"""Integrations with other systems, each behind its own extra.

Nothing in the runtime imports this package: ``edgeclf.integrations.spark``
needs ``pip install 'edgeclf[spark]'`` and is imported only by the code (or
the ``edgeclf spark-predict`` command) that asks for it.
"""
