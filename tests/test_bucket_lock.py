"""The lock of a remote output in its bucket (ecodask.io.bucket_lock), on a local S3 server, a local
Azure Blob Storage server (Azurite) and a local Google Cloud Storage server (fake-gcs-server): one
holder at a time by conditional PUTs, a dead holder's lock
taken over after its lease, a holder whose lock was taken over stopped before it writes, re-entry by
the same process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from azurite_server import served_container
from gcs_server import served_gcs_bucket

from ecodask.io import bucket_lock, objstore
from ecodask.io.lock import OutputLockedError

from helpers import deadline, wait_until
from s3_server import served_bucket

pytestmark = pytest.mark.slow  # the moto S3 server, Azurite

BUCKET = "ecodask-lock-test"


@pytest.fixture(scope="module", params=["s3", "az", "gs"])
def scheme(request):
    """Each test on S3 (moto), on Azure Blob Storage (Azurite) and on Google Cloud Storage
    (fake-gcs-server): the URL scheme, the server up."""
    served = {"s3": lambda: served_bucket(BUCKET, "AKIALOCKTEST", "lock-test-secret"),
              "az": lambda: served_container(BUCKET),
              "gs": lambda: served_gcs_bucket(BUCKET)}[request.param]()
    with served:
        yield request.param


@pytest.fixture
def s3(scheme):
    """The bucket's filesystem (s3fs, adlfs or gcsfs)."""
    fs, _ = objstore.filesystem(f"{scheme}://{BUCKET}")
    return fs


def _lock_path(out: str) -> str:
    return objstore.filesystem(bucket_lock.lock_url(out))[1]


def test_one_holder_at_a_time_and_the_lock_goes_with_it(s3, scheme) -> None:
    out = f"{scheme}://{BUCKET}/runs/one"
    with bucket_lock.bucket_lock(out) as url:
        assert url == f"{out}/.ecodask/lock"
        doc = json.loads(s3.cat_file(_lock_path(out)))
        assert doc["pid"] > 0 and doc["lease_s"] == bucket_lock.LEASE_S
        # Another process (another machine, as far as the bucket knows) is refused, naming us.
        other = subprocess.run(
            [sys.executable, "-c", "from ecodask.io.bucket_lock import bucket_lock\n"
             f"with bucket_lock({out!r}): pass"], capture_output=True, text=True,
            timeout=deadline(60))
        assert other.returncode != 0 and "OutputLockedError" in other.stderr
        assert f"pid {doc['pid']}" in other.stderr and "in use by another ecodask run" in other.stderr
        with bucket_lock.bucket_lock(out):  # the same process again (the command line, then its flow)
            pass
        assert s3.exists(_lock_path(out))  # still held by the outer block
    assert not s3.exists(_lock_path(out))
    with bucket_lock.bucket_lock(out):  # free again
        pass


def test_two_takers_at_once_one_wins(s3, scheme) -> None:
    url = bucket_lock.lock_url(f"{scheme}://{BUCKET}/runs/race")
    first, second = bucket_lock._Lease(url, 60), bucket_lock._Lease(url, 60)
    assert first.try_take() is None
    assert "renewed" in second.try_take()  # the conditional PUT refused it
    first.release()


def test_a_dead_holders_lock_is_taken_over_after_its_lease(s3, scheme) -> None:
    out = f"{scheme}://{BUCKET}/runs/dead"
    url = bucket_lock.lock_url(out)
    # A holder that never renews (killed): its lock object ages on the server.
    dead = bucket_lock._Lease(url, 2.0)
    assert dead.try_take() is None
    with pytest.raises(OutputLockedError, match="renewed"):
        with bucket_lock.bucket_lock(out, lease_s=2.0):
            pass
    with bucket_lock.bucket_lock(out, wait_s=deadline(30), lease_s=2.0, poll_s=0.2):  # waits out the lease
        assert objstore.etag(s3.info(_lock_path(out))) != dead.etag  # taken over: written anew


def test_a_killed_holders_lock_on_this_machine_is_taken_over_at_once(s3, scheme) -> None:
    out = f"{scheme}://{BUCKET}/runs/killed"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ecodask.io.bucket_lock import bucket_lock\n"
         f"with bucket_lock({out!r}):\n    print('held', flush=True)\n    time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid} "):
            with bucket_lock.bucket_lock(out):
                pass
    finally:
        holder.kill()  # SIGKILL: it never releases the lock
        holder.wait()
    assert json.loads(s3.cat_file(_lock_path(out)))["pid"] == holder.pid
    with bucket_lock.bucket_lock(out):  # no wait for the lease: its holder is gone from this machine
        assert json.loads(s3.cat_file(_lock_path(out)))["pid"] != holder.pid


def test_a_holder_whose_lock_was_taken_over_writes_nothing_more(s3, scheme) -> None:
    out = f"{scheme}://{BUCKET}/runs/lost"
    bucket_lock.check(out)  # not held: nothing to say
    with bucket_lock.bucket_lock(out, lease_s=2.0):
        bucket_lock.check(out)
        # Renewed every quarter lease, so never stale (the server's LastModified is in whole seconds).
        first = objstore.etag(s3.info(_lock_path(out)))
        wait_until(lambda: objstore.etag(s3.info(_lock_path(out))) != first, 30, "a renewal of the lock")
        assert "renewed" in bucket_lock._Lease(bucket_lock.lock_url(out), 2.0).try_take()
        # Another run takes the lock over (as it would after this one stalled past its lease).
        s3.pipe_file(_lock_path(out), b'{"pid": 1, "host": "elsewhere"}')

        def refused() -> bool:
            try:
                bucket_lock.check(out)
            except OutputLockedError as exc:
                return "taken over" in str(exc)
            return False

        wait_until(refused, 30, "the holder's next renewal to find its lock taken over")
    assert json.loads(s3.cat_file(_lock_path(out)))["host"] == "elsewhere"  # not ours to delete


def test_a_release_deletes_only_the_version_it_wrote(s3, scheme, request) -> None:
    """The release's DELETE is conditional on the version the holder last wrote (S3's and Azure's
    ETag, Google's generation): after another run replaced the lock it is refused (HTTP 412) and
    that run's lock stays; on the version it names, the lock goes."""
    if scheme == "gs":  # strict: passes the day the emulator honours the condition, then drop this
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "fake-gcs-server 0.1.1's wrapper (the newest on PyPI) ignores ifGenerationMatch on a DELETE "
            "(its issue 1282; fixed upstream in August 2026, not yet in a wheel): not refused")))
    out = f"{scheme}://{BUCKET}/runs/release"
    url = bucket_lock.lock_url(out)
    ours = bucket_lock.conditional_put(url, b'{"pid": 1, "host": "here"}', if_none_match=True)
    theirs = bucket_lock.conditional_put(url, b'{"pid": 2, "host": "elsewhere"}', if_match=ours)
    assert theirs != ours
    with pytest.raises(Exception) as refused:
        bucket_lock.conditional_delete(url, ours)
    assert bucket_lock._refused(refused.value), refused.value
    assert json.loads(s3.cat_file(_lock_path(out)))["host"] == "elsewhere"
    assert objstore.version(s3.info(_lock_path(out))) == theirs
    bucket_lock.conditional_delete(url, theirs)
    s3.invalidate_cache()
    assert not s3.exists(_lock_path(out))
