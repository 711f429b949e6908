"""Many runs from one ``python -m train`` call: manifests × grid points, in turn or as cluster jobs.

``python -m train DIR_OR_MANIFEST [MORE ...] --out RUNS/ [--grid lr=…,… momentum=…,…]`` expands into one
run per manifest and grid point, each ``RUNS/<manifest name>[__<key><value>…]/``, and runs each as its
own ``python -m train MANIFEST --out RUN …`` with the shared options: one after the other in
subprocesses, or as jobs through submitit (``--submit slurm`` for a SLURM cluster, ``--submit local``
for submitit's local executor, real subprocesses). A run whose ``run.json`` says ``finished`` is
skipped; one with a checkpoint but unfinished is resumed (``--resume``).

Each run writes ``RUN/run.json`` (:func:`write_run_record`): what it trained on (the manifest's study
parameters), its real schedule and initial weights, and whether it finished — what ``curate results``
collects beside ``RUN/eval/*.json``.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import CurateError

RUN_RECORD = "run.json"
RUN_SCHEMA, RUN_SCHEMA_VERSION = "synmix.run", 1
#: Log of a run started by the sequential runner (the run's own Detectron2 log is RUN/log.txt).
RUN_LOG = "train.log"
#: submitit's job files and logs, inside each run folder.
SUBMITIT_DIR = "submitit"

#: ``--grid KEY=V1,V2`` keys: the option each sets and the type of its values.
GRID_KEYS = {"lr": ("--lr", float), "momentum": ("--momentum", float), "epochs": ("--epochs", float),
             "iterations": ("--iterations", int), "batch": ("--batch", int), "seed": ("--seed", int)}
#: Minutes a submitted job may run unless --timeout says otherwise (3 days).
DEFAULT_TIMEOUT_MIN = 3 * 24 * 60
#: Options of the runner itself, not passed on to each run.
RUNNER_DESTS = {"manifests", "out", "grid", "submit", "wait", "rerun", "partition", "gpus_per_node", "nodes",
                "timeout", "account", "cpus_per_task", "mem_gb", "qos", "constraint", "slurm", "help"}
#: Set inside each submitted job from the cluster's allocation (--gpus-per-node, --nodes).
DISTRIBUTED_DESTS = {"num_gpus", "num_machines", "machine_rank", "dist_url"}


@dataclass
class Run:
    name: str
    manifest: Path
    out: Path
    #: the run's own options (grid point), on top of the shared ones
    point: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    resume: bool = False

    @property
    def argv(self) -> list[str]:
        """``python -m train`` arguments of this run (``--opts`` last: it takes every value after it)."""
        shared, opts = list(self.shared), []
        if "--opts" in shared:
            at = shared.index("--opts")
            shared, opts = shared[:at], shared[at:]
        return [str(self.manifest), "--out", str(self.out), *shared, *self.point,
                *(["--resume"] if self.resume and "--resume" not in shared else []), *opts]


# ---------------------------------------------------------------------------------------------
# what to run


def is_many(args) -> bool:
    """Several runs (a folder of manifests, several manifests, a grid): ``--out`` is then their parent folder."""
    return len(args.manifests) > 1 or any(Path(m).is_dir() for m in args.manifests) or bool(args.grid)


def manifests_of(targets: list[Path]) -> list[Path]:
    """Manifest files of the targets: each a manifest, or a folder whose ``*.json`` manifests are taken (sorted)."""
    found = []
    for target in map(Path, targets):
        if target.is_dir():
            inside = sorted(p for p in target.glob("*.json") if not p.name.endswith(".coco.json"))
            if not inside:
                raise CurateError(target, "no manifest (*.json) in this folder")
            found += inside
        elif target.is_file():
            found.append(target)
        else:
            raise CurateError(target, "manifest or folder of manifests not found")
    return found


def parse_grid(items: list[str], args) -> list[list[tuple[str, str]]]:
    """``lr=0.0005,0.005 momentum=0,0.9`` → every point, as [(key, value text)], in the order given."""
    axes = []
    for item in items or []:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or key not in GRID_KEYS:
            raise CurateError(None, f"--grid {item}: expected KEY=V1,V2,… with KEY one of {', '.join(GRID_KEYS)}")
        if key in (k for k, _ in axes):
            raise CurateError(None, f"--grid names {key} twice")
        option, cast = GRID_KEYS[key]
        dest = option[2:]
        if getattr(args, dest) not in (None, 0 if key == "seed" else None):
            raise CurateError(None, f"--grid {key} and {option} both set {key}: give one")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not texts or len(set(texts)) != len(texts):
            raise CurateError(None, f"--grid {item}: give distinct values, e.g. {key}=0.001,0.01")
        for text in texts:
            try:
                cast(text)
            except ValueError:
                raise CurateError(None, f"--grid {item}: '{text}' is not a valid {key}") from None
        axes.append((key, texts))
    keys = [k for k, _ in axes]
    if "epochs" in keys and "iterations" in keys:
        raise CurateError(None, "--grid: epochs and iterations exclude each other")
    if ("epochs" in keys and args.iterations is not None) or ("iterations" in keys and args.epochs is not None):
        raise CurateError(None, "--grid epochs/iterations and --epochs/--iterations exclude each other")
    return [list(zip(keys, combo)) for combo in itertools.product(*(texts for _, texts in axes))]


def shared_options(args, parser: argparse.ArgumentParser, submit: bool) -> list[str]:
    """The command-line options every run gets: all the runner's own ones and the defaults left out."""
    skip = RUNNER_DESTS | (DISTRIBUTED_DESTS if submit else set())
    argv, opts = [], []
    for action in parser._actions:
        if not action.option_strings or action.dest in skip:
            continue
        value = getattr(args, action.dest, None)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(value, list):
            (opts if action.dest == "opts" else argv).extend([flag, *map(str, value)])
        else:
            argv += [flag, str(value)]
    return argv + opts


def plan_runs(args, parser: argparse.ArgumentParser) -> list[Run]:
    """One :class:`Run` per manifest × grid point, each in its own folder; finished runs are marked to skip."""
    from curate.manifest import load_manifest

    manifests = manifests_of(args.manifests)
    for manifest in manifests:
        load_manifest(manifest, verify=False)  # a wrong file fails here, before any run starts
    if args.init is not None and not Path(args.init).exists():
        raise CurateError(args.init, "--init: no such run folder or weights file")
    points = parse_grid(args.grid, args) or [[]]
    # a job may start in another folder (a cluster node): local paths in the options are made absolute
    for dest in ("init", "weights"):
        value = getattr(args, dest)
        if value is not None and "://" not in value and Path(value).exists():
            setattr(args, dest, str(Path(value).absolute()))
    shared = shared_options(args, parser, submit=bool(args.submit))
    many = is_many(args)
    parent = Path(args.out or "runs")
    runs, seen = [], {}
    for manifest, point in itertools.product(manifests, points):
        name = manifest.stem + ("__" + "_".join(f"{k}{v}" for k, v in point) if point else "")
        out = parent / name if many else Path(args.out or Path("runs") / manifest.stem)
        if out in seen:
            raise CurateError(out, f"{seen[out]} and {manifest} would train into the same run folder "
                                   "(manifests of the same name): give them separate --out folders")
        seen[out] = manifest
        option_of = {k: GRID_KEYS[k][0] for k, _ in point}
        runs.append(Run(name, manifest.absolute(), out.absolute(), [x for k, v in point for x in (option_of[k], v)],
                        shared))
    return runs


def run_status(out: Path) -> str:
    """``finished``, ``started`` (a record or a checkpoint, not finished: resume it) or ``new``."""
    record = read_run_record(out)
    if record is not None and record.get("status") == "finished":
        return "finished"
    if record is not None or (out / "last_checkpoint").is_file():
        return "started"
    return "new"


# ---------------------------------------------------------------------------------------------
# running them


@dataclass
class Outcome:
    run: Run
    status: str  # finished, skipped, failed, submitted
    detail: str = ""
    log: Path | None = None
    job_id: str | None = None


def _to_do(runs: list[Run], rerun: bool) -> tuple[list[Run], list[Outcome]]:
    todo, skipped = [], []
    for run in runs:
        status = "new" if rerun else run_status(run.out)
        if status == "finished":
            skipped.append(Outcome(run, "skipped", f"finished earlier ({run.out / RUN_RECORD}; --rerun trains it again)"))
            continue
        run.resume = status == "started" and (run.out / "last_checkpoint").is_file()
        todo.append(run)
    return todo, skipped


def run_in_turn(runs: list[Run], rerun: bool = False) -> list[Outcome]:
    """Each run as ``python -m train …`` in a subprocess, one after the other; its output is shown and
    kept in ``RUN/train.log``. A failed run does not stop the others."""
    todo, outcomes = _to_do(runs, rerun)
    for outcome in outcomes:
        print(f"{outcome.run.name}: {outcome.detail}", flush=True)
    for i, run in enumerate(todo, 1):
        command = [sys.executable, "-m", "train", *run.argv]
        resumed = " (resumed)" if run.resume else ""
        print(f"\n[{i}/{len(todo)}] {run.name}{resumed}: python -m train {shlex.join(run.argv)}", flush=True)
        run.out.mkdir(parents=True, exist_ok=True)
        log, last_error = run.out / RUN_LOG, ""
        with open(log, "w") as f, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                   text=True, bufsize=1) as proc:
            for line in proc.stdout:
                sys.stdout.write(line)
                f.write(line)
                if line.startswith("error: "):
                    last_error = line.strip()
            code = proc.wait()
        sys.stdout.flush()
        if code == 130:
            raise KeyboardInterrupt
        if code == 0:
            outcomes.append(Outcome(run, "finished", log=log))
        else:
            outcomes.append(Outcome(run, "failed", last_error or f"exit status {code}", log=log))
    return outcomes


def submit_runs(runs: list[Run], args, wait: bool) -> list[Outcome]:
    """Each run as one submitit job (``--submit slurm``: a SLURM job of ``--nodes`` × ``--gpus-per-node``;
    ``--submit local``: submitit's local executor). With ``wait``, blocks until every job ended."""
    try:
        import submitit
    except ImportError:
        raise CurateError(None, "--submit needs submitit: pip install 'synmix[train]' (or pip install submitit)") from None
    todo, outcomes = _to_do(runs, args.rerun)
    for outcome in outcomes:
        print(f"{outcome.run.name}: {outcome.detail}", flush=True)
    jobs = []
    for run in todo:
        parameters = executor_parameters(args, run.name)
        try:
            executor = submitit.AutoExecutor(folder=run.out / SUBMITIT_DIR, cluster=args.submit)
            executor.update_parameters(**parameters)
            job = executor.submit(TrainJob(run.argv, args.gpus_per_node or 0))
        except FileNotFoundError as err:  # no sbatch: not on a SLURM login node
            raise CurateError(err.filename or "sbatch", "cannot submit: SLURM's sbatch is not on PATH "
                                                         "(--submit slurm runs on a cluster's login node)") from None
        except Exception as err:  # submitit's own failure (no srun here, sbatch refused the job, …): its first line
            raise CurateError(run.out / SUBMITIT_DIR, f"cannot submit ({args.submit}): {_first_line(err)}") from None
        print(f"{run.name}: submitted job {job.job_id} ({args.submit}); logs {job.paths.stdout.parent}", flush=True)
        jobs.append((run, job))
    if not wait:
        outcomes += [Outcome(run, "submitted", job_id=job.job_id, log=job.paths.stderr) for run, job in jobs]
        return outcomes
    for run, job in jobs:
        try:
            job.result()
            outcomes.append(Outcome(run, "finished", job_id=job.job_id, log=job.paths.stdout))
        except Exception as err:  # the job failed: its log says why
            outcomes.append(Outcome(run, "failed", _job_error(job, err), log=job.paths.stderr, job_id=job.job_id))
    return outcomes


def executor_parameters(args, name: str) -> dict:
    """submitit parameters of one run's job: shared ones, and the SLURM-only ones prefixed ``slurm_``."""
    params = {"name": f"synmix-{name}", "timeout_min": args.timeout or DEFAULT_TIMEOUT_MIN, "tasks_per_node": 1,
              "gpus_per_node": args.gpus_per_node or 0}
    if args.cpus_per_task:
        params["cpus_per_task"] = args.cpus_per_task
    if args.submit == "slurm":
        params["nodes"] = args.nodes
        if args.mem_gb:
            params["mem_gb"] = args.mem_gb
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(args, key):
                params[f"slurm_{key}"] = getattr(args, key)
        extra = {}
        for item in args.slurm or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CurateError(None, f"--slurm {item}: expected KEY=VALUE (an sbatch option without its --)")
            extra[key.strip()] = value.strip()
        if extra:
            params["slurm_additional_parameters"] = extra
    return params


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _job_error(job, err: BaseException) -> str:
    """The job's own ``error:`` line when its log has one, else the first line of submitit's error."""
    try:
        lines = [line.strip() for line in job.paths.stderr.read_text(errors="replace").splitlines()]
        errors = [line for line in lines if line.startswith("error: ")]
        if errors:
            return errors[-1]
    except OSError:
        pass
    return _first_line(err)


class TrainJob:
    """What a submitted job runs: ``python -m train`` in the job's process; with several GPUs or nodes,
    Detectron2's ``launch`` inside it (one process per GPU, the job's first node as rendezvous)."""

    def __init__(self, argv: list[str], gpus_per_node: int = 0):
        self.argv = list(argv)
        self.gpus_per_node = gpus_per_node

    def distributed_argv(self) -> list[str]:
        import submitit

        env = submitit.JobEnvironment()
        gpus = max(self.gpus_per_node, 1)
        if env.num_nodes == 1 and gpus == 1:
            return []
        extra = ["--num-gpus", str(gpus)]
        if env.num_nodes > 1:
            port = 29500 + zlib.crc32(str(env.job_id).encode()) % 10000
            extra += ["--num-machines", str(env.num_nodes), "--machine-rank", str(env.node),
                      "--dist-url", f"tcp://{env.hostnames[0]}:{port}"]
        return extra

    def __call__(self) -> int:
        from train.__main__ import main

        argv = self.argv
        if "--opts" in argv:
            at = argv.index("--opts")
            argv = argv[:at] + self.distributed_argv() + argv[at:]
        else:
            argv = argv + self.distributed_argv()
        code = main(argv)
        if code != 0:
            raise RuntimeError(f"python -m train exited with status {code} (its error line is above in this log)")
        return code

    def checkpoint(self, *args, **kwargs):
        """On a SLURM timeout or preemption submitit requeues the job: it continues with --resume."""
        import submitit

        argv = self.argv if "--resume" in self.argv else [*self.argv[:3], "--resume", *self.argv[3:]]
        return submitit.helpers.DelayedSubmission(TrainJob(argv, self.gpus_per_node))


def report(outcomes: list[Outcome]) -> int:
    """One line per run; exit status 2 (one ``error:`` line naming the first failed run's log) if any failed."""
    print("\nruns:", flush=True)
    for o in outcomes:
        where = f" (job {o.job_id})" if o.job_id else ""
        log = f"; log {o.log}" if o.log else ""
        detail = f": {o.detail}" if o.detail and o.status != "skipped" else ""
        print(f"  {o.status:<9} {o.run.out}{where}{detail}{log}", flush=True)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more failed run(s), listed above)" if len(failed) > 1 else ""
        print(f"error: {first.log}: run {first.run.name} failed: {first.detail}{more}", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------------------------
# the run record


def read_run_record(out: Path) -> dict | None:
    path = Path(out) / RUN_RECORD
    if not path.is_file():
        return None
    from curate.fileio import read_versioned_json

    return read_versioned_json(path, RUN_SCHEMA, RUN_SCHEMA_VERSION, "run record", "run it again with python -m train")


def write_run_record(job, manifest, status: str, init: dict, extra: dict | None = None) -> Path:
    """``RUN/run.json``: the run's manifest (its study parameters), the schedule it really ran, its
    initial weights and its status (``running``, then ``finished``)."""
    from curate import __version__
    from curate.coco import sha256_file
    from curate.fileio import write_json_atomic
    from curate.manifest.build import created_at_now
    from curate.results import manifest_parameters
    from curate.schedule import epochs_for_iterations

    s = job.schedule
    out = Path(job.output_dir)
    previous = read_run_record(out) or {}
    record = {
        "schema": RUN_SCHEMA,
        "schema_version": RUN_SCHEMA_VERSION,
        "tool_version": __version__,
        "name": out.name,
        "status": status,
        "started_at": previous.get("started_at") if status != "running" else created_at_now(),
        "finished_at": created_at_now() if status == "finished" else None,
        "manifest": {"path": str(manifest.path), "sha256": sha256_file(manifest.path),
                     **manifest_parameters(manifest.data, manifest.path)},
        "schedule": {
            "iterations": s.max_iter, "steps": list(s.steps), "dropped_steps": list(s.dropped_steps),
            "batch": s.batch, "base_lr": s.base_lr, "momentum": s.momentum,
            "effective_lr": float(f"{s.effective_lr:.12g}"),
            "epochs": round(epochs_for_iterations(s.max_iter, job.train_set.frames, s.batch), 4),
            "frames": job.train_set.frames, "origin": s.origin,
        },
        "init": init,
        "preset": job.preset,
        "device": job.device,
        "eval_only": job.eval_only,
        "seed": job.seed,
        "opts": list(job.opts),
        "argv": list(job.argv),
        "eval": sorted(p.name for p in (out / "eval").glob("*.json")) if status == "finished" else [],
        **(extra or {}),
    }
    path = out / RUN_RECORD
    write_json_atomic(path, record, indent=1)
    return path
