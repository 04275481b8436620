"""Mutation testing of ``cds_service/summary/`` and ``cds_service/staging/`` with mutmut (``make mutation``).

What it does:
1. copies a snapshot of the service package, ``cards/``, ``fhir_fixtures/``, ``pyproject.toml`` (its
   ``[tool.mutmut]`` table) and only the unit tests of these two packages (``tests/unit/test_summary_*.py``,
   ``test_validation_{primitives,differential}.py``, ``test_staging_ajcc8.py`` and the ``fhir_builders``
   they use) into ``var/mutation/`` (made afresh each run, so a run never sees half of somebody's edit
   and leaves nothing in the working tree);
2. runs ``mutmut run`` there over the modules asked for (default: all of both packages); mutmut
   runs, for each mutant, the tests that call the mutated function and stops at the first failure;
3. prints the score per module and per package: killed / mutants tested, in %. A mutant that times
   out counts as killed; one that no test reaches ("no tests") counts as surviving. The survivors
   are listed in ``var/mutation/survivors.txt`` with their diffs; ``cd var/mutation && mutmut show
   <name>`` shows one.

Run (from the repository root)::

    make mutation                                    # everything: about an hour on 2 cores
    make mutation MODULES="staging summary/extent.py summary/lines.py"
    make mutation MODULES=summary SAMPLE=10          # one mutant in ten, the same ones every run
    .venv/bin/python scripts/mutation.py summary/person.py --fail-under 90

``--sample N`` tests about one mutant in N: those whose name (``cds_service.summary.tnm.x_read_tnm__mutmut_3``)
has a SHA-256 divisible by N. The choice depends only on the name, so two runs over the same code test the
same mutants and a score can be compared before and after a change; the report says the score is sampled.

Modules are paths under ``cds_service/``: a package (``summary``) or one file (``summary/tnm.py``).
The exit status is 1 when ``--fail-under`` is given and a package scores below it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# summary/validate.py's own tests: its quick checks against pydantic's patterns, and both validators on
# every fixture chart (hence ``fhir_fixtures/`` in the snapshot), the mCODE examples and a malformed corpus.
VALIDATION_TESTS = ("test_validation_primitives.py", "test_validation_differential.py")
PACKAGES = ("summary", "staging")
TESTS = ("test_summary_*.py", "test_staging_ajcc8.py", *VALIDATION_TESTS, "fhir_builders.py")
KILLED = frozenset({1, 3, 24, -24, 36, 152, 255})  # mutmut's exit codes for a killed mutant and for a timeout
NOT_REACHED = {5, 33}  # mutmut "no tests": no test calls the mutated function
LISTING = b"Mutant results"  # mutmut's closing list of every mutant it ran
ONLY_MUTATE = re.compile(r"^only_mutate = .*$", re.MULTILINE)


@dataclass(frozen=True)
class Score:
    killed: int
    survived: int
    no_tests: int
    unchecked: int

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.no_tests + self.unchecked

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.killed + other.killed,
            self.survived + other.survived,
            self.no_tests + other.no_tests,
            self.unchecked + other.unchecked,
        )


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)


def snapshot(workdir: Path) -> None:
    """A fresh copy of what the selected tests need, with only those tests."""
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "tests" / "unit").mkdir(parents=True)
    _copy_tree(ROOT / "cds_service", workdir / "cds_service")
    _copy_tree(ROOT / "cards", workdir / "cards")
    _copy_tree(ROOT / "fhir_fixtures", workdir / "fhir_fixtures")
    _copy_tree(ROOT / "tests" / "data", workdir / "tests" / "data")
    shutil.copy(ROOT / "pyproject.toml", workdir)
    shutil.copy(ROOT / "tests" / "conftest.py", workdir / "tests")
    for pattern in TESTS:
        for test in sorted((ROOT / "tests" / "unit").glob(pattern)):
            shutil.copy(test, workdir / "tests" / "unit")
    (workdir / "tests" / "unit" / "conftest.py").write_text(STATS_CONFTEST)


STATS_CONFTEST = '''"""Written by scripts/mutation.py into the snapshot only (not part of the test suite)."""

import os

import pytest

from cds_service.summary import validate


@pytest.fixture(autouse=True)
def _validator_tables_built_by_each_test() -> None:
    """While mutmut records which tests call which function (``MUTANT_UNDER_TEST=stats``), the
    validator's tables (built once, then cached) are built afresh for every test, so that a mutant
    of the code building them is run against every test that validates a resource, not only the
    first one: a mutant there only sends resources down the slow path, which the differential test
    (every fixture resource takes the fast path) notices."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        for built in (validate._shape, validate._import, validate._primitive):
            built.cache_clear()
'''


def modules_of(selection: list[str]) -> list[Path]:
    """Source files (relative to the repository) for ``summary``, ``staging`` or ``summary/tnm.py``."""
    found: list[Path] = []
    for item in selection:
        path = ROOT / "cds_service" / item
        if item.split("/")[0] not in PACKAGES or not path.exists():
            raise SystemExit(f"mutation: {item!r} is not a module or package under cds_service/{{summary,staging}}")
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        found += [f.relative_to(ROOT) for f in files if f.relative_to(ROOT) not in found]
    return found


def mutant_glob(module: Path) -> str:
    """mutmut's mutant names for one file: ``cds_service.summary.tnm.x_read_tnm__mutmut_3``; a package's
    ``__init__.py`` drops its name (``cds_service.summary.x_summarise__mutmut_1``)."""
    dotted = ".".join(module.with_suffix("").parts)
    return (dotted.removesuffix(".__init__") + ".x*") if module.name == "__init__.py" else dotted + ".*"


MUTANT_NAMES = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name
for path in json.load(sys.stdin):
    for name in mutate_file_contents(path, Path(path).read_text()).mutant_names:
        print(get_mutant_name(Path(path), name))
"""


def in_sample(name: str, every: int) -> bool:
    """One mutant in ``every``, chosen by a stable hash of its name (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % every == 0


def sampled_mutants(workdir: Path, modules: list[Path], every: int) -> list[str]:
    """The names of the modules' mutants that fall in the sample, from mutmut's own mutation of each file."""
    listing = subprocess.run(
        [sys.executable, "-c", MUTANT_NAMES],
        cwd=workdir,
        input=json.dumps([str(m) for m in modules]),
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        raise SystemExit(f"mutation: cannot list mutmut's mutants for --sample:\n{listing.stderr}")
    names = [name for name in listing.stdout.split() if in_sample(name, every)]
    if not names:
        raise SystemExit(f"mutation: no mutant falls in a 1-in-{every} sample of {[str(m) for m in modules]}")
    return names


def only_mutate(workdir: Path, modules: list[Path]) -> None:
    """Mutate only the modules asked for: generating the mutants of every module takes minutes."""
    config = workdir / "pyproject.toml"
    text, count = ONLY_MUTATE.subn(f"only_mutate = {json.dumps([str(m) for m in modules])}", config.read_text())
    if count != 1:
        raise SystemExit("mutation: pyproject.toml has no [tool.mutmut] only_mutate line")
    config.write_text(text)


def run_mutmut(workdir: Path, targets: list[str], jobs: int) -> int:
    """``mutmut run`` over the given mutants (names or globs); its closing list of every mutant is left out."""
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", str(jobs), *targets]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
        assert run.stdout is not None
        done, tail = False, b""
        while chunk := run.stdout.read1(4096):
            if done:
                continue
            window = tail + chunk
            if LISTING in window:
                done, chunk = True, chunk[: max(0, window.index(LISTING) - len(tail))]
            tail = window[-len(LISTING) :]
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return run.wait()


def scores(
    workdir: Path, modules: list[Path], sample: frozenset[str] | None = None
) -> tuple[dict[Path, Score], list[tuple[str, Path]]]:
    """Score per module from mutmut's ``.meta`` files (only the sampled mutants, when sampling), and the
    names of the surviving mutants."""
    result: dict[Path, Score] = {}
    survivors: list[tuple[str, Path]] = []
    for module in modules:
        meta = workdir / "mutants" / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            if sample is not None and name not in sample:
                continue
            if code in KILLED:
                counts["killed"] += 1
            elif code is None:
                counts["unchecked"] += 1
            else:
                counts["no_tests" if code in NOT_REACHED else "survived"] += 1
                survivors.append((name, module))
        result[module] = Score(counts["killed"], counts["survived"], counts["no_tests"], counts["unchecked"])
    return result, sorted(survivors)


def report(by_module: dict[Path, Score], minutes: float, every: int = 1) -> dict[str, Score]:
    if every > 1:
        print(f"\nsampled: about one mutant in {every} (--sample {every}); the scores are those of the sample")
    header = f"{'module':<40} {'killed':>7} {'survived':>9} {'no tests':>9} {'total':>6} {'score':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    by_package: dict[str, Score] = {}
    for module, score in by_module.items():
        package = module.parts[1]
        by_package[package] = by_package.get(package, Score(0, 0, 0, 0)) + score
        print(_row(str(module.relative_to("cds_service")), score))
    print("-" * len(header))
    for package, score in by_package.items():
        print(_row(f"{package}/ (package)", score))
    print(_row("all", sum(by_package.values(), Score(0, 0, 0, 0))))
    unchecked = sum(s.unchecked for s in by_module.values())
    if unchecked:
        print(f"{unchecked} mutants were not checked (run interrupted?); they count as surviving")
    print(f"\nmutation run took {minutes:.1f} minutes")
    return by_package


def _row(name: str, s: Score) -> str:
    score = f"{s.percent:>6.1f}%" if s.total else f"{'-':>7}"
    return f"{name:<40} {s.killed:>7} {s.survived:>9} {s.no_tests:>9} {s.total:>6} {score}"


DIFFS = """
import json, sys
from pathlib import Path
from mutmut.mutation.diff_apply import get_diff_for_mutant
for name, path in json.load(sys.stdin):
    print(f"# {name}: survived")
    print(get_diff_for_mutant(name, path=Path(path)))
"""


def write_survivors(workdir: Path, survivors: list[tuple[str, Path]]) -> None:
    """The survivors with their diffs, in one process (``mutmut show`` per mutant takes a second each)."""
    listing = json.dumps([(name, str(path)) for name, path in survivors])
    with (workdir / "survivors.txt").open("w") as out:
        shown = subprocess.run([sys.executable, "-c", DIFFS], cwd=workdir, input=listing, stdout=out, text=True)
    if shown.returncode != 0:  # mutmut's internals moved: one ``mutmut show`` per mutant instead
        mutmut = Path(sys.executable).with_name("mutmut")
        with (workdir / "survivors.txt").open("w") as out:
            for name, _ in survivors:
                out.write(
                    subprocess.run([str(mutmut), "show", name], cwd=workdir, capture_output=True, text=True).stdout
                )
    if survivors:
        print(f"{len(survivors)} surviving mutants, with diffs, in {workdir}/survivors.txt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=list(PACKAGES), help="e.g. staging summary/extent.py")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel mutant runs")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "mutation")
    parser.add_argument(
        "--sample", type=int, default=1, metavar="N", help="test about one mutant in N, the same ones every run"
    )
    parser.add_argument("--fail-under", type=float, default=None, help="exit 1 if a package scores below this %%")
    args = parser.parse_args(argv)
    if args.sample < 1:
        parser.error("--sample must be 1 or more")
    modules = modules_of(args.modules)
    workdir = args.workdir.resolve()
    snapshot(workdir)
    only_mutate(workdir, modules)
    sample = frozenset(sampled_mutants(workdir, modules, args.sample)) if args.sample > 1 else None
    targets = sorted(sample) if sample is not None else [mutant_glob(m) for m in modules]
    started = time.monotonic()
    status = run_mutmut(workdir, targets, args.jobs)
    if status != 0:
        print(f"mutation: mutmut exited with status {status}", file=sys.stderr)
        return status
    by_module, survivors = scores(workdir, modules, sample)
    by_package = report(by_module, (time.monotonic() - started) / 60, args.sample)
    write_survivors(workdir, survivors)
    if args.fail_under is not None and any(s.percent < args.fail_under for s in by_package.values()):
        print(f"mutation: score below {args.fail_under:g} %", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
