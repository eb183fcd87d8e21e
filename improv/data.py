"""``improv data``: download the public training data and lay it out as ``improv train`` expects.

Two sources, from their official locations:

- ``asap``: the ASAP data set (GitHub, fosfrancesco/asap-dataset, pinned to the commit the
  shipped models were trained from). Its performances are split into ``maestro-asap/`` (those
  from MAESTRO v2.0.0) and ``asap-ecompetition/`` (the rest), each with an ASAP-style
  ``metadata.csv``: the two folders the default ``improv train`` reads.
- ``maestro``: MAESTRO v3.0.0, MIDI only (Google's Magenta storage), unpacked as
  ``maestro-v3.0.0/`` with its CSV (``--data DIR/maestro-v3.0.0/maestro-v3.0.0.csv``).

Downloads resume (HTTP ``Range``) from a ``.part`` file, show a progress bar on a terminal,
and are checked: the archive's SHA-256 where one is pinned (``--sha256``), every member's
CRC-32 (zip), and for ASAP each MIDI file against the SHA-256 list in ``improv/datasets/``,
taken from the files the shipped models were trained on. Standard library and tqdm only.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, TextIO

from improv.errors import ImprovError
from improv.paths import DATA_DIR

ASAP_COMMIT = "afc815c75c42e83a79c03feb6da8a35e77d4c6b8"
MANIFESTS = Path(__file__).parent / "datasets"
CHUNK = 1 << 16


class DownloadError(ImprovError, ValueError):
    """A download failed, or what arrived is not what was expected."""


@dataclass(frozen=True)
class Source:
    """A data set to download: where from, what to check, and how to unpack it."""

    name: str
    url: str
    archive: str
    folders: tuple[str, ...]  # what it creates under the data folder
    license: str
    citation: str
    sha256: str | None = None  # of the archive, where published
    manifest: str | None = None  # per-file SHA-256 list in improv/datasets/


SOURCES = {
    "asap": Source(
        "asap",
        f"https://github.com/fosfrancesco/asap-dataset/archive/{ASAP_COMMIT}.zip",
        f"asap-dataset-{ASAP_COMMIT[:7]}.zip", ("maestro-asap", "asap-ecompetition"),
        "CC BY-NC-SA 4.0",
        "Foscarin et al., ASAP, ISMIR 2020; Hawthorne et al., MAESTRO, ICLR 2019",
        manifest=f"asap-{ASAP_COMMIT[:7]}.sha256"),
    "maestro": Source(
        "maestro",
        "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/"
        "maestro-v3.0.0-midi.zip",
        "maestro-v3.0.0-midi.zip", ("maestro-v3.0.0",), "CC BY-NC-SA 4.0",
        "Hawthorne et al., MAESTRO, ICLR 2019"),
}


def data_dir() -> Path:
    """Return ``$IMPROV_DATA`` if set, else ``../shared/data`` beside the checkout (where the
    training presets look)."""
    return Path(os.environ.get("IMPROV_DATA") or DATA_DIR)


def _progress(total: int | None, initial: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=quiet or not sys.stderr.isatty(), leave=False)


def fetch(url: str, dest: Path, quiet: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest.part`` if an earlier try stopped."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "improv-data"})
    except ValueError as exc:  # "unknown url type"
        raise DownloadError(f"{url}: not a URL ({exc})") from None
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part is complete
            part.replace(dest)
            return dest
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        if have and response.status != 206:  # the server ignored Range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        mode = "ab" if have else "wb"
        with open(part, mode) as out, _progress(total, have, dest.name, quiet) as bar:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"{url}: the download stopped ({exc}); run the same "
                                    "command again to resume") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: the download stopped at {size:,} of {total:,} bytes; "
                            "run the same command again to resume")
    part.replace(dest)
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_archive(path: Path, sha256: str | None) -> str:
    """Check an archive's SHA-256 (if given) and every member's CRC; return its SHA-256."""
    got = sha256_of(path)
    if sha256 and got != sha256.lower():
        path.replace(path.with_name(path.name + ".bad"))
        raise DownloadError(f"{path.name}: SHA-256 {got} is not the expected {sha256}; "
                            f"kept as {path.name}.bad; run again to download it afresh")
    try:
        with zipfile.ZipFile(path) as zf:
            broken = zf.testzip()
    except zipfile.BadZipFile as exc:
        path.replace(path.with_name(path.name + ".bad"))
        raise DownloadError(f"{path.name}: not a zip archive ({exc}); kept as "
                            f"{path.name}.bad; run again to download it afresh") from None
    if broken:
        raise DownloadError(f"{path.name}: member {broken} fails its CRC check")
    return got


def _manifest(name: str | None) -> dict[str, str]:
    if not name or not (MANIFESTS / name).is_file():
        return {}
    out = {}
    for line in (MANIFESTS / name).read_text().splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            out[rel] = digest
    return out


def _top(zf: zipfile.ZipFile) -> str:
    """The archive's single top folder with a trailing slash, or ""."""
    tops = {PurePosixPath(n).parts[0] for n in zf.namelist() if n.strip("/")}
    return f"{tops.pop()}/" if len(tops) == 1 and any("/" in n for n in zf.namelist()) else ""


def _safe(rel: str) -> str:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise DownloadError(f"unsafe path in the archive: {rel!r}")
    return str(p)


def unpack_asap(archive: Path, dest: Path, manifest: dict[str, str],
                log: TextIO | None = None) -> dict[str, int]:
    """Unpack ASAP's performances into ``maestro-asap/`` and ``asap-ecompetition/``.

    Each MIDI file listed in ASAP's ``metadata.csv`` goes to the folder of its set, under
    its path in ASAP; each folder gets the rows of its files. Files that the manifest
    lists must match their SHA-256.
    """
    log = log or sys.stderr
    counts = {"maestro-asap": 0, "asap-ecompetition": 0, "checked": 0}
    with zipfile.ZipFile(archive) as zf:
        top = _top(zf)
        try:
            text = zf.read(f"{top}metadata.csv").decode("utf-8")
        except KeyError:
            raise DownloadError(f"{archive.name}: no metadata.csv (is this ASAP?)") from None
        rows = list(csv.DictReader(io.StringIO(text)))
        columns = ["composer", "title", "midi_performance", "maestro_midi_performance",
                   "start", "end"]
        if not rows or "midi_performance" not in rows[0]:
            raise DownloadError(f"{archive.name}: metadata.csv has no midi_performance column")
        columns = [c for c in columns if c in rows[0]]
        kept: dict[str, list[dict]] = {"maestro-asap": [], "asap-ecompetition": []}
        names = set(zf.namelist())
        for row in rows:
            rel = _safe(row["midi_performance"])
            if f"{top}{rel}" not in names:
                print(f"improv data: {rel}: listed in metadata.csv but not in the archive; "
                      "skipped", file=log)
                continue
            folder = "maestro-asap" if row.get("maestro_midi_performance") else \
                "asap-ecompetition"
            data = zf.read(f"{top}{rel}")
            want = manifest.get(f"{folder}/{rel}")
            if want:
                if hashlib.sha256(data).hexdigest() != want:
                    raise DownloadError(f"{archive.name}: {rel} does not match its recorded "
                                        "SHA-256 (a different ASAP version?)")
                counts["checked"] += 1
            out = dest / folder / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            kept[folder].append({c: row.get(c, "") for c in columns})
            counts[folder] += 1
    for folder, folder_rows in kept.items():
        with open(dest / folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(folder_rows)
    return counts


def unpack_maestro(archive: Path, dest: Path, manifest: dict[str, str],
                   log: TextIO | None = None) -> dict[str, int]:
    """Unpack MAESTRO's MIDI files and CSV as they are in the archive (its top folder kept)."""
    count = 0
    with zipfile.ZipFile(archive) as zf:
        top = _top(zf)
        if not top or not any(n.endswith(".csv") for n in zf.namelist()):
            raise DownloadError(f"{archive.name}: expected one top folder with a CSV "
                                "(is this MAESTRO?)")
        for info in zf.infolist():
            rel = _safe(info.filename)
            if info.is_dir() or not rel.lower().endswith((".mid", ".midi", ".csv", ".json")):
                continue
            out = dest / "maestro-v3.0.0" / PurePosixPath(rel).relative_to(top.rstrip("/"))
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            count += rel.lower().endswith((".mid", ".midi"))
    return {"maestro-v3.0.0": count}


UNPACK: dict[str, Callable[..., dict[str, int]]] = {"asap": unpack_asap,
                                                     "maestro": unpack_maestro}


def download(name: str, to: Path | None = None, url: str | None = None,
             sha256: str | None = None, quiet: bool = False, log: TextIO | None = None) -> Path:
    """Download data set ``name`` into ``to`` (default :func:`data_dir`) and unpack it."""
    log = log or sys.stderr
    source = SOURCES[name]
    dest = Path(to) if to else data_dir()
    downloads = dest / ".downloads"
    try:
        downloads.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot make {downloads}: {exc.strerror}") from None
    archive = downloads / source.archive
    url = url or source.url
    if archive.is_file():
        print(f"improv data: {archive} is here already; checking it", file=log)
    else:
        print(f"improv data: downloading {url}", file=log)
        fetch(url, archive, quiet=quiet)
    digest = check_archive(archive, sha256 or source.sha256)
    print(f"improv data: {archive.name}: {archive.stat().st_size:,} bytes, SHA-256 {digest}, "
          "zip CRCs good", file=log)
    counts = UNPACK[name](archive, dest, _manifest(source.manifest), log=log)
    checked = counts.pop("checked", None)
    made = ", ".join(f"{dest / k} ({v} MIDI files)" for k, v in counts.items())
    print(f"improv data: wrote {made}", file=log)
    if checked is not None:
        print(f"improv data: {checked} files matched the SHA-256 list of the shipped models' "
              "training data", file=log)
    print(f"improv data: license {source.license}; cite {source.citation}", file=log)
    return dest


def describe(root: Path | None = None) -> list[dict]:
    """Return what data sets are under ``root``: name, path, MIDI files, megabytes, use."""
    root = Path(root) if root else data_dir()
    rows = []
    if not root.is_dir():
        return rows
    known = {f: s.name for s in SOURCES.values() for f in s.folders}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi")]
        if not files:
            continue
        csvs = sorted(folder.glob("*.csv"))
        use = str(csvs[0]) if folder.name == "maestro-v3.0.0" and csvs else str(folder)
        rows.append({"name": folder.name, "path": str(folder), "files": len(files),
                     "mb": sum(p.stat().st_size for p in files) / 1e6,
                     "source": known.get(folder.name, "-"), "data": use})
    return rows
