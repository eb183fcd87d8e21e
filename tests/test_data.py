"""``improv data``: the real download code against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from improv.cli import main
from improv.data import ASAP_COMMIT
from tests.conftest import TEST_DATA


class _Server(http.server.ThreadingHTTPServer):
    """Serves one archive at /archive.zip with Range support; ``cut_after`` bytes into the
    first full response it closes the connection, as a dropped download would."""

    def __init__(self, body: bytes, cut_after: int | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body, self.cut_after, self.ranges = body, cut_after, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/archive.zip"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        if self.path != "/archive.zip":
            self.send_error(404)
            return
        body, start = server.body, 0
        header = self.headers.get("Range")
        server.ranges.append(header)
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if server.cut_after is not None and not header:
            self.wfile.write(body[:server.cut_after])
            self.wfile.flush()
            server.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def serve():
    servers = []

    def start(body: bytes, cut_after: int | None = None) -> _Server:
        server = _Server(body, cut_after)
        # shutdown() waits for the loop's next poll: at the default 0.5 s that was half a
        # second of every test here (8 of them)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                         daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def asap_archive(tamper: bool = False) -> bytes:
    """An archive laid out as GitHub's of ASAP: one top folder, ASAP's metadata.csv (more
    columns than improv keeps), the six real performances of tests/data, and a score file."""
    top = f"asap-dataset-{ASAP_COMMIT}/"
    rows = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in ("maestro-asap", "asap-ecompetition"):
            with open(TEST_DATA / folder / "metadata.csv", newline="") as fh:
                for row in csv.DictReader(fh):
                    data = (TEST_DATA / folder / row["midi_performance"]).read_bytes()
                    if tamper and folder == "asap-ecompetition":
                        data = data[:-1] + bytes([data[-1] ^ 1])
                    zf.writestr(top + row["midi_performance"], data)
                    rows.append({"composer": row["composer"], "title": row["title"],
                                 "folder": str(Path(row["midi_performance"]).parent),
                                 "xml_score": "", **row})
        zf.writestr(top + "Bach/Fugue/bwv_846/xml_score.musicxml", "<score/>")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        zf.writestr(top + "metadata.csv", text.getvalue())
    return buf.getvalue()


def test_asap_download_resumes_checks_and_lays_out_for_training(serve, tmp_path, capsys):
    body = asap_archive()
    server = serve(body, cut_after=len(body) // 3)
    to = tmp_path / "data"
    # The first try is cut off: one line, saying how to go on; the part stays.
    assert main(["data", "download", "asap", "--to", str(to), "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert "run the same command again to resume" in err and "Traceback" not in err
    part = to / ".downloads" / f"asap-dataset-{ASAP_COMMIT[:7]}.zip.part"
    assert part.stat().st_size == len(body) // 3
    # The same command again asks only for the rest, then checks and unpacks.
    sha = hashlib.sha256(body).hexdigest()
    assert main(["data", "download", "asap", "--to", str(to), "--url", server.url,
                 "--sha256", sha]) == 0
    assert server.ranges[-1] == f"bytes={len(body) // 3}-"
    err = capsys.readouterr().err
    assert sha in err and "6 files matched the SHA-256 list" in err
    for folder in ("maestro-asap", "asap-ecompetition"):
        for rel in (TEST_DATA / folder).rglob("*.mid"):
            got = to / folder / rel.relative_to(TEST_DATA / folder)
            assert got.read_bytes() == rel.read_bytes()
        with open(to / folder / "metadata.csv", newline="") as fh:
            header = next(csv.reader(fh))
        assert header == ["composer", "title", "midi_performance", "maestro_midi_performance",
                          "start", "end"]
    assert not list(to.rglob("*.musicxml"))
    # improv train reads the layout: pieces named by metadata.csv, the same split rule.
    from improv.corpus import find_midi_files

    files = find_midi_files(to / "maestro-asap")
    assert len(files) == 4 and {f.piece for f in files} == {
        "Bach/Fugue_bwv_846", "Bach/Fugue_bwv_858", "Bach/Fugue_bwv_867", "Bach/Fugue_bwv_875"}
    assert main(["data", "list", "--to", str(to)]) == 0
    out = capsys.readouterr().out
    files = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
             if line.startswith(("maestro-asap", "asap-ecompetition"))}
    assert files == {"maestro-asap": 4, "asap-ecompetition": 2}, out


def test_a_second_download_reuses_the_checked_archive(serve, tmp_path, capsys):
    server = serve(asap_archive())
    to = tmp_path / "data"
    for _ in range(2):
        assert main(["data", "download", "asap", "--to", str(to), "--url", server.url,
                     "--quiet"]) == 0
    assert len(server.ranges) == 1
    assert "is here already" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["sha256", "tampered", "not a zip", "404", "refused"])
def test_bad_downloads_say_one_line(serve, tmp_path, capsys, case):
    to = tmp_path / "data"
    body = b"<html>not found</html>" if case == "not a zip" else asap_archive(case == "tampered")
    server = serve(body)
    url = {"404": server.url.replace("archive", "missing"),
           "refused": "http://127.0.0.1:9/archive.zip"}.get(case, server.url)
    args = ["data", "download", "asap", "--to", str(to), "--url", url]
    if case == "sha256":
        args += ["--sha256", "0" * 64]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("improv: error:") and "Traceback" not in err
    expected = {"sha256": "is not the expected", "tampered": "does not match its recorded",
                "not a zip": "not a zip archive", "404": "HTTP 404",
                "refused": "cannot connect"}[case]
    assert expected in err.splitlines()[-1]


def test_maestro_layout_is_read_through_its_csv(serve, tmp_path, capsys):
    buf = io.BytesIO()
    src = TEST_DATA / "maestro-asap" / "Bach" / "Fugue"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("maestro-v3.0.0/", "")
        zf.writestr("maestro-v3.0.0/maestro-v3.0.0.csv",
                    "canonical_composer,canonical_title,split,year,midi_filename\n"
                    "Bach,Fugue 846,train,2006,2006/a.midi\nBach,Fugue 858,test,2011,2011/b.midi\n")
        zf.writestr("maestro-v3.0.0/2006/a.midi", (src / "bwv_846" / "Shi05M.mid").read_bytes())
        zf.writestr("maestro-v3.0.0/2011/b.midi", (src / "bwv_858" / "Zhang01M.mid").read_bytes())
    server = serve(buf.getvalue())
    to = tmp_path / "data"
    assert main(["data", "download", "maestro", "--to", str(to), "--url", server.url]) == 0
    from improv.corpus import find_midi_files

    files = find_midi_files(to / "maestro-v3.0.0" / "maestro-v3.0.0.csv")
    assert sorted(f.split for f in files) == ["test", "train"]
    assert all(f.path.is_file() for f in files)
    main(["data", "list", "--to", str(to)])
    assert "maestro-v3.0.0.csv" in capsys.readouterr().out


def test_shipped_model_plays_the_shipped_performances(tmp_path):
    """What the corpus test of `evaluate --music` checks, on tests/data: runs in a plain clone."""
    import json

    out = tmp_path / "music.json"
    assert main(["evaluate", "--music", "--data", str(TEST_DATA / "maestro-asap"), "--split",
                 "all", "--max-files", "2", "--temperatures", "0.8", "--generate-notes", "60",
                 "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    row = result["temperatures"]["0.8"]
    assert result["pieces"] == 2 and row["compare"]["pitch"]["overlap"] > 0.2
    assert 0 <= row["signatures"]["repeat_rate"] < 0.5


def test_split_by_piece_across_the_two_asap_folders():
    """Both shipped folders name pieces through their metadata.csv, as the full sets do."""
    from improv.corpus import find_midi_files

    files = [f for src in ("maestro-asap", "asap-ecompetition")
             for f in find_midi_files(TEST_DATA / src)]
    assert len(files) == 6 and all(f.piece.startswith("Bach/Fugue_bwv_") for f in files)
