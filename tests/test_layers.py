"""The library's layering (CONTRIBUTING.md): every import points down, the library never
imports Ray, and the entry points use only what each subpackage's __init__ names."""

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("common", "config", "data", "prompts", "model", "evaluation", "recsys", "training",
          "tune", "inference", "export")
"""Lowest first: a module may import its own subpackage and the ones before it."""
ENTRY_POINTS = ("cli", "ray_jobs", "serve")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def library_modules() -> list[Path]:
    return sorted((REPO / "llara").rglob("*.py"))


def test_the_library_is_only_subpackages_of_known_layers():
    loose = [p.name for p in (REPO / "llara").glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    folders = {p.name for p in (REPO / "llara").iterdir()
               if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(LAYERS)


@pytest.mark.parametrize("path", library_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down_and_never_reach_ray(path):
    package = path.relative_to(REPO / "llara").parts[0]
    if package == "__init__.py":
        return
    level = LAYERS.index(package)
    for line, module in imported_modules(path):
        assert module.split(".")[0] != "ray", f"{path.name}:{line} imports {module}"
        parts = module.split(".")
        if parts[0] == "llara" and len(parts) > 1:
            assert parts[1] in LAYERS, f"{path.name}:{line} imports {module}"
            assert LAYERS.index(parts[1]) <= level, \
                f"{path.relative_to(REPO)}:{line} imports {module}, a layer above {package}"


@pytest.mark.parametrize("folder", ENTRY_POINTS)
def test_entry_points_import_what_the_subpackages_name(folder):
    for path in sorted((REPO / folder).glob("*.py")):
        for line, module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "llara" and len(parts) > 2 and parts[1] in LAYERS:
                raise AssertionError(f"{folder}/{path.name}:{line} imports {module}; import "
                                     f"from llara.{parts[1]} (its __init__ names it)")


@pytest.mark.parametrize("package", LAYERS)
def test_each_subpackage_names_its_public_pieces(package):
    module = importlib.import_module(f"llara.{package}")
    assert module.__doc__ and module.__all__
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)
