"""Studies: one module per study, each a frozen pydantic ``Config`` and ``run(config)``.

A study composes the layers below (analyses, training, runtime, evaluation) into one of the
papers' analyses; it returns a result object and writes only the data products later steps
reuse (checkpoints, grids, the results store). Rendering (tables, plots, summaries) is
:mod:`weightscape.report`'s; the command line and study files (:mod:`.study_file`) are built on
the same configs.
"""
