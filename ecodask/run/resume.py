"""Resumable stages: a stage that finished with the same inputs is not run again.

Each stage of a run has a **key**: a hash of the stage's name, the ecodask version, the parts of the
configuration the stage reads, the checksums of the files it reads (inputs and catalog entries)
and the keys of the stages it builds on. Keys come from content, not places
(:func:`key_doc`): each path in the configuration parts is replaced by the checksum of the file
it names (the output, the work folder and catalog folders are left out), and the files are named
by role, so the same bytes at another path, or fetched from a bucket, give the same keys.

A stage writes its arrays into a **layer** of its own, at a prefix of the output named by its key
(:mod:`ecodask.io.layers`; :func:`store_arg` gives a stage the layers it reads and the one it
writes), in an output folder as in a bucket (``cfg.remote_output``, e.g. ``s3://bucket/run``),
where the chunk tasks write straight to the bucket and no worker needs the flow's disk: the
**root** of the run (:func:`root`). When a stage starts, its other layers are swept (another key's,
or a killed run's half-written one; never the committed run's). Its small files (tables, figures)
are written in the work folder (``cfg.output``: ``<output>/.ecodask/work``); once it has finished
it is **published**: those files go into its layer (``files/``: hard links in a folder, uploads to
a bucket), then its **manifest**, ``<root>/.ecodask/stages/<stage>.json``, written last and
atomically, naming the key, the layer, the outputs and every file of the layer with its size and
checksum (BLAKE2b in a folder, hashed on the run's cluster; the ETag in a bucket, from one
listing). A stage interrupted half-way has no manifest for its key and runs again.

A rerun skips a stage whose manifest holds the same key and whose files are as it wrote them
(:func:`_check`: sizes, and the content of every file but the chunks and of a sample of the chunks;
:mod:`ecodask.run.verify`); a change anywhere upstream changes the keys downstream, so only what
depends on the change is redone. ``force`` names stages to redo regardless. A skipped stage's small
files are brought into the work folder (linked, or downloaded). When every stage has finished, the
run is committed by its pointer (:func:`commit_run` in a bucket; in a folder with its plain view,
:mod:`ecodask.run.transaction`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ecodask import __version__
from ecodask.crashpoints import crash_point
from ecodask.errors import ConfigError, problem
from ecodask.io import bucket_lock, layers, objstore
from ecodask.io.atomic import write_json
from ecodask.io.layout import STATE_DIR, STORE, RunFolder
from ecodask.run import verify
from ecodask.run.config import RunConfig, content_dump
from ecodask.run.inputs import checksum
from ecodask.run.stages import BY_NAME, NAMES, STAGES


def key_doc(cfg: RunConfig, stage: str, upstream: Sequence[str] = ()) -> dict[str, object]:
    """What the stage's key hashes: its name, the ecodask version, its configuration parts taken
    from the configuration by content (:func:`ecodask.run.config.content_dump`: each input file
    as its checksum, the output, the work folder and catalog folders left out, so the same bytes
    at another path, or fetched from a bucket, give the same parts), the checksums of the files it
    reads by role (``landcover.2000``, ``class_schemes.clcd``; never by path) and its upstream
    stages' keys."""
    return {
        "stage": stage,
        "ecodask": __version__,
        "config": BY_NAME[stage].config_parts(content_dump(cfg, checksum)),
        "files": {k: checksum(p) for k, p in BY_NAME[stage].input_files(cfg).items()},
        "upstream": list(upstream),
    }


def stage_key(cfg: RunConfig, stage: str, upstream: Sequence[str] = ()) -> str:
    """The stage's key (hex): what it reads, by content, and which ecodask reads it."""
    doc = key_doc(cfg, stage, upstream)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def root(cfg: RunConfig) -> str:
    """Where a run's layers, stage manifests and pointer are (:mod:`ecodask.io.layers`): its bucket,
    or its output folder (also while the run computes in the folder's work copy)."""
    if cfg.remote_output is not None:
        return str(cfg.remote_output)
    return str(cfg.layers_root or cfg.output)


def _in_bucket(cfg: RunConfig) -> bool:
    return cfg.remote_output is not None


def _manifest(cfg: RunConfig, stage: str) -> Path:
    """The work folder's note of a stage whose small files it holds (the stage's manifest is at
    the root: :func:`_stage_manifest`)."""
    return RunFolder(cfg.output).state / "held" / f"{stage}.json"


def _stage_manifest(cfg: RunConfig, stage: str) -> str:
    """The stage's manifest, written last when it has finished: ``<root>/.ecodask/stages/<stage>.json``."""
    return objstore.join(root(cfg), STATE_DIR, "stages", f"{stage}.json")


def _under(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` (``/``-separated) when inside it, else None."""
    base = base.rstrip("/") + "/"
    return str(path)[len(base):] if str(path).startswith(base) and len(str(path)) > len(base) else None


def _relative(cfg: RunConfig, path: str | Path) -> str:
    """An output's path relative to the work folder (a small file the stage wrote there), or
    relative to the root (a layer); :class:`ValueError` for anything else."""
    rel = _under(str(path), str(cfg.output))
    if rel is None:
        rel = _under(str(path), root(cfg))
    if rel is None or ".." in rel.split("/"):
        raise ValueError(f"cannot publish {path}: not a path inside {cfg.output} or {root(cfg)}")
    return rel


def _in_work(cfg: RunConfig, path: object) -> bool:
    """Whether an output is a file the stage wrote in the work folder (not a layer: a folder's
    layers are in the work folder too when a stage runs outside a transaction, in the output
    folder itself)."""
    layered = _under(str(path), objstore.join(root(cfg), layers.STAGES)) is not None
    return _under(str(path), str(cfg.output)) is not None and not layered


def _inside(cfg: RunConfig, path: str) -> str:
    """An output's path relative to the work folder or the root when inside one, else as it is."""
    try:
        return _relative(cfg, path)
    except ValueError:
        return str(path)


def finished(cfg: RunConfig, stage: str, key: str, chunks: verify.Verify = "sample") -> dict[str, str] | None:
    """The outputs the stage's manifest records if it holds ``key``, every output exists and what
    it wrote checks (``chunks``: see :mod:`ecodask.run.verify`), as the work folder sees them."""
    return _check(cfg, stage, key, chunks)[0]


def _check(cfg: RunConfig, stage: str, key: str, chunks: verify.Verify = "sample",
           ) -> tuple[dict[str, str] | None, list[str]]:
    """The outputs the stage's manifest records if it holds ``key``, every output is there and
    every file the stage wrote is as it was when the stage finished; else None, with what differs
    when that is the reason. The files are checked where they are: in a folder their sizes, and the
    checksums of every file but the chunks and of a sample of the chunks (all with
    ``chunks="all"``; :func:`ecodask.run.verify.changes`); in a bucket the sizes and ETags of one
    listing, and the MD5 the store recorded at upload of what is read back of them (the same
    share). A manifest without file records (an earlier version) is not trusted: the stage runs
    again."""
    m = objstore.read_json(_stage_manifest(cfg, stage))
    if not isinstance(m, dict) or m.get("key") != key or not isinstance(m.get("files"), dict):
        return None, []
    outputs = {str(k): str(v) for k, v in (m.get("outputs") or {}).items()}
    top = root(cfg)
    local = {k: str(cfg.output / f) if (f := _files_of(v)) is not None else _at(top, v)
             for k, v in outputs.items()}
    mine = {str(rel): (int(rec[0]), rec[1]) for rel, rec in m["files"].items()}
    layer = _manifest_layer(cfg, stage, m)
    if not _in_bucket(cfg):
        if not Path(layer).is_dir() or not all(Path(_at(top, v)).exists() for v in outputs.values()):
            return None, []
        diffs = verify.changes(Path(top), stage, {rel: (stage, rec) for rel, rec in mine.items()}, chunks)
        return (None if diffs else local), [_as_seen(line) for line in diffs]
    # Everything the stage wrote is in its layer: one listing of it.
    layer_rel = _relative(cfg, layer)
    found = objstore.entries(layer)
    now = {objstore.join(layer_rel, rel): objstore.record(info) for rel, info in found.items()}
    diffs = sorted(f"{rel}: missing" if rel not in now else f"{rel}: replaced in the bucket since "
                   f"(size {now[rel][0]}, ETag {now[rel][1]}; {size}, {etag} when published)"
                   for rel, (size, etag) in mine.items() if now.get(rel) != (size, etag))
    if not all(v in now or objstore.exists(_at(top, v)) for v in outputs.values()):
        return None, diffs
    if not diffs:  # the listing matches: read back what a rerun would trust
        rels = [rel.removeprefix(layer_rel + "/") for rel in mine]
        picked = verify.read_back(rels, layers.is_chunk, chunks)
        wrong = objstore.misread(layer, {r: found[r] for r in picked})
        diffs = [f"{objstore.join(layer_rel, r)}: {why}" for r, why in sorted(wrong.items())]
    return (None if diffs else local), diffs


def _at(top: str, value: str) -> str:
    """An output a manifest records: relative to the root, or (outside it) as it is."""
    return value if objstore.is_remote(value) or Path(value).is_absolute() else objstore.join(top, value)


def _as_seen(line: str) -> str:
    """A line of :func:`ecodask.run.verify.changes` with its file named as a folder's reader sees
    it: a layer's array file in ``store.zarr``, a layer's small file where the run published it."""
    rel, sep, why = line.partition(": ")
    parts = rel.split("/")
    if len(parts) > 3 and parts[0] == layers.STAGES:
        inner = parts[3:]
        rel = "/".join(inner[1:]) if inner[0] == layers.FILES else "/".join([STORE, *inner])
    return rel + sep + why


def store_arg(cfg: RunConfig, stage: str, keys: dict[str, str], store: object = None) -> layers.Layers:
    """The store a stage's ``run`` takes: the layers of every stage it builds on, directly or not
    (ingest's first), and its own layer to write, named by the keys of the run's :func:`plan`
    (``store``, what the previous stage returned, is not needed: the keys name the layers)."""
    ancestors = set(_ancestors(stage))
    return layers.Layers(tuple(stage_layer(cfg, s, keys[s]) for s in NAMES if s in ancestors),
                         layers.writing_url(root(cfg), stage, keys[stage]))


def _manifest_layer(cfg: RunConfig, stage: str, manifest: dict) -> str:
    """The layer a stage's manifest names (a manifest of an earlier version names none: its key's
    first layer)."""
    rel = manifest.get("layer")
    if isinstance(rel, str) and rel:
        return objstore.join(root(cfg), rel)
    return layers.layer_url(root(cfg), stage, str(manifest.get("key")))


def stage_layer(cfg: RunConfig, stage: str, key: str) -> str:
    """The layer of ``stage`` in a run being computed with ``key``: the one its manifest names when
    that holds ``key`` (the stage finished), else the one it writes when it runs
    (:func:`ecodask.io.layers.writing_url`)."""
    m = objstore.read_json(_stage_manifest(cfg, stage))
    if isinstance(m, dict) and m.get("key") == key:
        return _manifest_layer(cfg, stage, m)
    return layers.writing_url(root(cfg), stage, key)


def run_layers(cfg: RunConfig, keys: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(stage, key, layer)`` of every stage of the run a folder publishes: the layer its manifest
    names where that holds the run's key, else (a run of some stages only) the committed run's, if
    any."""
    kept = layers.pointer(root(cfg)) or {"stages": []}
    before = {s["stage"]: (s["key"], objstore.join(root(cfg), s["layer"])) for s in kept["stages"]}
    out = []
    for stage in NAMES:
        m = objstore.read_json(_stage_manifest(cfg, stage))
        if isinstance(m, dict) and m.get("key") == keys.get(stage):
            out.append((stage, keys[stage], _manifest_layer(cfg, stage, m)))
        elif stage in before and Path(before[stage][1]).is_dir():
            out.append((stage, *before[stage]))
    return out


def _ancestors(stage: str) -> list[str]:
    out = []
    for up in BY_NAME[stage].upstream:
        out += [up, *_ancestors(up)]
    return out


def plan(cfg: RunConfig) -> dict[str, str]:
    """The key of every stage of a run, each chained to its upstream stages' keys."""
    keys: dict[str, str] = {}
    for stage in STAGES:
        keys[stage.name] = stage_key(cfg, stage.name, [keys[u] for u in stage.upstream])
    return keys


def _write_manifest(cfg: RunConfig, stage: str, key: str, outputs: dict[str, str]) -> None:
    """The work folder's note that it holds the stage's files for ``key`` (what :func:`_pull`
    compares)."""
    doc = {"stage": stage, "key": key, "outputs": {k: _inside(cfg, v) for k, v in outputs.items()}}
    write_json(doc, _manifest(cfg, stage), sort_keys=True)


def _holds(cfg: RunConfig, stage: str, key: str, outputs: dict[str, str]) -> bool:
    """Whether the work folder holds the stage's files for ``key`` (its note says so, and they are
    there)."""
    try:
        m = json.loads(_manifest(cfg, stage).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(m, dict) or m.get("key") != key:
        return False
    held = {str(k): _at(root(cfg), str(v)) if str(v).startswith(layers.STAGES + "/")
            else str(cfg.output / str(v)) for k, v in (m.get("outputs") or {}).items()}
    return held == outputs and all(Path(p).exists() for p in held.values() if _in_work(cfg, p))


def _files_of(rel: str) -> str | None:
    """The path in the run's folder of a file a stage published in its layer
    (``stages/<stage>/<key16>/files/<path>``), or None for anything else."""
    parts = rel.split("/", 4)
    ok = len(parts) == 5 and parts[0] == layers.STAGES and parts[3] == layers.FILES
    return parts[4] if ok else None


def link(src: Path, dst: Path) -> None:
    """``dst`` a new hard link to ``src`` (a copy where the file system has none)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link_tree(src: Path, dst: Path, missing: bool = False) -> int:
    """Every file under ``src`` linked at the same place under ``dst`` (``missing``: only where
    ``dst`` has none); return how many."""
    n = 0
    for folder, _, files in os.walk(src):
        for f in files:
            path = Path(folder) / f
            there = dst / path.relative_to(src)
            if not (missing and there.exists()):
                link(path, there)
                n += 1
    return n


def gather(cfg: RunConfig, stages: list[tuple[str, str, str]]) -> int:
    """Link into the work folder the small files of the layers ``(stage, key, layer)`` of a folder's
    run that it lacks (a stage the run did not do, in a run of some stages only); return how many."""
    return sum(_link_tree(Path(layer) / layers.FILES, cfg.output, missing=True) for _, _, layer in stages)


def publish(cfg: RunConfig, stage: str, key: str, outputs: dict[str, str],
            log: Callable[[str], None] = print, written: Sequence[str] = ()) -> None:
    """Copy the small files the stage wrote in the work folder (its outputs and ``written``,
    relative to it) into its layer (``files/``: uploaded to a bucket, linked in a folder), record
    the layer's metadata in one object, then write its manifest, last: the layer, and every file in
    it (the chunks its tasks wrote included) with its size and ETag (a bucket, from one listing) or
    checksum (a folder, hashed on the run's cluster)."""
    top = root(cfg)
    if _in_bucket(cfg):
        bucket_lock.check(top)  # a run whose lock was taken over writes nothing more there
    layer = layers.writing_url(top, stage, key)  # the pointer has not changed since the stage began
    files_url = objstore.join(layer, layers.FILES)
    local = {_relative(cfg, v) for v in outputs.values() if _in_work(cfg, v)}
    local |= {w for w in written if not verify.is_partial(w)}
    present = sorted(rel for rel in local if (cfg.output / rel).exists())
    if _in_bucket(cfg):
        n = sum(objstore.sync_up(cfg.output / rel, objstore.join(files_url, rel)) for rel in present)
    else:
        n = 0
        for rel in present:
            if (cfg.output / rel).is_dir():
                n += _link_tree(cfg.output / rel, Path(files_url) / rel)
            else:
                link(cfg.output / rel, Path(files_url) / rel)
                n += 1
    layer_rel = _relative(cfg, layer)
    rels = {k: objstore.join(layer_rel, layers.FILES, _relative(cfg, v)) if _in_work(cfg, v)
            else _inside(cfg, v) for k, v in outputs.items()}
    crash_point(f"stage:{stage}:files")
    layers.consolidate(layer)  # the layer's metadata in one object, for the tasks that open it
    if _in_bucket(cfg):
        # What the bucket now holds of the stage, from one listing of its layer: a rerun compares
        # the sizes and ETags before it trusts the stage (the ETag changes with the bytes).
        files = {objstore.join(layer_rel, rel): rec for rel, rec in objstore.listing(layer).items()}
        bucket_lock.check(top)
    else:
        files = {objstore.join(layer_rel, rel): rec for rel, rec in verify.written(Path(layer), {}).items()}
    objstore.put_json({"stage": stage, "key": key, "layer": layer_rel, "outputs": rels, "files": files},
                      _stage_manifest(cfg, stage))
    log(f"stage {stage}: published to {layer} ({n} files {'uploaded' if _in_bucket(cfg) else 'linked'} "
        "beside the chunks)")


def _pull(cfg: RunConfig, stage: str, key: str, outputs: dict[str, str],
          log: Callable[[str], None]) -> None:
    """Bring a skipped stage's small files into the work folder unless it holds them for the same
    key (downloaded from a bucket, linked from a folder's layer; its arrays stay in the layer)."""
    if _holds(cfg, stage, key, outputs):
        return
    _manifest(cfg, stage).unlink(missing_ok=True)
    files_url = objstore.join(stage_layer(cfg, stage, key), layers.FILES)
    if _in_bucket(cfg):
        n = sum(objstore.sync_down(objstore.join(files_url, rel), cfg.output / rel)
                for rel in objstore.listing(files_url))
    else:
        n = _link_tree(Path(files_url), cfg.output) if Path(files_url).is_dir() else 0
    _write_manifest(cfg, stage, key, outputs)
    if _in_bucket(cfg):
        log(f"stage {stage}: downloaded its outputs from {files_url} ({n} files)")


def commit_run(cfg: RunConfig, keys: dict[str, str], log: Callable[[str], None] = print) -> None:
    """With a remote output, once every stage has finished: make the run the bucket's (its
    pointer, :func:`ecodask.io.layers.commit`, written last, then the layers it does not name
    removed) and refresh the plain views ``tables/`` and ``figures/`` from the work folder, for
    people and tools that read fixed paths (they change after the pointer: a reader that must
    see one whole run resolves the pointer)."""
    from ecodask.io.layout import FIGURES, TABLES

    remote = str(cfg.remote_output)
    bucket_lock.check(remote)
    layers.commit(remote, [(s, keys[s], stage_layer(cfg, s, keys[s])) for s in NAMES])
    for entry in (TABLES, FIGURES):
        if (cfg.output / entry).is_dir() and any((cfg.output / entry).iterdir()):
            objstore.sync_up(cfg.output / entry, objstore.join(remote, entry))
    log(f"run committed to {remote} ({layers.POINTER})")


def run_stage(cfg: RunConfig, stage: str, key: str, fn: Callable[[], dict], force: bool = False,
              log: Callable[[str], None] = print, chunks: verify.Verify = "sample",
              verified: dict[str, str] | None = None) -> tuple[dict[str, str], bool]:
    """Run ``fn`` (a stage returning its outputs by name) unless it finished earlier with ``key``
    and its files check (``chunks``: the content of a sample of its chunks, or all), or ``force``;
    return ``(outputs, ran)``. ``cfg`` is the run's as it computes (:mod:`ecodask.run.transaction`:
    its output is the work folder). ``verified``: the outputs of the stage as the run found it
    finished and checked, under the lock it still holds (:func:`ecodask.run.transaction.begin`):
    not checked again (``--verify`` would read the whole store twice). A finished stage is
    published into its layer; a skipped one's small files are brought into the work folder."""
    diffs: list[str] = []
    if force:
        done = None
    elif verified is not None:
        done = verified
    else:
        done, diffs = _check(cfg, stage, key, chunks)
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        log(f"stage {stage}: finished earlier with the same inputs, but its outputs changed since "
            f"({shown}): redone")
    if done is not None:
        _pull(cfg, stage, key, done, log)
        log(f"stage {stage}: finished earlier with the same inputs (key {key[:12]}), skipped")
        return done, False
    _manifest(cfg, stage).unlink(missing_ok=True)
    if _in_bucket(cfg):
        bucket_lock.check(root(cfg))
    # A manifest naming the committed run's layer stays until the new one replaces it (that layer is
    # never written into: a rerun may trust it); one naming any other layer goes with it.
    m = objstore.read_json(_stage_manifest(cfg, stage))
    kept = (layers.committed_layers(root(cfg)) or {}).get(stage)
    if isinstance(m, dict) and _manifest_layer(cfg, stage, m) != kept:
        objstore.remove(_stage_manifest(cfg, stage))
    layers.new_layer(root(cfg), stage, key)  # earlier layers of the stage swept
    before = verify.snapshot(cfg.output) if cfg.output.exists() else {}
    crash_point(f"stage:{stage}:start")
    t0 = time.perf_counter()
    outputs = {k: str(v) for k, v in fn().items()}
    seconds = time.perf_counter() - t0
    crash_point(f"stage:{stage}:computed")
    written = [rel for rel, now in verify.snapshot(cfg.output).items()
               if before.get(rel) != now and not verify.is_partial(rel)]
    publish(cfg, stage, key, outputs, log, written)
    _write_manifest(cfg, stage, key, outputs)
    crash_point(f"stage:{stage}:manifest")
    log(f"stage {stage}: done in {seconds:.1f} s, {len(cfg.years)} years ({cfg.years[0]}-{cfg.years[-1]}); "
        f"wrote {len(written)} files beside its arrays ({', '.join(sorted(outputs)) or 'nothing'}; "
        f"key {key[:12]})")
    return outputs, True


def pending(cfg: RunConfig, force: Sequence[str] = (), keys: dict[str, str] | None = None,
            chunks: verify.Verify = "sample") -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The stages a run of ``cfg`` would do, and the outputs of those it would skip (``keys``: the
    run's :func:`plan`, when the caller has it already; computing it reads every input).

    Returns ``(todo, done)``: ``todo`` maps each stage to run (changed inputs, never finished,
    or forced) to its key; ``done`` maps each finished stage to its recorded outputs."""
    keys = keys if keys is not None else plan(cfg)
    todo: dict[str, str] = {}
    done: dict[str, dict[str, str]] = {}
    for stage in NAMES:
        outputs = None if stage in force else finished(cfg, stage, keys[stage], chunks)
        if outputs is None:
            todo[stage] = keys[stage]
        else:
            done[stage] = outputs
    return todo, done


def with_downstream(stages: Sequence[str]) -> list[str]:
    """The named stages and every stage that builds on one of them, in run order: redoing a stage
    rewrites outputs its downstream stages read (ingest replaces the store the others add arrays
    to), so forcing it forces them too."""
    chosen = set(stages)
    for stage in STAGES:  # upstream stages come first
        if any(u in chosen for u in stage.upstream):
            chosen.add(stage.name)
    return [s for s in NAMES if s in chosen]


def forced(force: Sequence[str] | None) -> list[str]:
    """The stages to redo for ``--force`` names: each named stage and every stage built on it, in
    run order; a name that is not a stage is a :class:`ConfigError`."""
    force = list(force or [])
    unknown = sorted(set(force) - set(NAMES))
    if unknown:
        raise ConfigError([problem("--force", "stage", unknown, f"stages are {', '.join(NAMES)}")])
    return with_downstream(force)
