"""``convis data fetch|where|verify``: get ConViS-Bench, say where it is, check a data folder.

Where the data is is :mod:`convis_tasks.reading.datafolder`'s rule; fetching is :mod:`convis_tasks.harness.fetch`'s;
the checks of ``verify`` are those of the loader and the preflight (:func:`~convis_tasks.reading.documents.
scan_data_folder`: the pair file and the rankings read strictly, every video located by the one rule; the one
header probe, :func:`~convis_tasks.video.decode.header_problem`).
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from convis_tasks.console import say
from convis_tasks.errors import InputError
from convis_tasks.harness.doctor import check_decoders
from convis_tasks.harness.fetch import fetch_data
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.datafolder import (DATA_ENV, DOWNLOAD_HINT, HF_REPO_ID, PAIR_FILE, DataLocation,
                                             DataNotFoundError, locate_data_dir, not_found_message, resolve_rankings)
from convis_tasks.reading.documents import scan_data_folder
from convis_tasks.reading.published import data_identity
from convis_tasks.safetext import terminal
from convis_tasks.video.decode import header_problem

SHOWN = 10  # problems listed one per line; the rest are counted


def fetch_command(args: argparse.Namespace) -> int:
    """``convis data fetch``: download (or finish downloading) the dataset; print the data folder, and for
    ``--local-dir`` the line that makes the runs read it."""
    if os.environ.get(DATA_ENV) and not args.local_dir:
        say(f"note: {DATA_ENV} is set ({os.environ[DATA_ENV]}): runs read that folder, not the one fetched here")
    fetched = fetch_data(args.revision, args.local_dir)
    how = "from the hub" if fetched.online else "from the Hugging Face cache (offline)"
    unpacked = f"; {fetched.unpacked} files unpacked from {fetched.archives} archive(s)" if fetched.archives else ""
    say(f"{HF_REPO_ID} at commit {fetched.commit} {how}{unpacked}: data folder {fetched.folder}")
    print(fetched.folder)
    if args.local_dir:
        print(f"export {DATA_ENV}={shlex.quote(str(fetched.folder))}")
    return 0


def _described(location: DataLocation) -> str:
    return location.source + (f": {location.detail}" if location.detail else "")


def where_command(args: argparse.Namespace) -> int:
    """``convis data where``: the data folder a run would read and how it was found (exit status 1: none)."""
    location = locate_data_dir(None, args.revision)
    if location is None:
        print("data folder: none")
        say(not_found_message(args.revision))
        return 1
    print(f"data folder: {location.path}")
    print(f"found by: {_described(location)}")
    try:
        print(f"rankings: {resolve_rankings(location.path)}")
    except DataNotFoundError as exc:
        print(f"rankings: none ({exc}; needed only by the convis_retrieval tasks)")
    return 0


@dataclass(frozen=True)
class Finding:
    """One check of ``convis data verify``: its line, and the problems under it (none: it passed)."""

    line: str
    problems: tuple[str, ...] = ()


def verify_folder(root: Path, any_data: bool = False) -> list[Finding]:
    """The checks of a data folder, in order. The pair file and rankings are read as the loaders read them, every
    video is located by the one rule and the header of each file is probed; last, whether it is the published
    ConViS-Bench (:func:`~convis_tasks.reading.published.data_identity`; other data is a problem unless
    ``any_data``)."""
    try:
        truth = load_ground_truth(root / PAIR_FILE)
        scan = scan_data_folder(root)
    except InputError as exc:
        return [Finding("annotation files", (str(exc),))]
    findings = [Finding(f"{PAIR_FILE}: {len(truth.pairs)} pairs")]
    try:
        findings.append(Finding(f"rankings: {resolve_rankings(root)}"))
    except DataNotFoundError:
        findings.append(Finding("rankings: none (needed only by the convis_retrieval tasks)"))
    decoder = tuple(f"{c.name}: {c.detail} (fix: {c.fix})" for c in check_decoders() if c.blocks)
    files: dict[str, str] = {}  # file -> the first name (as written) that located it
    for video, path in sorted(scan.found.items()):
        files.setdefault(os.path.realpath(path), video)
    unreadable = [] if decoder else [f"{video}: {path} {why}" for path, video in sorted(files.items())
                                     if (why := header_problem(path))]
    names = len(scan.found) + len(scan.missing)
    readable = "headers not probed" if decoder else f"{len(files) - len(unreadable)} with a readable header"
    findings.append(Finding(f"videos: {len(scan.found)} of {names} names found ({len(files)} files, {readable})",
                            (*scan.problems, *decoder, *unreadable)))
    identity = data_identity(root)
    other = () if identity.published or any_data else (
        "not the published ConViS-Bench: its tables and submissions will say so, and `convis validate` refuses its "
        "leaderboard submissions (fix: `convis data fetch`, or --any-data to check a data set of your own)",)
    findings.append(Finding(f"data: {identity.label()}", other))
    if identity.retrieval is not None:
        findings.append(Finding(f"retrieval: {identity.retrieval.label()}"))
    return findings


def verify_command(args: argparse.Namespace) -> int:
    """``convis data verify [DIR]``: every check of a data folder; exit status 1 when one fails."""
    try:
        location = locate_data_dir(args.dir, args.revision)
        if location is None:
            raise DataNotFoundError(not_found_message(args.revision))
    except DataNotFoundError as exc:  # no pair file where asked: the first check failed
        print(f"FAIL  {terminal(str(exc))}")
        say(f"no data folder to verify (fix: {DOWNLOAD_HINT})")
        return 1
    print(f"data folder: {location.path} ({_described(location)})")
    problems = 0
    for finding in verify_folder(location.path, args.any_data):
        print(f"{'FAIL' if finding.problems else 'ok':<4}  {terminal(finding.line)}")
        for line in finding.problems[:SHOWN]:
            print(f"      {terminal(line)}")
        if len(finding.problems) > SHOWN:
            print(f"      ... and {len(finding.problems) - SHOWN} more")
        problems += len(finding.problems)
    if problems:
        say(f"{problems} problem(s) in {location.path}")
        return 1
    say(f"{location.path}: every check passed")
    return 0
