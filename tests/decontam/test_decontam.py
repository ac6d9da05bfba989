"""Benchmark decontamination: every preset's schema, verbatim / reformatted / rephrased quotes, common
phrases, flag / remove / cut with exact results, the report, one broadcast and no shuffle of documents."""

from __future__ import annotations

import csv
import json

import pytest
from pyspark.sql import functions as F

from conftest import write_config
from tokenmill.decontam.benchmarks import load_items, resolve
from tokenmill.decontam.index import cut, distinctive, numbers
from tokenmill.decontam.stage import DecontamParams, decontaminate
from tokenmill.errors import ConfigError
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.stage import StageContext
from tokenmill.schema import REMOVED_BY
from tokenmill.text.ngrams import tokens

# Test items in each preset's real schema (written by the team).
GSM8K = [
    {"question": "Mara buys 14 crates of pears with 36 pears in each crate. She gives 58 pears to her neighbours. "
                 "How many pears does Mara have left?",
     "answer": "Mara has 14 * 36 = 504 pears. She has 504 - 58 = 446 pears left.\n#### 446"},
    {"question": "A cyclist rides 45 kilometres on Monday and 63 kilometres on Tuesday. How many kilometres "
                 "does the cyclist ride in the two days?",
     "answer": "45 + 63 = 108 kilometres.\n#### 108"},
]
ARC = [{"id": "Mercury_7012345", "question": "Which property of a mineral can be determined just by looking at it?",
        "choices": {"text": ["luster", "mass", "weight", "hardness"], "label": ["A", "B", "C", "D"]},
        "answerKey": "A"}]
HUMANEVAL = [{"task_id": "HumanEval/999", "prompt": "def sum_of_squares(numbers: list) -> int:\n"
              "    \"\"\" Return the sum of the squares of all even numbers in the list.\n"
              "    >>> sum_of_squares([1, 2, 3, 4])\n    20\n    \"\"\"\n",
              "canonical_solution": "    return sum(x * x for x in numbers if x % 2 == 0)\n",
              "test": "def check(candidate):\n    assert candidate([1, 2, 3, 4]) == 20\n", "entry_point": "sum_of_squares"}]
MBPP = [{"task_id": 901, "text": "Write a function to find the longest run of equal characters in a given string.",
         "code": "def longest_run(s):\n    best = cur = 1\n    for a, b in zip(s, s[1:]):\n"
                 "        cur = cur + 1 if a == b else 1\n        best = max(best, cur)\n    return best",
         "test_list": ["assert longest_run('aabbbc') == 3"], "test_setup_code": "", "challenge_test_list": []}]
MMLU = [{"question": "Which organelle is known as the site of aerobic respiration in eukaryotic cells of plants "
                     "and animals?", "subject": "college_biology",
         "choices": ["ribosome", "mitochondrion", "golgi apparatus", "lysosome"], "answer": 1},
        {"question": "Which of the following statements best describes the main purpose of the separation of "
                     "powers in a constitutional democracy?", "subject": "high_school_government_and_politics",
         "choices": ["efficiency", "preventing the concentration of power", "speed", "secrecy"], "answer": 1}]
MATH = [{"problem": "What is the remainder when 7^{2023} is divided by 13, given that 7^{12} leaves remainder 1?",
         "level": "Level 3", "type": "Number Theory",
         "solution": "Since 2023 = 12 \\cdot 168 + 7, the remainder equals that of 7^7, which is \\boxed{6}."}]
HELLASWAG = [{"ind": 4242, "activity_label": "Baking cookies", "ctx_a": "A woman is in a kitchen.",
              "ctx_b": "she", "ctx": "A woman is in a kitchen mixing flour and butter in a large bowl. she",
              "endings": ["pours the dough onto a tray and shapes small cookies.", "drives a car.",
                          "swims in a lake.", "plays the drums."], "label": "0", "split": "val",
              "split_type": "indomain", "source_id": "activitynet~v_x"}]
TRIVIAQA = [{"question": "Which river flows through the city of Vienna?", "question_id": "tc_1234",
             "question_source": "http://www.quiz.example/", "entity_pages": {}, "search_results": {},
             "answer": {"value": "Danube", "aliases": ["Danube", "Donau"], "normalized_value": "danube"}}]
PRESETS = {"gsm8k": GSM8K, "arc_challenge": ARC, "humaneval": HUMANEVAL, "mbpp": MBPP, "mmlu": MMLU,
           "math": MATH, "hellaswag": HELLASWAG, "triviaqa": TRIVIAQA}

FILLER_A = ("Our village library opened a new reading room this spring, and volunteers now run a homework club "
            "on Tuesday and Thursday afternoons for pupils of every age. The room has long tables, good lamps "
            "and a shelf of dictionaries, and the librarians say it is full most evenings before the exams. ")
FILLER_B = ("After the session the children usually walk to the bakery on the square, where the owner keeps a "
            "basket of day-old rolls for them. Parents take turns to collect them at six, and in winter the "
            "club closes a little earlier so that nobody has to cycle home in the dark along the canal road.")
COMMON = "at the end of the day it is important to remember that practice makes perfect for everyone"


def _write_benchmarks(folder) -> list[dict]:
    folder.mkdir(exist_ok=True)
    entries = []
    for preset, rows in PRESETS.items():
        path = folder / f"{preset}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        entries.append({"preset": preset, "path": str(path)})
    return entries


def _docs() -> dict[str, str]:
    g0 = GSM8K[0]["question"] + "\n" + GSM8K[0]["answer"]
    return {
        "verbatim": FILLER_A * 2 + g0 + "\n" + FILLER_B * 2,
        "reformatted": "FORUM >> " + GSM8K[1]["question"].upper().replace(" ", "   ").replace(".", " ;") + " <<",
        "rephrased": "Homework help: Mara got 14 crates, each with 36 pears, and handed 58 of them to the people "
                     "next door. How many pears does Mara have left now? I keep getting the wrong number.",
        "numbers_only": "The warehouse shipped 14 crates with 36 boxes each; 58 boxes were returned last week.",
        "unrelated": "Which property of a good teacher matters most? Patience, say most of the parents we asked.",
        "arc": "Quiz time! Which property of a mineral can be determined just by looking at it? luster, mass, "
               "weight or hardness - answer below.",
        "humaneval": "```python\ndef sum_of_squares(numbers: list) -> int:\n    \"\"\" Return the sum of the squares of "
                     "all even numbers in the list.\n    >>> sum_of_squares([1, 2, 3, 4])\n    20\n    \"\"\"\n"
                     "    return sum(x * x for x in numbers if x % 2 == 0)\n```",
        "mbpp": "Exercise: write a function to find the longest run of equal characters in a given string. Hint: "
                "use zip.",
        "mmlu": "Biology revision: which organelle is known as the site of aerobic respiration in eukaryotic cells "
                "of plants and animals? (a) ribosome (b) mitochondrion",
        "math": "Puzzle of the week: what is the remainder when 7^{2023} is divided by 13, given that 7^{12} "
                "leaves remainder 1? Send answers by Friday.",
        "hellaswag": "Story prompt: A woman is in a kitchen mixing flour and butter in a large bowl. She pours the "
                     "dough onto a tray and shapes small cookies.",
        "triviaqa": "Pub quiz round 3, question 7: Which river flows through the city of Vienna? (Danube!)",
        "common1": "Coach says: " + COMMON + ". See you at training.",
        "common2": "A note from the choir: " + COMMON + ", so rehearse at home.",
        "common3": "Gardening column: " + COMMON + " - even with tomatoes.",
    }


EXPECTED_FLAGS = {
    "verbatim": ["gsm8k:0"], "reformatted": ["gsm8k:1"], "rephrased": ["gsm8k:0"], "arc": ["arc_challenge:Mercury_7012345"],
    "humaneval": ["humaneval:HumanEval/999"], "mbpp": ["mbpp:901"], "mmlu": ["mmlu:0"], "math": ["math:0"],
    "hellaswag": ["hellaswag:4242"], "triviaqa": ["triviaqa:tc_1234"],
}


def _frame(spark, docs):
    return spark.createDataFrame([(k, v, "src-" + ("a" if i % 2 else "b"), f"https://x.example/{k}", None)
                                  for i, (k, v) in enumerate(docs.items())],
                                 f"id string, text string, source string, url string, {REMOVED_BY} string")


def _ctx(spark, tmp_path):
    return StageContext(spark, [], "test.yaml", str(tmp_path / "work"))


@pytest.fixture()
def benchmarks(tmp_path):
    entries = _write_benchmarks(tmp_path / "bench")
    # MMLU's second item shares the common phrase with three training documents
    mmlu = tmp_path / "bench" / "mmlu.jsonl"
    # (a small part of that item: a stock phrase, not a copy of the item)
    rows = MMLU + [{"question": COMMON + " when they train, so which weekly plan suits a first-time marathon runner "
                                "best in the final six weeks before the race?", "subject": "misc",
                    "choices": ["three long runs", "daily sprints", "rest only", "swimming"], "answer": 0}]
    mmlu.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return entries


def test_presets_load_each_real_schema(benchmarks):
    items = {e["preset"]: load_items(resolve(e, "test")) for e in benchmarks}
    assert [i.item_id for i in items["arc_challenge"]] == ["Mercury_7012345"]
    assert items["arc_challenge"][0].text.endswith("luster\nmass\nweight\nhardness")  # choices' texts
    assert items["mmlu"][0].text.endswith("ribosome\nmitochondrion\ngolgi apparatus\nlysosome")
    assert items["triviaqa"][0].text == "Which river flows through the city of Vienna?\nDanube"
    assert [i.item_id for i in items["humaneval"]] == ["HumanEval/999"] and items["mbpp"][0].item_id == "901"
    assert items["gsm8k"][0].math_text == GSM8K[0]["question"] and items["gsm8k"][1].item_id == "1"
    assert items["hellaswag"][0].item_id == "4242"
    with pytest.raises(ConfigError, match="benchmark gsm8k: item 0: no field 'question'"):
        load_items(resolve({"preset": "gsm8k", "path": benchmarks[2]["path"]}, "test"))  # humaneval's file
    with pytest.raises(ConfigError, match="unknown benchmark preset 'gsm9k'"):
        resolve("gsm9k", "test")


def test_benchmark_through_datasets_save_to_disk(tmp_path):
    import datasets

    folder = tmp_path / "gsm8k_local"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(GSM8K)}).save_to_disk(str(folder))
    items = load_items(resolve({"preset": "gsm8k", "dataset": str(folder)}, "test"))
    assert [i.text for i in items] == [g["question"] + "\n" + g["answer"] for g in GSM8K]


def test_normalisation_and_numbers():
    assert tokens("Hello,   WORLD!\nIt's 3.5 km") == ["hello", "world", "it", "s", "3", "5", "km"]
    assert tokens("Ｆｕｌｌ width ÉCOLE") == ["full", "width", "école"]
    assert numbers("14 crates, 1,200 pears and 3.5 kg") == {"14", "1200", "3.5"}
    assert distinctive({"5", "12", "3.5", "7"}) == frozenset({"12", "3.5"})


def test_flag_every_kind_of_quote_exactly(spark, tmp_path, benchmarks):
    docs = _docs()
    params = DecontamParams(stage="decontaminate", benchmarks=benchmarks, action="flag", max_docs_per_ngram=2)
    ctx = _ctx(spark, tmp_path)
    out = decontaminate(ctx, _frame(spark, docs), params)
    got = {r["id"]: r["contaminated_by"] for r in out.collect() if r["contaminated_by"]}
    assert got == EXPECTED_FLAGS
    kinds = {r["id"]: [e["kind"] for e in r["contamination"]] for r in out.collect() if r["contamination"]}
    assert kinds["rephrased"] == ["numbers"] and kinds["verbatim"] == ["ngram"]
    verbatim = out.where(F.col("id") == "verbatim").first()["contamination"][0]
    assert verbatim["excerpt"] == (GSM8K[0]["question"] + "\n" + GSM8K[0]["answer"])[:300].removesuffix("\n#### 446") + "\n#### 446"
    assert out.where(F.col(REMOVED_BY).isNotNull()).count() == 0  # flag removes nothing
    report = ctx.reported("decontaminate")
    assert report["ignored_common_ngrams"] == len(tokens(COMMON)) - 13 + 1  # the phrase's 13-grams, in 3 docs each
    assert report["ignored_examples"][0] == " ".join(tokens(COMMON)[:13])
    assert report["benchmarks"]["triviaqa"]["indexed_whole"] == 1  # 10 tokens < 13: the whole item is the n-gram
    # without the common-phrase rule, the three documents with the phrase match MMLU's item 2
    params = DecontamParams(stage="decontaminate", benchmarks=benchmarks, action="flag", max_docs_per_ngram=0)
    got = {r["id"]: r["contaminated_by"] for r in decontaminate(ctx, _frame(spark, docs), params).collect()
           if r["contaminated_by"]}
    assert got == {**EXPECTED_FLAGS, "common1": ["mmlu:2"], "common2": ["mmlu:2"], "common3": ["mmlu:2"]}


def test_remove_and_cut_exact_text(spark, tmp_path, benchmarks):
    docs = _docs()
    ctx = _ctx(spark, tmp_path)
    removed = decontaminate(ctx, _frame(spark, docs), DecontamParams(stage="decontaminate", benchmarks=benchmarks,
                                                                     action="remove", max_docs_per_ngram=2))
    tags = {r["id"]: r[REMOVED_BY] for r in removed.collect() if r[REMOVED_BY]}
    assert tags == {k: "decontaminate:contaminated" for k in EXPECTED_FLAGS}
    out = decontaminate(ctx, _frame(spark, docs), DecontamParams(stage="decontaminate", benchmarks=benchmarks,
                                                                 action="cut", max_docs_per_ngram=2))
    rows = {r["id"]: r for r in out.collect()}
    text = docs["verbatim"]
    start = text.index(GSM8K[0]["question"])
    end = text.index("#### 446") + len("#### 446")
    expected = text[:start - 200].strip() + "\n\n" + text[end + 200:].strip()
    assert rows["verbatim"][REMOVED_BY] is None and rows["verbatim"]["text"] == expected
    assert len(text[:start - 200].strip()) >= 200 and len(text[end + 200:].strip()) >= 200
    # short documents have nothing left (a rephrased copy is cut like a quote); clean documents are untouched
    assert rows["arc"][REMOVED_BY] == "decontaminate:nothing_left"
    assert rows["rephrased"][REMOVED_BY] == "decontaminate:nothing_left"
    assert rows["unrelated"]["text"] == docs["unrelated"] and rows["unrelated"][REMOVED_BY] is None
    two = FILLER_A + GSM8K[0]["question"] + " " + FILLER_B + " " + GSM8K[1]["question"] + " " + FILLER_A
    out = decontaminate(ctx, _frame(spark, {"two": two}), DecontamParams(
        stage="decontaminate", benchmarks=benchmarks, action="cut", max_cuts=1))
    assert out.first()[REMOVED_BY] == "decontaminate:too_many_cuts"


def test_cut_rule():
    text = "a" * 500 + " MATCH " + "b" * 150 + " MATCH2 " + "c" * 500
    first = text.index("MATCH")
    second = text.index("MATCH2")
    got = cut(text, [(first, first + 5), (second, second + 6)], margin=200, min_fragment=200)
    assert got == text[:first - 200].strip() + "\n\n" + text[second + 6 + 200:].strip()
    assert cut("x" * 100 + "MATCH" + "y" * 100, [(100, 105)], 200, 200) == ""
    assert cut("x" * 350 + "MATCH" + "y" * 100, [(350, 355)], 200, 100) == "x" * 150  # short fragments go


def test_index_broadcast_once_and_documents_never_shuffled(spark, tmp_path, benchmarks, monkeypatch):
    from tokenmill.decontam.index import Index

    calls = []
    original = spark.sparkContext.broadcast
    monkeypatch.setattr(spark.sparkContext, "broadcast", lambda value: calls.append(type(value)) or original(value))
    out = decontaminate(_ctx(spark, tmp_path), _frame(spark, _docs()),
                        DecontamParams(stage="decontaminate", benchmarks=benchmarks, max_docs_per_ngram=2))
    assert calls.count(Index) == 1
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert "Exchange" not in plan and plan.count("ArrowEvalPython") == 1


def test_pipeline_report_and_csv(spark, tmp_path, benchmarks):
    src = tmp_path / "docs"
    src.mkdir()
    docs = _docs()
    with open(src / "a.jsonl", "w") as handle:
        for k, v in docs.items():
            handle.write(json.dumps({"id": k, "text": v, "url": f"https://x.example/{k}"}) + "\n")
    data = {"name": "t", "output": str(tmp_path / "out"),
            "sources": [{"name": "forum", "format": "jsonl", "paths": str(src / "*.jsonl"),
                         "fields": {"id_field": "id", "url_field": "url"}}],
            "stages": ["read", {"stage": "decontaminate", "benchmarks": benchmarks, "action": "remove",
                                "max_docs_per_ngram": 2}, {"stage": "write", "keep_removed": False}]}
    result = run(spark, load_pipeline(str(write_config(tmp_path / "c.yaml", data))))
    stages = {s["stage"]: s for s in result.manifest["stages"]}
    assert stages["decontaminate"]["removed"] == {"contaminated": len(EXPECTED_FLAGS)}
    report = result.manifest["output"]["decontamination"]["benchmarks"]
    assert {k: (v["items_found"], v["documents"], v["sources"]) for k, v in report.items()} == {
        "arc_challenge": (1, 1, ["forum"]), "gsm8k": (2, 3, ["forum"]), "hellaswag": (1, 1, ["forum"]),
        "humaneval": (1, 1, ["forum"]), "math": (1, 1, ["forum"]), "mbpp": (1, 1, ["forum"]),
        "mmlu": (1, 1, ["forum"]), "triviaqa": (1, 1, ["forum"])}
    assert [(i["item"], i["docs"], i["kinds"]) for i in report["gsm8k"]["items"]] == [
        ("0", 2, ["ngram", "numbers"]), ("1", 1, ["ngram"])]
    with open(tmp_path / "out" / "decontamination.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 9 and table[0]["benchmark"] == "arc_challenge"
    assert {r["example_url"] for r in table if r["benchmark"] == "triviaqa"} == {"https://x.example/triviaqa"}
    removed = spark.read.parquet(str(tmp_path / "out" / "removed"))
    assert removed.where(F.size("contaminated_by") > 0).count() == len(EXPECTED_FLAGS)  # audit kept, text not
    assert removed.where(F.col("text").isNotNull()).count() == 0


def test_sample_pipeline_flags_the_forum_quotes(sample_run, sample_dir, spark):
    out, result = sample_run
    index = json.loads((sample_dir / "index.json").read_text())
    quotes = sorted(p["url"] for p in index["pages"] if p["category"] == "benchmark_quote")
    kept = spark.read.parquet(str(out / "data"))
    flagged = {r["url"]: r["contaminated_by"] for r in kept.where(F.size("contaminated_by") > 0).collect()}
    assert flagged == {url: [f"gsm8k:{int(url[-5:])}"] for url in quotes}
    report = result.manifest["output"]["decontamination"]["benchmarks"]["gsm8k"]
    assert (report["items_found"], report["documents"]) == (4, 4)
    assert (out / "decontamination.csv").read_text().count("\n") == 5


def _bench_file(folder, name, rows) -> dict:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"preset": name, "path": str(path)}


def test_viral_item_is_flagged_everywhere_and_reported(spark, tmp_path):
    """An item copied into more documents than `max_docs_per_ngram` is the worst contamination: flagged in
    every copy; a stock phrase that is a small part of an item is still ignored, and both are reported."""
    viral = GSM8K[1]["question"]
    phrase = "in the following passage the author argues that the most important reason for the change was"
    mmlu = [{"question": phrase + " the cost of grain in the northern provinces during the long drought of the "
             "previous decade, which is?", "subject": "history", "choices": ["cost", "war", "trade", "law"],
             "answer": 0}]
    benches = [_bench_file(tmp_path / "b", "gsm8k", GSM8K), _bench_file(tmp_path / "b", "mmlu", mmlu)]
    docs = {f"copy{i}": f"Thread {i}: {viral} Thanks for any help!" for i in range(4)}
    docs |= {f"stock{i}": f"Essay {i}: {phrase} money, said the teacher." for i in range(3)}
    docs["clean"] = FILLER_A
    ctx = _ctx(spark, tmp_path)
    out = decontaminate(ctx, _frame(spark, docs), DecontamParams(stage="decontaminate", benchmarks=benches,
                                                                 max_docs_per_ngram=2))
    got = {r["id"]: r["contaminated_by"] for r in out.collect() if r["contaminated_by"]}
    assert got == {f"copy{i}": ["gsm8k:1"] for i in range(4)}  # 0/4 before: every n-gram was "common"
    common = ctx.reported("decontaminate")["common"]
    # the question's n-grams are 11 of the item's 16 (question and worked answer)
    assert common["gsm8k"]["viral_items"] == [{"item": "1", "common_share": 0.688, "max_docs_per_ngram": 4}]
    assert common["gsm8k"]["ignored_common_ngrams"] == 0
    assert common["mmlu"]["viral_items"] == [] and common["mmlu"]["items_partly_common"] == 1
    assert common["mmlu"]["ignored_common_ngrams"] == len(tokens(phrase)) - 13 + 1


def test_math_numbers_must_sit_with_the_matching_text(spark, tmp_path):
    """The number match needs the item's numbers within a window around its matching phrases; n-grams of
    numbers only match nothing; `cut` removes the rephrased span, not the document."""
    counting = [{"question": "Count the pages: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 and tell how many are even "
                             "in the 15 pages.", "answer": "7"}]
    benches = [_bench_file(tmp_path / "b", "gsm8k", GSM8K + counting)]
    rephrased = _docs()["rephrased"]
    docs = {
        # the question's phrases up front, its numbers 150 words later (a long page, not a copy)
        "far": "How many pears does Mara have left after the market? " + FILLER_A * 3
               + " In 14 of the 36 towns, 58 shops closed.",
        "pages": "Forum index, page: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 Next",
        "near": FILLER_A * 2 + rephrased + " " + FILLER_B * 2,
    }
    ctx = _ctx(spark, tmp_path)
    params = DecontamParams(stage="decontaminate", benchmarks=benches, max_docs_per_ngram=0)
    got = {r["id"]: r["contaminated_by"] for r in decontaminate(ctx, _frame(spark, docs), params).collect()
           if r["contaminated_by"]}
    assert got == {"near": ["gsm8k:0"]}
    params = DecontamParams(stage="decontaminate", benchmarks=benches, max_docs_per_ngram=0, action="cut")
    row = decontaminate(ctx, _frame(spark, {"near": docs["near"]}), params).first()
    start = docs["near"].index("14 crates")  # the item's numbers and shared phrases: the span cut
    end = docs["near"].index("pears does Mara have left") + len("pears does Mara have left")
    assert row[REMOVED_BY] is None
    assert row["text"] == docs["near"][:start - 200].strip() + "\n\n" + docs["near"][end + 200:].strip()
    assert row["contamination"][0]["excerpt"] == docs["near"][start:end]


def test_short_items_whole_and_choice_labels(spark, tmp_path):
    """A short question (under 13 words) is matched whole without its choices; a copy with `A. ... B. ...`
    labels matches the item's choice list."""
    arc = [{"id": "Mercury_1", "question": "Which gas do green plants absorb from the air?",
            "choices": {"text": ["carbon dioxide", "oxygen", "helium", "neon"], "label": ["A", "B", "C", "D"]},
            "answerKey": "A"}]
    mmlu = [{"question": "Which planet is closest to the sun?", "subject": "astronomy",
             "choices": ["Mercury", "Venus", "Earth", "Mars"], "answer": 0}]
    benches = [_bench_file(tmp_path / "b", "arc_easy", arc), _bench_file(tmp_path / "b", "mmlu", mmlu)]
    docs = {"question_only": "Science quiz: which gas do green plants absorb from the air? Answers on Monday.",
            "labelled": "Q7. Which planet is closest to the Sun?\nA. Mercury\nB. Venus\nC. Earth\nD. Mars\n",
            "other": "Which gas do we breathe out? Mostly the same air, said the coach."}
    ctx = _ctx(spark, tmp_path)
    out = decontaminate(ctx, _frame(spark, docs), DecontamParams(stage="decontaminate", benchmarks=benches))
    got = {r["id"]: r["contaminated_by"] for r in out.collect() if r["contaminated_by"]}
    assert got == {"question_only": ["arc_easy:Mercury_1"], "labelled": ["mmlu:0"]}


def test_math_dropped_ngrams_counted_per_benchmark():
    from tokenmill.decontam.benchmarks import Item, MathMatch
    from tokenmill.decontam.index import build_index

    gsm = [Item("gsm8k", str(i), f"Tom has {10 + i} apples and buys {20 + i} more. How many apples does Tom have now?",
                f"Tom has {10 + i} apples and buys {20 + i} more. How many apples does Tom have now?")
           for i in range(12)]
    math = [Item("math", "0", "Find the sum of 17 and 29 squared.", "Find the sum of 17 and 29 squared.")]
    specs = [resolve({"name": "gsm8k", "path": "x.jsonl", "fields": ["question"], "math": MathMatch()}, "t"),
             resolve({"name": "math", "path": "y.jsonl", "fields": ["problem"], "math": MathMatch()}, "t")]
    index = build_index(specs, {"gsm8k": gsm, "math": math}, 13, 8)
    assert index.stats["gsm8k"]["math_common_ngrams_dropped"] > 0  # "how many apples" in all 12 items
    assert index.stats["math"]["math_common_ngrams_dropped"] == 0
