"""Where the repository is: the package is installed editable from a
clone (``make setup``), whose configs/, tools/ and work_dirs/ the table
and the same-budget runs use."""
import os.path as osp

#: the root of the clone the package is imported from.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
