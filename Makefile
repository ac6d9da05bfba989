# tokenmill: `make run` sets up and runs the sample pipeline; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SPARK_HOME := $(shell $(PY) -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)
CONF ?= conf/pipelines/sample.yaml
MIXTURE ?= conf/pipelines/mixture_sample.yaml
CLUSTER_DIR := $(CURDIR)/.cluster
MASTER_URL := spark://127.0.0.1:7077
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(PY)

.PHONY: setup java browser run sample test bench dist cluster-up cluster-down submit lint clean

setup: java browser $(VENV)/.installed

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "java not found: installing OpenJDK 17 (headless) with apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }

# Chromium and its driver: the report test opens report.html in a real headless browser (Selenium).
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  echo "chromium not found: installing chromium and chromium-driver with apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,models]'
	touch $@

data/sample/index.json: $(VENV)/.installed lib/tokenmill/sample/generate.py lib/tokenmill/sample/texts.py lib/tokenmill/sample/webdocs.py
	$(PY) -m tokenmill.sample --out data/sample

sample: setup data/sample/index.json

run: setup data/sample/index.json
	$(PY) -m tokenmill pipeline --config $(CONF)
	$(PY) -m tokenmill pipeline --config conf/pipelines/quality_fineweb.yaml
	$(PY) -m tokenmill dedup_minhash --config conf/pipelines/dedup_sample.yaml
	$(PY) -m tokenmill train_quality --config conf/pipelines/train_quality_sample.yaml
	$(PY) -m tokenmill pipeline --config conf/pipelines/classify_sample.yaml
	$(PY) -m tokenmill plan_mixture --config $(MIXTURE)
	$(PY) -m tokenmill build_mixture --config $(MIXTURE)

# two workers: the suite waits on Spark's latency more than on CPU; the meter prints its time and peak memory
test: setup
	$(PY) tools/suite_meter.py -- $(PY) -m pytest -q -n 2 --dist loadfile

bench: setup
	$(PY) bench/ingest.py --pages 100000 --out bench/results/ingest.json
	$(PY) bench/tokens.py --docs 20000 --out bench/results/tokens.json
	$(PY) bench/mixture.py --sizes 20000,100000,1000000 --out bench/results/mixture.json
	$(PY) bench/langid.py --docs 10000 --out bench/results/langid.json
	$(PY) bench/decontam.py --docs 100000 --items 10000 --out bench/results/decontam.json
	$(PY) bench/quality.py --docs 20000 --dt-docs 1000 --out bench/results/quality.json
	$(PY) bench/dedup.py --sizes 20000,100000,1000000 --out bench/results/dedup.json
	$(PY) bench/classifiers.py --docs 10000 --out bench/results/classifiers.json
	$(PY) bench/exact_dedup.py --docs 100000 --out bench/results/exact_dedup.json
	$(PY) bench/instruct.py --rows 1000000 --baseline-rows 200000 --out bench/results/instruct.json
	$(PY) bench/audio.py --clips 600 --out bench/results/audio.json
	$(PY) bench/image_text.py --rows 1000000 --out bench/results/image_text.json
	$(PY) bench/report.py --sizes 100000,1000000 --out bench/results/report.json
	$(PY) bench/cold.py --docs 100000 --out bench/results/cold.json
	$(PY) bench/pipeline_1m.py --pages 100000,1000000 --out bench/results/pipeline_1m.json
	$(PY) bench/memory.py --out bench/results/memory.json
	$(PY) bench/cost.py --pages 3.16e9 --hours 24 --out bench/results/cost.json

dist: setup
	rm -rf dist && mkdir -p dist
	$(PY) -m build --wheel --no-isolation --outdir dist . >/dev/null
	$(PY) -c "import zipfile, pathlib; z = zipfile.ZipFile('dist/tokenmill.zip', 'w', zipfile.ZIP_DEFLATED); \
	  [z.write(p, p.relative_to('lib')) for p in sorted(pathlib.Path('lib/tokenmill').rglob('*')) \
	   if p.is_file() and '__pycache__' not in p.parts]; z.close()"
	@echo "dist/tokenmill.zip and $$(ls dist/*.whl)"

cluster-up: setup
	@mkdir -p $(CLUSTER_DIR)/logs $(CLUSTER_DIR)/work
	@if [ -f $(CLUSTER_DIR)/master.pid ] && kill -0 $$(cat $(CLUSTER_DIR)/master.pid) 2>/dev/null; then \
	  echo "cluster already up at $(MASTER_URL)"; exit 0; fi; \
	nohup $(SPARK_HOME)/bin/spark-class org.apache.spark.deploy.master.Master \
	  --host 127.0.0.1 --port 7077 --webui-port 8080 > $(CLUSTER_DIR)/logs/master.log 2>&1 & echo $$! > $(CLUSTER_DIR)/master.pid; \
	for i in 1 2; do \
	  SPARK_WORKER_DIR=$(CLUSTER_DIR)/work/w$$i nohup $(SPARK_HOME)/bin/spark-class org.apache.spark.deploy.worker.Worker \
	    --host 127.0.0.1 --cores 1 --memory 2g --webui-port 808$$i $(MASTER_URL) \
	    > $(CLUSTER_DIR)/logs/worker$$i.log 2>&1 & echo $$! > $(CLUSTER_DIR)/worker$$i.pid; \
	done; \
	for i in $$(seq 1 60); do \
	  n=$$(grep -c "Registering worker" $(CLUSTER_DIR)/logs/master.log 2>/dev/null); \
	  [ "$$n" -ge 2 ] && { echo "cluster up: $(MASTER_URL) with 2 workers"; exit 0; }; sleep 1; done; \
	echo "cluster did not come up; see $(CLUSTER_DIR)/logs"; exit 1

cluster-down:
	@for f in $(CLUSTER_DIR)/worker1.pid $(CLUSTER_DIR)/worker2.pid $(CLUSTER_DIR)/master.pid; do \
	  [ -f $$f ] && { kill $$(cat $$f) 2>/dev/null || true; rm -f $$f; }; done; echo "cluster down"

submit: dist data/sample/index.json
	$(SPARK_HOME)/bin/spark-submit --master $(MASTER_URL) --py-files dist/tokenmill.zip \
	  --conf spark.pyspark.python=$(CURDIR)/$(PY) --conf spark.executor.memory=1g \
	  --conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1 \
	  jobs/pipeline.py --config $(CONF) $(ARGS)

lint: setup
	$(PY) -m ruff check lib jobs tests bench

clean:
	rm -rf out dist build data/sample .cluster
