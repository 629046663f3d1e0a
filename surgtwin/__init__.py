"""surgtwin: surgical planning on a patient's digital twin."""

import os

# Process-wide threading choices, made before numba or VTK is first imported (a worker thread
# may be the first to import them, and switching either later races other threads' kernels):
# numba's parallel kernels run from several threads at once (a simulation loop, a background
# task), which its default fallback layer (workqueue) does not allow; "threadsafe" picks OpenMP
# or TBB and fails loudly when neither is installed. VTK's SMP filters use all cores.
os.environ.setdefault("NUMBA_THREADING_LAYER", "threadsafe")
os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

__version__ = "0.1.0"
