"""Only ExportsFunction carries the document libraries: no other function or the layer imports them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_LIBRARIES = {"pptx", "docx", "fpdf", "PIL", "lxml", "fontTools", "render"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_other_function_and_not_the_layer_imports_a_document_library() -> None:
    exports = ROOT / "functions" / "exports"
    sources = [*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in sources
        if exports not in path.parents and (found := imported_roots(path) & DOCUMENT_LIBRARIES)
    }
    assert offenders == {}


def test_only_the_exports_function_requires_them() -> None:
    for requirements in (ROOT / "functions").glob("*/requirements.txt"):
        names = {line.split("==")[0].strip().lower() for line in requirements.read_text().splitlines()}
        if requirements.parent.name != "exports":
            assert not names & {"python-pptx", "python-docx", "fpdf2", "pillow"}, requirements
    layer = (ROOT / "layers" / "common" / "requirements.txt").read_text().lower()
    assert "pptx" not in layer and "fpdf" not in layer
