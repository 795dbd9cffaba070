"""The layers, enforced: imports flow one way, pure cores -> debates/ -> judging/ -> config/ and
pages. Every module is parsed (not imported), so imports inside functions count as much as those
at the top; the templates that debates' views render count too, through their {% load %} tags.
docs/architecture.md explains the rooms."""

import ast
import re
from pathlib import Path

from .conftest import ROOT

PACKAGES = ("debates", "judging", "config")
# Whatever talks to Django, the database, the channel layer or the broker.
FRAMEWORK = {
    "django",
    "channels",
    "channels_redis",
    "daphne",
    "celery",
    "asgiref",
    "psycopg",
    "whitenoise",
    "dj_database_url",
    "redis",
}
# The pure cores that must stay pure even if their docstrings stop saying so.
REQUIRED_PURE = {
    "debates.protocol",
    "debates.quotes",
    "debates.proportions",
    "debates.pixel.game",
    "debates.pixel.mcts",
    "judging.stats",
    "judging.scoring",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


MODULES = project_modules()


def imported_names(name: str, path: Path) -> set[str]:
    """Every module `name` imports, anywhere in the file, as absolute dotted names. `from a import b`
    counts as importing a.b when a.b is a module, else a."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


IMPORTS = {name: imported_names(name, path) for name, path in MODULES.items()}


def project_imports(name: str) -> set[str]:
    """The project modules `name` imports (a package counts as its __init__)."""
    return {target for target in IMPORTS[name] if target in MODULES and target != name}


def declared_pure() -> set[str]:
    return {
        name
        for name, path in MODULES.items()
        if "Pure module" in (ast.get_docstring(ast.parse(path.read_text())) or "")
    }


PURE = declared_pure() | REQUIRED_PURE


def with_parents(name: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py too."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(MODULES)


def everything_imported_by(name: str) -> set[str]:
    """The project modules that importing `name` runs, transitively, `name` included."""
    seen, pending = set(), [name]
    while pending:
        module = pending.pop()
        for reached in with_parents(module) - seen:
            seen.add(reached)
            pending.extend(project_imports(reached))
    return seen


def test_the_pure_cores_import_no_django_even_indirectly():
    assert REQUIRED_PURE <= set(MODULES), REQUIRED_PURE - set(MODULES)
    problems = {}
    for name in sorted(PURE):
        for module in sorted(everything_imported_by(name)):
            framework = sorted(t for t in IMPORTS[module] if t.split(".")[0] in FRAMEWORK)
            if framework:
                problems[name] = f"{module} imports {framework}"
    assert problems == {}


def test_debates_never_imports_judging():
    offending = {
        name: sorted(t for t in IMPORTS[name] if t.split(".")[0] == "judging")
        for name in MODULES
        if name.split(".")[0] == "debates"
    }
    assert {name: targets for name, targets in offending.items() if targets} == {}


TEMPLATE_TAG = re.compile(r"{%\s*(load|extends|include)\s+(.+?)\s*%}")


def template_references(template: str) -> tuple[set[str], set[str]]:
    """(tag libraries it loads, templates it extends or includes)."""
    libraries, templates = set(), set()
    for tag, argument in TEMPLATE_TAG.findall((ROOT / "templates" / template).read_text()):
        if tag == "load":
            words = argument.split()
            libraries.update(words[: words.index("from")] if "from" in words else words)
        elif argument[0] in "'\"":
            templates.add(argument.split()[0].strip("'\""))
    return libraries, templates


def library_owner(library: str) -> str:
    """The app whose templatetags package holds `library` (Django's own libraries: 'django')."""
    owners = [package for package in PACKAGES if (ROOT / package / "templatetags" / f"{library}.py").exists()]
    return owners[0] if owners else "django"


def test_debates_pages_load_no_judging_template_tags():
    """The debates app's pages (and what they extend or include) must render without judging."""
    pending = [str(p.relative_to(ROOT / "templates")) for p in (ROOT / "templates" / "debates").glob("*.html")]
    seen, loads = set(), {}
    while pending:
        template = pending.pop()
        if template in seen:
            continue
        seen.add(template)
        libraries, referenced = template_references(template)
        loads[template] = {library: library_owner(library) for library in libraries}
        pending.extend(referenced)
    assert "base.html" in seen and "debates/lobby.html" in seen
    assert {t: libs for t, libs in loads.items() if "judging" in libs.values()} == {}


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan): each contains a cycle."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return groups


def import_graph() -> dict[str, set[str]]:
    return {name: set(project_imports(name)) for name in MODULES}


def test_no_import_cycles_also_through_imports_inside_functions():
    cycles = import_cycles(import_graph())
    assert [sorted(group) for group in cycles] == [], "import cycle(s): docs/architecture.md says how to break them"


def test_the_checker_sees_imports_inside_functions():
    """judging.tasks imports judging.ai_judges only inside functions: the graph must still have it."""
    tasks = (ROOT / "judging" / "tasks.py").read_text()
    assert "\nfrom . import ai_judges" not in tasks and "\nfrom .ai_judges import" not in tasks
    assert "    from . import ai_judges" in tasks
    assert "judging.ai_judges" in project_imports("judging.tasks")
