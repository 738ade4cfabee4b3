"""map_batches (ecodask.chunked.batches) against the plain call, and the checksums of a stage's
files hashed by the cluster's workers (ecodask.run.verify.checksums), equal to the flow's own."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from distributed import Client, LocalCluster, get_task_stream

from ecodask.chunked.batches import map_batches
from ecodask.io.provenance import file_checksum
from ecodask.run import verify


def _squares(items: list[int]) -> list[int]:
    return [i * i for i in items]


@pytest.mark.parametrize("n", [0, 1, 4, 5, 12])
def test_batches_give_the_plain_result_in_order(n: int) -> None:
    items = list(range(n, 0, -1))
    assert map_batches(_squares, items, batch=4) == _squares(items)


def test_a_batch_function_that_drops_results_is_refused() -> None:
    with pytest.raises(ValueError, match="gave 4 results for 6 items"):
        map_batches(lambda part: part[:2], list(range(6)), batch=3)
    with pytest.raises(ValueError, match="at least 1"):
        map_batches(_squares, [1], batch=0)


@pytest.mark.slow  # a LocalCluster of worker processes
def test_the_files_a_stage_wrote_are_hashed_by_the_workers(tmp_path: Path, monkeypatch) -> None:
    rels = [f"store.zarr/esv/c/0/{i}/0" for i in range(150)]
    for i, rel in enumerate(rels):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(bytes([i % 256]) * (100 + i))
    monkeypatch.setattr(verify, "HASH_BATCH", 40)  # 4 tasks
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address="127.0.0.1:0") as cluster,
          Client(cluster), get_task_stream() as tasks):
        got = verify.checksums(tmp_path, rels)
    assert got == [file_checksum(tmp_path / rel) for rel in rels]
    # The task stream records what the workers ran: the four batches.
    assert len([t for t in tasks.data if t["key"].startswith("hash_files")]) == 4
    assert functools.partial(verify.hash_files, tmp_path)(rels[:3]) == got[:3]
