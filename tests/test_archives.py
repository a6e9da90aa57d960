"""Unpacking a dataset's archives (harness/archives.py): lmms-eval's grouping of split tar parts, every member in
place, and the members that must never be written (escaping, links, replacing a file)."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from convis_tasks.harness.archives import TEMP_SUFFIX, ArchiveError, archive_groups, unpack_all
from stub_hub import tar_bytes, zip_bytes


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_zip_and_tar_gz_members_land_at_their_paths(tmp_path):
    src = tmp_path / "src"
    a = _write(src / "videos.zip", zip_bytes({"videos/a.mp4": b"A" * 10, "videos/sub/b.mp4": b"B"}))
    c = _write(src / "more" / "extra.tar.gz", tar_bytes({"./extra/c.mp4": b"C" * 3}))
    dest = tmp_path / "dest"
    assert unpack_all(archive_groups([a, c, src / "ConVIS.jsonl"]), dest) == 3
    assert (dest / "videos" / "a.mp4").read_bytes() == b"A" * 10
    assert (dest / "videos" / "sub" / "b.mp4").read_bytes() == b"B"
    assert (dest / "extra" / "c.mp4").read_bytes() == b"CCC"  # relative to the folder, not to the archive's folder


def test_split_tar_parts_are_one_archive_in_numeric_order(tmp_path):
    whole = tar_bytes({f"v/{i:02d}.mp4": bytes([i]) * 700 for i in range(12)}, mode="w")
    size = -(-len(whole) // 11)
    parts = [_write(tmp_path / "src" / f"videos_{i + 1}.tar", whole[i * size:(i + 1) * size]) for i in range(11)]
    groups = archive_groups(reversed(parts))
    assert groups == [parts]  # videos_10 after videos_9, not after videos_1
    assert unpack_all(groups, tmp_path / "dest") == 12
    assert (tmp_path / "dest" / "v" / "11.mp4").read_bytes() == bytes([11]) * 700


def test_two_independent_tars_of_one_name_are_both_unpacked(tmp_path):
    one = _write(tmp_path / "clips_1.tar", tar_bytes({"a.mp4": b"a"}, mode="w"))
    two = _write(tmp_path / "clips_2.tar", tar_bytes({"b.mp4": b"b"}, mode="w"))
    assert unpack_all(archive_groups([one, two]), tmp_path / "dest") == 2


@pytest.mark.parametrize("name", ["../evil.mp4", "videos/../../evil.mp4", "/tmp/evil.mp4", "..\\evil.mp4"])
def test_a_member_leading_out_of_the_folder_is_refused(tmp_path, name):
    archive = _write(tmp_path / "src" / "bad.zip", zip_bytes({"videos/ok.mp4": b"ok", name: b"evil"}))
    dest = tmp_path / "data" / "dest"
    with pytest.raises(ArchiveError, match=r"bad\.zip: member .* leads out of") as refused:
        unpack_all(archive_groups([archive]), dest)
    assert "symlinked" not in str(refused.value)  # the name itself is refused, before any path is made
    assert not (tmp_path / "data" / "evil.mp4").exists() and not (tmp_path / "evil.mp4").exists()


def test_a_symlinked_folder_inside_the_target_does_not_lead_out(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "outside").mkdir()
    (dest / "videos").symlink_to(tmp_path / "outside")
    archive = _write(tmp_path / "v.zip", zip_bytes({"videos/a.mp4": b"a"}))
    with pytest.raises(ArchiveError, match="through a symlinked folder"):
        unpack_all(archive_groups([archive]), dest)
    assert not any((tmp_path / "outside").iterdir())


def test_link_members_are_refused(tmp_path):
    tar = _write(tmp_path / "links.tar", tar_bytes({"a.mp4": b"a"}, mode="w", links={"b.mp4": "/etc/passwd"}))
    with pytest.raises(ArchiveError, match="'b.mp4' is a link"):
        unpack_all(archive_groups([tar]), tmp_path / "dest")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("c.mp4")
        info.external_attr = (0o120777 << 16)  # a symlink, as Info-ZIP stores one
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="'c.mp4' is not a regular file"):
        unpack_all(archive_groups([_write(tmp_path / "links.zip", buffer.getvalue())]), tmp_path / "dest2")


def test_a_member_replacing_a_dataset_file_or_another_members_file_is_refused(tmp_path):
    archive = _write(tmp_path / "v.zip", zip_bytes({"ConVIS.jsonl": b"{}"}))
    with pytest.raises(ArchiveError, match="would replace the dataset's own file ConVIS.jsonl"):
        unpack_all(archive_groups([archive]), tmp_path / "dest", protected=["ConVIS.jsonl"])
    one = _write(tmp_path / "a.zip", zip_bytes({"v/x.mp4": b"1"}))
    two = _write(tmp_path / "b.tar.gz", tar_bytes({"v/x.mp4": b"2"}))
    with pytest.raises(ArchiveError, match=r"b\.tar\.gz: member 'v/x.mp4' was already unpacked from a\.zip"):
        unpack_all(archive_groups([one, two]), tmp_path / "dest2")


def test_a_truncated_archive_is_an_error_naming_it(tmp_path):
    whole = tar_bytes({"a.mp4": b"a" * 5000})
    cut = _write(tmp_path / "cut.tar.gz", whole[: len(whole) // 2])
    with pytest.raises(ArchiveError, match=r"cut\.tar\.gz: not a readable archive"):
        unpack_all(archive_groups([cut]), tmp_path / "dest")


def test_unpacking_again_rewrites_every_file_and_drops_leftover_temporaries(tmp_path):
    archive = _write(tmp_path / "v.zip", zip_bytes({"videos/a.mp4": b"whole file"}))
    dest = tmp_path / "dest"
    _write(dest / "videos" / "a.mp4", b"cut")  # what an interrupted unpacking left
    _write(dest / "videos" / ("b.mp4" + TEMP_SUFFIX), b"half")
    assert unpack_all(archive_groups([archive]), dest) == 1
    assert (dest / "videos" / "a.mp4").read_bytes() == b"whole file"
    assert sorted(p.name for p in (dest / "videos").iterdir()) == ["a.mp4"]


def test_a_symlinked_file_in_the_target_is_replaced_not_written_through(tmp_path):
    blob = _write(tmp_path / "blob", b"the cache's blob")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.mp4").symlink_to(blob)
    archive = _write(tmp_path / "v.tar", tar_bytes({"a.mp4": b"new"}, mode="w"))
    unpack_all(archive_groups([archive]), dest)
    assert blob.read_bytes() == b"the cache's blob" and not (dest / "a.mp4").is_symlink()
    assert tarfile.is_tarfile(archive)
