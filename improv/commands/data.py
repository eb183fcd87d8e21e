"""``improv data download|list``: get the training data sets, or list what is here
(improv.data does the work)."""

from __future__ import annotations

from pathlib import Path

from improv.data import ASAP_COMMIT, SOURCES, DownloadError, data_dir, describe, download
from improv.table import Column, print_table


def add_parser(sub) -> None:
    """Add ``improv data`` to the command's subparsers."""
    p = sub.add_parser("data", help="download the training data sets, or list what is here",
                       description="Download MAESTRO or ASAP from their official locations "
                       "(checked, resumable) into the layout improv train reads; list what "
                       "is there.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    d = actions.add_parser("download", help="download and unpack a data set",
                           description="asap: ASAP v1.1 (fosfrancesco/asap-dataset, commit "
                           f"{ASAP_COMMIT[:7]}) as maestro-asap/ and asap-ecompetition/, what "
                           "improv train reads by default. maestro: MAESTRO v3.0.0 MIDI as "
                           "maestro-v3.0.0/ (use --data DIR/maestro-v3.0.0/maestro-v3.0.0.csv).")
    d.add_argument("name", choices=sorted(SOURCES), help="which data set")
    d.add_argument("--to", type=Path, help="data folder (default: $IMPROV_DATA, else "
                   "../shared/data beside the checkout, where improv train looks)")
    d.add_argument("--url", help="download from this mirror instead of the official location")
    d.add_argument("--sha256", help="the archive's expected SHA-256 (neither source "
                   "publishes one)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    lst = actions.add_parser("list", help="list the data sets in the data folder")
    lst.add_argument("--to", type=Path, help="data folder (default: as for download)")


def command(args) -> int:
    """Run ``improv data``; return the exit status."""
    root = args.to or data_dir()
    if args.action == "download":
        if args.sha256 and len(args.sha256) != 64:
            raise DownloadError(f"--sha256 must be 64 hex digits, got {args.sha256!r}")
        download(args.name, root, url=args.url, sha256=args.sha256, quiet=args.quiet)
        return 0
    rows = describe(root)
    if not rows:
        print(f"no data sets in {root}; get one with: improv data download asap"
              + (f" --to {args.to}" if args.to else ""))
        return 0
    print(f"data sets in {root}:")
    width = max(len(r["name"]) for r in rows)
    columns = [Column("data set", max(width, 8), align="<"), Column("MIDI files", 10, ","),
               Column("MB", 8, ".1f"), Column("train on it with", 1, align="<")]
    print_table(columns, [[r["name"], r["files"], r["mb"], f"--data {r['data']}"
                           + (" (improv train's default)"
                              if r["name"] in SOURCES["asap"].folders else "")]
                          for r in rows])
    return 0
