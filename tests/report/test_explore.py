"""The notebooks' helpers on real runs: a new threshold's flips equal what a rerun with it removes, clusters
with exact Jaccard at or above the run's threshold, mixture plans for other model sizes, and a missing
output named with the command that makes it."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.report import explore


def test_threshold_flips_predict_the_rerun(fineweb_run, spark):
    cfg, out, result = fineweb_run
    r = explore.open_run(out, command="make run")
    rules = explore.quality_rules(r.manifest)
    short = rules[(rules["stage"] == "gopher_quality") & (rules["rule"] == "gopher_short_doc")].iloc[0]
    assert (short["signal"], short["min"]) == ("qs_word_count", 50)
    # Raising min words to 150 flips the two kept documents of 112 and 131 words ...
    flips = explore.threshold_flips(r, "gopher_quality", "gopher_short_doc", min=150)
    assert len(flips["newly_passing"]) == 0
    assert sorted(flips["newly_removed"]["qs_word_count"]) == [112, 131]
    # ... and a rerun with that threshold removes exactly those two more.
    rerun = run(spark, load_pipeline(str(cfg), [f"output={out}-flips", "stages[6].overrides.gopher_short_doc.min=150"]))
    moved = (set(flips["newly_removed"]["id"]) ==
             set(ds.dataset(f"{out}-flips/removed", format="parquet", partitioning="hive").to_table(
                 columns=["id"], filter=ds.field("removed_by") == "gopher_quality:gopher_short_doc").column("id")
                 .to_pylist()) - set(ds.dataset(f"{out}/removed", format="parquet", partitioning="hive").to_table(
                     columns=["id"]).column("id").to_pylist()))
    assert moved and rerun.manifest["output"]["rows"] == result.manifest["output"]["rows"] - 2
    # Lowering it to 30 lets the four short documents (their only failure) through this stage.
    flips = explore.threshold_flips(r, "gopher_quality", "gopher_short_doc", min=30)
    assert len(flips["newly_passing"]) == 4 and len(flips["newly_removed"]) == 0
    assert all(flips["newly_passing"]["qs_word_count"] >= 30)
    overlap = explore.rule_overlap(r, "gopher_repetition").set_index("rule")
    assert overlap["removed_by_it"].sum() == 46  # the stage's removals, each counted once
    assert overlap.loc["duplicated_10_n_grams"].tolist() == [39, 2, 2]
    with pytest.raises(ConfigError, match="no thresholded rule gopher_quality:nope"):
        explore.threshold_flips(r, "gopher_quality", "nope", min=1)


def test_clusters_jaccard_and_estimate(dedup_run):
    out, result = dedup_run
    r = explore.open_run(out, command="make run")
    top = explore.clusters(r, top=50)
    by_stage = {s["stage"]: s["removed"] for s in result.manifest["stages"]}
    assert by_stage["exact_dedup"] == {"duplicate": 19} and by_stage["minhash_dedup"] == {"near_duplicate": 15}
    assert top.groupby("reason")["removed"].sum().to_dict() == {"exact_dedup:duplicate": 19,
                                                                "minhash_dedup:near_duplicate": 15}
    assert top["size"].tolist()[:3] == [5, 4, 3] and top["survivor"].notna().all()
    assert top["survivor_url"].isna().sum() == 2  # exact duplicates whose survivor was a near duplicate
    near = top[top["reason"] == "minhash_dedup:near_duplicate"].reset_index(drop=True)
    threshold = r.manifest["stage_reports"]["minhash_dedup"]["threshold"]
    pairs = explore.jaccard_vs_estimate(r, near["dup_cluster"][0])
    assert len(pairs) == 3 and (pairs["survivor"] == near["survivor"][0]).all()
    for cid in top["dup_cluster"]:
        p = explore.jaccard_vs_estimate(r, cid)
        assert (p["jaccard"] >= threshold).all() and ((p["estimate"] - p["jaccard"]).abs() < 0.2).all()
    # keep_removed: the rows exact_dedup removed before its checkpoint keep their text in the output too
    exact = explore.cluster(r, top[top["reason"] == "exact_dedup:duplicate"]["dup_cluster"].iloc[0])
    assert exact["text"].notna().all() and len(set(exact["text"].str.split().str.join(" ").str.lower())) == 1
    members = explore.cluster(r, near["dup_cluster"][0])
    assert members["status"].tolist() == ["kept"] + ["minhash_dedup:near_duplicate"] * 3
    with pytest.raises(ConfigError, match="no duplicate cluster 'nope'"):
        explore.cluster(r, "nope")


def test_mixture_plan_for_other_sizes(sample_run):
    out, _ = sample_run
    from conftest import ROOT

    config = ROOT / "conf" / "pipelines" / "mixture_sample.yaml"
    plan, table = explore.mixture_plan(config, manifest=out / "manifest.json")
    assert plan.n_params == 15000 and plan.tokens == 300000
    bigger, table = explore.mixture_plan(config, manifest=out / "manifest.json", n_params=30000)
    assert bigger.tokens == 600000 and round(table["target_tokens"].sum()) == 600000
    assert table.set_index("source")["epochs"].to_dict()["sample-books"] == 4.0  # at its cap
    with pytest.raises(ConfigError, match="make run"):
        explore.mixture_plan(config, manifest=out / "nope.json")


def test_missing_output_names_the_command(tmp_path):
    with pytest.raises(ConfigError, match="no output here yet; make it with:\n    make run"):
        explore.open_run(tmp_path / "nothing", command="make run")
    (tmp_path / "failed.tmp").mkdir()
    (tmp_path / "failed").mkdir()
    with pytest.raises(ConfigError, match=r"did not finish.*a partial run is at .*failed.tmp.*\nmake it with"):
        explore.open_run(tmp_path / "failed", command="make run")
