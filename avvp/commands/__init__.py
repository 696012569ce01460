"""Subcommands of the ``avvp`` CLI, one module each (``avvp/commands/<name with _>.py``).

:data:`COMMANDS` names them with their one-line help, so ``avvp --help`` lists every command without
importing any (several import torch); :func:`avvp.cli.build_parser` imports only the module of the command
being run. Each module defines ``add_parser(subparsers)`` (using its help from here) and ``run(args)``.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "build-graphs": "build the audio-visual grounding ground truth (snippet graphs) of each clip",
    "convert-vggish": "convert the TF-Hub VGGish (google/vggish/1) to a PyTorch checkpoint",
    "download": "fetch the clips of one shard and record what is missing",
    "estimate-noise": "estimate the per-class label-noise ratios of a training split (JoMoLD's noise estimation)",
    "evaluate": "score audio and visual prediction files with the LLP protocol",
    "extract": "extract ResNet152 / R(2+1)D-18 / VGGish (or CLIP / CLAP) features of raw clips into an HDF5 shard",
    "fetch-annotations": "download the six LLP annotation files",
    "filter-splits": "restrict the train/val/test split files to the clips that have features",
    "import-features": "import the features LLP's authors released into a feature store",
    "make-demo": "write a small synthetic dataset in LLP's formats (real MP4 clips + AVVP_*.csv labels)",
    "merge-features": "merge shard feature stores (HDF5) into one",
    "parse": "parse your own videos: audible and visible events with their times, a page per video",
    "predict": "predict audio and visual events of a split with a trained model",
    "pretrain": "pretrain the audio-visual grounding encoder on grounding graphs (paper 002, section 3.2)",
    "pseudo-labels": "VALOR's segment-level audio/visual pseudo-labels from CLIP and CLAP (or its released ones)",
    "refine-labels": "remove the modality labels a base model's track exchanges do not support (MA's label refinement)",
    "report": "write the run's report (Markdown + self-contained HTML) with figures",
    "shard": "split the clips of a label file into shard lists (one clip name per line)",
    "standardize-features": "standardise a feature store per dimension with statistics of the training clips",
    "train": "train a parsing model (HAN, Base, GCAA, Adv+Skip, ...) from a YAML config",
    "weak-baseline": "write the every-weak-label-everywhere baseline predictions of a split",
}
"""Command name -> one-line help."""


def module_name(command: str) -> str:
    """The module of ``command`` in this package, e.g. ``avvp.commands.build_graphs``."""
    return f"{__name__}.{command.replace('-', '_')}"
