"""`llara` talks to its own Ray instance, even with another one running on the machine."""

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

CHECK = """
import ray
from llara.ray_jobs.session import address_in_use, connect
from llara.ray_jobs.tune import require_state_api

connect(num_cpus=1, log=lambda *_: None)
require_state_api()  # the State API from inside the cluster, as Ray Train's cleaner asks it
print("ours:", address_in_use())
ray.shutdown()
"""

OTHER = """
import sys, time, ray
ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
         configure_logging=False)
print(ray.get_runtime_context().gcs_address, flush=True)
time.sleep(600)
"""


def test_tune_finds_its_own_ray_beside_another_instance(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", OTHER], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    try:
        other_address = other.stdout.readline().strip()  # the other instance is up
        assert other_address, "the second Ray instance did not start"
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        ours = done.stdout.split("ours:", 1)[1].strip()
        assert ours and ours != other_address
    finally:
        other.terminate()
        deadline = time.monotonic() + 60
        while other.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if other.poll() is None:
            other.kill()


def test_a_local_session_gives_serve_proxies_a_minute_to_get_ready(ray_local):
    """The Serve controller, a Ray actor, reads its proxy timeouts from its environment."""
    from llara.ray_jobs.session import LOCAL_SERVE_TIMEOUTS

    @ray_local.remote
    def seen() -> dict:
        import os

        return {name: os.environ.get(name) for name in LOCAL_SERVE_TIMEOUTS}

    assert ray_local.get(seen.remote()) == LOCAL_SERVE_TIMEOUTS


def test_parquet_reads_skip_the_file_listing_step_and_keep_rows_and_order(ray_local, tmp_path,
                                                                         capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llara.ray_jobs.session import read_parquet

    table = pa.table({"sample_id": list(range(300)), "x": [i * 0.5 for i in range(300)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=64)
    context = ray_local.data.DataContext.get_current()
    before = context.use_datasource_v2
    context.execution_options.preserve_order = True
    stream = read_parquet(str(tmp_path / "t.parquet"), override_num_blocks=5)
    assert context.use_datasource_v2 == before  # the caller's choice is left as it was
    capsys.readouterr()
    stream.explain()  # the plan Ray will run, printed before it runs
    plan = capsys.readouterr().out
    assert "ReadParquet" in plan and "ListFiles" not in plan, plan
    assert pa.concat_tables(stream.iter_batches(batch_format="pyarrow")).equals(table)
