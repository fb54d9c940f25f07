"""Sweeps: a base scenario and axes expanded into variants, each a full design study, run on Dask.

``load_sweep`` reads and expands a SWEEP.yaml (:mod:`design.sweep.spec`), ``run_sweep`` runs the
variants (:mod:`design.sweep.engine`) and writes the results table and plots
(:mod:`design.sweep.plots`). Guide: docs/sweeps.md.
"""

from design.sweep.engine import SweepRun, run_sweep
from design.sweep.spec import Sweep, Variant, load_sweep

__all__ = ["Sweep", "SweepRun", "Variant", "load_sweep", "run_sweep"]
