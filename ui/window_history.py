"""Nothing is lost (issue 33, item 2): opening a model lists the artifacts already made from it, read from
their manifests on disk (made by the window or the command line), with their verdicts and the last
benchmark; every Convert and Benchmark run of the window is recorded in the model's run history, which
the History menu lists and reopens.

Where things are looked for: the output folder on screen (or, when it is empty, the model's own
folder), the model's own folder, and the output folders of the model's recorded runs. The history
itself lies beside the window's settings (``history/``), one small JSON file per model, so an output
folder holds only the artifacts the user asked for. Reading is done in a worker thread (manifests and
histories are untrusted JSON: size-capped, never run, a damaged one is a line in the log).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMenu

from app.session import BENCHMARK
from ui.plain_text import one_line, tooltip, visible_text
from ui.workers import BackgroundJob

MAX_FOLDERS = 6            # folders looked in for one model
MENU_TEXT = 110            # characters of a run's line in the History menu


def _resolved(path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(path)


def run_time(run: dict) -> float | None:
    """When ``run`` was recorded (seconds since the epoch), None when its time cannot be read."""
    try:
        return _dt.datetime.fromisoformat(run["time"]).timestamp()
    except (TypeError, ValueError, KeyError, OverflowError):
        return None


def run_summary(run: dict) -> tuple[str, list[str]]:
    """One line for the History menu (``2025-05-05 14:03 · Convert · onnx int8 passed with accuracy loss, …``)
    and the full lines of its tool tip."""
    when = run["time"].replace("T", " ")[:16]
    lines = []
    for a in run["artifacts"]:
        verdict = a.get("verdict") or {}
        label = verdict.get("label") if isinstance(verdict.get("label"), str) else "no verdict"
        lines.append(f"{a['target']} {a['precision']}: {label}")
    if run["kind"] == "benchmark":
        rows = [r for r in (run.get("benchmark") or {}).get("results") or [] if isinstance(r, dict)]
        batches = [r["batch"] for r in rows if type(r.get("batch")) is int]
        first = min(batches) if batches else None
        medians = [f"{r.get('name')}: p50 {r['p50_ms']:.3g} ms" for r in rows if r.get("batch") == first
                   and isinstance(r.get("p50_ms"), (int, float)) and not isinstance(r.get("p50_ms"), bool)]
        head = f"{when} · Benchmark · " + (", ".join(medians) or "no measurements")
        return head, [f"Benchmark of {run['time']} (batch {first})", *medians]
    head = f"{when} · Convert · " + (", ".join(lines) or "nothing converted")
    return head, [f"Convert of {run['time']} into {run.get('folder') or '?'}", *lines]


class History(QObject):
    """What was made from the model before, and its run history (the History menu)."""

    scanned = Signal(object)   # (dict) what a look on disk found: rows added, notes, runs

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.job: BackgroundJob | None = None   # the newest look on disk, until it answers
        self.runs: list[dict] = []              # the runs of the model on screen, oldest first
        self._looked_for: Path | None = None    # the model the last look was for
        self._recorded: set[int] = set()        # conversion jobs of this run already in the history
        self._restoring = False                 # a benchmark read back, not one just run
        self.menu = QMenu("Hi&story", window)
        self.menu.setToolTipsVisible(True)
        self.menu.aboutToShow.connect(self.fill_menu)
        bar = window.menuBar()
        help_menu = next((a for a in bar.actions() if a.text() == "&Help"), None)
        bar.insertMenu(help_menu, self.menu) if help_menu is not None else bar.addMenu(self.menu)
        self._folder_edited = QTimer(self)      # a typed output folder is looked in 400 ms after the last key
        self._folder_edited.setSingleShot(True)
        self._folder_edited.setInterval(400)
        self._folder_edited.timeout.connect(lambda: self.look(force=True))
        window.options.out_dir.edit.textChanged.connect(lambda _text: self._folder_edited.start())
        events = window.session.events
        events.model_loaded.connect(lambda _summary: self.look())
        events.model_forgotten.connect(self._on_model_forgotten)
        events.jobs_cleared.connect(self._recorded.clear)
        events.all_jobs_ended.connect(self._on_all_jobs_ended)
        events.benchmark_finished.connect(self._on_benchmark_finished)

    @property
    def history_dir(self) -> Path:
        """Beside the window's settings (private to each test: the settings are)."""
        return Path(self.window.settings.path).parent / "history"

    def folders(self) -> list[Path]:
        """Where the model's artifacts may be: the output folder (or the model's folder), the model's folder,
        the folders of its recorded runs (newest first)."""
        w = self.window
        model = w.model_path
        out = w.options.output_folder()
        candidates = [out or model.parent, model.parent]
        candidates += [Path(r["folder"]) for r in reversed(self.runs) if r.get("folder")]
        unique = list(dict.fromkeys(_resolved(f) for f in candidates))
        return [f for f in unique if f.is_dir()][:MAX_FOLDERS]

    # -- looking on disk
    def look(self, *, force: bool = False) -> BackgroundJob | None:
        """Find what was made from the model on screen (in a worker thread); its rows are added to the
        table, marked as from disk, once found. Once per model unless ``force`` (the folder changed)."""
        w = self.window
        if w.model_path is None or (not force and self._looked_for == _resolved(w.model_path)):
            return None
        self._looked_for = _resolved(w.model_path)
        return self._start(self.folders(), run=None)

    def reopen(self, run: dict) -> BackgroundJob | None:
        """Fill the table with the artifacts of ``run`` as their manifests on disk say (and, for a
        benchmark run, draw its benchmark); with jobs running the user is asked first."""
        w = self.window
        if w.session.jobs_running:
            w.ask_to_stop_jobs(f"reopen the run of {run['time'].replace('T', ' ')[:16]}", lambda: self.reopen(run))
            return None
        w.session.clear_outcomes()
        return self._start([], run=run)

    def _start(self, folders: list[Path], run: dict | None) -> BackgroundJob:
        w = self.window
        model, history_dir = _resolved(w.model_path), self.history_dir
        wanted = [Path(a["artifact"]) for a in run["artifacts"] if a.get("artifact")] if run else None

        def work(progress, should_cancel):
            return _look_on_disk(model, folders, history_dir, wanted, run)

        job = BackgroundJob(work, parent=w)
        job.run = run
        self.job = job
        job.succeeded.connect(lambda found: self._on_found(job, found))
        job.failed.connect(lambda state, message: self._on_look_failed(job, message))
        job.start()
        return job

    def _on_found(self, job: BackgroundJob, found: dict) -> None:
        if job is not self.job:
            return
        self.job = None
        w = self.window
        if w.model_path is None or _resolved(w.model_path) != found["model"]:
            return
        name = one_line(w.model_path.name)
        if job.run is None:
            self.runs = found["runs"]
        added = [o for o in (w.session.found_on_disk(*row) for row in found["rows"]) if o is not None]
        for note in found["notes"]:
            w.log.add(f"{name}: {note}")
        benchmark = found.get("benchmark")
        if benchmark is not None and (job.run is not None or w.session.last_benchmark is None) \
                and not (BENCHMARK in w.session.jobs and not w.session.jobs[BENCHMARK].ended):
            self._show_benchmark(benchmark["result"], benchmark["from"])
        if job.run is not None:
            when = job.run["time"].replace("T", " ")[:16]
            w.statusBar().showMessage(f"Reopened the run of {when}: {len(added)} artifact(s) from disk"
                                      + (f"; {len(found['notes'])} note(s) in the log" if found["notes"] else ""), 10000)
            w.log.add(f"{name}: reopened the run of {when} ({len(added)} artifact(s))")
        elif added or found["notes"]:
            w.statusBar().showMessage(f"{len(added)} artifact(s) made earlier from {name} found on disk"
                                      + (f"; {len(found['notes'])} note(s) in the log" if found["notes"] else ""), 10000)
            for o in added:
                w.log.add(f"{name}: on disk since {o.from_disk.when}: {o.artifact.name} — {o.verdict.summary()}")
        w.menus.update_actions()
        self.scanned.emit(dict(found, added=added))

    def _on_look_failed(self, job: BackgroundJob, message: str) -> None:
        if job is self.job:
            self.job = None
            self.window.log.add(f"could not look for earlier artifacts: {message}")

    def _show_benchmark(self, result: dict, where: str) -> None:
        self._restoring = True
        try:
            self.window.session.benchmarked(result)
        finally:
            self._restoring = False
        self.window.log.add(f"benchmark shown from {where}")

    def _on_model_forgotten(self) -> None:
        self.runs, self._looked_for, self.job = [], None, None

    # -- recording runs
    def _record(self, kind: str, folder: Path, artifacts: list[dict], benchmark: dict | None = None) -> None:
        from app.artifacts.history import new_run, record_run

        w = self.window
        run = new_run(kind, w.model_path, folder, artifacts, benchmark)
        try:
            record_run(self.history_dir, w.model_path, run)
        except OSError as e:
            w.log.add(f"could not record this run in the history: {e.strerror or e}")
            return
        self.runs.append(run)

    def _on_all_jobs_ended(self) -> None:
        w = self.window
        if w.model_path is None:
            return
        jobs = [j for j in w.session.jobs.values() if j.key.kind == "convert" and j.ended and id(j) not in self._recorded]
        if not jobs:
            return
        artifacts, folder = [], None
        for job in jobs:
            self._recorded.add(id(job))
            target, _, precision = job.key.name.partition(" ")
            outcome = next((o for o in w.session.outcomes if (o.target, o.precision) == (target, precision)
                            and o.from_disk is None), None)
            if outcome is not None and folder is None:
                folder = outcome.artifact.parent if outcome.artifact else _out_dir(outcome.request)
            artifacts.append({"target": target, "precision": precision,
                              "artifact": outcome.artifact if outcome is not None else None,
                              "verdict": job.verdict.to_json() if job.verdict is not None else None})
        self._record("convert", folder or w.options.output_folder() or w.model_path.parent, artifacts)

    def _on_benchmark_finished(self, result: dict) -> None:
        w = self.window
        if self._restoring or w.model_path is None:
            return
        timed = {str(r.get("artifact")) for r in result.get("results") or [] if r.get("artifact")}
        outcomes = [o for o in w.session.outcomes if o.artifact is not None and str(o.artifact) in timed]
        artifacts = [{"target": o.target, "precision": o.precision, "artifact": o.artifact,
                      "verdict": o.verdict.to_json()} for o in outcomes]
        folder = outcomes[0].artifact.parent if outcomes else (w.options.output_folder() or w.model_path.parent)
        self._record("benchmark", folder, artifacts, result)

    # -- the menu
    def fill_menu(self) -> list:
        """The History menu: the model's runs, newest first; choosing one reopens it. Its actions."""
        self.menu.clear()
        if self.window.model_path is None or not self.runs:
            empty = self.menu.addAction("No runs of this model yet" if self.window.model_path else "Open a model "
                                        "to see its runs")
            empty.setEnabled(False)
            return []
        actions = []
        for run in reversed(self.runs):
            head, lines = run_summary(run)
            text = visible_text(head if len(head) <= MENU_TEXT else head[:MENU_TEXT - 1] + "…")
            action = self.menu.addAction(text.replace("&", "&&"), lambda run=run: self.reopen(run))
            action.setToolTip(tooltip(lines))
            action.setStatusTip(visible_text(lines[0]))
            actions.append(action)
        return actions


def _out_dir(request) -> Path:
    return Path(request.out_dir) if request.out_dir else Path(request.source.path).parent


def _look_on_disk(model: Path, folders: list[Path], history_dir: Path, wanted: list[Path] | None,
                  run: dict | None) -> dict:
    """In a worker thread: the artifacts made from ``model`` in ``folders`` (or, reopening ``run``, its
    artifacts ``wanted``) read back as table rows, notes on what was left out, the model's runs and the
    benchmark to show (the newest saved one of these artifacts, or the run's own)."""
    from app.artifacts.history import Found, artifacts_for, read_found, read_runs
    from app.artifacts.json_file import SideFileError
    from app.artifacts.manifest import manifest_path_of
    from app.bench.saved import check_saved_result, latest_benchmark_for, plain_result
    from app.errors import StudioError

    runs, notes = read_runs(history_dir, model)
    found = Found(notes=list(notes))
    if wanted is None:
        places = list(dict.fromkeys([*folders, *(_resolved(r["folder"]) for r in reversed(runs) if r.get("folder"))]))
        for folder in [f for f in places if f.is_dir()][:MAX_FOLDERS]:
            found.merge(artifacts_for(model, folder))
    else:
        made = run_time(run)
        for path in wanted:
            item, note = read_found(manifest_path_of(path), model)
            if item is None:
                found.notes.append(note or f"left out {path.name}: its manifest no longer names {model.name}")
                continue
            if made is not None and item.written > made + 2:
                found.notes.append(f"{path.name} was replaced since this run (on {item.when}): its row shows the "
                                   "file on disk now")
            found.artifacts.append(item)
    rows, seen = [], set()
    if found.artifacts:
        from app.pipeline import from_manifest   # numpy and the converters' registry: only when needed
    for item in sorted(found.artifacts, key=lambda a: a.written, reverse=True):
        try:
            request, result = from_manifest(item.manifest, item.artifact)
        except (StudioError, ValueError, TypeError, KeyError) as e:
            found.notes.append(f"skipped {item.artifact.name}: its manifest cannot be read back ({e})")
            continue
        if (request.target, str(request.precision)) in seen:   # one row per target and precision: the newest
            continue
        seen.add((request.target, str(request.precision)))
        rows.append((request, result, item))

    benchmark = None
    if run is not None and run["kind"] == "benchmark" and run.get("benchmark"):
        try:
            check_saved_result(run["benchmark"], "the run history")
            benchmark = {"result": plain_result(run["benchmark"]), "from": f"the run of {run['time']}"}
        except SideFileError as e:
            found.notes.append(f"the benchmark of this run cannot be shown: {e}")
    elif run is None and rows:
        artifacts = [r[2].artifact for r in rows]
        saved = latest_benchmark_for(artifacts, list(dict.fromkeys(a.parent for a in artifacts)))
        candidates = []
        if saved is not None:
            result, path, saved_notes = saved
            found.notes += saved_notes
            candidates.append((path.stat().st_mtime if path.exists() else 0.0, result, str(path)))
        timed = {str(a) for a in artifacts}
        for r in runs:
            bench = r.get("benchmark") if r["kind"] == "benchmark" else None
            if bench and any(a.get("artifact") in timed for a in r["artifacts"]):
                candidates.append((run_time(r) or 0.0, bench, f"the run of {r['time']}"))
        for _when, result, where in sorted(candidates, key=lambda c: c[0], reverse=True):
            try:
                check_saved_result(result, where)
            except SideFileError:
                continue
            plain = plain_result(result)
            if plain["results"]:
                benchmark = {"result": plain, "from": where}
                break
    return {"model": model, "rows": rows, "notes": found.notes, "runs": runs, "benchmark": benchmark}
