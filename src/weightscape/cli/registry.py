"""The commands: each a study (its ``Config`` and ``run``) and the report that renders it.

Adding a command is one row here: its flags are generated from the study's ``Config``
(:mod:`.flags`). Modules are named as strings and imported only for the command that runs, so
``weightscape --help`` imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes:
        name: The subcommand (and the step name in study files).
        help: One line for ``weightscape --help``.
        study: Module with ``Config`` and ``run(config)`` (:mod:`weightscape.studies`).
        render: ``module:function`` writing the result's files; returns the terminal lines.
    """

    name: str
    help: str
    study: str
    render: str

    def module(self) -> Any:
        """The study module."""
        return importlib.import_module(self.study)

    def renderer(self) -> Any:
        """The render function."""
        module, function = self.render.split(":")
        return getattr(importlib.import_module(module), function)


COMMANDS: tuple[Command, ...] = (
    Command(
        "finetune",
        "finetune a classifier (or a zoo file's runs) and save checkpoints to a zoo",
        "weightscape.studies.finetune",
        "weightscape.report.finetune_report:render_finetune",
    ),
    Command(
        "interpolate",
        "evaluate points on a path between checkpoints",
        "weightscape.studies.interpolate",
        "weightscape.report.walk_outputs:render_walk",
    ),
    Command(
        "knowledge",
        "source examples forgotten and target examples learned along the line between two "
        "minima, with dataset cartography (Qin et al. 2022, Fig. 8)",
        "weightscape.studies.knowledge",
        "weightscape.report.knowledge_report:render_knowledge",
    ),
    Command(
        "pretrain",
        "pretrain a small masked LM and measure, per checkpoint, the barrier between two "
        "finetuned copies and the path between two tasks' minima (Qin et al. 2022, Figs. 6-7)",
        "weightscape.studies.pretraining",
        "weightscape.report.pretrain_report:render_pretraining",
    ),
    Command(
        "demo",
        "finetune MiniLM on Rotten Tomatoes and walk paths between the models (about 10 minutes "
        "on 2 CPU cores)",
        "weightscape.studies.demo",
        "weightscape.report.demo:render_demo",
    ),
    Command(
        "mean-path",
        "walk the line of several pairs (one per seed) on one grid and average the curves, "
        "with a std or min-max band (Qin et al. 2022)",
        "weightscape.studies.mean_path",
        "weightscape.report.mean_path_report:render_mean_path",
    ),
    Command(
        "run-distance",
        "Euclidean distance between two runs at every saved step, per weight and per neuron "
        "(Qin et al. 2022, Fig. 12)",
        "weightscape.studies.run_distance",
        "weightscape.report.run_distance_report:render_run_distance",
    ),
    Command(
        "curve",
        "fit a low-loss curve between two checkpoints and compare it with the line",
        "weightscape.studies.curve",
        "weightscape.report.mix_report:render_curve",
    ),
    Command(
        "combine",
        "learn per-layer/module/matrix mixes of two checkpoints and compare them with the best "
        "point on the line",
        "weightscape.studies.combine",
        "weightscape.report.mix_report:render_combine",
    ),
    Command(
        "plane",
        "evaluate a grid on the plane through three models (loss and accuracy contours)",
        "weightscape.studies.plane",
        "weightscape.report.plane_report:render_plane",
    ),
    Command(
        "grid",
        "interpolate every pair of a zoo into N x N matrices",
        "weightscape.studies.grid",
        "weightscape.report.grid_report:render_grid",
    ),
    Command(
        "basins",
        "cluster a grid's models and test what the clusters predict (diagnostic accuracy, "
        "sharpness)",
        "weightscape.studies.basins",
        "weightscape.report.basin_report:render_basins",
    ),
    Command(
        "trajectories",
        "cluster the runs of a zoo at every saved step",
        "weightscape.studies.trajectories",
        "weightscape.report.basin_report:render_trajectories",
    ),
    Command(
        "similarity",
        "cosine similarity of task vectors, spectral clusters scored against zoo tags, t-SNE "
        "and PCA (Gueta et al. 2023)",
        "weightscape.studies.similarity",
        "weightscape.report.similarity_plots:render_similarity",
    ),
    Command(
        "region",
        "regions of a zoo by the generalised loss: PB of In/In'/Ex, extrapolation, moves from "
        "centroids, interpolation across data",
        "weightscape.studies.region",
        "weightscape.report.region_report:render_region",
    ),
    Command(
        "fuse",
        "finetune (BitFit) from the centroid of the other datasets' models and from the base, "
        "per target dataset, and compare test accuracy",
        "weightscape.studies.fuse",
        "weightscape.report.fuse_report:render_fuse",
    ),
    Command(
        "export",
        "write a point (a t on a path, given coefficients, a centroid, or the best point of a "
        "finished interpolate/curve/combine run) as a model folder that from_pretrained loads",
        "weightscape.studies.export",
        "weightscape.report.export_report:render_export",
    ),
    Command(
        "show",
        "list what a results store holds, by anchors, task and kind, or export every point as "
        "one table (parquet, CSV)",
        "weightscape.studies.show",
        "weightscape.report.show_report:render_show",
    ),
    Command(
        "report",
        "write FOLDER/report.html: one self-contained page of a command's or a study's results "
        "(figures, tables as CSV, provenance), read from its files and store; opens offline",
        "weightscape.studies.report",
        "weightscape.report.html.page:render_report",
    ),
)

CUSTOM: dict[str, str] = {"run": "run_command:add_run"}
"""Commands that are no single study: ``run`` runs a study file of many."""


def by_name() -> dict[str, Command]:
    """The generated commands by name."""
    return {c.name: c for c in COMMANDS}
