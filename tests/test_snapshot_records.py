"""snapshots.bin's records are independent: a damaged record is skipped with a warning naming
its byte offset and costs only itself, a torn last record is ignored silently, a bad header
makes the file unreadable (a ConfigError naming it, exit 2), and resume's truncation keeps
every intact record up to its checkpoint. Offsets are worked out here from the file format
(nntrain/snapshots.py's docstring), not from the reader's own helpers."""

import json
import shutil
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
import yaml

from conftest import CONFIGS
from nntrain import load_config, train
from nntrain.pictures import parse_at
from nntrain.registry import ConfigError
from nntrain.snapshots import (FILE_NAME, MAGIC, RECORD, SnapshotFile, load_snapshots,
                               read_snapshots, truncate_snapshots)

EPOCHS = list(range(0, 41, 2))  # 40 epochs, snapshot_every: 2
MIDDLE = 10  # the record of epoch 20


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    raw = yaml.safe_load((CONFIGS / "xor.yaml").read_text())
    raw["train"].update(epochs=40, snapshot_every=2)
    return train(load_config(raw=raw), out=tmp_path_factory.mktemp("trained") / "r").path


@pytest.fixture
def run(trained_run, tmp_path):
    """A fresh copy of the trained run for each test to damage."""
    return shutil.copytree(trained_run, tmp_path / "r")


class Layout:
    """Where the header ends and each record starts, read from the file as its format says."""

    def __init__(self, data: bytes):
        length = struct.unpack_from("<I", data, len(MAGIC))[0]
        self.start = len(MAGIC) + 4 + length
        self.header = json.loads(data[len(MAGIC) + 4:self.start])
        self.record = RECORD.size + RECORD.unpack_from(data, self.start)[2]

    def at(self, i: int) -> int:
        return self.start + i * self.record


def read(path):
    """(epochs read, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epochs = [s.epoch for s in read_snapshots(path)]
    return epochs, [str(w.message) for w in caught]


def truncate(path, last_epoch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        truncate_snapshots(path, last_epoch)
    return [str(w.message) for w in caught]


def damaged(run, change):
    """Apply ``change(data: bytearray, layout)`` to the run's snapshots.bin; its path, the
    original bytes and the layout."""
    path = run / FILE_NAME
    original = path.read_bytes()
    layout = Layout(original)
    data = bytearray(original)
    change(data, layout)
    path.write_bytes(bytes(data))
    return path, original, layout


def records(original, layout, epochs):
    """The original file's header and the records of ``epochs``, byte for byte."""
    return original[:layout.start] + b"".join(
        original[layout.at(EPOCHS.index(e)):layout.at(EPOCHS.index(e) + 1)] for e in epochs)


def without(*epochs):
    return [e for e in EPOCHS if e not in epochs]


def test_the_run_has_the_records_these_tests_damage(run):
    assert read(run / FILE_NAME) == (EPOCHS, [])
    data = (run / FILE_NAME).read_bytes()
    layout = Layout(data)
    assert layout.at(len(EPOCHS)) == len(data)  # equal records, nothing after the last
    assert layout.header["names"] == ["W1", "b1", "W2", "b2"]


# -- a damaged middle record costs only itself ------------------------------------------


def test_a_flipped_payload_byte_skips_that_record_only(run):
    def flip(data, layout):
        data[layout.at(MIDDLE) + RECORD.size + 17] ^= 0x40

    path, original, layout = damaged(run, flip)
    epochs, said = read(path)
    assert epochs == without(20)
    assert len(said) == 1 and f"at byte {layout.at(MIDDLE)} " in said[0]
    assert "CRC" in said[0] and "\n" not in said[0]
    with pytest.warns(UserWarning, match="damaged snapshot record"):
        snaps = read_snapshots(path)
    model = np.load(run / "model.npz")
    assert np.array_equal(snaps[-1].params[0], model["W1"])  # later records' contents intact


def test_any_byte_of_a_middle_record_damaged_costs_that_record_only(run):
    """Every byte of the record, magic, epoch, size, CRC and payload, flipped in turn: the CRC
    covers the payload, the other fields are checked (an epoch field by the epochs' order)."""
    path = run / FILE_NAME
    original = path.read_bytes()
    layout = Layout(original)
    for i in range(layout.record):
        data = bytearray(original)
        data[layout.at(MIDDLE) + i] ^= 0xFF
        path.write_bytes(bytes(data))
        epochs, said = read(path)
        assert epochs == without(20), i
        assert len(said) == 1 and f"at byte {layout.at(MIDDLE)} " in said[0], (i, said)


@pytest.mark.parametrize("size", [10**12, 2**64 - 1, 0, 8])
def test_a_middle_records_bad_size_skips_that_record_only(run, size):
    def bad_size(data, layout):
        struct.pack_into("<Q", data, layout.at(MIDDLE) + 12, size)

    path, original, layout = damaged(run, bad_size)
    epochs, said = read(path)
    assert epochs == without(20)
    assert len(said) == 1 and f"at byte {layout.at(MIDDLE)} " in said[0]
    assert f"payload size {size}" in said[0]
    assert truncate(path, 30)  # resume: the damaged bytes and the records after 30 go
    assert path.read_bytes() == records(original, layout, without(20, 32, 34, 36, 38, 40))


def test_a_first_records_bogus_size_loses_only_the_first(run):
    def bad_size(data, layout):
        struct.pack_into("<Q", data, layout.start + 12, 2**40)

    path, original, layout = damaged(run, bad_size)
    epochs, said = read(path)
    assert epochs == without(0)
    assert len(said) == 1 and f"at byte {layout.start} " in said[0]
    truncate(path, 40)
    assert read(path) == (without(0), [])


def test_a_corrupt_magic_skips_that_record_only(run):
    def bad_magic(data, layout):
        data[layout.at(MIDDLE):layout.at(MIDDLE) + 4] = b"SNAX"

    path, original, layout = damaged(run, bad_magic)
    epochs, said = read(path)
    assert epochs == without(20)
    assert len(said) == 1 and f"at byte {layout.at(MIDDLE)} " in said[0]


def test_bytes_lost_from_a_middle_record_resynchronise_on_the_next(run):
    def cut(data, layout):
        del data[layout.at(MIDDLE) + 30:layout.at(MIDDLE) + 70]  # the rest is shifted

    path, original, layout = damaged(run, cut)
    epochs, said = read(path)
    assert epochs == without(20)
    assert len(said) == 1 and f"at byte {layout.at(MIDDLE)} " in said[0]
    assert f"({layout.record - 40} bytes)" in said[0]


def test_several_damaged_records_each_cost_only_themselves(run):
    def several(data, layout):
        data[layout.at(3) + RECORD.size] ^= 1  # epoch 6: payload
        data[layout.at(4)] ^= 1  # epoch 8: magic, just after
        struct.pack_into("<q", data, layout.at(15) + 4, 3)  # epoch 30 says 3: out of order
        data[layout.at(20) - 5] ^= 1  # epoch 38: payload

    path, original, layout = damaged(run, several)
    epochs, said = read(path)
    assert epochs == without(6, 8, 30, 38)
    assert [int(s.split("at byte ")[1].split()[0]) for s in said] == [
        layout.at(3), layout.at(15), layout.at(19)]  # 6 and 8 adjoin: one stretch
    assert "out of order" in said[1]


def test_an_epoch_field_damaged_past_the_last_is_out_of_order(run):
    def late(data, layout):
        struct.pack_into("<q", data, layout.at(2) + 4, 10**6)  # epoch 4 says 1000000

    path, original, layout = damaged(run, late)
    epochs, said = read(path)
    assert epochs == without(4)
    assert len(said) == 1 and "epoch 1000000 is out of order" in said[0]
    truncate(path, 40)  # not "after the checkpoint": it is damaged, and dropped as such
    assert path.read_bytes() == records(original, layout, without(4))


# -- a torn last record is not damage -----------------------------------------------------


def test_a_torn_last_record_is_ignored_silently_and_cut_on_resume(run):
    path = run / FILE_NAME
    whole = path.read_bytes()
    layout = Layout(whole)
    for kept in (1, 3, 4, 13, RECORD.size, RECORD.size + 1, layout.record - 1):
        path.write_bytes(whole[:layout.at(20) + kept])  # killed mid-write of epoch 40's
        assert read(path) == (without(40), []), kept
        assert truncate(path, 40) == []
        assert path.read_bytes() == whole[:layout.at(20)], kept


def test_a_whole_last_record_that_fails_its_crc_is_damage_not_a_tear(run):
    def zeros(data, layout):
        data[-8:] = bytes(8)

    path, original, layout = damaged(run, zeros)
    epochs, said = read(path)
    assert epochs == without(40)
    assert len(said) == 1 and f"at byte {layout.at(20)} " in said[0]


def test_a_short_tail_that_is_not_a_record_begun_is_damage(run):
    path = run / FILE_NAME
    with open(path, "ab") as f:
        f.write(b"garbage")  # no SNAP: the writer never starts a record like this
    epochs, said = read(path)
    assert epochs == EPOCHS
    assert len(said) == 1 and f"at byte {Layout(path.read_bytes()).at(21)} " in said[0]


def test_a_tail_beginning_a_record_of_the_wrong_size_is_damage(run):
    path = run / FILE_NAME
    with open(path, "ab") as f:
        f.write(RECORD.pack(b"SNAP", 42, 5, 0))  # shorter than a record, but not one begun
    assert read(path)[0] == EPOCHS and len(read(path)[1]) == 1


# -- resume's truncation ------------------------------------------------------------------


def test_truncation_keeps_every_intact_record_up_to_the_checkpoint(run):
    def flip(data, layout):
        data[layout.at(MIDDLE) + RECORD.size] ^= 1

    path, original, layout = damaged(run, flip)
    said = truncate(path, 31)
    assert len(said) == 1 and "dropped" in said[0] and f"at byte {layout.at(MIDDLE)} " in said[0]
    assert path.read_bytes() == records(original, layout, [e for e in without(20) if e <= 31])
    assert read(path) == ([e for e in without(20) if e <= 31], [])


def test_truncation_leaves_an_unchanged_file_alone(run):
    path = run / FILE_NAME
    before = path.stat()
    assert truncate(path, 40) == [] and truncate(path, 1000) == []
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_symlink_is_refused_not_written_through(run, tmp_path):
    path = run / FILE_NAME
    victim = tmp_path / "victim.bin"
    shutil.move(path, victim)
    original = victim.read_bytes()
    path.symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link, not a regular file"):
        truncate(path, 10)
    with pytest.raises(ConfigError, match="symbolic link"):
        SnapshotFile(path, ["b1"], [np.zeros(3)])
    assert victim.read_bytes() == original


def test_a_resumed_run_keeps_the_intact_records_around_a_damaged_one(run):
    from nntrain.resume import resume

    def flip(data, layout):
        data[layout.at(MIDDLE) + RECORD.size] ^= 1

    damaged(run, flip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resume(run, ["train.epochs=50"])
    assert read(run / FILE_NAME) == (without(20) + [42, 44, 46, 48, 50], [])


# -- the header ---------------------------------------------------------------------------


def rewrite_header(run, header) -> bytes:
    """Give the run's snapshots.bin ``header`` (any JSON), keeping its records; the new bytes."""
    path = run / FILE_NAME
    original = path.read_bytes()
    text = json.dumps(header).encode()
    data = MAGIC + struct.pack("<I", len(text)) + text + original[Layout(original).start:]
    path.write_bytes(data)
    return data


def good_header():
    return {"names": ["W1", "b1", "W2", "b2"], "shapes": [[2, 4], [4], [4, 1], [1]],
            "dtype": "<f8"}


@pytest.mark.parametrize("change, expected", [
    (lambda h: list(h.values()), "JSON list"),
    (lambda h: "W1", "JSON str"),
    (lambda h: {**h, "dtype": "O"}, "dtype 'O'"),
    (lambda h: {**h, "dtype": "|O"}, "dtype"),
    (lambda h: {**h, "dtype": "<f2"}, "dtype"),
    (lambda h: {**h, "dtype": "<c16"}, "dtype"),
    (lambda h: {**h, "dtype": "f8,f8"}, "dtype"),
    (lambda h: {**h, "dtype": "(2,)f8"}, "dtype"),
    (lambda h: {**h, "dtype": "bogus"}, "dtype"),
    (lambda h: {**h, "dtype": ["<f8"]}, "dtype"),
    (lambda h: {**h, "dtype": None}, "dtype"),
    (lambda h: {**h, "shapes": [[10**6, 10**6], [4], [4, 1], [1]]}, "bytes per snapshot"),
    (lambda h: {**h, "shapes": [[2**62, 2**62], [4], [4, 1], [1]]}, "shapes"),
    (lambda h: {**h, "shapes": [[-2, 4], [4], [4, 1], [1]]}, "shapes"),
    (lambda h: {**h, "shapes": [[2.0, 4], [4], [4, 1], [1]]}, "shapes"),
    (lambda h: {**h, "shapes": [[True, 4], [4], [4, 1], [1]]}, "shapes"),
    (lambda h: {**h, "shapes": [[2, 4], [4], [4, 1]]}, "shapes"),
    (lambda h: {**h, "shapes": "[[2, 4]]"}, "shapes"),
    (lambda h: {**h, "names": [1, 2, 3, 4]}, "names"),
    (lambda h: {**h, "names": []}, "names"),
    (lambda h: {k: v for k, v in h.items() if k != "shapes"}, "shapes"),
])
def test_a_bad_header_makes_the_file_unreadable_naming_it(run, change, expected):
    data = rewrite_header(run, change(good_header()))
    path = run / FILE_NAME
    for action in (lambda: read_snapshots(path), lambda: truncate_snapshots(path, 10)):
        with pytest.raises(ConfigError, match="unreadable snapshot file") as err:
            action()
        assert str(path) in str(err.value) and expected in str(err.value)
        assert "\n" not in str(err.value)
    assert path.read_bytes() == data  # truncation changed nothing


def test_the_good_header_these_tests_change_is_the_runs_own(run):
    rewrite_header(run, good_header())
    assert read(run / FILE_NAME) == (EPOCHS, [])


@pytest.mark.parametrize("data, expected", [
    (b"hello, I am not a snapshot file at all", "not a snapshot file"),
    (MAGIC + struct.pack("<I", 3) + b"{x}", "not JSON"),
    (MAGIC + struct.pack("<I", 4) + b"\xff\xfe{}", "not JSON"),
    (MAGIC + struct.pack("<I", 2000) + b"[" * 2000, "not JSON"),
    (MAGIC + struct.pack("<I", 2**32 - 1) + b"{}" + RECORD.pack(b"SNAP", 0, 0, 0),
     "runs past the end"),
    (MAGIC + struct.pack("<I", 2**21) + b"{" * 2**21, "more than"),
])
def test_a_header_that_is_not_one_is_refused(tmp_path, data, expected):
    path = tmp_path / FILE_NAME
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=expected):
        read_snapshots(path)


@pytest.mark.parametrize("cut", [0, 5, len(MAGIC), len(MAGIC) + 2, len(MAGIC) + 4,
                                 len(MAGIC) + 30])
def test_an_empty_or_torn_header_has_no_snapshots(run, cut):
    path = run / FILE_NAME
    path.write_bytes(path.read_bytes()[:cut])  # a run killed in its first moment
    assert read(path) == ([], [])
    assert truncate(path, 10) == []
    assert path.read_bytes() == b""  # the resumed run writes its header anew
    assert read_snapshots(run / "missing.bin") == []


def test_forged_record_headers_cannot_make_the_search_take_long(tmp_path):
    path = tmp_path / FILE_NAME
    with SnapshotFile(path, ["W1"], [np.zeros(2**17)]) as file:  # 1 MiB a snapshot
        file.append(0, [np.zeros(2**17)])
    payload = 2**20
    forged = RECORD.pack(b"SNAP", 1, payload, 0) * 100_000  # each would need a 1 MiB CRC
    with open(path, "ab") as f:
        f.write(forged + bytes(payload))
    started = time.perf_counter()
    epochs, said = read(path)
    assert time.perf_counter() - started < 5
    assert epochs == [0] and len(said) == 1


def test_snapshots_of_another_network_are_refused_by_the_pictures(run, cli):
    path = run / FILE_NAME
    path.unlink()
    with SnapshotFile(path, ["W1"], [np.zeros((3, 3))]) as file:
        file.append(0, [np.zeros((3, 3))])
    result = cli("plot", run, "--boundary", "-o", "b.png")
    assert result.exit_code == 2 and "shaped" in result.output


# -- what plot makes of it ----------------------------------------------------------------


def test_plot_draws_a_run_with_a_damaged_middle_record_and_says_so(run, cli, tmp_path):
    def flip(data, layout):
        data[layout.at(MIDDLE) + RECORD.size + 3] ^= 0x10

    path, original, layout = damaged(run, flip)
    result = cli("plot", run, "--boundary", "--at", "0,20,last", "-o", "b.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    lines = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and f"at byte {layout.at(MIDDLE)} " in lines[0]
    assert '"last"' not in result.output  # the last record is intact: last is still 40


def test_plot_warns_when_damage_makes_last_an_earlier_epoch(run, cli, tmp_path):
    def flip(data, layout):
        data[-1] ^= 0x01  # epoch 40's payload, the run's last

    damaged(run, flip)
    with pytest.warns(UserWarning, match="damaged snapshot record"):
        found = load_snapshots(run / FILE_NAME)
    assert found.snapshots[-1].epoch == 38 and found.damaged_after_last
    result = cli("plot", run, "--boundary", "-o", "b.png")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if '"last"' in line]
    assert len(warned) == 1 and "epoch 38" in warned[0] and "last epoch 40" in warned[0]


def test_plot_of_a_run_whose_every_record_is_damaged_draws_its_model(run, cli, tmp_path):
    def all_bad(data, layout):
        for i in range(len(EPOCHS)):
            data[layout.at(i) + RECORD.size] ^= 1

    damaged(run, all_bad)
    result = cli("plot", run, "--boundary", "-o", "b.png")
    assert result.exit_code == 0, result.output
    assert "no readable snapshot" in result.output


@pytest.mark.parametrize("header", [["names"], {**good_header(), "dtype": "O"}])
def test_plot_of_a_bad_header_is_exit_2_naming_the_file(run, cli, header):
    rewrite_header(run, header)
    result = cli("plot", run, "--boundary", "-o", "b.png")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and FILE_NAME in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("at", ["²", "1,²", "٣", "１２", "9" * 5000, "1e3", "0x10"])
def test_at_takes_ascii_digits_only(at):
    with pytest.raises(ConfigError, match="--at"):
        parse_at(at)


def test_plot_at_a_superscript_digit_is_exit_2_in_one_line(run, cli):
    result = cli("plot", run, "--boundary", "--at", "²", "-o", "b.png")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--at" in result.output


def test_a_record_written_by_hand_as_the_format_says_is_read(tmp_path):
    """The format, from the outside: the reader takes a file built without its writer."""
    header = json.dumps({"names": ["b1"], "shapes": [[2]], "dtype": "<f4"}).encode()
    payload = np.array([1.5, -2.0], dtype="<f4").tobytes()
    data = (MAGIC + struct.pack("<I", len(header)) + header
            + RECORD.pack(b"SNAP", 7, len(payload), zlib.crc32(payload)) + payload)
    path = tmp_path / FILE_NAME
    path.write_bytes(data)
    (snap,) = read_snapshots(path)
    assert snap.epoch == 7 and snap.params[0].tolist() == [1.5, -2.0]
