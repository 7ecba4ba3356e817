"""The real Prometheus scraping stampd: contrib/prometheus/prometheus.yml
(the target set to the test server's admin port) and alerts.yml, checked by
promtool and loaded by the prometheus binary, which then scrapes; its HTTP
API must show up == 1, a request counter that moved by exactly the requests
sent, and a latency quantile.  Also: the Grafana dashboard is valid JSON
and every expression in it and in the alert rules names a metric that
/metrics exports."""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, SLOW, recv_lines, wait_for

CONTRIB = os.path.join(ROOT, "contrib")
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config_for(tmp, admin):
    """Copy the shipped config and rules into tmp, the target replaced."""
    with open(os.path.join(CONTRIB, "prometheus", "prometheus.yml")) as f:
        text = f.read()
    assert text.count('"127.0.0.1:8010"') == 1
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write(text.replace('"127.0.0.1:8010"', '"%s"' % admin))
    shutil.copy(os.path.join(CONTRIB, "prometheus", "alerts.yml"), tmp)
    return os.path.join(tmp, "prometheus.yml")


class Prometheus:
    def __init__(self, tmp, config):
        self.port = free_port()
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read()) if path.startswith("/api/") else r.read()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited:\n" + self.log())
        try:
            return self.get("/-/ready") is not None
        except OSError:
            return False

    def query(self, q):
        """The instant vector of q as [(labels, float)]."""
        r = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": q}))
        assert r["status"] == "success", r
        return [(x["metric"], float(x["value"][1])) for x in r["data"]["result"]]

    def scalar(self, q):
        v = self.query(q)
        return v[0][1] if len(v) == 1 else None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.logf.close()
        return rc


@pytest.fixture
def prometheus(tmp_path):
    if not PROMETHEUS:
        pytest.fail("prometheus missing: make deps installs the prometheus package")
    started = []

    def start(admin):
        d = tmp_path / "prom"
        d.mkdir()
        p = Prometheus(str(d), config_for(str(d), admin))
        started.append(p)
        wait_for(p.ready, 60, "prometheus to be ready", interval=0.1)
        return p
    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait(timeout=10)


def test_promtool_checks_the_shipped_files(tmp_path):
    assert PROMTOOL, "promtool missing: make deps installs the prometheus package"
    r = subprocess.run([PROMTOOL, "check", "rules",
                        os.path.join(CONTRIB, "prometheus", "alerts.yml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0 and b"SUCCESS: 9 rules found" in r.stdout, r.stdout
    cfg = config_for(str(tmp_path), "127.0.0.1:1")
    r = subprocess.run([PROMTOOL, "check", "config", cfg],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout


def test_alerts_fire_on_their_conditions(tmp_path):
    """promtool's rule unit tests: a down worker slot, a connection count
    near the limit and an unsynchronised clock each fire their alert; a
    healthy series fires none."""
    shutil.copy(os.path.join(CONTRIB, "prometheus", "alerts.yml"), tmp_path)
    (tmp_path / "t.yml").write_text("""
rule_files: [alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'stampd_worker_up{job="stampd",instance="h:8010",worker="1"}'
        values: '1 0 0 0 0'
      - series: 'stampd_live{job="stampd",instance="h:8010"}'
        values: '1 1 1 1 1'
      - series: 'stampd_connections_active{job="stampd",instance="h:8010",worker="0"}'
        values: '9500x40'
      - series: 'stampd_max_connections{job="stampd",instance="h:8010",worker="0"}'
        values: '10000x40'
      - series: 'stampd_clock_synchronized{job="stampd",instance="h:8010"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 1m
        alertname: StampdWorkerDown
        exp_alerts:
          - exp_labels: {severity: critical, job: stampd, instance: "h:8010", worker: "1"}
            exp_annotations:
              summary: "stampd on h:8010: a worker is down, stalled or crashlooping (see /healthz)"
      - eval_time: 6m
        alertname: StampdNearConnectionLimit
        exp_alerts:
          - exp_labels: {severity: warning, job: stampd, instance: "h:8010", worker: "0"}
            exp_annotations:
              summary: "stampd worker 0 on h:8010 holds over 90% of --max-conns"
      - eval_time: 6m
        alertname: StampdClockUnsynchronised
        exp_alerts:
          - exp_labels: {severity: critical, job: stampd, instance: "h:8010"}
            exp_annotations:
              summary: "the clock of h:8010 is not synchronised: its timestamps cannot be trusted"
      - eval_time: 6m
        alertname: StampdNotReady
        exp_alerts: []
""".replace("crashlooping", "crash-looping"))
    r = subprocess.run([PROMTOOL, "test", "rules", "t.yml"], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout.decode()


def test_real_prometheus_scrapes(stampd, prometheus):
    s = stampd(workers=2)
    p = prometheus(s.admin)
    # Two scrapes, both successful.
    wait_for(lambda: (p.scalar('count_over_time(up{job="stampd"}[5m])') or 0) >= 2,
             30, "two scrapes", interval=0.2)
    assert p.scalar('min_over_time(up{job="stampd"}[5m])') == 1
    assert p.scalar('up{job="stampd"}') == 1
    line = 'sum(stampd_requests_total{job="stampd",protocol="line"})'
    assert p.scalar(line) == 0
    # N requests, every reply read; then wait for a scrape taken after that.
    n = 137
    c = s.connect()
    c.sendall(b"".join(b"req %d\n" % i for i in range(n)))
    assert len(recv_lines(c, n)) == n
    c.close()
    done = time.time()
    wait_for(lambda: (p.scalar('min(timestamp(stampd_requests_total{job="stampd",'
                               'protocol="line"}))') or 0) > done,
             30, "a scrape after the requests", interval=0.2)
    assert p.scalar(line) == n
    assert p.scalar('sum(stampd_request_duration_seconds_count{job="stampd"})') == n
    # One more scrape, so that the rate's window has the before and after.
    q99 = ('histogram_quantile(0.99, sum by (le) '
           '(rate(stampd_request_duration_seconds_bucket{job="stampd"}[1m])))')
    v = wait_for(lambda: (lambda x: x is not None and not math.isnan(x) and [x])(p.scalar(q99)),
                 30, "a latency quantile", interval=0.2)[0]
    assert 0 < v <= 5, v
    # The rules are loaded and evaluated; on this healthy server none fires
    # except, where this machine's clock is not synchronised, the clock's.
    rules = p.get("/api/v1/rules")["data"]["groups"]
    assert [len(g["rules"]) for g in rules] == [9]
    firing = [a["labels"]["alertname"] for a in p.get("/api/v1/alerts")["data"]["alerts"]]
    assert set(firing) <= {"StampdClockUnsynchronised", "StampdClockMaxError"}, firing
    print("prometheus: %d requests counted exactly; p99 handling time %g s" % (n, v))
    assert p.stop() == 0
    assert s.stop() == 0


# --- every expression names an exported metric ------------------------------------

PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "and", "or",
                "unless", "on", "ignoring", "min", "max", "avg", "count", "le",
                "instance", "job", "worker", "process", "protocol", "reason",
                "action", "without", "group_left", "group_right", "bool",
                "count_over_time", "min_over_time", "max_over_time", "timestamp"}


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers outside label
    matchers and strings that are not functions, keywords or labels."""
    expr = re.sub(r'\{[^}]*\}', "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r'\[[^\]]*\]', "", expr)
    return {w for w in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', expr)
            if w not in PROMQL_WORDS}


def exported(s):
    status, body = s.admin_get("/metrics")
    assert status == 200
    names = set()
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", body.decode(), re.M):
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names |= {m.group(1) + x for x in ("_bucket", "_sum", "_count")}
    return names | {"up"}


def test_dashboard_and_alerts_name_existing_metrics(stampd):
    s = stampd(workers=1)
    have = exported(s)
    assert s.stop() == 0
    with open(os.path.join(CONTRIB, "grafana", "stampd.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    with open(os.path.join(CONTRIB, "prometheus", "alerts.yml")) as f:
        exprs += [m.group(1) for m in re.finditer(
            r"expr: (?:>\n)?((?:.*\n)*?)(?=\s+for:)", f.read())]
    assert len(exprs) >= 19
    for e in exprs:
        names = metric_names(e)
        assert names, e
        missing = names - have
        assert not missing, "%r names %s, which /metrics does not export" % (e, missing)


def test_monitoring_doc_shows_the_tested_config():
    with open(os.path.join(CONTRIB, "prometheus", "prometheus.yml")) as f:
        shipped = "".join(l for l in f if not l.startswith("#"))
    with open(os.path.join(ROOT, "docs", "monitoring.md")) as f:
        doc = f.read()
    assert "```yaml\n" + shipped.lstrip("\n") + "```\n" in doc
