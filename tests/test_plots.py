"""The figure functions: what each panel draws, from small synthetic tables, and what makes a figure read on its own."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import torch

from imprf_utils.metrics import average_receptive_field, binomial_null
from PIL import Image

from imprf_utils.plots import (
    AXIS_LABELS,
    MOSAIC_GAP,
    band,
    caption_line,
    cavity_by_round_figure,
    cavity_round0_figure,
    component_grid_figure,
    draw_caption,
    connections_figure,
    image_grid_figure,
    ipr_figure,
    kurtosis_figure,
    lag_figure,
    mask_grid_figure,
    mask_images,
    mask_mosaic,
    masks_and_fields_figure,
    matched_pairs_figure,
    save_figure,
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


def test_lag_figure_draws_one_line_per_network():
    lag = pd.DataFrame(dict(seed=[0, 0, 1, 1], level=[0, 1, 0, 1], excess=[1.0, 2.0, 1.5, 2.5], drop=[0.1, 0.0, 0.2, 0.05]))
    ax = lag_figure(lag).axes[0]
    assert [line.get_label() for line in ax.get_lines()[:2]] == ["seed 0", "seed 1"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [0.2, 0.05])


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
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "surv."]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [-0.01 + 0.0005, 0.0005, 0.01 + 0.0005, 0.02 + 0.0005])


def test_cavity_by_round_figure_shows_the_seed_mean_of_each_group_and_level():
    groups = group_means()
    fig = cavity_by_round_figure(groups[groups.data == "data"], rounds=3)
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (4, 4)  # removal rounds 1..4 × levels 0..3
    assert image[0, 0] == pytest.approx(-0.01 + 0.0005) and np.ma.is_masked(image[0, 1])  # round 1's weights are gone at level 1
    assert image[3, 3] == pytest.approx(0.02 + 3 + 0.0005)


def test_matched_pairs_figure_puts_oneshots_null_beside_imp_at_level_zero():
    stats = pd.DataFrame(dict(
        data="data", seed=[0, 0, 1, 1], level=[0, 1, 0, 1], matched_imp=[0.01, 0.02, 0.03, 0.04],
        matched_oneshot=[0.001, np.nan, 0.003, np.nan], rho_round_weight=[0.8, 0.7, 0.9, 0.6],
    ))
    left, right = matched_pairs_figure(stats).axes
    lines = {line.get_label(): line for line in left.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"IMP", "oneshot"}
    np.testing.assert_allclose(lines["IMP"].get_ydata(), [0.02, 0.03])
    np.testing.assert_allclose(lines["oneshot"].get_xdata(), [0])
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.85, 0.65])


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
    caption = caption_line("Fig. 4A", "smoke", [0, 1], "line: mean, band: min–max over seeds")
    png = save_figure(fig, "toy", "fig4a_toy", {"seeds": [0, 1]}, tmp_path, caption=caption, notebook="03")
    meta = json.loads(png.with_suffix(".json").read_text())
    assert meta["caption"] == caption and meta["notebook"] == "03"
    assert meta["parameters"] == {"seeds": [0, 1]}
    drawn = [t.get_text().replace("\n", " ") for t in fig.texts]
    assert drawn == [caption]  # wrapped at spaces only, so the words are the caption's


def test_save_figure_without_caption_writes_no_caption(tmp_path):
    fig, _ = plt.subplots(figsize=(4, 3))
    png = save_figure(fig, "toy", "plain", {}, tmp_path)
    assert "caption" not in json.loads(png.with_suffix(".json").read_text()) and not fig.texts


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


def test_band_draws_a_single_point_as_a_marker_without_a_line():
    table = pd.DataFrame(dict(method=["imp", "imp", "random"], seed=[0, 0, 0], kept=[1.0, 0.5, 0.5], rf_width_ratio=[1.0, 0.9, 1.0]))
    fig, ax = plt.subplots()
    band(ax, table, "kept", "rf_width_ratio")
    imp, random = ax.get_lines()
    assert imp.get_linestyle() == "-" and random.get_linestyle() == "None"


def test_no_figure_shows_a_raw_column_name():
    stats = pd.DataFrame(dict(
        data="data", seed=[0, 0, 1, 1], level=[0, 1, 0, 1], matched_imp=[0.01, 0.02, 0.03, 0.04],
        matched_oneshot=[0.001, np.nan, 0.003, np.nan], rho_round_weight=[0.8, 0.7, 0.9, 0.6],
    ))
    fig = matched_pairs_figure(stats)
    fig.canvas.draw()
    shown = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert not [text for text in shown if "_" in text], shown


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
