"""Language identification: exact languages, `und`, thresholds, the cascade, a fastText model trained here,
routing by language, per-language manifest counts, and the langid_eval job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pyspark.sql import functions as F

from conftest import ROOT, sample_config, write_config
from tokenmill.errors import ConfigError
from tokenmill.langid.backends import LOADS, BackendSpec, get_backend
from tokenmill.langid.codes import to_iso639_1, to_style
from tokenmill.langid.config import LangidParams, LanguageFilterParams
from tokenmill.langid.evaluate import Count, report
from tokenmill.langid.identify import identify
from tokenmill.langid.stage import build_spec, langid, language_filter
from tokenmill.langid.text import normalise
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.stage import StageContext
from tokenmill.schema import REMOVED_BY

LABELLED = ROOT / "data" / "langid" / "labelled.jsonl"
SAMPLE_LANGS = ["en", "de", "fr", "es", "it", "pt", "nl", "pl"]

# One unambiguous text per language (written by the team, not in the labelled set).
UNAMBIGUOUS = {
    "en": "The children walked along the beach every evening and collected shells until it got dark.",
    "de": "Die Kinder gingen jeden Abend am Strand entlang und sammelten Muscheln, bis es dunkel wurde.",
    "fr": "Les enfants se promenaient chaque soir sur la plage et ramassaient des coquillages jusqu'à la nuit.",
    "es": "Los niños paseaban cada tarde por la playa y recogían conchas hasta que se hacía de noche.",
    "pt": "As crianças passeavam todas as tardes pela praia e apanhavam conchas até escurecer.",
    "it": "I bambini passeggiavano ogni sera lungo la spiaggia e raccoglievano conchiglie fino al buio.",
    "nl": "De kinderen liepen elke avond langs het strand en verzamelden schelpen tot het donker werd.",
    "pl": "Dzieci co wieczór spacerowały po plaży i zbierały muszelki, dopóki nie zrobiło się ciemno.",
    "sv": "Barnen promenerade längs stranden varje kväll och samlade snäckor tills det blev mörkt.",
    "cs": "Děti se každý večer procházely po pláži a sbíraly mušle, dokud se nesetmělo.",
    "ru": "Каждый вечер дети гуляли по пляжу и собирали ракушки, пока не становилось темно.",
    "fi": "Lapset kävelivät joka ilta rannalla ja keräsivät simpukoita, kunnes tuli pimeää.",
}
NO_SIGNAL = ["", "   \n\t ", "1234 5678 90", "12.5% -> 3,000 €!", "ok", "https://example.org/a/b?c=d", "hi there"]


def _texts():
    return [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]


def _spec(**cfg):
    return build_spec(None, LangidParams(stage="langid", **cfg))


def _ctx(spark, tmp_path):
    return StageContext(spark, [], "test.yaml", str(tmp_path / "work"))


def _frame(spark, texts, removed=None):
    rows = [(f"d{i:03d}", t, "s", None if not removed or i not in removed else "x:y") for i, t in enumerate(texts)]
    return spark.createDataFrame(rows, f"id string, text string, source string, {REMOVED_BY} string")


@pytest.mark.parametrize("backend", ["cld2", "lingua"])
def test_exact_language_for_unambiguous_texts(backend):
    r = identify(list(UNAMBIGUOUS.values()), _spec(backend=backend))
    assert dict(zip(UNAMBIGUOUS, r.lang, strict=True)) == {k: k for k in UNAMBIGUOUS}
    assert all(0.5 < s <= 1.0 for s in r.score) and set(r.backend) == {backend}


@pytest.mark.parametrize("backend", ["cld2", "lingua", "cascade"])
def test_und_for_empty_digits_and_too_short(backend):
    r = identify(NO_SIGNAL + [None], _spec(backend=backend))
    assert r.lang == ["und"] * len(NO_SIGNAL) + [None]
    assert r.score == [0.0] * len(NO_SIGNAL) + [None]
    assert r.backend == [None] * (len(NO_SIGNAL) + 1)  # no backend was asked


def test_codes_are_639_1_first_and_configurable():
    assert [to_iso639_1(x) for x in ["__label__en", "__label__eng_Latn", "__label__zsm_Latn", "nb", "iw",
                                     "__label__nob_Latn", "zh-Hant", "un", "__label__gsw_Latn"]] == \
        ["en", "en", "ms", "no", "he", "no", "zh", "und", "gsw"]
    assert [to_style(x, "iso639_3") for x in ["en", "no", "und", "gsw"]] == ["eng", "nor", "und", "gsw"]
    r = identify([UNAMBIGUOUS["de"], ""], _spec(backend="cld2", codes="iso639_3"))
    assert r.lang == ["deu", "und"]


def test_prefix_is_identified_not_the_whole_text():
    text = UNAMBIGUOUS["fr"] + " " + " ".join([UNAMBIGUOUS["de"]] * 40)
    assert identify([text], _spec(backend="cld2", prefix_chars=len(UNAMBIGUOUS["fr"]))).lang == ["fr"]
    assert identify([text], _spec(backend="cld2", prefix_chars=0)).lang == ["de"]


def test_mixed_language_documents_are_flagged():
    mixed = "\n\n".join([UNAMBIGUOUS["en"], UNAMBIGUOUS["de"], UNAMBIGUOUS["en"], UNAMBIGUOUS["de"]])
    single = "\n\n".join([UNAMBIGUOUS["en"]] * 4)
    one_quote = "\n\n".join([UNAMBIGUOUS["en"]] * 5 + [UNAMBIGUOUS["de"]])
    r = identify([mixed, single, one_quote], _spec(backend="cld2", paragraphs={"mixed_share": 0.25}))
    assert r.mixed == [True, False, False]


def test_lingua_restricted_set_and_unknown_language():
    r = identify([UNAMBIGUOUS["de"], UNAMBIGUOUS["ru"]], _spec(backend="lingua", lingua={"languages": ["en", "de"]}))
    assert r.lang == ["de", "und"]  # Cyrillic is in neither language's alphabet: no guess
    with pytest.raises(ConfigError, match="lingua does not know language 'kl'"):
        identify([UNAMBIGUOUS["de"]], _spec(backend="lingua", lingua={"languages": ["en", "kl"]}))


def test_cascade_keeps_fast_answers_outside_the_accurate_set():
    """lingua restricted to eight languages may not replace CLD2's Swedish or Afrikaans with the nearest
    listed language (it did: Swedish -> German, Afrikaans -> Dutch); where CLD2 has no answer, it answers."""
    cascade = {"fast": "cld2", "accurate": "lingua", "min_score": 0.99, "min_chars": 200}
    spec = _spec(backend="cascade", cascade=cascade, lingua={"languages": SAMPLE_LANGS})
    texts = ["utredningen inrättar", "lokalförsörjningsnämndens hjälp", "daarop gewerk", "Die Kinder gingen jeden Abend"]
    r = identify(texts, spec)
    assert list(zip(r.lang, r.backend, strict=True)) == [
        ("sv", "cld2"), ("sv", "cld2"), ("af", "cld2"), ("de", "lingua")]
    assert r.score[:3] == identify(texts[:3], _spec(backend="cld2")).score  # the fast score, kept
    # lingua with every language may answer for all of them
    r = identify(texts, _spec(backend="cascade", cascade=cascade))
    assert r.backend == ["lingua"] * 4


def test_cascade_keeps_the_fast_answer_when_the_accurate_one_is_und(tmp_path):
    """The safeguard runs: CLD2 (accurate here) has no answer for a short German phrase, so fastText's stays."""
    model = _train_fasttext(tmp_path / "lid.tiny.bin")
    text = "Die Kinder gingen jeden Abend"
    assert identify([text], _spec(backend="cld2")).lang == ["und"]
    fast = identify([text], _spec(backend="fasttext", fasttext={"model": model}))
    cascade = {"fast": "fasttext", "accurate": "cld2", "min_score": 1.0, "min_chars": 200}
    r = identify([text], _spec(backend="cascade", cascade=cascade, fasttext={"model": model}))
    assert (r.lang, r.score, r.backend) == (fast.lang, fast.score, ["fasttext"]) and fast.lang == ["de"]


def test_min_letters_counts_ideographs_and_marks():
    """A Han, kana or Hangul character counts as a word's worth of letters, a vowel sign as a letter: short
    Chinese, Japanese, Korean and Indic texts are identified, not `und`."""
    from tokenmill.langid.text import letters

    assert letters("浙江") == 10 and letters("ごに") == 10 and letters("hello") == 5
    assert letters("नमस्ते") == 6  # four letters and two vowel signs
    r = identify(["浙江省杭州市", "東京都の天気", "서울 날씨", "मैं घर जा रहा हूँ", "வணக்கம் உலகம்"], _spec(backend="lingua"))
    assert r.lang == ["zh", "ja", "ko", "hi", "ta"]


def test_backends_load_once_per_process():
    spec = BackendSpec("cld2")
    get_backend(spec)
    before = dict(LOADS)
    for _ in range(3):
        identify([UNAMBIGUOUS["en"]] * 5, _spec(backend="cld2"))
    assert LOADS == before


def test_langid_stage_on_spark_skips_removed_rows(spark, tmp_path):
    texts = list(UNAMBIGUOUS.values()) + ["", "1234"]
    df = langid(_ctx(spark, tmp_path), _frame(spark, texts, removed={0}), LangidParams(stage="langid", backend="cld2"))
    got = {r["id"]: (r["lang"], r["lang_backend"]) for r in df.collect()}
    expected = {f"d{i:03d}": (lang, "cld2") for i, lang in enumerate(UNAMBIGUOUS)}
    expected.update({"d000": (None, None), "d012": ("und", None), "d013": ("und", None)})
    assert got == expected
    assert "lang_mixed" not in df.columns and {"lang", "lang_score", "lang_backend"} <= set(df.columns)


def test_cascade_asks_lingua_only_for_unsure_rows(spark, tmp_path):
    rows = _texts()
    texts = [r["text"] for r in rows] + [" ".join([UNAMBIGUOUS["de"]] * 4)]
    cascade = {"fast": "cld2", "accurate": "lingua", "min_score": 0.9, "min_chars": 150}
    fast = identify(texts, _spec(backend="cld2"))
    every = sorted({r["lang"] for r in rows})  # lingua knows every language here, so it never answers `und`
    # asked: unsure answers within lingua's set (CLD2's answers outside it, e.g. Galician, are kept)
    unsure = {i for i, (t, s) in enumerate(zip(texts, fast.score, strict=True))
              if (s < 0.9 or len(t) < 150) and fast.lang[i] in {*every, "und"}}
    assert 0 < len(unsure) < len(texts)
    params = LangidParams(stage="langid", backend="cascade", cascade=cascade, lingua={"languages": every})
    df = langid(_ctx(spark, tmp_path), _frame(spark, texts), params)
    by_backend = {r["lang_backend"]: r["count"] for r in df.groupBy("lang_backend").count().collect()}
    assert by_backend == {"lingua": len(unsure), "cld2": len(texts) - len(unsure)}
    decided = {int(r["id"][1:]) for r in df.where(F.col("lang_backend") == "lingua").select("id").collect()}
    assert decided == unsure
    confident = df.where(F.col("lang_backend") == "cld2").collect()
    assert all(r["lang"] == fast.lang[int(r["id"][1:])] for r in confident)
    # `recheck` sends every fast answer of a close-language group to the accurate backend as well.
    params = LangidParams(stage="langid", backend="cascade", lingua={"languages": every},
                          cascade={**cascade, "recheck": ["de"]})
    df = langid(_ctx(spark, tmp_path), _frame(spark, texts), params)
    assert df.where(F.col("id") == f"d{len(texts) - 1:03d}").first()["lang_backend"] == "lingua"


def test_language_filter_thresholds_exact_counts(spark, tmp_path):
    data = [("a", "en", 0.99), ("b", "en", 0.60), ("c", "de", 0.85), ("d", "de", 0.80), ("e", "fr", 0.95),
            ("f", "und", 0.0), ("g", "en", 0.70), ("h", "de", 0.95)]
    df = spark.createDataFrame([(i, "t", "s", lang, score, None) for i, lang, score in data],
                               f"id string, text string, source string, lang string, lang_score double, "
                               f"{REMOVED_BY} string")

    def removed(**cfg):
        out = language_filter(_ctx(spark, tmp_path), df, LanguageFilterParams(stage="language_filter", **cfg))
        return {r["id"]: r[REMOVED_BY] for r in out.collect() if r[REMOVED_BY]}

    assert removed(languages=["en"], min_score=0.65) == {
        "b": "language_filter:low_score", "c": "language_filter:language", "d": "language_filter:language",
        "e": "language_filter:language", "f": "language_filter:undetermined", "h": "language_filter:language"}
    # per-language thresholds (FineWeb-2 style): German needs 0.821, others the default 0.65
    assert removed(languages=["en", "de"], thresholds={"de": 0.821}) == {
        "b": "language_filter:low_score", "d": "language_filter:low_score", "e": "language_filter:language",
        "f": "language_filter:undetermined"}
    assert removed(min_score=0.9, keep_und=True) == {
        "b": "language_filter:low_score", "c": "language_filter:low_score", "d": "language_filter:low_score",
        "g": "language_filter:low_score"}
    assert removed(languages=["eng"], min_score=0.0) == {  # 639-3 codes in a config match 639-1 columns
        "c": "language_filter:language", "d": "language_filter:language", "e": "language_filter:language",
        "f": "language_filter:undetermined", "h": "language_filter:language"}


def _train_fasttext(path):
    """A tiny fastText language-ID model trained on the team's labelled texts, saved like lid.176.bin.

    Trained in a fresh process: in a process that has already loaded other native libraries, fastText's
    training at this high learning rate can hit NaN (seen here); a user trains models apart from Spark too."""
    train = path.parent / "train.txt"
    with open(train, "w", encoding="utf-8") as handle:
        for row in _texts():
            handle.write(f"__label__{row['lang']} {normalise(row['text'], 2000)}\n")
    code = ("import fasttext, sys; fasttext.train_supervised(sys.argv[1], epoch=200, lr=0.5, loss='softmax', "
            "dim=16, minn=2, maxn=4, bucket=200000, thread=1, seed=1, verbose=0).save_model(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(train), str(path)], check=True, timeout=300)
    return str(path)


def test_fasttext_model_file_through_the_stage(spark, tmp_path):
    model = _train_fasttext(tmp_path / "lid.tiny.bin")
    rows = _texts()
    texts = [r["text"] for r in rows]
    params = LangidParams(stage="langid", backend="fasttext", fasttext={"model": model})
    df = langid(_ctx(spark, tmp_path), _frame(spark, texts + ["", "123"]), params)
    got = {int(r["id"][1:]): (r["lang"], r["lang_score"]) for r in df.collect()}
    assert got[len(texts)] == ("und", 0.0) and got[len(texts) + 1] == ("und", 0.0)
    correct = sum(got[i][0] == r["lang"] for i, r in enumerate(rows))
    assert correct / len(rows) > 0.95  # its own training texts
    assert all(0.0 < got[i][1] <= 1.0 for i in range(len(rows)))
    # the cascade with fastText as its fast backend, and a missing model file
    params = LangidParams(stage="langid", backend="cascade", fasttext={"model": model},
                          cascade={"fast": "fasttext", "accurate": "cld2", "min_score": 0.5, "min_chars": 0})
    r = identify(list(UNAMBIGUOUS.values())[:2], build_spec(spark, params))
    assert set(r.backend) <= {"fasttext", "cld2"}
    # As on a cluster: the executors find the file through SparkFiles by its shipped name, not its path.
    import shutil

    from tokenmill.io.artifacts import ShippedFile
    from tokenmill.langid.stage import langid_column

    shipped = tmp_path / "shipped" / "lid.shipped.bin"
    shipped.parent.mkdir()
    shutil.copy(model, shipped)
    spark.sparkContext.addFile(str(shipped))
    spec = build_spec(spark, LangidParams(stage="langid", backend="fasttext", fasttext={"model": model}))
    moved = BackendSpec("fasttext", model=ShippedFile(str(tmp_path / "gone.bin"), "lid.shipped.bin"),
                        aliases=spec.primary.aliases)
    from dataclasses import replace

    spec = replace(spec, primary=moved)
    on_executors = _frame(spark, texts[:50]).select("id", langid_column(F.col("text"), spec).alias("r"))
    assert {r["id"]: r["r"]["lang"] for r in on_executors.collect()} == {f"d{i:03d}": got[i][0] for i in range(50)}
    with pytest.raises(ConfigError, match="fasttext model .*nope.bin.*no such file"):
        build_spec(spark, LangidParams(stage="langid", backend="fasttext", fasttext={"model": str(tmp_path / "nope.bin")}))
    with pytest.raises(ValueError, match="needs `fasttext"):
        LangidParams(stage="langid", backend="fasttext")


def test_routing_by_language_and_manifest_counts(spark, sample_dir, tmp_path):
    data = yaml_load(ROOT / "conf" / "pipelines" / "langid_route.yaml")
    base = sample_config(sample_dir, tmp_path / "out")
    data["sources"], data["output"] = base["sources"], str(tmp_path / "out")
    result = run(spark, load_pipeline(str(write_config(tmp_path / "route.yaml", data))))
    out = tmp_path / "out"
    folders = sorted(p.name for p in (out / "data").iterdir() if p.is_dir())
    assert folders == [f"lang={x}" for x in sorted(SAMPLE_LANGS + ["la"])]  # lorem ipsum pages are Latin
    langs = result.manifest["output"]["languages"]
    index = json.loads((sample_dir / "index.json").read_text())
    kept = spark.read.parquet(str(out / "data"))
    per_lang = {r["lang"]: (r["n"], r["c"]) for r in
                kept.groupBy("lang").agg(F.count("*").alias("n"), F.sum(F.length("text")).alias("c")).collect()}
    assert {k: (v["docs"], v["chars"]) for k, v in langs["kept"].items()} == per_lang
    # every normal page in a sample language is routed to its own language's folder
    normal = {p["url"]: p["lang"] for p in index["pages"] if p["category"] == "normal"}
    routed = {r["url"]: r["lang"] for r in kept.where(F.col("url").isin(list(normal))).select("url", "lang").collect()}
    assert routed == {u: lang for u, lang in normal.items() if u in routed}
    assert len(routed) >= len(normal) - 2
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    assert stages["language_filter"]["rows_in"] == 320
    assert stages["language_filter"]["rows_out"] == sum(v["docs"] for v in langs["kept"].values())
    removed = sum(stages["language_filter"]["removed"].values())
    assert removed == sum(v["docs"] for k, v in langs["removed"].items() if k != "null")
    assert "lang_mixed" in kept.columns


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())


def test_eval_report_from_counts():
    counts = [Count("id", "id", 990, True, 8), Count("id", "ms", 600, True, 2), Count("ms", "ms", 950, False, 10),
              Count("en", "en", 999, True, 10), Count("en", "und", 0, False, 1)]
    rep = report(counts, thresholds=(0.0, 0.7))
    per = rep["all"]["per_language"]
    assert per["id"] == {"precision": 1.0, "recall": 0.8, "f1": pytest.approx(8 / 9), "support": 10}
    assert per["ms"]["precision"] == pytest.approx(10 / 12) and per["ms"]["recall"] == 1.0
    assert rep["all"]["accuracy"] == pytest.approx(28 / 31)
    assert rep["long"]["texts"] == 20
    assert rep["close_groups"][0]["group"] == ["id", "ms"]
    assert rep["close_groups"][0]["matrix"] == {"id": {"id": 8, "ms": 2}, "ms": {"id": 0, "ms": 10}}
    t0, t7 = rep["thresholds"]
    assert t0["coverage"] == pytest.approx(30 / 31) and t7["coverage"] == pytest.approx(28 / 31)
    assert t7["accuracy_covered"] == 1.0


def test_langid_eval_job_on_the_labelled_set(tmp_path):
    rows = _texts()
    langs = sorted({r["lang"] for r in rows})
    assert len(langs) >= 12 and all(sum(r["lang"] == x for r in rows) >= 40 for x in langs)
    out = tmp_path / "rep.json"
    proc = subprocess.run([sys.executable, "-m", "tokenmill", "langid_eval", "--input", str(LABELLED),
                           "--config", str(ROOT / "conf" / "pipelines" / "langid_eval.yaml"), "--spark-profile", "test",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "lib")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["all"]["texts"] == len(rows) and sorted(rep["all"]["per_language"]) == langs
    assert rep["long"]["macro_f1"] >= 0.95
    assert sum(rep["decided_by"].values()) == len(rows)
    assert "close-language confusions" in proc.stdout and "threshold" in proc.stdout
    # in-process identification gives the same macro-F1 as the Spark job
    r = identify([x["text"] for x in rows], build_spec(None, LangidParams(**{**yaml_load(
        ROOT / "conf" / "pipelines" / "langid_eval.yaml")})))
    pairs = [Count(x["lang"], p, 0, True, 1) for x, p in zip(rows, r.lang, strict=True)]
    assert report(pairs)["all"]["macro_f1"] == pytest.approx(rep["all"]["macro_f1"])
