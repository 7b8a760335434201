"""The package imports in one direction (docs/architecture.md): a module
imports only from its own subpackage or from one below it, lazy imports
inside functions included. Read from the source with ``ast``, nothing run."""
import ast
import os.path as osp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'shufflenet_det'
#: bottom to top; a subpackage may import those with a lower number.
LAYERS = {
    'utils': 0,
    'models': 1,
    'datasets': 1,
    'engine': 2,
    'deploy': 3,
    'benchmark': 4,
    'apis': 5,
    'table7': 6,
}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def imported_modules(path):
    """(line, module) for every module ``path`` imports, as absolute dotted
    names (for
    ``from X import name``: X, and X.name when X is a package of ours, since
    ``name`` may be a subpackage)."""
    name = module_name(path)
    package = name.split('.') if path.name == '__init__.py' else \
        name.split('.')[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module
                                          else []))
            else:
                module = node.module
            yield node.lineno, module
            if module.count('.') < 2:
                yield from ((node.lineno, f'{module}.{a.name}')
                            for a in node.names)


def subpackage(module):
    parts = module.split('.')
    return parts[1] if parts[0] == 'shufflenet_det' and len(parts) > 1 \
        else None


def violations():
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        here = subpackage(module_name(path))
        if here is None:
            continue  # the root __init__ and version.py
        seen = set()  # one report per import statement
        for line, module in imported_modules(path):
            if line in seen:
                continue
            where = f'{path.relative_to(ROOT)}:{line} imports {module}'
            if module == 'shufflenet_det':
                found.append(f'{where}: the root package (it imports the '
                             'top layers); import the subpackage needed')
                seen.add(line)
                continue
            there = subpackage(module)
            if there is None or there == here:
                continue
            if there not in LAYERS:
                continue  # a module of the root (version)
            if here not in LAYERS:
                found.append(f'{where}: {here} has no layer in LAYERS')
                seen.add(line)
            elif LAYERS[there] >= LAYERS[here]:
                found.append(f'{where}: {there} is not below {here}')
                seen.add(line)
    return found


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir()
                   if (p / '__init__.py').exists()}
    assert subpackages == set(LAYERS)


def test_imports_point_down():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: an upward import, relative or absolute, lazy
    or not, is reported."""
    pkg = tmp_path / 'shufflenet_det'
    for sub in ('utils', 'deploy'):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / '__init__.py').write_text('')
    (pkg / 'utils' / 'a.py').write_text(
        'def f():\n    from ..deploy import export\n')
    (pkg / 'utils' / 'b.py').write_text('import shufflenet_det.deploy.x\n')
    (pkg / 'deploy' / 'c.py').write_text('from ..utils import a\n')
    monkeypatch.setitem(globals(), 'ROOT', tmp_path)
    monkeypatch.setitem(globals(), 'PACKAGE', pkg)
    found = violations()
    assert len(found) == 2, found
    assert all('deploy is not below utils' in f for f in found)
    assert {osp.basename(f.split(':')[0]) for f in found} == {'a.py', 'b.py'}
