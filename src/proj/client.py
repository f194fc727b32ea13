"""``from proj import client`` inside a run: the same dependency-free module entry points import as ``proj_client``."""
from proj._childpath.proj_client import *  # noqa: F401,F403
from proj._childpath.proj_client import __all__  # noqa: F401
