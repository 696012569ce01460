"""``avvp import-features``: turn the released per-clip ``.npy`` features into one feature store."""

from __future__ import annotations

import argparse
from pathlib import Path

from avvp.commands import COMMANDS
from avvp.data.annotations import FULL_DATASET, annotation_path
from avvp.data.features import STORAGE_DTYPES
from avvp.data.import_released import import_released, write_manifest
from avvp.data.labels import read_weak_labels
from avvp.errors import InputError

KIND_OPTIONS = {
    "vggish": "vggish",
    "res152": "resnet152",
    "r2plus1d": "r2plus1d",
    "clip": "clip",
    "clap": "clap",
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``import-features``."""
    parser = subparsers.add_parser(
        "import-features",
        help=COMMANDS["import-features"],
        description=(
            "Read the released LLP features (one <11-character YouTube id>.npy per clip: VGGish 10x128, "
            "ResNet152 80x2048, R(2+1)D-18 10x512) and VALOR's (CLIP/features 10x768, CLAP/features "
            "64x768), check shape and finiteness, and write them into one HDF5 feature store keyed by LLP "
            "filename (VALOR's released pseudo-labels: 'avvp pseudo-labels --import-visual/--import-audio'). Missing, extra and invalid files are listed in "
            "OUTPUT.problems.tsv and summarised; they never stop the import."
        ),
    )
    parser.add_argument("--vggish", help="folder of VGGish .npy files (10x128)")
    parser.add_argument("--res152", help="folder of ResNet152 .npy files (80x2048)")
    parser.add_argument("--r2plus1d", help="folder of R(2+1)D-18 .npy files (10x512)")
    parser.add_argument("--clip", help="folder of VALOR's CLIP ViT-L/14 .npy files (CLIP/features, 10x768)")
    parser.add_argument(
        "--clap", help="folder of VALOR's CLAP feature-map .npy files (CLAP/features, 64x768)"
    )
    parser.add_argument("--output", required=True, help="feature store to write (.h5)")
    parser.add_argument(
        "--clips",
        help="label file listing the clips to import (default: AVVP_dataset_full.csv in --annotations-dir)",
    )
    parser.add_argument(
        "--annotations-dir", default="data/annotations", help="LLP annotations (default: %(default)s)"
    )
    parser.add_argument(
        "--dtype",
        choices=STORAGE_DTYPES,
        default="float32",
        help="storage precision; float16 halves the file (ResNet152 at LLP scale: ~7.8 GB -> ~3.9 GB)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Import, print a summary per kind, write the problem manifest; exit code 0."""
    folders = {kind: getattr(args, option) for option, kind in KIND_OPTIONS.items() if getattr(args, option)}
    if not folders:
        raise InputError("give at least one of --vggish, --res152, --r2plus1d, --clip, --clap")
    for kind, folder in folders.items():
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder (given for {kind})")
    clips = read_weak_labels(args.clips or annotation_path(args.annotations_dir, FULL_DATASET)).video_ids
    report = import_released(folders, clips, args.output, dtype=args.dtype)
    manifest = f"{args.output}.problems.tsv"
    write_manifest(manifest, report)
    for kind in folders:
        print(
            f"{kind}: {report.written[kind]} of {len(clips)} clips written, "
            f"{report.count(kind, 'missing')} missing, {report.count(kind, 'extra')} extra, "
            f"{report.count(kind, 'invalid')} invalid"
        )
    print(f"store: {args.output}; problems listed in {manifest}")
    return 0
