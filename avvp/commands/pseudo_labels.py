"""``avvp pseudo-labels``: VALOR's segment-level audio and visual pseudo-labels into one pseudo-label file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from avvp.commands import COMMANDS
from avvp.data.annotations import FULL_DATASET, GT_AUDIO, GT_VISUAL, SPLIT_FILES, annotation_path
from avvp.errors import InputError

if TYPE_CHECKING:
    from avvp.data.import_released import ImportReport
    from avvp.data.labels import WeakLabels
    from avvp.teachers.pseudo_labels import TeacherLabels

log = logging.getLogger(__name__)
AGREEMENT_SPLITS = ("val", "test")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp pseudo-labels``."""
    parser = subparsers.add_parser(
        "pseudo-labels",
        help=COMMANDS["pseudo-labels"],
        description=(
            "Per clip, 1-s segment and modality, the classes of the clip's video-level labels that the "
            "teachers support, as VALOR computes them: exp(logit_scale) * cos(segment embedding, class "
            "prompt) > VALOR's per-class threshold, CLIP ('clip' features) for visual and CLAP "
            "('clap_segments') for audio, read with their prompt embeddings from a raw store written by "
            "'avvp extract'. Or --import-visual/--import-audio: VALOR's released pseudo-label folders. "
            "Writes an HDF5 pseudo-label file with the teachers' identity; with --agreement also the LLP "
            "scores of the pseudo-labels against the dense val/test labels (VALOR: 80.5 audio, 61.7 visual "
            "segment-level F1)."
        ),
    )
    parser.add_argument("--features", help="raw feature store with 'clip' and 'clap_segments' features")
    parser.add_argument("--import-visual", help="VALOR's released CLIP/segment_pseudo_labels folder")
    parser.add_argument("--import-audio", help="VALOR's released CLAP/segment_pseudo_labels folder")
    parser.add_argument("--output", required=True, help="pseudo-label file to write (.h5)")
    parser.add_argument(
        "--labels",
        help=f"weak-label file: the clips to label and their video-level labels (default: {FULL_DATASET} "
        "in --annotations-dir, as VALOR)",
    )
    parser.add_argument(
        "--annotations-dir", default="data/annotations", help="LLP annotations (default: %(default)s)"
    )
    parser.add_argument(
        "--agreement",
        help="also write the LLP scores of the pseudo-labels on the val and test clips (JSON) here",
    )
    for modality in ("visual", "audio"):
        parser.add_argument(
            f"--{modality}-thresholds",
            type=_thresholds,
            help=f"{modality} logit thresholds instead of VALOR's: one number for every class or 25 "
            "comma-separated ones in LLP's class order (recorded in the file)",
        )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars of an import")
    return parser


def _thresholds(value: str) -> list[float]:
    from avvp.data.labels import CLASSES

    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None
    if len(numbers) == 1:
        return numbers * len(CLASSES)
    if len(numbers) != len(CLASSES):
        raise argparse.ArgumentTypeError(f"{len(numbers)} thresholds given; give 1 or {len(CLASSES)}")
    return numbers


def _teachers(
    args: argparse.Namespace, clips: WeakLabels, report: ImportReport
) -> tuple[TeacherLabels, TeacherLabels]:
    """The visual and audio teachers' labels: computed from ``--features`` or read from VALOR's folders."""
    from avvp.teachers.pseudo_labels import AUDIO_KIND, VISUAL_KIND, teacher_labels
    from avvp.teachers.released import released_labels

    imported = (args.import_visual, args.import_audio)
    if args.features and any(imported):
        raise InputError("give either --features or --import-visual/--import-audio, not both")
    if args.features:
        return (
            teacher_labels(args.features, VISUAL_KIND, clips, args.visual_thresholds),
            teacher_labels(args.features, AUDIO_KIND, clips, args.audio_thresholds),
        )
    if args.visual_thresholds or args.audio_thresholds:
        raise InputError("thresholds apply to --features; the released pseudo-labels are already thresholded")
    if not all(imported):
        raise InputError("give --features, or both --import-visual and --import-audio")
    for folder in imported:
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder")
    progress = not args.no_progress
    return (
        released_labels("visual", args.import_visual, clips.video_ids, report, progress),
        released_labels("audio", args.import_audio, clips.video_ids, report, progress),
    )


def run(args: argparse.Namespace) -> int:
    """Compute or import the pseudo-labels, write them (and the agreement); exit code 0."""
    from avvp.data.import_released import ImportReport, write_manifest
    from avvp.data.labels import CLASSES, read_weak_labels
    from avvp.data.pseudo_labels import write_pseudo_labels
    from avvp.evaluation.metrics import format_table
    from avvp.io import write_json
    from avvp.teachers.pseudo_labels import agreement, pair_modalities

    labels_path = Path(args.labels or annotation_path(args.annotations_dir, FULL_DATASET))
    clips = read_weak_labels(labels_path)
    report = ImportReport()
    visual, audio = _teachers(args, clips, report)
    video_ids, audio_labels, visual_labels, one_sided = pair_modalities(visual, audio)
    if not video_ids:
        raise InputError(f"no clip of {labels_path} has pseudo-labels of both modalities")
    if one_sided:
        log.warning("%d clip(s) have pseudo-labels of one modality only and are left out", len(one_sided))
    teacher = {
        "method": "VALOR",
        "visual": visual.identity,
        "audio": audio.identity,
        "labels": str(labels_path),
    }
    write_pseudo_labels(args.output, video_ids, audio_labels, visual_labels, CLASSES, teacher)
    if report.problems:
        manifest = f"{args.output}.problems.tsv"
        write_manifest(manifest, report)
        print(f"{len(report.problems)} missing, extra or invalid released file(s) listed in {manifest}")
    print(
        f"{args.output}: {len(video_ids)} of {len(clips.video_ids)} clips; positive segment-class cells: "
        f"audio {audio_labels.mean():.2%}, visual {visual_labels.mean():.2%}"
    )
    if args.agreement:
        splits = {s: annotation_path(args.annotations_dir, SPLIT_FILES[s]) for s in AGREEMENT_SPLITS}
        gt = [annotation_path(args.annotations_dir, name) for name in (GT_AUDIO, GT_VISUAL)]
        scores = agreement(video_ids, audio_labels, visual_labels, splits, *gt)
        write_json(args.agreement, {"teacher": teacher, "splits": scores})
        for split, values in scores.items():
            print(f"pseudo-labels vs dense {split} labels ({values['videos']} clips):")
            print(format_table(values))
    return 0
