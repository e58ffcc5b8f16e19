"""When to stop a trial early: pure rules, curves in, a reason (or None) out.

``median`` (and no pruning), ``asha`` (successive halving and Hyperband's brackets of it),
``curve`` (extrapolated learning curves, fitted by ``curvefit``), and ``make``, which names them
for ``search.pruning``. Curves are oriented so that lower is better. May import nothing of the
package but each other (numpy and scipy for the curve fits): no MLflow, no torch, no trials.
"""
