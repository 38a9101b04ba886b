"""Addresses: the local Ray's GCS port (and every port our tests hand out) avoids Ray's
default ports; a job's workers are told the address of the cluster they run in."""

import socket

import pytest

from llara.ray_jobs.session import RAY_FIXED_PORTS, free_port, workers_know


def test_a_port_ray_takes_by_default_is_skipped():
    offered = iter([52365, 8265, 41234])  # what the OS might hand out, in turn
    assert free_port(probe=lambda: next(offered)) == 41234


def test_only_ray_defaults_on_offer_is_a_clear_error():
    with pytest.raises(RuntimeError, match="outside Ray's defaults after 3 tries"):
        free_port(probe=lambda: 52365, tries=3)


def test_the_port_is_free_on_loopback_and_not_a_ray_default():
    port = free_port()
    assert port not in RAY_FIXED_PORTS
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing holds it


def test_workers_are_told_a_gcs_address():
    assert workers_know("192.0.2.2:59017") == {"env_vars": {"RAY_ADDRESS": "192.0.2.2:59017"}}


@pytest.mark.parametrize("address", ["auto", "http://127.0.0.1:8265", "ray://head:10001",
                                     "head", ":6379", "head:port"])
def test_other_address_forms_are_left_to_ray(address):
    assert workers_know(address) is None
