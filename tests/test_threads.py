"""One process per run, with BLAS threads sized to the work: the rule, the limit in force while
training, the user's settings respected, and the removed train.shards key."""

import json

import pytest
from threadpoolctl import threadpool_info

from conftest import CONFIGS, write
from nntrain import load_config, train
from nntrain.registry import ConfigError
from nntrain.threads import ENVIRONMENT, WORK_PER_THREAD, blas_threads, largest_product


@pytest.fixture
def no_user_threads(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def test_largest_product_is_rows_times_the_widest_layer_pair():
    assert largest_product([2, 4, 1], 4) == 4 * 2 * 4
    assert largest_product([784, 1024, 1024, 10], 1000) == 1000 * 1024 * 1024


@pytest.mark.parametrize("sizes, batch, cores, expected", [
    ([2, 4, 1], 4, 2, 1),                          # xor: one thread
    ([64, 128, 10], 1797, 2, 1),                   # digits, full batch
    ([784, 256, 256, 10], 128, 8, 1),              # mnistlike: one thread even on 8 cores
    ([784, 1024, 1024, 10], 1000, 2, 2),           # wide: every core of 2
    ([784, 1024, 1024, 10], 1000, 1, 1),           # never more than the machine has
    ([784, 1024, 1024, 10], 1000, 64, 1000 * 1024 * 1024 // WORK_PER_THREAD),
])
def test_auto_follows_the_problem_size_and_the_cores(no_user_threads, sizes, batch, cores,
                                                     expected):
    assert blas_threads("auto", sizes, batch, cores=cores) == expected


def test_user_settings_are_respected(monkeypatch, no_user_threads):
    wide = ([784, 1024, 1024, 10], 1000)
    assert blas_threads(3, *wide, cores=2) == 3  # an explicit train.threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert blas_threads("auto", *wide, cores=2) == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert blas_threads("auto", [2, 4, 1], 4, cores=2) == 4
    assert blas_threads(2, [2, 4, 1], 4, cores=2) == 2


class ThreadsSeen:
    """A progress object that records the BLAS's thread count while epochs run."""

    def __init__(self):
        self.seen = set()

    def start(self, total):
        pass

    def update(self, epoch, loss):
        self.seen.update(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    def stop(self):
        pass


@pytest.mark.parametrize("setting, expected", [("auto", 1), (2, 2), (1, 1)])
def test_the_chosen_count_is_in_force_while_training(tmp_path, no_user_threads, setting, expected):
    before = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    cfg = load_config(CONFIGS / "xor.yaml", [f"train.threads={setting}", "train.epochs=5"])
    seen = ThreadsSeen()
    run = train(cfg, out=tmp_path / "run", progress=seen)
    assert seen.seen == {expected}
    assert run.summary["threads"] == expected
    after = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert after == before  # the process's own count is back


def test_threads_setting_is_checked():
    with pytest.raises(ConfigError, match="train.threads: must be auto or an integer >= 1"):
        load_config(CONFIGS / "xor.yaml", ["train.threads=0"])


def test_removed_shards_key_is_named_in_the_error(cli, tmp_path):
    config = write(tmp_path / "old.yaml", "data: {name: xor}\nmodel: {layers: [2, 4, 1]}\n"
                   "train: {epochs: 5, shards: 2}\n")
    for args in ([config], [CONFIGS / "xor.yaml", "train.shards=2"],
                 [CONFIGS / "xor.yaml", "+train.shards=auto"]):
        result = cli("train", *args)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1
        assert "train.shards: was removed" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_compare_runs_use_one_thread_each(cli, tmp_path, no_user_threads):
    result = cli("compare", CONFIGS / "xor.yaml", "train.epochs=3", "--seeds", "2",
                 "--workers", "1", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.stderr
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "c").glob("*/summary.json")]
    assert len(summaries) == 2
    assert all(s["threads"] == 1 for s in summaries)
