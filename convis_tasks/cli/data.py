"""``convis data fetch|where|verify``: its arguments; the work is :mod:`convis_tasks.harness.data`'s."""

from __future__ import annotations

from convis_tasks.cli.common import lazy
from convis_tasks.reading.datafolder import DATA_ENV, HF_REPO_ID, REVISION_ENV

HANDLERS = "convis_tasks.harness.data"


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("data", help=f"fetch {HF_REPO_ID}, say where the data is, check a data folder")
    sub = p.add_subparsers(dest="data_command", required=True)
    revision = dict(default=None, help=f"a branch, tag or commit of {HF_REPO_ID} (default: ${REVISION_ENV}, else "
                                       "main)")
    fetch = sub.add_parser("fetch", help="download the dataset into the Hugging Face cache (resumes an interrupted "
                                         "download) and unpack its archives")
    fetch.add_argument("--revision", **revision)
    fetch.add_argument("--local-dir", dest="local_dir", default=None,
                       help=f"download into this folder instead (then set {DATA_ENV} to it: the line is printed)")
    fetch.set_defaults(func=lazy(f"{HANDLERS}:fetch_command"))
    where = sub.add_parser("where", help="the data folder runs read, how it was found, and the rankings file "
                                         "(exit status 1: none)")
    where.add_argument("--revision", **revision)
    where.set_defaults(func=lazy(f"{HANDLERS}:where_command"))
    verify = sub.add_parser("verify", help="check a data folder: pair file, rankings, every video present with a "
                                           "readable header, the published set (exit status 1 on a problem)")
    verify.add_argument("dir", nargs="?", default=None,
                        help=f"the data folder (default: the one runs read: ${DATA_ENV}, else the cache)")
    verify.add_argument("--revision", **revision)
    verify.add_argument("--any-data", dest="any_data", action="store_true",
                        help="a data set of your own: do not fail when it is not the published ConViS-Bench")
    verify.set_defaults(func=lazy(f"{HANDLERS}:verify_command"))
