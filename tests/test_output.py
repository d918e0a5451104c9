"""What the commands print on a terminal: tables that never cut a number, text printed as it
is (no markup), progress like Keras."""

import pytest

from conftest import CONFIGS
from nntrain.output import EpochLines, EpochProgress, cell_text, print_report, print_table

INSPECT_LIKE = [
    {"initializer": "normal(std=0.01)", "layer": 4, "fan_in": 64, "fan_out": 64,
     "activation": "relu", "weight_std": 0.009913, "target_weight_std": 0.01,
     "act_mean": 5.977e-06, "act_std": 9.043e-06, "grad_std": 1.062e-14},
    {"initializer": "normal(std=0.5)", "layer": 4, "fan_in": 64, "fan_out": 64,
     "activation": "relu", "weight_std": 0.4957, "target_weight_std": 0.5,
     "act_mean": -37.35, "act_std": 56.52, "grad_std": 1332.0},
]


def printed(capsys, rows, columns, width, **kwargs):
    print_table(rows, columns, width=width, **kwargs)
    out = capsys.readouterr()
    return out.out, out.err


@pytest.mark.parametrize("width", [80, 120])
def test_inspect_table_never_cuts_a_number_or_a_label(capsys, width):
    from nntrain.inspection import INSPECT_COLUMNS, INSPECT_SECONDARY

    out, err = printed(capsys, INSPECT_LIKE, INSPECT_COLUMNS, width, drop_first=INSPECT_SECONDARY)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    for row in INSPECT_LIKE:
        for column in ("weight_std", "act_std", "grad_std"):
            assert f" {cell_text(row[column])} " in out  # whole, 4 significant digits
    assert "5.977e-06" in out or "act_mean" in err  # shown whole, or named as left out
    assert "normal(std=0.01)" in out and "normal(std=0.5)" in out
    if width == 120:
        assert err == ""  # every column fits
    else:
        assert "left out to fit 80 columns" in err and "--csv" in err


def test_a_table_too_wide_folds_text_and_keeps_numbers_whole(capsys):
    rows = [{"run": f"compare-x/{i:03d}-model.initializer=variance_scaling_scale=2.0-seed{i}",
             **{f"setting_{k}": f"value number {k} of a long label" for k in range(12)},
             "status": "completed", "final_loss": 0.000123456 * (i + 1)} for i in range(3)]
    columns = list(rows[0])
    out, err = printed(capsys, rows, columns, 80, drop_first=columns[1:13])
    assert "…" not in out
    for row in rows:
        assert cell_text(row["final_loss"]) in out
    assert "setting_0" in err  # what was left out, and how to see it


def test_report_at_80_and_120_columns(cli, tmp_path, capsys):
    from nntrain.results import report_rows
    from nntrain.runs import find_runs

    for std in ("0.01", "0.5"):
        cli("train", CONFIGS / "xor.yaml", f"model.initializer={{name: normal, std: {std}}}",
            "train.epochs=3", "--quiet")
    rows, columns = report_rows(find_runs([tmp_path / "runs"]))
    for width in (80, 120):
        print_report(rows, columns, width=width)
        out = capsys.readouterr().out
        assert "…" not in out and "runs in " in out
        cells = table_cells(out, "status")
        assert sorted(c["model.initializer"] for c in cells) == ["normal(std=0.01)",
                                                                 "normal(std=0.5)"]
        assert sorted(c["final_loss"] for c in cells) == sorted(
            cell_text(r["final_loss"]) for r in rows)


def table_cells(out: str, first_line_column: str) -> list[dict]:
    """A printed rich table read back: header and cells joined across the lines they fold
    onto; a row starts where ``first_line_column`` has text."""
    heads = [line.split("┃")[1:-1] for line in out.splitlines() if line.startswith("┃")]
    names = ["".join(h[i].strip() for h in heads) for i in range(len(heads[0]))]
    rows = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        parts = dict(zip(names, (p.strip() for p in line.split("│")[1:-1])))
        if parts[first_line_column]:
            rows.append(dict.fromkeys(names, ""))
        for name, text in parts.items():
            rows[-1][name] += text
    return rows


def test_text_from_formulas_is_not_markup(capsys):
    rows = [{"kind": "losses", "name": "gaussian_nll",
             "rule": "(1/N) sum_n sum_k [ln sigma + 1/2 ln 2pi + (y-o)^2/(2 sigma^2)]"},
            {"kind": "x", "name": "[bold]not bold[/bold]", "rule": "[red]"}]
    out, _ = printed(capsys, rows, ["kind", "name", "rule"], 200)
    assert "[ln sigma + 1/2 ln 2pi" in out
    assert "[bold]not bold[/bold]" in out and "[red]" in out


def test_run_line_escapes_names(capsys, monkeypatch, tmp_path):
    import sys

    from nntrain.output import print_run

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    print_run({"name": "a[b]", "path": str(tmp_path / "[x]"), "status": "completed", "epochs": 3,
               "wall_time_s": 0.1, "final": {"loss": 0.5}})
    out = capsys.readouterr().out
    assert "a[b]" in out and "[x]" in out


ROW = {"epoch": 3, "loss": 0.6931, "val_loss": 0.7012, "accuracy": 0.5, "val_accuracy": 0.75,
       "lr": 0.1, "grad_norm": 0.01, "time_s": 0.1}


def test_progress_shows_keras_figures_rate_and_time_left():
    progress = EpochProgress("xor")
    progress.start(100)
    progress.update(0, {**ROW, "epoch": 0})
    progress.update(3, ROW)
    text = progress.progress.tasks[0].fields["text"]
    progress.stop()
    for part in ("epochs/s", "left", "loss 0.6931", "accuracy 0.5", "val_loss 0.7012",
                 "val_accuracy 0.75"):
        assert part in text or text.endswith("…"), (part, text)
    assert "epochs/s" in text and "loss 0.6931" in text


def test_verbose_prints_one_line_per_epoch(cli):
    result = cli("train", CONFIGS / "moons.yaml", "train.epochs=4", "--verbose")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " epoch " in line]
    assert len(lines) == 4
    assert lines[-1].startswith("moons epoch 4/4 - loss ")
    assert "val_accuracy" in lines[-1] and "epochs/s" in lines[-1]
    regression = cli("train", CONFIGS / "sine.yaml", "train.epochs=2", "--verbose")
    assert " mae " in regression.stderr and "val_mae" in regression.stderr


def test_no_progress_without_a_terminal(cli):
    result = cli("train", CONFIGS / "xor.yaml", "train.epochs=3")
    assert result.stderr == "" and result.stdout.startswith("runs/xor/")


def test_epoch_lines_need_no_terminal(capsys):
    lines = EpochLines("r")
    lines.start(2)
    lines.update(1, ROW)
    lines.stop()
    assert capsys.readouterr().err.startswith("r epoch 1/2 - loss 0.6931 - val_loss 0.7012")


def test_narrow_report_leaves_out_settings_implied_by_the_run_name_first(capsys):
    rows = [{"run": f"{name}/2026-{i}", "name": name, "data.name": data, "model.activation": act,
             "status": "completed", "final_loss": 0.5 + i}
            for i, (name, data, act) in enumerate([("a", "moons", "tanh"), ("a", "moons", "relu"),
                                                   ("b", "sine", "tanh")])]
    from nntrain.output import implied_settings

    assert implied_settings(rows, ["name", "data.name", "model.activation"]) == ["name", "data.name"]
    print_report(rows, list(rows[0]), width=50)
    out, err = capsys.readouterr()
    assert "activation" in out and "left out" in err and "data.name" in err


def test_a_narrow_report_keeps_run_names_whole_and_leaves_out_the_settings_they_spell(capsys):
    """A compare's run folders spell the settings that vary ('003-initializer=he_normal-seed3'):
    those columns go first, then secondary figures, before a run folder's name folds."""
    rows = [{"run": f"{i:03d}-initializer={init}-seed{i % 3}", "seed": i % 3,
             "model.initializer": init, "status": "completed", "epochs": 1000,
             "final_loss": 0.001 * (i + 1), "final_accuracy": 1.0, "best_loss": 0.001 * (i + 1),
             "best_epoch": 1000, "wall_time_s": 0.2}
            for i, init in enumerate(["zeros"] * 3 + ["xavier_uniform"] * 3)]
    from nntrain.output import implied_settings

    assert implied_settings(rows, ["seed", "model.initializer"]) == ["seed", "model.initializer"]
    print_report(rows, list(rows[0]), width=100)
    out, err = capsys.readouterr()
    assert all(f" {row['run']} " in out for row in rows)  # each on one line, whole
    assert "final_" in out and "accuracy" in out  # a figure kept over the spelled settings
    assert "left out to fit 100 columns: seed, model.initializer" in err
    print_report(rows, list(rows[0]), width=60)  # too narrow even so: the names fold, whole
    out, err = capsys.readouterr()
    assert [cell["run"] for cell in table_cells(out, "status")] == [row["run"] for row in rows]
    # a text column kept beside them is drawn as wide as its text: budgeted so
    rows = [{"run": row["run"], "seed": row["seed"],
             "model.activation": "leaky_relu(alpha=0.01)" if row["seed"] else "tanh",
             **{k: v for k, v in row.items() if k not in ("run", "seed")}} for row in rows]
    for width in (90, 100, 110):
        print_report(rows, list(rows[0]), width=width)
        out, err = capsys.readouterr()
        assert all(f" {row['run']} " in out for row in rows), (width, out)
    # names that cannot tell two values apart (cut to 40 characters) do not imply the column
    long = [{"run": f"00{i}-initializer=variance_scaling_scale=2.0_m-seed0",
             "model.initializer": f"variance_scaling(scale=2.0, mode={mode})"}
            for i, mode in enumerate(["fan_in", "fan_avg"])]
    assert implied_settings(long, ["model.initializer"]) == []

