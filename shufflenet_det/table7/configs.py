"""Where a Table 7 cell's files are: its config under ``configs/table7/``
and its work_dir (that of ``tools/train.py`` and ``tools/test.py`` for the
config), shared by the timing, the embedded runner and the GPU run."""
import os.path as osp

from ..utils.paths import REPO_ROOT as ROOT

#: where tools/train.py writes a config's work_dir by default
WORK_DIRS = osp.join(ROOT, 'work_dirs')


def cell_name(family, level):
    """``lighthead_<family>_<level>``: the cell's config and work_dir
    name."""
    return f'lighthead_{family}_{level.lower()}'


def cell_config(family, level):
    """The path of the cell's config, ``configs/table7/<cell_name>.py``."""
    return osp.join(ROOT, 'configs', 'table7',
                    f'{cell_name(family, level)}.py')
