"""Heuristic quality signals and rule sets: exact signal values on hand-made documents, line modifiers,
URL and word lists, and the FineWeb-order pipeline on the sample crawl with exact counts per rule."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.stage import StageContext
from tokenmill.quality.config import QualityFilterParams
from tokenmill.quality.modifiers import c4_lines, refinedweb_lines
from tokenmill.quality.rules import C4LinesParams, RefinedWebLinesParams
from tokenmill.quality.signals import SignalSpec, compute_signals
from tokenmill.quality.url_filter import UrlFilterParams, url_filter
from tokenmill.quality.word_filter import WordFilterParams, word_filter
from tokenmill.schema import REMOVED_BY
from tokenmill.text.words import count_sentences, spacy_words, words_for


def signals(text, lang=None):
    return compute_signals([text], [lang], SignalSpec()).to_pylist()[0]


def test_words_follow_spacy_rules():
    assert spacy_words("Don't stop, it's 3.5km (approx.) from the U.S. border... e.g. well-known!") == [
        "Do", "n't", "stop", ",", "it", "'s", "3.5", "km", "(", "approx", ".", ")", "from", "the", "U.S.",
        "border", "...", "e.g.", "well", "-", "known", "!"]
    assert spacy_words("Visit https://example.com/a?b=1. #tag") == ["Visit", "https://example.com/a?b=1", ".",
                                                                     "#", "tag"]
    assert words_for("城市的老面包店。", "zh") == ["城", "市", "的", "老", "面", "包", "店", "。"]
    assert count_sentences(spacy_words('He left. "Why?" she asked. Mr. Smith stayed.')) == 4  # as spaCy's sentencizer


def test_signals_edge_cases():
    empty = signals("")
    assert (empty["qs_n_chars"], empty["qs_n_words"], empty["qs_word_count"]) == (0, 0, 0)
    assert empty["qs_mean_word_length"] is None and empty["qs_alpha_words_ratio"] is None
    assert empty["qs_line_punct_ratio"] is None and empty["qs_dup_5gram_char_frac"] is None

    one = signals("Hello")
    assert (one["qs_n_words"], one["qs_word_count"], one["qs_mean_word_length"]) == (1, 1, 5.0)
    assert one["qs_alpha_words_ratio"] == 1.0 and one["qs_stop_words"] == 0
    assert one["qs_top_2gram_char_frac"] is None and one["qs_dup_5gram_char_frac"] == 0.0
    assert (one["qs_line_punct_ratio"], one["qs_short_line_ratio"]) == (0.0, 1.0)

    blank = signals("   \n  ")
    assert (blank["qs_n_words"], blank["qs_n_lines"]) == (0, 2) and blank["qs_line_punct_ratio"] is None

    punct = signals("!!! ... ???")
    assert (punct["qs_n_words"], punct["qs_word_count"]) == (7, 0)
    assert punct["qs_mean_word_length"] is None and punct["qs_alpha_words_ratio"] == 0.0
    assert punct["qs_ellipsis_word_ratio"] == pytest.approx(1 / 7)

    long_line = signals("a" * 2000 + " end.")
    assert long_line["qs_max_word_length"] == 2000 and long_line["qs_mean_word_length"] == 1001.5

    zh = signals("城市的老面包店每天早上六点开门。", "zh")
    assert (zh["qs_n_words"], zh["qs_word_count"], zh["qs_stop_words"]) == (16, 15, 1)
    assert zh["qs_mean_word_length"] is None  # words are characters: the length rule does not apply
    assert signals("Der Hund und die Katze.", "de")["qs_stop_words"] == 2  # und, die ("Der": case-sensitive)
    assert signals("Hund", "xx")["qs_stop_words"] is None  # no list for the language: rule skipped


def test_repetition_signals_exact():
    s = signals("the cat the cat the dog")
    assert s["qs_top_2gram_char_frac"] == pytest.approx(14 / 23)  # "the cat" x2 (first of the ties)
    assert s["qs_top_3gram_char_frac"] == pytest.approx(22 / 23)  # "the cat the" x2
    assert s["qs_stop_words"] == 1
    s = signals("a b c d e a b c d e")
    assert s["qs_dup_5gram_char_frac"] == pytest.approx(5 / 19) and s["qs_dup_6gram_char_frac"] == 0.0
    s = signals("a b c\na b c\nx y z")
    assert s["qs_dup_line_frac"] == pytest.approx(1 / 3) and s["qs_dup_line_char_frac"] == pytest.approx(5 / 17)
    assert s["qs_dup_nonempty_line_char_ratio"] == pytest.approx(5 / 15)
    assert s["qs_newline_word_ratio"] == pytest.approx(2 / 9)
    s = signals("First para.\n\nSecond para.\n\nFirst para.")
    assert s["qs_dup_para_frac"] == pytest.approx(1 / 3) and s["qs_dup_para_char_frac"] == pytest.approx(11 / 38)
    s = signals("- one\n- two\n• three\nfour...")
    assert s["qs_bullet_lines_ratio"] == 0.75 and s["qs_ellipsis_lines_ratio"] == 0.25
    s = signals("#a #b c... d…")
    assert s["qs_hash_word_ratio"] == pytest.approx(2 / 8) and s["qs_ellipsis_word_ratio"] == pytest.approx(2 / 8)
    s = signals("lorem ipsum dolor {x}")
    assert s["qs_lorem_ipsum"] and s["qs_curly_brace"]


def test_c4_line_modifier_exact_text():
    text = ("Click here\nThe committee published the annual report last week. It was late [1].\n"
            "Please enable JavaScript to view this page.\nThis website uses cookies to improve things.\n"
            "Short line.\nWe're still waiting for an answer!")
    new, facts = c4_lines(text, C4LinesParams())
    assert new == ("The committee published the annual report last week. It was late .\n"
                   "We're still waiting for an answer!")
    assert facts == {"c4_lines_removed": 4, "c4_chars_removed": len(text) - len(new), "c4_sentences": 3,
                     "c4_lorem_ipsum": False, "c4_curly_bracket": False}
    new, facts = c4_lines(text, C4LinesParams(filter_no_terminal_punct=False))
    assert new.splitlines()[0] == "The committee published the annual report last week. It was late ."
    assert facts["c4_lines_removed"] == 4  # "Click here" and "Short line." have < 3 words
    _, facts = c4_lines("function f() { return 1; }\nLorem ipsum dolor sit amet.", C4LinesParams())
    assert facts["c4_lorem_ipsum"] and facts["c4_curly_bracket"] is False  # no terminal punct on the code line


def test_refinedweb_line_modifier_exact_text():
    text = ("HOME ABOUT CONTACT\nThe bakery opens at six and closes at noon.\n12 likes\n2024\n"
            "Read more\nOur guide explained the river's course after each flood.")
    new, facts = refinedweb_lines(text, RefinedWebLinesParams())
    assert new == ("The bakery opens at six and closes at noon.\n"
                   "Our guide explained the river's course after each flood.")
    assert facts["rw_lines_removed"] == 4 and facts["rw_words_removed_frac"] == pytest.approx(8 / 26)


def _frame(spark, rows):
    return spark.createDataFrame(
        [(r[0], "src", r[1], r[2], None) for r in rows],
        "id string, source string, url string, text string, removed_by string")


def _ctx(spark, tmp_path):
    return StageContext(spark, (), str(tmp_path / "c.yaml"), str(tmp_path / "work"))


def test_url_filter_lists(spark, tmp_path):
    domains = tmp_path / "domains"
    domains.write_text("# blocked\ncasino-bonus.example\nwww.Spam-Farm.example.net\n")
    urls = tmp_path / "urls"
    urls.write_text("example.org/forum/spam\n")
    allow = tmp_path / "allow"
    allow.write_text("ok.casino-bonus.example\n")
    df = _frame(spark, [
        ("1", "https://casino-bonus.example/page", "t"), ("2", "http://a.b.casino-bonus.example/x", "t"),
        ("3", "https://ok.casino-bonus.example/", "t"), ("4", "https://spam-farm.example.net", "t"),
        ("5", "https://www.example.org/forum/spam/thread-9?x=1", "t"), ("6", "https://example.org/forum/ok", "t"),
        ("7", "https://shop.example.com/buy-viagra-online", "t"), ("8", "https://x.example.com/cheap-loan", "t"),
        ("9", "https://x.example.com/cheap-bonus-loan", "t"), ("10", "https://news.example.com/casinoroyale", "t"),
        ("11", None, "t")])
    params = UrlFilterParams(stage="url_filter", block_domains=[str(domains)], block_urls=[str(urls)],
                             allow_domains=[str(allow)], banned_words=["viagra"],
                             soft_banned_words=["cheap", "loan", "bonus"], soft_min_count=3,
                             banned_subwords=["casino"])
    out = url_filter(_ctx(spark, tmp_path), df, params)
    got = {r["id"]: (r[REMOVED_BY], r["blocked_by"]) for r in out.collect()}
    assert got == {
        "1": ("url_filter:domain", "domain:casino-bonus.example"),
        "2": ("url_filter:domain", "domain:casino-bonus.example"),
        "3": (None, None),  # allowed subdomain
        "4": ("url_filter:domain", "domain:spam-farm.example.net"),
        "5": ("url_filter:url", "url:example.org/forum/spam"),
        "6": (None, None),
        "7": ("url_filter:banned_word", "banned_word:viagra"),
        "8": (None, None),  # two soft words < 3
        "9": ("url_filter:soft_banned_words", "soft_banned_words:bonus,cheap,loan"),
        "10": ("url_filter:banned_subword", "banned_subword:casino"),
        "11": (None, None)}


def test_word_filter_per_language(spark, tmp_path):
    bad = tmp_path / "bad_en.txt"
    bad.write_text("viagra\nhot singles\n")
    df = _frame(spark, [("1", "u", "Buy Viagra today."), ("2", "u", "Meet hot singles near you"),
                        ("3", "u", "A quiet garden by the river."), ("4", "u", "热辣单身就在你附近")])
    df = df.withColumn("lang", F.when(F.col("id") == "4", "zh").otherwise("en"))
    params = WordFilterParams(stage="word_filter", lists={"en": str(bad)}, words={"zh": ["单身"]})
    out = word_filter(_ctx(spark, tmp_path), df, params)
    got = {r["id"]: (r[REMOVED_BY], r["bad_words"]) for r in out.collect()}
    assert got == {"1": ("word_filter:listed_words", 1), "2": ("word_filter:listed_words", 1), "3": (None, 0),
                   "4": ("word_filter:listed_words", 1)}
    with pytest.raises(ConfigError, match="not found"):
        word_filter(_ctx(spark, tmp_path), df, WordFilterParams(stage="word_filter", lists={"en": "/nope.txt"}))


def test_rule_set_overrides_are_validated():
    p = QualityFilterParams(stage="quality_filter", rules="gopher_quality",
                            overrides={"gopher_short_doc": {"min": 100}}, disable=["gopher_long_doc"])
    rules = {r.name: r for r in p.rule_set.active()}
    assert rules["gopher_short_doc"].min == 100 and "gopher_long_doc" not in rules
    with pytest.raises(ConfigError, match="not in rule set"):
        QualityFilterParams(stage="quality_filter", rules="gopher_quality", overrides={"nope": {"min": 1}})
    with pytest.raises(ConfigError, match="unknown quality rule set"):
        QualityFilterParams(stage="quality_filter", rules="nope")


def test_fineweb_pipeline_exact_counts(fineweb_run, spark):
    cfg, out, result = fineweb_run
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    # FineWeb keeps English with a language score of 0.65 or more: the sample is multilingual (57 English)
    assert stages["language_filter"]["removed"] == {"language": 263}
    assert set(result.manifest["output"]["languages"]["kept"]) == {"en"}
    assert stages["gopher_repetition"]["rows_in"] == 57
    assert stages["gopher_repetition"]["removed"] == {
        "dup_para_frac": 10, "duplicated_10_n_grams": 2, "duplicated_5_n_grams": 26, "duplicated_6_n_grams": 1,
        "duplicated_8_n_grams": 1, "top_2_gram": 6}
    assert stages["gopher_quality"]["removed"] == {"gopher_short_doc": 4}
    assert stages["c4"]["removed"] == {} and stages["fineweb"]["removed"] == {}
    assert result.manifest["output"]["rows"] == 7
    # Every rule a document fails is counted, not only the first.
    failed = result.manifest["output"]["quality"]["failed_by_rule"]["gopher_repetition"]
    assert failed["duplicated_5_n_grams"] >= 26 and sum(failed.values()) > 46
    removed = spark.read.parquet(f"{out}/removed").where(F.col(REMOVED_BY).startswith("gopher_repetition:"))
    row = removed.where(F.size("quality_failed") > 1).first()
    assert row["quality_failed"][0] == row[REMOVED_BY].split(":")[1]
    kept = spark.read.parquet(f"{out}/data")
    assert kept.where(F.col("qs_word_count") < 50).count() == 0
    mods = result.manifest["output"]["quality"]["line_modifiers"]["c4"]
    assert mods["lines_removed"] == kept.agg(F.sum("c4_lines_removed")).first()[0]


def test_threshold_override_from_command_line(fineweb_run, spark):
    cfg, out, _ = fineweb_run
    plan = load_pipeline(str(cfg), [f"output={out}-override", "stages[6].overrides.gopher_short_doc.min=150"])
    result = run(spark, plan)
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    assert stages["gopher_repetition"]["rows_out"] == 11  # the same up to the overridden stage
    assert stages["gopher_quality"]["removed"]["gopher_short_doc"] == 6  # also the kept 112 and 131 words


def test_quality_rules_job_reapplies_thresholds(fineweb_run, capsys, tmp_path):
    """New thresholds on the stored signals: counts per rule, no text read again."""
    import argparse

    from tokenmill.quality.job import quality_rules_job

    _, out, _ = fineweb_run
    report = tmp_path / "rules.json"
    args = argparse.Namespace(input=str(out), rules="gopher_quality", out=str(report), spark_profile="test",
                              set=["overrides.gopher_short_doc.min=150", "disable=[gopher_long_doc]"])
    assert quality_rules_job(args) == 0
    result = json.loads(report.read_text())
    assert result["documents"] == 7  # kept documents of 112, 131, 150, 192, 197, 199 and 212 words
    assert result["failed_by_rule"] == {"gopher_short_doc": 2} and result["kept"] == 5
    printed = capsys.readouterr().out
    assert "gopher_short_doc" in printed and "gopher_long_doc" not in printed  # disabled
    with pytest.raises(ConfigError, match="rewrites lines"):
        quality_rules_job(argparse.Namespace(input=str(out), rules="c4", out=None, spark_profile="test", set=[]))


def test_removed_rows_keep_the_signals_that_removed_them(fineweb_run, spark):
    """A second quality_signals pass (after the C4 line modifier) recomputes live rows only: rows an earlier
    rule set removed keep the values it judged (report.html draws them against the threshold)."""
    _, out, _ = fineweb_run
    removed = spark.read.parquet(str(out / "removed")).where(F.col("removed_by").startswith("gopher_repetition:"))
    assert removed.count() == 46
    assert removed.where(F.col("qs_dup_5gram_char_frac").isNull()).count() == 0
    assert removed.where(F.col("quality_failed").isNull()).count() == 0
