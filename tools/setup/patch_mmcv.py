"""Patch an unpacked mmcv 2.1.0 source tree so that its ops build with the
torch and CUDA toolkit at hand. Used by tools/setup/install_mmcv.sh.

    python tools/setup/patch_mmcv.py SRC --cxx-std c++20 [--cuda-home DIR]
    python tools/setup/patch_mmcv.py SRC --print-flags  # setup.py's flags

What it changes, each for a reason that the stock archive cannot know about:

- C++ standard: setup.py hard-codes -std=c++14/17 for the C++ compiler and,
  separately, for nvcc; torch >= 2.13 headers refuse anything below C++20.
  Both are set to the standard torch's own cpp_extension uses.
- pkg_resources: setup.py imports it, setuptools >= 81 no longer has it and
  torch 2.14 requires setuptools >= 77; the same three names come from
  importlib.metadata and packaging instead, whatever setuptools is there.
- CUDA math headers: torch's ATen/cuda headers include cusparse.h, cublas*.h,
  ...; a CUDA toolkit with only nvcc and the runtime lacks them, while torch's
  pip dependencies ship them (site-packages/nvidia/*/include). When the
  toolkit lacks cusparse.h, those folders join the extension's include path.

Each change is idempotent, and one that does not apply (another mmcv
release) stops with the line of setup.py it looked for.
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys

PKG_RESOURCES_IMPORT = ('from pkg_resources import DistributionNotFound, '
                        'get_distribution, parse_version\n')
PKG_RESOURCES_SHIM = '''\
try:
    from pkg_resources import (DistributionNotFound, get_distribution,
                               parse_version)
except ImportError:  # setuptools >= 81 (patched by shufflenet-det)
    from importlib.metadata import PackageNotFoundError as DistributionNotFound
    from importlib.metadata import distribution as get_distribution
    from packaging.version import parse as parse_version
'''
# The last include_dirs line of the CUDA branch of get_extensions().
CUDA_INCLUDE_ANCHOR = (
    "            include_dirs.append(os.path.abspath("
    "'./mmcv/ops/csrc/common/cuda'))\n")
CUDA_INCLUDE_MARK = '# CUDA math headers (patched by shufflenet-det)'


def fail(src, what):
    sys.exit(f'patch_mmcv: {osp.join(src, "setup.py")}: {what}; this patch '
             'is written for mmcv 2.1.0 (MMCV_VERSION).')


def pip_cuda_include_dirs(cuda_home):
    """torch's pip CUDA header folders, when ``cuda_home`` lacks cusparse.h
    (empty list otherwise: the toolkit's own headers come first)."""
    if cuda_home and osp.exists(osp.join(cuda_home, 'include', 'cusparse.h')):
        return []
    import torch
    site = osp.dirname(osp.dirname(torch.__file__))
    # cu13 wheels: nvidia/cu13/include; cu12 wheels: nvidia/<lib>/include.
    return sorted(d for d in glob.glob(osp.join(site, 'nvidia', '*', 'include'))
                  if glob.glob(osp.join(d, 'cu*.h')))


def patch(src, cxx_std, cuda_include_dirs=()):
    """Patch ``src``/setup.py in place; return the list of changes made."""
    path = osp.join(src, 'setup.py')
    with open(path) as f:
        text = f.read()
    changes = []

    text, n = re.subn(r'-std=c\+\+1[47]\b', f'-std={cxx_std}', text)
    if n:
        changes.append(f'-std={cxx_std} for the C++ compiler and nvcc '
                       f'({n} flags)')
    elif f'-std={cxx_std}' not in text:
        fail(src, 'no -std=c++14/17 flag to replace')

    if PKG_RESOURCES_IMPORT in text:
        text = text.replace(PKG_RESOURCES_IMPORT, PKG_RESOURCES_SHIM)
        changes.append('pkg_resources optional (importlib.metadata, '
                       'packaging)')
    elif PKG_RESOURCES_SHIM not in text:
        fail(src, f'no line {PKG_RESOURCES_IMPORT.strip()!r}')

    if cuda_include_dirs and CUDA_INCLUDE_MARK not in text:
        if text.count(CUDA_INCLUDE_ANCHOR) != 1:
            fail(src, f'no single line {CUDA_INCLUDE_ANCHOR.strip()!r}')
        extra = (f'            {CUDA_INCLUDE_MARK}\n'
                 f'            include_dirs.extend({list(cuda_include_dirs)!r})\n')
        text = text.replace(CUDA_INCLUDE_ANCHOR, CUDA_INCLUDE_ANCHOR + extra)
        changes.append('include path += ' + ' '.join(cuda_include_dirs))

    with open(path, 'w') as f:
        f.write(text)
    return changes


def build_flags(src, env=None):
    """The extension that ``src``/setup.py would build under ``env`` (e.g.
    FORCE_CUDA=1), without compiling: dict(kind='CppExtension' or
    'CUDAExtension', cxx=[...], nvcc=[...], include_dirs=[...],
    define_macros=[...])."""
    import setuptools
    from torch.utils import cpp_extension

    captured = {}
    made = {}

    def record(kind, real):
        def make(name, sources, *args, **kwargs):
            made.update(kind=kind, kwargs=kwargs)
            return real(name, sources, *args, **kwargs)
        return make

    old = dict(setup=setuptools.setup, cpp=cpp_extension.CppExtension,
               cuda=cpp_extension.CUDAExtension, cwd=os.getcwd(),
               environ=dict(os.environ))
    setuptools.setup = lambda **kw: captured.update(kw)
    cpp_extension.CppExtension = record('CppExtension', old['cpp'])
    cpp_extension.CUDAExtension = record('CUDAExtension', old['cuda'])
    try:
        os.environ.update(env or {})
        os.chdir(src)
        with open('setup.py') as f:
            code = compile(f.read(), osp.join(src, 'setup.py'), 'exec')
        exec(code, {'__name__': '__main__', '__file__': 'setup.py'})
    finally:
        setuptools.setup = old['setup']
        cpp_extension.CppExtension = old['cpp']
        cpp_extension.CUDAExtension = old['cuda']
        os.chdir(old['cwd'])
        os.environ.clear()
        os.environ.update(old['environ'])
    if not made:
        sys.exit(f'patch_mmcv: {src}/setup.py declared no extension '
                 '(MMCV_WITH_OPS=1 and torch importable are needed).')
    args = made['kwargs'].get('extra_compile_args', {})
    return dict(kind=made['kind'], cxx=list(args.get('cxx', [])),
                nvcc=list(args.get('nvcc', [])),
                include_dirs=list(made['kwargs'].get('include_dirs', [])),
                define_macros=list(made['kwargs'].get('define_macros', [])),
                sources=len(captured['ext_modules'][0].sources))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='unpacked mmcv source tree')
    parser.add_argument('--cxx-std', help='e.g. c++20 (torch\'s own)')
    parser.add_argument('--cuda-home', help='CUDA toolkit of the build; its '
                        'missing math headers come from torch\'s pip wheels')
    parser.add_argument('--print-flags', action='store_true',
                        help='print what setup.py passes to the compilers')
    args = parser.parse_args(argv)
    if args.cxx_std:
        dirs = (pip_cuda_include_dirs(args.cuda_home)
                if args.cuda_home else [])
        for change in patch(args.src, args.cxx_std, dirs):
            print(f'[patch_mmcv] {change}')
    if args.print_flags:
        flags = build_flags(args.src)
        for key, value in flags.items():
            print(f'{key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
