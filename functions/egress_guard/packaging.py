"""Build one deployable, reproducible bundle per function: ``python -m egress_guard.packaging dist/functions``.

For every ``functions/<name>/main.py`` this writes ``<out>/<name>/`` (the function's own files
plus a copy of the shared ``egress_guard`` package) and ``<out>/<name>.zip``, so that

    gcloud functions deploy NAME --gen2 --runtime=python312 --source=<out>/<name>

deploys the directory as it is, and Terraform uploads the zip. Builds are reproducible: the same
sources give the same bytes (sorted walk, fixed modes and timestamps), so the zip's sha256 names
a bundle and an unchanged function is never redeployed. ``<out>/SHA256SUMS`` lists the zips.

Public interface::

    discover_functions(functions_dir) -> list[str]
    build_bundle(name, out_dir, functions_dir=FUNCTIONS_DIR) -> Bundle
    build_all(out_dir, functions_dir=FUNCTIONS_DIR, only=None, echo=print) -> list[Bundle]
    main(argv=None) -> int
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SHARED_PACKAGE = "egress_guard"
# functions/ (this file is functions/egress_guard/packaging.py).
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent

# 1980-01-01T00:00:00Z: the earliest time a zip entry can hold, and a constant, so that neither
# checkout times nor the build machine's clock reach the bundle.
FIXED_EPOCH = 315532800
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_DIR_MODE = 0o755

# Never shipped: caches, compiled files, tests, editor and VCS leftovers.
_SKIP_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_SKIP_FILE_PATTERNS = (re.compile(r".*\.py[cod]$"), re.compile(r"^test_.*\.py$"), re.compile(r".*_test\.py$"),
                       re.compile(r"^conftest\.py$"), re.compile(r"^\..*"), re.compile(r".*~$"))
_REQUIRED_FILES = ("main.py", "requirements.txt")
# name==version or name===version, optional extras and environment marker; nothing looser.
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*===?\s*[^\s;=<>!~,]+\s*(;.*)?$")


class PackagingError(Exception):
    """A function directory cannot be bundled as it is; the message says what to fix."""


@dataclass(frozen=True)
class Bundle:
    name: str
    directory: Path
    zip_path: Path
    sha256: str
    files: tuple[str, ...]  # paths inside the bundle, sorted, "/"-separated


def discover_functions(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """Every ``functions/<name>/`` that has a ``main.py``, sorted; the shared package is not one."""
    return sorted(
        child.name
        for child in functions_dir.iterdir()
        if child.is_dir() and child.name != SHARED_PACKAGE and not child.name.startswith((".", "_"))
        and (child / "main.py").is_file()
    )


def check_requirements(path: Path) -> None:
    """Every requirement is pinned (``==``): a bundle must install the versions it was tested with."""
    problems = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line and not _PINNED.match(line):
            problems.append(f"{path}:{number}: {raw.strip()!r} is not pinned (use name==version)")
    if problems:
        raise PackagingError("\n".join(problems))


def _shipped(relative: Path) -> bool:
    if any(part in _SKIP_DIRS for part in relative.parts[:-1]):
        return False
    return not any(pattern.match(relative.name) for pattern in _SKIP_FILE_PATTERNS)


def _source_files(root: Path) -> list[Path]:
    """Files under ``root`` that ship, as paths relative to it, in a stable order."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            relative = (Path(directory) / name).relative_to(root)
            if _shipped(relative) and (Path(directory) / name).is_file():
                found.append(relative)
    return sorted(found, key=lambda p: p.as_posix())


def _bundle_sources(name: str, functions_dir: Path) -> dict[str, Path]:
    """Bundle path -> source file: the function's own files, then the shared package."""
    function_dir = functions_dir / name
    missing = [f for f in _REQUIRED_FILES if not (function_dir / f).is_file()]
    if missing:
        raise PackagingError(f"{function_dir} has no {', '.join(missing)}: a function directory deploys on its own")
    check_requirements(function_dir / "requirements.txt")
    shared_dir = functions_dir / SHARED_PACKAGE
    if not (shared_dir / "__init__.py").is_file():
        raise PackagingError(f"{shared_dir} is not a Python package (no __init__.py)")

    sources: dict[str, Path] = {}
    for relative in _source_files(function_dir):
        sources[relative.as_posix()] = function_dir / relative
    for relative in _source_files(shared_dir):
        target = f"{SHARED_PACKAGE}/{relative.as_posix()}"
        if target in sources:
            raise PackagingError(f"{function_dir / target} would shadow the shared package's {target}")
        sources[target] = shared_dir / relative
    return dict(sorted(sources.items()))


def _write_directory(sources: dict[str, Path], directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for target, source in sources.items():
        destination = directory / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
    # Fix modes and times bottom-up, so creating a child never touches a parent's fixed mtime.
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.chmod(_DIR_MODE if path.is_dir() else _FILE_MODE)
        os.utime(path, (FIXED_EPOCH, FIXED_EPOCH))
    directory.chmod(_DIR_MODE)
    os.utime(directory, (FIXED_EPOCH, FIXED_EPOCH))


def _write_zip(directory: Path, files: Iterable[str], zip_path: Path) -> str:
    temporary = zip_path.with_name(zip_path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever builds it, so the mode bits below are read
            info.external_attr = (0o100000 | _FILE_MODE) << 16
            archive.writestr(info, (directory / name).read_bytes(), compresslevel=9)
    os.replace(temporary, zip_path)
    os.utime(zip_path, (FIXED_EPOCH, FIXED_EPOCH))
    return hashlib.sha256(zip_path.read_bytes()).hexdigest()


def build_bundle(name: str, out_dir: Path, functions_dir: Path = FUNCTIONS_DIR) -> Bundle:
    """Write ``out_dir/<name>/`` and ``out_dir/<name>.zip`` for one function."""
    sources = _bundle_sources(name, functions_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    directory = out_dir / name
    _write_directory(sources, directory)
    files = tuple(sources)
    digest = _write_zip(directory, files, out_dir / f"{name}.zip")
    return Bundle(name=name, directory=directory, zip_path=out_dir / f"{name}.zip", sha256=digest, files=files)


def build_all(
    out_dir: Path,
    functions_dir: Path = FUNCTIONS_DIR,
    only: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
) -> list[Bundle]:
    """Bundle every function (or the ``only`` ones); write ``SHA256SUMS`` for the zips present."""
    available = discover_functions(functions_dir)
    names = list(only) if only else available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise PackagingError(f"no functions/<name>/main.py for {', '.join(unknown)} (found: {', '.join(available) or 'none'})")
    if not names:
        raise PackagingError(f"no function to package: no {functions_dir}/<name>/main.py")
    bundles = []
    for name in names:
        echo(f"packaging {name}: functions/{name} + {SHARED_PACKAGE}")
        if not (functions_dir / name / "README.md").is_file():
            # Deployable without it, but the directory is meant to explain itself (style.md §2).
            echo(f"  warning: functions/{name} has no README.md (trigger, permissions, environment, dry-run)")
        bundle = build_bundle(name, out_dir, functions_dir)
        echo(f"  {len(bundle.files)} files -> {bundle.directory}/")
        echo(f"  {bundle.zip_path}  sha256 {bundle.sha256}")
        bundles.append(bundle)
    sums = sorted(out_dir.glob("*.zip"))
    lines = [f"{hashlib.sha256(z.read_bytes()).hexdigest()}  {z.name}\n" for z in sums]
    (out_dir / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")
    os.utime(out_dir / "SHA256SUMS", (FIXED_EPOCH, FIXED_EPOCH))
    echo(f"wrote {out_dir / 'SHA256SUMS'} ({len(lines)} bundles)")
    return bundles


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egress_guard.packaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write <name>/ and <name>.zip (e.g. dist/functions)")
    parser.add_argument("--only", action="append", metavar="NAME", help="package only this function (repeatable)")
    parser.add_argument("--functions-dir", type=Path, default=FUNCTIONS_DIR, help="the directory holding <name>/main.py")
    args = parser.parse_args(argv)
    try:
        build_all(args.out_dir, args.functions_dir, args.only)
    except PackagingError as error:
        print(f"packaging failed: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
