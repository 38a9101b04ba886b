"""A real local Ray on loopback with 2 CPUs, shared by the job tests; its dashboard serves the
State API, which Ray Train uses to free the resources of a trial Ray Tune stopped."""

import pytest


@pytest.fixture(scope="session")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False, object_store_memory=200 * 2**20)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
