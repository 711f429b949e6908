"""``OUT/stats/thresholds.json``: the removal fractions ``curate stats`` suggests, and their readers.

Schema ``synmix.thresholds``, version 1 (fields in ``manifests/README.md``). ``curate stats``
writes it (:func:`thresholds_document`, :func:`write_thresholds`); ``curate manifest --prune PATH``
applies its ``prune`` map (:func:`read_thresholds_fractions`) and refuses a file computed from
another version of the synthetic COCO file (:func:`check_thresholds_source`).
"""

from __future__ import annotations

from pathlib import Path

from curate import __version__
from curate.errors import CurateError
from curate.fileio import output_errors, read_versioned_json, write_json_atomic
from curate.labels import CLASS_NAMES
from curate.prune import check_fraction

THRESHOLDS_SCHEMA = "synmix.thresholds"
THRESHOLDS_SCHEMA_VERSION = 1
#: The file's name in ``OUT/stats``.
THRESHOLDS_FILE = "thresholds.json"


def files_entry(source: str, files: list[tuple[str, str, str]]) -> dict:
    """The ``real``/``synthetic`` entry: a source and the COCO files used, each (name, split, sha256)."""
    return {
        "source": source,
        "files": [{"coco": coco, "split": split, "sha256": sha256} for coco, split, sha256 in files],
    }


def thresholds_document(*, method: str, grid, study_fraction: float, real: dict, synthetic: dict,
                        classes: dict, prune: dict[str, float]) -> dict:
    """The file's content: ``real``/``synthetic`` from :func:`files_entry`, ``prune`` the map ``--prune`` applies."""
    return {
        "schema": THRESHOLDS_SCHEMA,
        "schema_version": THRESHOLDS_SCHEMA_VERSION,
        "tool_version": __version__,
        "method": method,
        "grid": list(grid),
        "study_fraction": study_fraction,
        "real": real,
        "synthetic": synthetic,
        "classes": classes,
        "prune": prune,
    }


def write_thresholds(stats_dir: Path, document: dict | None) -> Path | None:
    """Write ``stats_dir/thresholds.json``, or with no document remove a stale one. Returns the path written."""
    path = Path(stats_dir) / THRESHOLDS_FILE
    if document is None:
        if path.exists() or path.is_symlink():
            with output_errors(path):
                path.unlink()  # stale: it described other inputs
        return None
    write_json_atomic(path, document, indent=1)
    return path


def read_thresholds(path: Path) -> dict:
    return read_versioned_json(path, THRESHOLDS_SCHEMA, THRESHOLDS_SCHEMA_VERSION, "thresholds file",
                               "rerun curate stats")


def read_thresholds_fractions(path: Path) -> dict[str, float]:
    """The checked ``prune`` map: a fraction in [0, 1) for each of the 8 classes."""
    data = read_thresholds(path)
    _synthetic_files(path, data)  # checked now, used by check_thresholds_source
    table = data.get("prune")
    if not isinstance(table, dict):
        raise CurateError(path, "no \"prune\" map of class → fraction")
    fractions = {}
    for name in CLASS_NAMES:
        if name not in table:
            raise CurateError(path, f"\"prune\" has no fraction for {name}")
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CurateError(path, f"\"prune\".{name} is {_json_type(value)}, not a removal fraction (a number in [0, 1))")
        try:
            value = float(value)
        except OverflowError:  # an integer literal beyond any float
            raise CurateError(path, f"\"prune\".{name} is out of range for a removal fraction") from None
        fractions[name] = check_fraction(value, f"prune.{name}", path)
    unknown = sorted(set(table) - set(CLASS_NAMES))
    if unknown:
        raise CurateError(path, f"\"prune\" names unknown class '{unknown[0]}'")
    return fractions


def _json_type(value) -> str:
    """How JSON calls the type of ``value`` (for one-line errors)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the string {value!r}"[:60]
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _synthetic_files(path: Path, data: dict) -> list[dict]:
    """The checked ``synthetic.files`` entries (each an object with string ``coco`` and ``sha256``)."""
    synthetic = data.get("synthetic", {})
    if not isinstance(synthetic, dict):
        raise CurateError(path, f"\"synthetic\" is {_json_type(synthetic)}, not an object")
    files = synthetic.get("files", [])
    if not isinstance(files, list):
        raise CurateError(path, f"\"synthetic\".files is {_json_type(files)}, not a list")
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise CurateError(path, f"\"synthetic\".files[{i}] is {_json_type(entry)}, not an object")
        for key in ("coco", "sha256"):
            if not isinstance(entry.get(key), str):
                raise CurateError(path, f"\"synthetic\".files[{i}].{key} is {_json_type(entry.get(key))}, "
                                        "not a string")
    return files


def check_thresholds_source(path: Path, synthetic_coco: Path, synthetic_sha256: str) -> None:
    """A thresholds file computed from another version of the synthetic COCO file is stale."""
    name = Path(synthetic_coco).name
    for entry in _synthetic_files(path, read_thresholds(path)):
        if entry["coco"] == name and entry["sha256"] != synthetic_sha256:
            raise CurateError(path, f"computed from another {name} (sha256 differs): rerun curate stats")
