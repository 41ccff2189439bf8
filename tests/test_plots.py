"""The figure functions: what each panel draws, from small synthetic tables, and what makes a figure read on its own."""

import json
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.collections
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import torch

from imprf_utils.measures.connections import binomial_null
from imprf_utils.measures.shape import average_receptive_field
from imprf_utils.report.claims import bounds
from PIL import Image

from imprf_utils.report.figure_files import FigureContext, caption_line, draw_caption, quoted, save_figure
from imprf_utils.report.figures import (
    accuracy_figure, cavity_by_round_figure, cavity_round0_figure, data_vs_clone_figure, kurtosis_figure, lag_figure,
    learning_curves_figure, localization_figure, matched_pairs_figure, superclasses_figure, train_fraction_figure,
)
from imprf_utils.report.matrix import ROBUSTNESS_COLOURS, ROBUSTNESS_COLUMNS, cell_name, robustness_figure, robustness_summary
from imprf_utils.report.marks import AXIS_LABELS, DATA_COLOURS, METHOD_COLOURS, band, claims_interval
from imprf_utils.report.pictures import (
    MOSAIC_GAP, component_grid_figure, connections_figure, image_grid_figure, ipr_figure, mask_grid_figure, mask_images,
    mask_mosaic, masks_and_fields_figure, pixel_kurtosis_figure,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def kurtosis_table() -> pd.DataFrame:
    rows = [
        dict(data=which, seed=seed, method=method, kept=kept, mean_kurtosis=3 + kept, non_gaussianity=kept,
             non_gaussianity_shuffled=kept / 2, non_gaussianity_excess=kept / 2 + seed)
        for which in ("data", "clone") for seed in (0, 1) for method in ("imp", "oneshot", "random") for kept in (1.0, 0.5, 0.25)
    ]
    return pd.DataFrame(rows)


def test_kurtosis_figure_draws_three_methods_per_panel_with_a_band_over_seeds():
    fig = kurtosis_figure(kurtosis_table())
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[:, 0]] == ["data: mean κ", "clone: mean κ"]
    labels = [line.get_label() for line in axes[0, 3].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["IMP", "oneshot", "random"]
    imp = axes[0, 3].get_lines()[0]
    np.testing.assert_allclose(imp.get_ydata(), [0.125 + 0.5, 0.25 + 0.5, 0.5 + 0.5])  # mean over seeds 0, 1
    assert axes[0, 0].xaxis_inverted()


def lag_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    lag = pd.DataFrame(dict(
        data=["data"] * 4 + ["clone"] * 4, seed=[0, 0, 1, 1] * 2, level=[1, 2] * 4,
        excess_change=np.arange(8.0), localization_next=np.arange(8.0) / 10,
        localization=-np.arange(8.0), excess_change_next=np.arange(8.0) * 2,
    ))
    correlations = pd.DataFrame(dict(data=["clone", "clone", "data", "data"], seed=[0, 1, 0, 1],
                                     lead=[0.1, 0.2, 0.5, np.nan], reverse=[0.3, 0.4, -0.25, 0.0]))
    return lag, correlations


def test_lag_figure_draws_the_lead_and_the_reverse_lag_one_colour_per_seed_with_its_rho():
    axes = np.array(lag_figure(*lag_tables()).axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[:, 0]] == ["data: excess change leads (ρ given k)", "clone: excess change leads (ρ given k)"]
    assert axes[0, 1].get_title() == "data: reverse lag (ρ given k)"
    assert axes[0, 0].get_xlabel() == "change of the kurtosis excess in round k"
    assert axes[0, 0].get_ylabel().startswith("localization round k + 1 adds")
    assert axes[0, 1].get_xlabel().startswith("localization round k adds")
    lead, reverse = ([line for line in ax.get_lines() if not line.get_label().startswith("_")] for ax in axes[0])
    assert [line.get_label() for line in lead] == ["seed 0: ρ 0.50", "seed 1: ρ n/a"]
    assert [line.get_label() for line in reverse] == ["seed 0: ρ -0.25", "seed 1: ρ 0.00"]
    np.testing.assert_array_equal(lead[1].get_xdata(), [2.0, 3.0])
    np.testing.assert_array_equal(lead[1].get_ydata(), [0.2, 0.3])
    np.testing.assert_array_equal(reverse[1].get_ydata(), [4.0, 6.0])
    assert [line.get_color() for line in lead] == [line.get_color() for line in reverse] and lead[0].get_color() != lead[1].get_color()
    clone = [line for line in axes[1, 0].get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in clone] == ["seed 0: ρ 0.10", "seed 1: ρ 0.20"]


def group_means(rounds=3) -> pd.DataFrame:
    rows = [
        dict(data=which, seed=seed, level=level, removal_round=r, score=(r - 2) * 0.01 + level + seed * 0.001)
        for which in ("data", "clone") for seed in (0, 1) for level in range(rounds + 1) for r in range(level + 1, rounds + 2)
    ]
    return pd.DataFrame(rows)


def test_cavity_round0_figure_has_a_panel_per_dataset_and_survivors_last():
    fig = cavity_round0_figure(group_means(), rounds=3)
    assert [ax.get_title() for ax in fig.axes] == ["data", "clone"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "never"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [-0.01 + 0.0005, 0.0005, 0.01 + 0.0005, 0.02 + 0.0005])


def test_cavity_by_round_figure_shows_the_seed_mean_of_each_group_and_level():
    groups = group_means()
    fig = cavity_by_round_figure(groups[groups.data == "data"], rounds=3)
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (4, 4)  # removal rounds 1..4 × levels 0..3
    assert image[0, 0] == pytest.approx(-0.01 + 0.0005) and np.ma.is_masked(image[0, 1])  # round 1's weights are gone at level 1
    assert image[3, 3] == pytest.approx(0.02 + 3 + 0.0005)
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["1", "2", "3", "never"]


def matched_statistics() -> pd.DataFrame:
    return pd.DataFrame(dict(
        data="data", seed=[0, 0, 1, 1], level=[0, 1, 0, 1], matched_imp=[0.01, 0.02, 0.03, 0.04],
        matched_oneshot=[0.001, np.nan, 0.003, np.nan], rho_round_weight=[0.8, 0.7, 0.9, 0.6],
    ))


def test_matched_pairs_figure_puts_oneshots_null_beside_imp_at_level_zero():
    left, right = matched_pairs_figure(matched_statistics()).axes
    lines = {line.get_label(): line for line in left.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"IMP", "oneshot"}
    np.testing.assert_allclose(lines["IMP"].get_ydata(), [0.02, 0.03])
    np.testing.assert_allclose(lines["oneshot"].get_xdata(), [0], atol=0.02)  # at level 0, set beside IMP's point (DODGE)
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.85, 0.65])


# --------------------------------------------------------------------------------------
# Statistical figures: a dot per network, the mean, and the claims' interval around it
# --------------------------------------------------------------------------------------


def errorbars(ax) -> list[np.ndarray]:
    """The error bars `band` drew (seaborn's lineplot), one (x, lower, upper) array per value of ``by``."""
    return [np.array([[seg[0, 0], seg[0, 1], seg[1, 1]] for seg in container.lines[2][0].get_segments() if np.ndim(seg) == 2])
            for container in ax.containers]


def localization_table() -> pd.DataFrame:
    """Three seeds, whose values are not symmetric about their mean, so that min–max and the t interval differ."""
    return pd.DataFrame([
        dict(data=which, method=method, seed=seed, kept=kept, rf_width=4 * kept + seed, component_ratio=1 + seed ** 2 / 10,
             rf_width_ratio=kept + (0.1 if method == "imp" else 0.3) * seed ** 2, accuracy=0.9 - seed / 100)
        for which in ("data", "clone") for method in ("imp", "random") for seed in (0, 1, 2) for kept in (1.0, 0.5)
    ])


@pytest.mark.parametrize("values", [[0.1, 0.4], [1.0, 1.5, 3.0, 2.0, 2.5], [0.3, 0.3, 0.3]])
def test_the_drawn_interval_is_the_claims_bounds(values):
    """plots cannot import claims (claims imports plots), so it computes the bounds itself: the same numbers."""
    np.testing.assert_allclose(claims_interval(values), bounds(values, alpha=0.05), rtol=1e-12)


def test_band_draws_a_dot_per_network_and_the_claims_interval_around_the_mean():
    table = localization_table()
    table = table[table.data == "data"]
    fig, ax = plt.subplots()
    band(ax, table, "kept", "rf_width_ratio", dodge=0)
    dots = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)])
    assert sorted(map(tuple, dots)) == sorted(zip(table.kept, table.rf_width_ratio))
    imp = next(line for line in ax.get_lines() if line.get_label() == "IMP")
    np.testing.assert_allclose(imp.get_ydata(), np.array([0.5, 1.0]) + 0.1 * (0 + 1 + 4) / 3)  # mean over seeds 0, 1, 2
    for (method, rows), bars in zip(table.groupby("method", sort=False), errorbars(ax)):
        for x, lower, upper in bars:
            np.testing.assert_allclose((lower, upper), bounds(rows[rows.kept == x].rf_width_ratio, alpha=0.05))
            assert not np.allclose((lower, upper), rows[rows.kept == x].rf_width_ratio.agg(["min", "max"]))  # not min–max


def test_band_draws_a_single_point_as_a_marker_with_its_interval():
    table = pd.DataFrame(dict(method=["imp", "imp", "random", "random"], seed=[0, 0, 0, 1], kept=[1.0, 0.5, 0.5, 0.5],
                              rf_width_ratio=[1.0, 0.9, 1.0, 0.8]))
    fig, ax = plt.subplots()
    band(ax, table, "kept", "rf_width_ratio", dodge=0)
    random = next(line for line in ax.get_lines() if line.get_label() == "random")
    assert random.get_marker() == "o" and list(random.get_xdata()) == [0.5] and random.get_ydata()[0] == pytest.approx(0.9)
    np.testing.assert_allclose(errorbars(ax)[1][0, 1:], bounds([1.0, 0.8], alpha=0.05))


def test_band_sets_methods_apart_around_the_true_x_so_that_their_bars_do_not_hide_each_other():
    kept = [1.0, 0.1, 0.01]  # two decades
    table = pd.DataFrame([dict(method=m, seed=s, kept=k, rf_width_ratio=1.0 + s) for m in ("imp", "oneshot", "random")
                          for s in (0, 1) for k in kept])
    fig, ax = plt.subplots()
    band(ax, table, "kept", "rf_width_ratio", log_x=True, dodge=0.01)
    shown = {line.get_label(): line.get_xdata() for line in ax.get_lines() if not line.get_label().startswith("_")}
    np.testing.assert_allclose(shown["IMP"], np.array(sorted(kept)) * 10 ** -0.02)  # one step = 0.01 of 2 decades
    np.testing.assert_allclose(shown["oneshot"], sorted(kept))
    np.testing.assert_allclose(shown["random"], np.array(sorted(kept)) * 10 ** 0.02)
    np.testing.assert_allclose(ax.get_xticks(), sorted(kept))


def test_band_draws_a_legend_only_where_it_tells_groups_apart():
    table = localization_table()
    fig, (one, many, off) = plt.subplots(1, 3)
    band(one, table[table.method == "imp"], "kept", "rf_width_ratio")
    band(many, table, "kept", "rf_width_ratio")
    band(off, table, "kept", "rf_width_ratio", legend=False)
    assert one.get_legend() is None and off.get_legend() is None
    assert [t.get_text() for t in many.get_legend().get_texts()] == ["IMP", "random"]


def test_fig4a_puts_data_above_clone_one_column_per_measure_sparser_to_the_right():
    fig = localization_figure(localization_table())
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[:, 0]] == ["data", "clone"]
    assert [ax.get_ylabel() for ax in axes[0]] == [AXIS_LABELS[c] for c in ("rf_width", "rf_width_ratio", "component_ratio")]
    assert axes[0, 0].xaxis_inverted() and axes[0, 1].get_ylim() == axes[1, 1].get_ylim()
    assert [ax.get_title() for ax in accuracy_figure(localization_table()).axes] == ["data", "clone"]


def final_table() -> pd.DataFrame:
    return pd.DataFrame([
        dict(data=which, method="imp", seed=seed, rf_width=(2 if which == "data" else 5) + seed ** 2 / 4,
             rf_width_ratio=0.6 + seed / 10, component_ratio=2.0 + seed)
        for which in ("clone", "data") for seed in (0, 1, 2)
    ])


def test_fig3c_draws_each_seed_and_the_claims_interval_of_data_and_clone():
    table = final_table()
    fig = data_vs_clone_figure(table, rounds=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["data", "clone"] and ax.get_ylabel() == "median RF width (px)"
    dots = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(dots[:, 1]) == sorted(table.rf_width)
    bars = [line for line in ax.get_lines() if line.get_marker() in ("None", "") and len(line.get_ydata()) == 2
            and np.isfinite(line.get_ydata()).all()]  # seaborn draws each hue at every category, NaN where it has no rows
    assert len(bars) == 2
    for bar, which in zip(bars, ("data", "clone")):
        np.testing.assert_allclose(sorted(bar.get_ydata()), bounds(table[table.data == which].rf_width, alpha=0.05))


MATRIX_CELLS = [(256, False, "base", False), (256, True, "harder", False), (1024, True, "base", True)]


def matrix_table() -> pd.DataFrame:
    """``robustness.network_table``'s shape: a cell's fields, its label (``Cell.label``), seed and the plotted columns."""
    rows = []
    for i, (width, batchnorm, task, long) in enumerate(MATRIX_CELLS):
        label = ", ".join([str(width), *(["BN"] if batchnorm else []), f"{task} task", *(["long"] if long else [])])
        for seed in (0, 1, 2):
            rows.append(dict(width=width, batchnorm=batchnorm, task=task, long=long, cell=label, seed=seed,
                             **{column: (j + 1) / 10 + i + seed ** 2 / 20 for j, column in enumerate(ROBUSTNESS_COLUMNS)}))
    return pd.DataFrame(rows)


def regime_table() -> pd.DataFrame:
    """Notebook 08's table: a regime's fields are its candidate's name and width."""
    table = matrix_table().drop(columns=["batchnorm", "task", "long"])
    return table.assign(name=table.cell.map(dict(zip(table.cell.unique(), ["base", "lr 0.4", "photos"]))))


def test_the_matrix_names_its_rows_in_words_and_draws_each_cells_claims_interval():
    table = matrix_table()
    fig = robustness_figure(table, margin=0.01, rounds=10, long_steps=4)
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_yticklabels()] == [
        "width 256, base task", "width 256, BatchNorm, harder task", "width 1024, BatchNorm, base task, 4× steps a round"]
    assert first.get_title().replace("\n", " ") == "RF-width ratio, IMP − random and IMP − oneshot (< 0: IMP more local)"
    assert "after 10 rounds" in fig.axes[2].get_title().replace("\n", " ")
    colour = matplotlib.colors.to_rgba(ROBUSTNESS_COLOURS["IMP − random"])
    bars = [line for line in first.get_lines() if line.get_marker() in ("None", "") and len(line.get_xdata()) == 2
            and matplotlib.colors.to_rgba(line.get_color()) == colour]
    assert len(bars) == len(MATRIX_CELLS)
    for bar, cell in zip(bars, table.cell.unique()):
        np.testing.assert_allclose(sorted(bar.get_xdata()), bounds(table[table.cell == cell].imp_minus_random, alpha=0.05))
    styles = {(line.get_xdata()[0], line.get_linestyle()) for line in first.get_lines() if line.get_color() == "k"}
    assert styles == {(0, "-"), (-0.01, "--")}  # solid: no difference; dashed: the claims' margin


def test_matrix_rows_of_notebook_08_are_regimes_and_the_long_cells_say_how_long():
    assert [t.get_text() for t in robustness_figure(regime_table(), margin=0.05, rounds=10).axes[0].get_yticklabels()] == [
        "base, width 256", "lr 0.4, width 256", "photos, width 1024"]
    assert cell_name(dict(width=1024, batchnorm=True, task="base", long=True)) == "width 1024, BatchNorm, base task, longer training"
    assert cell_name(pd.Series(dict(width=256, batchnorm=False, task="harder", long=False))) == "width 256, harder task"


def test_robustness_summary_is_each_cells_mean_over_seeds_of_every_plotted_column():
    table = matrix_table()
    summary = robustness_summary(table)
    assert list(summary.index) == list(table.cell.unique()) and list(summary.columns) == ROBUSTNESS_COLUMNS
    assert summary.loc["256, BN, harder task", "weight_change"] == pytest.approx(table[table.cell == "256, BN, harder task"].weight_change.mean())


def test_quoted_formats_a_caption_number_and_says_n_a_when_there_is_none():
    assert quoted(-0.1234) == "−0.123" and quoted(0.5, ".0%") == "50%" and quoted(float("nan")) == "n/a"


# --------------------------------------------------------------------------------------
# Figures that read on their own: captions, keys, ticks, scales, width
# --------------------------------------------------------------------------------------


def test_caption_line_names_the_figure_the_preset_the_seed_count_and_the_marks():
    assert caption_line("Fig. 4A", "presets/default.yaml", [0, 1, 2, 3, 4], "line: mean, band: min–max over seeds") == (
        "Fig. 4A · preset default · 5 seeds · line: mean, band: min–max over seeds"
    )
    assert "· 1 seed ·" in caption_line("Fig. 3A", "smoke", [0], "examples")
    with pytest.raises(ValueError, match="seeds is empty"):
        caption_line("Fig. 1", "smoke", [], "masks")


def test_save_figure_draws_the_caption_and_stores_it_and_the_notebook_in_the_json(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    caption = caption_line("Fig. 4A", "smoke", [0, 1], "IMP RF-width ratio; " * 4)
    png = save_figure(fig, "toy", "fig4a_toy", {"seeds": [0, 1]}, tmp_path, caption=caption, notebook="03")
    meta = json.loads(png.with_suffix(".json").read_text())
    assert meta["caption"] == caption and meta["notebook"] == "03"
    assert meta["parameters"] == {"seeds": [0, 1]}
    drawn = [t.get_text().replace("\n", " ") for t in fig.texts]
    assert drawn == [caption.strip()]  # wrapped at spaces only (not after "RF-"), so the words are the caption's


def test_save_figure_without_caption_writes_no_caption(tmp_path):
    fig, _ = plt.subplots(figsize=(4, 3))
    png = save_figure(fig, "toy", "plain", {}, tmp_path)
    meta = json.loads(png.with_suffix(".json").read_text())
    assert "caption" not in meta and "values" not in meta and not fig.texts


def test_save_figure_records_the_plotted_values_beside_the_png(tmp_path):
    fig, _ = plt.subplots(figsize=(4, 3))
    png = save_figure(fig, "toy", "named", {}, tmp_path, values={"IMP − random": np.float64(-0.1234), "rounds": 10, "none": np.nan})
    assert json.loads(png.with_suffix(".json").read_text())["values"] == {"IMP − random": -0.1234, "rounds": 10.0, "none": None}
    table = matrix_table()
    png = save_figure(fig, "toy", "table", {}, tmp_path, values=robustness_summary(table))
    records = json.loads(png.with_suffix(".json").read_text())["values"]
    assert [record["cell"] for record in records] == list(table.cell.unique())
    assert set(records[0]) == {"cell", *ROBUSTNESS_COLUMNS}
    assert records[2]["removal_rho"] == pytest.approx(table[table.cell == records[2]["cell"]].removal_rho.mean())


def toy_figure() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [0, 1, 0.5], label="IMP")
    ax.legend()
    return fig


def test_a_figure_context_saves_the_very_files_save_figure_saves_with_its_caption(tmp_path):
    """``ctx.save`` is ``save_figure`` with ``caption_line`` and the notebook's context: the same PNG, PDF and JSON, byte for byte."""
    params = {"seeds": [0, 1], "steps": 60}
    ctx = FigureContext.of({"preset": "smoke", "figures_dir": str(tmp_path / "ctx"), "seeds": [0, 1], "steps": 60}, "03", "toy", params)
    ctx.save(toy_figure(), "fig4a_toy", title="Fig. 4A", text="IMP's curve below random's", values={"gap": -0.12})
    caption = caption_line("Fig. 4A", "smoke", [0, 1], "IMP's curve below random's")
    save_figure(toy_figure(), "toy", "fig4a_toy", params, tmp_path / "direct", caption=caption, notebook="03", values={"gap": -0.12})
    for suffix in (".png", ".pdf", ".json"):
        made, direct = (tmp_path / folder / "toy" / f"fig4a_toy{suffix}" for folder in ("ctx", "direct"))
        assert made.read_bytes() == direct.read_bytes(), suffix
    meta = json.loads((tmp_path / "ctx" / "toy" / "fig4a_toy.json").read_text())
    assert meta["caption"] == caption and meta["notebook"] == "03" and meta["parameters"] == params


def test_a_figure_context_takes_its_folder_preset_and_seeds_from_the_notebooks_parameters(tmp_path, monkeypatch):
    parameters = {"preset": "presets/smoke.yaml", "figures_dir": None, "seeds": [3, 4, 5], "steps": 60}
    monkeypatch.setenv("IMPRF_FIGURES", str(tmp_path / "env"))
    ctx = FigureContext.of(parameters, "04", "skewed_texture", {"seeds": [3, 4, 5]})
    assert (ctx.root, ctx.dataset, ctx.notebook, list(ctx.seeds)) == (tmp_path / "env", "skewed_texture", "04", [3, 4, 5])
    png = ctx.save(toy_figure(), "fig4b_toy", title="Fig. 4B", text="kurtosis")
    assert png == tmp_path / "env" / "skewed_texture" / "fig4b_toy.png"
    assert json.loads(png.with_suffix(".json").read_text())["caption"] == "Fig. 4B · preset smoke · 3 seeds · kurtosis"
    given = FigureContext.of({**parameters, "figures_dir": str(tmp_path / "given")}, "04", "skewed_texture", {})
    assert given.root == tmp_path / "given"  # figures_dir first, then $IMPRF_FIGURES


def test_one_figure_may_pool_other_seeds_or_go_to_another_datasets_folder(tmp_path):
    ctx = FigureContext.of({"preset": "smoke", "figures_dir": str(tmp_path), "seeds": [0, 1]}, "02", "skewed_texture", {})
    png = ctx.save(toy_figure(), "ig_toy", title="Ingrosso & Goldt 2022", text="weights", seeds=[0], dataset="nlgp")
    assert png == tmp_path / "nlgp" / "ig_toy.png"
    assert json.loads(png.with_suffix(".json").read_text())["caption"] == "Ingrosso & Goldt 2022 · preset smoke · 1 seed · weights"
    assert list(ctx.seeds) == [0, 1] and ctx.dataset == "skewed_texture"  # the context itself is unchanged


def test_a_notebook_without_seeds_passes_its_own_and_a_missing_parameter_is_named():
    parameters = {"preset": "smoke", "figures_dir": None}
    with pytest.raises(KeyError, match=r"lack \['seeds'\].*or pass seeds="):
        FigureContext.of(parameters, "00", "skewed_texture", {})
    assert list(FigureContext.of(parameters, "00", "skewed_texture", {}, seeds=[0]).seeds) == [0]
    with pytest.raises(KeyError, match=r"lack \['figures_dir'\]"):
        FigureContext.of({"preset": "smoke", "seeds": [0]}, "03", "skewed_texture", {})


@pytest.mark.parametrize("figsize", [(3, 2), (5.5, 3.2), (12, 6.4)])
def test_saved_pngs_are_at_least_1000_px_wide(tmp_path, figsize):
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    ax.plot([0, 1], [1, 0])
    png = save_figure(fig, "toy", "wide", {}, tmp_path, caption="a caption long enough to wrap " * 4)
    with Image.open(png) as image:
        assert image.width >= 1000


def test_band_on_a_log_axis_ticks_every_x_value_trained_and_labels_methods():
    kept = [1.0, 0.7, 0.49, 0.343, 0.028]
    table = pd.DataFrame([dict(method=m, seed=s, kept=k, rf_width_ratio=k + s) for m in ("imp", "random") for s in (0, 1) for k in kept])
    fig, ax = plt.subplots()
    band(ax, table, "kept", "rf_width_ratio", log_x=True)
    np.testing.assert_allclose(ax.get_xticks(), sorted(kept))
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.028", "0.343", "0.49", "0.7", "1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["IMP", "random"]
    assert ax.get_ylabel() == AXIS_LABELS["rf_width_ratio"] and ax.get_xlabel() == AXIS_LABELS["kept"]


FIGURES = {
    "Fig. 3C": lambda: data_vs_clone_figure(final_table(), rounds=3),
    "Fig. 4A": lambda: localization_figure(localization_table()),
    "accuracy": lambda: accuracy_figure(localization_table()),
    "Fig. 4B": lambda: kurtosis_figure(kurtosis_table()),
    "lagged test": lambda: lag_figure(*lag_tables()),
    "Fig. 5B": lambda: cavity_round0_figure(group_means(), rounds=3),
    "Fig. 5C": lambda: cavity_by_round_figure(group_means().query("data == 'data'"), rounds=3),
    "Fig. 5 control": lambda: matched_pairs_figure(matched_statistics()),
    "07 matrix": lambda: robustness_figure(matrix_table(), margin=0.01, rounds=10, long_steps=4),
    "08 regimes": lambda: robustness_figure(regime_table(), margin=0.05, rounds=10),
    "IPR": lambda: ipr_figure({"IMP": {"data": torch.tensor([1.5, 4.0, 20.0])}}, 64),
    "connections": lambda: connections_figure({"IMP": torch.eye(4, 16, dtype=torch.bool)}),
    "pixel kurtosis": lambda: pixel_kurtosis_figure({"data": torch.tensor([2.0, 5.0]), "clone": torch.tensor([3.0, 3.1])}),
    "learning curves": lambda: learning_curves_figure(curves_table(), rewind_step=10, chance=0.25),
    "superclasses": lambda: superclasses_figure(localization_table().assign(labels=lambda t: t.data)),
    "training-set size": lambda: train_fraction_figure(fraction_table()),
}
"""Every figure function whose texts the function itself writes, built from small tables (titles passed in are the caller's)."""
RAW_NAMES = {*AXIS_LABELS, *ROBUSTNESS_COLUMNS, "method", "series", "row", "value", "seed", "order", "cell", "removal_round"}
"""Column names a figure must not show as they are (seaborn labels axes and legends by them unless told otherwise)."""


@pytest.mark.parametrize("build", FIGURES.values(), ids=FIGURES.keys())
def test_no_figure_shows_a_raw_column_name_or_an_abbreviation(build):
    fig = build()
    fig.canvas.draw()
    shown = [re.sub(r"\$[^$]*\$", "", t.get_text()) for t in fig.findobj(matplotlib.text.Text)]  # math ($W_T$) is typeset
    assert not [text for text in shown if "_" in text or re.search(r"\bBN\b|\bsurv\.", text)], shown
    assert not {text.strip() for text in shown} & RAW_NAMES, shown


@pytest.mark.parametrize("channels, labels", [(1, ["pruned", "kept"]), (3, ["pruned", "kept in channel R", "kept in channel G", "kept in channel B", "kept in all three"])])
def test_mask_figures_carry_a_key_whose_colours_are_the_masks(channels, labels):
    mask = torch.zeros(130, channels, 16)  # (units, C, H*W): pixel c in channel c alone, pixel 3 in every channel
    for c in range(channels):
        mask[:, c, [c, 3]] = 1
    mask = mask.flatten(1)
    fig = mask_grid_figure({"IMP": mask}, (channels, 4, 4), rows=2, cols=3)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == labels
    colours = [tuple(np.round(patch.get_facecolor()[:3], 2)) for patch in legend.get_patches()]
    shown = mask_images(mask, (channels, 4, 4)).reshape(-1, 3)
    for colour in colours:  # every key colour is a colour the masks are drawn in
        assert any(np.allclose(colour, pixel, atol=0.01) for pixel in np.unique(shown, axis=0)), colour


def test_data_and_clone_panels_share_their_y_scale():
    fig = kurtosis_figure(kurtosis_table())
    axes = np.array(fig.axes).reshape(2, 4)
    for column in range(4):
        assert axes[0, column].get_ylim() == axes[1, column].get_ylim()
    fig = cavity_round0_figure(group_means(), rounds=3)
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()


def test_image_grids_with_row_labels_are_at_least_1000_px_wide(tmp_path):
    """Text extents change with dpi: the width is measured at the dpi the PNG is saved at."""
    fig = image_grid_figure({f"data: class {c}": torch.rand(4, 1, 8, 8) for c in range(8)}, cols=4)
    png = save_figure(fig, "toy", "grid", {}, tmp_path, caption=caption_line("Fig. 3A", "smoke", [0], "one row per class " * 5))
    with Image.open(png) as image:
        assert image.width >= 1000


def test_the_caption_lies_below_the_x_label():
    fig, ax = plt.subplots(figsize=(5.5, 3.2))  # no layout engine: the x label hangs below the figure's edge
    ax.set_xlabel("pixel kurtosis")
    text = draw_caption(fig, "Fig. 3A · preset smoke · 1 seed · histogram")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert text.get_window_extent(renderer).y1 < ax.xaxis.label.get_window_extent(renderer).y0


def test_ipr_figure_draws_one_histogram_per_group_with_the_gaussian_reference():
    values = {"data": torch.tensor([1.5, 4.0, 20.0, 60.0]), "clone": torch.tensor([2.0, 2.5, 3.5])}
    fig = ipr_figure({"left": values, "right": {"data": values["data"]}}, 64, density=True)
    left, right = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["left", "right"]
    assert left.get_legend_handles_labels()[1] == ["data", "clone"] and len(right.containers) == 1
    assert sum(p.get_height() > 0 for p in left.containers[1]) == 3  # the clone's three values, one bin each
    assert left.get_xscale() == "log" and left.get_ylabel() == "density"
    assert any(line.get_xdata()[0] == 3 and line.get_linestyle() == "--" for line in left.lines)
    assert ipr_figure({"": values}, 64).axes[0].get_ylabel() == "units"


def test_connections_figure_bars_are_the_counts_and_the_line_the_binomial_null():
    mask = torch.zeros(5, 16, dtype=torch.bool)
    mask[0, :4] = mask[1, :4] = mask[2, :1] = True  # counts 4, 4, 1, 0, 0
    fig = connections_figure({"IMP": mask, "random": mask.flip(1)})
    ax = fig.axes[0]
    assert [ax.get_title() for ax in fig.axes] == ["IMP", "random"]
    assert [p.get_height() for p in ax.containers[0]] == [2, 1, 0, 0, 2]
    line = [line for line in ax.lines if line.get_label() == "binomial null"][0]
    np.testing.assert_allclose(line.get_ydata(), binomial_null(9, units=5, inputs=16)[:6].numpy())  # 0 .. max count + 1


def test_a_mask_mosaic_tiles_the_most_connected_units_row_major_between_grey_lines():
    mask = torch.zeros(5, 1, 2, 3)  # (units, C, H, W): unit u keeps u + 1 pixels, so the order is 4, 3, 2, 1, 0
    for unit in range(5):
        mask[unit].view(-1)[: unit + 1] = 1
    mask = mask.flatten(1)
    mosaic = mask_mosaic(mask, (1, 2, 3), rows=2, cols=3)
    assert mosaic.shape == (2 * 3 + 1, 3 * 4 + 1, 3)
    tiles = [mosaic[1 + r * 3 : 3 + r * 3, 1 + c * 4 : 4 + c * 4] for r in range(2) for c in range(3)]
    for tile, unit in zip(tiles, [4, 3, 2, 1, 0]):
        np.testing.assert_array_equal(tile, mask_images(mask[unit : unit + 1], (1, 2, 3))[0])
    np.testing.assert_array_equal(tiles[5], MOSAIC_GAP)  # no sixth unit
    lines = np.ones(mosaic.shape[:2], bool)
    lines[1:3, 1:12], lines[4:6, 1:12] = False, False
    lines[:, [4, 8]] = True
    np.testing.assert_array_equal(mosaic[lines], MOSAIC_GAP)


def test_a_component_grid_draws_each_vector_on_its_own_symmetric_scale_between_grey_lines():
    vectors = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 3.0, 0.0, -3.0], [4.0, 4.0, 4.0, 4.0]])  # three 2x2 images
    fig = component_grid_figure({"A": vectors}, (1, 2, 2), cols=2)
    (image,) = fig.axes[0].get_images()
    shown = image.get_array()
    assert image.get_clim() == (-1, 1) and shown.shape == (2 * 3 + 1, 2 * 3 + 1)
    for i, vector in enumerate(vectors):
        top, left = 1 + (i // 2) * 3, 1 + (i % 2) * 3
        expected = (vector / vector.abs().max()).reshape(2, 2).double().numpy()
        np.testing.assert_allclose(shown[top : top + 2, left : left + 2], expected)
    assert shown.mask[0].all() and shown.mask[:, 3].all() and shown.mask[4:6, 4:6].all()  # lines, and no fourth vector


def test_fig1_puts_each_methods_mosaic_above_its_average_receptive_field_on_one_colour_scale():
    g = torch.Generator().manual_seed(0)
    masks = {"IMP": torch.rand(40, 64, generator=g) < 0.2, "random": torch.rand(40, 64, generator=g) < 0.1}
    fields = {name: average_receptive_field(mask, (1, 8, 8), periodic=True) for name, mask in masks.items()}
    fig = masks_and_fields_figure(masks, fields, (1, 8, 8), rows=2, cols=3)
    *panels, colorbar = fig.axes
    assert [ax.get_title() for ax in panels] == ["IMP", "random", "IMP: average receptive field", "random: average receptive field"]
    images = [ax.get_images()[0] for ax in panels[2:]]
    top = max(float(f.max()) for f in fields.values())
    assert all(image.get_clim() == (0, top) for image in images)
    assert np.allclose(images[0].get_array(), fields["IMP"].numpy())
    assert colorbar.get_ylabel() == "share of units keeping that pixel" and len(fig.legends) == 1
    plt.close(fig)


def curves_table() -> pd.DataFrame:
    return pd.DataFrame([dict(data=which, seed=seed, step=step, train_loss=1 / step + seed, test_accuracy=0.25 + step / 100)
                         for which in ("data", "clone") for seed in (0, 1) for step in (10, 20, 30)])


def fraction_table() -> pd.DataFrame:
    return pd.DataFrame([dict(method=method, seed=seed, train_fraction=f, rf_width_ratio=f + seed, accuracy=0.5 + f / 2)
                         for method in ("dense", "imp") for seed in (0, 1) for f in (0.25, 0.5, 1.0)])


def test_pixel_kurtosis_figure_draws_a_histogram_per_dataset_in_its_colour_and_the_gaussians_3():
    fig = pixel_kurtosis_figure({"data": torch.tensor([2.0, 5.0, 9.0]), "clone": torch.tensor([2.9, 3.0, 3.1])})
    (ax,) = fig.axes
    assert ax.get_legend_handles_labels()[1] == ["data", "clone"]
    assert [matplotlib.colors.to_hex(bars[0].get_facecolor()) for bars in ax.containers] == [DATA_COLOURS["data"], DATA_COLOURS["clone"]]
    assert sum(p.get_height() for p in ax.containers[0]) == 3 and len(ax.containers[0]) == 40
    assert any(line.get_xdata()[0] == 3 and line.get_linestyle() == "--" for line in ax.lines)


def test_learning_curves_figure_marks_the_rewind_step_and_chance_beside_each_seed_mean():
    fig = learning_curves_figure(curves_table(), rewind_step=10, chance=0.25)
    loss, accuracy = fig.axes
    assert loss.get_xlabel() == AXIS_LABELS["step"] and accuracy.get_ylabel() == AXIS_LABELS["test_accuracy"]
    data = next(line for line in loss.get_lines() if line.get_label() == "data")
    np.testing.assert_allclose(data.get_ydata(), [0.1 + 0.5, 0.05 + 0.5, 1 / 30 + 0.5])  # mean over seeds 0, 1
    assert [line.get_xdata()[0] for line in loss.lines if line.get_linestyle() == ":"] == [10]
    assert [line.get_ydata()[0] for line in accuracy.lines if line.get_linestyle() == "--"] == [0.25]
    assert "rewind step 10" in [t.get_text() for t in accuracy.get_legend().get_texts()]


def test_superclasses_figure_draws_a_curve_per_labelling_sparser_to_the_right():
    fig = superclasses_figure(localization_table().assign(labels=lambda t: t.data))
    ratio, accuracy = fig.axes
    assert ratio.xaxis_inverted() and accuracy.xaxis_inverted() and ratio.get_xscale() == "log"
    assert [t.get_text() for t in ratio.get_legend().get_texts()] == ["data", "clone"]
    assert [line.get_ydata()[0] for line in ratio.lines if line.get_linestyle() == "--"] == [1]


def test_train_fraction_figure_shows_imps_ratio_and_both_accuracies_by_fraction():
    fig = train_fraction_figure(fraction_table())
    ratio, accuracy = fig.axes
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == ["dense", "IMP"] and ratio.get_legend() is None
    np.testing.assert_allclose(ratio.get_lines()[0].get_ydata(), [0.75, 1.0, 1.5])  # IMP's ratio, mean over seeds
    assert ratio.get_xlabel() == AXIS_LABELS["train_fraction"]


def test_cavity_by_round_figure_takes_a_title_over_its_panels():
    fig = cavity_by_round_figure(group_means().query("data == 'data'"), rounds=3, title="data")
    assert fig._suptitle.get_text() == "data"
    assert cavity_by_round_figure(group_means().query("data == 'data'"), rounds=3)._suptitle is None
