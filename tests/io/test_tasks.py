"""Read units into tasks: small files packed evenly, big files and byte ranges one task each."""

from __future__ import annotations

from tests.io.test_readers import make_warc, page

from tokenmill.io.paths import UNKNOWN_SIZE, InputFile
from tokenmill.io.sources import WarcSource, _files_frame, read_source
from tokenmill.io.tasks import OPEN_COST, TASK_BYTES, plan, unit_weight

MB = 1 << 20


def task_count(weights: list[int], cores: int) -> int:
    return len(plan(list(range(len(weights))), weights, cores))


def test_plan_small_files_three_tasks_per_core():
    assert task_count([unit_weight(int(1.5 * MB))] * 100, cores=2) == 6
    assert task_count([unit_weight(int(1.5 * MB))] * 4, cores=2) == 4  # never more tasks than units
    assert task_count([], cores=2) == 0


def test_plan_big_files_one_task_each():
    assert task_count([unit_weight(1 << 30)] * 10, cores=2) == 10
    # 200 files of 100 MB over 4 cores: no task over 128 MB of work means one each
    assert task_count([unit_weight(100 * MB)] * 200, cores=4) == 200
    # 1,000 files of 2 MB over 2 cores weigh (2 + 4 open cost) x 1,000 = 6,000 MB: 47 tasks would put 22
    # files (132 MB) in some; 49 tasks hold at most 21 (126 MB)
    assert task_count([unit_weight(2 * MB)] * 1000, cores=2) == 49
    # 100 MB and 20 MB files: never two of the big ones in a task
    weights = [unit_weight(100 * MB)] * 10 + [unit_weight(20 * MB)] * 30
    groups = plan(list(range(40)), weights, cores=2)
    assert all(sum(weights[i] for i in g) <= TASK_BYTES or len(g) == 1 for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(40))


def test_unknown_sizes_and_byte_ranges_weigh_a_whole_task():
    assert unit_weight(UNKNOWN_SIZE) == TASK_BYTES + OPEN_COST
    assert unit_weight(32 * MB, whole=False) == TASK_BYTES + OPEN_COST
    assert task_count([unit_weight(UNKNOWN_SIZE)] * 50, cores=2) == 50


def test_plan_is_even_and_keeps_order():
    sizes = [5, 1, 4, 2, 3, 3, 2, 4, 1, 5]
    groups = plan(list(range(10)), sizes, cores=1)  # three tasks for one core
    loads = sorted(sum(sizes[u] for u in g) for g in groups)
    assert loads == [10, 10, 10]
    assert sorted(u for g in groups for u in g) == list(range(10))
    assert all(g == sorted(g) for g in groups) and groups == sorted(groups)
    assert plan(list(range(10)), sizes, cores=1) == groups  # deterministic
    assert plan(["a", "b"], [1, 1], cores=5) == [["a"], ["b"]]


def test_small_files_share_tasks_and_read_the_same_rows(spark, tmp_path):
    folder = tmp_path / "warc"
    folder.mkdir()
    for i in range(20):
        make_warc(folder / f"f{i:02d}.warc.gz", [page(i * 10 + j) for j in range(3)])
    files = [InputFile(str(p), p.stat().st_size, "", p.name) for p in sorted(folder.iterdir())]
    frame = _files_frame(spark, files)
    cores = spark.sparkContext.defaultParallelism
    assert frame.rdd.getNumPartitions() == 3 * cores
    assert sorted(r.relpath for r in frame.collect()) == [f.relpath for f in files]
    docs = read_source(spark, WarcSource(name="w", format="warc", paths=[str(folder / "*.warc.gz")]), "test",
                       str(tmp_path / "work"))
    assert docs.rdd.getNumPartitions() == 3 * cores
    assert docs.count() == 60
    assert docs.select("url").distinct().count() == 60
