"""Image–caption stages in Spark local mode: caption cleaning (exact rewrites and the edits listed), the
filter on LAION's published Parquet schema (one row per reason), Pillow checks of in-row and local images,
and the image_text job end to end (exact dedup of url, image bytes and caption, near-duplicate captions)."""

from __future__ import annotations

import argparse
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyspark.sql import functions as F

from conftest import write_config
from tokenmill.catalog import load_stages
from tokenmill.multimodal.image_text import CaptionCleanParams, caption_clean
from tokenmill.pipeline import load_pipeline, run
from tokenmill.pipeline.stage import StageContext

load_stages()

CLEAN = [  # (caption, cleaned, edits)
    ("A grey cat sleeping on a red sofa", "A grey cat sleeping on a red sofa", []),
    ("Fish &amp; chips&nbsp;on a   plate", "Fish & chips on a plate", ["html_entities", "whitespace"]),
    ("Image of a red apple on a table", "a red apple on a table", ["boilerplate_prefix"]),
    ("Red apple on a wooden table stock photo", "Red apple on a wooden table", ["boilerplate_suffix"]),
    ("Mountain lake at dawn - Stock Image", "Mountain lake at dawn", ["boilerplate_suffix"]),
    ("Mountain lake at dawn | Shutterstock", "Mountain lake at dawn", ["boilerplate_suffix"]),
    ("Woman with umbrella royalty free stock photos", "Woman with umbrella", ["boilerplate_suffix"]),
    ("BEAUTIFUL SUNSET OVER THE SEA", "Beautiful sunset over the sea", ["all_caps"]),
    ("Visit https://shop.example.com/dress?id=3 for a blue dress", "Visit for a blue dress", ["urls", "whitespace"]),
    ("Man holding a photo of his dog", "Man holding a photo of his dog", []),
    ("  NASA  ", "Nasa", ["whitespace", "all_caps"]),
    ("Caf&#233; terrace at night", "Café terrace at night", ["html_entities"]),
]


def test_caption_clean_exact(spark, tmp_path):
    df = spark.createDataFrame([(f"c{i}", c) for i, (c, _, _) in enumerate(CLEAN)], "id string, text string")
    df = df.withColumn("removed_by", F.lit(None).cast("string"))
    out = {r["id"]: (r["text"], r["caption_edits"]) for r in
           caption_clean(StageContext(spark, work_dir=str(tmp_path)), df, CaptionCleanParams(stage="caption_clean")).collect()}
    for i, (_, want, edits) in enumerate(CLEAN):
        assert out[f"c{i}"] == (want, edits), CLEAN[i][0]


def laion_rows() -> list[dict]:
    """LAION-2B-en rows (with the joined punsafe / pwatermark scores), one per filter reason plus kept ones."""
    base = {"HEIGHT": 480, "WIDTH": 640, "LICENSE": "?", "NSFW": "UNLIKELY", "similarity": 0.33, "punsafe": 0.01,
            "pwatermark": 0.05}
    rows = [
        ("kept", "https://img.example.com/1.jpg", "A grey cat sleeping on a red sofa", {}),
        ("kept_caps", "https://img.example.com/2.jpg", "RED BICYCLE LEANING ON A WALL", {}),
        ("empty_caption", "https://img.example.com/3.jpg", "   ", {}),
        ("file_name_caption", "https://img.example.com/4.jpg", "IMG_20190301_123456.JPG", {}),
        ("too_few_words", "https://img.example.com/5.jpg", "Sunset", {}),
        ("image_too_small", "https://img.example.com/6.jpg", "A tiny icon of a house", {"HEIGHT": 64, "WIDTH": 64}),
        ("bad_aspect_ratio", "https://img.example.com/7.jpg", "A long banner with flowers", {"HEIGHT": 200, "WIDTH": 1200}),
        ("low_similarity", "https://img.example.com/8.jpg", "Free shipping on all orders today", {"similarity": 0.21}),
        ("nsfw", "https://img.example.com/9.jpg", "Some caption about a picture", {"punsafe": 0.93}),
        ("nsfw_label", "https://img.example.com/10.jpg", "Another caption about a picture", {"NSFW": "NSFW", "punsafe": None}),
        ("watermark", "https://img.example.com/11.jpg", "A mountain landscape with a lake", {"pwatermark": 0.97}),
    ]
    return [{"SAMPLE_ID": 1000 + i, "URL": url, "TEXT": text, **{**base, **extra}}
            for i, (_, url, text, extra) in enumerate(rows)]


def test_image_text_filter_on_laion_schema(spark, tmp_path):
    folder = tmp_path / "laion"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(laion_rows()), folder / "part-00000.parquet")
    data = {"name": "laion", "output": str(tmp_path / "out"), "work_dir": str(tmp_path / "work"),
            "sources": [{"preset": "laion2b_en", "paths": [str(folder)]}],
            "stages": ["read", "caption_clean", "image_text_filter", {"stage": "write", "keep_removed": True}]}
    result = run(spark, load_pipeline(str(write_config(tmp_path / "laion.yaml", data))))
    stage = result.manifest["stages"][2]
    assert stage["rows_in"] == 11 and stage["rows_out"] == 2
    assert stage["removed"] == {"bad_aspect_ratio": 1, "empty_caption": 1, "file_name_caption": 1,
                                "image_too_small": 1, "low_similarity": 1, "nsfw": 2, "too_few_words": 1,
                                "watermark": 1}
    kept = sorted(r["text"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist())
    assert kept == ["A grey cat sleeping on a red sofa", "Red bicycle leaning on a wall"]
    applied = result.manifest["stage_reports"]["image_text_filter"]["applied"]
    assert applied == ["min_side", "max_aspect", "similarity", "nsfw", "watermark"]


def png(width: int, height: int, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(width: int, height: int, color=(20, 90, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Image–caption rows in the Hugging Face Image layout ({bytes, path}), some images only as local files."""
    folder = tmp_path_factory.mktemp("pairs")
    (folder / "images").mkdir()
    (folder / "images" / "local.jpg").write_bytes(jpeg(800, 600))
    big = jpeg(1600, 1200, (10, 160, 60))
    rows = [
        ("p0", "https://a.example/0.png", "A red square on a white page", png(400, 300), None),
        ("p1", "https://a.example/1.png", "A red square on a white page, again", png(400, 300), None),  # same bytes
        ("p2", "https://a.example/0.png", "Same address as p0", png(300, 300, (0, 0, 0)), None),
        ("p3", None, "A blue photo stored as a local file", None, "local.jpg"),
        ("p4", None, "A caption whose image file is missing", None, "gone.jpg"),
        ("p5", "https://a.example/5.jpg", "A truncated JPEG download", jpeg(500, 400)[:300], None),
        ("p6", "https://a.example/6.jpg", "An error page saved as an image", b"<html><body>404</body></html>", None),
        ("p7", "https://a.example/7.jpg", "A large green photo to be resized", big, None),
        ("p8", "https://a.example/8.jpg", "A grey cat sleeping on a red sofa at home.", jpeg(640, 480, (90, 90, 90)), None),
        ("p9", "https://a.example/9.jpg", "A grey cat sleeping on a red sofa at noon", jpeg(640, 480, (200, 200, 20)), None),
        ("p10", "https://a.example/10.jpg", "A grey cat sleeping on a red sofa at home", jpeg(640, 480, (20, 200, 200)), None),
    ]
    table = pa.table({"key": [r[0] for r in rows], "url": [r[1] for r in rows], "caption": [r[2] for r in rows],
                      "image": [{"bytes": r[3], "path": r[4]} for r in rows]})
    pq.write_table(table, folder / "pairs.parquet")
    return folder


def test_image_text_job_checks_images_and_deduplicates(spark, tmp_path, pairs):
    from tokenmill.multimodal.job import image_text_job

    args = argparse.Namespace(
        source=str(pairs / "pairs.parquet"), config=None, output=str(tmp_path / "job"), force=False,
        spark_profile="test", spark=spark, check_images=True, resize=512, languages=None, langid_backend="lingua",
        min_lang_score=0.5, min_words=2, min_side=200, max_aspect=3.0, min_similarity=0.28,
        dedup="url,image,caption,near", near_threshold=0.5,
        overrides=["fields.text_field=caption", "fields.id_field=key", "fields.url_field=url",
                   f"media={{image: image, root: {pairs / 'images'}}}"])
    assert image_text_job(args) == 0
    manifest = json.loads((tmp_path / "job" / "manifest.json").read_text())
    removed = {s["stage"]: s["removed"] for s in manifest["stages"]}
    assert removed["image_check"] == {"corrupt_image": 1, "missing_file": 1, "not_image": 1}
    assert removed["dedup_url"] == {"duplicate": 1}  # p2 shares p0's address
    assert removed["dedup_image"] == {"duplicate": 1}  # p1 has p0's bytes
    assert removed["dedup_caption"] == {"duplicate": 1}  # p10 is p8's caption without its full stop
    assert removed["near_captions"] == {"near_duplicate": 1}  # p9 ~ p8
    kept = {r["meta"]["orig_id"] if isinstance(r["meta"], dict) else dict(r["meta"])["orig_id"]: r
            for r in pq.read_table(tmp_path / "job" / "data").to_pylist()}
    assert sorted(kept) == ["p1", "p3", "p7", "p8"]  # p1 keeps p0's image: the longer caption survives
    assert (kept["p7"]["width"], kept["p7"]["height"], kept["p7"]["image_format"]) == (512, 384, "JPEG")
    assert Image.open(io.BytesIO(kept["p7"]["image"]["bytes"])).size == (512, 384)
    assert (kept["p3"]["width"], kept["p3"]["height"]) == (512, 384) and kept["p3"]["image"]["bytes"][:2] == b"\xff\xd8"
    gone = {r["image_path"] or r["id"]: (r["removed_by"], r["image_error"])
            for r in pq.read_table(tmp_path / "job" / "removed").to_pylist() if r["removed_by"].startswith("image_check")}
    assert gone["gone.jpg"][0] == "image_check:missing_file"


def test_laion_pipeline_config(spark, tmp_path):
    """conf/pipelines/image_text_laion.yaml on LAION-schema rows: English only, then the filter and dedup."""
    import yaml

    from conftest import ROOT

    folder = tmp_path / "laion"
    folder.mkdir()
    rows = laion_rows()
    rows.append({**rows[0], "SAMPLE_ID": 2000, "URL": "https://img.example.com/1.jpg"})  # the same URL again
    rows.append({**rows[0], "SAMPLE_ID": 2001, "URL": "https://img.example.com/de.jpg",
                 "TEXT": "Eine graue Katze schläft auf einem roten Sofa im Wohnzimmer"})
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    config = yaml.safe_load((ROOT / "conf" / "pipelines" / "image_text_laion.yaml").read_text())
    config["sources"][0]["path"] = None
    config["sources"][0]["paths"] = [str(folder)]
    config.update(output=str(tmp_path / "out"), work_dir=str(tmp_path / "work"))
    result = run(spark, load_pipeline(str(write_config(tmp_path / "laion.yaml", config))))
    removed = {s["stage"]: s["removed"] for s in result.manifest["stages"]}
    # the German caption, and "Sunset" and the file name, which are not recognisably English; the blank one
    assert removed["language_filter"] == {"language": 3, "undetermined": 1}
    gone = {r["url"]: r["removed_by"] for r in pq.read_table(tmp_path / "out" / "removed").to_pylist()}
    assert gone["https://img.example.com/de.jpg"] == "language_filter:language"
    assert removed["image_text_filter"] == {"bad_aspect_ratio": 1, "image_too_small": 1, "low_similarity": 1,
                                            "nsfw": 2, "watermark": 1}
    assert removed["dedup_url"] == {"duplicate": 1}
    assert result.manifest["output"]["rows"] == 2
