"""surgtwin: surgical planning on a patient's digital twin."""

import ctypes.util
import importlib.util
import os

# Process-wide threading choices, made before numba or VTK is first imported (a worker thread
# may be the first to import them, and switching either later races other threads' kernels):
# numba's parallel kernels run from several threads at once (a simulation loop, a background
# task), which its fallback layer (workqueue) does not allow, so the thread-safe layers are
# required where OpenMP (libgomp1, installed by installers/system-packages.sh) or TBB exists;
# without either numba keeps its default. VTK's SMP filters use all cores.
if ctypes.util.find_library("gomp") or importlib.util.find_spec("tbb"):
    os.environ.setdefault("NUMBA_THREADING_LAYER", "threadsafe")
os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

__version__ = "0.1.0"
