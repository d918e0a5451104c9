import numpy as np
import pytest

from conftest import write
from nntrain.datasets import DATASETS, load_data

GENERATED = {  # name -> (features, task, outputs)
    "xor": (2, "binary", 1),
    "circles": (2, "binary", 1),
    "moons": (2, "binary", 1),
    "spiral": (2, "multiclass", 3),
    "blobs": (2, "multiclass", 3),
    "sine": (1, "regression", 1),
    "plane": (2, "regression", 1),
    "iris": (4, "multiclass", 3),
    "digits": (64, "multiclass", 10),
}


def test_every_builtin_dataset_is_covered():
    assert set(GENERATED) | {"csv", "npz"} == set(DATASETS.names())


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_shapes_task_and_determinism(name):
    features, task, outputs = GENERATED[name]
    data = load_data({"name": name}, seed=3)
    assert data.task == task and data.n_features == features and data.n_outputs == outputs
    assert data.X_val is None and np.all(np.isfinite(data.X_train))
    again = load_data({"name": name}, seed=3)
    assert np.array_equal(data.X_train, again.X_train) and np.array_equal(data.Y_train, again.Y_train)
    if task == "multiclass":
        assert np.all(data.Y_train.sum(axis=1) == 1)  # one-hot
    if task == "binary":
        assert set(np.unique(data.Y_train)) == {0.0, 1.0}


def test_seed_changes_generated_data():
    a = load_data({"name": "moons", "n_samples": 50}, seed=0)
    b = load_data({"name": "moons", "n_samples": 50}, seed=1)
    assert not np.array_equal(a.X_train, b.X_train)


def test_xor_four_points_and_noisy_quadrants():
    data = load_data({"name": "xor"})
    np.testing.assert_array_equal(data.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(data.Y_train[:, 0], [0, 1, 1, 0])
    noisy = load_data({"name": "xor", "n_samples": 400, "noise": 0.0})
    X, y = noisy.X_train, noisy.Y_train[:, 0]
    np.testing.assert_array_equal(y, (X[:, 0] > 0) != (X[:, 1] > 0))


def test_stratified_split_keeps_class_shares():
    data = load_data({"name": "iris"}, val_fraction=0.2)
    assert len(data.X_val) == 30 and len(data.X_train) == 120
    np.testing.assert_array_equal(data.Y_val.sum(axis=0), [10, 10, 10])
    np.testing.assert_array_equal(data.Y_train.sum(axis=0), [40, 40, 40])


def test_standardize_uses_training_part_only():
    data = load_data({"name": "iris"}, val_fraction=0.2, standardize=True)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1)
    assert np.abs(data.X_val.mean(axis=0)).max() > 1e-3  # not refitted on the validation part


def test_csv_with_string_labels_and_target_by_index(tmp_path):
    path = write(tmp_path / "d.csv", "x1,kind,x2\n1,cat,2\n3,dog,4\n5,cat,6\n7,bird,8\n")
    data = load_data({"name": "csv", "path": str(path), "target": "kind"})
    assert data.task == "multiclass" and data.classes == ["bird", "cat", "dog"]
    np.testing.assert_array_equal(data.X_train, [[1, 2], [3, 4], [5, 6], [7, 8]])
    np.testing.assert_array_equal(data.Y_train.argmax(axis=1), [1, 2, 1, 0])
    by_index = load_data({"name": "csv", "path": str(path), "target": 1})
    np.testing.assert_array_equal(by_index.Y_train, data.Y_train)


def test_csv_regression_and_forced_task(tmp_path):
    path = write(tmp_path / "r.csv", "x,y\n1,0.5\n2,1.25\n3,2.5\n")
    assert load_data({"name": "csv", "path": str(path)}).task == "regression"
    ints = write(tmp_path / "i.csv", "x,y\n1,10\n2,20\n3,30\n")
    assert load_data({"name": "csv", "path": str(ints)}).task == "multiclass"
    assert load_data({"name": "csv", "path": str(ints)}, task="regression").task == "regression"


def test_npz_loader(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0, 1, 0, 1, 0, 1]))
    data = load_data({"name": "npz", "path": str(tmp_path / "d.npz")})
    assert data.task == "binary"
    np.testing.assert_array_equal(data.X_train, X)


def test_outliers_move_some_targets():
    clean = load_data({"name": "sine", "n_samples": 500})
    dirty = load_data({"name": "sine", "n_samples": 500, "outliers": 0.1})
    far = np.abs(dirty.Y_train) > 3
    assert 20 < far.sum() < 80 and not (np.abs(clean.Y_train) > 3).any()
