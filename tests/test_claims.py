"""The verdict rule by simulation against known truth and against SciPy's t-test; Holm; the claims record."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from imprf_utils.report import claims, tables
from imprf_utils.report.claims import BELOW_MARGIN, KINDS, Claim, claims_table, judge, verdict
from imprf_utils.report.records import (compare_folders, compare_records, judged_in, read_claims_record,
                                        write_claims_record)
from imprf_utils.report.tables import markdown_summary, rollup
from imprf_utils.training.presets import load_preset

ALPHA = 0.05


def binomial_tolerance(p: float, draws: int) -> float:
    """Four binomial standard errors of a rate p estimated from ``draws`` trials."""
    return 4 * math.sqrt(p * (1 - p) / draws)


def test_zero_effect_holds_at_rate_alpha():
    rng = np.random.default_rng(0)
    draws = 4000
    held = sum(verdict(rng.normal(0, 1, 5), direction="greater", margin=0.5) == "holds" for _ in range(draws))
    tolerance = binomial_tolerance(ALPHA, draws)
    assert held / draws <= ALPHA + tolerance
    assert held / draws >= ALPHA - tolerance  # the t bound is exact, not merely conservative


def test_large_effect_holds_and_tiny_zero_effect_fails():
    rng = np.random.default_rng(1)
    assert verdict(rng.normal(1.0, 0.1, 5), direction="greater", margin=0.1) == "holds"
    assert verdict(rng.normal(0.0, 1e-3, 5), direction="greater", margin=0.1) == "fails"
    assert verdict(rng.normal(-1.0, 0.1, 5), direction="greater", margin=0.1) == "fails"  # wrong sign
    assert verdict(rng.normal(0.05, 1.0, 5), direction="greater", margin=0.1) == "inconclusive"


def test_below_margin_is_a_real_effect_smaller_than_the_margin_and_rarely_mislabels_one_that_is_not():
    """An effect of half the margin, measured precisely, holds (below margin); an effect of at least the
    margin is called so at rate at most α (at exactly the margin, about α: the upper bound is exact)."""
    rng = np.random.default_rng(3)
    assert verdict(rng.normal(0.05, 0.001, 5), direction="greater", margin=0.1) == BELOW_MARGIN
    assert verdict(rng.normal(-0.05, 0.001, 5), direction="less", margin=0.1) == BELOW_MARGIN
    assert verdict(rng.normal(0.2, 0.001, 5), direction="greater", margin=0.1) == "holds"
    draws = 4000
    at_margin = [verdict(rng.normal(0.1, 0.02, 5), direction="greater", margin=0.1) for _ in range(draws)]
    rate = sum(v in (BELOW_MARGIN, "fails") for v in at_margin) / draws
    assert ALPHA - binomial_tolerance(ALPHA, draws) <= rate <= ALPHA + binomial_tolerance(ALPHA, draws)
    zero = [verdict(rng.normal(0, 1, 5), direction="greater", margin=0.5) for _ in range(draws)]
    assert sum(v in ("holds", BELOW_MARGIN) for v in zero) / draws <= ALPHA + binomial_tolerance(ALPHA, draws)


def test_a_row_judged_elsewhere_is_shown_outside_holms_family_and_counted_once(tmp_path):
    rng = np.random.default_rng(8)
    strong, weak = rng.normal(1, 0.1, 5), rng.normal(0.3, 0.2, 5)
    alone = judge([Claim("claim", "weak", "—", weak, "greater", 0.1)])
    with_reference = judge([
        Claim("claim", "weak", "—", weak, "greater", 0.1),
        Claim("claim", "strong, as notebook 03 measures it", "—", strong, "greater", 0.1, same_as="03, row 1"),
    ])
    assert with_reference.alpha.tolist() == [ALPHA, ALPHA] and with_reference.lower[0] == alone.lower[0]
    assert with_reference.verdict.tolist() == [alone.verdict[0], "= 03, row 1"]
    record = read_claims_record(write_claims_record(with_reference, "07", dataset="d", preset="default", figures_dir=tmp_path))
    assert record["rows"][1]["same_as"] == "03, row 1" and "same_as" not in record["rows"][0]
    assert rollup([record]).total.tolist() == [1]
    assert "strong, as notebook 03" not in markdown_summary([record])


def test_a_row_is_a_reference_only_where_the_named_record_judges_the_same_values(tmp_path):
    values = np.random.default_rng(9).normal(0.3, 0.02, 5)
    assert judged_in("02, row 1", values, dataset="d", figures_dir=tmp_path) is None  # 02 has not run: judge it here
    write_claims_record(judge([Claim("sanity check", "learnable", "—", values, "greater", 0.05)]), "02", dataset="d",
                        preset="default", figures_dir=tmp_path)
    assert judged_in("02, row 1", values, dataset="d", figures_dir=tmp_path) == "02, row 1"
    assert judged_in("02, row 1", values + 0.01, dataset="d", figures_dir=tmp_path) is None  # other networks
    assert judged_in("02, row 1", values, dataset="other", figures_dir=tmp_path) is None  # other data
    assert judged_in("02, row 2", values, dataset="d", figures_dir=tmp_path) is None  # no such row


def test_less_mirrors_greater():
    rng = np.random.default_rng(2)
    for _ in range(300):
        x = rng.normal(rng.normal(0, 0.5), rng.uniform(0.01, 1), rng.integers(2, 9))
        margin = rng.uniform(0.01, 1)
        assert verdict(x, direction="greater", margin=margin) == verdict(-x, direction="less", margin=margin)


def test_verdict_agrees_with_scipy_one_sided_t_tests():
    """holds iff the t-test of mean 0 rejects towards the claim (below margin when the t-test of
    mean = margin rejects towards smaller effects too); fails iff, not holding, that second test rejects."""
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(250):
        n = int(rng.integers(2, 12))
        x = rng.normal(rng.normal(0, 0.3), rng.uniform(0.05, 0.5), n)
        margin = float(rng.uniform(0.05, 0.5))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        for direction, sign in (("greater", 1), ("less", -1)):
            holds = stats.ttest_1samp(x, 0.0, alternative=direction).pvalue < alpha
            short = stats.ttest_1samp(sign * x, margin, alternative="less").pvalue < alpha
            expected = (BELOW_MARGIN if short else "holds") if holds else "fails" if short else "inconclusive"
            assert verdict(x, direction=direction, margin=margin, alpha=alpha) == expected
            seen.add(expected)
    assert seen == {"holds", BELOW_MARGIN, "fails", "inconclusive"}


def test_zero_spread_uses_the_mean():
    assert verdict([0.2, 0.2, 0.2], direction="greater", margin=0.1) == "holds"
    assert verdict([0.0, 0.0], direction="greater", margin=0.1) == "fails"
    assert verdict([0.2, 0.2], direction="less", margin=0.1) == "fails"


@pytest.mark.parametrize(
    "values, kwargs, message",
    [
        ([1.0], {}, "at least 2 values"),
        ([], {}, "at least 2 values"),
        ([1.0, float("nan"), 2.0], {}, r"positions \[1\] are not finite"),
        ([1.0, float("inf")], {}, "not finite"),
        ([1.0, 2.0], {"direction": "up"}, "'greater' or 'less'"),
        ([1.0, 2.0], {"margin": 0.0}, "margin must be"),
        ([1.0, 2.0], {"margin": -1.0}, "margin must be"),
        ([1.0, 2.0], {"alpha": 0.5}, r"alpha must lie in \(0, 0.5\)"),
        ([1.0, 2.0], {"alpha": 0.0}, r"alpha must lie in \(0, 0.5\)"),
    ],
)
def test_verdict_errors_say_what_to_do(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        verdict(values, **{"direction": "greater", "margin": 0.1, **kwargs})


def test_claim_checks_its_fields():
    with pytest.raises(ValueError, match="kind must be one of"):
        Claim("finding", "x", "—", [1.0, 2.0], "greater", 0.1)
    with pytest.raises(ValueError, match="'my claim'.*at least 2 values"):
        Claim("claim", "my claim", "—", [1.0], "greater", 0.1)
    with pytest.raises(ValueError, match="margin must be"):
        Claim("claim", "x", "—", [1.0, 2.0], "greater", 0.0)


def holm_reference(p: list[float], alpha: float) -> list[bool]:
    """Holm (1979): reject the ordered hypotheses while p_(i) < alpha / (m - i + 1)."""
    m = len(p)
    reject = [False] * m
    for rank, index in enumerate(sorted(range(m), key=lambda i: p[i])):
        if p[index] < alpha / (m - rank):
            reject[index] = True
        else:
            break
    return reject


def random_claims(rng: np.random.Generator, m: int) -> list[Claim]:
    out = []
    for i in range(m):
        direction = str(rng.choice(["greater", "less"]))
        effect = rng.choice([0.0, 0.3, 1.0]) * (1 if direction == "greater" else -1) * rng.choice([1, 1, -1])
        values = rng.normal(effect, rng.uniform(0.1, 1.0), int(rng.integers(3, 9)))
        out.append(Claim(str(rng.choice(KINDS)), f"row {i}", "—", values, direction, float(rng.uniform(0.05, 0.5))))
    return out


def test_judge_is_holm_across_all_rows():
    rng = np.random.default_rng(4)
    rejections = 0
    for _ in range(60):
        rows = random_claims(rng, int(rng.integers(1, 9)))
        p = [stats.ttest_1samp(c.values, 0.0, alternative=c.direction).pvalue for c in rows]
        expected = dict(zip([c.claim for c in rows], holm_reference(p, ALPHA)))
        judged = judge(rows, alpha=ALPHA)
        for row in judged.itertuples():
            assert (row.verdict == "holds") == expected[row.claim]
            assert verdict(row.values, direction=row.direction, margin=row.margin, alpha=row.alpha) == row.verdict
            one_sided = stats.ttest_1samp(row.values, 0.0, alternative="greater").confidence_interval(1 - row.alpha)
            assert row.lower == pytest.approx(one_sided.low, rel=1e-9, abs=1e-12)
            assert row.upper == pytest.approx(2 * row.estimate - one_sided.low, rel=1e-9, abs=1e-12)
        rejections += sum(expected.values())
    assert rejections > 20  # the comparison covered rejections, not only acceptances


def test_judge_columns_and_order():
    rows = [
        Claim("sanity check", "s", "—", [1.0, 1.1, 0.9], "greater", 0.1),
        Claim("claim", "c1", "Fig. 4A", [1.0, 1.2, 0.8], "greater", 0.1),
        Claim("positive control", "p", "Fig. 2", [-1.0, -1.1, -0.9], "less", 0.1),
        Claim("claim", "c2", "—", [0.0, 0.1, -0.1], "greater", 0.1),
    ]
    judged = judge(rows)
    assert list(judged.columns[:10]) == [
        "kind", "claim", "figure", "direction", "margin", "n", "estimate", "sd", "interval", "verdict"
    ]
    assert {"lower", "upper", "alpha"} <= set(judged.columns)
    assert list(judged["claim"]) == ["c1", "c2", "p", "s"]
    # p-value ranks: s 1 and p 2 (equal p, ties in given order), c1 3, c2 4 (not rejected at 0.05 / 1)
    assert list(judged["alpha"]) == pytest.approx([0.05 / 2, 0.05, 0.05 / 3, 0.05 / 4])


def test_holm_levels_stop_at_the_first_acceptance():
    """After the first non-rejection (rank 2 here) every later rank is judged at that rank's level."""
    assert claims.holm_alphas([0.5, 0.001, 0.03, 0.02], 0.05) == pytest.approx([0.05 / 3, 0.05 / 4, 0.05 / 3, 0.05 / 3])


def test_claims_table_text_is_stable_and_shows_every_kind():
    rng = np.random.default_rng(5)
    rows = [Claim(kind, f"{kind} row", "—", rng.normal(1, 0.2, 5), "greater", 0.1, "px") for kind in KINDS]
    table = claims_table(judge(rows))
    assert list(table.columns) == ["kind", "claim", "figure", "claimed", "n", "estimate", "interval", "verdict"]
    text = repr(table)
    assert "0x" not in text
    for kind in KINDS:
        assert kind in text
    assert table["claimed"].iloc[0] == "> 0, margin 0.1 px"
    assert repr(claims_table(judge(rows))) == text


def committed_and_replicate(shift: float = 0.0):
    rng = np.random.default_rng(6)
    draw = lambda mean: rng.normal(mean, 0.05, 5)  # noqa: E731
    a = judge([Claim("claim", "local", "Fig. 4A", draw(0.1), "greater", 0.02),
               Claim("sanity check", "kappa 3", "—", draw(0.0), "less", 0.05)])
    b = judge([Claim("claim", "local", "Fig. 4A", draw(0.1) + shift, "greater", 0.02),
               Claim("sanity check", "kappa 3", "—", draw(0.0), "less", 0.05)])
    return a, b


def test_record_round_trips(tmp_path):
    judged, _ = committed_and_replicate()
    path = write_claims_record(judged, "03_imp_vs_oneshot_vs_random", dataset="skewed_texture", preset="smoke",
                               figures_dir=tmp_path)
    assert path == tmp_path / "skewed_texture" / "claims_03.json"
    assert [p.name for p in path.parent.iterdir()] == ["claims_03.json"]  # no temporary file left
    record = read_claims_record(path)
    assert record["preset"] == "smoke" and record["alpha"] == 0.05
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=claims.__file__.rsplit("/", 3)[0])
    assert record["commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    for row, (_, expected) in zip(record["rows"], judged.iterrows()):
        assert row["values"] == list(expected["values"])
        for key in ("kind", "claim", "figure", "direction", "margin", "n", "estimate", "sd", "lower", "upper", "verdict"):
            assert row[key] == expected[key]
            assert type(row[key]) in (str, int, float)
    assert json.loads(path.read_text())["rows"][0]["n"] == 5
    with pytest.raises(ValueError, match="two-digit number"):
        write_claims_record(judged, "imp", dataset="d", preset="smoke", figures_dir=tmp_path)
    assert "changed" not in record  # written without the notebook's parameters, like the records committed before the field


def test_record_says_which_parameters_differ_from_its_preset(tmp_path):
    """A notebook passes its globals(): `-p steps 200 -p run_store ...` on the smoke preset is recorded as
    changed steps (a location is not a change); the same values as the preset record "changed": {}."""
    judged, _ = committed_and_replicate()
    smoke = load_preset("smoke")
    notebook_globals = {**smoke, "steps": 200, "hidden": (32, 32), "run_store": str(tmp_path), "judged": judged}
    path = write_claims_record(judged, "03", dataset="d", preset="smoke", figures_dir=tmp_path, parameters=notebook_globals)
    assert read_claims_record(path)["changed"] == {"steps": 200}
    path = write_claims_record(judged, "03", dataset="d", preset="smoke", figures_dir=tmp_path, parameters=smoke)
    assert read_claims_record(path)["changed"] == {}
    copied = write_claims_record(judged, "03", dataset="d", preset="mine", figures_dir=tmp_path / "mine", parameters=smoke)
    assert "changed" not in read_claims_record(copied)  # a copied preset's values are unknown to the record


def test_compare_records(tmp_path):
    committed, replicate = committed_and_replicate()
    _, shifted = committed_and_replicate(shift=0.5)

    def record(judged, name):
        return read_claims_record(write_claims_record(judged, "03", dataset=name, preset="default", figures_dir=tmp_path))

    base = record(committed, "a")
    assert compare_records(record(replicate, "b"), base) == []
    problems = compare_records(record(shifted, "c"), base)
    assert len(problems) == 1 and "'local'" in problems[0] and "standard errors" in problems[0]
    fewer = dict(base, rows=base["rows"][:1])
    assert any("missing from the new one" in p for p in compare_records(fewer, base))
    flipped = dict(base, rows=[dict(base["rows"][0], verdict="fails"), base["rows"][1]])
    assert compare_records(flipped, base) == []  # verdicts are not compared
    exact = dict(base, rows=[dict(base["rows"][0], sd=0.0)])
    assert compare_records(exact, exact) == []
    moved = dict(exact, rows=[dict(exact["rows"][0], estimate=exact["rows"][0]["estimate"] * (1 + 1e-6))])
    assert any("without spread" in p for p in compare_records(moved, exact))


def test_rollup_and_markdown_summary(tmp_path, capsys):
    rng = np.random.default_rng(7)
    rows = [
        Claim("claim", "strong | effect", "Fig. 4A", rng.normal(1, 0.1, 5), "greater", 0.1),
        Claim("claim", "no effect", "—", rng.normal(0, 1e-3, 5), "greater", 0.1),
        Claim("positive control", "by construction", "Fig. 2", rng.normal(1, 0.1, 5), "greater", 0.1),
        Claim("positive control", "real but small", "Fig. 2", rng.normal(0.05, 1e-3, 5), "greater", 0.1),
    ]
    path = write_claims_record(judge(rows), "04_kurtosis", dataset="d", preset="default", figures_dir=tmp_path)
    record = read_claims_record(path)
    table = rollup([record])
    assert list(table.columns) == ["notebook", "kind", "holds", "below margin", "inconclusive", "fails", "total"]
    assert table.to_dict("records") == [
        {"notebook": "04_kurtosis", "kind": "claim", "holds": 1, "below margin": 0, "inconclusive": 0, "fails": 1, "total": 2},
        {"notebook": "04_kurtosis", "kind": "positive control", "holds": 2, "below margin": 1, "inconclusive": 0, "fails": 0, "total": 2},
    ]
    text = markdown_summary([record])
    assert "**Claims**" in text and "**Positive controls**" in text and "Sanity checks" not in text
    assert "strong \\| effect" in text
    assert tables.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == text
    assert tables.main([str(tmp_path / "empty")]) == 2


def test_compare_folders_checks_every_committed_record(tmp_path):
    """The CLI `--compare-with` that `make test` runs after nbval: a replicate passes, a shift or a missing record fails."""
    from imprf_utils.report.tables import main

    rng = np.random.default_rng(7)
    committed, replicate, shifted = tmp_path / "committed", tmp_path / "replicate", tmp_path / "shifted"

    def record(root, values):
        judged = judge([Claim("claim", "an effect", "Fig. 1", values, "greater", 0.1)])
        write_claims_record(judged, "03", dataset="toy", preset="default", figures_dir=root)

    record(committed, rng.normal(1.0, 0.1, 5))
    record(replicate, rng.normal(1.0, 0.1, 5))
    record(shifted, rng.normal(2.0, 0.1, 5))
    assert main([str(replicate), "--compare-with", str(committed)]) == 0
    assert main([str(shifted), "--compare-with", str(committed)]) == 1
    assert main([str(tmp_path / "empty"), "--compare-with", str(committed)]) == 1


def test_compare_folders_can_be_limited_to_some_notebooks(tmp_path):
    committed, new = tmp_path / "committed", tmp_path / "new"
    for root, number in ((committed, "03"), (committed, "06"), (new, "03")):
        judged = judge([Claim("claim", "an effect", "Fig. 1", [1.0, 1.1, 0.9], "greater", 0.1)])
        write_claims_record(judged, number, dataset="toy", preset="default", figures_dir=root)
    assert compare_folders(new, committed, notebooks=["03"]) == []
    assert any("claims_06.json" in p for p in compare_folders(new, committed))


def test_compare_folders_can_be_limited_to_one_presets_records(tmp_path):
    """The committed figures/ hold the photos preset's notebook 03 too; make test re-runs the default's only."""
    committed, new = tmp_path / "committed", tmp_path / "new"
    judged = judge([Claim("claim", "an effect", "Fig. 1", [1.0, 1.1, 0.9], "greater", 0.1)])
    for root, dataset, preset in ((committed, "toy", "default"), (committed, "photos", "photos"), (new, "toy", "default")):
        write_claims_record(judged, "03", dataset=dataset, preset=preset, figures_dir=root)
    assert compare_folders(new, committed, preset="default") == []
    assert compare_folders(new, committed) == [
        f"photos/claims_03.json: committed, but the new run wrote no such record under {new}"
    ]


ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted([*(ROOT / "figures").rglob("claims_[0-9][0-9].json"), *(ROOT / "results").rglob("claims_[0-9][0-9].json")])
"""The default preset's records (figures/) and other presets' (results/<preset>/<dataset>/)."""


def committed_preset(path: Path) -> str:
    """The preset a committed record must name: default under figures/, else its results/ folder's
    (results/photos_circular holds the photos preset's run from before the scramble option)."""
    if path.is_relative_to(ROOT / "figures"):
        return "default"
    folder = path.relative_to(ROOT / "results").parts[0]
    return "photos" if folder == "photos_circular" else folder


def test_every_notebook_has_a_committed_claims_record():
    assert sorted(p.stem for p in COMMITTED if p.parent.name == "skewed_texture") == [f"claims_0{i}" for i in range(9)]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_record_follows_the_verdict_rule(path):
    """A committed record is what `judge` makes of its own per-seed values: estimates, Holm levels,
    intervals and verdicts (the check CI can afford for a notebook it does not re-execute, e.g. 06)."""
    record = read_claims_record(path)
    assert record["preset"] == committed_preset(path), "figures/ holds the default preset's records, results/<preset>/ another preset's"
    rows = record["rows"]
    again = judge(
        [Claim(r["kind"], r["claim"], r["figure"], r["values"], r["direction"], r["margin"], r.get("unit", ""), r.get("same_as"))
         for r in rows],
        alpha=record["alpha"],
    )
    for row, (_, fresh) in zip(rows, again.iterrows()):
        assert (row["kind"], row["claim"], row["verdict"]) == (fresh["kind"], fresh["claim"], fresh["verdict"])
        for field in ("estimate", "sd", "lower", "upper", "alpha"):
            assert row[field] == pytest.approx(fresh[field], rel=1e-12, abs=1e-15), field
