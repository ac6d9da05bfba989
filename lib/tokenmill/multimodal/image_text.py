"""Image–caption pairs (LAION, COCO, TextCaps, Visual Genome, CC-style alt text): clean the caption, filter
pairs on the caption, the image's size and the scores the dataset ships, and check images with Pillow.

- `caption_clean` (Spark-native, HTML entities in Arrow batches): HTML entities decoded, URLs removed,
  whitespace collapsed, stock-photo boilerplate cut ("Image of …", "… - stock photo", "… | Shutterstock"),
  an all-caps caption put in sentence case; `caption_edits` lists what changed on each row.
- `image_text_filter`: removes pairs whose caption is empty, a file name (IMG_0042.JPG), too short or too
  long in words or characters; whose image is smaller than `min_side` or more elongated than `max_aspect`;
  whose CLIP similarity, NSFW or watermark score fails its threshold, when the rows carry them.
- `image_check` (Pillow, Arrow batches): decodes each in-row or local image; a missing, non-image, corrupt
  or oversized one is a counted removal with its reason; adds the true `width`, `height`, `image_format`, and
  optionally re-encodes it at most `resize` pixels on its long side.

Duplicates use the dedup stages: `exact_dedup` with `column: url`, on the caption (the text), or on the
image bytes (`column: image.bytes`), and `minhash_dedup` for near-duplicate captions.

Default thresholds are published ones: DataComp's basic filtering (Gadre et al., 2023: captions of 2+ words
and 5+ characters, images at least 200 px on the short side, aspect ratio at most 3) and LAION-5B's
(Schuhmann et al., 2022: CLIP ViT-B/32 similarity at least 0.28 for English; punsafe and pwatermark scores,
kept under 0.5 and 0.8 as the LAION-Aesthetics subsets do). See docs/multimodal.md.
"""

from __future__ import annotations

import html
import io
from typing import Literal

import pyarrow as pa
from pydantic import Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf

from ..pipeline.stage import StageContext, StageParams, live, map_batches, mark_removed, register
from ..schema import META, REMOVED_BY, SOURCE, TEXT
from .media import MediaProblem, media_input, row_bytes

CAPTION_EDITS, WIDTH, HEIGHT, IMAGE_FORMAT = "caption_edits", "width", "height", "image_format"
IMAGE_ERROR, IMAGE_PATH = "image_error", "image_path"

_URL = r"(?i)(?:\b(?:https?|ftp)://|\bwww\.)\S+"
_PREFIX = (r"(?i)^(?:(?:a|an|the)\s+)?(?:(?:stock|close[- ]?up|royalty[- ]free)\s+)?"
           r"(?:image|photo|photograph|picture|pic|illustration|vector|stock photo)s?\s+(?:of|showing)\s+")
_SITES = r"(?:shutterstock|getty\s*images|alamy|dreamstime|123rf|istock(?:photo)?|depositphotos|adobe\s+stock|pond5|bigstock)"
_SUFFIX = (r"(?i)(?:\s*[-|:–—]\s*(?:stock\s+)?(?:photo|image|picture|vector|illustration|footage)s?\b.*"
           r"|\s+stock\s+(?:photo|image|picture|vector|illustration|footage)s?\b.*"
           r"|\s*[-|,]?\s*royalty[- ]free\b.*"
           rf"|\s*[-|,]?\s*(?:©\s*)?{_SITES}(?:\.com)?\b.*)$")
# A caption that is a file name or a camera's counter, not a description.
_FILE_NAME = (r"(?i)^\s*(?:[\w\-.() ]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif|svg)"
              r"|(?:img|dsc[nf]?|dcim|pxl|mvimg|gopr|dji|sam|wp|screenshot)[_\- ]?[\d_\-]+\w*"
              r"|[\d_\-]{6,}\w{0,4}|[0-9a-f]{16,})\s*$")

# The meta keys tried for each value when a source's `media` mapping does not name one.
PROBES = {
    "width": ("width", "WIDTH", "image_width", "original_width"),
    "height": ("height", "HEIGHT", "image_height", "original_height"),
    "similarity": ("similarity", "SIMILARITY", "clip_score", "clip_similarity"),
    "nsfw": ("punsafe", "pnsfw", "nsfw_score", "NSFW", "nsfw"),
    "watermark": ("pwatermark", "watermark_score", "watermark"),
}


def _unescape_batch(arr: pa.Array) -> pa.Array:
    return pa.array([html.unescape(x) if x is not None else None for x in arr.to_pylist()], pa.string())


def clean_captions(df: DataFrame, text: str = TEXT) -> DataFrame:
    """``df`` with `_caption` (the cleaned ``text``) and `_edits` (the cleanings that changed it): entities,
    URLs, whitespace, boilerplate, all caps. One column per step, so Spark evaluates each regex once."""
    steps = [("html_entities", lambda c: F.when(c.rlike(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);"),
                                                 arrow_udf(_unescape_batch, "string")(c)).otherwise(c)),
             ("urls", lambda c: F.regexp_replace(c, _URL, " ")),
             ("whitespace", lambda c: F.trim(F.regexp_replace(c, r"(?U)\s+", " "))),
             ("boilerplate_prefix", lambda c: F.regexp_replace(c, _PREFIX, "")),
             ("boilerplate_suffix", lambda c: F.trim(F.regexp_replace(c, _SUFFIX, ""))),
             ("all_caps", _sentence_case)]
    out = df.withColumn("_c0", F.col(text))
    for k, (_, step) in enumerate(steps):
        out = out.withColumn(f"_c{k + 1}", step(F.col(f"_c{k}")))
    edits = F.filter(F.array(*[F.when(F.col(f"_c{k}") != F.col(f"_c{k + 1}"), F.lit(name))
                               for k, (name, _) in enumerate(steps)]), lambda x: x.isNotNull())
    last = f"_c{len(steps)}"
    return (out.withColumn("_caption", F.col(last)).withColumn("_edits", edits)
            .drop(*[f"_c{k}" for k in range(len(steps) + 1)]))


def _sentence_case(c: Column) -> Column:
    """An all-caps caption (three letters or more) in sentence case; others unchanged."""
    lower = F.lower(c)
    caps = (c == F.upper(c)) & (c != lower) & c.rlike(r"\p{L}.*\p{L}.*\p{L}")
    return F.when(caps, F.concat(F.upper(F.substring(lower, 1, 1)), F.substring(lower, 2, 1 << 30))).otherwise(c)


class CaptionCleanParams(StageParams):
    """Rewrite each caption in `text`; `keep_raw` keeps the original in `caption_raw`."""

    keep_raw: bool = False


@register("caption_clean", "annotate", CaptionCleanParams, requires=[TEXT], adds=[CAPTION_EDITS])
def caption_clean(ctx: StageContext, df: DataFrame, params: CaptionCleanParams) -> DataFrame:
    """Clean captions: HTML entities, URLs, whitespace, stock-photo boilerplate, all caps (edits listed per row)."""
    out = clean_captions(df.withColumn("caption_raw", F.col(TEXT)) if params.keep_raw else df)
    on = live(df) & F.col(TEXT).isNotNull()
    out = out.withColumn(CAPTION_EDITS, F.when(on, F.col("_edits")))
    return out.withColumn(TEXT, F.when(on, F.col("_caption")).otherwise(F.col(TEXT))).drop("_caption", "_edits")


class ImageTextFilterParams(StageParams):
    """Thresholds; a threshold set to null is not applied, a score the rows lack is skipped."""

    min_words: int | None = Field(default=2, ge=0)  # DataComp basic filtering
    min_chars: int | None = Field(default=5, ge=0)  # DataComp basic filtering
    max_words: int | None = Field(default=256, gt=0)
    file_names: bool = True  # remove captions that are file names / camera counters
    min_side: int | None = Field(default=200, gt=0)  # pixels, the image's short side (DataComp)
    max_aspect: float | None = Field(default=3.0, ge=1.0)  # long side / short side (DataComp)
    min_similarity: float | None = 0.28  # CLIP ViT-B/32 image-text cosine (LAION-5B, English)
    max_nsfw: float | None = 0.5  # LAION punsafe; a label column (LAION-400M's NSFW) removes "NSFW"
    max_watermark: float | None = 0.8  # LAION pwatermark


def _value(df: DataFrame, sources, what: str) -> Column | None:
    """A per-row number from a top-level column (`width` written by image_check wins), else from meta:
    each source's `media` mapping, else the usual names."""
    if what in ("width", "height") and what in df.columns:
        return F.col(what).try_cast("double")
    if META not in df.columns:
        return None
    candidates = [F.col(META)[name] for name in PROBES[what]]
    value: Column = F.coalesce(*candidates)
    for src in sources:
        media = getattr(src, "media", None)
        if media is None:
            continue
        this = F.col(SOURCE) == F.lit(src.name)
        if what in ("width", "height") and not media.image_size:
            value = F.when(this, F.lit(None).cast("string")).otherwise(value)
        elif getattr(media, what, None):
            value = F.when(this, F.col(META)[getattr(media, what)]).otherwise(value)
    return value


@register("image_text_filter", "filter", ImageTextFilterParams, requires=[TEXT])
def image_text_filter(ctx: StageContext, df: DataFrame, params: ImageTextFilterParams) -> DataFrame:
    """Remove pairs on the caption (empty, a file name, words, characters), the image size and shape, and the
    similarity / NSFW / watermark scores the rows carry."""
    text = F.trim(F.coalesce(F.col(TEXT), F.lit("")))
    words = F.size(F.split(text, r"\s+"))
    checks: list[tuple[Column, str]] = [(F.length(text) == 0, "empty_caption")]
    if params.file_names:
        checks.append((text.rlike(_FILE_NAME), "file_name_caption"))
    if params.min_words is not None:
        checks.append((words < params.min_words, "too_few_words"))
    if params.min_chars is not None:
        checks.append((F.length(text) < params.min_chars, "too_short"))
    if params.max_words is not None:
        checks.append((words > params.max_words, "too_many_words"))
    width, height = _value(df, ctx.sources, "width"), _value(df, ctx.sources, "height")
    applied = []
    if width is not None and height is not None:
        w, h = width.try_cast("double"), height.try_cast("double")  # a malformed value is no value
        if params.min_side is not None:
            checks.append((F.least(w, h) < params.min_side, "image_too_small"))
            applied.append("min_side")
        if params.max_aspect is not None:
            checks.append((F.greatest(w, h) / F.least(w, h) > params.max_aspect, "bad_aspect_ratio"))
            applied.append("max_aspect")
    for what, limit, reason, below in (("similarity", params.min_similarity, "low_similarity", True),
                                       ("nsfw", params.max_nsfw, "nsfw", False),
                                       ("watermark", params.max_watermark, "watermark", False)):
        value = _value(df, ctx.sources, what)
        if limit is None or value is None:
            continue
        number = value.try_cast("double")
        fails = number < limit if below else number > limit
        if what == "nsfw":
            fails = F.coalesce(fails, F.upper(value) == F.lit("NSFW"))
        checks.append((fails, reason))
        applied.append(what)
    reason = F.lit(None).cast("string")
    for cond, name in reversed(checks):  # the first failing check names the reason
        reason = F.when(F.coalesce(cond, F.lit(False)), F.lit(name)).otherwise(reason)
    ctx.report_all({"thresholds": params.model_dump(exclude={"stage", "id", "checkpoint"}), "applied": applied})
    return mark_removed(df, None, ctx.label, F.when(live(df), reason))


class ImageCheckParams(StageParams):
    """Decode each image with Pillow; optionally re-encode it smaller."""

    image: str | None = None  # a column ({bytes, path}, bytes, path) or meta.<key>; None: each source's media
    path_format: str | None = None
    root: str | None = None
    storage_options: dict = Field(default_factory=dict)
    max_bytes: int = Field(default=50 << 20, gt=0)
    max_pixels: int = Field(default=89_478_485, gt=0)  # Pillow's decompression-bomb limit
    resize: int | None = Field(default=None, gt=0)  # the long side, in pixels, of re-encoded images
    format: Literal["JPEG", "WEBP", "PNG"] = "JPEG"
    quality: int = Field(default=90, ge=1, le=100)
    keep_bytes: bool = True  # write the image bytes into the output's `image` column (read from paths too)


IMAGE_STRUCT = T.StructType([T.StructField("bytes", T.BinaryType()), T.StructField("path", T.StringType())])
IMAGE_FIELDS = [
    T.StructField("image", IMAGE_STRUCT),
    T.StructField(WIDTH, T.IntegerType()),
    T.StructField(HEIGHT, T.IntegerType()),
    T.StructField(IMAGE_FORMAT, T.StringType()),
    T.StructField(IMAGE_PATH, T.StringType()),
    T.StructField("_image_problem", T.StringType()),
    T.StructField(IMAGE_ERROR, T.StringType()),
]


def inspect_image(data: bytes, params: ImageCheckParams) -> tuple[int, int, str, bytes]:
    """(width, height, format, bytes) of a decodable image (re-encoded when `resize` asks); MediaProblem else."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = params.max_pixels
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
            img.load()  # decodes every pixel: a truncated or damaged file fails here
            width, height = img.size
            if params.resize and max(width, height) > params.resize:
                img.thumbnail((params.resize, params.resize))
                if params.format == "JPEG" and img.mode not in ("RGB", "L"):
                    img = img.convert("RGB")
                buf = io.BytesIO()
                img.save(buf, params.format, quality=params.quality)
                data, (width, height), fmt = buf.getvalue(), img.size, params.format
    except UnidentifiedImageError:
        raise MediaProblem("not_image", f"starts with {data[:16]!r}") from None
    except Image.DecompressionBombError as err:
        raise MediaProblem("too_many_pixels", str(err)[:200]) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise MediaProblem("corrupt_image", f"{type(err).__name__}: {err}"[:300]) from None
    return width, height, fmt, data


def _check(params: ImageCheckParams):
    def run(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        items = batch.column("_image").to_pylist()
        roots = batch.column("_root").to_pylist()
        removed = batch.column(REMOVED_BY).to_pylist()
        cols: dict[str, list] = {k: [None] * len(items) for k in ("image", WIDTH, HEIGHT, IMAGE_FORMAT, IMAGE_PATH,
                                                                   "_image_problem", IMAGE_ERROR)}
        for i, (item, root, gone) in enumerate(zip(items, roots, removed, strict=True)):
            if item is None:
                item = {"bytes": None, "path": None}
            path = item.get("path")
            cols[IMAGE_PATH][i] = path
            if gone is not None:
                cols["image"][i] = item
                continue
            try:
                data = row_bytes(item, root, params.max_bytes, params.storage_options, "image")
                width, height, fmt, data = inspect_image(data, params)
            except MediaProblem as problem:
                cols["_image_problem"][i], cols[IMAGE_ERROR][i] = problem.reason, problem.detail or None
                cols["image"][i] = {"bytes": None, "path": path}
                continue
            cols["image"][i] = {"bytes": data if params.keep_bytes else None, "path": path}
            cols[WIDTH][i], cols[HEIGHT][i], cols[IMAGE_FORMAT][i] = width, height, fmt
        struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        return {"image": pa.array(cols["image"], struct), WIDTH: pa.array(cols[WIDTH], pa.int32()),
                HEIGHT: pa.array(cols[HEIGHT], pa.int32()), IMAGE_FORMAT: pa.array(cols[IMAGE_FORMAT], pa.string()),
                IMAGE_PATH: pa.array(cols[IMAGE_PATH], pa.string()),
                "_image_problem": pa.array(cols["_image_problem"], pa.string()),
                IMAGE_ERROR: pa.array(cols[IMAGE_ERROR], pa.string())}

    return run


@register("image_check", "filter", ImageCheckParams, adds=["image", WIDTH, HEIGHT, IMAGE_FORMAT, IMAGE_PATH],
          audit=[IMAGE_PATH, IMAGE_ERROR])
def image_check(ctx: StageContext, df: DataFrame, params: ImageCheckParams) -> DataFrame:
    """Decode each image with Pillow (true width, height, format; optional resize); bad images are removed."""
    image, root = media_input(df, ctx.sources, "image", params.image, params.path_format, params.root, ctx.label)
    names = {params.image or "image"} | {s.media.image for s in ctx.sources if getattr(s, "media", None) and s.media.image}
    drop = [n for n in names if n and not n.startswith("meta.") and n in df.columns and n != "image"]
    base = df.withColumn("_image", image).withColumn("_root", root)
    out = map_batches(base, _check(params), IMAGE_FIELDS).drop("_image", "_root", *drop)
    ctx.report_all({"resize": params.resize, "format": params.format if params.resize else None})
    return mark_removed(out, None, ctx.label, F.col("_image_problem")).drop("_image_problem")
