"""The docs check: what README.md and docs/ show exists and runs.

- Every file or folder of the project that a page names (``configs/...``,
  ``tools/...``, ``shufflenet_det/...``, ``tests/...``, ``docs/...``; a
  placeholder such as ``<family>`` or ``CELL`` matches any name) exists,
  and so does every module named as ``shufflenet_det.x.y``.
- Every ``make TARGET`` in a command is a target of the Makefile.
- Every Python tool under tools/ answers ``--help`` (all of them, in one
  interpreter, so that mmdet is imported once), and every ``--option`` a
  command passes to a tool is one that the tool's ``--help`` lists.
- Every relative link (``[text](path)``, ``![alt](path)``) points at a
  file of the repository, and a ``#heading`` part at a heading of that
  page.
"""
import glob
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = sorted(['README.md', 'checkpoints/README.md'] + [
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'docs', '**', '*.md'), recursive=True)
])

FENCE = re.compile(r'^ *```[^\n]*\n(.*?)^ *```', re.M | re.S)
# Inline code may run over a line break, not over a blank line.
INLINE = re.compile(r'`((?:[^`\n]|\n(?!\n))+)`')
# A path inside the project, as the pages write it (from the repository
# root, as every command runs).
PROJECT_PATH = re.compile(
    r'(?<![\w./<>*-])((?:configs|tools|shufflenet_det|tests|docs)'
    r'/[\w./<>*-]*)')
MODULE = re.compile(r'(?<![\w.])(shufflenet_det(?:\.\w+)+)')
MAKE = re.compile(r'(?:^|[\s;&|(])make\s+([a-z][\w-]*)')
TOOL = re.compile(r'(?<![\w./-])(tools/[\w/]+\.py)')
OPTION = re.compile(r'(?<![\w-])(--[a-zA-Z][\w-]*)')
LINK = re.compile(r'!?\[[^\]\n]*\]\(([^)\s]+)\)')
HEADING = re.compile(r'^#{1,6} +(.+?) *#* *$', re.M)


def read(page):
    with open(osp.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def code(text):
    """The fenced blocks and the inline code spans of a page: each command
    on one line (backslash continuations joined; an inline span is one
    line), and ``a|b`` (alternatives, ``a\\|b`` in a table) as ``a/b``,
    so that only a spaced ``|`` reads as a pipe."""
    blocks = [b.replace('\\\n', ' ') for b in FENCE.findall(text)]
    spans = [s.replace('\n', ' ') for s in INLINE.findall(FENCE.sub('', text))]
    return [re.sub(r'(?<=\S)\\?\|(?=\S)', '/', p) for p in blocks + spans]


def as_glob(path):
    """A documented path as a glob: ``<name>`` and all-capitals names
    (CELL, CONFIG) are placeholders."""
    path = path.rstrip('.,:;')
    path = re.sub(r'<[^>/]*>', '*', path)
    parts = []
    for part in path.split('/'):
        stem, dot, ext = part.partition('.')
        if re.fullmatch(r'[A-Z][A-Z_]*', stem) and stem != 'README':
            stem = '*'
        parts.append(stem + dot + ext)
    return '/'.join(parts)


def missing_paths(text):
    missing = []
    for path in sorted(set(PROJECT_PATH.findall(text))):
        if not glob.glob(osp.join(ROOT, as_glob(path))):
            missing.append(path)
    for module in sorted(set(MODULE.findall(text))):
        parts = module.split('.')
        # The module itself, or an attribute of the module before it.
        if not any(
                osp.isfile(osp.join(ROOT, *parts[:n]) + '.py')
                or osp.isdir(osp.join(ROOT, *parts[:n]))
                for n in (len(parts), len(parts) - 1)):
            missing.append(module)
    return missing


def headings(text):
    """GitHub's anchors of a page's headings."""
    anchors = set()
    for title in HEADING.findall(FENCE.sub('', text)):
        title = re.sub(r'`|\*\*|\[([^\]]*)\]\([^)]*\)', r'\1', title)
        slug = re.sub(r'[^\w\- ]', '', title.lower()).replace(' ', '-')
        anchors.add(slug)
    return anchors


def make_targets():
    return set(re.findall(r'^([\w-]+):', read('Makefile'), re.M))


def tool_options(pieces):
    """{tool: {option}} for every command line of ``pieces`` that runs a
    Python tool of the project: the options after the tool's path, up to
    the end of that command (a pipe, ``&&``, ``;``, the ``)`` of a
    ``$(...)`` around it, a comment or the next tool)."""
    found = {}
    for piece in pieces:
        for line in piece.splitlines():
            line = re.sub(r'(^|\s)#.*', '', line)
            # $(cat last_checkpoint) is an argument, not the end.
            line = re.sub(r'\$\((?:(?!tools/)[^()])*\)', 'ARG', line)
            matches = list(TOOL.finditer(line))
            for i, m in enumerate(matches):
                end = matches[i + 1].start() if i + 1 < len(matches) \
                    else len(line)
                args = re.split(r'\||&&|;|\)', line[m.end():end])[0]
                found.setdefault(m.group(1), set()).update(
                    OPTION.findall(args))
    return found


HELP_RUNNER = r'''
import contextlib, io, json, runpy, sys
out = {}
for path in sys.argv[1:]:
    buf = io.StringIO()
    sys.argv = [path, '--help']
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            runpy.run_path(path, run_name='__main__')
        status = 'returned without exiting'
    except SystemExit as e:
        status = e.code or 0
    except BaseException as e:  # noqa: B902 - reported, not raised
        status = repr(e)
    out[path] = [status, buf.getvalue()]
print(json.dumps(out))
'''


def cli_tools():
    """The Python tools under tools/ that take command-line options."""
    tools = []
    for path in sorted(glob.glob(osp.join(ROOT, 'tools', '**', '*.py'),
                                 recursive=True)):
        with open(path, encoding='utf-8') as f:
            source = f.read()
        if 'argparse' in source and "__name__ == '__main__'" in source:
            tools.append(osp.relpath(path, ROOT))
    return tools


@pytest.fixture(scope='module')
def helps():
    """{tool: (exit status, --help output)}, from one interpreter (-P: as
    when a user runs a tool, the working directory is not importable)."""
    tools = cli_tools()
    proc = subprocess.run([sys.executable, '-P', '-c', HELP_RUNNER, *tools],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pages_found():
    assert 'README.md' in PAGES and len(PAGES) > 3, PAGES


@pytest.mark.parametrize('page', PAGES)
def test_named_files_exist(page):
    missing = missing_paths(read(page))
    assert not missing, f'{page} names files that are not there: {missing}'


@pytest.mark.parametrize('page', PAGES)
def test_make_targets_exist(page):
    targets = make_targets()
    used = {t for p in code(read(page)) for t in MAKE.findall(p)}
    assert used <= targets, (
        f'{page}: make targets not in the Makefile: {sorted(used - targets)}')


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    text = read(page)
    broken = []
    for target in LINK.findall(FENCE.sub('', text)):
        if re.match(r'[a-z][a-z0-9+.-]*:', target):  # http:, mailto:
            continue
        path, _, anchor = target.partition('#')
        full = osp.normpath(osp.join(ROOT, osp.dirname(page), path)) \
            if path else osp.join(ROOT, page)
        if not osp.exists(full):
            broken.append(target)
        elif anchor and full.endswith('.md') and anchor not in headings(
                read(osp.relpath(full, ROOT))):
            broken.append(target)
    assert not broken, f'{page}: broken relative links: {broken}'


def test_every_tool_help_runs(helps):
    failed = {t: s for t, (s, _) in helps.items() if s != 0}
    assert not failed, f'--help failed: {failed}'
    assert 'tools/train.py' in helps and 'tools/infer.py' in helps


def test_documented_options_exist(helps):
    shown = {}
    for page in PAGES:
        for tool, options in tool_options(code(read(page))).items():
            shown.setdefault(tool, {}).update(
                {o: page for o in options})
    unknown = []
    for tool, options in sorted(shown.items()):
        if not osp.isfile(osp.join(ROOT, tool)):
            continue  # test_named_files_exist reports it
        if tool in helps:
            listed = set(OPTION.findall(helps[tool][1]))
        else:  # a tool without argparse: its source handles the option
            listed = set(OPTION.findall(read(tool)))
        unknown += [f'{page}: {tool} {o}' for o, page in
                    sorted(options.items()) if o not in listed]
    assert not unknown, 'options that the tools do not take:\n' + \
        '\n'.join(unknown)
