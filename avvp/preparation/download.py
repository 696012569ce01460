"""Fetching the clips of one shard: from a local copy, or from YouTube with yt-dlp, with a manifest.

Every clip ends as ``<video_dir>/<LLP filename>.<ext>`` (a symbolic link when it comes from a local copy).
The shard's manifest records, per clip, what happened: ``present`` (already there from an earlier run),
``linked`` (found in the local copy), ``downloaded``, ``unavailable`` (the download failed or the local copy
lacks it) or ``invalid`` (a malformed name). The job always succeeds; later stages read the manifest, work
on the clips that exist and report how many are missing. Rerunning resumes: finished clips are skipped.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from avvp.data.labels import parse_clip_name
from avvp.errors import InputError
from avvp.io import VIDEO_SUFFIXES, atomic_path, read_tsv, write_tsv

log = logging.getLogger(__name__)

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
MANIFEST_COLUMNS = ("clip", "status", "path", "detail")
AVAILABLE = frozenset({"present", "linked", "downloaded"})
DOWNLOAD_TIMEOUT_S = 600


@dataclass(frozen=True)
class ClipStatus:
    """What happened to one clip: ``status`` is one of present, linked, downloaded, unavailable, invalid."""

    clip: str
    status: str
    path: str = ""
    detail: str = ""

    @property
    def available(self) -> bool:
        """Whether the clip's video exists at ``path``."""
        return self.status in AVAILABLE


Downloader = Callable[[list[str]], tuple[bool, str]]
"""Runs one download command (an argument list); returns ``(succeeded, message)``."""


def run_command(command: list[str]) -> tuple[bool, str]:
    """Run ``command`` without a shell; return whether it exited 0 and its last line of error output."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {DOWNLOAD_TIMEOUT_S} s"
    lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
    return done.returncode == 0, lines[-1] if lines else f"exit code {done.returncode}"


def ytdlp_command(
    youtube_id: str, start: float, end: float, output: Path, executable: str = "yt-dlp"
) -> list[str]:
    """The yt-dlp argument list fetching seconds ``start``..``end`` of a video as MP4 at ``output``.

    Raises ``ValueError`` for an id that is not 11 characters of ``[A-Za-z0-9_-]``.
    """
    if not YOUTUBE_ID.fullmatch(youtube_id):
        raise ValueError(f"invalid YouTube id {youtube_id!r}: expected 11 characters of [A-Za-z0-9_-]")
    return [
        executable,
        "--quiet",
        "--no-warnings",
        "--no-playlist",
        "--format",
        "bv*[height<=480]+ba/b[height<=480]/b",
        "--download-sections",
        f"*{start:g}-{end:g}",
        "--force-keyframes-at-cuts",
        "--merge-output-format",
        "mp4",
        "--output",
        str(output),
        "--",
        f"https://www.youtube.com/watch?v={youtube_id}",
    ]


def _existing(directory: Path, stems: Sequence[str]) -> Path | None:
    """The first ``directory/<stem><ext>`` that exists, trying stems in order, or None."""
    for stem in stems:
        for ext in VIDEO_SUFFIXES:
            candidate = directory / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None


def fetch_clip(
    clip: str,
    video_dir: Path,
    source_dir: Path | None = None,
    downloader: Downloader | None = run_command,
    executable: str = "yt-dlp",
) -> ClipStatus:
    """Make ``clip`` available in ``video_dir`` and say how.

    With ``source_dir`` the clip is looked up there as ``<clip>.<ext>`` or ``<youtube id>.<ext>`` and
    linked; otherwise (when ``downloader`` is given) its 10 s are downloaded with yt-dlp.
    """
    try:
        youtube_id, start, end = parse_clip_name(clip)
    except ValueError as err:
        return ClipStatus(clip, "invalid", detail=str(err))
    found = _existing(video_dir, [clip])
    if found is not None:
        return ClipStatus(clip, "present", str(found))
    if source_dir is not None:
        source = _existing(source_dir, [clip, youtube_id])
        if source is None:
            return ClipStatus(clip, "unavailable", detail=f"not in {source_dir}")
        link = video_dir / f"{clip}{source.suffix}"
        link.symlink_to(source.resolve())
        return ClipStatus(clip, "linked", str(link))
    if downloader is None:
        return ClipStatus(clip, "unavailable", detail="not downloaded (no downloader)")
    partial = video_dir / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    part_file = partial / f"{clip}.mp4"
    ok, message = downloader(ytdlp_command(youtube_id, start, end, part_file, executable))
    if not ok or not part_file.is_file():
        return ClipStatus(clip, "unavailable", detail=message if not ok else "yt-dlp wrote no file")
    target = video_dir / f"{clip}.mp4"
    part_file.replace(target)
    return ClipStatus(clip, "downloaded", str(target))


def fetch_shard(
    clips: Sequence[str],
    video_dir: str | Path,
    source_dir: str | Path | None = None,
    downloader: Downloader | None = run_command,
    executable: str = "yt-dlp",
) -> list[ClipStatus]:
    """Fetch every clip of a shard (see :func:`fetch_clip`); returns one status per clip, in order.

    Raises :class:`InputError` when clips must be downloaded but ``executable`` is not installed.
    """
    video_dir = Path(video_dir)
    video_dir.mkdir(parents=True, exist_ok=True)
    source = Path(source_dir) if source_dir is not None else None
    if source is not None and not source.is_dir():
        raise InputError(f"{source}: source_dir is not a directory")
    if source is None and downloader is run_command and shutil.which(executable) is None:
        needed = [c for c in clips if _existing(video_dir, [c]) is None]
        if needed:
            raise InputError(
                f"{executable}: not found, but {len(needed)} clip(s) must be downloaded; install it with "
                "'pip install avvp[download]' or set source_dir to a folder of downloaded clips"
            )
    statuses = [
        fetch_clip(clip, video_dir, source, downloader, executable)
        for clip in tqdm(clips, desc="clips", unit="clip")
    ]
    for status in statuses:
        if not status.available:
            log.warning("%s: %s (%s)", status.clip, status.status, status.detail)
    return statuses


def write_manifest(path: str | Path, statuses: Sequence[ClipStatus]) -> None:
    """Write the statuses as a tab-separated ``clip, status, path, detail`` table, atomically."""
    write_tsv(path, MANIFEST_COLUMNS, ((s.clip, s.status, s.path, s.detail) for s in statuses))


def read_manifest(path: str | Path) -> list[ClipStatus]:
    """Read a manifest written by :func:`write_manifest`."""
    rows = read_tsv(path, MANIFEST_COLUMNS, "download manifest")
    return [ClipStatus(row["clip"], row["status"], row["path"], row["detail"]) for row in rows]


def write_video_list(path: str | Path, statuses: Sequence[ClipStatus]) -> None:
    """Write the paths of the available clips, one per line, atomically (the extraction stage's input)."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{s.path}\n" for s in statuses if s.available), encoding="utf-8")
